/* SSH sessions over libssh2, every call bounded by a deadline.
 *
 * libssh2 runs in non-blocking mode. A call that answers EAGAIN is retried
 * after wait_io(), which polls the socket in the directions libssh2 says it
 * is blocked on, in slices of at most SLICE_MS so that a cancel is noticed,
 * and never past the deadline of the current operation (s->deadline).
 *
 *   connect ──► read known_hosts ──► handshake ──► host key check ──► auth ──► ready
 *                                                    (exec, upload)* ──► close
 *
 * known_hosts is read line by line (a line libssh2 cannot parse, such as a
 * key type it does not know or an @cert-authority line, is skipped rather
 * than failing the whole file), and while reading, the key types known for
 * this host are noted: they go first in the host key algorithms offered, so
 * that a host known by its ed25519 key is asked for that key, and a host
 * that presents a key of another type is refused rather than treated as new. */
#include "controller/ssh/session.h"

#include <errno.h>
#include <fcntl.h>
#include <libssh2.h>
#include <libssh2_sftp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <poll.h>
#include <signal.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "common/clock.h"
#include "common/log.h"

#define SLICE_MS 50
#define CLOSE_GRACE_NS (300ull * 1000000ull)
#define WAIT_FAILED (-100000) /* a libssh2 call gave up waiting: see s->io_err */
#define MAX_KNOWN_TYPES 8

struct fl_ssh_session {
    int fd;
    LIBSSH2_SESSION *ssh;
    LIBSSH2_SFTP *sftp;
    uint64_t deadline; /* of the operation in progress */
    int io_err;        /* -ETIMEDOUT or -ECANCELED when WAIT_FAILED */
    atomic_bool cancelled;
    const atomic_bool *cancel_flag; /* the caller's, during fl_ssh_open only */
    char name[128];                 /* for messages */
    char where[300];                /* "address:port" */
};

static uv_once_t init_once = UV_ONCE_INIT;
static int init_rc;

/* Serialises additions to known_hosts files: hosts are opened in parallel,
 * and two jobs must not both add the same host. */
static uv_mutex_t append_lock;

static void init_libssh2(void)
{
    init_rc = libssh2_init(0);
    if (init_rc == 0 && uv_mutex_init(&append_lock) != 0)
        init_rc = -1;
}

/* ------------------------------------------------------------- helpers */

int fl_ssh_quote(const char *arg, char *buf, size_t len)
{
    size_t o = 0;
    if (len < 3)
        return -ENOSPC;
    buf[o++] = '\'';
    for (const char *p = arg; *p != '\0'; p++) {
        if (*p == '\'') {
            if (o + 4 >= len)
                return -ENOSPC;
            memcpy(buf + o, "'\\''", 4);
            o += 4;
        } else {
            if (o + 1 >= len)
                return -ENOSPC;
            buf[o++] = *p;
        }
    }
    if (o + 2 > len)
        return -ENOSPC;
    buf[o++] = '\'';
    buf[o] = '\0';
    return (int)o;
}

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

