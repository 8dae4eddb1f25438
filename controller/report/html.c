/* report.html: see html.h for the page and its geometry. */
#include "controller/report/html.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "controller/report/report.h"
#include "controller/report/scale.h"

#define AXIS_H 34   /* the wall-clock ends and the relative labels */
#define PROBE_H 34  /* one probe row: ticks, then its health band */
#define FAULT_H 26  /* one fault row */
#define BOTTOM_H 30 /* the legend */

/* ---------------------------------------------------------------- helpers */

void fl_html_duration(int64_t ms, char *buf, size_t len)
{
    if (ms < 0)
        ms = 0;
    if (ms < 60000) {
        snprintf(buf, len, "%.2f s", (double)ms / 1000.0);
    } else if (ms < 3600000) {
        snprintf(buf, len, "%" PRId64 " min %" PRId64 " s", ms / 60000, (ms % 60000) / 1000);
    } else if (ms < 86400000) {
        snprintf(buf, len, "%" PRId64 " h %" PRId64 " min", ms / 3600000, (ms % 3600000) / 60000);
    } else {
        snprintf(buf, len, "%" PRId64 " d %" PRId64 " h", ms / 86400000, (ms % 86400000) / 3600000);
    }
}

static void wall(int64_t ms, char *buf, size_t len)
{
    if (ms <= 0 || fl_format_rfc3339((uint64_t)ms, buf, len) < 0)
        snprintf(buf, len, "-");
}

/* "+1.23 s" relative to the origin (injection). */
static void rel(int64_t ms, int64_t origin, char *buf, size_t len)
{
    int64_t d = ms - origin;
    snprintf(buf, len, "%s%.2f s", d < 0 ? "-" : "+", (double)(d < 0 ? -d : d) / 1000.0);
}

void fl_html_head(struct fl_hbuf *b, const char *title)
{
    fl_hbuf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                    "style-src 'unsafe-inline'\">\n<title>");
    fl_hbuf_esc(b, title);
    fl_hbuf_puts(
        b, "</title>\n<style>\n"
           "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1040px}\n"
           "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}\n"
           ".verdict{display:inline-block;padding:2px 10px;border-radius:4px;color:#fff;"
           "font-weight:bold}\n.pass{background:#2e7d32}.fail{background:#c62828}"
           ".aborted{background:#6a1b9a}\n"
           ".warn{border:2px solid #c62828;background:#ffebee;padding:8px 12px;margin:12px 0}\n"
           "table{border-collapse:collapse;margin:4px 0}th,td{border:1px solid #ccc;"
           "padding:3px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}\n"
           "td.bad{color:#c62828;font-weight:bold}td.good{color:#2e7d32;font-weight:bold}\n"
           "pre{background:#f6f6f6;padding:8px;overflow:auto;max-height:480px}\n"
           "svg text{font:11px system-ui,sans-serif}\n"
           "</style>\n</head>\n<body>\n");
}

void fl_html_tail(struct fl_hbuf *b)
{
    fl_hbuf_puts(b, "</body>\n</html>\n");
}

static const char *verdict_class(const char *v)
{
    if (v != NULL && strcmp(v, "pass") == 0)
        return "pass";
    if (v != NULL && strcmp(v, "fail") == 0)
        return "fail";
    return "aborted";
}

/* ------------------------------------------------------------- the header */

