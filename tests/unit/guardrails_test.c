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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pids),
        cmocka_unit_test(test_fill_paths),
    };
    return cmocka_run_group_tests_name("guardrails", tests, NULL, NULL);
}