static int wait_fd(struct fl_ssh_session *s, short events)
{
    for (;;) {
        if (atomic_load(&s->cancelled) || (s->cancel_flag != NULL && atomic_load(s->cancel_flag)))
            return -ECANCELED;
        uint64_t now = fl_mono_ns();
        if (now >= s->deadline)
            return -ETIMEDOUT;
        uint64_t left_ms = (s->deadline - now + 999999u) / 1000000u;
        int slice = left_ms > SLICE_MS ? SLICE_MS : (int)left_ms;
        struct pollfd pfd = {.fd = s->fd, .events = events};
        int n = poll(&pfd, 1, slice);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

/* libssh2 said EAGAIN: wait until the socket is ready the way it wants. */
static int wait_io(struct fl_ssh_session *s)
{
    int dir = libssh2_session_block_directions(s->ssh);
    short ev = 0;
    if (dir & LIBSSH2_SESSION_BLOCK_INBOUND)
        ev |= POLLIN;
    if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)
        ev |= POLLOUT;
    return wait_fd(s, ev != 0 ? ev : POLLIN);
}

/* rc = expr, retried while it says EAGAIN; WAIT_FAILED when the deadline
 * passed or the session was cancelled (the reason in s->io_err). */
#define AGAIN(s, rc, expr)                                                                         \
    do {                                                                                           \
        while (((rc) = (expr)) == LIBSSH2_ERROR_EAGAIN) {                                          \
            int w_ = wait_io(s);                                                                   \
            if (w_ < 0) {                                                                          \
                (s)->io_err = w_;                                                                  \
                (rc) = WAIT_FAILED;                                                                \
                break;                                                                             \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* The same for calls that return a pointer, NULL with EAGAIN as last error. */
#define AGAIN_PTR(s, ptr, expr)                                                                    \
    do {                                                                                           \
        while (((ptr) = (expr)) == NULL &&                                                         \
               libssh2_session_last_errno((s)->ssh) == LIBSSH2_ERROR_EAGAIN) {                     \
            int w_ = wait_io(s);                                                                   \
            if (w_ < 0) {                                                                          \
                (s)->io_err = w_;                                                                  \
                break;                                                                             \
            }                                                                                      \
        }                                                                                          \
    } while (0)

static const char *last_error(struct fl_ssh_session *s)
{
    char *msg = NULL;
    libssh2_session_last_error(s->ssh, &msg, NULL, 0);
    return msg != NULL && *msg != '\0' ? msg : "unknown libssh2 error";
}

/* The error for a call that failed while doing what. */
static int fail(struct fl_ssh_session *s, int rc, const char *what, char *err, size_t errlen)
{
    if (rc == WAIT_FAILED || (s->io_err < 0 && rc == 0)) {
        if (s->io_err == -ECANCELED) {
            snprintf(err, errlen, "%s: cancelled while %s", s->name, what);
            return -ECANCELED;
        }
        snprintf(err, errlen, "%s (%s): timed out while %s", s->name, s->where, what);
        return -ETIMEDOUT;
    }
    snprintf(err, errlen, "%s (%s): %s failed: %s", s->name, s->where, what, last_error(s));
    return -EPROTO;
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
        } else if ((rc = wait_fd(s, POLLOUT)) == 0) {
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

/* ---------------------------------------------------------- known_hosts */

struct known {
    LIBSSH2_KNOWNHOSTS *kh;
    char types[MAX_KNOWN_TYPES][40]; /* key types known for this host: "ssh-ed25519" */
    size_t n_types;
    bool exists;
    bool ends_in_newline;
};

static int base64_decode(const char *in, size_t inlen, unsigned char *out, size_t cap)
{
    if (inlen == 0 || inlen % 4 != 0 || cap < inlen / 4 * 3)
        return -EINVAL;
    int n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)inlen);
    if (n < 0)
        return -EINVAL;
    if (in[inlen - 1] == '=')
        n--;
    if (in[inlen - 2] == '=')
        n--;
    return n;
}

/* Does one known_hosts pattern (plain name or |1|salt|hash) name `name`? */
static bool pattern_matches(const char *pat, size_t plen, const char *name)
{
    if (plen > 3 && strncmp(pat, "|1|", 3) == 0) {
        const char *salt = pat + 3;
        const char *bar = memchr(salt, '|', plen - 3);
        if (bar == NULL)
            return false;
        unsigned char saltb[64], hash[64], mac[EVP_MAX_MD_SIZE];
        int sl = base64_decode(salt, (size_t)(bar - salt), saltb, sizeof(saltb));
        int hl = base64_decode(bar + 1, plen - (size_t)(bar + 1 - pat), hash, sizeof(hash));
        unsigned int ml = 0;
        if (sl <= 0 || hl != 20 ||
            HMAC(EVP_sha1(), saltb, sl, (const unsigned char *)name, strlen(name), mac, &ml) ==
                NULL)
            return false;
        return ml == 20 && memcmp(mac, hash, 20) == 0;
    }
    return strlen(name) == plen && strncasecmp(pat, name, plen) == 0;
}

/* The host field of a line (comma-separated patterns) names host:port? As
 * libssh2 checks: "[host]:port", then the plain host. Negations and
 * wildcards are not supported (libssh2 does not support them either). */
static bool hosts_match(const char *field, size_t flen, const char *host, uint16_t port)
{
    char bracketed[300];
    snprintf(bracketed, sizeof(bracketed), "[%s]:%u", host, (unsigned)port);
    const char *p = field, *end = field + flen;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        size_t len = comma ? (size_t)(comma - p) : (size_t)(end - p);
        if (len > 0 && p[0] != '!' &&
            (pattern_matches(p, len, bracketed) || pattern_matches(p, len, host)))
            return true;
        p += len + 1;
    }
    return false;
}

static void note_type(struct known *k, const char *type, size_t len)
{
    if (len >= sizeof(k->types[0]) || k->n_types == MAX_KNOWN_TYPES)
        return;
    for (size_t i = 0; i < k->n_types; i++)
        if (strlen(k->types[i]) == len && strncmp(k->types[i], type, len) == 0)
            return;
    memcpy(k->types[k->n_types], type, len);
    k->types[k->n_types][len] = '\0';
    k->n_types++;
}

static int read_known_hosts(struct fl_ssh_session *s, const char *path, const char *host,
                            uint16_t port, struct known *k, char *err, size_t errlen)
{
    k->kh = libssh2_knownhost_init(s->ssh);
    if (k->kh == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        if (errno == ENOENT)
            return 0; /* no file: no host is known */
        int e = errno;
        snprintf(err, errlen,
                 "%s: cannot read known_hosts %s: %s: fix its permissions or set "
                 "ssh.known_hosts",
                 s->name, path, strerror(e));
        return -e;
    }
    k->exists = true;
    k->ends_in_newline = true;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        k->ends_in_newline = line[n - 1] == '\n';
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#' || *p == '\n' || *p == '\0' || *p == '@')
            continue; /* comments, blank lines, @cert-authority and @revoked markers */
        size_t hlen = strcspn(p, " \t");
        char *type = p + hlen;
        type += strspn(type, " \t");
        size_t tlen = strcspn(type, " \t\r\n");
        if (tlen > 0 && hosts_match(p, hlen, host, port))
            note_type(k, type, tlen);
        /* A line libssh2 cannot parse (a key type it does not know) is skipped. */
        libssh2_knownhost_readline(k->kh, p, strlen(p), LIBSSH2_KNOWNHOST_FILE_OPENSSH);
    }
    free(line);
    fclose(f);
    return 0;
}

/* Host key algorithms for a known_hosts key type. */
static const char *algorithms_of(const char *type)
{
    if (strcmp(type, "ssh-rsa") == 0)
        return "rsa-sha2-512,rsa-sha2-256,ssh-rsa";
    return type;
}

static const char *const all_algorithms[] = {
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
    "ssh-rsa",
    "ssh-dss",
};

static bool supported(const char **algs, int n, const char *name, size_t len)
{
    for (int i = 0; i < n; i++)
        if (strlen(algs[i]) == len && strncmp(algs[i], name, len) == 0)
            return true;
    return false;
}

/* Appends the supported algorithms of the comma-separated list to pref,
 * each once. (Only supported ones: libssh2 1.10 strips unknown names with an
 * overlapping memcpy.) */
static void add_algorithms(char *pref, size_t cap, const char *list, const char **algs, int n)
{
    const char *p = list;
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        size_t o = strlen(pref);
        bool dup = false;
        for (const char *q = pref; *q != '\0' && !dup;
             q += strcspn(q, ",") + (q[strcspn(q, ",")] ? 1 : 0))
            dup = strcspn(q, ",") == len && strncmp(q, p, len) == 0;
        if (!dup && supported(algs, n, p, len) && o + len + 2 < cap)
            snprintf(pref + o, cap - o, "%s%.*s", o ? "," : "", (int)len, p);
        p += len + (p[len] == ',' ? 1 : 0);
    }
}

