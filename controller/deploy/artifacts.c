/* What deploy puts on a host: the agent binary and the key (read locally),
 * the agent's config, and its start artifact (run.sh, the supervisor, or a
 * systemd unit), each with its remote path, mode and SHA-256; and where they
 * go (deploy_dir, the unit's name). */
#include "controller/deploy/artifacts.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/addr.h"
#include "controller/deploy/deploy.h"
#include "controller/experiment/inventory.h"
#include "controller/ssh/quote.h"

static void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int fl_deploy_read_file(const char *path, size_t max, void **data, size_t *len, char *err,
                        size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(e));
        if (fd >= 0)
            close(fd);
        return -e;
    }
    if (!S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
        snprintf(err, errlen, "%s: not a regular file of at most %zu MiB", path, max >> 20);
        close(fd);
        return -EINVAL;
    }
    size_t size = (size_t)st.st_size;
    char *buf = malloc(size ? size : 1);
    size_t off = 0;
    while (buf != NULL && off < size) {
        ssize_t n = read(fd, buf + off, size - off);
        if (n <= 0) {
            snprintf(err, errlen, "cannot read %s: %s", path, n < 0 ? strerror(errno) : "short");
            free(buf);
            close(fd);
            return -EIO;
        }
        off += (size_t)n;
    }
    close(fd);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    *data = buf;
    *len = size;
    return 0;
}

/* What a deploy_dir may be: it goes into shell commands and a systemd unit,
 * so plain characters only; absolute, not "/" itself, and no empty, "." or
 * ".." component, so that it names one directory and only one way. */
static bool plain_path(const char *p)
{
    if (p[0] != '/' || p[1] == '\0')
        return false;
    for (const char *c = p + 1;;) {
        size_t len = strcspn(c, "/");
        if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
            return false;
        if (c[len] == '\0')
            break;
        c += len + 1;
    }
    for (; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '/' || *p == '.' || *p == '_' || *p == '-'))
            return false;
    return true;
}

void fl_deploy_dir_of(const struct fl_host *h, char *buf, size_t len)
{
    snprintf(buf, len, "%s", h->ssh.deploy_dir ? h->ssh.deploy_dir : FL_DEPLOY_DEFAULT_DIR);
    size_t l = strlen(buf);
    while (l > 1 && buf[l - 1] == '/')
        buf[--l] = '\0';
}

/* The address the agent listens on: the host's, when it is an IP address. */
static void listen_addr(const struct fl_host *h, char *buf, size_t len)
{
    unsigned char tmp[16];
    bool ip = inet_pton(AF_INET, h->address, tmp) == 1 || inet_pton(AF_INET6, h->address, tmp) == 1;
    fl_addr_join(ip ? h->address : "0.0.0.0", h->port, buf, len);
}

static const char run_sh[] =
    "#!/bin/sh\n"
    "# faultline agent supervisor, written by `faultline deploy`: runs the agent and\n"
    "# restarts it when it dies (after 1s, doubling up to 30s; back to 1s after a\n"
    "# minute of running). SIGTERM stops the agent (which reverts its faults), then\n"
    "# this script. `faultline deploy --uninstall` does that and removes everything.\n"
    "D=%s\n"
    "echo $$ > \"$D/supervisor.pid\"\n"
    "stop=\n"
    "child=\n"
    "trap 'stop=1; [ -n \"$child\" ] && kill -TERM \"$child\" 2>/dev/null' TERM INT HUP\n"
    "delay=1\n"
    "while [ -z \"$stop\" ]; do\n"
    "    started=$(date +%%s)\n"
    "    \"$D/bin/faultline-agent\" --key \"$D/faultline.key\" --config \"$D/agent.yaml\" \\\n"
    "        </dev/null >>\"$D/agent.log\" 2>&1 &\n"
    "    child=$!\n"
    "    echo \"$child\" > \"$D/agent.pid\"\n"
    "    while kill -0 \"$child\" 2>/dev/null; do wait \"$child\"; done\n"
    "    child=\n"
    "    [ -n \"$stop\" ] && break\n"
    "    [ $(( $(date +%%s) - started )) -ge 60 ] && delay=1\n"
    "    echo \"faultline-agent exited; restarting in ${delay}s\" >> \"$D/agent.log\"\n"
    "    sleep \"$delay\" &\n"
    "    child=$!\n"
    "    wait \"$child\"\n"
    "    child=\n"
    "    delay=$(( delay * 2 ))\n"
    "    [ \"$delay\" -gt 30 ] && delay=30\n"
    "done\n"
    "rm -f \"$D/agent.pid\" \"$D/supervisor.pid\"\n";

