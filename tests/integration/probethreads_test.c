/* Probe threads attribute every result to its own probe (issue 12 item 4).
 *
 * A real run (fl_run, in this process: a sanitizer sees every thread) with
 * N_HTTP http probes and four tcp probes on two probe threads, against a
 * local HTTP server (a child process) that answers /p/I with 200, except
 * for every seventh probe, which it answers 503: genuinely failing. Two tcp
 * probes connect to the server, two to a closed port (refused). The server
 * counts the requests it saw for each path.
 *
 * For every probe: each line of attempts.jsonl carries its own outcome (the
 * good ones never failed, the bad ones never succeeded, with "status 503"),
 * the timeline holds exactly as many attempts as attempts.jsonl has lines
 * for it (no loss, no duplication), the server saw at least as many
 * requests as were recorded and at most the attempts started, and the
 * probes ran on both threads. Then two runs at once, each with http probes
 * on threads, as `faultline serve` runs them with max_concurrent_runs > 1
 * (before, http.c kept its curl state in unguarded process-wide statics).
 *
 * Run it under TSan or ASan (FL_SANITIZE) to check the hand-over. */
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/key.h"
#include "controller/experiment/experiment.h"
#include "controller/run/run.h"
#include "tests/support/agent_proc.h"
#include "tests/support/proc.h"

#define N_HTTP 60
#define N_TCP 4
#define N_PROBES (N_HTTP + N_TCP)
#define MAX_PATHS 256
#define BAD_EVERY 7 /* http probe i with i % 7 == 3 gets 503 */

static char dir[] = "/tmp/flpt-probethreads.XXXXXX";
static char key_path[300];
static struct test_agent agent;
static pid_t dummies[2];
static pid_t server;
static uint16_t server_port, closed_port;

static char *arg(const char *a)
{
    return (char *)(uintptr_t)a;
}

static bool is_bad(size_t i)
{
    return i < N_HTTP ? i % BAD_EVERY == 3 : i >= N_HTTP + 2; /* the last two tcp: refused */
}

/* ------------------------------------------------------------ the server */

/* The child, started before any thread exists (a child forked from a
 * threaded process may not take locks, and TSan's runtime takes some): one
 * connection at a time; counts /p/I; GET /dump answers the counts ("I N"
 * lines) and starts them afresh. Killed by the teardown. */
static void serve(int lfd)
{
    static unsigned long counts[MAX_PATHS];
    static char out[MAX_PATHS * 32 + 128];
    for (;;) {
        int c = accept(lfd, NULL, NULL);
        if (c < 0)
            continue;
        struct timeval tv = {.tv_sec = 2};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        char req[2048];
        size_t n = 0;
        while (n < sizeof(req) - 1) {
            ssize_t r = read(c, req + n, sizeof(req) - 1 - n);
            if (r <= 0)
                break;
            n += (size_t)r;
            req[n] = '\0';
            if (strstr(req, "\r\n\r\n") != NULL)
                break;
        }
        req[n] = '\0';
        unsigned idx;
        const char *resp = NULL;
        if (strncmp(req, "GET /dump ", 10) == 0) {
            size_t o = (size_t)snprintf(out, sizeof(out), "HTTP/1.0 200 OK\r\n\r\n");
            for (unsigned i = 0; i < MAX_PATHS; i++) {
                if (counts[i] > 0)
                    o += (size_t)snprintf(out + o, sizeof(out) - o, "%u %lu\n", i, counts[i]);
                counts[i] = 0;
            }
            resp = out;
        } else if (sscanf(req, "GET /p/%u ", &idx) == 1 && idx < MAX_PATHS) {
            counts[idx]++;
            resp = idx % BAD_EVERY == 3 ? "HTTP/1.1 503 Busy\r\nContent-Length: "
                                          "4\r\nConnection: close\r\n\r\nbusy"
                                        : "HTTP/1.1 200 OK\r\nContent-Length: "
                                          "2\r\nConnection: close\r\n\r\nok";
        }
        if (resp != NULL) {
            ssize_t w = write(c, resp, strlen(resp));
            (void)w;
        }
        close(c);
    }
}

static int server_start(void)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(lfd, 4096) != 0)
        return -1;
    socklen_t len = sizeof(sin);
    getsockname(lfd, (struct sockaddr *)&sin, &len);
    server_port = ntohs(sin.sin_port);
    server = fork();
    if (server == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        serve(lfd);
    }
    close(lfd);
    return server > 0 ? 0 : -1;
}

