/* The runner of one experiment (run.h).
 *
 * The run's phase changes in one place, set_phase(), which checks the move
 * against the table `allowed` below (an assert) and logs it at debug level:
 *
 *   CONNECTING ──► STEADY_STATE ──► INJECTING ──► OBSERVING ──► RECOVERING ──► READBACK
 *      │ every agent   │ steady-state   │ the first      │ every fault  │ recovery     │ every
 *      │ ready         │ probes healthy │ fault applied  │ reverted     │ probes       │ write
 * probe │               │ (INJECTING     │                │              │ healthy, or  │ read its
 *      │               │  starts with   │                │              │ its timeout  │ records
 * back ▼               ▼  the where: checks)             ▼              ▼ (no write    ▼ DONE
 * ◄──────────────────────────────────────────────────────────────┴─ probe) ◄────┘ from any phase:
 * aborted (an agent unreachable or lost, abort_when, SIGINT/SIGTERM, an inject that failed, the
 * steady state never holding), once every job is done; from STEADY_STATE also: the dry run's plan
 * printed
 *
 * `aborting` is not a phase: abort_run() sets it in any phase before DONE, and
 * from then on DONE is the only move left, taken once every job is done (what
 * was applied reverted, or its agent lost). Each fault on each host (a job)
 * has its own progress: scheduled, injecting, applied, reverting, done.
 * OBSERVING lasts until the last job is done, so one fault may be reverting
 * while another has yet to start. */
#include "controller/run/run.h"

#include <assert.h>
#include <errno.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/clock.h"
#include "common/faultid.h"
#include "common/log.h"
#include "common/pbutil.h"
#include "common/units.h"
#include "controller/client/client.h"
#include "controller/client/fleet.h"
#include "controller/client/threadpool.h"
#include "controller/report/faultprint.h"
#include "controller/probes/health.h"
#include "controller/probes/lag.h"
#include "controller/probes/pool.h"
#include "controller/probes/rate.h"
#include "controller/run/attemptlog.h"
#include "controller/run/timeline.h"
#include "controller/run/where.h"
#include "controller/report/availability.h"
#include "controller/run/preview.h"
#include "controller/run/rpo.h"

#define HEARTBEAT_MS 1000
#define REQUEST_TIMEOUT_MS 30000 /* an inject of a disk fill may take a while */
#define TICK_MS 50

enum phase {
    PHASE_CONNECTING,
    PHASE_STEADY_STATE,
    PHASE_INJECTING,
    PHASE_OBSERVING,
    PHASE_RECOVERING,
    PHASE_READBACK,
    PHASE_DONE,
};

#define N_PHASES (PHASE_DONE + 1)

static const char *const phase_names[N_PHASES] = {
    [PHASE_CONNECTING] = "connecting",
    [PHASE_STEADY_STATE] = "steady state",
    [PHASE_INJECTING] = "injecting",
    [PHASE_OBSERVING] = "observing",
    [PHASE_RECOVERING] = "recovering",
    [PHASE_READBACK] = "reading back",
    [PHASE_DONE] = "done",
};

/* allowed[from][to]: the arrows of the diagram above. */
static const bool allowed[N_PHASES][N_PHASES] = {
    [PHASE_CONNECTING] = {[PHASE_STEADY_STATE] = true, [PHASE_DONE] = true},
    [PHASE_STEADY_STATE] = {[PHASE_INJECTING] = true, [PHASE_DONE] = true},
    [PHASE_INJECTING] = {[PHASE_OBSERVING] = true, [PHASE_DONE] = true},
    [PHASE_OBSERVING] = {[PHASE_RECOVERING] = true, [PHASE_DONE] = true},
    [PHASE_RECOVERING] = {[PHASE_READBACK] = true, [PHASE_DONE] = true},
    [PHASE_READBACK] = {[PHASE_DONE] = true},
};

struct agent {
    struct run *run;
    size_t index;
    const struct fl_host *host;
    struct fl_client *client;
    bool connecting; /* in flight in the fleet fan-out: until ready or closed */
    bool ready;
    bool gone;
    char error[512];
};

struct probe_slot {
    struct run *run;
    size_t index;
    struct fl_probe *probe;
    uint64_t unhealthy_since_ms; /* 0 unless unhealthy */
};

/* One fault on one host; rf is its entry in the record. */
struct job {
    struct run *run;
    struct fl_run_fault *rf;
    struct agent *agent;
    uv_timer_t timer; /* the start offset, then the end of the duration */
    bool injecting, applied, reverting, done;
};

struct run {
    uv_loop_t loop;
    const struct fl_experiment *e;
    const struct fl_key *key;
    const struct fl_run_options *o;
    struct fl_run_record *rec;
    enum phase phase; /* only set_phase() changes it */
    struct agent *agents;
    size_t n_agents;
    struct probe_slot *slots;
    struct job *jobs;
    struct fl_fleet *fleet; /* the agents' connections: fleet.h */
    uv_timer_t tick;        /* abort conditions, phase deadlines */
    uv_timer_t heartbeat;
    uv_signal_t sigint, sigterm;
    uint64_t deadline_ms; /* of the steady state or the recovery wait */
    bool aborting;
    bool closing;
    size_t probes_open;
    uint64_t hb_id;
    struct fl_lag lag; /* the loop's own stalls: tells LATE from a failure */
    bool lag_open;
    struct fl_probe_pool *pool; /* probe threads; NULL with probe_threads 1 */
    unsigned probe_threads;
    struct fl_attemptlog alog; /* attempts.jsonl */
    bool alog_open;
    uint64_t late_said_ms; /* the last live line about lateness (monotonic) */
    bool late_said;        /* a line about lateness was printed */
    uint64_t late_total;   /* late results so far, every probe */
    bool impact_said;      /* the live line for the first failure after injection */
    struct fl_where where; /* where: checks before injection */
    bool targeting;        /* they are running */
    size_t readbacks_open; /* write probes still reading back */
    struct fl_run_preview_item *preview_items; /* a dry run's previews in flight */
};

