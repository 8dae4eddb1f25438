/* disk_fill against a real kernel: every test gets a fresh 64 MiB tmpfs,
 * mounted in a mkdtemp directory and allowed in the guardrails, and the
 * teardown always unmounts it (lazily if it must), whatever the test did.
 * Needs root (mount). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/fault.h"
#include "agent/faults/disk.h"
#include "agent/guardrails.h"

#define MiB (1024ull * 1024)
#define FS_SIZE (64 * MiB)

static char base[] = "/tmp/fl-disk-test.XXXXXX";
static char mnt[128];
static bool mounted;
static struct fl_guardrails guard;
static struct fl_agent_ctx ctx;

/* One fault at a time, so that teardown can free what a failed test left. */
static struct fl_fault fault;
static Faultline__FaultSpec spec;
static Faultline__DiskFill req;

static int group_setup(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        fprintf(stderr, "disk_test needs root: it mounts a tmpfs\n");
        return -1;
    }
    if (mkdtemp(base) == NULL)
        return -1;
    snprintf(mnt, sizeof(mnt), "%s/mnt", base);
    return mkdir(mnt, 0700);
}

static int group_teardown(void **state)
{
    (void)state;
    if (mounted && umount2(mnt, 0) != 0)
        umount2(mnt, MNT_DETACH);
    rmdir(mnt);
    return rmdir(base);
}

static int setup(void **state)
{
    (void)state;
    if (mount("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64m,mode=0700") != 0)
        return -1;
    mounted = true;
    fl_guardrails_defaults(&guard);
    for (size_t i = 0; i < guard.n_fill_paths; i++)
        free(guard.fill_paths[i]);
    guard.fill_paths[0] = strdup(mnt);
    guard.n_fill_paths = 1;
    guard.fill_reserve_bytes = 1 * MiB;
    guard.max_fill_percent = 95;
    ctx = (struct fl_agent_ctx){.guard = &guard, .state_dir = base, .control_port = 7411};
    memset(&fault, 0, sizeof(fault));
    faultline__fault_spec__init(&spec);
    faultline__disk_fill__init(&req);
    spec.kind_case = FAULTLINE__FAULT_SPEC__KIND_DISK_FILL;
    spec.disk_fill = &req;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(fault.undo);
    fault.undo = NULL;
    fl_guardrails_free(&guard);
    int rc = umount2(mnt, 0);
    if (rc != 0)
        rc = umount2(mnt, MNT_DETACH);
    mounted = rc != 0;
    return rc;
}

/* A fault asking for path and percent (bytes when percent is 0). */
static void ask(const char *id, const char *path, unsigned percent, uint64_t bytes)
{
    json_decref(fault.undo);
    memset(&fault, 0, sizeof(fault));
    snprintf(fault.id, sizeof(fault.id), "%s", id);
    fault.kind = &fl_kind_disk_fill;
    fault.spec = &spec;
    fault.duration_ms = 10000;
    req.path = (char *)path;
    if (percent) {
        req.amount_case = FAULTLINE__DISK_FILL__AMOUNT_PERCENT;
        req.percent = percent;
    } else {
        req.amount_case = FAULTLINE__DISK_FILL__AMOUNT_BYTES;
        req.bytes = bytes;
    }
}

static struct statvfs fs(void)
{
    struct statvfs v;
    assert_int_equal(statvfs(mnt, &v), 0);
    return v;
}

static double used_percent(void)
{
    struct statvfs v = fs();
    double used = (double)(v.f_blocks - v.f_bfree), avail = (double)v.f_bavail;
    return 100.0 * used / (used + avail);
}

static uint64_t used_bytes(void)
{
    struct statvfs v = fs();
    return (uint64_t)(v.f_blocks - v.f_bfree) * v.f_frsize;
}

