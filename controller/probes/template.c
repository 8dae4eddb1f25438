/* Probe templates: {host} and {address} (template.h). */
#include "controller/probes/template.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool has_vars(const char *s)
{
    return s != NULL && (strstr(s, "{host}") != NULL || strstr(s, "{address}") != NULL);
}

bool fl_probe_spec_uses_vars(const struct fl_probe_spec *s)
{
    switch (s->type) {
    case FL_PROBE_HTTP:
        if (has_vars(s->u.http.url) || has_vars(s->u.http.body_contains))
            return true;
        for (size_t i = 0; i < s->u.http.n_headers && i < FL_PROBE_MAX_HEADERS; i++)
            if (has_vars(s->u.http.headers[i]))
                return true;
        return false;
    case FL_PROBE_TCP:
        return has_vars(s->u.tcp.host);
    case FL_PROBE_EXEC:
        if (has_vars(s->u.exec.expect_output))
            return true;
        for (size_t i = 0; i < s->u.exec.argc && i < FL_PROBE_MAX_ARGV; i++)
            if (has_vars(s->u.exec.argv[i]))
                return true;
        return false;
    case FL_PROBE_SSH:
    case FL_PROBE_POSTGRES:
    case FL_PROBE_REDIS:
        return false;
    }
    return false;
}

/* *field with every {host} and {address} replaced; NULL stays NULL. */
static int fill(char **field, const char *host, const char *address)
{
    const char *in = *field;
    if (in == NULL || !has_vars(in))
        return 0;
    size_t hl = strlen(host), al = strlen(address);
    size_t cap = strlen(in) + 1;
    for (const char *p = in; (p = strchr(p, '{')) != NULL; p++)
        cap += hl > al ? hl : al;
    char *out = malloc(cap);
    if (out == NULL)
        return -ENOMEM;
    size_t o = 0;
    for (const char *p = in; *p;) {
        if (strncmp(p, "{host}", 6) == 0) {
            memcpy(out + o, host, hl);
            o += hl;
            p += 6;
        } else if (strncmp(p, "{address}", 9) == 0) {
            memcpy(out + o, address, al);
            o += al;
            p += 9;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    free(*field);
    *field = out;
    return 0;
}

int fl_probe_spec_instantiate(const struct fl_probe_spec *tmpl, const char *host,
                              const char *address, struct fl_probe_spec *out)
{
    int rc = fl_probe_spec_copy(out, tmpl);
    if (rc < 0)
        return rc;
    out->is_template = false;
    switch (out->type) {
    case FL_PROBE_HTTP:
        rc = fill(&out->u.http.url, host, address);
        if (rc == 0)
            rc = fill(&out->u.http.body_contains, host, address);
        for (size_t i = 0; rc == 0 && i < out->u.http.n_headers; i++)
            rc = fill(&out->u.http.headers[i], host, address);
        break;
    case FL_PROBE_TCP:
        rc = fill(&out->u.tcp.host, host, address);
        break;
    case FL_PROBE_EXEC:
        rc = fill(&out->u.exec.expect_output, host, address);
        for (size_t i = 0; rc == 0 && i < out->u.exec.argc; i++)
            rc = fill(&out->u.exec.argv[i], host, address);
        break;
    case FL_PROBE_SSH:
    case FL_PROBE_POSTGRES:
    case FL_PROBE_REDIS:
        break;
    }
    if (rc < 0)
        fl_probe_spec_free(out);
    return rc;
}
