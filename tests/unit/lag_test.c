/* The controller's own lateness (controller/probes/lag.c), the probe phase
 * and the probe load estimate (rate.c): pure parts on fixed figures, and a
 * real loop whose callback spins. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>
#include <cmocka.h>

#include "common/clock.h"
#include "controller/probes/lag.h"
#include "controller/probes/pool.h"
#include "controller/probes/probe.h"
#include "controller/probes/rate.h"

#define MS 1000000ull

static void stalls_add_up_within_the_window(void **state)
{
    (void)state;
    static struct fl_lag lag; /* big: the ring */
    memset(&lag, 0, sizeof(lag));
    fl_lag_record(&lag, 100 * MS, 130 * MS); /* 30 ms */
    fl_lag_record(&lag, 200 * MS, 201 * MS); /* 1 ms: below FL_LAG_RECORD_MS, forgotten */
    fl_lag_record(&lag, 300 * MS, 350 * MS); /* 50 ms */
    assert_int_equal(lag.count, 2);
    assert_int_equal(fl_lag_stalled_between(&lag, 0, 1000 * MS), 80 * MS);
    /* only the part inside the window counts */
    assert_int_equal(fl_lag_stalled_between(&lag, 120 * MS, 320 * MS), 10 * MS + 20 * MS);
    assert_int_equal(fl_lag_stalled_between(&lag, 131 * MS, 299 * MS), 0);
    assert_int_equal(lag.longest_ns, 50 * MS);
}

static void a_forgetful_ring_never_answers_too_little(void **state)
{
    (void)state;
    static struct fl_lag lag;
    memset(&lag, 0, sizeof(lag));
    /* FL_LAG_RING + 10 stalls of 3 ms, 10 ms apart from t = 1000 ms */
    for (uint64_t i = 0; i < FL_LAG_RING + 10; i++)
        fl_lag_record(&lag, (1000 + 10 * i) * MS, (1003 + 10 * i) * MS);
    assert_int_equal(lag.count, FL_LAG_RING);
    /* the first 10 are forgotten: their whole span counts as stalled */
    uint64_t oldest = (1000 + 10 * 10) * MS;
    uint64_t got = fl_lag_stalled_between(&lag, 1000 * MS, oldest);
    assert_true(got >= 10 * 3 * MS);
    assert_int_equal(got, oldest - 1000 * MS);
}

static void thresholds(void **state)
{
    (void)state;
    assert_int_equal(fl_probe_late_threshold_ms(100), 50);
    assert_int_equal(fl_probe_late_threshold_ms(1000), 500);
    assert_int_equal(fl_probe_late_threshold_ms(4), FL_PROBE_LATE_MIN_MS);
    assert_int_equal(fl_probe_late_start_ms(100), 50);
    assert_int_equal(fl_probe_late_start_ms(0), FL_PROBE_LATE_MIN_MS);
}

/* A thousand probes with one interval spread over it: no 10 ms slot of a
 * 100 ms interval holds more than three times its share. */
static void phases_spread(void **state)
{
    (void)state;
    unsigned slots[10] = {0};
    char name[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "web-%d", i);
        uint64_t ph = fl_probe_phase_ms(name, 100);
        assert_true(ph < 100);
        assert_int_equal(ph, fl_probe_phase_ms(name, 100)); /* stable */
        slots[ph / 10]++;
    }
    for (int s = 0; s < 10; s++)
        assert_true(slots[s] > 0 && slots[s] < 300);
    assert_int_equal(fl_probe_phase_ms("x", 0), 0);
}

