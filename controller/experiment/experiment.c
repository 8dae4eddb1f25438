/* The experiment loader: YAML tree (common/yamldoc) -> struct fl_experiment.
 *
 * Design:
 * - One pass per section in a fixed order (version, name, inventory,
 *   objectives, probes, steady_state, abort_when, faults, recovery), then the
 *   checks that span sections (fault windows against max_duration). The first
 *   problem found is the one reported; every message is "FILE:LINE:COL: ...",
 *   pointing at the node that is wrong (the mapping itself for a missing key).
 * - Every key of every mapping is checked against the known ones, so a typo
 *   is an error with a suggestion, never a silently ignored setting.
 * - Fault parameters go through controller/faultspec, exactly as on
 *   `faultline inject`: scalars are passed as their text, list items of
 *   peers/ports one by one (faultspec appends them, same as joining with
 *   commas, but an error points at the item). faultspec's sentence is kept
 *   and prefixed with the parameter's position.
 * - References (probe names, host names, tags) become indices; the nearest
 *   known name is suggested when one is close (edit distance, as yamldoc).
 * - Everything is copied out of the tree; the struct is allocated up front
 *   and filled in place, so one fl_experiment_free cleans up after any error.
 *   *out is written only on success. */
#include "controller/experiment/experiment.h"

#include "common/suggest.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/units.h"
#include "common/yamldoc.h"
#include "controller/experiment/faultspec.h"

#define NAME_MAX_LEN 63
#define MIN_INTERVAL_MS 10
#define MAX_RISE_FALL 100
#define HOST_BUF 256

struct ctx {
    char *err;
    size_t errlen;
    const char *path; /* the experiment file */
    struct fl_experiment *e;
    const struct fl_yaml_node **probe_names; /* name nodes, for duplicate messages */
    const struct fl_yaml_node **fault_names;
    const struct fl_yaml_node **fault_durations;
    const struct fl_yaml_node **abort_nodes;
};

static int nomem(struct ctx *c)
{
    snprintf(c->err, c->errlen, "%s: out of memory", c->path);
    return -ENOMEM;
}

static int copy(struct ctx *c, const char *s, char **out)
{
    char *d = strdup(s);
    if (d == NULL)
        return nomem(c);
    *out = d;
    return 0;
}

/* rel as seen from the directory of the file base: absolute paths and "~/"
 * are kept, others are joined to base's directory (when it has one). */
static int resolve(struct ctx *c, const char *base, const char *rel, char **out)
{
    const char *slash = strrchr(base, '/');
    if (rel[0] == '/' || (rel[0] == '~' && rel[1] == '/') || slash == NULL)
        return copy(c, rel, out);
    size_t dlen = (size_t)(slash - base) + 1;
    size_t rlen = strlen(rel);
    char *p = malloc(dlen + rlen + 1);
    if (p == NULL)
        return nomem(c);
    memcpy(p, base, dlen);
    memcpy(p + dlen, rel, rlen + 1);
    *out = p;
    return 0;
}

/* "; did you mean 'x'?" or "" */
static const char *near_text(const struct fl_near *n, char *buf, size_t len)
{
    const char *best = fl_near_best(n);
    if (best == NULL)
        return "";
    snprintf(buf, len, "; did you mean '%s'?", best);
    return buf;
}

/* --------------------------------------------------------------- values */

static int required(struct ctx *c, const struct fl_yaml_node *map, const char *key,
                    const struct fl_yaml_node **out)
{
    const struct fl_yaml_node *n = fl_yaml_get(map, key);
    if (n == NULL)
        return fl_yaml_errorf(map, c->err, c->errlen, "missing required key '%s'", key);
    *out = n;
    return 0;
}

