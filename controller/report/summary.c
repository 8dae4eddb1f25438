/* The `faultline report` summary page: see summary.h. */
#include "controller/report/summary.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "controller/report/html.h"
#include "controller/report/htmlrun.h"
#include "controller/serve/regression.h"

/* target relative to the folder from, both made absolute; the absolute
 * target when either cannot be resolved. */
static char *relative(const char *from, const char *target)
{
    char a[PATH_MAX], t[PATH_MAX];
    if (realpath(from, a) == NULL || realpath(target, t) == NULL)
        return strdup(target);
    size_t common = 0;
    for (size_t i = 0;; i++) {
        if (a[i] == '\0' && (t[i] == '/' || t[i] == '\0')) {
            common = i;
            break;
        }
        if (a[i] != t[i])
            break;
        if (a[i] == '/')
            common = i;
    }
    size_t ups = 0;
    if (a[common] != '\0') {
        ups = 1;
        for (const char *p = a + common + 1; *p != '\0'; p++)
            ups += *p == '/';
        if (strcmp(a, "/") == 0)
            ups = 0;
    }
    const char *rest = t + common;
    while (*rest == '/')
        rest++;
    size_t len = ups * 3 + strlen(rest) + 2;
    char *out = malloc(len);
    if (out == NULL)
        return NULL;
    out[0] = '\0';
    size_t o = 0;
    for (size_t i = 0; i < ups; i++) {
        memcpy(out + o, "../", 3);
        o += 3;
    }
    snprintf(out + o, len - o, "%s", *rest ? rest : ".");
    return out;
}

static int by_name_time(const void *x, const void *y)
{
    const struct fl_summary_run *a = x, *b = y;
    int c = strcmp(a->name, b->name);
    if (c != 0)
        return c;
    if (a->started_ms != b->started_ms)
        return a->started_ms < b->started_ms ? -1 : 1;
    return strcmp(a->dir, b->dir);
}

int fl_summary_load(struct fl_summary *s, char *const *dirs, size_t n, const char *out_dir,
                    FILE *err_out)
{
    memset(s, 0, sizeof(*s));
    s->runs = calloc(n ? n : 1, sizeof(*s->runs));
    if (s->runs == NULL)
        return -ENOMEM;
    int left_out = 0;
    for (size_t i = 0; i < n; i++) {
        struct fl_hrun r;
        char err[1024];
        if (fl_hrun_load(dirs[i], &r, err, sizeof(err)) < 0) {
            fprintf(err_out, "faultline report: %s; left out\n", err);
            left_out++;
            continue;
        }
        struct fl_summary_run *o = &s->runs[s->n];
        char page[4200];
        snprintf(page, sizeof(page), "%s/report.html", dirs[i]);
        o->dir = strdup(dirs[i]);
        o->link = relative(out_dir, dirs[i]);
        o->name = strdup(r.name ? r.name : "(unnamed)");
        o->verdict = strdup(r.verdict ? r.verdict : "aborted");
        if (o->link != NULL) {
            size_t len = strlen(o->link) + 16;
            char *l = malloc(len);
            if (l != NULL)
                snprintf(l, len, "%s/report.html", o->link);
            free(o->link);
            o->link = l;
        }
        o->started_ms = r.started_ms;
        o->has_recovery = r.has_recovery;
        o->no_impact = r.no_impact;
        o->recovery_ms = r.recovery_ms;
        o->resolution_ms = r.resolution_ms;
        o->has_rto = r.has_rto;
        o->rto_ms = r.rto_ms;
        json_t *rpo = json_object_get(json_object_get(r.doc, "measurements"), "rpo_ms");
        o->has_rpo = json_is_integer(rpo);
        o->rpo_ms = o->has_rpo ? (int64_t)json_integer_value(rpo) : 0;
        fl_hrun_free(&r);
        s->n++;
        if (o->dir == NULL || o->link == NULL || o->name == NULL || o->verdict == NULL)
            return -ENOMEM;
    }
    qsort(s->runs, s->n, sizeof(*s->runs), by_name_time);
    return left_out;
}

void fl_summary_free(struct fl_summary *s)
{
    for (size_t i = 0; s->runs != NULL && i < s->n; i++) {
        free(s->runs[i].dir);
        free(s->runs[i].link);
        free(s->runs[i].name);
        free(s->runs[i].verdict);
    }
    free(s->runs);
    memset(s, 0, sizeof(*s));
}

static bool passing_recovery(const struct fl_summary_run *r)
{
    return r->has_recovery && strcmp(r->verdict, "pass") == 0;
}

