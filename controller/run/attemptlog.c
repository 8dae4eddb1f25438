/* attempts.jsonl, written as the run goes (attemptlog.h).
 *
 *   open ──► add ... add ──(chunk full or 1 s)──► write (pool) ──► add ...
 *   close ──► write what waits ──► fsync ──► close ──► closed()
 *
 * One uv_fs request, reused: a write, then on close an fsync and a close.
 * Two buffers: `filling` takes lines while `flying` is being written. */
#include "controller/run/attemptlog.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "controller/report/report.h"

#define FLUSH_MS 1000

static void fail(struct fl_attemptlog *log, const char *what, int err)
{
    if (log->failed)
        return;
    log->failed = true;
    snprintf(log->error, sizeof(log->error), "%.120s: %.80s; %.256s stops after line %llu", what,
             uv_strerror(err), log->path, (unsigned long long)log->lines_written);
    fl_error("%s", log->error);
    log->n_filling = 0;
}

int fl_attemptlog_open(struct fl_attemptlog *log, uv_loop_t *loop, const char *path)
{
    memset(log, 0, sizeof(*log));
    log->loop = loop;
    log->fd = -1;
    snprintf(log->path, sizeof(log->path), "%s", path);
    uv_fs_t req;
    int fd = uv_fs_open(NULL, &req, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644, NULL);
    uv_fs_req_cleanup(&req);
    if (fd < 0) {
        snprintf(log->error, sizeof(log->error), "cannot create %.400s: %.80s", path,
                 uv_strerror(fd));
        log->failed = true;
        return fd;
    }
    log->fd = fd;
    int rc = uv_timer_init(loop, &log->flush_timer);
    if (rc < 0) {
        fail(log, "cannot start its timer", rc);
        return rc;
    }
    log->timer_open = true;
    log->flush_timer.data = log;
    return 0;
}

static void write_some(struct fl_attemptlog *log);
static void after_write(struct fl_attemptlog *log);

static void on_closed_file(uv_fs_t *req)
{
    struct fl_attemptlog *log = req->data;
    if (req->result < 0)
        fail(log, "cannot close it", (int)req->result);
    uv_fs_req_cleanup(req);
    log->fd = -1;
    free(log->filling);
    free(log->flying);
    log->filling = log->flying = NULL;
    if (log->closed != NULL)
        log->closed(log->closed_arg);
}

static void on_synced(uv_fs_t *req)
{
    struct fl_attemptlog *log = req->data;
    if (req->result < 0)
        fail(log, "cannot fsync it", (int)req->result);
    uv_fs_req_cleanup(req);
    log->req.data = log;
    uv_fs_close(log->loop, &log->req, log->fd, on_closed_file); /* errors come to the callback */
}

static void on_written(uv_fs_t *req)
{
    struct fl_attemptlog *log = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    log->writing = false;
    if (n < 0) {
        fail(log, "cannot write it", (int)n);
        log->n_flying = 0;
    } else {
        assert((size_t)n <= log->n_flying);
        for (ssize_t i = 0; i < n; i++)
            log->lines_written += log->flying[i] == '\n';
        log->offset += (uint64_t)n;
        memmove(log->flying, log->flying + n, log->n_flying - (size_t)n);
        log->n_flying -= (size_t)n;
    }
    after_write(log);
}

/* What to do once no write is in flight. */
static void after_write(struct fl_attemptlog *log)
{
    if (log->n_flying > 0 && !log->failed) {
        write_some(log); /* the rest of a short write */
        return;
    }
    if (log->n_filling > 0 && !log->failed &&
        (log->closing || log->n_filling >= FL_ATTEMPTLOG_CHUNK)) {
        write_some(log);
        return;
    }
    if (log->closing && log->fd >= 0) {
        log->req.data = log;
        uv_fs_fsync(log->loop, &log->req, log->fd, on_synced);
    }
}

static void on_statfs(uv_fs_t *req);

/* Before each write, the file system's free space (uv_fs_statfs, on the
 * pool): below FL_ATTEMPTLOG_RESERVE plus what is to be written, the log
 * stops, so that run.json and junit.xml still fit beside it. */
static void write_some(struct fl_attemptlog *log)
{
    assert(!log->writing);
    log->req.data = log;
    log->writing = true;
    int rc = uv_fs_statfs(log->loop, &log->req, log->path, on_statfs);
    if (rc < 0) {
        log->writing = false;
        fail(log, "cannot check the free space for it", rc);
        log->n_flying = 0;
        after_write(log);
    }
}

static void write_now(struct fl_attemptlog *log);

static void on_statfs(uv_fs_t *req)
{
    struct fl_attemptlog *log = req->data;
    uint64_t free_bytes = UINT64_MAX;
    if (req->result == 0 && req->ptr != NULL) {
        const uv_statfs_t *st = req->ptr;
        free_bytes = st->f_bavail * st->f_bsize;
    }
    int err = (int)req->result;
    uv_fs_req_cleanup(req);
    log->writing = false;
    size_t want = log->n_flying > 0 ? log->n_flying : log->n_filling;
    if (err < 0) {
        fail(log, "cannot check the free space for it", err);
    } else if (free_bytes < (uint64_t)want + FL_ATTEMPTLOG_RESERVE) {
        fail(log, "its file system has less than FL_ATTEMPTLOG_RESERVE (1 MiB) free beside it",
             UV_ENOSPC);
    }
    if (log->failed) {
        log->n_flying = 0;
        after_write(log);
        return;
    }
    write_now(log);
}

