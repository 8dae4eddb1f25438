/* Quoting an argument for a POSIX shell, for the commands deploy and the
 * SFTP copy run on a host. */
#include "controller/ssh/quote.h"

#include <errno.h>
#include <string.h>

int fl_ssh_quote(const char *arg, char *buf, size_t len)
{
    size_t o = 0;
    if (len < 3)
        return -ENOSPC;
    buf[o++] = '\'';
    for (const char *p = arg; *p != '\0'; p++) {
        if (*p == '\'') {
            if (o + 4 >= len)
                return -ENOSPC;
            memcpy(buf + o, "'\\''", 4);
            o += 4;
        } else {
            if (o + 1 >= len)
                return -ENOSPC;
            buf[o++] = *p;
        }
    }
    if (o + 2 > len)
        return -ENOSPC;
    buf[o++] = '\'';
    buf[o] = '\0';
    return (int)o;
}
