/* YAML into a tree, with positions, over libyaml's event parser.
 *
 * Events are turned into nodes with an explicit stack (no recursion while
 * parsing, so depth is a plain counter). Every node is attached to its parent
 * the moment it starts, so that on any error freeing the root frees all that
 * was built. A mapping's key is attached as a pair whose value is still NULL;
 * the next node completes the pair. Duplicate keys are found when a mapping
 * ends, by sorting its keys.
 *
 * What is refused, and why: anchors and aliases (a billion laughs, and values
 * that change in two places), tags (a tag changes a value's meaning and no
 * faultline file needs one), complex keys, more than one document. Positions
 * are libyaml's marks plus one: lines and columns count from 1, columns in
 * characters. */
#include "common/yamldoc.h"

#include "common/suggest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define SHOW_MAX 60 /* bytes of a value quoted back in a message */

/* ---- messages ----------------------------------------------------------- */

static int verrorf_at(const char *file, unsigned line, unsigned col, char *err, size_t errlen,
                      const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));

static int verrorf_at(const char *file, unsigned line, unsigned col, char *err, size_t errlen,
                      const char *fmt, va_list ap)
{
    if (err == NULL || errlen == 0)
        return -EINVAL;
    int n = snprintf(err, errlen, "%s:%u:%u: ", file, line, col);
    if (n >= 0 && (size_t)n < errlen)
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    return -EINVAL;
}

