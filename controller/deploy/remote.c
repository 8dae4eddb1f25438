/* The steps deploy takes on a host, over one SSH session: inspect what is
 * there (systemd or not, running or not, which files are identical),
 * install (stop, create the directories and the marker, copy what differs,
 * start), and remove (stop, then delete exactly what the marker lists).
 * Each step blocks (controller/ssh/session.h): for the thread pool. */
#include "controller/deploy/remote.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "controller/experiment/inventory.h"
#include "controller/ssh/session.h"
#include "controller/ssh/sftp.h"

#define MARKER ".faultline-deploy"
/* The files deploy may put under deploy_dir, as the marker lists them. */
#define OWN_FILES                                                                                  \
    "bin/faultline-agent faultline.key agent.yaml run.sh agent.log supervisor.pid agent.pid"

static uint64_t step_deadline(const struct fl_deploy_remote *r)
{
    return fl_mono_ns() + r->o->timeout_ms * 1000000ull;
}

/* Runs cmd; a non-zero exit is an error naming what and the output. */
static int run(struct fl_deploy_remote *r, const char *what, const char *cmd, char *out, size_t cap)
{
    char buf[2048];
    char *o = out != NULL ? out : buf;
    size_t c = out != NULL ? cap : sizeof(buf);
    int status = -1;
    int rc = fl_ssh_exec(r->s, cmd, step_deadline(r), &status, o, c, r->err, sizeof(r->err));
    if (rc < 0)
        return rc;
    if (status != 0) {
        size_t n = strlen(o);
        while (n > 0 && (o[n - 1] == '\n' || o[n - 1] == '\r'))
            o[--n] = '\0';
        snprintf(r->err, sizeof(r->err), "%s failed on the host (exit %d)%s%.400s", what, status,
                 n ? ": " : "", o);
        return -EIO;
    }
    return 0;
}

/* alive PID: running and not a zombie (an orphan whose reaper is slow). */
#define SH_ALIVE                                                                                   \
    "alive() { kill -0 \"$1\" 2>/dev/null && ! grep -qs '^[0-9]* (.*) Z' \"/proc/$1/stat\"; }; "

int fl_deploy_remote_inspect(struct fl_deploy_remote *r)
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
             r->lay.qdir, r->lay.unit, r->lay.unit);
    int rc = run(r, "inspecting", cmd, out, sizeof(out));
    if (rc < 0)
        return rc;
    r->systemd = strstr(out, "fl:systemd") != NULL;
    r->running = strstr(out, "fl:running") != NULL;
    r->present = strstr(out, "fl:present") != NULL;
    r->unit_dir_writable = strstr(out, "fl:unitdir") != NULL;
    fl_deploy_layout_settle(&r->lay, r->systemd);
    char *save = NULL;
    for (char *line = out; line != NULL && *line != '\0'; line = save) {
        save = strchr(line, '\n');
        if (save != NULL)
            *save++ = '\0';
        if (strlen(line) < 67 || line[64] != ' ')
            continue;
        const char *path = line + 66; /* "<sha>  <path>" */
        for (int i = 0; i < FL_N_ART; i++)
            if (strcmp(path, r->lay.art[i].path) == 0 && strncmp(line, r->lay.art[i].sha, 64) == 0)
                r->lay.art[i].same = true;
    }
    return 0;
}

/* Stops the agent with SIGTERM (it reverts its faults and compacts its
 * journal); r->killed says whether it had to be SIGKILLed instead. */
static int stop_agent(struct fl_deploy_remote *r)
{
    char cmd[4096], out[1024];
    if (r->systemd) {
        /* KillMode=mixed: SIGTERM, and SIGKILL after TimeoutStopSec (Result=timeout) */
        snprintf(cmd, sizeof(cmd),
                 "systemctl stop %s 2>&1; [ \"$(systemctl show -p Result --value %s "
                 "2>/dev/null)\" = timeout ] && echo fl:killed; true",
                 r->lay.unit, r->lay.unit);
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
                 r->lay.qdir);
    }
    int rc = run(r, "stopping the agent", cmd, out, sizeof(out));
    if (rc == 0 && strstr(out, "fl:killed") != NULL)
        r->killed = true;
    return rc;
}

static int start_agent(struct fl_deploy_remote *r)
{
    char cmd[2048];
    if (r->systemd)
        snprintf(cmd, sizeof(cmd),
                 "systemctl daemon-reload && systemctl enable --quiet %s && systemctl restart %s",
                 r->lay.unit, r->lay.unit);
    else
        snprintf(cmd, sizeof(cmd),
                 "D=%s; cd / && if command -v setsid >/dev/null 2>&1; then "
                 "setsid sh \"$D/run.sh\" </dev/null >/dev/null 2>&1 & "
                 "else nohup sh \"$D/run.sh\" </dev/null >/dev/null 2>&1 & fi",
                 r->lay.qdir);
    return run(r, "starting the agent", cmd, NULL, 0);
}

