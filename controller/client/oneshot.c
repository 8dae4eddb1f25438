/* One request to each agent, through the fleet fan-out (fleet.h). Each try
 * of a host is one client: connect, authenticate, one request, close; what
 * happens next (done, tried again, queued again for want of a descriptor)
 * is decided in one place, try_over(), once the client has closed. */
#include "controller/client/oneshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/addr.h"
#include "common/log.h"
#include "common/units.h"
#include "controller/client/client.h"
#include "controller/client/fleet.h"

struct run {
    const struct fl_oneshot_ops *ops;
    void *ctx;
    const struct fl_oneshot_opts *o;
    const struct fl_key *key;
    uv_loop_t loop;
    struct fl_fleet *fleet;
};

struct slot {
    struct run *run;
    struct fl_oneshot_target *t;
    size_t index;
    bool settled; /* this try has its outcome in t->status and t->error */
};

int fl_oneshot_parse(char *const *specs, int n, struct fl_oneshot_target *targets, const char **bad)
{
    for (int i = 0; i < n; i++) {
        struct fl_oneshot_target *t = &targets[i];
        memset(t, 0, sizeof(*t));
        t->spec = specs[i];
        if (fl_addr_split(t->spec, FL_DEFAULT_PORT, t->host, sizeof(t->host), &t->port) < 0) {
            *bad = t->spec;
            return -EINVAL;
        }
    }
    return 0;
}

/* Can trying again change this failure? Not a wrong key, a peer that is not
 * an agent of our protocol, a name that does not resolve, or a request the
 * agent refused as such. */
static bool worth_retrying(const struct fl_oneshot_target *t)
{
    if (t->status == -EREMOTEIO)
        return t->agent_code == FAULTLINE__ERROR_CODE__ERROR_INTERNAL ||
               t->agent_code == FAULTLINE__ERROR_CODE__ERROR_REVERT_FAILED ||
               t->agent_code == FAULTLINE__ERROR_CODE__ERROR_BUSY;
    switch (t->status) {
    case -EACCES:
    case -EPROTONOSUPPORT:
    case -EPROTO:
    case -EBADMSG:
    case -EMSGSIZE:
    case -ENOMEM:
    case -ENAMETOOLONG:
    case UV_EAI_NONAME:
    case UV_EAI_FAIL:
        return false;
    default:
        return true;
    }
}

static uint64_t retry_delay(unsigned attempts)
{
    uint64_t d = FL_ONESHOT_RETRY_FIRST_MS;
    for (unsigned k = 1; k < attempts && d < FL_ONESHOT_RETRY_MAX_MS; k++)
        d *= 2;
    return d < FL_ONESHOT_RETRY_MAX_MS ? d : FL_ONESHOT_RETRY_MAX_MS;
}

/* A try of s's host ended with t->status: done, again later, or again when a
 * descriptor is free. The one place that decides. */
static void try_over(struct slot *s)
{
    struct run *r = s->run;
    struct fl_oneshot_target *t = s->t;
    if (fl_fleet_is_fd_shortage(t->status)) {
        /* ours, not the host's: this try does not count */
        fl_debug("%s: no descriptor free; queued again", t->spec);
        t->attempts--;
        fl_fleet_no_descriptor(r->fleet, s->index);
        return;
    }
    t->reached = true;
    if (t->status != 0 && r->o->retry && worth_retrying(t) && fl_fleet_remaining_ms(r->fleet) > 0) {
        fl_debug("%s: try %u failed (%s); again", t->spec, t->attempts, t->error);
        fl_fleet_retry(r->fleet, s->index, retry_delay(t->attempts));
        return;
    }
    t->done_ms = fl_fleet_elapsed_ms(r->fleet);
    fl_fleet_done(r->fleet, s->index);
}

static void settle(struct slot *s, int status, const char *prefix, const char *what)
{
    s->settled = true;
    s->t->status = status;
    snprintf(s->t->error, sizeof(s->t->error), "%s%s", prefix, what);
}

static void on_reply(struct fl_client *cl, const Faultline__Envelope *reply, int status, void *arg)
{
    struct slot *s = arg;
    struct fl_oneshot_target *t = s->t;
    if (status < 0) {
        settle(s, status, "", status == -ETIMEDOUT ? "no reply in time" : fl_strerror(status));
    } else if (reply->msg_case == FAULTLINE__ENVELOPE__MSG_ERROR) {
        t->agent_code = reply->error->code;
        settle(s, -EREMOTEIO, "", reply->error->message);
    } else {
        s->settled = true;
        t->status = 0;
        t->error[0] = '\0';
        s->run->ops->reply(t, reply, s->run->ctx);
    }
    fl_client_close(cl);
}

