/* The experiment loader: every example in experiments/ loads, and each kind of
 * mistake is reported as FILE:LINE:COL with the exact sentence. Test files are
 * written into a mkdtemp directory that the group teardown removes. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "controller/experiment/experiment.h"
#include "controller/experiment/faultspec.h"
#include "controller/experiment/inventory.h"

/* The examples; ctest runs from the build directory, so CMake should pass
 * -DFL_EXPERIMENTS_DIR="${CMAKE_SOURCE_DIR}/experiments". */
#ifndef FL_EXPERIMENTS_DIR
#define FL_EXPERIMENTS_DIR "experiments"
#endif

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/fl-experiment-XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        unlink(path);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char sub[512];
        snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
        remove_tree(sub);
    }
    closedir(d);
    rmdir(path);
}

static int teardown(void **state)
{
    (void)state;
    remove_tree(dir);
    return 0;
}

/* Writes text to dir/name and returns the path (static buffer per slot). */
static const char *write_file(const char *name, const char *text)
{
    static char paths[4][512];
    static int slot;
    char *path = paths[slot++ % 4];
    snprintf(path, 512, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
    return path;
}

static struct fl_experiment *load_ok(const char *path, const char *inventory)
{
    struct fl_experiment *e = NULL;
    char err[1024] = "";
    int rc = fl_experiment_load(path, inventory, &e, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s: unexpected error %d: %s", path, rc, err);
    assert_non_null(e);
    return e;
}

/* text as dir/e.yaml must fail with "dir/e.yaml:" + want. */
static void fails_with(const char *text, const char *inventory, const char *want)
{
    const char *path = write_file("e.yaml", text);
    struct fl_experiment *e = (struct fl_experiment *)(uintptr_t)0x1;
    char err[1024] = "";
    int rc = fl_experiment_load(path, inventory, &e, err, sizeof(err));
    char full[1024];
    snprintf(full, sizeof(full), "%s:%s", path, want);
    assert_int_equal(rc, -EINVAL);
    assert_string_equal(err, full);
    assert_ptr_equal(e, (struct fl_experiment *)(uintptr_t)0x1); /* untouched */
}

/* Lines 1-9: a valid head; each test adds from line 10 on. */
#define HEAD                                                                                       \
    "version: 1\n"                                                                                 \
    "name: t\n"                                                                                    \
    "inventory:\n"                                                                                 \
    "  hosts:\n"                                                                                   \
    "    web1: { address: 10.77.0.2, tags: [web, primary] }\n"                                     \
    "    web2: { address: 10.77.0.3, tags: [web] }\n"                                              \
    "probes:\n"                                                                                    \
    "  - name: frontend\n"                                                                         \
    "    http: { url: \"http://10.77.0.1/health\" }\n"

/* A probe for the tests whose head is not HEAD: an experiment needs one. */
#define PROBE "probes: [ { name: p, tcp: { address: \"10.77.0.1:80\" } } ]\n"

#define FAULT                                                                                      \
    "faults:\n"                                                                                    \
    "  - name: kill-nginx\n"                                                                       \
    "    target: { hosts: [web1] }\n"                                                              \
    "    kill_process: { name: nginx }\n"                                                          \
    "    duration: 30s\n"

/* ------------------------------------------------------------- examples */

static void examples_load(void **state)
{
    (void)state;
    DIR *d = opendir(FL_EXPERIMENTS_DIR);
    if (d == NULL)
        fail_msg("cannot open %s (run from the source tree or define FL_EXPERIMENTS_DIR)",
                 FL_EXPERIMENTS_DIR);
    struct dirent *de;
    int loaded = 0;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".yaml") != 0)
            continue;
        if (strcmp(de->d_name, "hosts.yaml") == 0) /* an inventory, not an experiment */
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", FL_EXPERIMENTS_DIR, de->d_name);
        struct fl_experiment *e = load_ok(path, NULL);
        assert_int_equal(e->version, 1);
        assert_true(e->n_faults > 0);
        for (size_t i = 0; i < e->n_faults; i++) {
            assert_int_equal(fl_faultspec_check(e->faults[i].spec, path, 0), 0);
            assert_true(e->faults[i].target.count >= 1);
        }
        fl_experiment_free(&e);
        assert_null(e);
        loaded++;
    }
    closedir(d);
    assert_true(loaded >= 5);
}

