/* HTTP probe: libcurl's multi interface driven by libuv.
 *
 * One driver per loop (struct multi around controller/net/curluv.h, which
 * owns the CURLM, its polls and its timer), shared by every HTTP probe on
 * it, made for the first attempt and closed when the last HTTP probe on
 * that loop is released (not when the last transfer ends: at a few attempts
 * in flight a multi made and unmade per attempt cost a wakeup socketpair and
 * a timer each time). The driver hands a finished transfer back after curl
 * has returned, never from inside one of its callbacks.
 *
 * Threads (issue 12 item 4): each probe thread runs its own loop, so its own
 * driver; a driver, its sockets and its probes' easy handles are only
 * touched from the thread of their loop. The one shared thing, the list of
 * multis by loop, is guarded by a mutex and looked up once per probe (its
 * first attempt); curl_global_init runs once per process
 * (fl_curluv_global_init), before any thread uses curl.
 *
 * Each probe keeps one easy handle (struct http_probe, the kind's state),
 * set up at its first attempt and added to the multi again for each next
 * one: its options stay set between transfers, so an attempt costs no
 * curl_easy_init and no setopt but the driver's CURLOPT_PRIVATE. Every attempt is still a fresh
 * connection (CURLOPT_FRESH_CONNECT and CURLOPT_FORBID_REUSE: a probe measures the service, not a
 * cached socket, as blackbox_exporter does), no signals, no redirects. A probe's attempts never
 * overlap (probe.h), so one handle is enough. The body is never kept: with body_contains, its first
 * BODY_CAP bytes are searched as they stream past (a carry of the needle's length minus one joins
 * the chunks), so an attempt in flight holds a few hundred bytes, not a body buffer (issue 12 item
 * 5: a thousand attempts in flight held 64 MiB of them). The runner's deadline cancels an attempt
 * by taking it out of the driver (fl_curluv_cancel: its callback never runs).
 *
 *   IDLE ──(start: add)──► ADDED ──(done)──► check status/body ──► end ──► IDLE
 *                            └──(cancel)──► out of the driver ──► end (ignored) ──► IDLE
 */
#include "controller/probes/probe.h"

#include <curl/curl.h>
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "controller/net/curluv.h"

#define BODY_CAP (64u * 1024u)

struct multi;

/* One probe's attempt, the same one again each time (in struct http_probe). */
struct http_attempt {
    struct fl_probe *p;
    struct multi *m;
    CURL *easy;
    struct fl_curluv_xfer xfer;
    bool in_multi; /* between start and end */
    CURLcode result;
    char errbuf[CURL_ERROR_SIZE];
    size_t body_seen; /* bytes of the body searched, up to BODY_CAP */
    bool matched;     /* body_contains found (or none asked for) */
    char *carry;      /* the last needle-length-minus-one bytes searched */
    size_t carry_len;
};

/* What a probe keeps between attempts (*fl_probe_kind_state). */
struct http_probe {
    struct http_attempt a; /* a.easy, a.carry and a.m live as long as the probe */
    struct curl_slist *headers;
};

struct multi {
    uv_loop_t *loop;
    struct fl_curluv *cu;
    size_t n_users; /* probes that hold it (struct http_probe) */
    struct multi *next;
};

/* One per loop. The list is shared by every thread (guarded by multis_lock);
 * a multi itself only by its loop's thread. */
static struct multi *multis;
static pthread_mutex_t multis_lock = PTHREAD_MUTEX_INITIALIZER;

/* Before any thread uses curl (probe threads call it before they start). */
int fl_probe_http_global_init(void)
{
    return fl_curluv_global_init();
}

/* ------------------------------------------------------------ the multi */

/* The loop's multi, made if need be; the caller holds it (n_users). */
static int multi_get(uv_loop_t *loop, struct multi **out)
{
    pthread_mutex_lock(&multis_lock);
    struct multi *m = multis;
    while (m != NULL && m->loop != loop)
        m = m->next;
    pthread_mutex_unlock(&multis_lock);
    if (m != NULL) {
        m->n_users++;
        *out = m;
        return 0;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL)
        return -ENOMEM;
    m->loop = loop;
    int rc = fl_curluv_new(loop, "http probe", &m->cu);
    if (rc < 0) {
        free(m);
        return rc;
    }
    m->n_users = 1;
    pthread_mutex_lock(&multis_lock);
    m->next = multis;
    multis = m;
    pthread_mutex_unlock(&multis_lock);
    *out = m;
    return 0;
}

