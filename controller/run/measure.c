/* Measurement of impact and recovery from a recorded probe timeline.
 *
 * Definitions (docs/design.md section 6), for one probe with its rise and fall:
 *
 *   time of a result   t = started_ms + latency_ms: when its outcome was known,
 *                      not when the attempt began. A timeout's time is the end
 *                      of its timeout. Results are counted in timeline order
 *                      (attempt order); if attempts overlap (timeout longer
 *                      than interval) an outcome can be known before an earlier
 *                      attempt's, so t is taken as the running maximum: a result
 *                      counts once it and every earlier attempt are known. With
 *                      timeout <= interval this is exactly started + latency.
 *   after injection    t >= injected_at. Only those results count below;
 *                      results with t > end_at were not observed and are
 *                      ignored everywhere.
 *   impact_at          t of the first failure after injection.
 *   detected_at        t of the fall-th consecutive failure after injection:
 *                      the probe turned unhealthy. None if failures never
 *                      reached fall in a row.
 *   recovered_at       t of the first success of the first run of rise
 *                      consecutive successes after impact. The run must be
 *                      complete (rise successes observed) to count.
 *   last_failure_at    when the failure just before that run was *sent*
 *                      (started_ms): the last moment the system is known to
 *                      have been broken. A request that timed out was refused
 *                      service when it was sent, not when we gave up on it.
 *   recovery_time_ms   recovered_at - injected_at (the observed RTO). It is an
 *                      upper bound: the system recovered somewhere in
 *                      (last_failure_at, recovered_at], so
 *   resolution_ms      recovered_at - last_failure_at is how precise it is.
 *                      Objectives are checked against the upper bound.
 *   no_impact          there were results after injection and none failed:
 *                      recovery time 0, a pass.
 *   recovered_after_revert  recovered_at >= reverted_at (reverted_at != 0): the
 *                      system did not heal while the fault was active.
 *   unhealthy stretch  the probe's health as a load balancer counts it,
 *                      starting healthy at injection: unhealthy from the fall-th
 *                      consecutive failure until the rise-th consecutive
 *                      success, or until end_at if it never got there. The
 *                      longest such stretch is kept (abort_when unhealthy_for;
 *                      call with end_at = now while observing).
 *   healthy_at_end     the last rise observed results (before or after
 *                      injection) all succeeded: the steady state returned.
 *
 * Edge cases:
 *   - Failures before injection are ignored for impact, detection, recovery
 *     and the unhealthy stretch: counting starts afresh at injection, so a
 *     fall-run straddling injection needs fall failures after it.
 *   - A timeline that starts unhealthy (still failing at injection) shows
 *     impact at the first failure after injection; the measurement cannot tell
 *     that the fault did not cause it. `faultline run` refuses to inject when
 *     the steady state is not healthy, so this only happens with hand-made or
 *     outside timelines.
 *   - A probe with no result after injection is `unobserved`: neither impacted
 *     nor no_impact. The verdict for it is ABORTED (nothing was measured),
 *     never a pass.
 *   - Flapping: a run of successes shorter than rise, between failures, is not
 *     a recovery; the recovery is the first run that reaches rise, and
 *     last_failure_at is the failure that ended the last short run.
 *   - Timeouts are failures like any other; only their time (started +
 *     latency) differs.
 *   - Impact without detection (fewer than fall failures in a row) still
 *     needs a rise-long run of successes to count as recovered.
 *
 * Combined (several recovery probes): impact and detection are the earliest
 * of any probe; the system recovered only when every impacted probe did, at
 * the latest of their recoveries. Each probe k recovered in (lf_k, rec_k], so
 * the last of them recovered in (max lf, max rec]: resolution is
 * max rec - max lf.
 *
 * Verdict, checks in this order (the first that applies decides):
 *   1. aborted (an abort reason was given)                       ABORTED
 *   2. unobserved: no recovery probe result after injection      ABORTED
 *   3. impacted and did not recover                              FAIL
 *   4. RTO objective and recovery_time_ms > rto_ms               FAIL
 *   5. RPO objective and not measured                            ABORTED
 *      RPO objective and observed rpo_ms > objective             FAIL
 *   6. the steady state did not return                           FAIL
 *   7. otherwise                                                 PASS
 * Recovering only after revert is reported in the reason ("recovered only
 * after revert in ..."), and fails only through the RTO objective: whether the
 * fault outlasts the RTO is the experiment's choice.
 *
 * Measured times in reasons are seconds with two decimals, rounded up to the
 * next 10ms so that a missed objective never prints as equal to it ("5.01s",
 * not "5.00s", for 5001ms). Objectives print as a user writes them ("5s",
 * "500ms", "1.5s", "1m30s"). */
