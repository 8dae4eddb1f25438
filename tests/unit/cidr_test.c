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
    static const char *const bad[] = {"",           "10.0.0.1/8", "10.0.0.0/33", "10.0.0.0/",
                                      "10.0.0.0/x", "fd00::1/8",  "::/129",      "host",
                                      "10.0.0",     "10.0.0.0/-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(fl_cidr_parse(bad[i], &c), -EINVAL);
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
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_match),
    };
    return cmocka_run_group_tests_name("cidr", tests, NULL, NULL);
}
