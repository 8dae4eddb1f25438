/* Known answers for data loss on PostgreSQL (issue 15), through `faultline
 * run` of the repository's experiment files against the agents of the
 * PostgreSQL bed (tests/beds/postgres.sh: db1 primary, db2 standby, repmgrd
 * on both, each host a network namespace; a fresh bed for every run, since
 * a failover consumes it). The files are instantiated for a short run:
 * writes every 100 ms instead of 1 s, the kill 2 s into the run with a 1 s
 * window instead of 1 m.
 *
 *   synchronous  experiments/db-failover-strict.yaml (RTO 30 s, RPO 0): the
 *                primary's postgres processes are killed -9, repmgrd
 *                promotes db2. PASS, 0 acknowledged writes lost, and the
 *                recovery faultline measured lies where repmgrd's own log
 *                of the promotion says (whole seconds): no earlier than the
 *                second it logged its decision to promote, no later than
 *                one write interval after the end of the second it logged
 *                "promoted to primary"; so within the bound, one
 *                write interval plus repmgr's documented detection time
 *                (reconnect_attempts x reconnect_interval = 2 s) plus the
 *                log's grain, of the promotion. The promoted db2 takes
 *                writes at once: it has no synchronous_standby_names.
 *   asynchronous the same file with a first fault cutting the WAL stream
 *                (network_drop on db2 of db1's replication address) for 6 s
 *                and the kill 2 s into it: FAIL on RPO 0. The truth comes
 *                from the old primary's data directory, started alone after
 *                the run (postgres.sh isolate: a copy, no TCP, no
 *                replication): the rows it holds that the new primary lacks,
 *                less those whose attempt was never acknowledged, are
 *                exactly the seqs run.json says were lost, and the RPO
 *                from those rows' written_at is within one write interval
 *                of the RPO faultline observed. The last repetition runs the
 *                seed's own DR test (experiments/db-failover-dr.yaml, RTO
 *                300 s, RPO 60 s) the same way: the same loss, PASS.
 *
 * And the bed's own promise: should the test that owns it die, its watcher
 * tears everything down (processes, namespaces, the System V segment a
 * killed postmaster leaves, the directory).
 *
 * Each spread is printed like the game-day test's. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/clock.h"
#include "tests/support/proc.h"

#define RUNS 3
#define INTERVAL_MS 100
/* repmgr.conf of the bed: reconnect_attempts=2, reconnect_interval=1 */
#define DETECTION_MS 2000
/* repmgrd logs whole seconds */
#define REPMGR_GRAIN_MS 1000
#define MAX_ROWS 4096

static char top[] = "/tmp/flpg-known.XXXXXX";
static char bed[300];
static char inventory[400];
static int n_run;

static char *arg(const char *a)
{
    return (char *)(uintptr_t)a;
}