static void example_web_primary_crash(void **state)
{
    (void)state;
    struct fl_experiment *e = load_ok(FL_EXPERIMENTS_DIR "/web-primary-crash.yaml", NULL);
    assert_string_equal(e->name, "web-primary-crash");
    assert_int_equal(e->inventory.n_hosts, 2);
    assert_string_equal(e->inventory.hosts[0].name, "web1");
    assert_string_equal(e->inventory.hosts[0].address, "10.77.0.2");
    assert_int_equal(e->inventory.hosts[0].port, 7411);
    assert_string_equal(e->inventory.key_file, FL_EXPERIMENTS_DIR "/faultline.key");
    assert_true(e->objectives.has_rto);
    assert_int_equal(e->objectives.rto_ms, 5000);
    assert_false(e->objectives.has_rpo);
    assert_int_equal(e->n_probes, 1);
    const struct fl_probe_spec *p = &e->probes[0];
    assert_int_equal(p->type, FL_PROBE_HTTP);
    assert_string_equal(p->u.http.method, "GET");
    assert_int_equal(p->u.http.n_expect_status, 1);
    assert_int_equal(p->u.http.expect_status[0], 200);
    assert_int_equal(p->timeout_ms, 100);
    assert_int_equal(p->interval_ms, 100);
    assert_int_equal(p->rise, 2);
    assert_int_equal(p->fall, 3);
    assert_int_equal(e->n_steady_state, 1);
    const struct fl_fault *f = &e->faults[0];
    assert_string_equal(f->name, "kill-nginx");
    assert_string_equal(f->spec->name, "kill-nginx");
    assert_int_equal(f->spec->duration_ms, 10000);
    assert_string_equal(fl_faultspec_kind(f->spec), "kill_process");
    assert_int_equal(f->target.n_hosts, 1);
    assert_int_equal(f->target.hosts[0], 0);
    assert_int_equal(e->n_aborts, 2);
    assert_int_equal(e->aborts[0].type, FL_ABORT_UNHEALTHY);
    assert_int_equal(e->aborts[0].ms, 20000);
    assert_int_equal(e->aborts[1].type, FL_ABORT_MAX_DURATION);
    assert_int_equal(e->recovery.timeout_ms, 60000);
    fl_experiment_free(&e);
}

static void example_details(void **state)
{
    (void)state;
    /* lists of peers and ports, tcp address, exec argv, ssh defaults */
    struct fl_experiment *e = load_ok(FL_EXPERIMENTS_DIR "/db-replica-partition.yaml", NULL);
    assert_int_equal(e->inventory.hosts[1].port, 7412);
    assert_true(e->inventory.hosts[0].has_ssh);
    assert_string_equal(e->inventory.hosts[0].ssh.user, "ops");
    assert_string_equal(e->inventory.hosts[0].ssh.identity_file, "~/.ssh/faultline_ed25519");
    assert_string_equal(e->probes[0].u.tcp.host, "10.77.0.12");
    assert_int_equal(e->probes[0].u.tcp.port, 6432);
    assert_int_equal(e->probes[1].u.exec.argc, 5);
    assert_null(e->probes[1].u.exec.argv[5]);
    Faultline__NetworkDrop *nd = e->faults[0].spec->network_drop;
    assert_non_null(nd);
    assert_int_equal(e->faults[0].start_ms, 5000);
    fl_experiment_free(&e);

    /* headers, tags with count, recovery defaulting to the steady state */
    e = load_ok(FL_EXPERIMENTS_DIR "/disk-fill.yaml", NULL);
    assert_int_equal(e->probes[0].u.http.n_headers, 2);
    assert_string_equal(e->probes[0].u.http.headers[0], "Host: api.staging.internal");
    assert_string_equal(e->probes[0].u.http.body_contains, "\"status\":\"ok\"");
    assert_true(e->faults[0].target.by_tags);
    assert_int_equal(e->faults[0].target.n_hosts, 3);
    assert_int_equal(e->faults[0].target.count, 1);
    assert_int_equal(e->recovery.n_probes, 1);
    assert_int_equal(e->recovery.timeout_ms, 120000);
    fl_experiment_free(&e);

    /* inventory: hosts.yaml, relative to the experiment; percent rounds up */
    e = load_ok(FL_EXPERIMENTS_DIR "/resource-squeeze.yaml", NULL);
    assert_string_equal(e->inventory.path, FL_EXPERIMENTS_DIR "/hosts.yaml");
    assert_int_equal(e->inventory.n_hosts, 4);
    assert_string_equal(e->inventory.hosts[0].ssh.known_hosts, FL_EXPERIMENTS_DIR "/known_hosts");
    assert_string_equal(e->inventory.hosts[3].ssh.user, "admin");
    assert_int_equal(e->inventory.hosts[3].ssh.port, 22);
    assert_int_equal(e->faults[0].target.count, 2);
    fl_experiment_free(&e);
}

/* Issue 12 item 9: an experiment without probes measures nothing; it is
 * refused with what to use instead, at the faults key. */
static void no_probes_refused(void **state)
{
    (void)state;
    fails_with("version: 1\n"
               "name: t\n"
               "inventory:\n"
               "  hosts: { web1: { address: 10.77.0.2 } }\n"
               "faults:\n"
               "  - name: kill-nginx\n"
               "    target: { hosts: [web1] }\n"
               "    kill_process: { name: nginx }\n"
               "    duration: 30s\n",
               NULL,
               "6:3: the experiment has no probes, so a run could only inject and revert and "
               "never measure a recovery: add probes (and list the ones that must hold in "
               "steady_state); for a scripted injection without a verdict use `faultline "
               "inject` and `faultline revert`/`halt`");
}

/* Probes but no steady_state and no recovery.probes: every probe must
 * recover (else every run would end ABORTED, nothing measured). */
static void recovery_defaults_to_every_probe(void **state)
{
    (void)state;
    struct fl_experiment *e = load_ok(
        write_file("e.yaml", HEAD "  - name: db\n    tcp: { address: \"10.77.0.1:5432\" }\n" FAULT),
        NULL);
    assert_int_equal(e->n_steady_state, 0);
    assert_int_equal(e->recovery.n_probes, 2);
    assert_int_equal(e->recovery.probes[0], 0);
    assert_int_equal(e->recovery.probes[1], 1);
    fl_experiment_free(&e);
}

