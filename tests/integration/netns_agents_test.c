/* Two agents in one network namespace (issue 12 item 3): each keeps its
 * network faults in its own nftables table, so that neither an agent's
 * start, its clean stop, its crash (the guardian's clean-up) nor a crash of
 * both it and its guardian (the next start's replay) touches the other's
 * rules.
 *
 * Agent A (state directory a) holds a network_drop fault on port PORT_A for
 * the whole of each test; agent B (state directory b, another port) starts,
 * injects its own network_drop on PORT_B, and then stops or dies. After each
 * step A's fault must still drop (a connection to PORT_A never completes
 * while one to the untouched PORT_C does, side by side), its rules must
 * still be in the ruleset, and A must still list it as active.
 *
 * Each scenario starts B before A's fault exists, so that on code where the
 * agents share one table each step (start, stop, crash, replay) fails on
 * its own.
 *
 * The test process lives in a network namespace of its own (made here,
 * removed at the end), so no rule ever touches the host's ruleset. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/clock.h"
#include "tests/support/agent_proc.h"
#include "tests/support/proc.h"

#define PORT_A 18461 /* A's fault cuts it */
#define PORT_B 18462 /* B's fault cuts it */
#define PORT_C 18463 /* no fault: the side-by-side control */
#define PROBE_MS 500

static char dir[] = "/tmp/fl-agentnft-test.XXXXXX";
static char key_path[300], ns[64];
static int home_fd = -1;
static struct test_agent a, b;
static int listeners[3] = {-1, -1, -1};
static char a_fault[64];

static char *arg(const char *s)
{
    return (char *)(uintptr_t)s;
}

static int run(char *out, size_t cap, const char *a0, ...)
{
    char *argv[32] = {arg(a0)};
    int n = 1;
    va_list ap;
    va_start(ap, a0);
    const char *s;
    while (n < 31 && (s = va_arg(ap, const char *)) != NULL)
        argv[n++] = arg(s);
    va_end(ap);
    argv[n] = NULL;
    char local[4096];
    if (out == NULL) {
        out = local;
        cap = sizeof(local);
    }
    int rc = proc_run(argv, out, cap, 30000);
    if (rc != 0)
        fprintf(stderr, "%s: exit %d: %s\n", a0, rc, out);
    return rc;
}

/* `faultline inject` on agent t, printing the fault's id into id */
static void inject(const struct test_agent *t, int port, char *id, size_t cap)
{
    char out[4096], ports[32];
    snprintf(ports, sizeof(ports), "ports=%d", port);
    int rc =
        run(out, sizeof(out), FL_CTL_BIN, "inject", "--key", key_path, t->where, "network_drop",
            "direction=ingress", "protocol=tcp", ports, "--duration", "10m", NULL);
    assert_int_equal(rc, 0);
    const char *f = strstr(out, "f-");
    assert_non_null(f);
    size_t n = strspn(f, "f-0123456789abcdef");
    assert_true(n < cap);
    memcpy(id, f, n);
    id[n] = '\0';
}

/* How many faults agent t lists as active (`faultline agents`). */
static int active_faults(const struct test_agent *t)
{
    char out[4096];
    assert_int_equal(run(out, sizeof(out), FL_CTL_BIN, "agents", "--key", key_path, t->where, NULL),
                     0);
    const char *line = strchr(out, '\n'); /* past the header */
    assert_non_null(line);
    char label[64], state[16], version[32], uptime[32];
    int n = -1;
    assert_int_equal(sscanf(line + 1, "%63s %15s %31s %31s %d", label, state, version, uptime, &n),
                     5);
    return n;
}

/* 1 when a connection to port completes within PROBE_MS, else 0. */
static int connects(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    int ok = rc == 0;
    if (rc != 0 && errno == EINPROGRESS) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int err = 0;
        socklen_t len = sizeof(err);
        ok = poll(&p, 1, PROBE_MS) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
             err == 0;
    }
    close(fd);
    for (int i = 0; i < 3; i++) { /* drain what was accepted */
        int c;
        while ((c = accept4(listeners[i], NULL, NULL, SOCK_NONBLOCK)) >= 0)
            close(c);
    }
    return ok;
}

