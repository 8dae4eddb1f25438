/* A Redis bed for tests (issue 15): a primary, one replica and three
 * Sentinels (Debian's redis-server and redis-sentinel), on loopback and
 * private ports, in a private directory; no persistence. The primary listens
 * on 127.0.0.2, the replica on 127.0.0.3 (its outgoing replication link
 * leaves from 127.0.0.3 too: bind-source-addr), the Sentinels on 127.0.0.1,
 * so that the replication link alone can be cut with nftables (cut_link)
 * while clients and Sentinels still reach both. Sentinels are tuned for a
 * quick failover: down-after 1000 ms, quorum 2. */
#ifndef FL_TESTS_REDISBED_H
#define FL_TESTS_REDISBED_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define REDISBED_MASTER "flwp"
#define REDISBED_PRIMARY_ADDR "127.0.0.2"
#define REDISBED_REPLICA_ADDR "127.0.0.3"

struct redisbed {
    char dir[256];
    pid_t primary, replica;
    pid_t sentinel[3];
    uint16_t pport, rport;
    uint16_t sport[3];
    char sentinel_addr[3][32]; /* "127.0.0.1:PORT" */
    char primary_text[32];     /* "127.0.0.2:PORT" */
    char replica_text[32];
    char nft_table[64]; /* set while the link is cut */
};

/* Starts everything and waits until the replica is in sync and every
 * Sentinel knows the master, the replica and the two other Sentinels.
 * 0, or -1 after printing why (everything started is stopped). */
int redisbed_start(struct redisbed *b);

/* Starts the old primary again (after a fault killed it and the Sentinels
 * promoted the replica) on its address and port, as a replica of the
 * promoted one. Its pid (also in b->primary), or -1. */
pid_t redisbed_restart_old_primary(struct redisbed *b);

/* Stops every process still running, removes the nft table and the directory. */
void redisbed_stop(struct redisbed *b);

/* redis-cli -h addr -p port ARGS... (NULL-terminated), output in out. Exit status. */
int redisbed_cli(const char *addr, uint16_t port, char *out, size_t cap, ...);

/* Polls the Sentinels until they all name addr:port as the master, up to
 * timeout_ms. Returns the ms it took, or -1. */
int redisbed_wait_master(struct redisbed *b, const char *addr, uint16_t port, int timeout_ms);

/* Drops the replication link between primary and replica (both ways: TCP
 * between their two addresses to or from either server's port, so another
 * bed's servers on the same addresses are untouched) with an nftables table
 * of this process's own; uncut_link removes it. 0 or -1. */
int redisbed_cut_link(struct redisbed *b);
void redisbed_uncut_link(struct redisbed *b);

#endif
