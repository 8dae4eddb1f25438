/* The three reports of `faultline run` on hand-made run records: run.json's
 * every field, type and value; junit.xml's testcases, failures and escaping;
 * the text summary's verdict, recovery time and failed revert. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "common/clock.h"
#include "controller/experiment/faultspec.h"
#include "controller/report/report.h"

#define T0 1764089460000ull /* 2025-11-25T16:51:00.000Z: injection */
#define STEP 100u
#define NAME "web<&>\"'crash"
#define REASON "recovered in 1.40s (±0.10s), objective 5s <&>\"'"

/* Everything one test needs, all on the heap or in here. */
struct fixture {
    char dir[64];
    char json_path[128];
    char junit_path[128];
    struct fl_host hosts[2];
    struct fl_fault faults[2];
    struct fl_probe_spec probes[2];
    struct fl_experiment e;
    struct fl_probe_result results[2][64];
    size_t n_results[2];
    struct fl_run_probe rprobes[2];
    struct fl_run_fault rfaults[2];
    struct fl_run_record r;
};

static Faultline__FaultSpec *spec(const char *kind, const char *const *kv)
{
    char err[256];
    Faultline__FaultSpec *s = fl_faultspec_new(kind, err, sizeof(err));
    assert_non_null(s);
    for (size_t i = 0; kv[i] != NULL; i += 2)
        assert_int_equal(fl_faultspec_set(s, kv[i], kv[i + 1], err, sizeof(err)), 0);
    assert_int_equal(fl_faultspec_check(s, err, sizeof(err)), 0);
    return s;
}

/* Timeline from T0-1000 to T0+3000 every 100ms; pattern over the same slots. */
static size_t timeline(struct fl_probe_result *r, const char *pattern)
{
    size_t n = 0;
    for (size_t i = 0; pattern[i] != '\0'; i++) {
        memset(&r[n], 0, sizeof(r[n]));
        r[n].started_ms = T0 - 1000 + i * STEP;
        r[n].latency_ms = 0;
        r[n].ok = pattern[i] == '+';
        snprintf(r[n].detail, sizeof(r[n].detail), "%s",
                 r[n].ok ? "200" : "connection refused <&>");
        n++;
    }
    return n;
}

