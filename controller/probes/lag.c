/* The loop measuring itself (lag.h).
 *
 * Each iteration of a libuv loop runs: timers, pending, idle, PREPARE, poll
 * (wait for I/O, then run the I/O callbacks), CHECK, close callbacks. Right
 * after its wait returns, libuv updates the loop's time (uv_now, ms on
 * CLOCK_MONOTONIC, the clock of fl_mono_ns), and nothing in faultline moves
 * it before CHECK. So at CHECK, uv_now is when the wait ended, and two kinds
 * of stall are recorded:
 *
 *   busy      from the end of a wait to the next PREPARE: I/O callbacks,
 *             check and close callbacks, then the next iteration's timers.
 *   oversleep a wait that lasted longer than the loop asked for (its poll
 *             timeout, uv_backend_timeout at PREPARE): the process was not
 *             running when it should have woken (stopped, or no CPU for it).
 *             The stall is the excess.
 *
 * (libuv's idle-time metric would say the same, but in libuv 1.44 a wait
 * that ends by its timeout is only accounted at the next event, so a quiet
 * loop would look busy.) libuv 1.44's uv_backend_timeout also says 0 when
 * sockets wait to be registered, and the loop then waits for its real
 * timeout: an unref'd FL_LAG_TICK_MS timer bounds every wait, and a 0 is
 * judged against that bound. Every handle is unref'd: none keeps the loop
 * alive. */
#include "controller/probes/lag.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "common/clock.h"

#define RECORD_NS ((uint64_t)FL_LAG_RECORD_MS * 1000000u)

void fl_lag_record(struct fl_lag *lag, uint64_t begin_ns, uint64_t end_ns)
{
    if (end_ns <= begin_ns || end_ns - begin_ns < RECORD_NS)
        return;
    lag->ring[lag->head] = (struct fl_lag_stall){.begin_ns = begin_ns, .end_ns = end_ns};
    lag->head = (lag->head + 1) % FL_LAG_RING;
    if (lag->count < FL_LAG_RING)
        lag->count++;
    if (end_ns - begin_ns > lag->longest_ns)
        lag->longest_ns = end_ns - begin_ns;
}

/* When the loop's last wait ended, by the loop's own clock (see above). */
static uint64_t wait_end_now(const struct fl_lag *lag, uint64_t now_ns)
{
    uint64_t end = uv_now(lag->loop) * 1000000u;
    if (end < lag->prepare_ns)
        end = lag->prepare_ns; /* the ms clock is coarser than prepare_ns */
    return end < now_ns ? end : now_ns;
}

static void on_prepare(uv_prepare_t *h)
{
    struct fl_lag *lag = h->data;
    uint64_t now = fl_mono_ns();
    if (lag->wait_end_ns != 0)
        fl_lag_record(lag, lag->wait_end_ns, now);
    lag->prepare_ns = now;
    int timeout = uv_backend_timeout(lag->loop);
    /* 0 may also mean "sockets to register first" (libuv 1.44: a non-empty
     * watcher queue), after which the loop waits for its real timeout, not
     * known here; that is at most our tick away. */
    if (timeout == 0)
        timeout = FL_LAG_TICK_MS;
    lag->wait_limit_ns = timeout < 0 ? UINT64_MAX : (uint64_t)timeout * 1000000u;
}

static void on_tick(uv_timer_t *t)
{
    (void)t; /* it only bounds the loop's waits */
}

static void on_check(uv_check_t *h)
{
    struct fl_lag *lag = h->data;
    uint64_t now = fl_mono_ns();
    if (lag->prepare_ns == 0)
        return; /* no wait measured yet */
    uint64_t end = wait_end_now(lag, now);
    uint64_t waited = end - lag->prepare_ns;
    /* +1 ms: the loop's clock is in whole ms */
    if (lag->wait_limit_ns != UINT64_MAX && waited > lag->wait_limit_ns + 1000000u)
        fl_lag_record(lag, lag->prepare_ns + lag->wait_limit_ns + 1000000u, end);
    lag->wait_end_ns = end;
}

