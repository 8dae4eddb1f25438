/* faultline serve: webhooks, reload and the regression end to end, on
 * loopback with a real faultline-agent, real web servers (tests/beds'
 * webapp), a real HAProxy, and a webhook receiver in the test
 * (libmicrohttpd, a thread per connection so that it can hang).
 *
 * - Webhooks: an experiment that FAILs (its rto is shorter than the pause
 *   it makes); the receiver answers the first POST 500 and sees the FAIL on
 *   the retry, after the first backoff; then it hangs on every POST, and the
 *   next runs still start on their due times.
 * - Reload, once through the directory watch and once by SIGHUP alone
 *   (reload_on_change: false): a good experiment replaced by a broken one
 *   is logged FILE:LINE:COL and keeps running on its schedule; a new file is
 *   scheduled; a removed file's schedule ends; a changed schedule re-arms.
 * - Regression: HAProxy in front of two web servers (web2 the backup); the
 *   experiment pauses web1 and measures how long the site takes to be back
 *   through HAProxy. After a few runs build the baseline, the test reloads
 *   HAProxy with slower health checks (fall and inter raised); the next run
 *   is flagged `regressed` in history, in /metrics and in the webhook. */
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/clock.h"
#include "tests/support/agent_proc.h"
#include "tests/support/proc.h"
#include "tests/support/serve.h"

static char dir[] = "/tmp/flhk-serve-hooks.XXXXXX";
static char key_path[300], pidfile[300], db_url[320], reports[300];
static struct test_agent agent;
static pid_t dummy;
static uint16_t http_port;

static char *arg(const char *a)
{
    return (char *)(uintptr_t)a;
}

/* ---------------------------------------------------------------- receiver */

#define RX_MAX 256

struct rx_hook {
    json_t *body;
    unsigned status;
    uint64_t at_ms;
};

static struct {
    pthread_mutex_t mu;
    struct rx_hook hooks[RX_MAX];
    size_t n;
    atomic_int fail_next; /* answer this many POSTs 500 */
    atomic_int hang_ms;   /* hold each POST this long first */
    atomic_bool quit;
    struct MHD_Daemon *d;
    uint16_t port;
} rx = {.mu = PTHREAD_MUTEX_INITIALIZER};

struct rx_conn {
    char *buf;
    size_t len;
};

