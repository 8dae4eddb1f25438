/* The HTML output buffer: see htmlbuf.h. */
#include "controller/report/htmlbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/report/report.h"

static bool reserve(struct fl_hbuf *b, size_t n)
{
    if (b->failed)
        return false;
    if (n > FL_HBUF_MAX || b->len + n > FL_HBUF_MAX) {
        b->failed = true;
        return false;
    }
    if (b->len + n + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->failed = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void fl_hbuf_put(struct fl_hbuf *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void fl_hbuf_puts(struct fl_hbuf *b, const char *s)
{
    fl_hbuf_put(b, s, strlen(s));
}

void fl_hbuf_printf(struct fl_hbuf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        fl_hbuf_put(b, small, (size_t)n);
        return;
    }
    if (!reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void fl_hbuf_escn(struct fl_hbuf *b, const char *s, size_t n)
{
    if (s == NULL)
        return;
    /* fl_report_utf8_seq needs a NUL-terminated string: work on a copy */
    char *c = malloc(n + 1);
    if (c == NULL) {
        b->failed = true;
        return;
    }
    memcpy(c, s, n);
    c[n] = '\0';
    size_t i = 0;
    while (i < n && !b->failed) {
        unsigned char ch = (unsigned char)c[i];
        size_t k = ch == '\0' ? 0 : fl_report_utf8_seq(c + i);
        if (k == 0 || (ch < 0x20 && ch != '\t' && ch != '\n') || ch == 0x7f) {
            fl_hbuf_puts(b, "\xef\xbf\xbd");
            i++;
            continue;
        }
        switch (ch) {
        case '&':
            fl_hbuf_puts(b, "&amp;");
            break;
        case '<':
            fl_hbuf_puts(b, "&lt;");
            break;
        case '>':
            fl_hbuf_puts(b, "&gt;");
            break;
        case '"':
            fl_hbuf_puts(b, "&quot;");
            break;
        case '\'':
            fl_hbuf_puts(b, "&#39;");
            break;
        default:
            fl_hbuf_put(b, c + i, k);
        }
        i += k;
    }
    free(c);
}

void fl_hbuf_esc(struct fl_hbuf *b, const char *s)
{
    if (s != NULL)
        fl_hbuf_escn(b, s, strlen(s));
}

void fl_hbuf_script_json(struct fl_hbuf *b, const char *json, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (json[i] != '<')
            continue;
        fl_hbuf_put(b, json + start, i - start);
        fl_hbuf_puts(b, "\\u003c");
        start = i + 1;
    }
    fl_hbuf_put(b, json + start, n - start);
}

void fl_hbuf_free(struct fl_hbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
