/* The agent's config file: every field, the defaults, and a located sentence
 * for every bad value. Files are written into a fresh temporary directory. */
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
#include "common/text.h"
#include "agent/guardrails.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/config_test.XXXXXX");
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

static void assert_list(char *const *list, size_t n, const char *const *want, size_t n_want)
{
    assert_int_equal(n, n_want);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(list[i], want[i]);
}

/* g as fl_guardrails_defaults left it. */
static void assert_defaults(const struct fl_guardrails *g)
{
    struct fl_guardrails d;
    fl_guardrails_defaults(&d);
    assert_list(g->protected_names, g->n_protected_names, (const char *const *)d.protected_names,
                d.n_protected_names);
    assert_list(g->fill_paths, g->n_fill_paths, (const char *const *)d.fill_paths, d.n_fill_paths);
    assert_int_equal(g->n_allowed_controllers, 0);
    assert_true(g->max_fill_percent == d.max_fill_percent);
    assert_true(g->fill_reserve_bytes == d.fill_reserve_bytes);
    assert_true(g->memory_reserve_bytes == d.memory_reserve_bytes);
    assert_true(g->max_duration_ms == d.max_duration_ms);
    assert_int_equal(g->max_cpu_workers, d.max_cpu_workers);
    assert_int_equal(g->max_faults, 256);
    assert_false(g->scope_netns);
    fl_guardrails_free(&d);
}

static void assert_nothing_set(const struct fl_agent_file_config *fc)
{
    assert_false(fc->listen_set);
    assert_false(fc->state_dir_set);
    assert_false(fc->lease_set);
    assert_false(fc->max_connections_set);
}

static void test_full_file(void **state)
{
    (void)state;
    write_config("# /etc/faultline/agent.yaml\n"
                 "listen: 0.0.0.0:7411\n"
                 "state_dir: /var/lib/faultline\n"
                 "lease: 5s\n"
                 "max_connections: 16\n"
                 "guardrails:\n"
                 "  protected_processes: [sshd, systemd-journald]   # replaces the default\n"
                 "  fill_paths: [/var/tmp, /tmp]\n"
                 "  max_fill: 90%\n"
                 "  fill_reserve: 128MiB\n"
                 "  memory_reserve: 1GiB\n"
                 "  max_duration: 30m\n"
                 "  max_cpu_workers: 8\n"
                 "  max_faults: 10\n"
                 "  allowed_controllers: [10.0.0.0/8, 127.0.0.1, \"fd00::/8\", \"::1\"]\n"
                 "  process_scope: netns\n");
    struct fl_guardrails g;
    fl_guardrails_defaults(&g);
    struct fl_agent_file_config fc;
    char err[512] = "";
    assert_int_equal(fl_agent_config_load(path, &fc, &g, err, sizeof(err)), 0);
    assert_string_equal(err, "");

    assert_true(fc.listen_set);
    assert_string_equal(fc.listen, "0.0.0.0:7411");
    assert_true(fc.state_dir_set);
    assert_string_equal(fc.state_dir, "/var/lib/faultline");
    assert_true(fc.lease_set);
    assert_int_equal(fc.lease_ms, 5000);
    assert_true(fc.max_connections_set);
    assert_int_equal(fc.max_connections, 16);

    /* the kernel's comm is 15 bytes: systemd-journald shows as systemd-journal */
    static const char *const names[] = {"sshd", "systemd-journal"};
    assert_list(g.protected_names, g.n_protected_names, names, 2);
    static const char *const paths[] = {"/var/tmp", "/tmp"};
    assert_list(g.fill_paths, g.n_fill_paths, paths, 2);
    assert_true(g.max_fill_percent == 90.0);
    assert_true(g.fill_reserve_bytes == 128ull << 20);
    assert_true(g.memory_reserve_bytes == 1ull << 30);
    assert_true(g.max_duration_ms == 30ull * 60 * 1000);
    assert_int_equal(g.max_cpu_workers, 8);
    assert_int_equal(g.max_faults, 10);
    assert_true(g.scope_netns);
    static const char *const ctls[] = {"10.0.0.0/8", "127.0.0.1", "fd00::/8", "::1"};
    assert_list(g.allowed_controllers, g.n_allowed_controllers, ctls, 4);
    assert_int_equal(g.agent_pid, getpid()); /* not the file's business */
    fl_guardrails_free(&g);
}

