/* disk_fill: take space on a file system with one file, and give it back.
 *
 * The fault owns exactly one file, "<dir>/.faultline-<id>.fill", in the
 * directory the request names (after fl_guard_check_fill_path resolved it and
 * found it under an allowed path). prepare works out how many bytes to take
 * from statvfs and refuses, rather than shrinks, a request that would pass
 * max_fill or eat into fill_reserve (the config keys); the undo object is
 * {"kind", "id", "file", "bytes", "dir"}, of which revert reads only "id"
 * and "file".
 *
 * "Used" is what df shows: used / (used + available to unprivileged users),
 * so "95%" means what an SRE reading df expects.
 *
 * Other disk_fill faults accepted but not applied yet count as used already
 * (the reservation ledger, agent/guardrails.h): what they will still take on
 * the same file system is added to its use before the checks, so requests
 * that arrive together cannot together pass max_fill or fill_reserve, and
 * fill=90% means the file system ends at 90% whether the fault before it is
 * applied yet or not. prepare then reserves what it will take.
 *
 * apply creates the file with O_EXCL|O_NOFOLLOW (never someone else's
 * file, never through a link), relative to the directory opened and checked
 * to be still the one prepare resolved (a symlink swapped into the path
 * meanwhile cannot send the fill to another file system). It fallocates in
 * chunks, halving a chunk when the file system runs out, so that a full file
 * system still ends up full. Where fallocate is not supported it writes real
 * non-zero blocks instead (zeros could be compressed or deduplicated away).
 * Running out of space is the fault working, not failing: what was taken
 * stays and f->detail says so.
 *
 * revert unlinks the file, but only a file whose base name is that id's fill
 * file name: a corrupted journal cannot make the agent delete anything else.
 * A missing file is success. */
#include "agent/faults/disk.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "agent/fault.h"
#include "agent/guardrails.h"
#include "common/faultid.h"
#include "common/log.h"
#include "common/units.h"

#define FILL_PREFIX ".faultline-"
#define FILL_SUFFIX ".fill"
#define FALLOCATE_CHUNK (64ull << 20)
#define WRITE_BLOCK (1u << 20)

int fl_disk_fill_file_name(const char *dir, const char *id, char *out, size_t outlen)
{
    if (!fl_fault_id_ok(id) || dir == NULL || dir[0] != '/')
        return -EINVAL;
    const char *sep = dir[strlen(dir) - 1] == '/' ? "" : "/";
    int n = snprintf(out, outlen, "%s%s" FILL_PREFIX "%s" FILL_SUFFIX, dir, sep, id);
    if (n < 0 || (size_t)n >= outlen)
        return -ENAMETOOLONG;
    return 0;
}

struct usage {
    uint64_t used;  /* bytes in use */
    uint64_t avail; /* bytes an unprivileged writer may still take */
    uint64_t size;  /* used + avail: what df's percentage is of */
    uint64_t block;
};

static int usage_of(const struct statvfs *vfs, struct usage *out)
{
    uint64_t frsize = vfs->f_frsize ? vfs->f_frsize : vfs->f_bsize;
    if (frsize == 0 || vfs->f_blocks < vfs->f_bfree)
        return -EIO;
    out->used = (uint64_t)(vfs->f_blocks - vfs->f_bfree) * frsize;
    out->avail = (uint64_t)vfs->f_bavail * frsize;
    out->size = out->used + out->avail;
    out->block = frsize;
    return 0;
}

static double percent_of(uint64_t part, uint64_t whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 100.0;
}

static uint64_t round_up(uint64_t n, uint64_t block)
{
    uint64_t r = n % block;
    return r ? n + (block - r) : n;
}

/* What other faults not yet applied will still take, for a message: "" when
 * nothing, else ", counting 60MiB reserved by 1 disk_fill fault not yet
 * applied". */
static void reserved_text(uint64_t pending, size_t n_pending, char *out, size_t len)
{
    char r[32];
    out[0] = '\0';
    if (pending > 0)
        snprintf(out, len, ", counting %s reserved by %zu disk_fill fault%s not yet applied",
                 fl_bytes_text(pending, r, sizeof(r)), n_pending, n_pending == 1 ? "" : "s");
}

/* How many bytes the request takes from a file system in use u, of which
 * pending bytes are reserved by n_pending faults not yet applied, or a
 * refusal. */
