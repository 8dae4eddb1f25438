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
#include "controller/serve/http.h"
#include "controller/serve/metrics.h"
#include "controller/serve/pages.h"
#include "controller/serve/prune.h"
#include "controller/serve/runner.h"
#include "controller/serve/schedule.h"

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
    size_t *hosts; /* indices into the job's inventory */
    size_t n_hosts;
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
};

static void try_start(struct sched *s);
static void maybe_end(struct sched *s);
static void on_due(uv_timer_t *t);

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

/* The first host of a that b targets too (by address and port), or NULL. */
static const char *shared_host(const struct job *a, const struct job *b)
{
    for (size_t i = 0; i < a->n_hosts; i++) {
        const struct fl_host *ha = &a->e->inventory.hosts[a->hosts[i]];
        for (size_t k = 0; k < b->n_hosts; k++) {
            const struct fl_host *hb = &b->e->inventory.hosts[b->hosts[k]];
            if (ha->port == hb->port && strcmp(ha->address, hb->address) == 0)
                return ha->name;
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------- store work */

enum work_kind { WORK_SKIP, WORK_CLAIM, WORK_PRUNE };

struct work {
    uv_work_t req;
    struct sched *s;
    enum work_kind kind;
    struct job *j; /* skip, claim */
    int64_t due_ms, now_ms;
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
        w->rc = fl_store_claim(s->store, w->j->e->name, w->j->entry->hash, w->due_ms, w->now_ms,
                               &w->id);
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
    if (reason != NULL)
        snprintf(w->reason, sizeof(w->reason), "%s", reason);
    int rc = uv_queue_work(&s->loop, &w->req, work_run, work_done);
    if (rc < 0) {
        fl_error("cannot queue a store call: %s", uv_strerror(rc));
        free(w);
        return rc;
    }
    s->work++;
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
    r->abort_reason = "server stopping";
    atomic_init(&r->abort, s->stopping); /* claimed as the server stops: ends at once */
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
                j->run = NULL;
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
    if (s->stopping)
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
        const char *busy = NULL;
        for (size_t k = 0; busy == NULL && k < n; k++) {
            struct job *o = &s->jobs[k];
            if (o != j && (active(o) || held[k]))
                busy = shared_host(j, o);
        }
        bool full = s->active >= s->c->max_concurrent_runs;
        if (busy == NULL && !full) {
            set_state(j, JOB_CLAIMING);
            j->last_start_ms = now;
            if (queue(s, WORK_CLAIM, j, j->wait_due_s * 1000, NULL) < 0)
                set_state(j, JOB_IDLE);
            continue;
        }
        if (now >= j->wait_deadline_ms) {
            int64_t d = j->wait_due_s;
            set_state(j, JOB_IDLE);
            if (busy != NULL)
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
}

static void maybe_end(struct sched *s)
{
    if (!s->stopping || s->active > 0 || s->work > 0 || uv_is_closing((uv_handle_t *)&s->wake))
        return;
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
    fl_metrics_experiment(s->metrics, j->e->name);
    if (fl_store_query(s->store, j->e->name, 0, 0, 0, &rows, &n) != FL_STORE_OK) {
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

/* The hosts a job may touch: every fault's candidate hosts. */
static int job_hosts(struct job *j)
{
    const struct fl_experiment *e = j->e;
    j->hosts = calloc(e->inventory.n_hosts ? e->inventory.n_hosts : 1, sizeof(*j->hosts));
    if (j->hosts == NULL)
        return -ENOMEM;
    for (size_t f = 0; f < e->n_faults; f++)
        for (size_t h = 0; h < e->faults[f].target.n_hosts; h++) {
            size_t idx = e->faults[f].target.hosts[h];
            bool seen = false;
            for (size_t k = 0; k < j->n_hosts; k++)
                seen |= j->hosts[k] == idx;
            if (!seen)
                j->hosts[j->n_hosts++] = idx;
        }
    return 0;
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
    if ((rc = job_hosts(j)) < 0) {
        fl_key_wipe(&j->key);
        fl_tz_free(&j->tz);
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    return 0;
}

/* Cron after downtime: the due times missed since the last row. */
static void plan_missed(struct sched *s, struct job *j, int64_t now_s)
{
    if (j->sc->kind != FL_SCHED_CRON)
        return; /* every: counts from this start, nothing was missed */
    fl_store_row *rows = NULL;
    size_t n = 0;
    if (fl_store_query(s->store, j->e->name, 0, 1, 0, &rows, &n) != FL_STORE_OK || n == 0) {
        fl_store_rows_free(rows, n);
        return;
    }
    int64_t last = rows[0].due_ms / 1000;
    fl_store_rows_free(rows, n);
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
    s->jobs = calloc(cat->n ? cat->n : 1, sizeof(*s->jobs));
    size_t cap = cat->n ? cat->n : 1;
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
    uv_timer_start(&s->prune_timer, on_prune, 0, FL_SERVE_PRUNE_EVERY_MS);
    int64_t now_s = (int64_t)(fl_now_ms() / 1000);
    for (size_t i = 0; i < s->n_jobs; i++) {
        struct job *j = &s->jobs[i];
        uv_timer_init(&s->loop, &j->due_timer);
        j->due_timer.data = j;
        seed_metrics(s, j);
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
        if (fl_serve_pages_new(c->db, c->reports_dir, cat, metrics, &pages, err, errlen) < 0 ||
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
    if (!s->stopping) {
        fl_info("serving %zu scheduled experiment(s)", s->n_jobs);
        try_start(s);
    }
    uv_run(&s->loop, UV_RUN_DEFAULT);
    fl_serve_http_stop(http);
    fl_serve_pages_free(pages);
    if (uv_loop_close(&s->loop) != 0)
        fl_error("internal error: handles left open at the end");
    for (size_t i = 0; i < s->n_jobs; i++) {
        fl_key_wipe(&s->jobs[i].key);
        fl_tz_free(&s->jobs[i].tz);
        free(s->jobs[i].hosts);
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
