/* Write probes (issue 15): postgres and redis. Each attempt writes one
 * record (this run's id, the next sequence number, the controller's time)
 * through a client that lives from attempt to attempt (pgwrite.c,
 * rediswrite.c), and succeeds when the datastore acknowledges it. Every
 * write is remembered (seq, sent, acknowledged and when: 32 bytes) for the
 * data-loss measurement (controller/run/rpo.c); after recovery the runner
 * holds the probe and reads the run's records back.
 *
 * The client's own timeout is the probe's plus DATA_TIMEOUT_MARGIN_MS, so
 * that the probe runner's deadline (with its judgement of late attempts,
 * probe.c) decides first; a write the runner gave up on still ends when its
 * callback comes, and an acknowledgement that arrives after the timeout
 * still counts as acknowledged for the measurement: the datastore said it
 * committed. At most FL_DATA_WRITES_MAX writes per run: the probe then
 * fails every attempt, loudly, rather than forget a write. */
#include "controller/probes/probe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "controller/probes/pgwrite.h"
#include "controller/probes/rediswrite.h"
#include "controller/run/rpo.h"

#define DATA_TIMEOUT_MARGIN_MS 50u
/* The writes one probe remembers in a run: a day at 10 writes a second. */
#define FL_DATA_WRITES_MAX 1000000u

/* run.c hands a write's judged latency to fl_rpo_result_of as it is: one
 * sentinel under two names, which must not drift apart. */
_Static_assert(FL_PROBE_DATA_UNJUDGED == FL_RPO_UNJUDGED, "one 'not judged' sentinel");

/* The runner's judgement of one write (fl_probe_data_judged). */
struct judgement {
    uint32_t ms;           /* its latency; FL_PROBE_DATA_UNJUDGED: not judged yet */
    unsigned char outcome; /* enum fl_probe_outcome */
};

struct data_state {
    bool postgres;
    struct fl_pgwrite *pg;
    struct fl_rediswrite *redis;
    struct fl_rpo_write *writes;
    struct judgement *judged; /* each write as the runner judged it */
    size_t n_writes, cap_writes;
    uint64_t next_seq;
    bool busy; /* an operation is in flight */
    struct data_attempt *attempt;
    /* a read-back asked for while a write was in flight */
    bool readback_pending;
    uint64_t readback_timeout_ms;
    fl_probe_readback_cb readback_cb;
    void *readback_arg;
};

struct data_attempt {
    struct fl_probe *p;
    struct data_state *st;
    size_t write; /* index into st->writes */
    bool cancelled;
};

static struct data_state *state_of(struct fl_probe *p, bool create, char *err, size_t err_len)
{
    void **slot = fl_probe_kind_state(p);
    if (*slot != NULL || !create)
        return *slot;
    const struct fl_probe_spec *spec = fl_probe_get_spec(p);
    struct data_state *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    st->postgres = spec->type == FL_PROBE_POSTGRES;
    st->next_seq = 1;
    int rc;
    if (st->postgres) {
        rc = fl_pgwrite_create(fl_probe_loop(p), spec->u.data.dsn, spec->u.data.table,
                               spec->u.data.run_id, &st->pg, err, err_len);
    } else {
        struct fl_rediswrite_config cfg = {
            .address = spec->u.data.address,
            .sentinels = (const char *const *)spec->u.data.sentinels,
            .n_sentinels = spec->u.data.n_sentinels,
            .master_name = spec->u.data.master_name,
            .key = spec->u.data.key,
            .run_id = spec->u.data.run_id,
            .wait_replicas = spec->u.data.wait_replicas,
        };
        rc = fl_rediswrite_create(fl_probe_loop(p), &cfg, &st->redis, err, err_len);
    }
    if (rc < 0) {
        free(st);
        return NULL;
    }
    *slot = st;
    return st;
}

static void start_readback(struct data_state *st);

static void on_written(void *arg, bool ok, uint64_t ack_ms, const char *detail)
{
    struct data_attempt *a = arg;
    struct data_state *st = a->st;
    struct fl_rpo_write *w = &st->writes[a->write];
    w->acked = ok;
    w->ack_ms = ok ? ack_ms : 0;
    st->busy = false;
    st->attempt = NULL;
    struct fl_probe *p = a->p;
    free(a);
    if (st->readback_pending)
        start_readback(st);
    fl_probe_attempt_end(p, ok, "%s", detail);
}

static int data_start(struct fl_probe *p, void **attempt, char *err, size_t err_len)
{
    struct data_state *st = state_of(p, true, err, err_len);
    if (st == NULL)
        return -EINVAL;
    if (st->busy) {
        snprintf(err, err_len, "the previous write has not ended");
        return -EBUSY;
    }
    if (st->n_writes >= FL_DATA_WRITES_MAX) {
        snprintf(err, err_len,
                 "more than %u writes in one run (FL_DATA_WRITES_MAX): lengthen the interval or "
                 "shorten the run",
                 FL_DATA_WRITES_MAX);
        return -E2BIG;
    }
    if (st->n_writes == st->cap_writes) {
        size_t cap = st->cap_writes ? st->cap_writes * 2 : 256;
        struct fl_rpo_write *g = realloc(st->writes, cap * sizeof(*g));
        if (g != NULL)
            st->writes = g;
        struct judgement *j = g != NULL ? realloc(st->judged, cap * sizeof(*j)) : NULL;
        if (j == NULL) {
            snprintf(err, err_len, "out of memory");
            return -ENOMEM;
        }
        st->judged = j;
        st->cap_writes = cap;
    }
    struct data_attempt *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    a->p = p;
    a->st = st;
    a->write = st->n_writes;
    uint64_t now = fl_now_ms();
    struct fl_rpo_write *w = &st->writes[st->n_writes];
    memset(w, 0, sizeof(*w));
    w->seq = st->next_seq;
    w->sent_ms = now;
    st->judged[st->n_writes] = (struct judgement){
        .ms = FL_PROBE_DATA_UNJUDGED, .outcome = FL_OUTCOME_TIMEOUT}; /* until the runner says */
    uint64_t timeout = fl_probe_get_spec(p)->timeout_ms + DATA_TIMEOUT_MARGIN_MS;
    int rc = st->postgres ? fl_pgwrite_write(st->pg, w->seq, now, timeout, on_written, a)
                          : fl_rediswrite_write(st->redis, w->seq, now, timeout, on_written, a);
    if (rc < 0) {
        snprintf(err, err_len, "cannot write: %s", strerror(-rc));
        free(a);
        return rc;
    }
    st->n_writes++;
    st->next_seq++;
    st->busy = true;
    st->attempt = a;
    *attempt = a;
    return 0;
}

