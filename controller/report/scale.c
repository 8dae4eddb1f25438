/* The timeline's time axis: see scale.h. */
#include "controller/report/scale.h"

#include <math.h>

void fl_scale_init(struct fl_scale *s, int64_t t0_ms, int64_t t1_ms, double x0, double x1)
{
    s->t0_ms = t0_ms;
    s->t1_ms = t1_ms > t0_ms ? t1_ms : t0_ms + 1;
    s->x0 = x0;
    s->x1 = x1 > x0 ? x1 : x0 + 1;
}

double fl_scale_x(const struct fl_scale *s, int64_t t_ms)
{
    if (t_ms <= s->t0_ms)
        return s->x0;
    if (t_ms >= s->t1_ms)
        return s->x1;
    double f = (double)(t_ms - s->t0_ms) / (double)(s->t1_ms - s->t0_ms);
    return s->x0 + f * (s->x1 - s->x0);
}

unsigned fl_scale_width(const struct fl_scale *s)
{
    return (unsigned)ceil(s->x1 - s->x0);
}

unsigned fl_scale_col(const struct fl_scale *s, int64_t t_ms)
{
    unsigned w = fl_scale_width(s);
    double c = floor(fl_scale_x(s, t_ms) - s->x0);
    if (c < 0)
        return 0;
    if (c >= (double)w)
        return w - 1;
    return (unsigned)c;
}

int64_t fl_scale_step_ms(int64_t span_ms, unsigned max_labels)
{
    if (max_labels == 0)
        max_labels = 1;
    static const int64_t mult[] = {1, 2, 5};
    for (int64_t p = 1; p <= INT64_MAX / 10; p *= 10)
        for (unsigned i = 0; i < 3; i++)
            if (span_ms <= (int64_t)max_labels * mult[i] * p)
                return mult[i] * p;
    return INT64_MAX / 10;
}
