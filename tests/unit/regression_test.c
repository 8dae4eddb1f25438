/* The regression check: median baseline, tolerance AND two resolutions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "controller/serve/regression.h"

static void no_history_no_baseline(void **state)
{
    (void)state;
    fl_regression r = fl_regression_check(NULL, 0, 10, 0.2, 5000, 100);
    assert_false(r.have_baseline);
    assert_false(r.regressed);
}

static void median_of_window(void **state)
{
    (void)state;
    int64_t past[] = {1000, 9000, 1200, 1100, 50000};
    fl_regression r = fl_regression_check(past, 5, 10, 0.2, 1000, 10);
    assert_true(r.have_baseline);
    assert_int_equal(r.baseline_ms, 1200);
    /* only the 4 newest count when window = 4: median of 1000,1100,1200,9000 */
    r = fl_regression_check(past, 5, 4, 0.2, 1000, 10);
    assert_int_equal(r.baseline_ms, 1150);
}

static void both_thresholds_needed(void **state)
{
    (void)state;
    int64_t past[] = {1000, 1000, 1000};
    /* 30 % slower and 300 ms > 2 x 100 ms: regressed */
    assert_true(fl_regression_check(past, 3, 10, 0.2, 1300, 100).regressed);
    /* 30 % slower but only 300 ms with a 200 ms resolution: within the grain */
    assert_false(fl_regression_check(past, 3, 10, 0.2, 1300, 200).regressed);
    /* 10 % slower, far above the grain: within tolerance */
    assert_false(fl_regression_check(past, 3, 10, 0.2, 1100, 1).regressed);
    /* exactly at the tolerance: not more than it */
    assert_false(fl_regression_check(past, 3, 10, 0.2, 1200, 1).regressed);
    /* faster is never a regression */
    assert_false(fl_regression_check(past, 3, 10, 0.2, 10, 1).regressed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_history_no_baseline),
        cmocka_unit_test(median_of_window),
        cmocka_unit_test(both_thresholds_needed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
