/* Copying a file to the host over SFTP: to a temporary name created
 * exclusively with its final mode, then moved into place. */
#include "controller/ssh/sftp.h"

#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "controller/ssh/io.h"
#include "controller/ssh/quote.h"

static const char *sftp_reason(unsigned long code)
{
    switch (code) {
    case LIBSSH2_FX_NO_SUCH_FILE:
    case LIBSSH2_FX_NO_SUCH_PATH:
        return "no such directory";
    case LIBSSH2_FX_PERMISSION_DENIED:
    case LIBSSH2_FX_WRITE_PROTECT:
        return "permission denied";
    case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
    case LIBSSH2_FX_QUOTA_EXCEEDED:
        return "no space left";
    }
    return "SFTP error";
}

/* After a failed copy: the temporary file goes, if the session still can
 * (a short grace past an expired deadline; nothing when cancelled). */
static void remove_tmp(struct fl_ssh_session *s, const char *tmp)
{
    if (atomic_load(&s->cancelled) || s->sftp == NULL)
        return;
    uint64_t grace = fl_mono_ns() + CLOSE_GRACE_NS;
    if (s->deadline < grace)
        s->deadline = grace;
    int io_err = s->io_err;
    int r;
    AGAIN(s, r, libssh2_sftp_unlink_ex(s->sftp, tmp, (unsigned)strlen(tmp)));
    (void)r;
    s->io_err = io_err;
}

int fl_ssh_upload(struct fl_ssh_session *s, const void *data, size_t len, const char *remote_path,
                  int mode, uint64_t deadline_ns, char *err, size_t errlen)
{
    s->deadline = deadline_ns;
    s->io_err = 0;
    if (s->sftp == NULL) {
        AGAIN_PTR(s, s->sftp, libssh2_sftp_init(s->ssh));
        if (s->sftp == NULL) {
            if (s->io_err < 0)
                return fl_ssh_fail(s, WAIT_FAILED, "starting SFTP", err, errlen);
            snprintf(err, errlen,
                     "%s (%s): cannot start SFTP (%s): the server needs the sftp subsystem "
                     "(openssh-sftp-server)",
                     s->name, s->where, fl_ssh_last_error(s));
            return -EPROTO;
        }
    }
    /* A name of its own: two deploys (or two jobs) never share a temporary
     * file, and O_EXCL never writes through one planted there. */
    unsigned char rnd[6];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        snprintf(err, errlen, "%s: no randomness for a temporary name", s->name);
        return -EIO;
    }
    char tmp[1100];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp-faultline.%ld.%02x%02x%02x%02x%02x%02x", remote_path,
                 (long)getpid(), rnd[0], rnd[1], rnd[2], rnd[3], rnd[4],
                 rnd[5]) >= (int)sizeof(tmp)) {
        snprintf(err, errlen, "%s: remote path too long: %s", s->name, remote_path);
        return -ENAMETOOLONG;
    }
    LIBSSH2_SFTP_HANDLE *h;
    AGAIN_PTR(s, h,
              libssh2_sftp_open_ex(s->sftp, tmp, (unsigned)strlen(tmp),
                                   LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL,
                                   mode & 0700, LIBSSH2_SFTP_OPENFILE));
    if (h == NULL) {
        if (s->io_err < 0)
            return fl_ssh_fail(s, WAIT_FAILED, "opening a file over SFTP", err, errlen);
        unsigned long code = libssh2_sftp_last_error(s->sftp);
        snprintf(err, errlen, "%s (%s): cannot write %s: %s", s->name, s->where, tmp,
                 sftp_reason(code));
        return code == LIBSSH2_FX_PERMISSION_DENIED ? -EACCES : -EIO;
    }
    /* the final mode before any content: the key is never readable by others */
    LIBSSH2_SFTP_ATTRIBUTES attrs = {.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS,
                                     .permissions = (unsigned long)mode};
    int rc = 0;
    int r;
    AGAIN(s, r, libssh2_sftp_fsetstat(h, &attrs));
    if (r != 0)
        rc = r == WAIT_FAILED ? fl_ssh_fail(s, r, "setting a file's mode over SFTP", err, errlen)
                              : -EIO;
    if (r != 0 && rc == -EIO)
        snprintf(err, errlen, "%s (%s): cannot set the mode of %s: %s", s->name, s->where, tmp,
                 sftp_reason(libssh2_sftp_last_error(s->sftp)));
    size_t off = 0;
    while (rc == 0 && off < len) {
        size_t chunk = len - off < 65536 ? len - off : 65536;
        ssize_t n = libssh2_sftp_write(h, (const char *)data + off, chunk);
        if (n == LIBSSH2_ERROR_EAGAIN) {
            int w = fl_ssh_wait_io(s);
            if (w < 0) {
                s->io_err = w;
                rc = fl_ssh_fail(s, WAIT_FAILED, "copying a file over SFTP", err, errlen);
                break;
            }
            continue;
        }
        if (n < 0) {
            snprintf(err, errlen, "%s (%s): writing %s failed: %s", s->name, s->where, tmp,
                     sftp_reason(libssh2_sftp_last_error(s->sftp)));
            rc = -EIO;
            break;
        }
        off += (size_t)n;
    }
    AGAIN(s, r, libssh2_sftp_close_handle(h));
    if (rc == 0 && r != 0)
        rc = fl_ssh_fail(s, r, "closing a file over SFTP", err, errlen);
    if (rc < 0) {
        remove_tmp(s, tmp);
        return rc;
    }

    char qtmp[4500], qpath[4500], cmd[18200];
    if (fl_ssh_quote(tmp, qtmp, sizeof(qtmp)) < 0 ||
        fl_ssh_quote(remote_path, qpath, sizeof(qpath)) < 0) {
        snprintf(err, errlen, "%s: remote path too long: %s", s->name, remote_path);
        remove_tmp(s, tmp);
        return -ENAMETOOLONG;
    }
    snprintf(cmd, sizeof(cmd), "chmod %o -- %s && mv -f -- %s %s || { rm -f -- %s; exit 1; }",
             (unsigned)mode, qtmp, qtmp, qpath, qtmp);
    int status = -1;
    char output[512];
    rc = fl_ssh_exec(s, cmd, deadline_ns, &status, output, sizeof(output), err, errlen);
    if (rc == 0 && status != 0) {
        output[strcspn(output, "\n")] = '\0';
        snprintf(err, errlen, "%s (%s): cannot move %s into place: %s", s->name, s->where, tmp,
                 output);
        return -EIO;
    }
    return rc;
}
