/* What `faultline revert` (cmd_revert.c) and `faultline halt` (cmd_halt.c)
 * share: ending faults on agents, listing what each agent ended, and the
 * exit status that follows. */
#ifndef FL_CONTROLLER_CLI_CMD_REVERT_H
#define FL_CONTROLLER_CLI_CMD_REVERT_H

#include <stdbool.h>
#include <stdint.h>

#include "controller/client/oneshot.h"

/* Which faults each agent ends. */
struct fl_end_faults {
    bool halt;            /* a HaltRequest: every fault, now (fault_id unused) */
    const char *fault_id; /* a RevertRequest for this fault; NULL: for all */
};

/* Sends what to the agent at each of hosts[0..n) (ADDRESS[:PORT]) through
 * the fleet fan-out (o: each try's timeout, the deadline, whether to retry),
 * prints on stdout the faults each one reports ended and, for several hosts,
 * a summary line; names on stderr, under a loud heading, every host that did
 * not confirm and why. Returns the exit status: 0 when every agent
 * confirmed, FL_EXIT_ERROR otherwise, or the exit code of a bad host or key
 * (fl_cli_oneshot). */
int fl_cli_end_faults(const char *cmd, char *const *hosts, int n, const char *key_path,
                      const struct fl_oneshot_opts *o, const struct fl_end_faults *what);

#endif
