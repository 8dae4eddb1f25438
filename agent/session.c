#include "agent/session.h"

#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "agent/guardrails.h"
#include "agent/preview.h"
#include "agent/registry.h"
#include "agent/server.h"
#include "common/cidr.h"
#include "common/clock.h"
#include "common/frame.h"
#include "common/log.h"
#include "common/pbutil.h"

static void on_ready(struct fl_conn *c, const Faultline__Welcome *unused);
static void on_message(struct fl_conn *c, const Faultline__Envelope *env);
static void on_closed(struct fl_conn *c, int reason);

static const struct fl_conn_ops session_ops = {
    .ready = on_ready,
    .message = on_message,
    .closed = on_closed,
};

/* allowed_controllers: an empty list allows every address. */
static bool peer_allowed(const struct fl_server *srv, struct fl_conn *c)
{
    const struct fl_guardrails *g = srv->config->guard;
    if (g == NULL || g->n_allowed_controllers == 0)
        return true;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getpeername((uv_tcp_t *)fl_conn_stream(c), (struct sockaddr *)&ss, &len) != 0)
        return false;
    for (size_t i = 0; i < g->n_allowed_controllers; i++) {
        struct fl_cidr net;
        if (fl_cidr_parse(g->allowed_controllers[i], &net) == 0 &&
            fl_cidr_match(&net, (struct sockaddr *)&ss))
            return true;
    }
    return false;
}

/* A peer that vanishes (its host powered off, its network gone) sends no
 * FIN: keepalive probes find it. First probe after 10 s of silence, then
 * every 5 s; after 3 unanswered the kernel closes the connection. Data left
 * unacknowledged for 30 s does the same (TCP_USER_TIMEOUT). The idle timeout
 * (agent/server.c) closes a session whose peer still answers probes but
 * sends nothing. */
#define KEEPALIVE_IDLE_S 10
#define KEEPALIVE_INTERVAL_S 5
#define KEEPALIVE_COUNT 3
#define USER_TIMEOUT_MS 30000

static void set_keepalive(uv_tcp_t *tcp)
{
    uv_tcp_keepalive(tcp, 1, KEEPALIVE_IDLE_S);
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)tcp, &fd) != 0)
        return;
    int v = KEEPALIVE_INTERVAL_S;
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &v, sizeof(v));
    v = KEEPALIVE_COUNT;
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &v, sizeof(v));
    unsigned t = USER_TIMEOUT_MS;
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &t, sizeof(t));
}

static void peer_address(struct fl_session *s)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    snprintf(s->addr, sizeof(s->addr), "?");
    if (uv_tcp_getpeername((uv_tcp_t *)fl_conn_stream(s->conn), (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&ss, s->addr, sizeof(s->addr));
    else
        uv_ip4_name((struct sockaddr_in *)&ss, s->addr, sizeof(s->addr));
}

struct fl_session *fl_session_accept(struct fl_server *srv)
{
    struct fl_session *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        fl_error("out of memory accepting a connection");
        return NULL;
    }
    s->server = srv;
    s->id = srv->next_session_id++;
    s->conn = fl_conn_new(srv->loop, FL_ROLE_AGENT, &srv->config->key, &session_ops, s);
    if (s->conn == NULL) {
        free(s);
        fl_error("out of memory accepting a connection");
        return NULL;
    }
    /* linked before anything can fail: on_closed unlinks and frees */
    s->next = srv->sessions;
    if (srv->sessions)
        srv->sessions->prev = s;
    srv->sessions = s;

    int rc = uv_accept((uv_stream_t *)&srv->listener, fl_conn_stream(s->conn));
    if (rc == 0)
        rc = fl_conn_accept(s->conn, srv->config->handshake_timeout_ms);
    if (rc < 0) {
        fl_warn("accept: %s", fl_strerror(rc));
        fl_conn_close(s->conn, rc);
        return NULL;
    }
    peer_address(s);
    if (!peer_allowed(srv, s->conn)) {
        fl_server_note(srv, FL_NOTE_NOT_ALLOWED, s->addr, "not in allowed_controllers");
        fl_conn_close(s->conn, -EPERM);
        return NULL;
    }
    set_keepalive((uv_tcp_t *)fl_conn_stream(s->conn));
    fl_debug("session %llu: connection from %s", (unsigned long long)s->id, fl_conn_peer(s->conn));
    return s;
}

