/* Authentication: the handshake with right and wrong keys, and every way a
 * sealed frame can be forged, replayed or reordered. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/auth.h"
#include "common/conn.h"

struct pair {
    struct fl_auth ctl;
    struct fl_auth agent;
};

static void make_key(struct fl_key *k, uint8_t fill)
{
    memset(k->bytes, fill, sizeof(k->bytes));
    k->bytes[0] ^= 0x5a;
}

/* Runs the handshake; returns the first failing step's code, 0 when both
 * sides are established. */
static int handshake(struct pair *p, const struct fl_key *kc, const struct fl_key *ka)
{
    uint8_t nc[FL_NONCE_LEN], na[FL_NONCE_LEN], pa[FL_MAC_LEN], pc[FL_MAC_LEN];
    fl_auth_init(&p->ctl, FL_ROLE_CONTROLLER, kc);
    fl_auth_init(&p->agent, FL_ROLE_AGENT, ka);
    int rc;
    if ((rc = fl_auth_hello(&p->ctl, nc)) < 0)
        return rc;
    if ((rc = fl_auth_challenge(&p->agent, nc, sizeof(nc), na, pa)) < 0)
        return rc;
    if ((rc = fl_auth_respond(&p->ctl, na, sizeof(na), pa, sizeof(pa), pc)) < 0)
        return rc;
    return fl_auth_verify(&p->agent, pc, sizeof(pc));
}

/* Seals payload from one side into frame; returns the frame's length. */
static size_t seal(struct fl_auth *a, const char *payload, uint8_t *frame)
{
    size_t n = strlen(payload);
    memcpy(frame + FL_SEAL_OVERHEAD, payload, n);
    assert_int_equal(fl_auth_seal(a, frame, n), 0);
    return FL_SEAL_OVERHEAD + n;
}

static void expect_open(struct fl_auth *a, const uint8_t *frame, size_t len, const char *want)
{
    const uint8_t *p;
    size_t n;
    assert_int_equal(fl_auth_open(a, frame, len, &p, &n), 0);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(p, want, n);
}

static void test_right_key(void **state)
{
    (void)state;
    struct fl_key k;
    make_key(&k, 1);
    struct pair p;
    assert_int_equal(handshake(&p, &k, &k), 0);
    assert_int_equal(p.agent.state, FL_AUTH_ESTABLISHED);
    assert_memory_equal(p.ctl.session_key, p.agent.session_key, FL_MAC_LEN);

    uint8_t f[128];
    /* agent's Welcome first: it completes the controller's side */
    size_t n = seal(&p.agent, "welcome", f);
    expect_open(&p.ctl, f, n, "welcome");
    assert_int_equal(p.ctl.state, FL_AUTH_ESTABLISHED);
    for (int i = 0; i < 10; i++) {
        n = seal(&p.ctl, "request", f);
        expect_open(&p.agent, f, n, "request");
        n = seal(&p.agent, "reply", f);
        expect_open(&p.ctl, f, n, "reply");
    }
    /* an empty payload is a valid sealed frame */
    n = seal(&p.ctl, "", f);
    expect_open(&p.agent, f, n, "");
}

/* Two runs with the same key never share a session key: fresh nonces. */
static void test_fresh_sessions(void **state)
{
    (void)state;
    struct fl_key k;
    make_key(&k, 2);
    struct pair a, b;
    assert_int_equal(handshake(&a, &k, &k), 0);
    assert_int_equal(handshake(&b, &k, &k), 0);
    assert_memory_not_equal(a.ctl.session_key, b.ctl.session_key, FL_MAC_LEN);
    assert_memory_not_equal(a.ctl.nonce_c, b.ctl.nonce_c, FL_NONCE_LEN);

    /* a frame of session a does not open in session b */
    uint8_t f[128];
    size_t n = seal(&a.ctl, "request", f);
    const uint8_t *pl;
    size_t pn;
    assert_int_equal(fl_auth_open(&b.agent, f, n, &pl, &pn), -EBADMSG);
}

