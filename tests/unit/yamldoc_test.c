/* YAML documents: the tree, its positions, what is refused, and every typed
 * accessor's value and message. */
#include <errno.h>
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

#include "common/yamldoc.h"

static struct fl_yaml_doc *load_ok(const char *text)
{
    struct fl_yaml_doc *doc = NULL;
    char err[512] = "";
    int rc = fl_yaml_load_buffer("t.yaml", text, strlen(text), &doc, err, sizeof(err));
    if (rc != 0)
        fail_msg("unexpected error %d: %s", rc, err);
    assert_non_null(doc);
    return doc;
}

/* Loads text that must fail with err exactly as expected. */
static void load_fails(const char *text, size_t len, int want_rc, const char *want)
{
    struct fl_yaml_doc *doc = (struct fl_yaml_doc *)(uintptr_t)0x1;
    char err[512] = "";
    int rc = fl_yaml_load_buffer("t.yaml", text, len, &doc, err, sizeof(err));
    assert_int_equal(rc, want_rc);
    assert_string_equal(err, want);
    assert_ptr_equal(doc, (struct fl_yaml_doc *)(uintptr_t)0x1); /* untouched */
}

static void assert_at(const struct fl_yaml_node *n, enum fl_yaml_kind kind, unsigned line,
                      unsigned col)
{
    assert_non_null(n);
    assert_int_equal(n->kind, kind);
    assert_int_equal(n->line, line);
    assert_int_equal(n->col, col);
}

static void test_tree_and_positions(void **state)
{
    (void)state;
    struct fl_yaml_doc *doc = load_ok("name: web\n"
                                      "faults:\n"
                                      "  - name: kill\n"
                                      "    target: { hosts: [web1, \"web2\"] }\n"
                                      "  - x\n"
                                      "empty:\n");
    const struct fl_yaml_node *root = doc->root;
    assert_at(root, FL_YAML_MAPPING, 1, 1);
    assert_int_equal(root->n_pairs, 3);
    /* file order is kept */
    assert_string_equal(root->pairs[0].key->text, "name");
    assert_string_equal(root->pairs[1].key->text, "faults");
    assert_string_equal(root->pairs[2].key->text, "empty");
    assert_at(root->pairs[1].key, FL_YAML_SCALAR, 2, 1);

    const struct fl_yaml_node *name = fl_yaml_get(root, "name");
    assert_at(name, FL_YAML_SCALAR, 1, 7);
    assert_string_equal(name->text, "web");
    assert_false(name->quoted);
    assert_string_equal(name->file, "t.yaml");

    const struct fl_yaml_node *faults = fl_yaml_get(root, "faults");
    assert_at(faults, FL_YAML_SEQUENCE, 3, 3);
    assert_int_equal(faults->n_items, 2);
    const struct fl_yaml_node *f0 = faults->items[0];
    assert_at(f0, FL_YAML_MAPPING, 3, 5);
    assert_at(fl_yaml_get(f0, "name"), FL_YAML_SCALAR, 3, 11);
    const struct fl_yaml_node *target = fl_yaml_get(f0, "target");
    assert_at(target, FL_YAML_MAPPING, 4, 13);
    const struct fl_yaml_node *hosts = fl_yaml_get(target, "hosts");
    assert_at(hosts, FL_YAML_SEQUENCE, 4, 22);
    assert_int_equal(hosts->n_items, 2);
    assert_at(hosts->items[0], FL_YAML_SCALAR, 4, 23);
    assert_at(hosts->items[1], FL_YAML_SCALAR, 4, 29);
    assert_string_equal(hosts->items[1]->text, "web2");
    assert_true(hosts->items[1]->quoted);
    assert_at(faults->items[1], FL_YAML_SCALAR, 5, 5);

    const struct fl_yaml_node *empty = fl_yaml_get(root, "empty");
    assert_non_null(empty);
    assert_true(fl_yaml_is_null(empty));
    assert_null(fl_yaml_get(root, "missing"));
    assert_null(fl_yaml_get(name, "name")); /* not a mapping */

    fl_yaml_free(&doc);
    assert_null(doc);
    fl_yaml_free(&doc); /* no-op */
    fl_yaml_free(NULL);
}

static void test_empty_documents(void **state)
{
    (void)state;
    static const char *const texts[] = {"", "# only\n# comments\n", "\n\n"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct fl_yaml_doc *doc = load_ok(texts[i]);
        assert_null(doc->root);
        fl_yaml_free(&doc);
    }
    struct fl_yaml_doc *doc = load_ok("---\n");
    assert_true(fl_yaml_is_null(doc->root));
    fl_yaml_free(&doc);
}

