/* faultline deploy --inventory F: install, upgrade or remove agents over SSH. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "controller/cli/cli.h"
#include "controller/deploy/deploy.h"
#include "controller/experiment/inventory.h"

static const char deploy_help[] =
    "usage: faultline deploy --inventory FILE [--uninstall] [--accept-new-host-keys]\n"
    "                        [--key FILE] [--agent-binary PATH] [--timeout DURATION]\n"
    "\n"
    "Installs faultline-agent on every host of the inventory over SSH, in parallel:\n"
    "copies the binary and the shared key (mode 0600), writes its config, starts it\n"
    "(a systemd unit when systemd runs there, else a supervised background process)\n"
    "and checks that it answers an authenticated ping. Re-running it copies only what\n"
    "changed and leaves a healthy, up-to-date agent alone.\n"
    "\n"
    "SSH settings come from the inventory's ssh: blocks (user, port, identity_file,\n"
    "known_hosts, deploy_dir). Host keys are checked against known_hosts (default\n"
    "~/.ssh/known_hosts): an unknown host is refused, a changed key always is.\n"
    "\n"
    "options:\n"
    "  --inventory FILE        the hosts (required)\n"
    "  --uninstall             stop the agents and remove everything deploy installed\n"
    "  --accept-new-host-keys  add the keys of hosts not yet in known_hosts (never\n"
    "                          replaces a known key)\n"
    "  --key FILE              the shared key; default $FAULTLINE_KEY, then the\n"
    "                          inventory's key_file\n"
    "  --agent-binary PATH     the faultline-agent to copy; default the one next to\n"
    "                          this faultline\n"
    "  --timeout DURATION      for each SSH step: connect, each command, each copy\n"
    "                          (default 30s)\n"
    "\n"
    "Exit status: 0 when every host succeeded, 2 when any failed, 64 on usage errors.\n";

/* The faultline-agent next to this program. */
static int default_agent_binary(char *buf, size_t len)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash == NULL)
        return -1;
    *slash = '\0';
    int w = snprintf(buf, len, "%s/faultline-agent", self);
    return w < 0 || (size_t)w >= len || access(buf, R_OK) != 0 ? -1 : 0;
}

int fl_cmd_deploy(int argc, char **argv)
{
    static const struct option options[] = {
        {"inventory", required_argument, NULL, 'i'},
        {"uninstall", no_argument, NULL, 'u'},
        {"accept-new-host-keys", no_argument, NULL, 'a'},
        {"key", required_argument, NULL, 'k'},
        {"agent-binary", required_argument, NULL, 'b'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct fl_deploy_opts o = {.timeout_ms = 30000, .verify_ms = 10000};
    const char *inventory = NULL, *key_path = NULL;
    int opt;
    optind = 1;
    opterr = 0; /* ':' and '?' below say what was wrong */
    while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (opt) {
        case 'i':
            inventory = optarg;
            break;
        case 'u':
            o.uninstall = true;
            break;
        case 'a':
            o.accept_new_host_keys = true;
            break;
        case 'k':
            key_path = optarg;
            break;
        case 'b':
            o.agent_binary = optarg;
            break;
        case 't':
            if (fl_cli_timeout("deploy", optarg, &o.timeout_ms) != 0)
                return FL_EXIT_USAGE;
            break;
        case 'h':
            fputs(deploy_help, stdout);
            return 0;
        case ':':
            return fl_cli_usage_error("deploy", "%s",
                                      optopt == 'i'   ? "--inventory needs a FILE"
                                      : optopt == 'k' ? "--key needs a FILE"
                                      : optopt == 'b' ? "--agent-binary needs a PATH"
                                      : optopt == 't' ? "--timeout needs a DURATION (30s, 2m)"
                                                      : "an option needs a value");
        default:
            return fl_cli_usage_error("deploy", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return fl_cli_usage_error("deploy", "unexpected argument '%s'", argv[optind]);
    if (inventory == NULL)
        return fl_cli_usage_error("deploy", "--inventory FILE is required");
    char bin[PATH_MAX];
    if (!o.uninstall && o.agent_binary == NULL) {
        if (default_agent_binary(bin, sizeof(bin)) < 0)
            return fl_cli_usage_error("deploy", "no faultline-agent next to this program: "
                                                "pass --agent-binary PATH");
        o.agent_binary = bin;
    }

    struct fl_inventory *inv = NULL;
    int rc = fl_cli_load_inventory("deploy", inventory, &inv);
    if (rc != 0)
        return rc;
    struct fl_key key;
    memset(&key, 0, sizeof(key));
    if (!o.uninstall) {
        o.key_path = fl_cli_key_path(key_path, inv->key_file);
        int krc = fl_cli_load_key(o.key_path, &key);
        if (krc != 0) {
            fl_inventory_free(&inv);
            return krc;
        }
        o.key = &key;
    }
    char err[1024];
    int failed = fl_deploy_run(inv, &o, stdout, err, sizeof(err));
    fl_key_wipe(&key);
    fl_inventory_free(&inv);
    if (failed < 0) {
        fprintf(stderr, "faultline deploy: %s\n", err);
        return FL_EXIT_ERROR;
    }
    return failed > 0 ? FL_EXIT_ERROR : 0;
}
