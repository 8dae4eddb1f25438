/* The agent's state directory: where its journal lives. Created 0700 when
 * missing; refused when others could write to it. One agent (or the guardian
 * of a dead one, still cleaning up) holds its lock at a time. */
#ifndef FL_AGENT_STATEDIR_H
#define FL_AGENT_STATEDIR_H

#include <stddef.h>

/* Opens dir and takes its lock, waiting up to wait_ms for a guardian that
 * is still reverting. *lock_fd stays open for the agent's life. */
int fl_statedir_open(const char *dir, unsigned wait_ms, int *lock_fd, char *err, size_t errlen);

#endif
