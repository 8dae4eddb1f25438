/* Probes against real things on loopback, on a real libuv loop.
 *
 * HTTP: a tiny server in a thread (blocking sockets, one connection at a
 * time) on 127.0.0.1 with an ephemeral port: /ok 200 "ok", /fail 503,
 * /slow 200 after SLOW_MS (given up early when the client hangs up), /body 200
 * with some text; it remembers the last request head so a test can see the
 * method and headers that arrived. TCP: a listener, a closed port, and a
 * listener whose accept queue is full (SYNs dropped: a timeout that stays on
 * loopback). Exec: /bin/true, /bin/false, /bin/sh -c 'exit 3' (argv, no
 * shell of ours), a missing binary, /bin/sleep 5 against a 200 ms timeout.
 * Every test closes all it opened and checks uv_loop_close() == 0.
 *
 * Timing checks hold on a busy machine: a lower bound where a timer can never
 * fire early; an upper bound only as "well under the slow thing it must not
 * wait for"; cadence against a reference uv_timer on the same loop in the
 * same window, never against a fixed figure only an idle machine meets. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <uv.h>

#include "common/clock.h"
#include "controller/probes/probe.h"

#define SLOW_MS 2000  /* /slow answers after this, unless the client hangs up */
#define SLEEP_MS 5000 /* /bin/sleep SLEEP_ARG */
#define SLEEP_ARG "5"
/* The kernel's first SYN retransmission (TCP_TIMEOUT_INIT): a connect whose
 * SYN was dropped waits at least this long unless the probe gives up. */
#define SYN_RTO_MS 1000

/* ------------------------------------------------------------------ server */

struct server {
    int fd;
    uint16_t port;
    pthread_t thread;
    volatile int stop;
    pthread_mutex_t mu;
    char last_head[4096];
    int requests;
};

static struct server srv;

static void send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

static void respond(int fd, int status, const char *reason, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nContent-Type: text/plain\r\n"
                     "Connection: close\r\n\r\n",
                     status, reason, strlen(body));
    send_all(fd, head, (size_t)n);
    send_all(fd, body, strlen(body));
}

static void serve(int fd)
{
    char req[4096];
    size_t len = 0;
    while (len < sizeof(req) - 1) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 2000) <= 0)
            return;
        ssize_t n = recv(fd, req + len, sizeof(req) - 1 - len, 0);
        if (n <= 0)
            return;
        len += (size_t)n;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n") != NULL)
            break;
    }
    pthread_mutex_lock(&srv.mu);
    snprintf(srv.last_head, sizeof(srv.last_head), "%s", req);
    srv.requests++;
    pthread_mutex_unlock(&srv.mu);

    const char *sp = strchr(req, ' ');
    const char *path = sp != NULL ? sp + 1 : "";
    if (strncmp(path, "/ok ", 4) == 0) {
        respond(fd, 200, "OK", "ok");
    } else if (strncmp(path, "/fail ", 6) == 0) {
        respond(fd, 503, "Service Unavailable", "down");
    } else if (strncmp(path, "/body ", 6) == 0) {
        respond(fd, 200, "OK", "the quick brown fox jumps over the lazy dog");
    } else if (strncmp(path, "/big ", 5) == 0) {
        /* 100 000 bytes sent in pieces, so that the client reads chunks:
         * "NEEDLE-ACROSS" split between two sends 2 ms apart, "BEYOND" past
         * the first 64 KiB */
        static char big[100000];
        memset(big, 'x', sizeof(big));
        memcpy(big + 20000 - 6, "NEEDLE-ACROSS", 13);
        memcpy(big + 70000, "BEYOND", 6);
        char head[160];
        int n = snprintf(head, sizeof(head),
                         "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                         sizeof(big));
        send_all(fd, head, (size_t)n);
        send_all(fd, big, 20000);
        usleep(2000);
        send_all(fd, big + 20000, sizeof(big) - 20000);
    } else if (strncmp(path, "/slow ", 6) == 0) {
        /* SLOW_MS, unless the client hangs up first. */
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, SLOW_MS) == 0)
            respond(fd, 200, "OK", "slow");
    } else {
        respond(fd, 404, "Not Found", "");
    }
}