/* objectives.impact, and an rpo nothing can measure (issue 13) */
static void impact_and_rpo(void **state)
{
    (void)state;
    struct fl_experiment *e =
        load_ok(write_file("e.yaml", HEAD "objectives: { rto: 5s }\n" FAULT), NULL);
    assert_true(e->objectives.impact_required); /* the default with an rto */
    fl_experiment_free(&e);
    e = load_ok(write_file("e.yaml", HEAD FAULT), NULL);
    assert_false(e->objectives.impact_required); /* no rto: optional */
    fl_experiment_free(&e);
    e = load_ok(write_file("e.yaml", HEAD "objectives: { rto: 5s, impact: optional }\n" FAULT),
                NULL);
    assert_false(e->objectives.impact_required);
    assert_true(e->objectives.impact_set);
    fl_experiment_free(&e);
    fails_with(HEAD "objectives: { rto: 5s, impact: maybe }\n" FAULT, NULL,
               "10:32: impact must be required (a run whose faults had no visible effect fails) "
               "or optional (it passes as \"PASS (no impact)\")");
    fails_with(HEAD "objectives: { rto: 5s, rpo: 0s }\n" FAULT, NULL,
               "10:29: rpo cannot be measured without a write probe (postgres: or redis:) that "
               "writes during the run and reads back after it; add one, or remove rpo");
    /* with a write probe it loads */
    e = load_ok(write_file("e.yaml", HEAD "  - name: orders\n"
                                          "    postgres: { dsn: \"host=10.77.0.5 dbname=o\" }\n"
                                          "objectives: { rto: 5s, rpo: 0s }\n" FAULT),
                NULL);
    assert_true(e->objectives.has_rpo);
    assert_int_equal(e->probes[1].type, FL_PROBE_POSTGRES);
    assert_string_equal(e->probes[1].u.data.dsn, "host=10.77.0.5 dbname=o");
    fl_experiment_free(&e);
    /* a DSN the write client would refuse is refused at its line */
    fails_with(HEAD "  - name: orders\n"
                    "    postgres: { dsn: \"service=orders\" }\n" FAULT,
               NULL,
               "11:22: postgres dsn: service= is not supported: write the hosts, ports and "
               "connect_timeout in the DSN (the probe times each host itself)");
    e = load_ok(write_file("e.yaml", HEAD "  - name: cache\n"
                                          "    redis: { sentinels: [\"10.0.0.1:26379\"], "
                                          "master_name: mymaster, wait_replicas: 1 }\n" FAULT),
                NULL);
    assert_int_equal(e->probes[1].type, FL_PROBE_REDIS);
    assert_int_equal(e->probes[1].u.data.n_sentinels, 1);
    assert_int_equal(e->probes[1].u.data.wait_replicas, 1);
    fl_experiment_free(&e);
    fails_with(HEAD "  - name: cache\n    redis: { sentinels: [\"10.0.0.1:26379\"] }\n" FAULT, NULL,
               "11:25: sentinels need master_name: the name the sentinels monitor");
}

/* objectives.availability (issue 14) */
static void availability_objective(void **state)
{
    (void)state;
    struct fl_experiment *e =
        load_ok(write_file("e.yaml", HEAD "objectives: { rto: 5s, availability: { target: 99.95%, "
                                          "failures_per_year: 6 } }\n" FAULT),
                NULL);
    assert_true(e->objectives.has_availability);
    assert_true(e->objectives.avail_target > 0.99949 && e->objectives.avail_target < 0.99951);
    assert_true(e->objectives.avail_failures_per_year == 6);
    assert_int_equal(e->objectives.avail_redundancy, 1);
    fl_experiment_free(&e);
    e = load_ok(write_file("e.yaml", HEAD "objectives: { availability: { target: 0.999, mtbf: "
                                          "60d, redundancy: 2 } }\n" FAULT),
                NULL);
    assert_int_equal(e->objectives.avail_mtbf_ms, 60ull * 86400000ull);
    assert_int_equal(e->objectives.avail_redundancy, 2);
    fl_experiment_free(&e);
    fails_with(HEAD "objectives: { availability: { target: 100% , failures_per_year: 6 } }\n" FAULT,
               NULL, "10:39: target must be an availability below 100%, such as 99.95% or 0.9995");
    fails_with(HEAD "objectives: { availability: { target: 99.9% } }\n" FAULT, NULL,
               "10:29: availability needs failures_per_year: N or mtbf: DURATION (one of the "
               "two)");
}

static void minimal_defaults(void **state)
{
    (void)state;
    struct fl_experiment *e = load_ok(write_file("e.yaml", HEAD FAULT), NULL);
    assert_null(e->description);
    assert_null(e->inventory.key_file);
    assert_false(e->inventory.hosts[0].has_ssh);
    assert_int_equal(e->probes[0].interval_ms, 1000);
    assert_int_equal(e->probes[0].timeout_ms, 1000);
    assert_int_equal(e->n_steady_state, 0);
    assert_int_equal(e->faults[0].start_ms, 0);
    assert_int_equal(e->n_aborts, 0);
    assert_int_equal(e->recovery.timeout_ms, 60000);
    fl_experiment_free(&e);
    fl_experiment_free(&e); /* NULL: no-op */
    fl_experiment_free(NULL);
}

