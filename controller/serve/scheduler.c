/* The scheduling state machine of `faultline serve` (scheduler.h). */
#include "controller/serve/scheduler.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "common/clock.h"
#include "common/key.h"
#include "common/log.h"
#include "controller/serve/control.h"
#include "controller/serve/http.h"
#include "controller/serve/metrics.h"
#include "controller/serve/pages.h"
#include "controller/serve/prune.h"
#include "controller/serve/radius.h"
#include "controller/serve/runner.h"
#include "controller/serve/schedule.h"
#include "controller/serve/webhook.h"

enum job_state { JOB_IDLE, JOB_WAITING, JOB_CLAIMING, JOB_RUNNING };
static const char *const state_names[] = {"idle", "waiting", "claiming", "running"};

struct sched;

struct job {
    struct sched *s;
    const struct fl_catalog_entry *entry;
    const struct fl_experiment *e;
    const struct fl_schedule *sc;
    struct fl_key key;
    struct fl_tz tz;
    struct fl_radius radius; /* what its runs fault and measure (radius.h) */
    enum job_state state;
    int64_t next_due_s;
    bool armed; /* due_timer runs for next_due_s */
    uv_timer_t due_timer;
    int64_t wait_due_s;       /* WAITING..RUNNING: the due time it serves */
    int64_t wait_start_ms;    /* WAITING: not before (jitter, window) */
    int64_t wait_deadline_ms; /* WAITING: due + starting_deadline */
    int64_t run_id;
    int64_t last_start_ms; /* ties of due times: the one that waited longest first */
    struct fl_serve_run *run;
    bool ctl_paused;                 /* faultline pause (stored) */
    bool manual;                     /* WAITING..RUNNING: a faultline run-now */
    struct fl_control_req *manual_q; /* CLAIMING: the run-now to answer */
    /* reload (the reload section below) */
    struct fl_catalog_entry own; /* the entry, when a reload loaded it */
    bool owns;
    bool gone;                /* a free slot: its file was removed, its run ended */
    bool removing;            /* its file was removed: it ends once idle */
    struct job *next_version; /* its file changed: applied once idle */
    unsigned refs;            /* store calls in flight that read it */
    char seed_verdict[24];    /* a reload's job: history's last PASS or FAIL, or "" */
};

struct sched {
    uv_loop_t loop;
    const struct fl_serve_config *c;
    fl_store *store;
    struct fl_metrics *metrics;
    struct job *jobs;
    size_t n_jobs;
    int64_t origin_s;
    unsigned active; /* CLAIMING + RUNNING */
    unsigned work;   /* uv_queue_work requests in flight */
    bool stopping;
    uv_signal_t sigterm, sigint;
    uv_timer_t wake, prune_timer;
    uv_async_t done_async;
    uv_mutex_t done_mu;
    struct fl_serve_run **done; /* runs finished, for the loop to collect */
    size_t n_done;
    /* scratch of the loop, one slot per job (allocated at start: no VLAs) */
    struct fl_serve_run **done_copy;
    struct job **order;
    bool *held;
    /* faultline freeze (stored; control.h) and the control channel */
    struct fl_control_freeze freeze;
    struct fl_control *control;
    /* webhooks (webhook.h) */
    struct fl_webhooks *hooks;
    /* the read-only pages (pages.h): told what is scheduled after a reload */
    struct fl_serve_pages *pages;
    int hooks_stop; /* 0 running, 1 stopping, 2 stopped */
    /* reload: SIGHUP and changes in the experiments directory */
    uv_signal_t sighup;
    uv_fs_event_t fsev;
    uv_timer_t reload_debounce, reload_tick;
    bool reload_busy, reload_again;
};

static void try_start(struct sched *s);
static void maybe_end(struct sched *s);
static void on_due(uv_timer_t *t);
static bool held_back(struct job *j, int64_t due_s);
static void claimed(struct job *j, fl_store_rc rc, int64_t id);
static void notify_run(struct sched *s, const struct job *j, const struct fl_serve_run *r);
static bool hooks_stopped(struct sched *s);
static int reload_start(struct sched *s);
static void reload_close(struct sched *s);
static void reload_free(struct sched *s);
static void seed_webhooks(struct sched *s, const struct job *j);

/* ---------------------------------------------------------------- states */

/* The one place a job changes state. */
static void set_state(struct job *j, enum job_state to)
{
    static const bool allowed[4][4] = {
        /* from IDLE */ {false, true, false, false},
        /* WAITING */ {true, false, true, false},
        /* CLAIMING */ {true, false, false, true},
        /* RUNNING */ {true, false, false, false},
    };
    assert(allowed[j->state][to]);
    fl_debug("%s: %s -> %s", j->e->name, state_names[j->state], state_names[to]);
    bool was_active = j->state == JOB_CLAIMING || j->state == JOB_RUNNING;
    bool is_active = to == JOB_CLAIMING || to == JOB_RUNNING;
    if (is_active && !was_active)
        j->s->active++;
    if (was_active && !is_active)
        j->s->active--;
    j->state = to;
}

static bool active(const struct job *j)
{
    return j->state == JOB_CLAIMING || j->state == JOB_RUNNING;
}

/* Whether a and b share an address of their blast radius; if so, why, in
 * buf: "lb (10.77.0.1: probed by a, faulted by b)". */
static bool shared_host(const struct job *a, const struct job *b, char *buf, size_t len)
{
    size_t ia, ib;
    if (!fl_radius_shared(&a->radius, &b->radius, &ia, &ib))
        return false;
    fl_radius_busy_text(&a->radius, ia, a->e->name, &b->radius, ib, b->e->name, buf, len);
    return true;
}

/* ---------------------------------------------------------------- store work */

enum work_kind { WORK_SKIP, WORK_CLAIM, WORK_PRUNE };

struct work {
    uv_work_t req;
    struct sched *s;
    enum work_kind kind;
    struct job *j; /* skip, claim */
    int64_t due_ms, now_ms;
    bool manual; /* claim: a run-now (copied from the job on the loop) */
    char reason[256];
    fl_store_rc rc;
    int64_t id;
    size_t removed;
    char err[512];
};

static void work_run(uv_work_t *req)
{
    struct work *w = req->data;
    struct sched *s = w->s;
    switch (w->kind) {
    case WORK_SKIP:
        w->rc = fl_store_skip(s->store, w->j->e->name, w->j->entry->hash, w->due_ms, w->now_ms,
                              w->reason);
        if (w->rc == FL_STORE_ERR)
            snprintf(w->err, sizeof(w->err), "%s", fl_store_error(s->store));
        break;
    case WORK_CLAIM:
        w->rc = fl_store_claim_flags(s->store, w->j->e->name, w->j->entry->hash, w->due_ms,
                                     w->now_ms, w->manual ? "manual" : NULL, &w->id);
        if (w->rc == FL_STORE_ERR)
            snprintf(w->err, sizeof(w->err), "%s", fl_store_error(s->store));
        break;
    case WORK_PRUNE:
        w->rc = fl_serve_prune(s->store, s->c->reports_dir, s->c->retention_runs,
                               s->c->retention_age_ms, w->now_ms, &w->removed, w->err,
                               sizeof(w->err)) == 0
                    ? FL_STORE_OK
                    : FL_STORE_ERR;
        break;
    }
}

static void start_run(struct job *j, int64_t id);

