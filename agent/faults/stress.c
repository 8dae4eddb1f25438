/* cpu_stress and memory_stress: worker processes that burn CPU or hold
 * memory until they are killed.
 *
 * Workers are forked by apply, which runs on a libuv thread-pool thread: in
 * the child of a fork from a threaded process only async-signal-safe calls
 * are allowed (no malloc, no stdio, no locks), so everything a worker needs
 * is worked out before the fork. Each worker first asks for SIGKILL when its
 * parent dies (PR_SET_PDEATHSIG) and checks that the parent is still the
 * process that forked it, so workers die with the agent even on kill -9.
 * (The kernel sends that signal when the forking *thread* exits; libuv's
 * pool threads live as long as the process.) It then names itself
 * (fl-cpu-stress, fl-mem-stress), puts signal dispositions and the mask back
 * to their defaults (the pool thread blocks every signal, and libuv's
 * handlers would write into the agent's own pipes), points stdin, stdout and
 * stderr at /dev/null and closes every other descriptor it inherited (a
 * worker holding the agent's sockets open would keep connections alive that
 * the agent closed). Then it reports ready over a pipe, so that when apply
 * returns every worker is named, tied to the agent and working.
 *
 * cpu_stress workers spin on clock_gettime for load% of every 100 ms and
 * sleep the rest. The memory_stress worker offers itself to the OOM killer
 * first (oom_score_adj 1000: it is the hog, not the host's services), maps
 * anonymous memory, writes to every page so it is really resident, and only
 * then reports ready; apply waits for that (60 s at most), so "applied"
 * means the memory is taken.
 * Until then the fault's bytes are held in the reservation ledger
 * (agent/guardrails.h) and count against memory_reserve as if taken, so
 * requests that arrive together cannot together pass it.
 *
 * The undo object lists the workers as {"pid", "start"}, start being the
 * process start time (fl_proc_start_time), recorded right after each fork.
 * revert kills a worker only when both still match and the process still
 * carries the kind's worker name, so a reused pid or a corrupted journal never
 * makes it kill anything else. It reaps the workers it forked, and when it is
 * not their parent (the guardian, a restarted agent) it waits until they are
 * gone or zombies (whose memory and CPU are already released). A worker that
 * is already gone is success. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/fault.h"
#include "agent/guardrails.h"
#include "agent/procstat.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/units.h"

#define CPU_WORKER_NAME "fl-cpu-stress"
#define MEM_WORKER_NAME "fl-mem-stress"
#define PERIOD_NS 100000000L       /* cpu_stress duty cycle */
#define CPU_READY_TIMEOUT_MS 5000  /* forked workers report ready */
#define MEM_READY_TIMEOUT_MS 60000 /* the memory worker has touched every page */
#define REAP_TIMEOUT_MS 5000       /* a SIGKILLed worker is gone */
#define WORKER_FD 3                /* the ready pipe, in a worker */

/* What a worker's first steps need, worked out before the fork. */
struct worker_env {
    pid_t parent;
    int ready_fd;
    int max_fd;
    const char *name;
};

/* The memory worker's one message to its parent. */
struct mem_ready {
    int32_t ok;
    int32_t err;
};

static int max_fd_guess(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 65536)
        return 65536;
    return (int)rl.rlim_cur;
}

/* In the worker, right after fork: async-signal-safe calls only. Leaves the
 * ready pipe on WORKER_FD and nothing else open but stdio on /dev/null. */
static void worker_setup(const struct worker_env *env)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != env->parent)
        _exit(0);
    prctl(PR_SET_NAME, env->name);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &sa, NULL); /* glibc's own signals refuse: fine */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    int keep = fcntl(env->ready_fd, F_DUPFD, WORKER_FD);
    if (keep < 0)
        _exit(127);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
    }
    if (keep != WORKER_FD && dup2(keep, WORKER_FD) != WORKER_FD)
        _exit(127);
    if (close_range(WORKER_FD + 1, ~0u, 0) != 0)
        for (int fd = WORKER_FD + 1; fd < env->max_fd; fd++)
            close(fd);
}

static long elapsed_ns(const struct timespec *from, const struct timespec *to)
{
    return (long)(to->tv_sec - from->tv_sec) * 1000000000L + (to->tv_nsec - from->tv_nsec);
}

