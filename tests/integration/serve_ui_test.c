/* The read-only pages of faultline serve and its /metrics, against a real
 * serve that ran real experiments (pause_process of a dummy child through a
 * real faultline-agent) on loopback.
 *
 * The whole test runs in a network namespace of its own with only `lo` up
 * (unshare at start): serve, the agent, Chromium and Prometheus cannot reach
 * anything but this machine's loopback, whatever they try; and Chromium's
 * network log is checked to name no URL but serve's own.
 *
 * - `/` and `/runs/ID` load in headless Chromium (chromium-headless-shell):
 *   both experiments are listed with their schedule and a link to each of
 *   their finished runs; the run page is that run's report (rendered from
 *   run.json); a report.html in the folder is served as it is.
 * - /api/runs agrees with `faultline history --json`, per experiment and
 *   for all; a limit above FL_PAGES_API_LIMIT_MAX is refused.
 * - Path traversal and foreign folders: /runs/../.., encoded dots, ids that
 *   are not digits, a row whose report folder is /etc, a report.html that is
 *   a symlink to /etc/passwd, a folder that is a symlink out of reports_dir:
 *   every one 404, never a byte of the file.
 * - Prometheus (Debian's `prometheus`) on a private port and data dir
 *   scrapes serve's /metrics; faultline_runs_total queried through its HTTP
 *   API equals the history's count of runs; `promtool check metrics` passes
 *   the scraped text. */
#include <errno.h>
#include <jansson.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "tests/support/agent_proc.h"
#include "tests/support/proc.h"
#include "tests/support/serve.h"

static char dir[] = "/tmp/flui-serve-ui.XXXXXX";
static char key_path[300], pidfile[300], db_url[320], reports[300], exps[300];
static struct test_agent agent;
static pid_t dummy, serve;
static uint16_t http_port, dummy_port;
static const char *browser;
static const char *names[] = {"web-a", "web-b"};

static char *arg(const char *a)
{
    return (char *)(uintptr_t)a;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf != NULL && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    fclose(f);
    if (buf != NULL)
        buf[len] = '\0';
    return buf;
}

static void write_experiment(const char *name, const char *every)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/%s.yaml", exps, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "version: 1\n"
            "name: %s\n"
            "inventory:\n"
            "  key_file: %s\n"
            "  hosts:\n"
            "    web1: { address: 127.0.0.1, port: %u }\n"
            "probes:\n"
            "  - name: up\n"
            "    http: { url: \"http://127.0.0.1:%u/\", timeout: 200ms }\n"
            "    interval: 100ms\n"
            "steady_state: [up]\n"
            "faults:\n"
            "  - name: pause-dummy\n"
            "    target: { hosts: [web1] }\n"
            "    pause_process: { pidfile: %s }\n"
            "    duration: 1s\n"
            "recovery: { probes: [up], timeout: 5s }\n"
            "schedule:\n"
            "  every: %s\n"
            "  starting_deadline: 2s\n",
            name, key_path, (unsigned)agent.port, (unsigned)dummy_port, pidfile, every);
    assert_int_equal(fclose(f), 0);
}

static pid_t start_serve(const char *log)
{
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)http_port);
    char *argv[] = {
        arg(FL_CTL_BIN),      arg("serve"), arg("--experiments"), exps,   arg("--db"), db_url,
        arg("--reports-dir"), reports,      arg("--listen-http"), listen, NULL};
    pid_t pid = proc_start(argv, log);
    serve_wait_log(log, "pages on http", 20000);
    return pid;
}

static json_t *history(const char *experiment)
{
    static char out[1 << 22];
    char *argv[] = {arg(FL_CTL_BIN), arg("history"),  arg("--json"),
                    arg("--limit"),  arg("0"),        arg("--db"),
                    db_url,          arg(experiment), NULL};
    if (experiment == NULL)
        argv[7] = NULL;
    assert_int_equal(proc_run(argv, out, sizeof(out), 20000), 0);
    json_error_t jerr;
    json_t *rows = json_loads(out, 0, &jerr);
    if (rows == NULL)
        fprintf(stderr, "history --json: %s\n%s\n", jerr.text, out);
    assert_non_null(rows);
    return rows;
}