/* The known types first, then every other algorithm. */
static void prefer_known(struct fl_ssh_session *s, const struct known *k)
{
    if (k->n_types == 0)
        return;
    const char **algs = NULL;
    int n = libssh2_session_supported_algs(s->ssh, LIBSSH2_METHOD_HOSTKEY, &algs);
    if (n <= 0)
        return;
    char pref[512] = "";
    for (size_t i = 0; i < k->n_types; i++)
        add_algorithms(pref, sizeof(pref), algorithms_of(k->types[i]), algs, n);
    for (size_t i = 0; i < sizeof(all_algorithms) / sizeof(all_algorithms[0]); i++)
        add_algorithms(pref, sizeof(pref), all_algorithms[i], algs, n);
    libssh2_free(s->ssh, algs);
    if (pref[0] != '\0' && libssh2_session_method_pref(s->ssh, LIBSSH2_METHOD_HOSTKEY, pref) != 0)
        fl_debug("ssh %s: host key preference '%s' not taken", s->name, pref);
}

static const char *key_type_name(int type, int *knownhost_bit)
{
    switch (type) {
    case LIBSSH2_HOSTKEY_TYPE_RSA:
        *knownhost_bit = LIBSSH2_KNOWNHOST_KEY_SSHRSA;
        return "ssh-rsa";
    case LIBSSH2_HOSTKEY_TYPE_DSS:
        *knownhost_bit = LIBSSH2_KNOWNHOST_KEY_SSHDSS;
        return "ssh-dss";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
        *knownhost_bit = LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
        return "ecdsa-sha2-nistp256";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
        *knownhost_bit = LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
        return "ecdsa-sha2-nistp384";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
        *knownhost_bit = LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
        return "ecdsa-sha2-nistp521";
    case LIBSSH2_HOSTKEY_TYPE_ED25519:
        *knownhost_bit = LIBSSH2_KNOWNHOST_KEY_ED25519;
        return "ssh-ed25519";
    }
    *knownhost_bit = LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
    return "unknown";
}

