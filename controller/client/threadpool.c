/* The size of libuv's thread pool, set once through UV_THREADPOOL_SIZE. */
#include "controller/client/threadpool.h"

#include <stdio.h>
#include <stdlib.h>

void fl_threadpool_size(size_t want)
{
    if (want <= FL_THREADPOOL_DEFAULT || getenv("UV_THREADPOOL_SIZE") != NULL)
        return;
    char v[16];
    snprintf(v, sizeof(v), "%zu", want < FL_THREADPOOL_MAX ? want : (size_t)FL_THREADPOOL_MAX);
    setenv("UV_THREADPOOL_SIZE", v, 0); /* read by libuv when the pool first starts */
}
