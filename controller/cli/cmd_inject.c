/* faultline inject HOST KIND [NAME=VALUE...] --duration D: one fault by hand.
 * The fault is detached from this command: it prints the fault's id and
 * exits, and the fault's own duration (capped by the agent) ends it.
 * With --dry-run the agent is sent a PreviewRequest instead: it says what
 * the inject would do (or refuses it as the inject would be refused), and
 * changes nothing. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/units.h"
#include "controller/cli/cli.h"
#include "controller/report/faultprint.h"
#include "controller/experiment/faultspec.h"
#include "controller/client/oneshot.h"
#include "controller/client/preview.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: faultline inject [--key FILE] [--timeout D] [--dry-run] HOST KIND "
                 "[NAME=VALUE...] --duration D\n"
                 "\n"
                 "Injects one fault on the agent at HOST and prints its id. The fault ends\n"
                 "by itself after its duration; `faultline revert HOST ID` ends it sooner.\n"
                 "With --dry-run the agent resolves the fault's targets and checks its\n"
                 "guardrails, prints what it would do, and does nothing.\n"
                 "\n"
                 "kinds and their parameters:\n");
    for (const char *const *k = fl_faultspec_kinds(); *k; k++) {
        fprintf(out, "  %-14s", *k);
        for (const char *const *p = fl_faultspec_params(*k); p && *p; p++)
            if (strcmp(*p, "duration") != 0)
                fprintf(out, " %s=", *p);
        fputc('\n', out);
    }
    fprintf(out, "\nexamples:\n"
                 "  faultline inject 10.77.0.2 kill_process name=nginx signal=KILL --duration 10s\n"
                 "  faultline inject 10.77.0.2 network_drop peers=10.77.0.3 protocol=tcp "
                 "ports=5432 --duration 30s\n"
                 "  faultline inject 10.77.0.2 disk_fill path=/var/tmp fill=90%% --duration 2m\n");
}

static void build_inject(struct fl_oneshot_target *t, Faultline__Envelope *req, void *ctx)
{
    static Faultline__InjectRequest ir;
    (void)t;
    faultline__inject_request__init(&ir);
    ir.spec = ctx;
    ir.detached = 1;
    req->msg_case = FAULTLINE__ENVELOPE__MSG_INJECT;
    req->inject = &ir;
}

static void print_injected(struct fl_oneshot_target *t, const Faultline__Envelope *reply, void *ctx)
{
    (void)ctx;
    if (reply->msg_case != FAULTLINE__ENVELOPE__MSG_INJECTED) {
        t->status = -EPROTO;
        snprintf(t->error, sizeof(t->error), "unexpected reply to an inject request");
        return;
    }
    const Faultline__Fault *f = reply->injected;
    char dur[32];
    fl_format_duration(f->spec ? f->spec->duration_ms : 0, dur, sizeof(dur));
    printf("%s\n", f->id);
    fflush(stdout); /* the id first: scripts read it */
    fprintf(stderr, "injected %s on %s for %s: %s\n", fl_fault_kind_name(f->spec), t->spec, dur,
            f->detail ? f->detail : "");
}

static void build_preview(struct fl_oneshot_target *t, Faultline__Envelope *req, void *ctx)
{
    static Faultline__PreviewRequest pr;
    (void)t;
    faultline__preview_request__init(&pr);
    pr.spec = ctx;
    req->msg_case = FAULTLINE__ENVELOPE__MSG_PREVIEW;
    req->preview = &pr;
}

static void print_preview(struct fl_oneshot_target *t, const Faultline__Envelope *reply, void *ctx)
{
    (void)ctx;
    if (reply->msg_case != FAULTLINE__ENVELOPE__MSG_PREVIEWED || reply->previewed == NULL) {
        t->status = -EPROTO;
        snprintf(t->error, sizeof(t->error), "unexpected reply to a preview request");
        return;
    }
    const Faultline__Preview *pv = reply->previewed;
    for (size_t i = 0; i < pv->n_would; i++)
        printf("%s on %s\n", pv->would[i], t->spec);
    if (pv->detail && pv->detail[0])
        printf("  %s\n", pv->detail);
    printf("dry run: nothing was injected\n");
}

int fl_cmd_inject(int argc, char **argv)
{
    static const struct option options[] = {
        {"key", required_argument, NULL, 'k'},      {"timeout", required_argument, NULL, 't'},
        {"duration", required_argument, NULL, 'd'}, {"dry-run", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    const char *key_path = NULL;
    const char *duration = NULL;
    bool dry_run = false;
    uint64_t timeout_ms = 30000; /* a disk fill of gigabytes takes a while */
    int opt;
    optind = 1;
    /* "+" would stop at HOST; options may come anywhere, so permute */
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'k':
            key_path = optarg;
            break;
        case 'd':
            duration = optarg;
            break;
        case 'n':
            dry_run = true;
            break;
        case 't':
            if (fl_cli_timeout("inject", optarg, &timeout_ms) != 0)
                return FL_EXIT_USAGE;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            return fl_cli_usage_error("inject", "unknown option");
        }
    }
    if (argc - optind < 2)
        return fl_cli_usage_error("inject", "takes HOST KIND [NAME=VALUE...] --duration D");
    char *host = argv[optind];
    const char *kind = argv[optind + 1];

    char err[512];
    Faultline__FaultSpec *spec = fl_faultspec_new(kind, err, sizeof(err));
    if (spec == NULL)
        return fl_cli_usage_error("inject", "%s", err);
    int rc = 0;
    for (int i = optind + 2; i < argc && rc == 0; i++) {
        char *eq = strchr(argv[i], '=');
        if (eq == NULL) {
            snprintf(err, sizeof(err), "'%s' is not NAME=VALUE", argv[i]);
            rc = -EINVAL;
            break;
        }
        *eq = '\0';
        rc = fl_faultspec_set(spec, argv[i], eq + 1, err, sizeof(err));
        *eq = '=';
    }
    if (rc == 0 && duration != NULL)
        rc = fl_faultspec_set(spec, "duration", duration, err, sizeof(err));
    if (rc == 0 && spec->duration_ms == 0) {
        snprintf(err, sizeof(err), "--duration is required: every fault ends by itself");
        rc = -EINVAL;
    }
    if (rc == 0)
        rc = fl_faultspec_check(spec, err, sizeof(err));
    if (rc == -ENOMEM) {
        fl_faultspec_free(spec);
        fprintf(stderr, "faultline inject: %s\n", fl_strerror(rc));
        return FL_EXIT_ERROR; /* not a usage error */
    }
    if (rc != 0) {
        fl_faultspec_free(spec);
        return fl_cli_usage_error("inject", "%s", err);
    }

    static const struct fl_oneshot_ops inject_ops = {build_inject, print_injected};
    static const struct fl_oneshot_ops preview_ops = {build_preview, print_preview};
    const struct fl_oneshot_ops *ops = dry_run ? &preview_ops : &inject_ops;
    struct fl_oneshot_target *target;
    int failed;
    const struct fl_oneshot_opts o = {.timeout_ms = timeout_ms}; /* one try: never two faults */
    rc = fl_cli_oneshot("inject", &host, 1, key_path, &o, ops, spec, &target, &failed);
    fl_faultspec_free(spec);
    if (rc != 0)
        return rc;
    if (failed) {
        fflush(stdout);
        const char *why = target->error;
        if (dry_run && target->status == -EREMOTEIO)
            why = fl_preview_error_text(target->agent_code, target->error);
        fprintf(stderr, "faultline inject: %s: %s\n", target->spec, why);
    }
    free(target);
    return failed ? FL_EXIT_ERROR : 0;
}
