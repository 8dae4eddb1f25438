/* Measurement on hand-made timelines, the combiner, and every verdict. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "controller/run/measure.h"

#define MAX_RESULTS 128

/* Builds a timeline from a pattern, one character per interval of step ms
 * starting at start: '+' a success, '-' a failure (both known at once), ' ' no
 * result in that interval. Returns the number of results. */
static size_t timeline(struct fl_probe_result *r, const char *pattern, uint64_t start,
                       uint64_t step)
{
    size_t n = 0;
    for (size_t i = 0; pattern[i] != '\0'; i++) {
        if (pattern[i] == ' ')
            continue;
        assert_true(n < MAX_RESULTS);
        memset(&r[n], 0, sizeof(r[n]));
        r[n].started_ms = start + i * step;
        r[n].latency_ms = 0;
        r[n].ok = pattern[i] == '+';
        snprintf(r[n].detail, sizeof(r[n].detail), "%s", r[n].ok ? "200" : "connection refused");
        n++;
    }
    return n;
}

/* Measures a pattern laid out from t=0 every 100ms. */
static int measure(const char *pattern, unsigned rise, unsigned fall, uint64_t injected,
                   uint64_t reverted, uint64_t end, struct fl_measurement *m)
{
    struct fl_probe_result r[MAX_RESULTS];
    size_t n = timeline(r, pattern, 0, 100);
    struct fl_measure_window w = {.injected_at = injected, .reverted_at = reverted, .end_at = end};
    return fl_measure_probe(r, n, rise, fall, &w, m);
}

static void test_flapping_then_stable(void **state)
{
    (void)state;
    struct fl_measurement m;
    /*                 t=0       1000        2100
     *                 |         |           |      */
    assert_int_equal(measure("++++++++++---+-+--++++", 2, 3, 1000, 0, 5000, &m), 0);
    assert_true(m.impacted);
    assert_int_equal(m.impact_at, 1000);
    assert_true(m.detected);
    assert_int_equal(m.detected_at, 1200);
    /* 1300 and 1500 are single successes between failures: not a recovery. */
    assert_true(m.recovered);
    assert_int_equal(m.recovered_at, 1800);
    assert_int_equal(m.last_failure_at, 1700);
    assert_int_equal(m.recovery_time_ms, 800);
    assert_int_equal(m.resolution_ms, 100);
    assert_false(m.no_impact);
    assert_false(m.recovered_after_revert);
    assert_false(m.unobserved);
    assert_int_equal(m.n_results, 12);
    assert_int_equal(m.n_failures, 6);
    /* Unhealthy from the 3rd failure (1200) to the 2nd success in a row (1900). */
    assert_int_equal(m.longest_unhealthy_ms, 700);
    assert_true(m.healthy_at_end);
}

static void test_never_recovers(void **state)
{
    (void)state;
    struct fl_measurement m;
    assert_int_equal(measure("+++++-----+--+-", 2, 3, 500, 1200, 3000, &m), 0);
    assert_true(m.impacted);
    assert_int_equal(m.impact_at, 500);
    assert_true(m.detected);
    assert_int_equal(m.detected_at, 700);
    assert_false(m.recovered);
    assert_int_equal(m.recovery_time_ms, 0);
    assert_false(m.recovered_after_revert);
    assert_false(m.no_impact);
    /* Still unhealthy at the end of observation. */
    assert_int_equal(m.longest_unhealthy_ms, 3000 - 700);
    assert_false(m.healthy_at_end);

    /* A run of successes cut off by the end of observation is no recovery. */
    assert_int_equal(measure("+++++---++++", 3, 3, 500, 0, 900, &m), 0);
    assert_false(m.recovered);
    assert_int_equal(m.n_results, 5); /* 500..900; 1000 and 1100 not observed */
    assert_int_equal(m.longest_unhealthy_ms, 900 - 700);
    assert_false(m.healthy_at_end);
}

static void test_recovers_before_revert(void **state)
{
    (void)state;
    struct fl_measurement m;
    assert_int_equal(measure("+++----+++++", 2, 3, 300, 1000, 2000, &m), 0);
    assert_true(m.recovered);
    assert_int_equal(m.recovered_at, 700);
    assert_int_equal(m.recovery_time_ms, 400);
    assert_false(m.recovered_after_revert);
    assert_int_equal(m.reverted_at, 1000);
}

