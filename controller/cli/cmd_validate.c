/* faultline validate EXPERIMENT [--inventory F]: load and check an experiment,
 * contacting nothing. Prints a short summary on success (exit 0); prints the
 * FILE:LINE:COL message on stderr otherwise (exit 64). */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "common/units.h"
#include "controller/cli/cli.h"
#include "controller/probes/pgwrite.h"
#include "controller/probes/pool.h"
#include "controller/probes/rate.h"
#include "controller/experiment/experiment.h"
#include "controller/experiment/faultspec.h"
#include "controller/serve/radius.h"
#include "controller/serve/schedule.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: faultline validate EXPERIMENT [--inventory FILE]\n"
                 "\n"
                 "Parses and checks an experiment: every key, value and reference (probes,\n"
                 "hosts, tags), and every fault's parameters. Contacts nothing. Prints a\n"
                 "summary, or the first problem as FILE:LINE:COL: message (exit 64).\n"
                 "\n"
                 "  --inventory FILE   hosts from FILE instead of the experiment's inventory\n");
}

static const char *dur(uint64_t ms, char *buf, size_t len)
{
    if (fl_format_duration(ms, buf, len) < 0)
        snprintf(buf, len, "%llums", (unsigned long long)ms);
    return buf;
}

static void print_probe(const struct fl_probe_spec *p)
{
    char a[32], b[32];
    printf("  %-20s ", p->name);
    if (p->is_template)
        printf("(template, for where:) ");
    switch (p->type) {
    case FL_PROBE_HTTP:
        printf("http %s %s", p->u.http.method, p->u.http.url);
        if (p->u.http.n_expect_status > 0) {
            printf(" expect");
            for (size_t i = 0; i < p->u.http.n_expect_status; i++)
                printf("%s%u", i ? "," : " ", p->u.http.expect_status[i]);
        }
        break;
    case FL_PROBE_TCP:
        printf(strchr(p->u.tcp.host, ':') ? "tcp [%s]:%u" : "tcp %s:%u", p->u.tcp.host,
               p->u.tcp.port);
        break;
    case FL_PROBE_EXEC:
        printf("exec");
        for (size_t i = 0; i < p->u.exec.argc; i++)
            printf(" %s", p->u.exec.argv[i]);
        break;
    case FL_PROBE_SSH:
        printf("ssh %s: %s", p->u.ssh.host, p->u.ssh.command);
        break;
    case FL_PROBE_POSTGRES:
        printf("postgres writes into %s", p->u.data.table ? p->u.data.table : "faultline_writes");
        break;
    case FL_PROBE_REDIS:
        printf("redis writes into %s on %s%s", p->u.data.key ? p->u.data.key : "faultline_writes",
               p->u.data.address ? p->u.data.address : "the master of ",
               p->u.data.address ? "" : p->u.data.master_name);
        if (p->u.data.wait_replicas)
            printf(", waiting for %u replica(s)", p->u.data.wait_replicas);
        break;
    }
    printf("  every %s, timeout %s, rise %u, fall %u\n", dur(p->interval_ms, a, sizeof(a)),
           dur(p->timeout_ms, b, sizeof(b)), p->rise, p->fall);
    /* a postgres probe's DSN as its client will read it (a template's is
     * only known per host) */
    if (p->type == FL_PROBE_POSTGRES && !p->is_template && p->u.data.dsn != NULL) {
        char msg[600];
        int rc = fl_pgwrite_check_dsn(p->u.data.dsn, msg, sizeof(msg));
        if (rc > 0)
            printf("  %-20s warning: %s\n", "", msg);
        else if (rc < 0)
            printf("  %-20s warning: the run will refuse this DSN: %s\n", "", msg);
    }
    /* attempts never overlap: a failing system that makes each attempt wait
     * for its timeout is probed once per timeout, not once per interval */
    if (p->timeout_ms > p->interval_ms)
        printf("  %-20s note: timeout > interval: while requests time out, attempts come every "
               "%s, so the recovery time's resolution is %s, not %s\n",
               "", b, b, a);
}

static void print_probe_list(const struct fl_experiment *e, const size_t *idx, size_t n)
{
    if (n == 0)
        printf(" (none)");
    for (size_t i = 0; i < n; i++)
        printf("%s%s", i ? ", " : " ", e->probes[idx[i]].name);
}