static int compute_take(const Faultline__DiskFill *req, const struct fl_guardrails *g,
                        const char *dir, const struct usage *now_u, uint64_t pending,
                        size_t n_pending, uint64_t *take, char *err, size_t errlen)
{
    char a[32], b[32], c[32], resv[160];
    uint64_t need;
    /* the reserved bytes count as used already */
    struct usage uu = *now_u;
    uint64_t held = pending < uu.avail ? pending : uu.avail;
    uu.used += held;
    uu.avail -= held;
    const struct usage *u = &uu;
    reserved_text(pending, n_pending, resv, sizeof(resv));
    double now = percent_of(u->used, u->size);
    if (u->size == 0) {
        snprintf(err, errlen, "disk_fill: the file system under %s has no usable space", dir);
        return -ENOSPC;
    }
    /* the most max_fill lets this file system hold */
    uint64_t max_used = (uint64_t)((double)u->size * g->max_fill_percent / 100.0);
    if (req->amount_case == FAULTLINE__DISK_FILL__AMOUNT_PERCENT) {
        if (req->percent == 0 || req->percent > 100) {
            snprintf(err, errlen, "disk_fill: percent must be 1 to 100, not %u", req->percent);
            return -EINVAL;
        }
        if ((double)req->percent > g->max_fill_percent) {
            snprintf(err, errlen,
                     "guardrail: disk_fill to %u%% is past max_fill (%g%%) in the "
                     "agent's config; at most %g%% is allowed",
                     req->percent, g->max_fill_percent, g->max_fill_percent);
            return -EPERM;
        }
        uint64_t target = (uint64_t)((double)u->size * req->percent / 100.0 + 0.999999);
        if (target <= u->used) {
            snprintf(err, errlen,
                     "disk_fill: the file system under %s is already %.1f%% used%s, at or past "
                     "the %u%% asked for; ask for more, or for bytes",
                     dir, now, resv, req->percent);
            return -EALREADY;
        }
        need = round_up(target - u->used, u->block);
    } else if (req->amount_case == FAULTLINE__DISK_FILL__AMOUNT_BYTES) {
        if (req->bytes == 0) {
            snprintf(err, errlen, "disk_fill: bytes must be more than 0");
            return -EINVAL;
        }
        if (req->bytes > UINT64_MAX / 2) {
            snprintf(err, errlen, "disk_fill: %llu bytes is more than any file system holds",
                     (unsigned long long)req->bytes);
            return -ERANGE;
        }
        need = round_up(req->bytes, u->block);
        if (u->used + need > max_used) {
            fl_bytes_text(req->bytes, a, sizeof(a));
            fl_bytes_text(max_used > u->used ? max_used - u->used : 0, b, sizeof(b));
            snprintf(err, errlen,
                     "guardrail: taking %s under %s would fill its file system to %.1f%%%s, "
                     "past max_fill (%g%%) in the agent's config; at most %s can be taken now",
                     a, dir, percent_of(u->used + need, u->size), resv, g->max_fill_percent, b);
            return -EPERM;
        }
    } else {
        snprintf(err, errlen, "disk_fill needs percent or bytes");
        return -EINVAL;
    }
    if (need > u->avail || u->avail - need < g->fill_reserve_bytes) {
        uint64_t allowed = u->avail > g->fill_reserve_bytes ? u->avail - g->fill_reserve_bytes : 0;
        fl_bytes_text(need, a, sizeof(a));
        fl_bytes_text(g->fill_reserve_bytes, b, sizeof(b));
        fl_bytes_text(allowed, c, sizeof(c));
        snprintf(err, errlen,
                 "guardrail: taking %s under %s would leave less than fill_reserve (%s, "
                 "agent's config) free%s; at most %s can be taken now (up to %.1f%% used)",
                 a, dir, b, resv, c, percent_of(u->used + allowed, u->size));
        return -EPERM;
    }
    *take = need;
    return 0;
}

static int disk_prepare(struct fl_fault *f, const struct fl_agent_ctx *ctx, char *err,
                        size_t errlen)
{
    const Faultline__FaultSpec *spec = f->spec;
    if (spec == NULL || spec->kind_case != FAULTLINE__FAULT_SPEC__KIND_DISK_FILL ||
        spec->disk_fill == NULL) {
        snprintf(err, errlen, "disk_fill: the request holds no disk_fill parameters");
        return -EINVAL;
    }
    const Faultline__DiskFill *req = spec->disk_fill;
    char dir[PATH_MAX];
    int rc = fl_guard_check_fill_path(ctx->guard, req->path, dir, sizeof(dir), err, errlen);
    if (rc < 0)
        return rc;
    char file[PATH_MAX];
    rc = fl_disk_fill_file_name(dir, f->id, file, sizeof(file));
    if (rc < 0) {
        snprintf(err, errlen, "disk_fill: no fill file name for fault '%s' under %s", f->id, dir);
        return rc;
    }
    struct statvfs vfs;
    struct usage u;
    if (statvfs(dir, &vfs) != 0) {
        rc = -errno;
        snprintf(err, errlen, "disk_fill: statvfs %s: %s", dir, fl_strerror(rc));
        return rc;
    }
    if (usage_of(&vfs, &u) < 0) {
        snprintf(err, errlen, "disk_fill: the file system under %s reports nonsense sizes", dir);
        return -EIO;
    }
    struct stat dst;
    if (stat(dir, &dst) != 0) {
        rc = -errno;
        snprintf(err, errlen, "disk_fill: stat %s: %s", dir, fl_strerror(rc));
        return rc;
    }
    size_t n_pending = 0;
    uint64_t pending =
        f->ledger ? fl_ledger_disk_pending(f->ledger, (uint64_t)dst.st_dev, &n_pending) : 0;
    uint64_t take;
    rc = compute_take(req, ctx->guard, dir, &u, pending, n_pending, &take, err, errlen);
    if (rc < 0)
        return rc;
    json_t *undo = json_pack("{s:s, s:s, s:s, s:I, s:s}", "kind", "disk_fill", "id", f->id, "file",
                             file, "bytes", (json_int_t)take, "dir", dir);
    if (undo == NULL) {
        snprintf(err, errlen, "disk_fill: out of memory");
        return -ENOMEM;
    }
    if (f->ledger && fl_ledger_hold_disk(f->ledger, f->id, (uint64_t)dst.st_dev, take, file) < 0) {
        json_decref(undo);
        snprintf(err, errlen, "disk_fill: out of memory");
        return -ENOMEM;
    }
    json_decref(f->undo);
    f->undo = undo;
    return 0;
}

