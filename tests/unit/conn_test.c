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

static void raw_connected(uv_connect_t *req, int status)
{
    assert_int_equal(status, 0);
    (void)req; /* and then say nothing */
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
    /* run until the agent side is gone; the raw client is closed after that */
    while (w->agent_closed == 0 && uv_run(&w->loop, UV_RUN_ONCE))
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_and_requests),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_handshake_timeout),
    };
    return cmocka_run_group_tests_name("conn", tests, NULL, NULL);
}