void fl_summary_regressions(struct fl_summary *s)
{
    int64_t past[FL_REGRESSION_WINDOW_DEFAULT];
    for (size_t i = 0; i < s->n; i++) {
        struct fl_summary_run *r = &s->runs[i];
        size_t n = 0;
        /* newest first: walk back through the same experiment's runs */
        for (size_t k = i; k > 0 && n < FL_REGRESSION_WINDOW_DEFAULT; k--) {
            const struct fl_summary_run *p = &s->runs[k - 1];
            if (strcmp(p->name, r->name) != 0)
                break;
            if (passing_recovery(p))
                past[n++] = p->recovery_ms;
        }
        if (!r->has_recovery)
            continue;
        fl_regression g =
            fl_regression_check(past, n, FL_REGRESSION_WINDOW_DEFAULT,
                                FL_REGRESSION_TOLERANCE_DEFAULT, r->recovery_ms, r->resolution_ms);
        r->has_baseline = g.have_baseline;
        r->baseline_ms = g.baseline_ms;
        r->regressed = g.regressed;
    }
}

static void when(int64_t ms, char *buf, size_t len)
{
    if (ms <= 0 || fl_format_rfc3339((uint64_t)ms, buf, len) < 0)
        snprintf(buf, len, "-");
}

/* The trend chart of runs[from, to): recovery over runs, RTO line,
 * regressions ringed. */
#define TREND_W 760
#define TREND_H 220
#define TREND_L 70
#define TREND_R 20
#define TREND_T 16
#define TREND_B 30

static void trend(const struct fl_summary *s, size_t from, size_t to, struct fl_hbuf *b)
{
    int64_t top = 1;
    for (size_t i = from; i < to; i++) {
        const struct fl_summary_run *r = &s->runs[i];
        if (r->has_recovery && r->recovery_ms + r->resolution_ms > top)
            top = r->recovery_ms + r->resolution_ms;
        if (r->has_rto && r->rto_ms > top)
            top = r->rto_ms;
    }
    top += top / 10;
    double pw = TREND_W - TREND_L - TREND_R, ph = TREND_H - TREND_T - TREND_B;
    size_t n = to - from;
    fl_hbuf_printf(
        b,
        "<svg class=\"trend\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
        "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\"><title>Recovery time over "
        "runs</title>\n<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n"
        "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#888\"/>\n",
        TREND_W, TREND_H, TREND_W, TREND_H, TREND_W, TREND_H, TREND_L, TREND_L, TREND_T,
        TREND_H - TREND_B);
    char d[48];
    fl_html_duration(top, d, sizeof(d));
    fl_hbuf_printf(b,
                   "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text><text x=\"%d\" y=\"%d\" "
                   "text-anchor=\"end\">0</text>\n",
                   TREND_L - 4, TREND_T + 4, d, TREND_L - 4, TREND_H - TREND_B);
    const struct fl_summary_run *last = &s->runs[to - 1];
    if (last->has_rto) {
        double y = TREND_T + ph - ph * (double)last->rto_ms / (double)top;
        fl_html_duration(last->rto_ms, d, sizeof(d));
        fl_hbuf_printf(b,
                       "<line class=\"rto\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" "
                       "stroke=\"#b71c1c\" stroke-dasharray=\"6 3\"><title>RTO %s</title></line>\n",
                       TREND_L, TREND_W - TREND_R, y, y, d);
    }
    for (size_t i = from; i < to; i++) {
        const struct fl_summary_run *r = &s->runs[i];
        double x = TREND_L + (n > 1 ? pw * (double)(i - from) / (double)(n - 1) : pw / 2);
        char w[48];
        when(r->started_ms, w, sizeof(w));
        if (!r->has_recovery) {
            fl_hbuf_printf(b,
                           "<text class=\"norec\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" "
                           "fill=\"#c62828\">&#215;<title>%s: %s, no recovery measured</title>"
                           "</text>\n",
                           x, TREND_T + 10, w, r->verdict);
            continue;
        }
        double y = TREND_T + ph - ph * (double)r->recovery_ms / (double)top;
        double yr = ph * (double)r->resolution_ms / (double)top;
        char rec[48], res[48];
        fl_html_duration(r->recovery_ms, rec, sizeof(rec));
        fl_html_duration(r->resolution_ms, res, sizeof(res));
        const char *colour = strcmp(r->verdict, "pass") == 0 ? "#2e7d32" : "#c62828";
        fl_hbuf_printf(b,
                       "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>"
                       "<circle class=\"point%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"%d\" fill=\"%s\" "
                       "stroke=\"%s\" stroke-width=\"2\"><title>%s: %s &#177; %s, %s",
                       x, x, y, y + yr, colour, r->regressed ? " regressed" : "", x, y,
                       r->regressed ? 7 : 4, colour, r->regressed ? "#000" : colour, w, rec, res,
                       r->verdict);
        if (r->regressed) {
            char base[48];
            fl_html_duration(r->baseline_ms, base, sizeof(base));
            fl_hbuf_printf(b, "; REGRESSION against a median of %s", base);
        }
        fl_hbuf_puts(b, "</title></circle>\n");
    }
    fl_hbuf_puts(b, "</svg>\n");
}

