/* The serve config file and its flags (config.h). Every key of every mapping
 * is checked, so a typo is an error with a suggestion, never a default used
 * in silence. */
#include "controller/serve/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/units.h"
#include "common/yamldoc.h"
#include "controller/serve/tz.h"

static int set_str(char **dst, const char *v)
{
    char *copy = strdup(v);
    if (copy == NULL)
        return -ENOMEM;
    free(*dst);
    *dst = copy;
    return 0;
}

int fl_serve_config_defaults(struct fl_serve_config *c)
{
    memset(c, 0, sizeof(*c));
    c->max_concurrent_runs = FL_SERVE_DEFAULT_MAX_CONCURRENT;
    c->retention_runs = FL_SERVE_DEFAULT_RETENTION_RUNS;
    c->retention_age_ms = FL_SERVE_DEFAULT_RETENTION_AGE_MS;
    c->reload_on_change = true;
    if (set_str(&c->db, FL_SERVE_DEFAULT_DB) < 0 ||
        set_str(&c->reports_dir, FL_SERVE_DEFAULT_REPORTS_DIR) < 0 ||
        set_str(&c->listen_http, FL_SERVE_DEFAULT_LISTEN_HTTP) < 0 ||
        set_str(&c->listen_control, FL_SERVE_DEFAULT_LISTEN_CONTROL) < 0) {
        fl_serve_config_free(c);
        return -ENOMEM;
    }
    return 0;
}

void fl_serve_config_free(struct fl_serve_config *c)
{
    free(c->experiments);
    free(c->inventory);
    free(c->key_file);
    free(c->db);
    free(c->reports_dir);
    free(c->listen_http);
    free(c->listen_control);
    free(c->timezone);
    for (size_t i = 0; i < c->n_webhooks; i++)
        free(c->webhooks[i].url);
    free(c->webhooks);
    memset(c, 0, sizeof(*c));
}

int fl_serve_listen_parse(const char *text, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon = strrchr(text, ':');
    if (colon == NULL || colon == text)
        return -EINVAL;
    const char *h = text;
    size_t hl = (size_t)(colon - text);
    if (h[0] == '[') {
        if (hl < 3 || h[hl - 1] != ']')
            return -EINVAL;
        h++;
        hl -= 2;
    }
    if (hl + 1 > hostlen || hl >= 64)
        return -EINVAL;
    char tmp[64];
    memcpy(tmp, h, hl);
    tmp[hl] = '\0';
    unsigned char addr[16];
    if (inet_pton(AF_INET, tmp, addr) != 1 && inet_pton(AF_INET6, tmp, addr) != 1)
        return -EINVAL;
    char *end = NULL;
    errno = 0;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || p == 0 || p > 65535)
        return -EINVAL;
    memcpy(host, tmp, hl + 1);
    *port = (uint16_t)p;
    return 0;
}

int fl_serve_parse_age(const char *text, uint64_t *ms)
{
    if (strcmp(text, "0") == 0) {
        *ms = 0;
        return 0;
    }
    size_t n = strlen(text);
    if (n >= 2 && text[n - 1] == 'd' && text[0] >= '0' && text[0] <= '9') {
        char *end = NULL;
        errno = 0;
        unsigned long long days = strtoull(text, &end, 10);
        if (errno != 0 || end != text + n - 1 || days > FL_SERVE_AGE_MAX_DAYS)
            return -EINVAL;
        *ms = days * 86400ull * 1000;
        return 0;
    }
    return fl_parse_duration(text, ms) < 0 ? -EINVAL : 0;
}

