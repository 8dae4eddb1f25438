/* "Did you mean ...?": one rule for every near miss the user can make (YAML
 * keys, fault kinds and parameters, probe, host and tag names).
 *
 * A candidate is suggested when it is a typo of the input: at most 3 edits
 * and fewer than half the letters of the longer word (so "kil" is not a typo
 * of "ttl"). Failing that, the only candidate the input abbreviates (3
 * letters or more: "prot" -> protocol), for an abbreviation says more than
 * edits do. Ties go to the first candidate considered. */
#ifndef FL_COMMON_SUGGEST_H
#define FL_COMMON_SUGGEST_H

#include <stdbool.h>
#include <stddef.h>

#define FL_EDIT_DISTANCE_MAX_LEN 64

/* Optimal string alignment distance: insertions, deletions, substitutions,
 * and a swap of two neighbouring letters each count as one edit. SIZE_MAX
 * when either string is longer than FL_EDIT_DISTANCE_MAX_LEN (too long to be
 * worth a suggestion). fold_case compares ASCII letters without case. */
size_t fl_edit_distance(const char *a, size_t la, const char *b, size_t lb, bool fold_case);

/* For candidates that come one at a time (names from several lists). */
struct fl_near {
    const char *want;
    size_t want_len;
    bool fold_case;
    const char *best; /* closest typo so far */
    size_t best_d;
    const char *prefix_of; /* the one candidate want abbreviates */
    size_t n_prefix;
};

void fl_near_init(struct fl_near *n, const char *want, size_t want_len, bool fold_case);
void fl_near_consider(struct fl_near *n, const char *cand);
/* The suggestion, or NULL. */
const char *fl_near_best(const struct fl_near *n);

/* The same over a NULL-terminated list. */
const char *fl_suggest(const char *want, const char *const *names, bool fold_case);

#endif
