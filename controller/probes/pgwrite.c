/* PostgreSQL write client: non-blocking libpq on the libuv loop (pgwrite.h).
 *
 * The connection, one operation at a time:
 *
 *   NONE ──op──► CONNECTING ──OK──► SETUP (CREATE TABLE IF NOT EXISTS)
 *                    │                  │ done
 *                    │ failed           ▼
 *                    │       IDLE ──op──► QUERY ──done──► IDLE
 *                    ▼         any error or timeout: dropped ──► NONE
 *                  NONE
 *
 * The uv_poll watches PQsocket. libpq may close that socket inside
 * PQconnectPoll (a multi-host DSN moving to its next host) or PQconsumeInput
 * (the server hung up), and may open a new one with the same number; libuv
 * must never watch a descriptor that was closed under it. So every poll
 * callback stops the poll before calling libpq, and afterwards the handle is
 * restarted on the same socket, or closed (while nothing of ours is open
 * under its old number) and replaced by one on the new socket. */
#include "controller/probes/pgwrite.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"

enum conn_state {
    C_NONE,
    C_CONNECTING,
    C_SETUP,
    C_IDLE,
    C_QUERY,
};

enum op_kind {
    OP_NONE,
    OP_WRITE,
    OP_READBACK,
};

struct fl_pgwrite {
    uv_loop_t *loop;
    char *dsn;
    char run_id[FL_PGWRITE_RUN_ID_MAX + 1];
    char sql_create[256];
    char sql_insert[256];
    char sql_select[256];

    PGconn *conn;
    enum conn_state cs;
    uv_poll_t *poll; /* on poll_fd; NULL when not watching */
    int poll_fd;
    uv_timer_t timer; /* the operation's deadline */
    uv_timer_t kick;  /* starts the operation on the next loop iteration */

    enum op_kind op;
    uint64_t timeout_ms;
    char seq_text[24];
    char at_text[24];
    fl_pgwrite_cb wcb;
    fl_pgwrite_readback_cb rcb;
    void *arg;
    char detail[256]; /* first error seen in the current query */
    bool res_error;
    uint64_t *seqs;
    size_t n_seqs;

    bool closing;
    int handles; /* open handles (the timer and poll handles, closing or not) */
    void (*closed)(void *arg);
    void *closed_arg;
};

static void on_poll(uv_poll_t *h, int status, int events);

static void free_if_done(struct fl_pgwrite *w)
{
    if (!w->closing || w->handles > 0)
        return;
    void (*closed)(void *) = w->closed;
    void *arg = w->closed_arg;
    free(w->dsn);
    free(w->seqs);
    free(w);
    if (closed != NULL)
        closed(arg);
}

static void on_poll_closed(uv_handle_t *h)
{
    struct fl_pgwrite *w = h->data;
    free(h);
    w->handles--;
    free_if_done(w);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct fl_pgwrite *w = h->data;
    w->handles--;
    free_if_done(w);
}

/* The first line of a libpq message, without its trailing newline. */
static void first_line(char *dst, size_t cap, const char *prefix, const char *msg)
{
    if (msg == NULL || *msg == '\0')
        msg = "(no message)";
    size_t n = strcspn(msg, "\n");
    snprintf(dst, cap, "%s%.*s", prefix, (int)n, msg);
}

static void stop_watching(struct fl_pgwrite *w)
{
    if (w->poll == NULL)
        return;
    uv_poll_stop(w->poll);
    uv_close((uv_handle_t *)w->poll, on_poll_closed);
    w->poll = NULL;
}

/* Closes the connection; the next operation opens a new one. The poll is
 * closed first, while its descriptor is still libpq's open socket. */
static void drop_conn(struct fl_pgwrite *w)
{
    stop_watching(w);
    if (w->conn != NULL)
        PQfinish(w->conn);
    w->conn = NULL;
    w->cs = C_NONE;
}

/* Ends the current operation and calls its callback last: the callback may
 * close w. */
