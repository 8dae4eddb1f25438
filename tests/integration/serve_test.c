/* faultline serve end to end on loopback: real faultline-agent, a harmless
 * fault (pause_process of a dummy child of the test), a tcp probe of the
 * agent's own port (a service that is always up).
 *
 * - Two experiments on `every: 2s`, both on the same host, one whose run
 *   (3 s) outlasts its interval: history holds each due time exactly once,
 *   with no gaps but the recorded skips; the long one records `still
 *   running`; no two runs overlap in time (blast radius).
 * - SIGTERM while a run has the dummy paused: serve exits 0, the run is
 *   ABORTED "server stopping", the dummy runs again, the agent holds no fault.
 * - kill -9 while a run has the dummy paused: the agent's lease resumes it;
 *   the restarted serve records the run ABORTED "server died during the run".
 * - /metrics of the restarted serve passes `promtool check metrics` and its
 *   counters agree with the history.
 * - Retention at start removes rows and their report folders together. */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
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
#include "tests/support/agent_proc.h"
#include "tests/support/proc.h"
#include "tests/support/serve.h"

static char dir[] = "/tmp/fl-serve-test.XXXXXX";
static char key_path[300], pidfile[300], db_url[320], reports[300];
static struct test_agent agent;
static pid_t dummy;
static uint16_t http_port;

static char *arg(const char *a)
{
    return (char *)(uintptr_t)a;
}

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(key_path, sizeof(key_path), "%s/faultline.key", dir);
    snprintf(pidfile, sizeof(pidfile), "%s/dummy.pid", dir);
    snprintf(db_url, sizeof(db_url), "sqlite:%s/history.db", dir);
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
        prctl(PR_SET_NAME, "fl-serve-dummy", 0, 0, 0);
        for (;;)
            pause();
    }
    FILE *f = fopen(pidfile, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "%d\n", (int)dummy);
    fclose(f);
    http_port = test_free_port();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = 0;
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

/* An experiment that pauses the dummy for `hold` on the one host. */
static void write_experiment(const char *exps, const char *name, const char *hold,
                             const char *every)
{
    serve_write_pause_experiment(exps, name, key_path, agent.port, pidfile, hold, every);
}

static pid_t start_serve_with(const char *exps, const char *log, const char *flag,
                              const char *value)
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
                    arg(flag),
                    arg(value),
                    NULL};
    if (flag == NULL)
        argv[12] = NULL;
    return proc_start(argv, log);
}

static pid_t start_serve(const char *exps, const char *log)
{
    return start_serve_with(exps, log, NULL, NULL);
}
/* faultline history --json, every row. */
static json_t *history(void)
{
    return serve_history(FL_CTL_BIN, db_url, 10000);
}

/* Waits until the dummy is paused (a run has its fault on). */
static void wait_paused(const char *log)
{
    serve_wait_paused(dummy, log);
}

static void assert_no_active_fault(void)
{
    serve_assert_no_active_fault(FL_CTL_BIN, key_path, agent.where);
}

