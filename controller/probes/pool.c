/* Probe threads (pool.h).
 *
 * Who owns what:
 *   the owner's thread  the pool, the members array (read-only once started),
 *                       results_async, each queue's head;
 *   worker i's thread   its loop and everything on it (its probes, their
 *                       curl multi, its lag monitor, stop_async's callback),
 *                       its queue's tail, its members' stats until it ends.
 * What crosses: a queue's head and tail (atomics, acquire/release), lost and
 * stop and done (atomics), and uv_async_send both ways. Probes are started
 * on a worker's loop by the owner before its thread exists, and their stats
 * are read by the owner after pthread_join: both ordered by the thread's
 * creation and join.
 *
 * A worker's life: RUNNING (uv_run) ─stop_async─► stops its probes and
 * lag, closes stop_async ─► its loop ends ─► done = true, results_async
 * poked ─► the owner joins it (it has returned or is about to). */
#include "controller/probes/pool.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "controller/probes/lag.h"

struct queued {
    size_t id;
    struct fl_probe_result r;
};

struct worker;

struct member {
    size_t id;
    const struct fl_probe_spec *spec;
    struct worker *w;
    struct fl_probe *probe;
    struct fl_probe_stats stats; /* the worker's until it ends */
};

struct worker {
    struct fl_probe_pool *pool;
    unsigned index;
    pthread_t thread;
    bool loop_open, started, joined;
    uv_loop_t loop;
    uv_async_t stop_async;
    struct fl_lag lag;
    bool lag_open;
    uint64_t longest_stall_ns; /* written by the worker before done */
    /* the queue: ring[tail % FL_PROBE_QUEUE_MAX] is the next free slot */
    struct queued *ring;
    _Atomic size_t head; /* the owner's: next to take */
    _Atomic size_t tail; /* the worker's: next to fill */
    _Atomic uint64_t lost;
    uint64_t lost_said; /* the owner's: lost already reported */
    atomic_bool stop;
    atomic_bool done;
};

struct fl_probe_pool {
    uv_loop_t *owner;
    fl_probe_pool_result_cb cb;
    fl_probe_pool_overflow_cb overflow_cb;
    void *arg;
    struct member *members; /* by id, increasing (fl_probe_pool_add) */
    size_t n_members, cap_members;
    struct worker *workers;
    unsigned n_workers;
    uv_async_t results_async; /* on the owner's loop */
    bool async_open;
    bool stopping;
    void (*stopped)(void *);
    void *stopped_arg;
    uint64_t discarded;
};

unsigned fl_probe_pool_thread_of(const char *name, unsigned k)
{
    if (k <= 1)
        return 0;
    uint64_t h = 1469598103934665603ull; /* FNV-1a, as the phase */
    for (const unsigned char *c = (const unsigned char *)(name != NULL ? name : ""); *c; c++) {
        h ^= *c;
        h *= 1099511628211ull;
    }
    /* FNV-1a alone spreads names that differ in their last characters
     * badly over a small k ("web-0".."web-999": 990 on one of two threads);
     * a 64-bit finalizer (MurmurHash3's fmix64) mixes every bit into all. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return (unsigned)(h % k);
}

bool fl_probe_pool_kind_ok(enum fl_probe_type type)
{
    return type == FL_PROBE_HTTP || type == FL_PROBE_TCP;
}

/* ------------------------------------------------------------ the worker */

/* A probe's result, on its worker's thread: into the queue, or counted lost. */
static void on_result(struct fl_probe *p, const struct fl_probe_result *r, void *arg)
{
    (void)p;
    struct member *m = arg;
    struct worker *w = m->w;
    size_t tail = atomic_load_explicit(&w->tail, memory_order_relaxed);
    size_t head = atomic_load_explicit(&w->head, memory_order_acquire);
    if (tail - head >= FL_PROBE_QUEUE_MAX) {
        atomic_fetch_add(&w->lost, 1);
    } else {
        struct queued *q = &w->ring[tail % FL_PROBE_QUEUE_MAX];
        q->id = m->id;
        q->r = *r;
        atomic_store_explicit(&w->tail, tail + 1, memory_order_release);
    }
    uv_async_send(&w->pool->results_async); /* thread-safe; coalesces */
}

static void on_stop_closed(uv_handle_t *h)
{
    (void)h;
}

/* The owner asked the worker to stop: on the worker's thread. */
static void on_stop(uv_async_t *h)
{
    struct worker *w = h->data;
    if (!atomic_load(&w->stop))
        return;
    struct fl_probe_pool *pool = w->pool;
    for (size_t i = 0; i < pool->n_members; i++) {
        struct member *m = &pool->members[i];
        if (m->w != w || m->probe == NULL)
            continue;
        fl_probe_get_stats(m->probe, &m->stats);
        fl_probe_stop(m->probe, NULL, NULL);
        m->probe = NULL;
    }
    if (w->lag_open) {
        w->longest_stall_ns = w->lag.longest_ns;
        fl_lag_stop(&w->lag, NULL, NULL);
        w->lag_open = false;
    }
    uv_close((uv_handle_t *)&w->stop_async, on_stop_closed);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT); /* until on_stop has closed everything */
    atomic_store(&w->done, true);
    uv_async_send(&w->pool->results_async);
    return NULL;
}