static _Noreturn void cpu_worker(const struct worker_env *env, unsigned load)
{
    worker_setup(env);
    char ready = 'r';
    if (write(WORKER_FD, &ready, 1) != 1)
        _exit(1);
    close(WORKER_FD);
    long busy = PERIOD_NS / 100 * (long)load;
    for (;;) {
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        do {
            clock_gettime(CLOCK_MONOTONIC, &now);
        } while (elapsed_ns(&start, &now) < busy);
        long rest = PERIOD_NS - elapsed_ns(&start, &now);
        if (rest > 0) {
            struct timespec ts = {0, rest};
            nanosleep(&ts, NULL);
        }
    }
}

static _Noreturn void mem_worker(const struct worker_env *env, size_t bytes, size_t page)
{
    worker_setup(env);
    int oom = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (oom >= 0) {
        if (write(oom, "1000", 4) != 4) {
            /* the hog is still the biggest process; go on */
        }
        close(oom);
    }
    struct mem_ready msg = {0, 0};
    volatile unsigned char *p =
        mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if ((void *)p == MAP_FAILED) {
        msg.err = errno;
        ssize_t w = write(WORKER_FD, &msg, sizeof(msg));
        _exit(w == (ssize_t)sizeof(msg) ? 1 : 2);
    }
    for (size_t off = 0; off < bytes; off += page)
        p[off] = 0x5a;
    msg.ok = 1;
    if (write(WORKER_FD, &msg, sizeof(msg)) != (ssize_t)sizeof(msg))
        _exit(1);
    close(WORKER_FD);
    for (;;)
        pause();
}

/* Reads from fd until len bytes arrived, EOF, or the deadline. Returns the
 * count read (short on EOF) or -ETIMEDOUT / a negative errno. */
static ssize_t read_until(int fd, void *buf, size_t len, uint64_t deadline_ms)
{
    size_t got = 0;
    while (got < len) {
        uint64_t now = fl_mono_ms();
        if (now >= deadline_ms)
            return -ETIMEDOUT;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)(deadline_ms - now));
        if (pr < 0 && errno != EINTR)
            return -errno;
        if (pr <= 0)
            continue;
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -errno;
        }
        got += (size_t)n;
    }
    return (ssize_t)got;
}

/* Our own children, on a failed apply. */
static void kill_children(const pid_t *pids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        kill(pids[i], SIGKILL);
    for (size_t i = 0; i < n; i++)
        while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
            ;
}

static int record_worker(json_t *workers, pid_t pid)
{
    uint64_t start = fl_proc_start_time(pid);
    if (start == 0)
        return -ESRCH;
    json_t *w = json_pack("{s:i, s:I}", "pid", (int)pid, "start", (json_int_t)start);
    if (w == NULL || json_array_append_new(workers, w) != 0)
        return -ENOMEM;
    return 0;
}

static void report_pids(struct fl_fault *f, const pid_t *pids, size_t n)
{
    size_t cap = sizeof(f->pids) / sizeof(f->pids[0]);
    f->n_pids = n < cap ? n : cap;
    for (size_t i = 0; i < f->n_pids; i++)
        f->pids[i] = pids[i];
}

/* --- cpu_stress ------------------------------------------------------------ */

static int cpu_prepare(struct fl_fault *f, const struct fl_agent_ctx *ctx, char *err, size_t errlen)
{
    const Faultline__FaultSpec *spec = f->spec;
    if (spec == NULL || spec->kind_case != FAULTLINE__FAULT_SPEC__KIND_CPU_STRESS ||
        spec->cpu_stress == NULL) {
        snprintf(err, errlen, "cpu_stress: the request holds no cpu_stress parameters");
        return -EINVAL;
    }
    uint32_t workers = spec->cpu_stress->workers;
    if (workers == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        workers = cores > 0 ? (uint32_t)cores : 1;
    }
    if (workers > ctx->guard->max_cpu_workers) {
        snprintf(err, errlen,
                 "guardrail: %u cpu_stress workers is more than max_cpu_workers (%u) in the "
                 "agent's config; ask for at most %u",
                 workers, ctx->guard->max_cpu_workers, ctx->guard->max_cpu_workers);
        return -EPERM;
    }
    uint32_t load = spec->cpu_stress->load_percent ? spec->cpu_stress->load_percent : 100;
    if (load > 100) {
        snprintf(err, errlen, "cpu_stress: load_percent must be 1 to 100 (0 means 100), not %u",
                 load);
        return -EINVAL;
    }
    json_t *undo =
        json_pack("{s:s, s:s, s:I, s:I, s:[]}", "kind", "cpu_stress", "id", f->id, "count",
                  (json_int_t)workers, "load_percent", (json_int_t)load, "workers");
    if (undo == NULL) {
        snprintf(err, errlen, "cpu_stress: out of memory");
        return -ENOMEM;
    }
    json_decref(f->undo);
    f->undo = undo;
    return 0;
}

