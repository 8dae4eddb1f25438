/* network_drop's plan: the rules a request becomes, as text, without
 * nftables or root (tests/faults/network_test.c puts them into a kernel). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "agent/faults/netplan.h"

struct req {
    Faultline__NetworkDrop nd;
    char *peers[80];
    Faultline__PortRange pr[80];
    Faultline__PortRange *prp[80];
};

static void req_init(struct req *r, Faultline__Direction dir, Faultline__Protocol proto,
                     Faultline__DropAction action, uint32_t percent)
{
    memset(r, 0, sizeof(*r));
    faultline__network_drop__init(&r->nd);
    r->nd.direction = dir;
    r->nd.protocol = proto;
    r->nd.action = action;
    r->nd.percent = percent;
    r->nd.peers = r->peers;
    r->nd.ports = r->prp;
}

static void req_peer(struct req *r, const char *peer)
{
    r->peers[r->nd.n_peers++] = (char *)peer;
}

static void req_port(struct req *r, uint32_t first, uint32_t last)
{
    size_t i = r->nd.n_ports++;
    faultline__port_range__init(&r->pr[i]);
    r->pr[i].first = first;
    r->pr[i].last = last;
    r->prp[i] = &r->pr[i];
}

/* The plan's rules, each checked to be one plain line in one of our chains,
 * compared with want (NULL-terminated, in order). */
static void expect_rules(const struct req *r, const char *const *want)
{
    struct fl_netplan p;
    char err[256] = "";
    if (fl_netplan_parse(&r->nd, &p, err, sizeof(err)) != 0)
        fail_msg("parse: %s", err);
    json_t *rules = json_array();
    assert_int_equal(fl_netplan_rules(&p, "f-0123456789abcdef", rules), 0);
    size_t n = 0;
    while (want[n] != NULL)
        n++;
    size_t i;
    json_t *v;
    json_array_foreach(rules, i, v)
    {
        const char *t = json_string_value(v);
        assert_non_null(t);
        assert_null(strpbrk(t, "\r\n;"));
        assert_true(strncmp(t, "input ", 6) == 0 || strncmp(t, "output ", 7) == 0);
        if (i >= n || strcmp(t, want[i]) != 0)
            fail_msg("rule %zu:\n  got  %s\n  want %s", i, t, i < n ? want[i] : "(none)");
    }
    assert_int_equal(json_array_size(rules), n);
    assert_true(n <= FL_NETPLAN_MAX_RULES);
    json_decref(rules);
}

static void expect_detail(const struct req *r, uint16_t control_port, const char *want)
{
    struct fl_netplan p;
    char err[256] = "";
    assert_int_equal(fl_netplan_parse(&r->nd, &p, err, sizeof(err)), 0);
    char *d = fl_netplan_detail(&p, control_port);
    assert_non_null(d);
    assert_string_equal(d, want);
    free(d);
}

static void expect_invalid(const struct req *r, const char *want)
{
    struct fl_netplan p;
    char err[512] = "";
    assert_int_equal(fl_netplan_parse(&r->nd, &p, err, sizeof(err)), -EINVAL);
    if (strstr(err, want) == NULL)
        fail_msg("error '%s' does not say '%s'", err, want);
}

#define C "comment \"faultline:f-0123456789abcdef\""

static void test_everything(void **state)
{
    (void)state;
    struct req r;
    /* percent 0 means 100; no peers means every peer: one rule per chain */
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_BOTH, FAULTLINE__PROTOCOL__PROTOCOL_ALL,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    expect_rules(&r, (const char *const[]){"input drop " C, "output drop " C, NULL});
    expect_detail(&r, 7411,
                  "drop all traffic ingress and egress with every peer (control port 7411 "
                  "exempt)");
    expect_detail(&r, 0, "drop all traffic ingress and egress with every peer");
}

