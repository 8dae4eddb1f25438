/* The read-only pages of faultline serve (pages.h). */
#include "controller/serve/pages.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/units.h"
#include "controller/report/html.h"
#include "controller/report/htmlbuf.h"
#include "controller/report/htmlrun.h"
#include "controller/serve/catalog.h"
#include "controller/serve/metrics.h"
#include "controller/serve/rowjson.h"
#include "controller/serve/schedule.h"
#include "controller/serve/store.h"

/* One scheduled experiment as the index shows it: copied when published, so
 * a reload on the scheduler's loop never frees what a page is reading. */
struct pages_exp {
    char *name;
    char *schedule; /* HTML, escaped */
    bool paused_file;
};

struct fl_serve_pages {
    fl_store *store; /* the pages' own connection */
    char *reports_dir;
    struct fl_metrics *m;
    pthread_mutex_t mu; /* the published list below */
    struct pages_exp *exps;
    size_t n, n_unscheduled, n_invalid;
};

static void exps_free(struct pages_exp *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(x[i].name);
        free(x[i].schedule);
    }
    free(x);
}

static void schedule_text(const struct fl_schedule *sc, struct fl_hbuf *b);

int fl_serve_pages_new(const char *db_url, const char *reports_dir, const struct fl_catalog *cat,
                       struct fl_metrics *m, struct fl_serve_pages **out, char *err, size_t errlen)
{
    struct fl_serve_pages *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->reports_dir = strdup(reports_dir)) == NULL) {
        free(p);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    char *why = NULL;
    p->store = fl_store_open(db_url, &why);
    if (p->store == NULL) {
        snprintf(err, errlen, "the pages' store connection: %s", why ? why : "cannot open");
        free(why);
        free(p->reports_dir);
        free(p);
        return -EIO;
    }
    p->m = m;
    pthread_mutex_init(&p->mu, NULL);
    struct fl_pages_entry *l = calloc(cat->n ? cat->n : 1, sizeof(*l));
    for (size_t i = 0; l != NULL && i < cat->n; i++) {
        l[i].name = cat->entries[i].e->name;
        l[i].schedule = cat->entries[i].e->schedule;
    }
    int rc = l == NULL ? -ENOMEM
                       : fl_serve_pages_publish(p, l, cat->n, cat->n_unscheduled, cat->n_invalid);
    free(l);
    if (rc < 0) {
        fl_serve_pages_free(p);
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    *out = p;
    return 0;
}

int fl_serve_pages_publish(struct fl_serve_pages *p, const struct fl_pages_entry *list, size_t n,
                           size_t n_unscheduled, size_t n_invalid)
{
    struct pages_exp *x = calloc(n ? n : 1, sizeof(*x));
    if (x == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct fl_hbuf b = {0};
        schedule_text(list[i].schedule, &b);
        x[i].name = strdup(list[i].name);
        x[i].schedule = b.failed ? NULL : strndup(b.p ? b.p : "", b.len);
        fl_hbuf_free(&b);
        x[i].paused_file = list[i].schedule->paused;
        if (x[i].name == NULL || x[i].schedule == NULL) {
            exps_free(x, i + 1);
            return -ENOMEM;
        }
    }
    pthread_mutex_lock(&p->mu);
    struct pages_exp *old = p->exps;
    size_t old_n = p->n;
    p->exps = x;
    p->n = n;
    p->n_unscheduled = n_unscheduled;
    p->n_invalid = n_invalid;
    pthread_mutex_unlock(&p->mu);
    exps_free(old, old_n);
    return 0;
}

/* A copy of the published list, for one page (the lock is held only to copy). */
static struct pages_exp *exps_copy(struct fl_serve_pages *p, size_t *n, size_t *n_unscheduled,
                                   size_t *n_invalid)
{
    pthread_mutex_lock(&p->mu);
    struct pages_exp *x = calloc(p->n ? p->n : 1, sizeof(*x));
    size_t i = 0;
    for (; x != NULL && i < p->n; i++) {
        x[i].name = strdup(p->exps[i].name);
        x[i].schedule = strdup(p->exps[i].schedule);
        x[i].paused_file = p->exps[i].paused_file;
        if (x[i].name == NULL || x[i].schedule == NULL)
            break;
    }
    if (x != NULL && i < p->n) {
        exps_free(x, i + 1);
        x = NULL;
    }
    *n = p->n;
    *n_unscheduled = p->n_unscheduled;
    *n_invalid = p->n_invalid;
    pthread_mutex_unlock(&p->mu);
    return x;
}

void fl_serve_pages_free(struct fl_serve_pages *p)
{
    if (p == NULL)
        return;
    fl_store_close(p->store);
    exps_free(p->exps, p->n);
    pthread_mutex_destroy(&p->mu);
    free(p->reports_dir);
    free(p);
}

/* ---------------------------------------------------------------- replies */

static void text(struct fl_page *out, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void text(struct fl_page *out, unsigned status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&out->body, fmt, ap);
    va_end(ap);
    out->status = n < 0 ? 500 : status;
    if (n < 0)
        out->body = NULL;
    out->len = n < 0 ? 0 : (size_t)n;
    out->type = "text/plain; charset=utf-8";
}

static void html(struct fl_page *out, struct fl_hbuf *b)
{
    if (b->failed) {
        fl_hbuf_free(b);
        text(out, 500, "out of memory, or the page is above %zu bytes (FL_HBUF_MAX)\n",
             (size_t)FL_HBUF_MAX);
        return;
    }
    out->status = 200;
    out->type = "text/html; charset=utf-8";
    out->body = b->p;
    out->len = b->len;
}

static void when(int64_t ms, char *buf, size_t len)
{
    if (ms <= 0 || fl_format_rfc3339((uint64_t)ms, buf, len) < 0)
        snprintf(buf, len, "-");
}

/* ---------------------------------------------------------------- index */

static bool is_regressed(const fl_store_row *r)
{
    return r->flags != NULL && strstr(r->flags, "regressed") != NULL;
}

static bool finished(const fl_store_row *r)
{
    return strcmp(r->state, "finished") == 0 && r->verdict != NULL;
}

static const char *verdict_class(const char *v)
{
    if (strncmp(v, "PASS", 4) == 0)
        return "pass";
    if (strcmp(v, "FAIL") == 0)
        return "fail";
    return "aborted";
}

/* Recovery times of rows (newest first), drawn oldest left. */
#define SPARK_W 160
#define SPARK_H 36
#define SPARK_PAD 4

static void sparkline(const fl_store_row *rows, size_t n, struct fl_hbuf *b)
{
    size_t k = 0;
    int64_t top = 1;
    for (size_t i = 0; i < n; i++)
        if (finished(&rows[i]) && rows[i].recovery_ms >= 0) {
            k++;
            if (rows[i].recovery_ms > top)
                top = rows[i].recovery_ms;
        }
    if (k == 0) {
        fl_hbuf_puts(b, "<span class=\"norec\">no recovery measured yet</span>");
        return;
    }
    fl_hbuf_printf(b,
                   "<svg class=\"trend\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
                   "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\"><title>Recovery time of the "
                   "last %zu measured runs, oldest left</title><rect width=\"%d\" height=\"%d\" "
                   "fill=\"#fafafa\" stroke=\"#ddd\"/>",
                   SPARK_W, SPARK_H, SPARK_W, SPARK_H, k, SPARK_W, SPARK_H);
    double pw = SPARK_W - 2 * SPARK_PAD, ph = SPARK_H - 2 * SPARK_PAD;
    struct fl_hbuf pts = {0};
    size_t j = 0;
    for (size_t i = n; i-- > 0;) {
        const fl_store_row *r = &rows[i];
        if (!finished(r) || r->recovery_ms < 0)
            continue;
        double x = SPARK_PAD + (k > 1 ? pw * (double)j / (double)(k - 1) : pw / 2);
        double y = SPARK_PAD + ph - ph * (double)r->recovery_ms / (double)top;
        fl_hbuf_printf(&pts, "%.1f,%.1f ", x, y);
        char d[48];
        fl_html_duration(r->recovery_ms, d, sizeof(d));
        bool reg = is_regressed(r);
        fl_hbuf_printf(b,
                       "<circle class=\"point%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"%d\" fill=\"%s\">"
                       "<title>run %lld: %s%s</title></circle>",
                       reg ? " regressed" : "", x, y, reg ? 3 : 2, reg ? "#c62828" : "#1565c0",
                       (long long)r->id, d, reg ? " (regressed)" : "");
        j++;
    }
    if (k > 1 && !pts.failed && pts.p != NULL)
        fl_hbuf_printf(b,
                       "<polyline points=\"%s\" fill=\"none\" stroke=\"#1565c0\" "
                       "stroke-width=\"1\"/>",
                       pts.p);
    fl_hbuf_free(&pts);
    fl_hbuf_puts(b, "</svg>");
}

static void schedule_text(const struct fl_schedule *sc, struct fl_hbuf *b)
{
    char d[64];
    if (sc->kind == FL_SCHED_CRON) {
        fl_hbuf_puts(b, "cron <code>");
        fl_hbuf_esc(b, sc->cron_text);
        fl_hbuf_puts(b, "</code>");
        if (sc->timezone[0]) {
            fl_hbuf_puts(b, " ");
            fl_hbuf_esc(b, sc->timezone);
        }
    } else {
        if (fl_format_duration((uint64_t)sc->every_s * 1000, d, sizeof(d)) < 0)
            snprintf(d, sizeof(d), "%llds", (long long)sc->every_s);
        fl_hbuf_printf(b, "every %s", d);
    }
    if (sc->jitter_s > 0 && fl_format_duration((uint64_t)sc->jitter_s * 1000, d, sizeof(d)) == 0)
        fl_hbuf_printf(b, ", jitter %s", d);
    if (sc->has_window)
        fl_hbuf_puts(b, ", within a window");
}

static void experiment_row(struct fl_serve_pages *p, const struct pages_exp *e, struct fl_hbuf *b)
{
    fl_store_row *rows = NULL;
    size_t n = 0;
    bool store_ok = fl_store_query_brief(p->store, e->name, 0, FL_PAGES_TREND_RUNS, 0, &rows, &n) ==
                    FL_STORE_OK;
    bool paused_db = false;
    if (fl_store_is_paused(p->store, e->name, &paused_db) != FL_STORE_OK)
        paused_db = false;
    bool paused = e->paused_file || paused_db;
    fl_hbuf_puts(b, "<tr class=\"experiment\" data-experiment=\"");
    fl_hbuf_esc(b, e->name);
    fl_hbuf_puts(b, "\"><td class=\"name\">");
    fl_hbuf_esc(b, e->name);
    fl_hbuf_puts(b, "</td><td class=\"schedule\">");
    fl_hbuf_puts(b, e->schedule);
    fl_hbuf_puts(b, "</td><td class=\"next\">");
    int64_t next_s = 0;
    char w[48];
    if (paused) {
        fl_hbuf_printf(b, "<b class=\"paused\">paused</b> (%s)",
                       e->paused_file ? "paused: true in the file" : "faultline pause");
    } else if (fl_metrics_next_get(p->m, e->name, &next_s)) {
        when(next_s * 1000, w, sizeof(w));
        fl_hbuf_puts(b, w);
    } else {
        fl_hbuf_puts(b, "none");
    }
    fl_hbuf_puts(b, "</td><td class=\"last\">");
    const fl_store_row *last = NULL;
    for (size_t i = 0; i < n && last == NULL; i++)
        if (finished(&rows[i]))
            last = &rows[i];
    if (!store_ok) {
        fl_hbuf_puts(b, "history unreadable: ");
        fl_hbuf_esc(b, fl_store_error(p->store));
    } else if (last == NULL) {
        fl_hbuf_puts(b, "no run yet");
    } else {
        fl_hbuf_printf(b, "<a class=\"verdict %s\" href=\"/runs/%lld\">",
                       verdict_class(last->verdict), (long long)last->id);
        fl_hbuf_esc(b, last->verdict);
        fl_hbuf_puts(b, "</a>");
        if (is_regressed(last))
            fl_hbuf_puts(b, " <b class=\"regressed\">regressed</b>");
        when(last->ended_ms, w, sizeof(w));
        fl_hbuf_printf(b, "<br><small>%s</small>", w);
    }
    fl_hbuf_puts(b, "</td><td class=\"trend\">");
    sparkline(rows, n, b);
    fl_hbuf_puts(b, "</td><td class=\"runs\">");
    size_t links = 0;
    for (size_t i = 0; i < n && links < FL_PAGES_RUN_LINKS; i++) {
        if (strcmp(rows[i].state, "skipped") == 0)
            continue;
        fl_hbuf_printf(b, "%s<a class=\"run\" href=\"/runs/%lld\">%lld</a>", links ? " " : "",
                       (long long)rows[i].id, (long long)rows[i].id);
        links++;
    }
    if (links == 0)
        fl_hbuf_puts(b, "-");
    fl_hbuf_puts(b, " <a class=\"api\" href=\"/api/runs?experiment=");
    for (const unsigned char *c = (const unsigned char *)e->name; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            *c == '-' || *c == '_' || *c == '.')
            fl_hbuf_put(b, (const char *)c, 1);
        else
            fl_hbuf_printf(b, "%%%02X", *c);
    }
    fl_hbuf_puts(b, "\">json</a></td></tr>\n");
    fl_store_rows_free(rows, n);
}

