/* The schedule block: parsing, next due time, missed due times, jitter. */
#include "controller/serve/schedule.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/suggest.h"

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* --- parsing ------------------------------------------------------------- */

static int dur_s(const struct fl_yaml_node *n, int64_t min, int64_t max, const char *what,
                 int64_t *out, char *err, size_t errlen)
{
    uint64_t ms;
    int rc = fl_yaml_duration(n, &ms, err, errlen);
    if (rc < 0)
        return rc;
    if (ms % 1000)
        return fl_yaml_errorf(n, err, errlen, "%s must be whole seconds", what);
    if ((int64_t)(ms / 1000) < min || (int64_t)(ms / 1000) > max)
        return fl_yaml_errorf(n, err, errlen, "%s must be from %llds to %llds", what,
                              (long long)min, (long long)max);
    *out = (int64_t)(ms / 1000);
    return 0;
}

/* An error inside a scalar, at its column plus col. */
static int at_col(const struct fl_yaml_node *n, size_t col, const char *msg, char *err,
                  size_t errlen)
{
    struct fl_yaml_node m = *n;
    if (n->line)
        m.col = n->col + (unsigned)col + (n->quoted ? 1 : 0);
    return fl_yaml_errorf(&m, err, errlen, "%s", msg);
}

int fl_schedule_parse(const struct fl_yaml_node *node, struct fl_schedule *out, char *err,
                      size_t errlen)
{
    static const char *const keys[] = {"cron",      "every",  "timezone",          "jitter",
                                       "window",    "missed", "starting_deadline", "paused",
                                       "also_uses", NULL};
    int rc = fl_yaml_expect(node, FL_YAML_MAPPING, err, errlen);
    if (rc < 0)
        return rc;
    if ((rc = fl_yaml_check_keys(node, keys, err, errlen)) < 0)
        return rc;
    struct fl_schedule s;
    memset(&s, 0, sizeof s);
    s.missed = FL_MISSED_RUN_ONCE;
    s.starting_deadline_s = FL_SCHED_DEFAULT_DEADLINE_S;
    const struct fl_yaml_node *cron = fl_yaml_get(node, "cron");
    const struct fl_yaml_node *every = fl_yaml_get(node, "every");
    const char *text;
    char msg[512];
    size_t col;
    if (cron && every)
        return fl_yaml_errorf(every, err, errlen,
                              "schedule has both 'cron' and 'every'; give one of them");
    if (!cron && !every)
        return fl_yaml_errorf(node, err, errlen, "schedule needs 'cron' or 'every'");
    if (cron) {
        if ((rc = fl_yaml_string(cron, &text, err, errlen)) < 0)
            return rc;
        s.kind = FL_SCHED_CRON;
        if (fl_cron_parse(text, &s.cron, &col, msg, sizeof msg) < 0)
            return at_col(cron, col, msg, err, errlen);
        snprintf(s.cron_text, sizeof s.cron_text, "%s", text); /* fits: parse refuses longer */
    } else {
        s.kind = FL_SCHED_EVERY;
        if ((rc = dur_s(every, FL_SCHED_EVERY_MIN_S, FL_SCHED_EVERY_MAX_S, "every", &s.every_s, err,
                        errlen)) < 0)
            return rc;
    }
    const struct fl_yaml_node *n;
    if ((n = fl_yaml_get(node, "timezone"))) {
        if ((rc = fl_yaml_string(n, &text, err, errlen)) < 0)
            return rc;
        struct fl_tz tz;
        if (fl_tz_load(NULL, text, &tz, msg, sizeof msg) < 0)
            return fl_yaml_errorf(n, err, errlen, "%s", msg);
        fl_tz_free(&tz);
        snprintf(s.timezone, sizeof s.timezone, "%s", text);
        if (s.kind == FL_SCHED_EVERY)
            return fl_yaml_errorf(n, err, errlen,
                                  "'timezone' has no effect with 'every' (an interval in real "
                                  "time); use 'cron' for wall-clock times");
    }
    if ((n = fl_yaml_get(node, "jitter")) &&
        (rc = dur_s(n, 0, FL_SCHED_JITTER_MAX_S, "jitter", &s.jitter_s, err, errlen)) < 0)
        return rc;
    if (n && s.kind == FL_SCHED_EVERY && s.jitter_s >= s.every_s)
        return fl_yaml_errorf(n, err, errlen, "jitter must be shorter than 'every'");
    if ((n = fl_yaml_get(node, "window"))) {
        if ((rc = fl_yaml_string(n, &text, err, errlen)) < 0)
            return rc;
        if (fl_window_parse(text, &s.window, &col, msg, sizeof msg) < 0)
            return at_col(n, col, msg, err, errlen);
        s.has_window = true;
    }
    if ((n = fl_yaml_get(node, "missed"))) {
        static const char *const policies[] = {"run_once", "skip", NULL};
        if ((rc = fl_yaml_string(n, &text, err, errlen)) < 0)
            return rc;
        if (!strcmp(text, "run_once")) {
            s.missed = FL_MISSED_RUN_ONCE;
        } else if (!strcmp(text, "skip")) {
            s.missed = FL_MISSED_SKIP;
        } else {
            const char *sug = fl_suggest(text, policies, true);
            if (sug)
                return fl_yaml_errorf(n, err, errlen,
                                      "unknown missed policy '%s'; did you mean '%s'?", text, sug);
            return fl_yaml_errorf(n, err, errlen, "unknown missed policy '%s' (run_once or skip)",
                                  text);
        }
    }
    if ((n = fl_yaml_get(node, "starting_deadline")) &&
        (rc = dur_s(n, 1, FL_SCHED_DEADLINE_MAX_S, "starting_deadline", &s.starting_deadline_s, err,
                    errlen)) < 0)
        return rc;
    if ((n = fl_yaml_get(node, "paused")) && (rc = fl_yaml_bool(n, &s.paused, err, errlen)) < 0)
        return rc;
    *out = s;
    return 0;
}