static int bed_cmd(char *out, size_t cap, int timeout_ms, ...)
{
    char *argv[40] = {arg(FL_PG_BED_SCRIPT)};
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

static void bed_up(const char *mode)
{
    static char out[65536];
    snprintf(bed, sizeof(bed), "%s/bed-%d", top, ++n_run);
    snprintf(inventory, sizeof(inventory), "%s/hosts.yaml", bed);
    char owner[16]; /* should this test die, the bed's watcher takes it down */
    snprintf(owner, sizeof(owner), "%d", (int)getpid());
    uint64_t t0 = fl_mono_ms();
    int rc = bed_cmd(out, sizeof(out), 120000, "up", bed, FL_BUILD_DIR, mode, owner, NULL);
    if (rc != 0)
        fail_msg("the bed did not come up (%d):\n%s", rc, out);
    printf("[ bed      ] up in %llu ms: %s", (unsigned long long)(fl_mono_ms() - t0), out);
    fflush(stdout);
}

static void bed_down(void)
{
    static char out[65536];
    if (bed[0] == '\0')
        return;
    int rc = bed_cmd(out, sizeof(out), 120000, "down", bed, NULL);
    bed[0] = '\0';
    if (rc != 0)
        fail_msg("the bed did not come down clean (%d):\n%s", rc, out);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

/* Replaces the one occurrence of from in *text by to; fails if it is not
 * there exactly once (the experiment file changed: this test must too). */
static void replace_once(char **text, const char *from, const char *to)
{
    char *at = strstr(*text, from);
    if (at == NULL || strstr(at + 1, from) != NULL)
        fail_msg("the experiment file has not exactly one \"%s\"", from);
    size_t head = (size_t)(at - *text), fl = strlen(from), tl = strlen(to);
    char *o = malloc(strlen(*text) - fl + tl + 1);
    assert_non_null(o);
    memcpy(o, *text, head);
    memcpy(o + head, to, tl);
    strcpy(o + head + tl, at + fl);
    free(*text);
    *text = o;
}

/* The experiment file, for a short run on the bed (whose addresses are the
 * file's own); with cut, the WAL stream is cut first and the kill comes 2 s
 * into the cut. */
static char *instantiate(const char *file, bool cut)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/experiments/%s", FL_SOURCE_DIR, file);
    char *y = read_text(path);
    assert_non_null(y);
    replace_once(&y, "    interval: 1s\n", "    interval: 100ms\n");
    replace_once(&y, "    timeout: 900ms\n", "    timeout: 500ms\n");
    replace_once(&y, "recovery: { probes: [orders-writes], timeout: 10m }",
                 "recovery: { probes: [orders-writes], timeout: 40s }");
    /* the kill 2 s in: twenty writes acknowledged before it */
    replace_once(&y, "    duration: 1m\n", "    start: 2s\n    duration: 1s\n");
    if (!cut)
        return y;
    replace_once(&y, "\nfaults:\n",
                 "\nfaults:\n"
                 "  - name: cut-replication       # the WAL stream alone: db1's .20 address\n"
                 "    target: { hosts: [db2] }\n"
                 "    network_drop: { direction: both, peers: [10.77.0.20/32], protocol: tcp, "
                 "ports: [5432] }\n"
                 "    duration: 6s\n");
    return y;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    int ok = fputs(text, f) >= 0;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* Runs yaml from the client host; returns run.json, *rc the exit code,
 * reports the report directory. */
static json_t *run_experiment(const char *name, const char *yaml, int *rc, char *reports,
                              size_t cap)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/%s-%d.yaml", top, name, n_run);
    snprintf(reports, cap, "%s/reports-%d", top, n_run);
    assert_int_equal(write_file(path, yaml), 0);
    static char out[1 << 17];
    *rc = bed_cmd(out, sizeof(out), 120000, "exec", bed, "client", FL_CTL_BIN, "run", path,
                  "--inventory", inventory, "--report-dir", reports, NULL);
    if (getenv("FL_TEST_VERBOSE"))
        fputs(out, stderr);
    char report[700];
    snprintf(report, sizeof(report), "%s/run.json", reports);
    json_error_t jerr;
    json_t *j = json_load_file(report, 0, &jerr);
    if (j == NULL)
        fail_msg("%s: no run.json (%s); the run said:\n%s", name, jerr.text, out);
    return j;
}

static const char *jstr(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL ? s : "";
}

static json_int_t jint(json_t *obj, const char *key)
{
    return json_integer_value(json_object_get(obj, key));
}

/* "2026-11-25T18:47:28.963Z" -> ms since the epoch */
static uint64_t parse_rfc3339(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int ms = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &ms) != 7)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (uint64_t)timegm(&tm) * 1000u + (uint64_t)ms;
}

/* The first line of path holding needle at or after after_ms, by the time
 * in its first [..] ("[2026-11-29 03:28:11]", UTC: the bed runs repmgrd with
 * TZ=UTC) or at its start ("2026-11-29 03:28:11.123 UTC", PostgreSQL's %m);
 * 0 if none. */
