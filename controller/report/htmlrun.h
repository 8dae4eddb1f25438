/* A run as the HTML reports see it: read from a run folder alone (run.json
 * and the files next to it), in either layout of run.json:
 *
 *   format 1  probes[i].timeline[] of {started_at, latency_ms, ok, detail};
 *             the health bands are derived from it with the probe's rise and
 *             fall (controller/probes/health.c);
 *   format 2  probes[i].counts, .health[] (state changes), .failures[] (runs
 *             of consecutive failed attempts) and attempts_file: a JSON Lines
 *             file next to run.json, one {"p","t","l","o","d"} per attempt,
 *             read as a stream (one line at a time) so its size does not
 *             matter; without it the failure runs are drawn instead.
 *
 * Strings point into the parsed document and live as long as the run. */
#ifndef FL_CONTROLLER_REPORT_HTMLRUN_H
#define FL_CONTROLLER_REPORT_HTMLRUN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "controller/report/availability.h"
#include "controller/report/thin.h"

/* The largest run.json read (bytes); larger is refused by name. */
#define FL_HRUN_JSON_MAX ((size_t)128 << 20)
/* The longest line of attempts.jsonl (bytes); a longer one is skipped and
 * counted as malformed, as is a line that does not parse. */
#define FL_HRUN_LINE_MAX 65536

struct fl_hrun_health {
    int64_t at_ms;
    bool healthy;
};

struct fl_hrun_fault {
    const char *name, *host, *kind, *outcome, *detail;
    int64_t applied_ms, reverted_ms, scheduled_ms; /* 0: did not happen */
    bool revert_failed;
};

struct fl_hrun_probe {
    const char *name, *kind;
    int64_t interval_ms, timeout_ms;
    int rise, fall;
    bool in_recovery;
    uint64_t counts[FL_TICK_COUNT]; /* attempts of each outcome */
    struct fl_hrun_health *health;  /* state changes, oldest first */
    size_t n_health;
    json_t *json; /* the probe's object in run.json */
};

struct fl_hrun {
    json_t *doc;
    char *raw; /* run.json as read, for embedding */
    size_t raw_len;
    char dir[4096];
    int format;
    const char *name, *path, *verdict, *reason, *abort_reason;
    int64_t started_ms, ended_ms, injected_ms, reverted_ms, impact_ms, detected_ms, recovered_ms,
        last_failure_ms; /* 0: did not happen */
    bool has_recovery;   /* recovery_time_ms and resolution_ms are set */
    int64_t recovery_ms, resolution_ms;
    bool recovered_after_revert, no_impact, unobserved;
    bool has_rto;
    int64_t rto_ms;
    bool has_budget; /* objectives.availability */
    struct fl_avail_budget budget;
    bool overloaded; /* controller_overloaded */
    int64_t overload_late, overload_attempts, overload_threshold_ms;
    struct fl_hrun_fault *faults;
    size_t n_faults;
    struct fl_hrun_probe *probes;
    size_t n_probes;
    const char *attempts_file; /* format 2: the name next to run.json, or NULL */
};

/* Reads DIR/run.json. 0, or a negative errno with err naming the file and
 * the problem (missing, too large, not JSON, not a run record). */
int fl_hrun_load(const char *dir, struct fl_hrun *r, char *err, size_t errlen);
void fl_hrun_free(struct fl_hrun *r);

/* Calls fn once per attempt of every probe, in file order: format 1 from
 * the timelines, format 2 from attempts_file (streamed) or, without one,
 * from the failure runs (their first and last attempt). t_ms is when the
 * attempt started. Returns 0 or a negative errno with err; *malformed counts
 * lines skipped. */
typedef void (*fl_hrun_attempt_fn)(void *ctx, size_t probe, int64_t t_ms, int64_t latency_ms,
                                   enum fl_tick o, const char *detail);
int fl_hrun_attempts(const struct fl_hrun *r, fl_hrun_attempt_fn fn, void *ctx, uint64_t *malformed,
                     char *err, size_t errlen);

/* "2026-11-25T16:51:00.123Z" (or without the fraction) as epoch ms; 0 for
 * NULL or anything else. */
int64_t fl_hrun_parse_time(const char *s);

#endif
