/* Redis write client: hiredis async on the libuv loop (rediswrite.h).
 *
 * One operation at a time:
 *
 *   kick ──► [sentinels: ask each in turn ──► master address] ──► master:
 *            XADD (+ WAIT) or XRANGE pages ──► finish (callback)
 *   any error or the deadline: the connections are dropped, and with
 *   sentinels the master is forgotten: the next operation asks again.
 *
 * Contexts and their lifetime. hiredis frees a context itself when its
 * connection fails or closes (after calling the pending replies' callbacks
 * with NULL, then the connect or disconnect callback); redisAsyncFree called
 * inside one of its callbacks is deferred until the callback returns, and
 * then calls the remaining callbacks. So a context we give up on is never
 * freed on the spot: it is marked dead (its callbacks are ignored from then
 * on) and put in a graveyard that a zero timer empties on a later loop
 * iteration, outside any hiredis callback, freeing the context (unless
 * hiredis already did) and our wrapper. The client itself is freed only once
 * the graveyard is empty and its timers are closed. */
#include "controller/probes/rediswrite.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"

enum op_kind {
    OP_NONE,
    OP_WRITE,
    OP_READBACK,
};

/* What a reply callback answers (its privdata). */
enum reply_kind {
    K_SENTINEL = 1,
    K_XADD,
    K_WAIT,
    K_XRANGE,
};

struct rctx {
    struct fl_rediswrite *w;
    redisAsyncContext *ac;
    bool sentinel;
    bool dead; /* given up on: its callbacks are ignored */
    bool gone; /* hiredis freed (or is freeing) ac itself */
    struct rctx *next_grave;
};

struct hostport {
    char ip[64];
    int port;
};

struct fl_rediswrite {
    uv_loop_t *loop;
    char key[FL_REDISWRITE_KEY_MAX + 1];
    size_t key_len;
    char run_id[FL_REDISWRITE_RUN_ID_MAX + 1];
    size_t run_id_len;
    unsigned wait_replicas;

    struct hostport sentinels[FL_REDISWRITE_MAX_SENTINELS];
    size_t n_sentinels; /* 0: a fixed address in master */
    char master_name[128];
    size_t first_sentinel; /* the one that answered last is asked first */
    size_t sentinel_tries;

    struct hostport master;
    bool master_known;
    char master_text[80];

    struct rctx *conn; /* to the master, or NULL */
    struct rctx *sent; /* to the sentinel being asked, or NULL */
    struct rctx *graves;

    uv_timer_t timer; /* the operation's deadline */
    uv_timer_t kick;  /* starts it on the next iteration */
    uv_timer_t reap;  /* empties the graveyard */

    enum op_kind op;
    uint64_t timeout_ms;
    char seq_text[24];
    char at_text[24];
    fl_rediswrite_cb wcb;
    fl_rediswrite_readback_cb rcb;
    void *arg;
    char last_error[400]; /* why the last sentinel did not answer */
    uint64_t *seqs;
    size_t n_seqs, cap_seqs;
    char last_id[64]; /* read-back: next page after this entry id */

    bool closing;
    int handles;
    void (*closed)(void *arg);
    void *closed_arg;
};

/* hiredis on the libuv loop. Not hiredis 0.14's adapter
 * (hiredis/adapters/libuv.h): when libuv reports a poll error -- which it
 * does for a socket with an error pending, a refused connect or a reset --
 * that adapter returns without telling hiredis, libuv has stopped the poll,
 * and the operation waited for its timeout (tests/unit/
 * rediswrite_errors_test.c). This one is the same but for that case: it lets
 * hiredis handle the events it was waiting for, so that hiredis makes the
 * call that returns the error and gives up on the connection, as the
 * adapter of hiredis 1.x does. */
struct uvev {
    redisAsyncContext *ac; /* NULL once hiredis has cleaned up */
    uv_poll_t poll;
    int events;
};

