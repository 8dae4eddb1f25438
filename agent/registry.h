/* The fault registry: every fault this agent holds, from request to revert.
 *
 *   prepare ─► journal apply ─► apply ─► ACTIVE ─► revert ─► journal revert ─► ENDED
 *   (loop)     (fsync, pool)    (pool)     │        (pool)     (fsync, pool)
 *                                          ├─ tick every tick_ms (pool), for restart storms
 *                                          └─ ends: duration, request, lease, halt, shutdown
 *
 * A revert that keeps failing leaves the fault active, as REVERT_FAILED, and
 * tried again with a backoff (the machine is drawn in registry.c).
 *
 * Prepare runs on the loop; everything that touches the host or the disk runs
 * in libuv's thread pool, one operation per fault at a time. A revert asked
 * for while an operation is in flight waits for it. Nothing is applied before
 * its journal record is on disk; a revert is journaled only once done.
 *
 * Leases: each non-detached fault belongs to a session. fl_registry_heartbeat
 * renews that session's lease; when it runs out, the session's faults are
 * reverted, whether or not its connection is still open. */
#ifndef FL_AGENT_REGISTRY_H
#define FL_AGENT_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "agent/fault.h"
#include "faultline.pb-c.h"

struct fl_journal;
struct fl_registry;
struct fl_record;

/* Why a fault ended. */
enum fl_end {
    FL_END_REQUESTED,
    FL_END_EXPIRED,
    FL_END_LEASE_LOST,
    FL_END_HALTED,
    FL_END_SHUTDOWN,
};

struct fl_registry_config {
    uv_loop_t *loop;
    struct fl_journal *journal;
    const struct fl_agent_ctx *ctx;
    uint32_t lease_ms;
};

int fl_registry_new(const struct fl_registry_config *cfg, struct fl_registry **out);
/* Only once no fault is active (after fl_registry_revert_all with
 * FL_END_SHUTDOWN has called back; asserted); closes the
 * registry's handles, freeing it in their close callbacks. */
void fl_registry_close(struct fl_registry *reg);

/* Inject: cb runs once, with the record when the fault is active (valid for
 * the duration of the callback), or with an error code and message.
 * ERROR_BUSY when max_faults (guardrails) records are on the active list
 * already, or when the kind's prepare says another fault holds its target.
 * What prepare reserved in the ledger (agent/guardrails.h) the registry
 * releases exactly once, when the record leaves the active list. */
typedef void (*fl_inject_cb)(void *arg, const struct fl_record *rec, Faultline__ErrorCode code,
                             const char *error);
void fl_registry_inject(struct fl_registry *reg, const Faultline__FaultSpec *spec,
                        uint64_t session_id, bool detached, fl_inject_cb cb, void *arg);

/* Preview: the checks, guardrails and target resolution of an inject, on
 * the loop and at once, with nothing applied, journaled or held (what
 * prepare reserves in the ledger is released before this returns). 0 with
 * out filled (fl_preview_free it), or -1 with the code and message the
 * inject would get. */
struct fl_preview;
int fl_registry_preview(struct fl_registry *reg, const Faultline__FaultSpec *spec,
                        struct fl_preview *out, Faultline__ErrorCode *code, char *err,
                        size_t errlen);

/* Revert one fault, or all. cb runs once every named fault has ended or its
 * revert has failed, with those records (valid during the callback), n == 0
 * when none. status: -ENOENT (one fault) when the id is unknown; -EIO when a
 * revert failed (fl_record_revert_error says why; the fault stays active and
 * is tried again with a backoff). With FL_END_SHUTDOWN the registry is
 * stopping: a fault whose revert fails is not retried but left in the
 * journal, off the active list, for the guardian and the next start. */
typedef void (*fl_revert_cb)(void *arg, const struct fl_record *const *recs, size_t n, int status);
void fl_registry_revert(struct fl_registry *reg, const char *id, enum fl_end why, fl_revert_cb cb,
                        void *arg);
void fl_registry_revert_all(struct fl_registry *reg, enum fl_end why, fl_revert_cb cb, void *arg);

/* Takes over a fault an earlier agent left in the journal and that start-up
 * could not revert: listed as REVERT_FAILED and tried again with the backoff
 * (its journal record is already there). -EINVAL for an undo object without
 * an id or of a kind this agent does not have; -ENOMEM. */
int fl_registry_adopt(struct fl_registry *reg, const json_t *undo);

/* Renews a session's lease. */
void fl_registry_heartbeat(struct fl_registry *reg, uint64_t session_id);

/* Active faults (and, with ended, the most recent ended ones), oldest first.
 * Fills at most cap. */
size_t fl_registry_list(struct fl_registry *reg, bool ended, const struct fl_record **out,
                        size_t cap);
size_t fl_registry_active_count(const struct fl_registry *reg);
/* How many records fl_registry_list would write with that ended and no cap:
 * the active ones, plus with ended the ended ones kept for listings. */
size_t fl_registry_count(const struct fl_registry *reg, bool ended);

/* Fills out to describe rec; out's pointers point into rec. */
void fl_record_describe(const struct fl_record *rec, Faultline__Fault *out);
const char *fl_record_id(const struct fl_record *rec);
/* Why the fault's last revert failed; NULL when it has not. */
const char *fl_record_revert_error(const struct fl_record *rec);
/* What revert needs, as journaled. */
const json_t *fl_record_undo(const struct fl_record *rec);

#endif
