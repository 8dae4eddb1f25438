/* The time axis of the report's timeline: a linear map from wall-clock ms to
 * SVG x, the pixel column an x falls in, and a readable step for axis labels.
 * Pure functions. */
#ifndef FL_CONTROLLER_REPORT_SCALE_H
#define FL_CONTROLLER_REPORT_SCALE_H

#include <stdint.h>

struct fl_scale {
    int64_t t0_ms, t1_ms; /* the domain; t1 > t0 */
    double x0, x1;        /* the range in SVG units (px) */
};

/* A scale from [t0, t1] to [x0, x1]; t1 <= t0 is widened to t0 + 1. */
void fl_scale_init(struct fl_scale *s, int64_t t0_ms, int64_t t1_ms, double x0, double x1);

/* x of t, clamped to [x0, x1]: times outside the domain sit on its edge. */
double fl_scale_x(const struct fl_scale *s, int64_t t_ms);

/* The pixel column of t: floor(x - x0), in 0 .. width - 1 where width is
 * ceil(x1 - x0). */
unsigned fl_scale_col(const struct fl_scale *s, int64_t t_ms);
unsigned fl_scale_width(const struct fl_scale *s);

/* The smallest of 1, 2, 5 x 10^k ms (k >= 0) that cuts span_ms into at most
 * max_labels steps (max_labels 0 is taken as 1). */
int64_t fl_scale_step_ms(int64_t span_ms, unsigned max_labels);

#endif
