/* Crash safety with one fault of every kind active, on an agent in a network
 * namespace of its own (so that its nftables rules touch nothing of the
 * host's), with a tmpfs to fill:
 *   - kill -9 the agent: its guardian reverts everything within 1 s, and the
 *     next agent finds a clean journal;
 *   - kill -9 the agent and its guardian: the next agent reverts everything
 *     from the journal before it listens;
 *   - a drop-everything network fault: the controller's heartbeats still
 *     arrive, so the lease does not end it. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
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

static char dir[] = "/tmp/fl-crash-test.XXXXXX";
static char key_path[300], config_path[300], fill_dir[300], ns[64];
static struct fl_key key;
static struct test_agent agent;
static int mounted;
static char ruleset_before[16384];

static char *arg(const char *a)
{
    return (char *)(uintptr_t)a;
}

static int run(const char *a0, ...)
{
    char *argv[24] = {arg(a0)};
    int n = 1;
    va_list ap;
    va_start(ap, a0);
    const char *a;
    while (n < 23 && (a = va_arg(ap, const char *)) != NULL)
        argv[n++] = arg(a);
    va_end(ap);
    argv[n] = NULL;
    char out[4096];
    int rc = proc_run(argv, out, sizeof(out), 20000);
    if (rc != 0)
        fprintf(stderr, "%s: exit %d: %s\n", a0, rc, out);
    return rc;
}

/* The controller, run inside the namespace. */
static int ctl(char *out, size_t cap, ...)
{
    char *argv[40] = {arg("/usr/sbin/ip"), arg("netns"), arg("exec"), ns, arg(FL_CTL_BIN)};
    int n = 5;
    va_list ap;
    va_start(ap, cap);
    const char *a;
    while (n < 36 && (a = va_arg(ap, const char *)) != NULL)
        argv[n++] = arg(a);
    va_end(ap);
    argv[n++] = arg("--key");
    argv[n++] = key_path;
    argv[n] = NULL;
    return proc_run(argv, out, cap, 30000);
}

static int ruleset(char *out, size_t cap)
{
    char *argv[] = {arg("/usr/sbin/ip"),  arg("netns"), arg("exec"),    ns,
                    arg("/usr/sbin/nft"), arg("list"),  arg("ruleset"), NULL};
    return proc_run(argv, out, cap, 10000);
}

/* How many live processes have this comm. */
static int count_comm(const char *comm)
{
    char out[8192];
    char *argv[] = {arg("/usr/bin/pgrep"), arg("-x"), arg(comm), NULL};
    proc_run(argv, out, sizeof(out), 5000);
    int n = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"))
        if (proc_state_of((pid_t)atoi(line)) != 'Z')
            n++;
    return n;
}

static double fill_used_percent(void)
{
    struct statvfs st;
    if (statvfs(fill_dir, &st) != 0)
        return -1;
    return 100.0 * (double)(st.f_blocks - st.f_bfree) / (double)st.f_blocks;
}

static int start_agent(void)
{
    const char *extra[] = {"--lease", "2s", "--config", config_path, NULL};
    return test_agent_start(&agent, FL_AGENT_BIN, key_path, dir, "agent", ns, extra);
}

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(ns, sizeof(ns), "fl-crash-%d", (int)getpid());
    snprintf(key_path, sizeof(key_path), "%s/faultline.key", dir);
    snprintf(config_path, sizeof(config_path), "%s/agent.yaml", dir);
    snprintf(fill_dir, sizeof(fill_dir), "%s/fill", dir);
    char out[512], err[256];
    char *kg[] = {arg(FL_CTL_BIN), arg("keygen"), key_path, NULL};
    if (proc_run(kg, out, sizeof(out), 5000) != 0 || fl_key_load(key_path, &key, err, sizeof(err)))
        return -1;
    if (run("/usr/bin/mkdir", fill_dir, NULL) != 0 ||
        run("/usr/bin/mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", fill_dir, NULL) != 0)
        return -1;
    mounted = 1;
    FILE *f = fopen(config_path, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "guardrails:\n  fill_paths: [%s]\n  fill_reserve: 1MiB\n  memory_reserve: 64MiB\n",
            fill_dir);
    fclose(f);
    if (run("/usr/sbin/ip", "netns", "add", ns, NULL) != 0 ||
        run("/usr/sbin/ip", "-n", ns, "link", "set", "lo", "up", NULL) != 0)
        return -1;
    if (ruleset(ruleset_before, sizeof(ruleset_before)) != 0)
        return -1;
    return start_agent();
}

