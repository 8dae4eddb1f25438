/* A probe's first due time is chosen when its loop first gets to it
 * (controller/probes/probe.c, on_first), not when it is set up.
 *
 * The attack: 5,000 probes set up before their loop ran (probe threads)
 * took longer than their phases, every due time that passed meanwhile fired
 * in the same millisecond once the loop ran, and the burst timed out against
 * a service starved by it: 42 false timeouts (bench/README.md). Here 100 tcp
 * probes (to a closed port: each attempt ends at once) are set up, then the
 * thread stalls longer than their interval before running the loop. With
 * the due times fixed at set-up, every first attempt starts in the first
 * moments of the loop; with on_first they follow their phases, spread over
 * the interval. Counted relative to the phases themselves (no absolute
 * slack): at most a few probes' phases lie within any 20 ms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "common/clock.h"
#include "controller/probes/probe.h"

#define N 100
#define INTERVAL_MS 1000
#define WINDOW_MS 20

struct firsts {
    struct fl_probe *probe[N];
    uint64_t first_ms[N];
    int seen, stopped;
};

static struct firsts F;

static void on_stopped(void *arg)
{
    (void)arg;
    F.stopped++;
}

static void on_result(struct fl_probe *p, const struct fl_probe_result *res, void *arg)
{
    int i = (int)(intptr_t)arg;
    assert_ptr_equal(p, F.probe[i]);
    if (F.first_ms[i] != 0)
        return;
    F.first_ms[i] = res->started_ms;
    F.seen++;
    fl_probe_stop(p, on_stopped, NULL);
}

/* A port nothing listens on: bound, never listening, then closed. */
static uint16_t closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* The most values of v[0..n) inside any window of w ms. */
static int most_within(const uint64_t *v, int n, uint64_t w)
{
    int most = 0;
    for (int i = 0; i < n; i++) {
        int k = 0;
        for (int j = 0; j < n; j++)
            k += v[j] >= v[i] && v[j] < v[i] + w;
        if (k > most)
            most = k;
    }
    return most;
}

static void test_first_attempts_follow_their_phases_after_a_slow_setup(void **state)
{
    (void)state;
    memset(&F, 0, sizeof(F));
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    uint16_t port = closed_port();
    static char names[N][16];
    uint64_t phase[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "fd%d", i);
        struct fl_probe_spec s;
        memset(&s, 0, sizeof(s));
        s.name = names[i];
        s.type = FL_PROBE_TCP;
        s.u.tcp.host = (char *)"127.0.0.1";
        s.u.tcp.port = port;
        s.interval_ms = INTERVAL_MS;
        s.timeout_ms = 500;
        s.rise = 1;
        s.fall = 1;
        phase[i] = fl_probe_phase_ms(names[i], INTERVAL_MS);
        assert_int_equal(fl_probe_start(&loop, &s, on_result, (void *)(intptr_t)i, &F.probe[i]), 0);
    }
    /* a set-up slower than the interval: every due time chosen at set-up
     * would have passed */
    uint64_t until = fl_mono_ms() + INTERVAL_MS + 200;
    while (fl_mono_ms() < until)
        ;
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(F.seen, N);
    assert_int_equal(F.stopped, N);
    assert_int_equal(uv_loop_close(&loop), 0);

    int by_phase = most_within(phase, N, WINDOW_MS);
    int by_start = most_within(F.first_ms, N, WINDOW_MS);
    print_message("first attempts within %d ms: at most %d (the phases alone: %d)\n", WINDOW_MS,
                  by_start, by_phase);
    /* a burst puts all N in one window; the phases put at most by_phase */
    assert_true(by_start < N / 2);
    assert_true(by_start <= 3 * by_phase + 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_attempts_follow_their_phases_after_a_slow_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
