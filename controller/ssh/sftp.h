/* Copying a file to a host over an open SSH session (SFTP). Blocks, as
 * everything in controller/ssh/session.h: for libuv's thread pool. */
#ifndef FL_CONTROLLER_SSH_SFTP_H
#define FL_CONTROLLER_SSH_SFTP_H

#include <stddef.h>
#include <stdint.h>

#include "controller/ssh/session.h"

/* Writes len bytes of data to remote_path with mode, through SFTP: first to
 * "<remote_path>.tmp-faultline.<pid>.<random>", created exclusively (O_EXCL)
 * and given its mode before any content is written, then renamed over
 * remote_path (mv -f), so that a half-written file never stands in its
 * place. The temporary file is removed when the copy fails. The directory
 * must exist. Returns 0 or a negative errno with err filled. */
int fl_ssh_upload(struct fl_ssh_session *s, const void *data, size_t len, const char *remote_path,
                  int mode, uint64_t deadline_ns, char *err, size_t errlen);

#endif