/* GET path (as is: no client-side normalising of ..) into out; the status. */
static int http_get(const char *path, char *out, size_t cap)
{
    char url[600], code_s[16];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", (unsigned)http_port, path);
    char body[400];
    snprintf(body, sizeof(body), "%s/body", dir);
    char *argv[] = {arg("/usr/bin/curl"),
                    arg("-s"),
                    arg("--path-as-is"),
                    arg("-o"),
                    body,
                    arg("-w"),
                    arg("%{http_code}"),
                    url,
                    NULL};
    if (proc_run(argv, code_s, sizeof(code_s), 20000) != 0)
        return -1;
    char *b = read_file(body);
    snprintf(out, cap, "%s", b ? b : "");
    free(b);
    return atoi(code_s);
}

/* Chromium in this test's namespace (only lo), with a network log. */
static int chromium(const char *path, const char *netlog, char *out, size_t cap)
{
    char profile[400], log_arg[500], url[600];
    snprintf(profile, sizeof(profile), "--user-data-dir=%s/chromium-profile", dir);
    snprintf(log_arg, sizeof(log_arg), "--log-net-log=%s", netlog);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", (unsigned)http_port, path);
    char *argv[] = {arg(browser),
                    arg("--no-sandbox"),
                    arg("--disable-gpu"),
                    arg("--window-size=1200,1000"),
                    profile,
                    log_arg,
                    arg("--dump-dom"),
                    url,
                    NULL};
    return proc_run(argv, out, cap, 60000);
}

/* Every URL in Chromium's network log is serve's own; the number of them. */
static size_t netlog_only_serve(const char *netlog)
{
    char *log = read_file(netlog);
    assert_non_null(log);
    char own[64];
    snprintf(own, sizeof(own), "http://127.0.0.1:%u/", (unsigned)http_port);
    size_t n = 0;
    for (const char *p = strstr(log, "\"url\":\""); p != NULL; p = strstr(p + 1, "\"url\":\"")) {
        const char *u = p + 7;
        if (strncmp(u, own, strlen(own)) != 0) {
            const char *end = strchr(u, '"');
            fail_msg("Chromium requested %.*s, not serve's %s", (int)(end ? end - u : 80), u, own);
        }
        n++;
    }
    free(log);
    return n;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

/* ---------------------------------------------------------------- setup */

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(key_path, sizeof(key_path), "%s/faultline.key", dir);
    snprintf(pidfile, sizeof(pidfile), "%s/dummy.pid", dir);
    snprintf(db_url, sizeof(db_url), "sqlite:%s/history.db", dir);
    snprintf(reports, sizeof(reports), "%s/reports", dir);
    snprintf(exps, sizeof(exps), "%s/exps", dir);
    if (mkdir(exps, 0755) != 0)
        return -1;
    char out[512];
    char *kg[] = {arg(FL_CTL_BIN), arg("keygen"), key_path, NULL};
    if (proc_run(kg, out, sizeof(out), 5000) != 0)
        return -1;
    const char *extra[] = {"--lease", "2s", NULL};
    if (test_agent_start(&agent, FL_AGENT_BIN, key_path, dir, "agent", NULL, extra) < 0)
        return -1;
    /* the dummy: a tiny HTTP server the fault pauses (so that the http
     * probe fails and a recovery is measured) */
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(ls, 64) != 0 ||
        getsockname(ls, (struct sockaddr *)&sa, &sl) != 0)
        return -1;
    dummy_port = ntohs(sa.sin_port);
    dummy = fork();
    if (dummy == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        prctl(PR_SET_NAME, "flui-dummy", 0, 0, 0);
        static const char reply[] = "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok";
        for (;;) {
            int c = accept(ls, NULL, NULL);
            if (c < 0)
                continue;
            char req[2048];
            ssize_t n = read(c, req, sizeof(req));
            if (n > 0 && write(c, reply, sizeof(reply) - 1) < 0)
                n = -1;
            close(c);
        }
    }
    close(ls);
    FILE *f = fopen(pidfile, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "%d\n", (int)dummy);
    fclose(f);
    http_port = test_free_port();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = 0;
    if (serve > 0 && proc_stop(serve, SIGTERM, 20000) != 0)
        rc = -1;
    if (dummy > 0) {
        kill(dummy, SIGKILL);
        waitpid(dummy, NULL, 0);
    }
    if (agent.pid > 0 && proc_stop(agent.pid, SIGTERM, 10000) != 0)
        rc = -1;
    if (rc != 0 || getenv("FL_TEST_VERBOSE"))
        test_agent_dump_log(&agent);
    if (getenv("FL_KEEP_REPORTS") != NULL)
        printf("[ kept     ] %s\n", dir);
    else if (sh("rm -rf %s", dir) != 0)
        rc = -1;
    return rc;
}