static void finish(struct fl_pgwrite *w, bool ok, const char *detail)
{
    assert(w->op != OP_NONE);
    uv_timer_stop(&w->timer);
    uv_timer_stop(&w->kick);
    enum op_kind op = w->op;
    w->op = OP_NONE;
    if (!ok && w->cs != C_IDLE)
        drop_conn(w);
    uint64_t now = fl_now_ms();
    void *arg = w->arg;
    if (op == OP_WRITE) {
        fl_pgwrite_cb cb = w->wcb;
        cb(arg, ok, ok ? now : 0, detail);
        return;
    }
    fl_pgwrite_readback_cb cb = w->rcb;
    uint64_t *seqs = w->seqs;
    size_t n = w->n_seqs;
    w->seqs = NULL;
    w->n_seqs = 0;
    if (ok)
        cb(arg, seqs, n, NULL);
    else
        cb(arg, NULL, 0, detail);
    free(seqs);
}

static void fail(struct fl_pgwrite *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct fl_pgwrite *w, const char *fmt, ...)
{
    char detail[sizeof(w->detail)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    drop_conn(w);
    finish(w, false, detail);
}

/* Watches the connection's current socket for events (UV_READABLE and/or
 * UV_WRITABLE). Returns 0 or fails the operation and returns -1. */
static int watch(struct fl_pgwrite *w, int events)
{
    int fd = PQsocket(w->conn);
    if (w->poll != NULL && w->poll_fd != fd)
        stop_watching(w); /* libpq moved to another socket */
    if (fd < 0) {
        fail(w, "connection has no socket: %s", PQerrorMessage(w->conn));
        return -1;
    }
    if (w->poll == NULL) {
        uv_poll_t *p = malloc(sizeof(*p));
        if (p == NULL) {
            fail(w, "out of memory");
            return -1;
        }
        int rc = uv_poll_init(w->loop, p, fd);
        if (rc < 0) {
            free(p);
            fail(w, "cannot watch the connection's socket: %s", uv_strerror(rc));
            return -1;
        }
        p->data = w;
        w->handles++;
        w->poll = p;
        w->poll_fd = fd;
    }
    int rc = uv_poll_start(w->poll, events, on_poll);
    if (rc < 0) {
        fail(w, "cannot watch the connection's socket: %s", uv_strerror(rc));
        return -1;
    }
    return 0;
}

/* Sends a query (with this write's parameters for the INSERT, the run id for
 * the SELECT) and flushes what it can. */
static void send_query(struct fl_pgwrite *w, const char *sql, int n_params)
{
    const char *values[3] = {w->run_id, w->seq_text, w->at_text};
    w->res_error = false;
    w->detail[0] = '\0';
    int ok = n_params > 0 ? PQsendQueryParams(w->conn, sql, n_params, NULL, values, NULL, NULL, 0)
                          : PQsendQuery(w->conn, sql);
    if (!ok) {
        char d[sizeof(w->detail)];
        first_line(d, sizeof(d), "send: ", PQerrorMessage(w->conn));
        fail(w, "%s", d);
        return;
    }
    int f = PQflush(w->conn);
    if (f < 0) {
        char d[sizeof(w->detail)];
        first_line(d, sizeof(d), "send: ", PQerrorMessage(w->conn));
        fail(w, "%s", d);
        return;
    }
    watch(w, UV_READABLE | (f == 1 ? UV_WRITABLE : 0));
}

static void send_op(struct fl_pgwrite *w)
{
    w->cs = C_QUERY;
    if (w->op == OP_WRITE)
        send_query(w, w->sql_insert, 3);
    else
        send_query(w, w->sql_select, 1);
}

static void take_result(struct fl_pgwrite *w, PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        if (!w->res_error)
            first_line(w->detail, sizeof(w->detail), "", PQresultErrorMessage(r));
        w->res_error = true;
        return;
    }
    if (w->cs != C_QUERY || w->op != OP_READBACK || st != PGRES_TUPLES_OK)
        return;
    int n = PQntuples(r);
    if (n < 0 || (size_t)n > FL_PGWRITE_READBACK_MAX) {
        snprintf(w->detail, sizeof(w->detail),
                 "read-back: %d records, more than FL_PGWRITE_READBACK_MAX (%d)", n,
                 FL_PGWRITE_READBACK_MAX);
        w->res_error = true;
        return;
    }
    free(w->seqs);
    w->seqs = malloc(((size_t)n + 1) * sizeof(*w->seqs));
    w->n_seqs = 0;
    if (w->seqs == NULL) {
        snprintf(w->detail, sizeof(w->detail), "read-back: out of memory");
        w->res_error = true;
        return;
    }
    for (int i = 0; i < n; i++) {
        const char *v = PQgetvalue(r, i, 0);
        char *end = NULL;
        errno = 0;
        unsigned long long seq = strtoull(v, &end, 10);
        if (errno != 0 || end == v || *end != '\0' || *v == '-') {
            snprintf(w->detail, sizeof(w->detail), "read-back: seq \"%.40s\" is not a number", v);
            w->res_error = true;
            return;
        }
        w->seqs[w->n_seqs++] = seq;
    }
}