static int ruleset_has(const char *needle)
{
    char out[32768];
    assert_int_equal(run(out, sizeof(out), "/usr/sbin/nft", "list", "ruleset", NULL), 0);
    return strstr(out, needle) != NULL;
}

/* A's fault is whole: it drops, its rules are there, A lists it. */
static void assert_a_intact(const char *when)
{
    int c = connects(PORT_C), cut = !connects(PORT_A);
    char comment[96];
    snprintf(comment, sizeof(comment), "faultline:%s", a_fault);
    int rules = ruleset_has(comment);
    fprintf(stderr, "[ %s ] control port connects: %d; A's port cut: %d; A's rules there: %d\n",
            when, c, cut, rules);
    if (!rules || !cut) {
        char out[32768];
        run(out, sizeof(out), "/usr/sbin/nft", "list", "ruleset", NULL);
        fprintf(stderr, "ruleset:\n%s\n", out);
    }
    assert_true(c);
    assert_true(rules);
    assert_true(cut);
    assert_int_equal(active_faults(&a), 1);
}

static void wait_gone(pid_t pid)
{
    for (int i = 0; i < 500; i++) {
        char st = proc_state_of(pid);
        if (st == 0 || st == 'Z')
            return;
        sleep_ms(20);
    }
    fail_msg("process %d did not exit within 10 s", (int)pid);
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 64) != 0)
        return -1;
    return fd;
}

static int group_setup(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        fprintf(stderr, "needs root (network namespaces, nftables)\n");
        return -1;
    }
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(ns, sizeof(ns), "fl-agentnft-%d", (int)getpid());
    snprintf(key_path, sizeof(key_path), "%s/faultline.key", dir);
    if (run(NULL, 0, FL_CTL_BIN, "keygen", key_path, NULL) != 0 ||
        run(NULL, 0, "/usr/sbin/ip", "netns", "add", ns, NULL) != 0 ||
        run(NULL, 0, "/usr/sbin/ip", "-n", ns, "link", "set", "lo", "up", NULL) != 0)
        return -1;
    /* from here on this process, and all it starts, is in the namespace */
    char path[128];
    snprintf(path, sizeof(path), "/run/netns/%s", ns);
    home_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int there = open(path, O_RDONLY | O_CLOEXEC);
    if (home_fd < 0 || there < 0 || setns(there, CLONE_NEWNET) != 0)
        return -1;
    close(there);
    const int ports[3] = {PORT_A, PORT_B, PORT_C};
    for (int i = 0; i < 3; i++)
        if ((listeners[i] = listen_on(ports[i])) < 0)
            return -1;
    if (test_agent_start(&a, FL_AGENT_BIN, key_path, dir, "a", NULL, NULL) != 0)
        return -1;
    return 0;
}

static void stop_agent(struct test_agent *t)
{
    if (t->pid > 0)
        proc_stop(t->pid, SIGTERM, 10000);
    /* the guardian exits once it has looked at the journal; it never
     * outlives the test */
    for (int i = 0; t->guardian_pid > 0 && i < 500; i++) {
        char st = proc_state_of(t->guardian_pid);
        if (st == 0 || st == 'Z')
            break;
        sleep_ms(20);
    }
    if (t->guardian_pid > 0 && proc_state_of(t->guardian_pid) != 0)
        kill(t->guardian_pid, SIGKILL);
    t->pid = 0;
    t->guardian_pid = 0;
}

