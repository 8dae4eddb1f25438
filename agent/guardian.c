#include "agent/guardian.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "agent/fault.h"
#include "agent/faults/network.h"
#include "agent/journal.h"
#include "common/log.h"

static size_t count_network(const json_t *undos)
{
    size_t i, n = 0;
    json_t *undo;
    json_array_foreach(undos, i, undo)
    {
        const char *kind = json_string_value(json_object_get(undo, "kind"));
        n += kind != NULL && strcmp(kind, "network_drop") == 0;
    }
    return n;
}

/* Nothing of this agent's stays in nftables unless a network fault that could
 * not be reverted still needs it. Only the agent's own table, and only after
 * network faults were reverted: another agent's table is never touched, and a
 * journal without network faults never loads libnftables (each revert
 * already deleted its table with its last rule; this is the belt to those
 * braces). Returns 1 when the table had to go but could not, else 0. */
static int remove_table_if_unused(const json_t *reverted, const json_t *still_active,
                                  const char *who, const char *nft_table)
{
    if (count_network(reverted) == 0 || count_network(still_active) > 0)
        return 0; /* nothing was there, or its rules must stay for the next attempt */
    char err[512];
    if (fl_network_remove_table(nft_table, err, sizeof(err)) < 0) {
        fl_error("%s: cannot remove nftables table inet %s: %s", who, nft_table, err);
        return 1;
    }
    return 0;
}

int fl_guardian_revert_journal(const char *journal_path, const char *who, const char *nft_table)
{
    return fl_guardian_revert_journal_still(journal_path, who, nft_table, NULL);
}

int fl_guardian_revert_journal_still(const char *journal_path, const char *who,
                                     const char *nft_table, json_t **left)
{
    char err[512];
    json_t *active = NULL;
    if (left != NULL)
        *left = NULL;
    int rc = fl_journal_read_active(journal_path, &active, err, sizeof(err));
    if (rc < 0) {
        fl_error("%s: %s", who, err);
        return rc;
    }
    if (json_array_size(active) == 0) {
        if (left != NULL)
            *left = active;
        else
            json_decref(active);
        return 0;
    }
    struct fl_journal *j = NULL;
    if (fl_journal_open(journal_path, &j, err, sizeof(err)) < 0)
        fl_error("%s: %s (reverting anyway)", who, err);

    int failed = 0, unjournaled = 0;
    json_t *still = json_array();
    size_t i;
    json_t *undo;
    json_array_foreach(active, i, undo)
    {
        const char *id = json_string_value(json_object_get(undo, "id"));
        const char *kind = json_string_value(json_object_get(undo, "kind"));
        err[0] = '\0';
        rc = fl_fault_revert_undo(undo, err, sizeof(err));
        if (rc < 0) {
            failed++;
            json_array_append(still, undo);
            fl_error("%s: fault %s (%s): REVERT FAILED: %s", who, id ? id : "?", kind ? kind : "?",
                     err[0] ? err : fl_strerror(rc));
        } else {
            fl_warn("%s: fault %s (%s) reverted", who, id ? id : "?", kind ? kind : "?");
        }
        if (j != NULL && id != NULL) {
            json_t *rec = fl_journal_revert_record(id, rc == 0, rc < 0 ? err : NULL);
            if (rec == NULL || fl_journal_append(j, rec) < 0) {
                fl_error("%s: cannot journal the revert of %s", who, id);
                unjournaled++;
            }
            json_decref(rec);
        }
    }
    /* A revert that happened but could not be journaled (a full file
     * system) must not be done again by the next reader: it could wake a
     * process someone else has stopped since. Rewrite the journal to what
     * is still active: cutting it to nothing needs no space. */
    if (j != NULL && unjournaled > 0) {
        int crc = json_array_size(still) == 0 ? fl_journal_clear(j)
                                              : fl_journal_compact(j, still, err, sizeof(err));
        if (crc < 0)
            fl_error("%s: cannot rewrite the journal after reverting: %s", who, fl_strerror(crc));
    }
    fl_journal_close(&j);
    failed += remove_table_if_unused(active, still, who, nft_table);
    if (left != NULL)
        *left = still;
    else
        json_decref(still);
    json_decref(active);
    return failed;
}

/* Everything but stdio, the pipe and the lock: the guardian must not keep
 * the agent's sockets open. A batch at a time: a batch that filled up is
 * followed by another scan, so no count of inherited descriptors is too
 * many. */
static void close_other_fds(int keep_a, int keep_b)
{
    enum { BATCH = 1024 };
    size_t n;
    do {
        DIR *d = opendir("/proc/self/fd");
        if (d == NULL)
            return;
        int dfd = dirfd(d);
        struct dirent *e;
        int fds[BATCH];
        n = 0;
        while (n < BATCH && (e = readdir(d)) != NULL) {
            char *end;
            long fd = strtol(e->d_name, &end, 10);
            if (*end != '\0' || fd <= STDERR_FILENO || fd == dfd || fd == keep_a || fd == keep_b)
                continue;
            fds[n++] = (int)fd;
        }
        closedir(d);
        for (size_t i = 0; i < n; i++)
            close(fds[i]);
    } while (n == BATCH);
}

static void guardian_main(const char *journal_path, const char *nft_table, int pipe_fd, int keep_fd)
{
    close_other_fds(pipe_fd, keep_fd);
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull >= 0) {
        dup2(devnull, STDIN_FILENO);
        dup2(devnull, STDOUT_FILENO);
        close(devnull);
    }
    setsid();
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_NAME, "fl-guardian", 0, 0, 0);
    fl_log_init("faultline-guardian", fl_log_get_level());

    char buf[16];
    for (;;) {
        ssize_t n = read(pipe_fd, buf, sizeof(buf));
        int read_errno = errno;
        if (n == 0)
            break; /* the agent is gone */
        if (n < 0 && read_errno != EINTR)
            break;
    }
    int failed = fl_guardian_revert_journal(journal_path, "guardian", nft_table);
    _exit(failed == 0 ? 0 : 1);
}

int fl_guardian_start(const char *journal_path, const char *nft_table, int keep_fd, pid_t *pid,
                      char *err, size_t errlen)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        int rc = -errno; /* snprintf may change errno */
        snprintf(err, errlen, "cannot create the guardian's pipe: %s", strerror(-rc));
        return rc;
    }
    pid_t child = fork();
    if (child < 0) {
        int rc = -errno;
        snprintf(err, errlen, "cannot fork the guardian: %s", strerror(-rc));
        close(fds[0]);
        close(fds[1]);
        return rc;
    }
    if (child == 0) {
        close(fds[1]);
        guardian_main(journal_path, nft_table, fds[0], keep_fd);
    }
    /* the agent keeps only the write end, open until it dies */
    close(fds[0]);
    *pid = child;
    return 0;
}
