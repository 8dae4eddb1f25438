/* faultline serve's blast radius end to end on loopback (controller/serve/
 * radius.h): two experiments whose faults hit different hosts but whose
 * probes reach the same endpoint must take turns.
 *
 * Three real agents stand for three hosts: web1 on 127.0.0.1, web2 on
 * 127.0.0.2, lb on 127.0.0.3 (the whole of 127/8 is loopback). `a` pauses a
 * dummy through web1, `b` another through web2; both probe lb's port, the
 * endpoint they share. Both are due every 4 s at the same instants and serve
 * may run two at once (--max-concurrent-runs 2), so only the blast radius
 * keeps them apart: with fault targets alone (the rule before) they start
 * together. A run lasts longer than its fault (1 s), and starting_deadline
 * is 1 s, so at each due time one runs and the other is a skip row. After
 * three due times:
 * - no run of a overlaps a run of b in time;
 * - both ran (ties go to the one that started least recently);
 * - there are `hosts busy` skips, and each says why: lb (127.0.0.3: probed
 *   by ..., probed by ...). */
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

#include "tests/support/agent_proc.h"
#include "tests/support/proc.h"
#include "tests/support/serve.h"

#define N_HOSTS 3
static char dir[] = "/tmp/fl-radius-serve.XXXXXX";
static char key_path[300], db_url[320], reports[300];
static struct test_agent agents[N_HOSTS]; /* web1, web2, lb */
static const char *const host_names[N_HOSTS] = {"web1", "web2", "lb"};
static const char *const listens[N_HOSTS] = {"127.0.0.1:0", "127.0.0.2:0", "127.0.0.3:0"};
static pid_t dummies[2];
static char pidfiles[2][300];
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
    snprintf(db_url, sizeof(db_url), "sqlite:%s/history.db", dir);
    snprintf(reports, sizeof(reports), "%s/reports", dir);
    char out[512];
    char *kg[] = {arg(FL_CTL_BIN), arg("keygen"), key_path, NULL};
    if (proc_run(kg, out, sizeof(out), 5000) != 0)
        return -1;
    for (size_t i = 0; i < N_HOSTS; i++) {
        const char *extra[] = {"--listen", listens[i], "--lease", "2s", NULL};
        if (test_agent_start(&agents[i], FL_AGENT_BIN, key_path, dir, host_names[i], NULL, extra) <
            0)
            return -1;
    }
    for (size_t i = 0; i < 2; i++) {
        dummies[i] = fork();
        if (dummies[i] == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
            prctl(PR_SET_NAME, "fl-radius-dummy", 0, 0, 0);
            for (;;)
                pause();
        }
        snprintf(pidfiles[i], sizeof(pidfiles[i]), "%s/dummy%zu.pid", dir, i);
        FILE *f = fopen(pidfiles[i], "w");
        if (f == NULL)
            return -1;
        fprintf(f, "%d\n", (int)dummies[i]);
        fclose(f);
    }
    http_port = test_free_port();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = 0;
    for (size_t i = 0; i < 2; i++)
        if (dummies[i] > 0) {
            kill(dummies[i], SIGKILL);
            waitpid(dummies[i], NULL, 0);
        }
    for (size_t i = 0; i < N_HOSTS; i++) {
        if (agents[i].pid > 0 && proc_stop(agents[i].pid, SIGTERM, 10000) != 0)
            rc = -1;
        if (rc != 0 || getenv("FL_TEST_VERBOSE"))
            test_agent_dump_log(&agents[i]);
    }
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = -1;
    return rc;
}

