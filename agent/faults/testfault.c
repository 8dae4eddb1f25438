/* test_fault: a fault kind for tests only, compiled into faultline-agent-test
 * and never into faultline-agent (CMakeLists.txt leaves this file out of the
 * product's kinds; agent/fault.c finds it through a weak reference).
 *
 * apply creates the marker file (holding the fault id); revert removes it.
 * Either can be told to fail: before failing or succeeding, revert reads the
 * control file. "N" (N > 0) makes this revert fail and leaves "N-1" behind;
 * "forever" makes every revert fail; "0", empty or missing lets it succeed.
 * "apply" makes apply fail (after creating the marker, as a half-done apply
 * would). The guardian and the next agent revert from the undo alone, like
 * every kind. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/fault.h"

static int path_ok(const char *p, const char *what, char *err, size_t errlen)
{
    if (p == NULL || p[0] != '/' || strlen(p) >= 4096) {
        snprintf(err, errlen, "test_fault needs an absolute %s path", what);
        return -EINVAL;
    }
    return 0;
}

static int test_prepare(struct fl_fault *f, const struct fl_agent_ctx *ctx, char *err,
                        size_t errlen)
{
    (void)ctx;
    const Faultline__TestFault *t = f->spec->test_fault;
    if (t == NULL) {
        snprintf(err, errlen, "test_fault without its parameters");
        return -EINVAL;
    }
    int rc = path_ok(t->control, "control", err, errlen);
    if (rc == 0)
        rc = path_ok(t->marker, "marker", err, errlen);
    if (rc < 0)
        return rc;
    json_t *undo = json_pack("{s:s, s:s, s:s, s:s}", "kind", "test_fault", "id", f->id, "control",
                             t->control, "marker", t->marker);
    if (undo == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    json_decref(f->undo);
    f->undo = undo;
    return 0;
}

/* The control file's word, "" when it is missing. */
static int read_control(const char *path, char *out, size_t cap, char *err, size_t errlen)
{
    out[0] = '\0';
    FILE *c = fopen(path, "re");
    if (c == NULL) {
        if (errno == ENOENT)
            return 0;
        int rc = -errno;
        snprintf(err, errlen, "test_fault: cannot read %s: %s", path, strerror(-rc));
        return rc;
    }
    if (fgets(out, (int)cap, c) == NULL)
        out[0] = '\0';
    fclose(c);
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

static int write_control(const char *path, unsigned long n, char *err, size_t errlen)
{
    FILE *c = fopen(path, "we");
    if (c == NULL || fprintf(c, "%lu\n", n) < 0 || fclose(c) != 0) {
        int rc = -errno;
        snprintf(err, errlen, "test_fault: cannot write %s: %s", path, strerror(-rc));
        return rc;
    }
    return 0;
}

static int test_apply(struct fl_fault *f, char *err, size_t errlen)
{
    const char *marker = json_string_value(json_object_get(f->undo, "marker"));
    const char *control = json_string_value(json_object_get(f->undo, "control"));
    int fd = open(marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int rc = -errno;
        snprintf(err, errlen, "test_fault: cannot create %s: %s", marker, strerror(-rc));
        return rc;
    }
    ssize_t w = write(fd, f->id, strlen(f->id));
    int saved = errno;
    close(fd);
    if (w < 0) {
        snprintf(err, errlen, "test_fault: cannot write %s: %s", marker, strerror(saved));
        return -saved;
    }
    char word[32];
    int rc = read_control(control, word, sizeof(word), err, errlen);
    if (rc < 0)
        return rc;
    if (strcmp(word, "apply") == 0) {
        snprintf(err, errlen, "test_fault: apply told to fail by %s", control);
        return -EIO;
    }
    snprintf(f->detail, sizeof(f->detail), "created %s", marker);
    return 0;
}

static int test_revert(const json_t *undo, char *err, size_t errlen)
{
    const char *marker = json_string_value(json_object_get(undo, "marker"));
    const char *control = json_string_value(json_object_get(undo, "control"));
    if (marker == NULL || control == NULL) {
        snprintf(err, errlen, "test_fault: undo without marker or control");
        return -EINVAL;
    }
    char word[32];
    int rc = read_control(control, word, sizeof(word), err, errlen);
    if (rc < 0)
        return rc;
    if (strcmp(word, "forever") == 0) {
        snprintf(err, errlen, "test_fault: revert told to fail forever by %s", control);
        return -EIO;
    }
    char *end;
    errno = 0;
    unsigned long n = strtoul(word, &end, 10);
    if (word[0] != '\0' && strcmp(word, "apply") != 0 && (errno != 0 || *end != '\0')) {
        snprintf(err, errlen, "test_fault: %s holds '%s', not a count or 'forever'", control, word);
        return -EINVAL;
    }
    if (word[0] >= '0' && word[0] <= '9' && n > 0) {
        rc = write_control(control, n - 1, err, errlen);
        if (rc < 0)
            return rc;
        snprintf(err, errlen, "test_fault: revert told to fail by %s (%lu more after this)",
                 control, n - 1);
        return -EIO;
    }
    if (unlink(marker) != 0 && errno != ENOENT) {
        rc = -errno;
        snprintf(err, errlen, "test_fault: cannot remove %s: %s", marker, strerror(-rc));
        return rc;
    }
    return 0;
}

const struct fl_fault_kind fl_kind_test_fault = {
    .name = "test_fault",
    .spec_case = FAULTLINE__FAULT_SPEC__KIND_TEST_FAULT,
    .prepare = test_prepare,
    .apply = test_apply,
    .tick = NULL,
    .revert = test_revert,
};
