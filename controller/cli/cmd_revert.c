/* faultline revert HOST (FAULT_ID | --all), and faultline halt HOST...:
 * faults ended by hand. halt is revert --all on every agent named, for the
 * moment a game day has to stop now. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/pbutil.h"
#include "common/units.h"
#include "controller/cli/cli.h"
#include "controller/experiment/experiment.h"
#include "controller/report/faultprint.h"
#include "controller/client/oneshot.h"

static const char revert_help[] =
    "usage: faultline revert [--key FILE] [--timeout DURATION] HOST (FAULT_ID | --all)\n"
    "\n"
    "Reverts one fault on the agent at HOST (the id `faultline inject` printed,\n"
    "or that `faultline agents` lists), or with --all every fault it holds.\n"
    "Reverting a fault that already ended is a success.\n";

static const char halt_help[] =
    "usage: faultline halt [--key FILE] [--timeout DURATION] (HOST... | --inventory FILE)\n"
    "\n"
    "Reverts every fault on every agent named, or on every host of the\n"
    "inventory, now, and lists what was reverted. The key comes from --key,\n"
    "$FAULTLINE_KEY, or the inventory's key_file. Exit status 0 when every\n"
    "agent confirmed, 2 otherwise.\n";

struct revert_req {
    const char *fault_id; /* NULL: all */
    bool halt;
};

static void build_revert(struct fl_oneshot_target *t, Faultline__Envelope *req, void *ctx)
{
    static Faultline__RevertRequest rr;
    static Faultline__HaltRequest hr;
    const struct revert_req *r = ctx;
    (void)t;
    if (r->halt) {
        faultline__halt_request__init(&hr);
        req->msg_case = FAULTLINE__ENVELOPE__MSG_HALT;
        req->halt = &hr;
        return;
    }
    faultline__revert_request__init(&rr);
    rr.all = r->fault_id == NULL;
    if (r->fault_id)
        rr.fault_id = fl_pb_str(r->fault_id);
    req->msg_case = FAULTLINE__ENVELOPE__MSG_REVERT;
    req->revert = &rr;
}

static void print_reverted(struct fl_oneshot_target *t, const Faultline__Envelope *reply, void *ctx)
{
    (void)ctx;
    const Faultline__FaultList *list =
        reply->msg_case == FAULTLINE__ENVELOPE__MSG_HALTED     ? reply->halted
        : reply->msg_case == FAULTLINE__ENVELOPE__MSG_REVERTED ? reply->reverted
                                                               : NULL;
    if (list == NULL) {
        t->status = -1;
        snprintf(t->error, sizeof(t->error), "unexpected reply");
        return;
    }
    int bad = 0;
    printf("%s: %zu fault(s) ended\n", t->spec, list->n_faults);
    for (size_t i = 0; i < list->n_faults; i++) {
        fl_print_fault(stdout, "    ", list->faults[i]);
        if (list->faults[i]->state == FAULTLINE__FAULT_STATE__FAULT_STATE_FAILED)
            bad++;
    }
    if (bad > 0) {
        t->status = -1;
        snprintf(t->error, sizeof(t->error),
                 "%d fault(s) could NOT be reverted: see the agent's log", bad);
    }
}

static int run(const char *cmd, const char *help, int argc, char **argv, bool halt)
{
    static const struct option options[] = {
        {"key", required_argument, NULL, 'k'}, {"timeout", required_argument, NULL, 't'},
        {"all", no_argument, NULL, 'a'},       {"inventory", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0},
    };
    const char *key_path = NULL, *inventory = NULL;
    uint64_t timeout_ms = 30000; /* a revert may wait for a disk fill to be removed */
    bool all = false;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'k':
            key_path = optarg;
            break;
        case 't':
            if (fl_cli_timeout(cmd, optarg, &timeout_ms) != 0)
                return FL_EXIT_USAGE;
            break;
        case 'a':
            if (halt)
                return fl_cli_usage_error(cmd, "unknown option --all");
            all = true;
            break;
        case 'i':
            if (!halt)
                return fl_cli_usage_error(cmd, "unknown option --inventory");
            inventory = optarg;
            break;
        case 'h':
            fputs(help, stdout);
            return 0;
        default:
            return fl_cli_usage_error(cmd, "unknown option");
        }
    }
    int n = argc - optind;
    struct revert_req req = {NULL, halt};
    char **hosts = argv + optind;
    char **from_inventory = NULL;
    struct fl_experiment *inv = NULL;
    if (halt) {
        if ((n < 1) == (inventory == NULL))
            return fl_cli_usage_error(cmd, "name HOSTs or --inventory FILE (one of them)");
        if (inventory != NULL) {
            int irc = fl_cli_inventory_hosts(cmd, inventory, &inv, &from_inventory, &n);
            if (irc != 0)
                return irc;
            hosts = from_inventory;
            key_path = fl_cli_key_path(key_path, inv->inventory.key_file);
        }
    } else {
        if (n != (all ? 1 : 2))
            return fl_cli_usage_error(cmd, "takes HOST and FAULT_ID, or HOST --all");
        req.fault_id = all ? NULL : argv[optind + 1];
        n = 1;
    }
    static const struct fl_oneshot_ops ops = {build_revert, print_reverted};
    struct fl_oneshot_target *targets;
    int failed;
    int rc = fl_cli_oneshot(cmd, hosts, n, key_path, timeout_ms, &ops, &req, &targets, &failed);
    if (rc != 0) {
        fl_cli_free_specs(from_inventory);
        fl_experiment_free(&inv);
        return rc;
    }
    fflush(stdout);
    for (int i = 0; i < n; i++)
        if (targets[i].status != 0)
            fprintf(stderr, "faultline %s: %s: %s\n", cmd, targets[i].spec, targets[i].error);
    free(targets);
    fl_cli_free_specs(from_inventory);
    fl_experiment_free(&inv);
    return failed > 0 ? FL_EXIT_ERROR : 0;
}

int fl_cmd_revert(int argc, char **argv)
{
    return run("revert", revert_help, argc, argv, false);
}

int fl_cmd_halt(int argc, char **argv)
{
    return run("halt", halt_help, argc, argv, true);
}
