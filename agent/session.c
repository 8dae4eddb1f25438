#include "agent/session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/server.h"
#include "common/clock.h"
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

void fl_session_accept(struct fl_server *srv)
{
    struct fl_session *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        fl_error("out of memory accepting a connection");
        return;
    }
    s->server = srv;
    s->id = srv->next_session_id++;
    s->conn = fl_conn_new(srv->loop, FL_ROLE_AGENT, &srv->config->key, &session_ops, s);
    if (s->conn == NULL) {
        free(s);
        fl_error("out of memory accepting a connection");
        return;
    }
    /* linked before anything can fail: on_closed unlinks and frees */
    s->next = srv->sessions;
    if (srv->sessions)
        srv->sessions->prev = s;
    srv->sessions = s;
    srv->n_sessions++;

    int rc = uv_accept((uv_stream_t *)&srv->listener, fl_conn_stream(s->conn));
    if (rc == 0)
        rc = fl_conn_accept(s->conn, srv->config->handshake_timeout_ms);
    if (rc < 0) {
        fl_warn("accept: %s", fl_strerror(rc));
        fl_conn_close(s->conn, rc);
        return;
    }
    fl_debug("session %llu: connection from %s", (unsigned long long)s->id,
             fl_conn_peer(s->conn));
}

void fl_session_close(struct fl_session *s) { fl_conn_close(s->conn, 0); }

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
    s->last_heartbeat_mono_ms = fl_mono_ms();
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

static void handle_status(struct fl_session *s, uint64_t id)
{
    struct fl_server *srv = s->server;
    Faultline__Status st = FAULTLINE__STATUS__INIT;
    st.version = fl_pb_str(FL_VERSION);
    st.uptime_ms = fl_mono_ms() - srv->started_mono_ms;
    st.hostname = srv->hostname;
    st.now_ms = fl_now_ms();
    st.lease_ms = srv->config->lease_ms;
    st.n_faults = 0; /* this agent has no fault kinds yet */
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = id;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_STATUS;
    env.status = &st;
    send_or_close(s, &env);
}

static void reply_fault_list(struct fl_session *s, uint64_t id, Faultline__Envelope__MsgCase kind)
{
    Faultline__FaultList list = FAULTLINE__FAULT_LIST__INIT;
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
    send_or_close(s, &env);
}

static void on_message(struct fl_conn *c, const Faultline__Envelope *env)
{
    struct fl_session *s = fl_conn_data(c);
    uint64_t id = env->id;

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
        s->last_heartbeat_mono_ms = fl_mono_ms();
        Faultline__Heartbeat ack = FAULTLINE__HEARTBEAT__INIT;
        ack.sent_at_ms = env->heartbeat->sent_at_ms;
        Faultline__Envelope out = FAULTLINE__ENVELOPE__INIT;
        out.id = id;
        out.msg_case = FAULTLINE__ENVELOPE__MSG_HEARTBEAT_ACK;
        out.heartbeat_ack = &ack;
        send_or_close(s, &out);
        break;
    }
    case FAULTLINE__ENVELOPE__MSG_LIST:
        /* no fault kinds yet, so nothing is ever active */
        reply_fault_list(s, id, FAULTLINE__ENVELOPE__MSG_FAULTS);
        break;
    case FAULTLINE__ENVELOPE__MSG_HALT:
        reply_fault_list(s, id, FAULTLINE__ENVELOPE__MSG_HALTED);
        break;
    case FAULTLINE__ENVELOPE__MSG_REVERT:
        if (env->revert->all)
            reply_fault_list(s, id, FAULTLINE__ENVELOPE__MSG_REVERTED);
        else
            reply_error(s, id, FAULTLINE__ERROR_CODE__ERROR_NOT_FOUND, "no such fault");
        break;
    case FAULTLINE__ENVELOPE__MSG_INJECT:
        reply_error(s, id, FAULTLINE__ERROR_CODE__ERROR_UNSUPPORTED,
                    "this agent (" FL_VERSION ") cannot inject faults yet");
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
    case -ETIMEDOUT:
        return "no handshake in time";
    case -EACCES:
        return "authentication failed: the peer does not hold our key";
    case -EBADMSG:
        return "frame failed its MAC or could not be decoded";
    case -EPROTO:
        return "protocol violation";
    case -EMSGSIZE:
        return "frame over the 1 MiB limit";
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
    else
        fl_warn("connection from %s closed before it authenticated: %s", fl_conn_peer(c),
                reason == UV_EOF ? "it hung up (a controller with another key?)"
                                 : close_reason(reason));

    if (s->prev)
        s->prev->next = s->next;
    else
        srv->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    srv->n_sessions--;
    free(s);
}
