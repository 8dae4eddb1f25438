/* The experiment's faults: section: for each fault its name, its target
 * (hosts: by name, or tags: with count or percent, resolved against the
 * inventory into host indices), its start and duration, and its kind's
 * parameters, which go through controller/experiment/faultspec exactly as on
 * `faultline inject`: scalars are passed as their text, list items of
 * peers/ports one by one (faultspec appends them, same as joining with
 * commas, but an error points at the item). faultspec's sentence is kept and
 * put at the parameter's position. */
#include "controller/experiment/faults.h"
#include "controller/experiment/probes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/suggest.h"
#include "common/units.h"
#include "common/yamldoc.h"
#include "controller/experiment/experiment.h"
#include "controller/experiment/faultspec.h"
#include "controller/experiment/check.h"

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

static int target_by_tags(struct fl_check *c, const struct fl_experiment *e,
                          const struct fl_yaml_node *n, const struct fl_yaml_node *tags,
                          struct fl_target *t)
{
    const struct fl_inventory *inv = &e->inventory;
    t->by_tags = true;
    int rc = fl_inventory_parse_tags(c, tags, &t->tags, &t->n_tags);
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
                                  t->tags[i], fl_check_near_text(&nr, buf, sizeof(buf)));
    }
    t->hosts = calloc(inv->n_hosts, sizeof(*t->hosts));
    if (t->hosts == NULL)
        return fl_check_nomem(c);
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

static int parse_target(struct fl_check *c, const struct fl_experiment *e,
                        const struct fl_yaml_node *n, struct fl_target *t)
{
    static const char *const keys[] = {"hosts", "tags", "count", "percent", "where", NULL};
    int rc = fl_yaml_check_keys(n, keys, c->err, c->errlen);
    if (rc < 0)
        return rc;
    const struct fl_yaml_node *where = fl_yaml_get(n, "where");
    if (where != NULL) {
        rc = fl_probes_ref_any(c, e, where, &t->where_probe);
        if (rc < 0)
            return rc;
        if (e->probes[t->where_probe].type == FL_PROBE_SSH)
            return fl_yaml_errorf(where, c->err, c->errlen,
                                  "where: needs an http, tcp or exec probe using {host} or "
                                  "{address}; '%s' is an ssh probe, whose host is fixed",
                                  e->probes[t->where_probe].name);
        t->has_where = true;
    }
    const struct fl_yaml_node *hosts = fl_yaml_get(n, "hosts");
    const struct fl_yaml_node *tags = fl_yaml_get(n, "tags");
    if (hosts != NULL && tags != NULL)
        return fl_yaml_errorf(tags, c->err, c->errlen, "a target has hosts or tags, not both");
    if (hosts == NULL && tags == NULL)
        return fl_yaml_errorf(n, c->err, c->errlen,
                              "a target needs hosts: [web1] or tags: [web] (with count or "
                              "percent)");
    if (tags != NULL)
        return target_by_tags(c, e, n, tags, t);
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
    rc = fl_check_list(c, hosts, &items);
    if (rc == 0 && items == 0)
        rc = fl_yaml_errorf(hosts, c->err, c->errlen, "the list of hosts is empty");
    if (rc < 0)
        return rc;
    t->hosts = calloc(items, sizeof(*t->hosts));
    if (t->hosts == NULL)
        return fl_check_nomem(c);
    for (size_t i = 0; i < items; i++) {
        rc = fl_inventory_host_ref(c, &e->inventory, hosts->items[i], &t->hosts[i]);
        for (size_t j = 0; rc == 0 && j < i; j++)
            if (t->hosts[j] == t->hosts[i])
                rc = fl_yaml_errorf(hosts->items[i], c->err, c->errlen, "host '%s' is listed twice",
                                    e->inventory.hosts[t->hosts[i]].name);
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

static int set_param(struct fl_check *c, Faultline__FaultSpec *spec, const struct fl_yaml_node *key,
                     const struct fl_yaml_node *value, const char *text)
{
    char msg[400];
    int rc = fl_faultspec_set(spec, key->text, text, msg, sizeof(msg));
    if (rc == -ENOMEM)
        return fl_check_nomem(c);
    if (rc < 0)
        return fl_yaml_errorf(value, c->err, c->errlen, "%s", msg);
    return 0;
}

/* The kind's mapping: every parameter through fl_faultspec_set. */
static int fault_params(struct fl_check *c, const char *kind, const struct fl_yaml_node *n,
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
                return fl_check_nomem(c);
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

/* The idx-th fault; names holds the name nodes of the earlier ones. */
static int parse_fault(struct fl_check *c, struct fl_experiment *e, size_t idx,
                       const struct fl_yaml_node *n, const struct fl_yaml_node **names)
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

    struct fl_fault *f = &e->faults[idx];
    int rc = fl_yaml_check_keys(n, keys, c->err, c->errlen);
    if (rc == 0)
        rc = fl_check_unique_name(c, n, "fault", names, idx, &f->name);
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
    rc = fl_check_required(c, n, "target", &target);
    if (rc == 0)
        rc = parse_target(c, e, target, &f->target);
    if (rc == 0 && (v = fl_yaml_get(n, "start")) != NULL)
        rc = fl_yaml_duration(v, &f->start_ms, c->err, c->errlen);
    if (rc == 0)
        rc = fl_yaml_get(n, "duration") == NULL
                 ? fl_yaml_errorf(n, c->err, c->errlen,
                                  "missing required key 'duration': every fault ends by itself")
                 : 0;
    dur = fl_yaml_get(n, "duration");
    if (rc == 0)
        rc = fl_check_duration(c, dur, 1, &f->duration_ms);
    if (rc < 0)
        return rc;

    char msg[400];
    f->spec = fl_faultspec_new(kind_key->text, msg, sizeof(msg));
    if (f->spec == NULL)
        return fl_check_nomem(c); /* the kind is known: only memory can fail */
    rc = fault_params(c, kind_key->text, kind, f->spec);
    if (rc < 0)
        return rc;
    if (fl_faultspec_set_name(f->spec, f->name) < 0)
        return fl_check_nomem(c);
    f->spec->duration_ms = f->duration_ms;
    if (fl_faultspec_check(f->spec, msg, sizeof(msg)) < 0)
        return fl_yaml_errorf(kind_key, c->err, c->errlen, "%s", msg);
    return 0;
}

int fl_faults_parse(struct fl_check *c, struct fl_experiment *e, const struct fl_yaml_node *root)
{
    const struct fl_yaml_node *v = NULL;
    size_t n;
    int rc = fl_check_required(c, root, "faults", &v);
    if (rc == 0)
        rc = fl_check_list(c, v, &n);
    if (rc == 0 && n == 0)
        rc = fl_yaml_errorf(v, c->err, c->errlen, "the experiment has no faults");
    if (rc < 0)
        return rc;
    const struct fl_yaml_node **names = calloc(n, sizeof(*names));
    e->faults = calloc(n, sizeof(*e->faults));
    if (e->faults == NULL || names == NULL) {
        free(names);
        return fl_check_nomem(c);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        e->n_faults = i + 1;
        rc = parse_fault(c, e, i, v->items[i], names);
    }
    free(names);
    return rc;
}