/* One value, from the file (n set) or a flag (n NULL): the same checks. */
static int set_value(struct fl_serve_config *c, const char *key, const char *v, char *err,
                     size_t errlen)
{
    if (strcmp(key, "experiments") == 0)
        return set_str(&c->experiments, v);
    if (strcmp(key, "inventory") == 0)
        return set_str(&c->inventory, v);
    if (strcmp(key, "key_file") == 0)
        return set_str(&c->key_file, v);
    if (strcmp(key, "reports_dir") == 0)
        return set_str(&c->reports_dir, v);
    if (strcmp(key, "db") == 0) {
        if (strncmp(v, "sqlite:", 7) != 0 || v[7] == '\0') {
            snprintf(err, errlen,
                     "db: '%s' is not a database URL this build knows: use sqlite:/PATH "
                     "(PostgreSQL is not built yet)",
                     v);
            return -EINVAL;
        }
        return set_str(&c->db, v);
    }
    if (strcmp(key, "listen_http") == 0) {
        char host[64];
        uint16_t port;
        if (strcmp(v, "off") != 0 && fl_serve_listen_parse(v, host, sizeof(host), &port) < 0) {
            snprintf(err, errlen,
                     "listen_http: '%s' is not ADDRESS:PORT (an IP literal and a port "
                     "1-65535, e.g. 127.0.0.1:9411), nor off",
                     v);
            return -EINVAL;
        }
        return set_str(&c->listen_http, v);
    }
    if (strcmp(key, "listen_control") == 0) {
        char host[64];
        uint16_t port;
        if (strcmp(v, "off") != 0 && fl_serve_listen_parse(v, host, sizeof(host), &port) < 0) {
            snprintf(err, errlen,
                     "listen_control: '%s' is not ADDRESS:PORT (an IP literal and a port "
                     "1-65535, e.g. 127.0.0.1:7412), nor off",
                     v);
            return -EINVAL;
        }
        return set_str(&c->listen_control, v);
    }
    if (strcmp(key, "timezone") == 0) {
        if (fl_tz_name_check(v, err, errlen) < 0)
            return -EINVAL;
        return set_str(&c->timezone, v);
    }
    if (strcmp(key, "max_concurrent_runs") == 0) {
        char *end = NULL;
        errno = 0;
        unsigned long n = strtoul(v, &end, 10);
        if (errno != 0 || end == v || *end != '\0' || v[0] == '-' || n < 1 ||
            n > FL_SERVE_MAX_CONCURRENT_MAX) {
            snprintf(err, errlen,
                     "max_concurrent_runs: '%s' is not a number from 1 to %d "
                     "(FL_SERVE_MAX_CONCURRENT_MAX: each run has a thread)",
                     v, FL_SERVE_MAX_CONCURRENT_MAX);
            return -EINVAL;
        }
        c->max_concurrent_runs = (unsigned)n;
        return 0;
    }
    if (strcmp(key, "retention.runs_per_experiment") == 0) {
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(v, &end, 10);
        if (errno != 0 || end == v || *end != '\0' || v[0] == '-' ||
            n > FL_SERVE_RETENTION_RUNS_MAX) {
            snprintf(err, errlen,
                     "retention.runs_per_experiment: '%s' is not a number from 0 (no limit) "
                     "to %d",
                     v, FL_SERVE_RETENTION_RUNS_MAX);
            return -EINVAL;
        }
        c->retention_runs = n;
        return 0;
    }
    if (strcmp(key, "retention.max_age") == 0) {
        uint64_t ms;
        if (fl_serve_parse_age(v, &ms) < 0) {
            snprintf(err, errlen,
                     "retention.max_age: '%s' is not a duration (e.g. 180d, 12h; 0 for no limit)",
                     v);
            return -EINVAL;
        }
        c->retention_age_ms = ms;
        return 0;
    }
    if (strcmp(key, "reload_on_change") == 0) {
        if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0) {
            c->reload_on_change = strcmp(v, "true") == 0;
            return 0;
        }
        snprintf(err, errlen, "reload_on_change: '%s' is not true or false", v);
        return -EINVAL;
    }
    if (strcmp(key, "webhooks") == 0) {
        snprintf(err, errlen,
                 "webhooks: a list of {url, events, timeout}: set it in the config "
                 "file (there is no flag for it)");
        return -EINVAL;
    }
    snprintf(err, errlen, "unknown key '%s'", key);
    return -EINVAL;
}

