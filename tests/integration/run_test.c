/* faultline run end to end on loopback, against a real agent and a real
 * service: a TCP listener that a supervisor restarts a known delay after it
 * dies. The observed recovery time must lie within one probe interval of the
 * true one (from the supervisor's own clock). Also: a steady state that
 * fails aborts with nothing injected; Ctrl-C mid-run reverts everything; an
 * unreachable agent aborts before any injection; no recovery probe and no
 * target host is dropped by a fixed limit. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/clock.h"
#include "tests/support/agent_proc.h"
#include "tests/support/proc.h"

#define RESTART_DELAY_MS 1000
#define INTERVAL_MS 100

static char dir[] = "/tmp/fl-run-test.XXXXXX";
static char key_path[300];
static struct test_agent agent;
static pid_t supervisor;
static uint16_t svc_port;
static char pidfile[300], events[300];
static const char *extra_objectives = ""; /* inside objectives: { rto: 5s ... } */

static char *arg(const char *a)
{
    return (char *)(uintptr_t)a;
}

static void append_event(const char *what)
{
    int fd = open(events, O_WRONLY | O_CREAT | O_APPEND, 0644);
    char line[64];
    int n = snprintf(line, sizeof(line), "%s %llu\n", what, (unsigned long long)fl_now_ms());
    if (fd >= 0) {
        if (write(fd, line, (size_t)n) < 0) {
            /* nothing to do in a test helper */
        }
        close(fd);
    }
}

