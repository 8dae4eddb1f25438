/* Guardrails against faults accepted but not yet applied (issue 11, items 4
 * and 5). The real agent on loopback, with a small tmpfs as its only fill
 * path and a low memory budget in its config; two (or three) controllers,
 * each on its own connection, send their inject requests back to back, so
 * that every request is prepared before any is applied:
 *   - disk_fill by bytes: the second would pass max_fill only together with
 *     the first; it is refused, naming max_fill, its value and what is
 *     already reserved;
 *   - three disk_fill fill=90%: the file system never goes past max_fill;
 *   - memory_stress: the second would push MemAvailable below
 *     memory_reserve together with the first; refused, naming
 *     memory_reserve, its value and what is already reserved;
 *   - once a fault has ended, what it held is released: the same disk_fill
 *     or pause_process request is accepted again;
 *   - max_faults: the fault over the cap is refused with ERROR_BUSY naming
 *     the limit and the key; one ending makes room;
 *   - two pause_process faults on one process: the second is refused while
 *     the first holds the process, and accepted once it has ended.
 * Needs root (mount). */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/key.h"
#include "common/pbutil.h"
#include "common/units.h"
#include "tests/support/agent_proc.h"
#include "tests/support/proc.h"
#include "tests/support/raw_peer.h"

#define MiB (1024ull * 1024)
#define FS_MIB 100
#define MEM_ASK (256 * MiB)

static char dir[] = "/tmp/fl-guard-race-test.XXXXXX";
static char mnt[128];
static bool mounted;
static char key_path[300];
static struct fl_key key;
static struct test_agent agent;
static uint64_t mem_reserve;

static char *arg(const char *a)
{
    return (char *)(uintptr_t)a;
}

static uint64_t mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "re");
    char line[256];
    unsigned long long kib = 0;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return (uint64_t)kib * 1024;
}

/* memory_reserve for a budget of 1.5 requests: one fits, two do not, with
 * room for the host's own use to move by half a request either way between
 * now and the requests. Set just before the agent that uses it starts. */
static int set_mem_budget(void)
{
    uint64_t avail = mem_available();
    if (avail < 2 * MEM_ASK + 256 * MiB) {
        fprintf(stderr, "guardrail_race_test needs MemAvailable over 768 MiB\n");
        return -1;
    }
    mem_reserve = avail - MEM_ASK - MEM_ASK / 2;
    return 0;
}

static int stop_agent(void)
{
    int st = 0;
    if (agent.pid > 0)
        st = proc_stop(agent.pid, SIGTERM, 15000);
    agent.pid = 0;
    if (st != 0)
        test_agent_dump_log(&agent);
    return st;
}

/* An agent with the guardrails of this test, plus extra config lines. */
static int start_agent(const char *name, const char *extra)
{
    char cfg[400];
    snprintf(cfg, sizeof(cfg), "%s/%s.yaml", dir, name);
    FILE *f = fopen(cfg, "w");
    if (f == NULL)
        return -1;
    fprintf(f,
            "guardrails:\n  fill_paths: [%s]\n  max_fill: 95%%\n  fill_reserve: 1MiB\n"
            "  memory_reserve: %lluMiB\n%s",
            mnt, (unsigned long long)(mem_reserve / MiB), extra ? extra : "");
    if (fclose(f) != 0)
        return -1;
    const char *const args[] = {"--config", cfg, NULL};
    int rc = test_agent_start(&agent, FL_AGENT_BIN, key_path, dir, name, NULL, args);
    if (rc != 0)
        test_agent_dump_log(&agent);
    return rc;
}

