/* /proc/PID/stat, read once, parsed in one place. */
#ifndef FL_AGENT_PROCSTAT_H
#define FL_AGENT_PROCSTAT_H

#include <stdint.h>
#include <sys/types.h>

struct fl_procstat {
    char comm[64]; /* the kernel's name for it (at most 15 bytes) */
    char state;    /* 'R', 'S', 'T' (stopped), 'Z' (zombie) ... */
    pid_t ppid;
    unsigned long flags; /* PF_* (PF_KTHREAD = 0x00200000) */
    uint64_t start;      /* start time, clock ticks since boot: with the pid, an identity */
};

/* 0, -ESRCH when the process is gone, -EIO when the line cannot be parsed.
 * comm may hold spaces and parentheses: it runs from the first '(' to the
 * last ')'. Writes only on success. */
int fl_procstat_read(pid_t pid, struct fl_procstat *out);

#endif
