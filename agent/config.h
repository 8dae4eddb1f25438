/* The agent's config file (`faultline-agent --config FILE`): the guardrails
 * and the settings that may also come from the command line.
 *
 *     name: redis1                         # this agent's name for people (default: the host name)
 *     listen: 0.0.0.0:7411
 *     state_dir: /var/lib/faultline
 *     lease: 5s
 *     max_connections: 16
 *     max_unauthenticated: 8               # handshakes at once (default max_connections / 2)
 *     max_unauthenticated_per_address: 2   # handshakes at once from one address
 *     idle_timeout: 60s                    # an authenticated session silent this long is closed
 *     guardrails:
 *       protected_processes: [sshd, systemd-journald]   # replaces the default list
 *       fill_paths: [/var/tmp, /tmp]                    # absolute paths only
 *       max_fill: 95%
 *       fill_reserve: 64MiB
 *       memory_reserve: 256MiB
 *       max_duration: 1h
 *       max_cpu_workers: 8
 *       allowed_controllers: [10.0.0.0/8, 127.0.0.1, "fd00::/8"]
 *       process_scope: netns   # only processes in the agent's network namespace
 *       max_faults: 256        # active faults at once (1 .. 65536); more: ERROR_BUSY
 *
 * Every key is optional; an empty file means all defaults. Process names
 * are kept as the kernel keeps a process's name (comm): the first 15 bytes,
 * so "systemd-journald" protects the process the kernel calls
 * "systemd-journal". */
#ifndef FL_AGENT_CONFIG_H
#define FL_AGENT_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/guardrails.h"

#define FL_AGENT_LEASE_MIN_MS 1000u
#define FL_AGENT_LEASE_MAX_MS 3600000u
#define FL_AGENT_MAX_CONNECTIONS 65536u
#define FL_AGENT_IDLE_MIN_MS 1000u
#define FL_AGENT_IDLE_MAX_MS 3600000u
#define FL_AGENT_MAX_CPU_WORKERS 4096u
/* The agent's name (--name, name:), shown by `faultline agents` and run: 1 to
 * FL_AGENT_NAME_MAX bytes, each a visible ASCII character (no space, no
 * control character). */
#define FL_AGENT_NAME_MAX 64

/* The settings that are not guardrails. Each has a set flag: the caller
 * applies what the file set, then what the command line set, so the command
 * line wins. */
struct fl_agent_file_config {
    char name[FL_AGENT_NAME_MAX + 1]; /* checked with fl_agent_name_check */
    bool name_set;
    char listen[300]; /* "ADDR:PORT", checked with fl_addr_split */
    bool listen_set;
    char state_dir[4096]; /* an absolute path */
    bool state_dir_set;
    uint32_t lease_ms; /* FL_AGENT_LEASE_MIN_MS .. FL_AGENT_LEASE_MAX_MS */
    bool lease_set;
    unsigned max_connections; /* 1 .. FL_AGENT_MAX_CONNECTIONS */
    bool max_connections_set;
    unsigned max_unauthenticated; /* 1 .. FL_AGENT_MAX_CONNECTIONS */
    bool max_unauthenticated_set;
    unsigned max_unauthenticated_per_address; /* 1 .. FL_AGENT_MAX_CONNECTIONS */
    bool max_unauthenticated_per_address_set;
    uint64_t idle_timeout_ms; /* FL_AGENT_IDLE_MIN_MS .. FL_AGENT_IDLE_MAX_MS */
    bool idle_timeout_set;
};

/* Loads FILE into g (which holds defaults from fl_guardrails_defaults, and
 * settings the caller may then override from the command line) and out.
 * A list in the file replaces g's list (its old entries are freed); every
 * other guardrail the file does not name keeps its value in g.
 *
 * Returns 0, or a negative errno with err holding "FILE:LINE:COL: what is
 * wrong" (or "FILE: ..." when the file cannot be read). On failure neither
 * out nor g is touched. Reads the file with blocking I/O: call at start,
 * before the loop runs. */
/* "host" (every process is a candidate target) or "netns" (only those in
 * the agent's own network namespace). 0 or -EINVAL. */
int fl_agent_process_scope(const char *text, bool *scope_netns);

/* 0 when name is a valid agent name (FL_AGENT_NAME_MAX), else -EINVAL with
 * err saying what is wrong with it, quoting the name safely. */
int fl_agent_name_check(const char *name, char *err, size_t errlen);

int fl_agent_config_load(const char *path, struct fl_agent_file_config *out,
                         struct fl_guardrails *g, char *err, size_t errlen);

#endif
