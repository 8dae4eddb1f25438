/* A PostgreSQL 15 failover bed for tests (issue 15): a primary (n1) and a
 * streaming standby (n2), each watched by repmgrd (Debian's
 * postgresql-15-repmgr) with automatic failover, in a private directory
 * owned by the postgres user, on private ports. Every process runs as
 * postgres and gets SIGKILL should the test die.
 *
 * Clients and repmgr reach the servers through their Unix sockets (the
 * directory `sock`); only the standby's WAL stream uses TCP to 127.0.0.1, so
 * that cutting TCP to the primary's port cuts replication alone. repmgrd is
 * tuned for a quick failover: monitor_interval_secs 1, reconnect_attempts 2,
 * reconnect_interval 1. */
#ifndef FL_TESTS_PGBED_H
#define FL_TESTS_PGBED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct pgbed {
    char dir[256];
    char sock[300];
    pid_t pg[2]; /* postmasters of n1, n2 */
    pid_t repmgrd[2];
    uint16_t port[2];
    bool sync;     /* synchronous_standby_names = 'n2' on n1 */
    char dsn[800]; /* multi-host, target_session_attrs=read-write, dbname flwp */
    char nft_table[64];
};

/* Starts n1, clones n2, registers both with repmgr, starts both repmgrd and,
 * with sync, makes n2 the synchronous standby; waits until n2 streams (and
 * is "sync"). 0, or -1 after printing why (everything is stopped). */
int pgbed_start(struct pgbed *b, bool sync);

/* Stops everything, removes the nft table and the directory. */
void pgbed_stop(struct pgbed *b);

/* psql as postgres on node i (0 or 1): -Atc sql, output in out. Exit status. */
int pgbed_psql(struct pgbed *b, int i, const char *db, const char *sql, char *out, size_t cap);

/* Waits until node i answers pg_is_in_recovery() = false (promoted), up to
 * timeout_ms. Returns the ms it took, or -1. */
int pgbed_wait_primary(struct pgbed *b, int i, int timeout_ms);

/* Cuts (and restores) TCP to n1's port: the WAL stream alone. 0 or -1. */
int pgbed_cut_stream(struct pgbed *b);
void pgbed_uncut_stream(struct pgbed *b);

/* Sends sig to node i's postmaster and its children (SIGSTOP: the whole
 * server stops answering, established connections too). */
void pgbed_signal(struct pgbed *b, int i, int sig);

/* The first line of repmgrd's log on node i that contains needle, or "". */
void pgbed_log_line(struct pgbed *b, int i, const char *needle, char *out, size_t cap);

#endif
