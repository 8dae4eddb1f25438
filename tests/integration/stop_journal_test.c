/* A clean stop compacts the journal only once no journal write is in flight
 * (issue 11, review of registry.c). The attack: a fault is applied while the
 * state directory's file system is frozen (fsfreeze), so the journal record
 * of what its apply learnt (the update record) hangs in fdatasync; the agent
 * is told to stop, the fault's revert fails (test_fault, told to fail
 * forever) and it is left in the journal. The stop's compaction used to run
 * at that moment, with the update still in flight, and its assert killed the
 * agent. Now the stop waits for the write: the agent keeps running while the
 * file system is frozen, and once it is thawed it compacts, keeps the fault
 * in the journal, and exits 0.
 *
 * Two small ext4 images on loop devices, both under the test's own
 * directory: the state directory's, and the marker's (frozen first, so that
 * apply -- which writes the marker -- is still running when the state file
 * system is frozen). The teardown thaws both and unmounts them whatever
 * happened. Needs root (mount, fsfreeze). */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/journal.h"
#include "common/key.h"
#include "common/pbutil.h"
#include "tests/support/agent_proc.h"
#include "tests/support/proc.h"
#include "tests/support/raw_peer.h"

static char dir[] = "/tmp/fl-guard-stop-test.XXXXXX";
static char state_mnt[200], marker_mnt[200], control[200], marker[250];
static bool state_mounted, marker_mounted;
static char key_path[300];
static struct fl_key key;
static struct test_agent agent;

static char *arg(const char *a)
{
    return (char *)(uintptr_t)a;
}

static int run(const char *a0, const char *a1, const char *a2, const char *a3, const char *a4)
{
    char *argv[] = {arg(a0), arg(a1), arg(a2), arg(a3), arg(a4), NULL};
    char out[1024];
    int rc = proc_run(argv, out, sizeof(out), 30000);
    if (rc != 0)
        fprintf(stderr, "%s %s %s: exit %d: %s\n", a0, a1, a2 ? a2 : "", rc, out);
    return rc;
}

static int make_fs(const char *name, const char *mnt, bool *mounted)
{
    char img[250];
    snprintf(img, sizeof(img), "%s/%s.img", dir, name);
    if (truncate(img, 0) != 0 && errno != ENOENT)
        return -1;
    FILE *f = fopen(img, "w");
    if (f == NULL || fclose(f) != 0 || truncate(img, 32 << 20) != 0)
        return -1;
    if (run("/usr/sbin/mkfs.ext4", "-q", "-F", img, NULL) != 0 || mkdir(mnt, 0700) != 0)
        return -1;
    if (run("/usr/bin/mount", "-o", "loop", img, mnt) != 0)
        return -1;
    *mounted = true;
    return chmod(mnt, 0700);
}

static void thaw(const char *mnt, bool mounted)
{
    if (!mounted)
        return;
    char *argv[] = {arg("/usr/sbin/fsfreeze"), arg("-u"), arg(mnt), NULL};
    char out[256];
    proc_run(argv, out, sizeof(out), 10000); /* not frozen: fails, fine */
}

static void unmount(const char *mnt, bool *mounted)
{
    if (!*mounted)
        return;
    thaw(mnt, true);
    if (umount2(mnt, 0) != 0)
        umount2(mnt, MNT_DETACH); /* the loop device goes with the last user */
    *mounted = false;
}

static int group_setup(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        fprintf(stderr, "stop_journal_test needs root: it mounts file systems\n");
        return -1;
    }
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(key_path, sizeof(key_path), "%s/faultline.key", dir);
    char out[512], err[256];
    char *kg[] = {arg(FL_CTL_BIN), arg("keygen"), key_path, NULL};
    if (proc_run(kg, out, sizeof(out), 5000) != 0 || fl_key_load(key_path, &key, err, sizeof(err)))
        return -1;
    /* test_agent_start puts the state directory at DIR/state-NAME */
    snprintf(state_mnt, sizeof(state_mnt), "%s/state-stop", dir);
    snprintf(marker_mnt, sizeof(marker_mnt), "%s/markers", dir);
    snprintf(control, sizeof(control), "%s/control", dir);
    snprintf(marker, sizeof(marker), "%s/marker", marker_mnt);
    if (make_fs("state", state_mnt, &state_mounted) != 0 ||
        make_fs("markers", marker_mnt, &marker_mounted) != 0)
        return -1;
    return 0;
}

static void set_control(const char *word)
{
    FILE *c = fopen(control, "w");
    assert_non_null(c);
    fprintf(c, "%s\n", word);
    assert_int_equal(fclose(c), 0);
}