static void test_normalise(void **state)
{
    (void)state;
    struct req r;
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_INGRESS, FAULTLINE__PROTOCOL__PROTOCOL_TCP,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    req_peer(&r, "10.1.0.0/16"); /* inside 10.0.0.0/8: dropped */
    req_peer(&r, "192.0.2.7/32");
    req_peer(&r, "10.0.0.0/8");
    req_peer(&r, "10.9.9.9");        /* inside too */
    req_peer(&r, "FD00:0:0:0::/64"); /* written the short way, lower case */
    req_peer(&r, "192.0.2.7");       /* the same host again */
    req_peer(&r, "10.0.0.0/8");      /* the same network again */
    req_port(&r, 443, 0);
    req_port(&r, 81, 90);
    req_port(&r, 80, 0); /* touches 81-90 */
    req_port(&r, 85, 0); /* inside 81-90 */
    req_port(&r, 91, 0); /* touches 81-90 */
    expect_rules(&r,
                 (const char *const[]){
                     "input ip saddr { 192.0.2.7, 10.0.0.0/8 } tcp dport { 80-91, 443 } drop " C,
                     "input ip saddr { 192.0.2.7, 10.0.0.0/8 } tcp sport { 80-91, 443 } tcp "
                     "dport != { 80-91, 443 } drop " C,
                     "input ip6 saddr { fd00::/64 } tcp dport { 80-91, 443 } drop " C,
                     "input ip6 saddr { fd00::/64 } tcp sport { 80-91, 443 } tcp dport != { "
                     "80-91, 443 } drop " C,
                     NULL});
    expect_detail(&r, 7411,
                  "drop tcp ingress from 192.0.2.7,10.0.0.0/8,fd00::/64 on ports 80-91,443 "
                  "(control port 7411 exempt)");
}

static void test_egress_percent(void **state)
{
    (void)state;
    struct req r;
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_EGRESS, FAULTLINE__PROTOCOL__PROTOCOL_UDP,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 25);
    req_peer(&r, "2001:db8::7");
    req_port(&r, 53, 0);
    expect_rules(&r, (const char *const[]){
                         "output ip6 daddr { 2001:db8::7 } udp dport { 53 } numgen random mod 100 "
                         "< 25 drop " C,
                         "output ip6 daddr { 2001:db8::7 } udp sport { 53 } udp dport != { 53 } "
                         "numgen random mod 100 < 25 drop " C,
                         NULL});
    expect_detail(&r, 0, "drop 25% of udp egress to 2001:db8::7 on port 53");

    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_INGRESS, FAULTLINE__PROTOCOL__PROTOCOL_ICMP,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 100);
    expect_rules(&r, (const char *const[]){"input meta l4proto { icmp, ipv6-icmp } drop " C, NULL});
    expect_detail(&r, 0, "drop icmp ingress from every peer");

    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_INGRESS, FAULTLINE__PROTOCOL__PROTOCOL_TCP,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    expect_rules(&r, (const char *const[]){"input meta l4proto tcp drop " C, NULL});
}

static void test_reject(void **state)
{
    (void)state;
    struct req r;
    /* tcp gets a reset, everything else icmpx: two rules for protocol all */
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_INGRESS, FAULTLINE__PROTOCOL__PROTOCOL_ALL,
             FAULTLINE__DROP_ACTION__DROP_ACTION_REJECT, 0);
    req_peer(&r, "198.51.100.0/24");
    expect_rules(&r, (const char *const[]){
                         "input ip saddr { 198.51.100.0/24 } meta l4proto tcp reject with tcp "
                         "reset " C,
                         "input ip saddr { 198.51.100.0/24 } meta l4proto != tcp reject " C, NULL});
    expect_detail(&r, 0, "reject all traffic ingress from 198.51.100.0/24");

    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_INGRESS, FAULTLINE__PROTOCOL__PROTOCOL_UDP,
             FAULTLINE__DROP_ACTION__DROP_ACTION_REJECT, 0);
    expect_rules(&r, (const char *const[]){"input meta l4proto udp reject " C, NULL});
}

