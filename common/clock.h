/* Clocks: wall time for reports and logs, monotonic time for measuring. */
#ifndef FL_COMMON_CLOCK_H
#define FL_COMMON_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Wall clock, milliseconds since the Unix epoch. */
uint64_t fl_now_ms(void);
/* Monotonic clock, milliseconds and nanoseconds since an arbitrary point. */
uint64_t fl_mono_ms(void);
uint64_t fl_mono_ns(void);

/* "2026-11-25T16:51:00.123Z" (UTC). Returns the length, or -ENOSPC. */
int fl_format_rfc3339(uint64_t epoch_ms, char *buf, size_t len);

#endif
