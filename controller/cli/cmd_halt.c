/* faultline halt (HOST... | --inventory FILE): every fault on every agent
 * named ended now, for the moment a game day has to stop. The request and
 * the listing of what ended are revert's (cmd_revert.h). */
#include <stdio.h>

#include "controller/cli/cli.h"
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
    /* a revert may wait for a disk fill to be removed */
    struct fl_cli_fleet f;
    int rc = fl_cli_fleet_args("halt", halt_help, 30000, argc, argv, &f);
    if (rc >= 0)
        return rc;
    static const struct fl_end_faults what = {.halt = true};
    rc = fl_cli_end_faults("halt", f.hosts, f.n, f.key_path, f.timeout_ms, &what);
    fl_cli_fleet_free(&f);
    return rc;
}