static void work_done(uv_work_t *req, int status)
{
    struct work *w = req->data;
    struct sched *s = w->s;
    s->work--;
    if (w->j != NULL)
        w->j->refs--;
    (void)status;
    switch (w->kind) {
    case WORK_SKIP:
        if (w->rc == FL_STORE_OK) {
            fl_warn("%s: due time %lld skipped (%s)", w->j->e->name, (long long)w->due_ms / 1000,
                    w->reason);
            fl_metrics_skip(s->metrics, w->j->e->name, fl_metrics_skip_class(w->reason));
        } else if (w->rc == FL_STORE_ALREADY) {
            fl_info("%s: due time %lld already has its row", w->j->e->name,
                    (long long)w->due_ms / 1000);
        } else {
            fl_error("%s: cannot record a skip: %s", w->j->e->name, w->err);
        }
        break;
    case WORK_CLAIM:
        claimed(w->j, w->rc, w->id);
        if (w->rc == FL_STORE_OK) {
            start_run(w->j, w->id);
        } else {
            if (w->rc == FL_STORE_ALREADY)
                fl_warn("%s: due time %lld already has its row (another server, or before a "
                        "restart): not run twice",
                        w->j->e->name, (long long)w->due_ms / 1000);
            else
                fl_error("%s: cannot claim due time %lld: %s", w->j->e->name,
                         (long long)w->due_ms / 1000, w->err);
            set_state(w->j, JOB_IDLE);
            try_start(s);
        }
        break;
    case WORK_PRUNE:
        if (w->rc == FL_STORE_OK)
            fl_info("retention: pruned, %zu report folder(s) removed", w->removed);
        else
            fl_error("%s", w->err);
        break;
    }
    free(w);
    maybe_end(s);
}

static int queue(struct sched *s, enum work_kind kind, struct job *j, int64_t due_ms,
                 const char *reason)
{
    struct work *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        fl_error("out of memory queueing a store call");
        return -ENOMEM;
    }
    w->req.data = w;
    w->s = s;
    w->kind = kind;
    w->j = j;
    w->due_ms = due_ms;
    w->now_ms = (int64_t)fl_now_ms();
    w->manual = j != NULL && j->manual;
    if (reason != NULL)
        snprintf(w->reason, sizeof(w->reason), "%s", reason);
    int rc = uv_queue_work(&s->loop, &w->req, work_run, work_done);
    if (rc < 0) {
        fl_error("cannot queue a store call: %s", uv_strerror(rc));
        free(w);
        return rc;
    }
    s->work++;
    if (j != NULL)
        j->refs++;
    return 0;
}

static void skip(struct job *j, int64_t due_s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void skip(struct job *j, int64_t due_s, const char *fmt, ...)
{
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    queue(j->s, WORK_SKIP, j, due_s * 1000, reason);
}

/* ---------------------------------------------------------------- runs */

static void on_run_done(struct fl_serve_run *r, void *ctx)
{
    struct sched *s = ctx; /* on the run's thread */
    uv_mutex_lock(&s->done_mu);
    s->done[s->n_done++] = r; /* room for every job: at most one run each */
    uv_mutex_unlock(&s->done_mu);
    uv_async_send(&s->done_async);
}

static void start_run(struct job *j, int64_t id)
{
    struct sched *s = j->s;
    struct fl_serve_run *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        fl_error("%s: out of memory starting run %lld", j->e->name, (long long)id);
        set_state(j, JOB_IDLE);
        return;
    }
    r->e = j->e;
    r->key = &j->key;
    r->store = s->store;
    r->metrics = s->metrics;
    r->reports_dir = s->c->reports_dir;
    r->id = id;
    r->due_ms = j->wait_due_s * 1000;
    r->abort_reason = r->abort_text;
    r->manual = j->manual;
    if (s->freeze.frozen) /* claimed as the freeze came: ends at once */
        snprintf(r->abort_text, sizeof(r->abort_text), "frozen: %s", s->freeze.reason);
    else
        snprintf(r->abort_text, sizeof(r->abort_text), "server stopping");
    /* claimed as the server stops or freezes: ends at once */
    atomic_init(&r->abort, s->stopping || s->freeze.frozen);
    r->on_done = on_run_done;
    r->ctx = s;
    j->run = r;
    j->run_id = id;
    set_state(j, JOB_RUNNING);
    fl_info("%s: run %lld starts (due %lld)", j->e->name, (long long)id, (long long)j->wait_due_s);
    int rc = fl_serve_run_start(r);
    if (rc < 0) {
        /* the row stays `running`: the next start records it ABORTED */
        fl_error("%s: cannot start a thread for run %lld: %s", j->e->name, (long long)id,
                 strerror(-rc));
        j->run = NULL;
        free(r);
        set_state(j, JOB_IDLE);
    }
}

static void on_done_async(uv_async_t *a)
{
    struct sched *s = a->data;
    uv_mutex_lock(&s->done_mu);
    size_t n = s->n_done;
    struct fl_serve_run **done = s->done_copy;
    memcpy(done, s->done, n * sizeof(*done));
    s->n_done = 0;
    uv_mutex_unlock(&s->done_mu);
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < s->n_jobs; k++) {
            struct job *j = &s->jobs[k];
            if (j->run == done[i]) {
                notify_run(s, j, done[i]);
                j->run = NULL;
                j->manual = false;
                set_state(j, JOB_IDLE);
            }
        }
        free(done[i]);
    }
    try_start(s);
    maybe_end(s);
}

/* ---------------------------------------------------------------- due times */

static void arm_due(struct job *j)
{
    int64_t now_ms = (int64_t)fl_now_ms();
    int64_t at_ms = j->next_due_s * 1000;
    fl_metrics_next(j->s->metrics, j->e->name, j->next_due_s);
    j->armed = true;
    uv_timer_start(&j->due_timer, on_due, at_ms > now_ms ? (uint64_t)(at_ms - now_ms) : 0, 0);
}

/* A due time arrived: it waits to start, or is a skip row at once. */
static void due(struct job *j, int64_t due_s)
{
    char prev[40];
    if (fl_format_rfc3339((uint64_t)j->wait_due_s * 1000, prev, sizeof(prev)) < 0)
        snprintf(prev, sizeof(prev), "%lld", (long long)j->wait_due_s);
    if (held_back(j, due_s))
        return;
    if (active(j)) {
        skip(j, due_s, "still running: the run of due time %s has not ended", prev);
        return;
    }
    if (j->state == JOB_WAITING) {
        skip(j, due_s, "still waiting to start the due time %s", prev);
        return;
    }
    int64_t start_s = due_s;
    int rc = fl_schedule_start_at(j->sc, &j->tz, j->e->name, due_s, &start_s);
    if (rc == -ETIMEDOUT) {
        skip(j, due_s, "outside its window until after starting_deadline");
        return;
    }
    if (rc < 0) {
        skip(j, due_s, "missed: no start time (%s)", strerror(-rc));
        return;
    }
    j->wait_due_s = due_s;
    j->wait_start_ms = start_s * 1000;
    j->wait_deadline_ms = (due_s + j->sc->starting_deadline_s) * 1000;
    set_state(j, JOB_WAITING);
}

/* One job's due time d has come: re-arm for the next, then the due time. */
static void fire(struct job *j)
{
    struct sched *s = j->s;
    int64_t d = j->next_due_s;
    int64_t next;
    uv_timer_stop(&j->due_timer);
    j->armed = false;
    if (fl_schedule_next(j->sc, &j->tz, s->origin_s, d, &next) == 0) {
        j->next_due_s = next;
        arm_due(j);
    } else {
        fl_warn("%s: no due time after %lld: the schedule ends", j->e->name, (long long)d);
    }
    due(j, d);
}

/* A due timer fired. Every job due by then fires now, before anything
 * starts: timers of one due time expire one by one (even in different loop
 * iterations), and the first would otherwise start before the others wait,
 * so ties would always go to whichever timer ran first. */
static void on_due(uv_timer_t *t)
{
    struct job *j = t->data;
    struct sched *s = j->s;
    if (s->stopping)
        return;
    int64_t d = j->next_due_s;
    for (size_t i = 0; i < s->n_jobs; i++)
        if (s->jobs[i].armed && s->jobs[i].next_due_s <= d)
            fire(&s->jobs[i]);
    try_start(s);
}

