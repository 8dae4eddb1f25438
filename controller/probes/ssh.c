/* SSH probe: does a command run on the host exit with the expected code?
 *
 * For checks that only make sense on the host itself (`systemctl is-active
 * nginx`, a replication-lag query). Each attempt is one job on libuv's thread
 * pool (controller/ssh/session.c blocks), bounded by the probe's timeout.
 *
 * One SSH session per probe, kept between attempts (kind state): the first
 * attempt opens it, later attempts open only a channel on it, which spares
 * a TCP connect, a key exchange and an authentication per interval. An
 * attempt that fails at the transport level (or is cancelled, or times out)
 * drops the session, and the next attempt opens a new one. When a kept
 * session turns out dead before anything ran (no channel opens: sshd was
 * restarted, the host rebooted), the attempt reconnects once within its own
 * deadline rather than report a failure the target did not cause.
 *
 *   start ──queue──► worker: [open] exec ──► after_work (loop) ──► end
 *     cancel: uv_cancel if still queued; else the stop flag (noticed by
 *             fl_ssh_open while connecting) and fl_ssh_cancel on the live
 *             session; the end still comes from after_work. A session a
 *             cancel may have reached is never kept.
 *
 * On stop, release() hands a kept session to one last job that closes it. */
#include "controller/probes/probe.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "controller/ssh/session.h"

#define WORKER_MARGIN_NS (100ull * 1000000ull) /* the runner's timeout reports first */

struct ssh_state {
    uv_loop_t *loop;
    struct fl_ssh_session *session; /* NULL: opened by the next attempt */
    char last_error[160];           /* logged once, not at every interval */
};

struct ssh_attempt {
    uv_work_t work;
    struct fl_probe *p;
    struct ssh_state *st;
    uint64_t deadline_ns;
    uv_mutex_t lock; /* guards live and cancelled between the loop and the worker */
    struct fl_ssh_session *live;
    bool cancelled;
    atomic_bool stop; /* the same as cancelled, for fl_ssh_open to poll */
    bool ok;
    char detail[160];
    char err[512]; /* the full sentence, for the log */
};

/* Returns whether the attempt was cancelled (by then). */
static bool set_live(struct ssh_attempt *a, struct fl_ssh_session *s)
{
    uv_mutex_lock(&a->lock);
    a->live = s;
    if (s != NULL && a->cancelled)
        fl_ssh_cancel(s);
    bool cancelled = a->cancelled;
    uv_mutex_unlock(&a->lock);
    return cancelled;
}

static void open_failed(struct ssh_attempt *a, int rc)
{
    const char *what;
    switch (rc) {
    case -ECONNREFUSED:
        what = "connection refused";
        break;
    case -ETIMEDOUT:
        what = "ssh connection timed out";
        break;
    case -EHOSTUNREACH:
        what = "host unreachable";
        break;
    case -EACCES:
        what = "ssh authentication refused";
        break;
    case -ENOKEY:
        what = "host key unknown";
        break;
    case -EKEYREJECTED:
        what = "host key changed";
        break;
    case -ECANCELED:
        what = "cancelled";
        break;
    default:
        what = NULL;
    }
    if (what != NULL)
        snprintf(a->detail, sizeof(a->detail), "%s", what);
    else
        snprintf(a->detail, sizeof(a->detail), "%.159s", a->err);
}

static void work(uv_work_t *w)
{
    struct ssh_attempt *a = w->data;
    struct ssh_state *st = a->st;
    const struct fl_probe_ssh *spec = &fl_probe_get_spec(a->p)->u.ssh;
    const struct fl_ssh_target t = {
        .name = spec->host,
        .address = spec->address,
        .port = spec->port,
        .user = spec->user,
        .identity_file = spec->identity_file,
        .known_hosts = spec->known_hosts,
        .cancel = &a->stop,
    };
    bool reused = st->session != NULL;
    int status = -1;
    int rc;
    for (;;) {
        if (st->session == NULL) {
            rc = fl_ssh_open(&t, a->deadline_ns, &st->session, a->err, sizeof(a->err));
            if (rc < 0) {
                open_failed(a, rc);
                return;
            }
        }
        set_live(a, st->session);
        rc = fl_ssh_exec(st->session, spec->command, a->deadline_ns, &status, NULL, 0, a->err,
                         sizeof(a->err));
        if (set_live(a, NULL)) {
            /* a cancel may have reached the session, even after exec returned:
             * a cancelled session fails every later call, so it is not kept */
            fl_ssh_close(&st->session);
        }
        if (rc == -ENOTCONN && reused && st->session != NULL) {
            /* the kept session is dead and nothing ran: once more, afresh */
            fl_debug("ssh probe %s: %s; reconnecting", fl_probe_get_spec(a->p)->name, a->err);
            fl_ssh_close(&st->session);
            reused = false;
            continue;
        }
        break;
    }
    if (rc < 0) {
        fl_ssh_close(&st->session); /* a transport failure: the next attempt reconnects */
        snprintf(a->detail, sizeof(a->detail), "%.159s",
                 rc == -ECANCELED   ? "cancelled"
                 : rc == -ETIMEDOUT ? "timed out"
                                    : a->err);
        return;
    }
    a->err[0] = '\0';
    if (status == spec->expect_exit) {
        a->ok = true;
        snprintf(a->detail, sizeof(a->detail), "exit %d", status);
    } else if (status < 0) {
        snprintf(a->detail, sizeof(a->detail), "no exit status (expected %d)", spec->expect_exit);
    } else {
        snprintf(a->detail, sizeof(a->detail), "exit %d (expected %d)", status, spec->expect_exit);
    }
}

