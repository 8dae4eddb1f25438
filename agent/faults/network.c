/* network_drop: packet loss through nftables rules, set through libnftables.
 *
 * Everything lives in the agent's own table, `inet faultline`, in two base
 * chains at priority -10 (just before the usual filter chains), policy accept:
 *
 *   table inet faultline {
 *     chain input {   type filter hook input priority -10; policy accept;
 *       icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept comment "faultline:ndp"
 *       tcp dport 7411 accept comment "faultline:control"
 *       tcp sport 7411 accept comment "faultline:control"
 *       ip saddr { 10.0.0.0/8 } tcp dport { 80, 443 } numgen random mod 100 < 50 drop
 *           comment "faultline:f-0123456789abcdef"
 *       ip saddr { 10.0.0.0/8 } tcp sport { 80, 443 } tcp dport != { 80, 443 }
 *           numgen random mod 100 < 50 drop comment "faultline:f-0123456789abcdef"
 *     }
 *     chain output {  type filter hook output priority -10; policy accept;
 *       icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept comment "faultline:ndp"
 *       tcp dport 7411 accept comment "faultline:control"
 *       tcp sport 7411 accept comment "faultline:control"
 *       ...
 *     }
 *   }
 *
 * - The control exemption comes first in each chain, so that no fault cuts the
 *   agent's own channel with its controller (a cut channel would trip the
 *   lease and revert the fault). IPv6 neighbour discovery is exempt too: it
 *   is IPv6's ARP (which the inet family never sees), and without it a
 *   drop-everything fault would cut an IPv6 control channel as soon as the
 *   neighbour entry went stale. An accept here only ends our chain: the
 *   host's own chains still decide about every packet as before.
 * - Ingress rules sit in input and match the peer as source; egress rules sit
 *   in output and match it as destination. IPv4 and IPv6 peers get a rule
 *   each; no peers means every peer.
 * - Ports match the source OR the destination port: one rule for "dport in
 *   set", one for "sport in set and dport not in set", so that no packet is
 *   tested twice (which would skew a percentage). With protocol all, ports
 *   mean tcp and udp.
 * - reject answers tcp with a reset and anything else with inet's icmpx
 *   port-unreachable; protocol all with reject is one tcp rule and one "not
 *   tcp" rule. A percentage is `numgen random mod 100 < N`, one roll per
 *   packet.
 * - Every rule of a fault carries comment "faultline:<fault id>".
 *
 * Security: nothing from the request is pasted into a command. prepare parses
 * every peer (inet_pton, prefix length, host bits cleared, duplicates and
 * contained CIDRs dropped), port and enum, and writes the rule text from the
 * parsed values only. That text goes into the undo object, for people and
 * for apply. revert takes nothing from the undo object but the fault id,
 * checked to be a plain id, and deletes by the handles the kernel lists.
 *
 * prepare runs on the loop and never calls nftables. apply and revert run in
 * the thread pool (or in the guardian, or at start): a static mutex serialises
 * them within the process, which also keeps libnftables (whose contexts share
 * global state) on one thread at a time. Each call opens its own context, in
 * the network namespace of the calling thread.
 *
 * apply lists the table (JSON, with handles) and, in one nft transaction,
 * creates whatever is missing -- table, chains, the exemption for this
 * agent's port -- and adds the fault's rules: all of it lands, or none.
 * revert lists the table and deletes the rules whose comment names the fault;
 * when no other rule but the exemptions would remain, it deletes the whole
 * table instead, so that `nft list ruleset` reads exactly as before the first
 * fault. No table, or no rule of that fault, is success. */
#include "agent/faults/network.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <nftables/libnftables.h>

#include "agent/fault.h"
#include "agent/guardrails.h"

#define TABLE "inet " FL_NETWORK_TABLE
#define COMMENT_PREFIX "faultline:"
#define CONTROL_COMMENT COMMENT_PREFIX "control"
#define NDP_COMMENT COMMENT_PREFIX "ndp"
#define CHAIN_PRIORITY (-10)
/* 2 chains x 2 address families x 2 protocols x 2 port rules */
#define MAX_RULES 16

static pthread_mutex_t nft_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const chain_names[2] = {"input", "output"};

/* ------------------------------------------------------------ text building */

struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_add(struct sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    if (b->p == NULL || (size_t)n >= b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

static const char *sb_str(const struct sbuf *b)
{
    return b->p ? b->p : "";
}

static void sb_free(struct sbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* ------------------------------------------------------------ the plan */

struct cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned len; /* prefix length */
};

struct port_range {
    uint32_t first, last;
};

/* A request, parsed and checked: the only thing rule text is made from. */
struct plan {
    bool ingress, egress, reject;
    Faultline__Protocol protocol;
    uint32_t percent; /* 1..100 */
    struct cidr peers[FL_NETWORK_MAX_PEERS];
    size_t n_peers;
    struct port_range ports[FL_NETWORK_MAX_PORTS];
    size_t n_ports;
};

/* A fault id as the agent makes them ("f-" and hex digits): safe inside an
 * nft comment and in err sentences. */
static bool plain_id(const char *id)
{
    if (id == NULL || id[0] == '\0')
        return false;
    size_t n = 0;
    for (const char *p = id; *p; p++, n++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        if (!ok || n >= FL_FAULT_ID_LEN - 1)
            return false;
    }
    return true;
}

static unsigned cidr_bits(const struct cidr *c)
{
    return c->family == AF_INET ? 32 : 128;
}

/* clears the host bits */
static void cidr_mask(struct cidr *c)
{
    size_t bytes = c->family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < bytes; i++) {
        unsigned bit0 = (unsigned)i * 8;
        if (c->len >= bit0 + 8)
            continue;
        if (c->len <= bit0)
            c->addr[i] = 0;
        else
            c->addr[i] &= (unsigned char)(0xffu << (8 - (c->len - bit0)));
    }
}

static bool cidr_contains(const struct cidr *outer, const struct cidr *inner)
{
    if (outer->family != inner->family || outer->len > inner->len)
        return false;
    struct cidr t = *inner;
    t.len = outer->len;
    cidr_mask(&t);
    return memcmp(t.addr, outer->addr, sizeof(t.addr)) == 0;
}

/* "10.0.0.0/8", or a bare address for a single host */
static void cidr_text(const struct cidr *c, char *out, size_t cap)
{
    char a[INET6_ADDRSTRLEN];
    if (inet_ntop(c->family, c->addr, a, sizeof(a)) == NULL)
        a[0] = '\0'; /* cannot happen with a parsed address */
    if (c->len == cidr_bits(c))
        snprintf(out, cap, "%s", a);
    else
        snprintf(out, cap, "%s/%u", a, c->len);
}

/* 1 to 3 decimal digits, nothing else, at most max */
static int parse_prefix_len(const char *s, unsigned max, unsigned *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 3)
        return -EINVAL;
    unsigned v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(*s - '0');
    }
    if (v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

static int parse_peer(const char *text, size_t idx, struct cidr *out, char *err, size_t errlen)
{
    char what[32];
    snprintf(what, sizeof(what), "peers[%zu]", idx);
    int rc = fl_guard_check_text(text, what, err, errlen);
    if (rc < 0)
        return rc;
    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);
    char addr[INET6_ADDRSTRLEN];
    struct cidr c;
    memset(&c, 0, sizeof(c));
    bool ok = alen > 0 && alen < sizeof(addr);
    if (ok) {
        memcpy(addr, text, alen);
        addr[alen] = '\0';
        if (inet_pton(AF_INET, addr, c.addr) == 1)
            c.family = AF_INET;
        else if (inet_pton(AF_INET6, addr, c.addr) == 1)
            c.family = AF_INET6;
        else
            ok = false;
    }
    if (!ok) {
        snprintf(err, errlen,
                 "peer '%.80s' is not an IPv4 or IPv6 address or CIDR (like 10.0.0.0/8, "
                 "192.0.2.7 or fd00::/64)",
                 text);
        return -EINVAL;
    }
    c.len = cidr_bits(&c);
    if (slash != NULL && parse_prefix_len(slash + 1, cidr_bits(&c), &c.len) < 0) {
        snprintf(err, errlen, "peer '%.80s' has a bad prefix length: an IPv%d prefix is /0 to /%u",
                 text, c.family == AF_INET ? 4 : 6, cidr_bits(&c));
        return -EINVAL;
    }
    cidr_mask(&c);
    *out = c;
    return 0;
}

static int parse_port(uint32_t port, char *err, size_t errlen)
{
    if (port == 0) {
        snprintf(err, errlen, "port 0 is not a port: give ports from 1 to 65535");
        return -EINVAL;
    }
    if (port > 65535) {
        snprintf(err, errlen, "port %u is out of range: give ports from 1 to 65535", port);
        return -EINVAL;
    }
    return 0;
}

/* Sorts the ranges and merges those that overlap or touch. */
static void ports_normalise(struct plan *p)
{
    for (size_t i = 1; i < p->n_ports; i++) {
        struct port_range r = p->ports[i];
        size_t j = i;
        for (; j > 0 && p->ports[j - 1].first > r.first; j--)
            p->ports[j] = p->ports[j - 1];
        p->ports[j] = r;
    }
    size_t n = 0;
    for (size_t i = 0; i < p->n_ports; i++) {
        if (n > 0 && p->ports[i].first <= p->ports[n - 1].last + 1) {
            if (p->ports[i].last > p->ports[n - 1].last)
                p->ports[n - 1].last = p->ports[i].last;
            continue;
        }
        p->ports[n++] = p->ports[i];
    }
    p->n_ports = n;
}

