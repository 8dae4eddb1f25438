/* Fuzz target: everything an unauthenticated peer can make the agent decode
 * (framing, then the handshake decoder), and what an authenticated one can
 * (opening a sealed frame -- decryption, tag and sequence -- then the
 * Envelope decoder).
 *
 * Built with -fsanitize=fuzzer it is a libFuzzer target; without it,
 * replay.c runs it over the committed corpus as an ordinary test, and then
 * calls fuzz_replay_check(): the corpus must hold sealed frames that open, or
 * it no longer exercises the sealed layout (regenerate it with
 * make_frame_seeds.sh). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/auth.h"
#include "common/conn.h"
#include "common/frame.h"
#include "tests/fuzz/fuzz_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int fuzz_replay_check(void);

static unsigned long opened;  /* sealed frames that decrypted and passed */
static unsigned long decoded; /* ... whose plaintext was an Envelope */

static void decode_payload(struct fl_auth *agent, uint8_t *p, size_t len)
{
    Faultline__Handshake *hs = fl_handshake_unpack(p, len);
    if (hs != NULL)
        faultline__handshake__free_unpacked(hs, NULL);

    /* what an authenticated but buggy peer could send; before opening, which
     * rewrites the bytes in place */
    Faultline__Envelope *env = faultline__envelope__unpack(NULL, len, p);
    if (env != NULL)
        faultline__envelope__free_unpacked(env, NULL);

    const uint8_t *payload;
    size_t plen;
    if (fl_auth_open(agent, p, len, &payload, &plen) == 0) {
        opened++;
        env = faultline__envelope__unpack(NULL, plen, payload);
        if (env != NULL) {
            decoded++;
            faultline__envelope__free_unpacked(env, NULL);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fl_auth agent;
    fuzz_frame_session(&agent, FL_ROLE_AGENT);

    /* the first byte picks how the stream is cut into reads */
    size_t step = size > 0 ? (size_t)data[0] % 64 + 1 : 1;
    struct fl_frame_decoder dec;
    fl_frame_decoder_init(&dec);
    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        if (fl_frame_decoder_push(&dec, data + off, n) < 0)
            break;
        uint8_t *p;
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

int fuzz_replay_check(void)
{
    printf("%lu sealed frames opened, %lu of them Envelopes\n", opened, decoded);
    if (decoded == 0) {
        fprintf(stderr, "no sealed frame in the corpus opens: it does not exercise the sealed "
                        "layout (run tests/fuzz/make_frame_seeds.sh)\n");
        return 1;
    }
    return 0;
}