/* Two experiments on `every: 2s` until each has two finished runs; then
 * serve again with `every: 1h`, so that history holds still while the
 * pages are read. */
static void run_experiments(void)
{
    char log[400];
    snprintf(log, sizeof(log), "%s/serve1.log", dir);
    for (size_t i = 0; i < 2; i++)
        write_experiment(names[i], "2s");
    pid_t s1 = start_serve(log);
    int64_t waited = 0;
    for (;; waited += 500) {
        json_t *rows = history(NULL);
        size_t done[2] = {0};
        for (size_t i = 0; i < json_array_size(rows); i++) {
            json_t *r = json_array_get(rows, i);
            for (size_t x = 0; x < 2; x++)
                done[x] += strcmp(row_str(r, "experiment"), names[x]) == 0 &&
                           strcmp(row_str(r, "state"), "finished") == 0;
        }
        json_decref(rows);
        if (done[0] >= 2 && done[1] >= 2)
            break;
        if (waited > 60000) {
            serve_dump_log(log);
            fail_msg("two runs of each experiment did not finish within 60 s");
        }
        sleep_ms(500);
    }
    assert_int_equal(proc_stop(s1, SIGTERM, 20000), 0);
    for (size_t i = 0; i < 2; i++)
        write_experiment(names[i], "1h");
    snprintf(log, sizeof(log), "%s/serve2.log", dir);
    serve = start_serve(log);
}

/* ---------------------------------------------------------------- tests */

static void test_pages_in_chromium(void **state)
{
    (void)state;
    run_experiments();
    json_t *rows = history(NULL);
    static char dom[1 << 22];
    char netlog[400];
    snprintf(netlog, sizeof(netlog), "%s/netlog-index.json", dir);
    assert_int_equal(chromium("/", netlog, dom, sizeof(dom)), 0);
    assert_true(netlog_only_serve(netlog) >= 1);
    assert_non_null(strstr(dom, "<h1>Scheduled experiments</h1>"));
    assert_int_equal(count(dom, "<tr class=\"experiment\""), 2);
    for (size_t x = 0; x < 2; x++) {
        char needle[128];
        snprintf(needle, sizeof(needle), "data-experiment=\"%s\"", names[x]);
        const char *row = strstr(dom, needle);
        assert_non_null(row);
        const char *end = strstr(row, "</tr>");
        assert_non_null(end);
        char *tr = strndup(row, (size_t)(end - row));
        assert_non_null(strstr(tr, "every 1h"));
        assert_non_null(strstr(tr, "class=\"verdict"));
        /* a link to each of its newest finished runs (up to 5) */
        size_t links = 0;
        for (size_t i = 0; i < json_array_size(rows) && links < 5; i++) {
            json_t *r = json_array_get(rows, i);
            if (strcmp(row_str(r, "experiment"), names[x]) != 0 ||
                strcmp(row_str(r, "state"), "skipped") == 0)
                continue;
            char href[64];
            snprintf(href, sizeof(href), "href=\"/runs/%lld\"",
                     (long long)json_integer_value(json_object_get(r, "id")));
            assert_non_null(strstr(tr, href));
            links++;
        }
        assert_true(links >= 2);
        free(tr);
    }
    /* the trend: an SVG per experiment, a point per measured recovery */
    assert_int_equal(count(dom, "<svg class=\"trend\""), 2);

    /* /runs/ID of the newest finished run of web-a: its report */
    json_int_t id = -1;
    for (size_t i = 0; i < json_array_size(rows) && id < 0; i++) {
        json_t *r = json_array_get(rows, i);
        if (strcmp(row_str(r, "experiment"), "web-a") == 0 &&
            strcmp(row_str(r, "state"), "finished") == 0)
            id = json_integer_value(json_object_get(r, "id"));
    }
    assert_true(id > 0);
    char path[64];
    snprintf(path, sizeof(path), "/runs/%lld", (long long)id);
    snprintf(netlog, sizeof(netlog), "%s/netlog-run.json", dir);
    assert_int_equal(chromium(path, netlog, dom, sizeof(dom)), 0);
    assert_true(netlog_only_serve(netlog) >= 1);
    assert_non_null(strstr(dom, "id=\"run-json\""));
    assert_non_null(strstr(dom, "web-a"));
    assert_non_null(strstr(dom, "pause-dummy"));
    json_decref(rows);
}

