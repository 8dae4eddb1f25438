/* The Redis bed: primary + replica + three Sentinels (redisbed.h). */
#include "tests/support/redisbed.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "tests/support/proc.h"
#include "tests/support/sshd.h" /* test_rm_rf */

int redisbed_cli(const char *addr, uint16_t port, char *out, size_t cap, ...)
{
    char portbuf[8];
    snprintf(portbuf, sizeof(portbuf), "%u", port);
    char *argv[32] = {"/usr/bin/redis-cli", "-h", (char *)addr, "-p", portbuf};
    int n = 5;
    va_list ap;
    va_start(ap, cap);
    for (char *a; n < 31 && (a = va_arg(ap, char *)) != NULL;)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return proc_run(argv, out, cap, 5000);
}

static pid_t start_server(struct redisbed *b, const char *name, const char *addr, uint16_t port,
                          const char *replicaof, uint16_t replicaof_port)
{
    char portbuf[8], log[300], src[64];
    snprintf(portbuf, sizeof(portbuf), "%u", port);
    snprintf(log, sizeof(log), "%s/%s.log", b->dir, name);
    snprintf(src, sizeof(src), "%s", addr);
    char *argv[40] = {"/usr/bin/redis-server",
                      "--port",
                      portbuf,
                      "--bind",
                      (char *)addr,
                      "--bind-source-addr",
                      src,
                      "--dir",
                      b->dir,
                      "--dbfilename",
                      (char *)(strcmp(name, "primary") == 0 ? "primary.rdb" : "replica.rdb"),
                      "--save",
                      "",
                      "--appendonly",
                      "no",
                      "--daemonize",
                      "no",
                      "--protected-mode",
                      "no",
                      "--repl-timeout",
                      "60",
                      "--repl-diskless-sync-delay",
                      "0"};
    int n = 23;
    char master_port[8];
    if (replicaof != NULL) {
        snprintf(master_port, sizeof(master_port), "%u", replicaof_port);
        argv[n++] = "--replicaof";
        argv[n++] = (char *)replicaof;
        argv[n++] = master_port;
    }
    argv[n] = NULL;
    return proc_start(argv, log);
}

static int wait_cli(const char *addr, uint16_t port, const char *needle, int timeout_ms, ...)
{
    uint64_t deadline = fl_mono_ms() + (uint64_t)timeout_ms;
    char out[8192];
    do {
        char *args[8];
        int n = 0;
        va_list ap;
        va_start(ap, timeout_ms);
        for (char *a; n < 7 && (a = va_arg(ap, char *)) != NULL;)
            args[n++] = a;
        va_end(ap);
        args[n] = NULL;
        out[0] = '\0';
        redisbed_cli(addr, port, out, sizeof(out), args[0], n > 1 ? args[1] : NULL,
                     n > 2 ? args[2] : NULL, n > 3 ? args[3] : NULL, NULL);
        if (strstr(out, needle) != NULL)
            return 0;
        sleep_ms(50);
    } while (fl_mono_ms() < deadline);
    fprintf(stderr, "redisbed: %s:%u never answered with \"%s\"; last: %s\n", addr, port, needle,
            out);
    return -1;
}

static int start_sentinel(struct redisbed *b, int i)
{
    char path[300], log[300];
    snprintf(path, sizeof(path), "%s/sentinel%d.conf", b->dir, i);
    snprintf(log, sizeof(log), "%s/sentinel%d.log", b->dir, i);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fprintf(f,
            "port %u\nbind 127.0.0.1\nprotected-mode no\ndir %s\n"
            "sentinel monitor %s %s %u 2\n"
            "sentinel down-after-milliseconds %s 1000\n"
            "sentinel failover-timeout %s 5000\n"
            "sentinel parallel-syncs %s 1\n",
            b->sport[i], b->dir, REDISBED_MASTER, REDISBED_PRIMARY_ADDR, b->pport, REDISBED_MASTER,
            REDISBED_MASTER, REDISBED_MASTER);
    fclose(f);
    char *argv[] = {"/usr/bin/redis-sentinel", path, NULL};
    b->sentinel[i] = proc_start(argv, log);
    snprintf(b->sentinel_addr[i], sizeof(b->sentinel_addr[i]), "127.0.0.1:%u", b->sport[i]);
    return b->sentinel[i] > 0 ? 0 : -1;
}

