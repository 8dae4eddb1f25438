#include "agent/server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/session.h"
#include "common/addr.h"
#include "common/clock.h"
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

static void on_refused_closed(uv_handle_t *h)
{
    free(h);
}

/* Over the cap: accept and hang up at once, so the peer is not left waiting
 * in the backlog and the backlog does not fill. */
static void refuse(struct fl_server *srv, unsigned open)
{
    uv_tcp_t *t = malloc(sizeof(*t));
    if (t == NULL)
        return;
    uv_tcp_init(srv->loop, t);
    if (uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)t) == 0)
        fl_warn("connection refused: %u connections open (the maximum)", open);
    uv_close((uv_handle_t *)t, on_refused_closed);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct fl_server *srv = listener->data;
    if (status < 0) {
        fl_warn("accept: %s", fl_strerror(status));
        return;
    }
    /* count what is open: a session closing in this same loop iteration has
     * already hung up, though its close callback is still to come */
    unsigned open = 0;
    for (struct fl_session *s = srv->sessions; s != NULL; s = s->next)
        open += !fl_conn_is_closing(s->conn);
    if (open >= srv->config->max_connections) {
        refuse(srv, open);
        return;
    }
    fl_session_accept(srv);
}

int fl_server_start(struct fl_server *srv, uv_loop_t *loop, const struct fl_agent_config *config)
{
    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    srv->config = config;
    srv->started_mono_ms = fl_mono_ms();
    srv->next_session_id = 1;
    if (gethostname(srv->hostname, sizeof(srv->hostname) - 1) != 0)
        snprintf(srv->hostname, sizeof(srv->hostname), "unknown");

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    int rc = resolve_listen(config->listen, &ss);
    if (rc < 0) {
        fl_error("--listen %s: expected ADDRESS:PORT with a numeric address", config->listen);
        return -EINVAL;
    }
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

void fl_server_stop(struct fl_server *srv)
{
    if (srv->listening) {
        srv->listening = false;
        uv_close((uv_handle_t *)&srv->listener, NULL);
    }
    for (struct fl_session *s = srv->sessions; s != NULL; s = s->next)
        fl_session_close(s);
}
