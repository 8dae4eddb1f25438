/* faultline serve's control channel end to end on loopback: a real serve, a
 * real faultline-agent, a real fault (pause_process of a dummy child of the
 * test: stopped = the fault is in force), the real CLI.
 *
 * - freeze mid-run, from two clients at once: both confirmed, one freeze;
 *   the dummy runs again (the fault is reverted on the agent), the run is
 *   ABORTED "frozen: REASON", the due times meanwhile are skip rows and
 *   nothing starts; run-now is refused; /metrics says frozen; serve stopped
 *   and started again is still frozen (rows, metrics, the dummy never
 *   stopped); thaw: runs start again.
 * - a client with another key is refused, says so, exits non-zero, and
 *   nothing changes (no freeze, no pause, runs go on).
 * - pause: due times are `skipped (paused)` rows, nothing runs; resume:
 *   runs again. run-now: a manual run (flag manual), a second one while it
 *   runs is refused. history --server prints what the local history prints. */
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
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/clock.h"
#include "tests/support/agent_proc.h"
#include "tests/support/proc.h"
#include "tests/support/serve.h"

static char dir[] = "/tmp/flctl-serve-control.XXXXXX";
static char key_path[300], bad_key[300], pidfile[300], reports[300];
static struct test_agent agent;
static pid_t dummy;
static uint16_t http_port, control_port;
static char server[64];
static pid_t serve_pid; /* the serve running, stopped if a test fails */

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
    snprintf(bad_key, sizeof(bad_key), "%s/other.key", dir);
    snprintf(pidfile, sizeof(pidfile), "%s/dummy.pid", dir);
    snprintf(reports, sizeof(reports), "%s/reports", dir);
    char out[512];
    char *kg[] = {arg(FL_CTL_BIN), arg("keygen"), key_path, NULL};
    char *kg2[] = {arg(FL_CTL_BIN), arg("keygen"), bad_key, NULL};
    if (proc_run(kg, out, sizeof(out), 5000) != 0 || proc_run(kg2, out, sizeof(out), 5000) != 0)
        return -1;
    const char *extra[] = {"--lease", "2s", NULL};
    if (test_agent_start(&agent, FL_AGENT_BIN, key_path, dir, "agent", NULL, extra) < 0)
        return -1;
    dummy = fork();
    if (dummy == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        prctl(PR_SET_NAME, "flctl-dummy", 0, 0, 0);
        for (;;)
            pause();
    }
    FILE *f = fopen(pidfile, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "%d\n", (int)dummy);
    fclose(f);
    http_port = test_free_port();
    control_port = test_free_port();
    snprintf(server, sizeof(server), "127.0.0.1:%u", (unsigned)control_port);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = 0;
    if (serve_pid > 0)
        proc_stop(serve_pid, SIGTERM, 20000);
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

static pid_t start_serve(const char *exps, const char *db_url, const char *log)
{
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)http_port);
    char *argv[] = {arg(FL_CTL_BIN),
                    arg("serve"),
                    arg("--experiments"),
                    arg(exps),
                    arg("--db"),
                    arg(db_url),
                    arg("--reports-dir"),
                    reports,
                    arg("--listen-http"),
                    listen,
                    arg("--key-file"),
                    key_path,
                    arg("--listen-control"),
                    server,
                    NULL};
    if (serve_pid > 0)
        proc_stop(serve_pid, SIGTERM, 20000); /* left by a failed test */
    pid_t pid = proc_start(argv, log);
    assert_true(pid > 0);
    serve_pid = pid;
    serve_wait_log(log, "serving ", 15000);
    return pid;
}

static void stop_serve(pid_t pid, const char *log)
{
    int st = proc_stop(pid, SIGTERM, 20000);
    serve_pid = 0;
    serve_check_exit(st, log);
}

/* faultline CMD --server ... [ARGS], output in out; the exit status. */
static int ctl(char *out, size_t cap, const char *key, const char *cmd, const char *a1,
               const char *a2)
{
    char *argv[] = {arg(FL_CTL_BIN), arg(cmd), arg("--server"), server, arg("--key"),
                    arg(key),        arg(a1),  arg(a2),         NULL};
    int rc = proc_run(argv, out, cap, 40000);
    fprintf(stderr, "faultline %s %s %s -> %d: %s", cmd, a1 ? a1 : "", a2 ? a2 : "", rc, out);
    return rc;
}

