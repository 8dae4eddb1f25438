/* The SQLite back end of the history store (see store.h).
 *
 * WAL mode (readers never block the writer), busy_timeout, and
 * synchronous=FULL: a history row is the proof that a due time ran; with
 * NORMAL a power cut may lose the last committed claims and a restarted
 * server would run those due times again. Rows are few (one per due time),
 * so the fsync per commit costs nothing that matters. */
#include "controller/serve/store.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fl_store {
    sqlite3 *db;
    char *path;
    pthread_mutex_t mu;
    bool in_prune;
    char err[512];
};

static void set_err(fl_store *s, const char *op, int rc)
{
    const char *hint = "";
    if (rc == SQLITE_FULL)
        hint = " (disk full: free space; the database stays usable)";
    snprintf(s->err, sizeof s->err, "history store %s: %s: %s%s", s->path, op,
             s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc), hint);
}

const char *fl_store_error(const fl_store *s)
{
    return s->err;
}

static char *xstrdup(const char *p)
{
    return p ? strdup(p) : NULL;
}

static int exec(fl_store *s, const char *op, const char *sql)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        set_err(s, op, rc);
    return rc;
}

static const char *const MIGRATIONS[FL_STORE_SCHEMA_VERSION] = {
    /* 1 */
    "CREATE TABLE runs ("
    " id INTEGER PRIMARY KEY,"
    " experiment TEXT NOT NULL, file_hash TEXT NOT NULL, due_ms INTEGER NOT NULL,"
    " started_ms INTEGER NOT NULL DEFAULT 0, ended_ms INTEGER NOT NULL DEFAULT 0,"
    " state TEXT NOT NULL CHECK (state IN ('running','finished','skipped')),"
    " verdict TEXT, reason TEXT,"
    " recovery_ms INTEGER NOT NULL DEFAULT -1, resolution_ms INTEGER NOT NULL DEFAULT -1,"
    " rpo_ms INTEGER NOT NULL DEFAULT -1, flags TEXT, report_folder TEXT, run_json TEXT,"
    " UNIQUE (experiment, due_ms));"
    "CREATE INDEX runs_due ON runs (due_ms);"
    "CREATE INDEX runs_state ON runs (state);"
    "CREATE TABLE freeze (id INTEGER PRIMARY KEY CHECK (id = 1), frozen INTEGER NOT NULL,"
    " reason TEXT, who TEXT, since_ms INTEGER NOT NULL);"
    "CREATE TABLE paused (experiment TEXT PRIMARY KEY);",
};

static int migrate(fl_store *s)
{
    if (exec(s, "migrate: begin", "BEGIN IMMEDIATE") != SQLITE_OK)
        return -1;
    if (exec(s, "migrate: schema_version table",
             "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)") != SQLITE_OK)
        goto fail;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "SELECT max(version) FROM schema_version", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        set_err(s, "migrate: read version", rc);
        goto fail;
    }
    int version = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version > FL_STORE_SCHEMA_VERSION) {
        snprintf(s->err, sizeof s->err,
                 "history store %s: schema version %d is newer than this faultline's (%d): "
                 "written by a newer faultline; refusing to use or alter it",
                 s->path, version, FL_STORE_SCHEMA_VERSION);
        goto fail;
    }
    for (int v = version + 1; v <= FL_STORE_SCHEMA_VERSION; v++) {
        char op[64];
        snprintf(op, sizeof op, "migrate to schema version %d", v);
        if (exec(s, op, MIGRATIONS[v - 1]) != SQLITE_OK)
            goto fail;
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT INTO schema_version (version) VALUES (%d)", v);
        if (exec(s, op, sql) != SQLITE_OK)
            goto fail;
    }
    if (exec(s, "migrate: commit", "COMMIT") != SQLITE_OK)
        goto fail;
    return 0;
fail:
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

