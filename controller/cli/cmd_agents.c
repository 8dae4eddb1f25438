/* faultline agents HOST...: each agent's state, version, uptime, and the
 * faults it holds. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/pbutil.h"
#include "common/units.h"
#include "controller/cli/cli.h"
#include "controller/experiment/inventory.h"
#include "controller/report/faultprint.h"
#include "controller/client/oneshot.h"

static const char agents_help[] =
    "usage: faultline agents [--key FILE] [--timeout DURATION] (HOST... | --inventory FILE)\n"
    "\n"
    "Connects to each agent, authenticates with the key, and prints whether it\n"
    "is up, its version, uptime, host name and active faults.\n"
    "HOST is ADDRESS[:PORT] (port 7411 when omitted; [v6]:PORT for IPv6).\n"
    "\n"
    "options:\n"
    "  --key FILE            pre-shared key; default $FAULTLINE_KEY\n"
    "  --timeout DURATION    for connecting and each request (default 3s)\n"
    "  --deadline DURATION   for the whole command (default 60s); a host not\n"
    "                        yet tried by then is listed NOT CHECKED, not DOWN\n"
    "\n"
    "Any number of hosts: a window of them at a time, sized from the\n"
    "descriptor limit; a host never counts as DOWN because this controller ran\n"
    "out of descriptors.\n"
    "\n"
    "Exit status: 0 when every agent answered, 2 when any did not.\n";

/* Each host is tried once; the whole command ends by this deadline. */
#define AGENTS_TIMEOUT_MS 3000
#define AGENTS_DEADLINE_MS 60000

static void build_status(struct fl_oneshot_target *t, Faultline__Envelope *req, void *ctx)
{
    static Faultline__StatusRequest sr = FAULTLINE__STATUS_REQUEST__INIT;
    (void)t;
    (void)ctx;
    req->msg_case = FAULTLINE__ENVELOPE__MSG_STATUS_REQUEST;
    req->status_request = &sr;
}

/* Keeps the status reply (a copy) for printing after the loop. */
static void keep_status(struct fl_oneshot_target *t, const Faultline__Envelope *reply, void *ctx)
{
    (void)ctx;
    if (reply->msg_case != FAULTLINE__ENVELOPE__MSG_STATUS || reply->status == NULL) {
        t->status = -EPROTO;
        snprintf(t->error, sizeof(t->error), "unexpected reply to a status request");
        return;
    }
    t->user = FL_PB_COPY(Faultline__Status, reply->status);
    if (t->user == NULL) {
        t->status = -ENOMEM;
        snprintf(t->error, sizeof(t->error), "out of memory keeping the agent's status");
    }
}

int fl_cmd_agents(int argc, char **argv)
{
    struct fl_cli_fleet f;
    int rc = fl_cli_fleet_args("agents", agents_help, AGENTS_TIMEOUT_MS, AGENTS_DEADLINE_MS, argc,
                               argv, &f);
    if (rc >= 0)
        return rc;
    int n = f.n;
    struct fl_inventory *inv = f.inv;
    static const struct fl_oneshot_ops ops = {build_status, keep_status};
    struct fl_oneshot_target *targets;
    int failed, unchecked = 0;
    const struct fl_oneshot_opts o = {.timeout_ms = f.timeout_ms, .deadline_ms = f.deadline_ms};
    rc = fl_cli_oneshot("agents", f.hosts, n, f.key_path, &o, &ops, NULL, &targets, &failed);
    if (rc != 0) {
        fl_cli_fleet_free(&f);
        return rc;
    }

    printf("%-24s %-5s %-8s %-9s %-6s %s\n", "AGENT", "STATE", "VERSION", "UPTIME", "FAULTS",
           "HOST");
    for (int i = 0; i < n; i++) {
        struct fl_oneshot_target *t = &targets[i];
        Faultline__Status *st = t->user;
        char label[320]; /* the inventory's name for it, when there is one */
        if (inv != NULL)
            snprintf(label, sizeof(label), "%s %s", inv->hosts[i].name, t->spec);
        else
            snprintf(label, sizeof(label), "%s", t->spec);
        if (t->status == 0 && st != NULL) {
            char uptime[32];
            fl_format_duration(st->uptime_ms, uptime, sizeof(uptime));
            printf("%-24s %-5s %-8s %-9s %-6zu %s\n", label, "up", st->version, uptime,
                   st->n_faults, st->hostname);
            for (size_t k = 0; k < st->n_faults; k++)
                fl_print_fault(stdout, "    ", st->faults[k]);
        } else if (!t->reached) {
            unchecked++;
            printf("%-24s %-5s %s\n", label, "NOT CHECKED", t->error);
        } else {
            printf("%-24s %-5s %s\n", label, "DOWN", t->error);
        }
        if (st != NULL)
            faultline__status__free_unpacked(st, NULL);
    }
    free(targets);
    fl_cli_fleet_free(&f);
    fflush(stdout); /* the table first, then any complaint */
    if (failed > 0) {
        fprintf(stderr, "faultline agents: %d of %d agents did not answer", failed, n);
        if (unchecked > 0)
            fprintf(stderr, " (%d of them NOT CHECKED before the deadline: raise --deadline)",
                    unchecked);
        fputc('\n', stderr);
        return FL_EXIT_ERROR;
    }
    return 0;
}