static void test_null_and_quotes(void **state)
{
    (void)state;
    struct fl_yaml_doc *doc = load_ok("a: ~\nb: null\nc: NULL\nd: \"null\"\ne: ''\nf: nil\n");
    assert_true(fl_yaml_is_null(fl_yaml_get(doc->root, "a")));
    assert_true(fl_yaml_is_null(fl_yaml_get(doc->root, "b")));
    assert_true(fl_yaml_is_null(fl_yaml_get(doc->root, "c")));
    assert_false(fl_yaml_is_null(fl_yaml_get(doc->root, "d")));
    assert_false(fl_yaml_is_null(fl_yaml_get(doc->root, "e")));
    assert_false(fl_yaml_is_null(fl_yaml_get(doc->root, "f")));
    assert_false(fl_yaml_is_null(doc->root));
    assert_false(fl_yaml_is_null(NULL));
    fl_yaml_free(&doc);
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    const char *t = "a: 1\nb: 2\na: 3\n";
    load_fails(t, strlen(t), -EINVAL, "t.yaml:3:1: duplicate key 'a' (first at line 1, column 1)");
    /* the first repeat in file order is the one reported, nested too */
    t = "top:\n  z: 1\n  y: 2\n  y: 3\n  z: 4\n";
    load_fails(t, strlen(t), -EINVAL, "t.yaml:4:3: duplicate key 'y' (first at line 3, column 3)");
    t = "x: { k: 1, k: 2 }\n";
    load_fails(t, strlen(t), -EINVAL, "t.yaml:1:12: duplicate key 'k' (first at line 1, column 6)");
    /* quoting does not make a different key */
    t = "k: 1\n\"k\": 2\n";
    load_fails(t, strlen(t), -EINVAL, "t.yaml:2:1: duplicate key 'k' (first at line 1, column 1)");
    /* the same key in two mappings is fine */
    struct fl_yaml_doc *doc = load_ok("- {k: 1}\n- {k: 2}\n");
    fl_yaml_free(&doc);
}

static void test_many_keys(void **state)
{
    (void)state;
    /* duplicates are found by sorting: a big mapping stays fast */
    size_t n = 5000, cap = n * 16 + 32, used = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(text + used, cap - used, "k%zu: %zu\n", i, i);
    struct fl_yaml_doc *doc = load_ok(text);
    assert_int_equal(doc->root->n_pairs, n);
    assert_string_equal(fl_yaml_get(doc->root, "k4999")->text, "4999");
    fl_yaml_free(&doc);
    snprintf(text + used, cap - used, "k17: again\n");
    char want[128];
    snprintf(want, sizeof(want), "t.yaml:%zu:1: duplicate key 'k17' (first at line 18, column 1)",
             n + 1);
    load_fails(text, strlen(text), -EINVAL, want);
    free(text);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    const char *t = "a: [1, 2\nb: 3\n";
    load_fails(t, strlen(t), -EINVAL,
               "t.yaml:2:2: did not find expected ',' or ']' (while parsing a flow sequence at "
               "line 1, column 4)");
    t = "a: b: c\n";
    load_fails(t, strlen(t), -EINVAL, "t.yaml:1:5: mapping values are not allowed in this context");
    t = "a:\n\tb: 1\n";
    load_fails(t, strlen(t), -EINVAL,
               "t.yaml:2:1: found character that cannot start any token (while scanning for the "
               "next token at line 2, column 1); indent with spaces, not tabs");
    t = "a: 1\n b: 2\n";
    load_fails(t, strlen(t), -EINVAL, "t.yaml:2:3: mapping values are not allowed in this context");
    /* reader errors come as a byte offset: still a line and column */
    t = "a: 1\nbé: \xff\n";
    load_fails(t, strlen(t), -EINVAL, "t.yaml:2:5: invalid leading UTF-8 octet (#xFF)");
    t = "a: \x01\n";
    load_fails(t, strlen(t), -EINVAL, "t.yaml:1:4: control characters are not allowed (#x1)");
}

