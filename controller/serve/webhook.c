/* Webhooks of `faultline serve` (webhook.h).
 *
 * Transfers run on the scheduler's loop through the driver the http probes
 * use too (controller/net/curluv.h), which hands a finished one back after
 * curl has returned, never from inside one of curl's callbacks.
 *
 * A delivery, its state changed only in set_state():
 *
 *   QUEUED ──add to the multi──► IN_FLIGHT ──2xx──► (freed, delivered)
 *                                   │ other answer, refused, timeout
 *                                   ▼
 *               retries left? ──yes──► BACKOFF ──timer──► IN_FLIGHT
 *                     └──no──► (freed, counted in faultline_webhook_failures_total)
 */
#include "controller/serve/webhook.h"

#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "controller/net/curluv.h"
#include "controller/serve/metrics.h"

static const char *const event_names[FL_WEBHOOK_N_EVENTS] = {"fail",      "aborted", "regression",
                                                             "recovered", "freeze",  "thaw"};

unsigned fl_webhook_event_parse(const char *name)
{
    for (unsigned i = 0; i < FL_WEBHOOK_N_EVENTS; i++)
        if (strcmp(name, event_names[i]) == 0)
            return 1u << i;
    return 0;
}

const char *fl_webhook_event_name(unsigned bit)
{
    for (unsigned i = 0; i < FL_WEBHOOK_N_EVENTS; i++)
        if (bit == 1u << i)
            return event_names[i];
    return "?";
}

enum dstate { D_QUEUED, D_IN_FLIGHT, D_BACKOFF };

struct fl_webhooks;

struct delivery {
    struct fl_webhooks *w;
    struct delivery *next, *prev;
    size_t target;
    char *body;
    char what[160]; /* for the log: "FAIL of web-failover run 42" */
    enum dstate state;
    unsigned attempt; /* attempts made */
    CURL *easy;
    struct fl_curluv_xfer xfer;
    struct curl_slist *headers;
    uv_timer_t retry;
    char errbuf[CURL_ERROR_SIZE];
};

struct seen {
    char *experiment;
    bool failing; /* its last FAIL has not been followed by a PASS yet */
};

struct fl_webhooks {
    uv_loop_t *loop;
    struct fl_webhook_target *targets;
    size_t n_targets;
    struct fl_metrics *metrics;
    struct fl_curluv *curl; /* NULL once closed */
    uv_timer_t grace;
    struct delivery *head; /* every live delivery */
    size_t n_live;
    size_t n_closing; /* handles whose close callback has not run */
    struct seen *seen;
    size_t n_seen;
    bool frozen;
    char frozen_reason[256];
    char host[256];
    bool stopping, closed;
    void (*done)(void *ctx);
    void *done_ctx;
};

static const uint64_t backoff_ms[FL_WEBHOOK_RETRIES] = FL_WEBHOOK_BACKOFF_MS;

static void set_state(struct delivery *d, enum dstate to)
{
    static const bool allowed[3][3] = {
        /* QUEUED */ {false, true, false},
        /* IN_FLIGHT */ {false, false, true},
        /* BACKOFF */ {false, true, false},
    };
    assert(allowed[d->state][to]);
    d->state = to;
}

/* ------------------------------------------------------------ teardown */

static void maybe_done(struct fl_webhooks *w)
{
    if (!w->closed || w->n_closing > 0 || w->done == NULL)
        return;
    void (*done)(void *) = w->done;
    w->done = NULL;
    done(w->done_ctx);
}

static void on_closed(uv_handle_t *h)
{
    struct fl_webhooks *w = h->data;
    w->n_closing--;
    maybe_done(w);
}

static void on_delivery_closed(uv_handle_t *h)
{
    struct delivery *d = h->data;
    struct fl_webhooks *w = d->w;
    free(d->body);
    free(d);
    w->n_closing--;
    maybe_done(w);
}

/* Out of the list and the multi; freed once its timer is closed. */
static void delivery_free(struct delivery *d)
{
    struct fl_webhooks *w = d->w;
    if (d->easy != NULL) {
        fl_curluv_cancel(&d->xfer);
        curl_easy_cleanup(d->easy);
        d->easy = NULL;
    }
    curl_slist_free_all(d->headers);
    d->headers = NULL;
    if (d->prev)
        d->prev->next = d->next;
    else
        w->head = d->next;
    if (d->next)
        d->next->prev = d->prev;
    w->n_live--;
    w->n_closing++;
    uv_close((uv_handle_t *)&d->retry, on_delivery_closed);
}