static enum MHD_Result rx_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    struct rx_conn *b = *con_cls;
    if (b == NULL) {
        *con_cls = calloc(1, sizeof(*b));
        return *con_cls ? MHD_YES : MHD_NO;
    }
    if (*upload_size > 0) {
        char *grown = realloc(b->buf, b->len + *upload_size + 1);
        if (grown == NULL)
            return MHD_NO;
        memcpy(grown + b->len, upload, *upload_size);
        b->buf = grown;
        b->len += *upload_size;
        b->buf[b->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    int hang = atomic_load(&rx.hang_ms);
    for (int waited = 0; waited < hang && !atomic_load(&rx.quit); waited += 50)
        sleep_ms(50);
    unsigned status = atomic_fetch_sub(&rx.fail_next, 1) > 0 ? 500 : 200;
    pthread_mutex_lock(&rx.mu);
    if (rx.n < RX_MAX) {
        json_error_t jerr;
        rx.hooks[rx.n].body = b->buf ? json_loads(b->buf, 0, &jerr) : NULL;
        rx.hooks[rx.n].status = status;
        rx.hooks[rx.n].at_ms = fl_now_ms();
        rx.n++;
    }
    pthread_mutex_unlock(&rx.mu);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(3, (void *)(uintptr_t) "ok\n", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static void rx_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct rx_conn *b = *con_cls;
    if (b != NULL) {
        free(b->buf);
        free(b);
    }
    *con_cls = NULL;
}

static void rx_reset(void)
{
    pthread_mutex_lock(&rx.mu);
    for (size_t i = 0; i < rx.n; i++)
        json_decref(rx.hooks[i].body);
    rx.n = 0;
    pthread_mutex_unlock(&rx.mu);
    atomic_store(&rx.fail_next, 0);
    atomic_store(&rx.hang_ms, 0);
}

__attribute__((unused)) static size_t rx_count(void)
{
    pthread_mutex_lock(&rx.mu);
    size_t n = rx.n;
    pthread_mutex_unlock(&rx.mu);
    return n;
}

/* The index of the first hook at or after `from` whose event list has
 * `event` and that was answered `status` (0: any), waiting up to ms; or -1. */
static long rx_wait_event(size_t from, const char *event, unsigned status, int ms)
{
    uint64_t end = fl_now_ms() + (uint64_t)ms;
    do {
        pthread_mutex_lock(&rx.mu);
        for (size_t i = from; i < rx.n; i++) {
            if (status != 0 && rx.hooks[i].status != status)
                continue;
            json_t *evs = json_object_get(rx.hooks[i].body, "events");
            for (size_t k = 0; k < json_array_size(evs); k++)
                if (strcmp(json_string_value(json_array_get(evs, k)), event) == 0) {
                    pthread_mutex_unlock(&rx.mu);
                    return (long)i;
                }
        }
        pthread_mutex_unlock(&rx.mu);
        sleep_ms(100);
    } while (fl_now_ms() < end);
    return -1;
}

/* ---------------------------------------------------------------- bed */

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(key_path, sizeof(key_path), "%s/faultline.key", dir);
    snprintf(pidfile, sizeof(pidfile), "%s/dummy.pid", dir);
    snprintf(db_url, sizeof(db_url), "sqlite:%s/history.db", dir);
    snprintf(reports, sizeof(reports), "%s/reports", dir);
    char out[512];
    char *kg[] = {arg(FL_CTL_BIN), arg("keygen"), key_path, NULL};
    if (proc_run(kg, out, sizeof(out), 5000) != 0)
        return -1;
    const char *extra[] = {"--lease", "2s", NULL};
    if (test_agent_start(&agent, FL_AGENT_BIN, key_path, dir, "agent", NULL, extra) < 0)
        return -1;
    dummy = fork();
    if (dummy == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        prctl(PR_SET_NAME, "flhk-dummy", 0, 0, 0);
        for (;;)
            pause();
    }
    FILE *f = fopen(pidfile, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "%d\n", (int)dummy);
    fclose(f);
    http_port = test_free_port();
    for (int tries = 0; rx.d == NULL && tries < 5; tries++) {
        rx.port = test_free_port();
        rx.d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
                                rx.port, NULL, NULL, rx_request, NULL, MHD_OPTION_NOTIFY_COMPLETED,
                                rx_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                                MHD_OPTION_END);
    }
    return rx.d ? 0 : -1;
}

/* Every process a test starts: killed when a test fails half-way (the
 * next test and the teardown start clean). */
#define TRACK_MAX 32
static pid_t tracked[TRACK_MAX];

static pid_t track(pid_t pid)
{
    assert_true(pid > 0);
    for (size_t i = 0; i < TRACK_MAX; i++)
        if (tracked[i] <= 0) {
            tracked[i] = pid;
            return pid;
        }
    fail_msg("more than %d processes tracked", TRACK_MAX);
    return pid;
}

/* Stops one tracked process; its status. */
static int stop_tracked(pid_t pid, int sig, int ms)
{
    for (size_t i = 0; i < TRACK_MAX; i++)
        if (tracked[i] == pid)
            tracked[i] = 0;
    return proc_stop(pid, sig, ms);
}

static void kill_tracked(void)
{
    for (size_t i = 0; i < TRACK_MAX; i++)
        if (tracked[i] > 0) {
            proc_stop(tracked[i], SIGTERM, 20000);
            tracked[i] = 0;
        }
}

static int test_setup(void **state)
{
    (void)state;
    kill_tracked();
    rx_reset();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = 0;
    kill_tracked();
    atomic_store(&rx.quit, true);
    if (rx.d != NULL)
        MHD_stop_daemon(rx.d);
    rx_reset();
    if (dummy > 0) {
        kill(dummy, SIGKILL);
        waitpid(dummy, NULL, 0);
    }
    if (agent.pid > 0 && proc_stop(agent.pid, SIGTERM, 10000) != 0)
        rc = -1;
    if (rc != 0 || getenv("FL_TEST_VERBOSE"))
        test_agent_dump_log(&agent);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = -1;
    return rc;
}

static void write_file(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void write_file(const char *path, const char *fmt, ...)
{
    char tmp[1100];
    snprintf(tmp, sizeof(tmp), "%s.tmp~", path); /* not *.yaml: never loaded half-written */
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, path), 0);
}

