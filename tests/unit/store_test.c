/* The history store, SQLite back end: real files, real processes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "controller/serve/store.h"

static char dir[64];
static char url[160];
static char path[96];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/fl-store-test-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/history.db", dir);
    snprintf(url, sizeof url, "sqlite:%s", path);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static fl_store *open_ok(void)
{
    char *err = NULL;
    fl_store *s = fl_store_open(url, &err);
    if (s == NULL)
        fail_msg("%s", err);
    return s;
}

static void migrate_and_reopen(void **state)
{
    (void)state;
    fl_store *s = open_ok();
    int64_t id;
    assert_int_equal(fl_store_claim(s, "web", "abc", 1000, 1001, &id), FL_STORE_OK);
    fl_store_close(s);
    s = open_ok();
    fl_store_row *rows;
    size_t n;
    assert_int_equal(fl_store_query(s, NULL, 0, 0, 0, &rows, &n), FL_STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].state, "running");
    fl_store_rows_free(rows, n);
    fl_store_close(s);
}

static void claim_twice(void **state)
{
    (void)state;
    fl_store *s = open_ok();
    int64_t id;
    assert_int_equal(fl_store_claim(s, "web", "abc", 1000, 1001, &id), FL_STORE_OK);
    assert_int_equal(fl_store_claim(s, "web", "abc", 1000, 1002, &id), FL_STORE_ALREADY);
    assert_non_null(strstr(fl_store_error(s), "already claimed"));
    assert_int_equal(fl_store_skip(s, "web", "abc", 1000, 1002, "missed"), FL_STORE_ALREADY);
    fl_store_close(s);
}

/* Two processes claim the same 100 due times at once: exactly one wins each. */
static void claim_race_two_processes(void **state)
{
    (void)state;
    fl_store_close(open_ok());
    int fds[2][2];
    pid_t pids[2];
    for (int c = 0; c < 2; c++) {
        assert_int_equal(pipe(fds[c]), 0);
        pids[c] = fork();
        assert_true(pids[c] >= 0);
        if (pids[c] == 0) {
            char *err = NULL;
            fl_store *s = fl_store_open(url, &err);
            if (s == NULL)
                _exit(2);
            unsigned char won[100];
            for (int i = 0; i < 100; i++) {
                int64_t id;
                fl_store_rc rc = fl_store_claim(s, "race", "h", i, 1, &id);
                if (rc == FL_STORE_ERR)
                    _exit(3);
                won[i] = rc == FL_STORE_OK;
            }
            fl_store_close(s);
            if (write(fds[c][1], won, sizeof won) != (ssize_t)sizeof won)
                _exit(4);
            _exit(0);
        }
        close(fds[c][1]);
    }
    unsigned char won[2][100];
    for (int c = 0; c < 2; c++) {
        assert_int_equal(read(fds[c][0], won[c], 100), 100);
        close(fds[c][0]);
        int st;
        assert_int_equal(waitpid(pids[c], &st, 0), pids[c]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    for (int i = 0; i < 100; i++)
        assert_int_equal(won[0][i] + won[1][i], 1);
}

/* A server killed with -9 during a run: its row is found at the next start. */
static void interrupted_after_kill(void **state)
{
    (void)state;
    fl_store_close(open_ok());
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *err = NULL;
        fl_store *s = fl_store_open(url, &err);
        int64_t id;
        if (s == NULL || fl_store_claim(s, "web", "h", 5000, 5001, &id) != FL_STORE_OK)
            _exit(2);
        if (write(p[1], "x", 1) != 1)
            _exit(3);
        /* mid-transaction when the kill comes: a prune holds the write lock */
        char **f;
        size_t n;
        fl_store_prune_begin(s, 0, 0, 0, &f, &n);
        pause();
        _exit(0);
    }
    close(p[1]);
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    close(p[0]);
    usleep(100 * 1000);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fl_store *s = open_ok();
    fl_store_row *rows;
    size_t n;
    assert_int_equal(fl_store_interrupted(s, &rows, &n), FL_STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].due_ms, 5000);
    fl_store_row r = {.ended_ms = 6000,
                      .verdict = "ABORTED",
                      .reason = "server died during the run",
                      .recovery_ms = -1,
                      .resolution_ms = -1,
                      .rpo_ms = -1};
    assert_int_equal(fl_store_finish(s, rows[0].id, &r), FL_STORE_OK);
    fl_store_rows_free(rows, n);
    assert_int_equal(fl_store_interrupted(s, &rows, &n), FL_STORE_OK);
    assert_int_equal(n, 0);
    free(rows);
    fl_store_close(s);
}