static void test_wrong_key(void **state)
{
    (void)state;
    struct fl_key k1, k2;
    make_key(&k1, 3);
    make_key(&k2, 4);
    struct pair p;
    /* the agent proves first: a controller with another key finds out */
    assert_int_equal(handshake(&p, &k1, &k2), -EACCES);
    assert_int_equal(p.ctl.state, FL_AUTH_FAILED);
}

/* An impostor controller that cannot compute the proof is refused by the
 * agent, and the agent's own proof cannot be reflected back as ours. */
static void test_agent_refuses_bad_proof(void **state)
{
    (void)state;
    struct fl_key k;
    make_key(&k, 5);
    struct fl_auth agent;
    fl_auth_init(&agent, FL_ROLE_AGENT, &k);
    uint8_t nc[FL_NONCE_LEN], na[FL_NONCE_LEN], pa[FL_MAC_LEN];
    memset(nc, 7, sizeof(nc));
    assert_int_equal(fl_auth_challenge(&agent, nc, sizeof(nc), na, pa), 0);
    assert_int_equal(fl_auth_verify(&agent, pa, sizeof(pa)), -EACCES);
    assert_int_equal(agent.state, FL_AUTH_FAILED);

    fl_auth_init(&agent, FL_ROLE_AGENT, &k);
    uint8_t zero[FL_MAC_LEN] = {0};
    assert_int_equal(fl_auth_challenge(&agent, nc, sizeof(nc), na, pa), 0);
    assert_int_equal(fl_auth_verify(&agent, zero, sizeof(zero)), -EACCES);

    /* short nonce or proof: protocol error */
    fl_auth_init(&agent, FL_ROLE_AGENT, &k);
    assert_int_equal(fl_auth_challenge(&agent, nc, 16, na, pa), -EPROTO);
}

static void test_out_of_turn(void **state)
{
    (void)state;
    struct fl_key k;
    make_key(&k, 6);
    struct fl_auth a;
    uint8_t f[64] = {0};
    const uint8_t *pl;
    size_t pn;
    /* no sealing or opening before the handshake */
    fl_auth_init(&a, FL_ROLE_AGENT, &k);
    assert_int_equal(fl_auth_seal(&a, f, 0), -EPROTO);
    assert_int_equal(fl_auth_open(&a, f, sizeof(f), &pl, &pn), -EPROTO);
    uint8_t pc[FL_MAC_LEN] = {0};
    assert_int_equal(fl_auth_verify(&a, pc, sizeof(pc)), -EPROTO); /* proof before hello */
    fl_auth_init(&a, FL_ROLE_CONTROLLER, &k);
    assert_int_equal(fl_auth_seal(&a, f, 0), -EPROTO);
}

static void test_tampered(void **state)
{
    (void)state;
    struct fl_key k;
    make_key(&k, 7);
    struct pair p;
    assert_int_equal(handshake(&p, &k, &k), 0);
    uint8_t f[128], g[128];
    size_t n = seal(&p.ctl, "inject kill nginx", f);
    const uint8_t *pl;
    size_t pn;
    /* flip one bit anywhere: sequence number, MAC or payload */
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(g, f, n);
            g[i] ^= (uint8_t)(1u << bit);
            struct fl_auth agent = p.agent; /* each attempt on a fresh copy */
            assert_int_not_equal(fl_auth_open(&agent, g, n, &pl, &pn), 0);
        }
    }
    /* truncated or extended */
    struct fl_auth agent = p.agent;
    assert_int_equal(fl_auth_open(&agent, f, n - 1, &pl, &pn), -EBADMSG);
    agent = p.agent;
    assert_int_equal(fl_auth_open(&agent, f, FL_SEAL_OVERHEAD - 1, &pl, &pn), -EBADMSG);
    /* and the untouched frame still opens */
    expect_open(&p.agent, f, n, "inject kill nginx");
}

static void test_replayed(void **state)
{
    (void)state;
    struct fl_key k;
    make_key(&k, 8);
    struct pair p;
    assert_int_equal(handshake(&p, &k, &k), 0);
    uint8_t f[128];
    size_t n = seal(&p.ctl, "revert all", f);
    expect_open(&p.agent, f, n, "revert all");
    const uint8_t *pl;
    size_t pn;
    assert_int_equal(fl_auth_open(&p.agent, f, n, &pl, &pn), -EPROTO);
    assert_int_equal(p.agent.state, FL_AUTH_FAILED);
}

