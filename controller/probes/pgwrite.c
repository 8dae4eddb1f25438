/* PostgreSQL write client: non-blocking libpq on the libuv loop (pgwrite.h).
 *
 * The connection, one operation at a time:
 *
 *   NONE ──op──► CONNECTING ──OK──► SETUP (CREATE TABLE IF NOT EXISTS)
 *                 │   host by host      │ done
 *                 │ every host failed   ▼
 *                 │          IDLE ──op──► QUERY ──done──► IDLE
 *                 ▼            any error or timeout of a query: dropped ──► NONE
 *               NONE
 *
 * Host by host. libpq's connect_timeout is enforced only by its blocking
 * connect (PQconnectdb: per host, the deadline starting again at each host);
 * PQconnectPoll ignores it, so an asynchronous multi-host connect whose first
 * host drops packets waits there for the kernel's TCP connect timeout (about
 * 2 min) and the next hosts are never tried in time. And libpq cannot be told
 * to skip a host. So the DSN is parsed once (PQconninfoParse, with libpq's
 * environment defaults for host, hostaddr, port, connect_timeout and
 * target_session_attrs) into its hosts, and each connection tries them in
 * order with PQconnectStartParams, one host, hostaddr and port each and every
 * other option of the DSN (target_session_attrs included: libpq refuses a
 * host in the wrong role and the next is tried). A timer gives each host
 * connect_timeout as libpq reads it (integer seconds; 1 is 2; none, 0 or
 * less: no limit but the kernel's) until libpq has the connection made (the
 * TCP connect, the startup, the role check); past it the host is dropped
 * and the next one tried.
 * prefer-standby takes libpq's two passes: standby, then any.
 *
 * The connection attempt belongs to the client, not to an operation. An
 * operation that times out while the connection is being made fails (a real
 * request would still be waiting), and the attempt goes on: the next
 * operation finds it further on, or open, as an application's connection
 * pool does (a request's deadline does not cancel the pool's connect) and as
 * a blocking client does (its connect runs to its end whatever its caller's
 * patience). Restarting from the first host at each operation would give a
 * silent first host the whole of every operation's timeout, and a client
 * whose timeout is shorter than connect_timeout would never reach the second
 * host: an outage the service does not have. A query that times out on an
 * open connection drops it (its reply could still come); the next operation
 * opens a new one, from the first host, as libpq does. But a connection
 * made during the operation that times out is not judged by it: that
 * operation may have had a millisecond of its time left for its query, and
 * dropping the connection would send the next one back to a silent first
 * host for another connect_timeout. Its query (our CREATE TABLE, or its
 * INSERT or SELECT, whose result is then discarded: a write that commits
 * so is "in doubt", never acknowledged) runs on, and the next operation
 * waits for it; a connection made before the operation began is dropped at
 * its timeout.
 *
 * The uv_poll watches PQsocket. libpq may close that socket inside
 * PQconnectPoll (SSL or GSS refused, retried without) or PQconsumeInput (the
 * server hung up), and may open a new one with the same number; a host
 * dropped closes it too. libuv must never watch a descriptor that was closed
 * under it. So every poll callback stops the poll before calling libpq, and
 * afterwards the handle is restarted on the same socket, or closed (while
 * nothing of ours is open under its old number) and replaced by one on the
 * new socket; a host is dropped with its poll closed before PQfinish. */
#include "controller/probes/pgwrite.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <limits.h>
#include <pg_config.h>        /* DEF_PGPORT_STR: libpq's port for an empty entry */
#include <pg_config_manual.h> /* DEFAULT_PGSOCKET_DIR: its host for one */
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

/* One host of the DSN; NULL: left to libpq's default. */
struct target {
    const char *host, *hostaddr, *port;
    char label[96]; /* "10.0.0.1:5432", for messages */
};

/* The DSN, parsed once (parse_dsn). */
struct dsn {
    PQconninfoOption *opts; /* the DSN's own options; kw and val point into it */
    char *lists;            /* host, hostaddr and port lists, split in place */
    char *tsa;              /* target_session_attrs in effect, or NULL */
    struct target *targets;
    size_t n_targets;
    unsigned connect_timeout_s; /* per host; 0: no limit */
    bool prefer_standby;        /* libpq's two passes: standby, then any */
    /* every other option the DSN sets, then room for one host's host,
     * hostaddr, port and target_session_attrs, then NULL */
    const char **kw, **val;
    size_t n_kw;
};

