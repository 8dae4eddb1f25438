#include "controller/client/client.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/conn.h"
#include "common/log.h"

/* The phase changes only in set_phase(), which checks the move against
 * `allowed` (the diagram in client.h) and logs it at debug level:
 *
 *   RESOLVING ──► CONNECTING (TCP connect, handshake) ──► READY ──► CLOSED
 *       └───────────────┴── a failure, or fl_client_close() ──────► CLOSED
 *
 * `closing` is not a phase: fl_client_close() sets it in any phase, and the
 * client then reaches CLOSED once what it started (a lookup, a connection)
 * has ended. */
enum client_phase {
    PHASE_RESOLVING,
    PHASE_CONNECTING, /* TCP connect and handshake */
    PHASE_READY,
    PHASE_CLOSED,
};

#define N_PHASES (PHASE_CLOSED + 1)

static const char *const phase_names[N_PHASES] = {
    [PHASE_RESOLVING] = "resolving",
    [PHASE_CONNECTING] = "connecting",
    [PHASE_READY] = "ready",
    [PHASE_CLOSED] = "closed",
};

/* allowed[from][to] */
static const bool allowed[N_PHASES][N_PHASES] = {
    [PHASE_RESOLVING] = {[PHASE_CONNECTING] = true, [PHASE_CLOSED] = true},
    [PHASE_CONNECTING] = {[PHASE_READY] = true, [PHASE_CLOSED] = true},
    [PHASE_READY] = {[PHASE_CLOSED] = true},
};

struct pending {
    struct pending *next;
    struct pending *prev;
    struct fl_client *client;
    uint64_t id;
    uv_timer_t timer;
    fl_reply_cb cb;
    void *arg;
};

struct fl_client {
    uv_loop_t *loop;
    uv_getaddrinfo_t gai;
    struct fl_conn *conn;
    enum client_phase phase;     /* only set_phase() changes it */
    enum client_phase failed_in; /* where the failure, if any, happened */
    bool closing;
    bool told_closed; /* ops->closed has run */
    uint64_t timeout_ms;
    uint64_t next_id;
    struct pending *pending;
    unsigned open_timers; /* request timers still closing */
    int reason;
    uint32_t agent_protocol; /* the agent's, when it is not ours */
    const struct fl_key *key;
    const struct fl_client_ops *ops;
    void *data;
    char *name;
    char host[256];
    uint16_t port;
    char where[300];
};

static void on_conn_ready(struct fl_conn *c, const Faultline__Welcome *welcome);
static void on_conn_message(struct fl_conn *c, const Faultline__Envelope *env);
static void on_conn_closed(struct fl_conn *c, int reason);

static const struct fl_conn_ops client_conn_ops = {
    .ready = on_conn_ready,
    .message = on_conn_message,
    .closed = on_conn_closed,
};

void *fl_client_data(const struct fl_client *cl)
{
    return cl->data;
}
const char *fl_client_name(const struct fl_client *cl)
{
    return cl->name;
}
const char *fl_client_where(const struct fl_client *cl)
{
    return cl->where;
}

/* The only place the phase changes. */
static void set_phase(struct fl_client *cl, enum client_phase to)
{
    assert(cl->phase < N_PHASES && to < N_PHASES);
    bool legal = allowed[cl->phase][to];
    if (!legal) /* a bug; said out loud also where asserts are compiled out */
        fl_error("internal error: client %s: no move from %s to %s", cl->name,
                 phase_names[cl->phase], phase_names[to]);
    assert(legal);
    fl_debug("client %s: %s -> %s", cl->name, phase_names[cl->phase], phase_names[to]);
    cl->phase = to;
}

/* ------------------------------------------------------------------ teardown */

static void maybe_free(struct fl_client *cl)
{
    if (cl->phase != PHASE_CLOSED || cl->open_timers > 0)
        return;
    assert(cl->pending == NULL && !cl->told_closed); /* all answered; closed runs once */
    cl->told_closed = true;
    cl->ops->closed(cl, cl->reason);
    free(cl->name);
    free(cl);
}

static void on_pending_timer_closed(uv_handle_t *h)
{
    struct pending *p = h->data;
    struct fl_client *cl = p->client;
    free(p);
    assert(cl->open_timers > 0);
    cl->open_timers--;
    maybe_free(cl);
}

