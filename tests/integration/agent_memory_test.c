/* libcrypto is loaded at its first use (issue 12 item 7): an agent no
 * controller has reached, and its guardian, never map it (it was 1.4 MiB of
 * the agent's RSS and 0.5 MiB of the guardian's, bench/README.md). The first
 * handshake loads it in the agent alone; the guardian, forked before, loads
 * it only to read the journal when the agent dies, and still reverts:
 *   - just started: neither maps libcrypto;
 *   - one handshake and a detached pause: the agent maps it, the guardian
 *     does not;
 *   - the agent killed with SIGKILL: the guardian reverts the pause (the
 *     victim runs again), journals it, and exits. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/key.h"
#include "common/pbutil.h"
#include "tests/support/agent_proc.h"
#include "tests/support/proc.h"
#include "tests/support/raw_peer.h"

static char dir[] = "/tmp/fl-flar-mem-test.XXXXXX";
static char key_path[300];
static struct fl_key key;
static struct test_agent agent;
static pid_t victim = -1;

/* Does pid map libcrypto? (/proc/PID/maps) */
static int maps_libcrypto(pid_t pid)
{
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int found = 0;
    while (fgets(line, sizeof(line), f))
        found |= strstr(line, "/libcrypto.so") != NULL;
    fclose(f);
    return found;
}

static int setup(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(key_path, sizeof(key_path), "%s/key", dir);
    char err[256];
    assert_int_equal(fl_key_generate(&key), 0);
    assert_int_equal(fl_key_write(key_path, &key, false, err, sizeof(err)), 0);
    if (test_agent_start(&agent, FL_AGENT_BIN, key_path, dir, "flar-mem", NULL, NULL) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (agent.pid > 0) {
        kill(agent.pid, SIGKILL);
        waitpid(agent.pid, NULL, 0);
    }
    if (agent.guardian_pid > 0) /* gone after the test; never left behind */
        kill(agent.guardian_pid, SIGKILL);
    if (victim > 0) {
        kill(victim, SIGKILL);
        kill(victim, SIGCONT);
        waitpid(victim, NULL, 0);
    }
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_libcrypto_lazy(void **state)
{
    (void)state;
    int a = maps_libcrypto(agent.pid), g = maps_libcrypto(agent.guardian_pid);
    fprintf(stderr, "[ just started ] libcrypto mapped: agent %d, guardian %d\n", a, g);
    assert_false(a);
    assert_false(g);

    victim = fork();
    if (victim == 0) {
        execl("/bin/sleep", "sleep", "600", (char *)NULL);
        _exit(127);
    }
    sleep_ms(20);
    struct raw_peer p;
    assert_int_equal(raw_connect(&p, agent.port), 0);
    assert_int_equal(raw_handshake(&p, &key), 0);
    Faultline__ProcessSelector sel = FAULTLINE__PROCESS_SELECTOR__INIT;
    sel.by_case = FAULTLINE__PROCESS_SELECTOR__BY_PID;
    sel.pid = victim;
    Faultline__PauseProcess pp = FAULTLINE__PAUSE_PROCESS__INIT;
    pp.target = &sel;
    Faultline__FaultSpec spec = FAULTLINE__FAULT_SPEC__INIT;
    spec.name = fl_pb_str("flar-mem");
    spec.duration_ms = 600000;
    spec.kind_case = FAULTLINE__FAULT_SPEC__KIND_PAUSE_PROCESS;
    spec.pause_process = &pp;
    Faultline__InjectRequest ir = FAULTLINE__INJECT_REQUEST__INIT;
    ir.spec = &spec;
    ir.detached = 1; /* only the guardian ends it */
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = 1;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_INJECT;
    env.inject = &ir;
    Faultline__Envelope *reply = raw_request(&p, &env, 10000);
    assert_non_null(reply);
    assert_int_equal(reply->msg_case, FAULTLINE__ENVELOPE__MSG_INJECTED);
    faultline__envelope__free_unpacked(reply, NULL);
    assert_int_equal(proc_wait_state(victim, 'T', 5000), 'T');

    a = maps_libcrypto(agent.pid), g = maps_libcrypto(agent.guardian_pid);
    fprintf(stderr, "[ one handshake, one fault ] libcrypto mapped: agent %d, guardian %d\n", a, g);
    assert_true(a);
    assert_false(g); /* it loads it only to read the journal */

    kill(agent.pid, SIGKILL);
    waitpid(agent.pid, NULL, 0);
    agent.pid = -1;
    raw_close(&p);
    /* the guardian reads the journal (checksums: libcrypto), resumes the
     * victim, journals the revert and exits; generous: a busy machine */
    char st = proc_wait_state(victim, 'S', 20000);
    int gone = 0;
    for (int i = 0; i < 2000 && !gone; i++) {
        gone = kill(agent.guardian_pid, 0) != 0 && errno == ESRCH;
        if (!gone)
            sleep_ms(10);
    }
    if (st != 'S' || !gone)
        test_agent_dump_log(&agent);
    assert_int_equal(st, 'S');
    assert_true(gone);
    agent.guardian_pid = -1;

    char journal[600], buf[4096];
    snprintf(journal, sizeof(journal), "%s/journal", agent.state_dir);
    const char *rec = file_wait_for(journal, "\"op\":\"revert\"", buf, sizeof(buf), 1000);
    assert_non_null(rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_libcrypto_lazy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
