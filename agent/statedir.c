#include "agent/statedir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

int fl_statedir_open(const char *dir, unsigned wait_ms, int *lock_fd, char *err, size_t errlen)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        int rc = -errno;
        snprintf(err, errlen, "cannot create state directory %s: %s", dir, strerror(errno));
        return rc;
    }
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "state directory %s is not a directory", dir);
        return -ENOTDIR;
    }
    if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        snprintf(err, errlen,
                 "state directory %s must belong to this user and not be writable by others "
                 "(chown, then chmod 700)",
                 dir);
        return -EPERM;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int rc = -errno;
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return rc;
    }
    for (unsigned waited = 0;; waited += 50) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            break;
        if (errno != EWOULDBLOCK || waited >= wait_ms) {
            snprintf(err, errlen,
                     "state directory %s is in use by another agent (or by the guardian of one "
                     "that died, still reverting)",
                     dir);
            close(fd);
            return -EBUSY;
        }
        if (waited == 0)
            fl_info("state directory %s is locked (a guardian still reverting?): waiting", dir);
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    *lock_fd = fd;
    return 0;
}