static void uvev_poll(uv_poll_t *h, int status, int events)
{
    struct uvev *p = h->data;
    int ev = status < 0 ? p->events : events;
    if (p->ac != NULL && (ev & UV_READABLE))
        redisAsyncHandleRead(p->ac);
    if (p->ac != NULL && (ev & UV_WRITABLE))
        redisAsyncHandleWrite(p->ac);
}

static void uvev_set(struct uvev *p, int events)
{
    p->events = events;
    if (events != 0)
        uv_poll_start(&p->poll, events, uvev_poll);
    else
        uv_poll_stop(&p->poll);
}

static void uvev_add_read(void *d)
{
    struct uvev *p = d;
    uvev_set(p, p->events | UV_READABLE);
}

static void uvev_del_read(void *d)
{
    struct uvev *p = d;
    uvev_set(p, p->events & ~UV_READABLE);
}

static void uvev_add_write(void *d)
{
    struct uvev *p = d;
    uvev_set(p, p->events | UV_WRITABLE);
}

static void uvev_del_write(void *d)
{
    struct uvev *p = d;
    uvev_set(p, p->events & ~UV_WRITABLE);
}

static void uvev_closed(uv_handle_t *h)
{
    free(h->data);
}

static void uvev_cleanup(void *d)
{
    struct uvev *p = d;
    p->ac = NULL;
    uv_close((uv_handle_t *)&p->poll, uvev_closed);
}

static int uvev_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    if (ac->ev.data != NULL)
        return REDIS_ERR;
    struct uvev *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return REDIS_ERR;
    if (uv_poll_init(loop, &p->poll, ac->c.fd) != 0) {
        free(p);
        return REDIS_ERR;
    }
    p->ac = ac;
    p->poll.data = p;
    ac->ev.addRead = uvev_add_read;
    ac->ev.delRead = uvev_del_read;
    ac->ev.addWrite = uvev_add_write;
    ac->ev.delWrite = uvev_del_write;
    ac->ev.cleanup = uvev_cleanup;
    ac->ev.data = p;
    return REDIS_OK;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv);
static void ask_sentinel(struct fl_rediswrite *w);
static void finish(struct fl_rediswrite *w, bool ok, const char *detail);

static void free_if_done(struct fl_rediswrite *w)
{
    if (!w->closing || w->handles > 0 || w->graves != NULL)
        return;
    void (*closed)(void *) = w->closed;
    void *arg = w->closed_arg;
    free(w->seqs);
    free(w);
    if (closed != NULL)
        closed(arg);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct fl_rediswrite *w = h->data;
    w->handles--;
    free_if_done(w);
}

static void on_reap(uv_timer_t *t)
{
    struct fl_rediswrite *w = t->data;
    while (w->graves != NULL) {
        struct rctx *r = w->graves;
        w->graves = r->next_grave;
        if (!r->gone) {
            r->gone = true;
            redisAsyncFree(r->ac); /* its callbacks see r->dead */
        }
        free(r);
    }
    if (w->closing && !uv_is_closing((uv_handle_t *)&w->reap))
        uv_close((uv_handle_t *)&w->reap, on_timer_closed);
}

