/* One controller connection on the agent: authenticates it, then answers its
 * requests. */
#ifndef FL_AGENT_SESSION_H
#define FL_AGENT_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "common/conn.h"

struct fl_server;
struct pending_reply;

struct fl_session {
    struct fl_server *server;
    struct fl_conn *conn;
    uint64_t id; /* increasing: a smaller id is an older connection */
    bool authenticated;
    char addr[64];                 /* the peer's address, without its port */
    uint64_t last_rx_ms;           /* monotonic: the last frame from an authenticated peer */
    struct pending_reply *pending; /* replies the registry still owes */
    struct fl_session *prev;
    struct fl_session *next;
};

/* Accepts a pending connection on the server's listener into a new session,
 * with TCP keepalive on; NULL when it could not (logged) or when the peer is
 * refused by allowed_controllers (then closing). */
struct fl_session *fl_session_accept(struct fl_server *srv);

/* Closes the session; it unlinks itself from the server once closed. */
void fl_session_close(struct fl_session *s);

#endif
