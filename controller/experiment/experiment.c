/* The experiment loader: YAML tree (common/yamldoc) -> struct fl_experiment.
 *
 * Design:
 * - One pass per section in a fixed order (version, name, inventory,
 *   objectives, probes, steady_state, abort_when, faults, recovery), then the
 *   checks that span sections (fault windows against max_duration). The first
 *   problem found is the one reported; every message is "FILE:LINE:COL: ...",
 *   pointing at the node that is wrong (the mapping itself for a missing key).
 *   Each section has its file: inventory.c, objectives.c (objectives,
 *   abort_when, recovery), probes.c, faults.c; the checked values they share
 *   are in check.c.
 * - Every key of every mapping is checked against the known ones, so a typo
 *   is an error with a suggestion, never a silently ignored setting.
 * - References (probe names, host names, tags) become indices; the nearest
 *   known name is suggested when one is close (common/suggest).
 * - Everything is copied out of the tree; the struct is allocated up front
 *   and filled in place, so one fl_experiment_free cleans up after any error.
 *   *out is written only on success. */
#include "controller/experiment/experiment.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/suggest.h"
#include "common/units.h"
#include "common/yamldoc.h"
#include "controller/experiment/faults.h"
#include "controller/experiment/faultspec.h"
#include "controller/experiment/objectives.h"
#include "controller/experiment/check.h"
#include "controller/experiment/probes.h"
#include "controller/probes/pool.h"
#include "controller/serve/schedule.h"

/* inventory: --inventory wins; a string is a file next to the experiment. */
static int parse_inventory(struct fl_check *c, struct fl_experiment *e,
                           const struct fl_yaml_node *root, const char *inventory_path)
{
    const struct fl_yaml_node *v;
    if (inventory_path != NULL)
        return fl_inventory_parse_file(c, inventory_path, &e->inventory);
    if ((v = fl_yaml_get(root, "inventory")) == NULL)
        return fl_yaml_errorf(root, c->err, c->errlen,
                              "missing required key 'inventory' (or pass --inventory FILE)");
    if (v->kind != FL_YAML_SCALAR)
        return fl_inventory_parse(c, v, c->path, &e->inventory);
    const char *t;
    char *file = NULL;
    int rc = fl_yaml_string(v, &t, c->err, c->errlen);
    if (rc == 0)
        rc = fl_check_resolve(c, c->path, t, &file);
    if (rc == 0)
        rc = fl_inventory_parse_file(c, file, &e->inventory);
    free(file);
    return rc;
}

/* Every fault must end before any max_duration stops the run. The sections
 * are loaded, so the nodes looked up again here exist. */
static int check_windows(struct fl_check *c, const struct fl_experiment *e,
                         const struct fl_yaml_node *root)
{
    const struct fl_yaml_node *faults = fl_yaml_get(root, "faults");
    const struct fl_yaml_node *aborts = fl_yaml_get(root, "abort_when");
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
            const struct fl_yaml_node *max = fl_yaml_get(aborts->items[j], "max_duration");
            return fl_yaml_errorf(fl_yaml_get(faults->items[i], "duration"), c->err, c->errlen,
                                  "fault '%s' runs past max_duration %s (line %u): it starts at "
                                  "%s and lasts %s",
                                  f->name, sm, max->line, se, sd);
        }
    }
    return 0;
}

/* `controller:` how this controller runs the experiment. */
static int parse_controller(struct fl_check *c, struct fl_experiment *e,
                            const struct fl_yaml_node *v)
{
    static const char *const keys[] = {"probe_threads", NULL};
    int rc = fl_yaml_expect(v, FL_YAML_MAPPING, c->err, c->errlen);
    if (rc == 0)
        rc = fl_yaml_check_keys(v, keys, c->err, c->errlen);
    const struct fl_yaml_node *t = rc == 0 ? fl_yaml_get(v, "probe_threads") : NULL;
    uint64_t n = 0;
    if (t != NULL) {
        rc = fl_yaml_uint(t, 1, FL_PROBE_THREADS_MAX, &n, c->err, c->errlen);
        e->probe_threads = (unsigned)n;
    }
    return rc;
}

/* schedule: { also_uses: [web1, tag:web] }: the inventory hosts a scheduled
 * run depends on that its faults and probes do not name (the backends behind
 * a load balancer), for faultline serve's blast radius
 * (controller/serve/radius.h). Each host once, in the order given. */
