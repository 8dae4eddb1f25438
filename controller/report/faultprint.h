/* How a fault an agent reports is shown to people. */
#ifndef FL_CONTROLLER_FAULTPRINT_H
#define FL_CONTROLLER_FAULTPRINT_H

#include <stdio.h>

#include "faultline.pb-c.h"

/* The kind's name ("kill_process"), or "?" (common/faultkind.h; never NULL). */
const char *fl_fault_kind_name(const Faultline__FaultSpec *spec);

/* One line: "f-1a2b… kill_process  active  8.5s left  sent KILL to nginx[123]". */
void fl_print_fault(FILE *out, const char *indent, const Faultline__Fault *f);

#endif
