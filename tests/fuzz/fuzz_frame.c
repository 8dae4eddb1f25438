/* Fuzz target: everything an unauthenticated peer can make the agent decode
 * (framing, then the handshake decoder), and what an authenticated one can
 * (opening a sealed frame, then the Envelope decoder).
 *
 * Built with -fsanitize=fuzzer it is a libFuzzer target; without it,
 * replay.c runs it over the committed corpus as an ordinary test. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/auth.h"
#include "common/conn.h"
#include "common/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An established agent side, so that sealed frames get past the MAC check
 * only when the input carries a valid one -- and the Envelope decoder is
 * still exercised directly below. */
static void established(struct fl_auth *agent)
{
    struct fl_key k;
    memset(k.bytes, 0x42, sizeof(k.bytes));
    struct fl_auth ctl;
    uint8_t nc[FL_NONCE_LEN], na[FL_NONCE_LEN], pa[FL_MAC_LEN], pc[FL_MAC_LEN];
    fl_auth_init(&ctl, FL_ROLE_CONTROLLER, &k);
    fl_auth_init(agent, FL_ROLE_AGENT, &k);
    fl_auth_hello(&ctl, nc);
    fl_auth_challenge(agent, nc, sizeof(nc), na, pa);
    fl_auth_respond(&ctl, na, sizeof(na), pa, sizeof(pa), pc);
    fl_auth_verify(agent, pc, sizeof(pc));
}

static void decode_payload(struct fl_auth *agent, const uint8_t *p, size_t len)
{
    Faultline__Handshake *hs = fl_handshake_unpack(p, len);
    if (hs != NULL)
        faultline__handshake__free_unpacked(hs, NULL);

    const uint8_t *payload;
    size_t plen;
    if (fl_auth_open(agent, p, len, &payload, &plen) == 0) {
        Faultline__Envelope *env = faultline__envelope__unpack(NULL, plen, payload);
        if (env != NULL)
            faultline__envelope__free_unpacked(env, NULL);
    }
    /* what an authenticated but buggy peer could send */
    Faultline__Envelope *env = faultline__envelope__unpack(NULL, len, p);
    if (env != NULL)
        faultline__envelope__free_unpacked(env, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fl_auth agent;
    established(&agent);

    /* the first byte picks how the stream is cut into reads */
    size_t step = size > 0 ? (size_t)data[0] % 64 + 1 : 1;
    struct fl_frame_decoder dec;
    fl_frame_decoder_init(&dec);
    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        if (fl_frame_decoder_push(&dec, data + off, n) < 0)
            break;
        const uint8_t *p;
        size_t len;
        int rc;
        while ((rc = fl_frame_decoder_next(&dec, &p, &len)) == 1)
            decode_payload(&agent, p, len);
        if (rc < 0)
            break;
    }
    fl_frame_decoder_finish(&dec);
    fl_frame_decoder_free(&dec);
    fl_auth_wipe(&agent);
    return 0;
}
