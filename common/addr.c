#include "common/addr.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int parse_port(const char *p, uint16_t *port)
{
    if (*p == '\0')
        return -EINVAL;
    unsigned long v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > 65535)
            return -EINVAL;
    }
    *port = (uint16_t)v;
    return 0;
}

static int valid_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == ':' || c == '_' || c == '%';
}

int fl_addr_split(const char *spec, uint16_t default_port, char *host, size_t hostlen,
                  uint16_t *port)
{
    const char *h = spec;
    size_t hlen;
    uint16_t p = default_port;

    if (spec == NULL || *spec == '\0')
        return -EINVAL;
    if (*spec == '[') {
        const char *close = strchr(spec, ']');
        if (close == NULL)
            return -EINVAL;
        h = spec + 1;
        hlen = (size_t)(close - h);
        if (close[1] == ':') {
            if (parse_port(close + 2, &p) < 0)
                return -EINVAL;
        } else if (close[1] != '\0') {
            return -EINVAL;
        }
    } else {
        const char *colon = strchr(spec, ':');
        if (colon != NULL && strchr(colon + 1, ':') == NULL) {
            hlen = (size_t)(colon - spec);
            if (parse_port(colon + 1, &p) < 0)
                return -EINVAL;
        } else {
            hlen = strlen(spec); /* no colon, or a bare IPv6 address */
        }
    }
    if (hlen == 0 || hlen >= hostlen)
        return -EINVAL;
    for (size_t i = 0; i < hlen; i++)
        if (!valid_host_char(h[i]))
            return -EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = p;
    return 0;
}

int fl_addr_join(const char *host, uint16_t port, char *buf, size_t len)
{
    int n = strchr(host, ':') ? snprintf(buf, len, "[%s]:%u", host, (unsigned)port)
                              : snprintf(buf, len, "%s:%u", host, (unsigned)port);
    if (n < 0 || (size_t)n >= len)
        return -ENOSPC;
    return n;
}
