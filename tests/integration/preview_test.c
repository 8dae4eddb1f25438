/* `faultline inject --dry-run` (issue 13): the agent resolves the selector
 * and runs the guardrails of a real inject, says what it would do, and does
 * nothing. Targets are processes this test starts, from a copy of
 * /bin/sleep with a name of its own, so a name selector matches them alone.
 *
 * For every preview: the output names each pid; afterwards every target is
 * still running with the same start time (/proc/PID/stat field 22), was
 * never stopped (waitpid WUNTRACED would report it: they are our children),
 * the agent's journal is byte for byte what it was, and the agent lists no
 * fault, not even an ended one. A selector matching nothing, or a guardrail,
 * is refused with the real inject's message and exit status. An agent that
 * does not know the request (older than it) answers "request not
 * understood", which the controller turns into "too old to preview".
 * Also: the agent's --name is what `faultline agents` shows as HOST. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>
#include <cmocka.h>

#include "common/key.h"
#include "controller/client/preview.h"
#include "controller/experiment/faultspec.h"
#include "controller/run/preview.h"
#include "tests/support/agent_proc.h"
#include "tests/support/proc.h"
#include "tests/support/raw_peer.h"

#define N_TARGETS 3
#define AGENT_NAME "flpv-agent-1"

static char dir[] = "/tmp/fl-preview-test.XXXXXX";
static char key_path[300];
static char sleeper[400]; /* DIR/flpvNNNNN: a copy of /bin/sleep */
static char comm[16];     /* its process name */
static struct fl_key key;
static struct test_agent agent;
static pid_t targets[N_TARGETS];

static char *arg(const char *a)
{
    return (char *)(uintptr_t)a;
}

static int ctl(char *out, size_t cap, ...)
{
    char *argv[32] = {arg(FL_CTL_BIN)};
    int n = 1;
    va_list ap;
    va_start(ap, cap);
    const char *a;
    while (n < 29 && (a = va_arg(ap, const char *)) != NULL)
        argv[n++] = arg(a);
    va_end(ap);
    argv[n++] = arg("--key");
    argv[n++] = key_path;
    argv[n] = NULL;
    return proc_run(argv, out, cap, 20000);
}

/* Field 22 of /proc/PID/stat: the start time in clock ticks; 0 when gone. */
static unsigned long long start_time(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* comm may hold spaces */
    if (p == NULL)
        return 0;
    p += 2; /* field 3, the state */
    for (int field = 3; field < 22 && p; field++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    return p ? strtoull(p, NULL, 10) : 0;
}

static int copy_file(const char *from, const char *to)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "cp %s %s && chmod 0755 %s", from, to, to);
    return system(cmd) == 0 ? 0 : -1;
}

