/* kill_process and pause_process: signals to processes picked by one
 * selector -- pid, pidfile, exact name, or a command-line pattern.
 *
 * Targets are resolved in prepare, on the loop: a scan of /proc, which lives
 * in memory and does not block on disks. Each target is kept as (pid, start
 * time), so a pid the kernel reuses between prepare and revert is never hit.
 *
 * Selection by name or pattern skips this agent, its guardian, its ancestors,
 * kernel threads and faultline's own programs (a controller on this host)
 * without a word (a pattern may well match the agent's own command line);
 * any other guardrail refusal (PID 1, a protected name) refuses the whole
 * request, so the target list is never silently narrowed.
 *
 *   kill_process  once: the targets get the signal in apply; nothing to undo.
 *                 repeat: every `every_ms` the selector is resolved again and
 *                 whatever matches now is killed (a restart storm).
 *   pause_process SIGSTOP in apply; revert sends SIGCONT to the same
 *                 (pid, start time) pairs, which tolerates processes that died.
 *                 One pause per process at a time: prepare holds each target
 *                 in the reservation ledger (agent/guardrails.h) until the
 *                 fault has ended, and refuses (-EBUSY) a target another
 *                 pause holds -- otherwise the first to end would resume a
 *                 process the other still claims is stopped. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/fault.h"
#include "agent/guardrails.h"
#include "agent/procstat.h"
#include "common/text.h"

#define MAX_TARGETS 64

struct target {
    pid_t pid;
    uint64_t start;
};

static int read_small(const char *path, char *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, cap - 1);
    int rc = n < 0 ? -errno : 0;
    close(fd);
    if (rc < 0)
        return rc;
    buf[n] = '\0';
    *len = (size_t)n;
    return 0;
}

/* comm without the trailing newline; "" when gone */
static void proc_comm(pid_t pid, char *out, size_t cap)
{
    char path[64];
    size_t n = 0;
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    out[0] = '\0';
    if (read_small(path, out, cap, &n) == 0 && n > 0 && out[n - 1] == '\n')
        out[n - 1] = '\0';
}

/* the command line with NULs as spaces; "" for kernel threads */
static void proc_cmdline(pid_t pid, char *out, size_t cap, size_t *argv0_len)
{
    char path[64];
    size_t n = 0;
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    out[0] = '\0';
    *argv0_len = 0;
    if (read_small(path, out, cap, &n) < 0)
        return;
    *argv0_len = strnlen(out, n);
    for (size_t i = 0; i < n; i++)
        if (out[i] == '\0')
            out[i] = ' ';
    while (n > 0 && out[n - 1] == ' ')
        out[--n] = '\0';
}

/* Exact name: the kernel's comm (at most 15 bytes) or, for longer names, the
 * base name of argv[0]. */
static int name_matches(pid_t pid, const char *name)
{
    char comm[64];
    proc_comm(pid, comm, sizeof(comm));
    if (comm[0] != '\0' && strcmp(comm, name) == 0)
        return 1;
    if (strlen(name) < 15)
        return 0;
    char cmd[4096];
    size_t a0;
    proc_cmdline(pid, cmd, sizeof(cmd), &a0);
    cmd[a0] = '\0';
    const char *base = strrchr(cmd, '/');
    return strcmp(base ? base + 1 : cmd, name) == 0;
}

static int pattern_matches(pid_t pid, const char *pattern)
{
    char cmd[4096];
    size_t a0;
    proc_cmdline(pid, cmd, sizeof(cmd), &a0);
    return cmd[0] != '\0' && strstr(cmd, pattern) != NULL;
}

/* The one-letter state from /proc/PID/stat; 0 when gone. */
static char proc_state(pid_t pid)
{
    struct fl_procstat st;
    return fl_procstat_read(pid, &st) == 0 ? st.state : 0;
}

/* faultline's own programs: a controller on this host carries the very
 * pattern it asks for in its argv ("pattern=nginx -g") */
static int is_faultline(pid_t pid)
{
    char cmd[4096];
    size_t a0;
    proc_cmdline(pid, cmd, sizeof(cmd), &a0);
    cmd[a0] = '\0';
    const char *base = strrchr(cmd, '/');
    base = base ? base + 1 : cmd;
    return strncmp(base, "faultline", 9) == 0;
}

