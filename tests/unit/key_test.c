/* Key files: what is accepted, what is refused and why. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/key.h"

static char dir[] = "/tmp/fl-key-test.XXXXXX";

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_of(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    fchmod(fd, mode);
    close(fd);
}

static void test_roundtrip(void **state)
{
    (void)state;
    char path[256], err[256];
    path_of(path, sizeof(path), "k");
    struct fl_key k, l;
    assert_int_equal(fl_key_generate(&k), 0);
    assert_int_equal(fl_key_write(path, &k, false, err, sizeof(err)), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(fl_key_load(path, &l, err, sizeof(err)), 0);
    assert_memory_equal(k.bytes, l.bytes, FL_KEY_LEN);

    /* never overwritten by accident; --force replaces and tightens */
    assert_int_equal(fl_key_write(path, &k, false, err, sizeof(err)), -EEXIST);
    assert_non_null(strstr(err, "--force"));
    chmod(path, 0644);
    assert_int_equal(fl_key_generate(&l), 0);
    assert_int_equal(fl_key_write(path, &l, true, err, sizeof(err)), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(fl_key_load(path, &k, err, sizeof(err)), 0);
    assert_memory_equal(k.bytes, l.bytes, FL_KEY_LEN);
}

static void test_refuses_open_modes(void **state)
{
    (void)state;
    static const char hex[] = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF\n";
    static const mode_t modes[] = {0644, 0640, 0604, 0660, 0606, 0610};
    char path[256], err[256];
    path_of(path, sizeof(path), "open");
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        write_file(path, hex, modes[i]);
        struct fl_key k;
        memset(&k, 0xaa, sizeof(k));
        assert_int_equal(fl_key_load(path, &k, err, sizeof(err)), -EPERM);
        assert_non_null(strstr(err, "chmod 600"));
        assert_int_equal(k.bytes[0], 0xaa); /* untouched */
    }
    write_file(path, hex, 0400);
    struct fl_key k;
    assert_int_equal(fl_key_load(path, &k, err, sizeof(err)), 0);
    assert_int_equal(k.bytes[0], 0x00);
    assert_int_equal(k.bytes[31], 0xff);
}

static void test_refuses_bad_contents(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "00112233",
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeef",   /* 63 */
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff0", /* 65 */
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeefg",
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff x",
        "-----BEGIN PRIVATE KEY-----\n",
    };
    char path[256], err[256];
    path_of(path, sizeof(path), "bad");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_file(path, bad[i], 0600);
        struct fl_key k;
        assert_int_equal(fl_key_load(path, &k, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "64 hex digits"));
    }
    /* surrounding white space is fine */
    write_file(path, "  00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n\n",
               0600);
    struct fl_key k;
    assert_int_equal(fl_key_load(path, &k, err, sizeof(err)), 0);
}

static void test_missing_and_not_regular(void **state)
{
    (void)state;
    char path[256], err[256];
    struct fl_key k;
    path_of(path, sizeof(path), "nope");
    assert_int_equal(fl_key_load(path, &k, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, path));
    assert_int_equal(fl_key_load(dir, &k, err, sizeof(err)), -EISDIR); /* 0700 directory */
    char want[400];
    snprintf(want, sizeof(want), "key file %s is a directory, not a regular file", dir);
    assert_string_equal(err, want);

    /* a FIFO: refused by what it is, without waiting for a writer */
    path_of(path, sizeof(path), "fifo");
    assert_int_equal(mkfifo(path, 0600), 0);
    alarm(5); /* a hang fails the test instead of stalling it */
    int rc = fl_key_load(path, &k, err, sizeof(err));
    alarm(0);
    assert_int_equal(rc, -EINVAL);
    snprintf(want, sizeof(want), "key file %s is a FIFO, not a regular file", path);
    assert_string_equal(err, want);

    /* the same, by name alone, for a loader that only names the file */
    assert_int_equal(fl_key_check_path(path, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, want);
    assert_int_equal(fl_key_check_path(dir, err, sizeof(err)), -EISDIR);
    assert_non_null(strstr(err, "is a directory, not a regular file"));
    path_of(path, sizeof(path), "nope");
    assert_int_equal(fl_key_check_path(path, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, path));
    path_of(path, sizeof(path), "good");
    write_file(path, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0600);
    assert_int_equal(fl_key_check_path(path, err, sizeof(err)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_refuses_open_modes),
        cmocka_unit_test(test_refuses_bad_contents),
        cmocka_unit_test(test_missing_and_not_regular),
    };
    return cmocka_run_group_tests_name("key", tests, setup, teardown);
}