static pid_t start_target(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        execl(sleeper, sleeper, "600", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    *len = 0;
    if (f == NULL)
        return strdup(""); /* no journal yet: nothing written */
    char *buf = malloc(1 << 20);
    if (buf)
        *len = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    if (buf)
        buf[*len] = '\0';
    return buf;
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
    snprintf(comm, sizeof(comm), "flpv%05d", (int)(getpid() % 100000));
    snprintf(sleeper, sizeof(sleeper), "%s/%s", dir, comm);
    if (copy_file("/bin/sleep", sleeper) < 0)
        return -1;
    for (int i = 0; i < N_TARGETS; i++)
        if ((targets[i] = start_target()) < 0)
            return -1;
    /* wait for the execs: before them the children are still called after us */
    for (int i = 0; i < N_TARGETS; i++) {
        char path[64], name[32] = "";
        snprintf(path, sizeof(path), "/proc/%d/comm", (int)targets[i]);
        for (int waited = 0; waited < 5000 && strncmp(name, comm, strlen(comm)) != 0;
             waited += 10) {
            FILE *f = fopen(path, "r");
            if (f) {
                if (fgets(name, sizeof(name), f) == NULL)
                    name[0] = '\0';
                fclose(f);
            }
            if (strncmp(name, comm, strlen(comm)) != 0)
                sleep_ms(10);
        }
    }
    const char *extra[] = {"--name", AGENT_NAME, NULL};
    return test_agent_start(&agent, FL_AGENT_BIN, key_path, dir, "agent", NULL, extra);
}

static int teardown(void **state)
{
    (void)state;
    int rc = 0;
    for (int i = 0; i < N_TARGETS; i++) {
        if (targets[i] > 0) {
            kill(targets[i], SIGCONT);
            kill(targets[i], SIGKILL);
            waitpid(targets[i], NULL, 0);
        }
    }
    if (agent.pid > 0 && proc_stop(agent.pid, SIGTERM, 10000) != 0)
        rc = -1;
    if (rc != 0 || getenv("FL_TEST_VERBOSE"))
        test_agent_dump_log(&agent);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = -1;
    return rc;
}

/* How many faults the agent lists, ended ones included. */
static size_t agent_fault_count(void)
{
    struct raw_peer p;
    assert_int_equal(raw_connect(&p, agent.port), 0);
    assert_int_equal(raw_handshake(&p, &key), 0);
    Faultline__ListRequest lr = FAULTLINE__LIST_REQUEST__INIT;
    lr.include_ended = 1;
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = 1;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_LIST;
    env.list = &lr;
    Faultline__Envelope *r = raw_request(&p, &env, 5000);
    assert_non_null(r);
    assert_int_equal(r->msg_case, FAULTLINE__ENVELOPE__MSG_FAULTS);
    size_t n = r->faults->n_faults;
    faultline__envelope__free_unpacked(r, NULL);
    raw_close(&p);
    return n;
}

/* Runs `faultline inject --dry-run HOST KIND selector` and checks that it
 * named every target with verb, and that nothing happened to any of them. */
static void preview_touches_nothing(const char *kind, const char *selector, const char *verb,
                                    int n_expected)
{
    unsigned long long before[N_TARGETS];
    for (int i = 0; i < N_TARGETS; i++) {
        before[i] = start_time(targets[i]);
        assert_true(before[i] != 0);
    }
    char journal[700];
    snprintf(journal, sizeof(journal), "%s/journal", agent.state_dir);
    size_t jlen0, jlen1;
    char *j0 = read_all(journal, &jlen0);
    assert_non_null(j0);

    char out[8192];
    int rc = ctl(out, sizeof(out), "inject", "--dry-run", agent.where, kind, selector, "--duration",
                 "30s", NULL);
    if (rc != 0)
        fail_msg("inject --dry-run %s %s: exit %d: %s", kind, selector, rc, out);
    int named = 0;
    for (int i = 0; i < N_TARGETS; i++) {
        char want[128];
        snprintf(want, sizeof(want), "would send %s to %s[%d] (started ", verb, comm,
                 (int)targets[i]);
        if (strstr(out, want))
            named++;
    }
    if (named != n_expected)
        fail_msg("%s %s: %d of the targets named, wanted %d:\n%s", kind, selector, named,
                 n_expected, out);
    assert_non_null(strstr(out, "dry run: nothing was injected"));

    /* give a stray signal time to land: a real SIGSTOP or SIGKILL acts within
     * the next scheduling of the target, and these are idle sleeps */
    sleep_ms(300);
    for (int i = 0; i < N_TARGETS; i++) {
        int st;
        pid_t w = waitpid(targets[i], &st, WNOHANG | WUNTRACED | WCONTINUED);
        if (w != 0)
            fail_msg("target %d changed state after a preview (waitpid %d, status 0x%x)",
                     (int)targets[i], (int)w, st);
        char s = proc_state_of(targets[i]);
        if (s != 'S' && s != 'R')
            fail_msg("target %d is in state '%c' after a preview", (int)targets[i], s ? s : '-');
        assert_true(start_time(targets[i]) == before[i]); /* the same process */
    }
    char *j1 = read_all(journal, &jlen1);
    assert_non_null(j1);
    if (jlen0 != jlen1 || memcmp(j0, j1, jlen0) != 0)
        fail_msg("the journal changed with a preview: %zu bytes, then %zu", jlen0, jlen1);
    free(j0);
    free(j1);
    assert_int_equal(agent_fault_count(), 0);
}

static void test_kill_by_name(void **state)
{
    (void)state;
    char sel[64];
    snprintf(sel, sizeof(sel), "name=%s", comm);
    preview_touches_nothing("kill_process", sel, "KILL", N_TARGETS);
}

static void test_kill_by_pattern(void **state)
{
    (void)state;
    char sel[600];
    snprintf(sel, sizeof(sel), "pattern=%s 600", sleeper);
    preview_touches_nothing("kill_process", sel, "KILL", N_TARGETS);
}

static void test_kill_by_pid_with_signal(void **state)
{
    (void)state;
    char sel[64];
    snprintf(sel, sizeof(sel), "pid=%d", (int)targets[1]);
    preview_touches_nothing("kill_process", sel, "KILL", 1);
}

static void test_pause_by_name(void **state)
{
    (void)state;
    char sel[64];
    snprintf(sel, sizeof(sel), "name=%s", comm);
    preview_touches_nothing("pause_process", sel, "STOP", N_TARGETS);
}

static void test_pause_by_pid(void **state)
{
    (void)state;
    char sel[64];
    snprintf(sel, sizeof(sel), "pid=%d", (int)targets[0]);
    preview_touches_nothing("pause_process", sel, "STOP", 1);
}

/* The preview is refused exactly as the inject is. Both are safe to run for
 * real here: they refuse before touching anything. */
static void same_refusal(const char *kind, const char *selector, const char *want)
{
    char dry[4096], real[4096];
    int rc_dry = ctl(dry, sizeof(dry), "inject", "--dry-run", agent.where, kind, selector,
                     "--duration", "30s", NULL);
    int rc_real =
        ctl(real, sizeof(real), "inject", agent.where, kind, selector, "--duration", "30s", NULL);
    if (rc_real == 0 || rc_dry != rc_real || strcmp(dry, real) != 0 || !strstr(dry, want))
        fail_msg("%s %s: --dry-run exit %d '%s', inject exit %d '%s', wanted '%s'", kind, selector,
                 rc_dry, dry, rc_real, real, want);
    assert_int_equal(agent_fault_count(), 0);
}

static void test_no_match_refused_like_inject(void **state)
{
    (void)state;
    char sel[64];
    snprintf(sel, sizeof(sel), "name=%sx", comm);
    char want[128];
    snprintf(want, sizeof(want), "no process matches name '%sx'", comm);
    same_refusal("kill_process", sel, want);
    same_refusal("pause_process", sel, want);
}

static void test_guardrail_refused_like_inject(void **state)
{
    (void)state;
    same_refusal("kill_process", "pid=1", "guardrail");
    same_refusal("pause_process", "pid=1", "guardrail");
}

/* What an agent from before PreviewRequest sees: a request field it does not
 * know. This agent answers such a request (an unknown field number, as a
 * newer controller's request would be) as every agent since protocol 2 does,
 * and the controller's rule turns that into its "too old" sentence. */
static void test_unknown_request_is_too_old(void **state)
{
    (void)state;
    struct raw_peer p;
    assert_int_equal(raw_connect(&p, agent.port), 0);
    assert_int_equal(raw_handshake(&p, &key), 0);
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = 7;
    ProtobufCMessageUnknownField uf;
    memset(&uf, 0, sizeof(uf));
    uf.tag = 200; /* a request of some future protocol */
    uf.wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
    uint8_t empty = 0; /* protobuf-c packs data as it is: here, the length 0 */
    uf.len = 1;
    uf.data = &empty;
    env.base.n_unknown_fields = 1;
    env.base.unknown_fields = &uf;
    Faultline__Envelope *r = raw_request(&p, &env, 5000);
    assert_non_null(r);
    assert_int_equal(r->id, 7);
    assert_int_equal(r->msg_case, FAULTLINE__ENVELOPE__MSG_ERROR);
    assert_int_equal(r->error->code, FAULTLINE__ERROR_CODE__ERROR_UNSUPPORTED);
    assert_true(fl_preview_agent_too_old(r->error->code, r->error->message));
    assert_string_equal(fl_preview_error_text(r->error->code, r->error->message),
                        FL_PREVIEW_TOO_OLD);
    faultline__envelope__free_unpacked(r, NULL);
    raw_close(&p);
    /* an unknown kind is a refusal, not an old agent */
    assert_false(fl_preview_agent_too_old(FAULTLINE__ERROR_CODE__ERROR_UNSUPPORTED,
                                          "unknown fault kind: this agent knows kill_process"));
}

static void test_name_in_agents(void **state)
{
    (void)state;
    char out[4096];
    int rc = ctl(out, sizeof(out), "agents", agent.where, NULL);
    if (rc != 0 || strstr(out, " " AGENT_NAME "\n") == NULL)
        fail_msg("faultline agents: exit %d, no HOST %s:\n%s", rc, AGENT_NAME, out);
}

/* ------------------------------------------------ run --dry-run's module */

struct run_preview_ctx {
    uv_loop_t loop;
    struct fl_run_preview_item items[3];
    char lines[8192];
    size_t refused;
    int done;
    int closed;
};

static void rp_line(void *arg, const char *line)
{
    struct run_preview_ctx *c = arg;
    size_t used = strlen(c->lines);
    snprintf(c->lines + used, sizeof(c->lines) - used, "%s\n", line);
}

static void rp_done(void *arg, size_t refused)
{
    struct run_preview_ctx *c = arg;
    c->refused = refused;
    c->done++;
    fl_client_close(c->items[0].client);
}

static void rp_ready(struct fl_client *cl, const Faultline__Welcome *w)
{
    struct run_preview_ctx *c = fl_client_data(cl);
    assert_string_equal(w->hostname, AGENT_NAME); /* the name run's "ready" line prints */
    c->items[0].client = c->items[1].client = cl;
    c->items[2].client = NULL; /* an agent that is not connected */
    assert_int_equal(fl_run_preview(c->items, 3, 5000, rp_line, rp_done, c), 0);
}

static void rp_closed(struct fl_client *cl, int reason)
{
    struct run_preview_ctx *c = fl_client_data(cl);
    (void)reason;
    c->closed++;
}

static void test_run_preview_module(void **state)
{
    (void)state;
    static struct run_preview_ctx c;
    memset(&c, 0, sizeof(c));
    char err[256], name[64], nomatch[64];
    snprintf(name, sizeof(name), "%s", comm);
    snprintf(nomatch, sizeof(nomatch), "%sx", comm);
    Faultline__FaultSpec *hit = fl_faultspec_new("kill_process", err, sizeof(err));
    Faultline__FaultSpec *miss = fl_faultspec_new("pause_process", err, sizeof(err));
    assert_non_null(hit);
    assert_non_null(miss);
    assert_int_equal(fl_faultspec_set(hit, "name", name, err, sizeof(err)), 0);
    assert_int_equal(fl_faultspec_set(hit, "duration", "30s", err, sizeof(err)), 0);
    assert_int_equal(fl_faultspec_set(miss, "name", nomatch, err, sizeof(err)), 0);
    assert_int_equal(fl_faultspec_set(miss, "duration", "30s", err, sizeof(err)), 0);
    struct fl_fault f_hit = {.name = arg("kill-it"), .spec = hit, .duration_ms = 30000};
    struct fl_fault f_miss = {.name = arg("pause-none"), .spec = miss, .duration_ms = 30000};
    struct fl_host h = {.name = arg("redis1"), .address = arg("127.0.0.1"), .port = agent.port};
    struct fl_host h_off = {.name = arg("redis2"), .address = arg("10.255.0.9"), .port = 7411};
    struct fl_run_fault rf[3];
    memset(rf, 0, sizeof(rf));
    rf[0].fault = &f_hit;
    rf[0].host = &h;
    rf[1].fault = &f_miss;
    rf[1].host = &h;
    rf[2].fault = &f_hit;
    rf[2].host = &h_off;
    for (int i = 0; i < 3; i++)
        c.items[i].rf = &rf[i];

    assert_int_equal(uv_loop_init(&c.loop), 0);
    static const struct fl_client_ops ops = {rp_ready, rp_closed};
    struct fl_client *cl;
    assert_int_equal(
        fl_client_connect(&c.loop, "redis1", "127.0.0.1", agent.port, &key, 5000, &ops, &c, &cl),
        0);
    uv_run(&c.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&c.loop), 0);
    fl_faultspec_free(hit);
    fl_faultspec_free(miss);

    assert_int_equal(c.done, 1);
    assert_int_equal(c.closed, 1);
    assert_int_equal(c.refused, 2);
    for (int i = 0; i < N_TARGETS; i++) {
        char want[128];
        snprintf(want, sizeof(want), "would send KILL to %s[%d] (started ", comm, (int)targets[i]);
        const char *at = strstr(c.lines, want);
        if (at == NULL || strstr(at, ") on redis1 (127.0.0.1)\n") == NULL)
            fail_msg("no line for target %d:\n%s", (int)targets[i], c.lines);
    }
    char want[256];
    snprintf(want, sizeof(want),
             "pause-none on redis1 (127.0.0.1) would be refused: no process matches name '%s'\n",
             nomatch);
    if (strstr(c.lines, want) == NULL)
        fail_msg("no refusal line:\n%s", c.lines);
    if (strstr(c.lines, "kill-it on redis2 (10.255.0.9) cannot be previewed: its agent is not "
                        "connected\n") == NULL)
        fail_msg("no line for the unconnected agent:\n%s", c.lines);
    /* in the order of the items: the hits, then the refusal, then redis2 */
    assert_true(strstr(c.lines, "would send KILL") < strstr(c.lines, "pause-none"));
    assert_true(strstr(c.lines, "pause-none") < strstr(c.lines, "redis2"));
    /* and still nothing happened */
    for (int i = 0; i < N_TARGETS; i++) {
        int st;
        assert_int_equal(waitpid(targets[i], &st, WNOHANG | WUNTRACED | WCONTINUED), 0);
    }
    assert_int_equal(agent_fault_count(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_by_name),
        cmocka_unit_test(test_kill_by_pattern),
        cmocka_unit_test(test_kill_by_pid_with_signal),
        cmocka_unit_test(test_pause_by_name),
        cmocka_unit_test(test_pause_by_pid),
        cmocka_unit_test(test_no_match_refused_like_inject),
        cmocka_unit_test(test_guardrail_refused_like_inject),
        cmocka_unit_test(test_unknown_request_is_too_old),
        cmocka_unit_test(test_name_in_agents),
        cmocka_unit_test(test_run_preview_module),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
