/* Fleet-wide commands at any fleet size (issue 12): N agents, each in its
 * own network namespace (prefix flfleet), reachable from the controller's
 * namespace through veth pairs on bridges in a namespace of their own; each
 * agent holds a pause_process fault on a sleeping child of this test. Then
 * `faultline agents --inventory` and `faultline halt --inventory` run with
 * RLIMIT_NOFILE (soft and hard) far below N: every host must be listed UP,
 * every host must confirm the halt, and every victim must run again.
 *
 * FL_FLEET_N (default 150) and FL_FLEET_NOFILE (default 64) change the size;
 * bench/fleet_halt.sh runs this test with 2,000 agents. A bridge holds at
 * most 1024 ports, so agents are spread over bridges of FLEET_PER_BRIDGE,
 * each with its own /16 and its own veth to the controller's namespace. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/support/proc.h"

#define PREFIX "flfleet"
#define FLEET_PER_BRIDGE 1000
#define FLEET_MAX 20000
#define SUBNET_BASE 210 /* bridge k's agents are in 10.(210+k).0.0/16 */

static int n_agents = 150;
static int nofile = 64;
static char dir[64];
static char key[128];
static char inventory[128];
static pid_t *agents;
static pid_t *victims;
static int home_ns = -1;
static bool in_ctl_ns;

static void agent_addr(int i, char *buf, size_t len)
{
    int k = i / FLEET_PER_BRIDGE, j = i % FLEET_PER_BRIDGE;
    snprintf(buf, len, "10.%d.%d.%d", SUBNET_BASE + k, j / 250, j % 250 + 1);
}

/* Fixed link addresses, for the static neighbour entries below. */
static const char *agent_mac(int i)
{
    static char buf[32];
    snprintf(buf, sizeof(buf), "02:00:00:00:%02x:%02x", (i >> 8) & 0xff, i & 0xff);
    return buf;
}

static const char *ctl_mac(int k)
{
    static char buf[32];
    snprintf(buf, sizeof(buf), "02:00:00:ff:00:%02x", k & 0xff);
    return buf;
}

static int n_bridges(void)
{
    return (n_agents + FLEET_PER_BRIDGE - 1) / FLEET_PER_BRIDGE;
}

/* Runs argv quietly; its exit status, or -1. */
static int run_argv(char *const argv[])
{
    static char out[8192];
    int rc = proc_run(argv, out, sizeof(out), 120000);
    if (rc != 0)
        fprintf(stderr, "%s %s: exit %d: %s\n", argv[0], argv[1] ? argv[1] : "", rc, out);
    return rc;
}

/* `ip [-n NS] -b FILE`. */
static int ip_batch(const char *ns, const char *file)
{
    char *argv[8];
    int n = 0;
    argv[n++] = (char *)"/usr/sbin/ip";
    if (ns) {
        argv[n++] = (char *)"-n";
        argv[n++] = (char *)ns;
    }
    argv[n++] = (char *)"-b";
    argv[n++] = (char *)file;
    argv[n] = NULL;
    return run_argv(argv);
}

/* Every namespace this test makes, whatever a crashed run left behind. */
static void delete_namespaces(void)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/del.batch", dir[0] ? dir : "/tmp");
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return;
    int found = 0;
    DIR *d = opendir("/run/netns");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, PREFIX "-", strlen(PREFIX) + 1) == 0) {
            fprintf(f, "netns del %s\n", e->d_name);
            found++;
        }
    }
    if (d)
        closedir(d);
    fclose(f);
    if (found)
        ip_batch(NULL, path);
    unlink(path);
}

