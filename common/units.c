#include "common/units.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* A decimal number "123" or "1.25", as an integer scaled by 10^frac_digits.
 * Parsed by hand: strtod accepts hex, "inf", locales and leading spaces, none
 * of which belong in an experiment file. */
struct decimal {
    uint64_t whole;
    uint64_t frac; /* digits after the point, as an integer */
    unsigned frac_digits;
};

static const char *parse_decimal(const char *p, struct decimal *d)
{
    if (*p < '0' || *p > '9')
        return NULL;
    d->whole = 0;
    d->frac = 0;
    d->frac_digits = 0;
    while (*p >= '0' && *p <= '9') {
        if (d->whole > (UINT64_MAX - 9) / 10)
            return NULL;
        d->whole = d->whole * 10 + (uint64_t)(*p++ - '0');
    }
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return NULL;
        while (*p >= '0' && *p <= '9') {
            if (d->frac_digits >= 9)
                return NULL; /* more precision than anything here needs */
            d->frac = d->frac * 10 + (uint64_t)(*p++ - '0');
            d->frac_digits++;
        }
    }
    return p;
}

static uint64_t pow10u(unsigned n)
{
    uint64_t v = 1;
    while (n--)
        v *= 10;
    return v;
}

/* value * unit, exactly; -EINVAL if the fraction does not come out whole. */
static int scale(const struct decimal *d, uint64_t unit, uint64_t *out)
{
    if (d->whole > UINT64_MAX / unit)
        return -ERANGE;
    uint64_t v = d->whole * unit;
    if (d->frac_digits > 0) {
        uint64_t div = pow10u(d->frac_digits);
        /* frac < 10^9 and unit <= 2^40 for sizes: the product fits in 64 bits */
        unsigned __int128 f = (unsigned __int128)d->frac * unit;
        if (f % div != 0)
            return -EINVAL;
        uint64_t add = (uint64_t)(f / div);
        if (v > UINT64_MAX - add)
            return -ERANGE;
        v += add;
    }
    *out = v;
    return 0;
}

struct unit {
    const char *name;
    uint64_t factor;
};

static const struct unit duration_units[] = {
    /* longest first so that "ms" is not read as "m" */
    {"ms", 1},
    {"h", 3600000},
    {"m", 60000},
    {"s", 1000},
};

int fl_parse_duration(const char *text, uint64_t *ms)
{
    if (text == NULL || *text == '\0')
        return -EINVAL;
    const char *p = text;
    uint64_t total = 0;
    uint64_t last_factor = UINT64_MAX;
    while (*p) {
        struct decimal d;
        p = parse_decimal(p, &d);
        if (p == NULL)
            return -EINVAL;
        const struct unit *u = NULL;
        for (size_t i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++) {
            size_t n = strlen(duration_units[i].name);
            if (strncmp(p, duration_units[i].name, n) == 0) {
                u = &duration_units[i];
                p += n;
                break;
            }
        }
        if (u == NULL)
            return -EINVAL; /* a unit is required */
        if (u->factor >= last_factor)
            return -EINVAL; /* "5s1m", "1s1s" */
        last_factor = u->factor;
        uint64_t v;
        int rc = scale(&d, u->factor, &v);
        if (rc < 0)
            return rc;
        if (total > UINT64_MAX - v)
            return -ERANGE;
        total += v;
    }
    *ms = total;
    return 0;
}

int fl_format_duration(uint64_t ms, char *buf, size_t len)
{
    int n;
    if (ms < 1000)
        n = snprintf(buf, len, "%llums", (unsigned long long)ms);
    else if (ms < 60000 && ms % 1000 == 0)
        n = snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
    else if (ms < 60000)
        n = snprintf(buf, len, "%llu.%02llus", (unsigned long long)(ms / 1000),
                     (unsigned long long)(ms % 1000 / 10));
    else if (ms < 3600000) {
        uint64_t s = ms / 1000;
        n = snprintf(buf, len, "%llum%llus", (unsigned long long)(s / 60),
                     (unsigned long long)(s % 60));
    } else {
        uint64_t m = ms / 60000;
        n = snprintf(buf, len, "%lluh%llum", (unsigned long long)(m / 60),
                     (unsigned long long)(m % 60));
    }
    if (n < 0 || (size_t)n >= len)
        return -ENOSPC;
    return n;
}

static const struct unit size_units[] = {
    {"KiB", 1ull << 10},
    {"MiB", 1ull << 20},
    {"GiB", 1ull << 30},
    {"TiB", 1ull << 40},
    {"B", 1},
    {"", 1},
};

int fl_parse_size(const char *text, struct fl_size *out)
{
    if (text == NULL)
        return -EINVAL;
    struct decimal d;
    const char *p = parse_decimal(text, &d);
    if (p == NULL)
        return -EINVAL;

    if (strcmp(p, "%") == 0) {
        double pct = (double)d.whole + (double)d.frac / (double)pow10u(d.frac_digits);
        if (!(pct > 0.0) || pct > 100.0)
            return -ERANGE;
        out->is_percent = true;
        out->percent = pct;
        out->bytes = 0;
        return 0;
    }
    for (size_t i = 0; i < sizeof(size_units) / sizeof(size_units[0]); i++) {
        if (strcmp(p, size_units[i].name) == 0) {
            uint64_t v;
            int rc = scale(&d, size_units[i].factor, &v);
            if (rc < 0)
                return rc;
            out->is_percent = false;
            out->bytes = v;
            out->percent = 0.0;
            return 0;
        }
    }
    return -EINVAL;
}

int fl_format_bytes(uint64_t bytes, char *buf, size_t len)
{
    static const char *const names[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    unsigned i = 0;
    while (i + 1 < sizeof(names) / sizeof(names[0]) && bytes >= (1ull << (10 * (i + 1))))
        i++;
    int n;
    uint64_t unit = 1ull << (10 * i);
    if (i == 0 || bytes % unit == 0)
        n = snprintf(buf, len, "%llu%s", (unsigned long long)(bytes / unit), names[i]);
    else
        n = snprintf(buf, len, "%.2f%s", (double)bytes / (double)unit, names[i]);
    if (n < 0 || (size_t)n >= len)
        return -ENOSPC;
    return n;
}

const char *fl_bytes_text(uint64_t bytes, char *buf, size_t len)
{
    if (len > 0 && fl_format_bytes(bytes, buf, len) < 0)
        snprintf(buf, len, "%llu bytes", (unsigned long long)bytes);
    return buf;
}