/* Never candidates of a name or pattern, skipped without a word: faultline's
 * own programs and the dead (zombies). The guardrails add the agent, its
 * guardian and ancestors, and kernel threads. */
static int silently_skipped(pid_t pid)
{
    if (is_faultline(pid))
        return 1;
    char st = proc_state(pid);
    return st == 0 || st == 'Z' || st == 'X'; /* dead already: a signal would do nothing */
}

static int read_pidfile(const char *path, pid_t *pid, char *err, size_t errlen)
{
    char buf[64];
    size_t n;
    int rc = read_small(path, buf, sizeof(buf), &n);
    if (rc < 0) {
        snprintf(err, errlen, "pidfile %s: %s", path, strerror(-rc));
        return rc;
    }
    char *end;
    errno = 0;
    long v = strtol(buf, &end, 10);
    while (*end && isspace((unsigned char)*end))
        end++;
    if (errno || end == buf || *end || v <= 0 || v > INT_MAX) {
        snprintf(err, errlen, "pidfile %s does not hold a process id", path);
        return -EINVAL;
    }
    *pid = (pid_t)v;
    return 0;
}

/* Resolves the selector into targets. -ESRCH when nothing matches. */
static int resolve(const Faultline__ProcessSelector *sel, const struct fl_guardrails *g,
                   struct target *out, size_t *n_out, char *err, size_t errlen)
{
    size_t n = 0;
    int rc;
    if (sel == NULL || sel->by_case == FAULTLINE__PROCESS_SELECTOR__BY__NOT_SET) {
        snprintf(err, errlen, "name a target: one of pid, pidfile, name or pattern");
        return -EINVAL;
    }
    if (sel->by_case == FAULTLINE__PROCESS_SELECTOR__BY_PID ||
        sel->by_case == FAULTLINE__PROCESS_SELECTOR__BY_PIDFILE) {
        pid_t pid = sel->pid;
        if (sel->by_case == FAULTLINE__PROCESS_SELECTOR__BY_PIDFILE) {
            if ((rc = fl_text_check(sel->pidfile, "pidfile", err, errlen)) < 0 ||
                (rc = read_pidfile(sel->pidfile, &pid, err, errlen)) < 0)
                return rc;
        }
        if ((rc = fl_guard_check_pid(g, pid, err, errlen)) < 0)
            return rc;
        out[n].pid = pid;
        out[n].start = fl_proc_start_time(pid);
        if (out[n].start == 0) {
            snprintf(err, errlen, "no process with PID %d", (int)pid);
            return -ESRCH;
        }
        *n_out = 1;
        return 0;
    }

    const char *what = sel->by_case == FAULTLINE__PROCESS_SELECTOR__BY_NAME ? "name" : "pattern";
    const char *text =
        sel->by_case == FAULTLINE__PROCESS_SELECTOR__BY_NAME ? sel->name : sel->pattern;
    if ((rc = fl_text_check(text, what, err, errlen)) < 0)
        return rc;
    DIR *d = opendir("/proc");
    if (d == NULL) {
        snprintf(err, errlen, "cannot read /proc: %s", strerror(errno));
        return -errno;
    }
    struct dirent *e;
    rc = 0;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long v = strtol(e->d_name, &end, 10);
        if (*end != '\0' || v <= 0 || v > INT_MAX)
            continue;
        pid_t pid = (pid_t)v;
        int hit = sel->by_case == FAULTLINE__PROCESS_SELECTOR__BY_NAME ? name_matches(pid, text)
                                                                       : pattern_matches(pid, text);
        if (!hit || silently_skipped(pid))
            continue;
        enum fl_guard_pid verdict = fl_guard_classify_pid(g, pid, err, errlen);
        if (verdict == FL_GUARD_GONE || verdict == FL_GUARD_NEVER || verdict == FL_GUARD_OUTSIDE)
            continue; /* exited while we looked, never a candidate, or not this host's */
        if (verdict == FL_GUARD_PROTECTED) {
            rc = -EPERM; /* refuse the whole request: never narrow it silently */
            break;
        }
        if (n == MAX_TARGETS) {
            snprintf(err, errlen, "%s '%s' matches more than %d processes: narrow it", what, text,
                     MAX_TARGETS);
            rc = -E2BIG;
            break;
        }
        out[n].pid = pid;
        out[n].start = fl_proc_start_time(pid);
        if (out[n].start != 0)
            n++;
    }
    closedir(d);
    if (rc < 0)
        return rc;
    if (n == 0) {
        snprintf(err, errlen, "no process matches %s '%s'", what, text);
        return -ESRCH;
    }
    *n_out = n;
    return 0;
}