static void index_page(struct fl_serve_pages *p, struct fl_page *out)
{
    size_t n = 0, n_unscheduled = 0, n_invalid = 0;
    struct pages_exp *exps = exps_copy(p, &n, &n_unscheduled, &n_invalid);
    if (exps == NULL) {
        text(out, 500, "out of memory");
        return;
    }
    struct fl_hbuf b = {0};
    fl_html_head(&b, "faultline serve: scheduled experiments");
    fl_hbuf_puts(&b, "<h1>Scheduled experiments</h1>\n");
    bool frozen = false;
    char *reason = NULL, *who = NULL;
    int64_t since = 0;
    if (fl_store_get_frozen(p->store, &frozen, &reason, &who, &since) != FL_STORE_OK) {
        fl_hbuf_puts(&b, "<p class=\"warn\">The freeze state cannot be read: ");
        fl_hbuf_esc(&b, fl_store_error(p->store));
        fl_hbuf_puts(&b, "</p>\n");
    } else if (frozen) {
        char w[48];
        when(since, w, sizeof(w));
        fl_hbuf_printf(&b, "<p class=\"warn\" id=\"frozen\"><b>FROZEN</b> since %s", w);
        if (who != NULL) {
            fl_hbuf_puts(&b, " by ");
            fl_hbuf_esc(&b, who);
        }
        if (reason != NULL) {
            fl_hbuf_puts(&b, ": ");
            fl_hbuf_esc(&b, reason);
        }
        fl_hbuf_puts(&b, ". Nothing starts until <code>faultline thaw</code>.</p>\n");
    }
    free(reason);
    free(who);
    fl_hbuf_printf(&b,
                   "<p>%zu scheduled experiment(s); %zu file(s) without a schedule, %zu that did "
                   "not load (see the server's log). Read-only; history as JSON at "
                   "<a href=\"/api/runs\">/api/runs</a>, metrics at "
                   "<a href=\"/metrics\">/metrics</a>.</p>\n",
                   n, n_unscheduled, n_invalid);
    fl_hbuf_printf(&b,
                   "<table id=\"experiments\"><tr><th>experiment</th><th>schedule</th>"
                   "<th>next run</th><th>last verdict</th><th>recovery, last %d rows</th>"
                   "<th>last runs</th></tr>\n",
                   FL_PAGES_TREND_RUNS);
    for (size_t i = 0; i < n; i++)
        experiment_row(p, &exps[i], &b);
    exps_free(exps, n);
    fl_hbuf_puts(&b, "</table>\n");
    fl_html_tail(&b);
    html(out, &b);
}

