/* An authenticated connection over a libuv TCP stream: framing (frame.h),
 * the handshake and sealing (auth.h) and protobuf decoding, in one place.
 *
 *   new ──► accept (agent) / connect (controller)
 *            │ handshake; the deadline closes it with -ETIMEDOUT
 *            ▼
 *          ready ──► message* ──► close ──► closed (exactly once)
 *
 * Before the handshake completes only Handshake messages are decoded; every
 * later frame is decrypted and checked (tag, sequence) before its Envelope is
 * decoded. Any violation closes the connection: there is no error reply to a
 * peer that has not proved it holds the key -- except that a controller of
 * another protocol version is told the agent's (see auth.h).
 *
 * Lifetime: a conn ends only through fl_conn_close(), which may be called any
 * number of times, from anywhere, including inside its own callbacks. The
 * closed callback runs once, after both handles have closed; the conn is
 * freed right after it returns. If accept or connect return an error, the
 * caller still closes the conn. */
#ifndef FL_COMMON_CONN_H
#define FL_COMMON_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/auth.h"
#include "faultline.pb-c.h"

struct fl_conn;

struct fl_conn_ops {
    /* The handshake succeeded. On the controller side welcome is the agent's
     * greeting; on the agent side it is NULL and the agent should send one. */
    void (*ready)(struct fl_conn *c, const Faultline__Welcome *welcome);
    /* One authenticated envelope; it is freed when the callback returns. */
    void (*message)(struct fl_conn *c, const Faultline__Envelope *env);
    /* The connection is gone. reason: 0 when closed by us without error,
     * UV_EOF when the peer hung up, else a negative errno: -EACCES (the peer
     * does not hold our key), -EALREADY (agent: a replayed handshake, a Hello
     * this process has answered before), -EPROTONOSUPPORT (the peer speaks another
     * protocol version: fl_conn_peer_protocol), -ETIMEDOUT (handshake
     * deadline), -EBADMSG (a frame that fails its tag -- forged, altered or
     * sealed for the other direction -- or does not decode), -EPROTO
     * (protocol violation, replayed or out-of-sequence frame), -EMSGSIZE
     * (oversize frame), -EPIPE (stream ended inside a frame), -ENOBUFS (peer
     * does not read). */
    void (*closed)(struct fl_conn *c, int reason);
};

/* A new connection with its TCP handle initialised on loop. NULL on ENOMEM. */
struct fl_conn *fl_conn_new(uv_loop_t *loop, enum fl_role role, const struct fl_key *key,
                            const struct fl_conn_ops *ops, void *data);

/* The stream to pass to uv_accept(). */
uv_stream_t *fl_conn_stream(struct fl_conn *c);

/* Agent: after uv_accept() succeeded, wait for the handshake. */
int fl_conn_accept(struct fl_conn *c, uint64_t handshake_timeout_ms);

/* Controller: connect to addr and authenticate, all within timeout_ms. */
int fl_conn_connect(struct fl_conn *c, const struct sockaddr *addr, uint64_t timeout_ms);

/* Seals and queues one envelope. Only once ready. -EMSGSIZE when it would
 * exceed a frame, -ENOTCONN before ready or after close. */
int fl_conn_send(struct fl_conn *c, const Faultline__Envelope *env);

void fl_conn_close(struct fl_conn *c, int reason);

void *fl_conn_data(const struct fl_conn *c);
/* True from fl_conn_close() on: the socket is already shut, the callback
 * still to come. */
bool fl_conn_is_closing(const struct fl_conn *c);
/* "address:port" of the peer, for logs. */
const char *fl_conn_peer(const struct fl_conn *c);
/* The protocol version the peer announced when it is not FL_PROTOCOL_VERSION
 * (the connection then closes with -EPROTONOSUPPORT); 0 otherwise. */
uint32_t fl_conn_peer_protocol(const struct fl_conn *c);

/* Unpacks a Handshake, refusing any field it does not know: the only decoder
 * that sees unauthenticated bytes. NULL when the bytes are anything else. */
Faultline__Handshake *fl_handshake_unpack(const uint8_t *data, size_t len);

#endif
