/* faultline agents HOST...: connect to each agent in parallel, authenticate,
 * ask for its status, print one line per agent. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/addr.h"
#include "common/log.h"
#include "common/units.h"
#include "controller/cli.h"
#include "controller/client.h"

static const char agents_help[] =
    "usage: faultline agents [--key FILE] [--timeout DURATION] HOST...\n"
    "\n"
    "Connects to each agent, authenticates with the key, and prints whether it\n"
    "is up, its version, uptime, host name and number of active faults.\n"
    "HOST is ADDRESS[:PORT] (port 7411 when omitted; [v6]:PORT for IPv6).\n"
    "\n"
    "options:\n"
    "  --key FILE            pre-shared key; default $FAULTLINE_KEY\n"
    "  --timeout DURATION    for connecting and each request (default 3s)\n"
    "\n"
    "Exit status: 0 when every agent answered, 2 when any did not.\n";

struct probe {
    const char *spec;
    char host[256];
    uint16_t port;
    struct fl_client *client;
    uint64_t timeout_ms;
    int status;              /* 0 when the agent answered */
    char error[512];
    char version[32];
    char hostname[64];
    uint64_t uptime_ms;
    size_t n_faults;
};

static void on_status(struct fl_client *cl, const Faultline__Envelope *reply, int status, void *arg)
{
    struct probe *p = arg;
    if (status < 0) {
        p->status = status;
        snprintf(p->error, sizeof(p->error), "status request: %s",
                 status == -ETIMEDOUT ? "no reply in time" : fl_strerror(status));
    } else if (reply->msg_case == FAULTLINE__ENVELOPE__MSG_ERROR) {
        p->status = -EPROTO;
        snprintf(p->error, sizeof(p->error), "agent error: %s", reply->error->message);
    } else if (reply->msg_case != FAULTLINE__ENVELOPE__MSG_STATUS) {
        p->status = -EPROTO;
        snprintf(p->error, sizeof(p->error), "unexpected reply to a status request");
    } else {
        const Faultline__Status *st = reply->status;
        p->status = 0;
        snprintf(p->version, sizeof(p->version), "%s", st->version);
        snprintf(p->hostname, sizeof(p->hostname), "%s", st->hostname);
        p->uptime_ms = st->uptime_ms;
        p->n_faults = st->n_faults;
    }
    fl_client_close(cl);
}

static void on_ready(struct fl_client *cl, const Faultline__Welcome *welcome)
{
    struct probe *p = fl_client_data(cl);
    (void)welcome;
    Faultline__StatusRequest req = FAULTLINE__STATUS_REQUEST__INIT;
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_STATUS_REQUEST;
    env.status_request = &req;
    int rc = fl_client_request(cl, &env, p->timeout_ms, on_status, p);
    if (rc < 0) {
        p->status = rc;
        snprintf(p->error, sizeof(p->error), "cannot send: %s", fl_strerror(rc));
        fl_client_close(cl);
    }
}

static void on_closed(struct fl_client *cl, int reason)
{
    struct probe *p = fl_client_data(cl);
    p->client = NULL;
    if (reason < 0 && p->error[0] == '\0') {
        p->status = reason;
        fl_client_explain(cl, reason, p->error, sizeof(p->error));
    }
}

static const struct fl_client_ops agents_ops = {
    .ready = on_ready,
    .closed = on_closed,
};

int fl_cmd_agents(int argc, char **argv)
{
    static const struct option options[] = {
        {"key", required_argument, NULL, 'k'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *key_path = NULL;
    uint64_t timeout_ms = 3000;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'k':
            key_path = optarg;
            break;
        case 't':
            if (fl_parse_duration(optarg, &timeout_ms) < 0 || timeout_ms == 0)
                return fl_cli_usage_error("agents", "--timeout '%s': expected a duration like 500ms or 3s",
                                          optarg);
            break;
        case 'h':
            fputs(agents_help, stdout);
            return 0;
        default:
            return fl_cli_usage_error("agents", "unknown option");
        }
    }
    int n = argc - optind;
    if (n <= 0)
        return fl_cli_usage_error("agents", "name at least one HOST");

    struct probe *probes = calloc((size_t)n, sizeof(*probes));
    if (probes == NULL)
        return FL_EXIT_ERROR;
    for (int i = 0; i < n; i++) {
        struct probe *p = &probes[i];
        p->spec = argv[optind + i];
        if (fl_addr_split(p->spec, FL_DEFAULT_PORT, p->host, sizeof(p->host), &p->port) < 0) {
            const char *spec = p->spec;
            free(probes);
            return fl_cli_usage_error("agents", "'%s' is not ADDRESS[:PORT]", spec);
        }
    }

    struct fl_key key;
    int krc = fl_cli_load_key(key_path, &key);
    if (krc != 0) {
        free(probes);
        return krc;
    }

    uv_loop_t loop;
    uv_loop_init(&loop);
    for (int i = 0; i < n; i++) {
        struct probe *p = &probes[i];
        p->timeout_ms = timeout_ms;
        int rc = fl_client_connect(&loop, p->spec, p->host, p->port, &key, timeout_ms, &agents_ops,
                                   p, &p->client);
        if (rc < 0) {
            p->status = rc;
            snprintf(p->error, sizeof(p->error), "%s", fl_strerror(rc));
        }
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    int lrc = uv_loop_close(&loop);
    fl_key_wipe(&key);

    int failed = 0;
    printf("%-24s %-5s %-8s %-9s %-6s %s\n", "AGENT", "STATE", "VERSION", "UPTIME", "FAULTS",
           "HOST");
    for (int i = 0; i < n; i++) {
        struct probe *p = &probes[i];
        if (p->status == 0) {
            char uptime[32];
            fl_format_duration(p->uptime_ms, uptime, sizeof(uptime));
            printf("%-24s %-5s %-8s %-9s %-6zu %s\n", p->spec, "up", p->version, uptime,
                   p->n_faults, p->hostname);
        } else {
            failed++;
            printf("%-24s %-5s %s\n", p->spec, "DOWN", p->error);
        }
    }
    free(probes);
    fflush(stdout); /* the table first, then any complaint */
    if (lrc != 0) {
        fprintf(stderr, "faultline agents: internal error: handles left open\n");
        return FL_EXIT_ERROR;
    }
    if (failed > 0) {
        fprintf(stderr, "faultline agents: %d of %d agents did not answer\n", failed, n);
        return FL_EXIT_ERROR;
    }
    return 0;
}