/* Gives up on r (NULL: nothing). */
static void bury(struct fl_rediswrite *w, struct rctx *r)
{
    if (r == NULL)
        return;
    if (w->conn == r)
        w->conn = NULL;
    if (w->sent == r)
        w->sent = NULL;
    if (r->dead)
        return;
    r->dead = true;
    r->next_grave = w->graves;
    w->graves = r;
    if (!uv_is_closing((uv_handle_t *)&w->reap))
        uv_timer_start(&w->reap, on_reap, 0, 0);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct rctx *r = ac->data;
    if (status == REDIS_OK)
        return;
    r->gone = true; /* hiredis frees it when we return */
    if (r->dead)
        return;
    struct fl_rediswrite *w = r->w;
    char why[200];
    snprintf(why, sizeof(why), "%s", ac->errstr[0] ? ac->errstr : "connection failed");
    bool was_sentinel = r == w->sent;
    bool was_conn = r == w->conn;
    bury(w, r);
    if (w->op == OP_NONE)
        return;
    if (was_sentinel) {
        snprintf(w->last_error, sizeof(w->last_error), "%s", why);
        ask_sentinel(w);
    } else if (was_conn) {
        /* the pending replies are called with NULL next: they see r dead */
        char d[320];
        snprintf(d, sizeof(d), "connect to %s: %s", w->master_text, why);
        finish(w, false, d);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    struct rctx *r = ac->data;
    r->gone = true;
    bury(r->w, r);
}

/* A new context to ip:port, attached to the loop, or NULL with why. */
static struct rctx *connect_to(struct fl_rediswrite *w, const struct hostport *hp, bool sentinel,
                               char *why, size_t why_len)
{
    struct rctx *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        snprintf(why, why_len, "out of memory");
        return NULL;
    }
    redisAsyncContext *ac = redisAsyncConnect(hp->ip, hp->port);
    if (ac == NULL) {
        free(r);
        snprintf(why, why_len, "out of memory");
        return NULL;
    }
    if (ac->err) {
        snprintf(why, why_len, "%s", ac->errstr);
        redisAsyncFree(ac);
        free(r);
        return NULL;
    }
    if (uvev_attach(ac, w->loop) != REDIS_OK) {
        snprintf(why, why_len, "cannot watch the connection's socket");
        redisAsyncFree(ac);
        free(r);
        return NULL;
    }
    r->w = w;
    r->ac = ac;
    r->sentinel = sentinel;
    ac->data = r;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return r;
}

/* Ends the operation; the callback is called last (it may close w). */
static void finish(struct fl_rediswrite *w, bool ok, const char *detail)
{
    assert(w->op != OP_NONE);
    uv_timer_stop(&w->timer);
    uv_timer_stop(&w->kick);
    enum op_kind op = w->op;
    w->op = OP_NONE;
    if (!ok) {
        bury(w, w->conn);
        bury(w, w->sent);
        if (w->n_sentinels > 0)
            w->master_known = false; /* ask again (a sentinel-aware client's rule) */
    }
    void *arg = w->arg;
    if (op == OP_WRITE) {
        fl_rediswrite_cb cb = w->wcb;
        cb(arg, ok, ok ? fl_now_ms() : 0, detail);
        return;
    }
    fl_rediswrite_readback_cb cb = w->rcb;
    uint64_t *seqs = w->seqs;
    size_t n = w->n_seqs;
    w->seqs = NULL;
    w->n_seqs = w->cap_seqs = 0;
    if (ok)
        cb(arg, seqs, n, NULL);
    else
        cb(arg, NULL, 0, detail);
    free(seqs);
}