/* An experiment that pauses the dummy for `hold` (tcp probe of the agent's
 * own port: a service that stays up). */
static void write_pause_experiment(const char *exps, const char *file, const char *name,
                                   const char *every)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s.yaml", exps, file);
    write_file(path,
               "version: 1\n"
               "name: %s\n"
               "inventory:\n"
               "  key_file: %s\n"
               "  hosts:\n"
               "    web1: { address: 127.0.0.1, port: %u }\n"
               "probes:\n"
               "  - name: up\n"
               "    tcp: { address: \"127.0.0.1:%u\" }\n"
               "    interval: 100ms\n"
               "    timeout: 100ms\n"
               "steady_state: [up]\n"
               "faults:\n"
               "  - name: pause-dummy\n"
               "    target: { hosts: [web1] }\n"
               "    pause_process: { pidfile: %s }\n"
               "    duration: 200ms\n"
               "recovery: { probes: [up], timeout: 5s }\n"
               "schedule:\n"
               "  every: %s\n"
               "  starting_deadline: 1s\n",
               name, key_path, (unsigned)agent.port, (unsigned)agent.port, pidfile, every);
}

static pid_t start_serve(const char *exps, const char *config, const char *log)
{
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)http_port);
    char *argv[] = {arg(FL_CTL_BIN),
                    arg("serve"),
                    arg("--experiments"),
                    arg(exps),
                    arg("--db"),
                    db_url,
                    arg("--reports-dir"),
                    reports,
                    arg("--listen-http"),
                    listen,
                    arg("--config"),
                    arg(config),
                    NULL};
    if (config == NULL)
        argv[10] = NULL;
    return track(proc_start(argv, log));
}

static void stop_serve(pid_t serve, const char *log)
{
    serve_check_exit(stop_tracked(serve, SIGTERM, 30000), log);
}