/* ---------------------------------------------------------------- starting */

static void on_wake(uv_timer_t *t)
{
    try_start(t->data);
}

/* Every WAITING job, earliest due first, that may start now does. */
static void try_start(struct sched *s)
{
    if (s->stopping || s->freeze.frozen)
        return;
    int64_t now = (int64_t)fl_now_ms();
    int64_t wake = INT64_MAX;
    size_t n = s->n_jobs;
    struct job **order = s->order;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (s->jobs[i].state == JOB_WAITING)
            order[m++] = &s->jobs[i];
    /* insertion sort by due time; ties: the job that started least recently
     * first (so two experiments on the same hosts and the same schedule take
     * turns), then file order */
    for (size_t i = 1; i < m; i++)
        for (size_t k = i; k > 0 && (order[k]->wait_due_s < order[k - 1]->wait_due_s ||
                                     (order[k]->wait_due_s == order[k - 1]->wait_due_s &&
                                      order[k]->last_start_ms < order[k - 1]->last_start_ms));
             k--) {
            struct job *tmp = order[k];
            order[k] = order[k - 1];
            order[k - 1] = tmp;
        }
    bool *held = s->held;
    memset(held, 0, n * sizeof(*held));
    for (size_t i = 0; i < m; i++) {
        struct job *j = order[i];
        if (now < j->wait_start_ms) {
            if (j->wait_start_ms < wake)
                wake = j->wait_start_ms;
            continue;
        }
        char busy[200];
        bool shared = false;
        for (size_t k = 0; !shared && k < n; k++) {
            struct job *o = &s->jobs[k];
            if (o != j && (active(o) || held[k]))
                shared = shared_host(j, o, busy, sizeof(busy));
        }
        bool full = s->active >= s->c->max_concurrent_runs;
        if (!shared && !full) {
            set_state(j, JOB_CLAIMING);
            j->last_start_ms = now;
            if (queue(s, WORK_CLAIM, j, j->wait_due_s * 1000, NULL) < 0)
                set_state(j, JOB_IDLE);
            continue;
        }
        if (now >= j->wait_deadline_ms) {
            int64_t d = j->wait_due_s;
            set_state(j, JOB_IDLE);
            if (shared)
                skip(j, d, "hosts busy: %s (waited starting_deadline)", busy);
            else
                skip(j, d, "max_concurrent_runs (%u) reached (waited starting_deadline)",
                     s->c->max_concurrent_runs);
            continue;
        }
        held[j - s->jobs] = true; /* a later due time that shares its hosts waits behind it */
        if (j->wait_deadline_ms < wake)
            wake = j->wait_deadline_ms;
    }
    if (wake != INT64_MAX) {
        int64_t delay = wake - now;
        if (delay > FL_SCHED_RECHECK_MS)
            delay = FL_SCHED_RECHECK_MS;
        uv_timer_start(&s->wake, on_wake, delay > 0 ? (uint64_t)delay : 0, 0);
    }
}

/* ---------------------------------------------------------------- retention */

static void on_prune(uv_timer_t *t)
{
    struct sched *s = t->data;
    if (!s->stopping)
        queue(s, WORK_PRUNE, NULL, 0, NULL);
}

/* ---------------------------------------------------------------- stopping */

static void close_all(struct sched *s)
{
    for (size_t i = 0; i < s->n_jobs; i++)
        uv_close((uv_handle_t *)&s->jobs[i].due_timer, NULL);
    uv_close((uv_handle_t *)&s->wake, NULL);
    uv_close((uv_handle_t *)&s->prune_timer, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->done_async, NULL);
    reload_close(s);
}

static void maybe_end(struct sched *s)
{
    if (!s->stopping || s->active > 0 || s->work > 0 || uv_is_closing((uv_handle_t *)&s->wake))
        return;
    if (!hooks_stopped(s))
        return; /* called again when the last webhook delivery is done */
    fl_info("every run ended and is recorded: stopping");
    close_all(s);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct sched *s = h->data;
    if (s->stopping) {
        fl_warn("%s again: still waiting for %u run(s) to revert and end", strsignal(signum),
                s->active);
        return;
    }
    fl_warn("%s: stopping; aborting %u running experiment(s)", strsignal(signum), s->active);
    s->stopping = true;
    fl_control_stop(s->control);
    s->control = NULL;
    uv_timer_stop(&s->wake);
    uv_timer_stop(&s->prune_timer);
    for (size_t i = 0; i < s->n_jobs; i++) {
        struct job *j = &s->jobs[i];
        uv_timer_stop(&j->due_timer);
        if (j->state == JOB_RUNNING)
            atomic_store(&j->run->abort, true);
        if (j->state == JOB_WAITING) {
            int64_t d = j->wait_due_s;
            set_state(j, JOB_IDLE);
            skip(j, d, "server stopping before the run started");
        }
    }
    maybe_end(s);
}

/* ---------------------------------------------------------------- control
 * faultline freeze / thaw / pause / resume / run-now (control.h). The state
 * lives here, in memory, and in the store (written by control.c, read at
 * start by load_control_state). */

static struct job *find_job(struct sched *s, const char *name, char *msg, size_t len)
{
    for (size_t i = 0; i < s->n_jobs; i++)
        if (strcmp(s->jobs[i].e->name, name) == 0)
            return &s->jobs[i];
    int n = snprintf(msg, len, "no scheduled experiment named '%s' (scheduled:", name);
    for (size_t i = 0; i < s->n_jobs && n > 0 && (size_t)n < len; i++)
        n += snprintf(msg + n, len - (size_t)n, "%s %s", i ? "," : "", s->jobs[i].e->name);
    if (n > 0 && (size_t)n < len)
        snprintf(msg + n, len - (size_t)n, "%s)", s->n_jobs ? "" : " none");
    return NULL;
}

/* A due time while frozen or paused: a skip row, nothing starts. */
static bool held_back(struct job *j, int64_t due_s)
{
    if (j->s->freeze.frozen) {
        skip(j, due_s, "frozen: %s", j->s->freeze.reason);
        return true;
    }
    if (j->ctl_paused) {
        skip(j, due_s, "paused");
        return true;
    }
    return false;
}

static int ctl_freeze(void *ctx, const char *reason, const char *who, unsigned *aborted,
                      struct fl_control_freeze *st, char *msg, size_t len)
{
    struct sched *s = ctx;
    (void)msg;
    (void)len;
    *aborted = 0;
    if (s->freeze.frozen) {
        *st = s->freeze;
        return 1;
    }
    s->freeze.frozen = true;
    snprintf(s->freeze.reason, sizeof(s->freeze.reason), "%s", reason);
    snprintf(s->freeze.who, sizeof(s->freeze.who), "%s", who);
    s->freeze.since_ms = (int64_t)fl_now_ms();
    fl_metrics_frozen(s->metrics, true);
    uv_timer_stop(&s->wake);
    for (size_t i = 0; i < s->n_jobs; i++) {
        struct job *j = &s->jobs[i];
        if (j->state == JOB_RUNNING && !atomic_load(&j->run->abort)) {
            /* the text first: the run reads it once it sees the flag */
            snprintf(j->run->abort_text, sizeof(j->run->abort_text), "frozen: %s", reason);
            atomic_store(&j->run->abort, true);
            (*aborted)++;
        } else if (j->state == JOB_CLAIMING) {
            (*aborted)++; /* starts with its abort flag set (start_run) */
        } else if (j->state == JOB_WAITING) {
            int64_t d = j->wait_due_s;
            set_state(j, JOB_IDLE);
            skip(j, d, "frozen: %s", reason);
        }
    }
    fl_warn("FROZEN (%s, by %s): %u run(s) aborted; nothing starts until faultline thaw", reason,
            who, *aborted);
    char said[sizeof(s->freeze.reason) + sizeof(s->freeze.who) + 8];
    snprintf(said, sizeof(said), "%s (by %s)", reason, who);
    fl_webhook_event_freeze(s->hooks, said, *aborted);
    *st = s->freeze;
    return 0;
}

