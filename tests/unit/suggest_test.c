/* "Did you mean ...?": typos, abbreviations, ambiguous prefixes, case, and
 * names too far off to suggest anything. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/faultkind.h"
#include "common/suggest.h"

static const char *const network_params[] = {"direction", "peers",   "protocol", "ports",
                                             "action",    "percent", "duration", NULL};

static size_t dist(const char *a, const char *b, bool fold)
{
    return fl_edit_distance(a, strlen(a), b, strlen(b), fold);
}

static void test_distance(void **state)
{
    (void)state;
    assert_int_equal(dist("", "", false), 0);
    assert_int_equal(dist("", "abc", false), 3);
    assert_int_equal(dist("abc", "", false), 3);
    assert_int_equal(dist("kitten", "sitting", false), 3);
    assert_int_equal(dist("ab", "ba", false), 1); /* a swap is one edit */
    assert_int_equal(dist("network_dorp", "network_drop", false), 1);
    assert_int_equal(dist("ca", "abc", false), 3); /* optimal string alignment, not 2 */
    assert_int_equal(dist("Drop", "drop", false), 1);
    assert_int_equal(dist("DROP", "drop", true), 0);
    /* too long to be worth it */
    char big[FL_EDIT_DISTANCE_MAX_LEN + 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(dist(big, "a", false), SIZE_MAX);
    assert_int_equal(dist("a", big, false), SIZE_MAX);
    big[FL_EDIT_DISTANCE_MAX_LEN] = '\0';
    assert_int_equal(dist(big, big, false), 0);
}

static void test_typos(void **state)
{
    (void)state;
    assert_string_equal(fl_suggest("kil_process", fl_kind_names, true), "kill_process");
    assert_string_equal(fl_suggest("network_dorp", fl_kind_names, true), "network_drop");
    assert_string_equal(fl_suggest("disk_fil", fl_kind_names, true), "disk_fill");
    assert_string_equal(fl_suggest("cpu_stres", fl_kind_names, true), "cpu_stress");
    assert_string_equal(fl_suggest("percnet", network_params, true), "percent");
    assert_string_equal(fl_suggest("deration", network_params, true), "duration");
    /* up to 3 edits in a long word */
    static const char *const one[] = {"abcdefgh", NULL};
    assert_string_equal(fl_suggest("abcdexyz", one, false), "abcdefgh");
    assert_null(fl_suggest("abcdwxyz", one, false));
    /* the closest wins; of equals, the first */
    static const char *const two[] = {"abcd", "abce", NULL};
    assert_string_equal(fl_suggest("abcf", two, false), "abcd");
    static const char *const three[] = {"portal", "ports", NULL};
    assert_string_equal(fl_suggest("port", three, false), "ports");
}

static void test_abbreviations(void **state)
{
    (void)state;
    assert_string_equal(fl_suggest("prot", network_params, true), "protocol");
    assert_string_equal(fl_suggest("dir", network_params, true), "direction");
    assert_string_equal(fl_suggest("dur", network_params, true), "duration");
    assert_string_equal(fl_suggest("kill", fl_kind_names, true), "kill_process");
    assert_string_equal(fl_suggest("mem", fl_kind_names, true), "memory_stress");
    /* under 3 letters is no abbreviation */
    assert_null(fl_suggest("du", network_params, true));
    /* an abbreviation beats a 2-edit typo; a 1-edit typo beats it */
    static const char *const dirs[] = {"dirty", "direction", NULL};
    assert_string_equal(fl_suggest("direc", dirs, false), "direction");
    static const char *const modes[] = {"modes_all", "node", NULL};
    assert_string_equal(fl_suggest("mode", modes, false), "node");
}

static void test_ambiguous(void **state)
{
    (void)state;
    /* "mem" begins both: no guess */
    static const char *const mems[] = {"memory_stress", "memory_limit", NULL};
    assert_null(fl_suggest("mem", mems, false));
    /* "per" begins only percent: that beats "peers", 2 edits away */
    assert_string_equal(fl_suggest("per", network_params, true), "percent");
    /* "po" is short, "por" begins ports only */
    assert_null(fl_suggest("po", network_params, true));
    assert_string_equal(fl_suggest("por", network_params, true), "ports");
    /* "p" is neither a prefix (too short) nor close to anything */
    assert_null(fl_suggest("p", network_params, true));
}

static void test_case(void **state)
{
    (void)state;
    assert_string_equal(fl_suggest("NETWORK_DROP", fl_kind_names, true), "network_drop");
    assert_null(fl_suggest("NETWORK_DROP", fl_kind_names, false));
    assert_string_equal(fl_suggest("PROT", network_params, true), "protocol");
    assert_null(fl_suggest("PROT", network_params, false));
    assert_string_equal(fl_suggest("Ports", network_params, false), "ports"); /* 1 edit */
}

static void test_too_far(void **state)
{
    (void)state;
    /* 2 edits in 3 letters is another word, not a typo */
    static const char *const ttl[] = {"ttl", NULL};
    assert_null(fl_suggest("kil", ttl, false));
    assert_null(fl_suggest("xyz", fl_kind_names, true));
    assert_null(fl_suggest("latency", fl_kind_names, true));
    assert_null(fl_suggest("", fl_kind_names, true));
    static const char *const none[] = {NULL};
    assert_null(fl_suggest("anything", none, true));
    /* a name over the length limit gets nothing, and does not crash */
    char big[FL_EDIT_DISTANCE_MAX_LEN + 10];
    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_null(fl_suggest(big, fl_kind_names, true));
}

static void test_near(void **state)
{
    (void)state;
    /* candidates from several lists, one at a time; want need not end */
    const char *want = "protcol=tcp";
    struct fl_near n;
    fl_near_init(&n, want, 7, true);
    for (size_t i = 0; fl_kind_names[i] != NULL; i++)
        fl_near_consider(&n, fl_kind_names[i]);
    assert_null(fl_near_best(&n));
    for (size_t i = 0; network_params[i] != NULL; i++)
        fl_near_consider(&n, network_params[i]);
    assert_string_equal(fl_near_best(&n), "protocol");
    /* abbreviations count across lists: two lists, two owners, no guess */
    fl_near_init(&n, "dur", 3, false);
    fl_near_consider(&n, "duration");
    assert_string_equal(fl_near_best(&n), "duration");
    fl_near_consider(&n, "durable");
    assert_null(fl_near_best(&n));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distance),      cmocka_unit_test(test_typos),
        cmocka_unit_test(test_abbreviations), cmocka_unit_test(test_ambiguous),
        cmocka_unit_test(test_case),          cmocka_unit_test(test_too_far),
        cmocka_unit_test(test_near),
    };
    return cmocka_run_group_tests_name("suggest", tests, NULL, NULL);
}
