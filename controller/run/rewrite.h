/* A write probe's attempt as the recovery must count it, after the
 * read-back (issue 15): one fl_probe_result per write. Pure. */
#ifndef FL_CONTROLLER_RUN_REWRITE_H
#define FL_CONTROLLER_RUN_REWRITE_H

#include <stdbool.h>
#include <stdint.h>

#include "controller/probes/probe.h"
#include "controller/run/rpo.h"

/* w's result: started when it was sent; a write that survived and that the
 * runner judged ok is a success; one acknowledged, then lost, a failure
 * ("acknowledged, then lost"); one the runner judged LATE stays late;
 * anything else keeps the runner's outcome (an ok one that did not survive
 * becomes a failure). The latency is the acknowledgement's for an
 * acknowledged write, else the runner's own (judged_latency_ms: a refused
 * connection is known in milliseconds, not at the timeout), and timeout_ms
 * only when the runner never judged it (has_judged false). */
void fl_rewrite_write(const struct fl_rpo_write *w, enum fl_rpo_fate fate, bool has_judged,
                      enum fl_probe_outcome judged, uint64_t judged_latency_ms, uint64_t timeout_ms,
                      struct fl_probe_result *out);

#endif
