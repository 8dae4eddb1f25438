/* An output buffer for the HTML reports, with HTML escaping. Everything that
 * came from outside (experiment names, probe and agent details, host names,
 * the experiment file) goes through fl_hbuf_esc. The buffer refuses to grow
 * past FL_HBUF_MAX bytes: a page that large is an error, reported, never cut
 * silently. */
#ifndef FL_CONTROLLER_REPORT_HTMLBUF_H
#define FL_CONTROLLER_REPORT_HTMLBUF_H

#include <stdbool.h>
#include <stddef.h>

/* The largest page written (bytes). */
#define FL_HBUF_MAX ((size_t)256 << 20)

struct fl_hbuf {
    char *p;
    size_t len, cap;
    bool failed; /* out of memory or past FL_HBUF_MAX; later writes do nothing */
};

void fl_hbuf_put(struct fl_hbuf *b, const char *s, size_t n);
void fl_hbuf_puts(struct fl_hbuf *b, const char *s);
void fl_hbuf_printf(struct fl_hbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* s with & < > " ' as entities, bytes that are not UTF-8 and control
 * characters other than tab and newline as U+FFFD. NULL writes nothing. */
void fl_hbuf_esc(struct fl_hbuf *b, const char *s);
void fl_hbuf_escn(struct fl_hbuf *b, const char *s, size_t n);

/* JSON text for a <script type="application/json"> element: every '<' as
 * \u003c (valid inside JSON strings, and '<' appears nowhere else in JSON),
 * so no "</script>" or "<!--" can end or change the element. */
void fl_hbuf_script_json(struct fl_hbuf *b, const char *json, size_t n);

void fl_hbuf_free(struct fl_hbuf *b);

#endif
