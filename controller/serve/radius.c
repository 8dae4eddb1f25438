/* The blast radius of a scheduled experiment (radius.h). */
#include "controller/serve/radius.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "controller/experiment/experiment.h"
#include "controller/serve/schedule.h"

char *fl_radius_key(const char *h, size_t len)
{
    if (len >= 2 && h[0] == '[' && h[len - 1] == ']') {
        h++;
        len -= 2;
    }
    char *k = malloc(len + 1);
    if (k == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++)
        k[i] = (char)tolower((unsigned char)h[i]);
    k[len] = '\0';
    /* an IP literal in one spelling; a zone (fe80::1%eth0) is kept as written */
    char *zone = strchr(k, '%');
    if (zone != NULL)
        *zone = '\0';
    unsigned char a[16];
    char canon[INET6_ADDRSTRLEN];
    bool ip = false;
    if (inet_pton(AF_INET6, k, a) == 1) {
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        ip = memcmp(a, mapped, sizeof(mapped)) == 0
                 ? inet_ntop(AF_INET, a + 12, canon, sizeof(canon)) != NULL
                 : inet_ntop(AF_INET6, a, canon, sizeof(canon)) != NULL;
    } else if (inet_pton(AF_INET, k, a) == 1) {
        ip = inet_ntop(AF_INET, a, canon, sizeof(canon)) != NULL;
    }
    if (zone != NULL)
        *zone = '%';
    if (ip) {
        size_t zl = zone != NULL ? strlen(zone) : 0;
        char *c = malloc(strlen(canon) + zl + 1);
        if (c == NULL) {
            free(k);
            return NULL;
        }
        memcpy(c, canon, strlen(canon));
        memcpy(c + strlen(canon), zone != NULL ? zone : "", zl + 1);
        free(k);
        return c;
    }
    if (len > 1 && k[len - 1] == '.')
        k[len - 1] = '\0'; /* lb.example.com. is lb.example.com */
    return k;
}

/* ------------------------------------------------------------ building */

struct build {
    const struct fl_experiment *e;
    struct fl_radius r;
    size_t cap;
    char *err;
    size_t errlen;
};

static int nomem(struct build *b)
{
    snprintf(b->err, b->errlen, "%s: out of memory computing its blast radius", b->e->path);
    return -ENOMEM;
}

/* Adds (h, why, by) unless it is there; host is the inventory's name, or
 * NULL to look the address up. */
static int add(struct build *b, const char *h, size_t len, const char *host, enum fl_radius_why why,
               const char *by)
{
    char *key = fl_radius_key(h, len);
    if (key == NULL)
        return nomem(b);
    for (size_t i = 0; i < b->r.n; i++) {
        const struct fl_radius_addr *x = &b->r.addrs[i];
        if (x->why == why && strcmp(x->key, key) == 0 &&
            (x->by == by || (x->by != NULL && by != NULL && strcmp(x->by, by) == 0))) {
            free(key);
            return 0;
        }
    }
    const struct fl_inventory *inv = &b->e->inventory;
    for (size_t i = 0; host == NULL && i < inv->n_hosts; i++) {
        char *k = fl_radius_key(inv->hosts[i].address, strlen(inv->hosts[i].address));
        if (k == NULL) {
            free(key);
            return nomem(b);
        }
        if (strcmp(k, key) == 0)
            host = inv->hosts[i].name;
        free(k);
    }
    if (b->r.n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 16;
        struct fl_radius_addr *v = realloc(b->r.addrs, cap * sizeof(*v));
        if (v == NULL) {
            free(key);
            return nomem(b);
        }
        b->r.addrs = v;
        b->cap = cap;
    }
    if (len >= 2 && h[0] == '[' && h[len - 1] == ']') {
        h++;
        len -= 2;
    }
    char *shown = strndup(h, len);
    if (shown == NULL) {
        free(key);
        return nomem(b);
    }
    b->r.addrs[b->r.n++] =
        (struct fl_radius_addr){.key = key, .shown = shown, .host = host, .why = why, .by = by};
    return 0;
}