static int ctl_thaw(void *ctx, struct fl_control_freeze *st, char *msg, size_t len)
{
    struct sched *s = ctx;
    (void)msg;
    (void)len;
    if (!s->freeze.frozen) {
        *st = s->freeze;
        return 1;
    }
    memset(&s->freeze, 0, sizeof(s->freeze));
    fl_metrics_frozen(s->metrics, false);
    fl_warn("thawed: experiments start again at their next due time");
    fl_webhook_event_thaw(s->hooks);
    *st = s->freeze;
    try_start(s);
    return 0;
}

static int ctl_pause(void *ctx, const char *name, bool paused, bool *changed, char *msg, size_t len)
{
    struct sched *s = ctx;
    struct job *j = find_job(s, name, msg, len);
    if (j == NULL)
        return -ENOENT;
    if (j->sc->paused) {
        snprintf(msg, len,
                 "%s is paused in its file (schedule: paused: true) and so not scheduled; "
                 "change %s instead",
                 name, j->e->path);
        return -EINVAL;
    }
    *changed = j->ctl_paused != paused;
    j->ctl_paused = paused;
    if (paused && j->state == JOB_WAITING) {
        int64_t d = j->wait_due_s;
        set_state(j, JOB_IDLE);
        skip(j, d, "paused");
    }
    return 0;
}

static int ctl_run_now(void *ctx, const char *name, struct fl_control_req *q, char *msg, size_t len)
{
    struct sched *s = ctx;
    char when[40];
    if (s->stopping) {
        snprintf(msg, len, "refused: faultline serve is stopping");
        return -EBUSY;
    }
    if (s->freeze.frozen) {
        if (fl_format_rfc3339((uint64_t)s->freeze.since_ms, when, sizeof(when)) < 0)
            snprintf(when, sizeof(when), "?");
        snprintf(msg, len, "refused: frozen since %s (%s, by %s); faultline thaw first", when,
                 s->freeze.reason, s->freeze.who);
        return -EPERM;
    }
    struct job *j = find_job(s, name, msg, len);
    if (j == NULL)
        return -ENOENT;
    if (fl_format_rfc3339((uint64_t)j->wait_due_s * 1000, when, sizeof(when)) < 0)
        snprintf(when, sizeof(when), "?");
    if (active(j)) {
        snprintf(msg, len, "refused: %s is already running (due time %s)", name, when);
        return -EBUSY;
    }
    if (j->state == JOB_WAITING) {
        snprintf(msg, len, "refused: %s is waiting to start its due time %s; try after it", name,
                 when);
        return -EBUSY;
    }
    for (size_t k = 0; k < s->n_jobs; k++) {
        struct job *o = &s->jobs[k];
        char h[200];
        if (o != j && (active(o) || o->state == JOB_WAITING) && shared_host(j, o, h, sizeof(h))) {
            snprintf(msg, len, "refused: hosts busy: %s (%s is %s)", h, o->e->name,
                     active(o) ? "running" : "waiting to start");
            return -EBUSY;
        }
    }
    if (s->active >= s->c->max_concurrent_runs) {
        snprintf(msg, len, "refused: max_concurrent_runs (%u) runs are going",
                 s->c->max_concurrent_runs);
        return -EBUSY;
    }
    int64_t now_ms = (int64_t)fl_now_ms();
    j->wait_due_s = now_ms / 1000;
    j->wait_start_ms = j->wait_deadline_ms = now_ms;
    set_state(j, JOB_WAITING);
    set_state(j, JOB_CLAIMING);
    j->last_start_ms = now_ms;
    j->manual = true;
    j->manual_q = q;
    if (queue(s, WORK_CLAIM, j, j->wait_due_s * 1000, NULL) < 0) {
        j->manual = false;
        j->manual_q = NULL;
        set_state(j, JOB_IDLE);
        snprintf(msg, len, "cannot queue the claim of the run");
        return -EIO;
    }
    return 0;
}

/* A claim's outcome, for a run-now waiting for its answer. */
static void claimed(struct job *j, fl_store_rc rc, int64_t id)
{
    struct fl_control_req *q = j->manual_q;
    if (rc != FL_STORE_OK)
        j->manual = false;
    if (q == NULL)
        return;
    j->manual_q = NULL;
    char msg[512], when[40];
    if (fl_format_rfc3339((uint64_t)j->wait_due_s * 1000, when, sizeof(when)) < 0)
        snprintf(when, sizeof(when), "?");
    if (rc == FL_STORE_OK && j->s->freeze.frozen) {
        snprintf(msg, sizeof(msg),
                 "frozen while run %lld of %s was starting: it is recorded ABORTED", (long long)id,
                 j->e->name);
        fl_control_answer_run(q, 0, -EPERM, msg);
    } else if (rc == FL_STORE_OK) {
        snprintf(msg, sizeof(msg),
                 "%s: manual run %lld started (due time %s); faultline history shows it",
                 j->e->name, (long long)id, when);
        fl_control_answer_run(q, id, 0, msg);
    } else if (rc == FL_STORE_ALREADY) {
        snprintf(msg, sizeof(msg),
                 "%s: due time %s already has its row (a scheduled due time in the same "
                 "second); try again",
                 j->e->name, when);
        fl_control_answer_run(q, 0, -EBUSY, msg);
    } else {
        snprintf(msg, sizeof(msg),
                 "%s: cannot record the run in the history store (see the serve log)", j->e->name);
        fl_control_answer_run(q, 0, -EIO, msg);
    }
}

static const struct fl_control_ops control_ops = {
    .freeze = ctl_freeze,
    .thaw = ctl_thaw,
    .pause = ctl_pause,
    .run_now = ctl_run_now,
};

/* The freeze and the pauses a previous server stored. */
static void load_control_state(struct sched *s)
{
    bool frozen = false;
    char *reason = NULL, *who = NULL;
    int64_t since = 0;
    if (fl_store_get_frozen(s->store, &frozen, &reason, &who, &since) != FL_STORE_OK) {
        fl_error("%s", fl_store_error(s->store));
    } else if (frozen) {
        s->freeze.frozen = true;
        snprintf(s->freeze.reason, sizeof(s->freeze.reason), "%s", reason ? reason : "");
        snprintf(s->freeze.who, sizeof(s->freeze.who), "%s", who ? who : "");
        s->freeze.since_ms = since;
        fl_warn("FROZEN since %lld (%s, by %s): nothing starts until faultline thaw",
                (long long)since / 1000, s->freeze.reason, s->freeze.who);
    }
    free(reason);
    free(who);
    fl_metrics_frozen(s->metrics, s->freeze.frozen);
    for (size_t i = 0; i < s->n_jobs; i++) {
        struct job *j = &s->jobs[i];
        if (fl_store_is_paused(s->store, j->e->name, &j->ctl_paused) != FL_STORE_OK)
            fl_error("%s", fl_store_error(s->store));
        else if (j->ctl_paused)
            fl_warn("%s: paused (faultline pause): its due times are skipped until faultline "
                    "resume",
                    j->e->name);
    }
}

/* The control channel's key: key_file, $FAULTLINE_KEY, else the one key
 * every scheduled experiment uses. */
