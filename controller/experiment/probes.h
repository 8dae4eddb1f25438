/* The experiment's probes: section, and references to its probes by name
 * (controller/experiment/check.h for c and the errors). */
#ifndef FL_CONTROLLER_EXPERIMENT_PROBES_H
#define FL_CONTROLLER_EXPERIMENT_PROBES_H

#include <stddef.h>

struct fl_experiment;
struct fl_check;
struct fl_yaml_node;

/* The probes: list (NULL or null: none) into e->probes and e->n_probes; the
 * inventory must be loaded (ssh probes name hosts). On error e->probes holds
 * what was filled, for fl_experiment_free. */
int fl_probes_parse(struct fl_check *c, struct fl_experiment *e, const struct fl_yaml_node *list);

/* A probe name -> its index into e->probes, or an error with the nearest
 * name; a template (template.h) is refused: it runs only for a where:. */
int fl_probes_ref(struct fl_check *c, const struct fl_experiment *e, const struct fl_yaml_node *n,
                  size_t *out);
/* The same, templates allowed (a fault's where:). */
int fl_probes_ref_any(struct fl_check *c, const struct fl_experiment *e,
                      const struct fl_yaml_node *n, size_t *out);

/* A list of probe names (NULL or null: none) -> indices, each once; *out is
 * left alone when the list is empty. */
int fl_probes_refs(struct fl_check *c, const struct fl_experiment *e, const struct fl_yaml_node *n,
                   size_t **out, size_t *count);

#endif