static void progress(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void progress(struct run *r, const char *fmt, ...)
{
    if (r->o->progress == NULL)
        return;
    char when[32] = "";
    uint64_t now = fl_now_ms();
    if (r->rec->injected_at_ms)
        snprintf(when, sizeof(when), "%+.2fs",
                 ((double)now - (double)r->rec->injected_at_ms) / 1000.0);
    else
        snprintf(when, sizeof(when), "-");
    fprintf(r->o->progress, "[%9s] ", when);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(r->o->progress, fmt, ap);
    va_end(ap);
    fputc('\n', r->o->progress);
    fflush(r->o->progress);
}

/* The only place the phase changes. */
static void set_phase(struct run *r, enum phase to)
{
    assert(r->phase < N_PHASES && to < N_PHASES);
    bool legal = allowed[r->phase][to] && (to == PHASE_DONE || !r->aborting);
    if (!legal) /* a bug; said out loud also where asserts are compiled out */
        fl_error("internal error: run %s: no move from %s to %s%s", r->e->name,
                 phase_names[r->phase], phase_names[to], r->aborting ? " while aborting" : "");
    assert(legal); /* an aborting run only ends */
    fl_debug("run %s: %s -> %s", r->e->name, phase_names[r->phase], phase_names[to]);
    r->phase = to;
}

static void finish(struct run *r);
static void start_revert(struct job *j);
static void start_readback(struct run *r);

/* ---------------------------------------------------------------- abort */

static bool all_jobs_done(const struct run *r)
{
    for (size_t i = 0; i < r->rec->n_faults; i++)
        if (!r->jobs[i].done)
            return false;
    return true;
}

static void abort_run(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void abort_run(struct run *r, const char *fmt, ...)
{
    if (r->aborting || r->phase == PHASE_DONE)
        return;
    r->aborting = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->rec->abort_reason, sizeof(r->rec->abort_reason), fmt, ap);
    va_end(ap);
    progress(r, "ABORT: %s; reverting everything", r->rec->abort_reason);
    for (size_t i = 0; i < r->rec->n_faults; i++) {
        struct job *j = &r->jobs[i];
        uv_timer_stop(&j->timer);
        if (j->applied && !j->reverting && !j->done)
            start_revert(j);
        else if (!j->applied && !j->injecting && !j->done) {
            j->done = true;
            snprintf(j->rf->outcome, sizeof(j->rf->outcome), "not applied");
        }
    }
    if (all_jobs_done(r))
        finish(r);
}

/* ---------------------------------------------------------------- faults */

/* Does reverting this fault undo anything? A kill (once) is over when it is
 * applied: the end of its window heals nothing, so it never makes a
 * recovery "only after revert". */
static bool undoes_something(const Faultline__FaultSpec *spec)
{
    return !(spec->kind_case == FAULTLINE__FAULT_SPEC__KIND_KILL_PROCESS &&
             spec->kill_process->mode == FAULTLINE__KILL_MODE__KILL_MODE_ONCE);
}

static void on_reverted(struct fl_client *cl, const Faultline__Envelope *reply, int status,
                        void *arg)
{
    struct job *j = arg;
    struct run *r = j->run;
    (void)cl;
    if (r->phase == PHASE_DONE)
        return;
    assert(j->reverting && !j->done); /* one reply per revert request */
    j->done = true;
    j->rf->reverted_at_ms = fl_now_ms();
    const Faultline__FaultList *list =
        reply && reply->msg_case == FAULTLINE__ENVELOPE__MSG_REVERTED ? reply->reverted : NULL;
    if (list && list->n_faults == 1)
        j->rf->agent_reverted_at_ms = list->faults[0]->reverted_at_ms;
    if (list && list->n_faults == 1 &&
        list->faults[0]->state != FAULTLINE__FAULT_STATE__FAULT_STATE_FAILED) {
        snprintf(j->rf->outcome, sizeof(j->rf->outcome), "%s",
                 list->faults[0]->state == FAULTLINE__FAULT_STATE__FAULT_STATE_EXPIRED
                     ? "expired"
                     : "reverted");
        progress(r, "reverted %s on %s", j->rf->fault->name, j->rf->host->name);
    } else {
        j->rf->revert_failed = true;
        snprintf(j->rf->outcome, sizeof(j->rf->outcome), "REVERT FAILED");
        const char *why = status < 0 ? fl_strerror(status)
                          : reply && reply->msg_case == FAULTLINE__ENVELOPE__MSG_ERROR
                              ? reply->error->message
                              : "the agent reports the revert failed";
        snprintf(j->rf->detail, sizeof(j->rf->detail), "%s", why);
        progress(r,
                 "REVERT FAILED: %s on %s (%s): %s -- check the host now; the agent keeps "
                 "retrying and lists it in `faultline agents` until a retry succeeds",
                 j->rf->fault->name, j->rf->host->name, j->rf->id, why);
    }
    if (j->rf->reverted_at_ms > r->rec->reverted_at_ms && undoes_something(j->rf->fault->spec))
        r->rec->reverted_at_ms = j->rf->reverted_at_ms;
    if (!all_jobs_done(r))
        return;
    if (r->aborting) {
        finish(r);
        return;
    }
    set_phase(r, PHASE_RECOVERING);
    r->deadline_ms = fl_mono_ms() + r->e->recovery.timeout_ms;
    progress(r, "all faults reverted; waiting up to %llu ms for recovery",
             (unsigned long long)r->e->recovery.timeout_ms);
}

static void start_revert(struct job *j)
{
    if (j->reverting || j->done)
        return;
    j->reverting = true;
    uv_timer_stop(&j->timer);
    if (j->agent->gone) {
        j->done = true;
        j->rf->revert_failed = true;
        snprintf(j->rf->outcome, sizeof(j->rf->outcome), "agent lost");
        snprintf(j->rf->detail, sizeof(j->rf->detail),
                 "the connection to the agent was lost; its lease reverts the fault");
        return;
    }
    Faultline__RevertRequest rr = FAULTLINE__REVERT_REQUEST__INIT;
    rr.fault_id = j->rf->id;
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_REVERT;
    env.revert = &rr;
    int rc = fl_client_request(j->agent->client, &env, REQUEST_TIMEOUT_MS, on_reverted, j);
    if (rc < 0)
        on_reverted(j->agent->client, NULL, rc, j);
}

static void on_duration_end(uv_timer_t *t)
{
    start_revert(t->data);
}

static void on_injected(struct fl_client *cl, const Faultline__Envelope *reply, int status,
                        void *arg)
{
    struct job *j = arg;
    struct run *r = j->run;
    (void)cl;
    assert(j->injecting && !j->applied); /* one reply per inject request */
    j->injecting = false;
    if (r->phase == PHASE_DONE)
        return;
    /* An id this controller cannot hold or send back is a protocol error:
     * the fault cannot be reverted by id, so the run stops and the agent's
     * lease ends the fault when the connection closes. */
    bool bad_id = status >= 0 && reply->msg_case == FAULTLINE__ENVELOPE__MSG_INJECTED &&
                  (reply->injected->id == NULL || !fl_fault_id_ok(reply->injected->id));
    if (status < 0 || reply->msg_case != FAULTLINE__ENVELOPE__MSG_INJECTED || bad_id) {
        const char *why = status < 0 ? fl_strerror(status)
                          : reply->msg_case == FAULTLINE__ENVELOPE__MSG_ERROR
                              ? reply->error->message
                          : bad_id ? "the agent replied with a malformed fault id (an "
                                     "incompatible agent?); its lease ends the fault"
                                   : "unexpected reply";
        j->done = true;
        snprintf(j->rf->outcome, sizeof(j->rf->outcome), "apply failed");
        snprintf(j->rf->detail, sizeof(j->rf->detail), "%s", why);
        if (!r->aborting)
            abort_run(r, "could not inject %s on %s: %s", j->rf->fault->name, j->rf->host->name,
                      why);
        else if (all_jobs_done(r))
            finish(r);
        return;
    }
    const Faultline__Fault *f = reply->injected;
    j->applied = true;
    j->rf->applied_at_ms = fl_now_ms();
    j->rf->agent_applied_at_ms = f->applied_at_ms;
    snprintf(j->rf->id, sizeof(j->rf->id), "%s", f->id);
    snprintf(j->rf->detail, sizeof(j->rf->detail), "%s", f->detail ? f->detail : "");
    if (r->rec->injected_at_ms == 0) {
        r->rec->injected_at_ms = j->rf->applied_at_ms;
        /* from here on, results count as after injection */
        for (size_t i = 0; i < r->rec->n_probes; i++)
            fl_timeline_inject(&r->rec->probes[i].tl, r->rec->injected_at_ms);
    }
    progress(r, "injected %s (%s) on %s: %s", j->rf->fault->name, fl_fault_kind_name(f->spec),
             j->rf->host->name, j->rf->detail);
    if (r->aborting) {
        start_revert(j);
        return;
    }
    if (r->phase == PHASE_INJECTING) /* the first fault applied; later ones keep it */
        set_phase(r, PHASE_OBSERVING);
    uv_timer_start(&j->timer, on_duration_end, j->rf->fault->duration_ms, 0);
}

static void on_fault_start(uv_timer_t *t)
{
    struct job *j = t->data;
    struct run *r = j->run;
    if (r->aborting)
        return;
    Faultline__InjectRequest ir = FAULTLINE__INJECT_REQUEST__INIT;
    ir.spec = j->rf->fault->spec;
    ir.detached = 0; /* leased: ends if this controller goes silent */
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_INJECT;
    env.inject = &ir;
    j->injecting = true;
    j->rf->scheduled_at_ms = fl_now_ms();
    int rc = fl_client_request(j->agent->client, &env, REQUEST_TIMEOUT_MS, on_injected, j);
    if (rc < 0)
        on_injected(j->agent->client, NULL, rc, j);
}

static void start_injecting(struct run *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->rec->n_faults; i++)
        n += r->rec->faults[i].chosen;
    progress(r, "injecting %zu fault(s)", n);
    for (size_t i = 0; i < r->rec->n_faults; i++) {
        struct job *j = &r->jobs[i];
        if (!j->rf->chosen) {
            j->done = true; /* a where: candidate not hit */
            continue;
        }
        uv_timer_start(&j->timer, on_fault_start, j->rf->fault->start_ms, 0);
    }
    if (n == 0)
        abort_run(r, "the experiment injects nothing");
}

