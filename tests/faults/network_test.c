/* network_drop against the real kernel.
 *
 * Two network namespaces made for this run, joined by a veth pair: "srv" is
 * the agent's host (faults are applied there, and it holds the listeners and
 * a few nftables rules of the host's own), "cli" is a client with two IPv4
 * addresses and one IPv6 address. The test thread lives in srv for the whole
 * run (so that nothing here can ever touch the real host's ruleset) and steps
 * into cli only to open client sockets: a socket keeps the namespace it was
 * made in. Traffic only ever goes between these two namespaces.
 *
 * Needs root (namespaces, nftables); skipped otherwise. Both namespaces are
 * removed by the group teardown and, should that not run, at exit. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/fault.h"
#include "agent/faults/network.h"
#include "agent/guardrails.h"
#include "common/clock.h"
#include "tests/support/proc.h"

#define PORT_A 8080 /* the ports faults cut */
#define PORT_B 8081
#define PORT_C 8082  /* the control port of the drop-everything test */
#define PORT_U 9000  /* udp */
#define CONTROL 7411 /* the usual control port: nothing listens there */
#define TIMEOUT_MS 400

static bool ready;
static char ns_srv[48], ns_cli[48];
static char srv4[32], cli4[32], cli4b[32], srv6[48], cli6[48];
static char ip_bin[64], nft_bin[64];
static int fd_home = -1, fd_srv = -1, fd_cli = -1;
static const uint16_t listen_ports[3] = {PORT_A, PORT_B, PORT_C};
static int listeners[3] = {-1, -1, -1};
static int udp_srv = -1;
static char baseline[16384];
static struct fl_guardrails guard;

/* ------------------------------------------------------------ tools */

static void find_tool(const char *name, char *out, size_t cap)
{
    static const char *const dirs[] = {"/usr/sbin", "/sbin", "/usr/bin", "/bin"};
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(out, cap, "%s/%s", dirs[i], name);
        if (access(out, X_OK) == 0)
            return;
    }
    out[0] = '\0';
}

/* Runs argv (NULL-terminated, no shell); returns its exit status. */
static int run_argv(const char *const *argv, char *out, size_t cap)
{
    char local[2048];
    if (out == NULL) {
        out = local;
        cap = sizeof(local);
    }
    int rc = proc_run((char *const *)argv, out, cap, 10000);
    if (rc != 0) {
        fprintf(stderr, "# exit %d:", rc);
        for (size_t i = 0; argv[i] != NULL; i++)
            fprintf(stderr, " %s", argv[i]);
        fprintf(stderr, "\n# %s\n", out);
    }
    return rc;
}

#define RUN(...) run_argv((const char *[]){__VA_ARGS__, NULL}, NULL, 0)
#define RUN_OUT(buf, ...) run_argv((const char *[]){__VA_ARGS__, NULL}, buf, sizeof(buf))

/* ------------------------------------------------------------ namespaces */

static void env_cleanup(void);

static void enter(int fd)
{
    if (setns(fd, CLONE_NEWNET) != 0) {
        /* never go on in an unknown namespace: it might be the host's */
        fprintf(stderr, "network_test: setns: %s\n", strerror(errno));
        env_cleanup();
        abort();
    }
}

static ino_t ns_inode(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

static void assert_in_srv(void)
{
    struct stat st;
    assert_int_equal(stat("/proc/thread-self/ns/net", &st), 0);
    assert_true(st.st_ino == ns_inode(fd_srv));
}

static void env_cleanup(void)
{
    for (size_t i = 0; i < 3; i++) {
        if (listeners[i] >= 0)
            close(listeners[i]);
        listeners[i] = -1;
    }
    if (udp_srv >= 0)
        close(udp_srv);
    udp_srv = -1;
    if (fd_home >= 0 && setns(fd_home, CLONE_NEWNET) != 0)
        fprintf(stderr, "network_test: cannot go back home: %s\n", strerror(errno));
    if (fd_srv >= 0)
        close(fd_srv);
    if (fd_cli >= 0)
        close(fd_cli);
    if (fd_home >= 0)
        close(fd_home);
    fd_srv = fd_cli = fd_home = -1;
    char path[96];
    const char *names[2] = {ns_srv, ns_cli};
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "/run/netns/%s", names[i]);
        if (names[i][0] != '\0' && access(path, F_OK) == 0)
            RUN(ip_bin, "netns", "del", names[i]);
    }
    ready = false;
}

static void on_signal(int sig)
{
    env_cleanup(); /* not async-signal-safe, but the process is going anyway */
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Namespaces of earlier runs that died without cleaning up (kill -9). */
static void sweep_stale(void)
{
    DIR *d = opendir("/run/netns");
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        unsigned pid = 0;
        char side[8] = "";
        if (sscanf(e->d_name, "fl-net-%u-%3s", &pid, side) != 2 || pid == 0 ||
            (strcmp(side, "srv") != 0 && strcmp(side, "cli") != 0))
            continue;
        if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
            RUN(ip_bin, "netns", "del", e->d_name);
    }
    closedir(d);
}

static int listen_on(int type, uint16_t port)
{
    int s = socket(AF_INET6, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    int zero = 0, one = 1;
    setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    a.sin6_addr = in6addr_any;
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        (type == SOCK_STREAM && listen(s, 128) != 0)) {
        close(s);
        return -1;
    }
    return s;
}

