/* faultline serve: what a reload and a restart carry over from history, on
 * loopback with a real faultline-agent, a real serve, and a webhook
 * receiver in the test (libmicrohttpd). History is written beforehand
 * through the store's own API, as an earlier serve would have left it.
 *
 * - recovered after a reload: an experiment added by a reload under a name
 *   whose newest verdict in history is FAIL posts `recovered` on its first
 *   PASS; one whose newest verdict is PASS (an older FAIL before it) posts
 *   nothing on its PASS.
 * - /metrics after a removal: the per-experiment series of an experiment
 *   whose file a reload removed are gone once its schedule has ended; the
 *   other experiment's and the process-wide ones stay; adding the file back
 *   brings its series back, its counter where history has it.
 * - missed due times after downtime start from the last *scheduled* row: a
 *   run-now (flags `manual`) after it does not stand for the slots the server
 *   was down for. */
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/clock.h"
#include "controller/serve/store.h"
#include "tests/support/agent_proc.h"
#include "tests/support/proc.h"
#include "tests/support/serve.h"

static char dir[] = "/tmp/flsf-serve-state.XXXXXX";
static char key_path[300], pidfile[300], db_url[320], reports[300];
static struct test_agent agent;
static pid_t dummy;
static uint16_t http_port;

static char *arg(const char *a)
{
    return (char *)(uintptr_t)a;
}

/* ---------------------------------------------------------------- receiver */

#define RX_MAX 256

static struct {
    pthread_mutex_t mu;
    json_t *bodies[RX_MAX];
    size_t n;
    struct MHD_Daemon *d;
    uint16_t port;
} rx = {.mu = PTHREAD_MUTEX_INITIALIZER};

struct rx_conn {
    char *buf;
    size_t len;
};

static enum MHD_Result rx_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    struct rx_conn *b = *con_cls;
    if (b == NULL) {
        *con_cls = calloc(1, sizeof(*b));
        return *con_cls ? MHD_YES : MHD_NO;
    }
    if (*upload_size > 0) {
        char *grown = realloc(b->buf, b->len + *upload_size + 1);
        if (grown == NULL)
            return MHD_NO;
        memcpy(grown + b->len, upload, *upload_size);
        b->buf = grown;
        b->len += *upload_size;
        b->buf[b->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&rx.mu);
    if (rx.n < RX_MAX) {
        json_error_t jerr;
        rx.bodies[rx.n++] = b->buf ? json_loads(b->buf, 0, &jerr) : NULL;
    }
    pthread_mutex_unlock(&rx.mu);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(3, (void *)(uintptr_t) "ok\n", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static void rx_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct rx_conn *b = *con_cls;
    if (b != NULL) {
        free(b->buf);
        free(b);
    }
    *con_cls = NULL;
}

static void rx_reset(void)
{
    pthread_mutex_lock(&rx.mu);
    for (size_t i = 0; i < rx.n; i++)
        json_decref(rx.bodies[i]);
    rx.n = 0;
    pthread_mutex_unlock(&rx.mu);
}

/* How many received bodies are about experiment and list event. */
static size_t rx_count(const char *experiment, const char *event)
{
    size_t n = 0;
    pthread_mutex_lock(&rx.mu);
    for (size_t i = 0; i < rx.n; i++) {
        json_t *b = rx.bodies[i];
        const char *e = json_string_value(json_object_get(b, "experiment"));
        if (e == NULL || strcmp(e, experiment) != 0)
            continue;
        json_t *evs = json_object_get(b, "events");
        for (size_t k = 0; k < json_array_size(evs); k++)
            n += strcmp(json_string_value(json_array_get(evs, k)), event) == 0;
    }
    pthread_mutex_unlock(&rx.mu);
    return n;
}

/* ---------------------------------------------------------------- bed */

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(key_path, sizeof(key_path), "%s/faultline.key", dir);
    snprintf(pidfile, sizeof(pidfile), "%s/dummy.pid", dir);
    snprintf(reports, sizeof(reports), "%s/reports", dir);
    char out[512];
    char *kg[] = {arg(FL_CTL_BIN), arg("keygen"), key_path, NULL};
    if (proc_run(kg, out, sizeof(out), 5000) != 0)
        return -1;
    const char *extra[] = {"--lease", "2s", NULL};
    if (test_agent_start(&agent, FL_AGENT_BIN, key_path, dir, "agent", NULL, extra) < 0)
        return -1;
    dummy = fork();
    if (dummy == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        prctl(PR_SET_NAME, "flsf-dummy", 0, 0, 0);
        for (;;)
            pause();
    }
    FILE *f = fopen(pidfile, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "%d\n", (int)dummy);
    fclose(f);
    for (int tries = 0; rx.d == NULL && tries < 5; tries++) {
        rx.port = test_free_port();
        rx.d =
            MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, rx.port, NULL, NULL, rx_request, NULL,
                             MHD_OPTION_NOTIFY_COMPLETED, rx_completed, NULL, MHD_OPTION_END);
    }
    return rx.d ? 0 : -1;
}

