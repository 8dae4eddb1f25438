/* The end-of-run summary on the terminal: what a person reads first, so the
 * verdict comes first, then the numbers that explain it, then every fault
 * (a fault that could not be reverted is the loudest thing on the page: the
 * system under test is still broken) and every probe. Times are relative to
 * injection ("+0.40s"); the recovery time comes with its resolution, since the
 * system recovered somewhere between the last failure and the first success
 * of the run that counted (docs/design.md section 6). Plain ASCII apart from "±",
 * no terminal escapes: it also goes to logs and CI output. */
#include "controller/report/report.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "controller/report/faultprint.h"

/* Seconds with two decimals ("1.42 s"), rounded up as the verdict's sentence
 * rounds them (a recovery time is an upper bound: 5001 ms is not "5.00 s");
 * whole seconds without when whole is set and ms is a whole number of
 * seconds ("5 s"). sep goes between number and unit. */
static const char *secs(uint64_t ms, bool whole, const char *sep, char *buf, size_t len)
{
    if (whole && ms % 1000u == 0) {
        snprintf(buf, len, "%llu%ss", (unsigned long long)(ms / 1000u), sep);
    } else {
        uint64_t cs = ms / 10u + (ms % 10u != 0); /* hundredths, rounded up */
        snprintf(buf, len, "%llu.%02llu%ss", (unsigned long long)(cs / 100u),
                 (unsigned long long)(cs % 100u), sep);
    }
    return buf;
}

/* "+0.40s" relative to injection, "-1.20s" before it, "-" when t is 0. */
static const char *rel(uint64_t t, uint64_t injected, char *buf, size_t len)
{
    if (t == 0 || injected == 0) {
        snprintf(buf, len, "-");
        return buf;
    }
    char num[32];
    if (t >= injected) {
        secs(t - injected, false, "", num, sizeof(num));
        snprintf(buf, len, "+%s", num);
    } else {
        secs(injected - t, false, "", num, sizeof(num));
        snprintf(buf, len, "-%s", num);
    }
    return buf;
}

/* s with control characters (escapes included) as '?': details come from
 * agents and probes, and must not drive the terminal. */
