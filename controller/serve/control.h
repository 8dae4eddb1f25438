/* The control channel of `faultline serve` (listen_control, issue 16):
 * faultline freeze / thaw / pause / resume / run-now and history --server.
 *
 * The same wire as an agent's (common/conn.h): PSK handshake under serve's
 * key, sealed frames, Envelopes. serve plays the agent's part: it proves
 * itself first and sends a Welcome, so a client with another key learns it
 * at once, and a peer that has not proved it holds the key gets nothing but
 * a closed connection. Never plain HTTP.
 *
 * One request per connection, one reply (a ControlReply, a History, or an
 * Error naming the problem). Everything runs on the scheduler's loop; store
 * calls go through uv_queue_work. Writes of the freeze and of pauses go to
 * the store one at a time, in the order the loop made them, so the stored
 * state is always the latest one (a freeze and a thaw a moment apart never
 * land in the other order).
 *
 * The scheduler owns the state (what is frozen, paused, running); this file
 * only carries requests to it (fl_control_ops) and stores what it decided:
 *
 *   FREEZE: ops->freeze (in memory at once: runs aborted, nothing starts)
 *           -> store the freeze -> ControlReply
 *   THAW:   ops->thaw -> store -> ControlReply
 *   PAUSE/RESUME: ops->pause -> store -> ControlReply
 *   RUN_NOW: ops->run_now, which answers later (fl_control_answer_run)
 *   HistoryRequest: store query -> History (pages, under the frame size)
 */
#ifndef FL_SERVE_CONTROL_H
#define FL_SERVE_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/key.h"
#include "controller/serve/store.h"

/* Control connections open at once (handshakes included); past it the
 * oldest unauthenticated one is closed, or the new one if none is. */
#define FL_CONTROL_MAX_CONNS 16
/* A connection must complete the handshake in this time ... */
#define FL_CONTROL_HANDSHAKE_MS 5000
/* ... and send its request, and be answered, within this one. */
#define FL_CONTROL_IDLE_MS 60000
/* History rows per reply, at most (and always under the frame size). */
#define FL_CONTROL_HISTORY_PAGE_ROWS 1000
/* Freeze reasons and `who` are cut to this many bytes (said in the reply). */
#define FL_CONTROL_REASON_MAX 200

struct fl_control;
struct fl_control_req; /* one request waiting for its answer */

/* The freeze as the scheduler holds it. */
struct fl_control_freeze {
    bool frozen;
    char reason[FL_CONTROL_REASON_MAX + 1];
    char who[FL_CONTROL_REASON_MAX + 1];
    int64_t since_ms;
};

/* Called on the loop. Each returns 0 (freeze, thaw: 1 when it already was
 * so), or a negative errno with msg (a
 * sentence) for the Error reply: -ENOENT no such experiment, -EBUSY
 * running / hosts busy / no slot, -EPERM frozen, others internal. */
struct fl_control_ops {
    /* Freeze now: abort every run, start nothing. *aborted: runs aborted;
     * *st: the freeze after (an earlier freeze's reason stays). */
    int (*freeze)(void *ctx, const char *reason, const char *who, unsigned *aborted,
                  struct fl_control_freeze *st, char *msg, size_t len);
    int (*thaw)(void *ctx, struct fl_control_freeze *st, char *msg, size_t len);
    /* *changed false when it already was so. */
    int (*pause)(void *ctx, const char *experiment, bool paused, bool *changed, char *msg,
                 size_t len);
    /* On 0 the scheduler owns q and answers with fl_control_answer_run. */
    int (*run_now)(void *ctx, const char *experiment, struct fl_control_req *q, char *msg,
                   size_t len);
};

/* Listens on listen ("ADDRESS:PORT"). 0, or a negative errno with err. */
int fl_control_start(uv_loop_t *loop, const char *listen, const struct fl_key *key, fl_store *store,
                     const struct fl_control_ops *ops, void *ctx, struct fl_control **out,
                     char *err, size_t errlen);
/* Stops listening and closes every connection; what is queued finishes on
 * the loop, then it frees itself. NULL is fine. */
void fl_control_stop(struct fl_control *c);

/* The answer to a RUN_NOW: run_id > 0 and msg, or run_id 0 and an Error
 * with code (a negative errno as for the ops) and msg. Frees q. */
void fl_control_answer_run(struct fl_control_req *q, int64_t run_id, int code, const char *msg);

#endif
