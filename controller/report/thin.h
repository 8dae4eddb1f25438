/* Tick thinning for the timeline: attempts binned into pixel columns, each
 * column keeping how many attempts of each outcome it holds and the worst
 * one (failed > timeout > late > ok), so a column with a failure is always
 * drawn as a failure however many successes share its pixel. Memory is
 * bounded per column (the worst attempt's detail is cut at
 * FL_THIN_DETAIL_MAX bytes), never per attempt, so a stream of any length
 * fits. Pure: no I/O. */
#ifndef FL_CONTROLLER_REPORT_THIN_H
#define FL_CONTROLLER_REPORT_THIN_H

#include <stdbool.h>
#include <stdint.h>

/* In order of severity: the worst wins a column. "late" means the controller
 * itself handled the attempt too late to judge it: never a failure. */
enum fl_tick {
    FL_TICK_OK,
    FL_TICK_LATE,
    FL_TICK_TIMEOUT,
    FL_TICK_FAILED,
};
#define FL_TICK_COUNT 4

/* The worst attempt's detail kept per column (bytes with its NUL, longer is cut). */
#define FL_THIN_DETAIL_MAX 160

struct fl_thin_col {
    uint64_t n[FL_TICK_COUNT]; /* attempts of each outcome */
    int64_t first_ms, last_ms; /* the earliest and latest attempt */
    enum fl_tick worst;
    int64_t worst_ms; /* the first attempt of the worst outcome */
    int64_t worst_latency_ms;
    /* The worst attempt's detail (at most FL_THIN_DETAIL_MAX - 1 bytes), on
     * the heap and only when there is one: a column is 80 bytes, not 232
     * (a probe has FL_HTML_X1 - FL_HTML_X0 = 760 columns; 1,000 probes held
     * 176 MiB of mostly empty detail arrays while report.html was drawn).
     * NULL when none (or none could be kept: out of memory). */
    char *worst_detail;
};

struct fl_thin {
    unsigned width;
    struct fl_thin_col *cols; /* width of them */
};

/* Columns 0 .. width - 1 (width >= 1). 0 or -ENOMEM. */
int fl_thin_init(struct fl_thin *t, unsigned width);
void fl_thin_free(struct fl_thin *t);

/* Adds one attempt to column col (clamped to the last column). detail may be
 * NULL. */
void fl_thin_add(struct fl_thin *t, unsigned col, int64_t t_ms, int64_t latency_ms, enum fl_tick o,
                 const char *detail);

/* Attempts in a column (0: nothing to draw). */
uint64_t fl_thin_count(const struct fl_thin_col *c);

/* "ok", "late", "timeout", "failed"; and back (-1 for anything else). */
const char *fl_tick_name(enum fl_tick o);
int fl_outcome_parse(const char *s);

#endif
