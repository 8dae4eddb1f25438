/* faultline deploy: agents onto hosts over SSH, in parallel; this file is
 * the job state machine (what happens on a host is remote.c, what is put
 * there artifacts.c).
 *
 * One job per host. SSH work (blocking libssh2 calls, each bounded by the
 * step timeout) runs on libuv's thread pool; the verifying ping runs on the
 * loop through fl_client. A job changes state only in set_state(), on the
 * loop, which refuses any transition not drawn here:
 *
 *   NEW ─install─► CHECK ─ok─► VERIFY ─answers──────────────────────► DONE ─session─► CLOSE
 *    │               │          │  ▲ │                                  ▲      open
 *    │               │   silent,│  │ └─silent after a change: failed────┤
 *    │               │  nothing │  │ok                                  │
 *    │               │  changed ▼  │                                    │
 *    │               │        RESTART ─fails────────────────────────────┤
 *    │               └─fails────────────────────────────────────────────┤
 *    ├─uninstall─► REMOVE ─removed, nothing there, or fails─────────────┤
 *    └─deploy_dir not a plain path──────────────────────────────────────┘
 *
 *   CHECK or REMOVE ─no descriptor for the session (EMFILE)─► NEW, queued again
 *
 * Jobs run through the controller's fleet fan-out (client/fleet.h): a window
 * of them at a time, sized from the descriptor limit (each holds an SSH
 * socket and, while verifying, a ping's), the rest queued; a job leaves the
 * window when its session is closed.
 *
 *   CHECK   (pool) open the session, inspect; unless everything is up to date
 *           and running: stop, copy what differs, start
 *   RESTART (pool) stop, copy, start: the agent looked up to date but was silent
 *   REMOVE  (pool) open the session, stop, delete what deploy installed
 *   VERIFY  (loop) an authenticated ping, retried until verify_ms has passed
 *   DONE    (loop) the result line is printed
 *   CLOSE   (pool) the session is closed; the job is over
 *
 * A state of the pool that cannot be queued fails the job (DONE).
 *
 * Idempotence: the remote files' SHA-256 (sha256sum on the host) are
 * compared with the local ones, and only what differs is copied; a host
 * whose files all match and whose agent answers is left alone. */
#include "controller/deploy/deploy.h"

#include <assert.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "common/clock.h"
#include "common/log.h"
#include "controller/client/client.h"
#include "controller/client/fleet.h"
#include "controller/client/threadpool.h"
#include "controller/deploy/artifacts.h"
#include "controller/deploy/remote.h"
#include "controller/experiment/inventory.h"
#include "controller/ssh/session.h"

#define MAX_BINARY (256u << 20)
#define PING_TRY_MS 1000
#define PING_RETRY_MS 200

enum state { ST_NEW, ST_CHECK, ST_RESTART, ST_REMOVE, ST_VERIFY, ST_DONE, ST_CLOSE, ST_COUNT };

static const char *const state_names[ST_COUNT] = {
    "new", "check", "restart", "remove", "verify", "done", "close",
};

enum outcome {
    OUT_NONE,
    OUT_INSTALLED,
    OUT_UPGRADED,
    OUT_RECONFIGURED,
    OUT_RESTARTED,
    OUT_UNCHANGED,
    OUT_REMOVED,
    OUT_NOT_INSTALLED,
    OUT_FAILED,
    OUT_COUNT
};

static const char *const outcome_names[OUT_COUNT] = {
    "?",         "installed", "upgraded",      "reconfigured", "restarted",
    "unchanged", "removed",   "not installed", "FAILED",
};

struct deploy;

struct job {
    struct deploy *d;
    size_t index;
    bool laid_out;             /* r.lay is made (once, also when queued again) */
    struct fl_deploy_remote r; /* the host, its session and what is on it */
    uv_work_t work;
    enum state state;
    uint64_t started_ns;
    int rc; /* of the last work in the pool */
    enum outcome outcome;
    /* verification */
    uv_timer_t timer;
    bool timer_open;
    uint64_t ping_deadline_ns;
    uint64_t ping_ns;
    char version[64];
    char ping_err[512];
    bool answered;
};