static int group_teardown(void **state)
{
    (void)state;
    stop_agent(&b);
    stop_agent(&a);
    if (getenv("FL_TEST_VERBOSE")) {
        test_agent_dump_log(&a);
        test_agent_dump_log(&b);
    }
    for (int i = 0; i < 3; i++)
        if (listeners[i] >= 0)
            close(listeners[i]);
    if (home_fd >= 0) {
        setns(home_fd, CLONE_NEWNET);
        close(home_fd);
    }
    run(NULL, 0, "/usr/sbin/ip", "netns", "del", ns, NULL);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A's fault reverted by A: the ruleset holds nothing of faultline's. */
static int test_teardown(void **state)
{
    (void)state;
    stop_agent(&b);
    int rc = a_fault[0] == '\0'
                 ? 0
                 : run(NULL, 0, FL_CTL_BIN, "revert", "--key", key_path, a.where, a_fault, NULL);
    a_fault[0] = '\0';
    int left = ruleset_has("faultline");
    if (left) {
        char out[32768];
        run(out, sizeof(out), "/usr/sbin/nft", "list", "ruleset", NULL);
        fprintf(stderr, "left after both agents reverted everything:\n%s\n", out);
    }
    return rc == 0 && !left ? 0 : -1;
}

static void inject_a(void)
{
    inject(&a, PORT_A, a_fault, sizeof(a_fault));
    assert_a_intact("A's fault injected");
}

/* B is started first, so that each step after it is tested on its own. */
static void start_b_with_fault(char *id, size_t cap)
{
    assert_int_equal(test_agent_start(&b, FL_AGENT_BIN, key_path, dir, "b", NULL, NULL), 0);
    inject_a();
    inject(&b, PORT_B, id, cap);
    assert_false(connects(PORT_B));
    assert_a_intact("B's fault injected");
}

/* A's fault first, then B starts: B's start-up clean-up and its stop. */
static void test_b_starts_after_a(void **state)
{
    (void)state;
    inject_a();
    assert_int_equal(test_agent_start(&b, FL_AGENT_BIN, key_path, dir, "b", NULL, NULL), 0);
    assert_a_intact("B started");
    pid_t g = b.guardian_pid;
    stop_agent(&b);
    wait_gone(g);
    assert_a_intact("B stopped with no fault");
}

static void test_b_starts_and_stops(void **state)
{
    (void)state;
    char id[64];
    start_b_with_fault(id, sizeof(id));
    pid_t g = b.guardian_pid;
    stop_agent(&b); /* SIGTERM: B reverts its fault; its guardian exits */
    wait_gone(g);
    assert_true(connects(PORT_B));
    assert_a_intact("B stopped");
}

static void test_b_killed(void **state)
{
    (void)state;
    char id[64];
    start_b_with_fault(id, sizeof(id));
    pid_t g = b.guardian_pid;
    kill(b.pid, SIGKILL); /* B's guardian reverts B's fault */
    proc_wait(b.pid, 5000);
    b.pid = 0;
    wait_gone(g);
    b.guardian_pid = 0;
    assert_true(connects(PORT_B));
    assert_a_intact("B killed, its guardian done");
}

static void test_b_and_guardian_killed(void **state)
{
    (void)state;
    char id[64];
    start_b_with_fault(id, sizeof(id));
    kill(b.guardian_pid, SIGKILL);
    kill(b.pid, SIGKILL);
    proc_wait(b.pid, 5000);
    wait_gone(b.guardian_pid);
    b.pid = 0;
    b.guardian_pid = 0;
    assert_false(connects(PORT_B)); /* nobody reverted B's fault yet */
    assert_a_intact("B and its guardian killed");
    /* the next B replays its journal before it listens */
    assert_int_equal(test_agent_start(&b, FL_AGENT_BIN, key_path, dir, "b", NULL, NULL), 0);
    assert_true(connects(PORT_B));
    assert_a_intact("B restarted after its crash");
    pid_t g = b.guardian_pid;
    stop_agent(&b);
    wait_gone(g);
    assert_a_intact("B stopped again");
}

/* Does pid map libnftables? (/proc/PID/maps) */
static int maps_nftables(pid_t pid)
{
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int found = 0;
    while (fgets(line, sizeof(line), f))
        found |= strstr(line, "libnftables") != NULL;
    fclose(f);
    return found;
}

/* Issue 12 item 7: an idle agent and its guardian have not loaded
 * libnftables; the first network fault loads it in the agent and works. */
static void test_nftables_loaded_lazily(void **state)
{
    (void)state;
    assert_int_equal(test_agent_start(&b, FL_AGENT_BIN, key_path, dir, "b", NULL, NULL), 0);
    int agent_idle = maps_nftables(b.pid), guardian_idle = maps_nftables(b.guardian_pid);
    fprintf(stderr, "[ idle ] libnftables mapped: agent %d, guardian %d\n", agent_idle,
            guardian_idle);
    assert_false(agent_idle);
    assert_false(guardian_idle);
    char id[64];
    inject(&b, PORT_B, id, sizeof(id));
    assert_false(connects(PORT_B));
    assert_true(connects(PORT_C));
    assert_true(maps_nftables(b.pid));
    assert_false(maps_nftables(b.guardian_pid)); /* it loads it only to revert */
    assert_int_equal(run(NULL, 0, FL_CTL_BIN, "revert", "--key", key_path, b.where, id, NULL), 0);
    assert_true(connects(PORT_B));
    assert_false(ruleset_has("faultline"));
}

/* Where the dynamic linker finds libnftables.so.1, or "" */
static void nftables_path(char *out, size_t cap)
{
    static const char *const dirs[] = {"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
                                       "/usr/lib64", "/usr/lib", "/lib/x86_64-linux-gnu"};
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        char p[256];
        snprintf(p, sizeof(p), "%s/libnftables.so.1", dirs[i]);
        char *real = realpath(p, NULL);
        if (real != NULL) {
            snprintf(out, cap, "%s", real);
            free(real);
            return;
        }
    }
}

