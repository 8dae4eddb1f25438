/* "Did you mean ...?": how far one name is from another. */
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

#endif
