/* A multi-host DSN whose FIRST host swallows packets (a network_drop fault
 * on the primary, a dead host whose SYNs go unanswered) must be left as a
 * real client leaves it: after connect_timeout, per host (libpq's blocking
 * connect), or, without connect_timeout, when the kernel gives up the TCP
 * connect; then the writes go to the second host and keep going there.
 *
 * The bug: libpq ignores connect_timeout under PQconnectPoll, so the
 * client's asynchronous connect waited on host 1 until its write's own
 * timeout (1 s) dropped it, and the next write started again at host 1:
 * every write failed for ever, an outage the service did not have.
 *
 * The bed lives in namespaces of the test's own, gone with its process
 * whatever happens to it (no name to collide with, nothing to remove): a
 * network namespace where 10.231.7.2 is a neighbour behind a veth that drops
 * its frames (its SYNs vanish, nothing answers, nothing refuses), a mount namespace with a
 * tmpfs on /tmp (the server's data and socket directory), an IPC namespace
 * (its shared memory). The second host is a real PostgreSQL 15 on
 * 127.0.0.1. A real client runs side by side with the same DSN: psql
 * (libpq's blocking connect); the bounds are taken from it. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/clock.h"
#include "controller/probes/pgwrite.h"
#include "tests/support/proc.h"

#define PGBIN "/usr/lib/postgresql/15/bin"
#define SETPRIV "/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"
#define DIR "/tmp/flpgc"
#define SILENT "10.231.7.2" /* behind the veth flpgc0, unanswered */
#define PORT 5432           /* a network namespace of our own: free */
#define INTERVAL_MS 100
#define TIMEOUT_MS 1000
#define MAX_WRITES 1000
#define NONE SIZE_MAX

static pid_t postmaster;

static int run(char *const argv[], int timeout_ms)
{
    char out[4096];
    int rc = proc_run(argv, out, sizeof(out), timeout_ms);
    if (rc != 0)
        fprintf(stderr, "%s failed (%d): %s\n", argv[0], rc, out);
    return rc;
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror(path);
        return -1;
    }
    size_t n = strlen(text);
    int rc = write(fd, text, n) == (ssize_t)n ? 0 : -1;
    close(fd);
    return rc;
}

static int append_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_APPEND);
    if (fd < 0) {
        perror(path);
        return -1;
    }
    size_t n = strlen(text);
    int rc = write(fd, text, n) == (ssize_t)n ? 0 : -1;
    close(fd);
    return rc;
}

/* The kernel's SYN retries in our network namespace (6: about 127 s before
 * a connect to a silent host fails; 1: about 3 s). */
static void syn_retries(int n)
{
    char v[8];
    snprintf(v, sizeof(v), "%d\n", n);
    assert_int_equal(write_file("/proc/sys/net/ipv4/tcp_syn_retries", v), 0);
}