/* ---------------------------------------------------------------- /runs/ID */

/* "123" -> 123; anything but 1..FL_PAGES_RUN_ID_DIGITS digits -> -1. */
static int64_t parse_id(const char *s)
{
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > FL_PAGES_RUN_ID_DIGITS || s[n] != '\0')
        return -1;
    return strtoll(s, NULL, 10);
}

static void run_page(struct fl_serve_pages *p, const char *id_text, struct fl_page *out)
{
    int64_t id = parse_id(id_text);
    if (id < 0) {
        text(out, 404, "not found: a run id is 1 to %d digits (FL_PAGES_RUN_ID_DIGITS)\n",
             FL_PAGES_RUN_ID_DIGITS);
        return;
    }
    fl_store_row row;
    bool found = false;
    if (fl_store_get_run(p->store, id, &row, &found) != FL_STORE_OK) {
        text(out, 500, "%s\n", fl_store_error(p->store));
        return;
    }
    if (!found) {
        text(out, 404, "not found: no run %lld in the history\n", (long long)id);
        return;
    }
    char root[PATH_MAX], dir[PATH_MAX], path[PATH_MAX + 16];
    struct stat st;
    if (strcmp(row.state, "skipped") == 0) {
        text(out, 404, "not found: %lld is a skipped due time (%s), with no report\n",
             (long long)id, row.reason ? row.reason : "no reason");
    } else if (row.report_folder == NULL) {
        text(out, 404, "not found: run %lld has no report folder%s\n", (long long)id,
             strcmp(row.state, "running") == 0 ? " yet (it is running)" : "");
    } else if (realpath(p->reports_dir, root) == NULL || realpath(row.report_folder, dir) == NULL) {
        text(out, 404, "not found: the report folder of run %lld is gone\n", (long long)id);
    } else if (strncmp(dir, root, strlen(root)) != 0 || dir[strlen(root)] != '/') {
        fl_warn("/runs/%lld: its folder %s is outside reports_dir %s: not served", (long long)id,
                dir, root);
        text(out, 404, "not found: the report folder of run %lld is not inside reports_dir\n",
             (long long)id);
    } else {
        snprintf(path, sizeof(path), "%s/report.html", dir);
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
            out->status = 200;
            out->type = "text/html; charset=utf-8";
            out->fd = fd;
            out->fd_size = (uint64_t)st.st_size;
        } else if (fd >= 0 || errno != ENOENT) {
            if (fd >= 0)
                close(fd);
            text(out, 404, "not found: report.html of run %lld is not a regular file\n",
                 (long long)id);
        } else {
            /* no report.html: the same page, from run.json, in memory */
            snprintf(path, sizeof(path), "%s/run.json", dir);
            char err[1024];
            struct fl_hrun r;
            if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
                text(out, 404, "not found: run %lld has no report.html and no run.json%s\n",
                     (long long)id,
                     strcmp(row.state, "running") == 0 ? " yet (it is running)" : "");
            } else if (fl_hrun_load(dir, &r, err, sizeof(err)) < 0) {
                text(out, 500, "run %lld: %s\n", (long long)id, err);
            } else {
                struct fl_hbuf b = {0};
                if (fl_report_html_render(&r, &b, err, sizeof(err)) < 0) {
                    fl_hbuf_free(&b);
                    text(out, 500, "run %lld: %s\n", (long long)id, err);
                } else {
                    html(out, &b);
                }
                fl_hrun_free(&r);
            }
        }
    }
    fl_store_row_free(&row);
}

