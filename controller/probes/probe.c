/* The probe runner: schedule, timeout, judgement, report.
 *
 * A probe owns three timers: `tick` (one shot, re-armed for each due time:
 * due times are phase + k * interval on the monotonic clock, fl_probe_phase_ms),
 * `kick` (starts an owed attempt, or a once-probe's only one, on the next
 * iteration) and `deadline` (the timeout of the attempt in flight). At most
 * one attempt exists at a time; the kind (http.c, tcp.c, exec.c, ssh.c)
 * performs it and calls fl_probe_attempt_end() once it has released all it
 * held. A due time that finds an attempt still alive is owed: the next
 * attempt starts as soon as that one ends. A due time the controller reaches
 * a whole interval late is skipped and counted, never made up in a burst.
 *
 *   tick ──► start ──► attempt ──► end(ok/fail) ──► judge ──► report
 *                         │
 *                 deadline│──► one more look (1 ms: the loop polls its sockets
 *                         │    first) ──► still nothing ──► judge ──► report, cancel
 *
 * Judging (the controller never invents a failure): libuv runs expired
 * timers before it polls for I/O, so after the loop has stalled (too much
 * work, no CPU, a stopped process) a reply can be waiting in its socket when
 * the deadline fires. Hence the one more look. A timeout during which the
 * loop was stalled for fl_probe_late_threshold_ms (half the timeout) or more
 * in all (lag.h), or whose deadline itself fired that late, is LATE: the
 * service had less than half its timeout of the controller's attention, so
 * the timeout may be the controller's doing. An outcome that arrives only in
 * the one more look is judged the same way (LATE, or a TIMEOUT). An answer
 * that is a failure (refused, 503, exit 1) is the service's own, whenever it
 * was read: always FAILED.
 *
 * `resolved` says the current attempt's result has been reported; it makes
 * the timeout and a late end() race-free. Stopping closes the timers and
 * cancels the attempt; the probe is freed when every close callback has run
 * and the attempt has ended, whichever comes last. */
#include "controller/probes/probe.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "controller/probes/lag.h"

#define DEFAULT_INTERVAL_MS 1000u
#define DEFAULT_TIMEOUT_MS 1000u

struct fl_probe {
    uv_loop_t *loop;
    struct fl_probe_spec spec;
    const struct fl_probe_kind *kind;
    uv_timer_t tick;
    uv_timer_t kick;
    uv_timer_t deadline;
    int open_handles;
    struct fl_lag *lag; /* NULL: judged by the deadline's lateness only */
    uint64_t interval_ns;
    uint64_t due_ns;           /* the next due time (monotonic) */
    bool overdue;              /* the deadline passed; the one more look is running */
    uint64_t deadline_late_ns; /* how late the deadline timer fired */
    uint32_t start_late_ms;    /* of the current attempt */
    struct fl_probe_stats stats;
    bool once;
    bool attempted; /* once: the single attempt has begun */
    bool stopping;
    bool owed;           /* a tick came while an attempt was alive */
    void *attempt;       /* the kind's state; NULL when none is alive */
    void *kind_state;    /* the kind's, between attempts (release() frees it) */
    bool resolved;       /* the current attempt's result was reported */
    bool cancelled;      /* cancel() was called for the current attempt */
    uint64_t started_ms; /* wall clock */
    uint64_t started_ns; /* monotonic */
    fl_probe_cb cb;
    void *arg;
    void (*stopped)(void *arg);
    void *stopped_arg;
};

/* ------------------------------------------------------------------ specs */

static void free_str(char **s)
{
    free(*s);
    *s = NULL;
}