static pid_t serve_pid; /* the running serve, killed when a test fails half-way */

static int test_setup(void **state)
{
    (void)state;
    if (serve_pid > 0)
        proc_stop(serve_pid, SIGTERM, 30000);
    serve_pid = 0;
    rx_reset();
    http_port = test_free_port();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = 0;
    if (serve_pid > 0)
        proc_stop(serve_pid, SIGTERM, 30000);
    if (rx.d != NULL)
        MHD_stop_daemon(rx.d);
    rx_reset();
    if (dummy > 0) {
        kill(dummy, SIGKILL);
        waitpid(dummy, NULL, 0);
    }
    if (agent.pid > 0 && proc_stop(agent.pid, SIGTERM, 10000) != 0)
        rc = -1;
    if (rc != 0 || getenv("FL_TEST_VERBOSE"))
        test_agent_dump_log(&agent);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = -1;
    return rc;
}

static void write_file(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void write_file(const char *path, const char *fmt, ...)
{
    char tmp[1100];
    snprintf(tmp, sizeof(tmp), "%s.tmp~", path); /* not *.yaml: never loaded half-written */
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, path), 0);
}

/* exps/name.yaml, atomically: pauses the dummy for 200 ms, tcp probe of the
 * agent's own port (a service that stays up: the run PASSes). schedule is
 * the block's body. */
static void write_experiment(const char *exps, const char *name, const char *schedule)
{
    serve_write_pause_experiment_scheduled(exps, name, key_path, agent.port, pidfile, "200ms",
                                           schedule);
}

static pid_t start_serve(const char *exps, const char *config, const char *log)
{
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)http_port);
    char *argv[] = {arg(FL_CTL_BIN),
                    arg("serve"),
                    arg("--experiments"),
                    arg(exps),
                    arg("--db"),
                    db_url,
                    arg("--reports-dir"),
                    reports,
                    arg("--listen-http"),
                    listen,
                    arg("--listen-control"),
                    arg("off"),
                    arg("--config"),
                    arg(config),
                    NULL};
    serve_pid = proc_start(argv, log);
    assert_true(serve_pid > 0);
    return serve_pid;
}

static void stop_serve(const char *log)
{
    int status = proc_stop(serve_pid, SIGTERM, 30000);
    serve_pid = 0;
    serve_check_exit(status, log);
}

/* A finished row in history, as an earlier serve would have written it. */
static void history_row(fl_store *st, const char *experiment, int64_t due_ms, const char *verdict,
                        const char *flags)
{
    int64_t id = 0;
    assert_int_equal(fl_store_claim(st, experiment, "0", due_ms, due_ms, &id), FL_STORE_OK);
    fl_store_row r = {.verdict = (char *)(uintptr_t)verdict,
                      .ended_ms = due_ms + 1000,
                      .recovery_ms = 300,
                      .resolution_ms = 100,
                      .rpo_ms = -1,
                      .flags = (char *)(uintptr_t)flags};
    assert_int_equal(fl_store_finish(st, id, &r), FL_STORE_OK);
}

