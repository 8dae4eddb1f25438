/* The PostgreSQL write client (controller/probes/pgwrite.c) against a real
 * failover bed (tests/support/pgbed.c: primary, streaming standby, repmgrd
 * on both), with the data loss measured by controller/run/rpo.c (issue 15):
 *
 *   - synchronous standby: kill -9 the primary's postmaster, repmgrd
 *     promotes the standby, the client follows through its multi-host DSN
 *     (target_session_attrs=read-write); nothing acknowledged is lost.
 *   - asynchronous: the WAL stream cut (nftables), writes go on, kill -9 the
 *     primary: exactly the writes acknowledged during the cut are lost.
 *   - a stopped server (SIGSTOP): each write ends "timeout after N ms"
 *     (", connecting to ..." once the connection was dropped and the new
 *     one waits for the stopped postmaster) within the bound, while a timer
 *     beside it keeps ticking. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/clock.h"
#include "controller/probes/pgwrite.h"
#include "tests/support/pgbed.h"
#include "tests/support/proc.h"
#include "tests/support/writeloop.h"

static struct pgbed bed;
static struct writeloop *wl;

static int setup_bed(bool sync)
{
    wl = calloc(1, sizeof(*wl));
    assert_non_null(wl);
    uint64_t t0 = fl_mono_ms();
    if (pgbed_start(&bed, sync) < 0)
        return -1;
    fprintf(stderr, "pgbed (%s) up in %llu ms\n", sync ? "sync" : "async",
            (unsigned long long)(fl_mono_ms() - t0));
    wl->kind = WRITELOOP_PG;
    wl->dsn = bed.dsn;
    snprintf(wl->run_id, sizeof(wl->run_id), "pg-%d-%llu", (int)getpid(), (unsigned long long)t0);
    wl->interval_ms = 50;
    wl->timeout_ms = 1000;
    wl->read_back_ms = 15000;
    return 0;
}

static int setup_sync(void **state)
{
    (void)state;
    return setup_bed(true);
}

static int setup_async(void **state)
{
    (void)state;
    return setup_bed(false);
}

static int teardown(void **state)
{
    (void)state;
    if (wl->running)
        writeloop_stop(wl);
    free(wl->read_back);
    free(wl);
    pgbed_stop(&bed);
    return 0;
}

static struct fl_rpo_result measure(struct writeloop *w)
{
    struct fl_rpo_result r;
    assert_int_equal(fl_rpo_measure(w->writes, atomic_load(&w->n_writes), w->read_back,
                                    w->n_read_back, UINT64_MAX, w->interval_ms, &r),
                     0);
    return r;
}

static void stop_or_dump(void)
{
    if (writeloop_stop(wl) != 0) {
        writeloop_dump(wl);
        fail_msg("read-back failed: %s", wl->read_back_err);
    }
}

static void wait_or_dump(size_t n, const char *what)
{
    if (writeloop_wait_acked(wl, n, 30000) < 0) {
        writeloop_stop(wl);
        writeloop_dump(wl);
        fail_msg("%s", what);
    }
}

/* Kills n1's postmaster and waits for repmgrd to promote n2; returns the ms
 * from the kill to n2 answering as a primary. */
static int kill_primary_and_fail_over(void)
{
    uint64_t t0 = fl_mono_ms();
    kill(bed.pg[0], SIGKILL);
    proc_wait(bed.pg[0], 5000);
    bed.pg[0] = 0;
    int waited = pgbed_wait_primary(&bed, 1, 40000);
    assert_true(waited >= 0);
    return (int)(fl_mono_ms() - t0);
}

static void test_sync_failover_loses_nothing(void **state)
{
    (void)state;
    assert_int_equal(writeloop_start(wl), 0);
    wait_or_dump(20, "no write acknowledged before the failover");
    int failover_ms = kill_primary_and_fail_over();
    wait_or_dump(20, "no write acknowledged after the failover");
    stop_or_dump();
    struct fl_rpo_result r = measure(wl);
    char line[300], lost_line[300];
    pgbed_log_line(&bed, 1, "unable to connect to upstream node", lost_line, sizeof(lost_line));
    pgbed_log_line(&bed, 1, "promoted to primary", line, sizeof(line));
    fprintf(stderr,
            "[ measured ] postgres sync + repmgrd: %zu writes, %s; promoted %d ms after kill -9 "
            "(repmgrd: 1 s monitor, 2 pings 1 s apart), client gap %llu ms\n"
            "             repmgrd: %s\n             repmgrd: %s\n",
            atomic_load(&wl->n_writes), r.summary, failover_ms,
            (unsigned long long)writeloop_longest_gap(wl), lost_line, line);
    if (r.lost != 0)
        writeloop_dump(wl);
    assert_true(line[0] != '\0');
    assert_int_equal(r.lost, 0);
    assert_int_equal(r.rpo_ms, 0);
    assert_true(r.acknowledged >= 40);
    assert_int_equal(r.unknown, 0);
}

