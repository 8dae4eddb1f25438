/* attempts.jsonl on a file system that fills up (issue 12 item 5): the log
 * stops loudly while FL_ATTEMPTLOG_RESERVE is still free, so run.json and
 * junit.xml still fit beside it; every line it did write is whole; the
 * event loop was never blocked on the disk (a timer beside it keeps ticking).
 * A real tmpfs of 1.5 MiB, mounted by the test and always removed. */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <uv.h>
#include <cmocka.h>

#include "controller/run/attemptlog.h"

static char dir[] = "/tmp/fl-attemptlog.XXXXXX";
static bool mounted;

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(dir) == NULL)
        return -1;
    if (mount("fl-attemptlog", dir, "tmpfs", 0, "size=1536k,mode=0700") != 0)
        return -1;
    mounted = true;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (mounted && umount2(dir, MNT_DETACH) != 0)
        return -1;
    return rmdir(dir);
}

struct feeder {
    struct fl_attemptlog *log;
    uint64_t sent;
    uint64_t ticks;
    bool closed;
};

static void on_closed(void *arg)
{
    ((struct feeder *)arg)->closed = true;
}

/* 2,000 results every millisecond-ish, 60,000 in all (about 3.5 MB). */
static void on_feed(uv_timer_t *t)
{
    struct feeder *f = t->data;
    for (int i = 0; i < 2000 && f->sent < 60000; i++, f->sent++) {
        struct fl_probe_result r;
        memset(&r, 0, sizeof(r));
        r.started_ms = 1764380000000ull + f->sent;
        r.latency_ms = 1;
        r.outcome = f->sent % 7 ? FL_OUTCOME_OK : FL_OUTCOME_TIMEOUT;
        r.ok = r.outcome == FL_OUTCOME_OK;
        snprintf(r.detail, sizeof(r.detail), "%s", r.ok ? "200" : "timeout after 100ms");
        fl_attemptlog_add(f->log, f->sent % 5, &r);
    }
    if (f->sent >= 60000) {
        uv_timer_stop(t);
        uv_close((uv_handle_t *)t, NULL);
        fl_attemptlog_close(f->log, on_closed, f);
    }
}

static void on_tick(uv_timer_t *t)
{
    struct feeder *f = t->data;
    f->ticks++;
    if (f->closed)
        uv_close((uv_handle_t *)t, NULL);
}

static void test_full_disk_stops_the_log_not_the_run(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    char path[300];
    snprintf(path, sizeof(path), "%s/attempts.jsonl", dir);
    static struct fl_attemptlog log;
    assert_int_equal(fl_attemptlog_open(&log, &loop, path), 0);
    struct feeder f = {.log = &log};
    uv_timer_t feed, tick;
    uv_timer_init(&loop, &feed);
    uv_timer_init(&loop, &tick);
    feed.data = tick.data = &f;
    uv_timer_start(&feed, on_feed, 1, 1);
    uv_timer_start(&tick, on_tick, 5, 5);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);

    assert_true(f.closed);
    assert_true(log.failed);
    fprintf(stderr, "%s\n", log.error);
    assert_non_null(strstr(log.error, "less than FL_ATTEMPTLOG_RESERVE"));
    assert_true(f.ticks > 0); /* the loop kept running */

    /* every line written is whole, and there is room left for run.json */
    FILE *in = fopen(path, "r");
    assert_non_null(in);
    char line[512];
    size_t lines = 0;
    while (fgets(line, sizeof(line), in) != NULL) {
        size_t n = strlen(line);
        assert_true(n > 0 && line[n - 1] == '\n');
        json_t *j = json_loads(line, 0, NULL);
        assert_non_null(j);
        json_decref(j);
        lines++;
    }
    fclose(in);
    assert_true(lines > 0 && lines < 60000);
    assert_int_equal(lines, log.lines_written);
    struct statvfs vfs;
    assert_int_equal(statvfs(dir, &vfs), 0);
    uint64_t free_bytes = (uint64_t)vfs.f_bavail * vfs.f_bsize;
    fprintf(stderr, "%zu lines kept, %llu bytes free\n", lines, (unsigned long long)free_bytes);
    assert_true(free_bytes >= FL_ATTEMPTLOG_RESERVE);
    char other[300];
    snprintf(other, sizeof(other), "%s/run.json", dir);
    FILE *o = fopen(other, "w");
    assert_non_null(o);
    static char blob[256 * 1024];
    memset(blob, 'x', sizeof(blob));
    assert_int_equal(fwrite(blob, 1, sizeof(blob), o), sizeof(blob));
    assert_int_equal(fclose(o), 0);
    unlink(other);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_disk_stops_the_log_not_the_run),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
