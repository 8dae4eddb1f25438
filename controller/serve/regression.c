/* Recovery-time regression check: median of the window, two thresholds. */
#include "controller/serve/regression.h"

#include <stdlib.h>
#include <string.h>

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

fl_regression fl_regression_check(const int64_t *past_ms, size_t n, size_t window, double tolerance,
                                  int64_t recovery_ms, int64_t resolution_ms)
{
    fl_regression r = {false, 0, false};
    if (window == 0)
        window = FL_REGRESSION_WINDOW_DEFAULT;
    if (n > window)
        n = window;
    if (n == 0 || past_ms == NULL)
        return r;
    int64_t *buf = malloc(n * sizeof *buf);
    if (buf == NULL)
        return r;
    memcpy(buf, past_ms, n * sizeof buf[0]);
    qsort(buf, n, sizeof buf[0], cmp_i64);
    r.baseline_ms = (n % 2) ? buf[n / 2] : (buf[n / 2 - 1] + buf[n / 2]) / 2;
    free(buf);
    r.have_baseline = true;
    int64_t over = recovery_ms - r.baseline_ms;
    r.regressed =
        over > 0 && (double)over > tolerance * (double)r.baseline_ms && over > 2 * resolution_ms;
    return r;
}
