/* Probe threads (issue 12 item 4): probes spread over K worker loops.
 *
 * One loop carries about 6,000 HTTP attempts/s on this machine (bench/
 * README.md): two thirds of each attempt is the kernel's work for a fresh
 * TCP connection, so the only way to more is more cores. A pool runs K
 * threads, each with its own libuv loop, its own curl multi (http.c keeps
 * one per loop) and its own lag monitor (lag.h): a probe on a worker is
 * judged late or not by the loop it runs on. Each probe belongs to one
 * worker for the whole run, chosen by a stable hash of its name
 * (fl_probe_pool_thread_of), so its attempts never overlap and reach the
 * owner in the order they ended.
 *
 * Results go to the owner's loop through one bounded single-producer,
 * single-consumer queue per worker (FL_PROBE_QUEUE_MAX results) and a
 * uv_async_t: the owner's callback runs on the owner's loop, exactly as a
 * probe's callback runs there when the probe is on it. A worker never waits
 * for room (its loop never blocks): a full queue means the owner's loop is
 * that far behind, the result is lost, and the owner hears it at once
 * (overflow_cb, with the count) and must abort the run; nothing is dropped
 * without saying so.
 *
 *   NEW ──add…──► start ──► RUNNING ──stop──► STOPPING ──(every worker joined)──► STOPPED
 *
 * Owner's side: every call on the owner's loop thread. */
#ifndef FL_CONTROLLER_PROBES_POOL_H
#define FL_CONTROLLER_PROBES_POOL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "controller/probes/probe.h"

/* probe_threads: at most this many (refused above, at validation and on the
 * command line). */
#define FL_PROBE_THREADS_MAX 16u
/* Results a worker may have handed over that the owner's loop has not yet
 * taken, per worker; one more is lost and aborts the run. At 10,000
 * attempts/s a second's worth; the ring is calloc'd (pages touched only as
 * it fills: 8192 x ~740 bytes = 6 MiB at most per worker). */
#define FL_PROBE_QUEUE_MAX 8192u

/* K when the experiment and the command line leave it open: chosen by the
 * probing's estimated load (fl_probe_threads_auto, rate.h). */

/* The worker a probe of that name runs on, of k: a stable hash. */
unsigned fl_probe_pool_thread_of(const char *name, unsigned k);

/* Whether a kind runs on a worker: http and tcp. exec (children reaped by
 * the owner's loop), ssh (libuv's thread pool already) and write probes
 * (the runner reads their writes back on its loop) stay on the owner's. */
bool fl_probe_pool_kind_ok(enum fl_probe_type type);

struct fl_probe_pool;

/* A result of probe id (the owner's number for it, given to add). */
typedef void (*fl_probe_pool_result_cb)(void *arg, size_t id, const struct fl_probe_result *r);
/* Worker thread (0-based) could not hand over lost more results (its queue
 * was full); total is every result it lost so far. */
typedef void (*fl_probe_pool_overflow_cb)(void *arg, unsigned thread, uint64_t total);

/* threads in 1..FL_PROBE_THREADS_MAX. Returns 0 or a negative errno. */
int fl_probe_pool_new(uv_loop_t *owner, unsigned threads, fl_probe_pool_result_cb cb,
                      fl_probe_pool_overflow_cb overflow_cb, void *arg, struct fl_probe_pool **out);

/* Before start: probe id with spec (borrowed: it must outlive the pool) goes
 * to its worker; ids in increasing order. Returns 0 or -EINVAL (not a kind
 * for a worker, or an id not above the last) / -ENOMEM. */
int fl_probe_pool_add(struct fl_probe_pool *pool, size_t id, const struct fl_probe_spec *spec);

/* Starts every probe on its worker's loop, then the threads. Returns 0, or
 * a negative errno with err filled in (nothing runs; stop it anyway). */
int fl_probe_pool_start(struct fl_probe_pool *pool, char *err, size_t err_len);

/* Stops every probe (no result is delivered from now on; those still queued
 * are counted in discarded and dropped, as an attempt in flight at stop
 * is), then joins the threads without blocking the owner's loop: stopped
 * runs on it once every worker has ended. Calling it twice is a no-op. */
void fl_probe_pool_stop(struct fl_probe_pool *pool, void (*stopped)(void *arg), void *arg);

/* After stopped: */
void fl_probe_pool_stats(const struct fl_probe_pool *pool, size_t id, struct fl_probe_stats *out);
/* The worker of probe id (0-based), or -1 when it is not in the pool. */
int fl_probe_pool_thread(const struct fl_probe_pool *pool, size_t id);
uint64_t fl_probe_pool_longest_stall_ns(const struct fl_probe_pool *pool);
/* Results dropped at stop (queued but not yet taken), and lost to overflow. */
uint64_t fl_probe_pool_discarded(const struct fl_probe_pool *pool);
uint64_t fl_probe_pool_lost(const struct fl_probe_pool *pool);

/* After stopped, or when never started. NULL is a no-op. */
void fl_probe_pool_free(struct fl_probe_pool *pool);

#endif