/* name pauses dummy `which` through `host`; its probe is lb's port. */
static void write_experiment(const char *exps, const char *name, const char *host, size_t which)
{
    char path[500];
    snprintf(path, sizeof(path), "%s/%s.yaml", exps, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "version: 1\n"
            "name: %s\n"
            "inventory:\n"
            "  key_file: %s\n"
            "  hosts:\n",
            name, key_path);
    for (size_t i = 0; i < N_HOSTS; i++)
        fprintf(f, "    %s: { address: \"%s\" }\n", host_names[i], agents[i].where);
    fprintf(f,
            "probes:\n"
            "  - name: through-lb\n"
            "    tcp: { address: \"%s\" }\n"
            "    interval: 100ms\n"
            "    timeout: 100ms\n"
            "steady_state: [through-lb]\n"
            "faults:\n"
            "  - name: pause-dummy\n"
            "    target: { hosts: [%s] }\n"
            "    pause_process: { pidfile: %s }\n"
            "    duration: 1s\n"
            "recovery: { probes: [through-lb], timeout: 5s }\n"
            "schedule:\n"
            "  every: 4s\n"
            "  starting_deadline: 1s\n",
            agents[2].where, host, pidfiles[which]);
    assert_int_equal(fclose(f), 0);
}

static void test_shared_probe_endpoint_takes_turns(void **state)
{
    (void)state;
    char exps[400], log[400], listen[64];
    snprintf(exps, sizeof(exps), "%s/exps", dir);
    snprintf(log, sizeof(log), "%s/serve.log", dir);
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)http_port);
    assert_int_equal(mkdir(exps, 0755), 0);
    write_experiment(exps, "a", "web1", 0);
    write_experiment(exps, "b", "web2", 1);
    char *argv[] = {arg(FL_CTL_BIN),
                    arg("serve"),
                    arg("--experiments"),
                    exps,
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
    pid_t serve = proc_start(argv, log);
    assert_true(serve > 0);
    sleep_ms(14000); /* due times at 4, 8 and 12 s */
    kill(serve, SIGTERM);
    serve_check_exit(proc_wait(serve, 20000), log);
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(proc_wait_state(dummies[i], 'S', 5000), 'S');

    json_t *rows = serve_history(FL_CTL_BIN, db_url, 10000);
    size_t n = json_array_size(rows), ran[2] = {0, 0}, busy = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(rows, i);
        fprintf(stderr, "  %s due %lld %-9s %lld..%lld %-16s %s\n", row_str(x, "experiment"),
                (long long)row_num(x, "due_ms"), row_str(x, "state"),
                (long long)row_num(x, "started_ms"), (long long)row_num(x, "ended_ms"),
                row_str(x, "verdict"), row_str(x, "reason"));
    }
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(rows, i);
        const char *reason = row_str(x, "reason");
        if (strncmp(reason, "hosts busy", 10) == 0) {
            bool a_waited = strcmp(row_str(x, "experiment"), "a") == 0;
            char want[200];
            snprintf(want, sizeof(want),
                     "hosts busy: lb (127.0.0.3: probed by %s, probed by %s) (waited "
                     "starting_deadline)",
                     a_waited ? "a" : "b", a_waited ? "b" : "a");
            assert_string_equal(reason, want);
            busy++;
        }
        if (strcmp(row_str(x, "state"), "finished") != 0)
            continue;
        ran[strcmp(row_str(x, "experiment"), "a") == 0 ? 0 : 1]++;
        for (size_t k = 0; k < n; k++) {
            json_t *y = json_array_get(rows, k);
            if (strcmp(row_str(y, "state"), "finished") != 0 ||
                strcmp(row_str(x, "experiment"), row_str(y, "experiment")) == 0)
                continue;
            bool disjoint = row_num(x, "ended_ms") <= row_num(y, "started_ms") ||
                            row_num(y, "ended_ms") <= row_num(x, "started_ms");
            if (!disjoint)
                fail_msg("runs %lld (%s) and %lld (%s) overlap in time: both probe lb",
                         (long long)row_num(x, "id"), row_str(x, "experiment"),
                         (long long)row_num(y, "id"), row_str(y, "experiment"));
        }
    }
    assert_true(ran[0] >= 1);
    assert_true(ran[1] >= 1);
    assert_true(busy >= 1);
    json_decref(rows);
}

int main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "serve_radius_test: skipped, needs root (pause_process through the "
                        "agents)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_probe_endpoint_takes_turns),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