static bool no_space(int e)
{
    return e == ENOSPC || e == EDQUOT || e == EFBIG;
}

/* Takes what it can with write(): n bytes of a non-zero pattern from off. */
static int write_blocks(int fd, uint64_t off, uint64_t bytes, uint64_t *done, bool *full)
{
    unsigned char *buf = malloc(WRITE_BLOCK);
    if (buf == NULL)
        return -ENOMEM;
    memset(buf, 0xa5, WRITE_BLOCK);
    int rc = 0;
    while (off < bytes) {
        size_t n = bytes - off < WRITE_BLOCK ? (size_t)(bytes - off) : WRITE_BLOCK;
        ssize_t w = pwrite(fd, buf, n, (off_t)off);
        if (w > 0) {
            off += (uint64_t)w;
        } else if (w == 0 || no_space(errno)) {
            *full = true;
            break;
        } else if (errno != EINTR) {
            rc = -errno;
            break;
        }
    }
    free(buf);
    *done = off;
    return rc;
}

/* Opens the directory of file and checks that it is still the directory the
 * path names, with no symlink swapped into the path since prepare resolved
 * it: the fill file is then created relative to it. */
static int open_dir_of(const char *file, int *dfd_out, const char **base_out, char *err,
                       size_t errlen)
{
    const char *slash = strrchr(file, '/');
    if (file[0] != '/' || slash == NULL || slash[1] == '\0') {
        snprintf(err, errlen, "disk_fill: %s is not an absolute file name", file);
        return -EINVAL;
    }
    char dir[PATH_MAX];
    size_t dlen = slash == file ? 1 : (size_t)(slash - file);
    if (dlen >= sizeof(dir)) {
        snprintf(err, errlen, "disk_fill: %s is too long", file);
        return -ENAMETOOLONG;
    }
    memcpy(dir, file, dlen);
    dir[dlen] = '\0';
    int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        int rc = -errno;
        snprintf(err, errlen, "disk_fill: opening %s: %s", dir, fl_strerror(rc));
        return rc;
    }
    char link[64], real[PATH_MAX];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", dfd);
    ssize_t n = readlink(link, real, sizeof(real) - 1);
    int rc = n < 0 ? -errno : 0;
    if (n >= 0) {
        real[n] = '\0';
        if (strcmp(real, dir) != 0)
            rc = -ELOOP;
    }
    if (rc < 0) {
        close(dfd);
        snprintf(err, errlen,
                 "disk_fill: %s is no longer the directory that was checked (now %s); nothing "
                 "written",
                 dir, n < 0 ? fl_strerror(rc) : real);
        return rc;
    }
    *dfd_out = dfd;
    *base_out = slash + 1;
    return 0;
}