static void print_plan(struct run *r);

static size_t random_below(size_t n)
{
    uint32_t rnd = 0;
    RAND_bytes((unsigned char *)&rnd, sizeof(rnd));
    return rnd % n;
}

/* The where: checks are in: choose the targets, then inject (or print the
 * plan of a dry run). */
static void on_targeted(void *arg)
{
    struct run *r = arg;
    r->targeting = false;
    if (r->phase == PHASE_DONE || r->aborting)
        return;
    char why[1024];
    int rc = fl_where_choose(r->rec, random_below, why, sizeof(why));
    if (rc == -ENOMEM) {
        abort_run(r, "out of memory choosing the targets; nothing was injected");
        return;
    }
    if (rc < 0) {
        abort_run(r, "%s", why);
        return;
    }
    for (size_t i = 0; i < r->rec->n_faults; i++) {
        const struct fl_run_fault *rf = &r->rec->faults[i];
        if (rf->where)
            progress(r, "where: %s on %s (%s): %s (%s)", rf->fault->name, rf->host->name,
                     rf->host->address, rf->chosen ? "TARGET" : rf->outcome, rf->where_detail);
    }
    if (r->o->dry_run) {
        print_plan(r); /* finishes the run once the agents have answered */
    } else {
        start_injecting(r);
    }
}

/* The steady state holds: find the targets of where: faults, then go on. */
static void start_targeting(struct run *r)
{
    set_phase(r, PHASE_INJECTING);
    progress(r, "steady state holds");
    int rc = fl_where_start(&r->where, &r->loop, r->rec, on_targeted, r);
    if (rc < 0) {
        abort_run(r, "cannot check the where: targets: %s; nothing was injected", fl_strerror(rc));
        return;
    }
    if (rc == 0) {
        on_targeted(r);
        return;
    }
    r->targeting = true;
    progress(r, "checking %d where: candidate(s)", rc);
}

static void on_plan_line(void *arg, const char *line)
{
    progress((struct run *)arg, "    %s", line);
}

static void on_plan_done(void *arg, size_t refused)
{
    struct run *r = arg;
    free(r->preview_items);
    r->preview_items = NULL;
    if (refused > 0)
        progress(r, "dry run: %zu fault(s) would be refused or could not be previewed", refused);
    if (r->phase != PHASE_DONE) /* an abort may have finished the run meanwhile */
        finish(r);
}

/* The dry run's plan: each fault the run would inject, then what each
 * agent says it would do (a side-effect-free preview request), e.g.
 * "would send KILL to redis-server[7811] (started ...)". Finishes the run
 * once every agent has answered. */
static void print_plan(struct run *r)
{
    progress(r, "dry run: the steady state holds; this would be injected:");
    size_t n = 0;
    for (size_t i = 0; i < r->rec->n_faults; i++) {
        const struct fl_run_fault *rf = &r->rec->faults[i];
        if (!rf->chosen)
            continue;
        char start[32], dur[32];
        fl_format_duration(rf->fault->start_ms, start, sizeof(start));
        fl_format_duration(rf->fault->duration_ms, dur, sizeof(dur));
        progress(r, "  %s: %s on %s (%s:%u) at +%s for %s", rf->fault->name,
                 fl_fault_kind_name(rf->fault->spec), rf->host->name, rf->host->address,
                 (unsigned)rf->host->port, start, dur);
        n++;
    }
    r->preview_items = calloc(n ? n : 1, sizeof(*r->preview_items));
    if (r->preview_items == NULL) {
        finish(r);
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < r->rec->n_faults; i++) {
        struct job *j = &r->jobs[i];
        if (!j->rf->chosen)
            continue;
        r->preview_items[k].rf = j->rf;
        r->preview_items[k].client = j->agent->ready && !j->agent->gone ? j->agent->client : NULL;
        k++;
    }
    progress(r, "dry run: what the agents say they would do:");
    if (fl_run_preview(r->preview_items, k, REQUEST_TIMEOUT_MS, on_plan_line, on_plan_done, r) <
        0) {
        free(r->preview_items);
        r->preview_items = NULL;
        finish(r);
    }
}

/* ---------------------------------------------------------------- probes */

static bool all_healthy(const struct run *r, const size_t *idx, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (r->rec->probes[idx[i]].tl.health.state != FL_HEALTH_HEALTHY)
            return false;
    return true;
}

/* A live line when the controller is late: the first time, then at most
 * once a second with the count so far. */
static void say_late(struct run *r, const struct fl_run_probe *rp,
                     const struct fl_probe_result *res)
{
    r->late_total++; /* one call per late result: no sum over every probe */
    uint64_t now = fl_mono_ms();
    if (r->late_said && now - r->late_said_ms < 1000)
        return;
    progress(r,
             "controller late: %llu attempt(s) so far could not be judged (probe %s: %s); "
             "not counted as failures",
             (unsigned long long)r->late_total, rp->spec->name, res->detail);
    r->late_said_ms = now;
    r->late_said = true;
}

