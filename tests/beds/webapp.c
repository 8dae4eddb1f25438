/* A stand-in web application for the game-day test bed.
 *
 * A tiny HTTP/1.1 server on libuv that sits behind HAProxy where a real web
 * application would. GET / answers "hello from NAME"; GET /health is what
 * HAProxy checks. With --data-dir, /health behaves like a real application's
 * disk-space health indicator: it fails (503) when the data directory's file
 * system has less than --min-free bytes available, or when a small probe file
 * cannot be written, synced and removed there (ENOSPC, EROFS, EIO...). So a
 * disk-fill fault on the host shows up as the backend going down in HAProxy.
 *
 * Every response carries Content-Length and "Connection: close", and the
 * connection is shut down after the response. The disk probe blocks, so it
 * runs on libuv's thread pool; a client that goes away meanwhile is only
 * freed once the probe is back (a reference count guards the struct).
 *
 * Build: cc -D_GNU_SOURCE -o webapp webapp.c $(pkg-config --cflags --libs libuv)
 * Usage: webapp --listen ADDR:PORT --name NAME [--data-dir DIR --min-free SIZE]
 *               [--pidfile FILE] */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <uv.h>

#define EXIT_USAGE 64
#define MAX_CLIENTS 256
#define REQ_CAP 8192             /* request head limit: beyond this, 431 */
#define RESP_CAP 10240           /* head + body; the body is at most ~4.6 KiB */
#define REQUEST_TIMEOUT_MS 10000 /* whole request head must arrive in this */
#define LINGER_MS 2000           /* after our FIN, wait this long for the peer's */
#define PROBE_NAME ".health-probe"
#define PROBE_SIZE 4096
#define NAME_MAX_LEN 255
#define DIR_MAX_LEN 4000

enum client_state {
    ST_READING,    /* accumulating the request head */
    ST_RESPONDING, /* health probe pending or response being written */
    ST_DRAINING,   /* response sent and write side shut down; waiting for EOF */
};

struct server;

struct client {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t write_req;
    uv_shutdown_t shutdown_req;
    uv_work_t work;
    struct server *srv;
    struct client *prev, *next;
    enum client_state state;
    int refs;    /* tcp handle + timer handle + pending work */
    int closing; /* client_close() has run: handles are closing */
    int peer_eof;
    int work_pending;
    /* Health probe results, written by the worker thread, read in after_work. */
    int stat_err;
    int probe_err;
    unsigned long long avail;
    size_t len;
    char buf[REQ_CAP];
    char resp[RESP_CAP];
};

struct server {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_signal_t sigterm, sigint;
    const char *name;
    const char *data_dir;
    unsigned long long min_free;
    const char *pidfile;
    int stopping;
    int nclients;
    struct client *clients;
};

static void client_close(struct client *c);

/* ---- arguments ---------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fputs("usage: webapp --listen ADDR:PORT --name NAME [--data-dir DIR --min-free SIZE]\n"
          "              [--pidfile FILE]\n"
          "  ADDR:PORT  127.0.0.1:8080 or [::1]:8080\n"
          "  SIZE       bytes, or with a K/KiB, M/MiB, G/GiB suffix (1024-based)\n",
          f);
}

static int bad_arg(const char *opt, const char *val, const char *why)
{
    fprintf(stderr, "webapp: bad %s '%s': %s\n", opt, val, why);
    return -1;
}

/* Parses "N", "NKiB", "NMiB", "NGiB" (also "NB", "NK", "NM", "NG"; suffix case-insensitive). */
static int parse_size(const char *s, unsigned long long *out)
{
    if (*s < '0' || *s > '9')
        return bad_arg("--min-free", s, "expected a number of bytes, e.g. 64MiB");
    errno = 0;
    char *end;
    unsigned long long n = strtoull(s, &end, 10);
    if (errno != 0)
        return bad_arg("--min-free", s, "number out of range");
    unsigned long long mult = 1;
    if (*end == '\0' || strcasecmp(end, "B") == 0)
        mult = 1;
    else if (strcasecmp(end, "K") == 0 || strcasecmp(end, "KiB") == 0)
        mult = 1ULL << 10;
    else if (strcasecmp(end, "M") == 0 || strcasecmp(end, "MiB") == 0)
        mult = 1ULL << 20;
    else if (strcasecmp(end, "G") == 0 || strcasecmp(end, "GiB") == 0)
        mult = 1ULL << 30;
    else
        return bad_arg("--min-free", s, "unknown suffix (use KiB, MiB or GiB)");
    if (n > ULLONG_MAX / mult)
        return bad_arg("--min-free", s, "number out of range");
    *out = n * mult;
    return 0;
}

