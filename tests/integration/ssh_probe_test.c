/* The ssh probe against a real sshd on loopback: passes on the expected
 * exit code, fails naming another, times out within its timeout, refuses an
 * unknown host key, says so when nothing listens, and keeps one session for
 * many attempts. Every run ends with uv_loop_close() == 0. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
#include <uv.h>

#include "controller/probes/probe.h"
#include "tests/support/sshd.h"

static struct test_sshd sshd;

#define MAX_RESULTS 16

struct collect {
    struct fl_probe_result r[MAX_RESULTS];
    int n;
    int want;
    bool stopped;
    int restart_after; /* >0: restart sshd after this many results */
};

static void on_stopped(void *arg)
{
    ((struct collect *)arg)->stopped = true;
}

static void on_result(struct fl_probe *p, const struct fl_probe_result *r, void *arg)
{
    struct collect *c = arg;
    if (c->n < MAX_RESULTS)
        c->r[c->n++] = *r;
    if (c->restart_after > 0 && c->n == c->restart_after)
        assert_int_equal(test_sshd_restart(&sshd), 0);
    if (c->n >= c->want)
        fl_probe_stop(p, on_stopped, c);
}

static struct fl_probe_spec spec_for(const char *command, uint64_t timeout_ms)
{
    struct fl_probe_spec s;
    memset(&s, 0, sizeof(s));
    s.name = (char *)"ssh";
    s.type = FL_PROBE_SSH;
    s.interval_ms = 100;
    s.timeout_ms = timeout_ms;
    s.rise = 1;
    s.fall = 1;
    s.u.ssh.host = (char *)"test-host";
    s.u.ssh.address = (char *)"127.0.0.1";
    s.u.ssh.port = sshd.port;
    s.u.ssh.identity_file = sshd.user_key;
    s.u.ssh.known_hosts = sshd.known_hosts;
    s.u.ssh.command = (char *)command;
    return s;
}

static void run_probe_restarting(const struct fl_probe_spec *spec, int want, int restart_after,
                                 struct collect *c)
{
    memset(c, 0, sizeof(*c));
    c->want = want;
    c->restart_after = restart_after;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct fl_probe *p = NULL;
    assert_int_equal(fl_probe_start(&loop, spec, on_result, c, &p), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(c->stopped);
    assert_int_equal(uv_loop_close(&loop), 0);
    for (int i = 0; i < c->n; i++)
        fprintf(stderr, "  attempt %d: %s %s (%llu ms)\n", i, c->r[i].ok ? "ok" : "FAIL",
                c->r[i].detail, (unsigned long long)c->r[i].latency_ms);
}

static void run_probe(const struct fl_probe_spec *spec, int want, struct collect *c)
{
    run_probe_restarting(spec, want, 0, c);
}

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    return test_sshd_start(&sshd);
}

static int teardown(void **state)
{
    (void)state;
    test_sshd_stop(&sshd);
    return 0;
}

static void passes_and_reuses_the_session(void **state)
{
    (void)state;
    int before = test_sshd_count(&sshd, "Accepted publickey");
    struct fl_probe_spec s = spec_for("true", 2000);
    struct collect c;
    run_probe(&s, 5, &c);
    assert_int_equal(c.n, 5);
    for (int i = 0; i < c.n; i++) {
        assert_true(c.r[i].ok);
        assert_string_equal(c.r[i].detail, "exit 0");
    }
    /* five attempts, one login: the session is kept between attempts */
    assert_int_equal(test_sshd_count(&sshd, "Accepted publickey") - before, 1);
}

static void fails_on_exit_code(void **state)
{
    (void)state;
    struct fl_probe_spec s = spec_for("exit 3", 2000);
    struct collect c;
    run_probe(&s, 2, &c);
    assert_false(c.r[0].ok);
    assert_string_equal(c.r[0].detail, "exit 3 (expected 0)");
    s.u.ssh.expect_exit = 3;
    run_probe(&s, 1, &c);
    assert_true(c.r[0].ok);
    assert_string_equal(c.r[0].detail, "exit 3");
}

/* The remote command outlasts the timeout many times over: every bound on
 * the upper side says "did not wait for the remote sleep". */
#define REMOTE_SLEEP_MS 5000

static void times_out(void **state)
{
    (void)state;
    struct fl_probe_spec s = spec_for("sleep 5", 300);
    struct collect c;
    uint64_t t0 = uv_hrtime();
    run_probe(&s, 2, &c);
    uint64_t took_ms = (uv_hrtime() - t0) / 1000000u;
    assert_false(c.r[0].ok);
    assert_string_equal(c.r[0].detail, "timeout after 300ms");
    /* never early; well under the remote sleep */
    assert_true(c.r[0].latency_ms >= 290 && c.r[0].latency_ms < REMOTE_SLEEP_MS / 2);
    assert_string_equal(c.r[1].detail, "timeout after 300ms");
    /* two attempts, and still less than one remote sleep: nothing waited for it */
    assert_true(took_ms < REMOTE_SLEEP_MS);
}