int redisbed_start(struct redisbed *b)
{
    memset(b, 0, sizeof(*b));
    snprintf(b->dir, sizeof(b->dir), "/tmp/flwp-redis-XXXXXX");
    if (mkdtemp(b->dir) == NULL) {
        perror("redisbed: mkdtemp");
        b->dir[0] = '\0';
        return -1;
    }
    b->pport = test_free_port();
    b->rport = test_free_port();
    for (int i = 0; i < 3; i++)
        b->sport[i] = test_free_port();
    snprintf(b->primary_text, sizeof(b->primary_text), "%s:%u", REDISBED_PRIMARY_ADDR, b->pport);
    snprintf(b->replica_text, sizeof(b->replica_text), "%s:%u", REDISBED_REPLICA_ADDR, b->rport);
    b->primary = start_server(b, "primary", REDISBED_PRIMARY_ADDR, b->pport, NULL, 0);
    if (wait_cli(REDISBED_PRIMARY_ADDR, b->pport, "PONG", 10000, "PING", NULL) < 0)
        goto fail;
    b->replica = start_server(b, "replica", REDISBED_REPLICA_ADDR, b->rport, REDISBED_PRIMARY_ADDR,
                              b->pport);
    if (wait_cli(REDISBED_REPLICA_ADDR, b->rport, "master_link_status:up", 10000, "INFO",
                 "replication", NULL) < 0)
        goto fail;
    for (int i = 0; i < 3; i++)
        if (start_sentinel(b, i) < 0)
            goto fail;
    for (int i = 0; i < 3; i++) {
        /* SENTINEL MASTER's reply is field/value lines: num-slaves then 1,
         * num-other-sentinels then 2 */
        if (wait_cli("127.0.0.1", b->sport[i], "num-slaves\n1\n", 20000, "SENTINEL", "MASTER",
                     REDISBED_MASTER, NULL) < 0 ||
            wait_cli("127.0.0.1", b->sport[i], "num-other-sentinels\n2\n", 20000, "SENTINEL",
                     "MASTER", REDISBED_MASTER, NULL) < 0)
            goto fail;
    }
    return 0;
fail:
    redisbed_stop(b);
    return -1;
}

pid_t redisbed_restart_old_primary(struct redisbed *b)
{
    /* a replica of the promoted one from its first moment, as an operator
     * restarting it would configure it: back standalone and empty, it
     * could be taken for a master and its emptiness replicated */
    b->primary = start_server(b, "primary", REDISBED_PRIMARY_ADDR, b->pport, REDISBED_REPLICA_ADDR,
                              b->rport);
    return b->primary;
}

static void stop_pid(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGCONT);
        proc_stop(*pid, SIGKILL, 5000);
    }
    *pid = 0;
}

void redisbed_stop(struct redisbed *b)
{
    redisbed_uncut_link(b);
    for (int i = 0; i < 3; i++)
        stop_pid(&b->sentinel[i]);
    stop_pid(&b->primary);
    stop_pid(&b->replica);
    if (b->dir[0] != '\0')
        test_rm_rf(b->dir);
    b->dir[0] = '\0';
}

int redisbed_wait_master(struct redisbed *b, const char *addr, uint16_t port, int timeout_ms)
{
    uint64_t start = fl_mono_ms();
    char want[64];
    snprintf(want, sizeof(want), "%s\n%u\n", addr, port);
    do {
        int agree = 0;
        for (int i = 0; i < 3; i++) {
            char out[256] = "";
            if (b->sentinel[i] > 0)
                redisbed_cli("127.0.0.1", b->sport[i], out, sizeof(out), "SENTINEL",
                             "get-master-addr-by-name", REDISBED_MASTER, NULL);
            agree += strcmp(out, want) == 0;
        }
        if (agree == 3)
            return (int)(fl_mono_ms() - start);
        sleep_ms(50);
    } while (fl_mono_ms() - start < (uint64_t)timeout_ms);
    return -1;
}

int redisbed_cut_link(struct redisbed *b)
{
    snprintf(b->nft_table, sizeof(b->nft_table), "flwp_redis_%d", (int)getpid());
    /* the two servers' own ports only, whichever is master now: another
     * test's Redis bed on the same loopback addresses (its own ports) runs
     * beside this one and is not cut */
    unsigned pp = b->pport, rp = b->rport;
    char rules[1024], out[1024];
    snprintf(rules, sizeof(rules),
             "table inet %s {\n chain out {\n type filter hook output priority 0;\n"
             " ip saddr %s ip daddr %s tcp dport { %u, %u } drop\n"
             " ip saddr %s ip daddr %s tcp sport { %u, %u } drop\n"
             " ip saddr %s ip daddr %s tcp dport { %u, %u } drop\n"
             " ip saddr %s ip daddr %s tcp sport { %u, %u } drop\n }\n}\n",
             b->nft_table, REDISBED_REPLICA_ADDR, REDISBED_PRIMARY_ADDR, pp, rp,
             REDISBED_REPLICA_ADDR, REDISBED_PRIMARY_ADDR, pp, rp, REDISBED_PRIMARY_ADDR,
             REDISBED_REPLICA_ADDR, pp, rp, REDISBED_PRIMARY_ADDR, REDISBED_REPLICA_ADDR, pp, rp);
    char path[300];
    snprintf(path, sizeof(path), "%s/cut.nft", b->dir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fputs(rules, f);
    fclose(f);
    char *argv[] = {"/usr/sbin/nft", "-f", path, NULL};
    int rc = proc_run(argv, out, sizeof(out), 10000);
    if (rc != 0) {
        fprintf(stderr, "redisbed: nft failed (%d): %s\n", rc, out);
        b->nft_table[0] = '\0';
        return -1;
    }
    return 0;
}

void redisbed_uncut_link(struct redisbed *b)
{
    if (b->nft_table[0] == '\0')
        return;
    char out[512];
    char *argv[] = {"/usr/sbin/nft", "delete", "table", "inet", b->nft_table, NULL};
    proc_run(argv, out, sizeof(out), 10000);
    b->nft_table[0] = '\0';
}
