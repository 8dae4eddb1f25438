#include "tests/support/raw_peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/conn.h"
#include "common/frame.h"
#include "common/pbutil.h"

int raw_connect(struct raw_peer *p, uint16_t port)
{
    return raw_connect_from(p, NULL, "127.0.0.1", port);
}

int raw_connect_from(struct raw_peer *p, const char *from, const char *to, uint16_t port)
{
    memset(p, 0, sizeof(*p));
    p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (p->fd < 0)
        return -errno;
    struct sockaddr_in src = {.sin_family = AF_INET};
    if (from != NULL && (inet_pton(AF_INET, from, &src.sin_addr) != 1 ||
                         bind(p->fd, (struct sockaddr *)&src, sizeof(src)) != 0)) {
        int rc = errno ? -errno : -EINVAL;
        close(p->fd);
        p->fd = -1;
        return rc;
    }
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, to, &sin.sin_addr) != 1) {
        close(p->fd);
        p->fd = -1;
        return -EINVAL;
    }
    if (connect(p->fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        int rc = -errno;
        close(p->fd);
        p->fd = -1;
        return rc;
    }
    return 0;
}

void raw_close(struct raw_peer *p)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    fl_auth_wipe(&p->auth);
}

int raw_send_bytes(struct raw_peer *p, const void *data, size_t len)
{
    const uint8_t *d = data;
    while (len > 0) {
        ssize_t n = send(p->fd, d, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        d += n;
        len -= (size_t)n;
    }
    return 0;
}

int raw_send_frame(struct raw_peer *p, const void *payload, size_t len)
{
    uint8_t h[FL_FRAME_HEADER];
    fl_frame_put_header(h, (uint32_t)len);
    int rc = raw_send_bytes(p, h, sizeof(h));
    return rc < 0 ? rc : raw_send_bytes(p, payload, len);
}

/* Reads exactly len bytes before the deadline. 1 done, 0 closed, <0 error. */
static int read_full(int fd, uint8_t *buf, size_t len, uint64_t deadline)
{
    size_t got = 0;
    while (got < len) {
        uint64_t now = fl_mono_ms();
        if (now >= deadline)
            return -ETIMEDOUT;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)(deadline - now));
        if (r < 0 && errno != EINTR)
            return -errno;
        if (r <= 0)
            continue;
        ssize_t n = recv(fd, buf + got, len - got, 0);
        if (n == 0)
            return 0;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -errno;
        }
        got += (size_t)n;
    }
    return 1;
}

long raw_recv_frame(struct raw_peer *p, uint8_t *buf, size_t cap, int timeout_ms)
{
    uint64_t deadline = fl_mono_ms() + (uint64_t)timeout_ms;
    uint8_t h[FL_FRAME_HEADER];
    int r = read_full(p->fd, h, sizeof(h), deadline);
    if (r <= 0)
        return r;
    uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    if (len > cap || len == 0)
        return -EMSGSIZE;
    r = read_full(p->fd, buf, len, deadline);
    if (r <= 0)
        return r == 0 ? -EPIPE : r;
    return (long)len;
}

int raw_wait_closed(struct raw_peer *p, int timeout_ms, size_t *received)
{
    uint64_t deadline = fl_mono_ms() + (uint64_t)timeout_ms;
    size_t total = 0;
    for (;;) {
        uint64_t now = fl_mono_ms();
        if (now >= deadline)
            break;
        struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)(deadline - now));
        if (r <= 0)
            continue;
        uint8_t buf[4096];
        ssize_t n = recv(p->fd, buf, sizeof(buf), 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) {
            if (received)
                *received = total;
            return 0;
        }
        if (n > 0)
            total += (size_t)n;
    }
    if (received)
        *received = total;
    return -ETIMEDOUT;
}