static int control_key(struct sched *s, struct fl_key *key, char *err, size_t errlen)
{
    const char *path = s->c->key_file;
    if (path == NULL)
        path = getenv("FAULTLINE_KEY");
    if (path != NULL && path[0] != '\0') {
        char why[512];
        if (fl_key_load(path, key, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "listen_control: %s", why);
            return -EINVAL;
        }
        return 0;
    }
    for (size_t i = 0; i < s->n_jobs; i++)
        if (memcmp(&s->jobs[i].key, &s->jobs[0].key, sizeof(*key)) != 0) {
            snprintf(err, errlen,
                     "listen_control: the experiments use different keys; name the control "
                     "channel's with key_file (or --key-file), or set listen_control: off");
            return -EINVAL;
        }
    if (s->n_jobs == 0) {
        snprintf(err, errlen,
                 "listen_control: no key: set key_file (or --key-file, $FAULTLINE_KEY), or "
                 "listen_control: off");
        return -EINVAL;
    }
    *key = s->jobs[0].key;
    return 0;
}

static int start_control(struct sched *s, char *err, size_t errlen)
{
    if (strcmp(s->c->listen_control, "off") == 0) {
        fl_info("listen_control: off (no freeze, thaw, pause, run-now from the network)");
        return 0;
    }
    struct fl_key key;
    int rc = control_key(s, &key, err, errlen);
    if (rc == 0)
        rc = fl_control_start(&s->loop, s->c->listen_control, &key, s->store, &control_ops, s,
                              &s->control, err, errlen);
    fl_key_wipe(&key);
    if (rc == 0)
        fl_info("control channel on %s (faultline freeze/thaw/pause/resume/run-now, history "
                "--server)",
                s->c->listen_control);
    return rc;
}

/* ---------------------------------------------------------------- start-up */

/* Rows a killed server left `running`: ABORTED now, never running forever.
 * Their report folder (the runner's DIR/EXPERIMENT/RUN_ID, with what the run
 * wrote before it died) goes into the row, so retention removes it too. */
static void record_interrupted(fl_store *store, const char *reports_dir)
{
    fl_store_row *rows = NULL;
    size_t n = 0;
    if (fl_store_interrupted(store, &rows, &n) != FL_STORE_OK) {
        fl_error("%s", fl_store_error(store));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        fl_store_row r = {.verdict = (char *)"ABORTED",
                          .reason = (char *)"server died during the run",
                          .recovery_ms = -1,
                          .resolution_ms = -1,
                          .rpo_ms = -1,
                          .started_ms = rows[i].started_ms,
                          .ended_ms = (int64_t)fl_now_ms(),
                          .flags = rows[i].flags, /* "manual" from the claim */
                          .report_folder = rows[i].report_folder};
        char folder[4096];
        struct stat st;
        snprintf(folder, sizeof(folder), "%s/%s/%lld", reports_dir, rows[i].experiment,
                 (long long)rows[i].id);
        if (r.report_folder == NULL && stat(folder, &st) == 0 && S_ISDIR(st.st_mode))
            r.report_folder = folder;
        if (fl_store_finish(store, rows[i].id, &r) != FL_STORE_OK)
            fl_error("%s", fl_store_error(store));
        else
            fl_warn("%s: run %lld (due %lld) was running when the server died: recorded "
                    "ABORTED; the agents' leases reverted its faults",
                    rows[i].experiment, (long long)rows[i].id, (long long)rows[i].due_ms / 1000);
    }
    fl_store_rows_free(rows, n);
}

/* Metrics start from history, so that they agree with it. */
static void seed_metrics(struct sched *s, const struct job *j)
{
    fl_store_row *rows = NULL;
    size_t n = 0;
    fl_metrics_hidden(s->metrics, j->e->name); /* shown once its job is installed */
    if (fl_store_query_brief(s->store, j->e->name, 0, 0, 0, &rows, &n) != FL_STORE_OK) {
        fl_error("%s", fl_store_error(s->store));
        return;
    }
    for (size_t i = n; i-- > 0;) {
        const fl_store_row *r = &rows[i];
        if (strcmp(r->state, "skipped") == 0)
            fl_metrics_skip(s->metrics, j->e->name,
                            fl_metrics_skip_class(r->reason ? r->reason : ""));
        else if (strcmp(r->state, "finished") == 0 && r->verdict != NULL)
            fl_metrics_run(s->metrics, j->e->name, r->verdict, r->ended_ms, r->recovery_ms,
                           r->resolution_ms, r->flags && strstr(r->flags, "regressed"));
    }
    fl_store_rows_free(rows, n);
}

/* The addresses a job's runs fault and measure: its blast radius. */
static int job_hosts(struct job *j, char *err, size_t errlen)
{
    return fl_radius_of(j->e, &j->radius, err, errlen);
}

static int job_init(struct sched *s, struct job *j, const struct fl_catalog_entry *entry, char *err,
                    size_t errlen)
{
    j->s = s;
    j->entry = entry;
    j->e = entry->e;
    j->sc = entry->e->schedule;
    const char *key_path = s->c->key_file;
    if (key_path == NULL)
        key_path = getenv("FAULTLINE_KEY");
    if (key_path == NULL || key_path[0] == '\0')
        key_path = j->e->inventory.key_file;
    if (key_path == NULL) {
        snprintf(err, errlen,
                 "%s: no key: set key_file in the serve config, $FAULTLINE_KEY, or the "
                 "inventory's key_file",
                 j->e->path);
        return -EINVAL;
    }
    char why[512];
    if (fl_key_load(key_path, &j->key, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "%s: %s", j->e->path, why);
        return -EINVAL;
    }
    const char *zone = j->sc->timezone[0] ? j->sc->timezone : s->c->timezone;
    int rc = zone != NULL ? fl_tz_load(NULL, zone, &j->tz, why, sizeof(why))
                          : fl_tz_load_local(&j->tz, why, sizeof(why));
    if (rc < 0) {
        fl_key_wipe(&j->key);
        snprintf(err, errlen, "%s: %s", j->e->path, why);
        return rc;
    }
    if ((rc = job_hosts(j, err, errlen)) < 0) {
        fl_key_wipe(&j->key);
        fl_tz_free(&j->tz);
        return rc;
    }
    return 0;
}

/* Cron after downtime: the due times missed since the last *scheduled* row
 * (a run or a skip of a due time). A run-now after it stood for no slot of
 * the schedule, so it does not hide the slots the server was down for. With
 * no scheduled row (a new experiment, or only run-now rows) nothing was
 * missed: the schedule starts now. */
static void plan_missed(struct sched *s, struct job *j, int64_t now_s)
{
    if (j->sc->kind != FL_SCHED_CRON)
        return; /* every: counts from this start, nothing was missed */
    int64_t last_ms = 0;
    bool found = false;
    if (fl_store_last_scheduled_due(s->store, j->e->name, &last_ms, &found) != FL_STORE_OK) {
        fl_error("%s: missed due times not recorded: %s", j->e->name, fl_store_error(s->store));
        return;
    }
    if (!found)
        return;
    int64_t last = last_ms / 1000;
    struct fl_missed_plan plan;
    if (fl_schedule_missed(j->sc, &j->tz, s->origin_s, last, now_s, &plan) < 0)
        return;
    size_t recorded = 0;
    int64_t d = last;
    while (fl_schedule_next(j->sc, &j->tz, s->origin_s, d, &d) == 0 && d <= now_s) {
        if (plan.run && d == plan.run_at)
            continue;
        if (recorded == FL_SERVE_MISSED_ROWS_MAX) {
            fl_warn("%s: more than %d due times were missed while the server was down; only "
                    "the first %d are recorded (FL_SERVE_MISSED_ROWS_MAX)",
                    j->e->name, FL_SERVE_MISSED_ROWS_MAX, FL_SERVE_MISSED_ROWS_MAX);
            break;
        }
        skip(j, d, "missed: the server was not running");
        recorded++;
    }
    if (plan.run)
        due(j, plan.run_at);
}

/* ---------------------------------------------------------------- webhooks */