int fl_deploy_remote_install(struct fl_deploy_remote *r)
{
    char cmd[2048];
    int rc = 0;
    if (r->systemd && !r->lay.art[FL_ART_START].same && !r->unit_dir_writable) {
        snprintf(r->err, sizeof(r->err),
                 "systemd runs on the host, and ssh user %s cannot write /etc/systemd/system "
                 "to install the unit %s.service (nor manage it with systemctl): deploy as root "
                 "(ssh.user: root)",
                 r->h->ssh.user ? r->h->ssh.user : "(the current user)", r->lay.unit);
        return -EACCES;
    }
    if (r->running || r->present)
        rc = stop_agent(r);
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
                 r->lay.qdir);
        rc = run(r, "creating the directories", cmd, NULL, 0);
    }
    for (int i = 0; i < FL_N_ART && rc == 0; i++) {
        if (r->lay.art[i].same)
            continue;
        rc = fl_ssh_upload(r->s, r->lay.art[i].data, r->lay.art[i].len, r->lay.art[i].path,
                           r->lay.art[i].mode, step_deadline(r), r->err, sizeof(r->err));
    }
    if (rc == 0)
        rc = start_agent(r);
    return rc;
}

int fl_deploy_remote_remove(struct fl_deploy_remote *r, bool *installed)
{
    char cmd[4096], out[1024];
    int rc = fl_deploy_remote_inspect(r);
    if (rc < 0)
        return rc;
    snprintf(cmd, sizeof(cmd),
             "D=%s; [ -d \"$D\" ] && echo fl:dir; [ -f \"$D/" MARKER "\" ] && echo fl:marker; "
             "[ -f /etc/systemd/system/%s.service ] && echo fl:unit; exit 0",
             r->lay.qdir, r->lay.unit);
    if ((rc = run(r, "inspecting", cmd, out, sizeof(out))) < 0)
        return rc;
    bool had_unit = strstr(out, "fl:unit") != NULL;
    bool had_dir = strstr(out, "fl:dir") != NULL;
    bool marked = strstr(out, "fl:marker") != NULL;
    if (!r->present && !r->running && !had_unit && !had_dir) {
        *installed = false;
        return 0;
    }
    if (had_dir && !marked) {
        snprintf(r->err, sizeof(r->err),
                 "%.400s has no " MARKER " file, so this faultline deploy did not install "
                 "there (or an older one did): nothing was stopped or removed; remove it by "
                 "hand, or deploy once more (which adds the marker) and uninstall again",
                 r->lay.dir);
        return -EPERM;
    }
    if (had_unit) {
        if ((rc = stop_agent(r)) < 0)
            return rc;
        snprintf(cmd, sizeof(cmd),
                 "systemctl disable --quiet %s; rm -f -- /etc/systemd/system/%s.service "
                 "/etc/systemd/system/%s.service.tmp-faultline.* && systemctl daemon-reload",
                 r->lay.unit, r->lay.unit, r->lay.unit);
        if ((rc = run(r, "removing the systemd unit", cmd, NULL, 0)) < 0)
            return rc;
    } else if ((rc = stop_agent(r)) < 0) {
        return rc;
    }
    if (!had_dir) {
        *installed = true;
        return 0;
    }
    snprintf(cmd, sizeof(cmd),
             "D=%s; grep -qs '\"op\":\"apply\"' \"$D/state/journal\" && echo fl:active; exit 0",
             r->lay.qdir);
    if ((rc = run(r, "reading the journal", cmd, out, sizeof(out))) < 0)
        return rc;
    bool active = strstr(out, "fl:active") != NULL;
    bool keep_state = r->killed || active;
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
             r->lay.qdir,
             keep_state ? "" : "has 'dir state' && { rm -rf -- \"$D/state\" || exit 1; }; ",
             keep_state ? "exit 0"
                        : "own=; has 'dir .' && own=1; rm -f -- \"$M\" || exit 1; "
                          "if [ -n \"$own\" ]; then rmdir -- \"$D\" 2>/dev/null || echo fl:kept; "
                          "elif [ -n \"$(ls -A -- \"$D\")\" ]; then echo fl:kept; fi");
    if ((rc = run(r, "removing the files", cmd, out, sizeof(out))) < 0)
        return rc;
    if (keep_state)
        snprintf(r->note, sizeof(r->note),
                 "%.100s/state kept (the journal): %s; deploy again to start the agent, which "
                 "reverts what it lists, then uninstall again",
                 r->lay.dir,
                 active ? "it still marks faults active" : "the agent had to be SIGKILLed");
    else if (strstr(out, "fl:kept") != NULL)
        snprintf(r->note, sizeof(r->note), "%.100s kept: it holds files deploy did not put there",
                 r->lay.dir);
    *installed = true;
    return 0;
}

int fl_deploy_remote_open(struct fl_deploy_remote *r)
{
    const struct fl_ssh_opts *o = &r->h->ssh;
    struct fl_ssh_target t = {
        .name = r->h->name,
        .address = r->h->address,
        .port = o->port,
        .user = o->user,
        .identity_file = o->identity_file,
        .known_hosts = o->known_hosts,
        .accept_new = r->o->accept_new_host_keys,
    };
    return fl_ssh_open(&t, step_deadline(r), &r->s, r->err, sizeof(r->err));
}