int raw_handshake(struct raw_peer *p, const struct fl_key *key)
{
    fl_auth_init(&p->auth, FL_ROLE_CONTROLLER, key);
    uint8_t nonce[FL_NONCE_LEN];
    int rc = fl_auth_hello(&p->auth, nonce);
    if (rc < 0)
        return rc;
    Faultline__Hello hello = FAULTLINE__HELLO__INIT;
    hello.protocol = FL_PROTOCOL_VERSION;
    hello.nonce.data = nonce;
    hello.nonce.len = sizeof(nonce);
    Faultline__Handshake hs = FAULTLINE__HANDSHAKE__INIT;
    hs.step_case = FAULTLINE__HANDSHAKE__STEP_HELLO;
    hs.hello = &hello;
    uint8_t buf[4096];
    size_t n = faultline__handshake__pack(&hs, buf);
    if ((rc = raw_send_frame(p, buf, n)) < 0)
        return rc;

    long len = raw_recv_frame(p, buf, sizeof(buf), 3000);
    if (len <= 0)
        return len == 0 ? -ECONNRESET : (int)len;
    Faultline__Handshake *ch = fl_handshake_unpack(buf, (size_t)len);
    if (ch == NULL || ch->step_case != FAULTLINE__HANDSHAKE__STEP_CHALLENGE) {
        if (ch)
            faultline__handshake__free_unpacked(ch, NULL);
        return -EPROTO;
    }
    if (ch->challenge->protocol != FL_PROTOCOL_VERSION) {
        faultline__handshake__free_unpacked(ch, NULL);
        return -EPROTONOSUPPORT; /* the agent's refusal of our version */
    }
    uint8_t proof[FL_MAC_LEN];
    rc = fl_auth_respond(&p->auth, ch->challenge->nonce.data, ch->challenge->nonce.len,
                         ch->challenge->proof.data, ch->challenge->proof.len, proof);
    faultline__handshake__free_unpacked(ch, NULL);
    if (rc < 0)
        return rc;
    Faultline__Proof pr = FAULTLINE__PROOF__INIT;
    pr.proof.data = proof;
    pr.proof.len = sizeof(proof);
    Faultline__Handshake out = FAULTLINE__HANDSHAKE__INIT;
    out.step_case = FAULTLINE__HANDSHAKE__STEP_PROOF;
    out.proof = &pr;
    n = faultline__handshake__pack(&out, buf);
    if ((rc = raw_send_frame(p, buf, n)) < 0)
        return rc;

    Faultline__Envelope *welcome = raw_recv_envelope(p, 3000);
    if (welcome == NULL)
        return -EACCES;
    rc = welcome->msg_case == FAULTLINE__ENVELOPE__MSG_WELCOME ? 0 : -EPROTO;
    faultline__envelope__free_unpacked(welcome, NULL);
    return rc;
}

size_t raw_seal(struct raw_peer *p, const Faultline__Envelope *env, uint8_t *out, size_t cap)
{
    size_t len = faultline__envelope__get_packed_size(env);
    if (FL_FRAME_HEADER + FL_SEAL_OVERHEAD + len > cap)
        return 0;
    fl_frame_put_header(out, (uint32_t)(FL_SEAL_OVERHEAD + len));
    faultline__envelope__pack(env, out + FL_FRAME_HEADER + FL_SEQ_LEN);
    if (fl_auth_seal(&p->auth, out + FL_FRAME_HEADER, len) < 0)
        return 0;
    return FL_FRAME_HEADER + FL_SEAL_OVERHEAD + len;
}

Faultline__Envelope *raw_recv_envelope(struct raw_peer *p, int timeout_ms)
{
    static uint8_t buf[FL_FRAME_MAX];
    long len = raw_recv_frame(p, buf, sizeof(buf), timeout_ms);
    if (len <= 0)
        return NULL;
    const uint8_t *payload;
    size_t plen;
    if (fl_auth_open(&p->auth, buf, (size_t)len, &payload, &plen) < 0)
        return NULL;
    return faultline__envelope__unpack(NULL, plen, payload);
}

Faultline__Envelope *raw_request(struct raw_peer *p, const Faultline__Envelope *env, int timeout_ms)
{
    uint8_t buf[8192];
    size_t n = raw_seal(p, env, buf, sizeof(buf));
    if (n == 0 || raw_send_bytes(p, buf, n) < 0)
        return NULL;
    return raw_recv_envelope(p, timeout_ms);
}

Faultline__Envelope *raw_inject_pause(struct raw_peer *p, const char *name, pid_t pid,
                                      uint64_t duration_ms, bool detached, int timeout_ms)
{
    Faultline__ProcessSelector sel = FAULTLINE__PROCESS_SELECTOR__INIT;
    sel.by_case = FAULTLINE__PROCESS_SELECTOR__BY_PID;
    sel.pid = pid;
    Faultline__PauseProcess pp = FAULTLINE__PAUSE_PROCESS__INIT;
    pp.target = &sel;
    Faultline__FaultSpec spec = FAULTLINE__FAULT_SPEC__INIT;
    spec.name = fl_pb_str(name);
    spec.duration_ms = duration_ms;
    spec.kind_case = FAULTLINE__FAULT_SPEC__KIND_PAUSE_PROCESS;
    spec.pause_process = &pp;
    Faultline__InjectRequest ir = FAULTLINE__INJECT_REQUEST__INIT;
    ir.spec = &spec;
    ir.detached = detached;
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = 1;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_INJECT;
    env.inject = &ir;
    return raw_request(p, &env, timeout_ms);
}