void fl_session_close(struct fl_session *s)
{
    fl_conn_close(s->conn, 0);
}

static void send_or_close(struct fl_session *s, const Faultline__Envelope *env)
{
    int rc = fl_conn_send(s->conn, env);
    if (rc < 0 && rc != -ENOTCONN) {
        fl_warn("session %llu: cannot send: %s", (unsigned long long)s->id, fl_strerror(rc));
        fl_conn_close(s->conn, rc);
    }
}

static void reply_error(struct fl_session *s, uint64_t id, Faultline__ErrorCode code,
                        const char *message)
{
    Faultline__Error err = FAULTLINE__ERROR__INIT;
    err.code = code;
    err.message = fl_pb_str(message);
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = id;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_ERROR;
    env.error = &err;
    send_or_close(s, &env);
}

static void on_ready(struct fl_conn *c, const Faultline__Welcome *unused)
{
    struct fl_session *s = fl_conn_data(c);
    struct fl_server *srv = s->server;
    (void)unused;
    s->authenticated = true;
    s->last_rx_ms = fl_mono_ms();
    fl_server_session_authenticated(srv);
    fl_info("session %llu: controller %s authenticated", (unsigned long long)s->id,
            fl_conn_peer(c));

    Faultline__Welcome w = FAULTLINE__WELCOME__INIT;
    w.version = fl_pb_str(FL_VERSION);
    w.session_id = s->id;
    w.lease_ms = srv->config->lease_ms;
    w.hostname = srv->hostname;
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_WELCOME;
    env.welcome = &w;
    send_or_close(s, &env);
}

/* A reply the registry owes: it may come after the session is gone, in which
 * case s is NULL and the reply is dropped. */
struct pending_reply {
    struct pending_reply *prev, *next;
    struct fl_session *s;
    uint64_t id;
    Faultline__Envelope__MsgCase kind; /* the reply's kind for fault lists */
};

static struct pending_reply *pending_new(struct fl_session *s, uint64_t id,
                                         Faultline__Envelope__MsgCase kind)
{
    struct pending_reply *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->s = s;
    p->id = id;
    p->kind = kind;
    p->next = s->pending;
    if (s->pending)
        s->pending->prev = p;
    s->pending = p;
    return p;
}

/* Detaches p from its session (if any) and returns the session. */
static struct fl_session *pending_take(struct pending_reply *p)
{
    struct fl_session *s = p->s;
    if (s != NULL) {
        if (p->prev)
            p->prev->next = p->next;
        else
            s->pending = p->next;
        if (p->next)
            p->next->prev = p->prev;
    }
    return s;
}

/* Every record the registry holds (active, or also the ended ones it
 * remembers), in a heap array: a listing never leaves one out. NULL (and
 * *n 0) when out of memory. */
static const struct fl_record **list_records(struct fl_registry *reg, bool ended, size_t *n)
{
    size_t cap = fl_registry_count(reg, ended);
    const struct fl_record **recs = malloc((cap ? cap : 1) * sizeof(*recs));
    *n = recs ? fl_registry_list(reg, ended, recs, cap) : 0;
    assert(recs == NULL || *n == cap);
    return recs;
}

/* A reply must fit in one frame (FL_FRAME_MAX): a list that does not is
 * refused loudly, never cut short. */
