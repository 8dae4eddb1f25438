/* Framing: frames in any pieces, many at once, empty, oversize, truncated. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/frame.h"

/* Appends one frame (header + payload of len bytes, each byte = seed + i). */
static size_t put_frame(uint8_t *out, uint32_t len, uint8_t seed)
{
    fl_frame_put_header(out, len);
    for (uint32_t i = 0; i < len; i++)
        out[FL_FRAME_HEADER + i] = (uint8_t)(seed + i);
    return FL_FRAME_HEADER + len;
}

static void check_payload(const uint8_t *p, size_t len, size_t want_len, uint8_t seed)
{
    assert_int_equal(len, want_len);
    for (size_t i = 0; i < len; i++)
        assert_int_equal(p[i], (uint8_t)(seed + i));
}

static void test_one_frame(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = put_frame(buf, 10, 7);
    struct fl_frame_decoder d;
    fl_frame_decoder_init(&d);
    assert_int_equal(fl_frame_decoder_push(&d, buf, n), 0);
    uint8_t *p;
    size_t len;
    assert_int_equal(fl_frame_decoder_next(&d, &p, &len), 1);
    check_payload(p, len, 10, 7);
    assert_int_equal(fl_frame_decoder_next(&d, &p, &len), 0);
    assert_int_equal(fl_frame_decoder_finish(&d), 0);
    fl_frame_decoder_free(&d);
}

/* A frame split at every possible byte boundary, including inside the header. */
static void test_split_byte_by_byte(void **state)
{
    (void)state;
    uint8_t buf[300];
    size_t n = put_frame(buf, 200, 3);
    struct fl_frame_decoder d;
    fl_frame_decoder_init(&d);
    uint8_t *p;
    size_t len;
    for (size_t i = 0; i < n - 1; i++) {
        assert_int_equal(fl_frame_decoder_push(&d, buf + i, 1), 0);
        assert_int_equal(fl_frame_decoder_next(&d, &p, &len), 0);
        assert_int_equal(fl_frame_decoder_finish(&d), -EPIPE); /* mid-frame */
    }
    assert_int_equal(fl_frame_decoder_push(&d, buf + n - 1, 1), 0);
    assert_int_equal(fl_frame_decoder_next(&d, &p, &len), 1);
    check_payload(p, len, 200, 3);
    assert_int_equal(fl_frame_decoder_finish(&d), 0);
    fl_frame_decoder_free(&d);
}

/* Two frames cut at every point: the pieces always reassemble. */
static void test_split_everywhere(void **state)
{
    (void)state;
    static const uint32_t lens[] = {17, 33};
    static const uint8_t seeds[] = {1, 100};
    uint8_t buf[128];
    size_t n = put_frame(buf, lens[0], seeds[0]);
    n += put_frame(buf + n, lens[1], seeds[1]);
    for (size_t cut = 0; cut <= n; cut++) {
        struct fl_frame_decoder d;
        fl_frame_decoder_init(&d);
        uint8_t *p;
        size_t len;
        int seen = 0;
        assert_int_equal(fl_frame_decoder_push(&d, buf, cut), 0);
        while (fl_frame_decoder_next(&d, &p, &len) == 1) {
            check_payload(p, len, lens[seen], seeds[seen]);
            seen++;
        }
        assert_int_equal(fl_frame_decoder_push(&d, buf + cut, n - cut), 0);
        while (fl_frame_decoder_next(&d, &p, &len) == 1) {
            check_payload(p, len, lens[seen], seeds[seen]);
            seen++;
        }
        assert_int_equal(seen, 2);
        assert_int_equal(fl_frame_decoder_finish(&d), 0);
        fl_frame_decoder_free(&d);
    }
}

static void test_many_in_one_buffer(void **state)
{
    (void)state;
    enum { N = 500 };
    uint8_t *buf = malloc(N * (FL_FRAME_HEADER + 40));
    size_t n = 0;
    for (int i = 0; i < N; i++)
        n += put_frame(buf + n, (uint32_t)(i % 40), (uint8_t)i);
    struct fl_frame_decoder d;
    fl_frame_decoder_init(&d);
    assert_int_equal(fl_frame_decoder_push(&d, buf, n), 0);
    uint8_t *p;
    size_t len;
    for (int i = 0; i < N; i++) {
        assert_int_equal(fl_frame_decoder_next(&d, &p, &len), 1);
        check_payload(p, len, (size_t)(i % 40), (uint8_t)i);
    }
    assert_int_equal(fl_frame_decoder_next(&d, &p, &len), 0);
    assert_int_equal(fl_frame_decoder_finish(&d), 0);
    fl_frame_decoder_free(&d);
    free(buf);
}