static void test_async_cut_stream_loses_and_counts(void **state)
{
    (void)state;
    assert_int_equal(writeloop_start(wl), 0);
    wait_or_dump(20, "no write acknowledged at first");
    sleep_ms(300); /* the standby replays the first writes */
    uint64_t cut_start = fl_now_ms();
    assert_int_equal(pgbed_cut_stream(&bed), 0);
    uint64_t cut_done = fl_now_ms();
    /* 16: the first may have been sent before the cut */
    wait_or_dump(16, "no write acknowledged during the cut");
    uint64_t kill_at = fl_now_ms();
    int failover_ms = kill_primary_and_fail_over();
    /* until the standby is promoted: what the dead primary's kernel still
     * held for it must not arrive late */
    pgbed_uncut_stream(&bed);
    wait_or_dump(10, "no write acknowledged after the failover");
    stop_or_dump();
    struct fl_rpo_result r = measure(wl);

    size_t n = atomic_load(&wl->n_writes), must_lose = 0;
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        const struct fl_rpo_write *x = &wl->writes[i];
        if (!x->acked)
            continue;
        bool back = false;
        for (size_t j = 0; j < wl->n_read_back; j++)
            back |= wl->read_back[j] == x->seq;
        if (x->sent_ms > cut_done && x->ack_ms < kill_at) {
            must_lose++;
            if (back) {
                fprintf(stderr, "seq %llu acknowledged during the cut, yet read back\n",
                        (unsigned long long)x->seq);
                ok = false;
            }
        }
        if (x->ack_ms + 100 < cut_start && !back) {
            fprintf(stderr, "seq %llu acknowledged before the cut, yet lost\n",
                    (unsigned long long)x->seq);
            ok = false;
        }
    }
    fprintf(stderr,
            "[ measured ] postgres async, stream cut %llu ms before the kill: %s; %zu in doubt; "
            "promoted %d ms after kill -9\n",
            (unsigned long long)(kill_at - cut_done), r.summary, r.in_doubt, failover_ms);
    if (!ok || r.lost == 0)
        writeloop_dump(wl);
    assert_true(ok);
    assert_true(must_lose >= 15);
    assert_true(r.lost >= must_lose);
    int64_t span_min = (int64_t)(kill_at - cut_done) - (int64_t)wl->timeout_ms;
    int64_t span_max = (int64_t)(kill_at - cut_start) + 2 * (int64_t)wl->interval_ms + 100;
    assert_true((int64_t)r.rpo_ms + 2 * (int64_t)wl->interval_ms >= span_min);
    assert_true((int64_t)r.rpo_ms <= span_max);
    assert_false(r.rpo_lower_bound);
}

#define CLIENT struct fl_pgwrite
#define CLOSE fl_pgwrite_close
#define WRITE fl_pgwrite_write
static char make_err[256];
#define MAKE_CLIENT(loop, out)                                                                     \
    fl_pgwrite_create((loop), bed.dsn, NULL, "close-test", (out), make_err, sizeof(make_err))

/* ---- closing safely mid-operation, on the loop of the test's own thread */

static int calls;
static bool closed_flag;

static void count_cb(void *arg, bool ok, uint64_t ack_ms, const char *detail)
{
    (void)arg;
    (void)ok;
    (void)ack_ms;
    (void)detail;
    calls++;
}

static void on_closed(void *arg)
{
    *(bool *)arg = true;
}

static void run_for(uv_loop_t *loop, int ms)
{
    uint64_t end = fl_mono_ms() + (uint64_t)ms;
    while (fl_mono_ms() < end) {
        uv_run(loop, UV_RUN_NOWAIT);
        sleep_ms(1);
    }
}

static void close_in_cb(void *arg, bool ok, uint64_t ack_ms, const char *detail)
{
    (void)ok;
    (void)ack_ms;
    (void)detail;
    calls++;
    CLOSE((CLIENT *)arg, on_closed, &closed_flag);
}

/* Closes a client at each point of an operation: before it started (the
 * same loop iteration as the call), mid-way (the server stopped: connecting
 * or waiting for the reply), and from inside the operation's own callback.
 * The callback is never called after a close, everything is freed (ASan)
 * and the loop closes with no handle left. */