static fl_store *store_open(const char *tag)
{
    snprintf(db_url, sizeof(db_url), "sqlite:%s/history-%s.db", dir, tag);
    char *err = NULL;
    fl_store *st = fl_store_open(db_url, &err);
    if (st == NULL)
        fail_msg("%s: %s", db_url, err ? err : "?");
    return st;
}

/* Finished runs of experiment in history. */
static size_t finished_runs(const char *experiment)
{
    json_t *rows = serve_history(FL_CTL_BIN, db_url, 10000);
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(rows); i++) {
        json_t *a = json_array_get(rows, i);
        n += strcmp(row_str(a, "experiment"), experiment) == 0 &&
             strcmp(row_str(a, "state"), "finished") == 0;
    }
    json_decref(rows);
    return n;
}

static void wait_finished_runs(const char *experiment, size_t want, int ms, const char *log)
{
    uint64_t end = fl_now_ms() + (uint64_t)ms;
    while (finished_runs(experiment) < want) {
        if (fl_now_ms() > end) {
            serve_dump_log(log);
            fail_msg("%s: not %zu finished runs within %d ms", experiment, want, ms);
        }
        sleep_ms(200);
    }
}

/* ---------------------------------------------------------------- recovered */

static void test_recovered_after_reload(void **state)
{
    (void)state;
    char exps[256], log[256], cfg[256];
    snprintf(exps, sizeof(exps), "%s/exps-recovered", dir);
    snprintf(log, sizeof(log), "%s/serve-recovered.log", dir);
    snprintf(cfg, sizeof(cfg), "%s/serve-recovered.yaml", dir);
    assert_int_equal(mkdir(exps, 0755), 0);
    int64_t now_ms = (int64_t)fl_now_ms();
    fl_store *st = store_open("recovered");
    history_row(st, "flaky", now_ms - 7200000, "PASS", NULL);
    history_row(st, "flaky", now_ms - 3600000, "FAIL", NULL); /* its newest: FAIL */
    history_row(st, "steady", now_ms - 7200000, "FAIL", NULL);
    history_row(st, "steady", now_ms - 3600000, "PASS", NULL); /* its newest: PASS */
    fl_store_close(st);
    /* serve starts with neither: one that never comes due */
    write_experiment(exps, "anchor", "  every: 24h\n");
    write_file(cfg,
               "reload_on_change: true\n"
               "webhooks:\n"
               "  - url: http://127.0.0.1:%u/hook\n"
               "    events: [fail, aborted, recovered]\n",
               (unsigned)rx.port);
    start_serve(exps, cfg, log);
    serve_wait_log(log, "serving 1 scheduled experiment", 20000);

    write_experiment(exps, "flaky", "  every: 2s\n  starting_deadline: 1s\n");
    write_experiment(exps, "steady", "  every: 2s\n  starting_deadline: 1s\n");
    serve_wait_log(log, "flaky: scheduled", 20000);
    serve_wait_log(log, "steady: scheduled", 20000);
    /* one PASS of each past the two rows of history (both target web1: they
     * take turns or skip; the PASS of each comes) */
    wait_finished_runs("flaky", 3, 60000, log);
    wait_finished_runs("steady", 3, 60000, log);
    /* the webhook for a run is posted after its row is written: give the
     * loop's delivery a moment, against the receiver's own count */
    uint64_t end = fl_now_ms() + 10000;
    while (rx_count("flaky", "recovered") == 0 && fl_now_ms() < end)
        sleep_ms(100);
    stop_serve(log); /* every delivery in flight is done or given up */
    json_t *rows = serve_history(FL_CTL_BIN, db_url, 10000);
    size_t fail_runs = 0;
    for (size_t i = 0; i < json_array_size(rows); i++) {
        json_t *a = json_array_get(rows, i);
        fail_runs += strcmp(row_str(a, "verdict"), "FAIL") == 0 && row_num(a, "id") > 4;
    }
    json_decref(rows);
    assert_int_equal(fail_runs, 0); /* the runs here PASS: nothing else explains a hook */
    if (rx_count("flaky", "recovered") != 1) {
        serve_dump_log(log);
        fail_msg("flaky: %zu `recovered` webhooks, want 1: its newest verdict in history is "
                 "FAIL and its first run after the reload PASSed",
                 rx_count("flaky", "recovered"));
    }
    if (rx_count("steady", "recovered") != 0) {
        serve_dump_log(log);
        fail_msg("steady: %zu `recovered` webhooks, want 0: its newest verdict in history was "
                 "already PASS",
                 rx_count("steady", "recovered"));
    }
}

