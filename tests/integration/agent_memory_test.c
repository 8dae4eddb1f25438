/* libcrypto is loaded at its first use (issue 12 item 7): an agent no
 * controller has reached, and its guardian, never map it (it was 1.4 MiB of
 * the agent's RSS and 0.5 MiB of the guardian's, bench/README.md). The first
 * handshake loads it in the agent alone; the guardian, forked before, loads
 * it only to read the journal when the agent dies, and still reverts:
 *   - just started: neither maps libcrypto;
 *   - one handshake and a detached pause: the agent maps it, the guardian
 *     does not;
 *   - the agent killed with SIGKILL: the guardian reverts the pause (the
 *     victim runs again), journals it, and exits;
 *   - a journal that names an active fault, read on a host where libcrypto
 *     cannot be loaded (an empty file bind-mounted over it in a mount
 *     namespace of the agent's own): the agent refuses to start, naming the
 *     library, and leaves the journal as it is (its records cannot be
 *     checked, which is not the same as damaged); with the library back,
 *     the next start reverts the fault. */
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

#include "agent/journal.h"
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
static struct test_agent agent2;
static pid_t victim2 = -1;

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
    if (agent2.pid > 0) {
        kill(agent2.pid, SIGKILL);
        waitpid(agent2.pid, NULL, 0);
    }
    if (agent2.guardian_pid > 0)
        kill(agent2.guardian_pid, SIGKILL);
    pid_t victims[] = {victim, victim2};
    for (size_t i = 0; i < 2; i++) {
        if (victims[i] > 0) {
            kill(victims[i], SIGKILL);
            kill(victims[i], SIGCONT);
            waitpid(victims[i], NULL, 0);
        }
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
    /* detached: only the guardian ends it */
    Faultline__Envelope *reply = raw_inject_pause(&p, "flar-mem", victim, 600000, true, 10000);
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

/* Where the dynamic linker finds libcrypto.so.3, or "" */
static void libcrypto_path(char *out, size_t cap)
{
    static const char *const dirs[] = {"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
                                       "/usr/lib64", "/usr/lib", "/lib/x86_64-linux-gnu"};
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        char p[256];
        snprintf(p, sizeof(p), "%s/libcrypto.so.3", dirs[i]);
        char *real = realpath(p, NULL);
        if (real != NULL) {
            snprintf(out, cap, "%s", real);
            free(real);
            return;
        }
    }
}

static size_t journal_active(const char *state_dir)
{
    char path[600], err[512];
    snprintf(path, sizeof(path), "%s/journal", state_dir);
    json_t *active = NULL;
    assert_int_equal(fl_journal_read_active(path, &active, err, sizeof(err)), 0);
    size_t n = json_array_size(active);
    json_decref(active);
    return n;
}

static void test_journal_kept_without_libcrypto(void **state)
{
    (void)state;
    char lib[256], empty[400], wrapper[400];
    libcrypto_path(lib, sizeof(lib));
    if (lib[0] == '\0')
        skip();
    assert_int_equal(
        test_agent_start(&agent2, FL_AGENT_BIN, key_path, dir, "flar-nocrypto", NULL, NULL), 0);
    victim2 = fork();
    if (victim2 == 0) {
        execl("/bin/sleep", "sleep", "600", (char *)NULL);
        _exit(127);
    }
    sleep_ms(20);
    struct raw_peer p;
    assert_int_equal(raw_connect(&p, agent2.port), 0);
    assert_int_equal(raw_handshake(&p, &key), 0);
    Faultline__ProcessSelector sel = FAULTLINE__PROCESS_SELECTOR__INIT;
    sel.by_case = FAULTLINE__PROCESS_SELECTOR__BY_PID;
    sel.pid = victim2;
    Faultline__PauseProcess pp = FAULTLINE__PAUSE_PROCESS__INIT;
    pp.target = &sel;
    Faultline__FaultSpec spec = FAULTLINE__FAULT_SPEC__INIT;
    spec.name = fl_pb_str("flar-nocrypto");
    spec.duration_ms = 600000;
    spec.kind_case = FAULTLINE__FAULT_SPEC__KIND_PAUSE_PROCESS;
    spec.pause_process = &pp;
    Faultline__InjectRequest ir = FAULTLINE__INJECT_REQUEST__INIT;
    ir.spec = &spec;
    ir.detached = 1;
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = 1;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_INJECT;
    env.inject = &ir;
    Faultline__Envelope *reply = raw_request(&p, &env, 10000);
    assert_non_null(reply);
    assert_int_equal(reply->msg_case, FAULTLINE__ENVELOPE__MSG_INJECTED);
    faultline__envelope__free_unpacked(reply, NULL);
    raw_close(&p);
    assert_int_equal(proc_wait_state(victim2, 'T', 5000), 'T');

    /* agent and guardian die together: the journal alone remembers */
    kill(agent2.guardian_pid, SIGKILL);
    kill(agent2.pid, SIGKILL);
    waitpid(agent2.pid, NULL, 0);
    agent2.pid = -1;
    for (int i = 0; i < 500 && kill(agent2.guardian_pid, 0) == 0; i++)
        sleep_ms(10);
    agent2.guardian_pid = -1;
    assert_int_equal(journal_active(agent2.state_dir), 1);

    snprintf(empty, sizeof(empty), "%s/empty.so", dir);
    snprintf(wrapper, sizeof(wrapper), "%s/no-libcrypto.sh", dir);
    FILE *f = fopen(empty, "w");
    assert_non_null(f);
    fclose(f);
    f = fopen(wrapper, "w");
    assert_non_null(f);
    fprintf(f,
            "#!/bin/sh\n"
            "exec /usr/bin/unshare -m --propagation private /bin/sh -c "
            "'mount --bind %s %s && exec \"$@\"' sh %s \"$@\"\n",
            empty, lib, FL_AGENT_BIN);
    fclose(f);
    assert_int_equal(chmod(wrapper, 0755), 0);
    char *argv[] = {wrapper,       "--key",       key_path,         "--listen",
                    "127.0.0.1:0", "--state-dir", agent2.state_dir, NULL};
    char out[8192];
    memset(out, 0, sizeof(out)); /* proc_run ends it only when the process does */
    /* it must refuse at once; one that started and listens is killed at the
     * deadline (-1) */
    int rc = proc_run(argv, out, sizeof(out), 20000);
    size_t left = journal_active(agent2.state_dir);
    fprintf(stderr, "[ no libcrypto ] start: status %d, journal active %zu; output:\n%s", rc, left,
            out);
    assert_int_not_equal(rc, 0);
    assert_int_not_equal(rc, -1);
    assert_non_null(strstr(out, "libcrypto.so.3"));
    assert_int_equal(left, 1);
    assert_int_equal(proc_state_of(victim2), 'T');

    /* the library back: the next start reverts it */
    assert_int_equal(
        test_agent_start(&agent2, FL_AGENT_BIN, key_path, dir, "flar-nocrypto", NULL, NULL), 0);
    assert_int_equal(proc_wait_state(victim2, 'S', 20000), 'S');
    assert_int_equal(journal_active(agent2.state_dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_libcrypto_lazy),
        cmocka_unit_test(test_journal_kept_without_libcrypto),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