/* recovers: the frontend fails from +0.40s to +1.30s and then recovers. */
static void build(struct fixture *f, bool recovers)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/report_test.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->json_path, sizeof(f->json_path), "%s/run.json", f->dir);
    snprintf(f->junit_path, sizeof(f->junit_path), "%s/junit.xml", f->dir);

    f->hosts[0].name = "web1";
    f->hosts[0].address = "10.77.0.2";
    f->hosts[0].port = 7411;
    f->hosts[1].name = "db1";
    f->hosts[1].address = "fd00::3";
    f->hosts[1].port = 7412;

    static const char *const kill[] = {"name", "nginx", "signal", "KILL", "duration", "30s", NULL};
    static const char *const drop[] = {"direction", "ingress", "peers", "10.0.0.0/8,fd00::1",
                                       "protocol",  "tcp",     "ports", "5432,8000-8080",
                                       "duration",  "20s",     NULL};
    f->faults[0].name = "kill-nginx";
    f->faults[0].spec = spec("kill_process", kill);
    f->faults[0].duration_ms = 30000;
    f->faults[1].name = "cut-db";
    f->faults[1].spec = spec("network_drop", drop);
    f->faults[1].start_ms = 500;
    f->faults[1].duration_ms = 20000;

    f->probes[0].name = "frontend";
    f->probes[0].type = FL_PROBE_HTTP;
    f->probes[0].u.http.url = "http://10.77.0.1:8080/health?a=1&b=2";
    f->probes[0].interval_ms = STEP;
    f->probes[0].timeout_ms = 500;
    f->probes[0].rise = 2;
    f->probes[0].fall = 3;
    f->probes[1].name = "db";
    f->probes[1].type = FL_PROBE_TCP;
    f->probes[1].u.tcp.host = "10.77.0.3";
    f->probes[1].u.tcp.port = 5432;
    f->probes[1].interval_ms = STEP;
    f->probes[1].timeout_ms = 100;
    f->probes[1].rise = 1;
    f->probes[1].fall = 1;

    f->e.path = "experiments/web<&>.yaml";
    f->e.version = 1;
    f->e.name = NAME;
    f->e.description = NULL;
    f->e.inventory.hosts = f->hosts;
    f->e.inventory.n_hosts = 2;
    f->e.objectives.has_rto = true;
    f->e.objectives.rto_ms = 5000;
    f->e.objectives.has_rpo = true;
    f->e.objectives.rpo_ms = 0;
    f->e.probes = f->probes;
    f->e.n_probes = 2;
    f->e.faults = f->faults;
    f->e.n_faults = 2;

    /* One result per 100ms from T0-1s: injection is the 11th, failures +0.40s to +1.30s. */
    const char *front = recovers ? "++++++++++++++----------+++++++++++++++++"
                                 : "++++++++++++++---------------------------";
    const char *db = "+++++++++++++++++++++++++++++++++++++++++";
    f->n_results[0] = timeline(f->results[0], front);
    f->n_results[1] = timeline(f->results[1], db);
    f->rprobes[0].spec = &f->probes[0];
    f->rprobes[0].in_recovery = true;
    f->rprobes[1].spec = &f->probes[1];
    for (size_t i = 0; i < 2; i++) {
        struct fl_run_probe *p = &f->rprobes[i];
        fl_timeline_init(&p->tl, p->spec->rise, p->spec->fall);
        fl_timeline_inject(&p->tl, T0);
        for (size_t k = 0; k < f->n_results[i]; k++) {
            f->results[i][k].outcome = f->results[i][k].ok ? FL_OUTCOME_OK : FL_OUTCOME_FAILED;
            assert_int_equal(fl_timeline_add(&p->tl, &f->results[i][k], NULL), 0);
        }
        assert_int_equal(fl_timeline_measure(&p->tl, T0 + 30000, T0 + 3000, &p->m), 0);
        p->measured = true;
    }

    f->rfaults[0].fault = &f->faults[0];
    f->rfaults[0].host = &f->hosts[0];
    snprintf(f->rfaults[0].id, sizeof(f->rfaults[0].id), "f-0001");
    f->rfaults[0].scheduled_at_ms = T0 - 20;
    f->rfaults[0].applied_at_ms = T0;
    f->rfaults[0].reverted_at_ms = T0 + 30000;
    snprintf(f->rfaults[0].outcome, sizeof(f->rfaults[0].outcome), "reverted");
    snprintf(f->rfaults[0].detail, sizeof(f->rfaults[0].detail), "sent KILL to nginx[123]");
    f->rfaults[1].fault = &f->faults[1];
    f->rfaults[1].host = &f->hosts[1];
    snprintf(f->rfaults[1].id, sizeof(f->rfaults[1].id), "f-0002");
    f->rfaults[1].scheduled_at_ms = T0 + 480;
    f->rfaults[1].applied_at_ms = T0 + 500;
    f->rfaults[1].revert_failed = true;
    snprintf(f->rfaults[1].outcome, sizeof(f->rfaults[1].outcome), "REVERT FAILED");
    /* Not UTF-8 on purpose: the reports must still be well-formed. */
    snprintf(f->rfaults[1].detail, sizeof(f->rfaults[1].detail), "nft: table busy \xff\xfe <&>");

    f->r.e = &f->e;
    f->r.started_at_ms = T0 - 1500;
    f->r.injected_at_ms = T0;
    f->r.reverted_at_ms = T0 + 30000;
    f->r.ended_at_ms = T0 + 31234;
    f->r.probes = f->rprobes;
    f->r.n_probes = 2;
    f->r.faults = f->rfaults;
    f->r.n_faults = 2;
    f->r.measured = true;
    f->r.m = f->rprobes[0].m; /* the only recovery probe */
    f->r.steady_state_returned = recovers;
    f->r.verdict = recovers ? FL_VERDICT_PASS : FL_VERDICT_FAIL;
    snprintf(f->r.reason, sizeof(f->r.reason), "%s", recovers ? REASON : "did not recover <&>\"'");
}

