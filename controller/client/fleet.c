/* The controller's one fan-out: a window of hosts in flight, the rest queued
 * (fleet.h draws the states; a host's state changes only in set_host()). */
#include "controller/client/fleet.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common/clock.h"
#include "common/log.h"

/* H_OFF: taken off the queue (or not yet on it), for the moment before a move */
enum host_state { H_OFF, H_QUEUED, H_WAITING, H_FLIGHT, H_DONE };

struct fl_fleet {
    uv_loop_t *loop;
    uv_timer_t timer;
    bool timer_closed;
    const struct fl_fleet_ops *ops;
    void *ctx;
    size_t n, window, in_flight, n_done, n_waiting;
    size_t max_window;   /* as asked for; the window shrinks below it on EMFILE */
    size_t since_shrink; /* hosts done since the window last changed */
    unsigned char *state;
    uint64_t *wake_at; /* WAITING: fl_mono_ms() when it is queued again */
    size_t *queue;     /* a ring of QUEUED hosts; each host is in it at most once */
    size_t head, len;
    uint64_t started_ms;
    uint64_t deadline_at; /* fl_mono_ms(); 0: none */
    uint64_t deadline_ms;
    bool started, pumping, stopped;
    bool past_deadline; /* everything queued or waiting then has expired */
};

static void pump(struct fl_fleet *f);

/* The only place a host's state changes; keeps the counts. */
static void set_host(struct fl_fleet *f, size_t i, enum host_state to)
{
    enum host_state from = f->state[i];
    assert(from != H_DONE);
    assert(to != from);
    if (from == H_FLIGHT)
        f->in_flight--;
    if (from == H_WAITING)
        f->n_waiting--;
    if (to == H_WAITING)
        f->n_waiting++;
    if (to == H_FLIGHT)
        f->in_flight++;
    if (to == H_DONE)
        f->n_done++;
    if (to == H_QUEUED) {
        assert(f->len < f->n);
        f->queue[(f->head + f->len++) % f->n] = i;
    }
    f->state[i] = (unsigned char)to;
}

static size_t count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return 16; /* no /proc: a guess on the safe side of the usual few */
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n > 0 ? n - 1 : 0; /* less the directory's own */
}

size_t fl_fleet_fd_budget(size_t reserve)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1;
    size_t limit = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > SIZE_MAX / 2 ? SIZE_MAX / 2
                                                                              : (size_t)rl.rlim_cur;
    size_t open = count_open_fds();
    size_t avail = limit > open ? limit - open : 0;
    size_t keep = reserve < avail / 2 ? reserve : avail / 2;
    size_t b = avail - keep;
    fl_debug("descriptors: limit %zu, %zu open, %zu kept free, %zu for hosts", limit, open, keep,
             b);
    return b > 0 ? b : 1;
}

size_t fl_fleet_window(size_t reserve)
{
    size_t w = fl_fleet_fd_budget(reserve);
    return w < FL_FLEET_MAX_IN_FLIGHT ? w : FL_FLEET_MAX_IN_FLIGHT;
}

uint64_t fl_fleet_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = was;
    }
    return (uint64_t)rl.rlim_cur;
}

bool fl_fleet_is_fd_shortage(int err)
{
    return err == -EMFILE || err == -ENFILE;
}

int fl_fleet_new(uv_loop_t *loop, size_t n, size_t window, uint64_t deadline_ms,
                 const struct fl_fleet_ops *ops, void *ctx, struct fl_fleet **out)
{
    struct fl_fleet *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -ENOMEM;
    size_t m = n ? n : 1;
    f->state = calloc(m, sizeof(*f->state));
    f->wake_at = calloc(m, sizeof(*f->wake_at));
    f->queue = calloc(m, sizeof(*f->queue));
    if (f->state == NULL || f->wake_at == NULL || f->queue == NULL) {
        free(f->state);
        free(f->wake_at);
        free(f->queue);
        free(f);
        return -ENOMEM;
    }
    f->loop = loop;
    f->ops = ops;
    f->ctx = ctx;
    f->n = n;
    f->window = window ? window : 1;
    f->max_window = f->window;
    f->deadline_ms = deadline_ms;
    for (size_t i = 0; i < n; i++) {
        f->state[i] = H_OFF; /* not a move: queued below */
        set_host(f, i, H_QUEUED);
    }
    uv_timer_init(loop, &f->timer); /* cannot fail */
    f->timer.data = f;
    *out = f;
    return 0;
}

static void expire_waiting(struct fl_fleet *f)
{
    while (f->len > 0) {
        size_t i = f->queue[f->head];
        f->head = (f->head + 1) % f->n;
        f->len--;
        set_host(f, i, H_DONE);
        f->ops->expired(f, i, f->ctx);
    }
    for (size_t i = 0; i < f->n; i++) {
        if (f->state[i] == H_WAITING) {
            set_host(f, i, H_DONE);
            f->ops->expired(f, i, f->ctx);
        }
    }
}

static void on_timer(uv_timer_t *t)
{
    struct fl_fleet *f = t->data;
    uint64_t now = fl_mono_ms();
    if (f->deadline_at != 0 && now >= f->deadline_at) {
        fl_debug("fleet: deadline of %llu ms passed; %zu host(s) in flight",
                 (unsigned long long)f->deadline_ms, f->in_flight);
        f->past_deadline = true;
        expire_waiting(f);
    } else {
        for (size_t i = 0; i < f->n; i++)
            if (f->state[i] == H_WAITING && f->wake_at[i] <= now)
                set_host(f, i, H_QUEUED);
    }
    pump(f);
}