/* faultline history --json, every row, from the database. */
static json_t *history(const char *db_url)
{
    return serve_history(FL_CTL_BIN, db_url, 10000);
}

static void dump(json_t *rows)
{
    for (size_t i = 0; i < json_array_size(rows); i++) {
        json_t *a = json_array_get(rows, i);
        fprintf(stderr, "  %-6s due %lld start %lld %-9s %-8s %-10s %s\n", row_str(a, "experiment"),
                (long long)row_num(a, "due_ms"), (long long)row_num(a, "started_ms"),
                row_str(a, "state"), row_str(a, "verdict"), row_str(a, "flags"),
                row_str(a, "reason"));
    }
}

static void wait_paused(const char *log)
{
    serve_wait_paused(dummy, log);
}

/* For ms: the dummy is never stopped (no fault is put in force). */
static void assert_never_paused(int ms)
{
    uint64_t end = fl_now_ms() + (uint64_t)ms;
    while (fl_now_ms() < end) {
        if (proc_state_of(dummy) == 'T')
            fail_msg("a run stopped the dummy while nothing may start");
        sleep_ms(20);
    }
}

static void assert_no_active_fault(void)
{
    serve_assert_no_active_fault(FL_CTL_BIN, key_path, agent.where);
}

/* faultline_frozen from /metrics. */
static int metrics_frozen(void)
{
    char url[128], out[1 << 16];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", (unsigned)http_port);
    char *argv[] = {arg("/usr/bin/curl"), arg("-sf"), url, NULL};
    assert_int_equal(proc_run(argv, out, sizeof(out), 10000), 0);
    const char *p = strstr(out, "\nfaultline_frozen ");
    assert_non_null(p);
    return atoi(p + strlen("\nfaultline_frozen "));
}

/* Rows whose due time is after t: skipped with reason `want` (counted), and
 * never a run. */
static size_t skips_after(json_t *rows, int64_t t, const char *want)
{
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(rows); i++) {
        json_t *a = json_array_get(rows, i);
        if (row_num(a, "due_ms") <= t || strcmp(row_str(a, "flags"), "manual") == 0)
            continue;
        if (strcmp(row_str(a, "state"), "skipped") != 0) {
            dump(rows);
            fail_msg("due time %lld after %lld ran (%s)", (long long)row_num(a, "due_ms"),
                     (long long)t, row_str(a, "state"));
        }
        n += strcmp(row_str(a, "reason"), want) == 0;
    }
    return n;
}

