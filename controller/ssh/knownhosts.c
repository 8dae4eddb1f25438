/* known_hosts: which host keys are trusted (OpenSSH's format, plain or
 * hashed names, "[host]:port" for ports other than 22), the check of the key
 * a server presents, and the addition of a new host's key.
 *
 * known_hosts is read line by line (a line libssh2 cannot parse, such as a
 * key type it does not know or an @cert-authority line, is skipped rather
 * than failing the whole file), and while reading, the key types known for
 * this host are noted: they go first in the host key algorithms offered, so
 * that a host known by its ed25519 key is asked for that key, and a host
 * that presents a key of another type is refused rather than treated as new. */
#include "controller/ssh/knownhosts.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "common/log.h"
#include "controller/ssh/io.h"

/* Serialises additions to known_hosts files: hosts are opened in parallel,
 * and two jobs must not both add the same host. */
static uv_mutex_t append_lock;

int fl_ssh_known_init(void)
{
    return uv_mutex_init(&append_lock);
}

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

static void note_type(struct fl_ssh_known *k, const char *type, size_t len)
{
    if (len >= sizeof(k->types[0]) || k->n_types == FL_SSH_MAX_KNOWN_TYPES)
        return;
    for (size_t i = 0; i < k->n_types; i++)
        if (strlen(k->types[i]) == len && strncmp(k->types[i], type, len) == 0)
            return;
    memcpy(k->types[k->n_types], type, len);
    k->types[k->n_types][len] = '\0';
    k->n_types++;
}

int fl_ssh_read_known_hosts(struct fl_ssh_session *s, const char *path, const char *host,
                            uint16_t port, struct fl_ssh_known *k, char *err, size_t errlen)
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
void fl_ssh_prefer_known(struct fl_ssh_session *s, const struct fl_ssh_known *k)
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

static int append_known_host(const char *path, const struct fl_ssh_known *k, const char *host,
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
static int judge_key(struct fl_ssh_session *s, const struct fl_ssh_known *k, const char *kh_path,
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

int fl_ssh_check_host_key(struct fl_ssh_session *s, const struct fl_ssh_target *t,
                          const char *kh_path, uint16_t port, struct fl_ssh_known *k, char *err,
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
    struct fl_ssh_known again;
    memset(&again, 0, sizeof(again));
    int rc = fl_ssh_read_known_hosts(s, kh_path, t->address, port, &again, err, errlen);
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
