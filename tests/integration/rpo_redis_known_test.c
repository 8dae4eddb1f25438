/* Known answers for the data loss faultline measures (issue 15), on the
 * Redis bed (tests/beds/redis.sh): a primary, a replica and three Sentinels,
 * each host a network namespace, each data host with its own agent; the
 * controller runs `faultline run` of a real experiment from the client host.
 *
 * The truth comes from the data, not from faultline: when the killed
 * redis-server exits, the bed copies its data directory (AOF with
 * appendfsync always: every write it acknowledged is in it) before anything
 * can restart it. After the run the test starts a redis-server ALONE over
 * that copy, in the test's own network namespace (it cannot reach the bed:
 * it never rejoins), reads this run's stream, and reads the stream of the
 * master the Sentinels name now. The seqs the old master holds and the new
 * one lacks are what the failover threw away.
 *
 *   async        the replica's link is cut (network_drop on the replica's
 *                host, 7 s), the primary is killed -9 1.5 s in, the
 *                Sentinels promote the replica. faultline's lost set must be exactly
 *                what the old master has and the new one lacks -- except
 *                that the write in flight at the kill may be in the old
 *                files without ever having been acknowledged: then it is the
 *                highest such seq, one past faultline's last lost one, and
 *                faultline must not count it. Its RPO must lie within one
 *                write interval of the truth computed from the stream
 *                entries' own times (the server's clock: entry ids are
 *                milliseconds): newest lost entry - newest entry the new
 *                master kept before the first lost one.
 *   wait         the same with wait_replicas: 1: the writes held back by
 *                the cut are in the old files and not on the new master
 *                (there are some, or the test proved nothing), and faultline
 *                acknowledged none of them: 0 lost, RPO 0, PASS.
 *   comeback     the Sentinels' down-after is raised past the outage; the
 *                primary is killed -9 and its supervisor restarts it 1 s
 *                later over its AOF: no failover (the Sentinels name it
 *                still), everything the killed process had is on it again,
 *                and faultline says 0 lost, though writes failed meanwhile.
 *
 * Each runs RUNS times; the spreads are printed. In the async and wait
 * runs the bed holds the killed primary down until the Sentinels have
 * promoted the replica (back sooner, it would still be named master and take
 * writes, and what the run tests would depend on a race); then it is released
 * and rejoins as a replica of the new master -- with WAIT 1, writes succeed
 * again only then -- and the next run starts from a healthy bed, with the
 * roles as they now are. */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/clock.h"
#include "tests/support/proc.h"

#define RUNS 3
/* The bed's Sentinels' failover-timeout: a Sentinel does not fail the same
 * master over again within twice that of its last failover. */
#define FAILOVER_TIMEOUT_MS 3000
#define INTERVAL_MS 100
#define SENTINELS "[\"10.79.0.21:26379\", \"10.79.0.22:26379\", \"10.79.0.23:26379\"]"
#define MAX_ENTRIES 20000

static char top[] = "/tmp/flrd-known.XXXXXX";
static char bed[300];
static char inventory[400];
static int n_run;
static uint64_t last_failover; /* fl_mono_ms() when the Sentinels last switched */

static char *arg(const char *a)
{
    return (char *)(uintptr_t)a;
}

static const char *addr_of(const char *host)
{
    return strcmp(host, "redis1") == 0 ? "10.79.0.11" : "10.79.0.12";
}

static const char *other(const char *host)
{
    return strcmp(host, "redis1") == 0 ? "redis2" : "redis1";
}

