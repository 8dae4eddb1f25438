/* The side-effect-free preview of a fault (docs/design.md section 3): ask an
 * agent what an inject of spec would do, without it doing anything. */
#ifndef FL_CONTROLLER_PREVIEW_H
#define FL_CONTROLLER_PREVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "controller/client/client.h"
#include "faultline.pb-c.h"

/* What an agent older than PreviewRequest is told, in place of its
 * "request not understood". */
#define FL_PREVIEW_TOO_OLD "this agent is too old to preview; upgrade it"

/* pv: the agent's answer, or NULL when it refused (code and message say why,
 * the message already mapped by fl_preview_error_text) or when status < 0
 * (-ETIMEDOUT, the connection closed, or -EPROTO for an unexpected reply;
 * message says which). Valid during the call only. */
typedef void (*fl_preview_cb)(struct fl_client *cl, const Faultline__Preview *pv,
                              Faultline__ErrorCode code, const char *message, int status,
                              void *arg);

/* Sends a PreviewRequest for spec (copied into the frame at once). cb runs
 * exactly once, unless this returns an error (-ENOMEM, or the client's). */
int fl_client_preview(struct fl_client *cl, const Faultline__FaultSpec *spec, uint64_t timeout_ms,
                      fl_preview_cb cb, void *arg);

/* True when an agent's Error to a PreviewRequest says it does not know the
 * request at all (an agent from before it): ERROR_UNSUPPORTED with the
 * "request not understood" of agent/session.c, as opposed to an unknown
 * fault kind. */
bool fl_preview_agent_too_old(Faultline__ErrorCode code, const char *message);

/* The sentence for a refusal: FL_PREVIEW_TOO_OLD for a too-old agent, else
 * the agent's own message. */
const char *fl_preview_error_text(Faultline__ErrorCode code, const char *message);

#endif