/* "SHA256:base64" as OpenSSH prints it. */
static void fingerprint(struct fl_ssh_session *s, char *buf, size_t len)
{
    const char *h = libssh2_hostkey_hash(s->ssh, LIBSSH2_HOSTKEY_HASH_SHA256);
    unsigned char b64[64];
    if (h == NULL) {
        snprintf(buf, len, "(no fingerprint)");
        return;
    }
    int n = EVP_EncodeBlock(b64, (const unsigned char *)h, 32);
    while (n > 0 && b64[n - 1] == '=')
        n--;
    snprintf(buf, len, "SHA256:%.*s", n, (const char *)b64);
}

static int append_known_host(const char *path, const struct known *k, const char *host,
                             uint16_t port, const char *type, const char *key, size_t key_len,
                             char *err, size_t errlen)
{
    size_t b64cap = 4 * ((key_len + 2) / 3) + 1;
    unsigned char *b64 = malloc(b64cap);
    if (b64 == NULL)
        return -ENOMEM;
    EVP_EncodeBlock(b64, (const unsigned char *)key, (int)key_len);
    char name[300];
    if (port == FL_SSH_DEFAULT_PORT)
        snprintf(name, sizeof(name), "%s", host);
    else
        snprintf(name, sizeof(name), "[%s]:%u", host, (unsigned)port);
    size_t cap = strlen(name) + strlen(type) + b64cap + 8;
    char *line = malloc(cap);
    int rc = 0;
    if (line == NULL) {
        free(b64);
        return -ENOMEM;
    }
    int n = snprintf(line, cap, "%s%s %s %s\n", k->exists && !k->ends_in_newline ? "\n" : "", name,
                     type, (const char *)b64);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 && errno == ENOENT) {
        /* ~/.ssh may not exist yet: make it as ssh would (0700), then retry */
        char parent[4096];
        snprintf(parent, sizeof(parent), "%s", path);
        char *slash = strrchr(parent, '/');
        if (slash != NULL && slash != parent) {
            *slash = '\0';
            if (mkdir(parent, 0700) == 0)
                fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
            else
                errno = ENOENT;
        }
    }
    if (fd < 0 || write(fd, line, (size_t)n) != n) {
        rc = -errno;
        snprintf(err, errlen, "cannot add the host key of %s to %s: %s", name, path,
                 strerror(errno));
    }
    if (fd >= 0)
        close(fd);
    free(line);
    free(b64);
    return rc;
}

/* What known_hosts k says of the host's key: 0 (known, matches), 1 (no key
 * of any type known for the host: new), or a negative errno with err
 * (changed, known only by another type, cannot check). */