void fl_probe_spec_free(struct fl_probe_spec *spec)
{
    if (spec == NULL)
        return;
    free_str(&spec->name);
    switch (spec->type) {
    case FL_PROBE_HTTP:
        free_str(&spec->u.http.method);
        free_str(&spec->u.http.url);
        for (size_t i = 0; i < spec->u.http.n_headers && i < FL_PROBE_MAX_HEADERS; i++)
            free_str(&spec->u.http.headers[i]);
        spec->u.http.n_headers = 0;
        free_str(&spec->u.http.body_contains);
        break;
    case FL_PROBE_TCP:
        free_str(&spec->u.tcp.host);
        break;
    case FL_PROBE_EXEC:
        for (size_t i = 0; i < spec->u.exec.argc && i < FL_PROBE_MAX_ARGV; i++)
            free_str(&spec->u.exec.argv[i]);
        spec->u.exec.argc = 0;
        free_str(&spec->u.exec.expect_output);
        break;
    case FL_PROBE_SSH:
        free_str(&spec->u.ssh.host);
        free_str(&spec->u.ssh.address);
        free_str(&spec->u.ssh.user);
        free_str(&spec->u.ssh.identity_file);
        free_str(&spec->u.ssh.known_hosts);
        free_str(&spec->u.ssh.command);
        break;
    case FL_PROBE_POSTGRES:
    case FL_PROBE_REDIS:
        free_str(&spec->u.data.dsn);
        free_str(&spec->u.data.table);
        free_str(&spec->u.data.address);
        for (size_t i = 0; i < spec->u.data.n_sentinels && i < FL_PROBE_MAX_SENTINELS; i++)
            free_str(&spec->u.data.sentinels[i]);
        free_str(&spec->u.data.master_name);
        free_str(&spec->u.data.key);
        free_str(&spec->u.data.run_id);
        break;
    }
    memset(spec, 0, sizeof(*spec)); /* a second free is harmless */
}

/* NULL copies as NULL. */
static int dup_str(char **dst, const char *src)
{
    *dst = NULL;
    if (src == NULL)
        return 0;
    *dst = strdup(src);
    return *dst == NULL ? -ENOMEM : 0;
}