static void finish_one(fl_store *s, const char *exp, int64_t due, const char *verdict, int64_t rec,
                       const char *folder)
{
    int64_t id;
    assert_int_equal(fl_store_claim(s, exp, "h", due, due, &id), FL_STORE_OK);
    fl_store_row r = {.ended_ms = due + 1,
                      .verdict = (char *)verdict,
                      .recovery_ms = rec,
                      .resolution_ms = 10,
                      .rpo_ms = -1,
                      .report_folder = (char *)folder,
                      .run_json = "{}"};
    assert_int_equal(fl_store_finish(s, id, &r), FL_STORE_OK);
}

static void query_order_and_filters(void **state)
{
    (void)state;
    fl_store *s = open_ok();
    finish_one(s, "a", 100, "PASS", 500, "/r/a100");
    finish_one(s, "b", 200, "FAIL", -1, "/r/b200");
    finish_one(s, "a", 300, "PASS", 700, "/r/a300");
    assert_int_equal(fl_store_skip(s, "a", "h", 400, 401, "skipped (still running)"), FL_STORE_OK);
    finish_one(s, "a", 500, "FAIL", 900, "/r/a500");
    fl_store_row *rows;
    size_t n;
    assert_int_equal(fl_store_query(s, NULL, 0, 0, 0, &rows, &n), FL_STORE_OK);
    assert_int_equal(n, 5);
    for (size_t i = 1; i < n; i++)
        assert_true(rows[i - 1].due_ms > rows[i].due_ms);
    fl_store_rows_free(rows, n);
    assert_int_equal(fl_store_query(s, "a", 200, 2, 1, &rows, &n), FL_STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].due_ms, 400);
    assert_string_equal(rows[0].reason, "skipped (still running)");
    assert_int_equal(rows[1].due_ms, 300);
    fl_store_rows_free(rows, n);
    int64_t rec[10];
    assert_int_equal(fl_store_recent_recoveries(s, "a", 10, rec, &n), FL_STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(rec[0], 700);
    assert_int_equal(rec[1], 500);
    fl_store_close(s);
}

static void prune_by_count_and_age(void **state)
{
    (void)state;
    fl_store *s = open_ok();
    char f[32];
    for (int i = 1; i <= 6; i++) {
        snprintf(f, sizeof f, "/r/a%d", i);
        finish_one(s, "a", i * 1000, "PASS", 10, f);
    }
    finish_one(s, "b", 1000, "PASS", 10, "/r/b1");
    finish_one(s, "b", 9000, "PASS", 10, "/r/b9");
    char **folders;
    size_t n;
    /* keep 3 per experiment: a1..a3 go; age cutoff 9500-8800=700: nothing older */
    assert_int_equal(fl_store_prune_begin(s, 9500, 3, 8800, &folders, &n), FL_STORE_OK);
    assert_int_equal(n, 3);
    int seen = 0;
    for (size_t i = 0; i < n; i++)
        seen |= (strcmp(folders[i], "/r/a1") == 0) | (strcmp(folders[i], "/r/a2") == 0) << 1 |
                (strcmp(folders[i], "/r/a3") == 0) << 2;
    assert_int_equal(seen, 7);
    fl_store_folders_free(folders, n);
    /* the caller failed to remove the folders: roll back, rows stay */
    assert_int_equal(fl_store_prune_end(s, false), FL_STORE_OK);
    assert_int_equal(fl_store_prune_begin(s, 9500, 3, 8800, &folders, &n), FL_STORE_OK);
    assert_int_equal(n, 3);
    fl_store_folders_free(folders, n);
    assert_int_equal(fl_store_prune_end(s, true), FL_STORE_OK);
    /* by age: everything due before 5000 goes (a4, b1) */
    assert_int_equal(fl_store_prune_begin(s, 10000, 1000, 5000, &folders, &n), FL_STORE_OK);
    assert_int_equal(n, 2);
    fl_store_folders_free(folders, n);
    assert_int_equal(fl_store_prune_end(s, true), FL_STORE_OK);
    fl_store_row *rows;
    assert_int_equal(fl_store_query(s, NULL, 0, 0, 0, &rows, &n), FL_STORE_OK);
    assert_int_equal(n, 3); /* a5 a6 b9 */
    fl_store_rows_free(rows, n);
    fl_store_close(s);
}

static void freeze_survives_reopen(void **state)
{
    (void)state;
    fl_store *s = open_ok();
    assert_int_equal(fl_store_set_frozen(s, true, "incident 42", "alice", 77), FL_STORE_OK);
    assert_int_equal(fl_store_set_paused(s, "web", true), FL_STORE_OK);
    fl_store_close(s);
    s = open_ok();
    bool frozen, paused;
    char *reason, *who;
    int64_t since;
    assert_int_equal(fl_store_get_frozen(s, &frozen, &reason, &who, &since), FL_STORE_OK);
    assert_true(frozen);
    assert_string_equal(reason, "incident 42");
    assert_string_equal(who, "alice");
    assert_int_equal(since, 77);
    free(reason);
    free(who);
    assert_int_equal(fl_store_is_paused(s, "web", &paused), FL_STORE_OK);
    assert_true(paused);
    assert_int_equal(fl_store_is_paused(s, "db", &paused), FL_STORE_OK);
    assert_false(paused);
    fl_store_close(s);
}

