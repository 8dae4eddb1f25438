/* The pages of faultline serve (controller/serve/pages.h) called directly,
 * over a real SQLite store in a temporary folder: the index's frozen banner,
 * paused state, regressed flag, trend and run links; /runs/ID from run.json
 * and refused for folders outside reports_dir; /api/runs limits. No network:
 * the HTTP side and real browsers are in tests/integration/serve_ui_test.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "controller/serve/catalog.h"
#include "controller/serve/metrics.h"
#include "controller/serve/pages.h"
#include "controller/serve/schedule.h"
#include "controller/serve/store.h"

static char dir[] = "/tmp/flui-pages-unit.XXXXXX";
static char url[400], reports[400];

static const char *no_args(void *ctx, const char *name)
{
    (void)ctx;
    (void)name;
    return NULL;
}

static const char *args(void *ctx, const char *name)
{
    const char *const *kv = ctx;
    for (size_t i = 0; kv[i] != NULL; i += 2)
        if (strcmp(kv[i], name) == 0)
            return kv[i + 1];
    return NULL;
}

static void finish(fl_store *s, const char *exp, int64_t due, const char *verdict, int64_t recovery,
                   const char *flags, const char *folder, int64_t *id)
{
    assert_int_equal(fl_store_claim(s, exp, "h", due, due, id), FL_STORE_OK);
    fl_store_row r = {.verdict = (char *)verdict,
                      .recovery_ms = recovery,
                      .resolution_ms = recovery >= 0 ? 100 : -1,
                      .rpo_ms = -1,
                      .started_ms = due,
                      .ended_ms = due + 1000,
                      .flags = (char *)flags,
                      .report_folder = (char *)folder};
    assert_int_equal(fl_store_finish(s, *id, &r), FL_STORE_OK);
}

static void test_pages(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(url, sizeof(url), "sqlite:%s/h.db", dir);
    snprintf(reports, sizeof(reports), "%s/reports", dir);
    assert_int_equal(mkdir(reports, 0755), 0);
    char *why = NULL;
    fl_store *s = fl_store_open(url, &why);
    assert_non_null(s);

    struct fl_schedule sa = {.kind = FL_SCHED_CRON, .timezone = "Europe/Berlin"};
    snprintf(sa.cron_text, sizeof(sa.cron_text), "30 2 * * 1-5");
    struct fl_schedule sb = {.kind = FL_SCHED_EVERY, .every_s = 6 * 3600};
    struct fl_experiment ea = {.name = (char *)"alpha<x>", .schedule = &sa};
    struct fl_experiment eb = {.name = (char *)"beta", .schedule = &sb};
    struct fl_catalog_entry entries[] = {{.e = &ea}, {.e = &eb}};
    struct fl_catalog cat = {.entries = entries, .n = 2};
    struct fl_metrics *m = fl_metrics_new();
    assert_non_null(m);
    assert_int_equal(fl_metrics_experiment(m, "alpha<x>"), 0);
    assert_int_equal(fl_metrics_next(m, "alpha<x>", 1800000000), 0);

    int64_t id1, id2, id3;
    char folder[500], outside[500];
    snprintf(folder, sizeof(folder), "%s/alpha/2", reports);
    snprintf(outside, sizeof(outside), "%s/outside", dir);
    assert_int_equal(mkdir(outside, 0755), 0);
    char page[600];
    snprintf(page, sizeof(page), "%s/report.html", outside);
    FILE *f = fopen(page, "w");
    assert_non_null(f);
    fputs("flui-secret\n", f);
    fclose(f);
    finish(s, "alpha<x>", 1000, "PASS", 1200, NULL, outside, &id1);
    finish(s, "alpha<x>", 2000, "FAIL", 3000, "regressed", folder, &id2);
    assert_int_equal(fl_store_skip(s, "alpha<x>", "h", 3000, 3000, "still running: x"),
                     FL_STORE_OK);
    finish(s, "beta", 1000, "PASS", -1, NULL, NULL, &id3);
    assert_int_equal(fl_store_set_paused(s, "beta", true), FL_STORE_OK);
    assert_int_equal(fl_store_set_frozen(s, true, "db <migration>", "alice", 5000), FL_STORE_OK);

    struct fl_serve_pages *p = NULL;
    char err[512];
    assert_int_equal(fl_serve_pages_new(url, reports, &cat, m, &p, err, sizeof(err)), 0);
    struct fl_page out;

    fl_serve_pages_get(p, "/", no_args, NULL, &out);
    assert_int_equal(out.status, 200);
    assert_non_null(out.body);
    assert_non_null(strstr(out.body, "id=\"frozen\"><b>FROZEN</b>"));
    assert_non_null(strstr(out.body, "db &lt;migration&gt;")); /* escaped */
    assert_null(strstr(out.body, "alpha<x>"));
    assert_non_null(strstr(out.body, "data-experiment=\"alpha&lt;x&gt;\""));
    assert_non_null(strstr(out.body, "cron <code>30 2 * * 1-5</code> Europe/Berlin"));
    assert_non_null(strstr(out.body, "every 6h"));
    assert_non_null(strstr(out.body, "2027-01-15T08:00:00"));
    assert_non_null(strstr(out.body, "<b class=\"regressed\">regressed</b>"));
    assert_non_null(strstr(out.body, "<b class=\"paused\">paused</b>"));
    char href[64];
    snprintf(href, sizeof(href), "href=\"/runs/%lld\"", (long long)id2);
    assert_non_null(strstr(out.body, href));
    assert_non_null(strstr(out.body, "href=\"/api/runs?experiment=alpha%3Cx%3E\""));
    assert_non_null(strstr(out.body, "<circle class=\"point regressed\""));
    assert_non_null(strstr(out.body, "no recovery measured yet")); /* beta */
    free(out.body);

    /* a folder outside reports_dir holding a report.html: 404 */
    char path[64];
    snprintf(path, sizeof(path), "/runs/%lld", (long long)id1);
    fl_serve_pages_get(p, path, no_args, NULL, &out);
    assert_int_equal(out.status, 404);
    assert_int_equal(out.fd, -1);
    assert_null(strstr(out.body, "flui-secret"));
    free(out.body);
    /* the folder is gone: 404; a skip, no id: 404 */
    snprintf(path, sizeof(path), "/runs/%lld", (long long)id2);
    fl_serve_pages_get(p, path, no_args, NULL, &out);
    assert_int_equal(out.status, 404);
    free(out.body);
    snprintf(path, sizeof(path), "/runs/%lld", (long long)id3 + 100);
    fl_serve_pages_get(p, path, no_args, NULL, &out);
    assert_int_equal(out.status, 404);
    free(out.body);
    fl_serve_pages_get(p, "/runs/1/../2", no_args, NULL, &out);
    assert_int_equal(out.status, 404);
    free(out.body);

    /* /api/runs: limits and paging */
    const char *kv1[] = {"experiment", "alpha<x>", "limit", "2", NULL};
    fl_serve_pages_get(p, "/api/runs", args, kv1, &out);
    assert_int_equal(out.status, 200);
    assert_non_null(strstr(out.body, "\"state\": \"skipped\""));
    assert_null(strstr(out.body, "\"due_ms\": 1000"));
    free(out.body);
    const char *kv2[] = {"limit", "1001", NULL};
    fl_serve_pages_get(p, "/api/runs", args, kv2, &out);
    assert_int_equal(out.status, 400);
    assert_non_null(strstr(out.body, "FL_PAGES_API_LIMIT_MAX"));
    free(out.body);
    const char *kv3[] = {"limit", "1", "offset", "3", NULL};
    fl_serve_pages_get(p, "/api/runs", args, kv3, &out);
    assert_int_equal(out.status, 200);
    assert_non_null(strstr(out.body, "\"experiment\": \"alpha<x>\""));
    assert_non_null(strstr(out.body, "\"due_ms\": 1000"));
    free(out.body);

    fl_serve_pages_free(p);
    fl_metrics_free(m);
    fl_store_close(s);
    char cmd[500];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_pages)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
