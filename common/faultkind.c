#include "common/faultkind.h"

#include <stdio.h>
#include <string.h>

struct entry {
    const char *name;
    Faultline__FaultSpec__KindCase kind_case;
    int test_only; /* only faultline-agent-test has it: not in lists or help */
};

static const struct entry table[] = {
    {"kill_process", FAULTLINE__FAULT_SPEC__KIND_KILL_PROCESS, 0},
    {"pause_process", FAULTLINE__FAULT_SPEC__KIND_PAUSE_PROCESS, 0},
    {"network_drop", FAULTLINE__FAULT_SPEC__KIND_NETWORK_DROP, 0},
    {"disk_fill", FAULTLINE__FAULT_SPEC__KIND_DISK_FILL, 0},
    {"cpu_stress", FAULTLINE__FAULT_SPEC__KIND_CPU_STRESS, 0},
    {"memory_stress", FAULTLINE__FAULT_SPEC__KIND_MEMORY_STRESS, 0},
    {"test_fault", FAULTLINE__FAULT_SPEC__KIND_TEST_FAULT, 1},
};

#define N_KINDS (sizeof(table) / sizeof(table[0]))

const char *const fl_kind_names[] = {
    "kill_process", "pause_process", "network_drop", "disk_fill",
    "cpu_stress",   "memory_stress", NULL,
};

const char *fl_kind_name(Faultline__FaultSpec__KindCase kind_case)
{
    for (size_t i = 0; i < N_KINDS; i++)
        if (table[i].kind_case == kind_case)
            return table[i].name;
    return NULL;
}

Faultline__FaultSpec__KindCase fl_kind_case(const char *name)
{
    for (size_t i = 0; name != NULL && i < N_KINDS; i++)
        if (strcmp(table[i].name, name) == 0)
            return table[i].kind_case;
    return FAULTLINE__FAULT_SPEC__KIND__NOT_SET;
}

const void *fl_kind_message(const Faultline__FaultSpec *spec)
{
    switch (spec->kind_case) {
    case FAULTLINE__FAULT_SPEC__KIND_KILL_PROCESS:
        return spec->kill_process;
    case FAULTLINE__FAULT_SPEC__KIND_PAUSE_PROCESS:
        return spec->pause_process;
    case FAULTLINE__FAULT_SPEC__KIND_NETWORK_DROP:
        return spec->network_drop;
    case FAULTLINE__FAULT_SPEC__KIND_DISK_FILL:
        return spec->disk_fill;
    case FAULTLINE__FAULT_SPEC__KIND_CPU_STRESS:
        return spec->cpu_stress;
    case FAULTLINE__FAULT_SPEC__KIND_MEMORY_STRESS:
        return spec->memory_stress;
    case FAULTLINE__FAULT_SPEC__KIND_TEST_FAULT:
        return spec->test_fault;
    default:
        return NULL;
    }
}

const char *fl_kind_list(char *buf, size_t len)
{
    size_t used = 0;
    if (len > 0)
        buf[0] = '\0';
    for (size_t i = 0; i < N_KINDS && used < len; i++) {
        if (table[i].test_only)
            continue;
        int n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", table[i].name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return buf;
}
