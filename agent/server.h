/* The agent's listener: accepts connections up to a cap and gives each one a
 * session. Owns every session; stopping the server closes them all. */
#ifndef FL_AGENT_SERVER_H
#define FL_AGENT_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/key.h"

struct fl_guardrails;
struct fl_registry;
struct fl_session;

struct fl_agent_config {
    const char *listen; /* "ADDR:PORT" */
    struct fl_key key;
    unsigned max_connections;          /* open connections, authenticated or not */
    uint64_t handshake_timeout_ms;     /* unauthenticated connections are closed after this */
    uint32_t lease_ms;                 /* a session's faults outlive its last heartbeat by this */
    const struct fl_guardrails *guard; /* allowed_controllers, when set */
};

struct fl_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    const struct fl_agent_config *config;
    struct fl_session *sessions; /* doubly linked, newest first */
    uint64_t next_session_id;
    uint64_t started_mono_ms;
    char hostname[256];
    bool listening;
    uint16_t port;                /* bound port */
    struct fl_registry *registry; /* set by the caller after start */
};

/* Binds and listens. Logs "listening on ADDR:PORT" with the port actually
 * bound. Returns 0 or a negative errno; on error nothing is left open. */
int fl_server_start(struct fl_server *srv, uv_loop_t *loop, const struct fl_agent_config *config);

/* Closes the listener and every session. Idempotent. */
void fl_server_stop(struct fl_server *srv);

#endif
