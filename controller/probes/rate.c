/* How much probing an experiment asks of the controller (rate.h). */
#include "controller/probes/rate.h"

#include <string.h>

void fl_probe_load_estimate(const struct fl_probe_spec *probes, size_t n, struct fl_probe_load *out)
{
    memset(out, 0, sizeof(*out));
    double us_per_s = 0;
    for (size_t i = 0; i < n; i++) {
        if (probes[i].is_template)
            continue; /* run once per candidate for a where:, not every interval */
        uint64_t interval = probes[i].interval_ms ? probes[i].interval_ms : 1000;
        double rate = 1000.0 / (double)interval;
        out->attempts_per_s += rate;
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
    }
    out->core_percent = us_per_s / 10000.0; /* 1e6 us per core-second, in % */
}