static int make_network(void)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/ns.batch", dir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "netns add %s-br\nnetns add %s-ctl\n", PREFIX, PREFIX);
    for (int i = 0; i < n_agents; i++)
        fprintf(f, "netns add %s-a%d\n", PREFIX, i);
    fclose(f);
    if (ip_batch(NULL, path) != 0)
        return -1;

    /* veths: one end in the bridges' namespace, the other as eth0 */
    snprintf(path, sizeof(path), "%s/veth.batch", dir);
    f = fopen(path, "w");
    for (int k = 0; k < n_bridges(); k++)
        fprintf(f, "link add c%d netns %s-br type veth peer name eth%d netns %s-ctl address %s\n",
                k, PREFIX, k, PREFIX, ctl_mac(k));
    for (int i = 0; i < n_agents; i++)
        fprintf(f, "link add a%d netns %s-br type veth peer name eth0 netns %s-a%d address %s\n", i,
                PREFIX, PREFIX, i, agent_mac(i));
    fclose(f);
    if (ip_batch(NULL, path) != 0)
        return -1;

    snprintf(path, sizeof(path), "%s/br.batch", dir);
    f = fopen(path, "w");
    for (int k = 0; k < n_bridges(); k++)
        fprintf(f, "link add br%d type bridge\nlink set br%d up\nlink set c%d master br%d up\n", k,
                k, k, k);
    for (int i = 0; i < n_agents; i++)
        fprintf(f, "link set a%d master br%d up\n", i, i / FLEET_PER_BRIDGE);
    fclose(f);
    char ns[64];
    snprintf(ns, sizeof(ns), "%s-br", PREFIX);
    if (ip_batch(ns, path) != 0)
        return -1;

    snprintf(path, sizeof(path), "%s/ctl.batch", dir);
    f = fopen(path, "w");
    fprintf(f, "link set lo up\n");
    for (int k = 0; k < n_bridges(); k++)
        fprintf(f, "addr add 10.%d.255.254/16 dev eth%d\nlink set eth%d up\n", SUBNET_BASE + k, k,
                k);
    /* Static neighbours: the kernel's ARP table counts entries of every
     * namespace against one gc_thresh3 (1024 by default), and a fleet of
     * thousands overflows it; permanent entries are not counted. */
    for (int i = 0; i < n_agents; i++) {
        char addr[32];
        agent_addr(i, addr, sizeof(addr));
        fprintf(f, "neigh replace %s dev eth%d lladdr %s nud permanent\n", addr,
                i / FLEET_PER_BRIDGE, agent_mac(i));
    }
    fclose(f);
    snprintf(ns, sizeof(ns), "%s-ctl", PREFIX);
    if (ip_batch(ns, path) != 0)
        return -1;

    /* one `ip` per agent namespace (-n is global in a batch), a few at a time */
    for (int i = 0; i < n_agents; i++) {
        char cmd[640], addr[32];
        agent_addr(i, addr, sizeof(addr));
        snprintf(cmd, sizeof(cmd),
                 "ip -n %s-a%d addr add %s/16 dev eth0 && ip -n %s-a%d link set eth0 up && "
                 "ip -n %s-a%d link set lo up && "
                 "ip -n %s-a%d neigh replace 10.%d.255.254 dev eth0 lladdr %s nud permanent",
                 PREFIX, i, addr, PREFIX, i, PREFIX, i, PREFIX, i,
                 SUBNET_BASE + i / FLEET_PER_BRIDGE, ctl_mac(i / FLEET_PER_BRIDGE));
        if (system(cmd) != 0)
            return -1;
    }
    return 0;
}

static pid_t start_victim(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;)
            pause();
    }
    return pid;
}

static int start_agents(void)
{
    char bin[] = FL_AGENT_BIN;
    for (int i = 0; i < n_agents; i++) {
        char ns[64], listen[64], state[128], log[128], addr[32];
        agent_addr(i, addr, sizeof(addr));
        snprintf(ns, sizeof(ns), "%s-a%d", PREFIX, i);
        snprintf(listen, sizeof(listen), "%s:7411", addr);
        snprintf(state, sizeof(state), "%s/state-%d", dir, i);
        snprintf(log, sizeof(log), "%s/agent-%d.log", dir, i);
        char *argv[] = {(char *)"/usr/sbin/ip",
                        (char *)"netns",
                        (char *)"exec",
                        ns,
                        bin,
                        (char *)"--key",
                        key,
                        (char *)"--listen",
                        listen,
                        (char *)"--state-dir",
                        state,
                        (char *)"--log-level",
                        (char *)"info",
                        NULL};
        agents[i] = proc_start(argv, log); /* ip netns exec execs: the pid is the agent's */
        if (agents[i] < 0)
            return -1;
    }
    for (int i = 0; i < n_agents; i++) {
        char log[128], buf[8192];
        snprintf(log, sizeof(log), "%s/agent-%d.log", dir, i);
        if (file_wait_for(log, "listening on", buf, sizeof(buf), 60000) == NULL) {
            fprintf(stderr, "agent %d did not start:\n%s\n", i, buf);
            return -1;
        }
    }
    return 0;
}