static int cpu_apply(struct fl_fault *f, char *err, size_t errlen)
{
    json_t *workers = json_object_get(f->undo, "workers");
    json_int_t count = json_integer_value(json_object_get(f->undo, "count"));
    json_int_t load = json_integer_value(json_object_get(f->undo, "load_percent"));
    if (!json_is_array(workers) || count <= 0 || count > 1000000 || load < 1 || load > 100) {
        snprintf(err, errlen, "cpu_stress: fault %s was not prepared", f->id);
        return -EINVAL;
    }
    pid_t *pids = calloc((size_t)count, sizeof(*pids));
    int fds[2];
    if (pids == NULL || pipe2(fds, O_CLOEXEC) != 0) {
        int rc = pids == NULL ? -ENOMEM : -errno;
        free(pids);
        snprintf(err, errlen, "cpu_stress: %s", fl_strerror(rc));
        return rc;
    }
    struct worker_env env = {getpid(), fds[1], max_fd_guess(), CPU_WORKER_NAME};
    size_t n = 0;
    int rc = 0;
    const char *what = "starting a worker";
    while (n < (size_t)count) {
        pid_t pid = fork();
        if (pid == 0)
            cpu_worker(&env, (unsigned)load);
        if (pid < 0) {
            rc = -errno;
            break;
        }
        pids[n++] = pid;
        rc = record_worker(workers, pid);
        if (rc < 0) {
            what = "recording a worker";
            break;
        }
    }
    close(fds[1]);
    if (rc == 0) {
        what = "waiting for the workers";
        uint64_t deadline = fl_mono_ms() + CPU_READY_TIMEOUT_MS;
        size_t ready = 0;
        while (ready < n && rc == 0) {
            char buf[64];
            size_t want = n - ready < sizeof(buf) ? n - ready : sizeof(buf);
            ssize_t r = read_until(fds[0], buf, want, deadline);
            if (r < 0)
                rc = (int)r;
            else if ((size_t)r < want)
                rc = -ECHILD; /* a worker died before it was ready */
            else
                ready += (size_t)r;
        }
    }
    close(fds[0]);
    if (rc < 0) {
        kill_children(pids, n);
        json_array_clear(workers);
        free(pids);
        snprintf(err, errlen, "cpu_stress: %s: %s; nothing left running", what, fl_strerror(rc));
        return rc;
    }
    report_pids(f, pids, n);
    int w = snprintf(f->detail, sizeof(f->detail), "%zu %s worker%s at %d%% of a core each: pid", n,
                     CPU_WORKER_NAME, n == 1 ? "" : "s", (int)load);
    for (size_t i = 0; i < n && w > 0 && (size_t)w < sizeof(f->detail); i++) {
        int m = snprintf(f->detail + w, sizeof(f->detail) - (size_t)w, " %d", (int)pids[i]);
        if (m < 0)
            break;
        w += m;
    }
    free(pids);
    return 0;
}

/* --- memory_stress --------------------------------------------------------- */

/* MemAvailable from /proc/meminfo, in bytes. */
static int mem_available(uint64_t *out)
{
    FILE *f = fopen("/proc/meminfo", "re");
    if (f == NULL)
        return -errno;
    char line[256];
    int rc = -ENOENT;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long long kib;
        if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1) {
            *out = (uint64_t)kib * 1024;
            rc = 0;
            break;
        }
    }
    fclose(f);
    return rc;
}