static void fail(struct fl_rediswrite *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail(struct fl_rediswrite *w, const char *fmt, ...)
{
    char detail[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    finish(w, false, detail);
}

static void send_xrange(struct fl_rediswrite *w)
{
    char start[80];
    if (w->last_id[0] == '\0')
        snprintf(start, sizeof(start), "-");
    else
        snprintf(start, sizeof(start), "(%s", w->last_id);
    if (redisAsyncCommand(w->conn->ac, on_reply, (void *)(uintptr_t)K_XRANGE,
                          "XRANGE %b %s + COUNT %d", w->key, w->key_len, start,
                          FL_REDISWRITE_READBACK_PAGE) != REDIS_OK)
        fail(w, "read-back on %s: %s", w->master_text, w->conn->ac->errstr);
}

/* Sends the operation to the master, connecting first if need be (hiredis
 * queues commands until the connection is up). */
static void send_to_master(struct fl_rediswrite *w)
{
    if (w->conn == NULL) {
        char why[200];
        w->conn = connect_to(w, &w->master, false, why, sizeof(why));
        if (w->conn == NULL) {
            fail(w, "connect to %s: %s", w->master_text, why);
            return;
        }
    }
    redisAsyncContext *ac = w->conn->ac;
    if (w->op == OP_READBACK) {
        w->last_id[0] = '\0';
        send_xrange(w);
        return;
    }
    if (redisAsyncCommand(ac, on_reply, (void *)(uintptr_t)K_XADD, "XADD %b * run %b seq %s at %s",
                          w->key, w->key_len, w->run_id, w->run_id_len, w->seq_text,
                          w->at_text) != REDIS_OK) {
        fail(w, "write to %s: %s", w->master_text, ac->errstr);
        return;
    }
    if (w->wait_replicas == 0)
        return;
    uint64_t t = w->timeout_ms * 3 / 4;
    if (t == 0)
        t = 1; /* WAIT 0 would wait for ever */
    if (redisAsyncCommand(ac, on_reply, (void *)(uintptr_t)K_WAIT, "WAIT %u %" PRIu64,
                          w->wait_replicas, t) != REDIS_OK)
        fail(w, "wait on %s: %s", w->master_text, ac->errstr);
}

static void set_master(struct fl_rediswrite *w, const char *ip, int port)
{
    if (w->conn != NULL && (strcmp(w->master.ip, ip) != 0 || w->master.port != port))
        bury(w, w->conn);
    snprintf(w->master.ip, sizeof(w->master.ip), "%s", ip);
    w->master.port = port;
    w->master_known = true;
    if (strchr(ip, ':') != NULL)
        snprintf(w->master_text, sizeof(w->master_text), "[%s]:%d", ip, port);
    else
        snprintf(w->master_text, sizeof(w->master_text), "%s:%d", ip, port);
}

static bool numeric_ip(const char *s)
{
    unsigned char a[16];
    return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

static void sentinel_answer(struct fl_rediswrite *w, const redisReply *rep)
{
    struct hostport *s =
        &w->sentinels[(w->first_sentinel + w->sentinel_tries - 1) % w->n_sentinels];
    if (rep->type == REDIS_REPLY_NIL) {
        snprintf(w->last_error, sizeof(w->last_error), "%s:%d does not know master %s", s->ip,
                 s->port, w->master_name);
    } else if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(w->last_error, sizeof(w->last_error), "%s:%d: %s", s->ip, s->port, rep->str);
    } else if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
               rep->element[0]->type != REDIS_REPLY_STRING ||
               rep->element[1]->type != REDIS_REPLY_STRING) {
        snprintf(w->last_error, sizeof(w->last_error), "%s:%d: unexpected reply", s->ip, s->port);
    } else {
        const char *ip = rep->element[0]->str;
        char *end = NULL;
        errno = 0;
        long port = strtol(rep->element[1]->str, &end, 10);
        if (!numeric_ip(ip) || strlen(ip) >= sizeof(w->master.ip)) {
            snprintf(w->last_error, sizeof(w->last_error),
                     "%s:%d names master \"%.64s\", not a numeric address", s->ip, s->port, ip);
        } else if (errno != 0 || end == rep->element[1]->str || *end != '\0' || port < 1 ||
                   port > 65535) {
            snprintf(w->last_error, sizeof(w->last_error), "%s:%d: bad port \"%.16s\"", s->ip,
                     s->port, rep->element[1]->str);
        } else {
            w->first_sentinel = (w->first_sentinel + w->sentinel_tries - 1) % w->n_sentinels;
            bury(w, w->sent);
            set_master(w, ip, (int)port);
            send_to_master(w);
            return;
        }
    }
    bury(w, w->sent);
    ask_sentinel(w);
}

/* Asks the next sentinel not yet asked in this operation. */
static void ask_sentinel(struct fl_rediswrite *w)
{
    while (w->sentinel_tries < w->n_sentinels) {
        struct hostport *s =
            &w->sentinels[(w->first_sentinel + w->sentinel_tries) % w->n_sentinels];
        w->sentinel_tries++;
        char why[200];
        struct rctx *r = connect_to(w, s, true, why, sizeof(why));
        if (r == NULL) {
            snprintf(w->last_error, sizeof(w->last_error), "%s:%d: %.120s", s->ip, s->port, why);
            continue;
        }
        w->sent = r;
        if (redisAsyncCommand(r->ac, on_reply, (void *)(uintptr_t)K_SENTINEL,
                              "SENTINEL get-master-addr-by-name %s", w->master_name) != REDIS_OK) {
            snprintf(w->last_error, sizeof(w->last_error), "%s:%d: %s", s->ip, s->port,
                     r->ac->errstr);
            bury(w, r);
            continue;
        }
        return;
    }
    fail(w, "no sentinel gave the master of %s (%zu asked; last: %s)", w->master_name,
         w->n_sentinels, w->last_error);
}

static void take_entries(struct fl_rediswrite *w, const redisReply *rep)
{
    for (size_t i = 0; i < rep->elements; i++) {
        const redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY) {
            fail(w, "read-back on %s: unexpected XRANGE entry", w->master_text);
            return;
        }
        snprintf(w->last_id, sizeof(w->last_id), "%s", e->element[0]->str);
        const redisReply *f = e->element[1];
        bool ours = false;
        const char *seq = NULL;
        for (size_t j = 0; j + 1 < f->elements; j += 2) {
            const redisReply *k = f->element[j], *v = f->element[j + 1];
            if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(k->str, "run") == 0)
                ours = v->len == w->run_id_len && memcmp(v->str, w->run_id, v->len) == 0;
            else if (strcmp(k->str, "seq") == 0)
                seq = v->str;
        }
        if (!ours)
            continue;
        char *end = NULL;
        errno = 0;
        unsigned long long n = seq != NULL ? strtoull(seq, &end, 10) : 0;
        if (seq == NULL || errno != 0 || end == seq || *end != '\0' || *seq == '-') {
            fail(w, "read-back on %s: entry %s of this run has no numeric seq", w->master_text,
                 w->last_id);
            return;
        }
        if (w->n_seqs == FL_REDISWRITE_READBACK_MAX) {
            fail(w, "read-back on %s: more than FL_REDISWRITE_READBACK_MAX (%d) records",
                 w->master_text, FL_REDISWRITE_READBACK_MAX);
            return;
        }
        if (w->n_seqs == w->cap_seqs) {
            size_t cap = w->cap_seqs ? 2 * w->cap_seqs : 1024;
            uint64_t *p = realloc(w->seqs, cap * sizeof(*p));
            if (p == NULL) {
                fail(w, "read-back: out of memory");
                return;
            }
            w->seqs = p;
            w->cap_seqs = cap;
        }
        w->seqs[w->n_seqs++] = n;
    }
    if (rep->elements == FL_REDISWRITE_READBACK_PAGE)
        send_xrange(w);
    else
        finish(w, true, "read back");
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    struct rctx *r = ac->data;
    if (r == NULL || r->dead)
        return;
    struct fl_rediswrite *w = r->w;
    if (w->op == OP_NONE)
        return;
    const redisReply *rep = reply;
    enum reply_kind kind = (enum reply_kind)(uintptr_t)priv;
    if (kind == K_SENTINEL) {
        if (rep == NULL) {
            snprintf(w->last_error, sizeof(w->last_error), "%s",
                     ac->errstr[0] ? ac->errstr : "connection lost");
            bury(w, r);
            ask_sentinel(w);
            return;
        }
        sentinel_answer(w, rep);
        return;
    }
    if (rep == NULL) {
        fail(w, "%s: %s", w->master_text, ac->errstr[0] ? ac->errstr : "connection lost");
        return;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        fail(w, "%s: %s", w->master_text, rep->str);
        return;
    }
    switch (kind) {
    case K_XADD:
        if (rep->type != REDIS_REPLY_STRING) {
            fail(w, "%s: unexpected XADD reply", w->master_text);
            return;
        }
        if (w->wait_replicas == 0) {
            char d[128];
            snprintf(d, sizeof(d), "acknowledged by %s", w->master_text);
            finish(w, true, d);
        }
        return;
    case K_WAIT: {
        if (rep->type != REDIS_REPLY_INTEGER) {
            fail(w, "%s: unexpected WAIT reply", w->master_text);
            return;
        }
        long long k = rep->integer;
        char d[160];
        if (k >= (long long)w->wait_replicas) {
            snprintf(d, sizeof(d), "acknowledged by %s and %lld of %u replicas", w->master_text, k,
                     w->wait_replicas);
            finish(w, true, d);
        } else {
            /* written on the master, never promised: the connection is fine */
            snprintf(d, sizeof(d), "written to %s, but only %lld of %u replicas acknowledged",
                     w->master_text, k, w->wait_replicas);
            finish(w, false, d);
        }
        return;
    }
    case K_XRANGE:
        if (rep->type != REDIS_REPLY_ARRAY) {
            fail(w, "%s: unexpected XRANGE reply", w->master_text);
            return;
        }
        take_entries(w, rep);
        return;
    case K_SENTINEL:
    default:
        return;
    }
}

