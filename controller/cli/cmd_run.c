/* faultline run EXPERIMENT [--inventory F] [--report-dir D] [--dry-run]:
 * one experiment, live progress on stdout, a summary at the end, and the
 * reports in D. Exit status: 0 pass, 1 fail, 2 aborted or error, 64 usage or
 * an invalid experiment. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "controller/cli/cli.h"
#include "controller/experiment/experiment.h"
#include "controller/probes/pool.h"
#include "controller/report/html.h"
#include "controller/report/report.h"
#include "controller/run/run.h"

/* mkdir -p: the report directory and any missing parents. 0 or a negative
 * errno. */
static int make_dirs(const char *path)
{
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0)
        return -ENOENT;
    if (len >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -errno;
    struct stat st;
    if (stat(buf, &st) != 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    return 0;
}

static const char run_help[] =
    "usage: faultline run [--key FILE] [--inventory FILE] [--report-dir DIR] [--dry-run]\n"
    "                     [--probe-threads N] EXPERIMENT\n"
    "\n"
    "Runs an experiment: connects to the target agents, checks the steady state,\n"
    "injects the faults on schedule, watches the probes, aborts on abort_when,\n"
    "SIGINT or SIGTERM, reverts every fault, waits for recovery, and reports\n"
    "PASS, FAIL or ABORTED with the recovery time it observed.\n"
    "\n"
    "options:\n"
    "  --key FILE          pre-shared key; default $FAULTLINE_KEY, then the\n"
    "                      inventory's key_file\n"
    "  --inventory FILE    hosts from FILE instead of the experiment's inventory\n"
    "  --report-dir DIR    write run.json, junit.xml, report.html there (created if\n"
    "                      missing)\n"
    "  --dry-run           connect, check the steady state, print what would be\n"
    "                      injected where; inject nothing\n"
    "  --probe-threads N   run the http and tcp probes on N threads (1 to 16);\n"
    "                      default the experiment's controller: probe_threads,\n"
    "                      else chosen by the probing's load: 1 (one loop, no\n"
    "                      threads) up to half a core, then up to min(CPUs, 4)\n"
    "\n"
    "Exit status: 0 pass, 1 fail, 2 aborted or error, 64 usage or invalid experiment.\n";

int fl_cmd_run(int argc, char **argv)
{
    static const struct option options[] = {
        {"key", required_argument, NULL, 'k'},
        {"inventory", required_argument, NULL, 'i'},
        {"report-dir", required_argument, NULL, 'r'},
        {"dry-run", no_argument, NULL, 'n'},
        {"probe-threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *key_path = NULL, *inventory = NULL, *report_dir = NULL;
    bool dry_run = false;
    unsigned probe_threads = 0;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'k':
            key_path = optarg;
            break;
        case 'i':
            inventory = optarg;
            break;
        case 'r':
            report_dir = optarg;
            break;
        case 'n':
            dry_run = true;
            break;
        case 't': {
            char *end = NULL;
            errno = 0;
            unsigned long n = strtoul(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || n < 1 || n > FL_PROBE_THREADS_MAX)
                return fl_cli_usage_error("run", "--probe-threads takes a number from 1 to 16 "
                                                 "(FL_PROBE_THREADS_MAX)");
            probe_threads = (unsigned)n;
            break;
        }
        case 'h':
            fputs(run_help, stdout);
            return 0;
        default:
            return fl_cli_usage_error("run", "unknown option");
        }
    }
    if (argc - optind != 1)
        return fl_cli_usage_error("run", "takes one EXPERIMENT");

    char err[1024];
    struct fl_experiment *e = NULL;
    int rc = fl_cli_load_experiment(argv[optind], inventory, &e);
    if (rc != 0)
        return rc;
    struct fl_key key;
    int krc = fl_cli_load_key(fl_cli_key_path(key_path, e->inventory.key_file), &key);
    if (krc != 0) {
        fl_experiment_free(&e);
        return krc;
    }
    int drc = report_dir != NULL ? make_dirs(report_dir) : 0;
    if (drc < 0) {
        fprintf(stderr, "faultline run: cannot create %s: %s\n", report_dir, fl_strerror(drc));
        fl_key_wipe(&key);
        fl_experiment_free(&e);
        return FL_EXIT_ERROR;
    }

    struct fl_run_options o = {.dry_run = dry_run,
                               .progress = stdout,
                               .connect_timeout_ms = 5000,
                               .probe_threads = probe_threads};
    char attempts_path[4096];
    if (report_dir != NULL && !dry_run) {
        snprintf(attempts_path, sizeof(attempts_path), "%s/attempts.jsonl", report_dir);
        o.attempts_path = attempts_path;
    }
    struct fl_run_record rec;
    rc = fl_run(e, &key, &o, &rec);
    fl_key_wipe(&key);
    int exit_code = FL_EXIT_ERROR;
    if (rc < 0) {
        fprintf(stderr, "faultline run: cannot start the run: %s\n", fl_strerror(rc));
    } else if (dry_run && rec.abort_reason[0] == '\0') {
        printf("dry run: nothing was injected\n");
        exit_code = 0;
    } else {
        fputc('\n', stdout);
        fl_report_text(&rec, stdout);
        exit_code = fl_measure_exit_code(rec.verdict);
        if (report_dir != NULL) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/run.json", report_dir);
            bool json_ok = fl_report_json(&rec, path, err, sizeof(err)) == 0;
            if (!json_ok) {
                fprintf(stderr, "faultline run: %s\n", err);
                exit_code = FL_EXIT_ERROR;
            }
            snprintf(path, sizeof(path), "%s/junit.xml", report_dir);
            if (fl_report_junit(&rec, path, err, sizeof(err)) < 0) {
                fprintf(stderr, "faultline run: %s\n", err);
                exit_code = FL_EXIT_ERROR;
            }
            /* report.html is rendered from the run folder (run.json) alone:
             * never from a run.json an earlier run left there */
            if (json_ok && fl_report_html_dir(report_dir, err, sizeof(err)) < 0) {
                fprintf(stderr, "faultline run: %s\n", err);
                exit_code = FL_EXIT_ERROR;
            }
        }
    }
    if (rc == 0)
        fl_run_record_free(&rec);
    fl_experiment_free(&e);
    return exit_code;
}
