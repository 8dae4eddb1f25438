/* What every faultline subcommand shares: usage errors, the key lookup, the
 * --timeout option, and one request to each of several agents. */
#include "controller/cli/cli.h"

#include <stdarg.h>
#include <getopt.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/units.h"
#include "controller/experiment/experiment.h"
#include "controller/experiment/inventory.h"

int fl_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "faultline %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see `faultline %s --help`)\n", cmd);
    return FL_EXIT_USAGE;
}

int fl_cli_load_key(const char *explicit_path, struct fl_key *key)
{
    const char *path = explicit_path ? explicit_path : getenv("FAULTLINE_KEY");
    if (path == NULL || *path == '\0') {
        fprintf(stderr, "faultline: no key: pass --key FILE or set FAULTLINE_KEY "
                        "(`faultline keygen FILE` writes one)\n");
        return FL_EXIT_USAGE;
    }
    char err[512];
    if (fl_key_load(path, key, err, sizeof(err)) < 0) {
        fprintf(stderr, "faultline: %s\n", err);
        return FL_EXIT_ERROR;
    }
    return 0;
}

int fl_cli_timeout(const char *cmd, const char *arg, uint64_t *ms)
{
    uint64_t v;
    if (fl_parse_duration(arg, &v) < 0 || v == 0)
        return fl_cli_usage_error(cmd, "--timeout '%s': expected a duration like 500ms or 3s", arg);
    *ms = v;
    return 0;
}

int fl_cli_oneshot(const char *cmd, char *const *specs, int n, const char *key_path,
                   const struct fl_oneshot_opts *o, const struct fl_oneshot_ops *ops, void *ctx,
                   struct fl_oneshot_target **targets, int *failed)
{
    struct fl_oneshot_target *t = calloc((size_t)n, sizeof(*t));
    if (t == NULL) {
        fprintf(stderr, "faultline %s: out of memory for %d hosts\n", cmd, n);
        return FL_EXIT_ERROR;
    }
    const char *bad = NULL;
    if (fl_oneshot_parse(specs, n, t, &bad) < 0) {
        free(t);
        return fl_cli_usage_error(cmd, "'%s' is not ADDRESS[:PORT]", bad);
    }
    struct fl_key key;
    int krc = fl_cli_load_key(key_path, &key);
    if (krc != 0) {
        free(t);
        return krc;
    }
    *failed = fl_oneshot_run(t, n, &key, o, ops, ctx);
    fl_key_wipe(&key);
    *targets = t;
    return 0;
}

const char *fl_cli_key_path(const char *explicit_path, const char *inventory_key_file)
{
    if (explicit_path != NULL)
        return explicit_path;
    const char *env = getenv("FAULTLINE_KEY");
    if (env != NULL && *env != '\0')
        return env;
    return inventory_key_file;
}

/* An invalid file is a usage error (64); running out of memory is not. */
static int load_exit_code(const char *cmd, int rc, const char *err)
{
    if (cmd != NULL)
        fprintf(stderr, "faultline %s: ", cmd);
    fprintf(stderr, "%s\n", err);
    return rc == -ENOMEM ? FL_EXIT_ERROR : FL_EXIT_USAGE;
}

int fl_cli_load_experiment(const char *path, const char *inventory, struct fl_experiment **e)
{
    char err[1024];
    int rc = fl_experiment_load(path, inventory, e, err, sizeof(err));
    return rc < 0 ? load_exit_code(NULL, rc, err) : 0;
}

int fl_cli_load_inventory(const char *cmd, const char *path, struct fl_inventory **inv)
{
    char err[1024];
    int rc = fl_inventory_load(path, inv, err, sizeof(err));
    return rc < 0 ? load_exit_code(cmd, rc, err) : 0;
}

int fl_cli_inventory_hosts(const char *cmd, const char *path, struct fl_inventory **inv,
                           char ***specs, int *n)
{
    int rc = fl_cli_load_inventory(cmd, path, inv);
    if (rc != 0)
        return rc;
    const struct fl_inventory *in = *inv;
    char **out = calloc(in->n_hosts + 1, sizeof(*out));
    for (size_t i = 0; out != NULL && i < in->n_hosts; i++) {
        char spec[300];
        fl_addr_join(in->hosts[i].address, in->hosts[i].port, spec, sizeof(spec));
        if ((out[i] = strdup(spec)) == NULL) {
            fl_cli_free_specs(out);
            out = NULL;
        }
    }
    if (out == NULL) {
        fprintf(stderr, "faultline %s: out of memory for %zu hosts\n", cmd, in->n_hosts);
        fl_inventory_free(inv);
        return FL_EXIT_ERROR;
    }
    *specs = out;
    *n = (int)in->n_hosts;
    return 0;
}

void fl_cli_free_specs(char **specs)
{
    for (size_t i = 0; specs != NULL && specs[i] != NULL; i++)
        free(specs[i]);
    free(specs);
}

int fl_cli_fleet_args(const char *cmd, const char *help, uint64_t timeout_ms, uint64_t deadline_ms,
                      int argc, char **argv, struct fl_cli_fleet *f)
{
    static const struct option options[] = {
        {"key", required_argument, NULL, 'k'},      {"timeout", required_argument, NULL, 't'},
        {"deadline", required_argument, NULL, 'd'}, {"inventory", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    memset(f, 0, sizeof(*f));
    f->timeout_ms = timeout_ms;
    f->deadline_ms = deadline_ms;
    const char *inventory = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'k':
            f->key_path = optarg;
            break;
        case 't':
            if (fl_cli_timeout(cmd, optarg, &f->timeout_ms) != 0)
                return FL_EXIT_USAGE;
            break;
        case 'd':
            if (fl_parse_duration(optarg, &f->deadline_ms) < 0 || f->deadline_ms == 0)
                return fl_cli_usage_error(
                    cmd, "--deadline '%s': expected a duration like 30s or 2m", optarg);
            break;
        case 'i':
            inventory = optarg;
            break;
        case 'h':
            fputs(help, stdout);
            return 0;
        default:
            return fl_cli_usage_error(cmd, "unknown option");
        }
    }
    f->n = argc - optind;
    if ((f->n <= 0) == (inventory == NULL))
        return fl_cli_usage_error(cmd, "name HOSTs or --inventory FILE (one of them)");
    f->hosts = argv + optind;
    if (inventory != NULL) {
        int rc = fl_cli_inventory_hosts(cmd, inventory, &f->inv, &f->owned, &f->n);
        if (rc != 0)
            return rc;
        f->hosts = f->owned;
        f->key_path = fl_cli_key_path(f->key_path, f->inv->key_file);
    }
    return -1;
}

void fl_cli_fleet_free(struct fl_cli_fleet *f)
{
    fl_cli_free_specs(f->owned);
    f->owned = NULL;
    f->hosts = NULL;
    fl_inventory_free(&f->inv);
}