/* How many times needle is in the file. */
static size_t log_count(const char *log, const char *needle)
{
    static char buf[1 << 20];
    FILE *f = fopen(log, "r");
    if (f == NULL)
        return 0;
    size_t len = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[len] = '\0';
    size_t n = 0;
    for (const char *p = buf; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static void wait_log_count(const char *log, const char *needle, size_t want, int ms)
{
    uint64_t end = fl_now_ms() + (uint64_t)ms;
    while (log_count(log, needle) < want) {
        if (fl_now_ms() > end) {
            serve_dump_log(log);
            fail_msg("'%s' not %zu times in %s within %d ms", needle, want, log, ms);
        }
        sleep_ms(100);
    }
}

/* faultline history --json, every row. */
static json_t *history(void)
{
    return serve_history(FL_CTL_BIN, db_url, 10000);
}

/* Finished runs of experiment with a due time at or after since_ms (0
 * while serve has not created the database yet). */
static size_t runs_since(const char *experiment, int64_t since_ms)
{
    struct stat st;
    char db[320];
    snprintf(db, sizeof(db), "%s", db_url + strlen("sqlite:"));
    if (stat(db, &st) != 0)
        return 0;
    json_t *rows = history();
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(rows); i++) {
        json_t *a = json_array_get(rows, i);
        n += strcmp(row_str(a, "experiment"), experiment) == 0 &&
             strcmp(row_str(a, "state"), "finished") == 0 && row_num(a, "due_ms") >= since_ms;
    }
    json_decref(rows);
    return n;
}

static void wait_runs_since(const char *experiment, int64_t since_ms, size_t want, int ms,
                            const char *log)
{
    uint64_t end = fl_now_ms() + (uint64_t)ms;
    while (runs_since(experiment, since_ms) < want) {
        if (fl_now_ms() > end) {
            serve_dump_log(log);
            fail_msg("%s: not %zu runs due after %lld within %d ms", experiment, want,
                     (long long)since_ms, ms);
        }
        sleep_ms(200);
    }
}

/* ---------------------------------------------------------------- webhooks */

/* Does serve's index page list the experiment (its row's data attribute)? */
static bool index_lists(const char *name)
{
    char cmd[300], out[1 << 16], needle[200];
    snprintf(cmd, sizeof(cmd), "curl -sf http://127.0.0.1:%u/", (unsigned)http_port);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t len = fread(out, 1, sizeof(out) - 1, p);
    out[len] = '\0';
    assert_int_equal(pclose(p), 0);
    snprintf(needle, sizeof(needle), "data-experiment=\"%s\"", name);
    return strstr(out, needle) != NULL;
}

static void test_webhook_fail_retry_hang(void **state)
{
    (void)state;
    char exps[256], log[256], cfg[256], w1pid[256], path[512];
    snprintf(exps, sizeof(exps), "%s/exps-hooks", dir);
    snprintf(log, sizeof(log), "%s/serve-hooks.log", dir);
    snprintf(cfg, sizeof(cfg), "%s/serve-hooks.yaml", dir);
    snprintf(w1pid, sizeof(w1pid), "%s/hooks-web1.pid", dir);
    assert_int_equal(mkdir(exps, 0755), 0);
    /* web1: a real web server the experiment pauses for 1 s, its rto 300ms */
    uint16_t web_port = test_free_port();
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)web_port);
    char *wa[] = {arg(FL_WEBAPP_BIN), arg("--listen"),  listen, arg("--name"),
                  arg("web1"),        arg("--pidfile"), w1pid,  NULL};
    char wlog[400];
    snprintf(wlog, sizeof(wlog), "%s/hooks-web1.log", dir);
    pid_t web = track(proc_start(wa, wlog));
    char buf[4096];
    assert_non_null(file_wait_for(w1pid, "\n", buf, sizeof(buf), 5000));
    snprintf(path, sizeof(path), "%s/failing.yaml", exps);
    write_file(path,
               "version: 1\n"
               "name: failing\n"
               "inventory:\n"
               "  key_file: %s\n"
               "  hosts:\n"
               "    web1: { address: 127.0.0.1, port: %u }\n"
               "objectives: { rto: 300ms }\n"
               "probes:\n"
               "  - name: site\n"
               "    http: { url: \"http://%s/\", timeout: 100ms }\n"
               "    interval: 100ms\n"
               "steady_state: [site]\n"
               "faults:\n"
               "  - name: pause-web1\n"
               "    target: { hosts: [web1] }\n"
               "    pause_process: { pidfile: %s }\n"
               "    duration: 1s\n"
               "recovery: { probes: [site], timeout: 5s }\n"
               "schedule:\n"
               "  every: 4s\n"
               "  starting_deadline: 1s\n",
               key_path, (unsigned)agent.port, listen, w1pid);
    write_file(cfg,
               "webhooks:\n"
               "  - url: http://127.0.0.1:%u/hook\n"
               "    timeout: 30s\n",
               (unsigned)rx.port);
    rx_reset();
    atomic_store(&rx.fail_next, 1); /* the receiver is down for the first attempt */
    pid_t serve = start_serve(exps, cfg, log);

    /* the FAIL arrives on the retry */
    long got = rx_wait_event(0, "fail", 200, 30000);
    if (got < 0)
        serve_dump_log(log);
    assert_true(got >= 1);
    pthread_mutex_lock(&rx.mu);
    struct rx_hook first = rx.hooks[0], ok = rx.hooks[got];
    pthread_mutex_unlock(&rx.mu);
    assert_int_equal(first.status, 500);
    assert_int_equal(ok.status, 200);
    json_t *b = ok.body;
    assert_string_equal(row_str(first.body, "event"), "fail");
    assert_int_equal(row_num(first.body, "run_id"), row_num(b, "run_id")); /* the same delivery */
    assert_true(ok.at_ms - first.at_ms >= 900); /* after the 1 s backoff */
    assert_string_equal(row_str(b, "experiment"), "failing");
    assert_string_equal(row_str(b, "verdict"), "FAIL");
    assert_non_null(strstr(row_str(b, "text"), "failing"));
    assert_non_null(strstr(row_str(b, "text"), "FAILED"));
    char *text = json_dumps(b, JSON_INDENT(1));
    fprintf(stderr, "the FAIL as delivered:\n%s\n", text);
    free(text);
    assert_non_null(strstr(row_str(b, "reason"), "objective"));
    assert_true(row_num(b, "recovery_ms") >= 300);
    assert_true(row_num(b, "resolution_ms") > 0);
    assert_true(json_is_false(json_object_get(b, "regressed")));
    assert_non_null(strstr(row_str(b, "report"), reports));
    assert_true(row_str(b, "server")[0] != '\0');
    assert_true(json_is_false(json_object_get(b, "frozen")));
    wait_log_count(log, "attempt 1 of 4 failed (HTTP 500)", 1, 1000);

    /* the receiver hangs: runs still start on their due times */
    atomic_store(&rx.hang_ms, 20000);
    int64_t t_hang = (int64_t)fl_now_ms();
    wait_runs_since("failing", t_hang, 2, 20000, log);
    json_t *rows = history();
    size_t checked = 0;
    for (size_t i = 0; i < json_array_size(rows); i++) {
        json_t *a = json_array_get(rows, i);
        if (row_num(a, "due_ms") < t_hang)
            continue;
        if (strcmp(row_str(a, "state"), "skipped") == 0)
            fail_msg("due %lld skipped while the receiver hangs: %s",
                     (long long)row_num(a, "due_ms"), row_str(a, "reason"));
        if (strcmp(row_str(a, "state"), "finished") != 0)
            continue;
        /* a blocked loop would start it only after the 20 s hang */
        int64_t lag = row_num(a, "started_ms") - row_num(a, "due_ms");
        if (lag > 5000)
            fail_msg("run %lld started %lld ms after its due time", (long long)row_num(a, "id"),
                     (long long)lag);
        checked++;
    }
    json_decref(rows);
    assert_true(checked >= 2);
    stop_serve(serve, log); /* deliveries in flight get the stop grace, no more */
    atomic_store(&rx.hang_ms, 0);
    stop_tracked(web, SIGTERM, 5000);
}

