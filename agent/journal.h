/* The journal: an append-only file of JSON lines in the state directory that
 * says which faults may be active and how to undo each. It is the memory that
 * survives a crash: the guardian and the restarted agent read it.
 *
 *   {"op":"apply",  "id":ID, "at":MS, "undo":{...}}   before the fault is applied
 *   {"op":"update", "id":ID, "undo":{...}}            apply learnt more (worker pids)
 *   {"op":"revert", "id":ID, "at":MS, "ok":true}      after it was reverted
 *
 * A fault is active from its apply record until a revert record with ok:true.
 * Each record is framed with its length and a checksum (agent/journalrec.h).
 * An append is all or nothing: it is fsynced before the caller is told it is
 * written, and a write that fails (a full file system) is cut back off, so
 * the fault it announced is refused and never applied. The reader takes only
 * whole records, finds a whole record after a damaged one on the same line,
 * and logs what it skipped; a torn last line (a crash mid-write) is ignored:
 * its fault was never applied. The reader opens the file without following
 * a symbolic link and refuses one that is not a regular file of ours. */
#ifndef FL_AGENT_JOURNAL_H
#define FL_AGENT_JOURNAL_H

#include <jansson.h>
#include <stddef.h>
#include <uv.h>

struct fl_journal;

/* Opens (creating, mode 0600) the journal at path for appending. */
int fl_journal_open(const char *path, struct fl_journal **out, char *err, size_t errlen);
void fl_journal_close(struct fl_journal **j);

/* Reads the journal at path: *active receives an array of the undo objects
 * of every fault still active, oldest first. Blocking; for start-up and the
 * guardian. A missing file is an empty journal. */
int fl_journal_read_active(const char *path, json_t **active, char *err, size_t errlen);

/* Appends one record and fsyncs it, blocking. */
int fl_journal_append(struct fl_journal *j, const json_t *record);

/* Rewrites the journal to hold only `keep` (apply records of faults that are
 * still active), atomically (write a temporary file, fsync, rename, fsync the
 * directory). Blocking. */
int fl_journal_compact(struct fl_journal *j, const json_t *keep_undos, char *err, size_t errlen);

/* Cuts the journal to nothing and fsyncs it: for when every fault it names
 * is known reverted but the revert records could not be written (a full
 * file system: truncating needs no space). Blocking. */
int fl_journal_clear(struct fl_journal *j);

/* Appends on libuv's thread pool; cb runs on the loop once the record is on
 * disk (status 0) or failed. Records are written in the order queued. */
typedef void (*fl_journal_cb)(int status, void *arg);
int fl_journal_append_async(struct fl_journal *j, uv_loop_t *loop, json_t *record, fl_journal_cb cb,
                            void *arg);

/* Record builders (new references). */
json_t *fl_journal_apply_record(const char *id, const json_t *undo);
json_t *fl_journal_update_record(const char *id, const json_t *undo);
json_t *fl_journal_revert_record(const char *id, int ok, const char *error);

#endif
