#include "common/clock.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t fl_now_ms(void)
{
    return clock_ns(CLOCK_REALTIME) / 1000000u;
}

uint64_t fl_mono_ms(void)
{
    return clock_ns(CLOCK_MONOTONIC) / 1000000u;
}

uint64_t fl_mono_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

int fl_format_rfc3339(uint64_t epoch_ms, char *buf, size_t len)
{
    time_t secs = (time_t)(epoch_ms / 1000u);
    struct tm tm;
    if (gmtime_r(&secs, &tm) == NULL)
        return -EINVAL;
    int n =
        snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(epoch_ms % 1000u));
    if (n < 0 || (size_t)n >= len)
        return -ENOSPC;
    return n;
}
