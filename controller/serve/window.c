/* Start windows: parsing, membership, next opening. */
#include "controller/serve/window.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/suggest.h"

static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static int bad(size_t *col, size_t at, char *err, size_t errlen, const char *msg, const char *tok,
               size_t toklen)
{
    if (col)
        *col = at;
    snprintf(err, errlen, "window: '%.*s': %s", (int)toklen, tok, msg);
    return -EINVAL;
}

static int day_of(const char *p, size_t len)
{
    if (len == 3)
        for (int i = 0; day_names[i]; i++)
            if (!strncasecmp(p, day_names[i], 3))
                return i;
    return -1;
}

static const char *hhmm(const char *p, unsigned *min)
{
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9' || p[2] != ':' || p[3] < '0' ||
        p[3] > '9' || p[4] < '0' || p[4] > '9')
        return NULL;
    unsigned h = (unsigned)(p[0] - '0') * 10 + (unsigned)(p[1] - '0');
    unsigned m = (unsigned)(p[3] - '0') * 10 + (unsigned)(p[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && m != 0))
        return NULL;
    *min = h * 60 + m;
    return p + 5;
}

int fl_window_parse(const char *text, struct fl_window *out, size_t *col, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (col)
        *col = 0;
    const char *p = text;
    while (*p == ' ')
        p++;
    if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')) {
        const char *end = p;
        while (*end && *end != ' ')
            end++;
        while (p < end) {
            const char *item = p, *ie = memchr(p, ',', (size_t)(end - p));
            if (!ie)
                ie = end;
            const char *dash = memchr(item, '-', (size_t)(ie - item));
            const char *ae = dash ? dash : ie;
            int a = day_of(item, (size_t)(ae - item)), b = a;
            if (a >= 0 && dash)
                b = day_of(dash + 1, (size_t)(ie - dash - 1));
            if (a < 0 || b < 0) {
                const char *w = a < 0 ? item : dash + 1;
                size_t wl = a < 0 ? (size_t)(ae - item) : (size_t)(ie - dash - 1);
                char word[16];
                snprintf(word, sizeof word, "%.*s", (int)(wl < 15 ? wl : 15), w);
                const char *s = fl_suggest(word, day_names, true);
                char msg[96];
                if (s)
                    snprintf(msg, sizeof msg, "unknown day; did you mean '%s'?", s);
                else
                    snprintf(msg, sizeof msg, "unknown day (Sun Mon Tue Wed Thu Fri Sat)");
                return bad(col, (size_t)(w - text), err, errlen, msg, w, wl);
            }
            for (int d = a;; d = (d + 1) % 7) {
                out->days |= (uint8_t)(1u << d);
                if (d == b)
                    break;
            }
            p = ie < end ? ie + 1 : end;
        }
        while (*p == ' ')
            p++;
    } else {
        out->days = 0x7f;
    }
    if (!*p)
        return bad(col, (size_t)(p - text), err, errlen,
                   "no time range (expected HH:MM-HH:MM, as in 'Mon-Fri 09:00-17:00')", text,
                   strlen(text));
    while (*p) {
        unsigned s, e;
        const char *q = hhmm(p, &s);
        if (!q || *q != '-' || !(q = hhmm(q + 1, &e)))
            return bad(col, (size_t)(p - text), err, errlen,
                       "expected a time range HH:MM-HH:MM (00:00 to 24:00)", p, strcspn(p, " ,"));
        if (s >= 24 * 60 || e <= s)
            return bad(col, (size_t)(p - text), err, errlen,
                       "a range must end after it starts (write a window across midnight as "
                       "two ranges)",
                       p, (size_t)(q - p));
        if (out->n == FL_WINDOW_MAX_RANGES)
            return bad(col, (size_t)(p - text), err, errlen,
                       "more time ranges than FL_WINDOW_MAX_RANGES (8)", p, (size_t)(q - p));
        out->start[out->n] = (uint16_t)s;
        out->end[out->n] = (uint16_t)e;
        out->n++;
        p = q;
        if (*p && *p != ',' && *p != ' ')
            return bad(col, (size_t)(p - text), err, errlen, "unexpected text", p, strlen(p));
        while (*p == ',' || *p == ' ')
            p++;
    }
    return 0;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

bool fl_window_contains(const struct fl_window *w, const struct fl_tz *tz, int64_t t)
{
    int64_t wall = fl_tz_wall(tz, t);
    int64_t day = floor_div(wall, 86400);
    unsigned min = (unsigned)((wall - day * 86400) / 60);
    if (!((w->days >> fl_weekday(day)) & 1))
        return false;
    for (size_t i = 0; i < w->n; i++)
        if (min >= w->start[i] && min < w->end[i])
            return true;
    return false;
}

int fl_window_next(const struct fl_window *w, const struct fl_tz *tz, int64_t t, int64_t *out)
{
    if (t >= tz->limit)
        return -ERANGE;
    if (fl_window_contains(w, tz, t)) {
        *out = t;
        return 0;
    }
    /* Candidates: each range's opening, as UTC (every occurrence, or the jump
     * when it falls in a gap), over the next fifteen days (a weekly window
     * lost to a spring-forward gap opens the week after); the earliest at or
     * after t that is inside wins. */
    int64_t best = INT64_MAX;
    int64_t day0 = floor_div(fl_tz_wall(tz, t), 86400) - 1;
    for (int64_t day = day0; day <= day0 + 16; day++)
        for (size_t i = 0; i < w->n; i++) {
            int64_t u[2], gap = 0;
            int k = fl_tz_from_wall(tz, day * 86400 + w->start[i] * 60, u, &gap);
            if (k == 0) {
                u[0] = gap;
                k = 1;
            }
            for (int j = 0; j < k; j++)
                if (u[j] >= t && u[j] < best && fl_window_contains(w, tz, u[j]))
                    best = u[j];
        }
    if (best == INT64_MAX || best >= tz->limit)
        return -ERANGE;
    *out = best;
    return 0;
}
