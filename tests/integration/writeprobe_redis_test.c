/* The Redis write client (controller/probes/rediswrite.c) against a real bed
 * (tests/support/redisbed.c: primary, replica, three Sentinels), with the
 * data loss measured by controller/run/rpo.c (issue 15):
 *
 *   - WAIT 1: kill -9 the primary, Sentinel promotes the replica, the client
 *     asks the Sentinels again and follows; nothing acknowledged is lost.
 *   - asynchronous: the replication link cut (nftables), writes go on, kill
 *     -9 the primary, Sentinel fails over: exactly the writes acknowledged
 *     while the link was cut are lost, and the RPO is computed.
 *   - a stopped server (SIGSTOP): a write ends "timeout after N ms" within
 *     the bound, while a timer beside it keeps ticking. */
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
#include "controller/probes/rediswrite.h"
#include "tests/support/proc.h"
#include "tests/support/redisbed.h"
#include "tests/support/writeloop.h"

static struct redisbed bed;
static struct writeloop *wl;

static int setup(void **state)
{
    (void)state;
    wl = calloc(1, sizeof(*wl));
    assert_non_null(wl);
    if (redisbed_start(&bed) < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (wl->running)
        writeloop_stop(wl);
    free(wl->read_back);
    free(wl);
    redisbed_stop(&bed);
    return 0;
}

static void use_sentinels(struct writeloop *w, const char *run, unsigned wait_replicas)
{
    static const char *sentinels[3];
    for (int i = 0; i < 3; i++)
        sentinels[i] = bed.sentinel_addr[i];
    w->kind = WRITELOOP_REDIS;
    w->redis.sentinels = sentinels;
    w->redis.n_sentinels = 3;
    w->redis.master_name = REDISBED_MASTER;
    w->redis.wait_replicas = wait_replicas;
    snprintf(w->run_id, sizeof(w->run_id), "%s-%d", run, (int)getpid());
    w->interval_ms = 50;
    w->timeout_ms = 1000;
    w->read_back_ms = 10000;
}

static struct fl_rpo_result measure(struct writeloop *w)
{
    struct fl_rpo_result r;
    assert_int_equal(fl_rpo_measure(w->writes, atomic_load(&w->n_writes), w->read_back,
                                    w->n_read_back, UINT64_MAX, w->interval_ms, &r),
                     0);
    return r;
}

/* The old primary comes back (empty, no persistence) as a replica of the new
 * master, as an operator would restart it, so that WAIT 1 can be met again.
 * (Left to itself, it would come back as a master and Sentinel would demote
 * it only some 10 s later.) */
static void restart_old_primary(void)
{
    char portbuf[8], log[300];
    snprintf(portbuf, sizeof(portbuf), "%u", bed.pport);
    snprintf(log, sizeof(log), "%s/primary.log", bed.dir);
    char rport[8];
    snprintf(rport, sizeof(rport), "%u", bed.rport);
    char *argv[] = {"/usr/bin/redis-server",
                    "--port",
                    portbuf,
                    "--bind",
                    REDISBED_PRIMARY_ADDR,
                    "--bind-source-addr",
                    REDISBED_PRIMARY_ADDR,
                    "--dir",
                    bed.dir,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--protected-mode",
                    "no",
                    "--repl-diskless-sync-delay",
                    "0",
                    "--replicaof",
                    REDISBED_REPLICA_ADDR,
                    rport,
                    NULL};
    bed.primary = proc_start(argv, log);
}

static void test_wait1_failover_loses_nothing(void **state)
{
    (void)state;
    use_sentinels(wl, "wait1", 1);
    assert_int_equal(writeloop_start(wl), 0);
    assert_int_equal(writeloop_wait_acked(wl, 20, 20000), 0);

    uint64_t killed_at = fl_now_ms();
    kill(bed.primary, SIGKILL);
    proc_wait(bed.primary, 5000);
    bed.primary = 0;
    int failover_ms = redisbed_wait_master(&bed, REDISBED_REPLICA_ADDR, bed.rport, 30000);
    assert_true(failover_ms >= 0);
    restart_old_primary();
    /* the client follows: writes are acknowledged again, by the new master
     * and its (new) replica */
    if (writeloop_wait_acked(wl, 20, 30000) < 0) {
        writeloop_stop(wl);
        writeloop_dump(wl);
        fail_msg("no write acknowledged after the failover");
    }
    assert_int_equal(writeloop_stop(wl), 0);
    struct fl_rpo_result r = measure(wl);
    size_t n = atomic_load(&wl->n_writes);
    bool new_master = false;
    for (size_t i = 0; i < n; i++)
        if (wl->writes[i].acked && strstr(wl->detail[i], bed.replica_text) != NULL)
            new_master = true;
    fprintf(stderr,
            "[ measured ] redis WAIT 1: %zu writes, %s; sentinel failover %d ms after kill "
            "(down-after 1000 ms), client gap %llu ms\n",
            n, r.summary, failover_ms, (unsigned long long)writeloop_longest_gap(wl));
    (void)killed_at;
    if (r.lost != 0 || !new_master)
        writeloop_dump(wl);
    assert_true(new_master);
    assert_int_equal(r.lost, 0);
    assert_int_equal(r.rpo_ms, 0);
    assert_true(r.acknowledged >= 40);
    assert_int_equal(r.unknown, 0);
}

static void test_async_cut_link_loses_and_counts(void **state)
{
    (void)state;
    use_sentinels(wl, "async", 0);
    assert_int_equal(writeloop_start(wl), 0);
    assert_int_equal(writeloop_wait_acked(wl, 20, 20000), 0);

    /* a moment for the replica to have the first writes */
    sleep_ms(200);
    uint64_t cut_start = fl_now_ms();
    assert_int_equal(redisbed_cut_link(&bed), 0);
    uint64_t cut_done = fl_now_ms();
    /* 16: the first may have been sent before the cut */
    assert_int_equal(writeloop_wait_acked(wl, 16, 20000), 0);
    uint64_t kill_at = fl_now_ms();
    kill(bed.primary, SIGKILL);
    proc_wait(bed.primary, 5000);
    bed.primary = 0;
    int failover_ms = redisbed_wait_master(&bed, REDISBED_REPLICA_ADDR, bed.rport, 30000);
    /* the link stays cut until the replica is promoted: what the dead
     * primary's kernel still held for it must not arrive late */
    redisbed_uncut_link(&bed);
    assert_true(failover_ms >= 0);
    if (writeloop_wait_acked(wl, 10, 30000) < 0) {
        writeloop_stop(wl);
        writeloop_dump(wl);
        fail_msg("no write acknowledged after the failover");
    }
    assert_int_equal(writeloop_stop(wl), 0);
    struct fl_rpo_result r = measure(wl);

    /* Truth, from the test's own clock: every write acknowledged after the
     * cut was in force and before the kill cannot have reached the replica;
     * every write acknowledged well before the cut had (the replica was in
     * sync, checked by the bed at start and the 200 ms pause). */
    size_t n = atomic_load(&wl->n_writes);
    size_t must_lose = 0;
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
            "[ measured ] redis async, link cut %llu ms before the kill: %s; %zu in doubt; "
            "sentinel failover %d ms after kill\n",
            (unsigned long long)(kill_at - cut_done), r.summary, r.in_doubt, failover_ms);
    if (!ok || r.lost == 0)
        writeloop_dump(wl);
    assert_true(ok);
    assert_true(must_lose >= 15);
    assert_true(r.lost >= must_lose);
    /* RPO: from the last write kept before the loss to the last lost one;
     * within one interval (plus the write in flight) of the cut's span */
    int64_t span_min = (int64_t)(kill_at - cut_done) - (int64_t)wl->timeout_ms;
    int64_t span_max = (int64_t)(kill_at - cut_start) + 2 * (int64_t)wl->interval_ms + 100;
    assert_true((int64_t)r.rpo_ms + 2 * (int64_t)wl->interval_ms >= span_min);
    assert_true((int64_t)r.rpo_ms <= span_max);
    assert_false(r.rpo_lower_bound);
}

