/* libcurl's multi interface on a libuv loop: the one driver of the http
 * probes (controller/probes/http.c) and of serve's webhooks
 * (controller/serve/webhook.c).
 *
 * A driver owns one CURLM, one uv_poll_t per socket curl watches and one
 * uv_timer_t for curl's timeout, all on one loop. The caller makes and sets
 * up easy handles; fl_curluv_add() runs one, and when it is over the driver
 * takes it out of the multi and hands it back, with its CURLcode, to the
 * transfer's callback — always from the loop, after curl has returned,
 * never from inside one of curl's own callbacks. The driver sets
 * CURLOPT_PRIVATE; callers must not.
 *
 * A transfer ends exactly once: its callback runs once, or it is cancelled
 * (fl_curluv_cancel: no callback, ever). fl_curluv_close() ends every
 * transfer still in the driver (FL_CURLUV_CLOSED, or its real result if it
 * had finished and was waiting for its turn), cleans up the multi, closes
 * every handle and then calls its own callback; the driver is freed just
 * after. Callbacks may add, cancel or close; the driver never touches a
 * transfer after handing it back, so a callback may free it.
 *
 * Threads: nothing is shared between drivers but curl's global init
 * (fl_curluv_global_init, once per process); a driver and its transfers are
 * used only on the thread of its loop. */
#ifndef FL_NET_CURLUV_H
#define FL_NET_CURLUV_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

/* The result a transfer still running at fl_curluv_close() ends with. */
#define FL_CURLUV_CLOSED CURLE_ABORTED_BY_CALLBACK

struct fl_curluv;

/* The transfer ended: easy is out of the multi, the caller's again. */
typedef void (*fl_curluv_done_fn)(void *ctx, CURL *easy, CURLcode result);

/* One transfer, embedded in the caller's own struct; zero it before its
 * first use. Its fields are the driver's. */
struct fl_curluv_xfer {
    struct fl_curluv *cu;
    CURL *easy;
    fl_curluv_done_fn done;
    void *ctx;
    struct fl_curluv_xfer *prev, *next; /* the driver's running or finished list */
    CURLcode result;
    int state; /* curluv.c: idle, running, finished */
};

/* curl_global_init, once per process whatever the thread (later calls
 * return the first one's answer): 0 or -ENOMEM. Call it before any thread
 * uses curl; fl_curluv_new() calls it too. */
int fl_curluv_global_init(void);

/* A driver on loop; who names it in log lines ("http probe", "webhooks").
 * Returns 0 or a negative errno (*out untouched). */
int fl_curluv_new(uv_loop_t *loop, const char *who, struct fl_curluv **out);

/* Starts easy (set up by the caller, not in any multi); done(ctx, easy,
 * result) runs once when it ends, never from inside this call. x must be
 * idle (new or handed back). Returns 0, or a negative errno with err filled
 * in and done never called: -ESHUTDOWN once the driver is closing, -EINVAL
 * or -ENOMEM when curl refuses the handle. */
int fl_curluv_add(struct fl_curluv *cu, struct fl_curluv_xfer *x, CURL *easy,
                  fl_curluv_done_fn done, void *ctx, char *err, size_t err_len);

/* Takes x out of the driver: its callback will not run. Returns true if x
 * was in it (running, or finished and waiting for its callback), false if
 * it was idle. easy is the caller's again either way. */
bool fl_curluv_cancel(struct fl_curluv_xfer *x);

/* Transfers in the driver (running or waiting for their callback). */
size_t fl_curluv_count(const struct fl_curluv *cu);

/* Ends every transfer still in the driver (see above), then closes it;
 * closed(arg) (may be NULL) runs once its last handle is closed, and cu is
 * freed right after. Past this call cu is used only by the transfer
 * callbacks it makes, where fl_curluv_add() refuses (-ESHUTDOWN) and a
 * second fl_curluv_close() is a no-op. Never call the driver from inside
 * curl's own callbacks (write, header, ...). */
void fl_curluv_close(struct fl_curluv *cu, void (*closed)(void *arg), void *arg);

#endif
