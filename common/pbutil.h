/* Small helpers for filling protobuf-c messages. */
#ifndef FL_COMMON_PBUTIL_H
#define FL_COMMON_PBUTIL_H

#include <stdint.h>

/* protobuf-c declares string fields `char *` even in messages that are only
 * packed, never modified: this lends a const string to such a field. */
static inline char *fl_pb_str(const char *s)
{
    return (char *)(uintptr_t)s;
}

#endif