int fl_summary_html(const struct fl_summary *s, struct fl_hbuf *b)
{
    fl_html_head(b, "faultline: summary of runs");
    size_t pass = 0, fail = 0, regressed = 0;
    for (size_t i = 0; i < s->n; i++) {
        pass += strcmp(s->runs[i].verdict, "pass") == 0;
        fail += strcmp(s->runs[i].verdict, "fail") == 0;
        regressed += s->runs[i].regressed;
    }
    fl_hbuf_printf(b,
                   "<h1>Summary of %zu runs</h1>\n<p id=\"counts\">%zu passed, %zu failed, %zu "
                   "aborted; %zu slower than their experiment's usual recovery.</p>\n",
                   s->n, pass, fail, s->n - pass - fail, regressed);
    fl_hbuf_puts(b, "<h2>Runs</h2>\n<table id=\"runs\"><tr><th>experiment</th><th>started</th>"
                    "<th>verdict</th><th>recovery</th><th>RTO</th><th>RPO</th><th>report</th>"
                    "</tr>\n");
    for (size_t i = 0; i < s->n; i++) {
        const struct fl_summary_run *r = &s->runs[i];
        char w[48], rec[128] = "-", rto[48] = "-";
        when(r->started_ms, w, sizeof(w));
        if (r->has_recovery) {
            char a[48], c[48];
            fl_html_duration(r->recovery_ms, a, sizeof(a));
            fl_html_duration(r->resolution_ms, c, sizeof(c));
            snprintf(rec, sizeof(rec), "%s &#177; %s%s", a, c,
                     r->regressed ? " <b>(regression)</b>" : "");
        }
        if (r->has_rto)
            fl_html_duration(r->rto_ms, rto, sizeof(rto));
        fl_hbuf_puts(b, "<tr><td>");
        fl_hbuf_esc(b, r->name);
        fl_hbuf_printf(b, "</td><td>%s</td><td class=\"%s\">", w,
                       strcmp(r->verdict, "pass") == 0 ? "good" : "bad");
        fl_hbuf_esc(b, r->verdict);
        fl_hbuf_printf(b, "</td><td>%s</td><td>%s</td><td>", rec, rto);
        if (r->has_rpo) {
            char p[48];
            fl_html_duration(r->rpo_ms, p, sizeof(p));
            fl_hbuf_puts(b, p);
        } else {
            fl_hbuf_puts(b, "not measured");
        }
        fl_hbuf_puts(b, "</td><td><a href=\"");
        fl_hbuf_esc(b, r->link);
        fl_hbuf_puts(b, "\">");
        fl_hbuf_esc(b, r->dir);
        fl_hbuf_puts(b, "</a></td></tr>\n");
    }
    fl_hbuf_puts(b, "</table>\n<h2>Recovery time by experiment</h2>\n<p>Each point is a run "
                    "(bar: its resolution); ringed points are regressions: slower than the median "
                    "of the last 10 passing runs by more than 20 % and by more than two "
                    "resolutions. The dashed line is the RTO.</p>\n");
    for (size_t i = 0; i < s->n;) {
        size_t j = i;
        while (j < s->n && strcmp(s->runs[j].name, s->runs[i].name) == 0)
            j++;
        fl_hbuf_puts(b, "<h3>");
        fl_hbuf_esc(b, s->runs[i].name);
        fl_hbuf_printf(b, " (%zu runs)</h3>\n", j - i);
        trend(s, i, j, b);
        i = j;
    }
    fl_html_tail(b);
    return b->failed ? -ENOMEM : 0;
}

int fl_summary_json(const struct fl_summary *s, struct fl_hbuf *b)
{
    json_t *doc = json_object();
    json_t *runs = json_array();
    if (doc == NULL || runs == NULL) {
        json_decref(doc);
        json_decref(runs);
        return -ENOMEM;
    }
    json_object_set_new(doc, "format", json_integer(1));
    for (size_t i = 0; i < s->n; i++) {
        const struct fl_summary_run *r = &s->runs[i];
        char w[48];
        when(r->started_ms, w, sizeof(w));
        json_t *o = json_pack(
            "{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:b, s:o, s:s}", "dir", r->dir,
            "experiment", r->name, "started_at", w, "verdict", r->verdict, "recovery_time_ms",
            r->has_recovery ? json_integer(r->recovery_ms) : json_null(), "resolution_ms",
            r->has_recovery ? json_integer(r->resolution_ms) : json_null(), "rto_ms",
            r->has_rto ? json_integer(r->rto_ms) : json_null(), "rpo_ms",
            r->has_rpo ? json_integer(r->rpo_ms) : json_null(), "baseline_ms",
            r->has_baseline ? json_integer(r->baseline_ms) : json_null(), "regressed", r->regressed,
            "no_impact", json_boolean(r->no_impact), "report", r->link);
        if (o == NULL || json_array_append_new(runs, o) != 0) {
            json_decref(doc);
            json_decref(runs);
            return -ENOMEM;
        }
    }
    json_object_set_new(doc, "runs", runs);
    char *txt = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (txt == NULL)
        return -ENOMEM;
    fl_hbuf_puts(b, txt);
    fl_hbuf_puts(b, "\n");
    free(txt);
    return b->failed ? -ENOMEM : 0;
}
