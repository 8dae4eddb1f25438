/* network_drop's public face beyond its fault kind (fl_kind_network_drop in
 * agent/fault.h): the agent's nftables table, for start-up replay and the
 * crash guardian. */
#ifndef FL_AGENT_FAULTS_NETWORK_H
#define FL_AGENT_FAULTS_NETWORK_H

#include <stddef.h>

/* Every network fault lives in this table of the inet family, and nothing
 * else does. */
#define FL_NETWORK_TABLE "faultline"

/* Per fault: at most this many peers (addresses or CIDRs) and port ranges. */
#define FL_NETWORK_MAX_PEERS 64
#define FL_NETWORK_MAX_PORTS 64

/* Deletes the whole `inet faultline` table, and so every network fault at
 * once. Success when there is no such table. May block (netlink): call it off
 * the loop. */
int fl_network_remove_table(char *err, size_t errlen);

#endif
