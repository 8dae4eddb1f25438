/* Role-aware targets: the where: checks and the choice (where.h).
 *
 *   start ──► one fl_probe_once per candidate (template filled in) ──►
 *   result ──► stop the probe ──► all stopped ──► done()
 */
#include "controller/run/where.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/probes/template.h"

struct fl_where_check {
    struct fl_where *w;
    struct fl_run_fault *rf;
    struct fl_probe *probe; /* NULL once stopping */
};

static void on_stopped(void *arg)
{
    struct fl_where_check *ck = arg;
    struct fl_where *w = ck->w;
    if (--w->open == 0 && w->done != NULL)
        w->done(w->arg);
}

static void on_result(struct fl_probe *p, const struct fl_probe_result *r, void *arg)
{
    struct fl_where_check *ck = arg;
    ck->rf->where_checked = true;
    ck->rf->where_ok = r->ok;
    snprintf(ck->rf->where_detail, sizeof(ck->rf->where_detail), "%s", r->detail);
    ck->probe = NULL;
    fl_probe_stop(p, on_stopped, ck);
}

int fl_where_start(struct fl_where *w, uv_loop_t *loop, struct fl_run_record *rec,
                   void (*done)(void *arg), void *arg)
{
    memset(w, 0, sizeof(*w));
    w->rec = rec;
    w->done = done;
    w->arg = arg;
    size_t n = 0;
    for (size_t i = 0; i < rec->n_faults; i++)
        n += rec->faults[i].where;
    if (n == 0)
        return 0;
    w->checks = calloc(n, sizeof(*w->checks));
    if (w->checks == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < rec->n_faults; i++) {
        struct fl_run_fault *rf = &rec->faults[i];
        if (!rf->where)
            continue;
        const struct fl_probe_spec *tmpl = &rec->e->probes[rf->fault->target.where_probe];
        struct fl_probe_spec spec;
        int rc = fl_probe_spec_instantiate(tmpl, rf->host->name, rf->host->address, &spec);
        if (rc < 0) {
            w->done = NULL; /* the caller aborts: no done() after an error */
            fl_where_stop(w);
            return rc;
        }
        struct fl_where_check *ck = &w->checks[w->n_checks++];
        ck->w = w;
        ck->rf = rf;
        rc = fl_probe_once(loop, &spec, on_result, ck, &ck->probe);
        fl_probe_spec_free(&spec); /* the probe keeps its own copy */
        if (rc < 0) {
            w->n_checks--;
            w->done = NULL;
            fl_where_stop(w);
            return rc;
        }
        w->open++;
    }
    return (int)w->n_checks;
}

void fl_where_stop(struct fl_where *w)
{
    w->stopping = true;
    for (size_t i = 0; i < w->n_checks; i++) {
        struct fl_where_check *ck = &w->checks[i];
        if (ck->probe != NULL) {
            struct fl_probe *p = ck->probe;
            ck->probe = NULL;
            fl_probe_stop(p, on_stopped, ck);
        }
    }
}

void fl_where_free(struct fl_where *w)
{
    free(w->checks);
    w->checks = NULL;
    w->n_checks = 0;
}

int fl_where_choose(struct fl_run_record *rec, size_t (*pick)(size_t n), char *why, size_t len)
{
    for (size_t i = 0; i < rec->n_faults; i++) {
        struct fl_run_fault *first = &rec->faults[i];
        if (!first->where || (i > 0 && rec->faults[i - 1].fault == first->fault))
            continue;
        /* the candidates of this fault are consecutive records */
        size_t end = i;
        while (end < rec->n_faults && rec->faults[end].fault == first->fault)
            end++;
        size_t matched = 0;
        for (size_t k = i; k < end; k++)
            matched += rec->faults[k].where_ok;
        if (matched == 0) {
            const struct fl_fault *f = first->fault;
            int o = snprintf(why, len,
                             "no candidate of fault %s matched where: %s, nothing was injected:",
                             f->name, rec->e->probes[f->target.where_probe].name);
            for (size_t k = i; k < end && o > 0 && (size_t)o < len; k++) {
                const struct fl_run_fault *rf = &rec->faults[k];
                o += snprintf(why + o, len - (size_t)o, "%s %s (%s): %s", k > i ? ";" : "",
                              rf->host->name, rf->host->address,
                              rf->where_checked ? rf->where_detail : "not checked");
            }
            return -ENOENT;
        }
        size_t want = first->fault->target.count < matched ? first->fault->target.count : matched;
        /* choose `want` of the matched at random: a partial Fisher-Yates
         * over their positions */
        size_t *m = calloc(matched, sizeof(*m));
        if (m == NULL)
            return -ENOMEM;
        size_t nm = 0;
        for (size_t k = i; k < end; k++)
            if (rec->faults[k].where_ok)
                m[nm++] = k;
        for (size_t k = 0; k < want; k++) {
            size_t o = k + pick(nm - k);
            size_t t = m[k];
            m[k] = m[o];
            m[o] = t;
            rec->faults[m[k]].chosen = true;
        }
        free(m);
        for (size_t k = i; k < end; k++) {
            struct fl_run_fault *rf = &rec->faults[k];
            if (!rf->chosen)
                snprintf(rf->outcome, sizeof(rf->outcome), "%s",
                         rf->where_ok ? "not chosen" : "no match");
        }
    }
    return 0;
}
