/* Recovery-time regression: a pure function over past runs (issue 16).
 *
 * baseline = median recovery of the last `window` passing runs that measured
 * a recovery; a run is regressed when it is slower than the baseline by more
 * than `tolerance` (a fraction: 0.20 = 20 %) AND by more than two
 * resolutions (the measurement's own grain), so that noise at the grain of
 * the probe never flags a regression. */
#ifndef FL_SERVE_REGRESSION_H
#define FL_SERVE_REGRESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FL_REGRESSION_WINDOW_DEFAULT 10
#define FL_REGRESSION_TOLERANCE_DEFAULT 0.20

typedef struct {
    bool have_baseline; /* false: no passing run with a recovery yet */
    int64_t baseline_ms;
    bool regressed;
} fl_regression;

/* past_ms: recoveries of passing runs, newest first, n of them (the caller
 * passes at most `window`; extra ones are ignored). */
fl_regression fl_regression_check(const int64_t *past_ms, size_t n, size_t window, double tolerance,
                                  int64_t recovery_ms, int64_t resolution_ms);

#endif
