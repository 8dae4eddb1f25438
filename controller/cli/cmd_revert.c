/* faultline revert HOST (FAULT_ID | --all): faults ended by hand. Also what
 * halt shares with it (cmd_revert.h): sending the request and listing what
 * ended. */
#include "controller/cli/cmd_revert.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/pbutil.h"
#include "controller/cli/cli.h"
#include "controller/client/oneshot.h"
#include "controller/report/faultprint.h"

static const char revert_help[] =
    "usage: faultline revert [--key FILE] [--timeout DURATION] HOST (FAULT_ID | --all)\n"
    "\n"
    "Reverts one fault on the agent at HOST (the id `faultline inject` printed,\n"
    "or that `faultline agents` lists), or with --all every fault it holds.\n"
    "Reverting a fault that already ended is a success.\n";

/* ------------------------------------------------------- shared with halt */

static void build_request(struct fl_oneshot_target *t, Faultline__Envelope *req, void *ctx)
{
    static Faultline__RevertRequest rr;
    static Faultline__HaltRequest hr;
    const struct fl_end_faults *what = ctx;
    (void)t;
    if (what->halt) {
        faultline__halt_request__init(&hr);
        req->msg_case = FAULTLINE__ENVELOPE__MSG_HALT;
        req->halt = &hr;
        return;
    }
    faultline__revert_request__init(&rr);
    rr.all = what->fault_id == NULL;
    if (what->fault_id)
        rr.fault_id = fl_pb_str(what->fault_id);
    req->msg_case = FAULTLINE__ENVELOPE__MSG_REVERT;
    req->revert = &rr;
}

static void print_ended(struct fl_oneshot_target *t, const Faultline__Envelope *reply, void *ctx)
{
    (void)ctx;
    const Faultline__FaultList *list =
        reply->msg_case == FAULTLINE__ENVELOPE__MSG_HALTED     ? reply->halted
        : reply->msg_case == FAULTLINE__ENVELOPE__MSG_REVERTED ? reply->reverted
                                                               : NULL;
    if (list == NULL) {
        t->status = -EPROTO;
        snprintf(t->error, sizeof(t->error), "unexpected reply");
        return;
    }
    int bad = 0;
    if (t->attempts > 1)
        printf("%s: %zu fault(s) ended (try %u)\n", t->spec, list->n_faults, t->attempts);
    else
        printf("%s: %zu fault(s) ended\n", t->spec, list->n_faults);
    for (size_t i = 0; i < list->n_faults; i++) {
        fl_print_fault(stdout, "    ", list->faults[i]);
        if (list->faults[i]->state == FAULTLINE__FAULT_STATE__FAULT_STATE_FAILED)
            bad++;
    }
    if (bad > 0) {
        t->status = -EREMOTEIO; /* the agent's own failure, as for its Error replies */
        snprintf(t->error, sizeof(t->error),
                 "%d fault(s) could NOT be reverted: see the agent's log", bad);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* "N of N hosts confirmed; over after S (confirmed per host after: p50 ..,
 * p90 .., p99 ..)" on
 * stdout, for the record and for bench/fleet_halt. */
static void print_summary(const char *cmd, const struct fl_oneshot_target *t, int n, int failed)
{
    uint64_t *ms = calloc(n > 0 ? (size_t)n : 1, sizeof(*ms));
    size_t k = 0;
    uint64_t last = 0;
    for (int i = 0; i < n; i++) {
        if (t[i].done_ms > last)
            last = t[i].done_ms;
        if (ms != NULL && t[i].status == 0)
            ms[k++] = t[i].done_ms;
    }
    printf("%s: %d of %d host(s) confirmed; over after %.2fs", cmd, n - failed, n,
           (double)last / 1000.0);
    if (k > 0) {
        qsort(ms, k, sizeof(*ms), cmp_u64);
        printf(" (confirmed per host after: p50 %.3fs, p90 %.3fs, p99 %.3fs)",
               (double)ms[(k - 1) * 50 / 100] / 1e3, (double)ms[(k - 1) * 90 / 100] / 1e3,
               (double)ms[(k - 1) * 99 / 100] / 1e3);
    }
    printf("\n");
    free(ms);
}

int fl_cli_end_faults(const char *cmd, char *const *hosts, int n, const char *key_path,
                      const struct fl_oneshot_opts *o, const struct fl_end_faults *what)
{
    static const struct fl_oneshot_ops ops = {build_request, print_ended};
    struct fl_oneshot_target *targets;
    int failed;
    int rc = fl_cli_oneshot(cmd, hosts, n, key_path, o, &ops, (void *)what, &targets, &failed);
    if (rc != 0)
        return rc;
    if (n > 1)
        print_summary(cmd, targets, n, failed);
    fflush(stdout);
    if (failed > 0 && n > 1)
        fprintf(stderr,
                "faultline %s: %d of %d host(s) did NOT confirm; their faults may still be "
                "active:\n",
                cmd, failed, n);
    for (int i = 0; i < n; i++) {
        const struct fl_oneshot_target *t = &targets[i];
        if (t->status == 0)
            continue;
        fprintf(stderr, "%s%s: %s: %s", n > 1 ? "  " : "", n > 1 ? "NOT CONFIRMED" : cmd, t->spec,
                t->error);
        if (t->attempts > 1 && t->status != -ETIME)
            fprintf(stderr, " (%u tries)", t->attempts);
        fputc('\n', stderr);
    }
    free(targets);
    return failed > 0 ? FL_EXIT_ERROR : 0;
}

/* ------------------------------------------------------------------ revert */

int fl_cmd_revert(int argc, char **argv)
{
    static const struct option options[] = {
        {"key", required_argument, NULL, 'k'},
        {"timeout", required_argument, NULL, 't'},
        {"all", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *key_path = NULL;
    uint64_t timeout_ms = 30000; /* a revert may wait for a disk fill to be removed */
    bool all = false;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'k':
            key_path = optarg;
            break;
        case 't':
            if (fl_cli_timeout("revert", optarg, &timeout_ms) != 0)
                return FL_EXIT_USAGE;
            break;
        case 'a':
            all = true;
            break;
        case 'h':
            fputs(revert_help, stdout);
            return 0;
        default:
            return fl_cli_usage_error("revert", "unknown option");
        }
    }
    if (argc - optind != (all ? 1 : 2))
        return fl_cli_usage_error("revert", "takes HOST and FAULT_ID, or HOST --all");
    struct fl_end_faults what = {.halt = false, .fault_id = all ? NULL : argv[optind + 1]};
    const struct fl_oneshot_opts o = {.timeout_ms = timeout_ms}; /* one try, as asked */
    return fl_cli_end_faults("revert", argv + optind, 1, key_path, &o, &what);
}