int fl_probe_spec_copy(struct fl_probe_spec *dst, const struct fl_probe_spec *src)
{
    int rc = 0;
    *dst = *src;
    /* Clear every owned pointer first so that a failure half-way frees only copies. */
    dst->name = NULL;
    switch (src->type) {
    case FL_PROBE_HTTP:
        dst->u.http.method = dst->u.http.url = dst->u.http.body_contains = NULL;
        memset(dst->u.http.headers, 0, sizeof(dst->u.http.headers));
        break;
    case FL_PROBE_TCP:
        dst->u.tcp.host = NULL;
        break;
    case FL_PROBE_EXEC:
        memset(dst->u.exec.argv, 0, sizeof(dst->u.exec.argv));
        dst->u.exec.expect_output = NULL;
        break;
    case FL_PROBE_SSH:
        dst->u.ssh.host = dst->u.ssh.address = dst->u.ssh.user = NULL;
        dst->u.ssh.identity_file = dst->u.ssh.known_hosts = dst->u.ssh.command = NULL;
        break;
    case FL_PROBE_POSTGRES:
    case FL_PROBE_REDIS:
        memset(&dst->u.data, 0, sizeof(dst->u.data));
        dst->u.data.wait_replicas = src->u.data.wait_replicas;
        break;
    }
    if ((rc = dup_str(&dst->name, src->name)) < 0)
        goto fail;
    switch (src->type) {
    case FL_PROBE_HTTP:
        if (src->u.http.n_headers > FL_PROBE_MAX_HEADERS ||
            src->u.http.n_expect_status > FL_PROBE_MAX_STATUSES) {
            rc = -EINVAL;
            goto fail;
        }
        if ((rc = dup_str(&dst->u.http.method, src->u.http.method)) < 0 ||
            (rc = dup_str(&dst->u.http.url, src->u.http.url)) < 0 ||
            (rc = dup_str(&dst->u.http.body_contains, src->u.http.body_contains)) < 0)
            goto fail;
        for (size_t i = 0; i < src->u.http.n_headers; i++)
            if ((rc = dup_str(&dst->u.http.headers[i], src->u.http.headers[i])) < 0)
                goto fail;
        break;
    case FL_PROBE_TCP:
        if ((rc = dup_str(&dst->u.tcp.host, src->u.tcp.host)) < 0)
            goto fail;
        break;
    case FL_PROBE_EXEC:
        if (src->u.exec.argc > FL_PROBE_MAX_ARGV) {
            rc = -EINVAL;
            goto fail;
        }
        for (size_t i = 0; i < src->u.exec.argc; i++)
            if ((rc = dup_str(&dst->u.exec.argv[i], src->u.exec.argv[i])) < 0)
                goto fail;
        if ((rc = dup_str(&dst->u.exec.expect_output, src->u.exec.expect_output)) < 0)
            goto fail;
        dst->u.exec.argv[src->u.exec.argc] = NULL;
        break;
    case FL_PROBE_SSH:
        if ((rc = dup_str(&dst->u.ssh.host, src->u.ssh.host)) < 0 ||
            (rc = dup_str(&dst->u.ssh.address, src->u.ssh.address)) < 0 ||
            (rc = dup_str(&dst->u.ssh.user, src->u.ssh.user)) < 0 ||
            (rc = dup_str(&dst->u.ssh.identity_file, src->u.ssh.identity_file)) < 0 ||
            (rc = dup_str(&dst->u.ssh.known_hosts, src->u.ssh.known_hosts)) < 0 ||
            (rc = dup_str(&dst->u.ssh.command, src->u.ssh.command)) < 0)
            goto fail;
        break;
    case FL_PROBE_POSTGRES:
    case FL_PROBE_REDIS:
        if (src->u.data.n_sentinels > FL_PROBE_MAX_SENTINELS) {
            rc = -EINVAL;
            goto fail;
        }
        if ((rc = dup_str(&dst->u.data.dsn, src->u.data.dsn)) < 0 ||
            (rc = dup_str(&dst->u.data.table, src->u.data.table)) < 0 ||
            (rc = dup_str(&dst->u.data.address, src->u.data.address)) < 0 ||
            (rc = dup_str(&dst->u.data.master_name, src->u.data.master_name)) < 0 ||
            (rc = dup_str(&dst->u.data.key, src->u.data.key)) < 0 ||
            (rc = dup_str(&dst->u.data.run_id, src->u.data.run_id)) < 0)
            goto fail;
        for (size_t i = 0; i < src->u.data.n_sentinels; i++) {
            if ((rc = dup_str(&dst->u.data.sentinels[i], src->u.data.sentinels[i])) < 0)
                goto fail;
            dst->u.data.n_sentinels = i + 1;
        }
        break;
    }
    return 0;
fail:
    fl_probe_spec_free(dst);
    return rc;
}

const char *fl_probe_type_name(enum fl_probe_type type)
{
    switch (type) {
    case FL_PROBE_HTTP:
        return "http";
    case FL_PROBE_TCP:
        return "tcp";
    case FL_PROBE_EXEC:
        return "exec";
    case FL_PROBE_SSH:
        return "ssh";
    case FL_PROBE_POSTGRES:
        return "postgres";
    case FL_PROBE_REDIS:
        return "redis";
    }
    return "?";
}

static const struct fl_probe_kind *kind_of(enum fl_probe_type type)
{
    switch (type) {
    case FL_PROBE_HTTP:
        return &fl_probe_kind_http;
    case FL_PROBE_TCP:
        return &fl_probe_kind_tcp;
    case FL_PROBE_EXEC:
        return &fl_probe_kind_exec;
    case FL_PROBE_SSH:
        return &fl_probe_kind_ssh;
    case FL_PROBE_POSTGRES:
        return &fl_probe_kind_postgres;
    case FL_PROBE_REDIS:
        return &fl_probe_kind_redis;
    }
    return NULL;
}

