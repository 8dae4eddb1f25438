#include "agent/server.h"

#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/session.h"
#include "common/addr.h"
#include "common/clock.h"
#include "common/cryptolib.h"
#include "common/log.h"

static int resolve_listen(const char *spec, struct sockaddr_storage *ss)
{
    char host[128];
    uint16_t port;
    int rc = fl_addr_split(spec, FL_DEFAULT_PORT, host, sizeof(host), &port);
    if (rc < 0)
        return rc;
    if (strchr(host, ':'))
        return uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss);
    return uv_ip4_addr(host, port, (struct sockaddr_in *)ss);
}

/* ---------------------------------------------------------------- notes */

static const char *const note_what[FL_NOTE_KINDS] = {
    [FL_NOTE_REFUSED] = "refused (every slot held by authenticated controllers)",
    [FL_NOTE_EVICTED] = "evicted before authenticating (a newer handshake took the slot)",
    [FL_NOTE_NOT_ALLOWED] = "refused (not in allowed_controllers)",
    [FL_NOTE_UNAUTHENTICATED_CLOSED] = "closed before authenticating",
};

static void note_flush(struct fl_server *srv)
{
    char line[1024];
    size_t len = 0;
    unsigned total = 0;
    for (int k = 0; k < FL_NOTE_KINDS; k++) {
        if (srv->note_count[k] == 0)
            continue;
        len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%u %s", total ? ", " : "",
                                srv->note_count[k], note_what[k]);
        total += srv->note_count[k];
        if (len >= sizeof(line))
            len = sizeof(line) - 1;
    }
    if (total == 0)
        return;
    int top = -1;
    for (int i = 0; i < FL_NOTE_ADDRS; i++)
        if (srv->note_addrs[i].count > 0 &&
            (top < 0 || srv->note_addrs[i].count > srv->note_addrs[top].count))
            top = i;
    fl_warn("connections in the last %u s: %s; most from %s (%u)%s; last reason: %s",
            FL_NOTE_INTERVAL_MS / 1000, line, top >= 0 ? srv->note_addrs[top].addr : "?",
            top >= 0 ? srv->note_addrs[top].count : 0,
            srv->note_other_addrs ? " and more addresses" : "", srv->note_detail);
    memset(srv->note_count, 0, sizeof(srv->note_count));
    memset(srv->note_addrs, 0, sizeof(srv->note_addrs));
    srv->note_other_addrs = 0;
    srv->note_last_ms = fl_mono_ms();
}

static void on_note_timer(uv_timer_t *t)
{
    note_flush(t->data);
}

void fl_server_note(struct fl_server *srv, enum fl_note what, const char *addr, const char *detail)
{
    assert(what < FL_NOTE_KINDS);
    uint64_t now = fl_mono_ms();
    if (now - srv->note_last_ms >= FL_NOTE_INTERVAL_MS &&
        !uv_is_active((uv_handle_t *)&srv->note_timer)) {
        /* the first in an interval is logged as it happens */
        fl_warn("connection from %s %s: %s", addr, note_what[what], detail);
        srv->note_last_ms = now;
        return;
    }
    srv->note_count[what]++;
    snprintf(srv->note_detail, sizeof(srv->note_detail), "%s", detail);
    int slot = -1;
    for (int i = 0; i < FL_NOTE_ADDRS && slot < 0; i++)
        if (srv->note_addrs[i].count == 0 || strcmp(srv->note_addrs[i].addr, addr) == 0)
            slot = i;
    if (slot < 0) {
        srv->note_other_addrs++;
    } else {
        snprintf(srv->note_addrs[slot].addr, sizeof(srv->note_addrs[slot].addr), "%s", addr);
        srv->note_addrs[slot].count++;
    }
    if (!uv_is_active((uv_handle_t *)&srv->note_timer) && srv->timers_open) {
        uint64_t due = srv->note_last_ms + FL_NOTE_INTERVAL_MS;
        uv_timer_start(&srv->note_timer, on_note_timer, due > now ? due - now : 0, 0);
    }
}

/* ---------------------------------------------------------------- idle */