/* controller: { probe_threads } (issue 12 item 4): 1..16, 0 when absent. */
static void probe_threads_option(void **state)
{
    (void)state;
    struct fl_experiment *e = load_ok(write_file("e.yaml", HEAD FAULT), NULL);
    assert_int_equal(e->probe_threads, 0);
    fl_experiment_free(&e);
    e = load_ok(write_file("e.yaml", HEAD FAULT "controller: { probe_threads: 3 }\n"), NULL);
    assert_int_equal(e->probe_threads, 3);
    fl_experiment_free(&e);
    fails_with(HEAD FAULT "controller: { probe_threads: 17 }\n", NULL,
               "15:30: '17' is out of range: expected a whole number from 1 to 16");
    fails_with(HEAD FAULT "controller: { probe_threads: 0 }\n", NULL,
               "15:30: '0' is out of range: expected a whole number from 1 to 16");
    fails_with(HEAD FAULT "controller: { threads: 2 }\n", NULL,
               "15:15: unknown key 'threads'; known keys here: probe_threads");
}

/* ---------------------------------------------------------------- errors */

static void unknown_key(void **state)
{
    (void)state;
    fails_with(HEAD "steady_stat: [frontend]\n" FAULT, NULL,
               "10:1: unknown key 'steady_stat'; did you mean 'steady_state'?");
    fails_with(HEAD "faults:\n"
                    "  - name: f\n"
                    "    target: { hosts: [web1] }\n"
                    "    kill_proces: { name: nginx }\n"
                    "    duration: 30s\n",
               NULL, "13:5: unknown key 'kill_proces'; did you mean 'kill_process'?");
    fails_with(HEAD FAULT "recovery: { probes: [frontend], timout: 5s }\n", NULL,
               "15:33: unknown key 'timout'; did you mean 'timeout'?");
}

static void bad_duration(void **state)
{
    (void)state;
    fails_with(HEAD "faults:\n"
                    "  - name: f\n"
                    "    target: { hosts: [web1] }\n"
                    "    kill_process: { name: nginx }\n"
                    "    duration: 30\n",
               NULL, "14:15: expected a duration like 250ms, 5s, 2m or 1h, found '30'");
    fails_with(HEAD FAULT "abort_when:\n  - { probe: frontend, unhealthy_for: soon }\n", NULL,
               "16:39: expected a duration like 250ms, 5s, 2m or 1h, found 'soon'");
}

static void bad_size(void **state)
{
    (void)state;
    fails_with(HEAD "faults:\n"
                    "  - name: f\n"
                    "    target: { tags: [web], percent: 150% }\n"
                    "    cpu_stress: { load: 50% }\n"
                    "    duration: 30s\n",
               NULL,
               "12:37: percentage '150%' is out of range: expected more than 0% and at most "
               "100%");
    /* a size as a fault parameter: faultspec's sentence, at the value */
    const char *text = HEAD "faults:\n"
                            "  - name: f\n"
                            "    target: { hosts: [web1] }\n"
                            "    memory_stress: { size: 12XB }\n"
                            "    duration: 30s\n";
    char want[512], msg[400];
    Faultline__FaultSpec *spec = fl_faultspec_new("memory_stress", msg, sizeof(msg));
    assert_non_null(spec);
    assert_int_equal(fl_faultspec_set(spec, "size", "12XB", msg, sizeof(msg)), -EINVAL);
    fl_faultspec_free(spec);
    snprintf(want, sizeof(want), "13:28: %s", msg);
    fails_with(text, NULL, want);
}

static void missing_required(void **state)
{
    (void)state;
    fails_with(HEAD "faults:\n"
                    "  - name: f\n"
                    "    target: { hosts: [web1] }\n"
                    "    kill_process: { name: nginx }\n",
               NULL, "11:5: missing required key 'duration': every fault ends by itself");
    fails_with("version: 1\n"
               "name: t\n"
               "inventory:\n"
               "  hosts:\n"
               "    web1: { address: 10.77.0.2 }\n"
               "probes:\n"
               "  - name: p\n"
               "    http: { method: GET }\n" FAULT,
               NULL, "8:11: missing required key 'url'");
    fails_with("version: 1\nname: t\n" FAULT, NULL,
               "1:1: missing required key 'inventory' (or pass --inventory FILE)");
    fails_with("", NULL,
               "1:1: the file is empty: an experiment needs version, name, inventory and faults");
}

static void unknown_probe(void **state)
{
    (void)state;
    fails_with(HEAD "steady_state: [frontnd]\n" FAULT, NULL,
               "10:16: unknown probe 'frontnd'; did you mean 'frontend'?");
    fails_with(HEAD FAULT "abort_when:\n  - { probe: backend, unhealthy_for: 5s }\n", NULL,
               "16:14: unknown probe 'backend'");
    fails_with(HEAD FAULT "recovery: { probes: [fronted] }\n", NULL,
               "15:22: unknown probe 'fronted'; did you mean 'frontend'?");
}

static void unknown_host(void **state)
{
    (void)state;
    char want[512];
    snprintf(want, sizeof(want),
             "12:29: unknown host 'web3': not in the inventory (%s/e.yaml); did you mean 'web1'?",
             dir);
    fails_with(HEAD "faults:\n"
                    "  - name: f\n"
                    "    target: { hosts: [web1, web3] }\n"
                    "    kill_process: { name: nginx }\n"
                    "    duration: 30s\n",
               NULL, want);
}

static void tag_matches_nothing(void **state)
{
    (void)state;
    char want[512];
    snprintf(want, sizeof(want),
             "12:22: no host in the inventory (%s/e.yaml) has the tag 'primry'; did you mean "
             "'primary'?",
             dir);
    fails_with(HEAD "faults:\n"
                    "  - name: f\n"
                    "    target: { tags: [primry] }\n"
                    "    kill_process: { name: nginx }\n"
                    "    duration: 30s\n",
               NULL, want);
}

