/* report.html: one self-contained page per run, rendered from the run folder
 * alone (run.json and attempts.jsonl next to it; see htmlrun.h). Plain HTML,
 * inline CSS, inline SVG; no script is needed to read it and nothing is
 * fetched. The same input gives the same bytes.
 *
 * The timeline's geometry is fixed so that tests (and readers of the SVG) can
 * compute where a time lies: the x axis maps [started_at, ended_at] of the run
 * linearly onto [FL_HTML_X0, FL_HTML_X1]; an attempt is drawn in the pixel
 * column of its result time (started + latency), the column keeping the worst
 * outcome of the attempts it holds (thin.h). */
#ifndef FL_CONTROLLER_REPORT_HTML_H
#define FL_CONTROLLER_REPORT_HTML_H

#include <stddef.h>
#include <stdint.h>

#include "controller/report/htmlbuf.h"
#include "controller/report/htmlrun.h"

#define FL_HTML_WIDTH 1000
#define FL_HTML_X0 210
#define FL_HTML_X1 970
/* The experiment file shown in the page, at most this many bytes. */
#define FL_HTML_EXPERIMENT_MAX ((size_t)1 << 20)

/* Renders the page of r into b. 0, or a negative errno with err. */
int fl_report_html_render(const struct fl_hrun *r, struct fl_hbuf *b, char *err, size_t errlen);

/* Reads DIR/run.json and writes DIR/report.html (report.html.tmp, fsync'd,
 * renamed). 0, or a negative errno with err naming the file and what to do. */
int fl_report_html_dir(const char *dir, char *err, size_t errlen);

/* A duration for people: "0.65 s", "12.40 s", "43 min 48 s", "5 h 2 min",
 * "3 d 4 h". */
void fl_html_duration(int64_t ms, char *buf, size_t len);

/* The page's shared stylesheet and head, and its end (used by summary.c). */
void fl_html_head(struct fl_hbuf *b, const char *title);
void fl_html_tail(struct fl_hbuf *b);

#endif
