/* faultline serve on the game-day bed (tests/beds/gameday.sh; issue 16's
 * first test): serve runs on the client host over two experiments on
 * `every: 8s` schedules that inject real faults through the bed's agents.
 *
 *   failover  cut web1 (network_drop ingress, 2 s), probed through HAProxy
 *             from the client: the backup takes over, PASS
 *   restart   kill the webapp on web1, probed directly: its supervisor
 *             restarts it within the RTO, PASS (nothing to revert)
 *
 * Both target web1, and serve may run two at once (--max-concurrent-runs
 * 2): only the blast-radius rule keeps them apart, and it must (the cut
 * would fail the webapp's probe). Once each has three runs:
 *
 * - live: /metrics is scraped between two reads of the history. The
 *   runner writes the row before it counts it, and one schedule never runs
 *   twice at once, so per (experiment, verdict): history before - 1 <=
 *   counter <= history after.
 * - serve is stopped (SIGTERM), then started again on the same database
 *   with the schedules an hour away: nothing runs, so its /metrics (seeded
 *   from history at start) must equal `history --json` exactly, /api/runs
 *   must equal it, and `/` must list both experiments with their last
 *   verdict linking to /runs/ID of the newest finished row, which loads.
 * - every (experiment, due time) is in history exactly once, consecutive
 *   due times of an experiment are 8 s apart, every run is PASS but for at
 *   most one ABORTED "server stopping" (the SIGTERM's, the newest run of its
 *   experiment), and no two runs overlap in time (they share web1). */
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
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/clock.h"
#include "tests/support/proc.h"
#include "tests/support/serve.h"

#define EVERY_MS 8000
#define N_EXP 2

static char top[] = "/tmp/flsb-serve-gameday.XXXXXX";
static char bed[300], inventory[400], exps[400], db_url[420], reports[400], listen[64];
static uint16_t http_port;
static const char *const names[N_EXP] = {"failover", "restart"};

static char *arg(const char *a)
{
    return (char *)(uintptr_t)a;
}

static int bed_cmd(char *out, size_t cap, int timeout_ms, ...)
{
    char *argv[40] = {arg(FL_BED_SCRIPT)};
    int n = 1;
    va_list ap;
    va_start(ap, timeout_ms);
    const char *a;
    while (n < 39 && (a = va_arg(ap, const char *)) != NULL)
        argv[n++] = arg(a);
    va_end(ap);
    argv[n] = NULL;
    return proc_run(argv, out, cap, timeout_ms);
}

/* ------------------------------------------------------------ the serve */

static void write_experiments(const char *every)
{
    static const char failover[] =
        "version: 1\n"
        "name: failover\n"
        "objectives: { rto: 5s }\n"
        "probes:\n"
        "  - name: frontend\n"
        "    http: { url: \"http://10.77.0.1:8080/health\", expect_status: [200], "
        "timeout: 100ms }\n"
        "    interval: 100ms\n"
        "    rise: 2\n"
        "    fall: 3\n"
        "steady_state: [frontend]\n"
        "faults:\n"
        "  - name: cut-web1\n"
        "    target: { hosts: [web1] }\n"
        "    network_drop: { direction: ingress }\n"
        "    duration: 2s\n"
        "recovery: { probes: [frontend], timeout: 10s }\n";
    static const char restart[] =
        "version: 1\n"
        "name: restart\n"
        "objectives: { rto: 5s }\n"
        "probes:\n"
        "  - name: app\n"
        "    http: { url: \"http://10.77.0.2:8081/health\", timeout: 200ms }\n"
        "    interval: 100ms\n"
        "    rise: 2\n"
        "    fall: 2\n"
        "steady_state: [app]\n"
        "faults:\n"
        "  - name: kill-webapp\n"
        "    target: { hosts: [web1] }\n"
        "    kill_process: { name: webapp, signal: KILL }\n"
        "    duration: 1s\n"
        "recovery: { probes: [app], timeout: 10s }\n";
    const char *texts[N_EXP] = {failover, restart};
    for (size_t x = 0; x < N_EXP; x++) {
        char path[500];
        snprintf(path, sizeof(path), "%s/%s.yaml", exps, names[x]);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(texts[x], f);
        fprintf(f, "schedule:\n  every: %s\n  starting_deadline: 6s\n", every);
        assert_int_equal(fclose(f), 0);
    }
}

