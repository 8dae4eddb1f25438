#include "common/frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Never hold more than one maximal frame and one read's worth beyond it. */
#define DECODER_MAX_CAP (FL_FRAME_HEADER + FL_FRAME_MAX + 65536u)

void fl_frame_decoder_init(struct fl_frame_decoder *dec)
{
    memset(dec, 0, sizeof(*dec));
}

void fl_frame_decoder_free(struct fl_frame_decoder *dec)
{
    free(dec->buf);
    memset(dec, 0, sizeof(*dec));
}

int fl_frame_decoder_reserve(struct fl_frame_decoder *dec, size_t want, uint8_t **space,
                             size_t *len)
{
    /* Move what is pending to the front before growing. */
    if (dec->start > 0) {
        size_t pending = dec->end - dec->start;
        if (pending > 0)
            memmove(dec->buf, dec->buf + dec->start, pending);
        dec->start = 0;
        dec->end = pending;
    }
    if (want > DECODER_MAX_CAP - dec->end)
        want = DECODER_MAX_CAP - dec->end;
    if (want == 0)
        return -ENOBUFS; /* cannot happen: next() fails first on oversize */
    if (dec->cap - dec->end < want) {
        size_t cap = dec->cap ? dec->cap : 4096;
        while (cap - dec->end < want)
            cap *= 2;
        if (cap > DECODER_MAX_CAP)
            cap = DECODER_MAX_CAP;
        uint8_t *buf = realloc(dec->buf, cap);
        if (buf == NULL)
            return -ENOMEM;
        dec->buf = buf;
        dec->cap = cap;
    }
    *space = dec->buf + dec->end;
    *len = dec->cap - dec->end;
    return 0;
}

void fl_frame_decoder_commit(struct fl_frame_decoder *dec, size_t n)
{
    dec->end += n;
}

int fl_frame_decoder_push(struct fl_frame_decoder *dec, const uint8_t *data, size_t len)
{
    if (len == 0)
        return 0;
    uint8_t *space;
    size_t room;
    int rc = fl_frame_decoder_reserve(dec, len, &space, &room);
    if (rc < 0)
        return rc;
    if (room < len)
        return -ENOBUFS; /* more than one maximal frame pending: drain with next() */
    memcpy(space, data, len);
    fl_frame_decoder_commit(dec, len);
    return 0;
}

int fl_frame_decoder_next(struct fl_frame_decoder *dec, uint8_t **payload, size_t *len)
{
    size_t avail = dec->end - dec->start;
    if (avail < FL_FRAME_HEADER)
        return 0;
    uint8_t *h = dec->buf + dec->start;
    uint32_t n = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    if (n > FL_FRAME_MAX)
        return -EMSGSIZE;
    if (avail - FL_FRAME_HEADER < n)
        return 0;
    *payload = h + FL_FRAME_HEADER;
    *len = n;
    dec->start += FL_FRAME_HEADER + n;
    if (dec->start == dec->end)
        dec->start = dec->end = 0; /* cheap reset; the payload bytes stay put */
    return 1;
}

int fl_frame_decoder_finish(const struct fl_frame_decoder *dec)
{
    return dec->end == dec->start ? 0 : -EPIPE;
}

void fl_frame_put_header(uint8_t header[FL_FRAME_HEADER], uint32_t len)
{
    header[0] = (uint8_t)(len >> 24);
    header[1] = (uint8_t)(len >> 16);
    header[2] = (uint8_t)(len >> 8);
    header[3] = (uint8_t)len;
}
