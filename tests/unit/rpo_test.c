/* Data loss and the RPO observed (controller/run/rpo.c) on hand-made write
 * timelines. Every expected figure is worked out in the comment above it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "controller/run/rpo.h"

#define MAX_WRITES 256

/* Writes laid out from a pattern, one character per write, seq = index + 1,
 * sent at 1000 + 100 * index, acknowledged 20 ms later:
 *   'S' acknowledged, survived (its seq is read back)
 *   'L' acknowledged, lost (not read back)
 *   'D' not acknowledged, read back (in doubt)
 *   'X' not acknowledged, not read back
 * Returns the number of writes; fills rb/n_rb with the seqs read back. */
static size_t layout(const char *pattern, struct fl_rpo_write *w, uint64_t *rb, size_t *n_rb)
{
    size_t n = 0;
    *n_rb = 0;
    for (size_t i = 0; pattern[i] != '\0'; i++) {
        assert_true(n < MAX_WRITES);
        char c = pattern[i];
        w[n] = (struct fl_rpo_write){.seq = i + 1, .sent_ms = 1000 + 100 * i};
        if (c == 'S' || c == 'L') {
            w[n].acked = true;
            w[n].ack_ms = w[n].sent_ms + 20;
        }
        if (c == 'S' || c == 'D')
            rb[(*n_rb)++] = i + 1;
        n++;
    }
    return n;
}

static int measure(const char *pattern, struct fl_rpo_result *r)
{
    struct fl_rpo_write w[MAX_WRITES];
    uint64_t rb[MAX_WRITES];
    size_t n_rb;
    size_t n = layout(pattern, w, rb, &n_rb);
    return fl_rpo_measure(w, n, rb, n_rb, UINT64_MAX, 100, r);
}

static void test_nothing_lost(void **state)
{
    (void)state;
    struct fl_rpo_result r;
    /* 10 acknowledged, all read back; 2 timed out, one of them kept anyway. */
    assert_int_equal(measure("SSSSSXSSSSDS", &r), 0);
    assert_int_equal(r.acknowledged, 10);
    assert_int_equal(r.survived, 10);
    assert_int_equal(r.lost, 0);
    assert_int_equal(r.in_doubt, 1);
    assert_int_equal(r.unknown, 0);
    assert_int_equal(r.rpo_ms, 0);
    assert_int_equal(r.resolution_ms, 100);
    assert_int_equal(r.n_ranges_total, 0);
    assert_string_equal(r.summary, "no acknowledged write lost (10 checked)");
}

static void test_tail_lost(void **state)
{
    (void)state;
    struct fl_rpo_result r;
    /* seq: 1..5 S, 6..9 L, 10 X (the failover), 11..12 S (new primary).
     * F = seq 6, L = seq 9 (acked at 1000+800+20 = 1820),
     * S = the last survivor acked before seq 6: seq 5 (acked 1000+400+20 = 1420).
     * RPO = 1820 - 1420 = 400 ms. */
    assert_int_equal(measure("SSSSSLLLLXSS", &r), 0);
    assert_int_equal(r.acknowledged, 11);
    assert_int_equal(r.survived, 7);
    assert_int_equal(r.lost, 4);
    assert_int_equal(r.in_doubt, 0);
    assert_int_equal(r.rpo_ms, 400);
    assert_false(r.rpo_lower_bound);
    assert_int_equal(r.first_lost_seq, 6);
    assert_int_equal(r.last_lost_seq, 9);
    assert_int_equal(r.reference_seq, 5);
    assert_int_equal(r.n_ranges_total, 1);
    assert_int_equal(r.ranges[0].first, 6);
    assert_int_equal(r.ranges[0].last, 9);
    assert_string_equal(r.summary,
                        "4 of 11 acknowledged writes lost (seq 6-9), RPO 0.40s (±0.10s)");
}

