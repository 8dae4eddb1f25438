/* Time zones from TZif files (RFC 8536), without the process's TZ. */
#include "controller/serve/tz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* RFC 8536: a transition names its local time type with one octet, so a
 * TZif file has at most 256 types; a file that says more is refused
 * ("TZif counts out of range"), never cut. */
#define TZIF_MAX_TYPES 256

int64_t fl_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void fl_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

unsigned fl_weekday(int64_t days)
{
    return (unsigned)(days >= -4 ? (days + 4) % 7 : (days + 5) % 7 + 6);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned fl_days_in_month(int64_t y, unsigned m)
{
    static const unsigned dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

int fl_tz_name_check(const char *name, char *err, size_t errlen)
{
    size_t len = strlen(name);
    if (len == 0 || len > FL_TZ_NAME_MAX) {
        snprintf(err, errlen, "time zone name must be 1 to %d characters", FL_TZ_NAME_MAX);
        return -EINVAL;
    }
    if (name[0] == '/') {
        snprintf(err, errlen, "time zone '%s': an IANA name, not a path (no leading '/')", name);
        return -EINVAL;
    }
    const char *comp = name;
    for (const char *p = name;; p++) {
        if (*p == '/' || *p == '\0') {
            size_t cl = (size_t)(p - comp);
            if (cl == 0 || (cl == 1 && comp[0] == '.') || (cl == 2 && !strncmp(comp, "..", 2))) {
                snprintf(err, errlen, "time zone '%s': empty, '.' or '..' component", name);
                return -EINVAL;
            }
            if (*p == '\0')
                break;
            comp = p + 1;
            continue;
        }
        char c = *p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '+' || c == '.')) {
            snprintf(err, errlen, "time zone '%s': character '%c' is not allowed in a zone name",
                     name, c >= 0x20 && c < 0x7f ? c : '?');
            return -EINVAL;
        }
    }
    return 0;
}

void fl_tz_free(struct fl_tz *tz)
{
    free(tz->at);
    free(tz->off);
    tz->at = NULL;
    tz->off = NULL;
    tz->n = 0;
}

/* --- POSIX TZ strings ---------------------------------------------------- */

struct posix_rule {
    char kind; /* 'J', 'D' (zero-based day), 'M' */
    int a, b, c;
    int32_t time;
};

struct posix_tz {
    int32_t std_off, dst_off;
    bool has_dst;
    struct posix_rule start, end;
};

static const char *p_name(const char *p)
{
    if (*p == '<') {
        const char *q = strchr(p, '>');
        return q && q - p >= 2 ? q + 1 : NULL;
    }
    const char *q = p;
    while ((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z'))
        q++;
    return q - p >= 3 ? q : NULL;
}

static const char *p_num(const char *p, int min, int max, int *out)
{
    if (*p < '0' || *p > '9')
        return NULL;
    int v = 0;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p++ - '0');
        if (v > max)
            return NULL;
    }
    if (v < min)
        return NULL;
    *out = v;
    return p;
}

/* [+-]hh[:mm[:ss]], hours up to max_h. */
static const char *p_time(const char *p, int max_h, int32_t *out)
{
    int sign = 1, h, m = 0, s = 0;
    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    if (!(p = p_num(p, 0, max_h, &h)))
        return NULL;
    if (*p == ':') {
        if (!(p = p_num(p + 1, 0, 59, &m)))
            return NULL;
        if (*p == ':' && !(p = p_num(p + 1, 0, 59, &s)))
            return NULL;
    }
    *out = sign * (h * 3600 + m * 60 + s);
    return p;
}

static const char *p_rule(const char *p, struct posix_rule *r)
{
    if (*p == 'J') {
        r->kind = 'J';
        p = p_num(p + 1, 1, 365, &r->a);
    } else if (*p == 'M') {
        r->kind = 'M';
        if (!(p = p_num(p + 1, 1, 12, &r->a)) || *p != '.' || !(p = p_num(p + 1, 1, 5, &r->b)) ||
            *p != '.' || !(p = p_num(p + 1, 0, 6, &r->c)))
            return NULL;
    } else {
        r->kind = 'D';
        p = p_num(p, 0, 365, &r->a);
    }
    if (!p)
        return NULL;
    r->time = 7200;
    if (*p == '/')
        p = p_time(p + 1, 167, &r->time);
    return p;
}