static void print_fault(const struct fl_experiment *e, const struct fl_fault *f)
{
    char a[32], b[32];
    const struct fl_target *t = &f->target;
    printf("  %-20s %-14s on ", f->name, fl_faultspec_kind(f->spec));
    if (t->by_tags) {
        if (t->count < t->n_hosts)
            printf("%zu of ", t->count);
        printf("tags");
        for (size_t i = 0; i < t->n_tags; i++)
            printf("%s%s", i ? "," : " ", t->tags[i]);
        printf(" (");
        for (size_t i = 0; i < t->n_hosts; i++)
            printf("%s%s", i ? ", " : "", e->inventory.hosts[t->hosts[i]].name);
        printf(")");
    } else {
        for (size_t i = 0; i < t->n_hosts; i++)
            printf("%s%s", i ? ", " : "", e->inventory.hosts[t->hosts[i]].name);
    }
    if (t->has_where)
        printf(" where %s succeeds", e->probes[t->where_probe].name);
    printf("  from +%s to +%s\n", dur(f->start_ms, a, sizeof(a)),
           dur(f->start_ms + f->duration_ms, b, sizeof(b)));
}

/* The probing this experiment asks of the controller, and a warning when it
 * may be more than one loop can watch truthfully (controller/probes/rate.h). */
static void print_probe_load(const struct fl_experiment *e)
{
    struct fl_probe_load l;
    unsigned cpus = uv_available_parallelism();
    unsigned threads = e->probe_threads != 0 ? e->probe_threads
                                             : fl_probe_threads_auto(e->probes, e->n_probes, cpus);
    fl_probe_load_estimate_threads(e->probes, e->n_probes, threads, &l);
    printf("probe load: %.0f attempts/s, about %.1f%% of one core of the controller",
           l.attempts_per_s, l.core_percent);
    if (l.threads > 1)
        printf(" (%u probe threads%s: the busiest loop about %.1f%%)", l.threads,
               e->probe_threads != 0 ? "" : ", chosen by this load on this machine's CPUs",
               l.busiest_loop_percent);
    if (l.ssh_attempts_per_s > 0)
        printf(" (plus %.0f ssh attempts/s on the thread pool)", l.ssh_attempts_per_s);
    putchar('\n');
    if (l.busiest_loop_percent > FL_PROBE_LOAD_WARN_PERCENT)
        printf("  warning: above %u%% of a core on one loop the controller may fall behind its "
               "probes; the attempts it cannot judge are recorded late, never as failures, and a "
               "run with too many ends ABORTED \"controller overloaded\": lengthen the "
               "intervals, raise controller: probe_threads (if this machine has the cores), or "
               "split the probes over several controllers\n",
               FL_PROBE_LOAD_WARN_PERCENT);
}

/* The schedule: is for `faultline serve`; `run` and `validate` ignore it but
 * say it is there. */
static void print_schedule(const struct fl_schedule *s)
{
    char a[32];
    if (s->kind == FL_SCHED_EVERY)
        printf("schedule: every %s", dur((uint64_t)s->every_s * 1000, a, sizeof(a)));
    else
        printf("schedule: cron");
    printf(", timezone %s", s->timezone[0] ? s->timezone : "(the server's)");
    if (s->jitter_s > 0)
        printf(", jitter %s", dur((uint64_t)s->jitter_s * 1000, a, sizeof(a)));
    if (s->has_window)
        printf(", only inside its window");
    printf(", missed %s, starting_deadline %s%s (run by `faultline serve`)\n",
           s->missed == FL_MISSED_SKIP ? "skip" : "run_once",
           dur((uint64_t)s->starting_deadline_s * 1000, a, sizeof(a)), s->paused ? ", paused" : "");
}

/* What `faultline serve` keeps apart (controller/serve/radius.h): one line
 * per address, with every reason. */