static void on_idle_check(uv_timer_t *t)
{
    struct fl_server *srv = t->data;
    uint64_t now = fl_mono_ms();
    bool any = false;
    for (struct fl_session *s = srv->sessions; s != NULL; s = s->next) {
        if (!s->authenticated || fl_conn_is_closing(s->conn))
            continue;
        if (now - s->last_rx_ms > srv->config->idle_timeout_ms) {
            fl_warn("session %llu (%s): nothing received for %llu ms (idle_timeout): closing",
                    (unsigned long long)s->id, fl_conn_peer(s->conn),
                    (unsigned long long)(now - s->last_rx_ms));
            fl_conn_close(s->conn, -ETIME);
        } else {
            any = true;
        }
    }
    if (!any)
        uv_timer_stop(t); /* nothing to watch: an idle agent has no timer */
}

void fl_server_session_authenticated(struct fl_server *srv)
{
    if (!srv->timers_open || uv_is_active((uv_handle_t *)&srv->idle_timer))
        return;
    uint64_t every = srv->config->idle_timeout_ms / 4;
    if (every < 250)
        every = 250;
    uv_timer_start(&srv->idle_timer, on_idle_check, every, every);
}

/* ---------------------------------------------------------------- admission */

/* The oldest connection still in its handshake, from addr (any when NULL),
 * other than but; and how many there are. */
static struct fl_session *oldest_unauthenticated(struct fl_server *srv, const char *addr,
                                                 const struct fl_session *but, unsigned *count)
{
    struct fl_session *oldest = NULL;
    *count = 0;
    for (struct fl_session *s = srv->sessions; s != NULL; s = s->next) {
        if (s == but || s->authenticated || fl_conn_is_closing(s->conn))
            continue;
        if (addr != NULL && strcmp(s->addr, addr) != 0)
            continue;
        (*count)++;
        if (oldest == NULL || s->id < oldest->id)
            oldest = s;
    }
    return oldest;
}

static unsigned open_sessions(struct fl_server *srv, const struct fl_session *but)
{
    unsigned open = 0;
    for (struct fl_session *s = srv->sessions; s != NULL; s = s->next)
        open += s != but && !fl_conn_is_closing(s->conn);
    return open;
}

static void evict(struct fl_server *srv, struct fl_session *victim, const char *why)
{
    fl_server_note(srv, FL_NOTE_EVICTED, victim->addr, why);
    fl_conn_close(victim->conn, -ECONNABORTED);
}

/* A new connection s gets a slot: handshakes are capped per address and in
 * all, and the oldest handshake makes room for the newest, so a flood from
 * one address holds at most max_unauthenticated_per_address slots and can
 * never take those kept for authenticated controllers. */
static void admit(struct fl_server *srv, struct fl_session *s)
{
    const struct fl_agent_config *cfg = srv->config;
    unsigned n;
    struct fl_session *old = oldest_unauthenticated(srv, s->addr, s, &n);
    if (n >= cfg->max_unauthenticated_per_address)
        evict(srv, old, "max_unauthenticated_per_address reached");
    old = oldest_unauthenticated(srv, NULL, s, &n);
    if (n >= cfg->max_unauthenticated)
        evict(srv, old, "max_unauthenticated reached");
    if (open_sessions(srv, s) >= cfg->max_connections) {
        old = oldest_unauthenticated(srv, NULL, s, &n);
        if (old != NULL) {
            evict(srv, old, "max_connections reached");
        } else {
            fl_server_note(srv, FL_NOTE_REFUSED, s->addr, "max_connections reached");
            fl_conn_close(s->conn, -ECONNABORTED);
        }
    }
}

static void crypto_load_work(uv_work_t *w)
{
    (void)w;
    (void)fl_cryptolib(); /* a failure is logged, and the handshake fails on it */
}

static void crypto_load_done(uv_work_t *w, int status)
{
    (void)w;
    (void)status;
}

static void accept_one(struct fl_server *srv)
{
    /* the first connection loads libcrypto off the loop, while the peer's
     * hello is on its way -- the library and OpenSSL's first algorithm
     * lookups (its configuration read, fl_cryptolib_get); if the hello comes
     * first, the handshake waits for the load rather than do it itself */
    if (!srv->crypto_load_queued && !fl_cryptolib_loaded())
        srv->crypto_load_queued =
            uv_queue_work(srv->loop, &srv->crypto_load, crypto_load_work, crypto_load_done) == 0;
    /* accepted first, so that the peer's address is known and the backlog
     * never fills; admission may close it again at once */
    struct fl_session *s = fl_session_accept(srv);
    if (s != NULL)
        admit(srv, s);
}

