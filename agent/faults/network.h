/* network_drop's public face beyond its fault kind (fl_kind_network_drop in
 * agent/fault.h): the agent's nftables table, for start-up replay and the
 * crash guardian. */
#ifndef FL_AGENT_FAULTS_NETWORK_H
#define FL_AGENT_FAULTS_NETWORK_H

#include <stdbool.h>
#include <stddef.h>

/* Every agent keeps its network faults in a table of its own in the inet
 * family, and nothing else does, so that agents sharing a network namespace
 * never touch each other's rules (issue 12 item 3). The name comes from the
 * agent's state directory, which is its identity on the host (its lock makes
 * it one agent's at a time):
 *   - the default state directory, FL_NETWORK_DEFAULT_STATE_DIR: `faultline`,
 *     the one table of every agent before tables were per agent, so that
 *     `nft list table inet faultline` still shows a default install's rules;
 *   - any other: `faultline_` and the first FL_NETWORK_TABLE_HASH_DIGITS hex
 *     digits of the FNV-1a 64-bit hash of the directory's real path
 *     (realpath(3); the path as given when it does not resolve).
 * The agent logs its table at start. Each network fault's undo record names
 * its table, so a replay after a crash reverts in the table the fault was
 * applied to even when the state directory was renamed since; a record
 * without one (written by an earlier agent) means `faultline`. */
#define FL_NETWORK_TABLE "faultline"
#define FL_NETWORK_DEFAULT_STATE_DIR "/var/lib/faultline"
#define FL_NETWORK_TABLE_HASH_DIGITS 12
#define FL_NETWORK_TABLE_MAX 32

/* The table of the agent whose state directory is state_dir. Blocking
 * (realpath): call it at start. */
void fl_network_table_for(const char *state_dir, char out[FL_NETWORK_TABLE_MAX]);

/* Is name one of the forms above (and so safe to put in an nft command)? */
bool fl_network_table_ok(const char *name);

/* Per fault: at most this many peers (addresses or CIDRs) and port ranges. */
#define FL_NETWORK_MAX_PEERS 64
#define FL_NETWORK_MAX_PORTS 64

/* Deletes the whole table `inet <table>` (one of the names above), and so
 * every network fault of the agent that owns it at once. Success when there
 * is no such table. May block (netlink): call it off the loop. */
int fl_network_remove_table(const char *table, char *err, size_t errlen);

#endif
