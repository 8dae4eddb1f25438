/* /metrics state and its rendering (metrics.h). */
#include "controller/serve/metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* verdicts as label values: run.json's spelling */
static const char *const verdict_labels[] = {"pass", "fail", "aborted", "pass_no_impact"};
#define N_VERDICTS 4

struct exp_metrics {
    char *name;
    unsigned jobs; /* installed jobs of this name (fl_metrics_job_add) */
    bool retired;  /* not rendered: no job of this name is configured */
    uint64_t runs[N_VERDICTS];
    bool have_last;
    int last_verdict; /* index into verdict_labels */
    int64_t last_ended_ms;
    bool have_recovery;
    int64_t recovery_ms, resolution_ms;
    bool regressed;
    uint64_t buckets[FL_METRICS_N_BUCKETS]; /* cumulative at render */
    uint64_t n_recoveries;
    double sum_recovery_s;
    bool have_next;
    int64_t next_s;
    size_t n_reasons;
    char *reasons[FL_METRICS_MAX_REASONS];
    uint64_t skipped[FL_METRICS_MAX_REASONS];
};

struct fl_metrics {
    pthread_mutex_t mu;
    struct exp_metrics *exps;
    size_t n, cap;
    bool frozen;
    uint64_t webhook_failures, webhook_dropped;
};

struct fl_metrics *fl_metrics_new(void)
{
    struct fl_metrics *m = calloc(1, sizeof(*m));
    if (m != NULL)
        pthread_mutex_init(&m->mu, NULL);
    return m;
}

void fl_metrics_free(struct fl_metrics *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++) {
        free(m->exps[i].name);
        for (size_t j = 0; j < m->exps[i].n_reasons; j++)
            free(m->exps[i].reasons[j]);
    }
    free(m->exps);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* Under the mutex. */
static struct exp_metrics *find(struct fl_metrics *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->exps[i].name, name) == 0)
            return &m->exps[i];
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        struct exp_metrics *grown = realloc(m->exps, cap * sizeof(*grown));
        if (grown == NULL)
            return NULL;
        m->exps = grown;
        m->cap = cap;
    }
    struct exp_metrics *x = &m->exps[m->n];
    memset(x, 0, sizeof(*x));
    if ((x->name = strdup(name)) == NULL)
        return NULL;
    m->n++;
    return x;
}

int fl_metrics_experiment(struct fl_metrics *m, const char *experiment)
{
    pthread_mutex_lock(&m->mu);
    int rc = find(m, experiment) ? 0 : -ENOMEM;
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int fl_metrics_hidden(struct fl_metrics *m, const char *experiment)
{
    pthread_mutex_lock(&m->mu);
    size_t before = m->n;
    struct exp_metrics *x = find(m, experiment);
    if (x != NULL && m->n > before)
        x->retired = true; /* new: shown once its job is installed */
    pthread_mutex_unlock(&m->mu);
    return x ? 0 : -ENOMEM;
}

int fl_metrics_job_add(struct fl_metrics *m, const char *experiment)
{
    pthread_mutex_lock(&m->mu);
    struct exp_metrics *x = find(m, experiment);
    if (x != NULL) {
        x->jobs++;
        x->retired = false;
    }
    pthread_mutex_unlock(&m->mu);
    return x ? 0 : -ENOMEM;
}

void fl_metrics_job_end(struct fl_metrics *m, const char *experiment)
{
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n; i++) {
        struct exp_metrics *x = &m->exps[i];
        if (strcmp(x->name, experiment) != 0)
            continue;
        if (x->jobs > 0)
            x->jobs--;
        if (x->jobs == 0) {
            x->retired = true;
            x->have_next = false;
        }
    }
    pthread_mutex_unlock(&m->mu);
}

static int verdict_index(const char *v)
{
    if (strcmp(v, "PASS") == 0)
        return 0;
    if (strcmp(v, "FAIL") == 0)
        return 1;
    if (strcmp(v, "PASS (no impact)") == 0)
        return 3;
    return 2; /* ABORTED, and anything unknown counts as not a pass */
}