#define CLIENT struct fl_rediswrite
#define CLOSE fl_rediswrite_close
#define WRITE fl_rediswrite_write
static char make_err[256];
static int make_client(uv_loop_t *loop, struct fl_rediswrite **out)
{
    struct fl_rediswrite_config cfg = {.address = bed.primary_text, .run_id = "close-test"};
    return fl_rediswrite_create(loop, &cfg, out, make_err, sizeof(make_err));
}
#define MAKE_CLIENT make_client

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

static void test_stopped_server_times_out(void **state)
{
    (void)state;
    wl->kind = WRITELOOP_REDIS;
    wl->redis.address = bed.primary_text;
    snprintf(wl->run_id, sizeof(wl->run_id), "stop-%d", (int)getpid());
    wl->interval_ms = 50;
    wl->timeout_ms = 500;
    wl->read_back_ms = 5000;
    assert_int_equal(writeloop_start(wl), 0);
    if (writeloop_wait_acked(wl, 5, 20000) < 0) {
        writeloop_stop(wl);
        writeloop_dump(wl);
        fail_msg("no write acknowledged: %s", wl->create_err);
    }
    kill(bed.primary, SIGSTOP);
    assert_int_equal(proc_wait_state(bed.primary, 'T', 5000), 'T');
    size_t first = writeloop_count(wl);
    uint64_t stopped_at = fl_mono_ms();
    check_close_mid_operation(true);
    sleep_ms(2000 - (int)(fl_mono_ms() - stopped_at < 2000 ? fl_mono_ms() - stopped_at : 2000));
    size_t last = writeloop_count(wl);
    kill(bed.primary, SIGCONT);
    if (writeloop_stop(wl) != 0) {
        writeloop_dump(wl);
        fail_msg("read-back failed: %s", wl->read_back_err);
    }
    /* every write sent while stopped (not the one in flight at SIGSTOP, nor
     * the last, which may straddle SIGCONT) timed out, each within its bound */
    int checked = 0;
    uint64_t worst = 0;
    for (size_t i = first; i + 1 < last; i++) {
        uint64_t took = wl->end_mono[i] - wl->sent_mono[i];
        assert_false(wl->writes[i].acked);
        assert_string_equal(wl->detail[i], "timeout after 500 ms");
        assert_true(took + 1 >= 500); /* ms rounding of two monotonic readings */
        /* the bound: the timeout plus the loop's own longest stall, measured
         * beside it by the ticker */
        assert_true(took <= 500 + wl->max_tick_gap_ms + 20);
        if (took > worst)
            worst = took;
        checked++;
    }
    fprintf(stderr,
            "[ measured ] redis stopped: %d writes timed out, slowest %llu ms for 500 ms; "
            "ticker's longest gap %llu ms over %llu ticks\n",
            checked, (unsigned long long)worst, (unsigned long long)wl->max_tick_gap_ms,
            (unsigned long long)wl->ticks);
    assert_true(checked >= 2);
    check_close_mid_operation(false);
    /* the loop never blocked on the stopped server: a client that blocked
     * would stall the ticker for at least a whole timeout */
    assert_true(wl->max_tick_gap_ms < wl->timeout_ms);
}

int main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "needs root (nftables)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stopped_server_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait1_failover_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_cut_link_loses_and_counts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