static void test_recovers_only_after_revert(void **state)
{
    (void)state;
    struct fl_measurement m;
    /* Revert at exactly the first success of the run: after revert. */
    assert_int_equal(measure("+++----+++++", 2, 3, 300, 700, 2000, &m), 0);
    assert_true(m.recovered);
    assert_int_equal(m.recovered_at, 700);
    assert_true(m.recovered_after_revert);
    /* One millisecond later and it healed while the fault was active. */
    assert_int_equal(measure("+++----+++++", 2, 3, 300, 701, 2000, &m), 0);
    assert_false(m.recovered_after_revert);
    /* Never reverted: never "after revert". */
    assert_int_equal(measure("+++----+++++", 2, 3, 300, 0, 2000, &m), 0);
    assert_false(m.recovered_after_revert);
}

static void test_no_impact(void **state)
{
    (void)state;
    struct fl_measurement m;
    assert_int_equal(measure("--+++++++++", 2, 3, 300, 800, 2000, &m), 0);
    assert_true(m.no_impact);
    assert_false(m.impacted);
    assert_false(m.detected);
    assert_false(m.recovered);
    assert_int_equal(m.recovery_time_ms, 0);
    assert_int_equal(m.resolution_ms, 0);
    assert_int_equal(m.n_results, 8);
    assert_int_equal(m.n_failures, 0);
    assert_int_equal(m.longest_unhealthy_ms, 0);
    assert_true(m.healthy_at_end);
}

static void test_no_results_after_injection(void **state)
{
    (void)state;
    struct fl_measurement m;
    assert_int_equal(measure("+++++", 2, 3, 1000, 0, 2000, &m), 0);
    assert_true(m.unobserved);
    assert_false(m.no_impact);
    assert_false(m.impacted);
    assert_int_equal(m.n_results, 0);
    assert_true(m.healthy_at_end); /* from before injection */

    struct fl_measure_window w = {.injected_at = 1000, .reverted_at = 0, .end_at = 2000};
    assert_int_equal(fl_measure_probe(NULL, 0, 2, 3, &w, &m), 0);
    assert_true(m.unobserved);
    assert_false(m.healthy_at_end);
}

static void test_timeouts(void **state)
{
    (void)state;
    /* interval 1s, timeout 500ms: a timeout is known 500ms after it started. */
    struct fl_probe_result r[] = {
        {.started_ms = 0, .latency_ms = 12, .ok = true, .detail = "200"},
        {.started_ms = 1000, .latency_ms = 11, .ok = true, .detail = "200"},
        {.started_ms = 2000, .latency_ms = 500, .ok = false, .detail = "timeout after 500ms"},
        {.started_ms = 3000, .latency_ms = 500, .ok = false, .detail = "timeout after 500ms"},
        {.started_ms = 4000, .latency_ms = 500, .ok = false, .detail = "timeout after 500ms"},
        {.started_ms = 5000, .latency_ms = 20, .ok = true, .detail = "200"},
        {.started_ms = 6000, .latency_ms = 15, .ok = true, .detail = "200"},
    };
    struct fl_measure_window w = {.injected_at = 1900, .reverted_at = 0, .end_at = 10000};
    struct fl_measurement m;
    assert_int_equal(fl_measure_probe(r, 7, 2, 3, &w, &m), 0);
    assert_int_equal(m.impact_at, 2500);
    assert_int_equal(m.detected_at, 4500);
    assert_int_equal(m.recovered_at, 5020);
    /* the last failed request was sent at 4000: the system may have healed
     * any time after that, so the resolution is 1020, not 520 */
    assert_int_equal(m.last_failure_at, 4000);
    assert_int_equal(m.resolution_ms, 1020);
    assert_int_equal(m.recovery_time_ms, 5020 - 1900);
    assert_int_equal(m.n_failures, 3);

    /* An attempt started before injection whose outcome is known after it
     * counts as after injection (its time is when its outcome was known). */
    w.injected_at = 2400;
    assert_int_equal(fl_measure_probe(r, 7, 2, 3, &w, &m), 0);
    assert_int_equal(m.impact_at, 2500);
    assert_int_equal(m.n_results, 5);

    /* Overlapping attempts (timeout 1500ms, interval 1s): the success started
     * at 4000 is known at 4010, before the timeout started at 3000 (4500); it
     * counts once both are known, at 4500. */
    struct fl_probe_result o[] = {
        {.started_ms = 2000, .latency_ms = 1500, .ok = false, .detail = "timeout after 1500ms"},
        {.started_ms = 3000, .latency_ms = 1500, .ok = false, .detail = "timeout after 1500ms"},
        {.started_ms = 4000, .latency_ms = 10, .ok = true, .detail = "200"},
        {.started_ms = 5000, .latency_ms = 10, .ok = true, .detail = "200"},
    };
    w.injected_at = 1000;
    assert_int_equal(fl_measure_probe(o, 4, 2, 2, &w, &m), 0);
    assert_int_equal(m.impact_at, 3500);
    assert_int_equal(m.detected_at, 4500);
    assert_int_equal(m.recovered_at, 4500);
    assert_int_equal(m.last_failure_at, 3000); /* sent at 3000 */
    assert_int_equal(m.resolution_ms, 1500);
    assert_int_equal(m.longest_unhealthy_ms, 5010 - 4500);
}

