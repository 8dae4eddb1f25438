/* Known-answer tests on the game-day bed (tests/beds/gameday.sh): a real
 * HAProxy in front of two nginx web servers, each host a network namespace
 * with its own agent, the controller probing from a client host.
 *
 * The answer is known from HAProxy's own log: the moment it marked a server
 * DOWN is the moment traffic moved to the standby. faultline reports where
 * the recovery happened as a bracket in run.json: after the last failed
 * attempt was sent (last_failure_at = recovered_at - resolution_ms) and no
 * later than the first success of the run that counts (recovered_at =
 * injected_at + recovery_time_ms). HAProxy's moment must lie in it, and the
 * bracket must be as tight as the attempts faultline actually made allow:
 * the last failure and that first success are consecutive attempts. On a
 * busy host attempts run late and the bracket widens, honestly; nothing here
 * depends on the nominal interval. Each comparison runs several times and
 * prints its spread.
 *
 *   failover         kill nginx on web1: the backup takes over
 *   partition        drop everything arriving at web1: the same, by timeouts
 *   no failover      web1 alone behind the LB, cut: FAIL, "recovered only
 *                    after revert", at the moment HAProxy saw web1 UP again
 *   disk fill        web1's application reports its full disk, then recovers
 *   crash safety     the controller is killed -9 with faults on three hosts:
 *                    every agent's lease reverts them, and the bed comes
 *                    down clean */
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/clock.h"
#include "tests/support/proc.h"

#define RUNS 3
/* Rounding only: the controller's times and latencies are whole milliseconds
 * (truncated), HAProxy's microseconds, which parse_time truncates too. */
#define GRAIN_MS 2

static char top[] = "/tmp/fl-gameday-test.XXXXXX";
static char bed[300];
static char inventory[400];
static int n_report;

static char *arg(const char *a)
{
    return (char *)(uintptr_t)a;
}

/* ------------------------------------------------------------ helpers */

/* "2026-11-25T18:47:28.963Z" or "2026-11-25T18:47:28.963117+00:00" -> ms
 * since the epoch; 0 when it is not a timestamp. */
static uint64_t parse_time(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int used = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &used) != 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    const char *p = s + used;
    uint64_t frac_us = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 6)
                frac_us = frac_us * 10 + (uint64_t)(*p - '0');
        for (; digits < 6; digits++)
            frac_us *= 10;
    }
    int64_t offset_s = 0;
    if (*p == '+' || *p == '-') {
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
            return 0;
        offset_s = (int64_t)(hh * 3600 + mm * 60) * (*p == '-' ? -1 : 1);
    } else if (*p != 'Z') {
        return 0;
    }
    time_t t = timegm(&tm);
    return (uint64_t)((int64_t)t - offset_s) * 1000u + frac_us / 1000u;
}

/* The first "Server BACKEND/SERVER is WORD" HAProxy logged at or after
 * after_ms, waiting up to wait_ms for it; 0 if none. */
static uint64_t haproxy_event(const char *server, const char *word, uint64_t after_ms, int wait_ms)
{
    char path[400], needle[128];
    snprintf(path, sizeof(path), "%s/lb/haproxy.log", bed);
    snprintf(needle, sizeof(needle), "Server %s is %s", server, word);
    for (int waited = 0;; waited += 50) {
        FILE *f = fopen(path, "r");
        char line[1024];
        while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
            uint64_t at = parse_time(line);
            /* "Backup Server web/web2" holds "Server web/web2" too: fine */
            if (at >= after_ms && strstr(line, needle) != NULL) {
                fclose(f);
                return at;
            }
        }
        if (f != NULL)
            fclose(f);
        if (waited >= wait_ms)
            return 0;
        sleep_ms(50);
    }
}

/* Is server UP in HAProxy's eyes (its last DOWN/UP line says UP, or it has
 * none)? Waits up to wait_ms for it to be. */
