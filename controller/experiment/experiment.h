/* An experiment as loaded from YAML (docs/design.md section 5): everything
 * `faultline run` needs, checked before anything is contacted.
 *
 * fl_experiment_load reads the file (and the inventory it names or
 * --inventory, controller/experiment/inventory.h), checks every key, value and reference, and
 * returns one self-contained struct: all strings are copied, the YAML tree is gone. References
 * between sections are indices (a fault's target hosts into inventory.hosts, steady_state /
 * abort_when / recovery into probes), so the runner never looks anything up by name. Every error is
 * one sentence, "FILE:LINE:COL: what is wrong", naming the nearest known key or name when one is
 * close. */
#ifndef FL_CONTROLLER_EXPERIMENT_H
#define FL_CONTROLLER_EXPERIMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "controller/experiment/inventory.h"
#include "controller/probes/probe.h"
#include "faultline.pb-c.h"

struct fl_schedule; /* controller/serve/schedule.h */

#define FL_EXPERIMENT_VERSION 1
#define FL_EXPERIMENT_DEFAULT_RECOVERY_MS 60000

struct fl_objectives {
    bool has_rto;
    uint64_t rto_ms;
    bool has_rpo;
    uint64_t rpo_ms;
    /* impact: required (a run whose faults had no visible effect FAILs) or
     * optional (it passes as "PASS (no impact)"); default required when
     * there is an rto, else optional. impact_set: written in the file. */
    bool impact_required;
    bool impact_set;
    /* availability: { target: 99.95%, failures_per_year: 6 | mtbf: 60d,
     * redundancy: N } (issue 14): the measured recovery as MTTR against the
     * longest recovery the target allows (controller/report/availability.h) */
    bool has_availability;
    double avail_target;            /* a fraction: 0.9995 */
    double avail_failures_per_year; /* or 0 */
    uint64_t avail_mtbf_ms;         /* or 0 */
    unsigned avail_redundancy;      /* 1.. */
};

/* Which hosts a fault hits. hosts: [..] gives candidates = those hosts and
 * count = all of them; tags: [..] gives candidates = every host carrying all
 * the tags, and count = `count`, ceil(`percent` of them), or all of them. The
 * runner picks `count` of the candidates. */
struct fl_target {
    size_t *hosts; /* indices into inventory.hosts, in inventory order for tags */
    size_t n_hosts;
    size_t count; /* 1 <= count <= n_hosts */
    bool by_tags;
    char **tags; /* as written; empty for hosts: */
    size_t n_tags;
    double percent; /* 0 unless percent: was given */
    /* where: a probe template (template.h) run once per candidate just
     * before injection; only candidates where it succeeds are hit */
    bool has_where;
    size_t where_probe; /* index into probes */
};

struct fl_fault {
    char *name;
    struct fl_target target;
    Faultline__FaultSpec *spec; /* kind and parameters, name and duration set; checked */
    uint64_t start_ms;          /* offset from injection time; default 0 */
    uint64_t duration_ms;       /* == spec->duration_ms */
};

enum fl_abort_type {
    FL_ABORT_UNHEALTHY,    /* probe unhealthy for at least ms */
    FL_ABORT_MAX_DURATION, /* the run took longer than ms */
};

struct fl_abort {
    enum fl_abort_type type;
    size_t probe; /* FL_ABORT_UNHEALTHY: index into probes */
    uint64_t ms;
};

struct fl_recovery {
    size_t *probes; /* indices into probes; default: the steady_state probes */
    size_t n_probes;
    uint64_t timeout_ms; /* default FL_EXPERIMENT_DEFAULT_RECOVERY_MS */
};

struct fl_experiment {
    char *path; /* as given to fl_experiment_load */
    unsigned version;
    char *name;
    char *description; /* NULL when not given */
    struct fl_inventory inventory;
    struct fl_objectives objectives;
    struct fl_probe_spec *probes;
    size_t n_probes;
    size_t *steady_state; /* indices into probes */
    size_t n_steady_state;
    struct fl_fault *faults;
    size_t n_faults;
    struct fl_abort *aborts;
    size_t n_aborts;
    struct fl_recovery recovery;
    struct fl_schedule *schedule; /* `schedule:` (faultline serve); NULL when absent */
    /* `controller: { probe_threads: N }` (controller/probes/pool.h): 1 to
     * FL_PROBE_THREADS_MAX; 0 when not given (--probe-threads or the default) */
    unsigned probe_threads;
};

/* Loads and checks the experiment at path. inventory_path (--inventory, may
 * be NULL) replaces the experiment's own `inventory:` when given; it is used
 * as given (relative to the working directory), while a path the experiment
 * names is relative to the experiment. Blocking file I/O, nothing else: no
 * host is contacted, no name resolved. Returns 0 with *out set, -EINVAL with
 * err "FILE:LINE:COL: ..." (or "FILE: ..." when a file cannot be read), or
 * another negative errno (-ENOMEM, -ENOENT ...). */
int fl_experiment_load(const char *path, const char *inventory_path, struct fl_experiment **out,
                       char *err, size_t errlen);

/* Frees everything and sets *e to NULL. NULL or *e NULL is a no-op. */
void fl_experiment_free(struct fl_experiment **e);

/* The index of the host or probe with that name, or -1. */
long fl_experiment_host(const struct fl_experiment *e, const char *name);
long fl_experiment_probe(const struct fl_experiment *e, const char *name);

#endif