static void test_refused_constructs(void **state)
{
    (void)state;
    const char *t = "a: &x 1\nb: *x\n";
    load_fails(t, strlen(t), -EINVAL,
               "t.yaml:1:4: anchors and aliases (&name, *name) are not supported; write the "
               "value out");
    t = "base: &b {x: 1}\n";
    load_fails(t, strlen(t), -EINVAL,
               "t.yaml:1:7: anchors and aliases (&name, *name) are not supported; write the "
               "value out");
    t = "a: [&s x]\n";
    load_fails(t, strlen(t), -EINVAL,
               "t.yaml:1:5: anchors and aliases (&name, *name) are not supported; write the "
               "value out");
    t = "a: 1\nb: *x\n"; /* an alias without its anchor is libyaml's to refuse, or ours */
    struct fl_yaml_doc *doc = NULL;
    char err[512];
    assert_int_equal(fl_yaml_load_buffer("t.yaml", t, strlen(t), &doc, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "t.yaml:2:4: "));
    assert_null(doc);
    t = "a: !!str 1\n";
    load_fails(t, strlen(t), -EINVAL, "t.yaml:1:4: tags (!name) are not supported");
    t = "a: !custom {x: 1}\n";
    load_fails(t, strlen(t), -EINVAL, "t.yaml:1:4: tags (!name) are not supported");
    t = "? [a, b]\n: c\n";
    load_fails(t, strlen(t), -EINVAL, "t.yaml:1:3: a key must be a single value, not a list");
    t = "{a: 1}: 2\n";
    load_fails(t, strlen(t), -EINVAL, "t.yaml:1:1: a key must be a single value, not a mapping");
    t = "a: 1\n---\nb: 2\n";
    load_fails(t, strlen(t), -EINVAL,
               "t.yaml:2:1: a second document; a faultline file holds exactly one (remove this "
               "'---' or split the file)");
}

static char *nested(size_t depth)
{
    char *t = malloc(depth * 2 + 1);
    assert_non_null(t);
    memset(t, '[', depth);
    memset(t + depth, ']', depth);
    t[depth * 2] = '\0';
    return t;
}

static void test_depth_and_size_bounds(void **state)
{
    (void)state;
    char *t = nested(FL_YAML_MAX_DEPTH);
    struct fl_yaml_doc *doc = load_ok(t);
    fl_yaml_free(&doc);
    free(t);

    t = nested(FL_YAML_MAX_DEPTH + 1);
    load_fails(t, strlen(t), -EINVAL, "t.yaml:1:65: nested more than 64 levels deep");
    free(t);
    t = nested(100000); /* stops at the bound, however deep it goes */
    load_fails(t, strlen(t), -EINVAL, "t.yaml:1:65: nested more than 64 levels deep");
    free(t);
    const char *m = "a:\n b:\n  c:\n   d: {e: {f: [[[1]]]}}\n";
    doc = load_ok(m);
    fl_yaml_free(&doc);

    /* too many values */
    size_t n = FL_YAML_MAX_NODES + 1, len = 1 + 2 * n;
    t = malloc(len + 1);
    assert_non_null(t);
    t[0] = '[';
    for (size_t i = 0; i < n; i++) {
        t[1 + 2 * i] = '0';
        t[2 + 2 * i] = ',';
    }
    t[len - 1] = ']';
    t[len] = '\0';
    load_fails(t, len, -EINVAL,
               "t.yaml:1:200000: too many values (more than 100000); is this the right file?");
    free(t);

    /* too many bytes: refused before parsing */
    len = (size_t)FL_YAML_MAX_BYTES + 1;
    t = malloc(len);
    assert_non_null(t);
    memset(t, '#', len);
    load_fails(t, len, -EFBIG, "t.yaml: over 4 MiB; is this the right file?");
    free(t);
}

static char dir[64], path[128];

/* A fresh directory for the file tests, removed even when one fails. */
static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/yamldoc_test.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/x.yaml", dir);
    return 0;
}

static int remove_dir(void **state)
{
    (void)state;
    unlink(path);
    return rmdir(dir);
}

