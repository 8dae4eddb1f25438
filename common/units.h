/* Durations ("250ms", "5s", "2m", "1h", "1m30s", "1.5s") and sizes
 * ("512MiB", "2GiB", "4096", "90%"), as written in experiments and on the
 * command line. */
#ifndef FL_COMMON_UNITS_H
#define FL_COMMON_UNITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parses a duration into milliseconds. Every number needs a unit (ms, s, m,
 * h); parts may be chained largest first ("1h30m"). A fraction must come out
 * to whole milliseconds. Returns 0, -EINVAL for bad syntax, -ERANGE when the
 * value does not fit. *ms is written only on success. */
int fl_parse_duration(const char *text, uint64_t *ms);

/* Formats milliseconds for a person: "250ms", "1.42s", "30s", "2m30s", "1h5m".
 * Returns the length, or -ENOSPC. */
int fl_format_duration(uint64_t ms, char *buf, size_t len);

struct fl_size {
    bool is_percent;
    uint64_t bytes; /* when !is_percent */
    double percent; /* when is_percent: 0 < percent <= 100 */
};

/* Parses a size: a number of bytes with an optional binary unit (B, KiB, MiB,
 * GiB, TiB) or a percentage ("90%", "12.5%"). Returns 0, -EINVAL, -ERANGE. */
int fl_parse_size(const char *text, struct fl_size *out);

/* Room for any fl_format_bytes text with its NUL: the longest is
 * "16777216.00TiB" (14 bytes), just under 2^64 bytes. */
#define FL_BYTES_TEXT_LEN 16

/* Formats bytes with a binary unit: "512MiB", "1.50GiB", "100B". Returns the
 * length, or -ENOSPC (never with FL_BYTES_TEXT_LEN bytes). */
int fl_format_bytes(uint64_t bytes, char *buf, size_t len);

/* fl_format_bytes for a message: returns buf, which holds the text, or, when
 * len is too short for it, as much of "<n> bytes" as fits. */
const char *fl_bytes_text(uint64_t bytes, char *buf, size_t len);

#endif
