/* Checked values out of the YAML tree, shared by the inventory loader
 * (inventory.c) and the experiment's sections (probes.c, faults.c,
 * objectives.c, experiment.c).
 *
 * Every function returns 0 or a negative errno with c->err filled: a YAML
 * problem as "FILE:LINE:COL: ..." (fl_yaml_errorf) and -EINVAL or -ERANGE,
 * running out of memory as "FILE: out of memory" and -ENOMEM. Out-parameters
 * are written only on success; a copied string belongs to the caller. */
#ifndef FL_CONTROLLER_EXPERIMENT_CHECK_H
#define FL_CONTROLLER_EXPERIMENT_CHECK_H

#include <stddef.h>
#include <stdint.h>

struct fl_near;
struct fl_yaml_node;

struct fl_check {
    char *err;
    size_t errlen;
    const char *path; /* the file being loaded, for "FILE: out of memory" */
};

/* Says "FILE: out of memory"; returns -ENOMEM. */
int fl_check_nomem(struct fl_check *c);

/* A copy of s. */
int fl_check_copy(struct fl_check *c, const char *s, char **out);

/* rel as seen from the directory of the file base: absolute paths and "~/"
 * are kept, others are joined to base's directory (when it has one). */
int fl_check_resolve(struct fl_check *c, const char *base, const char *rel, char **out);

/* "; did you mean 'x'?" into buf, or "". */
const char *fl_check_near_text(const struct fl_near *n, char *buf, size_t len);

/* The value of key in map; an error at map when it is missing. */
int fl_check_required(struct fl_check *c, const struct fl_yaml_node *map, const char *key,
                      const struct fl_yaml_node **out);

/* A name people type and the runner prints: letters, digits, '.', '_', '-'.
 * what names it in the message ("host name"). *out points into the tree. */
int fl_check_name(struct fl_check *c, const struct fl_yaml_node *n, const char *what,
                  const char **out);

/* A copy of the scalar n. */
int fl_check_string(struct fl_check *c, const struct fl_yaml_node *n, char **out);

/* A port, 1..65535. */
int fl_check_port(struct fl_check *c, const struct fl_yaml_node *n, uint16_t *out);

/* A duration of at least min ms. */
int fl_check_duration(struct fl_check *c, const struct fl_yaml_node *n, uint64_t min,
                      uint64_t *out);

/* An optional list: n NULL or null is an empty list; *count is its length. */
int fl_check_list(struct fl_check *c, const struct fl_yaml_node *n, size_t *count);

/* The required name of the idx-th probe or fault (what), unique among the
 * earlier ones, whose name nodes are in seen; copied to *out, and its node
 * kept in seen[idx] for later duplicate messages. */
int fl_check_unique_name(struct fl_check *c, const struct fl_yaml_node *n, const char *what,
                         const struct fl_yaml_node **seen, size_t idx, char **out);

#endif