static int group_setup(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        fprintf(stderr, "guardrail_race_test needs root: it mounts a tmpfs\n");
        return -1;
    }
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
    if (mkdir(mnt, 0700) != 0 ||
        mount("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=100m,mode=0700") != 0)
        return -1;
    mounted = true;
    snprintf(key_path, sizeof(key_path), "%s/faultline.key", dir);
    char out[512], err[256];
    char *kg[] = {arg(FL_CTL_BIN), arg("keygen"), key_path, NULL};
    if (proc_run(kg, out, sizeof(out), 5000) != 0 || fl_key_load(key_path, &key, err, sizeof(err)))
        return -1;
    return set_mem_budget();
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = stop_agent() == 0 ? 0 : -1;
    if (mounted && umount2(mnt, 0) != 0)
        umount2(mnt, MNT_DETACH);
    char *rm[] = {arg("/bin/rm"), arg("-rf"), dir, NULL};
    char out[256];
    return proc_run(rm, out, sizeof(out), 10000) == 0 ? rc : -1;
}

static pid_t sleeper;

static int teardown(void **state)
{
    (void)state;
    int rc = stop_agent() == 0 ? 0 : -1;
    if (sleeper > 0) {
        kill(sleeper, SIGKILL);
        waitpid(sleeper, NULL, 0);
        sleeper = 0;
    }
    return rc;
}

static void connect_peer(struct raw_peer *p)
{
    assert_int_equal(raw_connect(p, agent.port), 0);
    assert_int_equal(raw_handshake(p, &key), 0);
}

