#include "agent/faults/nftlib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_mutex_t lib_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fl_nftlib lib;
static int loaded; /* under lib_lock */

/* dlsym's void * to a function pointer, as POSIX allows */
#define RESOLVE(field, name)                                                                       \
    do {                                                                                           \
        void *sym = dlsym(h, name);                                                                \
        if (sym == NULL) {                                                                         \
            missing = name;                                                                        \
            goto fail;                                                                             \
        }                                                                                          \
        memcpy(&next.field, &sym, sizeof(sym));                                                    \
    } while (0)

const struct fl_nftlib *fl_nftlib_get(char *err, size_t errlen)
{
    pthread_mutex_lock(&lib_lock);
    if (loaded) {
        pthread_mutex_unlock(&lib_lock);
        return &lib;
    }
    struct fl_nftlib next;
    const char *missing = NULL;
    /* RTLD_LOCAL: its symbols stay its own; RTLD_NOW: a broken library
     * fails here, not in the middle of a fault */
    void *h = dlopen(FL_NFTLIB_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *why = dlerror();
        snprintf(err, errlen,
                 "network faults need libnftables (" FL_NFTLIB_SONAME "), which could not be "
                 "loaded: %s; install it (Debian and Ubuntu: libnftables1)",
                 why ? why : "no reason given");
        pthread_mutex_unlock(&lib_lock);
        return NULL;
    }
    RESOLVE(ctx_new, "nft_ctx_new");
    RESOLVE(ctx_free, "nft_ctx_free");
    RESOLVE(ctx_buffer_output, "nft_ctx_buffer_output");
    RESOLVE(ctx_buffer_error, "nft_ctx_buffer_error");
    RESOLVE(ctx_get_output_buffer, "nft_ctx_get_output_buffer");
    RESOLVE(ctx_get_error_buffer, "nft_ctx_get_error_buffer");
    RESOLVE(ctx_output_set_flags, "nft_ctx_output_set_flags");
    RESOLVE(run_cmd_from_buffer, "nft_run_cmd_from_buffer");
    lib = next;
    loaded = 1;
    pthread_mutex_unlock(&lib_lock);
    return &lib;
fail:
    snprintf(err, errlen,
             "network faults need libnftables (" FL_NFTLIB_SONAME "), but the one installed has "
             "no %s: it is too old or not libnftables",
             missing);
    dlclose(h);
    pthread_mutex_unlock(&lib_lock);
    return NULL;
}

int fl_nftlib_loaded(void)
{
    pthread_mutex_lock(&lib_lock);
    int l = loaded;
    pthread_mutex_unlock(&lib_lock);
    return l;
}
