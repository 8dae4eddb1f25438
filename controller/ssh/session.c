/* SSH sessions over libssh2: the transport (bounded name resolution, TCP
 * connect, handshake), authentication, running a command, and closing;
 * every call bounded by a deadline (controller/ssh/io.h). The host key check
 * is controller/ssh/knownhosts.c, the SFTP copy controller/ssh/sftp.c.
 *
 *   connect ──► read known_hosts ──► handshake ──► host key check ──► auth ──► ready
 *                                                    (exec, upload)* ──► close */
#include "controller/ssh/session.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "common/clock.h"
#include "controller/ssh/io.h"
#include "controller/ssh/knownhosts.h"

static uv_once_t init_once = UV_ONCE_INIT;
static int init_rc;

static void init_libssh2(void)
{
    init_rc = libssh2_init(0);
    if (init_rc == 0 && fl_ssh_known_init() != 0)
        init_rc = -1;
}

/* ------------------------------------------------------------- helpers */

int fl_ssh_expand_home(const char *path, char *buf, size_t len)
{
    int n;
    if (strncmp(path, "~/", 2) == 0) {
        const char *home = getenv("HOME");
        struct passwd pw, *res = NULL;
        char pwbuf[1024];
        if (home == NULL || *home == '\0') {
            /* as OpenSSH does: the password database's home of the current user */
            if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof(pwbuf), &res) != 0 || res == NULL ||
                res->pw_dir == NULL || res->pw_dir[0] == '\0')
                return -ENOENT;
            home = res->pw_dir;
        }
        n = snprintf(buf, len, "%s/%s", home, path + 2);
    } else {
        n = snprintf(buf, len, "%s", path);
    }
    return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

/* ------------------------------------------------------------- connect */

/* Name resolution, bounded. getaddrinfo() has no timeout of its own (a dead
 * DNS server holds it for resolv.conf's timeout x attempts x servers), so a
 * numeric address is taken at once, and a name is looked up with glibc's
 * getaddrinfo_a(), waited for in slices like the socket, and abandoned at
 * the deadline or on cancel. An abandoned lookup finishes in glibc's helper
 * thread, whose completion notice frees it (refs): it costs that thread a
 * while, never the caller. (A lookup gai_cancel() removes before it started
 * sends no notice; its block, a few hundred bytes, is then left.) */
struct lookup {
    struct gaicb cb;
    struct addrinfo hints;
    struct sigevent sev;
    atomic_int refs; /* the caller and the completion notice */
    char host[256];
    char service[8];
};

static void lookup_release(struct lookup *l)
{
    if (atomic_fetch_sub(&l->refs, 1) == 1) {
        if (l->cb.ar_result != NULL)
            freeaddrinfo(l->cb.ar_result);
        free(l);
    }
}

static void lookup_done(union sigval v)
{
    lookup_release(v.sival_ptr);
}

/* 0 with *res, or a negative errno: -EHOSTUNREACH with *gai set, or
 * -ETIMEDOUT / -ECANCELED / -ENOMEM. */
static int resolve(struct fl_ssh_session *s, const char *host, const char *service,
                   struct addrinfo **res, int *gai)
{
    struct addrinfo numeric = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
    if (getaddrinfo(host, service, &numeric, res) == 0)
        return 0;
    struct lookup *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return -ENOMEM;
    if (strlen(host) >= sizeof(l->host)) {
        free(l);
        *gai = EAI_NONAME;
        return -EHOSTUNREACH;
    }
    memcpy(l->host, host, strlen(host) + 1);
    snprintf(l->service, sizeof(l->service), "%s", service);
    l->hints.ai_socktype = SOCK_STREAM;
    l->hints.ai_flags = AI_ADDRCONFIG;
    l->cb.ar_name = l->host;
    l->cb.ar_service = l->service;
    l->cb.ar_request = &l->hints;
    l->sev.sigev_notify = SIGEV_THREAD;
    l->sev.sigev_notify_function = lookup_done;
    l->sev.sigev_value.sival_ptr = l;
    atomic_init(&l->refs, 2);
    struct gaicb *list[1] = {&l->cb};
    int g = getaddrinfo_a(GAI_NOWAIT, list, 1, &l->sev);
    if (g != 0) { /* not queued: no notice will come */
        free(l);
        *gai = g;
        return -EHOSTUNREACH;
    }
    int rc = 0;
    while ((g = gai_error(&l->cb)) == EAI_INPROGRESS) {
        uint64_t now = fl_mono_ns();
        if (atomic_load(&s->cancelled) || (s->cancel_flag != NULL && atomic_load(s->cancel_flag))) {
            rc = -ECANCELED;
            break;
        }
        if (now >= s->deadline) {
            rc = -ETIMEDOUT;
            break;
        }
        uint64_t left = s->deadline - now;
        uint64_t slice = left < SLICE_MS * 1000000ull ? left : SLICE_MS * 1000000ull;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)slice};
        gai_suspend((const struct gaicb *const *)list, 1, &ts);
    }
    if (rc < 0) {
        gai_cancel(&l->cb);
        lookup_release(l);
        return rc;
    }
    if (g == 0) {
        *res = l->cb.ar_result;
        l->cb.ar_result = NULL; /* ours now; the notice frees only the block */
    }
    lookup_release(l);
    if (g != 0) {
        *gai = g;
        return -EHOSTUNREACH;
    }
    return 0;
}

