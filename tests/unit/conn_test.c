/* The authenticated connection on a real libuv loop over loopback TCP: both
 * ends are fl_conn, in one process. Every test closes every handle and checks
 * that uv_loop_close() succeeds. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <uv.h>

#include "common/conn.h"
#include "common/frame.h"
#include "common/pbutil.h"

struct world {
    uv_loop_t loop;
    uv_tcp_t listener;
    struct fl_key agent_key;
    struct fl_key ctl_key;
    uint64_t handshake_timeout_ms;
    struct fl_conn *agent;
    struct fl_conn *ctl;
    int agent_ready, ctl_ready;
    int agent_closed, ctl_closed;
    int agent_reason, ctl_reason;
    int pings_to_send;
    int pongs;
    int pings_seen;
    uint64_t last_pong_id;
    int raw_client; /* connect a bare TCP client instead of a controller */
    uv_tcp_t raw;
    int raw_closed;
    uint8_t raw_send[256]; /* what the bare client says once connected */
    size_t raw_send_len;
    uv_write_t raw_write;
    uint8_t raw_got[1024]; /* what it hears back */
    size_t raw_got_len;
    int raw_eof;
    uint32_t agent_peer_protocol;
};

static void close_listener(struct world *w)
{
    if (!uv_is_closing((uv_handle_t *)&w->listener))
        uv_close((uv_handle_t *)&w->listener, NULL);
}

/* ---- agent side */

static void agent_ready(struct fl_conn *c, const Faultline__Welcome *welcome)
{
    struct world *w = fl_conn_data(c);
    assert_null(welcome);
    w->agent_ready++;
    Faultline__Welcome wel = FAULTLINE__WELCOME__INIT;
    wel.version = fl_pb_str("test");
    wel.session_id = 42;
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_WELCOME;
    env.welcome = &wel;
    assert_int_equal(fl_conn_send(c, &env), 0);
}

static void agent_message(struct fl_conn *c, const Faultline__Envelope *env)
{
    struct world *w = fl_conn_data(c);
    assert_int_equal(env->msg_case, FAULTLINE__ENVELOPE__MSG_PING);
    w->pings_seen++;
    Faultline__Ping pong = FAULTLINE__PING__INIT;
    Faultline__Envelope out = FAULTLINE__ENVELOPE__INIT;
    out.id = env->id;
    out.msg_case = FAULTLINE__ENVELOPE__MSG_PONG;
    out.pong = &pong;
    assert_int_equal(fl_conn_send(c, &out), 0);
}

static void agent_closed(struct fl_conn *c, int reason)
{
    struct world *w = fl_conn_data(c);
    w->agent_closed++;
    w->agent_reason = reason;
    w->agent_peer_protocol = fl_conn_peer_protocol(c);
    w->agent = NULL;
    close_listener(w);
}

static const struct fl_conn_ops agent_ops = {agent_ready, agent_message, agent_closed};

static void on_connection(uv_stream_t *l, int status)
{
    struct world *w = l->data;
    assert_int_equal(status, 0);
    w->agent = fl_conn_new(&w->loop, FL_ROLE_AGENT, &w->agent_key, &agent_ops, w);
    assert_non_null(w->agent);
    assert_int_equal(uv_accept(l, fl_conn_stream(w->agent)), 0);
    assert_int_equal(fl_conn_accept(w->agent, w->handshake_timeout_ms), 0);
}

/* ---- controller side */

static void ctl_ready(struct fl_conn *c, const Faultline__Welcome *welcome)
{
    struct world *w = fl_conn_data(c);
    assert_non_null(welcome);
    assert_string_equal(welcome->version, "test");
    assert_int_equal(welcome->session_id, 42);
    w->ctl_ready++;
    for (int i = 0; i < w->pings_to_send; i++) {
        Faultline__Ping ping = FAULTLINE__PING__INIT;
        Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
        env.id = (uint64_t)i + 1;
        env.msg_case = FAULTLINE__ENVELOPE__MSG_PING;
        env.ping = &ping;
        assert_int_equal(fl_conn_send(c, &env), 0);
    }
    if (w->pings_to_send == 0)
        fl_conn_close(c, 0);
}

static void ctl_message(struct fl_conn *c, const Faultline__Envelope *env)
{
    struct world *w = fl_conn_data(c);
    assert_int_equal(env->msg_case, FAULTLINE__ENVELOPE__MSG_PONG);
    assert_int_equal(env->id, w->last_pong_id + 1); /* in order */
    w->last_pong_id = env->id;
    if (++w->pongs == w->pings_to_send) {
        fl_conn_close(c, 0);
        fl_conn_close(c, 0); /* idempotent */
    }
}

static void ctl_closed(struct fl_conn *c, int reason)
{
    struct world *w = fl_conn_data(c);
    w->ctl_closed++;
    w->ctl_reason = reason;
    w->ctl = NULL;
}

static const struct fl_conn_ops ctl_ops = {ctl_ready, ctl_message, ctl_closed};

static void raw_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct world *w = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)w->raw_got + w->raw_got_len,
                       (unsigned)(sizeof(w->raw_got) - w->raw_got_len));
}