/* ---------------------------------------------------------------- /api/runs */

/* A decimal argument: 0 with *v, or -1 when it is not one. */
static int parse_count(const char *s, uint64_t *v)
{
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 18 || s[n] != '\0')
        return -1;
    *v = strtoull(s, NULL, 10);
    return 0;
}

static void api_runs(struct fl_serve_pages *p, fl_pages_arg_fn arg, void *ctx, struct fl_page *out)
{
    const char *experiment = arg(ctx, "experiment");
    const char *ltext = arg(ctx, "limit"), *otext = arg(ctx, "offset");
    uint64_t limit = FL_PAGES_API_LIMIT_DEFAULT, offset = 0;
    if (ltext != NULL && (parse_count(ltext, &limit) < 0 || limit == 0)) {
        text(out, 400, "limit: '%s' is not a number from 1 to %d\n", ltext, FL_PAGES_API_LIMIT_MAX);
        return;
    }
    if (limit > FL_PAGES_API_LIMIT_MAX) {
        text(out, 400,
             "limit: %llu is above the largest page, %d rows (FL_PAGES_API_LIMIT_MAX); "
             "page through with offset\n",
             (unsigned long long)limit, FL_PAGES_API_LIMIT_MAX);
        return;
    }
    if (otext != NULL && parse_count(otext, &offset) < 0) {
        text(out, 400, "offset: '%s' is not a number\n", otext);
        return;
    }
    if (experiment != NULL && experiment[0] == '\0')
        experiment = NULL;
    fl_store_row *rows = NULL;
    size_t n = 0;
    if (fl_store_query_brief(p->store, experiment, 0, (size_t)limit, (size_t)offset, &rows, &n) !=
        FL_STORE_OK) {
        text(out, 500, "%s\n", fl_store_error(p->store));
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++) {
        json_t *o = fl_store_row_json(&rows[i]);
        if (o == NULL || json_array_append_new(arr, o) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    fl_store_rows_free(rows, n);
    char *body = arr ? json_dumps(arr, JSON_INDENT(2)) : NULL;
    json_decref(arr);
    if (body == NULL) {
        text(out, 500, "out of memory\n");
        return;
    }
    out->status = 200;
    out->type = "application/json";
    out->body = body;
    out->len = strlen(body);
}

void fl_serve_pages_get(struct fl_serve_pages *p, const char *url, fl_pages_arg_fn arg, void *ctx,
                        struct fl_page *out)
{
    memset(out, 0, sizeof(*out));
    out->fd = -1;
    if (strcmp(url, "/") == 0)
        index_page(p, out);
    else if (strncmp(url, "/runs/", 6) == 0)
        run_page(p, url + 6, out);
    else if (strcmp(url, "/api/runs") == 0)
        api_runs(p, arg, ctx, out);
    else
        text(out, 404, "not found: this server has /, /runs/RUN_ID, /api/runs and /metrics\n");
}
