/* faultline freeze | thaw | pause | resume | run-now --server HOST[:PORT]:
 * the safety lever and the controls of `faultline serve`, over its control
 * channel (controller/serve/control.h: the agents' authenticated wire, port
 * 7412 by default). One request, one answer; every refusal is said on
 * stderr with a non-zero exit. */
#include "controller/cli/cmd_control.h"

#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/pbutil.h"
#include "controller/cli/cli.h"
#include "controller/client/oneshot.h"
#include "controller/serve/config.h"

/* freeze, thaw, pause, resume are idempotent: tried again until this. */
#define CONTROL_DEADLINE_MS 30000

static const char control_help[] =
    "usage: faultline freeze  --server HOST[:PORT] [--reason TEXT] [--key FILE]\n"
    "       faultline thaw    --server HOST[:PORT] [--key FILE]\n"
    "       faultline pause   --server HOST[:PORT] [--key FILE] EXPERIMENT\n"
    "       faultline resume  --server HOST[:PORT] [--key FILE] EXPERIMENT\n"
    "       faultline run-now --server HOST[:PORT] [--key FILE] EXPERIMENT\n"
    "\n"
    "Controls a running `faultline serve` through its control channel\n"
    "(listen_control; port 7412 when omitted), authenticated with the same\n"
    "pre-shared key as the agents (serve's key_file).\n"
    "\n"
    "  freeze   aborts and reverts every running experiment now (recorded\n"
    "           ABORTED \"frozen: TEXT\") and starts nothing until thaw; due\n"
    "           times meanwhile are recorded skipped (frozen: TEXT). Stored:\n"
    "           serve restarts frozen.\n"
    "  thaw     ends the freeze; experiments run again at their next due time\n"
    "  pause    EXPERIMENT's due times are recorded skipped (paused); a run\n"
    "           going on finishes. Stored.\n"
    "  resume   ends the pause\n"
    "  run-now  one manual run of EXPERIMENT, due time now, flagged manual;\n"
    "           refused when frozen, already running, its hosts are busy or\n"
    "           max_concurrent_runs are going\n"
    "\n"
    "options:\n"
    "  --server HOST[:PORT]  where serve listens (listen_control)\n"
    "  --key FILE            pre-shared key; default $FAULTLINE_KEY\n"
    "  --reason TEXT         freeze: why (in history, /metrics logs)\n"
    "  --timeout DURATION    connecting and the answer (default 10s)\n"
    "\n"
    "Exit status 0 when serve confirmed; 2 when it refused or was not reached\n"
    "(a wrong key included); 64 on a usage error.\n";

struct control_call {
    const char *cmd;
    Faultline__ControlRequest *req;     /* or */
    Faultline__HistoryRequest *history; /* ... this */
    Faultline__ControlReply *reply;     /* kept */
    Faultline__History *history_reply;  /* kept */
};

static void build(struct fl_oneshot_target *t, Faultline__Envelope *req, void *ctx)
{
    struct control_call *c = ctx;
    (void)t;
    if (c->req != NULL) {
        req->msg_case = FAULTLINE__ENVELOPE__MSG_CONTROL;
        req->control = c->req;
    } else {
        req->msg_case = FAULTLINE__ENVELOPE__MSG_HISTORY_REQUEST;
        req->history_request = c->history;
    }
}

static void reply(struct fl_oneshot_target *t, const Faultline__Envelope *env, void *ctx)
{
    struct control_call *c = ctx;
    if (c->req != NULL && env->msg_case == FAULTLINE__ENVELOPE__MSG_CONTROLLED) {
        c->reply = FL_PB_COPY(Faultline__ControlReply, env->controlled);
    } else if (c->history != NULL && env->msg_case == FAULTLINE__ENVELOPE__MSG_HISTORY) {
        c->history_reply = FL_PB_COPY(Faultline__History, env->history);
    } else {
        t->status = -EPROTO;
        snprintf(t->error, sizeof(t->error),
                 "unexpected reply: is %s a faultline serve control channel (listen_control)?",
                 t->spec);
        return;
    }
    if (c->reply == NULL && c->history_reply == NULL) {
        t->status = -ENOMEM;
        snprintf(t->error, sizeof(t->error), "out of memory");
    }
}