static int print_radius(const struct fl_experiment *e)
{
    struct fl_radius r;
    char err[512];
    if (fl_radius_of(e, &r, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    printf("blast radius (serve never runs this at once with an experiment that shares an "
           "address):\n");
    for (size_t i = 0; i < r.n; i++) {
        bool first = true;
        for (size_t k = 0; k < i && first; k++)
            first = strcmp(r.addrs[k].key, r.addrs[i].key) != 0;
        if (!first)
            continue;
        printf("  %-20s %-16s", r.addrs[i].shown, r.addrs[i].host ? r.addrs[i].host : "");
        for (size_t k = i; k < r.n; k++) {
            const struct fl_radius_addr *x = &r.addrs[k];
            if (strcmp(x->key, r.addrs[i].key) != 0)
                continue;
            static const char *const verbs[] = {[FL_RADIUS_FAULTED] = "faulted by fault",
                                                [FL_RADIUS_PROBED] = "probed by probe",
                                                [FL_RADIUS_USED] = "used (schedule: also_uses)"};
            printf("%s %s%s%s", k == i ? "" : ",", verbs[x->why], x->by ? " " : "",
                   x->by ? x->by : "");
        }
        putchar('\n');
    }
    if (r.has_exec)
        printf("  note: what exec probes reach is not known: name those hosts in schedule: "
               "also_uses\n");
    if (r.has_sentinel)
        printf("  note: the master a redis sentinel names is not known: name the candidates in "
               "schedule: also_uses\n");
    fl_radius_free(&r);
    return 0;
}

static int print_summary(const struct fl_experiment *e)
{
    char a[32];
    printf("%s: experiment '%s' is valid\n", e->path, e->name);
    if (e->description)
        printf("  %s\n", e->description);

    const struct fl_inventory *inv = &e->inventory;
    printf("hosts (%zu, from %s%s%s):\n", inv->n_hosts, inv->path, inv->key_file ? ", key " : "",
           inv->key_file ? inv->key_file : "");
    for (size_t i = 0; i < inv->n_hosts; i++) {
        const struct fl_host *h = &inv->hosts[i];
        printf(strchr(h->address, ':') ? "  %-20s [%s]:%u" : "  %-20s %s:%u", h->name, h->address,
               h->port);
        for (size_t j = 0; j < h->n_tags; j++)
            printf("%s%s", j ? "," : "  tags ", h->tags[j]);
        putchar('\n');
    }

    printf("probes (%zu):\n", e->n_probes);
    for (size_t i = 0; i < e->n_probes; i++)
        print_probe(&e->probes[i]);
    print_probe_load(e);
    printf("steady state:");
    print_probe_list(e, e->steady_state, e->n_steady_state);
    putchar('\n');

    printf("faults (%zu):\n", e->n_faults);
    for (size_t i = 0; i < e->n_faults; i++)
        print_fault(e, &e->faults[i]);

    printf("abort when:");
    if (e->n_aborts == 0)
        printf(" (never, but each fault ends at its duration)");
    for (size_t i = 0; i < e->n_aborts; i++) {
        const struct fl_abort *ab = &e->aborts[i];
        if (ab->type == FL_ABORT_MAX_DURATION)
            printf("%s the run takes longer than %s", i ? ";" : "", dur(ab->ms, a, sizeof(a)));
        else
            printf("%s %s unhealthy for %s", i ? ";" : "", e->probes[ab->probe].name,
                   dur(ab->ms, a, sizeof(a)));
    }
    putchar('\n');
    printf("recovery:");
    print_probe_list(e, e->recovery.probes, e->recovery.n_probes);
    printf(" within %s\n", dur(e->recovery.timeout_ms, a, sizeof(a)));

    printf("objectives:");
    if (!e->objectives.has_rto && !e->objectives.has_rpo)
        printf(" none (the report still measures recovery time)");
    if (e->objectives.has_rto)
        printf(" rto %s", dur(e->objectives.rto_ms, a, sizeof(a)));
    if (e->objectives.has_rpo)
        printf("%s rpo %s", e->objectives.has_rto ? "," : "",
               dur(e->objectives.rpo_ms, a, sizeof(a)));
    printf("; impact %s%s\n", e->objectives.impact_required ? "required" : "optional",
           e->objectives.impact_set ? "" : " (the default)");
    if (e->schedule != NULL) {
        print_schedule(e->schedule);
        return print_radius(e);
    }
    return 0;
}

int fl_cmd_validate(int argc, char **argv)
{
    static const struct option options[] = {
        {"inventory", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *inventory = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'i':
            inventory = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            return fl_cli_usage_error("validate", "unknown option");
        }
    }
    if (argc - optind != 1)
        return fl_cli_usage_error("validate", "takes one EXPERIMENT file");

    struct fl_experiment *e = NULL;
    int rc = fl_cli_load_experiment(argv[optind], inventory, &e);
    if (rc != 0)
        return rc;
    rc = print_summary(e) < 0 ? 64 : 0;
    fl_experiment_free(&e);
    return rc;
}