static int env_setup(void)
{
    unsigned pid = (unsigned)getpid();
    unsigned net = pid % 250;
    char veth_s[16], veth_c[16], a[80];
    snprintf(ns_srv, sizeof(ns_srv), "fl-net-%u-srv", pid);
    snprintf(ns_cli, sizeof(ns_cli), "fl-net-%u-cli", pid);
    snprintf(veth_s, sizeof(veth_s), "flv%u-s", pid % 10000000u);
    snprintf(veth_c, sizeof(veth_c), "flv%u-c", pid % 10000000u);
    snprintf(srv4, sizeof(srv4), "10.250.%u.1", net);
    snprintf(cli4, sizeof(cli4), "10.250.%u.2", net);
    snprintf(cli4b, sizeof(cli4b), "10.250.%u.3", net);
    snprintf(srv6, sizeof(srv6), "fd00:fa17:0:%x::1", net);
    snprintf(cli6, sizeof(cli6), "fd00:fa17:0:%x::2", net);

    fd_home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (fd_home < 0)
        return -1;
    if (RUN(ip_bin, "netns", "add", ns_srv) != 0 || RUN(ip_bin, "netns", "add", ns_cli) != 0)
        return -1;
    /* both ends made inside the namespaces: the host never holds them */
    if (RUN(ip_bin, "link", "add", veth_s, "netns", ns_srv, "type", "veth", "peer", "name", veth_c,
            "netns", ns_cli) != 0)
        return -1;
    snprintf(a, sizeof(a), "%s/24", srv4);
    int bad = RUN(ip_bin, "-n", ns_srv, "addr", "add", a, "dev", veth_s);
    snprintf(a, sizeof(a), "%s/64", srv6);
    bad |= RUN(ip_bin, "-n", ns_srv, "addr", "add", a, "dev", veth_s, "nodad");
    snprintf(a, sizeof(a), "%s/24", cli4);
    bad |= RUN(ip_bin, "-n", ns_cli, "addr", "add", a, "dev", veth_c);
    snprintf(a, sizeof(a), "%s/24", cli4b);
    bad |= RUN(ip_bin, "-n", ns_cli, "addr", "add", a, "dev", veth_c);
    snprintf(a, sizeof(a), "%s/64", cli6);
    bad |= RUN(ip_bin, "-n", ns_cli, "addr", "add", a, "dev", veth_c, "nodad");
    bad |= RUN(ip_bin, "-n", ns_srv, "link", "set", "lo", "up");
    bad |= RUN(ip_bin, "-n", ns_cli, "link", "set", "lo", "up");
    bad |= RUN(ip_bin, "-n", ns_srv, "link", "set", veth_s, "up");
    bad |= RUN(ip_bin, "-n", ns_cli, "link", "set", veth_c, "up");
    /* the host's own rules, which network_drop must leave alone */
    bad |= RUN(ip_bin, "netns", "exec", ns_srv, nft_bin, "add table inet hostfw");
    bad |= RUN(ip_bin, "netns", "exec", ns_srv, nft_bin,
               "add chain inet hostfw input { type filter hook input priority 0; policy accept; }");
    bad |= RUN(ip_bin, "netns", "exec", ns_srv, nft_bin,
               "add rule inet hostfw input tcp dport 9999 counter accept comment \"host's own\"");
    bad |= RUN(ip_bin, "netns", "exec", ns_srv, nft_bin,
               "add table ip hostraw; add chain ip hostraw out { type filter hook output "
               "priority -300; }; add rule ip hostraw out udp dport 53 counter");
    if (bad != 0)
        return -1;

    char path[96];
    snprintf(path, sizeof(path), "/run/netns/%s", ns_srv);
    fd_srv = open(path, O_RDONLY | O_CLOEXEC);
    snprintf(path, sizeof(path), "/run/netns/%s", ns_cli);
    fd_cli = open(path, O_RDONLY | O_CLOEXEC);
    if (fd_srv < 0 || fd_cli < 0)
        return -1;
    enter(fd_srv); /* home for the rest of the run */
    for (size_t i = 0; i < 3; i++) {
        listeners[i] = listen_on(SOCK_STREAM, listen_ports[i]);
        if (listeners[i] < 0)
            return -1;
    }
    udp_srv = listen_on(SOCK_DGRAM, PORT_U);
    if (udp_srv < 0)
        return -1;
    int big = 4 << 20;
    setsockopt(udp_srv, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
    if (RUN_OUT(baseline, ip_bin, "netns", "exec", ns_srv, nft_bin, "list", "ruleset") != 0)
        return -1;
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    fl_guardrails_defaults(&guard);
    if (geteuid() != 0) {
        fprintf(stderr, "# network_test needs root (namespaces, nftables): skipped\n");
        return 0;
    }
    find_tool("ip", ip_bin, sizeof(ip_bin));
    find_tool("nft", nft_bin, sizeof(nft_bin));
    if (ip_bin[0] == '\0' || nft_bin[0] == '\0') {
        fprintf(stderr, "# network_test needs ip and nft: skipped\n");
        return 0;
    }
    sweep_stale();
    atexit(env_cleanup);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    if (env_setup() != 0) {
        fprintf(stderr, "# network_test: could not build the test namespaces\n");
        env_cleanup();
        return -1;
    }
    ready = true;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    env_cleanup();
    fl_guardrails_free(&guard);
    return 0;
}

#define NEED_ENV()                                                                                 \
    do {                                                                                           \
        if (!ready)                                                                                \
            skip();                                                                                \
    } while (0)

/* ------------------------------------------------------------ requests and faults */

struct req {
    Faultline__FaultSpec spec;
    Faultline__NetworkDrop nd;
    char *peers[80];
    Faultline__PortRange pr[80];
    Faultline__PortRange *prp[80];
};

static void req_init(struct req *r, Faultline__Direction dir, Faultline__Protocol proto,
                     Faultline__DropAction action, uint32_t percent)
{
    memset(r, 0, sizeof(*r));
    faultline__fault_spec__init(&r->spec);
    faultline__network_drop__init(&r->nd);
    r->spec.kind_case = FAULTLINE__FAULT_SPEC__KIND_NETWORK_DROP;
    r->spec.network_drop = &r->nd;
    r->spec.duration_ms = 10000;
    r->nd.direction = dir;
    r->nd.protocol = proto;
    r->nd.action = action;
    r->nd.percent = percent;
    r->nd.peers = r->peers;
    r->nd.ports = r->prp;
}

static void req_peer(struct req *r, const char *peer)
{
    r->peers[r->nd.n_peers++] = (char *)peer;
}

static void req_port(struct req *r, uint32_t first, uint32_t last)
{
    size_t i = r->nd.n_ports++;
    faultline__port_range__init(&r->pr[i]);
    r->pr[i].first = first;
    r->pr[i].last = last;
    r->prp[i] = &r->pr[i];
}

#define MAX_LIVE 16
static struct fl_fault *live[MAX_LIVE];

static struct fl_fault *fault_new(struct req *r)
{
    static unsigned seq;
    struct fl_fault *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->id, sizeof(f->id), "f-%016x", 0xa000u + ++seq);
    f->kind = &fl_kind_network_drop;
    f->spec = &r->spec;
    for (size_t i = 0; i < MAX_LIVE; i++) {
        if (live[i] == NULL) {
            live[i] = f;
            return f;
        }
    }
    fail_msg("too many live faults in one test");
    return NULL;
}

static void fault_free(struct fl_fault *f)
{
    for (size_t i = 0; i < MAX_LIVE; i++)
        if (live[i] == f)
            live[i] = NULL;
    json_decref(f->undo);
    free(f);
}

static void faults_free(void)
{
    for (size_t i = 0; i < MAX_LIVE; i++) {
        if (live[i] != NULL) {
            json_decref(live[i]->undo);
            free(live[i]);
            live[i] = NULL;
        }
    }
}

static int prepare(struct fl_fault *f, uint16_t control_port, char *err, size_t errlen)
{
    struct fl_agent_ctx ctx = {
        .guard = &guard, .state_dir = "/nonexistent", .control_port = control_port};
    return fl_kind_network_drop.prepare(f, &ctx, err, errlen);
}

static void inject(struct fl_fault *f, uint16_t control_port)
{
    char err[512] = "";
    assert_in_srv();
    int rc = prepare(f, control_port, err, sizeof(err));
    if (rc != 0)
        print_message("prepare: %s\n", err);
    assert_int_equal(rc, 0);
    rc = fl_kind_network_drop.apply(f, err, sizeof(err));
    if (rc != 0)
        print_message("apply: %s\n", err);
    assert_int_equal(rc, 0);
}

static void revert(const json_t *undo)
{
    char err[512] = "";
    assert_in_srv();
    int rc = fl_kind_network_drop.revert(undo, err, sizeof(err));
    if (rc != 0)
        print_message("revert: %s\n", err);
    assert_int_equal(rc, 0);
}