/* serve on the client host: ip netns exec execs, so the pid is serve's. */
static pid_t start_serve(const char *log)
{
    char *argv[] = {arg(FL_BED_SCRIPT),
                    arg("exec"),
                    bed,
                    arg("client"),
                    arg(FL_CTL_BIN),
                    arg("serve"),
                    arg("--experiments"),
                    exps,
                    arg("--inventory"),
                    inventory,
                    arg("--db"),
                    db_url,
                    arg("--reports-dir"),
                    reports,
                    arg("--listen-http"),
                    listen,
                    arg("--listen-control"),
                    arg("off"),
                    arg("--max-concurrent-runs"),
                    arg("2"),
                    NULL};
    pid_t pid = proc_start(argv, log);
    assert_true(pid > 0);
    serve_wait_log(log, "pages on http", 20000);
    return pid;
}

static void stop_serve(pid_t pid, const char *log)
{
    serve_check_exit(proc_stop(pid, SIGTERM, 30000), log);
}

static json_t *history(void)
{
    return serve_history(FL_CTL_BIN, db_url, 20000);
}

/* GET path from the client host (serve listens on its loopback); the HTTP
 * status, the body in out. */
static int http_get(const char *path, char *out, size_t cap)
{
    char url[600], body[500];
    snprintf(url, sizeof(url), "http://%s%s", listen, path);
    snprintf(body, sizeof(body), "%s/body", top);
    char code_s[64];
    if (bed_cmd(code_s, sizeof(code_s), 20000, "exec", bed, "client", "curl", "-s", "-o", body,
                "-w", "%{http_code}", url, NULL) != 0)
        return -1;
    FILE *f = fopen(body, "r");
    size_t n = 0;
    if (f != NULL) {
        n = fread(out, 1, cap - 1, f);
        fclose(f);
    }
    out[n] = '\0';
    return atoi(code_s);
}

/* ------------------------------------------------------------ counting */

static const char *verdict_label(const char *v)
{
    if (strcmp(v, "PASS") == 0)
        return "pass";
    if (strcmp(v, "FAIL") == 0)
        return "fail";
    if (strcmp(v, "PASS (no impact)") == 0)
        return "pass_no_impact";
    return "aborted";
}

static const char *const labels[] = {"pass", "fail", "aborted", "pass_no_impact"};
#define N_LABELS 4

/* Finished rows of experiment x with verdict label l. */
static double history_count(json_t *rows, size_t x, size_t l)
{
    double n = 0;
    for (size_t i = 0; i < json_array_size(rows); i++) {
        json_t *r = json_array_get(rows, i);
        if (strcmp(row_str(r, "experiment"), names[x]) == 0 &&
            strcmp(row_str(r, "state"), "finished") == 0 &&
            strcmp(verdict_label(row_str(r, "verdict")), labels[l]) == 0)
            n++;
    }
    return n;
}

/* faultline_runs_total{experiment=x,verdict=l}; 0 when the line is absent
 * (a counter never incremented may be left out). */
static double metric(const char *text, size_t x, size_t l)
{
    char needle[200];
    snprintf(needle, sizeof(needle), "\nfaultline_runs_total{experiment=\"%s\",verdict=\"%s\"} ",
             names[x], labels[l]);
    const char *p = strstr(text, needle);
    return p ? strtod(p + strlen(needle), NULL) : 0;
}

static size_t passes(json_t *rows, size_t x)
{
    return (size_t)history_count(rows, x, 0);
}

/* ----------------------------------------------------------------- test */

