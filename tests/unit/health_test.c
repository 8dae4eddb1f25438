/* The rise/fall state machine: pure, no loop needed; the loop rule is kept
 * anyway by the one test that feeds it from a real loop's timer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <uv.h>

#include "controller/probes/health.h"

static void feed(struct fl_health *h, const char *results)
{
    for (const char *c = results; *c != '\0'; c++)
        fl_health_update(h, *c == '+');
}

static void test_defaults(void **state)
{
    (void)state;
    struct fl_health h;
    fl_health_init(&h, 0, 0);
    assert_int_equal(h.rise, 2);
    assert_int_equal(h.fall, 3);
    assert_int_equal(h.state, FL_HEALTH_UNKNOWN);
    assert_string_equal(fl_health_state_name(h.state), "unknown");
}

static void test_rise_from_unknown(void **state)
{
    (void)state;
    struct fl_health h;
    fl_health_init(&h, 2, 3);
    assert_false(fl_health_update(&h, true));
    assert_int_equal(h.state, FL_HEALTH_UNKNOWN);
    assert_true(fl_health_update(&h, true));
    assert_int_equal(h.state, FL_HEALTH_HEALTHY);
    assert_false(fl_health_update(&h, true));
    assert_int_equal(h.successes, 3);
    assert_string_equal(fl_health_state_name(h.state), "healthy");
}

static void test_fall_from_unknown(void **state)
{
    (void)state;
    struct fl_health h;
    fl_health_init(&h, 2, 3);
    assert_false(fl_health_update(&h, false));
    assert_false(fl_health_update(&h, false));
    assert_int_equal(h.state, FL_HEALTH_UNKNOWN);
    assert_true(fl_health_update(&h, false));
    assert_int_equal(h.state, FL_HEALTH_UNHEALTHY);
}

static void test_fall_and_rise_again(void **state)
{
    (void)state;
    struct fl_health h;
    fl_health_init(&h, 2, 3);
    feed(&h, "++");
    assert_int_equal(h.state, FL_HEALTH_HEALTHY);
    feed(&h, "--");
    assert_int_equal(h.state, FL_HEALTH_HEALTHY);
    assert_true(fl_health_update(&h, false));
    assert_int_equal(h.state, FL_HEALTH_UNHEALTHY);
    assert_false(fl_health_update(&h, true));
    assert_int_equal(h.state, FL_HEALTH_UNHEALTHY);
    assert_true(fl_health_update(&h, true));
    assert_int_equal(h.state, FL_HEALTH_HEALTHY);
}

static void test_flapping(void **state)
{
    (void)state;
    struct fl_health h;
    fl_health_init(&h, 2, 3);
    feed(&h, "+-+-+-+-+-");
    assert_int_equal(h.state, FL_HEALTH_UNKNOWN);
    feed(&h, "++");
    assert_int_equal(h.state, FL_HEALTH_HEALTHY);
    feed(&h, "--+--+--+-");
    assert_int_equal(h.state, FL_HEALTH_HEALTHY); /* never three failures in a row */
    feed(&h, "--");
    assert_int_equal(h.state, FL_HEALTH_UNHEALTHY);
    feed(&h, "+-+-+-");
    assert_int_equal(h.state, FL_HEALTH_UNHEALTHY);
}

static void test_rise_one_fall_one(void **state)
{
    (void)state;
    struct fl_health h;
    fl_health_init(&h, 1, 1);
    assert_true(fl_health_update(&h, true));
    assert_int_equal(h.state, FL_HEALTH_HEALTHY);
    assert_true(fl_health_update(&h, false));
    assert_int_equal(h.state, FL_HEALTH_UNHEALTHY);
    assert_false(fl_health_update(&h, false));
    assert_true(fl_health_update(&h, true));
    assert_int_equal(h.state, FL_HEALTH_HEALTHY);

    fl_health_init(&h, 1, 1);
    assert_true(fl_health_update(&h, false));
    assert_int_equal(h.state, FL_HEALTH_UNHEALTHY);
    assert_string_equal(fl_health_state_name(h.state), "unhealthy");
}

static void test_rise_one_fall_three(void **state)
{
    (void)state;
    struct fl_health h;
    fl_health_init(&h, 1, 3);
    feed(&h, "---");
    assert_int_equal(h.state, FL_HEALTH_UNHEALTHY);
    assert_true(fl_health_update(&h, true));
    assert_int_equal(h.state, FL_HEALTH_HEALTHY);
}

/* Results arriving from a loop timer, as a probe delivers them. */
struct fed {
    uv_timer_t timer;
    struct fl_health h;
    const char *script;
    int changes;
};

static void on_tick(uv_timer_t *t)
{
    struct fed *f = t->data;
    if (*f->script == '\0') {
        uv_close((uv_handle_t *)t, NULL);
        return;
    }
    if (fl_health_update(&f->h, *f->script++ == '+'))
        f->changes++;
}

static void test_on_loop(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct fed f;
    memset(&f, 0, sizeof(f));
    fl_health_init(&f.h, 2, 2);
    f.script = "++--++";
    assert_int_equal(uv_timer_init(&loop, &f.timer), 0);
    f.timer.data = &f;
    assert_int_equal(uv_timer_start(&f.timer, on_tick, 0, 1), 0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f.changes, 3);
    assert_int_equal(f.h.state, FL_HEALTH_HEALTHY);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_rise_from_unknown),
        cmocka_unit_test(test_fall_from_unknown),
        cmocka_unit_test(test_fall_and_rise_again),
        cmocka_unit_test(test_flapping),
        cmocka_unit_test(test_rise_one_fall_one),
        cmocka_unit_test(test_rise_one_fall_three),
        cmocka_unit_test(test_on_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
