/* A full state file system never tears the journal (issue 11 item 1), with a
 * real agent and a pause_process fault on a sleeping child:
 *   - the journal write of the fault's apply record stops after k bytes, for
 *     every k (the agent's RLIMIT_FSIZE, set with prlimit(2), makes write(2)
 *     short and then fail, as a full file system does): every inject is
 *     refused, the child is never stopped, the journal keeps its length;
 *   - then one inject succeeds, the agent and its guardian are killed -9, and
 *     the next agent resumes the child (the fault was in the journal whole);
 *   - the test then stops the child itself and restarts the agent: it stays
 *     stopped (no revert is done twice);
 *   - a real full tmpfs under the state directory: the inject is refused
 *     naming "no space left on device"; with space back, it works. */
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
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/key.h"
#include "common/pbutil.h"
#include "tests/support/agent_proc.h"
#include "tests/support/proc.h"
#include "tests/support/raw_peer.h"

static char dir[] = "/tmp/fl-journal-full.XXXXXX";
static char key_path[300], journal[600], full_dir[300];
static struct fl_key key;
static struct test_agent agent;
static pid_t victim;
static int mounted;

static off_t size_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

static void stop_agent(int sig)
{
    if (agent.pid <= 0)
        return;
    if (sig == SIGKILL && agent.guardian_pid > 0)
        kill(agent.guardian_pid, SIGKILL);
    kill(agent.pid, sig);
    waitpid(agent.pid, NULL, 0);
    agent.pid = 0;
}

static void start_agent(const char *name)
{
    if (test_agent_start(&agent, FL_AGENT_BIN, key_path, dir, name, NULL, NULL) != 0) {
        test_agent_dump_log(&agent);
        fail_msg("agent did not start");
    }
    snprintf(journal, sizeof(journal), "%s/journal", agent.state_dir);
}

/* Injects a pause of the victim; the reply's error message, or "" when it
 * was injected. */
static const char *inject_pause(struct raw_peer *p, uint64_t id)
{
    static char msg[512];
    Faultline__ProcessSelector sel = FAULTLINE__PROCESS_SELECTOR__INIT;
    sel.by_case = FAULTLINE__PROCESS_SELECTOR__BY_PID;
    sel.pid = victim;
    Faultline__PauseProcess pp = FAULTLINE__PAUSE_PROCESS__INIT;
    pp.target = &sel;
    Faultline__FaultSpec spec = FAULTLINE__FAULT_SPEC__INIT;
    spec.name = fl_pb_str("journal-full");
    spec.duration_ms = 600000;
    spec.kind_case = FAULTLINE__FAULT_SPEC__KIND_PAUSE_PROCESS;
    spec.pause_process = &pp;
    Faultline__InjectRequest ir = FAULTLINE__INJECT_REQUEST__INIT;
    ir.spec = &spec;
    ir.detached = 1;
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = id;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_INJECT;
    env.inject = &ir;
    Faultline__Envelope *reply = raw_request(p, &env, 10000);
    assert_non_null(reply);
    if (reply->msg_case == FAULTLINE__ENVELOPE__MSG_INJECTED)
        msg[0] = '\0';
    else if (reply->msg_case == FAULTLINE__ENVELOPE__MSG_ERROR)
        snprintf(msg, sizeof(msg), "%s", reply->error->message);
    else
        snprintf(msg, sizeof(msg), "unexpected reply %d", (int)reply->msg_case);
    faultline__envelope__free_unpacked(reply, NULL);
    return msg;
}