static void header(const struct fl_hrun *r, struct fl_hbuf *b)
{
    fl_hbuf_puts(b, "<h1>");
    fl_hbuf_esc(b, r->name ? r->name : "(unnamed experiment)");
    fl_hbuf_printf(b, " <span class=\"verdict %s\" id=\"verdict\">", verdict_class(r->verdict));
    char up[16];
    size_t i = 0;
    for (const char *v = r->verdict ? r->verdict : "aborted"; *v != '\0' && i + 1 < sizeof(up); v++)
        up[i++] = (char)(*v >= 'a' && *v <= 'z' ? *v - 'a' + 'A' : *v);
    up[i] = '\0';
    fl_hbuf_esc(b, up);
    fl_hbuf_puts(b, "</span></h1>\n<p id=\"reason\">");
    fl_hbuf_esc(b, r->reason);
    fl_hbuf_puts(b, "</p>\n");
    char s[48], e[48];
    wall(r->started_ms, s, sizeof(s));
    wall(r->ended_ms, e, sizeof(e));
    fl_hbuf_printf(b, "<p>Run from %s to %s.", s, e);
    if (r->abort_reason != NULL) {
        fl_hbuf_puts(b, " Aborted: ");
        fl_hbuf_esc(b, r->abort_reason);
    }
    fl_hbuf_puts(b, "</p>\n");
    if (r->overloaded)
        fl_hbuf_printf(
            b,
            "<div class=\"warn\" id=\"overloaded\"><b>The controller was overloaded.</b> "
            "%" PRId64 " of %" PRId64 " attempts were started or handled more than "
            "%" PRId64 " ms late and could not be judged (grey on the timeline); the "
            "measurement is less certain than its resolution says. Run the controller "
            "on a less busy machine or probe less often.</div>\n",
            r->overload_late, r->overload_attempts, r->overload_threshold_ms);
}

/* ------------------------------------------------------------- objectives */

static void budget_section(const struct fl_hrun *r, struct fl_hbuf *b)
{
    if (!r->has_budget)
        return;
    fl_hbuf_puts(b, "<h2>Availability budget</h2>\n<div id=\"budget\">\n");
    json_t *a = json_object_get(json_object_get(r->doc, "objectives"), "availability");
    json_t *mt = json_object_get(a, "mttr_ms");
    bool have = json_is_integer(mt) || r->has_recovery;
    if (!have) {
        fl_hbuf_puts(b, "<p>No recovery time was measured, so the budget cannot be checked.</p>"
                        "\n</div>\n");
        return;
    }
    int64_t mttr = json_is_integer(mt) ? (int64_t)json_integer_value(mt) : r->recovery_ms;
    struct fl_avail_result res;
    char err[256];
    if (fl_avail_evaluate(&r->budget, (double)mttr, &res, err, sizeof(err)) < 0) {
        fl_hbuf_puts(b, "<p class=\"warn\">The budget in run.json cannot be used: ");
        fl_hbuf_esc(b, err);
        fl_hbuf_puts(b, "</p>\n</div>\n");
        return;
    }
    char max[48], lasted[48], down[48], rate[96];
    fl_html_duration(res.max_mttr_ms, max, sizeof(max));
    fl_html_duration(mttr, lasted, sizeof(lasted));
    fl_html_duration((int64_t)(res.downtime_ms_per_year + 0.5), down, sizeof(down));
    if (r->budget.failures_per_year > 0)
        snprintf(rate, sizeof(rate), "%g failures a year", r->budget.failures_per_year);
    else {
        char m[48];
        fl_html_duration((int64_t)r->budget.mtbf_ms, m, sizeof(m));
        snprintf(rate, sizeof(rate), "a failure every %s (MTBF)", m);
    }
    unsigned n = r->budget.redundancy ? r->budget.redundancy : 1;
    char across[96] = "";
    if (n > 1)
        snprintf(across, sizeof(across), " on each of %u independent instances", n);
    fl_hbuf_printf(b,
                   "<p>To keep <b>%.4g %%</b> with %s%s, each failure may last at most <b>%s</b>; "
                   "this one lasted <b>%s</b> (the upper bound of the measured recovery time). "
                   "<span class=\"verdict %s\">%s</span></p>\n",
                   r->budget.target * 100, rate, across, max, lasted, res.pass ? "pass" : "fail",
                   res.pass ? "PASS" : "FAIL");
    if (n > 1)
        fl_hbuf_printf(b,
                       "<p>The system is up when any instance is: 1 &minus; (1 &minus; "
                       "A)<sup>%u</sup>.</p>\n",
                       n);
    fl_hbuf_printf(b,
                   "<table><tr><th>implied availability</th><td>%.6f %%</td></tr>"
                   "<tr><th>implied downtime a year</th><td>%s</td></tr>"
                   "<tr><th>largest recovery allowed</th><td>%s</td></tr></table>\n</div>\n",
                   res.availability * 100, down, max);
}

