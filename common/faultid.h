/* Fault ids: the registry makes them ("f-" and 16 hex digits, see
 * agent/registry.c), and they come back in revert requests, journals and undo
 * records, then go into nft comments and file names. One rule for all. */
#ifndef FL_COMMON_FAULTID_H
#define FL_COMMON_FAULTID_H

#include <stdbool.h>

/* The longest fault id, in bytes without the NUL: agent/fault.h's
 * FL_FAULT_ID_LEN is this plus its NUL. */
#define FL_FAULT_ID_MAX 23

/* A plain id: 1 to FL_FAULT_ID_MAX letters, digits, '-' and '_'. No '.',
 * '/', quotes or spaces, so an id is safe as part of a file name (no "..")
 * and inside a quoted nft comment. Generated ids always pass. */
bool fl_fault_id_ok(const char *id);

#endif
