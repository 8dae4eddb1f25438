/* Preview lines: "would send KILL to redis-server[7811] (started
 * 2026-11-29T01:02:03.000Z)". One function per kind, each reading the undo
 * record its kind's prepare wrote; network_drop is described by its pure plan
 * (faults/netplan.h). A kind without a describer here gets a generic line. */
#include "agent/preview.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/faults/netplan.h"
#include "common/clock.h"
#include "common/units.h"

static int add(struct fl_preview *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int add(struct fl_preview *p, const char *fmt, ...)
{
    if (p->n == FL_PREVIEW_MAX_LINES)
        return 0; /* never reached: a selector matches at most as many targets */
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    char *dup = strdup(line);
    if (dup == NULL)
        return -ENOMEM;
    p->would[p->n++] = dup;
    return 0;
}

void fl_preview_free(struct fl_preview *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->would[i]);
    p->n = 0;
}

uint64_t fl_preview_start_ms(uint64_t start_ticks)
{
    FILE *f = fopen("/proc/stat", "re");
    if (f == NULL)
        return 0;
    char line[256];
    unsigned long long btime = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "btime %llu", &btime) == 1)
            break;
    fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    if (btime == 0 || hz <= 0)
        return 0;
    return (uint64_t)btime * 1000u + start_ticks * 1000u / (uint64_t)hz;
}

static void comm_of(int pid, char *out, size_t cap)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/comm", pid);
    out[0] = '\0';
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return;
    if (fgets(out, (int)cap, f) == NULL)
        out[0] = '\0';
    fclose(f);
    out[strcspn(out, "\n")] = '\0';
}

static int signal_lines(const struct fl_fault *f, const char *sig, struct fl_preview *p)
{
    const json_t *targets = json_object_get(f->undo, "targets");
    size_t i;
    const json_t *t;
    json_array_foreach(targets, i, t)
    {
        int pid = (int)json_integer_value(json_object_get(t, "pid"));
        uint64_t start = (uint64_t)json_integer_value(json_object_get(t, "start"));
        char comm[32], when[40] = "unknown";
        comm_of(pid, comm, sizeof(comm));
        uint64_t ms = fl_preview_start_ms(start);
        if (ms != 0)
            fl_format_rfc3339(ms, when, sizeof(when));
        if (add(p, "would send %s to %s[%d] (started %s)", sig, comm[0] ? comm : "?", pid, when) <
            0)
            return -ENOMEM;
    }
    return 0;
}

static int kill_lines(const struct fl_fault *f, struct fl_preview *p)
{
    const Faultline__KillProcess *k = f->spec->kill_process;
    int sig = k->signal == 0 ? SIGKILL : k->signal;
    const char *abbrev = sigabbrev_np(sig);
    char name[16];
    snprintf(name, sizeof(name), "%s", abbrev ? abbrev : "a signal");
    if (k->mode == FAULTLINE__KILL_MODE__KILL_MODE_REPEAT) {
        char every[32], dur[32];
        fl_format_duration(k->every_ms, every, sizeof(every));
        fl_format_duration(f->duration_ms, dur, sizeof(dur));
        snprintf(p->detail, sizeof(p->detail),
                 "then every %s for %s, to whatever matches the selector then", every, dur);
    }
    return signal_lines(f, name, p);
}

static int pause_lines(const struct fl_fault *f, struct fl_preview *p)
{
    char dur[32];
    fl_format_duration(f->duration_ms, dur, sizeof(dur));
    snprintf(p->detail, sizeof(p->detail), "and CONT to each of them after %s", dur);
    return signal_lines(f, "STOP", p);
}

static int disk_lines(const struct fl_fault *f, struct fl_preview *p)
{
    /* the directory, not undo's file: that is named after this preview's
     * throwaway id, and an inject would name its own */
    const char *dir = json_string_value(json_object_get(f->undo, "dir"));
    uint64_t bytes = (uint64_t)json_integer_value(json_object_get(f->undo, "bytes"));
    char size[32];
    fl_bytes_text(bytes, size, sizeof(size));
    return add(p, "would write %s (%llu bytes) to a fill file in %s", size,
               (unsigned long long)bytes, dir ? dir : "?");
}

static int cpu_lines(const struct fl_fault *f, struct fl_preview *p)
{
    json_int_t n = json_integer_value(json_object_get(f->undo, "count"));
    json_int_t load = json_integer_value(json_object_get(f->undo, "load_percent"));
    return add(p, "would start %lld cpu_stress worker%s at %lld%% of a core each", (long long)n,
               n == 1 ? "" : "s", (long long)load);
}

static int memory_lines(const struct fl_fault *f, struct fl_preview *p)
{
    uint64_t bytes = (uint64_t)json_integer_value(json_object_get(f->undo, "bytes"));
    char size[32];
    fl_bytes_text(bytes, size, sizeof(size));
    return add(p, "would hold %s (%llu bytes) resident in one worker (oom_score_adj 1000)", size,
               (unsigned long long)bytes);
}

static int network_lines(const struct fl_fault *f, struct fl_preview *p)
{
    struct fl_netplan plan;
    char err[256];
    if (fl_netplan_parse(f->spec->network_drop, &plan, err, sizeof(err)) < 0)
        return add(p, "would apply network_drop");
    char *d = fl_netplan_detail(&plan, f->ctx ? f->ctx->control_port : 0);
    if (d == NULL)
        return -ENOMEM;
    int rc = add(p, "would %s", d);
    free(d);
    return rc;
}

int fl_preview_describe(const struct fl_fault *f, struct fl_preview *out)
{
    memset(out, 0, sizeof(*out));
    int rc;
    switch (f->spec->kind_case) {
    case FAULTLINE__FAULT_SPEC__KIND_KILL_PROCESS:
        rc = kill_lines(f, out);
        break;
    case FAULTLINE__FAULT_SPEC__KIND_PAUSE_PROCESS:
        rc = pause_lines(f, out);
        break;
    case FAULTLINE__FAULT_SPEC__KIND_DISK_FILL:
        rc = disk_lines(f, out);
        break;
    case FAULTLINE__FAULT_SPEC__KIND_CPU_STRESS:
        rc = cpu_lines(f, out);
        break;
    case FAULTLINE__FAULT_SPEC__KIND_MEMORY_STRESS:
        rc = memory_lines(f, out);
        break;
    case FAULTLINE__FAULT_SPEC__KIND_NETWORK_DROP:
        rc = network_lines(f, out);
        break;
    default:
        rc = add(out, "would apply %s", f->kind ? f->kind->name : "the fault");
        break;
    }
    if (rc < 0)
        fl_preview_free(out);
    return rc;
}