static void count_too_large(void **state)
{
    (void)state;
    fails_with(HEAD "faults:\n"
                    "  - name: f\n"
                    "    target: { tags: [web], count: 3 }\n"
                    "    kill_process: { name: nginx }\n"
                    "    duration: 30s\n",
               NULL, "12:35: count 3 is more than the 2 hosts tagged web");
}

static void duplicate_names(void **state)
{
    (void)state;
    fails_with(HEAD "  - name: frontend\n"
                    "    tcp: { host: 10.77.0.1, port: 80 }\n" FAULT,
               NULL,
               "10:11: duplicate probe name 'frontend' (first at line 8): names must be "
               "unique");
    fails_with(HEAD FAULT "  - name: kill-nginx\n"
                          "    target: { hosts: [web2] }\n"
                          "    kill_process: { name: nginx }\n"
                          "    duration: 30s\n",
               NULL,
               "15:11: duplicate fault name 'kill-nginx' (first at line 11): names must be "
               "unique");
    /* hosts are a mapping: yamldoc refuses the duplicate key itself */
    const char *path = write_file("e.yaml", "version: 1\n"
                                            "name: t\n"
                                            "inventory:\n"
                                            "  hosts:\n"
                                            "    web1: { address: 10.77.0.2 }\n"
                                            "    web1: { address: 10.77.0.3 }\n" FAULT);
    struct fl_experiment *e = NULL;
    char err[1024];
    assert_int_equal(fl_experiment_load(path, NULL, &e, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "e.yaml:6:5: "));
    assert_null(e);
}

static void two_kinds(void **state)
{
    (void)state;
    fails_with(HEAD "faults:\n"
                    "  - name: f\n"
                    "    target: { hosts: [web1] }\n"
                    "    kill_process: { name: nginx }\n"
                    "    pause_process: { name: nginx }\n"
                    "    duration: 30s\n",
               NULL,
               "14:5: fault 'f' has two kinds, kill_process and pause_process: make two "
               "faults");
    fails_with(HEAD "faults:\n"
                    "  - name: f\n"
                    "    target: { hosts: [web1] }\n"
                    "    duration: 30s\n",
               NULL,
               "11:5: fault 'f' needs a kind: one of kill_process, pause_process, "
               "network_drop, disk_fill, cpu_stress, memory_stress");
}

static void bad_fault_parameter(void **state)
{
    (void)state;
    char msg[400], want[512];
    Faultline__FaultSpec *spec = fl_faultspec_new("kill_process", msg, sizeof(msg));
    assert_non_null(spec);
    assert_int_equal(fl_faultspec_set(spec, "signal", "BOGUS", msg, sizeof(msg)), -EINVAL);
    snprintf(want, sizeof(want), "15:15: %s", msg);
    fails_with(HEAD "faults:\n"
                    "  - name: f\n"
                    "    target: { hosts: [web1] }\n"
                    "    kill_process:\n"
                    "      name: nginx\n"
                    "      signal: BOGUS\n"
                    "    duration: 30s\n",
               NULL, want);
    /* a parameter of another kind: faultspec's sentence, at the key */
    assert_int_equal(fl_faultspec_set(spec, "peers", "x", msg, sizeof(msg)), -EINVAL);
    snprintf(want, sizeof(want), "13:34: %s", msg);
    fails_with(HEAD "faults:\n"
                    "  - name: f\n"
                    "    target: { hosts: [web1] }\n"
                    "    kill_process: { name: nginx, peers: x }\n"
                    "    duration: 30s\n",
               NULL, want);
    fl_faultspec_free(spec);
    /* one list item of ports: the item's position */
    spec = fl_faultspec_new("network_drop", msg, sizeof(msg));
    assert_non_null(spec);
    assert_int_equal(fl_faultspec_set(spec, "ports", "70000", msg, sizeof(msg)), -EINVAL);
    fl_faultspec_free(spec);
    snprintf(want, sizeof(want), "13:48: %s", msg);
    fails_with(HEAD "faults:\n"
                    "  - name: f\n"
                    "    target: { hosts: [web1] }\n"
                    "    network_drop: { protocol: tcp, ports: [80, 70000] }\n"
                    "    duration: 30s\n",
               NULL, want);
    /* a check over several parameters (no selector): at the kind */
    spec = fl_faultspec_new("kill_process", msg, sizeof(msg));
    assert_non_null(spec);
    spec->duration_ms = 30000;
    assert_int_equal(fl_faultspec_check(spec, msg, sizeof(msg)), -EINVAL);
    fl_faultspec_free(spec);
    snprintf(want, sizeof(want), "13:5: %s", msg);
    fails_with(HEAD "faults:\n"
                    "  - name: f\n"
                    "    target: { hosts: [web1] }\n"
                    "    kill_process: { signal: TERM }\n"
                    "    duration: 30s\n",
               NULL, want);
}

static void version_two(void **state)
{
    (void)state;
    fails_with("version: 2\nname: t\n", NULL,
               "1:10: unsupported version 2: this faultline reads version 1");
}