static void test_defaults_when_absent(void **state)
{
    (void)state;
    write_config("lease: 2s\nguardrails:\n  max_fill: 50%\n");
    struct fl_guardrails g;
    fl_guardrails_defaults(&g);
    char *sshd = g.protected_names[0];
    struct fl_agent_file_config fc;
    char err[512];
    assert_int_equal(fl_agent_config_load(path, &fc, &g, err, sizeof(err)), 0);
    assert_false(fc.listen_set);
    assert_false(fc.state_dir_set);
    assert_false(fc.max_connections_set);
    assert_true(fc.lease_set);
    assert_int_equal(fc.lease_ms, 2000);
    assert_true(g.max_fill_percent == 50.0);
    g.max_fill_percent = 95.0;
    assert_defaults(&g);
    assert_ptr_equal(g.protected_names[0], sshd); /* a list not named is kept as it was */
    fl_guardrails_free(&g);
}

static void test_empty_files(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "",
        "# nothing here\n   \n# at all\n",
        "---\n",
        "guardrails:\n",
        "guardrails: ~\n",
        "listen: 0.0.0.0:7411\n", /* and one that sets only a non-guardrail */
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        write_config(texts[i]);
        struct fl_guardrails g;
        fl_guardrails_defaults(&g);
        struct fl_agent_file_config fc;
        memset(&fc, 0xff, sizeof(fc));
        char err[512] = "";
        int rc = fl_agent_config_load(path, &fc, &g, err, sizeof(err));
        if (rc != 0)
            fail_msg("'%s': %d %s", texts[i], rc, err);
        if (i < 5)
            assert_nothing_set(&fc);
        assert_defaults(&g);
        fl_guardrails_free(&g);
    }
}

static void test_lists_replace_defaults(void **state)
{
    (void)state;
    write_config("guardrails:\n"
                 "  protected_processes: []\n"
                 "  fill_paths:\n"
                 "    - /srv/scratch\n"
                 "  allowed_controllers: []\n");
    struct fl_guardrails g;
    fl_guardrails_defaults(&g);
    struct fl_agent_file_config fc;
    char err[512];
    assert_int_equal(fl_agent_config_load(path, &fc, &g, err, sizeof(err)), 0);
    assert_int_equal(g.n_protected_names, 0);
    static const char *const paths[] = {"/srv/scratch"};
    assert_list(g.fill_paths, g.n_fill_paths, paths, 1);
    assert_int_equal(g.n_allowed_controllers, 0);
    fl_guardrails_free(&g); /* LeakSanitizer: the defaults were freed on replace */

    /* a full list is allowed; one more is not */
    char text[2048];
    size_t used = (size_t)snprintf(text, sizeof(text), "guardrails:\n  protected_processes:\n");
    for (int i = 0; i < FL_GUARD_MAX_LIST; i++)
        used += (size_t)snprintf(text + used, sizeof(text) - used, "    - p%d\n", i);
    write_config(text);
    fl_guardrails_defaults(&g);
    assert_int_equal(fl_agent_config_load(path, &fc, &g, err, sizeof(err)), 0);
    assert_int_equal(g.n_protected_names, FL_GUARD_MAX_LIST);
    assert_string_equal(g.protected_names[FL_GUARD_MAX_LIST - 1], "p31");
    fl_guardrails_free(&g);

    snprintf(text + used, sizeof(text) - used, "    - one_too_many\n");
    write_config(text);
    fl_guardrails_defaults(&g);
    assert_int_equal(fl_agent_config_load(path, &fc, &g, err, sizeof(err)), -EINVAL);
    char want[512];
    snprintf(want, sizeof(want),
             "%s:3:5: protected_processes holds 33 entries; at most 32 are allowed", path);
    assert_string_equal(err, want);
    assert_defaults(&g);
    fl_guardrails_free(&g);
}

