/* Waiting on a session's non-blocking libssh2 calls, within the deadline of
 * the operation in progress, and the error a failed call becomes. */
#include "controller/ssh/io.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>

#include "common/clock.h"

int fl_ssh_wait_fd(struct fl_ssh_session *s, short events)
{
    for (;;) {
        if (atomic_load(&s->cancelled) || (s->cancel_flag != NULL && atomic_load(s->cancel_flag)))
            return -ECANCELED;
        uint64_t now = fl_mono_ns();
        if (now >= s->deadline)
            return -ETIMEDOUT;
        uint64_t left_ms = (s->deadline - now + 999999u) / 1000000u;
        int slice = left_ms > SLICE_MS ? SLICE_MS : (int)left_ms;
        struct pollfd pfd = {.fd = s->fd, .events = events};
        int n = poll(&pfd, 1, slice);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

int fl_ssh_wait_io(struct fl_ssh_session *s)
{
    int dir = libssh2_session_block_directions(s->ssh);
    short ev = 0;
    if (dir & LIBSSH2_SESSION_BLOCK_INBOUND)
        ev |= POLLIN;
    if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)
        ev |= POLLOUT;
    return fl_ssh_wait_fd(s, ev != 0 ? ev : POLLIN);
}

const char *fl_ssh_last_error(struct fl_ssh_session *s)
{
    char *msg = NULL;
    libssh2_session_last_error(s->ssh, &msg, NULL, 0);
    return msg != NULL && *msg != '\0' ? msg : "unknown libssh2 error";
}

int fl_ssh_fail(struct fl_ssh_session *s, int rc, const char *what, char *err, size_t errlen)
{
    if (rc == WAIT_FAILED || (s->io_err < 0 && rc == 0)) {
        if (s->io_err == -ECANCELED) {
            snprintf(err, errlen, "%s: cancelled while %s", s->name, what);
            return -ECANCELED;
        }
        snprintf(err, errlen, "%s (%s): timed out while %s", s->name, s->where, what);
        return -ETIMEDOUT;
    }
    snprintf(err, errlen, "%s (%s): %s failed: %s", s->name, s->where, what, fl_ssh_last_error(s));
    return -EPROTO;
}
