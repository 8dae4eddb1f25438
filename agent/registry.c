/* The life of a record, and the only legal moves (set_state asserts them):
 *
 *   JOURNALING ──► APPLYING ──► ACTIVE ──► REVERTING ──► ENDING ──► ENDED
 *       │              │                    ▲  │  ▲ │
 *       │              └─ apply failed ─────┘  │  │ └─ tries left: again in REVERT_RETRY_MS
 *       ├─ journal failed ───────────────► ENDED  │
 *       └─ reverted before applied ─► ENDING      │
 *                                REVERT_FAILED ◄──┘ REVERT_RETRIES tries failed
 *                                  │   ▲  └─ backoff timer or a revert request ─► REVERTING
 *                                  │   └─ that try failed too
 *                                  └─ agent stopping ─► LEFT (kept in the journal for the
 *                                                        guardian and the next start)
 *
 * A fault an earlier agent left in the journal, and start-up could not revert
 * either, starts at REVERT_FAILED (fl_registry_adopt).
 *
 * ACTIVE, REVERTING and REVERT_FAILED records are on the active list (and in
 * fl_registry_active_count); ENDED and LEFT ones on the ended list. A fault
 * whose revert failed is never forgotten while the agent runs: it is tried
 * again with a backoff that doubles from REVERT_BACKOFF_MS up to
 * REVERT_BACKOFF_MAX_MS (so a try at least every minute, for as long as the agent
 * runs), and listed as FAULT_STATE_REVERT_FAILED with its error.
 *
 * The reservation ledger (agent/guardrails.h): prepare holds what a fault
 * will take; apply being over (after_apply) marks its holds applied; retire
 * releases them -- the one place a record leaves the active list, so exactly
 * once. A REVERT_FAILED or adopted record keeps only its process holds: its
 * fill file or worker is on the host, where the guardrails measure it. */
#include "agent/registry.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/guardrails.h"
#include "agent/journal.h"
#include "agent/preview.h"
#include "common/clock.h"
#include "common/cryptolib.h"
#include "common/faultkind.h"
#include "common/log.h"
#include "common/pbutil.h"
#include "common/units.h"

#define ENDED_KEPT 64 /* ended faults remembered for listings */
#define LEASE_CHECK_MS 200
#define REVERT_RETRY_MS 1000
#define REVERT_RETRIES 5
#define REVERT_BACKOFF_MS 2000
#define REVERT_BACKOFF_MAX_MS 60000

enum rec_state {
    REC_JOURNALING, /* apply record being written */
    REC_APPLYING,
    REC_ACTIVE,
    REC_REVERTING,
    REC_REVERT_FAILED, /* still active; tried again after a backoff */
    REC_ENDING,        /* revert record being written */
    REC_ENDED,
    REC_LEFT, /* revert failed when the agent stopped: left in the journal */
};

static const char *const state_names[] = {
    "journaling", "applying", "active", "reverting", "revert-failed", "ending", "ended", "left",
};

struct waiter {
    struct waiter *next;
    struct batch *batch;
};

/* A revert of one or more faults that reports once all have ended. */
struct batch {
    struct fl_registry *reg;
    bool wait_journal; /* report only once no journal write is in flight */
    size_t outstanding;
    struct fl_record **recs;
    size_t n;
    int status;
    fl_revert_cb cb;
    void *arg;
};

struct fl_record {
    struct fl_registry *reg;
    struct fl_record *prev, *next;
    struct fl_fault f;
    enum rec_state state;
    bool busy; /* a thread-pool operation is in flight */
    bool revert_wanted;
    enum fl_end why;
    bool failed;        /* apply failed */
    bool revert_failed; /* the last revert try failed; cleared when one succeeds */
    bool detached;
    uint64_t session_id;
    uint64_t applied_at_ms, reverted_at_ms;
    uint64_t ends_at_mono_ms;
    int revert_tries;
    char error[640];        /* why apply failed, or why the fault ended early */
    char revert_error[640]; /* why the last revert try failed */
    int refs;               /* the list, batches and timers hold references */
    uv_timer_t timer;       /* duration, then revert retries */
    uv_timer_t tick;
    int open_handles;
    fl_inject_cb inject_cb;
    void *inject_arg;
    struct waiter *waiters;
    /* thread-pool operation */
    uv_work_t work;
    int op; /* OP_APPLY, OP_TICK, OP_REVERT */
    int op_rc;
    char op_err[512];
};

enum { OP_APPLY, OP_TICK, OP_REVERT };

struct lease {
    struct lease *next;
    uint64_t session_id;
    uint64_t last_mono_ms;
};

struct fl_registry {
    uv_loop_t *loop;
    struct fl_journal *journal;
    const struct fl_agent_ctx *ctx;
    uint32_t lease_ms;
    struct fl_record *active; /* newest first */
    struct fl_record *ended;  /* newest first, at most ENDED_KEPT */
    size_t n_active, n_ended;
    bool stopping; /* a failed revert is left in the journal, not retried */
    struct lease *leases;
    uv_timer_t lease_timer;
    /* what faults accepted but not yet applied will take (agent/guardrails.h) */
    struct fl_ledger ledger;
    /* journal writes queued and not yet called back; a stop's batch waits
     * for none to be left (parked), so that compacting the journal never
     * races an update record still being fsynced */
    size_t journal_pending;
    struct batch *parked;
};

