/* Host specs: ADDRESS[:PORT] in every form users write. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/addr.h"

static void test_split(void **state)
{
    (void)state;
    static const struct {
        const char *spec, *host;
        uint16_t port;
    } good[] = {
        {"10.77.0.2", "10.77.0.2", 7411},
        {"10.77.0.2:7000", "10.77.0.2", 7000},
        {"127.0.0.1:0", "127.0.0.1", 0},
        {"[fd00::2]:7412", "fd00::2", 7412},
        {"[::1]", "::1", 7411},
        {"fd00::2", "fd00::2", 7411},
        {"web1.staging", "web1.staging", 7411},
        {"web1.staging:65535", "web1.staging", 65535},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char host[64];
        uint16_t port = 1;
        assert_int_equal(fl_addr_split(good[i].spec, 7411, host, sizeof(host), &port), 0);
        assert_string_equal(host, good[i].host);
        assert_int_equal(port, good[i].port);
    }
    static const char *const bad[] = {
        "",           ":7411", "10.0.0.1:", "10.0.0.1:65536", "10.0.0.1:x",  "[fd00::2",
        "[fd00::2]x", "[]:1",  "host name", "host;rm",        "10.0.0.1:-1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char host[64] = "untouched";
        uint16_t port = 1;
        assert_int_equal(fl_addr_split(bad[i], 7411, host, sizeof(host), &port), -EINVAL);
        assert_string_equal(host, "untouched");
    }
    char tiny[4];
    uint16_t port;
    assert_int_equal(fl_addr_split("10.0.0.1", 1, tiny, sizeof(tiny), &port), -EINVAL);
}

static void test_join(void **state)
{
    (void)state;
    char buf[64];
    fl_addr_join("10.0.0.1", 7411, buf, sizeof(buf));
    assert_string_equal(buf, "10.0.0.1:7411");
    fl_addr_join("::1", 80, buf, sizeof(buf));
    assert_string_equal(buf, "[::1]:80");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_join),
    };
    return cmocka_run_group_tests_name("addr", tests, NULL, NULL);
}
