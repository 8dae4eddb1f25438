#include "common/faultid.h"

#include <stddef.h>

bool fl_fault_id_ok(const char *id)
{
    if (id == NULL || id[0] == '\0')
        return false;
    size_t n = 0;
    for (const char *p = id; *p; p++, n++) {
        char c = *p;
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_';
        if (!plain || n >= FL_FAULT_ID_MAX)
            return false;
    }
    return true;
}
