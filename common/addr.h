/* Host specs as users write them: "10.77.0.2", "10.77.0.2:7411",
 * "[fd00::2]:7411", "fd00::2", "web1.staging:7000". */
#ifndef FL_COMMON_ADDR_H
#define FL_COMMON_ADDR_H

#include <stddef.h>
#include <stdint.h>

#define FL_DEFAULT_PORT 7411

/* Splits spec into host and port (default_port when none is given). A bare
 * IPv6 address has no port; with a port it needs brackets. Port 0 is allowed
 * (a listener asking for any port). Returns 0 or -EINVAL; writes only on
 * success. */
int fl_addr_split(const char *spec, uint16_t default_port, char *host, size_t hostlen,
                  uint16_t *port);

/* "host:port", or "[v6]:port". */
int fl_addr_join(const char *host, uint16_t port, char *buf, size_t len);

#endif
