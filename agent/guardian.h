/* The guardian: a small process forked by the agent at start and tied to it
 * by a pipe. The agent holds the write end and never writes; when the agent
 * dies, however it dies (even kill -9), the kernel closes that end, the
 * guardian's read returns, and the guardian reverts every fault the journal
 * still marks active, then exits. After a clean stop the journal holds only
 * faults whose revert failed (usually none): the guardian tries those once
 * more and leaves any that still fail for the next start.
 *
 * The guardian runs in its own session and ignores SIGINT, SIGTERM and
 * SIGHUP, so that a Ctrl-C or a stop signal to the agent's process group
 * leaves it standing to clean up. It keeps the state directory's lock, so a
 * new agent waits until it is done. */
#ifndef FL_AGENT_GUARDIAN_H
#define FL_AGENT_GUARDIAN_H

#include <stddef.h>
#include <jansson.h>
#include <sys/types.h>

/* Forks the guardian. keep_fd (the state lock, or -1) stays open in it.
 * nft_table is the agent's own nftables table (agent/faults/network.h): the
 * only one the guardian ever deletes whole. Returns 0 with *pid set, or a
 * negative errno. Call before any thread exists (before the first libuv
 * thread-pool work). */
int fl_guardian_start(const char *journal_path, const char *nft_table, int keep_fd, pid_t *pid,
                      char *err, size_t errlen);

/* Reverts every fault the journal at path marks active and records each
 * revert in it; when it reverted network faults and none is left active, it
 * deletes the agent's own table nft_table (never another's). A journal with
 * no network fault never loads libnftables. Blocking. Returns how many could
 * not be reverted (0 when all were), or a negative errno when the journal
 * could not be read. Used by the guardian and by the agent at start. */
int fl_guardian_revert_journal(const char *journal_path, const char *who, const char *nft_table);

/* The same, and *left receives (a new reference) the undo objects of the
 * faults whose revert failed: what the journal must keep. Start-up compacts
 * to exactly that, never to a second read of the journal, which would still
 * name a fault that was reverted but whose revert record could not be
 * written (a full disk), and revert it again. */
int fl_guardian_revert_journal_still(const char *journal_path, const char *who,
                                     const char *nft_table, json_t **left);

#endif