static void send_env(struct raw_peer *p, Faultline__Envelope *env)
{
    uint8_t buf[4096];
    size_t n = raw_seal(p, env, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(raw_send_bytes(p, buf, n), 0);
}

/* Sends an inject of spec, detached, without waiting for the reply; 60 s
 * unless spec names a duration. */
static void send_inject(struct raw_peer *p, Faultline__FaultSpec *spec)
{
    if (spec->duration_ms == 0)
        spec->duration_ms = 60000;
    Faultline__InjectRequest ir = FAULTLINE__INJECT_REQUEST__INIT;
    ir.spec = spec;
    ir.detached = 1;
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = 1;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_INJECT;
    env.inject = &ir;
    send_env(p, &env);
}

static void disk_spec(Faultline__FaultSpec *spec, Faultline__DiskFill *d, unsigned percent,
                      uint64_t bytes)
{
    faultline__fault_spec__init(spec);
    faultline__disk_fill__init(d);
    d->path = mnt;
    if (percent) {
        d->amount_case = FAULTLINE__DISK_FILL__AMOUNT_PERCENT;
        d->percent = percent;
    } else {
        d->amount_case = FAULTLINE__DISK_FILL__AMOUNT_BYTES;
        d->bytes = bytes;
    }
    spec->name = arg("fill");
    spec->kind_case = FAULTLINE__FAULT_SPEC__KIND_DISK_FILL;
    spec->disk_fill = d;
}

static void mem_spec(Faultline__FaultSpec *spec, Faultline__MemoryStress *m, uint64_t bytes)
{
    faultline__fault_spec__init(spec);
    faultline__memory_stress__init(m);
    m->bytes = bytes;
    spec->name = arg("mem");
    spec->kind_case = FAULTLINE__FAULT_SPEC__KIND_MEMORY_STRESS;
    spec->memory_stress = m;
}

static void pause_spec(Faultline__FaultSpec *spec, Faultline__PauseProcess *pp,
                       Faultline__ProcessSelector *sel, pid_t pid)
{
    faultline__fault_spec__init(spec);
    faultline__pause_process__init(pp);
    faultline__process_selector__init(sel);
    sel->by_case = FAULTLINE__PROCESS_SELECTOR__BY_PID;
    sel->pid = pid;
    pp->target = sel;
    spec->name = arg("pause");
    spec->kind_case = FAULTLINE__FAULT_SPEC__KIND_PAUSE_PROCESS;
    spec->pause_process = pp;
}

/* The replies of n peers that each sent one inject: how many were
 * injected; ids into ids[] (for those), error of the last refusal. */
struct outcome {
    size_t injected, refused;
    char ids[4][32];
    Faultline__ErrorCode code;
    char error[1024];
};

static void collect(struct raw_peer *peers, size_t n, struct outcome *o)
{
    memset(o, 0, sizeof(*o));
    for (size_t i = 0; i < n; i++) {
        Faultline__Envelope *reply = raw_recv_envelope(&peers[i], 90000);
        assert_non_null(reply);
        if (reply->msg_case == FAULTLINE__ENVELOPE__MSG_INJECTED) {
            snprintf(o->ids[o->injected++], sizeof(o->ids[0]), "%s", reply->injected->id);
        } else {
            assert_int_equal(reply->msg_case, FAULTLINE__ENVELOPE__MSG_ERROR);
            o->refused++;
            o->code = reply->error->code;
            snprintf(o->error, sizeof(o->error), "%s", reply->error->message);
            fprintf(stderr, "refused: %s\n", o->error);
        }
        faultline__envelope__free_unpacked(reply, NULL);
    }
}

/* Reverts every fault on the agent; waits for the reply. */
static void revert_all(void)
{
    struct raw_peer p;
    connect_peer(&p);
    Faultline__RevertRequest rr = FAULTLINE__REVERT_REQUEST__INIT;
    rr.all = 1;
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = 9;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_REVERT;
    env.revert = &rr;
    send_env(&p, &env);
    Faultline__Envelope *reply = raw_recv_envelope(&p, 60000);
    assert_non_null(reply);
    assert_int_equal(reply->msg_case, FAULTLINE__ENVELOPE__MSG_REVERTED);
    faultline__envelope__free_unpacked(reply, NULL);
    raw_close(&p);
}

static void revert_one(const char *id)
{
    struct raw_peer p;
    connect_peer(&p);
    Faultline__RevertRequest rr = FAULTLINE__REVERT_REQUEST__INIT;
    rr.fault_id = arg(id);
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = 8;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_REVERT;
    env.revert = &rr;
    send_env(&p, &env);
    Faultline__Envelope *reply = raw_recv_envelope(&p, 60000);
    assert_non_null(reply);
    assert_int_equal(reply->msg_case, FAULTLINE__ENVELOPE__MSG_REVERTED);
    faultline__envelope__free_unpacked(reply, NULL);
    raw_close(&p);
}

/* How many faults the agent lists as active (its active list). */
static size_t active_count(void)
{
    struct raw_peer p;
    connect_peer(&p);
    Faultline__ListRequest lr = FAULTLINE__LIST_REQUEST__INIT;
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = 7;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_LIST;
    env.list = &lr;
    send_env(&p, &env);
    Faultline__Envelope *reply = raw_recv_envelope(&p, 10000);
    assert_non_null(reply);
    assert_int_equal(reply->msg_case, FAULTLINE__ENVELOPE__MSG_FAULTS);
    size_t n = reply->faults->n_faults;
    faultline__envelope__free_unpacked(reply, NULL);
    raw_close(&p);
    return n;
}

/* One inject on its own connection; its outcome. */
static void inject_one(Faultline__FaultSpec *spec, struct outcome *o)
{
    struct raw_peer p;
    connect_peer(&p);
    send_inject(&p, spec);
    collect(&p, 1, o);
    raw_close(&p);
}

static double used_percent(void)
{
    struct statvfs v;
    assert_int_equal(statvfs(mnt, &v), 0);
    double used = (double)(v.f_blocks - v.f_bfree);
    return 100.0 * used / (used + (double)v.f_bavail);
}

/* n controllers, each connected and authenticated before any sends, then
 * each sends its request at once: all are prepared before any is applied. */
static void race(Faultline__FaultSpec *const *specs, size_t n, struct outcome *o)
{
    struct raw_peer peers[4];
    assert_true(n <= 4);
    for (size_t i = 0; i < n; i++)
        connect_peer(&peers[i]);
    for (size_t i = 0; i < n; i++)
        send_inject(&peers[i], specs[i]);
    collect(peers, n, o);
    for (size_t i = 0; i < n; i++)
        raw_close(&peers[i]);
}

static void disk_bytes_race(void **state)
{
    (void)state;
    assert_int_equal(start_agent("disk-bytes", NULL), 0);
    Faultline__FaultSpec s1, s2;
    Faultline__DiskFill d1, d2;
    disk_spec(&s1, &d1, 0, 60 * MiB);
    disk_spec(&s2, &d2, 0, 60 * MiB);
    Faultline__FaultSpec *specs[] = {&s1, &s2};
    struct outcome o;
    race(specs, 2, &o);
    double used = used_percent();
    fprintf(stderr, "two 60MiB fills of a 100MiB tmpfs: %zu injected, now %.1f%% used\n",
            o.injected, used);
    assert_int_equal(o.injected, 1);
    assert_int_equal(o.code, FAULTLINE__ERROR_CODE__ERROR_GUARDRAIL);
    assert_non_null(strstr(o.error, "max_fill (95%)"));
    assert_non_null(strstr(o.error, "60MiB reserved"));
    assert_true(used <= 95.0);

    /* the reservation ends with the fault: the same request fits again */
    revert_one(o.ids[0]);
    struct outcome again;
    inject_one(&s2, &again);
    assert_int_equal(again.injected, 1);
    revert_all();
    assert_true(used_percent() < 5.0);
}

static void disk_percent_race(void **state)
{
    (void)state;
    assert_int_equal(start_agent("disk-percent", NULL), 0);
    Faultline__FaultSpec s[3];
    Faultline__DiskFill d[3];
    for (int i = 0; i < 3; i++)
        disk_spec(&s[i], &d[i], 90, 0);
    Faultline__FaultSpec *specs[] = {&s[0], &s[1], &s[2]};
    struct outcome o;
    race(specs, 3, &o);
    double used = used_percent();
    fprintf(stderr, "three fill=90%% of a 100MiB tmpfs: %zu injected, now %.1f%% used\n",
            o.injected, used);
    assert_true(used <= 95.0);
    assert_int_equal(o.injected, 1);
    assert_non_null(strstr(o.error, "reserved"));
    revert_all();
}

static void memory_race(void **state)
{
    (void)state;
    assert_int_equal(set_mem_budget(), 0);
    assert_int_equal(start_agent("memory", NULL), 0);
    Faultline__FaultSpec s1, s2;
    Faultline__MemoryStress m1, m2;
    mem_spec(&s1, &m1, MEM_ASK);
    mem_spec(&s2, &m2, MEM_ASK);
    Faultline__FaultSpec *specs[] = {&s1, &s2};
    struct outcome o;
    race(specs, 2, &o);
    fprintf(stderr, "two 256MiB memory_stress with a budget of 384MiB: %zu injected\n", o.injected);
    assert_int_equal(o.injected, 1);
    assert_int_equal(o.code, FAULTLINE__ERROR_CODE__ERROR_GUARDRAIL);
    char want[64], size[32];
    fl_bytes_text(mem_reserve / MiB * MiB, size, sizeof(size));
    snprintf(want, sizeof(want), "memory_reserve (%s)", size);
    assert_non_null(strstr(o.error, want));
    assert_non_null(strstr(o.error, "256MiB reserved"));
    /* (no second try after the revert: the host's own use moves by more
     * than the margin a budget of 1.5 requests leaves, over seconds) */
    revert_all();
}

static void max_faults_cap(void **state)
{
    (void)state;
    assert_int_equal(start_agent("max-faults", "  max_faults: 2\n"), 0);
    Faultline__FaultSpec s;
    Faultline__DiskFill d;
    disk_spec(&s, &d, 0, 1 * MiB);
    Faultline__FaultSpec *specs[] = {&s, &s, &s};
    struct outcome o;
    race(specs, 3, &o);
    assert_int_equal(o.injected, 2);
    assert_int_equal(o.code, FAULTLINE__ERROR_CODE__ERROR_BUSY);
    assert_non_null(strstr(o.error, "max_faults"));
    assert_non_null(strstr(o.error, "2"));
    /* one ends: room for one more */
    revert_one(o.ids[0]);
    struct outcome again;
    inject_one(&s, &again);
    assert_int_equal(again.injected, 1);
    revert_all();
}

/* A process the test owns, to pause. */
static pid_t start_sleeper(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sleep", "sleep", "120", (char *)NULL);
        _exit(127);
    }
    assert_true(pid > 0);
    sleeper = pid;
    sleep_ms(50);
    return pid;
}