static int parse_posix(const char *s, struct posix_tz *out)
{
    const char *p = p_name(s);
    int32_t v;
    if (!p || !(p = p_time(p, 24, &v)))
        return -EINVAL;
    out->std_off = -v;
    out->has_dst = false;
    if (*p == '\0')
        return 0;
    if (!(p = p_name(p)))
        return -EINVAL;
    out->has_dst = true;
    out->dst_off = out->std_off + 3600;
    if (*p && *p != ',') {
        if (!(p = p_time(p, 24, &v)))
            return -EINVAL;
        out->dst_off = -v;
    }
    if (*p == '\0') { /* POSIX leaves the rule open; use the US one as glibc does */
        out->start = (struct posix_rule){'M', 3, 2, 0, 7200};
        out->end = (struct posix_rule){'M', 11, 1, 0, 7200};
        return 0;
    }
    if (*p != ',' || !(p = p_rule(p + 1, &out->start)) || *p != ',' ||
        !(p = p_rule(p + 1, &out->end)) || *p != '\0')
        return -EINVAL;
    return 0;
}

static int64_t rule_day(const struct posix_rule *r, int64_t y)
{
    int64_t jan1 = fl_days_from_civil(y, 1, 1);
    switch (r->kind) {
    case 'J':
        return jan1 + r->a - 1 + (is_leap(y) && r->a >= 60);
    case 'D':
        return jan1 + r->a;
    default: {
        int64_t first = fl_days_from_civil(y, (unsigned)r->a, 1);
        int64_t day = (r->c - (int)fl_weekday(first) + 7) % 7 + (r->b - 1) * 7;
        while (day >= (int64_t)fl_days_in_month(y, (unsigned)r->a))
            day -= 7;
        return first + day;
    }
    }
}

static int push(struct fl_tz *tz, size_t *cap, int64_t at, int32_t off)
{
    int32_t prev = tz->n ? tz->off[tz->n - 1] : tz->off0;
    if (off == prev)
        return 0;
    if (tz->n && at <= tz->at[tz->n - 1])
        return 0;
    if (tz->n == FL_TZ_MAX_TRANSITIONS)
        return -E2BIG;
    if (tz->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        int64_t *a = realloc(tz->at, nc * sizeof *a);
        if (!a)
            return -ENOMEM;
        tz->at = a;
        int32_t *o = realloc(tz->off, nc * sizeof *o);
        if (!o)
            return -ENOMEM;
        tz->off = o;
        *cap = nc;
    }
    tz->at[tz->n] = at;
    tz->off[tz->n] = off;
    tz->n++;
    return 0;
}

static int expand_posix(struct fl_tz *tz, size_t *cap, const struct posix_tz *pz)
{
    int64_t y0 = 1970;
    if (tz->n) {
        int64_t y;
        unsigned m, d;
        int64_t t = tz->at[tz->n - 1];
        fl_civil_from_days((t >= 0 ? t : t - 86399) / 86400, &y, &m, &d);
        y0 = y;
    }
    if (!pz->has_dst)
        return push(tz, cap, tz->n ? tz->at[tz->n - 1] + 1 : INT64_MIN / 2, pz->std_off);
    for (int64_t y = y0; y <= FL_TZ_MAX_YEAR; y++) {
        int64_t s = rule_day(&pz->start, y) * 86400 + pz->start.time - pz->std_off;
        int64_t e = rule_day(&pz->end, y) * 86400 + pz->end.time - pz->dst_off;
        int64_t t1 = s < e ? s : e, t2 = s < e ? e : s;
        int32_t o1 = s < e ? pz->dst_off : pz->std_off, o2 = s < e ? pz->std_off : pz->dst_off;
        int rc;
        if ((tz->n == 0 || t1 > tz->at[tz->n - 1]) && (rc = push(tz, cap, t1, o1)) < 0)
            return rc;
        if ((tz->n == 0 || t2 > tz->at[tz->n - 1]) && (rc = push(tz, cap, t2, o2)) < 0)
            return rc;
    }
    return 0;
}

static void finish(struct fl_tz *tz)
{
    tz->off_min = tz->off_max = tz->off0;
    tz->max_shift = 0;
    int32_t prev = tz->off0;
    for (size_t i = 0; i < tz->n; i++) {
        if (tz->off[i] < tz->off_min)
            tz->off_min = tz->off[i];
        if (tz->off[i] > tz->off_max)
            tz->off_max = tz->off[i];
        int32_t d = tz->off[i] - prev;
        if (d < 0)
            d = -d;
        if (d > tz->max_shift)
            tz->max_shift = d;
        prev = tz->off[i];
    }
    tz->limit = fl_days_from_civil(FL_TZ_MAX_YEAR + 1, 1, 1) * 86400 - tz->off_max;
}

