/* What `faultline serve` exposes on /metrics (Prometheus text format 0.0.4),
 * kept as counters and gauges per experiment. The scheduler's loop and its
 * run threads update it; the HTTP thread renders it: every call takes the
 * one mutex, so a scrape sees one consistent snapshot.
 *
 *   faultline_runs_total{experiment,verdict}          counter
 *   faultline_last_verdict{experiment}                0 pass, 1 fail, 2 aborted
 *                                                     (faultline run's exit code)
 *   faultline_last_run_timestamp_seconds{experiment}  end of the last run
 *   faultline_recovery_seconds{experiment}            last measured recovery
 *   faultline_recovery_duration_seconds{experiment}   histogram of recoveries
 *   faultline_recovery_resolution_seconds{experiment} last measurement's grain
 *   faultline_regressed{experiment}                   1 if the last measured run regressed
 *   faultline_next_run_timestamp_seconds{experiment}  next due time
 *   faultline_skipped_total{experiment,reason}        counter
 *   faultline_frozen                                  1 while frozen (faultline freeze)
 *   faultline_webhook_failures_total                  deliveries given up (webhook.h)
 *   faultline_webhook_dropped_total                   deliveries refused: queue full
 *
 * The series labelled {experiment} are an experiment's while it is
 * configured: from fl_metrics_job_add until its last job ends
 * (fl_metrics_job_end, once a reload removed or renamed its file and its run
 * under way finished), then they are no longer rendered, so Prometheus marks
 * them stale. Their values stay in memory: the same name configured again
 * shows them where history has them. faultline_frozen and the webhook
 * counters are the process's and always rendered.
 *
 * Label values are escaped as the format says (\\, \", \n). */
#ifndef FL_SERVE_METRICS_H
#define FL_SERVE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The histogram's upper bounds, seconds (+Inf is added). */
#define FL_METRICS_BUCKETS                                                                         \
    {                                                                                              \
        0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600                                       \
    }
#define FL_METRICS_N_BUCKETS 12
/* Distinct skip reasons counted per experiment (they are a short fixed list:
 * still_running, hosts_busy, max_concurrent_runs, missed, frozen, paused,
 * ...). */
#define FL_METRICS_MAX_REASONS 10

struct fl_metrics;

struct fl_metrics *fl_metrics_new(void);
void fl_metrics_free(struct fl_metrics *m);

/* Each returns 0 or -ENOMEM (a new experiment's entry). An entry made by
 * fl_metrics_experiment, _run, _skip or _next is rendered; one made by
 * fl_metrics_hidden (history seeded before its job is installed) is not until
 * fl_metrics_job_add. */
int fl_metrics_experiment(struct fl_metrics *m, const char *experiment);
int fl_metrics_hidden(struct fl_metrics *m, const char *experiment);
/* A job of that name is installed (rendered from now on) / has ended (its
 * series go once no job of that name is left). */
int fl_metrics_job_add(struct fl_metrics *m, const char *experiment);
void fl_metrics_job_end(struct fl_metrics *m, const char *experiment);
/* A finished run. verdict: "PASS" "FAIL" "ABORTED" "PASS (no impact)";
 * recovery_ms/resolution_ms -1 when not measured. */
int fl_metrics_run(struct fl_metrics *m, const char *experiment, const char *verdict,
                   int64_t ended_ms, int64_t recovery_ms, int64_t resolution_ms, bool regressed);
/* A skipped due time; reason is the class (a label value), not the sentence. */
int fl_metrics_skip(struct fl_metrics *m, const char *experiment, const char *reason);
int fl_metrics_next(struct fl_metrics *m, const char *experiment, int64_t next_s);
/* No next due time any more (its file was removed): the sample goes. */
void fl_metrics_next_clear(struct fl_metrics *m, const char *experiment);
/* Whether the experiment has an entry, rendered or not (a reload seeds only
 * new names). */
bool fl_metrics_known(struct fl_metrics *m, const char *experiment);
/* A webhook delivery given up / refused (queue full). m may be NULL. */
void fl_metrics_webhook_failure(struct fl_metrics *m);
void fl_metrics_webhook_dropped(struct fl_metrics *m);

/* The freeze (faultline freeze / thaw; at start, the stored state). */
void fl_metrics_frozen(struct fl_metrics *m, bool frozen);

/* The next due time of an experiment, for the UI: false when none is known. */
bool fl_metrics_next_get(struct fl_metrics *m, const char *experiment, int64_t *next_s);

/* The whole exposition, malloc'd (caller frees), or NULL on no memory. */
char *fl_metrics_render(struct fl_metrics *m);

/* A skip reason sentence ("hosts busy: web1") to its class ("hosts_busy"). */
const char *fl_metrics_skip_class(const char *reason);

#endif
