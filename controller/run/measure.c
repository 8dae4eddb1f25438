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
 *   - LATE results (the controller stalled during the attempt, probe.c) are
 *     skipped: they neither fail nor succeed, break no run of either, and
 *     are counted in n_late. A recovery bracket that spans them is wider by
 *     as much: the resolution says honestly what the controller could see.
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
 *   3. no impact and impact: required (the default with an RTO)  FAIL
 *   3b. impacted and did not recover                             FAIL
 *   4. RTO objective and recovery_time_ms > rto_ms               FAIL
 *   5. RPO objective and not measured                            ABORTED
 *      RPO objective and observed rpo_ms > objective             FAIL
 *   6. the steady state did not return                           FAIL
 *   7. otherwise                  PASS, or PASS_NO_IMPACT when nothing failed
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

void fl_measure_stream_init(struct fl_measure_stream *s, unsigned rise, unsigned fall)
{
    memset(s, 0, sizeof(*s));
    s->rise = rise;
    s->fall = fall;
    s->healthy = true;
    if (rise == 0 || fall == 0)
        s->error = -EINVAL;
}

void fl_measure_stream_inject(struct fl_measure_stream *s, uint64_t injected_at)
{
    if (s->injected)
        return;
    s->injected = true;
    s->injected_at = injected_at;
}

int fl_measure_stream_feed(struct fl_measure_stream *s, const struct fl_probe_result *r)
{
    if (s->error != 0)
        return s->error;
    if (s->fed > 0 && r->started_ms < s->prev_started)
        return s->error = -EINVAL;
    if (r->latency_ms > UINT64_MAX - r->started_ms)
        return s->error = -ERANGE;
    s->fed++;
    s->prev_started = r->started_ms;
    struct fl_measurement *m = &s->m;
    if (r->outcome == FL_OUTCOME_LATE) {
        /* the controller's failure, not the service's: neither a failure
         * nor a success; the bracket around it widens instead */
        if (s->injected && r->started_ms + r->latency_ms >= s->injected_at)
            m->n_late++;
        return 0;
    }
    uint64_t known = r->started_ms + r->latency_ms;
    if (known > s->t)
        s->t = known;
    uint64_t t = s->t;

    s->trailing_ok = r->ok ? s->trailing_ok + 1 : 0;
    if (!s->injected || t < s->injected_at)
        return 0;

    m->n_results++;
    if (!r->ok) {
        m->n_failures++;
        if (!m->impacted) {
            m->impacted = true;
            m->impact_at = t;
        }
        s->last_failure = r->started_ms;
        s->ok_run = 0;
        if (s->fail_run < s->fall)
            s->fail_run++;
        if (s->fail_run == s->fall && !m->detected) {
            m->detected = true;
            m->detected_at = t;
        }
        if (s->healthy && s->fail_run == s->fall) {
            s->healthy = false;
            s->unhealthy_since = t;
        }
    } else {
        s->fail_run = 0;
        if (s->ok_run == 0)
            s->ok_run_start = t;
        if (s->ok_run < s->rise)
            s->ok_run++;
        if (s->ok_run == s->rise && m->impacted && !m->recovered) {
            /* ok_run restarts at every failure, so this run began after
             * the impact and last_failure is the failure just before it. */
            m->recovered = true;
            m->recovered_at = s->ok_run_start;
            m->last_failure_at = s->last_failure;
        }
        if (!s->healthy && s->ok_run == s->rise) {
            s->healthy = true;
            if (t - s->unhealthy_since > m->longest_unhealthy_ms)
                m->longest_unhealthy_ms = t - s->unhealthy_since;
        }
    }
    return 0;
}

int fl_measure_stream_result(const struct fl_measure_stream *s, uint64_t reverted_at,
                             uint64_t end_at, struct fl_measurement *out)
{
    if (s->error != 0)
        return s->error;
    if (!s->injected || s->injected_at > end_at)
        return -EINVAL;
    if (reverted_at != 0 && reverted_at < s->injected_at)
        return -EINVAL;
    struct fl_measurement m = s->m;
    m.injected_at = s->injected_at;
    m.reverted_at = reverted_at;
    if (!s->healthy && end_at > s->unhealthy_since &&
        end_at - s->unhealthy_since > m.longest_unhealthy_ms)
        m.longest_unhealthy_ms = end_at - s->unhealthy_since;
    m.unobserved = m.n_results == 0;
    m.no_impact = !m.unobserved && !m.impacted;
    if (m.recovered) {
        m.recovery_time_ms = m.recovered_at - m.injected_at;
        m.resolution_ms = m.recovered_at - m.last_failure_at;
        m.recovered_after_revert = m.reverted_at != 0 && m.recovered_at >= m.reverted_at;
    }
    m.healthy_at_end = s->trailing_ok >= s->rise;
    *out = m;
    return 0;
}

int fl_measure_probe(const struct fl_probe_result *results, size_t n, unsigned rise, unsigned fall,
                     const struct fl_measure_window *window, struct fl_measurement *out)
{
    if ((results == NULL && n > 0) || window == NULL || out == NULL || rise == 0 || fall == 0)
        return -EINVAL;
    if (window->injected_at > window->end_at)
        return -EINVAL;
    if (window->reverted_at != 0 && window->reverted_at < window->injected_at)
        return -EINVAL;
    struct fl_measure_stream s;
    fl_measure_stream_init(&s, rise, fall);
    fl_measure_stream_inject(&s, window->injected_at);
    uint64_t t = 0; /* the running maximum of outcome times, as the stream keeps it */
    for (size_t i = 0; i < n; i++) {
        const struct fl_probe_result *r = &results[i];
        if (i > 0 && r->started_ms < results[i - 1].started_ms)
            return -EINVAL;
        if (r->latency_ms > UINT64_MAX - r->started_ms)
            return -ERANGE;
        uint64_t known = r->started_ms + r->latency_ms;
        if (r->outcome != FL_OUTCOME_LATE && known > t)
            t = known;
        /* not observed: never fed; the order of the rest is still checked */
        if ((r->outcome == FL_OUTCOME_LATE ? known : t) > window->end_at)
            continue;
        int rc = fl_measure_stream_feed(&s, r);
        if (rc < 0)
            return rc;
    }
    return fl_measure_stream_result(&s, window->reverted_at, window->end_at, out);
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
        c.n_late += m->n_late;
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
    } else if (m->no_impact && obj != NULL && obj->impact_required) {
        v = FL_VERDICT_FAIL;
        say(&s, "the fault had no visible effect on any probe: check the targets (impact: "
                "required; set impact: optional if the system masks this failure completely)");
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
        v = m->no_impact ? FL_VERDICT_PASS_NO_IMPACT : FL_VERDICT_PASS;
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
    case FL_VERDICT_PASS_NO_IMPACT:
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
    case FL_VERDICT_PASS_NO_IMPACT:
        return "pass_no_impact";
    }
    return "error";
}

const char *fl_measure_verdict_caps(enum fl_verdict verdict)
{
    switch (verdict) {
    case FL_VERDICT_PASS:
        return "PASS";
    case FL_VERDICT_FAIL:
        return "FAIL";
    case FL_VERDICT_ABORTED:
        return "ABORTED";
    case FL_VERDICT_PASS_NO_IMPACT:
        return "PASS (no impact)";
    }
    return "ERROR";
}