/* Drops peers that another peer already covers (duplicates included). */
static void peers_normalise(struct plan *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_peers; i++) {
        bool covered = false;
        for (size_t j = 0; j < p->n_peers && !covered; j++) {
            if (j == i || !cidr_contains(&p->peers[j], &p->peers[i]))
                continue;
            /* of two equal ones, the first stays */
            covered = p->peers[j].len < p->peers[i].len || j < i;
        }
        if (!covered)
            p->peers[n++] = p->peers[i];
    }
    p->n_peers = n;
}

static int parse_plan(const Faultline__NetworkDrop *nd, struct plan *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof(*p));
    switch (nd->direction) {
    case FAULTLINE__DIRECTION__DIRECTION_BOTH:
        p->ingress = p->egress = true;
        break;
    case FAULTLINE__DIRECTION__DIRECTION_INGRESS:
        p->ingress = true;
        break;
    case FAULTLINE__DIRECTION__DIRECTION_EGRESS:
        p->egress = true;
        break;
    default:
        snprintf(err, errlen, "direction %d is unknown: use ingress, egress or both",
                 (int)nd->direction);
        return -EINVAL;
    }
    switch (nd->protocol) {
    case FAULTLINE__PROTOCOL__PROTOCOL_ALL:
    case FAULTLINE__PROTOCOL__PROTOCOL_TCP:
    case FAULTLINE__PROTOCOL__PROTOCOL_UDP:
    case FAULTLINE__PROTOCOL__PROTOCOL_ICMP:
        p->protocol = nd->protocol;
        break;
    default:
        snprintf(err, errlen, "protocol %d is unknown: use tcp, udp, icmp or all",
                 (int)nd->protocol);
        return -EINVAL;
    }
    switch (nd->action) {
    case FAULTLINE__DROP_ACTION__DROP_ACTION_DROP:
        break;
    case FAULTLINE__DROP_ACTION__DROP_ACTION_REJECT:
        p->reject = true;
        break;
    default:
        snprintf(err, errlen, "action %d is unknown: use drop or reject", (int)nd->action);
        return -EINVAL;
    }
    if (nd->percent > 100) {
        snprintf(err, errlen, "percent %u is over 100: give 1 to 100 (0 means 100)", nd->percent);
        return -EINVAL;
    }
    p->percent = nd->percent == 0 ? 100 : nd->percent;

    if (nd->n_peers > FL_NETWORK_MAX_PEERS) {
        snprintf(err, errlen, "%zu peers are over the limit of %d: cover them with CIDRs",
                 nd->n_peers, FL_NETWORK_MAX_PEERS);
        return -EINVAL;
    }
    for (size_t i = 0; i < nd->n_peers; i++) {
        int rc = parse_peer(nd->peers[i], i, &p->peers[i], err, errlen);
        if (rc < 0)
            return rc;
    }
    p->n_peers = nd->n_peers;
    peers_normalise(p);

    if (nd->n_ports > FL_NETWORK_MAX_PORTS) {
        snprintf(err, errlen,
                 "%zu port ranges are over the limit of %d: merge neighbouring ports into "
                 "ranges",
                 nd->n_ports, FL_NETWORK_MAX_PORTS);
        return -EINVAL;
    }
    if (nd->n_ports > 0 && p->protocol == FAULTLINE__PROTOCOL__PROTOCOL_ICMP) {
        snprintf(err, errlen,
                 "ports apply to tcp and udp only, and protocol is icmp: remove the ports or "
                 "choose tcp, udp or all");
        return -EINVAL;
    }
    for (size_t i = 0; i < nd->n_ports; i++) {
        const Faultline__PortRange *r = nd->ports[i];
        if (r == NULL) {
            snprintf(err, errlen, "ports[%zu] is empty: give a port from 1 to 65535", i);
            return -EINVAL;
        }
        uint32_t last = r->last == 0 ? r->first : r->last;
        int rc = parse_port(r->first, err, errlen);
        if (rc == 0)
            rc = parse_port(last, err, errlen);
        if (rc < 0)
            return rc;
        if (r->first > last) {
            snprintf(err, errlen, "port range %u-%u runs backwards: give it as %u-%u", r->first,
                     last, last, r->first);
            return -EINVAL;
        }
        p->ports[i].first = r->first;
        p->ports[i].last = last;
    }
    p->n_ports = nd->n_ports;
    ports_normalise(p);
    return 0;
}

/* ------------------------------------------------------------ rule text */

enum l4 { L4_TCP, L4_UDP, L4_ICMP, L4_ANY, L4_NOT_TCP };