static int teardown(void **state)
{
    (void)state;
    int rc = 0;
    if (agent.pid > 0 && proc_stop(agent.pid, SIGTERM, 10000) != 0)
        rc = -1;
    if (rc != 0 || getenv("FL_TEST_VERBOSE"))
        test_agent_dump_log(&agent);
    run("/usr/sbin/ip", "netns", "del", ns, NULL);
    if (mounted)
        run("/usr/bin/umount", fill_dir, NULL);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = -1;
    return rc;
}

struct world {
    pid_t paused;
    double fill_before;
};

/* One fault of every kind that leaves something to revert, and a restart
 * storm. Returns the paused target. */
static void inject_everything(struct world *w)
{
    char out[8192], pid[32];
    w->fill_before = fill_used_percent();
    w->paused = fork();
    if (w->paused == 0) {
        execl("/bin/sleep", "sleep", "600", (char *)NULL);
        _exit(127);
    }
    snprintf(pid, sizeof(pid), "pid=%d", (int)w->paused);
    char fill[320];
    snprintf(fill, sizeof(fill), "path=%s", fill_dir);
    struct {
        const char *kind, *p1, *p2;
    } faults[] = {
        {"pause_process", pid, NULL},
        {"kill_process", "pattern=sleep 602", "every=50ms"},
        {"network_drop", "direction=both", NULL},
        {"disk_fill", fill, "fill=60%"},
        {"cpu_stress", "workers=1", "load=30%"},
        {"memory_stress", "size=64MiB", NULL},
    };
    /* the storm needs a victim to start */
    pid_t victim = fork();
    if (victim == 0) {
        execl("/bin/sleep", "sleep", "602", (char *)NULL);
        _exit(127);
    }
    sleep_ms(50);
    for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
        int rc = faults[i].p2
                     ? ctl(out, sizeof(out), "inject", agent.where, faults[i].kind, faults[i].p1,
                           faults[i].p2, "--duration", "5m", i == 1 ? "mode=repeat" : NULL, NULL)
                     : ctl(out, sizeof(out), "inject", agent.where, faults[i].kind, faults[i].p1,
                           "--duration", "5m", NULL);
        if (rc != 0)
            fprintf(stderr, "inject %s: %s\n", faults[i].kind, out);
        assert_int_equal(rc, 0);
    }
    waitpid(victim, NULL, 0);

    /* every effect is there */
    assert_int_equal(proc_state_of(w->paused), 'T');
    char now[16384];
    assert_int_equal(ruleset(now, sizeof(now)), 0);
    assert_non_null(strstr(now, "table inet faultline"));
    assert_true(fill_used_percent() >= 55.0);
    assert_int_equal(count_comm("fl-cpu-stress"), 1);
    assert_int_equal(count_comm("fl-mem-stress"), 1);
}

/* Everything is back as it was, within ms. */
static void assert_all_reverted(const struct world *w, int ms)
{
    uint64_t t0 = fl_mono_ms();
    char now[16384];
    for (;;) {
        int clean = proc_state_of(w->paused) == 'S' &&
                    fill_used_percent() <= w->fill_before + 0.5 &&
                    count_comm("fl-cpu-stress") == 0 && count_comm("fl-mem-stress") == 0 &&
                    ruleset(now, sizeof(now)) == 0 && strcmp(now, ruleset_before) == 0;
        if (clean)
            break;
        if (fl_mono_ms() - t0 > (uint64_t)ms) {
            fprintf(stderr,
                    "not reverted after %d ms: state %c, fill %.1f%% (was %.1f%%), "
                    "cpu workers %d, memory workers %d, ruleset:\n%s\n",
                    ms, proc_state_of(w->paused), fill_used_percent(), w->fill_before,
                    count_comm("fl-cpu-stress"), count_comm("fl-mem-stress"), now);
            fail();
        }
        sleep_ms(20);
    }
    fprintf(stderr, "all reverted %llu ms after the check began\n",
            (unsigned long long)(fl_mono_ms() - t0));
    /* the storm has ended: a new victim lives */
    pid_t v = fork();
    if (v == 0) {
        execl("/bin/sleep", "sleep", "602", (char *)NULL);
        _exit(127);
    }
    sleep_ms(300);
    assert_int_equal(waitpid(v, NULL, WNOHANG), 0);
    kill(v, SIGKILL);
    waitpid(v, NULL, 0);
}

static void test_kill9_agent(void **state)
{
    (void)state;
    struct world w;
    inject_everything(&w);
    kill(agent.pid, SIGKILL);
    proc_wait(agent.pid, 2000);
    agent.pid = 0;
    assert_all_reverted(&w, 1000);
    assert_int_equal(start_agent(), 0);
    char out[8192];
    assert_int_equal(ctl(out, sizeof(out), "agents", agent.where, NULL), 0);
    assert_non_null(strstr(out, " 0 ")); /* no faults */
    kill(w.paused, SIGKILL);
    waitpid(w.paused, NULL, 0);
}

