/* A write probe's attempt as the recovery must count it (rewrite.h). */
#include "controller/run/rewrite.h"

#include <stdio.h>
#include <string.h>

void fl_rewrite_write(const struct fl_rpo_write *w, enum fl_rpo_fate fate, bool has_judged,
                      enum fl_probe_outcome judged, uint64_t judged_latency_ms, uint64_t timeout_ms,
                      struct fl_probe_result *out)
{
    memset(out, 0, sizeof(*out));
    if (!has_judged)
        judged = FL_OUTCOME_TIMEOUT;
    out->started_ms = w->sent_ms;
    /* when the outcome was known: measure() orders results by it, and a
     * failure given the whole timeout would push every later success past
     * the end of a run that ended at the recovery */
    out->latency_ms = w->acked && w->ack_ms >= w->sent_ms ? w->ack_ms - w->sent_ms
                      : has_judged                        ? judged_latency_ms
                                                          : timeout_ms;
    if (judged == FL_OUTCOME_LATE) {
        out->outcome = FL_OUTCOME_LATE;
    } else if (fate == FL_RPO_SURVIVED && judged == FL_OUTCOME_OK) {
        out->outcome = FL_OUTCOME_OK;
        out->ok = true;
    } else if (fate == FL_RPO_LOST) {
        out->outcome = FL_OUTCOME_FAILED;
        snprintf(out->detail, sizeof(out->detail), "acknowledged, then lost");
    } else {
        out->outcome = judged == FL_OUTCOME_OK ? FL_OUTCOME_FAILED : judged;
    }
}
