/* Addresses and networks: "10.0.0.0/8", "192.0.2.7", "fd00::/8". One rule for
 * every place a person writes one (the agent's allowed_controllers, a
 * network_drop's peers in an experiment, on the command line or on the wire):
 *
 * - a numeric IPv4 or IPv6 address (inet_pton; no host names, no zone
 *   "%eth0"), optionally "/" and 1 to 3 decimal digits up to 32 or 128;
 * - no bits set past the prefix: "10.1.2.3/8" is refused with "did you mean
 *   10.0.0.0/8?", since whoever wrote it meant either the host or the network
 *   and a guess either way may drop the wrong traffic or admit the wrong
 *   controller. */
#ifndef FL_COMMON_CIDR_H
#define FL_COMMON_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The longest text accepted, in bytes without the NUL: a full IPv6 address
 * with an embedded IPv4 one (45) and "/128", with room to spare. */
#define FL_CIDR_TEXT_MAX 63

/* Room for any fl_cidr_format output with its NUL: INET6_ADDRSTRLEN (46)
 * and "/128". */
#define FL_CIDR_TEXT_LEN 50

struct fl_cidr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned prefix; /* 0..32 or 0..128 */
};

/* Parses an address (a host: /32 or /128) or a network, by the rule above.
 * Returns 0 or -EINVAL; err (may be NULL) gets a sentence that quotes the
 * text (unless it holds control characters) and says what is expected:
 *   "'10.1.2.3/8' has bits set after the prefix; did you mean 10.0.0.0/8?"
 * Writes *out only on success. */
int fl_cidr_parse_err(const char *text, struct fl_cidr *out, char *err, size_t errlen);

/* The same without the sentence. */
int fl_cidr_parse(const char *text, struct fl_cidr *out);

/* "10.0.0.0/8", or the bare address for a host ("192.0.2.7", "fd00::5").
 * Returns the length or -ENOSPC (never with FL_CIDR_TEXT_LEN bytes). */
int fl_cidr_format(const struct fl_cidr *c, char *buf, size_t len);

/* Does network outer hold all of inner (same family, prefix no longer, the
 * same leading bits)? A network contains itself. */
bool fl_cidr_contains(const struct fl_cidr *outer, const struct fl_cidr *inner);

/* Does the address fall in the network? IPv4-mapped IPv6 addresses
 * (::ffff:10.0.0.1, as a dual-stack listener sees IPv4 peers) match IPv4
 * networks. */
bool fl_cidr_match(const struct fl_cidr *net, const struct sockaddr *sa);

#endif
