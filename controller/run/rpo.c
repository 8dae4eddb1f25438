/* Data loss and the RPO observed (issue 15), from a write probe's attempts and
 * the seqs read back after recovery.
 *
 * Definitions:
 *
 *   acknowledged   attempts acknowledged by the datastore at or before end_at
 *                  (the end of the run). These are the writes checked.
 *   survived       acknowledged attempts whose seq was read back.
 *   lost           acknowledged - survived.
 *   in_doubt       attempts not acknowledged (timeout, connection lost, or
 *                  acknowledged only after end_at) whose seq was read back
 *                  anyway: the datastore kept a write it never confirmed.
 *                  Counted, not an error.
 *   unknown        seqs read back that no attempt of this run carries
 *                  (counted; a sign that something else writes this run id).
 *
 *   With nothing lost: rpo_ms = 0, "no acknowledged write lost (N checked)".
 *
 *   Otherwise, ordering acknowledged writes by (ack_ms, seq):
 *     F  the first lost write,
 *     L  the last lost write,
 *     S  the last surviving write ordered before F;
 *   rpo_ms = L.ack_ms - S.ack_ms: how far back in time the recovered system
 *   went, from the newest write it lost to the newest state it kept before
 *   losing. Writes are sent one interval apart, so the true point the system
 *   went back to lies between S and the next attempt after it: the
 *   resolution is one write interval.
 *   Without such an S (the very first acknowledged write was lost), rpo_ms is
 *   measured from the earliest attempt's sent_ms and rpo_lower_bound is set:
 *   the system went back to before the run began.
 *   Surviving writes acknowledged after F (a hole, then survivors, then more
 *   losses) do not shorten the RPO: L is still lost, and S is the last state
 *   kept without a hole before it.
 *
 *   Lost ranges: lost seqs, ascending, runs of consecutive integers. A seq
 *   that was never acknowledged between two lost ones splits the range (it was
 *   not lost: it was never promised). */
#include "controller/run/rpo.h"

