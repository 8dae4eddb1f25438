/* The `faultline report` page: one summary over many run folders (a game
 * day, a quarter). A table of runs (experiment, when, verdict, recovery
 * +- resolution, RPO, a link to each report.html) and, per experiment, a
 * trend chart of recovery time over its runs with the RTO line and the
 * regressions marked by faultline serve's rule (controller/serve/regression.h:
 * median of the last 10 passing runs, 20 % tolerance, more than two
 * resolutions). Also as JSON for machines. Same input, same bytes. */
#ifndef FL_CONTROLLER_REPORT_SUMMARY_H
#define FL_CONTROLLER_REPORT_SUMMARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "controller/report/htmlbuf.h"

struct fl_summary_run {
    char *dir;  /* as given */
    char *link; /* report.html relative to the output folder */
    char *name; /* experiment */
    char *verdict;
    int64_t started_ms;
    bool has_recovery, no_impact;
    int64_t recovery_ms, resolution_ms;
    bool has_rto;
    int64_t rto_ms;
    bool has_rpo;
    int64_t rpo_ms;
    bool has_baseline, regressed;
    int64_t baseline_ms;
};

struct fl_summary {
    struct fl_summary_run *runs; /* by experiment name, then start time, then folder */
    size_t n;
};

/* Reads run.json of each folder. A folder that cannot be read is named on
 * err_out (one line each) and left out; returns the number left out, or
 * -ENOMEM. out_dir is where the page will be written (for the links). */
int fl_summary_load(struct fl_summary *s, char *const *dirs, size_t n, const char *out_dir,
                    FILE *err_out);
void fl_summary_free(struct fl_summary *s);

/* The regression rule over each experiment's runs, oldest first: a run's
 * baseline is the median of the last FL_REGRESSION_WINDOW_DEFAULT passing
 * runs before it that measured a recovery. */
void fl_summary_regressions(struct fl_summary *s);

int fl_summary_html(const struct fl_summary *s, struct fl_hbuf *b);
int fl_summary_json(const struct fl_summary *s, struct fl_hbuf *b);

#endif
