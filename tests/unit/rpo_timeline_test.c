/* A write probe's timeline as the recovery counts it (fl_rpo_result_of,
 * issue 15): each write keeps the time the runner judged it at.
 *
 * Found on the Redis bed: the rebuilt timeline gave every unacknowledged
 * write the whole timeout as its latency. Writes refused at once (a killed
 * primary, a failover under way) then had results a timeout later than
 * they were known, after the successes that followed them -- and since
 * results count in attempt order with the running maximum of their times,
 * those successes moved past the end of the run: a run that recovered read
 * "did not recover within the recovery timeout". The control case below
 * measures the same writes as that rule did (unjudged: the timeout) and
 * shows it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "controller/probes/probe.h"
#include "controller/run/measure.h"
#include "controller/run/rpo.h"

#define TIMEOUT_MS 500

/* Steady 0, 100; injected at 150; writes at 200..600 refused at once (1 ms
 * each); successes at 700 and 800 (2 ms); the run ends at 850. */
static void measure(bool judged, struct fl_measurement *m, struct fl_probe_result *res)
{
    struct fl_rpo_write w[9];
    enum fl_probe_outcome outcome[9];
    for (int i = 0; i < 9; i++) {
        bool ok = i < 2 || i >= 7;
        w[i] = (struct fl_rpo_write){.seq = (uint64_t)i + 1,
                                     .sent_ms = 100u * (uint64_t)i,
                                     .acked = ok,
                                     .ack_ms = ok ? 100u * (uint64_t)i + 2 : 0};
        outcome[i] = ok ? FL_OUTCOME_OK : FL_OUTCOME_FAILED;
        uint32_t ms = judged ? (ok ? 2u : 1u) : FL_RPO_UNJUDGED;
        fl_rpo_result_of(&w[i], ok ? FL_RPO_SURVIVED : FL_RPO_NOT_ACKED, (int)outcome[i], ms,
                         TIMEOUT_MS, &res[i]);
    }
    struct fl_measure_window win = {.injected_at = 150, .reverted_at = 0, .end_at = 850};
    assert_int_equal(fl_measure_probe(res, 9, 2, 1, &win, m), 0);
}

static void test_refused_write_keeps_its_time(void **state)
{
    (void)state;
    struct fl_probe_result res[9];
    struct fl_measurement m;
    measure(true, &m, res);
    assert_int_equal(res[2].latency_ms, 1);
    assert_int_equal(res[2].outcome, FL_OUTCOME_FAILED);
    assert_true(res[7].ok);
    assert_true(m.impacted);
    assert_int_equal(m.impact_at, 201);
    assert_true(m.recovered);
    assert_int_equal(m.recovered_at, 702);
    assert_int_equal(m.recovery_time_ms, 552);
}

static void test_control_timeout_latency_hides_the_recovery(void **state)
{
    (void)state;
    struct fl_probe_result res[9];
    struct fl_measurement m;
    measure(false, &m, res); /* what the timeline said before: the timeout */
    assert_int_equal(res[2].latency_ms, TIMEOUT_MS);
    assert_true(m.impacted);
    assert_int_equal(m.impact_at, 700); /* a timeout after it was refused */
    assert_false(m.recovered);          /* the successes count at 1100, past the end */
}

static void test_rules(void **state)
{
    (void)state;
    struct fl_rpo_write w = {.seq = 1, .sent_ms = 1000, .acked = true, .ack_ms = 1003};
    struct fl_probe_result x;
    fl_rpo_result_of(&w, FL_RPO_LOST, FL_OUTCOME_OK, 3, TIMEOUT_MS, &x);
    assert_int_equal(x.outcome, FL_OUTCOME_FAILED);
    assert_false(x.ok);
    assert_string_equal(x.detail, "acknowledged, then lost");
    assert_int_equal(x.started_ms, 1000);
    assert_int_equal(x.latency_ms, 3);
    fl_rpo_result_of(&w, FL_RPO_SURVIVED, FL_OUTCOME_LATE, 500, TIMEOUT_MS, &x);
    assert_int_equal(x.outcome, FL_OUTCOME_LATE);
    /* acknowledged after the runner's timeout: the runner's timeout stands */
    fl_rpo_result_of(&w, FL_RPO_SURVIVED, FL_OUTCOME_TIMEOUT, 500, TIMEOUT_MS, &x);
    assert_int_equal(x.outcome, FL_OUTCOME_TIMEOUT);
    assert_int_equal(x.latency_ms, 500);
    /* never reported by the runner: its acknowledgement */
    fl_rpo_result_of(&w, FL_RPO_SURVIVED, FL_OUTCOME_OK, FL_RPO_UNJUDGED, TIMEOUT_MS, &x);
    assert_true(x.ok);
    assert_int_equal(x.latency_ms, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_write_keeps_its_time),
        cmocka_unit_test(test_control_timeout_latency_hides_the_recovery),
        cmocka_unit_test(test_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