static void on_ready(struct fl_client *cl, const Faultline__Welcome *welcome)
{
    struct slot *s = fl_client_data(cl);
    (void)welcome;
    Faultline__Envelope req = FAULTLINE__ENVELOPE__INIT;
    s->run->ops->build(s->t, &req, s->run->ctx);
    uint64_t left = fl_fleet_remaining_ms(s->run->fleet);
    uint64_t timeout = s->run->o->timeout_ms < left ? s->run->o->timeout_ms : left;
    int rc = fl_client_request(cl, &req, timeout ? timeout : 1, on_reply, s);
    if (rc < 0) {
        settle(s, rc, "cannot send: ", fl_strerror(rc));
        fl_client_close(cl);
    }
}

static void on_closed(struct fl_client *cl, int reason)
{
    struct slot *s = fl_client_data(cl);
    if (!s->settled) {
        s->t->status = reason < 0 ? reason : -ECONNABORTED;
        fl_client_explain(cl, s->t->status, s->t->error, sizeof(s->t->error));
    }
    try_over(s);
}

static const struct fl_client_ops oneshot_client_ops = {
    .ready = on_ready,
    .closed = on_closed,
};

static int start_try(struct fl_fleet *f, size_t i, void *ctx)
{
    struct slot *s = &((struct slot *)ctx)[i];
    struct run *r = s->run;
    struct fl_oneshot_target *t = s->t;
    uint64_t left = fl_fleet_remaining_ms(f);
    uint64_t timeout = r->o->timeout_ms < left ? r->o->timeout_ms : left;
    s->settled = false;
    t->status = -EINPROGRESS;
    t->agent_code = 0;
    t->attempts++;
    struct fl_client *cl;
    int rc = fl_client_connect(&r->loop, t->spec, t->host, t->port, r->key, timeout ? timeout : 1,
                               &oneshot_client_ops, s, &cl);
    if (rc < 0) {
        t->status = rc;
        snprintf(t->error, sizeof(t->error), "%s", fl_strerror(rc));
        try_over(s); /* nothing to close: decided here */
    }
    return 0;
}

static void expired(struct fl_fleet *f, size_t i, void *ctx)
{
    struct slot *s = &((struct slot *)ctx)[i];
    struct fl_oneshot_target *t = s->t;
    char deadline[32];
    fl_format_duration(s->run->o->deadline_ms, deadline, sizeof(deadline));
    t->done_ms = fl_fleet_elapsed_ms(f);
    if (t->attempts == 0) {
        t->status = -ETIME;
        snprintf(t->error, sizeof(t->error),
                 "NOT REACHED: still queued when the deadline (%s) passed; "
                 "raise --deadline",
                 deadline);
        return;
    }
    char last[sizeof(t->error)];
    snprintf(last, sizeof(last), "%s", t->error);
    t->status = -ETIME;
    snprintf(t->error, sizeof(t->error), "gave up at the deadline (%s) after %u tr%s; last: %.500s",
             deadline, t->attempts, t->attempts == 1 ? "y" : "ies", last);
}

static const struct fl_fleet_ops oneshot_fleet_ops = {.start = start_try, .expired = expired};

/* Nothing was sent to any target: each says why. Returns n, all failed. */
static int fail_all(struct fl_oneshot_target *targets, int n, int status, const char *what)
{
    for (int i = 0; i < n; i++) {
        targets[i].status = status;
        snprintf(targets[i].error, sizeof(targets[i].error), "%s: %s", what, fl_strerror(status));
    }
    return n;
}

int fl_oneshot_run(struct fl_oneshot_target *targets, int n, const struct fl_key *key,
                   const struct fl_oneshot_opts *o, const struct fl_oneshot_ops *ops, void *ctx)
{
    struct run run = {.ops = ops, .ctx = ctx, .o = o, .key = key};
    struct slot *sl = calloc(n > 0 ? (size_t)n : 1, sizeof(*sl));
    if (sl == NULL)
        return fail_all(targets, n, -ENOMEM, "nothing sent");
    int lrc = uv_loop_init(&run.loop);
    if (lrc < 0) {
        free(sl);
        return fail_all(targets, n, lrc, "nothing sent: cannot start an event loop");
    }
    for (int i = 0; i < n; i++) {
        sl[i] = (struct slot){.run = &run, .t = &targets[i], .index = (size_t)i};
        targets[i].status = -EINPROGRESS;
    }
    int frc = fl_fleet_new(&run.loop, (size_t)n, fl_fleet_window(FL_FLEET_FD_RESERVE),
                           o->deadline_ms, &oneshot_fleet_ops, sl, &run.fleet);
    if (frc < 0) {
        uv_loop_close(&run.loop);
        free(sl);
        return fail_all(targets, n, frc, "nothing sent");
    }
    fl_fleet_start(run.fleet);
    uv_run(&run.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&run.loop) != 0)
        fl_error("internal error: handles left open");
    fl_fleet_free(run.fleet);
    free(sl);
    int failed = 0;
    for (int i = 0; i < n; i++)
        if (targets[i].status != 0)
            failed++;
    return failed;
}