static void unknown_host_key(void **state)
{
    (void)state;
    char empty[300];
    snprintf(empty, sizeof(empty), "%s/empty_known_hosts", sshd.dir);
    struct fl_probe_spec s = spec_for("true", 2000);
    s.u.ssh.known_hosts = empty;
    struct collect c;
    run_probe(&s, 1, &c);
    assert_false(c.r[0].ok);
    assert_string_equal(c.r[0].detail, "host key unknown");
}

/* A name, not an address: looked up (getaddrinfo_a, bounded), connected;
 * known_hosts knows the host by its address only, so its key is unknown
 * under this name. */
static void resolves_a_name(void **state)
{
    (void)state;
    struct fl_probe_spec s = spec_for("true", 2000);
    s.u.ssh.address = (char *)"localhost";
    struct collect c;
    run_probe(&s, 1, &c);
    assert_false(c.r[0].ok);
    assert_string_equal(c.r[0].detail, "host key unknown");
}

static void connection_refused(void **state)
{
    (void)state;
    struct fl_probe_spec s = spec_for("true", 2000);
    s.u.ssh.port = test_free_port();
    struct collect c;
    run_probe(&s, 1, &c);
    assert_false(c.r[0].ok);
    assert_string_equal(c.r[0].detail, "connection refused");
}

/* stdin is closed at once: a command that reads it ends instead of waiting
 * for its timeout */
static void command_reading_stdin_ends(void **state)
{
    (void)state;
    struct fl_probe_spec s = spec_for("cat", 2000);
    struct collect c;
    run_probe(&s, 1, &c);
    assert_true(c.r[0].ok);
    assert_string_equal(c.r[0].detail, "exit 0");
    assert_true(c.r[0].latency_ms < 1000);
}

/* sshd goes away with every session and comes back between two attempts:
 * the kept session is dead, and the next attempt reconnects instead of
 * failing */
static void survives_an_sshd_restart(void **state)
{
    (void)state;
    int before = test_sshd_count(&sshd, "Accepted publickey");
    struct fl_probe_spec s = spec_for("true", 2000);
    struct collect c;
    run_probe_restarting(&s, 3, 1, &c);
    assert_int_equal(c.n, 3);
    for (int i = 0; i < c.n; i++)
        assert_true(c.r[i].ok);
    assert_int_equal(test_sshd_count(&sshd, "Accepted publickey") - before, 2);
}

/* A server that accepts and never speaks SSH: stopping the probe while it
 * connects is prompt, not held until the attempt's deadline. */
static void on_stop_timer(uv_timer_t *t)
{
    fl_probe_stop(t->data, on_stopped, uv_handle_get_data((uv_handle_t *)t->loop));
    uv_close((uv_handle_t *)t, NULL);
}

static void stop_while_connecting(void **state)
{
    (void)state;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(lfd, 8), 0);
    socklen_t len = sizeof(sin);
    getsockname(lfd, (struct sockaddr *)&sin, &len);
    const uint64_t timeout_ms = 10000;
    struct fl_probe_spec s = spec_for("true", timeout_ms);
    s.u.ssh.port = ntohs(sin.sin_port);
    struct collect c;
    memset(&c, 0, sizeof(c));
    c.want = 1;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    uv_handle_set_data((uv_handle_t *)&loop, &c);
    struct fl_probe *p = NULL;
    assert_int_equal(fl_probe_start(&loop, &s, on_result, &c, &p), 0);
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    t.data = p;
    uv_timer_start(&t, on_stop_timer, 300, 0);
    uint64_t t0 = uv_hrtime();
    uv_run(&loop, UV_RUN_DEFAULT);
    uint64_t took_ms = (uv_hrtime() - t0) / 1000000u;
    assert_true(c.stopped);
    assert_int_equal(c.n, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    close(lfd);
    fprintf(stderr, "  stopped in %llu ms\n", (unsigned long long)took_ms);
    assert_true(took_ms < timeout_ms / 2); /* the stop ended it, not the timeout */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(passes_and_reuses_the_session),
        cmocka_unit_test(fails_on_exit_code),
        cmocka_unit_test(times_out),
        cmocka_unit_test(unknown_host_key),
        cmocka_unit_test(connection_refused),
        cmocka_unit_test(resolves_a_name),
        cmocka_unit_test(command_reading_stdin_ends),
        cmocka_unit_test(survives_an_sshd_restart),
        cmocka_unit_test(stop_while_connecting),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