static void test_single_lost(void **state)
{
    (void)state;
    struct fl_rpo_result r;
    /* Only seq 4 lost: F = L = 4 (acked 1320), S = seq 3 (acked 1220): RPO 100. */
    assert_int_equal(measure("SSSLSS", &r), 0);
    assert_int_equal(r.lost, 1);
    assert_int_equal(r.rpo_ms, 100);
    assert_int_equal(r.n_ranges_total, 1);
    assert_int_equal(r.ranges[0].first, 4);
    assert_int_equal(r.ranges[0].last, 4);
    assert_string_equal(r.summary, "1 of 6 acknowledged writes lost (seq 4), RPO 0.10s (±0.10s)");
}

static void test_holes_do_not_shorten(void **state)
{
    (void)state;
    struct fl_rpo_result r;
    /* seq 1..2 S, 3..4 L, 5 S, 6..7 L, 8 S.
     * F = 3 (acked 1220). S = seq 2 (acked 1120): seq 5 survived but was
     * acknowledged after F, so it is no reference. L = 7 (acked 1620).
     * RPO = 1620 - 1120 = 500. Ranges 3-4 and 6-7. */
    assert_int_equal(measure("SSLLSLLS", &r), 0);
    assert_int_equal(r.acknowledged, 8);
    assert_int_equal(r.lost, 4);
    assert_int_equal(r.survived, 4);
    assert_int_equal(r.rpo_ms, 500);
    assert_int_equal(r.reference_seq, 2);
    assert_int_equal(r.n_ranges_total, 2);
    assert_int_equal(r.ranges[0].first, 3);
    assert_int_equal(r.ranges[0].last, 4);
    assert_int_equal(r.ranges[1].first, 6);
    assert_int_equal(r.ranges[1].last, 7);
}

static void test_unacknowledged_splits_range(void **state)
{
    (void)state;
    struct fl_rpo_result r;
    /* seq 3 L, 4 X (never promised), 5 L: two ranges, 3 and 5.
     * F = 3 (1220), L = 5 (1420), S = 2 (1120): RPO 300. */
    assert_int_equal(measure("SSLXL", &r), 0);
    assert_int_equal(r.lost, 2);
    assert_int_equal(r.rpo_ms, 300);
    assert_int_equal(r.n_ranges_total, 2);
    assert_int_equal(r.ranges[0].first, 3);
    assert_int_equal(r.ranges[1].first, 5);
    assert_string_equal(r.summary,
                        "2 of 4 acknowledged writes lost (seq 3, 5), RPO 0.30s (±0.10s)");
}

static void test_first_write_lost_is_lower_bound(void **state)
{
    (void)state;
    struct fl_rpo_result r;
    /* Everything acknowledged lost: no survivor before F = 1. The RPO runs
     * from the first attempt sent (1000) to L = 3 (acked 1220): at least 220. */
    assert_int_equal(measure("LLL", &r), 0);
    assert_int_equal(r.lost, 3);
    assert_true(r.rpo_lower_bound);
    assert_int_equal(r.rpo_ms, 220);
    assert_string_equal(r.summary,
                        "3 of 3 acknowledged writes lost (seq 1-3), RPO at least 0.22s (±0.10s)");
}

static void test_end_at_and_order(void **state)
{
    (void)state;
    struct fl_rpo_result r;
    /* Given out of order, read back with duplicates and a stranger (seq 99):
     *   seq 2: sent 100, acked 150, read back
     *   seq 1: sent   0, acked  50, read back (twice)
     *   seq 3: sent 200, acked 260, not read back -> lost
     *   seq 4: sent 300, acked 900, after end_at 500 -> not acknowledged;
     *          read back -> in doubt
     *   seq 5: sent 400, acked 480, not read back -> lost
     * F = 3, L = 5 (480), S = 2 (150): RPO 330; resolution 250. */
    struct fl_rpo_write w[] = {
        {.seq = 2, .sent_ms = 100, .acked = true, .ack_ms = 150},
        {.seq = 1, .sent_ms = 0, .acked = true, .ack_ms = 50},
        {.seq = 5, .sent_ms = 400, .acked = true, .ack_ms = 480},
        {.seq = 3, .sent_ms = 200, .acked = true, .ack_ms = 260},
        {.seq = 4, .sent_ms = 300, .acked = true, .ack_ms = 900},
    };
    uint64_t rb[] = {4, 1, 99, 2, 1};
    assert_int_equal(fl_rpo_measure(w, 5, rb, 5, 500, 250, &r), 0);
    assert_int_equal(r.acknowledged, 4);
    assert_int_equal(r.survived, 2);
    assert_int_equal(r.lost, 2);
    assert_int_equal(r.in_doubt, 1);
    assert_int_equal(r.unknown, 1);
    assert_int_equal(r.rpo_ms, 330);
    assert_int_equal(r.resolution_ms, 250);
    assert_int_equal(r.reference_seq, 2);
    assert_int_equal(r.first_lost_seq, 3);
    assert_int_equal(r.last_lost_seq, 5);
}

