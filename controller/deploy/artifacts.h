/* What `faultline deploy` puts on a host and where (the layout listed in
 * controller/deploy/deploy.h). */
#ifndef FL_CONTROLLER_DEPLOY_ARTIFACTS_H
#define FL_CONTROLLER_DEPLOY_ARTIFACTS_H

#include <stdbool.h>
#include <stddef.h>

struct fl_host;

/* A file to put on the host. */
struct fl_deploy_artifact {
    const char *what; /* "binary" */
    const void *data;
    size_t len;
    char sha[65];
    char path[600]; /* remote, absolute */
    int mode;
    bool same; /* the host has it, identical */
};

enum { FL_ART_BIN, FL_ART_KEY, FL_ART_CONFIG, FL_ART_START, FL_N_ART };

/* One host's remote layout and the files for it. */
struct fl_deploy_layout {
    char dir[512];
    char qdir[1100]; /* shell-quoted */
    char unit[64];   /* systemd unit name */
    char config[1024];
    char script[3072]; /* run.sh or the unit */
    struct fl_deploy_artifact art[FL_N_ART];
};

/* Reads the local file at path, a regular file of at most max bytes, into
 * *data (malloc'd) and *len. 0 or a negative errno with err. */
int fl_deploy_read_file(const char *path, size_t max, void **data, size_t *len, char *err,
                        size_t errlen);

/* The host's deploy_dir (default FL_DEPLOY_DEFAULT_DIR) without trailing
 * slashes. */
void fl_deploy_dir_of(const struct fl_host *h, char *buf, size_t len);

/* The layout of host h, with the binary and the key to copy (borrowed; NULL
 * when uninstalling); the start artifact is settled once the host says
 * whether systemd runs. 0, or -EINVAL with err when deploy_dir is not a
 * plain absolute path. */
int fl_deploy_layout_init(struct fl_deploy_layout *l, const struct fl_host *h, const void *binary,
                          size_t binary_len, const void *key, size_t key_len, char *err,
                          size_t errlen);

/* Settles the start artifact: a systemd unit, or run.sh. */
void fl_deploy_layout_settle(struct fl_deploy_layout *l, bool systemd);

/* Does the host have every artifact, identical? */
bool fl_deploy_layout_same(const struct fl_deploy_layout *l);

#endif
