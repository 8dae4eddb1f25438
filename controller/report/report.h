/* Reports of `faultline run` (docs/design.md section 8), all read from the run
 * record (controller/runrecord.h) after the run, never while it runs:
 *
 *   fl_report_text   the end-of-run summary for the terminal (text.c)
 *   fl_report_json   run.json, the documented, stable interface (json.c)
 *   fl_report_junit  junit.xml, one test case per objective, for CI (junit.c)
 *
 * The file writers do blocking file I/O (write, fsync, rename): call them
 * after the loop has finished, or from the thread pool. */
#ifndef FL_CONTROLLER_REPORT_REPORT_H
#define FL_CONTROLLER_REPORT_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include "controller/run/runrecord.h"

/* The version of run.json's layout, its top-level "format". Raised only when
 * a field changes meaning or goes away; new fields do not raise it. */
#define FL_REPORT_JSON_FORMAT 2

/* Writes the end-of-run summary to out: experiment, verdict and its reason,
 * impact / detection / recovery times relative to injection, the recovery
 * time with its resolution against the objective, every fault (a failed
 * revert loudly, with what to do), every probe's results and failures. Plain
 * text, no terminal escapes. Returns 0, -EINVAL (NULL r, r->e or out) or -EIO
 * when out reports an error. */
int fl_report_text(const struct fl_run_record *r, FILE *out);

/* Writes run.json to path (path.tmp first, fsync'd, then renamed over path;
 * mode 0644). Returns 0, or a negative errno with err saying what failed and
 * what to do: -EINVAL (NULL argument), -ENOMEM, or the errno of the file
 * operation that failed (the temporary file is removed). */
int fl_report_json(const struct fl_run_record *r, const char *path, char *err, size_t errlen);

/* Writes junit.xml to path, the same way and with the same errors as
 * fl_report_json: one testsuite named after the experiment; one testcase per
 * objective (rto; rpo when set) and one for "steady state returned"; an
 * aborted run makes every testcase an error carrying the abort reason. */
int fl_report_junit(const struct fl_run_record *r, const char *path, char *err, size_t errlen);

/* ---------------------------------------------------- shared by the writers */

/* Writes len bytes of data to path.tmp (mode 0644, fsync'd) and renames it
 * over path. Returns 0 or a negative errno with err naming the file, the
 * failure and what to do; the temporary file never survives a failure. */
int fl_report_write_atomic(const char *path, const char *data, size_t len, char *err,
                           size_t errlen);

/* The length (1-4) of the well-formed UTF-8 sequence at s, which must be NUL
 * terminated, or 0 when the bytes at s are not one (overlong forms,
 * surrogates and code points above U+10FFFF are not). *s must not be NUL. */
size_t fl_report_utf8_seq(const char *s);

#endif
