#include "agent/faults/netplan.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/faultid.h"
#include "common/text.h"

const char *const fl_netplan_chains[2] = {"input", "output"};

/* ------------------------------------------------------------ text building */

void fl_sbuf_add(struct fl_sbuf *b, const char *fmt, ...)
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

const char *fl_sbuf_str(const struct fl_sbuf *b)
{
    return b->p ? b->p : "";
}

void fl_sbuf_free(struct fl_sbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* ------------------------------------------------------------ the plan */

static int parse_peer(const char *text, size_t idx, struct fl_cidr *out, char *err, size_t errlen)
{
    char what[32];
    snprintf(what, sizeof(what), "peers[%zu]", idx);
    int rc = fl_text_check(text, what, err, errlen);
    if (rc < 0)
        return rc;
    char why[256];
    rc = fl_cidr_parse_err(text, out, why, sizeof(why));
    if (rc < 0)
        snprintf(err, errlen, "%s: %s", what, why);
    return rc;
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
static void ports_normalise(struct fl_netplan *p)
{
    for (size_t i = 1; i < p->n_ports; i++) {
        struct fl_port_range r = p->ports[i];
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
static void peers_normalise(struct fl_netplan *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_peers; i++) {
        bool covered = false;
        for (size_t j = 0; j < p->n_peers && !covered; j++) {
            if (j == i || !fl_cidr_contains(&p->peers[j], &p->peers[i]))
                continue;
            /* of two equal ones, the first stays */
            covered = p->peers[j].prefix < p->peers[i].prefix || j < i;
        }
        if (!covered)
            p->peers[n++] = p->peers[i];
    }
    p->n_peers = n;
}

int fl_netplan_parse(const Faultline__NetworkDrop *nd, struct fl_netplan *p, char *err,
                     size_t errlen)
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

static size_t plan_l4(const struct fl_netplan *p, enum l4 out[2])
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
static void add_ports(struct fl_sbuf *b, const struct fl_netplan *p, const char *sep)
{
    for (size_t i = 0; i < p->n_ports; i++) {
        const struct fl_port_range *r = &p->ports[i];
        if (r->first == r->last)
            fl_sbuf_add(b, "%s%u", i ? sep : "", r->first);
        else
            fl_sbuf_add(b, "%s%u-%u", i ? sep : "", r->first, r->last);
    }
}

/* the peers of one family (0 for both) */
static void add_peers(struct fl_sbuf *b, const struct fl_netplan *p, int family, const char *sep)
{
    size_t k = 0;
    for (size_t i = 0; i < p->n_peers; i++) {
        if (family != 0 && p->peers[i].family != family)
            continue;
        char text[FL_CIDR_TEXT_LEN];
        if (fl_cidr_format(&p->peers[i], text, sizeof(text)) < 0)
            text[0] = '\0'; /* cannot happen: a parsed network always fits */
        fl_sbuf_add(b, "%s%s", k++ ? sep : "", text);
    }
}

static void add_l4_match(struct fl_sbuf *b, const struct fl_netplan *p, enum l4 l4, size_t variant)
{
    const char *name = l4 == L4_TCP ? "tcp" : "udp";
    switch (l4) {
    case L4_TCP:
    case L4_UDP:
        if (p->n_ports == 0) {
            fl_sbuf_add(b, "meta l4proto %s ", name);
        } else if (variant == 0) {
            fl_sbuf_add(b, "%s dport { ", name);
            add_ports(b, p, ", ");
            fl_sbuf_add(b, " } ");
        } else {
            fl_sbuf_add(b, "%s sport { ", name);
            add_ports(b, p, ", ");
            fl_sbuf_add(b, " } %s dport != { ", name);
            add_ports(b, p, ", ");
            fl_sbuf_add(b, " } ");
        }
        break;
    case L4_ICMP:
        fl_sbuf_add(b, "meta l4proto { icmp, ipv6-icmp } ");
        break;
    case L4_NOT_TCP:
        fl_sbuf_add(b, "meta l4proto != tcp ");
        break;
    case L4_ANY:
        break;
    }
}

int fl_netplan_rules(const struct fl_netplan *p, const char *id, json_t *rules)
{
    if (!fl_fault_id_ok(id))
        return -EINVAL;
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
                    struct fl_sbuf r = {0};
                    fl_sbuf_add(&r, "%s ", fl_netplan_chains[c]);
                    if (p->n_peers > 0) {
                        fl_sbuf_add(&r, "%s %s { ", fam ? "ip6" : "ip", fields[c]);
                        add_peers(&r, p, families[fam], ", ");
                        fl_sbuf_add(&r, " } ");
                    }
                    add_l4_match(&r, p, l4s[k], v);
                    if (p->percent < 100)
                        fl_sbuf_add(&r, "numgen random mod 100 < %u ", p->percent);
                    const char *verdict = !p->reject         ? "drop"
                                          : l4s[k] == L4_TCP ? "reject with tcp reset"
                                                             : "reject";
                    fl_sbuf_add(&r, "%s comment \"" FL_NETPLAN_COMMENT_PREFIX "%s\"", verdict, id);
                    int rc = r.oom ? -ENOMEM : json_array_append_new(rules, json_string(r.p));
                    fl_sbuf_free(&r);
                    if (rc != 0)
                        return -ENOMEM;
                }
            }
        }
    }
    return 0;
}