static size_t plan_l4(const struct plan *p, enum l4 out[2])
{
    switch (p->protocol) {
    case FAULTLINE__PROTOCOL__PROTOCOL_TCP:
        out[0] = L4_TCP;
        return 1;
    case FAULTLINE__PROTOCOL__PROTOCOL_UDP:
        out[0] = L4_UDP;
        return 1;
    case FAULTLINE__PROTOCOL__PROTOCOL_ICMP:
        out[0] = L4_ICMP;
        return 1;
    default:
        break;
    }
    if (p->n_ports > 0) {
        out[0] = L4_TCP;
        out[1] = L4_UDP;
        return 2;
    }
    if (p->reject) {
        out[0] = L4_TCP;
        out[1] = L4_NOT_TCP;
        return 2;
    }
    out[0] = L4_ANY;
    return 1;
}

/* "80,443,8000-8080" with sep ", " or "," */
static void add_ports(struct sbuf *b, const struct plan *p, const char *sep)
{
    for (size_t i = 0; i < p->n_ports; i++) {
        const struct port_range *r = &p->ports[i];
        if (r->first == r->last)
            sb_add(b, "%s%u", i ? sep : "", r->first);
        else
            sb_add(b, "%s%u-%u", i ? sep : "", r->first, r->last);
    }
}

/* the peers of one family (0 for both) */
static void add_peers(struct sbuf *b, const struct plan *p, int family, const char *sep)
{
    size_t k = 0;
    for (size_t i = 0; i < p->n_peers; i++) {
        if (family != 0 && p->peers[i].family != family)
            continue;
        char text[INET6_ADDRSTRLEN + 8];
        cidr_text(&p->peers[i], text, sizeof(text));
        sb_add(b, "%s%s", k++ ? sep : "", text);
    }
}

static void add_l4_match(struct sbuf *b, const struct plan *p, enum l4 l4, size_t variant)
{
    const char *name = l4 == L4_TCP ? "tcp" : "udp";
    switch (l4) {
    case L4_TCP:
    case L4_UDP:
        if (p->n_ports == 0) {
            sb_add(b, "meta l4proto %s ", name);
        } else if (variant == 0) {
            sb_add(b, "%s dport { ", name);
            add_ports(b, p, ", ");
            sb_add(b, " } ");
        } else {
            sb_add(b, "%s sport { ", name);
            add_ports(b, p, ", ");
            sb_add(b, " } %s dport != { ", name);
            add_ports(b, p, ", ");
            sb_add(b, " } ");
        }
        break;
    case L4_ICMP:
        sb_add(b, "meta l4proto { icmp, ipv6-icmp } ");
        break;
    case L4_NOT_TCP:
        sb_add(b, "meta l4proto != tcp ");
        break;
    case L4_ANY:
        break;
    }
}

/* Appends the fault's rules to rules, each as "<chain> <rule>". */
static int plan_rules(const struct plan *p, const char *id, json_t *rules)
{
    static const char *const fields[2] = {"saddr", "daddr"};
    static const int families[2] = {AF_INET, AF_INET6};
    bool has[2] = {false, false};
    for (size_t i = 0; i < p->n_peers; i++)
        has[p->peers[i].family == AF_INET6] = true;
    enum l4 l4s[2];
    size_t n_l4 = plan_l4(p, l4s);
    for (int c = 0; c < 2; c++) {
        if (c == 0 ? !p->ingress : !p->egress)
            continue;
        for (int fam = 0; fam < 2; fam++) {
            if (p->n_peers == 0 ? fam == 1 : !has[fam])
                continue;
            for (size_t k = 0; k < n_l4; k++) {
                bool ports = p->n_ports > 0 && (l4s[k] == L4_TCP || l4s[k] == L4_UDP);
                for (size_t v = 0; v < (ports ? 2u : 1u); v++) {
                    struct sbuf r = {0};
                    sb_add(&r, "%s ", chain_names[c]);
                    if (p->n_peers > 0) {
                        sb_add(&r, "%s %s { ", fam ? "ip6" : "ip", fields[c]);
                        add_peers(&r, p, families[fam], ", ");
                        sb_add(&r, " } ");
                    }
                    add_l4_match(&r, p, l4s[k], v);
                    if (p->percent < 100)
                        sb_add(&r, "numgen random mod 100 < %u ", p->percent);
                    const char *verdict = !p->reject         ? "drop"
                                          : l4s[k] == L4_TCP ? "reject with tcp reset"
                                                             : "reject";
                    sb_add(&r, "%s comment \"" COMMENT_PREFIX "%s\"", verdict, id);
                    int rc = r.oom ? -ENOMEM : json_array_append_new(rules, json_string(r.p));
                    sb_free(&r);
                    if (rc != 0)
                        return -ENOMEM;
                }
            }
        }
    }
    return 0;
}

