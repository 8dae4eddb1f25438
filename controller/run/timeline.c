/* A probe's timeline kept compact (timeline.h). */
#include "controller/run/timeline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fl_timeline_init(struct fl_timeline *tl, unsigned rise, unsigned fall)
{
    memset(tl, 0, sizeof(*tl));
    fl_health_init(&tl->health, rise, fall);
    fl_measure_stream_init(&tl->measure, tl->health.rise, tl->health.fall);
}

void fl_timeline_free(struct fl_timeline *tl)
{
    free(tl->changes);
    free(tl->runs);
    memset(tl, 0, sizeof(*tl));
}

/* Room for one more element of size sz in *arr (n used, *cap allocated). */
static int grow(void **arr, size_t n, size_t *cap, size_t sz)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    if (ncap > SIZE_MAX / sz)
        return -ENOMEM;
    void *p = realloc(*arr, ncap * sz);
    if (p == NULL)
        return -ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

static int add_to_runs(struct fl_timeline *tl, const struct fl_probe_result *r)
{
    if (r->outcome == FL_OUTCOME_OK) {
        tl->open_run = false;
        return 0;
    }
    struct fl_attempt_run *last = tl->n_runs ? &tl->runs[tl->n_runs - 1] : NULL;
    if (tl->open_run && last != NULL && last->outcome == r->outcome) {
        last->count++;
        last->last_at_ms = r->started_ms;
        snprintf(last->last_detail, sizeof(last->last_detail), "%s", r->detail);
        return 0;
    }
    if (grow((void **)&tl->runs, tl->n_runs, &tl->cap_runs, sizeof(*tl->runs)) < 0) {
        tl->open_run = false;
        return -ENOMEM;
    }
    struct fl_attempt_run *run = &tl->runs[tl->n_runs++];
    memset(run, 0, sizeof(*run));
    run->first_at_ms = run->last_at_ms = r->started_ms;
    run->count = 1;
    run->outcome = r->outcome;
    snprintf(run->detail, sizeof(run->detail), "%s", r->detail);
    snprintf(run->last_detail, sizeof(run->last_detail), "%s", r->detail);
    tl->open_run = true;
    return 0;
}

int fl_timeline_add(struct fl_timeline *tl, const struct fl_probe_result *r, bool *changed)
{
    bool ch = false;
    int rc = 0;
    tl->counts.attempts++;
    switch (r->outcome) {
    case FL_OUTCOME_OK:
        tl->counts.ok++;
        break;
    case FL_OUTCOME_FAILED:
        tl->counts.failed++;
        break;
    case FL_OUTCOME_TIMEOUT:
        tl->counts.timeout++;
        break;
    case FL_OUTCOME_LATE:
        tl->counts.late++;
        break;
    }
    if (r->outcome != FL_OUTCOME_LATE && fl_health_update(&tl->health, r->ok)) {
        ch = true;
        if (grow((void **)&tl->changes, tl->n_changes, &tl->cap_changes, sizeof(*tl->changes)) <
            0) {
            rc = -ENOMEM;
        } else {
            tl->changes[tl->n_changes++] = (struct fl_health_change){
                .at_ms = r->started_ms + r->latency_ms, .state = tl->health.state};
        }
    }
    if (add_to_runs(tl, r) < 0)
        rc = -ENOMEM;
    int mrc = fl_measure_stream_feed(&tl->measure, r);
    if (changed != NULL)
        *changed = ch;
    return mrc < 0 ? mrc : rc;
}

void fl_timeline_inject(struct fl_timeline *tl, uint64_t injected_at_ms)
{
    fl_measure_stream_inject(&tl->measure, injected_at_ms);
}

int fl_timeline_measure(const struct fl_timeline *tl, uint64_t reverted_at, uint64_t end_at,
                        struct fl_measurement *out)
{
    return fl_measure_stream_result(&tl->measure, reverted_at, end_at, out);
}