static void on_curl_closed(void *ctx)
{
    struct fl_webhooks *w = ctx;
    w->n_closing--;
    maybe_done(w);
}

static void close_all(struct fl_webhooks *w)
{
    if (w->closed)
        return;
    w->closed = true;
    while (w->head != NULL)
        delivery_free(w->head);
    /* while the loop still runs: the driver closes its polls and timer */
    w->n_closing += 2;
    fl_curluv_close(w->curl, on_curl_closed, w);
    w->curl = NULL;
    uv_close((uv_handle_t *)&w->grace, on_closed);
    maybe_done(w);
}

/* ------------------------------------------------------------ attempts */

static void attempt(struct delivery *d);

static void on_retry(uv_timer_t *t)
{
    struct delivery *d = t->data;
    attempt(d);
}

/* A finished attempt, handed back by the driver: delivered, retried later,
 * or given up. */
static void attempt_end(void *ctx, CURL *easy, CURLcode res)
{
    struct delivery *d = ctx;
    struct fl_webhooks *w = d->w;
    const char *url = w->targets[d->target].url;
    long status = 0;
    assert(easy == d->easy);
    curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(d->easy);
    d->easy = NULL;
    curl_slist_free_all(d->headers);
    d->headers = NULL;
    if (res == CURLE_OK && status >= 200 && status < 300) {
        fl_info("webhook %s: %s delivered (attempt %u)", url, d->what, d->attempt);
        delivery_free(d);
        if (w->stopping && w->n_live == 0)
            close_all(w);
        return;
    }
    char why[CURL_ERROR_SIZE + 64];
    if (res != CURLE_OK)
        snprintf(why, sizeof(why), "%s", d->errbuf[0] ? d->errbuf : curl_easy_strerror(res));
    else
        snprintf(why, sizeof(why), "HTTP %ld", status);
    if (d->attempt <= FL_WEBHOOK_RETRIES && !w->stopping) {
        uint64_t delay = backoff_ms[d->attempt - 1];
        fl_warn("webhook %s: %s, attempt %u of %u failed (%s); again in %llu ms", url, d->what,
                d->attempt, FL_WEBHOOK_RETRIES + 1, why, (unsigned long long)delay);
        set_state(d, D_BACKOFF);
        uv_timer_start(&d->retry, on_retry, delay, 0);
        return;
    }
    fl_error("webhook %s: %s NOT delivered: attempt %u of %u failed (%s)%s", url, d->what,
             d->attempt, FL_WEBHOOK_RETRIES + 1, why,
             w->stopping ? " and the server is stopping" : "");
    fl_metrics_webhook_failure(w->metrics);
    delivery_free(d);
    if (w->stopping && w->n_live == 0)
        close_all(w);
}

static size_t discard(char *data, size_t size, size_t nmemb, void *userp)
{
    (void)data;
    (void)userp;
    return size * nmemb;
}

