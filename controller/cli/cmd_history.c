/* faultline history [EXPERIMENT] [--since D] [--json] [--limit N] --db URL:
 * the history of scheduled runs, newest due time first, read from the
 * database `faultline serve` writes (controller/serve/store.h), or with
 * --server from serve itself through its control channel (cmd_control.h);
 * the same printing either way. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "common/units.h"
#include "controller/cli/cli.h"
#include "controller/cli/cmd_control.h"
#include "controller/serve/config.h"
#include "controller/serve/rowjson.h"
#include "controller/serve/store.h"

/* Rows printed when --limit is not given. */
#define FL_HISTORY_DEFAULT_LIMIT 100

static const char history_help[] =
    "usage: faultline history [EXPERIMENT] [--since DURATION] [--json] [--limit N]\n"
    "                         [--db URL | --server HOST[:PORT] [--key FILE]]\n"
    "\n"
    "Prints the runs and skipped due times of scheduled experiments, newest due\n"
    "time first, from the database faultline serve writes.\n"
    "\n"
    "  --db URL          default " FL_SERVE_DEFAULT_DB "\n"
    "  --server HOST[:PORT]  read it from a running faultline serve through its\n"
    "                    control channel (listen_control; port 7412 when\n"
    "                    omitted), authenticated with --key or $FAULTLINE_KEY\n"
    "  --since DURATION  only due times newer than that (e.g. 7d, 12h)\n"
    "  --limit N         at most N rows (default 100; 0: all)\n"
    "  --json            one JSON array, every field of every row\n";

static const char *when(int64_t ms, char *buf, size_t len)
{
    if (ms <= 0 || fl_format_rfc3339((uint64_t)ms, buf, len) < 0)
        snprintf(buf, len, "-");
    return buf;
}

static const char *dur(int64_t ms, char *buf, size_t len)
{
    if (ms < 0 || fl_format_duration((uint64_t)ms, buf, len) < 0)
        snprintf(buf, len, "-");
    return buf;
}

static int print_json(const fl_store_row *rows, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        json_t *o = fl_store_row_json(&rows[i]);
        if (o == NULL || json_array_append_new(arr, o) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    char *text = arr ? json_dumps(arr, JSON_INDENT(2)) : NULL;
    json_decref(arr);
    if (text == NULL) {
        fprintf(stderr, "faultline history: out of memory\n");
        return FL_EXIT_ERROR;
    }
    puts(text);
    free(text);
    return 0;
}

static void print_table(const fl_store_row *rows, size_t n)
{
    printf("%-24s %-20s %-8s %-9s %-16s %-10s %-10s %s\n", "DUE", "EXPERIMENT", "RUN", "STATE",
           "VERDICT", "RECOVERY", "FLAGS", "REASON");
    for (size_t i = 0; i < n; i++) {
        const fl_store_row *r = &rows[i];
        char a[64], b[32], id[24];
        snprintf(id, sizeof(id), "%lld", (long long)r->id);
        printf("%-24s %-20s %-8s %-9s %-16s %-10s %-10s %s\n", when(r->due_ms, a, sizeof(a)),
               r->experiment, strcmp(r->state, "skipped") == 0 ? "-" : id, r->state,
               r->verdict ? r->verdict : "-", dur(r->recovery_ms, b, sizeof(b)),
               r->flags ? r->flags : "-", r->reason ? r->reason : "");
    }
}

static int print_rows(fl_store_row *rows, size_t n, bool json)
{
    int rc = 0;
    if (json)
        rc = print_json(rows, n);
    else
        print_table(rows, n);
    fl_store_rows_free(rows, n);
    return rc;
}

static int from_server(const char *server, const char *key_path, const char *experiment,
                       int64_t since_ms, unsigned long limit, bool json)
{
    fl_store_row *rows = NULL;
    size_t n = 0;
    int rc = fl_cli_control_history("history", server, key_path, FL_CONTROL_CLI_TIMEOUT_MS,
                                    experiment, since_ms, limit, &rows, &n);
    if (rc != 0)
        return rc;
    return print_rows(rows, n, json);
}

int fl_cmd_history(int argc, char **argv)
{
    static const struct option options[] = {
        {"db", required_argument, NULL, 'd'},  {"since", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},      {"limit", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},      {"server", required_argument, NULL, 'S'},
        {"key", required_argument, NULL, 'k'}, {NULL, 0, NULL, 0},
    };
    const char *db = FL_SERVE_DEFAULT_DB, *server = NULL, *key_path = NULL;
    bool db_given = false;
    uint64_t since = 0;
    unsigned long limit = FL_HISTORY_DEFAULT_LIMIT;
    bool json = false;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'd':
            db = optarg;
            db_given = true;
            break;
        case 'S':
            server = optarg;
            break;
        case 'k':
            key_path = optarg;
            break;
        case 's':
            if (fl_serve_parse_age(optarg, &since) < 0)
                return fl_cli_usage_error("history", "--since: '%s' is not a duration (7d, 12h)",
                                          optarg);
            break;
        case 'l': {
            char *end = NULL;
            errno = 0;
            limit = strtoul(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-')
                return fl_cli_usage_error("history", "--limit: '%s' is not a number", optarg);
            break;
        }
        case 'j':
            json = true;
            break;
        case 'h':
            fputs(history_help, stdout);
            return 0;
        default:
            return fl_cli_usage_error("history", "unknown option");
        }
    }
    if (argc - optind > 1)
        return fl_cli_usage_error("history", "takes at most one EXPERIMENT");
    const char *experiment = optind < argc ? argv[optind] : NULL;
    if (server != NULL && db_given)
        return fl_cli_usage_error("history", "--db and --server: one or the other");
    if (server == NULL && key_path != NULL)
        return fl_cli_usage_error("history", "--key goes with --server");
    int64_t since_ms = since ? (int64_t)fl_now_ms() - (int64_t)since : 0;
    if (server != NULL)
        return from_server(server, key_path, experiment, since_ms, limit, json);
    /* a read: never create an empty database where serve has not made one */
    struct stat st;
    if (strncmp(db, "sqlite:", 7) == 0 && stat(db + 7, &st) != 0) {
        fprintf(stderr,
                "faultline history: no history database at %s: %s (faultline serve creates it)\n",
                db + 7, strerror(errno));
        return FL_EXIT_ERROR;
    }
    char *why = NULL;
    fl_store *s = fl_store_open(db, &why);
    if (s == NULL) {
        fprintf(stderr, "faultline history: %s\n", why ? why : "cannot open the database");
        free(why);
        return FL_EXIT_ERROR;
    }
    fl_store_row *rows = NULL;
    size_t n = 0;
    int rc = 0;
    if (fl_store_query_brief(s, experiment, since_ms, limit, 0, &rows, &n) != FL_STORE_OK) {
        fprintf(stderr, "faultline history: %s\n", fl_store_error(s));
        fl_store_rows_free(rows, n);
        rc = FL_EXIT_ERROR;
    } else {
        rc = print_rows(rows, n, json);
    }
    fl_store_close(s);
    return rc;
}