static bool fits_in_frame(struct fl_session *s, uint64_t id, const Faultline__Envelope *env,
                          size_t n)
{
    size_t size = faultline__envelope__get_packed_size(env);
    if (size + 64 <= FL_FRAME_MAX)
        return true;
    char msg[256];
    snprintf(msg, sizeof(msg),
             "the list of %zu faults takes %zu bytes, over the %u-byte frame limit: revert some, "
             "or lower max_faults",
             n, size, FL_FRAME_MAX);
    fl_error("session %llu: %s", (unsigned long long)s->id, msg);
    reply_error(s, id, FAULTLINE__ERROR_CODE__ERROR_INTERNAL, msg);
    return false;
}

/* The records as Fault messages, in one allocation: n pointers, then the n
 * messages they point to (whose strings point into the records). NULL when
 * out of memory. */
static Faultline__Fault **describe_all(const struct fl_record *const *recs, size_t n)
{
    Faultline__Fault **ptrs = malloc((n ? n : 1) * (sizeof(*ptrs) + sizeof(Faultline__Fault)));
    if (ptrs == NULL)
        return NULL;
    Faultline__Fault *faults = (Faultline__Fault *)(ptrs + n);
    for (size_t i = 0; i < n; i++) {
        fl_record_describe(recs[i], &faults[i]);
        ptrs[i] = &faults[i];
    }
    return ptrs;
}

static void send_fault_list(struct fl_session *s, uint64_t id, Faultline__Envelope__MsgCase kind,
                            const struct fl_record *const *recs, size_t n)
{
    Faultline__Fault **ptrs = describe_all(recs, n);
    if (ptrs == NULL) {
        reply_error(s, id, FAULTLINE__ERROR_CODE__ERROR_INTERNAL, "out of memory");
        return;
    }
    Faultline__FaultList list = FAULTLINE__FAULT_LIST__INIT;
    list.n_faults = n;
    list.faults = ptrs;
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = id;
    env.msg_case = kind;
    switch (kind) {
    case FAULTLINE__ENVELOPE__MSG_FAULTS:
        env.faults = &list;
        break;
    case FAULTLINE__ENVELOPE__MSG_HALTED:
        env.halted = &list;
        break;
    default:
        env.reverted = &list;
        break;
    }
    if (fits_in_frame(s, id, &env, n))
        send_or_close(s, &env);
    free(ptrs);
}

static void handle_status(struct fl_session *s, uint64_t id)
{
    struct fl_server *srv = s->server;
    size_t n;
    const struct fl_record **recs = list_records(srv->registry, false, &n);
    Faultline__Fault **ptrs = recs ? describe_all(recs, n) : NULL;
    free(recs);
    if (ptrs == NULL) {
        reply_error(s, id, FAULTLINE__ERROR_CODE__ERROR_INTERNAL, "out of memory");
        return;
    }
    Faultline__Status st = FAULTLINE__STATUS__INIT;
    st.version = fl_pb_str(FL_VERSION);
    st.uptime_ms = fl_mono_ms() - srv->started_mono_ms;
    st.hostname = srv->hostname;
    st.now_ms = fl_now_ms();
    st.lease_ms = srv->config->lease_ms;
    st.n_faults = n;
    st.faults = ptrs;
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = id;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_STATUS;
    env.status = &st;
    if (fits_in_frame(s, id, &env, n))
        send_or_close(s, &env);
    free(ptrs);
}

static void on_injected(void *arg, const struct fl_record *rec, Faultline__ErrorCode code,
                        const char *error)
{
    struct pending_reply *p = arg;
    struct fl_session *s = pending_take(p);
    if (s != NULL) {
        if (rec == NULL) {
            reply_error(s, p->id, code, error);
        } else {
            Faultline__Fault fault;
            fl_record_describe(rec, &fault);
            Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
            env.id = p->id;
            env.msg_case = FAULTLINE__ENVELOPE__MSG_INJECTED;
            env.injected = &fault;
            send_or_close(s, &env);
        }
    }
    free(p);
}