static void test_load_file(void **state)
{
    (void)state;
    char err[512];
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("a: 1\nb: [x, y]\nc: {d: \n", f);
    fclose(f);

    struct fl_yaml_doc *doc = NULL;
    char want[600];
    assert_int_equal(fl_yaml_load_file(path, &doc, err, sizeof(err)), -EINVAL);
    snprintf(want, sizeof(want),
             "%s:4:1: did not find expected node content (while parsing a flow node at line 4, "
             "column 1)",
             path);
    assert_string_equal(err, want);
    assert_null(doc);

    f = fopen(path, "w");
    assert_non_null(f);
    fputs("a: 1\nb: [x, y]\n", f);
    fclose(f);
    assert_int_equal(fl_yaml_load_file(path, &doc, err, sizeof(err)), 0);
    assert_string_equal(doc->file, path);
    assert_string_equal(fl_yaml_get(doc->root, "b")->file, path);
    assert_int_equal(fl_yaml_get(doc->root, "b")->line, 2);
    fl_yaml_free(&doc);

    /* a file of several buffers' worth */
    f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 2000; i++)
        fprintf(f, "key_number_%d: value %d\n", i, i);
    fclose(f);
    assert_int_equal(fl_yaml_load_file(path, &doc, err, sizeof(err)), 0);
    assert_int_equal(doc->root->n_pairs, 2000);
    assert_int_equal(doc->root->pairs[1999].key->line, 2000);
    fl_yaml_free(&doc);

    /* over the limit, as a file */
    f = fopen(path, "w");
    assert_non_null(f);
    for (size_t i = 0; i < FL_YAML_MAX_BYTES / 64 + 1; i++)
        fprintf(f, "# %061zu\n", i); /* 64 bytes */
    fclose(f);
    assert_int_equal(fl_yaml_load_file(path, &doc, err, sizeof(err)), -EFBIG);
    snprintf(want, sizeof(want), "%s: over 4 MiB; is this the right file?", path);
    assert_string_equal(err, want);
    assert_null(doc);

    assert_int_equal(fl_yaml_load_file(dir, &doc, err, sizeof(err)), -EISDIR);
    snprintf(want, sizeof(want), "%s is a directory, not a regular file", dir);
    assert_string_equal(err, want);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(fl_yaml_load_file(path, &doc, err, sizeof(err)), -ENOENT);
    snprintf(want, sizeof(want), "%s: No such file or directory", path);
    assert_string_equal(err, want);
    assert_null(doc);
}

/* A FIFO (or a device) is refused by what it is, at once: opening a FIFO
 * for reading would wait for a writer forever. */
static void test_load_not_regular(void **state)
{
    (void)state;
    char err[512], want[600];
    struct fl_yaml_doc *doc = NULL;
    assert_int_equal(mkfifo(path, 0600), 0);
    alarm(5); /* a hang fails the test instead of stalling it */
    int rc = fl_yaml_load_file(path, &doc, err, sizeof(err));
    alarm(0);
    assert_int_equal(rc, -EINVAL);
    snprintf(want, sizeof(want), "%s is a FIFO, not a regular file", path);
    assert_string_equal(err, want);
    assert_null(doc);

    alarm(5);
    rc = fl_yaml_load_file("/dev/null", &doc, err, sizeof(err));
    alarm(0);
    assert_int_equal(rc, -EINVAL);
    assert_string_equal(err, "/dev/null is a character device, not a regular file");
    assert_null(doc);

    /* a symbolic link to a regular file is that file */
    char link[160];
    snprintf(link, sizeof(link), "%s/link.yaml", dir);
    assert_int_equal(unlink(path), 0);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("a: 1\n", f);
    fclose(f);
    assert_int_equal(symlink(path, link), 0);
    rc = fl_yaml_load_file(link, &doc, err, sizeof(err));
    unlink(link);
    assert_int_equal(rc, 0);
    assert_non_null(fl_yaml_get(doc->root, "a"));
    fl_yaml_free(&doc);
}

