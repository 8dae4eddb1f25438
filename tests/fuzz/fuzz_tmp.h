/* For the fuzz targets whose parser reads a file: one private directory per
 * process (mkdtemp under $TMPDIR or /tmp, "fl-fuzz-PID-"), removed with what
 * it holds when the process exits, so that parallel fuzzers (-jobs, -fork)
 * and the replay tests never share or leave a file. A fuzzer that dies
 * without exit() (a crash, libFuzzer's SIGTERM/SIGINT handling, -timeout)
 * leaves its directory: the next target to start removes those whose
 * process is gone. */
#ifndef FL_TESTS_FUZZ_TMP_H
#define FL_TESTS_FUZZ_TMP_H

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char fuzz_tmp_dir[4096];

/* Removes dir and the files in it (the targets make no subdirectories). */
static void fuzz_tmp_remove(const char *dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                unlinkat(dirfd(d), e->d_name, 0);
        }
        closedir(d);
    }
    rmdir(dir);
}

static void fuzz_tmp_cleanup(void)
{
    fuzz_tmp_remove(fuzz_tmp_dir);
}

/* Removes base/fl-fuzz-PID-* whose process no longer exists. */
static void fuzz_tmp_sweep(const char *base)
{
    DIR *d = opendir(base);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        if (strncmp(e->d_name, "fl-fuzz-", 8) != 0)
            continue;
        long pid = strtol(e->d_name + 8, &end, 10);
        if (end == e->d_name + 8 || *end != '-' || pid <= 0)
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char stale[4096];
        snprintf(stale, sizeof(stale), "%s/%s", base, e->d_name);
        fuzz_tmp_remove(stale);
    }
    closedir(d);
}

/* The process's directory, made on first use. Aborts when it cannot be made:
 * a fuzzer that cannot write its input would explore nothing. */
static inline const char *fuzz_tmp(void)
{
    if (fuzz_tmp_dir[0] == '\0') {
        const char *base = getenv("TMPDIR");
        if (base == NULL || base[0] == '\0')
            base = "/tmp";
        fuzz_tmp_sweep(base);
        snprintf(fuzz_tmp_dir, sizeof(fuzz_tmp_dir), "%s/fl-fuzz-%ld-XXXXXX", base, (long)getpid());
        if (mkdtemp(fuzz_tmp_dir) == NULL) {
            perror(fuzz_tmp_dir);
            abort();
        }
        atexit(fuzz_tmp_cleanup);
    }
    return fuzz_tmp_dir;
}

/* Writes data to NAME in the process's directory (replacing it, with mode)
 * and returns its path in path. Aborts on failure. */
static inline void fuzz_tmp_write(const char *name, const uint8_t *data, size_t size, mode_t mode,
                                  char *path, size_t pathlen)
{
    snprintf(path, pathlen, "%s/%s", fuzz_tmp(), name);
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        perror(path);
        abort();
    }
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(fd, data + off, size - off);
        if (n <= 0) {
            perror(path);
            abort();
        }
        off += (size_t)n;
    }
    close(fd);
}

/* data as a C string (a malloc'd copy with a NUL after it; an embedded NUL
 * ends the text there, as it would for the caller). Aborts when out of
 * memory. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
