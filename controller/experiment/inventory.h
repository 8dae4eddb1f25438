/* An inventory (docs/design.md section 5): the hosts an experiment, `faultline
 * deploy`, `agents`, `revert` and `halt` run against, with their agent
 * address, tags and ssh settings.
 *
 * It is a file of its own (--inventory, or named by an experiment) or an
 * experiment's inline inventory: mapping, in the same format. Loading checks
 * every key and value and copies everything: the YAML tree is gone. Every
 * error is one sentence, "FILE:LINE:COL: what is wrong". */
#ifndef FL_CONTROLLER_INVENTORY_H
#define FL_CONTROLLER_INVENTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FL_INVENTORY_MAX_TAGS 64 /* per host, and per fault target */

/* SSH settings for `faultline deploy` and ssh probes. */
struct fl_ssh_opts {
    char *user;          /* NULL: not given */
    uint16_t port;       /* 0: not given (ssh's own default) */
    char *identity_file; /* resolved against the file naming it; "~/" kept; NULL: not given */
    char *known_hosts;   /* same */
    char *deploy_dir;    /* absolute, on the host; NULL: not given (/opt/faultline) */
};

struct fl_host {
    char *name;    /* the inventory's name for it: web1 */
    char *address; /* host part: 10.77.0.2, fd00::2, db1.staging */
    uint16_t port; /* the agent's; default FL_DEFAULT_PORT (7411) */
    char **tags;
    size_t n_tags;
    bool has_ssh;           /* the host or the inventory gave ssh settings */
    struct fl_ssh_opts ssh; /* the inventory's defaults, overridden field by field */
};

struct fl_inventory {
    char *path;             /* the file the hosts came from (the experiment or --inventory) */
    char *key_file;         /* resolved; NULL when not given (then --key / $FAULTLINE_KEY) */
    bool has_ssh;           /* a top-level ssh: block was given */
    struct fl_ssh_opts ssh; /* its defaults, as written (resolved paths) */
    struct fl_host *hosts;
    size_t n_hosts;
};

/* Loads and checks the inventory file at path. Blocking file I/O, nothing
 * else: no host is contacted, no name resolved. Returns 0 with *out set,
 * -EINVAL with err "FILE:LINE:COL: ..." (or "FILE: ..." when the file cannot
 * be read), or another negative errno (-ENOMEM, -ENOENT ...). */
int fl_inventory_load(const char *path, struct fl_inventory **out, char *err, size_t errlen);

/* Frees everything and sets *inv to NULL. NULL or *inv NULL is a no-op. */
void fl_inventory_free(struct fl_inventory **inv);

/* Frees what inv holds (not inv itself) and zeroes it: for an inventory
 * inside another struct (struct fl_experiment). */
void fl_inventory_clear(struct fl_inventory *inv);

/* The index of the host with that name, or -1. */
long fl_inventory_host(const struct fl_inventory *inv, const char *name);

/* For the experiment loader (controller/experiment/check.h for c and the
 * errors). These fill inv in place and may leave it partly filled on error:
 * the caller clears it either way. */
struct fl_check;
struct fl_yaml_node;

/* The inventory mapping at n, read from the file base (relative paths are
 * resolved against it, and it becomes inv->path). */
int fl_inventory_parse(struct fl_check *c, const struct fl_yaml_node *n, const char *base,
                       struct fl_inventory *inv);

/* The inventory file at file. */
int fl_inventory_parse_file(struct fl_check *c, const char *file, struct fl_inventory *inv);

/* A list of tags (names, each once, at most FL_INVENTORY_MAX_TAGS) into
 * *out (NULL-terminated) and *count. *out belongs to the caller as soon as it
 * is set, even when a later tag is wrong. */
int fl_inventory_parse_tags(struct fl_check *c, const struct fl_yaml_node *n, char ***out,
                            size_t *count);

/* The host named by the scalar n: its index into inv->hosts, or an error
 * naming the inventory and the nearest host name. */
int fl_inventory_host_ref(struct fl_check *c, const struct fl_inventory *inv,
                          const struct fl_yaml_node *n, size_t *out);

#endif