/* One result of one probe, on the run's loop, whichever loop the probe runs on. */
static void take_result(struct probe_slot *s, const struct fl_probe_result *res)
{
    struct run *r = s->run;
    struct fl_run_probe *rp = &r->rec->probes[s->index];
    /* finish() stops every probe, and a stopped probe reports nothing more
     * (the pool drops what is still queued): the timeline is closed once the
     * run is done. */
    assert(r->phase != PHASE_DONE);
    if (r->alog_open)
        fl_attemptlog_add(&r->alog, s->index, res);
    bool changed = false;
    int rc = fl_timeline_add(&rp->tl, res, &changed);
    if (rc < 0) {
        abort_run(r, "cannot keep the timeline of probe %s: %s", rp->spec->name, fl_strerror(rc));
        return;
    }
    /* After injection the live lines use the summary's words: impact (the
     * first failure), detected (unhealthy), recovered (healthy again). */
    bool after =
        r->rec->injected_at_ms != 0 && res->started_ms + res->latency_ms >= r->rec->injected_at_ms;
    if (after && !r->impact_said &&
        (res->outcome == FL_OUTCOME_FAILED || res->outcome == FL_OUTCOME_TIMEOUT)) {
        r->impact_said = true;
        progress(r, "impact: probe %s failed (%s)", rp->spec->name, res->detail);
    }
    if (changed) {
        enum fl_health_state st = rp->tl.health.state;
        if (after && st == FL_HEALTH_UNHEALTHY)
            progress(r, "detected: probe %s is unhealthy (%s)", rp->spec->name, res->detail);
        else if (after && st == FL_HEALTH_HEALTHY)
            progress(r,
                     "healthy again: probe %s (%s; the recovery counts from the first of these "
                     "%u successes in a row)",
                     rp->spec->name, res->detail, rp->tl.health.rise);
        else
            progress(r, "probe %s is %s (%s)", rp->spec->name, fl_health_state_name(st),
                     res->detail);
        s->unhealthy_since_ms = st == FL_HEALTH_UNHEALTHY ? fl_mono_ms() : 0;
    }
    if (res->outcome == FL_OUTCOME_LATE)
        say_late(r, rp, res);
}

/* A probe on the run's loop. */
static void on_probe_result(struct fl_probe *p, const struct fl_probe_result *res, void *arg)
{
    fl_probe_data_judged(p, res->outcome, res->latency_ms); /* before the owner may stop p */
    take_result(arg, res);
}

/* A probe on a probe thread, handed over by the pool. */
static void on_pool_result(void *arg, size_t id, const struct fl_probe_result *res)
{
    struct run *r = arg;
    assert(id < r->rec->n_probes);
    take_result(&r->slots[id], res);
}

/* A probe thread's queue was full: results are lost, and the run cannot be
 * judged on them. Never silently. */
static void on_pool_overflow(void *arg, unsigned thread, uint64_t total)
{
    struct run *r = arg;
    if (r->phase == PHASE_DONE)
        return;
    r->rec->controller.queue_lost = total;
    abort_run(r,
              "controller overloaded: probe thread %u could not hand %llu result(s) to the run's "
              "loop, whose queue of %u (FL_PROBE_QUEUE_MAX) was full",
              thread + 1, (unsigned long long)total, FL_PROBE_QUEUE_MAX);
}

static void on_probe_stopped(void *arg)
{
    struct run *r = arg;
    assert(r->probes_open > 0);
    r->probes_open--;
}

/* ---------------------------------------------------------------- read-back */

/* A write probe's timeline as the recovery must count it (issue 15): only
 * writes that survived are successes; one acknowledged, then lost, is a
 * failure ("acknowledged, then lost"); a write the runner judged LATE stays
 * late. Kept in rp->rewritten for measure(). */
static int rewrite_timeline(struct probe_slot *s, struct fl_run_probe *rp,
                            const struct fl_rpo_write *w, size_t nw, const uint64_t *seqs, size_t n,
                            uint64_t end)
{
    enum fl_rpo_fate *fate = calloc(nw ? nw : 1, sizeof(*fate));
    struct fl_probe_result *res = calloc(nw ? nw : 1, sizeof(*res));
    int rc = fate != NULL && res != NULL ? fl_rpo_classify(w, nw, seqs, n, end, fate) : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < nw; i++) {
        enum fl_probe_outcome judged = FL_OUTCOME_TIMEOUT;
        uint32_t judged_ms = FL_PROBE_DATA_UNJUDGED;
        fl_probe_data_outcome(s->probe, i, &judged, &judged_ms);
        fl_rpo_result_of(&w[i], fate[i], (int)judged, judged_ms, rp->spec->timeout_ms, &res[i]);
    }
    free(fate);
    if (rc < 0) {
        free(res);
        return rc;
    }
    free(rp->rewritten);
    rp->rewritten = res;
    rp->n_rewritten = nw;
    return 0;
}

/* One write probe's records are back (or could not be read): measure its
 * data loss (controller/run/rpo.c); the last one finishes the run. */
static void on_read_back(void *arg, const uint64_t *seqs, size_t n, const char *err)
{
    struct probe_slot *s = arg;
    struct run *r = s->run;
    struct fl_run_probe *rp = &r->rec->probes[s->index];
    assert(r->readbacks_open > 0);
    r->readbacks_open--;
    if (err != NULL) {
        snprintf(rp->rpo_error, sizeof(rp->rpo_error), "cannot read the writes back: %s", err);
        progress(r, "write probe %s: %s", rp->spec->name, rp->rpo_error);
    } else {
        size_t nw = 0;
        const struct fl_rpo_write *w = fl_probe_data_writes(s->probe, &nw);
        uint64_t end = fl_now_ms();
        int rc = fl_rpo_measure(w, nw, seqs, n, end, rp->spec->interval_ms, &rp->rpo);
        if (rc == 0)
            rc = rewrite_timeline(s, rp, w, nw, seqs, n, end);
        if (rc < 0) {
            snprintf(rp->rpo_error, sizeof(rp->rpo_error), "cannot measure the data loss: %s",
                     fl_strerror(rc));
        } else {
            rp->rpo_measured = true;
            progress(r, "write probe %s: %s", rp->spec->name, rp->rpo.summary);
        }
    }
    if (r->readbacks_open == 0 && r->phase == PHASE_READBACK)
        finish(r);
}

/* After recovery, before the verdict: each write probe stops writing and
 * reads this run's records back from wherever the datastore now lives,
 * bounded by the recovery timeout. Without write probes: done. */
static void start_readback(struct run *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->rec->n_probes; i++)
        n += r->slots[i].probe != NULL && fl_probe_is_writer(r->rec->probes[i].spec);
    if (n == 0) {
        finish(r);
        return;
    }
    set_phase(r, PHASE_READBACK);
    progress(r, "reading back the writes of %zu write probe(s)", n);
    for (size_t i = 0; i < r->rec->n_probes; i++) {
        struct probe_slot *s = &r->slots[i];
        struct fl_run_probe *rp = &r->rec->probes[i];
        if (s->probe == NULL || !fl_probe_is_writer(rp->spec))
            continue;
        rp->is_writer = true;
        fl_probe_hold(s->probe);
        r->readbacks_open++;
        int rc = fl_probe_data_readback(s->probe, r->e->recovery.timeout_ms, on_read_back, s);
        if (rc < 0) {
            r->readbacks_open--;
            snprintf(rp->rpo_error, sizeof(rp->rpo_error), "cannot read the writes back: %s",
                     fl_strerror(rc));
        }
    }
    if (r->readbacks_open == 0)
        finish(r);
}

/* ---------------------------------------------------------------- the clock */