/* What the server saw since the last call. */
static void server_counts(unsigned long *counts)
{
    memset(counts, 0, MAX_PATHS * sizeof(*counts));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                              .sin_port = htons(server_port)};
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    const char *req = "GET /dump HTTP/1.0\r\n\r\n";
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    static char buf[MAX_PATHS * 32 + 128];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    close(fd);
    const char *body = strstr(buf, "\r\n\r\n");
    assert_non_null(body);
    body += 4;
    unsigned i;
    unsigned long c;
    int used;
    while (sscanf(body, "%u %lu\n%n", &i, &c, &used) == 2) {
        if (i < MAX_PATHS)
            counts[i] = c;
        body += used;
    }
}

/* ------------------------------------------------------------ setup */

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(key_path, sizeof(key_path), "%s/faultline.key", dir);
    char out[512];
    char *kg[] = {arg(FL_CTL_BIN), arg("keygen"), key_path, NULL};
    if (proc_run(kg, out, sizeof(out), 5000) != 0)
        return -1;
    const char *extra[] = {"--lease", "3s", NULL};
    if (test_agent_start(&agent, FL_AGENT_BIN, key_path, dir, "agent", NULL, extra) < 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        dummies[i] = fork();
        if (dummies[i] == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
            for (;;)
                pause();
        }
    }
    closed_port = test_free_port(); /* nothing listens there */
    return server_start();
}

static int teardown(void **state)
{
    (void)state;
    int rc = 0;
    for (int i = 0; i < 2; i++) {
        if (dummies[i] > 0) {
            kill(dummies[i], SIGKILL);
            waitpid(dummies[i], NULL, 0);
        }
    }
    if (server > 0) {
        kill(server, SIGKILL);
        waitpid(server, NULL, 0);
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

/* An experiment: the probes (names tagged with tag), one pause of dummy. */
static void write_experiment(const char *path, const char *tag, pid_t dummy)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "version: 1\n"
            "name: probethreads-%s\n"
            "inventory:\n"
            "  key_file: %s\n"
            "  hosts:\n"
            "    h1: { address: 127.0.0.1, port: %u }\n"
            "objectives: { impact: optional }\n"
            "probes:\n",
            tag, key_path, (unsigned)agent.port);
    for (size_t i = 0; i < N_HTTP; i++)
        fprintf(f,
                "  - { name: %s-http-%zu, http: { url: \"http://127.0.0.1:%u/p/%zu\" }, "
                "interval: 100ms, timeout: 2s, rise: 1, fall: 1 }\n",
                tag, i, (unsigned)server_port, i);
    for (size_t i = 0; i < N_TCP; i++)
        fprintf(f,
                "  - { name: %s-tcp-%zu, tcp: { host: 127.0.0.1, port: %u }, interval: 100ms, "
                "timeout: 2s, rise: 1, fall: 1 }\n",
                tag, i, (unsigned)(i < 2 ? server_port : closed_port));
    fprintf(f,
            "steady_state: [%s-http-0]\n"
            "faults:\n"
            "  - name: pause-dummy\n"
            "    target: { hosts: [h1] }\n"
            "    pause_process: { pid: %d }\n"
            "    duration: 3s\n"
            "recovery: { probes: [%s-http-0], timeout: 10s }\n",
            tag, (int)dummy, tag);
    fclose(f);
}

struct one_run {
    const char *tag;
    pid_t dummy;
    unsigned threads;
    char exp[400], attempts[400];
    struct fl_experiment *e;
    struct fl_run_record rec;
    int rc;
};

static void *run_main(void *arg)
{
    struct one_run *o = arg;
    struct fl_key key;
    char err[256];
    o->rc = fl_key_load(key_path, &key, err, sizeof(err));
    if (o->rc < 0)
        return NULL;
    struct fl_run_options opt = {.connect_timeout_ms = 5000,
                                 .attempts_path = o->attempts,
                                 .probe_threads = o->threads,
                                 .progress = stderr};
    o->rc = fl_run(o->e, &key, &opt, &o->rec);
    return NULL;
}

