/* cpu_stress and memory_stress against a real kernel: workers are measured
 * through /proc (CPU time, VmRSS, names), killed by revert, and killed with
 * the process that applied them. The teardown reverts whatever a failed test
 * left running; workers also die with this process (PR_SET_PDEATHSIG). A
 * worker's CPU time, and the time it wanted a CPU, are compared with a 100 %
 * burner's measured in the same windows, never with a core: on a busy host
 * both get less, alike, so the checks see the duty cycle, not the load. */
#include <errno.h>
#include <fcntl.h>
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
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/fault.h"
#include "agent/guardrails.h"
#include "common/clock.h"

#define MiB (1024ull * 1024)

/* Each worker is compared with a 100 % burner beside it, in the same windows,
 * in two ways (schedstat's counts):
 *
 *   ran     the CPU time it got over the burner's. A 50 % worker's busy
 *           milliseconds are the contended ones (the other worker spins then
 *           too), so it gets less than half what the burner gets: seen 0.29 to
 *           0.67, idle and under stress-ng --cpu 2 with builds running. A 10 %
 *           worker: 0.08 to 0.13. A 100 % worker: 0.72 to 1.38, too noisy on a
 *           busy host to tell from 50 % by this alone.
 *   wanted  the time it wanted a CPU (running, or runnable and waiting for
 *           one) over the burner's, which wants one all the time: the duty
 *           cycle itself, which other load hardly changes. Seen: 100 % 0.99 to
 *           1.01; 50 % 0.50 to 0.58 (a wake-up that waits for a CPU lengthens
 *           that period's busy part); 10 % 0.12 to 0.17.
 *
 * So a 50 % worker must run at least RAN_HALF_LO and want at most
 * WANT_HALF_HI; a 100 % worker must want at least WANT_FULL_LO and run within
 * RAN_FULL_LO to RAN_FULL_HI. */
#define RAN_HALF_LO 0.20
#define WANT_HALF_HI 0.80
#define WANT_FULL_LO 0.90
#define RAN_FULL_LO 0.60
#define RAN_FULL_HI 1.60
/* One window: 20 duty cycles of 100 ms, so one late wake-up weighs little. */
#define WINDOW_MS 2000

static struct fl_guardrails guard;
static struct fl_agent_ctx ctx;
static struct fl_fault fault;
static Faultline__FaultSpec spec;
static Faultline__CpuStress cpu;
static Faultline__MemoryStress mem;

/* The yardstick: a process that only spins, forked by us, so that it runs at
 * the workers' priority, in their cgroup, and dies with us. */
static pid_t burner;

static void start_burner(void)
{
    pid_t self = getpid();
    burner = fork();
    assert_true(burner >= 0);
    if (burner == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != self)
            _exit(0);
        prctl(PR_SET_NAME, "fl-test-burner");
        for (volatile unsigned long spin = 0;; spin++)
            ;
    }
}

static void stop_burner(void)
{
    if (burner > 0) {
        kill(burner, SIGKILL);
        waitpid(burner, NULL, 0);
    }
    burner = 0;
}

static int setup(void **state)
{
    (void)state;
    fl_guardrails_defaults(&guard);
    ctx = (struct fl_agent_ctx){.guard = &guard, .state_dir = "/nonexistent", .control_port = 7411};
    memset(&fault, 0, sizeof(fault));
    faultline__fault_spec__init(&spec);
    faultline__cpu_stress__init(&cpu);
    faultline__memory_stress__init(&mem);
    return 0;
}

/* Whatever a failed test left running is stopped here. */
static int teardown(void **state)
{
    (void)state;
    if (fault.undo != NULL && fault.kind != NULL) {
        char err[256];
        fault.kind->revert(fault.undo, err, sizeof(err));
    }
    stop_burner();
    json_decref(fault.undo);
    fault.undo = NULL;
    fl_guardrails_free(&guard);
    return 0;
}