static void ssh_probe_checked(void **state)
{
    (void)state;
    fails_with(HEAD "  - name: disk\n"
                    "    ssh: { host: web1, argv: [df] }\n" FAULT,
               NULL,
               "11:24: unknown key 'argv'; known keys here: host, command, expect_exit, "
               "timeout");
    const char *path = write_file("e.yaml", HEAD "  - name: disk\n"
                                                 "    ssh: { host: web3, command: df }\n" FAULT);
    struct fl_experiment *e = NULL;
    char err[1024] = "";
    assert_int_equal(fl_experiment_load(path, NULL, &e, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, ":11:18: unknown host 'web3': not in the inventory ("));
    assert_non_null(strstr(err, "did you mean 'web1'?"));
}

static void ssh_probe_takes_the_host_ssh_settings(void **state)
{
    (void)state;
    const char *path =
        write_file("e.yaml", "version: 1\n"
                             "name: t\n"
                             "inventory:\n"
                             "  ssh: { user: ops, port: 2222, known_hosts: kh }\n"
                             "  hosts:\n"
                             "    db1: { address: 10.77.0.5, ssh: { identity_file: ~/.ssh/id, "
                             "deploy_dir: /srv/fl } }\n"
                             "probes:\n"
                             "  - name: lag\n"
                             "    ssh: { host: db1, command: \"check-lag 5\", expect_exit: 2,"
                             " timeout: 700ms }\n"
                             "faults:\n"
                             "  - name: f\n"
                             "    target: { hosts: [db1] }\n"
                             "    kill_process: { name: postgres }\n"
                             "    duration: 10s\n");
    struct fl_experiment *e = load_ok(path, NULL);
    assert_string_equal(e->inventory.hosts[0].ssh.deploy_dir, "/srv/fl");
    const struct fl_probe_spec *p = &e->probes[0];
    assert_int_equal(p->type, FL_PROBE_SSH);
    assert_int_equal(p->timeout_ms, 700);
    assert_string_equal(p->u.ssh.host, "db1");
    assert_string_equal(p->u.ssh.address, "10.77.0.5");
    assert_int_equal(p->u.ssh.port, 2222);
    assert_string_equal(p->u.ssh.user, "ops");
    assert_string_equal(p->u.ssh.identity_file, "~/.ssh/id");
    assert_non_null(strstr(p->u.ssh.known_hosts, "/kh"));
    assert_string_equal(p->u.ssh.command, "check-lag 5");
    assert_int_equal(p->u.ssh.expect_exit, 2);
    struct fl_probe_spec copy;
    assert_int_equal(fl_probe_spec_copy(&copy, p), 0);
    assert_string_equal(copy.u.ssh.command, "check-lag 5");
    fl_probe_spec_free(&copy);
    fl_experiment_free(&e);
}

static void past_max_duration(void **state)
{
    (void)state;
    fails_with(HEAD "faults:\n"
                    "  - name: f\n"
                    "    target: { hosts: [web1] }\n"
                    "    kill_process: { name: nginx }\n"
                    "    start: 1m\n"
                    "    duration: 30s\n"
                    "abort_when:\n"
                    "  - { max_duration: 80s }\n",
               NULL,
               "15:15: fault 'f' runs past max_duration 1m20s (line 17): it starts at "
               "1m0s and lasts 30s");
}

static void inventory_option_wins(void **state)
{
    (void)state;
    const char *inv = write_file("other.yaml", "key_file: other.key\n"
                                               "hosts:\n"
                                               "  db1: { address: 10.77.0.10, tags: [db] }\n");
    char inv_path[512];
    snprintf(inv_path, sizeof(inv_path), "%s", inv);
    const char *text = HEAD "faults:\n"
                            "  - name: f\n"
                            "    target: { tags: [db] }\n"
                            "    kill_process: { name: postgres }\n"
                            "    duration: 30s\n";
    /* without --inventory: the inline hosts, which have no db tag */
    char want[1024];
    snprintf(want, sizeof(want), "12:22: no host in the inventory (%s/e.yaml) has the tag 'db'",
             dir);
    fails_with(text, NULL, want);
    /* with it: its hosts, and its key_file next to it */
    struct fl_experiment *e = load_ok(write_file("e.yaml", text), inv_path);
    assert_string_equal(e->inventory.path, inv_path);
    assert_int_equal(e->inventory.n_hosts, 1);
    assert_string_equal(e->inventory.hosts[0].name, "db1");
    char key[512];
    snprintf(key, sizeof(key), "%s/other.key", dir);
    assert_string_equal(e->inventory.key_file, key);
    fl_experiment_free(&e);
    /* errors in it name it */
    write_file("other.yaml", "hosts:\n  db1: { adress: 10.77.0.10 }\n");
    e = NULL;
    char err[1024];
    assert_int_equal(fl_experiment_load(write_file("e.yaml", text), inv_path, &e, err, sizeof(err)),
                     -EINVAL);
    snprintf(want, sizeof(want), "%s:2:10: unknown key 'adress'; did you mean 'address'?",
             inv_path);
    assert_string_equal(err, want);
    assert_null(e);
}

