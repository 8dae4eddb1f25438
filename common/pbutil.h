/* Small helpers for filling and copying protobuf-c messages. */
#ifndef FL_COMMON_PBUTIL_H
#define FL_COMMON_PBUTIL_H

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>
#include <stdlib.h>

/* protobuf-c declares string fields `char *` even in messages that are only
 * packed, never modified: this lends a const string to such a field. */
static inline char *fl_pb_str(const char *s)
{
    return (char *)(uintptr_t)s;
}

/* A deep copy of msg (of any message type), by packing and unpacking it: the
 * copy owns everything it points to and is freed with the type's
 * __free_unpacked (or protobuf_c_message_free_unpacked). NULL when out of
 * memory. Use the typed wrapper: FL_PB_COPY(Faultline__Status, msg). */
static inline ProtobufCMessage *fl_pb_copy(const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return NULL;
    protobuf_c_message_pack(msg, buf);
    ProtobufCMessage *copy = protobuf_c_message_unpack(msg->descriptor, NULL, len, buf);
    free(buf);
    return copy;
}

#define FL_PB_COPY(type, msg) ((type *)fl_pb_copy(&(msg)->base))

#endif