static void test_zero_length(void **state)
{
    (void)state;
    uint8_t buf[16];
    size_t n = put_frame(buf, 0, 0);
    n += put_frame(buf + n, 3, 9);
    struct fl_frame_decoder d;
    fl_frame_decoder_init(&d);
    assert_int_equal(fl_frame_decoder_push(&d, buf, n), 0);
    uint8_t *p;
    size_t len = 99;
    assert_int_equal(fl_frame_decoder_next(&d, &p, &len), 1);
    assert_int_equal(len, 0);
    assert_int_equal(fl_frame_decoder_next(&d, &p, &len), 1);
    check_payload(p, len, 3, 9);
    fl_frame_decoder_free(&d);
}

/* Exactly the limit passes; one byte more fails as soon as the header is in. */
static void test_oversize(void **state)
{
    (void)state;
    struct fl_frame_decoder d;
    uint8_t *p;
    size_t len;

    uint8_t *big = malloc(FL_FRAME_HEADER + FL_FRAME_MAX);
    size_t n = put_frame(big, FL_FRAME_MAX, 5);
    fl_frame_decoder_init(&d);
    /* in read-sized pieces, as a socket delivers it */
    for (size_t off = 0; off < n; off += 65536) {
        size_t chunk = n - off < 65536 ? n - off : 65536;
        assert_int_equal(fl_frame_decoder_push(&d, big + off, chunk), 0);
    }
    assert_int_equal(fl_frame_decoder_next(&d, &p, &len), 1);
    check_payload(p, len, FL_FRAME_MAX, 5);
    fl_frame_decoder_free(&d);
    free(big);

    uint8_t h[FL_FRAME_HEADER];
    fl_frame_put_header(h, FL_FRAME_MAX + 1);
    fl_frame_decoder_init(&d);
    assert_int_equal(fl_frame_decoder_push(&d, h, 3), 0);
    assert_int_equal(fl_frame_decoder_next(&d, &p, &len), 0);
    assert_int_equal(fl_frame_decoder_push(&d, h + 3, 1), 0);
    assert_int_equal(fl_frame_decoder_next(&d, &p, &len), -EMSGSIZE);
    fl_frame_decoder_free(&d);

    static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff};
    fl_frame_decoder_init(&d);
    assert_int_equal(fl_frame_decoder_push(&d, huge, 4), 0);
    assert_int_equal(fl_frame_decoder_next(&d, &p, &len), -EMSGSIZE);
    fl_frame_decoder_free(&d);
}

static void test_truncated(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = put_frame(buf, 20, 0);
    struct fl_frame_decoder d;
    uint8_t *p;
    size_t len;

    /* stream ends inside the payload */
    fl_frame_decoder_init(&d);
    assert_int_equal(fl_frame_decoder_push(&d, buf, n - 1), 0);
    assert_int_equal(fl_frame_decoder_next(&d, &p, &len), 0);
    assert_int_equal(fl_frame_decoder_finish(&d), -EPIPE);
    fl_frame_decoder_free(&d);

    /* stream ends inside the header */
    fl_frame_decoder_init(&d);
    assert_int_equal(fl_frame_decoder_push(&d, buf, 2), 0);
    assert_int_equal(fl_frame_decoder_next(&d, &p, &len), 0);
    assert_int_equal(fl_frame_decoder_finish(&d), -EPIPE);
    fl_frame_decoder_free(&d);

    /* an empty stream is not truncated */
    fl_frame_decoder_init(&d);
    assert_int_equal(fl_frame_decoder_finish(&d), 0);
    fl_frame_decoder_free(&d);
}

/* A peer that never lets a frame complete cannot make the decoder grow past
 * one maximal frame plus one read. */
static void test_bounded_buffer(void **state)
{
    (void)state;
    struct fl_frame_decoder d;
    fl_frame_decoder_init(&d);
    static uint8_t chunk[65536];
    fl_frame_put_header(chunk, FL_FRAME_MAX);
    int rc = fl_frame_decoder_push(&d, chunk, sizeof(chunk));
    memset(chunk, 0, FL_FRAME_HEADER);
    size_t pushed = sizeof(chunk);
    while (rc == 0 && pushed < 4 * FL_FRAME_MAX) {
        rc = fl_frame_decoder_push(&d, chunk, sizeof(chunk));
        pushed += sizeof(chunk);
    }
    assert_int_equal(rc, -ENOBUFS);
    assert_true(d.cap <= FL_FRAME_HEADER + FL_FRAME_MAX + 65536);
    fl_frame_decoder_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_frame),        cmocka_unit_test(test_split_byte_by_byte),
        cmocka_unit_test(test_split_everywhere), cmocka_unit_test(test_many_in_one_buffer),
        cmocka_unit_test(test_zero_length),      cmocka_unit_test(test_oversize),
        cmocka_unit_test(test_truncated),        cmocka_unit_test(test_bounded_buffer),
    };
    return cmocka_run_group_tests_name("frame", tests, NULL, NULL);
}