/* Parses "1.2.3.4:80" or "[::1]:80" into a sockaddr. */
static int parse_listen(const char *s, struct sockaddr_storage *ss)
{
    char host[64];
    const char *port_s;
    int v6 = 0;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':')
            return bad_arg("--listen", s, "expected [IPv6]:PORT");
        size_t hl = (size_t)(rb - s - 1);
        if (hl == 0 || hl >= sizeof(host))
            return bad_arg("--listen", s, "bad IPv6 address");
        memcpy(host, s + 1, hl);
        host[hl] = '\0';
        port_s = rb + 2;
        v6 = 1;
    } else {
        const char *colon = strrchr(s, ':');
        if (colon == NULL)
            return bad_arg("--listen", s, "expected ADDR:PORT");
        size_t hl = (size_t)(colon - s);
        if (hl == 0 || hl >= sizeof(host))
            return bad_arg("--listen", s, "bad address");
        memcpy(host, s, hl);
        host[hl] = '\0';
        if (strchr(host, ':') != NULL)
            return bad_arg("--listen", s, "IPv6 addresses go in brackets: [::1]:PORT");
        port_s = colon + 1;
    }
    if (*port_s == '\0' || strlen(port_s) > 5 || strspn(port_s, "0123456789") != strlen(port_s))
        return bad_arg("--listen", s, "bad port");
    unsigned long port = strtoul(port_s, NULL, 10);
    if (port > 65535)
        return bad_arg("--listen", s, "port out of range");
    memset(ss, 0, sizeof(*ss));
    if (v6) {
        if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) != 0)
            return bad_arg("--listen", s, "bad IPv6 address");
    } else {
        if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) != 0)
            return bad_arg("--listen", s, "bad IPv4 address");
    }
    return 0;
}

/* ---- responses ---------------------------------------------------------------------------- */

static const char *reason_phrase(int code)
{
    switch (code) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}

static void on_timer(uv_timer_t *t)
{
    client_close(t->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct client *c = req->data;
    if (c->closing)
        return;
    if (status < 0 || c->peer_eof) {
        client_close(c);
        return;
    }
    /* Our FIN is out; wait (briefly) for the peer's, so that closing never turns unread
     * request bytes into an RST that could destroy the response in flight. */
    c->state = ST_DRAINING;
    uv_timer_start(&c->timer, on_timer, LINGER_MS, 0);
}

static void on_write(uv_write_t *req, int status)
{
    struct client *c = req->data;
    if (c->closing)
        return;
    if (status < 0) {
        client_close(c);
        return;
    }
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        client_close(c);
}

__attribute__((format(printf, 3, 4))) static void respond(struct client *c, int code,
                                                          const char *fmt, ...)
{
    char body[RESP_CAP / 2];
    va_list ap;
    va_start(ap, fmt);
    int bl = vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    if (bl < 0)
        bl = 0;
    if ((size_t)bl >= sizeof(body))
        bl = (int)sizeof(body) - 1;
    int n = snprintf(c->resp, sizeof(c->resp),
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: %d\r\n"
                     "%s"
                     "Cache-Control: no-store\r\n"
                     "Connection: close\r\n"
                     "\r\n"
                     "%.*s",
                     code, reason_phrase(code), bl, code == 405 ? "Allow: GET\r\n" : "", bl, body);
    if (n < 0 || (size_t)n >= sizeof(c->resp)) {
        client_close(c); /* cannot happen: the body is at most half the buffer */
        return;
    }
    c->state = ST_RESPONDING;
    uv_buf_t b = uv_buf_init(c->resp, (unsigned int)n);
    c->write_req.data = c;
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0)
        client_close(c);
}