fl_store *fl_store_open(const char *url, char **err)
{
    *err = NULL;
    const char *scheme = "sqlite:";
    if (url == NULL || strncmp(url, scheme, strlen(scheme)) != 0) {
        if (asprintf(
                err,
                "history store URL '%s': unknown scheme (supported: sqlite:/path/to/history.db)",
                url ? url : "(null)") < 0)
            *err = NULL;
        return NULL;
    }
    const char *path = url + strlen(scheme);
    if (*path == '\0') {
        *err = strdup(
            "history store URL 'sqlite:': no path (example: sqlite:/var/lib/faultline/history.db)");
        return NULL;
    }
    fl_store *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->path = strdup(path);
    pthread_mutex_init(&s->mu, NULL);
    int rc = sqlite3_open_v2(
        path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK) {
        set_err(s, "open", rc);
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 0);
    sqlite3_busy_timeout(s->db, FL_STORE_BUSY_TIMEOUT_MS);
    /* A non-SQLite file fails here (SQLITE_NOTADB): say so plainly. */
    rc = sqlite3_exec(s->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT) {
        snprintf(s->err, sizeof s->err,
                 "history store %s: not a faultline history database (not SQLite, or corrupt): %s",
                 s->path, sqlite3_errmsg(s->db));
        goto fail;
    }
    if (rc != SQLITE_OK) {
        set_err(s, "open: journal_mode=WAL", rc);
        goto fail;
    }
    if (exec(s, "open: synchronous=FULL", "PRAGMA synchronous=FULL") != SQLITE_OK)
        goto fail;
    if (exec(s, "open: foreign_keys", "PRAGMA foreign_keys=ON") != SQLITE_OK)
        goto fail;
    if (migrate(s) != 0)
        goto fail;
    return s;
fail:
    *err = strdup(s->err);
    fl_store_close(s);
    return NULL;
}

void fl_store_close(fl_store *s)
{
    if (s == NULL)
        return;
    if (s->in_prune)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close_v2(s->db);
    pthread_mutex_destroy(&s->mu);
    free(s->path);
    free(s);
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

/* Insert one row for a due time; the UNIQUE key makes a second one ALREADY. */
static fl_store_rc insert_due(fl_store *s, const char *op, const char *experiment,
                              const char *file_hash, int64_t due_ms, int64_t now_ms,
                              const char *state, const char *reason, const char *flags,
                              int64_t *id_out)
{
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = NULL;
    fl_store_rc ret = FL_STORE_ERR;
    int rc =
        sqlite3_prepare_v2(s->db,
                           "INSERT INTO runs (experiment, file_hash, due_ms, started_ms, ended_ms,"
                           " state, reason, flags) VALUES (?,?,?,?,?,?,?,?)",
                           -1, &st, NULL);
    if (rc != SQLITE_OK) {
        set_err(s, op, rc);
        goto out;
    }
    bool skipped = strcmp(state, "skipped") == 0;
    bind_text(st, 1, experiment);
    bind_text(st, 2, file_hash ? file_hash : "");
    sqlite3_bind_int64(st, 3, due_ms);
    sqlite3_bind_int64(st, 4, skipped ? 0 : now_ms);
    sqlite3_bind_int64(st, 5, skipped ? now_ms : 0);
    bind_text(st, 6, state);
    bind_text(st, 7, reason);
    bind_text(st, 8, flags);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        if (id_out)
            *id_out = sqlite3_last_insert_rowid(s->db);
        ret = FL_STORE_OK;
    } else if (rc == SQLITE_CONSTRAINT) {
        snprintf(s->err, sizeof s->err, "history store %s: %s: %s due at %lld already claimed",
                 s->path, op, experiment, (long long)due_ms);
        ret = FL_STORE_ALREADY;
    } else {
        set_err(s, op, rc);
    }
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    return ret;
}

fl_store_rc fl_store_claim(fl_store *s, const char *experiment, const char *file_hash,
                           int64_t due_ms, int64_t now_ms, int64_t *id_out)
{
    return fl_store_claim_flags(s, experiment, file_hash, due_ms, now_ms, NULL, id_out);
}

fl_store_rc fl_store_claim_flags(fl_store *s, const char *experiment, const char *file_hash,
                                 int64_t due_ms, int64_t now_ms, const char *flags, int64_t *id_out)
{
    return insert_due(s, "claim", experiment, file_hash, due_ms, now_ms, "running", NULL, flags,
                      id_out);
}