void fl_schedule_free(struct fl_schedule *s)
{
    free(s->also_uses);
    s->also_uses = NULL;
    s->n_also_uses = 0;
}

/* --- next due time ------------------------------------------------------- */

/* The first wall minute >= w (a multiple of 60) that the expression matches,
 * or INT64_MAX at or past wall_limit. */
static int64_t next_wall(const struct fl_cron *c, int64_t w, int64_t wall_limit)
{
    while (w < wall_limit) {
        int64_t day = floor_div(w, 86400);
        int64_t y;
        unsigned m, d;
        fl_civil_from_days(day, &y, &m, &d);
        if (!((c->month >> m) & 1)) {
            w = (m == 12 ? fl_days_from_civil(y + 1, 1, 1) : fl_days_from_civil(y, m + 1, 1)) *
                86400;
            continue;
        }
        if (!fl_cron_day_matches(c, m, d, fl_weekday(day))) {
            w = (day + 1) * 86400;
            continue;
        }
        int64_t sod = w - day * 86400;
        unsigned h = (unsigned)(sod / 3600), mi = (unsigned)(sod % 3600 / 60);
        uint32_t hb = c->hour >> h << h;
        if (!hb) {
            w = (day + 1) * 86400;
            continue;
        }
        unsigned h2 = (unsigned)__builtin_ctz(hb);
        if (h2 != h) {
            h = h2;
            mi = 0;
        }
        uint64_t mb = mi < 64 ? c->minute >> mi << mi : 0;
        if (!mb) {
            w = day * 86400 + (int64_t)(h + 1) * 3600;
            continue;
        }
        return day * 86400 + h * 3600 + (int64_t)__builtin_ctzll(mb) * 60;
    }
    return INT64_MAX;
}

/* The largest offset change at a transition in [lo, hi], plus a minute:
 * how far wall order and UTC order can disagree between those instants. */
static int64_t shift_near(const struct fl_tz *tz, int64_t lo, int64_t hi)
{
    size_t a = 0, b = tz->n;
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if (tz->at[mid] < lo)
            a = mid + 1;
        else
            b = mid;
    }
    int64_t d = 0;
    for (size_t i = a; i < tz->n && tz->at[i] <= hi; i++) {
        int64_t x = (int64_t)tz->off[i] - (i ? tz->off[i - 1] : tz->off0);
        if (x < 0)
            x = -x;
        if (x > d)
            d = x;
    }
    return d + 60;
}

/* Candidates are walked in wall order from wall(after) - D. An instant u >
 * after whose wall time is earlier than wall(after) needs an offset change
 * between after and u, at most a day and two hours later (offsets span less
 * than that), so D is the largest change near after; the search stops once a
 * wall time is past the best instant's wall time plus the largest change
 * between after and that instant (an earlier instant with a later wall time
 * needs one). Far from transitions both are a minute: no wasted candidates. */
static int cron_next(const struct fl_cron *c, const struct fl_tz *tz, int64_t after, int64_t *out)
{
    if (after >= tz->limit)
        return -ERANGE;
    bool fixed = fl_cron_fixed_time(c);
    int64_t D = shift_near(tz, after - 2 * 86400, after + 2 * 86400);
    int64_t wall_limit = tz->limit + tz->off_max;
    int64_t w = floor_div(fl_tz_wall(tz, after) - D, 60) * 60;
    int64_t best = INT64_MAX, best_wall = 0;
    for (;;) {
        w = next_wall(c, w, wall_limit);
        if (w == INT64_MAX)
            break;
        if (best != INT64_MAX && w > best_wall + D)
            break;
        int64_t u[2], gap = 0;
        int k = fl_tz_from_wall(tz, w, u, &gap);
        if (k == 0 && fixed) {
            u[0] = gap;
            k = 1;
        }
        if (k == 2 && fixed)
            k = 1;
        for (int i = 0; i < k; i++)
            if (u[i] > after && u[i] < best) {
                best = u[i];
                best_wall = fl_tz_wall(tz, best);
                D = shift_near(tz, after - 2 * 86400, best + 2 * 86400);
            }
        w += 60;
    }
    if (best == INT64_MAX || best >= tz->limit)
        return -ERANGE;
    *out = best;
    return 0;
}