/* ---- health ------------------------------------------------------------------------------- */

/* Writes, syncs and removes a 4 KiB file in dir; returns 0 or an errno value. Runs on a
 * worker thread. Several probes may run at once on the same name: each has its own
 * descriptor, and an unlink that finds the file already gone is not an error. */
static int write_probe(const char *dir)
{
    static const char block[PROBE_SIZE];
    char path[DIR_MAX_LEN + sizeof(PROBE_NAME) + 2];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, PROBE_NAME);
    if (n < 0 || (size_t)n >= sizeof(path))
        return ENAMETOOLONG;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno;
    int err = 0;
    size_t off = 0;
    while (off < sizeof(block)) {
        ssize_t w = write(fd, block + off, sizeof(block) - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            err = errno;
            break;
        }
        off += (size_t)w;
    }
    if (err == 0 && fsync(fd) != 0)
        err = errno;
    if (close(fd) != 0 && err == 0 && errno != EINTR)
        err = errno;
    if (unlink(path) != 0 && err == 0 && errno != ENOENT)
        err = errno;
    return err;
}

static void health_work(uv_work_t *req)
{
    struct client *c = req->data;
    const struct server *srv = c->srv;
    struct statvfs st;
    if (statvfs(srv->data_dir, &st) != 0) {
        c->stat_err = errno;
        return;
    }
    c->avail = (unsigned long long)st.f_bavail * (unsigned long long)st.f_frsize;
    if (c->avail < srv->min_free)
        return;
    c->probe_err = write_probe(srv->data_dir);
}

static void client_release(struct client *c)
{
    if (--c->refs > 0)
        return;
    struct server *srv = c->srv;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        srv->clients = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    srv->nclients--;
    free(c);
}

static void health_done(uv_work_t *req, int status)
{
    struct client *c = req->data;
    const struct server *srv = c->srv;
    c->work_pending = 0;
    if (c->closing || status != 0) {
        if (!c->closing)
            client_close(c);
        client_release(c);
        return;
    }
    if (c->stat_err != 0)
        respond(c, 503, "unhealthy: %s: cannot statvfs %s: %s\n", srv->name, srv->data_dir,
                strerror(c->stat_err));
    else if (c->avail < srv->min_free)
        respond(c, 503, "unhealthy: %s: only %llu bytes free in %s (need %llu)\n", srv->name,
                c->avail, srv->data_dir, srv->min_free);
    else if (c->probe_err != 0)
        respond(c, 503, "unhealthy: %s: cannot write to %s: %s\n", srv->name, srv->data_dir,
                strerror(c->probe_err));
    else
        respond(c, 200, "ok %s\n", srv->name);
    client_release(c);
}

/* ---- requests ----------------------------------------------------------------------------- */