static void test_schedule_overlap_blast_radius_sigterm(void **state)
{
    (void)state;
    char exps[400], log[400];
    snprintf(exps, sizeof(exps), "%s/exps1", dir);
    snprintf(log, sizeof(log), "%s/serve1.log", dir);
    assert_int_equal(mkdir(exps, 0755), 0);
    write_experiment(exps, "long", "3500ms", "2s"); /* outlasts its interval */
    write_experiment(exps, "short", "300ms", "2s"); /* same host: waits or skips */
    uint64_t t0 = fl_now_ms();
    pid_t serve = start_serve(exps, log);
    assert_true(serve > 0);
    sleep_ms(10000);
    wait_paused(log); /* stop it in the middle of a run */
    uint64_t t_term = fl_now_ms();
    kill(serve, SIGTERM);
    serve_check_exit(proc_wait(serve, 20000), log);
    assert_int_equal(proc_wait_state(dummy, 'S', 5000), 'S');
    assert_no_active_fault();

    json_t *rows = history();
    size_t n = json_array_size(rows);
    fprintf(stderr, "%zu history rows after %.1f s\n", n, (double)(t_term - t0) / 1000.0);
    size_t runs = 0, still_running = 0, stopping = 0, busy = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(rows, i);
        fprintf(stderr, "  %-6s due %lld %-9s %-16s %s\n", row_str(a, "experiment"),
                (long long)row_num(a, "due_ms"), row_str(a, "state"), row_str(a, "verdict"),
                row_str(a, "reason"));
        assert_int_not_equal(strcmp(row_str(a, "state"), "running"), 0);
        /* exactly once per (experiment, due time) */
        for (size_t k = i + 1; k < n; k++) {
            json_t *b = json_array_get(rows, k);
            assert_false(strcmp(row_str(a, "experiment"), row_str(b, "experiment")) == 0 &&
                         row_num(a, "due_ms") == row_num(b, "due_ms"));
        }
        if (strcmp(row_str(a, "state"), "finished") == 0) {
            runs++;
            /* blast radius: no two runs on web1 at once */
            for (size_t k = 0; k < n; k++) {
                json_t *b = json_array_get(rows, k);
                if (k == i || strcmp(row_str(b, "state"), "finished") != 0)
                    continue;
                bool disjoint = row_num(a, "ended_ms") <= row_num(b, "started_ms") ||
                                row_num(b, "ended_ms") <= row_num(a, "started_ms");
                if (!disjoint)
                    fail_msg("runs %lld and %lld overlap in time", (long long)row_num(a, "id"),
                             (long long)row_num(b, "id"));
            }
        }
        still_running += strncmp(row_str(a, "reason"), "still running", 13) == 0 &&
                         strcmp(row_str(a, "experiment"), "long") == 0;
        busy += strncmp(row_str(a, "reason"), "hosts busy: web1", 16) == 0;
        stopping += strcmp(row_str(a, "verdict"), "ABORTED") == 0 &&
                    strcmp(row_str(a, "reason"), "server stopping") == 0;
    }
    /* no gaps: each experiment's due times are consecutive multiples of 2 s
     * (rows come newest first per due time); and both experiments ran: two
     * on one host with one schedule take turns (ties once always went to
     * the first file, and `short` never ran) */
    const char *names[] = {"long", "short"};
    for (size_t x = 0; x < 2; x++) {
        int64_t prev = -1;
        size_t count = 0, ran = 0;
        for (size_t i = 0; i < n; i++) {
            json_t *a = json_array_get(rows, i);
            if (strcmp(row_str(a, "experiment"), names[x]) != 0)
                continue;
            if (prev >= 0)
                assert_int_equal(prev - row_num(a, "due_ms"), 2000);
            prev = row_num(a, "due_ms");
            count++;
            ran += strcmp(row_str(a, "state"), "finished") == 0;
        }
        if (ran == 0)
            fail_msg("%s never ran in %zu due times", names[x], count);
        /* the first due time is 2 s after the start; ~10 s ran */
        assert_true(count >= 4);
        assert_true(prev >= (int64_t)t0 && prev <= (int64_t)t0 + 4000);
    }
    assert_true(runs >= 3);
    assert_true(still_running >= 1);
    assert_true(busy >= 1);
    assert_int_equal(stopping, 1);
    json_decref(rows);
}

