#include "agent/journal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/journalrec.h"
#include "common/clock.h"
#include "common/cryptolib.h"
#include "common/log.h"

struct job {
    uv_work_t work;
    struct fl_journal *j;
    char *line;
    size_t len;
    int status;
    fl_journal_cb cb;
    void *arg;
    struct job *next;
};

struct fl_journal {
    int fd;
    char *path;
    /* async appends: one in flight, the rest queued in order */
    struct job *queue_head;
    struct job *queue_tail;
    int in_flight;
    uv_loop_t *loop;
    /* an append failed and could not be taken back: the file may end in a
     * partial record, so nothing more is appended until a compaction has
     * rewritten it (written by the one append in flight, read by the next) */
    bool broken;
};

int fl_journal_open(const char *path, struct fl_journal **out, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int rc = -errno;
        snprintf(err, errlen, "cannot open journal %s: %s", path, strerror(-rc));
        return rc;
    }
    struct fl_journal *j = calloc(1, sizeof(*j));
    char *p = strdup(path);
    if (j == NULL || p == NULL) {
        free(j);
        free(p);
        close(fd);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    j->fd = fd;
    j->path = p;
    *out = j;
    return 0;
}

void fl_journal_close(struct fl_journal **jp)
{
    struct fl_journal *j = *jp;
    if (j == NULL)
        return;
    close(j->fd);
    free(j->path);
    free(j);
    *jp = NULL;
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* All or nothing: a record that could not be written whole and fsynced is
 * taken back (the file is cut to its length before), so a full file system
 * never leaves half a record for the next one to be glued to. */
static int append_line(struct fl_journal *j, const char *line, size_t len)
{
    if (j->broken)
        return -EIO;
    struct stat st;
    if (fstat(j->fd, &st) != 0)
        return -errno;
    int rc = write_all(j->fd, line, len);
    if (rc == 0 && fdatasync(j->fd) != 0)
        rc = -errno;
    if (rc < 0) {
        if (ftruncate(j->fd, st.st_size) != 0 || fdatasync(j->fd) != 0) {
            j->broken = true;
            fl_error("journal %s: an append failed (%s) and could not be taken back: no more "
                     "faults until it is rewritten",
                     j->path, strerror(-rc));
        }
    }
    return rc;
}

int fl_journal_append(struct fl_journal *j, const json_t *record)
{
    size_t len = 0;
    int rc = 0;
    char *line = fl_journalrec_encode(record, &len, &rc);
    if (line == NULL)
        return rc;
    rc = append_line(j, line, len);
    free(line);
    return rc;
}

struct replay {
    json_t *order; /* ids in apply order */
    json_t *undos; /* id -> undo */
};

static void on_record(json_t *rec, void *arg)
{
    struct replay *r = arg;
    const char *op = json_string_value(json_object_get(rec, "op"));
    const char *id = json_string_value(json_object_get(rec, "id"));
    if (op == NULL || id == NULL)
        return;
    json_t *undo = json_object_get(rec, "undo");
    if (strcmp(op, "apply") == 0 && json_is_object(undo)) {
        if (json_object_get(r->undos, id) == NULL)
            json_array_append_new(r->order, json_string(id));
        json_object_set(r->undos, id, undo);
    } else if (strcmp(op, "update") == 0 && json_is_object(undo)) {
        if (json_object_get(r->undos, id) != NULL)
            json_object_set(r->undos, id, undo);
    } else if (strcmp(op, "revert") == 0 && json_is_true(json_object_get(rec, "ok"))) {
        json_object_del(r->undos, id);
    }
}

/* Opens the journal for reading without following a symbolic link, and
 * checks the file it opened (not the name): a regular file of ours that
 * nobody else can write. *fd is -1 for a journal that does not exist. */
static int open_checked(const char *path, int *fd, char *err, size_t errlen)
{
    *fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (*fd < 0) {
        int e = errno;
        if (e == ENOENT)
            return 0;
        if (e == ELOOP)
            snprintf(err, errlen, "journal %s is a symbolic link: refused, not read", path);
        else
            snprintf(err, errlen, "cannot read journal %s: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    const char *why = NULL;
    if (fstat(*fd, &st) != 0)
        why = strerror(errno);
    else if (!S_ISREG(st.st_mode))
        why = "not a regular file";
    else if (st.st_uid != geteuid())
        why = "owned by another user";
    else if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
        why = "writable by others";
    if (why != NULL) {
        snprintf(err, errlen, "journal %s: %s: refused, not read", path, why);
        close(*fd);
        *fd = -1;
        return -EPERM;
    }
    return 0;
}

int fl_journal_read_active(const char *path, json_t **active, char *err, size_t errlen)
{
    int fd = -1;
    int rc = open_checked(path, &fd, err, errlen);
    if (rc < 0)
        return rc;
    /* Records are checked with SHA-256: a journal with anything in it needs
     * libcrypto (loaded at first use). Without it no record could be told
     * whole, and all would be skipped as damaged -- and start-up would then
     * compact the journal to nothing, forgetting faults still applied. So
     * that is an error, and the journal is left as it is. */
    struct stat st;
    char why[384];
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0 &&
        fl_cryptolib_get(why, sizeof(why)) == NULL) {
        close(fd);
        snprintf(err, errlen, "cannot check the records of journal %s: %s", path, why);
        return -ELIBACC;
    }
    struct replay r = {json_array(), json_object()};
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (r.order == NULL || r.undos == NULL || (fd >= 0 && f == NULL)) {
        json_decref(r.order);
        json_decref(r.undos);
        if (f)
            fclose(f);
        else if (fd >= 0)
            close(fd);
        snprintf(err, errlen, "out of memory reading journal %s", path);
        return -ENOMEM;
    }
    char *line = NULL;
    size_t cap = 0, damaged = 0, damaged_lines = 0;
    long long offset = 0, first_damage = -1;
    ssize_t n;
    while (f && (n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] != '\n') {
            /* a torn last record: the write never finished, so its fault
             * was never applied (appends are all or nothing) */
            fl_warn("journal %s: a torn record of %zd byte(s) at its end, at offset %lld: "
                    "ignored (never acknowledged)",
                    path, n, offset);
            break;
        }
        size_t skipped = fl_journalrec_scan(line, (size_t)n - 1, on_record, &r);
        if (skipped > 0) {
            damaged += skipped;
            damaged_lines++;
            if (first_damage < 0)
                first_damage = offset;
        }
        offset += n;
    }
    free(line);
    if (f)
        fclose(f);
    if (damaged > 0)
        fl_error("journal %s: %zu damaged byte(s) in %zu line(s), the first at offset %lld: "
                 "skipped; every whole record after them was read",
                 path, damaged, damaged_lines, first_damage);

    json_t *out = json_array();
    size_t i;
    json_t *idv;
    json_array_foreach(r.order, i, idv)
    {
        json_t *undo = json_object_get(r.undos, json_string_value(idv));
        if (undo != NULL)
            json_array_append(out, undo);
    }
    json_decref(r.order);
    json_decref(r.undos);
    *active = out;
    return 0;
}

int fl_journal_compact(struct fl_journal *j, const json_t *keep_undos, char *err, size_t errlen)
{
    /* an append in flight would write to the file being replaced, and be lost */
    assert(!j->in_flight && j->queue_head == NULL);
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s.new", j->path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int rc = -errno;
        snprintf(err, errlen, "cannot compact journal: %s: %s", tmp, strerror(-rc));
        return rc;
    }
    int rc = 0;
    size_t i;
    json_t *undo;
    json_array_foreach(keep_undos, i, undo)
    {
        const char *id = json_string_value(json_object_get(undo, "id"));
        json_t *rec = fl_journal_apply_record(id ? id : "?", undo);
        size_t len = 0;
        char *line = rec ? fl_journalrec_encode(rec, &len, &rc) : NULL;
        json_decref(rec);
        if (line == NULL) {
            rc = rc < 0 ? rc : -ENOMEM;
            break;
        }
        rc = write_all(fd, line, len);
        free(line);
        if (rc < 0)
            break;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno; /* saved before close can change errno */
    close(fd);
    if (rc == 0 && rename(tmp, j->path) != 0)
        rc = -errno;
    if (rc < 0) {
        unlink(tmp);
        snprintf(err, errlen, "cannot compact journal %s: %s", j->path, strerror(-rc));
        return rc;
    }
    /* the rename must reach the disk too */
    char dirbuf[PATH_MAX];
    snprintf(dirbuf, sizeof(dirbuf), "%s", j->path);
    int dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    /* keep appending to the new file */
    int nfd = open(j->path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    if (nfd < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot reopen journal %s: %s", j->path, strerror(-rc));
        return rc;
    }
    close(j->fd);
    j->fd = nfd;
    j->broken = false; /* rewritten whole */
    return 0;
}

int fl_journal_clear(struct fl_journal *j)
{
    assert(!j->in_flight && j->queue_head == NULL);
    if (ftruncate(j->fd, 0) != 0 || fsync(j->fd) != 0)
        return -errno;
    j->broken = false;
    return 0;
}

/* ---------------------------------------------------------------- async */

static void start_next(struct fl_journal *j);

static void work_append(uv_work_t *w)
{
    struct job *job = w->data;
    job->status = append_line(job->j, job->line, job->len);
}

static void after_append(uv_work_t *w, int status)
{
    struct job *job = w->data;
    struct fl_journal *j = job->j;
    j->in_flight = 0;
    job->cb(status < 0 ? status : job->status, job->arg);
    free(job->line);
    free(job);
    start_next(j);
}

static void start_next(struct fl_journal *j)
{
    if (j->in_flight || j->queue_head == NULL)
        return;
    struct job *job = j->queue_head;
    j->queue_head = job->next;
    if (j->queue_head == NULL)
        j->queue_tail = NULL;
    j->in_flight = 1;
    int rc = uv_queue_work(j->loop, &job->work, work_append, after_append);
    if (rc < 0) {
        job->status = rc;
        after_append(&job->work, rc);
    }
}

int fl_journal_append_async(struct fl_journal *j, uv_loop_t *loop, json_t *record, fl_journal_cb cb,
                            void *arg)
{
    struct job *job = calloc(1, sizeof(*job));
    if (job == NULL)
        return -ENOMEM;
    int rc = 0;
    job->line = fl_journalrec_encode(record, &job->len, &rc);
    if (job->line == NULL) {
        free(job);
        return rc;
    }
    job->j = j;
    job->cb = cb;
    job->arg = arg;
    job->work.data = job;
    j->loop = loop;
    if (j->queue_tail)
        j->queue_tail->next = job;
    else
        j->queue_head = job;
    j->queue_tail = job;
    start_next(j);
    return 0;
}

/* ---------------------------------------------------------------- records */

json_t *fl_journal_apply_record(const char *id, const json_t *undo)
{
    return json_pack("{s:s,s:s,s:I,s:O}", "op", "apply", "id", id, "at", (json_int_t)fl_now_ms(),
                     "undo", undo);
}

json_t *fl_journal_update_record(const char *id, const json_t *undo)
{
    return json_pack("{s:s,s:s,s:O}", "op", "update", "id", id, "undo", undo);
}

json_t *fl_journal_revert_record(const char *id, int ok, const char *error)
{
    json_t *r = json_pack("{s:s,s:s,s:I,s:b}", "op", "revert", "id", id, "at",
                          (json_int_t)fl_now_ms(), "ok", ok);
    if (r && error)
        json_object_set_new(r, "error", json_string(error));
    return r;
}
