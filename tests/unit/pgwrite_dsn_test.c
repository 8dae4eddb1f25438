/* The postgres write probe's DSN, read as its client reads it
 * (controller/probes/pgwrite.c): the hosts one by one, connect_timeout as
 * libpq reads it, the refusals, and the warning `faultline validate` prints
 * for a multi-host DSN without connect_timeout. Nothing connects. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "controller/probes/pgwrite.h"

static int check(const char *dsn, char *msg, size_t len)
{
    msg[0] = '\0';
    int rc = fl_pgwrite_check_dsn(dsn, msg, len);
    fprintf(stderr, "%-90s -> %d %s\n", dsn, rc, msg);
    return rc;
}

static void test_warns_multi_host_without_connect_timeout(void **state)
{
    (void)state;
    char msg[600];
    assert_int_equal(check("host=10.0.0.1,10.0.0.2 port=5432,5432 dbname=orders "
                           "target_session_attrs=read-write",
                           msg, sizeof(msg)),
                     1);
    assert_non_null(strstr(msg, "2 hosts and no connect_timeout"));
    assert_non_null(strstr(msg, "every libpq client with this DSN"));
    assert_int_equal(
        check("postgresql://10.0.0.1:5432,10.0.0.2:5433,10.0.0.3/orders", msg, sizeof(msg)), 1);
    assert_non_null(strstr(msg, "3 hosts"));
    assert_int_equal(
        check("hostaddr=10.0.0.1,10.0.0.2 dbname=orders connect_timeout=0", msg, sizeof(msg)),
        1); /* 0: no limit, for libpq too */
    assert_int_equal(
        check("host=10.0.0.1,10.0.0.2 dbname=orders connect_timeout=-3", msg, sizeof(msg)), 1);
}

static void test_quiet_when_timed_or_single(void **state)
{
    (void)state;
    char msg[600];
    assert_int_equal(check("host=10.0.0.1,10.0.0.2 port=5432,5432 dbname=orders "
                           "target_session_attrs=read-write connect_timeout=2",
                           msg, sizeof(msg)),
                     0);
    assert_int_equal(
        check("postgresql://10.0.0.1,10.0.0.2/orders?connect_timeout=1", msg, sizeof(msg)), 0);
    assert_int_equal(check("host=10.0.0.1 dbname=orders", msg, sizeof(msg)), 0);
    assert_int_equal(check("host=/var/run/postgresql dbname=orders", msg, sizeof(msg)), 0);
    assert_int_equal(check("dbname=orders", msg, sizeof(msg)), 0);
    assert_int_equal(check("host=10.0.0.1,10.0.0.2 connect_timeout=' 2 '", msg, sizeof(msg)), 0);
    /* libpq's own environment default counts, as it does for libpq */
    setenv("PGCONNECT_TIMEOUT", "5", 1);
    assert_int_equal(check("host=10.0.0.1,10.0.0.2 dbname=orders", msg, sizeof(msg)), 0);
    unsetenv("PGCONNECT_TIMEOUT");
}

static void test_refusals_name_the_problem(void **state)
{
    (void)state;
    static const struct {
        const char *dsn, *says;
    } cases[] = {
        {"host=db1.example,10.0.0.2 connect_timeout=2", "\"db1.example\" is a name"},
        {"host=10.0.0.1,db2 connect_timeout=2", "\"db2\" is a name"},
        {"host=10.0.0.1,10.0.0.2 connect_timeout=2s", "connect_timeout \"2s\" is not a whole"},
        {"host=10.0.0.1,10.0.0.2 connect_timeout=abc", "connect_timeout \"abc\""},
        {"host=10.0.0.1,10.0.0.2 connect_timeout=99999999999", "connect_timeout"},
        {"host=10.0.0.1,10.0.0.2,10.0.0.3 port=5432,5433", "2 port numbers for 3 hosts"},
        {"host=a,b hostaddr=10.0.0.1,10.0.0.2,10.0.0.3", "2 host names for 3 hostaddr values"},
        {"service=orders", "service= is not supported"},
        {"host=10.0.0.1 nonsense=1", "postgres dsn: invalid connection option \"nonsense\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char msg[600];
        assert_int_equal(check(cases[i].dsn, msg, sizeof(msg)), -EINVAL);
        if (strstr(msg, cases[i].says) == NULL)
            fail_msg("%s: \"%s\" does not say \"%s\"", cases[i].dsn, msg, cases[i].says);
        /* create refuses it alike */
        uv_loop_t loop;
        assert_int_equal(uv_loop_init(&loop), 0);
        struct fl_pgwrite *w = NULL;
        char err[600];
        assert_int_equal(fl_pgwrite_create(&loop, cases[i].dsn, NULL, "r", &w, err, sizeof(err)),
                         -EINVAL);
        assert_string_equal(err, msg);
        assert_null(w);
        assert_int_equal(uv_loop_close(&loop), 0);
    }
}

/* an empty entry is libpq's default: its socket directory, port 5432 (a
 * URI without a port gives an empty entry) */
static void test_empty_entries_are_defaults(void **state)
{
    (void)state;
    char msg[600];
    assert_int_equal(check("host=10.0.0.1,,10.0.0.2 connect_timeout=2", msg, sizeof(msg)), 0);
    assert_int_equal(check("host=10.0.0.1,10.0.0.2 port=5432, connect_timeout=2", msg, sizeof(msg)),
                     0);
}

/* hostaddr names the address, host (a name) only what is checked against
 * the server's certificate: no lookup, accepted */
static void test_hostaddr_with_names(void **state)
{
    (void)state;
    char msg[600];
    assert_int_equal(
        check("host=db1,db2 hostaddr=10.0.0.1,10.0.0.2 connect_timeout=2", msg, sizeof(msg)), 0);
}

int main(void)
{
    unsetenv("PGCONNECT_TIMEOUT");
    unsetenv("PGHOST");
    unsetenv("PGHOSTADDR");
    unsetenv("PGPORT");
    unsetenv("PGSERVICE");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_warns_multi_host_without_connect_timeout),
        cmocka_unit_test(test_quiet_when_timed_or_single),
        cmocka_unit_test(test_refusals_name_the_problem),
        cmocka_unit_test(test_empty_entries_are_defaults),
        cmocka_unit_test(test_hostaddr_with_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
