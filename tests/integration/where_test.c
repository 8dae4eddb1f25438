/* Role-aware targets and required impact, end to end (issue 13).
 *
 * Two inventory hosts, each with its own real agent on loopback. Which one
 * is "the primary" is a file per host that the test rewrites between runs,
 * as a failover would move the role; the where: probe template asks it
 * (`cat ROLE-{host}`, expecting "primary"). The fault is harmless (it
 * pauses a dummy process), so the same file also shows impact: a required
 * impact that never shows FAILs, an optional one is PASS (no impact).
 *
 *   1. h2 is primary: the fault goes to h2 only; h1 is "no match".
 *   2. the role moves to h1: the same experiment follows it.
 *   3. nobody is primary: ABORTED before anything is injected, naming each
 *      candidate and what its check said.
 *   4. impact: required (the default with an rto) and no visible effect:
 *      FAIL "the fault had no visible effect on any probe".
 *   5. a template cannot be a steady-state probe: refused, with the position. */
#include <errno.h>
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

static char dir[] = "/tmp/fl-where-test.XXXXXX";
static char key_path[300];
static struct test_agent a1, a2;
static pid_t dummy;

static char *arg(const char *a)
{
    return (char *)(uintptr_t)a;
}

static void set_role(const char *host, const char *role)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/role-%s", dir, host);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "role: %s\n", role);
    fclose(f);
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
    if (test_agent_start(&a1, FL_AGENT_BIN, key_path, dir, "a1", NULL, NULL) < 0 ||
        test_agent_start(&a2, FL_AGENT_BIN, key_path, dir, "a2", NULL, NULL) < 0)
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
    if (a1.pid > 0 && proc_stop(a1.pid, SIGTERM, 10000) != 0)
        rc = -1;
    if (a2.pid > 0 && proc_stop(a2.pid, SIGTERM, 10000) != 0)
        rc = -1;
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = -1;
    return rc;
}

/* Writes the experiment; objectives is the objectives: line's value. */
static void write_experiment(const char *path, const char *objectives, const char *steady)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "version: 1\n"
            "name: follow-the-primary\n"
            "inventory:\n"
            "  key_file: %s\n"
            "  hosts:\n"
            "    h1: { address: 127.0.0.1, port: %u, tags: [db] }\n"
            "    h2: { address: 127.0.0.1, port: %u, tags: [db] }\n"
            "objectives: %s\n"
            "probes:\n"
            "  - name: service\n"
            "    exec: { argv: [/bin/true] }\n"
            "    interval: 100ms\n"
            "    rise: 1\n"
            "  - name: is-primary\n"
            "    exec: { argv: [/bin/cat, \"%s/role-{host}\"], expect_output: primary }\n"
            "steady_state: [%s]\n"
            "faults:\n"
            "  - name: pause-the-primary\n"
            "    target: { tags: [db], where: is-primary, count: 1 }\n"
            "    pause_process: { pid: %d }\n"
            "    duration: 500ms\n"
            "recovery: { probes: [service], timeout: 5s }\n",
            key_path, (unsigned)a1.port, (unsigned)a2.port, objectives, dir, steady, (int)dummy);
    fclose(f);
}

static int run(const char *exp, const char *report, char *out, size_t cap, json_t **j)
{
    char *argv[] = {arg(FL_CTL_BIN), arg("run"), arg(exp), arg("--report-dir"), arg(report), NULL};
    int rc = proc_run(argv, out, cap, 60000);
    char path[500];
    snprintf(path, sizeof(path), "%s/run.json", report);
    *j = json_load_file(path, 0, NULL);
    if (getenv("FL_TEST_VERBOSE") || *j == NULL)
        fprintf(stderr, "%s\n", out);
    return rc;
}

/* The fault record for host h in run.json. */
static json_t *fault_on(json_t *j, const char *h)
{
    json_t *faults = json_object_get(j, "faults"), *f;
    size_t i;
    json_array_foreach(faults, i, f)
    {
        if (strcmp(json_string_value(json_object_get(json_object_get(f, "host"), "name")), h) == 0)
            return f;
    }
    return NULL;
}