/* A name people type and the runner prints: letters, digits, '.', '_', '-'. */
static int name_value(struct ctx *c, const struct fl_yaml_node *n, const char *what,
                      const char **out)
{
    const char *t;
    int rc = fl_yaml_string(n, &t, c->err, c->errlen);
    if (rc < 0)
        return rc;
    bool ok = strlen(t) <= NAME_MAX_LEN;
    for (const char *p = t; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
             *p == '.' || *p == '_' || *p == '-';
    if (!ok)
        return fl_yaml_errorf(n, c->err, c->errlen,
                              "%s '%.64s' is not a valid name: use up to %d letters, digits, '.', "
                              "'_' and '-'",
                              what, t, NAME_MAX_LEN);
    *out = t;
    return 0;
}

static int string_copy(struct ctx *c, const struct fl_yaml_node *n, char **out)
{
    const char *t;
    int rc = fl_yaml_string(n, &t, c->err, c->errlen);
    if (rc < 0)
        return rc;
    return copy(c, t, out);
}

static int port_value(struct ctx *c, const struct fl_yaml_node *n, uint16_t *out)
{
    uint64_t v;
    int rc = fl_yaml_uint(n, 1, 65535, &v, c->err, c->errlen);
    if (rc < 0)
        return rc;
    *out = (uint16_t)v;
    return 0;
}

static int positive_duration(struct ctx *c, const struct fl_yaml_node *n, uint64_t min,
                             uint64_t *out)
{
    uint64_t v;
    int rc = fl_yaml_duration(n, &v, c->err, c->errlen);
    if (rc < 0)
        return rc;
    if (v < min) {
        char buf[32];
        fl_format_duration(min, buf, sizeof(buf));
        return fl_yaml_errorf(n, c->err, c->errlen, "the duration must be at least %s", buf);
    }
    *out = v;
    return 0;
}

/* An optional list: a null value is an empty list. */
static int list_or_null(struct ctx *c, const struct fl_yaml_node *n, size_t *count)
{
    if (n == NULL || fl_yaml_is_null(n)) {
        *count = 0;
        return 0;
    }
    int rc = fl_yaml_expect(n, FL_YAML_SEQUENCE, c->err, c->errlen);
    if (rc < 0)
        return rc;
    *count = n->n_items;
    return 0;
}

/* ------------------------------------------------------------ inventory */

static void ssh_free(struct fl_ssh_opts *s)
{
    free(s->user);
    free(s->identity_file);
    free(s->known_hosts);
    free(s->deploy_dir);
    memset(s, 0, sizeof(*s));
}

static int parse_ssh(struct ctx *c, const struct fl_yaml_node *n, const char *base,
                     struct fl_ssh_opts *s)
{
    static const char *const keys[] = {"user",        "port",       "identity_file",
                                       "known_hosts", "deploy_dir", NULL};
    int rc = fl_yaml_check_keys(n, keys, c->err, c->errlen);
    const struct fl_yaml_node *v = NULL;
    const char *t;
    if (rc == 0 && (v = fl_yaml_get(n, "user")) != NULL) {
        free(s->user);
        s->user = NULL;
        rc = string_copy(c, v, &s->user);
    }
    if (rc == 0 && (v = fl_yaml_get(n, "port")) != NULL)
        rc = port_value(c, v, &s->port);
    if (rc == 0 && (v = fl_yaml_get(n, "identity_file")) != NULL &&
        (rc = fl_yaml_string(v, &t, c->err, c->errlen)) == 0) {
        free(s->identity_file);
        s->identity_file = NULL;
        rc = resolve(c, base, t, &s->identity_file);
    }
    if (rc == 0 && (v = fl_yaml_get(n, "known_hosts")) != NULL &&
        (rc = fl_yaml_string(v, &t, c->err, c->errlen)) == 0) {
        free(s->known_hosts);
        s->known_hosts = NULL;
        rc = resolve(c, base, t, &s->known_hosts);
    }
    if (rc == 0 && (v = fl_yaml_get(n, "deploy_dir")) != NULL &&
        (rc = fl_yaml_string(v, &t, c->err, c->errlen)) == 0) {
        bool bad = t[0] != '/';
        for (const char *q = t; *q != '\0'; q++)
            bad = bad || (unsigned char)*q < 0x20 || *q == 0x7f;
        if (bad)
            return fl_yaml_errorf(v, c->err, c->errlen,
                                  "deploy_dir must be an absolute path on the host, such as "
                                  "/opt/faultline");
        free(s->deploy_dir);
        s->deploy_dir = NULL;
        rc = copy(c, t, &s->deploy_dir);
    }
    return rc;
}

static int ssh_copy(struct ctx *c, const struct fl_ssh_opts *from, struct fl_ssh_opts *to)
{
    to->port = from->port;
    if (from->user && copy(c, from->user, &to->user) < 0)
        return -ENOMEM;
    if (from->identity_file && copy(c, from->identity_file, &to->identity_file) < 0)
        return -ENOMEM;
    if (from->known_hosts && copy(c, from->known_hosts, &to->known_hosts) < 0)
        return -ENOMEM;
    if (from->deploy_dir && copy(c, from->deploy_dir, &to->deploy_dir) < 0)
        return -ENOMEM;
    return 0;
}

static int parse_tags(struct ctx *c, const struct fl_yaml_node *n, char ***out, size_t *count)
{
    int rc = fl_yaml_expect(n, FL_YAML_SEQUENCE, c->err, c->errlen);
    if (rc < 0)
        return rc;
    if (n->n_items > FL_EXPERIMENT_MAX_TAGS)
        return fl_yaml_errorf(n, c->err, c->errlen, "too many tags (%zu): at most %d", n->n_items,
                              FL_EXPERIMENT_MAX_TAGS);
    char **tags = calloc(n->n_items + 1, sizeof(*tags));
    if (tags == NULL)
        return nomem(c);
    *out = tags; /* owned by the caller from here, even when filling fails */
    *count = 0;
    for (size_t i = 0; i < n->n_items; i++) {
        const char *t;
        rc = name_value(c, n->items[i], "tag", &t);
        for (size_t j = 0; rc == 0 && j < i; j++)
            if (strcmp(tags[j], t) == 0)
                rc = fl_yaml_errorf(n->items[i], c->err, c->errlen, "tag '%s' is listed twice", t);
        if (rc == 0)
            rc = copy(c, t, &tags[i]);
        if (rc < 0)
            return rc;
        *count = i + 1;
    }
    return 0;
}

static int parse_host(struct ctx *c, const struct fl_yaml_pair *p, const char *base,
                      const struct fl_inventory *inv, struct fl_host *h)
{
    static const char *const keys[] = {"address", "port", "tags", "ssh", NULL};
    const char *name;
    int rc = name_value(c, p->key, "host name", &name);
    if (rc == 0)
        rc = copy(c, name, &h->name);
    if (rc == 0 && fl_yaml_is_null(p->value))
        return fl_yaml_errorf(p->value, c->err, c->errlen,
                              "host '%s' needs an address: { address: 10.77.0.2 }", name);
    if (rc == 0)
        rc = fl_yaml_check_keys(p->value, keys, c->err, c->errlen);
    const struct fl_yaml_node *n = p->value, *v = NULL;
    const char *addr;
    if (rc == 0)
        rc = required(c, n, "address", &v);
    if (rc == 0)
        rc = fl_yaml_string(v, &addr, c->err, c->errlen);
    char host[HOST_BUF];
    uint16_t port = 0;
    if (rc == 0 && fl_addr_split(addr, 0, host, sizeof(host), &port) < 0)
        rc = fl_yaml_errorf(v, c->err, c->errlen,
                            "'%.64s' is not an address: expected an IP address or a host name, "
                            "such as 10.77.0.2, fd00::2 or db1.staging",
                            addr);
    if (rc == 0)
        rc = copy(c, host, &h->address);
    const struct fl_yaml_node *pn = fl_yaml_get(n, "port");
    if (rc == 0 && pn != NULL && port != 0)
        rc = fl_yaml_errorf(pn, c->err, c->errlen,
                            "the port is given twice: in the address and here; keep one");
    if (rc == 0 && pn != NULL)
        rc = port_value(c, pn, &port);
    h->port = port ? port : FL_DEFAULT_PORT;
    if (rc == 0 && (v = fl_yaml_get(n, "tags")) != NULL && !fl_yaml_is_null(v))
        rc = parse_tags(c, v, &h->tags, &h->n_tags);
    if (rc == 0 && inv->has_ssh) {
        h->has_ssh = true;
        rc = ssh_copy(c, &inv->ssh, &h->ssh);
    }
    if (rc == 0 && (v = fl_yaml_get(n, "ssh")) != NULL) {
        h->has_ssh = true;
        rc = parse_ssh(c, v, base, &h->ssh);
    }
    return rc;
}

/* The inventory mapping at n, from the file base (for relative paths). */
static int parse_inventory(struct ctx *c, const struct fl_yaml_node *n, const char *base)
{
    static const char *const keys[] = {"key_file", "ssh", "hosts", NULL};
    struct fl_inventory *inv = &c->e->inventory;
    int rc = copy(c, base, &inv->path);
    if (rc == 0)
        rc = fl_yaml_check_keys(n, keys, c->err, c->errlen);
    const struct fl_yaml_node *v = NULL;
    const char *t;
    if (rc == 0 && (v = fl_yaml_get(n, "key_file")) != NULL &&
        (rc = fl_yaml_string(v, &t, c->err, c->errlen)) == 0)
        rc = resolve(c, base, t, &inv->key_file);
    if (rc == 0 && (v = fl_yaml_get(n, "ssh")) != NULL) {
        inv->has_ssh = true;
        rc = parse_ssh(c, v, base, &inv->ssh);
    }
    const struct fl_yaml_node *hosts = NULL;
    if (rc == 0)
        rc = required(c, n, "hosts", &hosts);
    if (rc == 0)
        rc = fl_yaml_expect(hosts, FL_YAML_MAPPING, c->err, c->errlen);
    if (rc == 0 && hosts->n_pairs == 0)
        rc = fl_yaml_errorf(hosts, c->err, c->errlen, "the inventory has no hosts");
    if (rc < 0)
        return rc;
    inv->hosts = calloc(hosts->n_pairs, sizeof(*inv->hosts));
    if (inv->hosts == NULL)
        return nomem(c);
    inv->n_hosts = hosts->n_pairs;
    for (size_t i = 0; i < hosts->n_pairs && rc == 0; i++)
        rc = parse_host(c, &hosts->pairs[i], base, inv, &inv->hosts[i]);
    return rc;
}

/* A separate inventory file: the same format as an inline inventory. */
static int load_inventory_file(struct ctx *c, const char *file)
{
    struct fl_yaml_doc *doc = NULL;
    int rc = fl_yaml_load_file(file, &doc, c->err, c->errlen);
    if (rc < 0)
        return rc;
    if (doc->root == NULL) {
        snprintf(c->err, c->errlen, "%s:1:1: the inventory is empty: it needs hosts", file);
        rc = -EINVAL;
    } else {
        rc = parse_inventory(c, doc->root, file);
    }
    fl_yaml_free(&doc);
    return rc;
}

long fl_experiment_host(const struct fl_experiment *e, const char *name)
{
    for (size_t i = 0; i < e->inventory.n_hosts; i++)
        if (strcmp(e->inventory.hosts[i].name, name) == 0)
            return (long)i;
    return -1;
}

long fl_experiment_probe(const struct fl_experiment *e, const char *name)
{
    for (size_t i = 0; i < e->n_probes; i++)
        if (e->probes[i].name != NULL && strcmp(e->probes[i].name, name) == 0)
            return (long)i;
    return -1;
}

/* --------------------------------------------------------------- probes */

/* A timeout inside the kind's mapping, unless the probe gave one already. */
static int kind_timeout(struct ctx *c, const struct fl_yaml_node *kind,
                        const struct fl_yaml_node *probe_timeout, struct fl_probe_spec *p)
{
    const struct fl_yaml_node *v = fl_yaml_get(kind, "timeout");
    if (v == NULL)
        return 0;
    if (probe_timeout != NULL)
        return fl_yaml_errorf(v, c->err, c->errlen,
                              "timeout is already set for this probe (line %u); keep one",
                              probe_timeout->line);
    return positive_duration(c, v, 1, &p->timeout_ms);
}

static bool token_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static int parse_http(struct ctx *c, const struct fl_yaml_node *n,
                      const struct fl_yaml_node *probe_timeout, struct fl_probe_spec *p)
{
    static const char *const keys[] = {"method",        "url",     "headers", "expect_status",
                                       "body_contains", "timeout", NULL};
    struct fl_probe_http *h = &p->u.http;
    int rc = fl_yaml_check_keys(n, keys, c->err, c->errlen);
    const struct fl_yaml_node *v = NULL;
    const char *t;
    if (rc == 0 && (v = fl_yaml_get(n, "method")) != NULL &&
        (rc = fl_yaml_string(v, &t, c->err, c->errlen)) == 0) {
        for (const char *q = t; *q && rc == 0; q++)
            if (*q < 'A' || *q > 'Z')
                rc = fl_yaml_errorf(v, c->err, c->errlen,
                                    "expected an HTTP method such as GET, HEAD or POST, in "
                                    "capitals");
        if (rc == 0)
            rc = copy(c, t, &h->method);
    } else if (rc == 0) {
        rc = copy(c, "GET", &h->method);
    }
    if (rc == 0)
        rc = required(c, n, "url", &v);
    if (rc == 0 && (rc = fl_yaml_string(v, &t, c->err, c->errlen)) == 0) {
        if (strncmp(t, "http://", 7) != 0 && strncmp(t, "https://", 8) != 0)
            rc = fl_yaml_errorf(v, c->err, c->errlen,
                                "expected a URL starting with http:// or https://, such as "
                                "http://10.77.0.1:8080/health");
        else if (strchr(t, ' ') != NULL)
            rc = fl_yaml_errorf(v, c->err, c->errlen, "a URL has no spaces: write them as %%20");
        else
            rc = copy(c, t, &h->url);
    }
    if (rc == 0 && (v = fl_yaml_get(n, "headers")) != NULL &&
        (rc = fl_yaml_expect(v, FL_YAML_MAPPING, c->err, c->errlen)) == 0) {
        if (v->n_pairs > FL_PROBE_MAX_HEADERS)
            rc = fl_yaml_errorf(v, c->err, c->errlen, "too many headers (%zu): at most %d",
                                v->n_pairs, FL_PROBE_MAX_HEADERS);
        for (size_t i = 0; i < v->n_pairs && rc == 0; i++) {
            const struct fl_yaml_node *k = v->pairs[i].key;
            const char *name, *val;
            rc = fl_yaml_string(k, &name, c->err, c->errlen);
            for (const char *q = name; rc == 0 && *q; q++)
                if (!token_char(*q))
                    rc = fl_yaml_errorf(k, c->err, c->errlen,
                                        "'%.64s' is not a header name: use letters, digits and "
                                        "'-'",
                                        name);
            if (rc == 0)
                rc = fl_yaml_string(v->pairs[i].value, &val, c->err, c->errlen);
            if (rc < 0)
                break;
            size_t len = strlen(name) + strlen(val) + 3;
            h->headers[i] = malloc(len);
            if (h->headers[i] == NULL)
                return nomem(c);
            snprintf(h->headers[i], len, "%s: %s", name, val);
            h->n_headers = i + 1;
        }
    }
    if (rc == 0 && (v = fl_yaml_get(n, "expect_status")) != NULL) {
        const struct fl_yaml_node *one = v;
        size_t count = 1;
        if (v->kind == FL_YAML_SEQUENCE) {
            count = v->n_items;
            if (count > FL_PROBE_MAX_STATUSES)
                rc = fl_yaml_errorf(v, c->err, c->errlen, "too many status codes (%zu): at most %d",
                                    count, FL_PROBE_MAX_STATUSES);
        }
        for (size_t i = 0; i < count && rc == 0; i++) {
            uint64_t code;
            if (v->kind == FL_YAML_SEQUENCE)
                one = v->items[i];
            rc = fl_yaml_uint(one, 100, 599, &code, c->err, c->errlen);
            if (rc == 0)
                h->expect_status[h->n_expect_status++] = (unsigned)code;
        }
    }
    if (rc == 0 && (v = fl_yaml_get(n, "body_contains")) != NULL)
        rc = string_copy(c, v, &h->body_contains);
    if (rc == 0)
        rc = kind_timeout(c, n, probe_timeout, p);
    return rc;
}

static int parse_tcp(struct ctx *c, const struct fl_yaml_node *n,
                     const struct fl_yaml_node *probe_timeout, struct fl_probe_spec *p)
{
    static const char *const keys[] = {"host", "port", "address", "timeout", NULL};
    struct fl_probe_tcp *t = &p->u.tcp;
    int rc = fl_yaml_check_keys(n, keys, c->err, c->errlen);
    if (rc < 0)
        return rc;
    const struct fl_yaml_node *addr = fl_yaml_get(n, "address");
    const struct fl_yaml_node *host = fl_yaml_get(n, "host");
    const struct fl_yaml_node *port = fl_yaml_get(n, "port");
    const char *text;
    if (addr != NULL) {
        if (host != NULL || port != NULL)
            return fl_yaml_errorf(host ? host : port, c->err, c->errlen,
                                  "give either address (host:port) or host and port, not both");
        rc = fl_yaml_string(addr, &text, c->err, c->errlen);
        char buf[HOST_BUF];
        uint16_t pt = 0;
        if (rc == 0 && (fl_addr_split(text, 0, buf, sizeof(buf), &pt) < 0 || pt == 0))
            rc = fl_yaml_errorf(addr, c->err, c->errlen,
                                "expected HOST:PORT, such as 10.77.0.5:5432 or [fd00::5]:5432");
        if (rc == 0)
            rc = copy(c, buf, &t->host);
        t->port = pt;
    } else {
        if (host == NULL || port == NULL)
            return fl_yaml_errorf(n, c->err, c->errlen,
                                  "a tcp probe needs host and port, or address: HOST:PORT");
        rc = fl_yaml_string(host, &text, c->err, c->errlen);
        char buf[HOST_BUF];
        uint16_t pt = 0;
        if (rc == 0 && (fl_addr_split(text, 0, buf, sizeof(buf), &pt) < 0 || pt != 0))
            rc = fl_yaml_errorf(host, c->err, c->errlen,
                                "expected an IP address or a host name without a port");
        if (rc == 0)
            rc = copy(c, buf, &t->host);
        if (rc == 0)
            rc = port_value(c, port, &t->port);
    }
    if (rc == 0)
        rc = kind_timeout(c, n, probe_timeout, p);
    return rc;
}

static int parse_exec(struct ctx *c, const struct fl_yaml_node *n,
                      const struct fl_yaml_node *probe_timeout, struct fl_probe_spec *p)
{
    static const char *const keys[] = {"argv", "expect_exit", "timeout", NULL};
    struct fl_probe_exec *x = &p->u.exec;
    int rc = fl_yaml_check_keys(n, keys, c->err, c->errlen);
    const struct fl_yaml_node *v = NULL;
    if (rc == 0)
        rc = required(c, n, "argv", &v);
    if (rc < 0 || v == NULL) /* v is set when rc is 0 */
        return rc < 0 ? rc : -EINVAL;
    if (v->kind == FL_YAML_SCALAR)
        return fl_yaml_errorf(v, c->err, c->errlen,
                              "argv is a list, run without a shell: [pg_isready, -h, 10.77.0.5]");
    const char *args[FL_PROBE_MAX_ARGV];
    size_t count = 0;
    rc = fl_yaml_strings(v, args, FL_PROBE_MAX_ARGV, &count, c->err, c->errlen);
    if (rc == 0 && count == 0)
        rc = fl_yaml_errorf(v, c->err, c->errlen, "argv needs at least the program to run");
    for (size_t i = 0; i < count && rc == 0; i++) {
        rc = copy(c, args[i], &x->argv[i]);
        if (rc == 0)
            x->argc = i + 1;
    }
    uint64_t code;
    if (rc == 0 && (v = fl_yaml_get(n, "expect_exit")) != NULL &&
        (rc = fl_yaml_uint(v, 0, 255, &code, c->err, c->errlen)) == 0)
        x->expect_exit = (int)code;
    if (rc == 0)
        rc = kind_timeout(c, n, probe_timeout, p);
    return rc;
}

static int host_ref(struct ctx *c, const struct fl_yaml_node *n, size_t *out);

/* ssh: { host: web1, command: "systemctl is-active nginx", expect_exit: 0 }:
 * the host's ssh settings come from the inventory. */
static int parse_ssh_probe(struct ctx *c, const struct fl_yaml_node *n,
                           const struct fl_yaml_node *probe_timeout, struct fl_probe_spec *p)
{
    static const char *const keys[] = {"host", "command", "expect_exit", "timeout", NULL};
    struct fl_probe_ssh *x = &p->u.ssh;
    int rc = fl_yaml_check_keys(n, keys, c->err, c->errlen);
    const struct fl_yaml_node *v = NULL;
    size_t hi = 0;
    if (rc == 0)
        rc = required(c, n, "host", &v);
    if (rc == 0)
        rc = host_ref(c, v, &hi);
    if (rc < 0)
        return rc;
    const struct fl_host *h = &c->e->inventory.hosts[hi];
    const struct fl_ssh_opts *o = &h->ssh;
    if ((rc = copy(c, h->name, &x->host)) < 0 || (rc = copy(c, h->address, &x->address)) < 0 ||
        (o->user && (rc = copy(c, o->user, &x->user)) < 0) ||
        (o->identity_file && (rc = copy(c, o->identity_file, &x->identity_file)) < 0) ||
        (o->known_hosts && (rc = copy(c, o->known_hosts, &x->known_hosts)) < 0))
        return rc;
    x->port = o->port;
    rc = required(c, n, "command", &v);
    if (rc == 0)
        rc = string_copy(c, v, &x->command);
    if (rc == 0 && x->command[0] == '\0')
        rc = fl_yaml_errorf(v, c->err, c->errlen,
                            "command is empty: name what to run, such as "
                            "\"systemctl is-active nginx\"");
    uint64_t code;
    if (rc == 0 && (v = fl_yaml_get(n, "expect_exit")) != NULL &&
        (rc = fl_yaml_uint(v, 0, 255, &code, c->err, c->errlen)) == 0)
        x->expect_exit = (int)code;
    if (rc == 0)
        rc = kind_timeout(c, n, probe_timeout, p);
    return rc;
}

/* The required name of the idx-th probe or fault (what), unique among the
 * earlier ones, whose name nodes are in seen; copied to *out, and its node
 * kept in seen[idx] for later duplicate messages. */
static int unique_name(struct ctx *c, const struct fl_yaml_node *n, const char *what,
                       const struct fl_yaml_node **seen, size_t idx, char **out)
{
    const struct fl_yaml_node *v = NULL;
    const char *name;
    char label[32];
    snprintf(label, sizeof(label), "%s name", what);
    int rc = required(c, n, "name", &v);
    if (rc == 0)
        rc = name_value(c, v, label, &name);
    for (size_t i = 0; rc == 0 && i < idx; i++)
        if (strcmp(seen[i]->text, name) == 0)
            rc = fl_yaml_errorf(v, c->err, c->errlen,
                                "duplicate %s name '%s' (first at line %u): names must be unique",
                                what, name, seen[i]->line);
    if (rc == 0)
        rc = copy(c, name, out);
    if (rc == 0)
        seen[idx] = v;
    return rc;
}

static int parse_probe(struct ctx *c, size_t idx, const struct fl_yaml_node *n)
{
    static const char *const keys[] = {"name",     "http",    "tcp",  "exec", "ssh",
                                       "interval", "timeout", "rise", "fall", NULL};
    static const char *const kinds[] = {"http", "tcp", "exec", "ssh"};
    struct fl_probe_spec *p = &c->e->probes[idx];
    int rc = fl_yaml_check_keys(n, keys, c->err, c->errlen);
    if (rc == 0)
        rc = unique_name(c, n, "probe", c->probe_names, idx, &p->name);
    if (rc < 0)
        return rc;
    const char *name = p->name;
    const struct fl_yaml_node *v = NULL;

    const struct fl_yaml_node *kind = NULL;
    size_t kind_i = 0;
    for (size_t i = 0; i < n->n_pairs; i++) {
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
            if (strcmp(n->pairs[i].key->text, kinds[k]) != 0)
                continue;
            if (kind != NULL)
                return fl_yaml_errorf(n->pairs[i].key, c->err, c->errlen,
                                      "probe '%s' has two kinds, %s and %s: one probe checks one "
                                      "thing",
                                      name, kinds[kind_i], kinds[k]);
            kind = n->pairs[i].value;
            kind_i = k;
        }
    }
    if (kind == NULL)
        return fl_yaml_errorf(n, c->err, c->errlen,
                              "probe '%s' needs a kind: http, tcp, exec or ssh", name);

    p->interval_ms = 1000;
    p->timeout_ms = 1000;
    p->rise = 2;
    p->fall = 3;
    const struct fl_yaml_node *timeout = fl_yaml_get(n, "timeout");
    if ((v = fl_yaml_get(n, "interval")) != NULL)
        rc = positive_duration(c, v, MIN_INTERVAL_MS, &p->interval_ms);
    if (rc == 0 && timeout != NULL)
        rc = positive_duration(c, timeout, 1, &p->timeout_ms);
    uint64_t u;
    if (rc == 0 && (v = fl_yaml_get(n, "rise")) != NULL &&
        (rc = fl_yaml_uint(v, 1, MAX_RISE_FALL, &u, c->err, c->errlen)) == 0)
        p->rise = (unsigned)u;
    if (rc == 0 && (v = fl_yaml_get(n, "fall")) != NULL &&
        (rc = fl_yaml_uint(v, 1, MAX_RISE_FALL, &u, c->err, c->errlen)) == 0)
        p->fall = (unsigned)u;
    if (rc < 0)
        return rc;
    switch (kind_i) {
    case 0:
        p->type = FL_PROBE_HTTP;
        return parse_http(c, kind, timeout, p);
    case 1:
        p->type = FL_PROBE_TCP;
        return parse_tcp(c, kind, timeout, p);
    case 2:
        p->type = FL_PROBE_EXEC;
        return parse_exec(c, kind, timeout, p);
    default:
        p->type = FL_PROBE_SSH;
        return parse_ssh_probe(c, kind, timeout, p);
    }
}