static void on_tick(uv_timer_t *t)
{
    struct run *r = t->data;
    const struct fl_experiment *e = r->e;
    uint64_t now = fl_mono_ms();
    if (r->phase == PHASE_DONE || r->aborting)
        return;
    if (r->o->abort != NULL && atomic_load(r->o->abort)) {
        abort_run(r, "%s", r->o->abort_reason ? r->o->abort_reason : "aborted by its owner");
        return;
    }

    if (r->phase == PHASE_STEADY_STATE) {
        if (all_healthy(r, e->steady_state, e->n_steady_state)) {
            start_targeting(r);
        } else if (now >= r->deadline_ms) {
            abort_run(r, "the steady state does not hold: nothing was injected");
        }
        return;
    }
    if (r->phase == PHASE_CONNECTING)
        return;
    /* abort_when, from injection on */
    for (size_t i = 0; i < e->n_aborts; i++) {
        const struct fl_abort *a = &e->aborts[i];
        if (a->type == FL_ABORT_MAX_DURATION && fl_now_ms() - r->rec->started_at_ms > a->ms) {
            abort_run(r, "the run took longer than max_duration %llu ms",
                      (unsigned long long)a->ms);
            return;
        }
        if (a->type == FL_ABORT_UNHEALTHY) {
            const struct probe_slot *s = &r->slots[a->probe];
            if (s->unhealthy_since_ms && now - s->unhealthy_since_ms >= a->ms) {
                abort_run(r, "probe %s unhealthy for %llu ms (abort_when unhealthy_for)",
                          r->rec->probes[a->probe].spec->name,
                          (unsigned long long)(now - s->unhealthy_since_ms));
                return;
            }
        }
    }
    if (r->phase == PHASE_RECOVERING) {
        if (all_healthy(r, e->recovery.probes, e->recovery.n_probes)) {
            progress(r, "recovery probes healthy");
            start_readback(r);
        } else if (now >= r->deadline_ms) {
            progress(r, "recovery timeout: not all recovery probes are healthy");
            start_readback(r);
        }
    }
}

static void on_heartbeat_reply(struct fl_client *cl, const Faultline__Envelope *reply, int status,
                               void *arg)
{
    (void)cl;
    (void)reply;
    (void)arg;
    if (status < 0 && status != -ECANCELED)
        fl_warn("heartbeat: %s", fl_strerror(status));
}