int fl_disk_fill_take(const char *file, uint64_t bytes, unsigned flags, uint64_t *taken, bool *full,
                      char *err, size_t errlen)
{
    int rc;
    if (bytes > (uint64_t)INT64_MAX) {
        snprintf(err, errlen, "disk_fill: %llu bytes do not fit in a file",
                 (unsigned long long)bytes);
        return -EFBIG;
    }
    int dfd;
    const char *base;
    rc = open_dir_of(file, &dfd, &base, err, errlen);
    if (rc < 0)
        return rc;
    int fd = openat(dfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        close(dfd);
        if (rc == -EEXIST)
            snprintf(err, errlen,
                     "disk_fill: %s already exists; revert the fault that made it, or remove it",
                     file);
        else
            snprintf(err, errlen, "disk_fill: creating %s: %s", file, fl_strerror(rc));
        return rc;
    }
    bool is_full = false, use_write = (flags & FL_DISK_FILL_WRITE) != 0;
    uint64_t off = 0, chunk = FALLOCATE_CHUNK, block = 4096;
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_blksize > 0)
        block = (uint64_t)st.st_blksize;
    while (off < bytes && !use_write) {
        uint64_t n = bytes - off < chunk ? bytes - off : chunk;
        if (fallocate(fd, 0, (off_t)off, (off_t)n) == 0) {
            off += n;
        } else if (errno == EOPNOTSUPP || errno == ENOSYS) {
            use_write = true;
        } else if (no_space(errno)) {
            if (chunk <= block) {
                is_full = true;
                break;
            }
            chunk = round_up(chunk / 2, block);
        } else if (errno != EINTR) {
            rc = -errno;
            break;
        }
    }
    if (rc == 0 && use_write && off < bytes)
        rc = write_blocks(fd, off, bytes, &off, &is_full);
    /* a failed fallocate may still have kept part of its range (ext4 does) */
    if (rc == 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_size > off)
        off = (uint64_t)st.st_size < bytes ? (uint64_t)st.st_size : bytes;
    if (close(fd) != 0 && rc == 0 && errno != EINTR) {
        if (no_space(errno))
            is_full = true;
        else
            rc = -errno;
    }
    if (rc < 0)
        unlinkat(dfd, base, 0);
    close(dfd);
    if (rc < 0) {
        snprintf(err, errlen, "disk_fill: filling %s: %s", file, fl_strerror(rc));
        return rc;
    }
    *taken = off;
    *full = is_full;
    return 0;
}

static int disk_apply(struct fl_fault *f, char *err, size_t errlen)
{
    const char *file = json_string_value(json_object_get(f->undo, "file"));
    const char *dir = json_string_value(json_object_get(f->undo, "dir"));
    json_int_t bytes = json_integer_value(json_object_get(f->undo, "bytes"));
    if (file == NULL || dir == NULL || bytes <= 0) {
        snprintf(err, errlen, "disk_fill: fault %s was not prepared", f->id);
        return -EINVAL;
    }
    uint64_t taken;
    bool full;
    int rc = fl_disk_fill_take(file, (uint64_t)bytes, 0, &taken, &full, err, errlen);
    if (rc < 0)
        return rc;
    char t[32], want[32];
    fl_bytes_text(taken, t, sizeof(t));
    fl_bytes_text((uint64_t)bytes, want, sizeof(want));
    struct statvfs vfs;
    struct usage u;
    char now[48] = "";
    if (statvfs(dir, &vfs) == 0 && usage_of(&vfs, &u) == 0)
        snprintf(now, sizeof(now), ", now %.1f%% used", percent_of(u.used, u.size));
    if (full)
        snprintf(f->detail, sizeof(f->detail), "took %s of %s requested: file system full (%s%s)",
                 t, want, file, now);
    else
        snprintf(f->detail, sizeof(f->detail), "took %s in %s%s", t, file, now);
    return 0;
}

static int disk_revert(const json_t *undo, char *err, size_t errlen)
{
    const char *id = json_string_value(json_object_get(undo, "id"));
    const char *file = json_string_value(json_object_get(undo, "file"));
    if (!fl_fault_id_ok(id) || file == NULL || file[0] != '/') {
        snprintf(err, errlen,
                 "disk_fill: journal entry without a valid id and fill file; nothing removed");
        return -EINVAL;
    }
    const char *base = strrchr(file, '/') + 1;
    size_t plen = strlen(FILL_PREFIX), ilen = strlen(id), slen = strlen(FILL_SUFFIX);
    if (strlen(base) != plen + ilen + slen || strncmp(base, FILL_PREFIX, plen) != 0 ||
        strncmp(base + plen, id, ilen) != 0 || strcmp(base + plen + ilen, FILL_SUFFIX) != 0) {
        snprintf(err, errlen,
                 "disk_fill: journal entry for fault %s names %s, which is not its fill file "
                 "(" FILL_PREFIX "%s" FILL_SUFFIX "); left alone",
                 id, file, id);
        return -EPERM;
    }
    if (unlink(file) != 0 && errno != ENOENT) {
        int rc = -errno;
        snprintf(err, errlen, "disk_fill: removing %s: %s; remove it by hand", file,
                 fl_strerror(rc));
        return rc;
    }
    return 0;
}

const struct fl_fault_kind fl_kind_disk_fill = {
    .name = "disk_fill",
    .spec_case = FAULTLINE__FAULT_SPEC__KIND_DISK_FILL,
    .prepare = disk_prepare,
    .apply = disk_apply,
    .tick = NULL,
    .revert = disk_revert,
};