static void start_revert(struct fl_record *r);
static void run_op(struct fl_record *r, int op);

/* Every change of a record's state goes through here. */
static bool legal(enum rec_state from, enum rec_state to)
{
    switch (from) {
    case REC_JOURNALING:
        return to == REC_APPLYING || to == REC_ENDED || to == REC_ENDING;
    case REC_APPLYING:
        return to == REC_ACTIVE || to == REC_REVERTING;
    case REC_ACTIVE:
        return to == REC_REVERTING;
    case REC_REVERTING:
        return to == REC_ENDING || to == REC_REVERT_FAILED;
    case REC_REVERT_FAILED:
        return to == REC_REVERTING || to == REC_LEFT;
    case REC_ENDING:
        return to == REC_ENDED;
    case REC_ENDED:
    case REC_LEFT:
        return false;
    }
    return false;
}

static void set_state(struct fl_record *r, enum rec_state to)
{
    if (!legal(r->state, to)) {
        /* a bug: loud in every build, fatal in debug builds */
        fl_error("internal error: fault %s: %s -> %s is not a legal move", r->f.id,
                 state_names[r->state], state_names[to]);
        assert(!"illegal record state transition");
    }
    fl_debug("fault %s: %s -> %s", r->f.id, state_names[r->state], state_names[to]);
    r->state = to;
}

/* ---------------------------------------------------------------- lifetime */

static void rec_free(struct fl_record *r)
{
    json_decref(r->f.undo);
    if (r->f.spec)
        faultline__fault_spec__free_unpacked(r->f.spec, NULL);
    free(r);
}

static void rec_handle_closed(uv_handle_t *h)
{
    struct fl_record *r = h->data;
    if (--r->open_handles == 0 && r->refs == 0)
        rec_free(r);
}

static void rec_unref(struct fl_record *r)
{
    assert(r->refs > 0);
    if (--r->refs > 0)
        return;
    if (r->open_handles > 0) {
        if (!uv_is_closing((uv_handle_t *)&r->timer)) {
            uv_close((uv_handle_t *)&r->timer, rec_handle_closed);
            uv_close((uv_handle_t *)&r->tick, rec_handle_closed);
        }
        return;
    }
    rec_free(r);
}