struct fl_pgwrite {
    uv_loop_t *loop;
    struct dsn dsn;
    char run_id[FL_PGWRITE_RUN_ID_MAX + 1];
    char sql_create[256];
    char sql_insert[256];
    char sql_select[256];

    PGconn *conn;
    enum conn_state cs;
    size_t host;          /* CONNECTING, SETUP: the target being tried */
    uint64_t made_ms;     /* when libpq had the connection made (monotonic) */
    uint64_t op_start_ms; /* when the operation was called (monotonic) */
    bool orphan;          /* QUERY: a timed-out operation's query, its result discarded */
    int pass;             /* 1: prefer-standby's second pass */
    char why[256];        /* why the hosts tried so far failed */
    uv_poll_t *poll;      /* on poll_fd; NULL when not watching */
    int poll_fd;
    uv_timer_t timer;    /* the operation's deadline */
    uv_timer_t kick;     /* starts the operation on the next loop iteration */
    uv_timer_t host_end; /* the host's connect_timeout */

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
    int handles; /* open handles (the timers and the poll, closing or not) */
    void (*closed)(void *arg);
    void *closed_arg;
};

static void on_poll(uv_poll_t *h, int status, int events);
static void connect_from(struct fl_pgwrite *w);
static void open_for_op(struct fl_pgwrite *w);

static void dsn_free(struct dsn *d)
{
    if (d->opts != NULL)
        PQconninfoFree(d->opts);
    free(d->lists);
    free(d->tsa);
    free(d->targets);
    free(d->kw);
    free(d->val);
    memset(d, 0, sizeof(*d));
}