static int check_spec(const struct fl_probe_spec *spec)
{
    switch (spec->type) {
    case FL_PROBE_HTTP:
        return spec->u.http.url != NULL ? 0 : -EINVAL;
    case FL_PROBE_TCP:
        return spec->u.tcp.host != NULL && spec->u.tcp.port != 0 ? 0 : -EINVAL;
    case FL_PROBE_EXEC:
        return spec->u.exec.argc > 0 && spec->u.exec.argc <= FL_PROBE_MAX_ARGV &&
                       spec->u.exec.argv[0] != NULL
                   ? 0
                   : -EINVAL;
    case FL_PROBE_SSH:
        return spec->u.ssh.address != NULL && spec->u.ssh.command != NULL ? 0 : -EINVAL;
    case FL_PROBE_POSTGRES:
        return spec->u.data.dsn != NULL && spec->u.data.run_id != NULL ? 0 : -EINVAL;
    case FL_PROBE_REDIS:
        return (spec->u.data.address != NULL || spec->u.data.n_sentinels > 0) &&
                       spec->u.data.run_id != NULL
                   ? 0
                   : -EINVAL;
    }
    return -EINVAL;
}

/* ------------------------------------------------------------------ running */

uv_loop_t *fl_probe_loop(const struct fl_probe *p)
{
    return p->loop;
}

void **fl_probe_kind_state(struct fl_probe *p)
{
    return &p->kind_state;
}

const struct fl_probe_spec *fl_probe_get_spec(const struct fl_probe *p)
{
    return &p->spec;
}

/* The last thing that touches p: frees it once nothing refers to it. */
static void maybe_finish(struct fl_probe *p)
{
    if (!p->stopping || p->open_handles > 0 || p->attempt != NULL)
        return;
    void (*stopped)(void *) = p->stopped;
    void *arg = p->stopped_arg;
    if (p->kind->release != NULL && p->kind_state != NULL)
        p->kind->release(p->kind_state);
    fl_probe_spec_free(&p->spec);
    free(p);
    if (stopped != NULL)
        stopped(arg);
}

static void on_closed(uv_handle_t *h)
{
    struct fl_probe *p = h->data;
    assert(p->open_handles > 0);
    p->open_handles--;
    maybe_finish(p);
}

const char *fl_probe_outcome_name(enum fl_probe_outcome o)
{
    switch (o) {
    case FL_OUTCOME_OK:
        return "ok";
    case FL_OUTCOME_FAILED:
        return "failed";
    case FL_OUTCOME_TIMEOUT:
        return "timeout";
    case FL_OUTCOME_LATE:
        return "late";
    }
    return "?";
}

uint64_t fl_probe_late_threshold_ms(uint64_t timeout_ms)
{
    uint64_t t = timeout_ms / 2;
    return t < FL_PROBE_LATE_MIN_MS ? FL_PROBE_LATE_MIN_MS : t;
}

uint64_t fl_probe_late_start_ms(uint64_t interval_ms)
{
    uint64_t t = interval_ms / 2;
    return t < FL_PROBE_LATE_MIN_MS ? FL_PROBE_LATE_MIN_MS : t;
}

uint64_t fl_probe_phase_ms(const char *name, uint64_t interval_ms)
{
    if (interval_ms == 0)
        return 0;
    uint64_t h = 1469598103934665603ull; /* FNV-1a, 64 bits */
    for (const unsigned char *c = (const unsigned char *)(name != NULL ? name : ""); *c; c++) {
        h ^= *c;
        h *= 1099511628211ull;
    }
    return h % interval_ms;
}

void fl_probe_set_lag(struct fl_probe *p, struct fl_lag *lag)
{
    p->lag = lag;
}

void fl_probe_get_stats(const struct fl_probe *p, struct fl_probe_stats *out)
{
    *out = p->stats;
}

void fl_probe_hold(struct fl_probe *p)
{
    if (p->stopping)
        return;
    p->once = true; /* an owed attempt does not start either */
    p->attempted = true;
    uv_timer_stop(&p->tick);
    uv_timer_stop(&p->kick);
}

static void report(struct fl_probe *p, enum fl_probe_outcome outcome, uint64_t latency_ms,
                   uint32_t stall_ms, const char *detail)
{
    assert(!p->stopping); /* a stopped probe reports nothing more */
    struct fl_probe_result r;
    memset(&r, 0, sizeof(r));
    r.started_ms = p->started_ms;
    r.latency_ms = latency_ms;
    r.outcome = outcome;
    r.ok = outcome == FL_OUTCOME_OK;
    r.start_late_ms = p->start_late_ms;
    r.stall_ms = stall_ms;
    snprintf(r.detail, sizeof(r.detail), "%s", detail);
    p->cb(p, &r, p->arg);
}

