/* report.html and the summary page on fixed run records made by hand:
 * scales, tick thinning (no failure dropped, "late" never a failure),
 * run.json formats 1 and 2 (attempts.jsonl streamed), escaping, determinism,
 * the regression rule over runs, refusals. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "controller/report/html.h"
#include "controller/report/report.h"
#include "controller/report/scale.h"
#include "controller/report/summary.h"
#include "controller/report/thin.h"

/* 2026-11-25T16:51:00.000Z */
#define T0 1795625460000LL

static char tmp[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmp, sizeof(tmp), "/tmp/fl-htmlreport-unit.XXXXXX");
    return mkdtemp(tmp) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    /* the test's own folder under /tmp, made by mkdtemp above */
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[256];
    mkdir(dir, 0755);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static char *render(const char *dir)
{
    struct fl_hrun r;
    char err[512];
    int rc = fl_hrun_load(dir, &r, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    struct fl_hbuf b = {0};
    assert_int_equal(fl_report_html_render(&r, &b, err, sizeof(err)), 0);
    fl_hrun_free(&r);
    return b.p;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void stamp(int64_t ms, char *buf, size_t len)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char d[32];
    strftime(d, sizeof(d), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", d, (int)(ms % 1000));
}

/* ------------------------------------------------------------------ scale */

static void scale_maps_and_clamps(void **state)
{
    (void)state;
    struct fl_scale s;
    fl_scale_init(&s, 1000, 11000, 210, 970); /* 10 s on 760 px: 76 px a second */
    assert_float_equal(fl_scale_x(&s, 1000), 210, 1e-9);
    assert_float_equal(fl_scale_x(&s, 6000), 590, 1e-9);
    assert_float_equal(fl_scale_x(&s, 11000), 970, 1e-9);
    assert_float_equal(fl_scale_x(&s, 0), 210, 1e-9);     /* before: the left edge */
    assert_float_equal(fl_scale_x(&s, 99999), 970, 1e-9); /* after: the right edge */
    assert_int_equal(fl_scale_width(&s), 760);
    assert_int_equal(fl_scale_col(&s, 6000), 380);
    assert_int_equal(fl_scale_col(&s, 11000), 759); /* the end is in the last column */
    assert_int_equal(fl_scale_col(&s, 1013), 0);    /* 13 ms = 0.988 px */
    assert_int_equal(fl_scale_col(&s, 1014), 1);    /* 14 ms = 1.064 px */
    fl_scale_init(&s, 5, 5, 0, 100);                /* an empty domain is widened */
    assert_int_equal(s.t1_ms, 6);
    assert_int_equal(fl_scale_step_ms(10000, 10), 1000);
    assert_int_equal(fl_scale_step_ms(10001, 10), 2000);
    assert_int_equal(fl_scale_step_ms(45000, 10), 5000);
    assert_int_equal(fl_scale_step_ms(3600000, 10), 500000);
    assert_int_equal(fl_scale_step_ms(7, 0), 10);
}

/* ------------------------------------------------------------------- thin */

static void thinning_keeps_every_failure(void **state)
{
    (void)state;
    struct fl_thin t;
    assert_int_equal(fl_thin_init(&t, 760), 0);
    /* 10 000 attempts over 760 columns; one failure in column 123, one
     * timeout in 400; late attempts everywhere in column 600 */
    for (unsigned i = 0; i < 10000; i++) {
        unsigned col = i * 760 / 10000;
        enum fl_tick o = FL_TICK_OK;
        if (i == 1620)
            o = FL_TICK_FAILED;
        if (i == 5265)
            o = FL_TICK_TIMEOUT;
        if (col == 600)
            o = FL_TICK_LATE;
        fl_thin_add(&t, col, i, 5, o, o == FL_TICK_FAILED ? "refused" : "fine");
    }
    assert_int_equal(1620 * 760 / 10000, 123);
    assert_int_equal(5265 * 760 / 10000, 400);
    unsigned failed = 0, timeout = 0, late = 0;
    for (unsigned c = 0; c < t.width; c++) {
        failed += t.cols[c].worst == FL_TICK_FAILED;
        timeout += t.cols[c].worst == FL_TICK_TIMEOUT;
        late += t.cols[c].worst == FL_TICK_LATE;
    }
    assert_int_equal(failed, 1);
    assert_int_equal(t.cols[123].worst, FL_TICK_FAILED);
    assert_string_equal(t.cols[123].worst_detail, "refused");
    assert_int_equal(t.cols[123].worst_ms, 1620);
    assert_int_equal(timeout, 1);
    assert_int_equal(t.cols[400].worst, FL_TICK_TIMEOUT);
    assert_int_equal(late, 1);
    assert_int_equal(t.cols[600].n[FL_TICK_FAILED], 0);
    /* a late attempt after a failure leaves the failure; past the last
     * column is clamped into it */
    fl_thin_add(&t, 123, 1, 0, FL_TICK_LATE, "late");
    assert_int_equal(t.cols[123].worst, FL_TICK_FAILED);
    fl_thin_add(&t, 5000, 1, 0, FL_TICK_FAILED, NULL);
    assert_int_equal(t.cols[759].worst, FL_TICK_FAILED);
    /* a long detail is cut on a UTF-8 boundary */
    char d[400];
    memset(d, 'a', sizeof(d));
    for (size_t i = 150; i + 2 < sizeof(d); i += 2) {
        d[i] = '\xc3';
        d[i + 1] = '\xa9';
    }
    d[sizeof(d) - 1] = '\0';
    fl_thin_add(&t, 10, 99999, 0, FL_TICK_FAILED, d);
    assert_non_null(t.cols[10].worst_detail);
    size_t n = strlen(t.cols[10].worst_detail);
    assert_true(n < FL_THIN_DETAIL_MAX);
    assert_int_equal(fl_report_utf8_seq(t.cols[10].worst_detail + n - 2), 2);
    /* memory is per column, and a column without a detail holds none: a
     * probe's row is 760 of them, 1,000 probes 760,000 (issue 12 item 5:
     * 232 bytes a column made report.html's timeline peak at 176 MiB) */
    fl_thin_add(&t, 700, 1, 0, FL_TICK_OK, NULL);
    assert_null(t.cols[700].worst_detail);
    assert_true(sizeof(struct fl_thin_col) <= 96);
    fl_thin_free(&t);
}

/* -------------------------------------------------------------- format 1 */

#define RUN1_FMT                                                                                   \
    "{\"format\": 1,\n"                                                                            \
    " \"experiment\": {\"name\": \"%s\", \"description\": null, \"path\": \"%s\"},\n"              \
    " \"verdict\": \"%s\", \"reason\": \"recovered <b>fast</b> & well\", \"abort_reason\": "       \
    "null,\n"                                                                                      \
    " \"started_at\": \"%s\", \"ended_at\": \"%s\",\n"                                             \
    " \"measurements\": {\"injected_at\": \"%s\", \"reverted_at\": null, \"impact_at\": null,\n"   \
    "   \"detected_at\": null, \"recovered_at\": \"%s\", \"last_failure_at\": \"%s\",\n"           \
    "   \"recovery_time_ms\": %lld, \"resolution_ms\": %lld, \"no_impact\": false,\n"              \
    "   \"recovered_after_revert\": false, \"unobserved\": false, \"steady_state_returned\": "     \
    "true},\n"                                                                                     \
    " \"objectives\": {\"rto_ms\": 5000, \"rpo_ms\": null%s},\n"                                   \
    " \"faults\": [{\"name\": \"cut\", \"host\": {\"name\": \"<web1>\", \"address\": "             \
    "\"10.0.0.1\","                                                                                \
    " \"port\": 7411}, \"kind\": \"network_drop\", \"applied_at\": \"%s\", \"reverted_at\": null," \
    " \"outcome\": \"REVERT FAILED\", \"revert_failed\": true, \"detail\": \"nft said <no>\"}],\n" \
    " \"probes\": [{\"name\": \"front<end>\", \"kind\": \"http\", \"interval_ms\": 100,"           \
    " \"timeout_ms\": 90, \"rise\": 2, \"fall\": 2, \"in_recovery\": true, \"timeline\": "         \
    "[%s]}]}\n"

/* A format-1 run of 10 s: an attempt every period ms from T0, failing in
 * [fail_from, fail_to) ms after T0. */
static void make_run1(const char *dir, const char *name, const char *verdict, int64_t started,
                      long long recovery, long long resolution, const char *budget, int period,
                      int fail_from, int fail_to)
{
    size_t cap = 200 + (size_t)(10000 / period + 1) * 160;
    char *tl = malloc(cap);
    assert_non_null(tl);
    size_t o = 0;
    for (int t = 0; t < 10000; t += period) {
        char s[40];
        stamp(started + t, s, sizeof(s));
        bool ok = t < fail_from || t >= fail_to;
        o += (size_t)snprintf(tl + o, cap - o,
                              "%s{\"started_at\": \"%s\", \"latency_ms\": 3, \"ok\": %s, "
                              "\"detail\": \"%s\"}",
                              o ? ",\n" : "", s, ok ? "true" : "false",
                              ok ? "200" : "</script><script>alert(1)</script>");
    }
    char st[40], en[40], inj[40], rec[40], lf[40];
    stamp(started, st, sizeof(st));
    stamp(started + 10000, en, sizeof(en));
    stamp(started + 2000, inj, sizeof(inj));
    stamp(started + 2000 + recovery, rec, sizeof(rec));
    stamp(started + 2000 + recovery - resolution, lf, sizeof(lf));
    size_t len = strlen(RUN1_FMT) + strlen(tl) + 1024;
    char *doc = malloc(len);
    assert_non_null(doc);
    snprintf(doc, len, RUN1_FMT, name, "/nonexistent/experiment.yaml", verdict, st, en, inj, rec,
             lf, recovery, resolution, budget ? budget : "", inj, tl);
    write_file(dir, "run.json", doc);
    free(doc);
    free(tl);
}

static void format1_page(void **state)
{
    (void)state;
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/f1", tmp);
    make_run1(dir, "web & <primary>", "pass", T0, 1500, 100,
              ", \"availability\": {\"target\": 99.95, \"failures_per_year\": 6}", 10, 2500, 3400);
    char *page = render(dir);
    /* 1 000 attempts, 90 failed, in a 760 px plot: thinned to columns */
    size_t ticks = count(page, "class=\"tick ");
    assert_true(ticks <= 760);
    /* the failures from 2.5 s to 3.4 s (result times +3 ms) cover columns
     * floor(2503 * 0.076) = 190 to floor(3393 * 0.076) = 257, every one */
    for (int c = 190; c <= 257; c++) {
        char want[64];
        snprintf(want, sizeof(want), "class=\"tick failed\" data-col=\"%d\"", c);
        assert_non_null(strstr(page, want));
    }
    assert_int_equal(count(page, "class=\"tick failed\""), 257 - 190 + 1);
    /* everything from outside is escaped; the embedded run.json cannot end
     * its script element */
    assert_null(strstr(page, "<primary>"));
    assert_non_null(strstr(page, "web &amp; &lt;primary&gt;"));
    assert_null(strstr(page, "<web1>"));
    assert_null(strstr(page, "<b>fast"));
    assert_int_equal(count(page, "<script"), 1);
    assert_int_equal(count(page, "</script>"), 1);
    assert_non_null(strstr(page, "\\u003c/script>\\u003cscript>alert(1)"));
    /* marks at their x: injected at 2 s = 210 + 152 = 362.0; the RTO at 7 s */
    assert_non_null(strstr(page, "data-mark=\"injected\" x1=\"362.0\""));
    assert_non_null(strstr(page, "data-mark=\"rto\" x1=\"742.0\""));
    assert_non_null(strstr(page, "data-mark=\"recovered\" x1=\"476.0\""));
    /* a failed revert in red, with its message */
    assert_non_null(strstr(page, "faultbar revertfailed"));
    assert_non_null(strstr(page, "REVERT FAILED: nft said &lt;no&gt;"));
    /* the budget, as the issue words it */
    assert_non_null(strstr(page, "at most <b>43 min 48 s</b>"));
    assert_non_null(strstr(page, "this one lasted <b>1.50 s</b>"));
    /* no external asset, no network */
    assert_null(strstr(page, "http://e"));
    assert_null(strstr(page, "src="));
    assert_null(strstr(page, "href="));
    /* the same input, the same bytes */
    char *again = render(dir);
    assert_string_equal(page, again);
    free(again);
    free(page);
}

static void no_budget_no_section(void **state)
{
    (void)state;
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/nobudget", tmp);
    make_run1(dir, "x", "pass", T0, 1500, 100, NULL, 500, 2500, 3400);
    char *page = render(dir);
    assert_null(strstr(page, "id=\"budget\""));
    assert_null(strstr(page, "id=\"overloaded\""));
    free(page);
}

static void budget_forms(void **state)
{
    (void)state;
    char dir[128];
    /* 99.99 % on 2 instances, 12 failures a year: each may last
     * 0.01 * year / 12 = 26 280 000 ms = 7 h 18 min */
    snprintf(dir, sizeof(dir), "%s/b2", tmp);
    make_run1(dir, "x", "pass", T0, 1500, 100,
              ", \"availability\": {\"target\": 0.9999, \"failures_per_year\": 12, "
              "\"redundancy\": 2}",
              500, 2500, 3400);
    char *page = render(dir);
    assert_non_null(strstr(page, "at most <b>7 h 18 min</b>"));
    assert_non_null(strstr(page, "on each of 2 independent instances"));
    free(page);
    /* mtbf 60 d at 99.9 %: 5 189 189 ms = 1 h 26 min */
    snprintf(dir, sizeof(dir), "%s/b3", tmp);
    make_run1(dir, "x", "pass", T0, 1500, 100,
              ", \"availability\": {\"target\": 99.9, \"mtbf_ms\": 5184000000}", 500, 2500, 3400);
    page = render(dir);
    assert_non_null(strstr(page, "at most <b>1 h 26 min</b>"));
    assert_non_null(strstr(page, "(MTBF)"));
    free(page);
    /* a budget that makes no sense is said to, not drawn */
    snprintf(dir, sizeof(dir), "%s/b4", tmp);
    make_run1(dir, "x", "pass", T0, 1500, 100,
              ", \"availability\": {\"target\": 150, \"failures_per_year\": 1}", 500, 2500, 3400);
    page = render(dir);
    assert_non_null(strstr(page, "cannot be used"));
    free(page);
}

/* -------------------------------------------------------------- format 2 */

#define RUN2                                                                                       \
    "{\"format\": 2, \"experiment\": {\"name\": \"long\", \"path\": null},\n"                      \
    " \"verdict\": \"pass\", \"reason\": \"ok\", \"abort_reason\": null,\n"                        \
    " \"started_at\": \"2026-11-25T16:51:00.000Z\", \"ended_at\": \"2026-11-25T16:51:10.000Z\",\n" \
    " \"measurements\": {\"injected_at\": \"2026-11-25T16:51:02.000Z\", \"recovery_time_ms\": "    \
    "900,"                                                                                         \
    " \"resolution_ms\": 100},\n"                                                                  \
    " \"objectives\": {\"rto_ms\": null, \"rpo_ms\": null},\n"                                     \
    " \"controller_overloaded\": {\"late\": 3, \"attempts\": 20000, \"threshold_ms\": 250},\n"     \
    " \"attempts_file\": %s,\n"                                                                    \
    " \"faults\": [],\n"                                                                           \
    " \"probes\": [\n"                                                                             \
    "  {\"name\": \"a\", \"kind\": \"tcp\", \"interval_ms\": 1, \"timeout_ms\": 1, \"rise\": 1,"   \
    "   \"fall\": 1, \"in_recovery\": true,\n"                                                     \
    "   \"counts\": {\"attempts\": 10000, \"ok\": 9996, \"failed\": 1, \"timeout\": 0, \"late\": " \
    "3},\n"                                                                                        \
    "   \"health\": [{\"at\": \"2026-11-25T16:51:00.001Z\", \"healthy\": true},"                   \
    "                {\"at\": \"2026-11-25T16:51:03.000Z\", \"healthy\": false},"                  \
    "                {\"at\": \"2026-11-25T16:51:03.900Z\", \"healthy\": true}],\n"                \
    "   \"failures\": [{\"first_at\": \"2026-11-25T16:51:03.000Z\", \"last_at\":"                  \
    " \"2026-11-25T16:51:03.000Z\", \"count\": 1, \"outcome\": \"failed\", \"detail\": "           \
    "\"reset\"}]},\n"                                                                              \
    "  {\"name\": \"b\", \"kind\": \"tcp\", \"interval_ms\": 1, \"timeout_ms\": 1, \"rise\": 1,"   \
    "   \"fall\": 1, \"in_recovery\": false,\n"                                                    \
    "   \"counts\": {\"attempts\": 10000, \"ok\": 9999, \"failed\": 0, \"timeout\": 1, \"late\": " \
    "0},\n"                                                                                        \
    "   \"health\": [], \"failures\": [{\"first_at\": \"2026-11-25T16:51:05.000Z\", \"last_at\":"  \
    " \"2026-11-25T16:51:06.000Z\", \"count\": 2, \"outcome\": \"timeout\", \"detail\": \"t\","    \
    " \"last_detail\": \"t2\"}]}]}\n"

static void format2_streamed(void **state)
{
    (void)state;
    char dir[128], path[192];
    snprintf(dir, sizeof(dir), "%s/f2", tmp);
    char doc[4096];
    snprintf(doc, sizeof(doc), RUN2, "\"attempts.jsonl\"");
    write_file(dir, "run.json", doc);
    snprintf(path, sizeof(path), "%s/attempts.jsonl", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    /* 10 000 attempts each for probes 0 and 1, 1 ms apart from T0 */
    for (int i = 0; i < 10000; i++) {
        for (int p = 0; p < 2; p++) {
            const char *o = "ok";
            if (p == 0 && i == 3000)
                o = "failed";
            if (p == 0 && (i == 7000 || i == 7001 || i == 7002))
                o = "late";
            if (p == 1 && i == 5000)
                o = "timeout";
            fprintf(f, "{\"p\":%d,\"t\":%lld,\"l\":0,\"o\":\"%s\",\"d\":\"%s\"}\n", p, T0 + i, o,
                    strcmp(o, "failed") == 0 ? "reset <by peer>" : "");
        }
    }
    /* two malformed lines: not JSON, and one longer than the limit */
    fputs("not json\n", f);
    for (int i = 0; i < FL_HRUN_LINE_MAX + 10; i++)
        fputc('x', f);
    fputs("\n{\"p\":9,\"t\":1,\"l\":0,\"o\":\"ok\"}\n", f); /* probe 9 does not exist */
    assert_int_equal(fclose(f), 0);
    char *page = render(dir);
    /* 3 000 ms of 10 000 on 760 px = column 228; 5 000 ms = 380; 7 000 = 532 */
    assert_int_equal(count(page, "class=\"tick failed\""), 1);
    assert_non_null(strstr(page, "class=\"tick failed\" data-col=\"228\""));
    assert_non_null(strstr(page, "reset &lt;by peer&gt;"));
    assert_int_equal(count(page, "class=\"tick timeout\""), 1);
    assert_non_null(strstr(page, "class=\"tick timeout\" data-col=\"380\""));
    assert_int_equal(count(page, "class=\"tick late\""), 1);
    assert_non_null(strstr(page, "class=\"tick late\" data-col=\"532\" x=\"742\" y=\"36\" "
                                 "width=\"1\" height=\"20\" fill=\"#9e9e9e\""));
    assert_non_null(strstr(page, "id=\"overloaded\""));
    assert_non_null(strstr(page, "3 of 20000 attempts"));
    assert_non_null(strstr(page, "3 lines of the attempts file could not be read"));
    assert_int_equal(count(page, "class=\"health unhealthy\""), 1);
    assert_int_equal(count(page, "class=\"health healthy\""), 2);
    /* small: at most one tick per pixel column and probe */
    assert_true(strlen(page) < 2 * 1024 * 1024);
    free(page);
}

static void format2_without_attempts_file(void **state)
{
    (void)state;
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/f2b", tmp);
    char doc[4096];
    snprintf(doc, sizeof(doc), RUN2, "null");
    write_file(dir, "run.json", doc);
    char *page = render(dir);
    /* the failure runs are drawn: probe a's failure at 3 s, probe b's run
     * of two timeouts at 5 s and 6 s */
    assert_non_null(strstr(page, "class=\"tick failed\" data-col=\"228\""));
    assert_non_null(strstr(page, "class=\"tick timeout\" data-col=\"380\""));
    assert_non_null(strstr(page, "class=\"tick timeout\" data-col=\"456\""));
    assert_int_equal(count(page, "class=\"tick ok\""), 0);
    free(page);
}

/* --------------------------------------------------------------- refusals */

static void refusals(void **state)
{
    (void)state;
    struct fl_hrun r;
    char err[512], dir[128];
    snprintf(dir, sizeof(dir), "%s/none", tmp);
    assert_int_equal(fl_hrun_load(dir, &r, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "run.json"));
    snprintf(dir, sizeof(dir), "%s/garbage", tmp);
    write_file(dir, "run.json", "{\"format\": 1, ");
    assert_int_equal(fl_hrun_load(dir, &r, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not JSON"));
    snprintf(dir, sizeof(dir), "%s/f3", tmp);
    write_file(dir, "run.json", "{\"format\": 3}");
    assert_int_equal(fl_hrun_load(dir, &r, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "format 3"));
    /* an attempts_file outside the folder is refused */
    snprintf(dir, sizeof(dir), "%s/escape", tmp);
    char doc[4096];
    snprintf(doc, sizeof(doc), RUN2, "\"../../etc/passwd\"");
    write_file(dir, "run.json", doc);
    assert_int_equal(fl_report_html_dir(dir, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not a name in the run folder"));
    /* fields of the wrong type are absent, never a crash */
    snprintf(dir, sizeof(dir), "%s/types", tmp);
    write_file(dir, "run.json",
               "{\"format\": 1, \"experiment\": 7, \"probes\": [{\"name\": 1, \"timeline\": "
               "[{\"started_at\": 5, \"ok\": \"yes\"}, 3]}], \"faults\": [null, {\"host\": 1}]}");
    assert_int_equal(fl_report_html_dir(dir, err, sizeof(err)), 0);
}

/* ---------------------------------------------------------------- summary */

static void summary_regressions(void **state)
{
    (void)state;
    /* five runs of one experiment, recoveries 1000, 1100, 1000, 1050 and
     * 2000 ms (resolution 100): baseline for the last is the median of
     * 1000, 1100, 1000, 1050 = (1000 + 1050) / 2 = 1025; 2000 - 1025 = 975 >
     * 20 % of 1025 = 205 and > 2 * 100: a regression. 1100 against 1000 is
     * 100, not more than 2 * 100: not one. Plus a run of another experiment. */
    long long rec[] = {1000, 1100, 1000, 1050, 2000};
    char *dirs[6];
    for (int i = 0; i < 5; i++) {
        char d[128];
        snprintf(d, sizeof(d), "%s/s%d", tmp, i);
        make_run1(d, "web", "pass", T0 + (int64_t)i * 86400000, rec[i], 100, NULL, 500, 2500, 3400);
        dirs[4 - i] = strdup(d); /* given newest first: sorted by start */
    }
    char d[128];
    snprintf(d, sizeof(d), "%s/other", tmp);
    make_run1(d, "db <failover>", "fail", T0, 9000, 100, NULL, 500, 2500, 3400);
    dirs[5] = strdup(d);
    char out[128];
    snprintf(out, sizeof(out), "%s/out", tmp);
    mkdir(out, 0755);
    struct fl_summary s;
    assert_int_equal(fl_summary_load(&s, dirs, 6, out, stderr), 0);
    fl_summary_regressions(&s);
    assert_int_equal(s.n, 6);
    assert_string_equal(s.runs[0].name, "db <failover>");
    assert_false(s.runs[0].has_baseline);
    assert_string_equal(s.runs[1].name, "web");
    assert_int_equal(s.runs[1].recovery_ms, 1000);
    assert_false(s.runs[1].has_baseline);
    assert_true(s.runs[2].has_baseline);
    assert_int_equal(s.runs[2].baseline_ms, 1000);
    assert_false(s.runs[2].regressed);
    assert_int_equal(s.runs[5].baseline_ms, 1025);
    assert_true(s.runs[5].regressed);
    assert_string_equal(s.runs[5].link, "../s4/report.html");
    struct fl_hbuf b = {0};
    assert_int_equal(fl_summary_html(&s, &b), 0);
    assert_int_equal(count(b.p, "class=\"point regressed\""), 1);
    assert_int_equal(count(b.p, "class=\"rto\""), 2);
    assert_null(strstr(b.p, "<failover>"));
    assert_non_null(strstr(b.p, "href=\"../s0/report.html\""));
    char *first = strdup(b.p);
    fl_hbuf_free(&b);
    assert_int_equal(fl_summary_html(&s, &b), 0);
    assert_string_equal(first, b.p);
    free(first);
    fl_hbuf_free(&b);
    assert_int_equal(fl_summary_json(&s, &b), 0);
    assert_int_equal(count(b.p, "\"regressed\": true"), 1);
    assert_int_equal(count(b.p, "\"regressed\": false"), 5);
    assert_non_null(strstr(b.p, "\"baseline_ms\": 1025"));
    fl_hbuf_free(&b);
    fl_summary_free(&s);
    /* a folder that cannot be read is named and left out */
    char *bad[] = {dirs[0], (char *)"/nonexistent/run"};
    FILE *errs = tmpfile();
    assert_int_equal(fl_summary_load(&s, bad, 2, out, errs), 1);
    assert_int_equal(s.n, 1);
    fl_summary_free(&s);
    fclose(errs);
    for (int i = 0; i < 6; i++)
        free(dirs[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scale_maps_and_clamps),
        cmocka_unit_test(thinning_keeps_every_failure),
        cmocka_unit_test(format1_page),
        cmocka_unit_test(no_budget_no_section),
        cmocka_unit_test(budget_forms),
        cmocka_unit_test(format2_streamed),
        cmocka_unit_test(format2_without_attempts_file),
        cmocka_unit_test(refusals),
        cmocka_unit_test(summary_regressions),
    };
    int rc = cmocka_run_group_tests(tests, setup, NULL);
    if (getenv("FL_KEEP") == NULL)
        teardown(NULL);
    return rc;
}
