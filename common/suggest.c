#include "common/suggest.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>

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

void fl_near_init(struct fl_near *n, const char *want, size_t want_len, bool fold_case)
{
    n->want = want;
    n->want_len = want_len;
    n->fold_case = fold_case;
    n->best = NULL;
    n->best_d = SIZE_MAX;
    n->prefix_of = NULL;
    n->n_prefix = 0;
}

static bool begins(const char *cand, const char *want, size_t len, bool fold_case)
{
    for (size_t i = 0; i < len; i++) {
        if (cand[i] == '\0' || fold(cand[i], fold_case) != fold(want[i], fold_case))
            return false;
    }
    return true;
}

void fl_near_consider(struct fl_near *n, const char *cand)
{
    size_t lc = strlen(cand);
    size_t d = fl_edit_distance(n->want, n->want_len, cand, lc, n->fold_case);
    size_t longer = n->want_len > lc ? n->want_len : lc;
    if (d <= 3 && d * 2 < longer && d < n->best_d) {
        n->best = cand;
        n->best_d = d;
    }
    if (n->want_len >= 3 && n->want_len < lc && begins(cand, n->want, n->want_len, n->fold_case)) {
        if (n->n_prefix++ == 0)
            n->prefix_of = cand;
    }
}

const char *fl_near_best(const struct fl_near *n)
{
    if (n->best != NULL && n->best_d <= 1)
        return n->best;
    if (n->n_prefix == 1)
        return n->prefix_of;
    return n->best;
}

const char *fl_suggest(const char *want, const char *const *names, bool fold_case)
{
    struct fl_near n;
    fl_near_init(&n, want, strlen(want), fold_case);
    for (size_t i = 0; names[i] != NULL; i++)
        fl_near_consider(&n, names[i]);
    return fl_near_best(&n);
}
