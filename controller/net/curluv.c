/* libcurl's multi interface on a libuv loop (curluv.h), after curl's
 * docs/examples/multi-uv.c and the CURLMOPT_SOCKETFUNCTION and
 * CURLMOPT_TIMERFUNCTION pages, with every error checked:
 *
 *   - curl's socket callback keeps one uv_poll_t per curl socket (struct
 *     sock, on the driver's list), started for the events curl asks and
 *     closed on CURL_POLL_REMOVE; a socket libuv cannot watch is refused
 *     (-1: curl fails the transfers on it, they end with their error);
 *   - curl's timer callback (re)arms the one uv_timer_t, stops it for -1,
 *     and arms 0 as "on the next loop turn"; it never calls curl;
 *   - a poll event, or a poll error (CURL_CSELECT_ERR: libuv has stopped
 *     that poll, and a refused connect arrives this way), and the timer
 *     call curl_multi_socket_action(), then the pump: collect every
 *     finished transfer (curl_multi_info_read), take them all out of the
 *     multi, then hand them back one by one — never while info_read is
 *     iterating, so a callback may add, cancel or close.
 *
 * A transfer, its state changed in the places named:
 *
 *   IDLE ──add──► RUNNING ──pump: done, removed──► FINISHED ──pump: callback──► IDLE
 *                    │           close: removed, FL_CURLUV_CLOSED ──┘   │
 *                    └──────────────cancel: removed, no callback ───────┴──► IDLE
 *
 * Close: the transfers out of the multi before curl_multi_cleanup (curl's
 * order), each handed back once; then the cleanup (curl reports its sockets
 * with CURL_POLL_REMOVE), then every poll curl did not report and the timer
 * are closed; the last close callback calls the owner's and frees the
 * driver. Nothing frees the driver synchronously, so a close made from a
 * transfer callback leaves the pump that made the callback safe. */
#include "controller/net/curluv.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"

enum { X_IDLE, X_RUNNING, X_FINISHED };

struct xlist {
    struct fl_curluv_xfer *head, *tail;
};

struct sock {
    uv_poll_t poll;
    struct fl_curluv *cu;
    curl_socket_t fd;
    struct sock *prev, *next; /* the driver's live sockets */
};

