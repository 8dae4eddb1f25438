/* Writes the seeds of the journal fuzz target's corpus
 * (tests/fuzz/corpus/journal) with the real journal writer: fl_journal_open,
 * fl_journal_append and the record builders of agent/journal.h, and
 * fl_journal_compact. So the seeds are always in the format the agent
 * writes: after a change of that format, rerun make_journal_seeds.sh and
 * commit the corpus. The torn seeds cut a written journal short, as a crash
 * mid-write does, whatever the format.
 *
 * Usage: journal_seeds DIR */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/journal.h"

static void die(const char *what, const char *err)
{
    fprintf(stderr, "journal_seeds: %s: %s\n", what, err);
    exit(1);
}

static struct fl_journal *open_new(const char *dir, const char *name)
{
    char path[4096], err[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    unlink(path);
    struct fl_journal *j;
    if (fl_journal_open(path, &j, err, sizeof(err)) != 0)
        die(path, err);
    return j;
}

static void append(struct fl_journal *j, json_t *rec)
{
    if (rec == NULL)
        die("record", "cannot build");
    if (fl_journal_append(j, rec) != 0)
        die("append", strerror(errno));
    json_decref(rec);
}

/* Undo objects as the kinds write them (agent/faults/). */
static json_t *undo_kill(const char *id)
{
    return json_pack("{s:s,s:s,s:[{s:i,s:I}]}", "kind", "kill_process", "id", id, "targets", "pid",
                     4242, "start", (json_int_t)123456);
}

static json_t *undo_pause(const char *id)
{
    return json_pack("{s:s,s:s,s:[{s:i,s:I},{s:i,s:I}]}", "kind", "pause_process", "id", id,
                     "targets", "pid", 4243, "start", (json_int_t)99, "pid", 4244, "start",
                     (json_int_t)100);
}

static json_t *undo_drop(const char *id)
{
    return json_pack("{s:s,s:s,s:s,s:i}", "kind", "network_drop", "id", id, "table",
                     "faultline_f-0123456789abcdef", "netns", 0);
}

static json_t *undo_fill(const char *id)
{
    return json_pack("{s:s,s:s,s:s,s:s}", "kind", "disk_fill", "id", id, "dir", "/var/tmp", "file",
                     "/var/tmp/faultline-fill-f-1");
}

static json_t *undo_cpu(const char *id)
{
    return json_pack("{s:s,s:s,s:[{s:i,s:I}]}", "kind", "cpu_stress", "id", id, "workers", "pid",
                     5000, "start", (json_int_t)777);
}

static void apply(struct fl_journal *j, const char *id, json_t *undo)
{
    append(j, fl_journal_apply_record(id, undo));
    json_decref(undo);
}

/* Cuts the file dir/name to its length less cut bytes, as dir/out. */
static void torn(const char *dir, const char *name, const char *out, long cut)
{
    char from[4096], to[4096];
    snprintf(from, sizeof(from), "%s/%s", dir, name);
    snprintf(to, sizeof(to), "%s/%s", dir, out);
    FILE *f = fopen(from, "rb");
    if (f == NULL)
        die(from, strerror(errno));
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    size_t keep = (long)n > cut ? n - (size_t)cut : 0;
    FILE *g = fopen(to, "wb");
    if (g == NULL || fwrite(buf, 1, keep, g) != keep || fclose(g) != 0)
        die(to, strerror(errno));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    struct fl_journal *j;

    j = open_new(dir, "empty");
    fl_journal_close(&j);

    j = open_new(dir, "one_active");
    apply(j, "f-0000000000000001", undo_kill("f-0000000000000001"));
    fl_journal_close(&j);

    j = open_new(dir, "applied_reverted");
    apply(j, "f-0000000000000002", undo_drop("f-0000000000000002"));
    append(j, fl_journal_revert_record("f-0000000000000002", 1, NULL));
    fl_journal_close(&j);

    j = open_new(dir, "revert_failed");
    apply(j, "f-0000000000000003", undo_fill("f-0000000000000003"));
    append(j, fl_journal_revert_record("f-0000000000000003", 0, "cannot remove the fill file"));
    fl_journal_close(&j);

    j = open_new(dir, "updated");
    apply(j, "f-0000000000000004", undo_cpu("f-0000000000000004"));
    json_t *more = undo_cpu("f-0000000000000004");
    json_array_append_new(json_object_get(more, "workers"),
                          json_pack("{s:i,s:I}", "pid", 5001, "start", (json_int_t)778));
    append(j, fl_journal_update_record("f-0000000000000004", more));
    json_decref(more);
    fl_journal_close(&j);

    j = open_new(dir, "mixed");
    apply(j, "f-0000000000000005", undo_kill("f-0000000000000005"));
    apply(j, "f-0000000000000006", undo_pause("f-0000000000000006"));
    apply(j, "f-0000000000000007", undo_drop("f-0000000000000007"));
    append(j, fl_journal_revert_record("f-0000000000000006", 1, NULL));
    apply(j, "f-0000000000000008", undo_fill("f-0000000000000008"));
    append(j, fl_journal_revert_record("f-0000000000000005", 1, NULL));
    append(j, fl_journal_revert_record("f-0000000000000007", 0, "nft: table busy"));
    fl_journal_close(&j);

    /* a revert of a fault the journal never applied, and one applied twice */
    j = open_new(dir, "odd_order");
    append(j, fl_journal_revert_record("f-0000000000000009", 1, NULL));
    apply(j, "f-000000000000000a", undo_kill("f-000000000000000a"));
    apply(j, "f-000000000000000a", undo_kill("f-000000000000000a"));
    fl_journal_close(&j);

    /* compacted: what a clean restart leaves */
    j = open_new(dir, "compacted");
    apply(j, "f-000000000000000b", undo_drop("f-000000000000000b"));
    apply(j, "f-000000000000000c", undo_pause("f-000000000000000c"));
    json_t *keep = json_array();
    json_array_append_new(keep, undo_pause("f-000000000000000c"));
    char err[512];
    if (fl_journal_compact(j, keep, err, sizeof(err)) != 0)
        die("compact", err);
    json_decref(keep);
    fl_journal_close(&j);

    torn(dir, "mixed", "torn_last_record", 7);
    torn(dir, "one_active", "torn_first_record", 20);
    return 0;
}
