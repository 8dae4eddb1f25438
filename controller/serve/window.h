/* Start windows: "Mon-Fri 09:00-17:00", "Sat,Sun 10:00-12:00,14:00-16:00",
 * "09:00-17:00" (every day). Days as ranges or lists of three-letter names
 * (any case, Sunday through Saturday; a range may wrap, "Fri-Mon"); then one
 * or more HH:MM-HH:MM ranges separated by ',' or spaces, start inclusive, end
 * exclusive, end up to 24:00 and after the start (a window across midnight is
 * written as two ranges). Wall time in the schedule's zone. */
#ifndef FL_SERVE_WINDOW_H
#define FL_SERVE_WINDOW_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "controller/serve/tz.h"

#define FL_WINDOW_MAX_RANGES 8 /* time ranges in one window */

struct fl_window {
    uint8_t days; /* bit 0 Sunday .. bit 6 Saturday */
    size_t n;
    uint16_t start[FL_WINDOW_MAX_RANGES], end[FL_WINDOW_MAX_RANGES]; /* minutes of the day */
};

/* 0, or -EINVAL with err saying what is wrong; *col_out (may be NULL) gets
 * the 0-based column of the problem. */
int fl_window_parse(const char *text, struct fl_window *out, size_t *col_out, char *err,
                    size_t errlen);
/* Is UTC instant t inside the window in zone tz? */
bool fl_window_contains(const struct fl_window *w, const struct fl_tz *tz, int64_t t);
/* The first instant at or after t inside the window: 0 with *out, or -ERANGE
 * past the zone's last year. A window opening inside a spring-forward gap
 * opens at the jump. */
int fl_window_next(const struct fl_window *w, const struct fl_tz *tz, int64_t t, int64_t *out);
#endif
