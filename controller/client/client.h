/* A controller's connection to one agent: resolve, connect, authenticate,
 * then requests with replies matched by id and a deadline each.
 *
 *   resolving ──► connecting/handshake ──► ready ──► closed
 *        any failure ──────────────────────────────► closed(reason)
 *
 * Lifetime as for fl_conn: once started, a client ends with ops->closed,
 * called exactly once; it is freed when that returns. Pending requests are
 * answered (reply NULL, status < 0) before closed runs. */
#ifndef FL_CONTROLLER_CLIENT_H
#define FL_CONTROLLER_CLIENT_H

#include <stdint.h>
#include <uv.h>

#include "common/key.h"
#include "faultline.pb-c.h"

struct fl_client;

struct fl_client_ops {
    void (*ready)(struct fl_client *cl, const Faultline__Welcome *welcome);
    /* reason: 0 after fl_client_close(), else why it failed; see
     * fl_client_explain(). */
    void (*closed)(struct fl_client *cl, int reason);
};

/* reply is NULL when status < 0 (-ETIMEDOUT, or the connection closed). An
 * Error reply arrives as a reply with msg_case ERROR and status 0. */
typedef void (*fl_reply_cb)(struct fl_client *cl, const Faultline__Envelope *reply, int status,
                            void *arg);

/* Resolves host, connects and authenticates, within timeout_ms in all. name
 * is how the user called the host, for messages. On success *out is the
 * client and ops->closed will be called exactly once; on error nothing was
 * allocated and no callback will run. */
int fl_client_connect(uv_loop_t *loop, const char *name, const char *host, uint16_t port,
                      const struct fl_key *key, uint64_t timeout_ms,
                      const struct fl_client_ops *ops, void *data, struct fl_client **out);

/* Sends req (its id is assigned here) once ready. cb runs exactly once, unless
 * this returns an error. */
int fl_client_request(struct fl_client *cl, Faultline__Envelope *req, uint64_t timeout_ms,
                      fl_reply_cb cb, void *arg);

void fl_client_close(struct fl_client *cl);

void *fl_client_data(const struct fl_client *cl);
const char *fl_client_name(const struct fl_client *cl);
/* "host:port" */
const char *fl_client_where(const struct fl_client *cl);

/* A sentence for the user about why a client closed, naming what to check. */
const char *fl_client_explain(const struct fl_client *cl, int reason, char *buf, size_t len);

#endif