static void notify_run(struct sched *s, const struct job *j, const struct fl_serve_run *r)
{
    struct fl_webhook_run w = {.experiment = j->e->name,
                               .run_id = r->id,
                               .due_ms = r->due_ms,
                               .verdict = r->verdict,
                               .reason = r->reason[0] ? r->reason : NULL,
                               .recovery_ms = r->recovery_ms,
                               .resolution_ms = r->resolution_ms,
                               .baseline_ms = r->baseline_ms,
                               .regressed = r->regressed,
                               .report = r->report[0] ? r->report : NULL};
    fl_webhook_event_run(s->hooks, &w);
}

/* The newest PASS or FAIL of the experiment in history (among its newest
 * FL_SERVE_SEED_ROWS rows) into out, or "" . Blocks: at start, or on a
 * reload's worker thread. */
static void history_verdict(struct sched *s, const char *experiment, char *out, size_t outlen)
{
    fl_store_row *rows = NULL;
    size_t n = 0;
    out[0] = '\0';
    if (fl_store_query_brief(s->store, experiment, 0, FL_SERVE_SEED_ROWS, 0, &rows, &n) !=
        FL_STORE_OK) {
        fl_error("%s: `recovered` not seeded from history: %s", experiment,
                 fl_store_error(s->store));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *v = rows[i].verdict;
        if (v != NULL && (strcmp(v, "FAIL") == 0 || strncmp(v, "PASS", 4) == 0)) {
            snprintf(out, outlen, "%s", v);
            break;
        }
    }
    fl_store_rows_free(rows, n);
}

/* At start: the newest PASS or FAIL in history, so `recovered` survives a
 * restart. */
static void seed_webhooks(struct sched *s, const struct job *j)
{
    char v[24];
    history_verdict(s, j->e->name, v, sizeof(v));
    if (v[0] != '\0')
        fl_webhooks_note_verdict(s->hooks, j->e->name, v);
}

static void on_hooks_stopped(void *ctx)
{
    struct sched *s = ctx;
    s->hooks_stop = 2;
    maybe_end(s);
}

/* At the end: deliveries in flight get their grace, then the loop ends. */
static bool hooks_stopped(struct sched *s)
{
    if (s->hooks_stop == 0) {
        s->hooks_stop = 1;
        fl_webhooks_stop(s->hooks, on_hooks_stopped, s);
    }
    return s->hooks_stop == 2;
}

/* ---------------------------------------------------------------- reload */

struct reload_snap {
    char *path;
    char hash[65];
    bool seen; /* in the new catalog (valid or not) */
};

struct reload_work {
    uv_work_t req;
    struct sched *s;
    struct reload_snap *snap;
    size_t n_snap;
    int rc;
    char err[1024];
    struct job **prepared; /* new and changed files, job_init'd */
    size_t n_prepared;
    size_t n_invalid, n_unscheduled;
};

/* A prepared job that is not used: everything it holds. */
static void job_drop(struct job *j)
{
    if (j == NULL)
        return;
    fl_key_wipe(&j->key);
    fl_tz_free(&j->tz);
    fl_radius_free(&j->radius);
    if (j->owns)
        fl_experiment_free(&j->own.e);
    free(j);
}

/* On a worker thread: reads the directory again, prepares the jobs of new
 * and changed files (keys, time zones, hosts: blocking file I/O). */
static void reload_run(uv_work_t *req)
{
    struct reload_work *rw = req->data;
    struct sched *s = rw->s;
    struct fl_catalog cat;
    rw->rc = fl_catalog_reload(s->c->experiments, s->c->inventory, &cat, rw->err, sizeof(rw->err));
    if (rw->rc < 0)
        return;
    rw->n_invalid = cat.n_invalid;
    rw->n_unscheduled = cat.n_unscheduled;
    rw->prepared = calloc(cat.n ? cat.n : 1, sizeof(*rw->prepared));
    if (rw->prepared == NULL) {
        rw->rc = -ENOMEM;
        snprintf(rw->err, sizeof(rw->err), "out of memory");
        fl_catalog_free(&cat);
        return;
    }
    for (size_t k = 0; k < rw->n_snap; k++)
        for (size_t i = 0; i < cat.n_invalid && !rw->snap[k].seen; i++)
            rw->snap[k].seen = strcmp(cat.invalid[i], rw->snap[k].path) == 0;
    for (size_t i = 0; i < cat.n; i++) {
        struct reload_snap *old = NULL;
        for (size_t k = 0; old == NULL && k < rw->n_snap; k++)
            if (strcmp(rw->snap[k].path, cat.entries[i].e->path) == 0)
                old = &rw->snap[k];
        if (old != NULL)
            old->seen = true;
        if (old != NULL && strcmp(old->hash, cat.entries[i].hash) == 0)
            continue; /* unchanged */
        struct job *nj = calloc(1, sizeof(*nj));
        if (nj == NULL) {
            fl_error("%s: out of memory reloading it (%s)", cat.entries[i].e->path,
                     old ? "its previous version keeps its schedule" : "not scheduled");
            continue;
        }
        nj->own = cat.entries[i];
        nj->owns = true;
        cat.entries[i].e = NULL;
        char why[1024];
        if (job_init(s, nj, &nj->own, why, sizeof(why)) < 0) {
            fl_error("%s (%s)", why,
                     old ? "its previous version keeps its schedule" : "not scheduled");
            fl_experiment_free(&nj->own.e);
            free(nj);
            continue;
        }
        if (!fl_metrics_known(s->metrics, nj->e->name))
            seed_metrics(s, nj);
        /* taken on the loop at install, unless a verdict of that name was
         * seen there already (fl_webhooks_seed_verdict) */
        history_verdict(s, nj->e->name, nj->seed_verdict, sizeof(nj->seed_verdict));
        rw->prepared[rw->n_prepared++] = nj;
    }
    fl_catalog_free(&cat);
}

/* The live job of that file, or NULL. */
static struct job *job_by_path(struct sched *s, const char *path)
{
    for (size_t i = 0; i < s->n_jobs; i++) {
        struct job *j = &s->jobs[i];
        if (!j->gone && !j->removing && strcmp(j->e->path, path) == 0)
            return j;
    }
    return NULL;
}

/* Frees what the slot holds (not its timer); the slot is then empty. */
static void job_release(struct job *j)
{
    fl_key_wipe(&j->key);
    fl_tz_free(&j->tz);
    fl_radius_free(&j->radius);
    if (j->owns)
        fl_experiment_free(&j->own.e);
    j->owns = false;
    j->entry = NULL;
    j->e = NULL;
    j->sc = NULL;
}

/* An idle, empty slot takes a prepared job's contents, and is armed. */
static void job_install(struct sched *s, struct job *slot, struct job *nj)
{
    assert(slot->state == JOB_IDLE && slot->run == NULL && slot->refs == 0);
    slot->s = s;
    slot->own = nj->own;
    slot->owns = nj->owns;
    slot->entry = &slot->own;
    slot->e = slot->own.e;
    slot->sc = slot->e->schedule;
    slot->key = nj->key;
    slot->tz = nj->tz;
    slot->radius = nj->radius;
    slot->gone = slot->removing = slot->armed = false;
    slot->next_version = NULL;
    if (nj->seed_verdict[0] != '\0')
        fl_webhooks_seed_verdict(s->hooks, slot->e->name, nj->seed_verdict);
    free(nj); /* its contents are the slot's now */
    if (slot->sc->paused) {
        fl_info("%s: paused (schedule: paused: true): not scheduled", slot->e->name);
        return;
    }
    int64_t now_s = (int64_t)(fl_now_ms() / 1000);
    if (fl_schedule_next(slot->sc, &slot->tz, s->origin_s, now_s, &slot->next_due_s) < 0) {
        fl_warn("%s: the schedule has no due time ahead", slot->e->name);
        return;
    }
    fl_info("%s: scheduled (%s); next due time %lld", slot->e->name, slot->e->path,
            (long long)slot->next_due_s);
    arm_due(slot);
}