static void test_most_rules(void **state)
{
    (void)state;
    /* both chains x both families x tcp and udp x two port rules */
    struct req r;
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_BOTH, FAULTLINE__PROTOCOL__PROTOCOL_ALL,
             FAULTLINE__DROP_ACTION__DROP_ACTION_REJECT, 50);
    req_peer(&r, "198.51.100.0/24");
    req_peer(&r, "2001:db8:1::7");
    req_port(&r, 7000, 7010);
    struct fl_netplan p;
    char err[256];
    assert_int_equal(fl_netplan_parse(&r.nd, &p, err, sizeof(err)), 0);
    json_t *rules = json_array();
    assert_int_equal(fl_netplan_rules(&p, "f-1", rules), 0);
    assert_int_equal(json_array_size(rules), FL_NETPLAN_MAX_RULES);
    assert_string_equal(json_string_value(json_array_get(rules, 15)),
                        "output ip6 daddr { 2001:db8:1::7 } udp sport { 7000-7010 } udp dport != "
                        "{ 7000-7010 } numgen random mod 100 < 50 reject comment "
                        "\"faultline:f-1\"");
    /* an id that is not plain never reaches a comment */
    json_t *none = json_array();
    assert_int_equal(fl_netplan_rules(&p, "f-1\" ; flush ruleset", none), -EINVAL);
    assert_int_equal(fl_netplan_rules(&p, "f-1.2", none), -EINVAL);
    assert_int_equal(fl_netplan_rules(&p, NULL, none), -EINVAL);
    assert_int_equal(json_array_size(none), 0);
    json_decref(none);
    json_decref(rules);
}