static int haproxy_wait_up(const char *server, int wait_ms)
{
    char path[400], down[128], up[128];
    snprintf(path, sizeof(path), "%s/lb/haproxy.log", bed);
    snprintf(down, sizeof(down), "Server %s is DOWN", server);
    snprintf(up, sizeof(up), "Server %s is UP", server);
    for (int waited = 0; waited <= wait_ms; waited += 100) {
        FILE *f = fopen(path, "r");
        char line[1024];
        int is_up = 1;
        while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
            if (strstr(line, down) != NULL)
                is_up = 0;
            else if (strstr(line, up) != NULL)
                is_up = 1;
        }
        if (f != NULL)
            fclose(f);
        if (is_up)
            return 0;
        sleep_ms(100);
    }
    return -1;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    int ok = fputs(text, f) >= 0;
    return (fclose(f) == 0 && ok) ? 0 : -1;
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

/* run.json (format 2) keeps every attempt in attempts.jsonl beside it: each
 * probe of *json gets them back as "timeline" [{started_ms, latency_ms, ok,
 * outcome, detail}], in the order they were written. */
static int attach_attempts(json_t *run, const char *reports)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/attempts.jsonl", reports);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    json_t *probes = json_object_get(run, "probes");
    for (size_t i = 0; i < json_array_size(probes); i++)
        json_object_set_new(json_array_get(probes, i), "timeline", json_array());
    char line[2048];
    int rc = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        json_t *a = json_loads(line, 0, NULL);
        json_t *p =
            a ? json_array_get(probes, (size_t)json_integer_value(json_object_get(a, "p"))) : NULL;
        if (p == NULL) {
            rc = -1;
            json_decref(a);
            break;
        }
        const char *o = json_string_value(json_object_get(a, "o"));
        json_array_append_new(json_object_get(p, "timeline"),
                              json_pack("{s:I, s:I, s:b, s:s, s:O}", "started_ms",
                                        json_integer_value(json_object_get(a, "t")), "latency_ms",
                                        json_integer_value(json_object_get(a, "l")), "ok",
                                        strcmp(o, "ok") == 0, "outcome", o, "detail",
                                        json_object_get(a, "d")));
        json_decref(a);
    }
    fclose(f);
    return rc;
}

/* Runs the experiment text from the client host; *json gets run.json. */
static int run_experiment(const char *name, const char *yaml, json_t **json)
{
    char path[400], reports[400], report[500];
    snprintf(path, sizeof(path), "%s/%s.yaml", top, name);
    snprintf(reports, sizeof(reports), "%s/reports-%d", top, ++n_report);
    if (write_file(path, yaml) != 0)
        return -1;
    static char out[65536];
    int rc = bed_cmd(out, sizeof(out), 90000, "exec", bed, "client", FL_CTL_BIN, "run", path,
                     "--inventory", inventory, "--report-dir", reports, NULL);
    if (getenv("FL_TEST_VERBOSE"))
        fputs(out, stderr);
    snprintf(report, sizeof(report), "%s/run.json", reports);
    json_error_t jerr;
    *json = json_load_file(report, 0, &jerr);
    if (*json == NULL) {
        fprintf(stderr, "%s: no run.json (%s); the run said:\n%s\n", name, jerr.text, out);
        return -1;
    }
    if (attach_attempts(*json, reports) < 0) {
        fprintf(stderr, "%s: no readable attempts.jsonl; the run said:\n%s\n", name, out);
        return -1;
    }
    return rc;
}

static uint64_t jms(json_t *obj, const char *key)
{
    return (uint64_t)json_integer_value(json_object_get(obj, key));
}

static const char *jstr(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL ? s : "";
}

