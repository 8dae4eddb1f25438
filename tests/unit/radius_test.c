/* faultline serve's blast radius (controller/serve/radius.h): two scheduled
 * experiments may run at once only when their radii share no address. The
 * bed is tests/beds/gameday.sh's: lb 10.77.0.1 (HAProxy) in front of web1
 * 10.77.0.2 and web2 10.77.0.3. Experiments are written into a mkdtemp
 * directory (removed by the group teardown) and loaded as serve loads them. */
#include <dirent.h>
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

#include "controller/experiment/experiment.h"
#include "controller/serve/radius.h"
#include "controller/serve/schedule.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/fl-radius-XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            char sub[512];
            snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
            if (de->d_name[0] != '.')
                unlink(sub);
        }
        closedir(d);
    }
    rmdir(dir);
    return 0;
}

static const char inventory[] = "inventory:\n"
                                "  hosts:\n"
                                "    lb: { address: 10.77.0.1, tags: [lb] }\n"
                                "    web1: { address: 10.77.0.2, tags: [web] }\n"
                                "    web2: { address: 10.77.0.3, tags: [web] }\n";

/* An experiment named name with one probe (the YAML of its kind, e.g.
 * `http: { url: "..." }`), one fault (target and kind), and schedule_extra
 * inside its schedule: mapping; its path in path. */
static void write_exp(char *path, size_t cap, const char *name, const char *probe,
                      const char *fault, const char *schedule_extra)
{
    snprintf(path, cap, "%s/%s.yaml", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "version: 1\n"
            "name: %s\n"
            "%s"
            "probes:\n"
            "  - name: %s-probe\n"
            "    %s\n"
            "steady_state: [%s-probe]\n"
            "faults:\n"
            "  - name: %s-fault\n"
            "    %s\n"
            "    duration: 2s\n"
            "schedule:\n"
            "  every: 1m\n"
            "%s",
            name, inventory, name, probe, name, name, fault, schedule_extra);
    assert_int_equal(fclose(f), 0);
}

