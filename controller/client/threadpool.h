/* The size of libuv's thread pool, for the controller's commands whose
 * blocking work (libssh2 sessions) holds a pool thread each. */
#ifndef FL_CONTROLLER_THREADPOOL_H
#define FL_CONTROLLER_THREADPOOL_H

#include <stddef.h>

#define FL_THREADPOOL_DEFAULT 4 /* libuv's own size */
#define FL_THREADPOOL_MAX 128

/* Asks for want threads (at most FL_THREADPOOL_MAX) through
 * UV_THREADPOOL_SIZE, which libuv reads when the pool first starts: so call
 * it before the first uv_queue_work or uv_getaddrinfo of the process. Does
 * nothing when want is no more than libuv's default or when the user set
 * UV_THREADPOOL_SIZE. */
void fl_threadpool_size(size_t want);

#endif