/* Answers a pending request exactly once and retires it. */
static void finish_pending(struct pending *p, const Faultline__Envelope *reply, int status)
{
    struct fl_client *cl = p->client;
    if (p->prev)
        p->prev->next = p->next;
    else
        cl->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, on_pending_timer_closed);
    p->cb(cl, reply, status, p->arg);
}

/* The end of the client: everything after this is asynchronous cleanup. */
static void finish(struct fl_client *cl, int reason)
{
    if (cl->phase == PHASE_CLOSED)
        return;
    cl->failed_in = cl->phase;
    set_phase(cl, PHASE_CLOSED);
    cl->reason = reason;
    while (cl->pending)
        finish_pending(cl->pending, NULL, reason < 0 ? reason : -ECANCELED);
    maybe_free(cl);
}

void fl_client_close(struct fl_client *cl)
{
    if (cl->closing)
        return;
    cl->closing = true;
    switch (cl->phase) {
    case PHASE_RESOLVING:
        uv_cancel((uv_req_t *)&cl->gai); /* on_resolved sees closing */
        break;
    case PHASE_CONNECTING:
    case PHASE_READY:
        fl_conn_close(cl->conn, 0);
        break;
    case PHASE_CLOSED:
        break;
    }
}

/* ------------------------------------------------------------------ connecting */

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct fl_client *cl = req->data;
    if (cl->closing || status < 0) {
        if (res)
            uv_freeaddrinfo(res);
        finish(cl, cl->closing ? 0 : status);
        return;
    }
    cl->conn = fl_conn_new(cl->loop, FL_ROLE_CONTROLLER, cl->key, &client_conn_ops, cl);
    if (cl->conn == NULL) {
        uv_freeaddrinfo(res);
        finish(cl, -ENOMEM);
        return;
    }
    set_phase(cl, PHASE_CONNECTING);
    /* the first address: the agent listens on one address, not a pool */
    int rc = fl_conn_connect(cl->conn, res->ai_addr, cl->timeout_ms);
    uv_freeaddrinfo(res);
    if (rc < 0)
        fl_conn_close(cl->conn, rc);
}

int fl_client_connect(uv_loop_t *loop, const char *name, const char *host, uint16_t port,
                      const struct fl_key *key, uint64_t timeout_ms,
                      const struct fl_client_ops *ops, void *data, struct fl_client **out)
{
    static const struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_protocol = IPPROTO_TCP,
        .ai_flags = AI_NUMERICSERV,
    };
    if (strlen(host) >= sizeof(((struct fl_client *)NULL)->host))
        return -ENAMETOOLONG;
    struct fl_client *cl = calloc(1, sizeof(*cl));
    if (cl == NULL)
        return -ENOMEM;
    cl->name = strdup(name);
    if (cl->name == NULL) {
        free(cl);
        return -ENOMEM;
    }
    snprintf(cl->host, sizeof(cl->host), "%s", host);
    cl->port = port;
    cl->loop = loop;
    cl->key = key;
    cl->ops = ops;
    cl->data = data;
    cl->next_id = 1;
    cl->timeout_ms = timeout_ms;
    cl->phase = PHASE_RESOLVING; /* where every client starts; not a move */
    cl->gai.data = cl;
    fl_addr_join(host, port, cl->where, sizeof(cl->where));

    char service[8];
    snprintf(service, sizeof(service), "%u", (unsigned)port);
    int rc = uv_getaddrinfo(loop, &cl->gai, on_resolved, host, service, &hints);
    if (rc < 0) {
        free(cl->name);
        free(cl);
        return rc;
    }
    *out = cl;
    return 0;
}

static void on_conn_ready(struct fl_conn *c, const Faultline__Welcome *welcome)
{
    struct fl_client *cl = fl_conn_data(c);
    set_phase(cl, PHASE_READY);
    fl_debug("%s: authenticated; agent %s on %s, session %llu", cl->name, welcome->version,
             welcome->hostname, (unsigned long long)welcome->session_id);
    cl->ops->ready(cl, welcome);
}

