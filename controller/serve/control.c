/* The control channel of `faultline serve` (control.h). */
#include "controller/serve/control.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/conn.h"
#include "common/frame.h"
#include "common/log.h"
#include "common/pbutil.h"
#include "controller/serve/config.h"

/* Room kept in a History reply for the envelope around the rows. */
#define HISTORY_FRAME_SLACK 4096

struct cconn;

struct fl_control {
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool listener_open;
    uv_timer_t idle_timer;
    bool timer_open;
    struct fl_key key;
    fl_store *store;
    const struct fl_control_ops *ops;
    void *ctx;
    struct cconn *conns;
    unsigned n_conns;
    unsigned work; /* uv_queue_work in flight */
    bool stopping;
    /* store writes, one at a time, in order */
    struct cwork *wq_head, *wq_tail;
    bool writing;
};

struct cconn {
    struct cconn *prev, *next;
    struct fl_control *ctl;
    struct fl_conn *conn;
    bool authenticated;
    uint64_t opened_mono_ms;
    struct fl_control_req *q; /* the one request, while unanswered */
};

struct fl_control_req {
    struct fl_control *ctl;
    struct cconn *cc; /* NULL once the connection is gone: the answer is dropped */
    uint64_t env_id;
};

enum cwork_kind { CW_FREEZE, CW_PAUSE, CW_HISTORY };

struct cwork {
    uv_work_t req;
    struct cwork *next;
    enum cwork_kind kind;
    struct fl_control_req *q;
    /* freeze / thaw */
    struct fl_control_freeze st;
    /* pause */
    char experiment[256];
    bool paused;
    /* history */
    int64_t since_ms;
    size_t limit, offset;
    fl_store_row *rows;
    size_t n;
    /* out */
    fl_store_rc rc;
    char err[512];
    char msg[640]; /* the reply's sentence when the store call succeeds */
    uint32_t aborted;
    bool unchanged;
};

static void maybe_free(struct fl_control *c);

/* ---------------------------------------------------------------- replies */

static void send_env(struct fl_control_req *q, Faultline__Envelope *env)
{
    struct cconn *cc = q->cc;
    if (cc == NULL)
        return; /* the client hung up: the state changed all the same */
    env->id = q->env_id;
    int rc = fl_conn_send(cc->conn, env);
    if (rc < 0) {
        fl_warn("control: cannot answer %s: %s", fl_conn_peer(cc->conn), strerror(-rc));
        fl_conn_close(cc->conn, rc);
    }
}

static void req_free(struct fl_control_req *q)
{
    if (q->cc != NULL)
        q->cc->q = NULL;
    free(q);
}

static Faultline__ErrorCode error_code(int code)
{
    switch (code) {
    case -ENOENT:
        return FAULTLINE__ERROR_CODE__ERROR_NOT_FOUND;
    case -EBUSY:
        return FAULTLINE__ERROR_CODE__ERROR_BUSY;
    case -EPERM:
        return FAULTLINE__ERROR_CODE__ERROR_GUARDRAIL;
    case -EINVAL:
        return FAULTLINE__ERROR_CODE__ERROR_BAD_REQUEST;
    case -ENOTSUP:
        return FAULTLINE__ERROR_CODE__ERROR_UNSUPPORTED;
    default:
        return FAULTLINE__ERROR_CODE__ERROR_INTERNAL;
    }
}

/* Answers q with an Error and frees it. */
static void answer_error(struct fl_control_req *q, int code, const char *msg)
{
    Faultline__Error e = FAULTLINE__ERROR__INIT;
    e.code = error_code(code);
    e.message = fl_pb_str(msg);
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_ERROR;
    env.error = &e;
    send_env(q, &env);
    req_free(q);
}

static void answer_reply(struct fl_control_req *q, Faultline__ControlReply *r)
{
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_CONTROLLED;
    env.controlled = r;
    send_env(q, &env);
    req_free(q);
}

void fl_control_answer_run(struct fl_control_req *q, int64_t run_id, int code, const char *msg)
{
    if (run_id <= 0) {
        answer_error(q, code, msg);
        return;
    }
    Faultline__ControlReply r = FAULTLINE__CONTROL_REPLY__INIT;
    r.message = fl_pb_str(msg);
    r.run_id = run_id;
    answer_reply(q, &r);
}

/* ---------------------------------------------------------------- store work */