static void ask_cpu(const char *id, uint32_t workers, uint32_t load)
{
    memset(&fault, 0, sizeof(fault));
    snprintf(fault.id, sizeof(fault.id), "%s", id);
    fault.kind = &fl_kind_cpu_stress;
    fault.spec = &spec;
    fault.duration_ms = 10000;
    spec.kind_case = FAULTLINE__FAULT_SPEC__KIND_CPU_STRESS;
    spec.cpu_stress = &cpu;
    cpu.workers = workers;
    cpu.load_percent = load;
}

static void ask_mem(const char *id, uint64_t bytes)
{
    memset(&fault, 0, sizeof(fault));
    snprintf(fault.id, sizeof(fault.id), "%s", id);
    fault.kind = &fl_kind_memory_stress;
    fault.spec = &spec;
    fault.duration_ms = 10000;
    spec.kind_case = FAULTLINE__FAULT_SPEC__KIND_MEMORY_STRESS;
    spec.memory_stress = &mem;
    mem.bytes = bytes;
}

/* A process counts as gone when /proc has no entry or it is a zombie. */
static bool gone(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return true;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return p == NULL || p[1] == '\0' || p[2] == 'Z' || p[2] == 'X';
}

static void comm_of(pid_t pid, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    buf[0] = '\0';
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return;
    if (fgets(buf, (int)len, f) != NULL)
        buf[strcspn(buf, "\n")] = '\0';
    fclose(f);
}

static long status_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    assert_non_null(f);
    long v = -1;
    size_t flen = strlen(field);
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, field, flen) == 0 && line[flen] == ':')
            v = strtol(line + flen + 1, NULL, 10);
    fclose(f);
    return v;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The scheduler's counts for a process, in seconds: time on a CPU and time
 * runnable but waiting for one (/proc/PID/schedstat). */
struct sched {
    double ran, waited;
};

static bool sched_of(pid_t pid, struct sched *out)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return false;
    unsigned long long run = 0, wait = 0;
    int got = fscanf(f, "%llu %llu", &run, &wait);
    fclose(f);
    if (got != 2)
        return false;
    out->ran = (double)run / 1e9;
    out->waited = (double)wait / 1e9;
    return true;
}

static struct sched sched_at(pid_t pid)
{
    struct sched s;
    if (!sched_of(pid, &s))
        fail_msg("no /proc/%d/schedstat", (int)pid);
    return s;
}

/* What acceptable looks like, relative to the burner. */
struct band {
    double ran_lo, ran_hi, want_lo, want_hi;
};

/* One window (WINDOW_MS): what each worker ran and wanted, over what the
 * burner ran and wanted in the same window. Other work on the host shares
 * the cores with both alike. */
static void measure(const pid_t *pids, size_t n, double *ran, double *wanted, double *share,
                    double *burnt)
{
    struct sched before[64], b0, b1;
    for (size_t i = 0; i < n; i++)
        before[i] = sched_at(pids[i]);
    b0 = sched_at(burner);
    uint64_t t0 = fl_mono_ns();
    sleep_ms(WINDOW_MS);
    b1 = sched_at(burner);
    double wall = (double)(fl_mono_ns() - t0) / 1e9;
    double b_ran = b1.ran - b0.ran, b_want = b_ran + b1.waited - b0.waited;
    *burnt = b_ran / wall;
    for (size_t i = 0; i < n; i++) {
        struct sched now = sched_at(pids[i]);
        double r = now.ran - before[i].ran, w = r + now.waited - before[i].waited;
        share[i] = r / wall;
        ran[i] = b_ran > 0 ? r / b_ran : 0.0;
        wanted[i] = b_want > 0 ? w / b_want : 0.0;
    }
}

/* Whether every worker lies in the band over one window. A window out of
 * the band is measured again, three at most: one burst of other work can
 * favour one process over another for a while, but a wrong duty cycle is
 * wrong in every window. */
