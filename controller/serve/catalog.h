/* The experiments `faultline serve` schedules: every *.yaml in the
 * experiments directory that has a schedule: block, loaded exactly as
 * `faultline run` loads it. Files without a schedule are listed once; files
 * that fail to load are reported with their FILE:LINE:COL message and left
 * out (serve still starts: one broken file never stops the others).
 * Blocking file I/O: at start-up, before the loop runs. */
#ifndef FL_SERVE_CATALOG_H
#define FL_SERVE_CATALOG_H

#include <stddef.h>

#include "controller/experiment/experiment.h"

/* Files read from the directory (a loud refusal above it). */
#define FL_SERVE_MAX_EXPERIMENTS 4096

struct fl_catalog_entry {
    struct fl_experiment *e;
    char hash[65]; /* sha256 of the file, hex */
};

struct fl_catalog {
    struct fl_catalog_entry *entries;
    size_t n;
    size_t n_unscheduled, n_invalid;
    /* the files that failed to load (n_invalid of them), as their paths:
     * a reload keeps their previous version scheduled */
    char **invalid;
};

/* inventory: --inventory for every experiment (NULL: their own). 0, or a
 * negative errno with err saying why the directory itself failed (two
 * experiments with the same name are refused too: history is by name). */
int fl_catalog_load(const char *dir, const char *inventory, struct fl_catalog *out, char *err,
                    size_t errlen);
/* The same for a reload: an invalid file is logged as "FILE:LINE:COL:
 * message (its previous version keeps its schedule)", files without a
 * schedule are not listed again. */
int fl_catalog_reload(const char *dir, const char *inventory, struct fl_catalog *out, char *err,
                      size_t errlen);
void fl_catalog_free(struct fl_catalog *c);

#endif