static void cwork_run(uv_work_t *req)
{
    struct cwork *w = req->data;
    fl_store *s = w->q->ctl->store;
    switch (w->kind) {
    case CW_FREEZE:
        w->rc = fl_store_set_frozen(s, w->st.frozen, w->st.reason, w->st.who, w->st.since_ms);
        break;
    case CW_PAUSE:
        w->rc = fl_store_set_paused(s, w->experiment, w->paused);
        break;
    case CW_HISTORY:
        w->rc = fl_store_query_brief(s, w->experiment[0] ? w->experiment : NULL, w->since_ms,
                                     w->limit + 1, w->offset, &w->rows, &w->n);
        break;
    }
    if (w->rc == FL_STORE_ERR)
        snprintf(w->err, sizeof(w->err), "%s", fl_store_error(s));
}

static char *or_empty(char *s)
{
    return s ? s : fl_pb_str("");
}

static void answer_history(struct cwork *w)
{
    size_t want = w->limit;
    size_t n = w->n < want ? w->n : want;
    bool more = w->n > want;
    Faultline__HistoryRow *rows = calloc(n ? n : 1, sizeof(*rows));
    Faultline__HistoryRow **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
    if (rows == NULL || ptrs == NULL) {
        free(rows);
        free(ptrs);
        answer_error(w->q, -ENOMEM, "faultline serve is out of memory reading the history");
        return;
    }
    size_t size = 0, k = 0;
    for (; k < n; k++) {
        const fl_store_row *s = &w->rows[k];
        Faultline__HistoryRow *r = &rows[k];
        faultline__history_row__init(r);
        r->id = s->id;
        r->experiment = or_empty(s->experiment);
        r->file_hash = or_empty(s->file_hash);
        r->due_ms = s->due_ms;
        r->started_ms = s->started_ms;
        r->ended_ms = s->ended_ms;
        r->state = or_empty(s->state);
        r->verdict = or_empty(s->verdict);
        r->reason = or_empty(s->reason);
        r->recovery_ms = s->recovery_ms;
        r->resolution_ms = s->resolution_ms;
        r->rpo_ms = s->rpo_ms;
        r->flags = or_empty(s->flags);
        r->report_folder = or_empty(s->report_folder);
        size_t one = faultline__history_row__get_packed_size(r) + 8;
        if (size + one > FL_FRAME_MAX - FL_SEAL_OVERHEAD - HISTORY_FRAME_SLACK) {
            more = true; /* the rest in the next page */
            break;
        }
        size += one;
        ptrs[k] = r;
    }
    Faultline__History h = FAULTLINE__HISTORY__INIT;
    h.rows = ptrs;
    h.n_rows = k;
    h.more = more;
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_HISTORY;
    env.history = &h;
    send_env(w->q, &env);
    req_free(w->q);
    free(rows);
    free(ptrs);
}

static void start_write(struct fl_control *c);

static void cwork_done(uv_work_t *req, int status)
{
    struct cwork *w = req->data;
    struct fl_control *c = w->q->ctl;
    (void)status;
    c->work--;
    if (w->kind != CW_HISTORY) {
        c->writing = false;
        start_write(c);
    }
    if (w->rc == FL_STORE_ERR) {
        char msg[1400];
        if (w->kind == CW_FREEZE)
            snprintf(msg, sizeof(msg),
                     "%s; but the %s could not be stored (%s): it would not survive a restart "
                     "of faultline serve",
                     w->msg, w->st.frozen ? "freeze" : "thaw", w->err);
        else if (w->kind == CW_PAUSE)
            snprintf(msg, sizeof(msg),
                     "%s; but it could not be stored (%s): it would not survive a restart of "
                     "faultline serve",
                     w->msg, w->err);
        else
            snprintf(msg, sizeof(msg), "cannot read the history: %s", w->err);
        fl_error("control: %s", msg);
        answer_error(w->q, -EIO, msg);
    } else if (w->kind == CW_HISTORY) {
        answer_history(w);
    } else {
        Faultline__ControlReply r = FAULTLINE__CONTROL_REPLY__INIT;
        r.message = w->msg;
        r.frozen = w->st.frozen;
        r.frozen_reason = w->st.reason;
        r.frozen_by = w->st.who;
        r.frozen_since_ms = (uint64_t)w->st.since_ms;
        r.aborted = w->aborted;
        r.unchanged = w->unchanged;
        answer_reply(w->q, &r);
    }
    fl_store_rows_free(w->rows, w->n);
    free(w);
    maybe_free(c);
}