static int test_teardown(void **state)
{
    (void)state;
    if (ready) {
        char err[256];
        enter(fd_srv);
        if (fl_network_remove_table(FL_NETWORK_TABLE, err, sizeof(err)) != 0)
            fprintf(stderr, "# cleanup: %s\n", err);
    }
    faults_free();
    return 0;
}

/* ------------------------------------------------------------ traffic */

static socklen_t make_addr(int family, const char *ip, uint16_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
        return sizeof(*a);
    }
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
    return sizeof(*a);
}

/* a socket of the client namespace */
static int cli_socket(int family, int type)
{
    enter(fd_cli);
    int s = socket(family, type | SOCK_CLOEXEC, 0);
    enter(fd_srv);
    assert_true(s >= 0);
    return s;
}

static void drain_accepts(void)
{
    for (size_t i = 0; i < 3; i++) {
        int c;
        while ((c = accept4(listeners[i], NULL, NULL, SOCK_CLOEXEC)) >= 0)
            close(c);
    }
}

/* TCP connect from the client (from src when given): 0, -ECONNREFUSED,
 * -ETIMEDOUT after TIMEOUT_MS, or another -errno. */
static int tcp_try(int family, const char *src, const char *dst, uint16_t port)
{
    int s = cli_socket(family, SOCK_STREAM | SOCK_NONBLOCK);
    struct sockaddr_storage ss;
    if (src != NULL) {
        socklen_t len = make_addr(family, src, 0, &ss);
        assert_int_equal(bind(s, (struct sockaddr *)&ss, len), 0);
    }
    socklen_t len = make_addr(family, dst, port, &ss);
    int rc = 0;
    if (connect(s, (struct sockaddr *)&ss, len) != 0) {
        rc = -errno;
        if (rc == -EINPROGRESS) {
            struct pollfd p = {.fd = s, .events = POLLOUT};
            int n = poll(&p, 1, TIMEOUT_MS);
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            if (n == 0)
                rc = -ETIMEDOUT;
            else if (getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0)
                rc = -soerr;
            else
                rc = -errno;
        }
    }
    close(s);
    drain_accepts();
    return rc;
}

static int tcp4(uint16_t port)
{
    return tcp_try(AF_INET, NULL, srv4, port);
}