static void objectives(const struct fl_hrun *r, struct fl_hbuf *b)
{
    fl_hbuf_puts(b, "<h2>Objectives</h2>\n<table id=\"objectives\"><tr><th>objective</th>"
                    "<th>target</th><th>measured</th><th>result</th></tr>\n");
    char measured[160], rto[48];
    if (r->has_recovery) {
        char a[48], c[48];
        fl_html_duration(r->recovery_ms, a, sizeof(a));
        fl_html_duration(r->resolution_ms, c, sizeof(c));
        snprintf(measured, sizeof(measured), "%s &plusmn; %s%s", a, c,
                 r->no_impact ? " (no impact)" : "");
    } else {
        snprintf(measured, sizeof(measured), "%s",
                 r->unobserved ? "not observed" : "did not recover");
    }
    if (r->has_rto) {
        fl_html_duration(r->rto_ms, rto, sizeof(rto));
        bool ok = r->has_recovery && r->recovery_ms <= r->rto_ms;
        fl_hbuf_printf(b,
                       "<tr><td>recovery time (RTO)</td><td>&le; %s</td><td>%s</td>"
                       "<td class=\"%s\">%s</td></tr>\n",
                       rto, measured, ok ? "good" : "bad", ok ? "PASS" : "FAIL");
    } else {
        fl_hbuf_printf(b, "<tr><td>recovery time</td><td>none set</td><td>%s</td><td>-</td></tr>\n",
                       measured);
    }
    json_t *obj = json_object_get(r->doc, "objectives");
    if (json_is_integer(json_object_get(obj, "rpo_ms")))
        fl_hbuf_puts(b, "<tr><td>data loss (RPO)</td><td>set</td><td>not measured (no data "
                        "probe)</td><td class=\"bad\">ABORTED</td></tr>\n");
    bool ss = json_is_true(
        json_object_get(json_object_get(r->doc, "measurements"), "steady_state_returned"));
    fl_hbuf_printf(b,
                   "<tr><td>steady state returned</td><td>yes</td><td>%s</td>"
                   "<td class=\"%s\">%s</td></tr>\n</table>\n",
                   ss ? "yes" : "no", ss ? "good" : "bad", ss ? "PASS" : "FAIL");
    if (r->recovered_after_revert)
        fl_hbuf_puts(b, "<p>The system recovered only after the fault was reverted.</p>\n");
    budget_section(r, b);
}

/* --------------------------------------------------------------- timeline */

struct ticks {
    const struct fl_hrun *r;
    const struct fl_scale *s;
    struct fl_thin *thin; /* one per probe */
};

static void add_attempt(void *ctx, size_t probe, int64_t t_ms, int64_t latency_ms, enum fl_tick o,
                        const char *detail)
{
    struct ticks *k = ctx;
    int64_t when = t_ms + (latency_ms > 0 ? latency_ms : 0);
    fl_thin_add(&k->thin[probe], fl_scale_col(k->s, when), when, latency_ms, o, detail);
}

static const char *const tick_colour[FL_TICK_COUNT] = {"#2e7d32", "#9e9e9e", "#ef6c00", "#c62828"};

static void tick_title(const struct fl_thin_col *c, int64_t origin, struct fl_hbuf *b)
{
    char w[48], rl[32];
    wall(c->worst_ms, w, sizeof(w));
    rel(c->worst_ms, origin, rl, sizeof(rl));
    uint64_t n = fl_thin_count(c);
    if (n == 1) {
        fl_hbuf_printf(b, "%s, result at %s (%s), %" PRId64 " ms", fl_tick_name(c->worst), w, rl,
                       c->worst_latency_ms);
    } else {
        char a[48], z[48];
        wall(c->first_ms, a, sizeof(a));
        wall(c->last_ms, z, sizeof(z));
        fl_hbuf_printf(b,
                       "%" PRIu64 " attempts from %s to %s: %" PRIu64 " ok, %" PRIu64
                       " failed, %" PRIu64 " timed out, %" PRIu64 " late; the first %s at %s (%s)",
                       n, a, z, c->n[FL_TICK_OK], c->n[FL_TICK_FAILED], c->n[FL_TICK_TIMEOUT],
                       c->n[FL_TICK_LATE], fl_tick_name(c->worst), w, rl);
    }
    if (c->worst_detail != NULL) {
        fl_hbuf_puts(b, ": ");
        fl_hbuf_esc(b, c->worst_detail);
    }
}