/* Every result of the query in flight has arrived. */
static void query_done(struct fl_pgwrite *w)
{
    if (w->res_error) {
        char d[sizeof(w->detail)];
        memcpy(d, w->detail, sizeof(d));
        fail(w, "%s%s", w->cs == C_SETUP ? "create table: " : "", d);
        return;
    }
    if (w->cs == C_SETUP) {
        send_op(w);
        return;
    }
    w->cs = C_IDLE;
    finish(w, true, w->op == OP_WRITE ? "committed" : "read back");
}

static void step_query(struct fl_pgwrite *w, int events)
{
    int f = 0;
    if (events & UV_WRITABLE) {
        f = PQflush(w->conn);
        if (f < 0) {
            char d[sizeof(w->detail)];
            first_line(d, sizeof(d), "", PQerrorMessage(w->conn));
            fail(w, "%s", d);
            return;
        }
    }
    if (events & (UV_READABLE | UV_DISCONNECT)) {
        if (!PQconsumeInput(w->conn)) {
            char d[sizeof(w->detail)];
            first_line(d, sizeof(d), "", PQerrorMessage(w->conn));
            fail(w, "%s", d);
            return;
        }
    }
    while (!PQisBusy(w->conn)) {
        PGresult *r = PQgetResult(w->conn);
        if (r == NULL) {
            query_done(w);
            return;
        }
        take_result(w, r);
        PQclear(r);
    }
    if (PQstatus(w->conn) == CONNECTION_BAD) {
        char d[sizeof(w->detail)];
        first_line(d, sizeof(d), "", PQerrorMessage(w->conn));
        fail(w, "%s", d);
        return;
    }
    watch(w, UV_READABLE | (f == 1 ? UV_WRITABLE : 0));
}

