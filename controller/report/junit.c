/* junit.xml: the run as test results, so CI shows a chaos experiment like any
 * other test (docs/design.md section 8).
 *
 *   <testsuites>
 *     <testsuite name="EXPERIMENT" tests= failures= errors= time= timestamp=>
 *       <properties> verdict, reason, experiment path </properties>
 *       <testcase classname="faultline.EXPERIMENT" name="rto">         when set
 *       <testcase ... name="rpo">                                       when set
 *       <testcase ... name="impact">     failed when impact: required saw none;
 *                                        <skipped> when optional saw none
 *       <testcase ... name="steady state returned">
 *       <system-out> the text report </system-out>
 *
 * rto passes with no impact or a recovery within the objective (checked
 * against the recovery time's upper bound, as the verdict is); rpo fails
 * when the observed RPO exceeds it ("not measured" when the read-back
 * failed); "steady state returned" fails when the steady-state probes were
 * not healthy at the end. An aborted run measured nothing trustworthy, so
 * every testcase is an <error> carrying the abort reason instead.
 *
 * Everything from the experiment or from outside is escaped (& < > " ' and,
 * in attributes, tab and newlines); control characters XML 1.0 cannot carry
 * become '?', bytes that are not UTF-8 become U+FFFD. The document is built
 * in memory (open_memstream) and written with fl_report_write_atomic. */
#include "controller/report/report.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"

