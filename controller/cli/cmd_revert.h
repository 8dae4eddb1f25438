/* What `faultline revert` (cmd_revert.c) and `faultline halt` (cmd_halt.c)
 * share: ending faults on agents, listing what each agent ended, and the
 * exit status that follows. */
#ifndef FL_CONTROLLER_CLI_CMD_REVERT_H
#define FL_CONTROLLER_CLI_CMD_REVERT_H

#include <stdbool.h>
#include <stdint.h>

/* Which faults each agent ends. */
struct fl_end_faults {
    bool halt;            /* a HaltRequest: every fault, now (fault_id unused) */
    const char *fault_id; /* a RevertRequest for this fault; NULL: for all */
};

/* Sends what to the agent at each of hosts[0..n) (ADDRESS[:PORT]) in
 * parallel, prints on stdout the faults each one reports ended, and names on
 * stderr every agent that failed or could not revert a fault. Returns the
 * exit status: 0 when every agent confirmed, FL_EXIT_ERROR otherwise, or the
 * exit code of a bad host or key (fl_cli_oneshot). */
int fl_cli_end_faults(const char *cmd, char *const *hosts, int n, const char *key_path,
                      uint64_t timeout_ms, const struct fl_end_faults *what);

#endif
