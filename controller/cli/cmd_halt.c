/* faultline halt (HOST... | --inventory FILE): every fault on every agent
 * named ended now, for the moment a game day has to stop. The request and
 * the listing of what ended are revert's (cmd_revert.h). */
#include <getopt.h>
#include <stdio.h>

#include "controller/cli/cli.h"
#include "controller/experiment/inventory.h"
#include "controller/cli/cmd_revert.h"

static const char halt_help[] =
    "usage: faultline halt [--key FILE] [--timeout DURATION] (HOST... | --inventory FILE)\n"
    "\n"
    "Reverts every fault on every agent named, or on every host of the\n"
    "inventory, now, and lists what was reverted. The key comes from --key,\n"
    "$FAULTLINE_KEY, or the inventory's key_file. Exit status 0 when every\n"
    "agent confirmed, 2 otherwise.\n";

int fl_cmd_halt(int argc, char **argv)
{
    static const struct option options[] = {
        {"key", required_argument, NULL, 'k'},
        {"timeout", required_argument, NULL, 't'},
        {"inventory", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *key_path = NULL, *inventory = NULL;
    uint64_t timeout_ms = 30000; /* a revert may wait for a disk fill to be removed */
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'k':
            key_path = optarg;
            break;
        case 't':
            if (fl_cli_timeout("halt", optarg, &timeout_ms) != 0)
                return FL_EXIT_USAGE;
            break;
        case 'i':
            inventory = optarg;
            break;
        case 'h':
            fputs(halt_help, stdout);
            return 0;
        default:
            return fl_cli_usage_error("halt", "unknown option");
        }
    }
    int n = argc - optind;
    if ((n < 1) == (inventory == NULL))
        return fl_cli_usage_error("halt", "name HOSTs or --inventory FILE (one of them)");
    static const struct fl_end_faults what = {.halt = true};
    if (inventory == NULL)
        return fl_cli_end_faults("halt", argv + optind, n, key_path, timeout_ms, &what);

    struct fl_inventory *inv = NULL;
    char **hosts = NULL;
    int rc = fl_cli_inventory_hosts("halt", inventory, &inv, &hosts, &n);
    if (rc != 0)
        return rc;
    rc = fl_cli_end_faults("halt", hosts, n, fl_cli_key_path(key_path, inv->key_file), timeout_ms,
                           &what);
    fl_cli_free_specs(hosts);
    fl_inventory_free(&inv);
    return rc;
}