static void on_timer(uv_timer_t *t)
{
    struct fl_rediswrite *w = t->data;
    if (w->op != OP_NONE)
        fail(w, "timeout after %" PRIu64 " ms", w->timeout_ms);
}

static void on_kick(uv_timer_t *t)
{
    struct fl_rediswrite *w = t->data;
    if (w->op == OP_NONE)
        return;
    if (w->n_sentinels > 0 && !w->master_known) {
        w->sentinel_tries = 0;
        w->last_error[0] = '\0';
        ask_sentinel(w);
        return;
    }
    send_to_master(w);
}

static void start_op(struct fl_rediswrite *w)
{
    uv_update_time(w->loop); /* the deadline counts from this call */
    uv_timer_start(&w->timer, on_timer, w->timeout_ms, 0);
    uv_timer_start(&w->kick, on_kick, 0, 0);
}

static int parse_hostport(const char *s, struct hostport *hp)
{
    const char *colon;
    const char *host = s;
    size_t host_len;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return -EINVAL;
        host = s + 1;
        host_len = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -EINVAL;
        host_len = (size_t)(colon - s);
    }
    if (host_len == 0 || host_len >= sizeof(hp->ip))
        return -EINVAL;
    memcpy(hp->ip, host, host_len);
    hp->ip[host_len] = '\0';
    if (!numeric_ip(hp->ip))
        return -EINVAL;
    char *end = NULL;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || port < 1 || port > 65535)
        return -EINVAL;
    hp->port = (int)port;
    return 0;
}

