/* disk_fill's file-taking step, exposed so that tests can drive the paths the
 * kind normally picks for itself (the write fallback, a full file system). */
#ifndef FL_AGENT_FAULTS_DISK_H
#define FL_AGENT_FAULTS_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Skip fallocate and write real blocks, as on a file system without it. */
#define FL_DISK_FILL_WRITE 0x1u

/* Creates file (O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600) in its directory,
 * which must still be the directory its path names (an absolute path without
 * symlinks: -ELOOP when one was swapped in), and takes up to bytes in it: fallocate, or non-zero 1
 * MiB blocks when the file system lacks fallocate (or flags has FL_DISK_FILL_WRITE). A full file
 * system is not an error: what was taken stays, *taken says how much and *full is true. On any
 * other failure the file is removed again and err says why. */
int fl_disk_fill_take(const char *file, uint64_t bytes, unsigned flags, uint64_t *taken, bool *full,
                      char *err, size_t errlen);

/* The fill file for a fault: "<dir>/.faultline-<id>.fill". -EINVAL when the
 * id is not a plain fault id, -ENAMETOOLONG when it does not fit. */
int fl_disk_fill_file_name(const char *dir, const char *id, char *out, size_t outlen);

#endif
