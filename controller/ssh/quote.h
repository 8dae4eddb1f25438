/* Quoting for a POSIX shell: what the commands run on a host through
 * fl_ssh_exec embed. */
#ifndef FL_CONTROLLER_SSH_QUOTE_H
#define FL_CONTROLLER_SSH_QUOTE_H

#include <stddef.h>

/* "'it'\''s'": arg quoted for a POSIX shell, into buf. Returns the length or
 * -ENOSPC. */
int fl_ssh_quote(const char *arg, char *buf, size_t len);

#endif
