/* faultline serve's config file and flags (controller/serve/config.c). */
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

#include "controller/serve/config.h"

static char path[] = "/tmp/fl-serve-config-test.XXXXXX";

static int load(const char *text, struct fl_serve_config *c, char *err, size_t errlen)
{
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(fl_serve_config_defaults(c), 0);
    int rc = fl_serve_config_load(path, c, err, errlen);
    unlink(path);
    strcpy(path, "/tmp/fl-serve-config-test.XXXXXX");
    return rc;
}

static void test_defaults(void **state)
{
    (void)state;
    struct fl_serve_config c;
    char err[512];
    assert_int_equal(fl_serve_config_defaults(&c), 0);
    assert_string_equal(c.db, "sqlite:/var/lib/faultline/history.db");
    assert_string_equal(c.listen_http, "127.0.0.1:9411");
    assert_int_equal(c.max_concurrent_runs, 1);
    assert_int_equal(c.retention_runs, 1000);
    assert_true(c.retention_age_ms == 180ull * 86400 * 1000);
    assert_null(c.timezone);
    /* experiments is required */
    assert_int_equal(fl_serve_config_check(&c, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "experiments"));
    fl_serve_config_free(&c);
}

static void test_every_key(void **state)
{
    (void)state;
    struct fl_serve_config c;
    char err[512] = "";
    int rc = load("experiments: /etc/faultline/exps\n"
                  "inventory: /etc/faultline/hosts.yaml\n"
                  "key_file: /etc/faultline/k\n"
                  "db: sqlite:/tmp/h.db\n"
                  "reports_dir: /tmp/reports\n"
                  "listen_http: \"[::1]:9500\"\n"
                  "max_concurrent_runs: 3\n"
                  "retention: { runs_per_experiment: 50, max_age: 7d }\n"
                  "timezone: Europe/Berlin\n"
                  "reload_on_change: false\n",
                  &c, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s", err);
    assert_string_equal(c.experiments, "/etc/faultline/exps");
    assert_string_equal(c.inventory, "/etc/faultline/hosts.yaml");
    assert_string_equal(c.key_file, "/etc/faultline/k");
    assert_string_equal(c.db, "sqlite:/tmp/h.db");
    assert_string_equal(c.reports_dir, "/tmp/reports");
    assert_string_equal(c.listen_http, "[::1]:9500");
    assert_int_equal(c.max_concurrent_runs, 3);
    assert_int_equal(c.retention_runs, 50);
    assert_true(c.retention_age_ms == 7ull * 86400 * 1000);
    assert_string_equal(c.timezone, "Europe/Berlin");
    assert_false(c.reload_on_change);
    assert_int_equal(fl_serve_config_check(&c, err, sizeof(err)), 0);
    /* a flag wins over the file */
    assert_int_equal(fl_serve_config_set(&c, "max_concurrent_runs", "2", err, sizeof(err)), 0);
    assert_int_equal(c.max_concurrent_runs, 2);
    assert_int_equal(fl_serve_config_set(&c, "retention.max_age", "0", err, sizeof(err)), 0);
    assert_true(c.retention_age_ms == 0);
    fl_serve_config_free(&c);
}

/* Every bad value is refused naming the place and the problem. */
static void test_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"experimnts: /x\n", "did you mean 'experiments'"},
        {"experiments: /x\nmax_concurrent_runs: 0\n", ":2:"},
        {"experiments: /x\nmax_concurrent_runs: 65\n", "FL_SERVE_MAX_CONCURRENT_MAX"},
        {"experiments: /x\nmax_concurrent_runs: -1\n", "max_concurrent_runs"},
        {"experiments: /x\nlisten_http: localhost\n", "ADDRESS:PORT"},
        {"experiments: /x\nlisten_http: 127.0.0.1:0\n", "ADDRESS:PORT"},
        {"experiments: /x\nlisten_http: 127.0.0.1:70000\n", "ADDRESS:PORT"},
        {"experiments: /x\ndb: postgresql://h/db\n", "sqlite:/PATH"},
        {"experiments: /x\ndb: \"sqlite:\"\n", "sqlite:/PATH"},
        {"experiments: /x\ntimezone: ../etc/passwd\n", ":2:"},
        {"experiments: /x\nretention: { max_age: soon }\n", "duration"},
        {"experiments: /x\nretention: { runs: 3 }\n", "unknown key"},
        {"experiments: /x\nretention: 5\n", ":2:"},
        {"experiments: /x\nreload_on_change: maybe\n", "2:19: reload_on_change"},
        {"experiments: /x\nwebhooks: [http://x]\n", "2:12: expected a mapping"},
        {"experiments: /x\nwebhooks: { url: http://x }\n", "2:11: expected a list"},
        {"experiments: /x\nwebhooks:\n  - url: ftp://x\n", "3:10: 'ftp://x' is not an http"},
        {"experiments: /x\nwebhooks:\n  - events: [fail]\n", "needs url"},
        {"experiments: /x\nwebhooks:\n  - { url: http://x, events: [fial] }\n",
         "unknown webhook event 'fial'"},
        {"experiments: /x\nwebhooks:\n  - { url: http://x, events: [] }\n", "is empty"},
        {"experiments: /x\nwebhooks:\n  - { url: http://x, timeout: 1h }\n",
         "FL_WEBHOOK_TIMEOUT_MAX_MS"},
        {"experiments: /x\nwebhooks:\n  - { url: http://x, secret: y }\n", "unknown key"},
        {"experiments: /x\nlisten_control: localhost:7412\n", "listen_control: 'localhost:7412'"},
        {"experiments: [a, b]\n", "single value"},
        {"- a\n", "1:1"},
        {"", "empty"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fl_serve_config c;
        char err[512] = "";
        int rc = load(cases[i].text, &c, err, sizeof(err));
        if (rc != -EINVAL || strstr(err, cases[i].want) == NULL)
            fail_msg("case %zu (%s): rc %d, err '%s', wanted '%s'", i, cases[i].text, rc, err,
                     cases[i].want);
        fl_serve_config_free(&c);
    }
    struct fl_serve_config c;
    char err[512];
    assert_int_equal(fl_serve_config_defaults(&c), 0);
    assert_int_equal(fl_serve_config_set(&c, "max_concurrent_runs", "1x", err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "--max_concurrent_runs"));
    assert_int_equal(fl_serve_config_set(&c, "nope", "1", err, sizeof(err)), -EINVAL);
    assert_int_equal(fl_serve_config_set(&c, "webhooks", "http://x", err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "config file"));
    fl_serve_config_free(&c);
}

static void test_webhooks(void **state)
{
    (void)state;
    struct fl_serve_config c;
    char err[512] = "";
    int rc = load("experiments: /x\n"
                  "webhooks:\n"
                  "  - url: http://127.0.0.1:1/hook\n"
                  "  - url: https://chat.example.com/h\n"
                  "    events: [fail, regression]\n"
                  "    timeout: 2s\n",
                  &c, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s", err);
    assert_int_equal(c.n_webhooks, 2);
    assert_string_equal(c.webhooks[0].url, "http://127.0.0.1:1/hook");
    assert_int_equal(c.webhooks[0].events, FL_WEBHOOK_ALL_EVENTS);
    assert_int_equal(c.webhooks[0].timeout_ms, FL_WEBHOOK_TIMEOUT_DEFAULT_MS);
    assert_int_equal(c.webhooks[1].events, FL_WEBHOOK_FAIL | FL_WEBHOOK_REGRESSION);
    assert_int_equal(c.webhooks[1].timeout_ms, 2000);
    fl_serve_config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_webhooks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
