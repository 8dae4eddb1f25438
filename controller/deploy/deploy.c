/* faultline deploy: agents onto hosts over SSH, in parallel.
 *
 * One job per host. SSH work (blocking libssh2 calls, each bounded by the
 * step timeout) runs on libuv's thread pool; the verifying ping runs on the
 * loop through fl_client. A job goes:
 *
 *   CHECK (pool): open, inspect ──up to date and running──► PING (loop)
 *        │                                                   │ answers: "unchanged"
 *        └─otherwise: stop, copy what differs, start ──► PING │ silent: RESTART (pool) ──► PING
 *   REMOVE (pool): open, stop, delete ──► done
 *   any outcome ──► CLOSE (pool): close the session ──► job finished
 *
 * Idempotence: the remote files' SHA-256 (sha256sum on the host) are
 * compared with the local ones, and only what differs is copied; a host
 * whose files all match and whose agent answers is left alone. */
#include "controller/deploy/deploy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "common/addr.h"
#include "common/clock.h"
#include "common/log.h"
#include "controller/client/client.h"
#include "controller/client/threadpool.h"
#include "controller/experiment/experiment.h"
#include "controller/ssh/quote.h"
#include "controller/ssh/session.h"
#include "controller/ssh/sftp.h"

#define MAX_BINARY (256u << 20)
#define PING_TRY_MS 1000
#define PING_RETRY_MS 200
#define MARKER ".faultline-deploy"
/* The files deploy may put under deploy_dir, as the marker lists them. */
#define OWN_FILES                                                                                  \
    "bin/faultline-agent faultline.key agent.yaml run.sh agent.log supervisor.pid agent.pid"

enum phase { PH_CHECK, PH_RESTART, PH_REMOVE, PH_CLOSE };

enum outcome {
    OUT_NONE,
    OUT_INSTALLED,
    OUT_UPGRADED,
    OUT_RECONFIGURED,
    OUT_RESTARTED,
    OUT_UNCHANGED,
    OUT_REMOVED,
    OUT_NOT_INSTALLED,
    OUT_FAILED,
    OUT_COUNT
};

static const char *const outcome_names[OUT_COUNT] = {
    "?",         "installed", "upgraded",      "reconfigured", "restarted",
    "unchanged", "removed",   "not installed", "FAILED",
};

/* A file to put on the host. */
struct artifact {
    const char *what; /* "binary" */
    const void *data;
    size_t len;
    char sha[65];
    char path[600]; /* remote, absolute */
    int mode;
    bool same; /* the host has it, identical */
};

enum { ART_BIN, ART_KEY, ART_CONFIG, ART_START, N_ART };

struct deploy;

struct job {
    struct deploy *d;
    const struct fl_host *h;
    uv_work_t work;
    enum phase phase;
    struct fl_ssh_session *s;
    uint64_t started_ns;
    char dir[512];
    char qdir[1100]; /* shell-quoted */
    char unit[64];   /* systemd unit name */
    char config[1024];
    char script[3072]; /* run.sh or the unit */
    struct artifact art[N_ART];
    bool systemd, running, present;
    bool unit_dir_writable; /* the ssh user may write /etc/systemd/system */
    bool killed;            /* stopping the agent took a SIGKILL */
    int rc;
    char err[1024];
    char note[300];
    enum outcome outcome;
    /* verification */
    uv_timer_t timer;
    bool timer_open;
    uint64_t ping_deadline_ns;
    uint64_t ping_ns;
    char version[64];
    char ping_err[512];
    bool answered;
};

struct deploy {
    uv_loop_t loop;
    const struct fl_deploy_opts *o;
    FILE *out;
    struct job *jobs;
    size_t n_jobs;
    size_t name_width;
    unsigned counts[OUT_COUNT];
    void *binary;
    size_t binary_len;
    void *key;
    size_t key_len;
};

static void queue(struct job *j, enum phase ph);
static void ping(struct job *j);