int fl_rediswrite_create(uv_loop_t *loop, const struct fl_rediswrite_config *cfg,
                         struct fl_rediswrite **out, char *err, size_t err_len)
{
    if (loop == NULL || cfg == NULL || out == NULL || err == NULL || cfg->run_id == NULL) {
        if (err != NULL)
            snprintf(err, err_len, "redis write client: missing argument");
        return -EINVAL;
    }
    if ((cfg->address == NULL) == (cfg->n_sentinels == 0)) {
        snprintf(err, err_len, "redis: give either address or sentinels (with master_name)");
        return -EINVAL;
    }
    if (cfg->n_sentinels > FL_REDISWRITE_MAX_SENTINELS) {
        snprintf(err, err_len, "redis: %zu sentinels, more than FL_REDISWRITE_MAX_SENTINELS (%d)",
                 cfg->n_sentinels, FL_REDISWRITE_MAX_SENTINELS);
        return -EINVAL;
    }
    if (cfg->n_sentinels > 0 &&
        (cfg->master_name == NULL || cfg->master_name[0] == '\0' ||
         strlen(cfg->master_name) >= sizeof(((struct fl_rediswrite *)0)->master_name) ||
         strpbrk(cfg->master_name, " \t\r\n\"'") != NULL)) {
        snprintf(err, err_len,
                 "redis: sentinels need master_name (1-127 bytes, no spaces or quotes)");
        return -EINVAL;
    }
    const char *key = cfg->key != NULL ? cfg->key : FL_REDISWRITE_DEFAULT_KEY;
    size_t kl = strlen(key), rl = strlen(cfg->run_id);
    if (kl == 0 || kl > FL_REDISWRITE_KEY_MAX) {
        snprintf(err, err_len, "redis key: 1 to %d bytes (FL_REDISWRITE_KEY_MAX)",
                 FL_REDISWRITE_KEY_MAX);
        return -EINVAL;
    }
    if (rl == 0 || rl > FL_REDISWRITE_RUN_ID_MAX) {
        snprintf(err, err_len, "run id: 1 to %d bytes (FL_REDISWRITE_RUN_ID_MAX)",
                 FL_REDISWRITE_RUN_ID_MAX);
        return -EINVAL;
    }
    struct fl_rediswrite *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    if (cfg->address != NULL) {
        struct hostport hp;
        if (parse_hostport(cfg->address, &hp) < 0) {
            snprintf(err, err_len,
                     "redis address \"%.80s\": give a numeric IP:PORT (or [IPv6]:PORT); names "
                     "would be resolved with a blocking lookup",
                     cfg->address);
            free(w);
            return -EINVAL;
        }
        set_master(w, hp.ip, hp.port);
    }
    for (size_t i = 0; i < cfg->n_sentinels; i++) {
        if (cfg->sentinels[i] == NULL || parse_hostport(cfg->sentinels[i], &w->sentinels[i]) < 0) {
            snprintf(err, err_len, "redis sentinel \"%.80s\": give a numeric IP:PORT",
                     cfg->sentinels[i] != NULL ? cfg->sentinels[i] : "(null)");
            free(w);
            return -EINVAL;
        }
    }
    w->loop = loop;
    w->n_sentinels = cfg->n_sentinels;
    if (cfg->n_sentinels > 0)
        snprintf(w->master_name, sizeof(w->master_name), "%s", cfg->master_name);
    memcpy(w->key, key, kl + 1);
    w->key_len = kl;
    memcpy(w->run_id, cfg->run_id, rl + 1);
    w->run_id_len = rl;
    w->wait_replicas = cfg->wait_replicas;
    uv_timer_init(loop, &w->timer);
    uv_timer_init(loop, &w->kick);
    uv_timer_init(loop, &w->reap);
    w->timer.data = w->kick.data = w->reap.data = w;
    w->handles = 3;
    *out = w;
    return 0;
}