static bool relative_within(const pid_t *pids, size_t n, const struct band *b)
{
    struct sched probe;
    if (!sched_of(getpid(), &probe)) {
        print_message("this kernel has no /proc/PID/schedstat (CONFIG_SCHED_INFO): the duty "
                      "cycle cannot be measured\n");
        skip();
    }
    start_burner();
    sleep_ms(500); /* the burner settles in; the workers are already running */
    bool ok = false;
    for (int attempt = 0; attempt < 3 && !ok; attempt++) {
        double ran[64], wanted[64], share[64], burnt;
        measure(pids, n, ran, wanted, share, &burnt);
        ok = burnt > 0.0;
        for (size_t i = 0; i < n; i++) {
            ok = ok && ran[i] >= b->ran_lo && ran[i] <= b->ran_hi && wanted[i] >= b->want_lo &&
                 wanted[i] <= b->want_hi;
            print_message("[ measured ] window %d: worker %d ran %.2f of a core, the burner "
                          "%.2f; of the burner's, it ran %.2f (want %.2f to %.2f) and wanted "
                          "a CPU %.2f (want %.2f to %.2f)\n",
                          attempt + 1, (int)pids[i], share[i], burnt, ran[i], b->ran_lo, b->ran_hi,
                          wanted[i], b->want_lo, b->want_hi);
        }
    }
    stop_burner();
    return ok;
}

static const struct band half_band = {RAN_HALF_LO, 1.60, 0.0, WANT_HALF_HI};
static const struct band full_band = {RAN_FULL_LO, RAN_FULL_HI, WANT_FULL_LO, 1.10};

static void test_cpu_half_load(void **state)
{
    (void)state;
    char err[512], name[32];
    ask_cpu("f-00000000000000c1", 2, 50);
    assert_int_equal(fl_kind_cpu_stress.prepare(&fault, &ctx, err, sizeof(err)), 0);
    assert_string_equal(json_string_value(json_object_get(fault.undo, "kind")), "cpu_stress");
    assert_string_equal(json_string_value(json_object_get(fault.undo, "id")), fault.id);
    assert_int_equal(json_array_size(json_object_get(fault.undo, "workers")), 0);
    int rc = fl_kind_cpu_stress.apply(&fault, err, sizeof(err));
    if (rc != 0)
        fail_msg("apply: %s", err);
    assert_int_equal(fault.n_pids, 2);
    json_t *workers = json_object_get(fault.undo, "workers");
    assert_int_equal(json_array_size(workers), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *w = json_array_get(workers, i);
        assert_int_equal(json_integer_value(json_object_get(w, "pid")), fault.pids[i]);
        assert_int_equal(json_integer_value(json_object_get(w, "start")),
                         (json_int_t)fl_proc_start_time(fault.pids[i]));
        comm_of(fault.pids[i], name, sizeof(name));
        assert_string_equal(name, "fl-cpu-stress");
    }
    assert_non_null(strstr(fault.detail, "50%"));
    assert_true(relative_within(fault.pids, 2, &half_band));
    assert_int_equal(fl_kind_cpu_stress.revert(fault.undo, err, sizeof(err)), 0);
    for (size_t i = 0; i < 2; i++)
        assert_true(gone(fault.pids[i]));
    assert_int_equal(fl_kind_cpu_stress.revert(fault.undo, err, sizeof(err)), 0);
}

/* load 0 means 100: the worker runs as much as the burner beside it; revert
 * works from the journaled JSON alone. */
static void test_cpu_full_load_revert_from_json(void **state)
{
    (void)state;
    char err[512];
    ask_cpu("f-00000000000000c2", 1, 0);
    assert_int_equal(fl_kind_cpu_stress.prepare(&fault, &ctx, err, sizeof(err)), 0);
    int rc = fl_kind_cpu_stress.apply(&fault, err, sizeof(err));
    if (rc != 0)
        fail_msg("apply: %s", err);
    assert_int_equal(fault.n_pids, 1);
    assert_non_null(strstr(fault.detail, "100%"));
    assert_true(relative_within(fault.pids, 1, &full_band));

    char *text = json_dumps(fault.undo, JSON_COMPACT);
    assert_non_null(text);
    json_error_t jerr;
    json_t *loaded = json_loads(text, 0, &jerr);
    free(text);
    assert_non_null(loaded);
    rc = fl_kind_cpu_stress.revert(loaded, err, sizeof(err));
    json_decref(loaded);
    assert_int_equal(rc, 0);
    assert_true(gone(fault.pids[0]));
    assert_int_equal(fl_kind_cpu_stress.revert(fault.undo, err, sizeof(err)), 0);
}