static void test_impact_without_detection(void **state)
{
    (void)state;
    struct fl_measurement m;
    assert_int_equal(measure("+++--+--++++", 2, 3, 300, 0, 2000, &m), 0);
    assert_true(m.impacted);
    assert_int_equal(m.impact_at, 300);
    assert_false(m.detected);
    assert_true(m.recovered);
    assert_int_equal(m.recovered_at, 800);
    assert_int_equal(m.last_failure_at, 700);
    assert_int_equal(m.longest_unhealthy_ms, 0); /* never turned unhealthy */
}

static void test_failures_before_injection_ignored(void **state)
{
    (void)state;
    struct fl_measurement m;
    /* Three failures before injection (300..500), one after (600). */
    assert_int_equal(measure("+++----++++", 2, 3, 600, 0, 2000, &m), 0);
    assert_int_equal(m.impact_at, 600);
    assert_false(m.detected); /* the run straddling injection does not count */
    assert_int_equal(m.recovered_at, 700);
    assert_int_equal(m.resolution_ms, 100);
    assert_int_equal(m.n_results, 5);
    assert_int_equal(m.n_failures, 1);

    /* Failures only before injection: no impact. */
    assert_int_equal(measure("+++---+++++", 2, 3, 600, 0, 2000, &m), 0);
    assert_true(m.no_impact);

    /* A timeline that starts unhealthy and stays so: impact at the first
     * result after injection, detection fall results later. */
    assert_int_equal(measure("---------++", 2, 3, 400, 0, 2000, &m), 0);
    assert_int_equal(m.impact_at, 400);
    assert_int_equal(m.detected_at, 600);
    assert_int_equal(m.recovered_at, 900);
}

static void test_rise_and_fall_one(void **state)
{
    (void)state;
    struct fl_measurement m;
    assert_int_equal(measure("+++-+-+", 1, 1, 300, 0, 2000, &m), 0);
    assert_int_equal(m.impact_at, 300);
    assert_int_equal(m.detected_at, 300);
    assert_int_equal(m.recovered_at, 400); /* one success is a recovery */
    assert_int_equal(m.last_failure_at, 300);
    assert_int_equal(m.resolution_ms, 100);
    assert_int_equal(m.longest_unhealthy_ms, 100);
    assert_true(m.healthy_at_end);

    assert_int_equal(measure("+++-+-", 1, 1, 300, 0, 2000, &m), 0);
    assert_false(m.healthy_at_end);
    assert_int_equal(m.longest_unhealthy_ms, 2000 - 500);

    /* fall 1 with rise 3: one failure detects, three successes recover. */
    assert_int_equal(measure("++-++-+++", 3, 1, 200, 0, 2000, &m), 0);
    assert_int_equal(m.detected_at, 200);
    assert_int_equal(m.recovered_at, 600);
    assert_int_equal(m.last_failure_at, 500);
}

