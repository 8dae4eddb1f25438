/* The configuration of `faultline serve`: a YAML file, then one command-line
 * flag per key, which wins over the file (issue 16).
 *
 *   experiments: /etc/faultline/experiments   # every *.yaml with a schedule:
 *   inventory: /etc/faultline/hosts.yaml        # optional: replaces each file's
 *   key_file: /etc/faultline/faultline.key      # optional: else the inventory's
 *   db: sqlite:/var/lib/faultline/history.db
 *   reports_dir: /var/lib/faultline/reports
 *   listen_http: 127.0.0.1:9411
 *   listen_control: 127.0.0.1:7412              # faultline freeze/thaw/...; off
 *   max_concurrent_runs: 1
 *   retention: { runs_per_experiment: 1000, max_age: 180d }
 *   timezone: Europe/Berlin                     # default the machine's
 *   reload_on_change: true                      # watch the directory (SIGHUP always)
 *   webhooks:                                   # webhook.h; at most FL_WEBHOOKS_MAX
 *     - url: https://chat.example.com/hooks/abc
 *       events: [fail, aborted, regression, recovered, freeze, thaw]  # default all
 *       timeout: 10s                            # per attempt (FL_WEBHOOK_TIMEOUT_*)
 *
 * webhooks has no flag (a list): only the file sets it. */
#ifndef FL_SERVE_CONFIG_H
#define FL_SERVE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "controller/serve/webhook.h"

#define FL_SERVE_DEFAULT_DB "sqlite:/var/lib/faultline/history.db"
#define FL_SERVE_DEFAULT_REPORTS_DIR "/var/lib/faultline/reports"
#define FL_SERVE_DEFAULT_LISTEN_HTTP "127.0.0.1:9411"
#define FL_SERVE_DEFAULT_LISTEN_CONTROL "127.0.0.1:7412"
#define FL_SERVE_DEFAULT_CONTROL_PORT 7412
#define FL_SERVE_DEFAULT_MAX_CONCURRENT 1
#define FL_SERVE_MAX_CONCURRENT_MAX 64 /* max_concurrent_runs: largest (a thread each) */
#define FL_SERVE_DEFAULT_RETENTION_RUNS 1000
#define FL_SERVE_RETENTION_RUNS_MAX 10000000
#define FL_SERVE_DEFAULT_RETENTION_AGE_MS (180ull * 86400 * 1000)

struct fl_serve_config {
    char *experiments; /* required */
    char *inventory;   /* NULL: each experiment's own */
    char *key_file;    /* NULL: $FAULTLINE_KEY, then the inventory's key_file */
    char *db;
    char *reports_dir;
    char *listen_http; /* "HOST:PORT"; "" or "off" disables /metrics */
    /* "HOST:PORT" of the control channel (control.h), under key_file; "off" */
    char *listen_control;
    char *timezone; /* NULL: the machine's */
    unsigned max_concurrent_runs;
    uint64_t retention_runs;   /* 0: no count limit */
    uint64_t retention_age_ms; /* 0: no age limit */
    bool reload_on_change;     /* watch experiments for changes (default true) */
    struct fl_webhook_target *webhooks;
    size_t n_webhooks;
};

/* The defaults above. 0 or -ENOMEM. */
int fl_serve_config_defaults(struct fl_serve_config *c);
/* Reads the file over c (keys not in the file keep their value). 0, or a
 * negative errno with err "FILE:LINE:COL: message". */
int fl_serve_config_load(const char *path, struct fl_serve_config *c, char *err, size_t errlen);
/* One key from the command line ("max_concurrent_runs", "4"); the keys of
 * retention are "retention.runs_per_experiment" and "retention.max_age".
 * 0, or -EINVAL with err naming the flag and the problem. */
int fl_serve_config_set(struct fl_serve_config *c, const char *key, const char *value, char *err,
                        size_t errlen);
/* After file and flags: the required keys are there. 0 or -EINVAL. */
int fl_serve_config_check(const struct fl_serve_config *c, char *err, size_t errlen);
/* "HOST:PORT" to its parts (port 1..65535; host an IPv4 or IPv6 literal,
 * brackets allowed). 0 or -EINVAL. */
int fl_serve_listen_parse(const char *text, char *host, size_t hostlen, uint16_t *port);
void fl_serve_config_free(struct fl_serve_config *c);
/* An age as retention.max_age and `history --since` take it: whole days
 * ("180d", at most FL_SERVE_AGE_MAX_DAYS), any duration of common/units
 * ("12h", "90m"), or "0". 0 or -EINVAL. */
#define FL_SERVE_AGE_MAX_DAYS 36500
int fl_serve_parse_age(const char *text, uint64_t *ms);

#endif
