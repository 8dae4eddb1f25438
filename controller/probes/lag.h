/* The controller's own lateness: how long its event loop could not look at
 * its sockets (issue 12 item 4; docs/design.md section 6, "Late attempts").
 *
 * A probe's outcome is only as good as the loop that sees it. When the loop
 * is busy (too many probes, a slow callback, a machine out of CPU, a
 * stopped process), a reply that has already arrived waits in its socket,
 * and libuv runs expired timers before it polls for I/O: the attempt's
 * deadline fires first and the probe would report a timeout the service
 * never caused. So the loop measures itself.
 *
 * A stall is a stretch in which the loop did not look for events: from the
 * moment its poll returned to the moment it next went to wait, or a wait
 * that overslept its timeout (lag.c says how each is measured). Stalls of at least FL_LAG_RECORD_MS
 * are kept in a ring of the most recent FL_LAG_RING; a query for a window that reaches past the
 * ring's oldest entry counts the forgotten part as stalled, so an answer is never too small.
 *
 * All calls on the loop's thread. */
#ifndef FL_CONTROLLER_PROBES_LAG_H
#define FL_CONTROLLER_PROBES_LAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Stalls shorter than this are not remembered (the loop's ordinary work). */
#define FL_LAG_RECORD_MS 2
/* How many recent stalls are remembered. */
#define FL_LAG_RING 1024
/* The monitor's own timer period: it bounds every wait of the loop, so that
 * a wait whose limit libuv does not tell (uv_backend_timeout says 0 while
 * sockets wait to be registered, as after an attempt starts) is judged
 * against this bound. The loop wakes 1000 / FL_LAG_TICK_MS times a second
 * while it is watched (a run). */
#define FL_LAG_TICK_MS 10

struct fl_lag_stall {
    uint64_t begin_ns, end_ns; /* monotonic */
};

struct fl_lag {
    uv_loop_t *loop;
    uv_prepare_t prepare;
    uv_check_t check;
    uv_timer_t tick;        /* FL_LAG_TICK_MS, unref'd: bounds every wait */
    uint64_t prepare_ns;    /* the last time the loop went to wait */
    uint64_t wait_limit_ns; /* the poll timeout the loop asked for then */
    uint64_t wait_end_ns;   /* when the last wait ended (estimated) */
    struct fl_lag_stall ring[FL_LAG_RING];
    size_t head, count;  /* ring[head] is the next slot written */
    uint64_t longest_ns; /* the longest stall since start */
    int open_handles;
    void (*closed)(void *arg);
    void *closed_arg;
};

/* Starts measuring loop. Returns 0 or a negative errno. */
int fl_lag_start(struct fl_lag *lag, uv_loop_t *loop);

/* Closes the handles; closed(arg) runs once they are (may be NULL). */
void fl_lag_stop(struct fl_lag *lag, void (*closed)(void *arg), void *arg);

/* Records one stall [begin_ns, end_ns] (the loop's own hooks call it; tests
 * call it directly). */
void fl_lag_record(struct fl_lag *lag, uint64_t begin_ns, uint64_t end_ns);

/* How long, in all, the loop was stalled within [from_ns, to_ns] (stalls
 * never overlap one another), in ns; the stretch still going on (the loop is
 * running this very callback) counts up to to_ns. */
uint64_t fl_lag_stalled_between(const struct fl_lag *lag, uint64_t from_ns, uint64_t to_ns);

#endif