static void pause_twice(void **state)
{
    (void)state;
    assert_int_equal(start_agent("pause", NULL), 0);
    pid_t pid = start_sleeper();
    Faultline__FaultSpec s1, s2;
    Faultline__PauseProcess p1, p2;
    Faultline__ProcessSelector sel1, sel2;
    pause_spec(&s1, &p1, &sel1, pid);
    pause_spec(&s2, &p2, &sel2, pid);
    Faultline__FaultSpec *specs[] = {&s1, &s2};
    struct outcome o;
    race(specs, 2, &o);
    assert_int_equal(o.injected, 1);
    assert_int_equal(o.code, FAULTLINE__ERROR_CODE__ERROR_BUSY);
    assert_non_null(strstr(o.error, o.ids[0]));
    assert_int_equal(proc_wait_state(pid, 'T', 1000), 'T');
    /* the first ends: the process runs, and may be paused again */
    revert_one(o.ids[0]);
    assert_true(proc_state_of(pid) != 'T');
    struct outcome again;
    inject_one(&s2, &again);
    assert_int_equal(again.injected, 1);
    assert_int_equal(proc_wait_state(pid, 'T', 1000), 'T');
    revert_all();
    assert_true(proc_state_of(pid) != 'T');
}

/* The same, the first ending by its duration rather than a request: the
 * process stays stopped until then, and runs after. */
