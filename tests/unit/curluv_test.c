/* The libcurl-multi-on-libuv driver (controller/net/curluv.h) against a real
 * HTTP server on loopback (libmicrohttpd, a thread per connection):
 * - many transfers at once: the server holds every request until all of
 *   them have arrived, so they complete only if the driver really runs them
 *   side by side; each is handed back once, with its own body;
 * - a refused connect ends with its error at once, not at its timeout;
 * - close with transfers in flight (the server holds them): each is handed
 *   back exactly once (FL_CURLUV_CLOSED), the callbacks free their own
 *   memory, a new one is refused while closing, every handle is closed
 *   (uv_loop_close() == 0), nothing leaks (ASan build);
 * - close from inside a transfer's callback while others finished in the
 *   same turn, and cancel from inside one: exactly once each, none after a
 *   cancel. */
#include <curl/curl.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/clock.h"
#include "controller/net/curluv.h"

/* ------------------------------------------------------------ the server */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned arrived; /* requests to /together and /hold seen */
    unsigned want;    /* /together answers once this many have arrived */
    bool release;     /* /hold answers once set */
} srv = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static struct MHD_Daemon *daemon_h;
static uint16_t port;

/* Waits (on the connection's own thread) until pred holds or 10 s pass. */
static void wait_for(bool (*pred)(void))
{
    struct timespec end;
    clock_gettime(CLOCK_REALTIME, &end);
    end.tv_sec += 10;
    pthread_mutex_lock(&srv.mu);
    srv.arrived++;
    pthread_cond_broadcast(&srv.cv);
    while (!pred())
        if (pthread_cond_timedwait(&srv.cv, &srv.mu, &end) != 0)
            break;
    pthread_mutex_unlock(&srv.mu);
}

static bool all_arrived(void)
{
    return srv.arrived >= srv.want;
}

static bool released(void)
{
    return srv.release;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)method;
    (void)version;
    (void)upload;
    (void)upload_size;
    static int marker;
    if (*con_cls == NULL) {
        *con_cls = &marker;
        return MHD_YES;
    }
    if (strcmp(url, "/together") == 0)
        wait_for(all_arrived);
    else if (strcmp(url, "/hold") == 0)
        wait_for(released);
    char body[256];
    int n = snprintf(body, sizeof(body), "you asked for %s", url);
    struct MHD_Response *r =
        MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static int server_up(void **state)
{
    (void)state;
    daemon_h = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                    MHD_USE_POLL,
                                0, NULL, NULL, on_request, NULL, MHD_OPTION_END);
    if (daemon_h == NULL)
        return -1;
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(daemon_h, MHD_DAEMON_INFO_BIND_PORT);
    port = i != NULL ? i->port : 0;
    return port != 0 ? 0 : -1;
}

static int server_down(void **state)
{
    (void)state;
    pthread_mutex_lock(&srv.mu);
    srv.release = true;
    pthread_cond_broadcast(&srv.cv);
    pthread_mutex_unlock(&srv.mu);
    MHD_stop_daemon(daemon_h);
    return 0;
}

static void server_reset(unsigned want)
{
    pthread_mutex_lock(&srv.mu);
    srv.arrived = 0;
    srv.want = want;
    srv.release = false;
    pthread_mutex_unlock(&srv.mu);
}

/* /hold answers (the test's own transfers are gone by then). */
static void server_release(void)
{
    pthread_mutex_lock(&srv.mu);
    srv.release = true;
    pthread_cond_broadcast(&srv.cv);
    pthread_mutex_unlock(&srv.mu);
}

static unsigned server_arrived(void)
{
    pthread_mutex_lock(&srv.mu);
    unsigned n = srv.arrived;
    pthread_mutex_unlock(&srv.mu);
    return n;
}

/* A port nothing listens on: bound, then closed. */
static uint16_t closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* ------------------------------------------------------------ transfers */

struct run;

/* One transfer, on the heap: the callback frees it, so a driver that
 * touched it afterwards is caught by ASan. */
struct t {
    struct fl_curluv_xfer x;
    struct run *r;
    CURL *easy;
    unsigned id;
    char url[128];
    char body[256];
    size_t body_len;
};

#define MAX_T 64