static void expect_target(json_t *j, const char *hit, const char *missed)
{
    json_t *f = fault_on(j, hit), *g = fault_on(j, missed);
    assert_non_null(f);
    assert_non_null(g);
    assert_true(json_is_true(json_object_get(f, "chosen")));
    assert_true(json_is_string(json_object_get(f, "id"))); /* applied by that agent */
    const char *outcome = json_string_value(json_object_get(f, "outcome"));
    assert_true(strcmp(outcome, "reverted") == 0 || strcmp(outcome, "expired") == 0);
    assert_true(json_is_true(json_object_get(json_object_get(f, "where"), "matched")));
    assert_false(json_is_true(json_object_get(g, "chosen")));
    assert_true(json_is_null(json_object_get(g, "id"))); /* never sent */
    assert_string_equal(json_string_value(json_object_get(g, "outcome")), "no match");
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(g, "where"), "detail")),
               "lacks \"primary\": role: replica"));
}

static void test_where_follows_the_role(void **state)
{
    (void)state;
    char exp[400], report[400], out[16384];
    snprintf(exp, sizeof(exp), "%s/e.yaml", dir);
    write_experiment(exp, "{ rto: 5s, impact: optional }", "service");
    json_t *j;

    set_role("h1", "replica");
    set_role("h2", "primary");
    snprintf(report, sizeof(report), "%s/r1", dir);
    assert_int_equal(run(exp, report, out, sizeof(out), &j), 0);
    assert_string_equal(json_string_value(json_object_get(j, "verdict")), "pass_no_impact");
    expect_target(j, "h2", "h1");
    assert_non_null(strstr(out, "PASS (no impact)"));
    json_decref(j);

    /* a failover moved the role: the same file follows it */
    set_role("h1", "primary");
    set_role("h2", "replica");
    snprintf(report, sizeof(report), "%s/r2", dir);
    assert_int_equal(run(exp, report, out, sizeof(out), &j), 0);
    expect_target(j, "h1", "h2");
    json_decref(j);

    /* nobody holds the role: nothing injected, every candidate named */
    set_role("h1", "replica");
    set_role("h2", "down");
    snprintf(report, sizeof(report), "%s/r3", dir);
    assert_int_equal(run(exp, report, out, sizeof(out), &j), 2);
    assert_string_equal(json_string_value(json_object_get(j, "verdict")), "aborted");
    const char *why = json_string_value(json_object_get(j, "abort_reason"));
    assert_non_null(strstr(why, "no candidate of fault pause-the-primary matched where: "
                                "is-primary, nothing was injected"));
    assert_non_null(strstr(why, "h1 (127.0.0.1): exit 0, but the output lacks \"primary\": "
                                "role: replica"));
    assert_non_null(strstr(why, "h2 (127.0.0.1): exit 0, but the output lacks \"primary\": "
                                "role: down"));
    assert_true(json_is_null(json_object_get(fault_on(j, "h1"), "id")));
    assert_true(json_is_null(json_object_get(fault_on(j, "h2"), "id")));
    json_decref(j);
}

static void test_required_impact_fails_a_run_that_tested_nothing(void **state)
{
    (void)state;
    char exp[400], report[400], out[16384];
    snprintf(exp, sizeof(exp), "%s/e2.yaml", dir);
    write_experiment(exp, "{ rto: 5s }", "service"); /* impact: required by default */
    set_role("h1", "primary");
    set_role("h2", "replica");
    json_t *j;
    snprintf(report, sizeof(report), "%s/r4", dir);
    assert_int_equal(run(exp, report, out, sizeof(out), &j), 1);
    assert_string_equal(json_string_value(json_object_get(j, "verdict")), "fail");
    assert_non_null(strstr(json_string_value(json_object_get(j, "reason")),
                           "the fault had no visible effect on any probe: check the targets"));
    json_decref(j);
}

static void test_a_template_runs_only_for_where(void **state)
{
    (void)state;
    char exp[400], out[4096];
    snprintf(exp, sizeof(exp), "%s/e3.yaml", dir);
    write_experiment(exp, "{ rto: 5s }", "service, is-primary");
    char *argv[] = {arg(FL_CTL_BIN), arg("validate"), exp, NULL};
    assert_int_equal(proc_run(argv, out, sizeof(out), 10000), 64);
    assert_non_null(strstr(out, "e3.yaml:16:25: probe 'is-primary' is a template (it uses "
                                "{host} or {address})"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_where_follows_the_role),
        cmocka_unit_test(test_required_impact_fails_a_run_that_tested_nothing),
        cmocka_unit_test(test_a_template_runs_only_for_where),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
