/* A write probe driven for tests (issue 15): a libuv loop on a thread of its
 * own that writes through controller/probes/pgwrite.c or rediswrite.c every
 * interval (never two at once), records every attempt for
 * controller/run/rpo.c, keeps a 10 ms ticker beside it (the longest gap
 * between ticks shows whether anything blocked the loop), and on stop reads
 * the run's records back (retrying until read_back_ms has passed), then
 * closes everything and checks uv_loop_close. The test thread meanwhile
 * kills, pauses and fails over the bed. Compiled into each test that uses
 * it, with fl_writeprobes. */
#ifndef FL_TESTS_WRITELOOP_H
#define FL_TESTS_WRITELOOP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "controller/probes/rediswrite.h"
#include "controller/run/rpo.h"

#define WRITELOOP_MAX 8192

enum writeloop_kind {
    WRITELOOP_PG,
    WRITELOOP_REDIS,
};

struct writeloop {
    /* set before writeloop_start */
    enum writeloop_kind kind;
    const char *dsn;                   /* PG */
    struct fl_rediswrite_config redis; /* Redis (run_id is set from run_id) */
    char run_id[64];
    uint64_t interval_ms;
    uint64_t timeout_ms;
    uint64_t read_back_ms;

    /* results, to read after writeloop_stop (counters also while running) */
    struct fl_rpo_write writes[WRITELOOP_MAX];
    char detail[WRITELOOP_MAX][128];
    uint64_t sent_mono[WRITELOOP_MAX]; /* monotonic ms: the call */
    uint64_t end_mono[WRITELOOP_MAX];  /* monotonic ms: its callback */
    atomic_size_t n_writes;
    atomic_size_t n_acked;
    uint64_t *read_back;
    size_t n_read_back;
    char read_back_err[256];
    uint64_t max_tick_gap_ms;
    uint64_t ticks;
    char create_err[256];

    atomic_int stop;
    pthread_t thread;
    bool running;
};

/* Starts the thread. 0, or -1 (create_err says why). */
int writeloop_start(struct writeloop *wl);
/* Stops writing, reads back, joins. Returns 0 when the read-back succeeded. */
int writeloop_stop(struct writeloop *wl);
/* Waits until n more writes have been acknowledged, up to timeout_ms; 0 or -1. */
int writeloop_wait_acked(struct writeloop *wl, size_t n, int timeout_ms);
/* The last acknowledged write's seq index + 1 (0 none), for slicing. */
size_t writeloop_count(struct writeloop *wl);
/* Longest stretch between two acknowledged writes, in ms (the failover as the
 * client saw it), and when it ended. */
uint64_t writeloop_longest_gap(const struct writeloop *wl);
/* Prints a line per write (seq, sent, ack, detail) to stderr, for failures. */
void writeloop_dump(const struct writeloop *wl);

#endif
