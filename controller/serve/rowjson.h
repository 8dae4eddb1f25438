/* One history row as JSON: the object `faultline history --json` prints and
 * /api/runs serves, built in one place so the two always agree. run_json is
 * not part of it (it is the report folder's run.json). */
#ifndef FL_SERVE_ROWJSON_H
#define FL_SERVE_ROWJSON_H

#include <jansson.h>

#include "controller/serve/store.h"

/* A new object (caller decrefs), or NULL on no memory. */
json_t *fl_store_row_json(const fl_store_row *r);

#endif