static void on_reverted(void *arg, const struct fl_record *const *recs, size_t n, int status)
{
    struct pending_reply *p = arg;
    struct fl_session *s = pending_take(p);
    if (s != NULL) {
        size_t bad = 0; /* the first fault whose revert failed, n when none */
        while (bad < n && fl_record_revert_error(recs[bad]) == NULL)
            bad++;
        if (status == -ENOENT) {
            reply_error(s, p->id, FAULTLINE__ERROR_CODE__ERROR_NOT_FOUND,
                        "no fault with that id on this agent");
        } else if (status == -EIO && bad < n) {
            char msg[800];
            snprintf(msg, sizeof(msg), "fault %s: %s", fl_record_id(recs[bad]),
                     fl_record_revert_error(recs[bad]));
            reply_error(s, p->id, FAULTLINE__ERROR_CODE__ERROR_REVERT_FAILED, msg);
        } else if (status < 0)
            reply_error(s, p->id, FAULTLINE__ERROR_CODE__ERROR_INTERNAL, fl_strerror(status));
        else
            send_fault_list(s, p->id, p->kind, recs, n);
    }
    free(p);
}

static struct pending_reply *pending_or_fail(struct fl_session *s, uint64_t id,
                                             Faultline__Envelope__MsgCase kind)
{
    struct pending_reply *p = pending_new(s, id, kind);
    if (p == NULL)
        reply_error(s, id, FAULTLINE__ERROR_CODE__ERROR_INTERNAL, "out of memory");
    return p;
}

/* Side-effect free: nothing is applied, journaled or held (docs/design.md
 * section 3). */
static void handle_preview(struct fl_session *s, uint64_t id, const Faultline__FaultSpec *spec)
{
    if (spec == NULL) {
        reply_error(s, id, FAULTLINE__ERROR_CODE__ERROR_BAD_REQUEST, "preview without a fault");
        return;
    }
    struct fl_preview pv;
    Faultline__ErrorCode code;
    char err[512];
    if (fl_registry_preview(s->server->registry, spec, &pv, &code, err, sizeof(err)) < 0) {
        reply_error(s, id, code, err);
        return;
    }
    Faultline__Preview msg = FAULTLINE__PREVIEW__INIT;
    msg.n_would = pv.n;
    msg.would = pv.would;
    msg.detail = pv.detail;
    Faultline__Envelope out = FAULTLINE__ENVELOPE__INIT;
    out.id = id;
    out.msg_case = FAULTLINE__ENVELOPE__MSG_PREVIEWED;
    out.previewed = &msg;
    send_or_close(s, &out);
    fl_preview_free(&pv);
}

