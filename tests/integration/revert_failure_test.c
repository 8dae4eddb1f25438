/* A fault whose revert fails is never forgotten (issue 10). The real agent,
 * built with the test-only kind test_fault (faultline-agent-test), on
 * loopback: test_fault's revert fails as often as a control file says, and
 * its marker file shows whether it was reverted.
 *   - revert fails, then SIGTERM: the journal keeps the fault, the log does
 *     not claim it was reverted; the next start tries again, and while that
 *     fails it lists the fault and keeps trying; or it reverts it at once;
 *   - revert fails, then kill -9: the guardian reverts it;
 *   - revert fails forever: the agent keeps trying with a backoff, `faultline
 *     agents` lists it as REVERT FAILED with the error, the journal keeps
 *     it; once a try succeeds it is gone;
 *   - the product agent (faultline-agent) refuses test_fault as unknown. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/journal.h"
#include "common/clock.h"
#include "common/key.h"
#include "common/pbutil.h"
#include "tests/support/agent_proc.h"
#include "tests/support/proc.h"
#include "tests/support/raw_peer.h"

static char dir[] = "/tmp/fl-revert-failure-test.XXXXXX";
static char key_path[300];
static struct fl_key key;
static struct test_agent agent;

static char *arg(const char *a)
{
    return (char *)(uintptr_t)a;
}

static int start_agent(const char *bin, const char *name)
{
    int rc = test_agent_start(&agent, bin, key_path, dir, name, NULL, NULL);
    if (rc != 0)
        test_agent_dump_log(&agent);
    return rc;
}

/* SIGTERM; the agent's exit status (0 when it stopped cleanly, with no
 * sanitizer report and no handle left open). */
static int stop_agent(void)
{
    int st = 0;
    if (agent.pid > 0)
        st = proc_stop(agent.pid, SIGTERM, 15000);
    agent.pid = 0;
    if (st != 0)
        test_agent_dump_log(&agent);
    return st;
}

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(key_path, sizeof(key_path), "%s/faultline.key", dir);
    char out[512], err[256];
    char *kg[] = {arg(FL_CTL_BIN), arg("keygen"), key_path, NULL};
    if (proc_run(kg, out, sizeof(out), 5000) != 0 || fl_key_load(key_path, &key, err, sizeof(err)))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = stop_agent() == 0 ? 0 : -1;
    char *rm[] = {arg("/bin/rm"), arg("-rf"), dir, NULL};
    char out[256];
    return proc_run(rm, out, sizeof(out), 10000) == 0 ? rc : -1;
}

/* Each test's own files: control, marker and agent name. */
struct files {
    char control[400], marker[400], name[32];
};

static void files_for(struct files *f, const char *name)
{
    snprintf(f->name, sizeof(f->name), "%s", name);
    snprintf(f->control, sizeof(f->control), "%s/%s.control", dir, name);
    snprintf(f->marker, sizeof(f->marker), "%s/%s.marker", dir, name);
}

