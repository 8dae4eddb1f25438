/* Free text from a request or a file -- a process name, a path, a pattern, a
 * peer -- before anything uses it: one rule for the agent and the controller.
 * Such text ends up in nft comments, file names, logs and terminals, so it
 * must be plain. */
#ifndef FL_COMMON_TEXT_H
#define FL_COMMON_TEXT_H

#include <stddef.h>

/* The longest name, path or pattern accepted, in bytes without the NUL: as
 * long as a path may be (PATH_MAX), which nothing reasonable exceeds. */
#define FL_TEXT_MAX 4096

/* Refuses text that is NULL or empty, over FL_TEXT_MAX bytes, or holds a
 * control character (below 0x20, or 0x7f). Returns 0 or -EINVAL with err
 * naming the field (what: "name", "peers[2]") and never echoing the text,
 * which might hold terminal escapes:
 *   "name is empty"
 *   "name holds a control character (byte 3)"
 *   "pattern is over 4096 bytes" */
int fl_text_check(const char *text, const char *what, char *err, size_t errlen);

#endif
