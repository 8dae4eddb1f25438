/* A run folder read back for the HTML reports: see htmlrun.h. */
#include "controller/report/htmlrun.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "controller/probes/health.h"

static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int64_t fl_hrun_parse_time(const char *s)
{
    if (s == NULL || strlen(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':')
        return 0;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2), h = digits(s + 11, 2),
        mi = digits(s + 14, 2), se = digits(s + 17, 2);
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
        se < 0 || se > 60)
        return 0;
    int ms = 0;
    const char *p = s + 19;
    if (*p == '.') {
        int scale = 100;
        for (p++; *p >= '0' && *p <= '9'; p++) {
            ms += (*p - '0') * scale;
            scale /= 10;
        }
    }
    if (strcmp(p, "Z") != 0)
        return 0;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return 0;
    return (int64_t)t * 1000 + ms;
}

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int64_t num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_real(v))
        return (int64_t)json_real_value(v);
    return 0;
}

static int64_t at(json_t *o, const char *key)
{
    return fl_hrun_parse_time(str(o, key));
}

static bool flag(json_t *o, const char *key)
{
    return json_is_true(json_object_get(o, key));
}

static int read_all(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen,
                 "%s: cannot open: %s (is this a run folder written by "
                 "`faultline run --report-dir`?)",
                 path, strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(err, errlen, "%s: not a regular file", path);
        return -EINVAL;
    }
    if ((size_t)st.st_size > FL_HRUN_JSON_MAX) {
        close(fd);
        snprintf(err, errlen, "%s: %lld bytes is above the limit of %zu bytes for run.json", path,
                 (long long)st.st_size, FL_HRUN_JSON_MAX);
        return -EFBIG;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        close(fd);
        snprintf(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    size_t done = 0;
    while (done < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    close(fd);
    buf[done] = '\0';
    *out = buf;
    *len = done;
    return 0;
}

/* Format 1: the health state changes replayed from the timeline. */
static int health_from_timeline(struct fl_hrun_probe *p, json_t *tl)
{
    struct fl_health h;
    fl_health_init(&h, (unsigned)p->rise, (unsigned)p->fall);
    size_t n = json_array_size(tl);
    p->health = calloc(n ? n : 1, sizeof(*p->health));
    if (p->health == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(tl, i);
        bool ok = flag(e, "ok");
        p->counts[ok ? FL_TICK_OK : FL_TICK_FAILED]++;
        if (fl_health_update(&h, ok) && h.state != FL_HEALTH_UNKNOWN) {
            /* the state is known when the result is: started + latency */
            p->health[p->n_health].at_ms = at(e, "started_at") + num(e, "latency_ms");
            p->health[p->n_health].healthy = h.state == FL_HEALTH_HEALTHY;
            p->n_health++;
        }
    }
    return 0;
}

/* Format 2: the recorded state changes. */
static int health_from_record(struct fl_hrun_probe *p, json_t *pj)
{
    json_t *hs = json_object_get(pj, "health");
    size_t n = json_array_size(hs);
    p->health = calloc(n ? n : 1, sizeof(*p->health));
    if (p->health == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(hs, i);
        p->health[p->n_health].at_ms = at(e, "at");
        p->health[p->n_health].healthy = flag(e, "healthy");
        p->n_health++;
    }
    json_t *c = json_object_get(pj, "counts");
    p->counts[FL_TICK_OK] = (uint64_t)num(c, "ok");
    p->counts[FL_TICK_FAILED] = (uint64_t)num(c, "failed");
    p->counts[FL_TICK_TIMEOUT] = (uint64_t)num(c, "timeout");
    p->counts[FL_TICK_LATE] = (uint64_t)num(c, "late");
    return 0;
}

static void budget(struct fl_hrun *r, json_t *a)
{
    if (!json_is_object(a))
        return;
    json_t *t = json_object_get(a, "target");
    double target = json_is_number(t) ? json_number_value(t) : 0;
    if (target > 1) /* written as a percentage */
        target /= 100.0;
    json_t *f = json_object_get(a, "failures_per_year");
    json_t *m = json_object_get(a, "mtbf_ms");
    json_t *n = json_object_get(a, "redundancy");
    r->budget.target = target;
    r->budget.failures_per_year = json_is_number(f) ? json_number_value(f) : 0;
    r->budget.mtbf_ms = json_is_number(m) ? json_number_value(m) : 0;
    r->budget.redundancy =
        json_is_integer(n) && json_integer_value(n) > 0
            ? (unsigned)(json_integer_value(n) > 1000000 ? 1000000 : json_integer_value(n))
            : 1;
    r->has_budget = true;
}

int fl_hrun_load(const char *dir, struct fl_hrun *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    if (dir == NULL || strlen(dir) + 16 >= sizeof(r->dir)) {
        snprintf(err, errlen, "the run folder's path is missing or too long");
        return -ENAMETOOLONG;
    }
    snprintf(r->dir, sizeof(r->dir), "%s", dir);
    char path[4200];
    snprintf(path, sizeof(path), "%s/run.json", dir);
    int rc = read_all(path, &r->raw, &r->raw_len, err, errlen);
    if (rc < 0)
        return rc;
    json_error_t je;
    r->doc = json_loadb(r->raw, r->raw_len, 0, &je);
    if (r->doc == NULL || !json_is_object(r->doc)) {
        snprintf(err, errlen, "%s: not JSON (line %d: %s)", path, je.line, je.text);
        fl_hrun_free(r);
        return -EINVAL;
    }
    json_t *d = r->doc;
    r->format = (int)num(d, "format");
    if (r->format != 1 && r->format != 2) {
        snprintf(err, errlen, "%s: run.json format %d is not one this faultline reads (1, 2)", path,
                 r->format);
        fl_hrun_free(r);
        return -EINVAL;
    }
    json_t *ex = json_object_get(d, "experiment");
    r->name = str(ex, "name");
    r->path = str(ex, "path");
    r->verdict = str(d, "verdict");
    r->reason = str(d, "reason");
    r->abort_reason = str(d, "abort_reason");
    r->started_ms = at(d, "started_at");
    r->ended_ms = at(d, "ended_at");
    json_t *m = json_object_get(d, "measurements");
    r->injected_ms = at(m, "injected_at");
    r->reverted_ms = at(m, "reverted_at");
    r->impact_ms = at(m, "impact_at");
    r->detected_ms = at(m, "detected_at");
    r->recovered_ms = at(m, "recovered_at");
    r->last_failure_ms = at(m, "last_failure_at");
    r->has_recovery = json_is_integer(json_object_get(m, "recovery_time_ms"));
    r->recovery_ms = num(m, "recovery_time_ms");
    r->resolution_ms = num(m, "resolution_ms");
    r->recovered_after_revert = flag(m, "recovered_after_revert");
    r->no_impact = flag(m, "no_impact");
    r->unobserved = flag(m, "unobserved");
    json_t *obj = json_object_get(d, "objectives");
    r->has_rto = json_is_integer(json_object_get(obj, "rto_ms"));
    r->rto_ms = num(obj, "rto_ms");
    budget(r, json_object_get(obj, "availability"));
    json_t *ov = json_object_get(d, "controller_overloaded");
    if (json_is_object(ov)) {
        r->overloaded = true;
        r->overload_late = num(ov, "late");
        r->overload_attempts = num(ov, "attempts");
        r->overload_threshold_ms = num(ov, "threshold_ms");
    }
    r->attempts_file = str(d, "attempts_file");

    json_t *fs = json_object_get(d, "faults");
    r->n_faults = json_array_size(fs);
    r->faults = calloc(r->n_faults ? r->n_faults : 1, sizeof(*r->faults));
    json_t *ps = json_object_get(d, "probes");
    r->n_probes = json_array_size(ps);
    r->probes = calloc(r->n_probes ? r->n_probes : 1, sizeof(*r->probes));
    if (r->faults == NULL || r->probes == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        fl_hrun_free(r);
        return -ENOMEM;
    }
    for (size_t i = 0; i < r->n_faults; i++) {
        json_t *f = json_array_get(fs, i);
        struct fl_hrun_fault *o = &r->faults[i];
        json_t *h = json_object_get(f, "host");
        o->name = str(f, "name");
        o->host = str(h, "name") ? str(h, "name") : str(h, "address");
        o->kind = str(f, "kind");
        o->outcome = str(f, "outcome");
        o->detail = str(f, "detail");
        o->applied_ms = at(f, "applied_at");
        o->reverted_ms = at(f, "reverted_at");
        o->scheduled_ms = at(f, "scheduled_at");
        o->revert_failed = flag(f, "revert_failed");
    }
    for (size_t i = 0; i < r->n_probes; i++) {
        json_t *pj = json_array_get(ps, i);
        struct fl_hrun_probe *p = &r->probes[i];
        p->json = pj;
        p->name = str(pj, "name");
        p->kind = str(pj, "kind");
        p->interval_ms = num(pj, "interval_ms");
        p->timeout_ms = num(pj, "timeout_ms");
        p->rise = (int)num(pj, "rise");
        p->fall = (int)num(pj, "fall");
        p->in_recovery = flag(pj, "in_recovery");
        json_t *tl = json_object_get(pj, "timeline");
        rc = json_is_array(tl) ? health_from_timeline(p, tl) : health_from_record(p, pj);
        if (rc < 0) {
            snprintf(err, errlen, "%s: out of memory", path);
            fl_hrun_free(r);
            return rc;
        }
    }
    return 0;
}

void fl_hrun_free(struct fl_hrun *r)
{
    for (size_t i = 0; r->probes != NULL && i < r->n_probes; i++)
        free(r->probes[i].health);
    free(r->probes);
    free(r->faults);
    if (r->doc != NULL)
        json_decref(r->doc);
    free(r->raw);
    memset(r, 0, sizeof(*r));
}

/* One line of attempts.jsonl. false when it is not an attempt. */
static bool attempt_line(const struct fl_hrun *r, const char *line, size_t len,
                         fl_hrun_attempt_fn fn, void *ctx)
{
    json_t *a = json_loadb(line, len, 0, NULL);
    if (!json_is_object(a)) {
        json_decref(a);
        return false;
    }
    json_t *p = json_object_get(a, "p");
    int o = fl_outcome_parse(str(a, "o"));
    bool good = json_is_integer(p) && json_integer_value(p) >= 0 &&
                (size_t)json_integer_value(p) < r->n_probes && o >= 0 &&
                json_is_integer(json_object_get(a, "t"));
    if (good)
        fn(ctx, (size_t)json_integer_value(p), num(a, "t"), num(a, "l"), (enum fl_tick)o,
           str(a, "d"));
    json_decref(a);
    return good;
}

static int stream_attempts(const struct fl_hrun *r, fl_hrun_attempt_fn fn, void *ctx,
                           uint64_t *malformed, char *err, size_t errlen)
{
    char path[8300];
    if (strchr(r->attempts_file, '/') != NULL) {
        snprintf(err, errlen, "%s/run.json: attempts_file \"%s\" is not a name in the run folder",
                 r->dir, r->attempts_file);
        return -EINVAL;
    }
    snprintf(path, sizeof(path), "%s/%s", r->dir, r->attempts_file);
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(e));
        return -e;
    }
    char *line = malloc(FL_HRUN_LINE_MAX + 2);
    if (line == NULL) {
        fclose(f);
        snprintf(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    bool skipping = false; /* inside a line longer than the limit */
    while (fgets(line, FL_HRUN_LINE_MAX + 2, f) != NULL) {
        size_t len = strlen(line);
        bool whole = len > 0 && line[len - 1] == '\n';
        if (skipping) {
            skipping = !whole;
            continue;
        }
        if (!whole && !feof(f)) {
            (*malformed)++;
            skipping = true;
            continue;
        }
        if (whole)
            line[--len] = '\0';
        if (len == 0)
            continue;
        if (!attempt_line(r, line, len, fn, ctx))
            (*malformed)++;
    }
    int rc = ferror(f) ? -EIO : 0;
    if (rc < 0)
        snprintf(err, errlen, "%s: read error", path);
    free(line);
    fclose(f);
    return rc;
}

int fl_hrun_attempts(const struct fl_hrun *r, fl_hrun_attempt_fn fn, void *ctx, uint64_t *malformed,
                     char *err, size_t errlen)
{
    *malformed = 0;
    if (r->format == 2 && r->attempts_file != NULL)
        return stream_attempts(r, fn, ctx, malformed, err, errlen);
    for (size_t i = 0; i < r->n_probes; i++) {
        json_t *pj = r->probes[i].json;
        json_t *tl = json_object_get(pj, "timeline");
        for (size_t k = 0; k < json_array_size(tl); k++) {
            json_t *e = json_array_get(tl, k);
            fn(ctx, i, at(e, "started_at"), num(e, "latency_ms"),
               flag(e, "ok") ? FL_TICK_OK : FL_TICK_FAILED, str(e, "detail"));
        }
        json_t *fs = json_object_get(pj, "failures");
        for (size_t k = 0; k < json_array_size(fs); k++) {
            json_t *e = json_array_get(fs, k);
            int o = fl_outcome_parse(str(e, "outcome"));
            enum fl_tick oc = o == FL_TICK_TIMEOUT ? FL_TICK_TIMEOUT : FL_TICK_FAILED;
            fn(ctx, i, at(e, "first_at"), 0, oc, str(e, "detail"));
            if (num(e, "count") > 1)
                fn(ctx, i, at(e, "last_at"), 0, oc,
                   str(e, "last_detail") ? str(e, "last_detail") : str(e, "detail"));
        }
    }
    return 0;
}