static void cancel_attempt(struct fl_probe *p)
{
    if (p->attempt == NULL || p->cancelled)
        return;
    p->cancelled = true;
    p->kind->cancel(p->attempt); /* may end the attempt right here */
}

/* How long the controller was not looking during the current attempt: the
 * loop's stalls in all, or the deadline timer's own lateness. In ms. */
static uint32_t stall_during(struct fl_probe *p, uint64_t now_ns)
{
    uint64_t ns = p->lag != NULL ? fl_lag_stalled_between(p->lag, p->started_ns, now_ns) : 0;
    if (p->overdue && p->deadline_late_ns > ns)
        ns = p->deadline_late_ns;
    uint64_t ms = ns / 1000000u;
    return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

/* Reports a late attempt: text says what it would have read. */
static void report_late(struct fl_probe *p, uint64_t latency_ms, uint32_t stall, const char *text)
{
    char detail[sizeof(((struct fl_probe_result *)0)->detail)];
    snprintf(detail, sizeof(detail),
             "late: the controller stalled %ums of the attempt's %llums (%s)", (unsigned)stall,
             (unsigned long long)p->spec.timeout_ms, text);
    report(p, FL_OUTCOME_LATE, latency_ms, stall, detail);
}

/* No outcome within the timeout, or one only in the one more look. */
static void judge_timeout(struct fl_probe *p, uint32_t stall)
{
    char text[64];
    snprintf(text, sizeof(text), "timeout after %llums", (unsigned long long)p->spec.timeout_ms);
    if (stall >= fl_probe_late_threshold_ms(p->spec.timeout_ms))
        report_late(p, p->spec.timeout_ms, stall, text);
    else
        report(p, FL_OUTCOME_TIMEOUT, p->spec.timeout_ms, stall, text);
}

/* Judges the attempt the kind just ended (ok: its verdict) and reports it. */
static void judge(struct fl_probe *p, bool ok, const char *detail)
{
    uint64_t now = fl_mono_ns();
    uint64_t elapsed_ms = (now - p->started_ns) / 1000000u;
    uint32_t stall = stall_during(p, now);
    if (p->overdue)
        judge_timeout(p, stall);
    else if (ok)
        report(p, FL_OUTCOME_OK, elapsed_ms, stall, detail);
    else /* the service's own answer, whenever it was read */
        report(p, FL_OUTCOME_FAILED, elapsed_ms, stall, detail);
}

static void on_kick(uv_timer_t *t);

void fl_probe_attempt_end(struct fl_probe *p, bool ok, const char *fmt, ...)
{
    char detail[sizeof(((struct fl_probe_result *)0)->detail)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);

    assert(p->attempt != NULL); /* exactly once per attempt that started */
    p->attempt = NULL;
    p->cancelled = false;
    if (p->owed && !p->stopping && !p->once) {
        p->owed = false;
        uv_timer_start(&p->kick, on_kick, 0, 0); /* cannot fail: live timer */
    }
    if (!p->resolved) {
        p->resolved = true;
        uv_timer_stop(&p->deadline);
        judge(p, ok, detail); /* the owner may call fl_probe_stop() in there */
    }
    maybe_finish(p);
}

static void on_deadline(uv_timer_t *t)
{
    struct fl_probe *p = t->data;
    if (p->attempt == NULL || p->resolved)
        return;
    if (!p->overdue) {
        uint64_t due = p->started_ns + p->spec.timeout_ms * 1000000u;
        uint64_t now = fl_mono_ns();
        if (now < due) {
            /* Armed on the loop's cached time, which lags the clock by
             * whatever ran (or was preempted) in the iteration before the
             * attempt started: not yet. A timeout judged early is reported
             * at started + timeout_ms all the same, later than the next
             * attempt (started early by as much) may already have
             * succeeded. Wait out the rest, as on_tick does. */
            uv_timer_start(&p->deadline, on_deadline, (due - now + 999999u) / 1000000u,
                           0); /* cannot fail: live timer */
            return;
        }
        /* Timers run before the loop polls its sockets: look once more
         * (1 ms, so that the poll comes first) before calling it a timeout. */
        p->overdue = true;
        p->deadline_late_ns = now > due ? now - due : 0;
        uv_timer_start(&p->deadline, on_deadline, 1, 0); /* cannot fail: live timer */
        return;
    }
    p->resolved = true;
    uint32_t stall = stall_during(p, fl_mono_ns()); /* before cancelling: it may end p's attempt */
    cancel_attempt(p); /* before reporting: the owner may stop p in report() */
    judge_timeout(p, stall);
}

static void start_attempt(struct fl_probe *p, uint64_t due_ns)
{
    uint64_t now = fl_mono_ns();
    uint64_t late_ms = now > due_ns ? (now - due_ns) / 1000000u : 0;
    p->start_late_ms = late_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)late_ms;
    p->stats.started++;
    if (late_ms >= fl_probe_late_start_ms(p->spec.interval_ms))
        p->stats.late_starts++;
    if (late_ms > p->stats.max_start_late_ms)
        p->stats.max_start_late_ms = late_ms;
    p->attempted = true;
    p->started_ms = fl_now_ms();
    p->started_ns = now;
    p->resolved = false;
    p->cancelled = false;
    p->overdue = false;
    p->deadline_late_ns = 0;

    char err[128] = "";
    void *attempt = NULL;
    int rc = p->kind->start(p, &attempt, err, sizeof(err));
    if (rc < 0) {
        p->resolved = true;
        judge(p, false, err[0] != '\0' ? err : fl_strerror(rc));
        return;
    }
    p->attempt = attempt;
    rc = uv_timer_start(&p->deadline, on_deadline, p->spec.timeout_ms, 0);
    if (rc < 0) {
        /* Cannot happen with a live timer; never leave an attempt unbounded. */
        fl_error("probe %s: cannot arm timeout: %s", p->spec.name ? p->spec.name : "?",
                 uv_strerror(rc));
        p->resolved = true;
        cancel_attempt(p);
        report(p, FL_OUTCOME_FAILED, 0, 0, "internal error: cannot arm timeout");
    }
}