static void probe_row(const struct fl_hrun *r, size_t i, const struct fl_thin *t,
                      const struct fl_scale *s, int y, int64_t origin, struct fl_hbuf *b)
{
    const struct fl_hrun_probe *p = &r->probes[i];
    fl_hbuf_printf(b, "<g class=\"probe\" data-probe=\"%zu\">\n<text x=\"8\" y=\"%d\">", i, y + 16);
    fl_hbuf_esc(b, p->name);
    fl_hbuf_printf(b, "</text>\n");
    /* health band: each state from its change to the next change (or the end) */
    for (size_t h = 0; h < p->n_health; h++) {
        int64_t from = p->health[h].at_ms;
        int64_t to = h + 1 < p->n_health ? p->health[h + 1].at_ms : s->t1_ms;
        double x0 = fl_scale_x(s, from), x1 = fl_scale_x(s, to);
        char w[48], rl[32];
        wall(from, w, sizeof(w));
        rel(from, origin, rl, sizeof(rl));
        fl_hbuf_printf(b,
                       "<rect class=\"health %s\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"6\" "
                       "fill=\"%s\"><title>%s from %s (%s)</title></rect>\n",
                       p->health[h].healthy ? "healthy" : "unhealthy", x0, y + 24,
                       x1 - x0 > 0.5 ? x1 - x0 : 0.5, p->health[h].healthy ? "#a5d6a7" : "#ef9a9a",
                       p->health[h].healthy ? "healthy" : "unhealthy", w, rl);
    }
    for (unsigned c = 0; c < t->width; c++) {
        const struct fl_thin_col *col = &t->cols[c];
        if (fl_thin_count(col) == 0)
            continue;
        /* up to 3 px wide while the next columns are empty */
        int w = 1;
        while (w < 3 && c + (unsigned)w < t->width && fl_thin_count(&t->cols[c + (unsigned)w]) == 0)
            w++;
        fl_hbuf_printf(b,
                       "<rect class=\"tick %s\" data-col=\"%u\" x=\"%u\" y=\"%d\" width=\"%d\" "
                       "height=\"20\" fill=\"%s\"><title>",
                       fl_tick_name(col->worst), c, (unsigned)s->x0 + c, y + 2, w,
                       tick_colour[col->worst]);
        tick_title(col, origin, b);
        fl_hbuf_puts(b, "</title></rect>\n");
    }
    fl_hbuf_puts(b, "</g>\n");
}

static void fault_row(const struct fl_hrun *r, size_t i, const struct fl_scale *s, int y,
                      int64_t origin, struct fl_hbuf *b)
{
    const struct fl_hrun_fault *f = &r->faults[i];
    fl_hbuf_printf(b, "<g class=\"fault\" data-fault=\"%zu\">\n<text x=\"8\" y=\"%d\">", i, y + 14);
    fl_hbuf_esc(b, f->name);
    fl_hbuf_puts(b, " @ ");
    fl_hbuf_esc(b, f->host);
    fl_hbuf_puts(b, "</text>\n");
    if (f->applied_ms > 0) {
        int64_t end = f->reverted_ms > 0 ? f->reverted_ms : s->t1_ms;
        double x0 = fl_scale_x(s, f->applied_ms), x1 = fl_scale_x(s, end);
        char a[48], z[48], ra[32], rz[32];
        wall(f->applied_ms, a, sizeof(a));
        wall(end, z, sizeof(z));
        rel(f->applied_ms, origin, ra, sizeof(ra));
        rel(end, origin, rz, sizeof(rz));
        fl_hbuf_printf(b,
                       "<rect class=\"faultbar%s\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" "
                       "height=\"16\" fill=\"%s\"><title>",
                       f->revert_failed ? " revertfailed" : "", x0, y + 2,
                       x1 - x0 > 1 ? x1 - x0 : 1, f->revert_failed ? "#c62828" : "#5c6bc0");
        fl_hbuf_esc(b, f->kind);
        fl_hbuf_printf(b, " applied at %s (%s), %s at %s (%s)", a, ra,
                       f->reverted_ms > 0 ? "reverted" : "still active", z, rz);
        if (f->outcome != NULL) {
            fl_hbuf_puts(b, ": ");
            fl_hbuf_esc(b, f->outcome);
        }
        if (f->detail != NULL && f->detail[0] != '\0') {
            fl_hbuf_puts(b, ", ");
            fl_hbuf_esc(b, f->detail);
        }
        fl_hbuf_printf(b, "</title></rect>\n<text x=\"%.1f\" y=\"%d\" fill=\"%s\">", x0 + 3, y + 14,
                       f->revert_failed ? "#fff" : "#fff");
        fl_hbuf_esc(b, f->kind);
        if (f->revert_failed) {
            fl_hbuf_puts(b, " REVERT FAILED: ");
            fl_hbuf_esc(b, f->detail);
        } else if (f->detail != NULL && f->detail[0] != '\0') {
            fl_hbuf_puts(b, ": ");
            fl_hbuf_esc(b, f->detail);
        }
        fl_hbuf_puts(b, "</text>\n");
    } else {
        fl_hbuf_printf(b, "<text x=\"%d\" y=\"%d\" fill=\"#c62828\">not applied: ", FL_HTML_X0,
                       y + 14);
        fl_hbuf_esc(b, f->outcome);
        fl_hbuf_puts(b, "</text>\n");
    }
    fl_hbuf_puts(b, "</g>\n");
}