/* ---------------------------------------------------------------- reload */

static void reload_scenario(const char *tag, bool by_sighup)
{
    char exps[256], log[256], cfg[256], good[512], added[512], needle[1024];
    snprintf(exps, sizeof(exps), "%s/exps-%s", dir, tag);
    snprintf(log, sizeof(log), "%s/serve-%s.log", dir, tag);
    snprintf(cfg, sizeof(cfg), "%s/serve-%s.yaml", dir, tag);
    snprintf(good, sizeof(good), "%s/good.yaml", exps);
    snprintf(added, sizeof(added), "%s/added-%s.yaml", exps, tag);
    assert_int_equal(mkdir(exps, 0755), 0);
    write_file(cfg, "reload_on_change: %s\n", by_sighup ? "false" : "true");
    char good_name[64], added_name[64];
    snprintf(good_name, sizeof(good_name), "good-%s", tag);
    snprintf(added_name, sizeof(added_name), "added-%s", tag);
    write_pause_experiment(exps, "good", good_name, "2s");
    pid_t serve = start_serve(exps, cfg, log);
    snprintf(needle, sizeof(needle), "%s: run ", good_name);
    wait_runs_since(good_name, 0, 1, 15000, log);

    /* broken: named FILE:LINE:COL, the old version keeps its schedule */
    int64_t t_break = (int64_t)fl_now_ms();
    write_file(good,
               "version: 1\n"
               "name: %s\n"
               "probez: []\n",
               good_name);
    if (by_sighup)
        kill(serve, SIGHUP);
    snprintf(needle, sizeof(needle), "%s:3:1: unknown key 'probez'", good);
    wait_log_count(log, needle, 1, 10000);
    wait_log_count(log, "its previous version, if any, keeps its schedule", 1, 1000);
    wait_runs_since(good_name, t_break + 500, 2, 15000, log);

    /* a new file is scheduled */
    write_pause_experiment(exps, added_name, added_name, "2s");
    if (by_sighup)
        kill(serve, SIGHUP);
    snprintf(needle, sizeof(needle), "%s: scheduled", added_name);
    wait_log_count(log, needle, 1, 10000);
    wait_runs_since(added_name, 0, 1, 15000, log);

    /* the index page lists it (pages.c: published after each reload) */
    if (!index_lists(added_name))
        fail_msg("the page / does not list %s, added by a reload", added_name);

    /* a removed file's schedule ends */
    assert_int_equal(unlink(added), 0);
    if (by_sighup)
        kill(serve, SIGHUP);
    snprintf(needle, sizeof(needle), "%s.yaml was removed", added_name);
    wait_log_count(log, needle, 1, 10000);
    int64_t t_removed = (int64_t)fl_now_ms();
    wait_log_count(log, "(its file was removed)", 1, 10000); /* its run, if any, ended */
    {
        char cmd[300], out[1 << 14], sample[200];
        snprintf(cmd, sizeof(cmd), "curl -sf http://127.0.0.1:%u/metrics", (unsigned)http_port);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        size_t len = fread(out, 1, sizeof(out) - 1, p);
        out[len] = '\0';
        assert_int_equal(pclose(p), 0);
        snprintf(sample, sizeof(sample), "faultline_next_run_timestamp_seconds{experiment=\"%s\"}",
                 added_name);
        if (strstr(out, sample) != NULL)
            fail_msg("a removed experiment still has a next run:\n%s", out);
        snprintf(sample, sizeof(sample), "faultline_next_run_timestamp_seconds{experiment=\"%s\"}",
                 good_name);
        assert_non_null(strstr(out, sample));
    }
    if (index_lists(added_name))
        fail_msg("the page / still lists %s after its file was removed", added_name);
    if (!index_lists(good_name))
        fail_msg("the page / lost %s in a reload", good_name);

    /* a changed schedule re-arms: good, valid again, every 3 s */
    write_pause_experiment(exps, "good", good_name, "3s");
    if (by_sighup)
        kill(serve, SIGHUP);
    snprintf(needle, sizeof(needle), "%s: %s changed", good_name, good);
    wait_log_count(log, needle, 1, 10000);
    int64_t t_changed = (int64_t)fl_now_ms();
    wait_runs_since(good_name, t_changed, 2, 15000, log);
    stop_serve(serve, log);

    json_t *rows = history();
    int64_t last = -1, gap = -1;
    for (size_t i = 0; i < json_array_size(rows); i++) {
        json_t *a = json_array_get(rows, i);
        if (strcmp(row_str(a, "experiment"), added_name) == 0 && row_num(a, "due_ms") > t_removed)
            fail_msg("%s has a row due %lld, after its file was removed (%lld)", added_name,
                     (long long)row_num(a, "due_ms"), (long long)t_removed);
        if (strcmp(row_str(a, "experiment"), good_name) == 0 && row_num(a, "due_ms") >= t_changed) {
            if (last >= 0 && gap < 0)
                gap = last - row_num(a, "due_ms"); /* newest first */
            last = row_num(a, "due_ms");
        }
    }
    json_decref(rows);
    assert_int_equal(gap, 3000);
}