static void test_resolution_from_last_failure(void **state)
{
    (void)state;
    /* Irregular gaps: the last failure is at 1350, the run starts at 2000. */
    struct fl_probe_result r[] = {
        {.started_ms = 500, .ok = true},   {.started_ms = 1000, .ok = false},
        {.started_ms = 1350, .ok = false}, {.started_ms = 2000, .ok = true},
        {.started_ms = 2100, .ok = true},
    };
    struct fl_measure_window w = {.injected_at = 1000, .reverted_at = 0, .end_at = 3000};
    struct fl_measurement m;
    assert_int_equal(fl_measure_probe(r, 5, 2, 3, &w, &m), 0);
    assert_int_equal(m.recovered_at, 2000);
    assert_int_equal(m.last_failure_at, 1350);
    assert_int_equal(m.resolution_ms, 650);
    assert_int_equal(m.recovery_time_ms, 1000);
}

static void test_bad_input(void **state)
{
    (void)state;
    struct fl_probe_result r[MAX_RESULTS];
    size_t n = timeline(r, "++--++", 0, 100);
    struct fl_measure_window w = {.injected_at = 100, .reverted_at = 0, .end_at = 1000};
    struct fl_measurement m, before;
    memset(&m, 0xa5, sizeof(m));
    before = m;

    assert_int_equal(fl_measure_probe(r, n, 0, 3, &w, &m), -EINVAL);
    assert_int_equal(fl_measure_probe(r, n, 2, 0, &w, &m), -EINVAL);
    assert_int_equal(fl_measure_probe(NULL, n, 2, 3, &w, &m), -EINVAL);
    assert_int_equal(fl_measure_probe(r, n, 2, 3, NULL, &m), -EINVAL);
    assert_int_equal(fl_measure_probe(r, n, 2, 3, &w, NULL), -EINVAL);

    struct fl_measure_window bad = {.injected_at = 2000, .reverted_at = 0, .end_at = 1000};
    assert_int_equal(fl_measure_probe(r, n, 2, 3, &bad, &m), -EINVAL);
    bad = (struct fl_measure_window){.injected_at = 500, .reverted_at = 400, .end_at = 1000};
    assert_int_equal(fl_measure_probe(r, n, 2, 3, &bad, &m), -EINVAL);

    r[4].started_ms = 250; /* out of order */
    assert_int_equal(fl_measure_probe(r, n, 2, 3, &w, &m), -EINVAL);
    r[4].started_ms = 400;
    r[5].started_ms = 2000; /* unordered after end_at is still rejected */
    r[4].started_ms = 2500;
    assert_int_equal(fl_measure_probe(r, n, 2, 3, &w, &m), -EINVAL);
    r[4].started_ms = 400;
    r[5].latency_ms = UINT64_MAX;
    assert_int_equal(fl_measure_probe(r, n, 2, 3, &w, &m), -ERANGE);
    assert_memory_equal(&m, &before, sizeof(m));
}

static struct fl_measurement probe(const char *pattern, uint64_t reverted)
{
    struct fl_measurement m;
    assert_int_equal(measure(pattern, 2, 3, 300, reverted, 3000, &m), 0);
    return m;
}