static void test_ack_order_not_seq_order(void **state)
{
    (void)state;
    struct fl_rpo_result r;
    /* Acknowledgements can arrive out of seq order (a slow WAIT):
     *   seq 1 acked 100 S; seq 2 acked 400 S; seq 3 acked 250 L; seq 4 acked 300 S.
     * F = 3 (250). Survivors acked before 250: seq 1 (100) only -> S = 1.
     * L = 3 (250). RPO = 250 - 100 = 150. */
    struct fl_rpo_write w[] = {
        {.seq = 1, .sent_ms = 0, .acked = true, .ack_ms = 100},
        {.seq = 2, .sent_ms = 50, .acked = true, .ack_ms = 400},
        {.seq = 3, .sent_ms = 100, .acked = true, .ack_ms = 250},
        {.seq = 4, .sent_ms = 150, .acked = true, .ack_ms = 300},
    };
    uint64_t rb[] = {1, 2, 4};
    assert_int_equal(fl_rpo_measure(w, 4, rb, 3, UINT64_MAX, 50, &r), 0);
    assert_int_equal(r.lost, 1);
    assert_int_equal(r.reference_seq, 1);
    assert_int_equal(r.rpo_ms, 150);
}

static void test_many_ranges_counted(void **state)
{
    (void)state;
    struct fl_rpo_result r;
    /* "SL" 40 times: 40 single-seq ranges (2, 4, ..., 80), 32 listed.
     * F = 2 (acked 1120), S = 1 (1020), L = 80 (1000 + 7900 + 20 = 8920):
     * RPO 8920 - 1020 = 7900. */
    char p[81];
    for (int i = 0; i < 40; i++) {
        p[2 * i] = 'S';
        p[2 * i + 1] = 'L';
    }
    p[80] = '\0';
    assert_int_equal(measure(p, &r), 0);
    assert_int_equal(r.lost, 40);
    assert_int_equal(r.n_ranges_total, 40);
    assert_int_equal(r.n_ranges, FL_RPO_MAX_RANGES);
    assert_int_equal(r.ranges[FL_RPO_MAX_RANGES - 1].first, 64);
    assert_int_equal(r.rpo_ms, 7900);
    assert_string_equal(r.summary, "40 of 80 acknowledged writes lost (seq 2, 4, 6, 8 and 36 more "
                                   "ranges), RPO 7.90s (±0.10s)");
}

static void test_long_range_past_cap(void **state)
{
    (void)state;
    struct fl_rpo_result r;
    /* 33 single ranges (SL x 33: seqs 2..66), then a 5-long run 68-72 after
     * an S at 67: 34 ranges, the last one not listed but counted once. */
    char p[128];
    size_t k = 0;
    for (int i = 0; i < 33; i++) {
        p[k++] = 'S';
        p[k++] = 'L';
    }
    p[k++] = 'S';
    for (int i = 0; i < 5; i++)
        p[k++] = 'L';
    p[k] = '\0';
    assert_int_equal(measure(p, &r), 0);
    assert_int_equal(r.lost, 38);
    assert_int_equal(r.n_ranges_total, 34);
    assert_int_equal(r.n_ranges, FL_RPO_MAX_RANGES);
}

