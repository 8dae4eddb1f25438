#include "agent/procstat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int fl_procstat_read(pid_t pid, struct fl_procstat *out)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -ESRCH;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -ESRCH;
    buf[n] = '\0';
    const char *open_paren = strchr(buf, '(');
    const char *close_paren = strrchr(buf, ')');
    if (open_paren == NULL || close_paren == NULL || close_paren < open_paren)
        return -EIO;
    struct fl_procstat st;
    size_t clen = (size_t)(close_paren - open_paren - 1);
    if (clen >= sizeof(st.comm))
        clen = sizeof(st.comm) - 1;
    memcpy(st.comm, open_paren + 1, clen);
    st.comm[clen] = '\0';
    /* after ")": state(3) ppid(4) pgrp session tty_nr tpgid flags(9) minflt cminflt
     * majflt cmajflt utime stime cutime cstime priority nice num_threads
     * itrealvalue starttime(22) */
    int ppid = 0;
    unsigned long long start = 0;
    if (sscanf(close_paren + 1,
               " %c %d %*d %*d %*d %*d %lu %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
               &st.state, &ppid, &st.flags, &start) != 4)
        return -EIO;
    st.ppid = ppid;
    st.start = (uint64_t)start;
    *out = st;
    return 0;
}