static void destroy(struct fixture *f)
{
    fl_faultspec_free(f->faults[0].spec);
    fl_faultspec_free(f->faults[1].spec);
    fl_timeline_free(&f->rprobes[0].tl);
    fl_timeline_free(&f->rprobes[1].tl);
    unlink(f->json_path);
    unlink(f->junit_path);
    assert_int_equal(rmdir(f->dir), 0); /* nothing else, no .tmp, was left */
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static void assert_rfc3339(const json_t *v, uint64_t expect_ms)
{
    assert_true(json_is_string(v));
    const char *s = json_string_value(v);
    /* 2025-11-25T16:51:00.123Z */
    assert_int_equal(strlen(s), 24);
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    for (size_t i = 0; i < 24; i++) {
        if (shape[i] == 'd')
            assert_true(s[i] >= '0' && s[i] <= '9');
        else
            assert_int_equal(s[i], shape[i]);
    }
    char want[40];
    assert_true(fl_format_rfc3339(expect_ms, want, sizeof(want)) > 0);
    assert_string_equal(s, want);
}

static json_t *get(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL)
        fail_msg("run.json lacks \"%s\"", key);
    return (json_t *)v;
}

static json_int_t integer(const json_t *o, const char *key)
{
    json_t *v = get(o, key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static const char *string(const json_t *o, const char *key)
{
    json_t *v = get(o, key);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

static bool boolean(const json_t *o, const char *key)
{
    json_t *v = get(o, key);
    assert_true(json_is_boolean(v));
    return json_is_true(v);
}

static json_t *load(const char *path)
{
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    if (doc == NULL)
        fail_msg("run.json does not parse: %s at %d:%d", jerr.text, jerr.line, jerr.column);
    return doc;
}

static void test_json_recovered(void **state)
{
    (void)state;
    struct fixture *f = malloc(sizeof(*f));
    assert_non_null(f);
    build(f, true);
    char err[256] = "";
    assert_int_equal(fl_report_json(&f->r, f->json_path, err, sizeof(err)), 0);

    struct stat st;
    assert_int_equal(stat(f->json_path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);

    json_t *doc = load(f->json_path);
    assert_int_equal(integer(doc, "format"), 2);
    json_t *ex = get(doc, "experiment");
    assert_string_equal(string(ex, "name"), NAME);
    assert_true(json_is_null(get(ex, "description")));
    assert_string_equal(string(ex, "path"), "experiments/web<&>.yaml");
    assert_string_equal(string(doc, "verdict"), "pass");
    assert_string_equal(string(doc, "reason"), REASON);
    assert_true(json_is_null(get(doc, "abort_reason")));
    assert_rfc3339(get(doc, "started_at"), T0 - 1500);
    assert_rfc3339(get(doc, "ended_at"), T0 + 31234);

    json_t *m = get(doc, "measurements");
    assert_rfc3339(get(m, "injected_at"), T0);
    assert_rfc3339(get(m, "reverted_at"), T0 + 30000);
    assert_rfc3339(get(m, "impact_at"), T0 + 400);
    assert_rfc3339(get(m, "detected_at"), T0 + 600);
    assert_rfc3339(get(m, "recovered_at"), T0 + 1400);
    assert_rfc3339(get(m, "last_failure_at"), T0 + 1300);
    assert_int_equal(integer(m, "recovery_time_ms"), 1400);
    assert_int_equal(integer(m, "resolution_ms"), 100);
    assert_false(boolean(m, "no_impact"));
    assert_false(boolean(m, "recovered_after_revert"));
    assert_false(boolean(m, "unobserved"));
    assert_true(boolean(m, "steady_state_returned"));
    assert_true(boolean(m, "healthy_at_end"));
    assert_int_equal(integer(m, "n_results"), 31);
    assert_int_equal(integer(m, "n_failures"), 10);
    assert_null(json_object_get(m, "rpo_ms")); /* no data probe: omitted */

    json_t *obj = get(doc, "objectives");
    assert_int_equal(integer(obj, "rto_ms"), 5000);
    assert_int_equal(integer(obj, "rpo_ms"), 0);

    json_t *faults = get(doc, "faults");
    assert_int_equal(json_array_size(faults), 2);
    json_t *f0 = json_array_get(faults, 0);
    assert_string_equal(string(f0, "name"), "kill-nginx");
    assert_string_equal(string(get(f0, "host"), "name"), "web1");
    assert_string_equal(string(get(f0, "host"), "address"), "10.77.0.2");
    assert_int_equal(integer(get(f0, "host"), "port"), 7411);
    assert_string_equal(string(f0, "kind"), "kill_process");
    json_t *p0 = get(f0, "parameters");
    assert_string_equal(string(get(p0, "target"), "name"), "nginx");
    assert_int_equal(json_object_size(get(p0, "target")), 1); /* only the chosen selector */
    assert_int_equal(integer(p0, "signal"), 9);
    assert_string_equal(string(p0, "mode"), "once");
    assert_int_equal(integer(f0, "duration_ms"), 30000);
    assert_int_equal(integer(f0, "start_ms"), 0);
    assert_string_equal(string(f0, "id"), "f-0001");
    assert_rfc3339(get(f0, "scheduled_at"), T0 - 20);
    assert_rfc3339(get(f0, "applied_at"), T0);
    assert_rfc3339(get(f0, "reverted_at"), T0 + 30000);
    assert_string_equal(string(f0, "outcome"), "reverted");
    assert_false(boolean(f0, "revert_failed"));
    assert_string_equal(string(f0, "detail"), "sent KILL to nginx[123]");

    json_t *f1 = json_array_get(faults, 1);
    assert_string_equal(string(f1, "kind"), "network_drop");
    assert_string_equal(string(get(f1, "host"), "address"), "fd00::3");
    json_t *p1 = get(f1, "parameters");
    assert_string_equal(string(p1, "direction"), "ingress");
    assert_string_equal(string(p1, "protocol"), "tcp");
    assert_string_equal(string(p1, "action"), "drop");
    json_t *peers = get(p1, "peers");
    assert_int_equal(json_array_size(peers), 2);
    assert_string_equal(json_string_value(json_array_get(peers, 1)), "fd00::1");
    json_t *ports = get(p1, "ports");
    assert_int_equal(json_array_size(ports), 2);
    assert_int_equal(integer(json_array_get(ports, 1), "first"), 8000);
    assert_int_equal(integer(json_array_get(ports, 1), "last"), 8080);
    assert_true(json_is_null(get(f1, "reverted_at")));
    assert_string_equal(string(f1, "outcome"), "REVERT FAILED");
    assert_true(boolean(f1, "revert_failed"));
    assert_string_equal(string(f1, "detail"), "nft: table busy \xef\xbf\xbd\xef\xbf\xbd <&>");

    json_t *probes = get(doc, "probes");
    assert_int_equal(json_array_size(probes), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *p = json_array_get(probes, i);
        const struct fl_run_probe *rp = &f->rprobes[i];
        assert_string_equal(string(p, "name"), rp->spec->name);
        assert_string_equal(string(p, "kind"), i == 0 ? "http" : "tcp");
        assert_int_equal(integer(p, "interval_ms"), STEP);
        assert_int_equal(integer(p, "rise"), rp->spec->rise);
        assert_int_equal(integer(p, "fall"), rp->spec->fall);
        assert_int_equal(boolean(p, "in_recovery"), i == 0);
        assert_true(json_is_object(get(p, "measurement")));
        /* format 2: counts, and every failure inside one run of failures */
        assert_null(json_object_get(p, "timeline"));
        assert_int_equal(integer(get(p, "counts"), "attempts"), f->n_results[i]);
        size_t fails = 0, first_fail = SIZE_MAX;
        for (size_t k = 0; k < f->n_results[i]; k++)
            if (!f->results[i][k].ok) {
                fails++;
                if (first_fail == SIZE_MAX)
                    first_fail = k;
            }
        assert_int_equal(integer(get(p, "counts"), "failed"), fails);
        json_t *runs = get(p, "failures");
        size_t counted = 0;
        for (size_t k = 0; k < json_array_size(runs); k++)
            counted += (size_t)integer(json_array_get(runs, k), "count");
        assert_int_equal(counted, fails);
        if (fails > 0) {
            json_t *run0 = json_array_get(runs, 0);
            assert_rfc3339(get(run0, "first_at"), f->results[i][first_fail].started_ms);
            assert_string_equal(string(run0, "outcome"), "failed");
            assert_string_equal(string(run0, "detail"), f->results[i][first_fail].detail);
        }
        assert_int_equal(json_array_size(get(p, "late")), 0);
        assert_true(json_is_array(get(p, "health")));
    }
    assert_string_equal(string(get(json_array_get(probes, 0), "target"), "url"),
                        "http://10.77.0.1:8080/health?a=1&b=2");
    assert_int_equal(integer(get(json_array_get(probes, 1), "measurement"), "recovery_time_ms"),
                     0); /* db was never impacted */
    assert_true(boolean(get(json_array_get(probes, 1), "measurement"), "no_impact"));
    json_decref(doc);

    /* Written again over the old one: replaced atomically, no .tmp left. */
    assert_int_equal(fl_report_json(&f->r, f->json_path, err, sizeof(err)), 0);
    destroy(f);
    free(f);
}

static void test_json_not_recovered(void **state)
{
    (void)state;
    struct fixture *f = malloc(sizeof(*f));
    assert_non_null(f);
    build(f, false);
    char err[256] = "";
    assert_int_equal(fl_report_json(&f->r, f->json_path, err, sizeof(err)), 0);
    json_t *doc = load(f->json_path);
    assert_string_equal(string(doc, "verdict"), "fail");
    json_t *m = get(doc, "measurements");
    assert_rfc3339(get(m, "impact_at"), T0 + 400);
    assert_true(json_is_null(get(m, "recovered_at")));
    assert_true(json_is_null(get(m, "last_failure_at")));
    assert_true(json_is_null(get(m, "recovery_time_ms")));
    assert_true(json_is_null(get(m, "resolution_ms")));
    assert_false(boolean(m, "steady_state_returned"));
    json_decref(doc);
    destroy(f);
    free(f);
}

static void test_json_errors(void **state)
{
    (void)state;
    struct fixture *f = malloc(sizeof(*f));
    assert_non_null(f);
    build(f, true);
    char err[256] = "";
    char bad[160];
    snprintf(bad, sizeof(bad), "%s/missing/run.json", f->dir);
    assert_int_equal(fl_report_json(&f->r, bad, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "report directory"));
    assert_int_equal(fl_report_junit(&f->r, bad, err, sizeof(err)), -ENOENT);
    assert_int_equal(fl_report_json(NULL, f->json_path, err, sizeof(err)), -EINVAL);
    assert_int_equal(fl_report_text(NULL, stdout), -EINVAL);
    destroy(f);
    free(f);
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_junit(void **state)
{
    (void)state;
    struct fixture *f = malloc(sizeof(*f));
    assert_non_null(f);
    build(f, true);
    char err[256] = "";
    assert_int_equal(fl_report_junit(&f->r, f->junit_path, err, sizeof(err)), 0);
    char *x = slurp(f->junit_path);
    assert_non_null(strstr(x, "<testsuite name=\"web&lt;&amp;&gt;&quot;&apos;crash\" tests=\"4\" "
                              "failures=\"1\" errors=\"0\" skipped=\"0\""));
    assert_int_equal(count(x, "<testcase "), 4);
    assert_non_null(strstr(x, "name=\"impact\" time=\"0.000\"/>")); /* seen */
    assert_non_null(strstr(x, "name=\"rto\" time=\"1.400\"/>"));    /* passed */
    assert_non_null(strstr(x, "name=\"rpo\""));
    assert_int_equal(count(x, "<failure "), 1);
    assert_non_null(strstr(x, "<failure message=\"not measured: the write probes did not read "
                              "their records back, objective 0 s\" type=\"rpo\">"));
    assert_non_null(strstr(x, "name=\"steady state returned\" time=\"0.000\"/>"));
    assert_non_null(strstr(x, "value=\"recovered in 1.40s (±0.10s), objective 5s "
                              "&lt;&amp;&gt;&quot;&apos;\""));
    assert_null(strstr(x, "<&>")); /* nothing unescaped from the record */
    assert_null(strstr(x, "\xff"));
    free(x);
    destroy(f);
    free(f);
}

static void test_junit_failed_and_aborted(void **state)
{
    (void)state;
    struct fixture *f = malloc(sizeof(*f));
    assert_non_null(f);
    build(f, false);
    char err[256] = "";
    assert_int_equal(fl_report_junit(&f->r, f->junit_path, err, sizeof(err)), 0);
    char *x = slurp(f->junit_path);
    assert_int_equal(count(x, "<failure "), 3);
    assert_non_null(strstr(x, "did not recover before the end of the run, objective 5 s"));
    assert_non_null(strstr(x, "not healthy at the end of the run"));
    free(x);

    f->r.verdict = FL_VERDICT_ABORTED;
    snprintf(f->r.abort_reason, sizeof(f->r.abort_reason), "probe <front&end> unhealthy for 20s");
    snprintf(f->r.reason, sizeof(f->r.reason), "aborted: probe <front&end> unhealthy for 20s");
    assert_int_equal(fl_report_junit(&f->r, f->junit_path, err, sizeof(err)), 0);
    x = slurp(f->junit_path);
    assert_int_equal(count(x, "<failure "), 0);
    assert_int_equal(count(x, "<error message=\"probe &lt;front&amp;end&gt; unhealthy for 20s\" "
                              "type=\"aborted\">"),
                     4);
    assert_non_null(strstr(x, "tests=\"4\" failures=\"0\" errors=\"4\""));
    free(x);

    /* impact: optional and none: PASS (no impact), the impact case skipped */
    f->r.verdict = FL_VERDICT_PASS_NO_IMPACT;
    f->r.abort_reason[0] = '\0';
    f->r.m.impacted = false;
    f->r.m.no_impact = true;
    f->r.steady_state_returned = true;
    f->e.objectives.impact_required = false;
    f->e.objectives.has_rpo = false;
    assert_int_equal(fl_report_junit(&f->r, f->junit_path, err, sizeof(err)), 0);
    x = slurp(f->junit_path);
    assert_non_null(strstr(x, "skipped=\"1\""));
    assert_non_null(strstr(x, "<skipped message=\"no impact (impact: optional)\"/>"));
    assert_non_null(strstr(x, "value=\"pass_no_impact\""));
    free(x);
    /* impact: required and none: the impact case fails */
    f->r.verdict = FL_VERDICT_FAIL;
    f->e.objectives.impact_required = true;
    assert_int_equal(fl_report_junit(&f->r, f->junit_path, err, sizeof(err)), 0);
    x = slurp(f->junit_path);
    assert_non_null(strstr(x, "type=\"impact\""));
    free(x);
    destroy(f);
    free(f);
}

static char *text_report(const struct fl_run_record *r)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_non_null(out);
    assert_int_equal(fl_report_text(r, out), 0);
    assert_int_equal(fclose(out), 0);
    assert_null(strchr(buf, '\033'));
    return buf;
}

static void test_text(void **state)
{
    (void)state;
    struct fixture *f = malloc(sizeof(*f));
    assert_non_null(f);
    build(f, true);
    char *t = text_report(&f->r);
    assert_non_null(strstr(t, NAME ": PASS"));
    assert_non_null(strstr(t, REASON));
    assert_non_null(strstr(t, "impact     +0.40s"));
    assert_non_null(strstr(t, "detected   +0.60s"));
    assert_non_null(strstr(t, "recovered  +1.40s"));
    /* the recovery sentence once (the reason), then each objective */
    assert_null(strstr(strstr(t, REASON) + 1, "recovered in"));
    assert_non_null(strstr(t, "objectives: rto 5 s met; rpo 0 s NOT MEASURED;"));
    assert_non_null(strstr(t, "web1 (10.77.0.2): kill_process f-0001"));
    assert_non_null(strstr(t, "!!! REVERT FAILED"));
    assert_non_null(strstr(t, "faultline revert db1 f-0002"));
    assert_non_null(strstr(t, "frontend (http): 41 results, 10 failures"));
    free(t);

    snprintf(f->rfaults[0].detail, sizeof(f->rfaults[0].detail), "red \033[31mtext");
    f->r.m.recovery_time_ms = 6420; /* as if it had recovered later */
    f->r.verdict = FL_VERDICT_FAIL;
    t = text_report(&f->r);
    assert_non_null(strstr(t, ": FAIL\n"));
    assert_non_null(strstr(t, "objectives: rto 5 s FAILED;"));
    free(t);

    destroy(f);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_recovered),
        cmocka_unit_test(test_json_not_recovered),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_junit),
        cmocka_unit_test(test_junit_failed_and_aborted),
        cmocka_unit_test(test_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
