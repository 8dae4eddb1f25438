/* What every fault kind implements, and the fault record they work on.
 *
 *   prepare (loop)  check parameters and guardrails, resolve targets, and
 *                   write into f->undo everything revert will need. Never
 *                   touches the host. Quick: no blocking calls.
 *      │  the registry journals f->undo (fsynced) before going on
 *   apply (thread pool)   change the host. May add to f->undo (say, worker
 *                   pids); the registry journals the update. Fills f->detail
 *                   and f->pids for the reply. On failure it must leave
 *                   nothing behind (or leave f->undo able to clean it up).
 *   tick (thread pool, optional)  every f->tick_ms while active (a restart
 *                   storm kills again).
 *   revert (thread pool, guardian, restart)  undo from the undo object
 *                   alone, with no other state: the agent that applied the
 *                   fault may be dead. Idempotent: reverting twice, or after
 *                   the target went away, succeeds.
 *
 * Own only what you create: every nft rule, file or process a fault creates
 * carries its fault id, and revert touches nothing else.
 *
 * Functions return 0 or a negative errno; on failure err holds a sentence for
 * the person who asked (it goes back in the error reply). prepare returns
 * -EPERM when, and only when, a guardrail refuses (the reply's code is then
 * ERROR_GUARDRAIL), -ESRCH when a selector matched nothing, and -EBUSY when
 * what it would act on is held by another active fault (ERROR_BUSY).
 *
 * What a fault will hold (bytes on a file system, memory, a paused process)
 * prepare records in f->ledger, as its last step and only when it succeeds:
 * later requests are checked against it before this one is applied. */
#ifndef FL_AGENT_FAULT_H
#define FL_AGENT_FAULT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/faultid.h"
#include "faultline.pb-c.h"

struct fl_guardrails;
struct fl_ledger;

#define FL_FAULT_ID_LEN (FL_FAULT_ID_MAX + 1) /* common/faultid.h: the one rule for ids */

/* What a kind may know about the agent it runs in. */
struct fl_agent_ctx {
    const struct fl_guardrails *guard;
    const char *state_dir; /* the agent's own directory, 0700 */
    uint16_t control_port; /* the agent's listening port: never cut */
    /* the agent's listening address when it is one host ("10.0.0.5"); ""
     * when it listens on every address: network faults then exempt the
     * control port on any local address */
    char control_addr[64];
    /* the agent's own nftables table (agent/faults/network.h); "" outside
     * an agent: network faults then use the default table */
    char nft_table[32];
};

struct fl_fault {
    char id[FL_FAULT_ID_LEN];
    const struct fl_fault_kind *kind;
    const struct fl_agent_ctx *ctx; /* the agent's; set before prepare */
    Faultline__FaultSpec *spec;     /* owned; the request's parameters */
    uint64_t duration_ms;           /* after the agent's cap */
    json_t *undo;                   /* owned; what revert needs, journaled */
    uint64_t tick_ms;               /* set by prepare when the kind has a tick */
    char detail[512];               /* what was done, for people */
    int32_t pids[64];               /* processes hit, for the reply */
    size_t n_pids;
    /* the registry's reservation ledger (agent/guardrails.h), set before
     * prepare; NULL outside the agent (tests, the guardian): nothing is
     * counted or held then */
    struct fl_ledger *ledger;
};

struct fl_fault_kind {
    const char *name; /* as in YAML: "network_drop" */
    Faultline__FaultSpec__KindCase spec_case;
    int (*prepare)(struct fl_fault *f, const struct fl_agent_ctx *ctx, char *err, size_t errlen);
    int (*apply)(struct fl_fault *f, char *err, size_t errlen);
    int (*tick)(struct fl_fault *f, char *err, size_t errlen); /* NULL when none */
    int (*revert)(const json_t *undo, char *err, size_t errlen);
};

/* The kinds, one per file under agent/faults/. */
extern const struct fl_fault_kind fl_kind_kill_process;  /* faults/process.c */
extern const struct fl_fault_kind fl_kind_pause_process; /* faults/process.c */
extern const struct fl_fault_kind fl_kind_network_drop;  /* faults/network.c */
extern const struct fl_fault_kind fl_kind_disk_fill;     /* faults/disk.c */
extern const struct fl_fault_kind fl_kind_cpu_stress;    /* faults/stress.c */
extern const struct fl_fault_kind fl_kind_memory_stress; /* faults/stress.c */
/* faults/testfault.c, in faultline-agent-test only: see agent/fault.c */

/* The kind for a spec, or for a name; NULL when unknown. */
const struct fl_fault_kind *fl_fault_kind_for_spec(const Faultline__FaultSpec *spec);
const struct fl_fault_kind *fl_fault_kind_by_name(const char *name);

/* Revert everything a journal's undo object describes: looks the kind up by
 * undo's "kind" member. For the guardian and for replay at start. */
int fl_fault_revert_undo(const json_t *undo, char *err, size_t errlen);

/* Process identity that survives pid reuse: the start time in clock ticks
 * since boot (field 22 of /proc/PID/stat). 0 when the process is gone. */
uint64_t fl_proc_start_time(pid_t pid);

#endif
