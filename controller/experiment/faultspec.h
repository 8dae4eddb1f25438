/* Fault parameters as people write them (docs/design.md section 5: the same names
 * in experiment YAML and on `faultline inject HOST KIND NAME=VALUE...`), turned
 * into a Faultline__FaultSpec for the wire.
 *
 *     Faultline__FaultSpec *spec = fl_faultspec_new("kill_process", err, sizeof(err));
 *     fl_faultspec_set(spec, "name", "nginx", err, sizeof(err));
 *     fl_faultspec_set(spec, "duration", "30s", err, sizeof(err));
 *     fl_faultspec_check(spec, err, sizeof(err));
 *     ...
 *     fl_faultspec_free(spec);
 *
 * Pure: no I/O, no printing, nothing global that changes. Errors are sentences
 * in err saying what is wrong and what is expected; a value is never echoed
 * back when it holds a control character. A spec built here is all malloc'd,
 * so protobuf_c_message_free_unpacked(&spec->base, NULL) frees it too. */
#ifndef FL_CONTROLLER_FAULTSPEC_H
#define FL_CONTROLLER_FAULTSPEC_H

#include <stddef.h>

#include "faultline.pb-c.h"

/* At most this many peers and port ranges per fault: the agent's limit
 * (FL_NETWORK_MAX_PEERS and FL_NETWORK_MAX_PORTS in agent/faults/network.h). */
#define FL_FAULTSPEC_MAX_LIST 64

/* The kind names, "kill_process" ... "memory_stress", NULL-terminated. */
const char *const *fl_faultspec_kinds(void);

/* The parameter names kind takes, NULL-terminated, in the order help text
 * should show them; NULL for an unknown kind. `duration` is among them. */
const char *const *fl_faultspec_params(const char *kind);

/* A new spec for kind with its kind message set and defaults applied: signal
 * KILL and mode once; direction both, protocol all, action drop, percent 100;
 * load 100 (workers 0 = one per core). name is "" and duration 0 (unset).
 * NULL for an unknown kind, with err naming the nearest known kind if one is
 * close ("did you mean network_drop?"), or when out of memory. */
Faultline__FaultSpec *fl_faultspec_new(const char *kind, char *err, size_t errlen);

/* Sets one parameter by its docs/design.md name; `duration` sets duration_ms. A
 * scalar set again is replaced; `peers` and `ports` take comma-separated
 * lists and setting them again appends. A process fault has one selector
 * (pid, pidfile, name, pattern): setting the same one again replaces it, a
 * second, different one is an error. Empty values and values with control
 * characters are refused. Returns 0, -EINVAL with err saying what is wrong and
 * what is expected (for an unknown name: the kind's names and the nearest
 * one), or -ENOMEM. On failure spec is unchanged. */
int fl_faultspec_set(Faultline__FaultSpec *spec, const char *name, const char *value, char *err,
                     size_t errlen);

/* Replaces the fault's own name (FaultSpec.name, the experiment's name for
 * it) with a malloc'd copy, keeping the spec freeable. 0, -EINVAL, -ENOMEM. */
int fl_faultspec_set_name(Faultline__FaultSpec *spec, const char *name);

/* Checks that a spec -- built here or unpacked from elsewhere -- is complete
 * and coherent: a duration; one selector for process faults; a signal that
 * kill_process sends; `every` (>= 10ms) exactly when mode is repeat; peers
 * by common/cidr.h's rule (no host bits past the prefix, as the agent); ports
 * only with protocol tcp or udp; path and fill for disk_fill; size for
 * memory_stress; every number and enum in range. Returns 0 or -EINVAL with
 * err naming the first problem. */
int fl_faultspec_check(const Faultline__FaultSpec *spec, char *err, size_t errlen);

/* The kind name of spec ("disk_fill"), or NULL when no kind is set. */
const char *fl_faultspec_kind(const Faultline__FaultSpec *spec);

/* Frees a spec built here (or unpacked with the default allocator). NULL is
 * fine. */
void fl_faultspec_free(Faultline__FaultSpec *spec);

/* A signal kill_process can name: "KILL", "SIGKILL", "kill", "SigTerm" or a
 * number 1-31 ("9"). Returns 0 and writes *signo, or -EINVAL. Numbers are
 * this host's (Linux generic numbering: x86, arm, riscv ...). */
int fl_parse_signal(const char *text, int *signo);

#endif
