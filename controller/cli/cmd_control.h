/* The client side of faultline serve's control channel
 * (controller/serve/control.h): freeze, thaw, pause, resume, run-now in
 * cmd_control.c, and the history read that `faultline history --server`
 * prints with its own table code. */
#ifndef FL_CLI_CMD_CONTROL_H
#define FL_CLI_CMD_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "controller/serve/store.h"

/* For connecting and each request to serve. */
#define FL_CONTROL_CLI_TIMEOUT_MS 10000

/* History rows from serve at server ("HOST[:PORT]", port 7412 when
 * omitted), newest first, page by page: at most limit rows (0: all).
 * 0 with *rows (free with fl_store_rows_free) and *n, or an exit code after
 * saying why on stderr (as `faultline CMD: ...`). */
int fl_cli_control_history(const char *cmd, const char *server, const char *key_path,
                           uint64_t timeout_ms, const char *experiment, int64_t since_ms,
                           size_t limit, fl_store_row **rows, size_t *n);

#endif
