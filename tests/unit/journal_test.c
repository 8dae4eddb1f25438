/* The journal on disk (agent/journal.h, agent/journalrec.h): appends are all
 * or nothing, the reader takes only whole records, finds a whole record
 * glued after a torn one, reports damage, and refuses what is not a regular
 * file of ours without reading it.
 *
 * A write that stops at a chosen byte is made with RLIMIT_FSIZE: past the
 * limit write(2) is short, then fails with EFBIG (SIGXFSZ ignored), just as
 * a full file system makes it short, then fail with ENOSPC. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/journal.h"
#include "agent/journalrec.h"

static char dir[] = "/tmp/fl-journal-test.XXXXXX";
static char path[300];

static int setup(void **state)
{
    (void)state;
    signal(SIGXFSZ, SIG_IGN);
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int fresh(void **state)
{
    (void)state;
    snprintf(path, sizeof(path), "%s/journal", dir);
    unlink(path);
    return 0;
}

static json_t *undo(const char *id, int pid)
{
    return json_pack("{s:s,s:s,s:i}", "id", id, "kind", "pause_process", "pid", pid);
}

static void append_apply(struct fl_journal *j, const char *id, int pid)
{
    json_t *u = undo(id, pid);
    json_t *rec = fl_journal_apply_record(id, u);
    assert_int_equal(fl_journal_append(j, rec), 0);
    json_decref(rec);
    json_decref(u);
}

static char *line_for(const char *id, int pid, size_t *len)
{
    json_t *u = undo(id, pid);
    json_t *rec = fl_journal_apply_record(id, u);
    int rc = 0;
    char *line = fl_journalrec_encode(rec, len, &rc);
    assert_non_null(line);
    json_decref(rec);
    json_decref(u);
    return line;
}

static json_t *read_active(void)
{
    json_t *active = NULL;
    char err[512] = "";
    assert_int_equal(fl_journal_read_active(path, &active, err, sizeof(err)), 0);
    return active;
}

static const char *active_id(json_t *active, size_t i)
{
    return json_string_value(json_object_get(json_array_get(active, i), "id"));
}

static void write_file(const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static off_t file_size(void)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static void test_round_trip(void **state)
{
    (void)state;
    struct fl_journal *j = NULL;
    char err[256];
    assert_int_equal(fl_journal_open(path, &j, err, sizeof(err)), 0);
    append_apply(j, "f-1", 11);
    append_apply(j, "f-2", 12);
    json_t *rev = fl_journal_revert_record("f-1", 1, NULL);
    assert_int_equal(fl_journal_append(j, rev), 0);
    json_decref(rev);
    fl_journal_close(&j);
    json_t *active = read_active();
    assert_int_equal(json_array_size(active), 1);
    assert_string_equal(active_id(active, 0), "f-2");
    json_decref(active);
}

/* The attack, at every byte: the write of an apply record stops
 * after k bytes. The append fails, the file is cut back, and the next
 * record (after space came back) is read whole: nothing hidden, nothing
 * half-written left for it to be glued to. */
static void test_append_stopped_at_every_byte(void **state)
{
    (void)state;
    size_t len = 0;
    char *line = line_for("f-00000003", 13, &len);
    free(line);
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    for (size_t k = 0; k < len; k++) {
        unlink(path);
        struct fl_journal *j = NULL;
        char err[256];
        assert_int_equal(fl_journal_open(path, &j, err, sizeof(err)), 0);
        append_apply(j, "f-00000001", 11);
        off_t before = file_size();
        struct rlimit lim = {(rlim_t)before + k, old.rlim_max};
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
        json_t *u = undo("f-00000003", 13);
        json_t *rec = fl_journal_apply_record("f-00000003", u);
        int rc = fl_journal_append(j, rec);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
        json_decref(rec);
        json_decref(u);
        assert_true(rc == -EFBIG || rc == -ENOSPC);
        assert_int_equal(file_size(), before); /* taken back whole */
        append_apply(j, "f-00000002", 12);     /* space is back */
        fl_journal_close(&j);
        json_t *active = read_active();
        assert_int_equal(json_array_size(active), 2);
        assert_string_equal(active_id(active, 0), "f-00000001");
        assert_string_equal(active_id(active, 1), "f-00000002");
        json_decref(active);
    }
}

