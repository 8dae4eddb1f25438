#include "common/cryptolib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"

static pthread_mutex_t lib_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fl_cryptolib lib;
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

const struct fl_cryptolib *fl_cryptolib_get(char *err, size_t errlen)
{
    pthread_mutex_lock(&lib_lock);
    if (loaded) {
        pthread_mutex_unlock(&lib_lock);
        return &lib;
    }
    struct fl_cryptolib next;
    const char *missing = NULL;
    /* RTLD_LOCAL: its symbols stay its own; RTLD_NOW: a broken library
     * fails here, not in the middle of a handshake */
    void *h = dlopen(FL_CRYPTOLIB_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *why = dlerror();
        snprintf(err, errlen,
                 "authentication and the journal need libcrypto (" FL_CRYPTOLIB_SONAME
                 "), which could not be loaded: %s; install it (Debian and Ubuntu: libssl3)",
                 why ? why : "no reason given");
        pthread_mutex_unlock(&lib_lock);
        fl_error("%s", err);
        return NULL;
    }
    RESOLVE(mac_fetch, "EVP_MAC_fetch");
    RESOLVE(mac_ctx_new, "EVP_MAC_CTX_new");
    RESOLVE(mac_ctx_free, "EVP_MAC_CTX_free");
    RESOLVE(mac_init, "EVP_MAC_init");
    RESOLVE(mac_update, "EVP_MAC_update");
    RESOLVE(mac_final, "EVP_MAC_final");
    RESOLVE(param_utf8_string, "OSSL_PARAM_construct_utf8_string");
    RESOLVE(param_end, "OSSL_PARAM_construct_end");
    RESOLVE(cipher_fetch, "EVP_CIPHER_fetch");
    RESOLVE(cipher_ctx_new, "EVP_CIPHER_CTX_new");
    RESOLVE(cipher_ctx_free, "EVP_CIPHER_CTX_free");
    RESOLVE(cipher_ctx_ctrl, "EVP_CIPHER_CTX_ctrl");
    RESOLVE(cipher_init, "EVP_CipherInit_ex2");
    RESOLVE(cipher_update, "EVP_CipherUpdate");
    RESOLVE(cipher_final, "EVP_CipherFinal_ex");
    RESOLVE(digest, "EVP_Digest");
    RESOLVE(sha256, "EVP_sha256");
    RESOLVE(rand_bytes, "RAND_bytes");
    RESOLVE(memcmp, "CRYPTO_memcmp");
    next.hmac = next.mac_fetch(NULL, "HMAC", NULL);
    next.chacha20_poly1305 = next.cipher_fetch(NULL, "ChaCha20-Poly1305", NULL);
    lib = next;
    loaded = 1;
    pthread_mutex_unlock(&lib_lock);
    return &lib;
fail:
    snprintf(err, errlen,
             "authentication and the journal need libcrypto (" FL_CRYPTOLIB_SONAME
             "), but the one installed has no %s: it is too old or not OpenSSL 3",
             missing);
    dlclose(h);
    pthread_mutex_unlock(&lib_lock);
    fl_error("%s", err);
    return NULL;
}

const struct fl_cryptolib *fl_cryptolib(void)
{
    char err[512];
    return fl_cryptolib_get(err, sizeof(err));
}

int fl_cryptolib_loaded(void)
{
    pthread_mutex_lock(&lib_lock);
    int l = loaded;
    pthread_mutex_unlock(&lib_lock);
    return l;
}
