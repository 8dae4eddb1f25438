#include "common/suggest.h"

#include <ctype.h>
#include <stdint.h>

static int fold(char c, bool fold_case)
{
    return fold_case ? tolower((unsigned char)c) : (unsigned char)c;
}

size_t fl_edit_distance(const char *a, size_t la, const char *b, size_t lb, bool fold_case)
{
    if (la > FL_EDIT_DISTANCE_MAX_LEN || lb > FL_EDIT_DISTANCE_MAX_LEN)
        return SIZE_MAX;
    size_t rows[3][FL_EDIT_DISTANCE_MAX_LEN + 1];
    size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        int ca = fold(a[i - 1], fold_case);
        for (size_t j = 1; j <= lb; j++) {
            int cb = fold(b[j - 1], fold_case);
            size_t best = prev[j - 1] + (ca == cb ? 0 : 1);
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && ca == fold(b[j - 2], fold_case) &&
                fold(a[i - 2], fold_case) == cb && prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
        size_t *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}