static int bed_cmd(char *out, size_t cap, int timeout_ms, ...)
{
    char *argv[40] = {arg(FL_BED_SCRIPT)};
    int n = 1;
    va_list ap;
    va_start(ap, timeout_ms);
    const char *a;
    while (n < 39 && (a = va_arg(ap, const char *)) != NULL)
        argv[n++] = arg(a);
    va_end(ap);
    argv[n] = NULL;
    return proc_run(argv, out, cap, timeout_ms);
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    int ok = fputs(text, f) >= 0;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* The host the Sentinels name as master once the bed is healthy again. */
static void wait_healthy(char *master, size_t cap)
{
    char out[4096];
    int rc = bed_cmd(out, sizeof(out), 100000, "wait-healthy", bed, "90", NULL);
    if (rc != 0)
        fail_msg("the bed is not healthy (%d): %s", rc, out);
    out[strcspn(out, "\n")] = '\0';
    assert_true(strcmp(out, "redis1") == 0 || strcmp(out, "redis2") == 0);
    snprintf(master, cap, "%.15s", out);
}

static unsigned last_crash(const char *host)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/%s/last-crash", bed, host);
    FILE *f = fopen(path, "r");
    unsigned n = 0;
    if (f != NULL) {
        if (fscanf(f, "%u", &n) != 1)
            n = 0;
        fclose(f);
    }
    return n;
}

/* ------------------------------------------------------------ streams */

struct entry {
    uint64_t ms; /* the entry id's milliseconds: the server's clock when it took the write */
    uint64_t seq;
};

struct stream {
    struct entry e[MAX_ENTRIES];
    size_t n;
};

static bool all_digits(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* Parses redis-cli's flat XRANGE output (id, then field and value lines)
 * into the entries of run run_id, in stream order. */
static void parse_xrange(const char *out, const char *run_id, struct stream *s)
{
    s->n = 0;
    char *copy = strdup(out);
    assert_non_null(copy);
    char *lines[7];
    int k = 0;
    uint64_t ms = 0;
    bool have = false;
    char *save = NULL;
    for (char *l = strtok_r(copy, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
        l[strcspn(l, "\r")] = '\0';
        char *dash = strchr(l, '-');
        if (dash != NULL && dash != l && all_digits(dash + 1)) {
            *dash = '\0';
            if (all_digits(l)) { /* an entry id: a new entry */
                ms = strtoull(l, NULL, 10);
                have = true;
                k = 0;
                continue;
            }
            *dash = '-';
        }
        if (!have || k >= 6)
            continue;
        lines[k++] = l;
        if (k == 6) {
            const char *run = NULL, *seq = NULL;
            for (int i = 0; i + 1 < 6; i += 2) {
                if (strcmp(lines[i], "run") == 0)
                    run = lines[i + 1];
                else if (strcmp(lines[i], "seq") == 0)
                    seq = lines[i + 1];
            }
            if (run != NULL && seq != NULL && strcmp(run, run_id) == 0) {
                assert_true(s->n < MAX_ENTRIES);
                s->e[s->n].ms = ms;
                s->e[s->n].seq = strtoull(seq, NULL, 10);
                s->n++;
            }
        }
    }
    free(copy);
}

static bool has_seq(const struct stream *s, uint64_t seq)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->e[i].seq == seq)
            return true;
    return false;
}

static char xout[4 << 20];

/* This run's entries on the bed's host (its redis-server now). */
static void read_bed_stream(const char *host, const char *key, const char *run_id, struct stream *s)
{
    int rc = bed_cmd(xout, sizeof(xout), 20000, "cli", bed, host, "XRANGE", key, "-", "+", NULL);
    if (rc != 0)
        fail_msg("XRANGE on %s failed (%d): %.500s", host, rc, xout);
    parse_xrange(xout, run_id, s);
}

/* This run's entries in a data directory, loaded by a redis-server started
 * alone: in this test's namespace, on loopback and a private port, no
 * replicaof, no Sentinel knows it. */