static void handle_request(struct client *c, size_t head_len)
{
    struct server *srv = c->srv;
    const char *eol = memmem(c->buf, head_len, "\r\n", 2);
    const char *sp1 = eol ? memchr(c->buf, ' ', (size_t)(eol - c->buf)) : NULL;
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (sp2 == NULL || sp1 == c->buf || sp2 == sp1 + 1 || eol - sp2 - 1 != 8 ||
        memcmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        respond(c, 400, "bad request\n");
        return;
    }
    size_t mlen = (size_t)(sp1 - c->buf);
    const char *target = sp1 + 1;
    size_t tlen = (size_t)(sp2 - target);
    const char *q = memchr(target, '?', tlen);
    if (q != NULL)
        tlen = (size_t)(q - target);
    if (mlen != 3 || memcmp(c->buf, "GET", 3) != 0) {
        respond(c, 405, "method not allowed\n");
        return;
    }
    if (tlen == 1 && target[0] == '/') {
        respond(c, 200, "hello from %s\n", srv->name);
    } else if (tlen == 7 && memcmp(target, "/health", 7) == 0) {
        if (srv->data_dir == NULL) {
            respond(c, 200, "ok %s\n", srv->name);
            return;
        }
        c->state = ST_RESPONDING;
        c->stat_err = 0;
        c->probe_err = 0;
        c->avail = 0;
        c->work.data = c;
        if (uv_queue_work(&srv->loop, &c->work, health_work, health_done) != 0) {
            respond(c, 503, "unhealthy: %s: cannot queue the health check\n", srv->name);
            return;
        }
        c->work_pending = 1;
        c->refs++;
    } else {
        respond(c, 404, "not found\n");
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct client *c = h->data;
    if (c->state == ST_READING)
        *buf = uv_buf_init(c->buf + c->len, (unsigned int)(sizeof(c->buf) - c->len));
    else /* request already taken: anything more is read and dropped */
        *buf = uv_buf_init(c->buf, (unsigned int)sizeof(c->buf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct client *c = s->data;
    if (c->closing)
        return;
    if (nread == UV_EOF && c->state != ST_READING) {
        /* The peer half-closed after its request: still answer, then close. */
        c->peer_eof = 1;
        uv_read_stop(s);
        if (c->state == ST_DRAINING)
            client_close(c);
        return;
    }
    if (nread < 0) {
        client_close(c);
        return;
    }
    if (nread == 0 || c->state != ST_READING)
        return;
    size_t from = c->len >= 3 ? c->len - 3 : 0;
    c->len += (size_t)nread;
    const char *end = memmem(c->buf + from, c->len - from, "\r\n\r\n", 4);
    if (end != NULL)
        handle_request(c, (size_t)(end - c->buf) + 4);
    else if (c->len >= sizeof(c->buf))
        respond(c, 431, "request head larger than %d bytes\n", REQ_CAP);
}

/* ---- connections -------------------------------------------------------------------------- */

static void on_client_closed(uv_handle_t *h)
{
    client_release(h->data);
}

static void client_close(struct client *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->tcp, on_client_closed);
    uv_close((uv_handle_t *)&c->timer, on_client_closed);
    if (c->work_pending)
        uv_cancel((uv_req_t *)&c->work); /* fails harmlessly if already running */
}

static void on_rejected_closed(uv_handle_t *h)
{
    free(h);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct server *srv = server->data;
    if (status < 0) {
        fprintf(stderr, "webapp: accept: %s\n", uv_strerror(status));
        return;
    }
    if (srv->stopping || srv->nclients >= MAX_CLIENTS) {
        /* Over the limit: take the connection off the backlog and close it at once. */
        uv_tcp_t *t = malloc(sizeof(*t));
        if (t == NULL)
            return;
        uv_tcp_init(&srv->loop, t);
        uv_accept(server, (uv_stream_t *)t);
        uv_close((uv_handle_t *)t, on_rejected_closed);
        return;
    }
    struct client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->srv = srv;
    c->state = ST_READING;
    uv_tcp_init(&srv->loop, &c->tcp);
    uv_timer_init(&srv->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->refs = 2;
    c->next = srv->clients;
    if (c->next != NULL)
        c->next->prev = c;
    srv->clients = c;
    srv->nclients++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        client_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_timer_start(&c->timer, on_timer, REQUEST_TIMEOUT_MS, 0);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static void on_signal(uv_signal_t *sig, int signum)
{
    struct server *srv = sig->data;
    (void)signum;
    if (srv->stopping)
        return;
    srv->stopping = 1;
    uv_close((uv_handle_t *)&srv->listener, NULL);
    uv_close((uv_handle_t *)&srv->sigterm, NULL);
    uv_close((uv_handle_t *)&srv->sigint, NULL);
    for (struct client *c = srv->clients; c != NULL; c = c->next)
        client_close(c); /* frees nothing synchronously, so the walk is safe */
}

static void close_all_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Closes whatever is still open (only used on start-up failure) and closes the loop. */
static void shutdown_loop(struct server *srv)
{
    uv_walk(&srv->loop, close_all_walk, NULL);
    uv_run(&srv->loop, UV_RUN_DEFAULT);
    uv_loop_close(&srv->loop);
}

static int format_addr(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, host, sizeof(host));
        return snprintf(out, outlen, "[%s]:%u", host, (unsigned)ntohs(a->sin6_port));
    }
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    uv_ip4_name(a, host, sizeof(host));
    return snprintf(out, outlen, "%s:%u", host, (unsigned)ntohs(a->sin_port));
}

static int write_pidfile(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "%ld\n", (long)getpid());
    return fclose(f) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    static struct server srv;
    const char *listen_s = NULL, *min_free_s = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        const char **dst = NULL;
        if (strcmp(a, "--listen") == 0)
            dst = &listen_s;
        else if (strcmp(a, "--name") == 0)
            dst = &srv.name;
        else if (strcmp(a, "--data-dir") == 0)
            dst = &srv.data_dir;
        else if (strcmp(a, "--min-free") == 0)
            dst = &min_free_s;
        else if (strcmp(a, "--pidfile") == 0)
            dst = &srv.pidfile;
        if (dst == NULL) {
            fprintf(stderr, "webapp: unknown argument '%s'\n", a);
            usage(stderr);
            return EXIT_USAGE;
        }
        if (i + 1 >= argc || argv[i + 1][0] == '\0') {
            fprintf(stderr, "webapp: %s needs a value\n", a);
            return EXIT_USAGE;
        }
        *dst = argv[++i];
    }
    struct sockaddr_storage addr;
    if (listen_s == NULL) {
        fprintf(stderr, "webapp: missing --listen ADDR:PORT\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    if (parse_listen(listen_s, &addr) != 0)
        return EXIT_USAGE;
    if (srv.name == NULL) {
        fprintf(stderr, "webapp: missing --name NAME\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strlen(srv.name) > NAME_MAX_LEN || strpbrk(srv.name, "\r\n") != NULL) {
        bad_arg("--name", srv.name, "at most 255 characters, one line");
        return EXIT_USAGE;
    }
    if (min_free_s != NULL && srv.data_dir == NULL) {
        fprintf(stderr, "webapp: bad --min-free '%s': needs --data-dir\n", min_free_s);
        return EXIT_USAGE;
    }
    if (min_free_s != NULL && parse_size(min_free_s, &srv.min_free) != 0)
        return EXIT_USAGE;
    if (srv.data_dir != NULL && strlen(srv.data_dir) > DIR_MAX_LEN) {
        bad_arg("--data-dir", srv.data_dir, "path too long");
        return EXIT_USAGE;
    }

    signal(SIGPIPE, SIG_IGN);
    int rc = uv_loop_init(&srv.loop);
    if (rc != 0) {
        fprintf(stderr, "webapp: uv_loop_init: %s\n", uv_strerror(rc));
        return 1;
    }
    uv_tcp_init(&srv.loop, &srv.listener);
    srv.listener.data = &srv;
    rc = uv_tcp_bind(&srv.listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv.listener, 511, on_connection);
    if (rc != 0) {
        fprintf(stderr, "webapp: cannot listen on %s: %s\n", listen_s, uv_strerror(rc));
        shutdown_loop(&srv);
        return 1;
    }
    struct sockaddr_storage bound;
    int blen = (int)sizeof(bound);
    if (uv_tcp_getsockname(&srv.listener, (struct sockaddr *)&bound, &blen) != 0)
        bound = addr;
    char shown[INET6_ADDRSTRLEN + 16];
    format_addr(&bound, shown, sizeof(shown));

    uv_signal_init(&srv.loop, &srv.sigterm);
    uv_signal_init(&srv.loop, &srv.sigint);
    srv.sigterm.data = &srv;
    srv.sigint.data = &srv;
    uv_signal_start(&srv.sigterm, on_signal, SIGTERM);
    uv_signal_start(&srv.sigint, on_signal, SIGINT);

    if (srv.pidfile != NULL && write_pidfile(srv.pidfile) != 0) {
        fprintf(stderr, "webapp: cannot write pidfile %s: %s\n", srv.pidfile, strerror(errno));
        shutdown_loop(&srv);
        return 1;
    }
    printf("webapp %s listening on %s\n", srv.name, shown);
    fflush(stdout);

    uv_run(&srv.loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&srv.loop);
    if (srv.pidfile != NULL)
        unlink(srv.pidfile);
    if (rc != 0) {
        fprintf(stderr, "webapp: uv_loop_close: %s\n", uv_strerror(rc));
        return 1;
    }
    return 0;
}
