/* Guardrails: who and what the agent refuses to touch, and the words it
 * uses to say so. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/guardrails.h"

static pid_t spawn_sleep(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sleep", "sleep", "60", (char *)NULL);
        _exit(127);
    }
    usleep(50 * 1000); /* exec'd: its name is "sleep" now */
    return pid;
}

static void reap(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void test_pids(void **state)
{
    (void)state;
    struct fl_guardrails g;
    fl_guardrails_defaults(&g);
    char err[512];

    assert_int_equal(fl_guard_check_pid(&g, 1, err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "guardrail: PID 1"));
    assert_int_equal(fl_guard_check_pid(&g, getpid(), err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "this agent"));
    assert_int_equal(fl_guard_check_pid(&g, getppid(), err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "parent of this agent"));
    assert_int_equal(fl_guard_check_pid(&g, 2, err, sizeof(err)), -EPERM); /* kthreadd */

    pid_t child = spawn_sleep();
    assert_int_equal(fl_guard_check_pid(&g, child, err, sizeof(err)), 0);
    g.guardian_pid = child;
    assert_int_equal(fl_guard_check_pid(&g, child, err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "guardian"));
    g.guardian_pid = 0;

    /* a protected name, named in the message with the setting to change */
    free(g.protected_names[0]);
    g.protected_names[0] = strdup("sleep");
    assert_int_equal(fl_guard_check_pid(&g, child, err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "sleep["));
    assert_non_null(strstr(err, "protected_processes"));
    assert_int_equal(kill(child, 0), 0); /* untouched */
    reap(child);

    assert_int_equal(fl_guard_check_pid(&g, child, err, sizeof(err)), -ESRCH);
    fl_guardrails_free(&g);
}

static void test_fill_paths(void **state)
{
    (void)state;
    struct fl_guardrails g;
    fl_guardrails_defaults(&g);
    char dir[] = "/tmp/fl-guard-test.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char canon[4096], err[512], link[4200], sub[4200];
    /* under /tmp: allowed by default */
    assert_int_equal(fl_guard_check_fill_path(&g, dir, canon, sizeof(canon), err, sizeof(err)), 0);
    /* outside: refused, naming the allowed paths and the setting */
    assert_int_equal(fl_guard_check_fill_path(&g, "/etc", canon, sizeof(canon), err, sizeof(err)),
                     -EPERM);
    assert_non_null(strstr(err, "fill_paths"));
    assert_non_null(strstr(err, "/var/tmp"));
    /* a link inside an allowed directory that leads out of it */
    snprintf(link, sizeof(link), "%s/out", dir);
    assert_int_equal(symlink("/etc", link), 0);
    assert_int_equal(fl_guard_check_fill_path(&g, link, canon, sizeof(canon), err, sizeof(err)),
                     -EPERM);
    /* relative, missing, not a directory */
    assert_int_equal(fl_guard_check_fill_path(&g, "tmp", canon, sizeof(canon), err, sizeof(err)),
                     -EINVAL);
    snprintf(sub, sizeof(sub), "%s/missing", dir);
    assert_true(fl_guard_check_fill_path(&g, sub, canon, sizeof(canon), err, sizeof(err)) < 0);
    /* the request-text rule (common/text.h) comes first, as a guardrail */
    snprintf(sub, sizeof(sub), "%s/a\x1b[2J", dir);
    assert_int_equal(fl_guard_check_fill_path(&g, sub, canon, sizeof(canon), err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(err, "guardrail: path holds a control character (byte 27)");
    assert_int_equal(fl_guard_check_fill_path(&g, "", canon, sizeof(canon), err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(err, "guardrail: path is empty");
    unlink(link);
    rmdir(dir);
    fl_guardrails_free(&g);
}

/* The reservation ledger: what it counts, when it stops counting, and that
 * a release is exactly once. */
static void test_ledger(void **state)
{
    (void)state;
    char dir[] = "/tmp/fl-guard-ledger.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char file[64];
    snprintf(file, sizeof(file), "%s/fill", dir);

    struct fl_ledger l;
    fl_ledger_init(&l);
    size_t n = 99;
    assert_int_equal(fl_ledger_disk_pending(&l, 7, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(fl_ledger_hold_disk(&l, "f-a", 7, 1 << 20, file), 0);
    assert_int_equal(fl_ledger_hold_disk(&l, "f-b", 7, 2 << 20, "/nonexistent/x"), 0);
    assert_int_equal(fl_ledger_hold_disk(&l, "f-c", 8, 4 << 20, "/nonexistent/y"), 0);
    assert_int_equal(fl_ledger_disk_pending(&l, 7, &n), 3 << 20);
    assert_int_equal(n, 2);
    assert_int_equal(fl_ledger_disk_pending(&l, 8, NULL), 4 << 20);

    /* what the fill file already holds shows as used: not counted twice */
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    static char block[256 << 10];
    memset(block, 1, sizeof(block));
    assert_int_equal(fwrite(block, 1, sizeof(block), f), sizeof(block));
    assert_int_equal(fclose(f), 0);
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    uint64_t taken = (uint64_t)st.st_blocks * 512;
    assert_true(taken >= sizeof(block));
    assert_int_equal(fl_ledger_disk_pending(&l, 7, NULL), (3 << 20) - taken);

    /* applied: the file system's own use shows it */
    fl_ledger_applied(&l, "f-a");
    assert_int_equal(fl_ledger_disk_pending(&l, 7, &n), 2 << 20);
    assert_int_equal(n, 1);

    /* memory counts until applied */
    assert_int_equal(fl_ledger_hold_memory(&l, "f-m", 256 << 20), 0);
    assert_int_equal(fl_ledger_hold_memory(&l, "f-n", 128 << 20), 0);
    assert_int_equal(fl_ledger_memory_pending(&l, &n), 384 << 20);
    assert_int_equal(n, 2);
    fl_ledger_applied(&l, "f-m");
    assert_int_equal(fl_ledger_memory_pending(&l, &n), 128 << 20);
    assert_int_equal(n, 1);

    /* a process hold counts until released, applied or not */
    assert_int_equal(fl_ledger_hold_process(&l, "f-p", 1234, 99), 0);
    assert_int_equal(fl_ledger_hold_process(&l, "f-p", 1235, 100), 0);
    fl_ledger_applied(&l, "f-p");
    assert_string_equal(fl_ledger_process_holder(&l, 1234, 99), "f-p");
    assert_null(fl_ledger_process_holder(&l, 1234, 98)); /* the pid, reused */
    assert_int_equal(fl_ledger_release(&l, "f-p"), 2);
    assert_int_equal(fl_ledger_release(&l, "f-p"), 0); /* exactly once */
    assert_null(fl_ledger_process_holder(&l, 1235, 100));

    assert_int_equal(fl_ledger_release(&l, "f-b"), 1);
    assert_int_equal(fl_ledger_disk_pending(&l, 7, NULL), 0);
    assert_int_equal(fl_ledger_release(&l, "f-n"), 1);
    assert_int_equal(fl_ledger_memory_pending(&l, NULL), 0);
    assert_int_equal(fl_ledger_release(&l, "f-unknown"), 0);
    fl_ledger_free(&l); /* frees what is left (f-a, f-c, f-m) */
    unlink(file);
    rmdir(dir);
}

static void test_max_faults_default(void **state)
{
    (void)state;
    struct fl_guardrails g;
    fl_guardrails_defaults(&g);
    assert_int_equal(g.max_faults, FL_GUARD_MAX_FAULTS);
    assert_int_equal(FL_GUARD_MAX_FAULTS, 256);
    fl_guardrails_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pids),
        cmocka_unit_test(test_fill_paths),
        cmocka_unit_test(test_ledger),
        cmocka_unit_test(test_max_faults_default),
    };
    return cmocka_run_group_tests_name("guardrails", tests, NULL, NULL);
}
