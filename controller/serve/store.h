/* The history store of `faultline serve` (issue 16): one narrow interface,
 * back ends chosen by URL scheme (sqlite: now; postgresql: later).
 *
 * Every due time of an experiment ends as exactly one row: UNIQUE
 * (experiment, due_ms). fl_store_claim inserts that row atomically; a second
 * claim, from this process or another, or after a crash and restart, gets
 * FL_STORE_ALREADY. A row left `running` by a killed server is listed by
 * fl_store_interrupted so the daemon records it ABORTED.
 *
 * Threads: every call blocks on disk I/O. The daemon calls the store from a
 * thread of its own or uv_queue_work, never on the event loop. A handle is
 * one connection guarded by a mutex: any thread may use it, one call at a
 * time; a second process opening the same file is safe too (SQLite locks,
 * busy_timeout waits).
 *
 * Errors: every failing call returns FL_STORE_ERR and leaves a message
 * naming the operation and the database path in fl_store_error(). */
#ifndef FL_SERVE_STORE_H
#define FL_SERVE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fl_store fl_store;

typedef enum { FL_STORE_OK = 0, FL_STORE_ALREADY = 1, FL_STORE_ERR = -1 } fl_store_rc;

/* The schema version this build writes; a newer database is refused. */
#define FL_STORE_SCHEMA_VERSION 1
/* busy_timeout: how long a call waits for another writer's lock. */
#define FL_STORE_BUSY_TIMEOUT_MS 5000

typedef struct {
    int64_t id;
    char *experiment;
    char *file_hash;                      /* sha256 hex of the experiment file */
    int64_t due_ms, started_ms, ended_ms; /* unix ms; 0 = not yet */
    char *state;                          /* running | finished | skipped */
    char *verdict; /* PASS | FAIL | ABORTED | PASS (no impact); NULL if none */
    char *reason;  /* skip reason, abort reason; NULL if none */
    int64_t recovery_ms, resolution_ms, rpo_ms; /* -1 = not measured */
    char *flags;                                /* comma-separated: regressed,... ; NULL if none */
    char *report_folder;                        /* NULL if none */
    char *run_json;                             /* the whole run.json; NULL if none */
} fl_store_row;

void fl_store_row_free(fl_store_row *row);
void fl_store_rows_free(fl_store_row *rows, size_t n);

/* Opens (creating if absent) and migrates. url: "sqlite:/path/history.db".
 * Unknown schemes, non-SQLite files and databases from a newer faultline are
 * refused: NULL, with *err (malloc'd, caller frees) saying why. */
fl_store *fl_store_open(const char *url, char **err);
void fl_store_close(fl_store *s);
const char *fl_store_error(const fl_store *s);

/* Claims a due time: inserts a `running` row (started_ms = now_ms).
 * FL_STORE_ALREADY if a row for (experiment, due_ms) exists. *id_out set. */
fl_store_rc fl_store_claim(fl_store *s, const char *experiment, const char *file_hash,
                           int64_t due_ms, int64_t now_ms, int64_t *id_out);
/* The same with the row's flags set from the start ("manual" for a run-now),
 * so that a run the server died in keeps them (fl_store_last_scheduled_due
 * must not take an interrupted run-now for a scheduled slot). */
fl_store_rc fl_store_claim_flags(fl_store *s, const char *experiment, const char *file_hash,
                                 int64_t due_ms, int64_t now_ms, const char *flags,
                                 int64_t *id_out);
/* Records a due time that did not run: one `skipped` row (FL_STORE_ALREADY
 * if the due time already has a row). */
fl_store_rc fl_store_skip(fl_store *s, const char *experiment, const char *file_hash,
                          int64_t due_ms, int64_t now_ms, const char *reason);
/* Ends a claimed run: state finished; the fields of `r` from verdict on. */
fl_store_rc fl_store_finish(fl_store *s, int64_t id, const fl_store_row *r);

/* Rows still `running` (the server died during them), oldest first. */
fl_store_rc fl_store_interrupted(fl_store *s, fl_store_row **rows, size_t *n);

/* History, newest due time first. experiment NULL = all; since_ms 0 = all. */
fl_store_rc fl_store_query(fl_store *s, const char *experiment, int64_t since_ms, size_t limit,
                           size_t offset, fl_store_row **rows, size_t *n);
/* fl_store_query without run_json (NULL in every row): for listings (the
 * history table, /api/runs, the UI) that never show it. */
fl_store_rc fl_store_query_brief(fl_store *s, const char *experiment, int64_t since_ms,
                                 size_t limit, size_t offset, fl_store_row **rows, size_t *n);
/* One row by id, without run_json; *found false (and FL_STORE_OK) when no
 * row has that id. The caller frees it with fl_store_row_free. */
fl_store_rc fl_store_get_run(fl_store *s, int64_t id, fl_store_row *row, bool *found);
/* The newest due time of a row that a schedule made (a run or a skip): rows
 * whose flags say `manual` (faultline run-now) are not scheduled slots.
 * *found false (and FL_STORE_OK) when there is none. */
fl_store_rc fl_store_last_scheduled_due(fl_store *s, const char *experiment, int64_t *due_ms,
                                        bool *found);
/* Recoveries of the last `window` PASS runs with a measured recovery, newest
 * first (the regression baseline's input). out has room for window. */
fl_store_rc fl_store_recent_recoveries(fl_store *s, const char *experiment, size_t window,
                                       int64_t *out, size_t *n);

/* Prune: removes rows beyond the newest runs_per_experiment of each
 * experiment and rows whose due time is older than now_ms - max_age_ms
 * (0 = no such limit). Two steps, so rows and report folders cannot drift:
 * fl_store_prune_begin opens a transaction, deletes the rows and returns
 * their report folders; the caller removes the folders, then calls
 * fl_store_prune_end(commit=true). A crash before the commit rolls the rows
 * back: the next prune lists them again (folders already gone are fine to
 * remove twice). The rows are never gone while their folders stay. */
fl_store_rc fl_store_prune_begin(fl_store *s, int64_t now_ms, int64_t runs_per_experiment,
                                 int64_t max_age_ms, char ***folders, size_t *n);
fl_store_rc fl_store_prune_end(fl_store *s, bool commit);
void fl_store_folders_free(char **folders, size_t n);

/* Freeze state and paused experiments: survive restarts. */
fl_store_rc fl_store_set_frozen(fl_store *s, bool frozen, const char *reason, const char *who,
                                int64_t now_ms);
fl_store_rc fl_store_get_frozen(fl_store *s, bool *frozen, char **reason, char **who,
                                int64_t *since_ms);
fl_store_rc fl_store_set_paused(fl_store *s, const char *experiment, bool paused);
fl_store_rc fl_store_is_paused(fl_store *s, const char *experiment, bool *paused);

#endif