static void test_bad_input(void **state)
{
    (void)state;
    struct fl_rpo_result r;
    memset(&r, 0x5a, sizeof(r));
    struct fl_rpo_write dup[] = {{.seq = 1, .sent_ms = 0}, {.seq = 1, .sent_ms = 10}};
    assert_int_equal(fl_rpo_measure(dup, 2, NULL, 0, 0, 100, &r), -EINVAL);
    struct fl_rpo_write early[] = {{.seq = 1, .sent_ms = 100, .acked = true, .ack_ms = 50}};
    assert_int_equal(fl_rpo_measure(early, 1, NULL, 0, 1000, 100, &r), -EINVAL);
    assert_int_equal(fl_rpo_measure(NULL, 1, NULL, 0, 0, 100, &r), -EINVAL);
    assert_int_equal(fl_rpo_measure(NULL, 0, NULL, 1, 0, 100, &r), -EINVAL);
    assert_int_equal(fl_rpo_measure(NULL, 0, NULL, 0, 0, 0, &r), -EINVAL);
    assert_int_equal(fl_rpo_measure(NULL, 0, NULL, 0, 0, 100, NULL), -EINVAL);
    /* out untouched on error */
    assert_int_equal(r.lost, (size_t)0x5a5a5a5a5a5a5a5aULL);
    /* nothing written at all: nothing checked, nothing lost */
    assert_int_equal(fl_rpo_measure(NULL, 0, NULL, 0, 0, 100, &r), 0);
    assert_int_equal(r.acknowledged, 0);
    assert_string_equal(r.summary, "no acknowledged write lost (0 checked)");
}

static void test_classify(void **state)
{
    (void)state;
    /* Given in this order: seq 3 acked, read back -> survived; seq 1 acked,
     * not read back -> lost; seq 2 not acked, read back -> in doubt; seq 4
     * not acked -> not acknowledged; seq 5 acked after end_at (500), not
     * read back -> not acknowledged (it was never promised within the run). */
    struct fl_rpo_write w[] = {
        {.seq = 3, .sent_ms = 200, .acked = true, .ack_ms = 210},
        {.seq = 1, .sent_ms = 0, .acked = true, .ack_ms = 10},
        {.seq = 2, .sent_ms = 100},
        {.seq = 4, .sent_ms = 300},
        {.seq = 5, .sent_ms = 400, .acked = true, .ack_ms = 600},
    };
    uint64_t rb[] = {3, 2};
    enum fl_rpo_fate f[5];
    assert_int_equal(fl_rpo_classify(w, 5, rb, 2, 500, f), 0);
    assert_int_equal(f[0], FL_RPO_SURVIVED);
    assert_int_equal(f[1], FL_RPO_LOST);
    assert_int_equal(f[2], FL_RPO_IN_DOUBT);
    assert_int_equal(f[3], FL_RPO_NOT_ACKED);
    assert_int_equal(f[4], FL_RPO_NOT_ACKED);
    assert_string_equal(fl_rpo_fate_name(f[1]), "acknowledged, then lost");
    /* nothing read back: no bsearch on NULL (UBSan) */
    assert_int_equal(fl_rpo_classify(w, 2, NULL, 0, 500, f), 0);
    assert_int_equal(f[0], FL_RPO_LOST);
    assert_int_equal(fl_rpo_classify(w, 1, NULL, 0, 500, NULL), -EINVAL);
    assert_int_equal(fl_rpo_classify(NULL, 0, NULL, 1, 500, f), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_lost),
        cmocka_unit_test(test_tail_lost),
        cmocka_unit_test(test_single_lost),
        cmocka_unit_test(test_holes_do_not_shorten),
        cmocka_unit_test(test_unacknowledged_splits_range),
        cmocka_unit_test(test_first_write_lost_is_lower_bound),
        cmocka_unit_test(test_end_at_and_order),
        cmocka_unit_test(test_ack_order_not_seq_order),
        cmocka_unit_test(test_many_ranges_counted),
        cmocka_unit_test(test_long_range_past_cap),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_classify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