static int drain_udp(void)
{
    char buf[64];
    int n = 0;
    while (recv(udp_srv, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
        n++;
    return n;
}

/* Sends n datagrams from the client to srv:PORT_U; returns how many arrived. */
static int udp_through(int n)
{
    drain_udp();
    int s = cli_socket(AF_INET, SOCK_DGRAM);
    struct sockaddr_storage ss;
    socklen_t len = make_addr(AF_INET, srv4, PORT_U, &ss);
    assert_int_equal(connect(s, (struct sockaddr *)&ss, len), 0);
    int got = 0;
    for (int i = 0; i < n; i++) {
        assert_int_equal(send(s, "x", 1, 0), 1);
        if (i % 20 == 19)
            got += drain_udp();
    }
    close(s);
    struct pollfd p = {.fd = udp_srv, .events = POLLIN};
    while (poll(&p, 1, 100) > 0)
        got += drain_udp();
    return got;
}

/* One datagram to srv:PORT_U: 0 when nothing came back, -ECONNREFUSED when an
 * ICMP port-unreachable did. */
static int udp_answer(void)
{
    int s = cli_socket(AF_INET, SOCK_DGRAM);
    struct sockaddr_storage ss;
    socklen_t len = make_addr(AF_INET, srv4, PORT_U, &ss);
    assert_int_equal(connect(s, (struct sockaddr *)&ss, len), 0);
    assert_int_equal(send(s, "x", 1, 0), 1);
    struct pollfd p = {.fd = s, .events = POLLIN};
    int rc = 0;
    char buf[8];
    if (poll(&p, 1, TIMEOUT_MS) > 0 && recv(s, buf, sizeof(buf), MSG_DONTWAIT) < 0)
        rc = -errno;
    close(s);
    drain_udp();
    return rc;
}

/* ------------------------------------------------------------ rulesets */

static void ruleset(char *out, size_t cap)
{
    int rc = run_argv(
        (const char *[]){ip_bin, "netns", "exec", ns_srv, nft_bin, "list", "ruleset", NULL}, out,
        cap);
    assert_int_equal(rc, 0);
}

static void assert_ruleset_is_baseline(void)
{
    char now[sizeof(baseline)];
    ruleset(now, sizeof(now));
    if (strcmp(now, baseline) != 0)
        print_message("ruleset now:\n%s\nbefore:\n%s\n", now, baseline);
    assert_string_equal(now, baseline);
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* ------------------------------------------------------------ tests */

static void expect_invalid(struct req *r, uint16_t control_port, const char *needle)
{
    char err[512] = "";
    struct fl_fault *f = fault_new(r);
    int rc = prepare(f, control_port, err, sizeof(err));
    if (rc != -EINVAL || strstr(err, needle) == NULL)
        print_message("want -EINVAL naming '%s'; got %d: %s\n", needle, rc, err);
    assert_int_equal(rc, -EINVAL);
    assert_non_null(strstr(err, needle));
    assert_null(f->undo);
    fault_free(f);
}

static void invalid_peer(const char *peer, const char *needle)
{
    struct req r;
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_INGRESS, FAULTLINE__PROTOCOL__PROTOCOL_TCP,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    req_peer(&r, "10.0.0.1");
    req_peer(&r, peer);
    expect_invalid(&r, CONTROL, needle);
}

static void invalid_ports(Faultline__Protocol proto, uint32_t first, uint32_t last,
                          const char *needle)
{
    struct req r;
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_BOTH, proto,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    req_port(&r, 80, 0);
    req_port(&r, first, last);
    expect_invalid(&r, CONTROL, needle);
}

static void test_validation(void **state)
{
    (void)state;
    invalid_peer("10.0.0.0/33", "10.0.0.0/33");
    invalid_peer("10.0.0.300", "10.0.0.300");
    invalid_peer("10.0.0", "10.0.0");
    invalid_peer("fd00::/129", "fd00::/129");
    invalid_peer("fe80::1%eth0", "fe80::1%eth0");
    invalid_peer("example.com", "example.com");
    invalid_peer("10.0.0.1/", "10.0.0.1/");
    invalid_peer("10.0.0.1/+8", "10.0.0.1/+8");
    invalid_peer("10.0.0.1/ 8", "10.0.0.1/ 8");
    invalid_peer("10.0.0.1/0008", "10.0.0.1/0008");
    invalid_peer("10.0.0.1/8/8", "10.0.0.1/8/8");
    invalid_peer(" 10.0.0.1", " 10.0.0.1");
    invalid_peer("10.0.0.1 } ; flush ruleset", "flush ruleset");
    invalid_peer("", "peers[1] is empty");
    invalid_peer("10.0.0.1\nflush ruleset", "peers[1] holds a control character");
    invalid_peer("10.0.0.1\"", "10.0.0.1\"");
    /* host bits past the prefix: refused with the network meant (common/cidr.h) */
    invalid_peer("10.1.2.3/8", "peers[1]: '10.1.2.3/8' has bits set after the prefix; did you "
                               "mean 10.0.0.0/8?");
    invalid_peer("FD00::5/64", "did you mean fd00::/64?");

    invalid_ports(FAULTLINE__PROTOCOL__PROTOCOL_TCP, 0, 0, "port 0");
    invalid_ports(FAULTLINE__PROTOCOL__PROTOCOL_UDP, 65536, 0, "port 65536");
    invalid_ports(FAULTLINE__PROTOCOL__PROTOCOL_ALL, 80, 70000, "port 70000");
    invalid_ports(FAULTLINE__PROTOCOL__PROTOCOL_TCP, 90, 80, "90-80");
    invalid_ports(FAULTLINE__PROTOCOL__PROTOCOL_ICMP, 443, 0, "protocol is icmp");

    struct req r;
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_BOTH, FAULTLINE__PROTOCOL__PROTOCOL_ALL,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 101);
    expect_invalid(&r, CONTROL, "percent 101");
    req_init(&r, (Faultline__Direction)7, FAULTLINE__PROTOCOL__PROTOCOL_ALL,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    expect_invalid(&r, CONTROL, "direction 7");
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_BOTH, (Faultline__Protocol)9,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    expect_invalid(&r, CONTROL, "protocol 9");
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_BOTH, FAULTLINE__PROTOCOL__PROTOCOL_ALL,
             (Faultline__DropAction)4, 0);
    expect_invalid(&r, CONTROL, "action 4");

    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_BOTH, FAULTLINE__PROTOCOL__PROTOCOL_ALL,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    for (int i = 0; i < 65; i++)
        req_peer(&r, "192.0.2.1");
    expect_invalid(&r, CONTROL, "65 peers");
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_BOTH, FAULTLINE__PROTOCOL__PROTOCOL_TCP,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    for (uint32_t i = 0; i < 65; i++)
        req_port(&r, 1000 + 2 * i, 0);
    expect_invalid(&r, CONTROL, "65 port ranges");

    /* a spec of another kind */
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_BOTH, FAULTLINE__PROTOCOL__PROTOCOL_ALL,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    r.spec.kind_case = FAULTLINE__FAULT_SPEC__KIND_DISK_FILL;
    expect_invalid(&r, CONTROL, "network_drop");

    /* a bad undo record is refused, never guessed at */
    char err[256];
    json_t *undo = json_pack("{s:s}", "kind", "network_drop");
    assert_int_equal(fl_kind_network_drop.revert(undo, err, sizeof(err)), -EINVAL);
    json_decref(undo);
    undo = json_pack("{s:s,s:s}", "kind", "network_drop", "id", "f-1\"; flush ruleset");
    assert_int_equal(fl_kind_network_drop.revert(undo, err, sizeof(err)), -EINVAL);
    json_decref(undo);
    undo = json_pack("{s:s,s:s}", "kind", "network_drop", "id", "f-1.2"); /* common/faultid.h */
    assert_int_equal(fl_kind_network_drop.revert(undo, err, sizeof(err)), -EINVAL);
    json_decref(undo);

    /* a fault id that is not plain is refused before anything is planned */
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_BOTH, FAULTLINE__PROTOCOL__PROTOCOL_ALL,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    struct fl_fault *dotted = fault_new(&r);
    snprintf(dotted->id, sizeof(dotted->id), "f-1.2");
    assert_int_equal(prepare(dotted, CONTROL, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not a plain id"));
    assert_null(dotted->undo);
    fault_free(dotted);

    /* nothing of that touched the host, and neither does a good prepare */
    if (ready) {
        req_init(&r, FAULTLINE__DIRECTION__DIRECTION_BOTH, FAULTLINE__PROTOCOL__PROTOCOL_ALL,
                 FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
        assert_int_equal(prepare(fault_new(&r), CONTROL, err, sizeof(err)), 0);
        assert_ruleset_is_baseline();
    }
}

static void test_normalise(void **state)
{
    (void)state;
    NEED_ENV();
    struct req r;
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_INGRESS, FAULTLINE__PROTOCOL__PROTOCOL_TCP,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    req_peer(&r, "10.0.0.0/8");
    req_peer(&r, "192.0.2.7/32");
    req_peer(&r, "10.1.0.0/16");
    req_peer(&r, "10.9.9.9");
    req_peer(&r, "FD00:0:0:0::/64");
    req_peer(&r, "192.0.2.7");
    req_port(&r, 443, 0);
    req_port(&r, 81, 90);
    req_port(&r, 80, 0);
    req_port(&r, 85, 0);
    req_port(&r, 91, 0);
    struct fl_fault *f = fault_new(&r);
    inject(f, CONTROL);

    assert_string_equal(json_string_value(json_object_get(f->undo, "kind")), "network_drop");
    assert_string_equal(json_string_value(json_object_get(f->undo, "id")), f->id);
    char *dump = json_dumps(json_object_get(f->undo, "rules"), 0);
    assert_non_null(dump);
    assert_non_null(strstr(dump, "ip saddr { 10.0.0.0/8, 192.0.2.7 }"));
    assert_non_null(strstr(dump, "ip6 saddr { fd00::/64 }"));
    assert_non_null(strstr(dump, "tcp dport { 80-91, 443 }"));
    assert_null(strstr(dump, "numgen"));
    assert_null(strstr(dump, "output"));
    free(dump);
    assert_string_equal(f->detail, "drop tcp ingress from 10.0.0.0/8,192.0.2.7,fd00::/64 on ports "
                                   "80-91,443 (control port 7411 exempt)");

    char now[sizeof(baseline)];
    ruleset(now, sizeof(now));
    assert_int_equal(count(now, f->id), json_array_size(json_object_get(f->undo, "rules")));
    assert_int_equal(count(now, "faultline:control"), 4); /* two exemptions in each chain */
    revert(f->undo);
    assert_ruleset_is_baseline();
}

/* An agent that listens on one address exempts its control port on that
 * address only (issue 11 item 6): the rules name it as the local end. */
static void test_exemption_names_the_listening_address(void **state)
{
    (void)state;
    NEED_ENV();
    struct req r;
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_INGRESS, FAULTLINE__PROTOCOL__PROTOCOL_TCP,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    req_peer(&r, "192.0.2.7");
    req_port(&r, 80, 0);
    struct fl_fault *f = fault_new(&r);
    struct fl_agent_ctx ctx = {
        .guard = &guard, .state_dir = "/nonexistent", .control_port = CONTROL};
    snprintf(ctx.control_addr, sizeof(ctx.control_addr), "10.99.0.1");
    char err[512] = "";
    assert_in_srv();
    assert_int_equal(fl_kind_network_drop.prepare(f, &ctx, err, sizeof(err)), 0);
    assert_string_equal(json_string_value(json_object_get(f->undo, "control_addr")), "10.99.0.1");
    assert_int_equal(fl_kind_network_drop.apply(f, err, sizeof(err)), 0);
    char now[sizeof(baseline)];
    ruleset(now, sizeof(now));
    assert_int_equal(count(now, "faultline:control ip daddr 10.99.0.1 tcp dport 7411"), 1);
    assert_int_equal(count(now, "faultline:control ip saddr 10.99.0.1 tcp sport 7411"), 1);
    assert_int_equal(count(now, "faultline:control tcp dport 7411"), 0); /* not any address */
    revert(f->undo);
    assert_ruleset_is_baseline();
}

static void test_drop_port(void **state)
{
    (void)state;
    NEED_ENV();
    assert_int_equal(tcp4(PORT_A), 0);
    assert_int_equal(tcp4(PORT_B), 0);

    struct req r;
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_INGRESS, FAULTLINE__PROTOCOL__PROTOCOL_TCP,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    req_port(&r, PORT_A, 0);
    struct fl_fault *f = fault_new(&r);
    inject(f, CONTROL);
    assert_int_equal(tcp4(PORT_A), -ETIMEDOUT);
    assert_int_equal(tcp4(PORT_B), 0);
    assert_int_equal(tcp_try(AF_INET6, NULL, srv6, PORT_A), -ETIMEDOUT);

    /* the host's own rules are still there, beside ours */
    char now[sizeof(baseline)];
    ruleset(now, sizeof(now));
    assert_non_null(strstr(now, "table inet faultline"));
    assert_non_null(strstr(now, "comment \"host's own\""));
    assert_non_null(strstr(now, "table ip hostraw"));

    /* applying the same fault twice is refused and changes nothing */
    char err[256];
    assert_int_equal(fl_kind_network_drop.apply(f, err, sizeof(err)), -EEXIST);
    assert_non_null(strstr(err, f->id));
    char again[sizeof(baseline)];
    ruleset(again, sizeof(again));
    assert_string_equal(now, again);

    revert(f->undo);
    assert_int_equal(tcp4(PORT_A), 0);
    assert_ruleset_is_baseline();
    revert(f->undo); /* twice: still a success */
    assert_ruleset_is_baseline();
}

static void test_reject(void **state)
{
    (void)state;
    NEED_ENV();
    assert_int_equal(udp_answer(), 0);

    struct req r;
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_INGRESS, FAULTLINE__PROTOCOL__PROTOCOL_ALL,
             FAULTLINE__DROP_ACTION__DROP_ACTION_REJECT, 0);
    req_port(&r, PORT_A, 0);
    req_port(&r, PORT_U, 0);
    struct fl_fault *f = fault_new(&r);
    inject(f, CONTROL);
    uint64_t t0 = fl_mono_ms();
    assert_int_equal(tcp4(PORT_A), -ECONNREFUSED);
    /* answered, not waited out: a DROP only ends at TIMEOUT_MS */
    assert_true(fl_mono_ms() - t0 < TIMEOUT_MS / 2);
    assert_int_equal(tcp4(PORT_B), 0);
    assert_int_equal(udp_answer(), -ECONNREFUSED);
    revert(f->undo);
    assert_int_equal(tcp4(PORT_A), 0);
    assert_int_equal(udp_answer(), 0);

    /* protocol all, no ports: tcp gets resets, the rest icmp */
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_INGRESS, FAULTLINE__PROTOCOL__PROTOCOL_ALL,
             FAULTLINE__DROP_ACTION__DROP_ACTION_REJECT, 0);
    req_peer(&r, cli4b);
    f = fault_new(&r);
    inject(f, CONTROL);
    assert_int_equal(tcp_try(AF_INET, cli4b, srv4, PORT_B), -ECONNREFUSED);
    assert_int_equal(tcp_try(AF_INET, cli4, srv4, PORT_B), 0);
    revert(f->undo);
    assert_ruleset_is_baseline();
}

static void test_two_faults(void **state)
{
    (void)state;
    NEED_ENV();
    struct req ra, rb;
    req_init(&ra, FAULTLINE__DIRECTION__DIRECTION_INGRESS, FAULTLINE__PROTOCOL__PROTOCOL_TCP,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    req_port(&ra, PORT_A, 0);
    /* egress, by port: the server's answers come from port B */
    req_init(&rb, FAULTLINE__DIRECTION__DIRECTION_EGRESS, FAULTLINE__PROTOCOL__PROTOCOL_TCP,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    req_port(&rb, PORT_B, 0);
    struct fl_fault *fa = fault_new(&ra), *fb = fault_new(&rb);
    inject(fa, CONTROL);
    inject(fb, CONTROL);
    assert_int_equal(tcp4(PORT_A), -ETIMEDOUT);
    assert_int_equal(tcp4(PORT_B), -ETIMEDOUT);
    assert_int_equal(tcp4(PORT_C), 0);
    char now[sizeof(baseline)];
    ruleset(now, sizeof(now));
    assert_int_equal(count(now, "faultline:control"), 4); /* two exemptions in each chain */

    revert(fa->undo);
    assert_int_equal(tcp4(PORT_A), 0);
    assert_int_equal(tcp4(PORT_B), -ETIMEDOUT);
    revert(fa->undo);
    assert_int_equal(tcp4(PORT_B), -ETIMEDOUT);
    ruleset(now, sizeof(now));
    assert_null(strstr(now, fa->id));
    assert_non_null(strstr(now, fb->id));

    revert(fb->undo);
    assert_int_equal(tcp4(PORT_B), 0);
    assert_ruleset_is_baseline();
}

static void test_revert_from_journal(void **state)
{
    (void)state;
    NEED_ENV();
    struct req r;
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_BOTH, FAULTLINE__PROTOCOL__PROTOCOL_TCP,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    req_port(&r, PORT_A, 0);
    struct fl_fault *f = fault_new(&r);
    inject(f, CONTROL);
    assert_int_equal(tcp4(PORT_A), -ETIMEDOUT);

    char *text = json_dumps(f->undo, JSON_COMPACT);
    assert_non_null(text);
    json_t *undo = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(undo);

    /* another process, with nothing but the journal's record */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[256];
        int rc = fl_kind_network_drop.revert(undo, err, sizeof(err));
        if (rc != 0)
            fprintf(stderr, "child revert: %s\n", err);
        _exit(rc == 0 ? 0 : 1);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(tcp4(PORT_A), 0);
    assert_ruleset_is_baseline();
    revert(undo);
    json_decref(undo);
    assert_ruleset_is_baseline();
}

static void test_peers(void **state)
{
    (void)state;
    NEED_ENV();
    struct req r;
    char peer[64];

    /* ingress from one client address: the other one passes */
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_INGRESS, FAULTLINE__PROTOCOL__PROTOCOL_ALL,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    snprintf(peer, sizeof(peer), "%s/32", cli4);
    req_peer(&r, peer);
    struct fl_fault *f = fault_new(&r);
    inject(f, CONTROL);
    assert_int_equal(tcp_try(AF_INET, cli4, srv4, PORT_A), -ETIMEDOUT);
    assert_int_equal(tcp_try(AF_INET, cli4b, srv4, PORT_A), 0);
    assert_int_equal(tcp_try(AF_INET6, cli6, srv6, PORT_A), 0);
    revert(f->undo);
    assert_int_equal(tcp_try(AF_INET, cli4, srv4, PORT_A), 0);

    /* egress to one address: the server's answers to it are lost */
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_EGRESS, FAULTLINE__PROTOCOL__PROTOCOL_TCP,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    req_peer(&r, cli4b);
    f = fault_new(&r);
    inject(f, CONTROL);
    assert_int_equal(tcp_try(AF_INET, cli4b, srv4, PORT_A), -ETIMEDOUT);
    assert_int_equal(tcp_try(AF_INET, cli4, srv4, PORT_A), 0);
    revert(f->undo);

    /* an IPv6 peer: IPv4 from the same client is untouched */
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_BOTH, FAULTLINE__PROTOCOL__PROTOCOL_TCP,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    snprintf(peer, sizeof(peer), "%s/128", cli6);
    req_peer(&r, peer);
    f = fault_new(&r);
    inject(f, CONTROL);
    assert_int_equal(tcp_try(AF_INET6, cli6, srv6, PORT_A), -ETIMEDOUT);
    assert_int_equal(tcp_try(AF_INET, cli4, srv4, PORT_A), 0);
    revert(f->undo);
    assert_int_equal(tcp_try(AF_INET6, cli6, srv6, PORT_A), 0);
    assert_ruleset_is_baseline();
}

static void test_drop_everything_spares_control(void **state)
{
    (void)state;
    NEED_ENV();
    /* a fault already there: the exemption goes first into existing chains */
    struct req r0;
    req_init(&r0, FAULTLINE__DIRECTION__DIRECTION_INGRESS, FAULTLINE__PROTOCOL__PROTOCOL_UDP,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    req_port(&r0, 5353, 0);
    struct fl_fault *f0 = fault_new(&r0);
    inject(f0, CONTROL);

    struct req r;
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_BOTH, FAULTLINE__PROTOCOL__PROTOCOL_ALL,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    struct fl_fault *f = fault_new(&r);
    inject(f, PORT_C);
    assert_int_equal(tcp4(PORT_C), 0);
    /* with no neighbour entries left, IPv6 must still find its way (NDP is exempt) */
    assert_int_equal(RUN(ip_bin, "-n", ns_srv, "neigh", "flush", "all"), 0);
    assert_int_equal(RUN(ip_bin, "-n", ns_cli, "neigh", "flush", "all"), 0);
    assert_int_equal(tcp_try(AF_INET6, NULL, srv6, PORT_C), 0);
    assert_int_equal(tcp4(PORT_A), -ETIMEDOUT);
    assert_int_equal(udp_through(5), 0);
    revert(f->undo);
    assert_int_equal(tcp4(PORT_A), 0);
    assert_int_equal(udp_through(5), 5);
    revert(f0->undo);
    assert_ruleset_is_baseline();
}

/* connect() on s (which it closes) to dst:port, waiting TIMEOUT_MS: 0,
 * -ECONNREFUSED, -ETIMEDOUT or another -errno. */
static int connect_wait(int s, int family, const char *dst, uint16_t port)
{
    struct sockaddr_storage ss;
    socklen_t len = make_addr(family, dst, port, &ss);
    int flags = fcntl(s, F_GETFL);
    assert_int_equal(fcntl(s, F_SETFL, flags | O_NONBLOCK), 0);
    int rc = 0;
    if (connect(s, (struct sockaddr *)&ss, len) != 0) {
        rc = -errno;
        if (rc == -EINPROGRESS) {
            struct pollfd p = {.fd = s, .events = POLLOUT};
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            if (poll(&p, 1, TIMEOUT_MS) == 0)
                rc = -ETIMEDOUT;
            else if (getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0)
                rc = -soerr;
            else
                rc = -errno;
        }
    }
    close(s);
    drain_accepts();
    return rc;
}

/* A client socket bound to ip:port (SO_REUSEADDR: ports are reused across
 * the test). */
static int cli_socket_at(const char *ip, uint16_t port)
{
    int s = cli_socket(AF_INET, SOCK_STREAM);
    int one = 1;
    assert_int_equal(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
    struct sockaddr_storage ss;
    socklen_t len = make_addr(AF_INET, ip, port, &ss);
    assert_int_equal(bind(s, (struct sockaddr *)&ss, len), 0);
    return s;
}

/* from the client's second address, source port sport */
static int cli_socket_from(uint16_t sport)
{
    return cli_socket_at(cli4b, sport);
}

/* Sends one byte each way over an established pair; true when both arrive. */
static bool talk(int a, int b)
{
    char c = 0;
    struct pollfd p = {.fd = b, .events = POLLIN};
    if (send(a, "q", 1, MSG_NOSIGNAL) != 1 || poll(&p, 1, TIMEOUT_MS) != 1 ||
        recv(b, &c, 1, 0) != 1)
        return false;
    p.fd = a;
    return send(b, "a", 1, MSG_NOSIGNAL) == 1 && poll(&p, 1, TIMEOUT_MS) == 1 &&
           recv(a, &c, 1, 0) == 1;
}

/* What the exemption lets through is the agent's own control connections:
 * not traffic that merely has the control port on one side. */
static void test_control_exemption_is_the_agents_only(void **state)
{
    (void)state;
    NEED_ENV();
    /* the controller's channel, open before the first fault (nothing tracks
     * it yet), and a listener on the control port on the client's side */
    int ctl = cli_socket(AF_INET, SOCK_STREAM);
    struct sockaddr_storage ss;
    socklen_t len = make_addr(AF_INET, srv4, PORT_C, &ss);
    assert_int_equal(connect(ctl, (struct sockaddr *)&ss, len), 0);
    int agent_end = accept4(listeners[2], NULL, NULL, SOCK_CLOEXEC);
    assert_true(agent_end >= 0);
    assert_true(talk(ctl, agent_end));
    int remote_ctl = cli_socket_at(cli4, PORT_C);
    assert_int_equal(listen(remote_ctl, 16), 0);
    /* before the fault, both tricks connect: the test can tell */
    assert_int_equal(connect_wait(cli_socket_from(PORT_C), AF_INET, srv4, PORT_A), 0);
    assert_int_equal(
        connect_wait(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), AF_INET, cli4, PORT_C), 0);

    struct req r;
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_BOTH, FAULTLINE__PROTOCOL__PROTOCOL_ALL,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    struct fl_fault *f = fault_new(&r);
    inject(f, PORT_C);

    /* the channel goes on, both ways; new control connections come in */
    bool channel = talk(ctl, agent_end);
    int fresh = tcp4(PORT_C);
    int fresh6 = tcp_try(AF_INET6, NULL, srv6, PORT_C);
    /* a controller on this very host, over loopback, to either address */
    int local = connect_wait(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), AF_INET, srv4, PORT_C);
    int local_lo =
        connect_wait(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), AF_INET, "127.0.0.1", PORT_C);
    /* from source port PORT_C to another port: dropped */
    int from_port = connect_wait(cli_socket_from(PORT_C), AF_INET, srv4, PORT_B);
    /* from this host to a remote PORT_C (not the agent): dropped */
    int to_remote =
        connect_wait(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), AF_INET, cli4, PORT_C);
    int plain = tcp4(PORT_A);

    revert(f->undo);
    close(remote_ctl);
    close(agent_end);
    close(ctl);
    assert_true(channel);
    assert_int_equal(fresh, 0);
    assert_int_equal(fresh6, 0);
    assert_int_equal(local, 0);
    assert_int_equal(local_lo, 0);
    assert_int_equal(from_port, -ETIMEDOUT);
    assert_int_equal(to_remote, -ETIMEDOUT);
    assert_int_equal(plain, -ETIMEDOUT);
    assert_ruleset_is_baseline();
}

/* A table left by an earlier agent holds the wide exemption (the port on
 * either side, comment "faultline:control"): the next fault replaces it. */
static void test_wide_exemption_replaced(void **state)
{
    (void)state;
    NEED_ENV();
    char cmd[1200];
    snprintf(cmd, sizeof(cmd),
             "add table inet faultline\n"
             "add chain inet faultline input { type filter hook input priority -10; policy "
             "accept; }\n"
             "add chain inet faultline output { type filter hook output priority -10; policy "
             "accept; }\n"
             "add rule inet faultline input tcp dport %d accept comment \"faultline:control\"\n"
             "add rule inet faultline input tcp sport %d accept comment \"faultline:control\"\n"
             "add rule inet faultline output tcp dport %d accept comment \"faultline:control\"\n"
             "add rule inet faultline output tcp sport %d accept comment \"faultline:control\"\n"
             "add rule inet faultline input udp dport 5353 drop comment "
             "\"faultline:f-00000000000000aa\"\n",
             PORT_C, PORT_C, PORT_C, PORT_C);
    assert_int_equal(RUN(ip_bin, "netns", "exec", ns_srv, nft_bin, cmd), 0);

    struct req r;
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_BOTH, FAULTLINE__PROTOCOL__PROTOCOL_ALL,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    struct fl_fault *f = fault_new(&r);
    inject(f, PORT_C);
    char now[sizeof(baseline)];
    ruleset(now, sizeof(now));
    int from_port = connect_wait(cli_socket_from(PORT_C), AF_INET, srv4, PORT_B);
    int fresh = tcp4(PORT_C);
    revert(f->undo);
    assert_int_equal(count(now, "\"faultline:control\""), 0);     /* the wide ones are gone */
    assert_int_equal(count(now, "\"faultline:control "), 4);      /* the agent's own are in */
    assert_non_null(strstr(now, "faultline:f-00000000000000aa")); /* another fault's stays */
    assert_int_equal(from_port, -ETIMEDOUT);
    assert_int_equal(fresh, 0);
}

static void test_percent(void **state)
{
    (void)state;
    NEED_ENV();
    assert_int_equal(udp_through(200), 200);
    struct req r;
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_INGRESS, FAULTLINE__PROTOCOL__PROTOCOL_UDP,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 50);
    req_port(&r, PORT_U, 0);
    struct fl_fault *f = fault_new(&r);
    inject(f, CONTROL);
    assert_non_null(strstr(f->detail, "50% of udp"));
    int got = udp_through(200);
    print_message("percent 50: %d of 200 datagrams arrived\n", got);
    assert_true(got >= 40 && got <= 160);
    revert(f->undo);
    assert_int_equal(udp_through(200), 200);
    assert_ruleset_is_baseline();
}

struct worker {
    struct fl_fault *f;
    bool do_revert;
    int rc;
    char err[256];
};

static void *work(void *arg)
{
    struct worker *w = arg;
    w->rc = w->do_revert ? fl_kind_network_drop.revert(w->f->undo, w->err, sizeof(w->err))
                         : fl_kind_network_drop.apply(w->f, w->err, sizeof(w->err));
    return NULL;
}

static void run_workers(struct worker *w, size_t n)
{
    pthread_t t[8];
    for (size_t i = 0; i < n; i++) /* threads start in this thread's namespace */
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    for (size_t i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    for (size_t i = 0; i < n; i++) {
        if (w[i].rc != 0)
            print_message("worker %zu: %s\n", i, w[i].err);
        assert_int_equal(w[i].rc, 0);
    }
}

static void test_concurrent(void **state)
{
    (void)state;
    NEED_ENV();
    enum { N = 6 };
    struct req r[N];
    struct worker w[N];
    char err[256];
    memset(w, 0, sizeof(w));
    for (size_t i = 0; i < N; i++) {
        req_init(&r[i], FAULTLINE__DIRECTION__DIRECTION_BOTH, FAULTLINE__PROTOCOL__PROTOCOL_TCP,
                 FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
        req_port(&r[i], 20000 + (uint32_t)i, 0);
        w[i].f = fault_new(&r[i]);
        assert_int_equal(prepare(w[i].f, CONTROL, err, sizeof(err)), 0);
    }
    run_workers(w, N);
    char now[sizeof(baseline)];
    ruleset(now, sizeof(now));
    assert_int_equal(count(now, "faultline:control"), 4); /* two exemptions in each chain */
    for (size_t i = 0; i < N; i++)
        assert_non_null(strstr(now, w[i].f->id));
    for (size_t i = 0; i < N; i++)
        w[i].do_revert = true;
    run_workers(w, N);
    assert_ruleset_is_baseline();
}

static void test_remove_table(void **state)
{
    (void)state;
    NEED_ENV();
    char err[256];
    assert_int_equal(fl_network_remove_table(FL_NETWORK_TABLE, err, sizeof(err)), 0); /* none yet */
    struct req ra, rb;
    req_init(&ra, FAULTLINE__DIRECTION__DIRECTION_BOTH, FAULTLINE__PROTOCOL__PROTOCOL_ALL,
             FAULTLINE__DROP_ACTION__DROP_ACTION_REJECT, 30);
    req_peer(&ra, "192.0.2.0/24");
    req_peer(&ra, "2001:db8::/32");
    req_init(&rb, FAULTLINE__DIRECTION__DIRECTION_INGRESS, FAULTLINE__PROTOCOL__PROTOCOL_TCP,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    req_port(&rb, PORT_A, 0);
    struct fl_fault *fa = fault_new(&ra), *fb = fault_new(&rb);
    inject(fa, CONTROL);
    inject(fb, CONTROL);
    assert_int_equal(tcp4(PORT_A), -ETIMEDOUT);
    assert_int_equal(fl_network_remove_table(FL_NETWORK_TABLE, err, sizeof(err)), 0);
    assert_ruleset_is_baseline();
    assert_int_equal(tcp4(PORT_A), 0);
    assert_int_equal(fl_network_remove_table(FL_NETWORK_TABLE, err, sizeof(err)), 0);
    revert(fa->undo); /* their table is gone: nothing to do, success */
    revert(fb->undo);
    assert_ruleset_is_baseline();
}

/* Two agents' tables side by side (issue 12 item 3): each fault in the table
 * its agent's context names, each revert and each table removal touching that
 * table only; a journal record of an earlier agent (no "table") reverts in
 * `faultline`; a record naming a table not of faultline's is refused. */
static void test_tables_per_agent(void **state)
{
    (void)state;
    NEED_ENV();
    char t1[FL_NETWORK_TABLE_MAX], t2[FL_NETWORK_TABLE_MAX], again[FL_NETWORK_TABLE_MAX];
    fl_network_table_for("/var/lib/faultline", t1);
    assert_string_equal(t1, "faultline");
    fl_network_table_for("/nonexistent/agent-1", t1);
    fl_network_table_for("/nonexistent/agent-2", t2);
    fl_network_table_for("/nonexistent/agent-1", again);
    assert_string_equal(t1, again); /* stable */
    assert_string_not_equal(t1, t2);
    assert_true(fl_network_table_ok(t1) && fl_network_table_ok(t2));
    assert_int_equal(strlen(t1), strlen("faultline_") + FL_NETWORK_TABLE_HASH_DIGITS);
    assert_false(fl_network_table_ok("filter"));
    assert_false(fl_network_table_ok("faultline_0123"));
    assert_false(fl_network_table_ok("faultline_0123456789ab; flush ruleset"));

    struct req ra, rb;
    req_init(&ra, FAULTLINE__DIRECTION__DIRECTION_INGRESS, FAULTLINE__PROTOCOL__PROTOCOL_TCP,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    req_port(&ra, PORT_A, 0);
    req_init(&rb, FAULTLINE__DIRECTION__DIRECTION_INGRESS, FAULTLINE__PROTOCOL__PROTOCOL_TCP,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    req_port(&rb, PORT_B, 0);
    struct fl_fault *fa = fault_new(&ra), *fb = fault_new(&rb);
    char err[512] = "";
    struct fl_agent_ctx c1 = {
        .guard = &guard, .state_dir = "/nonexistent/agent-1", .control_port = CONTROL};
    struct fl_agent_ctx c2 = c1;
    snprintf(c1.nft_table, sizeof(c1.nft_table), "%s", t1);
    snprintf(c2.nft_table, sizeof(c2.nft_table), "%s", t2);
    assert_int_equal(fl_kind_network_drop.prepare(fa, &c1, err, sizeof(err)), 0);
    assert_int_equal(fl_kind_network_drop.apply(fa, err, sizeof(err)), 0);
    assert_int_equal(fl_kind_network_drop.prepare(fb, &c2, err, sizeof(err)), 0);
    assert_int_equal(fl_kind_network_drop.apply(fb, err, sizeof(err)), 0);
    assert_string_equal(json_string_value(json_object_get(fa->undo, "table")), t1);
    assert_int_equal(tcp4(PORT_A), -ETIMEDOUT);
    assert_int_equal(tcp4(PORT_B), -ETIMEDOUT);
    char now[sizeof(baseline)], want[64];
    ruleset(now, sizeof(now));
    snprintf(want, sizeof(want), "table inet %s", t1);
    assert_non_null(strstr(now, want));
    snprintf(want, sizeof(want), "table inet %s", t2);
    assert_non_null(strstr(now, want));

    /* agent 1's table going whole leaves agent 2's fault in force */
    assert_int_equal(fl_network_remove_table(t1, err, sizeof(err)), 0);
    assert_int_equal(tcp4(PORT_A), 0);
    assert_int_equal(tcp4(PORT_B), -ETIMEDOUT);
    assert_int_equal(fl_network_remove_table(FL_NETWORK_TABLE, err, sizeof(err)), 0);
    assert_int_equal(tcp4(PORT_B), -ETIMEDOUT);
    revert(fa->undo); /* its table is gone: success, and agent 2's stays */
    assert_int_equal(tcp4(PORT_B), -ETIMEDOUT);

    /* a record naming another table is refused, touching nothing */
    json_t *bad = json_deep_copy(fb->undo);
    json_object_set_new(bad, "table", json_string("filter"));
    assert_int_equal(fl_kind_network_drop.revert(bad, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "names no table of faultline's"));
    json_decref(bad);
    assert_int_equal(tcp4(PORT_B), -ETIMEDOUT);
    revert(fb->undo);
    assert_int_equal(tcp4(PORT_B), 0);
    assert_ruleset_is_baseline();

    /* an earlier agent's record: no "table", its rules in `faultline` */
    struct fl_fault *fc = fault_new(&ra);
    inject(fc, CONTROL); /* a context without nft_table: the default table */
    assert_string_equal(json_string_value(json_object_get(fc->undo, "table")), "faultline");
    json_t *old = json_deep_copy(fc->undo);
    json_object_del(old, "table");
    assert_int_equal(tcp4(PORT_A), -ETIMEDOUT);
    revert(old);
    json_decref(old);
    assert_int_equal(tcp4(PORT_A), 0);
    assert_ruleset_is_baseline();
}

/* Every combination nft must accept, applied and reverted. */
static void test_matrix(void **state)
{
    (void)state;
    NEED_ENV();
    static const Faultline__Direction dirs[] = {FAULTLINE__DIRECTION__DIRECTION_BOTH,
                                                FAULTLINE__DIRECTION__DIRECTION_INGRESS,
                                                FAULTLINE__DIRECTION__DIRECTION_EGRESS};
    static const Faultline__Protocol protos[] = {
        FAULTLINE__PROTOCOL__PROTOCOL_ALL, FAULTLINE__PROTOCOL__PROTOCOL_TCP,
        FAULTLINE__PROTOCOL__PROTOCOL_UDP, FAULTLINE__PROTOCOL__PROTOCOL_ICMP};
    size_t n = 0;
    for (size_t d = 0; d < 3; d++)
        for (size_t p = 0; p < 4; p++)
            for (int act = 0; act < 2; act++)
                for (int peers = 0; peers < 3; peers++)
                    for (int ports = 0; ports < 2; ports++) {
                        if (ports && protos[p] == FAULTLINE__PROTOCOL__PROTOCOL_ICMP)
                            continue;
                        struct req r;
                        req_init(&r, dirs[d], protos[p], (Faultline__DropAction)act,
                                 (n % 2) ? 25 : 0);
                        if (peers >= 1)
                            req_peer(&r, "198.51.100.0/24");
                        if (peers >= 2)
                            req_peer(&r, "2001:db8:1::7");
                        if (ports) {
                            req_port(&r, 7000, 7010);
                            req_port(&r, 443, 0);
                        }
                        struct fl_fault *f = fault_new(&r);
                        inject(f, CONTROL);
                        revert(f->undo);
                        faults_free();
                        n++;
                    }
    print_message("%zu combinations applied and reverted\n", n);
    assert_ruleset_is_baseline();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_validation, test_teardown),
        cmocka_unit_test_teardown(test_normalise, test_teardown),
        cmocka_unit_test_teardown(test_drop_port, test_teardown),
        cmocka_unit_test_teardown(test_reject, test_teardown),
        cmocka_unit_test_teardown(test_two_faults, test_teardown),
        cmocka_unit_test_teardown(test_revert_from_journal, test_teardown),
        cmocka_unit_test_teardown(test_peers, test_teardown),
        cmocka_unit_test_teardown(test_drop_everything_spares_control, test_teardown),
        cmocka_unit_test_teardown(test_control_exemption_is_the_agents_only, test_teardown),
        cmocka_unit_test_teardown(test_exemption_names_the_listening_address, test_teardown),
        cmocka_unit_test_teardown(test_wide_exemption_replaced, test_teardown),
        cmocka_unit_test_teardown(test_percent, test_teardown),
        cmocka_unit_test_teardown(test_concurrent, test_teardown),
        cmocka_unit_test_teardown(test_remove_table, test_teardown),
        cmocka_unit_test_teardown(test_matrix, test_teardown),
        cmocka_unit_test_teardown(test_tables_per_agent, test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