static int setup(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(key_path, sizeof(key_path), "%s/key", dir);
    char err[256];
    assert_int_equal(fl_key_generate(&key), 0);
    assert_int_equal(fl_key_write(key_path, &key, false, err, sizeof(err)), 0);
    victim = fork();
    if (victim == 0) {
        execl("/bin/sleep", "sleep", "600", (char *)NULL);
        _exit(127);
    }
    sleep_ms(20);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    stop_agent(SIGKILL);
    if (victim > 0) {
        kill(victim, SIGKILL);
        waitpid(victim, NULL, 0);
    }
    if (mounted)
        umount2(full_dir, MNT_DETACH);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_write_stopped_at_every_byte(void **state)
{
    (void)state;
    start_agent("limit");
    struct raw_peer p;
    assert_int_equal(raw_connect(&p, agent.port), 0);
    assert_int_equal(raw_handshake(&p, &key), 0);
    struct rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
    uint64_t id = 1;
    unsigned refused = 0;
    for (off_t k = 0;; k++) {
        off_t before = size_of(journal);
        assert_true(before >= 0);
        struct rlimit lim = {(rlim_t)(before + k), RLIM_INFINITY};
        assert_int_equal(prlimit(agent.pid, RLIMIT_FSIZE, &lim, NULL), 0);
        const char *err = inject_pause(&p, id++);
        assert_int_equal(prlimit(agent.pid, RLIMIT_FSIZE, &unlimited, NULL), 0);
        if (err[0] == '\0') {
            /* the limit is past the whole record: it was written whole */
            assert_true(k > 0);
            assert_int_equal(proc_wait_state(victim, 'T', 1000), 'T');
            break;
        }
        refused++;
        if (strstr(err, "journal") == NULL)
            fail_msg("inject at k=%lld refused for another reason: %s", (long long)k, err);
        assert_int_equal(size_of(journal), before); /* taken back whole */
        assert_int_not_equal(proc_state_of(victim), 'T');
        assert_true(k < 4096);
    }
    fprintf(stderr, "[ measured ] %u injects refused, one at each byte of the apply record\n",
            refused);
    raw_close(&p);

    /* the fault is active and the journal whole: kill -9 everything */
    stop_agent(SIGKILL);
    assert_int_equal(proc_wait_state(victim, 'T', 1000), 'T');
    start_agent("limit");
    for (int i = 0; i < 100 && proc_state_of(victim) == 'T'; i++)
        sleep_ms(20);
    assert_int_not_equal(proc_state_of(victim), 'T');

    /* someone else stops it now: no agent start may resume it again */
    kill(victim, SIGSTOP);
    sleep_ms(50);
    stop_agent(SIGTERM);
    start_agent("limit");
    sleep_ms(200);
    assert_int_equal(proc_wait_state(victim, 'T', 1000), 'T');
    stop_agent(SIGKILL);
    start_agent("limit");
    sleep_ms(200);
    assert_int_equal(proc_wait_state(victim, 'T', 1000), 'T');
    kill(victim, SIGCONT);
    stop_agent(SIGTERM);
}

static void test_full_tmpfs(void **state)
{
    (void)state;
    snprintf(full_dir, sizeof(full_dir), "%s/state-full", dir);
    assert_int_equal(mkdir(full_dir, 0700), 0);
    assert_int_equal(mount("fl-journal-full", full_dir, "tmpfs", 0, "size=1m,mode=0700"), 0);
    mounted = 1;
    start_agent("full");
    char filler[700];
    snprintf(filler, sizeof(filler), "%s/filler", full_dir);
    int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    static char block[4096];
    while (write(fd, block, sizeof(block)) > 0)
        ;
    assert_int_equal(errno, ENOSPC);
    close(fd);

    struct raw_peer p;
    assert_int_equal(raw_connect(&p, agent.port), 0);
    assert_int_equal(raw_handshake(&p, &key), 0);
    off_t before = size_of(journal);
    const char *err = inject_pause(&p, 1);
    if (strstr(err, "no space left on device") == NULL)
        fail_msg("inject on a full file system (journal %lld bytes): \"%s\"", (long long)before,
                 err);
    assert_int_equal(size_of(journal), before);
    assert_int_not_equal(proc_state_of(victim), 'T');

    unlink(filler);
    err = inject_pause(&p, 2);
    assert_string_equal(err, "");
    assert_int_equal(proc_wait_state(victim, 'T', 1000), 'T');
    raw_close(&p);
    stop_agent(SIGKILL); /* agent and guardian */
    start_agent("full");
    for (int i = 0; i < 100 && proc_state_of(victim) == 'T'; i++)
        sleep_ms(20);
    assert_int_not_equal(proc_state_of(victim), 'T');
    pid_t guardian = agent.guardian_pid;
    stop_agent(SIGTERM);
    for (int i = 0; i < 250 && guardian > 0 && kill(guardian, 0) == 0; i++)
        sleep_ms(20); /* it holds the state directory until it has gone */
    assert_int_equal(umount2(full_dir, 0), 0);
    mounted = 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_stopped_at_every_byte),
        cmocka_unit_test(test_full_tmpfs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