/* The process that applied dies by SIGKILL: its workers die with it. */
static void test_cpu_workers_die_with_agent(void **state)
{
    (void)state;
    char err[512];
    /* orphans come to us, so that we can see them go and reap them */
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    ask_cpu("f-00000000000000c3", 2, 30);
    assert_int_equal(fl_kind_cpu_stress.prepare(&fault, &ctx, err, sizeof(err)), 0);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t agent = fork();
    assert_true(agent >= 0);
    if (agent == 0) {
        close(fds[0]);
        int32_t msg[3] = {0, 0, 0};
        if (fl_kind_cpu_stress.apply(&fault, err, sizeof(err)) == 0) {
            msg[0] = (int32_t)fault.n_pids;
            msg[1] = fault.pids[0];
            msg[2] = fault.pids[1];
        }
        if (write(fds[1], msg, sizeof(msg)) != (ssize_t)sizeof(msg))
            _exit(1);
        for (;;)
            pause();
    }
    close(fds[1]);
    int32_t msg[3] = {0, 0, 0};
    ssize_t n = read(fds[0], msg, sizeof(msg));
    close(fds[0]);
    kill(agent, SIGKILL);
    assert_int_equal(waitpid(agent, NULL, 0), agent);
    assert_int_equal(n, (ssize_t)sizeof(msg));
    assert_int_equal(msg[0], 2);
    uint64_t deadline = fl_mono_ms() + 1000;
    while ((!gone(msg[1]) || !gone(msg[2])) && fl_mono_ms() < deadline)
        sleep_ms(5);
    bool both_gone = gone(msg[1]) && gone(msg[2]);
    if (!both_gone) {
        kill(msg[1], SIGKILL);
        kill(msg[2], SIGKILL);
    }
    waitpid(msg[1], NULL, 0);
    waitpid(msg[2], NULL, 0);
    prctl(PR_SET_CHILD_SUBREAPER, 0);
    assert_true(both_gone);
    /* the guardian's view: not the parent, workers already gone */
    assert_int_equal(fl_kind_cpu_stress.revert(fault.undo, err, sizeof(err)), 0);
}

static void test_cpu_refusals(void **state)
{
    (void)state;
    char err[512];
    guard.max_cpu_workers = 3;
    ask_cpu("f-00000000000000c4", 4, 50);
    assert_int_equal(fl_kind_cpu_stress.prepare(&fault, &ctx, err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "guardrail:"));
    assert_non_null(strstr(err, "max_cpu_workers (3)"));
    assert_null(fault.undo);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    guard.max_cpu_workers = (uint32_t)cores - 1;
    ask_cpu("f-00000000000000c4", 0, 50); /* one per core: one too many */
    assert_int_equal(fl_kind_cpu_stress.prepare(&fault, &ctx, err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "max_cpu_workers"));
    guard.max_cpu_workers = 8;
    ask_cpu("f-00000000000000c4", 1, 101);
    assert_int_equal(fl_kind_cpu_stress.prepare(&fault, &ctx, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "load_percent"));
    assert_null(fault.undo);
    /* prepared but never applied: revert has nothing to do */
    ask_cpu("f-00000000000000c4", 1, 10);
    assert_int_equal(fl_kind_cpu_stress.prepare(&fault, &ctx, err, sizeof(err)), 0);
    assert_int_equal(fl_kind_cpu_stress.revert(fault.undo, err, sizeof(err)), 0);
}