/* One request to serve. 0, or FL_EXIT_* after saying why. */
static int call(const char *server, const char *key_path, uint64_t timeout_ms, bool retry,
                struct control_call *c)
{
    char host[256], spec[300];
    uint16_t port;
    if (fl_addr_split(server, FL_SERVE_DEFAULT_CONTROL_PORT, host, sizeof(host), &port) < 0 ||
        fl_addr_join(host, port, spec, sizeof(spec)) < 0)
        return fl_cli_usage_error(c->cmd, "--server '%s': expected HOST[:PORT]", server);
    char *specs[] = {spec};
    static const struct fl_oneshot_ops ops = {build, reply};
    const struct fl_oneshot_opts o = {.timeout_ms = timeout_ms,
                                      .deadline_ms = retry ? CONTROL_DEADLINE_MS : timeout_ms,
                                      .retry = retry};
    struct fl_oneshot_target *t = NULL;
    int failed = 0;
    int rc = fl_cli_oneshot(c->cmd, specs, 1, key_path, &o, &ops, c, &t, &failed);
    if (rc != 0)
        return rc;
    if (failed == 0) {
        free(t);
        return 0;
    }
    if (t->status == -EACCES)
        fprintf(stderr,
                "faultline %s: %s refused: wrong key: serve's key_file is not the key given "
                "(--key or $FAULTLINE_KEY); nothing was changed\n",
                c->cmd, spec);
    else if (t->status == -EREMOTEIO)
        fprintf(stderr, "faultline %s: %s: %s\n", c->cmd, spec, t->error);
    else {
        /* the client's words are for agents: name serve instead */
        char *agent_hint = strstr(t->error, ": is faultline-agent");
        if (agent_hint != NULL)
            *agent_hint = '\0';
        fprintf(stderr, "faultline %s: cannot reach faultline serve at %s: %s%s\n", c->cmd, spec,
                t->error,
                agent_hint ? "; is faultline serve running with listen_control there?" : "");
    }
    free(t);
    return FL_EXIT_ERROR;
}

static const char *who(char *buf, size_t len)
{
    struct passwd *pw = getpwuid(geteuid());
    char host[128] = "?";
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    snprintf(buf, len, "%s@%s", pw ? pw->pw_name : "?", host);
    return buf;
}

static int control(const char *cmd, Faultline__ControlRequest__Action action, int argc, char **argv)
{
    static const struct option options[] = {
        {"server", required_argument, NULL, 's'}, {"key", required_argument, NULL, 'k'},
        {"reason", required_argument, NULL, 'r'}, {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *server = NULL, *key_path = NULL, *reason = NULL;
    uint64_t timeout_ms = FL_CONTROL_CLI_TIMEOUT_MS;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 's':
            server = optarg;
            break;
        case 'k':
            key_path = optarg;
            break;
        case 'r':
            reason = optarg;
            break;
        case 't':
            if (fl_cli_timeout(cmd, optarg, &timeout_ms) != 0)
                return FL_EXIT_USAGE;
            break;
        case 'h':
            fputs(control_help, stdout);
            return 0;
        default:
            return fl_cli_usage_error(cmd, "unknown option (see --help)");
        }
    }
    bool wants_experiment = action == FAULTLINE__CONTROL_REQUEST__ACTION__PAUSE ||
                            action == FAULTLINE__CONTROL_REQUEST__ACTION__RESUME ||
                            action == FAULTLINE__CONTROL_REQUEST__ACTION__RUN_NOW;
    if (server == NULL)
        return fl_cli_usage_error(cmd, "--server HOST[:PORT] is required (serve's "
                                       "listen_control)");
    if (reason != NULL && action != FAULTLINE__CONTROL_REQUEST__ACTION__FREEZE)
        return fl_cli_usage_error(cmd, "--reason is for freeze only");
    if (wants_experiment && argc - optind != 1)
        return fl_cli_usage_error(cmd, "takes exactly one EXPERIMENT (its name:)");
    if (!wants_experiment && argc - optind != 0)
        return fl_cli_usage_error(cmd, "takes no EXPERIMENT");
    char me[300];
    Faultline__ControlRequest req = FAULTLINE__CONTROL_REQUEST__INIT;
    req.action = action;
    req.reason = fl_pb_str(reason ? reason : "");
    req.experiment = fl_pb_str(wants_experiment ? argv[optind] : "");
    req.who = fl_pb_str(who(me, sizeof(me)));
    struct control_call c = {.cmd = cmd, .req = &req};
    /* run-now is not idempotent: one try */
    int rc = call(server, key_path, timeout_ms,
                  action != FAULTLINE__CONTROL_REQUEST__ACTION__RUN_NOW, &c);
    if (rc != 0)
        return rc;
    printf("%s\n", c.reply->message);
    faultline__control_reply__free_unpacked(c.reply, NULL);
    return 0;
}

