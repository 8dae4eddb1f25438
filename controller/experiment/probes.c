/* The experiment's probes: section (http, tcp, exec and ssh probes, with
 * their interval, timeout, rise and fall) into struct fl_probe_spec, and the
 * references to probes by name from steady_state, abort_when and recovery.
 * An ssh probe takes its host's ssh settings from the inventory. */
#include "controller/experiment/probes.h"
#include "controller/probes/pgwrite.h"
#include "controller/probes/template.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/suggest.h"
#include "common/yamldoc.h"
#include "controller/experiment/experiment.h"
#include "controller/experiment/check.h"

#define MIN_INTERVAL_MS 10
#define MAX_RISE_FALL 100
#define HOST_BUF 256

/* A timeout inside the kind's mapping, unless the probe gave one already. */
static int kind_timeout(struct fl_check *c, const struct fl_yaml_node *kind,
                        const struct fl_yaml_node *probe_timeout, struct fl_probe_spec *p)
{
    const struct fl_yaml_node *v = fl_yaml_get(kind, "timeout");
    if (v == NULL)
        return 0;
    if (probe_timeout != NULL)
        return fl_yaml_errorf(v, c->err, c->errlen,
                              "timeout is already set for this probe (line %u); keep one",
                              probe_timeout->line);
    return fl_check_duration(c, v, 1, &p->timeout_ms);
}

static bool token_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static int parse_http(struct fl_check *c, const struct fl_yaml_node *n,
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
            rc = fl_check_copy(c, t, &h->method);
    } else if (rc == 0) {
        rc = fl_check_copy(c, "GET", &h->method);
    }
    if (rc == 0)
        rc = fl_check_required(c, n, "url", &v);
    if (rc == 0 && (rc = fl_yaml_string(v, &t, c->err, c->errlen)) == 0) {
        if (strncmp(t, "http://", 7) != 0 && strncmp(t, "https://", 8) != 0)
            rc = fl_yaml_errorf(v, c->err, c->errlen,
                                "expected a URL starting with http:// or https://, such as "
                                "http://10.77.0.1:8080/health");
        else if (strchr(t, ' ') != NULL)
            rc = fl_yaml_errorf(v, c->err, c->errlen, "a URL has no spaces: write them as %%20");
        else
            rc = fl_check_copy(c, t, &h->url);
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
                return fl_check_nomem(c);
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
    if (rc == 0 && (v = fl_yaml_get(n, "body_contains")) != NULL) {
        rc = fl_check_string(c, v, &h->body_contains);
        if (rc == 0 && strlen(h->body_contains) > FL_PROBE_BODY_CONTAINS_MAX)
            rc = fl_yaml_errorf(v, c->err, c->errlen, "body_contains is longer than %u bytes",
                                FL_PROBE_BODY_CONTAINS_MAX);
    }
    if (rc == 0)
        rc = kind_timeout(c, n, probe_timeout, p);
    return rc;
}

static int parse_tcp(struct fl_check *c, const struct fl_yaml_node *n,
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
            rc = fl_check_copy(c, buf, &t->host);
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
            rc = fl_check_copy(c, buf, &t->host);
        if (rc == 0)
            rc = fl_check_port(c, port, &t->port);
    }
    if (rc == 0)
        rc = kind_timeout(c, n, probe_timeout, p);
    return rc;
}

static int parse_exec(struct fl_check *c, const struct fl_yaml_node *n,
                      const struct fl_yaml_node *probe_timeout, struct fl_probe_spec *p)
{
    static const char *const keys[] = {"argv", "expect_exit", "expect_output", "timeout", NULL};
    struct fl_probe_exec *x = &p->u.exec;
    int rc = fl_yaml_check_keys(n, keys, c->err, c->errlen);
    const struct fl_yaml_node *v = NULL;
    if (rc == 0)
        rc = fl_check_required(c, n, "argv", &v);
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
        rc = fl_check_copy(c, args[i], &x->argv[i]);
        if (rc == 0)
            x->argc = i + 1;
    }
    uint64_t code;
    if (rc == 0 && (v = fl_yaml_get(n, "expect_exit")) != NULL &&
        (rc = fl_yaml_uint(v, 0, 255, &code, c->err, c->errlen)) == 0)
        x->expect_exit = (int)code;
    if (rc == 0 && (v = fl_yaml_get(n, "expect_output")) != NULL)
        rc = fl_check_string(c, v, &x->expect_output);
    if (rc == 0)
        rc = kind_timeout(c, n, probe_timeout, p);
    return rc;
}

