/* faultline-agent: the daemon on each host. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "agent/server.h"
#include "common/log.h"

#define EXIT_USAGE 64

static const char usage_text[] =
    "usage: faultline-agent --key FILE [options]\n"
    "\n"
    "The faultline agent: accepts authenticated commands from a faultline\n"
    "controller on TCP and applies faults on this host.\n"
    "\n"
    "options:\n"
    "  --key FILE            pre-shared key (mode 0600); default $FAULTLINE_KEY\n"
    "  --listen ADDR:PORT    address to listen on (default 0.0.0.0:7411)\n"
    "  --max-connections N   open connections at most (default 16)\n"
    "  --log-level LEVEL     debug, info, warn or error (default info)\n"
    "  --version             print the version and exit\n"
    "  -h, --help            this text\n";

struct agent {
    uv_loop_t loop;
    uv_signal_t sigint;
    uv_signal_t sigterm;
    struct fl_server server;
    struct fl_agent_config config;
};

static void on_signal(uv_signal_t *h, int signum)
{
    struct agent *a = h->data;
    fl_info("%s: stopping", signum == SIGINT ? "SIGINT" : "SIGTERM");
    fl_server_stop(&a->server);
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
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
        {"listen", required_argument, NULL, 'l'},
        {"max-connections", required_argument, NULL, 'm'},
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
    a.config.lease_ms = 5000;
    const char *key_path = getenv("FAULTLINE_KEY");
    enum fl_log_level level = FL_LOG_INFO;

    fl_log_init("faultline-agent", level);
    int opt;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'k':
            key_path = optarg;
            break;
        case 'l':
            a.config.listen = optarg;
            break;
        case 'm':
            if (parse_uint(optarg, 65536, &a.config.max_connections) < 0) {
                fprintf(stderr, "faultline-agent: --max-connections takes a number from 1 to 65536\n");
                return EXIT_USAGE;
            }
            break;
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

    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&a.loop);
    int rc = fl_server_start(&a.server, &a.loop, &a.config);
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
    if (lrc != 0) {
        fl_error("internal error: handles left open at exit");
        return 1;
    }
    if (rc < 0)
        return 1;
    fl_info("stopped");
    return 0;
}
