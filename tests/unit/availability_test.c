/* The availability budget: every number below is worked out by hand in the
 * comment beside it (a year is 365 d = 31 536 000 000 ms). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "controller/report/availability.h"

#define YEAR 31536000000.0

static void eval(const struct fl_avail_budget *b, double mttr, struct fl_avail_result *r)
{
    char err[256];
    assert_int_equal(fl_avail_evaluate(b, mttr, r, err, sizeof(err)), 0);
}

/* 99.95 % with 6 failures a year: (1 - 0.9995) * year / 6
 * = 0.0005 * 31 536 000 000 / 6 = 15 768 000 / 6 = 2 628 000 ms = 43 min 48 s.
 * A recovery of 650 ms: 6 * 650 = 3 900 ms down a year,
 * A = 1 - 3 900 / 31 536 000 000. */
static void issue_example(void **state)
{
    (void)state;
    struct fl_avail_budget b = {.target = 0.9995, .failures_per_year = 6, .redundancy = 1};
    struct fl_avail_result r;
    eval(&b, 650, &r);
    assert_int_equal(r.max_mttr_ms, 2628000);
    assert_true(r.pass);
    assert_float_equal(r.downtime_ms_per_year, 3900.0, 1e-3);
    assert_float_equal(r.availability, 1.0 - 3900.0 / YEAR, 1e-15);
}

/* The boundary: exactly the allowance passes, one ms more fails. */
static void boundary(void **state)
{
    (void)state;
    struct fl_avail_budget b = {.target = 0.9995, .failures_per_year = 6};
    struct fl_avail_result r;
    eval(&b, 2628000, &r);
    assert_true(r.pass);
    /* 6 * 2 628 000 = 15 768 000 ms down = exactly the 0.05 % of a year */
    assert_float_equal(r.availability, 0.9995, 1e-12);
    eval(&b, 2628001, &r);
    assert_false(r.pass);
    /* 99.9 % with 1 failure: 0.001 * year = 31 536 000 ms = 8 h 45 min 36 s */
    b.target = 0.999;
    b.failures_per_year = 1;
    eval(&b, 31536000, &r);
    assert_int_equal(r.max_mttr_ms, 31536000);
    assert_true(r.pass);
}

/* mtbf 60 d = 5 184 000 000 ms, 99.9 %: MTBF (1 - A) / A
 * = 5 184 000 000 * 0.001 / 0.999 = 5 189 189.189... -> 5 189 189 ms.
 * MTTR 1 000 ms: A = 5 184 000 000 / 5 184 001 000, down a year
 * = 1 000 / 5 184 001 000 * 31 536 000 000 = 6 083.332... ms. */
static void mtbf_form(void **state)
{
    (void)state;
    struct fl_avail_budget b = {.target = 0.999, .mtbf_ms = 5184000000.0, .redundancy = 1};
    struct fl_avail_result r;
    eval(&b, 1000, &r);
    assert_int_equal(r.max_mttr_ms, 5189189);
    assert_float_equal(r.availability, 5184000000.0 / 5184001000.0, 1e-15);
    assert_float_equal(r.downtime_ms_per_year, 6083.332, 1e-3);
    assert_true(r.pass);
    eval(&b, 5189190, &r);
    assert_false(r.pass);
}

/* Two instances, 99.99 %, 12 failures a year each: each instance needs
 * 1 - sqrt(0.0001) = 1 - 0.01 = 0.99, so a recovery may last
 * 0.01 * 31 536 000 000 / 12 = 26 280 000 ms (7 h 18 min).
 * MTTR 1 h = 3 600 000: one instance is down 12 * 3.6e6 = 43 200 000 ms a year,
 * 1 - A1 = 43 200 000 / 31 536 000 000 = 0.001369863...; the pair is down
 * (1 - A1)^2 * year = 43 200 000^2 / 31 536 000 000 = 59 178.08... ms a year. */
static void redundancy_two(void **state)
{
    (void)state;
    struct fl_avail_budget b = {.target = 0.9999, .failures_per_year = 12, .redundancy = 2};
    struct fl_avail_result r;
    eval(&b, 3600000, &r);
    assert_int_equal(r.max_mttr_ms, 26280000);
    assert_float_equal(r.downtime_ms_per_year, 43200000.0 * 43200000.0 / YEAR, 1e-3);
    assert_float_equal(r.downtime_ms_per_year, 59178.08, 0.01);
    assert_true(r.pass);
}

/* Three instances, 99.9999 % (1e-6 unavailable), mtbf 30 d = 2 592 000 000 ms:
 * each needs 1 - (1e-6)^(1/3) = 0.99; a recovery may last
 * 2 592 000 000 * 0.01 / 0.99 = 26 181 818.18... -> 26 181 818 ms. */
static void redundancy_three(void **state)
{
    (void)state;
    struct fl_avail_budget b = {.target = 0.999999, .mtbf_ms = 2592000000.0, .redundancy = 3};
    struct fl_avail_result r;
    eval(&b, 26181818, &r);
    assert_int_equal(r.max_mttr_ms, 26181818);
    assert_true(r.pass);
    eval(&b, 26181819, &r);
    assert_false(r.pass);
    /* 1 - (1 - 0.9)^3 = 1 - 0.001 = 0.999 */
    assert_float_equal(fl_avail_redundant(0.9, 3), 0.999, 1e-12);
    assert_float_equal(fl_avail_redundant(0.9, 1), 0.9, 1e-12);
    assert_float_equal(fl_avail_per_instance(0.9999, 2), 0.99, 1e-12);
}

/* A recovery longer than the failure cycle: the instance is never up. */
static void never_up(void **state)
{
    (void)state;
    struct fl_avail_budget b = {.target = 0.99, .failures_per_year = 1000};
    struct fl_avail_result r;
    eval(&b, YEAR, &r);
    assert_float_equal(r.availability, 0.0, 0);
    assert_float_equal(r.downtime_ms_per_year, YEAR, 1e-3);
    assert_false(r.pass);
}

static void refused(void **state)
{
    (void)state;
    char err[256];
    struct fl_avail_result r;
    struct fl_avail_budget b = {.target = 1.0, .failures_per_year = 6};
    assert_int_equal(fl_avail_evaluate(&b, 1, &r, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "target"));
    b.target = 0;
    assert_int_equal(fl_avail_evaluate(&b, 1, &r, err, sizeof(err)), -EINVAL);
    b.target = 0.99;
    b.mtbf_ms = 1000;
    assert_int_equal(fl_avail_evaluate(&b, 1, &r, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "exactly one"));
    b.failures_per_year = 0;
    b.mtbf_ms = 0;
    assert_int_equal(fl_avail_evaluate(&b, 1, &r, err, sizeof(err)), -EINVAL);
    b.failures_per_year = 6;
    b.redundancy = FL_AVAIL_REDUNDANCY_MAX + 1;
    assert_int_equal(fl_avail_evaluate(&b, 1, &r, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "redundancy"));
    b.redundancy = 1;
    assert_int_equal(fl_avail_evaluate(&b, -1, &r, err, sizeof(err)), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issue_example),    cmocka_unit_test(boundary),
        cmocka_unit_test(mtbf_form),        cmocka_unit_test(redundancy_two),
        cmocka_unit_test(redundancy_three), cmocka_unit_test(never_up),
        cmocka_unit_test(refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
