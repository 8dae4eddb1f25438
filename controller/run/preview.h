/* The preview half of `faultline run --dry-run`: each chosen fault is sent
 * to its host's agent as a PreviewRequest (controller/client/preview.h), and
 * what the agents say they would do is printed, one line each, in the order
 * of the faults:
 *
 *     would send KILL to redis-server[7811] on redis1 (10.88.0.11)
 *     kill-redis on redis1 (10.88.0.11) would be refused: no process matches name 'redis'
 *
 * Nothing is applied, journaled or held on any agent. */
#ifndef FL_CONTROLLER_RUN_PREVIEW_H
#define FL_CONTROLLER_RUN_PREVIEW_H

#include <stddef.h>
#include <stdint.h>

#include "controller/client/client.h"
#include "controller/run/runrecord.h"

/* One fault on one host, and the ready client of that host's agent (NULL
 * when there is none: the line then says the agent is not connected). */
struct fl_run_preview_item {
    const struct fl_run_fault *rf;
    struct fl_client *client;
};

/* line: one line without its newline, without indentation (valid during the
 * call). done: once, after the last line; refused counts the faults an
 * agent refused (the inject would be refused too) or could not preview (no
 * reply, an agent too old to preview). */
typedef void (*fl_run_preview_line_cb)(void *arg, const char *line);
typedef void (*fl_run_preview_done_cb)(void *arg, size_t refused);

/* Sends every item's preview at once (items and what they point to must
 * live until done runs; the clients must stay open or be closed, which
 * answers the pending previews). Lines come in item order once every reply
 * is in, then done; from within this call only when no preview could be
 * sent at all (no item has a client). Returns 0, or -ENOMEM
 * with nothing sent and no callback to come. */
int fl_run_preview(const struct fl_run_preview_item *items, size_t n, uint64_t timeout_ms,
                   fl_run_preview_line_cb line, fl_run_preview_done_cb done, void *arg);

#endif
