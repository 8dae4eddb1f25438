#include "common/conn.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/frame.h"
#include "common/log.h"
#include "common/pbutil.h"

#define READ_CHUNK 65536u
/* A peer that leaves this much unread is not a controller we can serve. */
#define WRITE_QUEUE_MAX (8u << 20)

struct fl_conn {
    uv_tcp_t tcp;
    uv_timer_t deadline;
    uv_connect_t connect_req;
    int open_handles;
    bool closing;
    bool ready;
    int reason;
    struct fl_auth auth;
    struct fl_frame_decoder dec;
    const struct fl_conn_ops *ops;
    void *data;
    uint32_t peer_protocol; /* what the peer announced, when it is not ours */
    char peer[64];
};

struct write_req {
    uv_write_t req;
    uv_buf_t buf;
    uint8_t bytes[];
};

static void on_handle_closed(uv_handle_t *h)
{
    struct fl_conn *c = h->data;
    if (--c->open_handles > 0)
        return;
    c->ops->closed(c, c->reason);
    fl_auth_wipe(&c->auth);
    fl_frame_decoder_free(&c->dec);
    free(c);
}

void fl_conn_close(struct fl_conn *c, int reason)
{
    if (c->closing)
        return;
    c->closing = true;
    c->reason = reason;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->deadline, on_handle_closed);
}

struct fl_conn *fl_conn_new(uv_loop_t *loop, enum fl_role role, const struct fl_key *key,
                            const struct fl_conn_ops *ops, void *data)
{
    struct fl_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    /* Neither init can fail on Unix with a valid loop. */
    uv_tcp_init(loop, &c->tcp);
    uv_timer_init(loop, &c->deadline);
    c->tcp.data = c;
    c->deadline.data = c;
    c->open_handles = 2;
    c->ops = ops;
    c->data = data;
    fl_auth_init(&c->auth, role, key);
    fl_frame_decoder_init(&c->dec);
    snprintf(c->peer, sizeof(c->peer), "?");
    return c;
}

uv_stream_t *fl_conn_stream(struct fl_conn *c)
{
    return (uv_stream_t *)&c->tcp;
}

void *fl_conn_data(const struct fl_conn *c)
{
    return c->data;
}

bool fl_conn_is_closing(const struct fl_conn *c)
{
    return c->closing;
}

const char *fl_conn_peer(const struct fl_conn *c)
{
    return c->peer;
}

uint32_t fl_conn_peer_protocol(const struct fl_conn *c)
{
    return c->peer_protocol;
}

static void describe_peer(struct fl_conn *c, const struct sockaddr *sa)
{
    char ip[46];
    uint16_t port;
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(in6, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
        snprintf(c->peer, sizeof(c->peer), "[%s]:%u", ip, (unsigned)port);
    } else {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
        uv_ip4_name(in4, ip, sizeof(ip));
        port = ntohs(in4->sin_port);
        snprintf(c->peer, sizeof(c->peer), "%s:%u", ip, (unsigned)port);
    }
}

static void on_deadline(uv_timer_t *t)
{
    struct fl_conn *c = t->data;
    fl_conn_close(c, -ETIMEDOUT);
}

/* ------------------------------------------------------------------ writing */

static void on_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct fl_conn *c = req->handle->data;
    free(w);
    if (status < 0 && status != UV_ECANCELED)
        fl_conn_close(c, status);
}

static struct write_req *write_req_new(size_t payload_offset, size_t payload_len)
{
    size_t total = FL_FRAME_HEADER + payload_offset + payload_len;
    struct write_req *w = malloc(sizeof(*w) + total);
    if (w == NULL)
        return NULL;
    w->buf = uv_buf_init((char *)w->bytes, (unsigned)total);
    fl_frame_put_header(w->bytes, (uint32_t)(payload_offset + payload_len));
    return w;
}

static int write_queued(struct fl_conn *c, struct write_req *w)
{
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > WRITE_QUEUE_MAX) {
        free(w);
        fl_conn_close(c, -ENOBUFS);
        return -ENOBUFS;
    }
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &w->buf, 1, on_written);
    if (rc < 0) {
        free(w);
        fl_conn_close(c, rc);
    }
    return rc;
}

