/* Authentication and encryption: the handshake with right and wrong keys, that
 * a sealed frame hides its payload, and every way one can be forged, replayed,
 * reordered or sent back the other way. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/evp.h>

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
    memcpy(frame + FL_SEQ_LEN, payload, n);
    assert_int_equal(fl_auth_seal(a, frame, n), 0);
    return FL_SEAL_OVERHEAD + n;
}

/* Opens a copy, so that frame stays as it was on the wire. */
static int try_open(struct fl_auth *a, const uint8_t *frame, size_t len)
{
    uint8_t copy[256];
    assert_true(len <= sizeof(copy));
    memcpy(copy, frame, len);
    const uint8_t *p;
    size_t n;
    return fl_auth_open(a, copy, len, &p, &n);
}

static bool contains(const uint8_t *hay, size_t n, const void *needle, size_t m)
{
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return true;
    return false;
}

static void expect_open(struct fl_auth *a, uint8_t *frame, size_t len, const char *want)
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
    /* one key per direction, the same on both ends */
    assert_memory_equal(p.ctl.send_key, p.agent.recv_key, FL_AEAD_KEY_LEN);
    assert_memory_equal(p.ctl.recv_key, p.agent.send_key, FL_AEAD_KEY_LEN);
    assert_memory_not_equal(p.ctl.send_key, p.ctl.recv_key, FL_AEAD_KEY_LEN);

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
    assert_memory_not_equal(a.ctl.send_key, b.ctl.send_key, FL_AEAD_KEY_LEN);
    assert_memory_not_equal(a.ctl.recv_key, b.ctl.recv_key, FL_AEAD_KEY_LEN);
    assert_memory_not_equal(a.ctl.nonce_c, b.ctl.nonce_c, FL_NONCE_LEN);

    /* a frame of session a does not open in session b */
    uint8_t f[128];
    size_t n = seal(&a.ctl, "request", f);
    assert_int_equal(try_open(&b.agent, f, n), -EBADMSG);
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

/* What crosses the wire hides the payload: a marker sealed in a frame is
 * nowhere in the sealed bytes, and the same payload sealed twice looks
 * different each time. */
static void test_payload_hidden(void **state)
{
    (void)state;
    struct fl_key k;
    make_key(&k, 11);
    struct pair p;
    assert_int_equal(handshake(&p, &k, &k), 0);
    static const char marker[] = "MARKER-7f3c-kill-nginx-on-db1";
    uint8_t f1[128], f2[128];
    size_t n1 = seal(&p.ctl, marker, f1);
    size_t n2 = seal(&p.ctl, marker, f2);
    assert_int_equal(n1, FL_SEAL_OVERHEAD + strlen(marker));
    assert_false(contains(f1, n1, marker, strlen(marker)));
    assert_false(contains(f2, n2, marker, strlen(marker)));
    /* not even a fragment of it */
    assert_false(contains(f1, n1, "MARKER", 6));
    assert_false(contains(f1, n1, "nginx", 5));
    assert_memory_not_equal(f1 + FL_SEQ_LEN, f2 + FL_SEQ_LEN, n1 - FL_SEQ_LEN);
    /* the agent's direction is encrypted too */
    uint8_t f3[128];
    size_t n3 = seal(&p.agent, marker, f3);
    assert_false(contains(f3, n3, marker, strlen(marker)));
    /* and all of them open to the marker */
    expect_open(&p.agent, f1, n1, marker);
    expect_open(&p.agent, f2, n2, marker);
    expect_open(&p.ctl, f3, n3, marker);
}

/* The layout is what auth.h says, checked with OpenSSL directly:
 * seq:u64be ciphertext tag[16], ChaCha20-Poly1305 under the direction's key,
 * nonce 0:u32 || seq, seq as associated data. */
static void test_wire_layout(void **state)
{
    (void)state;
    struct fl_key k;
    make_key(&k, 12);
    struct pair p;
    assert_int_equal(handshake(&p, &k, &k), 0);
    uint8_t f[128];
    seal(&p.ctl, "zero", f);
    size_t n = seal(&p.ctl, "one", f); /* seq 1 */
    static const uint8_t seq1[FL_SEQ_LEN] = {0, 0, 0, 0, 0, 0, 0, 1};
    assert_memory_equal(f, seq1, FL_SEQ_LEN);

    uint8_t nonce[12] = {0};
    memcpy(nonce + 4, f, FL_SEQ_LEN);
    size_t clen = n - FL_SEAL_OVERHEAD;
    uint8_t plain[16];
    int len = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    assert_non_null(ctx);
    assert_int_equal(
        EVP_DecryptInit_ex(ctx, EVP_chacha20_poly1305(), NULL, p.agent.recv_key, nonce), 1);
    assert_int_equal(EVP_DecryptUpdate(ctx, NULL, &len, f, FL_SEQ_LEN), 1);
    assert_int_equal(EVP_DecryptUpdate(ctx, plain, &len, f + FL_SEQ_LEN, (int)clen), 1);
    assert_int_equal(len, 3);
    assert_int_equal(
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, FL_TAG_LEN, f + FL_SEQ_LEN + clen), 1);
    assert_int_equal(EVP_DecryptFinal_ex(ctx, plain + len, &len), 1);
    EVP_CIPHER_CTX_free(ctx);
    assert_memory_equal(plain, "one", 3);
}