/* "drop 50% of tcp ingress from 10.0.0.0/8 on ports 80,443" */
static void plan_detail(const struct plan *p, uint16_t control_port, struct sbuf *b)
{
    sb_add(b, "%s ", p->reject ? "reject" : "drop");
    if (p->percent < 100)
        sb_add(b, "%u%% of ", p->percent);
    const char *proto = p->protocol == FAULTLINE__PROTOCOL__PROTOCOL_TCP    ? "tcp"
                        : p->protocol == FAULTLINE__PROTOCOL__PROTOCOL_UDP  ? "udp"
                        : p->protocol == FAULTLINE__PROTOCOL__PROTOCOL_ICMP ? "icmp"
                                                                            : "all traffic";
    const char *dir = !p->egress ? "ingress" : !p->ingress ? "egress" : "ingress and egress";
    const char *prep = !p->egress ? "from" : !p->ingress ? "to" : "with";
    sb_add(b, "%s %s %s ", proto, dir, prep);
    if (p->n_peers == 0)
        sb_add(b, "every peer");
    else
        add_peers(b, p, 0, ",");
    if (p->n_ports > 0) {
        bool one = p->n_ports == 1 && p->ports[0].first == p->ports[0].last;
        sb_add(b, " on port%s ", one ? "" : "s");
        add_ports(b, p, ",");
    }
    if (control_port != 0)
        sb_add(b, " (control port %u exempt)", (unsigned)control_port);
}

/* ------------------------------------------------------------ nftables */

static int nft_open(struct nft_ctx **out, char *err, size_t errlen)
{
    struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
    if (nft == NULL) {
        snprintf(err, errlen, "could not start libnftables: out of memory");
        return -ENOMEM;
    }
    if (nft_ctx_buffer_output(nft) != 0 || nft_ctx_buffer_error(nft) != 0) {
        nft_ctx_free(nft);
        snprintf(err, errlen, "could not start libnftables: out of memory");
        return -ENOMEM;
    }
    *out = nft;
    return 0;
}

/* nftables' own reason, one line: the "Error: ..." part of its message */
static void nft_reason(const char *msg, char *out, size_t cap)
{
    if (msg == NULL || *msg == '\0') {
        snprintf(out, cap, "nftables gave no reason");
        return;
    }
    const char *at = strstr(msg, "Error: ");
    at = at ? at + strlen("Error: ") : msg;
    size_t n = strcspn(at, "\n");
    if (n >= cap)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)at[i] < 0x20 ? ' ' : at[i];
    out[n] = '\0';
}

static int nft_errno(const char *msg)
{
    if (msg == NULL)
        return -EIO;
    if (strstr(msg, "Operation not permitted") != NULL)
        return -EPERM;
    if (strstr(msg, "No such file or directory") != NULL)
        return -ENOENT;
    if (strstr(msg, "File exists") != NULL)
        return -EEXIST;
    if (strstr(msg, "not supported") != NULL)
        return -EOPNOTSUPP;
    return -EIO;
}

/* Runs cmd (one transaction). *output, when asked for, is valid until the
 * next command. On failure err reads "<what>: <nftables' reason><hint>". */
static int nft_exec(struct nft_ctx *nft, const char *cmd, const char **output, const char *what,
                    char *err, size_t errlen)
{
    int rc = nft_run_cmd_from_buffer(nft, cmd);
    const char *out = nft_ctx_get_output_buffer(nft);
    const char *msg = nft_ctx_get_error_buffer(nft);
    if (rc == 0) {
        if (output != NULL)
            *output = out ? out : "";
        return 0;
    }
    char why[256];
    nft_reason(msg, why, sizeof(why));
    int e = nft_errno(msg);
    snprintf(err, errlen, "%s: %s%s", what, why,
             e == -EPERM ? " (the agent needs root or CAP_NET_ADMIN)"
             : e == -EOPNOTSUPP || e == -EIO
                 ? " (does this kernel have nf_tables, nft_reject_inet and nft_numgen?)"
                 : "");
    return e;
}

static bool json_str_is(const json_t *v, const char *s)
{
    const char *t = json_string_value(v);
    return t != NULL && strcmp(t, s) == 0;
}

/* 1 when `list tables inet` names our table, 0 when not */
static int table_exists(struct nft_ctx *nft, char *err, size_t errlen)
{
    const char *text = NULL;
    int rc =
        nft_exec(nft, "list tables inet", &text, "could not list the nftables tables", err, errlen);
    if (rc < 0)
        return rc;
    json_t *root = json_loads(text, 0, NULL);
    const json_t *items = json_object_get(root, "nftables");
    if (!json_is_array(items)) {
        json_decref(root);
        snprintf(err, errlen, "could not read nftables' list of tables (not JSON)");
        return -EIO;
    }
    size_t i;
    const json_t *it;
    int found = 0;
    json_array_foreach(items, i, it)
    {
        const json_t *t = json_object_get(it, "table");
        if (t != NULL && json_str_is(json_object_get(t, "family"), "inet") &&
            json_str_is(json_object_get(t, "name"), FL_NETWORK_TABLE))
            found = 1;
    }
    json_decref(root);
    return found;
}