static void test_check_keys(void **state)
{
    (void)state;
    static const char *const known[] = {"protected_processes", "fill_paths", "max_fill", "lease",
                                        NULL};
    char err[512];
    struct fl_yaml_doc *doc = load_ok("lease: 5s\nmax_fill: 90%\n");
    assert_int_equal(fl_yaml_check_keys(doc->root, known, err, sizeof(err)), 0);
    fl_yaml_free(&doc);

    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        {"lease: 5s\n  \nprotcted_processes: [a]\n",
         "t.yaml:3:1: unknown key 'protcted_processes'; did you mean 'protected_processes'?"},
        {"fill_pahts: []\n", "t.yaml:1:1: unknown key 'fill_pahts'; did you mean 'fill_paths'?"},
        {"lese: 1s\n", "t.yaml:1:1: unknown key 'lese'; did you mean 'lease'?"},
        {"Lease: 1s\n", "t.yaml:1:1: unknown key 'Lease'; did you mean 'lease'?"},
        {"maxfill: 1%\n", "t.yaml:1:1: unknown key 'maxfill'; did you mean 'max_fill'?"},
        {"colour: red\n",
         "t.yaml:1:1: unknown key 'colour'; known keys here: protected_processes, fill_paths, "
         "max_fill, lease"},
        {"x: 1\n", "t.yaml:1:1: unknown key 'x'; known keys here: protected_processes, fill_paths, "
                   "max_fill, lease"},
        /* the first unknown key in file order */
        {"lease: 1s\nfoo: 1\nlese: 2\n",
         "t.yaml:2:1: unknown key 'foo'; known keys here: protected_processes, fill_paths, "
         "max_fill, lease"},
        {"\"a\\x01b\": 1\n",
         "t.yaml:1:1: unknown key 'a?b'; known keys here: protected_processes, fill_paths, "
         "max_fill, lease"},
        {"[lease]\n", "t.yaml:1:1: expected a mapping, found a list"},
        {"lease\n", "t.yaml:1:1: expected a mapping, found 'lease'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        doc = load_ok(cases[i].text);
        assert_int_equal(fl_yaml_check_keys(doc->root, known, err, sizeof(err)), -EINVAL);
        assert_string_equal(err, cases[i].want);
        fl_yaml_free(&doc);
    }
    /* a very long unknown key: no suggestion, and the message stays bounded */
    char longkey[300];
    memset(longkey, 'z', 200);
    memcpy(longkey + 200, ": 1\n", 5);
    doc = load_ok(longkey);
    assert_int_equal(fl_yaml_check_keys(doc->root, known, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "zzz...'; known keys here"));
    fl_yaml_free(&doc);
}

