#include "agent/guardrails.h"

#include "agent/procstat.h"
#include "common/faultid.h"
#include "common/text.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PF_KTHREAD 0x00200000u

static char *dup_or_die(const char *s)
{
    char *d = strdup(s);
    if (d == NULL)
        abort(); /* at start, before anything is applied */
    return d;
}

void fl_guardrails_defaults(struct fl_guardrails *g)
{
    memset(g, 0, sizeof(*g));
    g->protected_names[g->n_protected_names++] = dup_or_die("sshd");
    g->fill_paths[g->n_fill_paths++] = dup_or_die("/var/tmp");
    g->fill_paths[g->n_fill_paths++] = dup_or_die("/tmp");
    g->max_fill_percent = 95.0;
    g->fill_reserve_bytes = 64ull << 20;
    g->memory_reserve_bytes = 256ull << 20;
    g->max_duration_ms = 3600ull * 1000;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    g->max_cpu_workers = (uint32_t)(cores > 0 ? cores * 4 : 4);
    g->max_faults = FL_GUARD_MAX_FAULTS;
    g->agent_pid = getpid();
}

static void free_list(char **list, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free(list[i]);
    *n = 0;
}

void fl_guardrails_free(struct fl_guardrails *g)
{
    free_list(g->protected_names, &g->n_protected_names);
    free_list(g->fill_paths, &g->n_fill_paths);
    free_list(g->allowed_controllers, &g->n_allowed_controllers);
}

enum fl_guard_pid fl_guard_classify_pid(const struct fl_guardrails *g, pid_t pid, char *err,
                                        size_t errlen)
{
    if (pid <= 1) {
        snprintf(err, errlen, "guardrail: PID %d is never a target", (int)pid);
        return FL_GUARD_NEVER;
    }
    if (pid == g->agent_pid || pid == getpid()) {
        snprintf(err, errlen, "guardrail: PID %d is this agent", (int)pid);
        return FL_GUARD_NEVER;
    }
    if (g->guardian_pid > 0 && pid == g->guardian_pid) {
        snprintf(err, errlen, "guardrail: PID %d is this agent's guardian", (int)pid);
        return FL_GUARD_NEVER;
    }
    struct fl_procstat st;
    if (fl_procstat_read(pid, &st) < 0) {
        snprintf(err, errlen, "no process with PID %d", (int)pid);
        return FL_GUARD_GONE;
    }
    if ((st.flags & PF_KTHREAD) != 0 || pid == 2 || st.ppid == 2) {
        snprintf(err, errlen, "guardrail: PID %d (%s) is a kernel thread", (int)pid, st.comm);
        return FL_GUARD_NEVER;
    }
    if (g->scope_netns) {
        char path[64];
        struct stat ns;
        snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
        if (stat(path, &ns) < 0) {
            if (errno == ENOENT) {
                snprintf(err, errlen, "no process with PID %d", (int)pid);
                return FL_GUARD_GONE;
            }
            snprintf(err, errlen,
                     "guardrail: cannot tell the network namespace of %s[%d] (%s); "
                     "process_scope is netns",
                     st.comm, (int)pid, strerror(errno));
            return FL_GUARD_OUTSIDE;
        }
        if ((uint64_t)ns.st_ino != g->netns_ino) {
            snprintf(err, errlen,
                     "guardrail: %s[%d] is in another network namespace than this agent "
                     "(process_scope: netns in the agent's config)",
                     st.comm, (int)pid);
            return FL_GUARD_OUTSIDE;
        }
    }
    for (size_t i = 0; i < g->n_protected_names; i++) {
        if (strcmp(st.comm, g->protected_names[i]) == 0) {
            snprintf(err, errlen,
                     "guardrail: %s[%d] is a protected process (protected_processes in the "
                     "agent's config)",
                     st.comm, (int)pid);
            return FL_GUARD_PROTECTED;
        }
    }
    /* the agent's ancestors: its supervisor, its shell, init */
    pid_t a = getppid();
    for (int depth = 0; a > 1 && depth < 64; depth++) {
        if (a == pid) {
            snprintf(err, errlen, "guardrail: %s[%d] is a parent of this agent", st.comm, (int)pid);
            return FL_GUARD_NEVER;
        }
        struct fl_procstat up;
        if (fl_procstat_read(a, &up) < 0)
            break;
        a = up.ppid;
    }
    return FL_GUARD_OK;
}

int fl_guard_check_pid(const struct fl_guardrails *g, pid_t pid, char *err, size_t errlen)
{
    switch (fl_guard_classify_pid(g, pid, err, errlen)) {
    case FL_GUARD_OK:
        return 0;
    case FL_GUARD_GONE:
        return -ESRCH;
    case FL_GUARD_NEVER:
    case FL_GUARD_PROTECTED:
    case FL_GUARD_OUTSIDE:
        break;
    }
    return -EPERM;
}

int fl_guard_own_netns(uint64_t *ino)
{
    struct stat ns;
    if (stat("/proc/self/ns/net", &ns) < 0)
        return -errno;
    *ino = (uint64_t)ns.st_ino;
    return 0;
}

static int is_under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (strncmp(path, dir, n) != 0)
        return 0;
    return path[n] == '\0' || path[n] == '/' || (n == 1 && dir[0] == '/');
}