static uint64_t jtime(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL ? parse_time(s) : 0;
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

/* The bracket run.json reports for the recovery, relative to injection:
 * (lo, hi], with the attempts around it. */
struct bracket {
    int64_t lo, hi;        /* last failure sent, first success known; ms after injection */
    int64_t resolution;    /* hi - lo, as run.json says */
    int64_t gap;           /* from sending the last failure to sending that success */
    int64_t late_attempts; /* attempts in the timeline spaced more than interval_ms apart */
};

/* Reads the bracket from run.json's measurements and checks it against the
 * recovery probe's own timeline: recovery_time_ms and resolution_ms agree with
 * the times, the last failure and the first success are consecutive attempts,
 * and the success ended at recovered_at. */
static void read_bracket(json_t *j, struct bracket *b)
{
    json_t *m = json_object_get(j, "measurements");
    uint64_t injected = jtime(m, "injected_at"), recovered = jtime(m, "recovered_at");
    uint64_t last_failure = jtime(m, "last_failure_at");
    json_t *rt = json_object_get(m, "recovery_time_ms"), *res = json_object_get(m, "resolution_ms");
    assert_true(json_is_integer(rt) && json_is_integer(res));
    assert_true(injected > 0 && last_failure > 0 && recovered > last_failure);
    b->hi = json_integer_value(rt);
    b->resolution = json_integer_value(res);
    b->lo = b->hi - b->resolution;
    assert_int_equal(b->hi, (int64_t)(recovered - injected));
    assert_int_equal(b->lo, (int64_t)last_failure - (int64_t)injected);

    json_t *probe = json_array_get(json_object_get(j, "probes"), 0);
    json_t *timeline = json_object_get(probe, "timeline");
    int64_t interval = json_integer_value(json_object_get(probe, "interval_ms"));
    size_t n = json_array_size(timeline), at = n;
    b->late_attempts = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t t = jms(json_array_get(timeline, i), "started_ms");
        if (i > 0 &&
            (int64_t)(t - jms(json_array_get(timeline, i - 1), "started_ms")) > interval + GRAIN_MS)
            b->late_attempts++;
        if (t == last_failure && !json_is_true(json_object_get(json_array_get(timeline, i), "ok")))
            at = i; /* the last such: attempts can start in the same millisecond */
    }
    if (at + 1 >= n)
        fail_msg("no failed attempt sent at last_failure_at, followed by another");
    json_t *success = json_array_get(timeline, at + 1);
    assert_true(json_is_true(json_object_get(success, "ok")));
    uint64_t sent = jms(success, "started_ms");
    assert_int_equal(sent + (uint64_t)json_integer_value(json_object_get(success, "latency_ms")),
                     recovered);
    b->gap = (int64_t)(sent - last_failure);
}

/* Whether truth (ms after injection) lies in the bracket, to the rounding. */
static bool in_bracket(const struct bracket *b, int64_t truth)
{
    return truth >= b->lo - GRAIN_MS && truth <= b->hi + GRAIN_MS;
}

/* ------------------------------------------------------- known answers */

static const char failover_yaml[] =
    "version: 1\n"
    "name: gameday-failover\n"
    "objectives: { rto: 5s }\n"
    "probes:\n"
    "  - name: frontend\n"
    "    http: { url: \"http://10.77.0.1:8080/health\", expect_status: [200], timeout: 100ms }\n"
    "    interval: 100ms\n"
    "    rise: 2\n"
    "    fall: 3\n"
    "steady_state: [frontend]\n"
    "faults:\n"
    "  - name: %s\n"
    "    target: { hosts: [web1] }\n"
    "    %s\n"
    "    duration: 2s\n"
    "recovery: { probes: [frontend], timeout: 10s }\n";

