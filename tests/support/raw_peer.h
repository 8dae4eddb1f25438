/* A blocking, hand-driven protocol peer for tests: it can say exactly what a
 * test wants on the wire, including what no real controller would. */
#ifndef FL_TESTS_RAW_PEER_H
#define FL_TESTS_RAW_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/auth.h"
#include "faultline.pb-c.h"

struct raw_peer {
    int fd;
    struct fl_auth auth;
};

/* Connects to 127.0.0.1:port. Returns 0 or -errno. */
int raw_connect(struct raw_peer *p, uint16_t port);
/* Connects to to:port (IPv4), from the address from when not NULL. */
int raw_connect_from(struct raw_peer *p, const char *from, const char *to, uint16_t port);
void raw_close(struct raw_peer *p);

int raw_send_bytes(struct raw_peer *p, const void *data, size_t len);
/* Sends a frame: header + payload. */
int raw_send_frame(struct raw_peer *p, const void *payload, size_t len);
/* Receives one frame into buf (up to cap) within timeout_ms. Returns its
 * length, 0 on orderly close (no frame), -ETIMEDOUT, or -errno. */
long raw_recv_frame(struct raw_peer *p, uint8_t *buf, size_t cap, int timeout_ms);
/* Waits until the peer closes: 0 when closed within timeout_ms, -ETIMEDOUT
 * otherwise. Bytes received meanwhile are counted in *received (may be NULL). */
int raw_wait_closed(struct raw_peer *p, int timeout_ms, size_t *received);

/* The controller's side of the handshake with key; 0 when the agent's
 * Welcome opened, else a negative errno (-EPROTONOSUPPORT when the agent
 * speaks another protocol version). Sealed frames are ChaCha20-Poly1305
 * under p->auth's keys: see common/auth.h. */
int raw_handshake(struct raw_peer *p, const struct fl_key *key);

/* Seals env into out (which must hold FL_FRAME_HEADER + FL_SEAL_OVERHEAD +
 * packed size); returns the whole frame's length. */
size_t raw_seal(struct raw_peer *p, const Faultline__Envelope *env, uint8_t *out, size_t cap);

/* Receives and opens one sealed envelope; NULL on any failure. */
Faultline__Envelope *raw_recv_envelope(struct raw_peer *p, int timeout_ms);

/* Seals and sends env, then receives the reply; NULL on any failure. */
Faultline__Envelope *raw_request(struct raw_peer *p, const Faultline__Envelope *env,
                                 int timeout_ms);

/* Sends an Inject (envelope id 1) of a pause_process fault named name on
 * pid for duration_ms, detached (only the guardian ends it) or leased, and
 * returns the reply (the caller checks it is Injected and frees it); NULL
 * on any failure. */
Faultline__Envelope *raw_inject_pause(struct raw_peer *p, const char *name, pid_t pid,
                                      uint64_t duration_ms, bool detached, int timeout_ms);

#endif