static void attempt(struct delivery *d)
{
    struct fl_webhooks *w = d->w;
    const struct fl_webhook_target *t = &w->targets[d->target];
    set_state(d, D_IN_FLIGHT);
    d->attempt++;
    d->errbuf[0] = '\0';
    d->easy = curl_easy_init();
    d->headers = curl_slist_append(NULL, "Content-Type: application/json");
    bool ok = d->easy != NULL && d->headers != NULL;
    ok = ok && curl_easy_setopt(d->easy, CURLOPT_URL, t->url) == CURLE_OK &&
         curl_easy_setopt(d->easy, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
         curl_easy_setopt(d->easy, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
         curl_easy_setopt(d->easy, CURLOPT_FORBID_REUSE, 1L) == CURLE_OK &&
         curl_easy_setopt(d->easy, CURLOPT_TIMEOUT_MS, (long)t->timeout_ms) == CURLE_OK &&
         curl_easy_setopt(d->easy, CURLOPT_HTTPHEADER, d->headers) == CURLE_OK &&
         curl_easy_setopt(d->easy, CURLOPT_POSTFIELDS, d->body) == CURLE_OK &&
         curl_easy_setopt(d->easy, CURLOPT_WRITEFUNCTION, discard) == CURLE_OK &&
         curl_easy_setopt(d->easy, CURLOPT_ERRORBUFFER, d->errbuf) == CURLE_OK &&
         curl_easy_setopt(d->easy, CURLOPT_USERAGENT, "faultline-serve") == CURLE_OK;
    char why[128] = "curl cannot set up the request";
    ok = ok && fl_curluv_add(w->curl, &d->xfer, d->easy, attempt_end, d, why, sizeof(why)) == 0;
    if (!ok) {
        fl_error("webhook %s: %s NOT delivered: %s", t->url, d->what, why);
        fl_metrics_webhook_failure(w->metrics);
        delivery_free(d);
    }
}

/* ------------------------------------------------------------ the queue */

static void enqueue(struct fl_webhooks *w, unsigned events, json_t *body, const char *what)
{
    if (w->stopping) {
        fl_warn("webhooks: %s not sent: the server is stopping", what);
        return;
    }
    char *text = NULL;
    for (size_t i = 0; i < w->n_targets; i++) {
        if ((w->targets[i].events & events) == 0)
            continue;
        if (w->n_live >= FL_WEBHOOK_QUEUE_MAX) {
            fl_error("webhook %s: %s DROPPED: %zu deliveries are already waiting "
                     "(FL_WEBHOOK_QUEUE_MAX %d); is the receiver down?",
                     w->targets[i].url, what, w->n_live, FL_WEBHOOK_QUEUE_MAX);
            fl_metrics_webhook_dropped(w->metrics);
            continue;
        }
        if (text == NULL && (text = json_dumps(body, JSON_COMPACT)) == NULL) {
            fl_error("webhooks: %s not sent: out of memory", what);
            return;
        }
        struct delivery *d = calloc(1, sizeof(*d));
        char *copy = d ? strdup(text) : NULL;
        if (copy == NULL || uv_timer_init(w->loop, &d->retry) < 0) {
            fl_error("webhook %s: %s not sent: out of memory", w->targets[i].url, what);
            free(copy);
            free(d);
            continue;
        }
        d->w = w;
        d->retry.data = d;
        d->target = i;
        d->body = copy;
        d->state = D_QUEUED;
        snprintf(d->what, sizeof(d->what), "%s", what);
        d->next = w->head;
        if (w->head)
            w->head->prev = d;
        w->head = d;
        w->n_live++;
        attempt(d);
    }
    free(text);
}

static json_t *base_body(struct fl_webhooks *w, const char *event, unsigned events)
{
    char now[40] = "";
    fl_format_rfc3339(fl_now_ms(), now, sizeof(now));
    json_t *list = json_array();
    for (unsigned i = 0; i < FL_WEBHOOK_N_EVENTS; i++)
        if (events & (1u << i))
            json_array_append_new(list, json_string(event_names[i]));
    return json_pack("{s:s, s:o, s:s, s:s, s:b, s:s?}", "event", event, "events", list, "time", now,
                     "server", w->host, "frozen", w->frozen, "frozen_reason",
                     w->frozen ? w->frozen_reason : NULL);
}

static struct seen *seen_get(struct fl_webhooks *w, const char *experiment)
{
    for (size_t i = 0; i < w->n_seen; i++)
        if (strcmp(w->seen[i].experiment, experiment) == 0)
            return &w->seen[i];
    struct seen *grown = realloc(w->seen, (w->n_seen + 1) * sizeof(*grown));
    if (grown == NULL)
        return NULL;
    w->seen = grown;
    char *name = strdup(experiment);
    if (name == NULL)
        return NULL;
    w->seen[w->n_seen] = (struct seen){.experiment = name};
    return &w->seen[w->n_seen++];
}

void fl_webhooks_note_verdict(struct fl_webhooks *w, const char *experiment, const char *verdict)
{
    if (w == NULL || verdict == NULL)
        return;
    struct seen *s = seen_get(w, experiment);
    if (s == NULL)
        return;
    if (strcmp(verdict, "FAIL") == 0)
        s->failing = true;
    else if (strncmp(verdict, "PASS", 4) == 0)
        s->failing = false;
}

void fl_webhooks_seed_verdict(struct fl_webhooks *w, const char *experiment, const char *verdict)
{
    if (w == NULL || verdict == NULL)
        return;
    for (size_t i = 0; i < w->n_seen; i++)
        if (strcmp(w->seen[i].experiment, experiment) == 0)
            return;
    fl_webhooks_note_verdict(w, experiment, verdict);
}

static void add_ms(json_t *o, const char *key, int64_t ms)
{
    json_object_set_new(o, key, ms >= 0 ? json_integer(ms) : json_null());
}

void fl_webhook_event_run(struct fl_webhooks *w, const struct fl_webhook_run *r)
{
    if (w == NULL || r->verdict == NULL)
        return;
    struct seen *s = seen_get(w, r->experiment);
    bool was_failing = s != NULL && s->failing;
    fl_webhooks_note_verdict(w, r->experiment, r->verdict);
    bool pass = strncmp(r->verdict, "PASS", 4) == 0;
    unsigned events = 0;
    if (strcmp(r->verdict, "FAIL") == 0)
        events |= FL_WEBHOOK_FAIL;
    if (strcmp(r->verdict, "ABORTED") == 0)
        events |= FL_WEBHOOK_ABORTED;
    if (r->regressed)
        events |= FL_WEBHOOK_REGRESSION;
    if (pass && was_failing)
        events |= FL_WEBHOOK_RECOVERED;
    if (events == 0 || w->n_targets == 0)
        return;
    unsigned first = events & -events;
    const char *event = fl_webhook_event_name(first);

    char text[2048], extra[512] = "";
    if (r->regressed && r->recovery_ms >= 0 && r->baseline_ms >= 0)
        snprintf(extra, sizeof(extra), "; recovery %.3f s against a baseline of %.3f s: REGRESSED",
                 (double)r->recovery_ms / 1000, (double)r->baseline_ms / 1000);
    const char *icon = (events & (FL_WEBHOOK_FAIL | FL_WEBHOOK_ABORTED)) ? ":red_circle:"
                       : (events & FL_WEBHOOK_REGRESSION)                ? ":warning:"
                                                                         : ":large_green_circle:";
    const char *headline = (events & FL_WEBHOOK_FAIL)         ? "FAILED"
                           : (events & FL_WEBHOOK_ABORTED)    ? "was ABORTED"
                           : (events & FL_WEBHOOK_REGRESSION) ? "passed but its recovery REGRESSED"
                                                              : "PASSES again after a failure";
    snprintf(text, sizeof(text), "%s faultline: *%s* %s (run %lld on %s)%s%s%s%s%s%s", icon,
             r->experiment, headline, (long long)r->run_id, w->host,
             r->reason && r->reason[0] ? ": " : "", r->reason ? r->reason : "", extra,
             r->report ? "; report " : "", r->report ? r->report : "",
             w->frozen ? " [server FROZEN]" : "");

    json_t *body = base_body(w, event, events);
    char due[40] = "";
    if (r->due_ms > 0)
        fl_format_rfc3339((uint64_t)r->due_ms, due, sizeof(due));
    json_object_set_new(body, "text", json_string(text));
    json_object_set_new(body, "experiment", json_string(r->experiment));
    json_object_set_new(body, "run_id", json_integer(r->run_id));
    json_object_set_new(body, "due", due[0] ? json_string(due) : json_null());
    json_object_set_new(body, "verdict", json_string(r->verdict));
    json_object_set_new(body, "reason", r->reason ? json_string(r->reason) : json_null());
    add_ms(body, "recovery_ms", r->recovery_ms);
    add_ms(body, "resolution_ms", r->resolution_ms);
    add_ms(body, "baseline_ms", r->baseline_ms);
    json_object_set_new(body, "regressed", json_boolean(r->regressed));
    json_object_set_new(body, "report", r->report ? json_string(r->report) : json_null());
    char what[160];
    snprintf(what, sizeof(what), "%s of %s run %lld", event, r->experiment, (long long)r->run_id);
    enqueue(w, events, body, what);
    json_decref(body);
}

void fl_webhook_event_freeze(struct fl_webhooks *w, const char *reason, unsigned aborted)
{
    if (w == NULL)
        return;
    w->frozen = true;
    snprintf(w->frozen_reason, sizeof(w->frozen_reason), "%s", reason ? reason : "");
    char text[1024];
    snprintf(text, sizeof(text),
             ":octagonal_sign: faultline on %s is FROZEN%s%s: %u running experiment(s) aborted "
             "and reverted; nothing starts until `faultline thaw`",
             w->host, w->frozen_reason[0] ? ": " : "", w->frozen_reason, aborted);
    json_t *body = base_body(w, "freeze", FL_WEBHOOK_FREEZE);
    json_object_set_new(body, "text", json_string(text));
    json_object_set_new(body, "reason", json_string(w->frozen_reason));
    json_object_set_new(body, "aborted_runs", json_integer(aborted));
    enqueue(w, FL_WEBHOOK_FREEZE, body, "freeze");
    json_decref(body);
}

void fl_webhook_event_thaw(struct fl_webhooks *w)
{
    if (w == NULL)
        return;
    w->frozen = false;
    w->frozen_reason[0] = '\0';
    char text[512];
    snprintf(text, sizeof(text), ":arrow_forward: faultline on %s is thawed: schedules run again",
             w->host);
    json_t *body = base_body(w, "thaw", FL_WEBHOOK_THAW);
    json_object_set_new(body, "text", json_string(text));
    enqueue(w, FL_WEBHOOK_THAW, body, "thaw");
    json_decref(body);
}

/* ------------------------------------------------------------ life */

struct fl_webhooks *fl_webhooks_new(uv_loop_t *loop, const struct fl_webhook_target *targets,
                                    size_t n, struct fl_metrics *metrics, char *err, size_t errlen)
{
    struct fl_webhooks *w = calloc(1, sizeof(*w));
    if (w == NULL || (n > 0 && (w->targets = calloc(n, sizeof(*w->targets))) == NULL)) {
        free(w);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->loop = loop;
    w->metrics = metrics;
    for (size_t i = 0; i < n; i++) {
        w->targets[i] = targets[i];
        w->targets[i].url = strdup(targets[i].url);
        w->n_targets++;
        if (w->targets[i].url == NULL) {
            fl_webhooks_free(w);
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
    }
    if (gethostname(w->host, sizeof(w->host) - 1) != 0)
        snprintf(w->host, sizeof(w->host), "localhost");
    int rc = fl_curluv_new(loop, "webhooks", &w->curl);
    if (rc < 0) {
        fl_webhooks_free(w);
        snprintf(err, errlen, "webhooks: libcurl cannot start: %s", fl_strerror(rc));
        return NULL;
    }
    uv_timer_init(loop, &w->grace);
    w->grace.data = w;
    return w;
}

size_t fl_webhooks_pending(const struct fl_webhooks *w)
{
    return w ? w->n_live : 0;
}

static void on_grace(uv_timer_t *t)
{
    struct fl_webhooks *w = t->data;
    for (struct delivery *d = w->head; d != NULL; d = d->next) {
        fl_error("webhook %s: %s NOT delivered: still in flight after the stop grace of %d ms",
                 w->targets[d->target].url, d->what, FL_WEBHOOK_STOP_GRACE_MS);
        fl_metrics_webhook_failure(w->metrics);
    }
    close_all(w);
}

void fl_webhooks_stop(struct fl_webhooks *w, void (*done)(void *ctx), void *ctx)
{
    w->stopping = true;
    w->done = done;
    w->done_ctx = ctx;
    struct delivery *next;
    for (struct delivery *d = w->head; d != NULL; d = next) {
        next = d->next;
        if (d->state == D_BACKOFF) {
            fl_error("webhook %s: %s NOT delivered: the server stops before retry %u",
                     w->targets[d->target].url, d->what, d->attempt);
            fl_metrics_webhook_failure(w->metrics);
            delivery_free(d);
        }
    }
    if (w->n_live == 0) {
        close_all(w);
        return;
    }
    fl_info("webhooks: waiting up to %d ms for %zu delivery(ies) in flight",
            FL_WEBHOOK_STOP_GRACE_MS, w->n_live);
    uv_timer_start(&w->grace, on_grace, FL_WEBHOOK_STOP_GRACE_MS, 0);
}

void fl_webhooks_free(struct fl_webhooks *w)
{
    if (w == NULL)
        return;
    if (w->curl != NULL) /* its handles are on the loop: only a stop frees them */
        fl_error("internal error: webhooks freed before fl_webhooks_stop() ended");
    for (size_t i = 0; i < w->n_targets; i++)
        free(w->targets[i].url);
    for (size_t i = 0; i < w->n_seen; i++)
        free(w->seen[i].experiment);
    free(w->seen);
    free(w->targets);
    free(w);
}