/* The service: accept and close, forever. */
static void serve(void)
{
    prctl(PR_SET_NAME, "fl-test-svc", 0, 0, 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(svc_port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    while (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
        sleep_ms(5);
    listen(fd, 64);
    append_event("listening");
    for (;;) {
        int c = accept(fd, NULL, NULL);
        if (c >= 0)
            close(c);
    }
}

/* Restarts the service RESTART_DELAY_MS after it dies; its pid in pidfile. */
static void supervise(void)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    for (;;) {
        pid_t svc = fork();
        if (svc == 0)
            serve();
        FILE *f = fopen(pidfile, "w");
        if (f) {
            fprintf(f, "%d\n", (int)svc);
            fclose(f);
        }
        int st;
        waitpid(svc, &st, 0);
        append_event("died");
        sleep_ms(RESTART_DELAY_MS);
    }
}

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(key_path, sizeof(key_path), "%s/faultline.key", dir);
    snprintf(pidfile, sizeof(pidfile), "%s/svc.pid", dir);
    snprintf(events, sizeof(events), "%s/events", dir);
    char out[512];
    char *kg[] = {arg(FL_CTL_BIN), arg("keygen"), key_path, NULL};
    if (proc_run(kg, out, sizeof(out), 5000) != 0)
        return -1;
    const char *extra[] = {"--lease", "2s", NULL};
    if (test_agent_start(&agent, FL_AGENT_BIN, key_path, dir, "agent", NULL, extra) < 0)
        return -1;
    svc_port = test_free_port();
    supervisor = fork();
    if (supervisor == 0)
        supervise();
    char buf[4096];
    return file_wait_for(events, "listening", buf, sizeof(buf), 5000) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    int rc = 0;
    if (supervisor > 0) {
        kill(supervisor, SIGKILL);
        waitpid(supervisor, NULL, 0);
        FILE *f = fopen(pidfile, "r");
        int svc = 0;
        if (f && fscanf(f, "%d", &svc) == 1 && svc > 0)
            kill(svc, SIGKILL);
        if (f)
            fclose(f);
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

/* Writes an experiment with one tcp probe on probe_port and one fault. */
static void write_experiment(const char *path, uint16_t agent_port, uint16_t probe_port,
                             const char *fault, const char *duration)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "version: 1\n"
            "name: supervised-crash\n"
            "inventory:\n"
            "  key_file: %s\n"
            "  hosts:\n"
            "    svc1: { address: 127.0.0.1, port: %u }\n"
            "objectives: { rto: 5s%s }\n"
            "probes:\n"
            "  - name: service\n"
            "    tcp: { address: \"127.0.0.1:%u\" }\n"
            "    interval: %dms\n"
            "    timeout: %dms\n"
            "    rise: 2\n"
            "    fall: 1\n"
            "steady_state: [service]\n"
            "faults:\n"
            "  - name: the-fault\n"
            "    target: { hosts: [svc1] }\n"
            "    %s\n"
            "    duration: %s\n"
            "abort_when:\n"
            "  - { max_duration: 1m }\n"
            "recovery: { probes: [service], timeout: 15s }\n",
            key_path, (unsigned)agent_port, extra_objectives, (unsigned)probe_port, INTERVAL_MS,
            INTERVAL_MS, fault, duration);
    fclose(f);
}

static int run(const char *exp, const char *report_dir, char *out, size_t cap)
{
    char *argv[] = {arg(FL_CTL_BIN),     arg("run"),      arg(exp),
                    arg("--report-dir"), arg(report_dir), NULL};
    return proc_run(argv, out, cap, 90000);
}

/* The last value of `what` in the supervisor's event file. */
static uint64_t last_event(const char *what)
{
    FILE *f = fopen(events, "r");
    char w[32];
    unsigned long long t, last = 0;
    while (f && fscanf(f, "%31s %llu", w, &t) == 2)
        if (strcmp(w, what) == 0)
            last = t;
    if (f)
        fclose(f);
    return last;
}

static void test_recovery_time_matches_the_truth(void **state)
{
    (void)state;
    char exp[400], rep[400], fault[400];
    snprintf(exp, sizeof(exp), "%s/crash.yaml", dir);
    snprintf(rep, sizeof(rep), "%s/report-crash", dir);
    snprintf(fault, sizeof(fault), "kill_process: { pidfile: %s }", pidfile);
    write_experiment(exp, agent.port, svc_port, fault, "4s");

    static char out[1 << 16];
    int rc = run(exp, rep, out, sizeof(out));
    if (rc != 0 || getenv("FL_TEST_VERBOSE"))
        fprintf(stderr, "%s\n", out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "PASS"));

    char path[500];
    snprintf(path, sizeof(path), "%s/run.json", rep);
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "verdict")), "pass");
    json_t *m = json_object_get(j, "measurements");
    json_int_t observed = json_integer_value(json_object_get(m, "recovery_time_ms"));
    json_int_t resolution = json_integer_value(json_object_get(m, "resolution_ms"));
    assert_false(json_is_true(json_object_get(m, "no_impact")));
    /* a handful of probes: one loop, chosen by their load (rate.h) */
    json_t *jc = json_object_get(j, "controller");
    assert_int_equal(json_integer_value(json_object_get(jc, "probe_threads")), 1);
    assert_string_equal(json_string_value(json_object_get(jc, "probe_threads_from")), "auto");

    /* the truth: from the kill (the supervisor saw its child die) to the
     * listener being back */
    uint64_t died = last_event("died"), back = last_event("listening");
    assert_true(died > 0 && back > died);
    json_int_t truth = (json_int_t)(back - died);
    json_int_t diff = observed > truth ? observed - truth : truth - observed;
    fprintf(stderr,
            "recovery: observed %lld ms (resolution %lld ms), true %lld ms, difference %lld ms, "
            "probe interval %d ms\n",
            (long long)observed, (long long)resolution, (long long)truth, (long long)diff,
            INTERVAL_MS);
    assert_true(diff <= INTERVAL_MS + 50); /* one interval, and the kill's own latency */
    /* the fault, with the controller's and the agent's times */
    json_t *jf = json_array_get(json_object_get(j, "faults"), 0);
    assert_non_null(jf);
    assert_true(json_is_string(json_object_get(jf, "applied_at")));
    assert_true(json_is_string(json_object_get(jf, "agent_applied_at")));
    assert_true(json_is_string(json_object_get(jf, "agent_reverted_at")));
    json_decref(j);

    snprintf(path, sizeof(path), "%s/junit.xml", rep);
    char buf[8192];
    assert_non_null(file_wait_for(path, "<testcase", buf, sizeof(buf), 100));
}

