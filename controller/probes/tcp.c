/* TCP probe: can a connection be opened to host:port?
 *
 * One attempt: uv_getaddrinfo (libuv's thread pool, so a slow resolver never
 * blocks the loop), then uv_tcp_connect to each address in turn until one
 * connects ("localhost" may give ::1 first to a service on 127.0.0.1 only);
 * success as soon as the handshake completes, and the connection is closed
 * at once.
 *
 *   RESOLVING ──► CONNECTING ──► CLOSING ──► end (in the close callback)
 *       │ error/cancel               ▲
 *       └──────────► end             │ error, success or cancel
 *
 * The runner bounds the attempt; cancel() cancels the resolution (or lets its
 * callback see the cancel) or closes the socket, whose pending connect then
 * fails with UV_ECANCELED before the close callback runs. */
#include "controller/probes/probe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

enum tcp_state {
    RESOLVING,
    CONNECTING,
    CLOSING,
};

struct tcp_attempt {
    struct fl_probe *p;
    enum tcp_state state;
    bool cancelled;
    uv_getaddrinfo_t gai;
    uv_tcp_t tcp;
    uv_connect_t connect;
    struct addrinfo *addrs; /* every address the name resolved to */
    struct addrinfo *cur;   /* the one being tried */
    bool retry;             /* the handle is closing to try cur->ai_next */
    bool ok;
    char detail[128];
};

static void connect_current(struct tcp_attempt *a);

static void on_closed(uv_handle_t *h)
{
    struct tcp_attempt *a = h->data;
    if (a->retry && !a->cancelled) {
        /* "localhost" may resolve to ::1 first while the service listens on
         * 127.0.0.1 only: the next address gets its turn */
        a->retry = false;
        a->cur = a->cur->ai_next;
        a->state = CONNECTING;
        connect_current(a);
        return;
    }
    struct fl_probe *p = a->p;
    uv_freeaddrinfo(a->addrs);
    bool ok = a->ok;
    char detail[sizeof(a->detail)];
    memcpy(detail, a->detail, sizeof(detail));
    free(a);
    fl_probe_attempt_end(p, ok, "%s", detail);
}

static void finish(struct tcp_attempt *a, bool ok, int status)
{
    if (a->state == CLOSING)
        return;
    a->state = CLOSING;
    a->ok = ok;
    if (ok)
        snprintf(a->detail, sizeof(a->detail), "connected");
    else
        snprintf(a->detail, sizeof(a->detail), "%s", uv_strerror(status));
    uv_close((uv_handle_t *)&a->tcp, on_closed);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct tcp_attempt *a = req->data;
    if (status == UV_ECANCELED || a->state == CLOSING)
        return; /* closing; on_closed ends the attempt */
    if (status < 0 && a->cur->ai_next != NULL && !a->cancelled) {
        a->retry = true;
        a->state = CLOSING;
        snprintf(a->detail, sizeof(a->detail), "%s", uv_strerror(status));
        uv_close((uv_handle_t *)&a->tcp, on_closed);
        return;
    }
    finish(a, status == 0, status);
}

static void connect_current(struct tcp_attempt *a)
{
    int rc = uv_tcp_init(fl_probe_loop(a->p), &a->tcp);
    if (rc < 0) {
        struct fl_probe *p = a->p;
        uv_freeaddrinfo(a->addrs);
        free(a);
        fl_probe_attempt_end(p, false, "cannot create socket: %s", uv_strerror(rc));
        return;
    }
    a->tcp.data = a;
    a->connect.data = a;
    rc = uv_tcp_connect(&a->connect, &a->tcp, a->cur->ai_addr, on_connect);
    if (rc < 0)
        finish(a, false, rc);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct tcp_attempt *a = req->data;
    struct fl_probe *p = a->p;
    if (a->cancelled || status < 0) {
        char detail[160];
        if (a->cancelled)
            snprintf(detail, sizeof(detail), "cancelled");
        else
            snprintf(detail, sizeof(detail), "cannot resolve %s: %s",
                     fl_probe_get_spec(p)->u.tcp.host, uv_strerror(status));
        uv_freeaddrinfo(res);
        free(a);
        fl_probe_attempt_end(p, false, "%s", detail);
        return;
    }
    a->addrs = a->cur = res;
    a->state = CONNECTING;
    connect_current(a);
}

static int tcp_start(struct fl_probe *p, void **attempt, char *err, size_t err_len)
{
    const struct fl_probe_tcp *spec = &fl_probe_get_spec(p)->u.tcp;
    struct tcp_attempt *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    a->p = p;
    a->state = RESOLVING;
    a->gai.data = a;
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)spec->port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    int rc = uv_getaddrinfo(fl_probe_loop(p), &a->gai, on_resolved, spec->host, port, &hints);
    if (rc < 0) {
        snprintf(err, err_len, "cannot resolve %s: %s", spec->host, uv_strerror(rc));
        free(a);
        return rc;
    }
    *attempt = a;
    return 0;
}

static void tcp_cancel(void *attempt)
{
    struct tcp_attempt *a = attempt;
    a->cancelled = true;
    switch (a->state) {
    case RESOLVING:
        /* Fails when the lookup is already running; its callback then ends. */
        uv_cancel((uv_req_t *)&a->gai);
        break;
    case CONNECTING:
        finish(a, false, UV_ECANCELED);
        break;
    case CLOSING:
        break;
    }
}

const struct fl_probe_kind fl_probe_kind_tcp = {
    .name = "tcp",
    .start = tcp_start,
    .cancel = tcp_cancel,
};