int fl_rediswrite_write(struct fl_rediswrite *w, uint64_t seq, uint64_t controller_ms,
                        uint64_t timeout_ms, fl_rediswrite_cb cb, void *arg)
{
    if (w == NULL || cb == NULL || timeout_ms == 0 || w->closing)
        return -EINVAL;
    if (w->op != OP_NONE)
        return -EBUSY;
    w->op = OP_WRITE;
    w->wcb = cb;
    w->arg = arg;
    w->timeout_ms = timeout_ms;
    snprintf(w->seq_text, sizeof(w->seq_text), "%" PRIu64, seq);
    snprintf(w->at_text, sizeof(w->at_text), "%" PRIu64, controller_ms);
    start_op(w);
    return 0;
}

int fl_rediswrite_readback(struct fl_rediswrite *w, uint64_t timeout_ms,
                           fl_rediswrite_readback_cb cb, void *arg)
{
    if (w == NULL || cb == NULL || timeout_ms == 0 || w->closing)
        return -EINVAL;
    if (w->op != OP_NONE)
        return -EBUSY;
    w->op = OP_READBACK;
    w->rcb = cb;
    w->arg = arg;
    w->timeout_ms = timeout_ms;
    start_op(w);
    return 0;
}

const char *fl_rediswrite_master(const struct fl_rediswrite *w)
{
    return w->master_known ? w->master_text : "";
}

void fl_rediswrite_close(struct fl_rediswrite *w, void (*closed)(void *arg), void *arg)
{
    if (w == NULL || w->closing)
        return;
    w->closing = true;
    w->closed = closed;
    w->closed_arg = arg;
    w->op = OP_NONE;
    bury(w, w->conn);
    bury(w, w->sent);
    uv_timer_stop(&w->timer);
    uv_timer_stop(&w->kick);
    uv_close((uv_handle_t *)&w->timer, on_timer_closed);
    uv_close((uv_handle_t *)&w->kick, on_timer_closed);
    /* the graveyard is emptied, then the reaper closes itself */
    uv_timer_start(&w->reap, on_reap, 0, 0);
}
