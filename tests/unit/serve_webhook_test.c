/* Webhooks of faultline serve (controller/serve/webhook.c) on a loop of the
 * test's own, against receivers on loopback:
 * - which runs are which events (fail, aborted, regression, recovered after
 *   a FAIL and not after an ABORTED), and the events filter of a URL;
 * - freeze and thaw: their own POSTs, and `frozen` in every body between;
 * - the bounded queue: past FL_WEBHOOK_QUEUE_MAX deliveries alive (a
 *   receiver that refuses every connection), a new one is refused and
 *   counted in faultline_webhook_dropped_total; at stop, every delivery not
 *   delivered is counted in faultline_webhook_failures_total. */
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/clock.h"
#include "controller/serve/metrics.h"
#include "controller/serve/webhook.h"

#define RX_MAX 64

static struct {
    pthread_mutex_t mu;
    json_t *bodies[RX_MAX];
    size_t n;
} rx = {.mu = PTHREAD_MUTEX_INITIALIZER};

struct conn {
    char *buf;
    size_t len;
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    struct conn *b = *con_cls;
    if (b == NULL) {
        *con_cls = calloc(1, sizeof(*b));
        return *con_cls ? MHD_YES : MHD_NO;
    }
    if (*upload_size > 0) {
        char *grown = realloc(b->buf, b->len + *upload_size + 1);
        if (grown == NULL)
            return MHD_NO;
        memcpy(grown + b->len, upload, *upload_size);
        b->buf = grown;
        b->len += *upload_size;
        b->buf[b->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&rx.mu);
    if (rx.n < RX_MAX && b->buf != NULL)
        rx.bodies[rx.n++] = json_loads(b->buf, 0, NULL);
    pthread_mutex_unlock(&rx.mu);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(0, (void *)(uintptr_t) "", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, 204, r);
    MHD_destroy_response(r);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct conn *b = *con_cls;
    if (b != NULL) {
        free(b->buf);
        free(b);
    }
    *con_cls = NULL;
}

static size_t rx_count(void)
{
    pthread_mutex_lock(&rx.mu);
    size_t n = rx.n;
    pthread_mutex_unlock(&rx.mu);
    return n;
}

static void rx_clear(void)
{
    pthread_mutex_lock(&rx.mu);
    for (size_t i = 0; i < rx.n; i++)
        json_decref(rx.bodies[i]);
    rx.n = 0;
    pthread_mutex_unlock(&rx.mu);
}

/* Runs the loop until the receiver has n bodies (or 10 s). */
static void run_until(uv_loop_t *loop, size_t n)
{
    uint64_t end = fl_now_ms() + 10000;
    while (rx_count() < n && fl_now_ms() < end)
        uv_run(loop, UV_RUN_NOWAIT), uv_sleep(5);
    assert_int_equal(rx_count(), n);
}

/* Runs the loop until no delivery is alive (or 10 s). */
static void drain(uv_loop_t *loop, struct fl_webhooks *w)
{
    uint64_t end = fl_now_ms() + 10000;
    while (fl_webhooks_pending(w) > 0 && fl_now_ms() < end)
        uv_run(loop, UV_RUN_NOWAIT), uv_sleep(5);
    assert_int_equal(fl_webhooks_pending(w), 0);
}

static void on_stopped(void *ctx)
{
    *(bool *)ctx = true;
}

static void stop(uv_loop_t *loop, struct fl_webhooks *w)
{
    bool done = false;
    fl_webhooks_stop(w, on_stopped, &done);
    uint64_t end = fl_now_ms() + 10000;
    while (!done && fl_now_ms() < end)
        uv_run(loop, UV_RUN_ONCE);
    assert_true(done);
    uv_run(loop, UV_RUN_DEFAULT); /* close callbacks */
    assert_int_equal(uv_loop_close(loop), 0);
    fl_webhooks_free(w);
}

static const char *str(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

static bool has_event(json_t *o, const char *e)
{
    json_t *evs = json_object_get(o, "events");
    for (size_t i = 0; i < json_array_size(evs); i++)
        if (strcmp(json_string_value(json_array_get(evs, i)), e) == 0)
            return true;
    return false;
}

static struct fl_webhook_run run(const char *verdict, bool regressed)
{
    return (struct fl_webhook_run){.experiment = "web-failover",
                                   .run_id = 7,
                                   .due_ms = 1700000000000,
                                   .verdict = verdict,
                                   .reason = "recovered in 1.00s",
                                   .recovery_ms = 1000,
                                   .resolution_ms = 100,
                                   .baseline_ms = regressed ? 400 : -1,
                                   .regressed = regressed,
                                   .report = "/r/web-failover/7"};
}

static void test_events_and_freeze(void **state)
{
    (void)state;
    struct MHD_Daemon *d = NULL;
    uint16_t port = 0;
    for (int i = 0; d == NULL && i < 20; i++) {
        port = (uint16_t)(20000 + (fl_now_ms() * 7 + (uint64_t)i * 131) % 30000);
        d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, port, NULL, NULL, on_request, NULL,
                             MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    }
    assert_non_null(d);
    char all[64], only[64];
    snprintf(all, sizeof(all), "http://127.0.0.1:%u/all", (unsigned)port);
    snprintf(only, sizeof(only), "http://127.0.0.1:%u/only", (unsigned)port);
    struct fl_webhook_target t[2] = {
        {.url = all, .events = FL_WEBHOOK_ALL_EVENTS, .timeout_ms = 5000},
        {.url = only, .events = FL_WEBHOOK_REGRESSION, .timeout_ms = 5000},
    };
    struct fl_metrics *m = fl_metrics_new();
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[256];
    struct fl_webhooks *w = fl_webhooks_new(&loop, t, 1, m, err, sizeof(err));
    assert_non_null(w);

    struct fl_webhook_run r = run("PASS", false);
    fl_webhook_event_run(w, &r); /* a plain pass: no event */
    assert_int_equal(fl_webhooks_pending(w), 0);
    r = run("FAIL", false);
    fl_webhook_event_run(w, &r);
    run_until(&loop, 1);
    json_t *b = rx.bodies[0];
    assert_string_equal(str(b, "event"), "fail");
    assert_string_equal(str(b, "verdict"), "FAIL");
    assert_string_equal(str(b, "experiment"), "web-failover");
    assert_non_null(strstr(str(b, "text"), "web-failover"));
    assert_true(json_is_null(json_object_get(b, "baseline_ms")));
    r = run("ABORTED", false); /* does not end the failure */
    fl_webhook_event_run(w, &r);
    run_until(&loop, 2);
    assert_string_equal(str(rx.bodies[1], "event"), "aborted");
    r = run("PASS", true); /* recovered, and regressed: one POST, both events */
    fl_webhook_event_run(w, &r);
    run_until(&loop, 3);
    b = rx.bodies[2];
    assert_true(has_event(b, "recovered"));
    assert_true(has_event(b, "regression"));
    assert_int_equal(json_integer_value(json_object_get(b, "baseline_ms")), 400);
    drain(&loop, w);
    r = run("PASS", false); /* passing again: nothing */
    fl_webhook_event_run(w, &r);
    assert_int_equal(fl_webhooks_pending(w), 0);

    fl_webhook_event_freeze(w, "incident 42", 2);
    run_until(&loop, 4);
    b = rx.bodies[3];
    assert_string_equal(str(b, "event"), "freeze");
    assert_true(json_is_true(json_object_get(b, "frozen")));
    assert_string_equal(str(b, "reason"), "incident 42");
    assert_non_null(strstr(str(b, "text"), "FROZEN"));
    r = run("FAIL", false);
    fl_webhook_event_run(w, &r);
    run_until(&loop, 5);
    assert_true(json_is_true(json_object_get(rx.bodies[4], "frozen")));
    assert_string_equal(str(rx.bodies[4], "frozen_reason"), "incident 42");
    fl_webhook_event_thaw(w);
    run_until(&loop, 6);
    assert_string_equal(str(rx.bodies[5], "event"), "thaw");
    assert_true(json_is_false(json_object_get(rx.bodies[5], "frozen")));
    stop(&loop, w);
    rx_clear();

    /* a URL that asked only for regressions; the state survives a "restart" */
    uv_loop_init(&loop);
    w = fl_webhooks_new(&loop, &t[1], 1, m, err, sizeof(err));
    assert_non_null(w);
    fl_webhooks_note_verdict(w, "web-failover", "FAIL"); /* from history */
    drain(&loop, w);
    r = run("FAIL", false);
    fl_webhook_event_run(w, &r);
    assert_int_equal(fl_webhooks_pending(w), 0);
    r = run("PASS", true);
    fl_webhook_event_run(w, &r);
    run_until(&loop, 1);
    assert_true(has_event(rx.bodies[0], "recovered"));
    assert_true(has_event(rx.bodies[0], "regression"));
    stop(&loop, w);
    rx_clear();
    char *text = fl_metrics_render(m);
    assert_non_null(strstr(text, "faultline_webhook_failures_total 0\n"));
    free(text);
    fl_metrics_free(m);
    MHD_stop_daemon(d);
}

static void test_queue_bound_and_failures(void **state)
{
    (void)state;
    /* port 1 on loopback: nothing listens, every attempt is refused */
    struct fl_webhook_target t = {.url = (char *)(uintptr_t) "http://127.0.0.1:1/",
                                  .events = FL_WEBHOOK_ALL_EVENTS,
                                  .timeout_ms = 1000};
    struct fl_metrics *m = fl_metrics_new();
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[256];
    struct fl_webhooks *w = fl_webhooks_new(&loop, &t, 1, m, err, sizeof(err));
    assert_non_null(w);
    size_t extra = 10;
    for (size_t i = 0; i < FL_WEBHOOK_QUEUE_MAX + extra; i++) {
        struct fl_webhook_run r = run("FAIL", false);
        r.run_id = (int64_t)i;
        fl_webhook_event_run(w, &r);
    }
    assert_int_equal(fl_webhooks_pending(w), FL_WEBHOOK_QUEUE_MAX);
    /* the first attempts fail (refused) and wait for their retry */
    for (int i = 0; i < 200; i++)
        uv_run(&loop, UV_RUN_NOWAIT), uv_sleep(2);
    assert_int_equal(fl_webhooks_pending(w), FL_WEBHOOK_QUEUE_MAX);
    char *text = fl_metrics_render(m);
    char want[80];
    snprintf(want, sizeof(want), "faultline_webhook_dropped_total %zu\n", extra);
    assert_non_null(strstr(text, want));
    free(text);
    stop(&loop, w); /* waiting retries are given up, and counted */
    text = fl_metrics_render(m);
    snprintf(want, sizeof(want), "faultline_webhook_failures_total %d\n", FL_WEBHOOK_QUEUE_MAX);
    if (strstr(text, want) == NULL)
        fail_msg("wanted '%s' in:\n%s", want, text);
    free(text);
    fl_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_and_freeze),
        cmocka_unit_test(test_queue_bound_and_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
