/* The fixed session the frame fuzz target opens sealed frames in, shared with
 * the seed generator (frame_seeds.c): seeds sealed under these keys get past
 * the tag check, so the fuzzer starts from frames that decrypt and reach the
 * Envelope decoder. The keys are fixed on purpose; nothing else uses them. */
#ifndef FL_TESTS_FUZZ_FRAME_H
#define FL_TESTS_FUZZ_FRAME_H

#include <string.h>

#include "common/auth.h"

#define FUZZ_KEY_C2A 0x42 /* every byte of the controller-to-agent key */
#define FUZZ_KEY_A2C 0x24 /* every byte of the agent-to-controller key */

/* An established session for role, both sequences at 0. */
static inline void fuzz_frame_session(struct fl_auth *a, enum fl_role role)
{
    struct fl_key k;
    memset(k.bytes, 0x5a, sizeof(k.bytes));
    fl_auth_init(a, role, &k);
    a->state = FL_AUTH_ESTABLISHED;
    int ctl = role == FL_ROLE_CONTROLLER;
    memset(a->send_key, ctl ? FUZZ_KEY_C2A : FUZZ_KEY_A2C, sizeof(a->send_key));
    memset(a->recv_key, ctl ? FUZZ_KEY_A2C : FUZZ_KEY_C2A, sizeof(a->recv_key));
}

#endif