int fl_tz_from_posix(const char *name, const char *posix, struct fl_tz *out, char *err,
                     size_t errlen)
{
    struct posix_tz pz;
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", name);
    if (parse_posix(posix, &pz) < 0) {
        snprintf(err, errlen, "time zone '%s': bad POSIX TZ rule '%s'", name, posix);
        return -EINVAL;
    }
    out->off0 = pz.std_off;
    size_t cap = 0;
    int rc = pz.has_dst ? expand_posix(out, &cap, &pz) : 0;
    if (rc < 0) {
        fl_tz_free(out);
        snprintf(err, errlen, "time zone '%s': %s", name, strerror(-rc));
        return rc;
    }
    finish(out);
    return 0;
}

/* --- TZif ------------------------------------------------------------------ */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

#define TZIF_BAD(why)                                                                              \
    do {                                                                                           \
        snprintf(err, errlen, "time zone '%s': %s", name, why);                                    \
        fl_tz_free(out);                                                                           \
        return -EINVAL;                                                                            \
    } while (0)

int fl_tz_from_tzif(const char *name, const unsigned char *buf, size_t len, struct fl_tz *out,
                    char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", name);
    if (len < 44 || memcmp(buf, "TZif", 4) != 0)
        TZIF_BAD("not a TZif file");
    if (buf[4] < '2')
        TZIF_BAD("TZif version 1 file (no 64-bit data); version 2 or later is needed");
    uint32_t c[6];
    for (int i = 0; i < 6; i++)
        c[i] = be32(buf + 20 + 4 * i); /* isut, isstd, leap, time, type, char */
    if (c[0] > 256 || c[1] > 256 || c[2] > 10000 || c[3] > 100000 || c[4] == 0 ||
        c[4] > TZIF_MAX_TYPES || c[5] > 10000)
        TZIF_BAD("TZif counts out of range");
    size_t skip = 44 + (size_t)c[3] * 5 + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0];
    if (len < skip + 44 || memcmp(buf + skip, "TZif", 4) != 0)
        TZIF_BAD("truncated TZif file (no second header)");
    const unsigned char *h = buf + skip;
    for (int i = 0; i < 6; i++)
        c[i] = be32(h + 20 + 4 * i);
    if (c[0] > 256 || c[1] > 256 || c[2] > 10000 || c[3] > 100000 || c[4] == 0 ||
        c[4] > TZIF_MAX_TYPES || c[5] > 10000)
        TZIF_BAD("TZif counts out of range");
    if (c[2] != 0)
        TZIF_BAD("leap-second zone files are not supported (use the plain zone, not right/)");
    const unsigned char *times = h + 44;
    const unsigned char *idx = times + (size_t)c[3] * 8;
    const unsigned char *types = idx + c[3];
    size_t body = 44 + (size_t)c[3] * 9 + c[4] * 6 + c[5] + c[1] + c[0];
    if (len < skip + body + 1)
        TZIF_BAD("truncated TZif file");
    int32_t offs[TZIF_MAX_TYPES];
    for (uint32_t i = 0; i < c[4]; i++) {
        offs[i] = (int32_t)be32(types + 6 * i);
        if (offs[i] <= -25 * 3600 || offs[i] >= 26 * 3600)
            TZIF_BAD("UTC offset out of range");
    }
    out->off0 = offs[0];
    size_t cap = 0;
    for (uint32_t i = 0; i < c[3]; i++) {
        if (idx[i] >= c[4])
            TZIF_BAD("transition names a local time type that does not exist");
        int64_t at = be64(times + 8 * i);
        if (out->n && at <= out->at[out->n - 1] && offs[idx[i]] != out->off[out->n - 1])
            TZIF_BAD("transitions out of order");
        if (push(out, &cap, at, offs[idx[i]]) == -ENOMEM)
            TZIF_BAD("out of memory");
    }
    const char *foot = (const char *)h + body;
    size_t flen = len - skip - body;
    if (flen >= 2 && foot[0] == '\n') {
        const char *e = memchr(foot + 1, '\n', flen - 1);
        if (!e)
            TZIF_BAD("TZif footer not terminated");
        char rule[128];
        size_t rl = (size_t)(e - foot - 1);
        if (rl >= sizeof rule)
            TZIF_BAD("TZif footer too long");
        memcpy(rule, foot + 1, rl);
        rule[rl] = '\0';
        if (rl) {
            struct posix_tz pz;
            if (parse_posix(rule, &pz) < 0) {
                char why[200];
                snprintf(why, sizeof why, "bad POSIX TZ rule '%s' in the footer", rule);
                TZIF_BAD(why);
            }
            int rc = expand_posix(out, &cap, &pz);
            if (rc == -ENOMEM)
                TZIF_BAD("out of memory");
            if (rc == -E2BIG)
                TZIF_BAD("more transitions than FL_TZ_MAX_TRANSITIONS");
        }
    }
    finish(out);
    return 0;
}

