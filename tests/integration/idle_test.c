/* An idle agent sleeps (issue 12 item 6): with no fault and no controller,
 * neither the agent (any of its threads) nor its guardian wakes up at all.
 * A wake-up is a context switch, counted from /proc/PID/task/TID/status; a
 * process that sleeps in epoll_wait or read(2) has none, however busy the
 * machine is, so the bound is an exact 0, not a share of a core.
 *   - just started;
 *   - after a leased fault was injected, lived and was reverted, and its
 *     controller has gone (the lease check ran while the fault existed). */
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/key.h"
#include "tests/support/agent_proc.h"
#include "tests/support/proc.h"
#include "tests/support/raw_peer.h"

#define IDLE_WINDOW_MS 2000

static char dir[] = "/tmp/fl-idle-test.XXXXXX";
static char key_path[300];
static struct fl_key key;
static struct test_agent agent;

/* Context switches (voluntary + involuntary) of every thread of pid. */
static unsigned long long switches(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    assert_non_null(d);
    unsigned long long total = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char status[384], line[256];
        snprintf(status, sizeof(status), "%s/%s/status", path, e->d_name);
        FILE *f = fopen(status, "r");
        if (f == NULL)
            continue; /* a thread that just ended */
        while (fgets(line, sizeof(line), f)) {
            unsigned long long v;
            if (sscanf(line, "voluntary_ctxt_switches: %llu", &v) == 1 ||
                sscanf(line, "nonvoluntary_ctxt_switches: %llu", &v) == 1)
                total += v;
        }
        fclose(f);
    }
    closedir(d);
    return total;
}

static void assert_sleeps(const char *when)
{
    unsigned long long a0 = switches(agent.pid), g0 = switches(agent.guardian_pid);
    sleep_ms(IDLE_WINDOW_MS);
    unsigned long long a1 = switches(agent.pid), g1 = switches(agent.guardian_pid);
    fprintf(stderr, "[ measured ] idle %s: agent %llu, guardian %llu wake-ups in %u ms\n", when,
            a1 - a0, g1 - g0, IDLE_WINDOW_MS);
    if (a1 != a0 || g1 != g0)
        test_agent_dump_log(&agent);
    assert_int_equal(a1 - a0, 0);
    assert_int_equal(g1 - g0, 0);
}

static int setup(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(key_path, sizeof(key_path), "%s/key", dir);
    char err[256];
    assert_int_equal(fl_key_generate(&key), 0);
    assert_int_equal(fl_key_write(key_path, &key, false, err, sizeof(err)), 0);
    if (test_agent_start(&agent, FL_AGENT_BIN, key_path, dir, "idle", NULL, NULL) != 0)
        return -1;
    sleep_ms(300); /* past start-up's own work */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (agent.pid > 0) {
        kill(agent.pid, SIGTERM);
        waitpid(agent.pid, NULL, 0);
    }
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_idle_after_start(void **state)
{
    (void)state;
    assert_sleeps("after start");
}

static void test_idle_after_leased_fault(void **state)
{
    (void)state;
    pid_t victim = fork();
    if (victim == 0) {
        execl("/bin/sleep", "sleep", "600", (char *)NULL);
        _exit(127);
    }
    sleep_ms(20);
    struct raw_peer p;
    assert_int_equal(raw_connect(&p, agent.port), 0);
    assert_int_equal(raw_handshake(&p, &key), 0);

    /* leased (not detached): the agent checks the lease while it lives */
    Faultline__Envelope *reply = raw_inject_pause(&p, "idle", victim, 60000, false, 10000);
    assert_non_null(reply);
    assert_int_equal(reply->msg_case, FAULTLINE__ENVELOPE__MSG_INJECTED);
    char fid[32];
    snprintf(fid, sizeof(fid), "%s", reply->injected->id);
    faultline__envelope__free_unpacked(reply, NULL);

    /* the lease check runs while the fault lives: the agent is awake */
    unsigned long long a0 = switches(agent.pid);
    sleep_ms(500);
    assert_true(switches(agent.pid) > a0);

    Faultline__RevertRequest rr = FAULTLINE__REVERT_REQUEST__INIT;
    rr.fault_id = fid;
    Faultline__Envelope rev = FAULTLINE__ENVELOPE__INIT;
    rev.id = 2;
    rev.msg_case = FAULTLINE__ENVELOPE__MSG_REVERT;
    rev.revert = &rr;
    reply = raw_request(&p, &rev, 10000);
    assert_non_null(reply);
    assert_int_not_equal(reply->msg_case, FAULTLINE__ENVELOPE__MSG_ERROR);
    faultline__envelope__free_unpacked(reply, NULL);
    raw_close(&p);
    kill(victim, SIGKILL);
    waitpid(victim, NULL, 0);

    sleep_ms(500); /* the last lease check, which finds nothing leased */
    assert_sleeps("after a leased fault ended");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_after_start),
        cmocka_unit_test(test_idle_after_leased_fault),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
