/* What every faultline subcommand shares: exit codes, the key lookup, and
 * the command table. */
#ifndef FL_CONTROLLER_CLI_H
#define FL_CONTROLLER_CLI_H

#include <stdint.h>

#include "common/key.h"
#include "controller/client/oneshot.h"

/* Exit codes (docs/design.md section 6). */
enum {
    FL_EXIT_PASS = 0,
    FL_EXIT_FAIL = 1,
    FL_EXIT_ERROR = 2, /* aborted, unreachable, or any other error */
    FL_EXIT_USAGE = 64,
};

struct fl_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
};

/* Loads the key from --key (explicit may be NULL), else $FAULTLINE_KEY. Prints
 * the reason to stderr on failure. Returns 0, FL_EXIT_USAGE when no key was
 * named, or FL_EXIT_ERROR when it could not be loaded. */
int fl_cli_load_key(const char *explicit_path, struct fl_key *key);

/* Reports a usage error for cmd on stderr; returns FL_EXIT_USAGE. */
int fl_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --timeout DURATION: 0 with *ms set, or FL_EXIT_USAGE after saying why. */
int fl_cli_timeout(const char *cmd, const char *arg, uint64_t *ms);

/* Parses the HOST specs, loads the key, and runs one request on each agent
 * (fl_oneshot_run: through the fleet fan-out, any number of hosts). Returns
 * 0 with *targets (n entries; the caller frees it) and *failed set, or an
 * exit code after saying why on stderr. */
int fl_cli_oneshot(const char *cmd, char *const *specs, int n, const char *key_path,
                   const struct fl_oneshot_opts *o, const struct fl_oneshot_ops *ops, void *ctx,
                   struct fl_oneshot_target **targets, int *failed);

/* The key file to use: --key, else $FAULTLINE_KEY, else the inventory's
 * key_file (may be NULL). */
const char *fl_cli_key_path(const char *explicit_path, const char *inventory_key_file);

struct fl_experiment;
/* Loads an experiment (fl_experiment_load). Returns 0, or an exit code after
 * printing the FILE:LINE:COL message. */
int fl_cli_load_experiment(const char *path, const char *inventory, struct fl_experiment **e);

struct fl_inventory;
/* Loads an inventory file (fl_inventory_load) into *inv (free with
 * fl_inventory_free). Returns 0, or an exit code after printing
 * "faultline CMD: FILE:LINE:COL: ...". */
int fl_cli_load_inventory(const char *cmd, const char *path, struct fl_inventory **inv);

/* The hosts of an inventory file as "address:port" specs (NULL-terminated;
 * free with fl_cli_free_specs) and the inventory itself in *inv (free with
 * fl_inventory_free). Returns 0, or an exit code after saying why. */
int fl_cli_inventory_hosts(const char *cmd, const char *path, struct fl_inventory **inv,
                           char ***specs, int *n);
void fl_cli_free_specs(char **specs);

/* What a command over a set of agents was given:
 *   [--key FILE] [--timeout DURATION] [--deadline DURATION]
 *   (HOST... | --inventory FILE)
 * --timeout bounds each try of a host; --deadline the whole command (hosts
 * not reached by then are named as such, never as down).
 * With --inventory, hosts are its hosts' "address:port" specs, inv is the
 * inventory (hosts[i] is inv->hosts[i]) and the key falls back to its
 * key_file. */
struct fl_cli_fleet {
    const char *key_path;
    uint64_t timeout_ms;
    uint64_t deadline_ms;
    char **hosts;
    int n;
    struct fl_inventory *inv; /* NULL without --inventory */
    char **owned;             /* hosts, when made from the inventory */
};

/* Parses argv for cmd (help: its --help text; timeout_ms, deadline_ms: the
 * defaults).
 * Returns -1 when the command goes on with *f (free with
 * fl_cli_fleet_free), else the exit code to return at once (0 after --help,
 * FL_EXIT_USAGE, or a load error's code, each said on stderr). */
int fl_cli_fleet_args(const char *cmd, const char *help, uint64_t timeout_ms, uint64_t deadline_ms,
                      int argc, char **argv, struct fl_cli_fleet *f);
void fl_cli_fleet_free(struct fl_cli_fleet *f);

int fl_cmd_keygen(int argc, char **argv);
int fl_cmd_agents(int argc, char **argv);
int fl_cmd_validate(int argc, char **argv);
int fl_cmd_run(int argc, char **argv);
int fl_cmd_inject(int argc, char **argv);
int fl_cmd_revert(int argc, char **argv);
int fl_cmd_halt(int argc, char **argv);
int fl_cmd_report(int argc, char **argv);
int fl_cmd_serve(int argc, char **argv);
int fl_cmd_history(int argc, char **argv);
int fl_cmd_freeze(int argc, char **argv);
int fl_cmd_thaw(int argc, char **argv);
int fl_cmd_pause(int argc, char **argv);
int fl_cmd_resume(int argc, char **argv);
int fl_cmd_run_now(int argc, char **argv);

#endif