/* A probe's host: its address, and when it is an inventory host's name,
 * that host's address too (whatever DNS would say, the same machine is
 * the likely meaning). A template's placeholder is skipped. */
static int add_probed(struct build *b, const char *h, size_t len, const char *by)
{
    if (len == 0 || memchr(h, '{', len) != NULL)
        return 0;
    int rc = add(b, h, len, NULL, FL_RADIUS_PROBED, by);
    const struct fl_inventory *inv = &b->e->inventory;
    for (size_t i = 0; rc == 0 && i < inv->n_hosts; i++)
        if (strlen(inv->hosts[i].name) == len && strncasecmp(inv->hosts[i].name, h, len) == 0)
            rc = add(b, inv->hosts[i].address, strlen(inv->hosts[i].address), inv->hosts[i].name,
                     FL_RADIUS_PROBED, by);
    return rc;
}

static int add_url(struct build *b, const struct fl_probe_spec *p)
{
    const char *url = p->u.http.url;
    CURLU *u = curl_url();
    if (u == NULL)
        return nomem(b);
    char *host = NULL;
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc == CURLUE_OK)
        uc = curl_url_get(u, CURLUPART_HOST, &host, 0);
    curl_url_cleanup(u);
    int rc = 0;
    if (uc == CURLUE_OUT_OF_MEMORY)
        rc = nomem(b);
    else if (uc != CURLUE_OK && !p->is_template) {
        snprintf(b->err, b->errlen, "%s: probe '%s': cannot read the host of url %.200s (%s)",
                 b->e->path, p->name, url, curl_url_strerror(uc));
        rc = -EINVAL;
    } else if (uc == CURLUE_OK && !(p->is_template && strchr(host, '%') != NULL)) {
        rc = add_probed(b, host, strlen(host), p->name); /* %7B: a template's {host} */
    }
    curl_free(host);
    return rc;
}

/* Every host= and hostaddr= of a libpq connection string (a list each).
 * A socket directory (or none: the default socket) is the controller's
 * own machine: no address. */
static int add_dsn(struct build *b, const struct fl_probe_spec *p)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(p->u.data.dsn, &msg);
    if (opts == NULL) {
        if (msg == NULL)
            return nomem(b);
        size_t n = strcspn(msg, "\n");
        snprintf(b->err, b->errlen, "%s: probe '%s': its dsn does not parse: %.*s", b->e->path,
                 p->name, (int)(n < 200 ? n : 200), msg);
        PQfreemem(msg);
        return -EINVAL;
    }
    int rc = 0;
    for (PQconninfoOption *o = opts; rc == 0 && o->keyword != NULL; o++) {
        if ((strcmp(o->keyword, "host") != 0 && strcmp(o->keyword, "hostaddr") != 0) ||
            o->val == NULL)
            continue;
        for (const char *h = o->val; rc == 0;) {
            size_t n = strcspn(h, ",");
            if (n > 0 && h[0] != '/' && h[0] != '@')
                rc = add_probed(b, h, n, p->name);
            if (h[n] == '\0')
                break;
            h += n + 1;
        }
    }
    PQconninfoFree(opts);
    return rc;
}

/* "10.0.0.1:6379", "[fd00::1]:6379"; what does not split is taken whole. */
static int add_hostport(struct build *b, const char *spec, const char *by)
{
    char host[256];
    uint16_t port;
    if (fl_addr_split(spec, 6379, host, sizeof(host), &port) == 0)
        return add_probed(b, host, strlen(host), by);
    return add_probed(b, spec, strlen(spec), by);
}