static int queue_work(struct fl_control *c, struct cwork *w)
{
    w->req.data = w;
    int rc = uv_queue_work(c->loop, &w->req, cwork_run, cwork_done);
    if (rc < 0)
        return rc;
    c->work++;
    return 0;
}

static void start_write(struct fl_control *c)
{
    while (!c->writing && c->wq_head != NULL) {
        struct cwork *w = c->wq_head;
        c->wq_head = w->next;
        if (c->wq_head == NULL)
            c->wq_tail = NULL;
        int rc = queue_work(c, w);
        if (rc == 0) {
            c->writing = true;
            return;
        }
        char msg[800];
        snprintf(msg, sizeof(msg), "%s; but it could not be stored (%s)", w->msg, uv_strerror(rc));
        answer_error(w->q, -EIO, msg);
        free(w);
    }
}

/* Store writes go one at a time, in the loop's order. */
static void submit_write(struct fl_control *c, struct cwork *w)
{
    w->next = NULL;
    if (c->wq_tail != NULL)
        c->wq_tail->next = w;
    else
        c->wq_head = w;
    c->wq_tail = w;
    start_write(c);
}

/* ---------------------------------------------------------------- requests */

static void cut(char *dst, size_t len, const char *src)
{
    size_t n = src ? strnlen(src, len - 1) : 0;
    if (src != NULL && src[n] != '\0')
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--; /* never half a UTF-8 character */
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
    for (char *p = dst; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' '; /* one line in logs and tables */
}

static void on_control(struct fl_control_req *q, const Faultline__ControlRequest *r)
{
    struct fl_control *c = q->ctl;
    const char *peer = fl_conn_peer(q->cc->conn);
    char msg[512] = "";
    struct cwork *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        answer_error(q, -ENOMEM, "faultline serve is out of memory");
        return;
    }
    w->q = q;
    int rc;
    switch (r->action) {
    case FAULTLINE__CONTROL_REQUEST__ACTION__FREEZE: {
        char reason[FL_CONTROL_REASON_MAX + 1], who[FL_CONTROL_REASON_MAX + 1];
        cut(reason, sizeof(reason), r->reason && r->reason[0] ? r->reason : "no reason given");
        char by[400];
        snprintf(by, sizeof(by), "%s from %s", r->who && r->who[0] ? r->who : "someone", peer);
        cut(who, sizeof(who), by);
        unsigned aborted = 0;
        rc = c->ops->freeze(c->ctx, reason, who, &aborted, &w->st, msg, sizeof(msg));
        if (rc < 0)
            break;
        w->kind = CW_FREEZE;
        w->aborted = aborted;
        w->unchanged = rc == 1;
        if (w->unchanged)
            snprintf(w->msg, sizeof(w->msg), "already frozen (%s, by %s); nothing else changed",
                     w->st.reason, w->st.who);
        else
            snprintf(w->msg, sizeof(w->msg),
                     "frozen (%s): %u running experiment(s) aborted and reverting; nothing "
                     "starts until faultline thaw",
                     w->st.reason, aborted);
        fl_warn("control: freeze by %s: %s", who, w->msg);
        submit_write(c, w);
        return;
    }
    case FAULTLINE__CONTROL_REQUEST__ACTION__THAW:
        rc = c->ops->thaw(c->ctx, &w->st, msg, sizeof(msg));
        if (rc < 0)
            break;
        w->kind = CW_FREEZE;
        w->unchanged = rc == 1;
        snprintf(w->msg, sizeof(w->msg), "%s",
                 w->unchanged ? "not frozen; nothing changed"
                              : "thawed: experiments start again at their next due time");
        fl_warn("control: thaw from %s: %s", peer, w->msg);
        submit_write(c, w);
        return;
    case FAULTLINE__CONTROL_REQUEST__ACTION__PAUSE:
    case FAULTLINE__CONTROL_REQUEST__ACTION__RESUME: {
        bool paused = r->action == FAULTLINE__CONTROL_REQUEST__ACTION__PAUSE;
        bool changed = false;
        const char *e = r->experiment ? r->experiment : "";
        rc = c->ops->pause(c->ctx, e, paused, &changed, msg, sizeof(msg));
        if (rc < 0)
            break;
        w->kind = CW_PAUSE;
        w->paused = paused;
        w->unchanged = !changed;
        snprintf(w->experiment, sizeof(w->experiment), "%s", e);
        snprintf(w->msg, sizeof(w->msg), "%s: %s%s", e,
                 paused ? "paused: its due times are recorded as skipped (paused)"
                        : "resumed: it runs again at its next due time",
                 changed ? "" : " (it already was)");
        fl_warn("control: %s from %s: %s", paused ? "pause" : "resume", peer, w->msg);
        submit_write(c, w);
        return;
    }
    case FAULTLINE__CONTROL_REQUEST__ACTION__RUN_NOW:
        free(w);
        rc = c->ops->run_now(c->ctx, r->experiment ? r->experiment : "", q, msg, sizeof(msg));
        if (rc < 0)
            answer_error(q, rc, msg);
        else
            fl_info("control: run-now of %s from %s", r->experiment, peer);
        return;
    default:
        rc = -EINVAL;
        snprintf(msg, sizeof(msg),
                 "control action %d not understood by faultline serve " FL_VERSION, (int)r->action);
        break;
    }
    free(w);
    fl_warn("control: refused a request from %s: %s", peer, msg);
    answer_error(q, rc, msg);
}