static void test_kill9_agent_and_guardian(void **state)
{
    (void)state;
    struct world w;
    inject_everything(&w);
    kill(agent.guardian_pid, SIGKILL);
    kill(agent.pid, SIGKILL);
    proc_wait(agent.pid, 2000);
    agent.pid = 0;
    sleep_ms(200);
    assert_int_equal(proc_state_of(w.paused), 'T'); /* nobody has reverted yet */
    assert_int_equal(start_agent(), 0);             /* the next agent does, first thing */
    assert_all_reverted(&w, 200);
    kill(w.paused, SIGKILL);
    waitpid(w.paused, NULL, 0);
}

/* Enters the namespace just long enough to open a socket there. */
static int connect_in_ns(struct raw_peer *p)
{
    char path[128];
    snprintf(path, sizeof(path), "/run/netns/%s", ns);
    int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int there = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(home >= 0 && there >= 0);
    assert_int_equal(setns(there, CLONE_NEWNET), 0);
    int rc = raw_connect(p, agent.port);
    assert_int_equal(setns(home, CLONE_NEWNET), 0);
    close(home);
    close(there);
    return rc;
}

static Faultline__Envelope *request(struct raw_peer *p, Faultline__Envelope *env)
{
    uint8_t buf[2048];
    size_t n = raw_seal(p, env, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(raw_send_bytes(p, buf, n), 0);
    return raw_recv_envelope(p, 3000);
}

static void test_drop_everything_keeps_control_channel(void **state)
{
    (void)state;
    struct raw_peer p;
    assert_int_equal(connect_in_ns(&p), 0);
    assert_int_equal(raw_handshake(&p, &key), 0);

    Faultline__NetworkDrop nd = FAULTLINE__NETWORK_DROP__INIT; /* all traffic, both ways */
    Faultline__FaultSpec spec = FAULTLINE__FAULT_SPEC__INIT;
    spec.name = fl_pb_str("cut everything");
    spec.duration_ms = 60000;
    spec.kind_case = FAULTLINE__FAULT_SPEC__KIND_NETWORK_DROP;
    spec.network_drop = &nd;
    Faultline__InjectRequest ir = FAULTLINE__INJECT_REQUEST__INIT;
    ir.spec = &spec; /* leased: ends if the heartbeats stop arriving */
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = 1;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_INJECT;
    env.inject = &ir;
    Faultline__Envelope *reply = request(&p, &env);
    assert_non_null(reply);
    assert_int_equal(reply->msg_case, FAULTLINE__ENVELOPE__MSG_INJECTED);
    faultline__envelope__free_unpacked(reply, NULL);

    /* 3 lease lengths of heartbeats, every one acknowledged */
    for (int i = 0; i < 12; i++) {
        sleep_ms(500);
        Faultline__Heartbeat hb = FAULTLINE__HEARTBEAT__INIT;
        hb.sent_at_ms = fl_now_ms();
        Faultline__Envelope h = FAULTLINE__ENVELOPE__INIT;
        h.id = (uint64_t)i + 2;
        h.msg_case = FAULTLINE__ENVELOPE__MSG_HEARTBEAT;
        h.heartbeat = &hb;
        reply = request(&p, &h);
        assert_non_null(reply);
        assert_int_equal(reply->msg_case, FAULTLINE__ENVELOPE__MSG_HEARTBEAT_ACK);
        faultline__envelope__free_unpacked(reply, NULL);
    }
    /* still active: the lease never ran out */
    Faultline__ListRequest lr = FAULTLINE__LIST_REQUEST__INIT;
    env.id = 100;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_LIST;
    env.list = &lr;
    reply = request(&p, &env);
    assert_non_null(reply);
    assert_int_equal(reply->msg_case, FAULTLINE__ENVELOPE__MSG_FAULTS);
    assert_int_equal(reply->faults->n_faults, 1);
    assert_int_equal(reply->faults->faults[0]->state, FAULTLINE__FAULT_STATE__FAULT_STATE_ACTIVE);
    faultline__envelope__free_unpacked(reply, NULL);

    /* the controller goes: the lease ends the fault, and the rules go */
    raw_close(&p);
    char now[16384];
    int clean = 0;
    for (int i = 0; i < 200 && !clean; i++) {
        sleep_ms(20);
        clean = ruleset(now, sizeof(now)) == 0 && strcmp(now, ruleset_before) == 0;
    }
    assert_true(clean);
}

int main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "crash_test needs root (namespaces, tmpfs, nftables)\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill9_agent),
        cmocka_unit_test(test_kill9_agent_and_guardian),
        cmocka_unit_test(test_drop_everything_keeps_control_channel),
    };
    return cmocka_run_group_tests_name("crash safety, every kind", tests, setup, teardown);
}