/* Our table listed as JSON with handles: *out is the whole listing, or NULL
 * when there is no such table. */
static int table_read(struct nft_ctx *nft, json_t **out, char *err, size_t errlen)
{
    nft_ctx_output_set_flags(nft, NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE);
    const char *text = NULL;
    char first[384];
    json_t *root = NULL;
    int rc = nft_exec(nft, "list table " TABLE, &text, "could not list table " TABLE, first,
                      sizeof(first));
    if (rc == 0) {
        json_error_t jerr;
        root = json_loads(text, 0, &jerr);
        if (!json_is_array(json_object_get(root, "nftables"))) {
            snprintf(err, errlen, "could not read nftables' listing of table " TABLE ": %s",
                     root ? "no nftables array" : jerr.text);
            rc = -EIO;
        }
    } else {
        int exists = table_exists(nft, err, errlen);
        if (exists == 0)
            rc = 0; /* simply not there */
        else if (exists > 0)
            snprintf(err, errlen, "%s", first);
        else
            rc = exists;
    }
    nft_ctx_output_set_flags(nft, 0);
    if (rc < 0) {
        json_decref(root);
        return rc;
    }
    *out = root;
    return 0;
}

/* The rule objects of our table, one by one: returns the next after *i. */
static const json_t *next_rule(const json_t *listing, size_t *i)
{
    const json_t *items = json_object_get(listing, "nftables");
    for (; *i < json_array_size(items); (*i)++) {
        const json_t *r = json_object_get(json_array_get(items, *i), "rule");
        if (r != NULL && json_str_is(json_object_get(r, "family"), "inet") &&
            json_str_is(json_object_get(r, "table"), FL_NETWORK_TABLE)) {
            (*i)++;
            return r;
        }
    }
    return NULL;
}

static bool table_has_chain(const json_t *listing, const char *name)
{
    const json_t *items = json_object_get(listing, "nftables");
    size_t i;
    const json_t *it;
    json_array_foreach(items, i, it)
    {
        const json_t *c = json_object_get(it, "chain");
        if (c != NULL && json_str_is(json_object_get(c, "family"), "inet") &&
            json_str_is(json_object_get(c, "table"), FL_NETWORK_TABLE) &&
            json_str_is(json_object_get(c, "name"), name))
            return true;
    }
    return false;
}

/* Is rule the control exemption "tcp <field> <port> accept"? */
static bool is_exemption(const json_t *rule, const char *field, uint16_t port)
{
    if (!json_str_is(json_object_get(rule, "comment"), CONTROL_COMMENT))
        return false;
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(rule, "expr"), i, e)
    {
        const json_t *m = json_object_get(e, "match");
        const json_t *payload = json_object_get(json_object_get(m, "left"), "payload");
        const json_t *right = json_object_get(m, "right");
        if (payload != NULL && json_str_is(json_object_get(payload, "protocol"), "tcp") &&
            json_str_is(json_object_get(payload, "field"), field) && json_is_integer(right) &&
            json_integer_value(right) == (json_int_t)port)
            return true;
    }
    return false;
}

static bool table_has_exemption(const json_t *listing, int chain, const char *field, uint16_t port)
{
    size_t i = 0;
    const json_t *r;
    while ((r = next_rule(listing, &i)) != NULL) {
        if (json_str_is(json_object_get(r, "chain"), chain_names[chain]) &&
            is_exemption(r, field, port))
            return true;
    }
    return false;
}

/* the exemptions every chain starts with: no fault's rules */
static bool is_exemption_rule(const json_t *rule)
{
    const json_t *comment = json_object_get(rule, "comment");
    return json_str_is(comment, CONTROL_COMMENT) || json_str_is(comment, NDP_COMMENT);
}

static bool table_has_ndp(const json_t *listing, int chain)
{
    size_t i = 0;
    const json_t *r;
    while ((r = next_rule(listing, &i)) != NULL) {
        if (json_str_is(json_object_get(r, "chain"), chain_names[chain]) &&
            json_str_is(json_object_get(r, "comment"), NDP_COMMENT))
            return true;
    }
    return false;
}

static bool is_rule_of(const json_t *rule, const char *id)
{
    const char *comment = json_string_value(json_object_get(rule, "comment"));
    size_t n = strlen(COMMENT_PREFIX);
    return comment != NULL && strncmp(comment, COMMENT_PREFIX, n) == 0 &&
           strcmp(comment + n, id) == 0;
}

