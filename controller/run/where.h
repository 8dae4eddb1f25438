/* Role-aware targets (issue 13): a fault's `where: PROBE` runs the probe
 * template (controller/probes/template.h) once against each candidate host
 * just before injection; only hosts where it succeeds are hit ("whichever
 * Redis is the primary now"). No match: the run is ABORTED before anything
 * is injected, naming each candidate and why it did not match.
 *
 * The runner plans one fault record per candidate of a where: fault; this
 * file fills in each record's check and marks the chosen ones. */
#ifndef FL_CONTROLLER_RUN_WHERE_H
#define FL_CONTROLLER_RUN_WHERE_H

#include <stddef.h>
#include <uv.h>

#include "controller/run/runrecord.h"

struct fl_where_check;

struct fl_where {
    struct fl_run_record *rec;
    struct fl_where_check *checks;
    size_t n_checks;
    size_t open; /* checks whose probe is not yet stopped */
    void (*done)(void *arg);
    void *arg;
    bool stopping;
};

/* Starts a check for every record of a where: fault. done(arg) runs once
 * every check has its result (or was stopped). Returns the number of checks
 * started (0: done is never called), or a negative errno. */
int fl_where_start(struct fl_where *w, uv_loop_t *loop, struct fl_run_record *rec,
                   void (*done)(void *arg), void *arg);

/* Stops the checks still running (an abort); done still runs once they are. */
void fl_where_stop(struct fl_where *w);

void fl_where_free(struct fl_where *w);

/* Chooses, for each where: fault, `count` of the candidates that matched
 * (at random; all of them when fewer matched), setting `chosen`. Returns 0,
 * or -ENOENT with why[len] naming the fault, the probe and each candidate's
 * result when a fault matched no candidate. Pure but for the randomness
 * (pick receives n and returns an index below it). */
int fl_where_choose(struct fl_run_record *rec, size_t (*pick)(size_t n), char *why, size_t len);

#endif