static int judge_key(struct fl_ssh_session *s, const struct known *k, const char *kh_path,
                     const char *address, uint16_t port, const char *key, size_t len, int bit,
                     const char *tname, const char *fp, char *err, size_t errlen)
{
    struct libssh2_knownhost *found = NULL;
    int r = libssh2_knownhost_checkp(
        k->kh, address, port, key, len,
        LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | bit, &found);
    if (r == LIBSSH2_KNOWNHOST_CHECK_MATCH)
        return 0;
    if (r == LIBSSH2_KNOWNHOST_CHECK_MISMATCH) {
        snprintf(err, errlen,
                 "host key for %s (%s) has CHANGED: it is now %s %s, which differs from the one "
                 "in %s. Someone may be intercepting the connection, or the host was "
                 "reinstalled; check with its owner, then remove the old line from %s",
                 s->name, s->where, tname, fp, kh_path, kh_path);
        return -EKEYREJECTED;
    }
    if (r != LIBSSH2_KNOWNHOST_CHECK_NOTFOUND) {
        snprintf(err, errlen, "%s (%s): cannot check the host key against %s", s->name, s->where,
                 kh_path);
        return -EPROTO;
    }
    if (k->n_types > 0) {
        snprintf(err, errlen,
                 "host key for %s (%s) is %s %s, but %s knows it only by a key of another type "
                 "(%s): refused as a changed key; check with its owner, then fix %s",
                 s->name, s->where, tname, fp, kh_path, k->types[0], kh_path);
        return -EKEYREJECTED;
    }
    return 1;
}

static int check_host_key(struct fl_ssh_session *s, const struct fl_ssh_target *t,
                          const char *kh_path, uint16_t port, struct known *k, char *err,
                          size_t errlen)
{
    size_t len = 0;
    int type = 0, bit;
    const char *key = libssh2_session_hostkey(s->ssh, &len, &type);
    if (key == NULL) {
        snprintf(err, errlen, "%s (%s): the server sent no host key", s->name, s->where);
        return -EPROTO;
    }
    const char *tname = key_type_name(type, &bit);
    char fp[80];
    fingerprint(s, fp, sizeof(fp));
    int r = judge_key(s, k, kh_path, t->address, port, key, len, bit, tname, fp, err, errlen);
    if (r <= 0)
        return r;
    if (!t->accept_new) {
        snprintf(err, errlen,
                 "host key for %s (%s) is not in known_hosts %s: it is %s %s. Check the "
                 "fingerprint (ssh-keygen -lf on the host's key), then add it (ssh-keyscan) or "
                 "pass --accept-new-host-keys",
                 s->name, s->where, kh_path, tname, fp);
        return -ENOKEY;
    }
    /* Under the lock, read the file again: another job may have added this
     * host meanwhile, with this key (nothing to do), another key (refused as
     * changed) or a key of another type (refused too). Only a host still
     * unknown by every type is appended. */
    uv_mutex_lock(&append_lock);
    struct known again;
    memset(&again, 0, sizeof(again));
    int rc = read_known_hosts(s, kh_path, t->address, port, &again, err, errlen);
    if (rc == 0)
        rc = judge_key(s, &again, kh_path, t->address, port, key, len, bit, tname, fp, err, errlen);
    if (rc == 1) {
        rc = append_known_host(kh_path, &again, t->address, port, tname, key, len, err, errlen);
        if (rc == 0)
            fl_warn("%s (%s): added host key %s %s to %s", s->name, s->where, tname, fp, kh_path);
    }
    uv_mutex_unlock(&append_lock);
    if (again.kh != NULL)
        libssh2_knownhost_free(again.kh);
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
                rc = fail(s, r, "authenticating with a key of ssh-agent", err, errlen);
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
        return fail(s, r, "authenticating", err, errlen);
    if (r != LIBSSH2_ERROR_FILE && !refused(r))
        return fail(s, r, "authenticating", err, errlen); /* the transport, not a refusal */
    if (r == LIBSSH2_ERROR_FILE) {
        snprintf(err, errlen,
                 "%s: cannot use the private key %s (%s); a key with a passphrase must be loaded "
                 "into ssh-agent instead (leave identity_file out)",
                 s->name, path, last_error(s));
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
            wait_fd(s, POLLIN);
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

    struct known k;
    memset(&k, 0, sizeof(k));
    int rc = tcp_connect(s, t, port, err, errlen);
    if (rc == 0 && (s->ssh = libssh2_session_init()) == NULL) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
    }
    if (rc == 0)
        rc = read_known_hosts(s, kh_path, t->address, port, &k, err, errlen);
    if (rc == 0) {
        libssh2_session_set_blocking(s->ssh, 0);
        prefer_known(s, &k);
        int r;
        AGAIN(s, r, libssh2_session_handshake(s->ssh, s->fd));
        if (r != 0)
            rc = fail(s, r, "the SSH handshake", err, errlen);
    }
    if (rc == 0)
        rc = check_host_key(s, t, kh_path, port, &k, err, errlen);
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
        int rc = fail(s, s->io_err < 0 ? WAIT_FAILED : -1, "opening a channel", err, errlen);
        return rc == -EPROTO ? -ENOTCONN : rc; /* the session is gone (sshd restarted?) */
    }
    int r;
    AGAIN(s, r, libssh2_channel_exec(ch, command));
    if (r != 0)
        return fail(s, r, "starting the command", err, errlen);
    /* stdin is empty: say so, or a command that reads it (cat) waits forever */
    AGAIN(s, r, libssh2_channel_send_eof(ch));
    if (r != 0)
        return fail(s, r, "closing the command's input", err, errlen);
    char buf[16384];
    for (;;) {
        bool progress = false;
        ssize_t n = libssh2_channel_read(ch, buf, sizeof(buf));
        if (n > 0) {
            keep(out, cap, &used, buf, (size_t)n);
            progress = true;
        } else if (n < 0 && n != LIBSSH2_ERROR_EAGAIN) {
            return fail(s, (int)n, "reading the command's output", err, errlen);
        }
        n = libssh2_channel_read_stderr(ch, buf, sizeof(buf));
        if (n > 0) {
            keep(out, cap, &used, buf, (size_t)n);
            progress = true;
        } else if (n < 0 && n != LIBSSH2_ERROR_EAGAIN) {
            return fail(s, (int)n, "reading the command's output", err, errlen);
        }
        if (libssh2_channel_eof(ch))
            break;
        if (!progress) {
            int w = wait_io(s);
            if (w < 0) {
                s->io_err = w;
                return fail(s, WAIT_FAILED, "waiting for the command", err, errlen);
            }
        }
    }
    AGAIN(s, r, libssh2_channel_close(ch));
    if (r == 0)
        AGAIN(s, r, libssh2_channel_wait_closed(ch));
    if (r != 0)
        return fail(s, r, "closing the channel", err, errlen);
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
        return fail(s, r, "freeing the channel", err, errlen);
    return 0;
}

