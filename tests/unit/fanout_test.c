/* The controller's fan-out (controller/client/fleet.h): a window of hosts in
 * flight, the rest queued; running out of descriptors requeues, never fails;
 * the deadline expires what is still queued. Hosts here are timers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <uv.h>

#include <cmocka.h>

#include "controller/client/fleet.h"

#define N 40

struct host {
    uv_timer_t timer;
    size_t i;
    struct fl_fleet *f;
    struct world *w;
};

struct world {
    uv_loop_t loop;
    struct fl_fleet *f;
    struct host h[N];
    int starts[N];
    int done[N];
    int expired[N];
    size_t in_flight, max_in_flight;
    int emfile_left;   /* this many starts fail with EMFILE (as a connect would) */
    int fail_first[N]; /* this many tries of host i end in fl_fleet_retry */
    uint64_t work_ms;
    uint64_t slow_ms[N]; /* this host's try takes this long instead */
    size_t final_window;
};

static void on_work_done(uv_timer_t *t)
{
    struct host *h = t->data;
    struct world *w = h->w;
    w->in_flight--;
    if (w->fail_first[h->i] > 0) {
        w->fail_first[h->i]--;
        fl_fleet_retry(w->f, h->i, 5);
        return;
    }
    w->done[h->i]++;
    fl_fleet_done(w->f, h->i);
}

static int start(struct fl_fleet *f, size_t i, void *ctx)
{
    struct world *w = ctx;
    w->starts[i]++;
    if (w->emfile_left > 0 && w->in_flight >= 3) {
        w->emfile_left--;
        return -EMFILE; /* queued again, window shrinks */
    }
    w->in_flight++;
    if (w->in_flight > w->max_in_flight)
        w->max_in_flight = w->in_flight;
    w->h[i].f = f;
    uv_timer_start(&w->h[i].timer, on_work_done, w->slow_ms[i] ? w->slow_ms[i] : w->work_ms, 0);
    return 0;
}

static void expired(struct fl_fleet *f, size_t i, void *ctx)
{
    struct world *w = ctx;
    (void)f;
    w->expired[i]++;
}

static const struct fl_fleet_ops ops = {start, expired};

static void run_world(struct world *w, size_t window, uint64_t deadline_ms)
{
    assert_int_equal(uv_loop_init(&w->loop), 0);
    for (size_t i = 0; i < N; i++) {
        w->h[i].i = i;
        w->h[i].w = w;
        uv_timer_init(&w->loop, &w->h[i].timer);
        w->h[i].timer.data = &w->h[i];
    }
    assert_int_equal(fl_fleet_new(&w->loop, N, window, deadline_ms, &ops, w, &w->f), 0);
    fl_fleet_start(w->f);
    /* the host timers keep the loop alive: run until the fleet is over */
    while (uv_run(&w->loop, UV_RUN_ONCE) != 0) {
        size_t over = 0;
        for (size_t i = 0; i < N; i++)
            over += w->done[i] + w->expired[i];
        if (over == N && w->in_flight == 0)
            break;
    }
    for (size_t i = 0; i < N; i++)
        uv_close((uv_handle_t *)&w->h[i].timer, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&w->loop), 0);
    w->final_window = fl_fleet_current_window(w->f);
    fl_fleet_free(w->f);
}

/* Never more than the window in flight; every host done exactly once. */
static void test_window_bounds_in_flight(void **state)
{
    (void)state;
    static struct world w;
    memset(&w, 0, sizeof(w));
    w.work_ms = 2;
    run_world(&w, 7, 0);
    assert_int_equal(w.max_in_flight, 7);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(w.done[i], 1);
        assert_int_equal(w.expired[i], 0);
    }
}

/* EMFILE on start: the host is queued again and the window shrinks to what
 * is open; no host fails for it; once descriptors come back it grows back. */
static void test_no_descriptor_requeues(void **state)
{
    (void)state;
    static struct world w;
    memset(&w, 0, sizeof(w));
    w.work_ms = 2;
    w.emfile_left = 5;
    run_world(&w, 10, 0);
    /* the fourth start found no descriptor with three open: three at a
     * time, then the window grows back one host a round and meets the
     * shortage again, until the shortage is over (five in all); then it
     * keeps growing: a shortage that passed does not shrink the window for
     * ever (40 hosts leave it at 8 of 10 by the end) */
    assert_int_equal(w.emfile_left, 0);
    assert_true(w.final_window > 3 && w.final_window <= 10);
    assert_true(w.max_in_flight > 3 && w.max_in_flight <= 10);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(w.done[i], 1);
        assert_int_equal(w.expired[i], 0);
    }
}

/* Retries until done; a deadline expires what is still queued or waiting,
 * and only that. */
static void test_retry_and_deadline(void **state)
{
    (void)state;
    static struct world w;
    memset(&w, 0, sizeof(w));
    w.work_ms = 1;
    w.fail_first[0] = 3;       /* done on its fourth try */
    w.fail_first[1] = 1000000; /* never: expires at the deadline */
    run_world(&w, 4, 300);
    assert_int_equal(w.done[0], 1);
    assert_int_equal(w.starts[0], 4);
    assert_int_equal(w.done[1], 0);
    assert_int_equal(w.expired[1], 1);
    for (size_t i = 2; i < N; i++)
        assert_int_equal(w.done[i], 1);
}

/* The window follows the descriptor limit. */
static void test_window_from_rlimit(void **state)
{
    (void)state;
    struct rlimit saved, rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    rl = saved;
    rl.rlim_cur = 64;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    size_t w = fl_fleet_window(FL_FLEET_FD_RESERVE);
    assert_true(w >= 1 && w < 64);
    rl.rlim_cur = 4; /* fewer than are open: still one at a time */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    assert_int_equal(fl_fleet_window(FL_FLEET_FD_RESERVE), 1);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
    assert_true(fl_fleet_window(FL_FLEET_FD_RESERVE) <= FL_FLEET_MAX_IN_FLIGHT);
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* After the deadline, a try still in flight is waited for without spinning:
 * the loop sleeps (CPU time far below the wall time it waits). */
static void test_no_spin_after_deadline(void **state)
{
    (void)state;
    static struct world w;
    memset(&w, 0, sizeof(w));
    w.work_ms = 1;
    w.slow_ms[0] = 1000; /* in flight for 900 ms after the deadline */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double c0 = cpu_s();
    run_world(&w, 4, 100);
    double cpu = cpu_s() - c0;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_int_equal(w.done[0], 1);
    assert_true(wall >= 0.9);
    assert_true(cpu < wall / 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_bounds_in_flight),
        cmocka_unit_test(test_no_descriptor_requeues),
        cmocka_unit_test(test_retry_and_deadline),
        cmocka_unit_test(test_window_from_rlimit),
        cmocka_unit_test(test_no_spin_after_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