/* One run of a failover experiment; returns measured - HAProxy's, in ms. */
static int64_t failover_once(const char *name, const char *fault)
{
    assert_int_equal(haproxy_wait_up("web/web1", 15000), 0); /* the last run's web1 is back */
    char yaml[2048];
    snprintf(yaml, sizeof(yaml), failover_yaml, name, fault);
    json_t *j = NULL;
    int rc = run_experiment(name, yaml, &j);
    assert_non_null(j);
    json_t *m = json_object_get(j, "measurements");
    printf("[ run      ] %s: %s, %s\n", name, jstr(j, "verdict"), jstr(j, "reason"));
    assert_int_equal(rc, 0);
    assert_string_equal(jstr(j, "verdict"), "pass");
    assert_false(json_is_true(json_object_get(m, "no_impact")));
    assert_false(json_is_true(json_object_get(m, "recovered_after_revert")));
    uint64_t injected = jtime(m, "injected_at");
    struct bracket b;
    read_bracket(j, &b);
    uint64_t down = haproxy_event("web/web1", "DOWN", injected, 2000);
    assert_true(down > 0);
    int64_t truth = (int64_t)(down - injected);
    printf("[ measured ] %s: recovered in (%lld, %lld] ms (resolution %lld ms; the last failure "
           "and first success sent %lld ms apart; %lld late attempts); HAProxy marked web1 "
           "DOWN at +%lld ms\n",
           name, (long long)b.lo, (long long)b.hi, (long long)b.resolution, (long long)b.gap,
           (long long)b.late_attempts, (long long)truth);
    fflush(stdout);
    json_decref(j);
    /* the service came back after the last failure was sent, and by the
     * first success: HAProxy's switch lies in the bracket faultline reports */
    assert_true(in_bracket(&b, truth));
    return b.hi - truth;
}

static void test_failover_kill(void **state)
{
    (void)state;
    int64_t d[RUNS];
    for (int i = 0; i < RUNS; i++)
        d[i] = failover_once("kill-web1", "kill_process: { name: nginx, signal: KILL }");
    print_spread("kill web1: recovered_at - HAProxy DOWN", d, RUNS);
}

static void test_failover_partition(void **state)
{
    (void)state;
    int64_t d[RUNS];
    for (int i = 0; i < RUNS; i++)
        d[i] = failover_once("cut-web1", "network_drop: { direction: ingress }");
    print_spread("cut web1: recovered_at - HAProxy DOWN", d, RUNS);
}

static const char solo_yaml[] =
    "version: 1\n"
    "name: gameday-no-failover\n"
    "objectives: { rto: 5s }\n"
    "probes:\n"
    "  - name: solo\n"
    "    http: { url: \"http://10.77.0.1:8081/health\", expect_status: [200], timeout: 100ms }\n"
    "    interval: 100ms\n"
    "    rise: 2\n"
    "    fall: 3\n"
    "steady_state: [solo]\n"
    "faults:\n"
    "  - name: cut-web1\n"
    "    target: { hosts: [web1] }\n"
    "    network_drop: { direction: ingress }\n"
    "    duration: 2s\n"
    "recovery: { probes: [solo], timeout: 10s }\n";

/* web1 alone: nothing can take over, so the service comes back only when
 * the cut is reverted -- when HAProxy sees web1 UP again. */
static void test_no_failover(void **state)
{
    (void)state;
    int64_t d[RUNS];
    for (int i = 0; i < RUNS; i++) {
        assert_int_equal(haproxy_wait_up("web1_only/web1", 15000), 0);
        json_t *j = NULL;
        int rc = run_experiment("solo-web1", solo_yaml, &j);
        assert_non_null(j);
        json_t *m = json_object_get(j, "measurements");
        printf("[ run      ] solo-web1: %s, %s\n", jstr(j, "verdict"), jstr(j, "reason"));
        assert_int_equal(rc, 1);
        assert_string_equal(jstr(j, "verdict"), "fail");
        assert_non_null(strstr(jstr(j, "reason"), "recovered only after revert"));
        assert_true(json_is_true(json_object_get(m, "recovered_after_revert")));
        uint64_t injected = jtime(m, "injected_at"), reverted = jtime(m, "reverted_at");
        uint64_t recovered = jtime(m, "recovered_at");
        assert_true(injected > 0 && reverted > injected && recovered > reverted);
        struct bracket b;
        read_bracket(j, &b);
        uint64_t down = haproxy_event("web1_only/web1", "DOWN", injected, 2000);
        uint64_t up = haproxy_event("web1_only/web1", "UP", reverted, 5000);
        assert_true(down > 0 && up > down);
        int64_t truth = (int64_t)(up - injected), after = (int64_t)(reverted - injected);
        d[i] = b.hi - truth;
        printf("[ measured ] solo-web1: recovered in (%lld, %lld] ms after revert (resolution "
               "%lld ms; the last failure and first success sent %lld ms apart; %lld late "
               "attempts); HAProxy marked web1 UP %lld ms after revert\n",
               (long long)(b.lo - after), (long long)(b.hi - after), (long long)b.resolution,
               (long long)b.gap, (long long)b.late_attempts, (long long)(truth - after));
        fflush(stdout);
        json_decref(j);
        assert_true(in_bracket(&b, truth));
    }
    print_spread("cut web1 alone: recovered - HAProxy UP", d, RUNS);
}