static void test_reload_watch(void **state)
{
    (void)state;
    reload_scenario("watch", false);
}

static void test_reload_sighup(void **state)
{
    (void)state;
    reload_scenario("hup", true);
}

/* ---------------------------------------------------------------- regression */

#define HAPROXY "/usr/sbin/haproxy" /* Debian's haproxy package */

static void write_haproxy(const char *path, uint16_t front, uint16_t w1, uint16_t w2,
                          const char *inter, unsigned fall)
{
    write_file(path,
               "global\n"
               "    maxconn 200\n"
               "defaults\n"
               "    mode http\n"
               "    timeout connect 200ms\n"
               "    timeout client 5s\n"
               "    timeout server 5s\n"
               "    timeout check 100ms\n"
               "frontend site\n"
               "    bind 127.0.0.1:%u\n"
               "    default_backend web\n"
               "backend web\n"
               "    option httpchk GET /health\n"
               "    server web1 127.0.0.1:%u check inter %s fall %u rise 1\n"
               "    server web2 127.0.0.1:%u check inter 100ms fall 2 rise 1 backup\n",
               (unsigned)front, (unsigned)w1, inter, fall, (unsigned)w2);
}

static pid_t start_haproxy(const char *cfg, const char *log, uint16_t front)
{
    char *argv[] = {arg(HAPROXY), arg("-db"), arg("-f"), arg(cfg), NULL};
    pid_t pid = track(proc_start(argv, log));
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "curl -sf -o /dev/null -m 1 http://127.0.0.1:%u/", (unsigned)front);
    for (int i = 0; i < 50 && system(cmd) != 0; i++)
        sleep_ms(100);
    assert_int_equal(system(cmd), 0);
    return pid;
}

