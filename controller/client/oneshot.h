/* One request to each of several agents, for the commands that do exactly
 * that (agents, inject, revert, halt): connect, authenticate, send what
 * build() makes, hand the reply to reply(), done. The hosts go through the
 * controller's one fan-out (fleet.h): a window of them at a time, the rest
 * queued, so any number of hosts works within the descriptor limit. An
 * agent's Error reply and every connection failure end up as a sentence in
 * the target's error. */
#ifndef FL_CONTROLLER_ONESHOT_H
#define FL_CONTROLLER_ONESHOT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/key.h"
#include "faultline.pb-c.h"

/* Retries (fl_oneshot_opts.retry) start this far apart and double up to the
 * second. */
#define FL_ONESHOT_RETRY_FIRST_MS 200
#define FL_ONESHOT_RETRY_MAX_MS 2000

struct fl_oneshot_target {
    const char *spec; /* as the user wrote it */
    char host[256];
    uint16_t port;
    int status;                      /* 0 when the request succeeded */
    Faultline__ErrorCode agent_code; /* when the agent replied with an Error */
    bool reached;                    /* an attempt got as far as an answer or a failure */
    unsigned attempts;               /* connections tried */
    uint64_t done_ms;                /* when it ended, ms after the first start */
    char error[640];
    void *user; /* for build and reply */
};

struct fl_oneshot_ops {
    /* Fills req (msg_case and its message, which must outlive the call to
     * fl_oneshot: build may point into static or caller storage). */
    void (*build)(struct fl_oneshot_target *t, Faultline__Envelope *req, void *ctx);
    /* A non-Error reply. Set t->status (and t->error) if it is not what was
     * expected. */
    void (*reply)(struct fl_oneshot_target *t, const Faultline__Envelope *reply, void *ctx);
};

struct fl_oneshot_opts {
    uint64_t timeout_ms; /* each try: connecting and authenticating, then the reply */
    /* In all, from the start (0: none). A host not yet tried, or waiting for
     * its next try, when it passes fails "not reached" (reached stays false
     * unless an earlier try got an answer). */
    uint64_t deadline_ms;
    /* Try a failed host again (FL_ONESHOT_RETRY_FIRST_MS, doubling) until it
     * succeeds or the deadline passes, unless the failure cannot change by
     * trying again (wrong key, not an agent, unknown host, a refused
     * request). */
    bool retry;
};

/* Parses specs into targets (usage error: returns -EINVAL naming the bad one
 * in *bad), runs every request, and returns how many targets failed. Every
 * target that failed has a negative errno in status and a sentence in error,
 * also when nothing could be sent at all (no memory, no event loop). Running
 * out of descriptors is never a target's failure: the target is queued
 * again (fleet.h). */
int fl_oneshot_parse(char *const *specs, int n, struct fl_oneshot_target *targets,
                     const char **bad);
int fl_oneshot_run(struct fl_oneshot_target *targets, int n, const struct fl_key *key,
                   const struct fl_oneshot_opts *o, const struct fl_oneshot_ops *ops, void *ctx);

#endif