fl_store_rc fl_store_skip(fl_store *s, const char *experiment, const char *file_hash,
                          int64_t due_ms, int64_t now_ms, const char *reason)
{
    return insert_due(s, "record skip", experiment, file_hash, due_ms, now_ms, "skipped", reason,
                      NULL, NULL);
}

fl_store_rc fl_store_finish(fl_store *s, int64_t id, const fl_store_row *r)
{
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = NULL;
    fl_store_rc ret = FL_STORE_ERR;
    int rc =
        sqlite3_prepare_v2(s->db,
                           "UPDATE runs SET state='finished', ended_ms=?, verdict=?, reason=?,"
                           " recovery_ms=?, resolution_ms=?, rpo_ms=?, flags=?, report_folder=?,"
                           " run_json=? WHERE id=? AND state='running'",
                           -1, &st, NULL);
    if (rc != SQLITE_OK) {
        set_err(s, "record run", rc);
        goto out;
    }
    sqlite3_bind_int64(st, 1, r->ended_ms);
    bind_text(st, 2, r->verdict);
    bind_text(st, 3, r->reason);
    sqlite3_bind_int64(st, 4, r->recovery_ms);
    sqlite3_bind_int64(st, 5, r->resolution_ms);
    sqlite3_bind_int64(st, 6, r->rpo_ms);
    bind_text(st, 7, r->flags);
    bind_text(st, 8, r->report_folder);
    bind_text(st, 9, r->run_json);
    sqlite3_bind_int64(st, 10, id);
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
        set_err(s, "record run", rc);
        goto out;
    }
    if (sqlite3_changes(s->db) != 1) {
        snprintf(s->err, sizeof s->err, "history store %s: record run: no running run with id %lld",
                 s->path, (long long)id);
        goto out;
    }
    ret = FL_STORE_OK;
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    return ret;
}

#define ROW_COLS                                                                                   \
    "id, experiment, file_hash, due_ms, started_ms, ended_ms, state, verdict, reason,"             \
    " recovery_ms, resolution_ms, rpo_ms, flags, report_folder, run_json"

static char *col_text(sqlite3_stmt *st, int i)
{
    return xstrdup((const char *)sqlite3_column_text(st, i));
}

static void read_row(sqlite3_stmt *st, fl_store_row *r)
{
    r->id = sqlite3_column_int64(st, 0);
    r->experiment = col_text(st, 1);
    r->file_hash = col_text(st, 2);
    r->due_ms = sqlite3_column_int64(st, 3);
    r->started_ms = sqlite3_column_int64(st, 4);
    r->ended_ms = sqlite3_column_int64(st, 5);
    r->state = col_text(st, 6);
    r->verdict = col_text(st, 7);
    r->reason = col_text(st, 8);
    r->recovery_ms = sqlite3_column_int64(st, 9);
    r->resolution_ms = sqlite3_column_int64(st, 10);
    r->rpo_ms = sqlite3_column_int64(st, 11);
    r->flags = col_text(st, 12);
    r->report_folder = col_text(st, 13);
    r->run_json = col_text(st, 14);
}

void fl_store_row_free(fl_store_row *r)
{
    free(r->experiment);
    free(r->file_hash);
    free(r->state);
    free(r->verdict);
    free(r->reason);
    free(r->flags);
    free(r->report_folder);
    free(r->run_json);
}

void fl_store_rows_free(fl_store_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fl_store_row_free(&rows[i]);
    free(rows);
}

/* The history listing after its experiment condition. Two statements, not
 * one "(?1 IS NULL OR experiment=?1)": SQLite cannot use the (experiment,
 * due_ms) index for that OR, and scanned every row of every experiment
 * (70 ms per experiment at 100 000 rows; serve seeds its metrics with one
 * query per experiment at start, the UI's index page too). */
#define QUERY_TAIL "due_ms >= ?2 ORDER BY due_ms DESC, id DESC LIMIT ?3 OFFSET ?4"