static json_t *targets_json(const struct target *t, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            arr, json_pack("{s:i,s:I}", "pid", (int)t[i].pid, "start", (json_int_t)t[i].start));
    return arr;
}

static size_t targets_from_json(const json_t *arr, struct target *out, size_t cap)
{
    size_t n = 0, i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (n == cap)
            break;
        json_int_t pid = json_integer_value(json_object_get(v, "pid"));
        json_int_t start = json_integer_value(json_object_get(v, "start"));
        if (pid > 1 && pid <= INT_MAX && start > 0) {
            out[n].pid = (pid_t)pid;
            out[n].start = (uint64_t)start;
            n++;
        }
    }
    return n;
}

/* Signals every target that is still the same process; returns how many. */
static size_t signal_targets(struct fl_fault *f, const struct target *t, size_t n, int sig)
{
    size_t hit = 0;
    for (size_t i = 0; i < n; i++) {
        if (fl_proc_start_time(t[i].pid) != t[i].start)
            continue; /* gone, or the pid was reused */
        if (kill(t[i].pid, sig) == 0) {
            hit++;
            if (f != NULL && f->n_pids < sizeof(f->pids) / sizeof(f->pids[0]))
                f->pids[f->n_pids++] = t[i].pid;
        }
    }
    return hit;
}

