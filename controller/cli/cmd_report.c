/* faultline report [--out DIR] [--format html|json] RUN_DIR...: one summary
 * page over many run folders (controller/report/summary.h). A folder without
 * report.html gets one (rendered from its run.json). Exit status: 0 written,
 * 2 when a folder could not be read (the page still holds the others) or the
 * page could not be written, 64 usage. */
#include <errno.h>
#include <getopt.h>
#include <glob.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "controller/cli/cli.h"
#include "controller/report/html.h"
#include "controller/report/report.h"
#include "controller/report/summary.h"

static const char report_help[] =
    "usage: faultline report [--out DIR] [--format html|json] RUN_DIR...\n"
    "\n"
    "One summary over many runs (a game day, a quarter): a table of runs\n"
    "(experiment, when, verdict, recovery +- resolution, RPO, a link to each\n"
    "report.html) and, per experiment, a trend chart of recovery time with the\n"
    "RTO line and regressions (faultline serve's rule: slower than the median of\n"
    "the last 10 passing runs by more than 20 % and more than two resolutions).\n"
    "RUN_DIR is a folder holding run.json (from `faultline run --report-dir`);\n"
    "quoted globs are expanded. A folder without report.html gets one.\n"
    "\n"
    "options:\n"
    "  --out DIR        write DIR/index.html (html) or DIR/summary.json (json);\n"
    "                   default: index.html in the current folder, JSON on stdout\n"
    "  --format FORMAT  html (default) or json\n"
    "\n"
    "Exit status: 0 written, 2 a folder could not be read or the page not\n"
    "written, 64 usage.\n";

/* Appends the folders arg names (a glob when it has wildcards). */
static int add_dirs(const char *arg, char ***dirs, size_t *n)
{
    glob_t g;
    memset(&g, 0, sizeof(g));
    bool wild = strpbrk(arg, "*?[") != NULL;
    size_t count = 1;
    if (wild) {
        int rc = glob(arg, 0, NULL, &g);
        if (rc == GLOB_NOMATCH) {
            fprintf(stderr, "faultline report: %s matches no folder\n", arg);
            return -ENOENT;
        }
        if (rc != 0)
            return -ENOMEM;
        count = g.gl_pathc;
    }
    char **grown = realloc(*dirs, (*n + count) * sizeof(**dirs));
    if (grown == NULL) {
        if (wild)
            globfree(&g);
        return -ENOMEM;
    }
    *dirs = grown;
    for (size_t i = 0; i < count; i++)
        (*dirs)[(*n)++] = strdup(wild ? g.gl_pathv[i] : arg);
    if (wild)
        globfree(&g);
    return 0;
}

int fl_cmd_report(int argc, char **argv)
{
    static const struct option options[] = {
        {"out", required_argument, NULL, 'o'},
        {"format", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL;
    bool json = false;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'o':
            out = optarg;
            break;
        case 'f':
            if (strcmp(optarg, "json") == 0)
                json = true;
            else if (strcmp(optarg, "html") != 0)
                return fl_cli_usage_error("report", "--format is html or json, not '%s'", optarg);
            break;
        case 'h':
            fputs(report_help, stdout);
            return 0;
        default:
            return fl_cli_usage_error("report", "unknown option");
        }
    }
    if (optind >= argc)
        return fl_cli_usage_error("report", "takes at least one RUN_DIR");
    if (out != NULL && mkdir(out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "faultline report: cannot create %s: %s\n", out, strerror(errno));
        return FL_EXIT_ERROR;
    }
    const char *out_dir = out != NULL ? out : ".";
    int exit_code = 0;
    char **dirs = NULL;
    size_t n = 0;
    for (int i = optind; i < argc; i++)
        if (add_dirs(argv[i], &dirs, &n) < 0)
            exit_code = FL_EXIT_ERROR;
    char err[1024];
    /* a run folder without report.html (an older run) gets one */
    for (size_t i = 0; i < n; i++) {
        char page[4200];
        snprintf(page, sizeof(page), "%s/report.html", dirs[i] ? dirs[i] : "");
        if (dirs[i] != NULL && access(page, F_OK) != 0) {
            char run[4200];
            snprintf(run, sizeof(run), "%s/run.json", dirs[i]);
            if (access(run, F_OK) == 0 && fl_report_html_dir(dirs[i], err, sizeof(err)) < 0) {
                fprintf(stderr, "faultline report: %s\n", err);
                exit_code = FL_EXIT_ERROR;
            }
        }
    }
    struct fl_summary s;
    int left_out = fl_summary_load(&s, dirs, n, out_dir, stderr);
    if (left_out != 0)
        exit_code = FL_EXIT_ERROR;
    struct fl_hbuf b = {0};
    int rc = left_out < 0 ? left_out : 0;
    if (rc == 0) {
        fl_summary_regressions(&s);
        rc = json ? fl_summary_json(&s, &b) : fl_summary_html(&s, &b);
    }
    if (rc < 0) {
        fprintf(stderr, "faultline report: out of memory\n");
        exit_code = FL_EXIT_ERROR;
    } else if (json && out == NULL) {
        if (fwrite(b.p, 1, b.len, stdout) != b.len || fflush(stdout) != 0)
            exit_code = FL_EXIT_ERROR;
    } else {
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s", out_dir, json ? "summary.json" : "index.html");
        if (fl_report_write_atomic(path, b.p, b.len, err, sizeof(err)) < 0) {
            fprintf(stderr, "faultline report: %s\n", err);
            exit_code = FL_EXIT_ERROR;
        } else {
            printf("%s\n", path);
        }
    }
    fl_hbuf_free(&b);
    fl_summary_free(&s);
    for (size_t i = 0; i < n; i++)
        free(dirs[i]);
    free(dirs);
    return exit_code;
}
