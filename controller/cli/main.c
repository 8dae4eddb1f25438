/* faultline: the controller's command line. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "controller/cli/cli.h"
#include "controller/client/fleet.h"
#include "controller/deploy/deploy.h"

static const struct fl_command commands[] = {
    {"keygen", "write a new pre-shared key, mode 0600", fl_cmd_keygen},
    {"validate", "parse and check an experiment; contacts nothing", fl_cmd_validate},
    {"run", "run an experiment: inject, observe, revert, measure recovery", fl_cmd_run},
    {"agents", "check agents: reachable? version, uptime, active faults", fl_cmd_agents},
    {"inject", "inject one fault by hand (game-day style); prints its id", fl_cmd_inject},
    {"revert", "revert one fault, or every fault of an agent", fl_cmd_revert},
    {"halt", "revert every fault on every agent named, now", fl_cmd_halt},
    {"deploy", "install, upgrade or remove agents on an inventory's hosts over SSH", fl_cmd_deploy},
    {"report", "one summary page (or JSON) over many run folders", fl_cmd_report},
    {"serve", "run scheduled experiments; history in a database; /metrics", fl_cmd_serve},
    {"history", "the history of scheduled runs, newest first", fl_cmd_history},
    {"freeze", "serve: abort every run now and start nothing until thaw", fl_cmd_freeze},
    {"thaw", "serve: end a freeze", fl_cmd_thaw},
    {"pause", "serve: skip an experiment's due times until resume", fl_cmd_pause},
    {"resume", "serve: end an experiment's pause", fl_cmd_resume},
    {"run-now", "serve: one manual run of an experiment, now", fl_cmd_run_now},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
    fprintf(out, "usage: faultline COMMAND [ARGS]\n\n"
                 "faultline verifies recovery claims: it injects faults through agents on\n"
                 "your hosts, watches health from outside, and measures recovery.\n\n"
                 "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`faultline COMMAND --help` describes a command.\n"
                 "Exit codes: 0 success/pass, 1 fail, 2 error/aborted, 64 usage.\n");
}

int main(int argc, char **argv)
{
    fl_log_init("faultline", FL_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    /* every fleet-wide command sizes its window from this (fleet.h) */
    uint64_t nofile = fl_fleet_raise_nofile();
    fl_debug("descriptor limit (RLIMIT_NOFILE, soft): %llu", (unsigned long long)nofile);
    if (argc < 2) {
        usage(stderr);
        return FL_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        if (strcmp(name, "help") == 0 && argc > 2) {
            for (size_t i = 0; i < N_COMMANDS; i++) {
                if (strcmp(argv[2], commands[i].name) == 0) {
                    char help[] = "--help";
                    char *args[] = {argv[2], help, NULL};
                    return commands[i].run(2, args);
                }
            }
        }
        usage(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0) {
        printf("faultline %s\n", FL_VERSION);
        return 0;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(name, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "faultline: unknown command '%s'\n\n", name);
    usage(stderr);
    return FL_EXIT_USAGE;
}