/* ssh: { host: web1, command: "systemctl is-active nginx", expect_exit: 0 }:
 * the host's ssh settings come from the inventory. */
static int parse_ssh_probe(struct fl_check *c, const struct fl_experiment *e,
                           const struct fl_yaml_node *n, const struct fl_yaml_node *probe_timeout,
                           struct fl_probe_spec *p)
{
    static const char *const keys[] = {"host", "command", "expect_exit", "timeout", NULL};
    struct fl_probe_ssh *x = &p->u.ssh;
    int rc = fl_yaml_check_keys(n, keys, c->err, c->errlen);
    const struct fl_yaml_node *v = NULL;
    size_t hi = 0;
    if (rc == 0)
        rc = fl_check_required(c, n, "host", &v);
    if (rc == 0)
        rc = fl_inventory_host_ref(c, &e->inventory, v, &hi);
    if (rc < 0)
        return rc;
    const struct fl_host *h = &e->inventory.hosts[hi];
    const struct fl_ssh_opts *o = &h->ssh;
    if ((rc = fl_check_copy(c, h->name, &x->host)) < 0 ||
        (rc = fl_check_copy(c, h->address, &x->address)) < 0 ||
        (o->user && (rc = fl_check_copy(c, o->user, &x->user)) < 0) ||
        (o->identity_file && (rc = fl_check_copy(c, o->identity_file, &x->identity_file)) < 0) ||
        (o->known_hosts && (rc = fl_check_copy(c, o->known_hosts, &x->known_hosts)) < 0))
        return rc;
    x->port = o->port;
    rc = fl_check_required(c, n, "command", &v);
    if (rc == 0)
        rc = fl_check_string(c, v, &x->command);
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

/* postgres: { dsn: "host=10.0.0.1,10.0.0.2 dbname=orders target_session_attrs=read-write",
 *             table: faultline_writes } -- a write probe (issue 15) */
static int parse_postgres(struct fl_check *c, const struct fl_yaml_node *n,
                          const struct fl_yaml_node *probe_timeout, struct fl_probe_spec *p)
{
    static const char *const keys[] = {"dsn", "table", "timeout", NULL};
    struct fl_probe_data *d = &p->u.data;
    int rc = fl_yaml_check_keys(n, keys, c->err, c->errlen);
    const struct fl_yaml_node *v = NULL;
    if (rc == 0)
        rc = fl_check_required(c, n, "dsn", &v);
    if (rc == 0)
        rc = fl_check_string(c, v, &d->dsn);
    /* what the write client would refuse at the run's start is refused here,
     * at the DSN's line (a template's {host}/{address} is filled in later) */
    if (rc == 0 && strstr(d->dsn, "{host}") == NULL && strstr(d->dsn, "{address}") == NULL) {
        char msg[600];
        int k = fl_pgwrite_check_dsn(d->dsn, msg, sizeof(msg));
        if (k == -ENOMEM)
            rc = fl_check_nomem(c);
        else if (k < 0)
            rc = fl_yaml_errorf(v, c->err, c->errlen, "%s", msg);
    }
    if (rc == 0 && (v = fl_yaml_get(n, "table")) != NULL) {
        rc = fl_check_string(c, v, &d->table);
        bool ok = rc == 0 && d->table[0] != '\0' && strlen(d->table) <= 63 &&
                  strchr("0123456789", d->table[0]) == NULL;
        for (const char *q = d->table; rc == 0 && *q; q++)
            ok = ok && (*q == '_' || (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
                        (*q >= '0' && *q <= '9'));
        if (rc == 0 && !ok)
            rc = fl_yaml_errorf(v, c->err, c->errlen,
                                "table must be a plain SQL name: letters, digits and _, not "
                                "starting with a digit, at most 63 bytes");
    }
    if (rc == 0)
        rc = kind_timeout(c, n, probe_timeout, p);
    return rc;
}

/* redis: { address: "10.0.0.1:6379" } or { sentinels: [..], master_name: mymaster },
 * key: faultline_writes, wait_replicas: 1 -- a write probe (issue 15) */
static int parse_redis(struct fl_check *c, const struct fl_yaml_node *n,
                       const struct fl_yaml_node *probe_timeout, struct fl_probe_spec *p)
{
    static const char *const keys[] = {"address",       "sentinels", "master_name", "key",
                                       "wait_replicas", "timeout",   NULL};
    struct fl_probe_data *d = &p->u.data;
    int rc = fl_yaml_check_keys(n, keys, c->err, c->errlen);
    if (rc < 0)
        return rc;
    const struct fl_yaml_node *addr = fl_yaml_get(n, "address");
    const struct fl_yaml_node *sent = fl_yaml_get(n, "sentinels");
    const struct fl_yaml_node *master = fl_yaml_get(n, "master_name");
    const struct fl_yaml_node *v;
    if ((addr == NULL) == (sent == NULL))
        return fl_yaml_errorf(addr ? addr : n, c->err, c->errlen,
                              "a redis probe needs address: HOST:PORT, or sentinels: [HOST:PORT, "
                              "...] with master_name (one of the two)");
    if (addr != NULL) {
        if (master != NULL)
            return fl_yaml_errorf(master, c->err, c->errlen,
                                  "master_name goes with sentinels, not with address");
        rc = fl_check_string(c, addr, &d->address);
    } else {
        if (master == NULL)
            return fl_yaml_errorf(sent, c->err, c->errlen,
                                  "sentinels need master_name: the name the sentinels monitor");
        const char *list[FL_PROBE_MAX_SENTINELS];
        size_t count = 0;
        rc = fl_yaml_strings(sent, list, FL_PROBE_MAX_SENTINELS, &count, c->err, c->errlen);
        if (rc == 0 && count == 0)
            rc = fl_yaml_errorf(sent, c->err, c->errlen, "the list of sentinels is empty");
        for (size_t i = 0; i < count && rc == 0; i++) {
            rc = fl_check_copy(c, list[i], &d->sentinels[i]);
            if (rc == 0)
                d->n_sentinels = i + 1;
        }
        if (rc == 0)
            rc = fl_check_string(c, master, &d->master_name);
    }
    if (rc == 0 && (v = fl_yaml_get(n, "key")) != NULL)
        rc = fl_check_string(c, v, &d->key);
    uint64_t u;
    if (rc == 0 && (v = fl_yaml_get(n, "wait_replicas")) != NULL &&
        (rc = fl_yaml_uint(v, 0, 64, &u, c->err, c->errlen)) == 0)
        d->wait_replicas = (unsigned)u;
    if (rc == 0)
        rc = kind_timeout(c, n, probe_timeout, p);
    return rc;
}

/* The idx-th probe; names holds the name nodes of the earlier ones. */
static int parse_probe(struct fl_check *c, struct fl_experiment *e, size_t idx,
                       const struct fl_yaml_node *n, const struct fl_yaml_node **names)
{
    static const char *const keys[] = {"name",  "http",     "tcp",     "exec", "ssh",  "postgres",
                                       "redis", "interval", "timeout", "rise", "fall", NULL};
    static const char *const kinds[] = {"http", "tcp", "exec", "ssh", "postgres", "redis"};
    struct fl_probe_spec *p = &e->probes[idx];
    int rc = fl_yaml_check_keys(n, keys, c->err, c->errlen);
    if (rc == 0)
        rc = fl_check_unique_name(c, n, "probe", names, idx, &p->name);
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
                              "probe '%s' needs a kind: http, tcp, exec, ssh, postgres or redis",
                              name);

    p->interval_ms = 1000;
    p->timeout_ms = 1000;
    p->rise = 2;
    p->fall = 3;
    const struct fl_yaml_node *timeout = fl_yaml_get(n, "timeout");
    if ((v = fl_yaml_get(n, "interval")) != NULL)
        rc = fl_check_duration(c, v, MIN_INTERVAL_MS, &p->interval_ms);
    if (rc == 0 && timeout != NULL)
        rc = fl_check_duration(c, timeout, 1, &p->timeout_ms);
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
        rc = parse_http(c, kind, timeout, p);
        break;
    case 1:
        p->type = FL_PROBE_TCP;
        rc = parse_tcp(c, kind, timeout, p);
        break;
    case 2:
        p->type = FL_PROBE_EXEC;
        rc = parse_exec(c, kind, timeout, p);
        break;
    case 3:
        p->type = FL_PROBE_SSH;
        rc = parse_ssh_probe(c, e, kind, timeout, p);
        break;
    case 4:
        p->type = FL_PROBE_POSTGRES;
        rc = parse_postgres(c, kind, timeout, p);
        break;
    default:
        p->type = FL_PROBE_REDIS;
        rc = parse_redis(c, kind, timeout, p);
        break;
    }
    if (rc == 0)
        p->is_template = fl_probe_spec_uses_vars(p);
    return rc;
}