static void test_freeze_mid_run_restart_thaw(void **state)
{
    (void)state;
    char exps[400], log[400], log2[400], db[400], l1[400], l2[400];
    snprintf(exps, sizeof(exps), "%s/exps1", dir);
    snprintf(log, sizeof(log), "%s/serve1.log", dir);
    snprintf(log2, sizeof(log2), "%s/serve1b.log", dir);
    snprintf(db, sizeof(db), "sqlite:%s/h1.db", dir);
    snprintf(l1, sizeof(l1), "%s/freeze1.log", dir);
    snprintf(l2, sizeof(l2), "%s/freeze2.log", dir);
    assert_int_equal(mkdir(exps, 0755), 0);
    write_experiment(exps, "hold", "8s", "2s");
    pid_t serve = start_serve(exps, db, log);
    wait_paused(log); /* a run has the fault in force */
    assert_int_equal(metrics_frozen(), 0);

    /* two freezes at once */
    char *f1[] = {arg(FL_CTL_BIN), arg("freeze"),   arg("--server"),     server, arg("--key"),
                  key_path,        arg("--reason"), arg("db migration"), NULL};
    char *f2[] = {arg(FL_CTL_BIN), arg("freeze"),   arg("--server"),      server, arg("--key"),
                  key_path,        arg("--reason"), arg("second freeze"), NULL};
    int64_t t_freeze = (int64_t)fl_now_ms();
    pid_t c1 = proc_start(f1, l1), c2 = proc_start(f2, l2);
    assert_int_equal(proc_wait(c1, 40000), 0);
    assert_int_equal(proc_wait(c2, 40000), 0);
    char o1[4096], o2[4096];
    file_wait_for(l1, "\x01", o1, sizeof(o1), 0);
    file_wait_for(l2, "\x01", o2, sizeof(o2), 0);
    fprintf(stderr, "freeze 1: %sfreeze 2: %s", o1, o2);
    bool first1 = strncmp(o1, "frozen (db migration)", 21) == 0;
    bool first2 = strncmp(o2, "frozen (second freeze)", 22) == 0;
    assert_true(first1 != first2); /* exactly one froze */
    assert_non_null(strstr(first1 ? o1 : o2, "1 running experiment(s) aborted"));
    assert_non_null(strstr(first1 ? o2 : o1, "already frozen"));
    const char *reason = first1 ? "frozen: db migration" : "frozen: second freeze";

    /* the fault is reverted on the agent now, not at its 8 s end */
    assert_int_equal(proc_wait_state(dummy, 'S', 5000), 'S');
    assert_true(fl_now_ms() - (uint64_t)t_freeze < 7000);
    assert_no_active_fault();
    assert_int_equal(metrics_frozen(), 1);
    char out[8192];
    assert_int_equal(ctl(out, sizeof(out), key_path, "run-now", "hold", NULL), 2);
    assert_non_null(strstr(out, "frozen"));
    assert_never_paused(5000); /* two due times and more */

    json_t *rows = history(db);
    dump(rows);
    size_t aborted = 0;
    for (size_t i = 0; i < json_array_size(rows); i++) {
        json_t *a = json_array_get(rows, i);
        aborted += strcmp(row_str(a, "verdict"), "ABORTED") == 0 &&
                   strcmp(row_str(a, "reason"), reason) == 0;
    }
    assert_int_equal(aborted, 1);
    assert_true(skips_after(rows, t_freeze, reason) >= 2);
    json_decref(rows);

    /* a restart of serve: still frozen */
    stop_serve(serve, log);
    int64_t t_restart = (int64_t)fl_now_ms();
    serve = start_serve(exps, db, log2);
    char buf[1 << 16];
    assert_non_null(file_wait_for(log2, "FROZEN since", buf, sizeof(buf), 5000));
    assert_int_equal(metrics_frozen(), 1);
    assert_never_paused(5000);
    rows = history(db);
    assert_true(skips_after(rows, t_restart, reason) >= 2);
    json_decref(rows);
    assert_int_equal(ctl(out, sizeof(out), key_path, "run-now", "hold", NULL), 2);
    assert_non_null(strstr(out, "frozen"));

    /* thaw: runs start again */
    assert_int_equal(ctl(out, sizeof(out), key_path, "thaw", NULL, NULL), 0);
    assert_non_null(strstr(out, "thawed"));
    assert_int_equal(metrics_frozen(), 0);
    wait_paused(log2);
    stop_serve(serve, log2);
    assert_int_equal(proc_wait_state(dummy, 'S', 5000), 'S');
    assert_no_active_fault();
}

