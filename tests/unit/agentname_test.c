/* The agent's name (--name, name: in the config; issue 13): 1 to 64 visible
 * ASCII characters, refused with a located sentence otherwise. Written in
 * the style of config_test.c: files in a fresh temporary directory. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/config.h"
#include "agent/guardrails.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/agentname_test.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/agent.yaml", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    return rmdir(dir);
}

static void write_config(const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Loads text; returns the load's status, with err and *fc filled. */
static int load(const char *text, struct fl_agent_file_config *fc, char *err, size_t errlen)
{
    struct fl_guardrails g;
    fl_guardrails_defaults(&g);
    memset(fc, 0, sizeof(*fc));
    write_config(text);
    err[0] = '\0';
    int rc = fl_agent_config_load(path, fc, &g, err, errlen);
    fl_guardrails_free(&g);
    return rc;
}

static void test_name_from_file(void **state)
{
    (void)state;
    struct fl_agent_file_config fc;
    char err[512];
    assert_int_equal(load("name: redis1\nlease: 5s\n", &fc, err, sizeof(err)), 0);
    assert_true(fc.name_set);
    assert_string_equal(fc.name, "redis1");
}

static void test_no_name_means_unset(void **state)
{
    (void)state;
    struct fl_agent_file_config fc;
    char err[512];
    assert_int_equal(load("lease: 5s\n", &fc, err, sizeof(err)), 0);
    assert_false(fc.name_set); /* main then leaves the host name */
}

static void test_longest_name(void **state)
{
    (void)state;
    char text[128], name[FL_AGENT_NAME_MAX + 2];
    memset(name, 'a', FL_AGENT_NAME_MAX);
    name[FL_AGENT_NAME_MAX] = '\0';
    snprintf(text, sizeof(text), "name: %s\n", name);
    struct fl_agent_file_config fc;
    char err[512];
    assert_int_equal(load(text, &fc, err, sizeof(err)), 0);
    assert_string_equal(fc.name, name);

    /* one more is refused, with the file position and the limit */
    memset(name, 'a', FL_AGENT_NAME_MAX + 1);
    name[FL_AGENT_NAME_MAX + 1] = '\0';
    snprintf(text, sizeof(text), "name: %s\n", name);
    assert_int_equal(load(text, &fc, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "agent.yaml:1:7"));
    assert_non_null(strstr(err, "at most 64"));
    assert_false(fc.name_set); /* out untouched on failure */
}

static void test_bad_names_in_file(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } cases[] = {
        /* yamldoc refuses an empty string before the name check sees it */
        {"name: \"\"\n", "agent.yaml:1:7"},       {"name: \"redis 1\"\n", "a space"},
        {"name: \"caf\xc3\xa9\"\n", "non-ASCII"}, {"name: [a, b]\n", "agent.yaml:1:7"},
        {"name:\n  x: 1\n", "agent.yaml:2:3"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fl_agent_file_config fc;
        char err[512];
        int rc = load(cases[i].text, &fc, err, sizeof(err));
        if (rc == 0 || strstr(err, cases[i].want) == NULL)
            fail_msg("case %zu (%s): rc %d, err '%s', wanted '%s'", i, cases[i].text, rc, err,
                     cases[i].want);
    }
}

static void test_name_check(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(fl_agent_name_check("redis1", err, sizeof(err)), 0);
    assert_int_equal(fl_agent_name_check("db-1.staging_eu", err, sizeof(err)), 0);
    assert_int_equal(fl_agent_name_check("", err, sizeof(err)), -EINVAL);
    assert_int_equal(fl_agent_name_check("a\tb", err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "control character"));
    assert_int_equal(fl_agent_name_check("a\x7f", err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "control character"));
    assert_int_equal(fl_agent_name_check("a b", err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "position 2"));
    assert_int_equal(fl_agent_name_check("\x1b[31mred", err, sizeof(err)), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_from_file), cmocka_unit_test(test_no_name_means_unset),
        cmocka_unit_test(test_longest_name),   cmocka_unit_test(test_bad_names_in_file),
        cmocka_unit_test(test_name_check),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