static int mem_prepare(struct fl_fault *f, const struct fl_agent_ctx *ctx, char *err, size_t errlen)
{
    const Faultline__FaultSpec *spec = f->spec;
    if (spec == NULL || spec->kind_case != FAULTLINE__FAULT_SPEC__KIND_MEMORY_STRESS ||
        spec->memory_stress == NULL) {
        snprintf(err, errlen, "memory_stress: the request holds no memory_stress parameters");
        return -EINVAL;
    }
    uint64_t bytes = spec->memory_stress->bytes;
    if (bytes == 0) {
        snprintf(err, errlen, "memory_stress needs bytes, more than 0 (size: 512MiB)");
        return -EINVAL;
    }
    uint64_t avail = 0;
    int rc = mem_available(&avail);
    if (rc < 0) {
        snprintf(err, errlen, "memory_stress: no MemAvailable in /proc/meminfo: %s",
                 fl_strerror(rc));
        return rc;
    }
    uint64_t reserve = ctx->guard->memory_reserve_bytes;
    /* memory_stress faults accepted but not yet resident count as taken */
    size_t n_pending = 0;
    uint64_t pending = f->ledger ? fl_ledger_memory_pending(f->ledger, &n_pending) : 0;
    uint64_t left = avail > pending ? avail - pending : 0;
    if (left <= reserve || bytes > left - reserve) {
        char a[32], b[32], c[32], d[32], e[32], resv[160] = "";
        fl_bytes_text(bytes, a, sizeof(a));
        fl_bytes_text(avail, b, sizeof(b));
        fl_bytes_text(reserve, c, sizeof(c));
        fl_bytes_text(left > reserve ? left - reserve : 0, d, sizeof(d));
        if (pending > 0)
            snprintf(resv, sizeof(resv),
                     ", less %s reserved by %zu memory_stress fault%s not yet applied",
                     fl_bytes_text(pending, e, sizeof(e)), n_pending, n_pending == 1 ? "" : "s");
        snprintf(err, errlen,
                 "guardrail: memory_stress of %s would push MemAvailable (%s%s) below "
                 "memory_reserve (%s) in the agent's config; at most %s can be taken now",
                 a, b, resv, c, d);
        return -EPERM;
    }
    if (bytes > (uint64_t)INT64_MAX || bytes > SIZE_MAX) {
        snprintf(err, errlen, "memory_stress: %llu bytes is too many", (unsigned long long)bytes);
        return -ERANGE;
    }
    json_t *undo = json_pack("{s:s, s:s, s:I, s:[]}", "kind", "memory_stress", "id", f->id, "bytes",
                             (json_int_t)bytes, "workers");
    if (undo == NULL) {
        snprintf(err, errlen, "memory_stress: out of memory");
        return -ENOMEM;
    }
    if (f->ledger && fl_ledger_hold_memory(f->ledger, f->id, bytes) < 0) {
        json_decref(undo);
        snprintf(err, errlen, "memory_stress: out of memory");
        return -ENOMEM;
    }
    json_decref(f->undo);
    f->undo = undo;
    return 0;
}

static int mem_apply(struct fl_fault *f, char *err, size_t errlen)
{
    json_t *workers = json_object_get(f->undo, "workers");
    json_int_t bytes = json_integer_value(json_object_get(f->undo, "bytes"));
    if (!json_is_array(workers) || bytes <= 0) {
        snprintf(err, errlen, "memory_stress: fault %s was not prepared", f->id);
        return -EINVAL;
    }
    char size[32];
    fl_bytes_text((uint64_t)bytes, size, sizeof(size));
    long page = sysconf(_SC_PAGESIZE);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        int rc = -errno;
        snprintf(err, errlen, "memory_stress: pipe: %s", fl_strerror(rc));
        return rc;
    }
    struct worker_env env = {getpid(), fds[1], max_fd_guess(), MEM_WORKER_NAME};
    pid_t pid = fork();
    if (pid == 0)
        mem_worker(&env, (size_t)bytes, page > 0 ? (size_t)page : 4096);
    int rc = pid < 0 ? -errno : 0;
    close(fds[1]);
    if (rc < 0) {
        close(fds[0]);
        snprintf(err, errlen, "memory_stress: starting the worker: %s", fl_strerror(rc));
        return rc;
    }
    rc = record_worker(workers, pid);
    struct mem_ready msg = {0, 0};
    ssize_t r = 0;
    if (rc == 0)
        r = read_until(fds[0], &msg, sizeof(msg), fl_mono_ms() + MEM_READY_TIMEOUT_MS);
    close(fds[0]);
    if (rc == 0 && r == (ssize_t)sizeof(msg) && msg.ok == 1) {
        report_pids(f, &pid, 1);
        snprintf(f->detail, sizeof(f->detail), "%s resident in %s[%d] (oom_score_adj 1000)", size,
                 MEM_WORKER_NAME, (int)pid);
        return 0;
    }
    kill_children(&pid, 1);
    json_array_clear(workers);
    if (rc < 0)
        snprintf(err, errlen, "memory_stress: recording the worker: %s", fl_strerror(rc));
    else if (r == -ETIMEDOUT)
        snprintf(err, errlen,
                 "memory_stress: the worker did not finish touching %s within %d s (is the "
                 "host swapping?); stopped it",
                 size, MEM_READY_TIMEOUT_MS / 1000);
    else if (r == (ssize_t)sizeof(msg))
        snprintf(err, errlen, "memory_stress: the worker could not map %s: %s", size,
                 fl_strerror(-msg.err));
    else if (r >= 0)
        snprintf(err, errlen,
                 "memory_stress: the worker died before it held %s (the OOM killer?); ask "
                 "for less",
                 size);
    else
        snprintf(err, errlen, "memory_stress: waiting for the worker: %s", fl_strerror((int)r));
    if (rc < 0)
        return rc;
    if (r < 0)
        return (int)r;
    return r == (ssize_t)sizeof(msg) && msg.err > 0 ? -msg.err : -ENOMEM;
}

