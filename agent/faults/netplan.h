/* network_drop's plan: what a request becomes before nftables sees it. Pure
 * (no nftables, no root), so that every rule text can be tested as it is.
 *
 * fl_netplan_parse checks and normalises a request -- direction, protocol,
 * action, percent, every peer by common/cidr.h's rule (host bits refused;
 * duplicates and CIDRs another peer covers dropped), every port range (sorted,
 * overlapping and touching ranges merged) -- and the rule text and the detail
 * sentence are written from the parsed plan only, never from request text.
 * agent/faults/network.c puts the rules into nftables. */
#ifndef FL_AGENT_FAULTS_NETPLAN_H
#define FL_AGENT_FAULTS_NETPLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "agent/faults/network.h"
#include "common/cidr.h"
#include "faultline.pb-c.h"

/* Every rule of ours carries a comment that starts so: the fault id follows,
 * or "control" and "ndp" for the exemptions every chain starts with. */
#define FL_NETPLAN_COMMENT_PREFIX "faultline:"

/* The most rules one fault makes: 2 chains x 2 address families x 2
 * protocols x 2 port rules. */
#define FL_NETPLAN_MAX_RULES 16

/* The base chains: [0] input (ingress, peer as source), [1] output (egress,
 * peer as destination). */
extern const char *const fl_netplan_chains[2];

struct fl_port_range {
    uint32_t first, last; /* 1..65535, first <= last */
};

/* A request, parsed and checked: the only thing rule text is made from. */
struct fl_netplan {
    bool ingress, egress, reject;
    Faultline__Protocol protocol;
    uint32_t percent; /* 1..100 */
    struct fl_cidr peers[FL_NETWORK_MAX_PEERS];
    size_t n_peers;
    struct fl_port_range ports[FL_NETWORK_MAX_PORTS];
    size_t n_ports;
};

/* Parses nd into *p. Returns 0 or -EINVAL with err saying what is wrong and
 * what would be right. *p is meaningless after a failure. */
int fl_netplan_parse(const Faultline__NetworkDrop *nd, struct fl_netplan *p, char *err,
                     size_t errlen);

/* Appends the plan's rules to the JSON array rules, each a string
 * "<chain> <rule>" ("input ip saddr { 10.0.0.0/8 } meta l4proto tcp drop
 * comment \"faultline:<id>\""), at most FL_NETPLAN_MAX_RULES of them.
 * Returns 0, -EINVAL for an id that is not plain (common/faultid.h), or
 * -ENOMEM. */
int fl_netplan_rules(const struct fl_netplan *p, const char *id, json_t *rules);

/* For people: "drop 50% of tcp ingress from 10.0.0.0/8 on ports 80,443
 * (control port 7411 exempt)", malloc'd; NULL when out of memory.
 * control_port 0 leaves the exemption out. */
char *fl_netplan_detail(const struct fl_netplan *p, uint16_t control_port);

/* A growing string for nft commands; an allocation failure sticks (oom) and
 * later appends do nothing. */
struct fl_sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};
void fl_sbuf_add(struct fl_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *fl_sbuf_str(const struct fl_sbuf *b); /* "" when nothing was added */
void fl_sbuf_free(struct fl_sbuf *b);

#endif