static void test_regression_haproxy(void **state)
{
    (void)state;
    if (access(HAPROXY, X_OK) != 0) {
        print_message("haproxy is not installed: the regression test is skipped\n");
        skip();
    }
    char exps[256], log[256], cfg[256], hcfg[256], hlog[256], path[512];
    char w1pid[256], w2pid[256], l1[64], l2[64];
    snprintf(exps, sizeof(exps), "%s/exps-regr", dir);
    snprintf(log, sizeof(log), "%s/serve-regr.log", dir);
    snprintf(cfg, sizeof(cfg), "%s/serve-regr.yaml", dir);
    snprintf(hcfg, sizeof(hcfg), "%s/haproxy.cfg", dir);
    snprintf(hlog, sizeof(hlog), "%s/haproxy.log", dir);
    snprintf(w1pid, sizeof(w1pid), "%s/regr-web1.pid", dir);
    snprintf(w2pid, sizeof(w2pid), "%s/regr-web2.pid", dir);
    assert_int_equal(mkdir(exps, 0755), 0);
    uint16_t p1 = test_free_port(), p2 = test_free_port(), front = test_free_port();
    snprintf(l1, sizeof(l1), "127.0.0.1:%u", (unsigned)p1);
    snprintf(l2, sizeof(l2), "127.0.0.1:%u", (unsigned)p2);
    char *wa1[] = {arg(FL_WEBAPP_BIN), arg("--listen"),  l1,    arg("--name"),
                   arg("web1"),        arg("--pidfile"), w1pid, NULL};
    char *wa2[] = {arg(FL_WEBAPP_BIN), arg("--listen"),  l2,    arg("--name"),
                   arg("web2"),        arg("--pidfile"), w2pid, NULL};
    char wlog[400];
    snprintf(wlog, sizeof(wlog), "%s/regr-web.log", dir);
    pid_t web1 = track(proc_start(wa1, wlog)), web2 = track(proc_start(wa2, wlog));
    char buf[4096];
    assert_non_null(file_wait_for(w1pid, "\n", buf, sizeof(buf), 5000));
    assert_non_null(file_wait_for(w2pid, "\n", buf, sizeof(buf), 5000));
    /* fast failover: web1 is DOWN after 2 checks 100 ms apart */
    write_haproxy(hcfg, front, p1, p2, "100ms", 2);
    pid_t haproxy = start_haproxy(hcfg, hlog, front);

    snprintf(path, sizeof(path), "%s/failover.yaml", exps);
    write_file(path,
               "version: 1\n"
               "name: failover\n"
               "inventory:\n"
               "  key_file: %s\n"
               "  hosts:\n"
               "    web1: { address: 127.0.0.1, port: %u }\n"
               "objectives: { rto: 10s }\n"
               "probes:\n"
               "  - name: site\n"
               "    http: { url: \"http://127.0.0.1:%u/\", timeout: 100ms }\n"
               "    interval: 100ms\n"
               "steady_state: [site]\n"
               "faults:\n"
               "  - name: pause-web1\n"
               "    target: { hosts: [web1] }\n"
               "    pause_process: { pidfile: %s }\n"
               "    duration: 3500ms\n"
               "recovery: { probes: [site], timeout: 10s }\n"
               "schedule:\n"
               "  every: 6s\n"
               "  starting_deadline: 1s\n",
               key_path, (unsigned)agent.port, (unsigned)front, w1pid);
    write_file(cfg,
               "webhooks:\n"
               "  - url: http://127.0.0.1:%u/hook\n"
               "    events: [regression]\n",
               (unsigned)rx.port);
    rx_reset();
    pid_t serve = start_serve(exps, cfg, log);

    /* a baseline: three passing runs */
    wait_log_count(log, "failover: run ", 6, 40000); /* "starts" and "ended" each */
    wait_log_count(log, "ended PASS", 3, 10000);
    /* the failover gets slower: web1 is DOWN only after 6 checks 400 ms apart */
    write_haproxy(hcfg, front, p1, p2, "400ms", 6);
    stop_tracked(haproxy, SIGTERM, 5000);
    haproxy = start_haproxy(hcfg, hlog, front);
    assert_int_equal(log_count(log, "failover: run "), 6); /* reloaded between runs */
    int64_t last_fast_run = -1;
    json_t *before = history();
    for (size_t i = 0; i < json_array_size(before); i++)
        if (row_num(json_array_get(before, i), "id") > last_fast_run)
            last_fast_run = row_num(json_array_get(before, i), "id");
    json_decref(before);

    long got = rx_wait_event(0, "regression", 0, 30000);
    if (got < 0)
        serve_dump_log(log);
    assert_true(got >= 0);
    pthread_mutex_lock(&rx.mu);
    json_t *b = json_incref(rx.hooks[got].body);
    pthread_mutex_unlock(&rx.mu);
    assert_string_equal(row_str(b, "verdict"), "PASS");
    assert_true(json_is_true(json_object_get(b, "regressed")));
    assert_true(row_num(b, "baseline_ms") > 0);
    assert_true(row_num(b, "recovery_ms") > row_num(b, "baseline_ms"));
    assert_non_null(strstr(row_str(b, "text"), "REGRESSED"));
    int64_t regressed_run = row_num(b, "run_id");
    json_decref(b);

    /* /metrics says so too */
    char mpath[400], cmd[900];
    snprintf(mpath, sizeof(mpath), "%s/metrics-regr.txt", dir);
    snprintf(cmd, sizeof(cmd), "curl -sf -o %s http://127.0.0.1:%u/metrics", mpath,
             (unsigned)http_port);
    assert_int_equal(system(cmd), 0);
    stop_serve(serve, log);
    stop_tracked(haproxy, SIGTERM, 5000);
    stop_tracked(web1, SIGTERM, 5000);
    stop_tracked(web2, SIGTERM, 5000);
    static char text[1 << 16];
    FILE *f = fopen(mpath, "r");
    assert_non_null(f);
    size_t len = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[len] = '\0';
    assert_true(serve_metric(text, "faultline_regressed{experiment=\"failover\"} ") == 1);
    assert_true(serve_metric(text, "faultline_webhook_failures_total ") == 0);

    /* and history: the baseline runs are not flagged, the slow ones are */
    json_t *rows = history();
    size_t flagged = 0, passed = 0;
    for (size_t i = 0; i < json_array_size(rows); i++) {
        json_t *a = json_array_get(rows, i);
        if (strcmp(row_str(a, "experiment"), "failover") != 0)
            continue;
        fprintf(stderr, "  run %lld %-8s recovery %lld ms flags %s\n", (long long)row_num(a, "id"),
                row_str(a, "verdict"), (long long)row_num(a, "recovery_ms"), row_str(a, "flags"));
        passed += strcmp(row_str(a, "verdict"), "PASS") == 0;
        if (strstr(row_str(a, "flags"), "regressed") != NULL) {
            flagged++;
            assert_true(row_num(a, "id") > last_fast_run);
        }
        if (row_num(a, "id") == regressed_run)
            assert_non_null(strstr(row_str(a, "flags"), "regressed"));
    }
    json_decref(rows);
    assert_true(flagged >= 1);
    assert_true(passed >= 4);
}