static void set_control(const struct files *f, const char *word)
{
    FILE *c = fopen(f->control, "w");
    assert_non_null(c);
    fprintf(c, "%s\n", word);
    assert_int_equal(fclose(c), 0);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int wait_gone(const char *path, int ms)
{
    uint64_t t0 = fl_mono_ms();
    while (exists(path)) {
        if (fl_mono_ms() - t0 > (uint64_t)ms)
            return -1;
        sleep_ms(20);
    }
    return 0;
}

static Faultline__Envelope *request(struct raw_peer *p, Faultline__Envelope *env, int timeout_ms)
{
    uint8_t buf[4096];
    size_t n = raw_seal(p, env, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(raw_send_bytes(p, buf, n), 0);
    return raw_recv_envelope(p, timeout_ms);
}

static void connect_peer(struct raw_peer *p)
{
    assert_int_equal(raw_connect(p, agent.port), 0);
    assert_int_equal(raw_handshake(p, &key), 0);
}

/* Injects a detached test_fault; the reply (caller frees). */
static Faultline__Envelope *inject(struct raw_peer *p, const struct files *f, uint64_t duration_ms)
{
    Faultline__TestFault tf = FAULTLINE__TEST_FAULT__INIT;
    tf.control = fl_pb_str(f->control);
    tf.marker = fl_pb_str(f->marker);
    Faultline__FaultSpec spec = FAULTLINE__FAULT_SPEC__INIT;
    spec.name = fl_pb_str(f->name);
    spec.duration_ms = duration_ms;
    spec.kind_case = FAULTLINE__FAULT_SPEC__KIND_TEST_FAULT;
    spec.test_fault = &tf;
    Faultline__InjectRequest ir = FAULTLINE__INJECT_REQUEST__INIT;
    ir.spec = &spec;
    ir.detached = 1;
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = 1;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_INJECT;
    env.inject = &ir;
    return request(p, &env, 5000);
}

/* Injects a fault that will fail to revert; its id into id. */
static void inject_ok(const struct files *f, uint64_t duration_ms, char *id, size_t cap)
{
    struct raw_peer p;
    connect_peer(&p);
    Faultline__Envelope *reply = inject(&p, f, duration_ms);
    assert_non_null(reply);
    if (reply->msg_case == FAULTLINE__ENVELOPE__MSG_ERROR)
        fprintf(stderr, "inject refused: %s\n", reply->error->message);
    assert_int_equal(reply->msg_case, FAULTLINE__ENVELOPE__MSG_INJECTED);
    snprintf(id, cap, "%s", reply->injected->id);
    faultline__envelope__free_unpacked(reply, NULL);
    raw_close(&p);
    assert_true(exists(f->marker));
}

/* Asks for the revert, which fails after the agent's quick tries. */
static void revert_fails(const char *id)
{
    struct raw_peer p;
    connect_peer(&p);
    Faultline__RevertRequest rr = FAULTLINE__REVERT_REQUEST__INIT;
    rr.fault_id = fl_pb_str(id);
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = 2;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_REVERT;
    env.revert = &rr;
    Faultline__Envelope *reply = request(&p, &env, 15000);
    assert_non_null(reply);
    assert_int_equal(reply->msg_case, FAULTLINE__ENVELOPE__MSG_ERROR);
    assert_int_equal(reply->error->code, FAULTLINE__ERROR_CODE__ERROR_REVERT_FAILED);
    assert_non_null(strstr(reply->error->message, id));
    assert_non_null(strstr(reply->error->message, "told to fail forever"));
    faultline__envelope__free_unpacked(reply, NULL);
    raw_close(&p);
}

/* Whether the journal still marks fault id active. */
static int journal_holds(const char *id)
{
    char path[700], err[512];
    snprintf(path, sizeof(path), "%s/journal", agent.state_dir);
    json_t *active = NULL;
    assert_int_equal(fl_journal_read_active(path, &active, err, sizeof(err)), 0);
    int found = 0;
    size_t i;
    json_t *undo;
    json_array_foreach(active, i, undo)
    {
        const char *uid = json_string_value(json_object_get(undo, "id"));
        found |= uid != NULL && strcmp(uid, id) == 0;
    }
    json_decref(active);
    return found;
}

static void agents_listing(char *out, size_t cap)
{
    char *argv[] = {arg(FL_CTL_BIN), arg("agents"), agent.where, arg("--key"), key_path, NULL};
    assert_int_equal(proc_run(argv, out, cap, 10000), 0);
}

static int count_in_log(const char *needle)
{
    static char buf[1 << 18];
    FILE *f = fopen(agent.log, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    int count = 0;
    for (const char *p = buf; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        count++;
    return count;
}

static void test_revert_fails_then_sigterm(void **state)
{
    (void)state;
    struct files f;
    files_for(&f, "sigterm");
    assert_int_equal(start_agent(FL_AGENT_TEST_BIN, f.name), 0);
    set_control(&f, "forever");
    char id[64];
    inject_ok(&f, 600000, id, sizeof(id));
    revert_fails(id);

    pid_t guardian = agent.guardian_pid;
    assert_int_equal(stop_agent(), 0);
    /* not forgotten: the clean stop kept it in the journal, said so, and the
     * guardian (which tried once more, and failed too) left it there */
    char gst = 'S';
    for (int i = 0; i < 250 && gst != 'Z' && gst != 0; i++) {
        sleep_ms(20);
        gst = proc_state_of(guardian);
    }
    assert_true(gst == 'Z' || gst == 0);
    assert_true(exists(f.marker));
    assert_true(journal_holds(id));
    assert_int_equal(count_in_log("stopping: reverted"), 0);
    assert_int_equal(count_in_log("1 fault(s) NOT reverted"), 1);
    assert_true(count_in_log("guardian: fault") >= 1);

    /* the next start tries again and fails: it keeps the fault, lists it,
     * and keeps trying; once a try works it is gone */
    assert_int_equal(start_agent(FL_AGENT_TEST_BIN, f.name), 0);
    char out[8192];
    agents_listing(out, sizeof(out));
    const char *line = strstr(out, id);
    assert_non_null(line);
    assert_non_null(strstr(line, "test_fault"));
    assert_non_null(strstr(line, "REVERT FAILED"));
    assert_non_null(strstr(line, "left by an earlier agent"));
    assert_true(journal_holds(id));
    set_control(&f, "0");
    assert_int_equal(wait_gone(f.marker, 5000), 0);
    uint64_t t0 = fl_mono_ms();
    while (journal_holds(id)) {
        assert_true(fl_mono_ms() - t0 < 2000);
        sleep_ms(20);
    }
    agents_listing(out, sizeof(out));
    assert_null(strstr(out, id));
    assert_int_equal(stop_agent(), 0);

    /* and a start after a stop that left it reverts it before listening */
    assert_int_equal(start_agent(FL_AGENT_TEST_BIN, f.name), 0);
    set_control(&f, "forever");
    inject_ok(&f, 600000, id, sizeof(id));
    revert_fails(id);
    assert_int_equal(stop_agent(), 0);
    assert_true(journal_holds(id));
    set_control(&f, "0");
    assert_int_equal(start_agent(FL_AGENT_TEST_BIN, f.name), 0);
    assert_false(exists(f.marker));
    assert_false(journal_holds(id));
    agents_listing(out, sizeof(out));
    assert_null(strstr(out, id));
    assert_int_equal(stop_agent(), 0);
}

static void test_revert_fails_then_kill9(void **state)
{
    (void)state;
    struct files f;
    files_for(&f, "kill9");
    assert_int_equal(start_agent(FL_AGENT_TEST_BIN, f.name), 0);
    set_control(&f, "forever");
    char id[64];
    inject_ok(&f, 600000, id, sizeof(id));
    revert_fails(id);
    assert_true(journal_holds(id));

    /* the agent's next try is seconds away: the guardian gets there first */
    set_control(&f, "0");
    kill(agent.pid, SIGKILL);
    proc_wait(agent.pid, 2000);
    agent.pid = 0;
    assert_int_equal(wait_gone(f.marker, 2000), 0);
    pid_t guardian = agent.guardian_pid;
    char gst = 'S';
    for (int i = 0; i < 250 && gst != 'Z' && gst != 0; i++) {
        sleep_ms(20);
        gst = proc_state_of(guardian);
    }
    assert_true(gst == 'Z' || gst == 0);
    assert_false(journal_holds(id));
    char needle[128];
    snprintf(needle, sizeof(needle), "guardian: fault %s (test_fault) reverted", id);
    assert_int_equal(count_in_log(needle), 1);
}

static void test_revert_fails_forever(void **state)
{
    (void)state;
    struct files f;
    files_for(&f, "forever");
    assert_int_equal(start_agent(FL_AGENT_TEST_BIN, f.name), 0);
    set_control(&f, "forever");
    char id[64];
    inject_ok(&f, 1000, id, sizeof(id)); /* its duration ends the fault: the revert fails */

    /* the quick tries, then tries after a backoff: every one said so */
    uint64_t t0 = fl_mono_ms();
    while (count_in_log("REVERT FAILED") < 2) {
        assert_true(fl_mono_ms() - t0 < 15000);
        sleep_ms(50);
    }
    char out[8192];
    agents_listing(out, sizeof(out));
    fprintf(stderr, "%s", out);
    const char *line = strstr(out, id);
    assert_non_null(line);
    const char *eol = strchr(line, '\n');
    char row[1024];
    snprintf(row, sizeof(row), "%.*s", eol ? (int)(eol - line) : (int)strlen(line), line);
    assert_non_null(strstr(row, "test_fault"));
    assert_non_null(strstr(row, "REVERT FAILED"));
    assert_non_null(strstr(row, "told to fail forever"));
    assert_true(exists(f.marker));
    assert_true(journal_holds(id));

    /* a later try succeeds: it is gone from the listing and the journal */
    set_control(&f, "0");
    assert_int_equal(wait_gone(f.marker, 12000), 0);
    t0 = fl_mono_ms();
    while (journal_holds(id)) {
        assert_true(fl_mono_ms() - t0 < 2000);
        sleep_ms(20);
    }
    agents_listing(out, sizeof(out));
    assert_null(strstr(out, id));
    assert_int_equal(count_in_log("reverted after"), 1);
    assert_int_equal(stop_agent(), 0);
    assert_int_equal(count_in_log("NOT reverted"), 0);
}

/* An apply that fails is undone before the error is reported. */
static void test_apply_fails_is_undone(void **state)
{
    (void)state;
    struct files f;
    files_for(&f, "apply");
    assert_int_equal(start_agent(FL_AGENT_TEST_BIN, f.name), 0);
    set_control(&f, "apply");
    struct raw_peer p;
    connect_peer(&p);
    Faultline__Envelope *reply = inject(&p, &f, 60000);
    assert_non_null(reply);
    assert_int_equal(reply->msg_case, FAULTLINE__ENVELOPE__MSG_ERROR);
    assert_int_equal(reply->error->code, FAULTLINE__ERROR_CODE__ERROR_APPLY_FAILED);
    assert_non_null(strstr(reply->error->message, "apply told to fail"));
    faultline__envelope__free_unpacked(reply, NULL);
    raw_close(&p);
    assert_false(exists(f.marker));
    assert_int_equal(stop_agent(), 0);
}

static void test_product_agent_refuses_test_kind(void **state)
{
    (void)state;
    struct files f;
    files_for(&f, "product");
    assert_int_equal(start_agent(FL_AGENT_BIN, f.name), 0);
    struct raw_peer p;
    connect_peer(&p);
    Faultline__Envelope *reply = inject(&p, &f, 60000);
    assert_non_null(reply);
    assert_int_equal(reply->msg_case, FAULTLINE__ENVELOPE__MSG_ERROR);
    assert_int_equal(reply->error->code, FAULTLINE__ERROR_CODE__ERROR_UNSUPPORTED);
    assert_non_null(strstr(reply->error->message, "unknown fault kind: this agent knows "
                                                  "kill_process, pause_process"));
    assert_null(strstr(reply->error->message, "test_fault"));
    faultline__envelope__free_unpacked(reply, NULL);
    raw_close(&p);
    assert_false(exists(f.marker));
    assert_int_equal(stop_agent(), 0);
}

/* More faults than the old fixed listing (256): status and `faultline
 * agents` list every one, never a silent first 256 (issue 11 item 5). */
#define MANY_FAULTS 300
static void test_listing_is_never_cut(void **state)
{
    (void)state;
    char config[400];
    snprintf(config, sizeof(config), "%s/many.yaml", dir);
    FILE *c = fopen(config, "w");
    assert_non_null(c);
    fprintf(c, "guardrails:\n  max_faults: %d\n", MANY_FAULTS + 10);
    assert_int_equal(fclose(c), 0);
    const char *extra[] = {"--config", config, NULL};
    assert_int_equal(
        test_agent_start(&agent, FL_AGENT_TEST_BIN, key_path, dir, "many", NULL, extra), 0);
    struct raw_peer p;
    connect_peer(&p);
    for (int i = 0; i < MANY_FAULTS; i++) {
        struct files f;
        char name[32];
        snprintf(name, sizeof(name), "many%d", i);
        files_for(&f, name);
        Faultline__Envelope *reply = inject(&p, &f, 600000);
        assert_non_null(reply);
        assert_int_equal(reply->msg_case, FAULTLINE__ENVELOPE__MSG_INJECTED);
        faultline__envelope__free_unpacked(reply, NULL);
    }
    raw_close(&p);
    static char out[1 << 17];
    agents_listing(out, sizeof(out));
    int rows = 0;
    for (const char *q = out; (q = strstr(q, "test_fault")) != NULL; q++)
        rows++;
    if (rows != MANY_FAULTS)
        fprintf(stderr, "%s\n", out);
    assert_int_equal(rows, MANY_FAULTS);
    assert_int_equal(stop_agent(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_revert_fails_then_sigterm),
        cmocka_unit_test(test_revert_fails_then_kill9),
        cmocka_unit_test(test_revert_fails_forever),
        cmocka_unit_test(test_apply_fails_is_undone),
        cmocka_unit_test(test_product_agent_refuses_test_kind),
        cmocka_unit_test(test_listing_is_never_cut),
    };
    return cmocka_run_group_tests_name("revert failure", tests, setup, teardown);
}