static int load_path(const char *name, const char *path, struct fl_tz *out, char *err,
                     size_t errlen);

int fl_tz_load_local(struct fl_tz *out, char *err, size_t errlen)
{
    char link[512], name[FL_TZ_NAME_MAX + 1] = "localtime";
    ssize_t n = readlink(FL_TZ_LOCALTIME, link, sizeof link - 1);
    if (n > 0) {
        link[n] = '\0';
        const char *z = strstr(link, "zoneinfo/");
        if (z && strlen(z + 9) <= FL_TZ_NAME_MAX)
            snprintf(name, sizeof name, "%s", z + 9);
    }
    if (access(FL_TZ_LOCALTIME, F_OK) < 0 && errno == ENOENT)
        return fl_tz_from_posix("UTC", "UTC0", out, err, errlen);
    return load_path(name, FL_TZ_LOCALTIME, out, err, errlen);
}

int fl_tz_load(const char *dir, const char *name, struct fl_tz *out, char *err, size_t errlen)
{
    int rc = fl_tz_name_check(name, err, errlen);
    if (rc < 0)
        return rc;
    if (!strcmp(name, "UTC") || !strcmp(name, "Etc/UTC"))
        return fl_tz_from_posix(name, "UTC0", out, err, errlen);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : FL_TZ_DIR, name);
    return load_path(name, path, out, err, errlen);
}

static int load_path(const char *name, const char *path, struct fl_tz *out, char *err,
                     size_t errlen)
{
    int rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ELOOP) /* tzdata links some zones; the name was checked */
        fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "unknown time zone '%s' (%s: %s)", name, path, strerror(errno));
        return rc;
    }
    unsigned char *buf = malloc(FL_TZ_MAX_FILE);
    if (!buf) {
        close(fd);
        snprintf(err, errlen, "time zone '%s': out of memory", name);
        return -ENOMEM;
    }
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, FL_TZ_MAX_FILE - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            snprintf(err, errlen, "time zone '%s': %s: %s", name, path, strerror(errno));
            close(fd);
            free(buf);
            return rc;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len == FL_TZ_MAX_FILE) {
            snprintf(err, errlen, "time zone '%s': %s is larger than FL_TZ_MAX_FILE (%u bytes)",
                     name, path, FL_TZ_MAX_FILE);
            close(fd);
            free(buf);
            return -EFBIG;
        }
    }
    close(fd);
    rc = fl_tz_from_tzif(name, buf, len, out, err, errlen);
    free(buf);
    return rc;
}

int32_t fl_tz_offset(const struct fl_tz *tz, int64_t t)
{
    size_t lo = 0, hi = tz->n; /* first index with at > t */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->at[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo ? tz->off[lo - 1] : tz->off0;
}

int fl_tz_from_wall(const struct fl_tz *tz, int64_t w, int64_t out[2], int64_t *gap_at)
{
    int n = 0;
    /* Every instant with wall time w lies in [w - off_max, w - off_min]. Try each
     * offset in force in that span. */
    int64_t lo = w - tz->off_max, hi = w - tz->off_min;
    size_t a = 0, b = tz->n;
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if (tz->at[mid] <= lo)
            a = mid + 1;
        else
            b = mid;
    }
    /* a: first transition after lo; the offset at lo is the one before it. */
    int32_t prev = a ? tz->off[a - 1] : tz->off0;
    for (size_t i = a;; i++) {
        int64_t u = w - prev;
        if (fl_tz_offset(tz, u) == prev && (n == 0 || out[n - 1] != u) && n < 2)
            out[n++] = u;
        if (i >= tz->n || tz->at[i] > hi)
            break;
        int32_t before = prev;
        prev = tz->off[i];
        if (n == 0 && tz->at[i] + before <= w && w < tz->at[i] + prev)
            *gap_at = tz->at[i];
    }
    if (n == 2 && out[0] > out[1]) {
        int64_t t = out[0];
        out[0] = out[1];
        out[1] = t;
    }
    return n;
}