static void on_kick(uv_timer_t *t)
{
    struct fl_probe *p = t->data;
    if (p->stopping || p->attempt != NULL)
        return;
    if (p->once && p->attempted)
        return;
    start_attempt(p, fl_mono_ns()); /* an owed attempt is due when it can start */
}

/* Arms tick for due_ns (monotonic), rounding up to the timer's ms. */
static void arm_tick(struct fl_probe *p, uint64_t now_ns);

static void on_tick(uv_timer_t *t)
{
    struct fl_probe *p = t->data;
    if (p->stopping)
        return;
    uint64_t now = fl_mono_ns();
    if (now < p->due_ns) { /* the timer's ms are coarser than the clock */
        arm_tick(p, now);
        return;
    }
    uint64_t this_due = p->due_ns;
    uint64_t next = this_due + p->interval_ns;
    if (next <= now) {
        uint64_t missed = (now - next) / p->interval_ns + 1;
        p->stats.skipped += missed;
        next += missed * p->interval_ns;
    }
    p->due_ns = next;
    arm_tick(p, now);
    if (p->attempt != NULL) {
        fl_debug("probe %s: previous attempt still running; the next starts when it ends",
                 p->spec.name != NULL ? p->spec.name : "?");
        p->owed = true;
        return;
    }
    start_attempt(p, this_due);
}

static void arm_tick(struct fl_probe *p, uint64_t now_ns)
{
    uint64_t wait_ns = p->due_ns > now_ns ? p->due_ns - now_ns : 0;
    uint64_t ms = (wait_ns + 999999u) / 1000000u;
    uv_timer_start(&p->tick, on_tick, ms, 0); /* cannot fail: live timer */
}