static void step_connect(struct fl_pgwrite *w)
{
    switch (PQconnectPoll(w->conn)) {
    case PGRES_POLLING_OK:
        w->cs = C_SETUP;
        send_query(w, w->sql_create, 0);
        return;
    case PGRES_POLLING_READING:
        watch(w, UV_READABLE);
        return;
    case PGRES_POLLING_WRITING:
        watch(w, UV_WRITABLE);
        return;
    case PGRES_POLLING_FAILED:
    default: {
        char d[sizeof(w->detail)];
        first_line(d, sizeof(d), "connect: ", PQerrorMessage(w->conn));
        fail(w, "%s", d);
        return;
    }
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct fl_pgwrite *w = h->data;
    /* before libpq can close the descriptor under the poll */
    uv_poll_stop(h);
    if (w->op == OP_NONE || h != w->poll)
        return;
    /* An error event on the socket (POLLERR) is what uv_poll reports as
     * UV_EBADF: a TCP connect refused or reset. It is libpq's to read
     * (SO_ERROR, or the failed recv): a multi-host DSN then moves on to its
     * next host; failing here would never let it. */
    if (status == UV_EBADF)
        events = UV_READABLE | UV_WRITABLE | UV_DISCONNECT;
    else if (status < 0) {
        fail(w, "connection socket: %s", uv_strerror(status));
        return;
    }
    if (w->cs == C_CONNECTING)
        step_connect(w);
    else
        step_query(w, events);
}

static void on_timer(uv_timer_t *t)
{
    struct fl_pgwrite *w = t->data;
    if (w->op == OP_NONE)
        return;
    fail(w, "timeout after %" PRIu64 " ms", w->timeout_ms);
}

static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Starts the operation set up in w, on the loop iteration after the caller's
 * call (so that no callback ever runs inside it): on the open connection, or
 * by opening one. */
static void on_kick(uv_timer_t *t)
{
    struct fl_pgwrite *w = t->data;
    if (w->op == OP_NONE)
        return;
    if (w->cs == C_IDLE) {
        send_op(w);
        return;
    }
    assert(w->cs == C_NONE);
    w->conn = PQconnectStart(w->dsn);
    if (w->conn == NULL) {
        fail(w, "connect: out of memory");
        return;
    }
    if (PQstatus(w->conn) == CONNECTION_BAD) {
        char d[sizeof(w->detail)];
        first_line(d, sizeof(d), "connect: ", PQerrorMessage(w->conn));
        fail(w, "%s", d);
        return;
    }
    PQsetNoticeProcessor(w->conn, ignore_notice, NULL);
    PQsetnonblocking(w->conn, 1);
    w->cs = C_CONNECTING;
    /* "just after PQconnectStart, behave as if it last returned
     * PGRES_POLLING_WRITING" (libpq's documentation) */
    watch(w, UV_WRITABLE);
}

static void start_op(struct fl_pgwrite *w)
{
    uv_update_time(w->loop); /* the deadline counts from this call */
    uv_timer_start(&w->timer, on_timer, w->timeout_ms, 0);
    uv_timer_start(&w->kick, on_kick, 0, 0);
}

static bool numeric_host(const char *h, size_t len)
{
    char buf[64];
    if (len == 0 || h[0] == '/' || h[0] == '@')
        return true; /* the default or a socket directory */
    if (len >= sizeof(buf))
        return false;
    memcpy(buf, h, len);
    buf[len] = '\0';
    unsigned char addr[16];
    return inet_pton(AF_INET, buf, addr) == 1 || inet_pton(AF_INET6, buf, addr) == 1;
}

static int check_dsn(const char *dsn, char *err, size_t err_len)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &msg);
    if (opts == NULL) {
        char d[256];
        first_line(d, sizeof(d), "", msg != NULL ? msg : "out of memory");
        snprintf(err, err_len, "postgres dsn: %s", d);
        PQfreemem(msg);
        return msg != NULL ? -EINVAL : -ENOMEM;
    }
    const char *host = NULL, *hostaddr = NULL;
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "hostaddr") == 0)
            hostaddr = o->val;
    }
    int rc = 0;
    if ((hostaddr == NULL || *hostaddr == '\0') && host != NULL) {
        for (const char *p = host;;) {
            size_t n = strcspn(p, ",");
            if (!numeric_host(p, n)) {
                snprintf(err, err_len,
                         "postgres dsn: host \"%.*s\" is a name; give a numeric address (host= "
                         "or hostaddr=): libpq would resolve it with a blocking lookup",
                         (int)(n < 64 ? n : 64), p);
                rc = -EINVAL;
                break;
            }
            if (p[n] == '\0')
                break;
            p += n + 1;
        }
    }
    PQconninfoFree(opts);
    return rc;
}

