/* Exec probe: does a command exit with the expected code (and, with
 * expect_output, say the expected thing)?
 *
 * uv_spawn of argv (execvp, no shell), stdin on /dev/null, stdout and stderr
 * both into one pipe the probe reads, in its own process group so that a
 * timeout can kill what it started too. The last FL_PROBE_OUTPUT_KEPT bytes
 * of that output go into the result's detail, so that a failure says what
 * the command said ("exit 1 (expected 0): READONLY You can't write against a
 * read only replica."). expect_output is matched against the whole output as
 * it streams past, not only the bytes kept.
 *
 * The child is reaped by libuv (its exit callback); the attempt ends once
 * the child has exited AND its output has reached end of file (or the
 * attempt was cancelled: a grandchild holding the pipe open cannot keep it
 * alive past the timeout), and both handles are closed.
 *
 *   RUNNING ──exit + EOF──► CLOSING ──► end (when both handles are closed)
 *      │                      ▲
 *      └─cancel: SIGKILL──────┘ (then wait for the exit callback)
 *
 * A spawn that fails (missing binary, not executable) closes the handles at
 * once and ends as "cannot run <argv0>: <reason>". */
#include "controller/probes/probe.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

struct exec_attempt {
    struct fl_probe *p;
    uv_process_t proc;
    uv_pipe_t out;
    int open_handles;
    bool out_open; /* the pipe handle was initialised */
    bool exited, eof;
    bool closing;
    bool cancelled;
    int64_t exit_status;
    int term_signal;
    /* the last FL_PROBE_OUTPUT_KEPT bytes: a ring */
    char tail[FL_PROBE_OUTPUT_KEPT];
    size_t tail_len, tail_head;
    /* expect_output, matched across reads: the previous read's last bytes */
    bool matched;
    char carry[256];
    size_t carry_len;
    char readbuf[4096];
    char detail[sizeof(((struct fl_probe_result *)0)->detail)];
    bool ok;
};

static void on_closed(uv_handle_t *h)
{
    struct exec_attempt *a = h->data;
    if (--a->open_handles > 0)
        return;
    struct fl_probe *p = a->p;
    bool ok = a->ok;
    char detail[sizeof(a->detail)];
    memcpy(detail, a->detail, sizeof(detail));
    free(a);
    fl_probe_attempt_end(p, ok, "%s", detail);
}

static void free_on_close(uv_handle_t *h)
{
    free(h->data);
}

static void close_attempt(struct exec_attempt *a)
{
    if (a->closing)
        return;
    a->closing = true;
    uv_close((uv_handle_t *)&a->proc, on_closed);
    if (a->out_open)
        uv_close((uv_handle_t *)&a->out, on_closed);
}

/* The output kept, on one line: control characters become spaces, runs of
 * them one space, leading and trailing ones dropped. */
static void output_text(const struct exec_attempt *a, char *out, size_t cap)
{
    size_t o = 0;
    bool space = true; /* drops leading blanks */
    size_t start = a->tail_len < sizeof(a->tail) ? 0 : a->tail_head;
    for (size_t i = 0; i < a->tail_len && o + 1 < cap; i++) {
        unsigned char c = (unsigned char)a->tail[(start + i) % sizeof(a->tail)];
        if (c < 0x20 || c == 0x7f || c == ' ') {
            if (!space)
                out[o++] = ' ';
            space = true;
        } else {
            out[o++] = (char)c;
            space = false;
        }
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
}

/* Decides the outcome once the child has exited and its output is read. */
static void conclude(struct exec_attempt *a)
{
    const struct fl_probe_exec *spec = &fl_probe_get_spec(a->p)->u.exec;
    char said[FL_PROBE_OUTPUT_KEPT + 1];
    output_text(a, said, sizeof(said));
    const char *sep = said[0] ? ": " : "";
    if (a->cancelled) {
        snprintf(a->detail, sizeof(a->detail), "killed%s%s", sep, said);
    } else if (a->term_signal != 0) {
        snprintf(a->detail, sizeof(a->detail), "killed by signal %d%s%s", a->term_signal, sep,
                 said);
    } else if (a->exit_status != spec->expect_exit) {
        snprintf(a->detail, sizeof(a->detail), "exit %lld (expected %d)%s%s",
                 (long long)a->exit_status, spec->expect_exit, sep, said);
    } else if (spec->expect_output != NULL && !a->matched) {
        snprintf(a->detail, sizeof(a->detail), "exit %lld, but the output lacks \"%.64s\"%s%s",
                 (long long)a->exit_status, spec->expect_output, sep, said);
    } else {
        a->ok = true;
        snprintf(a->detail, sizeof(a->detail), "exit %lld", (long long)a->exit_status);
    }
    close_attempt(a);
}

static void maybe_conclude(struct exec_attempt *a)
{
    if (a->exited && (a->eof || a->cancelled) && !a->closing)
        conclude(a);
}

static void keep(struct exec_attempt *a, const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        a->tail[a->tail_head] = buf[i];
        a->tail_head = (a->tail_head + 1) % sizeof(a->tail);
        if (a->tail_len < sizeof(a->tail))
            a->tail_len++;
    }
}

