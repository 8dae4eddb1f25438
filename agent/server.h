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
    const char *name;   /* for Welcome and Status; NULL: the host name */
    const char *listen; /* "ADDR:PORT" */
    struct fl_key key;
    unsigned max_connections;                 /* open connections, authenticated or not */
    unsigned max_unauthenticated;             /* of those, still in their handshake */
    unsigned max_unauthenticated_per_address; /* of those, from one address */
    uint64_t handshake_timeout_ms;     /* unauthenticated connections are closed after this */
    uint64_t idle_timeout_ms;          /* an authenticated session silent this long is closed */
    uint32_t lease_ms;                 /* a session's faults outlive its last heartbeat by this */
    const struct fl_guardrails *guard; /* allowed_controllers, when set */
};

/* What the listener counts and logs at most once per FL_NOTE_INTERVAL_MS:
 * a flood of connections must not flood the log. */
enum fl_note {
    FL_NOTE_REFUSED,                /* every slot held by authenticated sessions */
    FL_NOTE_EVICTED,                /* the oldest handshake closed for a newer one */
    FL_NOTE_NOT_ALLOWED,            /* not in allowed_controllers */
    FL_NOTE_UNAUTHENTICATED_CLOSED, /* closed before it authenticated */
    FL_NOTE_KINDS
};
#define FL_NOTE_INTERVAL_MS 10000u
#define FL_NOTE_ADDRS 8
#define FL_ACCEPT_BUDGET                                                                           \
    16 /* connections accepted per loop iteration */ /* addresses tracked per interval; the rest   \
                                                        are "others" */

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
    /* closes authenticated sessions that send nothing for idle_timeout_ms;
     * runs only while one exists */
    uv_timer_t idle_timer;
    /* accepts per loop iteration are bounded (FL_ACCEPT_BUDGET): a flood of
     * connects must not keep the loop in accept(2) while the handshakes of
     * real controllers wait; the rest wait for the next iteration */
    uv_check_t accept_check;
    uv_idle_t accept_idle;
    unsigned accept_budget;
    bool accept_deferred;
    /* rate-limited log of refusals */
    uv_timer_t note_timer;
    uint64_t note_last_ms;
    unsigned note_count[FL_NOTE_KINDS];
    struct {
        char addr[64];
        unsigned count;
    } note_addrs[FL_NOTE_ADDRS];
    unsigned note_other_addrs;
    char note_detail[160];
    bool timers_open;
    /* libcrypto is loaded at the first connection, on the thread pool
     * (common/cryptolib.h): the handshake then finds it loaded, and the loop
     * does not read the library */
    uv_work_t crypto_load;
    bool crypto_load_queued;
};

/* Counts one refusal-like event from addr and logs it, or a summary of the
 * interval's events once it ends (never more than one line per interval). */
void fl_server_note(struct fl_server *srv, enum fl_note what, const char *addr, const char *detail);

/* A session has authenticated: its idle time is now watched. */
void fl_server_session_authenticated(struct fl_server *srv);

/* Binds and listens. Logs "listening on ADDR:PORT" with the port actually
 * bound. Returns 0 or a negative errno; on error nothing is left open. */
int fl_server_start(struct fl_server *srv, uv_loop_t *loop, const struct fl_agent_config *config);

/* The address the listener is bound to, when it is one host ("10.0.0.5",
 * "fd00::5"); "" for a wildcard (0.0.0.0, ::). */
void fl_server_local_host(struct fl_server *srv, char *out, size_t len);

/* Closes the listener and every session. Idempotent. */
void fl_server_stop(struct fl_server *srv);

#endif