#include "controller/run/measure.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int fl_measure_probe(const struct fl_probe_result *results, size_t n, unsigned rise, unsigned fall,
                     const struct fl_measure_window *window, struct fl_measurement *out)
{
    if ((results == NULL && n > 0) || window == NULL || out == NULL || rise == 0 || fall == 0)
        return -EINVAL;
    if (window->injected_at > window->end_at)
        return -EINVAL;
    if (window->reverted_at != 0 && window->reverted_at < window->injected_at)
        return -EINVAL;

    struct fl_measurement m;
    memset(&m, 0, sizeof(m));
    m.injected_at = window->injected_at;
    m.reverted_at = window->reverted_at;

    uint64_t t = 0;         /* running maximum of outcome times */
    size_t trailing_ok = 0; /* observed successes in a row, whole timeline */
    unsigned fail_run = 0;  /* after injection */
    unsigned ok_run = 0;    /* after injection */
    uint64_t ok_run_start = 0;
    uint64_t last_failure = 0;
    bool healthy = true; /* load-balancer state, healthy at injection */
    uint64_t unhealthy_since = 0;

    for (size_t i = 0; i < n; i++) {
        const struct fl_probe_result *r = &results[i];
        if (i > 0 && r->started_ms < results[i - 1].started_ms)
            return -EINVAL;
        if (r->latency_ms > UINT64_MAX - r->started_ms)
            return -ERANGE;
        uint64_t known = r->started_ms + r->latency_ms;
        if (known > t)
            t = known;
        if (t > window->end_at)
            continue; /* not observed; keep checking the order of the rest */

        trailing_ok = r->ok ? trailing_ok + 1 : 0;
        if (t < window->injected_at)
            continue;

        m.n_results++;
        if (!r->ok) {
            m.n_failures++;
            if (!m.impacted) {
                m.impacted = true;
                m.impact_at = t;
            }
            last_failure = r->started_ms;
            ok_run = 0;
            if (fail_run < fall)
                fail_run++;
            if (fail_run == fall && !m.detected) {
                m.detected = true;
                m.detected_at = t;
            }
            if (healthy && fail_run == fall) {
                healthy = false;
                unhealthy_since = t;
            }
        } else {
            fail_run = 0;
            if (ok_run == 0)
                ok_run_start = t;
            if (ok_run < rise)
                ok_run++;
            if (ok_run == rise && m.impacted && !m.recovered) {
                /* ok_run restarts at every failure, so this run began after
                 * the impact and last_failure is the failure just before it. */
                m.recovered = true;
                m.recovered_at = ok_run_start;
                m.last_failure_at = last_failure;
            }
            if (!healthy && ok_run == rise) {
                healthy = true;
                if (t - unhealthy_since > m.longest_unhealthy_ms)
                    m.longest_unhealthy_ms = t - unhealthy_since;
            }
        }
    }
    if (!healthy && window->end_at - unhealthy_since > m.longest_unhealthy_ms)
        m.longest_unhealthy_ms = window->end_at - unhealthy_since;

    m.unobserved = m.n_results == 0;
    m.no_impact = !m.unobserved && !m.impacted;
    if (m.recovered) {
        m.recovery_time_ms = m.recovered_at - m.injected_at;
        m.resolution_ms = m.recovered_at - m.last_failure_at;
        m.recovered_after_revert = m.reverted_at != 0 && m.recovered_at >= m.reverted_at;
    }
    m.healthy_at_end = trailing_ok >= rise;

    *out = m;
    return 0;
}