struct deploy {
    uv_loop_t loop;
    const struct fl_deploy_opts *o;
    FILE *out;
    struct job *jobs;
    size_t n_jobs;
    struct fl_fleet *fleet;
    size_t name_width;
    unsigned counts[OUT_COUNT];
    void *binary;
    size_t binary_len;
    void *key;
    size_t key_len;
};

static void queue(struct job *j, enum state to);
static void ping(struct job *j);

/* The arrows of the drawing above. */
static bool legal(enum state from, enum state to)
{
    switch (from) {
    case ST_NEW:
        return to == ST_CHECK || to == ST_REMOVE || to == ST_DONE;
    case ST_CHECK:
        return to == ST_VERIFY || to == ST_DONE || to == ST_NEW;
    case ST_RESTART:
        return to == ST_VERIFY || to == ST_DONE;
    case ST_REMOVE:
        return to == ST_DONE || to == ST_NEW;
    case ST_VERIFY:
        return to == ST_RESTART || to == ST_DONE;
    case ST_DONE:
        return to == ST_CLOSE;
    default:
        return false;
    }
}

static void set_state(struct job *j, enum state to)
{
    if (!legal(j->state, to)) {
        fl_error("internal error: deploy %s: no transition from %s to %s", j->r.h->name,
                 state_names[j->state], state_names[to]);
        abort();
    }
    fl_debug("deploy %s: %s -> %s", j->r.h->name, state_names[j->state], state_names[to]);
    j->state = to;
}

/* In the thread pool: the state's SSH work. */
static void work(uv_work_t *w)
{
    struct job *j = w->data;
    struct fl_deploy_remote *r = &j->r;
    bool installed = false;
    int rc = 0;
    switch (j->state) {
    case ST_CHECK:
        rc = fl_deploy_remote_open(r);
        if (rc == 0)
            rc = fl_deploy_remote_inspect(r);
        if (rc == 0 && fl_deploy_layout_same(&r->lay) && r->running)
            break; /* the loop pings; unchanged if it answers */
        if (rc == 0) {
            j->outcome = !r->present                       ? OUT_INSTALLED
                         : !r->lay.art[FL_ART_BIN].same    ? OUT_UPGRADED
                         : !fl_deploy_layout_same(&r->lay) ? OUT_RECONFIGURED
                                                           : OUT_RESTARTED;
            rc = fl_deploy_remote_install(r);
        }
        break;
    case ST_RESTART:
        j->outcome = OUT_RESTARTED;
        rc = fl_deploy_remote_install(r);
        break;
    case ST_REMOVE:
        rc = fl_deploy_remote_open(r);
        if (rc == 0)
            rc = fl_deploy_remote_remove(r, &installed);
        if (rc == 0)
            j->outcome = installed ? OUT_REMOVED : OUT_NOT_INSTALLED;
        break;
    case ST_CLOSE:
        fl_ssh_close(&r->s);
        break;
    default:
        break; /* not queued in the other states */
    }
    j->rc = rc;
}

/* ------------------------------------------------------------- on the loop */

static void print_result(struct job *j)
{
    struct deploy *d = j->d;
    double secs = (double)(fl_mono_ns() - j->started_ns) / 1e9;
    d->counts[j->outcome]++;
    fprintf(d->out, "%-*s  %s", (int)d->name_width, j->r.h->name, outcome_names[j->outcome]);
    if (j->outcome == OUT_FAILED)
        fprintf(d->out, ": %s\n", j->r.err);
    else if (j->answered)
        fprintf(d->out, " in %.1fs (agent %s answers, %.1f ms)\n", secs, j->version,
                (double)j->ping_ns / 1e6);
    else
        fprintf(d->out, " in %.1fs%s%s\n", secs, j->r.note[0] ? ": " : "", j->r.note);
    fflush(d->out);
}