/* Namespaces, the silent address, and PostgreSQL on 127.0.0.1:PORT. */
static int setup_bed(void **state)
{
    (void)state;
    if (unshare(CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWIPC) != 0) {
        perror("unshare");
        return -1;
    }
    /* nothing mounted from here on may reach the machine's namespace */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        perror("mount --make-rprivate /");
        exit(1);
    }
    if (mount("flpgc", "/tmp", "tmpfs", 0, "mode=1777,size=512m") != 0) {
        perror("mount tmpfs /tmp");
        return -1;
    }
    /* 10.231.7.2 is a neighbour on a veth whose peer has another MAC
     * address: its frames are dropped there, unanswered (no ARP to fail) */
    char *lo[] = {"/usr/sbin/ip", "link", "set", "lo", "up", NULL};
    char *veth[] = {"/usr/sbin/ip", "link", "add",  "flpgc0", "type",
                    "veth",         "peer", "name", "flpgc1", NULL};
    char *addr[] = {"/usr/sbin/ip", "addr", "add", "10.231.7.1/24", "dev", "flpgc0", NULL};
    char *up0[] = {"/usr/sbin/ip", "link", "set", "flpgc0", "up", NULL};
    char *up1[] = {"/usr/sbin/ip", "link", "set", "flpgc1", "up", NULL};
    char *neigh[] = {
        "/usr/sbin/ip", "neigh",     "replace", SILENT,   "lladdr", "02:00:00:00:07:02",
        "nud",          "permanent", "dev",     "flpgc0", NULL};
    if (run(lo, 10000) != 0 || run(veth, 10000) != 0 || run(addr, 10000) != 0 ||
        run(up0, 10000) != 0 || run(up1, 10000) != 0 || run(neigh, 10000) != 0)
        return -1;

    struct passwd *pw = getpwnam("postgres");
    if (pw == NULL || mkdir(DIR, 0700) != 0 || chown(DIR, pw->pw_uid, pw->pw_gid) != 0) {
        fprintf(stderr, "cannot make %s for the postgres user\n", DIR);
        return -1;
    }
    uint64_t t0 = fl_mono_ms();
    char *initdb[] = {SETPRIV,
                      "--pdeathsig=SIGKILL",
                      "--",
                      PGBIN "/initdb",
                      "-D",
                      DIR "/data",
                      "-U",
                      "postgres",
                      "--auth=trust",
                      "-N",
                      NULL};
    if (run(initdb, 120000) != 0)
        return -1;
    char conf[512];
    snprintf(conf, sizeof(conf),
             "port = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n"
             "fsync = off\nlog_min_messages = warning\n",
             PORT, DIR);
    if (append_file(DIR "/data/postgresql.conf", conf) != 0 ||
        write_file(DIR "/data/pg_hba.conf", "local all all trust\n"
                                            "host all all 127.0.0.1/32 trust\n") != 0)
        return -1;
    char *postgres[] = {SETPRIV, "--pdeathsig=SIGKILL", "--", PGBIN "/postgres",
                        "-D",    DIR "/data",           NULL};
    postmaster = proc_start(postgres, DIR "/postgres.log");
    char *ping[] = {PGBIN "/psql", "-X",       "-h",   "127.0.0.1", "-U", "postgres",
                    "-d",          "postgres", "-Atc", "SELECT 1",  NULL};
    char out[256];
    for (int i = 0; i < 600; i++) {
        if (proc_run(ping, out, sizeof(out), 5000) == 0) {
            fprintf(stderr, "PostgreSQL up on 127.0.0.1:%d in %llu ms\n", PORT,
                    (unsigned long long)(fl_mono_ms() - t0));
            return 0;
        }
        sleep_ms(100);
    }
    fprintf(stderr, "PostgreSQL never answered: %s\n", out);
    return -1;
}

static int teardown_bed(void **state)
{
    (void)state;
    if (postmaster > 0)
        proc_stop(postmaster, SIGQUIT, 10000);
    postmaster = 0;
    return 0; /* the namespaces go with the process */
}

/* ---- writes every INTERVAL_MS (never two at once), a real client beside */

struct write_rec {
    uint64_t start, end; /* ms since the first write */
    bool ok;
    char detail[200];
};

struct drive {
    uv_loop_t loop;
    uv_timer_t tick;
    struct fl_pgwrite *w;
    uint64_t t0, next_due, deadline;
    bool busy;
    struct write_rec wr[MAX_WRITES];
    size_t n;
    size_t first_ok; /* index of the first acknowledged write, NONE when none */
    pid_t psql;
    int psql_rc;
    uint64_t psql_ms; /* the real client's connect and SELECT, 0 while running */
};

static struct drive d;

static uint64_t since(void)
{
    return fl_mono_ms() - d.t0;
}

static void on_write(void *arg, bool ok, uint64_t ack_ms, const char *detail)
{
    (void)ack_ms;
    struct write_rec *r = arg;
    r->end = since();
    r->ok = ok;
    snprintf(r->detail, sizeof(r->detail), "%s", detail);
    if (ok && d.first_ok == NONE)
        d.first_ok = (size_t)(r - d.wr);
    d.busy = false;
}

