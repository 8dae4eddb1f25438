/* The fault kinds' names and their place in the protocol: one table for the
 * agent, the controller and the journal. A kind's behaviour lives in
 * agent/faults/<kind>.c and its parameters in controller/experiment/faultspec.c;
 * only the name <-> oneof mapping (and the message pointer) is here. */
#ifndef FL_COMMON_FAULTKIND_H
#define FL_COMMON_FAULTKIND_H

#include "faultline.pb-c.h"

/* Every product kind's name, in protocol order, NULL-terminated: for help
 * texts and "did you mean" suggestions. The test-only kind (test_fault, in
 * faultline-agent-test alone) is named by fl_kind_name and fl_kind_case but
 * left out here and in fl_kind_list. */
extern const char *const fl_kind_names[];

/* "kill_process" for FAULTLINE__FAULT_SPEC__KIND_KILL_PROCESS; NULL for a
 * case this build does not know. */
const char *fl_kind_name(Faultline__FaultSpec__KindCase kind_case);

/* The case for a name (exact, case-sensitive), or
 * FAULTLINE__FAULT_SPEC__KIND__NOT_SET. */
Faultline__FaultSpec__KindCase fl_kind_case(const char *name);

/* The kind's message in spec (spec->kill_process, ...), or NULL when the spec
 * has no kind or lacks its message (a spec from the wire may). */
const void *fl_kind_message(const Faultline__FaultSpec *spec);

/* "kill_process, pause_process, ..." into buf, for error messages. */
const char *fl_kind_list(char *buf, size_t len);

#endif