static void also_use(struct fl_schedule *s, size_t h)
{
    for (size_t k = 0; k < s->n_also_uses; k++)
        if (s->also_uses[k] == h)
            return;
    s->also_uses[s->n_also_uses++] = h; /* room for every host: allocated so */
}

static int also_uses_tag(struct fl_check *c, struct fl_experiment *e, const struct fl_yaml_node *n,
                         const char *tag)
{
    const struct fl_inventory *inv = &e->inventory;
    bool any = false;
    for (size_t h = 0; h < inv->n_hosts; h++)
        for (size_t k = 0; k < inv->hosts[h].n_tags; k++)
            if (strcmp(inv->hosts[h].tags[k], tag) == 0) {
                also_use(e->schedule, h);
                any = true;
            }
    if (any)
        return 0;
    struct fl_near nr;
    fl_near_init(&nr, tag, strlen(tag), false);
    for (size_t h = 0; h < inv->n_hosts; h++)
        for (size_t k = 0; k < inv->hosts[h].n_tags; k++)
            fl_near_consider(&nr, inv->hosts[h].tags[k]);
    char buf[96];
    return fl_yaml_errorf(n, c->err, c->errlen,
                          "also_uses: no host in the inventory (%s) has the tag '%.64s'%s",
                          inv->path, tag, fl_check_near_text(&nr, buf, sizeof(buf)));
}

static int parse_also_uses(struct fl_check *c, struct fl_experiment *e,
                           const struct fl_yaml_node *v)
{
    size_t count = 0;
    int rc = fl_check_list(c, v, &count);
    if (rc < 0 || count == 0)
        return rc;
    size_t n_hosts = e->inventory.n_hosts;
    struct fl_schedule *s = e->schedule;
    if ((s->also_uses = calloc(n_hosts ? n_hosts : 1, sizeof(*s->also_uses))) == NULL)
        return fl_check_nomem(c);
    for (size_t i = 0; i < count && rc == 0; i++) {
        const struct fl_yaml_node *n = v->items[i];
        const char *t;
        size_t h = 0;
        if ((rc = fl_yaml_string(n, &t, c->err, c->errlen)) < 0)
            break;
        if (strncmp(t, "tag:", 4) == 0)
            rc = also_uses_tag(c, e, n, t + 4);
        else if ((rc = fl_inventory_host_ref(c, &e->inventory, n, &h)) == 0)
            also_use(s, h);
    }
    return rc;
}

