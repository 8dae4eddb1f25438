/* Probes: how the controller watches the system under test from outside.
 *
 * A probe runs on the controller's libuv loop every `interval`, each attempt
 * bounded by `timeout`, and reports every result (success or failure, with
 * its time and latency) to its owner, who keeps the timeline. Nothing here
 * blocks the loop: HTTP goes through libcurl's multi interface driven by
 * libuv, TCP through uv_tcp_connect, exec through uv_spawn, and each SSH
 * attempt (libssh2 blocks) is a job on libuv's thread pool, bounded by the
 * probe's timeout. That pool is shared with uv_getaddrinfo (tcp probes, agent
 * connections): fl_run sizes it for the ssh probes (UV_THREADPOOL_SIZE).
 *
 * One file per kind under controller/probes/ (http.c, tcp.c, exec.c, ssh.c), each
 * with the same small table of operations (struct fl_probe_kind); health.c
 * turns results into healthy/unhealthy with rise and fall, as load balancers
 * count them. */
#ifndef FL_CONTROLLER_PROBES_PROBE_H
#define FL_CONTROLLER_PROBES_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define FL_PROBE_MAX_STATUSES 16
#define FL_PROBE_MAX_HEADERS 16
#define FL_PROBE_MAX_ARGV 64
/* body_contains: at most this many bytes (refused at validation) */
#define FL_PROBE_BODY_CONTAINS_MAX 256u

enum fl_probe_type {
    FL_PROBE_HTTP,
    FL_PROBE_TCP,
    FL_PROBE_EXEC,
    FL_PROBE_SSH,
    FL_PROBE_POSTGRES, /* a write probe (data.c): one INSERT per attempt */
    FL_PROBE_REDIS,    /* a write probe (data.c): one XADD per attempt */
};

struct fl_probe_http {
    char *method; /* default "GET" */
    char *url;
    char *headers[FL_PROBE_MAX_HEADERS]; /* "Name: value" */
    size_t n_headers;
    unsigned expect_status[FL_PROBE_MAX_STATUSES]; /* empty: any 2xx */
    size_t n_expect_status;
    char *body_contains; /* NULL: body not checked */
};

struct fl_probe_tcp {
    char *host; /* address or name */
    uint16_t port;
};

struct fl_probe_exec {
    char *argv[FL_PROBE_MAX_ARGV + 1]; /* NULL-terminated; no shell */
    size_t argc;
    int expect_exit;     /* default 0 */
    char *expect_output; /* NULL: not checked; else stdout+stderr must contain it */
};

/* An exec probe keeps the last this many bytes of its command's stdout and
 * stderr, in the result's detail. */
#define FL_PROBE_OUTPUT_KEPT 512

/* A command run on a host over SSH (controller/probes/ssh.c), with the
 * host's ssh settings from the inventory copied in. */
struct fl_probe_ssh {
    char *host; /* the inventory's name for it, for messages */
    char *address;
    uint16_t port;       /* 0: 22 */
    char *user;          /* NULL: the current user */
    char *identity_file; /* NULL: ssh-agent */
    char *known_hosts;   /* NULL: ~/.ssh/known_hosts */
    char *command;       /* run by the remote user's shell */
    int expect_exit;     /* default 0 */
};

#define FL_PROBE_MAX_SENTINELS 16

/* A write probe (issue 15, controller/probes/data.c): each attempt writes one
 * record (run id, sequence number, controller time) and succeeds when the
 * datastore acknowledges it; after recovery the run reads its records back
 * and measures the data lost (controller/run/rpo.h). */
struct fl_probe_data {
    /* postgres: a libpq connection string (numeric hosts; multi-host with
     * target_session_attrs=read-write follows a failover) and a table */
    char *dsn;
    char *table; /* NULL: faultline_writes */
    /* redis: an address, or sentinels and the master's name; a stream key */
    char *address;
    char *sentinels[FL_PROBE_MAX_SENTINELS];
    size_t n_sentinels;
    char *master_name;
    char *key;              /* NULL: faultline_writes */
    unsigned wait_replicas; /* 0: no WAIT */
    char *run_id;           /* set by the runner: this run's records */
};

/* A probe as an experiment declares it. Strings are owned (malloc'd). */
struct fl_probe_spec {
    char *name;
    enum fl_probe_type type;
    uint64_t interval_ms; /* default 1s */
    uint64_t timeout_ms;  /* default 1s; also bounds each attempt */
    unsigned rise;        /* consecutive successes that make it healthy; default 2 */
    unsigned fall;        /* consecutive failures that make it unhealthy; default 3 */
    bool is_template;     /* uses {host} / {address}: run only by where: (template.h) */
    union {
        struct fl_probe_http http;
        struct fl_probe_tcp tcp;
        struct fl_probe_exec exec;
        struct fl_probe_ssh ssh;
        struct fl_probe_data data; /* FL_PROBE_POSTGRES, FL_PROBE_REDIS */
    } u;
};

