/* faultline-agent: the daemon on each host. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "agent/config.h"
#include "agent/fault.h"
#include "agent/faults/network.h"
#include "agent/guardian.h"
#include "agent/guardrails.h"
#include "agent/journal.h"
#include "agent/registry.h"
#include "agent/server.h"
#include "agent/statedir.h"
#include "common/log.h"
#include "common/units.h"

#define EXIT_USAGE 64

static const char usage_text[] =
    "usage: faultline-agent --key FILE [options]\n"
    "\n"
    "The faultline agent: accepts authenticated commands from a faultline\n"
    "controller on TCP and applies faults on this host.\n"
    "\n"
    "options:\n"
    "  --key FILE            pre-shared key (mode 0600); default $FAULTLINE_KEY\n"
    "  --name NAME           this agent's name, shown by the controller (default the host\n"
    "                        name; 1-64 visible characters)\n"
    "  --listen ADDR:PORT    address to listen on (default 0.0.0.0:7411)\n"
    "  --state-dir DIR       journal and lock (default /var/lib/faultline)\n"
    "  --config FILE         guardrails and settings (YAML); the command line wins\n"
    "  --lease DURATION      a silent controller's faults are reverted after this (default 5s)\n"
    "  --max-connections N   open connections at most (default 16)\n"
    "  --process-scope SCOPE host: any process may be a target (default);\n"
    "                        netns: only those in the agent's network namespace\n"
    "  --log-level LEVEL     debug, info, warn or error (default info)\n"
    "  --version             print the version and exit\n"
    "  -h, --help            this text\n";

struct agent {
    uv_loop_t loop;
    uv_signal_t sigint;
    uv_signal_t sigterm;
    struct fl_server server;
    struct fl_agent_config config;
    struct fl_guardrails guard;
    struct fl_agent_ctx ctx;
    struct fl_journal *journal;
    struct fl_registry *registry;
    json_t *leftovers; /* undo objects start-up could not revert */
    const char *state_dir;
    char journal_path[4096];
    int stopping;
    int exit_code;
    size_t unadopted; /* journal entries start-up could neither revert nor adopt */
};

/* Every fault is reverted before the agent goes: a clean stop leaves an
 * empty journal, and the guardian, seeing it, exits quietly. A fault whose
 * revert failed stays in the journal: the guardian tries it again as this
 * agent exits, and the next start after that. */
static void on_all_reverted(void *arg, const struct fl_record *const *recs, size_t n, int status)
{
    struct agent *a = arg;
    json_t *keep = json_array();
    size_t left = 0;
    for (size_t i = 0; i < n; i++) {
        if (fl_record_revert_error(recs[i]) == NULL)
            continue;
        left++;
        json_t *undo = (json_t *)(uintptr_t)fl_record_undo(recs[i]);
        if (keep != NULL && json_array_append(keep, undo) != 0) {
            json_decref(keep);
            keep = NULL;
        }
    }
    if (n - left > 0)
        fl_info("stopping: reverted %zu fault(s)", n - left);
    if (status < 0)
        fl_error("stopping: %zu fault(s) NOT reverted (%s): they stay in the journal for the "
                 "guardian and the next start",
                 left, fl_strerror(status));
    char err[512];
    /* Compaction rewrites the journal to keep alone: only safe when every
     * other entry is known reverted. A fault still active in the registry
     * (a revert that could not be queued) or a journal entry the registry
     * never held (refused at adoption) would be erased, so then the journal
     * is left whole for the guardian and the next start. */
    size_t active = fl_registry_active_count(a->registry);
    if (keep == NULL)
        fl_error("stopping: out of memory; the journal is left as it is");
    else if (active > 0 || a->unadopted > 0)
        fl_error("stopping: %zu fault(s) still active and %zu journal entr%s never adopted; the "
                 "journal is left as it is for the guardian and the next start",
                 active, a->unadopted, a->unadopted == 1 ? "y" : "ies");
    else if (fl_journal_compact(a->journal, keep, err, sizeof(err)) < 0)
        fl_warn("%s", err);
    json_decref(keep);
    fl_registry_close(a->registry);
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct agent *a = h->data;
    if (a->stopping++)
        return;
    fl_info("%s: stopping", signum == SIGINT ? "SIGINT" : "SIGTERM");
    fl_server_stop(&a->server);
    fl_registry_revert_all(a->registry, FL_END_SHUTDOWN, on_all_reverted, a);
}