static int group_teardown(void **state)
{
    (void)state;
    thaw(marker_mnt, marker_mounted);
    thaw(state_mnt, state_mounted);
    int rc = 0;
    FILE *c = fopen(control, "w"); /* let the guardian's revert succeed */
    if (c) {
        fputs("0\n", c);
        fclose(c);
    }
    if (agent.pid > 0 && proc_stop(agent.pid, SIGTERM, 15000) != 0)
        rc = -1;
    for (int i = 0; i < 250 && agent.guardian_pid > 0; i++) {
        char st = proc_state_of(agent.guardian_pid);
        if (st == 0 || st == 'Z')
            break;
        sleep_ms(20);
    }
    if (agent.guardian_pid > 0 && proc_state_of(agent.guardian_pid) != 0 &&
        proc_state_of(agent.guardian_pid) != 'Z')
        kill(agent.guardian_pid, SIGKILL);
    unlink(marker);
    unmount(marker_mnt, &marker_mounted);
    unmount(state_mnt, &state_mounted);
    char *rm[] = {arg("/bin/rm"), arg("-rf"), dir, NULL};
    char out[256];
    return proc_run(rm, out, sizeof(out), 10000) == 0 ? rc : -1;
}

/* The id of the fault the log shows moving to applying; 0 once found. */
static int applying_id(char *id, size_t cap)
{
    char buf[1 << 16];
    const char *at = file_wait_for(agent.log, " -> applying", buf, sizeof(buf), 10000);
    if (at == NULL)
        return -1;
    const char *p = strstr(buf, "fault f-");
    if (p == NULL)
        return -1;
    p += strlen("fault ");
    size_t n = strcspn(p, ":");
    if (n >= cap)
        return -1;
    memcpy(id, p, n);
    id[n] = '\0';
    return 0;
}

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

static void test_stop_waits_for_journal(void **state)
{
    (void)state;
    if (test_agent_start(&agent, FL_AGENT_TEST_BIN, key_path, dir, "stop", NULL, NULL) != 0) {
        test_agent_dump_log(&agent);
        fail();
    }
    set_control("forever");
    /* apply will hang writing the marker */
    assert_int_equal(run("/usr/sbin/fsfreeze", "-f", marker_mnt, NULL, NULL), 0);

    struct raw_peer p;
    assert_int_equal(raw_connect(&p, agent.port), 0);
    assert_int_equal(raw_handshake(&p, &key), 0);
    Faultline__TestFault tf = FAULTLINE__TEST_FAULT__INIT;
    tf.control = control;
    tf.marker = marker;
    Faultline__FaultSpec spec = FAULTLINE__FAULT_SPEC__INIT;
    spec.name = arg("stop");
    spec.duration_ms = 600000;
    spec.kind_case = FAULTLINE__FAULT_SPEC__KIND_TEST_FAULT;
    spec.test_fault = &tf;
    Faultline__InjectRequest ir = FAULTLINE__INJECT_REQUEST__INIT;
    ir.spec = &spec;
    ir.detached = 1;
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = 1;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_INJECT;
    env.inject = &ir;
    uint8_t buf[4096];
    size_t n = raw_seal(&p, &env, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(raw_send_bytes(&p, buf, n), 0);

    /* its apply record is on disk and apply hangs: freeze the journal's
     * file system, then stop the agent and let apply finish */
    char id[64];
    assert_int_equal(applying_id(id, sizeof(id)), 0);
    assert_int_equal(run("/usr/sbin/fsfreeze", "-f", state_mnt, NULL, NULL), 0);
    assert_int_equal(kill(agent.pid, SIGTERM), 0);
    sleep_ms(200);
    assert_int_equal(run("/usr/sbin/fsfreeze", "-u", marker_mnt, NULL, NULL), 0);
    raw_close(&p);

    /* the revert fails its tries and the fault is left for the journal,
     * whose update record is still hanging */
    char logbuf[1 << 16];
    assert_non_null(file_wait_for(agent.log, "left in the journal for the guardian", logbuf,
                                  sizeof(logbuf), 20000));
    /* the stop waits for the write: the agent is still there */
    int st = proc_wait(agent.pid, 1000);
    if (st != -1) {
        fprintf(stderr, "the agent exited with %d while a journal write was in flight\n", st);
        agent.pid = 0;
        test_agent_dump_log(&agent);
    }
    assert_int_equal(st, -1);

    /* thawed: it compacts, keeping the fault, and exits cleanly */
    assert_int_equal(run("/usr/sbin/fsfreeze", "-u", state_mnt, NULL, NULL), 0);
    st = proc_wait(agent.pid, 15000);
    agent.pid = 0;
    if (st != 0)
        test_agent_dump_log(&agent);
    assert_int_equal(st, 0);
    assert_true(journal_holds(id));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stop_waits_for_journal),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
