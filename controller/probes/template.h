/* Probe templates (issue 13, role-aware targets): a probe whose fields use
 * {host} (the inventory's name) or {address} is run once per candidate host
 * by a fault's `where:`, with the placeholders filled in, to find which
 * hosts hold a role right now ("whichever Redis is the primary"). Templates
 * are never run on their own.
 *
 * Fields that may use them: http url, headers, body_contains; tcp host;
 * exec argv and expect_output. (ssh probes name their host in the
 * inventory: not templates.) */
#ifndef FL_CONTROLLER_PROBES_TEMPLATE_H
#define FL_CONTROLLER_PROBES_TEMPLATE_H

#include <stdbool.h>

#include "controller/probes/probe.h"

/* Does any field of spec use {host} or {address}? */
bool fl_probe_spec_uses_vars(const struct fl_probe_spec *spec);

/* A deep copy of tmpl with {host} and {address} replaced (every
 * occurrence) in the fields above; out->is_template is false. Returns 0 or
 * -ENOMEM (out left zeroed). */
int fl_probe_spec_instantiate(const struct fl_probe_spec *tmpl, const char *host,
                              const char *address, struct fl_probe_spec *out);

#endif