static void raw_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct world *w = s->data;
    (void)buf;
    if (nread > 0)
        w->raw_got_len += (size_t)nread;
    else if (nread < 0)
        w->raw_eof = 1;
}

static void raw_written(uv_write_t *req, int status)
{
    assert_int_equal(status, 0);
    (void)req;
}

static void raw_connected(uv_connect_t *req, int status)
{
    struct world *w = req->handle->data;
    assert_int_equal(status, 0);
    if (w->raw_send_len == 0)
        return; /* say nothing */
    uv_buf_t b = uv_buf_init((char *)w->raw_send, (unsigned)w->raw_send_len);
    assert_int_equal(uv_write(&w->raw_write, req->handle, &b, 1, raw_written), 0);
    assert_int_equal(uv_read_start(req->handle, raw_alloc, raw_read), 0);
}

static void raw_closed(uv_handle_t *h)
{
    struct world *w = h->data;
    w->raw_closed++;
}

static void run_world(struct world *w)
{
    assert_int_equal(uv_loop_init(&w->loop), 0);
    uv_tcp_init(&w->loop, &w->listener);
    w->listener.data = w;
    struct sockaddr_in sin;
    uv_ip4_addr("127.0.0.1", 0, &sin);
    assert_int_equal(uv_tcp_bind(&w->listener, (struct sockaddr *)&sin, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&w->listener, 8, on_connection), 0);
    int len = sizeof(sin);
    uv_tcp_getsockname(&w->listener, (struct sockaddr *)&sin, &len);

    uv_connect_t req;
    if (w->raw_client) {
        uv_tcp_init(&w->loop, &w->raw);
        w->raw.data = w;
        assert_int_equal(uv_tcp_connect(&req, &w->raw, (struct sockaddr *)&sin, raw_connected), 0);
    } else {
        w->ctl = fl_conn_new(&w->loop, FL_ROLE_CONTROLLER, &w->ctl_key, &ctl_ops, w);
        assert_int_equal(fl_conn_connect(w->ctl, (struct sockaddr *)&sin, 5000), 0);
    }
    /* run until the agent side is gone (and a talking raw client has heard
     * the end); the raw client is closed after that */
    while ((w->agent_closed == 0 || (w->raw_send_len > 0 && !w->raw_eof)) &&
           uv_run(&w->loop, UV_RUN_ONCE))
        ;
    if (w->raw_client)
        uv_close((uv_handle_t *)&w->raw, raw_closed);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&w->loop), 0);
}

static void keys(struct world *w, uint8_t a, uint8_t c)
{
    memset(w->agent_key.bytes, a, FL_KEY_LEN);
    memset(w->ctl_key.bytes, c, FL_KEY_LEN);
}

static void test_handshake_and_requests(void **state)
{
    (void)state;
    struct world w;
    memset(&w, 0, sizeof(w));
    keys(&w, 1, 1);
    w.handshake_timeout_ms = 5000;
    w.pings_to_send = 1000; /* pipelined: many frames per read */
    run_world(&w);
    assert_int_equal(w.agent_ready, 1);
    assert_int_equal(w.ctl_ready, 1);
    assert_int_equal(w.pings_seen, 1000);
    assert_int_equal(w.pongs, 1000);
    assert_int_equal(w.ctl_closed, 1);
    assert_int_equal(w.ctl_reason, 0);
    assert_int_equal(w.agent_closed, 1);
    assert_int_equal(w.agent_reason, UV_EOF);
}

static void test_wrong_key(void **state)
{
    (void)state;
    struct world w;
    memset(&w, 0, sizeof(w));
    keys(&w, 1, 2);
    w.handshake_timeout_ms = 5000;
    run_world(&w);
    assert_int_equal(w.agent_ready, 0);
    assert_int_equal(w.ctl_ready, 0);
    assert_int_equal(w.ctl_closed, 1);
    assert_int_equal(w.ctl_reason, -EACCES);
    assert_int_equal(w.agent_closed, 1);
    assert_true(w.agent_reason == UV_EOF || w.agent_reason == UV_ECONNRESET);
}

static void test_handshake_timeout(void **state)
{
    (void)state;
    struct world w;
    memset(&w, 0, sizeof(w));
    keys(&w, 1, 1);
    w.handshake_timeout_ms = 100;
    w.raw_client = 1;
    uint64_t t0 = uv_hrtime();
    run_world(&w);
    uint64_t elapsed_ms = (uv_hrtime() - t0) / 1000000;
    assert_int_equal(w.agent_ready, 0);
    assert_int_equal(w.agent_closed, 1);
    assert_int_equal(w.agent_reason, -ETIMEDOUT);
    assert_true(elapsed_ms >= 90);
    assert_int_equal(w.raw_closed, 1);
}