static void test_report_html_served_as_is(void **state)
{
    (void)state;
    json_t *rows = history("web-b");
    json_int_t id = -1;
    const char *folder = NULL;
    for (size_t i = 0; i < json_array_size(rows) && id < 0; i++) {
        json_t *r = json_array_get(rows, i);
        if (strcmp(row_str(r, "state"), "finished") == 0 &&
            json_is_string(json_object_get(r, "report_folder"))) {
            id = json_integer_value(json_object_get(r, "id"));
            folder = row_str(r, "report_folder");
        }
    }
    assert_true(id > 0);
    char page[600];
    snprintf(page, sizeof(page), "%s/report.html", folder);
    FILE *f = fopen(page, "w");
    assert_non_null(f);
    fputs("<!DOCTYPE html><title>flui marker</title><p>the report.html of the folder</p>\n", f);
    assert_int_equal(fclose(f), 0);
    char path[64];
    static char body[1 << 20];
    snprintf(path, sizeof(path), "/runs/%lld", (long long)id);
    assert_int_equal(http_get(path, body, sizeof(body)), 200);
    assert_string_equal(body, "<!DOCTYPE html><title>flui marker</title><p>the report.html of the "
                              "folder</p>\n");
    json_decref(rows);
}

static void test_api_agrees_with_history(void **state)
{
    (void)state;
    static char body[1 << 22];
    for (size_t x = 0; x < 3; x++) {
        const char *e = x < 2 ? names[x] : NULL;
        char path[128];
        if (e != NULL)
            snprintf(path, sizeof(path), "/api/runs?experiment=%s&limit=1000", e);
        else
            snprintf(path, sizeof(path), "/api/runs?limit=1000");
        assert_int_equal(http_get(path, body, sizeof(body)), 200);
        json_error_t jerr;
        json_t *api = json_loads(body, 0, &jerr);
        assert_non_null(api);
        json_t *hist = history(e);
        assert_true(json_array_size(hist) >= 2);
        assert_true(json_array_size(hist) < 1000);
        if (!json_equal(api, hist))
            fail_msg("/api/runs%s%s differs from history --json", e ? " of " : "", e ? e : "");
        json_decref(api);
        json_decref(hist);
    }
    /* paging: limit 1 offset 1 is the second row */
    json_t *hist = history(NULL);
    assert_int_equal(http_get("/api/runs?limit=1&offset=1", body, sizeof(body)), 200);
    json_t *one = json_loads(body, 0, NULL);
    assert_int_equal(json_array_size(one), 1);
    assert_true(json_equal(json_array_get(one, 0), json_array_get(hist, 1)));
    json_decref(one);
    json_decref(hist);
    /* limits are refused by name, never cut */
    assert_int_equal(http_get("/api/runs?limit=1001", body, sizeof(body)), 400);
    assert_non_null(strstr(body, "FL_PAGES_API_LIMIT_MAX"));
    assert_int_equal(http_get("/api/runs?limit=-1", body, sizeof(body)), 400);
    assert_int_equal(http_get("/api/runs?limit=0", body, sizeof(body)), 400);
    assert_int_equal(http_get("/api/runs?offset=x", body, sizeof(body)), 400);
}