static uint64_t log_event(const char *path, const char *needle, uint64_t after_ms, char *line,
                          size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char buf[2048];
    uint64_t found = 0;
    while (found == 0 && fgets(buf, sizeof(buf), f) != NULL) {
        if (strstr(buf, needle) == NULL)
            continue;
        struct tm tm;
        memset(&tm, 0, sizeof(tm));
        int ms = 0;
        const char *p = buf[0] == '[' ? buf + 1 : buf;
        int got = sscanf(p, "%4d-%2d-%2d %2d:%2d:%2d.%3d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                         &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms);
        if (got < 6)
            continue;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        uint64_t at = (uint64_t)timegm(&tm) * 1000u + (got == 7 ? (uint64_t)ms : 0);
        /* a whole-second time may be up to a second before after_ms */
        if (at + (got == 7 ? 0 : REPMGR_GRAIN_MS) > after_ms) {
            found = at;
            snprintf(line, cap, "%s", buf);
            line[strcspn(line, "\n")] = '\0';
        }
    }
    fclose(f);
    return found;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void print_spread(const char *what, const int64_t *v, size_t n)
{
    int64_t s[RUNS];
    memcpy(s, v, n * sizeof(*v));
    qsort(s, n, sizeof(*s), cmp_i64);
    printf("[ spread   ] %s over %zu runs:", what, n);
    for (size_t i = 0; i < n; i++)
        printf(" %+lld", (long long)v[i]);
    printf(" ms; median %+lld ms, min %+lld, max %+lld\n", (long long)s[n / 2], (long long)s[0],
           (long long)s[n - 1]);
    fflush(stdout);
}

static json_t *data_of(json_t *run)
{
    return json_object_get(json_array_get(json_object_get(run, "probes"), 0), "data");
}

/* --------------------------------------------------------- synchronous */

static void test_sync_loses_nothing(void **state)
{
    (void)state;
    int64_t early[RUNS], rto[RUNS], promoted[RUNS];
    for (int i = 0; i < RUNS; i++) {
        bed_up("sync");
        char *yaml = instantiate("db-failover-strict.yaml", false);
        int rc;
        char reports[600];
        json_t *j = run_experiment("strict-sync", yaml, &rc, reports, sizeof(reports));
        free(yaml);
        json_t *m = json_object_get(j, "measurements"), *d = data_of(j);
        printf("[ run      ] strict, sync: %s, %s\n", jstr(j, "verdict"), jstr(j, "reason"));
        printf("[ data     ] %s\n", jstr(d, "summary"));
        uint64_t injected = parse_rfc3339(jstr(m, "injected_at"));
        uint64_t recovered = parse_rfc3339(jstr(m, "recovered_at"));
        /* repmgrd on db2: its first word of the promotion ("... will now
         * promote itself", before it runs the promote command), and "was
         * successfully promoted to primary", logged once the promote command
         * has seen it done (it checks every second): the run may end first */
        char path[600], lost_line[2048] = "", dline[2048] = "", rline[2048] = "", pline[2048] = "";
        snprintf(path, sizeof(path), "%s/db2/repmgrd.log", bed);
        uint64_t rep = 0;
        for (int waited = 0; rep == 0 && waited < 20000; waited += 100) {
            rep = log_event(path, "promoted to primary", injected, rline, sizeof(rline));
            if (rep == 0)
                sleep_ms(100);
        }
        uint64_t lost = log_event(path, "unable to connect to upstream", injected, lost_line,
                                  sizeof(lost_line));
        uint64_t decided = log_event(path, "promot", injected, dline, sizeof(dline));
        snprintf(path, sizeof(path), "%s/db2/postgres.log", bed);
        uint64_t ready =
            log_event(path, "ready to accept connections", injected, pline, sizeof(pline));
        printf("[ truth    ] repmgrd on db2: %s\n                             %s\n"
               "                             %s\n             postgres on db2: %s\n",
               lost_line, dline, rline, pline);
        bed_down();
        assert_int_equal(rc, 0);
        assert_string_equal(jstr(j, "verdict"), "pass");
        assert_true(json_is_object(d));
        assert_true(json_is_null(json_object_get(d, "error")));
        assert_true(jint(d, "acknowledged") >= 20);
        assert_int_equal(jint(d, "lost"), 0);
        assert_int_equal(jint(j, "rpo_ms"), 0);
        assert_true(injected > 0 && recovered > injected && lost > 0 && decided > 0 && rep > 0 &&
                    ready > 0);
        early[i] = (int64_t)recovered - (int64_t)rep;
        rto[i] = (int64_t)(recovered - injected);
        promoted[i] = (int64_t)rep - (int64_t)injected;
        printf("[ measured ] RTO %lld ms; repmgrd's promotion logged in the second from %+lld ms "
               "(decided from %+lld ms), postgres on db2 ready at %+lld ms after the kill; "
               "recovered_at - repmgrd's second %+lld ms, - postgres ready %+lld ms\n",
               (long long)rto[i], (long long)promoted[i],
               (long long)((int64_t)decided - (int64_t)injected),
               (long long)((int64_t)ready - (int64_t)injected), (long long)early[i],
               (long long)((int64_t)recovered - (int64_t)ready));
        fflush(stdout);
        /* writes came back only once repmgrd had decided to promote (its
         * log's whole second is no later than the moment) ... */
        assert_true(recovered >= decided);
        /* ... and within one write interval of the end of the second in
         * which it logged the promotion done */
        assert_true(early[i] <= REPMGR_GRAIN_MS + INTERVAL_MS);
        /* the bound: the RTO matches repmgrd's log of the promotion
         * within one write interval plus repmgr's detection time */
        assert_true(llabs(early[i]) <= INTERVAL_MS + DETECTION_MS + REPMGR_GRAIN_MS);
        json_decref(j);
    }
    print_spread("sync: recovered_at - repmgrd's promotion second", early, RUNS);
    print_spread("sync: repmgrd's promotion second after the kill", promoted, RUNS);
    print_spread("sync: RTO", rto, RUNS);
}

/* -------------------------------------------------------- asynchronous */

struct row {
    uint64_t seq, written_at;
};

/* The run's rows on HOST (or HOST-isolated), ordered by seq. */
static size_t rows_of(const char *host, const char *run_id, struct row *rows)
{
    char sql[400];
    snprintf(sql, sizeof(sql),
             "SELECT seq, written_at FROM faultline_writes WHERE run_id = '%s' ORDER BY seq",
             run_id);
    static char out[1 << 18];
    int rc = bed_cmd(out, sizeof(out), 30000, "sql", bed, host, sql, NULL);
    if (rc != 0)
        fail_msg("reading %s: %s", host, out);
    size_t n = 0;
    for (char *line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        unsigned long long s, w;
        if (sscanf(line, "%llu|%llu", &s, &w) != 2)
            continue;
        assert_true(n < MAX_ROWS);
        rows[n].seq = s;
        rows[n].written_at = w;
        n++;
    }
    return n;
}

static bool has_seq(const struct row *rows, size_t n, uint64_t seq)
{
    for (size_t i = 0; i < n; i++)
        if (rows[i].seq == seq)
            return true;
    return false;
}

/* Whether the write sent at written_at was acknowledged: its attempt in
 * attempts.jsonl (probe 0, started within a few ms of it) ended "ok". */
static bool acknowledged(const char *reports, uint64_t written_at)
{
    char path[700], line[2048];
    snprintf(path, sizeof(path), "%s/attempts.jsonl", reports);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    bool ok = false;
    int64_t best = 1000;
    while (fgets(line, sizeof(line), f) != NULL) {
        json_t *a = json_loads(line, 0, NULL);
        if (a == NULL || jint(a, "p") != 0) {
            json_decref(a);
            continue;
        }
        int64_t dt = (int64_t)jint(a, "t") - (int64_t)written_at;
        dt = dt < 0 ? -dt : dt;
        if (dt < best && dt <= 20) {
            best = dt;
            ok = strcmp(jstr(a, "o"), "ok") == 0;
        }
        json_decref(a);
    }
    fclose(f);
    return ok;
}

static bool in_lost_ranges(json_t *d, uint64_t seq)
{
    json_t *ranges = json_object_get(d, "lost_ranges");
    for (size_t i = 0; i < json_array_size(ranges); i++) {
        json_t *r = json_array_get(ranges, i);
        if (seq >= (uint64_t)jint(r, "first") && seq <= (uint64_t)jint(r, "last"))
            return true;
    }
    return false;
}

static int64_t async_once(const char *file, bool strict, int64_t *truth_diff)
{
    bed_up("async");
    char *yaml = instantiate(file, true);
    int rc;
    char reports[600];
    json_t *j =
        run_experiment(strict ? "strict-async" : "dr-async", yaml, &rc, reports, sizeof(reports));
    free(yaml);
    json_t *d = data_of(j);
    printf("[ run      ] %s, async: %s, %s\n", file, jstr(j, "verdict"), jstr(j, "reason"));
    printf("[ data     ] %s\n", jstr(d, "summary"));
    fflush(stdout);
    assert_true(json_is_object(d));
    assert_true(json_is_null(json_object_get(d, "error")));
    assert_int_equal(jint(d, "lost_ranges_total"),
                     (json_int_t)json_array_size(json_object_get(d, "lost_ranges")));

    /* the truth: the old primary's data directory, alone */
    static char out[8192];
    if (bed_cmd(out, sizeof(out), 60000, "isolate", bed, "db1", NULL) != 0)
        fail_msg("isolate db1: %s", out);
    static struct row old[MAX_ROWS], now[MAX_ROWS];
    const char *run_id = jstr(j, "run_id");
    size_t n_old = rows_of("db1-isolated", run_id, old);
    size_t n_now = rows_of("db2", run_id, now);
    size_t n_truth = 0, n_unacked = 0, n_lost = 0;
    uint64_t first_lost = UINT64_MAX, last_lost = 0, last_lost_at = 0;
    bool same = true;
    for (size_t i = 0; i < n_old; i++) {
        if (has_seq(now, n_now, old[i].seq))
            continue;
        if (!acknowledged(reports, old[i].written_at)) {
            n_unacked++; /* committed on db1, its acknowledgement never arrived */
            continue;
        }
        n_truth++;
        if (!in_lost_ranges(d, old[i].seq)) {
            fprintf(stderr, "seq %llu: on the old primary only, acknowledged, not reported lost\n",
                    (unsigned long long)old[i].seq);
            same = false;
        }
        if (old[i].seq < first_lost)
            first_lost = old[i].seq;
        if (old[i].seq > last_lost) {
            last_lost = old[i].seq;
            last_lost_at = old[i].written_at;
        }
    }
    json_t *ranges = json_object_get(d, "lost_ranges");
    for (size_t i = 0; i < json_array_size(ranges); i++) {
        json_t *r = json_array_get(ranges, i);
        for (uint64_t s = (uint64_t)jint(r, "first"); s <= (uint64_t)jint(r, "last"); s++) {
            n_lost++;
            bool truth = false;
            for (size_t k = 0; k < n_old && !truth; k++)
                truth = old[k].seq == s && !has_seq(now, n_now, s);
            if (!truth) {
                fprintf(stderr, "seq %llu reported lost, but not on the old primary alone\n",
                        (unsigned long long)s);
                same = false;
            }
        }
    }
    /* S: the last survivor before the first lost write */
    uint64_t survivor_at = 0;
    for (size_t i = 0; i < n_now; i++)
        if (now[i].seq < first_lost)
            survivor_at = now[i].written_at;
    int64_t truth_rpo = n_truth > 0 && survivor_at > 0 ? (int64_t)(last_lost_at - survivor_at) : -1;
    int64_t rpo = jint(j, "rpo_ms");
    printf(
        "[ truth    ] old primary alone: %zu rows of this run, new primary %zu; %zu acknowledged "
        "rows only on the old one (seq %llu..%llu), %zu more never acknowledged; faultline: "
        "%lld lost in %zu range(s)\n",
        n_old, n_now, n_truth, (unsigned long long)first_lost, (unsigned long long)last_lost,
        n_unacked, (long long)jint(d, "lost"), json_array_size(ranges));
    printf("[ measured ] RPO observed %lld ms (resolution %lld ms); from the old primary's rows "
           "%lld ms; difference %+lld ms\n",
           (long long)rpo, (long long)jint(d, "resolution_ms"), (long long)truth_rpo,
           (long long)(rpo - truth_rpo));
    fflush(stdout);
    bed_down();
    assert_true(same);
    assert_true(n_truth >= 5);
    assert_int_equal((json_int_t)n_truth, jint(d, "lost"));
    assert_int_equal((json_int_t)n_lost, jint(d, "lost"));
    assert_true(n_unacked <= 1); /* at most the write in flight at the kill */
    assert_true(truth_rpo > 0);
    *truth_diff = rpo - truth_rpo;
    assert_true(*truth_diff <= INTERVAL_MS && *truth_diff >= -INTERVAL_MS);
    if (strict) {
        assert_int_equal(rc, 1);
        assert_string_equal(jstr(j, "verdict"), "fail");
        assert_non_null(strstr(jstr(j, "reason"), "objective RPO 0s"));
    } else {
        assert_int_equal(rc, 0);
        assert_string_equal(jstr(j, "verdict"), "pass");
    }
    json_decref(j);
    return rpo;
}

static void test_async_loses_what_the_old_primary_holds(void **state)
{
    (void)state;
    int64_t diff[RUNS], rpo[RUNS];
    for (int i = 0; i < RUNS; i++) {
        bool strict = i + 1 < RUNS; /* the last: the seed's DR test */
        rpo[i] = async_once(strict ? "db-failover-strict.yaml" : "db-failover-dr.yaml", strict,
                            &diff[i]);
    }
    print_spread("async: RPO observed - RPO from the old primary's rows", diff, RUNS);
    print_spread("async: RPO observed", rpo, RUNS);
}

/* ------------------------------------------------ a bed whose owner died */

static bool netns_with_prefix(const char *prefix)
{
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "ip netns list | grep -q '^%s-'", prefix);
    return system(cmd) == 0;
}

/* The test that owns a bed dies (ctest's timeout, a crash) with a killed
 * postmaster's System V segment left behind: the bed's watcher tears it all
 * down on its own -- processes, namespaces, the segment, the directory. */
static void test_owner_dies_bed_goes(void **state)
{
    (void)state;
    char *sleeper[] = {arg("/bin/sleep"), arg("600"), NULL};
    pid_t owner = proc_start(sleeper, "/dev/null");
    assert_true(owner > 0);
    char dir[400], owner_s[16], env[500], prefix[64] = "", pidfile[500];
    static char out[65536];
    snprintf(dir, sizeof(dir), "%s/orphan", top);
    snprintf(owner_s, sizeof(owner_s), "%d", (int)owner);
    if (bed_cmd(out, sizeof(out), 120000, "up", dir, FL_BUILD_DIR, "async", owner_s, NULL) != 0) {
        proc_stop(owner, SIGKILL, 5000);
        fail_msg("the bed did not come up:\n%s", out);
    }
    snprintf(env, sizeof(env), "%s/bed.env", dir);
    FILE *f = fopen(env, "r");
    assert_non_null(f);
    char line[300];
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "PREFIX=%63s", prefix) == 1)
            break;
    fclose(f);
    assert_true(prefix[0] != '\0');
    assert_true(netns_with_prefix(prefix));
    /* kill -9 the primary: its shared memory segment stays */
    snprintf(pidfile, sizeof(pidfile), "%s/db1/pgdata/postmaster.pid", dir);
    f = fopen(pidfile, "r");
    assert_non_null(f);
    int pm = 0, shmid = -1;
    for (int i = 1; fgets(line, sizeof(line), f) != NULL; i++) {
        unsigned long key;
        if (i == 1)
            pm = atoi(line);
        if (i == 7 && sscanf(line, "%lu %d", &key, &shmid) != 2)
            shmid = -1;
    }
    fclose(f);
    assert_true(pm > 0 && shmid >= 0);
    assert_int_equal(kill(pm, SIGKILL), 0);
    sleep_ms(500);
    struct shmid_ds ds;
    assert_int_equal(shmctl(shmid, IPC_STAT, &ds), 0);

    uint64_t t0 = fl_mono_ms();
    assert_int_equal(proc_stop(owner, SIGKILL, 5000), 128 + SIGKILL);
    struct stat st;
    while ((stat(dir, &st) == 0 || netns_with_prefix(prefix)) && fl_mono_ms() - t0 < 30000)
        sleep_ms(100);
    uint64_t took = fl_mono_ms() - t0;
    bool dir_left = stat(dir, &st) == 0, ns_left = netns_with_prefix(prefix);
    bool shm_left = shmctl(shmid, IPC_STAT, &ds) == 0;
    printf("[ measured ] owner killed -9: the bed's watcher took it down in %llu ms "
           "(directory %s, namespaces %s, the dead primary's segment %s)\n",
           (unsigned long long)took, dir_left ? "LEFT" : "gone", ns_left ? "LEFT" : "gone",
           shm_left ? "LEFT" : "gone");
    fflush(stdout);
    if (dir_left || ns_left) /* leave nothing, even failing */
        bed_cmd(out, sizeof(out), 120000, "down", dir, NULL);
    assert_false(dir_left);
    assert_false(ns_left);
    assert_false(shm_left);
}