static int errorf_at(const char *file, unsigned line, unsigned col, char *err, size_t errlen,
                     const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int errorf_at(const char *file, unsigned line, unsigned col, char *err, size_t errlen,
                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = verrorf_at(file, line, col, err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

int fl_yaml_errorf(const struct fl_yaml_node *n, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = verrorf_at(n->file, n->line, n->col, err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

/* A value as it may be quoted back: control bytes become '?', and a long
 * value is cut (at a character boundary) with "...". */
static const char *show_text(const char *text, size_t len, char *buf, size_t buflen)
{
    size_t max = buflen - 4; /* room for "..." and NUL */
    size_t n = len;
    bool cut = false;
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80)
            n--; /* do not split a UTF-8 sequence */
        cut = true;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        buf[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (cut) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

static const char *show(const struct fl_yaml_node *n, char *buf, size_t buflen)
{
    return show_text(n->text, n->len, buf, buflen);
}

static const char *kind_name(enum fl_yaml_kind kind)
{
    switch (kind) {
    case FL_YAML_SCALAR:
        return "a single value";
    case FL_YAML_SEQUENCE:
        return "a list";
    case FL_YAML_MAPPING:
        return "a mapping";
    }
    return "something else";
}

/* ---- the tree ----------------------------------------------------------- */

static void free_node(struct fl_yaml_node *n)
{
    if (n == NULL)
        return;
    free(n->text);
    for (size_t i = 0; i < n->n_items; i++)
        free_node(n->items[i]); /* recursion is bounded by FL_YAML_MAX_DEPTH */
    free(n->items);
    for (size_t i = 0; i < n->n_pairs; i++) {
        free_node(n->pairs[i].key);
        free_node(n->pairs[i].value);
    }
    free(n->pairs);
    free(n);
}

void fl_yaml_free(struct fl_yaml_doc **doc)
{
    if (doc == NULL || *doc == NULL)
        return;
    free_node((*doc)->root);
    free((*doc)->file);
    free(*doc);
    *doc = NULL;
}

/* Grows *array (of size elements) to hold n + 1. */
static int grow(void **array, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 4;
    void *p = reallocarray(*array, ncap, size);
    if (p == NULL)
        return -ENOMEM;
    *array = p;
    *cap = ncap;
    return 0;
}

struct builder {
    struct fl_yaml_doc *doc;
    struct fl_yaml_node *stack[FL_YAML_MAX_DEPTH];
    size_t caps[FL_YAML_MAX_DEPTH]; /* allocated items or pairs of each open node */
    size_t depth;
    size_t nodes;
    char *err;
    size_t errlen;
};

static int refuse_at(struct builder *b, const yaml_mark_t *m, const char *msg)
{
    return errorf_at(b->doc->file, (unsigned)m->line + 1, (unsigned)m->column + 1, b->err,
                     b->errlen, "%s", msg);
}

/* Hands n to its parent (or makes it the root). On failure n is freed. */
static int attach(struct builder *b, struct fl_yaml_node *n)
{
    if (b->depth == 0) {
        if (b->doc->root != NULL) { /* not reached: second documents are refused earlier */
            int rc = errorf_at(n->file, n->line, n->col, b->err, b->errlen, "unexpected value");
            free_node(n);
            return rc;
        }
        b->doc->root = n;
        return 0;
    }
    struct fl_yaml_node *parent = b->stack[b->depth - 1];
    size_t *cap = &b->caps[b->depth - 1];
    if (parent->kind == FL_YAML_SEQUENCE) {
        if (grow((void **)&parent->items, cap, parent->n_items, sizeof(*parent->items)) < 0) {
            free_node(n);
            snprintf(b->err, b->errlen, "%s: out of memory", b->doc->file);
            return -ENOMEM;
        }
        parent->items[parent->n_items++] = n;
        return 0;
    }
    if (parent->n_pairs > 0 && parent->pairs[parent->n_pairs - 1].value == NULL) {
        parent->pairs[parent->n_pairs - 1].value = n;
        return 0;
    }
    if (n->kind != FL_YAML_SCALAR) {
        int rc = errorf_at(n->file, n->line, n->col, b->err, b->errlen,
                           "a key must be a single value, not %s", kind_name(n->kind));
        free_node(n);
        return rc;
    }
    if (grow((void **)&parent->pairs, cap, parent->n_pairs, sizeof(*parent->pairs)) < 0) {
        free_node(n);
        snprintf(b->err, b->errlen, "%s: out of memory", b->doc->file);
        return -ENOMEM;
    }
    parent->pairs[parent->n_pairs].key = n;
    parent->pairs[parent->n_pairs].value = NULL;
    parent->n_pairs++;
    return 0;
}

static struct fl_yaml_node *new_node(struct builder *b, enum fl_yaml_kind kind,
                                     const yaml_event_t *ev)
{
    struct fl_yaml_node *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return NULL;
    n->kind = kind;
    n->file = b->doc->file;
    n->line = (unsigned)ev->start_mark.line + 1;
    n->col = (unsigned)ev->start_mark.column + 1;
    return n;
}

/* Counts a node against the limit and refuses anchors and tags. */
static int admit(struct builder *b, const yaml_event_t *ev, const yaml_char_t *anchor,
                 const yaml_char_t *tag)
{
    if (anchor != NULL)
        return refuse_at(b, &ev->start_mark,
                         "anchors and aliases (&name, *name) are not supported; "
                         "write the value out");
    if (tag != NULL)
        return refuse_at(b, &ev->start_mark, "tags (!name) are not supported");
    if (++b->nodes > FL_YAML_MAX_NODES)
        return errorf_at(b->doc->file, (unsigned)ev->start_mark.line + 1,
                         (unsigned)ev->start_mark.column + 1, b->err, b->errlen,
                         "too many values (more than %d); is this the right file?",
                         FL_YAML_MAX_NODES);
    return 0;
}

static int on_scalar(struct builder *b, const yaml_event_t *ev)
{
    int rc = admit(b, ev, ev->data.scalar.anchor, ev->data.scalar.tag);
    if (rc < 0)
        return rc;
    struct fl_yaml_node *n = new_node(b, FL_YAML_SCALAR, ev);
    if (n != NULL) {
        n->len = ev->data.scalar.length;
        n->text = malloc(n->len + 1);
        if (n->text == NULL) {
            free(n);
            n = NULL;
        }
    }
    if (n == NULL) {
        snprintf(b->err, b->errlen, "%s: out of memory", b->doc->file);
        return -ENOMEM;
    }
    memcpy(n->text, ev->data.scalar.value, n->len);
    n->text[n->len] = '\0';
    n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
    return attach(b, n);
}

static int on_start(struct builder *b, const yaml_event_t *ev, enum fl_yaml_kind kind)
{
    const yaml_char_t *anchor, *tag;
    if (kind == FL_YAML_MAPPING) {
        anchor = ev->data.mapping_start.anchor;
        tag = ev->data.mapping_start.tag;
    } else {
        anchor = ev->data.sequence_start.anchor;
        tag = ev->data.sequence_start.tag;
    }
    int rc = admit(b, ev, anchor, tag);
    if (rc < 0)
        return rc;
    if (b->depth >= FL_YAML_MAX_DEPTH)
        return errorf_at(b->doc->file, (unsigned)ev->start_mark.line + 1,
                         (unsigned)ev->start_mark.column + 1, b->err, b->errlen,
                         "nested more than %d levels deep", FL_YAML_MAX_DEPTH);
    struct fl_yaml_node *n = new_node(b, kind, ev);
    if (n == NULL) {
        snprintf(b->err, b->errlen, "%s: out of memory", b->doc->file);
        return -ENOMEM;
    }
    rc = attach(b, n);
    if (rc < 0)
        return rc;
    b->stack[b->depth] = n;
    b->caps[b->depth] = 0;
    b->depth++;
    return 0;
}

struct key_ref {
    const char *text;
    size_t len;
    size_t index;
};

static int cmp_key_ref(const void *pa, const void *pb)
{
    const struct key_ref *a = pa, *b = pb;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->text, b->text, n);
    if (c != 0)
        return c;
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* The first key (in file order) that repeats an earlier one. */
static int check_duplicates(struct builder *b, const struct fl_yaml_node *map)
{
    if (map->n_pairs < 2)
        return 0;
    struct key_ref *refs = calloc(map->n_pairs, sizeof(*refs));
    if (refs == NULL) {
        snprintf(b->err, b->errlen, "%s: out of memory", b->doc->file);
        return -ENOMEM;
    }
    for (size_t i = 0; i < map->n_pairs; i++) {
        refs[i].text = map->pairs[i].key->text;
        refs[i].len = map->pairs[i].key->len;
        refs[i].index = i;
    }
    qsort(refs, map->n_pairs, sizeof(*refs), cmp_key_ref);
    size_t dup = SIZE_MAX, first = SIZE_MAX, run_start = 0;
    for (size_t i = 1; i < map->n_pairs; i++) {
        if (refs[i].len != refs[i - 1].len ||
            memcmp(refs[i].text, refs[i - 1].text, refs[i].len) != 0) {
            run_start = i;
            continue;
        }
        if (refs[i].index < dup) {
            dup = refs[i].index;
            first = refs[run_start].index;
        }
    }
    free(refs);
    if (dup == SIZE_MAX)
        return 0;
    const struct fl_yaml_node *k = map->pairs[dup].key, *f = map->pairs[first].key;
    char shown[SHOW_MAX + 4];
    return fl_yaml_errorf(k, b->err, b->errlen, "duplicate key '%s' (first at line %u, column %u)",
                          show(k, shown, sizeof(shown)), f->line, f->col);
}

static int on_end(struct builder *b)
{
    if (b->depth == 0) /* not reached: libyaml balances its events */
        return -EINVAL;
    struct fl_yaml_node *n = b->stack[--b->depth];
    if (n->kind == FL_YAML_MAPPING)
        return check_duplicates(b, n);
    return 0;
}

/* libyaml's reader reports a byte offset, not a mark. */
static void offset_to_mark(const char *buf, size_t len, size_t offset, yaml_mark_t *m)
{
    m->line = 0;
    m->column = 0;
    for (size_t i = 0; i < offset && i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == '\n') {
            m->line++;
            m->column = 0;
        } else if ((c & 0xc0) != 0x80) {
            m->column++;
        }
    }
}

/* The first byte of the character at a mark (0 past the end). */
static char char_at(const char *buf, size_t len, const yaml_mark_t *m)
{
    size_t i = 0, line = 0, col = 0;
    while (i < len && line < m->line)
        if (buf[i++] == '\n')
            line++;
    for (; i < len && buf[i] != '\n'; i++) {
        if (((unsigned char)buf[i] & 0xc0) == 0x80)
            continue;
        if (col++ == m->column)
            return buf[i];
    }
    return 0;
}

static int syntax_error(struct builder *b, const yaml_parser_t *p, const char *buf, size_t len)
{
    const char *problem = p->problem ? p->problem : "not valid YAML";
    switch (p->error) {
    case YAML_MEMORY_ERROR:
        snprintf(b->err, b->errlen, "%s: out of memory", b->doc->file);
        return -ENOMEM;
    case YAML_READER_ERROR: {
        yaml_mark_t m;
        offset_to_mark(buf, len, p->problem_offset, &m);
        if (p->problem_value >= 0)
            return errorf_at(b->doc->file, (unsigned)m.line + 1, (unsigned)m.column + 1, b->err,
                             b->errlen, "%s (#x%X)", problem, (unsigned)p->problem_value);
        return refuse_at(b, &m, problem);
    }
    default:
        break;
    }
    const yaml_mark_t *m = &p->problem_mark;
    const char *hint = char_at(buf, len, m) == '\t' ? "; indent with spaces, not tabs" : "";
    if (p->context != NULL)
        return errorf_at(b->doc->file, (unsigned)m->line + 1, (unsigned)m->column + 1, b->err,
                         b->errlen, "%s (%s at line %u, column %u)%s", problem, p->context,
                         (unsigned)p->context_mark.line + 1, (unsigned)p->context_mark.column + 1,
                         hint);
    return errorf_at(b->doc->file, (unsigned)m->line + 1, (unsigned)m->column + 1, b->err,
                     b->errlen, "%s%s", problem, hint);
}

static int run_parser(struct builder *b, yaml_parser_t *parser, const char *buf, size_t len)
{
    int documents = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(parser, &ev))
            return syntax_error(b, parser, buf, len);
        int rc = 0;
        bool done = false;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++documents > 1)
                rc = refuse_at(b, &ev.start_mark,
                               "a second document; a faultline file holds exactly one "
                               "(remove this '---' or split the file)");
            break;
        case YAML_ALIAS_EVENT:
            rc = refuse_at(b, &ev.start_mark,
                           "anchors and aliases (&name, *name) are not supported; "
                           "write the value out");
            break;
        case YAML_SCALAR_EVENT:
            rc = on_scalar(b, &ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
            rc = on_start(b, &ev, FL_YAML_SEQUENCE);
            break;
        case YAML_MAPPING_START_EVENT:
            rc = on_start(b, &ev, FL_YAML_MAPPING);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            rc = on_end(b);
            break;
        default: /* stream start, document end, nothing to do */
            break;
        }
        yaml_event_delete(&ev);
        if (rc < 0)
            return rc;
        if (done)
            return 0;
    }
}

int fl_yaml_load_buffer(const char *name, const char *buf, size_t len, struct fl_yaml_doc **out,
                        char *err, size_t errlen)
{
    if (len > FL_YAML_MAX_BYTES) {
        snprintf(err, errlen, "%s: over %u MiB; is this the right file?", name,
                 FL_YAML_MAX_BYTES >> 20);
        return -EFBIG;
    }
    struct fl_yaml_doc *doc = calloc(1, sizeof(*doc));
    if (doc == NULL || (doc->file = strdup(name)) == NULL) {
        free(doc);
        snprintf(err, errlen, "%s: out of memory", name);
        return -ENOMEM;
    }
    struct builder *b = calloc(1, sizeof(*b));
    yaml_parser_t parser;
    if (b == NULL || !yaml_parser_initialize(&parser)) {
        free(b);
        fl_yaml_free(&doc);
        snprintf(err, errlen, "%s: out of memory", name);
        return -ENOMEM;
    }
    b->doc = doc;
    b->err = err;
    b->errlen = errlen;
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    int rc = run_parser(b, &parser, buf, len);
    yaml_parser_delete(&parser);
    free(b);
    if (rc < 0) {
        fl_yaml_free(&doc);
        return rc;
    }
    *out = doc;
    return 0;
}

/* "a FIFO", "a directory", ...: what a file that is not a regular one is */
static const char *file_kind(mode_t mode)
{
    return S_ISDIR(mode)    ? "a directory"
           : S_ISFIFO(mode) ? "a FIFO"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISSOCK(mode) ? "a socket"
                            : NULL;
}

/* A regular file, open for reading; refused by what it is otherwise. The
 * open does not wait (O_NONBLOCK): a FIFO would block until a writer came,
 * and a device could do anything. The check is on the file opened, not on the
 * name, so nothing can be swapped in between. */
static int open_regular(const char *path, FILE **out, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
    } else if (!S_ISREG(st.st_mode)) {
        const char *kind = file_kind(st.st_mode);
        if (kind != NULL)
            snprintf(err, errlen, "%s is %s, not a regular file", path, kind);
        else
            snprintf(err, errlen, "%s is not a regular file", path);
        rc = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
    } else {
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
            rc = -errno;
            snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        }
    }
    FILE *f = rc == 0 ? fdopen(fd, "r") : NULL;
    if (rc == 0 && f == NULL) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
    }
    if (rc < 0) {
        close(fd);
        return rc;
    }
    *out = f;
    return 0;
}

