/* How much probing an experiment asks of the controller (issue 12 item 4):
 * attempts per second, and the share of one core they cost by the figures
 * measured in bench/README.md ("Probe cost"). `faultline validate` prints it
 * and warns above FL_PROBE_LOAD_WARN_PERCENT; `faultline run` says it too. */
#ifndef FL_CONTROLLER_PROBES_RATE_H
#define FL_CONTROLLER_PROBES_RATE_H

#include <stddef.h>

#include "controller/probes/probe.h"

/* Controller CPU per attempt, in microseconds, measured on this project's
 * test machine (bench/README.md, "Probe cost"). ssh attempts run on the
 * thread pool and are bounded by its size, not by the loop: not counted. */
#define FL_PROBE_COST_US_HTTP 150u
#define FL_PROBE_COST_US_TCP 130u
#define FL_PROBE_COST_US_EXEC 400u

/* Above this share of one core, the controller may fall behind. */
#define FL_PROBE_LOAD_WARN_PERCENT 50u

/* probe_threads chosen by fl_probe_threads_auto: at most this many, and
 * never more than the CPUs the process may use. */
#define FL_PROBE_THREADS_AUTO_MAX 4u

struct fl_probe_load {
    double attempts_per_s;     /* every probe, ssh included */
    double ssh_attempts_per_s; /* of those, ssh */
    double core_percent;       /* estimated share of one core (ssh not counted) */
    /* With probe threads: the share of one core on the busiest loop (http
     * and tcp probes on their worker, fl_probe_pool_thread_of; the others
     * on the run's loop). The warning is about this one. */
    double busiest_loop_percent;
    unsigned threads;
};

void fl_probe_load_estimate(const struct fl_probe_spec *probes, size_t n,
                            struct fl_probe_load *out);
/* The same, with the probes spread as a run with that many probe threads
 * spreads them (1: every probe on the run's loop). */
void fl_probe_load_estimate_threads(const struct fl_probe_spec *probes, size_t n, unsigned threads,
                                    struct fl_probe_load *out);

/* probe_threads when neither the experiment (`controller: probe_threads`)
 * nor the command line (--probe-threads) says: 1, every probe on the run's
 * loop, while the estimate puts that loop at or under
 * FL_PROBE_LOAD_WARN_PERCENT of a core (every experiment short of
 * thousands of attempts a second); above it, the fewest threads whose
 * busiest loop is under that share, at most min(cpus,
 * FL_PROBE_THREADS_AUTO_MAX) (that cap when none is: validate warns). cpus:
 * the CPUs this process may use (uv_available_parallelism). */
unsigned fl_probe_threads_auto(const struct fl_probe_spec *probes, size_t n, unsigned cpus);

#endif