static void free_if_done(struct fl_pgwrite *w)
{
    if (!w->closing || w->handles > 0)
        return;
    void (*closed)(void *) = w->closed;
    void *arg = w->closed_arg;
    dsn_free(&w->dsn);
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

/* Closes the connection (or the attempt); the next operation opens a new
 * one. The poll is closed first, while its descriptor is still libpq's open
 * socket. */
static void drop_conn(struct fl_pgwrite *w)
{
    stop_watching(w);
    uv_timer_stop(&w->host_end);
    if (w->conn != NULL)
        PQfinish(w->conn);
    w->conn = NULL;
    w->cs = C_NONE;
    w->orphan = false;
}

/* Ends the current operation and calls its callback last: the callback may
 * close w. The connection is left as it is. */
static void finish(struct fl_pgwrite *w, bool ok, const char *detail)
{
    assert(w->op != OP_NONE);
    uv_timer_stop(&w->timer);
    uv_timer_stop(&w->kick);
    enum op_kind op = w->op;
    w->op = OP_NONE;
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

/* Drops the connection and fails the operation, if one is waiting. */
static void fail(struct fl_pgwrite *w, const char *fmt, ...)
{
    char detail[sizeof(w->detail)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    drop_conn(w);
    if (w->op != OP_NONE)
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
    w->orphan = false;
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
    if (w->cs != C_QUERY || w->orphan || w->op != OP_READBACK || st != PGRES_TUPLES_OK)
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
    if (w->orphan) {
        /* a timed-out operation's: the next one, if any, goes on */
        bool ok = !w->res_error;
        if (ok) {
            w->orphan = false;
            w->cs = C_IDLE;
        } else {
            drop_conn(w);
        }
        if (w->op != OP_NONE && ok)
            send_op(w);
        else if (w->op != OP_NONE)
            open_for_op(w);
        return;
    }
    if (w->res_error) {
        char d[sizeof(w->detail)];
        memcpy(d, w->detail, sizeof(d));
        fail(w, "%s%s", w->cs == C_SETUP ? "create table: " : "", d);
        return;
    }
    if (w->cs == C_SETUP) {
        if (w->op != OP_NONE)
            send_op(w);
        else
            w->cs = C_IDLE;
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

/* The host being tried failed (why: one line): its connection is dropped
 * and the next host tried. */
static void host_failed(struct fl_pgwrite *w, const char *why)
{
    size_t n = strlen(w->why);
    snprintf(w->why + n, sizeof(w->why) - n, "%s%s", n > 0 ? "; " : "", why);
    drop_conn(w);
    w->host++;
    connect_from(w);
}

static void on_host_end(uv_timer_t *t)
{
    struct fl_pgwrite *w = t->data;
    if (w->cs != C_CONNECTING)
        return;
    char why[160];
    snprintf(why, sizeof(why), "%s: not connected within connect_timeout (%u s)",
             w->dsn.targets[w->host].label, w->dsn.connect_timeout_s);
    host_failed(w, why);
}

static void step_connect(struct fl_pgwrite *w)
{
    switch (PQconnectPoll(w->conn)) {
    case PGRES_POLLING_OK:
        /* made: libpq's connect_timeout is behind it */
        uv_timer_stop(&w->host_end);
        w->cs = C_SETUP;
        w->made_ms = fl_mono_ms();
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
        first_line(d, sizeof(d), "", PQerrorMessage(w->conn));
        host_failed(w, d);
        return;
    }
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct fl_pgwrite *w = h->data;
    /* before libpq can close the descriptor under the poll */
    uv_poll_stop(h);
    if (h != w->poll || (w->cs != C_CONNECTING && w->cs != C_SETUP && w->cs != C_QUERY))
        return;
    /* An error event on the socket (POLLERR) is what uv_poll reports as
     * UV_EBADF: a TCP connect refused or reset. It is libpq's to read
     * (SO_ERROR, or the failed recv): failing here would never let a
     * connection attempt move on to the next host. */
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
    /* made during this operation: not judged by its timeout (the header
     * comment) */
    bool fresh = (w->cs == C_SETUP || w->cs == C_QUERY) && w->made_ms >= w->op_start_ms;
    if (w->cs == C_QUERY && fresh) {
        char d[64];
        snprintf(d, sizeof(d), "timeout after %" PRIu64 " ms", w->timeout_ms);
        w->orphan = true;
        finish(w, false, d);
        return;
    }
    if (w->cs == C_CONNECTING || (w->cs == C_SETUP && fresh)) {
        /* the attempt goes on for the next operation (the header comment) */
        char d[sizeof(w->detail)];
        snprintf(d, sizeof(d), "timeout after %" PRIu64 " ms, connecting to %s (host %zu of %zu)",
                 w->timeout_ms, w->dsn.targets[w->host].label, w->host + 1, w->dsn.n_targets);
        finish(w, false, d);
        return;
    }
    fail(w, "timeout after %" PRIu64 " ms", w->timeout_ms);
}

static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Starts connecting to target w->host alone, with the DSN's other options.
 * 0: under way; 1: refused at once (noted in w->why); -1: failed (the
 * operation too). */
static int open_host(struct fl_pgwrite *w)
{
    struct dsn *d = &w->dsn;
    const struct target *t = &d->targets[w->host];
    size_t k = d->n_kw;
    if (t->host != NULL) {
        d->kw[k] = "host";
        d->val[k++] = t->host;
    }
    if (t->hostaddr != NULL) {
        d->kw[k] = "hostaddr";
        d->val[k++] = t->hostaddr;
    }
    if (t->port != NULL) {
        d->kw[k] = "port";
        d->val[k++] = t->port;
    }
    if (d->tsa != NULL) {
        d->kw[k] = "target_session_attrs";
        d->val[k++] = !d->prefer_standby ? d->tsa : w->pass == 0 ? "standby" : "any";
    }
    d->kw[k] = NULL;
    d->val[k] = NULL;
    w->conn = PQconnectStartParams(d->kw, d->val, 0);
    if (w->conn == NULL) {
        fail(w, "connect: out of memory");
        return -1;
    }
    if (PQstatus(w->conn) == CONNECTION_BAD) {
        char why[sizeof(w->detail)];
        first_line(why, sizeof(why), "", PQerrorMessage(w->conn));
        PQfinish(w->conn);
        w->conn = NULL;
        size_t n = strlen(w->why);
        snprintf(w->why + n, sizeof(w->why) - n, "%s%s", n > 0 ? "; " : "", why);
        return 1;
    }
    PQsetNoticeProcessor(w->conn, ignore_notice, NULL);
    PQsetnonblocking(w->conn, 1);
    w->cs = C_CONNECTING;
    if (d->connect_timeout_s > 0) {
        uv_update_time(w->loop); /* the host's time counts from now, never less */
        uv_timer_start(&w->host_end, on_host_end, (uint64_t)d->connect_timeout_s * 1000, 0);
    }
    /* "just after PQconnectStart, behave as if it last returned
     * PGRES_POLLING_WRITING" (libpq's documentation) */
    return watch(w, UV_WRITABLE) == 0 ? 0 : -1;
}

/* Connects to target w->host, or the first after it that can be started;
 * every host tried: the connection failed. */
static void connect_from(struct fl_pgwrite *w)
{
    for (;;) {
        if (w->host == w->dsn.n_targets && w->dsn.prefer_standby && w->pass == 0) {
            w->pass = 1;
            w->host = 0;
        }
        if (w->host == w->dsn.n_targets) {
            char why[sizeof(w->why)];
            memcpy(why, w->why, sizeof(why));
            fail(w, "connect: %s", why);
            return;
        }
        int rc = open_host(w);
        if (rc <= 0)
            return;
        w->host++;
    }
}

/* A new connection, from the first host. */
static void open_for_op(struct fl_pgwrite *w)
{
    w->host = 0;
    w->pass = 0;
    w->why[0] = '\0';
    connect_from(w);
}

/* Starts the operation set up in w, on the loop iteration after the caller's
 * call (so that no callback ever runs inside it): on the open connection, by
 * waiting for the one being made, or by opening one from the first host. */
static void on_kick(uv_timer_t *t)
{
    struct fl_pgwrite *w = t->data;
    if (w->op == OP_NONE)
        return;
    switch (w->cs) {
    case C_IDLE:
        send_op(w);
        return;
    case C_NONE:
        open_for_op(w);
        return;
    case C_CONNECTING:
    case C_SETUP:
        return; /* query_done sends the operation once the table is there */
    case C_QUERY:
        assert(w->orphan);
        return; /* query_done sends the operation once the orphan's result is in */
    default:
        assert(!"unknown connection state");
    }
}

static void start_op(struct fl_pgwrite *w)
{
    uv_update_time(w->loop); /* the deadline counts from this call */
    w->op_start_ms = fl_mono_ms();
    uv_timer_start(&w->timer, on_timer, w->timeout_ms, 0);
    uv_timer_start(&w->kick, on_kick, 0, 0);
}

/* ---- the DSN */

static bool numeric_host(const char *h)
{
    unsigned char addr[16];
    if (h == NULL || h[0] == '/' || h[0] == '@')
        return true; /* the default or a socket directory */
    return inet_pton(AF_INET, h, addr) == 1 || inet_pton(AF_INET6, h, addr) == 1;
}

/* The option's value in the DSN, else libpq's default for it (its
 * environment variable, or the service file PGSERVICE names); NULL when
 * neither sets it or it is empty (libpq ignores an empty value). */
static const char *effective(const PQconninfoOption *opts, const PQconninfoOption *defs,
                             const char *key)
{
    for (const PQconninfoOption *o = opts; o->keyword != NULL; o++)
        if (strcmp(o->keyword, key) == 0 && o->val != NULL)
            return o->val[0] != '\0' ? o->val : NULL;
    for (const PQconninfoOption *o = defs; o->keyword != NULL; o++)
        if (strcmp(o->keyword, key) == 0 && o->val != NULL && o->val[0] != '\0')
            return o->val;
    return NULL;
}

static size_t list_len(const char *s)
{
    size_t n = s != NULL ? 1 : 0;
    for (; s != NULL && *s != '\0'; s++)
        n += *s == ',';
    return n;
}

/* The i-th element of a comma-separated list split in place (its commas
 * made NULs), NULL for an empty one or no list; one element: the same for
 * every i. */
static const char *list_at(const char *s, size_t len, size_t i)
{
    if (s == NULL)
        return NULL;
    if (len == 1)
        i = 0;
    while (i-- > 0)
        s += strlen(s) + 1;
    return *s != '\0' ? s : NULL;
}

/* connect_timeout as libpq 15 reads it (parse_int_param, then
 * pqConnectDBComplete): an integer, spaces after it allowed; 0 or less: no
 * limit; 1: 2 (its minimum). */
static int parse_connect_timeout(const char *v, unsigned *out, char *err, size_t err_len)
{
    *out = 0;
    if (v == NULL)
        return 0;
    char *end = NULL;
    errno = 0;
    long t = strtol(v, &end, 10);
    while (end != v && *end != '\0' && isspace((unsigned char)*end))
        end++;
    if (end == v || *end != '\0' || errno != 0 || t > INT_MAX || t < INT_MIN) {
        snprintf(err, err_len,
                 "postgres dsn: connect_timeout \"%.32s\" is not a whole number of seconds", v);
        return -EINVAL;
    }
    *out = t <= 0 ? 0 : t == 1 ? 2 : (unsigned)t;
    return 0;
}

static int parse_targets(struct dsn *d, const PQconninfoOption *defs, char *err, size_t err_len)
{
    const char *host = effective(d->opts, defs, "host");
    const char *hostaddr = effective(d->opts, defs, "hostaddr");
    const char *port = effective(d->opts, defs, "port");
    size_t nh = list_len(host), na = list_len(hostaddr), np = list_len(port);
    size_t n = na > 0 ? na : nh > 0 ? nh : 1;
    if (nh > 0 && na > 0 && nh != na) {
        snprintf(err, err_len, "postgres dsn: %zu host names for %zu hostaddr values", nh, na);
        return -EINVAL;
    }
    if (np > 1 && np != n) {
        snprintf(err, err_len, "postgres dsn: %zu port numbers for %zu hosts", np, n);
        return -EINVAL;
    }
    size_t lh = host ? strlen(host) + 1 : 0, la = hostaddr ? strlen(hostaddr) + 1 : 0,
           lp = port ? strlen(port) + 1 : 0;
    d->lists = malloc(lh + la + lp + 1);
    d->targets = calloc(n, sizeof(*d->targets));
    if (d->lists == NULL || d->targets == NULL) {
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    char *h = host ? memcpy(d->lists, host, lh) : NULL;
    char *a = hostaddr ? memcpy(d->lists + lh, hostaddr, la) : NULL;
    char *p = port ? memcpy(d->lists + lh + la, port, lp) : NULL;
    for (char *c = d->lists; c < d->lists + lh + la + lp; c++)
        if (*c == ',')
            *c = '\0';
    d->n_targets = n;
    for (size_t i = 0; i < n; i++) {
        struct target *t = &d->targets[i];
        t->host = list_at(h, nh, i);
        t->hostaddr = list_at(a, na, i);
        t->port = list_at(p, np, i);
        /* an empty entry of a list is libpq's compiled default (not the
         * environment's, which an option left out would take) */
        if (n > 1 && t->host == NULL && t->hostaddr == NULL)
            t->host = DEFAULT_PGSOCKET_DIR;
        if (np > 0 && t->port == NULL)
            t->port = DEF_PGPORT_STR;
        if (t->hostaddr == NULL && !numeric_host(t->host)) {
            snprintf(err, err_len,
                     "postgres dsn: host \"%.64s\" is a name; give a numeric address (host= "
                     "or hostaddr=): libpq would resolve it with a blocking lookup",
                     t->host);
            return -EINVAL;
        }
        const char *where = t->hostaddr ? t->hostaddr : t->host ? t->host : "(default host)";
        if (t->port != NULL)
            snprintf(t->label, sizeof(t->label), strchr(where, ':') ? "[%.64s]:%.8s" : "%.64s:%.8s",
                     where, t->port);
        else
            snprintf(t->label, sizeof(t->label), "%.64s", where);
    }
    return 0;
}

/* Every option the DSN sets but the four each host is given its own of. */
static int collect_options(struct dsn *d)
{
    static const char *const own[] = {"host", "hostaddr", "port", "target_session_attrs"};
    size_t n = 0;
    for (const PQconninfoOption *o = d->opts; o->keyword != NULL; o++)
        n++;
    d->kw = calloc(n + 5, sizeof(*d->kw));
    d->val = calloc(n + 5, sizeof(*d->val));
    if (d->kw == NULL || d->val == NULL)
        return -ENOMEM;
    for (const PQconninfoOption *o = d->opts; o->keyword != NULL; o++) {
        bool skip = o->val == NULL;
        for (size_t i = 0; i < sizeof(own) / sizeof(own[0]) && !skip; i++)
            skip = strcmp(o->keyword, own[i]) == 0;
        if (skip)
            continue;
        d->kw[d->n_kw] = o->keyword;
        d->val[d->n_kw++] = o->val;
    }
    return 0;
}

static int parse_with(struct dsn *d, const PQconninfoOption *defs, char *err, size_t err_len)
{
    for (const PQconninfoOption *o = d->opts; o->keyword != NULL; o++) {
        if (strcmp(o->keyword, "service") == 0 && o->val != NULL && o->val[0] != '\0') {
            snprintf(err, err_len,
                     "postgres dsn: service= is not supported: write the hosts, ports and "
                     "connect_timeout in the DSN (the probe times each host itself)");
            return -EINVAL;
        }
        if (strcmp(o->keyword, "load_balance_hosts") == 0 && o->val != NULL &&
            strcmp(o->val, "disable") != 0) {
            snprintf(err, err_len,
                     "postgres dsn: load_balance_hosts=%.16s is not supported: the probe tries "
                     "the hosts in their order",
                     o->val);
            return -EINVAL;
        }
    }
    int rc = parse_targets(d, defs, err, err_len);
    if (rc == 0)
        rc = parse_connect_timeout(effective(d->opts, defs, "connect_timeout"),
                                   &d->connect_timeout_s, err, err_len);
    const char *tsa = effective(d->opts, defs, "target_session_attrs");
    if (rc == 0 && tsa != NULL && (d->tsa = strdup(tsa)) == NULL)
        rc = -ENOMEM;
    d->prefer_standby = tsa != NULL && strcmp(tsa, "prefer-standby") == 0;
    if (rc == 0)
        rc = collect_options(d);
    if (rc == -ENOMEM)
        snprintf(err, err_len, "out of memory");
    return rc;
}

/* Parses the DSN into d (dsn_free frees it). 0, or -EINVAL or -ENOMEM with
 * err naming the problem. */
static int parse_dsn(const char *dsn, struct dsn *d, char *err, size_t err_len)
{
    memset(d, 0, sizeof(*d));
    char *msg = NULL;
    d->opts = PQconninfoParse(dsn, &msg);
    if (d->opts == NULL) {
        char line[256];
        first_line(line, sizeof(line), "", msg != NULL ? msg : "out of memory");
        snprintf(err, err_len, "postgres dsn: %s", line);
        int rc = msg != NULL ? -EINVAL : -ENOMEM;
        PQfreemem(msg);
        return rc;
    }
    PQconninfoOption *defs = PQconndefaults();
    if (defs == NULL) {
        dsn_free(d);
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    int rc = parse_with(d, defs, err, err_len);
    PQconninfoFree(defs);
    if (rc < 0)
        dsn_free(d);
    return rc;
}

int fl_pgwrite_check_dsn(const char *dsn, char *msg, size_t msg_len)
{
    struct dsn d;
    int rc = parse_dsn(dsn, &d, msg, msg_len);
    if (rc < 0)
        return rc;
    if (d.n_targets > 1 && d.connect_timeout_s == 0) {
        snprintf(msg, msg_len,
                 "postgres dsn: %zu hosts and no connect_timeout: a first host that drops "
                 "packets (a partition, a dead machine) holds each new connection until the "
                 "kernel gives up its TCP connect (about 2 min) before the next host is tried, "
                 "for this probe as for every libpq client with this DSN; add connect_timeout "
                 "(seconds, per host, e.g. connect_timeout=2) as the service's clients should",
                 d.n_targets);
        rc = 1;
    }
    dsn_free(&d);
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
    struct fl_pgwrite *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    int rc = parse_dsn(dsn, &w->dsn, err, err_len);
    if (rc < 0) {
        free(w);
        return rc;
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
    uv_timer_init(loop, &w->host_end);
    w->host_end.data = w;
    w->handles = 3;
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
    uv_close((uv_handle_t *)&w->host_end, on_timer_closed);
}
