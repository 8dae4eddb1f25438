/* attempts.jsonl: every probe attempt of a run, written as it happens
 * (issue 12 item 5), so that neither the controller's memory nor run.json
 * grows with the length of a run.
 *
 * One JSON object per line, in the order results arrive:
 *   {"p":0,"t":1764380000123,"l":1,"o":"ok","d":"200"}
 * p: the probe's index in run.json's probes[]; t: when the attempt started,
 * ms since the epoch (controller clock); l: latency in ms; o: "ok",
 * "failed", "timeout" or "late"; d: the detail. Short keys: an hour of 200
 * probes every 100 ms is 7.2 million lines.
 *
 * Writing never blocks the loop: lines collect in a buffer that is handed
 * to the thread pool (uv_fs_write) once FL_ATTEMPTLOG_CHUNK bytes are
 * waiting or a second has passed, one write in flight at a time. If the
 * disk falls behind by FL_ATTEMPTLOG_BACKLOG bytes, a write would leave
 * less than FL_ATTEMPTLOG_RESERVE free on its file system, or a write fails,
 * the log stops there, loudly: `error` says why and run.json marks
 * the file incomplete. The run itself goes on: the measurement does not
 * depend on this file. */
#ifndef FL_CONTROLLER_RUN_ATTEMPTLOG_H
#define FL_CONTROLLER_RUN_ATTEMPTLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "controller/probes/probe.h"

#define FL_ATTEMPTLOG_CHUNK (256u * 1024u)
#define FL_ATTEMPTLOG_BACKLOG (64u * 1024u * 1024u)
/* The log never takes the last of its file system's space: it stops when
 * a write would leave less than this free, so run.json still fits. */
#define FL_ATTEMPTLOG_RESERVE (1024u * 1024u)

struct fl_attemptlog {
    uv_loop_t *loop;
    uv_file fd;
    uv_fs_t req;
    uv_timer_t flush_timer;
    bool timer_open;
    bool writing;  /* req in flight */
    char *filling; /* lines not yet handed over */
    size_t n_filling, cap_filling;
    char *flying; /* the buffer req writes */
    size_t n_flying, cap_flying;
    uint64_t offset;        /* where the next write goes */
    uint64_t lines_written; /* lines on disk */
    bool failed;
    char error[512];
    char path[4096];
    void (*closed)(void *arg);
    void *closed_arg;
    bool closing;
};

/* Creates (truncates) path, mode 0644. Opening blocks briefly; call before
 * the loop runs. Returns 0 or a negative errno with error set. */
int fl_attemptlog_open(struct fl_attemptlog *log, uv_loop_t *loop, const char *path);

/* Appends one line for probe index p. Never blocks. */
void fl_attemptlog_add(struct fl_attemptlog *log, size_t p, const struct fl_probe_result *r);

/* Writes what is waiting, fsyncs and closes, then closed(arg). The loop must
 * run for it to finish. */
void fl_attemptlog_close(struct fl_attemptlog *log, void (*closed)(void *arg), void *arg);

#endif