static void test_invalid(void **state)
{
    (void)state;
    struct req r;
    static const struct {
        const char *peer, *want;
    } peers[] = {
        {"10.1.2.3/8", "peers[1]: '10.1.2.3/8' has bits set after the prefix; did you mean "
                       "10.0.0.0/8?"},
        {"fd00::1/8", "did you mean fd00::/8?"},
        {"10.0.0.0/33", "'10.0.0.0/33' has a bad prefix length: an IPv4 prefix is /0 to /32"},
        {"10.0.0.1/0008", "bad prefix length"},
        {"example.com", "'example.com' is not an IP address or CIDR"},
        {"10.0.0.1 } ; flush ruleset", "flush ruleset' is not an IP address"},
        {"", "peers[1] is empty"},
        {"10.0.0.1\nflush ruleset", "peers[1] holds a control character (byte 8)"},
    };
    for (size_t i = 0; i < sizeof(peers) / sizeof(peers[0]); i++) {
        req_init(&r, FAULTLINE__DIRECTION__DIRECTION_BOTH, FAULTLINE__PROTOCOL__PROTOCOL_ALL,
                 FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
        req_peer(&r, "10.0.0.1");
        req_peer(&r, peers[i].peer);
        expect_invalid(&r, peers[i].want);
    }

    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_BOTH, FAULTLINE__PROTOCOL__PROTOCOL_TCP,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    req_port(&r, 0, 0);
    expect_invalid(&r, "port 0 is not a port");
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_BOTH, FAULTLINE__PROTOCOL__PROTOCOL_TCP,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    req_port(&r, 90, 80);
    expect_invalid(&r, "port range 90-80 runs backwards: give it as 80-90");
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_BOTH, FAULTLINE__PROTOCOL__PROTOCOL_ICMP,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    req_port(&r, 443, 0);
    expect_invalid(&r, "protocol is icmp");
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_BOTH, FAULTLINE__PROTOCOL__PROTOCOL_ALL,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 101);
    expect_invalid(&r, "percent 101 is over 100");
    req_init(&r, (Faultline__Direction)7, FAULTLINE__PROTOCOL__PROTOCOL_ALL,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    expect_invalid(&r, "direction 7 is unknown");

    /* the named limits, and one under them */
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_BOTH, FAULTLINE__PROTOCOL__PROTOCOL_ALL,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    for (int i = 0; i < FL_NETWORK_MAX_PEERS; i++)
        req_peer(&r, "192.0.2.1");
    struct fl_netplan p;
    char err[256];
    assert_int_equal(fl_netplan_parse(&r.nd, &p, err, sizeof(err)), 0);
    assert_int_equal(p.n_peers, 1); /* 64 of the same are one */
    req_peer(&r, "192.0.2.1");
    expect_invalid(&r, "65 peers are over the limit of 64");
    req_init(&r, FAULTLINE__DIRECTION__DIRECTION_BOTH, FAULTLINE__PROTOCOL__PROTOCOL_TCP,
             FAULTLINE__DROP_ACTION__DROP_ACTION_DROP, 0);
    for (uint32_t i = 0; i < FL_NETWORK_MAX_PORTS + 1; i++)
        req_port(&r, 1000 + 2 * i, 0);
    expect_invalid(&r, "65 port ranges are over the limit of 64");
}

/* The control exemption: the agent's own connections by their local end, in
 * the chain each direction crosses; never "the port on either side". */
static void test_exemptions(void **state)
{
    (void)state;
    struct fl_netplan_exemption ex[FL_NETPLAN_MAX_EXEMPTIONS];
    static const struct {
        int chain;
        const char *match;
    } any[] = {
        {0, "tcp dport 7411"},
        {0, "iif lo tcp sport 7411"},
        {1, "tcp sport 7411"},
        {1, "oif lo tcp dport 7411"},
    };
    assert_int_equal(fl_netplan_exemptions(7411, NULL, ex), 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(ex[i].chain, any[i].chain);
        assert_string_equal(ex[i].match, any[i].match);
        char comment[200];
        snprintf(comment, sizeof(comment), "faultline:control %s", any[i].match);
        assert_string_equal(ex[i].comment, comment);
        /* a remote port 7411 is never enough: in input, "sport 7411" only on
         * loopback; in output, "dport 7411" only on loopback */
        if ((ex[i].chain == 0 && strstr(ex[i].match, "sport") != NULL) ||
            (ex[i].chain == 1 && strstr(ex[i].match, "dport") != NULL))
            assert_non_null(strstr(ex[i].match, "if lo "));
    }

    /* a specific listening address: the local end is that address */
    struct fl_cidr a;
    assert_int_equal(fl_cidr_parse("10.1.2.3", &a), 0);
    assert_int_equal(fl_netplan_exemptions(9000, &a, ex), 4);
    assert_string_equal(ex[0].match, "ip daddr 10.1.2.3 tcp dport 9000");
    assert_string_equal(ex[1].match, "iif lo ip saddr 10.1.2.3 tcp sport 9000");
    assert_string_equal(ex[2].match, "ip saddr 10.1.2.3 tcp sport 9000");
    assert_string_equal(ex[3].match, "oif lo ip daddr 10.1.2.3 tcp dport 9000");
    assert_int_equal(fl_cidr_parse("fd00::7", &a), 0);
    assert_int_equal(fl_netplan_exemptions(7411, &a, ex), 4);
    assert_string_equal(ex[0].match, "ip6 daddr fd00::7 tcp dport 7411");
    assert_string_equal(ex[3].comment, "faultline:control oif lo ip6 daddr fd00::7 tcp dport 7411");

    /* refused: no port, a network, a wildcard (that is NULL) */
    assert_int_equal(fl_netplan_exemptions(0, NULL, ex), -EINVAL);
    assert_int_equal(fl_cidr_parse("10.1.2.0/24", &a), 0);
    assert_int_equal(fl_netplan_exemptions(7411, &a, ex), -EINVAL);
    assert_int_equal(fl_cidr_parse("0.0.0.0", &a), 0);
    assert_int_equal(fl_netplan_exemptions(7411, &a, ex), -EINVAL);
    assert_int_equal(fl_cidr_parse("::", &a), 0);
    assert_int_equal(fl_netplan_exemptions(7411, &a, ex), -EINVAL);
    /* the longest: fits its buffers whole */
    assert_int_equal(fl_cidr_parse("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &a), 0);
    assert_int_equal(fl_netplan_exemptions(65535, &a, ex), 4);
    assert_string_equal(ex[1].comment, "faultline:control iif lo ip6 saddr "
                                       "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff tcp sport 65535");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_everything),     cmocka_unit_test(test_normalise),
        cmocka_unit_test(test_egress_percent), cmocka_unit_test(test_reject),
        cmocka_unit_test(test_most_rules),     cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_exemptions),
    };
    return cmocka_run_group_tests_name("netplan", tests, NULL, NULL);
}