/* Steps a prepared SELECT of ROW_COLS into a malloc'd array. Lock held. */
static fl_store_rc collect(fl_store *s, const char *op, sqlite3_stmt *st, fl_store_row **rows,
                           size_t *n)
{
    size_t cap = 0;
    *rows = NULL;
    *n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            fl_store_row *p = realloc(*rows, cap * sizeof *p);
            if (p == NULL) {
                snprintf(s->err, sizeof s->err, "history store %s: %s: out of memory", s->path, op);
                fl_store_rows_free(*rows, *n);
                *rows = NULL;
                *n = 0;
                return FL_STORE_ERR;
            }
            *rows = p;
        }
        read_row(st, &(*rows)[(*n)++]);
    }
    if (rc != SQLITE_DONE) {
        set_err(s, op, rc);
        fl_store_rows_free(*rows, *n);
        *rows = NULL;
        *n = 0;
        return FL_STORE_ERR;
    }
    return FL_STORE_OK;
}

fl_store_rc fl_store_interrupted(fl_store *s, fl_store_row **rows, size_t *n)
{
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = NULL;
    fl_store_rc ret = FL_STORE_ERR;
    int rc = sqlite3_prepare_v2(
        s->db, "SELECT " ROW_COLS " FROM runs WHERE state='running' ORDER BY due_ms", -1, &st,
        NULL);
    if (rc != SQLITE_OK)
        set_err(s, "find interrupted runs", rc);
    else
        ret = collect(s, "find interrupted runs", st, rows, n);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    return ret;
}

/* ROW_COLS with NULL for run_json: the listings that never show it. */
#define ROW_COLS_BRIEF                                                                             \
    "id, experiment, file_hash, due_ms, started_ms, ended_ms, state, verdict, reason,"             \
    " recovery_ms, resolution_ms, rpo_ms, flags, report_folder, NULL"

/* The history listing: sql is one of the four statements below (with or
 * without run_json, with or without an experiment), bound the same way. */
static fl_store_rc query(fl_store *s, const char *sql, const char *experiment, int64_t since_ms,
                         size_t limit, size_t offset, fl_store_row **rows, size_t *n)
{
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = NULL;
    fl_store_rc ret = FL_STORE_ERR;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        set_err(s, "query history", rc);
    } else {
        bind_text(st, 1, experiment);
        sqlite3_bind_int64(st, 2, since_ms);
        sqlite3_bind_int64(st, 3, limit ? (int64_t)limit : -1);
        sqlite3_bind_int64(st, 4, (int64_t)offset);
        ret = collect(s, "query history", st, rows, n);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    return ret;
}

fl_store_rc fl_store_query(fl_store *s, const char *experiment, int64_t since_ms, size_t limit,
                           size_t offset, fl_store_row **rows, size_t *n)
{
    return query(s,
                 experiment != NULL
                     ? "SELECT " ROW_COLS " FROM runs WHERE experiment=?1 AND " QUERY_TAIL
                     : "SELECT " ROW_COLS " FROM runs WHERE ?1 IS NULL AND " QUERY_TAIL,
                 experiment, since_ms, limit, offset, rows, n);
}

fl_store_rc fl_store_query_brief(fl_store *s, const char *experiment, int64_t since_ms,
                                 size_t limit, size_t offset, fl_store_row **rows, size_t *n)
{
    return query(s,
                 experiment != NULL
                     ? "SELECT " ROW_COLS_BRIEF " FROM runs WHERE experiment=?1 AND " QUERY_TAIL
                     : "SELECT " ROW_COLS_BRIEF " FROM runs WHERE ?1 IS NULL AND " QUERY_TAIL,
                 experiment, since_ms, limit, offset, rows, n);
}

fl_store_rc fl_store_last_scheduled_due(fl_store *s, const char *experiment, int64_t *due_ms,
                                        bool *found)
{
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = NULL;
    fl_store_rc ret = FL_STORE_ERR;
    *found = false;
    /* flags is a comma-separated list: "manual", "regressed,manual" */
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT max(due_ms) FROM runs WHERE experiment=?1 AND"
                                " (flags IS NULL OR ',' || flags || ',' NOT LIKE '%,manual,%')",
                                -1, &st, NULL);
    if (rc != SQLITE_OK) {
        set_err(s, "find the last scheduled row", rc);
        goto out;
    }
    bind_text(st, 1, experiment);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        set_err(s, "find the last scheduled row", rc);
        goto out;
    }
    if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
        *due_ms = sqlite3_column_int64(st, 0);
        *found = true;
    }
    ret = FL_STORE_OK;
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    return ret;
}