static void mark(const struct fl_scale *s, const char *name, int64_t t, int64_t origin, int top,
                 int bottom, const char *colour, const char *dash, const char *meaning,
                 struct fl_hbuf *b)
{
    if (t <= 0)
        return;
    char w[48], rl[32];
    wall(t, w, sizeof(w));
    rel(t, origin, rl, sizeof(rl));
    double x = fl_scale_x(s, t);
    fl_hbuf_printf(b,
                   "<line class=\"mark\" data-mark=\"%s\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" "
                   "y2=\"%d\" stroke=\"%s\" stroke-width=\"1.5\"%s%s%s><title>%s at %s (%s): %s"
                   "</title></line>\n",
                   name, x, x, top, bottom, colour, dash ? " stroke-dasharray=\"" : "",
                   dash ? dash : "", dash ? "\"" : "", name, w, rl, meaning);
}

static void shade(const struct fl_scale *s, const char *cls, int64_t from, int64_t to, int top,
                  int bottom, const char *fill, const char *what, int64_t origin, struct fl_hbuf *b)
{
    if (from <= 0 || to <= from)
        return;
    double x0 = fl_scale_x(s, from), x1 = fl_scale_x(s, to);
    char a[48], z[48], ra[32], rz[32];
    wall(from, a, sizeof(a));
    wall(to, z, sizeof(z));
    rel(from, origin, ra, sizeof(ra));
    rel(to, origin, rz, sizeof(rz));
    fl_hbuf_printf(b,
                   "<rect class=\"%s\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" "
                   "fill=\"%s\"><title>%s from %s (%s) to %s (%s)</title></rect>\n",
                   cls, x0, top, x1 - x0 > 1 ? x1 - x0 : 1, bottom - top, fill, what, a, ra, z, rz);
}

/* The marks in words under the timeline: readable without hovering. */
static void mark_list(const struct fl_hrun *r, int64_t origin, struct fl_hbuf *b)
{
    static const char *const names[] = {"injected", "impact", "detected", "reverted", "recovered"};
    const int64_t at[] = {r->injected_ms, r->impact_ms, r->detected_ms, r->reverted_ms,
                          r->recovered_ms};
    int order[] = {0, 1, 2, 3, 4}; /* by time; ties keep this order */
    for (int i = 1; i < 5; i++)
        for (int k = i; k > 0 && at[order[k - 1]] > at[order[k]]; k--) {
            int t = order[k];
            order[k] = order[k - 1];
            order[k - 1] = t;
        }
    fl_hbuf_puts(b, "<p id=\"marks\">");
    bool any = false;
    for (int n = 0; n < 5; n++) {
        int i = order[n];
        if (at[i] <= 0)
            continue;
        char rl[32];
        rel(at[i], origin, rl, sizeof(rl));
        fl_hbuf_printf(b, "%s%s %s", any ? "; " : "", names[i], rl);
        if (i == 4 && r->has_recovery) {
            char res[48];
            fl_html_duration(r->resolution_ms, res, sizeof(res));
            fl_hbuf_printf(b, " (&#177; %s)", res);
        }
        any = true;
    }
    if (r->has_rto && r->injected_ms > 0) {
        char rl[32];
        rel(r->injected_ms + r->rto_ms, origin, rl, sizeof(rl));
        fl_hbuf_printf(b, "%sRTO line %s", any ? "; " : "", rl);
    }
    fl_hbuf_puts(b, ".</p>\n");
}

