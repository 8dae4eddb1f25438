/* Fuzz target: the small parsers of user text -- durations and sizes
 * (common/units.h), CIDRs (common/cidr.h) and host[:port] specs
 * (common/addr.h) -- with what is done next to what they parse (formatting
 * it back, CIDR containment). The first byte of the input picks the parser,
 * the rest is the text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/cidr.h"
#include "common/units.h"
#include "tests/fuzz/fuzz_tmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    char *text = fuzz_cstr(data + 1, size - 1);
    char buf[512], err[512];
    switch (data[0] % 4) {
    case 0: {
        uint64_t ms;
        if (fl_parse_duration(text, &ms) == 0) {
            if (fl_format_duration(ms, buf, sizeof(buf)) < 0)
                abort(); /* 512 bytes hold any duration */
            uint64_t again;
            /* what we print, we read back */
            if (fl_parse_duration(buf, &again) != 0)
                abort();
        }
        break;
    }
    case 1: {
        struct fl_size sz;
        if (fl_parse_size(text, &sz) == 0 && !sz.is_percent) {
            char b[FL_BYTES_TEXT_LEN];
            if (fl_format_bytes(sz.bytes, b, sizeof(b)) < 0)
                abort(); /* units.h: never -ENOSPC with FL_BYTES_TEXT_LEN */
            (void)fl_bytes_text(sz.bytes, b, 4);
        }
        break;
    }
    case 2: {
        struct fl_cidr c;
        if (fl_cidr_parse_err(text, &c, err, sizeof(err)) == 0) {
            char t[FL_CIDR_TEXT_LEN];
            if (fl_cidr_format(&c, t, sizeof(t)) < 0)
                abort();
            struct fl_cidr back;
            if (fl_cidr_parse(t, &back) != 0 || !fl_cidr_contains(&c, &back) ||
                !fl_cidr_contains(&back, &c))
                abort(); /* what we print, we read back as the same network */
        }
        break;
    }
    default: {
        char host[256];
        uint16_t port;
        if (fl_addr_split(text, FL_DEFAULT_PORT, host, sizeof(host), &port) == 0)
            (void)fl_addr_join(host, port, buf, sizeof(buf));
        break;
    }
    }
    free(text);
    return 0;
}