static const char *clean(const char *s, char *buf, size_t len)
{
    size_t i = 0;
    for (; s[i] != '\0' && i + 1 < len; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    buf[i] = '\0';
    return buf;
}

static const char *verdict_caps(enum fl_verdict v)
{
    return fl_measure_verdict_caps(v);
}

static void print_times(const struct fl_run_record *r, FILE *out)
{
    const struct fl_measurement *m = &r->m;
    uint64_t inj = r->injected_at_ms;
    char a[48];
    if (inj == 0) {
        fprintf(out, "  nothing was injected\n");
        return;
    }
    char stamp[40];
    if (fl_format_rfc3339(inj, stamp, sizeof(stamp)) < 0)
        snprintf(stamp, sizeof(stamp), "?");
    fprintf(out, "  injected   +0.00s  (%s)\n", stamp);
    if (!r->measured || m->unobserved) {
        fprintf(out, "  impact     not observed: no recovery probe result after injection\n");
    } else if (m->no_impact) {
        fprintf(out, "  impact     none: no probe failed\n");
    } else {
        fprintf(out, "  impact     %s\n", rel(m->impacted ? m->impact_at : 0, inj, a, sizeof(a)));
        fprintf(out, "  detected   %s%s\n",
                rel(m->detected ? m->detected_at : 0, inj, a, sizeof(a)),
                m->detected ? "" : "  (never reached fall failures in a row)");
        fprintf(out, "  recovered  %s%s\n",
                rel(m->recovered ? m->recovered_at : 0, inj, a, sizeof(a)),
                m->recovered ? "" : "  (did not recover)");
    }
    if (r->reverted_at_ms == 0)
        fprintf(out, "  reverted   nothing to undo\n");
    else
        fprintf(out, "  reverted   %s\n", rel(r->reverted_at_ms, inj, a, sizeof(a)));
}

/* Each objective, met or not, in one line: the recovery sentence itself is
 * the verdict's reason, printed once above. */
static void print_objectives(const struct fl_run_record *r, FILE *out)
{
    const struct fl_objectives *o = &r->e->objectives;
    const struct fl_measurement *m = &r->m;
    bool measured = r->measured && !m->unobserved;
    bool aborted = r->verdict == FL_VERDICT_ABORTED;
    char t[32];
    fprintf(out, "objectives:");
    if (o->has_rto) {
        const char *st = !measured || aborted               ? "NOT JUDGED"
                         : m->no_impact                     ? "met (no impact)"
                         : !m->recovered                    ? "FAILED (did not recover)"
                         : m->recovered_after_revert        ? "FAILED (healed only after revert)"
                         : m->recovery_time_ms <= o->rto_ms ? "met"
                                                            : "FAILED";
        fprintf(out, " rto %s %s;", secs(o->rto_ms, true, " ", t, sizeof(t)), st);
    }
    if (o->has_rpo && !r->rpo_measured)
        fprintf(out, " rpo %s NOT MEASURED;", secs(o->rpo_ms, true, " ", t, sizeof(t)));
    else if (o->has_rpo)
        fprintf(out, " rpo %s %s (observed %llu ms);", secs(o->rpo_ms, true, " ", t, sizeof(t)),
                r->rpo_ms <= o->rpo_ms ? "met" : "FAILED", (unsigned long long)r->rpo_ms);
    fprintf(out, " impact %s: %s;", o->impact_required ? "required" : "optional",
            !measured            ? "not measured"
            : m->impacted        ? "seen"
            : o->impact_required ? "NONE (the faults had no visible effect)"
                                 : "none");
    fprintf(out, " steady state returned: %s\n", r->steady_state_returned ? "yes" : "NO");
}

static void print_faults(const struct fl_run_record *r, FILE *out)
{
    if (r->n_faults == 0)
        return;
    fprintf(out, "faults:\n");
    char a[48], b[48];
    for (size_t i = 0; i < r->n_faults; i++) {
        const struct fl_run_fault *f = &r->faults[i];
        const char *hname = f->host && f->host->name ? f->host->name : "?";
        const char *haddr = f->host && f->host->address ? f->host->address : "?";
        const char *kind = f->fault ? fl_fault_kind_name(f->fault->spec) : "?";
        const char *fname = f->fault && f->fault->name ? f->fault->name : "?";
        fprintf(out, "  %s on %s (%s): %s %s  applied %s  reverted %s  %s\n", fname, hname, haddr,
                kind, f->id[0] ? f->id : "(no id)",
                rel(f->applied_at_ms, r->injected_at_ms, a, sizeof(a)),
                rel(f->reverted_at_ms, r->injected_at_ms, b, sizeof(b)),
                f->revert_failed ? "REVERT FAILED" : f->outcome);
        char detail[sizeof(f->detail)];
        if (f->detail[0])
            fprintf(out, "    %s\n", clean(f->detail, detail, sizeof(detail)));
        if (f->revert_failed)
            fprintf(out,
                    "    !!! REVERT FAILED: the fault may still be active on %s. Check it with "
                    "`faultline agents %s` and revert it with `faultline revert %s %s`.\n",
                    hname, hname, hname, f->id[0] ? f->id : "--all");
    }
}

static void print_probes(const struct fl_run_record *r, FILE *out)
{
    if (r->n_probes == 0)
        return;
    fprintf(out, "probes:\n");
    for (size_t i = 0; i < r->n_probes; i++) {
        const struct fl_run_probe *p = &r->probes[i];
        const struct fl_probe_counts *c = &p->tl.counts;
        fprintf(out, "  %s (%s): %llu results, %llu failures",
                p->spec && p->spec->name ? p->spec->name : "?",
                p->spec ? fl_probe_type_name(p->spec->type) : "?", (unsigned long long)c->attempts,
                (unsigned long long)(c->failed + c->timeout));
        if (c->timeout > 0)
            fprintf(out, " (%llu timeouts)", (unsigned long long)c->timeout);
        if (c->late > 0)
            fprintf(out, ", %llu late (the controller's, not counted)",
                    (unsigned long long)c->late);
        fprintf(out, "%s\n", p->in_recovery ? ", recovery probe" : "");
        if (p->is_writer)
            fprintf(out, "    data: %s\n",
                    p->rpo_measured ? p->rpo.summary
                                    : (p->rpo_error[0] ? p->rpo_error : "not read back"));
    }
}

/* The controller's own lateness, when there was any. */
static void print_controller(const struct fl_run_record *r, FILE *out)
{
    const struct fl_controller_figures *c = &r->controller;
    if (c->late == 0 && c->late_starts == 0 && c->skipped == 0)
        return;
    fprintf(out,
            "controller%s: %llu of %llu attempts late, %llu started %llu ms or more after due "
            "(at most %llu ms), %llu due times skipped; its loop stalled up to %llu ms\n",
            c->overloaded ? " OVERLOADED" : " was late", (unsigned long long)c->late,
            (unsigned long long)c->attempts, (unsigned long long)c->late_starts,
            (unsigned long long)c->late_threshold_ms, (unsigned long long)c->max_start_late_ms,
            (unsigned long long)c->skipped, (unsigned long long)c->longest_stall_ms);
    if (!r->attempts_written && r->attempts_error[0])
        fprintf(out, "attempts.jsonl incomplete: %s\n", r->attempts_error);
}

int fl_report_text(const struct fl_run_record *r, FILE *out)
{
    if (r == NULL || r->e == NULL || out == NULL)
        return -EINVAL;
    fprintf(out, "experiment %s: %s\n", r->e->name ? r->e->name : "?", verdict_caps(r->verdict));
    char buf[sizeof(r->abort_reason) > sizeof(r->reason) ? sizeof(r->abort_reason)
                                                         : sizeof(r->reason)];
    fprintf(out, "  %s\n", r->reason[0] ? clean(r->reason, buf, sizeof(buf)) : "(no reason given)");
    if (r->verdict == FL_VERDICT_ABORTED && r->abort_reason[0] &&
        strstr(r->reason, r->abort_reason) == NULL)
        fprintf(out, "  aborted: %s\n", clean(r->abort_reason, buf, sizeof(buf)));
    print_times(r, out);
    print_objectives(r, out);
    print_faults(r, out);
    print_probes(r, out);
    print_controller(r, out);
    if (fflush(out) != 0 || ferror(out))
        return -EIO;
    return 0;
}