int fl_yaml_load_file(const char *path, struct fl_yaml_doc **out, char *err, size_t errlen)
{
    FILE *f = NULL;
    int e = open_regular(path, &f, err, errlen);
    if (e < 0)
        return e;
    /* read to the end, whatever the size said: it may change */
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    int rc = buf == NULL ? -ENOMEM : 0;
    while (rc == 0 && len <= FL_YAML_MAX_BYTES) {
        if (len == cap) {
            char *nbuf = realloc(buf, cap * 2);
            if (nbuf == NULL) {
                rc = -ENOMEM;
                break;
            }
            buf = nbuf;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                rc = -EIO;
            break;
        }
    }
    fclose(f);
    if (rc == 0 && len > FL_YAML_MAX_BYTES) {
        snprintf(err, errlen, "%s: over %u MiB; is this the right file?", path,
                 FL_YAML_MAX_BYTES >> 20);
        rc = -EFBIG;
    } else if (rc < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
    } else {
        rc = fl_yaml_load_buffer(path, buf, len, out, err, errlen);
    }
    free(buf);
    return rc;
}

/* ---- access ------------------------------------------------------------- */

bool fl_yaml_is_null(const struct fl_yaml_node *n)
{
    if (n == NULL || n->kind != FL_YAML_SCALAR || n->quoted)
        return false;
    return n->len == 0 || strcmp(n->text, "~") == 0 || strcmp(n->text, "null") == 0 ||
           strcmp(n->text, "Null") == 0 || strcmp(n->text, "NULL") == 0;
}