static void data_cancel(void *attempt)
{
    struct data_attempt *a = attempt;
    /* the client's own timeout ends the write soon after the runner's; its
     * callback ends the attempt (and records a late acknowledgement) */
    a->cancelled = true;
}

static void on_client_closed(void *arg)
{
    struct data_state *st = arg;
    free(st->writes);
    free(st->judged);
    free(st);
}

static void data_release(void *state)
{
    struct data_state *st = state;
    if (st->postgres)
        fl_pgwrite_close(st->pg, on_client_closed, st);
    else
        fl_rediswrite_close(st->redis, on_client_closed, st);
}

const struct fl_probe_kind fl_probe_kind_postgres = {
    .name = "postgres",
    .start = data_start,
    .cancel = data_cancel,
    .release = data_release,
};

const struct fl_probe_kind fl_probe_kind_redis = {
    .name = "redis",
    .start = data_start,
    .cancel = data_cancel,
    .release = data_release,
};

const struct fl_rpo_write *fl_probe_data_writes(struct fl_probe *p, size_t *n)
{
    const struct fl_probe_spec *spec = fl_probe_get_spec(p);
    struct data_state *st = spec->type == FL_PROBE_POSTGRES || spec->type == FL_PROBE_REDIS
                                ? state_of(p, false, NULL, 0)
                                : NULL;
    *n = st != NULL ? st->n_writes : 0;
    return st != NULL ? st->writes : NULL;
}

void fl_probe_data_judged(struct fl_probe *p, enum fl_probe_outcome outcome, uint64_t latency_ms)
{
    if (!fl_probe_is_writer(fl_probe_get_spec(p)))
        return;
    struct data_state *st = state_of(p, false, NULL, 0);
    /* the write being reported is the last one started: none starts before
     * the runner has reported the one before it. A write is judged once: an
     * attempt that fails to start before it adds a write (past
     * FL_DATA_WRITES_MAX, out of memory) is reported too, and must not
     * overwrite the judgement of the write before it. (-EBUSY cannot reach
     * here: the runner keeps an attempt alive until the client ends it.) */
    struct judgement *j = st != NULL && st->n_writes > 0 ? &st->judged[st->n_writes - 1] : NULL;
    if (j != NULL && j->ms == FL_PROBE_DATA_UNJUDGED) {
        j->outcome = (unsigned char)outcome;
        j->ms =
            latency_ms < FL_PROBE_DATA_UNJUDGED ? (uint32_t)latency_ms : FL_PROBE_DATA_UNJUDGED - 1;
    }
}

int fl_probe_data_outcome(struct fl_probe *p, size_t i, enum fl_probe_outcome *out,
                          uint32_t *latency_ms)
{
    struct data_state *st = state_of(p, false, NULL, 0);
    if (st == NULL || i >= st->n_writes)
        return -EINVAL;
    *out = (enum fl_probe_outcome)st->judged[i].outcome;
    *latency_ms = st->judged[i].ms;
    return 0;
}

static void on_read_back(void *arg, const uint64_t *seqs, size_t n, const char *err)
{
    struct data_state *st = arg;
    st->busy = false;
    fl_probe_readback_cb cb = st->readback_cb;
    st->readback_cb = NULL;
    if (cb != NULL)
        cb(st->readback_arg, seqs, n, err);
}

static void start_readback(struct data_state *st)
{
    st->readback_pending = false;
    st->busy = true;
    int rc = st->postgres
                 ? fl_pgwrite_readback(st->pg, st->readback_timeout_ms, on_read_back, st)
                 : fl_rediswrite_readback(st->redis, st->readback_timeout_ms, on_read_back, st);
    if (rc < 0) {
        st->busy = false;
        char why[128];
        snprintf(why, sizeof(why), "cannot start the read-back: %s", strerror(-rc));
        fl_probe_readback_cb cb = st->readback_cb;
        st->readback_cb = NULL;
        if (cb != NULL)
            cb(st->readback_arg, NULL, 0, why);
    }
}

int fl_probe_data_readback(struct fl_probe *p, uint64_t timeout_ms, fl_probe_readback_cb cb,
                           void *arg)
{
    const struct fl_probe_spec *spec = fl_probe_get_spec(p);
    if (spec->type != FL_PROBE_POSTGRES && spec->type != FL_PROBE_REDIS)
        return -EINVAL;
    char err[256];
    struct data_state *st = state_of(p, true, err, sizeof(err));
    if (st == NULL)
        return -EINVAL;
    if (st->readback_cb != NULL)
        return -EBUSY;
    st->readback_cb = cb;
    st->readback_arg = arg;
    st->readback_timeout_ms = timeout_ms;
    if (st->busy)
        st->readback_pending = true; /* after the write in flight */
    else
        start_readback(st);
    return 0;
}