int fl_metrics_run(struct fl_metrics *m, const char *experiment, const char *verdict,
                   int64_t ended_ms, int64_t recovery_ms, int64_t resolution_ms, bool regressed)
{
    static const double bounds[FL_METRICS_N_BUCKETS] = FL_METRICS_BUCKETS;
    pthread_mutex_lock(&m->mu);
    struct exp_metrics *x = find(m, experiment);
    if (x != NULL) {
        int v = verdict_index(verdict);
        x->runs[v]++;
        if (!x->have_last || ended_ms >= x->last_ended_ms) {
            x->have_last = true;
            x->last_verdict = v;
            x->last_ended_ms = ended_ms;
            if (recovery_ms >= 0) {
                x->have_recovery = true;
                x->recovery_ms = recovery_ms;
                x->resolution_ms = resolution_ms > 0 ? resolution_ms : 0;
                x->regressed = regressed;
            }
        }
        if (recovery_ms >= 0) {
            double s = (double)recovery_ms / 1000.0;
            for (size_t i = 0; i < FL_METRICS_N_BUCKETS; i++)
                if (s <= bounds[i]) {
                    x->buckets[i]++;
                    break;
                }
            x->n_recoveries++;
            x->sum_recovery_s += s;
        }
    }
    pthread_mutex_unlock(&m->mu);
    return x ? 0 : -ENOMEM;
}

int fl_metrics_skip(struct fl_metrics *m, const char *experiment, const char *reason)
{
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    struct exp_metrics *x = find(m, experiment);
    if (x == NULL) {
        rc = -ENOMEM;
    } else {
        size_t i = 0;
        while (i < x->n_reasons && strcmp(x->reasons[i], reason) != 0)
            i++;
        if (i == x->n_reasons) {
            /* the classes are a fixed short list (fl_metrics_skip_class) */
            if (i == FL_METRICS_MAX_REASONS)
                i = FL_METRICS_MAX_REASONS - 1; /* unreachable with the fixed list */
            else if ((x->reasons[i] = strdup(reason)) == NULL)
                rc = -ENOMEM;
            else
                x->n_reasons++;
        }
        if (rc == 0)
            x->skipped[i]++;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int fl_metrics_next(struct fl_metrics *m, const char *experiment, int64_t next_s)
{
    pthread_mutex_lock(&m->mu);
    struct exp_metrics *x = find(m, experiment);
    if (x != NULL) {
        x->have_next = true;
        x->next_s = next_s;
    }
    pthread_mutex_unlock(&m->mu);
    return x ? 0 : -ENOMEM;
}

void fl_metrics_frozen(struct fl_metrics *m, bool frozen)
{
    pthread_mutex_lock(&m->mu);
    m->frozen = frozen;
    pthread_mutex_unlock(&m->mu);
}

void fl_metrics_next_clear(struct fl_metrics *m, const char *experiment)
{
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->exps[i].name, experiment) == 0)
            m->exps[i].have_next = false;
    pthread_mutex_unlock(&m->mu);
}

bool fl_metrics_known(struct fl_metrics *m, const char *experiment)
{
    pthread_mutex_lock(&m->mu);
    bool known = false;
    for (size_t i = 0; !known && i < m->n; i++)
        known = strcmp(m->exps[i].name, experiment) == 0;
    pthread_mutex_unlock(&m->mu);
    return known;
}

void fl_metrics_webhook_failure(struct fl_metrics *m)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->mu);
    m->webhook_failures++;
    pthread_mutex_unlock(&m->mu);
}

void fl_metrics_webhook_dropped(struct fl_metrics *m)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->mu);
    m->webhook_dropped++;
    pthread_mutex_unlock(&m->mu);
}

