/* What one `faultline run` observed: the experiment, every probe result,
 * every fault event, the measurement and the verdict. The runner fills it;
 * the reports (controller/report/) only read it. Times are wall clock, ms
 * since the epoch, on the controller; 0 means "did not happen". */
#ifndef FL_CONTROLLER_RUNRECORD_H
#define FL_CONTROLLER_RUNRECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/faultid.h"

#include "controller/experiment/experiment.h"
#include "controller/run/measure.h"
#include "controller/probes/probe.h"
#include "controller/run/rpo.h"
#include "controller/run/timeline.h"

struct fl_run_probe {
    const struct fl_probe_spec *spec; /* the experiment's */
    struct fl_timeline tl;            /* compact: counts, health changes, non-ok runs */
    struct fl_probe_stats stats;      /* its schedule: late starts, skipped due times */
    /* write probes (issue 15): the data loss measured after the read-back */
    bool is_writer;
    bool rpo_measured;
    struct fl_rpo_result rpo;
    char rpo_error[320]; /* why it was not measured; "" if it was */
    /* its timeline rebuilt after the read-back (one result per write: a write
     * acknowledged, then lost, is a failure); measured instead of tl */
    struct fl_probe_result *rewritten;
    size_t n_rewritten;
    bool in_recovery; /* one of recovery.probes: measured */
    bool measured;
    struct fl_measurement m; /* when measured */
    unsigned thread;         /* the loop it ran on: 0 the run's, i the probe thread i (pool.h) */
};

/* One fault on one host (a fault targeting two hosts is two of these). */
struct fl_run_fault {
    const struct fl_fault *fault; /* the experiment's */
    const struct fl_host *host;   /* the experiment's */
    char id[FL_FAULT_ID_MAX + 1]; /* the agent's fault id; "" if never applied */
    uint64_t scheduled_at_ms;
    uint64_t applied_at_ms;       /* the agent's reply arrived */
    uint64_t reverted_at_ms;      /* the revert's reply arrived */
    uint64_t agent_applied_at_ms; /* the same two events by the agent's clock */
    uint64_t agent_reverted_at_ms;
    bool revert_failed; /* loud: the agent could not revert it */
    char detail[256];   /* the agent's description, or the error */
    char outcome[32];   /* "reverted", "expired", "apply failed", "not applied", "REVERT FAILED",
                           "no match", "not chosen" */
    /* where: (controller/run/where.h): this host is a candidate, checked
     * just before injection; chosen says it is hit (always true without
     * where:) */
    bool where;
    bool where_checked, where_ok;
    char where_detail[sizeof(((struct fl_probe_result *)0)->detail)];
    bool chosen;
};

/* A run is ABORTED "controller overloaded" when more than this share (in
 * percent) of its probes' due times were skipped, started late or ended
 * LATE: the controller could not watch the service well enough to judge it. */
#define FL_RUN_OVERLOAD_PERCENT 5
/* ... and at least this many of them: a few stalls in a short run (a busy
 * machine's scheduling) widen the brackets they fall in, which the
 * resolution reports, without making the controller "overloaded". */
#define FL_RUN_OVERLOAD_MIN 10

/* The controller's own lateness over the run (run.json "controller"). */
struct fl_controller_figures {
    uint64_t attempts;    /* every probe attempt */
    uint64_t late;        /* ended LATE */
    uint64_t late_starts; /* started late_threshold_ms or more after due */
    uint64_t skipped;     /* due times passed while the controller was behind */
    uint64_t max_start_late_ms;
    uint64_t longest_stall_ms;  /* of the loop (lag.h) */
    uint64_t late_threshold_ms; /* the smallest of the probes' */
    bool overloaded;            /* any loop (the run's, or a probe thread's) was */
    unsigned probe_threads;     /* K (controller/probes/pool.h); 1: no threads */
    /* who chose K: "command line", "experiment", or "auto" (by the probing's
     * estimated load, fl_probe_threads_auto) */
    const char *probe_threads_from;
    unsigned overloaded_thread; /* the first overloaded loop: 0 the run's, i probe thread i */
    uint64_t queue_lost;        /* results a probe thread could not hand over (aborts) */
};

/* A run's id: 16 random hex digits; write probes tag their records with it. */
#define FL_RUN_ID_LEN 16

struct fl_run_record {
    const struct fl_experiment *e;
    char run_id[FL_RUN_ID_LEN + 1];
    uint64_t started_at_ms;
    uint64_t injected_at_ms; /* the first fault applied */
    uint64_t reverted_at_ms; /* the last revert that undid something (0: none;
                                a kill has nothing to undo) */
    uint64_t ended_at_ms;
    struct fl_run_probe *probes; /* one per experiment probe, same order */
    size_t n_probes;
    struct fl_run_fault *faults;
    size_t n_faults;
    bool measured;
    struct fl_measurement m; /* combined over the recovery probes */
    bool steady_state_returned;
    enum fl_verdict verdict;
    char reason[FL_MEASURE_REASON_MAX];
    char abort_reason[256]; /* "" unless aborted */
    struct fl_controller_figures controller;
    bool avail_measured;       /* the availability objective was evaluated */
    double avail_availability; /* what the measured MTTR implies */
    double avail_downtime_ms;  /* a year */
    int64_t avail_max_mttr_ms; /* the longest recovery the target allows */
    bool avail_pass;
    bool rpo_measured;        /* every write probe read its records back */
    uint64_t rpo_ms;          /* the worst of them */
    bool attempts_written;    /* attempts.jsonl is complete */
    uint64_t attempts_lines;  /* lines in it */
    char attempts_error[512]; /* why it is not complete; "" if it is or was never asked for */
};

#endif
