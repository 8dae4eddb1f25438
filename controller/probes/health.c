/* The rise/fall state machine of one probe.
 *
 *                       rise consecutive successes
 *              ┌─────────────────────────────────────────┐
 *              │                                         ▼
 *        ┌─────┴─────┐                             ┌───────────┐
 *        │  UNKNOWN  │                             │  HEALTHY  │◄─┐ success
 *        └─────┬─────┘                             └──┬─────▲──┘──┘
 *              │                 fall consecutive     │     │
 *              │                 failures             │     │ rise consecutive
 *              │                                      ▼     │ successes
 *              │  fall consecutive failures      ┌──────────┴┐
 *              └────────────────────────────────►│ UNHEALTHY │◄─┐ failure
 *                                                └───────────┘──┘
 *
 * Every result extends one run and resets the other: a success sets
 * failures to 0, a failure sets successes to 0. A state is left only when
 * the opposite run reaches its threshold, so a flapping probe (success,
 * failure, success, ...) with rise and fall above 1 stays where it is:
 * UNKNOWN stays UNKNOWN, HEALTHY stays HEALTHY. With rise = fall = 1 every
 * result decides the state on its own. */
#include "controller/probes/health.h"

#include <assert.h>
#include <limits.h>

#define DEFAULT_RISE 2u
#define DEFAULT_FALL 3u

void fl_health_init(struct fl_health *h, unsigned rise, unsigned fall)
{
    h->rise = rise != 0 ? rise : DEFAULT_RISE;
    h->fall = fall != 0 ? fall : DEFAULT_FALL;
    h->state = FL_HEALTH_UNKNOWN;
    h->successes = 0;
    h->failures = 0;
}

/* The only place the state changes. UNKNOWN is never returned to. */
static void set_state(struct fl_health *h, enum fl_health_state to, bool *changed)
{
    assert(to == FL_HEALTH_HEALTHY || to == FL_HEALTH_UNHEALTHY);
    if (h->state != to) {
        h->state = to;
        *changed = true;
    }
}

bool fl_health_update(struct fl_health *h, bool ok)
{
    bool changed = false;
    if (ok) {
        h->failures = 0;
        if (h->successes < UINT_MAX)
            h->successes++;
        if (h->successes >= h->rise)
            set_state(h, FL_HEALTH_HEALTHY, &changed);
    } else {
        h->successes = 0;
        if (h->failures < UINT_MAX)
            h->failures++;
        if (h->failures >= h->fall)
            set_state(h, FL_HEALTH_UNHEALTHY, &changed);
    }
    /* A state holds only until the opposite run reaches its threshold. */
    assert(h->state != FL_HEALTH_HEALTHY || h->failures < h->fall);
    assert(h->state != FL_HEALTH_UNHEALTHY || h->successes < h->rise);
    return changed;
}

const char *fl_health_state_name(enum fl_health_state state)
{
    switch (state) {
    case FL_HEALTH_UNKNOWN:
        return "unknown";
    case FL_HEALTH_HEALTHY:
        return "healthy";
    case FL_HEALTH_UNHEALTHY:
        return "unhealthy";
    }
    return "?";
}