static int write_inventory(void)
{
    snprintf(inventory, sizeof(inventory), "%s/hosts.yaml", dir);
    FILE *f = fopen(inventory, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "key_file: %s\nhosts:\n", key);
    for (int i = 0; i < n_agents; i++) {
        char addr[32];
        agent_addr(i, addr, sizeof(addr));
        fprintf(f, "  a%d: { address: %s }\n", i, addr);
    }
    return fclose(f);
}

static int enter_ns(const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "/run/netns/%s", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = setns(fd, CLONE_NEWNET);
    close(fd);
    return rc;
}

/* Runs the controller with RLIMIT_NOFILE soft and hard set to lim, output to
 * out_path. Its exit status, or -1. */
static int run_ctl_limited(char *const argv[], int lim, const char *out_path, int timeout_ms)
{
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0)
            _exit(127);
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        struct rlimit rl = {(rlim_t)lim, (rlim_t)lim};
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    if (pid < 0)
        return -1;
    return proc_wait(pid, timeout_ms);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    size_t got = buf ? fread(buf, 1, (size_t)len, f) : 0;
    fclose(f);
    if (buf)
        buf[got] = '\0';
    return buf;
}

static int count_lines_with(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static void teardown_all(void)
{
    if (in_ctl_ns && home_ns >= 0) {
        setns(home_ns, CLONE_NEWNET);
        in_ctl_ns = false;
    }
    for (int i = 0; agents && i < n_agents; i++)
        if (agents[i] > 0)
            kill(agents[i], SIGTERM);
    for (int i = 0; agents && i < n_agents; i++)
        if (agents[i] > 0)
            proc_stop(agents[i], SIGTERM, 10000);
    for (int i = 0; victims && i < n_agents; i++) {
        if (victims[i] > 0) {
            kill(victims[i], SIGKILL);
            waitpid(victims[i], NULL, 0);
        }
    }
    delete_namespaces();
    if (dir[0]) {
        char *argv[] = {(char *)"/bin/rm", (char *)"-rf", dir, NULL};
        run_argv(argv);
    }
    free(agents);
    free(victims);
    agents = victims = NULL;
}

static int group_setup(void **state)
{
    (void)state;
    const char *s = getenv("FL_FLEET_N");
    if (s)
        n_agents = atoi(s);
    if ((s = getenv("FL_FLEET_NOFILE")) != NULL)
        nofile = atoi(s);
    if (n_agents < 1 || n_agents > FLEET_MAX || nofile < 16) {
        fprintf(stderr, "FL_FLEET_N must be 1..%d, FL_FLEET_NOFILE at least 16\n", FLEET_MAX);
        return -1;
    }
    /* a few descriptors per agent for ip/agent/guardian while starting */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    home_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    delete_namespaces(); /* a crashed earlier run's */
    snprintf(dir, sizeof(dir), "/tmp/%s-XXXXXX", PREFIX);
    if (mkdtemp(dir) == NULL)
        return -1;
    agents = calloc((size_t)n_agents, sizeof(*agents));
    victims = calloc((size_t)n_agents, sizeof(*victims));
    snprintf(key, sizeof(key), "%s/key", dir);
    char ctl[] = FL_CTL_BIN;
    char *kg[] = {ctl, (char *)"keygen", key, NULL};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (agents == NULL || victims == NULL || run_argv(kg) != 0 || make_network() != 0 ||
        start_agents() != 0 || write_inventory() != 0) {
        teardown_all();
        return -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "fleet of %d agents up in %.1f s; controller limited to %d descriptors\n",
            n_agents, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
            nofile);
    char ns[64];
    snprintf(ns, sizeof(ns), "%s-ctl", PREFIX);
    if (enter_ns(ns) != 0) {
        teardown_all();
        return -1;
    }
    in_ctl_ns = true;
    /* every agent holds a fault: a pause on a sleeping child of ours */
    for (int i = 0; i < n_agents; i++) {
        victims[i] = start_victim();
        char addr[32], pid[32], out[2048];
        agent_addr(i, addr, sizeof(addr));
        snprintf(pid, sizeof(pid), "pid=%d", (int)victims[i]);
        char *argv[] = {
            ctl, (char *)"inject",     (char *)"--key", key, addr, (char *)"pause_process",
            pid, (char *)"--duration", (char *)"10m",   NULL};
        int rc = proc_run(argv, out, sizeof(out), 30000);
        if (rc != 0) {
            fprintf(stderr, "inject on agent %d: exit %d: %s\n", i, rc, out);
            teardown_all();
            return -1;
        }
    }
    for (int i = 0; i < n_agents; i++) {
        if (proc_state_of(victims[i]) != 'T') {
            fprintf(stderr, "victim of agent %d is not stopped\n", i);
            teardown_all();
            return -1;
        }
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    teardown_all();
    return 0;
}

/* agents --inventory under a descriptor limit far below the fleet's size:
 * every host UP, none DOWN for want of a descriptor. */
static void test_agents_all_up(void **state)
{
    (void)state;
    char ctl[] = FL_CTL_BIN, out[128];
    snprintf(out, sizeof(out), "%s/agents.out", dir);
    char *argv[] = {ctl, (char *)"agents", (char *)"--inventory", inventory, NULL};
    int rc = run_ctl_limited(argv, nofile, out, 300000);
    char *text = slurp(out);
    int up = text ? count_lines_with(text, " up ") : 0;
    if (rc != 0 || up != n_agents)
        fprintf(stderr, "%s\n", text ? text : "(no output)");
    assert_int_equal(rc, 0);
    assert_int_equal(up, n_agents);
    assert_int_equal(count_lines_with(text, "DOWN"), 0);
    free(text);
}

/* halt --inventory under the same limit: every host confirms, every fault
 * ends, exit 0. */
static void test_halt_every_host(void **state)
{
    (void)state;
    char ctl[] = FL_CTL_BIN, out[128];
    snprintf(out, sizeof(out), "%s/halt.out", dir);
    char *argv[] = {ctl, (char *)"halt", (char *)"--inventory", inventory, NULL};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = run_ctl_limited(argv, nofile, out, 300000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    char *text = slurp(out);
    int ended = text ? count_lines_with(text, ": 1 fault(s) ended") : 0;
    fprintf(stderr, "halt of %d agents under ulimit -n %d: exit %d in %.2f s, %d confirmed\n",
            n_agents, nofile, rc,
            (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, ended);
    if (rc != 0 || ended != n_agents)
        fprintf(stderr, "%s\n", text ? text : "(no output)");
    const char *summary = text ? strstr(text, "halt: ") : NULL; /* for bench/fleet_halt.sh */
    if (summary != NULL)
        fprintf(stderr, "%.*s\n", (int)strcspn(summary, "\n"), summary);
    int still_paused = 0;
    for (int i = 0; i < n_agents; i++)
        still_paused += proc_state_of(victims[i]) == 'T';
    if (still_paused)
        fprintf(stderr, "%d of %d faults still active after halt\n", still_paused, n_agents);
    assert_int_equal(still_paused, 0);
    assert_int_equal(rc, 0);
    assert_int_equal(ended, n_agents);
    free(text);
}

/* A host that never confirms: halt tries it until the deadline, then names
 * it under a loud heading with the reason, and exits 2; the host that did
 * confirm is listed as such. */
static void test_halt_names_unreachable(void **state)
{
    (void)state;
    char ctl[] = FL_CTL_BIN, out[128], good[32], bad[40];
    agent_addr(0, good, sizeof(good));
    snprintf(bad, sizeof(bad), "%s:7412", good); /* nothing listens there */
    snprintf(out, sizeof(out), "%s/halt-bad.out", dir);
    char *argv[] = {
        ctl, (char *)"halt", (char *)"--key", key, (char *)"--deadline", (char *)"3s", good, bad,
        NULL};
    int rc = run_ctl_limited(argv, nofile, out, 120000);
    char *text = slurp(out);
    assert_non_null(text);
    fprintf(stderr, "%s", text);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(text, "1 of 2 host(s) did NOT confirm"));
    char line[128];
    snprintf(line, sizeof(line), "NOT CONFIRMED: %s: ", bad);
    assert_non_null(strstr(text, line));
    assert_non_null(strstr(text, "gave up at the deadline"));
    assert_non_null(strstr(text, "connection refused"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agents_all_up),
        cmocka_unit_test(test_halt_every_host),
        cmocka_unit_test(test_halt_names_unreachable),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
