/* Probe templates ({host}, {address}) and the where: choice, on fixed
 * records (issue 13). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "controller/probes/template.h"
#include "controller/run/where.h"

static void instantiate_fills_every_field(void **state)
{
    (void)state;
    struct fl_probe_spec t;
    memset(&t, 0, sizeof(t));
    t.name = (char *)"role";
    t.type = FL_PROBE_EXEC;
    t.u.exec.argv[0] = (char *)"redis-cli";
    t.u.exec.argv[1] = (char *)"-h";
    t.u.exec.argv[2] = (char *)"{address}";
    t.u.exec.argv[3] = (char *)"--name={host}/{host}";
    t.u.exec.argc = 4;
    t.u.exec.expect_output = (char *)"master of {host}";
    assert_true(fl_probe_spec_uses_vars(&t));
    struct fl_probe_spec out;
    assert_int_equal(fl_probe_spec_instantiate(&t, "redis1", "10.88.0.11", &out), 0);
    assert_string_equal(out.u.exec.argv[0], "redis-cli");
    assert_string_equal(out.u.exec.argv[2], "10.88.0.11");
    assert_string_equal(out.u.exec.argv[3], "--name=redis1/redis1");
    assert_string_equal(out.u.exec.expect_output, "master of redis1");
    assert_false(out.is_template);
    fl_probe_spec_free(&out);

    struct fl_probe_spec h;
    memset(&h, 0, sizeof(h));
    h.name = (char *)"patroni";
    h.type = FL_PROBE_HTTP;
    h.u.http.url = (char *)"http://{address}:8008/primary";
    assert_true(fl_probe_spec_uses_vars(&h));
    assert_int_equal(fl_probe_spec_instantiate(&h, "pg1", "fd00::5", &out), 0);
    assert_string_equal(out.u.http.url, "http://fd00::5:8008/primary");
    fl_probe_spec_free(&out);

    h.u.http.url = (char *)"http://10.0.0.1/{hostname}"; /* not a placeholder */
    assert_false(fl_probe_spec_uses_vars(&h));
}

static size_t pick_first(size_t n)
{
    (void)n;
    return 0;
}

static size_t pick_last(size_t n)
{
    return n - 1;
}

static void choose(void **state)
{
    (void)state;
    struct fl_probe_spec probes[1];
    memset(probes, 0, sizeof(probes));
    probes[0].name = (char *)"is-primary";
    struct fl_experiment e;
    memset(&e, 0, sizeof(e));
    e.probes = probes;
    e.n_probes = 1;
    struct fl_host hosts[3];
    memset(hosts, 0, sizeof(hosts));
    const char *names[] = {"r1", "r2", "r3"};
    for (int i = 0; i < 3; i++) {
        hosts[i].name = (char *)names[i];
        hosts[i].address = (char *)"10.0.0.1";
    }
    struct fl_fault f;
    memset(&f, 0, sizeof(f));
    f.name = (char *)"kill";
    f.target.has_where = true;
    f.target.where_probe = 0;
    f.target.count = 1;
    struct fl_run_fault rf[3];
    memset(rf, 0, sizeof(rf));
    for (int i = 0; i < 3; i++) {
        rf[i].fault = &f;
        rf[i].host = &hosts[i];
        rf[i].where = true;
        rf[i].where_checked = true;
        snprintf(rf[i].where_detail, sizeof(rf[i].where_detail), "exit 1 (expected 0)");
    }
    struct fl_run_record rec;
    memset(&rec, 0, sizeof(rec));
    rec.e = &e;
    rec.faults = rf;
    rec.n_faults = 3;
    char why[512];

    /* none matched: refused, every candidate named */
    assert_int_equal(fl_where_choose(&rec, pick_first, why, sizeof(why)), -ENOENT);
    assert_string_equal(why, "no candidate of fault kill matched where: is-primary, nothing was "
                             "injected: r1 (10.0.0.1): exit 1 (expected 0); r2 (10.0.0.1): exit 1 "
                             "(expected 0); r3 (10.0.0.1): exit 1 (expected 0)");

    /* two matched, count 1: one of them, as the randomness says */
    rf[1].where_ok = rf[2].where_ok = true;
    assert_int_equal(fl_where_choose(&rec, pick_last, why, sizeof(why)), 0);
    assert_false(rf[0].chosen);
    assert_string_equal(rf[0].outcome, "no match");
    assert_true(rf[1].chosen != rf[2].chosen);
    assert_true(rf[2].chosen); /* pick_last among [r2, r3] */
    assert_string_equal(rf[1].outcome, "not chosen");

    /* count above the matches: every match, no more */
    for (int i = 0; i < 3; i++) {
        rf[i].chosen = false;
        rf[i].outcome[0] = '\0';
    }
    f.target.count = 3;
    assert_int_equal(fl_where_choose(&rec, pick_first, why, sizeof(why)), 0);
    assert_false(rf[0].chosen);
    assert_true(rf[1].chosen && rf[2].chosen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(instantiate_fills_every_field),
        cmocka_unit_test(choose),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
