/* Addresses and networks: "10.0.0.0/8", "192.0.2.7", "fd00::/8". */
#ifndef FL_COMMON_CIDR_H
#define FL_COMMON_CIDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct fl_cidr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned prefix; /* 0..32 or 0..128 */
};

/* Parses an address (a host: /32 or /128) or a network. -EINVAL when it is
 * neither, or when bits are set past the prefix. Writes only on success. */
int fl_cidr_parse(const char *text, struct fl_cidr *out);

/* Does the address fall in the network? IPv4-mapped IPv6 addresses
 * (::ffff:10.0.0.1, as a dual-stack listener sees IPv4 peers) match IPv4
 * networks. */
bool fl_cidr_match(const struct fl_cidr *net, const struct sockaddr *sa);

#endif
