/* SSH costs, against a real sshd on loopback (tests/support/sshd.c):
 *
 * - ssh probe attempt latency (command `true`): one probe keeping its session
 *   for N attempts (the first, which opens the session, reported on its own),
 *   then N probes of one attempt each (fl_probe_once), each opening a session
 *   of its own; median and p90 of result.latency_ms, and the ratio;
 * - `faultline deploy` wall time for two hosts (two inventory entries on
 *   127.0.0.1, each with its own agent port and deploy_dir): fresh install,
 *   again with nothing changed, and --uninstall, R rounds each.
 *
 * usage (as root): ssh_latency FAULTLINE_BIN [N] [R]
 * FAULTLINE_BIN has faultline-agent next to it (a build directory does).
 * Everything is removed at the end: agents, deploy directories, sshd, keys. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "controller/probes/probe.h"
#include "tests/support/proc.h"
#include "tests/support/sshd.h"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorts v in place; the median (upper, for even n as inject_latency does). */
static uint64_t median(uint64_t *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_u64);
    return v[n / 2];
}

static void print_ms(const char *what, uint64_t *ms, int n)
{
    uint64_t med = median(ms, n);
    printf("%-34s n=%-3d median %3llu ms  p90 %3llu ms  min %3llu ms  max %3llu ms\n", what, n,
           (unsigned long long)med, (unsigned long long)ms[n * 9 / 10], (unsigned long long)ms[0],
           (unsigned long long)ms[n - 1]);
}

/* ------------------------------------------------------------------ probes */

struct collect {
    uint64_t *ms; /* latency_ms of each attempt */
    int n;
    int want;
    bool failed;
    bool stopped;
};

static void on_stopped(void *arg)
{
    ((struct collect *)arg)->stopped = true;
}

static void on_result(struct fl_probe *p, const struct fl_probe_result *r, void *arg)
{
    struct collect *c = arg;
    if (!r->ok) {
        fprintf(stderr, "ssh probe attempt %d failed: %s\n", c->n, r->detail);
        c->failed = true;
    } else {
        c->ms[c->n++] = r->latency_ms;
    }
    if (c->failed || c->n >= c->want || interrupted)
        fl_probe_stop(p, on_stopped, c);
}

static struct fl_probe_spec spec_for(const struct test_sshd *s)
{
    struct fl_probe_spec spec;
    memset(&spec, 0, sizeof(spec));
    spec.name = (char *)"bench";
    spec.type = FL_PROBE_SSH;
    spec.interval_ms = 100;
    spec.timeout_ms = 5000;
    spec.rise = 1;
    spec.fall = 1;
    spec.u.ssh.host = (char *)"bench";
    spec.u.ssh.address = (char *)"127.0.0.1";
    spec.u.ssh.port = s->port;
    spec.u.ssh.identity_file = (char *)s->user_key;
    spec.u.ssh.known_hosts = (char *)s->known_hosts;
    spec.u.ssh.command = (char *)"true";
    return spec;
}

/* Runs one probe on a loop of its own until c->want results (or a failure),
 * and until its session is closed. once: fl_probe_once, else fl_probe_start. */
static int run_probe(const struct fl_probe_spec *spec, bool once, struct collect *c)
{
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0)
        return -1;
    struct fl_probe *p = NULL;
    int rc = once ? fl_probe_once(&loop, spec, on_result, c, &p)
                  : fl_probe_start(&loop, spec, on_result, c, &p);
    if (rc == 0)
        uv_run(&loop, UV_RUN_DEFAULT);
    else
        fprintf(stderr, "cannot start the ssh probe: %s\n", uv_strerror(rc));
    if (uv_loop_close(&loop) != 0) {
        fprintf(stderr, "the probe left handles open on its loop\n");
        return -1;
    }
    return rc == 0 && c->stopped && !c->failed && c->n == c->want ? 0 : -1;
}