static int send_handshake(struct fl_conn *c, const Faultline__Handshake *hs)
{
    size_t len = faultline__handshake__get_packed_size(hs);
    struct write_req *w = write_req_new(0, len);
    if (w == NULL)
        return -ENOMEM;
    faultline__handshake__pack(hs, w->bytes + FL_FRAME_HEADER);
    return write_queued(c, w);
}

int fl_conn_send(struct fl_conn *c, const Faultline__Envelope *env)
{
    if (c->closing)
        return -ENOTCONN;
    if (c->auth.state != FL_AUTH_ESTABLISHED)
        return -ENOTCONN;
    size_t len = faultline__envelope__get_packed_size(env);
    if (len > FL_FRAME_MAX - FL_SEAL_OVERHEAD)
        return -EMSGSIZE;
    struct write_req *w = write_req_new(FL_SEAL_OVERHEAD, len);
    if (w == NULL)
        return -ENOMEM;
    uint8_t *frame = w->bytes + FL_FRAME_HEADER;
    faultline__envelope__pack(env, frame + FL_SEQ_LEN);
    int rc = fl_auth_seal(&c->auth, frame, len);
    if (rc < 0) {
        free(w);
        return rc;
    }
    return write_queued(c, w);
}

/* ------------------------------------------------------------------ reading */

Faultline__Handshake *fl_handshake_unpack(const uint8_t *data, size_t len)
{
    Faultline__Handshake *hs = faultline__handshake__unpack(NULL, len, data);
    if (hs == NULL)
        return NULL;
    /* Anything but a handshake step -- say, an Envelope field -- is refused,
     * not skipped. */
    if (hs->base.n_unknown_fields != 0 || hs->step_case == FAULTLINE__HANDSHAKE__STEP__NOT_SET) {
        faultline__handshake__free_unpacked(hs, NULL);
        return NULL;
    }
    return hs;
}

/* Agent: a controller of another protocol version gets a Challenge that
 * carries only ours -- no nonce, no proof -- so that it can name both
 * versions (a version 1 controller says "protocol not supported"), and the
 * connection closes. */
static int refuse_version(struct fl_conn *c)
{
    Faultline__Challenge ch = FAULTLINE__CHALLENGE__INIT;
    ch.protocol = FL_PROTOCOL_VERSION;
    Faultline__Handshake out = FAULTLINE__HANDSHAKE__INIT;
    out.step_case = FAULTLINE__HANDSHAKE__STEP_CHALLENGE;
    out.challenge = &ch;
    int rc = send_handshake(c, &out);
    return rc < 0 ? rc : -EPROTONOSUPPORT;
}

/* Agent: the controller nonces of the Hellos answered lately, process-wide
 * (the loop is single threaded). A controller draws a fresh random nonce for
 * every connection, so a Hello that carries one again is recorded traffic
 * played back: it is refused as a replayed handshake before any Challenge,
 * rather than failing later as a proof made with another key. Older replays
 * than the ring remembers still fail at the proof (-EACCES). */
#define HELLOS_REMEMBERED 256
static uint8_t hello_nonces[HELLOS_REMEMBERED][FL_NONCE_LEN];
static size_t hello_nonces_used, hello_nonces_next;

static bool hello_replayed(const uint8_t *nonce)
{
    for (size_t i = 0; i < hello_nonces_used; i++)
        if (memcmp(hello_nonces[i], nonce, FL_NONCE_LEN) == 0)
            return true;
    return false;
}

static void hello_remember(const uint8_t *nonce)
{
    memcpy(hello_nonces[hello_nonces_next], nonce, FL_NONCE_LEN);
    hello_nonces_next = (hello_nonces_next + 1) % HELLOS_REMEMBERED;
    if (hello_nonces_used < HELLOS_REMEMBERED)
        hello_nonces_used++;
}