/* Each loop iteration, after polling: a new budget of accepts. */
static void on_accept_check(uv_check_t *h)
{
    struct fl_server *srv = h->data;
    srv->accept_budget = FL_ACCEPT_BUDGET;
}

/* The next iteration: the connection libuv holds for us is taken, which
 * also makes libuv watch the listener again. */
static void on_accept_idle(uv_idle_t *h)
{
    struct fl_server *srv = h->data;
    uv_idle_stop(h);
    if (!srv->accept_deferred || !srv->listening)
        return;
    srv->accept_deferred = false;
    if (srv->accept_budget > 0)
        srv->accept_budget--;
    accept_one(srv);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct fl_server *srv = listener->data;
    if (status < 0) {
        fl_warn("accept: %s", fl_strerror(status));
        return;
    }
    if (srv->accept_budget == 0) {
        /* not accepted now: libuv stops watching the listener until we do,
         * and the loop goes on to the handshakes it has read */
        srv->accept_deferred = true;
        uv_idle_start(&srv->accept_idle, on_accept_idle);
        return;
    }
    srv->accept_budget--;
    accept_one(srv);
}

int fl_server_start(struct fl_server *srv, uv_loop_t *loop, const struct fl_agent_config *config)
{
    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    srv->config = config;
    srv->started_mono_ms = fl_mono_ms();
    srv->next_session_id = 1;
    if (config->name != NULL)
        snprintf(srv->hostname, sizeof(srv->hostname), "%s", config->name);
    else if (gethostname(srv->hostname, sizeof(srv->hostname) - 1) != 0)
        snprintf(srv->hostname, sizeof(srv->hostname), "unknown");

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    int rc = resolve_listen(config->listen, &ss);
    if (rc < 0) {
        fl_error("--listen %s: expected ADDRESS:PORT with a numeric address", config->listen);
        return -EINVAL;
    }
    uv_timer_init(loop, &srv->idle_timer);
    uv_timer_init(loop, &srv->note_timer);
    srv->idle_timer.data = srv->note_timer.data = srv;
    uv_check_init(loop, &srv->accept_check);
    uv_idle_init(loop, &srv->accept_idle);
    srv->accept_check.data = srv->accept_idle.data = srv;
    srv->accept_budget = FL_ACCEPT_BUDGET;
    uv_check_start(&srv->accept_check, on_accept_check);
    uv_unref((uv_handle_t *)&srv->accept_check); /* never keeps the loop alive, never wakes it */
    srv->timers_open = true;
    srv->note_last_ms = fl_mono_ms() - FL_NOTE_INTERVAL_MS;
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    srv->listening = true;
    rc = uv_tcp_bind(&srv->listener, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, 128, on_connection);
    if (rc < 0) {
        fl_error("cannot listen on %s: %s", config->listen, fl_strerror(rc));
        fl_server_stop(srv);
        return rc;
    }

    int len = sizeof(ss);
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len);
    char ip[64], where[80];
    uint16_t port;
    if (ss.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
        uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    srv->port = port;
    fl_addr_join(ip, port, where, sizeof(where));
    fl_info("listening on %s", where);
    return 0;
}

void fl_server_local_host(struct fl_server *srv, char *out, size_t len)
{
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    out[0] = '\0';
    if (!srv->listening || uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &sl) != 0)
        return;
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
        if (!IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))
            uv_ip6_name(s6, out, len);
    } else if (((const struct sockaddr_in *)&ss)->sin_addr.s_addr != htonl(INADDR_ANY)) {
        uv_ip4_name((const struct sockaddr_in *)&ss, out, len);
    }
}

void fl_server_stop(struct fl_server *srv)
{
    if (srv->timers_open) {
        srv->timers_open = false;
        note_flush(srv);
        uv_close((uv_handle_t *)&srv->idle_timer, NULL);
        uv_close((uv_handle_t *)&srv->note_timer, NULL);
        uv_close((uv_handle_t *)&srv->accept_check, NULL);
        uv_close((uv_handle_t *)&srv->accept_idle, NULL);
    }
    if (srv->listening) {
        srv->listening = false;
        uv_close((uv_handle_t *)&srv->listener, NULL);
    }
    for (struct fl_session *s = srv->sessions; s != NULL; s = s->next)
        fl_session_close(s);
}
