/* The inventory loader: the hosts an experiment or a command runs against,
 * from an inventory file or an experiment's inline inventory: mapping (the
 * same format), into struct fl_inventory. Keys are checked as everywhere
 * (controller/experiment/check.h); relative paths are resolved against the
 * file that names them; a host's ssh: settings override the inventory's
 * defaults field by field. */
#include "controller/experiment/inventory.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/key.h"
#include "common/suggest.h"
#include "common/text.h"
#include "common/yamldoc.h"
#include "controller/experiment/check.h"

#define HOST_BUF 256

static void ssh_free(struct fl_ssh_opts *s)
{
    free(s->user);
    free(s->identity_file);
    free(s->known_hosts);
    free(s->deploy_dir);
    memset(s, 0, sizeof(*s));
}

static int parse_ssh(struct fl_check *c, const struct fl_yaml_node *n, const char *base,
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
        rc = fl_check_string(c, v, &s->user);
    }
    if (rc == 0 && (v = fl_yaml_get(n, "port")) != NULL)
        rc = fl_check_port(c, v, &s->port);
    if (rc == 0 && (v = fl_yaml_get(n, "identity_file")) != NULL &&
        (rc = fl_yaml_string(v, &t, c->err, c->errlen)) == 0) {
        free(s->identity_file);
        s->identity_file = NULL;
        rc = fl_check_resolve(c, base, t, &s->identity_file);
    }
    if (rc == 0 && (v = fl_yaml_get(n, "known_hosts")) != NULL &&
        (rc = fl_yaml_string(v, &t, c->err, c->errlen)) == 0) {
        free(s->known_hosts);
        s->known_hosts = NULL;
        rc = fl_check_resolve(c, base, t, &s->known_hosts);
    }
    if (rc == 0 && (v = fl_yaml_get(n, "deploy_dir")) != NULL &&
        (rc = fl_yaml_string(v, &t, c->err, c->errlen)) == 0) {
        char why[128];
        if (t[0] != '/')
            return fl_yaml_errorf(v, c->err, c->errlen,
                                  "deploy_dir must be an absolute path on the host, such as "
                                  "/opt/faultline");
        if (fl_text_check(t, "deploy_dir", why, sizeof(why)) < 0)
            return fl_yaml_errorf(v, c->err, c->errlen, "%s", why);
        free(s->deploy_dir);
        s->deploy_dir = NULL;
        rc = fl_check_copy(c, t, &s->deploy_dir);
    }
    return rc;
}

static int ssh_copy(struct fl_check *c, const struct fl_ssh_opts *from, struct fl_ssh_opts *to)
{
    to->port = from->port;
    if (from->user && fl_check_copy(c, from->user, &to->user) < 0)
        return -ENOMEM;
    if (from->identity_file && fl_check_copy(c, from->identity_file, &to->identity_file) < 0)
        return -ENOMEM;
    if (from->known_hosts && fl_check_copy(c, from->known_hosts, &to->known_hosts) < 0)
        return -ENOMEM;
    if (from->deploy_dir && fl_check_copy(c, from->deploy_dir, &to->deploy_dir) < 0)
        return -ENOMEM;
    return 0;
}

int fl_inventory_parse_tags(struct fl_check *c, const struct fl_yaml_node *n, char ***out,
                            size_t *count)
{
    int rc = fl_yaml_expect(n, FL_YAML_SEQUENCE, c->err, c->errlen);
    if (rc < 0)
        return rc;
    if (n->n_items > FL_INVENTORY_MAX_TAGS)
        return fl_yaml_errorf(n, c->err, c->errlen, "too many tags (%zu): at most %d", n->n_items,
                              FL_INVENTORY_MAX_TAGS);
    char **tags = calloc(n->n_items + 1, sizeof(*tags));
    if (tags == NULL)
        return fl_check_nomem(c);
    *out = tags; /* owned by the caller from here, even when filling fails */
    *count = 0;
    for (size_t i = 0; i < n->n_items; i++) {
        const char *t;
        rc = fl_check_name(c, n->items[i], "tag", &t);
        for (size_t j = 0; rc == 0 && j < i; j++)
            if (strcmp(tags[j], t) == 0)
                rc = fl_yaml_errorf(n->items[i], c->err, c->errlen, "tag '%s' is listed twice", t);
        if (rc == 0)
            rc = fl_check_copy(c, t, &tags[i]);
        if (rc < 0)
            return rc;
        *count = i + 1;
    }
    return 0;
}

