/* Fuzz target: what the agent does with an Envelope once a session is
 * authenticated (agent/session.c on_message, agent/registry.c inject): the
 * input is the Envelope's bytes (the frame target, fuzz_frame.c, covers how
 * they arrive). For an inject: the registry's checks (a kind it knows, a
 * duration, under max_duration) and the kind's prepare (agent/fault.h), which
 * checks parameters and guardrails and resolves targets by scanning /proc --
 * with a context whose state directory is this process's temporary
 * directory and guardrails from defaults. Applying is stubbed at that seam:
 * apply, tick and revert are never called, so nothing is signalled, no
 * worker started, no file filled and nftables never touched. For a revert:
 * the fault id check (common/faultid.h). Ping, status, heartbeat, list and
 * halt carry nothing the agent validates beyond decoding.
 *
 * A kind's prepare writes f->undo, the object that is journaled and later
 * drives revert: it must be an object naming its kind, as the registry and
 * fl_fault_revert_undo require. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/fault.h"
#include "agent/guardrails.h"
#include "common/faultid.h"
#include "faultline.pb-c.h"
#include "tests/fuzz/fuzz_tmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fl_guardrails guard;
static struct fl_agent_ctx ctx;

static void inject(const Faultline__FaultSpec *spec)
{
    const struct fl_fault_kind *kind = fl_fault_kind_for_spec(spec);
    if (kind == NULL || spec->duration_ms == 0 || spec->duration_ms > guard.max_duration_ms)
        return; /* the registry refuses these before prepare */
    struct fl_fault *f = calloc(1, sizeof(*f));
    if (f == NULL)
        abort();
    snprintf(f->id, sizeof(f->id), "f-fuzz");
    f->kind = kind;
    f->ctx = &ctx;
    f->spec = (Faultline__FaultSpec *)spec; /* borrowed: freed with the Envelope */
    f->duration_ms = spec->duration_ms;
    char err[512] = "";
    int rc = kind->prepare(f, &ctx, err, sizeof(err));
    if (rc == 0) {
        /* what the registry journals and revert reads back */
        const char *k = json_string_value(json_object_get(f->undo, "kind"));
        if (!json_is_object(f->undo) || k == NULL || strcmp(k, kind->name) != 0)
            abort();
    } else if (err[0] == '\0') {
        abort(); /* agent/fault.h: on failure err holds a sentence */
    }
    json_decref(f->undo);
    free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ctx.guard == NULL) {
        fl_guardrails_defaults(&guard);
        ctx.guard = &guard;
        ctx.state_dir = fuzz_tmp();
        ctx.control_port = 7411;
    }
    Faultline__Envelope *env = faultline__envelope__unpack(NULL, size, data);
    if (env == NULL)
        return 0;
    switch (env->msg_case) {
    case FAULTLINE__ENVELOPE__MSG_INJECT:
        if (env->inject->spec != NULL)
            inject(env->inject->spec);
        break;
    case FAULTLINE__ENVELOPE__MSG_REVERT:
        if (!env->revert->all)
            (void)fl_fault_id_ok(env->revert->fault_id);
        break;
    default:
        break;
    }
    faultline__envelope__free_unpacked(env, NULL);
    return 0;
}