/* "nothing", "a list", "a mapping" or the value itself, quoted. */
static const char *found(const struct fl_yaml_node *n, char *buf, size_t buflen)
{
    if (n->kind != FL_YAML_SCALAR)
        return kind_name(n->kind);
    if (fl_yaml_is_null(n))
        return "nothing";
    char shown[SHOW_MAX + 4];
    snprintf(buf, buflen, "'%s'", show(n, shown, sizeof(shown)));
    return buf;
}

int fl_yaml_expect(const struct fl_yaml_node *n, enum fl_yaml_kind kind, char *err, size_t errlen)
{
    if (n->kind == kind)
        return 0;
    char buf[SHOW_MAX + 8];
    return fl_yaml_errorf(n, err, errlen, "expected %s, found %s", kind_name(kind),
                          found(n, buf, sizeof(buf)));
}

const struct fl_yaml_node *fl_yaml_get(const struct fl_yaml_node *map, const char *key)
{
    if (map == NULL || map->kind != FL_YAML_MAPPING)
        return NULL;
    size_t klen = strlen(key);
    for (size_t i = 0; i < map->n_pairs; i++) {
        const struct fl_yaml_node *k = map->pairs[i].key;
        if (k->len == klen && memcmp(k->text, key, klen) == 0)
            return map->pairs[i].value;
    }
    return NULL;
}