static const char unit_text[] =
    "# written by `faultline deploy`; `faultline deploy --uninstall` removes it\n"
    "[Unit]\n"
    "Description=faultline agent (%s)\n"
    "After=network-online.target\n"
    "Wants=network-online.target\n"
    "\n"
    "[Service]\n"
    "ExecStart=%s/bin/faultline-agent --key %s/faultline.key --config %s/agent.yaml\n"
    "Restart=always\n"
    "RestartSec=1\n"
    "KillMode=mixed\n"
    "TimeoutStopSec=30\n"
    "\n"
    "[Install]\n"
    "WantedBy=multi-user.target\n";

int fl_deploy_layout_init(struct fl_deploy_layout *l, const struct fl_host *h, const void *binary,
                          size_t binary_len, const void *key, size_t key_len, char *err,
                          size_t errlen)
{
    const char *dir = h->ssh.deploy_dir ? h->ssh.deploy_dir : FL_DEPLOY_DEFAULT_DIR;
    fl_deploy_dir_of(h, l->dir, sizeof(l->dir));
    if (!plain_path(l->dir) || strlen(l->dir) > 400) {
        snprintf(err, errlen,
                 "deploy_dir '%s' must be an absolute path other than '/', of letters, digits, "
                 "'.', '_', '-' and '/', with no '.' or '..' component: fix ssh.deploy_dir",
                 dir);
        return -EINVAL;
    }
    fl_ssh_quote(l->dir, l->qdir, sizeof(l->qdir));
    if (strcmp(l->dir, FL_DEPLOY_DEFAULT_DIR) == 0) {
        snprintf(l->unit, sizeof(l->unit), "faultline-agent");
    } else {
        char sha[65];
        sha256_hex(l->dir, strlen(l->dir), sha);
        snprintf(l->unit, sizeof(l->unit), "faultline-agent-%.8s", sha);
    }
    char listen[300];
    listen_addr(h, listen, sizeof(listen));
    snprintf(l->config, sizeof(l->config),
             "# written by `faultline deploy`; re-running it rewrites this file\n"
             "listen: \"%s\"\n"
             "state_dir: %s/state\n",
             listen, l->dir);
    struct fl_deploy_artifact *a = l->art;
    a[FL_ART_BIN] = (struct fl_deploy_artifact){"binary", binary, binary_len, "", "", 0755, false};
    a[FL_ART_KEY] = (struct fl_deploy_artifact){"key", key, key_len, "", "", 0600, false};
    a[FL_ART_CONFIG] =
        (struct fl_deploy_artifact){"config", l->config, strlen(l->config), "", "", 0644, false};
    snprintf(a[FL_ART_BIN].path, sizeof(a[FL_ART_BIN].path), "%s/bin/faultline-agent", l->dir);
    snprintf(a[FL_ART_KEY].path, sizeof(a[FL_ART_KEY].path), "%s/faultline.key", l->dir);
    snprintf(a[FL_ART_CONFIG].path, sizeof(a[FL_ART_CONFIG].path), "%s/agent.yaml", l->dir);
    for (int i = 0; i < FL_ART_START; i++)
        sha256_hex(a[i].data, a[i].len, a[i].sha);
    return 0;
}

void fl_deploy_layout_settle(struct fl_deploy_layout *l, bool systemd)
{
    struct fl_deploy_artifact *a = &l->art[FL_ART_START];
    if (systemd) {
        snprintf(l->script, sizeof(l->script), unit_text, l->dir, l->dir, l->dir, l->dir);
        *a = (struct fl_deploy_artifact){"unit", l->script, strlen(l->script), "", "", 0644, false};
        snprintf(a->path, sizeof(a->path), "/etc/systemd/system/%s.service", l->unit);
    } else {
        snprintf(l->script, sizeof(l->script), run_sh, l->qdir);
        *a = (struct fl_deploy_artifact){"supervisor", l->script, strlen(l->script), "", "",
                                         0755,         false};
        snprintf(a->path, sizeof(a->path), "%s/run.sh", l->dir);
    }
    sha256_hex(a->data, a->len, a->sha);
}

bool fl_deploy_layout_same(const struct fl_deploy_layout *l)
{
    for (int i = 0; i < FL_N_ART; i++)
        if (!l->art[i].same)
            return false;
    return true;
}