static void after_work(uv_work_t *w, int status)
{
    struct ssh_attempt *a = w->data;
    struct fl_probe *p = a->p;
    if (status == UV_ECANCELED)
        snprintf(a->detail, sizeof(a->detail), "cancelled");
    if (a->err[0] != '\0' && !a->cancelled && strcmp(a->st->last_error, a->detail) != 0)
        fl_warn("ssh probe %s: %s", fl_probe_get_spec(p)->name, a->err);
    snprintf(a->st->last_error, sizeof(a->st->last_error), "%s", a->ok ? "" : a->detail);
    bool ok = a->ok;
    char detail[sizeof(a->detail)];
    memcpy(detail, a->detail, sizeof(detail));
    uv_mutex_destroy(&a->lock);
    free(a);
    fl_probe_attempt_end(p, ok, "%s", detail);
}

static int ssh_start(struct fl_probe *p, void **attempt, char *err, size_t err_len)
{
    void **state = fl_probe_kind_state(p);
    if (*state == NULL) {
        struct ssh_state *st = calloc(1, sizeof(*st));
        if (st == NULL) {
            snprintf(err, err_len, "out of memory");
            return -ENOMEM;
        }
        st->loop = fl_probe_loop(p);
        *state = st;
    }
    struct ssh_attempt *a = calloc(1, sizeof(*a));
    if (a == NULL || uv_mutex_init(&a->lock) != 0) {
        free(a);
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    a->p = p;
    a->st = *state;
    atomic_init(&a->stop, false);
    a->deadline_ns =
        fl_mono_ns() + fl_probe_get_spec(p)->timeout_ms * 1000000ull + WORKER_MARGIN_NS;
    a->work.data = a;
    int rc = uv_queue_work(fl_probe_loop(p), &a->work, work, after_work);
    if (rc < 0) {
        uv_mutex_destroy(&a->lock);
        free(a);
        snprintf(err, err_len, "cannot queue the ssh attempt: %s", uv_strerror(rc));
        return rc;
    }
    *attempt = a;
    return 0;
}

static void ssh_cancel(void *attempt)
{
    struct ssh_attempt *a = attempt;
    uv_mutex_lock(&a->lock);
    a->cancelled = true;
    atomic_store(&a->stop, true);
    if (a->live != NULL)
        fl_ssh_cancel(a->live);
    uv_mutex_unlock(&a->lock);
    uv_cancel((uv_req_t *)&a->work); /* fails harmlessly once the worker has begun */
}

struct closer {
    uv_work_t work;
    struct fl_ssh_session *session;
};

static void close_work(uv_work_t *w)
{
    struct closer *c = w->data;
    fl_ssh_close(&c->session);
}

static void close_done(uv_work_t *w, int status)
{
    struct closer *c = w->data;
    (void)status;
    fl_ssh_close(&c->session); /* only when the job was cancelled before it ran */
    free(c);
}

static void ssh_release(void *state)
{
    struct ssh_state *st = state;
    if (st->session != NULL) {
        struct closer *c = calloc(1, sizeof(*c));
        if (c != NULL) {
            c->session = st->session;
            c->work.data = c;
            if (uv_queue_work(st->loop, &c->work, close_work, close_done) == 0)
                st->session = NULL;
            else
                free(c);
        }
        fl_ssh_close(&st->session); /* could not queue: close here, bounded by a short grace */
    }
    free(st);
}

const struct fl_probe_kind fl_probe_kind_ssh = {
    .name = "ssh",
    .start = ssh_start,
    .cancel = ssh_cancel,
    .release = ssh_release,
};