static void on_history(struct fl_control_req *q, const Faultline__HistoryRequest *r)
{
    struct cwork *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        answer_error(q, -ENOMEM, "faultline serve is out of memory");
        return;
    }
    w->q = q;
    w->kind = CW_HISTORY;
    snprintf(w->experiment, sizeof(w->experiment), "%s", r->experiment ? r->experiment : "");
    w->since_ms = r->since_ms;
    w->limit = r->limit && r->limit < FL_CONTROL_HISTORY_PAGE_ROWS ? r->limit
                                                                   : FL_CONTROL_HISTORY_PAGE_ROWS;
    w->offset = r->offset;
    int rc = queue_work(q->ctl, w);
    if (rc < 0) {
        free(w);
        answer_error(q, -EIO, "cannot queue the history query");
    }
}

static void on_message(struct fl_conn *conn, const Faultline__Envelope *env)
{
    struct cconn *cc = fl_conn_data(conn);
    if (cc->q != NULL) {
        fl_warn("control: %s sent a second request before its answer: closed", fl_conn_peer(conn));
        fl_conn_close(conn, -EPROTO);
        return;
    }
    struct fl_control_req *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        fl_conn_close(conn, -ENOMEM);
        return;
    }
    q->ctl = cc->ctl;
    q->cc = cc;
    q->env_id = env->id;
    cc->q = q;
    switch (env->msg_case) {
    case FAULTLINE__ENVELOPE__MSG_CONTROL:
        on_control(q, env->control);
        break;
    case FAULTLINE__ENVELOPE__MSG_HISTORY_REQUEST:
        on_history(q, env->history_request);
        break;
    default:
        answer_error(q, -ENOTSUP,
                     "request not understood by faultline serve " FL_VERSION
                     " (its control channel takes freeze, thaw, pause, resume, "
                     "run-now and history)");
        break;
    }
}

/* ---------------------------------------------------------------- connections */

static void on_ready(struct fl_conn *conn, const Faultline__Welcome *unused)
{
    struct cconn *cc = fl_conn_data(conn);
    (void)unused;
    cc->authenticated = true;
    fl_info("control: %s authenticated", fl_conn_peer(conn));
    Faultline__Welcome w = FAULTLINE__WELCOME__INIT;
    w.version = fl_pb_str(FL_VERSION);
    w.hostname = fl_pb_str("faultline serve");
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_WELCOME;
    env.welcome = &w;
    int rc = fl_conn_send(conn, &env);
    if (rc < 0)
        fl_conn_close(conn, rc);
}

static void on_closed(struct fl_conn *conn, int reason)
{
    struct cconn *cc = fl_conn_data(conn);
    struct fl_control *c = cc->ctl;
    if (!cc->authenticated && reason != 0)
        fl_warn("control: %s not authenticated, closed: %s", fl_conn_peer(conn),
                reason == -EACCES  ? "it does not hold the key"
                : reason == UV_EOF ? "it hung up during the handshake (as a client with "
                                     "another key does)"
                                   : fl_strerror(reason));
    if (cc->q != NULL)
        cc->q->cc = NULL; /* answered into the void when it comes */
    if (cc->prev)
        cc->prev->next = cc->next;
    else
        c->conns = cc->next;
    if (cc->next)
        cc->next->prev = cc->prev;
    c->n_conns--;
    free(cc);
    maybe_free(c);
}

static const struct fl_conn_ops conn_ops = {
    .ready = on_ready,
    .message = on_message,
    .closed = on_closed,
};