static int bench_probe(const struct test_sshd *s, int n)
{
    struct fl_probe_spec spec = spec_for(s);
    uint64_t *ms = calloc((size_t)n, sizeof(*ms));
    uint64_t *fresh = calloc((size_t)n, sizeof(*fresh));
    int rc = -1;
    if (ms == NULL || fresh == NULL)
        goto out;

    /* one probe, one session: attempt 0 logs in, the rest reuse it */
    struct collect c = {.ms = ms, .want = n};
    if (run_probe(&spec, false, &c) < 0)
        goto out;
    uint64_t first = ms[0];
    /* a new probe per attempt: a new session (TCP, key exchange, auth) each */
    for (int i = 0; i < n && !interrupted; i++) {
        struct collect o = {.ms = &fresh[i], .want = 1};
        if (run_probe(&spec, true, &o) < 0)
            goto out;
    }
    if (interrupted)
        goto out;
    printf("ssh probe `true`, interval 100 ms, timeout 5 s, sshd on 127.0.0.1:%u\n",
           (unsigned)s->port);
    printf("%-34s %llu ms\n", "first attempt (opens the session)", (unsigned long long)first);
    print_ms("reused session (attempts 2..N)", ms + 1, n - 1);
    print_ms("fresh session (fl_probe_once)", fresh, n);
    uint64_t m_reused = ms[1 + (n - 1) / 2], m_fresh = fresh[n / 2]; /* sorted by print_ms */
    if (m_reused > 0)
        printf("%-34s %.1fx\n", "fresh / reused, medians", (double)m_fresh / (double)m_reused);
    else
        printf("%-34s > %llux (reused median under 1 ms)\n", "fresh / reused, medians",
               (unsigned long long)m_fresh);
    rc = 0;
out:
    free(ms);
    free(fresh);
    return rc;
}

/* ------------------------------------------------------------------ deploy */

struct deploy_bench {
    const char *bin;
    char dir[256]; /* temporary: key, inventory, both deploy_dirs */
    char key[320];
    char inventory[320];
    char out[16384];
    bool maybe_installed; /* an install ran since the last good uninstall */
};

static char *arg(const char *a)
{
    return (char *)(uintptr_t)a;
}

/* Runs `faultline deploy` (uninstall or not); its wall time in ms into *ms.
 * Fails unless it exits 0 and both hosts report want. */
static int deploy(struct deploy_bench *d, bool uninstall, const char *want, uint64_t *ms)
{
    char *install[] = {arg(d->bin),      arg("deploy"), arg("--inventory"),
                       d->inventory,     arg("--key"),  d->key,
                       arg("--timeout"), arg("30s"),    NULL};
    char *remove[] = {arg(d->bin),        arg("deploy"),    arg("--inventory"), d->inventory,
                      arg("--uninstall"), arg("--timeout"), arg("30s"),         NULL};
    if (!uninstall)
        d->maybe_installed = true;
    uint64_t t0 = uv_hrtime();
    int rc = proc_run(uninstall ? remove : install, d->out, sizeof(d->out), 180000);
    uint64_t t1 = uv_hrtime();
    char h1[64], h2[64];
    snprintf(h1, sizeof(h1), "h1  %s", want);
    snprintf(h2, sizeof(h2), "h2  %s", want);
    if (rc != 0 || strstr(d->out, h1) == NULL || strstr(d->out, h2) == NULL) {
        fprintf(stderr, "faultline deploy%s exited %d, expected both hosts %s:\n%s",
                uninstall ? " --uninstall" : "", rc, want, d->out);
        return -1;
    }
    if (uninstall)
        d->maybe_installed = false;
    if (ms != NULL)
        *ms = (t1 - t0) / 1000000u;
    return 0;
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fputs(text, f);
    return fclose(f) == 0 ? 0 : -1;
}