/* A probe name -> its index, or an error with the nearest name. */
static int probe_ref(struct ctx *c, const struct fl_yaml_node *n, size_t *out)
{
    const char *name;
    int rc = fl_yaml_string(n, &name, c->err, c->errlen);
    if (rc < 0)
        return rc;
    long i = fl_experiment_probe(c->e, name);
    if (i >= 0) {
        *out = (size_t)i;
        return 0;
    }
    if (c->e->n_probes == 0)
        return fl_yaml_errorf(n, c->err, c->errlen,
                              "unknown probe '%.64s': the experiment declares no probes", name);
    struct fl_near nr;
    fl_near_init(&nr, name, strlen(name), false);
    for (size_t j = 0; j < c->e->n_probes; j++)
        fl_near_consider(&nr, c->e->probes[j].name);
    char buf[96];
    return fl_yaml_errorf(n, c->err, c->errlen, "unknown probe '%.64s'%s", name,
                          near_text(&nr, buf, sizeof(buf)));
}

/* A list of probe names -> indices (each once). */
static int probe_refs(struct ctx *c, const struct fl_yaml_node *n, size_t **out, size_t *count)
{
    size_t items;
    int rc = list_or_null(c, n, &items);
    if (rc < 0 || items == 0)
        return rc;
    size_t *idx = calloc(items, sizeof(*idx));
    if (idx == NULL)
        return nomem(c);
    for (size_t i = 0; i < items && rc == 0; i++) {
        rc = probe_ref(c, n->items[i], &idx[i]);
        for (size_t j = 0; rc == 0 && j < i; j++)
            if (idx[j] == idx[i])
                rc = fl_yaml_errorf(n->items[i], c->err, c->errlen, "probe '%s' is listed twice",
                                    c->e->probes[idx[i]].name);
    }
    if (rc < 0) {
        free(idx);
        return rc;
    }
    *out = idx;
    *count = items;
    return 0;
}