int fl_schedule_next(const struct fl_schedule *s, const struct fl_tz *tz, int64_t origin,
                     int64_t after, int64_t *out)
{
    if (s->kind == FL_SCHED_EVERY) {
        int64_t k = after < origin ? 1 : floor_div(after - origin, s->every_s) + 1;
        if (k > (INT64_MAX - origin) / s->every_s)
            return -ERANGE;
        *out = origin + k * s->every_s;
        return 0;
    }
    return cron_next(&s->cron, tz, after, out);
}

/* --- missed due times ---------------------------------------------------- */

/* The latest due time in (lo, hi], found without walking from lo: probe
 * back from hi in growing steps. 0, or -ENOENT when there is none. */
static int latest_due(const struct fl_schedule *s, const struct fl_tz *tz, int64_t origin,
                      int64_t lo, int64_t hi, int64_t *out)
{
    static const int64_t back[] = {3600,        2 * 86400,       40 * 86400,
                                   400 * 86400, 9 * 366 * 86400, INT64_MAX};
    for (size_t i = 0; i < sizeof back / sizeof back[0]; i++) {
        int64_t start = hi - lo <= back[i] ? lo : hi - back[i];
        int64_t d;
        int rc = fl_schedule_next(s, tz, origin, start, &d);
        if (rc == 0 && d <= hi) {
            int64_t n;
            while (fl_schedule_next(s, tz, origin, d, &n) == 0 && n <= hi)
                d = n;
            *out = d;
            return 0;
        }
        if (start == lo)
            return -ENOENT;
    }
    return -ENOENT;
}

int fl_schedule_missed(const struct fl_schedule *s, const struct fl_tz *tz, int64_t origin,
                       int64_t last_due, int64_t now, struct fl_missed_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    plan->n_missed_exact = true;
    if (now <= last_due)
        return 0;
    int64_t latest;
    if (latest_due(s, tz, origin, last_due, now, &latest) < 0)
        return 0;
    uint64_t count = 0;
    bool exact = true;
    int64_t first = 0;
    if (fl_schedule_next(s, tz, origin, last_due, &first) < 0)
        return 0;
    if (s->kind == FL_SCHED_EVERY) {
        count = (uint64_t)((latest - first) / s->every_s) + 1;
    } else {
        int64_t d = first;
        count = 1;
        while (d < latest) {
            if (count == FL_SCHED_MISSED_COUNT_MAX) {
                exact = false;
                break;
            }
            if (fl_schedule_next(s, tz, origin, d, &d) < 0)
                break;
            count++;
        }
    }
    if (s->missed == FL_MISSED_RUN_ONCE && now - latest <= s->starting_deadline_s) {
        plan->run = true;
        plan->run_at = latest;
        count--;
        if (count) {
            plan->first_missed = first;
            int64_t prev = first, n;
            /* the due time before latest: latest in (last_due, latest - 1] */
            if (latest_due(s, tz, origin, last_due, latest - 1, &n) == 0)
                prev = n;
            plan->last_missed = prev;
        }
    } else {
        plan->first_missed = first;
        plan->last_missed = latest;
    }
    plan->n_missed = count;
    plan->n_missed_exact = exact;
    return 0;
}

int fl_schedule_start_at(const struct fl_schedule *s, const struct fl_tz *tz,
                         const char *experiment, int64_t due, int64_t *start)
{
    int64_t t = due + fl_schedule_jitter(s, fl_schedule_seed(experiment, due));
    if (s->has_window) {
        int rc = fl_window_next(&s->window, tz, t, &t);
        if (rc < 0)
            return rc;
    }
    if (t - due > s->starting_deadline_s)
        return -ETIMEDOUT;
    *start = t;
    return 0;
}

/* --- jitter -------------------------------------------------------------- */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t fl_schedule_seed(const char *experiment, int64_t due)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)experiment; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    for (int i = 0; i < 8; i++)
        h = (h ^ (((uint64_t)due >> (8 * i)) & 0xff)) * 0x100000001b3ull;
    return mix64(h);
}

int64_t fl_schedule_jitter(const struct fl_schedule *s, uint64_t seed)
{
    if (s->jitter_s <= 0)
        return 0;
    unsigned __int128 r = (unsigned __int128)mix64(seed) * (uint64_t)(s->jitter_s + 1);
    return (int64_t)(r >> 64);
}
