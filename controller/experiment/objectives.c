/* What an experiment is judged by and when it stops: the objectives:
 * (rto, rpo), abort_when: (a probe unhealthy for a while, or max_duration)
 * and recovery: (which probes must be healthy again, and how soon). */
#include "controller/experiment/objectives.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/yamldoc.h"
#include "controller/experiment/experiment.h"
#include "controller/experiment/check.h"
#include "controller/experiment/probes.h"

/* availability: { target: 99.95%, failures_per_year: 6 } or { target, mtbf: 60d },
 * redundancy: N optional (issue 14) */
static int parse_availability(struct fl_check *c, struct fl_objectives *o,
                              const struct fl_yaml_node *n)
{
    static const char *const keys[] = {"target", "failures_per_year", "mtbf", "redundancy", NULL};
    int rc = fl_yaml_check_keys(n, keys, c->err, c->errlen);
    const struct fl_yaml_node *v = NULL;
    if (rc == 0)
        rc = fl_check_required(c, n, "target", &v);
    if (rc < 0)
        return rc;
    const char *text = NULL;
    if ((rc = fl_yaml_string(v, &text, c->err, c->errlen)) < 0)
        return rc;
    char *end = NULL;
    double t = strtod(text, &end);
    bool percent = end != NULL && *end == '%' && end[1] == '\0';
    if (end == text || (!percent && *end != '\0'))
        t = -1;
    if (percent)
        t /= 100.0;
    if (!(t > 0 && t < 1))
        return fl_yaml_errorf(v, c->err, c->errlen,
                              "target must be an availability below 100%%, such as 99.95%% or "
                              "0.9995");
    o->avail_target = t;
    const struct fl_yaml_node *f = fl_yaml_get(n, "failures_per_year");
    const struct fl_yaml_node *m = fl_yaml_get(n, "mtbf");
    if ((f == NULL) == (m == NULL))
        return fl_yaml_errorf(f != NULL ? f : n, c->err, c->errlen,
                              "availability needs failures_per_year: N or mtbf: DURATION (one "
                              "of the two)");
    uint64_t u = 0;
    if (f != NULL) {
        if ((rc = fl_yaml_uint(f, 1, 1000000, &u, c->err, c->errlen)) < 0)
            return rc;
        o->avail_failures_per_year = (double)u;
    } else if (m->kind == FL_YAML_SCALAR && m->len > 1 && m->text[m->len - 1] == 'd' &&
               strspn(m->text, "0123456789") == m->len - 1 && m->len <= 7) {
        o->avail_mtbf_ms = strtoull(m->text, NULL, 10) * 86400000ull; /* days: "60d" */
        if (o->avail_mtbf_ms == 0)
            return fl_yaml_errorf(m, c->err, c->errlen, "mtbf must be longer than 0");
    } else if ((rc = fl_yaml_duration(m, &o->avail_mtbf_ms, c->err, c->errlen)) < 0) {
        return rc;
    } else if (o->avail_mtbf_ms == 0) {
        return fl_yaml_errorf(m, c->err, c->errlen, "mtbf must be longer than 0");
    }
    o->avail_redundancy = 1;
    if ((v = fl_yaml_get(n, "redundancy")) != NULL) {
        if ((rc = fl_yaml_uint(v, 1, 100, &u, c->err, c->errlen)) < 0)
            return rc;
        o->avail_redundancy = (unsigned)u;
    }
    o->has_availability = true;
    return 0;
}

int fl_objectives_parse(struct fl_check *c, struct fl_experiment *e, const struct fl_yaml_node *n)
{
    static const char *const keys[] = {"rto", "rpo", "impact", "availability", NULL};
    struct fl_objectives *o = &e->objectives;
    int rc = fl_yaml_check_keys(n, keys, c->err, c->errlen);
    const struct fl_yaml_node *v = NULL;
    if (rc == 0 && (v = fl_yaml_get(n, "rto")) != NULL &&
        (rc = fl_yaml_duration(v, &o->rto_ms, c->err, c->errlen)) == 0)
        o->has_rto = true;
    if (rc == 0 && (v = fl_yaml_get(n, "rpo")) != NULL &&
        (rc = fl_yaml_duration(v, &o->rpo_ms, c->err, c->errlen)) == 0)
        o->has_rpo = true; /* experiment.c refuses it without a write probe */
    if (rc == 0 && (v = fl_yaml_get(n, "availability")) != NULL)
        rc = parse_availability(c, o, v);
    o->impact_required = o->has_rto;
    if (rc == 0 && (v = fl_yaml_get(n, "impact")) != NULL) {
        const char *s = NULL;
        rc = fl_yaml_string(v, &s, c->err, c->errlen);
        if (rc < 0) {
            /* fl_yaml_string said why */
        } else if (strcmp(s, "required") == 0) {
            o->impact_required = true;
        } else if (strcmp(s, "optional") == 0) {
            o->impact_required = false;
        } else {
            rc = fl_yaml_errorf(v, c->err, c->errlen,
                                "impact must be required (a run whose faults had no visible "
                                "effect fails) or optional (it passes as \"PASS (no impact)\")");
        }
        o->impact_set = rc == 0;
    }
    return rc;
}