static struct fl_experiment *load(const char *name, const char *probe, const char *fault,
                                  const char *schedule_extra)
{
    char path[128], err[1024];
    write_exp(path, sizeof(path), name, probe, fault, schedule_extra);
    struct fl_experiment *e = NULL;
    int rc = fl_experiment_load(path, NULL, &e, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s: %s", path, err);
    return e;
}

/* Whether serve could start a and b together; if not, why in why. */
static bool apart(const struct fl_experiment *a, const struct fl_experiment *b, char *why,
                  size_t len)
{
    struct fl_radius ra, rb;
    char err[512];
    assert_int_equal(fl_radius_of(a, &ra, err, sizeof(err)), 0);
    assert_int_equal(fl_radius_of(b, &rb, err, sizeof(err)), 0);
    size_t ia, ib;
    bool shared = fl_radius_shared(&ra, &rb, &ia, &ib);
    if (shared)
        fl_radius_busy_text(&ra, ia, a->name, &rb, ib, b->name, why, len);
    size_t ja, jb;
    assert_true(fl_radius_shared(&rb, &ra, &jb, &ja) == shared); /* symmetric */
    fl_radius_free(&ra);
    fl_radius_free(&rb);
    return shared;
}

#define KILL_WEB1 "target: { hosts: [web1] }\n    kill_process: { name: nginx }"
#define CUT_WEB2 "target: { hosts: [web2] }\n    network_drop: { direction: ingress }"
#define LB_URL "http: { url: \"http://10.77.0.1:8080/health\" }"

/* The defect: A kills nginx on web1, B cuts web2; both probe the LB. Their
 * targets differ, yet each would measure the LB with no healthy backend. */
static void test_same_endpoint_disjoint_targets(void **state)
{
    (void)state;
    struct fl_experiment *a = load("a", LB_URL, KILL_WEB1, "");
    struct fl_experiment *b = load("b", LB_URL, CUT_WEB2, "");
    char why[200];
    assert_true(apart(a, b, why, sizeof(why)));
    assert_string_equal(why, "lb (10.77.0.1: probed by a, probed by b)");
    fl_experiment_free(&a);
    fl_experiment_free(&b);
}

/* A probes web2 directly; B faults web2. */
static void test_probe_of_a_faulted_host(void **state)
{
    (void)state;
    struct fl_experiment *a = load("a", "tcp: { address: \"10.77.0.3:80\" }", KILL_WEB1, "");
    struct fl_experiment *b = load("b", "tcp: { address: \"10.77.0.9:80\" }", CUT_WEB2, "");
    char why[200];
    assert_true(apart(a, b, why, sizeof(why)));
    assert_string_equal(why, "web2 (10.77.0.3: probed by a, faulted by b)");
    assert_true(apart(b, a, why, sizeof(why)));
    assert_string_equal(why, "web2 (10.77.0.3: faulted by b, probed by a)");
    fl_experiment_free(&a);
    fl_experiment_free(&b);
}

/* Each probes only what it faults: they may run together. */
static void test_disjoint_radii_run_together(void **state)
{
    (void)state;
    struct fl_experiment *a = load("a", "http: { url: \"http://10.77.0.2:8081/\" }", KILL_WEB1, "");
    struct fl_experiment *b = load("b", "tcp: { host: 10.77.0.3, port: 80 }", CUT_WEB2, "");
    char why[200];
    assert_false(apart(a, b, why, sizeof(why)));
    fl_experiment_free(&a);
    fl_experiment_free(&b);
}

/* What faultline cannot see: A probes the LB (10.77.0.1) and faults web1; B
 * faults web2 and probes it directly. Only also_uses tells that the LB's
 * answer depends on web2. */
static void test_also_uses(void **state)
{
    (void)state;
    struct fl_experiment *b = load("b", "tcp: { host: 10.77.0.3, port: 80 }", CUT_WEB2, "");
    struct fl_experiment *a = load("a", LB_URL, KILL_WEB1, "");
    char why[200];
    assert_false(apart(a, b, why, sizeof(why)));
    fl_experiment_free(&a);
    a = load("a", LB_URL, KILL_WEB1, "  also_uses: [tag:web]\n");
    assert_true(apart(a, b, why, sizeof(why)));
    assert_string_equal(why, "web2 (10.77.0.3: used by a, faulted by b)");
    assert_int_equal(a->schedule->n_also_uses, 2);
    fl_experiment_free(&a);
    a = load("a", LB_URL, KILL_WEB1, "  also_uses: [web2, web2]\n");
    assert_int_equal(a->schedule->n_also_uses, 1);
    assert_true(apart(a, b, why, sizeof(why)));
    fl_experiment_free(&a);
    fl_experiment_free(&b);
}

/* want: the message, each @ standing for the experiment's path */
static void expect_error(const char *extra, const char *want)
{
    char path[128], err[1024];
    write_exp(path, sizeof(path), "bad", LB_URL, KILL_WEB1, extra);
    struct fl_experiment *e = NULL;
    assert_int_equal(fl_experiment_load(path, NULL, &e, err, sizeof(err)), -EINVAL);
    assert_null(e);
    char full[1200];
    size_t n = 0;
    for (const char *q = want; *q && n + sizeof(path) < sizeof(full); q++)
        n += (size_t)snprintf(full + n, sizeof(full) - n, "%.*s", *q == '@' ? (int)strlen(path) : 1,
                              *q == '@' ? path : q);
    assert_string_equal(err, full);
}

static void test_also_uses_errors(void **state)
{
    (void)state;
    expect_error("  also_uses: [web3]\n", "@:19:15: unknown host 'web3': not in the inventory "
                                          "(@); did you mean 'web1'?");
    expect_error("  also_uses: [web1, tag:wbe]\n",
                 "@:19:21: also_uses: no host in the inventory (@) has the tag 'wbe'; did you "
                 "mean 'web'?");
    expect_error("  also_uses: web1\n", "@:19:14: expected a list, found 'web1'");
}

/* Brackets, spellings of one IP, case and a trailing dot of names. */
static void test_normalised(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"[FD00:0::1]", "fd00::1"},
        {"fd00:0:0:0:0:0:0:1", "fd00::1"},
        {"::ffff:10.77.0.1", "10.77.0.1"},
        {"[::FFFF:10.77.0.1]", "10.77.0.1"},
        {"LB.Example.COM.", "lb.example.com"},
        {"fe80::1%eth0", "fe80::1%eth0"},
        {"10.77.0.1", "10.77.0.1"},
        {"Web1", "web1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *k = fl_radius_key(cases[i][0], strlen(cases[i][0]));
        assert_non_null(k);
        assert_string_equal(k, cases[i][1]);
        free(k);
    }
    struct fl_experiment *a =
        load("a", "http: { url: \"http://[FD00:0::1]:8080/\" }", KILL_WEB1, "");
    struct fl_experiment *b = load("b", "tcp: { host: \"fd00::1\", port: 80 }", CUT_WEB2, "");
    char why[200];
    assert_true(apart(a, b, why, sizeof(why)));
    assert_string_equal(why, "fd00::1 (probed by a, probed by b)");
    fl_experiment_free(&a);
    fl_experiment_free(&b);
    a = load("a", "http: { url: \"http://LB.example.com/\" }", KILL_WEB1, "");
    b = load("b", "tcp: { host: lb.example.com., port: 80 }", CUT_WEB2, "");
    assert_true(apart(a, b, why, sizeof(why)));
    fl_experiment_free(&a);
    fl_experiment_free(&b);
}

