/* A Redis write client on the libuv loop (issue 15): one XADD per write, an
 * optional WAIT for replicas, and the read-back of a run's records.
 *
 * hiredis's async API on the libuv loop, through an adapter of our own
 * (rediswrite.c: hiredis 0.14's drops poll errors).
 * With sentinels, the client asks them for the current master
 * (SENTINEL get-master-addr-by-name), one after another until one answers,
 * as a Sentinel-aware client does, and asks again after any error. Every
 * operation is bounded by the caller's timeout (a uv_timer); one operation at
 * a time; a connection that failed or timed out is dropped and reopened by
 * the next operation.
 *
 * A write is `XADD key * run RUN seq N at MS`, acknowledged by its reply;
 * with wait_replicas N it is followed (pipelined) by `WAIT N T` and
 * acknowledged only when at least N replicas have it. T is three quarters of
 * the write's timeout, so that WAIT answers before the client gives up.
 *
 * Addresses are numeric (hiredis 0.14 resolves names with a blocking
 * getaddrinfo): "10.0.0.1:6379" or "[::1]:6379". */
#ifndef FL_CONTROLLER_PROBES_REDISWRITE_H
#define FL_CONTROLLER_PROBES_REDISWRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define FL_REDISWRITE_MAX_SENTINELS 16
#define FL_REDISWRITE_KEY_MAX 512
#define FL_REDISWRITE_RUN_ID_MAX 128
/* Read-back: at most this many records of this run. */
#define FL_REDISWRITE_READBACK_MAX 1000000
/* Read-back pages: XRANGE ... COUNT this. */
#define FL_REDISWRITE_READBACK_PAGE 10000
#define FL_REDISWRITE_DEFAULT_KEY "faultline_writes"

struct fl_rediswrite_config {
    const char *address;          /* "ip:port"; or NULL with sentinels */
    const char *const *sentinels; /* "ip:port" each */
    size_t n_sentinels;
    const char *master_name; /* with sentinels */
    const char *key;         /* NULL: FL_REDISWRITE_DEFAULT_KEY */
    const char *run_id;
    unsigned wait_replicas; /* 0: no WAIT */
};

struct fl_rediswrite;

/* ok: acknowledged; ack_ms: wall clock when known (0 when !ok); detail:
 * "acknowledged by 10.0.0.1:6379", "... and 1 of 1 replicas", "only 0 of 1
 * replicas acknowledged", "timeout after 500 ms", or the error. */
typedef void (*fl_rediswrite_cb)(void *arg, bool ok, uint64_t ack_ms, const char *detail);
/* err NULL: seqs[0..n) in stream order (valid during the call only). */
typedef void (*fl_rediswrite_readback_cb)(void *arg, const uint64_t *seqs, size_t n,
                                          const char *err);

/* Checks and copies cfg; nothing connects yet. 0, or -EINVAL with err naming
 * the problem, or -ENOMEM. */
int fl_rediswrite_create(uv_loop_t *loop, const struct fl_rediswrite_config *cfg,
                         struct fl_rediswrite **out, char *err, size_t err_len);

/* One write. cb runs exactly once, later (never inside this call), within
 * timeout_ms plus one loop iteration. 0; -EBUSY while another operation is in
 * flight; -EINVAL (timeout_ms 0, NULL cb; then cb is never called). */
int fl_rediswrite_write(struct fl_rediswrite *w, uint64_t seq, uint64_t controller_ms,
                        uint64_t timeout_ms, fl_rediswrite_cb cb, void *arg);

/* This run's seqs, from the current master. Same contract. */
int fl_rediswrite_readback(struct fl_rediswrite *w, uint64_t timeout_ms,
                           fl_rediswrite_readback_cb cb, void *arg);

/* The master last written to ("ip:port"), or "" before any. */
const char *fl_rediswrite_master(const struct fl_rediswrite *w);

/* Cancels the operation in flight (its callback is never called), closes
 * every connection and frees w once hiredis and libuv are done with them;
 * closed (may be NULL) runs then. Safe at any point, from a callback too. */
void fl_rediswrite_close(struct fl_rediswrite *w, void (*closed)(void *arg), void *arg);

#endif
