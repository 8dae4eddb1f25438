/* A late controller is never a failing service (issue 12 item 4).
 *
 * The service here never fails: the probe runs `sleep 0.15`, which always
 * exits 0 well within the probe's timeout, so an attempt is almost always in
 * flight. The fault pauses an unrelated dummy process. Then the controller
 * itself is made late, the way an overloaded machine makes it late: it is
 * stopped with SIGSTOP for STALL_MS (longer than the probe's timeout), three
 * times while it observes. Every attempt in flight across a stall ends with
 * a timeout that says nothing about the service.
 *
 * Before the fix, those attempts were recorded as failures: the run reported
 * an impact and a recovery (or a FAIL) for a service that never stopped
 * answering. Now no attempt may be recorded as failed or timed out; the
 * delayed ones are `late`, the run says the controller was late, and the
 * verdict is never FAIL: PASS (no impact), or ABORTED naming the
 * controller as overloaded. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "tests/support/agent_proc.h"
#include "tests/support/proc.h"

#define INTERVAL_MS 200
#define TIMEOUT_MS 1000
#define STALL_MS 1500
#define N_STALLS 4

static char dir[] = "/tmp/fl-late-test.XXXXXX";
static char key_path[300];
static struct test_agent agent;
static pid_t dummy;

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
    char out[512];
    char *kg[] = {arg(FL_CTL_BIN), arg("keygen"), key_path, NULL};
    if (proc_run(kg, out, sizeof(out), 5000) != 0)
        return -1;
    const char *extra[] = {"--lease", "3s", NULL};
    if (test_agent_start(&agent, FL_AGENT_BIN, key_path, dir, "agent", NULL, extra) < 0)
        return -1;
    dummy = fork();
    if (dummy == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        for (;;)
            pause();
    }
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

static void write_experiment(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "version: 1\n"
            "name: late-controller\n"
            "inventory:\n"
            "  key_file: %s\n"
            "  hosts:\n"
            "    h1: { address: 127.0.0.1, port: %u }\n"
            "objectives: { rto: 5s, impact: optional }\n"
            "probes:\n"
            "  - name: service\n"
            "    exec: { argv: [/bin/sleep, \"0.15\"] }\n"
            "    interval: %dms\n"
            "    timeout: %dms\n"
            "    rise: 2\n"
            "    fall: 1\n"
            "steady_state: [service]\n"
            "faults:\n"
            "  - name: pause-dummy\n"
            "    target: { hosts: [h1] }\n"
            "    pause_process: { pid: %d }\n"
            "    duration: 12s\n"
            "abort_when:\n"
            "  - { max_duration: 1m }\n"
            "recovery: { probes: [service], timeout: 10s }\n",
            key_path, (unsigned)agent.port, INTERVAL_MS, TIMEOUT_MS, (int)dummy);
    fclose(f);
}

static json_t *load_json(const char *path)
{
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    if (j == NULL)
        fprintf(stderr, "%s: %s (line %d)\n", path, jerr.text, jerr.line);
    return j;
}

/* Counts the attempts of the run by outcome, from attempts.jsonl when the
 * run wrote one (format 2), else from run.json's timeline (format 1). */
static void count_outcomes(const char *report_dir, json_t *run, size_t *ok, size_t *failed,
                           size_t *late)
{
    *ok = *failed = *late = 0;
    char path[512];
    snprintf(path, sizeof(path), "%s/attempts.jsonl", report_dir);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        char line[1024];
        while (fgets(line, sizeof(line), f) != NULL) {
            json_t *a = json_loads(line, 0, NULL);
            assert_non_null(a);
            const char *o = json_string_value(json_object_get(a, "o"));
            assert_non_null(o);
            if (strcmp(o, "ok") == 0)
                (*ok)++;
            else if (strcmp(o, "late") == 0)
                (*late)++;
            else {
                (*failed)++;
                fprintf(stderr, "recorded as a failure: %s", line);
            }
            json_decref(a);
        }
        fclose(f);
        return;
    }
    json_t *tl = json_object_get(json_array_get(json_object_get(run, "probes"), 0), "timeline");
    size_t i;
    json_t *e;
    json_array_foreach(tl, i, e)
    {
        if (json_is_true(json_object_get(e, "ok")))
            (*ok)++;
        else {
            (*failed)++;
            fprintf(stderr, "recorded as a failure: %s\n",
                    json_string_value(json_object_get(e, "detail")));
        }
    }
}

static void test_stalled_controller_invents_no_failure(void **state)
{
    (void)state;
    char exp[400], report_dir[400], log[400];
    snprintf(exp, sizeof(exp), "%s/late.yaml", dir);
    snprintf(report_dir, sizeof(report_dir), "%s/report", dir);
    snprintf(log, sizeof(log), "%s/run.log", dir);
    write_experiment(exp);

    char *argv[] = {arg(FL_CTL_BIN),     arg("run"),      arg(exp),
                    arg("--report-dir"), arg(report_dir), NULL};
    pid_t ctl = proc_start(argv, log);
    assert_true(ctl > 0);
    char buf[65536];
    assert_non_null(file_wait_for(log, "injected", buf, sizeof(buf), 20000));
    sleep_ms(300);
    for (int i = 0; i < N_STALLS; i++) {
        assert_int_equal(kill(ctl, SIGSTOP), 0);
        assert_int_equal(proc_wait_state(ctl, 'T', 2000), 'T');
        sleep_ms(STALL_MS);
        assert_int_equal(kill(ctl, SIGCONT), 0);
        sleep_ms(1000);
    }
    int st = proc_wait(ctl, 60000);
    FILE *lf = fopen(log, "r");
    size_t n = lf ? fread(buf, 1, sizeof(buf) - 1, lf) : 0;
    buf[n] = '\0';
    if (lf)
        fclose(lf);
    fprintf(stderr, "%s", buf);

    char path[512];
    snprintf(path, sizeof(path), "%s/run.json", report_dir);
    json_t *run = load_json(path);
    assert_non_null(run);
    size_t ok, failed, late;
    count_outcomes(report_dir, run, &ok, &failed, &late);
    fprintf(stderr, "attempts: %zu ok, %zu failed, %zu late\n", ok, failed, late);
    const char *verdict = json_string_value(json_object_get(run, "verdict"));
    const char *reason = json_string_value(json_object_get(run, "reason"));
    fprintf(stderr, "verdict %s: %s\n", verdict, reason);

    /* The service never failed: nothing may say it did. */
    assert_int_equal(failed, 0);
    assert_true(ok > 0);
    assert_string_not_equal(verdict, "fail");
    json_t *m = json_object_get(run, "measurements");
    assert_true(json_is_null(json_object_get(m, "impact_at")));
    /* The controller says it was late, in the run record and the live lines. */
    assert_true(late > 0);
    json_t *over = json_object_get(run, "controller_overloaded");
    assert_non_null(over);
    if (strcmp(verdict, "aborted") == 0) {
        assert_non_null(strstr(reason, "controller overloaded"));
        assert_int_equal(st, 2);
    } else {
        assert_string_equal(verdict, "pass_no_impact");
        assert_int_equal(st, 0);
    }
    assert_non_null(strstr(buf, "late"));
    json_decref(run);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stalled_controller_invents_no_failure),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