static bool has(const struct fl_radius *r, const char *key, enum fl_radius_why why,
                const char *host, const char *by)
{
    for (size_t i = 0; i < r->n; i++) {
        const struct fl_radius_addr *x = &r->addrs[i];
        if (strcmp(x->key, key) == 0 && x->why == why &&
            (host == NULL ? x->host == NULL : x->host != NULL && strcmp(x->host, host) == 0) &&
            (by == NULL ? x->by == NULL : x->by != NULL && strcmp(x->by, by) == 0))
            return true;
    }
    return false;
}

/* What each kind of probe reaches. */
static void test_probe_kinds(void **state)
{
    (void)state;
    char path[128], err[1024];
    snprintf(path, sizeof(path), "%s/kinds.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(
        f,
        "version: 1\n"
        "name: kinds\n"
        "%s"
        "probes:\n"
        "  - name: pg-uri\n"
        "    postgres: { dsn: \"postgresql://u@[fd00::5]:5432,10.77.0.6/db\" }\n"
        "  - name: pg-kv\n"
        "    postgres: { dsn: \"host=10.77.0.7,/run/postgresql hostaddr=10.77.0.8, dbname=x\" }\n"
        "  - name: rds\n"
        "    redis: { sentinels: [\"10.77.0.11:26379\", \"[fd00::12]:26379\"], master_name: m }\n"
        "  - name: rds1\n"
        "    redis: { address: \"10.77.0.13:6379\" }\n"
        "  - name: sh\n"
        "    ssh: { host: web2, command: \"true\" }\n"
        "  - name: byname\n"
        "    tcp: { host: LB, port: 80 }\n"
        "  - name: tmpl\n"
        "    http: { url: \"http://{address}:8081/\" }\n"
        "  - name: tmpl-exec\n"
        "    exec: { argv: [check, \"{address}\"] }\n"
        "steady_state: [pg-uri]\n"
        "faults:\n"
        "  - name: f\n"
        "    target: { tags: [web], where: tmpl, count: 1 }\n"
        "    kill_process: { name: nginx }\n"
        "    duration: 2s\n"
        "schedule:\n"
        "  every: 1m\n",
        inventory);
    assert_int_equal(fclose(f), 0);
    struct fl_experiment *e = NULL;
    if (fl_experiment_load(path, NULL, &e, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    struct fl_radius r;
    assert_int_equal(fl_radius_of(e, &r, err, sizeof(err)), 0);
    assert_true(has(&r, "10.77.0.2", FL_RADIUS_FAULTED, "web1", "f"));
    assert_true(has(&r, "10.77.0.3", FL_RADIUS_FAULTED, "web2", "f"));
    assert_true(has(&r, "fd00::5", FL_RADIUS_PROBED, NULL, "pg-uri"));
    assert_true(has(&r, "10.77.0.6", FL_RADIUS_PROBED, NULL, "pg-uri"));
    assert_true(has(&r, "10.77.0.7", FL_RADIUS_PROBED, NULL, "pg-kv"));
    assert_true(has(&r, "10.77.0.8", FL_RADIUS_PROBED, NULL, "pg-kv"));
    assert_true(has(&r, "10.77.0.11", FL_RADIUS_PROBED, NULL, "rds"));
    assert_true(has(&r, "fd00::12", FL_RADIUS_PROBED, NULL, "rds"));
    assert_true(has(&r, "10.77.0.13", FL_RADIUS_PROBED, NULL, "rds1"));
    assert_true(has(&r, "10.77.0.3", FL_RADIUS_PROBED, "web2", "sh"));
    /* a probe host that is an inventory name: that host's address too */
    assert_true(has(&r, "lb", FL_RADIUS_PROBED, NULL, "byname"));
    assert_true(has(&r, "10.77.0.1", FL_RADIUS_PROBED, "lb", "byname"));
    /* the templates reach the fault's candidates (already faulted), the
     * socket directory the controller's own machine: nothing else */
    assert_int_equal(r.n, 12);
    assert_false(r.has_exec);
    assert_true(r.has_sentinel);
    fl_radius_free(&r);
    fl_experiment_free(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_endpoint_disjoint_targets),
        cmocka_unit_test(test_probe_of_a_faulted_host),
        cmocka_unit_test(test_disjoint_radii_run_together),
        cmocka_unit_test(test_also_uses),
        cmocka_unit_test(test_also_uses_errors),
        cmocka_unit_test(test_normalised),
        cmocka_unit_test(test_probe_kinds),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
