/* A session's insides, shared by the files of controller/ssh (session.c,
 * knownhosts.c, sftp.c): the struct, and the waiting that bounds every
 * libssh2 call.
 *
 * libssh2 runs in non-blocking mode. A call that answers EAGAIN is retried
 * after fl_ssh_wait_io(), which polls the socket in the directions libssh2
 * says it is blocked on, in slices of at most SLICE_MS so that a cancel is
 * noticed, and never past the deadline of the current operation
 * (s->deadline). */
#ifndef FL_CONTROLLER_SSH_IO_H
#define FL_CONTROLLER_SSH_IO_H

#include <libssh2.h>
#include <libssh2_sftp.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "controller/ssh/session.h"

#define SLICE_MS 50
#define CLOSE_GRACE_NS (300ull * 1000000ull)
#define WAIT_FAILED (-100000) /* a libssh2 call gave up waiting: see s->io_err */

struct fl_ssh_session {
    int fd;
    LIBSSH2_SESSION *ssh;
    LIBSSH2_SFTP *sftp;
    uint64_t deadline; /* of the operation in progress */
    int io_err;        /* -ETIMEDOUT or -ECANCELED when WAIT_FAILED */
    atomic_bool cancelled;
    const atomic_bool *cancel_flag; /* the caller's, during fl_ssh_open only */
    char name[128];                 /* for messages */
    char where[300];                /* "address:port" */
};

/* Waits until s->fd is ready for events: 0, or -ETIMEDOUT at s->deadline,
 * -ECANCELED once cancelled, or poll's error. */
int fl_ssh_wait_fd(struct fl_ssh_session *s, short events);

/* libssh2 said EAGAIN: wait until the socket is ready the way it wants. */
int fl_ssh_wait_io(struct fl_ssh_session *s);

/* rc = expr, retried while it says EAGAIN; WAIT_FAILED when the deadline
 * passed or the session was cancelled (the reason in s->io_err). */
#define AGAIN(s, rc, expr)                                                                         \
    do {                                                                                           \
        while (((rc) = (expr)) == LIBSSH2_ERROR_EAGAIN) {                                          \
            int w_ = fl_ssh_wait_io(s);                                                            \
            if (w_ < 0) {                                                                          \
                (s)->io_err = w_;                                                                  \
                (rc) = WAIT_FAILED;                                                                \
                break;                                                                             \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* The same for calls that return a pointer, NULL with EAGAIN as last error. */
#define AGAIN_PTR(s, ptr, expr)                                                                    \
    do {                                                                                           \
        while (((ptr) = (expr)) == NULL &&                                                         \
               libssh2_session_last_errno((s)->ssh) == LIBSSH2_ERROR_EAGAIN) {                     \
            int w_ = fl_ssh_wait_io(s);                                                            \
            if (w_ < 0) {                                                                          \
                (s)->io_err = w_;                                                                  \
                break;                                                                             \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* libssh2's last message, or "unknown libssh2 error". */
const char *fl_ssh_last_error(struct fl_ssh_session *s);

/* The error for a call that failed (rc) while doing what: -ECANCELED or
 * -ETIMEDOUT when it gave up waiting (WAIT_FAILED, reason in s->io_err),
 * else -EPROTO; err says which. */
int fl_ssh_fail(struct fl_ssh_session *s, int rc, const char *what, char *err, size_t errlen);

#endif