static void newer_schema_refused(void **state)
{
    (void)state;
    fl_store_close(open_ok());
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "INSERT INTO schema_version VALUES (99)", 0, 0, 0),
                     SQLITE_OK);
    sqlite3_close(db);
    char *err = NULL;
    assert_null(fl_store_open(url, &err));
    assert_non_null(strstr(err, "newer"));
    free(err);
    /* not altered: still 99 */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "SELECT max(version) FROM schema_version", -1, &st, NULL);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 99);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void garbage_and_scheme_refused(void **state)
{
    (void)state;
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 200; i++)
        fputs("this is not a database at all\n", f);
    fclose(f);
    char *err = NULL;
    assert_null(fl_store_open(url, &err));
    assert_non_null(strstr(err, "not a faultline history database"));
    free(err);
    assert_null(fl_store_open("postgres://x/y", &err));
    assert_non_null(strstr(err, "unknown scheme"));
    free(err);
}

/* The last scheduled row: run-now rows (flags with `manual`, alone or in a
 * list) are not scheduled slots; skips are. */
static void last_scheduled_due_skips_manual(void **state)
{
    (void)state;
    fl_store *s = open_ok();
    int64_t due = 0, id = 0;
    bool found = true;
    assert_int_equal(fl_store_last_scheduled_due(s, "e", &due, &found), FL_STORE_OK);
    assert_false(found);
    fl_store_row r = {
        .verdict = (char *)"PASS", .recovery_ms = -1, .resolution_ms = -1, .rpo_ms = -1};
    assert_int_equal(fl_store_claim(s, "e", "h", 1000, 1000, &id), FL_STORE_OK);
    assert_int_equal(fl_store_finish(s, id, &r), FL_STORE_OK);
    assert_int_equal(fl_store_skip(s, "e", "h", 2000, 2000, "hosts busy: web1"), FL_STORE_OK);
    r.flags = (char *)"manual";
    assert_int_equal(fl_store_claim(s, "e", "h", 3000, 3000, &id), FL_STORE_OK);
    assert_int_equal(fl_store_finish(s, id, &r), FL_STORE_OK);
    r.flags = (char *)"regressed,manual";
    assert_int_equal(fl_store_claim(s, "e", "h", 4000, 4000, &id), FL_STORE_OK);
    assert_int_equal(fl_store_finish(s, id, &r), FL_STORE_OK);
    assert_int_equal(fl_store_claim(s, "other", "h", 9000, 9000, &id), FL_STORE_OK);
    assert_int_equal(fl_store_last_scheduled_due(s, "e", &due, &found), FL_STORE_OK);
    assert_true(found);
    assert_int_equal(due, 2000);
    r.flags = (char *)"regressed";
    assert_int_equal(fl_store_claim(s, "e", "h", 5000, 5000, &id), FL_STORE_OK);
    assert_int_equal(fl_store_finish(s, id, &r), FL_STORE_OK);
    assert_int_equal(fl_store_last_scheduled_due(s, "e", &due, &found), FL_STORE_OK);
    assert_int_equal(due, 5000);
    /* a run-now the server died in: flagged from its claim, so that the row
     * the next start records ABORTED (with the flags it reads back, as the
     * scheduler does) is still not a scheduled slot */
    assert_int_equal(fl_store_claim_flags(s, "e", "h", 6000, 6000, "manual", &id), FL_STORE_OK);
    fl_store_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(fl_store_interrupted(s, &rows, &n), FL_STORE_OK);
    assert_int_equal(n, 2); /* and "other"'s, never finished above */
    size_t k = strcmp(rows[0].experiment, "e") == 0 ? 0 : 1;
    assert_string_equal(rows[k].flags, "manual");
    fl_store_row ab = {.verdict = (char *)"ABORTED",
                       .reason = (char *)"server died during the run",
                       .recovery_ms = -1,
                       .resolution_ms = -1,
                       .rpo_ms = -1,
                       .flags = rows[k].flags};
    assert_int_equal(fl_store_finish(s, rows[k].id, &ab), FL_STORE_OK);
    fl_store_rows_free(rows, n);
    assert_int_equal(fl_store_last_scheduled_due(s, "e", &due, &found), FL_STORE_OK);
    assert_int_equal(due, 5000);
    fl_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(migrate_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(claim_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(claim_race_two_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(interrupted_after_kill, setup, teardown),
        cmocka_unit_test_setup_teardown(query_order_and_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(prune_by_count_and_age, setup, teardown),
        cmocka_unit_test_setup_teardown(freeze_survives_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(garbage_and_scheme_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(last_scheduled_due_skips_manual, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