static int tcp_connect(struct fl_ssh_session *s, const struct fl_ssh_target *t, uint16_t port,
                       char *err, size_t errlen)
{
    char service[8];
    snprintf(service, sizeof(service), "%u", (unsigned)port);
    struct addrinfo *res = NULL;
    int g = 0;
    int rc = resolve(s, t->address, service, &res, &g);
    if (rc == -EHOSTUNREACH) {
        snprintf(err, errlen, "%s: cannot resolve '%s': %s: check the address in the inventory",
                 s->name, t->address, gai_strerror(g));
        return rc;
    }
    if (rc == -ETIMEDOUT) {
        snprintf(err, errlen,
                 "%s: resolving '%s' took longer than the timeout: is DNS reachable? An IP "
                 "address in the inventory avoids the lookup",
                 s->name, t->address);
        return rc;
    }
    if (rc == -ECANCELED) {
        snprintf(err, errlen, "%s: cancelled while resolving '%s'", s->name, t->address);
        return rc;
    }
    if (rc < 0) {
        snprintf(err, errlen, "%s: out of memory", s->name);
        return rc;
    }
    rc = -EHOSTUNREACH;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        int fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        s->fd = fd;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            rc = 0;
        } else if (errno != EINPROGRESS) {
            rc = -errno;
        } else if ((rc = fl_ssh_wait_fd(s, POLLOUT)) == 0) {
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
            rc = -soerr;
        }
        if (rc == 0)
            break;
        close(fd);
        s->fd = -1;
        if (rc == -ETIMEDOUT || rc == -ECANCELED)
            break;
    }
    freeaddrinfo(res);
    if (rc == -ETIMEDOUT)
        snprintf(err, errlen, "%s (%s): no answer in time: is the host up and the ssh port open?",
                 s->name, s->where);
    else if (rc == -ECONNREFUSED)
        snprintf(err, errlen,
                 "%s (%s): connection refused: is sshd running there, and is ssh.port right?",
                 s->name, s->where);
    else if (rc == -ECANCELED)
        snprintf(err, errlen, "%s: cancelled while connecting", s->name);
    else if (rc < 0)
        snprintf(err, errlen, "%s (%s): cannot connect: %s", s->name, s->where, strerror(-rc));
    return rc;
}

/* ------------------------------------------------------------------ auth */

/* Did the server turn the key down (try another), rather than the
 * transport or the protocol failing (stop, and say so)? */
static bool refused(int r)
{
    return r == LIBSSH2_ERROR_AUTHENTICATION_FAILED || r == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED ||
           r == LIBSSH2_ERROR_PUBLICKEY_UNRECOGNIZED || r == LIBSSH2_ERROR_METHOD_NOT_SUPPORTED;
}

/* ssh-agent: libssh2 1.10 talks to the agent's socket in blocking mode, with
 * no timeout (connect, list, and each signature), so these calls are not
 * bounded by the deadline; the agent is local and answers at once unless it
 * is stuck or waits for a confirmation (ssh-add -c). It is asked only when
 * no identity_file is given. */