int fl_yaml_check_keys(const struct fl_yaml_node *map, const char *const *known, char *err,
                       size_t errlen)
{
    int rc = fl_yaml_expect(map, FL_YAML_MAPPING, err, errlen);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < map->n_pairs; i++) {
        const struct fl_yaml_node *k = map->pairs[i].key;
        struct fl_near near;
        fl_near_init(&near, k->text, k->len, false);
        bool ok = false;
        for (size_t j = 0; known[j] != NULL; j++) {
            size_t kl = strlen(known[j]);
            if (k->len == kl && memcmp(k->text, known[j], kl) == 0) {
                ok = true;
                break;
            }
            fl_near_consider(&near, known[j]);
        }
        if (ok)
            continue;
        char shown[SHOW_MAX + 4];
        show(k, shown, sizeof(shown));
        const char *best = fl_near_best(&near);
        if (best != NULL)
            return fl_yaml_errorf(k, err, errlen, "unknown key '%s'; did you mean '%s'?", shown,
                                  best);
        char list[512];
        size_t used = 0;
        list[0] = '\0';
        for (size_t j = 0; known[j] != NULL && used < sizeof(list); j++) {
            int w = snprintf(list + used, sizeof(list) - used, "%s%s", j ? ", " : "", known[j]);
            if (w < 0)
                break;
            used += (size_t)w;
        }
        return fl_yaml_errorf(k, err, errlen, "unknown key '%s'; known keys here: %s", shown,
                              list[0] ? list : "(none)");
    }
    return 0;
}