/* --- revert, for both -------------------------------------------------------- */

/* Stops one worker, if it is still the one we started. */
static int stop_worker(pid_t pid, uint64_t start, const char *name, char *err, size_t errlen)
{
    struct fl_procstat pi;
    if (fl_procstat_read(pid, &pi) < 0 || pi.start != start)
        return 0; /* gone; the pid may have been reused */
    if (strcmp(pi.comm, name) != 0) {
        snprintf(err, errlen, "PID %d started with the worker but is %s, not %s; left alone",
                 (int)pid, pi.comm, name);
        return -EPERM;
    }
    if (pi.state != 'Z' && kill(pid, SIGKILL) != 0 && errno != ESRCH) {
        int rc = -errno;
        snprintf(err, errlen, "killing %s[%d]: %s", name, (int)pid, fl_strerror(rc));
        return rc;
    }
    uint64_t deadline = fl_mono_ms() + REAP_TIMEOUT_MS;
    for (;;) {
        pid_t r = waitpid(pid, NULL, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno == ECHILD) {
            /* not our child: gone, or a zombie for its parent to reap, is enough */
            if (fl_procstat_read(pid, &pi) < 0 || pi.start != start || pi.state == 'Z' ||
                pi.state == 'X')
                return 0;
        }
        if (fl_mono_ms() >= deadline) {
            snprintf(err, errlen, "%s[%d] is still there %d s after SIGKILL", name, (int)pid,
                     REAP_TIMEOUT_MS / 1000);
            return -ETIMEDOUT;
        }
        struct timespec ts = {0, 2 * 1000000};
        nanosleep(&ts, NULL);
    }
}

static int revert_workers(const json_t *undo, const char *kind, const char *name, char *err,
                          size_t errlen)
{
    const char *id = json_string_value(json_object_get(undo, "id"));
    const json_t *workers = json_object_get(undo, "workers");
    if (workers == NULL)
        return 0; /* prepared, never applied */
    if (!json_is_array(workers)) {
        snprintf(err, errlen, "%s: journal entry for fault %s has no worker list; nothing killed",
                 kind, id ? id : "?");
        return -EINVAL;
    }
    int rc = 0;
    for (size_t i = 0; i < json_array_size(workers); i++) {
        const json_t *w = json_array_get(workers, i);
        json_int_t pid = json_integer_value(json_object_get(w, "pid"));
        json_int_t start = json_integer_value(json_object_get(w, "start"));
        char why[256];
        int r;
        if (pid <= 1 || pid > INT_MAX || start <= 0 || (pid_t)pid == getpid()) {
            snprintf(why, sizeof(why), "worker %zu is not a valid {pid, start}; left alone", i);
            r = -EINVAL;
        } else {
            r = stop_worker((pid_t)pid, (uint64_t)start, name, why, sizeof(why));
        }
        if (r < 0 && rc == 0) {
            rc = r;
            snprintf(err, errlen, "%s: fault %s: %s", kind, id ? id : "?", why);
        }
    }
    return rc;
}

static int cpu_revert(const json_t *undo, char *err, size_t errlen)
{
    return revert_workers(undo, "cpu_stress", CPU_WORKER_NAME, err, errlen);
}

static int mem_revert(const json_t *undo, char *err, size_t errlen)
{
    return revert_workers(undo, "memory_stress", MEM_WORKER_NAME, err, errlen);
}

const struct fl_fault_kind fl_kind_cpu_stress = {
    .name = "cpu_stress",
    .spec_case = FAULTLINE__FAULT_SPEC__KIND_CPU_STRESS,
    .prepare = cpu_prepare,
    .apply = cpu_apply,
    .tick = NULL,
    .revert = cpu_revert,
};

const struct fl_fault_kind fl_kind_memory_stress = {
    .name = "memory_stress",
    .spec_case = FAULTLINE__FAULT_SPEC__KIND_MEMORY_STRESS,
    .prepare = mem_prepare,
    .apply = mem_apply,
    .tick = NULL,
    .revert = mem_revert,
};