static void test_steady_state_fails_nothing_injected(void **state)
{
    (void)state;
    char exp[400], rep[400], fault[400];
    snprintf(exp, sizeof(exp), "%s/unsteady.yaml", dir);
    snprintf(rep, sizeof(rep), "%s/report-unsteady", dir);
    snprintf(fault, sizeof(fault), "kill_process: { pidfile: %s }", pidfile);
    write_experiment(exp, agent.port, test_free_port() /* nothing listens */, fault, "4s");
    uint64_t died_before = last_event("died");
    static char out[1 << 16];
    assert_int_equal(run(exp, rep, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "ABORTED"));
    assert_non_null(strstr(out, "steady state"));
    assert_int_equal(last_event("died"), died_before); /* the service was left alone */
}

static void test_unreachable_agent_aborts(void **state)
{
    (void)state;
    char exp[400], rep[400], fault[400];
    snprintf(exp, sizeof(exp), "%s/unreachable.yaml", dir);
    snprintf(rep, sizeof(rep), "%s/report-unreachable", dir);
    snprintf(fault, sizeof(fault), "kill_process: { pidfile: %s }", pidfile);
    write_experiment(exp, 1 /* nothing listens */, svc_port, fault, "4s");
    uint64_t died_before = last_event("died");
    static char out[1 << 16];
    assert_int_equal(run(exp, rep, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "unreachable"));
    assert_int_equal(last_event("died"), died_before);
}

static void test_ctrl_c_reverts(void **state)
{
    (void)state;
    char exp[400], rep[400], fault[400], log[400];
    snprintf(exp, sizeof(exp), "%s/pause.yaml", dir);
    snprintf(rep, sizeof(rep), "%s/report-pause", dir);
    snprintf(log, sizeof(log), "%s/pause.out", dir);
    snprintf(fault, sizeof(fault), "pause_process: { pidfile: %s }", pidfile);
    write_experiment(exp, agent.port, svc_port, fault, "50s");
    char *argv[] = {arg(FL_CTL_BIN), arg("run"), exp, arg("--report-dir"), rep, NULL};
    pid_t pid = proc_start(argv, log);
    char buf[1 << 16];
    if (file_wait_for(log, "injected the-fault", buf, sizeof(buf), 20000) == NULL) {
        fprintf(stderr, "%s\n", buf);
        fail();
    }
    FILE *f = fopen(pidfile, "r");
    int svc = 0;
    assert_true(f && fscanf(f, "%d", &svc) == 1);
    fclose(f);
    assert_int_equal(proc_state_of(svc), 'T');
    kill(pid, SIGINT);
    assert_int_equal(proc_wait(pid, 20000), 2);
    assert_int_equal(proc_state_of(svc), 'S');
    assert_non_null(file_wait_for(log, "interrupted (SIGINT)", buf, sizeof(buf), 100));
    char out[8192];
    char *ag[] = {arg(FL_CTL_BIN), arg("agents"), arg("--key"), key_path, agent.where, NULL};
    assert_int_equal(proc_run(ag, out, sizeof(out), 10000), 0);
    assert_null(strstr(out, "pause_process  active"));
}

/* --dry-run checks the steady state and injects nothing. */
static void test_dry_run(void **state)
{
    (void)state;
    char exp[400], rep[400], fault[400];
    snprintf(exp, sizeof(exp), "%s/dry.yaml", dir);
    snprintf(rep, sizeof(rep), "%s/report-dry", dir);
    snprintf(fault, sizeof(fault), "kill_process: { pidfile: %s }", pidfile);
    write_experiment(exp, agent.port, svc_port, fault, "4s");
    uint64_t died_before = last_event("died");
    char *argv[] = {arg(FL_CTL_BIN), arg("run"), exp, arg("--dry-run"), NULL};
    static char out[1 << 16];
    assert_int_equal(proc_run(argv, out, sizeof(out), 30000), 0);
    assert_non_null(strstr(out, "the-fault: kill_process on svc1"));
    /* the agent says what it would hit, and hits nothing (issue 13) */
    assert_non_null(strstr(out, "would send KILL to fl-test-svc["));
    assert_non_null(strstr(out, "nothing was injected"));
    assert_int_equal(last_event("died"), died_before);
}