static void read_isolated_stream(const char *datadir, const char *key, const char *run_id,
                                 struct stream *s)
{
    char port[8], log[400], portarg[8];
    uint16_t p = test_free_port();
    snprintf(port, sizeof(port), "%u", p);
    snprintf(portarg, sizeof(portarg), "%u", p);
    snprintf(log, sizeof(log), "%s/isolated-%u.log", top, p);
    char *argv[] = {arg("/usr/bin/redis-server"),
                    arg("--port"),
                    portarg,
                    arg("--bind"),
                    arg("127.0.0.1"),
                    arg("--dir"),
                    arg(datadir),
                    arg("--appendonly"),
                    arg("yes"),
                    arg("--save"),
                    arg(""),
                    arg("--daemonize"),
                    arg("no"),
                    NULL};
    pid_t pid = proc_start(argv, log);
    assert_true(pid > 0);
    char *cli[] = {
        arg("/usr/bin/redis-cli"), arg("-h"), arg("127.0.0.1"), arg("-p"), port, arg("PING"), NULL};
    int up = 0;
    for (int i = 0; i < 200 && !up; i++) {
        char o[256] = "";
        up = proc_run(cli, o, sizeof(o), 5000) == 0 && strncmp(o, "PONG", 4) == 0;
        if (!up)
            sleep_ms(50);
    }
    char *xr[] = {arg("/usr/bin/redis-cli"),
                  arg("-h"),
                  arg("127.0.0.1"),
                  arg("-p"),
                  port,
                  arg("XRANGE"),
                  arg(key),
                  arg("-"),
                  arg("+"),
                  NULL};
    int rc = up ? proc_run(xr, xout, sizeof(xout), 20000) : -1;
    proc_stop(pid, SIGKILL, 5000);
    if (!up)
        fail_msg("the isolated redis-server over %s did not answer (see %s)", datadir, log);
    if (rc != 0)
        fail_msg("XRANGE on the isolated copy failed (%d): %.500s", rc, xout);
    parse_xrange(xout, run_id, s);
}

/* --------------------------------------------------------------- runs */

static const char *jstr(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL ? s : "";
}

static json_int_t jint(json_t *obj, const char *key)
{
    return json_integer_value(json_object_get(obj, key));
}

static json_t *data_of(json_t *run)
{
    return json_object_get(json_array_get(json_object_get(run, "probes"), 0), "data");
}

/* The host all three Sentinels name as master now, or "" if they do not agree. */
static void current_master(char *master, size_t cap)
{
    char out[512];
    int rc = bed_cmd(out, sizeof(out), 10000, "master", bed, NULL);
    out[strcspn(out, "\n")] = '\0';
    snprintf(master, cap, "%.15s", rc == 0 ? out : "");
}

/* Runs the experiment from the client host; its run.json, or a failure.
 * held: the host whose redis-server the bed holds down; it is released
 * once the Sentinels name another master (a failover done: the killed
 * server's files are copied by then), so that it rejoins as a replica
 * while the run goes on. */
static json_t *run_experiment(const char *name, const char *yaml, const char *held, int *rc)
{
    char path[400], reports[400], report[500], log[400];
    snprintf(path, sizeof(path), "%s/%s-%d.yaml", top, name, ++n_run);
    snprintf(reports, sizeof(reports), "%s/reports-%d", top, n_run);
    snprintf(log, sizeof(log), "%s/run-%d.log", top, n_run);
    assert_int_equal(write_file(path, yaml), 0);
    char *argv[] = {arg(FL_BED_SCRIPT), arg("exec"),         bed,     arg("client"),
                    arg(FL_CTL_BIN),    arg("run"),          path,    arg("--inventory"),
                    inventory,          arg("--report-dir"), reports, NULL};
    pid_t ctl = proc_start(argv, log); /* ip netns exec execs: ctl is the controller */
    assert_true(ctl > 0);
    if (held != NULL) {
        char now[16] = "";
        uint64_t t0 = fl_mono_ms();
        while (fl_mono_ms() - t0 < 60000 && proc_state_of(ctl) != 0 && proc_state_of(ctl) != 'Z') {
            current_master(now, sizeof(now));
            if (now[0] != '\0' && strcmp(now, held) != 0) {
                last_failover = fl_mono_ms();
                break;
            }
            sleep_ms(100);
        }
        char out[512];
        assert_int_equal(bed_cmd(out, sizeof(out), 10000, "release", bed, held, NULL), 0);
    }
    *rc = proc_wait(ctl, 120000);
    static char out[65536];
    FILE *lf = fopen(log, "r");
    size_t n = lf != NULL ? fread(out, 1, sizeof(out) - 1, lf) : 0;
    out[n] = '\0';
    if (lf != NULL)
        fclose(lf);
    if (getenv("FL_TEST_VERBOSE"))
        fputs(out, stderr);
    snprintf(report, sizeof(report), "%s/run.json", reports);
    json_error_t jerr;
    json_t *j = json_load_file(report, 0, &jerr);
    if (j == NULL)
        fail_msg("%s: no run.json (%s); the run said:\n%s", name, jerr.text, out);
    json_t *d = data_of(j);
    if (!json_is_object(d) || !json_is_null(json_object_get(d, "error"))) {
        fprintf(stderr, "%s\n", out);
        fail_msg("%s: no data measured: %s", name, jstr(d, "error"));
    }
    printf("[ run      ] %s: %s, %s; %s\n", name, jstr(j, "verdict"), jstr(j, "reason"),
           jstr(d, "summary"));
    fflush(stdout);
    return j;
}