/* ---------------------------------------------------------------- faults */

static int host_ref(struct ctx *c, const struct fl_yaml_node *n, size_t *out)
{
    const char *name;
    int rc = fl_yaml_string(n, &name, c->err, c->errlen);
    if (rc < 0)
        return rc;
    long i = fl_experiment_host(c->e, name);
    if (i >= 0) {
        *out = (size_t)i;
        return 0;
    }
    struct fl_near nr;
    fl_near_init(&nr, name, strlen(name), false);
    for (size_t j = 0; j < c->e->inventory.n_hosts; j++)
        fl_near_consider(&nr, c->e->inventory.hosts[j].name);
    char buf[96];
    return fl_yaml_errorf(n, c->err, c->errlen, "unknown host '%.64s': not in the inventory (%s)%s",
                          name, c->e->inventory.path, near_text(&nr, buf, sizeof(buf)));
}

static bool host_has_tag(const struct fl_host *h, const char *tag)
{
    for (size_t i = 0; i < h->n_tags; i++)
        if (strcmp(h->tags[i], tag) == 0)
            return true;
    return false;
}

static void join_tags(char **tags, size_t n, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", tags[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

static int target_by_tags(struct ctx *c, const struct fl_yaml_node *n,
                          const struct fl_yaml_node *tags, struct fl_target *t)
{
    const struct fl_inventory *inv = &c->e->inventory;
    t->by_tags = true;
    int rc = parse_tags(c, tags, &t->tags, &t->n_tags);
    if (rc < 0)
        return rc;
    if (t->n_tags == 0)
        return fl_yaml_errorf(tags, c->err, c->errlen, "the list of tags is empty");
    for (size_t i = 0; i < t->n_tags; i++) {
        bool any = false;
        struct fl_near nr;
        fl_near_init(&nr, t->tags[i], strlen(t->tags[i]), false);
        for (size_t h = 0; h < inv->n_hosts && !any; h++) {
            any = host_has_tag(&inv->hosts[h], t->tags[i]);
            for (size_t k = 0; k < inv->hosts[h].n_tags; k++)
                fl_near_consider(&nr, inv->hosts[h].tags[k]);
        }
        char buf[96];
        if (!any)
            return fl_yaml_errorf(tags->items[i], c->err, c->errlen,
                                  "no host in the inventory (%s) has the tag '%s'%s", inv->path,
                                  t->tags[i], near_text(&nr, buf, sizeof(buf)));
    }
    t->hosts = calloc(inv->n_hosts, sizeof(*t->hosts));
    if (t->hosts == NULL)
        return nomem(c);
    for (size_t h = 0; h < inv->n_hosts; h++) {
        bool all = true;
        for (size_t i = 0; i < t->n_tags && all; i++)
            all = host_has_tag(&inv->hosts[h], t->tags[i]);
        if (all)
            t->hosts[t->n_hosts++] = h;
    }
    char list[256];
    join_tags(t->tags, t->n_tags, list, sizeof(list));
    if (t->n_hosts == 0)
        return fl_yaml_errorf(tags, c->err, c->errlen,
                              "no host has all of the tags %s: a target takes the hosts that "
                              "carry every tag listed",
                              list);
    const struct fl_yaml_node *count = fl_yaml_get(n, "count");
    const struct fl_yaml_node *percent = fl_yaml_get(n, "percent");
    t->count = t->n_hosts;
    if (count != NULL && percent != NULL)
        return fl_yaml_errorf(percent, c->err, c->errlen, "give either count or percent, not both");
    if (count != NULL) {
        uint64_t v;
        rc = fl_yaml_uint(count, 1, 100000, &v, c->err, c->errlen);
        if (rc < 0)
            return rc;
        if (v > t->n_hosts)
            return fl_yaml_errorf(
                count, c->err, c->errlen, "count %llu is more than the %zu host%s tagged %s",
                (unsigned long long)v, t->n_hosts, t->n_hosts == 1 ? "" : "s", list);
        t->count = (size_t)v;
    }
    if (percent != NULL) {
        double pc;
        if (percent->kind == FL_YAML_SCALAR && percent->len > 0 &&
            percent->text[percent->len - 1] == '%') {
            struct fl_size sz;
            rc = fl_yaml_size(percent, &sz, c->err, c->errlen);
            pc = sz.percent;
        } else {
            uint64_t v = 0;
            rc = fl_yaml_uint(percent, 1, 100, &v, c->err, c->errlen);
            pc = (double)v;
        }
        if (rc < 0)
            return rc;
        t->percent = pc;
        double want = (double)t->n_hosts * pc / 100.0; /* rounded up */
        size_t k = (size_t)want;
        if ((double)k < want - 1e-9)
            k++;
        t->count = k < 1 ? 1 : k > t->n_hosts ? t->n_hosts : k;
    }
    return 0;
}

static int parse_target(struct ctx *c, const struct fl_yaml_node *n, struct fl_target *t)
{
    static const char *const keys[] = {"hosts", "tags", "count", "percent", NULL};
    int rc = fl_yaml_check_keys(n, keys, c->err, c->errlen);
    if (rc < 0)
        return rc;
    const struct fl_yaml_node *hosts = fl_yaml_get(n, "hosts");
    const struct fl_yaml_node *tags = fl_yaml_get(n, "tags");
    if (hosts != NULL && tags != NULL)
        return fl_yaml_errorf(tags, c->err, c->errlen, "a target has hosts or tags, not both");
    if (hosts == NULL && tags == NULL)
        return fl_yaml_errorf(n, c->err, c->errlen,
                              "a target needs hosts: [web1] or tags: [web] (with count or "
                              "percent)");
    if (tags != NULL)
        return target_by_tags(c, n, tags, t);
    const struct fl_yaml_node *extra = fl_yaml_get(n, "count");
    if (extra == NULL)
        extra = fl_yaml_get(n, "percent");
    if (extra != NULL)
        return fl_yaml_errorf(extra, c->err, c->errlen,
                              "count and percent go with tags; hosts: names every host hit");
    size_t items = 0;
    if (hosts->kind == FL_YAML_SCALAR && !fl_yaml_is_null(hosts))
        return fl_yaml_errorf(hosts, c->err, c->errlen, "expected a list of hosts: [%.64s]",
                              hosts->text);
    rc = list_or_null(c, hosts, &items);
    if (rc == 0 && items == 0)
        rc = fl_yaml_errorf(hosts, c->err, c->errlen, "the list of hosts is empty");
    if (rc < 0)
        return rc;
    t->hosts = calloc(items, sizeof(*t->hosts));
    if (t->hosts == NULL)
        return nomem(c);
    for (size_t i = 0; i < items; i++) {
        rc = host_ref(c, hosts->items[i], &t->hosts[i]);
        for (size_t j = 0; rc == 0 && j < i; j++)
            if (t->hosts[j] == t->hosts[i])
                rc = fl_yaml_errorf(hosts->items[i], c->err, c->errlen, "host '%s' is listed twice",
                                    c->e->inventory.hosts[t->hosts[i]].name);
        if (rc < 0)
            return rc;
        t->n_hosts = i + 1;
    }
    t->count = t->n_hosts;
    return 0;
}

static bool in_list(const char *const *list, const char *s)
{
    for (; list && *list; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

static int set_param(struct ctx *c, Faultline__FaultSpec *spec, const struct fl_yaml_node *key,
                     const struct fl_yaml_node *value, const char *text)
{
    char msg[400];
    int rc = fl_faultspec_set(spec, key->text, text, msg, sizeof(msg));
    if (rc == -ENOMEM)
        return nomem(c);
    if (rc < 0)
        return fl_yaml_errorf(value, c->err, c->errlen, "%s", msg);
    return 0;
}

/* The kind's mapping: every parameter through fl_faultspec_set. */
static int fault_params(struct ctx *c, const char *kind, const struct fl_yaml_node *n,
                        Faultline__FaultSpec *spec)
{
    if (fl_yaml_is_null(n))
        return 0; /* cpu_stress: with the defaults */
    int rc = fl_yaml_expect(n, FL_YAML_MAPPING, c->err, c->errlen);
    if (rc < 0)
        return rc;
    const char *const *params = fl_faultspec_params(kind);
    for (size_t i = 0; i < n->n_pairs; i++) {
        const struct fl_yaml_node *k = n->pairs[i].key, *v = n->pairs[i].value;
        if (strcmp(k->text, "duration") == 0)
            return fl_yaml_errorf(k, c->err, c->errlen,
                                  "duration belongs to the fault, not to %s: move it one level "
                                  "up, next to start",
                                  kind);
        if (!in_list(params, k->text)) {
            char msg[400];
            rc = fl_faultspec_set(spec, k->text, "x", msg, sizeof(msg));
            if (rc == -ENOMEM)
                return nomem(c);
            return fl_yaml_errorf(k, c->err, c->errlen, "%s", msg);
        }
        const char *text;
        bool listy = strcmp(k->text, "peers") == 0 || strcmp(k->text, "ports") == 0;
        if (v->kind == FL_YAML_SEQUENCE && listy) {
            if (v->n_items == 0)
                return fl_yaml_errorf(v, c->err, c->errlen, "the list of %s is empty", k->text);
            if (v->n_items > FL_FAULTSPEC_MAX_LIST)
                return fl_yaml_errorf(v, c->err, c->errlen, "too many %s (%zu): at most %d",
                                      k->text, v->n_items, FL_FAULTSPEC_MAX_LIST);
            for (size_t j = 0; j < v->n_items; j++) {
                rc = fl_yaml_string(v->items[j], &text, c->err, c->errlen);
                if (rc == 0)
                    rc = set_param(c, spec, k, v->items[j], text);
                if (rc < 0)
                    return rc;
            }
            continue;
        }
        rc = fl_yaml_string(v, &text, c->err, c->errlen);
        if (rc == 0)
            rc = set_param(c, spec, k, v, text);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int parse_fault(struct ctx *c, size_t idx, const struct fl_yaml_node *n)
{
    const char *const *kinds = fl_faultspec_kinds();
    const char *keys[24];
    size_t nk = 0;
    keys[nk++] = "name";
    keys[nk++] = "target";
    keys[nk++] = "start";
    keys[nk++] = "duration";
    for (size_t i = 0; kinds[i] && nk < sizeof(keys) / sizeof(keys[0]) - 1; i++)
        keys[nk++] = kinds[i];
    keys[nk] = NULL;

    struct fl_fault *f = &c->e->faults[idx];
    int rc = fl_yaml_check_keys(n, keys, c->err, c->errlen);
    if (rc == 0)
        rc = unique_name(c, n, "fault", c->fault_names, idx, &f->name);
    if (rc < 0)
        return rc;
    const char *name = f->name;
    const struct fl_yaml_node *v = NULL;

    const struct fl_yaml_node *kind = NULL, *kind_key = NULL;
    for (size_t i = 0; i < n->n_pairs; i++) {
        const struct fl_yaml_node *k = n->pairs[i].key;
        if (!in_list(kinds, k->text))
            continue;
        if (kind_key != NULL)
            return fl_yaml_errorf(k, c->err, c->errlen,
                                  "fault '%s' has two kinds, %s and %s: make two faults", name,
                                  kind_key->text, k->text);
        kind_key = k;
        kind = n->pairs[i].value;
    }
    if (kind_key == NULL) {
        char list[200];
        size_t used = 0;
        list[0] = '\0';
        for (size_t i = 0; kinds[i] && used < sizeof(list); i++) {
            int w = snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", kinds[i]);
            if (w < 0)
                break;
            used += (size_t)w;
        }
        return fl_yaml_errorf(n, c->err, c->errlen, "fault '%s' needs a kind: one of %s", name,
                              list);
    }

    const struct fl_yaml_node *target = NULL, *dur;
    rc = required(c, n, "target", &target);
    if (rc == 0)
        rc = parse_target(c, target, &f->target);
    if (rc == 0 && (v = fl_yaml_get(n, "start")) != NULL)
        rc = fl_yaml_duration(v, &f->start_ms, c->err, c->errlen);
    if (rc == 0)
        rc = fl_yaml_get(n, "duration") == NULL
                 ? fl_yaml_errorf(n, c->err, c->errlen,
                                  "missing required key 'duration': every fault ends by itself")
                 : 0;
    dur = fl_yaml_get(n, "duration");
    if (rc == 0)
        rc = positive_duration(c, dur, 1, &f->duration_ms);
    if (rc < 0)
        return rc;
    c->fault_durations[idx] = dur;

    char msg[400];
    f->spec = fl_faultspec_new(kind_key->text, msg, sizeof(msg));
    if (f->spec == NULL)
        return nomem(c); /* the kind is known: only memory can fail */
    rc = fault_params(c, kind_key->text, kind, f->spec);
    if (rc < 0)
        return rc;
    if (fl_faultspec_set_name(f->spec, f->name) < 0)
        return nomem(c);
    f->spec->duration_ms = f->duration_ms;
    if (fl_faultspec_check(f->spec, msg, sizeof(msg)) < 0)
        return fl_yaml_errorf(kind_key, c->err, c->errlen, "%s", msg);
    return 0;
}

/* ------------------------------------------------- objectives and ending */

static int parse_objectives(struct ctx *c, const struct fl_yaml_node *n)
{
    static const char *const keys[] = {"rto", "rpo", NULL};
    struct fl_objectives *o = &c->e->objectives;
    int rc = fl_yaml_check_keys(n, keys, c->err, c->errlen);
    const struct fl_yaml_node *v = NULL;
    if (rc == 0 && (v = fl_yaml_get(n, "rto")) != NULL &&
        (rc = fl_yaml_duration(v, &o->rto_ms, c->err, c->errlen)) == 0)
        o->has_rto = true;
    if (rc == 0 && (v = fl_yaml_get(n, "rpo")) != NULL &&
        (rc = fl_yaml_duration(v, &o->rpo_ms, c->err, c->errlen)) == 0)
        o->has_rpo = true;
    return rc;
}

static int parse_abort(struct ctx *c, size_t idx, const struct fl_yaml_node *n)
{
    static const char *const keys[] = {"probe", "unhealthy_for", "max_duration", NULL};
    struct fl_abort *a = &c->e->aborts[idx];
    int rc = fl_yaml_check_keys(n, keys, c->err, c->errlen);
    if (rc < 0)
        return rc;
    c->abort_nodes[idx] = n;
    const struct fl_yaml_node *probe = fl_yaml_get(n, "probe");
    const struct fl_yaml_node *unh = fl_yaml_get(n, "unhealthy_for");
    const struct fl_yaml_node *max = fl_yaml_get(n, "max_duration");
    if (max != NULL) {
        if (probe != NULL || unh != NULL)
            return fl_yaml_errorf(probe ? probe : unh, c->err, c->errlen,
                                  "max_duration is a condition of its own: write { probe, "
                                  "unhealthy_for } as another entry");
        a->type = FL_ABORT_MAX_DURATION;
        c->abort_nodes[idx] = max;
        return positive_duration(c, max, 1, &a->ms);
    }
    a->type = FL_ABORT_UNHEALTHY;
    if (probe == NULL || unh == NULL)
        return fl_yaml_errorf(n, c->err, c->errlen,
                              "missing required key '%s': a stop condition is { probe, "
                              "unhealthy_for } or { max_duration }",
                              probe == NULL ? "probe" : "unhealthy_for");
    rc = probe_ref(c, probe, &a->probe);
    if (rc == 0)
        rc = fl_yaml_duration(unh, &a->ms, c->err, c->errlen);
    return rc;
}

static int parse_recovery(struct ctx *c, const struct fl_yaml_node *n)
{
    static const char *const keys[] = {"probes", "timeout", NULL};
    struct fl_recovery *r = &c->e->recovery;
    int rc = fl_yaml_check_keys(n, keys, c->err, c->errlen);
    const struct fl_yaml_node *v = NULL;
    if (rc == 0 && (v = fl_yaml_get(n, "probes")) != NULL)
        rc = probe_refs(c, v, &r->probes, &r->n_probes);
    if (rc == 0 && (v = fl_yaml_get(n, "timeout")) != NULL)
        rc = positive_duration(c, v, 1, &r->timeout_ms);
    return rc;
}

/* Every fault must end before any max_duration stops the run. */
static int check_windows(struct ctx *c)
{
    const struct fl_experiment *e = c->e;
    for (size_t i = 0; i < e->n_faults; i++) {
        const struct fl_fault *f = &e->faults[i];
        uint64_t end = f->start_ms + f->duration_ms;
        for (size_t j = 0; j < e->n_aborts; j++) {
            const struct fl_abort *a = &e->aborts[j];
            if (a->type != FL_ABORT_MAX_DURATION || end <= a->ms)
                continue;
            char se[32], sd[32], sm[32];
            fl_format_duration(f->start_ms, se, sizeof(se));
            fl_format_duration(f->duration_ms, sd, sizeof(sd));
            fl_format_duration(a->ms, sm, sizeof(sm));
            return fl_yaml_errorf(c->fault_durations[i], c->err, c->errlen,
                                  "fault '%s' runs past max_duration %s (line %u): it starts at "
                                  "%s and lasts %s",
                                  f->name, sm, c->abort_nodes[j]->line, se, sd);
        }
    }
    return 0;
}

/* ------------------------------------------------------------- the file */

static int parse_experiment(struct ctx *c, const struct fl_yaml_node *root,
                            const char *inventory_path)
{
    static const char *const keys[] = {
        "version",      "name",   "description", "inventory", "objectives", "probes",
        "steady_state", "faults", "abort_when",  "recovery",  NULL};
    struct fl_experiment *e = c->e;
    int rc = fl_yaml_check_keys(root, keys, c->err, c->errlen);
    const struct fl_yaml_node *v = NULL;
    uint64_t version;
    if (rc == 0)
        rc = required(c, root, "version", &v);
    if (rc == 0)
        rc = fl_yaml_uint(v, 0, UINT32_MAX, &version, c->err, c->errlen);
    if (rc == 0 && version != FL_EXPERIMENT_VERSION)
        rc = fl_yaml_errorf(v, c->err, c->errlen,
                            "unsupported version %llu: this faultline reads version %d",
                            (unsigned long long)version, FL_EXPERIMENT_VERSION);
    if (rc < 0)
        return rc;
    e->version = (unsigned)version;
    rc = required(c, root, "name", &v);
    if (rc == 0)
        rc = string_copy(c, v, &e->name);
    if (rc == 0 && (v = fl_yaml_get(root, "description")) != NULL)
        rc = string_copy(c, v, &e->description);
    if (rc < 0)
        return rc;

    /* inventory: --inventory wins; a string is a file next to the experiment */
    if (inventory_path != NULL) {
        rc = load_inventory_file(c, inventory_path);
    } else if ((v = fl_yaml_get(root, "inventory")) == NULL) {
        rc = fl_yaml_errorf(root, c->err, c->errlen,
                            "missing required key 'inventory' (or pass --inventory FILE)");
    } else if (v->kind == FL_YAML_SCALAR) {
        const char *t;
        char *file = NULL;
        rc = fl_yaml_string(v, &t, c->err, c->errlen);
        if (rc == 0)
            rc = resolve(c, c->path, t, &file);
        if (rc == 0)
            rc = load_inventory_file(c, file);
        free(file);
    } else {
        rc = parse_inventory(c, v, c->path);
    }
    if (rc == 0 && (v = fl_yaml_get(root, "objectives")) != NULL)
        rc = parse_objectives(c, v);
    if (rc < 0)
        return rc;

    size_t n;
    v = fl_yaml_get(root, "probes");
    rc = list_or_null(c, v, &n);
    if (rc == 0 && n > 0) {
        e->probes = calloc(n, sizeof(*e->probes));
        c->probe_names = calloc(n, sizeof(*c->probe_names));
        if (e->probes == NULL || c->probe_names == NULL)
            return nomem(c);
        for (size_t i = 0; i < n && rc == 0; i++) {
            e->n_probes = i + 1;
            rc = parse_probe(c, i, v->items[i]);
        }
    }
    if (rc == 0)
        rc = probe_refs(c, fl_yaml_get(root, "steady_state"), &e->steady_state, &e->n_steady_state);
    if (rc < 0)
        return rc;

    v = fl_yaml_get(root, "abort_when");
    rc = list_or_null(c, v, &n);
    if (rc == 0 && n > 0) {
        e->aborts = calloc(n, sizeof(*e->aborts));
        c->abort_nodes = calloc(n, sizeof(*c->abort_nodes));
        if (e->aborts == NULL || c->abort_nodes == NULL)
            return nomem(c);
        e->n_aborts = n;
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = parse_abort(c, i, v->items[i]);
    }
    if (rc < 0)
        return rc;

    rc = required(c, root, "faults", &v);
    if (rc == 0)
        rc = list_or_null(c, v, &n);
    if (rc == 0 && n == 0)
        rc = fl_yaml_errorf(v, c->err, c->errlen, "the experiment has no faults");
    if (rc < 0)
        return rc;
    e->faults = calloc(n, sizeof(*e->faults));
    c->fault_names = calloc(n, sizeof(*c->fault_names));
    c->fault_durations = calloc(n, sizeof(*c->fault_durations));
    if (e->faults == NULL || c->fault_names == NULL || c->fault_durations == NULL)
        return nomem(c);
    for (size_t i = 0; i < n && rc == 0; i++) {
        e->n_faults = i + 1;
        rc = parse_fault(c, i, v->items[i]);
    }
    if (rc < 0)
        return rc;

    e->recovery.timeout_ms = FL_EXPERIMENT_DEFAULT_RECOVERY_MS;
    if ((v = fl_yaml_get(root, "recovery")) != NULL)
        rc = parse_recovery(c, v);
    if (rc == 0 && e->recovery.probes == NULL && e->n_steady_state > 0) {
        e->recovery.probes = calloc(e->n_steady_state, sizeof(size_t));
        if (e->recovery.probes == NULL)
            return nomem(c);
        memcpy(e->recovery.probes, e->steady_state, e->n_steady_state * sizeof(size_t));
        e->recovery.n_probes = e->n_steady_state;
    }
    if (rc == 0)
        rc = check_windows(c);
    return rc;
}

int fl_experiment_load(const char *path, const char *inventory_path, struct fl_experiment **out,
                       char *err, size_t errlen)
{
    struct ctx c = {.err = err, .errlen = errlen, .path = path};
    struct fl_yaml_doc *doc = NULL;
    int rc = fl_yaml_load_file(path, &doc, err, errlen);
    if (rc < 0)
        return rc;
    c.e = calloc(1, sizeof(*c.e));
    if (c.e == NULL) {
        rc = nomem(&c);
    } else if ((rc = copy(&c, path, &c.e->path)) < 0) {
        /* nomem said it */
    } else if (doc->root == NULL) {
        snprintf(err, errlen,
                 "%s:1:1: the file is empty: an experiment needs version, name, inventory and "
                 "faults",
                 path);
        rc = -EINVAL;
    } else {
        rc = parse_experiment(&c, doc->root, inventory_path);
    }
    free(c.probe_names);
    free(c.fault_names);
    free(c.fault_durations);
    free(c.abort_nodes);
    fl_yaml_free(&doc);
    if (rc < 0) {
        fl_experiment_free(&c.e);
        return rc == -ERANGE ? -EINVAL : rc; /* a value out of range is an invalid file */
    }
    *out = c.e;
    return 0;
}

int fl_inventory_load(const char *path, struct fl_experiment **out, char *err, size_t errlen)
{
    struct ctx c = {.err = err, .errlen = errlen, .path = path};
    c.e = calloc(1, sizeof(*c.e));
    int rc = c.e == NULL ? nomem(&c) : copy(&c, path, &c.e->path);
    if (rc == 0)
        rc = load_inventory_file(&c, path);
    if (rc < 0) {
        fl_experiment_free(&c.e);
        return rc == -ERANGE ? -EINVAL : rc;
    }
    *out = c.e;
    return 0;
}

static void host_free(struct fl_host *h)
{
    free(h->name);
    free(h->address);
    for (size_t i = 0; i < h->n_tags; i++)
        free(h->tags[i]);
    free(h->tags);
    ssh_free(&h->ssh);
}

void fl_experiment_free(struct fl_experiment **ep)
{
    if (ep == NULL || *ep == NULL)
        return;
    struct fl_experiment *e = *ep;
    free(e->path);
    free(e->name);
    free(e->description);
    struct fl_inventory *inv = &e->inventory;
    free(inv->path);
    free(inv->key_file);
    ssh_free(&inv->ssh);
    for (size_t i = 0; i < inv->n_hosts; i++)
        host_free(&inv->hosts[i]);
    free(inv->hosts);
    for (size_t i = 0; i < e->n_probes; i++)
        fl_probe_spec_free(&e->probes[i]);
    free(e->probes);
    free(e->steady_state);
    for (size_t i = 0; i < e->n_faults; i++) {
        struct fl_fault *f = &e->faults[i];
        free(f->name);
        free(f->target.hosts);
        for (size_t j = 0; j < f->target.n_tags; j++)
            free(f->target.tags[j]);
        free(f->target.tags);
        fl_faultspec_free(f->spec);
    }
    free(e->faults);
    free(e->aborts);
    free(e->recovery.probes);
    free(e);
    *ep = NULL;
}
