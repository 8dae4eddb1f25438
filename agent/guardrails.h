/* Guardrails: what the agent refuses to do, whoever asks. Checked in every
 * kind's prepare, before anything is journaled or applied. A refusal's
 * message names the guardrail and how to change it. */
#ifndef FL_AGENT_GUARDRAILS_H
#define FL_AGENT_GUARDRAILS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FL_GUARD_MAX_LIST 32
#define FL_GUARD_MAX_FAULTS 256       /* max_faults by default */
#define FL_GUARD_MAX_FAULTS_MAX 65536 /* the most max_faults may be set to */

struct fl_guardrails {
    /* processes never signalled, by exact name (comm); default: sshd */
    char *protected_names[FL_GUARD_MAX_LIST];
    size_t n_protected_names;
    /* disk_fill only under these directories; default: /var/tmp, /tmp */
    char *fill_paths[FL_GUARD_MAX_LIST];
    size_t n_fill_paths;
    double max_fill_percent;       /* a file system is never filled past this; default 95 */
    uint64_t fill_reserve_bytes;   /* and always keeps this free; default 64 MiB */
    uint64_t memory_reserve_bytes; /* MemAvailable never pushed below this; default 256 MiB */
    uint64_t max_duration_ms;      /* every fault ends by then; default 1 h */
    uint32_t max_cpu_workers;      /* default 4 x cores */
    uint32_t max_faults;           /* active faults at once; default FL_GUARD_MAX_FAULTS */
    /* controller addresses allowed to connect (CIDRs); empty: any */
    char *allowed_controllers[FL_GUARD_MAX_LIST];
    size_t n_allowed_controllers;

    /* process_scope: netns -- only processes in the agent's own network
     * namespace are targets (hosts that run containers, or test beds where
     * several "hosts" share one process table). Default: every process. */
    bool scope_netns;

    /* filled at start: processes that are never targets */
    pid_t agent_pid;
    pid_t guardian_pid;
    uint64_t netns_ino; /* this agent's network namespace, with scope_netns */
};

/* Defaults, as documented above. */
void fl_guardrails_defaults(struct fl_guardrails *g);
void fl_guardrails_free(struct fl_guardrails *g);

/* What the guardrails say of a process; err says why when it is not OK. */
enum fl_guard_pid {
    FL_GUARD_OK,
    FL_GUARD_GONE,      /* no such process */
    FL_GUARD_NEVER,     /* PID 1, the agent, its guardian or ancestors, a kernel thread */
    FL_GUARD_PROTECTED, /* a protected name */
    FL_GUARD_OUTSIDE,   /* in another network namespace (process_scope: netns) */
};
enum fl_guard_pid fl_guard_classify_pid(const struct fl_guardrails *g, pid_t pid, char *err,
                                        size_t errlen);

/* May this process be signalled? 0, -ESRCH when gone, -EPERM for PID 1, the
 * agent, its guardian, the agent's ancestors, kernel threads, protected
 * names and, with a process scope, processes outside it. */
int fl_guard_check_pid(const struct fl_guardrails *g, pid_t pid, char *err, size_t errlen);

/* The inode of this process's network namespace (for netns_ino), or a
 * negative errno. */
int fl_guard_own_netns(uint64_t *ino);

/* May disk_fill write under this path? It must pass fl_text_check
 * (common/text.h), be absolute, resolve (no
 * symlink games) to a directory under an allowed path. canonical receives the
 * resolved path. */
int fl_guard_check_fill_path(const struct fl_guardrails *g, const char *path, char *canonical,
                             size_t canonical_len, char *err, size_t errlen);

/* ---- the reservation ledger ------------------------------------------------
 *
 * A guardrail measured on the host (statvfs, MemAvailable) cannot see a
 * fault that was accepted but is not applied yet: its journal record is
 * being written, or apply is still running. Without the ledger, requests
 * that arrive together all pass the check and together pass the limit.
 *
 * A kind's prepare, once its own checks pass, records what the fault will
 * hold, under its fault id; the checks of later requests count it. The
 * registry marks the fault's holds applied once its apply is over (done, or
 * failed and so taking no more) and releases them, exactly once, when the record leaves the active
 * list (ended, or left in the journal at a stop) or is refused after prepare.
 *
 *   disk     bytes on one file system (st_dev). Until applied, what the fill
 *            file does not hold yet is counted; once applied the file
 *            system's own use shows the fill and nothing more is counted.
 *   memory   bytes; counted in full until applied (apply returns once the
 *            memory is resident: MemAvailable shows it from then on).
 *   process  a (pid, start time) a fault holds until it ends, applied or
 *            not (pause_process: one pause per process at a time).
 *
 * What a REVERT_FAILED or adopted fault still holds (a fill file, a memory
 * worker) is on the host and measured there; its process holds stay until
 * it ends. The ledger lives on the loop: no locking. */
struct fl_hold;
struct fl_ledger {
    struct fl_hold *holds;
};

void fl_ledger_init(struct fl_ledger *l);
void fl_ledger_free(struct fl_ledger *l);

/* 0 or -ENOMEM. file: the fill file, which may not exist yet. */
int fl_ledger_hold_disk(struct fl_ledger *l, const char *id, uint64_t dev, uint64_t bytes,
                        const char *file);
int fl_ledger_hold_memory(struct fl_ledger *l, const char *id, uint64_t bytes);
int fl_ledger_hold_process(struct fl_ledger *l, const char *id, pid_t pid, uint64_t start);

/* What faults not yet applied will still take: on file system dev, and of
 * memory. *n_faults (may be NULL) receives how many faults that is. */
uint64_t fl_ledger_disk_pending(const struct fl_ledger *l, uint64_t dev, size_t *n_faults);
uint64_t fl_ledger_memory_pending(const struct fl_ledger *l, size_t *n_faults);
/* The id of the fault that holds this process, or NULL. */
const char *fl_ledger_process_holder(const struct fl_ledger *l, pid_t pid, uint64_t start);

/* The fault id's holds: applied -- its apply is over, so disk and memory
 * stop counting -- or gone.
 * Release returns how many holds it removed (0 on a second call). */
void fl_ledger_applied(struct fl_ledger *l, const char *id);
size_t fl_ledger_release(struct fl_ledger *l, const char *id);

#endif