static int parse_abort(struct fl_check *c, struct fl_experiment *e, size_t idx,
                       const struct fl_yaml_node *n)
{
    static const char *const keys[] = {"probe", "unhealthy_for", "max_duration", NULL};
    struct fl_abort *a = &e->aborts[idx];
    int rc = fl_yaml_check_keys(n, keys, c->err, c->errlen);
    if (rc < 0)
        return rc;
    const struct fl_yaml_node *probe = fl_yaml_get(n, "probe");
    const struct fl_yaml_node *unh = fl_yaml_get(n, "unhealthy_for");
    const struct fl_yaml_node *max = fl_yaml_get(n, "max_duration");
    if (max != NULL) {
        if (probe != NULL || unh != NULL)
            return fl_yaml_errorf(probe ? probe : unh, c->err, c->errlen,
                                  "max_duration is a condition of its own: write { probe, "
                                  "unhealthy_for } as another entry");
        a->type = FL_ABORT_MAX_DURATION;
        return fl_check_duration(c, max, 1, &a->ms);
    }
    a->type = FL_ABORT_UNHEALTHY;
    if (probe == NULL || unh == NULL)
        return fl_yaml_errorf(n, c->err, c->errlen,
                              "missing required key '%s': a stop condition is { probe, "
                              "unhealthy_for } or { max_duration }",
                              probe == NULL ? "probe" : "unhealthy_for");
    rc = fl_probes_ref(c, e, probe, &a->probe);
    if (rc == 0)
        rc = fl_yaml_duration(unh, &a->ms, c->err, c->errlen);
    return rc;
}

static int parse_recovery(struct fl_check *c, struct fl_experiment *e, const struct fl_yaml_node *n)
{
    static const char *const keys[] = {"probes", "timeout", NULL};
    struct fl_recovery *r = &e->recovery;
    int rc = fl_yaml_check_keys(n, keys, c->err, c->errlen);
    const struct fl_yaml_node *v = NULL;
    if (rc == 0 && (v = fl_yaml_get(n, "probes")) != NULL)
        rc = fl_probes_refs(c, e, v, &r->probes, &r->n_probes);
    if (rc == 0 && (v = fl_yaml_get(n, "timeout")) != NULL)
        rc = fl_check_duration(c, v, 1, &r->timeout_ms);
    return rc;
}

int fl_objectives_aborts(struct fl_check *c, struct fl_experiment *e,
                         const struct fl_yaml_node *list)
{
    size_t n;
    int rc = fl_check_list(c, list, &n);
    if (rc < 0 || n == 0)
        return rc;
    e->aborts = calloc(n, sizeof(*e->aborts));
    if (e->aborts == NULL)
        return fl_check_nomem(c);
    e->n_aborts = n;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = parse_abort(c, e, i, list->items[i]);
    return rc;
}

int fl_objectives_recovery(struct fl_check *c, struct fl_experiment *e,
                           const struct fl_yaml_node *n)
{
    int rc = 0;
    e->recovery.timeout_ms = FL_EXPERIMENT_DEFAULT_RECOVERY_MS;
    if (n != NULL)
        rc = parse_recovery(c, e, n);
    if (rc == 0 && e->recovery.probes == NULL && e->n_steady_state > 0) {
        e->recovery.probes = calloc(e->n_steady_state, sizeof(size_t));
        if (e->recovery.probes == NULL)
            return fl_check_nomem(c);
        memcpy(e->recovery.probes, e->steady_state, e->n_steady_state * sizeof(size_t));
        e->recovery.n_probes = e->n_steady_state;
    } else if (rc == 0 && e->recovery.probes == NULL && e->n_probes > 0) {
        /* no steady state named: every probe must recover, else nothing
         * would be measured and every run would end ABORTED */
        e->recovery.probes = calloc(e->n_probes, sizeof(size_t));
        if (e->recovery.probes == NULL)
            return fl_check_nomem(c);
        for (size_t i = 0; i < e->n_probes; i++)
            if (!e->probes[i].is_template) /* templates run only for where: */
                e->recovery.probes[e->recovery.n_probes++] = i;
    }
    return rc;
}