/* Flip any one bit -- of the sequence number, the ciphertext or the tag --
 * and the frame is refused; cut or extended, too. */
static void test_tampered(void **state)
{
    (void)state;
    struct fl_key k;
    make_key(&k, 7);
    struct pair p;
    assert_int_equal(handshake(&p, &k, &k), 0);
    uint8_t f[128], g[128];
    size_t n = seal(&p.ctl, "inject kill nginx", f);
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(g, f, n);
            g[i] ^= (uint8_t)(1u << bit);
            struct fl_auth agent = p.agent; /* each attempt on a fresh copy */
            assert_int_equal(try_open(&agent, g, n), -EBADMSG);
            assert_int_equal(agent.state, FL_AUTH_FAILED);
        }
    }
    /* truncated (the tag cut short, or less than the overhead) or extended */
    struct fl_auth agent = p.agent;
    assert_int_equal(try_open(&agent, f, n - 1), -EBADMSG);
    agent = p.agent;
    assert_int_equal(try_open(&agent, f, FL_SEAL_OVERHEAD - 1), -EBADMSG);
    memcpy(g, f, n);
    g[n] = 0;
    agent = p.agent;
    assert_int_equal(try_open(&agent, g, n + 1), -EBADMSG);
    /* a frame whose seq is rewritten to the expected one still fails: seq is
     * both the nonce and authenticated data */
    uint8_t f2[128];
    size_t n2 = seal(&p.ctl, "second", f2);
    memcpy(f2, f, FL_SEQ_LEN);
    agent = p.agent;
    assert_int_equal(try_open(&agent, f2, n2), -EBADMSG);
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
    uint8_t f[128], copy[128];
    size_t n = seal(&p.ctl, "revert all", f);
    memcpy(copy, f, n);
    expect_open(&p.agent, f, n, "revert all");
    /* the same bytes again: the tag is good, the sequence is not */
    assert_int_equal(try_open(&p.agent, copy, n), -EPROTO);
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
    /* the second before the first: refused, even with a valid tag */
    struct fl_auth agent = p.agent;
    assert_int_equal(try_open(&agent, f2, n2), -EPROTO);
    /* in order, both open */
    expect_open(&p.agent, f1, n1, "first");
    expect_open(&p.agent, f2, n2, "second");
}

/* A frame sealed for one direction does not open in the other, even with the
 * sequence number the receiver expects: each direction has its own key. */
static void test_wrong_direction(void **state)
{
    (void)state;
    struct fl_key k;
    make_key(&k, 10);
    struct pair p;
    assert_int_equal(handshake(&p, &k, &k), 0);
    uint8_t f[128];
    /* the controller's seq 0 fed back to the controller (which awaits the
     * agent's seq 0) */
    size_t n = seal(&p.ctl, "ping", f);
    struct fl_auth ctl = p.ctl;
    assert_int_equal(try_open(&ctl, f, n), -EBADMSG);
    /* and the agent's seq 0 fed back to the agent */
    uint8_t g[128];
    size_t m = seal(&p.agent, "welcome", g);
    struct fl_auth agent = p.agent;
    assert_int_equal(try_open(&agent, g, m), -EBADMSG);
    /* each in its own direction opens */
    expect_open(&p.agent, f, n, "ping");
    expect_open(&p.ctl, g, m, "welcome");
}

/* Sealing stops before the sequence would wrap, so a nonce never repeats. */
static void test_sequence_spent(void **state)
{
    (void)state;
    struct fl_key k;
    make_key(&k, 13);
    struct pair p;
    assert_int_equal(handshake(&p, &k, &k), 0);
    uint8_t f[128];
    p.ctl.send_seq = UINT64_MAX - 1;
    p.agent.recv_seq = UINT64_MAX - 1;
    size_t n = seal(&p.ctl, "last", f);
    expect_open(&p.agent, f, n, "last");
    memcpy(f + FL_SEQ_LEN, "more", 4);
    assert_int_equal(fl_auth_seal(&p.ctl, f, 4), -EOVERFLOW);
    assert_int_equal(p.ctl.send_seq, UINT64_MAX);
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
        cmocka_unit_test(test_right_key),
        cmocka_unit_test(test_fresh_sessions),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_agent_refuses_bad_proof),
        cmocka_unit_test(test_out_of_turn),
        cmocka_unit_test(test_payload_hidden),
        cmocka_unit_test(test_wire_layout),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_replayed),
        cmocka_unit_test(test_out_of_sequence),
        cmocka_unit_test(test_wrong_direction),
        cmocka_unit_test(test_sequence_spent),
        cmocka_unit_test(test_only_handshake_before_auth),
    };
    return cmocka_run_group_tests_name("auth", tests, NULL, NULL);
}
