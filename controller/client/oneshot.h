/* One request to each of several agents, in parallel, for the commands that
 * do exactly that (agents, inject, revert, halt): connect, authenticate, send
 * what build() makes, hand the reply to reply(), done. An agent's Error reply
 * and every connection failure end up as a sentence in the target's error. */
#ifndef FL_CONTROLLER_ONESHOT_H
#define FL_CONTROLLER_ONESHOT_H

#include <stdint.h>

#include "common/key.h"
#include "faultline.pb-c.h"

struct fl_oneshot_target {
    const char *spec; /* as the user wrote it */
    char host[256];
    uint16_t port;
    int status;                      /* 0 when the request succeeded */
    Faultline__ErrorCode agent_code; /* when the agent replied with an Error */
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

/* Parses specs into targets (usage error: returns -EINVAL naming the bad one
 * in *bad), runs every request, and returns how many targets failed. Every
 * target that failed has a negative errno in status and a sentence in error,
 * also when nothing could be sent at all (no memory, no event loop). */
int fl_oneshot_parse(char *const *specs, int n, struct fl_oneshot_target *targets,
                     const char **bad);
int fl_oneshot_run(struct fl_oneshot_target *targets, int n, const struct fl_key *key,
                   uint64_t timeout_ms, const struct fl_oneshot_ops *ops, void *ctx);

#endif
