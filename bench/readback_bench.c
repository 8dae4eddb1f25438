/* Read-back time of a write probe's records (issue 15): how long
 * fl_pgwrite_readback / fl_rediswrite_readback take to bring back a run's
 * records, on the libuv loop, as the controller does after recovery.
 *
 *   readback_bench pg DSN TABLE RUN_ID REPS
 *   readback_bench redis ADDRESS KEY RUN_ID REPS
 *
 * The records must be there already (bench/write_probe.sh puts them). Each
 * rep is timed twice: cold (a new client, so the connect -- and for
 * PostgreSQL its CREATE TABLE IF NOT EXISTS -- is included, as after a
 * failover that dropped the connection) and warm (a second read-back on the
 * same client). Prints one line per rep: "cold_ms warm_ms n_records". */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/clock.h"
#include "controller/probes/pgwrite.h"
#include "controller/probes/rediswrite.h"

#define TIMEOUT_MS 60000

struct bench {
    bool pg;
    struct fl_pgwrite *p;
    struct fl_rediswrite *r;
    bool done;
    size_t n;
    char err[512];
};

static void on_back(void *arg, const uint64_t *seqs, size_t n, const char *err)
{
    struct bench *b = arg;
    (void)seqs;
    b->done = true;
    b->n = n;
    if (err != NULL)
        snprintf(b->err, sizeof(b->err), "%s", err);
}

static void on_closed(void *arg)
{
    *(bool *)arg = true;
}

/* One read-back, run to its end on the loop; its duration in microseconds,
 * or -1 with b->err set. */
static int64_t one(uv_loop_t *loop, struct bench *b)
{
    b->done = false;
    b->err[0] = '\0';
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = b->pg ? fl_pgwrite_readback(b->p, TIMEOUT_MS, on_back, b)
                   : fl_rediswrite_readback(b->r, TIMEOUT_MS, on_back, b);
    if (rc < 0) {
        snprintf(b->err, sizeof(b->err), "cannot start: %d", rc);
        return -1;
    }
    while (!b->done)
        uv_run(loop, UV_RUN_ONCE);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (b->err[0] != '\0')
        return -1;
    return (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
}

int main(int argc, char **argv)
{
    if (argc != 6 || (strcmp(argv[1], "pg") != 0 && strcmp(argv[1], "redis") != 0)) {
        fprintf(stderr, "usage: readback_bench pg DSN TABLE RUN_ID REPS | redis ADDRESS KEY "
                        "RUN_ID REPS\n");
        return 64;
    }
    int reps = atoi(argv[5]);
    uv_loop_t *loop = uv_default_loop();
    for (int i = 0; i < reps; i++) {
        struct bench b = {.pg = strcmp(argv[1], "pg") == 0};
        char err[256];
        int rc;
        if (b.pg) {
            rc = fl_pgwrite_create(loop, argv[2], argv[3], argv[4], &b.p, err, sizeof(err));
        } else {
            struct fl_rediswrite_config cfg = {
                .address = argv[2], .key = argv[3], .run_id = argv[4]};
            rc = fl_rediswrite_create(loop, &cfg, &b.r, err, sizeof(err));
        }
        if (rc < 0) {
            fprintf(stderr, "readback_bench: %s\n", err);
            return 1;
        }
        int64_t cold = one(loop, &b);
        size_t n_cold = b.n;
        int64_t warm = cold >= 0 ? one(loop, &b) : -1;
        if (cold < 0 || warm < 0) {
            fprintf(stderr, "readback_bench: read-back failed: %s\n", b.err);
            return 1;
        }
        bool closed = false;
        if (b.pg)
            fl_pgwrite_close(b.p, on_closed, &closed);
        else
            fl_rediswrite_close(b.r, on_closed, &closed);
        while (!closed)
            uv_run(loop, UV_RUN_ONCE);
        printf("%.3f %.3f %zu\n", (double)cold / 1000.0, (double)warm / 1000.0,
               n_cold == b.n ? b.n : 0);
        fflush(stdout);
    }
    uv_run(loop, UV_RUN_DEFAULT);
    return uv_loop_close(loop) == 0 ? 0 : 1;
}