/* A new file: the first free slot. */
static void job_add(struct sched *s, struct job *nj)
{
    struct job *slot = NULL;
    for (size_t i = 0; slot == NULL && i < s->n_jobs; i++)
        if (s->jobs[i].gone)
            slot = &s->jobs[i];
    if (slot == NULL && s->n_jobs < FL_SERVE_JOB_SLOTS) {
        slot = &s->jobs[s->n_jobs++];
        uv_timer_init(&s->loop, &slot->due_timer);
        slot->due_timer.data = slot;
    }
    if (slot == NULL) {
        fl_error("%s: not scheduled: all %d job slots are taken (FL_SERVE_JOB_SLOTS; removed "
                 "experiments still running hold theirs); the next reload tries again",
                 nj->e->path, FL_SERVE_JOB_SLOTS);
        job_drop(nj);
        return;
    }
    fl_metrics_job_add(s->metrics, nj->e->name);
    job_install(s, slot, nj);
}

/* A removed file: no more due times; a waiting one is a skip row. */
static void job_remove(struct job *j)
{
    j->removing = true;
    uv_timer_stop(&j->due_timer);
    j->armed = false;
    fl_metrics_next_clear(j->s->metrics, j->e->name);
    job_drop(j->next_version);
    j->next_version = NULL;
    if (j->state == JOB_WAITING) {
        int64_t d = j->wait_due_s;
        set_state(j, JOB_IDLE);
        skip(j, d, "its file was removed before the run started");
    }
    fl_info("%s: %s was removed: its schedule ends%s", j->e->name, j->e->path,
            active(j) ? " once the running run finishes" : "");
}

static void on_reload_tick(uv_timer_t *t);

/* Removals and new versions that wait for their job to be idle (no run, no
 * store call reading it) are applied now if they can be. */
static void reload_settle(struct sched *s)
{
    bool waiting = false;
    for (size_t i = 0; i < s->n_jobs; i++) {
        struct job *j = &s->jobs[i];
        if (!j->removing && j->next_version == NULL)
            continue;
        if (j->state != JOB_IDLE || j->refs > 0) {
            waiting = true;
            continue;
        }
        if (j->removing) {
            fl_info("%s: ended (its file was removed)", j->e->name);
            fl_metrics_job_end(s->metrics, j->e->name); /* its series go */
            job_release(j);
            j->removing = false;
            j->gone = true;
            continue;
        }
        struct job *nj = j->next_version;
        j->next_version = NULL;
        /* the new name first: a name kept keeps its series without a gap */
        fl_metrics_job_add(s->metrics, nj->e->name);
        fl_metrics_job_end(s->metrics, j->e->name);
        job_release(j);
        job_install(s, j, nj);
    }
    if (waiting && !s->stopping)
        uv_timer_start(&s->reload_tick, on_reload_tick, FL_SCHED_RECHECK_MS, 0);
}

static void on_reload_tick(uv_timer_t *t)
{
    reload_settle(t->data);
}

static void reload_begin(struct sched *s);

/* The pages (another thread) list what is scheduled from now on: each
 * live job's newest version, removed files left out. */
static void pages_publish(struct sched *s, size_t n_unscheduled, size_t n_invalid)
{
    if (s->pages == NULL)
        return;
    struct fl_pages_entry *l = calloc(s->n_jobs ? s->n_jobs : 1, sizeof(*l));
    size_t n = 0;
    for (size_t i = 0; l != NULL && i < s->n_jobs; i++) {
        const struct job *j = &s->jobs[i];
        if (j->gone || j->removing)
            continue;
        const struct job *newest = j->next_version ? j->next_version : j;
        l[n].name = newest->e->name;
        l[n].schedule = newest->sc;
        n++;
    }
    if (l == NULL || fl_serve_pages_publish(s->pages, l, n, n_unscheduled, n_invalid) < 0)
        fl_error("reload: out of memory for the pages; they list the experiments as before");
    free(l);
}

static void reload_done(uv_work_t *req, int status)
{
    struct reload_work *rw = req->data;
    struct sched *s = rw->s;
    (void)status;
    s->work--;
    s->reload_busy = false;
    size_t added = 0, changed = 0, removed = 0;
    if (s->stopping) {
        for (size_t i = 0; i < rw->n_prepared; i++)
            job_drop(rw->prepared[i]);
    } else if (rw->rc < 0) {
        fl_error("reload refused: %s; every schedule stays as it was", rw->err);
    } else {
        for (size_t k = 0; k < rw->n_snap; k++) {
            struct job *j = rw->snap[k].seen ? NULL : job_by_path(s, rw->snap[k].path);
            if (j != NULL) {
                job_remove(j);
                removed++;
            }
        }
        for (size_t i = 0; i < rw->n_prepared; i++) {
            struct job *nj = rw->prepared[i];
            struct job *j = job_by_path(s, nj->e->path);
            if (j == NULL) {
                job_add(s, nj);
                added++;
                continue;
            }
            changed++;
            job_drop(j->next_version);
            j->next_version = nj;
            uv_timer_stop(&j->due_timer);
            j->armed = false;
            fl_info("%s: %s changed: the new version is scheduled %s", j->e->name, j->e->path,
                    j->state == JOB_IDLE ? "now" : "once the old version's due time ends");
        }
        fl_info("reload of %s: %zu new, %zu changed, %zu removed, %zu invalid (kept as they "
                "were)",
                s->c->experiments, added, changed, removed, rw->n_invalid);
        reload_settle(s);
        pages_publish(s, rw->n_unscheduled, rw->n_invalid);
    }
    for (size_t k = 0; k < rw->n_snap; k++)
        free(rw->snap[k].path);
    free(rw->snap);
    free(rw->prepared);
    free(rw);
    if (s->reload_again && !s->stopping) {
        s->reload_again = false;
        reload_begin(s);
    }
    try_start(s);
    maybe_end(s);
}

static void reload_begin(struct sched *s)
{
    if (s->stopping)
        return;
    if (s->reload_busy) {
        s->reload_again = true;
        return;
    }
    struct reload_work *rw = calloc(1, sizeof(*rw));
    if (rw == NULL || (rw->snap = calloc(s->n_jobs ? s->n_jobs : 1, sizeof(*rw->snap))) == NULL) {
        free(rw);
        fl_error("reload: out of memory; every schedule stays as it was");
        return;
    }
    rw->req.data = rw;
    rw->s = s;
    for (size_t i = 0; i < s->n_jobs; i++) {
        const struct job *j = &s->jobs[i];
        if (j->gone || j->removing)
            continue;
        const struct job *newest = j->next_version ? j->next_version : j;
        struct reload_snap *x = &rw->snap[rw->n_snap];
        if ((x->path = strdup(j->e->path)) == NULL)
            continue;
        memcpy(x->hash, newest->own.e ? newest->own.hash : newest->entry->hash, sizeof(x->hash));
        rw->n_snap++;
    }
    int rc = uv_queue_work(&s->loop, &rw->req, reload_run, reload_done);
    if (rc < 0) {
        fl_error("reload: cannot queue it: %s; every schedule stays as it was", uv_strerror(rc));
        for (size_t k = 0; k < rw->n_snap; k++)
            free(rw->snap[k].path);
        free(rw->snap);
        free(rw);
        return;
    }
    s->work++;
    s->reload_busy = true;
    fl_info("reloading %s", s->c->experiments);
}

static void on_sighup(uv_signal_t *h, int signum)
{
    (void)signum;
    fl_info("SIGHUP: reloading the experiments");
    reload_begin(h->data);
}

