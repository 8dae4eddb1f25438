/* The scheduler of `faultline serve`: one libuv loop that never blocks.
 *
 * Per scheduled experiment (a job) one state, changed only in set_state():
 *
 *   IDLE ──due──► WAITING ──ready, hosts free, a slot free──► CLAIMING ──row claimed──► RUNNING
 *     ▲              │ (jitter, window; hosts busy or no slot: waits up to            │
 *     │              │  starting_deadline, then the due time is a skip row)          │
 *     └──────────────┴───────────── run done / claim refused ◄───────────────────────┘
 *
 * - A due time that finds its job CLAIMING or RUNNING is a `skipped (still
 *   running)` row; one that finds it WAITING is `skipped (still waiting ...)`.
 * - Blast radius (radius.h: what a run faults, what its probes reach, and
 *   schedule: also_uses): a job never leaves WAITING while a CLAIMING/RUNNING
 *   job's radius shares an address with its own, nor while an earlier-due
 *   WAITING job that shares one is held back (the later one waits). Past
 *   starting_deadline it is a `skipped (hosts busy: lb (10.77.0.1: probed by
 *   a, faulted by b) ...)` row.
 * - max_concurrent_runs bounds CLAIMING + RUNNING jobs.
 * - Store calls (claim, skip, prune) run on uv_queue_work; runs on their own
 *   threads (runner.h). Every due time ends as exactly one row: the store's
 *   UNIQUE (experiment, due_ms) makes that hold across restarts.
 * - SIGTERM/SIGINT: every run is aborted ("server stopping") and reverted as
 *   Ctrl-C does, a WAITING due time becomes a skip row, and the loop ends
 *   when the last run and store call are done.
 * - Control (control.h, on listen_control): a freeze aborts every run
 *   ("frozen: REASON"), makes a WAITING due time and every later one a
 *   `skipped (frozen: REASON)` row and starts nothing until thaw; a paused
 *   job's due times are `skipped (paused)` rows; run-now claims due time now
 *   at once (flag manual) or is refused. Freeze and pauses are stored and
 *   read back at start.
 * - At start (before the loop): rows left `running` by a server that died
 *   are recorded ABORTED ("server died during the run"), metrics are seeded
 *   from history, retention prunes (and again every day).
 * - Reload (SIGHUP, or a change in the experiments directory after
 *   FL_SERVE_RELOAD_DEBOUNCE_MS of quiet): the directory is read again on a
 *   worker thread. A file that fails to load is logged FILE:LINE:COL and its
 *   previous version keeps its schedule; a new file is scheduled; a removed
 *   file's schedule ends (a WAITING due time becomes a skip row, a running
 *   run finishes); a changed file is re-armed with its new version once its
 *   job is idle (a run of the old version finishes first).
 * - Webhooks (webhook.h): every finished run goes to notify_run(); at the
 *   end the loop waits for deliveries in flight (FL_WEBHOOK_STOP_GRACE_MS). */
#ifndef FL_SERVE_SCHEDULER_H
#define FL_SERVE_SCHEDULER_H

#include "controller/serve/catalog.h"
#include "controller/serve/config.h"
#include "controller/serve/store.h"

struct fl_metrics;

/* A WAITING due time is checked again at least this often. */
#define FL_SCHED_RECHECK_MS 1000
/* Job slots: the experiments of the directory, plus removed ones whose run
 * has not ended yet (a reload finding no free slot says so and tries again). */
#define FL_SERVE_JOB_SLOTS (2 * FL_SERVE_MAX_EXPERIMENTS)
/* A change in the experiments directory reloads after this quiet time. */
#define FL_SERVE_RELOAD_DEBOUNCE_MS 500
/* History rows read at start to find an experiment's last PASS or FAIL. */
#define FL_SERVE_SEED_ROWS 50
/* Missed due times (cron, after downtime) recorded one row each, at most. */
#define FL_SERVE_MISSED_ROWS_MAX 1000

/* Runs until SIGTERM/SIGINT. /metrics (c->listen_http, unless "off")
 * starts listening once the metrics are seeded from history, so that the
 * first scrape already agrees with it. The catalog, store and metrics stay
 * the caller's. 0 after a clean stop, or a negative errno when it could not
 * start (err says why). */
int fl_scheduler_run(const struct fl_serve_config *c, struct fl_catalog *cat, fl_store *store,
                     struct fl_metrics *metrics, char *err, size_t errlen);

#endif