static int auth_agent(struct fl_ssh_session *s, const char *user, char *err, size_t errlen)
{
    LIBSSH2_AGENT *ag = libssh2_agent_init(s->ssh);
    if (ag == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = -EACCES;
    if (libssh2_agent_connect(ag) != 0) {
        snprintf(err, errlen,
                 "%s: no identity_file and no ssh-agent to ask for a key: set ssh.identity_file "
                 "in the inventory, or start ssh-agent and ssh-add the key",
                 s->name);
    } else if (libssh2_agent_list_identities(ag) != 0) {
        snprintf(err, errlen,
                 "%s: cannot list the keys of ssh-agent ($SSH_AUTH_SOCK): is it "
                 "running? Or set ssh.identity_file",
                 s->name);
    } else {
        struct libssh2_agent_publickey *id = NULL, *prev = NULL;
        int tried = 0;
        while (libssh2_agent_get_identity(ag, &id, prev) == 0) {
            int r;
            tried++;
            AGAIN(s, r, libssh2_agent_userauth(ag, user, id));
            if (r == 0) {
                rc = 0;
                break;
            }
            if (r == WAIT_FAILED || (!refused(r) && r != LIBSSH2_ERROR_AGENT_PROTOCOL)) {
                /* a dead connection is not a refusal */
                rc = fl_ssh_fail(s, r, "authenticating with a key of ssh-agent", err, errlen);
                break;
            }
            prev = id;
        }
        if (rc == -EACCES)
            snprintf(err, errlen,
                     "%s (%s): user %s was refused with each of the %d key(s) of ssh-agent: add "
                     "one's public key to ~%s/.ssh/authorized_keys there",
                     s->name, s->where, user, tried, user);
        libssh2_agent_disconnect(ag);
    }
    libssh2_agent_free(ag);
    return rc;
}

static int authenticate(struct fl_ssh_session *s, const struct fl_ssh_target *t, char *err,
                        size_t errlen)
{
    char user_buf[256];
    const char *user = t->user;
    if (user == NULL) {
        struct passwd pw, *res = NULL;
        char pwbuf[1024];
        if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof(pwbuf), &res) != 0 || res == NULL) {
            snprintf(err, errlen,
                     "%s: no ssh user given and the current user has no name: set "
                     "ssh.user in the inventory",
                     s->name);
            return -EINVAL;
        }
        snprintf(user_buf, sizeof(user_buf), "%s", pw.pw_name);
        user = user_buf;
    }
    if (t->identity_file == NULL)
        return auth_agent(s, user, err, errlen);
    char path[4096];
    int xr = fl_ssh_expand_home(t->identity_file, path, sizeof(path));
    if (xr < 0) {
        snprintf(err, errlen, "%s: identity_file %s: %s", s->name, t->identity_file,
                 xr == -ENOENT ? "no home directory for ~ ($HOME is unset)" : "path too long");
        return xr == -ENOENT ? -EINVAL : -ENAMETOOLONG;
    }
    if (access(path, R_OK) != 0) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot read the identity_file %s: %s", s->name, path,
                 strerror(e));
        return -e;
    }
    int r;
    AGAIN(s, r,
          libssh2_userauth_publickey_fromfile_ex(s->ssh, user, (unsigned)strlen(user), NULL, path,
                                                 NULL));
    if (r == 0)
        return 0;
    if (r == WAIT_FAILED)
        return fl_ssh_fail(s, r, "authenticating", err, errlen);
    if (r != LIBSSH2_ERROR_FILE && !refused(r))
        return fl_ssh_fail(s, r, "authenticating", err, errlen); /* the transport, not a refusal */
    if (r == LIBSSH2_ERROR_FILE) {
        snprintf(err, errlen,
                 "%s: cannot use the private key %s (%s); a key with a passphrase must be loaded "
                 "into ssh-agent instead (leave identity_file out)",
                 s->name, path, fl_ssh_last_error(s));
        return -EINVAL;
    }
    snprintf(err, errlen,
             "%s (%s): user %s was refused with the key %s: add its public key (%s.pub) to "
             "~%s/.ssh/authorized_keys there, or fix ssh.user / ssh.identity_file",
             s->name, s->where, user, path, path, user);
    return -EACCES;
}