/* The text of a single value, checked for NUL and control characters (C0,
 * DEL and C1: a value may end up in a log line or on a terminal). what names
 * the expected value for "expected W, found nothing". */
static int scalar_text(const struct fl_yaml_node *n, const char *what, const char **out, char *err,
                       size_t errlen)
{
    char buf[SHOW_MAX + 8];
    if (n->kind != FL_YAML_SCALAR || fl_yaml_is_null(n))
        return fl_yaml_errorf(n, err, errlen, "expected %s, found %s", what,
                              found(n, buf, sizeof(buf)));
    const unsigned char *t = (const unsigned char *)n->text;
    for (size_t i = 0; i < n->len; i++) {
        bool c1 = t[i] == 0xc2 && i + 1 < n->len && t[i + 1] >= 0x80 && t[i + 1] <= 0x9f;
        if (t[i] < 0x20 || t[i] == 0x7f || c1)
            return fl_yaml_errorf(n, err, errlen,
                                  "the value holds a control character (byte %zu); control "
                                  "characters are not allowed",
                                  i + 1);
    }
    *out = n->text;
    return 0;
}

int fl_yaml_string(const struct fl_yaml_node *n, const char **out, char *err, size_t errlen)
{
    const char *t;
    int rc = scalar_text(n, "a value", &t, err, errlen);
    if (rc < 0)
        return rc;
    if (*t == '\0')
        return fl_yaml_errorf(n, err, errlen, "expected a value, found an empty string");
    *out = t;
    return 0;
}

int fl_yaml_bool(const struct fl_yaml_node *n, bool *out, char *err, size_t errlen)
{
    static const char what[] = "true or false";
    const char *t;
    int rc = scalar_text(n, what, &t, err, errlen);
    if (rc < 0)
        return rc;
    if (strcasecmp(t, "true") == 0 || strcasecmp(t, "yes") == 0) {
        *out = true;
        return 0;
    }
    if (strcasecmp(t, "false") == 0 || strcasecmp(t, "no") == 0) {
        *out = false;
        return 0;
    }
    char buf[SHOW_MAX + 8];
    return fl_yaml_errorf(n, err, errlen, "expected %s, found %s", what,
                          found(n, buf, sizeof(buf)));
}

