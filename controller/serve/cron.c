/* Cron expression parsing (cronie's grammar). */
#include "controller/serve/cron.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/suggest.h"

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul",
                                          "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

struct field {
    const char *what;
    unsigned lo, hi;
    const char *const *names;
    unsigned name_base;
};

static const struct field fields[5] = {
    {"minute", 0, 59, NULL, 0},          {"hour", 0, 23, NULL, 0},
    {"day of month", 1, 31, NULL, 0},    {"month", 1, 12, month_names, 1},
    {"day of week", 0, 7, dow_names, 0},
};

struct ctx {
    const char *start;
    size_t *col;
    char *err;
    size_t errlen;
};

static int fail(struct ctx *c, const char *at, const char *msg, const char *field, const char *tok,
                size_t toklen)
{
    if (c->col)
        *c->col = (size_t)(at - c->start);
    snprintf(c->err, c->errlen, "cron %s: '%.*s': %s", field, (int)toklen, tok, msg);
    return -EINVAL;
}

/* One value: a number or (month, weekday) a name. */
static const char *value(struct ctx *c, const struct field *f, const char *p, const char *tokend,
                         unsigned *out)
{
    if (*p >= '0' && *p <= '9') {
        unsigned v = 0;
        const char *q = p;
        while (q < tokend && *q >= '0' && *q <= '9') {
            v = v * 10 + (unsigned)(*q++ - '0');
            if (v > 1000)
                break;
        }
        if (v < f->lo || v > f->hi) {
            char m[80];
            snprintf(m, sizeof m, "out of range (%u-%u)", f->lo, f->hi);
            fail(c, p, m, f->what, p, (size_t)(q - p));
            return NULL;
        }
        *out = v;
        return q;
    }
    const char *q = p;
    while (q < tokend && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z')))
        q++;
    if (q == p) {
        fail(c, p, f->names ? "expected a number or a name" : "expected a number", f->what, p,
             (size_t)(tokend - p));
        return NULL;
    }
    if (f->names) {
        for (unsigned i = 0; f->names[i]; i++)
            if ((size_t)(q - p) == 3 && !strncasecmp(p, f->names[i], 3)) {
                *out = i + f->name_base;
                return q;
            }
        char word[32];
        snprintf(word, sizeof word, "%.*s", (int)(q - p), p);
        const char *s = fl_suggest(word, f->names, true);
        if (c->col)
            *c->col = (size_t)(p - c->start);
        if (s)
            snprintf(c->err, c->errlen, "cron %s: '%s': unknown name; did you mean '%s'?", f->what,
                     word, s);
        else
            snprintf(c->err, c->errlen, "cron %s: '%s': unknown name (%s)", f->what, word,
                     f->names == month_names ? "jan..dec" : "sun..sat");
        return NULL;
    }
    fail(c, p, "names are not allowed in this field", f->what, p, (size_t)(q - p));
    return NULL;
}

static int parse_field(struct ctx *c, const struct field *f, const char *p, const char *end,
                       uint64_t *bits, bool *star)
{
    *bits = 0;
    *star = *p == '*';
    if (p == end)
        return fail(c, p, "empty field", f->what, p, 0);
    while (p < end) {
        const char *tokend = memchr(p, ',', (size_t)(end - p));
        if (!tokend)
            tokend = end;
        if (tokend == p)
            return fail(c, p, "empty item in a list", f->what, p, 0);
        const char *q = p;
        unsigned lo, hi, step = 1;
        if (*q == '*') {
            lo = f->lo;
            hi = f->hi == 7 ? 6 : f->hi;
            q++;
        } else {
            if (!(q = value(c, f, q, tokend, &lo)))
                return -EINVAL;
            hi = lo;
            if (q < tokend && *q == '-') {
                if (!(q = value(c, f, q + 1, tokend, &hi)))
                    return -EINVAL;
                if (hi == 0 && lo > hi && f->hi == 7) /* "fri-sun": 5-7, as cronie */
                    hi = 7;
                if (hi < lo)
                    return fail(c, p, "range goes backwards", f->what, p, (size_t)(tokend - p));
            }
        }
        if (q < tokend && *q == '/') {
            const char *s = q + 1;
            step = 0;
            while (s < tokend && *s >= '0' && *s <= '9' && step <= 1000)
                step = step * 10 + (unsigned)(*s++ - '0');
            if (s == q + 1 || s != tokend || step == 0 || step > f->hi)
                return fail(c, q, "bad step (a number from 1 to the field's maximum)", f->what, p,
                            (size_t)(tokend - p));
            if (*p != '*' && !memchr(p, '-', (size_t)(q - p)))
                return fail(c, p,
                            "a step needs a range or '*' (write 5-59/10, not 5/10; cronie "
                            "refuses it too)",
                            f->what, p, (size_t)(tokend - p));
            q = s;
        }
        if (q != tokend)
            return fail(c, q, "unexpected text", f->what, p, (size_t)(tokend - p));
        for (unsigned v = lo; v <= hi; v += step)
            *bits |= 1ull << v;
        p = tokend < end ? tokend + 1 : end;
        if (tokend < end && p == end)
            return fail(c, p, "empty item in a list", f->what, p, 0);
    }
    return 0;
}

static const struct {
    const char *name, *expansion;
} macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

int fl_cron_parse(const char *text, struct fl_cron *out, size_t *col_out, char *err, size_t errlen)
{
    struct ctx c = {text, col_out, err, errlen};
    if (col_out)
        *col_out = 0;
    size_t len = strlen(text);
    if (len > FL_CRON_MAX_LEN) {
        snprintf(err, errlen, "cron expression longer than FL_CRON_MAX_LEN (%d)", FL_CRON_MAX_LEN);
        return -EINVAL;
    }
    while (*text == ' ')
        text++;
    if (*text == '@') {
        const char *names[sizeof macros / sizeof macros[0] + 1];
        for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++) {
            if (!strcasecmp(text, macros[i].name))
                return fl_cron_parse(macros[i].expansion, out, NULL, err, errlen);
            names[i] = macros[i].name;
        }
        names[sizeof macros / sizeof macros[0]] = NULL;
        if (!strcasecmp(text, "@reboot")) {
            snprintf(err, errlen,
                     "cron '@reboot' is not supported: a server has no boot to run at");
            return -EINVAL;
        }
        const char *s = fl_suggest(text, names, true);
        if (s)
            snprintf(err, errlen, "unknown cron macro '%s'; did you mean '%s'?", text, s);
        else
            snprintf(err, errlen,
                     "unknown cron macro '%s' (@yearly @annually @monthly @weekly @daily "
                     "@midnight @hourly)",
                     text);
        return -EINVAL;
    }
    const char *f[5], *fe[5];
    const char *p = text;
    int n = 0;
    while (*p) {
        if (*p == ' ' || *p == '\t') {
            p++;
            continue;
        }
        if (n == 5) {
            if (col_out)
                *col_out = (size_t)(p - c.start);
            snprintf(err, errlen,
                     "cron expression has more than 5 fields (minute hour day-of-month month "
                     "day-of-week)");
            return -EINVAL;
        }
        f[n] = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        fe[n++] = p;
    }
    if (n < 5) {
        snprintf(err, errlen,
                 "cron expression has %d field%s; 5 are needed (minute hour day-of-month month "
                 "day-of-week)",
                 n, n == 1 ? "" : "s");
        return -EINVAL;
    }
    uint64_t b[5];
    bool star[5];
    for (int i = 0; i < 5; i++) {
        int rc = parse_field(&c, &fields[i], f[i], fe[i], &b[i], &star[i]);
        if (rc < 0)
            return rc;
    }
    memset(out, 0, sizeof *out);
    out->minute = b[0];
    out->hour = (uint32_t)b[1];
    out->dom = (uint32_t)b[2];
    out->month = (uint16_t)b[3];
    out->dow = (uint8_t)((b[4] | (b[4] >> 7)) & 0x7f);
    out->min_star = star[0];
    out->hour_star = star[1];
    out->dom_star = star[2];
    out->dow_star = star[4];
    /* A day-of-month that no chosen month has ("0 0 31 2 *") never fires. */
    if (!out->dom_star || out->dow_star) {
        bool any = false;
        for (unsigned m = 1; m <= 12 && !any; m++) {
            static const unsigned maxd[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
            if (out->month & (1u << m))
                for (unsigned d = 1; d <= maxd[m - 1]; d++)
                    any |= (out->dom >> d) & 1;
        }
        if (!any && out->dow_star) {
            if (col_out)
                *col_out = (size_t)(f[2] - c.start);
            snprintf(err, errlen, "cron expression never fires: no chosen month has that day");
            return -EINVAL;
        }
    }
    return 0;
}

bool fl_cron_day_matches(const struct fl_cron *c, unsigned m, unsigned d, unsigned wday)
{
    if (!((c->month >> m) & 1))
        return false;
    bool dm = (c->dom >> d) & 1, wm = (c->dow >> wday) & 1;
    return c->dom_star || c->dow_star ? dm && wm : dm || wm;
}

bool fl_cron_fixed_time(const struct fl_cron *c)
{
    return !c->min_star && !c->hour_star;
}