/* Table, chains and exemption: whatever of them the listing lacks. */
static void add_setup(struct sbuf *b, const json_t *listing, uint16_t control_port)
{
    static const char *const fields[2] = {"dport", "sport"};
    if (listing == NULL)
        sb_add(b, "add table " TABLE "\n");
    for (int c = 0; c < 2; c++) {
        bool chain = listing != NULL && table_has_chain(listing, chain_names[c]);
        if (!chain)
            sb_add(b,
                   "add chain " TABLE " %s { type filter hook %s priority %d; policy accept; }\n",
                   chain_names[c], chain_names[c], CHAIN_PRIORITY);
        /* insert: first in a chain that already has rules */
        const char *verb = chain ? "insert" : "add";
        if (!chain || !table_has_ndp(listing, c))
            sb_add(b,
                   "%s rule " TABLE " %s icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } "
                   "accept comment \"" NDP_COMMENT "\"\n",
                   verb, chain_names[c]);
        /* both ports in both chains: a controller on this very host sends
         * to the control port through output and receives through input */
        for (int k = 0; k < 2 && control_port != 0; k++)
            if (!chain || !table_has_exemption(listing, c, fields[k], control_port))
                sb_add(b, "%s rule " TABLE " %s tcp %s %u accept comment \"" CONTROL_COMMENT "\"\n",
                       verb, chain_names[c], fields[k], (unsigned)control_port);
    }
}

/* ------------------------------------------------------------ the kind */

static int network_prepare(struct fl_fault *f, const struct fl_agent_ctx *ctx, char *err,
                           size_t errlen)
{
    if (f->spec == NULL || f->spec->kind_case != FAULTLINE__FAULT_SPEC__KIND_NETWORK_DROP ||
        f->spec->network_drop == NULL) {
        snprintf(err, errlen, "the request holds no network_drop parameters");
        return -EINVAL;
    }
    if (!plain_id(f->id)) {
        snprintf(err, errlen, "fault id is not a plain id (letters, digits, '-', '_', '.')");
        return -EINVAL;
    }
    struct plan *p = malloc(sizeof(*p));
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = parse_plan(f->spec->network_drop, p, err, errlen);
    if (rc < 0) {
        free(p);
        return rc;
    }
    uint16_t port = ctx != NULL ? ctx->control_port : 0;
    json_t *rules = json_array();
    struct sbuf detail = {0};
    rc = rules ? plan_rules(p, f->id, rules) : -ENOMEM;
    plan_detail(p, port, &detail);
    free(p);
    if (detail.oom)
        rc = -ENOMEM;
    if (rc == 0 && detail.len >= sizeof(f->detail)) {
        memcpy(detail.p + sizeof(f->detail) - 4, "...", 4);
        detail.len = sizeof(f->detail) - 1;
    }
    json_t *undo = NULL;
    if (rc == 0) {
        undo = json_pack("{s:s,s:s,s:i,s:O,s:s}", "kind", "network_drop", "id", f->id,
                         "control_port", (int)port, "rules", rules, "detail", sb_str(&detail));
        if (undo == NULL)
            rc = -ENOMEM;
    }
    json_decref(rules);
    sb_free(&detail);
    if (rc < 0) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    json_decref(f->undo);
    f->undo = undo;
    return 0;
}

static int network_apply(struct fl_fault *f, char *err, size_t errlen)
{
    const json_t *rules = json_object_get(f->undo, "rules");
    const json_t *jport = json_object_get(f->undo, "control_port");
    const char *id = json_string_value(json_object_get(f->undo, "id"));
    json_int_t port = json_integer_value(jport);
    bool ok = json_is_array(rules) && json_array_size(rules) > 0 &&
              json_array_size(rules) <= MAX_RULES && json_is_integer(jport) && port >= 0 &&
              port <= 65535 && plain_id(id) && strcmp(id, f->id) == 0;
    size_t i;
    const json_t *r;
    json_array_foreach(rules, i, r)
    {
        const char *t = json_string_value(r);
        /* made by prepare; checked anyway, as it will be one line of a batch */
        ok = ok && t != NULL && (strncmp(t, "input ", 6) == 0 || strncmp(t, "output ", 7) == 0) &&
             strpbrk(t, "\r\n;") == NULL;
    }
    if (!ok) {
        snprintf(err, errlen,
                 "network_drop fault %s was not prepared: its undo record lacks its rules",
                 plain_id(f->id) ? f->id : "?");
        return -EINVAL;
    }

    pthread_mutex_lock(&nft_lock);
    struct nft_ctx *nft = NULL;
    json_t *listing = NULL;
    struct sbuf batch = {0};
    int rc = nft_open(&nft, err, errlen);
    if (rc == 0)
        rc = table_read(nft, &listing, err, errlen);
    if (rc == 0 && listing != NULL) {
        size_t k = 0;
        while ((r = next_rule(listing, &k)) != NULL && !is_rule_of(r, id))
            ;
        if (r != NULL) {
            snprintf(err, errlen,
                     "fault %s already has rules in table " TABLE ": revert it before applying "
                     "it again",
                     id);
            rc = -EEXIST;
        }
    }
    if (rc == 0) {
        add_setup(&batch, listing, (uint16_t)port);
        json_array_foreach(rules, i, r)
            sb_add(&batch, "add rule " TABLE " %s\n", json_string_value(r));
        char what[96];
        snprintf(what, sizeof(what), "could not add the nftables rules of fault %s", id);
        rc = batch.oom ? -ENOMEM : nft_exec(nft, batch.p, NULL, what, err, errlen);
        if (rc == -ENOMEM && batch.oom)
            snprintf(err, errlen, "out of memory");
    }
    sb_free(&batch);
    json_decref(listing);
    if (nft != NULL)
        nft_ctx_free(nft);
    pthread_mutex_unlock(&nft_lock);
    if (rc < 0)
        return rc;
    const char *detail = json_string_value(json_object_get(f->undo, "detail"));
    snprintf(f->detail, sizeof(f->detail), "%s", detail ? detail : "network_drop applied");
    return 0;
}