static void prepare(struct one_run *o, const char *tag, pid_t dummy, unsigned threads)
{
    memset(o, 0, sizeof(*o));
    o->tag = tag;
    o->dummy = dummy;
    o->threads = threads;
    snprintf(o->exp, sizeof(o->exp), "%s/%s.yaml", dir, tag);
    snprintf(o->attempts, sizeof(o->attempts), "%s/%s-attempts.jsonl", dir, tag);
    write_experiment(o->exp, tag, dummy);
    char err[1024];
    int rc = fl_experiment_load(o->exp, NULL, &o->e, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
}

/* Every check on one finished run; adds each http probe's started attempts
 * to started_sum (the server's counts are checked by the caller). */
static void check_run(struct one_run *o, unsigned long *started_sum)
{
    assert_int_equal(o->rc, 0);
    struct fl_run_record *rec = &o->rec;
    fprintf(stderr, "%s: verdict %d, reason: %s %s\n", o->tag, (int)rec->verdict, rec->reason,
            rec->abort_reason);
    assert_int_equal(rec->controller.probe_threads, o->threads);
    assert_string_equal(rec->controller.probe_threads_from, "command line");
    assert_int_equal(rec->controller.queue_lost, 0);
    assert_int_equal(rec->n_probes, N_PROBES);

    /* attempts.jsonl, line by line */
    size_t lines[N_PROBES] = {0};
    FILE *f = fopen(o->attempts, "r");
    assert_non_null(f);
    char line[2048];
    size_t wrong = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        json_t *a = json_loads(line, 0, NULL);
        assert_non_null(a);
        json_int_t p = json_integer_value(json_object_get(a, "p"));
        const char *out = json_string_value(json_object_get(a, "o"));
        const char *d = json_string_value(json_object_get(a, "d"));
        assert_true(p >= 0 && p < N_PROBES);
        assert_non_null(out);
        lines[p]++;
        bool ok = strcmp(out, "ok") == 0, late = strcmp(out, "late") == 0;
        /* the right outcome for the probe it names, for the right reason */
        if (!late && (is_bad((size_t)p) ? ok : !ok)) {
            wrong++;
            fprintf(stderr, "misattributed: %s", line);
        }
        if (!late && p < N_HTTP && is_bad((size_t)p))
            assert_non_null(strstr(d, "status 503"));
        json_decref(a);
    }
    fclose(f);
    assert_int_equal(wrong, 0);

    unsigned used[3] = {0};
    for (size_t i = 0; i < N_PROBES; i++) {
        const struct fl_run_probe *rp = &rec->probes[i];
        const struct fl_probe_counts *c = &rp->tl.counts;
        /* no loss, no duplication between the timeline and the file */
        assert_int_equal(c->attempts, lines[i]);
        assert_true(c->attempts > 10);
        /* at most the attempt in flight at stop, and one queued, not recorded */
        assert_true(rp->stats.started >= c->attempts);
        assert_true(rp->stats.started <= c->attempts + 2);
        if (is_bad(i))
            assert_int_equal(c->ok, 0);
        else
            assert_int_equal(c->failed + c->timeout, 0);
        assert_int_equal(rp->tl.health.state, is_bad(i) ? FL_HEALTH_UNHEALTHY : FL_HEALTH_HEALTHY);
        assert_true(rp->thread <= 2);
        used[rp->thread]++;
        if (i < N_HTTP)
            started_sum[i] += rp->stats.started;
    }
    if (o->threads == 2) {
        assert_int_equal(used[0], 0); /* http and tcp all on the threads */
        assert_true(used[1] > 0 && used[2] > 0);
    } else {
        assert_int_equal(used[0], N_PROBES);
    }
}

static size_t recorded(const struct one_run *o, size_t i)
{
    const struct fl_probe_counts *c = &o->rec.probes[i].tl.counts;
    return (size_t)(c->ok + c->failed);
}

static void test_two_threads_attribute_every_result(void **state)
{
    (void)state;
    unsigned long before[MAX_PATHS];
    server_counts(before); /* starts the counts afresh */
    struct one_run o;
    prepare(&o, "solo", dummies[0], 2);
    run_main(&o);
    unsigned long seen[MAX_PATHS], started[MAX_PATHS] = {0};
    check_run(&o, started);
    server_counts(seen);
    for (size_t i = 0; i < N_HTTP; i++) {
        /* what was recorded reached the server; nothing more than was started */
        if (seen[i] < recorded(&o, i) || seen[i] > started[i])
            fprintf(stderr, "probe %zu: server saw %lu, recorded %zu, started %lu\n", i, seen[i],
                    recorded(&o, i), started[i]);
        assert_true(seen[i] >= recorded(&o, i));
        assert_true(seen[i] <= started[i]);
    }
    fl_run_record_free(&o.rec);
    fl_experiment_free(&o.e);
}

/* Two runs at once on two threads, each with its probe threads: what
 * `faultline serve` does with max_concurrent_runs 2. */
static void test_two_runs_at_once(void **state)
{
    (void)state;
    unsigned long before[MAX_PATHS];
    server_counts(before);
    struct one_run a, b;
    prepare(&a, "left", dummies[0], 2);
    prepare(&b, "right", dummies[1], 2);
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, run_main, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, run_main, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    unsigned long seen[MAX_PATHS], started[MAX_PATHS] = {0};
    check_run(&a, started);
    check_run(&b, started);
    server_counts(seen);
    for (size_t i = 0; i < N_HTTP; i++) {
        size_t rec = recorded(&a, i) + recorded(&b, i);
        assert_true(seen[i] >= rec);
        assert_true(seen[i] <= started[i]);
    }
    fl_run_record_free(&a.rec);
    fl_run_record_free(&b.rec);
    fl_experiment_free(&a.e);
    fl_experiment_free(&b.e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_threads_attribute_every_result),
        cmocka_unit_test(test_two_runs_at_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