/* No argument: every test. "hooks": the webhooks and the reloads, which
 * assert nothing about timing beyond generous bounds and run beside other
 * tests. "regression": the HAProxy regression alone, whose baseline is a
 * measured recovery time and which ctest runs alone (tests/CMakeLists.txt). */
int main(int argc, char **argv)
{
    if (geteuid() != 0) {
        fprintf(stderr, "serve_hooks_test: skipped, needs root (pause_process via the agent)\n");
        return 77;
    }
    const struct CMUnitTest hooks[] = {
        cmocka_unit_test_setup(test_webhook_fail_retry_hang, test_setup),
        cmocka_unit_test_setup(test_reload_watch, test_setup),
        cmocka_unit_test_setup(test_reload_sighup, test_setup),
    };
    const struct CMUnitTest regression[] = {
        cmocka_unit_test_setup(test_regression_haproxy, test_setup),
    };
    const struct CMUnitTest all[] = {
        cmocka_unit_test_setup(test_webhook_fail_retry_hang, test_setup),
        cmocka_unit_test_setup(test_reload_watch, test_setup),
        cmocka_unit_test_setup(test_reload_sighup, test_setup),
        cmocka_unit_test_setup(test_regression_haproxy, test_setup),
    };
    if (argc > 1 && strcmp(argv[1], "hooks") == 0)
        return cmocka_run_group_tests_name("serve: webhooks and reload", hooks, setup, teardown);
    if (argc > 1 && strcmp(argv[1], "regression") == 0)
        return cmocka_run_group_tests_name("serve: the regression through HAProxy", regression,
                                           setup, teardown);
    if (argc > 1) {
        fprintf(stderr, "serve_hooks_test: unknown part '%s' (hooks, regression)\n", argv[1]);
        return 2;
    }
    return cmocka_run_group_tests(all, setup, teardown);
}