static void describe(struct fl_fault *f, const char *verb, const struct target *t, size_t n)
{
    size_t used = (size_t)snprintf(f->detail, sizeof(f->detail), "%s", verb);
    for (size_t i = 0; i < n && used < sizeof(f->detail); i++) {
        char comm[32];
        proc_comm(t[i].pid, comm, sizeof(comm));
        int w = snprintf(f->detail + used, sizeof(f->detail) - used, "%s%s[%d]", i ? ", " : " ",
                         comm[0] ? comm : "?", (int)t[i].pid);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* ---------------------------------------------------------------- kill */

static int kill_signal(const Faultline__KillProcess *k, char *err, size_t errlen)
{
    int sig = k->signal == 0 ? SIGKILL : k->signal;
    /* every stop signal, not STOP alone: kill_process has nothing to undo, so
     * a stopped target would stay stopped after the fault */
    if (sig < 1 || sig > 31 || sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN ||
        sig == SIGTTOU || sig == SIGCONT) {
        snprintf(err, errlen,
                 "signal %d is not one kill_process sends (1-31, not STOP, TSTP, TTIN, TTOU or "
                 "CONT: a stopped process would stay stopped; use pause_process, which resumes "
                 "it when the fault ends)",
                 k->signal);
        return -EINVAL;
    }
    return sig;
}

static int kill_prepare(struct fl_fault *f, const struct fl_agent_ctx *ctx, char *err,
                        size_t errlen)
{
    const Faultline__KillProcess *k = f->spec->kill_process;
    int sig = kill_signal(k, err, errlen);
    if (sig < 0)
        return sig;
    if (k->mode == FAULTLINE__KILL_MODE__KILL_MODE_REPEAT) {
        if (k->every_ms < 10) {
            snprintf(err, errlen, "mode repeat needs every >= 10ms");
            return -EINVAL;
        }
        f->tick_ms = k->every_ms;
    }
    struct target t[MAX_TARGETS];
    size_t n;
    int rc = resolve(k->target, ctx->guard, t, &n, err, errlen);
    if (rc < 0)
        return rc;
    f->undo = json_pack("{s:s,s:s,s:o}", "kind", "kill_process", "id", f->id, "targets",
                        targets_json(t, n));
    return f->undo ? 0 : -ENOMEM;
}

static int kill_apply(struct fl_fault *f, char *err, size_t errlen)
{
    const Faultline__KillProcess *k = f->spec->kill_process;
    struct target t[MAX_TARGETS];
    size_t n = targets_from_json(json_object_get(f->undo, "targets"), t, MAX_TARGETS);
    int sig = kill_signal(k, err, errlen);
    if (sig < 0)
        return sig;
    f->n_pids = 0;
    size_t hit = signal_targets(f, t, n, sig);
    if (hit == 0) {
        snprintf(err, errlen, "the matched processes exited before they could be signalled");
        return -ESRCH;
    }
    char verb[64];
    snprintf(verb, sizeof(verb), "sent %s to", sigabbrev_np(sig) ? sigabbrev_np(sig) : "signal");
    describe(f, verb, t, n);
    return 0;
}

/* A restart storm: whatever matches now is killed again. Nothing matching is
 * fine -- the service may be down, which is the point. */
static int kill_tick(struct fl_fault *f, char *err, size_t errlen)
{
    const Faultline__KillProcess *k = f->spec->kill_process;
    struct target t[MAX_TARGETS];
    size_t n;
    int rc = resolve(k->target, f->ctx->guard, t, &n, err, errlen);
    if (rc == -ESRCH)
        return 0;
    if (rc < 0)
        return rc;
    int sig = kill_signal(k, err, errlen);
    if (sig < 0)
        return sig;
    signal_targets(NULL, t, n, sig);
    return 0;
}

static int kill_revert(const json_t *undo, char *err, size_t errlen)
{
    (void)undo;
    (void)err;
    (void)errlen;
    return 0; /* a signal cannot be taken back; the repeat timer is the registry's */
}

const struct fl_fault_kind fl_kind_kill_process = {
    .name = "kill_process",
    .spec_case = FAULTLINE__FAULT_SPEC__KIND_KILL_PROCESS,
    .prepare = kill_prepare,
    .apply = kill_apply,
    .tick = kill_tick,
    .revert = kill_revert,
};

/* ---------------------------------------------------------------- pause */

static int pause_prepare(struct fl_fault *f, const struct fl_agent_ctx *ctx, char *err,
                         size_t errlen)
{
    struct target t[MAX_TARGETS];
    size_t n;
    int rc = resolve(f->spec->pause_process->target, ctx->guard, t, &n, err, errlen);
    if (rc < 0)
        return rc;
    for (size_t i = 0; f->ledger && i < n; i++) {
        const char *holder = fl_ledger_process_holder(f->ledger, t[i].pid, t[i].start);
        if (holder != NULL) {
            char comm[32];
            proc_comm(t[i].pid, comm, sizeof(comm));
            snprintf(err, errlen,
                     "pause_process: %s[%d] is already paused by fault %s; one pause per "
                     "process at a time (revert %s first, or wait for it to end)",
                     comm[0] ? comm : "?", (int)t[i].pid, holder, holder);
            return -EBUSY;
        }
    }
    f->undo = json_pack("{s:s,s:s,s:o}", "kind", "pause_process", "id", f->id, "targets",
                        targets_json(t, n));
    if (f->undo == NULL)
        return -ENOMEM;
    for (size_t i = 0; f->ledger && i < n; i++) {
        if (fl_ledger_hold_process(f->ledger, f->id, t[i].pid, t[i].start) < 0) {
            fl_ledger_release(f->ledger, f->id);
            snprintf(err, errlen, "pause_process: out of memory");
            return -ENOMEM;
        }
    }
    return 0;
}

static int pause_apply(struct fl_fault *f, char *err, size_t errlen)
{
    struct target t[MAX_TARGETS];
    size_t n = targets_from_json(json_object_get(f->undo, "targets"), t, MAX_TARGETS);
    f->n_pids = 0;
    if (signal_targets(f, t, n, SIGSTOP) == 0) {
        snprintf(err, errlen, "the matched processes exited before they could be paused");
        return -ESRCH;
    }
    describe(f, "stopped (SIGSTOP)", t, n);
    return 0;
}

static int pause_revert(const json_t *undo, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct target t[MAX_TARGETS];
    size_t n = targets_from_json(json_object_get(undo, "targets"), t, MAX_TARGETS);
    signal_targets(NULL, t, n, SIGCONT); /* the dead need no waking */
    return 0;
}

const struct fl_fault_kind fl_kind_pause_process = {
    .name = "pause_process",
    .spec_case = FAULTLINE__FAULT_SPEC__KIND_PAUSE_PROCESS,
    .prepare = pause_prepare,
    .apply = pause_apply,
    .tick = NULL,
    .revert = pause_revert,
};