static void check_close_mid_operation(bool server_stopped)
{
    for (int when = 0; when < 2; when++) {
        uv_loop_t loop;
        assert_int_equal(uv_loop_init(&loop), 0);
        CLIENT *c = NULL;
        assert_int_equal(MAKE_CLIENT(&loop, &c), 0);
        calls = 0;
        closed_flag = false;
        assert_int_equal(WRITE(c, 1, fl_now_ms(), 5000, count_cb, NULL), 0);
        assert_int_equal(WRITE(c, 2, fl_now_ms(), 5000, count_cb, NULL), -EBUSY);
        if (when == 1)
            run_for(&loop, server_stopped ? 200 : 0);
        CLOSE(c, on_closed, &closed_flag);
        assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
        assert_true(closed_flag);
        assert_int_equal(calls, 0);
        assert_int_equal(uv_loop_close(&loop), 0);
    }
    if (server_stopped)
        return;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    CLIENT *c = NULL;
    assert_int_equal(MAKE_CLIENT(&loop, &c), 0);
    calls = 0;
    closed_flag = false;
    assert_int_equal(WRITE(c, 3, fl_now_ms(), 5000, close_in_cb, c), 0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(calls, 1);
    assert_true(closed_flag);
    assert_int_equal(uv_loop_close(&loop), 0);
}

struct one_write {
    bool done, ok;
    char detail[256];
};

static void one_write_cb(void *arg, bool ok, uint64_t ack_ms, const char *detail)
{
    (void)ack_ms;
    struct one_write *o = arg;
    o->done = true;
    o->ok = ok;
    snprintf(o->detail, sizeof(o->detail), "%s", detail);
}

/* A multi-host DSN whose first host is the standby: libpq connects to it,
 * learns it is read-only, closes that socket and connects to the next host
 * within one PQconnectPoll sequence; the client must follow the socket it
 * moved to (ten writes, each on a fresh connection after closing). */
static void check_standby_first_dsn(void)
{
    char dsn[800];
    snprintf(dsn, sizeof(dsn),
             "host=%s,%s port=%u,%u dbname=flwp user=postgres target_session_attrs=read-write",
             bed.sock, bed.sock, bed.port[1], bed.port[0]);
    for (int i = 0; i < 10; i++) {
        uv_loop_t loop;
        assert_int_equal(uv_loop_init(&loop), 0);
        struct fl_pgwrite *c = NULL;
        char err[256];
        assert_int_equal(fl_pgwrite_create(&loop, dsn, NULL, "standby-first", &c, err, sizeof(err)),
                         0);
        struct one_write o = {0};
        assert_int_equal(fl_pgwrite_write(c, (uint64_t)i + 1, fl_now_ms(), 5000, one_write_cb, &o),
                         0);
        while (!o.done)
            uv_run(&loop, UV_RUN_ONCE);
        fl_pgwrite_close(c, NULL, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        assert_int_equal(uv_loop_close(&loop), 0);
        if (!o.ok)
            fail_msg("write %d through a standby-first DSN: %s", i + 1, o.detail);
    }
}

static void test_stopped_server_times_out(void **state)
{
    (void)state;
    check_standby_first_dsn();
    wl->timeout_ms = 500;
    assert_int_equal(writeloop_start(wl), 0);
    wait_or_dump(5, "no write acknowledged at first");
    pgbed_signal(&bed, 0, SIGSTOP);
    assert_int_equal(proc_wait_state(bed.pg[0], 'T', 5000), 'T');
    size_t first = writeloop_count(wl);
    uint64_t stopped_at = fl_mono_ms();
    check_close_mid_operation(true);
    sleep_ms(2000 - (int)(fl_mono_ms() - stopped_at < 2000 ? fl_mono_ms() - stopped_at : 2000));
    size_t last = writeloop_count(wl);
    pgbed_signal(&bed, 0, SIGCONT);
    stop_or_dump();
    int checked = 0;
    uint64_t worst = 0;
    for (size_t i = first; i + 1 < last; i++) {
        uint64_t took = wl->end_mono[i] - wl->sent_mono[i];
        assert_false(wl->writes[i].acked);
        /* on the open connection, or on the one opened after it was
         * dropped (the postmaster stopped: its startup unanswered) */
        assert_true(strncmp(wl->detail[i], "timeout after 500 ms", 20) == 0);
        assert_true(wl->detail[i][20] == '\0' ||
                    strncmp(wl->detail[i] + 20, ", connecting", 12) == 0);
        assert_true(took + 1 >= 500); /* ms rounding of two monotonic readings */
        /* the bound: the timeout plus the loop's longest stall, measured
         * beside it by the ticker */
        assert_true(took <= 500 + wl->max_tick_gap_ms + 20);
        if (took > worst)
            worst = took;
        checked++;
    }
    fprintf(stderr,
            "[ measured ] postgres stopped: %d writes timed out, slowest %llu ms for 500 ms; "
            "ticker's longest gap %llu ms over %llu ticks\n",
            checked, (unsigned long long)worst, (unsigned long long)wl->max_tick_gap_ms,
            (unsigned long long)wl->ticks);
    assert_true(checked >= 2);
    check_close_mid_operation(false);
    /* a client that blocked would stall the ticker for a whole timeout */
    assert_true(wl->max_tick_gap_ms < wl->timeout_ms);
}

int main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "needs root (the postgres user, nftables)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stopped_server_times_out, setup_async, teardown),
        cmocka_unit_test_setup_teardown(test_sync_failover_loses_nothing, setup_sync, teardown),
        cmocka_unit_test_setup_teardown(test_async_cut_stream_loses_and_counts, setup_async,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