/* An agent on a host without libnftables starts, serves other kinds, and
 * refuses a network fault naming the library. The agent runs in a mount
 * namespace of its own where the library is an empty file (a bind mount
 * that exists only there and dies with it). */
static void test_missing_libnftables(void **state)
{
    (void)state;
    char lib[256], empty[400], wrapper[400];
    nftables_path(lib, sizeof(lib));
    if (lib[0] == '\0')
        skip();
    snprintf(empty, sizeof(empty), "%s/empty.so", dir);
    snprintf(wrapper, sizeof(wrapper), "%s/no-nftables.sh", dir);
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
    assert_int_equal(test_agent_start(&b, wrapper, key_path, dir, "b", NULL, NULL), 0);
    char out[4096], ports[32];
    snprintf(ports, sizeof(ports), "ports=%d", PORT_B);
    int rc = run(out, sizeof(out), FL_CTL_BIN, "inject", "--key", key_path, b.where, "network_drop",
                 "protocol=tcp", ports, "--duration", "1m", NULL);
    fprintf(stderr, "[ no libnftables ] inject: exit %d: %s", rc, out);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(out, "libnftables.so.1"));
    assert_true(connects(PORT_B));
    /* the agent is fine, and so are the other kinds */
    assert_int_equal(active_faults(&b), 0);
    pid_t victim = fork();
    if (victim == 0) {
        execl("/bin/sleep", "sleep", "600", (char *)NULL);
        _exit(127);
    }
    char pid[32];
    snprintf(pid, sizeof(pid), "pid=%d", (int)victim);
    assert_int_equal(run(out, sizeof(out), FL_CTL_BIN, "inject", "--key", key_path, b.where,
                         "kill_process", pid, "--duration", "10s", NULL),
                     0);
    assert_int_equal(proc_wait(victim, 5000), 128 + SIGKILL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_b_starts_after_a, test_teardown),
        cmocka_unit_test_teardown(test_b_starts_and_stops, test_teardown),
        cmocka_unit_test_teardown(test_b_killed, test_teardown),
        cmocka_unit_test_teardown(test_b_and_guardian_killed, test_teardown),
        cmocka_unit_test_teardown(test_nftables_loaded_lazily, test_teardown),
        cmocka_unit_test_teardown(test_missing_libnftables, test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