struct fl_curluv {
    uv_loop_t *loop;
    char who[32];
    CURLM *multi; /* NULL once cleaned up */
    uv_timer_t timer;
    struct sock *socks;
    struct xlist running, finished;
    size_t n_xfers;
    size_t n_open; /* handles whose close callback has not run */
    bool closing;
    void (*closed)(void *arg);
    void *closed_arg;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_result = CURLE_FAILED_INIT;

static void global_init(void)
{
    global_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int fl_curluv_global_init(void)
{
    pthread_once(&global_once, global_init);
    return global_result == CURLE_OK ? 0 : -ENOMEM;
}

/* ------------------------------------------------------------ lists */

static void xlist_push(struct xlist *l, struct fl_curluv_xfer *x)
{
    x->next = NULL;
    x->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = x;
    else
        l->head = x;
    l->tail = x;
}

static void xlist_unlink(struct xlist *l, struct fl_curluv_xfer *x)
{
    if (x->prev != NULL)
        x->prev->next = x->next;
    else
        l->head = x->next;
    if (x->next != NULL)
        x->next->prev = x->prev;
    else
        l->tail = x->prev;
    x->prev = x->next = NULL;
}

/* ------------------------------------------------------------ handles */

static void handle_closed(struct fl_curluv *cu)
{
    assert(cu->n_open > 0);
    if (--cu->n_open > 0)
        return;
    assert(cu->closing); /* the timer is open until then */
    if (cu->closed != NULL)
        cu->closed(cu->closed_arg);
    free(cu);
}

static void on_timer_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

static void on_sock_closed(uv_handle_t *h)
{
    struct sock *s = h->data;
    struct fl_curluv *cu = s->cu;
    free(s);
    handle_closed(cu);
}

static void sock_close(struct sock *s)
{
    struct fl_curluv *cu = s->cu;
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        cu->socks = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    uv_poll_stop(&s->poll); /* before curl closes the fd (uv_poll_t's rule) */
    uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

static struct sock *sock_open(struct fl_curluv *cu, curl_socket_t fd)
{
    struct sock *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        fl_warn("%s: out of memory for a socket watch", cu->who);
        return NULL;
    }
    int rc = uv_poll_init_socket(cu->loop, &s->poll, fd);
    if (rc < 0) {
        fl_warn("%s: cannot watch socket %d: uv_poll_init_socket: %s", cu->who, (int)fd,
                uv_strerror(rc));
        free(s);
        return NULL;
    }
    s->poll.data = s;
    s->cu = cu;
    s->fd = fd;
    s->next = cu->socks;
    if (cu->socks != NULL)
        cu->socks->prev = s;
    cu->socks = s;
    cu->n_open++;
    CURLMcode mc = curl_multi_assign(cu->multi, fd, s);
    if (mc != CURLM_OK) {
        fl_warn("%s: curl_multi_assign: %s", cu->who, curl_multi_strerror(mc));
        sock_close(s);
        return NULL;
    }
    return s;
}

/* ------------------------------------------------------------ the pump */

/* Hands every FINISHED transfer back, oldest first. A callback may close the
 * driver: close then hands back the rest itself and the list is empty. */
static void deliver(struct fl_curluv *cu)
{
    struct fl_curluv_xfer *x;
    while ((x = cu->finished.head) != NULL) {
        xlist_unlink(&cu->finished, x);
        x->state = X_IDLE;
        cu->n_xfers--;
        /* x may be freed by its callback: nothing of it is read after */
        x->done(x->ctx, x->easy, x->result);
    }
}

/* x, out of the running list, out of the multi too: FINISHED. */
static void finish(struct fl_curluv *cu, struct fl_curluv_xfer *x, CURLcode result)
{
    CURLMcode mc = curl_multi_remove_handle(cu->multi, x->easy);
    if (mc != CURLM_OK)
        fl_warn("%s: curl_multi_remove_handle: %s", cu->who, curl_multi_strerror(mc));
    x->result = result;
    x->state = X_FINISHED;
    xlist_push(&cu->finished, x);
}

static void pump(struct fl_curluv *cu)
{
    assert(cu->finished.head == NULL);     /* every pump and close empties it */
    struct xlist collected = {NULL, NULL}; /* done, still in the multi */
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(cu->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        CURLcode c = curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        assert(c == CURLE_OK && priv != NULL); /* fl_curluv_add set it */
        struct fl_curluv_xfer *x = (struct fl_curluv_xfer *)priv;
        assert(x->cu == cu && x->state == X_RUNNING);
        x->result = msg->data.result;
        xlist_unlink(&cu->running, x);
        xlist_push(&collected, x);
    }
    /* out of the multi only now that info_read is done with its messages */
    struct fl_curluv_xfer *x;
    while ((x = collected.head) != NULL) {
        xlist_unlink(&collected, x);
        finish(cu, x, x->result);
    }
    deliver(cu);
}

static void socket_action(struct fl_curluv *cu, curl_socket_t fd, int flags)
{
    int running;
    CURLMcode mc = curl_multi_socket_action(cu->multi, fd, flags, &running);
    if (mc != CURLM_OK)
        fl_warn("%s: curl_multi_socket_action: %s", cu->who, curl_multi_strerror(mc));
    pump(cu);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sock *s = h->data; /* curl may close it inside socket_action */
    int flags = 0;
    if (status < 0) {
        /* libuv stopped this poll; events mean nothing. curl must look at
         * the socket now (a refused connect), not at its timeout. */
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    socket_action(s->cu, s->fd, flags);
}

static void on_timer(uv_timer_t *t)
{
    socket_action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

/* ------------------------------------------------------------ curl's callbacks */

/* CURLMOPT_TIMERFUNCTION: only (re)arms or stops the uv timer. */
static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct fl_curluv *cu = userp;
    if (timeout_ms < 0 || cu->closing) {
        uv_timer_stop(&cu->timer);
        return 0;
    }
    /* 0: as soon as possible, which is the next loop turn, never from here */
    int rc = uv_timer_start(&cu->timer, on_timer, (uint64_t)timeout_ms, 0);
    if (rc < 0) {
        fl_warn("%s: cannot arm curl's timer: %s", cu->who, uv_strerror(rc));
        return -1;
    }
    return 0;
}

/* CURLMOPT_SOCKETFUNCTION: one uv_poll_t per socket. */
static int curl_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct fl_curluv *cu = userp;
    struct sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            if (!cu->closing)
                curl_multi_assign(cu->multi, fd, NULL);
            sock_close(s);
        }
        return 0;
    }
    if (cu->closing)
        return -1; /* nothing new is watched once closing */
    if (s == NULL && (s = sock_open(cu, fd)) == NULL)
        return -1;
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    int rc = uv_poll_start(&s->poll, events, on_poll);
    if (rc < 0) {
        fl_warn("%s: cannot watch socket %d: uv_poll_start: %s", cu->who, (int)fd, uv_strerror(rc));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ the API */

int fl_curluv_new(uv_loop_t *loop, const char *who, struct fl_curluv **out)
{
    int rc = fl_curluv_global_init();
    if (rc < 0)
        return rc;
    struct fl_curluv *cu = calloc(1, sizeof(*cu));
    if (cu == NULL)
        return -ENOMEM;
    cu->loop = loop;
    snprintf(cu->who, sizeof(cu->who), "%s", who);
    cu->multi = curl_multi_init();
    if (cu->multi == NULL) {
        free(cu);
        return -ENOMEM;
    }
    if (curl_multi_setopt(cu->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb) != CURLM_OK ||
        curl_multi_setopt(cu->multi, CURLMOPT_SOCKETDATA, cu) != CURLM_OK ||
        curl_multi_setopt(cu->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb) != CURLM_OK ||
        curl_multi_setopt(cu->multi, CURLMOPT_TIMERDATA, cu) != CURLM_OK) {
        curl_multi_cleanup(cu->multi);
        free(cu);
        return -EINVAL;
    }
    rc = uv_timer_init(loop, &cu->timer);
    if (rc < 0) {
        curl_multi_cleanup(cu->multi);
        free(cu);
        return rc;
    }
    cu->timer.data = cu;
    cu->n_open = 1;
    *out = cu;
    return 0;
}

int fl_curluv_add(struct fl_curluv *cu, struct fl_curluv_xfer *x, CURL *easy,
                  fl_curluv_done_fn done, void *ctx, char *err, size_t err_len)
{
    assert(x->state == X_IDLE);
    if (cu->closing) {
        snprintf(err, err_len, "%s: closing, no new transfer", cu->who);
        return -ESHUTDOWN;
    }
    CURLcode c = curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)x);
    if (c != CURLE_OK) {
        snprintf(err, err_len, "cannot set CURLOPT_PRIVATE: %s", curl_easy_strerror(c));
        return -EINVAL;
    }
    *x = (struct fl_curluv_xfer){.cu = cu, .easy = easy, .done = done, .ctx = ctx};
    CURLMcode mc = curl_multi_add_handle(cu->multi, easy);
    if (mc != CURLM_OK) {
        snprintf(err, err_len, "cannot start transfer: %s", curl_multi_strerror(mc));
        return mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
    }
    x->state = X_RUNNING;
    xlist_push(&cu->running, x);
    cu->n_xfers++;
    return 0;
}