struct run {
    uv_loop_t loop;
    struct fl_curluv *cu;
    unsigned calls[MAX_T]; /* callbacks per transfer id */
    CURLcode result[MAX_T];
    long status[MAX_T];
    char body[MAX_T][256];
    uint64_t end_ms[MAX_T];
    bool cancelled[MAX_T];
    struct t *live[MAX_T]; /* not yet handed back or cancelled */
    unsigned n_done;
    bool in_add;     /* a callback from inside fl_curluv_add is a bug */
    unsigned closed; /* the close callback's runs */
    /* what the first callback does */
    enum { FIRST_NOTHING, FIRST_CLOSES, FIRST_CANCELS_REST } first;
    int add_while_closing; /* fl_curluv_add's answer from a callback while closing */
};

static size_t on_write(char *data, size_t size, size_t nmemb, void *userp)
{
    struct t *t = userp;
    size_t n = size * nmemb;
    size_t room = sizeof(t->body) - 1 - t->body_len;
    size_t take = n < room ? n : room;
    memcpy(t->body + t->body_len, data, take);
    t->body_len += take;
    t->body[t->body_len] = '\0';
    return n;
}

static void t_free(struct t *t)
{
    t->r->live[t->id] = NULL;
    curl_easy_cleanup(t->easy);
    free(t);
}

static void on_done(void *ctx, CURL *easy, CURLcode result);

static void on_closed(void *arg)
{
    struct run *r = arg;
    r->closed++;
}

static void first_callback(struct run *r)
{
    switch (r->first) {
    case FIRST_CLOSES: {
        fl_curluv_close(r->cu, on_closed, r);
        fl_curluv_close(r->cu, on_closed, r); /* a no-op */
        break;
    }
    case FIRST_CANCELS_REST:
        for (unsigned i = 0; i < MAX_T; i++) {
            struct t *o = r->live[i];
            if (o == NULL)
                continue;
            assert_true(fl_curluv_cancel(&o->x));
            assert_false(fl_curluv_cancel(&o->x)); /* idle now */
            r->cancelled[i] = true;
            t_free(o);
        }
        break;
    default:
        break;
    }
}

static void on_done(void *ctx, CURL *easy, CURLcode result)
{
    struct t *t = ctx;
    struct run *r = t->r;
    assert_false(r->in_add);
    assert_ptr_equal(easy, t->easy);
    assert_false(r->cancelled[t->id]);
    r->calls[t->id]++;
    r->result[t->id] = result;
    r->end_ms[t->id] = fl_now_ms();
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r->status[t->id]);
    snprintf(r->body[t->id], sizeof(r->body[t->id]), "%s", t->body);
    bool first = r->n_done++ == 0;
    t_free(t);
    if (result == FL_CURLUV_CLOSED) {
        /* handed back by close: a new transfer is refused, loudly */
        struct t *n = calloc(1, sizeof(*n));
        assert_non_null(n);
        n->easy = curl_easy_init();
        char err[128] = "";
        r->add_while_closing = fl_curluv_add(r->cu, &n->x, n->easy, on_done, n, err, sizeof(err));
        assert_true(strstr(err, "closing") != NULL);
        curl_easy_cleanup(n->easy);
        free(n);
    }
    if (first)
        first_callback(r);
}

static void run_init(struct run *r)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(uv_loop_init(&r->loop), 0);
    assert_int_equal(fl_curluv_new(&r->loop, "curluv test", &r->cu), 0);
}

static long happy_eyeballs_ms; /* 0: curl's default */

static struct t *start(struct run *r, unsigned id, uint16_t to_port, const char *path,
                       long timeout_ms)
{
    assert_true(id < MAX_T);
    struct t *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    t->r = r;
    t->id = id;
    snprintf(t->url, sizeof(t->url), "http://127.0.0.1:%u%s", (unsigned)to_port, path);
    t->easy = curl_easy_init();
    assert_non_null(t->easy);
    assert_int_equal(curl_easy_setopt(t->easy, CURLOPT_URL, t->url), CURLE_OK);
    assert_int_equal(curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L), CURLE_OK);
    assert_int_equal(curl_easy_setopt(t->easy, CURLOPT_FORBID_REUSE, 1L), CURLE_OK);
    assert_int_equal(curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, timeout_ms), CURLE_OK);
    assert_int_equal(curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_write), CURLE_OK);
    assert_int_equal(curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t), CURLE_OK);
    if (happy_eyeballs_ms > 0)
        assert_int_equal(
            curl_easy_setopt(t->easy, CURLOPT_HAPPY_EYEBALLS_TIMEOUT_MS, happy_eyeballs_ms),
            CURLE_OK);
    char err[128] = "";
    r->in_add = true;
    assert_int_equal(fl_curluv_add(r->cu, &t->x, t->easy, on_done, t, err, sizeof(err)), 0);
    r->in_add = false;
    r->live[id] = t;
    return t;
}

