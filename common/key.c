#include "common/key.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cryptolib.h"

#define KEY_HEX_LEN (2 * FL_KEY_LEN)

/* "a FIFO", "a directory", ...: what a file that is not a regular one is */
static const char *file_kind(mode_t mode)
{
    return S_ISDIR(mode)    ? "a directory"
           : S_ISFIFO(mode) ? "a FIFO"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISSOCK(mode) ? "a socket"
                            : NULL;
}

/* 0 for a regular file; -EISDIR or -EINVAL with err naming what it is. */
static int regular_only(const char *path, mode_t mode, char *err, size_t errlen)
{
    if (S_ISREG(mode))
        return 0;
    const char *kind = file_kind(mode);
    if (kind == NULL)
        snprintf(err, errlen, "key file %s is not a regular file", path);
    else
        snprintf(err, errlen, "key file %s is %s, not a regular file", path, kind);
    return S_ISDIR(mode) ? -EISDIR : -EINVAL;
}

int fl_key_check_path(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        int e = errno;
        snprintf(err, errlen, "cannot use key file %s: %s", path, strerror(e));
        return -e;
    }
    return regular_only(path, st.st_mode, err, errlen);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int fl_key_load(const char *path, struct fl_key *key, char *err, size_t errlen)
{
    int rc = 0;
    char text[KEY_HEX_LEN * 2 + 2];
    struct fl_key tmp;

    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot open key file %s: %s", path, strerror(errno));
        return rc;
    }
    /* Check the file we opened, not the name: no window between check and read. */
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot stat key file %s: %s", path, strerror(errno));
        goto cleanup;
    }
    /* O_NONBLOCK above: a FIFO opens at once, and is refused here */
    if ((rc = regular_only(path, st.st_mode, err, errlen)) < 0)
        goto cleanup;
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        rc = -EPERM;
        snprintf(err, errlen,
                 "key file %s has mode %04o: group or others can reach it; "
                 "run: chmod 600 %s",
                 path, (unsigned)(st.st_mode & 07777), path);
        goto cleanup;
    }

    ssize_t n = read(fd, text, sizeof(text) - 1);
    if (n < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
        goto cleanup;
    }
    text[n] = '\0';

    const char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    size_t digits = 0;
    while (digits < KEY_HEX_LEN && hexval((unsigned char)p[digits]) >= 0)
        digits++;
    const char *rest = p + digits;
    while (isspace((unsigned char)*rest))
        rest++;
    if (digits != KEY_HEX_LEN || *rest != '\0') {
        rc = -EINVAL;
        snprintf(err, errlen,
                 "key file %s does not hold a key: expected %d hex digits "
                 "(write one with `faultline keygen`)",
                 path, KEY_HEX_LEN);
        goto cleanup;
    }
    for (size_t i = 0; i < FL_KEY_LEN; i++)
        tmp.bytes[i] =
            (uint8_t)(hexval((unsigned char)p[2 * i]) << 4 | hexval((unsigned char)p[2 * i + 1]));
    *key = tmp;

cleanup:
    explicit_bzero(text, sizeof(text));
    explicit_bzero(&tmp, sizeof(tmp));
    close(fd);
    return rc;
}

int fl_key_generate(struct fl_key *key)
{
    const struct fl_cryptolib *c = fl_cryptolib();
    if (c == NULL || c->rand_bytes(key->bytes, FL_KEY_LEN) != 1)
        return -EIO;
    return 0;
}

int fl_key_write(const char *path, const struct fl_key *key, bool overwrite, char *err,
                 size_t errlen)
{
    static const char digits[] = "0123456789abcdef";
    char text[KEY_HEX_LEN + 1];
    int rc = 0;

    for (size_t i = 0; i < FL_KEY_LEN; i++) {
        text[2 * i] = digits[key->bytes[i] >> 4];
        text[2 * i + 1] = digits[key->bytes[i] & 0xf];
    }
    text[KEY_HEX_LEN] = '\n';

    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (overwrite ? O_TRUNC : O_EXCL);
    int fd = open(path, flags, 0600);
    if (fd < 0) {
        rc = -errno;
        if (errno == EEXIST)
            snprintf(err, errlen, "%s already exists; refusing to overwrite a key (use --force)",
                     path);
        else
            snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        explicit_bzero(text, sizeof(text));
        return rc;
    }
    /* An existing file keeps its mode under O_TRUNC: tighten it. */
    if (fchmod(fd, 0600) != 0 || write(fd, text, sizeof(text)) != (ssize_t)sizeof(text) ||
        fsync(fd) != 0) {
        rc = errno ? -errno : -EIO;
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(-rc));
        close(fd);
        unlink(path);
    } else if (close(fd) != 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(path);
    }
    explicit_bzero(text, sizeof(text));
    return rc;
}

void fl_key_wipe(struct fl_key *key)
{
    explicit_bzero(key, sizeof(*key));
}