/* The last probe gone, no transfer left: m is closed and freed. */
static void multi_put(struct multi *m)
{
    assert(m->n_users > 0);
    if (--m->n_users > 0)
        return;
    assert(fl_curluv_count(m->cu) == 0);
    pthread_mutex_lock(&multis_lock);
    for (struct multi **pp = &multis; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    }
    pthread_mutex_unlock(&multis_lock);
    fl_curluv_close(m->cu, NULL, NULL);
    free(m);
}

/* ------------------------------------------------------------ an attempt */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct http_attempt *a = userp;
    size_t n = size * nmemb;
    if (a->matched || a->body_seen >= BODY_CAP)
        return n; /* read and dropped, the transfer goes on */
    const char *needle = fl_probe_get_spec(a->p)->u.http.body_contains;
    size_t nl = strlen(needle);
    size_t take = n < BODY_CAP - a->body_seen ? n : BODY_CAP - a->body_seen;
    a->body_seen += take;
    /* a match across the boundary: the carry and the chunk's first bytes */
    if (a->carry_len > 0) {
        char join[2 * FL_PROBE_BODY_CONTAINS_MAX]; /* carry + head: under nl each */
        size_t head = take < nl - 1 ? take : nl - 1;
        memcpy(join, a->carry, a->carry_len);
        memcpy(join + a->carry_len, data, head);
        if (memmem(join, a->carry_len + head, needle, nl) != NULL) {
            a->matched = true;
            return n;
        }
    }
    if (memmem(data, take, needle, nl) != NULL) {
        a->matched = true;
        return n;
    }
    /* the next carry: the last nl - 1 bytes of carry + chunk */
    size_t keep = nl - 1;
    if (take >= keep) {
        memcpy(a->carry, data + take - keep, keep);
    } else {
        size_t from_carry = keep - take < a->carry_len ? keep - take : a->carry_len;
        memmove(a->carry, a->carry + a->carry_len - from_carry, from_carry);
        memcpy(a->carry + from_carry, data, take);
        keep = from_carry + take;
    }
    a->carry_len = keep;
    return n;
}

/* What the probe held for its attempts; once it is stopped, no attempt alive. */
static void http_release(void *state)
{
    struct http_probe *hp = state;
    struct http_attempt *a = &hp->a;
    assert(!a->in_multi);
    if (a->easy != NULL)
        curl_easy_cleanup(a->easy);
    curl_slist_free_all(hp->headers);
    free(a->carry);
    struct multi *m = a->m;
    free(hp);
    if (m != NULL)
        multi_put(m);
}

static const char *connect_error(struct http_attempt *a)
{
    long os_errno = 0;
    if (curl_easy_getinfo(a->easy, CURLINFO_OS_ERRNO, &os_errno) == CURLE_OK && os_errno > 0 &&
        (a->result == CURLE_COULDNT_CONNECT || a->result == CURLE_RECV_ERROR ||
         a->result == CURLE_SEND_ERROR))
        return uv_strerror((int)-os_errno);
    return a->errbuf[0] != '\0' ? a->errbuf : curl_easy_strerror(a->result);
}

static bool status_expected(const struct fl_probe_http *spec, long status)
{
    if (spec->n_expect_status == 0)
        return status >= 200 && status <= 299;
    for (size_t i = 0; i < spec->n_expect_status; i++)
        if ((long)spec->expect_status[i] == status)
            return true;
    return false;
}

static void describe_expected(const struct fl_probe_http *spec, char *buf, size_t len)
{
    if (spec->n_expect_status == 0) {
        snprintf(buf, len, "2xx");
        return;
    }
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < spec->n_expect_status && off < len; i++) {
        int n = snprintf(buf + off, len - off, "%s%u",
                         i == 0 ? "" : (i + 1 == spec->n_expect_status ? " or " : ", "),
                         spec->expect_status[i]);
        if (n < 0)
            break;
        off += (size_t)n;
    }
}