/* ---------------------------------------------------------------- upload */

static const char *sftp_reason(unsigned long code)
{
    switch (code) {
    case LIBSSH2_FX_NO_SUCH_FILE:
    case LIBSSH2_FX_NO_SUCH_PATH:
        return "no such directory";
    case LIBSSH2_FX_PERMISSION_DENIED:
    case LIBSSH2_FX_WRITE_PROTECT:
        return "permission denied";
    case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
    case LIBSSH2_FX_QUOTA_EXCEEDED:
        return "no space left";
    }
    return "SFTP error";
}

/* After a failed copy: the temporary file goes, if the session still can
 * (a short grace past an expired deadline; nothing when cancelled). */
static void remove_tmp(struct fl_ssh_session *s, const char *tmp)
{
    if (atomic_load(&s->cancelled) || s->sftp == NULL)
        return;
    uint64_t grace = fl_mono_ns() + CLOSE_GRACE_NS;
    if (s->deadline < grace)
        s->deadline = grace;
    int io_err = s->io_err;
    int r;
    AGAIN(s, r, libssh2_sftp_unlink_ex(s->sftp, tmp, (unsigned)strlen(tmp)));
    (void)r;
    s->io_err = io_err;
}

int fl_ssh_upload(struct fl_ssh_session *s, const void *data, size_t len, const char *remote_path,
                  int mode, uint64_t deadline_ns, char *err, size_t errlen)
{
    s->deadline = deadline_ns;
    s->io_err = 0;
    if (s->sftp == NULL) {
        AGAIN_PTR(s, s->sftp, libssh2_sftp_init(s->ssh));
        if (s->sftp == NULL) {
            if (s->io_err < 0)
                return fail(s, WAIT_FAILED, "starting SFTP", err, errlen);
            snprintf(err, errlen,
                     "%s (%s): cannot start SFTP (%s): the server needs the sftp subsystem "
                     "(openssh-sftp-server)",
                     s->name, s->where, last_error(s));
            return -EPROTO;
        }
    }
    /* A name of its own: two deploys (or two jobs) never share a temporary
     * file, and O_EXCL never writes through one planted there. */
    unsigned char rnd[6];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        snprintf(err, errlen, "%s: no randomness for a temporary name", s->name);
        return -EIO;
    }
    char tmp[1100];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp-faultline.%ld.%02x%02x%02x%02x%02x%02x", remote_path,
                 (long)getpid(), rnd[0], rnd[1], rnd[2], rnd[3], rnd[4],
                 rnd[5]) >= (int)sizeof(tmp)) {
        snprintf(err, errlen, "%s: remote path too long: %s", s->name, remote_path);
        return -ENAMETOOLONG;
    }
    LIBSSH2_SFTP_HANDLE *h;
    AGAIN_PTR(s, h,
              libssh2_sftp_open_ex(s->sftp, tmp, (unsigned)strlen(tmp),
                                   LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL,
                                   mode & 0700, LIBSSH2_SFTP_OPENFILE));
    if (h == NULL) {
        if (s->io_err < 0)
            return fail(s, WAIT_FAILED, "opening a file over SFTP", err, errlen);
        unsigned long code = libssh2_sftp_last_error(s->sftp);
        snprintf(err, errlen, "%s (%s): cannot write %s: %s", s->name, s->where, tmp,
                 sftp_reason(code));
        return code == LIBSSH2_FX_PERMISSION_DENIED ? -EACCES : -EIO;
    }
    /* the final mode before any content: the key is never readable by others */
    LIBSSH2_SFTP_ATTRIBUTES attrs = {.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS,
                                     .permissions = (unsigned long)mode};
    int rc = 0;
    int r;
    AGAIN(s, r, libssh2_sftp_fsetstat(h, &attrs));
    if (r != 0)
        rc = r == WAIT_FAILED ? fail(s, r, "setting a file's mode over SFTP", err, errlen) : -EIO;
    if (r != 0 && rc == -EIO)
        snprintf(err, errlen, "%s (%s): cannot set the mode of %s: %s", s->name, s->where, tmp,
                 sftp_reason(libssh2_sftp_last_error(s->sftp)));
    size_t off = 0;
    while (rc == 0 && off < len) {
        size_t chunk = len - off < 65536 ? len - off : 65536;
        ssize_t n = libssh2_sftp_write(h, (const char *)data + off, chunk);
        if (n == LIBSSH2_ERROR_EAGAIN) {
            int w = wait_io(s);
            if (w < 0) {
                s->io_err = w;
                rc = fail(s, WAIT_FAILED, "copying a file over SFTP", err, errlen);
                break;
            }
            continue;
        }
        if (n < 0) {
            snprintf(err, errlen, "%s (%s): writing %s failed: %s", s->name, s->where, tmp,
                     sftp_reason(libssh2_sftp_last_error(s->sftp)));
            rc = -EIO;
            break;
        }
        off += (size_t)n;
    }
    AGAIN(s, r, libssh2_sftp_close_handle(h));
    if (rc == 0 && r != 0)
        rc = fail(s, r, "closing a file over SFTP", err, errlen);
    if (rc < 0) {
        remove_tmp(s, tmp);
        return rc;
    }

    char qtmp[4500], qpath[4500], cmd[18200];
    if (fl_ssh_quote(tmp, qtmp, sizeof(qtmp)) < 0 ||
        fl_ssh_quote(remote_path, qpath, sizeof(qpath)) < 0) {
        snprintf(err, errlen, "%s: remote path too long: %s", s->name, remote_path);
        remove_tmp(s, tmp);
        return -ENAMETOOLONG;
    }
    snprintf(cmd, sizeof(cmd), "chmod %o -- %s && mv -f -- %s %s || { rm -f -- %s; exit 1; }",
             (unsigned)mode, qtmp, qtmp, qpath, qtmp);
    int status = -1;
    char output[512];
    rc = fl_ssh_exec(s, cmd, deadline_ns, &status, output, sizeof(output), err, errlen);
    if (rc == 0 && status != 0) {
        output[strcspn(output, "\n")] = '\0';
        snprintf(err, errlen, "%s (%s): cannot move %s into place: %s", s->name, s->where, tmp,
                 output);
        return -EIO;
    }
    return rc;
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
