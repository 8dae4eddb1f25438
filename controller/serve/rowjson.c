/* A history row as JSON (rowjson.h). */
#include "controller/serve/rowjson.h"

static json_t *num_or_null(int64_t v)
{
    return v < 0 ? json_null() : json_integer(v);
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *fl_store_row_json(const fl_store_row *r)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    int bad = 0;
    bad |= json_object_set_new(o, "id", json_integer(r->id));
    bad |= json_object_set_new(o, "experiment", str_or_null(r->experiment));
    bad |= json_object_set_new(o, "file_hash", str_or_null(r->file_hash));
    bad |= json_object_set_new(o, "due_ms", json_integer(r->due_ms));
    bad |= json_object_set_new(o, "started_ms", num_or_null(r->started_ms ? r->started_ms : -1));
    bad |= json_object_set_new(o, "ended_ms", num_or_null(r->ended_ms ? r->ended_ms : -1));
    bad |= json_object_set_new(o, "state", str_or_null(r->state));
    bad |= json_object_set_new(o, "verdict", str_or_null(r->verdict));
    bad |= json_object_set_new(o, "reason", str_or_null(r->reason));
    bad |= json_object_set_new(o, "recovery_ms", num_or_null(r->recovery_ms));
    bad |= json_object_set_new(o, "resolution_ms", num_or_null(r->resolution_ms));
    bad |= json_object_set_new(o, "rpo_ms", num_or_null(r->rpo_ms));
    bad |= json_object_set_new(o, "flags", str_or_null(r->flags));
    bad |= json_object_set_new(o, "report_folder", str_or_null(r->report_folder));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}