static void check_history(json_t *rows)
{
    size_t n = json_array_size(rows);
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(rows, i);
        fprintf(stderr, "  %-8s due %lld %-9s %lld..%lld %-16s %s\n", row_str(a, "experiment"),
                (long long)row_num(a, "due_ms"), row_str(a, "state"),
                (long long)row_num(a, "started_ms"), (long long)row_num(a, "ended_ms"),
                row_str(a, "verdict"), row_str(a, "reason"));
    }
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(rows, i);
        assert_int_not_equal(strcmp(row_str(a, "state"), "running"), 0);
        /* exactly once per (experiment, due time) */
        for (size_t k = i + 1; k < n; k++) {
            json_t *b = json_array_get(rows, k);
            if (strcmp(row_str(a, "experiment"), row_str(b, "experiment")) == 0 &&
                row_num(a, "due_ms") == row_num(b, "due_ms"))
                fail_msg("%s due %lld appears twice (rows %lld and %lld)", row_str(a, "experiment"),
                         (long long)row_num(a, "due_ms"), (long long)row_num(a, "id"),
                         (long long)row_num(b, "id"));
        }
        if (strcmp(row_str(a, "state"), "finished") != 0)
            continue;
        /* blast radius: both experiments target web1, so no two runs at
         * once, whichever they are */
        for (size_t k = i + 1; k < n; k++) {
            json_t *b = json_array_get(rows, k);
            if (strcmp(row_str(b, "state"), "finished") != 0)
                continue;
            assert_true(row_num(a, "started_ms") > 0 &&
                        row_num(a, "ended_ms") >= row_num(a, "started_ms"));
            bool disjoint = row_num(a, "ended_ms") <= row_num(b, "started_ms") ||
                            row_num(b, "ended_ms") <= row_num(a, "started_ms");
            if (!disjoint)
                fail_msg("runs %lld (%s) and %lld (%s) overlap in time, both on web1",
                         (long long)row_num(a, "id"), row_str(a, "experiment"),
                         (long long)row_num(b, "id"), row_str(b, "experiment"));
        }
    }
    for (size_t x = 0; x < N_EXP; x++) {
        int64_t prev = -1, newest_run = -1;
        size_t stopping = 0;
        for (size_t i = 0; i < n; i++) {
            json_t *a = json_array_get(rows, i);
            if (strcmp(row_str(a, "experiment"), names[x]) != 0)
                continue;
            /* newest first: consecutive due times are one interval apart */
            if (prev >= 0)
                assert_int_equal(prev - row_num(a, "due_ms"), EVERY_MS);
            prev = row_num(a, "due_ms");
            if (strcmp(row_str(a, "state"), "finished") != 0)
                continue;
            if (newest_run < 0)
                newest_run = row_num(a, "due_ms");
            if (strcmp(row_str(a, "verdict"), "PASS") == 0)
                continue;
            /* the only other verdict: the run SIGTERM stopped, its newest run
             * (a due time it outlasted may be newer, as a skip) */
            if (strcmp(row_str(a, "verdict"), "ABORTED") != 0 ||
                strcmp(row_str(a, "reason"), "server stopping") != 0 ||
                row_num(a, "due_ms") != newest_run)
                fail_msg("%s run %lld: %s, %s", names[x], (long long)row_num(a, "id"),
                         row_str(a, "verdict"), row_str(a, "reason"));
            stopping++;
        }
        assert_true(stopping <= 1);
        if (passes(rows, x) < 3)
            fail_msg("%s: %zu PASS runs, wanted 3", names[x], passes(rows, x));
    }
}

