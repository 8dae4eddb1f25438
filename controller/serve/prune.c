/* Retention pruning (prune.h). */
#include "controller/serve/prune.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int rc = flag == FTW_DP ? rmdir(path) : unlink(path);
    if (rc != 0 && errno != ENOENT)
        fl_warn("retention: cannot remove %s: %s", path, strerror(errno));
    return 0;
}

/* Is path strictly inside dir (no "..")? */
static bool inside(const char *dir, const char *path)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    return strncmp(path, dir, n) == 0 && path[n] == '/' && path[n + 1] != '\0' &&
           strstr(path, "/../") == NULL && strcmp(path + strlen(path) - 3, "/..") != 0;
}

int fl_serve_prune(fl_store *s, const char *reports_dir, uint64_t runs_per_experiment,
                   uint64_t max_age_ms, int64_t now_ms, size_t *removed, char *err, size_t errlen)
{
    char **folders = NULL;
    size_t n = 0;
    if (fl_store_prune_begin(s, now_ms, (int64_t)runs_per_experiment, (int64_t)max_age_ms, &folders,
                             &n) != FL_STORE_OK) {
        snprintf(err, errlen, "retention: %s", fl_store_error(s));
        return -EIO;
    }
    for (size_t i = 0; i < n; i++) {
        if (folders[i] == NULL)
            continue;
        if (!inside(reports_dir, folders[i])) {
            fl_warn("retention: %s is not inside reports_dir %s: left in place", folders[i],
                    reports_dir);
            continue;
        }
        nftw(folders[i], remove_one, 16, FTW_DEPTH | FTW_PHYS);
    }
    fl_store_folders_free(folders, n);
    if (fl_store_prune_end(s, true) != FL_STORE_OK) {
        snprintf(err, errlen, "retention: %s", fl_store_error(s));
        return -EIO;
    }
    *removed = n;
    return 0;
}
