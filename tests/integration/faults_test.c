/* Faults through the real binaries: inject and revert by hand, expiry,
 * guardrails, the lease of a silent controller, and crash safety (kill -9 of
 * the agent, then of the agent and its guardian). Targets are processes this
 * test starts. */
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
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/clock.h"
#include "common/key.h"
#include "common/pbutil.h"
#include "tests/support/agent_proc.h"
#include "tests/support/proc.h"
#include "tests/support/raw_peer.h"

static char dir[] = "/tmp/fl-faults-test.XXXXXX";
static char key_path[300];
static struct fl_key key;
static struct test_agent agent;

static char *arg(const char *a)
{
    return (char *)(uintptr_t)a;
}

/* A target process: sleep, in its own process group. */
static pid_t start_target(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        execl("/bin/sleep", "sleep", "600", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void stop_target(pid_t pid)
{
    kill(pid, SIGCONT);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* Waits up to ms for pid's state to become want; returns the last state. */
static char wait_state(pid_t pid, char want, int ms)
{
    char st = proc_state_of(pid);
    for (int waited = 0; st != want && st != 0 && waited < ms; waited += 10) {
        sleep_ms(10);
        st = proc_state_of(pid);
    }
    return st;
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

/* The main agent's lease, and how often the agent looks at leases
 * (LEASE_CHECK_MS in agent/registry.c). */
#define LEASE_MS 2000
#define LEASE_CHECK_MS 200

static int start_main_agent(void)
{
    const char *extra[] = {"--lease", "2s", NULL}; /* LEASE_MS */
    return test_agent_start(&agent, FL_AGENT_BIN, key_path, dir, "agent", NULL, extra);
}

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(key_path, sizeof(key_path), "%s/faultline.key", dir);
    char out[512];
    char *kg[] = {arg(FL_CTL_BIN), arg("keygen"), key_path, NULL};
    char err[256];
    if (proc_run(kg, out, sizeof(out), 5000) != 0 || fl_key_load(key_path, &key, err, sizeof(err)))
        return -1;
    return start_main_agent();
}

static int teardown(void **state)
{
    (void)state;
    int rc = 0;
    if (agent.pid > 0 && proc_stop(agent.pid, SIGTERM, 10000) != 0)
        rc = -1;
    /* the guardian must go with a clean stop (a zombie has gone: whether
     * init reaps it is init's business) */
    char gst = wait_state(agent.guardian_pid, 'Z', 3000);
    if (agent.guardian_pid > 0 && gst != 'Z' && gst != 0) {
        fprintf(stderr, "the guardian is still running after a clean stop\n");
        rc = -1;
    }
    if (rc != 0 || getenv("FL_TEST_VERBOSE"))
        test_agent_dump_log(&agent);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = -1;
    return rc;
}

static void test_pause_and_revert(void **state)
{
    (void)state;
    pid_t t = start_target();
    char pid[16], out[8192];
    snprintf(pid, sizeof(pid), "pid=%d", (int)t);
    assert_int_equal(ctl(out, sizeof(out), "inject", agent.where, "pause_process", pid,
                         "--duration", "30s", NULL),
                     0);
    assert_int_equal(wait_state(t, 'T', 1000), 'T');
    char id[64];
    assert_int_equal(sscanf(out, "%63s", id), 1);
    assert_int_equal(strncmp(id, "f-", 2), 0);

    /* listed by agents, then reverted by id */
    assert_int_equal(ctl(out, sizeof(out), "agents", agent.where, NULL), 0);
    assert_non_null(strstr(out, id));
    assert_non_null(strstr(out, "pause_process"));
    assert_int_equal(ctl(out, sizeof(out), "revert", agent.where, id, NULL), 0);
    assert_int_equal(wait_state(t, 'S', 1000), 'S');
    /* again: a success, that says it had ended */
    assert_int_equal(ctl(out, sizeof(out), "revert", agent.where, id, NULL), 0);
    assert_non_null(strstr(out, "reverted"));
    stop_target(t);
}

static void test_duration_ends_it(void **state)
{
    (void)state;
    pid_t t = start_target();
    char pid[16], out[4096];
    snprintf(pid, sizeof(pid), "pid=%d", (int)t);
    const uint64_t duration_ms = 700;
    uint64_t t0 = fl_mono_ms();
    assert_int_equal(ctl(out, sizeof(out), "inject", agent.where, "pause_process", pid,
                         "--duration", "700ms", NULL),
                     0);
    assert_int_equal(wait_state(t, 'T', 1000), 'T');
    uint64_t paused = fl_mono_ms();
    assert_int_equal(wait_state(t, 'S', 3000), 'S');
    uint64_t resumed = fl_mono_ms();
    fprintf(stderr, "duration: resumed %llu ms after the inject, %llu ms after the pause\n",
            (unsigned long long)(resumed - t0), (unsigned long long)(resumed - paused));
    /* never before the duration; and the duration ended it, within one more
     * duration of the pause, which also rules out the lease (LEASE_MS) */
    assert_true(resumed - t0 >= duration_ms - 50);
    assert_true(resumed - paused < 2 * duration_ms);
    stop_target(t);
}

static void test_kill_once_and_no_match(void **state)
{
    (void)state;
    pid_t t = start_target();
    char pid[16], out[4096];
    snprintf(pid, sizeof(pid), "pid=%d", (int)t);
    assert_int_equal(ctl(out, sizeof(out), "inject", agent.where, "kill_process", pid,
                         "signal=TERM", "--duration", "1s", NULL),
                     0);
    int st;
    assert_int_equal(waitpid(t, &st, 0), t);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);

    assert_int_equal(ctl(out, sizeof(out), "inject", agent.where, "kill_process",
                         "name=no-such-process-xyz", "--duration", "1s", NULL),
                     2);
    assert_non_null(strstr(out, "no process matches"));
}

/* Sends kill_process with sig straight to the agent, past the controller's
 * own check, and returns the agent's reply (the caller frees it). */
static Faultline__Envelope *raw_kill(pid_t target, int sig)
{
    struct raw_peer p;
    assert_int_equal(raw_connect(&p, agent.port), 0);
    assert_int_equal(raw_handshake(&p, &key), 0);
    Faultline__ProcessSelector sel = FAULTLINE__PROCESS_SELECTOR__INIT;
    sel.by_case = FAULTLINE__PROCESS_SELECTOR__BY_PID;
    sel.pid = target;
    Faultline__KillProcess kp = FAULTLINE__KILL_PROCESS__INIT;
    kp.target = &sel;
    kp.signal = sig;
    Faultline__FaultSpec spec = FAULTLINE__FAULT_SPEC__INIT;
    spec.name = fl_pb_str("raw-kill");
    spec.duration_ms = 1000;
    spec.kind_case = FAULTLINE__FAULT_SPEC__KIND_KILL_PROCESS;
    spec.kill_process = &kp;
    Faultline__InjectRequest ir = FAULTLINE__INJECT_REQUEST__INIT;
    ir.spec = &spec;
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = 1;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_INJECT;
    env.inject = &ir;
    uint8_t buf[1024];
    size_t n = raw_seal(&p, &env, buf, sizeof(buf));
    assert_int_equal(raw_send_bytes(&p, buf, n), 0);
    Faultline__Envelope *reply = raw_recv_envelope(&p, 3000);
    raw_close(&p);
    assert_non_null(reply);
    return reply;
}

/* Every stop signal is refused by the agent itself, not only by the
 * controller: kill_process has nothing to undo, so the target would stay
 * stopped after the fault. */
static void test_kill_refuses_stop_signals(void **state)
{
    (void)state;
    static const int stops[] = {SIGTSTP, SIGTTIN, SIGTTOU, SIGSTOP, SIGCONT};
    pid_t t = start_target();
    for (size_t i = 0; i < sizeof(stops) / sizeof(stops[0]); i++) {
        Faultline__Envelope *reply = raw_kill(t, stops[i]);
        if (reply->msg_case != FAULTLINE__ENVELOPE__MSG_ERROR)
            fail_msg("signal %d: the agent did not refuse it (reply %d)", stops[i],
                     (int)reply->msg_case);
        assert_non_null(strstr(reply->error->message, "pause_process"));
        faultline__envelope__free_unpacked(reply, NULL);
        sleep_ms(50);
        assert_int_equal(proc_state_of(t), 'S'); /* never stopped */
    }
    /* the same path carries a signal kill_process does send */
    Faultline__Envelope *reply = raw_kill(t, SIGTERM);
    assert_int_equal(reply->msg_case, FAULTLINE__ENVELOPE__MSG_INJECTED);
    faultline__envelope__free_unpacked(reply, NULL);
    int st;
    assert_int_equal(waitpid(t, &st, 0), t);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
}

/* `validate` and `run --dry-run` refuse a key_file that is a directory or a
 * FIFO, and an experiment that is a FIFO, as an invalid file (64), at once. */
static void test_cli_refuses_not_regular_files(void **state)
{
    (void)state;
    char exp_path[400], keydir[400], fifo[400], out[4096];
    snprintf(keydir, sizeof(keydir), "%s/keydir", dir);
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    snprintf(exp_path, sizeof(exp_path), "%s/e.yaml", dir);
    assert_int_equal(mkdir(keydir, 0700), 0);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    static const char *const key_files[] = {"keydir", "fifo"};
    for (size_t i = 0; i < 2; i++) {
        FILE *f = fopen(exp_path, "w");
        assert_non_null(f);
        fprintf(f,
                "version: 1\n"
                "name: t\n"
                "inventory:\n"
                "  key_file: %s\n"
                "  hosts: { web1: { address: 127.0.0.1 } }\n"
                "probes: [ { name: p, tcp: { address: \"127.0.0.1:9\" } } ]\n"
                "faults:\n"
                "  - name: k\n"
                "    target: { hosts: [web1] }\n"
                "    kill_process: { name: no-such-process-xyz }\n"
                "    duration: 1s\n",
                key_files[i]);
        assert_int_equal(fclose(f), 0);
        char *validate[] = {arg(FL_CTL_BIN), arg("validate"), exp_path, NULL};
        assert_int_equal(proc_run(validate, out, sizeof(out), 10000), 64);
        assert_non_null(strstr(out, ", not a regular file"));
        assert_non_null(strstr(out, key_files[i]));
        char *dry[] = {arg(FL_CTL_BIN), arg("run"), arg("--dry-run"), exp_path, NULL};
        assert_int_equal(proc_run(dry, out, sizeof(out), 10000), 64);
        assert_non_null(strstr(out, ", not a regular file"));
    }
    /* the experiment itself a FIFO: refused, not waited on */
    char *validate[] = {arg(FL_CTL_BIN), arg("validate"), fifo, NULL};
    assert_int_equal(proc_run(validate, out, sizeof(out), 10000), 64);
    assert_non_null(strstr(out, "is a FIFO, not a regular file"));
    unlink(exp_path);
    unlink(fifo);
    rmdir(keydir);
}

/* A restart storm: whatever matches the pattern is killed again and again. */
static void test_kill_repeat(void **state)
{
    (void)state;
    char out[4096];
    /* a marker no other process has: sleep's argument */
    assert_int_equal(ctl(out, sizeof(out), "inject", agent.where, "kill_process",
                         "pattern=sleep 601", "mode=repeat", "every=50ms", "--duration", "2s",
                         NULL),
                     2); /* nothing matches yet: refused */
    pid_t first = fork();
    if (first == 0) {
        execl("/bin/sleep", "sleep", "601", (char *)NULL);
        _exit(127);
    }
    sleep_ms(50);
    assert_int_equal(ctl(out, sizeof(out), "inject", agent.where, "kill_process",
                         "pattern=sleep 601", "mode=repeat", "every=50ms", "--duration", "2s",
                         NULL),
                     0);
    waitpid(first, NULL, 0);
    /* each restart is killed within a few periods, not at the storm's end
     * nor never: 20 periods leaves 5 restarts inside the 2 s storm */
    const uint64_t every_ms = 50;
    uint64_t slowest = 0;
    for (int i = 0; i < 5; i++) {
        pid_t again = fork();
        if (again == 0) {
            execl("/bin/sleep", "sleep", "601", (char *)NULL);
            _exit(127);
        }
        uint64_t t0 = fl_mono_ms();
        waitpid(again, NULL, 0);
        uint64_t took = fl_mono_ms() - t0;
        slowest = took > slowest ? took : slowest;
        assert_true(took < 20 * every_ms);
    }
    fprintf(stderr, "kill repeat: slowest restart killed after %llu ms (every %llu ms)\n",
            (unsigned long long)slowest, (unsigned long long)every_ms);
    /* after the storm, a new one lives */
    sleep_ms(2300);
    pid_t last = fork();
    if (last == 0) {
        execl("/bin/sleep", "sleep", "601", (char *)NULL);
        _exit(127);
    }
    sleep_ms(300);
    assert_int_equal(waitpid(last, NULL, WNOHANG), 0);
    stop_target(last);
}

static void test_guardrails(void **state)
{
    (void)state;
    char out[4096], arg1[64];
    struct {
        const char *kind, *param;
        const char *expect;
    } cases[] = {
        {"kill_process", "pid=1", "guardrail"},
        {"pause_process", "name=sshd", NULL}, /* sshd may not run here: guardrail or no match */
        {"kill_process", "name=fl-guardian", NULL}, /* skipped: matches nothing */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = ctl(out, sizeof(out), "inject", agent.where, cases[i].kind, cases[i].param,
                     "--duration", "1s", NULL);
        assert_int_not_equal(rc, 0);
        if (cases[i].expect)
            assert_non_null(strstr(out, cases[i].expect));
    }
    snprintf(arg1, sizeof(arg1), "pid=%d", (int)agent.pid);
    assert_int_equal(ctl(out, sizeof(out), "inject", agent.where, "kill_process", arg1,
                         "--duration", "1s", NULL),
                     2);
    assert_non_null(strstr(out, "this agent"));
    snprintf(arg1, sizeof(arg1), "pid=%d", (int)agent.guardian_pid);
    assert_int_equal(ctl(out, sizeof(out), "inject", agent.where, "pause_process", arg1,
                         "--duration", "1s", NULL),
                     2);
    assert_non_null(strstr(out, "guardian"));
    assert_int_equal(kill(agent.pid, 0), 0);
    assert_int_equal(proc_state_of(agent.guardian_pid), 'S');
    /* over the agent's maximum duration */
    pid_t t = start_target();
    snprintf(arg1, sizeof(arg1), "pid=%d", (int)t);
    assert_int_equal(ctl(out, sizeof(out), "inject", agent.where, "pause_process", arg1,
                         "--duration", "2h", NULL),
                     2);
    assert_non_null(strstr(out, "max_duration"));
    assert_int_equal(proc_state_of(t), 'S');
    stop_target(t);
}

/* Injects through a hand-driven session that is not detached: its lease. */
static struct raw_peer *leased_inject(pid_t target)
{
    static struct raw_peer p;
    assert_int_equal(raw_connect(&p, agent.port), 0);
    assert_int_equal(raw_handshake(&p, &key), 0);
    Faultline__ProcessSelector sel = FAULTLINE__PROCESS_SELECTOR__INIT;
    sel.by_case = FAULTLINE__PROCESS_SELECTOR__BY_PID;
    sel.pid = target;
    Faultline__PauseProcess pp = FAULTLINE__PAUSE_PROCESS__INIT;
    pp.target = &sel;
    Faultline__FaultSpec spec = FAULTLINE__FAULT_SPEC__INIT;
    spec.name = fl_pb_str("leased");
    spec.duration_ms = 60000;
    spec.kind_case = FAULTLINE__FAULT_SPEC__KIND_PAUSE_PROCESS;
    spec.pause_process = &pp;
    Faultline__InjectRequest ir = FAULTLINE__INJECT_REQUEST__INIT;
    ir.spec = &spec;
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = 1;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_INJECT;
    env.inject = &ir;
    uint8_t buf[1024];
    size_t n = raw_seal(&p, &env, buf, sizeof(buf));
    assert_int_equal(raw_send_bytes(&p, buf, n), 0);
    Faultline__Envelope *reply = raw_recv_envelope(&p, 3000);
    assert_non_null(reply);
    assert_int_equal(reply->msg_case, FAULTLINE__ENVELOPE__MSG_INJECTED);
    faultline__envelope__free_unpacked(reply, NULL);
    return &p;
}

static void heartbeat(struct raw_peer *p, uint64_t id)
{
    Faultline__Heartbeat hb = FAULTLINE__HEARTBEAT__INIT;
    hb.sent_at_ms = fl_now_ms();
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = id;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_HEARTBEAT;
    env.heartbeat = &hb;
    uint8_t buf[256];
    size_t n = raw_seal(p, &env, buf, sizeof(buf));
    assert_int_equal(raw_send_bytes(p, buf, n), 0);
    Faultline__Envelope *ack = raw_recv_envelope(p, 2000);
    assert_non_null(ack);
    assert_int_equal(ack->msg_case, FAULTLINE__ENVELOPE__MSG_HEARTBEAT_ACK);
    faultline__envelope__free_unpacked(ack, NULL);
}

static void test_lease(void **state)
{
    (void)state;
    /* heartbeats keep the fault past its lease (2 s) */
    pid_t t = start_target();
    struct raw_peer *p = leased_inject(t);
    assert_int_equal(wait_state(t, 'T', 1000), 'T');
    uint64_t last_sent = 0;
    for (int i = 0; i < 8; i++) {
        sleep_ms(500);
        last_sent = fl_mono_ms();
        heartbeat(p, (uint64_t)i + 2);
    }
    assert_int_equal(proc_state_of(t), 'T');
    /* then the controller goes silent, its connection still open: reverted
     * by the lease, not before it runs out after the last heartbeat (which
     * the agent got after last_sent) nor at the fault's 60 s duration */
    assert_int_equal(wait_state(t, 'S', 3 * LEASE_MS), 'S');
    uint64_t took = fl_mono_ms() - last_sent;
    fprintf(stderr, "lease: reverted %llu ms after the last heartbeat (lease %d ms)\n",
            (unsigned long long)took, LEASE_MS);
    assert_true(took >= LEASE_MS);
    /* the lease ran out and one of the checks (every LEASE_CHECK_MS) saw it:
     * the lease plus some check intervals, not a lease counted twice (which
     * ends past LEASE_MS + 10 checks = 2 x LEASE_MS) */
    assert_true(took < LEASE_MS + 10 * LEASE_CHECK_MS);
    raw_close(p);
    stop_target(t);

    /* and a controller that vanishes altogether */
    t = start_target();
    p = leased_inject(t);
    assert_int_equal(wait_state(t, 'T', 1000), 'T');
    raw_close(p);
    assert_int_equal(wait_state(t, 'S', 3500), 'S');
    stop_target(t);
}

static size_t journal_active(const char *state_dir)
{
    char path[600], line[8192];
    snprintf(path, sizeof(path), "%s/journal", state_dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    int applies = 0, reverts = 0;
    while (fgets(line, sizeof(line), f)) {
        if (strstr(line, "\"op\":\"apply\""))
            applies++;
        if (strstr(line, "\"op\":\"revert\"") && strstr(line, "\"ok\":true"))
            reverts++;
    }
    fclose(f);
    return (size_t)(applies - reverts);
}

/* A target process, paused by a fault injected by hand for duration. */
static pid_t paused_target(const char *duration)
{
    pid_t t = start_target();
    char pid[16], out[4096];
    snprintf(pid, sizeof(pid), "pid=%d", (int)t);
    assert_int_equal(ctl(out, sizeof(out), "inject", agent.where, "pause_process", pid,
                         "--duration", duration, NULL),
                     0);
    assert_int_equal(wait_state(t, 'T', 1000), 'T');
    return t;
}

/* Ends whatever an earlier test left, so that journal counts start at 0. */
static void halt_all(void)
{
    char out[4096];
    assert_int_equal(ctl(out, sizeof(out), "halt", agent.where, NULL), 0);
    assert_int_equal(journal_active(agent.state_dir), 0);
}

static void test_kill9_agent_guardian_reverts(void **state)
{
    (void)state;
    halt_all();
    pid_t t = paused_target("5m");
    assert_int_equal(journal_active(agent.state_dir), 1);

    pid_t guardian = agent.guardian_pid;
    uint64_t t0 = fl_mono_ms();
    kill(agent.pid, SIGKILL);
    proc_wait(agent.pid, 2000);
    agent.pid = 0;
    assert_int_equal(wait_state(t, 'S', 1000), 'S');
    fprintf(stderr, "guardian: reverted %llu ms after kill -9\n",
            (unsigned long long)(fl_mono_ms() - t0));
    /* the guardian exits once done, and the journal says so */
    char gst = wait_state(guardian, 'Z', 2000);
    assert_true(gst == 'Z' || gst == 0);
    assert_int_equal(journal_active(agent.state_dir), 0);

    assert_int_equal(start_main_agent(), 0);
    assert_int_equal(journal_active(agent.state_dir), 0);
    stop_target(t);
}

static void test_kill9_agent_and_guardian_restart_reverts(void **state)
{
    (void)state;
    halt_all();
    pid_t t = paused_target("5m");

    kill(agent.guardian_pid, SIGKILL);
    kill(agent.pid, SIGKILL);
    proc_wait(agent.pid, 2000);
    agent.pid = 0;
    sleep_ms(300);
    assert_int_equal(proc_state_of(t), 'T'); /* nobody left to revert it */
    assert_int_equal(journal_active(agent.state_dir), 1);

    /* the next agent does, before it listens */
    assert_int_equal(start_main_agent(), 0);
    assert_int_equal(proc_state_of(t), 'S');
    assert_int_equal(journal_active(agent.state_dir), 0);
    char buf[1 << 16];
    assert_non_null(file_wait_for(agent.log, "start-up: fault", buf, sizeof(buf), 100));
    stop_target(t);
}

static void test_sigterm_reverts(void **state)
{
    (void)state;
    halt_all();
    pid_t t = paused_target("5m");
    assert_int_equal(proc_stop(agent.pid, SIGTERM, 5000), 0);
    agent.pid = 0;
    assert_int_equal(proc_state_of(t), 'S');
    assert_int_equal(journal_active(agent.state_dir), 0);
    assert_int_equal(start_main_agent(), 0);
    stop_target(t);
}

/* process_scope netns: two processes of the same name, one in the agent's
 * network namespace and one outside it; the agent only ever touches its
 * own, however it is named. */
static void test_process_scope_netns(void **state)
{
    (void)state;
    char ns[32], sleeper[400], cmd[900];
    snprintf(ns, sizeof(ns), "flscope%d", (int)getpid());
    snprintf(sleeper, sizeof(sleeper), "%s/flscope-sleep", dir);
    snprintf(cmd, sizeof(cmd), "ip netns add %s && ip -n %s link set lo up && cp /bin/sleep %s", ns,
             ns, sleeper);
    assert_int_equal(system(cmd), 0);

    pid_t outside = fork();
    if (outside == 0) {
        execl(sleeper, "flscope-sleep", "600", (char *)NULL);
        _exit(127);
    }
    pid_t inside = fork();
    if (inside == 0) { /* ip netns exec execs: the pid is the sleeper's */
        execl("/sbin/ip", "ip", "netns", "exec", ns, sleeper, "600", (char *)NULL);
        _exit(127);
    }
    struct test_agent scoped = {0};
    const char *extra[] = {"--process-scope", "netns", NULL};
    int started = test_agent_start(&scoped, FL_AGENT_BIN, key_path, dir, "scoped", ns, extra);
    char out[4096];
    int by_name = -1, by_pid = -1;
    char pid_arg[32];
    snprintf(pid_arg, sizeof(pid_arg), "pid=%d", (int)outside);
    if (started == 0) {
        /* the controller must be in the namespace to reach the agent there */
        char *argv[] = {arg("/sbin/ip"),
                        arg("netns"),
                        arg("exec"),
                        ns,
                        arg(FL_CTL_BIN),
                        arg("inject"),
                        scoped.where,
                        arg("kill_process"),
                        arg("name=flscope-sleep"),
                        arg("--duration"),
                        arg("5s"),
                        arg("--key"),
                        key_path,
                        NULL};
        by_name = proc_run(argv, out, sizeof(out), 20000);
        argv[8] = pid_arg;
        by_pid = proc_run(argv, out, sizeof(out), 20000);
    }
    int inside_status = 0;
    pid_t inside_gone = 0;
    for (int waited = 0; inside_gone == 0 && waited < 3000; waited += 10) {
        inside_gone = waitpid(inside, &inside_status, WNOHANG);
        if (inside_gone == 0)
            sleep_ms(10);
    }
    if (inside_gone == 0)
        stop_target(inside);
    char outside_state = proc_state_of(outside);

    if (scoped.pid > 0)
        proc_stop(scoped.pid, SIGTERM, 10000);
    stop_target(outside);
    snprintf(cmd, sizeof(cmd), "ip netns del %s", ns);
    assert_int_equal(system(cmd), 0);

    assert_int_equal(started, 0);
    assert_int_equal(by_name, 0);
    assert_int_equal(inside_gone, inside);
    assert_true(WIFSIGNALED(inside_status) && WTERMSIG(inside_status) == SIGKILL);
    assert_int_equal(outside_state, 'S'); /* same name, other namespace: untouched */
    assert_int_equal(by_pid, 2);
    assert_non_null(strstr(out, "another network namespace"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pause_and_revert),
        cmocka_unit_test(test_duration_ends_it),
        cmocka_unit_test(test_kill_once_and_no_match),
        cmocka_unit_test(test_kill_repeat),
        cmocka_unit_test(test_kill_refuses_stop_signals),
        cmocka_unit_test(test_cli_refuses_not_regular_files),
        cmocka_unit_test(test_guardrails),
        cmocka_unit_test(test_lease),
        cmocka_unit_test(test_kill9_agent_guardian_reverts),
        cmocka_unit_test(test_kill9_agent_and_guardian_restart_reverts),
        cmocka_unit_test(test_sigterm_reverts),
        cmocka_unit_test(test_process_scope_netns),
    };
    return cmocka_run_group_tests_name("faults (process kinds, safety)", tests, setup, teardown);
}