/* ------------------------------------------------------------ the owner */

static void on_results_closed(uv_handle_t *h)
{
    struct fl_probe_pool *pool = h->data;
    pool->async_open = false;
    if (pool->stopped != NULL)
        pool->stopped(pool->stopped_arg);
}

static void maybe_stopped(struct fl_probe_pool *pool)
{
    if (!pool->stopping || !pool->async_open || uv_is_closing((uv_handle_t *)&pool->results_async))
        return;
    for (unsigned i = 0; i < pool->n_workers; i++) {
        struct worker *w = &pool->workers[i];
        if (w->started && !w->joined)
            return;
    }
    uv_close((uv_handle_t *)&pool->results_async, on_results_closed);
}

/* Takes what worker w has queued; delivers it unless the pool is stopping. */
static void drain(struct fl_probe_pool *pool, struct worker *w)
{
    size_t head = atomic_load_explicit(&w->head, memory_order_relaxed);
    size_t tail = atomic_load_explicit(&w->tail, memory_order_acquire);
    while (head != tail) {
        struct queued *q = &w->ring[head % FL_PROBE_QUEUE_MAX];
        if (pool->stopping)
            pool->discarded++;
        else
            pool->cb(pool->arg, q->id, &q->r); /* may stop the pool */
        head++;
        atomic_store_explicit(&w->head, head, memory_order_release);
    }
    uint64_t lost = atomic_load(&w->lost);
    if (lost > w->lost_said && !pool->stopping) {
        w->lost_said = lost;
        pool->overflow_cb(pool->arg, w->index, lost);
    }
}

static void on_results(uv_async_t *h)
{
    struct fl_probe_pool *pool = h->data;
    for (unsigned i = 0; i < pool->n_workers; i++) {
        struct worker *w = &pool->workers[i];
        if (w->started)
            drain(pool, w);
        if (w->started && !w->joined && atomic_load(&w->done)) {
            int rc = pthread_join(w->thread, NULL); /* it has returned, or is returning */
            assert(rc == 0);
            w->joined = true;
        }
    }
    maybe_stopped(pool);
}

int fl_probe_pool_new(uv_loop_t *owner, unsigned threads, fl_probe_pool_result_cb cb,
                      fl_probe_pool_overflow_cb overflow_cb, void *arg, struct fl_probe_pool **out)
{
    if (owner == NULL || threads < 1 || threads > FL_PROBE_THREADS_MAX || cb == NULL ||
        overflow_cb == NULL)
        return -EINVAL;
    struct fl_probe_pool *pool = calloc(1, sizeof(*pool));
    if (pool == NULL)
        return -ENOMEM;
    pool->workers = calloc(threads, sizeof(*pool->workers));
    if (pool->workers == NULL) {
        free(pool);
        return -ENOMEM;
    }
    pool->owner = owner;
    pool->cb = cb;
    pool->overflow_cb = overflow_cb;
    pool->arg = arg;
    pool->n_workers = threads;
    for (unsigned i = 0; i < threads; i++) {
        pool->workers[i].pool = pool;
        pool->workers[i].index = i;
    }
    int rc = uv_async_init(owner, &pool->results_async, on_results);
    if (rc < 0) {
        free(pool->workers);
        free(pool);
        return rc;
    }
    pool->results_async.data = pool;
    pool->async_open = true;
    *out = pool;
    return 0;
}

int fl_probe_pool_add(struct fl_probe_pool *pool, size_t id, const struct fl_probe_spec *spec)
{
    if (!fl_probe_pool_kind_ok(spec->type))
        return -EINVAL;
    if (pool->n_members > 0 && id <= pool->members[pool->n_members - 1].id)
        return -EINVAL; /* member_of searches them by id */
    if (pool->n_members == pool->cap_members) {
        size_t cap = pool->cap_members ? pool->cap_members * 2 : 16;
        struct member *g = realloc(pool->members, cap * sizeof(*g));
        if (g == NULL)
            return -ENOMEM;
        pool->members = g;
        pool->cap_members = cap;
    }
    struct member *m = &pool->members[pool->n_members++];
    memset(m, 0, sizeof(*m));
    m->id = id;
    m->spec = spec;
    m->w = &pool->workers[fl_probe_pool_thread_of(spec->name, pool->n_workers)];
    return 0;
}