/* ------------------------------------------------------------------ open */

static void free_session(struct fl_ssh_session *s)
{
    if (s->fd >= 0)
        shutdown(s->fd, SHUT_RDWR); /* every further send fails at once, no EAGAIN */
    if (s->sftp != NULL)
        libssh2_sftp_shutdown(s->sftp);
    if (s->ssh != NULL) {
        for (int i = 0; i < 100 && libssh2_session_free(s->ssh) == LIBSSH2_ERROR_EAGAIN; i++)
            fl_ssh_wait_fd(s, POLLIN);
    }
    if (s->fd >= 0)
        close(s->fd);
    free(s);
}

int fl_ssh_open(const struct fl_ssh_target *t, uint64_t deadline_ns, struct fl_ssh_session **out,
                char *err, size_t errlen)
{
    uv_once(&init_once, init_libssh2);
    if (init_rc != 0) {
        snprintf(err, errlen, "cannot initialise libssh2");
        return -ENOMEM;
    }
    uint16_t port = t->port ? t->port : FL_SSH_DEFAULT_PORT;
    char kh_path[4096];
    const char *who = t->name ? t->name : t->address;
    const char *kh = t->known_hosts ? t->known_hosts : "~/.ssh/known_hosts";
    int e = fl_ssh_expand_home(kh, kh_path, sizeof(kh_path));
    if (e < 0) {
        snprintf(err, errlen, "%s: known_hosts %s: %s", who, kh,
                 e == -ENOENT ? "no home directory for ~ ($HOME is unset): set ssh.known_hosts"
                              : "path too long");
        return e == -ENOENT ? -EINVAL : -ENAMETOOLONG;
    }
    struct fl_ssh_session *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->fd = -1;
    s->deadline = deadline_ns;
    atomic_init(&s->cancelled, false);
    s->cancel_flag = t->cancel; /* noticed while connecting; forgotten once open */
    snprintf(s->name, sizeof(s->name), "%s", t->name ? t->name : t->address);
    if (strchr(t->address, ':') != NULL)
        snprintf(s->where, sizeof(s->where), "[%s]:%u", t->address, (unsigned)port);
    else
        snprintf(s->where, sizeof(s->where), "%s:%u", t->address, (unsigned)port);

    struct fl_ssh_known k;
    memset(&k, 0, sizeof(k));
    int rc = tcp_connect(s, t, port, err, errlen);
    if (rc == 0 && (s->ssh = libssh2_session_init()) == NULL) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
    }
    if (rc == 0)
        rc = fl_ssh_read_known_hosts(s, kh_path, t->address, port, &k, err, errlen);
    if (rc == 0) {
        libssh2_session_set_blocking(s->ssh, 0);
        fl_ssh_prefer_known(s, &k);
        int r;
        AGAIN(s, r, libssh2_session_handshake(s->ssh, s->fd));
        if (r != 0)
            rc = fl_ssh_fail(s, r, "the SSH handshake", err, errlen);
    }
    if (rc == 0)
        rc = fl_ssh_check_host_key(s, t, kh_path, port, &k, err, errlen);
    if (k.kh != NULL)
        libssh2_knownhost_free(k.kh);
    if (rc == 0)
        rc = authenticate(s, t, err, errlen);
    if (rc < 0) {
        free_session(s);
        return rc;
    }
    s->cancel_flag = NULL;
    *out = s;
    return 0;
}

/* ------------------------------------------------------------------ exec */

static void keep(char *out, size_t cap, size_t *used, const char *data, size_t n)
{
    if (out == NULL || cap == 0)
        return;
    size_t room = cap - 1 - *used;
    size_t take = n < room ? n : room;
    memcpy(out + *used, data, take);
    *used += take;
    out[*used] = '\0';
}

static int signal_number(const char *name)
{
    static const struct {
        const char *name;
        int num;
    } sigs[] = {{"HUP", 1},   {"INT", 2},   {"QUIT", 3},  {"ILL", 4},   {"ABRT", 6},
                {"FPE", 8},   {"KILL", 9},  {"SEGV", 11}, {"PIPE", 13}, {"ALRM", 14},
                {"TERM", 15}, {"USR1", 10}, {"USR2", 12}};
    for (size_t i = 0; name != NULL && i < sizeof(sigs) / sizeof(sigs[0]); i++)
        if (strcmp(name, sigs[i].name) == 0)
            return sigs[i].num;
    return -1;
}