/* The probe's first due time: its phase's next instant from now, with now
 * read when the loop first gets to the probe. */
static void on_first(uv_timer_t *t)
{
    struct fl_probe *p = t->data;
    if (p->stopping)
        return;
    uint64_t now = fl_mono_ns();
    uint64_t now_ms = now / 1000000u;
    uint64_t phase = fl_probe_phase_ms(p->spec.name, p->spec.interval_ms);
    uint64_t into = (now_ms + p->spec.interval_ms - phase) % p->spec.interval_ms;
    p->due_ns = (now_ms + (into == 0 ? 0 : p->spec.interval_ms - into)) * 1000000u;
    if (p->due_ns < now)
        p->due_ns = now;
    arm_tick(p, now);
}

static int probe_new(uv_loop_t *loop, const struct fl_probe_spec *spec, fl_probe_cb cb, void *arg,
                     bool once, struct fl_probe **out)
{
    if (loop == NULL || spec == NULL || cb == NULL || out == NULL)
        return -EINVAL;
    const struct fl_probe_kind *kind = kind_of(spec->type);
    if (kind == NULL)
        return -EINVAL;
    int rc = check_spec(spec);
    if (rc < 0)
        return rc;
    struct fl_probe *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    rc = fl_probe_spec_copy(&p->spec, spec);
    if (rc < 0) {
        free(p);
        return rc;
    }
    if (p->spec.interval_ms == 0)
        p->spec.interval_ms = DEFAULT_INTERVAL_MS;
    if (p->spec.timeout_ms == 0)
        p->spec.timeout_ms = DEFAULT_TIMEOUT_MS;
    p->loop = loop;
    p->kind = kind;
    p->cb = cb;
    p->arg = arg;
    p->once = once;
    p->interval_ns = p->spec.interval_ms * 1000000u;
    uv_timer_t *timers[] = {&p->tick, &p->kick, &p->deadline};
    for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++) {
        /* uv_timer_init cannot fail on Unix for a valid loop; checked anyway. */
        rc = uv_timer_init(loop, timers[i]);
        if (rc < 0)
            break;
        timers[i]->data = p;
        p->open_handles++;
    }
    if (rc == 0 && once) {
        rc = uv_timer_start(&p->kick, on_kick, 0, 0);
    } else if (rc == 0) {
        /* The first due time is chosen once the loop runs (on_first), not
         * now: setting up thousands of probes before a loop starts must not
         * leave every due time that passed meanwhile to fire in one burst. */
        rc = uv_timer_start(&p->tick, on_first, 0, 0);
    }
    if (rc < 0) {
        /* Half built: close what was opened; freed in the close callbacks. */
        p->stopping = true;
        for (int i = 0; i < p->open_handles; i++)
            uv_close((uv_handle_t *)timers[i], on_closed);
        if (p->open_handles == 0) {
            fl_probe_spec_free(&p->spec);
            free(p);
        }
        return rc;
    }
    *out = p;
    return 0;
}

int fl_probe_start(uv_loop_t *loop, const struct fl_probe_spec *spec, fl_probe_cb cb, void *arg,
                   struct fl_probe **out)
{
    return probe_new(loop, spec, cb, arg, false, out);
}

int fl_probe_once(uv_loop_t *loop, const struct fl_probe_spec *spec, fl_probe_cb cb, void *arg,
                  struct fl_probe **out)
{
    return probe_new(loop, spec, cb, arg, true, out);
}

void fl_probe_stop(struct fl_probe *p, void (*stopped)(void *arg), void *arg)
{
    if (p == NULL || p->stopping)
        return;
    p->stopping = true;
    p->stopped = stopped;
    p->stopped_arg = arg;
    p->resolved = true; /* nothing more is reported */
    uv_close((uv_handle_t *)&p->tick, on_closed);
    uv_close((uv_handle_t *)&p->kick, on_closed);
    uv_close((uv_handle_t *)&p->deadline, on_closed);
    cancel_attempt(p);
}