bool fl_curluv_cancel(struct fl_curluv_xfer *x)
{
    struct fl_curluv *cu = x->cu;
    switch (x->state) {
    case X_RUNNING: {
        xlist_unlink(&cu->running, x);
        CURLMcode mc = curl_multi_remove_handle(cu->multi, x->easy);
        if (mc != CURLM_OK)
            fl_warn("%s: curl_multi_remove_handle: %s", cu->who, curl_multi_strerror(mc));
        break;
    }
    case X_FINISHED: /* out of the multi already, waiting for its callback */
        xlist_unlink(&cu->finished, x);
        break;
    default:
        return false;
    }
    x->state = X_IDLE;
    cu->n_xfers--;
    return true;
}

size_t fl_curluv_count(const struct fl_curluv *cu)
{
    return cu->n_xfers;
}

void fl_curluv_close(struct fl_curluv *cu, void (*closed)(void *arg), void *arg)
{
    if (cu->closing)
        return;
    cu->closing = true;
    cu->closed = closed;
    cu->closed_arg = arg;
    /* easies out of the multi before its cleanup; those that finished keep
     * their result and go first */
    struct fl_curluv_xfer *x;
    while ((x = cu->running.head) != NULL) {
        xlist_unlink(&cu->running, x);
        finish(cu, x, FL_CURLUV_CLOSED);
    }
    deliver(cu);
    assert(cu->n_xfers == 0 && cu->running.head == NULL);
    /* curl reports the sockets it still has with CURL_POLL_REMOVE here */
    CURLMcode mc = curl_multi_cleanup(cu->multi);
    if (mc != CURLM_OK)
        fl_warn("%s: curl_multi_cleanup: %s", cu->who, curl_multi_strerror(mc));
    cu->multi = NULL;
    while (cu->socks != NULL) /* any it did not: never leave a handle open */
        sock_close(cu->socks);
    uv_timer_stop(&cu->timer);
    uv_close((uv_handle_t *)&cu->timer, on_timer_closed);
}
