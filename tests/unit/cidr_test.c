/* Addresses and networks, and which peers they match. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/cidr.h"

static int matches(const char *net, const char *addr)
{
    struct fl_cidr c;
    assert_int_equal(fl_cidr_parse(net, &c), 0);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, addr, &in6->sin6_addr), 1);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, addr, &in->sin_addr), 1);
    }
    return fl_cidr_match(&c, (struct sockaddr *)&ss);
}

static void test_parse(void **state)
{
    (void)state;
    struct fl_cidr c;
    assert_int_equal(fl_cidr_parse("10.0.0.0/8", &c), 0);
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.prefix, 8);
    assert_int_equal(fl_cidr_parse("192.0.2.7", &c), 0);
    assert_int_equal(c.prefix, 32);
    assert_int_equal(fl_cidr_parse("fd00::/8", &c), 0);
    assert_int_equal(c.family, AF_INET6);
    assert_int_equal(fl_cidr_parse("0.0.0.0/0", &c), 0);
    assert_int_equal(fl_cidr_parse("10.0.0.0/008", &c), 0); /* up to 3 digits */
    assert_int_equal(c.prefix, 8);
    static const char *const bad[] = {
        "",
        "10.0.0.1/8",
        "10.0.0.0/33",
        "10.0.0.0/",
        "10.0.0.0/x",
        "fd00::1/8",
        "::/129",
        "host",
        "10.0.0",
        "10.0.0.0/-1",
        "10.0.0.0/+8",
        "10.0.0.0/ 8",
        "10.0.0.0/0008",
        "10.0.0.0/8/8",
        " 10.0.0.1",
        "fe80::1%eth0",
        "/8",
        "10.0.0.1\"",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(fl_cidr_parse(bad[i], &c), -EINVAL);
}

static void refused(const char *text, const char *want)
{
    struct fl_cidr c = {.family = 99};
    char err[256] = "";
    assert_int_equal(fl_cidr_parse_err(text, &c, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, want);
    assert_int_equal(c.family, 99); /* not written */
}

static void test_messages(void **state)
{
    (void)state;
    refused("10.1.2.3/8", "'10.1.2.3/8' has bits set after the prefix; did you mean 10.0.0.0/8?");
    refused("fd00::1/8", "'fd00::1/8' has bits set after the prefix; did you mean fd00::/8?");
    refused("192.0.2.7/24",
            "'192.0.2.7/24' has bits set after the prefix; did you mean 192.0.2.0/24?");
    refused("10.0.0.1/0", "'10.0.0.1/0' has bits set after the prefix; did you mean 0.0.0.0/0?");
    refused("10.0.0.0/33", "'10.0.0.0/33' has a bad prefix length: an IPv4 prefix is /0 to /32");
    refused("::/129", "'::/129' has a bad prefix length: an IPv6 prefix is /0 to /128");
    refused("10.0.0.0/0008",
            "'10.0.0.0/0008' has a bad prefix length: an IPv4 prefix is /0 to /32");
    refused("db1.internal", "'db1.internal' is not an IP address or CIDR such as 10.0.0.0/8, "
                            "192.0.2.7 or fd00::/64 (host names are not resolved)");
    refused("10.0.0.1\n", "the address holds a control character: it is not an IP address or "
                          "CIDR such as 10.0.0.0/8, 192.0.2.7 or fd00::/64 (host names are not "
                          "resolved)");
    /* a long text is quoted short */
    char big[200];
    memset(big, '1', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    struct fl_cidr c;
    char err[256];
    assert_int_equal(fl_cidr_parse_err(big, &c, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "1111...' is not an IP address"));
    assert_true(strlen(err) < 200);
    /* a NULL err is fine */
    assert_int_equal(fl_cidr_parse_err("x", &c, NULL, 0), -EINVAL);
    assert_int_equal(fl_cidr_parse_err(NULL, &c, err, sizeof(err)), -EINVAL);
}

static const char *fmt(const char *text, char *buf, size_t len)
{
    struct fl_cidr c;
    assert_int_equal(fl_cidr_parse(text, &c), 0);
    assert_true(fl_cidr_format(&c, buf, len) > 0);
    return buf;
}

static void test_format(void **state)
{
    (void)state;
    char buf[FL_CIDR_TEXT_LEN];
    assert_string_equal(fmt("10.0.0.0/8", buf, sizeof(buf)), "10.0.0.0/8");
    assert_string_equal(fmt("192.0.2.7/32", buf, sizeof(buf)), "192.0.2.7");
    assert_string_equal(fmt("FD00:0:0:0::/64", buf, sizeof(buf)), "fd00::/64");
    assert_string_equal(fmt("::/0", buf, sizeof(buf)), "::/0");
    assert_string_equal(fmt("::ffff:10.0.0.1", buf, sizeof(buf)), "::ffff:10.0.0.1");
    /* a long one fits FL_CIDR_TEXT_LEN */
    struct fl_cidr c;
    assert_int_equal(fl_cidr_parse("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127", &c), 0);
    assert_int_equal(fl_cidr_format(&c, buf, sizeof(buf)), 43);
    assert_int_equal(fl_cidr_format(&c, buf, 10), -ENOSPC);
}

static int contains(const char *outer, const char *inner)
{
    struct fl_cidr o, i;
    assert_int_equal(fl_cidr_parse(outer, &o), 0);
    assert_int_equal(fl_cidr_parse(inner, &i), 0);
    return fl_cidr_contains(&o, &i);
}

static void test_contains(void **state)
{
    (void)state;
    assert_true(contains("10.0.0.0/8", "10.0.0.0/8"));
    assert_true(contains("10.0.0.0/8", "10.9.0.0/16"));
    assert_true(contains("10.0.0.0/8", "10.9.9.9"));
    assert_false(contains("10.0.0.0/16", "10.0.0.0/8"));
    assert_false(contains("10.0.0.0/8", "11.0.0.0/8"));
    assert_true(contains("0.0.0.0/0", "203.0.113.9"));
    assert_false(contains("0.0.0.0/0", "::1"));
    assert_false(contains("::/0", "10.0.0.1"));
    assert_true(contains("fd00::/8", "fd12::/64"));
    assert_true(contains("10.0.0.0/9", "10.127.0.0/16"));
    assert_false(contains("10.0.0.0/9", "10.128.0.0/16"));
}

static void test_match(void **state)
{
    (void)state;
    assert_true(matches("10.0.0.0/8", "10.77.0.2"));
    assert_false(matches("10.0.0.0/8", "11.0.0.1"));
    assert_true(matches("127.0.0.1", "127.0.0.1"));
    assert_false(matches("127.0.0.1", "127.0.0.2"));
    assert_true(matches("10.0.0.0/9", "10.127.255.255"));
    assert_false(matches("10.0.0.0/9", "10.128.0.0"));
    assert_true(matches("0.0.0.0/0", "203.0.113.9"));
    assert_true(matches("fd00::/8", "fd12::1"));
    assert_false(matches("fd00::/8", "fe80::1"));
    /* a dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d */
    assert_true(matches("10.0.0.0/8", "::ffff:10.1.2.3"));
    assert_false(matches("10.0.0.0/8", "::ffff:11.1.2.3"));
    assert_false(matches("fd00::/8", "10.0.0.1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),  cmocka_unit_test(test_messages),
        cmocka_unit_test(test_format), cmocka_unit_test(test_contains),
        cmocka_unit_test(test_match),
    };
    return cmocka_run_group_tests_name("cidr", tests, NULL, NULL);
}