fl_store_rc fl_store_get_run(fl_store *s, int64_t id, fl_store_row *row, bool *found)
{
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = NULL;
    fl_store_row *rows = NULL;
    size_t n = 0;
    fl_store_rc ret = FL_STORE_ERR;
    *found = false;
    int rc =
        sqlite3_prepare_v2(s->db, "SELECT " ROW_COLS_BRIEF " FROM runs WHERE id=?", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        set_err(s, "read a run", rc);
    } else {
        sqlite3_bind_int64(st, 1, id);
        ret = collect(s, "read a run", st, &rows, &n);
        if (ret == FL_STORE_OK && n == 1) {
            *row = rows[0];
            *found = true;
            free(rows);
        } else {
            fl_store_rows_free(rows, n);
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    return ret;
}

fl_store_rc fl_store_recent_recoveries(fl_store *s, const char *experiment, size_t window,
                                       int64_t *out, size_t *n)
{
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = NULL;
    fl_store_rc ret = FL_STORE_ERR;
    *n = 0;
    int rc =
        sqlite3_prepare_v2(s->db,
                           "SELECT recovery_ms FROM runs WHERE experiment=? AND state='finished'"
                           " AND verdict LIKE 'PASS%' AND recovery_ms >= 0"
                           " ORDER BY due_ms DESC LIMIT ?",
                           -1, &st, NULL);
    if (rc != SQLITE_OK) {
        set_err(s, "read recovery baseline", rc);
        goto out;
    }
    bind_text(st, 1, experiment);
    sqlite3_bind_int64(st, 2, (int64_t)window);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < window)
        out[(*n)++] = sqlite3_column_int64(st, 0);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        set_err(s, "read recovery baseline", rc);
        goto out;
    }
    ret = FL_STORE_OK;
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    return ret;
}

void fl_store_folders_free(char **folders, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(folders[i]);
    free(folders);
}

/* The rows a prune removes: beyond the newest N of their experiment, or
 * older than the cutoff. Never a running row (its run is not over). */
#define PRUNE_WHERE                                                                                \
    " WHERE state != 'running' AND (due_ms < ?1 OR id IN (SELECT id FROM (SELECT id,"              \
    " row_number() OVER (PARTITION BY experiment ORDER BY due_ms DESC) AS rn FROM runs)"           \
    " WHERE rn > ?2))"

