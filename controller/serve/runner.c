/* One scheduled run on a thread of its own (runner.h). */
#include "controller/serve/runner.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "common/log.h"
#include "controller/report/report.h"
#include "controller/run/measure.h"
#include "controller/run/run.h"
#include "controller/serve/metrics.h"
#include "controller/serve/regression.h"

/* run.json kept in the store: larger ones are kept in the report folder only
 * (the row says so in its reason). */
#define FL_SERVE_RUN_JSON_MAX (16u << 20)

int fl_serve_mkdirs(const char *path)
{
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0)
        return -ENOENT;
    if (len >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && (unsigned long)n <= FL_SERVE_RUN_JSON_MAX && fseek(f, 0, SEEK_SET) == 0 &&
            (buf = malloc((size_t)n + 1)) != NULL) {
            if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                buf = NULL;
            } else {
                buf[n] = '\0';
            }
        }
    }
    fclose(f);
    return buf;
}

static void *run_thread(void *arg)
{
    struct fl_serve_run *r = arg;
    const struct fl_experiment *e = r->e;
    char dir[4096], path[4200], err[1024], reason[512] = "";
    snprintf(dir, sizeof(dir), "%s/%s/%lld", r->reports_dir, e->name, (long long)r->id);
    int drc = fl_serve_mkdirs(dir);
    if (drc < 0)
        fl_error("%s: cannot create the report folder %s: %s; the run goes on without reports",
                 e->name, dir, strerror(-drc));

    FILE *progress = NULL;
    struct fl_run_options o = {
        .connect_timeout_ms = 5000, .abort = &r->abort, .abort_reason = r->abort_reason};
    if (drc == 0) {
        snprintf(path, sizeof(path), "%s/progress.log", dir);
        progress = fopen(path, "w");
        o.progress = progress;
        snprintf(path, sizeof(path), "%s/attempts.jsonl", dir);
        o.attempts_path = path;
    }
    r->started_ms = (int64_t)fl_now_ms();
    struct fl_run_record rec;
    int rc = fl_run(e, r->key, &o, &rec);
    if (progress != NULL)
        fclose(progress);

    fl_store_row row = {.recovery_ms = -1, .resolution_ms = -1, .rpo_ms = -1};
    char *run_json = NULL;
    if (rc < 0) {
        snprintf(r->verdict, sizeof(r->verdict), "ABORTED");
        snprintf(reason, sizeof(reason), "cannot start the run: %s", strerror(-rc));
        r->ended_ms = (int64_t)fl_now_ms();
    } else {
        snprintf(r->verdict, sizeof(r->verdict), "%s", fl_measure_verdict_caps(rec.verdict));
        snprintf(reason, sizeof(reason), "%s", rec.abort_reason[0] ? rec.abort_reason : rec.reason);
        r->ended_ms = rec.ended_at_ms ? (int64_t)rec.ended_at_ms : (int64_t)fl_now_ms();
        if (rec.measured && rec.m.recovered && !rec.m.no_impact) {
            row.recovery_ms = (int64_t)rec.m.recovery_time_ms;
            row.resolution_ms = (int64_t)rec.m.resolution_ms;
        }
        if (drc == 0) {
            snprintf(path, sizeof(path), "%s/run.json", dir);
            if (fl_report_json(&rec, path, err, sizeof(err)) < 0)
                fl_error("%s: %s", e->name, err);
            else
                run_json = read_file(path);
            snprintf(path, sizeof(path), "%s/junit.xml", dir);
            if (fl_report_junit(&rec, path, err, sizeof(err)) < 0)
                fl_error("%s: %s", e->name, err);
        }
    }

    /* regression: against the recoveries of the runs before this one */
    r->baseline_ms = -1;
    if (row.recovery_ms >= 0 && rc == 0 && rec.verdict == FL_VERDICT_PASS) {
        int64_t past[FL_SERVE_REGRESSION_WINDOW];
        size_t n = 0;
        if (fl_store_recent_recoveries(r->store, e->name, FL_SERVE_REGRESSION_WINDOW, past, &n) ==
            FL_STORE_OK) {
            fl_regression g = fl_regression_check(past, n, FL_SERVE_REGRESSION_WINDOW,
                                                  FL_REGRESSION_TOLERANCE_DEFAULT, row.recovery_ms,
                                                  row.resolution_ms);
            r->regressed = g.regressed;
            r->baseline_ms = g.have_baseline ? g.baseline_ms : -1;
        } else {
            fl_error("%s", fl_store_error(r->store));
        }
    }
    if (rc == 0)
        fl_run_record_free(&rec);

    row.verdict = r->verdict;
    row.reason = reason[0] ? reason : NULL;
    row.flags = r->regressed && r->manual ? (char *)"regressed,manual"
                : r->regressed            ? (char *)"regressed"
                : r->manual               ? (char *)"manual"
                                          : NULL;
    row.report_folder = drc == 0 ? dir : NULL;
    row.run_json = run_json;
    row.started_ms = r->started_ms;
    row.ended_ms = r->ended_ms;
    if (fl_store_finish(r->store, r->id, &row) != FL_STORE_OK)
        fl_error("%s: cannot record run %lld: %s", e->name, (long long)r->id,
                 fl_store_error(r->store));
    free(run_json);
    fl_metrics_run(r->metrics, e->name, r->verdict, r->ended_ms, row.recovery_ms, row.resolution_ms,
                   r->regressed);
    snprintf(r->reason, sizeof(r->reason), "%s", reason);
    r->recovery_ms = row.recovery_ms;
    r->resolution_ms = row.resolution_ms;
    snprintf(r->report, sizeof(r->report), "%s", drc == 0 ? dir : "");
    fl_info("%s: run %lld ended %s%s%s%s", e->name, (long long)r->id, r->verdict,
            reason[0] ? " (" : "", reason, reason[0] ? ")" : "");
    r->on_done(r, r->ctx);
    return NULL;
}

int fl_serve_run_start(struct fl_serve_run *r)
{
    pthread_attr_t attr;
    pthread_t t;
    if (pthread_attr_init(&attr) != 0)
        return -ENOMEM;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, run_thread, r);
    pthread_attr_destroy(&attr);
    return rc == 0 ? 0 : -rc;
}