void fl_probe_spec_free(struct fl_probe_spec *spec); /* frees the strings, not spec itself */

/* What an attempt says. LATE is the controller's own failure, never the
 * service's: no outcome within the timeout, but the controller's loop was
 * stalled for at least fl_probe_late_threshold_ms of it (lag.h), so the
 * timeout may be the controller's doing. It counts neither as a failure nor
 * as a success. */
enum fl_probe_outcome {
    FL_OUTCOME_OK,
    FL_OUTCOME_FAILED,  /* the service said no: refused, 503, exit 1 ... */
    FL_OUTCOME_TIMEOUT, /* no outcome within the timeout, the loop on time */
    FL_OUTCOME_LATE,
};

/* One attempt's outcome: the unit of every timeline. */
struct fl_probe_result {
    uint64_t started_ms; /* wall clock, ms since the epoch */
    uint64_t latency_ms; /* until the outcome was known (a timeout: timeout_ms) */
    bool ok;             /* outcome == FL_OUTCOME_OK */
    enum fl_probe_outcome outcome;
    uint32_t start_late_ms; /* started this long after it was due (controller lateness) */
    uint32_t stall_ms;      /* how long the controller's loop was stalled during it */
    /* "200", "connection refused", "timeout after 500ms", "exit 3 (expected
     * 0): <the last FL_PROBE_OUTPUT_KEPT bytes of its output>" */
    char detail[FL_PROBE_OUTPUT_KEPT + 200];
};

/* "ok", "failed", "timeout", "late" (run.json's and attempts.jsonl's spelling). */
const char *fl_probe_outcome_name(enum fl_probe_outcome o);

/* A timeout is LATE when the loop was stalled for at least half the
 * timeout during the attempt (at least FL_PROBE_LATE_MIN_MS). */
#define FL_PROBE_LATE_MIN_MS 5u
uint64_t fl_probe_late_threshold_ms(uint64_t timeout_ms);
/* An attempt that starts half an interval or more after it was due is a
 * late start: the controller lost its schedule (counted, never a failure). */
uint64_t fl_probe_late_start_ms(uint64_t interval_ms);

/* The phase of a probe: its attempts are due at monotonic times t with
 * t mod interval_ms == phase, a stable offset from a hash of its name, so
 * that many probes with one interval spread their attempts over it instead
 * of firing together. */
uint64_t fl_probe_phase_ms(const char *name, uint64_t interval_ms);

/* What a probe's schedule saw, for the run's controller figures. */
struct fl_probe_stats {
    uint64_t started;     /* attempts started */
    uint64_t skipped;     /* due times passed while the controller was behind */
    uint64_t late_starts; /* attempts started at least the late threshold after due */
    uint64_t max_start_late_ms;
};

/* ------------------------------------------------------------------ running
 *
 * A running probe (probe.c). All calls on the loop's thread. */
struct fl_probe;

/* Called once per attempt with its result. The callback may call
 * fl_probe_stop() on this or any other probe. */
typedef void (*fl_probe_cb)(struct fl_probe *p, const struct fl_probe_result *r, void *arg);

/* Starts spec (deep-copied; the caller keeps its own): attempts due every
 * interval_ms at the probe's phase (fl_probe_phase_ms), the first within one
 * interval; a due time the controller was too late for by a whole interval
 * is skipped (and counted), never made up in a burst; an attempt still
 * running when the next is due postpones that one until it ends (attempts
 * never overlap), and the schedule continues from there.
 * interval_ms and timeout_ms of 0 mean the 1 s defaults. Returns 0 or a
 * negative errno (-EINVAL for an incomplete spec, -ENOMEM); on error cb is
 * never called and *out is untouched. */
int fl_probe_start(uv_loop_t *loop, const struct fl_probe_spec *spec, fl_probe_cb cb, void *arg,
                   struct fl_probe **out);

/* As fl_probe_start, but one attempt only (steady-state checks). The owner
 * still calls fl_probe_stop(), typically from cb. */
int fl_probe_once(uv_loop_t *loop, const struct fl_probe_spec *spec, fl_probe_cb cb, void *arg,
                  struct fl_probe **out);

/* Stops the schedule and cancels the attempt in flight (its result is never
 * reported). stopped (may be NULL) runs once every handle is closed and any
 * child reaped; p is freed just after it and must not be used once
 * fl_probe_stop() has been called. Calling it twice is a no-op. */
void fl_probe_stop(struct fl_probe *p, void (*stopped)(void *arg), void *arg);

const struct fl_probe_spec *fl_probe_get_spec(const struct fl_probe *p);