static void write_now(struct fl_attemptlog *log)
{
    assert(!log->writing);
    if (log->n_flying == 0) {
        char *t = log->flying;
        size_t c = log->cap_flying;
        log->flying = log->filling;
        log->cap_flying = log->cap_filling;
        log->n_flying = log->n_filling;
        log->filling = t;
        log->cap_filling = c;
        log->n_filling = 0;
    }
    uv_buf_t buf = uv_buf_init(log->flying, (unsigned)log->n_flying);
    log->req.data = log;
    log->writing = true;
    int rc = uv_fs_write(log->loop, &log->req, log->fd, &buf, 1, (int64_t)log->offset, on_written);
    if (rc < 0) {
        log->writing = false;
        fail(log, "cannot write it", rc);
        log->n_flying = 0;
    }
}

static void on_flush_timer(uv_timer_t *t)
{
    struct fl_attemptlog *log = t->data;
    if (!log->writing && log->n_filling > 0 && !log->failed)
        write_some(log);
}

/* Appends s (len bytes) to the filling buffer. */
static bool put(struct fl_attemptlog *log, const char *s, size_t len)
{
    if (log->n_filling + len > log->cap_filling) {
        size_t cap = log->cap_filling ? log->cap_filling : FL_ATTEMPTLOG_CHUNK + 4096;
        while (cap < log->n_filling + len)
            cap *= 2;
        char *p = realloc(log->filling, cap);
        if (p == NULL)
            return false;
        log->filling = p;
        log->cap_filling = cap;
    }
    memcpy(log->filling + log->n_filling, s, len);
    log->n_filling += len;
    return true;
}

/* A JSON string body: escapes, and U+FFFD for bytes that are not UTF-8. */
static size_t escape(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *c = s; *c != '\0' && o + 8 < cap;) {
        unsigned char b = (unsigned char)*c;
        if (b == '"' || b == '\\') {
            out[o++] = '\\';
            out[o++] = (char)b;
            c++;
        } else if (b < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", b);
            c++;
        } else if (b < 0x80) {
            out[o++] = (char)b;
            c++;
        } else {
            size_t n = fl_report_utf8_seq(c);
            if (n == 0) {
                o += (size_t)snprintf(out + o, cap - o, "\\ufffd");
                c++;
            } else {
                memcpy(out + o, c, n);
                o += n;
                c += n;
            }
        }
    }
    out[o] = '\0';
    return o;
}

void fl_attemptlog_add(struct fl_attemptlog *log, size_t p, const struct fl_probe_result *r)
{
    if (log->failed || log->closing || log->fd < 0)
        return;
    char detail[6 * sizeof(r->detail) + 1];
    escape(r->detail, detail, sizeof(detail));
    char line[sizeof(detail) + 128];
    int n = snprintf(line, sizeof(line),
                     "{\"p\":%zu,\"t\":%llu,\"l\":%llu,\"o\":\"%s\",\"d\":\"%s\"}\n", p,
                     (unsigned long long)r->started_ms, (unsigned long long)r->latency_ms,
                     fl_probe_outcome_name(r->outcome), detail);
    assert(n > 0 && (size_t)n < sizeof(line));
    if (log->n_filling + log->n_flying + (size_t)n > FL_ATTEMPTLOG_BACKLOG) {
        fail(log, "the disk fell behind by FL_ATTEMPTLOG_BACKLOG (64 MiB)", UV_EAGAIN);
        return;
    }
    if (!put(log, line, (size_t)n)) {
        fail(log, "out of memory buffering it", UV_ENOMEM);
        return;
    }
    if (!uv_is_active((uv_handle_t *)&log->flush_timer)) {
        uv_timer_start(&log->flush_timer, on_flush_timer, FLUSH_MS, FLUSH_MS);
        uv_unref((uv_handle_t *)&log->flush_timer);
    }
    if (!log->writing && log->n_filling >= FL_ATTEMPTLOG_CHUNK)
        write_some(log);
}

static void on_timer_closed(uv_handle_t *h)
{
    (void)h;
}

void fl_attemptlog_close(struct fl_attemptlog *log, void (*closed)(void *arg), void *arg)
{
    assert(!log->closing);
    log->closing = true;
    log->closed = closed;
    log->closed_arg = arg;
    if (log->timer_open) {
        uv_close((uv_handle_t *)&log->flush_timer, on_timer_closed);
        log->timer_open = false;
    }
    if (log->fd < 0) {
        free(log->filling);
        log->filling = NULL;
        if (closed != NULL)
            closed(arg);
        return;
    }
    if (!log->writing)
        after_write(log);
}
