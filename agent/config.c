/* The agent's config file, read once at start with common/yamldoc.
 *
 * All or nothing: everything is parsed and checked into a copy of the
 * guardrails first (lists into fresh allocations), and only when the whole
 * file is good are the copies moved into the caller's struct and the lists
 * they replace freed. A bad file leaves the caller's defaults as they were.
 *
 * Each value is checked here with the sentence an operator needs ("fill path
 * 'tmp' is not absolute"), at the value's own line and column. */
#include "agent/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/cidr.h"
#include "common/text.h"
#include "common/yamldoc.h"

/* The kernel keeps a process name (comm) in 16 bytes with its NUL. */
#define COMM_MAX 15

static const char *const top_keys[] = {
    "name",
    "listen",
    "state_dir",
    "lease",
    "max_connections",
    "max_unauthenticated",
    "max_unauthenticated_per_address",
    "idle_timeout",
    "guardrails",
    NULL,
};

static const char *const guard_keys[] = {
    "protected_processes",
    "fill_paths",
    "max_fill",
    "fill_reserve",
    "memory_reserve",
    "max_duration",
    "max_cpu_workers",
    "allowed_controllers",
    "process_scope",
    "max_faults",
    NULL,
};

/* ---- single values ----------------------------------------------------- */

int fl_agent_process_scope(const char *text, bool *scope_netns)
{
    if (strcmp(text, "host") == 0)
        *scope_netns = false;
    else if (strcmp(text, "netns") == 0)
        *scope_netns = true;
    else
        return -EINVAL;
    return 0;
}

static int parse_process_scope(const struct fl_yaml_node *n, bool *scope_netns, char *err,
                               size_t errlen)
{
    const char *t;
    int rc = fl_yaml_string(n, &t, err, errlen);
    if (rc == 0 && fl_agent_process_scope(t, scope_netns) < 0)
        return fl_yaml_errorf(n, err, errlen,
                              "process_scope is host (every process) or netns (only processes "
                              "in the agent's network namespace), not '%s'",
                              t);
    return rc;
}

static int parse_listen(const struct fl_yaml_node *n, struct fl_agent_file_config *fc, char *err,
                        size_t errlen)
{
    const char *t;
    int rc = fl_yaml_string(n, &t, err, errlen);
    if (rc < 0)
        return rc;
    char host[128];
    uint16_t port;
    unsigned char bin[16];
    bool ok = strlen(t) < sizeof(fc->listen) &&
              fl_addr_split(t, FL_DEFAULT_PORT, host, sizeof(host), &port) == 0;
    if (ok) {
        host[strcspn(host, "%")] = '\0'; /* fe80::1%eth0: the scope is the server's business */
        ok = inet_pton(AF_INET, host, bin) == 1 || inet_pton(AF_INET6, host, bin) == 1;
    }
    if (!ok)
        return fl_yaml_errorf(n, err, errlen,
                              "listen takes ADDRESS:PORT with a numeric address, like "
                              "0.0.0.0:7411 or [::]:7411");
    snprintf(fc->listen, sizeof(fc->listen), "%s", t);
    fc->listen_set = true;
    return 0;
}

int fl_agent_name_check(const char *name, char *err, size_t errlen)
{
    size_t n = strlen(name);
    if (n == 0) {
        snprintf(err, errlen,
                 "the agent's name is empty: give 1 to %d visible characters, like "
                 "redis1",
                 FL_AGENT_NAME_MAX);
        return -EINVAL;
    }
    if (n > FL_AGENT_NAME_MAX) {
        snprintf(err, errlen, "the agent's name is %zu bytes long: at most %d", n,
                 FL_AGENT_NAME_MAX);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x21 || c > 0x7e) {
            snprintf(err, errlen,
                     "the agent's name has %s (byte 0x%02x at position %zu): use visible ASCII "
                     "characters only, no spaces or control characters",
                     c == ' '                ? "a space"
                     : c < 0x20 || c == 0x7f ? "a control character"
                                             : "a non-ASCII byte",
                     c, i + 1);
            return -EINVAL;
        }
    }
    return 0;
}

static int parse_name(const struct fl_yaml_node *n, struct fl_agent_file_config *fc, char *err,
                      size_t errlen)
{
    const char *t;
    int rc = fl_yaml_string(n, &t, err, errlen);
    if (rc < 0)
        return rc;
    char why[256];
    if (fl_agent_name_check(t, why, sizeof(why)) < 0)
        return fl_yaml_errorf(n, err, errlen, "name: %s", why);
    snprintf(fc->name, sizeof(fc->name), "%s", t);
    fc->name_set = true;
    return 0;
}