/* ------------------------------------------------------------ disk fill */

static void test_disk_fill(void **state)
{
    (void)state;
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "version: 1\n"
             "name: gameday-disk-fill\n"
             "objectives: { rto: 1s }\n"
             "probes:\n"
             "  - name: app\n"
             "    http: { url: \"http://10.77.0.2:8081/health\", timeout: 500ms }\n"
             "    interval: 100ms\n"
             "    rise: 2\n"
             "    fall: 2\n"
             "steady_state: [app]\n"
             "faults:\n"
             "  - name: fill-web1\n"
             "    target: { hosts: [web1] }\n"
             "    disk_fill: { path: %s/web1/data, fill: 95%% }\n"
             "    duration: 2s\n"
             "recovery: { probes: [app], timeout: 10s }\n",
             bed);
    json_t *j = NULL;
    int rc = run_experiment("fill-web1", yaml, &j);
    assert_non_null(j);
    printf("[ run      ] fill-web1: %s, %s\n", jstr(j, "verdict"), jstr(j, "reason"));
    json_t *m = json_object_get(j, "measurements");
    assert_int_equal(rc, 1); /* the app cannot heal a full disk: FAIL */
    assert_true(json_is_true(json_object_get(m, "recovered_after_revert")));
    assert_true(json_is_true(json_object_get(m, "healthy_at_end")));
    /* the failures are the application's own words about its disk */
    json_t *probes = json_object_get(j, "probes");
    json_t *timeline = json_object_get(json_array_get(probes, 0), "timeline");
    int said_disk = 0;
    for (size_t i = 0; i < json_array_size(timeline); i++) {
        json_t *r = json_array_get(timeline, i);
        if (!json_is_true(json_object_get(r, "ok")) && strstr(jstr(r, "detail"), "503") != NULL)
            said_disk = 1;
    }
    assert_true(said_disk);
    json_decref(j);
    /* and the fill is gone */
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "ls -A %s/web1/data | grep -q faultline", bed);
    assert_int_not_equal(system(cmd), 0);
}

/* --------------------------------------------------------- crash safety */

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* Everything the crash experiment did is undone: the agents hold nothing,
 * web1 has no nft table, web2's data has no fill, its webapp runs, no CPU
 * workers on lb. Returns 0 or -1 saying what is left in why. */
static int bed_clean(char *why, size_t cap)
{
    static char out[8192];
    if (bed_cmd(out, sizeof(out), 20000, "exec", bed, "client", FL_CTL_BIN, "agents", "--inventory",
                inventory, NULL) != 0 ||
        count(out, "active") != 0) {
        snprintf(why, cap, "agents still hold faults:\n%s", out);
        return -1;
    }
    if (bed_cmd(out, sizeof(out), 20000, "exec", bed, "web1", "nft", "list", "tables", NULL) != 0 ||
        strstr(out, "faultline") != NULL) {
        snprintf(why, cap, "web1 still has: %s", out);
        return -1;
    }
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "ls -A %s/web2/data | grep -q faultline", bed);
    if (system(cmd) == 0) {
        snprintf(why, cap, "a fill file is left on web2");
        return -1;
    }
    if (system("ps -eo stat=,comm= | grep -q '^T.* webapp$'") == 0) {
        snprintf(why, cap, "a webapp is still paused");
        return -1;
    }
    return 0;
}