static void test_path_traversal(void **state)
{
    (void)state;
    static char body[1 << 20];
    char *passwd = read_file("/etc/passwd");
    assert_non_null(passwd);
    char first_line[128];
    snprintf(first_line, sizeof(first_line), "%.*s", (int)strcspn(passwd, "\n"), passwd);
    free(passwd);
    json_t *rows = history("web-a");
    json_int_t id = -1;
    const char *folder = NULL;
    for (size_t i = 0; i < json_array_size(rows) && id < 0; i++) {
        json_t *r = json_array_get(rows, i);
        if (strcmp(row_str(r, "state"), "finished") == 0) {
            id = json_integer_value(json_object_get(r, "id"));
            folder = row_str(r, "report_folder");
        }
    }
    assert_true(id > 0);
    /* rows the store could hold after someone edited it, or a moved
     * reports_dir: a folder outside reports_dir, a folder that is a symlink
     * out of it, a report.html that is a symlink */
    char outside[400], secret[500], out_link[400], in_folder[400];
    snprintf(outside, sizeof(outside), "%s/outside", dir);
    assert_int_equal(mkdir(outside, 0755), 0);
    snprintf(secret, sizeof(secret), "%s/report.html", outside);
    FILE *f = fopen(secret, "w");
    assert_non_null(f);
    fputs("flui-secret: a report.html outside reports_dir\n", f);
    assert_int_equal(fclose(f), 0);
    snprintf(out_link, sizeof(out_link), "%s/web-a/linked-out", reports);
    assert_int_equal(symlink(outside, out_link), 0);
    snprintf(in_folder, sizeof(in_folder), "%s/web-a/symlinked-page", reports);
    assert_int_equal(mkdir(in_folder, 0755), 0);
    char page[500];
    snprintf(page, sizeof(page), "%s/report.html", in_folder);
    assert_int_equal(symlink("/etc/passwd", page), 0);
    char db[400];
    snprintf(db, sizeof(db), "%s", db_url + 7);
    assert_int_equal(
        sh("sqlite3 %s \"INSERT INTO runs (id, experiment, file_hash, due_ms, state, verdict, "
           "report_folder) VALUES (900001, 'web-a', 'x', 1, 'finished', 'PASS', '%s'), "
           "(900002, 'web-a', 'x', 2, 'finished', 'PASS', '%s'), "
           "(900003, 'web-a', 'x', 3, 'finished', 'PASS', '%s/../../../outside'), "
           "(900004, 'web-a', 'x', 4, 'finished', 'PASS', '%s'), "
           "(900005, 'web-a', 'x', 5, 'finished', 'PASS', '/etc')\"",
           db, outside, out_link, folder, in_folder),
        0);
    char escaped[300];
    snprintf(escaped, sizeof(escaped), "/runs/%lld/../../../../../../etc/passwd", (long long)id);
    const char *attempts[] = {
        "/runs/../../../../../../etc/passwd",
        "/runs/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/runs/%2e%2e/%2e%2e/etc/passwd",
        escaped,
        "/runs/-1",
        "/runs/1e3",
        "/runs/0x10",
        "/runs/%201",
        "/runs/1234567890123456789012",
        "/runs/",
        "/runs/999999",
        "/runs/900001",
        "/runs/900002",
        "/runs/900003",
        "/runs/900004",
        "/runs/900005",
        "/../../etc/passwd",
        "/api/../../etc/passwd",
    };
    for (size_t i = 0; i < sizeof(attempts) / sizeof(attempts[0]); i++) {
        int code = http_get(attempts[i], body, sizeof(body));
        if (code != 404 || strstr(body, first_line) != NULL || strstr(body, "flui-secret"))
            fail_msg("%s: status %d, body:\n%.300s", attempts[i], code, body);
    }
    json_decref(rows);
}

/* Finished rows of the history, but for those test_path_traversal wrote
 * into the database behind serve's back (file_hash "x": not runs serve
 * counted). */
static size_t finished_runs(const char *experiment)
{
    json_t *rows = history(experiment);
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(rows); i++) {
        json_t *r = json_array_get(rows, i);
        n += strcmp(row_str(r, "state"), "finished") == 0 &&
             strcmp(row_str(r, "file_hash"), "x") != 0;
    }
    json_decref(rows);
    return n;
}

