/* Writes the seeds of the frame fuzz target's corpus (tests/fuzz/corpus/frame)
 * that depend on the protocol: handshake steps of this version, and sealed
 * frames under the fuzz session's fixed keys (fuzz_frame.h), good ones and
 * each way a bad one is refused. make_frame_seeds.sh builds and runs it; the
 * protocol-independent seeds (framing edge cases, random bytes, unsealed
 * Envelopes) are written by hand and left alone.
 *
 * Usage: frame_seeds DIR */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/auth.h"
#include "common/frame.h"
#include "faultline.pb-c.h"
#include "tests/fuzz/fuzz_frame.h"

/* Envelopes as the unsealed seeds hold them: an inject of kill and of
 * network_drop (packed once, kept as bytes so that the seeds do not change
 * with FaultSpec's code). */
static const uint8_t INJECT_KILL[] = {0x08, 0x05, 0x82, 0x01, 0x1f, 0x0a, 0x1d, 0x0a, 0x0a,
                                      0x6b, 0x69, 0x6c, 0x6c, 0x2d, 0x6e, 0x67, 0x69, 0x6e,
                                      0x78, 0x10, 0xb0, 0xea, 0x01, 0x52, 0x0b, 0x0a, 0x07,
                                      0x1a, 0x05, 0x6e, 0x67, 0x69, 0x6e, 0x78, 0x10, 0x09};
static const uint8_t INJECT_DROP[] = {0x08, 0x06, 0x82, 0x01, 0x22, 0x0a, 0x20, 0x0a, 0x03, 0x63,
                                      0x75, 0x74, 0x10, 0xe8, 0x07, 0x62, 0x16, 0x08, 0x02, 0x12,
                                      0x0a, 0x31, 0x30, 0x2e, 0x30, 0x2e, 0x30, 0x2e, 0x30, 0x2f,
                                      0x38, 0x18, 0x01, 0x22, 0x02, 0x08, 0x50, 0x30, 0x32};

struct out {
    uint8_t buf[8192];
    size_t len;
};

static void put_frame(struct out *o, const uint8_t *payload, size_t len)
{
    if (o->len + FL_FRAME_HEADER + len > sizeof(o->buf)) {
        fprintf(stderr, "seed too large\n");
        exit(1);
    }
    fl_frame_put_header(o->buf + o->len, (uint32_t)len);
    memcpy(o->buf + o->len + FL_FRAME_HEADER, payload, len);
    o->len += FL_FRAME_HEADER + len;
}

static void put_handshake(struct out *o, const Faultline__Handshake *hs)
{
    uint8_t b[512];
    put_frame(o, b, faultline__handshake__pack(hs, b));
}

/* Seals payload with a and appends it as a frame; returns where the sealed
 * frame starts in o, for tampering. */
static size_t put_sealed(struct out *o, struct fl_auth *a, const uint8_t *payload, size_t len)
{
    uint8_t f[1024];
    memcpy(f + FL_SEQ_LEN, payload, len);
    if (fl_auth_seal(a, f, len) < 0) {
        fprintf(stderr, "cannot seal\n");
        exit(1);
    }
    size_t at = o->len + FL_FRAME_HEADER;
    put_frame(o, f, FL_SEAL_OVERHEAD + len);
    return at;
}

static size_t packed_ping(uint8_t *b, uint64_t id)
{
    Faultline__Ping ping = FAULTLINE__PING__INIT;
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = id;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_PING;
    env.ping = &ping;
    return faultline__envelope__pack(&env, b);
}

