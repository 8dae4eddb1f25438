#include "common/cidr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* bytes of a bad text quoted back in err */
#define QUOTE_MAX 64

static unsigned family_bits(int family)
{
    return family == AF_INET ? 32 : 128;
}

static bool has_control(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return true;
    return false;
}

/* "'<text>' <why>" into err; -EINVAL */
static int refuse(const char *text, const char *why, char *err, size_t errlen)
{
    if (err == NULL || errlen == 0)
        return -EINVAL;
    if (text == NULL || has_control(text))
        snprintf(err, errlen, "the address holds a control character: it %s", why);
    else
        snprintf(err, errlen, "'%.*s%s' %s", QUOTE_MAX, text, strlen(text) > QUOTE_MAX ? "..." : "",
                 why);
    return -EINVAL;
}

/* 1 to 3 decimal digits and nothing else, at most max */
static int parse_prefix(const char *s, unsigned max, unsigned *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 3)
        return -EINVAL;
    unsigned v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(*s - '0');
    }
    if (v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

/* clears the bits past the prefix; true when any was set */
static bool mask(struct fl_cidr *c)
{
    bool was_set = false;
    for (unsigned bit = c->prefix; bit < family_bits(c->family); bit++) {
        uint8_t m = (uint8_t)(0x80u >> (bit % 8));
        if (c->addr[bit / 8] & m) {
            was_set = true;
            c->addr[bit / 8] &= (uint8_t)~m;
        }
    }
    return was_set;
}

int fl_cidr_parse_err(const char *text, struct fl_cidr *out, char *err, size_t errlen)
{
    static const char not_address[] = "is not an IP address or CIDR such as 10.0.0.0/8, "
                                      "192.0.2.7 or fd00::/64 (host names are not resolved)";
    char buf[FL_CIDR_TEXT_MAX + 1];
    if (text == NULL || strlen(text) > FL_CIDR_TEXT_MAX)
        return refuse(text, not_address, err, errlen);
    snprintf(buf, sizeof(buf), "%s", text);
    struct fl_cidr c;
    memset(&c, 0, sizeof(c));
    char *slash = strchr(buf, '/');
    if (slash)
        *slash = '\0';
    if (inet_pton(AF_INET, buf, c.addr) == 1)
        c.family = AF_INET;
    else if (inet_pton(AF_INET6, buf, c.addr) == 1)
        c.family = AF_INET6;
    else
        return refuse(text, not_address, err, errlen);
    c.prefix = family_bits(c.family);
    char why[160];
    if (slash && parse_prefix(slash + 1, family_bits(c.family), &c.prefix) < 0) {
        snprintf(why, sizeof(why), "has a bad prefix length: an IPv%d prefix is /0 to /%u",
                 c.family == AF_INET ? 4 : 6, family_bits(c.family));
        return refuse(text, why, err, errlen);
    }
    struct fl_cidr net = c;
    if (mask(&net)) {
        char a[INET6_ADDRSTRLEN];
        if (inet_ntop(net.family, net.addr, a, sizeof(a)) == NULL)
            a[0] = '\0'; /* cannot happen: inet_pton read it */
        snprintf(why, sizeof(why), "has bits set after the prefix; did you mean %s/%u?", a,
                 net.prefix);
        return refuse(text, why, err, errlen);
    }
    *out = c;
    return 0;
}

int fl_cidr_parse(const char *text, struct fl_cidr *out)
{
    return fl_cidr_parse_err(text, out, NULL, 0);
}

int fl_cidr_format(const struct fl_cidr *c, char *buf, size_t len)
{
    char a[INET6_ADDRSTRLEN];
    if (inet_ntop(c->family, c->addr, a, sizeof(a)) == NULL)
        return -EINVAL;
    int n = c->prefix == family_bits(c->family) ? snprintf(buf, len, "%s", a)
                                                : snprintf(buf, len, "%s/%u", a, c->prefix);
    if (n < 0 || (size_t)n >= len)
        return -ENOSPC;
    return n;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
    unsigned whole = prefix / 8, rest = prefix % 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t m = (uint8_t)(0xffu << (8 - rest));
    return (a[whole] & m) == (b[whole] & m);
}

bool fl_cidr_contains(const struct fl_cidr *outer, const struct fl_cidr *inner)
{
    return outer->family == inner->family && outer->prefix <= inner->prefix &&
           prefix_equal(outer->addr, inner->addr, outer->prefix);
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