int fl_yaml_uint(const struct fl_yaml_node *n, uint64_t min, uint64_t max, uint64_t *out, char *err,
                 size_t errlen)
{
    char what[96];
    snprintf(what, sizeof(what), "a whole number from %llu to %llu", (unsigned long long)min,
             (unsigned long long)max);
    const char *t;
    int rc = scalar_text(n, what, &t, err, errlen);
    if (rc < 0)
        return rc;
    char buf[SHOW_MAX + 8];
    /* digits only: strtoull alone would take spaces, signs, "-1" as a huge number */
    bool digits = *t != '\0';
    for (const char *p = t; *p; p++)
        if (*p < '0' || *p > '9')
            digits = false;
    if (!digits)
        return fl_yaml_errorf(n, err, errlen, "expected %s, found %s", what,
                              found(n, buf, sizeof(buf)));
    errno = 0;
    char *end;
    unsigned long long v = strtoull(t, &end, 10);
    if (errno == ERANGE || *end != '\0' || v < min || v > max) {
        fl_yaml_errorf(n, err, errlen, "%s is out of range: expected %s",
                       found(n, buf, sizeof(buf)), what);
        return -ERANGE;
    }
    *out = (uint64_t)v;
    return 0;
}

int fl_yaml_duration(const struct fl_yaml_node *n, uint64_t *ms, char *err, size_t errlen)
{
    static const char what[] = "a duration like 250ms, 5s, 2m or 1h";
    const char *t;
    int rc = scalar_text(n, what, &t, err, errlen);
    if (rc < 0)
        return rc;
    uint64_t v;
    rc = fl_parse_duration(t, &v);
    char buf[SHOW_MAX + 8];
    if (rc == -ERANGE) {
        fl_yaml_errorf(n, err, errlen, "duration %s is too long", found(n, buf, sizeof(buf)));
        return rc;
    }
    if (rc < 0)
        return fl_yaml_errorf(n, err, errlen, "expected %s, found %s", what,
                              found(n, buf, sizeof(buf)));
    *ms = v;
    return 0;
}

int fl_yaml_size(const struct fl_yaml_node *n, struct fl_size *out, char *err, size_t errlen)
{
    static const char what[] = "a size like 512MiB, 2GiB or 90%";
    const char *t;
    int rc = scalar_text(n, what, &t, err, errlen);
    if (rc < 0)
        return rc;
    struct fl_size v;
    rc = fl_parse_size(t, &v);
    char buf[SHOW_MAX + 8];
    if (rc == -ERANGE) {
        if (n->len > 0 && t[n->len - 1] == '%')
            fl_yaml_errorf(n, err, errlen,
                           "percentage %s is out of range: expected more than 0%% and at most "
                           "100%%",
                           found(n, buf, sizeof(buf)));
        else
            fl_yaml_errorf(n, err, errlen, "size %s is too large", found(n, buf, sizeof(buf)));
        return rc;
    }
    if (rc < 0)
        return fl_yaml_errorf(n, err, errlen, "expected %s, found %s", what,
                              found(n, buf, sizeof(buf)));
    *out = v;
    return 0;
}

int fl_yaml_strings(const struct fl_yaml_node *n, const char **out, size_t cap, size_t *count,
                    char *err, size_t errlen)
{
    int rc = fl_yaml_expect(n, FL_YAML_SEQUENCE, err, errlen);
    if (rc < 0)
        return rc;
    if (n->n_items > cap)
        return fl_yaml_errorf(n, err, errlen, "too many entries (%zu): at most %zu are allowed",
                              n->n_items, cap);
    /* check everything before writing anything */
    for (size_t i = 0; i < n->n_items; i++) {
        const char *t;
        rc = fl_yaml_string(n->items[i], &t, err, errlen);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < n->n_items; i++)
        out[i] = n->items[i]->text;
    *count = n->n_items;
    return 0;
}
