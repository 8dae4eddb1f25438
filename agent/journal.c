#include "agent/journal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"

struct job {
    uv_work_t work;
    struct fl_journal *j;
    char *line;
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

static char *record_line(const json_t *record)
{
    char *text = json_dumps(record, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL)
        return NULL;
    size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (line == NULL) {
        free(text);
        return NULL;
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    return line;
}

static int append_line(int fd, const char *line)
{
    int rc = write_all(fd, line, strlen(line));
    if (rc == 0 && fdatasync(fd) != 0)
        rc = -errno;
    return rc;
}

int fl_journal_append(struct fl_journal *j, const json_t *record)
{
    char *line = record_line(record);
    if (line == NULL)
        return -ENOMEM;
    int rc = append_line(j->fd, line);
    free(line);
    return rc;
}

int fl_journal_read_active(const char *path, json_t **active, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    int open_errno = errno;
    json_t *order = json_array();  /* ids in apply order */
    json_t *undos = json_object(); /* id -> undo */
    if (order == NULL || undos == NULL) {
        json_decref(order);
        json_decref(undos);
        if (f)
            fclose(f);
        return -ENOMEM;
    }
    if (f == NULL && open_errno != ENOENT) {
        int rc = -open_errno;
        snprintf(err, errlen, "cannot read journal %s: %s", path, strerror(open_errno));
        json_decref(order);
        json_decref(undos);
        return rc;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (f && (n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] != '\n')
            break; /* torn last line: never acknowledged */
        json_t *rec = json_loads(line, 0, NULL);
        const char *op = json_string_value(json_object_get(rec, "op"));
        const char *id = json_string_value(json_object_get(rec, "id"));
        if (op == NULL || id == NULL) {
            json_decref(rec);
            continue;
        }
        json_t *undo = json_object_get(rec, "undo");
        if (strcmp(op, "apply") == 0 && json_is_object(undo)) {
            if (json_object_get(undos, id) == NULL)
                json_array_append_new(order, json_string(id));
            json_object_set(undos, id, undo);
        } else if (strcmp(op, "update") == 0 && json_is_object(undo)) {
            if (json_object_get(undos, id) != NULL)
                json_object_set(undos, id, undo);
        } else if (strcmp(op, "revert") == 0 && json_is_true(json_object_get(rec, "ok"))) {
            json_object_del(undos, id);
        }
        json_decref(rec);
    }
    free(line);
    if (f)
        fclose(f);

    json_t *out = json_array();
    size_t i;
    json_t *idv;
    json_array_foreach(order, i, idv)
    {
        json_t *undo = json_object_get(undos, json_string_value(idv));
        if (undo != NULL)
            json_array_append(out, undo);
    }
    json_decref(order);
    json_decref(undos);
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
        char *line = record_line(rec);
        json_decref(rec);
        if (line == NULL) {
            rc = -ENOMEM;
            break;
        }
        rc = write_all(fd, line, strlen(line));
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
    return 0;
}

/* ---------------------------------------------------------------- async */

static void start_next(struct fl_journal *j);

static void work_append(uv_work_t *w)
{
    struct job *job = w->data;
    job->status = append_line(job->j->fd, job->line);
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
    job->line = record_line(record);
    if (job->line == NULL) {
        free(job);
        return -ENOMEM;
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