static void test_kill9_restart_metrics(void **state)
{
    (void)state;
    char exps[400], log[400], log2[400];
    snprintf(exps, sizeof(exps), "%s/exps2", dir);
    snprintf(log, sizeof(log), "%s/serve2.log", dir);
    snprintf(log2, sizeof(log2), "%s/serve3.log", dir);
    assert_int_equal(mkdir(exps, 0755), 0);
    write_experiment(exps, "held", "30s", "2s");
    pid_t serve = start_serve(exps, log);
    wait_paused(log);
    kill(serve, SIGKILL);
    proc_wait(serve, 5000);
    /* the agent's lease (2 s) reverts the fault without any controller */
    assert_int_equal(proc_wait_state(dummy, 'S', 10000), 'S');
    assert_no_active_fault();

    /* restart: the interrupted run is recorded; metrics agree with history */
    serve = start_serve(exps, log2);
    char buf[1 << 16];
    assert_non_null(file_wait_for(log2, "/metrics on", buf, sizeof(buf), 10000));
    char mpath[400], cmd[900];
    snprintf(mpath, sizeof(mpath), "%s/metrics.txt", dir);
    snprintf(cmd, sizeof(cmd), "curl -sf -o %s http://127.0.0.1:%u/metrics", mpath,
             (unsigned)http_port);
    assert_int_equal(system(cmd), 0);
    kill(serve, SIGTERM);
    serve_check_exit(proc_wait(serve, 20000), log2);
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", mpath);
    assert_int_equal(system(cmd), 0);

    json_t *rows = history();
    size_t died = 0;
    double aborted[3] = {0}, passed[3] = {0}; /* per experiment: held, long, short */
    const char *names[] = {"held", "long", "short"};
    size_t skips[3] = {0};
    for (size_t i = 0; i < json_array_size(rows); i++) {
        json_t *a = json_array_get(rows, i);
        died += strcmp(row_str(a, "experiment"), "held") == 0 &&
                strcmp(row_str(a, "reason"), "server died during the run") == 0 &&
                strcmp(row_str(a, "verdict"), "ABORTED") == 0;
        for (size_t x = 0; x < 3; x++) {
            if (strcmp(row_str(a, "experiment"), names[x]) != 0)
                continue;
            /* rows after the scrape (the second SIGTERM's) are not in it */
            if (row_num(a, "ended_ms") > 0 &&
                strcmp(row_str(a, "reason"), "server stopping") == 0 &&
                strcmp(names[x], "held") == 0)
                continue;
            if (strcmp(row_str(a, "state"), "skipped") == 0)
                skips[x]++;
            else if (strcmp(row_str(a, "verdict"), "ABORTED") == 0)
                aborted[x]++;
            else
                passed[x]++;
        }
    }
    assert_int_equal(died, 1);
    /* held's counters agree with history at the scrape (scraped before its
     * first due time: every one of its rows was written before) */
    static char text[1 << 16];
    FILE *f = fopen(mpath, "r");
    assert_non_null(f);
    size_t len = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[len] = '\0';
    assert_true(
        serve_metric(text, "faultline_runs_total{experiment=\"held\",verdict=\"aborted\"} ") ==
        aborted[0]);
    assert_true(
        serve_metric(text, "faultline_runs_total{experiment=\"held\",verdict=\"pass\"} ") +
            serve_metric(text, "faultline_runs_total{experiment=\"held\","
                               "verdict=\"pass_no_impact\"} ") +
            serve_metric(text, "faultline_runs_total{experiment=\"held\",verdict=\"fail\"} ") ==
        passed[0]);
    assert_non_null(strstr(text, "faultline_frozen 0"));
    assert_non_null(strstr(text, "faultline_next_run_timestamp_seconds{experiment=\"held\"}"));
    (void)skips;
    json_decref(rows);
}

/* Retention at start: rows beyond the newest N of each experiment go, and
 * their report folders with them; the folders of the rows kept stay. */
static void test_retention(void **state)
{
    (void)state;
    char exps[400], log[400];
    snprintf(exps, sizeof(exps), "%s/exps1", dir);
    snprintf(log, sizeof(log), "%s/serve4.log", dir);
    json_t *before = history();
    size_t folders_before = 0;
    for (size_t i = 0; i < json_array_size(before); i++)
        folders_before += row_str(json_array_get(before, i), "report_folder")[0] != '\0';
    json_decref(before);
    assert_true(folders_before >= 3);
    int64_t started = (int64_t)fl_now_ms();
    pid_t serve = start_serve_with(exps, log, "--retention-runs", "1");
    char buf[1 << 16];
    assert_non_null(file_wait_for(log, "retention: pruned", buf, sizeof(buf), 10000));
    kill(serve, SIGTERM);
    assert_int_equal(proc_wait(serve, 20000), 0);

    json_t *rows = history();
    const char *names[] = {"long", "short", "held"};
    size_t kept_folders = 0;
    for (size_t x = 0; x < 3; x++) {
        size_t old = 0;
        for (size_t i = 0; i < json_array_size(rows); i++) {
            json_t *a = json_array_get(rows, i);
            if (strcmp(row_str(a, "experiment"), names[x]) == 0 && row_num(a, "due_ms") < started)
                old++;
        }
        if (old > 1)
            fail_msg("%s: %zu rows from before the prune, retention keeps 1", names[x], old);
    }
    for (size_t i = 0; i < json_array_size(rows); i++) {
        const char *f = row_str(json_array_get(rows, i), "report_folder");
        if (f[0] == '\0')
            continue;
        kept_folders++;
        struct stat st;
        if (stat(f, &st) != 0)
            fail_msg("%s: kept row's report folder is gone", f);
    }
    /* every folder left on disk belongs to a row */
    char cmd[600], out[64];
    snprintf(cmd, sizeof(cmd), "find %s -mindepth 2 -maxdepth 2 -type d | wc -l", reports);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(out, sizeof(out), p));
    pclose(p);
    assert_int_equal((size_t)strtoul(out, NULL, 10), kept_folders);
    assert_true(kept_folders < folders_before);
    json_decref(rows);
}

int main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "serve_test: skipped, needs root (pause_process through the agent)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule_overlap_blast_radius_sigterm),
        cmocka_unit_test(test_kill9_restart_metrics),
        cmocka_unit_test(test_retention),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