static int parse_state_dir(const struct fl_yaml_node *n, struct fl_agent_file_config *fc, char *err,
                           size_t errlen)
{
    const char *t;
    int rc = fl_yaml_string(n, &t, err, errlen);
    if (rc < 0)
        return rc;
    if (t[0] != '/')
        return fl_yaml_errorf(n, err, errlen,
                              "state_dir must be an absolute path, like /var/lib/faultline");
    if (strlen(t) >= sizeof(fc->state_dir))
        return fl_yaml_errorf(n, err, errlen, "state_dir is too long (at most %zu bytes)",
                              sizeof(fc->state_dir) - 1);
    snprintf(fc->state_dir, sizeof(fc->state_dir), "%s", t);
    fc->state_dir_set = true;
    return 0;
}

static int parse_lease(const struct fl_yaml_node *n, struct fl_agent_file_config *fc, char *err,
                       size_t errlen)
{
    uint64_t ms;
    int rc = fl_yaml_duration(n, &ms, err, errlen);
    if (rc < 0)
        return rc;
    if (ms < FL_AGENT_LEASE_MIN_MS)
        return fl_yaml_errorf(n, err, errlen,
                              "lease must be at least 1s: the controller sends a heartbeat "
                              "each second");
    if (ms > FL_AGENT_LEASE_MAX_MS)
        return fl_yaml_errorf(n, err, errlen,
                              "lease must be at most 1h: faults outlive a silent controller "
                              "by this long");
    fc->lease_ms = (uint32_t)ms;
    fc->lease_set = true;
    return 0;
}

static int parse_max_connections(const struct fl_yaml_node *n, struct fl_agent_file_config *fc,
                                 char *err, size_t errlen)
{
    uint64_t v;
    int rc = fl_yaml_uint(n, 1, FL_AGENT_MAX_CONNECTIONS, &v, err, errlen);
    if (rc < 0)
        return rc;
    fc->max_connections = (unsigned)v;
    fc->max_connections_set = true;
    return 0;
}

static int parse_connection_limit(const struct fl_yaml_node *n, unsigned *out, bool *set, char *err,
                                  size_t errlen)
{
    uint64_t v;
    int rc = fl_yaml_uint(n, 1, FL_AGENT_MAX_CONNECTIONS, &v, err, errlen);
    if (rc < 0)
        return rc;
    *out = (unsigned)v;
    *set = true;
    return 0;
}

static int parse_idle_timeout(const struct fl_yaml_node *n, struct fl_agent_file_config *fc,
                              char *err, size_t errlen)
{
    uint64_t ms;
    int rc = fl_yaml_duration(n, &ms, err, errlen);
    if (rc < 0)
        return rc;
    if (ms < FL_AGENT_IDLE_MIN_MS || ms > FL_AGENT_IDLE_MAX_MS)
        return fl_yaml_errorf(n, err, errlen,
                              "idle_timeout takes a duration from 1s to 1h: an authenticated "
                              "session that sends nothing for this long is closed");
    fc->idle_timeout_ms = ms;
    fc->idle_timeout_set = true;
    return 0;
}

static int parse_max_fill(const struct fl_yaml_node *n, double *out, char *err, size_t errlen)
{
    static const char msg[] = "max_fill takes a percentage from 1% to 100%, like 95%";
    const char *t;
    int rc = fl_yaml_string(n, &t, err, errlen); /* a single value, no control characters */
    if (rc < 0)
        return rc;
    struct fl_size s;
    if (fl_parse_size(t, &s) < 0 || !s.is_percent || s.percent < 1.0)
        return fl_yaml_errorf(n, err, errlen, "%s", msg);
    *out = s.percent;
    return 0;
}

static int parse_bytes(const struct fl_yaml_node *n, const char *key, uint64_t *out, char *err,
                       size_t errlen)
{
    struct fl_size s;
    int rc = fl_yaml_size(n, &s, err, errlen);
    if (rc < 0)
        return rc;
    if (s.is_percent)
        return fl_yaml_errorf(n, err, errlen, "%s takes a size like 64MiB, not a percentage", key);
    *out = s.bytes;
    return 0;
}

static int parse_max_duration(const struct fl_yaml_node *n, uint64_t *out, char *err, size_t errlen)
{
    uint64_t ms;
    int rc = fl_yaml_duration(n, &ms, err, errlen);
    if (rc < 0)
        return rc;
    if (ms == 0)
        return fl_yaml_errorf(n, err, errlen, "max_duration must be more than 0s");
    *out = ms;
    return 0;
}

/* ---- lists --------------------------------------------------------------- */

/* "10.0.0.0/8", "127.0.0.1", "fd00::/8", by common/cidr.h's one rule: a
 * prefix with host bits set (10.0.0.1/8) is refused with the network it
 * probably meant. */