/* Runs the loop until cond(r) or 15 s. */
static void run_until(struct run *r, bool (*cond)(struct run *))
{
    uint64_t end = fl_now_ms() + 15000;
    while (!cond(r) && fl_now_ms() < end)
        uv_run(&r->loop, UV_RUN_ONCE);
}

static unsigned want_done;

static bool enough_done(struct run *r)
{
    return r->n_done >= want_done;
}

static bool is_closed(struct run *r)
{
    return r->closed > 0;
}

/* Closes the driver (if the test has not) and the loop: nothing left open. */
static void run_end(struct run *r)
{
    if (r->closed == 0 && r->first != FIRST_CLOSES)
        fl_curluv_close(r->cu, on_closed, r);
    run_until(r, is_closed);
    assert_int_equal(r->closed, 1);
    assert_int_equal(uv_run(&r->loop, UV_RUN_NOWAIT), 0);
    assert_int_equal(uv_loop_close(&r->loop), 0);
}

/* ------------------------------------------------------------ tests */

#define N_TOGETHER 48

static void test_many_at_once(void **state)
{
    (void)state;
    static struct run r;
    run_init(&r);
    server_reset(N_TOGETHER);
    for (unsigned i = 0; i < N_TOGETHER; i++)
        start(&r, i, port, "/together", 30000);
    assert_int_equal(fl_curluv_count(r.cu), N_TOGETHER);
    want_done = N_TOGETHER;
    run_until(&r, enough_done);
    assert_int_equal(r.n_done, N_TOGETHER);
    assert_int_equal(server_arrived(), N_TOGETHER); /* all were in the server at once */
    for (unsigned i = 0; i < N_TOGETHER; i++) {
        assert_int_equal(r.calls[i], 1);
        assert_int_equal(r.result[i], CURLE_OK);
        assert_int_equal(r.status[i], 200);
        assert_string_equal(r.body[i], "you asked for /together");
    }
    assert_int_equal(fl_curluv_count(r.cu), 0);
    /* the driver is reused: another round on the same multi */
    start(&r, 0, port, "/again", 30000);
    want_done = N_TOGETHER + 1;
    run_until(&r, enough_done);
    assert_int_equal(r.calls[0], 2);
    assert_string_equal(r.body[0], "you asked for /again");
    run_end(&r);
}

static void test_refused_is_prompt(void **state)
{
    (void)state;
    static struct run r;
    run_init(&r);
    const long timeout_ms = 20000;
    uint64_t t0 = fl_now_ms();
    /* curl looks at a pending connect again after its happy-eyeballs delay
     * (200 ms) whatever the driver does: pushed out to the timeout, only the
     * driver's poll error path can end these early */
    happy_eyeballs_ms = timeout_ms;
    start(&r, 0, closed_port(), "/", timeout_ms);
    start(&r, 1, closed_port(), "/", timeout_ms);
    happy_eyeballs_ms = 0;
    want_done = 2;
    run_until(&r, enough_done);
    for (unsigned i = 0; i < 2; i++) {
        assert_int_equal(r.calls[i], 1);
        assert_int_equal(r.result[i], CURLE_COULDNT_CONNECT);
        /* well before its timeout: a quarter of it is generous on any machine */
        uint64_t took = r.end_ms[i] - t0;
        if (took >= (uint64_t)timeout_ms / 4)
            fail_msg("refused connect took %llu ms (timeout %ld ms)", (unsigned long long)took,
                     timeout_ms);
    }
    run_end(&r);
}

static bool held_arrived(struct run *r)
{
    (void)r;
    return server_arrived() >= want_done;
}

#define N_HELD 16