static void finish(struct job *j)
{
    set_state(j, ST_DONE);
    print_result(j);
    if (j->timer_open) {
        j->timer_open = false;
        uv_close((uv_handle_t *)&j->timer, NULL); /* the job array outlives the loop */
    }
    if (j->r.s != NULL)
        queue(j, ST_CLOSE);
    else if (j->d->fleet != NULL)
        fl_fleet_done(j->d->fleet, j->index);
}

static void fail_job(struct job *j)
{
    j->outcome = OUT_FAILED;
    finish(j);
}

static void after_work(uv_work_t *w, int status)
{
    struct job *j = w->data;
    (void)status;
    if ((j->state == ST_CHECK || j->state == ST_REMOVE) && fl_fleet_is_fd_shortage(j->rc) &&
        j->r.s == NULL) {
        set_state(j, ST_NEW); /* ours, not the host's: queued again */
        fl_fleet_no_descriptor(j->d->fleet, j->index);
        return;
    }
    switch (j->state) {
    case ST_REMOVE:
        if (j->rc < 0)
            fail_job(j);
        else
            finish(j);
        return;
    case ST_CHECK:
    case ST_RESTART:
        if (j->rc < 0) {
            fail_job(j);
            return;
        }
        set_state(j, ST_VERIFY);
        j->ping_deadline_ns = fl_mono_ns() + j->d->o->verify_ms * 1000000ull;
        ping(j);
        return;
    default: /* ST_CLOSE: the job is over */
        fl_fleet_done(j->d->fleet, j->index);
        return;
    }
}

/* Enters a state whose work runs in the pool. */
static void queue(struct job *j, enum state to)
{
    set_state(j, to);
    j->work.data = j;
    int rc = uv_queue_work(&j->d->loop, &j->work, work, after_work);
    if (rc < 0 && to != ST_CLOSE) {
        snprintf(j->r.err, sizeof(j->r.err), "cannot queue work: %s", uv_strerror(rc));
        fail_job(j);
    } else if (rc < 0) {
        fl_ssh_close(&j->r.s);
        fl_fleet_done(j->d->fleet, j->index);
    }
}

static void on_retry(uv_timer_t *t)
{
    ping(t->data);
}

/* The ping failed: again a little later, or give up. */
static void ping_failed(struct job *j)
{
    if (fl_mono_ns() + PING_RETRY_MS * 1000000ull < j->ping_deadline_ns) {
        uv_timer_start(&j->timer, on_retry, PING_RETRY_MS, 0);
        return;
    }
    if (j->outcome == OUT_NONE) { /* it ran and looked up to date, but is silent: restart it */
        queue(j, ST_RESTART);
        return;
    }
    const struct fl_deploy_remote *r = &j->r;
    const char *log = r->systemd ? "journalctl -u " : "";
    snprintf(j->r.err, sizeof(j->r.err),
             "the agent was started but does not answer on %s:%u: %.300s (see %s%s%s on the host)",
             r->h->address, (unsigned)r->h->port, j->ping_err, log,
             r->systemd ? r->lay.unit : r->lay.dir, r->systemd ? "" : "/agent.log");
    fail_job(j);
}

static void on_reply(struct fl_client *cl, const Faultline__Envelope *reply, int status, void *arg)
{
    struct job *j = arg;
    if (status == 0 && reply->msg_case == FAULTLINE__ENVELOPE__MSG_PONG) {
        j->answered = true;
        j->ping_ns = fl_mono_ns() - j->ping_ns;
    } else {
        snprintf(j->ping_err, sizeof(j->ping_err), "no answer to a ping");
    }
    fl_client_close(cl);
}

