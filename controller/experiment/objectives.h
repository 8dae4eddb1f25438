/* The experiment's objectives:, abort_when: and recovery: sections
 * (controller/experiment/check.h for c and the errors). The probes must be
 * loaded first: these name them. */
#ifndef FL_CONTROLLER_EXPERIMENT_OBJECTIVES_H
#define FL_CONTROLLER_EXPERIMENT_OBJECTIVES_H

struct fl_experiment;
struct fl_check;
struct fl_yaml_node;

/* The objectives: mapping n into e->objectives. */
int fl_objectives_parse(struct fl_check *c, struct fl_experiment *e, const struct fl_yaml_node *n);

/* The abort_when: list (NULL or null: none) into e->aborts and e->n_aborts. */
int fl_objectives_aborts(struct fl_check *c, struct fl_experiment *e,
                         const struct fl_yaml_node *list);

/* The recovery: mapping n (NULL: not given) into e->recovery, with its
 * defaults: the steady_state probes (already loaded) and
 * FL_EXPERIMENT_DEFAULT_RECOVERY_MS. */
int fl_objectives_recovery(struct fl_check *c, struct fl_experiment *e,
                           const struct fl_yaml_node *n);

#endif