/* The availability objective (issue 14): a one-second recovery is far too
 * long for 99.9999 % with a thousand failures a year (31.5 ms each): FAIL,
 * saying by how much, though the RTO was met. */
static void test_availability_objective(void **state)
{
    (void)state;
    char exp[400], rep[400], fault[400];
    snprintf(exp, sizeof(exp), "%s/avail.yaml", dir);
    snprintf(rep, sizeof(rep), "%s/report-avail", dir);
    snprintf(fault, sizeof(fault), "kill_process: { pidfile: %s }", pidfile);
    extra_objectives = ", availability: { target: 99.9999%, failures_per_year: 1000 }";
    write_experiment(exp, agent.port, svc_port, fault, "2s");
    extra_objectives = "";
    static char out[1 << 16];
    int rc = run(exp, rep, out, sizeof(out));
    if (rc != 1 || getenv("FL_TEST_VERBOSE"))
        fprintf(stderr, "%s\n", out);
    assert_int_equal(rc, 1);
    char path[500];
    snprintf(path, sizeof(path), "%s/run.json", rep);
    json_t *j = json_load_file(path, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "verdict")), "fail");
    assert_non_null(strstr(json_string_value(json_object_get(j, "reason")),
                           "but to keep 99.9999% each failure may last at most 0.03s"));
    json_t *av = json_object_get(json_object_get(j, "objectives"), "availability");
    assert_true(json_is_true(json_object_get(av, "measured")));
    assert_false(json_is_true(json_object_get(av, "pass")));
    assert_int_equal(json_integer_value(json_object_get(av, "max_mttr_ms")), 31);
    json_decref(j);
}

/* halt and agents take their hosts, and the key, from an inventory file. */
static void test_inventory_commands(void **state)
{
    (void)state;
    char inv[400], pid[32];
    snprintf(inv, sizeof(inv), "%s/hosts.yaml", dir);
    FILE *f = fopen(inv, "w");
    assert_non_null(f);
    fprintf(f, "key_file: faultline.key\nhosts:\n  svc1: { address: 127.0.0.1, port: %u }\n",
            (unsigned)agent.port);
    fclose(f);
    f = fopen(pidfile, "r");
    int svc = 0;
    assert_true(f && fscanf(f, "%d", &svc) == 1);
    fclose(f);
    snprintf(pid, sizeof(pid), "pid=%d", svc);

    char out[8192];
    char *inj[] = {arg(FL_CTL_BIN),      arg("inject"), arg("--key"),      key_path,  agent.where,
                   arg("pause_process"), pid,           arg("--duration"), arg("1m"), NULL};
    assert_int_equal(proc_run(inj, out, sizeof(out), 10000), 0);
    assert_int_equal(proc_state_of(svc), 'T');
    unsetenv("FAULTLINE_KEY");
    char *ag[] = {arg(FL_CTL_BIN), arg("agents"), arg("--inventory"), inv, NULL};
    assert_int_equal(proc_run(ag, out, sizeof(out), 10000), 0);
    assert_non_null(strstr(out, "pause_process"));
    char *halt[] = {arg(FL_CTL_BIN), arg("halt"), arg("--inventory"), inv, NULL};
    assert_int_equal(proc_run(halt, out, sizeof(out), 10000), 0);
    assert_non_null(strstr(out, "1 fault(s) ended"));
    assert_int_equal(proc_state_of(svc), 'S');
}

/* Every recovery probe counts, however many: 64 healthy ones and, last, one
 * that never comes up. (The verdict once combined only the first 64.) */