static void pause_twice_expiry(void **state)
{
    (void)state;
    assert_int_equal(start_agent("pause-expiry", NULL), 0);
    pid_t pid = start_sleeper();
    Faultline__FaultSpec s1, s2;
    Faultline__PauseProcess p1, p2;
    Faultline__ProcessSelector sel1, sel2;
    pause_spec(&s1, &p1, &sel1, pid);
    pause_spec(&s2, &p2, &sel2, pid);
    s1.duration_ms = 1500;
    struct outcome first, second;
    inject_one(&s1, &first);
    assert_int_equal(first.injected, 1);
    inject_one(&s2, &second);
    assert_int_equal(second.injected, 0);
    assert_int_equal(second.code, FAULTLINE__ERROR_CODE__ERROR_BUSY);
    assert_non_null(strstr(second.error, first.ids[0]));
    assert_int_equal(proc_wait_state(pid, 'T', 1000), 'T');
    /* the first expires: the process runs, and the second is accepted */
    for (int i = 0; i < 300 && active_count() > 0; i++)
        sleep_ms(50);
    assert_int_equal(active_count(), 0);
    assert_true(proc_state_of(pid) != 'T');
    inject_one(&s2, &second);
    assert_int_equal(second.injected, 1);
    assert_int_equal(proc_wait_state(pid, 'T', 1000), 'T');
    revert_all();
    assert_true(proc_state_of(pid) != 'T');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(disk_bytes_race, teardown),
        cmocka_unit_test_teardown(disk_percent_race, teardown),
        cmocka_unit_test_teardown(memory_race, teardown),
        cmocka_unit_test_teardown(max_faults_cap, teardown),
        cmocka_unit_test_teardown(pause_twice, teardown),
        cmocka_unit_test_teardown(pause_twice_expiry, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
