/* Measurement: what a recorded probe timeline says about impact and recovery
 * (docs/design.md section 6), and the verdict that follows from it.
 *
 * Everything here is a pure function of its arguments: no I/O, no clocks, no
 * globals. `faultline run` calls it on the timelines it recorded (and, with
 * end_at = now, while observing, for abort_when "unhealthy_for"); reports call
 * it again on run.json's timelines; tests call it on hand-made ones. The
 * definitions, and every edge case, are in the comment at the top of
 * measure.c. */
#ifndef FL_CONTROLLER_MEASURE_H
#define FL_CONTROLLER_MEASURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "controller/probes/probe.h"

/* A verdict's reason is one sentence of at most this many bytes with its NUL. */
#define FL_MEASURE_REASON_MAX 256

/* When the experiment's faults were active and how long it was watched, all in
 * ms since the epoch (the clock of fl_probe_result.started_ms). */
struct fl_measure_window {
    uint64_t injected_at; /* the (first) fault was injected */
    uint64_t reverted_at; /* the last fault was reverted; 0: never reverted */
    uint64_t end_at;      /* end of observation: later results are ignored */
};

/* What one probe's timeline (or, combined, several probes') says. Times are
 * ms since the epoch; a time is meaningful only when its flag is set. */
struct fl_measurement {
    uint64_t injected_at; /* copied from the window */
    uint64_t reverted_at; /* copied from the window; 0: never reverted */

    bool impacted;             /* a result failed at or after injection */
    uint64_t impact_at;        /* the first such failure */
    bool detected;             /* failures reached `fall` in a row after injection */
    uint64_t detected_at;      /* the fall-th of them: the probe turned unhealthy */
    bool recovered;            /* a `rise`-long run of successes followed the impact */
    uint64_t recovered_at;     /* the first success of the first such run */
    uint64_t last_failure_at;  /* the failure just before that run: when it was sent */
    uint64_t recovery_time_ms; /* recovered_at - injected_at; 0 with no_impact */
    uint64_t resolution_ms;    /* recovered_at - last_failure_at; 0 with no_impact */

    bool no_impact;              /* results after injection, none failed: a pass */
    bool recovered_after_revert; /* recovered, but only at or after reverted_at */
    bool unobserved;             /* no result after injection: nothing measured */

    size_t n_results;              /* results at or after injection (up to end_at) */
    size_t n_failures;             /* of those, failures (timeouts included) */
    size_t n_late;                 /* LATE results in the same span (not in n_results) */
    uint64_t longest_unhealthy_ms; /* longest unhealthy stretch after injection */
    bool healthy_at_end;           /* the last `rise` results all succeeded */
};

/* Measures one probe. results[0..n) is its timeline, ordered by started_ms
 * (ties allowed); rise and fall are the probe's (both >= 1). Returns 0 with
 * *out set; -EINVAL for a NULL argument, rise or fall 0, an unordered
 * timeline, or a window that is not injected_at <= end_at and (reverted_at 0
 * or injected_at <= reverted_at); -ERANGE when started_ms + latency_ms
 * overflows. *out is written only on success. */
int fl_measure_probe(const struct fl_probe_result *results, size_t n, unsigned rise, unsigned fall,
                     const struct fl_measure_window *window, struct fl_measurement *out);

/* The same measurement, fed one result at a time as a run produces them, so
 * that no timeline has to be kept (issue 12 item 5): init, then feed every
 * result in timeline order, calling inject once the fault is injected
 * (results fed before it count as before injection, whatever their time);
 * result may be called at any point, as often as wanted, and gives what
 * fl_measure_probe would give for the results fed so far and this window.
 * feed returns 0, or -EINVAL (unordered) / -ERANGE as fl_measure_probe does,
 * and then keeps failing; so does result. */
struct fl_measure_stream {
    unsigned rise, fall;
    bool injected;
    uint64_t injected_at;
    size_t fed;
    uint64_t prev_started;
    uint64_t t; /* running maximum of outcome times */
    size_t trailing_ok;
    unsigned fail_run, ok_run;
    uint64_t ok_run_start, last_failure;
    bool healthy;
    uint64_t unhealthy_since;
    struct fl_measurement m;
    int error;
};

void fl_measure_stream_init(struct fl_measure_stream *s, unsigned rise, unsigned fall);
void fl_measure_stream_inject(struct fl_measure_stream *s, uint64_t injected_at);
int fl_measure_stream_feed(struct fl_measure_stream *s, const struct fl_probe_result *r);
int fl_measure_stream_result(const struct fl_measure_stream *s, uint64_t reverted_at,
                             uint64_t end_at, struct fl_measurement *out);

/* Combines the measurements of an experiment's recovery probes (n >= 1, all
 * from the same window): impact and detection are the earliest of any;
 * recovery is the latest of all and happened only if every impacted probe
 * recovered; no_impact only if no probe was impacted; recovered_after_revert
 * and unobserved if any probe's was; healthy_at_end if every probe's was.
 * Returns 0 with *out set, or -EINVAL (NULL, n 0, different windows). */
int fl_measure_combine(const struct fl_measurement *m, size_t n, struct fl_measurement *out);

/* The experiment's objectives (the same fields as struct fl_objectives in
 * controller/experiment.h, which this file cannot include: that header needs
 * the generated protobuf header). */
struct fl_measure_objectives {
    bool has_rto;
    uint64_t rto_ms;
    bool has_rpo;
    uint64_t rpo_ms;
    bool impact_required; /* no impact FAILs; else it is PASS_NO_IMPACT */
};

enum fl_verdict {
    FL_VERDICT_PASS,
    FL_VERDICT_FAIL,
    FL_VERDICT_ABORTED,
    /* every objective held, but the faults had no visible effect on any
     * probe (impact: optional): a pass, counted on its own */
    FL_VERDICT_PASS_NO_IMPACT,
};

struct fl_verdict_input {
    /* NULL: no objectives. */
    const struct fl_measure_objectives *objectives;
    /* The recovery probes' measurements, combined (fl_measure_combine). */
    const struct fl_measurement *recovery;
    /* A data probe ran and read its records back; then rpo_ms is the observed RPO. */
    bool rpo_measured;
    uint64_t rpo_ms;
    /* The steady-state probes were healthy at the end (their healthy_at_end). */
    bool steady_state_returned;
    /* NULL: not aborted; else why, e.g. "probe frontend unhealthy for 20s". */
    const char *abort_reason;
};

/* Decides PASS / FAIL / ABORTED (docs/design.md section 6) and writes one sentence
 * a person can act on into reason[len], e.g. "recovered in 1.42s (±0.10s),
 * objective 5s". The order of the checks is in measure.c. Returns 0 with
 * *verdict and reason set; -EINVAL (NULL in, in->recovery, verdict or reason);
 * -ENOSPC when reason is too small (FL_MEASURE_REASON_MAX always suffices).
 * Nothing is written on failure. */
int fl_measure_verdict(const struct fl_verdict_input *in, enum fl_verdict *verdict, char *reason,
                       size_t len);

/* The exit code of `faultline run` for a verdict: pass (with or without
 * impact) 0, fail 1, aborted 2 (and 2 for a value that is not a verdict). */
int fl_measure_exit_code(enum fl_verdict verdict);

/* "pass", "fail", "aborted", "pass_no_impact" (run.json's spelling), or
 * "error" for a value that is not a verdict. */
const char *fl_measure_verdict_name(enum fl_verdict verdict);

/* "PASS", "FAIL", "ABORTED", "PASS (no impact)": the summary's spelling. */
const char *fl_measure_verdict_caps(enum fl_verdict verdict);

#endif
