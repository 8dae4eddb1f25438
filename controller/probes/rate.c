/* How much probing an experiment asks of the controller (rate.h). */
#include "controller/probes/rate.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "controller/probes/pool.h"

_Static_assert(FL_PROBE_THREADS_AUTO_MAX <= FL_PROBE_THREADS_MAX,
               "the automatic choice stays within what probe_threads accepts");

void fl_probe_load_estimate(const struct fl_probe_spec *probes, size_t n, struct fl_probe_load *out)
{
    fl_probe_load_estimate_threads(probes, n, 1, out);
}

void fl_probe_load_estimate_threads(const struct fl_probe_spec *probes, size_t n, unsigned threads,
                                    struct fl_probe_load *out)
{
    memset(out, 0, sizeof(*out));
    if (threads < 1)
        threads = 1;
    if (threads > FL_PROBE_THREADS_MAX)
        threads = FL_PROBE_THREADS_MAX;
    out->threads = threads;
    double loop_us[FL_PROBE_THREADS_MAX + 1] = {0}; /* [0] the run's loop */
    double us_per_s = 0;
    for (size_t i = 0; i < n; i++) {
        if (probes[i].is_template)
            continue; /* run once per candidate for a where:, not every interval */
        uint64_t interval = probes[i].interval_ms ? probes[i].interval_ms : 1000;
        double rate = 1000.0 / (double)interval;
        out->attempts_per_s += rate;
        double before = us_per_s;
        switch (probes[i].type) {
        case FL_PROBE_HTTP:
            us_per_s += rate * FL_PROBE_COST_US_HTTP;
            break;
        case FL_PROBE_TCP:
            us_per_s += rate * FL_PROBE_COST_US_TCP;
            break;
        case FL_PROBE_EXEC:
            us_per_s += rate * FL_PROBE_COST_US_EXEC;
            break;
        case FL_PROBE_SSH:
            out->ssh_attempts_per_s += rate;
            break;
        case FL_PROBE_POSTGRES: /* a round trip on the loop, like http */
        case FL_PROBE_REDIS:
            us_per_s += rate * FL_PROBE_COST_US_HTTP;
            break;
        }
        bool worker =
            threads > 1 && (probes[i].type == FL_PROBE_HTTP || probes[i].type == FL_PROBE_TCP);
        unsigned loop =
            worker ? 1 + fl_probe_pool_thread_of(probes[i].name ? probes[i].name : "", threads) : 0;
        loop_us[loop] += us_per_s - before;
    }
    out->core_percent = us_per_s / 10000.0; /* 1e6 us per core-second, in % */
    for (unsigned k = 0; k <= threads; k++)
        if (loop_us[k] / 10000.0 > out->busiest_loop_percent)
            out->busiest_loop_percent = loop_us[k] / 10000.0;
}

unsigned fl_probe_threads_auto(const struct fl_probe_spec *probes, size_t n, unsigned cpus)
{
    struct fl_probe_load l;
    fl_probe_load_estimate_threads(probes, n, 1, &l);
    if (l.busiest_loop_percent <= FL_PROBE_LOAD_WARN_PERCENT)
        return 1;
    unsigned most = cpus < FL_PROBE_THREADS_AUTO_MAX ? cpus : FL_PROBE_THREADS_AUTO_MAX;
    unsigned best = 1; /* one CPU: more loops add no cycles */
    double best_percent = l.busiest_loop_percent;
    for (unsigned k = 2; k <= most; k++) {
        fl_probe_load_estimate_threads(probes, n, k, &l);
        if (l.busiest_loop_percent <= FL_PROBE_LOAD_WARN_PERCENT)
            return k;
        /* the fewest threads that relieve the busiest loop most; none when
         * the load is where threads cannot take it (exec, write probes) */
        if (l.busiest_loop_percent < best_percent) {
            best = k;
            best_percent = l.busiest_loop_percent;
        }
    }
    return best;
}
