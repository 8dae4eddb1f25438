/* Next-fire computation for faultline serve's schedules: 1,000 varied cron
 * schedules over four zones (UTC, Europe/Berlin, America/New_York,
 * Australia/Lord_Howe), each asked for its next due time after R instants
 * (spread over 2026-2027, DST transitions included). Prints p50/p90/p99/max
 * in microseconds of one fl_schedule_next call, and the same for zone load.
 * usage: schedule_bench [N_SCHEDULES] [R] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "controller/serve/schedule.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp);
    printf("%-34s n=%-7zu p50 %7.2f us  p90 %7.2f us  p99 %7.2f us  max %8.2f us\n", what, n,
           v[(n - 1) / 2], v[(n * 9 + 9) / 10 - 1], v[(n * 99 + 99) / 100 - 1], v[n - 1]);
}

static const char *const shapes[] = {
    "%u %u * * *", "*/%u * * * *",  "%u * * * 1-5",     "%u %u 1 * *",
    "0 0 29 2 *",  "%u %u * * mon", "%u-59/%u * * * *", "%u %u 13 * 5",
    "* * * * *",   "@hourly",       "@weekly",          "%u %u * jan,jul *",
};

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000;
    size_t r = argc > 2 ? strtoul(argv[2], NULL, 10) : 20;
    static const char *const zones[] = {"UTC", "Europe/Berlin", "America/New_York",
                                        "Australia/Lord_Howe"};
    struct fl_tz tz[4];
    char err[256];
    double load_us[40];
    for (int k = 0; k < 10; k++)
        for (int i = 0; i < 4; i++) {
            double t0 = now_us();
            if (fl_tz_load(NULL, zones[i], &tz[i], err, sizeof err) < 0) {
                fprintf(stderr, "%s\n", err);
                return 1;
            }
            load_us[k * 4 + i] = now_us() - t0;
            if (k < 9)
                fl_tz_free(&tz[i]);
        }
    struct fl_schedule *s = calloc(n, sizeof *s);
    double *v = calloc(n * r, sizeof *v);
    if (!s || !v)
        return 1;
    for (size_t i = 0; i < n; i++) {
        char expr[64];
        const char *shape = shapes[rnd(sizeof shapes / sizeof shapes[0])];
        unsigned a = rnd(60), b = rnd(24);
        if (strstr(shape, "*/%u"))
            a = 1 + rnd(30);
        if (strstr(shape, "-59/%u"))
            b = 1 + rnd(10);
        _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wformat-nonliteral\"");
        snprintf(expr, sizeof expr, shape, a, b);
        _Pragma("GCC diagnostic pop");
        s[i].kind = FL_SCHED_CRON;
        size_t col;
        if (fl_cron_parse(expr, &s[i].cron, &col, err, sizeof err) < 0) {
            fprintf(stderr, "%s: %s\n", expr, err);
            return 1;
        }
    }
    int64_t base = fl_days_from_civil(2026, 1, 1) * 86400;
    size_t k = 0;
    int64_t sink = 0;
    for (size_t i = 0; i < n; i++) {
        const struct fl_tz *z = &tz[i % 4];
        for (size_t j = 0; j < r; j++) {
            int64_t after = base + (int64_t)rnd(2 * 365 * 86400), out;
            double t0 = now_us();
            int rc = fl_schedule_next(&s[i], z, 0, after, &out);
            v[k++] = now_us() - t0;
            if (rc < 0) {
                fprintf(stderr, "schedule %zu: no next due time\n", i);
                return 1;
            }
            sink += out;
        }
    }
    report("fl_tz_load (4 zones x 10)", load_us, 40);
    report("fl_schedule_next (cron)", v, k);
    printf("(checksum %lld)\n", (long long)(sink & 0xffff));
    for (int i = 0; i < 4; i++)
        fl_tz_free(&tz[i]);
    free(s);
    free(v);
    return 0;
}
