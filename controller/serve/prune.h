/* Retention (issue 16): history rows and their report folders go together,
 * in the two steps store.h describes. Blocking: on uv_queue_work. */
#ifndef FL_SERVE_PRUNE_H
#define FL_SERVE_PRUNE_H

#include <stddef.h>
#include <stdint.h>

#include "controller/serve/store.h"

/* How often serve prunes after the prune at start. */
#define FL_SERVE_PRUNE_EVERY_MS (24ull * 3600 * 1000)

/* Removes the rows beyond retention and their report folders. A folder
 * outside reports_dir is never removed (a row naming one is logged and its
 * row removed all the same). 0 with *removed set, or -EIO with err. */
int fl_serve_prune(fl_store *s, const char *reports_dir, uint64_t runs_per_experiment,
                   uint64_t max_age_ms, int64_t now_ms, size_t *removed, char *err, size_t errlen);

#endif
