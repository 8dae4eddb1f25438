/* Checked values out of the YAML tree (common/yamldoc), shared by the
 * inventory loader and the experiment's sections: copies that report running
 * out of memory as "FILE: out of memory", paths relative to the file naming
 * them, names, ports, durations and the "did you mean" tail. */
#include "controller/experiment/check.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/suggest.h"
#include "common/units.h"
#include "common/yamldoc.h"

#define NAME_MAX_LEN 63

int fl_check_nomem(struct fl_check *c)
{
    snprintf(c->err, c->errlen, "%s: out of memory", c->path);
    return -ENOMEM;
}

int fl_check_copy(struct fl_check *c, const char *s, char **out)
{
    char *d = strdup(s);
    if (d == NULL)
        return fl_check_nomem(c);
    *out = d;
    return 0;
}

int fl_check_resolve(struct fl_check *c, const char *base, const char *rel, char **out)
{
    const char *slash = strrchr(base, '/');
    if (rel[0] == '/' || (rel[0] == '~' && rel[1] == '/') || slash == NULL)
        return fl_check_copy(c, rel, out);
    size_t dlen = (size_t)(slash - base) + 1;
    size_t rlen = strlen(rel);
    char *p = malloc(dlen + rlen + 1);
    if (p == NULL)
        return fl_check_nomem(c);
    memcpy(p, base, dlen);
    memcpy(p + dlen, rel, rlen + 1);
    *out = p;
    return 0;
}

/* "; did you mean 'x'?" or "" */
const char *fl_check_near_text(const struct fl_near *n, char *buf, size_t len)
{
    const char *best = fl_near_best(n);
    if (best == NULL)
        return "";
    snprintf(buf, len, "; did you mean '%s'?", best);
    return buf;
}

int fl_check_required(struct fl_check *c, const struct fl_yaml_node *map, const char *key,
                      const struct fl_yaml_node **out)
{
    const struct fl_yaml_node *n = fl_yaml_get(map, key);
    if (n == NULL)
        return fl_yaml_errorf(map, c->err, c->errlen, "missing required key '%s'", key);
    *out = n;
    return 0;
}

int fl_check_name(struct fl_check *c, const struct fl_yaml_node *n, const char *what,
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

int fl_check_string(struct fl_check *c, const struct fl_yaml_node *n, char **out)
{
    const char *t;
    int rc = fl_yaml_string(n, &t, c->err, c->errlen);
    if (rc < 0)
        return rc;
    return fl_check_copy(c, t, out);
}

int fl_check_port(struct fl_check *c, const struct fl_yaml_node *n, uint16_t *out)
{
    uint64_t v;
    int rc = fl_yaml_uint(n, 1, 65535, &v, c->err, c->errlen);
    if (rc < 0)
        return rc;
    *out = (uint16_t)v;
    return 0;
}

int fl_check_duration(struct fl_check *c, const struct fl_yaml_node *n, uint64_t min, uint64_t *out)
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

int fl_check_list(struct fl_check *c, const struct fl_yaml_node *n, size_t *count)
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

int fl_check_unique_name(struct fl_check *c, const struct fl_yaml_node *n, const char *what,
                         const struct fl_yaml_node **seen, size_t idx, char **out)
{
    const struct fl_yaml_node *v = NULL;
    const char *name;
    char label[32];
    snprintf(label, sizeof(label), "%s name", what);
    int rc = fl_check_required(c, n, "name", &v);
    if (rc == 0)
        rc = fl_check_name(c, v, label, &name);
    for (size_t i = 0; rc == 0 && i < idx; i++)
        if (strcmp(seen[i]->text, name) == 0)
            rc = fl_yaml_errorf(v, c->err, c->errlen,
                                "duplicate %s name '%s' (first at line %u): names must be unique",
                                what, name, seen[i]->line);
    if (rc == 0)
        rc = fl_check_copy(c, name, out);
    if (rc == 0)
        seen[idx] = v;
    return rc;
}
