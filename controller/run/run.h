/* `faultline run`: one experiment, from connecting to its agents to the
 * verdict (docs/design.md section 5, "Phases").
 *
 *   connect ─► steady state ─► inject (on schedule) ─► observe ─► revert ─► recovery ─► done
 *       │            │                    └── abort_when, SIGINT/SIGTERM, an agent lost ──┐
 *       └─ an agent unreachable, or the steady state never healthy: ABORTED, nothing injected
 *                                                            revert everything, ABORTED ◄─┘
 *
 * Everything runs on one libuv loop: agent clients (authenticated, with a
 * heartbeat every second so that each agent's lease keeps the faults alive
 * only while this controller is), the probes, the schedule. Every probe
 * result is kept in the run record; the measurement is computed from it at
 * the end (controller/measure.c). */
#ifndef FL_CONTROLLER_RUN_H
#define FL_CONTROLLER_RUN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "common/key.h"
#include "controller/experiment/experiment.h"
#include "controller/run/runrecord.h"

struct fl_run_options {
    bool dry_run;   /* connect, check the steady state, print the plan, inject nothing */
    FILE *progress; /* live progress lines; NULL for none */
    uint64_t connect_timeout_ms;
    const char *attempts_path; /* attempts.jsonl, written as the run goes; NULL: none */
    /* Abort from another thread (faultline serve): when *abort becomes true
     * the run aborts as on SIGINT, with abort_reason, noticed within one
     * tick (50 ms). With abort set the run installs no SIGINT/SIGTERM
     * watchers of its own: the owner of the flag handles signals. NULL:
     * `faultline run`'s behaviour. */
    const atomic_bool *abort;
    const char *abort_reason;
    /* Probe threads (controller/probes/pool.h): 0 takes the experiment's
     * `controller: probe_threads`, else fl_probe_threads_auto(). With 1
     * every probe runs on the run's loop, as before threads; with K > 1 the
     * http and tcp probes run on K worker loops, and the run's loop keeps
     * the timelines, the verdict and attempts.jsonl. */
    unsigned probe_threads;
};

/* Runs e to its end and fills rec (which the caller frees with
 * fl_run_record_free). Returns 0 when the run happened (whatever its
 * verdict; a run that could not get going, say a probe that would not start,
 * is ABORTED with the reason in rec), or a negative errno when it could not
 * start at all: no memory, or no event loop (uv_loop_init's error, e.g.
 * -EMFILE), and rec is untouched. The phases are drawn in run.c. */
int fl_run(const struct fl_experiment *e, const struct fl_key *key, const struct fl_run_options *o,
           struct fl_run_record *rec);

void fl_run_record_free(struct fl_run_record *rec);

#endif