int fl_measure_combine(const struct fl_measurement *ms, size_t n, struct fl_measurement *out)
{
    if (ms == NULL || n == 0 || out == NULL)
        return -EINVAL;
    for (size_t i = 1; i < n; i++) {
        if (ms[i].injected_at != ms[0].injected_at || ms[i].reverted_at != ms[0].reverted_at)
            return -EINVAL;
    }

    struct fl_measurement c;
    memset(&c, 0, sizeof(c));
    c.injected_at = ms[0].injected_at;
    c.reverted_at = ms[0].reverted_at;
    c.no_impact = true;
    c.healthy_at_end = true;
    bool all_impacted_recovered = true;
    bool any_after_revert = false;

    for (size_t i = 0; i < n; i++) {
        const struct fl_measurement *m = &ms[i];
        c.n_results += m->n_results;
        c.n_failures += m->n_failures;
        if (m->longest_unhealthy_ms > c.longest_unhealthy_ms)
            c.longest_unhealthy_ms = m->longest_unhealthy_ms;
        c.healthy_at_end = c.healthy_at_end && m->healthy_at_end;
        c.unobserved = c.unobserved || m->unobserved;
        c.no_impact = c.no_impact && m->no_impact;
        if (m->detected && (!c.detected || m->detected_at < c.detected_at)) {
            c.detected = true;
            c.detected_at = m->detected_at;
        }
        if (!m->impacted)
            continue;
        if (!c.impacted || m->impact_at < c.impact_at) {
            c.impacted = true;
            c.impact_at = m->impact_at;
        }
        if (!m->recovered) {
            all_impacted_recovered = false;
            continue;
        }
        any_after_revert = any_after_revert || m->recovered_after_revert;
        if (m->recovered_at > c.recovered_at)
            c.recovered_at = m->recovered_at;
        if (m->last_failure_at > c.last_failure_at)
            c.last_failure_at = m->last_failure_at;
    }

    c.recovered = c.impacted && all_impacted_recovered;
    if (c.recovered) {
        c.recovery_time_ms = c.recovered_at - c.injected_at;
        c.resolution_ms = c.recovered_at - c.last_failure_at;
        /* With every probe recovered, "any recovered after revert" and
         * "the combined recovery is at or after revert" are the same. */
        c.recovered_after_revert = any_after_revert;
    } else {
        c.recovered_at = 0;
        c.last_failure_at = 0;
    }

    *out = c;
    return 0;
}

/* A sentence being built; overflow is remembered, not reported per call. */
struct sentence {
    char buf[FL_MEASURE_REASON_MAX];
    size_t len;
    bool overflow;
};