static void test_combine(void **state)
{
    (void)state;
    struct fl_measurement ms[2], c, before;
    ms[0] = probe("+++++----++++", 0);  /* impact 500, recovered 900, last failure 800 */
    ms[1] = probe("+++-----+-++++", 0); /* impact 300, detected 500, recovered 1000, lf 900 */
    assert_int_equal(ms[0].recovered_at, 900);
    assert_int_equal(ms[1].recovered_at, 1000);
    assert_int_equal(fl_measure_combine(ms, 2, &c), 0);
    assert_true(c.impacted);
    assert_int_equal(c.impact_at, 300);
    assert_true(c.detected);
    assert_int_equal(c.detected_at, 500);
    assert_true(c.recovered);
    assert_int_equal(c.recovered_at, 1000);
    assert_int_equal(c.last_failure_at, 900);
    assert_int_equal(c.recovery_time_ms, 700);
    assert_int_equal(c.resolution_ms, 100);
    assert_false(c.no_impact);
    assert_int_equal(c.n_results, ms[0].n_results + ms[1].n_results);
    assert_int_equal(c.n_failures, 4 + 6);
    assert_true(c.healthy_at_end);

    /* The later recovery's lower bound is the later of the last failures. */
    ms[0] = probe("+++------------++", 0); /* lf 1400, recovered 1500 */
    ms[1] = probe("+++-----++++++++", 0);  /* lf 700, recovered 800 */
    assert_int_equal(fl_measure_combine(ms, 2, &c), 0);
    assert_int_equal(c.recovered_at, 1500);
    assert_int_equal(c.resolution_ms, 100);
    assert_int_equal(c.longest_unhealthy_ms, ms[0].longest_unhealthy_ms);

    /* One impacted and recovered, one not impacted: recovered, impact. */
    ms[0] = probe("+++++++++", 0);
    ms[1] = probe("+++--++++", 0);
    assert_int_equal(fl_measure_combine(ms, 2, &c), 0);
    assert_false(c.no_impact);
    assert_true(c.recovered);
    assert_int_equal(c.recovered_at, 500);

    /* One never recovers: the experiment did not recover. */
    ms[0] = probe("+++----------", 0);
    assert_int_equal(fl_measure_combine(ms, 2, &c), 0);
    assert_false(c.recovered);
    assert_int_equal(c.recovered_at, 0);
    assert_false(c.healthy_at_end);

    /* Neither impacted: no impact. */
    ms[0] = probe("+++++++++", 0);
    ms[1] = probe("++++++++", 0);
    assert_int_equal(fl_measure_combine(ms, 2, &c), 0);
    assert_true(c.no_impact);
    assert_false(c.impacted);
    assert_int_equal(c.recovery_time_ms, 0);

    /* One recovered only after revert (at 700): reported for the whole. */
    ms[0] = probe("+++----+++", 700);
    ms[1] = probe("+++-++++++", 700);
    assert_true(ms[0].recovered_after_revert);
    assert_false(ms[1].recovered_after_revert);
    assert_int_equal(fl_measure_combine(ms, 2, &c), 0);
    assert_true(c.recovered_after_revert);

    /* One probe without results after injection: unobserved, not no_impact. */
    ms[0] = probe("+++", 0);
    ms[1] = probe("++++++", 0);
    assert_int_equal(fl_measure_combine(ms, 2, &c), 0);
    assert_true(c.unobserved);
    assert_false(c.no_impact);

    /* Different windows, nothing, NULL. */
    memset(&c, 0x5a, sizeof(c));
    before = c;
    ms[1].reverted_at = 1;
    assert_int_equal(fl_measure_combine(ms, 2, &c), -EINVAL);
    assert_int_equal(fl_measure_combine(ms, 0, &c), -EINVAL);
    assert_int_equal(fl_measure_combine(NULL, 1, &c), -EINVAL);
    assert_int_equal(fl_measure_combine(ms, 1, NULL), -EINVAL);
    assert_memory_equal(&c, &before, sizeof(c));
}

/* A recovered measurement with the given recovery time and resolution. */
static struct fl_measurement recovered(uint64_t rto, uint64_t resolution, bool after_revert)
{
    struct fl_measurement m;
    memset(&m, 0, sizeof(m));
    m.injected_at = 10000;
    m.impacted = true;
    m.impact_at = 10100;
    m.recovered = true;
    m.recovered_at = 10000 + rto;
    m.last_failure_at = m.recovered_at - resolution;
    m.recovery_time_ms = rto;
    m.resolution_ms = resolution;
    m.recovered_after_revert = after_revert;
    m.n_results = 10;
    m.n_failures = 3;
    m.healthy_at_end = true;
    return m;
}

static void expect(const struct fl_verdict_input *in, enum fl_verdict want, const char *reason)
{
    enum fl_verdict v = (enum fl_verdict)99;
    char buf[FL_MEASURE_REASON_MAX];
    assert_int_equal(fl_measure_verdict(in, &v, buf, sizeof(buf)), 0);
    assert_string_equal(buf, reason);
    assert_int_equal(v, want);
}