static int add_probe(struct build *b, const struct fl_probe_spec *p)
{
    switch (p->type) {
    case FL_PROBE_HTTP:
        return add_url(b, p);
    case FL_PROBE_TCP:
        return add_probed(b, p->u.tcp.host, strlen(p->u.tcp.host), p->name);
    case FL_PROBE_SSH:
        return add(b, p->u.ssh.address, strlen(p->u.ssh.address), p->u.ssh.host, FL_RADIUS_PROBED,
                   p->name);
    case FL_PROBE_POSTGRES:
        return add_dsn(b, p);
    case FL_PROBE_REDIS: {
        int rc = p->u.data.address ? add_hostport(b, p->u.data.address, p->name) : 0;
        for (size_t i = 0; rc == 0 && i < p->u.data.n_sentinels; i++)
            rc = add_hostport(b, p->u.data.sentinels[i], p->name);
        b->r.has_sentinel |= p->u.data.n_sentinels > 0;
        return rc;
    }
    case FL_PROBE_EXEC:
        b->r.has_exec |= !p->is_template; /* a template reaches the fault's candidates */
        return 0;
    }
    return 0;
}

int fl_radius_of(const struct fl_experiment *e, struct fl_radius *out, char *err, size_t errlen)
{
    struct build b = {.e = e, .err = err, .errlen = errlen};
    const struct fl_inventory *inv = &e->inventory;
    int rc = 0;
    for (size_t f = 0; rc == 0 && f < e->n_faults; f++)
        for (size_t i = 0; rc == 0 && i < e->faults[f].target.n_hosts; i++) {
            const struct fl_host *h = &inv->hosts[e->faults[f].target.hosts[i]];
            rc = add(&b, h->address, strlen(h->address), h->name, FL_RADIUS_FAULTED,
                     e->faults[f].name);
        }
    for (size_t i = 0; rc == 0 && i < e->n_probes; i++)
        rc = add_probe(&b, &e->probes[i]);
    const struct fl_schedule *s = e->schedule;
    for (size_t i = 0; rc == 0 && s != NULL && i < s->n_also_uses; i++) {
        const struct fl_host *h = &inv->hosts[s->also_uses[i]];
        rc = add(&b, h->address, strlen(h->address), h->name, FL_RADIUS_USED, NULL);
    }
    if (rc < 0) {
        fl_radius_free(&b.r);
        return rc;
    }
    *out = b.r;
    return 0;
}

void fl_radius_free(struct fl_radius *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->addrs[i].key);
        free(r->addrs[i].shown);
    }
    free(r->addrs);
    memset(r, 0, sizeof(*r));
}

/* ------------------------------------------------------------ comparing */

bool fl_radius_shared(const struct fl_radius *a, const struct fl_radius *b, size_t *ia, size_t *ib)
{
    for (size_t i = 0; i < a->n; i++)
        for (size_t k = 0; k < b->n; k++)
            if (strcmp(a->addrs[i].key, b->addrs[k].key) == 0) {
                *ia = i;
                *ib = k;
                return true;
            }
    return false;
}

const char *fl_radius_why_text(enum fl_radius_why why)
{
    switch (why) {
    case FL_RADIUS_FAULTED:
        return "faulted by";
    case FL_RADIUS_PROBED:
        return "probed by";
    case FL_RADIUS_USED:
        return "used by";
    }
    return "?";
}

void fl_radius_busy_text(const struct fl_radius *a, size_t ia, const char *a_name,
                         const struct fl_radius *b, size_t ib, const char *b_name, char *buf,
                         size_t len)
{
    const struct fl_radius_addr *x = &a->addrs[ia], *y = &b->addrs[ib];
    const char *host = x->host != NULL ? x->host : y->host;
    if (host != NULL)
        snprintf(buf, len, "%s (%s: %s %s, %s %s)", host, x->shown, fl_radius_why_text(x->why),
                 a_name, fl_radius_why_text(y->why), b_name);
    else
        snprintf(buf, len, "%s (%s %s, %s %s)", x->shown, fl_radius_why_text(x->why), a_name,
                 fl_radius_why_text(y->why), b_name);
}
