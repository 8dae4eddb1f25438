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

/* The control exemption: the agent's own control connections, and nothing
 * else, pass every fault. Stateless, so that it holds for a connection that
 * was open before the first fault (conntrack, loaded by that fault, would pick
 * such a connection up mid-stream and might take the agent's reply for its
 * original direction), and directional, so that no other traffic that merely
 * has the port on one side passes:
 *
 *   input   tcp dport P           to the agent's listening socket
 *   input   iif lo tcp sport P    the agent's answers to a controller on this host
 *   output  tcp sport P           the agent's answers
 *   output  oif lo tcp dport P    a controller on this host, to the agent
 *
 * Only the agent's socket has local port P (nothing else can bind it while
 * the agent listens there), and only local traffic crosses lo; so a
 * connection from a remote source port P, or from this host to a remote port
 * P, is not exempt. With addr (the agent's specific listening address, a
 * host), each rule also names it as the local end ("ip daddr A tcp dport P"),
 * for a host where another program may hold port P on another address. */
#define FL_NETPLAN_CONTROL_COMMENT FL_NETPLAN_COMMENT_PREFIX "control"
#define FL_NETPLAN_MAX_EXEMPTIONS 4

struct fl_netplan_exemption {
    int chain;         /* index into fl_netplan_chains */
    char match[128];   /* "iif lo tcp sport 7411": the rule is "<match> accept" */
    char comment[160]; /* FL_NETPLAN_CONTROL_COMMENT " <match>": names the rule exactly */
};

/* Writes the exemptions for port (1-65535) and addr (NULL for an agent that
 * listens on every address; else its host address, /32 or /128) into out,
 * which holds FL_NETPLAN_MAX_EXEMPTIONS. Returns how many, or -EINVAL for
 * port 0 or an addr that is not one host (0.0.0.0 and :: included). */
int fl_netplan_exemptions(uint16_t port, const struct fl_cidr *addr,
                          struct fl_netplan_exemption *out);

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