/* Worker w's loop with its lag monitor and stop_async, its queue. */
static int worker_prepare(struct worker *w, char *err, size_t err_len)
{
    int rc = uv_loop_init(&w->loop);
    if (rc < 0) {
        snprintf(err, err_len, "probe thread %u: cannot make its event loop: %s", w->index,
                 uv_strerror(rc));
        return rc;
    }
    w->loop_open = true;
    w->ring = calloc(FL_PROBE_QUEUE_MAX, sizeof(*w->ring));
    if (w->ring == NULL) {
        snprintf(err, err_len, "probe thread %u: no memory for its result queue", w->index);
        return -ENOMEM;
    }
    rc = uv_async_init(&w->loop, &w->stop_async, on_stop);
    if (rc < 0) {
        snprintf(err, err_len, "probe thread %u: %s", w->index, uv_strerror(rc));
        return rc;
    }
    w->stop_async.data = w;
    rc = fl_lag_start(&w->lag, &w->loop);
    w->lag_open = true; /* its handles are initialised even on failure: closed in on_stop */
    if (rc < 0)
        snprintf(err, err_len, "probe thread %u: cannot watch its loop: %s", w->index,
                 uv_strerror(rc));
    return rc;
}

int fl_probe_pool_start(struct fl_probe_pool *pool, char *err, size_t err_len)
{
    int rc = fl_probe_http_global_init(); /* before any thread touches curl */
    if (rc < 0) {
        snprintf(err, err_len, "cannot initialise libcurl");
        return rc;
    }
    for (unsigned i = 0; i < pool->n_workers; i++) {
        rc = worker_prepare(&pool->workers[i], err, err_len);
        if (rc < 0)
            goto fail;
    }
    for (size_t i = 0; i < pool->n_members; i++) {
        struct member *m = &pool->members[i];
        rc = fl_probe_start(&m->w->loop, m->spec, on_result, m, &m->probe);
        if (rc < 0) {
            m->probe = NULL;
            snprintf(err, err_len, "probe %s: cannot start: %s", m->spec->name, fl_strerror(rc));
            goto fail;
        }
        fl_probe_set_lag(m->probe, &m->w->lag);
    }
    for (unsigned i = 0; i < pool->n_workers; i++) {
        struct worker *w = &pool->workers[i];
        rc = -pthread_create(&w->thread, NULL, worker_main, w);
        if (rc < 0) {
            snprintf(err, err_len, "cannot start probe thread %u: %s", i, strerror(-rc));
            goto fail;
        }
        w->started = true;
    }
    return 0;
fail:
    /* Workers already running are stopped by fl_probe_pool_stop; the rest
     * are wound down here, on this thread, their loops never having run. */
    for (unsigned i = 0; i < pool->n_workers; i++) {
        struct worker *w = &pool->workers[i];
        if (w->started || !w->loop_open)
            continue;
        atomic_store(&w->stop, true);
        if (w->stop_async.data != NULL)
            on_stop(&w->stop_async);
        else if (w->lag_open)
            fl_lag_stop(&w->lag, NULL, NULL);
        uv_run(&w->loop, UV_RUN_DEFAULT); /* close callbacks only: nothing waits */
    }
    return rc;
}

void fl_probe_pool_stop(struct fl_probe_pool *pool, void (*stopped)(void *arg), void *arg)
{
    if (pool->stopping)
        return;
    pool->stopping = true;
    pool->stopped = stopped;
    pool->stopped_arg = arg;
    for (unsigned i = 0; i < pool->n_workers; i++) {
        struct worker *w = &pool->workers[i];
        if (!w->started)
            continue;
        atomic_store(&w->stop, true);
        uv_async_send(&w->stop_async);
    }
    maybe_stopped(pool); /* no worker running: closes now */
}

/* Binary search: the run asks for every probe once it ends (thousands). */
static const struct member *member_of(const struct fl_probe_pool *pool, size_t id)
{
    size_t lo = 0, hi = pool->n_members;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pool->members[mid].id == id)
            return &pool->members[mid];
        if (pool->members[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void fl_probe_pool_stats(const struct fl_probe_pool *pool, size_t id, struct fl_probe_stats *out)
{
    const struct member *m = member_of(pool, id);
    if (m != NULL)
        *out = m->stats;
    else
        memset(out, 0, sizeof(*out));
}

int fl_probe_pool_thread(const struct fl_probe_pool *pool, size_t id)
{
    const struct member *m = member_of(pool, id);
    return m != NULL ? (int)m->w->index : -1;
}

uint64_t fl_probe_pool_longest_stall_ns(const struct fl_probe_pool *pool)
{
    uint64_t max = 0;
    for (unsigned i = 0; i < pool->n_workers; i++)
        if (pool->workers[i].longest_stall_ns > max)
            max = pool->workers[i].longest_stall_ns;
    return max;
}

uint64_t fl_probe_pool_discarded(const struct fl_probe_pool *pool)
{
    return pool->discarded;
}

uint64_t fl_probe_pool_lost(const struct fl_probe_pool *pool)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < pool->n_workers; i++)
        n += atomic_load(&pool->workers[i].lost);
    return n;
}

void fl_probe_pool_free(struct fl_probe_pool *pool)
{
    if (pool == NULL)
        return;
    assert(!pool->async_open);
    for (unsigned i = 0; i < pool->n_workers; i++) {
        struct worker *w = &pool->workers[i];
        assert(!w->started || w->joined);
        if (w->loop_open && uv_loop_close(&w->loop) != 0)
            fl_error("internal error: probe thread %u left handles open", i);
        free(w->ring);
    }
    free(pool->workers);
    free(pool->members);
    free(pool);
}
