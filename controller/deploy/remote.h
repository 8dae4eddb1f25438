/* The steps `faultline deploy` takes on one host over SSH (the layout in
 * controller/deploy/deploy.h). Every step blocks, bounded by the options'
 * timeout for each SSH call: they run on libuv's thread pool, one job's at a
 * time. Each returns 0 or a negative errno with r->err saying what failed. */
#ifndef FL_CONTROLLER_DEPLOY_REMOTE_H
#define FL_CONTROLLER_DEPLOY_REMOTE_H

#include <stdbool.h>

#include "controller/deploy/artifacts.h"
#include "controller/deploy/deploy.h"

struct fl_host;
struct fl_ssh_session;

/* One host, as the steps see it. */
struct fl_deploy_remote {
    const struct fl_host *h;
    const struct fl_deploy_opts *o;
    struct fl_ssh_session *s; /* after fl_deploy_remote_open; the caller closes it */
    struct fl_deploy_layout lay;
    /* what fl_deploy_remote_inspect found */
    bool systemd, running, present;
    bool unit_dir_writable; /* the ssh user may write /etc/systemd/system */
    bool killed;            /* stopping the agent took a SIGKILL */
    char err[1024];
    char note[300]; /* a remark for the result line, "" when none */
};

/* Opens r->s to the host, with its inventory ssh settings. */
int fl_deploy_remote_open(struct fl_deploy_remote *r);

/* Whether systemd runs, whether the agent runs and is installed, and which
 * artifacts the host already has, identical (r->lay.art[].same); settles the
 * start artifact. */
int fl_deploy_remote_inspect(struct fl_deploy_remote *r);

/* After inspect: stops what runs, creates the directories and the marker,
 * copies what differs, starts. */
int fl_deploy_remote_install(struct fl_deploy_remote *r);

/* Stops the agent, then removes what the marker says deploy created, and
 * nothing else. A directory without the marker is not touched. state/ (the
 * journal) stays when the agent had to be killed or its journal still marks
 * faults active: those may still need reverting (r->note says so).
 * *installed: whether there was anything to remove. */
int fl_deploy_remote_remove(struct fl_deploy_remote *r, bool *installed);

#endif