static void inventory_on_its_own(void **state)
{
    (void)state;
    char sub[512], want[1024];
    snprintf(sub, sizeof(sub), "%s/alone", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    const char *path = write_file("alone/hosts.yaml",
                                  "key_file: fl.key\n"
                                  "ssh: { user: ops, port: 2222 }\n"
                                  "hosts:\n"
                                  "  web1: { address: 10.77.0.2, tags: [web] }\n"
                                  "  db1: { address: \"[fd00::5]:7500\", ssh: { user: root } }\n");
    struct fl_inventory *inv = NULL;
    char err[1024];
    assert_int_equal(fl_inventory_load(path, &inv, err, sizeof(err)), 0);
    assert_string_equal(inv->path, path);
    snprintf(want, sizeof(want), "%s/alone/fl.key", dir);
    assert_string_equal(inv->key_file, want);
    assert_int_equal(inv->n_hosts, 2);
    assert_int_equal(fl_inventory_host(inv, "db1"), 1);
    assert_int_equal(fl_inventory_host(inv, "db2"), -1);
    assert_int_equal(inv->hosts[0].port, 7411);
    assert_string_equal(inv->hosts[0].tags[0], "web");
    assert_string_equal(inv->hosts[0].ssh.user, "ops");
    assert_string_equal(inv->hosts[1].address, "fd00::5");
    assert_int_equal(inv->hosts[1].port, 7500);
    assert_string_equal(inv->hosts[1].ssh.user, "root");
    assert_int_equal(inv->hosts[1].ssh.port, 2222);
    fl_inventory_free(&inv);
    assert_null(inv);
    fl_inventory_free(&inv); /* NULL: no-op */
    fl_inventory_free(NULL);

    /* errors as an experiment's, and *out untouched */
    write_file("alone/hosts.yaml", "hosts:\n  web1: { address: 10.77.0.2, port: 70000 }\n");
    assert_int_equal(fl_inventory_load(path, &inv, err, sizeof(err)), -EINVAL);
    assert_null(inv);
    assert_non_null(strstr(err, "hosts.yaml:2:"));
    write_file("alone/hosts.yaml", "");
    assert_int_equal(fl_inventory_load(path, &inv, err, sizeof(err)), -EINVAL);
    snprintf(want, sizeof(want), "%s:1:1: the inventory is empty: it needs hosts", path);
    assert_string_equal(err, want);
    snprintf(want, sizeof(want), "%s/alone/missing.yaml", dir);
    assert_true(fl_inventory_load(want, &inv, err, sizeof(err)) < 0);
    assert_null(inv);
}

static void key_file_relative(void **state)
{
    (void)state;
    char sub[512], key[512];
    snprintf(sub, sizeof(sub), "%s/inv", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    write_file("inv/hosts.yaml", "key_file: keys/fl.key\n"
                                 "ssh: { identity_file: id_ed25519 }\n"
                                 "hosts:\n"
                                 "  web1: { address: 10.77.0.2 }\n");
    /* a string inventory: relative to the experiment, key_file relative to it */
    struct fl_experiment *e =
        load_ok(write_file("e.yaml", "version: 1\n"
                                     "name: t\n"
                                     "inventory: inv/hosts.yaml\n" PROBE FAULT),
                NULL);
    snprintf(key, sizeof(key), "%s/inv/keys/fl.key", dir);
    assert_string_equal(e->inventory.key_file, key);
    snprintf(key, sizeof(key), "%s/inv/id_ed25519", dir);
    assert_string_equal(e->inventory.hosts[0].ssh.identity_file, key);
    fl_experiment_free(&e);
    /* inline: relative to the experiment; absolute kept */
    e = load_ok(write_file("e.yaml", "version: 1\n"
                                     "name: t\n"
                                     "inventory:\n"
                                     "  key_file: fl.key\n"
                                     "  hosts: { web1: { address: 10.77.0.2 } }\n" PROBE FAULT),
                NULL);
    snprintf(key, sizeof(key), "%s/fl.key", dir);
    assert_string_equal(e->inventory.key_file, key);
    fl_experiment_free(&e);
    e = load_ok(write_file("e.yaml", "version: 1\n"
                                     "name: t\n"
                                     "inventory:\n"
                                     "  key_file: /etc/faultline/fl.key\n"
                                     "  hosts: { web1: { address: 10.77.0.2 } }\n" PROBE FAULT),
                NULL);
    assert_string_equal(e->inventory.key_file, "/etc/faultline/fl.key");
    fl_experiment_free(&e);
}

static void probe_and_host_values(void **state)
{
    (void)state;
    fails_with("version: 1\n"
               "name: t\n"
               "inventory:\n"
               "  hosts:\n"
               "    web1: { address: \"10.77.0.2:7000\", port: 7001 }\n" PROBE FAULT,
               NULL, "5:46: the port is given twice: in the address and here; keep one");
    fails_with(HEAD "  - name: db\n"
                    "    tcp: { address: 10.77.0.5 }\n" FAULT,
               NULL, "11:21: expected HOST:PORT, such as 10.77.0.5:5432 or [fd00::5]:5432");
    fails_with(HEAD "  - name: x\n"
                    "    exec: { argv: \"pg_isready -h db\" }\n" FAULT,
               NULL, "11:19: argv is a list, run without a shell: [pg_isready, -h, 10.77.0.5]");
    fails_with(HEAD "  - name: x\n"
                    "    tcp: { address: \"10.77.0.5:1\", timeout: 1s }\n"
                    "    timeout: 2s\n" FAULT,
               NULL, "11:45: timeout is already set for this probe (line 12); keep one");
    struct fl_experiment *e =
        load_ok(write_file("e.yaml", "version: 1\n"
                                     "name: t\n"
                                     "inventory:\n"
                                     "  hosts:\n"
                                     "    web1: { address: \"[fd00::2]:7000\" }\n"
                                     "probes:\n"
                                     "  - name: x\n"
                                     "    tcp: { address: \"[fd00::5]:22\" }\n" FAULT),
                NULL);
    assert_string_equal(e->inventory.hosts[0].address, "fd00::2");
    assert_int_equal(e->inventory.hosts[0].port, 7000);
    assert_string_equal(e->probes[0].u.tcp.host, "fd00::5");
    assert_int_equal(e->probes[0].u.tcp.port, 22);
    fl_experiment_free(&e);
}

static void unreadable_file(void **state)
{
    (void)state;
    struct fl_experiment *e = NULL;
    char err[1024] = "";
    char path[512];
    snprintf(path, sizeof(path), "%s/missing.yaml", dir);
    assert_true(fl_experiment_load(path, NULL, &e, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "missing.yaml"));
    assert_null(e);
}

/* Not regular files: refused at load, by what they are, without waiting on a
 * FIFO for a writer that never comes. */
static void not_regular_files(void **state)
{
    (void)state;
    struct fl_experiment *e = NULL;
    char err[1024] = "", path[512], want[1100];
    alarm(10); /* a hang fails the test instead of stalling it */

    /* the experiment itself */
    snprintf(path, sizeof(path), "%s/fifo.yaml", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(fl_experiment_load(path, NULL, &e, err, sizeof(err)), -EINVAL);
    snprintf(want, sizeof(want), "%s is a FIFO, not a regular file", path);
    assert_string_equal(err, want);
    assert_null(e);

    /* an inventory, named by the experiment or given on its own */
    assert_int_equal(fl_experiment_load(write_file("e.yaml", "version: 1\n"
                                                             "name: t\n"
                                                             "inventory: fifo.yaml\n" PROBE FAULT),
                                        NULL, &e, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, want));
    assert_null(e);
    struct fl_inventory *inv = NULL;
    assert_int_equal(fl_inventory_load(path, &inv, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, want);
    assert_null(inv);

    /* key_file: a directory, or a FIFO, at the value */
    snprintf(path, sizeof(path), "%s/keydir", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(want, sizeof(want), "4:13: key file %s is a directory, not a regular file", path);
    fails_with("version: 1\n"
               "name: t\n"
               "inventory:\n"
               "  key_file: keydir\n"
               "  hosts: { web1: { address: 10.77.0.2 } }\n" PROBE FAULT,
               NULL, want);
    snprintf(path, sizeof(path), "%s/fifo.yaml", dir);
    snprintf(want, sizeof(want), "4:13: key file %s is a FIFO, not a regular file", path);
    fails_with("version: 1\n"
               "name: t\n"
               "inventory:\n"
               "  key_file: fifo.yaml\n"
               "  hosts: { web1: { address: 10.77.0.2 } }\n" PROBE FAULT,
               NULL, want);
    const char *hosts = write_file("hosts.yaml", "key_file: keydir\n"
                                                 "hosts: { web1: { address: 10.77.0.2 } }\n");
    assert_int_equal(fl_inventory_load(hosts, &inv, err, sizeof(err)), -EINVAL);
    snprintf(want, sizeof(want), "%s:1:11: key file %s/keydir is a directory, not a regular file",
             hosts, dir);
    assert_string_equal(err, want);
    assert_null(inv);

    /* a regular key file, or one not written yet, is fine */
    write_file("fl.key", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n");
    e = load_ok(write_file("e.yaml", "version: 1\n"
                                     "name: t\n"
                                     "inventory:\n"
                                     "  key_file: fl.key\n"
                                     "  hosts: { web1: { address: 10.77.0.2 } }\n" PROBE FAULT),
                NULL);
    fl_experiment_free(&e);
    e = load_ok(write_file("e.yaml", "version: 1\n"
                                     "name: t\n"
                                     "inventory:\n"
                                     "  key_file: not-yet.key\n"
                                     "  hosts: { web1: { address: 10.77.0.2 } }\n" PROBE FAULT),
                NULL);
    fl_experiment_free(&e);
    alarm(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(examples_load),
        cmocka_unit_test(example_web_primary_crash),
        cmocka_unit_test(example_details),
        cmocka_unit_test(minimal_defaults),
        cmocka_unit_test(probe_threads_option),
        cmocka_unit_test(no_probes_refused),
        cmocka_unit_test(impact_and_rpo),
        cmocka_unit_test(availability_objective),
        cmocka_unit_test(recovery_defaults_to_every_probe),
        cmocka_unit_test(unknown_key),
        cmocka_unit_test(bad_duration),
        cmocka_unit_test(bad_size),
        cmocka_unit_test(missing_required),
        cmocka_unit_test(unknown_probe),
        cmocka_unit_test(unknown_host),
        cmocka_unit_test(tag_matches_nothing),
        cmocka_unit_test(count_too_large),
        cmocka_unit_test(duplicate_names),
        cmocka_unit_test(two_kinds),
        cmocka_unit_test(bad_fault_parameter),
        cmocka_unit_test(version_two),
        cmocka_unit_test(ssh_probe_checked),
        cmocka_unit_test(ssh_probe_takes_the_host_ssh_settings),
        cmocka_unit_test(past_max_duration),
        cmocka_unit_test(inventory_option_wins),
        cmocka_unit_test(inventory_on_its_own),
        cmocka_unit_test(key_file_relative),
        cmocka_unit_test(probe_and_host_values),
        cmocka_unit_test(unreadable_file),
        cmocka_unit_test(not_regular_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