static void on_heartbeat(uv_timer_t *t)
{
    struct run *r = t->data;
    for (size_t i = 0; i < r->n_agents; i++) {
        struct agent *a = &r->agents[i];
        if (!a->ready || a->gone)
            continue;
        Faultline__Heartbeat hb = FAULTLINE__HEARTBEAT__INIT;
        hb.sent_at_ms = fl_now_ms();
        Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
        env.msg_case = FAULTLINE__ENVELOPE__MSG_HEARTBEAT;
        env.heartbeat = &hb;
        fl_client_request(a->client, &env, HEARTBEAT_MS * 2, on_heartbeat_reply, NULL);
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct run *r = h->data;
    if (r->phase == PHASE_DONE)
        return;
    abort_run(r, "interrupted (%s)", signum == SIGINT ? "SIGINT" : "SIGTERM");
}

/* ---------------------------------------------------------------- agents */

static void enter_steady_state(struct run *r)
{
    const struct fl_experiment *e = r->e;
    set_phase(r, PHASE_STEADY_STATE);
    /* enough for every steady-state probe to rise, with room to spare */
    uint64_t need = 2000;
    for (size_t i = 0; i < e->n_steady_state; i++) {
        const struct fl_probe_spec *p = &e->probes[e->steady_state[i]];
        uint64_t t = (uint64_t)(p->rise + p->fall + 1) * p->interval_ms + p->timeout_ms;
        if (2 * t + 2000 > need)
            need = 2 * t + 2000;
    }
    r->deadline_ms = fl_mono_ms() + need;
    progress(r, "all %zu agent(s) ready; checking the steady state", r->n_agents);
}

static void on_agent_ready(struct fl_client *cl, const Faultline__Welcome *w)
{
    struct agent *a = fl_client_data(cl);
    struct run *r = a->run;
    a->ready = true;
    a->connecting = false;
    fl_fleet_done(r->fleet, a->index); /* connected: its slot goes to the next */
    progress(r, "agent %s (%s) ready: faultline-agent %s on %s", a->host->name, fl_client_where(cl),
             w->version, w->hostname);
    for (size_t i = 0; i < r->n_agents; i++)
        if (!r->agents[i].ready)
            return;
    if (r->phase == PHASE_CONNECTING)
        enter_steady_state(r);
}

static void on_agent_closed(struct fl_client *cl, int reason)
{
    struct agent *a = fl_client_data(cl);
    struct run *r = a->run;
    a->client = NULL;
    if (a->connecting) {
        a->connecting = false;
        if (fl_fleet_is_fd_shortage(reason) && !r->closing && !r->aborting) {
            fl_fleet_no_descriptor(r->fleet, a->index); /* ours, not the agent's: again */
            return;
        }
        fl_fleet_done(r->fleet, a->index);
    }
    a->gone = true;
    if (r->closing)
        return;
    fl_client_explain(cl, reason, a->error, sizeof(a->error));
    if (r->phase == PHASE_CONNECTING || r->phase == PHASE_STEADY_STATE) {
        abort_run(r, "agent %s (%s) unreachable: %s; nothing was injected", a->host->name,
                  fl_client_where(cl), a->error);
        return;
    }
    progress(r, "LOST agent %s: %s; its lease reverts its faults", a->host->name, a->error);
    for (size_t i = 0; i < r->rec->n_faults; i++) {
        struct job *j = &r->jobs[i];
        if (j->agent == a && !j->done && !j->injecting)
            start_revert(j); /* marks it, without a request */
    }
    abort_run(r, "lost the connection to agent %s", a->host->name);
}

static const struct fl_client_ops agent_ops = {
    .ready = on_agent_ready,
    .closed = on_agent_closed,
};

/* The fleet fan-out starts agent i's connection (fleet.h). An agent that
 * cannot even be tried aborts the run, which then ends at once (nothing is
 * injected yet): no more agents are tried after it. */
static int start_agent(struct fl_fleet *f, size_t i, void *ctx)
{
    struct run *r = ctx;
    struct agent *a = &r->agents[i];
    (void)f;
    if (r->aborting || r->phase == PHASE_DONE)
        return -ECANCELED;
    uint64_t connect_ms = r->o->connect_timeout_ms ? r->o->connect_timeout_ms : 5000;
    int crc = fl_client_connect(&r->loop, a->host->name, a->host->address, a->host->port, r->key,
                                connect_ms, &agent_ops, a, &a->client);
    if (crc < 0) {
        a->client = NULL;
        if (fl_fleet_is_fd_shortage(crc))
            return crc; /* queued again */
        a->gone = true;
        snprintf(a->error, sizeof(a->error), "%s", fl_strerror(crc));
        abort_run(r, "agent %s unreachable: %s; nothing was injected", a->host->name, a->error);
        return crc;
    }
    a->connecting = true;
    return 0;
}

static void agent_expired(struct fl_fleet *f, size_t i, void *ctx)
{
    struct run *r = ctx;
    struct agent *a = &r->agents[i];
    (void)f;
    a->gone = true;
    snprintf(a->error, sizeof(a->error),
             "not connected in time: this controller had no descriptor free for it");
    abort_run(r, "agent %s unreachable: %s; nothing was injected", a->host->name, a->error);
}

static const struct fl_fleet_ops agent_fleet_ops = {.start = start_agent, .expired = agent_expired};

/* ---------------------------------------------------------------- the end */

static void finish(struct run *r)
{
    if (r->phase == PHASE_DONE)
        return;
    set_phase(r, PHASE_DONE);
    r->closing = true;
    r->rec->ended_at_ms = fl_now_ms();
    uv_timer_stop(&r->tick);
    uv_timer_stop(&r->heartbeat);
    uv_close((uv_handle_t *)&r->tick, NULL);
    uv_close((uv_handle_t *)&r->heartbeat, NULL);
    uv_close((uv_handle_t *)&r->sigint, NULL);
    uv_close((uv_handle_t *)&r->sigterm, NULL);
    for (size_t i = 0; i < r->rec->n_faults; i++)
        uv_close((uv_handle_t *)&r->jobs[i].timer, NULL);
    for (size_t i = 0; i < r->rec->n_probes; i++) {
        if (r->slots[i].probe) {
            fl_probe_get_stats(r->slots[i].probe, &r->rec->probes[i].stats);
            fl_probe_stop(r->slots[i].probe, on_probe_stopped, r);
            r->slots[i].probe = NULL;
        }
    }
    if (r->pool != NULL)
        fl_probe_pool_stop(r->pool, on_probe_stopped, r); /* one of probes_open */
    if (r->fleet != NULL)
        fl_fleet_stop(r->fleet);
    for (size_t i = 0; i < r->n_agents; i++)
        if (r->agents[i].client)
            fl_client_close(r->agents[i].client);
    if (r->targeting)
        fl_where_stop(&r->where);
    if (r->lag_open) {
        r->rec->controller.longest_stall_ms = r->lag.longest_ns / 1000000u;
        fl_lag_stop(&r->lag, NULL, NULL);
        r->lag_open = false;
    }
    if (r->alog_open)
        fl_attemptlog_close(&r->alog, NULL, NULL);
}

/* Which hosts each fault hits: all its targets, or count of them at random. */
static int plan_faults(struct run *r)
{
    const struct fl_experiment *e = r->e;
    struct fl_run_record *rec = r->rec;
    size_t total = 0;
    for (size_t i = 0; i < e->n_faults; i++) /* where: every candidate, chosen later */
        total +=
            e->faults[i].target.has_where ? e->faults[i].target.n_hosts : e->faults[i].target.count;
    rec->faults = calloc(total ? total : 1, sizeof(*rec->faults));
    r->jobs = calloc(total ? total : 1, sizeof(*r->jobs));
    r->agents = calloc(e->inventory.n_hosts ? e->inventory.n_hosts : 1, sizeof(*r->agents));
    if (rec->faults == NULL || r->jobs == NULL || r->agents == NULL)
        return -ENOMEM;
    /* room to shuffle the candidates of the fault with the most of them */
    size_t most = 1;
    for (size_t i = 0; i < e->n_faults; i++)
        if (e->faults[i].target.n_hosts > most)
            most = e->faults[i].target.n_hosts;
    size_t *agent_of_host = calloc(e->inventory.n_hosts + 1, sizeof(*agent_of_host));
    size_t *pick = calloc(most, sizeof(*pick));
    if (agent_of_host == NULL || pick == NULL) {
        free(agent_of_host);
        free(pick);
        return -ENOMEM;
    }
    for (size_t i = 0; i < e->n_faults; i++) {
        const struct fl_fault *f = &e->faults[i];
        size_t n = f->target.n_hosts;
        assert(f->target.count <= n); /* the experiment checks it */
        if (n > 0)
            memcpy(pick, f->target.hosts, n * sizeof(*pick));
        /* a partial Fisher-Yates shuffle picks count of them */
        size_t take = f->target.has_where ? n : f->target.count;
        for (size_t k = 0; !f->target.has_where && k < f->target.count && k < n; k++) {
            uint32_t rnd = 0;
            RAND_bytes((unsigned char *)&rnd, sizeof(rnd));
            size_t o = k + rnd % (n - k);
            size_t tmp = pick[k];
            pick[k] = pick[o];
            pick[o] = tmp;
        }
        for (size_t k = 0; k < take && k < n; k++) {
            size_t h = pick[k];
            if (agent_of_host[h] == 0) {
                struct agent *a = &r->agents[r->n_agents];
                a->index = r->n_agents++;
                a->run = r;
                a->host = &e->inventory.hosts[h];
                agent_of_host[h] = r->n_agents; /* index + 1 */
            }
            struct fl_run_fault *rf = &rec->faults[rec->n_faults];
            struct job *j = &r->jobs[rec->n_faults];
            rf->fault = f;
            rf->host = &e->inventory.hosts[h];
            rf->where = f->target.has_where;
            rf->chosen = !rf->where;
            snprintf(rf->outcome, sizeof(rf->outcome), "not applied");
            j->run = r;
            j->rf = rf;
            j->agent = &r->agents[agent_of_host[h] - 1];
            uv_timer_init(&r->loop, &j->timer);
            j->timer.data = j;
            rec->n_faults++;
        }
    }
    free(pick);
    free(agent_of_host);
    return 0;
}

/* The controller's own figures, and whether it was too late, too often, for
 * the run to judge the service (more than FL_RUN_OVERLOAD_PERCENT of the due
 * times, and at least FL_RUN_OVERLOAD_MIN of them). */
static void controller_figures(struct fl_run_record *rec)
{
    struct fl_controller_figures *c = &rec->controller;
    c->late_threshold_ms = UINT64_MAX;
    for (size_t i = 0; i < rec->n_probes; i++) {
        const struct fl_run_probe *rp = &rec->probes[i];
        c->attempts += rp->tl.counts.attempts;
        c->late += rp->tl.counts.late;
        c->late_starts += rp->stats.late_starts;
        c->skipped += rp->stats.skipped;
        if (rp->stats.max_start_late_ms > c->max_start_late_ms)
            c->max_start_late_ms = rp->stats.max_start_late_ms;
        uint64_t th =
            fl_probe_late_threshold_ms(rp->spec->timeout_ms ? rp->spec->timeout_ms : 1000);
        if (th < c->late_threshold_ms)
            c->late_threshold_ms = th;
    }
    if (c->late_threshold_ms == UINT64_MAX)
        c->late_threshold_ms = 0;
    /* Judged per loop: one probe thread behind is enough, even when the
     * others make the sum look fine (with one loop: the sum, as ever). */
    uint64_t due[FL_PROBE_THREADS_MAX + 1] = {0}, affected[FL_PROBE_THREADS_MAX + 1] = {0};
    for (size_t i = 0; i < rec->n_probes; i++) {
        const struct fl_run_probe *rp = &rec->probes[i];
        unsigned t = rp->thread <= FL_PROBE_THREADS_MAX ? rp->thread : 0;
        due[t] += rp->tl.counts.attempts + rp->stats.skipped;
        affected[t] += rp->tl.counts.late + rp->stats.late_starts + rp->stats.skipped;
    }
    c->overloaded = false;
    for (unsigned t = 0; t <= FL_PROBE_THREADS_MAX && !c->overloaded; t++) {
        if (affected[t] >= FL_RUN_OVERLOAD_MIN &&
            affected[t] * 100 > due[t] * FL_RUN_OVERLOAD_PERCENT) {
            c->overloaded = true;
            c->overloaded_thread = t;
        }
    }
}

/* The availability objective (issue 14): the measured recovery as MTTR
 * against the longest recovery the target allows; a run that passed every
 * other objective FAILs when it took longer. */
static void judge_availability(struct fl_run_record *rec)
{
    const struct fl_objectives *o = &rec->e->objectives;
    if (!o->has_availability || !rec->measured || rec->m.unobserved ||
        (rec->m.impacted && !rec->m.recovered))
        return;
    struct fl_avail_budget b = {.target = o->avail_target,
                                .failures_per_year = o->avail_failures_per_year,
                                .mtbf_ms = (double)o->avail_mtbf_ms,
                                .redundancy = o->avail_redundancy};
    struct fl_avail_result res;
    char err[160];
    double mttr = rec->m.no_impact ? 0 : (double)rec->m.recovery_time_ms;
    if (fl_avail_evaluate(&b, mttr, &res, err, sizeof(err)) < 0)
        return;
    rec->avail_measured = true;
    rec->avail_availability = res.availability;
    rec->avail_downtime_ms = res.downtime_ms_per_year;
    rec->avail_max_mttr_ms = res.max_mttr_ms;
    rec->avail_pass = res.pass;
    if (!res.pass &&
        (rec->verdict == FL_VERDICT_PASS || rec->verdict == FL_VERDICT_PASS_NO_IMPACT)) {
        rec->verdict = FL_VERDICT_FAIL;
        snprintf(rec->reason, sizeof(rec->reason),
                 "recovered in %.2fs, but to keep %.6g%% each failure may last at most %.2fs",
                 mttr / 1000.0, o->avail_target * 100.0, (double)res.max_mttr_ms / 1000.0);
    }
}

static void measure(struct run *r)
{
    const struct fl_experiment *e = r->e;
    struct fl_run_record *rec = r->rec;
    controller_figures(rec);
    /* one measurement per recovery probe, however many the experiment lists */
    struct fl_measurement *ms =
        calloc(e->recovery.n_probes ? e->recovery.n_probes : 1, sizeof(*ms));
    if (ms == NULL) {
        rec->verdict = FL_VERDICT_ABORTED;
        snprintf(rec->reason, sizeof(rec->reason), "out of memory measuring the recovery");
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < e->recovery.n_probes && rec->injected_at_ms; i++) {
        struct fl_run_probe *rp = &rec->probes[e->recovery.probes[i]];
        rp->in_recovery = true;
        int mrc;
        if (rp->rewritten != NULL) {
            /* a write probe: only surviving writes are successes */
            struct fl_measure_window w = {.injected_at = rec->injected_at_ms,
                                          .reverted_at = rec->reverted_at_ms,
                                          .end_at = rec->ended_at_ms};
            mrc = fl_measure_probe(rp->rewritten, rp->n_rewritten, rp->spec->rise, rp->spec->fall,
                                   &w, &rp->m);
        } else {
            mrc = fl_timeline_measure(&rp->tl, rec->reverted_at_ms, rec->ended_at_ms, &rp->m);
        }
        if (mrc == 0) {
            rp->measured = true;
            ms[n++] = rp->m;
        }
    }
    rec->measured = n > 0 && fl_measure_combine(ms, n, &rec->m) == 0;
    free(ms);

    rec->steady_state_returned = true;
    for (size_t i = 0; i < e->n_steady_state; i++) {
        struct fl_run_probe *rp = &rec->probes[e->steady_state[i]];
        struct fl_measurement m;
        if (!rec->injected_at_ms ||
            fl_timeline_measure(&rp->tl, rec->reverted_at_ms, rec->ended_at_ms, &m) < 0 ||
            !m.healthy_at_end)
            rec->steady_state_returned = false;
    }
    if (rec->controller.overloaded && rec->abort_reason[0] == '\0') {
        const struct fl_controller_figures *c = &rec->controller;
        snprintf(rec->abort_reason, sizeof(rec->abort_reason),
                 "controller overloaded: %llu of %llu attempts were late, started %llu ms or more "
                 "late, or skipped (its loop stalled up to %llu ms%s%s); the service was not "
                 "judged",
                 (unsigned long long)(c->late + c->late_starts + c->skipped),
                 (unsigned long long)(c->attempts + c->skipped),
                 (unsigned long long)c->late_threshold_ms, (unsigned long long)c->longest_stall_ms,
                 c->probe_threads > 1 ? "; behind first: " : "",
                 c->probe_threads <= 1       ? ""
                 : c->overloaded_thread == 0 ? "the run's loop"
                                             : "a probe thread");
    }

    /* the RPO: the worst of the write probes; measured only if every one was */
    bool rpo_measured = false;
    uint64_t rpo_ms = 0;
    for (size_t i = 0; i < rec->n_probes; i++) {
        const struct fl_run_probe *rp = &rec->probes[i];
        if (!fl_probe_is_writer(rp->spec))
            continue;
        if (!rp->rpo_measured) {
            rpo_measured = false;
            break;
        }
        rpo_measured = true;
        if (rp->rpo.rpo_ms > rpo_ms)
            rpo_ms = rp->rpo.rpo_ms;
    }
    rec->rpo_measured = rpo_measured;
    rec->rpo_ms = rpo_ms;

    struct fl_measure_objectives obj = {
        .has_rto = e->objectives.has_rto,
        .rto_ms = e->objectives.rto_ms,
        .has_rpo = e->objectives.has_rpo,
        .rpo_ms = e->objectives.rpo_ms,
        .impact_required = e->objectives.impact_required,
    };
    struct fl_measurement none;
    memset(&none, 0, sizeof(none));
    none.unobserved = true;
    struct fl_verdict_input in = {
        .objectives = &obj,
        .recovery = rec->measured ? &rec->m : &none,
        .rpo_measured = rpo_measured,
        .rpo_ms = rpo_ms,
        .steady_state_returned = rec->steady_state_returned,
        .abort_reason = rec->abort_reason[0] ? rec->abort_reason : NULL,
    };
    if (fl_measure_verdict(&in, &rec->verdict, rec->reason, sizeof(rec->reason)) < 0) {
        rec->verdict = FL_VERDICT_ABORTED;
        snprintf(rec->reason, sizeof(rec->reason), "the measurement could not be computed");
    }
    judge_availability(rec);
}

/* Each ssh probe attempt holds a thread of libuv's pool for as long as it
 * runs (libssh2 blocks), and uv_getaddrinfo (tcp probes, agent connections)
 * needs the same pool: room for every ssh probe and the default 4 more, when
 * there is an ssh probe (fl_threadpool_size). */
static void size_thread_pool(const struct fl_experiment *e)
{
    size_t n = 0;
    for (size_t i = 0; i < e->n_probes; i++)
        n += e->probes[i].type == FL_PROBE_SSH;
    fl_threadpool_size(n == 0 ? 0 : n + FL_THREADPOOL_DEFAULT);
}

int fl_run(const struct fl_experiment *e, const struct fl_key *key, const struct fl_run_options *o,
           struct fl_run_record *rec)
{
    size_thread_pool(e);
    struct run *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return -ENOMEM;
    int rc = uv_loop_init(&r->loop);
    if (rc < 0) {
        free(r);
        return rc;
    }
    memset(rec, 0, sizeof(*rec));
    rec->e = e;
    rec->started_at_ms = fl_now_ms();
    unsigned char id[FL_RUN_ID_LEN / 2];
    if (RAND_bytes(id, sizeof(id)) != 1) {
        uv_loop_close(&r->loop);
        free(r);
        return -EIO;
    }
    for (size_t i = 0; i < sizeof(id); i++)
        snprintf(rec->run_id + 2 * i, 3, "%02x", id[i]);
    r->e = e;
    r->key = key;
    r->o = o;
    r->rec = rec;
    r->phase = PHASE_CONNECTING; /* where every run starts; not a move */

    rc = plan_faults(r);
    rec->probes = calloc(e->n_probes ? e->n_probes : 1, sizeof(*rec->probes));
    r->slots = calloc(e->n_probes ? e->n_probes : 1, sizeof(*r->slots));
    if (rec->probes == NULL || r->slots == NULL) {
        rc = rc < 0 ? rc : -ENOMEM;
    } else {
        /* every probe in the record, also those a failure below never starts */
        rec->n_probes = e->n_probes;
        for (size_t i = 0; i < e->n_probes; i++) {
            rec->probes[i].spec = &e->probes[i];
            fl_timeline_init(&rec->probes[i].tl, e->probes[i].rise, e->probes[i].fall);
        }
    }
    if (rc == 0) {
        rc = fl_lag_start(&r->lag, &r->loop);
        r->lag_open = true; /* its handles are initialised even on failure: closed in finish */
    }
    if (rc == 0 && o->attempts_path != NULL) {
        if (fl_attemptlog_open(&r->alog, &r->loop, o->attempts_path) == 0)
            r->alog_open = true;
        else
            fl_error("%s", r->alog.error);
        snprintf(rec->attempts_error, sizeof(rec->attempts_error), "%s", r->alog.error);
    }

    /* Neither can fail on a loop that is up: uv_loop_init made the signal pipe. */
    uv_timer_init(&r->loop, &r->tick);
    uv_timer_init(&r->loop, &r->heartbeat);
    uv_signal_init(&r->loop, &r->sigint);
    uv_signal_init(&r->loop, &r->sigterm);
    r->tick.data = r->heartbeat.data = r->sigint.data = r->sigterm.data = r;

    if (o->probe_threads != 0) {
        r->probe_threads = o->probe_threads;
        rec->controller.probe_threads_from = "command line";
    } else if (e->probe_threads != 0) {
        r->probe_threads = e->probe_threads;
        rec->controller.probe_threads_from = "experiment";
    } else {
        r->probe_threads =
            fl_probe_threads_auto(e->probes, e->n_probes, uv_available_parallelism());
        rec->controller.probe_threads_from = "auto";
    }
    rec->controller.probe_threads = r->probe_threads;
    if (rc == 0 && r->probe_threads > 1) {
        rc = fl_probe_pool_new(&r->loop, r->probe_threads, on_pool_result, on_pool_overflow, r,
                               &r->pool);
        if (rc == 0)
            r->probes_open++; /* the pool: stopped in finish */
    }
    for (size_t i = 0; rc == 0 && i < e->n_probes; i++) {
        struct probe_slot *s = &r->slots[i];
        s->run = r;
        s->index = i;
        if (e->probes[i].is_template)
            continue; /* run only for where: */
        if (r->pool != NULL && fl_probe_pool_kind_ok(e->probes[i].type)) {
            rc = fl_probe_pool_add(r->pool, i, &e->probes[i]); /* started below */
            continue;
        }
        if (fl_probe_is_writer(&e->probes[i])) {
            /* a write probe tags its records with this run's id */
            struct fl_probe_spec spec;
            rc = fl_probe_spec_copy(&spec, &e->probes[i]);
            if (rc == 0 && (spec.u.data.run_id = strdup(rec->run_id)) == NULL)
                rc = -ENOMEM;
            if (rc == 0)
                rc = fl_probe_start(&r->loop, &spec, on_probe_result, s, &s->probe);
            fl_probe_spec_free(&spec);
        } else {
            rc = fl_probe_start(&r->loop, &e->probes[i], on_probe_result, s, &s->probe);
        }
        if (rc == 0) {
            r->probes_open++;
            fl_probe_set_lag(s->probe, &r->lag);
        } else
            s->probe = NULL;
    }
    char pool_err[256] = "";
    if (rc == 0 && r->pool != NULL && fl_probe_pool_start(r->pool, pool_err, sizeof(pool_err)) < 0)
        abort_run(r, "cannot start the probe threads: %s", pool_err);
    progress(r, "experiment %s: %zu probe(s), %zu fault(s) on %zu agent(s)", e->name, e->n_probes,
             rec->n_faults, r->n_agents);
    /* The agents connect through the fleet fan-out, a window at a time; each
     * connection then stays open for the whole run, so they must all fit in
     * the descriptor limit: refused before anything runs if they do not. */
    size_t reserve = FL_FLEET_FD_RESERVE + 2 * e->n_probes;
    size_t budget = rc == 0 ? fl_fleet_fd_budget(reserve) : 0;
    if (rc == 0 && r->n_agents > budget) {
        abort_run(
            r,
            "%zu agents need %zu connections open for the whole run, but the descriptor "
            "limit leaves room for %zu (RLIMIT_NOFILE less what is open and up to %zu kept for "
            "probes and files): "
            "raise `ulimit -n` (the hard limit); nothing was injected",
            r->n_agents, r->n_agents, budget, reserve);
    }
    if (rc == 0 && r->phase != PHASE_DONE && !r->aborting) {
        uint64_t connect_ms = o->connect_timeout_ms ? o->connect_timeout_ms : 5000;
        size_t window = fl_fleet_window(reserve);
        /* every agent gets its connect timeout, a window after another */
        uint64_t deadline = connect_ms * (1 + r->n_agents / window);
        rc = fl_fleet_new(&r->loop, r->n_agents, window, deadline, &agent_fleet_ops, r, &r->fleet);
        if (rc == 0)
            fl_fleet_start(r->fleet);
    }
    if (rc != 0) {
        snprintf(rec->abort_reason, sizeof(rec->abort_reason), "cannot start: %s", fl_strerror(rc));
        r->aborting = true;
        finish(r);
    } else if (r->phase != PHASE_DONE) {
        assert(!r->aborting);
        uv_timer_start(&r->tick, on_tick, TICK_MS, TICK_MS);
        uv_timer_start(&r->heartbeat, on_heartbeat, HEARTBEAT_MS, HEARTBEAT_MS);
        if (o->abort == NULL) {
            uv_signal_start(&r->sigint, on_signal, SIGINT);
            uv_signal_start(&r->sigterm, on_signal, SIGTERM);
        }
        if (r->n_agents == 0)
            enter_steady_state(r);
    }
    uv_run(&r->loop, UV_RUN_DEFAULT);
    assert(r->phase == PHASE_DONE && r->probes_open == 0);
    if (uv_loop_close(&r->loop) != 0)
        fl_error("internal error: handles left open after the run");
    if (r->alog_open) {
        rec->attempts_lines = r->alog.lines_written;
        rec->attempts_written = !r->alog.failed;
        snprintf(rec->attempts_error, sizeof(rec->attempts_error), "%s", r->alog.error);
    }
    if (r->pool != NULL) {
        /* every worker has ended: its probes' figures are the run's to read */
        for (size_t i = 0; i < rec->n_probes; i++) {
            int t = fl_probe_pool_thread(r->pool, i);
            if (t < 0)
                continue;
            fl_probe_pool_stats(r->pool, i, &rec->probes[i].stats);
            rec->probes[i].thread = (unsigned)t + 1;
        }
        uint64_t stall = fl_probe_pool_longest_stall_ns(r->pool) / 1000000u;
        if (stall > rec->controller.longest_stall_ms)
            rec->controller.longest_stall_ms = stall;
        rec->controller.queue_lost = fl_probe_pool_lost(r->pool);
        fl_probe_pool_free(r->pool);
        r->pool = NULL;
    }
    measure(r);
    fl_fleet_free(r->fleet);
    fl_where_free(&r->where);
    free(r->preview_items);
    free(r->agents);
    free(r->jobs);
    free(r->slots);
    free(r);
    return 0;
}

void fl_run_record_free(struct fl_run_record *rec)
{
    for (size_t i = 0; i < rec->n_probes; i++) {
        fl_timeline_free(&rec->probes[i].tl);
        free(rec->probes[i].rewritten);
    }
    free(rec->probes);
    free(rec->faults);
    memset(rec, 0, sizeof(*rec));
}