static void test_every_recovery_probe_counts(void **state)
{
    (void)state;
    enum { N_HEALTHY = 64 };
    char exp[400], rep[400];
    snprintf(exp, sizeof(exp), "%s/many-probes.yaml", dir);
    snprintf(rep, sizeof(rep), "%s/report-many-probes", dir);
    FILE *f = fopen(exp, "w");
    assert_non_null(f);
    fprintf(f,
            "version: 1\n"
            "name: many-recovery-probes\n"
            "inventory:\n"
            "  key_file: %s\n"
            "  hosts:\n"
            "    svc1: { address: 127.0.0.1, port: %u }\n"
            "probes:\n",
            key_path, (unsigned)agent.port);
    for (int i = 0; i < N_HEALTHY; i++)
        fprintf(f,
                "  - { name: up%d, tcp: { address: \"127.0.0.1:%u\" }, interval: 200ms, "
                "timeout: 200ms, rise: 1, fall: 1 }\n",
                i, (unsigned)svc_port);
    fprintf(f,
            "  - { name: never, tcp: { address: \"127.0.0.1:%u\" }, interval: 200ms, "
            "timeout: 200ms, rise: 1, fall: 1 }\n"
            "steady_state: [up0]\n"
            "faults:\n"
            "  - name: pause\n"
            "    target: { hosts: [svc1] }\n"
            "    pause_process: { pidfile: %s }\n"
            "    duration: 300ms\n"
            "recovery:\n"
            "  timeout: 2s\n"
            "  probes: [",
            (unsigned)test_free_port() /* nothing listens */, pidfile);
    for (int i = 0; i < N_HEALTHY; i++)
        fprintf(f, "up%d, ", i);
    fprintf(f, "never]\n");
    fclose(f);

    static char out[1 << 17];
    int rc = run(exp, rep, out, sizeof(out));
    if (rc != 1 || getenv("FL_TEST_VERBOSE"))
        fprintf(stderr, "%s\n", out);
    assert_int_equal(rc, 1);
    char path[500];
    snprintf(path, sizeof(path), "%s/run.json", rep);
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "verdict")), "fail");
    json_decref(j);
}

/* A fault may target more than 256 hosts: every one of them is planned. (A
 * fixed pick[256] once dropped the rest.) The agents are unreachable, so the
 * run aborts before anything is injected, after it said what it planned. */
static void test_every_target_host_counts(void **state)
{
    (void)state;
    enum { N_HOSTS = 300 };
    char exp[400], rep[400];
    snprintf(exp, sizeof(exp), "%s/many-hosts.yaml", dir);
    snprintf(rep, sizeof(rep), "%s/report-many-hosts", dir);
    FILE *f = fopen(exp, "w");
    assert_non_null(f);
    fprintf(f,
            "version: 1\n"
            "name: many-hosts\n"
            "inventory:\n"
            "  key_file: %s\n"
            "  hosts:\n",
            key_path);
    for (int i = 0; i < N_HOSTS; i++)
        fprintf(f, "    h%d: { address: 127.0.0.1, port: 1, tags: [all] }\n", i);
    fprintf(f,
            "probes:\n"
            "  - { name: service, tcp: { address: \"127.0.0.1:%u\" } }\n"
            "steady_state: [service]\n"
            "faults:\n"
            "  - name: pause\n"
            "    target: { tags: [all], percent: 100 }\n"
            "    pause_process: { name: nothing-by-this-name }\n"
            "    duration: 1s\n"
            "recovery: { probes: [service], timeout: 1s }\n",
            (unsigned)svc_port);
    fclose(f);

    static char out[1 << 17];
    int rc = run(exp, rep, out, sizeof(out));
    if (rc != 2 || getenv("FL_TEST_VERBOSE"))
        fprintf(stderr, "%s\n", out);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "300 fault(s) on 300 agent(s)"));
    assert_non_null(strstr(out, "unreachable"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recovery_time_matches_the_truth),
        cmocka_unit_test(test_steady_state_fails_nothing_injected),
        cmocka_unit_test(test_unreachable_agent_aborts),
        cmocka_unit_test(test_ctrl_c_reverts),
        cmocka_unit_test(test_dry_run),
        cmocka_unit_test(test_availability_objective),
        cmocka_unit_test(test_inventory_commands),
        cmocka_unit_test(test_every_recovery_probe_counts),
        cmocka_unit_test(test_every_target_host_counts),
    };
    return cmocka_run_group_tests_name("faultline run, end to end", tests, setup, teardown);
}