static int timeline(const struct fl_hrun *r, struct fl_hbuf *b, char *err, size_t errlen)
{
    struct fl_scale s;
    fl_scale_init(&s, r->started_ms, r->ended_ms, FL_HTML_X0, FL_HTML_X1);
    int64_t origin = r->injected_ms > 0 ? r->injected_ms : r->started_ms;
    unsigned width = fl_scale_width(&s);
    struct ticks k = {r, &s, calloc(r->n_probes ? r->n_probes : 1, sizeof(struct fl_thin))};
    if (k.thin == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = 0;
    for (size_t i = 0; i < r->n_probes && rc == 0; i++)
        rc = fl_thin_init(&k.thin[i], width);
    uint64_t malformed = 0;
    if (rc == 0)
        rc = fl_hrun_attempts(r, add_attempt, &k, &malformed, err, errlen);
    else
        snprintf(err, errlen, "out of memory");
    if (rc == 0) {
        int top = AXIS_H;
        int rows = top + (int)r->n_probes * PROBE_H + (int)r->n_faults * FAULT_H;
        int height = rows + BOTTOM_H;
        fl_hbuf_printf(
            b,
            "<h2>Timeline</h2>\n<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" "
            "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" data-t0=\"%" PRId64
            "\" data-t1=\"%" PRId64 "\" data-x0=\"%d\" data-x1=\"%d\" role=\"img\">\n"
            "<title>Timeline of the run: time since injection</title>\n"
            "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n",
            FL_HTML_WIDTH, height, FL_HTML_WIDTH, height, s.t0_ms, s.t1_ms, FL_HTML_X0, FL_HTML_X1,
            FL_HTML_WIDTH, height);
        /* phases, under everything */
        shade(&s, "phase steady", r->started_ms, r->injected_ms, top, rows, "#e3f2fd",
              "steady-state check", origin, b);
        shade(&s, "phase recoverywait", r->reverted_ms, r->ended_ms, top, rows, "#fff8e1",
              "recovery wait (faults reverted)", origin, b);
        shade(&s, "bracket", r->last_failure_ms, r->recovered_ms, top, rows, "#c8e6c9",
              "recovery happened in this bracket (the resolution)", origin, b);
        /* the axis: wall-clock ends, and labels relative to injection */
        char a[48], z[48];
        wall(s.t0_ms, a, sizeof(a));
        wall(s.t1_ms, z, sizeof(z));
        fl_hbuf_printf(b,
                       "<text x=\"%d\" y=\"12\">%s</text>\n<text x=\"%d\" y=\"12\" "
                       "text-anchor=\"end\">%s</text>\n",
                       FL_HTML_X0, a, FL_HTML_X1, z);
        int64_t step = fl_scale_step_ms(s.t1_ms - s.t0_ms, 10);
        int64_t first = origin - ((origin - s.t0_ms) / step) * step;
        for (int64_t t = first; t <= s.t1_ms; t += step) {
            double x = fl_scale_x(&s, t);
            char rl[32];
            rel(t, origin, rl, sizeof(rl));
            fl_hbuf_printf(b,
                           "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#ddd\"/>"
                           "<text x=\"%.1f\" y=\"28\" text-anchor=\"middle\">%s</text>\n",
                           x, x, top, rows, x, rl);
        }
        /* the marks under the rows, so no mark hides a tick */
        mark(&s, "injected", r->injected_ms, origin, top, rows, "#283593", NULL,
             "the first fault was applied", b);
        mark(&s, "impact", r->impact_ms, origin, top, rows, "#ef6c00", NULL,
             "the first failed result after injection", b);
        mark(&s, "detected", r->detected_ms, origin, top, rows, "#c62828", NULL,
             "a recovery probe turned unhealthy", b);
        mark(&s, "reverted", r->reverted_ms, origin, top, rows, "#5c6bc0", "2 2",
             "the last revert that undid something", b);
        mark(&s, "recovered", r->recovered_ms, origin, top, rows, "#2e7d32", NULL,
             "every impacted recovery probe was healthy again (upper bound)", b);
        if (r->has_rto && r->injected_ms > 0) {
            char rt[48], meaning[96];
            fl_html_duration(r->rto_ms, rt, sizeof(rt));
            snprintf(meaning, sizeof(meaning), "the RTO objective, injected + %s", rt);
            mark(&s, "rto", r->injected_ms + r->rto_ms, origin, top, rows, "#b71c1c", "6 3",
                 meaning, b);
        }
        for (size_t i = 0; i < r->n_probes; i++)
            probe_row(r, i, &k.thin[i], &s, top + (int)i * PROBE_H, origin, b);
        for (size_t i = 0; i < r->n_faults; i++)
            fault_row(r, i, &s, top + (int)r->n_probes * PROBE_H + (int)i * FAULT_H, origin, b);
        fl_hbuf_printf(b, "<g class=\"legend\" transform=\"translate(%d,%d)\">", FL_HTML_X0,
                       rows + 18);
        static const char *const names[] = {"ok", "failed", "timeout", "late (not judged)"};
        static const int order[] = {FL_TICK_OK, FL_TICK_FAILED, FL_TICK_TIMEOUT, FL_TICK_LATE};
        for (int i = 0; i < 4; i++)
            fl_hbuf_printf(b,
                           "<rect x=\"%d\" y=\"-9\" width=\"10\" height=\"10\" fill=\"%s\"/>"
                           "<text x=\"%d\" y=\"0\">%s</text>",
                           i * 120, tick_colour[order[i]], i * 120 + 14, names[i]);
        fl_hbuf_puts(b, "</g>\n</svg>\n");
        mark_list(r, origin, b);
        if (malformed > 0)
            fl_hbuf_printf(b,
                           "<p class=\"warn\">%" PRIu64 " lines of the attempts file could not "
                           "be read and are not drawn.</p>\n",
                           malformed);
    }
    for (size_t i = 0; i < r->n_probes; i++)
        fl_thin_free(&k.thin[i]);
    free(k.thin);
    return rc;
}

/* ----------------------------------------------------------------- tables */

static void faults_table(const struct fl_hrun *r, struct fl_hbuf *b)
{
    fl_hbuf_puts(b, "<h2>Faults</h2>\n<table id=\"faults\"><tr><th>fault</th><th>host</th>"
                    "<th>kind</th><th>applied</th><th>reverted</th><th>outcome</th>"
                    "<th>detail</th></tr>\n");
    for (size_t i = 0; i < r->n_faults; i++) {
        const struct fl_hrun_fault *f = &r->faults[i];
        char a[48], z[48];
        wall(f->applied_ms, a, sizeof(a));
        wall(f->reverted_ms, z, sizeof(z));
        fl_hbuf_puts(b, "<tr><td>");
        fl_hbuf_esc(b, f->name);
        fl_hbuf_puts(b, "</td><td>");
        fl_hbuf_esc(b, f->host);
        fl_hbuf_puts(b, "</td><td>");
        fl_hbuf_esc(b, f->kind);
        fl_hbuf_printf(b, "</td><td>%s</td><td>%s</td><td%s>", a, z,
                       f->revert_failed ? " class=\"bad\"" : "");
        fl_hbuf_esc(b, f->outcome);
        fl_hbuf_puts(b, "</td><td>");
        fl_hbuf_esc(b, f->detail);
        fl_hbuf_puts(b, "</td></tr>\n");
    }
    fl_hbuf_puts(b, "</table>\n");
}

static void probes_table(const struct fl_hrun *r, struct fl_hbuf *b)
{
    fl_hbuf_puts(b, "<h2>Probes</h2>\n<table id=\"probes\"><tr><th>probe</th><th>kind</th>"
                    "<th>interval</th><th>timeout</th><th>rise / fall</th><th>recovery probe</th>"
                    "<th>ok</th><th>failed</th><th>timed out</th><th>late</th></tr>\n");
    for (size_t i = 0; i < r->n_probes; i++) {
        const struct fl_hrun_probe *p = &r->probes[i];
        fl_hbuf_puts(b, "<tr><td>");
        fl_hbuf_esc(b, p->name);
        fl_hbuf_puts(b, "</td><td>");
        fl_hbuf_esc(b, p->kind);
        fl_hbuf_printf(b,
                       "</td><td>%" PRId64 " ms</td><td>%" PRId64 " ms</td><td>%d / %d</td>"
                       "<td>%s</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%" PRIu64
                       "</td><td>%" PRIu64 "</td></tr>\n",
                       p->interval_ms, p->timeout_ms, p->rise, p->fall,
                       p->in_recovery ? "yes" : "no", p->counts[FL_TICK_OK],
                       p->counts[FL_TICK_FAILED], p->counts[FL_TICK_TIMEOUT],
                       p->counts[FL_TICK_LATE]);
    }
    fl_hbuf_puts(b, "</table>\n");
}

static void experiment_file(const struct fl_hrun *r, struct fl_hbuf *b)
{
    fl_hbuf_puts(b, "<h2>The experiment file as run</h2>\n<p>");
    fl_hbuf_esc(b, r->path);
    fl_hbuf_puts(b, "</p>\n");
    int fd = r->path != NULL ? open(r->path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0) {
        fl_hbuf_puts(b, "<p>(the file could not be read when this page was written)</p>\n");
        return;
    }
    char *buf = malloc(FL_HTML_EXPERIMENT_MAX + 1);
    size_t done = 0;
    while (buf != NULL && done < FL_HTML_EXPERIMENT_MAX) {
        ssize_t n = read(fd, buf + done, FL_HTML_EXPERIMENT_MAX - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    char extra;
    bool more = buf != NULL && done == FL_HTML_EXPERIMENT_MAX && read(fd, &extra, 1) == 1;
    close(fd);
    if (buf == NULL) {
        b->failed = true;
        return;
    }
    fl_hbuf_puts(b, "<pre id=\"experiment\">");
    fl_hbuf_escn(b, buf, done);
    fl_hbuf_puts(b, "</pre>\n");
    if (more)
        fl_hbuf_printf(b,
                       "<p class=\"warn\">The file is longer than %zu bytes; only that much is "
                       "shown.</p>\n",
                       FL_HTML_EXPERIMENT_MAX);
    free(buf);
}

int fl_report_html_render(const struct fl_hrun *r, struct fl_hbuf *b, char *err, size_t errlen)
{
    char title[300];
    snprintf(title, sizeof(title), "faultline: %s", r->name ? r->name : "run");
    fl_html_head(b, title);
    header(r, b);
    objectives(r, b);
    int rc = timeline(r, b, err, errlen);
    if (rc < 0)
        return rc;
    faults_table(r, b);
    probes_table(r, b);
    experiment_file(r, b);
    fl_hbuf_puts(b, "<h2>The run record (run.json)</h2>\n<p>Embedded below as "
                    "<code>&lt;script type=\"application/json\" id=\"run-json\"&gt;</code>; "
                    "view the page source to read it.</p>\n"
                    "<script type=\"application/json\" id=\"run-json\">");
    fl_hbuf_script_json(b, r->raw, r->raw_len);
    fl_hbuf_puts(b, "</script>\n");
    fl_html_tail(b);
    if (b->failed) {
        snprintf(err, errlen, "out of memory, or the page is above the limit of %zu bytes",
                 FL_HBUF_MAX);
        return -ENOMEM;
    }
    return 0;
}

int fl_report_html_dir(const char *dir, char *err, size_t errlen)
{
    struct fl_hrun r;
    int rc = fl_hrun_load(dir, &r, err, errlen);
    if (rc < 0)
        return rc;
    struct fl_hbuf b = {0};
    char e[512];
    rc = fl_report_html_render(&r, &b, e, sizeof(e));
    if (rc < 0) {
        snprintf(err, errlen, "%s/report.html: %s", dir, e);
    } else {
        char path[4200];
        snprintf(path, sizeof(path), "%s/report.html", dir);
        rc = fl_report_write_atomic(path, b.p, b.len, err, errlen);
    }
    fl_hbuf_free(&b);
    fl_hrun_free(&r);
    return rc;
}