bool fl_metrics_next_get(struct fl_metrics *m, const char *experiment, int64_t *next_s)
{
    bool have = false;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->exps[i].name, experiment) == 0) {
            have = m->exps[i].have_next;
            *next_s = m->exps[i].next_s;
            break;
        }
    pthread_mutex_unlock(&m->mu);
    return have;
}

const char *fl_metrics_skip_class(const char *reason)
{
    if (strncmp(reason, "frozen", 6) == 0)
        return "frozen";
    if (strncmp(reason, "paused", 6) == 0)
        return "paused";
    if (strncmp(reason, "still running", 13) == 0)
        return "still_running";
    if (strncmp(reason, "hosts busy", 10) == 0)
        return "hosts_busy";
    if (strncmp(reason, "max_concurrent_runs", 19) == 0)
        return "max_concurrent_runs";
    if (strncmp(reason, "still waiting", 13) == 0)
        return "still_waiting";
    if (strncmp(reason, "missed", 6) == 0)
        return "missed";
    if (strncmp(reason, "outside", 7) == 0)
        return "outside_window";
    return "other";
}

/* ------------------------------------------------------------- rendering */

struct out {
    char *buf;
    size_t len, cap;
    bool oom;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    if (o->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->oom = true;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = (o->cap + (size_t)n + 1) * 2;
        char *grown = realloc(o->buf, cap);
        if (grown == NULL) {
            o->oom = true;
            return;
        }
        o->buf = grown;
        o->cap = cap;
    }
}

/* A label value, escaped: backslash, double quote and line feed. */
static void put_label(struct out *o, const char *v)
{
    for (const char *p = v; *p; p++) {
        if (*p == '\\')
            put(o, "\\\\");
        else if (*p == '"')
            put(o, "\\\"");
        else if (*p == '\n')
            put(o, "\\n");
        else
            put(o, "%c", *p);
    }
}