static void test_two_schedules_on_the_bed(void **state)
{
    (void)state;
    char log1[500], log2[500];
    snprintf(log1, sizeof(log1), "%s/serve1.log", top);
    snprintf(log2, sizeof(log2), "%s/serve2.log", top);
    write_experiments("8s");
    uint64_t t0 = fl_mono_ms();
    pid_t serve = start_serve(log1);

    /* until each has three runs that passed (3 due times of 8 s and their
     * runs, one waiting for the other: ~30 s; 75 s is the bound) */
    json_t *rows = NULL;
    for (;;) {
        rows = history();
        if (passes(rows, 0) >= 3 && passes(rows, 1) >= 3)
            break;
        if (fl_mono_ms() - t0 > 75000) {
            serve_dump_log(log1);
            check_history(rows); /* says which run went wrong, if one did */
            fail_msg("not 3 PASS runs of each within 75 s");
        }
        json_decref(rows);
        sleep_ms(500);
    }
    json_decref(rows);

    /* live: scrape between two reads of history */
    static char text[1 << 18];
    json_t *before = history();
    assert_int_equal(http_get("/metrics", text + 1, sizeof(text) - 1), 200);
    text[0] = '\n'; /* every sample line starts after a newline */
    json_t *after = history();
    for (size_t x = 0; x < N_EXP; x++)
        for (size_t l = 0; l < N_LABELS; l++) {
            double m = metric(text, x, l), lo = history_count(before, x, l) - 1,
                   hi = history_count(after, x, l);
            if (m < lo || m > hi)
                fail_msg("live faultline_runs_total{%s,%s} = %g, history %g before the scrape "
                         "and %g after",
                         names[x], labels[l], m, lo + 1, hi);
        }
    json_decref(before);
    json_decref(after);
    printf("[ serve    ] 3 PASS runs of each after %.1f s\n", (double)(fl_mono_ms() - t0) / 1000.0);
    fflush(stdout);
    stop_serve(serve, log1);

    /* again, with nothing due for an hour: a still history */
    write_experiments("1h");
    serve = start_serve(log2);
    rows = history();
    check_history(rows);
    assert_int_equal(http_get("/metrics", text + 1, sizeof(text) - 1), 200);
    for (size_t x = 0; x < N_EXP; x++)
        for (size_t l = 0; l < N_LABELS; l++)
            if (metric(text, x, l) != history_count(rows, x, l))
                fail_msg("faultline_runs_total{%s,%s} = %g, history has %g", names[x], labels[l],
                         metric(text, x, l), history_count(rows, x, l));

    static char body[1 << 22];
    assert_int_equal(http_get("/api/runs?limit=1000", body, sizeof(body)), 200);
    json_t *api = json_loads(body, 0, NULL);
    assert_non_null(api);
    if (!json_equal(api, rows))
        fail_msg("/api/runs differs from history --json:\n%s", body);
    json_decref(api);

    assert_int_equal(http_get("/", body, sizeof(body)), 200);
    for (size_t x = 0; x < N_EXP; x++) {
        json_t *last = NULL;
        for (size_t i = 0; i < json_array_size(rows) && last == NULL; i++) {
            json_t *r = json_array_get(rows, i);
            if (strcmp(row_str(r, "experiment"), names[x]) == 0 &&
                strcmp(row_str(r, "state"), "finished") == 0)
                last = r;
        }
        assert_non_null(last);
        char needle[128];
        snprintf(needle, sizeof(needle), "data-experiment=\"%s\"", names[x]);
        const char *tr = strstr(body, needle);
        if (tr == NULL)
            fail_msg("/ does not list %s:\n%s", names[x], body);
        const char *end = strstr(tr, "</tr>");
        assert_non_null(end);
        char link[300], run[64];
        snprintf(link, sizeof(link), "href=\"/runs/%lld\">%s</a>", (long long)row_num(last, "id"),
                 row_str(last, "verdict"));
        char *row = strndup(tr, (size_t)(end - tr));
        assert_non_null(row);
        const char *cell = strstr(row, "<td class=\"last\">");
        if (cell == NULL || strstr(cell, link) == NULL)
            fail_msg("/ row of %s has no last verdict %s: %s", names[x], link, row);
        free(row);
        snprintf(run, sizeof(run), "/runs/%lld", (long long)row_num(last, "id"));
        static char page[1 << 22];
        assert_int_equal(http_get(run, page, sizeof(page)), 200);
        assert_non_null(strstr(page, names[x]));
    }
    json_decref(rows);
    stop_serve(serve, log2);
}

/* --------------------------------------------------------------- setup */

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(top) == NULL)
        return -1;
    snprintf(bed, sizeof(bed), "%s/bed", top);
    snprintf(inventory, sizeof(inventory), "%s/hosts.yaml", bed);
    snprintf(exps, sizeof(exps), "%s/experiments", top);
    snprintf(db_url, sizeof(db_url), "sqlite:%s/history.db", top);
    snprintf(reports, sizeof(reports), "%s/reports", top);
    if (mkdir(exps, 0755) != 0)
        return -1;
    http_port = test_free_port();
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)http_port);
    /* the webapp's supervisor restarts it 1 s after it dies: the restart
     * experiment's recovery */
    setenv("GAMEDAY_RESTART_DELAY", "1", 1);
    static char out[65536];
    char owner[16]; /* should this test die, the bed's watcher takes it down */
    snprintf(owner, sizeof(owner), "%d", (int)getpid());
    uint64_t t0 = fl_mono_ms();
    int rc = bed_cmd(out, sizeof(out), 120000, "up", bed, FL_BUILD_DIR, owner, NULL);
    if (rc != 0) {
        fprintf(stderr, "the bed did not come up (%d):\n%s\n", rc, out);
        return -1;
    }
    printf("[ bed      ] up in %llu ms: %s", (unsigned long long)(fl_mono_ms() - t0), out);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    static char out[65536];
    int rc = bed_cmd(out, sizeof(out), 120000, "down", bed, NULL);
    if (rc != 0)
        fprintf(stderr, "the bed did not come down clean (%d):\n%s\n", rc, out);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
    if (system(cmd) != 0)
        rc = -1;
    return rc == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_schedules_on_the_bed),
    };
    return cmocka_run_group_tests_name("serve on the game-day bed", tests, setup, teardown);
}