static void *server_main(void *arg)
{
    (void)arg;
    while (!srv.stop) {
        struct pollfd pfd = {.fd = srv.fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        int c = accept(srv.fd, NULL, NULL);
        if (c < 0)
            continue;
        serve(c);
        close(c);
    }
    return NULL;
}

/* A listening socket on 127.0.0.1, ephemeral port. */
static int listen_loopback(int backlog, uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, backlog) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

/* A port nothing listens on: bound, then closed. */
static uint16_t closed_port(void)
{
    uint16_t port = 0;
    int fd = listen_loopback(1, &port);
    assert_true(fd >= 0);
    close(fd);
    return port;
}

static int server_up(void **state)
{
    (void)state;
    memset(&srv, 0, sizeof(srv));
    srv.fd = listen_loopback(16, &srv.port);
    if (srv.fd < 0)
        return -1;
    pthread_mutex_init(&srv.mu, NULL);
    return pthread_create(&srv.thread, NULL, server_main, NULL) == 0 ? 0 : -1;
}

static int server_down(void **state)
{
    (void)state;
    srv.stop = 1;
    pthread_join(srv.thread, NULL);
    close(srv.fd);
    pthread_mutex_destroy(&srv.mu);
    return 0;
}

/* ------------------------------------------------------------------ harness */

#define MAX_RESULTS 32

struct run {
    uv_loop_t loop;
    struct fl_probe *probe;
    struct fl_probe_result results[MAX_RESULTS];
    int n;
    int want; /* stop after this many results */
    bool stopped;
    uint64_t mono_at[MAX_RESULTS];
    /* run_probe_beside_reference: a uv_timer repeating at the probe's
     * interval on the same loop, and its tick count at each result */
    uv_timer_t ref;
    bool with_ref;
    int ref_ticks;
    int ref_at[MAX_RESULTS];
};

static void on_stopped(void *arg)
{
    struct run *r = arg;
    r->stopped = true;
}

static void on_result(struct fl_probe *p, const struct fl_probe_result *res, void *arg)
{
    struct run *r = arg;
    assert_ptr_equal(p, r->probe);
    if (r->n < MAX_RESULTS) {
        r->mono_at[r->n] = fl_mono_ms();
        r->ref_at[r->n] = r->ref_ticks;
        r->results[r->n++] = *res;
    }
    if (r->n == r->want) {
        fl_probe_stop(p, on_stopped, r);
        if (r->with_ref)
            uv_close((uv_handle_t *)&r->ref, NULL);
    }
}

static void on_ref_tick(uv_timer_t *t)
{
    struct run *r = t->data;
    r->ref_ticks++;
}

/* Runs spec to completion: `want` results (1 with fl_probe_once). */
static void run_probe(struct run *r, const struct fl_probe_spec *spec, int want)
{
    memset(r, 0, sizeof(*r));
    r->want = want;
    assert_int_equal(uv_loop_init(&r->loop), 0);
    if (want == 1)
        assert_int_equal(fl_probe_once(&r->loop, spec, on_result, r, &r->probe), 0);
    else
        assert_int_equal(fl_probe_start(&r->loop, spec, on_result, r, &r->probe), 0);
    assert_int_equal(uv_run(&r->loop, UV_RUN_DEFAULT), 0);
    assert_true(r->stopped);
    assert_int_equal(r->n, want);
    assert_int_equal(uv_loop_close(&r->loop), 0);
}

/* run_probe with a reference timer beside the probe: same loop, same
 * interval, started at the same moment. Whatever load slows the loop slows
 * both alike, so the probe's cadence is judged against the reference's. */
static void run_probe_beside_reference(struct run *r, const struct fl_probe_spec *spec, int want)
{
    memset(r, 0, sizeof(*r));
    r->want = want;
    r->with_ref = true;
    assert_int_equal(uv_loop_init(&r->loop), 0);
    assert_int_equal(uv_timer_init(&r->loop, &r->ref), 0);
    r->ref.data = r;
    assert_int_equal(fl_probe_start(&r->loop, spec, on_result, r, &r->probe), 0);
    assert_int_equal(uv_timer_start(&r->ref, on_ref_tick, spec->interval_ms, spec->interval_ms), 0);
    assert_int_equal(uv_run(&r->loop, UV_RUN_DEFAULT), 0);
    assert_true(r->stopped);
    assert_int_equal(r->n, want);
    assert_int_equal(uv_loop_close(&r->loop), 0);
    fprintf(stderr, "  %d results while the reference ticked %d times\n", want,
            r->ref_at[want - 1]);
}

static struct fl_probe_result once(const struct fl_probe_spec *spec)
{
    struct run *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    run_probe(r, spec, 1);
    struct fl_probe_result res = r->results[0];
    free(r);
    return res;
}

/* Specs built on the stack: the runner copies them, so string literals do. */
static struct fl_probe_spec http_spec(const char *path, uint16_t port, char *url, size_t url_len)
{
    snprintf(url, url_len, "http://127.0.0.1:%u%s", (unsigned)port, path);
    struct fl_probe_spec s;
    memset(&s, 0, sizeof(s));
    s.name = (char *)"web";
    s.type = FL_PROBE_HTTP;
    s.timeout_ms = 1000;
    s.u.http.url = url;
    return s;
}

/* ------------------------------------------------------------------ http */

static void test_http_ok(void **state)
{
    (void)state;
    char url[128];
    struct fl_probe_spec s = http_spec("/ok", srv.port, url, sizeof(url));
    uint64_t before = fl_now_ms();
    struct fl_probe_result r = once(&s);
    assert_true(r.ok);
    assert_string_equal(r.detail, "200");
    assert_true(r.started_ms >= before && r.started_ms <= fl_now_ms());
    assert_true(r.latency_ms < 1000);
}

static void test_http_status_mismatch(void **state)
{
    (void)state;
    char url[128];
    struct fl_probe_spec s = http_spec("/fail", srv.port, url, sizeof(url));
    struct fl_probe_result r = once(&s);
    assert_false(r.ok);
    assert_string_equal(r.detail, "status 503, expected 2xx");

    s.u.http.expect_status[0] = 200;
    s.u.http.n_expect_status = 1;
    r = once(&s);
    assert_false(r.ok);
    assert_string_equal(r.detail, "status 503, expected 200");
}

static void test_http_status_list(void **state)
{
    (void)state;
    char url[128];
    struct fl_probe_spec s = http_spec("/fail", srv.port, url, sizeof(url));
    s.u.http.expect_status[0] = 200;
    s.u.http.expect_status[1] = 503;
    s.u.http.n_expect_status = 2;
    struct fl_probe_result r = once(&s);
    assert_true(r.ok);
    assert_string_equal(r.detail, "503");

    s = http_spec("/ok", srv.port, url, sizeof(url));
    s.u.http.expect_status[0] = 204;
    s.u.http.expect_status[1] = 301;
    s.u.http.expect_status[2] = 503;
    s.u.http.n_expect_status = 3;
    r = once(&s);
    assert_false(r.ok);
    assert_string_equal(r.detail, "status 200, expected 204, 301 or 503");
}

static void test_http_body(void **state)
{
    (void)state;
    char url[128];
    struct fl_probe_spec s = http_spec("/body", srv.port, url, sizeof(url));
    s.u.http.body_contains = (char *)"brown fox";
    struct fl_probe_result r = once(&s);
    assert_true(r.ok);

    s.u.http.body_contains = (char *)"ok";
    r = once(&s);
    assert_false(r.ok);
    assert_string_equal(r.detail, "body lacks \"ok\"");

    /* searched as it streams, never kept: a needle split between two reads
     * is found; one past the first 64 KiB is not looked for */
    s = http_spec("/big", srv.port, url, sizeof(url));
    s.u.http.body_contains = (char *)"NEEDLE-ACROSS";
    r = once(&s);
    assert_true(r.ok);
    s.u.http.body_contains = (char *)"BEYOND";
    r = once(&s);
    assert_false(r.ok);
    assert_string_equal(r.detail, "body lacks \"BEYOND\" (in its first 64 KiB)");
}

static void test_http_timeout(void **state)
{
    (void)state;
    char url[128];
    struct fl_probe_spec s = http_spec("/slow", srv.port, url, sizeof(url));
    s.timeout_ms = 300;
    uint64_t t0 = fl_mono_ms();
    struct fl_probe_result r = once(&s);
    uint64_t took = fl_mono_ms() - t0;
    assert_false(r.ok);
    assert_string_equal(r.detail, "timeout after 300ms");
    /* never early; and well under the server's delay: nothing waited for it */
    assert_true(r.latency_ms >= 290 && r.latency_ms < SLOW_MS / 2);
    assert_true(took < SLOW_MS / 2);
}

static void test_http_refused(void **state)
{
    (void)state;
    char url[128];
    struct fl_probe_spec s = http_spec("/ok", closed_port(), url, sizeof(url));
    struct fl_probe_result r = once(&s);
    assert_false(r.ok);
    assert_string_equal(r.detail, "connection refused");
}

static void test_http_method_and_header(void **state)
{
    (void)state;
    char url[128];
    struct fl_probe_spec s = http_spec("/ok", srv.port, url, sizeof(url));
    s.u.http.method = (char *)"PUT";
    s.u.http.headers[0] = (char *)"X-Probe: faultline";
    s.u.http.headers[1] = (char *)"Authorization: Bearer t0k3n";
    s.u.http.n_headers = 2;
    struct fl_probe_result r = once(&s);
    assert_true(r.ok);
    pthread_mutex_lock(&srv.mu);
    char head[sizeof(srv.last_head)];
    memcpy(head, srv.last_head, sizeof(head));
    pthread_mutex_unlock(&srv.mu);
    assert_true(strncmp(head, "PUT /ok HTTP/1.1\r\n", 18) == 0);
    assert_non_null(strstr(head, "\r\nX-Probe: faultline\r\n"));
    assert_non_null(strstr(head, "\r\nAuthorization: Bearer t0k3n\r\n"));
}

/* Two HTTP probes at once on one loop share the curl multi. */
static void test_http_two_probes(void **state)
{
    (void)state;
    char url1[128], url2[128];
    struct fl_probe_spec a = http_spec("/ok", srv.port, url1, sizeof(url1));
    struct fl_probe_spec b = http_spec("/fail", srv.port, url2, sizeof(url2));
    a.interval_ms = b.interval_ms = 50;
    struct run *ra = calloc(1, sizeof(*ra)), *rb = calloc(1, sizeof(*rb));
    assert_non_null(ra);
    assert_non_null(rb);
    ra->want = rb->want = 3;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(fl_probe_start(&loop, &a, on_result, ra, &ra->probe), 0);
    assert_int_equal(fl_probe_start(&loop, &b, on_result, rb, &rb->probe), 0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_true(ra->stopped && rb->stopped);
    for (int i = 0; i < 3; i++) {
        assert_true(ra->results[i].ok);
        assert_false(rb->results[i].ok);
    }
    assert_int_equal(uv_loop_close(&loop), 0);
    free(ra);
    free(rb);
}

/* ------------------------------------------------------------------ tcp */

static struct fl_probe_spec tcp_spec(uint16_t port)
{
    struct fl_probe_spec s;
    memset(&s, 0, sizeof(s));
    s.name = (char *)"port";
    s.type = FL_PROBE_TCP;
    s.timeout_ms = 1000;
    s.u.tcp.host = (char *)"127.0.0.1";
    s.u.tcp.port = port;
    return s;
}

static void test_tcp_open(void **state)
{
    (void)state;
    struct fl_probe_spec s = tcp_spec(srv.port);
    struct fl_probe_result r = once(&s);
    assert_true(r.ok);
    s.u.tcp.host = (char *)"localhost"; /* through the resolver */
    r = once(&s);
    assert_true(r.ok);
}

static void test_tcp_refused(void **state)
{
    (void)state;
    struct fl_probe_spec s = tcp_spec(closed_port());
    struct fl_probe_result r = once(&s);
    assert_false(r.ok);
    assert_string_equal(r.detail, "connection refused");
}

/* A listener that never accepts, its queue full: Linux drops further SYNs,
 * so the connect hangs, on loopback. */
static void test_tcp_timeout(void **state)
{
    (void)state;
    uint16_t port;
    int lfd = listen_loopback(0, &port);
    assert_true(lfd >= 0);
    int fillers[4];
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons(port);
    for (int i = 0; i < 4; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        assert_true(fillers[i] >= 0);
        (void)connect(fillers[i], (struct sockaddr *)&sa, sizeof(sa));
    }
    struct fl_probe_spec s = tcp_spec(port);
    s.timeout_ms = 200;
    struct fl_probe_result r = once(&s);
    for (int i = 0; i < 4; i++)
        close(fillers[i]);
    close(lfd);
    if (r.ok)
        skip(); /* a kernel that queued it anyway: nothing to learn here */
    assert_string_equal(r.detail, "timeout after 200ms");
    /* never early; and before the SYN's first retransmission: the probe's own
     * deadline ended it, not anything the kernel does */
    assert_true(r.latency_ms >= 190 && r.latency_ms < SYN_RTO_MS);
}

/* Results on the interval's cadence; stopping mid-run is clean. */
static void test_tcp_interval(void **state)
{
    (void)state;
    struct fl_probe_spec s = tcp_spec(srv.port);
    s.interval_ms = 100;
    struct run *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    run_probe_beside_reference(r, &s, 6);
    for (int i = 0; i < 6; i++)
        assert_true(r->results[i].ok);
    /* never early; and as many attempts as the reference's ticks (the probe's
     * first is at once), less one for where the window's edge falls */
    uint64_t span = r->mono_at[5] - r->mono_at[0];
    assert_true(span >= 450);
    assert_true(6 >= r->ref_at[5] - 1);
    assert_true(r->results[5].started_ms - r->results[0].started_ms >= 450);
    free(r);
}

/* ------------------------------------------------------------------ exec */

static struct fl_probe_spec exec_spec(const char *a0, const char *a1, const char *a2)
{
    struct fl_probe_spec s;
    memset(&s, 0, sizeof(s));
    s.name = (char *)"cmd";
    s.type = FL_PROBE_EXEC;
    s.timeout_ms = 2000;
    const char *args[] = {a0, a1, a2};
    for (int i = 0; i < 3 && args[i] != NULL; i++)
        s.u.exec.argv[s.u.exec.argc++] = (char *)args[i];
    return s;
}

static void assert_no_children(void)
{
    int st;
    errno = 0;
    assert_int_equal(waitpid(-1, &st, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

static void test_exec_true_false(void **state)
{
    (void)state;
    struct fl_probe_spec s = exec_spec("/bin/true", NULL, NULL);
    struct fl_probe_result r = once(&s);
    assert_true(r.ok);
    assert_string_equal(r.detail, "exit 0");

    s = exec_spec("/bin/false", NULL, NULL);
    r = once(&s);
    assert_false(r.ok);
    assert_string_equal(r.detail, "exit 1 (expected 0)");
    assert_no_children();
}

static void test_exec_expect_exit(void **state)
{
    (void)state;
    struct fl_probe_spec s = exec_spec("/bin/sh", "-c", "exit 3");
    s.u.exec.expect_exit = 3;
    struct fl_probe_result r = once(&s);
    assert_true(r.ok);
    assert_string_equal(r.detail, "exit 3");

    s.u.exec.expect_exit = 0;
    r = once(&s);
    assert_false(r.ok);
    assert_string_equal(r.detail, "exit 3 (expected 0)");
}

/* What the command said is in the detail (issue 13): stdout and stderr, on
 * one line, the last FL_PROBE_OUTPUT_KEPT bytes; expect_output is matched
 * against the whole output, across reads. */
static void test_exec_output(void **state)
{
    (void)state;
    struct fl_probe_spec s =
        exec_spec("/bin/sh", "-c", "echo write to 10.88.0.11 failed:; echo READONLY >&2; exit 1");
    struct fl_probe_result r = once(&s);
    assert_false(r.ok);
    assert_string_equal(r.detail, "exit 1 (expected 0): write to 10.88.0.11 failed: READONLY");

    /* expect_output: found, not found */
    s = exec_spec("/bin/sh", "-c", "printf 'role:\nmaster\n'");
    s.u.exec.expect_output = (char *)"master";
    r = once(&s);
    assert_true(r.ok);
    assert_string_equal(r.detail, "exit 0");
    s.u.exec.expect_output = (char *)"slave";
    r = once(&s);
    assert_false(r.ok);
    assert_string_equal(r.detail, "exit 0, but the output lacks \"slave\": role: master");

    /* 100 kB of output: the match is found far before the end, the tail
     * kept is the last 512 bytes, and nothing blocks on a full pipe */
    s = exec_spec("/bin/sh", "-c",
                  "echo NEEDLE; i=0; while [ $i -lt 2000 ]; do echo "
                  "0123456789012345678901234567890123456789012345678; i=$((i+1)); done; "
                  "echo THE-END; exit 2");
    s.u.exec.expect_output = (char *)"NEEDLE";
    r = once(&s);
    assert_false(r.ok); /* exit 2 */
    assert_non_null(strstr(r.detail, "exit 2 (expected 0): "));
    assert_non_null(strstr(r.detail, "THE-END"));
    assert_null(strstr(r.detail, "NEEDLE"));
    assert_true(strlen(strstr(r.detail, ": ") + 2) <= FL_PROBE_OUTPUT_KEPT);
    s.u.exec.expect_exit = 2;
    r = once(&s);
    assert_true(r.ok);
    assert_no_children();
}

static void test_exec_missing(void **state)
{
    (void)state;
    struct fl_probe_spec s = exec_spec("/nope/not-here", NULL, NULL);
    struct fl_probe_result r = once(&s);
    assert_false(r.ok);
    assert_string_equal(r.detail, "cannot run /nope/not-here: no such file or directory");
    assert_no_children();
}

static void test_exec_timeout(void **state)
{
    (void)state;
    struct fl_probe_spec s = exec_spec("/bin/sleep", SLEEP_ARG, NULL);
    s.timeout_ms = 200;
    uint64_t t0 = fl_mono_ms();
    struct fl_probe_result r = once(&s);
    /* well under the sleep: nothing waited for the child to end by itself */
    assert_true(fl_mono_ms() - t0 < SLEEP_MS / 2);
    assert_false(r.ok);
    assert_string_equal(r.detail, "timeout after 200ms");
    assert_true(r.latency_ms >= 190 && r.latency_ms < SLEEP_MS / 2);
    assert_no_children(); /* killed and reaped: no zombie */
}

/* A deadline armed on a stale loop time: the attempt starts in the same
 * timer pass as a callback that kept the loop busy, so libuv's cached now
 * lags the clock by STALL_MS and a timer armed for timeout_ms fires that
 * much early. The timeout must still be judged no earlier than started +
 * timeout_ms, the time it is reported at (else the next attempt, started
 * early by as much, can succeed before the failure it follows is "known":
 * gameday's recovered_at 2-3 ms after its first success). */
#define STALL_MS 60u
struct stale {
    uv_loop_t *loop;
    struct fl_probe_spec spec;
    struct fl_probe *p;
    struct fl_probe_result r;
    uint64_t judged_wall_ms;
    bool got;
};

static void on_stale_result(struct fl_probe *p, const struct fl_probe_result *r, void *arg)
{
    (void)p;
    struct stale *st = arg;
    st->r = *r;
    st->judged_wall_ms = fl_now_ms();
    st->got = true;
}

static void on_stall(uv_timer_t *t)
{
    struct stale *st = t->data;
    uint64_t until = fl_mono_ms() + STALL_MS; /* the loop's cached now stays behind */
    while (fl_mono_ms() < until)
        ;
    /* its kick (0 ms, on the stale now) runs in this same timer pass */
    assert_int_equal(fl_probe_once(st->loop, &st->spec, on_stale_result, st, &st->p), 0);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_deadline_stale_loop_time(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct stale st;
    memset(&st, 0, sizeof(st));
    st.loop = &loop;
    st.spec = exec_spec("/bin/sleep", SLEEP_ARG, NULL);
    st.spec.timeout_ms = 100;
    uv_timer_t stall;
    assert_int_equal(uv_timer_init(&loop, &stall), 0);
    stall.data = &st;
    assert_int_equal(uv_timer_start(&stall, on_stall, 0, 0), 0);
    while (!st.got)
        assert_true(uv_run(&loop, UV_RUN_ONCE) != 0 || st.got);
    fl_probe_stop(st.p, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(st.r.outcome, FL_OUTCOME_TIMEOUT);
    assert_int_equal(st.r.latency_ms, 100);
    /* judged at or after the time it claims to be known */
    if (st.judged_wall_ms < st.r.started_ms + st.r.latency_ms)
        fail_msg("timeout judged %llu ms before started + timeout_ms",
                 (unsigned long long)(st.r.started_ms + st.r.latency_ms - st.judged_wall_ms));
    assert_no_children();
}

/* An attempt longer than the interval: ticks are postponed, never overlapped. */
static void test_exec_no_overlap(void **state)
{
    (void)state;
    struct fl_probe_spec s = exec_spec("/bin/sleep", SLEEP_ARG, NULL);
    s.interval_ms = 50;
    s.timeout_ms = 250;
    struct run *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    run_probe(r, &s, 3);
    for (int i = 0; i < 3; i++) {
        assert_false(r->results[i].ok);
        assert_string_equal(r->results[i].detail, "timeout after 250ms");
    }
    /* Each attempt began after the previous one ended, and at once: the
     * ticks that fell due meanwhile were owed, not dropped. */
    for (int i = 1; i < 3; i++) {
        uint64_t prev_end = r->results[i - 1].started_ms + r->results[i - 1].latency_ms;
        assert_true(r->results[i].started_ms >= prev_end);
        assert_true(r->results[i].started_ms < prev_end + 40);
    }
    free(r);
    assert_no_children();
}

/* timeout == interval: the tick and the deadline fall due together. The
 * probe must still attempt once per interval, not once per two. */
static void test_timeout_equals_interval(void **state)
{
    (void)state;
    struct fl_probe_spec s = exec_spec("/bin/sleep", SLEEP_ARG, NULL);
    s.interval_ms = 100;
    s.timeout_ms = 100;
    struct run *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    run_probe_beside_reference(r, &s, 6);
    for (int i = 1; i < 6; i++) {
        uint64_t gap = r->results[i].started_ms - r->results[i - 1].started_ms;
        assert_true(gap >= 95); /* never early */
    }
    /* once per interval, as the reference timer ticks (less one for the
     * window's edge); once per two would be 6 against about 12 */
    assert_true(6 >= r->ref_at[5] - 1);
    free(r);
    assert_no_children();
}

/* Stopping while an attempt is in flight: never reported, child reaped. */
static void stop_soon(uv_timer_t *t)
{
    struct run *r = t->data;
    fl_probe_stop(r->probe, on_stopped, r);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_stop_in_flight(void **state)
{
    (void)state;
    char url[128];
    struct fl_probe_spec specs[2];
    specs[0] = exec_spec("/bin/sleep", SLEEP_ARG, NULL);
    specs[1] = http_spec("/slow", srv.port, url, sizeof(url));
    for (int k = 0; k < 2; k++) {
        struct run *r = calloc(1, sizeof(*r));
        assert_non_null(r);
        uv_timer_t t;
        assert_int_equal(uv_loop_init(&r->loop), 0);
        assert_int_equal(fl_probe_start(&r->loop, &specs[k], on_result, r, &r->probe), 0);
        assert_int_equal(uv_timer_init(&r->loop, &t), 0);
        t.data = r;
        assert_int_equal(uv_timer_start(&t, stop_soon, 100, 0), 0);
        assert_int_equal(uv_run(&r->loop, UV_RUN_DEFAULT), 0);
        assert_true(r->stopped);
        assert_int_equal(r->n, 0);
        assert_int_equal(uv_loop_close(&r->loop), 0);
        free(r);
    }
    assert_no_children();
}

static void test_bad_specs(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct fl_probe *p = NULL;
    struct fl_probe_spec s = tcp_spec(0);
    assert_int_equal(fl_probe_start(&loop, &s, on_result, NULL, &p), -EINVAL);
    s = exec_spec("/bin/true", NULL, NULL);
    s.u.exec.argc = 0;
    assert_int_equal(fl_probe_start(&loop, &s, on_result, NULL, &p), -EINVAL);
    memset(&s, 0, sizeof(s));
    s.type = FL_PROBE_HTTP;
    assert_int_equal(fl_probe_start(&loop, &s, on_result, NULL, &p), -EINVAL);
    assert_null(p);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_spec_copy_free(void **state)
{
    (void)state;
    char url[128];
    struct fl_probe_spec s = http_spec("/ok", srv.port, url, sizeof(url));
    s.u.http.headers[0] = (char *)"A: b";
    s.u.http.n_headers = 1;
    s.u.http.body_contains = (char *)"x";
    struct fl_probe_spec c;
    assert_int_equal(fl_probe_spec_copy(&c, &s), 0);
    assert_string_equal(c.u.http.url, url);
    assert_true(c.u.http.url != url);
    assert_string_equal(c.u.http.headers[0], "A: b");
    assert_null(c.u.http.method);
    fl_probe_spec_free(&c);
    assert_null(c.u.http.url);
    assert_null(c.name);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_ok),
        cmocka_unit_test(test_http_status_mismatch),
        cmocka_unit_test(test_http_status_list),
        cmocka_unit_test(test_http_body),
        cmocka_unit_test(test_http_timeout),
        cmocka_unit_test(test_http_refused),
        cmocka_unit_test(test_http_method_and_header),
        cmocka_unit_test(test_http_two_probes),
        cmocka_unit_test(test_tcp_open),
        cmocka_unit_test(test_tcp_refused),
        cmocka_unit_test(test_tcp_timeout),
        cmocka_unit_test(test_tcp_interval),
        cmocka_unit_test(test_exec_true_false),
        cmocka_unit_test(test_exec_expect_exit),
        cmocka_unit_test(test_exec_output),
        cmocka_unit_test(test_exec_missing),
        cmocka_unit_test(test_exec_timeout),
        cmocka_unit_test(test_exec_no_overlap),
        cmocka_unit_test(test_timeout_equals_interval),
        cmocka_unit_test(test_deadline_stale_loop_time),
        cmocka_unit_test(test_stop_in_flight),
        cmocka_unit_test(test_bad_specs),
        cmocka_unit_test(test_spec_copy_free),
    };
    return cmocka_run_group_tests(tests, server_up, server_down);
}
