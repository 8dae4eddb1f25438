/* The one way the controller works on many hosts at once (agents, halt,
 * inject, revert, run, deploy): at most a window of hosts in flight, the rest
 * queued. Each host in flight holds a descriptor or two (a socket, an SSH
 * session), so the window comes from RLIMIT_NOFILE (fl_fleet_window) and a
 * fleet of any size runs within it.
 *
 *   QUEUED ──start──► IN FLIGHT ──fl_fleet_done──► DONE
 *     ▲  ▲                │
 *     │  └─ no descriptor ┤   (EMFILE/ENFILE: never the host's failure; the
 *     │     (window       │    window shrinks to what is open and the host
 *     │      shrinks)     │    goes back into the queue)
 *     └── WAITING ◄───────┘ fl_fleet_retry(delay)
 *
 * At the deadline every host still QUEUED or WAITING is handed to ops->expired
 * and is DONE; hosts in flight finish on their own timeouts (callers bound
 * them with fl_fleet_remaining_ms). Everything runs on the loop. */
#ifndef FL_CONTROLLER_FLEET_H
#define FL_CONTROLLER_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Descriptors kept free for everything that is not a host in flight: probes,
 * files, DNS look-ups, libuv's own. At most half of what is free. */
#define FL_FLEET_FD_RESERVE 32
/* Hosts in flight at most, whatever the descriptor limit: more handshakes at
 * once than this only queue on the controller's one loop and time out. */
#define FL_FLEET_MAX_IN_FLIGHT 512
/* A host that found no descriptor while nothing else of ours was open waits
 * this long before it is tried again (the shortage is someone else's). */
#define FL_FLEET_FD_WAIT_MS 100
/* A retry that would wait past the deadline is made this long before it. */
#define FL_FLEET_LAST_TRY_MS 500

struct fl_fleet;

struct fl_fleet_ops {
    /* Starts host i. 0: it is in flight until fl_fleet_done, fl_fleet_retry
     * or fl_fleet_no_descriptor. Negative errno: it could not start; that is
     * final (start recorded why), except -EMFILE and -ENFILE, which queue it
     * again as fl_fleet_no_descriptor does. */
    int (*start)(struct fl_fleet *f, size_t i, void *ctx);
    /* Host i was still queued or waiting when the deadline passed: it is
     * done, never having had its (next) try. */
    void (*expired)(struct fl_fleet *f, size_t i, void *ctx);
};

/* How many more descriptors this process may open with the limit in force
 * now: the soft RLIMIT_NOFILE less the descriptors open now and reserve (at
 * most half of what is free); at least 1. */
size_t fl_fleet_fd_budget(size_t reserve);
/* How many hosts may be in flight: fl_fleet_fd_budget, each host counted as
 * one descriptor, at most FL_FLEET_MAX_IN_FLIGHT. */
size_t fl_fleet_window(size_t reserve);

/* Raises the soft RLIMIT_NOFILE to the hard limit (once, at start). Returns
 * the soft limit in force afterwards. */
uint64_t fl_fleet_raise_nofile(void);

/* n hosts, window at a time (at least 1), until deadline_ms from now (0: no
 * deadline). Nothing starts before fl_fleet_start. */
int fl_fleet_new(uv_loop_t *loop, size_t n, size_t window, uint64_t deadline_ms,
                 const struct fl_fleet_ops *ops, void *ctx, struct fl_fleet **out);
void fl_fleet_start(struct fl_fleet *f);
/* Nothing more starts: hosts queued or waiting are done at once (without
 * ops->expired); those in flight end as usual, and a retry or a shortage of
 * theirs ends them too. For a command that gave up (run's abort). */
void fl_fleet_stop(struct fl_fleet *f);
/* Host i (in flight) is finished. */
void fl_fleet_done(struct fl_fleet *f, size_t i);
/* Host i (in flight) is to be tried again after delay_ms; past the deadline
 * it expires instead. */
void fl_fleet_retry(struct fl_fleet *f, size_t i, uint64_t delay_ms);
/* Host i (in flight) found no descriptor (EMFILE, ENFILE): not its failure.
 * The window shrinks to the hosts still in flight and i is queued again. */
void fl_fleet_no_descriptor(struct fl_fleet *f, size_t i);
/* True for the errors that mean this process, not the host, ran out. */
bool fl_fleet_is_fd_shortage(int err);
/* ms until the deadline (UINT64_MAX without one; 0 once passed). */
uint64_t fl_fleet_remaining_ms(const struct fl_fleet *f);
/* ms since fl_fleet_start. */
uint64_t fl_fleet_elapsed_ms(const struct fl_fleet *f);
size_t fl_fleet_current_window(const struct fl_fleet *f);
/* Frees f once every host is done and the loop has run out. */
void fl_fleet_free(struct fl_fleet *f);

#endif
