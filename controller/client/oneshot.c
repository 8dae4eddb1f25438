#include "controller/client/oneshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/addr.h"
#include "common/log.h"
#include "controller/client/client.h"

struct run {
    const struct fl_oneshot_ops *ops;
    void *ctx;
    uint64_t timeout_ms;
};

struct slot {
    struct run *run;
    struct fl_oneshot_target *t;
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

static void on_reply(struct fl_client *cl, const Faultline__Envelope *reply, int status, void *arg)
{
    struct slot *s = arg;
    struct fl_oneshot_target *t = s->t;
    if (status < 0) {
        t->status = status;
        snprintf(t->error, sizeof(t->error), "%s",
                 status == -ETIMEDOUT ? "no reply in time" : fl_strerror(status));
    } else if (reply->msg_case == FAULTLINE__ENVELOPE__MSG_ERROR) {
        t->status = -EREMOTEIO;
        t->agent_code = reply->error->code;
        snprintf(t->error, sizeof(t->error), "%s", reply->error->message);
    } else {
        t->status = 0;
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
    int rc = fl_client_request(cl, &req, s->run->timeout_ms, on_reply, s);
    if (rc < 0) {
        s->t->status = rc;
        snprintf(s->t->error, sizeof(s->t->error), "cannot send: %s", fl_strerror(rc));
        fl_client_close(cl);
    }
}

static void on_closed(struct fl_client *cl, int reason)
{
    struct slot *s = fl_client_data(cl);
    if (reason < 0 && s->t->error[0] == '\0') {
        s->t->status = reason;
        fl_client_explain(cl, reason, s->t->error, sizeof(s->t->error));
    }
}

static const struct fl_client_ops oneshot_client_ops = {
    .ready = on_ready,
    .closed = on_closed,
};

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
                   uint64_t timeout_ms, const struct fl_oneshot_ops *ops, void *ctx)
{
    struct run run = {ops, ctx, timeout_ms};
    struct slot *sl = calloc((size_t)n, sizeof(*sl));
    if (sl == NULL)
        return fail_all(targets, n, -ENOMEM, "nothing sent");
    uv_loop_t loop;
    int lrc = uv_loop_init(&loop);
    if (lrc < 0) {
        free(sl);
        return fail_all(targets, n, lrc, "nothing sent: cannot start an event loop");
    }
    for (int i = 0; i < n; i++) {
        sl[i].run = &run;
        sl[i].t = &targets[i];
        targets[i].status = -EINPROGRESS;
        struct fl_client *cl;
        int rc = fl_client_connect(&loop, targets[i].spec, targets[i].host, targets[i].port, key,
                                   timeout_ms, &oneshot_client_ops, &sl[i], &cl);
        if (rc < 0) {
            targets[i].status = rc;
            snprintf(targets[i].error, sizeof(targets[i].error), "%s", fl_strerror(rc));
        }
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        fl_error("internal error: handles left open");
    free(sl);
    int failed = 0;
    for (int i = 0; i < n; i++)
        if (targets[i].status != 0)
            failed++;
    return failed;
}