int fl_lag_start(struct fl_lag *lag, uv_loop_t *loop)
{
    memset(lag, 0, sizeof(*lag));
    lag->loop = loop;
    int rc = uv_prepare_init(loop, &lag->prepare);
    if (rc < 0)
        return rc;
    lag->open_handles = 1;
    rc = uv_check_init(loop, &lag->check);
    if (rc < 0)
        return rc;
    lag->open_handles = 2;
    rc = uv_timer_init(loop, &lag->tick);
    if (rc < 0)
        return rc;
    lag->open_handles = 3;
    lag->prepare.data = lag->check.data = lag->tick.data = lag;
    if ((rc = uv_prepare_start(&lag->prepare, on_prepare)) < 0 ||
        (rc = uv_check_start(&lag->check, on_check)) < 0 ||
        (rc = uv_timer_start(&lag->tick, on_tick, FL_LAG_TICK_MS, FL_LAG_TICK_MS)) < 0)
        return rc;
    uv_unref((uv_handle_t *)&lag->prepare);
    uv_unref((uv_handle_t *)&lag->check);
    uv_unref((uv_handle_t *)&lag->tick);
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    struct fl_lag *lag = h->data;
    assert(lag->open_handles > 0);
    if (--lag->open_handles == 0 && lag->closed != NULL)
        lag->closed(lag->closed_arg);
}

void fl_lag_stop(struct fl_lag *lag, void (*closed)(void *arg), void *arg)
{
    lag->closed = closed;
    lag->closed_arg = arg;
    int open = lag->open_handles;
    if (open == 0) {
        if (closed != NULL)
            closed(arg);
        return;
    }
    uv_close((uv_handle_t *)&lag->prepare, on_closed);
    if (open >= 2)
        uv_close((uv_handle_t *)&lag->check, on_closed);
    if (open == 3)
        uv_close((uv_handle_t *)&lag->tick, on_closed);
}

/* The part of [begin, end] inside [from, to]. */
static uint64_t overlap(uint64_t begin, uint64_t end, uint64_t from, uint64_t to)
{
    uint64_t b = begin > from ? begin : from;
    uint64_t e = end < to ? end : to;
    return e > b ? e - b : 0;
}

uint64_t fl_lag_stalled_between(const struct fl_lag *lag, uint64_t from_ns, uint64_t to_ns)
{
    uint64_t total = 0;
    uint64_t oldest = UINT64_MAX;
    for (size_t i = 0; i < lag->count; i++) {
        const struct fl_lag_stall *s = &lag->ring[i];
        if (s->begin_ns < oldest)
            oldest = s->begin_ns;
        total += overlap(s->begin_ns, s->end_ns, from_ns, to_ns);
    }
    /* The ring has forgotten part of the window: count that part as
     * stalled, so that the answer is never too small. */
    if (lag->count == FL_LAG_RING && oldest > from_ns)
        total += (oldest < to_ns ? oldest : to_ns) - from_ns;
    /* The stretch running now, when asked from inside a callback. */
    if (lag->prepare_ns != 0 && to_ns >= lag->prepare_ns) {
        uint64_t begin;
        if (lag->wait_end_ns >= lag->prepare_ns) {
            begin = lag->wait_end_ns; /* past CHECK: timers or close callbacks */
        } else {
            /* inside the poll's I/O callbacks */
            uint64_t end = wait_end_now(lag, to_ns);
            uint64_t waited = end - lag->prepare_ns;
            if (lag->wait_limit_ns != UINT64_MAX && waited > lag->wait_limit_ns + 1000000u)
                total +=
                    overlap(lag->prepare_ns + lag->wait_limit_ns + 1000000u, end, from_ns, to_ns);
            begin = end;
        }
        total += overlap(begin, to_ns, from_ns, to_ns);
    }
    return total;
}
