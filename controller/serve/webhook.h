/* Webhooks of `faultline serve` (issue 16): a JSON POST per event to every
 * configured URL that asked for it, driven by libcurl's multi interface on
 * the scheduler's libuv loop (controller/net/curluv.h, the probes' driver).
 *
 * Events: fail, aborted, regression (a passing run flagged `regressed`),
 * recovered (the first PASS of an experiment after a FAIL; ABORTED runs in
 * between do not count either way), freeze, thaw. A run is one POST whatever
 * number of its events a URL asked for ("events" lists them all).
 *
 * The body has a `text` field that Slack and Mattermost show as the message,
 * plus structured fields (experiment, run_id, verdict, reason, recovery_ms,
 * resolution_ms, baseline_ms, regressed, report, server, frozen, ...).
 *
 * A delivery is tried once, then FL_WEBHOOK_RETRIES more times after the
 * FL_WEBHOOK_BACKOFF_MS delays; any 2xx answer is delivered, anything else
 * (refused, timeout, 4xx, 5xx) is a failed attempt, logged. A delivery whose
 * last attempt failed is logged as an error and counted in
 * faultline_webhook_failures_total. At most FL_WEBHOOK_QUEUE_MAX deliveries
 * are alive (in flight or waiting to retry); past that a new one is refused
 * with an error line and counted in faultline_webhook_dropped_total. Nothing
 * here blocks the loop, and no run ever waits for a webhook.
 *
 * Every function runs on the loop's thread. */
#ifndef FL_SERVE_WEBHOOK_H
#define FL_SERVE_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct fl_metrics;

enum fl_webhook_event {
    FL_WEBHOOK_FAIL = 1u << 0,
    FL_WEBHOOK_ABORTED = 1u << 1,
    FL_WEBHOOK_REGRESSION = 1u << 2,
    FL_WEBHOOK_RECOVERED = 1u << 3,
    FL_WEBHOOK_FREEZE = 1u << 4,
    FL_WEBHOOK_THAW = 1u << 5,
};
#define FL_WEBHOOK_ALL_EVENTS 0x3fu
#define FL_WEBHOOK_N_EVENTS 6

/* Configured URLs, at most (config refuses more). */
#define FL_WEBHOOKS_MAX 16
/* Per-attempt timeout: default and largest accepted. */
#define FL_WEBHOOK_TIMEOUT_DEFAULT_MS 10000
#define FL_WEBHOOK_TIMEOUT_MAX_MS 120000
/* Retries after the first attempt, and the delay before each. */
#define FL_WEBHOOK_RETRIES 3
#define FL_WEBHOOK_BACKOFF_MS                                                                      \
    {                                                                                              \
        1000, 4000, 16000                                                                          \
    }
/* Deliveries alive at once (in flight or waiting to retry). */
#define FL_WEBHOOK_QUEUE_MAX 256
/* On stop: deliveries in flight get this long to finish; retries still
 * waiting are given up (logged and counted as failures). */
#define FL_WEBHOOK_STOP_GRACE_MS 3000

struct fl_webhook_target {
    char *url;       /* http:// or https:// */
    unsigned events; /* FL_WEBHOOK_* bits; FL_WEBHOOK_ALL_EVENTS by default */
    uint64_t timeout_ms;
};

/* A finished run, as the webhook tells it. Strings may be NULL; times -1
 * when not measured. */
struct fl_webhook_run {
    const char *experiment;
    int64_t run_id;
    int64_t due_ms;
    const char *verdict; /* "PASS", "FAIL", "ABORTED", "PASS (no impact)" */
    const char *reason;
    int64_t recovery_ms, resolution_ms, baseline_ms;
    bool regressed;
    const char *report; /* the run's report folder */
};

struct fl_webhooks;

/* NULL with err set when curl or the loop cannot start. The targets are
 * copied. n may be 0: every event is then a no-op. */
struct fl_webhooks *fl_webhooks_new(uv_loop_t *loop, const struct fl_webhook_target *targets,
                                    size_t n, struct fl_metrics *metrics, char *err, size_t errlen);
/* What history says the experiment's last finished run was, so that a PASS
 * after a restart still counts as `recovered`. Sends nothing. */
void fl_webhooks_note_verdict(struct fl_webhooks *w, const char *experiment, const char *verdict);
/* The same, for a name a reload adds: history's verdict (read on another
 * thread, maybe before a run of that name ended here) is taken only when this
 * serve has not seen a verdict of that name yet; what it has seen is newer. */
void fl_webhooks_seed_verdict(struct fl_webhooks *w, const char *experiment, const char *verdict);
/* A run ended: the events it is (maybe none) go to the URLs that want them. */
void fl_webhook_event_run(struct fl_webhooks *w, const struct fl_webhook_run *run);
/* The safety lever (called by the control channel): `frozen` shows in every
 * later body until the thaw. aborted: the runs the freeze aborted. */
void fl_webhook_event_freeze(struct fl_webhooks *w, const char *reason, unsigned aborted);
void fl_webhook_event_thaw(struct fl_webhooks *w);
/* Deliveries alive (in flight or waiting to retry). */
size_t fl_webhooks_pending(const struct fl_webhooks *w);
/* Stops: waiting retries are given up, deliveries in flight get
 * FL_WEBHOOK_STOP_GRACE_MS, then every handle is closed and done(ctx) runs
 * on the loop. Later events are ignored. */
void fl_webhooks_stop(struct fl_webhooks *w, void (*done)(void *ctx), void *ctx);
/* After the loop has ended (every handle closed). NULL is fine. */
void fl_webhooks_free(struct fl_webhooks *w);

/* "fail" ... "thaw" -> its bit, or 0. */
unsigned fl_webhook_event_parse(const char *name);
const char *fl_webhook_event_name(unsigned bit);

#endif