int fl_probes_ref(struct fl_check *c, const struct fl_experiment *e, const struct fl_yaml_node *n,
                  size_t *out)
{
    int rc = fl_probes_ref_any(c, e, n, out);
    if (rc == 0 && e->probes[*out].is_template)
        rc = fl_yaml_errorf(n, c->err, c->errlen,
                            "probe '%s' is a template (it uses {host} or {address}): it runs "
                            "once per candidate host for a fault's where:, never on its own",
                            e->probes[*out].name);
    return rc;
}

int fl_probes_ref_any(struct fl_check *c, const struct fl_experiment *e,
                      const struct fl_yaml_node *n, size_t *out)
{
    const char *name;
    int rc = fl_yaml_string(n, &name, c->err, c->errlen);
    if (rc < 0)
        return rc;
    long i = fl_experiment_probe(e, name);
    if (i >= 0) {
        *out = (size_t)i;
        return 0;
    }
    if (e->n_probes == 0)
        return fl_yaml_errorf(n, c->err, c->errlen,
                              "unknown probe '%.64s': the experiment declares no probes", name);
    struct fl_near nr;
    fl_near_init(&nr, name, strlen(name), false);
    for (size_t j = 0; j < e->n_probes; j++)
        fl_near_consider(&nr, e->probes[j].name);
    char buf[96];
    return fl_yaml_errorf(n, c->err, c->errlen, "unknown probe '%.64s'%s", name,
                          fl_check_near_text(&nr, buf, sizeof(buf)));
}