static void on_ready(struct fl_client *cl, const Faultline__Welcome *welcome)
{
    struct job *j = fl_client_data(cl);
    snprintf(j->version, sizeof(j->version), "%s", welcome->version);
    static Faultline__Ping ping_msg = FAULTLINE__PING__INIT;
    Faultline__Envelope req = FAULTLINE__ENVELOPE__INIT;
    req.msg_case = FAULTLINE__ENVELOPE__MSG_PING;
    req.ping = &ping_msg;
    j->ping_ns = fl_mono_ns();
    if (fl_client_request(cl, &req, PING_TRY_MS, on_reply, j) < 0) {
        snprintf(j->ping_err, sizeof(j->ping_err), "cannot send a ping");
        fl_client_close(cl);
    }
}

static void on_closed(struct fl_client *cl, int reason)
{
    struct job *j = fl_client_data(cl);
    if (j->answered) {
        if (j->outcome == OUT_NONE)
            j->outcome = OUT_UNCHANGED;
        finish(j);
        return;
    }
    if (reason < 0)
        fl_client_explain(cl, reason, j->ping_err, sizeof(j->ping_err));
    ping_failed(j);
}

static const struct fl_client_ops ping_ops = {.ready = on_ready, .closed = on_closed};

static void ping(struct job *j)
{
    struct fl_client *cl;
    int rc = fl_client_connect(&j->d->loop, j->r.h->name, j->r.h->address, j->r.h->port,
                               j->d->o->key, PING_TRY_MS, &ping_ops, j, &cl);
    if (rc < 0) {
        snprintf(j->ping_err, sizeof(j->ping_err), "%s", fl_strerror(rc));
        ping_failed(j);
    }
}

/* ------------------------------------------------------------------ run */

/* The fleet fan-out starts job i (client/fleet.h). */
static int start_job(struct fl_fleet *f, size_t i, void *ctx)
{
    struct deploy *d = ctx;
    struct job *j = &d->jobs[i];
    (void)f;
    j->started_ns = fl_mono_ns();
    if (!j->laid_out && fl_deploy_layout_init(&j->r.lay, j->r.h, d->binary, d->binary_len, d->key,
                                              d->key_len, j->r.err, sizeof(j->r.err)) < 0) {
        fail_job(j); /* done in the fleet too: it holds no session */
        return 0;
    }
    j->laid_out = true;
    queue(j, d->o->uninstall ? ST_REMOVE : ST_CHECK);
    return 0;
}

static void job_never_started(struct fl_fleet *f, size_t i, void *ctx)
{
    (void)f, (void)ctx, (void)i; /* no deadline: never called */
    assert(false);
}

static const struct fl_fleet_ops job_fleet_ops = {.start = start_job, .expired = job_never_started};

/* Two hosts of one inventory that name the same directory on the same
 * machine (address, ssh port, deploy_dir) would install, start and remove
 * one agent twice, each job undoing the other: refused before anything runs. */
static int check_duplicates(const struct fl_inventory *inv, char *err, size_t errlen)
{
    for (size_t i = 0; i < inv->n_hosts; i++) {
        const struct fl_host *a = &inv->hosts[i];
        char da[512];
        fl_deploy_dir_of(a, da, sizeof(da));
        unsigned pa = a->ssh.port ? a->ssh.port : FL_SSH_DEFAULT_PORT;
        for (size_t k = i + 1; k < inv->n_hosts; k++) {
            const struct fl_host *b = &inv->hosts[k];
            char db[512];
            fl_deploy_dir_of(b, db, sizeof(db));
            unsigned pb = b->ssh.port ? b->ssh.port : FL_SSH_DEFAULT_PORT;
            if (pa == pb && strcasecmp(a->address, b->address) == 0 && strcmp(da, db) == 0) {
                snprintf(err, errlen,
                         "hosts %s and %s both deploy to %s (ssh port %u) in %s: one directory "
                         "holds one agent; give one of them its own ssh.deploy_dir",
                         a->name, b->name, a->address, pa, da);
                return -EINVAL;
            }
        }
    }
    return 0;
}

