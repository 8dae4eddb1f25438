/* faultline deploy: install, upgrade or remove agents on an inventory's hosts
 * over SSH (controller/ssh/session.c).
 *
 * Each host is one job: its SSH work runs on libuv's thread pool, its
 * verification (an authenticated ping through the agent protocol) on the
 * loop, so hosts proceed in parallel and one failing host does not hold up
 * or stop the others. A line is printed for each host as it finishes, then a
 * summary.
 *
 * On each host, under its deploy_dir (default /opt/faultline):
 *     bin/faultline-agent   the binary (0755)
 *     faultline.key         the shared key (0600)
 *     agent.yaml            listen address and state_dir
 *     state/                the agent's journal (0700)
 *     agent.log             the agent's output (supervisor mode)
 *     run.sh, supervisor.pid, agent.pid   the supervisor (when systemd does not run)
 *     .faultline-deploy     what deploy created there: --uninstall removes only
 *                           that, and nothing in a directory without it
 * and with systemd, /etc/systemd/system/faultline-agent[-HASH].service.
 * Modes are set only on the directories deploy creates. deploy_dir is
 * absolute, not "/", without "." or ".." components, and one inventory may
 * not name the same (address, ssh port, deploy_dir) twice. */
#ifndef FL_CONTROLLER_DEPLOY_H
#define FL_CONTROLLER_DEPLOY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/key.h"

#define FL_DEPLOY_DEFAULT_DIR "/opt/faultline"

struct fl_inventory;

struct fl_deploy_opts {
    bool uninstall;
    bool accept_new_host_keys;
    uint64_t timeout_ms;      /* bounds each SSH step (connect, each command, each copy) */
    uint64_t verify_ms;       /* how long a started agent has to answer */
    const char *agent_binary; /* the local faultline-agent to copy */
    const char *key_path;     /* the shared key to copy */
    const struct fl_key *key; /* the same, loaded: for the verifying ping */
};

/* Runs every host of inv; prints one line per host and a summary to out.
 * Returns the number of hosts that failed, or a negative errno when nothing
 * could be started (err filled). */
int fl_deploy_run(const struct fl_inventory *inv, const struct fl_deploy_opts *o, FILE *out,
                  char *err, size_t errlen);

/* The command: faultline deploy --inventory F [...]. */
int fl_cmd_deploy(int argc, char **argv);

#endif
