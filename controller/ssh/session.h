/* SSH sessions over libssh2, for `faultline deploy` and ssh probes.
 *
 * Every function here blocks its caller and is meant for libuv's thread pool
 * (uv_queue_work), never for the loop. Each one is bounded by a deadline
 * (monotonic ns, fl_mono_ns): libssh2 runs in non-blocking mode and every
 * wait is a poll() that never passes the deadline, so a dead host, a stalled
 * handshake or a command that hangs costs at most the time given.
 * fl_ssh_cancel() (from any thread) makes the call in progress give up
 * within a few tens of milliseconds.
 *
 * Name resolution is bounded too: a numeric address is used as is, a name is
 * looked up with glibc's getaddrinfo_a() and abandoned at the deadline.
 *
 * Limits (libssh2 1.10):
 * - ssh-agent is spoken to in blocking mode without a timeout
 *   (libssh2_agent_connect, _list_identities, and the signature in
 *   _userauth): a stuck agent, or one waiting for a confirmation, holds the
 *   call past its deadline. The agent is asked only when no identity_file is
 *   given; give one wherever a bound matters.
 * - libssh2 reads a missing exit-status as 0: a server that closes the
 *   channel without sending exit-status or exit-signal (OpenSSH always sends
 *   one) looks like a command that exited 0.
 *
 * Copies go through SFTP (controller/ssh/sftp.h); commands are quoted with
 * controller/ssh/quote.h.
 *
 * Trust: the server's host key must be in known_hosts (OpenSSH's format,
 * plain or hashed names, "[host]:port" for ports other than 22). An unknown
 * host is refused unless accept_new is set, which appends its key; a key
 * that differs from the known one, or of a type other than the known ones,
 * is always refused. Messages name the host, the key type, its SHA256
 * fingerprint and the known_hosts file, as OpenSSH does.
 *
 * A session is used by one thread at a time. */
#ifndef FL_CONTROLLER_SSH_SESSION_H
#define FL_CONTROLLER_SSH_SESSION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FL_SSH_DEFAULT_PORT 22

/* Where and who. Strings are borrowed for the duration of fl_ssh_open. */
struct fl_ssh_target {
    const char *name;          /* for messages: the inventory's name, or the address */
    const char *address;       /* IP address or host name */
    uint16_t port;             /* 0: 22 */
    const char *user;          /* NULL: the current user */
    const char *identity_file; /* NULL: the keys of ssh-agent ($SSH_AUTH_SOCK); "~/" is $HOME */
    const char *known_hosts;   /* NULL: ~/.ssh/known_hosts */
    bool accept_new;           /* append the key of a host not in known_hosts */
    const atomic_bool *cancel; /* NULL, or: fl_ssh_open gives up soon once it is true */
};

struct fl_ssh_session;

/* Connects, checks the host key, authenticates. Returns 0 with *out, or a
 * negative errno with err saying what went wrong and what to do:
 * -ETIMEDOUT, -ECONNREFUSED (and other connect errors), -EHOSTUNREACH,
 * -ENOKEY (host key unknown: not in known_hosts, and accept_new not set),
 * -EKEYREJECTED (host key changed, or known only by another type),
 * -EACCES (authentication),
 * -ECANCELED, -EPROTO (the SSH handshake failed, or the connection broke
 * while authenticating). An unknown host is appended only when, re-read
 * under a lock, known_hosts still knows no key of any type for it. "~/" in
 * identity_file and known_hosts is $HOME, else the user's home from the
 * password database. */
int fl_ssh_open(const struct fl_ssh_target *t, uint64_t deadline_ns, struct fl_ssh_session **out,
                char *err, size_t errlen);

/* Runs command with the remote user's shell, stdin empty (EOF is sent right
 * after the command starts). Collects stdout
 * and stderr together into out (NUL-terminated, at most cap - 1 bytes kept;
 * the rest is read and dropped) and the exit status into *exit_status (a
 * remote signal gives 128 + its number when known, else -1). out may be
 * NULL. Returns 0 or a negative errno with err filled; after an error other
 * than a command that could not start, the session is no longer usable (the
 * caller closes it). -ENOTCONN: no channel could be opened on the session
 * (the server went away, sshd restarted): nothing ran, and a new session may
 * well work. */
int fl_ssh_exec(struct fl_ssh_session *s, const char *command, uint64_t deadline_ns,
                int *exit_status, char *out, size_t cap, char *err, size_t errlen);

/* From any thread: the call in progress (and every later one) returns
 * -ECANCELED soon. */
void fl_ssh_cancel(struct fl_ssh_session *s);

/* Says goodbye (bounded by a short grace), closes the socket, frees, and
 * sets *s to NULL. NULL or *s NULL is a no-op. */
void fl_ssh_close(struct fl_ssh_session **s);

/* "~/x" -> "$HOME/x" into buf (the password database's home when $HOME is
 * unset); other paths are copied. 0, -ENOSPC, or -ENOENT (no home). */
int fl_ssh_expand_home(const char *path, char *buf, size_t len);

#endif