static void test_out_of_sequence(void **state)
{
    (void)state;
    struct fl_key k;
    make_key(&k, 9);
    struct pair p;
    assert_int_equal(handshake(&p, &k, &k), 0);
    uint8_t f1[128], f2[128];
    size_t n1 = seal(&p.ctl, "first", f1);
    size_t n2 = seal(&p.ctl, "second", f2);
    const uint8_t *pl;
    size_t pn;
    /* the second before the first: refused, even with a valid MAC */
    struct fl_auth agent = p.agent;
    assert_int_equal(fl_auth_open(&agent, f2, n2, &pl, &pn), -EPROTO);
    /* in order, both open */
    expect_open(&p.agent, f1, n1, "first");
    expect_open(&p.agent, f2, n2, "second");
}

/* A frame the controller sealed cannot be fed back to the controller as if
 * the agent had sent it: the direction is under the MAC. */
static void test_reflected(void **state)
{
    (void)state;
    struct fl_key k;
    make_key(&k, 10);
    struct pair p;
    assert_int_equal(handshake(&p, &k, &k), 0);
    uint8_t f[128];
    size_t n = seal(&p.ctl, "ping", f);
    const uint8_t *pl;
    size_t pn;
    assert_int_equal(fl_auth_open(&p.ctl, f, n, &pl, &pn), -EBADMSG);
}

/* Before authentication nothing but a Handshake is decoded: an Envelope, or
 * a Handshake carrying any field it does not define, is refused whole. */
static void test_only_handshake_before_auth(void **state)
{
    (void)state;
    uint8_t buf[256];

    Faultline__Ping ping = FAULTLINE__PING__INIT;
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = 1;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_PING;
    env.ping = &ping;
    size_t n = faultline__envelope__pack(&env, buf);
    assert_null(fl_handshake_unpack(buf, n));

    Faultline__InjectRequest inj = FAULTLINE__INJECT_REQUEST__INIT;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_INJECT;
    env.inject = &inj;
    n = faultline__envelope__pack(&env, buf);
    assert_null(fl_handshake_unpack(buf, n));

    /* a valid Hello followed by an unknown field */
    uint8_t nonce[FL_NONCE_LEN] = {1};
    Faultline__Hello hello = FAULTLINE__HELLO__INIT;
    hello.protocol = FL_PROTOCOL_VERSION;
    hello.nonce.data = nonce;
    hello.nonce.len = sizeof(nonce);
    Faultline__Handshake hs = FAULTLINE__HANDSHAKE__INIT;
    hs.step_case = FAULTLINE__HANDSHAKE__STEP_HELLO;
    hs.hello = &hello;
    n = faultline__handshake__pack(&hs, buf);
    Faultline__Handshake *ok = fl_handshake_unpack(buf, n);
    assert_non_null(ok);
    assert_int_equal(ok->step_case, FAULTLINE__HANDSHAKE__STEP_HELLO);
    faultline__handshake__free_unpacked(ok, NULL);
    buf[n] = (16 << 3) | 0; /* field 16, varint */
    buf[n + 1] = 1;
    assert_null(fl_handshake_unpack(buf, n + 2));

    /* an empty message carries no step */
    assert_null(fl_handshake_unpack(buf, 0));
    /* garbage */
    memset(buf, 0xff, 64);
    assert_null(fl_handshake_unpack(buf, 64));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_right_key),   cmocka_unit_test(test_fresh_sessions),
        cmocka_unit_test(test_wrong_key),   cmocka_unit_test(test_agent_refuses_bad_proof),
        cmocka_unit_test(test_out_of_turn), cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_replayed),    cmocka_unit_test(test_out_of_sequence),
        cmocka_unit_test(test_reflected),   cmocka_unit_test(test_only_handshake_before_auth),
    };
    return cmocka_run_group_tests_name("auth", tests, NULL, NULL);
}