int fl_probes_refs(struct fl_check *c, const struct fl_experiment *e, const struct fl_yaml_node *n,
                   size_t **out, size_t *count)
{
    size_t items;
    int rc = fl_check_list(c, n, &items);
    if (rc < 0 || items == 0)
        return rc;
    size_t *idx = calloc(items, sizeof(*idx));
    if (idx == NULL)
        return fl_check_nomem(c);
    for (size_t i = 0; i < items && rc == 0; i++) {
        rc = fl_probes_ref(c, e, n->items[i], &idx[i]);
        for (size_t j = 0; rc == 0 && j < i; j++)
            if (idx[j] == idx[i])
                rc = fl_yaml_errorf(n->items[i], c->err, c->errlen, "probe '%s' is listed twice",
                                    e->probes[idx[i]].name);
    }
    if (rc < 0) {
        free(idx);
        return rc;
    }
    *out = idx;
    *count = items;
    return 0;
}

int fl_probes_parse(struct fl_check *c, struct fl_experiment *e, const struct fl_yaml_node *list)
{
    size_t n;
    int rc = fl_check_list(c, list, &n);
    if (rc < 0 || n == 0)
        return rc;
    const struct fl_yaml_node **names = calloc(n, sizeof(*names));
    e->probes = calloc(n, sizeof(*e->probes));
    if (e->probes == NULL || names == NULL) {
        free(names);
        return fl_check_nomem(c);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        e->n_probes = i + 1;
        rc = parse_probe(c, e, i, list->items[i], names);
    }
    free(names);
    return rc;
}