/* faultline's lost seqs, from run.json's ranges (all listed: asserted). */
static size_t lost_seqs(json_t *d, uint64_t *out, size_t cap)
{
    json_t *ranges = json_object_get(d, "lost_ranges");
    assert_int_equal(jint(d, "lost_ranges_total"), (json_int_t)json_array_size(ranges));
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(ranges); i++) {
        json_t *g = json_array_get(ranges, i);
        for (json_int_t s = jint(g, "first"); s <= jint(g, "last"); s++) {
            assert_true(n < cap);
            out[n++] = (uint64_t)s;
        }
    }
    assert_int_equal((json_int_t)n, jint(d, "lost"));
    return n;
}

static const char experiment_yaml[] = "version: 1\n"
                                      "name: %s\n"
                                      "objectives: { rpo: 0s }\n"
                                      "probes:\n"
                                      "  - name: orders\n"
                                      "    redis:\n"
                                      "      sentinels: " SENTINELS "\n"
                                      "      master_name: flrd\n"
                                      "      key: %s\n"
                                      "      wait_replicas: %u\n"
                                      "    interval: 100ms\n"
                                      "    timeout: 500ms\n"
                                      "    rise: 2\n"
                                      "    fall: 1\n"
                                      "steady_state: [orders]\n"
                                      "faults:\n"
                                      "%s"
                                      "  - name: kill-primary\n"
                                      "    target: { hosts: [%s] }\n"
                                      "    kill_process: { name: redis-server }\n"
                                      "    start: %s\n"
                                      "    duration: 1s\n"
                                      "recovery: { probes: [orders], timeout: 30s }\n";

struct outcome {
    json_t *run;
    int rc;
    char master[16]; /* before the run */
    char new_master[16];
    char key[64];
    struct stream old_data;      /* the killed process's files, read alone */
    struct stream now;           /* the master after the run */
    uint64_t truth[MAX_ENTRIES]; /* in old_data, not in now: stream order */
    size_t n_truth;
};

static struct outcome oc;

/* One run: kill the current primary (after cutting its replica's link when
 * cut), then read the truth. hold: keep the killed primary down until the
 * truth is read. */
