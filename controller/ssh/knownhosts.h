/* known_hosts for controller/ssh/session.c: reading it for one host, the
 * host key algorithms to offer, and the check of the server's key (which may
 * add a new host's key). Runs in the thread of fl_ssh_open. */
#ifndef FL_CONTROLLER_SSH_KNOWNHOSTS_H
#define FL_CONTROLLER_SSH_KNOWNHOSTS_H

#include <libssh2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "controller/ssh/session.h"

#define FL_SSH_MAX_KNOWN_TYPES 8

/* What known_hosts says about one host. */
struct fl_ssh_known {
    LIBSSH2_KNOWNHOSTS *kh;
    char types[FL_SSH_MAX_KNOWN_TYPES][40]; /* key types known for this host: "ssh-ed25519" */
    size_t n_types;
    bool exists;
    bool ends_in_newline;
};

/* Once per process, before any other call here: 0 or a negative errno. */
int fl_ssh_known_init(void);

/* Reads known_hosts at path into k (zeroed by the caller), noting the key
 * types known for host:port. A missing file knows no host. 0 or a negative
 * errno with err; either way the caller frees k->kh, when set, with
 * libssh2_knownhost_free. */
int fl_ssh_read_known_hosts(struct fl_ssh_session *s, const char *path, const char *host,
                            uint16_t port, struct fl_ssh_known *k, char *err, size_t errlen);

/* Offers the host key algorithms of the types k knows first, before the
 * handshake. */
void fl_ssh_prefer_known(struct fl_ssh_session *s, const struct fl_ssh_known *k);

/* After the handshake: 0 when the server's key is the known one, or when
 * the host was unknown and t->accept_new let its key be added to kh_path;
 * else -ENOKEY (unknown host), -EKEYREJECTED (changed key, or known only by
 * another type) or another negative errno, with err saying what to do. */
int fl_ssh_check_host_key(struct fl_ssh_session *s, const struct fl_ssh_target *t,
                          const char *kh_path, uint16_t port, struct fl_ssh_known *k, char *err,
                          size_t errlen);

#endif
