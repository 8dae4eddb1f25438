#include "agent/fault.h"

#include "agent/procstat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct fl_fault_kind *const kinds[] = {
    &fl_kind_kill_process, &fl_kind_pause_process, &fl_kind_network_drop,
    &fl_kind_disk_fill,    &fl_kind_cpu_stress,    &fl_kind_memory_stress,
};

#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

const struct fl_fault_kind *fl_fault_kind_for_spec(const Faultline__FaultSpec *spec)
{
    for (size_t i = 0; i < N_KINDS; i++)
        if (kinds[i]->spec_case == spec->kind_case)
            return kinds[i];
    return NULL;
}

const struct fl_fault_kind *fl_fault_kind_by_name(const char *name)
{
    for (size_t i = 0; i < N_KINDS; i++)
        if (strcmp(kinds[i]->name, name) == 0)
            return kinds[i];
    return NULL;
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
