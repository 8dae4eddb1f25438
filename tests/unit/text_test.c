/* The one check on names, paths and patterns from requests. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/text.h"

static void refused(const char *text, const char *what, const char *want)
{
    char err[256] = "";
    assert_int_equal(fl_text_check(text, what, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, want);
}

static void test_plain(void **state)
{
    (void)state;
    char err[256] = "untouched";
    assert_int_equal(fl_text_check("nginx", "name", err, sizeof(err)), 0);
    assert_int_equal(fl_text_check("/var/tmp/a b", "path", err, sizeof(err)), 0);
    assert_int_equal(fl_text_check("caf\xc3\xa9", "name", err, sizeof(err)), 0); /* UTF-8 */
    assert_int_equal(fl_text_check("~!@#$%^&*()", "pattern", err, sizeof(err)), 0);
    assert_string_equal(err, "untouched");
}

static void test_refused(void **state)
{
    (void)state;
    refused(NULL, "name", "name is empty");
    refused("", "pidfile", "pidfile is empty");
    refused("ngi\x07nx", "name", "name holds a control character (byte 3)");
    refused("\tx", "pattern", "pattern holds a control character (byte 0)");
    refused("a\nflush ruleset", "peers[1]", "peers[1] holds a control character (byte 1)");
    refused("x\x7f", "name", "name holds a control character (byte 1)");
    refused("\x1b[2J", "name", "name holds a control character (byte 0)");
    /* a NULL err is fine */
    assert_int_equal(fl_text_check("", "name", NULL, 0), -EINVAL);
}

static void test_limit(void **state)
{
    (void)state;
    static char big[FL_TEXT_MAX + 2];
    char err[256];
    memset(big, 'a', FL_TEXT_MAX);
    big[FL_TEXT_MAX] = '\0';
    assert_int_equal(fl_text_check(big, "pattern", err, sizeof(err)), 0);
    big[FL_TEXT_MAX] = 'a';
    big[FL_TEXT_MAX + 1] = '\0';
    refused(big, "pattern", "pattern is over 4096 bytes");
    /* a control character past the limit: the length speaks first */
    big[FL_TEXT_MAX] = '\n';
    refused(big, "pattern", "pattern is over 4096 bytes");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_limit),
    };
    return cmocka_run_group_tests_name("text", tests, NULL, NULL);
}