/* ---------------------------------------------------------------- /metrics */

/* serve's /metrics, whole. */
static char *scrape(void)
{
    static char out[1 << 18];
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "curl -sf http://127.0.0.1:%u/metrics", (unsigned)http_port);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t len = fread(out, 1, sizeof(out) - 1, p);
    out[len] = '\0';
    assert_int_equal(pclose(p), 0);
    return out;
}

/* Sample lines (not # HELP / # TYPE) that contain needle. */
static size_t samples_with(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (line[0] != '#') {
            const char *hit = strstr(line, needle);
            n += hit != NULL && hit < line + len;
        }
        line = nl ? nl + 1 : NULL;
    }
    return n;
}

/* faultline_runs_total of experiment, every verdict. */
static double runs_total(const char *text, const char *experiment)
{
    static const char *const verdicts[] = {"pass", "fail", "aborted", "pass_no_impact"};
    double sum = 0;
    for (size_t v = 0; v < 4; v++) {
        char name[200];
        snprintf(name, sizeof(name), "faultline_runs_total{experiment=\"%s\",verdict=\"%s\"}",
                 experiment, verdicts[v]);
        sum += serve_metric(text, name);
    }
    return sum;
}

static void test_removed_series_go(void **state)
{
    (void)state;
    char exps[256], log[256], cfg[256], path[512];
    snprintf(exps, sizeof(exps), "%s/exps-metrics", dir);
    snprintf(log, sizeof(log), "%s/serve-metrics.log", dir);
    snprintf(cfg, sizeof(cfg), "%s/serve-metrics.yaml", dir);
    assert_int_equal(mkdir(exps, 0755), 0);
    int64_t now_ms = (int64_t)fl_now_ms();
    fl_store *st = store_open("metrics");
    history_row(st, "gone", now_ms - 3600000, "PASS", NULL);
    history_row(st, "stays", now_ms - 3600000, "PASS", NULL);
    fl_store_close(st);
    write_experiment(exps, "gone", "  every: 2s\n  starting_deadline: 1s\n");
    write_experiment(exps, "stays", "  every: 24h\n");
    write_file(cfg, "reload_on_change: true\n");
    start_serve(exps, cfg, log);
    serve_wait_log(log, "serving 2 scheduled experiment", 20000);
    wait_finished_runs("gone", 2, 30000, log);
    char *m = scrape();
    assert_int_equal(samples_with(m, "faultline_runs_total{experiment=\"gone\",verdict=\"pass\"}"),
                     1);
    double before = runs_total(m, "gone");
    assert_true(before >= 1);

    snprintf(path, sizeof(path), "%s/gone.yaml", exps);
    assert_int_equal(unlink(path), 0);
    serve_wait_log(log, "gone: ended (its file was removed)", 30000);
    m = scrape();
    if (samples_with(m, "experiment=\"gone\"") != 0) {
        fprintf(stderr, "%s\n", m);
        fail_msg("/metrics still has %zu series of `gone`, whose file was removed and whose "
                 "schedule has ended",
                 samples_with(m, "experiment=\"gone\""));
    }
    /* the others stay: the configured experiment's, and the process-wide ones */
    assert_int_equal(samples_with(m, "faultline_runs_total{experiment=\"stays\",verdict=\"pass\"}"),
                     1);
    assert_int_equal(samples_with(m, "faultline_regressed{experiment=\"stays\"}"), 1);
    assert_int_equal(samples_with(m, "faultline_frozen "), 1);
    assert_int_equal(samples_with(m, "faultline_webhook_failures_total "), 1);
    assert_int_equal(samples_with(m, "faultline_webhook_dropped_total "), 1);

    /* back: its series return, the counter where history has it (never lower) */
    write_experiment(exps, "gone", "  every: 24h\n");
    serve_wait_log(log, "gone: scheduled (", 30000);
    m = scrape();
    double after = runs_total(m, "gone");
    assert_true(after >= before);
    assert_int_equal(samples_with(m, "faultline_next_run_timestamp_seconds{experiment=\"gone\"}"),
                     1);
    stop_serve(log);
    /* history agrees with the counter */
    assert_int_equal((size_t)after, finished_runs("gone"));
}

