/* The read-only HTTP side of `faultline serve` on listen_http, with
 * libmicrohttpd on a thread of its own: /metrics now (the UI pages and
 * /api/runs come later, on the same server). Nothing here touches the
 * scheduler's loop; it reads struct fl_metrics under its mutex. */
#ifndef FL_SERVE_HTTP_H
#define FL_SERVE_HTTP_H

#include <stddef.h>

struct fl_metrics;
struct fl_serve_http;

/* Listens on "ADDRESS:PORT". 0 with *out, or -EINVAL/-EADDRINUSE/... with
 * err naming the address. */
int fl_serve_http_start(const char *listen, struct fl_metrics *m, struct fl_serve_http **out,
                        char *err, size_t errlen);
/* Stops the thread and closes the socket. NULL is a no-op. */
void fl_serve_http_stop(struct fl_serve_http *h);

#endif