static void on_connection(uv_stream_t *listener, int status)
{
    struct fl_control *c = listener->data;
    if (status < 0) {
        fl_warn("control: accept: %s", uv_strerror(status));
        return;
    }
    struct cconn *cc = calloc(1, sizeof(*cc));
    struct fl_conn *conn = cc ? fl_conn_new(c->loop, FL_ROLE_AGENT, &c->key, &conn_ops, cc) : NULL;
    if (conn == NULL) {
        free(cc);
        fl_error("control: out of memory accepting a connection");
        return;
    }
    cc->ctl = c;
    cc->conn = conn;
    cc->opened_mono_ms = fl_mono_ms();
    cc->next = c->conns;
    if (c->conns)
        c->conns->prev = cc;
    c->conns = cc;
    c->n_conns++;
    int rc = uv_accept(listener, fl_conn_stream(conn));
    if (rc == 0)
        rc = fl_conn_accept(conn, FL_CONTROL_HANDSHAKE_MS);
    if (rc < 0) {
        fl_conn_close(conn, rc);
        return;
    }
    if (c->n_conns > FL_CONTROL_MAX_CONNS) {
        struct cconn *victim = NULL;
        for (struct cconn *o = c->conns; o; o = o->next)
            if (!o->authenticated && !fl_conn_is_closing(o->conn) &&
                (victim == NULL || o->opened_mono_ms <= victim->opened_mono_ms))
                victim = o;
        if (victim == NULL)
            victim = cc;
        fl_warn("control: %u connections open (FL_CONTROL_MAX_CONNS %d): closing %s", c->n_conns,
                FL_CONTROL_MAX_CONNS, fl_conn_peer(victim->conn));
        fl_conn_close(victim->conn, -ECONNABORTED);
    }
}

static void on_idle_check(uv_timer_t *t)
{
    struct fl_control *c = t->data;
    uint64_t now = fl_mono_ms();
    for (struct cconn *cc = c->conns; cc; cc = cc->next)
        if (!fl_conn_is_closing(cc->conn) && now - cc->opened_mono_ms > FL_CONTROL_IDLE_MS) {
            fl_warn("control: %s open for more than %d ms (FL_CONTROL_IDLE_MS): closed",
                    fl_conn_peer(cc->conn), FL_CONTROL_IDLE_MS);
            fl_conn_close(cc->conn, -ETIMEDOUT);
        }
}

/* ---------------------------------------------------------------- life */

static void on_handle_closed(uv_handle_t *h)
{
    struct fl_control *c = h->data;
    if (h == (uv_handle_t *)&c->listener)
        c->listener_open = false;
    else
        c->timer_open = false;
    maybe_free(c);
}

static void maybe_free(struct fl_control *c)
{
    if (!c->stopping || c->listener_open || c->timer_open || c->conns != NULL || c->work > 0 ||
        c->wq_head != NULL)
        return;
    fl_key_wipe(&c->key);
    free(c);
}

int fl_control_start(uv_loop_t *loop, const char *listen, const struct fl_key *key, fl_store *store,
                     const struct fl_control_ops *ops, void *ctx, struct fl_control **out,
                     char *err, size_t errlen)
{
    char host[64];
    uint16_t port;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (fl_serve_listen_parse(listen, host, sizeof(host), &port) < 0 ||
        (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
         uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)) {
        snprintf(err, errlen, "listen_control: '%s' is not ADDRESS:PORT", listen);
        return -EINVAL;
    }
    struct fl_control *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    c->loop = loop;
    c->key = *key;
    c->store = store;
    c->ops = ops;
    c->ctx = ctx;
    uv_tcp_init(loop, &c->listener);
    uv_timer_init(loop, &c->idle_timer);
    c->listener.data = c->idle_timer.data = c;
    c->listener_open = c->timer_open = true;
    int rc = uv_tcp_bind(&c->listener, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&c->listener, 64, on_connection);
    if (rc < 0) {
        snprintf(err, errlen, "listen_control: cannot listen on %s: %s", listen, uv_strerror(rc));
        fl_control_stop(c);
        return rc;
    }
    uv_timer_start(&c->idle_timer, on_idle_check, 1000, 1000);
    *out = c;
    return 0;
}

void fl_control_stop(struct fl_control *c)
{
    if (c == NULL || c->stopping)
        return;
    c->stopping = true;
    uv_close((uv_handle_t *)&c->listener, on_handle_closed);
    uv_close((uv_handle_t *)&c->idle_timer, on_handle_closed);
    for (struct cconn *cc = c->conns; cc; cc = cc->next)
        fl_conn_close(cc->conn, 0);
}