/* The bare client's message: a Hello of protocol, nonce filled with fill. */
static void raw_hello(struct world *w, uint32_t protocol, uint8_t fill)
{
    uint8_t nonce[FL_NONCE_LEN];
    memset(nonce, fill, sizeof(nonce));
    Faultline__Hello hello = FAULTLINE__HELLO__INIT;
    hello.protocol = protocol;
    hello.nonce.data = nonce;
    hello.nonce.len = sizeof(nonce);
    Faultline__Handshake hs = FAULTLINE__HANDSHAKE__INIT;
    hs.step_case = FAULTLINE__HANDSHAKE__STEP_HELLO;
    hs.hello = &hello;
    size_t n = faultline__handshake__pack(&hs, w->raw_send + FL_FRAME_HEADER);
    fl_frame_put_header(w->raw_send, (uint32_t)n);
    w->raw_send_len = FL_FRAME_HEADER + n;
}

/* The one frame the bare client heard, as a Handshake (or NULL: none). */
static Faultline__Handshake *raw_heard(struct world *w)
{
    struct fl_frame_decoder dec;
    fl_frame_decoder_init(&dec);
    assert_int_equal(fl_frame_decoder_push(&dec, w->raw_got, w->raw_got_len), 0);
    uint8_t *p;
    size_t len;
    Faultline__Handshake *hs = NULL;
    if (fl_frame_decoder_next(&dec, &p, &len) == 1) {
        hs = fl_handshake_unpack(p, len);
        assert_non_null(hs);
        assert_int_equal(fl_frame_decoder_next(&dec, &p, &len), 0); /* and no more */
    }
    assert_int_equal(fl_frame_decoder_finish(&dec), 0);
    fl_frame_decoder_free(&dec);
    return hs;
}

/* A Hello recorded off the wire and played back is refused as such, before
 * any Challenge, and not mistaken for a controller with another key. */
static void test_replayed_handshake(void **state)
{
    (void)state;
    struct world w;
    memset(&w, 0, sizeof(w));
    keys(&w, 1, 1);
    w.handshake_timeout_ms = 100;
    w.raw_client = 1;
    raw_hello(&w, FL_PROTOCOL_VERSION, 0x3c);
    run_world(&w); /* first time: challenged, then no proof in time */
    assert_int_equal(w.agent_reason, -ETIMEDOUT);
    Faultline__Handshake *hs = raw_heard(&w);
    assert_non_null(hs);
    assert_int_equal(hs->step_case, FAULTLINE__HANDSHAKE__STEP_CHALLENGE);
    assert_int_equal(hs->challenge->proof.len, FL_MAC_LEN);
    faultline__handshake__free_unpacked(hs, NULL);

    uint8_t sent[sizeof(w.raw_send)];
    size_t sent_len = w.raw_send_len;
    memcpy(sent, w.raw_send, sent_len);
    memset(&w, 0, sizeof(w));
    keys(&w, 1, 1);
    w.handshake_timeout_ms = 5000;
    w.raw_client = 1;
    memcpy(w.raw_send, sent, sent_len); /* the same bytes again */
    w.raw_send_len = sent_len;
    run_world(&w);
    assert_int_equal(w.agent_closed, 1);
    assert_int_equal(w.agent_reason, -EALREADY);
    assert_null(raw_heard(&w)); /* nothing said back */

    /* a fresh Hello is still answered */
    memset(&w, 0, sizeof(w));
    keys(&w, 1, 1);
    w.handshake_timeout_ms = 100;
    w.raw_client = 1;
    raw_hello(&w, FL_PROTOCOL_VERSION, 0x3d);
    run_world(&w);
    assert_int_equal(w.agent_reason, -ETIMEDOUT);
    hs = raw_heard(&w);
    assert_non_null(hs);
    faultline__handshake__free_unpacked(hs, NULL);
}

/* A controller of protocol 1 (HMAC, payload in clear) is refused with a
 * Challenge that names this agent's protocol and carries nothing else, so that
 * the old controller can say which versions met; then the agent hangs up. */
static void test_old_protocol_refused(void **state)
{
    (void)state;
    struct world w;
    memset(&w, 0, sizeof(w));
    keys(&w, 1, 1);
    w.handshake_timeout_ms = 5000;
    w.raw_client = 1;
    raw_hello(&w, 1, 9);
    run_world(&w);
    assert_int_equal(w.agent_ready, 0);
    assert_int_equal(w.agent_closed, 1);
    assert_int_equal(w.agent_reason, -EPROTONOSUPPORT);
    assert_int_equal(w.agent_peer_protocol, 1);
    assert_int_equal(w.raw_eof, 1);
    /* exactly one frame came back: the refusal, naming our version only */
    Faultline__Handshake *reply = raw_heard(&w);
    assert_non_null(reply);
    assert_int_equal(reply->step_case, FAULTLINE__HANDSHAKE__STEP_CHALLENGE);
    assert_int_equal(reply->challenge->protocol, FL_PROTOCOL_VERSION);
    assert_int_equal(reply->challenge->nonce.len, 0);
    assert_int_equal(reply->challenge->proof.len, 0);
    faultline__handshake__free_unpacked(reply, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_and_requests), cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_handshake_timeout),      cmocka_unit_test(test_old_protocol_refused),
        cmocka_unit_test(test_replayed_handshake),
    };
    return cmocka_run_group_tests_name("conn", tests, NULL, NULL);
}