int fl_deploy_run(const struct fl_inventory *inv, const struct fl_deploy_opts *o, FILE *out,
                  char *err, size_t errlen)
{
    int drc = check_duplicates(inv, err, errlen);
    if (drc < 0)
        return drc;
    struct deploy *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    d->o = o;
    d->out = out;
    int rc = 0;
    if (!o->uninstall) {
        rc = fl_deploy_read_file(o->agent_binary, MAX_BINARY, &d->binary, &d->binary_len, err,
                                 errlen);
        if (rc == 0)
            rc = fl_deploy_read_file(o->key_path, 4096, &d->key, &d->key_len, err, errlen);
    }
    if (rc == 0 && (d->jobs = calloc(inv->n_hosts, sizeof(*d->jobs))) == NULL) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
    }
    if (rc < 0) {
        free(d->binary);
        free(d->key);
        free(d);
        return rc;
    }
    d->n_jobs = inv->n_hosts;
    for (size_t i = 0; i < inv->n_hosts; i++) {
        size_t w = strlen(inv->hosts[i].name);
        d->name_width = w > d->name_width ? w : d->name_width;
    }
    /* a window of hosts at a time (two descriptors each: ssh and ping), one
     * pool thread per host's ssh session in it */
    size_t window = fl_fleet_fd_budget(FL_FLEET_FD_RESERVE) / 2;
    window = window < 1 ? 1 : window > FL_FLEET_MAX_IN_FLIGHT ? FL_FLEET_MAX_IN_FLIGHT : window;
    fl_threadpool_size(inv->n_hosts < window ? inv->n_hosts : window);
    if ((rc = uv_loop_init(&d->loop)) < 0) {
        snprintf(err, errlen, "cannot start an event loop: %s", uv_strerror(rc));
        free(d->jobs);
        if (d->key != NULL)
            OPENSSL_cleanse(d->key, d->key_len);
        free(d->key);
        free(d->binary);
        free(d);
        return rc;
    }
    uint64_t t0 = fl_mono_ns();
    for (size_t i = 0; i < inv->n_hosts; i++) {
        struct job *j = &d->jobs[i];
        j->index = i;
        j->started_ns = t0;
        j->d = d;
        j->r.h = &inv->hosts[i];
        j->r.o = o;
        uv_timer_init(&d->loop, &j->timer);
        j->timer.data = j;
        j->timer_open = true;
    }
    rc = fl_fleet_new(&d->loop, inv->n_hosts, window, 0, &job_fleet_ops, d, &d->fleet);
    if (rc < 0) {
        for (size_t i = 0; i < inv->n_hosts; i++) {
            snprintf(d->jobs[i].r.err, sizeof(d->jobs[i].r.err), "nothing done: %s",
                     fl_strerror(rc));
            fail_job(&d->jobs[i]); /* said on each host's line */
        }
    } else {
        fl_fleet_start(d->fleet);
    }
    uv_run(&d->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&d->loop) != 0)
        fl_error("internal error: handles left open");
    fl_fleet_free(d->fleet);

    unsigned failed = d->counts[OUT_FAILED];
    fprintf(out, "%zu host%s in %.1fs:", d->n_jobs, d->n_jobs == 1 ? "" : "s",
            (double)(fl_mono_ns() - t0) / 1e9);
    bool first = true;
    for (int k = OUT_INSTALLED; k < OUT_COUNT; k++) {
        if (d->counts[k] == 0)
            continue;
        fprintf(out, "%s %u %s", first ? "" : ",", d->counts[k],
                k == OUT_FAILED ? "failed" : outcome_names[k]);
        first = false;
    }
    fprintf(out, "\n");
    fflush(out);
    free(d->jobs);
    if (d->key != NULL) {
        OPENSSL_cleanse(d->key, d->key_len);
        free(d->key);
    }
    free(d->binary);
    free(d);
    return (int)failed;
}