/* Agent: Hello -> Challenge. */
static int on_hello(struct fl_conn *c, const Faultline__Handshake *hs)
{
    if (hs->step_case != FAULTLINE__HANDSHAKE__STEP_HELLO)
        return -EPROTO;
    const Faultline__Hello *hello = hs->hello;
    if (hello->protocol != FL_PROTOCOL_VERSION) {
        fl_warn("%s: refused: the controller speaks protocol %u, this agent speaks %u "
                "(run the same faultline release on both)",
                c->peer, hello->protocol, FL_PROTOCOL_VERSION);
        c->peer_protocol = hello->protocol;
        return refuse_version(c);
    }
    if (hello->nonce.len == FL_NONCE_LEN && hello_replayed(hello->nonce.data))
        return -EALREADY;
    uint8_t nonce[FL_NONCE_LEN], proof[FL_MAC_LEN];
    int rc = fl_auth_challenge(&c->auth, hello->nonce.data, hello->nonce.len, nonce, proof);
    if (rc < 0)
        return rc;
    hello_remember(hello->nonce.data);
    Faultline__Challenge ch = FAULTLINE__CHALLENGE__INIT;
    ch.protocol = FL_PROTOCOL_VERSION;
    ch.nonce.data = nonce;
    ch.nonce.len = sizeof(nonce);
    ch.proof.data = proof;
    ch.proof.len = sizeof(proof);
    Faultline__Handshake out = FAULTLINE__HANDSHAKE__INIT;
    out.step_case = FAULTLINE__HANDSHAKE__STEP_CHALLENGE;
    out.challenge = &ch;
    return send_handshake(c, &out);
}

/* Controller: Challenge -> Proof. */
static int on_challenge(struct fl_conn *c, const Faultline__Handshake *hs)
{
    if (hs->step_case != FAULTLINE__HANDSHAKE__STEP_CHALLENGE)
        return -EPROTO;
    const Faultline__Challenge *ch = hs->challenge;
    if (ch->protocol != FL_PROTOCOL_VERSION) {
        c->peer_protocol = ch->protocol; /* the caller names both versions */
        return -EPROTONOSUPPORT;
    }
    uint8_t proof[FL_MAC_LEN];
    int rc = fl_auth_respond(&c->auth, ch->nonce.data, ch->nonce.len, ch->proof.data, ch->proof.len,
                             proof);
    if (rc < 0)
        return rc;
    Faultline__Proof pr = FAULTLINE__PROOF__INIT;
    pr.proof.data = proof;
    pr.proof.len = sizeof(proof);
    Faultline__Handshake out = FAULTLINE__HANDSHAKE__INIT;
    out.step_case = FAULTLINE__HANDSHAKE__STEP_PROOF;
    out.proof = &pr;
    return send_handshake(c, &out);
}

/* Agent: Proof -> ready. */
static int on_proof(struct fl_conn *c, const Faultline__Handshake *hs)
{
    if (hs->step_case != FAULTLINE__HANDSHAKE__STEP_PROOF)
        return -EPROTO;
    int rc = fl_auth_verify(&c->auth, hs->proof->proof.data, hs->proof->proof.len);
    if (rc < 0)
        return rc;
    uv_timer_stop(&c->deadline);
    c->ready = true;
    c->ops->ready(c, NULL);
    return 0;
}

static int on_handshake_frame(struct fl_conn *c, const uint8_t *p, size_t len)
{
    Faultline__Handshake *hs = fl_handshake_unpack(p, len);
    if (hs == NULL)
        return -EPROTO;
    int rc;
    switch (c->auth.state) {
    case FL_AUTH_START:
        rc = on_hello(c, hs);
        break;
    case FL_AUTH_HELLO_SENT:
        rc = on_challenge(c, hs);
        break;
    case FL_AUTH_CHALLENGED:
        rc = on_proof(c, hs);
        break;
    default:
        rc = -EPROTO;
        break;
    }
    faultline__handshake__free_unpacked(hs, NULL);
    return rc;
}