/* --------------------------------------------------------------- setup */

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(top) == NULL || chmod(top, 0755) != 0) /* postgres reaches the bed in it */
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    static char out[65536];
    int rc = 0;
    if (bed[0] != '\0' && bed_cmd(out, sizeof(out), 120000, "down", bed, NULL) != 0) {
        fprintf(stderr, "the bed did not come down clean:\n%s\n", out);
        rc = -1;
    }
    bed[0] = '\0';
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
    if (system(cmd) != 0)
        rc = -1;
    return rc;
}

static int teardown_each(void **state)
{
    (void)state;
    static char out[65536];
    if (bed[0] != '\0' && bed_cmd(out, sizeof(out), 120000, "down", bed, NULL) != 0) {
        fprintf(stderr, "the bed did not come down clean:\n%s\n", out);
        return -1;
    }
    bed[0] = '\0';
    return 0;
}

int main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "needs root (network namespaces, the postgres user)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_sync_loses_nothing, teardown_each),
        cmocka_unit_test_teardown(test_async_loses_what_the_old_primary_holds, teardown_each),
        cmocka_unit_test(test_owner_dies_bed_goes),
    };
    return cmocka_run_group_tests_name("PostgreSQL data loss, known answers (repmgr, namespaces)",
                                       tests, setup, teardown);
}
