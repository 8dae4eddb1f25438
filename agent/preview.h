/* What a prepared fault would do, for a PreviewRequest (docs/design.md
 * section 3): read from the fault's spec and the undo record its kind's
 * prepare wrote, never from the host's state beyond /proc (names and start
 * times of the targets). Nothing here changes anything. */
#ifndef FL_AGENT_PREVIEW_H
#define FL_AGENT_PREVIEW_H

#include <stddef.h>

#include "agent/fault.h"

/* At most one line per target a selector may match (process.c's limit). */
#define FL_PREVIEW_MAX_LINES 64

struct fl_preview {
    char *would[FL_PREVIEW_MAX_LINES]; /* malloc'd lines */
    size_t n;
    char detail[256]; /* about the fault as a whole; "" when nothing to add */
};

/* Fills out from f, which prepare accepted. 0 or -ENOMEM (out is then
 * freed). */
int fl_preview_describe(const struct fl_fault *f, struct fl_preview *out);
void fl_preview_free(struct fl_preview *p);

/* A process's start as wall clock ms since the epoch, from its start in clock
 * ticks since boot (/proc/PID/stat field 22) and the boot time (/proc/stat
 * btime); 0 when unknown. */
uint64_t fl_preview_start_ms(uint64_t start_ticks);

#endif