static void test_prometheus_scrape(void **state)
{
    (void)state;
    uint16_t prom_port = test_free_port();
    char conf[400], data[400], log[400], mpath[400];
    snprintf(conf, sizeof(conf), "%s/prometheus.yml", dir);
    snprintf(data, sizeof(data), "%s/prometheus-data", dir);
    snprintf(log, sizeof(log), "%s/prometheus.log", dir);
    snprintf(mpath, sizeof(mpath), "%s/scraped.txt", dir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f,
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: faultline\n    static_configs:\n"
            "      - targets: ['127.0.0.1:%u']\n",
            (unsigned)http_port);
    assert_int_equal(fclose(f), 0);
    char cfg_arg[500], data_arg[500], listen_arg[100];
    snprintf(cfg_arg, sizeof(cfg_arg), "--config.file=%s", conf);
    snprintf(data_arg, sizeof(data_arg), "--storage.tsdb.path=%s", data);
    snprintf(listen_arg, sizeof(listen_arg), "--web.listen-address=127.0.0.1:%u",
             (unsigned)prom_port);
    char *argv[] = {arg("/usr/bin/prometheus"), cfg_arg, data_arg, listen_arg, NULL};
    pid_t prom = proc_start(argv, log);
    assert_true(prom > 0);

    /* the history's count of runs: every finished row */
    size_t runs = finished_runs(NULL);
    assert_true(runs >= 4);

    /* one scrape, then the PromQL query through the HTTP API */
    char q[300], out[1 << 16];
    snprintf(q, sizeof(q), "http://127.0.0.1:%u/api/v1/query?query=sum(faultline_runs_total)",
             (unsigned)prom_port);
    double got = -1;
    for (int waited = 0; waited < 60000; waited += 500) {
        char *cv[] = {arg("/usr/bin/curl"), arg("-s"), q, NULL};
        if (proc_run(cv, out, sizeof(out), 10000) == 0) {
            json_t *doc = json_loads(out, 0, NULL);
            json_t *res = json_object_get(json_object_get(doc, "data"), "result");
            json_t *val = json_array_get(json_object_get(json_array_get(res, 0), "value"), 1);
            if (json_is_string(val))
                got = strtod(json_string_value(val), NULL);
            json_decref(doc);
        }
        if (got >= 0)
            break;
        sleep_ms(500);
    }
    if (got < 0) {
        char buf[1 << 16];
        file_wait_for(log, "\x01", buf, sizeof(buf), 0);
        fprintf(stderr, "prometheus log:\n%s\n", buf);
        fail_msg("Prometheus had no faultline_runs_total within 60 s");
    }
    printf("[ prometheus ] sum(faultline_runs_total) = %g, history: %zu runs\n", got, runs);
    assert_true(got == (double)runs);
    /* the target is up, and per experiment the counts agree too */
    for (size_t x = 0; x < 2; x++) {
        size_t n = finished_runs(names[x]);
        snprintf(q, sizeof(q),
                 "http://127.0.0.1:%u/api/v1/query?query=sum(faultline_runs_total%%7Bexperiment="
                 "%%22%s%%22%%7D)",
                 (unsigned)prom_port, names[x]);
        char *cv[] = {arg("/usr/bin/curl"), arg("-s"), q, NULL};
        assert_int_equal(proc_run(cv, out, sizeof(out), 10000), 0);
        json_t *doc = json_loads(out, 0, NULL);
        json_t *val = json_array_get(
            json_object_get(
                json_array_get(json_object_get(json_object_get(doc, "data"), "result"), 0),
                "value"),
            1);
        assert_true(json_is_string(val));
        assert_true(strtod(json_string_value(val), NULL) == (double)n);
        json_decref(doc);
    }
    assert_int_equal(proc_stop(prom, SIGTERM, 20000), 0);

    /* the text Prometheus scraped, through promtool */
    assert_int_equal(sh("curl -sf -o %s http://127.0.0.1:%u/metrics", mpath, (unsigned)http_port),
                     0);
    char *cv[] = {arg("/bin/sh"), arg("-c"), NULL, NULL};
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", mpath);
    cv[2] = cmd;
    int rc = proc_run(cv, out, sizeof(out), 20000);
    if (rc != 0 || out[0] != '\0')
        fail_msg("promtool check metrics: status %d:\n%s", rc, out);
}

int main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "serve_ui_test: skipped, needs root (a network namespace)\n");
        return 77;
    }
    browser = access("/usr/bin/chromium-headless-shell", X_OK) == 0
                  ? "/usr/bin/chromium-headless-shell"
                  : "/usr/bin/chromium";
    const char *needed[] = {browser, "/usr/bin/prometheus", "/usr/bin/promtool", "/usr/bin/curl",
                            "/usr/bin/sqlite3"};
    for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++)
        if (access(needed[i], X_OK) != 0) {
            fprintf(stderr, "serve_ui_test: %s is missing (make deps installs it)\n", needed[i]);
            return 1;
        }
    /* only loopback, for everything this test starts */
    if (unshare(CLONE_NEWNET) != 0) {
        perror("serve_ui_test: unshare(CLONE_NEWNET)");
        return 1;
    }
    if (system("ip link set lo up") != 0) {
        fprintf(stderr, "serve_ui_test: cannot bring lo up in the new namespace\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pages_in_chromium),
        cmocka_unit_test(test_report_html_served_as_is),
        cmocka_unit_test(test_api_agrees_with_history),
        cmocka_unit_test(test_path_traversal),
        cmocka_unit_test(test_prometheus_scrape),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
