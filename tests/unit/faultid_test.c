/* Which fault ids the agent takes back (in revert requests, journals, undo
 * records) and puts into file names and nft comments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/faultid.h"

static void test_ids(void **state)
{
    (void)state;
    /* what the registry makes, and what tests use */
    assert_true(fl_fault_id_ok("f-0123456789abcdef"));
    assert_true(fl_fault_id_ok("f-r9"));
    assert_true(fl_fault_id_ok("A_Z-09"));
    assert_true(fl_fault_id_ok("x"));

    static const char *const bad[] = {
        NULL,    "",    "f-1.2", "..",   ".",          "../../etc/x", "f/1",
        "f-1\"", "f 1", "f-1\n", "f-1;", "f-\xc3\xa9", "f-1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(fl_fault_id_ok(bad[i]));
}

static void test_length(void **state)
{
    (void)state;
    char id[FL_FAULT_ID_MAX + 2];
    memset(id, 'a', sizeof(id));
    id[FL_FAULT_ID_MAX] = '\0';
    assert_true(fl_fault_id_ok(id));
    id[FL_FAULT_ID_MAX] = 'a';
    id[FL_FAULT_ID_MAX + 1] = '\0';
    assert_false(fl_fault_id_ok(id));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_length),
    };
    return cmocka_run_group_tests_name("faultid", tests, NULL, NULL);
}