static int parse_experiment(struct fl_check *c, struct fl_experiment *e,
                            const struct fl_yaml_node *root, const char *inventory_path)
{
    static const char *const keys[] = {
        "version", "name",       "description", "inventory", "objectives", "probes", "steady_state",
        "faults",  "abort_when", "recovery",    "schedule",  "controller", NULL};
    int rc = fl_yaml_check_keys(root, keys, c->err, c->errlen);
    const struct fl_yaml_node *v = NULL;
    uint64_t version;
    if (rc == 0)
        rc = fl_check_required(c, root, "version", &v);
    if (rc == 0)
        rc = fl_yaml_uint(v, 0, UINT32_MAX, &version, c->err, c->errlen);
    if (rc == 0 && version != FL_EXPERIMENT_VERSION)
        rc = fl_yaml_errorf(v, c->err, c->errlen,
                            "unsupported version %llu: this faultline reads version %d",
                            (unsigned long long)version, FL_EXPERIMENT_VERSION);
    if (rc < 0)
        return rc;
    e->version = (unsigned)version;
    rc = fl_check_required(c, root, "name", &v);
    if (rc == 0)
        rc = fl_check_string(c, v, &e->name);
    if (rc == 0 && (v = fl_yaml_get(root, "description")) != NULL)
        rc = fl_check_string(c, v, &e->description);
    if (rc == 0)
        rc = parse_inventory(c, e, root, inventory_path);
    if (rc == 0 && (v = fl_yaml_get(root, "objectives")) != NULL)
        rc = fl_objectives_parse(c, e, v);
    if (rc == 0)
        rc = fl_probes_parse(c, e, fl_yaml_get(root, "probes"));
    if (rc == 0)
        rc = fl_probes_refs(c, e, fl_yaml_get(root, "steady_state"), &e->steady_state,
                            &e->n_steady_state);
    if (rc == 0)
        rc = fl_objectives_aborts(c, e, fl_yaml_get(root, "abort_when"));
    if (rc == 0)
        rc = fl_faults_parse(c, e, root);
    if (rc == 0)
        rc = fl_objectives_recovery(c, e, fl_yaml_get(root, "recovery"));
    if (rc == 0)
        rc = check_windows(c, e, root);
    if (rc == 0 && (v = fl_yaml_get(root, "controller")) != NULL)
        rc = parse_controller(c, e, v);
    size_t writers = 0; /* write probes: what can measure an rpo */
    for (size_t i = 0; i < e->n_probes; i++)
        writers += e->probes[i].type == FL_PROBE_POSTGRES || e->probes[i].type == FL_PROBE_REDIS;
    if (rc == 0 && e->objectives.has_rpo && writers == 0)
        rc = fl_yaml_errorf(fl_yaml_get(fl_yaml_get(root, "objectives"), "rpo"), c->err, c->errlen,
                            "rpo cannot be measured without a write probe (postgres: or redis:) "
                            "that writes during the run and reads back after it; add one, or "
                            "remove rpo");
    if (rc == 0 && (v = fl_yaml_get(root, "schedule")) != NULL) {
        if ((e->schedule = calloc(1, sizeof(*e->schedule))) == NULL)
            rc = fl_check_nomem(c);
        else
            rc = fl_schedule_parse(v, e->schedule, c->err, c->errlen);
        if (rc == 0)
            rc = parse_also_uses(c, e, fl_yaml_get(v, "also_uses"));
    }
    size_t watching = 0; /* probes that run on their own: not templates */
    for (size_t i = 0; i < e->n_probes; i++)
        watching += !e->probes[i].is_template;
    if (rc == 0 && watching == 0) {
        const struct fl_yaml_node *at = fl_yaml_get(root, "faults");
        rc = fl_yaml_errorf(at != NULL ? at : root, c->err, c->errlen,
                            "the experiment has no probes, so a run could only inject and revert "
                            "and never measure a recovery: add probes (and list the ones that "
                            "must hold in steady_state); for a scripted injection without a "
                            "verdict use `faultline inject` and `faultline revert`/`halt`");
    }
    return rc;
}

int fl_experiment_load(const char *path, const char *inventory_path, struct fl_experiment **out,
                       char *err, size_t errlen)
{
    struct fl_check c = {.err = err, .errlen = errlen, .path = path};
    struct fl_yaml_doc *doc = NULL;
    int rc = fl_yaml_load_file(path, &doc, err, errlen);
    if (rc < 0)
        return rc;
    struct fl_experiment *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        rc = fl_check_nomem(&c);
    } else if ((rc = fl_check_copy(&c, path, &e->path)) < 0) {
        /* fl_check_nomem said it */
    } else if (doc->root == NULL) {
        snprintf(err, errlen,
                 "%s:1:1: the file is empty: an experiment needs version, name, inventory and "
                 "faults",
                 path);
        rc = -EINVAL;
    } else {
        rc = parse_experiment(&c, e, doc->root, inventory_path);
    }
    fl_yaml_free(&doc);
    if (rc < 0) {
        fl_experiment_free(&e);
        return rc == -ERANGE ? -EINVAL : rc; /* a value out of range is an invalid file */
    }
    *out = e;
    return 0;
}

void fl_experiment_free(struct fl_experiment **ep)
{
    if (ep == NULL || *ep == NULL)
        return;
    struct fl_experiment *e = *ep;
    free(e->path);
    free(e->name);
    free(e->description);
    fl_inventory_clear(&e->inventory);
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
    if (e->schedule != NULL)
        fl_schedule_free(e->schedule);
    free(e->schedule);
    free(e);
    *ep = NULL;
}

long fl_experiment_host(const struct fl_experiment *e, const char *name)
{
    return fl_inventory_host(&e->inventory, name);
}

long fl_experiment_probe(const struct fl_experiment *e, const char *name)
{
    for (size_t i = 0; i < e->n_probes; i++)
        if (e->probes[i].name != NULL && strcmp(e->probes[i].name, name) == 0)
            return (long)i;
    return -1;
}