/* Before listening: whatever a crashed predecessor left active is reverted
 * (its guardian normally did that already), and the journal starts empty but
 * for what could not be reverted: a->leftovers, which the registry adopts
 * and keeps trying. */
static int recover(struct agent *a)
{
    char err[512];
    json_t *active = NULL; /* what could not be reverted */
    int failed =
        fl_guardian_revert_journal_still(a->journal_path, "start-up", a->ctx.nft_table, &active);
    if (failed < 0)
        return failed;
    int rc = active != NULL ? 0 : -ENOMEM;
    if (rc < 0)
        snprintf(err, sizeof(err), "out of memory");
    if (rc == 0)
        rc = fl_journal_open(a->journal_path, &a->journal, err, sizeof(err));
    if (rc == 0)
        rc = fl_journal_compact(a->journal, active, err, sizeof(err));
    if (rc < 0)
        fl_error("%s", err);
    else if (json_array_size(active) > 0)
        fl_error("%zu fault(s) from before could not be reverted; they stay in the journal "
                 "and are tried again while this agent runs, and at the next start",
                 json_array_size(active));
    if (rc == 0)
        a->leftovers = active;
    else
        json_decref(active);
    return rc;
}

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v == 0 || v > max)
        return -EINVAL;
    *out = (unsigned)v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"key", required_argument, NULL, 'k'},
        {"name", required_argument, NULL, 'n'},
        {"listen", required_argument, NULL, 'l'},
        {"state-dir", required_argument, NULL, 's'},
        {"config", required_argument, NULL, 'c'},
        {"lease", required_argument, NULL, 'e'},
        {"max-connections", required_argument, NULL, 'm'},
        {"process-scope", required_argument, NULL, 'p'},
        {"log-level", required_argument, NULL, 'L'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct agent a;
    memset(&a, 0, sizeof(a));
    a.config.listen = "0.0.0.0:7411";
    a.config.max_connections = 16;
    a.config.handshake_timeout_ms = 5000;
    a.config.max_unauthenticated_per_address = 2;
    a.config.idle_timeout_ms = 60000;
    a.config.lease_ms = 5000;
    a.state_dir = "/var/lib/faultline";
    const char *key_path = getenv("FAULTLINE_KEY");
    const char *config_path = NULL;
    /* the command line wins over the config file, which wins over defaults */
    const char *cli_listen = NULL, *cli_state_dir = NULL, *cli_name = NULL;
    uint32_t cli_lease_ms = 0;
    unsigned cli_max_connections = 0;
    int cli_scope_netns = -1;
    static struct fl_agent_file_config filecfg;
    enum fl_log_level level = FL_LOG_INFO;

    fl_log_init("faultline-agent", level);
    int opt;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'k':
            key_path = optarg;
            break;
        case 'n': {
            char why[256];
            if (fl_agent_name_check(optarg, why, sizeof(why)) < 0) {
                fprintf(stderr, "faultline-agent: --name: %s\n", why);
                return EXIT_USAGE;
            }
            cli_name = optarg;
            break;
        }
        case 'l':
            cli_listen = optarg;
            break;
        case 's':
            cli_state_dir = optarg;
            break;
        case 'c':
            config_path = optarg;
            break;
        case 'e': {
            uint64_t ms;
            if (fl_parse_duration(optarg, &ms) < 0 || ms < 1000 || ms > 3600000) {
                fprintf(stderr, "faultline-agent: --lease takes a duration from 1s to 1h\n");
                return EXIT_USAGE;
            }
            cli_lease_ms = (uint32_t)ms;
            break;
        }
        case 'm':
            if (parse_uint(optarg, 65536, &cli_max_connections) < 0) {
                fprintf(stderr,
                        "faultline-agent: --max-connections takes a number from 1 to 65536\n");
                return EXIT_USAGE;
            }
            break;
        case 'p': {
            bool netns;
            if (fl_agent_process_scope(optarg, &netns) < 0) {
                fprintf(stderr, "faultline-agent: --process-scope takes host or netns\n");
                return EXIT_USAGE;
            }
            cli_scope_netns = netns;
            break;
        }
        case 'L':
            if (fl_log_parse_level(optarg, &level) < 0) {
                fprintf(stderr, "faultline-agent: --log-level takes debug, info, warn or error\n");
                return EXIT_USAGE;
            }
            fl_log_set_level(level);
            break;
        case 'V':
            printf("faultline-agent %s\n", FL_VERSION);
            return 0;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fputs(usage_text, stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "faultline-agent: unexpected argument '%s'\n%s", argv[optind], usage_text);
        return EXIT_USAGE;
    }
    if (key_path == NULL || *key_path == '\0') {
        fprintf(stderr, "faultline-agent: no key: pass --key FILE or set FAULTLINE_KEY "
                        "(write one with `faultline keygen FILE`)\n");
        return EXIT_USAGE;
    }
    char err[512];
    if (fl_key_load(key_path, &a.config.key, err, sizeof(err)) < 0) {
        fl_error("%s", err);
        return 1;
    }

    /* one malloc arena: the thread pool's threads (journal fsyncs,
     * nftables, forks) would each get an arena of their own, which keeps
     * what they freed (~0.5 MiB after one network fault); they are few and
     * seldom busy, so sharing one costs nothing measurable (bench/README.md,
     * agent memory) */
    mallopt(M_ARENA_MAX, 1);
    signal(SIGPIPE, SIG_IGN);
    /* a file-size limit makes a journal write fail (EFBIG), like a full file
     * system: the append is taken back and the inject refused, not the agent
     * killed */
    signal(SIGXFSZ, SIG_IGN);
    fl_guardrails_defaults(&a.guard);
    if (config_path != NULL &&
        fl_agent_config_load(config_path, &filecfg, &a.guard, err, sizeof(err)) < 0) {
        fl_error("%s", err);
        fl_guardrails_free(&a.guard);
        return EXIT_USAGE;
    }
    if (filecfg.listen_set)
        a.config.listen = filecfg.listen;
    if (filecfg.state_dir_set)
        a.state_dir = filecfg.state_dir;
    if (filecfg.name_set)
        a.config.name = filecfg.name;
    if (cli_name)
        a.config.name = cli_name;
    if (filecfg.lease_set)
        a.config.lease_ms = filecfg.lease_ms;
    if (filecfg.max_connections_set)
        a.config.max_connections = filecfg.max_connections;
    if (filecfg.max_unauthenticated_per_address_set)
        a.config.max_unauthenticated_per_address = filecfg.max_unauthenticated_per_address;
    if (filecfg.idle_timeout_set)
        a.config.idle_timeout_ms = filecfg.idle_timeout_ms;
    if (cli_listen)
        a.config.listen = cli_listen;
    if (cli_state_dir)
        a.state_dir = cli_state_dir;
    if (cli_lease_ms)
        a.config.lease_ms = cli_lease_ms;
    if (cli_max_connections)
        a.config.max_connections = cli_max_connections;
    /* handshake slots: by default half the connections, so that the other
     * half is kept for authenticated controllers (a flood of connections
     * that never authenticate cannot lock `faultline halt` out) */
    a.config.max_unauthenticated = a.config.max_connections > 1 ? a.config.max_connections / 2 : 1;
    if (filecfg.max_unauthenticated_set) {
        if (filecfg.max_unauthenticated >= a.config.max_connections) {
            fl_error("%s: max_unauthenticated (%u) must be less than max_connections (%u): the "
                     "difference is kept for authenticated controllers",
                     config_path, filecfg.max_unauthenticated, a.config.max_connections);
            fl_guardrails_free(&a.guard);
            return EXIT_USAGE;
        }
        a.config.max_unauthenticated = filecfg.max_unauthenticated;
    }
    if (cli_scope_netns >= 0)
        a.guard.scope_netns = cli_scope_netns;
    if (a.guard.scope_netns) {
        int rc = fl_guard_own_netns(&a.guard.netns_ino);
        if (rc < 0) {
            fl_error("process_scope netns: cannot read /proc/self/ns/net: %s", strerror(-rc));
            fl_guardrails_free(&a.guard);
            return 1;
        }
        fl_info("process scope: this network namespace only (inode %llu)",
                (unsigned long long)a.guard.netns_ino);
    }
    int lock_fd = -1;
    if (fl_statedir_open(a.state_dir, 10000, &lock_fd, err, sizeof(err)) < 0) {
        fl_error("%s", err);
        return 1;
    }
    snprintf(a.journal_path, sizeof(a.journal_path), "%s/journal", a.state_dir);
    /* this agent's own nftables table: no other agent's is ever touched */
    fl_network_table_for(a.state_dir, a.ctx.nft_table);
    fl_info("network faults go to nftables table inet %s", a.ctx.nft_table);
    if (recover(&a) < 0)
        return 1;
    /* the guardian is forked before any thread or socket exists */
    if (fl_guardian_start(a.journal_path, a.ctx.nft_table, lock_fd, &a.guard.guardian_pid, err,
                          sizeof(err)) < 0) {
        fl_error("%s", err);
        json_decref(a.leftovers);
        return 1;
    }
    fl_info("guardian is PID %d", (int)a.guard.guardian_pid);

    a.config.guard = &a.guard;
    int rc = uv_loop_init(&a.loop);
    if (rc < 0) {
        fl_error("cannot start the event loop: %s", fl_strerror(rc));
        json_decref(a.leftovers);
        fl_key_wipe(&a.config.key);
        fl_journal_close(&a.journal);
        fl_guardrails_free(&a.guard);
        return 1;
    }
    rc = fl_server_start(&a.server, &a.loop, &a.config);
    if (rc == 0) {
        a.ctx.guard = &a.guard;
        a.ctx.state_dir = a.state_dir;
        a.ctx.control_port = a.server.port;
        fl_server_local_host(&a.server, a.ctx.control_addr, sizeof(a.ctx.control_addr));
        struct fl_registry_config rcfg = {
            .loop = &a.loop,
            .journal = a.journal,
            .ctx = &a.ctx,
            .lease_ms = a.config.lease_ms,
        };
        rc = fl_registry_new(&rcfg, &a.registry);
        if (rc < 0)
            fl_server_stop(&a.server);
        a.server.registry = a.registry;
        size_t i;
        json_t *undo;
        json_array_foreach(rc == 0 ? a.leftovers : NULL, i, undo)
        {
            int arc = fl_registry_adopt(a.registry, undo);
            if (arc < 0) { /* it stays in the journal: a clean stop must not compact it away */
                a.unadopted++;
                fl_error("cannot keep trying journal entry %zu: %s", i, fl_strerror(arc));
            }
        }
    }
    json_decref(a.leftovers);
    a.leftovers = NULL;
    if (rc == 0) {
        uv_signal_init(&a.loop, &a.sigint);
        uv_signal_init(&a.loop, &a.sigterm);
        a.sigint.data = a.sigterm.data = &a;
        uv_signal_start(&a.sigint, on_signal, SIGINT);
        uv_signal_start(&a.sigterm, on_signal, SIGTERM);
        fl_info("faultline-agent %s ready", FL_VERSION);
    }
    uv_run(&a.loop, UV_RUN_DEFAULT);
    int lrc = uv_loop_close(&a.loop);
    fl_key_wipe(&a.config.key);
    fl_journal_close(&a.journal);
    fl_guardrails_free(&a.guard);
    if (lrc != 0) {
        fl_error("internal error: handles left open at exit");
        return 1;
    }
    if (rc < 0)
        return 1;
    fl_info("stopped");
    return 0;
}