/* Each bad file: the error names the file, the line and column of the bad
 * value, and what is wrong; nothing the caller holds is touched. */
static void test_bad_values(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *want; /* after "PATH:" */
    } cases[] = {
        /* keys */
        {"lsiten: 0.0.0.0:1\n", "1:1: unknown key 'lsiten'; did you mean 'listen'?"},
        {"guardrails:\n  protcted_processes: [sshd]\n",
         "2:3: unknown key 'protcted_processes'; did you mean 'protected_processes'?"},
        {"guardrails:\n  max_memory: 1GiB\n",
         "2:3: unknown key 'max_memory'; known keys here: protected_processes, fill_paths, "
         "max_fill, fill_reserve, memory_reserve, max_duration, max_cpu_workers, "
         "allowed_controllers, process_scope, max_faults"},
        {"guardrails:\n  process_scope: container\n",
         "2:18: process_scope is host (every process) or netns (only processes in the agent's "
         "network namespace), not 'container'"},
        {"verbose: yes\n",
         "1:1: unknown key 'verbose'; known keys here: name, listen, state_dir, lease, "
         "max_connections, max_unauthenticated, "
         "max_unauthenticated_per_address, idle_timeout, guardrails"},
        {"max_unauthenticated: 0\n",
         "1:22: '0' is out of range: expected a whole number from 1 to 65536"},
        {"idle_timeout: 500ms\n", "1:15: idle_timeout takes a duration from 1s to 1h: an "
                                  "authenticated session that sends nothing for this long is "
                                  "closed"},
        {"- listen\n", "1:1: expected a mapping, found a list"},
        {"guardrails: [a]\n", "1:13: expected a mapping, found a list"},
        {"guardrails: yes\n", "1:13: expected a mapping, found 'yes'"},
        /* syntax */
        {"listen: [0.0.0.0\n", "2:1: did not find expected ',' or ']' (while parsing a flow "
                               "sequence at line 1, column 9)"},
        {"lease: 1s\nlease: 2s\n", "2:1: duplicate key 'lease' (first at line 1, column 1)"},
        /* listen */
        {"listen: localhost:7411\n",
         "1:9: listen takes ADDRESS:PORT with a numeric address, like 0.0.0.0:7411 or "
         "[::]:7411"},
        {"listen: 0.0.0.0:99999\n",
         "1:9: listen takes ADDRESS:PORT with a numeric address, like 0.0.0.0:7411 or "
         "[::]:7411"},
        {"listen:\n", "1:8: expected a value, found nothing"},
        /* state_dir */
        {"state_dir: var/lib/faultline\n",
         "1:12: state_dir must be an absolute path, like /var/lib/faultline"},
        {"state_dir: \"/var/lib/\\nfaultline\"\n",
         "1:12: the value holds a control character (byte 10); control characters are not "
         "allowed"},
        /* lease */
        {"lease: 500ms\n",
         "1:8: lease must be at least 1s: the controller sends a heartbeat each second"},
        {"lease: 0s\n",
         "1:8: lease must be at least 1s: the controller sends a heartbeat each second"},
        {"lease: 2h\n",
         "1:8: lease must be at most 1h: faults outlive a silent controller by this long"},
        {"lease: 5\n", "1:8: expected a duration like 250ms, 5s, 2m or 1h, found '5'"},
        /* max_connections */
        {"max_connections: 0\n",
         "1:18: '0' is out of range: expected a whole number from 1 to 65536"},
        {"max_connections: many\n", "1:18: expected a whole number from 1 to 65536, found 'many'"},
        /* protected_processes */
        {"guardrails:\n  protected_processes: sshd\n", "2:24: expected a list, found 'sshd'"},
        {"guardrails:\n  protected_processes: [sshd, /usr/sbin/cron]\n",
         "2:31: protected_processes takes process names as the kernel shows them (sshd), not "
         "paths"},
        {"guardrails:\n  protected_processes: [\"ss\\x1bhd\"]\n",
         "2:25: the value holds a control character (byte 3); control characters are not "
         "allowed"},
        {"guardrails:\n  protected_processes: [sshd, \"\"]\n",
         "2:31: expected a value, found an empty string"},
        /* fill_paths */
        {"guardrails:\n  fill_paths: [/var/tmp, tmp]\n",
         "2:26: fill path 'tmp' is not absolute; write a path that starts with /, like "
         "/var/tmp"},
        {"guardrails:\n  fill_paths:\n    - {path: /tmp}\n",
         "3:7: expected a value, found a mapping"},
        /* max_fill */
        {"guardrails:\n  max_fill: 0.5%\n",
         "2:13: max_fill takes a percentage from 1% to 100%, like 95%"},
        {"guardrails:\n  max_fill: 101%\n",
         "2:13: max_fill takes a percentage from 1% to 100%, like 95%"},
        {"guardrails:\n  max_fill: 95\n",
         "2:13: max_fill takes a percentage from 1% to 100%, like 95%"},
        {"guardrails:\n  max_fill: 2GiB\n",
         "2:13: max_fill takes a percentage from 1% to 100%, like 95%"},
        /* reserves */
        {"guardrails:\n  fill_reserve: 10%\n",
         "2:17: fill_reserve takes a size like 64MiB, not a percentage"},
        {"guardrails:\n  memory_reserve: 256MB\n",
         "2:19: expected a size like 512MiB, 2GiB or 90%, found '256MB'"},
        /* max_duration */
        {"guardrails:\n  max_duration: 0s\n", "2:17: max_duration must be more than 0s"},
        {"guardrails:\n  max_duration: forever\n",
         "2:17: expected a duration like 250ms, 5s, 2m or 1h, found 'forever'"},
        /* max_cpu_workers */
        {"guardrails:\n  max_cpu_workers: 0\n",
         "2:20: '0' is out of range: expected a whole number from 1 to 4096"},
        {"guardrails:\n  max_cpu_workers: -1\n",
         "2:20: expected a whole number from 1 to 4096, found '-1'"},
        /* max_faults */
        {"guardrails:\n  max_faults: 0\n",
         "2:15: '0' is out of range: expected a whole number from 1 to 65536"},
        {"guardrails:\n  max_faults: 65537\n",
         "2:15: '65537' is out of range: expected a whole number from 1 to 65536"},
        /* allowed_controllers */
        {"guardrails:\n  allowed_controllers: [controller.example.com]\n",
         "2:25: allowed_controllers: 'controller.example.com' is not an IP address or CIDR such "
         "as 10.0.0.0/8, 192.0.2.7 or fd00::/64 (host names are not resolved)"},
        {"guardrails:\n  allowed_controllers: [10.0.0.0/33]\n",
         "2:25: allowed_controllers: '10.0.0.0/33' has a bad prefix length: an IPv4 prefix is "
         "/0 to /32"},
        {"guardrails:\n  allowed_controllers: [\"fd00::/129\"]\n",
         "2:25: allowed_controllers: 'fd00::/129' has a bad prefix length: an IPv6 prefix is "
         "/0 to /128"},
        {"guardrails:\n  allowed_controllers: [10.0.0.0/]\n",
         "2:25: allowed_controllers: '10.0.0.0/' has a bad prefix length: an IPv4 prefix is "
         "/0 to /32"},
        {"guardrails:\n  allowed_controllers: [10.0.0.0/+8]\n",
         "2:25: allowed_controllers: '10.0.0.0/+8' has a bad prefix length: an IPv4 prefix is "
         "/0 to /32"},
        {"guardrails:\n  allowed_controllers: [10.1.2.3/8]\n",
         "2:25: allowed_controllers: '10.1.2.3/8' has bits set after the prefix; did you mean "
         "10.0.0.0/8?"},
        {"guardrails:\n  allowed_controllers: [\"fd00::1/8\"]\n",
         "2:25: allowed_controllers: 'fd00::1/8' has bits set after the prefix; did you mean "
         "fd00::/8?"},
        {"guardrails:\n  allowed_controllers: [/8]\n",
         "2:25: allowed_controllers: '/8' is not an IP address or CIDR such as 10.0.0.0/8, "
         "192.0.2.7 or fd00::/64 (host names are not resolved)"},
        /* a good list first, then a bad value: the list must not leak */
        {"guardrails:\n  protected_processes: [a, b]\n  fill_paths: [/x]\n  max_fill: 0%\n",
         "4:13: max_fill takes a percentage from 1% to 100%, like 95%"},
        /* refused by the YAML layer */
        {"lease: &l 5s\n",
         "1:8: anchors and aliases (&name, *name) are not supported; write the value out"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_config(cases[i].text);
        struct fl_guardrails g, before;
        fl_guardrails_defaults(&g);
        before = g;
        struct fl_agent_file_config fc, fc_before;
        memset(&fc, 0x5a, sizeof(fc));
        fc_before = fc;
        char err[512] = "", want[600];
        int rc = fl_agent_config_load(path, &fc, &g, err, sizeof(err));
        snprintf(want, sizeof(want), "%s:%s", path, cases[i].want);
        if (rc >= 0 || strcmp(err, want) != 0)
            fail_msg("case %zu: got %d\n  '%s'\nwant\n  '%s'", i, rc, err, want);
        assert_memory_equal(&g, &before, sizeof(g)); /* not touched */
        assert_memory_equal(&fc, &fc_before, sizeof(fc));
        fl_guardrails_free(&g);
    }
}

