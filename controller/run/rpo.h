/* Data loss: what a write probe's attempts and the records read back after
 * recovery say about acknowledged writes lost, and the RPO observed (issue 15,
 * docs/design.md "Write probes and RPO").
 *
 * A pure function of its arguments: no I/O, no clocks, no globals. The
 * definitions and every edge case are in the comment at the top of rpo.c. */
#ifndef FL_CONTROLLER_RUN_RPO_H
#define FL_CONTROLLER_RUN_RPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Lost seq ranges listed in a result; more are counted (n_ranges_total) and
 * the summary says how many were not listed. */
#define FL_RPO_MAX_RANGES 32
/* The summary sentence, with its NUL. */
#define FL_RPO_SUMMARY_MAX 256

/* One write attempt of a write probe. Times are ms since the epoch. */
struct fl_rpo_write {
    uint64_t seq;     /* unique within the run */
    uint64_t sent_ms; /* when the attempt was sent */
    bool acked;       /* the datastore acknowledged it (COMMIT, the reply, WAIT N) */
    uint64_t ack_ms;  /* when the acknowledgement arrived (acked only) */
};

struct fl_rpo_range {
    uint64_t first; /* seqs first..last, all lost */
    uint64_t last;
};

struct fl_rpo_result {
    size_t acknowledged;    /* acked with ack_ms <= end_at: the writes checked */
    size_t survived;        /* of those, read back */
    size_t lost;            /* acknowledged - survived */
    size_t in_doubt;        /* not acknowledged (by end_at), read back anyway */
    size_t unknown;         /* read back, but no attempt of this run has that seq */
    uint64_t rpo_ms;        /* 0 when nothing acknowledged was lost */
    uint64_t resolution_ms; /* one write interval (the argument) */
    /* No surviving write was acknowledged before the first lost one: rpo_ms
     * is measured from the first attempt sent, and the system went back
     * further than that (a lower bound). */
    bool rpo_lower_bound;
    uint64_t first_lost_seq; /* meaningful when lost > 0 */
    uint64_t last_lost_seq;  /* the lost write acknowledged last */
    uint64_t reference_seq;  /* the surviving write rpo_ms is measured from (not lower bound) */
    struct fl_rpo_range ranges[FL_RPO_MAX_RANGES]; /* lost seqs, ascending */
    size_t n_ranges;                               /* listed */
    size_t n_ranges_total;                         /* all, listed or not */
    char summary[FL_RPO_SUMMARY_MAX];
};

/* Measures one write probe's run. writes[0..n_writes) are its attempts in any
 * order; readback[0..n_read) the seqs read back for this run, in any order,
 * duplicates allowed (counted once). end_at: acknowledgements after it are
 * not counted as acknowledged. interval_ms: the probe's write interval, the
 * resolution. Returns 0 with *out set; -EINVAL for a NULL array with a
 * non-zero count, a NULL out, interval_ms 0, two attempts with the same seq,
 * or an acked attempt with ack_ms < sent_ms; -ENOMEM. *out is written only on
 * success. */
int fl_rpo_measure(const struct fl_rpo_write *writes, size_t n_writes, const uint64_t *readback,
                   size_t n_read, uint64_t end_at, uint64_t interval_ms, struct fl_rpo_result *out);

/* What became of each attempt, for the write probe's timeline: recovery
 * counts only writes that survived, so an attempt that was acknowledged, then
 * lost, turns into a failure ("acknowledged, then lost") before the recovery
 * is measured (issue 15). */
enum fl_rpo_fate {
    FL_RPO_NOT_ACKED, /* not acknowledged by end_at, not read back */
    FL_RPO_IN_DOUBT,  /* not acknowledged by end_at, read back anyway */
    FL_RPO_SURVIVED,  /* acknowledged and read back */
    FL_RPO_LOST,      /* acknowledged, then lost */
};

/* fate[i] for writes[i] (same order as given), by the definitions of
 * fl_rpo_measure. Returns 0; -EINVAL for NULL arrays with non-zero counts or
 * a NULL fate with n_writes > 0; -ENOMEM. fate is written only on success. */
int fl_rpo_classify(const struct fl_rpo_write *writes, size_t n_writes, const uint64_t *readback,
                    size_t n_read, uint64_t end_at, enum fl_rpo_fate *fate);

/* "not acknowledged", "in doubt", "survived", "acknowledged, then lost". */
const char *fl_rpo_fate_name(enum fl_rpo_fate fate);

/* The result the recovery counts for one write, given its fate and the
 * runner's judgement of it (outcome and latency; judged_ms
 * FL_RPO_UNJUDGED: the runner never reported it): OK only when it
 * survived and was judged OK; FAILED "acknowledged, then lost" when lost;
 * LATE stays late; otherwise the runner's outcome (OK turned FAILED). Its
 * time is the one the runner judged it at -- a write refused at once failed
 * then, not a timeout later -- or, unjudged, its acknowledgement (or
 * timeout_ms). */
#define FL_RPO_UNJUDGED UINT32_MAX
struct fl_probe_result;
void fl_rpo_result_of(const struct fl_rpo_write *w, enum fl_rpo_fate fate, int judged,
                      uint32_t judged_ms, uint64_t timeout_ms, struct fl_probe_result *out);

#endif
