/* faultline halt (HOST... | --inventory FILE): every fault on every agent
 * named ended now, for the moment a game day has to stop. The request and
 * the listing of what ended are revert's (cmd_revert.h). Each host is tried
 * until it confirms or the deadline passes; a host that did not confirm is
 * never a silent partial success. */
#include <stdio.h>

#include "controller/cli/cli.h"
#include "controller/cli/cmd_revert.h"

/* Each try waits this long: a revert may wait for a disk fill to be removed. */
#define HALT_TIMEOUT_MS 30000
/* Every host is tried again until it confirms, for this long in all. */
#define HALT_DEADLINE_MS 60000

static const char halt_help[] =
    "usage: faultline halt [--key FILE] [--timeout DURATION] [--deadline DURATION]\n"
    "                      (HOST... | --inventory FILE)\n"
    "\n"
    "Reverts every fault on every agent named, or on every host of the\n"
    "inventory, now, and lists what was reverted. A host that does not confirm\n"
    "(unreachable, timed out, a revert that failed) is tried again, 200ms then\n"
    "doubling to 2s apart, until it confirms or the deadline passes. Any number\n"
    "of hosts: a window of them at a time, sized from the descriptor limit.\n"
    "The key comes from --key, $FAULTLINE_KEY, or the inventory's key_file.\n"
    "\n"
    "options:\n"
    "  --timeout DURATION    for each try: connecting, then the reply (default 30s)\n"
    "  --deadline DURATION   for the whole halt, retries included (default 60s)\n"
    "\n"
    "Exit status 0 when every agent confirmed; 2 otherwise, after listing on\n"
    "stderr every host that did NOT confirm and why.\n";

int fl_cmd_halt(int argc, char **argv)
{
    struct fl_cli_fleet f;
    int rc =
        fl_cli_fleet_args("halt", halt_help, HALT_TIMEOUT_MS, HALT_DEADLINE_MS, argc, argv, &f);
    if (rc >= 0)
        return rc;
    static const struct fl_end_faults what = {.halt = true};
    const struct fl_oneshot_opts o = {
        .timeout_ms = f.timeout_ms, .deadline_ms = f.deadline_ms, .retry = true};
    rc = fl_cli_end_faults("halt", f.hosts, f.n, f.key_path, &o, &what);
    fl_cli_fleet_free(&f);
    return rc;
}