static void on_conn_message(struct fl_conn *c, const Faultline__Envelope *env)
{
    struct fl_client *cl = fl_conn_data(c);
    for (struct pending *p = cl->pending; p; p = p->next) {
        if (p->id == env->id) {
            finish_pending(p, env, 0);
            return;
        }
    }
    fl_debug("%s: reply to no pending request (id %llu): late, ignored", cl->name,
             (unsigned long long)env->id);
}

static void on_conn_closed(struct fl_conn *c, int reason)
{
    struct fl_client *cl = fl_conn_data(c);
    cl->agent_protocol = fl_conn_peer_protocol(c);
    cl->conn = NULL;
    finish(cl, cl->closing ? 0 : reason);
}

/* ------------------------------------------------------------------ requests */

static void on_request_timeout(uv_timer_t *t)
{
    struct pending *p = t->data;
    finish_pending(p, NULL, -ETIMEDOUT);
}

int fl_client_request(struct fl_client *cl, Faultline__Envelope *req, uint64_t timeout_ms,
                      fl_reply_cb cb, void *arg)
{
    if (cl->phase != PHASE_READY || cl->closing)
        return -ENOTCONN;
    struct pending *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    req->id = cl->next_id++;
    int rc = fl_conn_send(cl->conn, req);
    if (rc < 0) {
        free(p);
        return rc;
    }
    p->client = cl;
    p->id = req->id;
    p->cb = cb;
    p->arg = arg;
    uv_timer_init(cl->loop, &p->timer);
    p->timer.data = p;
    cl->open_timers++;
    uv_timer_start(&p->timer, on_request_timeout, timeout_ms, 0);
    p->next = cl->pending;
    if (cl->pending)
        cl->pending->prev = p;
    cl->pending = p;
    return 0;
}

/* ------------------------------------------------------------------ messages */

const char *fl_client_explain(const struct fl_client *cl, int reason, char *buf, size_t len)
{
    bool handshake = cl->failed_in == PHASE_CONNECTING;
    switch (reason) {
    case 0:
        snprintf(buf, len, "closed");
        break;
    case UV_EAI_NONAME:
    case UV_EAI_AGAIN:
    case UV_EAI_FAIL:
        snprintf(buf, len, "cannot resolve host name '%s': %s", cl->host, fl_strerror(reason));
        break;
    case UV_ECONNREFUSED:
        snprintf(buf, len,
                 "connection refused: is faultline-agent running and listening on port %u?",
                 (unsigned)cl->port);
        break;
    case UV_ETIMEDOUT:
        snprintf(buf, len, "%s within %llu ms: host down, port filtered, or not an agent?",
                 handshake ? "no answer" : "request timed out", (unsigned long long)cl->timeout_ms);
        break;
    case UV_EHOSTUNREACH:
    case UV_ENETUNREACH:
        snprintf(buf, len, "%s: check the address and the routes to it", fl_strerror(reason));
        break;
    case -EACCES:
        snprintf(buf, len,
                 "authentication failed: the agent holds a different key "
                 "(check --key, $FAULTLINE_KEY or the inventory's key_file)");
        break;
    case UV_EOF:
    case UV_ECONNRESET:
        if (handshake)
            snprintf(buf, len,
                     "the agent hung up during the handshake: it refused our key, "
                     "is at its connection limit, runs a faultline older than protocol %u, "
                     "or is not a faultline agent (see its log)",
                     FL_PROTOCOL_VERSION);
        else
            snprintf(buf, len, "the agent closed the connection");
        break;
    case -EPROTONOSUPPORT:
        if (cl->agent_protocol != 0) {
            snprintf(buf, len,
                     "the agent speaks protocol %u, this controller speaks %u: "
                     "run the same faultline release on both",
                     cl->agent_protocol, FL_PROTOCOL_VERSION);
            break;
        }
        /* fall through */
    case -EPROTO:
    case -EBADMSG:
    case -EMSGSIZE:
    case -EPIPE:
        snprintf(buf, len, "protocol error (%s): not a faultline agent, or an incompatible version",
                 fl_strerror(reason));
        break;
    default:
        snprintf(buf, len, "%s", fl_strerror(reason));
        break;
    }
    return buf;
}