int fl_ssh_exec(struct fl_ssh_session *s, const char *command, uint64_t deadline_ns,
                int *exit_status, char *out, size_t cap, char *err, size_t errlen)
{
    s->deadline = deadline_ns;
    s->io_err = 0;
    size_t used = 0;
    if (out != NULL && cap > 0)
        out[0] = '\0';
    LIBSSH2_CHANNEL *ch;
    AGAIN_PTR(s, ch, libssh2_channel_open_session(s->ssh));
    if (ch == NULL) {
        int rc = fl_ssh_fail(s, s->io_err < 0 ? WAIT_FAILED : -1, "opening a channel", err, errlen);
        return rc == -EPROTO ? -ENOTCONN : rc; /* the session is gone (sshd restarted?) */
    }
    int r;
    AGAIN(s, r, libssh2_channel_exec(ch, command));
    if (r != 0)
        return fl_ssh_fail(s, r, "starting the command", err, errlen);
    /* stdin is empty: say so, or a command that reads it (cat) waits forever */
    AGAIN(s, r, libssh2_channel_send_eof(ch));
    if (r != 0)
        return fl_ssh_fail(s, r, "closing the command's input", err, errlen);
    char buf[16384];
    for (;;) {
        bool progress = false;
        ssize_t n = libssh2_channel_read(ch, buf, sizeof(buf));
        if (n > 0) {
            keep(out, cap, &used, buf, (size_t)n);
            progress = true;
        } else if (n < 0 && n != LIBSSH2_ERROR_EAGAIN) {
            return fl_ssh_fail(s, (int)n, "reading the command's output", err, errlen);
        }
        n = libssh2_channel_read_stderr(ch, buf, sizeof(buf));
        if (n > 0) {
            keep(out, cap, &used, buf, (size_t)n);
            progress = true;
        } else if (n < 0 && n != LIBSSH2_ERROR_EAGAIN) {
            return fl_ssh_fail(s, (int)n, "reading the command's output", err, errlen);
        }
        if (libssh2_channel_eof(ch))
            break;
        if (!progress) {
            int w = fl_ssh_wait_io(s);
            if (w < 0) {
                s->io_err = w;
                return fl_ssh_fail(s, WAIT_FAILED, "waiting for the command", err, errlen);
            }
        }
    }
    AGAIN(s, r, libssh2_channel_close(ch));
    if (r == 0)
        AGAIN(s, r, libssh2_channel_wait_closed(ch));
    if (r != 0)
        return fl_ssh_fail(s, r, "closing the channel", err, errlen);
    char *signame = NULL;
    libssh2_channel_get_exit_signal(ch, &signame, NULL, NULL, NULL, NULL, NULL);
    if (signame != NULL) {
        int num = signal_number(signame);
        *exit_status = num > 0 ? 128 + num : -1;
        libssh2_free(s->ssh, signame);
    } else {
        *exit_status = libssh2_channel_get_exit_status(ch);
    }
    AGAIN(s, r, libssh2_channel_free(ch));
    if (r != 0)
        return fl_ssh_fail(s, r, "freeing the channel", err, errlen);
    return 0;
}

/* ------------------------------------------------------------------ close */

void fl_ssh_cancel(struct fl_ssh_session *s)
{
    if (s != NULL)
        atomic_store(&s->cancelled, true);
}

void fl_ssh_close(struct fl_ssh_session **sp)
{
    if (sp == NULL || *sp == NULL)
        return;
    struct fl_ssh_session *s = *sp;
    *sp = NULL;
    s->deadline = fl_mono_ns() + CLOSE_GRACE_NS;
    if (!atomic_load(&s->cancelled)) {
        int r;
        if (s->sftp != NULL) {
            AGAIN(s, r, libssh2_sftp_shutdown(s->sftp));
            s->sftp = NULL;
        }
        AGAIN(s, r, libssh2_session_disconnect(s->ssh, "faultline: done"));
        (void)r;
    }
    free_session(s);
}