int fl_cli_control_history(const char *cmd, const char *server, const char *key_path,
                           uint64_t timeout_ms, const char *experiment, int64_t since_ms,
                           size_t limit, fl_store_row **rows_out, size_t *n_out)
{
    fl_store_row *rows = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        Faultline__HistoryRequest hr = FAULTLINE__HISTORY_REQUEST__INIT;
        hr.experiment = fl_pb_str(experiment ? experiment : "");
        hr.since_ms = since_ms;
        hr.limit = limit ? limit - n : 0;
        hr.offset = n;
        struct control_call c = {.cmd = cmd, .history = &hr};
        int rc = call(server, key_path, timeout_ms, false, &c);
        if (rc != 0) {
            fl_store_rows_free(rows, n);
            return rc;
        }
        Faultline__History *h = c.history_reply;
        if (n + h->n_rows > cap) {
            size_t ncap = (n + h->n_rows) * 2;
            fl_store_row *nr = realloc(rows, ncap * sizeof(*nr));
            if (nr == NULL) {
                faultline__history__free_unpacked(h, NULL);
                fl_store_rows_free(rows, n);
                fprintf(stderr, "faultline %s: out of memory\n", cmd);
                return FL_EXIT_ERROR;
            }
            rows = nr;
            cap = ncap;
        }
        bool oom = false;
        for (size_t i = 0; i < h->n_rows; i++) {
            const Faultline__HistoryRow *r = h->rows[i];
            fl_store_row *s = &rows[n++];
            memset(s, 0, sizeof(*s));
#define DUP(f) (r->f && r->f[0] ? (oom |= (s->f = strdup(r->f)) == NULL, s->f) : NULL)
            s->id = r->id;
            DUP(experiment);
            DUP(file_hash);
            DUP(state);
            DUP(verdict);
            DUP(reason);
            DUP(flags);
            DUP(report_folder);
#undef DUP
            s->due_ms = r->due_ms;
            s->started_ms = r->started_ms;
            s->ended_ms = r->ended_ms;
            s->recovery_ms = r->recovery_ms;
            s->resolution_ms = r->resolution_ms;
            s->rpo_ms = r->rpo_ms;
            if (s->experiment == NULL || s->state == NULL)
                oom = true; /* every row has both */
        }
        bool more = h->more && h->n_rows > 0;
        faultline__history__free_unpacked(h, NULL);
        if (oom) {
            fl_store_rows_free(rows, n);
            fprintf(stderr,
                    "faultline %s: out of memory, or a row from serve without its "
                    "experiment or state\n",
                    cmd);
            return FL_EXIT_ERROR;
        }
        if (!more || (limit && n >= limit))
            break;
    }
    *rows_out = rows;
    *n_out = n;
    return 0;
}

int fl_cmd_freeze(int argc, char **argv)
{
    return control("freeze", FAULTLINE__CONTROL_REQUEST__ACTION__FREEZE, argc, argv);
}

int fl_cmd_thaw(int argc, char **argv)
{
    return control("thaw", FAULTLINE__CONTROL_REQUEST__ACTION__THAW, argc, argv);
}

int fl_cmd_pause(int argc, char **argv)
{
    return control("pause", FAULTLINE__CONTROL_REQUEST__ACTION__PAUSE, argc, argv);
}

int fl_cmd_resume(int argc, char **argv)
{
    return control("resume", FAULTLINE__CONTROL_REQUEST__ACTION__RESUME, argc, argv);
}

int fl_cmd_run_now(int argc, char **argv)
{
    return control("run-now", FAULTLINE__CONTROL_REQUEST__ACTION__RUN_NOW, argc, argv);
}
