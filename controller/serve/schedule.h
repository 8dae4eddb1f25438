/* The `schedule:` block of an experiment, for `faultline serve`, and the
 * pure functions the daemon needs: when is the next due time, may it start
 * now (window), what to do about due times missed while it was down, and how
 * much jitter a due time gets. Nothing here reads the clock, sleeps or keeps
 * state: every function takes the instants it needs (UTC seconds).
 *
 *   schedule:
 *     cron: "30 2 * * 1-5"   # or  every: 6h  (one of the two)
 *     timezone: Europe/Berlin
 *     jitter: 10m
 *     window: "Mon-Fri 09:00-17:00"
 *     missed: run_once       # or skip
 *     starting_deadline: 30m
 *     paused: false
 *     also_uses: [web1, tag:web]  # blast radius: see radius.h
 *
 * Daylight saving, as cronie (cron.c, "virtual time", cases 2 and 3):
 *  - A wall time skipped by a spring-forward: a fixed-time job (neither minute
 *    nor hour field starts with '*') runs once, right at the jump; several
 *    skipped fixed times of one job collapse into that one run. A job whose
 *    minute or hour starts with '*' (hourly and the like) just follows the
 *    clock: its skipped wall times do not run.
 *  - A wall time repeated by a fall-back: a fixed-time job runs once, at the
 *    first occurrence; a '*'-minute or '*'-hour job runs at both occurrences
 *    (it runs "every hour", and the repeated hour is a real hour).
 * This holds for any offset change (Lord Howe's 30-minute shift too).
 *
 * `every` counts from an origin (the server's start): due times are
 * origin + k * every, k >= 1, in UTC; zones and DST do not apply. */
#ifndef FL_SERVE_SCHEDULE_H
#define FL_SERVE_SCHEDULE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/yamldoc.h"
#include "controller/serve/cron.h"
#include "controller/serve/tz.h"
#include "controller/serve/window.h"

#define FL_SCHED_EVERY_MIN_S 1                  /* every: shortest */
#define FL_SCHED_EVERY_MAX_S (366ll * 86400)    /* every: longest */
#define FL_SCHED_JITTER_MAX_S (86400ll)         /* jitter: longest */
#define FL_SCHED_DEADLINE_MAX_S (7ll * 86400)   /* starting_deadline: longest */
#define FL_SCHED_DEFAULT_DEADLINE_S (30ll * 60) /* starting_deadline default */
#define FL_SCHED_MISSED_COUNT_MAX 100000u       /* missed due times counted one by one */

enum fl_sched_kind { FL_SCHED_CRON, FL_SCHED_EVERY };
enum fl_sched_missed { FL_MISSED_RUN_ONCE, FL_MISSED_SKIP };

struct fl_schedule {
    enum fl_sched_kind kind;
    struct fl_cron cron;
    char cron_text[FL_CRON_MAX_LEN + 1]; /* the expression as written (for the UI) */
    int64_t every_s;
    char timezone[FL_TZ_NAME_MAX + 1]; /* "" = the server's */
    int64_t jitter_s;
    bool has_window;
    struct fl_window window;
    enum fl_sched_missed missed;
    int64_t starting_deadline_s;
    bool paused;
    /* also_uses: [web1, tag:web]: hosts a run depends on that its faults and
     * probes do not name (radius.h); indices into the experiment's inventory
     * hosts, each once. fl_schedule_parse accepts the key; the experiment
     * loader resolves it (it has the inventory). */
    size_t *also_uses;
    size_t n_also_uses;
};

/* Parses a `schedule:` mapping. Unknown keys are refused with a suggestion;
 * every error is "FILE:LINE:COL: message". The time zone's name is checked
 * and its file loaded once (so a typo fails at load time). 0 or -EINVAL. */
int fl_schedule_parse(const struct fl_yaml_node *node, struct fl_schedule *out, char *err,
                      size_t errlen);
/* Frees also_uses (set by the experiment loader) and zeroes it. */
void fl_schedule_free(struct fl_schedule *s);

/* The first due time strictly after `after`: for cron, in zone tz (DST as
 * above); for every, from origin (tz unused). 0 with *out, or -ERANGE when
 * there is none before the zone's FL_TZ_MAX_YEAR. */
int fl_schedule_next(const struct fl_schedule *s, const struct fl_tz *tz, int64_t origin,
                     int64_t after, int64_t *out);

/* After downtime: the due times in (last_due, now]. With run_once the most
 * recent of them runs if now - it <= starting_deadline, the others are
 * missed; with skip all are missed. Missed due times are counted one by one
 * up to FL_SCHED_MISSED_COUNT_MAX; past that n_missed_exact is false and
 * n_missed is that bound ("more than"). Never enumerates further. */
struct fl_missed_plan {
    bool run;          /* run run_at now */
    int64_t run_at;    /* the due time that runs */
    uint64_t n_missed; /* due times recorded as missed */
    bool n_missed_exact;
    int64_t first_missed, last_missed; /* when n_missed > 0 */
};
int fl_schedule_missed(const struct fl_schedule *s, const struct fl_tz *tz, int64_t origin,
                       int64_t last_due, int64_t now, struct fl_missed_plan *plan);

/* When a due time may start: due + jitter (seeded by experiment and due),
 * then deferred to the window's next opening if there is a window. 0 with
 * *start, or -ETIMEDOUT when that is more than starting_deadline after due
 * (the daemon records the due time as missed), or -ERANGE. */
int fl_schedule_start_at(const struct fl_schedule *s, const struct fl_tz *tz,
                         const char *experiment, int64_t due, int64_t *start);

/* Jitter: a delay in [0, jitter] seconds, uniform, a pure function of seed,
 * so the jittered time of a due time is the same across restarts. */
uint64_t fl_schedule_seed(const char *experiment, int64_t due);
int64_t fl_schedule_jitter(const struct fl_schedule *s, uint64_t seed);
#endif