/* A journal torn by a crash (no append after it): the whole records before
 * the tear are read, the torn one is not, at every offset. */
static void test_torn_tail_at_every_offset(void **state)
{
    (void)state;
    size_t la, lb;
    char *a = line_for("f-a", 1, &la), *b = line_for("f-b", 2, &lb);
    char *buf = malloc(la + lb);
    memcpy(buf, a, la);
    memcpy(buf + la, b, lb);
    for (size_t k = 0; k < lb; k++) {
        write_file(buf, la + k);
        json_t *active = read_active();
        assert_int_equal(json_array_size(active), 1);
        assert_string_equal(active_id(active, 0), "f-a");
        json_decref(active);
    }
    free(buf);
    free(a);
    free(b);
}

/* The red team's torn journal: half of B, then C glued onto it. C is found;
 * the damage is counted, not hidden. */
static void test_glued_record_is_found(void **state)
{
    (void)state;
    size_t la, lb, lc;
    char *a = line_for("f-a", 1, &la), *b = line_for("f-b", 2, &lb), *c = line_for("f-c", 3, &lc);
    char *buf = malloc(la + lb + lc);
    for (size_t k = 1; k < lb - 1; k++) {
        memcpy(buf, a, la);
        memcpy(buf + la, b, k);
        memcpy(buf + la + k, c, lc);
        write_file(buf, la + k + lc);
        json_t *active = read_active();
        assert_int_equal(json_array_size(active), 2);
        assert_string_equal(active_id(active, 0), "f-a");
        assert_string_equal(active_id(active, 1), "f-c");
        json_decref(active);
        /* and the scanner says how much it skipped */
        assert_int_equal(fl_journalrec_scan(buf + la, k + lc - 1, NULL, NULL), k);
    }
    free(buf);
    free(a);
    free(b);
    free(c);
}

/* One flipped byte in a record's JSON: its sum no longer matches, so it is
 * not read (never taken for a bare version 1 record either); the records
 * around it are. */
static void test_damaged_record_skipped(void **state)
{
    (void)state;
    size_t la, lb, lc;
    char *a = line_for("f-a", 1, &la), *b = line_for("f-b", 2, &lb), *c = line_for("f-c", 3, &lc);
    char *pid = strstr(b, "\"pid\":2");
    assert_non_null(pid);
    pid[6] = '7';
    char *buf = malloc(la + lb + lc);
    memcpy(buf, a, la);
    memcpy(buf + la, b, lb);
    memcpy(buf + la + lb, c, lc);
    write_file(buf, la + lb + lc);
    json_t *active = read_active();
    assert_int_equal(json_array_size(active), 2);
    assert_string_equal(active_id(active, 0), "f-a");
    assert_string_equal(active_id(active, 1), "f-c");
    json_decref(active);
    free(buf);
    free(a);
    free(b);
    free(c);
}

static void test_garbage_lines(void **state)
{
    (void)state;
    size_t la;
    char *a = line_for("f-a", 1, &la);
    char buf[4096];
    int n = snprintf(buf, sizeof(buf),
                     "\n\nJ2 \nJ2 99999999 x\nJ2 5 0000000000000000 {}\n%s"
                     "garbage\xff\x01\n{\"op\":\n",
                     a);
    write_file(buf, (size_t)n);
    json_t *active = read_active();
    assert_int_equal(json_array_size(active), 1);
    assert_string_equal(active_id(active, 0), "f-a");
    json_decref(active);
    free(a);
}

static void test_record_too_long_refused(void **state)
{
    (void)state;
    char *big = malloc(FL_JOURNAL_RECORD_MAX + 1);
    memset(big, 'x', FL_JOURNAL_RECORD_MAX);
    big[FL_JOURNAL_RECORD_MAX] = '\0';
    json_t *rec = json_pack("{s:s,s:s,s:s}", "op", "apply", "id", "f-big", "pad", big);
    size_t len;
    int rc = 0;
    assert_null(fl_journalrec_encode(rec, &len, &rc));
    assert_int_equal(rc, -E2BIG);
    struct fl_journal *j = NULL;
    char err[256];
    assert_int_equal(fl_journal_open(path, &j, err, sizeof(err)), 0);
    assert_int_equal(fl_journal_append(j, rec), -E2BIG);
    fl_journal_close(&j);
    assert_int_equal(file_size(), 0);
    json_decref(rec);
    free(big);
}