/* One pass of revert: 0 when done, -ENOENT when the table changed under us. */
static int revert_once(struct nft_ctx *nft, const char *id, char *err, size_t errlen)
{
    json_t *listing = NULL;
    int rc = table_read(nft, &listing, err, errlen);
    if (rc < 0 || listing == NULL)
        return rc;
    struct sbuf batch = {0};
    size_t others = 0, mine = 0, i = 0;
    const json_t *r;
    while ((r = next_rule(listing, &i)) != NULL) {
        if (is_exemption_rule(r))
            continue;
        const json_t *chain = json_object_get(r, "chain");
        const json_t *handle = json_object_get(r, "handle");
        int c = json_str_is(chain, chain_names[0])   ? 0
                : json_str_is(chain, chain_names[1]) ? 1
                                                     : -1;
        if (c >= 0 && json_is_integer(handle) && json_integer_value(handle) > 0 &&
            is_rule_of(r, id)) {
            sb_add(&batch, "delete rule " TABLE " %s handle %lld\n", chain_names[c],
                   (long long)json_integer_value(handle));
            mine++;
        } else {
            others++; /* another fault's, or one we do not know: kept */
        }
    }
    json_decref(listing);
    if (others == 0) {
        /* nothing else left: the table goes, and the ruleset is as it was */
        sb_free(&batch);
        sb_add(&batch, "delete table " TABLE "\n");
    } else if (mine == 0) {
        sb_free(&batch);
        return 0;
    }
    char what[96];
    snprintf(what, sizeof(what), "could not delete the nftables rules of fault %s", id);
    rc = batch.oom ? -ENOMEM : nft_exec(nft, batch.p, NULL, what, err, errlen);
    if (rc == -ENOMEM && batch.oom)
        snprintf(err, errlen, "out of memory");
    sb_free(&batch);
    return rc;
}

static int network_revert(const json_t *undo, char *err, size_t errlen)
{
    const char *id = json_string_value(json_object_get(undo, "id"));
    if (!plain_id(id)) {
        snprintf(err, errlen,
                 "network_drop undo record has no plain fault id: cannot tell its rules");
        return -EINVAL;
    }
    pthread_mutex_lock(&nft_lock);
    struct nft_ctx *nft = NULL;
    int rc = nft_open(&nft, err, errlen);
    /* a rule or the table may go away between listing and deleting (another
     * process at work): list again */
    for (int attempt = 0; rc == 0 && attempt < 3; attempt++) {
        rc = revert_once(nft, id, err, errlen);
        if (rc != -ENOENT)
            break;
        if (attempt < 2)
            rc = 0;
    }
    if (nft != NULL)
        nft_ctx_free(nft);
    pthread_mutex_unlock(&nft_lock);
    return rc;
}

int fl_network_remove_table(char *err, size_t errlen)
{
    pthread_mutex_lock(&nft_lock);
    struct nft_ctx *nft = NULL;
    int rc = nft_open(&nft, err, errlen);
    if (rc == 0) {
        char first[384];
        rc = nft_exec(nft, "delete table " TABLE, NULL, "could not delete table " TABLE, first,
                      sizeof(first));
        if (rc < 0) {
            json_t *listing = NULL;
            char why[384];
            if (table_read(nft, &listing, why, sizeof(why)) == 0 && listing == NULL)
                rc = 0; /* there was none */
            else
                snprintf(err, errlen, "%s", first);
            json_decref(listing);
        }
        nft_ctx_free(nft);
    }
    pthread_mutex_unlock(&nft_lock);
    return rc;
}

const struct fl_fault_kind fl_kind_network_drop = {
    .name = "network_drop",
    .spec_case = FAULTLINE__FAULT_SPEC__KIND_NETWORK_DROP,
    .prepare = network_prepare,
    .apply = network_apply,
    .tick = NULL,
    .revert = network_revert,
};
