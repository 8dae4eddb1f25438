/* The read-only HTTP side of `faultline serve` on listen_http, with
 * libmicrohttpd on a thread of its own (MHD_USE_INTERNAL_POLLING_THREAD):
 * /metrics, and the pages of pages.h (/, /runs/RUN_ID, /api/runs). GET and
 * HEAD only. Nothing here touches the scheduler's loop: it reads struct
 * fl_metrics under its mutex and the store through the pages' own
 * connection. */
#ifndef FL_SERVE_HTTP_H
#define FL_SERVE_HTTP_H

#include <stddef.h>

struct fl_metrics;
struct fl_serve_http;
struct fl_serve_pages;

/* Listens on "ADDRESS:PORT". pages NULL: /metrics only. 0 with *out, or
 * -EINVAL/-EADDRINUSE/... with err naming the address. */
int fl_serve_http_start(const char *listen, struct fl_metrics *m, struct fl_serve_pages *pages,
                        struct fl_serve_http **out, char *err, size_t errlen);
/* Stops the thread and closes the socket. NULL is a no-op. */
void fl_serve_http_stop(struct fl_serve_http *h);

#endif
