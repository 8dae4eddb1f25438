/* /metrics formatting (controller/serve/metrics.c): the exposition format's
 * escaping, histogram buckets, and counters. promtool checks a rendering in
 * the serve integration test; here the exact lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "controller/serve/metrics.h"

static void has(const char *text, const char *line)
{
    if (strstr(text, line) == NULL)
        fail_msg("missing: %s\n--- in ---\n%s", line, text);
}

static void test_counters_and_gauges(void **state)
{
    (void)state;
    struct fl_metrics *m = fl_metrics_new();
    assert_non_null(m);
    assert_int_equal(fl_metrics_run(m, "web", "PASS", 1000000, 2500, 100, false), 0);
    assert_int_equal(fl_metrics_run(m, "web", "FAIL", 2000000, -1, -1, false), 0);
    assert_int_equal(fl_metrics_run(m, "web", "PASS (no impact)", 1500000, -1, -1, false), 0);
    assert_int_equal(fl_metrics_run(m, "web", "PASS", 3000000, 4000, 200, true), 0);
    assert_int_equal(fl_metrics_skip(m, "web", fl_metrics_skip_class("hosts busy: web1")), 0);
    assert_int_equal(fl_metrics_skip(m, "web", fl_metrics_skip_class("still running: run 3")), 0);
    assert_int_equal(fl_metrics_skip(m, "web", fl_metrics_skip_class("hosts busy: web2")), 0);
    assert_int_equal(fl_metrics_next(m, "web", 1800000000), 0);
    char *t = fl_metrics_render(m);
    assert_non_null(t);
    has(t, "# TYPE faultline_runs_total counter\n");
    has(t, "faultline_runs_total{experiment=\"web\",verdict=\"pass\"} 2\n");
    has(t, "faultline_runs_total{experiment=\"web\",verdict=\"fail\"} 1\n");
    has(t, "faultline_runs_total{experiment=\"web\",verdict=\"pass_no_impact\"} 1\n");
    has(t, "faultline_runs_total{experiment=\"web\",verdict=\"aborted\"} 0\n");
    has(t, "faultline_last_verdict{experiment=\"web\"} 0\n"); /* the newest: a pass */
    has(t, "faultline_last_run_timestamp_seconds{experiment=\"web\"} 3000.000\n");
    has(t, "faultline_recovery_seconds{experiment=\"web\"} 4.000\n");
    has(t, "faultline_recovery_resolution_seconds{experiment=\"web\"} 0.200\n");
    has(t, "faultline_regressed{experiment=\"web\"} 1\n");
    has(t, "# TYPE faultline_recovery_duration_seconds histogram\n");
    has(t, "faultline_recovery_duration_seconds_bucket{experiment=\"web\",le=\"2.5\"} 1\n");
    has(t, "faultline_recovery_duration_seconds_bucket{experiment=\"web\",le=\"5\"} 2\n");
    has(t, "faultline_recovery_duration_seconds_bucket{experiment=\"web\",le=\"+Inf\"} 2\n");
    has(t, "faultline_recovery_duration_seconds_sum{experiment=\"web\"} 6.500\n");
    has(t, "faultline_recovery_duration_seconds_count{experiment=\"web\"} 2\n");
    has(t, "faultline_next_run_timestamp_seconds{experiment=\"web\"} 1800000000\n");
    has(t, "faultline_skipped_total{experiment=\"web\",reason=\"hosts_busy\"} 2\n");
    has(t, "faultline_skipped_total{experiment=\"web\",reason=\"still_running\"} 1\n");
    has(t, "faultline_frozen 0\n");
    has(t, "faultline_webhook_failures_total 0\n");
    free(t);
    fl_metrics_free(m);
}

/* A run that ends before the newest one (threads finish out of order) does
 * not become the "last". */
static void test_last_is_newest(void **state)
{
    (void)state;
    struct fl_metrics *m = fl_metrics_new();
    fl_metrics_run(m, "a", "FAIL", 5000, -1, -1, false);
    fl_metrics_run(m, "a", "PASS", 4000, 100, 10, false);
    char *t = fl_metrics_render(m);
    has(t, "faultline_last_verdict{experiment=\"a\"} 1\n");
    free(t);
    fl_metrics_free(m);
}

/* Label values with a backslash, a double quote and a line feed are escaped
 * as the exposition format says; nothing else is changed. */