/* Looks for expect_output in what the previous read left plus this one. */
static void match(struct exec_attempt *a, const char *buf, size_t n)
{
    const char *needle = fl_probe_get_spec(a->p)->u.exec.expect_output;
    if (needle == NULL || a->matched)
        return;
    size_t nl = strlen(needle);
    if (nl == 0) {
        a->matched = true;
        return;
    }
    char window[sizeof(a->carry) + sizeof(a->readbuf)];
    memcpy(window, a->carry, a->carry_len);
    memcpy(window + a->carry_len, buf, n);
    size_t wl = a->carry_len + n;
    if (memmem(window, wl, needle, nl) != NULL) {
        a->matched = true;
        return;
    }
    /* keep the last nl - 1 bytes (at most the carry's size) for the next read */
    size_t keep_n = nl - 1 < sizeof(a->carry) ? nl - 1 : sizeof(a->carry);
    if (keep_n > wl)
        keep_n = wl;
    memmove(a->carry, window + wl - keep_n, keep_n);
    a->carry_len = keep_n;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct exec_attempt *a = h->data;
    (void)suggested;
    *buf = uv_buf_init(a->readbuf, sizeof(a->readbuf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct exec_attempt *a = s->data;
    if (n > 0) {
        keep(a, buf->base, (size_t)n);
        match(a, buf->base, (size_t)n);
        return;
    }
    if (n < 0) { /* UV_EOF, or an error: either way nothing more comes */
        uv_read_stop(s);
        a->eof = true;
        maybe_conclude(a);
    }
}

static void on_exit_cb(uv_process_t *proc, int64_t exit_status, int term_signal)
{
    struct exec_attempt *a = proc->data;
    a->exited = true;
    a->exit_status = exit_status;
    a->term_signal = term_signal;
    /* Also reap the rest of the group, should the child have left any behind. */
    if (a->cancelled)
        uv_kill(-proc->pid, SIGKILL);
    maybe_conclude(a);
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
    a->out.data = a;

    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        int e = errno;
        snprintf(err, err_len, "cannot make a pipe for %s: %s", spec->argv[0], strerror(e));
        free(a);
        return -e;
    }
    int rc = uv_pipe_init(fl_probe_loop(p), &a->out, 0);
    if (rc < 0) {
        close(fds[0]);
        close(fds[1]);
        snprintf(err, err_len, "cannot read the output of %s: %s", spec->argv[0], uv_strerror(rc));
        free(a);
        return rc;
    }
    rc = uv_pipe_open(&a->out, fds[0]);
    if (rc < 0) {
        close(fds[0]);
        close(fds[1]);
        snprintf(err, err_len, "cannot read the output of %s: %s", spec->argv[0], uv_strerror(rc));
        uv_close((uv_handle_t *)&a->out, free_on_close); /* initialised: close before free */
        return rc;
    }
    a->out_open = true;
    a->open_handles = 2;

    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE; /* libuv opens /dev/null */
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = fds[1];
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = fds[1];
    uv_process_options_t opts;
    memset(&opts, 0, sizeof(opts));
    opts.exit_cb = on_exit_cb;
    opts.file = spec->argv[0];
    opts.args = (char **)spec->argv;
    opts.stdio = stdio;
    opts.stdio_count = 3;
    opts.flags = UV_PROCESS_DETACHED; /* setsid(): its own group, killed as one */

    rc = uv_spawn(fl_probe_loop(p), &a->proc, &opts);
    close(fds[1]); /* the child has its copy: EOF once it (and its own children) exit */
    if (rc < 0) {
        /* The handle is initialised even when the spawn fails: close it, end later. */
        snprintf(a->detail, sizeof(a->detail), "cannot run %s: %s", spec->argv[0], uv_strerror(rc));
        a->exited = true;
        close_attempt(a);
    } else {
        uv_read_start((uv_stream_t *)&a->out, on_alloc, on_read);
    }
    *attempt = a;
    return 0;
}

static void exec_cancel(void *attempt)
{
    struct exec_attempt *a = attempt;
    a->cancelled = true;
    if (a->closing)
        return;
    if (a->exited) { /* only the output was still open */
        maybe_conclude(a);
        return;
    }
    int rc = uv_kill(-a->proc.pid, SIGKILL);
    if (rc < 0)
        rc = uv_process_kill(&a->proc, SIGKILL);
    if (rc < 0 && rc != UV_ESRCH)
        fl_warn("exec probe: cannot kill pid %d: %s", a->proc.pid, uv_strerror(rc));
    /* on_exit_cb concludes once libuv has reaped the child. */
}

const struct fl_probe_kind fl_probe_kind_exec = {
    .name = "exec",
    .start = exec_start,
    .cancel = exec_cancel,
};
