/* Authentication and encryption: mutual challenge-response on a pre-shared
 * key, then every frame encrypted and authenticated with ChaCha20-Poly1305
 * under a per-connection key for its direction.
 *
 *   controller                                   agent
 *   Hello{nonce_c}                  ---->
 *                                   <----  Challenge{nonce_a, proof_a}
 *   check proof_a; Proof{proof_c}   ---->
 *                                          check proof_c
 *                                   <----  sealed Envelope{Welcome}  (seq 0)
 *
 *   proof_a = HMAC(K, "faultline/agent"                 || nonce_c || nonce_a)
 *   proof_c = HMAC(K, "faultline/controller"            || nonce_c || nonce_a)
 *   key_c2a = HMAC(K, "faultline/key/controller-to-agent" || nonce_c || nonce_a)
 *   key_a2c = HMAC(K, "faultline/key/agent-to-controller" || nonce_c || nonce_a)
 *
 * Both sides contribute a fresh nonce, so neither proof nor any sealed frame
 * can be replayed into another connection. The labels differ, so a proof
 * cannot be reflected back as the other side's, and a frame sealed for one
 * direction does not open in the other.
 *
 * A sealed frame is  seq:u64be  ciphertext  tag[16]  with
 *   ciphertext, tag = ChaCha20-Poly1305(key of the direction,
 *                                       nonce = 0:u32 || seq:u64be,
 *                                       aad = seq:u64be, plaintext = payload)
 * Each direction counts from 0 under its own key, so no (key, nonce) pair is
 * ever used twice; sealing stops before seq would wrap. A frame whose tag
 * fails or whose sequence is not the next one is refused. ChaCha20-Poly1305
 * rather than AES-GCM: it is constant time in plain software, so agents on
 * hosts without AES instructions (small ARM boards, old VMs) are as safe and
 * not much slower. This module does no I/O.
 *
 * A Challenge with an empty nonce and proof is a refusal: the agent does not
 * speak the controller's protocol, and its own version is in the Challenge. */
#ifndef FL_COMMON_AUTH_H
#define FL_COMMON_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "common/key.h"

/* 1: HMAC-SHA256 per frame, payload in clear. 2: ChaCha20-Poly1305. */
#define FL_PROTOCOL_VERSION 2
#define FL_NONCE_LEN 32
#define FL_MAC_LEN 32
#define FL_AEAD_KEY_LEN 32
#define FL_SEQ_LEN 8
#define FL_TAG_LEN 16
/* A sealed frame: seq before the payload, the tag after it. */
#define FL_SEAL_OVERHEAD (FL_SEQ_LEN + FL_TAG_LEN)

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
    uint8_t send_key[FL_AEAD_KEY_LEN]; /* ours to seal with */
    uint8_t recv_key[FL_AEAD_KEY_LEN]; /* the peer's: opens what it sealed */
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

/* Seals in place: frame points at FL_SEQ_LEN bytes of room, then payload_len
 * bytes of payload, then FL_TAG_LEN bytes of room -- FL_SEAL_OVERHEAD +
 * payload_len in all. Writes seq, encrypts the payload and writes the tag.
 * -EPROTO before the handshake allows it, -EOVERFLOW when the sequence is
 * spent; a failure of the cipher itself fails the session, so that a
 * sequence number is never used twice. */
int fl_auth_seal(struct fl_auth *auth, uint8_t *frame, size_t payload_len);

/* Opens a sealed frame in place: decrypts and checks the tag, then checks the
 * sequence number. On success *payload and *payload_len point into frame (at
 * FL_SEQ_LEN); on failure the frame's bytes are undefined. -EBADMSG for a
 * short frame or a bad tag (a forged, altered or misdirected frame), -EPROTO
 * for a replayed or out-of-sequence frame or out of turn. */
int fl_auth_open(struct fl_auth *auth, uint8_t *frame, size_t len, const uint8_t **payload,
                 size_t *payload_len);

#endif