#include "controller/probes/probe.h" /* struct fl_probe_result: types only */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_write_seq(const void *a, const void *b)
{
    const struct fl_rpo_write *x = a, *y = b;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* (ack_ms, seq) order. */
static bool ack_before(const struct fl_rpo_write *x, const struct fl_rpo_write *y)
{
    if (x->ack_ms != y->ack_ms)
        return x->ack_ms < y->ack_ms;
    return x->seq < y->seq;
}

static bool read_back(const uint64_t *sorted, size_t n, uint64_t seq)
{
    if (n == 0)
        return false; /* sorted is NULL: bsearch must not see it */
    return bsearch(&seq, sorted, n, sizeof(*sorted), cmp_u64) != NULL;
}

static void append(char *buf, size_t cap, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void append(char *buf, size_t cap, size_t *used, const char *fmt, ...)
{
    if (*used >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *used, cap - *used, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    *used += (size_t)n < cap - *used ? (size_t)n : cap - *used;
}

static void summarize(struct fl_rpo_result *r)
{
    size_t used = 0;
    char *s = r->summary;
    size_t cap = sizeof(r->summary);
    if (r->lost == 0) {
        append(s, cap, &used, "no acknowledged write lost (%zu checked)", r->acknowledged);
        return;
    }
    append(s, cap, &used, "%zu of %zu acknowledged writes lost (seq ", r->lost, r->acknowledged);
    /* a few ranges in the sentence; run.json lists them all */
    size_t shown = r->n_ranges < 4 ? r->n_ranges : 4;
    for (size_t i = 0; i < shown; i++) {
        const struct fl_rpo_range *g = &r->ranges[i];
        if (g->first == g->last)
            append(s, cap, &used, "%s%llu", i ? ", " : "", (unsigned long long)g->first);
        else
            append(s, cap, &used, "%s%llu-%llu", i ? ", " : "", (unsigned long long)g->first,
                   (unsigned long long)g->last);
    }
    if (r->n_ranges_total > shown)
        append(s, cap, &used, " and %zu more ranges", r->n_ranges_total - shown);
    append(s, cap, &used, "), RPO %s%llu.%02llus (±%llu.%02llus)",
           r->rpo_lower_bound ? "at least " : "", (unsigned long long)(r->rpo_ms / 1000),
           (unsigned long long)(r->rpo_ms % 1000 / 10),
           (unsigned long long)(r->resolution_ms / 1000),
           (unsigned long long)(r->resolution_ms % 1000 / 10));
}

int fl_rpo_measure(const struct fl_rpo_write *writes, size_t n_writes, const uint64_t *readback,
                   size_t n_read, uint64_t end_at, uint64_t interval_ms, struct fl_rpo_result *out)
{
    if ((writes == NULL && n_writes > 0) || (readback == NULL && n_read > 0) || out == NULL ||
        interval_ms == 0)
        return -EINVAL;
    for (size_t i = 0; i < n_writes; i++)
        if (writes[i].acked && writes[i].ack_ms < writes[i].sent_ms)
            return -EINVAL;

    struct fl_rpo_write *w = NULL;
    uint64_t *rb = NULL;
    if (n_writes > 0) {
        w = malloc(n_writes * sizeof(*w));
        if (w == NULL)
            return -ENOMEM;
        memcpy(w, writes, n_writes * sizeof(*w));
        qsort(w, n_writes, sizeof(*w), cmp_write_seq);
    }
    if (n_read > 0) {
        rb = malloc(n_read * sizeof(*rb));
        if (rb == NULL) {
            free(w);
            return -ENOMEM;
        }
        memcpy(rb, readback, n_read * sizeof(*rb));
        qsort(rb, n_read, sizeof(*rb), cmp_u64);
    }
    for (size_t i = 1; i < n_writes; i++) {
        if (w[i].seq == w[i - 1].seq) {
            free(w);
            free(rb);
            return -EINVAL;
        }
    }
    size_t n_rb = 0; /* deduplicated */
    for (size_t i = 0; i < n_read; i++)
        if (n_rb == 0 || rb[n_rb - 1] != rb[i])
            rb[n_rb++] = rb[i];

    struct fl_rpo_result r;
    memset(&r, 0, sizeof(r));
    r.resolution_ms = interval_ms;
    const struct fl_rpo_write *first_lost = NULL, *last_lost = NULL;
    uint64_t earliest_sent = UINT64_MAX;
    uint64_t prev_lost = 0;
    for (size_t i = 0; i < n_writes; i++) {
        const struct fl_rpo_write *x = &w[i];
        if (x->sent_ms < earliest_sent)
            earliest_sent = x->sent_ms;
        bool back = read_back(rb, n_rb, x->seq);
        bool acked = x->acked && x->ack_ms <= end_at;
        if (!acked) {
            r.in_doubt += back;
            continue;
        }
        r.acknowledged++;
        if (back) {
            r.survived++;
            continue;
        }
        r.lost++;
        if (first_lost == NULL || ack_before(x, first_lost))
            first_lost = x;
        if (last_lost == NULL || ack_before(last_lost, x))
            last_lost = x;
        /* w is in seq order: ranges come out ascending */
        if (r.n_ranges_total > 0 && prev_lost + 1 == x->seq) {
            if (r.n_ranges_total <= FL_RPO_MAX_RANGES)
                r.ranges[r.n_ranges_total - 1].last = x->seq;
        } else {
            if (r.n_ranges_total < FL_RPO_MAX_RANGES)
                r.ranges[r.n_ranges_total] = (struct fl_rpo_range){x->seq, x->seq};
            r.n_ranges_total++;
        }
        prev_lost = x->seq;
    }
    r.n_ranges = r.n_ranges_total < FL_RPO_MAX_RANGES ? r.n_ranges_total : FL_RPO_MAX_RANGES;
    /* seqs read back that no attempt carries */
    for (size_t i = 0, j = 0; i < n_rb; i++) {
        while (j < n_writes && w[j].seq < rb[i])
            j++;
        if (j == n_writes || w[j].seq != rb[i])
            r.unknown++;
    }
    if (r.lost > 0) {
        const struct fl_rpo_write *ref = NULL;
        for (size_t i = 0; i < n_writes; i++) {
            const struct fl_rpo_write *x = &w[i];
            if (!x->acked || x->ack_ms > end_at || !read_back(rb, n_rb, x->seq))
                continue;
            if (ack_before(x, first_lost) && (ref == NULL || ack_before(ref, x)))
                ref = x;
        }
        r.first_lost_seq = first_lost->seq;
        r.last_lost_seq = last_lost->seq;
        if (ref != NULL) {
            r.reference_seq = ref->seq;
            r.rpo_ms = last_lost->ack_ms - ref->ack_ms;
        } else {
            r.rpo_lower_bound = true;
            r.rpo_ms = last_lost->ack_ms - earliest_sent;
        }
    }
    summarize(&r);
    free(w);
    free(rb);
    *out = r;
    return 0;
}

int fl_rpo_classify(const struct fl_rpo_write *writes, size_t n_writes, const uint64_t *readback,
                    size_t n_read, uint64_t end_at, enum fl_rpo_fate *fate)
{
    if ((writes == NULL || fate == NULL) && n_writes > 0)
        return -EINVAL;
    if (readback == NULL && n_read > 0)
        return -EINVAL;
    uint64_t *rb = NULL;
    if (n_read > 0) {
        rb = malloc(n_read * sizeof(*rb));
        if (rb == NULL)
            return -ENOMEM;
        memcpy(rb, readback, n_read * sizeof(*rb));
        qsort(rb, n_read, sizeof(*rb), cmp_u64);
    }
    for (size_t i = 0; i < n_writes; i++) {
        bool back = read_back(rb, n_read, writes[i].seq);
        bool acked = writes[i].acked && writes[i].ack_ms <= end_at;
        if (acked)
            fate[i] = back ? FL_RPO_SURVIVED : FL_RPO_LOST;
        else
            fate[i] = back ? FL_RPO_IN_DOUBT : FL_RPO_NOT_ACKED;
    }
    free(rb);
    return 0;
}

const char *fl_rpo_fate_name(enum fl_rpo_fate fate)
{
    switch (fate) {
    case FL_RPO_NOT_ACKED:
        return "not acknowledged";
    case FL_RPO_IN_DOUBT:
        return "in doubt";
    case FL_RPO_SURVIVED:
        return "survived";
    case FL_RPO_LOST:
        return "acknowledged, then lost";
    }
    return "unknown";
}

void fl_rpo_result_of(const struct fl_rpo_write *w, enum fl_rpo_fate fate, int judged,
                      uint32_t judged_ms, uint64_t timeout_ms, struct fl_probe_result *x)
{
    memset(x, 0, sizeof(*x));
    x->started_ms = w->sent_ms;
    if (judged_ms != FL_RPO_UNJUDGED)
        x->latency_ms = judged_ms;
    else
        x->latency_ms = w->acked && w->ack_ms >= w->sent_ms ? w->ack_ms - w->sent_ms : timeout_ms;
    if (judged == FL_OUTCOME_LATE) {
        x->outcome = FL_OUTCOME_LATE;
    } else if (fate == FL_RPO_SURVIVED && judged == FL_OUTCOME_OK) {
        x->outcome = FL_OUTCOME_OK;
        x->ok = true;
    } else if (fate == FL_RPO_LOST) {
        x->outcome = FL_OUTCOME_FAILED;
        snprintf(x->detail, sizeof(x->detail), "acknowledged, then lost");
    } else {
        x->outcome = judged == FL_OUTCOME_OK ? FL_OUTCOME_FAILED : (enum fl_probe_outcome)judged;
    }
}
