/* The read-only pages of `faultline serve` on listen_http (http.c routes to
 * them; libmicrohttpd's thread calls them, never the scheduler's loop):
 *
 *   /                      every scheduled experiment: schedule, next run,
 *                          paused, last verdict (regressed), a small
 *                          recovery-time trend (inline SVG) of its last
 *                          FL_PAGES_TREND_RUNS rows, links to its last runs;
 *                          a banner when the server is frozen
 *   /runs/RUN_ID           that run's report.html from its report folder,
 *                          or, when there is none yet, the same page
 *                          rendered in memory from its run.json
 *                          (controller/report/html.c)
 *   /api/runs?experiment=E&limit=N&offset=K
 *                          history rows, newest due time first, as a JSON
 *                          array of exactly the objects `faultline history
 *                          --json` prints (controller/serve/rowjson.h)
 *
 * The store is read through a connection of the pages' own (SQLite in WAL
 * mode: a reader never blocks the scheduler's writes, nor they it, for
 * longer than a commit), so a slow page never holds the handle the
 * scheduler's claims go through.
 *
 * RUN_ID is 1 to FL_PAGES_RUN_ID_DIGITS decimal digits and nothing else; the
 * folder is the one the store records for that id, and it is served only if
 * its real path lies inside the real path of reports_dir; report.html and
 * run.json must be regular files, not symbolic links. Anything else is 404:
 * no URL reads a file outside reports_dir. */
#ifndef FL_SERVE_PAGES_H
#define FL_SERVE_PAGES_H

#include <stddef.h>
#include <stdint.h>

struct fl_catalog;
struct fl_metrics;
struct fl_serve_pages;

/* /api/runs rows when limit is not given. */
#define FL_PAGES_API_LIMIT_DEFAULT 100
/* /api/runs: the largest limit; a larger one is refused (400), never cut. */
#define FL_PAGES_API_LIMIT_MAX 1000
/* Rows per experiment the index reads for its trend and run links. */
#define FL_PAGES_TREND_RUNS 20
/* Run links per experiment on the index. */
#define FL_PAGES_RUN_LINKS 5
/* Digits of a RUN_ID in /runs/RUN_ID (an int64 holds 18 safely). */
#define FL_PAGES_RUN_ID_DIGITS 18

/* A response: body (malloc'd, caller frees) or, for a file served as it is,
 * fd >= 0 of fd_size bytes (the caller closes it). */
struct fl_page {
    unsigned status;
    const char *type;
    char *body;
    size_t len;
    int fd;
    uint64_t fd_size;
};

/* A query argument by name, or NULL (libmicrohttpd's lookup, for http.c). */
typedef const char *(*fl_pages_arg_fn)(void *ctx, const char *name);

/* Opens the pages' own store connection (db_url as the server's) and
 * publishes the catalog's experiments. The metrics stay the caller's and must
 * outlive the pages; the catalog is copied. 0, or a negative errno with err. */
int fl_serve_pages_new(const char *db_url, const char *reports_dir, const struct fl_catalog *cat,
                       struct fl_metrics *m, struct fl_serve_pages **out, char *err, size_t errlen);
void fl_serve_pages_free(struct fl_serve_pages *p);

/* What the index lists from now on (after a reload): copied under the
 * pages' lock, so the caller may free its list and the experiments at once.
 * 0 or -ENOMEM (the previous list stays). */
struct fl_schedule;
struct fl_pages_entry {
    const char *name;
    const struct fl_schedule *schedule;
};
int fl_serve_pages_publish(struct fl_serve_pages *p, const struct fl_pages_entry *list, size_t n,
                           size_t n_unscheduled, size_t n_invalid);

/* Answers a GET of url (path only). Never fails: errors are pages too (404,
 * 400, 500 with a sentence saying why). */
void fl_serve_pages_get(struct fl_serve_pages *p, const char *url, fl_pages_arg_fn arg, void *ctx,
                        struct fl_page *out);

#endif
