/* Health: a probe's results turned into healthy / unhealthy, with rise and
 * fall counted as load balancers and keepalived count them. The state
 * machine is drawn in health.c. */
#ifndef FL_CONTROLLER_PROBES_HEALTH_H
#define FL_CONTROLLER_PROBES_HEALTH_H

#include <stdbool.h>

enum fl_health_state {
    FL_HEALTH_UNKNOWN, /* not enough results yet */
    FL_HEALTH_HEALTHY,
    FL_HEALTH_UNHEALTHY,
};

struct fl_health {
    unsigned rise; /* consecutive successes that make it healthy */
    unsigned fall; /* consecutive failures that make it unhealthy */
    enum fl_health_state state;
    unsigned successes; /* current run of consecutive successes (saturates) */
    unsigned failures;  /* current run of consecutive failures (saturates) */
};

/* rise or fall of 0 take the defaults, 2 and 3. Starts UNKNOWN. */
void fl_health_init(struct fl_health *h, unsigned rise, unsigned fall);

/* Feeds one result. Returns true when it changed the state. */
bool fl_health_update(struct fl_health *h, bool ok);

/* "unknown", "healthy", "unhealthy". */
const char *fl_health_state_name(enum fl_health_state state);

#endif
