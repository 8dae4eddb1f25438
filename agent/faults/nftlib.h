/* libnftables, loaded when first needed (issue 12 item 7): the agent maps it
 * (and libnftnl, libmnl, libgmp, libxtables, libjansson's share of it) only
 * once a network fault is applied or reverted, or a journal replay reverts
 * one, not at start: an idle agent and its guardian never carry it.
 *
 * This file is the only one that knows about dlopen. The functions are
 * those of <nftables/libnftables.h>, whose types it keeps. A library that
 * cannot be loaded is an error for network faults alone, naming the library
 * and the reason; the agent starts without it. */
#ifndef FL_AGENT_FAULTS_NFTLIB_H
#define FL_AGENT_FAULTS_NFTLIB_H

#include <stddef.h>

#include <nftables/libnftables.h>

/* The soname loaded: the ABI of libnftables 0.9 to 1.x. */
#define FL_NFTLIB_SONAME "libnftables.so.1"

struct fl_nftlib {
    __typeof__(nft_ctx_new) *ctx_new;
    __typeof__(nft_ctx_free) *ctx_free;
    __typeof__(nft_ctx_buffer_output) *ctx_buffer_output;
    __typeof__(nft_ctx_buffer_error) *ctx_buffer_error;
    __typeof__(nft_ctx_get_output_buffer) *ctx_get_output_buffer;
    __typeof__(nft_ctx_get_error_buffer) *ctx_get_error_buffer;
    __typeof__(nft_ctx_output_set_flags) *ctx_output_set_flags;
    __typeof__(nft_run_cmd_from_buffer) *run_cmd_from_buffer;
};

/* The library's functions, loading it on the first call (once per process,
 * thread-safe; never unloaded). NULL when it cannot be loaded, with err
 * saying so: "network faults need libnftables (libnftables.so.1), which
 * could not be loaded: <reason>; install it (Debian: libnftables1)". A
 * failed load is tried again on the next call. May block (it reads the
 * library from disk): call it off the loop. */
const struct fl_nftlib *fl_nftlib_get(char *err, size_t errlen);

/* Has this process loaded it? (For tests and the benchmark.) */
int fl_nftlib_loaded(void);

#endif
