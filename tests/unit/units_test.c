/* Durations and sizes as users write them. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/units.h"

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t ms;
    } good[] = {
        {"0s", 0},          {"250ms", 250},           {"5s", 5000},   {"2m", 120000},
        {"1h", 3600000},    {"1.5s", 1500},           {"0.25s", 250}, {"1m30s", 90000},
        {"1h30m", 5400000}, {"2h0m5s100ms", 7205100}, {"100ms", 100}, {"0.001s", 1},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        uint64_t ms = 12345;
        assert_int_equal(fl_parse_duration(good[i].text, &ms), 0);
        assert_int_equal(ms, good[i].ms);
    }
    static const char *const bad[] = {
        "",     "5",    "s",   "5 s", " 5s",   "5s ",   "-5s", "5sec", "1.5ms", "0.0001s",
        "5s1m", "1s1s", ".5s", "5.s", "1e3ms", "0x10s", "5S",  "5d",   "1m1h",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t ms = 777;
        assert_int_equal(fl_parse_duration(bad[i], &ms), -EINVAL);
        assert_int_equal(ms, 777); /* untouched on failure */
    }
    uint64_t ms;
    assert_int_equal(fl_parse_duration("99999999999999999999ms", &ms), -EINVAL);
    assert_int_equal(fl_parse_duration("9999999999999999h", &ms), -ERANGE);
}

static void test_format_duration(void **state)
{
    (void)state;
    char buf[32];
    fl_format_duration(250, buf, sizeof(buf));
    assert_string_equal(buf, "250ms");
    fl_format_duration(1420, buf, sizeof(buf));
    assert_string_equal(buf, "1.42s");
    fl_format_duration(30000, buf, sizeof(buf));
    assert_string_equal(buf, "30s");
    fl_format_duration(150000, buf, sizeof(buf));
    assert_string_equal(buf, "2m30s");
    fl_format_duration(3900000, buf, sizeof(buf));
    assert_string_equal(buf, "1h5m");
    assert_int_equal(fl_format_duration(1420, buf, 3), -ENOSPC);
}

static void test_sizes(void **state)
{
    (void)state;
    struct fl_size s;
    assert_int_equal(fl_parse_size("512MiB", &s), 0);
    assert_false(s.is_percent);
    assert_int_equal(s.bytes, 512ull << 20);
    assert_int_equal(fl_parse_size("2GiB", &s), 0);
    assert_int_equal(s.bytes, 2ull << 30);
    assert_int_equal(fl_parse_size("1.5GiB", &s), 0);
    assert_int_equal(s.bytes, 3ull << 29);
    assert_int_equal(fl_parse_size("4096", &s), 0);
    assert_int_equal(s.bytes, 4096);
    assert_int_equal(fl_parse_size("10B", &s), 0);
    assert_int_equal(s.bytes, 10);
    assert_int_equal(fl_parse_size("1TiB", &s), 0);
    assert_int_equal(s.bytes, 1ull << 40);
    assert_int_equal(fl_parse_size("90%", &s), 0);
    assert_true(s.is_percent);
    assert_true(s.percent > 89.999 && s.percent < 90.001);
    assert_int_equal(fl_parse_size("12.5%", &s), 0);
    assert_true(s.percent > 12.499 && s.percent < 12.501);
    assert_int_equal(fl_parse_size("100%", &s), 0);

    static const char *const bad[] = {"",     "MiB", "5MB",  "5 MiB", "-1KiB",
                                      "5mib", "%",   "1.5B", "abc"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(fl_parse_size(bad[i], &s), -EINVAL);
    assert_int_equal(fl_parse_size("0%", &s), -ERANGE);
    assert_int_equal(fl_parse_size("101%", &s), -ERANGE);
    assert_int_equal(fl_parse_size("99999999999TiB", &s), -ERANGE);
}

static void test_format_bytes(void **state)
{
    (void)state;
    char buf[32];
    fl_format_bytes(100, buf, sizeof(buf));
    assert_string_equal(buf, "100B");
    fl_format_bytes(512ull << 20, buf, sizeof(buf));
    assert_string_equal(buf, "512MiB");
    fl_format_bytes(3ull << 29, buf, sizeof(buf));
    assert_string_equal(buf, "1.50GiB");
    /* the longest text fits FL_BYTES_TEXT_LEN, and one byte less does not */
    char exact[FL_BYTES_TEXT_LEN];
    assert_int_equal(fl_format_bytes(UINT64_MAX, exact, sizeof(exact)), FL_BYTES_TEXT_LEN - 2);
    assert_string_equal(exact, "16777216.00TiB");
    assert_int_equal(fl_format_bytes(UINT64_MAX - (1ull << 40), exact, sizeof(exact)), 14);
    assert_string_equal(exact, "16777215.00TiB");
    assert_int_equal(fl_format_bytes(UINT64_MAX, exact, 14), -ENOSPC);
}

static void test_bytes_text(void **state)
{
    (void)state;
    char buf[FL_BYTES_TEXT_LEN];
    assert_string_equal(fl_bytes_text(64ull << 20, buf, sizeof(buf)), "64MiB");
    assert_string_equal(fl_bytes_text(0, buf, sizeof(buf)), "0B");
    assert_string_equal(fl_bytes_text(1023, buf, sizeof(buf)), "1023B");
    assert_string_equal(fl_bytes_text(1024, buf, sizeof(buf)), "1KiB");
    assert_string_equal(fl_bytes_text(1536, buf, sizeof(buf)), "1.50KiB");
    /* too short for the unit form: the plain count, cut to fit */
    char small[6];
    assert_string_equal(fl_bytes_text(3ull << 29, small, sizeof(small)), "16106");
    char tiny[4];
    assert_string_equal(fl_bytes_text(100, tiny, sizeof(tiny)), "100");
    /* a zero-length buffer is left alone */
    char none[1] = {'x'};
    assert_ptr_equal(fl_bytes_text(100, none, 0), none);
    assert_int_equal(none[0], 'x');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),  cmocka_unit_test(test_format_duration),
        cmocka_unit_test(test_sizes),      cmocka_unit_test(test_format_bytes),
        cmocka_unit_test(test_bytes_text),
    };
    return cmocka_run_group_tests_name("units", tests, NULL, NULL);
}