/* ---------------------------------------------------------------- local */

static void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int read_file(const char *path, size_t max, void **data, size_t *len, char *err,
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

/* The host's deploy_dir without trailing slashes. */
static void deploy_dir_of(const struct fl_host *h, char *buf, size_t len)
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

/* The job's remote layout and local files; the start artifact (run.sh or
 * the unit) is settled once the host says whether systemd runs. */
static int job_init(struct job *j, struct deploy *d, const struct fl_host *h)
{
    j->d = d;
    j->h = h;
    const char *dir = h->ssh.deploy_dir ? h->ssh.deploy_dir : FL_DEPLOY_DEFAULT_DIR;
    deploy_dir_of(h, j->dir, sizeof(j->dir));
    if (!plain_path(j->dir) || strlen(j->dir) > 400) {
        snprintf(j->err, sizeof(j->err),
                 "deploy_dir '%s' must be an absolute path other than '/', of letters, digits, "
                 "'.', '_', '-' and '/', with no '.' or '..' component: fix ssh.deploy_dir",
                 dir);
        return -EINVAL;
    }
    fl_ssh_quote(j->dir, j->qdir, sizeof(j->qdir));
    if (strcmp(j->dir, FL_DEPLOY_DEFAULT_DIR) == 0) {
        snprintf(j->unit, sizeof(j->unit), "faultline-agent");
    } else {
        char sha[65];
        sha256_hex(j->dir, strlen(j->dir), sha);
        snprintf(j->unit, sizeof(j->unit), "faultline-agent-%.8s", sha);
    }
    char listen[300];
    listen_addr(h, listen, sizeof(listen));
    snprintf(j->config, sizeof(j->config),
             "# written by `faultline deploy`; re-running it rewrites this file\n"
             "listen: \"%s\"\n"
             "state_dir: %s/state\n",
             listen, j->dir);
    struct artifact *a = j->art;
    a[ART_BIN] = (struct artifact){"binary", d->binary, d->binary_len, "", "", 0755, false};
    a[ART_KEY] = (struct artifact){"key", d->key, d->key_len, "", "", 0600, false};
    a[ART_CONFIG] = (struct artifact){"config", j->config, strlen(j->config), "", "", 0644, false};
    snprintf(a[ART_BIN].path, sizeof(a[ART_BIN].path), "%s/bin/faultline-agent", j->dir);
    snprintf(a[ART_KEY].path, sizeof(a[ART_KEY].path), "%s/faultline.key", j->dir);
    snprintf(a[ART_CONFIG].path, sizeof(a[ART_CONFIG].path), "%s/agent.yaml", j->dir);
    for (int i = 0; i < ART_START; i++)
        sha256_hex(a[i].data, a[i].len, a[i].sha);
    return 0;
}

static void settle_start_artifact(struct job *j)
{
    struct artifact *a = &j->art[ART_START];
    if (j->systemd) {
        snprintf(j->script, sizeof(j->script), unit_text, j->dir, j->dir, j->dir, j->dir);
        *a = (struct artifact){"unit", j->script, strlen(j->script), "", "", 0644, false};
        snprintf(a->path, sizeof(a->path), "/etc/systemd/system/%s.service", j->unit);
    } else {
        snprintf(j->script, sizeof(j->script), run_sh, j->qdir);
        *a = (struct artifact){"supervisor", j->script, strlen(j->script), "", "", 0755, false};
        snprintf(a->path, sizeof(a->path), "%s/run.sh", j->dir);
    }
    sha256_hex(a->data, a->len, a->sha);
}

/* ------------------------------------------------------------ on the host */

static uint64_t step_deadline(const struct job *j)
{
    return fl_mono_ns() + j->d->o->timeout_ms * 1000000ull;
}

/* Runs cmd; a non-zero exit is an error naming what and the output. */
static int run(struct job *j, const char *what, const char *cmd, char *out, size_t cap)
{
    char buf[2048];
    char *o = out != NULL ? out : buf;
    size_t c = out != NULL ? cap : sizeof(buf);
    int status = -1;
    int rc = fl_ssh_exec(j->s, cmd, step_deadline(j), &status, o, c, j->err, sizeof(j->err));
    if (rc < 0)
        return rc;
    if (status != 0) {
        size_t n = strlen(o);
        while (n > 0 && (o[n - 1] == '\n' || o[n - 1] == '\r'))
            o[--n] = '\0';
        snprintf(j->err, sizeof(j->err), "%s failed on the host (exit %d)%s%.400s", what, status,
                 n ? ": " : "", o);
        return -EIO;
    }
    return 0;
}

/* alive PID: running and not a zombie (an orphan whose reaper is slow). */
#define SH_ALIVE                                                                                   \
    "alive() { kill -0 \"$1\" 2>/dev/null && ! grep -qs '^[0-9]* (.*) Z' \"/proc/$1/stat\"; }; "

static int inspect(struct job *j)
{
    char cmd[4096], out[4096];
    snprintf(cmd, sizeof(cmd),
             SH_ALIVE
             "D=%s; "
             "if [ -d /run/systemd/system ]; then echo fl:systemd; "
             "  [ -w /etc/systemd/system ] && echo fl:unitdir; "
             "  systemctl is-active --quiet %s && echo fl:running; "
             "  sha256sum /etc/systemd/system/%s.service 2>/dev/null; "
             "else [ -f \"$D/supervisor.pid\" ] && alive \"$(cat \"$D/supervisor.pid\")\" && "
             "echo fl:running; fi; "
             "[ -e \"$D/bin/faultline-agent\" ] && echo fl:present; "
             "cd \"$D\" 2>/dev/null && sha256sum \"$D/bin/faultline-agent\" \"$D/faultline.key\" "
             "\"$D/agent.yaml\" \"$D/run.sh\" 2>/dev/null; exit 0",
             j->qdir, j->unit, j->unit);
    int rc = run(j, "inspecting", cmd, out, sizeof(out));
    if (rc < 0)
        return rc;
    j->systemd = strstr(out, "fl:systemd") != NULL;
    j->running = strstr(out, "fl:running") != NULL;
    j->present = strstr(out, "fl:present") != NULL;
    j->unit_dir_writable = strstr(out, "fl:unitdir") != NULL;
    settle_start_artifact(j);
    char *save = NULL;
    for (char *line = out; line != NULL && *line != '\0'; line = save) {
        save = strchr(line, '\n');
        if (save != NULL)
            *save++ = '\0';
        if (strlen(line) < 67 || line[64] != ' ')
            continue;
        const char *path = line + 66; /* "<sha>  <path>" */
        for (int i = 0; i < N_ART; i++)
            if (strcmp(path, j->art[i].path) == 0 && strncmp(line, j->art[i].sha, 64) == 0)
                j->art[i].same = true;
    }
    return 0;
}

static bool all_same(const struct job *j)
{
    for (int i = 0; i < N_ART; i++)
        if (!j->art[i].same)
            return false;
    return true;
}

/* Stops the agent with SIGTERM (it reverts its faults and compacts its
 * journal); j->killed says whether it had to be SIGKILLed instead. */
static int stop_agent(struct job *j)
{
    char cmd[4096], out[1024];
    if (j->systemd) {
        /* KillMode=mixed: SIGTERM, and SIGKILL after TimeoutStopSec (Result=timeout) */
        snprintf(cmd, sizeof(cmd),
                 "systemctl stop %s 2>&1; [ \"$(systemctl show -p Result --value %s "
                 "2>/dev/null)\" = timeout ] && echo fl:killed; true",
                 j->unit, j->unit);
    } else {
        /* SIGTERM to the supervisor, which stops the agent (the agent reverts
         * its faults); wait up to 10 s for each, then SIGKILL. */
        snprintf(cmd, sizeof(cmd),
                 SH_ALIVE "D=%s; "
                          "wait_gone() { i=0; while alive \"$1\" && [ $i -lt 100 ]; do sleep 0.1; "
                          "i=$((i+1)); done; alive \"$1\" && kill -KILL \"$1\" 2>/dev/null && "
                          "echo fl:killed; true; }; "
                          "if [ -f \"$D/supervisor.pid\" ]; then p=$(cat \"$D/supervisor.pid\"); "
                          "  alive \"$p\" && kill -TERM \"$p\" 2>/dev/null; wait_gone \"$p\"; fi; "
                          "if [ -f \"$D/agent.pid\" ]; then a=$(cat \"$D/agent.pid\"); "
                          "  alive \"$a\" && kill -TERM \"$a\" 2>/dev/null; wait_gone \"$a\"; fi; "
                          "rm -f -- \"$D/supervisor.pid\" \"$D/agent.pid\"",
                 j->qdir);
    }
    int rc = run(j, "stopping the agent", cmd, out, sizeof(out));
    if (rc == 0 && strstr(out, "fl:killed") != NULL)
        j->killed = true;
    return rc;
}

static int start_agent(struct job *j)
{
    char cmd[2048];
    if (j->systemd)
        snprintf(cmd, sizeof(cmd),
                 "systemctl daemon-reload && systemctl enable --quiet %s && systemctl restart %s",
                 j->unit, j->unit);
    else
        snprintf(cmd, sizeof(cmd),
                 "D=%s; cd / && if command -v setsid >/dev/null 2>&1; then "
                 "setsid sh \"$D/run.sh\" </dev/null >/dev/null 2>&1 & "
                 "else nohup sh \"$D/run.sh\" </dev/null >/dev/null 2>&1 & fi",
                 j->qdir);
    return run(j, "starting the agent", cmd, NULL, 0);
}

/* Stops what runs, copies what differs, starts. */
static int install(struct job *j)
{
    char cmd[2048];
    int rc = 0;
    if (j->systemd && !j->art[ART_START].same && !j->unit_dir_writable) {
        snprintf(j->err, sizeof(j->err),
                 "systemd runs on the host, and ssh user %s cannot write /etc/systemd/system "
                 "to install the unit %s.service (nor manage it with systemctl): deploy as root "
                 "(ssh.user: root)",
                 j->h->ssh.user ? j->h->ssh.user : "(the current user)", j->unit);
        return -EACCES;
    }
    if (j->running || j->present)
        rc = stop_agent(j);
    if (rc == 0) {
        /* Modes only on what deploy creates; the marker lists it, for
         * --uninstall to remove exactly that. */
        snprintf(cmd, sizeof(cmd),
                 "D=%s; M=\"$D/" MARKER "\"; new=; "
                 "if [ ! -d \"$D\" ]; then mkdir -p -m 0755 -- \"$D\" || exit 1; new=.; fi; "
                 "if [ ! -d \"$D/bin\" ]; then mkdir -m 0755 -- \"$D/bin\" || exit 1; "
                 "new=\"$new bin\"; fi; "
                 "if [ ! -d \"$D/state\" ]; then mkdir -m 0700 -- \"$D/state\" || exit 1; "
                 "new=\"$new state\"; fi; "
                 "if [ ! -f \"$M\" ]; then { echo '# written by faultline deploy: what it "
                 "created here; faultline deploy --uninstall removes only these'; "
                 "for f in " OWN_FILES "; do echo \"file $f\"; done; } > \"$M\" || exit 1; fi; "
                 "for x in $new; do echo \"dir $x\" >> \"$M\" || exit 1; done",
                 j->qdir);
        rc = run(j, "creating the directories", cmd, NULL, 0);
    }
    for (int i = 0; i < N_ART && rc == 0; i++) {
        if (j->art[i].same)
            continue;
        rc = fl_ssh_upload(j->s, j->art[i].data, j->art[i].len, j->art[i].path, j->art[i].mode,
                           step_deadline(j), j->err, sizeof(j->err));
    }
    if (rc == 0)
        rc = start_agent(j);
    return rc;
}

/* Stops the agent, then removes what the marker says deploy created, and
 * nothing else. A directory without the marker is not touched. state/ (the
 * journal) stays when the agent had to be killed or its journal still marks
 * faults active: those may still need reverting. */
static int remove_all(struct job *j)
{
    char cmd[4096], out[1024];
    int rc = inspect(j);
    if (rc < 0)
        return rc;
    snprintf(cmd, sizeof(cmd),
             "D=%s; [ -d \"$D\" ] && echo fl:dir; [ -f \"$D/" MARKER "\" ] && echo fl:marker; "
             "[ -f /etc/systemd/system/%s.service ] && echo fl:unit; exit 0",
             j->qdir, j->unit);
    if ((rc = run(j, "inspecting", cmd, out, sizeof(out))) < 0)
        return rc;
    bool had_unit = strstr(out, "fl:unit") != NULL;
    bool had_dir = strstr(out, "fl:dir") != NULL;
    bool marked = strstr(out, "fl:marker") != NULL;
    if (!j->present && !j->running && !had_unit && !had_dir) {
        j->outcome = OUT_NOT_INSTALLED;
        return 0;
    }
    if (had_dir && !marked) {
        snprintf(j->err, sizeof(j->err),
                 "%.400s has no " MARKER " file, so this faultline deploy did not install "
                 "there (or an older one did): nothing was stopped or removed; remove it by "
                 "hand, or deploy once more (which adds the marker) and uninstall again",
                 j->dir);
        return -EPERM;
    }
    if (had_unit) {
        if ((rc = stop_agent(j)) < 0)
            return rc;
        snprintf(cmd, sizeof(cmd),
                 "systemctl disable --quiet %s; rm -f -- /etc/systemd/system/%s.service "
                 "/etc/systemd/system/%s.service.tmp-faultline.* && systemctl daemon-reload",
                 j->unit, j->unit, j->unit);
        if ((rc = run(j, "removing the systemd unit", cmd, NULL, 0)) < 0)
            return rc;
    } else if ((rc = stop_agent(j)) < 0) {
        return rc;
    }
    if (!had_dir) {
        j->outcome = OUT_REMOVED;
        return 0;
    }
    snprintf(cmd, sizeof(cmd),
             "D=%s; grep -qs '\"op\":\"apply\"' \"$D/state/journal\" && echo fl:active; exit 0",
             j->qdir);
    if ((rc = run(j, "reading the journal", cmd, out, sizeof(out))) < 0)
        return rc;
    bool active = strstr(out, "fl:active") != NULL;
    bool keep_state = j->killed || active;
    /* Only what the marker lists; each directory only when that empties it. */
    snprintf(cmd, sizeof(cmd),
             "D=%s; M=\"$D/" MARKER "\"; cd / || exit 1; "
             "has() { grep -qxF \"$1\" \"$M\"; }; "
             "for f in " OWN_FILES "; do has \"file $f\" && { rm -f -- \"$D/$f\" || exit 1; }; "
             "done; "
             "rm -f -- \"$D\"/*.tmp-faultline.* \"$D\"/bin/*.tmp-faultline.*; "
             "%s"
             "has 'dir bin' && [ -d \"$D/bin\" ] && { rmdir -- \"$D/bin\" 2>/dev/null || "
             "echo fl:kept; }; "
             "%s",
             j->qdir,
             keep_state ? "" : "has 'dir state' && { rm -rf -- \"$D/state\" || exit 1; }; ",
             keep_state ? "exit 0"
                        : "own=; has 'dir .' && own=1; rm -f -- \"$M\" || exit 1; "
                          "if [ -n \"$own\" ]; then rmdir -- \"$D\" 2>/dev/null || echo fl:kept; "
                          "elif [ -n \"$(ls -A -- \"$D\")\" ]; then echo fl:kept; fi");
    if ((rc = run(j, "removing the files", cmd, out, sizeof(out))) < 0)
        return rc;
    if (keep_state)
        snprintf(j->note, sizeof(j->note),
                 "%.100s/state kept (the journal): %s; deploy again to start the agent, which "
                 "reverts what it lists, then uninstall again",
                 j->dir, active ? "it still marks faults active" : "the agent had to be SIGKILLed");
    else if (strstr(out, "fl:kept") != NULL)
        snprintf(j->note, sizeof(j->note), "%.100s kept: it holds files deploy did not put there",
                 j->dir);
    j->outcome = OUT_REMOVED;
    return 0;
}

static int open_session(struct job *j)
{
    const struct fl_ssh_opts *o = &j->h->ssh;
    struct fl_ssh_target t = {
        .name = j->h->name,
        .address = j->h->address,
        .port = o->port,
        .user = o->user,
        .identity_file = o->identity_file,
        .known_hosts = o->known_hosts,
        .accept_new = j->d->o->accept_new_host_keys,
    };
    return fl_ssh_open(&t, step_deadline(j), &j->s, j->err, sizeof(j->err));
}

static void work(uv_work_t *w)
{
    struct job *j = w->data;
    int rc = 0;
    switch (j->phase) {
    case PH_CHECK:
        rc = open_session(j);
        if (rc == 0)
            rc = inspect(j);
        if (rc == 0 && all_same(j) && j->running)
            break; /* the loop pings; unchanged if it answers */
        if (rc == 0) {
            j->outcome = !j->present             ? OUT_INSTALLED
                         : !j->art[ART_BIN].same ? OUT_UPGRADED
                         : !all_same(j)          ? OUT_RECONFIGURED
                                                 : OUT_RESTARTED;
            rc = install(j);
        }
        break;
    case PH_RESTART:
        j->outcome = OUT_RESTARTED;
        rc = install(j);
        break;
    case PH_REMOVE:
        rc = open_session(j);
        if (rc == 0)
            rc = remove_all(j);
        break;
    case PH_CLOSE:
        fl_ssh_close(&j->s);
        break;
    }
    j->rc = rc;
}

/* ------------------------------------------------------------- on the loop */

static void print_result(struct job *j)
{
    struct deploy *d = j->d;
    double secs = (double)(fl_mono_ns() - j->started_ns) / 1e9;
    d->counts[j->outcome]++;
    fprintf(d->out, "%-*s  %s", (int)d->name_width, j->h->name, outcome_names[j->outcome]);
    if (j->outcome == OUT_FAILED)
        fprintf(d->out, ": %s\n", j->err);
    else if (j->answered)
        fprintf(d->out, " in %.1fs (agent %s answers, %.1f ms)\n", secs, j->version,
                (double)j->ping_ns / 1e6);
    else
        fprintf(d->out, " in %.1fs%s%s\n", secs, j->note[0] ? ": " : "", j->note);
    fflush(d->out);
}

static void finish(struct job *j)
{
    print_result(j);
    if (j->timer_open) {
        j->timer_open = false;
        uv_close((uv_handle_t *)&j->timer, NULL); /* the job array outlives the loop */
    }
    if (j->s != NULL)
        queue(j, PH_CLOSE);
}

static void fail_job(struct job *j)
{
    j->outcome = OUT_FAILED;
    finish(j);
}

static void after_work(uv_work_t *w, int status)
{
    struct job *j = w->data;
    (void)status;
    switch (j->phase) {
    case PH_CLOSE:
        return;
    case PH_REMOVE:
        if (j->rc < 0)
            fail_job(j);
        else
            finish(j);
        return;
    case PH_CHECK:
    case PH_RESTART:
        if (j->rc < 0) {
            fail_job(j);
            return;
        }
        j->ping_deadline_ns = fl_mono_ns() + j->d->o->verify_ms * 1000000ull;
        ping(j);
        return;
    }
}

static void queue(struct job *j, enum phase ph)
{
    j->phase = ph;
    j->work.data = j;
    int rc = uv_queue_work(&j->d->loop, &j->work, work, after_work);
    if (rc < 0 && ph != PH_CLOSE) {
        snprintf(j->err, sizeof(j->err), "cannot queue work: %s", uv_strerror(rc));
        fail_job(j);
    } else if (rc < 0) {
        fl_ssh_close(&j->s);
    }
}

static void on_retry(uv_timer_t *t)
{
    ping(t->data);
}

/* The ping failed: again a little later, or give up. */
static void ping_failed(struct job *j)
{
    if (fl_mono_ns() + PING_RETRY_MS * 1000000ull < j->ping_deadline_ns) {
        uv_timer_start(&j->timer, on_retry, PING_RETRY_MS, 0);
        return;
    }
    if (j->outcome == OUT_NONE) { /* it ran and looked up to date, but is silent: restart it */
        queue(j, PH_RESTART);
        return;
    }
    const char *log = j->systemd ? "journalctl -u " : "";
    snprintf(j->err, sizeof(j->err),
             "the agent was started but does not answer on %s:%u: %.300s (see %s%s%s on the host)",
             j->h->address, (unsigned)j->h->port, j->ping_err, log, j->systemd ? j->unit : j->dir,
             j->systemd ? "" : "/agent.log");
    fail_job(j);
}

static void on_reply(struct fl_client *cl, const Faultline__Envelope *reply, int status, void *arg)
{
    struct job *j = arg;
    if (status == 0 && reply->msg_case == FAULTLINE__ENVELOPE__MSG_PONG) {
        j->answered = true;
        j->ping_ns = fl_mono_ns() - j->ping_ns;
    } else {
        snprintf(j->ping_err, sizeof(j->ping_err), "no answer to a ping");
    }
    fl_client_close(cl);
}

static void on_ready(struct fl_client *cl, const Faultline__Welcome *welcome)
{
    struct job *j = fl_client_data(cl);
    snprintf(j->version, sizeof(j->version), "%s", welcome->version);
    static Faultline__Ping ping_msg = FAULTLINE__PING__INIT;
    Faultline__Envelope req = FAULTLINE__ENVELOPE__INIT;
    req.msg_case = FAULTLINE__ENVELOPE__MSG_PING;
    req.ping = &ping_msg;
    j->ping_ns = fl_mono_ns();
    if (fl_client_request(cl, &req, PING_TRY_MS, on_reply, j) < 0) {
        snprintf(j->ping_err, sizeof(j->ping_err), "cannot send a ping");
        fl_client_close(cl);
    }
}

static void on_closed(struct fl_client *cl, int reason)
{
    struct job *j = fl_client_data(cl);
    if (j->answered) {
        if (j->outcome == OUT_NONE)
            j->outcome = OUT_UNCHANGED;
        finish(j);
        return;
    }
    if (reason < 0)
        fl_client_explain(cl, reason, j->ping_err, sizeof(j->ping_err));
    ping_failed(j);
}

static const struct fl_client_ops ping_ops = {.ready = on_ready, .closed = on_closed};

static void ping(struct job *j)
{
    struct fl_client *cl;
    int rc = fl_client_connect(&j->d->loop, j->h->name, j->h->address, j->h->port, j->d->o->key,
                               PING_TRY_MS, &ping_ops, j, &cl);
    if (rc < 0) {
        snprintf(j->ping_err, sizeof(j->ping_err), "%s", fl_strerror(rc));
        ping_failed(j);
    }
}

/* ------------------------------------------------------------------ run */

/* Two hosts of one inventory that name the same directory on the same
 * machine (address, ssh port, deploy_dir) would install, start and remove
 * one agent twice, each job undoing the other: refused before anything runs. */
static int check_duplicates(const struct fl_inventory *inv, char *err, size_t errlen)
{
    for (size_t i = 0; i < inv->n_hosts; i++) {
        const struct fl_host *a = &inv->hosts[i];
        char da[512];
        deploy_dir_of(a, da, sizeof(da));
        unsigned pa = a->ssh.port ? a->ssh.port : FL_SSH_DEFAULT_PORT;
        for (size_t k = i + 1; k < inv->n_hosts; k++) {
            const struct fl_host *b = &inv->hosts[k];
            char db[512];
            deploy_dir_of(b, db, sizeof(db));
            unsigned pb = b->ssh.port ? b->ssh.port : FL_SSH_DEFAULT_PORT;
            if (pa == pb && strcasecmp(a->address, b->address) == 0 && strcmp(da, db) == 0) {
                snprintf(err, errlen,
                         "hosts %s and %s both deploy to %s (ssh port %u) in %s: one directory "
                         "holds one agent; give one of them its own ssh.deploy_dir",
                         a->name, b->name, a->address, pa, da);
                return -EINVAL;
            }
        }
    }
    return 0;
}

int fl_deploy_run(const struct fl_inventory *inv, const struct fl_deploy_opts *o, FILE *out,
                  char *err, size_t errlen)
{
    int drc = check_duplicates(inv, err, errlen);
    if (drc < 0)
        return drc;
    struct deploy *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    d->o = o;
    d->out = out;
    int rc = 0;
    if (!o->uninstall) {
        rc = read_file(o->agent_binary, MAX_BINARY, &d->binary, &d->binary_len, err, errlen);
        if (rc == 0)
            rc = read_file(o->key_path, 4096, &d->key, &d->key_len, err, errlen);
    }
    if (rc == 0 && (d->jobs = calloc(inv->n_hosts, sizeof(*d->jobs))) == NULL) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
    }
    if (rc < 0) {
        free(d->binary);
        free(d->key);
        free(d);
        return rc;
    }
    d->n_jobs = inv->n_hosts;
    for (size_t i = 0; i < inv->n_hosts; i++) {
        size_t w = strlen(inv->hosts[i].name);
        d->name_width = w > d->name_width ? w : d->name_width;
    }
    fl_threadpool_size(inv->n_hosts); /* one thread per host's ssh session */
    if ((rc = uv_loop_init(&d->loop)) < 0) {
        snprintf(err, errlen, "cannot start an event loop: %s", uv_strerror(rc));
        free(d->jobs);
        if (d->key != NULL)
            OPENSSL_cleanse(d->key, d->key_len);
        free(d->key);
        free(d->binary);
        free(d);
        return rc;
    }
    uint64_t t0 = fl_mono_ns();
    for (size_t i = 0; i < inv->n_hosts; i++) {
        struct job *j = &d->jobs[i];
        j->started_ns = t0;
        if (job_init(j, d, &inv->hosts[i]) < 0) {
            fail_job(j);
            continue;
        }
        uv_timer_init(&d->loop, &j->timer);
        j->timer.data = j;
        j->timer_open = true;
        queue(j, o->uninstall ? PH_REMOVE : PH_CHECK);
    }
    uv_run(&d->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&d->loop) != 0)
        fl_error("internal error: handles left open");

    unsigned failed = d->counts[OUT_FAILED];
    fprintf(out, "%zu host%s in %.1fs:", d->n_jobs, d->n_jobs == 1 ? "" : "s",
            (double)(fl_mono_ns() - t0) / 1e9);
    bool first = true;
    for (int k = OUT_INSTALLED; k < OUT_COUNT; k++) {
        if (d->counts[k] == 0)
            continue;
        fprintf(out, "%s %u %s", first ? "" : ",", d->counts[k],
                k == OUT_FAILED ? "failed" : outcome_names[k]);
        first = false;
    }
    fprintf(out, "\n");
    fflush(out);
    free(d->jobs);
    if (d->key != NULL) {
        OPENSSL_cleanse(d->key, d->key_len);
        free(d->key);
    }
    free(d->binary);
    free(d);
    return (int)failed;
}