static void test_expect(void **state)
{
    (void)state;
    char err[512];
    struct fl_yaml_doc *doc = load_ok("s: x\nl: [1]\nm: {a: 1}\nn:\n");
    const struct fl_yaml_node *s = fl_yaml_get(doc->root, "s"), *l = fl_yaml_get(doc->root, "l"),
                              *m = fl_yaml_get(doc->root, "m"), *n = fl_yaml_get(doc->root, "n");
    assert_int_equal(fl_yaml_expect(s, FL_YAML_SCALAR, err, sizeof(err)), 0);
    assert_int_equal(fl_yaml_expect(l, FL_YAML_SEQUENCE, err, sizeof(err)), 0);
    assert_int_equal(fl_yaml_expect(m, FL_YAML_MAPPING, err, sizeof(err)), 0);
    assert_int_equal(fl_yaml_expect(s, FL_YAML_SEQUENCE, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "t.yaml:1:4: expected a list, found 'x'");
    assert_int_equal(fl_yaml_expect(l, FL_YAML_MAPPING, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "t.yaml:2:4: expected a mapping, found a list");
    assert_int_equal(fl_yaml_expect(m, FL_YAML_SCALAR, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "t.yaml:3:4: expected a single value, found a mapping");
    assert_int_equal(fl_yaml_expect(n, FL_YAML_SEQUENCE, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "t.yaml:4:3: expected a list, found nothing");
    assert_int_equal(fl_yaml_errorf(m, err, sizeof(err), "custom %d", 7), -EINVAL);
    assert_string_equal(err, "t.yaml:3:4: custom 7");
    /* a short buffer is cut, never overrun */
    char tiny[8];
    assert_int_equal(fl_yaml_expect(l, FL_YAML_MAPPING, tiny, sizeof(tiny)), -EINVAL);
    assert_string_equal(tiny, "t.yaml:");
    fl_yaml_free(&doc);
}

/* One accessor call on the value of key "v" in text. */
enum acc { STRING, BOOL, UINT, DURATION, SIZE };

static int call(enum acc a, const char *text, void *out, char *err, size_t errlen)
{
    struct fl_yaml_doc *doc = load_ok(text);
    const struct fl_yaml_node *v = fl_yaml_get(doc->root, "v");
    assert_non_null(v);
    int rc = -1;
    switch (a) {
    case STRING: {
        const char *s = NULL;
        rc = fl_yaml_string(v, &s, err, errlen);
        if (rc == 0)
            snprintf(out, 64, "%s", s);
        break;
    }
    case BOOL:
        rc = fl_yaml_bool(v, out, err, errlen);
        break;
    case UINT:
        rc = fl_yaml_uint(v, 1, 1000, out, err, errlen);
        break;
    case DURATION:
        rc = fl_yaml_duration(v, out, err, errlen);
        break;
    case SIZE:
        rc = fl_yaml_size(v, out, err, errlen);
        break;
    }
    fl_yaml_free(&doc);
    return rc;
}

static void expect_fail(enum acc a, const char *text, int want_rc, const char *want)
{
    union {
        char s[64];
        bool b;
        uint64_t u;
        struct fl_size z;
    } out, before;
    memset(&out, 0x5a, sizeof(out));
    before = out;
    char err[512] = "";
    int rc = call(a, text, &out, err, sizeof(err));
    if (rc != want_rc || strcmp(err, want) != 0)
        fail_msg("%s: got %d '%s', want %d '%s'", text, rc, err, want_rc, want);
    assert_memory_equal(&out, &before, sizeof(out)); /* untouched */
}

static void test_string(void **state)
{
    (void)state;
    char out[64], err[512];
    assert_int_equal(call(STRING, "v: nginx\n", out, err, sizeof(err)), 0);
    assert_string_equal(out, "nginx");
    assert_int_equal(call(STRING, "v: \"with spaces: and colon\"\n", out, err, sizeof(err)), 0);
    assert_string_equal(out, "with spaces: and colon");
    assert_int_equal(call(STRING, "v: \"null\"\n", out, err, sizeof(err)), 0);
    assert_string_equal(out, "null");
    assert_int_equal(call(STRING, "v: 10.0.0.1\n", out, err, sizeof(err)), 0);
    assert_string_equal(out, "10.0.0.1");
    assert_int_equal(call(STRING, "v: héllo\n", out, err, sizeof(err)), 0);
    assert_string_equal(out, "héllo");

    expect_fail(STRING, "v:\n", -EINVAL, "t.yaml:1:3: expected a value, found nothing");
    expect_fail(STRING, "v: ~\n", -EINVAL, "t.yaml:1:4: expected a value, found nothing");
    expect_fail(STRING, "v: ''\n", -EINVAL, "t.yaml:1:4: expected a value, found an empty string");
    expect_fail(STRING, "v: [a]\n", -EINVAL, "t.yaml:1:4: expected a value, found a list");
    expect_fail(STRING, "v: {a: 1}\n", -EINVAL, "t.yaml:1:4: expected a value, found a mapping");
    expect_fail(STRING, "v: \"a\\tb\"\n", -EINVAL,
                "t.yaml:1:4: the value holds a control character (byte 2); control characters "
                "are not allowed");
    expect_fail(STRING, "v: \"ab\\0\"\n", -EINVAL,
                "t.yaml:1:4: the value holds a control character (byte 3); control characters "
                "are not allowed");
    expect_fail(STRING, "v: \"\\e[31m\"\n", -EINVAL,
                "t.yaml:1:4: the value holds a control character (byte 1); control characters "
                "are not allowed");
    expect_fail(STRING, "v: \"x\\u009b\"\n", -EINVAL, /* C1: a terminal's CSI */
                "t.yaml:1:4: the value holds a control character (byte 2); control characters "
                "are not allowed");
    expect_fail(STRING, "v: |\n  two\n  lines\n", -EINVAL,
                "t.yaml:1:4: the value holds a control character (byte 4); control characters "
                "are not allowed");
}

static void test_bool(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool value;
    } good[] = {
        {"v: true\n", true},   {"v: yes\n", true}, {"v: True\n", true},   {"v: YES\n", true},
        {"v: false\n", false}, {"v: no\n", false}, {"v: False\n", false}, {"v: \"no\"\n", false},
    };
    char err[512];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        bool b = !good[i].value;
        assert_int_equal(call(BOOL, good[i].text, &b, err, sizeof(err)), 0);
        assert_int_equal(b, good[i].value);
    }
    expect_fail(BOOL, "v: 1\n", -EINVAL, "t.yaml:1:4: expected true or false, found '1'");
    expect_fail(BOOL, "v: on\n", -EINVAL, "t.yaml:1:4: expected true or false, found 'on'");
    expect_fail(BOOL, "v: truee\n", -EINVAL, "t.yaml:1:4: expected true or false, found 'truee'");
    expect_fail(BOOL, "v:\n", -EINVAL, "t.yaml:1:3: expected true or false, found nothing");
    expect_fail(BOOL, "v: [true]\n", -EINVAL, "t.yaml:1:4: expected true or false, found a list");
}

static void test_uint(void **state)
{
    (void)state;
    char err[512];
    uint64_t v = 0;
    assert_int_equal(call(UINT, "v: 1\n", &v, err, sizeof(err)), 0);
    assert_int_equal(v, 1);
    assert_int_equal(call(UINT, "v: 1000\n", &v, err, sizeof(err)), 0);
    assert_int_equal(v, 1000);
    assert_int_equal(call(UINT, "v: 0042\n", &v, err, sizeof(err)), 0);
    assert_int_equal(v, 42);
    assert_int_equal(call(UINT, "v: \"7\"\n", &v, err, sizeof(err)), 0);
    assert_int_equal(v, 7);

    static const char what[] = "a whole number from 1 to 1000";
    char want[256];
    static const char *const bad[] = {"-1", "+5", " 5", "5x", "0x10", "1e3", "1.5", "five"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[64];
        snprintf(text, sizeof(text), "v: \"%s\"\n", bad[i]);
        snprintf(want, sizeof(want), "t.yaml:1:4: expected %s, found '%s'", what, bad[i]);
        expect_fail(UINT, text, -EINVAL, want);
    }
    snprintf(want, sizeof(want), "t.yaml:1:3: expected %s, found nothing", what);
    expect_fail(UINT, "v:\n", -EINVAL, want);
    snprintf(want, sizeof(want), "t.yaml:1:4: '0' is out of range: expected %s", what);
    expect_fail(UINT, "v: 0\n", -ERANGE, want);
    snprintf(want, sizeof(want), "t.yaml:1:4: '1001' is out of range: expected %s", what);
    expect_fail(UINT, "v: 1001\n", -ERANGE, want);
    snprintf(want, sizeof(want),
             "t.yaml:1:4: '99999999999999999999999' is out of range: expected %s", what);
    expect_fail(UINT, "v: 99999999999999999999999\n", -ERANGE, want);

    /* the full range */
    struct fl_yaml_doc *doc = load_ok("v: 18446744073709551615\nw: 18446744073709551616\n");
    assert_int_equal(fl_yaml_uint(fl_yaml_get(doc->root, "v"), 0, UINT64_MAX, &v, err, sizeof(err)),
                     0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(fl_yaml_uint(fl_yaml_get(doc->root, "w"), 0, UINT64_MAX, &v, err, sizeof(err)),
                     -ERANGE);
    fl_yaml_free(&doc);
}

static void test_duration(void **state)
{
    (void)state;
    char err[512];
    uint64_t ms = 0;
    assert_int_equal(call(DURATION, "v: 250ms\n", &ms, err, sizeof(err)), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(call(DURATION, "v: 1m30s\n", &ms, err, sizeof(err)), 0);
    assert_int_equal(ms, 90000);
    assert_int_equal(call(DURATION, "v: 0s\n", &ms, err, sizeof(err)), 0);
    assert_int_equal(ms, 0);
    expect_fail(DURATION, "v: 5\n", -EINVAL,
                "t.yaml:1:4: expected a duration like 250ms, 5s, 2m or 1h, found '5'");
    expect_fail(DURATION, "v: 5 s\n", -EINVAL,
                "t.yaml:1:4: expected a duration like 250ms, 5s, 2m or 1h, found '5 s'");
    expect_fail(DURATION, "v:\n", -EINVAL,
                "t.yaml:1:3: expected a duration like 250ms, 5s, 2m or 1h, found nothing");
    expect_fail(DURATION, "v: [5s]\n", -EINVAL,
                "t.yaml:1:4: expected a duration like 250ms, 5s, 2m or 1h, found a list");
    expect_fail(DURATION, "v: \"5s\\0junk\"\n", -EINVAL,
                "t.yaml:1:4: the value holds a control character (byte 3); control characters "
                "are not allowed");
    expect_fail(DURATION, "v: 9999999999999999h\n", -ERANGE,
                "t.yaml:1:4: duration '9999999999999999h' is too long");
}

static void test_size(void **state)
{
    (void)state;
    char err[512];
    struct fl_size s;
    assert_int_equal(call(SIZE, "v: 64MiB\n", &s, err, sizeof(err)), 0);
    assert_false(s.is_percent);
    assert_true(s.bytes == 64ull << 20);
    assert_int_equal(call(SIZE, "v: 95%\n", &s, err, sizeof(err)), 0);
    assert_true(s.is_percent);
    assert_true(s.percent == 95.0);
    assert_int_equal(call(SIZE, "v: 4096\n", &s, err, sizeof(err)), 0);
    assert_true(s.bytes == 4096);
    expect_fail(SIZE, "v: 64MB\n", -EINVAL,
                "t.yaml:1:4: expected a size like 512MiB, 2GiB or 90%, found '64MB'");
    expect_fail(SIZE, "v:\n", -EINVAL,
                "t.yaml:1:3: expected a size like 512MiB, 2GiB or 90%, found nothing");
    expect_fail(SIZE, "v: {a: 1}\n", -EINVAL,
                "t.yaml:1:4: expected a size like 512MiB, 2GiB or 90%, found a mapping");
    expect_fail(SIZE, "v: 150%\n", -ERANGE,
                "t.yaml:1:4: percentage '150%' is out of range: expected more than 0% and at "
                "most 100%");
    expect_fail(SIZE, "v: 0%\n", -ERANGE,
                "t.yaml:1:4: percentage '0%' is out of range: expected more than 0% and at most "
                "100%");
    expect_fail(SIZE, "v: 99999999999TiB\n", -ERANGE,
                "t.yaml:1:4: size '99999999999TiB' is too large");
}

static void test_strings(void **state)
{
    (void)state;
    char err[512];
    const char *out[4] = {NULL, NULL, NULL, NULL};
    size_t n = 99;
    struct fl_yaml_doc *doc = load_ok("a: [sshd, \"systemd-journald\", cron]\n"
                                      "b: []\n"
                                      "c:\n  - x\n  - y\n  - z\n  - w\n  - v\n"
                                      "d: [x, [y]]\n"
                                      "e: [x, \"\"]\n"
                                      "f: sshd\n"
                                      "g: [x, \"\\x07\"]\n");
    const struct fl_yaml_node *r = doc->root;
    assert_int_equal(fl_yaml_strings(fl_yaml_get(r, "a"), out, 4, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 3);
    assert_string_equal(out[0], "sshd");
    assert_string_equal(out[1], "systemd-journald");
    assert_string_equal(out[2], "cron");
    assert_int_equal(fl_yaml_strings(fl_yaml_get(r, "b"), out, 4, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 0);

    n = 99;
    out[0] = NULL;
    assert_int_equal(fl_yaml_strings(fl_yaml_get(r, "c"), out, 4, &n, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "t.yaml:4:3: too many entries (5): at most 4 are allowed");
    assert_int_equal(fl_yaml_strings(fl_yaml_get(r, "d"), out, 4, &n, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "t.yaml:9:8: expected a value, found a list");
    assert_int_equal(fl_yaml_strings(fl_yaml_get(r, "e"), out, 4, &n, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "t.yaml:10:8: expected a value, found an empty string");
    assert_int_equal(fl_yaml_strings(fl_yaml_get(r, "f"), out, 4, &n, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "t.yaml:11:4: expected a list, found 'sshd'");
    assert_int_equal(fl_yaml_strings(fl_yaml_get(r, "g"), out, 4, &n, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "t.yaml:12:8: the value holds a control character (byte 1); control "
                             "characters are not allowed");
    assert_int_equal(n, 99);
    assert_null(out[0]);
    fl_yaml_free(&doc);
}

static void test_long_values_are_cut_in_messages(void **state)
{
    (void)state;
    char text[400], err[512];
    memcpy(text, "v: ", 3);
    memset(text + 3, 'x', 300);
    memcpy(text + 303, "\n", 2);
    uint64_t ms;
    assert_int_equal(call(DURATION, text, &ms, err, sizeof(err)), -EINVAL);
    assert_true(strlen(err) < 160);
    assert_non_null(strstr(err, "xxx...'"));
    /* a cut never splits a UTF-8 character */
    char u[400];
    size_t used = 3;
    memcpy(u, "v: ", 3);
    for (int i = 0; i < 40; i++) {
        memcpy(u + used, "é", 2);
        used += 2;
    }
    memcpy(u + used, "\n", 2);
    assert_int_equal(call(DURATION, u, &ms, err, sizeof(err)), -EINVAL);
    const char *cut = strstr(err, "...'");
    assert_non_null(cut);
    assert_true((unsigned char)cut[-2] == 0xc3 && (unsigned char)cut[-1] == 0xa9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_and_positions),
        cmocka_unit_test(test_empty_documents),
        cmocka_unit_test(test_null_and_quotes),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_refused_constructs),
        cmocka_unit_test(test_depth_and_size_bounds),
        cmocka_unit_test_setup_teardown(test_load_file, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_load_not_regular, make_dir, remove_dir),
        cmocka_unit_test(test_check_keys),
        cmocka_unit_test(test_expect),
        cmocka_unit_test(test_string),
        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_uint),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_size),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_long_values_are_cut_in_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