static int on_sealed_frame(struct fl_conn *c, uint8_t *p, size_t len)
{
    const uint8_t *payload;
    size_t plen;
    int rc = fl_auth_open(&c->auth, p, len, &payload, &plen);
    if (rc < 0)
        return rc;
    Faultline__Envelope *env = faultline__envelope__unpack(NULL, plen, payload);
    if (env == NULL)
        return -EBADMSG;
    if (!c->ready) {
        /* Controller: the first sealed frame must be the agent's Welcome. */
        if (env->msg_case != FAULTLINE__ENVELOPE__MSG_WELCOME) {
            faultline__envelope__free_unpacked(env, NULL);
            return -EPROTO;
        }
        uv_timer_stop(&c->deadline);
        c->ready = true;
        c->ops->ready(c, env->welcome);
    } else {
        c->ops->message(c, env);
    }
    faultline__envelope__free_unpacked(env, NULL);
    return 0;
}

static int on_frame(struct fl_conn *c, uint8_t *p, size_t len)
{
    switch (c->auth.state) {
    case FL_AUTH_START:
        /* only an agent reads in this state; a controller sends Hello first */
        if (c->auth.role != FL_ROLE_AGENT)
            return -EPROTO;
        return on_handshake_frame(c, p, len);
    case FL_AUTH_HELLO_SENT:
    case FL_AUTH_CHALLENGED:
        return on_handshake_frame(c, p, len);
    case FL_AUTH_PROOF_SENT:
    case FL_AUTH_ESTABLISHED:
        return on_sealed_frame(c, p, len);
    case FL_AUTH_FAILED:
        break;
    }
    return -EPROTO;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct fl_conn *c = h->data;
    uint8_t *space;
    size_t len;
    (void)suggested;
    if (fl_frame_decoder_reserve(&c->dec, READ_CHUNK, &space, &len) < 0) {
        *buf = uv_buf_init(NULL, 0); /* read callback gets UV_ENOBUFS */
        return;
    }
    *buf = uv_buf_init((char *)space, (unsigned)len);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct fl_conn *c = s->data;
    (void)buf;
    if (nread < 0) {
        int reason = (int)nread;
        if (reason == UV_EOF && fl_frame_decoder_finish(&c->dec) < 0)
            reason = -EPIPE;
        fl_conn_close(c, reason);
        return;
    }
    fl_frame_decoder_commit(&c->dec, (size_t)nread);
    while (!c->closing) {
        uint8_t *p;
        size_t len;
        int rc = fl_frame_decoder_next(&c->dec, &p, &len);
        if (rc == 0)
            break;
        if (rc > 0)
            rc = on_frame(c, p, len);
        if (rc < 0) {
            fl_conn_close(c, rc);
            break;
        }
    }
}

/* ------------------------------------------------------------------ starting */

int fl_conn_accept(struct fl_conn *c, uint64_t handshake_timeout_ms)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
        describe_peer(c, (struct sockaddr *)&ss);
    uv_tcp_nodelay(&c->tcp, 1);
    int rc = uv_timer_start(&c->deadline, on_deadline, handshake_timeout_ms, 0);
    if (rc < 0)
        return rc;
    return uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_connected(uv_connect_t *req, int status)
{
    struct fl_conn *c = req->data;
    if (c->closing)
        return;
    if (status < 0) {
        fl_conn_close(c, status);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    uint8_t nonce[FL_NONCE_LEN];
    if (rc == 0)
        rc = fl_auth_hello(&c->auth, nonce);
    if (rc < 0) {
        fl_conn_close(c, rc);
        return;
    }
    Faultline__Hello hello = FAULTLINE__HELLO__INIT;
    hello.protocol = FL_PROTOCOL_VERSION;
    hello.nonce.data = nonce;
    hello.nonce.len = sizeof(nonce);
    hello.client = fl_pb_str("faultline " FL_VERSION);
    Faultline__Handshake hs = FAULTLINE__HANDSHAKE__INIT;
    hs.step_case = FAULTLINE__HANDSHAKE__STEP_HELLO;
    hs.hello = &hello;
    rc = send_handshake(c, &hs);
    if (rc < 0)
        fl_conn_close(c, rc);
}

int fl_conn_connect(struct fl_conn *c, const struct sockaddr *addr, uint64_t timeout_ms)
{
    describe_peer(c, addr);
    c->connect_req.data = c;
    int rc = uv_timer_start(&c->deadline, on_deadline, timeout_ms, 0);
    if (rc < 0)
        return rc;
    return uv_tcp_connect(&c->connect_req, &c->tcp, addr, on_connected);
}
