/* A probe's timeline kept compact (issue 12 item 5): memory grows with what
 * changed, never with the number of attempts.
 *
 * Every attempt is counted and fed to the measurement as it arrives
 * (fl_measure_stream); what is kept is the health state changes and every
 * non-ok attempt, grouped in runs of consecutive attempts with the same
 * outcome (first and last time, count, first and last detail). A flapping
 * probe costs one run per flap; a steady one, nothing. The full record of
 * every attempt goes to attempts.jsonl as it happens (attemptlog.h), not to
 * memory. */
#ifndef FL_CONTROLLER_RUN_TIMELINE_H
#define FL_CONTROLLER_RUN_TIMELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "controller/probes/health.h"
#include "controller/probes/probe.h"
#include "controller/run/measure.h"

struct fl_probe_counts {
    uint64_t attempts, ok, failed, timeout, late;
};

/* Consecutive non-ok attempts with one outcome (FAILED, TIMEOUT or LATE). */
struct fl_attempt_run {
    uint64_t first_at_ms, last_at_ms; /* started_ms of the first and the last */
    uint64_t count;
    enum fl_probe_outcome outcome;
    char detail[sizeof(((struct fl_probe_result *)0)->detail)];      /* the first's */
    char last_detail[sizeof(((struct fl_probe_result *)0)->detail)]; /* the last's */
};

struct fl_health_change {
    uint64_t at_ms; /* when the result that changed it was known */
    enum fl_health_state state;
};

struct fl_timeline {
    struct fl_probe_counts counts;
    struct fl_health health; /* live, as load balancers count: LATE is skipped */
    struct fl_measure_stream measure;
    struct fl_health_change *changes;
    size_t n_changes, cap_changes;
    struct fl_attempt_run *runs;
    size_t n_runs, cap_runs;
    bool open_run; /* runs[n_runs - 1] may still grow */
};

void fl_timeline_init(struct fl_timeline *tl, unsigned rise, unsigned fall);
void fl_timeline_free(struct fl_timeline *tl);

/* Adds one attempt. *changed (may be NULL) says whether the health state
 * changed. Returns 0, -ENOMEM (the attempt is counted, its run or change
 * may be missing: the caller must abort loudly), or the measurement's error
 * (an unordered timeline: a bug). */
int fl_timeline_add(struct fl_timeline *tl, const struct fl_probe_result *r, bool *changed);

/* From now on results count as after injection (fl_measure_stream_inject). */
void fl_timeline_inject(struct fl_timeline *tl, uint64_t injected_at_ms);

/* The measurement of what was added, for this window's reverted_at and end_at. */
int fl_timeline_measure(const struct fl_timeline *tl, uint64_t reverted_at, uint64_t end_at,
                        struct fl_measurement *out);

#endif
