/* The experiment's faults: section (controller/experiment/check.h for c and
 * the errors). */
#ifndef FL_CONTROLLER_EXPERIMENT_FAULTS_H
#define FL_CONTROLLER_EXPERIMENT_FAULTS_H

struct fl_experiment;
struct fl_check;
struct fl_yaml_node;

/* The required faults: list of the experiment mapping root into e->faults
 * and e->n_faults; the inventory must be loaded (targets name hosts and
 * tags). On error e->faults holds what was filled, for fl_experiment_free. */
int fl_faults_parse(struct fl_check *c, struct fl_experiment *e, const struct fl_yaml_node *root);

#endif
