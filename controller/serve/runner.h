/* One scheduled run of `faultline serve`: exactly `faultline run` of the
 * experiment (fl_run, on a thread of its own with its own loop), its reports
 * (run.json, junit.xml, attempts.jsonl, progress.log) in
 * REPORTS_DIR/EXPERIMENT/RUN_ID/, and its history row finished in the store
 * with the regression flag. The scheduler's loop only starts it and hears
 * when it is done; nothing here runs on that loop. */
#ifndef FL_SERVE_RUNNER_H
#define FL_SERVE_RUNNER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/key.h"
#include "controller/experiment/experiment.h"
#include "controller/serve/regression.h"
#include "controller/serve/store.h"

struct fl_metrics;

struct fl_serve_run {
    /* in: set before fl_serve_run_start; read-only afterwards */
    const struct fl_experiment *e;
    const struct fl_key *key;
    fl_store *store;
    struct fl_metrics *metrics;
    const char *reports_dir;
    int64_t id; /* the claimed row: RUN_ID */
    int64_t due_ms;
    /* abort: the scheduler writes abort_text, then sets the flag (once);
     * abort_reason points at abort_text */
    atomic_bool abort;
    const char *abort_reason;
    char abort_text[256];
    bool manual; /* faultline run-now: the row's flags say `manual` */
    /* called on the run's thread as its very last act (the run struct is the
     * scheduler's again from then on) */
    void (*on_done)(struct fl_serve_run *r, void *ctx);
    void *ctx;
    /* out: valid in on_done */
    char verdict[32];
    bool regressed;
    int64_t started_ms, ended_ms;
    /* for webhooks: -1 when not measured / no baseline; report "" if none */
    char reason[512];
    int64_t recovery_ms, resolution_ms, baseline_ms;
    char report[4096];
};

/* The regression window and tolerance (regression.h's defaults). */
#define FL_SERVE_REGRESSION_WINDOW FL_REGRESSION_WINDOW_DEFAULT

/* Starts the run's thread (detached). 0, or a negative errno (no thread):
 * on_done is then never called. */
int fl_serve_run_start(struct fl_serve_run *r);

/* mkdir -p. 0 or a negative errno. */
int fl_serve_mkdirs(const char *path);

#endif
