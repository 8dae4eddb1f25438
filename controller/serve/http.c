/* libmicrohttpd for /metrics and the pages (http.h). */
#include "controller/serve/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "controller/serve/config.h"
#include "controller/serve/metrics.h"
#include "controller/serve/pages.h"

/* Connections the server holds at once (MHD_OPTION_CONNECTION_LIMIT). */
#define FL_HTTP_MAX_CONNECTIONS 64
/* An idle connection is closed after this many seconds. */
#define FL_HTTP_TIMEOUT_S 10

struct fl_serve_http {
    struct MHD_Daemon *d;
    struct fl_metrics *m;
    struct fl_serve_pages *pages; /* NULL: /metrics only */
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             char *body, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, mode);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static const char *query_arg(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)state;
    struct fl_serve_http *h = cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", (char *)"read-only: GET only\n",
                     MHD_RESPMEM_PERSISTENT);
    if (strcmp(url, "/metrics") == 0) {
        char *text = fl_metrics_render(h->m);
        if (text == NULL)
            return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", (char *)"out of memory\n",
                         MHD_RESPMEM_PERSISTENT);
        return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text,
                     MHD_RESPMEM_MUST_FREE);
    }
    if (h->pages == NULL)
        return reply(c, MHD_HTTP_NOT_FOUND, "text/plain", (char *)"not found: /metrics only\n",
                     MHD_RESPMEM_PERSISTENT);
    struct fl_page page;
    fl_serve_pages_get(h->pages, url, query_arg, c, &page);
    struct MHD_Response *r =
        page.fd >= 0 ? MHD_create_response_from_fd64(page.fd_size, page.fd)
                     : MHD_create_response_from_buffer(page.len, page.body ? page.body : (char *)"",
                                                       page.body ? MHD_RESPMEM_MUST_FREE
                                                                 : MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        if (page.fd >= 0)
            close(page.fd);
        free(page.body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", page.type ? page.type : "text/plain");
    /* the pages fetch nothing: say so to the browser as well */
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'none'; style-src 'unsafe-inline'");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ret = MHD_queue_response(c, page.status, r);
    MHD_destroy_response(r);
    return ret;
}

int fl_serve_http_start(const char *listen, struct fl_metrics *m, struct fl_serve_pages *pages,
                        struct fl_serve_http **out, char *err, size_t errlen)
{
    char host[64];
    uint16_t port;
    if (fl_serve_listen_parse(listen, host, sizeof(host), &port) < 0) {
        snprintf(err, errlen, "listen_http: '%s' is not ADDRESS:PORT", listen);
        return -EINVAL;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, errlen, "listen_http: '%s' is not an IP address", host);
        return -EINVAL;
    }
    struct fl_serve_http *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    h->m = m;
    h->pages = pages;
    h->d = MHD_start_daemon(flags, port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)FL_HTTP_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)FL_HTTP_TIMEOUT_S, MHD_OPTION_END);
    if (h->d == NULL) {
        int e = errno ? errno : EADDRINUSE;
        snprintf(err, errlen, "listen_http: cannot listen on %s: %s", listen, strerror(e));
        free(h);
        return -e;
    }
    *out = h;
    return 0;
}

void fl_serve_http_stop(struct fl_serve_http *h)
{
    if (h == NULL)
        return;
    MHD_stop_daemon(h->d);
    free(h);
}