static void attempt_finish(struct http_attempt *a)
{
    struct fl_probe *p = a->p;
    const struct fl_probe_http *spec = &fl_probe_get_spec(p)->u.http;
    bool ok = false;
    char detail[160];
    long status = 0;

    if (a->result != CURLE_OK) {
        snprintf(detail, sizeof(detail), "%.159s", connect_error(a));
    } else if (curl_easy_getinfo(a->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK) {
        snprintf(detail, sizeof(detail), "no status");
    } else if (!status_expected(spec, status)) {
        char want[96];
        describe_expected(spec, want, sizeof(want));
        snprintf(detail, sizeof(detail), "status %ld, expected %s", status, want);
    } else if (!a->matched) {
        snprintf(detail, sizeof(detail), "body lacks \"%.96s\"%s", spec->body_contains,
                 a->body_seen == BODY_CAP ? " (in its first 64 KiB)" : "");
    } else {
        ok = true;
        snprintf(detail, sizeof(detail), "%ld", status);
    }
    a->in_multi = false;
    fl_probe_attempt_end(p, ok, "%s", detail);
}

/* The driver hands the transfer back (curluv.h). */
static void on_done(void *ctx, CURL *easy, CURLcode result)
{
    struct http_attempt *a = ctx;
    assert(easy == a->easy);
    a->result = result;
    attempt_finish(a);
}

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        CURLcode c_ = curl_easy_setopt(a->easy, opt, val);                                         \
        if (c_ != CURLE_OK) {                                                                      \
            snprintf(err, err_len, "cannot set " #opt ": %s", curl_easy_strerror(c_));             \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

/* The probe's easy handle and the rest, at its first attempt. Returns 0 or a
 * negative errno with err filled in and nothing kept. */
static int probe_setup(struct fl_probe *p, struct http_probe **out, char *err, size_t err_len)
{
    const struct fl_probe_http *spec = &fl_probe_get_spec(p)->u.http;
    const char *needle = spec->body_contains;
    bool check_body = needle != NULL && needle[0] != '\0';
    if (check_body && strlen(needle) > FL_PROBE_BODY_CONTAINS_MAX) {
        snprintf(err, err_len, "body_contains is longer than %u bytes", FL_PROBE_BODY_CONTAINS_MAX);
        return -EINVAL;
    }
    struct http_probe *hp = calloc(1, sizeof(*hp));
    if (hp == NULL) {
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    struct http_attempt *a = &hp->a;
    a->p = p;
    int rc = multi_get(fl_probe_loop(p), &a->m);
    if (rc < 0) {
        snprintf(err, err_len, "cannot start libcurl: %s", fl_strerror(rc));
        free(hp);
        return rc;
    }
    rc = -ENOMEM;
    if (check_body && (a->carry = malloc(strlen(needle))) == NULL) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    a->easy = curl_easy_init();
    if (a->easy == NULL) {
        snprintf(err, err_len, "cannot start libcurl");
        goto fail;
    }
    for (size_t i = 0; i < spec->n_headers; i++) {
        struct curl_slist *l = curl_slist_append(hp->headers, spec->headers[i]);
        if (l == NULL) {
            snprintf(err, err_len, "out of memory");
            goto fail;
        }
        hp->headers = l;
    }
    rc = -EINVAL;
    SET(CURLOPT_URL, spec->url);
    SET(CURLOPT_ERRORBUFFER, a->errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_FRESH_CONNECT, 1L);
    SET(CURLOPT_FORBID_REUSE, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, a);
    SET(CURLOPT_USERAGENT, "faultline-probe");
    if (hp->headers != NULL)
        SET(CURLOPT_HTTPHEADER, hp->headers);
    if (spec->method != NULL && strcmp(spec->method, "GET") != 0) {
        if (strcmp(spec->method, "HEAD") == 0)
            SET(CURLOPT_NOBODY, 1L);
        else
            SET(CURLOPT_CUSTOMREQUEST, spec->method);
    }
    *out = hp;
    return 0;
fail:
    http_release(hp);
    return rc;
}

static int http_start(struct fl_probe *p, void **attempt, char *err, size_t err_len)
{
    struct http_probe **state = (struct http_probe **)fl_probe_kind_state(p);
    if (*state == NULL) {
        int rc = probe_setup(p, state, err, err_len);
        if (rc < 0)
            return rc;
    }
    struct http_attempt *a = &(*state)->a;
    assert(!a->in_multi); /* attempts never overlap */
    const char *needle = fl_probe_get_spec(p)->u.http.body_contains;
    a->matched = needle == NULL || needle[0] == '\0';
    a->body_seen = 0;
    a->carry_len = 0;
    a->result = CURLE_OK;
    a->errbuf[0] = '\0';
    int rc = fl_curluv_add(a->m->cu, &a->xfer, a->easy, on_done, a, err, err_len);
    if (rc < 0)
        return rc;
    a->in_multi = true;
    *attempt = a;
    return 0;
}

static void http_cancel(void *attempt)
{
    struct http_attempt *a = attempt;
    /* running, or finished and waiting its turn: either way its callback
     * never runs now, and the attempt ends here */
    fl_curluv_cancel(&a->xfer);
    a->in_multi = false;
    fl_probe_attempt_end(a->p, false, "cancelled");
}

const struct fl_probe_kind fl_probe_kind_http = {
    .name = "http",
    .start = http_start,
    .cancel = http_cancel,
    .release = http_release,
};