static void path_in(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", mnt, name);
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void test_fill_percent_and_revert(void **state)
{
    (void)state;
    char err[512], file[PATH_MAX];
    uint64_t before = fs().f_bfree;
    ask("f-0000000000000001", mnt, 80, 0);
    assert_int_equal(fl_kind_disk_fill.prepare(&fault, &ctx, err, sizeof(err)), 0);
    assert_string_equal(json_string_value(json_object_get(fault.undo, "kind")), "disk_fill");
    assert_string_equal(json_string_value(json_object_get(fault.undo, "id")), fault.id);
    path_in(file, sizeof(file), ".faultline-f-0000000000000001.fill");
    assert_string_equal(json_string_value(json_object_get(fault.undo, "file")), file);
    assert_false(exists(file)); /* prepare never touches the host */

    int rc = fl_kind_disk_fill.apply(&fault, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_true(used_percent() >= 80.0);
    assert_true(used_percent() < 81.0);
    assert_non_null(strstr(fault.detail, "took"));
    struct stat st;
    assert_int_equal(lstat(file, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);

    assert_int_equal(fl_kind_disk_fill.revert(fault.undo, err, sizeof(err)), 0);
    assert_false(exists(file));
    assert_int_equal(fs().f_bfree, before);
    assert_int_equal(fl_kind_disk_fill.revert(fault.undo, err, sizeof(err)), 0);
}

static void test_fill_bytes(void **state)
{
    (void)state;
    char err[512];
    uint64_t before = used_bytes();
    ask("f-0000000000000002", mnt, 0, 16 * MiB + 1);
    assert_int_equal(fl_kind_disk_fill.prepare(&fault, &ctx, err, sizeof(err)), 0);
    assert_int_equal(fl_kind_disk_fill.apply(&fault, err, sizeof(err)), 0);
    assert_true(used_bytes() >= before + 16 * MiB + 1);
    assert_true(used_bytes() <= before + 16 * MiB + 4096 * 2);

    /* a second fault with another id is another file; reverting one leaves the other */
    json_t *first = json_incref(fault.undo);
    ask("f-0000000000000003", mnt, 0, 8 * MiB);
    assert_int_equal(fl_kind_disk_fill.prepare(&fault, &ctx, err, sizeof(err)), 0);
    assert_int_equal(fl_kind_disk_fill.apply(&fault, err, sizeof(err)), 0);
    assert_int_equal(fl_kind_disk_fill.revert(first, err, sizeof(err)), 0);
    assert_true(exists(json_string_value(json_object_get(fault.undo, "file"))));
    assert_true(used_bytes() >= before + 8 * MiB);
    json_decref(first);
    assert_int_equal(fl_kind_disk_fill.revert(fault.undo, err, sizeof(err)), 0);
    assert_int_equal(used_bytes(), before);
}

static void test_write_fallback(void **state)
{
    (void)state;
    char err[512], file[PATH_MAX];
    uint64_t before = used_bytes();
    assert_int_equal(fl_disk_fill_file_name(mnt, "f-w", file, sizeof(file)), 0);
    uint64_t taken = 0;
    bool full = true;
    assert_int_equal(
        fl_disk_fill_take(file, 8 * MiB + 100, FL_DISK_FILL_WRITE, &taken, &full, err, sizeof(err)),
        0);
    assert_int_equal(taken, 8 * MiB + 100);
    assert_false(full);
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_size, (off_t)(8 * MiB + 100));
    assert_true((uint64_t)st.st_blocks * 512 >= 8 * MiB + 100); /* not sparse */
    assert_true(used_bytes() >= before + 8 * MiB);
    int fd = open(file, O_RDONLY);
    assert_true(fd >= 0);
    unsigned char c[2] = {0, 0};
    assert_int_equal(pread(fd, &c[0], 1, 0), 1);
    assert_int_equal(pread(fd, &c[1], 1, (off_t)(8 * MiB + 99)), 1);
    close(fd);
    assert_true(c[0] != 0 && c[1] != 0);

    /* a second take on the same name is refused, and the file is left alone */
    assert_int_equal(fl_disk_fill_take(file, MiB, 0, &taken, &full, err, sizeof(err)), -EEXIST);
    assert_true(exists(file));

    json_t *undo = json_pack("{s:s, s:s, s:s}", "kind", "disk_fill", "id", "f-w", "file", file);
    assert_int_equal(fl_kind_disk_fill.revert(undo, err, sizeof(err)), 0);
    json_decref(undo);
    assert_int_equal(used_bytes(), before);
}

/* More than there is: both ways keep what they took and say the disk is full. */
static void test_take_until_full(void **state)
{
    (void)state;
    char err[512], file[PATH_MAX];
    const unsigned modes[] = {0, FL_DISK_FILL_WRITE};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(fl_disk_fill_file_name(mnt, "f-full", file, sizeof(file)), 0);
        uint64_t taken = 0;
        bool full = false;
        assert_int_equal(
            fl_disk_fill_take(file, 2 * FS_SIZE, modes[i], &taken, &full, err, sizeof(err)), 0);
        assert_true(full);
        assert_true(taken <= FS_SIZE);
        assert_true(taken >= FS_SIZE - MiB);
        assert_true(fs().f_bavail * fs().f_frsize < MiB);
        assert_int_equal(unlink(file), 0);
    }
}

/* Space goes between prepare and apply: apply reports what it got. */
static void test_apply_when_full(void **state)
{
    (void)state;
    char err[512], squat[PATH_MAX];
    guard.fill_reserve_bytes = 0;
    guard.max_fill_percent = 100;
    ask("f-0000000000000004", mnt, 100, 0);
    assert_int_equal(fl_kind_disk_fill.prepare(&fault, &ctx, err, sizeof(err)), 0);
    assert_int_equal(fl_disk_fill_file_name(mnt, "squatter", squat, sizeof(squat)), 0);
    uint64_t taken;
    bool full;
    assert_int_equal(fl_disk_fill_take(squat, 8 * MiB, 0, &taken, &full, err, sizeof(err)), 0);
    assert_int_equal(fl_kind_disk_fill.apply(&fault, err, sizeof(err)), 0);
    assert_non_null(strstr(fault.detail, "file system full"));
    assert_non_null(strstr(fault.detail, "56MiB of 64MiB requested"));
    assert_true(used_percent() > 99.0);
    assert_int_equal(fl_kind_disk_fill.revert(fault.undo, err, sizeof(err)), 0);
    assert_int_equal(unlink(squat), 0);
    assert_int_equal(used_bytes(), 0);
}

static void expect_refusal(const char *id, const char *path, unsigned percent, uint64_t bytes,
                           int want_rc, const char *want)
{
    char err[512] = "";
    ask(id, path, percent, bytes);
    int rc = fl_kind_disk_fill.prepare(&fault, &ctx, err, sizeof(err));
    if (rc != want_rc || strstr(err, want) == NULL)
        fail_msg("%s %u%% %llu bytes: rc %d (want %d), err '%s' (want '%s')", path, percent,
                 (unsigned long long)bytes, rc, want_rc, err, want);
    assert_null(fault.undo);
}

static void test_refusals(void **state)
{
    (void)state;
    char link[PATH_MAX], ctl[PATH_MAX], plain[PATH_MAX], sub[256];
    /* outside the allowed paths: the temp dir holding the mount */
    expect_refusal("f-r1", base, 50, 0, -EPERM, "guardrail: disk_fill may only write under");
    expect_refusal("f-r1", base, 50, 0, -EPERM, "fill_paths");
    /* a link inside the allowed dir that leads out of it */
    path_in(link, sizeof(link), "out");
    assert_int_equal(symlink(base, link), 0);
    expect_refusal("f-r2", link, 50, 0, -EPERM, "guardrail:");
    /* a link that stays inside is fine */
    path_in(sub, sizeof(sub), "sub");
    assert_int_equal(mkdir(sub, 0700), 0);
    path_in(link, sizeof(link), "in");
    assert_int_equal(symlink(sub, link), 0);
    ask("f-r3", link, 50, 0);
    char err[512];
    assert_int_equal(fl_kind_disk_fill.prepare(&fault, &ctx, err, sizeof(err)), 0);
    char want[PATH_MAX];
    snprintf(want, sizeof(want), "%s/.faultline-f-r3.fill", sub);
    assert_string_equal(json_string_value(json_object_get(fault.undo, "file")), want);
    json_decref(fault.undo);
    fault.undo = NULL;
    /* a control character */
    snprintf(ctl, sizeof(ctl), "%s/a\nb", mnt);
    expect_refusal("f-r4", ctl, 50, 0, -EINVAL, "guardrail: path holds a control character");
    /* a relative path, a missing one, a file */
    expect_refusal("f-r5", "tmp", 50, 0, -EINVAL, "not absolute");
    path_in(plain, sizeof(plain), "missing");
    expect_refusal("f-r5", plain, 50, 0, -ENOENT, "missing");
    path_in(plain, sizeof(plain), "plain");
    int fd = open(plain, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);
    expect_refusal("f-r6", plain, 50, 0, -ENOTDIR, "not a directory");
    /* past max_fill, by percent and by bytes (the config key is named) */
    guard.max_fill_percent = 90;
    expect_refusal("f-r7", mnt, 95, 0, -EPERM,
                   "guardrail: disk_fill to 95% is past max_fill (90%)");
    expect_refusal("f-r7", mnt, 95, 0, -EPERM, "at most 90% is allowed");
    expect_refusal("f-r8", mnt, 0, 62 * MiB, -EPERM, "max_fill (90%)");
    expect_refusal("f-r8", mnt, 0, 62 * MiB, -EPERM, "at most 57.60MiB can be taken");
    /* into the reserve, by bytes and by percent */
    guard.max_fill_percent = 95;
    guard.fill_reserve_bytes = 8 * MiB;
    expect_refusal("f-r9", mnt, 0, 60 * MiB, -EPERM, "guardrail: taking 60MiB");
    expect_refusal("f-r9", mnt, 0, 60 * MiB, -EPERM, "fill_reserve (8MiB");
    expect_refusal("f-r9", mnt, 0, 60 * MiB, -EPERM, "at most 56MiB can be taken");
    expect_refusal("f-r9", mnt, 90, 0, -EPERM, "fill_reserve (");
    /* nonsense amounts */
    expect_refusal("f-ra", mnt, 0, 0, -EINVAL, "bytes must be more than 0");
    req.amount_case = FAULTLINE__DISK_FILL__AMOUNT__NOT_SET;
    fault.undo = NULL;
    assert_int_equal(fl_kind_disk_fill.prepare(&fault, &ctx, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "percent or bytes"));
    /* a bad fault id never becomes a file name */
    expect_refusal("../../etc/x", mnt, 50, 0, -EINVAL, "no fill file name");
}

static void test_already_full_enough(void **state)
{
    (void)state;
    char err[512];
    ask("f-0000000000000005", mnt, 50, 0);
    assert_int_equal(fl_kind_disk_fill.prepare(&fault, &ctx, err, sizeof(err)), 0);
    assert_int_equal(fl_kind_disk_fill.apply(&fault, err, sizeof(err)), 0);
    json_t *first = json_incref(fault.undo);
    expect_refusal("f-0000000000000006", mnt, 40, 0, -EALREADY, "already 50.0% used");
    expect_refusal("f-0000000000000006", mnt, 50, 0, -EALREADY, "at or past the 50%");
    ask("f-0000000000000006", mnt, 60, 0);
    assert_int_equal(fl_kind_disk_fill.prepare(&fault, &ctx, err, sizeof(err)), 0);
    assert_int_equal(fl_kind_disk_fill.apply(&fault, err, sizeof(err)), 0);
    assert_true(used_percent() >= 60.0 && used_percent() < 61.0);
    assert_int_equal(fl_kind_disk_fill.revert(fault.undo, err, sizeof(err)), 0);
    assert_int_equal(fl_kind_disk_fill.revert(first, err, sizeof(err)), 0);
    json_decref(first);
    assert_int_equal(used_bytes(), 0);
}

/* apply never takes over a file that is already there */
static void test_apply_existing_file(void **state)
{
    (void)state;
    char err[512];
    ask("f-0000000000000007", mnt, 0, MiB);
    assert_int_equal(fl_kind_disk_fill.prepare(&fault, &ctx, err, sizeof(err)), 0);
    const char *file = json_string_value(json_object_get(fault.undo, "file"));
    char other[PATH_MAX];
    path_in(other, sizeof(other), "elsewhere");
    assert_int_equal(symlink(other, file), 0);
    assert_int_equal(fl_kind_disk_fill.apply(&fault, err, sizeof(err)), -EEXIST);
    assert_non_null(strstr(err, "already exists"));
    assert_true(exists(file));
    assert_false(exists(other));
}

/* A symlink swapped in between prepare and apply does not redirect the fill. */
static void test_apply_dir_swapped(void **state)
{
    (void)state;
    char err[512], sub[256], moved[256], elsewhere[256], file[PATH_MAX];
    path_in(sub, sizeof(sub), "sub");
    path_in(moved, sizeof(moved), "moved");
    path_in(elsewhere, sizeof(elsewhere), "elsewhere");
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(mkdir(elsewhere, 0700), 0);
    ask("f-0000000000000008", sub, 0, MiB);
    assert_int_equal(fl_kind_disk_fill.prepare(&fault, &ctx, err, sizeof(err)), 0);
    assert_int_equal(rename(sub, moved), 0);
    assert_int_equal(symlink(elsewhere, sub), 0);
    assert_int_equal(fl_kind_disk_fill.apply(&fault, err, sizeof(err)), -ELOOP);
    assert_non_null(strstr(err, "no longer the directory that was checked"));
    assert_int_equal(fl_disk_fill_file_name(elsewhere, fault.id, file, sizeof(file)), 0);
    assert_false(exists(file));
    assert_int_equal(fl_disk_fill_file_name(moved, fault.id, file, sizeof(file)), 0);
    assert_false(exists(file));
    assert_int_equal(fl_kind_disk_fill.revert(fault.undo, err, sizeof(err)), 0);
}

/* A corrupted journal must not make revert delete anything but that id's file. */
static void test_revert_refuses_other_files(void **state)
{
    (void)state;
    char err[512], victim[PATH_MAX], other[PATH_MAX], dotdot[PATH_MAX];
    path_in(victim, sizeof(victim), "victim");
    path_in(other, sizeof(other), ".faultline-f-2.fill");
    snprintf(dotdot, sizeof(dotdot), "%s/.faultline-f-1.fill/..", mnt);
    const char *files[] = {victim, other, dotdot, mnt};
    for (size_t i = 0; i < 2; i++) {
        int fd = open(files[i], O_WRONLY | O_CREAT | O_EXCL, 0600);
        assert_true(fd >= 0);
        close(fd);
    }
    for (size_t i = 0; i < 4; i++) {
        json_t *undo =
            json_pack("{s:s, s:s, s:s}", "kind", "disk_fill", "id", "f-1", "file", files[i]);
        int rc = fl_kind_disk_fill.revert(undo, err, sizeof(err));
        json_decref(undo);
        assert_int_equal(rc, -EPERM);
        assert_non_null(strstr(err, "not its fill file"));
    }
    /* ids that are not ids, and entries without a file */
    json_t *bad[] = {
        json_pack("{s:s, s:s, s:s}", "kind", "disk_fill", "id", "../victim", "file", victim),
        json_pack("{s:s, s:s, s:s}", "kind", "disk_fill", "id", "", "file", victim),
        json_pack("{s:s, s:s}", "kind", "disk_fill", "id", "f-1"),
        json_pack("{s:s, s:s, s:s}", "kind", "disk_fill", "id", "f-1", "file",
                  ".faultline-f-1.fill"),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_non_null(bad[i]);
        assert_int_equal(fl_kind_disk_fill.revert(bad[i], err, sizeof(err)), -EINVAL);
        json_decref(bad[i]);
    }
    assert_true(exists(victim));
    assert_true(exists(other));
    /* the right name, already gone: success */
    char gone[PATH_MAX];
    path_in(gone, sizeof(gone), ".faultline-f-1.fill");
    json_t *undo = json_pack("{s:s, s:s, s:s}", "kind", "disk_fill", "id", "f-1", "file", gone);
    assert_int_equal(fl_kind_disk_fill.revert(undo, err, sizeof(err)), 0);
    json_decref(undo);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fill_percent_and_revert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fill_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_take_until_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_when_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_already_full_enough, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_existing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_dir_swapped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revert_refuses_other_files, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