static void esc(FILE *out, const char *s, bool attr)
{
    if (s == NULL)
        return;
    while (*s != '\0') {
        unsigned char c = (unsigned char)*s;
        size_t k = fl_report_utf8_seq(s);
        if (k == 0) {
            fputs("\xef\xbf\xbd", out);
            s++;
            continue;
        }
        if (k > 1) {
            fwrite(s, 1, k, out);
            s += k;
            continue;
        }
        switch (c) {
        case '&':
            fputs("&amp;", out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        case '\'':
            fputs("&apos;", out);
            break;
        case '\t':
        case '\n':
        case '\r':
            if (attr)
                fprintf(out, "&#%u;", c);
            else
                fputc(c, out);
            break;
        default:
            fputc(c < 0x20 || c == 0x7f ? '?' : c, out);
            break;
        }
        s++;
    }
}

/* "1.42 s", or "5 s" when whole. */
static const char *secs(uint64_t ms, char *buf, size_t len)
{
    if (ms % 1000u == 0) {
        snprintf(buf, len, "%llu s", (unsigned long long)(ms / 1000u));
    } else {
        uint64_t cs = (ms + 5u) / 10u;
        snprintf(buf, len, "%llu.%02llu s", (unsigned long long)(cs / 100u),
                 (unsigned long long)(cs % 100u));
    }
    return buf;
}

struct testcase {
    const char *name;
    uint64_t time_ms;
    bool failed;
    bool skipped; /* impact: optional and none: counted on its own */
    char message[320];
};

/* Fills the testcases; returns how many (at most 5). */
static size_t testcases(const struct fl_run_record *r, struct testcase *tc)
{
    const struct fl_objectives *o = &r->e->objectives;
    const struct fl_measurement *m = &r->m;
    size_t n = 0;
    char a[32], b[32], c[32];
    if (o->has_rto) {
        struct testcase *t = &tc[n++];
        memset(t, 0, sizeof(*t));
        t->name = "rto";
        secs(o->rto_ms, c, sizeof(c));
        if (!r->measured || m->unobserved) {
            t->failed = true;
            snprintf(t->message, sizeof(t->message),
                     "not measured: no recovery probe result after injection, objective %s", c);
        } else if (m->no_impact) {
            snprintf(t->message, sizeof(t->message), "no impact, objective %s", c);
        } else if (m->recovered) {
            t->time_ms = m->recovery_time_ms;
            t->failed = m->recovery_time_ms > o->rto_ms;
            snprintf(t->message, sizeof(t->message), "recovered %sin %s (±%s), objective %s",
                     m->recovered_after_revert ? "only after revert " : "",
                     secs(m->recovery_time_ms, a, sizeof(a)), secs(m->resolution_ms, b, sizeof(b)),
                     c);
        } else {
            t->failed = true;
            snprintf(t->message, sizeof(t->message),
                     "did not recover before the end of the run, objective %s", c);
        }
    }
    if (o->has_rpo) {
        struct testcase *t = &tc[n++];
        memset(t, 0, sizeof(*t));
        t->name = "rpo";
        if (!r->rpo_measured) {
            t->failed = true;
            snprintf(t->message, sizeof(t->message),
                     "not measured: the write probes did not read their records back, "
                     "objective %s",
                     secs(o->rpo_ms, c, sizeof(c)));
        } else {
            t->failed = r->rpo_ms > o->rpo_ms;
            t->time_ms = r->rpo_ms;
            snprintf(t->message, sizeof(t->message), "observed RPO %s, objective %s",
                     secs(r->rpo_ms, a, sizeof(a)), secs(o->rpo_ms, c, sizeof(c)));
        }
    }
    struct testcase *t = &tc[n++];
    memset(t, 0, sizeof(*t));
    t->name = "impact";
    if (!r->measured || m->unobserved) {
        t->failed = o->impact_required;
        snprintf(t->message, sizeof(t->message), "not measured");
    } else if (m->impacted) {
        snprintf(t->message, sizeof(t->message), "the faults had a visible effect");
    } else if (o->impact_required) {
        t->failed = true;
        snprintf(t->message, sizeof(t->message),
                 "the fault had no visible effect on any probe: check the targets (impact: "
                 "required)");
    } else {
        t->skipped = true;
        snprintf(t->message, sizeof(t->message), "no impact (impact: optional)");
    }
    if (o->has_availability) {
        t = &tc[n++];
        memset(t, 0, sizeof(*t));
        t->name = "availability";
        if (!r->avail_measured) {
            t->failed = true;
            snprintf(t->message, sizeof(t->message), "not measured: no recovery was measured");
        } else {
            t->failed = !r->avail_pass;
            snprintf(t->message, sizeof(t->message),
                     "implies %.5f%% available; each failure may last at most %s",
                     r->avail_availability * 100.0,
                     secs((uint64_t)(r->avail_max_mttr_ms > 0 ? r->avail_max_mttr_ms : 0), a,
                          sizeof(a)));
        }
    }
    t = &tc[n++];
    memset(t, 0, sizeof(*t));
    t->name = "steady state returned";
    t->failed = !r->steady_state_returned;
    snprintf(t->message, sizeof(t->message), "%s",
             r->steady_state_returned ? "the steady-state probes were healthy at the end"
                                      : "the steady-state probes were not healthy at the end of "
                                        "the run");
    return n;
}

static void document(const struct fl_run_record *r, FILE *out)
{
    struct testcase tc[5];
    size_t n = testcases(r, tc);
    bool aborted = r->verdict == FL_VERDICT_ABORTED;
    const char *abort_text = r->abort_reason[0] ? r->abort_reason : r->reason;
    size_t failures = 0, errors = 0, skipped = 0;
    for (size_t i = 0; i < n; i++) {
        if (aborted)
            errors++;
        else if (tc[i].skipped)
            skipped++;
        else
            failures += tc[i].failed;
    }
    uint64_t dur = r->ended_at_ms > r->started_at_ms ? r->ended_at_ms - r->started_at_ms : 0;
    char stamp[40] = "";
    if (r->started_at_ms != 0 && fl_format_rfc3339(r->started_at_ms, stamp, sizeof(stamp)) < 0)
        stamp[0] = '\0';
    const char *name = r->e->name ? r->e->name : "experiment";

    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", out);
    fprintf(out,
            "<testsuites name=\"faultline\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" "
            "time=\"%llu.%03llu\">\n",
            n, failures, errors, (unsigned long long)(dur / 1000u),
            (unsigned long long)(dur % 1000u));
    fputs("  <testsuite name=\"", out);
    esc(out, name, true);
    fprintf(out,
            "\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" skipped=\"%zu\" "
            "time=\"%llu.%03llu\"",
            n, failures, errors, skipped, (unsigned long long)(dur / 1000u),
            (unsigned long long)(dur % 1000u));
    if (stamp[0])
        fprintf(out, " timestamp=\"%s\"", stamp);
    fputs(">\n    <properties>\n", out);
    fprintf(out, "      <property name=\"verdict\" value=\"%s\"/>\n",
            fl_measure_verdict_name(r->verdict));
    fputs("      <property name=\"reason\" value=\"", out);
    esc(out, r->reason, true);
    fputs("\"/>\n      <property name=\"experiment\" value=\"", out);
    esc(out, r->e->path, true);
    fputs("\"/>\n    </properties>\n", out);

    for (size_t i = 0; i < n; i++) {
        fputs("    <testcase classname=\"faultline.", out);
        esc(out, name, true);
        fputs("\" name=\"", out);
        esc(out, tc[i].name, true);
        fprintf(out, "\" time=\"%llu.%03llu\"", (unsigned long long)(tc[i].time_ms / 1000u),
                (unsigned long long)(tc[i].time_ms % 1000u));
        if (!aborted && tc[i].skipped) {
            fputs(">\n      <skipped message=\"", out);
            esc(out, tc[i].message, true);
            fputs("\"/>\n    </testcase>\n", out);
            continue;
        }
        const char *tag = aborted ? "error" : tc[i].failed ? "failure" : NULL;
        if (tag == NULL) {
            fputs("/>\n", out);
            continue;
        }
        const char *msg = aborted ? abort_text : tc[i].message;
        fprintf(out, ">\n      <%s message=\"", tag);
        esc(out, msg, true);
        fprintf(out, "\" type=\"%s\">", aborted ? "aborted" : tc[i].name);
        esc(out, msg, false);
        if (aborted) {
            fputs("\n(", out);
            esc(out, tc[i].name, false);
            fputs(": ", out);
            esc(out, tc[i].message, false);
            fputs(")", out);
        }
        fprintf(out, "</%s>\n    </testcase>\n", tag);
    }

    char *text = NULL;
    size_t text_len = 0;
    FILE *t = open_memstream(&text, &text_len);
    if (t != NULL) {
        int rc = fl_report_text(r, t);
        if (fclose(t) == 0 && rc == 0 && text != NULL) {
            fputs("    <system-out>", out);
            esc(out, text, false);
            fputs("</system-out>\n", out);
        }
    }
    free(text);
    fputs("  </testsuite>\n</testsuites>\n", out);
}

int fl_report_junit(const struct fl_run_record *r, const char *path, char *err, size_t errlen)
{
    if (r == NULL || r->e == NULL || path == NULL || err == NULL)
        return -EINVAL;
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (out == NULL) {
        snprintf(err, errlen, "%s: out of memory while building the report", path);
        return -ENOMEM;
    }
    document(r, out);
    bool bad = ferror(out) != 0;
    if (fclose(out) != 0 || bad || buf == NULL) {
        free(buf);
        snprintf(err, errlen, "%s: out of memory while building the report", path);
        return -ENOMEM;
    }
    int rc = fl_report_write_atomic(path, buf, len, err, errlen);
    free(buf);
    return rc;
}