fl_store_rc fl_store_prune_begin(fl_store *s, int64_t now_ms, int64_t runs_per_experiment,
                                 int64_t max_age_ms, char ***folders, size_t *n)
{
    pthread_mutex_lock(&s->mu);
    *folders = NULL;
    *n = 0;
    size_t cap = 0;
    sqlite3_stmt *sel = NULL, *del = NULL;
    int64_t cutoff = max_age_ms > 0 ? now_ms - max_age_ms : INT64_MIN;
    int64_t keep = runs_per_experiment > 0 ? runs_per_experiment : INT64_MAX;
    if (s->in_prune) {
        snprintf(s->err, sizeof s->err, "history store %s: prune: a prune is already open",
                 s->path);
        pthread_mutex_unlock(&s->mu);
        return FL_STORE_ERR;
    }
    int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        set_err(s, "prune: begin", rc);
        pthread_mutex_unlock(&s->mu);
        return FL_STORE_ERR;
    }
    rc = sqlite3_prepare_v2(s->db, "SELECT report_folder FROM runs" PRUNE_WHERE, -1, &sel, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    sqlite3_bind_int64(sel, 1, cutoff);
    sqlite3_bind_int64(sel, 2, keep);
    while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
        const char *f = (const char *)sqlite3_column_text(sel, 0);
        if (f == NULL)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            char **p = realloc(*folders, cap * sizeof *p);
            if (p == NULL) {
                rc = SQLITE_NOMEM;
                goto fail;
            }
            *folders = p;
        }
        (*folders)[(*n)++] = strdup(f);
    }
    if (rc != SQLITE_DONE)
        goto fail;
    rc = sqlite3_prepare_v2(s->db, "DELETE FROM runs" PRUNE_WHERE, -1, &del, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    sqlite3_bind_int64(del, 1, cutoff);
    sqlite3_bind_int64(del, 2, keep);
    rc = sqlite3_step(del);
    if (rc != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(sel);
    sqlite3_finalize(del);
    s->in_prune = true;
    /* The lock stays held until fl_store_prune_end: the transaction is ours. */
    return FL_STORE_OK;
fail:
    set_err(s, "prune", rc);
    sqlite3_finalize(sel);
    sqlite3_finalize(del);
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    fl_store_folders_free(*folders, *n);
    *folders = NULL;
    *n = 0;
    pthread_mutex_unlock(&s->mu);
    return FL_STORE_ERR;
}

fl_store_rc fl_store_prune_end(fl_store *s, bool commit)
{
    /* Called by the thread that holds the lock since fl_store_prune_begin. */
    if (!s->in_prune) {
        snprintf(s->err, sizeof s->err, "history store %s: prune: no prune is open", s->path);
        return FL_STORE_ERR;
    }
    s->in_prune = false;
    fl_store_rc ret = FL_STORE_OK;
    int rc = sqlite3_exec(s->db, commit ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        set_err(s, commit ? "prune: commit" : "prune: rollback", rc);
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        ret = FL_STORE_ERR;
    }
    pthread_mutex_unlock(&s->mu);
    return ret;
}

fl_store_rc fl_store_set_frozen(fl_store *s, bool frozen, const char *reason, const char *who,
                                int64_t now_ms)
{
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = NULL;
    fl_store_rc ret = FL_STORE_ERR;
    int rc = sqlite3_prepare_v2(s->db,
                                "INSERT OR REPLACE INTO freeze (id, frozen, reason, who, since_ms)"
                                " VALUES (1,?,?,?,?)",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int(st, 1, frozen);
        bind_text(st, 2, reason);
        bind_text(st, 3, who);
        sqlite3_bind_int64(st, 4, now_ms);
        rc = sqlite3_step(st);
    }
    if (rc == SQLITE_DONE)
        ret = FL_STORE_OK;
    else
        set_err(s, "set freeze", rc);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    return ret;
}

fl_store_rc fl_store_get_frozen(fl_store *s, bool *frozen, char **reason, char **who,
                                int64_t *since_ms)
{
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = NULL;
    fl_store_rc ret = FL_STORE_ERR;
    *frozen = false;
    *reason = *who = NULL;
    *since_ms = 0;
    int rc = sqlite3_prepare_v2(
        s->db, "SELECT frozen, reason, who, since_ms FROM freeze WHERE id=1", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *frozen = sqlite3_column_int(st, 0) != 0;
        *reason = col_text(st, 1);
        *who = col_text(st, 2);
        *since_ms = sqlite3_column_int64(st, 3);
        ret = FL_STORE_OK;
    } else if (rc == SQLITE_DONE) {
        ret = FL_STORE_OK;
    } else {
        set_err(s, "read freeze", rc);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    return ret;
}

fl_store_rc fl_store_set_paused(fl_store *s, const char *experiment, bool paused)
{
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = NULL;
    fl_store_rc ret = FL_STORE_ERR;
    int rc = sqlite3_prepare_v2(s->db,
                                paused ? "INSERT OR IGNORE INTO paused (experiment) VALUES (?)"
                                       : "DELETE FROM paused WHERE experiment=?",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        bind_text(st, 1, experiment);
        rc = sqlite3_step(st);
    }
    if (rc == SQLITE_DONE)
        ret = FL_STORE_OK;
    else
        set_err(s, "set paused", rc);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    return ret;
}

fl_store_rc fl_store_is_paused(fl_store *s, const char *experiment, bool *paused)
{
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = NULL;
    fl_store_rc ret = FL_STORE_ERR;
    *paused = false;
    int rc = sqlite3_prepare_v2(s->db, "SELECT 1 FROM paused WHERE experiment=?", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        bind_text(st, 1, experiment);
        rc = sqlite3_step(st);
    }
    if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        *paused = rc == SQLITE_ROW;
        ret = FL_STORE_OK;
    } else {
        set_err(s, "read paused", rc);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    return ret;
}
