/* Previews for a dry run: send them all, gather the replies, print them in
 * the faults' order. */
#include "controller/run/preview.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/client/preview.h"

struct slot {
    struct batch *b;
    char **lines;
    size_t n_lines;
    bool refused;
};

struct batch {
    const struct fl_run_preview_item *items;
    size_t n;
    size_t waiting;
    struct slot *slots;
    fl_run_preview_line_cb line;
    fl_run_preview_done_cb done;
    void *arg;
};

static void add_line(struct slot *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add_line(struct slot *s, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    char **grown = realloc(s->lines, (s->n_lines + 1) * sizeof(*grown));
    char *dup = strdup(buf);
    if (grown)
        s->lines = grown;
    if (grown == NULL || dup == NULL) {
        free(dup);
        return; /* out of memory: the line is lost, the count of refusals is not */
    }
    s->lines[s->n_lines++] = dup;
}

static void finish(struct batch *b)
{
    size_t refused = 0;
    for (size_t i = 0; i < b->n; i++) {
        struct slot *s = &b->slots[i];
        for (size_t k = 0; k < s->n_lines; k++) {
            b->line(b->arg, s->lines[k]);
            free(s->lines[k]);
        }
        free(s->lines);
        refused += s->refused;
    }
    fl_run_preview_done_cb done = b->done;
    void *arg = b->arg;
    free(b->slots);
    free(b);
    done(arg, refused);
}

static void on_preview(struct fl_client *cl, const Faultline__Preview *pv,
                       Faultline__ErrorCode code, const char *message, int status, void *arg)
{
    (void)cl;
    (void)code;
    (void)status;
    struct slot *s = arg;
    struct batch *b = s->b;
    const struct fl_run_fault *rf = b->items[s - b->slots].rf;
    const char *host = rf->host->name, *addr = rf->host->address;
    if (pv == NULL) {
        s->refused = true;
        add_line(s, "%s on %s (%s) would be refused: %s", rf->fault->name, host, addr, message);
    } else {
        for (size_t i = 0; i < pv->n_would; i++)
            add_line(s, "%s on %s (%s)", pv->would[i], host, addr);
        if (pv->detail && pv->detail[0])
            add_line(s, "  %s", pv->detail);
    }
    if (--b->waiting == 0)
        finish(b);
}

int fl_run_preview(const struct fl_run_preview_item *items, size_t n, uint64_t timeout_ms,
                   fl_run_preview_line_cb line, fl_run_preview_done_cb done, void *arg)
{
    struct batch *b = calloc(1, sizeof(*b));
    struct slot *slots = calloc(n ? n : 1, sizeof(*slots));
    if (b == NULL || slots == NULL) {
        free(b);
        free(slots);
        return -ENOMEM;
    }
    b->items = items;
    b->n = n;
    b->slots = slots;
    b->line = line;
    b->done = done;
    b->arg = arg;
    b->waiting = 1; /* this call's own: no reply finishes the batch while it sends */
    for (size_t i = 0; i < n; i++) {
        struct slot *s = &slots[i];
        s->b = b;
        const struct fl_run_fault *rf = items[i].rf;
        int rc = -ENOTCONN;
        if (items[i].client != NULL) {
            b->waiting++;
            rc = fl_client_preview(items[i].client, rf->fault->spec, timeout_ms, on_preview, s);
            if (rc < 0)
                b->waiting--;
        }
        if (rc < 0) {
            s->refused = true;
            add_line(s, "%s on %s (%s) cannot be previewed: %s", rf->fault->name, rf->host->name,
                     rf->host->address,
                     rc == -ENOTCONN ? "its agent is not connected" : strerror(-rc));
        }
    }
    if (--b->waiting == 0)
        finish(b); /* nothing was sent: nothing to wait for */
    return 0;
}