static void test_wrong_key_pause_run_now_history(void **state)
{
    (void)state;
    char exps[400], log[400], db[400];
    snprintf(exps, sizeof(exps), "%s/exps2", dir);
    snprintf(log, sizeof(log), "%s/serve2.log", dir);
    snprintf(db, sizeof(db), "sqlite:%s/h2.db", dir);
    assert_int_equal(mkdir(exps, 0755), 0);
    write_experiment(exps, "quick", "1500ms", "3s");
    pid_t serve = start_serve(exps, db, log);
    char out[8192];

    /* peers that never authenticate (more than FL_CONTROL_MAX_CONNS of them,
     * some sending junk) hold no slot a keyed client needs */
    int junk[24];
    for (int i = 0; i < 24; i++) {
        junk[i] = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(junk[i] >= 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(control_port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(junk[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
        if (i % 2 == 0)
            assert_int_equal(write(junk[i], "\x00\x00\x00\x05junk!", 9), 9);
    }
    assert_int_equal(ctl(out, sizeof(out), key_path, "pause", "nosuch", NULL), 2);
    assert_non_null(strstr(out, "no scheduled experiment named 'nosuch'"));
    for (int i = 0; i < 24; i++)
        close(junk[i]);

    /* another key: refused, said, non-zero, nothing changes */
    assert_int_equal(ctl(out, sizeof(out), bad_key, "freeze", NULL, NULL), 2);
    assert_non_null(strstr(out, "wrong key"));
    assert_int_equal(ctl(out, sizeof(out), bad_key, "pause", "quick", NULL), 2);
    assert_non_null(strstr(out, "wrong key"));
    char *h[] = {
        arg(FL_CTL_BIN), arg("history"), arg("--server"), server, arg("--key"), bad_key, NULL};
    assert_int_equal(proc_run(h, out, sizeof(out), 20000), 2);
    assert_non_null(strstr(out, "wrong key"));
    assert_int_equal(metrics_frozen(), 0);
    wait_paused(log); /* runs go on */

    /* pause: skip rows, nothing runs */
    assert_int_equal(ctl(out, sizeof(out), key_path, "pause", "nosuch", NULL), 2);
    assert_non_null(strstr(out, "no scheduled experiment named 'nosuch'"));
    assert_int_equal(proc_wait_state(dummy, 'S', 5000), 'S');
    assert_int_equal(ctl(out, sizeof(out), key_path, "pause", "quick", NULL), 0);
    int64_t t_pause = (int64_t)fl_now_ms();
    assert_never_paused(7000);
    json_t *rows = history(db);
    dump(rows);
    assert_true(skips_after(rows, t_pause, "paused") >= 2);
    json_decref(rows);

    /* run-now (allowed while paused: it is asked for by name), and again
     * while it runs: refused */
    assert_int_equal(ctl(out, sizeof(out), key_path, "run-now", "quick", NULL), 0);
    assert_non_null(strstr(out, "manual run"));
    assert_int_equal(ctl(out, sizeof(out), key_path, "run-now", "quick", NULL), 2);
    assert_non_null(strstr(out, "already running"));
    sleep_ms(6000);
    rows = history(db);
    size_t manual = 0;
    for (size_t i = 0; i < json_array_size(rows); i++) {
        json_t *a = json_array_get(rows, i);
        if (strcmp(row_str(a, "flags"), "manual") == 0) {
            manual++;
            assert_string_equal(row_str(a, "state"), "finished");
            assert_true(row_num(a, "due_ms") >= t_pause);
        }
    }
    assert_int_equal(manual, 1);
    json_decref(rows);

    /* history --server prints what the local history prints (read while
     * nothing changes between two local reads) */
    static char a[1 << 18], b[1 << 18], c[1 << 18];
    bool checked = false;
    for (int tries = 0; tries < 10 && !checked; tries++) {
        bool stable = true;
        for (int j = 0; j < 2 && stable; j++) {
            char *loc[] = {arg(FL_CTL_BIN),
                           arg("history"),
                           arg(j ? "--limit" : "--json"),
                           arg(j ? "50" : "--json"),
                           arg("--db"),
                           arg(db),
                           NULL};
            char *rem[] = {arg(FL_CTL_BIN),
                           arg("history"),
                           arg(j ? "--limit" : "--json"),
                           arg(j ? "50" : "--json"),
                           arg("--server"),
                           server,
                           arg("--key"),
                           key_path,
                           NULL};
            assert_int_equal(proc_run(loc, a, sizeof(a), 10000), 0);
            assert_int_equal(proc_run(rem, b, sizeof(b), 20000), 0);
            assert_int_equal(proc_run(loc, c, sizeof(c), 10000), 0);
            if (strcmp(a, c) != 0)
                stable = false; /* a row came between: read again */
            else if (strcmp(a, b) != 0)
                fail_msg("history --server differs from history:\n%s\n---\n%s", b, a);
        }
        checked = stable;
    }
    assert_true(checked);
    assert_non_null(strstr(b, "manual"));

    /* resume: runs again */
    assert_int_equal(ctl(out, sizeof(out), key_path, "resume", "quick", NULL), 0);
    assert_non_null(strstr(out, "resumed"));
    wait_paused(log);
    stop_serve(serve, log);
    assert_int_equal(proc_wait_state(dummy, 'S', 5000), 'S');
    assert_no_active_fault();
}

int main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "serve_control_test: skipped, needs root (pause_process)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_freeze_mid_run_restart_thaw),
        cmocka_unit_test(test_wrong_key_pause_run_now_history),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