int fl_serve_config_set(struct fl_serve_config *c, const char *key, const char *value, char *err,
                        size_t errlen)
{
    char why[512] = "";
    int rc = set_value(c, key, value, why, sizeof(why));
    if (rc == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    else if (rc < 0)
        snprintf(err, errlen, "--%s: %s", key, why);
    return rc;
}

static int scalar(const struct fl_yaml_node *n, const char **out, char *err, size_t errlen)
{
    if (n->kind == FL_YAML_SCALAR && (n->quoted || n->len > 0) && strlen(n->text) == n->len) {
        *out = n->text;
        return 0;
    }
    return fl_yaml_errorf(n, err, errlen, "expected a single value (a string, number or duration)");
}

/* webhooks: [ {url, events?, timeout?} ], replacing any earlier list. */
static int load_webhooks(const struct fl_yaml_node *v, struct fl_serve_config *c, char *err,
                         size_t errlen)
{
    static const char *const keys[] = {"url", "events", "timeout", NULL};
    int rc = fl_yaml_expect(v, FL_YAML_SEQUENCE, err, errlen);
    if (rc < 0)
        return rc;
    if (v->n_items > FL_WEBHOOKS_MAX)
        return fl_yaml_errorf(v->items[FL_WEBHOOKS_MAX], err, errlen,
                              "more than %d webhooks (FL_WEBHOOKS_MAX); send them to one "
                              "relay instead",
                              FL_WEBHOOKS_MAX);
    struct fl_webhook_target *t = calloc(v->n_items ? v->n_items : 1, sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; rc == 0 && i < v->n_items; i++) {
        const struct fl_yaml_node *item = v->items[i];
        if ((rc = fl_yaml_expect(item, FL_YAML_MAPPING, err, errlen)) < 0 ||
            (rc = fl_yaml_check_keys(item, keys, err, errlen)) < 0)
            break;
        const struct fl_yaml_node *url = fl_yaml_get(item, "url");
        const char *text = NULL;
        if (url == NULL) {
            rc = fl_yaml_errorf(item, err, errlen, "a webhook needs url: (http:// or https://)");
            break;
        }
        if ((rc = fl_yaml_string(url, &text, err, errlen)) < 0)
            break;
        if (strncmp(text, "http://", 7) != 0 && strncmp(text, "https://", 8) != 0) {
            rc = fl_yaml_errorf(url, err, errlen, "'%s' is not an http:// or https:// URL", text);
            break;
        }
        struct fl_webhook_target *x = &t[n];
        x->events = FL_WEBHOOK_ALL_EVENTS;
        x->timeout_ms = FL_WEBHOOK_TIMEOUT_DEFAULT_MS;
        const struct fl_yaml_node *ev = fl_yaml_get(item, "events");
        if (ev != NULL) {
            const char *names[FL_WEBHOOK_N_EVENTS * 2];
            size_t k = 0;
            if ((rc = fl_yaml_strings(ev, names, FL_WEBHOOK_N_EVENTS * 2, &k, err, errlen)) < 0)
                break;
            x->events = 0;
            for (size_t e = 0; rc == 0 && e < k; e++) {
                unsigned bit = fl_webhook_event_parse(names[e]);
                if (bit == 0)
                    rc = fl_yaml_errorf(ev->items[e], err, errlen,
                                        "unknown webhook event '%s' (known: fail, aborted, "
                                        "regression, recovered, freeze, thaw)",
                                        names[e]);
                x->events |= bit;
            }
            if (rc == 0 && x->events == 0)
                rc = fl_yaml_errorf(ev, err, errlen,
                                    "events: is empty: list at least one event, or leave the "
                                    "key out for all of them");
            if (rc < 0)
                break;
        }
        const struct fl_yaml_node *to = fl_yaml_get(item, "timeout");
        if (to != NULL) {
            if ((rc = fl_yaml_duration(to, &x->timeout_ms, err, errlen)) < 0)
                break;
            if (x->timeout_ms < 1 || x->timeout_ms > FL_WEBHOOK_TIMEOUT_MAX_MS) {
                rc = fl_yaml_errorf(to, err, errlen,
                                    "timeout must be from 1ms to %d s "
                                    "(FL_WEBHOOK_TIMEOUT_MAX_MS)",
                                    FL_WEBHOOK_TIMEOUT_MAX_MS / 1000);
                break;
            }
        }
        if ((x->url = strdup(text)) == NULL) {
            rc = -ENOMEM;
            break;
        }
        n++;
    }
    if (rc < 0) {
        for (size_t i = 0; i < n; i++)
            free(t[i].url);
        free(t);
        return rc;
    }
    for (size_t i = 0; i < c->n_webhooks; i++)
        free(c->webhooks[i].url);
    free(c->webhooks);
    c->webhooks = t;
    c->n_webhooks = n;
    return 0;
}

int fl_serve_config_load(const char *path, struct fl_serve_config *c, char *err, size_t errlen)
{
    struct fl_yaml_doc *doc = NULL;
    int rc = fl_yaml_load_file(path, &doc, err, errlen);
    if (rc < 0)
        return rc;
    static const char *const keys[] = {
        "experiments", "inventory",      "key_file", "db",
        "reports_dir", "listen_http",    "timezone", "max_concurrent_runs",
        "retention",   "listen_control", "webhooks", "reload_on_change",
        NULL};
    static const char *const retention_keys[] = {"runs_per_experiment", "max_age", NULL};
    const struct fl_yaml_node *root = doc->root;
    if (root == NULL) {
        snprintf(err, errlen, "%s:1:1: the file is empty: serve needs at least experiments:", path);
        rc = -EINVAL;
    } else if ((rc = fl_yaml_expect(root, FL_YAML_MAPPING, err, errlen)) == 0) {
        rc = fl_yaml_check_keys(root, keys, err, errlen);
    }
    for (size_t i = 0; rc == 0 && i < root->n_pairs; i++) {
        const char *key = root->pairs[i].key->text;
        const struct fl_yaml_node *v = root->pairs[i].value;
        if (strcmp(key, "retention") == 0) {
            rc = fl_yaml_expect(v, FL_YAML_MAPPING, err, errlen);
            if (rc == 0)
                rc = fl_yaml_check_keys(v, retention_keys, err, errlen);
            for (size_t j = 0; rc == 0 && j < v->n_pairs; j++) {
                char full[64];
                const char *text = NULL;
                snprintf(full, sizeof(full), "retention.%s", v->pairs[j].key->text);
                rc = scalar(v->pairs[j].value, &text, err, errlen);
                char why[512];
                if (rc == 0 && (rc = set_value(c, full, text, why, sizeof(why))) == -EINVAL)
                    fl_yaml_errorf(v->pairs[j].value, err, errlen, "%s", why);
            }
            continue;
        }
        const char *text = NULL;
        char why[512];
        if (strcmp(key, "webhooks") == 0) {
            rc = load_webhooks(v, c, err, errlen);
            continue;
        }
        rc = scalar(v, &text, err, errlen);
        if (rc == 0 && (rc = set_value(c, key, text, why, sizeof(why))) == -EINVAL)
            fl_yaml_errorf(v, err, errlen, "%s", why);
    }
    if (rc == -ENOMEM)
        snprintf(err, errlen, "%s: out of memory", path);
    fl_yaml_free(&doc);
    return rc;
}

int fl_serve_config_check(const struct fl_serve_config *c, char *err, size_t errlen)
{
    if (c->experiments == NULL) {
        snprintf(err, errlen,
                 "no experiments directory: set experiments: in the config or --experiments DIR");
        return -EINVAL;
    }
    return 0;
}