static void test_verdicts(void **state)
{
    (void)state;
    struct fl_measure_objectives rto5 = {.has_rto = true, .rto_ms = 5000};
    struct fl_measurement m = recovered(1420, 100, false);
    struct fl_verdict_input in = {
        .objectives = &rto5, .recovery = &m, .steady_state_returned = true};

    expect(&in, FL_VERDICT_PASS, "recovered in 1.42s (±0.10s), objective 5s");

    /* Exactly the objective passes; a millisecond over fails, and prints over. */
    m = recovered(5000, 100, false);
    expect(&in, FL_VERDICT_PASS, "recovered in 5.00s (±0.10s), objective 5s");
    m = recovered(5001, 100, false);
    expect(&in, FL_VERDICT_FAIL, "recovered in 5.01s (±0.10s), objective 5s");

    m = recovered(31200, 100, true);
    expect(&in, FL_VERDICT_FAIL,
           "recovered only after revert in 31.20s, objective 5s: it did "
           "not heal while the fault was active");
    /* After revert, within the objective's time: the claim is that it heals
     * while the fault lasts, so a FAIL that says why. */
    m = recovered(3000, 100, true);
    expect(&in, FL_VERDICT_FAIL,
           "recovered only after revert in 3.00s, objective 5s: it did not "
           "heal while the fault was active");

    /* No objectives at all. */
    in.objectives = NULL;
    m = recovered(1420, 100, false);
    expect(&in, FL_VERDICT_PASS, "recovered in 1.42s (±0.10s)");
    in.objectives = &rto5;

    /* Did not recover. */
    m = recovered(1420, 100, false);
    m.recovered = false;
    expect(&in, FL_VERDICT_FAIL, "did not recover within the recovery timeout");

    /* No impact: its own verdict when impact is optional, a FAIL when it is
     * required (the default with an RTO: a run that tested nothing). */
    memset(&m, 0, sizeof(m));
    m.no_impact = true;
    m.n_results = 20;
    m.healthy_at_end = true;
    expect(&in, FL_VERDICT_PASS_NO_IMPACT, "no impact");
    struct fl_measure_objectives required = rto5;
    required.impact_required = true;
    in.objectives = &required;
    expect(&in, FL_VERDICT_FAIL,
           "the fault had no visible effect on any probe: check the targets (impact: required; "
           "set impact: optional if the system masks this failure completely)");
    assert_int_equal(fl_measure_exit_code(FL_VERDICT_PASS_NO_IMPACT), 0);
    assert_string_equal(fl_measure_verdict_name(FL_VERDICT_PASS_NO_IMPACT), "pass_no_impact");
    assert_string_equal(fl_measure_verdict_caps(FL_VERDICT_PASS_NO_IMPACT), "PASS (no impact)");
    /* required, and there was an impact: the usual verdicts */
    m = recovered(1420, 100, false);
    expect(&in, FL_VERDICT_PASS, "recovered in 1.42s (±0.10s), objective 5s");
    in.objectives = &rto5;
    memset(&m, 0, sizeof(m));
    m.no_impact = true;
    m.n_results = 20;
    m.healthy_at_end = true;

    /* Steady state did not return. */
    in.steady_state_returned = false;
    expect(&in, FL_VERDICT_FAIL,
           "no impact, but the steady state did not return by the end of the run");
    m = recovered(1420, 100, false);
    expect(&in, FL_VERDICT_FAIL,
           "recovered in 1.42s (±0.10s), objective 5s, but the steady "
           "state did not return by the end of the run");
    in.steady_state_returned = true;

    /* Unobserved. */
    memset(&m, 0, sizeof(m));
    m.unobserved = true;
    expect(&in, FL_VERDICT_ABORTED,
           "no recovery probe result after injection, nothing was "
           "measured: check that the probes ran");

    /* Aborted wins over everything. */
    in.abort_reason = "probe frontend unhealthy for 20s";
    expect(&in, FL_VERDICT_ABORTED, "aborted: probe frontend unhealthy for 20s");
    m = recovered(1420, 100, false);
    expect(&in, FL_VERDICT_ABORTED, "aborted: probe frontend unhealthy for 20s");
    in.abort_reason = NULL;

    /* RPO. */
    struct fl_measure_objectives both = {
        .has_rto = true, .rto_ms = 90000, .has_rpo = true, .rpo_ms = 0};
    in.objectives = &both;
    expect(&in, FL_VERDICT_ABORTED, "RPO was not measured (no data probe result), objective 0s");
    in.rpo_measured = true;
    in.rpo_ms = 1200;
    expect(&in, FL_VERDICT_FAIL, "lost 1.20s of acknowledged writes, objective RPO 0s");
    in.rpo_ms = 0;
    expect(&in, FL_VERDICT_PASS,
           "recovered in 1.42s (±0.10s), objective 1m30s; RPO 0.00s, "
           "objective 0s");
    /* The RTO is checked before the RPO. */
    m = recovered(95000, 100, false);
    in.rpo_ms = 1200;
    expect(&in, FL_VERDICT_FAIL, "recovered in 95.00s (±0.10s), objective 1m30s");
}

