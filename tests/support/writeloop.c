/* A write probe driven for tests (writeloop.h). */
#include "tests/support/writeloop.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/clock.h"
#include "controller/probes/pgwrite.h"
#include "tests/support/proc.h"

struct ctx {
    struct writeloop *wl;
    uv_loop_t loop;
    uv_timer_t tick, writer;
    struct fl_pgwrite *pg;
    struct fl_rediswrite *rd;
    bool in_flight;
    bool reading;
    bool done;
    uint64_t last_tick;
    uint64_t read_back_deadline;
};

static void on_written(void *arg, bool ok, uint64_t ack_ms, const char *detail)
{
    struct ctx *c = arg;
    struct writeloop *wl = c->wl;
    size_t i = atomic_load(&wl->n_writes) - 1;
    wl->end_mono[i] = fl_mono_ms();
    wl->writes[i].acked = ok;
    wl->writes[i].ack_ms = ack_ms;
    snprintf(wl->detail[i], sizeof(wl->detail[i]), "%s", detail);
    if (ok)
        atomic_fetch_add(&wl->n_acked, 1);
    c->in_flight = false;
}

static void finish_all(struct ctx *c)
{
    c->done = true;
    uv_timer_stop(&c->writer);
    uv_timer_stop(&c->tick);
    if (c->pg != NULL)
        fl_pgwrite_close(c->pg, NULL, NULL);
    if (c->rd != NULL)
        fl_rediswrite_close(c->rd, NULL, NULL);
    c->pg = NULL;
    c->rd = NULL;
    uv_close((uv_handle_t *)&c->writer, NULL);
    uv_close((uv_handle_t *)&c->tick, NULL);
}

static void on_read_back(void *arg, const uint64_t *seqs, size_t n, const char *err)
{
    struct ctx *c = arg;
    struct writeloop *wl = c->wl;
    c->in_flight = false;
    if (err != NULL) {
        snprintf(wl->read_back_err, sizeof(wl->read_back_err), "%s", err);
        if (fl_mono_ms() < c->read_back_deadline)
            return; /* the writer timer tries again */
        finish_all(c);
        return;
    }
    wl->read_back_err[0] = '\0';
    wl->read_back = malloc((n + 1) * sizeof(*seqs));
    assert(wl->read_back != NULL);
    if (n > 0)
        memcpy(wl->read_back, seqs, n * sizeof(*seqs));
    wl->n_read_back = n;
    finish_all(c);
}

static void on_writer(uv_timer_t *t)
{
    struct ctx *c = t->data;
    struct writeloop *wl = c->wl;
    if (c->in_flight || c->done)
        return;
    if (atomic_load(&wl->stop)) {
        if (!c->reading) {
            c->reading = true;
            c->read_back_deadline = fl_mono_ms() + wl->read_back_ms;
        }
        c->in_flight = true;
        int rc = c->pg != NULL ? fl_pgwrite_readback(c->pg, wl->timeout_ms * 4, on_read_back, c)
                               : fl_rediswrite_readback(c->rd, wl->timeout_ms * 4, on_read_back, c);
        assert(rc == 0);
        return;
    }
    size_t i = atomic_load(&wl->n_writes);
    if (i == WRITELOOP_MAX)
        return;
    uint64_t now = fl_now_ms();
    wl->writes[i] = (struct fl_rpo_write){.seq = i + 1, .sent_ms = now};
    wl->sent_mono[i] = fl_mono_ms();
    atomic_store(&wl->n_writes, i + 1);
    c->in_flight = true;
    int rc = c->pg != NULL ? fl_pgwrite_write(c->pg, i + 1, now, wl->timeout_ms, on_written, c)
                           : fl_rediswrite_write(c->rd, i + 1, now, wl->timeout_ms, on_written, c);
    assert(rc == 0);
}

static void on_tick(uv_timer_t *t)
{
    struct ctx *c = t->data;
    uint64_t now = fl_mono_ms();
    if (c->last_tick != 0 && now - c->last_tick > c->wl->max_tick_gap_ms)
        c->wl->max_tick_gap_ms = now - c->last_tick;
    c->last_tick = now;
    c->wl->ticks++;
}

static void *run(void *arg)
{
    struct ctx *c = arg;
    struct writeloop *wl = c->wl;
    uv_run(&c->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&c->loop);
    if (rc != 0)
        fprintf(stderr, "writeloop: uv_loop_close: %s\n", uv_strerror(rc));
    assert(rc == 0);
    (void)wl;
    free(c);
    return NULL;
}

int writeloop_start(struct writeloop *wl)
{
    struct ctx *c = calloc(1, sizeof(*c));
    assert(c != NULL);
    c->wl = wl;
    atomic_store(&wl->n_writes, 0);
    atomic_store(&wl->n_acked, 0);
    atomic_store(&wl->stop, 0);
    uv_loop_init(&c->loop);
    int rc;
    if (wl->kind == WRITELOOP_PG) {
        rc = fl_pgwrite_create(&c->loop, wl->dsn, NULL, wl->run_id, &c->pg, wl->create_err,
                               sizeof(wl->create_err));
    } else {
        wl->redis.run_id = wl->run_id;
        rc = fl_rediswrite_create(&c->loop, &wl->redis, &c->rd, wl->create_err,
                                  sizeof(wl->create_err));
    }
    if (rc < 0) {
        uv_loop_close(&c->loop);
        free(c);
        return -1;
    }
    uv_timer_init(&c->loop, &c->tick);
    uv_timer_init(&c->loop, &c->writer);
    c->tick.data = c->writer.data = c;
    uv_timer_start(&c->tick, on_tick, 10, 10);
    uv_timer_start(&c->writer, on_writer, 0, wl->interval_ms);
    wl->running = true;
    return pthread_create(&wl->thread, NULL, run, c) == 0 ? 0 : -1;
}

int writeloop_stop(struct writeloop *wl)
{
    if (!wl->running)
        return -1;
    atomic_store(&wl->stop, 1);
    pthread_join(wl->thread, NULL);
    wl->running = false;
    return wl->read_back != NULL ? 0 : -1;
}

int writeloop_wait_acked(struct writeloop *wl, size_t n, int timeout_ms)
{
    size_t target = atomic_load(&wl->n_acked) + n;
    uint64_t deadline = fl_mono_ms() + (uint64_t)timeout_ms;
    while (atomic_load(&wl->n_acked) < target) {
        if (fl_mono_ms() > deadline)
            return -1;
        sleep_ms(5);
    }
    return 0;
}

size_t writeloop_count(struct writeloop *wl)
{
    return atomic_load(&wl->n_writes);
}

uint64_t writeloop_longest_gap(const struct writeloop *wl)
{
    uint64_t last = 0, gap = 0;
    size_t n = atomic_load(&((struct writeloop *)wl)->n_writes);
    for (size_t i = 0; i < n; i++) {
        if (!wl->writes[i].acked)
            continue;
        if (last != 0 && wl->writes[i].ack_ms - last > gap)
            gap = wl->writes[i].ack_ms - last;
        last = wl->writes[i].ack_ms;
    }
    return gap;
}

void writeloop_dump(const struct writeloop *wl)
{
    size_t n = atomic_load(&((struct writeloop *)wl)->n_writes);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "  seq %zu sent %llu %s %llu %s\n", i + 1,
                (unsigned long long)wl->writes[i].sent_ms, wl->writes[i].acked ? "ack" : "---",
                (unsigned long long)wl->writes[i].ack_ms, wl->detail[i]);
}
