/* IANA time zones without touching the process's TZ: a multi-threaded
 * daemon cannot setenv("TZ"), so this reads the TZif file (RFC 8536) under
 * /usr/share/zoneinfo itself. The v2+ 64-bit transitions are used; times past
 * the last transition follow the footer's POSIX TZ rule, expanded once at
 * load into plain transitions up to FL_TZ_MAX_YEAR (a later instant is
 * refused with -ERANGE, never guessed). Leap-second ("right/") files are
 * refused. */
#ifndef FL_SERVE_TZ_H
#define FL_SERVE_TZ_H
#include <stddef.h>
#include <stdint.h>

#define FL_TZ_DIR "/usr/share/zoneinfo"
#define FL_TZ_MAX_YEAR 2199        /* footer rules are expanded this far */
#define FL_TZ_MAX_FILE (1u << 20)  /* a TZif file larger than this is refused */
#define FL_TZ_NAME_MAX 128         /* "Area/Location" */
#define FL_TZ_MAX_TRANSITIONS 8192 /* file's plus expanded footer's */

struct fl_tz {
    char name[FL_TZ_NAME_MAX + 1];
    int32_t off0;             /* UTC offset (seconds east) before the first transition */
    size_t n;                 /* transitions, ascending */
    int64_t *at;              /* UTC instant of each */
    int32_t *off;             /* offset in force from at[i] on */
    int32_t off_min, off_max; /* over all offsets: bounds a wall<->UTC search */
    int32_t max_shift;        /* largest |offset change| at a transition */
    int64_t limit;            /* first instant past FL_TZ_MAX_YEAR */
};

/* Checks an IANA name: letters, digits, '_', '-', '+', '/' between
 * components; no empty, "." or ".." component, no leading '/'. 0 or -EINVAL
 * with err saying why. */
int fl_tz_name_check(const char *name, char *err, size_t errlen);
/* Loads name from dir (NULL: FL_TZ_DIR). "UTC" works without a file. 0, or a
 * negative errno with err naming the zone and the problem. */
int fl_tz_load(const char *dir, const char *name, struct fl_tz *out, char *err, size_t errlen);
/* The server's own zone: /etc/localtime (FL_TZ_LOCALTIME), named after the
 * zoneinfo path it links to when it is a link, else "localtime"; UTC when the
 * file does not exist (as glibc). */
#define FL_TZ_LOCALTIME "/etc/localtime"
int fl_tz_load_local(struct fl_tz *out, char *err, size_t errlen);
/* Parses TZif bytes (for tests and fl_tz_load). */
int fl_tz_from_tzif(const char *name, const unsigned char *buf, size_t len, struct fl_tz *out,
                    char *err, size_t errlen);
/* A zone from a POSIX TZ string alone ("CET-1CEST,M3.5.0,M10.5.0/3"). */
int fl_tz_from_posix(const char *name, const char *posix, struct fl_tz *out, char *err,
                     size_t errlen);
void fl_tz_free(struct fl_tz *tz);

/* Offset (seconds east of UTC) in force at UTC instant t. */
int32_t fl_tz_offset(const struct fl_tz *tz, int64_t t);
/* Wall time ("local seconds since 1970-01-01 00:00 local") at t. */
static inline int64_t fl_tz_wall(const struct fl_tz *tz, int64_t t)
{
    return t + fl_tz_offset(tz, t);
}
/* The UTC instants whose wall time is w: 1 normally, 2 in a repeated
 * (fall-back) hour, earliest first, or 0 in a skipped (spring-forward) gap,
 * in which case *gap_at is the instant of the jump over w. Returns the count. */
int fl_tz_from_wall(const struct fl_tz *tz, int64_t w, int64_t out[2], int64_t *gap_at);

/* Civil calendar (proleptic Gregorian), days since 1970-01-01. */
int64_t fl_days_from_civil(int64_t y, unsigned m, unsigned d);
void fl_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);
/* 0 = Sunday. */
unsigned fl_weekday(int64_t days);
unsigned fl_days_in_month(int64_t y, unsigned m);
#endif
