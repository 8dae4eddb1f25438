#include "common/text.h"

#include <errno.h>
#include <stdio.h>

int fl_text_check(const char *text, const char *what, char *err, size_t errlen)
{
    if (text == NULL || text[0] == '\0') {
        snprintf(err, errlen, "%s is empty", what);
        return -EINVAL;
    }
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++, n++) {
        if (n >= FL_TEXT_MAX) {
            snprintf(err, errlen, "%s is over %d bytes", what, FL_TEXT_MAX);
            return -EINVAL;
        }
        if (*p < 0x20 || *p == 0x7f) {
            snprintf(err, errlen, "%s holds a control character (byte %zu)", what, n);
            return -EINVAL;
        }
    }
    return 0;
}