static void run_once(const char *name, unsigned wait_replicas, bool cut, bool hold)
{
    /* a Sentinel would put this failover off until twice its
     * failover-timeout after the last: the cut would end first */
    while (last_failover != 0 && fl_mono_ms() - last_failover < 2 * FAILOVER_TIMEOUT_MS + 500)
        sleep_ms(100);
    wait_healthy(oc.master, sizeof(oc.master));
    const char *m = oc.master, *r = other(m);
    unsigned crashes = last_crash(m);
    char out[4096];
    if (hold)
        assert_int_equal(bed_cmd(out, sizeof(out), 10000, "hold", bed, m, NULL), 0);
    char faults[1024] = "";
    if (cut)
        /* the replica's link alone, on the replica's host: to and from the
         * primary's redis port; Sentinels and clients still reach both.
         * Until well after the promotion (2-3 s after the kill): the killed
         * primary's kernel keeps retransmitting the replication stream it
         * had queued, and a cut that ended before the promotion would let
         * the replica receive it after all */
        snprintf(faults, sizeof(faults),
                 "  - name: cut-replication\n"
                 "    target: { hosts: [%s] }\n"
                 "    network_drop: { direction: both, peers: [%s/32], protocol: tcp, "
                 "ports: [6379] }\n"
                 "    duration: 7s\n",
                 r, addr_of(m));
    snprintf(oc.key, sizeof(oc.key), "flrd:%s:%d", name, n_run + 1);
    char yaml[4096];
    snprintf(yaml, sizeof(yaml), experiment_yaml, name, oc.key, wait_replicas, faults, m,
             cut ? "1500ms" : "1s");
    oc.run = run_experiment(name, yaml, hold ? m : NULL, &oc.rc);
    const char *run_id = jstr(oc.run, "run_id");
    assert_true(run_id[0] != '\0');

    /* the killed process's files, as the bed copied them when it exited */
    for (int i = 0; i < 200 && last_crash(m) == crashes; i++)
        sleep_ms(50);
    unsigned crash = last_crash(m);
    assert_true(crash > crashes);
    char dir[500];
    snprintf(dir, sizeof(dir), "%s/%s/crash-%u", bed, m, crash);
    read_isolated_stream(dir, oc.key, run_id, &oc.old_data);

    current_master(oc.new_master, sizeof(oc.new_master));
    if (oc.new_master[0] == '\0')
        fail_msg("the Sentinels do not agree on a master after the run");
    read_bed_stream(oc.new_master, oc.key, run_id, &oc.now);
    oc.n_truth = 0;
    for (size_t i = 0; i < oc.old_data.n; i++)
        if (!has_seq(&oc.now, oc.old_data.e[i].seq))
            oc.truth[oc.n_truth++] = oc.old_data.e[i].seq;
    printf("[ truth    ] %s: the killed %s's files hold %zu writes of this run, %s (now master) "
           "%zu; %zu only in the old files\n",
           name, m, oc.old_data.n, oc.new_master, oc.now.n, oc.n_truth);
    fflush(stdout);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void print_spread(const char *what, const char *unit, const int64_t *v, size_t n)
{
    int64_t s[RUNS];
    memcpy(s, v, n * sizeof(*v));
    qsort(s, n, sizeof(*s), cmp_i64);
    printf("[ spread   ] %s over %zu runs:", what, n);
    for (size_t i = 0; i < n; i++)
        printf(" %+lld", (long long)v[i]);
    printf(" %s; median %+lld, min %+lld, max %+lld\n", unit, (long long)s[n / 2], (long long)s[0],
           (long long)s[n - 1]);
    fflush(stdout);
}

/* ------------------------------------------------------- known answers */

static void test_async_loses_what_the_old_master_alone_has(void **state)
{
    (void)state;
    int64_t lost_n[RUNS], rpo_diff[RUNS], rpo_truth[RUNS];
    for (int k = 0; k < RUNS; k++) {
        run_once("async", 0, true, true);
        json_t *d = data_of(oc.run);
        assert_string_equal(oc.new_master, other(oc.master)); /* a failover happened */
        static uint64_t lost[MAX_ENTRIES];
        size_t n_lost = lost_seqs(d, lost, MAX_ENTRIES);
        /* the lost set is exactly what only the old files hold, but for the
         * write in flight at the kill: taken by the old master, never
         * answered -- the highest of them, one past faultline's last */
        size_t extra = oc.n_truth - n_lost;
        assert_true(oc.n_truth >= n_lost && extra <= 1);
        for (size_t i = 0; i < n_lost; i++)
            if (lost[i] != oc.truth[i])
                fail_msg("lost seq %llu by faultline, %llu by the data (position %zu)",
                         (unsigned long long)lost[i], (unsigned long long)oc.truth[i], i);
        if (extra == 1) {
            assert_true(n_lost > 0);
            assert_int_equal(oc.truth[n_lost], lost[n_lost - 1] + 1);
            printf("[ truth    ] async: seq %llu, in flight at the kill, is in the old files "
                   "but was never acknowledged\n",
                   (unsigned long long)oc.truth[n_lost]);
        }
        assert_true(n_lost >= 3); /* ~1.5 s of writes at 10 a second */
        /* the truth's RPO, from the entries' own (server) times: the newest
         * lost entry - the newest the new master kept before the first lost */
        uint64_t first_ms = 0, last_ms = 0, kept_ms = 0;
        for (size_t i = 0; i < oc.old_data.n; i++) {
            if (oc.old_data.e[i].seq == lost[0])
                first_ms = oc.old_data.e[i].ms;
            if (oc.old_data.e[i].seq == lost[n_lost - 1])
                last_ms = oc.old_data.e[i].ms;
        }
        for (size_t i = 0; i < oc.now.n; i++)
            if (oc.now.e[i].ms <= first_ms && oc.now.e[i].seq < lost[0])
                kept_ms = oc.now.e[i].ms;
        assert_true(first_ms > 0 && last_ms >= first_ms && kept_ms > 0);
        int64_t truth = (int64_t)(last_ms - kept_ms);
        int64_t measured = jint(oc.run, "rpo_ms");
        printf("[ measured ] async: %zu lost (seq %llu-%llu), RPO %lld ms (±%lld); truth from the "
               "data: %zu lost, RPO %lld ms\n",
               n_lost, (unsigned long long)lost[0], (unsigned long long)lost[n_lost - 1],
               (long long)measured, (long long)jint(d, "resolution_ms"), oc.n_truth,
               (long long)truth);
        fflush(stdout);
        assert_true(json_is_integer(json_object_get(oc.run, "rpo_ms")));
        assert_false(json_is_true(json_object_get(d, "rpo_lower_bound")));
        assert_true(llabs(measured - truth) <= INTERVAL_MS);
        assert_string_equal(jstr(oc.run, "verdict"), "fail");
        assert_int_equal(oc.rc, 1);
        lost_n[k] = (int64_t)n_lost;
        rpo_truth[k] = truth;
        rpo_diff[k] = measured - truth;
        json_decref(oc.run);
    }
    print_spread("async: writes lost", "writes", lost_n, RUNS);
    print_spread("async: RPO from the data", "ms", rpo_truth, RUNS);
    print_spread("async: RPO measured - RPO from the data", "ms", rpo_diff, RUNS);
}

static void test_wait_one_loses_nothing(void **state)
{
    (void)state;
    int64_t held[RUNS], acked[RUNS];
    for (int k = 0; k < RUNS; k++) {
        run_once("wait", 1, true, true);
        json_t *d = data_of(oc.run);
        assert_string_equal(oc.new_master, other(oc.master));
        /* the cut held writes back: the old master has writes the new one
         * lacks -- and faultline acknowledged none of them */
        assert_true(oc.n_truth >= 1);
        assert_int_equal(jint(d, "lost"), 0);
        assert_int_equal(jint(oc.run, "rpo_ms"), 0);
        /* the steady state's rise and the recovery's, at least */
        assert_true(jint(d, "acknowledged") >= 4);
        /* every acknowledged write is on the new master: survived =
         * acknowledged, and the new master holds at least that many */
        assert_int_equal(jint(d, "survived"), jint(d, "acknowledged"));
        assert_true((json_int_t)oc.now.n >= jint(d, "acknowledged"));
        printf("[ measured ] wait: 0 of %lld acknowledged writes lost; %zu writes the cut held "
               "back (in the old files only) were never acknowledged\n",
               (long long)jint(d, "acknowledged"), oc.n_truth);
        fflush(stdout);
        assert_string_equal(jstr(oc.run, "verdict"), "pass");
        assert_int_equal(oc.rc, 0);
        held[k] = (int64_t)oc.n_truth;
        acked[k] = jint(d, "acknowledged");
        json_decref(oc.run);
    }
    print_spread("wait 1: writes only in the old files, none acknowledged", "writes", held, RUNS);
    print_spread("wait 1: acknowledged writes, all kept", "writes", acked, RUNS);
}

static void set_down_after(const char *ms)
{
    char out[2048];
    int rc =
        bed_cmd(out, sizeof(out), 20000, "sentinel-set", bed, "down-after-milliseconds", ms, NULL);
    if (rc != 0)
        fail_msg("sentinel-set down-after-milliseconds %s: %s", ms, out);
}

static void test_comeback_loses_nothing(void **state)
{
    (void)state;
    int64_t failed[RUNS], acked[RUNS];
    /* the outage (restart after 1 s, an AOF of a few KiB) is far shorter
     * than this: the Sentinels never fail over */
    set_down_after("10000");
    for (int k = 0; k < RUNS; k++) {
        run_once("comeback", 0, false, false);
        json_t *d = data_of(oc.run);
        assert_string_equal(oc.new_master, oc.master); /* no failover */
        /* the truth: everything the killed process had is on it again */
        assert_int_equal(oc.n_truth, 0);
        assert_true(oc.old_data.n >= 5);
        assert_int_equal(jint(d, "lost"), 0);
        assert_int_equal(jint(oc.run, "rpo_ms"), 0);
        assert_int_equal(jint(d, "survived"), jint(d, "acknowledged"));
        /* and the outage was real: writes failed while it was down */
        json_t *m = json_object_get(oc.run, "measurements");
        assert_true(json_is_string(json_object_get(m, "impact_at")));
        json_t *probe = json_array_get(json_object_get(oc.run, "probes"), 0);
        json_int_t n_failed = 0;
        json_t *fails = json_object_get(probe, "failures");
        for (size_t i = 0; i < json_array_size(fails); i++)
            n_failed += jint(json_array_get(fails, i), "count");
        assert_true(n_failed >= 1);
        printf("[ measured ] comeback: 0 of %lld acknowledged writes lost; %lld failed while "
               "%s was down; the killed process's files held %zu, all on it again\n",
               (long long)jint(d, "acknowledged"), (long long)n_failed, oc.master, oc.old_data.n);
        fflush(stdout);
        assert_string_equal(jstr(oc.run, "verdict"), "pass");
        assert_int_equal(oc.rc, 0);
        failed[k] = n_failed;
        acked[k] = jint(d, "acknowledged");
        json_decref(oc.run);
    }
    set_down_after("1000");
    print_spread("comeback: writes failed during the outage", "writes", failed, RUNS);
    print_spread("comeback: acknowledged writes, all kept", "writes", acked, RUNS);
}

/* --------------------------------------------------------------- setup */

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(top) == NULL)
        return -1;
    snprintf(bed, sizeof(bed), "%s/bed", top);
    snprintf(inventory, sizeof(inventory), "%s/hosts.yaml", bed);
    static char out[65536];
    char owner[16]; /* should this test die, the bed's watcher takes it down */
    snprintf(owner, sizeof(owner), "%d", (int)getpid());
    uint64_t t0 = fl_mono_ms();
    int rc = bed_cmd(out, sizeof(out), 120000, "up", bed, FL_BUILD_DIR, owner, NULL);
    if (rc != 0) {
        fprintf(stderr, "the bed did not come up (%d):\n%s\n", rc, out);
        return -1;
    }
    printf("[ bed      ] up in %llu ms: %s", (unsigned long long)(fl_mono_ms() - t0), out);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    static char out[65536];
    uint64_t t0 = fl_mono_ms();
    int rc = bed_cmd(out, sizeof(out), 120000, "down", bed, NULL);
    if (rc != 0)
        fprintf(stderr, "the bed did not come down clean (%d):\n%s\n", rc, out);
    else
        printf("[ bed      ] down and clean in %llu ms\n", (unsigned long long)(fl_mono_ms() - t0));
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
    if (system(cmd) != 0)
        rc = -1;
    return rc == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_async_loses_what_the_old_master_alone_has),
        cmocka_unit_test(test_wait_one_loses_nothing),
        cmocka_unit_test(test_comeback_loses_nothing),
    };
    return cmocka_run_group_tests_name("data loss on the Redis bed (Sentinel, namespaces)", tests,
                                       setup, teardown);
}