static void test_objective_format(void **state)
{
    (void)state;
    struct fl_measure_objectives o = {.has_rto = true};
    struct fl_measurement m = recovered(1, 1, false);
    struct fl_verdict_input in = {.objectives = &o, .recovery = &m, .steady_state_returned = true};
    static const struct {
        uint64_t ms;
        const char *reason;
    } cases[] = {
        {500, "recovered in 0.01s (±0.01s), objective 500ms"},
        {1500, "recovered in 0.01s (±0.01s), objective 1.5s"},
        {1250, "recovered in 0.01s (±0.01s), objective 1.25s"},
        {60000, "recovered in 0.01s (±0.01s), objective 1m"},
        {3600000, "recovered in 0.01s (±0.01s), objective 1h"},
        {5405001, "recovered in 0.01s (±0.01s), objective 1h30m5.001s"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        o.rto_ms = cases[i].ms;
        expect(&in, FL_VERDICT_PASS, cases[i].reason);
    }
    /* The measured value is rounded up to 10ms, never down. */
    o.rto_ms = 0;
    m = recovered(0, 0, false);
    expect(&in, FL_VERDICT_PASS, "recovered in 0.00s (±0.00s), objective 0s");
}

static void test_verdict_errors(void **state)
{
    (void)state;
    struct fl_measurement m = recovered(1420, 100, false);
    struct fl_verdict_input in = {.recovery = &m, .steady_state_returned = true};
    enum fl_verdict v = FL_VERDICT_ABORTED;
    char buf[8] = "xxxxxxx";

    assert_int_equal(fl_measure_verdict(&in, &v, buf, sizeof(buf)), -ENOSPC);
    assert_int_equal(v, FL_VERDICT_ABORTED);
    assert_string_equal(buf, "xxxxxxx");
    assert_int_equal(fl_measure_verdict(NULL, &v, buf, sizeof(buf)), -EINVAL);
    assert_int_equal(fl_measure_verdict(&in, NULL, buf, sizeof(buf)), -EINVAL);
    assert_int_equal(fl_measure_verdict(&in, &v, NULL, 0), -EINVAL);
    in.recovery = NULL;
    assert_int_equal(fl_measure_verdict(&in, &v, buf, sizeof(buf)), -EINVAL);

    /* A very long abort reason is shortened, not refused. */
    char longreason[1000];
    memset(longreason, 'x', sizeof(longreason) - 1);
    longreason[sizeof(longreason) - 1] = '\0';
    in.recovery = &m;
    in.abort_reason = longreason;
    char big[FL_MEASURE_REASON_MAX];
    assert_int_equal(fl_measure_verdict(&in, &v, big, sizeof(big)), 0);
    assert_int_equal(v, FL_VERDICT_ABORTED);
    assert_int_equal(strlen(big), strlen("aborted: ") + 200);
}

static void test_exit_codes(void **state)
{
    (void)state;
    assert_int_equal(fl_measure_exit_code(FL_VERDICT_PASS), 0);
    assert_int_equal(fl_measure_exit_code(FL_VERDICT_FAIL), 1);
    assert_int_equal(fl_measure_exit_code(FL_VERDICT_ABORTED), 2);
    assert_int_equal(fl_measure_exit_code((enum fl_verdict)42), 2);
    assert_string_equal(fl_measure_verdict_name(FL_VERDICT_PASS), "pass");
    assert_string_equal(fl_measure_verdict_name(FL_VERDICT_FAIL), "fail");
    assert_string_equal(fl_measure_verdict_name(FL_VERDICT_ABORTED), "aborted");
    assert_string_equal(fl_measure_verdict_name((enum fl_verdict)42), "error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flapping_then_stable),
        cmocka_unit_test(test_never_recovers),
        cmocka_unit_test(test_recovers_before_revert),
        cmocka_unit_test(test_recovers_only_after_revert),
        cmocka_unit_test(test_no_impact),
        cmocka_unit_test(test_no_results_after_injection),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_impact_without_detection),
        cmocka_unit_test(test_failures_before_injection_ignored),
        cmocka_unit_test(test_rise_and_fall_one),
        cmocka_unit_test(test_resolution_from_last_failure),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_combine),
        cmocka_unit_test(test_verdicts),
        cmocka_unit_test(test_objective_format),
        cmocka_unit_test(test_verdict_errors),
        cmocka_unit_test(test_exit_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
