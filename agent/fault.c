#include "agent/fault.h"

#include "agent/procstat.h"
#include "common/faultkind.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The test-only kind (faults/testfault.c) is linked into faultline-agent-test
 * alone. The weak reference resolves to NULL in faultline-agent, which then
 * refuses test_fault as an unknown kind, like any kind it lacks. */
extern const struct fl_fault_kind fl_kind_test_fault __attribute__((weak));

static const struct fl_fault_kind *const kinds[] = {
    &fl_kind_kill_process, &fl_kind_pause_process, &fl_kind_network_drop, &fl_kind_disk_fill,
    &fl_kind_cpu_stress,   &fl_kind_memory_stress, &fl_kind_test_fault,
};

#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

static const struct fl_fault_kind *kind_for_case(Faultline__FaultSpec__KindCase kind_case)
{
    for (size_t i = 0; i < N_KINDS; i++)
        if (kinds[i] != NULL && kinds[i]->spec_case == kind_case)
            return kinds[i];
    return NULL;
}

const struct fl_fault_kind *fl_fault_kind_for_spec(const Faultline__FaultSpec *spec)
{
    return kind_for_case(spec->kind_case);
}

const struct fl_fault_kind *fl_fault_kind_by_name(const char *name)
{
    Faultline__FaultSpec__KindCase c = fl_kind_case(name);
    return c == FAULTLINE__FAULT_SPEC__KIND__NOT_SET ? NULL : kind_for_case(c);
}

int fl_fault_revert_undo(const json_t *undo, char *err, size_t errlen)
{
    const char *kind = json_string_value(json_object_get(undo, "kind"));
    const struct fl_fault_kind *k = kind ? fl_fault_kind_by_name(kind) : NULL;
    if (k == NULL) {
        snprintf(err, errlen, "journal entry of unknown kind '%s'", kind ? kind : "?");
        return -EINVAL;
    }
    return k->revert(undo, err, errlen);
}

uint64_t fl_proc_start_time(pid_t pid)
{
    struct fl_procstat st;
    return fl_procstat_read(pid, &st) == 0 ? st.start : 0;
}
