/* Framing: a 4-byte big-endian length, then that many bytes of payload.
 *
 * The decoder takes a byte stream in any pieces (a frame split over many
 * reads, or many frames in one read) and hands back whole payloads. A length
 * over FL_FRAME_MAX is an error as soon as the header arrives: the decoder
 * never buffers more than one maximal frame plus one read. It does no I/O, so
 * the same code serves the libuv connection, the tests and the fuzzer. */
#ifndef FL_COMMON_FRAME_H
#define FL_COMMON_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FL_FRAME_HEADER 4u
#define FL_FRAME_MAX (1u << 20) /* 1 MiB of payload */

struct fl_frame_decoder {
    uint8_t *buf;
    size_t start; /* first byte not yet consumed */
    size_t end;   /* one past the last byte received */
    size_t cap;
};

void fl_frame_decoder_init(struct fl_frame_decoder *dec);
void fl_frame_decoder_free(struct fl_frame_decoder *dec);

/* Room for at least `want` more bytes: *space and *len describe where the next
 * read may write. Returns 0 or -ENOMEM. Invalidates earlier payload pointers. */
int fl_frame_decoder_reserve(struct fl_frame_decoder *dec, size_t want, uint8_t **space,
                             size_t *len);
/* Marks n bytes written into the reserved space as received. */
void fl_frame_decoder_commit(struct fl_frame_decoder *dec, size_t n);
/* Copies bytes in: reserve + memcpy + commit. -ENOBUFS when they do not fit
 * behind what is pending (drain frames with next() first). */
int fl_frame_decoder_push(struct fl_frame_decoder *dec, const uint8_t *data, size_t len);

/* The next whole frame. Returns 1 with *payload and *len set (valid until the
 * next reserve or push; the caller may rewrite those bytes in place, as
 * opening a sealed frame does), 0 when more bytes are needed, -EMSGSIZE when
 * the header announces more than FL_FRAME_MAX. After an error the decoder is
 * useless: close the connection. */
int fl_frame_decoder_next(struct fl_frame_decoder *dec, uint8_t **payload, size_t *len);

/* At end of stream: 0 when no partial frame is pending, -EPIPE when the
 * stream ended inside a frame (truncated). */
int fl_frame_decoder_finish(const struct fl_frame_decoder *dec);

/* Writes the header for a payload of len bytes (len <= FL_FRAME_MAX). */
void fl_frame_put_header(uint8_t header[FL_FRAME_HEADER], uint32_t len);

#endif