static void test_version_1_journal_read(void **state)
{
    (void)state;
    const char *v1 =
        "{\"at\":1,\"id\":\"f-1\",\"op\":\"apply\",\"undo\":{\"id\":\"f-1\",\"kind\":\"k\"}}\n"
        "{\"at\":2,\"id\":\"f-2\",\"op\":\"apply\",\"undo\":{\"id\":\"f-2\",\"kind\":\"k\"}}\n"
        "{\"at\":3,\"id\":\"f-1\",\"ok\":true,\"op\":\"revert\"}\n"
        /* version 1's torn record with a whole one glued on */
        "{\"at\":4,\"id\":\"f-"
        "{\"at\":5,\"id\":\"f-3\",\"op\":\"apply\",\"undo\":{\"id\":\"f-3\",\"kind\":\"k\"}}\n";
    write_file(v1, strlen(v1));
    json_t *active = read_active();
    assert_int_equal(json_array_size(active), 2);
    assert_string_equal(active_id(active, 0), "f-2");
    assert_string_equal(active_id(active, 1), "f-3");
    json_decref(active);
}

static void expect_refused(const char *why)
{
    json_t *active = NULL;
    char err[512] = "";
    int rc = fl_journal_read_active(path, &active, err, sizeof(err));
    assert_true(rc < 0);
    assert_null(active);
    assert_non_null(strstr(err, why));
}

static void test_not_a_regular_file_refused_unread(void **state)
{
    (void)state;
    char target[320];
    snprintf(target, sizeof(target), "%s/elsewhere", dir);
    size_t la;
    char *a = line_for("f-a", 1, &la);
    int fd = open(target, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_int_equal(write(fd, a, la), (ssize_t)la);
    close(fd);
    free(a);
    assert_int_equal(symlink(target, path), 0);
    expect_refused("symbolic link");
    unlink(path);
    unlink(target);

    assert_int_equal(mkfifo(path, 0600), 0);
    expect_refused("not a regular file"); /* and did not block on the FIFO */
    unlink(path);

    write_file("", 0);
    assert_int_equal(chmod(path, 0620), 0);
    expect_refused("writable by others");
    unlink(path);

    /* a missing journal is an empty one */
    json_t *active = read_active();
    assert_int_equal(json_array_size(active), 0);
    json_decref(active);
}

/* After the reverts could not be journaled (a full file system), clearing
 * needs no space and leaves nothing for a reader to revert twice. */
static void test_clear(void **state)
{
    (void)state;
    struct fl_journal *j = NULL;
    char err[256];
    assert_int_equal(fl_journal_open(path, &j, err, sizeof(err)), 0);
    append_apply(j, "f-1", 1);
    assert_int_equal(fl_journal_clear(j), 0);
    append_apply(j, "f-2", 2);
    fl_journal_close(&j);
    json_t *active = read_active();
    assert_int_equal(json_array_size(active), 1);
    assert_string_equal(active_id(active, 0), "f-2");
    json_decref(active);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_round_trip, fresh),
        cmocka_unit_test_setup(test_append_stopped_at_every_byte, fresh),
        cmocka_unit_test_setup(test_torn_tail_at_every_offset, fresh),
        cmocka_unit_test_setup(test_glued_record_is_found, fresh),
        cmocka_unit_test_setup(test_damaged_record_skipped, fresh),
        cmocka_unit_test_setup(test_garbage_lines, fresh),
        cmocka_unit_test_setup(test_record_too_long_refused, fresh),
        cmocka_unit_test_setup(test_version_1_journal_read, fresh),
        cmocka_unit_test_setup(test_not_a_regular_file_refused_unread, fresh),
        cmocka_unit_test_setup(test_clear, fresh),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