static bool finished(void)
{
    if (d.psql_ms == 0)
        return false;
    /* ten writes after the first acknowledgement: does it keep writing? */
    return d.first_ok != NONE && d.n - d.first_ok > 10 && !d.busy;
}

static void on_tick(uv_timer_t *t)
{
    if (d.psql_ms == 0) {
        int rc = proc_wait(d.psql, 0);
        if (rc >= 0) {
            d.psql_rc = rc;
            d.psql_ms = since() > 0 ? since() : 1;
        }
    }
    if (finished() || (fl_mono_ms() >= d.deadline && !d.busy)) {
        uv_timer_stop(t);
        return;
    }
    if (d.busy || since() < d.next_due || d.n == MAX_WRITES)
        return;
    struct write_rec *r = &d.wr[d.n];
    r->start = since();
    d.next_due = r->start + INTERVAL_MS;
    assert_int_equal(fl_pgwrite_write(d.w, d.n + 1, fl_now_ms(), TIMEOUT_MS, on_write, r), 0);
    d.n++;
    d.busy = true;
}

/* Writes through dsn until ten writes after the first acknowledged one, or
 * for up to max_ms; psql runs the same DSN from the same moment. */
static void drive(const char *dsn, int max_ms)
{
    memset(&d, 0, sizeof(d));
    d.first_ok = NONE;
    assert_int_equal(uv_loop_init(&d.loop), 0);
    char err[256];
    char run_id[64];
    snprintf(run_id, sizeof(run_id), "silent-%d-%llu", (int)getpid(),
             (unsigned long long)fl_mono_ms());
    if (fl_pgwrite_create(&d.loop, dsn, NULL, run_id, &d.w, err, sizeof(err)) != 0)
        fail_msg("create: %s", err);
    uv_timer_init(&d.loop, &d.tick);
    char *psql[] = {PGBIN "/psql", "-X", "-At", "-d", (char *)dsn, "-c", "SELECT 1", NULL};
    d.t0 = fl_mono_ms();
    d.deadline = d.t0 + (uint64_t)max_ms;
    d.psql = proc_start(psql, DIR "/psql.log");
    assert_true(d.psql > 0);
    uv_timer_start(&d.tick, on_tick, 0, 5);
    uv_run(&d.loop, UV_RUN_DEFAULT);
    if (d.psql_ms == 0) {
        proc_stop(d.psql, SIGKILL, 5000);
        d.psql_rc = -1;
    }
    fl_pgwrite_close(d.w, NULL, NULL);
    uv_close((uv_handle_t *)&d.tick, NULL);
    uv_run(&d.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&d.loop), 0);
}

static void dump(void)
{
    for (size_t i = 0; i < d.n; i++)
        fprintf(stderr, "  write %zu: +%llu..+%llu ms %s: %s\n", i + 1,
                (unsigned long long)d.wr[i].start, (unsigned long long)d.wr[i].end,
                d.wr[i].ok ? "ok" : "failed", d.wr[i].detail);
}

/* The common verdict: the real client got through; the probe's first
 * acknowledgement came no sooner than min_ms (the first host's time was
 * honoured: nothing faster than a real client) and no later than the real
 * client's time plus one write's timeout and interval (a write that ended
 * just before the connection was made, and the next one's start); every
 * write after it was acknowledged; every write before it ended by its
 * timeout, the first naming the silent host it was connecting to. */