static int check_cidr(const struct fl_yaml_node *n, const char *t, char *err, size_t errlen)
{
    struct fl_cidr c;
    char why[256];
    if (fl_cidr_parse_err(t, &c, why, sizeof(why)) < 0)
        return fl_yaml_errorf(n, err, errlen, "allowed_controllers: %s", why);
    return 0;
}

enum list_kind { PROCESSES, FILL_PATHS, CONTROLLERS };

static int check_entry(enum list_kind kind, const struct fl_yaml_node *n, const char *t, char *err,
                       size_t errlen)
{
    switch (kind) {
    case PROCESSES:
        if (strchr(t, '/') != NULL)
            return fl_yaml_errorf(n, err, errlen,
                                  "protected_processes takes process names as the kernel "
                                  "shows them (sshd), not paths");
        return 0;
    case FILL_PATHS: {
        char why[128];
        if (fl_text_check(t, "fill path", why, sizeof(why)) < 0)
            return fl_yaml_errorf(n, err, errlen, "%s", why);
        if (t[0] != '/')
            return fl_yaml_errorf(n, err, errlen,
                                  "fill path '%s' is not absolute; write a path that starts "
                                  "with /, like /var/tmp",
                                  t);
        return 0;
    }
    case CONTROLLERS:
        return check_cidr(n, t, err, errlen);
    }
    return -EINVAL;
}

static void free_strings(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
}

/* Parses a list into fresh strings in list (*n of them). On failure nothing
 * is left allocated. */
static int parse_list(const struct fl_yaml_node *n, const char *key, enum list_kind kind,
                      char **list, size_t *count, char *err, size_t errlen)
{
    const char *items[FL_GUARD_MAX_LIST];
    size_t k;
    int rc = fl_yaml_expect(n, FL_YAML_SEQUENCE, err, errlen);
    if (rc == 0 && n->n_items > FL_GUARD_MAX_LIST)
        return fl_yaml_errorf(n, err, errlen, "%s holds %zu entries; at most %d are allowed", key,
                              n->n_items, FL_GUARD_MAX_LIST);
    if (rc == 0)
        rc = fl_yaml_strings(n, items, FL_GUARD_MAX_LIST, &k, err, errlen);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < k; i++) {
        rc = check_entry(kind, n->items[i], items[i], err, errlen);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < k; i++) {
        /* a longer name could never match: the kernel cuts comm to 15 bytes */
        list[i] = kind == PROCESSES ? strndup(items[i], COMM_MAX) : strdup(items[i]);
        if (list[i] == NULL) {
            free_strings(list, i);
            snprintf(err, errlen, "%s: out of memory", n->file);
            return -ENOMEM;
        }
    }
    *count = k;
    return 0;
}

/* ---- the file ------------------------------------------------------------- */

/* The lists read from the file, not yet in the caller's guardrails. */
struct new_lists {
    char *names[FL_GUARD_MAX_LIST], *paths[FL_GUARD_MAX_LIST], *ctls[FL_GUARD_MAX_LIST];
    size_t n_names, n_paths, n_ctls;
    bool names_set, paths_set, ctls_set;
};

static int parse_guardrails(const struct fl_yaml_node *map, struct fl_guardrails *g,
                            struct new_lists *nl, char *err, size_t errlen)
{
    if (fl_yaml_is_null(map))
        return 0; /* "guardrails:" with everything under it commented out */
    int rc = fl_yaml_check_keys(map, guard_keys, err, errlen);
    for (size_t i = 0; rc == 0 && i < map->n_pairs; i++) {
        const char *key = map->pairs[i].key->text;
        const struct fl_yaml_node *v = map->pairs[i].value;
        if (strcmp(key, "protected_processes") == 0) {
            rc = parse_list(v, key, PROCESSES, nl->names, &nl->n_names, err, errlen);
            nl->names_set = rc == 0;
        } else if (strcmp(key, "fill_paths") == 0) {
            rc = parse_list(v, key, FILL_PATHS, nl->paths, &nl->n_paths, err, errlen);
            nl->paths_set = rc == 0;
        } else if (strcmp(key, "allowed_controllers") == 0) {
            rc = parse_list(v, key, CONTROLLERS, nl->ctls, &nl->n_ctls, err, errlen);
            nl->ctls_set = rc == 0;
        } else if (strcmp(key, "max_fill") == 0) {
            rc = parse_max_fill(v, &g->max_fill_percent, err, errlen);
        } else if (strcmp(key, "fill_reserve") == 0) {
            rc = parse_bytes(v, key, &g->fill_reserve_bytes, err, errlen);
        } else if (strcmp(key, "memory_reserve") == 0) {
            rc = parse_bytes(v, key, &g->memory_reserve_bytes, err, errlen);
        } else if (strcmp(key, "max_duration") == 0) {
            rc = parse_max_duration(v, &g->max_duration_ms, err, errlen);
        } else if (strcmp(key, "max_cpu_workers") == 0) {
            uint64_t w;
            rc = fl_yaml_uint(v, 1, FL_AGENT_MAX_CPU_WORKERS, &w, err, errlen);
            if (rc == 0)
                g->max_cpu_workers = (uint32_t)w;
        } else if (strcmp(key, "process_scope") == 0) {
            rc = parse_process_scope(v, &g->scope_netns, err, errlen);
        } else if (strcmp(key, "max_faults") == 0) {
            uint64_t m;
            rc = fl_yaml_uint(v, 1, FL_GUARD_MAX_FAULTS_MAX, &m, err, errlen);
            if (rc == 0)
                g->max_faults = (uint32_t)m;
        }
    }
    return rc;
}

