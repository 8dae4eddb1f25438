/* Authentication: mutual challenge-response on a pre-shared key, then a MAC
 * and a sequence number on every frame.
 *
 *   controller                                   agent
 *   Hello{nonce_c}                  ---->
 *                                   <----  Challenge{nonce_a, proof_a}
 *   check proof_a; Proof{proof_c}   ---->
 *                                          check proof_c
 *                                   <----  sealed Envelope{Welcome}  (seq 0)
 *
 *   proof_a     = HMAC(K, "faultline/agent"      || nonce_c || nonce_a)
 *   proof_c     = HMAC(K, "faultline/controller" || nonce_c || nonce_a)
 *   session key = HMAC(K, "faultline/session"    || nonce_c || nonce_a)
 *
 * Both sides contribute a fresh nonce, so neither proof nor any sealed frame
 * can be replayed into another connection. The labels differ, so a proof
 * cannot be reflected back as the other side's.
 *
 * A sealed frame is  seq:u64be  mac[32]  payload  with
 *   mac = HMAC(session key, direction || seq || payload)
 * where direction is 'C' (controller to agent) or 'A' (agent to controller).
 * Each direction counts from 0; a frame whose MAC fails or whose sequence is
 * not the next one is refused. This module does no I/O. */
#ifndef FL_COMMON_AUTH_H
#define FL_COMMON_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "common/key.h"

#define FL_PROTOCOL_VERSION 1
#define FL_NONCE_LEN 32
#define FL_MAC_LEN 32
#define FL_SEAL_OVERHEAD (8 + FL_MAC_LEN)

enum fl_role {
    FL_ROLE_CONTROLLER,
    FL_ROLE_AGENT,
};

enum fl_auth_state {
    FL_AUTH_START,
    FL_AUTH_HELLO_SENT, /* controller: waiting for the challenge */
    FL_AUTH_CHALLENGED, /* agent: waiting for the proof */
    FL_AUTH_PROOF_SENT, /* controller: waiting for the first sealed frame */
    FL_AUTH_ESTABLISHED,
    FL_AUTH_FAILED,
};

struct fl_auth {
    enum fl_role role;
    enum fl_auth_state state;
    struct fl_key key;
    uint8_t nonce_c[FL_NONCE_LEN];
    uint8_t nonce_a[FL_NONCE_LEN];
    uint8_t session_key[FL_MAC_LEN];
    uint64_t send_seq;
    uint64_t recv_seq;
};

void fl_auth_init(struct fl_auth *auth, enum fl_role role, const struct fl_key *key);
/* Erases every secret. */
void fl_auth_wipe(struct fl_auth *auth);

/* Controller: a fresh nonce for Hello. */
int fl_auth_hello(struct fl_auth *auth, uint8_t nonce_c[FL_NONCE_LEN]);

/* Agent: takes the controller's nonce; writes a fresh nonce and the agent's
 * proof for Challenge. -EPROTO on a malformed nonce or out of turn. */
int fl_auth_challenge(struct fl_auth *auth, const uint8_t *nonce_c, size_t nonce_len,
                      uint8_t nonce_a[FL_NONCE_LEN], uint8_t proof_a[FL_MAC_LEN]);

/* Controller: checks the agent's proof and writes ours. -EACCES when the agent
 * does not hold our key. Sealing works from here on; the controller counts
 * the agent as authenticated once a sealed frame from it opens. */
int fl_auth_respond(struct fl_auth *auth, const uint8_t *nonce_a, size_t nonce_len,
                    const uint8_t *proof_a, size_t proof_len, uint8_t proof_c[FL_MAC_LEN]);

/* Agent: checks the controller's proof. -EACCES when it does not hold our key;
 * 0 and ESTABLISHED otherwise. */
int fl_auth_verify(struct fl_auth *auth, const uint8_t *proof_c, size_t proof_len);

/* Seals in place: frame points at FL_SEAL_OVERHEAD bytes of room followed by
 * payload_len bytes of payload; writes seq and MAC into the room. */
int fl_auth_seal(struct fl_auth *auth, uint8_t *frame, size_t payload_len);

/* Opens a sealed frame: checks the MAC, then the sequence number. On success
 * *payload and *payload_len point into frame. -EBADMSG for a short frame or a
 * bad MAC, -EPROTO for a replayed or out-of-sequence frame or out of turn. */
int fl_auth_open(struct fl_auth *auth, const uint8_t *frame, size_t len, const uint8_t **payload,
                 size_t *payload_len);

#endif