static void test_label_escaping(void **state)
{
    (void)state;
    struct fl_metrics *m = fl_metrics_new();
    fl_metrics_run(m, "we\"ird\\name\nx", "ABORTED", 1000, -1, -1, false);
    char *t = fl_metrics_render(m);
    has(t, "faultline_runs_total{experiment=\"we\\\"ird\\\\name\\nx\",verdict=\"aborted\"} 1\n");
    has(t, "faultline_last_verdict{experiment=\"we\\\"ird\\\\name\\nx\"} 2\n");
    /* no raw line feed inside a sample line: every line starts with # or a name */
    for (const char *p = t; *p; p = strchr(p, '\n') + 1) {
        assert_true(*p == '#' || strncmp(p, "faultline_", 10) == 0);
        if (strchr(p, '\n') == NULL)
            break;
    }
    free(t);
    fl_metrics_free(m);
}

/* Series of an experiment no job has any more go; they come back, values
 * kept, when a job of that name is installed again; a name seeded for a job
 * never installed is not rendered; process-wide series always are. */
static void test_ended_jobs_series_go(void **state)
{
    (void)state;
    struct fl_metrics *m = fl_metrics_new();
    assert_non_null(m);
    assert_int_equal(fl_metrics_job_add(m, "kept"), 0);
    assert_int_equal(fl_metrics_job_add(m, "gone"), 0);
    assert_int_equal(fl_metrics_run(m, "gone", "PASS", 1000, 300, 100, false), 0);
    assert_int_equal(fl_metrics_skip(m, "gone", "missed"), 0);
    assert_int_equal(fl_metrics_next(m, "gone", 5000), 0);
    assert_int_equal(fl_metrics_hidden(m, "never"), 0);
    assert_int_equal(fl_metrics_run(m, "never", "FAIL", 1000, -1, -1, false), 0);
    char *t = fl_metrics_render(m);
    assert_non_null(strstr(t, "experiment=\"gone\""));
    assert_null(strstr(t, "experiment=\"never\""));
    free(t);

    /* a second job of the name (a file renamed into it): one ending keeps it */
    assert_int_equal(fl_metrics_job_add(m, "gone"), 0);
    fl_metrics_job_end(m, "gone");
    t = fl_metrics_render(m);
    assert_non_null(strstr(t, "faultline_runs_total{experiment=\"gone\",verdict=\"pass\"} 1"));
    free(t);

    fl_metrics_job_end(m, "gone");
    assert_true(fl_metrics_known(m, "gone")); /* no second seeding from history */
    t = fl_metrics_render(m);
    assert_null(strstr(t, "experiment=\"gone\""));
    assert_non_null(strstr(t, "faultline_runs_total{experiment=\"kept\",verdict=\"pass\"} 0"));
    assert_non_null(strstr(t, "faultline_frozen 0"));
    assert_non_null(strstr(t, "faultline_webhook_failures_total 0"));
    assert_non_null(strstr(t, "faultline_webhook_dropped_total 0"));
    free(t);

    assert_int_equal(fl_metrics_job_add(m, "gone"), 0);
    t = fl_metrics_render(m);
    assert_non_null(strstr(t, "faultline_runs_total{experiment=\"gone\",verdict=\"pass\"} 1"));
    assert_non_null(strstr(t, "faultline_skipped_total{experiment=\"gone\",reason=\"missed\"} 1"));
    /* its next due time was cleared when it ended; the new job sets its own */
    assert_null(strstr(t, "faultline_next_run_timestamp_seconds{experiment=\"gone\"}"));
    free(t);
    fl_metrics_free(m);
}

static void test_skip_classes(void **state)
{
    (void)state;
    assert_string_equal(fl_metrics_skip_class("still running: run 3"), "still_running");
    assert_string_equal(fl_metrics_skip_class("hosts busy: web1"), "hosts_busy");
    assert_string_equal(fl_metrics_skip_class("max_concurrent_runs (1) reached"),
                        "max_concurrent_runs");
    assert_string_equal(fl_metrics_skip_class("missed: the server was not running"), "missed");
    assert_string_equal(fl_metrics_skip_class("server stopping before the run started"), "other");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters_and_gauges),  cmocka_unit_test(test_last_is_newest),
        cmocka_unit_test(test_label_escaping),       cmocka_unit_test(test_skip_classes),
        cmocka_unit_test(test_ended_jobs_series_go),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