/* a fill path goes by the request-text rule (common/text.h) */
static void test_long_fill_path(void **state)
{
    (void)state;
    static char text[FL_TEXT_MAX + 64];
    int n = snprintf(text, sizeof(text), "guardrails:\n  fill_paths: [/");
    memset(text + n, 'a', FL_TEXT_MAX);
    snprintf(text + n + FL_TEXT_MAX, sizeof(text) - (size_t)n - FL_TEXT_MAX, "]\n");
    write_config(text);
    struct fl_guardrails g;
    fl_guardrails_defaults(&g);
    struct fl_agent_file_config fc;
    char err[512] = "", want[600];
    assert_int_equal(fl_agent_config_load(path, &fc, &g, err, sizeof(err)), -EINVAL);
    snprintf(want, sizeof(want), "%s:2:16: fill path is over 4096 bytes", path);
    assert_string_equal(err, want);
    fl_guardrails_free(&g);
}

static void test_unreadable(void **state)
{
    (void)state;
    struct fl_guardrails g;
    fl_guardrails_defaults(&g);
    struct fl_agent_file_config fc;
    char err[512], want[600];
    unlink(path);
    assert_int_equal(fl_agent_config_load(path, &fc, &g, err, sizeof(err)), -ENOENT);
    snprintf(want, sizeof(want), "%s: No such file or directory", path);
    assert_string_equal(err, want);
    assert_int_equal(fl_agent_config_load(dir, &fc, &g, err, sizeof(err)), -EISDIR);
    assert_defaults(&g);
    fl_guardrails_free(&g);
}