int fl_guard_check_fill_path(const struct fl_guardrails *g, const char *path, char *canonical,
                             size_t canonical_len, char *err, size_t errlen)
{
    char why[128];
    int rc = fl_text_check(path, "path", why, sizeof(why));
    if (rc < 0) {
        snprintf(err, errlen, "guardrail: %s", why);
        return rc;
    }
    if (path[0] != '/') {
        snprintf(err, errlen, "path %s is not absolute", path);
        return -EINVAL;
    }
    char real[PATH_MAX];
    if (realpath(path, real) == NULL) {
        snprintf(err, errlen, "path %s: %s", path, strerror(errno));
        return -errno;
    }
    struct stat st;
    if (stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "path %s is not a directory", path);
        return -ENOTDIR;
    }
    for (size_t i = 0; i < g->n_fill_paths; i++) {
        char allowed[PATH_MAX];
        /* compare resolved with resolved: /tmp may itself be a link */
        const char *a = realpath(g->fill_paths[i], allowed) ? allowed : g->fill_paths[i];
        if (is_under(real, a)) {
            if (strlen(real) >= canonical_len) {
                snprintf(err, errlen, "path %s is too long", path);
                return -ENAMETOOLONG;
            }
            snprintf(canonical, canonical_len, "%s", real);
            return 0;
        }
    }
    char list[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < g->n_fill_paths && used < sizeof(list); i++) {
        int w = snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", g->fill_paths[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    snprintf(err, errlen,
             "guardrail: disk_fill may only write under %s (fill_paths in the agent's config); "
             "%s is not",
             list[0] ? list : "(nothing allowed)", real);
    return -EPERM;
}

/* ---------------------------------------------------------------- ledger */

enum hold_kind { HOLD_DISK, HOLD_MEMORY, HOLD_PROCESS };

struct fl_hold {
    struct fl_hold *next;
    char id[FL_FAULT_ID_MAX + 1];
    enum hold_kind kind;
    bool applied;
    uint64_t dev;   /* disk */
    uint64_t bytes; /* disk, memory */
    char *file;     /* disk */
    pid_t pid;      /* process */
    uint64_t start; /* process */
};

void fl_ledger_init(struct fl_ledger *l)
{
    l->holds = NULL;
}

static void hold_free(struct fl_hold *h)
{
    free(h->file);
    free(h);
}

void fl_ledger_free(struct fl_ledger *l)
{
    while (l->holds) {
        struct fl_hold *h = l->holds;
        l->holds = h->next;
        hold_free(h);
    }
}

static struct fl_hold *hold_new(struct fl_ledger *l, const char *id, enum hold_kind kind)
{
    struct fl_hold *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    snprintf(h->id, sizeof(h->id), "%s", id);
    h->kind = kind;
    h->next = l->holds;
    l->holds = h;
    return h;
}

int fl_ledger_hold_disk(struct fl_ledger *l, const char *id, uint64_t dev, uint64_t bytes,
                        const char *file)
{
    char *copy = strdup(file);
    struct fl_hold *h = copy ? hold_new(l, id, HOLD_DISK) : NULL;
    if (h == NULL) {
        free(copy);
        return -ENOMEM;
    }
    h->dev = dev;
    h->bytes = bytes;
    h->file = copy;
    return 0;
}

int fl_ledger_hold_memory(struct fl_ledger *l, const char *id, uint64_t bytes)
{
    struct fl_hold *h = hold_new(l, id, HOLD_MEMORY);
    if (h == NULL)
        return -ENOMEM;
    h->bytes = bytes;
    return 0;
}

int fl_ledger_hold_process(struct fl_ledger *l, const char *id, pid_t pid, uint64_t start)
{
    struct fl_hold *h = hold_new(l, id, HOLD_PROCESS);
    if (h == NULL)
        return -ENOMEM;
    h->pid = pid;
    h->start = start;
    return 0;
}

uint64_t fl_ledger_disk_pending(const struct fl_ledger *l, uint64_t dev, size_t *n_faults)
{
    uint64_t sum = 0;
    size_t n = 0;
    for (const struct fl_hold *h = l->holds; h; h = h->next) {
        if (h->kind != HOLD_DISK || h->applied || h->dev != dev)
            continue;
        /* apply may be under way: what the file holds already shows as used */
        struct stat st;
        uint64_t taken = lstat(h->file, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
        if (taken < h->bytes) {
            sum += h->bytes - taken;
            n++;
        }
    }
    if (n_faults)
        *n_faults = n;
    return sum;
}

uint64_t fl_ledger_memory_pending(const struct fl_ledger *l, size_t *n_faults)
{
    uint64_t sum = 0;
    size_t n = 0;
    for (const struct fl_hold *h = l->holds; h; h = h->next) {
        if (h->kind == HOLD_MEMORY && !h->applied) {
            sum += h->bytes;
            n++;
        }
    }
    if (n_faults)
        *n_faults = n;
    return sum;
}

const char *fl_ledger_process_holder(const struct fl_ledger *l, pid_t pid, uint64_t start)
{
    for (const struct fl_hold *h = l->holds; h; h = h->next)
        if (h->kind == HOLD_PROCESS && h->pid == pid && h->start == start)
            return h->id;
    return NULL;
}

void fl_ledger_applied(struct fl_ledger *l, const char *id)
{
    for (struct fl_hold *h = l->holds; h; h = h->next)
        if (strcmp(h->id, id) == 0)
            h->applied = true;
}

size_t fl_ledger_release(struct fl_ledger *l, const char *id)
{
    size_t n = 0;
    struct fl_hold **ph = &l->holds;
    while (*ph) {
        struct fl_hold *h = *ph;
        if (strcmp(h->id, id) == 0) {
            *ph = h->next;
            hold_free(h);
            n++;
        } else {
            ph = &h->next;
        }
    }
    return n;
}