static void save(const char *dir, const char *name, const struct out *o)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(o->buf, 1, o->len, f) != o->len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static struct fl_auth session(enum fl_role role)
{
    struct fl_auth a;
    fuzz_frame_session(&a, role);
    return a;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    uint8_t nonce[FL_NONCE_LEN], proof[FL_MAC_LEN] = {0};
    for (size_t i = 0; i < sizeof(nonce); i++)
        nonce[i] = (uint8_t)i;

    Faultline__Hello hello = FAULTLINE__HELLO__INIT;
    hello.protocol = FL_PROTOCOL_VERSION;
    hello.nonce.data = nonce;
    hello.nonce.len = sizeof(nonce);
    hello.client = (char *)"faultline 0.2.0";
    Faultline__Handshake hs_hello = FAULTLINE__HANDSHAKE__INIT;
    hs_hello.step_case = FAULTLINE__HANDSHAKE__STEP_HELLO;
    hs_hello.hello = &hello;

    Faultline__Proof pr = FAULTLINE__PROOF__INIT;
    pr.proof.data = proof;
    pr.proof.len = sizeof(proof);
    Faultline__Handshake hs_proof = FAULTLINE__HANDSHAKE__INIT;
    hs_proof.step_case = FAULTLINE__HANDSHAKE__STEP_PROOF;
    hs_proof.proof = &pr;

    Faultline__Challenge ch = FAULTLINE__CHALLENGE__INIT;
    ch.protocol = FL_PROTOCOL_VERSION;
    ch.nonce.data = nonce;
    ch.nonce.len = sizeof(nonce);
    ch.proof.data = proof;
    ch.proof.len = sizeof(proof);
    Faultline__Handshake hs_ch = FAULTLINE__HANDSHAKE__INIT;
    hs_ch.step_case = FAULTLINE__HANDSHAKE__STEP_CHALLENGE;
    hs_ch.challenge = &ch;

    struct out o;
    uint8_t b[512];
    size_t n;

    o.len = 0;
    put_handshake(&o, &hs_hello);
    save(dir, "hello", &o);
    put_handshake(&o, &hs_proof);
    save(dir, "hello_then_proof", &o);

    /* a Hello followed by an unknown field (16, varint) */
    o.len = 0;
    n = faultline__handshake__pack(&hs_hello, b);
    b[n] = 16 << 3;
    b[n + 1] = 1;
    put_frame(&o, b, n + 2);
    save(dir, "hello_unknown_field", &o);

    /* a version 1 controller */
    o.len = 0;
    hello.protocol = 1;
    put_handshake(&o, &hs_hello);
    hello.protocol = FL_PROTOCOL_VERSION;
    save(dir, "hello_v1", &o);

    /* empty frames before a Hello */
    o.len = 0;
    put_frame(&o, b, 0);
    put_frame(&o, b, 0);
    put_handshake(&o, &hs_hello);
    save(dir, "zero_length", &o);

    o.len = 0;
    put_handshake(&o, &hs_ch);
    save(dir, "challenge", &o);

    /* the refusal of another version: protocol only */
    o.len = 0;
    Faultline__Challenge refusal = FAULTLINE__CHALLENGE__INIT;
    refusal.protocol = FL_PROTOCOL_VERSION;
    hs_ch.challenge = &refusal;
    put_handshake(&o, &hs_ch);
    save(dir, "challenge_refusal", &o);

    o.len = 0;
    put_handshake(&o, &hs_proof);
    save(dir, "proof", &o);

    /* sealed frames that open: one of each, and a stream of them */
    struct fl_auth ctl = session(FL_ROLE_CONTROLLER);
    o.len = 0;
    put_sealed(&o, &ctl, b, packed_ping(b, 1));
    save(dir, "sealed_ping", &o);

    ctl = session(FL_ROLE_CONTROLLER);
    o.len = 0;
    put_sealed(&o, &ctl, INJECT_KILL, sizeof(INJECT_KILL));
    save(dir, "sealed_inject_kill", &o);

    ctl = session(FL_ROLE_CONTROLLER);
    o.len = 0;
    put_sealed(&o, &ctl, INJECT_DROP, sizeof(INJECT_DROP));
    save(dir, "sealed_inject_drop", &o);

    ctl = session(FL_ROLE_CONTROLLER);
    o.len = 0;
    put_sealed(&o, &ctl, b, 0); /* an empty Envelope */
    save(dir, "sealed_empty", &o);

    ctl = session(FL_ROLE_CONTROLLER);
    o.len = 0;
    put_sealed(&o, &ctl, b, packed_ping(b, 1));
    put_sealed(&o, &ctl, INJECT_KILL, sizeof(INJECT_KILL));
    put_sealed(&o, &ctl, b, packed_ping(b, 2));
    put_sealed(&o, &ctl, INJECT_DROP, sizeof(INJECT_DROP));
    save(dir, "sealed_stream", &o);

    /* refused: replayed, out of order, tampered, the other direction */
    ctl = session(FL_ROLE_CONTROLLER);
    o.len = 0;
    size_t at = put_sealed(&o, &ctl, b, packed_ping(b, 1));
    size_t len = o.len - at;
    memcpy(b, o.buf + at - FL_FRAME_HEADER, FL_FRAME_HEADER + len);
    put_frame(&o, b + FL_FRAME_HEADER, len);
    save(dir, "sealed_replay", &o);

    ctl = session(FL_ROLE_CONTROLLER);
    struct out first = {.len = 0};
    put_sealed(&first, &ctl, b, packed_ping(b, 1));
    o.len = 0;
    put_sealed(&o, &ctl, b, packed_ping(b, 2));
    put_frame(&o, first.buf + FL_FRAME_HEADER, first.len - FL_FRAME_HEADER);
    save(dir, "sealed_out_of_order", &o);

    ctl = session(FL_ROLE_CONTROLLER);
    o.len = 0;
    put_sealed(&o, &ctl, b, packed_ping(b, 1));
    o.buf[o.len - 1] ^= 0x80; /* last byte of the tag */
    save(dir, "sealed_bad_tag", &o);

    ctl = session(FL_ROLE_CONTROLLER);
    o.len = 0;
    at = put_sealed(&o, &ctl, INJECT_KILL, sizeof(INJECT_KILL));
    o.buf[at + FL_SEQ_LEN + 3] ^= 0x01; /* inside the ciphertext */
    save(dir, "sealed_bad_ciphertext", &o);

    struct fl_auth agent = session(FL_ROLE_AGENT);
    o.len = 0;
    put_sealed(&o, &agent, b, packed_ping(b, 1));
    save(dir, "sealed_wrong_direction", &o);

    /* the shape of a sealed frame, all zeros: seq 0, no valid tag */
    o.len = 0;
    memset(b, 0, sizeof(b));
    n = packed_ping(b + FL_SEQ_LEN, 1);
    memset(b + FL_SEQ_LEN + n, 0, FL_TAG_LEN);
    put_frame(&o, b, FL_SEAL_OVERHEAD + n);
    save(dir, "sealed_shape", &o);

    /* a version 1 sealed frame (seq, HMAC[32], Envelope in clear) */
    o.len = 0;
    memset(b, 0, 8 + 32);
    n = packed_ping(b + 8 + 32, 1);
    put_frame(&o, b, 8 + 32 + n);
    save(dir, "sealed_v1", &o);
    return 0;
}
