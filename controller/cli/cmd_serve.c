/* faultline serve --config FILE [--KEY VALUE ...]: the daemon that runs
 * scheduled experiments (controller/serve/, issue 16). Logs to stderr.
 * Exit status: 0 after SIGTERM/SIGINT (every run aborted, reverted and
 * recorded), 2 when it cannot start, 64 usage or an invalid config. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "controller/cli/cli.h"
#include "controller/serve/catalog.h"
#include "controller/serve/config.h"
#include "controller/serve/metrics.h"
#include "controller/serve/runner.h"
#include "controller/serve/scheduler.h"
#include "controller/serve/store.h"

static const char serve_help[] =
    "usage: faultline serve [--config FILE] [--experiments DIR] [--inventory FILE]\n"
    "                       [--key-file FILE] [--db URL] [--reports-dir DIR]\n"
    "                       [--listen-http ADDR:PORT|off] [--listen-control ADDR:PORT|off]\n"
    "                       [--max-concurrent-runs N]\n"
    "                       [--retention-runs N] [--retention-max-age DURATION]\n"
    "                       [--timezone ZONE] [--reload-on-change true|false]\n"
    "                       [--verbose]\n"
    "\n"
    "Runs every experiment in the experiments directory that has a schedule:\n"
    "block, each exactly as `faultline run` would, and keeps their history in\n"
    "the database (see `faultline history`). Flags override the config file.\n"
    "\n"
    "  --config FILE            YAML with the keys below (underscores)\n"
    "  --experiments DIR        *.yaml files; those with schedule: are run\n"
    "  --inventory FILE         hosts for every experiment instead of their own\n"
    "  --key-file FILE          pre-shared key; default $FAULTLINE_KEY, then each\n"
    "                           inventory's key_file\n"
    "  --db URL                 default " FL_SERVE_DEFAULT_DB "\n"
    "  --reports-dir DIR        run.json, junit.xml in DIR/EXPERIMENT/RUN_ID/;\n"
    "                           default " FL_SERVE_DEFAULT_REPORTS_DIR "\n"
    "  --listen-http ADDR:PORT  /metrics; default " FL_SERVE_DEFAULT_LISTEN_HTTP "\n"
    "  --listen-control ADDR:PORT  faultline freeze/thaw/pause/resume/run-now and\n"
    "                           history --server, authenticated with the key file;\n"
    "                           default " FL_SERVE_DEFAULT_LISTEN_CONTROL "\n"
    "  --max-concurrent-runs N  default 1\n"
    "  --retention-runs N       rows kept per experiment; default 1000 (0: no limit)\n"
    "  --retention-max-age D    default 180d (0: no limit)\n"
    "  --timezone ZONE          for schedules without one; default the machine's\n"
    "  --reload-on-change B     reload when a file in DIR changes; default true\n"
    "                           (SIGHUP always reloads)\n"
    "  webhooks: [...]          config file only: POSTs on fail, aborted,\n"
    "                           regression, recovered, freeze, thaw\n"
    "\n"
    "SIGTERM/SIGINT abort and revert every running experiment, record them\n"
    "ABORTED (\"server stopping\") and exit 0.\n";

int fl_cmd_serve(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"experiments", required_argument, NULL, 1},
        {"inventory", required_argument, NULL, 1},
        {"key-file", required_argument, NULL, 1},
        {"db", required_argument, NULL, 1},
        {"reports-dir", required_argument, NULL, 1},
        {"listen-http", required_argument, NULL, 1},
        {"listen-control", required_argument, NULL, 1},
        {"max-concurrent-runs", required_argument, NULL, 1},
        {"retention-runs", required_argument, NULL, 1},
        {"retention-max-age", required_argument, NULL, 1},
        {"timezone", required_argument, NULL, 1},
        {"reload-on-change", required_argument, NULL, 1},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    /* flags are applied after the file, in order */
    const char *flag_keys[32], *flag_values[32];
    size_t n_flags = 0;
    const char *config_path = NULL;
    bool verbose = false;
    int opt, idx = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", options, &idx)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'v':
            verbose = true;
            break;
        case 'h':
            fputs(serve_help, stdout);
            return 0;
        case 1:
            if (n_flags == sizeof(flag_keys) / sizeof(flag_keys[0]))
                return fl_cli_usage_error("serve", "too many flags");
            flag_keys[n_flags] = options[idx].name;
            flag_values[n_flags++] = optarg;
            break;
        default:
            return fl_cli_usage_error("serve", "unknown option");
        }
    }
    if (optind != argc)
        return fl_cli_usage_error("serve", "takes no arguments, only --config and flags");
    fl_log_set_level(verbose ? FL_LOG_DEBUG : FL_LOG_INFO);

    char err[2048];
    struct fl_serve_config c;
    if (fl_serve_config_defaults(&c) < 0) {
        fprintf(stderr, "faultline serve: out of memory\n");
        return FL_EXIT_ERROR;
    }
    int rc = config_path ? fl_serve_config_load(config_path, &c, err, sizeof(err)) : 0;
    if (rc < 0) {
        fprintf(stderr, "faultline serve: %s\n", err);
        fl_serve_config_free(&c);
        return FL_EXIT_USAGE;
    }
    for (size_t i = 0; i < n_flags; i++) {
        char key[64];
        const char *name = flag_keys[i];
        if (strcmp(name, "retention-runs") == 0)
            name = "retention.runs_per_experiment";
        else if (strcmp(name, "retention-max-age") == 0)
            name = "retention.max_age";
        snprintf(key, sizeof(key), "%s", name);
        for (char *p = key; *p; p++)
            if (*p == '-')
                *p = '_';
        if (fl_serve_config_set(&c, key, flag_values[i], err, sizeof(err)) < 0) {
            fprintf(stderr, "faultline serve: %s\n", err);
            fl_serve_config_free(&c);
            return FL_EXIT_USAGE;
        }
    }
    if (fl_serve_config_check(&c, err, sizeof(err)) < 0) {
        fprintf(stderr, "faultline serve: %s\n", err);
        fl_serve_config_free(&c);
        return FL_EXIT_USAGE;
    }
    int exit_code = FL_EXIT_ERROR;
    struct fl_catalog cat;
    fl_store *store = NULL;
    struct fl_metrics *metrics = NULL;
    char *why = NULL;
    if (fl_catalog_load(c.experiments, c.inventory, &cat, err, sizeof(err)) < 0) {
        fprintf(stderr, "faultline serve: %s\n", err);
        fl_serve_config_free(&c);
        return FL_EXIT_USAGE;
    }
    fl_info("%s: %zu scheduled, %zu without a schedule, %zu invalid", c.experiments, cat.n,
            cat.n_unscheduled, cat.n_invalid);
    /* Two runs with http probes at once are fine: http.c keeps one curl multi
     * per loop and curl_global_init runs once (issue 12 item 4). */
    int drc = 0;
    if ((drc = fl_serve_mkdirs(c.reports_dir)) < 0) {
        fprintf(stderr, "faultline serve: reports_dir: cannot create %s: %s\n", c.reports_dir,
                strerror(-drc));
    } else if ((store = fl_store_open(c.db, &why)) == NULL) {
        fprintf(stderr, "faultline serve: %s\n", why ? why : "cannot open the database");
    } else if ((metrics = fl_metrics_new()) == NULL) {
        fprintf(stderr, "faultline serve: out of memory\n");
    } else {
        if (fl_scheduler_run(&c, &cat, store, metrics, err, sizeof(err)) < 0)
            fprintf(stderr, "faultline serve: %s\n", err);
        else
            exit_code = 0;
    }
    free(why);
    fl_metrics_free(metrics);
    fl_store_close(store);
    fl_catalog_free(&cat);
    fl_serve_config_free(&c);
    return exit_code;
}