/* The loop's own lateness monitor (lag.h), used to tell LATE from a failure;
 * NULL (the default) judges by the deadline timer's own lateness only.
 * Set it before the loop runs; it must outlive the probe. */
struct fl_lag;
void fl_probe_set_lag(struct fl_probe *p, struct fl_lag *lag);

void fl_probe_get_stats(const struct fl_probe *p, struct fl_probe_stats *out);

/* No new attempt starts from now on (the one in flight goes on); for the
 * read-back of a write probe at the end of a run. */
void fl_probe_hold(struct fl_probe *p);

/* Write probes (data.c). The writes so far, one per attempt (seq, sent,
 * acknowledged and when); NULL with *n 0 for other kinds. */
struct fl_rpo_write;
const struct fl_rpo_write *fl_probe_data_writes(struct fl_probe *p, size_t *n);
/* Reads this run's records back from wherever the datastore now lives,
 * once the write in flight (if any) has ended; hold the probe first. cb
 * runs once: seqs (valid during the call) or err. Returns 0 or a negative
 * errno (-EINVAL: not a write probe). */
typedef void (*fl_probe_readback_cb)(void *arg, const uint64_t *seqs, size_t n, const char *err);
/* The runner's judgement of the write it is reporting (the last started):
 * its outcome and latency; and of write i later: the timeline of a write
 * probe is rebuilt after the read-back, a LATE write must stay late, and a
 * write that failed at once (refused) must keep its own time, not the
 * timeout's. *latency_ms is FL_PROBE_DATA_UNJUDGED for a write the runner
 * never reported. No-op for other kinds. */
#define FL_PROBE_DATA_UNJUDGED UINT32_MAX /* = FL_RPO_UNJUDGED */
void fl_probe_data_judged(struct fl_probe *p, enum fl_probe_outcome outcome, uint64_t latency_ms);
int fl_probe_data_outcome(struct fl_probe *p, size_t i, enum fl_probe_outcome *out,
                          uint32_t *latency_ms);
int fl_probe_data_readback(struct fl_probe *p, uint64_t timeout_ms, fl_probe_readback_cb cb,
                           void *arg);

/* Deep copy of src into dst; on error dst is left zeroed. Returns 0 or -ENOMEM. */
int fl_probe_spec_copy(struct fl_probe_spec *dst, const struct fl_probe_spec *src);

/* A write probe (postgres, redis): data.c. */
static inline bool fl_probe_is_writer(const struct fl_probe_spec *s)
{
    return s != NULL && (s->type == FL_PROBE_POSTGRES || s->type == FL_PROBE_REDIS);
}

/* "http", "tcp", "exec", "ssh", "postgres", "redis". */
const char *fl_probe_type_name(enum fl_probe_type type);

/* ------------------------------------------------------ for the kinds only
 *
 * One table per kind (http.c, tcp.c, exec.c). The runner owns scheduling and
 * the timeout; a kind only performs one attempt.
 *
 * start() begins an attempt and returns 0, after which the kind calls
 * fl_probe_attempt_end() exactly once, never from inside start() itself, and
 * only when everything the attempt held (handles, children, curl handles) has
 * been released; or it returns a negative errno with nothing started and
 * nothing to end, and err filled in.
 *
 * cancel() hurries an attempt that started: the runner has given up on it
 * (timeout or stop). The kind releases what it holds and still calls
 * fl_probe_attempt_end(), possibly from within cancel(); the result it passes
 * is then ignored. */
struct fl_probe_kind {
    const char *name;
    int (*start)(struct fl_probe *p, void **attempt, char *err, size_t err_len);
    void (*cancel)(void *attempt);
    /* Optional: frees what the kind keeps between attempts (in
     * *fl_probe_kind_state(p)), called on the loop once the probe is stopped
     * and no attempt is alive. Work it still has to do (closing an ssh
     * session) keeps the loop alive, not the probe. */
    void (*release)(void *state);
};

extern const struct fl_probe_kind fl_probe_kind_http;
/* Initialises libcurl once per process (thread-safe; later calls return the
 * first one's answer): 0 or -ENOMEM. Called by the first HTTP attempt, and
 * by the probe threads before they start (controller/probes/pool.h). */
int fl_probe_http_global_init(void);
extern const struct fl_probe_kind fl_probe_kind_tcp;
extern const struct fl_probe_kind fl_probe_kind_exec;
extern const struct fl_probe_kind fl_probe_kind_ssh;
extern const struct fl_probe_kind fl_probe_kind_postgres;
extern const struct fl_probe_kind fl_probe_kind_redis;

uv_loop_t *fl_probe_loop(const struct fl_probe *p);
/* The kind's state that lives from attempt to attempt (NULL at first). */
void **fl_probe_kind_state(struct fl_probe *p);
/* Ends the current attempt; detail is printf-style. */
void fl_probe_attempt_end(struct fl_probe *p, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
