/* Exec probe: does a command exit with the expected code?
 *
 * uv_spawn of argv (execvp, no shell), stdin/stdout/stderr on /dev/null,
 * in its own process group so that a timeout can kill what it started too.
 * The child is reaped by libuv (its exit callback); the process handle is
 * closed only after that, so no zombie is ever left behind.
 *
 *   RUNNING ──exit──► CLOSING ──► end (in the close callback)
 *      │                 ▲
 *      └─cancel: SIGKILL─┘ (then wait for the exit callback)
 *
 * A spawn that fails (missing binary, not executable) closes the handle at
 * once and ends as "cannot run <argv0>: <reason>". */
#include "controller/probes/probe.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

struct exec_attempt {
    struct fl_probe *p;
    uv_process_t proc;
    bool exited;
    bool closing;
    bool cancelled;
    bool ok;
    char detail[160];
};

static void on_closed(uv_handle_t *h)
{
    struct exec_attempt *a = h->data;
    struct fl_probe *p = a->p;
    bool ok = a->ok;
    char detail[sizeof(a->detail)];
    memcpy(detail, a->detail, sizeof(detail));
    free(a);
    fl_probe_attempt_end(p, ok, "%s", detail);
}

static void close_attempt(struct exec_attempt *a)
{
    if (a->closing)
        return;
    a->closing = true;
    uv_close((uv_handle_t *)&a->proc, on_closed);
}

static void on_exit_cb(uv_process_t *proc, int64_t exit_status, int term_signal)
{
    struct exec_attempt *a = proc->data;
    const struct fl_probe_exec *spec = &fl_probe_get_spec(a->p)->u.exec;
    a->exited = true;
    if (a->cancelled) {
        snprintf(a->detail, sizeof(a->detail), "killed");
    } else if (term_signal != 0) {
        snprintf(a->detail, sizeof(a->detail), "killed by signal %d", term_signal);
    } else if (exit_status == spec->expect_exit) {
        a->ok = true;
        snprintf(a->detail, sizeof(a->detail), "exit %lld", (long long)exit_status);
    } else {
        snprintf(a->detail, sizeof(a->detail), "exit %lld, expected %d", (long long)exit_status,
                 spec->expect_exit);
    }
    /* Also reap the rest of the group, should the child have left any behind. */
    if (a->cancelled)
        uv_kill(-proc->pid, SIGKILL);
    close_attempt(a);
}

static int exec_start(struct fl_probe *p, void **attempt, char *err, size_t err_len)
{
    const struct fl_probe_exec *spec = &fl_probe_get_spec(p)->u.exec;
    struct exec_attempt *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    a->p = p;
    a->proc.data = a;

    uv_stdio_container_t stdio[3];
    for (int i = 0; i < 3; i++)
        stdio[i].flags = UV_IGNORE; /* libuv opens /dev/null for these */
    uv_process_options_t opts;
    memset(&opts, 0, sizeof(opts));
    opts.exit_cb = on_exit_cb;
    opts.file = spec->argv[0];
    opts.args = (char **)spec->argv;
    opts.stdio = stdio;
    opts.stdio_count = 3;
    opts.flags = UV_PROCESS_DETACHED; /* setsid(): its own group, killed as one */

    int rc = uv_spawn(fl_probe_loop(p), &a->proc, &opts);
    if (rc < 0) {
        /* The handle is initialised even when the spawn fails: close it, end later. */
        snprintf(a->detail, sizeof(a->detail), "cannot run %s: %s", spec->argv[0], uv_strerror(rc));
        a->exited = true;
        close_attempt(a);
    }
    *attempt = a;
    return 0;
}

static void exec_cancel(void *attempt)
{
    struct exec_attempt *a = attempt;
    a->cancelled = true;
    if (a->exited || a->closing)
        return;
    int rc = uv_kill(-a->proc.pid, SIGKILL);
    if (rc < 0)
        rc = uv_process_kill(&a->proc, SIGKILL);
    if (rc < 0 && rc != UV_ESRCH)
        fl_warn("exec probe: cannot kill pid %d: %s", a->proc.pid, uv_strerror(rc));
    /* on_exit_cb closes the handle once libuv has reaped the child. */
}

const struct fl_probe_kind fl_probe_kind_exec = {
    .name = "exec",
    .start = exec_start,
    .cancel = exec_cancel,
};
