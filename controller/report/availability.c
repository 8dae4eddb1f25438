/* The availability budget: see availability.h for the formulas. */
#include "controller/report/availability.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>

double fl_avail_redundant(double a, unsigned n)
{
    if (n == 0)
        n = 1;
    return 1.0 - pow(1.0 - a, (double)n);
}

double fl_avail_per_instance(double target, unsigned n)
{
    if (n == 0)
        n = 1;
    if (n == 1)
        return target;
    return 1.0 - pow(1.0 - target, 1.0 / (double)n);
}

static bool good(double v)
{
    return isfinite(v) && v >= 0.0;
}

int fl_avail_evaluate(const struct fl_avail_budget *b, double mttr_ms, struct fl_avail_result *out,
                      char *err, unsigned errlen)
{
    if (b == NULL || out == NULL || err == NULL)
        return -EINVAL;
    if (!(isfinite(b->target) && b->target > 0.0 && b->target < 1.0)) {
        snprintf(err, errlen, "availability target %g is not between 0 and 100 %%",
                 b->target * 100);
        return -EINVAL;
    }
    if (!good(b->failures_per_year) || !good(b->mtbf_ms) || !good(mttr_ms)) {
        snprintf(err, errlen,
                 "availability: failures_per_year, mtbf and the recovery time must "
                 "be finite and not negative");
        return -EINVAL;
    }
    if ((b->failures_per_year > 0) == (b->mtbf_ms > 0)) {
        snprintf(err, errlen, "availability: give exactly one of failures_per_year and mtbf");
        return -EINVAL;
    }
    unsigned n = b->redundancy == 0 ? 1 : b->redundancy;
    if (n > FL_AVAIL_REDUNDANCY_MAX) {
        snprintf(err, errlen, "availability: redundancy %u is above the limit of %u instances", n,
                 FL_AVAIL_REDUNDANCY_MAX);
        return -EINVAL;
    }
    double a1, max;
    double need = fl_avail_per_instance(b->target, n);
    if (b->failures_per_year > 0) {
        double f = b->failures_per_year;
        a1 = 1.0 - f * mttr_ms / FL_AVAIL_YEAR_MS;
        if (a1 < 0.0)
            a1 = 0.0;
        max = (1.0 - need) * FL_AVAIL_YEAR_MS / f;
    } else {
        a1 = b->mtbf_ms / (b->mtbf_ms + mttr_ms);
        max = b->mtbf_ms * (1.0 - need) / need;
    }
    out->availability = fl_avail_redundant(a1, n);
    out->downtime_ms_per_year = (1.0 - out->availability) * FL_AVAIL_YEAR_MS;
    double m = floor(max * (1.0 + 1e-9));
    out->max_mttr_ms = m > 9e18 ? INT64_MAX : (int64_t)m;
    out->pass = mttr_ms <= (double)out->max_mttr_ms;
    return 0;
}