static void head(struct out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void exp_sample(struct out *o, const char *name, const struct exp_metrics *x, int decimals,
                       double v)
{
    put(o, "%s{experiment=\"", name);
    put_label(o, x->name);
    put(o, "\"} ");
    put(o, "%.*f", decimals, v);
    put(o, "\n");
}

char *fl_metrics_render(struct fl_metrics *m)
{
    static const double bounds[FL_METRICS_N_BUCKETS] = FL_METRICS_BUCKETS;
    struct out o = {.cap = 4096};
    if ((o.buf = malloc(o.cap)) == NULL)
        return NULL;
    o.buf[0] = '\0';
    pthread_mutex_lock(&m->mu);
    head(&o, "faultline_runs_total", "counter", "Finished runs by verdict.");
    for (size_t i = 0; i < m->n; i++)
        for (int v = 0; v < N_VERDICTS && !m->exps[i].retired; v++) {
            put(&o, "faultline_runs_total{experiment=\"");
            put_label(&o, m->exps[i].name);
            put(&o, "\",verdict=\"%s\"} %llu\n", verdict_labels[v],
                (unsigned long long)m->exps[i].runs[v]);
        }
    head(&o, "faultline_last_verdict", "gauge",
         "Verdict of the last run: 0 pass, 1 fail, 2 aborted (faultline run's exit code).");
    for (size_t i = 0; i < m->n; i++)
        if (!m->exps[i].retired && m->exps[i].have_last)
            exp_sample(&o, "faultline_last_verdict", &m->exps[i], 0,
                       m->exps[i].last_verdict == 3 ? 0 : m->exps[i].last_verdict);
    head(&o, "faultline_last_run_timestamp_seconds", "gauge", "When the last run ended.");
    for (size_t i = 0; i < m->n; i++)
        if (!m->exps[i].retired && m->exps[i].have_last)
            exp_sample(&o, "faultline_last_run_timestamp_seconds", &m->exps[i], 3,
                       (double)m->exps[i].last_ended_ms / 1000.0);
    head(&o, "faultline_recovery_seconds", "gauge", "Last measured recovery time.");
    for (size_t i = 0; i < m->n; i++)
        if (!m->exps[i].retired && m->exps[i].have_recovery)
            exp_sample(&o, "faultline_recovery_seconds", &m->exps[i], 3,
                       (double)m->exps[i].recovery_ms / 1000.0);
    head(&o, "faultline_recovery_duration_seconds", "histogram", "Measured recovery times.");
    for (size_t i = 0; i < m->n; i++) {
        const struct exp_metrics *x = &m->exps[i];
        if (x->retired)
            continue;
        uint64_t cum = 0;
        for (size_t b = 0; b <= FL_METRICS_N_BUCKETS; b++) {
            cum += b < FL_METRICS_N_BUCKETS ? x->buckets[b] : 0;
            put(&o, "faultline_recovery_duration_seconds_bucket{experiment=\"");
            put_label(&o, x->name);
            if (b < FL_METRICS_N_BUCKETS)
                put(&o, "\",le=\"%g\"} %llu\n", bounds[b], (unsigned long long)cum);
            else
                put(&o, "\",le=\"+Inf\"} %llu\n", (unsigned long long)x->n_recoveries);
        }
        exp_sample(&o, "faultline_recovery_duration_seconds_sum", x, 3, x->sum_recovery_s);
        exp_sample(&o, "faultline_recovery_duration_seconds_count", x, 0, (double)x->n_recoveries);
    }
    head(&o, "faultline_recovery_resolution_seconds", "gauge",
         "Resolution of the last measured recovery (the probe's grain).");
    for (size_t i = 0; i < m->n; i++)
        if (!m->exps[i].retired && m->exps[i].have_recovery)
            exp_sample(&o, "faultline_recovery_resolution_seconds", &m->exps[i], 3,
                       (double)m->exps[i].resolution_ms / 1000.0);
    head(&o, "faultline_regressed", "gauge",
         "1 if the last measured recovery was flagged regressed.");
    for (size_t i = 0; i < m->n; i++)
        if (!m->exps[i].retired)
            exp_sample(&o, "faultline_regressed", &m->exps[i], 0, m->exps[i].regressed ? 1 : 0);
    head(&o, "faultline_next_run_timestamp_seconds", "gauge", "Next due time.");
    for (size_t i = 0; i < m->n; i++)
        if (!m->exps[i].retired && m->exps[i].have_next)
            exp_sample(&o, "faultline_next_run_timestamp_seconds", &m->exps[i], 0,
                       (double)m->exps[i].next_s);
    head(&o, "faultline_skipped_total", "counter", "Due times that did not run, by reason.");
    for (size_t i = 0; i < m->n; i++)
        for (size_t r = 0; r < m->exps[i].n_reasons && !m->exps[i].retired; r++) {
            put(&o, "faultline_skipped_total{experiment=\"");
            put_label(&o, m->exps[i].name);
            put(&o, "\",reason=\"");
            put_label(&o, m->exps[i].reasons[r]);
            put(&o, "\"} %llu\n", (unsigned long long)m->exps[i].skipped[r]);
        }
    head(&o, "faultline_frozen", "gauge",
         "1 while frozen (faultline freeze): no experiment starts until faultline thaw.");
    put(&o, "faultline_frozen %d\n", m->frozen ? 1 : 0);
    pthread_mutex_unlock(&m->mu);
    head(&o, "faultline_webhook_failures_total", "counter",
         "Webhook deliveries given up after their last retry.");
    put(&o, "faultline_webhook_failures_total %llu\n", (unsigned long long)m->webhook_failures);
    head(&o, "faultline_webhook_dropped_total", "counter",
         "Webhook deliveries refused because FL_WEBHOOK_QUEUE_MAX were alive.");
    put(&o, "faultline_webhook_dropped_total %llu\n", (unsigned long long)m->webhook_dropped);
    if (o.oom) {
        free(o.buf);
        return NULL;
    }
    return o.buf;
}
