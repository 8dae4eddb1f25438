/* A write probe's timeline rebuilt after the read-back (fl_rpo_result_of,
 * controller/run/rpo.c), measured as run.c measures it (issue 15; found by
 * rpo_pg_known on the PostgreSQL bed).
 *
 * The failover as the synchronous bed shows it: writes every 100 ms
 * (timeout 500 ms, rise 3); the primary dies at 300 ms; each write until the
 * standby is promoted is refused within 2 ms; three writes then succeed, and
 * the run ends with the third (its recovery probes healthy, no fault window
 * left open). The rebuilt failures used to carry the whole timeout as their
 * latency: the last ones were "known" 500 ms after they were sent, later
 * than the end of the run, and measure() ordered the three successes behind
 * them and dropped them: "did not recover", though the live lines had said
 * healthy again. With the runner's own latency the recovery is where it
 * was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "controller/run/measure.h"
#include "controller/probes/probe.h"
#include "controller/run/rpo.h"

#define T0 1000000u

static void test_refused_writes_keep_their_latency(void **state)
{
    (void)state;
    enum { N = 20 };
    struct fl_rpo_write w[N];
    enum fl_probe_outcome judged[N];
    uint64_t judged_latency[N];
    uint64_t seqs[N];
    size_t n_read = 0;
    memset(w, 0, sizeof(w));
    for (size_t i = 0; i < N; i++) {
        w[i].seq = i + 1;
        w[i].sent_ms = T0 + 100 * i;
        bool ok = i < 3 || i >= N - 3;
        w[i].acked = ok;
        w[i].ack_ms = ok ? w[i].sent_ms + 4 : 0;
        judged[i] = ok ? FL_OUTCOME_OK : FL_OUTCOME_FAILED;
        judged_latency[i] = ok ? 4 : 2;
        if (ok)
            seqs[n_read++] = w[i].seq;
    }
    uint64_t end = w[N - 1].ack_ms + 1; /* the run ends at the recovery */
    enum fl_rpo_fate fate[N];
    assert_int_equal(fl_rpo_classify(w, N, seqs, n_read, end, fate), 0);
    struct fl_probe_result res[N];
    for (size_t i = 0; i < N; i++)
        fl_rpo_result_of(&w[i], fate[i], (int)judged[i], (uint32_t)judged_latency[i], 500, &res[i]);
    struct fl_measure_window win = {.injected_at = T0 + 300, .reverted_at = 0, .end_at = end};
    struct fl_measurement m;
    assert_int_equal(fl_measure_probe(res, N, 3, 1, &win, &m), 0);
    assert_true(m.recovered);
    /* the first of the three successes, known 4 ms after it was sent */
    assert_int_equal(m.recovered_at, w[N - 3].ack_ms);

    assert_int_equal(res[5].latency_ms, 2);
    assert_int_equal(res[N - 1].latency_ms, 4);
    assert_true(res[N - 1].ok);

    /* never judged by the runner: the timeout, as before */
    struct fl_probe_result r;
    fl_rpo_result_of(&w[5], fate[5], FL_OUTCOME_TIMEOUT, FL_RPO_UNJUDGED, 500, &r);
    assert_int_equal(r.latency_ms, 500);
    assert_int_equal(r.outcome, FL_OUTCOME_TIMEOUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_writes_keep_their_latency),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