static void test_close_in_flight(void **state)
{
    (void)state;
    static struct run r;
    run_init(&r);
    server_reset(0);
    for (unsigned i = 0; i < N_HELD; i++)
        start(&r, i, port, "/hold", 30000);
    /* and one that connects nowhere: refused, maybe handed back before the close */
    start(&r, N_HELD, closed_port(), "/", 30000);
    want_done = N_HELD; /* every held request is in the server: sockets watched */
    run_until(&r, held_arrived);
    assert_int_equal(server_arrived(), N_HELD);
    unsigned before = r.n_done;
    fl_curluv_close(r.cu, on_closed, &r);
    /* every transfer was handed back inside close, exactly once */
    assert_int_equal(r.n_done, N_HELD + 1);
    assert_int_equal(r.add_while_closing, -ESHUTDOWN);
    for (unsigned i = 0; i < N_HELD; i++) {
        assert_int_equal(r.calls[i], 1);
        assert_int_equal(r.result[i], FL_CURLUV_CLOSED);
    }
    assert_int_equal(r.calls[N_HELD], 1);
    assert_true(before <= 1);
    assert_int_equal(r.closed, 0); /* its handles close on the loop */
    r.first = FIRST_CLOSES;        /* run_end: closed already */
    run_end(&r);
    for (unsigned i = 0; i <= N_HELD; i++)
        assert_int_equal(r.calls[i], 1);
    server_release();
}

/* Transfers whose timeouts expire together end in one pump (curl handles
 * every expired timer in one call; on_stall makes sure they all have): the
 * first one's callback runs while the others wait for theirs. */
#define N_TIMED 8
#define TIMED_MS 300

/* The loop stalls past every short timeout (a test may block its loop):
 * curl's next timer then finds them all expired at once. */
static void on_stall(uv_timer_t *t)
{
    uv_sleep(TIMED_MS + 200);
    uv_close((uv_handle_t *)t, NULL);
}

static void start_timed_and_held(struct run *r, unsigned n_held)
{
    server_reset(0);
    for (unsigned i = 0; i < N_TIMED; i++)
        start(r, i, port, "/hold", TIMED_MS);
    for (unsigned i = N_TIMED; i < N_TIMED + n_held; i++)
        start(r, i, port, "/hold", 30000);
    static uv_timer_t stall;
    assert_int_equal(uv_timer_init(&r->loop, &stall), 0);
    assert_int_equal(uv_timer_start(&stall, on_stall, TIMED_MS / 3, 0), 0);
}

/* The first callback closes the driver: the others that finished keep their
 * result, those still running end FL_CURLUV_CLOSED, each exactly once. */
static void test_close_from_callback(void **state)
{
    (void)state;
    static struct run r;
    run_init(&r);
    r.first = FIRST_CLOSES;
    const unsigned n_held = 8;
    start_timed_and_held(&r, n_held);
    want_done = N_TIMED + n_held;
    run_until(&r, enough_done);
    assert_int_equal(r.n_done, N_TIMED + n_held);
    unsigned timed_out = 0;
    for (unsigned i = 0; i < N_TIMED + n_held; i++) {
        assert_int_equal(r.calls[i], 1);
        if (i < N_TIMED && r.result[i] == CURLE_OPERATION_TIMEDOUT)
            timed_out++;
        else
            assert_int_equal(r.result[i], FL_CURLUV_CLOSED);
    }
    /* the first, and others handed back from inside the close */
    assert_true(timed_out >= 2);
    run_end(&r);
    server_release();
}

/* The first callback cancels every other transfer, finished in the same
 * pump and waiting for its callback or still running: none is handed back
 * (each callback frees its transfer: one after a cancel is a use after
 * free). */
static void test_cancel_from_callback(void **state)
{
    (void)state;
    static struct run r;
    run_init(&r);
    r.first = FIRST_CANCELS_REST;
    const unsigned n_held = 4;
    start_timed_and_held(&r, n_held);
    want_done = 1;
    run_until(&r, enough_done);
    /* more turns, past the held ones' arrival: nothing else may come */
    for (int i = 0; i < 20; i++)
        uv_run(&r.loop, UV_RUN_NOWAIT);
    assert_int_equal(r.n_done, 1);
    assert_int_equal(fl_curluv_count(r.cu), 0);
    unsigned handed = 0, cancelled = 0;
    for (unsigned i = 0; i < N_TIMED + n_held; i++) {
        handed += r.calls[i];
        cancelled += r.cancelled[i];
        assert_int_equal(r.calls[i] + r.cancelled[i], 1);
    }
    assert_int_equal(handed, 1);
    assert_int_equal(cancelled, N_TIMED + n_held - 1);
    run_end(&r);
    server_release();
}

int main(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_at_once),         cmocka_unit_test(test_refused_is_prompt),
        cmocka_unit_test(test_close_in_flight),      cmocka_unit_test(test_close_from_callback),
        cmocka_unit_test(test_cancel_from_callback),
    };
    int rc = cmocka_run_group_tests(tests, server_up, server_down);
    curl_global_cleanup();
    return rc;
}