/* A journal naming someone else's process never gets it killed. */
static void test_revert_leaves_other_processes(void **state)
{
    (void)state;
    char err[512];
    pid_t other = fork();
    assert_true(other >= 0);
    if (other == 0) {
        for (;;)
            pause();
    }
    uint64_t start = fl_proc_start_time(other);
    assert_true(start > 0);
    /* the right pid and start time, but not a worker: refused */
    json_t *undo = json_pack("{s:s, s:s, s:[{s:i, s:I}]}", "kind", "cpu_stress", "id", "f-x",
                             "workers", "pid", (int)other, "start", (json_int_t)start);
    int rc = fl_kind_cpu_stress.revert(undo, err, sizeof(err));
    json_decref(undo);
    /* another start time: a reused pid, so the worker is gone */
    undo = json_pack("{s:s, s:s, s:[{s:i, s:I}]}", "kind", "memory_stress", "id", "f-x", "workers",
                     "pid", (int)other, "start", (json_int_t)start + 1);
    int rc2 = fl_kind_memory_stress.revert(undo, err, sizeof(err));
    json_decref(undo);
    /* nonsense */
    undo = json_pack("{s:s, s:s, s:[{s:i, s:I}]}", "kind", "cpu_stress", "id", "f-x", "workers",
                     "pid", 1, "start", (json_int_t)1);
    int rc3 = fl_kind_cpu_stress.revert(undo, err, sizeof(err));
    json_decref(undo);
    undo = json_pack("{s:s, s:s, s:i}", "kind", "cpu_stress", "id", "f-x", "workers", 7);
    int rc4 = fl_kind_cpu_stress.revert(undo, err, sizeof(err));
    json_decref(undo);
    bool alive = !gone(other);
    kill(other, SIGKILL);
    waitpid(other, NULL, 0);
    assert_int_equal(rc, -EPERM);
    assert_int_equal(rc2, 0);
    assert_int_equal(rc3, -EINVAL);
    assert_int_equal(rc4, -EINVAL);
    assert_true(alive);
}

static void test_memory_held_and_freed(void **state)
{
    (void)state;
    char err[512], name[32];
    ask_mem("f-00000000000000d1", 256 * MiB);
    assert_int_equal(fl_kind_memory_stress.prepare(&fault, &ctx, err, sizeof(err)), 0);
    assert_string_equal(json_string_value(json_object_get(fault.undo, "kind")), "memory_stress");
    int rc = fl_kind_memory_stress.apply(&fault, err, sizeof(err));
    if (rc != 0)
        fail_msg("apply: %s", err);
    assert_int_equal(fault.n_pids, 1);
    pid_t pid = fault.pids[0];
    comm_of(pid, name, sizeof(name));
    assert_string_equal(name, "fl-mem-stress");
    long rss = status_kib(pid, "VmRSS");
    if (rss < 250 * 1024)
        fail_msg("VmRSS %ld kB, want at least 250 MiB", rss);
    char path[64], adj[16] = "";
    snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", (int)pid);
    FILE *f = fopen(path, "re");
    assert_non_null(f);
    assert_non_null(fgets(adj, sizeof(adj), f));
    fclose(f);
    assert_int_equal(strtol(adj, NULL, 10), 1000);
    assert_non_null(strstr(fault.detail, "256MiB"));
    assert_int_equal(fl_kind_memory_stress.revert(fault.undo, err, sizeof(err)), 0);
    assert_true(gone(pid));
    assert_int_equal(fl_kind_memory_stress.revert(fault.undo, err, sizeof(err)), 0);
}

static uint64_t mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "re");
    assert_non_null(f);
    char line[256];
    unsigned long long kib = 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1)
            break;
    fclose(f);
    return (uint64_t)kib * 1024;
}

static void test_memory_refusals(void **state)
{
    (void)state;
    char err[512];
    uint64_t avail = mem_available();
    assert_true(avail > guard.memory_reserve_bytes);
    ask_mem("f-00000000000000d2", avail - guard.memory_reserve_bytes + 64 * MiB);
    assert_int_equal(fl_kind_memory_stress.prepare(&fault, &ctx, err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "guardrail:"));
    assert_non_null(strstr(err, "memory_reserve (256MiB)"));
    assert_non_null(strstr(err, "at most"));
    assert_null(fault.undo);
    guard.memory_reserve_bytes = avail + 1024 * MiB;
    ask_mem("f-00000000000000d2", MiB);
    assert_int_equal(fl_kind_memory_stress.prepare(&fault, &ctx, err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "at most 0B can be taken"));
    ask_mem("f-00000000000000d2", 0);
    assert_int_equal(fl_kind_memory_stress.prepare(&fault, &ctx, err, sizeof(err)), -EINVAL);
    assert_null(fault.undo);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cpu_half_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cpu_full_load_revert_from_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cpu_workers_die_with_agent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cpu_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revert_leaves_other_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_held_and_freed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_refusals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
