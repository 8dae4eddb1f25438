/* Cron expressions: five fields (minute hour day-of-month month
 * day-of-week) with '*', numbers, ranges, lists, steps ("*\/7", "1-20/3"),
 * month and weekday names in any case (JAN, mon), 7 = Sunday, and the
 * macros @yearly @annually @monthly @weekly @daily @midnight @hourly, as
 * cronie reads them (src/entry.c get_range): a weekday range ending in 0 ends
 * in Sunday ("fri-sun"); a step needs '*' or a range ("5/10" is refused, as
 * cronie does). @reboot and cronie's random "~" are refused (serve has no
 * boot, and jitter does what "~" is for).
 *
 * Day-of-month and day-of-week, as cronie: when either field starts with '*'
 * (including "*\/2") a day must match both; when both are restricted, a day
 * matching either one matches. */
#ifndef FL_SERVE_CRON_H
#define FL_SERVE_CRON_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FL_CRON_MAX_LEN 256 /* an expression longer than this is refused */

struct fl_cron {
    uint64_t minute; /* bit n: minute n */
    uint32_t hour;
    uint32_t dom;                                 /* bits 1..31 */
    uint16_t month;                               /* bits 1..12 */
    uint8_t dow;                                  /* bits 0..6, Sunday 0 (7 folded in) */
    bool min_star, hour_star, dom_star, dow_star; /* field began with '*' */
};

/* Parses text. 0, or -EINVAL with err naming the field, the offending text
 * and (for names) a suggestion; *col_out (may be NULL) gets the 0-based
 * column of the problem. */
int fl_cron_parse(const char *text, struct fl_cron *out, size_t *col_out, char *err, size_t errlen);
/* Does the day (y, m, d, weekday 0=Sunday) match? */
bool fl_cron_day_matches(const struct fl_cron *c, unsigned m, unsigned d, unsigned wday);
/* A "fixed-time" job in cronie's sense: neither minute nor hour starts with
 * '*'. Fixed-time jobs run once when the clock falls back and catch up once
 * after a spring-forward; the others follow the clock (see schedule.h). */
bool fl_cron_fixed_time(const struct fl_cron *c);
#endif