static void on_message(struct fl_conn *c, const Faultline__Envelope *env)
{
    struct fl_session *s = fl_conn_data(c);
    struct fl_registry *reg = s->server->registry;
    uint64_t id = env->id;
    struct pending_reply *p;
    s->last_rx_ms = fl_mono_ms(); /* not idle (agent/server.c) */

    switch (env->msg_case) {
    case FAULTLINE__ENVELOPE__MSG_PING: {
        Faultline__Ping pong = FAULTLINE__PING__INIT;
        Faultline__Envelope out = FAULTLINE__ENVELOPE__INIT;
        out.id = id;
        out.msg_case = FAULTLINE__ENVELOPE__MSG_PONG;
        out.pong = &pong;
        send_or_close(s, &out);
        break;
    }
    case FAULTLINE__ENVELOPE__MSG_STATUS_REQUEST:
        handle_status(s, id);
        break;
    case FAULTLINE__ENVELOPE__MSG_HEARTBEAT: {
        fl_registry_heartbeat(reg, s->id);
        Faultline__Heartbeat ack = FAULTLINE__HEARTBEAT__INIT;
        ack.sent_at_ms = env->heartbeat->sent_at_ms;
        Faultline__Envelope out = FAULTLINE__ENVELOPE__INIT;
        out.id = id;
        out.msg_case = FAULTLINE__ENVELOPE__MSG_HEARTBEAT_ACK;
        out.heartbeat_ack = &ack;
        send_or_close(s, &out);
        break;
    }
    case FAULTLINE__ENVELOPE__MSG_INJECT:
        if (env->inject->spec == NULL) {
            reply_error(s, id, FAULTLINE__ERROR_CODE__ERROR_BAD_REQUEST, "inject without a fault");
            break;
        }
        if ((p = pending_or_fail(s, id, FAULTLINE__ENVELOPE__MSG_INJECTED)) != NULL)
            fl_registry_inject(reg, env->inject->spec, s->id, env->inject->detached, on_injected,
                               p);
        break;
    case FAULTLINE__ENVELOPE__MSG_REVERT:
        if ((p = pending_or_fail(s, id, FAULTLINE__ENVELOPE__MSG_REVERTED)) == NULL)
            break;
        if (env->revert->all)
            fl_registry_revert_all(reg, FL_END_REQUESTED, on_reverted, p);
        else
            fl_registry_revert(reg, env->revert->fault_id, FL_END_REQUESTED, on_reverted, p);
        break;
    case FAULTLINE__ENVELOPE__MSG_LIST: {
        size_t n;
        const struct fl_record **recs = list_records(reg, env->list->include_ended, &n);
        if (recs == NULL)
            reply_error(s, id, FAULTLINE__ERROR_CODE__ERROR_INTERNAL, "out of memory");
        else
            send_fault_list(s, id, FAULTLINE__ENVELOPE__MSG_FAULTS, recs, n);
        free(recs);
        break;
    }
    case FAULTLINE__ENVELOPE__MSG_PREVIEW:
        handle_preview(s, id, env->preview->spec);
        break;
    case FAULTLINE__ENVELOPE__MSG_HALT:
        fl_warn("session %llu: halt: reverting every fault", (unsigned long long)s->id);
        if ((p = pending_or_fail(s, id, FAULTLINE__ENVELOPE__MSG_HALTED)) != NULL)
            fl_registry_revert_all(reg, FL_END_HALTED, on_reverted, p);
        break;
    default:
        /* a newer controller, or a reply sent as a request */
        reply_error(s, id, FAULTLINE__ERROR_CODE__ERROR_UNSUPPORTED,
                    "request not understood by agent " FL_VERSION);
        break;
    }
}

static const char *close_reason(int reason)
{
    switch (reason) {
    case 0:
        return "closed";
    case UV_EOF:
        return "controller hung up";
    case -ETIME:
        return "idle: nothing received within idle_timeout";
    case -ECONNABORTED:
        return "closed to make room (connection limits)";
    case -ETIMEDOUT:
        return "no handshake in time";
    case -EACCES:
        return "authentication failed: the peer does not hold our key";
    case -EALREADY:
        return "replayed handshake: a Hello this agent answered before (recorded traffic "
               "played back)";
    case -EPROTONOSUPPORT:
        return "the controller speaks another protocol version";
    case -EBADMSG:
        return "frame failed its authentication tag or could not be decoded";
    case -EPROTO:
        return "protocol violation";
    case -EMSGSIZE:
        return "frame over the 1 MiB limit";
    case -EPERM:
        return "not in allowed_controllers";
    default:
        return fl_strerror(reason);
    }
}

static void on_closed(struct fl_conn *c, int reason)
{
    struct fl_session *s = fl_conn_data(c);
    struct fl_server *srv = s->server;
    if (s->authenticated || reason == 0)
        fl_info("session %llu (%s): %s", (unsigned long long)s->id, fl_conn_peer(c),
                close_reason(reason));
    else if (reason != -EPERM && reason != -ECONNABORTED)
        /* counted and logged at most once per interval: a flood of
         * connections that never authenticate must not flood the log */
        fl_server_note(srv, FL_NOTE_UNAUTHENTICATED_CLOSED, s->addr,
                       reason == UV_EOF ? "it hung up (a controller with another key?)"
                                        : close_reason(reason));

    for (struct pending_reply *p = s->pending; p; p = p->next)
        p->s = NULL; /* the registry still calls back; the reply is dropped */

    if (s->prev)
        s->prev->next = s->next;
    else
        srv->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    free(s);
}
