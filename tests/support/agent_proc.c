#include "tests/support/agent_proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/support/proc.h"

int test_agent_start(struct test_agent *a, const char *bin, const char *key, const char *dir,
                     const char *name, const char *netns, const char *const *extra)
{
    memset(a, 0, sizeof(*a));
    snprintf(a->log, sizeof(a->log), "%s/%s.log", dir, name);
    snprintf(a->state_dir, sizeof(a->state_dir), "%s/state-%s", dir, name);
    const char *argv[40];
    int n = 0;
    if (netns != NULL) {
        argv[n++] = "/usr/sbin/ip";
        argv[n++] = "netns";
        argv[n++] = "exec";
        argv[n++] = netns;
    }
    const char *base[] = {bin,           "--key",      key,           "--listen", "127.0.0.1:0",
                          "--state-dir", a->state_dir, "--log-level", "debug"};
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
        argv[n++] = base[i];
    for (int i = 0; extra && extra[i] && n < 39; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    /* the log may hold an earlier run's lines: skip past them */
    FILE *f = fopen(a->log, "r");
    long skip = 0;
    if (f) {
        fseek(f, 0, SEEK_END);
        skip = ftell(f);
        fclose(f);
    }
    a->pid = proc_start((char *const *)(uintptr_t)argv, a->log);
    if (a->pid < 0)
        return -1;
    static char buf[1 << 16];
    const char *p = NULL, *from = buf;
    for (int tries = 0; tries < 500 && p == NULL; tries++) {
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
        FILE *lf = fopen(a->log, "r");
        if (lf == NULL)
            continue;
        fseek(lf, skip, SEEK_SET);
        size_t got = fread(buf, 1, sizeof(buf) - 1, lf);
        fclose(lf);
        buf[got] = 0;
        p = strstr(from, "listening on ");
        if (p != NULL && strchr(p, '\n') == NULL)
            p = NULL; /* the line is not whole yet */
        /* and "ready": only then are its SIGTERM and SIGINT handled (before,
         * a stop kills it by the signal's default action: under stress-ng a
         * crash trial's SIGTERM landed between the two lines) */
        if (p != NULL && strstr(p, " ready\n") == NULL)
            p = NULL;
    }
    if (p == NULL)
        return -1;
    /* "listening on ADDR:PORT": the port after the address's last ':' */
    p += strlen("listening on ");
    const char *eol = strchr(p, '\n');
    const char *colon = p;
    for (const char *q = p; q < eol; q++)
        if (*q == ':')
            colon = q;
    a->port = (uint16_t)strtoul(colon + 1, NULL, 10);
    const char *g = strstr(buf, "guardian is PID ");
    if (g)
        a->guardian_pid = (pid_t)strtol(g + strlen("guardian is PID "), NULL, 10);
    snprintf(a->where, sizeof(a->where), "%.*s", (int)(eol - p), p);
    return 0;
}

void test_agent_dump_log(const struct test_agent *a)
{
    FILE *f = fopen(a->log, "r");
    if (f == NULL)
        return;
    char buf[4096];
    size_t n;
    fprintf(stderr, "---- %s\n", a->log);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, stderr);
    fclose(f);
}