static void list_remove(struct fl_record **head, struct fl_record *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        *head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void list_push(struct fl_record **head, struct fl_record *r)
{
    r->prev = NULL;
    r->next = *head;
    if (*head)
        (*head)->prev = r;
    *head = r;
}

const char *fl_record_id(const struct fl_record *rec)
{
    return rec->f.id;
}

const char *fl_record_revert_error(const struct fl_record *rec)
{
    return rec->revert_failed || rec->state == REC_LEFT ? rec->revert_error : NULL;
}

const json_t *fl_record_undo(const struct fl_record *rec)
{
    return rec->f.undo;
}

/* ---------------------------------------------------------------- ending */

static void batch_report(struct batch *b)
{
    b->cb(b->arg, (const struct fl_record *const *)b->recs, b->n, b->status);
    for (size_t i = 0; i < b->n; i++)
        rec_unref(b->recs[i]);
    free(b->recs);
    free(b);
}

static void batch_done_one(struct batch *b)
{
    if (--b->outstanding > 0)
        return;
    if (b->wait_journal && b->reg->journal_pending > 0) {
        assert(b->reg->parked == NULL); /* one stop at a time */
        b->reg->parked = b;             /* on_journaled reports it */
        return;
    }
    batch_report(b);
}

/* ---------------------------------------------------------------- journal */

/* Every journal write of the registry goes through here, so that it knows
 * when none is in flight. */
struct jwrite {
    struct fl_registry *reg;
    fl_journal_cb cb;
    void *arg;
};

static void on_journaled(int status, void *arg)
{
    struct jwrite *w = arg;
    struct fl_registry *reg = w->reg;
    fl_journal_cb cb = w->cb;
    void *cb_arg = w->arg;
    free(w);
    cb(status, cb_arg);
    assert(reg->journal_pending > 0);
    if (--reg->journal_pending == 0 && reg->parked != NULL) {
        struct batch *b = reg->parked;
        reg->parked = NULL;
        batch_report(b); /* last: the stop's callback may close the registry */
    }
}

static int journal_append(struct fl_registry *reg, json_t *rec, fl_journal_cb cb, void *arg)
{
    struct jwrite *w = malloc(sizeof(*w));
    if (w == NULL)
        return -ENOMEM;
    *w = (struct jwrite){reg, cb, arg};
    reg->journal_pending++; /* before: the callback may run before the call returns */
    int rc = fl_journal_append_async(reg->journal, reg->loop, rec, on_journaled, w);
    if (rc < 0) {
        reg->journal_pending--;
        free(w);
    }
    return rc;
}

/* The record has ended (status 0) or its revert failed (status < 0). */
static void notify_waiters(struct fl_record *r, int status)
{
    struct waiter *w = r->waiters;
    r->waiters = NULL;
    while (w) {
        struct waiter *next = w->next;
        if (status < 0 && w->batch->status == 0)
            w->batch->status = status;
        batch_done_one(w->batch);
        free(w);
        w = next;
    }
}

static void finish_inject(struct fl_record *r, Faultline__ErrorCode code, const char *error)
{
    fl_inject_cb cb = r->inject_cb;
    r->inject_cb = NULL;
    if (cb)
        cb(r->inject_arg, error ? NULL : r, code, error);
}

/* The record leaves the active list for the ended list, as ENDED or LEFT. */
static void retire(struct fl_record *r, enum rec_state to)
{
    struct fl_registry *reg = r->reg;
    set_state(r, to);
    uv_timer_stop(&r->timer);
    uv_timer_stop(&r->tick);
    list_remove(&reg->active, r);
    reg->n_active--;
    fl_ledger_release(&reg->ledger, r->f.id); /* the one release of what it held */
    list_push(&reg->ended, r);
    reg->n_ended++;
    if (reg->n_ended > ENDED_KEPT) {
        struct fl_record *old = reg->ended;
        while (old->next)
            old = old->next;
        list_remove(&reg->ended, old);
        reg->n_ended--;
        rec_unref(old);
    }
    notify_waiters(r, to == REC_LEFT ? -EIO : 0);
}

static const char *end_name(enum fl_end why)
{
    switch (why) {
    case FL_END_REQUESTED:
        return "revert requested";
    case FL_END_EXPIRED:
        return "duration ended";
    case FL_END_LEASE_LOST:
        return "controller silent past its lease";
    case FL_END_HALTED:
        return "halt";
    case FL_END_SHUTDOWN:
        return "agent stopping";
    }
    return "?";
}

static void on_revert_journaled(int status, void *arg)
{
    struct fl_record *r = arg;
    if (status < 0)
        fl_error("fault %s: cannot journal its revert: %s (it is reverted; a restart "
                 "will revert it again, harmlessly)",
                 r->f.id, fl_strerror(status));
    if (r->failed && r->inject_cb) {
        /* an apply that failed, now cleaned up */
        finish_inject(r, FAULTLINE__ERROR_CODE__ERROR_APPLY_FAILED, r->error);
    }
    retire(r, REC_ENDED); /* the list's reference moves to the ended list */
}

static void journal_revert(struct fl_record *r, int ok, const char *error)
{
    set_state(r, REC_ENDING);
    json_t *rec = fl_journal_revert_record(r->f.id, ok, error);
    int rc = rec ? journal_append(r->reg, rec, on_revert_journaled, r) : -ENOMEM;
    json_decref(rec);
    if (rc < 0)
        on_revert_journaled(rc, r);
}

static void on_retry_revert(uv_timer_t *t)
{
    struct fl_record *r = t->data;
    if (r->state == REC_REVERT_FAILED)
        set_state(r, REC_REVERTING);
    run_op(r, OP_REVERT);
}

/* After the quick tries: the fault stays active, listed with its error, and
 * is tried again after a backoff, or left to the journal when stopping. */
static void revert_failed(struct fl_record *r, const char *err)
{
    int over = r->revert_tries - REVERT_RETRIES; /* backoff tries so far */
    uint64_t delay = REVERT_BACKOFF_MS;
    while (over-- > 0 && delay < REVERT_BACKOFF_MAX_MS)
        delay *= 2;
    if (delay > REVERT_BACKOFF_MAX_MS)
        delay = REVERT_BACKOFF_MAX_MS;
    set_state(r, REC_REVERT_FAILED);
    if (r->failed && r->inject_cb) {
        /* an apply that failed and could not be cleaned up */
        char msg[1400];
        snprintf(msg, sizeof(msg), "%s; undoing it failed too: %s (the agent keeps trying)",
                 r->error, err);
        finish_inject(r, FAULTLINE__ERROR_CODE__ERROR_APPLY_FAILED, msg);
    }
    if (r->reg->stopping) {
        snprintf(r->revert_error, sizeof(r->revert_error),
                 "revert failed after %d tries: %s; left in the journal for the guardian and "
                 "the next start",
                 r->revert_tries, err);
        fl_error("fault %s (%s): %s", r->f.id, r->f.kind->name, r->revert_error);
        retire(r, REC_LEFT);
        return;
    }
    char next[32];
    fl_format_duration(delay, next, sizeof(next));
    snprintf(r->revert_error, sizeof(r->revert_error),
             "revert failed (%d tries): %s; trying again in %s", r->revert_tries, err, next);
    fl_error("fault %s (%s): REVERT FAILED: %s", r->f.id, r->f.kind->name, r->revert_error);
    uv_timer_start(&r->timer, on_retry_revert, delay, 0);
    notify_waiters(r, -EIO);
}

/* ---------------------------------------------------------------- pool ops */

static void work_op(uv_work_t *w)
{
    struct fl_record *r = w->data;
    r->op_err[0] = '\0';
    switch (r->op) {
    case OP_APPLY:
        r->op_rc = r->f.kind->apply(&r->f, r->op_err, sizeof(r->op_err));
        break;
    case OP_TICK:
        r->op_rc = r->f.kind->tick(&r->f, r->op_err, sizeof(r->op_err));
        break;
    case OP_REVERT:
        r->op_rc = r->f.undo ? r->f.kind->revert(r->f.undo, r->op_err, sizeof(r->op_err)) : 0;
        break;
    }
}

static void on_duration(uv_timer_t *t)
{
    struct fl_record *r = t->data;
    r->why = FL_END_EXPIRED;
    start_revert(r);
}

static void on_tick(uv_timer_t *t)
{
    struct fl_record *r = t->data;
    if (r->state == REC_ACTIVE && !r->busy && !r->revert_wanted)
        run_op(r, OP_TICK);
}

static void on_update_journaled(int status, void *arg)
{
    struct fl_record *r = arg;
    if (status < 0)
        fl_error("fault %s: cannot journal what apply learnt: %s", r->f.id, fl_strerror(status));
    rec_unref(r);
}

static void after_apply(struct fl_record *r, int rc, const char *err)
{
    struct fl_registry *reg = r->reg;
    /* apply is over, done or failed: whatever it took now shows on the host
     * and it takes no more, so the ledger stops counting its bytes (a
     * process it holds stays held until it ends) */
    fl_ledger_applied(&reg->ledger, r->f.id);
    if (rc < 0) {
        fl_warn("fault %s (%s): apply failed: %s", r->f.id, r->f.kind->name, err);
        r->failed = true;
        snprintf(r->error, sizeof(r->error), "%s", err);
        /* whatever apply got done is undone before the error is reported */
        set_state(r, REC_REVERTING);
        run_op(r, OP_REVERT);
        return;
    }
    r->applied_at_ms = fl_now_ms();
    r->ends_at_mono_ms = fl_mono_ms() + r->f.duration_ms;
    set_state(r, REC_ACTIVE);
    fl_info("fault %s (%s) applied for %llu ms: %s", r->f.id, r->f.kind->name,
            (unsigned long long)r->f.duration_ms, r->f.detail);

    /* apply may have learnt more (worker pids): journal the undo as it is now */
    json_t *upd = fl_journal_update_record(r->f.id, r->f.undo);
    r->refs++;
    if (upd == NULL || journal_append(reg, upd, on_update_journaled, r) < 0)
        on_update_journaled(-ENOMEM, r);
    json_decref(upd);

    uv_timer_start(&r->timer, on_duration, r->f.duration_ms, 0);
    if (r->f.tick_ms > 0 && r->f.kind->tick)
        uv_timer_start(&r->tick, on_tick, r->f.tick_ms, r->f.tick_ms);
    finish_inject(r, 0, NULL);
    if (r->revert_wanted)
        start_revert(r);
}

static void after_revert(struct fl_record *r, int rc, const char *err)
{
    if (rc < 0) {
        r->revert_tries++;
        r->revert_failed = true;
        if (r->revert_tries < REVERT_RETRIES) {
            fl_warn("fault %s (%s): revert failed (try %d of %d): %s", r->f.id, r->f.kind->name,
                    r->revert_tries, REVERT_RETRIES, err);
            snprintf(r->revert_error, sizeof(r->revert_error), "revert failed (try %d of %d): %s",
                     r->revert_tries, REVERT_RETRIES, err);
            uv_timer_start(&r->timer, on_retry_revert, REVERT_RETRY_MS, 0);
            return;
        }
        revert_failed(r, err);
        return;
    }
    r->reverted_at_ms = fl_now_ms();
    if (r->revert_failed)
        fl_warn("fault %s (%s) reverted after %d failed tries", r->f.id, r->f.kind->name,
                r->revert_tries);
    else if (!r->failed)
        fl_info("fault %s (%s) reverted: %s", r->f.id, r->f.kind->name, end_name(r->why));
    r->revert_failed = false;
    journal_revert(r, 1, NULL);
}

static void after_op(uv_work_t *w, int status)
{
    struct fl_record *r = w->data;
    r->busy = false;
    int rc = status < 0 ? status : r->op_rc;
    const char *err = r->op_err[0] ? r->op_err : fl_strerror(rc);
    switch (r->op) {
    case OP_APPLY:
        after_apply(r, rc, err);
        break;
    case OP_TICK:
        if (rc < 0)
            fl_warn("fault %s: %s", r->f.id, err);
        if (r->revert_wanted)
            start_revert(r);
        break;
    case OP_REVERT:
        after_revert(r, rc, err);
        break;
    }
}

static void run_op(struct fl_record *r, int op)
{
    r->op = op;
    r->busy = true;
    r->work.data = r;
    int rc = uv_queue_work(r->reg->loop, &r->work, work_op, after_op);
    if (rc < 0) {
        r->op_rc = rc;
        snprintf(r->op_err, sizeof(r->op_err), "cannot queue work: %s", fl_strerror(rc));
        after_op(&r->work, rc);
    }
}

/* Ends an active fault now, or as soon as its operation in flight is done. */
/* Ends an active fault now, or as soon as its operation in flight is done.
 * A fault whose revert failed is tried again at once. */
static void start_revert(struct fl_record *r)
{
    r->revert_wanted = true;
    if (r->busy || (r->state != REC_ACTIVE && r->state != REC_REVERT_FAILED))
        return; /* after_op, the retry timer or the apply journal write comes back here */
    uv_timer_stop(&r->timer);
    uv_timer_stop(&r->tick);
    set_state(r, REC_REVERTING);
    run_op(r, OP_REVERT);
}

/* ---------------------------------------------------------------- inject */

static void on_apply_journaled(int status, void *arg)
{
    struct fl_record *r = arg;
    if (status < 0) {
        /* nothing was applied: no revert needed, and nothing to journal */
        snprintf(r->error, sizeof(r->error), "cannot write the journal: %s; nothing applied",
                 fl_strerror(status));
        r->failed = true;
        finish_inject(r, FAULTLINE__ERROR_CODE__ERROR_INTERNAL, r->error);
        retire(r, REC_ENDED);
        return;
    }
    if (r->revert_wanted) {
        /* halted before it was applied: record that it never was */
        r->reverted_at_ms = fl_now_ms();
        snprintf(r->error, sizeof(r->error), "ended before it was applied (%s)", end_name(r->why));
        r->failed = true;
        finish_inject(r, FAULTLINE__ERROR_CODE__ERROR_APPLY_FAILED, r->error);
        journal_revert(r, 1, NULL);
        return;
    }
    set_state(r, REC_APPLYING);
    run_op(r, OP_APPLY);
}

static void make_id(char *out, size_t len)
{
    uint8_t b[8];
    const struct fl_cryptolib *c = fl_cryptolib();
    if (c == NULL || c->rand_bytes(b, sizeof(b)) != 1) {
        uint64_t t = fl_mono_ns();
        memcpy(b, &t, sizeof(b));
    }
    snprintf(out, len, "f-%02x%02x%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5],
             b[6], b[7]);
}

static void on_lease_check(uv_timer_t *t);

static struct lease *lease_for(struct fl_registry *reg, uint64_t session_id, bool create)
{
    for (struct lease *l = reg->leases; l; l = l->next)
        if (l->session_id == session_id)
            return l;
    if (!create)
        return NULL;
    struct lease *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->session_id = session_id;
    l->last_mono_ms = fl_mono_ms();
    l->next = reg->leases;
    reg->leases = l;
    return l;
}

/* A session's heartbeat renews its lease if one of its faults needs it.
 * Only an inject makes a lease (renew_lease with create): a controller that
 * only watches needs none, and an idle agent keeps no lease and no timer. */
static void renew_lease(struct fl_registry *reg, uint64_t session_id, bool create)
{
    struct lease *l = lease_for(reg, session_id, create);
    if (l)
        l->last_mono_ms = fl_mono_ms();
}

void fl_registry_heartbeat(struct fl_registry *reg, uint64_t session_id)
{
    renew_lease(reg, session_id, false);
}

/* The checks every request for a fault gets before its kind's prepare, the
 * same for an inject and a preview. 0, or -1 with *code and err set. */
static int check_request(const struct fl_registry *reg, const Faultline__FaultSpec *spec,
                         const struct fl_fault_kind **kind_out, Faultline__ErrorCode *code,
                         char *err, size_t errlen)
{
    const struct fl_fault_kind *kind = fl_fault_kind_for_spec(spec);
    if (kind == NULL) {
        char kinds[256];
        snprintf(err, errlen, "unknown fault kind: this agent knows %s",
                 fl_kind_list(kinds, sizeof(kinds)));
        *code = FAULTLINE__ERROR_CODE__ERROR_UNSUPPORTED;
        return -1;
    }
    if (spec->duration_ms == 0) {
        snprintf(err, errlen, "a fault needs a duration: every fault ends by itself");
        *code = FAULTLINE__ERROR_CODE__ERROR_BAD_REQUEST;
        return -1;
    }
    const struct fl_guardrails *g = reg->ctx->guard;
    if (spec->duration_ms > g->max_duration_ms) {
        char want[32], max[32];
        fl_format_duration(spec->duration_ms, want, sizeof(want));
        fl_format_duration(g->max_duration_ms, max, sizeof(max));
        snprintf(err, errlen,
                 "guardrail: duration %s is over the agent's maximum of %s (max_duration in the "
                 "agent's config)",
                 want, max);
        *code = FAULTLINE__ERROR_CODE__ERROR_GUARDRAIL;
        return -1;
    }
    /* every record on the active list counts: accepted and not yet applied,
     * active, and those whose revert failed, which still hold the host */
    if (reg->n_active >= g->max_faults) {
        snprintf(err, errlen,
                 "the agent already holds %zu active fault%s, its limit (max_faults: %u in the "
                 "agent's config); revert some, or wait for them to end",
                 reg->n_active, reg->n_active == 1 ? "" : "s", g->max_faults);
        fl_info("fault refused (%s): %s", kind->name, err);
        *code = FAULTLINE__ERROR_CODE__ERROR_BUSY;
        return -1;
    }
    *kind_out = kind;
    return 0;
}

/* agent/fault.h: prepare says -EPERM for a guardrail, and only for one */
static Faultline__ErrorCode prepare_code(int rc)
{
    if (rc == -EPERM)
        return FAULTLINE__ERROR_CODE__ERROR_GUARDRAIL;
    if (rc == -ESRCH)
        return FAULTLINE__ERROR_CODE__ERROR_NO_MATCH;
    if (rc == -EBUSY)
        return FAULTLINE__ERROR_CODE__ERROR_BUSY;
    return FAULTLINE__ERROR_CODE__ERROR_BAD_REQUEST;
}

void fl_registry_inject(struct fl_registry *reg, const Faultline__FaultSpec *spec,
                        uint64_t session_id, bool detached, fl_inject_cb cb, void *arg)
{
    char err[512] = "";
    const struct fl_fault_kind *kind = NULL;
    Faultline__ErrorCode code;
    if (check_request(reg, spec, &kind, &code, err, sizeof(err)) < 0) {
        cb(arg, NULL, code, err);
        return;
    }

    struct fl_record *r = calloc(1, sizeof(*r));
    Faultline__FaultSpec *copy = r ? FL_PB_COPY(Faultline__FaultSpec, spec) : NULL;
    if (copy == NULL) {
        free(r);
        cb(arg, NULL, FAULTLINE__ERROR_CODE__ERROR_INTERNAL, "out of memory");
        return;
    }
    r->reg = reg;
    r->f.spec = copy;
    r->f.kind = kind;
    r->f.ctx = reg->ctx;
    r->f.ledger = &reg->ledger;
    r->f.duration_ms = spec->duration_ms;
    make_id(r->f.id, sizeof(r->f.id));
    r->detached = detached;
    r->session_id = session_id;

    int rc = kind->prepare(&r->f, reg->ctx, err, sizeof(err));
    if (rc < 0) {
        code = prepare_code(rc);
        fl_info("fault refused (%s): %s", kind->name, err[0] ? err : fl_strerror(rc));
        cb(arg, NULL, code, err[0] ? err : fl_strerror(rc));
        fl_ledger_release(&reg->ledger, r->f.id); /* a kind holds nothing on failure; be sure */
        rec_free(r);
        return;
    }
    if (!json_is_object(r->f.undo)) {
        cb(arg, NULL, FAULTLINE__ERROR_CODE__ERROR_INTERNAL,
           "internal error: prepare left no undo");
        fl_ledger_release(&reg->ledger, r->f.id);
        rec_free(r);
        return;
    }

    uv_timer_init(reg->loop, &r->timer);
    uv_timer_init(reg->loop, &r->tick);
    r->timer.data = r->tick.data = r;
    r->open_handles = 2;
    r->refs = 1; /* the list's */
    r->inject_cb = cb;
    r->inject_arg = arg;
    r->state = REC_JOURNALING; /* the first state: set_state moves it from here */
    list_push(&reg->active, r);
    reg->n_active++;
    if (!detached) {
        renew_lease(reg, session_id, true);
        /* the lease check runs only while a leased fault exists */
        if (!uv_is_active((uv_handle_t *)&reg->lease_timer))
            uv_timer_start(&reg->lease_timer, on_lease_check, LEASE_CHECK_MS, LEASE_CHECK_MS);
    }

    json_t *rec = fl_journal_apply_record(r->f.id, r->f.undo);
    rc = rec ? journal_append(reg, rec, on_apply_journaled, r) : -ENOMEM;
    json_decref(rec);
    if (rc < 0)
        on_apply_journaled(rc, r);
}

/* ---------------------------------------------------------------- preview */

int fl_registry_preview(struct fl_registry *reg, const Faultline__FaultSpec *spec,
                        struct fl_preview *out, Faultline__ErrorCode *code, char *err,
                        size_t errlen)
{
    const struct fl_fault_kind *kind = NULL;
    err[0] = '\0';
    if (check_request(reg, spec, &kind, code, err, errlen) < 0)
        return -1;
    struct fl_fault f;
    memset(&f, 0, sizeof(f));
    f.spec = FL_PB_COPY(Faultline__FaultSpec, spec);
    if (f.spec == NULL) {
        *code = FAULTLINE__ERROR_CODE__ERROR_INTERNAL;
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    f.kind = kind;
    f.ctx = reg->ctx;
    /* the ledger, so that what active faults hold is counted as for an
     * inject; whatever prepare holds is released below, before anything
     * else runs on the loop */
    f.ledger = &reg->ledger;
    f.duration_ms = spec->duration_ms;
    make_id(f.id, sizeof(f.id));
    int rc = kind->prepare(&f, reg->ctx, err, errlen);
    fl_ledger_release(&reg->ledger, f.id);
    if (rc < 0) {
        *code = prepare_code(rc);
        if (err[0] == '\0')
            snprintf(err, errlen, "%s", fl_strerror(rc));
        fl_info("preview refused (%s): %s", kind->name, err);
    } else if (!json_is_object(f.undo)) {
        *code = FAULTLINE__ERROR_CODE__ERROR_INTERNAL;
        snprintf(err, errlen, "internal error: prepare left no undo");
        rc = -1;
    } else if ((rc = fl_preview_describe(&f, out)) < 0) {
        *code = FAULTLINE__ERROR_CODE__ERROR_INTERNAL;
        snprintf(err, errlen, "out of memory");
    }
    json_decref(f.undo);
    faultline__fault_spec__free_unpacked(f.spec, NULL);
    return rc < 0 ? -1 : 0;
}

/* ---------------------------------------------------------------- adopt */

/* A spec that says only which kind: for listing a fault from the journal,
 * whose request is long gone. The kind's oneof case is its field number, so
 * the wire form is that field's tag and an empty message. */
static Faultline__FaultSpec *kind_only_spec(Faultline__FaultSpec__KindCase kind_case)
{
    uint8_t wire[12];
    size_t n = 0;
    uint64_t tag = ((uint64_t)kind_case << 3) | 2; /* length-delimited */
    while (tag >= 0x80) {
        wire[n++] = (uint8_t)(tag | 0x80);
        tag >>= 7;
    }
    wire[n++] = (uint8_t)tag;
    wire[n++] = 0; /* empty message */
    return faultline__fault_spec__unpack(NULL, n, wire);
}

int fl_registry_adopt(struct fl_registry *reg, const json_t *undo)
{
    const char *id = json_string_value(json_object_get(undo, "id"));
    const char *kind_name = json_string_value(json_object_get(undo, "kind"));
    const struct fl_fault_kind *kind = kind_name ? fl_fault_kind_by_name(kind_name) : NULL;
    if (id == NULL || strlen(id) >= FL_FAULT_ID_LEN || kind == NULL)
        return -EINVAL;
    struct fl_record *r = calloc(1, sizeof(*r));
    Faultline__FaultSpec *spec = r ? kind_only_spec(kind->spec_case) : NULL;
    if (spec == NULL) {
        free(r);
        return -ENOMEM;
    }
    r->reg = reg;
    r->f.spec = spec;
    r->f.kind = kind;
    r->f.ctx = reg->ctx;
    r->f.undo = json_deep_copy(undo);
    if (r->f.undo == NULL) { /* a NULL undo would read as nothing to revert */
        faultline__fault_spec__free_unpacked(spec, NULL);
        free(r);
        return -ENOMEM;
    }
    snprintf(r->f.id, sizeof(r->f.id), "%s", id);
    r->detached = true;
    r->revert_wanted = true;
    r->why = FL_END_REQUESTED;
    r->revert_failed = true;
    r->revert_tries = REVERT_RETRIES; /* start-up had its try: on with the backoff */
    uv_timer_init(reg->loop, &r->timer);
    uv_timer_init(reg->loop, &r->tick);
    r->timer.data = r->tick.data = r;
    r->open_handles = 2;
    r->refs = 1;                  /* the list's */
    r->state = REC_REVERT_FAILED; /* its first state: set_state moves it from here */
    list_push(&reg->active, r);
    reg->n_active++;
    char next[32];
    fl_format_duration(REVERT_BACKOFF_MS, next, sizeof(next));
    snprintf(r->revert_error, sizeof(r->revert_error),
             "left by an earlier agent; reverting it at start-up failed (see the log); trying "
             "again in %s",
             next);
    fl_error("fault %s (%s): REVERT FAILED: %s", r->f.id, kind->name, r->revert_error);
    uv_timer_start(&r->timer, on_retry_revert, REVERT_BACKOFF_MS, 0);
    return 0;
}

/* ---------------------------------------------------------------- revert */

static struct batch *batch_new(struct fl_registry *reg, fl_revert_cb cb, void *arg, size_t cap)
{
    struct batch *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->recs = calloc(cap ? cap : 1, sizeof(*b->recs));
    if (b->recs == NULL) {
        free(b);
        return NULL;
    }
    b->reg = reg;
    b->cb = cb;
    b->arg = arg;
    b->outstanding = 1; /* released by batch_done_one at the end of setup */
    return b;
}

static void batch_add(struct batch *b, struct fl_record *r, enum fl_end why)
{
    struct waiter *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return; /* it still ends; this reply will not wait for it */
    r->refs++;
    b->recs[b->n++] = r;
    b->outstanding++;
    w->batch = b;
    w->next = r->waiters;
    r->waiters = w;
    if (!r->revert_wanted)
        r->why = why;
    start_revert(r);
}

void fl_registry_revert(struct fl_registry *reg, const char *id, enum fl_end why, fl_revert_cb cb,
                        void *arg)
{
    struct fl_record *r = reg->active;
    while (r && strcmp(r->f.id, id) != 0)
        r = r->next;
    if (r == NULL) {
        /* already ended: reverting again is a success, and says so */
        struct fl_record *e = reg->ended;
        while (e && strcmp(e->f.id, id) != 0)
            e = e->next;
        if (e != NULL) {
            const struct fl_record *one = e;
            cb(arg, &one, 1, 0);
        } else {
            cb(arg, NULL, 0, -ENOENT);
        }
        return;
    }
    struct batch *b = batch_new(reg, cb, arg, 1);
    if (b == NULL) {
        cb(arg, NULL, 0, -ENOMEM);
        return;
    }
    batch_add(b, r, why);
    batch_done_one(b);
}

void fl_registry_revert_all(struct fl_registry *reg, enum fl_end why, fl_revert_cb cb, void *arg)
{
    if (why == FL_END_SHUTDOWN)
        reg->stopping = true;
    struct batch *b = batch_new(reg, cb, arg, reg->n_active);
    if (b == NULL) {
        cb(arg, NULL, 0, -ENOMEM);
        return;
    }
    /* A stop compacts the journal in its callback: report only once no
     * write of ours is in flight (an update record can still be fsyncing
     * after its fault's revert failed and left it). */
    b->wait_journal = why == FL_END_SHUTDOWN;
    /* next is read before batch_add: whatever batch_add sets off must not
     * leave the walk holding a record that moved lists */
    for (struct fl_record *r = reg->active, *next; r; r = next) {
        next = r->next;
        batch_add(b, r, why);
    }
    batch_done_one(b);
}

/* ---------------------------------------------------------------- leases */

static void on_lease_check(uv_timer_t *t)
{
    struct fl_registry *reg = t->data;
    uint64_t now = fl_mono_ms();
    for (struct fl_record *r = reg->active; r; r = r->next) {
        if (r->detached || r->revert_wanted)
            continue;
        struct lease *l = lease_for(reg, r->session_id, false);
        if (l == NULL || now - l->last_mono_ms > reg->lease_ms) {
            fl_warn("fault %s (%s): controller of session %llu silent for over %u ms: reverting",
                    r->f.id, r->f.kind->name, (unsigned long long)r->session_id, reg->lease_ms);
            r->why = FL_END_LEASE_LOST;
            start_revert(r);
        }
    }
    /* forget leases that no fault needs and that have run out */
    bool leased = false;
    struct lease **pl = &reg->leases;
    while (*pl) {
        struct lease *l = *pl;
        bool needed = false;
        for (struct fl_record *r = reg->active; r && !needed; r = r->next)
            needed = !r->detached && r->session_id == l->session_id;
        leased = leased || needed;
        if (!needed && now - l->last_mono_ms > reg->lease_ms) {
            *pl = l->next;
            free(l);
        } else {
            pl = &l->next;
        }
    }
    /* no leased fault left: the agent sleeps until the next inject (an idle
     * agent has no timer: docs/design.md §9); leases no fault needs go too */
    if (!leased) {
        uv_timer_stop(&reg->lease_timer);
        while (reg->leases) {
            struct lease *l = reg->leases;
            reg->leases = l->next;
            free(l);
        }
    }
}

/* ---------------------------------------------------------------- setup */

int fl_registry_new(const struct fl_registry_config *cfg, struct fl_registry **out)
{
    struct fl_registry *reg = calloc(1, sizeof(*reg));
    if (reg == NULL)
        return -ENOMEM;
    reg->loop = cfg->loop;
    reg->journal = cfg->journal;
    reg->ctx = cfg->ctx;
    reg->lease_ms = cfg->lease_ms;
    fl_ledger_init(&reg->ledger);
    uv_timer_init(reg->loop, &reg->lease_timer);
    reg->lease_timer.data = reg; /* started by the first leased inject */
    *out = reg;
    return 0;
}

static void on_registry_closed(uv_handle_t *h)
{
    struct fl_registry *reg = h->data;
    while (reg->leases) {
        struct lease *l = reg->leases;
        reg->leases = l->next;
        free(l);
    }
    fl_ledger_free(&reg->ledger);
    free(reg);
}

void fl_registry_close(struct fl_registry *reg)
{
    assert(reg->n_active == 0 && reg->active == NULL);
    while (reg->ended) {
        struct fl_record *r = reg->ended;
        list_remove(&reg->ended, r);
        rec_unref(r);
    }
    uv_close((uv_handle_t *)&reg->lease_timer, on_registry_closed);
}

/* ---------------------------------------------------------------- listing */

size_t fl_registry_active_count(const struct fl_registry *reg)
{
    return reg->n_active;
}

size_t fl_registry_count(const struct fl_registry *reg, bool ended)
{
    return reg->n_active + (ended ? reg->n_ended : 0);
}

size_t fl_registry_list(struct fl_registry *reg, bool ended, const struct fl_record **out,
                        size_t cap)
{
    size_t n = 0;
    /* oldest first: walk to the tail, then back */
    const struct fl_record *lists[2] = {ended ? reg->ended : NULL, reg->active};
    for (int k = 0; k < 2; k++) {
        const struct fl_record *r = lists[k];
        while (r && r->next)
            r = r->next;
        for (; r && n < cap; r = r->prev)
            out[n++] = r;
    }
    return n;
}

void fl_record_describe(const struct fl_record *r, Faultline__Fault *out)
{
    faultline__fault__init(out);
    out->id = fl_pb_str(r->f.id);
    out->spec = r->f.spec;
    out->detached = r->detached;
    out->applied_at_ms = r->applied_at_ms;
    out->reverted_at_ms = r->reverted_at_ms;
    switch (r->state) {
    case REC_LEFT:
        out->state = FAULTLINE__FAULT_STATE__FAULT_STATE_FAILED;
        break;
    case REC_REVERT_FAILED:
        out->state = FAULTLINE__FAULT_STATE__FAULT_STATE_REVERT_FAILED;
        break;
    case REC_REVERTING:
        /* a try after a failed one: failed until a try succeeds */
        out->state = r->revert_failed ? FAULTLINE__FAULT_STATE__FAULT_STATE_REVERT_FAILED
                                      : FAULTLINE__FAULT_STATE__FAULT_STATE_ACTIVE;
        break;
    case REC_ENDED:
    case REC_ENDING:
        if (r->failed && r->reverted_at_ms == 0)
            out->state = FAULTLINE__FAULT_STATE__FAULT_STATE_FAILED;
        else if (r->why == FL_END_EXPIRED)
            out->state = FAULTLINE__FAULT_STATE__FAULT_STATE_EXPIRED;
        else if (r->why == FL_END_LEASE_LOST)
            out->state = FAULTLINE__FAULT_STATE__FAULT_STATE_LEASE_LOST;
        else
            out->state = FAULTLINE__FAULT_STATE__FAULT_STATE_REVERTED;
        break;
    default:
        out->state = FAULTLINE__FAULT_STATE__FAULT_STATE_ACTIVE;
        break;
    }
    if (r->state == REC_ACTIVE) {
        uint64_t now = fl_mono_ms();
        out->remaining_ms = r->ends_at_mono_ms > now ? r->ends_at_mono_ms - now : 0;
    }
    /* error is written on the loop only; apply writes detail and pids on a
     * pool thread: read those only when idle */
    if (r->revert_failed || r->state == REC_LEFT) {
        out->detail = fl_pb_str(r->revert_error);
    } else if (!r->busy) {
        out->detail = fl_pb_str(r->failed ? r->error : r->f.detail);
        out->n_pids = r->f.n_pids;
        out->pids = (int32_t *)(uintptr_t)r->f.pids;
    }
}