static int parse_host(struct fl_check *c, const struct fl_yaml_pair *p, const char *base,
                      const struct fl_inventory *inv, struct fl_host *h)
{
    static const char *const keys[] = {"address", "port", "tags", "ssh", NULL};
    const char *name;
    int rc = fl_check_name(c, p->key, "host name", &name);
    if (rc == 0)
        rc = fl_check_copy(c, name, &h->name);
    if (rc == 0 && fl_yaml_is_null(p->value))
        return fl_yaml_errorf(p->value, c->err, c->errlen,
                              "host '%s' needs an address: { address: 10.77.0.2 }", name);
    if (rc == 0)
        rc = fl_yaml_check_keys(p->value, keys, c->err, c->errlen);
    const struct fl_yaml_node *n = p->value, *v = NULL;
    const char *addr;
    if (rc == 0)
        rc = fl_check_required(c, n, "address", &v);
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
        rc = fl_check_copy(c, host, &h->address);
    const struct fl_yaml_node *pn = fl_yaml_get(n, "port");
    if (rc == 0 && pn != NULL && port != 0)
        rc = fl_yaml_errorf(pn, c->err, c->errlen,
                            "the port is given twice: in the address and here; keep one");
    if (rc == 0 && pn != NULL)
        rc = fl_check_port(c, pn, &port);
    h->port = port ? port : FL_DEFAULT_PORT;
    if (rc == 0 && (v = fl_yaml_get(n, "tags")) != NULL && !fl_yaml_is_null(v))
        rc = fl_inventory_parse_tags(c, v, &h->tags, &h->n_tags);
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

/* A key_file that names a directory, a FIFO or a device is wrong now, not at
 * the run's first connection (where a FIFO would block): refused at the
 * value, saying what it is. One that is missing or unreadable yet is left to
 * whoever loads the key: validate may well run before the key is in place. */
static int key_file_check(struct fl_check *c, const struct fl_yaml_node *v, const char *path)
{
    char why[600];
    int rc = fl_key_check_path(path, why, sizeof(why));
    if (rc == -EISDIR || rc == -EINVAL)
        return fl_yaml_errorf(v, c->err, c->errlen, "%s", why);
    return 0;
}

int fl_inventory_parse(struct fl_check *c, const struct fl_yaml_node *n, const char *base,
                       struct fl_inventory *inv)
{
    static const char *const keys[] = {"key_file", "ssh", "hosts", NULL};
    int rc = fl_check_copy(c, base, &inv->path);
    if (rc == 0)
        rc = fl_yaml_check_keys(n, keys, c->err, c->errlen);
    const struct fl_yaml_node *v = NULL;
    const char *t;
    if (rc == 0 && (v = fl_yaml_get(n, "key_file")) != NULL &&
        (rc = fl_yaml_string(v, &t, c->err, c->errlen)) == 0 &&
        (rc = fl_check_resolve(c, base, t, &inv->key_file)) == 0)
        rc = key_file_check(c, v, inv->key_file);
    if (rc == 0 && (v = fl_yaml_get(n, "ssh")) != NULL) {
        inv->has_ssh = true;
        rc = parse_ssh(c, v, base, &inv->ssh);
    }
    const struct fl_yaml_node *hosts = NULL;
    if (rc == 0)
        rc = fl_check_required(c, n, "hosts", &hosts);
    if (rc == 0)
        rc = fl_yaml_expect(hosts, FL_YAML_MAPPING, c->err, c->errlen);
    if (rc == 0 && hosts->n_pairs == 0)
        rc = fl_yaml_errorf(hosts, c->err, c->errlen, "the inventory has no hosts");
    if (rc < 0)
        return rc;
    inv->hosts = calloc(hosts->n_pairs, sizeof(*inv->hosts));
    if (inv->hosts == NULL)
        return fl_check_nomem(c);
    inv->n_hosts = hosts->n_pairs;
    for (size_t i = 0; i < hosts->n_pairs && rc == 0; i++)
        rc = parse_host(c, &hosts->pairs[i], base, inv, &inv->hosts[i]);
    return rc;
}

int fl_inventory_parse_file(struct fl_check *c, const char *file, struct fl_inventory *inv)
{
    struct fl_yaml_doc *doc = NULL;
    int rc = fl_yaml_load_file(file, &doc, c->err, c->errlen);
    if (rc < 0)
        return rc;
    if (doc->root == NULL) {
        snprintf(c->err, c->errlen, "%s:1:1: the inventory is empty: it needs hosts", file);
        rc = -EINVAL;
    } else {
        rc = fl_inventory_parse(c, doc->root, file, inv);
    }
    fl_yaml_free(&doc);
    return rc;
}

long fl_inventory_host(const struct fl_inventory *inv, const char *name)
{
    for (size_t i = 0; i < inv->n_hosts; i++)
        if (strcmp(inv->hosts[i].name, name) == 0)
            return (long)i;
    return -1;
}

int fl_inventory_host_ref(struct fl_check *c, const struct fl_inventory *inv,
                          const struct fl_yaml_node *n, size_t *out)
{
    const char *name;
    int rc = fl_yaml_string(n, &name, c->err, c->errlen);
    if (rc < 0)
        return rc;
    long i = fl_inventory_host(inv, name);
    if (i >= 0) {
        *out = (size_t)i;
        return 0;
    }
    struct fl_near nr;
    fl_near_init(&nr, name, strlen(name), false);
    for (size_t j = 0; j < inv->n_hosts; j++)
        fl_near_consider(&nr, inv->hosts[j].name);
    char buf[96];
    return fl_yaml_errorf(n, c->err, c->errlen, "unknown host '%.64s': not in the inventory (%s)%s",
                          name, inv->path, fl_check_near_text(&nr, buf, sizeof(buf)));
}

int fl_inventory_load(const char *path, struct fl_inventory **out, char *err, size_t errlen)
{
    struct fl_check c = {.err = err, .errlen = errlen, .path = path};
    struct fl_inventory *inv = calloc(1, sizeof(*inv));
    int rc = inv == NULL ? fl_check_nomem(&c) : fl_inventory_parse_file(&c, path, inv);
    if (rc < 0) {
        fl_inventory_free(&inv);
        return rc == -ERANGE ? -EINVAL : rc; /* a value out of range is an invalid file */
    }
    *out = inv;
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

void fl_inventory_clear(struct fl_inventory *inv)
{
    free(inv->path);
    free(inv->key_file);
    ssh_free(&inv->ssh);
    for (size_t i = 0; i < inv->n_hosts; i++)
        host_free(&inv->hosts[i]);
    free(inv->hosts);
    memset(inv, 0, sizeof(*inv));
}

void fl_inventory_free(struct fl_inventory **inv)
{
    if (inv == NULL || *inv == NULL)
        return;
    fl_inventory_clear(*inv);
    free(*inv);
    *inv = NULL;
}