int fl_netplan_exemptions(uint16_t port, const struct fl_cidr *addr,
                          struct fl_netplan_exemption *out)
{
    char local[2][80] = {"", ""}; /* the local end as destination, as source */
    if (port == 0)
        return -EINVAL;
    if (addr != NULL) {
        char text[FL_CIDR_TEXT_LEN];
        bool v6 = addr->family == AF_INET6;
        static const uint8_t zero[16];
        if ((addr->family != AF_INET && !v6) || addr->prefix != (v6 ? 128u : 32u) ||
            memcmp(addr->addr, zero, v6 ? 16 : 4) == 0 || /* a wildcard: NULL */
            fl_cidr_format(addr, text, sizeof(text)) < 0)
            return -EINVAL;
        snprintf(local[0], sizeof(local[0]), "%s daddr %s ", v6 ? "ip6" : "ip", text);
        snprintf(local[1], sizeof(local[1]), "%s saddr %s ", v6 ? "ip6" : "ip", text);
    }
    static const struct {
        int chain;
        const char *lo; /* only on loopback: traffic between two local ends */
        int src;        /* 1: the local end is the source (the agent answers) */
    } shape[FL_NETPLAN_MAX_EXEMPTIONS] = {
        {0, "", 0},        /* input: to the agent */
        {0, "iif lo ", 1}, /* input: the agent's answers to a local controller */
        {1, "", 1},        /* output: the agent's answers */
        {1, "oif lo ", 0}, /* output: a local controller, to the agent */
    };
    for (size_t i = 0; i < FL_NETPLAN_MAX_EXEMPTIONS; i++) {
        struct fl_netplan_exemption *e = &out[i];
        e->chain = shape[i].chain;
        snprintf(e->match, sizeof(e->match), "%s%stcp %s %u", shape[i].lo, local[shape[i].src],
                 shape[i].src ? "sport" : "dport", (unsigned)port);
        snprintf(e->comment, sizeof(e->comment), FL_NETPLAN_CONTROL_COMMENT " %s", e->match);
    }
    return FL_NETPLAN_MAX_EXEMPTIONS;
}

char *fl_netplan_detail(const struct fl_netplan *p, uint16_t control_port)
{
    struct fl_sbuf sb = {0};
    struct fl_sbuf *b = &sb;
    fl_sbuf_add(b, "%s ", p->reject ? "reject" : "drop");
    if (p->percent < 100)
        fl_sbuf_add(b, "%u%% of ", p->percent);
    const char *proto = p->protocol == FAULTLINE__PROTOCOL__PROTOCOL_TCP    ? "tcp"
                        : p->protocol == FAULTLINE__PROTOCOL__PROTOCOL_UDP  ? "udp"
                        : p->protocol == FAULTLINE__PROTOCOL__PROTOCOL_ICMP ? "icmp"
                                                                            : "all traffic";
    const char *dir = !p->egress ? "ingress" : !p->ingress ? "egress" : "ingress and egress";
    const char *prep = !p->egress ? "from" : !p->ingress ? "to" : "with";
    fl_sbuf_add(b, "%s %s %s ", proto, dir, prep);
    if (p->n_peers == 0)
        fl_sbuf_add(b, "every peer");
    else
        add_peers(b, p, 0, ",");
    if (p->n_ports > 0) {
        bool one = p->n_ports == 1 && p->ports[0].first == p->ports[0].last;
        fl_sbuf_add(b, " on port%s ", one ? "" : "s");
        add_ports(b, p, ",");
    }
    if (control_port != 0)
        fl_sbuf_add(b, " (control port %u exempt)", (unsigned)control_port);
    if (sb.oom) {
        fl_sbuf_free(&sb);
        return NULL;
    }
    if (sb.p == NULL)
        return strdup("");
    return sb.p;
}