__attribute__((format(printf, 2, 3))) static void say(struct sentence *s, const char *fmt, ...)
{
    if (s->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(s->buf + s->len, sizeof(s->buf) - s->len, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= sizeof(s->buf) - s->len) {
        s->overflow = true;
        return;
    }
    s->len += (size_t)k;
}

/* A measured time: seconds, two decimals, rounded up to 10ms ("1.42s"). */
static void say_measured(struct sentence *s, uint64_t ms)
{
    uint64_t cs = ms / 10 + (ms % 10 != 0);
    say(s, "%llu.%02llus", (unsigned long long)(cs / 100), (unsigned long long)(cs % 100));
}

/* An objective as a user writes it: "0s", "500ms", "5s", "1.5s", "1m30s", "2h". */
static void say_objective(struct sentence *s, uint64_t ms)
{
    if (ms < 1000) {
        if (ms == 0)
            say(s, "0s");
        else
            say(s, "%llums", (unsigned long long)ms);
        return;
    }
    uint64_t h = ms / 3600000, m = ms / 60000 % 60, sec = ms / 1000 % 60, frac = ms % 1000;
    if (h > 0)
        say(s, "%lluh", (unsigned long long)h);
    if (m > 0)
        say(s, "%llum", (unsigned long long)m);
    if (sec > 0 || frac > 0) {
        say(s, "%llu", (unsigned long long)sec);
        if (frac > 0) {
            char digits[4];
            snprintf(digits, sizeof(digits), "%03llu", (unsigned long long)frac);
            size_t nd = 3;
            while (digits[nd - 1] == '0')
                nd--;
            say(s, ".%.*s", (int)nd, digits);
        }
        say(s, "s");
    }
}

/* "recovered in 1.42s (±0.10s)" or "recovered only after revert in 31.20s",
 * then ", objective 5s" when there is an RTO objective. */
static void say_recovery(struct sentence *s, const struct fl_measurement *m,
                         const struct fl_measure_objectives *obj)
{
    if (m->recovered_after_revert) {
        say(s, "recovered only after revert in ");
        say_measured(s, m->recovery_time_ms);
    } else {
        say(s, "recovered in ");
        say_measured(s, m->recovery_time_ms);
        say(s, " (±");
        say_measured(s, m->resolution_ms);
        say(s, ")");
    }
    if (obj != NULL && obj->has_rto) {
        say(s, ", objective ");
        say_objective(s, obj->rto_ms);
    }
}

static void say_outcome(struct sentence *s, const struct fl_measurement *m,
                        const struct fl_measure_objectives *obj)
{
    if (m->recovered)
        say_recovery(s, m, obj);
    else
        say(s, "no impact");
}

/* Longest abort reason quoted, so the sentence fits FL_MEASURE_REASON_MAX. */
#define ABORT_REASON_QUOTED 200

int fl_measure_verdict(const struct fl_verdict_input *in, enum fl_verdict *verdict, char *reason,
                       size_t len)
{
    if (in == NULL || in->recovery == NULL || verdict == NULL || reason == NULL)
        return -EINVAL;
    const struct fl_measurement *m = in->recovery;
    const struct fl_measure_objectives *obj = in->objectives;
    struct sentence s = {.len = 0, .overflow = false};
    enum fl_verdict v;

    if (in->abort_reason != NULL) {
        v = FL_VERDICT_ABORTED;
        say(&s, "aborted: %.*s", ABORT_REASON_QUOTED, in->abort_reason);
    } else if (m->unobserved) {
        v = FL_VERDICT_ABORTED;
        say(&s, "no recovery probe result after injection, nothing was measured: check that "
                "the probes ran");
    } else if (m->impacted && !m->recovered) {
        v = FL_VERDICT_FAIL;
        say(&s, "did not recover within the recovery timeout");
    } else if (obj != NULL && obj->has_rto && m->recovered &&
               (m->recovery_time_ms > obj->rto_ms || m->recovered_after_revert)) {
        /* an RTO is a claim that the system heals while the fault lasts:
         * healing only once the fault was taken away does not meet it */
        v = FL_VERDICT_FAIL;
        say_recovery(&s, m, obj);
        if (m->recovered_after_revert)
            say(&s, ": it did not heal while the fault was active");
    } else if (obj != NULL && obj->has_rpo && !in->rpo_measured) {
        v = FL_VERDICT_ABORTED;
        say(&s, "RPO was not measured (no data probe result), objective ");
        say_objective(&s, obj->rpo_ms);
    } else if (obj != NULL && obj->has_rpo && in->rpo_ms > obj->rpo_ms) {
        v = FL_VERDICT_FAIL;
        say(&s, "lost ");
        say_measured(&s, in->rpo_ms);
        say(&s, " of acknowledged writes, objective RPO ");
        say_objective(&s, obj->rpo_ms);
    } else if (!in->steady_state_returned) {
        v = FL_VERDICT_FAIL;
        say_outcome(&s, m, obj);
        say(&s, ", but the steady state did not return by the end of the run");
    } else {
        v = FL_VERDICT_PASS;
        say_outcome(&s, m, obj);
        if (obj != NULL && obj->has_rpo) {
            say(&s, "; RPO ");
            say_measured(&s, in->rpo_ms);
            say(&s, ", objective ");
            say_objective(&s, obj->rpo_ms);
        }
    }

    if (s.overflow || s.len >= len)
        return -ENOSPC;
    memcpy(reason, s.buf, s.len + 1);
    *verdict = v;
    return 0;
}

int fl_measure_exit_code(enum fl_verdict verdict)
{
    switch (verdict) {
    case FL_VERDICT_PASS:
        return 0;
    case FL_VERDICT_FAIL:
        return 1;
    case FL_VERDICT_ABORTED:
        return 2;
    }
    return 2;
}

const char *fl_measure_verdict_name(enum fl_verdict verdict)
{
    switch (verdict) {
    case FL_VERDICT_PASS:
        return "pass";
    case FL_VERDICT_FAIL:
        return "fail";
    case FL_VERDICT_ABORTED:
        return "aborted";
    }
    return "error";
}