static void load_estimate(void **state)
{
    (void)state;
    struct fl_probe_spec p[3];
    memset(p, 0, sizeof(p));
    p[0].type = FL_PROBE_HTTP;
    p[0].interval_ms = 100; /* 10/s x 150 us = 1.5 ms/s */
    p[1].type = FL_PROBE_EXEC;
    p[1].interval_ms = 0; /* the 1 s default: 1/s x 400 us */
    p[2].type = FL_PROBE_SSH;
    p[2].interval_ms = 500; /* 2/s, not counted in CPU */
    struct fl_probe_load l;
    fl_probe_load_estimate(p, 3, &l);
    assert_true(l.attempts_per_s > 12.99 && l.attempts_per_s < 13.01);
    assert_true(l.ssh_attempts_per_s > 1.99 && l.ssh_attempts_per_s < 2.01);
    /* (1500 + 400) us per second = 0.19 % of a core */
    assert_true(l.core_percent > 0.189 && l.core_percent < 0.191);
    /* 1,000 http probes every 100 ms: 10,000/s, 150 % of a core: warned */
    static struct fl_probe_spec many[1000];
    for (int i = 0; i < 1000; i++) {
        many[i].type = FL_PROBE_HTTP;
        many[i].interval_ms = 100;
    }
    fl_probe_load_estimate(many, 1000, &l);
    assert_true(l.core_percent > FL_PROBE_LOAD_WARN_PERCENT);
    assert_true(l.busiest_loop_percent > 149.9 && l.busiest_loop_percent < 150.1);
    /* on 4 probe threads, by the pool's own hash: each loop about a quarter,
     * and the busiest one is what validate warns about */
    static char names[1000][16];
    for (int i = 0; i < 1000; i++) {
        snprintf(names[i], sizeof(names[i]), "p%d", i);
        many[i].name = names[i];
    }
    fl_probe_load_estimate_threads(many, 1000, 4, &l);
    assert_true(l.core_percent > 149.9 && l.core_percent < 150.1);
    assert_int_equal(l.threads, 4);
    assert_true(l.busiest_loop_percent > 37.4 && l.busiest_loop_percent < 45.0);
    /* names that differ only at the end spread evenly too: FNV-1a's high
     * bits alone put 990 of "web-0".."web-999" on one of two threads */
    unsigned on[2] = {0, 0};
    for (int i = 0; i < 1000; i++) {
        char name[16];
        snprintf(name, sizeof(name), "web-%d", i);
        on[fl_probe_pool_thread_of(name, 2)]++;
    }
    assert_true(on[0] > 400 && on[1] > 400);
    /* exec probes stay on the run's loop, whatever the threads */
    static struct fl_probe_spec ex[200];
    for (int i = 0; i < 200; i++) {
        ex[i].type = FL_PROBE_EXEC;
        ex[i].interval_ms = 100;
        ex[i].name = names[i];
    }
    fl_probe_load_estimate_threads(ex, 200, 4, &l);
    assert_true(l.busiest_loop_percent > 79.9 && l.busiest_loop_percent < 80.1);
}

/* probe_threads left open: one loop while it carries the load, then the
 * fewest threads that do, within the CPUs; none where threads cannot help. */
static void threads_auto(void **state)
{
    (void)state;
    static char names[1000][16];
    static struct fl_probe_spec p[1000];
    for (int i = 0; i < 1000; i++) {
        snprintf(names[i], sizeof(names[i]), "web-%d", i);
        p[i].name = names[i];
        p[i].type = FL_PROBE_HTTP;
        p[i].interval_ms = 100;
    }
    /* a game day: a few probes, whatever the machine */
    assert_int_equal(fl_probe_threads_auto(p, 3, 64), 1);
    /* 330 probes at 100 ms: 3,300/s, 49.5 % of a core, still one loop */
    assert_int_equal(fl_probe_threads_auto(p, 330, 64), 1);
    /* 400: 60 %, two threads of about 30 % each */
    assert_int_equal(fl_probe_threads_auto(p, 400, 64), 2);
    /* 1,000: 150 %, as many as it takes, never more than the cap or the CPUs */
    unsigned k = fl_probe_threads_auto(p, 1000, 64);
    struct fl_probe_load l;
    fl_probe_load_estimate_threads(p, 1000, k, &l);
    assert_true(k >= 3 && k <= FL_PROBE_THREADS_AUTO_MAX);
    assert_true(l.busiest_loop_percent <= FL_PROBE_LOAD_WARN_PERCENT ||
                k == FL_PROBE_THREADS_AUTO_MAX);
    assert_int_equal(fl_probe_threads_auto(p, 1000, 2), 2);
    assert_int_equal(fl_probe_threads_auto(p, 1000, 1), 1); /* one CPU: one loop */
    /* exec probes stay on the run's loop: threads would not relieve it */
    for (int i = 0; i < 200; i++)
        p[i].type = FL_PROBE_EXEC;
    assert_int_equal(fl_probe_threads_auto(p, 200, 64), 1);
}

/* A real loop: a callback that spins 60 ms is a stall of at least that. */
static uint64_t spin_from, spin_to;

static void on_spin(uv_timer_t *t)
{
    spin_from = fl_mono_ns();
    while (fl_mono_ns() - spin_from < 60 * MS) {
    }
    spin_to = fl_mono_ns();
    uv_close((uv_handle_t *)t, NULL);
}

static void a_spinning_callback_is_a_stall(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    static struct fl_lag lag;
    assert_int_equal(fl_lag_start(&lag, &loop), 0);
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, on_spin, 20, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(fl_lag_stalled_between(&lag, spin_from, spin_to) >= spin_to - spin_from);
    assert_true(lag.longest_ns >= 60 * MS);
    fl_lag_stop(&lag, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stalls_add_up_within_the_window),
        cmocka_unit_test(a_forgetful_ring_never_answers_too_little),
        cmocka_unit_test(thresholds),
        cmocka_unit_test(phases_spread),
        cmocka_unit_test(load_estimate),
        cmocka_unit_test(threads_auto),
        cmocka_unit_test(a_spinning_callback_is_a_stall),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
