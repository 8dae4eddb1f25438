#include "common/cidr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fl_cidr_parse(const char *text, struct fl_cidr *out)
{
    char buf[64];
    if (text == NULL || strlen(text) >= sizeof(buf))
        return -EINVAL;
    snprintf(buf, sizeof(buf), "%s", text);
    struct fl_cidr c;
    memset(&c, 0, sizeof(c));
    char *slash = strchr(buf, '/');
    if (slash)
        *slash = '\0';
    if (inet_pton(AF_INET, buf, c.addr) == 1) {
        c.family = AF_INET;
        c.prefix = 32;
    } else if (inet_pton(AF_INET6, buf, c.addr) == 1) {
        c.family = AF_INET6;
        c.prefix = 128;
    } else {
        return -EINVAL;
    }
    if (slash) {
        char *end;
        unsigned long p = strtoul(slash + 1, &end, 10);
        if (slash[1] < '0' || slash[1] > '9' || *end != '\0' || p > c.prefix)
            return -EINVAL;
        c.prefix = (unsigned)p;
    }
    /* no host bits past the prefix: "10.0.0.1/8" is a typo, not a network */
    unsigned len = c.family == AF_INET ? 4 : 16;
    for (unsigned bit = c.prefix; bit < len * 8; bit++)
        if (c.addr[bit / 8] & (0x80u >> (bit % 8)))
            return -EINVAL;
    *out = c;
    return 0;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
    unsigned whole = prefix / 8, rest = prefix % 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

bool fl_cidr_match(const struct fl_cidr *net, const struct sockaddr *sa)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return net->family == AF_INET &&
               prefix_equal(net->addr, (const uint8_t *)&in->sin_addr, net->prefix);
    }
    if (sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        if (net->family == AF_INET6)
            return prefix_equal(net->addr, a, net->prefix);
        return memcmp(a, v4mapped, sizeof(v4mapped)) == 0 &&
               prefix_equal(net->addr, a + 12, net->prefix);
    }
    return false;
}