static int parse_root(const struct fl_yaml_node *root, struct fl_agent_file_config *fc,
                      struct fl_guardrails *g, struct new_lists *nl, char *err, size_t errlen)
{
    if (root == NULL || fl_yaml_is_null(root))
        return 0; /* an empty file, or only comments: all defaults */
    int rc = fl_yaml_check_keys(root, top_keys, err, errlen);
    for (size_t i = 0; rc == 0 && i < root->n_pairs; i++) {
        const char *key = root->pairs[i].key->text;
        const struct fl_yaml_node *v = root->pairs[i].value;
        if (strcmp(key, "name") == 0)
            rc = parse_name(v, fc, err, errlen);
        else if (strcmp(key, "listen") == 0)
            rc = parse_listen(v, fc, err, errlen);
        else if (strcmp(key, "state_dir") == 0)
            rc = parse_state_dir(v, fc, err, errlen);
        else if (strcmp(key, "lease") == 0)
            rc = parse_lease(v, fc, err, errlen);
        else if (strcmp(key, "max_connections") == 0)
            rc = parse_max_connections(v, fc, err, errlen);
        else if (strcmp(key, "max_unauthenticated") == 0)
            rc = parse_connection_limit(v, &fc->max_unauthenticated, &fc->max_unauthenticated_set,
                                        err, errlen);
        else if (strcmp(key, "max_unauthenticated_per_address") == 0)
            rc = parse_connection_limit(v, &fc->max_unauthenticated_per_address,
                                        &fc->max_unauthenticated_per_address_set, err, errlen);
        else if (strcmp(key, "idle_timeout") == 0)
            rc = parse_idle_timeout(v, fc, err, errlen);
        else if (strcmp(key, "guardrails") == 0)
            rc = parse_guardrails(v, g, nl, err, errlen);
    }
    return rc;
}

/* Frees old's entries and moves the new ones in. */
static void replace_list(char **old, size_t *n_old, char **fresh, size_t n_fresh)
{
    free_strings(old, *n_old);
    for (size_t i = 0; i < n_fresh; i++)
        old[i] = fresh[i];
    for (size_t i = n_fresh; i < *n_old; i++)
        old[i] = NULL;
    *n_old = n_fresh;
}

int fl_agent_config_load(const char *path, struct fl_agent_file_config *out,
                         struct fl_guardrails *g, char *err, size_t errlen)
{
    struct fl_yaml_doc *doc = NULL;
    int rc = fl_yaml_load_file(path, &doc, err, errlen);
    if (rc < 0)
        return rc;

    /* ng's lists still point at g's strings; only nl's are ours to free */
    struct fl_guardrails ng = *g;
    struct fl_agent_file_config fc;
    struct new_lists nl;
    memset(&fc, 0, sizeof(fc));
    memset(&nl, 0, sizeof(nl));
    rc = parse_root(doc->root, &fc, &ng, &nl, err, errlen);
    fl_yaml_free(&doc);
    if (rc < 0) {
        free_strings(nl.names, nl.n_names);
        free_strings(nl.paths, nl.n_paths);
        free_strings(nl.ctls, nl.n_ctls);
        return rc;
    }
    if (nl.names_set)
        replace_list(ng.protected_names, &ng.n_protected_names, nl.names, nl.n_names);
    if (nl.paths_set)
        replace_list(ng.fill_paths, &ng.n_fill_paths, nl.paths, nl.n_paths);
    if (nl.ctls_set)
        replace_list(ng.allowed_controllers, &ng.n_allowed_controllers, nl.ctls, nl.n_ctls);
    *g = ng;
    *out = fc;
    return 0;
}
