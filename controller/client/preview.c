/* One PreviewRequest on an open client, and the one rule for telling an
 * agent too old to preview from a refusal. */
#include "controller/client/preview.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

struct call {
    fl_preview_cb cb;
    void *arg;
};

bool fl_preview_agent_too_old(Faultline__ErrorCode code, const char *message)
{
    /* agent/session.c answers any request it does not know this way; an
     * unknown kind is "unknown fault kind: ..." with the same code */
    return code == FAULTLINE__ERROR_CODE__ERROR_UNSUPPORTED && message != NULL &&
           strncmp(message, "request not understood", 22) == 0;
}

const char *fl_preview_error_text(Faultline__ErrorCode code, const char *message)
{
    if (fl_preview_agent_too_old(code, message))
        return FL_PREVIEW_TOO_OLD;
    return message && message[0] ? message : "refused, without a reason";
}

static void on_reply(struct fl_client *cl, const Faultline__Envelope *reply, int status, void *arg)
{
    struct call c = *(struct call *)arg;
    free(arg);
    if (status < 0) {
        c.cb(cl, NULL, FAULTLINE__ERROR_CODE__ERROR_INTERNAL,
             status == -ETIMEDOUT ? "no reply in time" : fl_strerror(status), status, c.arg);
    } else if (reply->msg_case == FAULTLINE__ENVELOPE__MSG_ERROR) {
        c.cb(cl, NULL, reply->error->code,
             fl_preview_error_text(reply->error->code, reply->error->message), 0, c.arg);
    } else if (reply->msg_case == FAULTLINE__ENVELOPE__MSG_PREVIEWED && reply->previewed) {
        c.cb(cl, reply->previewed, FAULTLINE__ERROR_CODE__ERROR_INTERNAL, "", 0, c.arg);
    } else {
        c.cb(cl, NULL, FAULTLINE__ERROR_CODE__ERROR_INTERNAL, "unexpected reply to a preview",
             -EPROTO, c.arg);
    }
}

int fl_client_preview(struct fl_client *cl, const Faultline__FaultSpec *spec, uint64_t timeout_ms,
                      fl_preview_cb cb, void *arg)
{
    struct call *c = malloc(sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    c->cb = cb;
    c->arg = arg;
    Faultline__PreviewRequest pr = FAULTLINE__PREVIEW_REQUEST__INIT;
    pr.spec = (Faultline__FaultSpec *)spec; /* only read: packed by the request */
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_PREVIEW;
    env.preview = &pr;
    int rc = fl_client_request(cl, &env, timeout_ms, on_reply, c);
    if (rc < 0)
        free(c);
    return rc;
}
