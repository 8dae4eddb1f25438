/* A PostgreSQL write client on the libuv loop (issue 15): one INSERT per
 * write in its own transaction, and the read-back of a run's records.
 *
 * libpq in non-blocking mode: PQconnectStartParams/PQconnectPoll, then
 * PQsendQueryParams/PQconsumeInput/PQisBusy/PQgetResult, driven by a uv_poll
 * on PQsocket. Every operation is bounded by the caller's timeout (a
 * uv_timer); nothing blocks the loop. One operation at a time.
 *
 * Connecting, as libpq's blocking connect (PQconnectdb) does with the same
 * DSN: the hosts in their order, each given connect_timeout (per host, whole
 * seconds, 1 meaning 2; absent, 0 or less: no limit but the kernel's TCP
 * connect timeout), target_session_attrs checked on each. An operation that
 * times out while the connection is being made fails, and the attempt goes
 * on for the next operation, as an application's pool or a blocking client
 * would; a query that times out on a connection made before its operation
 * began, or any error, drops the connection and the next operation opens a
 * new one from the first host (a query on a connection made during its
 * operation runs on, its result discarded, and the next operation waits for
 * it). On each new
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
 * Refused in the DSN: host names (libpq resolves them with a blocking
 * getaddrinfo inside PQconnectPoll; give numeric addresses, host= or
 * hostaddr=, or socket directories), service= (the hosts must be in the DSN
 * to be timed one by one) and load_balance_hosts other than disable. */
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
 * target_session_attrs=read-write connect_timeout=2"; table NULL:
 * FL_PGWRITE_DEFAULT_TABLE.
 * Nothing connects yet. Returns 0, or -EINVAL with err naming the problem,
 * or -ENOMEM. */
int fl_pgwrite_create(uv_loop_t *loop, const char *dsn, const char *table, const char *run_id,
                      struct fl_pgwrite **out, char *err, size_t err_len);

/* Checks a DSN as fl_pgwrite_create does, connecting nowhere: 0 when all
 * is well; 1 with a warning in msg (a multi-host DSN without
 * connect_timeout: a silent first host would hold each connection for the
 * kernel's TCP connect timeout, for every client with that DSN); -EINVAL
 * with the refusal in msg; -ENOMEM. */
int fl_pgwrite_check_dsn(const char *dsn, char *msg, size_t msg_len);

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
