/* One journal record on disk, framed so that a reader can tell a whole record
 * from a torn or damaged one (agent/journal.h holds the file):
 *
 *   J2 LEN SUM JSON\n
 *
 * LEN is the length of JSON in bytes (decimal), SUM the first 8 bytes of the
 * SHA-256 of JSON (16 lowercase hex digits). A line is a record only when its
 * LEN and SUM match; anything else is corruption, which the reader reports.
 * A record whose JSON is longer than FL_JOURNAL_RECORD_MAX is refused on
 * write and on read.
 *
 * Journals written before the framing (version 1: a bare JSON object per
 * line) are still read, so that an upgraded agent reverts what the old one
 * left; they are never written. */
#ifndef FL_AGENT_JOURNALREC_H
#define FL_AGENT_JOURNALREC_H

#include <jansson.h>
#include <stddef.h>

/* The longest record's JSON: an undo object is a few hundred bytes (the
 * pids of a process fault, at most 64, are the largest part). */
#define FL_JOURNAL_RECORD_MAX (64 * 1024)

/* The framed line for record, '\n'-terminated and NUL-terminated, in a
 * malloc'ed buffer; *len receives its length without the NUL. NULL with
 * -ENOMEM or -E2BIG (longer than FL_JOURNAL_RECORD_MAX) in *status. */
char *fl_journalrec_encode(const json_t *record, size_t *len, int *status);

/* Finds the records in one line of the file (line[0..n), without its '\n'):
 * normally the whole line is one record; when a torn record was glued to the
 * front of a whole one, the whole one is found after the damage. Calls
 * found(record, arg), when found is not NULL, for each record (a borrowed
 * reference) and returns the
 * number of bytes of the line that were not part of a record (0 for a clean
 * line). */
size_t fl_journalrec_scan(const char *line, size_t n, void (*found)(json_t *record, void *arg),
                          void *arg);

#endif