static void check(const char *what, uint64_t min_ms)
{
    char out[512] = "";
    FILE *f = fopen(DIR "/psql.log", "r");
    if (f != NULL) {
        size_t k = fread(out, 1, sizeof(out) - 1, f);
        out[k] = '\0';
        fclose(f);
    }
    fprintf(stderr, "[ measured ] %s: real client (psql) %s in %llu ms; ", what,
            d.psql_rc == 0 ? "connected and answered" : "FAILED", (unsigned long long)d.psql_ms);
    if (d.first_ok == NONE) {
        fprintf(stderr, "no write of %zu acknowledged\n", d.n);
        dump();
        fail_msg("%s: no write acknowledged in %llu ms, the real client needed %llu ms", what,
                 (unsigned long long)since(), (unsigned long long)d.psql_ms);
    }
    uint64_t first = d.wr[d.first_ok].end;
    fprintf(stderr, "first write acknowledged at +%llu ms (write %zu), %zu writes\n",
            (unsigned long long)first, d.first_ok + 1, d.n);
    if (d.psql_rc != 0) {
        dump();
        fail_msg("%s: the real client failed (%d): %s", what, d.psql_rc, out);
    }
    /* the bed: the real client, too, waited on the silent host (libpq 15
     * counts its deadline in whole seconds of time(): up to 1 s less) */
    assert_true(d.psql_ms + 1000 >= min_ms);
    bool bad = first + 2 < min_ms || first > d.psql_ms + TIMEOUT_MS + INTERVAL_MS ||
               strstr(d.wr[0].detail, SILENT) == NULL;
    for (size_t i = 0; i < d.n; i++) {
        if (i > d.first_ok && !d.wr[i].ok)
            bad = true;
        if (i < d.first_ok && strncmp(d.wr[i].detail, "timeout after 1000 ms", 21) != 0)
            bad = true;
    }
    if (bad)
        dump();
    assert_true(first + 2 >= min_ms);
    assert_true(first <= d.psql_ms + TIMEOUT_MS + INTERVAL_MS);
    assert_false(bad);
}

/* connect_timeout=2: host 1 is given 2 s (the kernel would wait ~127 s),
 * then host 2, as libpq's blocking connect does. */
static void test_silent_first_host_connect_timeout(void **state)
{
    (void)state;
    syn_retries(6);
    char dsn[256];
    snprintf(dsn, sizeof(dsn),
             "host=" SILENT ",127.0.0.1 port=%d,%d dbname=postgres user=postgres "
             "target_session_attrs=read-write connect_timeout=2",
             PORT, PORT);
    drive(dsn, 20000);
    check("silent first host, connect_timeout=2", 2000);
}

/* connect_timeout=1 is 2 s for libpq (its minimum): not sooner. */
static void test_connect_timeout_one_is_two(void **state)
{
    (void)state;
    syn_retries(6);
    char dsn[256];
    snprintf(dsn, sizeof(dsn),
             "host=" SILENT ",127.0.0.1 port=%d,%d dbname=postgres user=postgres "
             "target_session_attrs=read-write connect_timeout=1",
             PORT, PORT);
    drive(dsn, 20000);
    check("silent first host, connect_timeout=1", 2000);
}

/* No connect_timeout: libpq's behaviour, no limit of its own; host 1 is
 * left when the kernel gives up the connect (tcp_syn_retries=1 here: about
 * 3 s, rather than the default's 127 s), by the real client and the probe
 * alike; the probe's connection attempt outlives the writes that time out
 * waiting for it. */
static void test_silent_first_host_no_connect_timeout(void **state)
{
    (void)state;
    syn_retries(1);
    char dsn[256];
    snprintf(dsn, sizeof(dsn),
             "host=" SILENT ",127.0.0.1 port=%d,%d dbname=postgres user=postgres "
             "target_session_attrs=read-write",
             PORT, PORT);
    drive(dsn, 20000);
    syn_retries(6);
    check("silent first host, no connect_timeout, kernel gives up after ~3 s", 2500);
}

int main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "needs root (namespaces, the postgres user)\n");
        return 77;
    }
    if (access(PGBIN "/postgres", X_OK) != 0 || getpwnam("postgres") == NULL) {
        fprintf(stderr, "needs PostgreSQL 15 (%s) and its postgres user\n", PGBIN);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_silent_first_host_connect_timeout),
        cmocka_unit_test(test_silent_first_host_no_connect_timeout),
        cmocka_unit_test(test_connect_timeout_one_is_two),
    };
    return cmocka_run_group_tests(tests, setup_bed, teardown_bed);
}