static bool valid_table(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > FL_PGWRITE_TABLE_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!letter && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

int fl_pgwrite_create(uv_loop_t *loop, const char *dsn, const char *table, const char *run_id,
                      struct fl_pgwrite **out, char *err, size_t err_len)
{
    if (loop == NULL || dsn == NULL || run_id == NULL || out == NULL || err == NULL) {
        if (err != NULL)
            snprintf(err, err_len, "postgres write client: missing argument");
        return -EINVAL;
    }
    if (table == NULL)
        table = FL_PGWRITE_DEFAULT_TABLE;
    if (!valid_table(table)) {
        snprintf(err, err_len,
                 "postgres table \"%.64s\": give a plain identifier ([A-Za-z_][A-Za-z0-9_]*, at "
                 "most %d bytes)",
                 table, FL_PGWRITE_TABLE_MAX);
        return -EINVAL;
    }
    size_t rl = strlen(run_id);
    if (rl == 0 || rl > FL_PGWRITE_RUN_ID_MAX) {
        snprintf(err, err_len, "run id: 1 to %d bytes (FL_PGWRITE_RUN_ID_MAX)",
                 FL_PGWRITE_RUN_ID_MAX);
        return -EINVAL;
    }
    int rc = check_dsn(dsn, err, err_len);
    if (rc < 0)
        return rc;
    struct fl_pgwrite *w = calloc(1, sizeof(*w));
    if (w == NULL || (w->dsn = strdup(dsn)) == NULL) {
        free(w);
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    w->loop = loop;
    memcpy(w->run_id, run_id, rl + 1);
    snprintf(w->sql_create, sizeof(w->sql_create),
             "CREATE TABLE IF NOT EXISTS %s (run_id text NOT NULL, seq bigint NOT NULL, "
             "written_at bigint NOT NULL, PRIMARY KEY (run_id, seq))",
             table);
    snprintf(w->sql_insert, sizeof(w->sql_insert),
             "INSERT INTO %s (run_id, seq, written_at) VALUES ($1, $2, $3)", table);
    snprintf(w->sql_select, sizeof(w->sql_select),
             "SELECT seq FROM %s WHERE run_id = $1 ORDER BY seq", table);
    uv_timer_init(loop, &w->timer);
    w->timer.data = w;
    uv_timer_init(loop, &w->kick);
    w->kick.data = w;
    w->handles = 2;
    *out = w;
    return 0;
}

int fl_pgwrite_write(struct fl_pgwrite *w, uint64_t seq, uint64_t controller_ms,
                     uint64_t timeout_ms, fl_pgwrite_cb cb, void *arg)
{
    if (w == NULL || cb == NULL || timeout_ms == 0 || w->closing)
        return -EINVAL;
    if (w->op != OP_NONE)
        return -EBUSY;
    if (seq > INT64_MAX || controller_ms > INT64_MAX)
        return -EINVAL; /* bigint columns */
    w->op = OP_WRITE;
    w->wcb = cb;
    w->arg = arg;
    w->timeout_ms = timeout_ms;
    snprintf(w->seq_text, sizeof(w->seq_text), "%" PRIu64, seq);
    snprintf(w->at_text, sizeof(w->at_text), "%" PRIu64, controller_ms);
    start_op(w);
    return 0;
}

int fl_pgwrite_readback(struct fl_pgwrite *w, uint64_t timeout_ms, fl_pgwrite_readback_cb cb,
                        void *arg)
{
    if (w == NULL || cb == NULL || timeout_ms == 0 || w->closing)
        return -EINVAL;
    if (w->op != OP_NONE)
        return -EBUSY;
    w->op = OP_READBACK;
    w->rcb = cb;
    w->arg = arg;
    w->timeout_ms = timeout_ms;
    start_op(w);
    return 0;
}

void fl_pgwrite_close(struct fl_pgwrite *w, void (*closed)(void *arg), void *arg)
{
    if (w == NULL || w->closing)
        return;
    w->closing = true;
    w->closed = closed;
    w->closed_arg = arg;
    w->op = OP_NONE; /* its callback is never called */
    drop_conn(w);
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, on_timer_closed);
    uv_close((uv_handle_t *)&w->kick, on_timer_closed);
}
