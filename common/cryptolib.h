/* libcrypto (OpenSSL 3), loaded when first needed (issue 12 item 7): an
 * idle agent that no controller has reached, and its guardian, never map it.
 * The dynamic linker's work for libcrypto (its symbol and relocation tables
 * read, 0.4 MiB of data relocated and so private to the process) was
 * 1.4 MiB of the agent's RSS just started and 0.5 MiB of its guardian's
 * (bench/README.md, agent memory). It is loaded by the first handshake, the
 * first journal record written or read with a checksum, or `keygen`.
 *
 * This file is the only one that knows about dlopen. The functions are
 * OpenSSL's own, whose types it keeps (from OpenSSL's headers); nothing of
 * OpenSSL is written again here. A library that cannot be loaded is an error
 * naming it and the reason, logged, and the operation that needed it fails:
 * a handshake is refused, a journal append or read fails loudly. */
#ifndef FL_COMMON_CRYPTOLIB_H
#define FL_COMMON_CRYPTOLIB_H

#include <stddef.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

/* The soname loaded: OpenSSL 3's ABI (EVP_MAC and EVP_CIPHER_fetch are 3.0's). */
#define FL_CRYPTOLIB_SONAME "libcrypto.so.3"

struct fl_cryptolib {
    __typeof__(EVP_MAC_fetch) *mac_fetch;
    __typeof__(EVP_MAC_CTX_new) *mac_ctx_new;
    __typeof__(EVP_MAC_CTX_free) *mac_ctx_free;
    __typeof__(EVP_MAC_init) *mac_init;
    __typeof__(EVP_MAC_update) *mac_update;
    __typeof__(EVP_MAC_final) *mac_final;
    __typeof__(OSSL_PARAM_construct_utf8_string) *param_utf8_string;
    __typeof__(OSSL_PARAM_construct_end) *param_end;
    __typeof__(EVP_CIPHER_fetch) *cipher_fetch;
    __typeof__(EVP_CIPHER_CTX_new) *cipher_ctx_new;
    __typeof__(EVP_CIPHER_CTX_free) *cipher_ctx_free;
    __typeof__(EVP_CIPHER_CTX_ctrl) *cipher_ctx_ctrl;
    __typeof__(EVP_CipherInit_ex2) *cipher_init;
    __typeof__(EVP_CipherUpdate) *cipher_update;
    __typeof__(EVP_CipherFinal_ex) *cipher_final;
    __typeof__(EVP_Digest) *digest;
    __typeof__(EVP_sha256) *sha256;
    __typeof__(RAND_bytes) *rand_bytes;
    __typeof__(CRYPTO_memcmp) *memcmp;
    /* fetched when the library is loaded, so that OpenSSL's first algorithm
     * lookup (its configuration read, its providers started) happens on the
     * loading thread -- the agent's thread pool, never its loop; NULL when
     * the library has no such algorithm (the handshake then fails) */
    EVP_MAC *hmac;
    EVP_CIPHER *chacha20_poly1305;
};

/* The library's functions, loading it on the first call (once per process,
 * thread-safe; never unloaded). NULL when it cannot be loaded, with err
 * saying so ("... needs libcrypto (libcrypto.so.3), which could not be
 * loaded: <reason>; install it (Debian and Ubuntu: libssl3)"), also logged
 * as an error. A failed load is tried again on the next call. Loading reads
 * the library (page-cache mapped, once per process) and fetches the
 * handshake's algorithms, which reads OpenSSL's configuration. */
const struct fl_cryptolib *fl_cryptolib_get(char *err, size_t errlen);

/* The same, for callers that report only a code: NULL is logged. */
const struct fl_cryptolib *fl_cryptolib(void);

/* Has this process loaded it? (For tests and the benchmark.) */
int fl_cryptolib_loaded(void);

#endif