static int deploy_setup(struct deploy_bench *d, const struct test_sshd *s)
{
    snprintf(d->dir, sizeof(d->dir), "/tmp/fl-bench-deploy.XXXXXX");
    if (mkdtemp(d->dir) == NULL) {
        d->dir[0] = '\0';
        fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    snprintf(d->key, sizeof(d->key), "%s/faultline.key", d->dir);
    snprintf(d->inventory, sizeof(d->inventory), "%s/hosts.yaml", d->dir);
    char *kg[] = {arg(d->bin), arg("keygen"), d->key, NULL};
    if (proc_run(kg, d->out, sizeof(d->out), 10000) != 0) {
        fprintf(stderr, "faultline keygen failed:\n%s", d->out);
        return -1;
    }
    uint16_t port1 = test_free_port(), port2;
    do
        port2 = test_free_port();
    while (port2 == port1 || port2 == s->port);
    char text[4096];
    snprintf(text, sizeof(text),
             "key_file: %s\n"
             "ssh: { user: root, port: %u, identity_file: %s, known_hosts: %s }\n"
             "hosts:\n"
             "  h1: { address: 127.0.0.1, port: %u, ssh: { deploy_dir: %s/remote1/faultline } }\n"
             "  h2: { address: 127.0.0.1, port: %u, ssh: { deploy_dir: %s/remote2/faultline } }\n",
             d->key, (unsigned)s->port, s->user_key, s->known_hosts, (unsigned)port1, d->dir,
             (unsigned)port2, d->dir);
    if (write_text(d->inventory, text) < 0) {
        fprintf(stderr, "cannot write %s\n", d->inventory);
        return -1;
    }
    return 0;
}

static int bench_deploy(struct deploy_bench *d, int r)
{
    uint64_t *install = calloc((size_t)r, sizeof(uint64_t));
    uint64_t *again = calloc((size_t)r, sizeof(uint64_t));
    uint64_t *uninstall = calloc((size_t)r, sizeof(uint64_t));
    int rc = -1;
    if (install == NULL || again == NULL || uninstall == NULL)
        goto out;
    for (int i = 0; i < r && !interrupted; i++) {
        if (deploy(d, false, "installed", &install[i]) < 0 ||
            deploy(d, false, "unchanged", &again[i]) < 0 ||
            deploy(d, true, "removed", &uninstall[i]) < 0)
            goto out;
    }
    if (interrupted)
        goto out;
    const char *names[] = {"fresh install", "again, unchanged", "--uninstall"};
    uint64_t *runs[] = {install, again, uninstall};
    printf("faultline deploy, 2 hosts on 127.0.0.1, wall time, R=%d\n", r);
    for (int k = 0; k < 3; k++) {
        uint64_t med = median(runs[k], r); /* sorts: min and max after it */
        printf("%-34s median %5llu ms  min %5llu ms  max %5llu ms\n", names[k],
               (unsigned long long)med, (unsigned long long)runs[k][0],
               (unsigned long long)runs[k][r - 1]);
    }
    rc = 0;
out:
    free(install);
    free(again);
    free(uninstall);
    return rc;
}

/* Uninstalls whatever an interrupted or failed round left, then removes the
 * temporary directory. */
static void deploy_cleanup(struct deploy_bench *d)
{
    if (d->maybe_installed && deploy(d, true, "", NULL) < 0)
        fprintf(stderr, "cleanup: uninstall failed; agents may be left under %s\n", d->dir);
    if (d->dir[0] != '\0')
        test_rm_rf(d->dir);
    d->dir[0] = '\0';
}

static int parse_count(const char *s, int def, int min)
{
    if (s == NULL)
        return def;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return errno != 0 || *end != '\0' || end == s || v < min || v > 10000 ? -1 : (int)v;
}

int main(int argc, char **argv)
{
    int n = parse_count(argc > 2 ? argv[2] : NULL, 50, 2);
    int r = parse_count(argc > 3 ? argv[3] : NULL, 3, 1);
    if (argc < 2 || argc > 4 || n < 0 || r < 0) {
        fprintf(stderr, "usage: %s FAULTLINE_BIN [N (>=2, default 50)] [R (default 3)]\n",
                argc > 0 ? argv[0] : "ssh_latency");
        return 64;
    }
    if (geteuid() != 0) {
        fprintf(stderr, "%s: run it as root (sshd, and deploy's root login)\n", argv[0]);
        return 64;
    }
    if (access(argv[1], X_OK) != 0) {
        fprintf(stderr, "%s: %s: %s\n", argv[0], argv[1], strerror(errno));
        return 64;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct test_sshd sshd;
    if (test_sshd_start(&sshd) < 0) {
        test_sshd_stop(&sshd);
        return 1;
    }
    static struct deploy_bench d;
    d.bin = argv[1];
    int rc = bench_probe(&sshd, n);
    if (rc == 0 && !interrupted)
        rc = deploy_setup(&d, &sshd);
    if (rc == 0 && !interrupted)
        rc = bench_deploy(&d, r);
    deploy_cleanup(&d);
    test_sshd_stop(&sshd);
    if (interrupted) {
        fprintf(stderr, "interrupted; cleaned up\n");
        return 130;
    }
    return rc == 0 ? 0 : 1;
}