/* The timer wakes at the next retry or at the deadline, and is closed once
 * every host is done, so that the loop can end. */
static void arm_timer(struct fl_fleet *f)
{
    if (f->timer_closed)
        return;
    if (f->n_done == f->n) {
        f->timer_closed = true;
        uv_close((uv_handle_t *)&f->timer, NULL);
        return;
    }
    uint64_t next = f->past_deadline ? 0 : f->deadline_at;
    for (size_t i = 0; f->n_waiting > 0 && i < f->n; i++) /* O(n) only while some wait */
        if (f->state[i] == H_WAITING && (next == 0 || f->wake_at[i] < next))
            next = f->wake_at[i];
    if (next == 0) {
        uv_timer_stop(&f->timer);
        return;
    }
    uint64_t now = fl_mono_ms();
    uv_timer_start(&f->timer, on_timer, next > now ? next - now : 0, 0);
}

static void pump(struct fl_fleet *f)
{
    if (f->stopped) {
        arm_timer(f);
        return;
    }
    if (f->pumping)
        return; /* a start that finished at once: the loop below goes on */
    f->pumping = true;
    while (f->in_flight < f->window && f->len > 0) {
        size_t i = f->queue[f->head];
        f->head = (f->head + 1) % f->n;
        f->len--;
        f->state[i] = H_OFF; /* off the queue; the move is to H_FLIGHT */
        set_host(f, i, H_FLIGHT);
        int rc = f->ops->start(f, i, f->ctx);
        if (fl_fleet_is_fd_shortage(rc))
            fl_fleet_no_descriptor(f, i);
        else if (rc < 0)
            set_host(f, i, H_DONE);
    }
    f->pumping = false;
    arm_timer(f);
}

void fl_fleet_start(struct fl_fleet *f)
{
    assert(!f->started);
    f->started = true;
    f->started_ms = fl_mono_ms();
    if (f->deadline_ms != 0)
        f->deadline_at = f->started_ms + f->deadline_ms;
    pump(f);
}

void fl_fleet_stop(struct fl_fleet *f)
{
    if (f->stopped)
        return;
    f->stopped = true;
    f->len = 0;
    for (size_t i = 0; i < f->n; i++)
        if (f->state[i] == H_QUEUED || f->state[i] == H_WAITING)
            set_host(f, i, H_DONE);
    arm_timer(f);
}

void fl_fleet_done(struct fl_fleet *f, size_t i)
{
    assert(i < f->n && f->state[i] == H_FLIGHT);
    set_host(f, i, H_DONE);
    /* After a shortage, the window grows back by one host per window's
     * worth of hosts done (as TCP's congestion window does): descriptors
     * that came back are used again, and a lasting shortage costs one
     * requeued host per round. */
    if (f->window < f->max_window && ++f->since_shrink >= f->window) {
        f->window++;
        f->since_shrink = 0;
    }
    pump(f);
}

static void wait_then_queue(struct fl_fleet *f, size_t i, uint64_t delay_ms)
{
    if (f->stopped) {
        set_host(f, i, H_DONE);
        return;
    }
    uint64_t now = fl_mono_ms();
    /* a wait that would end past the deadline ends FL_FLEET_LAST_TRY_MS
     * before it instead, so that the last try is made at all */
    if (f->deadline_at != 0 && now + delay_ms >= f->deadline_at &&
        f->deadline_at > now + 2 * FL_FLEET_LAST_TRY_MS)
        delay_ms = f->deadline_at - FL_FLEET_LAST_TRY_MS - now;
    if (f->deadline_at != 0 && now + delay_ms >= f->deadline_at) {
        set_host(f, i, H_DONE);
        f->ops->expired(f, i, f->ctx);
    } else {
        f->wake_at[i] = now + delay_ms;
        set_host(f, i, H_WAITING);
    }
}

void fl_fleet_retry(struct fl_fleet *f, size_t i, uint64_t delay_ms)
{
    assert(i < f->n && f->state[i] == H_FLIGHT);
    wait_then_queue(f, i, delay_ms);
    pump(f);
}

void fl_fleet_no_descriptor(struct fl_fleet *f, size_t i)
{
    assert(i < f->n && f->state[i] == H_FLIGHT);
    size_t others = f->in_flight - 1;
    size_t w = others > 0 ? others : 1;
    if (w < f->window) {
        fl_debug("fleet: out of descriptors with %zu host(s) in flight: window %zu -> %zu", others,
                 f->window, w);
        f->window = w;
        f->since_shrink = 0;
    }
    if (f->stopped) {
        set_host(f, i, H_DONE);
    } else if (f->past_deadline) {
        set_host(f, i, H_DONE);
        f->ops->expired(f, i, f->ctx);
    } else if (others > 0) {
        set_host(f, i, H_QUEUED); /* a slot frees when one of them ends */
    } else
        wait_then_queue(f, i, FL_FLEET_FD_WAIT_MS);
    pump(f);
}

uint64_t fl_fleet_remaining_ms(const struct fl_fleet *f)
{
    if (f->deadline_at == 0)
        return UINT64_MAX;
    uint64_t now = fl_mono_ms();
    return now < f->deadline_at ? f->deadline_at - now : 0;
}

uint64_t fl_fleet_elapsed_ms(const struct fl_fleet *f)
{
    return fl_mono_ms() - f->started_ms;
}

size_t fl_fleet_current_window(const struct fl_fleet *f)
{
    return f->window;
}

void fl_fleet_free(struct fl_fleet *f)
{
    if (f == NULL)
        return;
    assert(f->timer_closed);
    free(f->state);
    free(f->wake_at);
    free(f->queue);
    free(f);
}
