/* A YAML file as a small tree, for the experiment loader and the agent's
 * config: mappings (ordered, no duplicate keys), sequences and scalars, each
 * with its line and column. Typed accessors turn a node into a value or into
 * an error a person can act on, always as "FILE:LINE:COL: message".
 *
 * Deliberately small: one document per file; no anchors, aliases or tags;
 * keys are single values; depth, node count and file size are bounded. */
#ifndef FL_COMMON_YAMLDOC_H
#define FL_COMMON_YAMLDOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/units.h"

#define FL_YAML_MAX_DEPTH 64         /* nested lists and mappings */
#define FL_YAML_MAX_NODES 100000     /* keys count as nodes */
#define FL_YAML_MAX_BYTES (4u << 20) /* a file or buffer */

enum fl_yaml_kind {
    FL_YAML_SCALAR,
    FL_YAML_SEQUENCE,
    FL_YAML_MAPPING,
};

struct fl_yaml_pair;

struct fl_yaml_node {
    enum fl_yaml_kind kind;
    const char *file;   /* the document's name, for messages */
    unsigned line, col; /* 1-based */

    /* FL_YAML_SCALAR: text is NUL-terminated, but may hold a NUL itself
     * ("\0" in double quotes): len is the real length. */
    char *text;
    size_t len;
    bool quoted; /* '...' or "..." or a block scalar: never null */

    /* FL_YAML_SEQUENCE */
    struct fl_yaml_node **items;
    size_t n_items;

    /* FL_YAML_MAPPING, in file order; every key is a scalar */
    struct fl_yaml_pair *pairs;
    size_t n_pairs;
};

struct fl_yaml_pair {
    struct fl_yaml_node *key;
    struct fl_yaml_node *value;
};

struct fl_yaml_doc {
    char *file;
    struct fl_yaml_node *root; /* NULL for an empty file (nothing, or only comments) */
};

/* Reads and parses a whole file. name in messages is path as given. Blocking
 * I/O: for start-up and command-line tools, never on a running loop. Returns
 * 0 with *out set, or a negative errno with err filled ("FILE:LINE:COL: ..."
 * for YAML errors, "FILE: ..." when the file cannot be read). */
int fl_yaml_load_file(const char *path, struct fl_yaml_doc **out, char *err, size_t errlen);

/* The same for text in memory; name stands for the file in messages. */
int fl_yaml_load_buffer(const char *name, const char *buf, size_t len, struct fl_yaml_doc **out,
                        char *err, size_t errlen);

/* Frees the tree and sets *doc to NULL. NULL or *doc NULL is a no-op. */
void fl_yaml_free(struct fl_yaml_doc **doc);

/* Fills err with "FILE:LINE:COL: " and the message; returns -EINVAL. For
 * errors that only the caller can see (a relative path, a missing key). */
int fl_yaml_errorf(const struct fl_yaml_node *n, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A plain (unquoted) empty scalar, "~" or "null": a key with no value. */
bool fl_yaml_is_null(const struct fl_yaml_node *n);

/* 0 when n is of that kind; otherwise -EINVAL with "expected a list",
 * "expected a mapping" or "expected a single value" (and what was found). */
int fl_yaml_expect(const struct fl_yaml_node *n, enum fl_yaml_kind kind, char *err, size_t errlen);

/* The value under key, or NULL when map is not a mapping or has no such key. */
const struct fl_yaml_node *fl_yaml_get(const struct fl_yaml_node *map, const char *key);

/* Checks that map is a mapping whose keys are all in known (NULL-terminated).
 * The first unknown key gives "unknown key 'protcted_processes'; did you mean
 * 'protected_processes'?", or the list of known keys when none is close. */
int fl_yaml_check_keys(const struct fl_yaml_node *map, const char *const *known, char *err,
                       size_t errlen);

/* Typed values. Each returns 0 and writes its out-parameter only on success,
 * or -EINVAL (-ERANGE where noted) with err naming file, line and column. */

/* A non-empty single value without control characters (tab included). *out
 * points into the tree: it lives as long as the document. */
int fl_yaml_string(const struct fl_yaml_node *n, const char **out, char *err, size_t errlen);

/* true/false/yes/no, in any case. */
int fl_yaml_bool(const struct fl_yaml_node *n, bool *out, char *err, size_t errlen);

/* A decimal whole number from min to max (-ERANGE outside them). */
int fl_yaml_uint(const struct fl_yaml_node *n, uint64_t min, uint64_t max, uint64_t *out, char *err,
                 size_t errlen);

/* A duration (fl_parse_duration) in milliseconds. */
int fl_yaml_duration(const struct fl_yaml_node *n, uint64_t *ms, char *err, size_t errlen);

/* A size or a percentage (fl_parse_size). */
int fl_yaml_size(const struct fl_yaml_node *n, struct fl_size *out, char *err, size_t errlen);

/* A list of strings (each as fl_yaml_string), at most cap of them. out[i]
 * point into the tree; *count receives how many. An empty list is allowed. */
int fl_yaml_strings(const struct fl_yaml_node *n, const char **out, size_t cap, size_t *count,
                    char *err, size_t errlen);

#endif