static void test_addresses(void **state)
{
    (void)state;
    write_config("listen: \"[::]:7500\"\n"
                 "guardrails:\n"
                 "  allowed_controllers: [0.0.0.0/0, \"::/0\", 192.168.1.0/24, \"fe80::/10\", "
                 "10.0.0.7/32]\n");
    struct fl_guardrails g;
    fl_guardrails_defaults(&g);
    struct fl_agent_file_config fc;
    char err[512];
    assert_int_equal(fl_agent_config_load(path, &fc, &g, err, sizeof(err)), 0);
    assert_string_equal(fc.listen, "[::]:7500");
    assert_int_equal(g.n_allowed_controllers, 5);
    fl_guardrails_free(&g);

    write_config("listen: 127.0.0.1\n"); /* the port defaults, as on the command line */
    fl_guardrails_defaults(&g);
    assert_int_equal(fl_agent_config_load(path, &fc, &g, err, sizeof(err)), 0);
    assert_string_equal(fc.listen, "127.0.0.1");
    fl_guardrails_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_file),      cmocka_unit_test(test_defaults_when_absent),
        cmocka_unit_test(test_empty_files),    cmocka_unit_test(test_lists_replace_defaults),
        cmocka_unit_test(test_bad_values),     cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_long_fill_path), cmocka_unit_test(test_unreadable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