static void test_crash_safety(void **state)
{
    (void)state;
    char yaml[3072], path[400], log[400];
    snprintf(yaml, sizeof(yaml),
             "version: 1\n"
             "name: gameday-crash\n"
             "probes:\n"
             "  - name: frontend\n"
             "    http: { url: \"http://10.77.0.1:8080/health\", timeout: 500ms }\n"
             "    interval: 100ms\n"
             "steady_state: [frontend]\n"
             "faults:\n"
             "  - name: cut-web1\n"
             "    target: { hosts: [web1] }\n"
             "    network_drop: { direction: ingress }\n"
             "    duration: 5m\n"
             "  - name: fill-web2\n"
             "    target: { hosts: [web2] }\n"
             "    disk_fill: { path: %s/web2/data, fill: 90%% }\n"
             "    duration: 5m\n"
             "  - name: pause-app-web2\n"
             "    target: { hosts: [web2] }\n"
             "    pause_process: { name: webapp }\n"
             "    duration: 5m\n"
             "  - name: burn-lb\n"
             "    target: { hosts: [lb] }\n"
             "    cpu_stress: { workers: 1, load: 50%% }\n"
             "    duration: 5m\n",
             bed);
    snprintf(path, sizeof(path), "%s/crash.yaml", top);
    snprintf(log, sizeof(log), "%s/crash.log", top);
    assert_int_equal(write_file(path, yaml), 0);
    char *argv[] = {arg(FL_BED_SCRIPT), arg("exec"), bed,  arg("client"),
                    arg(FL_CTL_BIN),    arg("run"),  path, arg("--inventory"),
                    inventory,          NULL};
    pid_t ctl = proc_start(argv, log); /* ip netns exec execs: ctl is the controller */
    assert_true(ctl > 0);
    static char buf[65536];
    int injected = 0;
    for (int waited = 0; injected < 4 && waited < 20000; waited += 50) {
        if (file_wait_for(log, "injected", buf, sizeof(buf), 0) != NULL)
            injected = count(buf, "] injected ");
        if (injected < 4)
            sleep_ms(50);
    }
    if (injected < 4)
        fprintf(stderr, "the run said:\n%s\n", buf);
    assert_int_equal(injected, 4);

    char why[16384];
    assert_int_not_equal(bed_clean(why, sizeof(why)), 0); /* the faults are there */
    uint64_t killed = fl_mono_ms();
    assert_int_equal(kill(ctl, SIGKILL), 0);
    assert_int_equal(proc_wait(ctl, 5000), 128 + SIGKILL);

    /* the lease is 2 s: every agent reverts on its own */
    int rc = -1;
    uint64_t took = 0;
    while ((took = fl_mono_ms() - killed) < 6000 && (rc = bed_clean(why, sizeof(why))) != 0)
        sleep_ms(100);
    printf("[ measured ] controller killed -9 with 4 faults on 3 hosts: all reverted by the "
           "agents' leases (2 s) within %llu ms\n",
           (unsigned long long)took);
    fflush(stdout);
    if (rc != 0)
        fprintf(stderr, "%s\n", why);
    assert_int_equal(rc, 0);
    assert_true(took >= 1500);
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
        cmocka_unit_test(test_failover_kill), cmocka_unit_test(test_failover_partition),
        cmocka_unit_test(test_no_failover),   cmocka_unit_test(test_disk_fill),
        cmocka_unit_test(test_crash_safety),
    };
    return cmocka_run_group_tests_name("game day (HAProxy, nginx, namespaces)", tests, setup,
                                       teardown);
}