/* ---------------------------------------------------------------- missed */

static void test_missed_from_last_scheduled(void **state)
{
    (void)state;
    char exps[256], log[256], cfg[256];
    snprintf(exps, sizeof(exps), "%s/exps-missed", dir);
    snprintf(log, sizeof(log), "%s/serve-missed.log", dir);
    snprintf(cfg, sizeof(cfg), "%s/serve-missed.yaml", dir);
    assert_int_equal(mkdir(exps, 0755), 0);
    /* the last scheduled run was ten minutes ago (a whole minute); a run-now
     * came after it, 20 s ago (never on a whole minute); the server was down
     * since */
    int64_t now_s = (int64_t)(fl_now_ms() / 1000);
    int64_t last_sched_s = (now_s / 60 - 10) * 60;
    int64_t manual_s = now_s - 20;
    if (manual_s % 60 == 0)
        manual_s--;
    fl_store *st = store_open("missed");
    history_row(st, "nightly", last_sched_s * 1000, "PASS", NULL);
    history_row(st, "nightly", manual_s * 1000, "PASS", "manual");
    fl_store_close(st);
    write_experiment(exps, "nightly", "  cron: \"* * * * *\"\n  timezone: UTC\n  missed: skip\n");
    write_file(cfg, "reload_on_change: false\n");
    start_serve(exps, cfg, log);
    serve_wait_log(log, "serving 1 scheduled experiment", 20000);
    int64_t started_s = (int64_t)(fl_now_ms() / 1000);
    stop_serve(log);

    /* every whole minute in (last_sched_s, start] is a `missed` row: the
     * run-now stood for none of them */
    json_t *rows = serve_history(FL_CTL_BIN, db_url, 10000);
    size_t missed = 0;
    for (size_t i = 0; i < json_array_size(rows); i++) {
        json_t *a = json_array_get(rows, i);
        if (strcmp(row_str(a, "state"), "skipped") != 0 ||
            strstr(row_str(a, "reason"), "server was not running") == NULL)
            continue;
        int64_t due_s = row_num(a, "due_ms") / 1000;
        assert_true(due_s > last_sched_s && due_s <= started_s);
        assert_int_equal(due_s % 60, 0);
        missed++;
    }
    json_decref(rows);
    /* the minutes after last_sched_s up to the start, less one the start
     * may have reached before the plan (recorded as a due time, not missed) */
    size_t want = (size_t)((now_s / 60) * 60 - last_sched_s) / 60;
    if (missed < want - 1) {
        serve_dump_log(log);
        fail_msg("%zu due times recorded missed after the last scheduled run at %lld, want at "
                 "least %zu: the run-now at %lld must not count as a scheduled slot",
                 missed, (long long)last_sched_s, want - 1, (long long)manual_s);
    }
}

int main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "serve_state_test: needs root (the agent pauses a process)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_recovered_after_reload, test_setup),
        cmocka_unit_test_setup(test_removed_series_go, test_setup),
        cmocka_unit_test_setup(test_missed_from_last_scheduled, test_setup),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
