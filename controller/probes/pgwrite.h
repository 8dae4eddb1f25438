/* A PostgreSQL write client on the libuv loop (issue 15): one INSERT per
 * write in its own transaction, and the read-back of a run's records.
 *
 * libpq in non-blocking mode: PQconnectStart/PQconnectPoll, then
 * PQsendQueryParams/PQconsumeInput/PQisBusy/PQgetResult, driven by a uv_poll
 * on PQsocket (which changes while a multi-host DSN tries host after host).
 * Every operation is bounded by the caller's timeout (a uv_timer); nothing
 * blocks the loop. One operation at a time; a connection that failed or
 * timed out is dropped and reopened by the next operation. On each new
 * connection the table is created if missing:
 *
 *   CREATE TABLE IF NOT EXISTS <table> (run_id text NOT NULL, seq bigint NOT
 *     NULL, written_at bigint NOT NULL, PRIMARY KEY (run_id, seq))
 *
 * written_at is the controller's wall clock in ms since the epoch. A write
 * is acknowledged when the INSERT's CommandComplete arrives: the implicit
 * transaction has committed (with synchronous replication, on the standby
 * too).
 *
 * Host names in the DSN are refused: libpq resolves them with a blocking
 * getaddrinfo inside PQconnectPoll. Give numeric addresses (host= or
 * hostaddr=) or socket directories. */
#ifndef FL_CONTROLLER_PROBES_PGWRITE_H
#define FL_CONTROLLER_PROBES_PGWRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* A table name: a plain SQL identifier, [A-Za-z_][A-Za-z0-9_]*, at most this
 * many bytes (PostgreSQL's NAMEDATALEN - 1). */
#define FL_PGWRITE_TABLE_MAX 63
/* A run id: at most this many bytes, printable ASCII. */
#define FL_PGWRITE_RUN_ID_MAX 128
/* Read-back: at most this many records (a run of 24 h at 10 writes/s). */
#define FL_PGWRITE_READBACK_MAX 1000000
#define FL_PGWRITE_DEFAULT_TABLE "faultline_writes"

struct fl_pgwrite;

/* ok: acknowledged (COMMIT returned); ack_ms: wall clock when it was known
 * (0 when !ok); detail: "committed", "timeout after 500 ms", or the server's
 * or libpq's first line of error. */
typedef void (*fl_pgwrite_cb)(void *arg, bool ok, uint64_t ack_ms, const char *detail);
/* err NULL: seqs[0..n) ascending (valid during the call only); else why not. */
typedef void (*fl_pgwrite_readback_cb)(void *arg, const uint64_t *seqs, size_t n, const char *err);

/* dsn: a libpq connection string (key=value or URI), e.g.
 * "host=10.0.0.1,10.0.0.2 port=5432,5432 dbname=orders
 * target_session_attrs=read-write"; table NULL: FL_PGWRITE_DEFAULT_TABLE.
 * Nothing connects yet. Returns 0, or -EINVAL with err naming the problem,
 * or -ENOMEM. */
int fl_pgwrite_create(uv_loop_t *loop, const char *dsn, const char *table, const char *run_id,
                      struct fl_pgwrite **out, char *err, size_t err_len);

/* One INSERT of (run_id, seq, controller_ms). cb runs exactly once, later
 * (never from inside this call), within timeout_ms plus one loop iteration.
 * Returns 0; -EBUSY while another operation is in flight; -EINVAL for
 * timeout_ms 0 or NULL cb (then cb is never called). */
int fl_pgwrite_write(struct fl_pgwrite *w, uint64_t seq, uint64_t controller_ms,
                     uint64_t timeout_ms, fl_pgwrite_cb cb, void *arg);

/* Reads back this run's seqs from wherever the DSN now leads. Same contract
 * as fl_pgwrite_write. */
int fl_pgwrite_readback(struct fl_pgwrite *w, uint64_t timeout_ms, fl_pgwrite_readback_cb cb,
                        void *arg);

/* Cancels the operation in flight (its callback is never called), closes the
 * connection and frees w once its handles are closed; closed (may be NULL)
 * runs then. Safe at any point, from inside a callback too. */
void fl_pgwrite_close(struct fl_pgwrite *w, void (*closed)(void *arg), void *arg);

#endif
