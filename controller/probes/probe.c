/* The probe runner: schedule, timeout, report.
 *
 * A probe owns two timers: `tick` (repeating, every interval; the first tick
 * is due at once) and `deadline` (one shot, timeout after an attempt starts).
 * At most one attempt exists at a time; the kind (http.c, tcp.c, exec.c)
 * performs it and calls fl_probe_attempt_end() once it has released all it
 * held. A tick that finds an attempt still alive is owed: the next attempt
 * starts as soon as that one ends, and the schedule continues from there.
 * (With timeout == interval the tick and the deadline fall due together;
 * skipping the tick outright would halve the probe's resolution.)
 *
 *   tick ──► start ──► attempt ──► end(ok/fail) ──► report
 *                         │
 *                 deadline│──► report "timeout after N ms", cancel ──► end (ignored)
 *
 * `resolved` says the current attempt's result has been reported; it makes
 * the timeout and a late end() race-free. Stopping closes both timers and
 * cancels the attempt; the probe is freed when both close callbacks have run
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

#define DEFAULT_INTERVAL_MS 1000u
#define DEFAULT_TIMEOUT_MS 1000u

struct fl_probe {
    uv_loop_t *loop;
    struct fl_probe_spec spec;
    const struct fl_probe_kind *kind;
    uv_timer_t tick;
    uv_timer_t deadline;
    int open_handles;
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
        break;
    case FL_PROBE_SSH:
        free_str(&spec->u.ssh.host);
        free_str(&spec->u.ssh.address);
        free_str(&spec->u.ssh.user);
        free_str(&spec->u.ssh.identity_file);
        free_str(&spec->u.ssh.known_hosts);
        free_str(&spec->u.ssh.command);
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
        break;
    case FL_PROBE_SSH:
        dst->u.ssh.host = dst->u.ssh.address = dst->u.ssh.user = NULL;
        dst->u.ssh.identity_file = dst->u.ssh.known_hosts = dst->u.ssh.command = NULL;
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

static void report(struct fl_probe *p, bool ok, const char *detail)
{
    assert(!p->stopping); /* a stopped probe reports nothing more */
    struct fl_probe_result r;
    memset(&r, 0, sizeof(r));
    r.started_ms = p->started_ms;
    r.latency_ms = (fl_mono_ns() - p->started_ns) / 1000000u;
    r.ok = ok;
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

static void on_tick(uv_timer_t *t);

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
        uv_timer_start(&p->tick, on_tick, 0, p->spec.interval_ms); /* cannot fail: live timer */
    }
    if (!p->resolved) {
        p->resolved = true;
        uv_timer_stop(&p->deadline);
        report(p, ok, detail); /* the owner may call fl_probe_stop() in there */
    }
    maybe_finish(p);
}

static void on_deadline(uv_timer_t *t)
{
    struct fl_probe *p = t->data;
    if (p->attempt == NULL || p->resolved)
        return;
    char detail[64];
    snprintf(detail, sizeof(detail), "timeout after %llums",
             (unsigned long long)p->spec.timeout_ms);
    p->resolved = true;
    cancel_attempt(p); /* before reporting: the owner may stop p in report() */
    report(p, false, detail);
}

static void on_tick(uv_timer_t *t)
{
    struct fl_probe *p = t->data;
    if (p->stopping)
        return;
    if (p->attempt != NULL) {
        fl_debug("probe %s: previous attempt still running; the next starts when it ends",
                 p->spec.name != NULL ? p->spec.name : "?");
        p->owed = true;
        return;
    }
    if (p->once) {
        if (p->attempted)
            return;
        uv_timer_stop(&p->tick);
    }
    p->attempted = true;
    p->started_ms = fl_now_ms();
    p->started_ns = fl_mono_ns();
    p->resolved = false;
    p->cancelled = false;

    char err[128] = "";
    void *attempt = NULL;
    int rc = p->kind->start(p, &attempt, err, sizeof(err));
    if (rc < 0) {
        p->resolved = true;
        report(p, false, err[0] != '\0' ? err : fl_strerror(rc));
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
        report(p, false, "internal error: cannot arm timeout");
    }
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
    /* uv_timer_init cannot fail on Unix for a valid loop; checked anyway. */
    rc = uv_timer_init(loop, &p->tick);
    if (rc < 0) {
        fl_probe_spec_free(&p->spec);
        free(p);
        return rc;
    }
    p->tick.data = p;
    p->open_handles = 1;
    rc = uv_timer_init(loop, &p->deadline);
    if (rc == 0) {
        p->deadline.data = p;
        p->open_handles = 2;
        rc = uv_timer_start(&p->tick, on_tick, 0, once ? 0 : p->spec.interval_ms);
    }
    if (rc < 0) {
        /* Half built: close what was opened; freed in the close callbacks. */
        p->stopping = true;
        uv_close((uv_handle_t *)&p->tick, on_closed);
        if (p->open_handles == 2)
            uv_close((uv_handle_t *)&p->deadline, on_closed);
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
    uv_close((uv_handle_t *)&p->deadline, on_closed);
    cancel_attempt(p);
}