static void on_reload_debounce(uv_timer_t *t)
{
    reload_begin(t->data);
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    struct sched *s = h->data;
    (void)events;
    if (status < 0) {
        fl_warn("%s: watching for changes failed: %s (SIGHUP still reloads)", s->c->experiments,
                uv_strerror(status));
        return;
    }
    if (s->stopping || (filename != NULL && filename[0] == '.'))
        return;
    uv_timer_start(&s->reload_debounce, on_reload_debounce, FL_SERVE_RELOAD_DEBOUNCE_MS, 0);
}

static int reload_start(struct sched *s)
{
    uv_signal_init(&s->loop, &s->sighup);
    uv_timer_init(&s->loop, &s->reload_debounce);
    uv_timer_init(&s->loop, &s->reload_tick);
    uv_fs_event_init(&s->loop, &s->fsev);
    s->sighup.data = s->reload_debounce.data = s->reload_tick.data = s->fsev.data = s;
    uv_signal_start(&s->sighup, on_sighup, SIGHUP);
    if (!s->c->reload_on_change) {
        fl_info("%s: not watched for changes (reload_on_change: false); SIGHUP reloads",
                s->c->experiments);
        return 0;
    }
    int rc = uv_fs_event_start(&s->fsev, on_fs_event, s->c->experiments, 0);
    if (rc < 0)
        fl_warn("%s: cannot watch for changes: %s", s->c->experiments, uv_strerror(rc));
    return rc;
}

static void reload_close(struct sched *s)
{
    uv_close((uv_handle_t *)&s->sighup, NULL);
    uv_close((uv_handle_t *)&s->reload_debounce, NULL);
    uv_close((uv_handle_t *)&s->reload_tick, NULL);
    uv_close((uv_handle_t *)&s->fsev, NULL);
}

/* After the loop: the experiments and prepared versions reloads own (the
 * keys, zones and hosts of every slot are freed with the others). */
static void reload_free(struct sched *s)
{
    for (size_t i = 0; i < s->n_jobs; i++) {
        struct job *j = &s->jobs[i];
        job_drop(j->next_version);
        j->next_version = NULL;
        if (j->owns)
            fl_experiment_free(&j->own.e);
    }
}

int fl_scheduler_run(const struct fl_serve_config *c, struct fl_catalog *cat, fl_store *store,
                     struct fl_metrics *metrics, char *err, size_t errlen)
{
    struct sched *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->c = c;
    s->store = store;
    s->metrics = metrics;
    s->origin_s = (int64_t)(fl_now_ms() / 1000);
    size_t cap = FL_SERVE_JOB_SLOTS; /* fixed: a job's timer must never move */
    s->jobs = calloc(cap, sizeof(*s->jobs));
    s->done = calloc(cap, sizeof(*s->done));
    s->done_copy = calloc(cap, sizeof(*s->done_copy));
    s->order = calloc(cap, sizeof(*s->order));
    s->held = calloc(cap, sizeof(*s->held));
    int rc = s->jobs && s->done && s->done_copy && s->order && s->held ? uv_loop_init(&s->loop)
                                                                       : UV_ENOMEM;
    if (rc < 0) {
        snprintf(err, errlen, "cannot start the event loop: %s", uv_strerror(rc));
        free(s->jobs);
        free(s->done);
        free(s->done_copy);
        free(s->order);
        free(s->held);
        free(s);
        return rc;
    }
    s->hooks = fl_webhooks_new(&s->loop, c->webhooks, c->n_webhooks, metrics, err, errlen);
    if (s->hooks == NULL) {
        uv_loop_close(&s->loop);
        free(s->jobs);
        free(s->done);
        free(s->done_copy);
        free(s->order);
        free(s->held);
        free(s);
        return -ENOMEM;
    }
    record_interrupted(store, c->reports_dir);
    for (size_t i = 0; i < cat->n; i++) {
        char why[1024];
        struct job *j = &s->jobs[s->n_jobs];
        if (job_init(s, j, &cat->entries[i], why, sizeof(why)) < 0) {
            fl_error("%s (not scheduled)", why);
            continue;
        }
        s->n_jobs++;
    }
    uv_mutex_init(&s->done_mu);
    uv_async_init(&s->loop, &s->done_async, on_done_async);
    uv_timer_init(&s->loop, &s->wake);
    uv_timer_init(&s->loop, &s->prune_timer);
    uv_signal_init(&s->loop, &s->sigterm);
    uv_signal_init(&s->loop, &s->sigint);
    s->done_async.data = s->wake.data = s->prune_timer.data = s;
    s->sigterm.data = s->sigint.data = s;
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    if (reload_start(s) < 0)
        fl_warn("%s: reload on change is off; SIGHUP still reloads", c->experiments);
    uv_timer_start(&s->prune_timer, on_prune, 0, FL_SERVE_PRUNE_EVERY_MS);
    int64_t now_s = (int64_t)(fl_now_ms() / 1000);
    load_control_state(s);
    for (size_t i = 0; i < s->n_jobs; i++) {
        struct job *j = &s->jobs[i];
        uv_timer_init(&s->loop, &j->due_timer);
        j->due_timer.data = j;
        seed_metrics(s, j);
        fl_metrics_job_add(s->metrics, j->e->name);
        seed_webhooks(s, j);
        if (j->sc->paused) {
            fl_info("%s: paused (schedule: paused: true): not scheduled", j->e->name);
            continue;
        }
        plan_missed(s, j, now_s);
        if (fl_schedule_next(j->sc, &j->tz, s->origin_s, now_s, &j->next_due_s) < 0) {
            fl_warn("%s: the schedule has no due time ahead", j->e->name);
            continue;
        }
        fl_info("%s: scheduled; next due time %lld", j->e->name, (long long)j->next_due_s);
        arm_due(j);
    }
    struct fl_serve_http *http = NULL;
    struct fl_serve_pages *pages = NULL;
    if (strcmp(c->listen_http, "off") != 0) {
        int prc = fl_serve_pages_new(c->db, c->reports_dir, cat, metrics, &pages, err, errlen);
        s->pages = pages;
        if (prc < 0 ||
            fl_serve_http_start(c->listen_http, metrics, pages, &http, err, errlen) < 0) {
            fl_error("%s", err);
            rc = -EADDRINUSE;
            s->stopping = true; /* nothing started yet: close and return */
            for (size_t i = 0; i < s->n_jobs; i++)
                uv_timer_stop(&s->jobs[i].due_timer);
            maybe_end(s);
        } else {
            fl_info("/metrics on http://%s/metrics", c->listen_http);
            fl_info("pages on http://%s/ (read-only)", c->listen_http);
        }
    }
    if (!s->stopping && (rc = start_control(s, err, errlen)) < 0) {
        fl_error("%s", err);
        s->stopping = true; /* nothing started yet: close and return */
        for (size_t i = 0; i < s->n_jobs; i++)
            uv_timer_stop(&s->jobs[i].due_timer);
        maybe_end(s);
    }
    if (!s->stopping) {
        fl_info("serving %zu scheduled experiment(s)", s->n_jobs);
        try_start(s);
    }
    uv_run(&s->loop, UV_RUN_DEFAULT);
    fl_serve_http_stop(http);
    s->pages = NULL;
    fl_serve_pages_free(pages);
    if (uv_loop_close(&s->loop) != 0)
        fl_error("internal error: handles left open at the end");
    reload_free(s);
    fl_webhooks_free(s->hooks);
    for (size_t i = 0; i < s->n_jobs; i++) {
        fl_key_wipe(&s->jobs[i].key);
        fl_tz_free(&s->jobs[i].tz);
        fl_radius_free(&s->jobs[i].radius);
    }
    uv_mutex_destroy(&s->done_mu);
    free(s->jobs);
    free(s->done);
    free(s->done_copy);
    free(s->order);
    free(s->held);
    free(s);
    return rc;
}
