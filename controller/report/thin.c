/* Tick thinning: see thin.h. */
#include "controller/report/thin.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int fl_thin_init(struct fl_thin *t, unsigned width)
{
    t->width = width == 0 ? 1 : width;
    t->cols = calloc(t->width, sizeof(*t->cols));
    return t->cols == NULL ? -ENOMEM : 0;
}

void fl_thin_free(struct fl_thin *t)
{
    for (unsigned i = 0; t->cols != NULL && i < t->width; i++)
        free(t->cols[i].worst_detail);
    free(t->cols);
    t->cols = NULL;
    t->width = 0;
}

uint64_t fl_thin_count(const struct fl_thin_col *c)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < FL_TICK_COUNT; i++)
        n += c->n[i];
    return n;
}

/* Replaces *dst with a copy of at most FL_THIN_DETAIL_MAX - 1 bytes of src,
 * never splitting a UTF-8 sequence (continuation bytes at the cut are
 * dropped); NULL when src is empty (or out of memory). */
static void keep_detail(char **dst, const char *src)
{
    free(*dst);
    *dst = NULL;
    size_t n = src == NULL ? 0 : strlen(src);
    if (n >= FL_THIN_DETAIL_MAX) {
        n = FL_THIN_DETAIL_MAX - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xc0u) == 0x80u)
            n--;
    }
    if (n == 0 || (*dst = malloc(n + 1)) == NULL)
        return;
    memcpy(*dst, src, n);
    (*dst)[n] = '\0';
}

void fl_thin_add(struct fl_thin *t, unsigned col, int64_t t_ms, int64_t latency_ms, enum fl_tick o,
                 const char *detail)
{
    if (t->cols == NULL || (unsigned)o >= FL_TICK_COUNT)
        return;
    if (col >= t->width)
        col = t->width - 1;
    struct fl_thin_col *c = &t->cols[col];
    bool first = fl_thin_count(c) == 0;
    if (first || t_ms < c->first_ms)
        c->first_ms = t_ms;
    if (first || t_ms > c->last_ms)
        c->last_ms = t_ms;
    if (first || o > c->worst || (o == c->worst && t_ms < c->worst_ms)) {
        c->worst = o;
        c->worst_ms = t_ms;
        c->worst_latency_ms = latency_ms;
        keep_detail(&c->worst_detail, detail);
    }
    c->n[o]++;
}

static const char *const names[FL_TICK_COUNT] = {"ok", "late", "timeout", "failed"};

const char *fl_tick_name(enum fl_tick o)
{
    return (unsigned)o < FL_TICK_COUNT ? names[o] : "?";
}

int fl_outcome_parse(const char *s)
{
    for (int i = 0; s != NULL && i < FL_TICK_COUNT; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}
