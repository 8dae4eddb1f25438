/* The PostgreSQL failover bed: two nodes and repmgrd (pgbed.h). */
#include "tests/support/pgbed.h"

#include <dirent.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "tests/support/proc.h"
#include "tests/support/sshd.h" /* test_rm_rf */

#define PGBIN "/usr/lib/postgresql/15/bin"
#define SETPRIV "/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"

static int run_as_postgres(char *out, size_t cap, int timeout_ms, ...)
{
    char *argv[40] = {SETPRIV, "--pdeathsig=SIGKILL", "--"};
    int n = 6;
    va_list ap;
    va_start(ap, timeout_ms);
    for (char *a; n < 39 && (a = va_arg(ap, char *)) != NULL;)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return proc_run(argv, out, cap, timeout_ms);
}

static pid_t spawn_as_postgres(const char *log, ...)
{
    char *argv[40] = {SETPRIV, "--pdeathsig=SIGKILL", "--"};
    int n = 6;
    va_list ap;
    va_start(ap, log);
    for (char *a; n < 39 && (a = va_arg(ap, char *)) != NULL;)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return proc_start(argv, log);
}

int pgbed_psql(struct pgbed *b, int i, const char *db, const char *sql, char *out, size_t cap)
{
    char port[8];
    snprintf(port, sizeof(port), "%u", b->port[i]);
    char *argv[] = {
        PGBIN "/psql", "-h", b->sock,           "-p",   port,        "-U", "postgres", "-d",
        (char *)db,    "-v", "ON_ERROR_STOP=1", "-Atc", (char *)sql, NULL};
    return proc_run(argv, out, cap, 10000);
}

static int wait_sql(struct pgbed *b, int i, const char *db, const char *sql, const char *want,
                    int timeout_ms)
{
    uint64_t deadline = fl_mono_ms() + (uint64_t)timeout_ms;
    char out[1024] = "";
    do {
        if (pgbed_psql(b, i, db, sql, out, sizeof(out)) == 0 && strstr(out, want) != NULL)
            return 0;
        sleep_ms(50);
    } while (fl_mono_ms() < deadline);
    fprintf(stderr, "pgbed: n%d never answered \"%s\" to %s; last: %s\n", i + 1, want, sql, out);
    return -1;
}

static int append(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int append(const char *path, const char *fmt, ...)
{
    FILE *f = fopen(path, "a");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    return fclose(f);
}

static int write_repmgr_conf(struct pgbed *b, int i)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/n%d.repmgr.conf", b->dir, i + 1);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fprintf(f,
            "node_id=%d\nnode_name='n%d'\n"
            "conninfo='host=%s port=%u user=postgres dbname=repmgr connect_timeout=2'\n"
            "data_directory='%s/n%d'\npg_bindir='" PGBIN "'\n"
            "failover='automatic'\n"
            "promote_command='" PGBIN "/repmgr standby promote -f %s --log-to-file'\n"
            "follow_command='" PGBIN "/repmgr standby follow -f %s --log-to-file "
            "--upstream-node-id=%%n'\n"
            "monitor_interval_secs=1\nreconnect_attempts=2\nreconnect_interval=1\n"
            "log_level='INFO'\nlog_file='%s/n%d.repmgrd.log'\n"
            "repmgrd_pid_file='%s/n%d.repmgrd.pid'\n",
            i + 1, i + 1, b->sock, b->port[i], b->dir, i + 1, path, path, b->dir, i + 1, b->dir,
            i + 1);
    return fclose(f);
}

static int start_node(struct pgbed *b, int i)
{
    char data[300], log[300];
    snprintf(data, sizeof(data), "%s/n%d", b->dir, i + 1);
    snprintf(log, sizeof(log), "%s/n%d.log", b->dir, i + 1);
    b->pg[i] = spawn_as_postgres(log, PGBIN "/postgres", "-D", data, NULL);
    return wait_sql(b, i, "postgres", "SELECT 1", "1", 30000);
}

int pgbed_start(struct pgbed *b, bool sync)
{
    memset(b, 0, sizeof(*b));
    b->sync = sync;
    struct passwd *pw = getpwnam("postgres");
    if (pw == NULL) {
        fprintf(stderr, "pgbed: no postgres user (install postgresql-15)\n");
        return -1;
    }
    snprintf(b->dir, sizeof(b->dir), "/tmp/flwp-pg-XXXXXX");
    if (mkdtemp(b->dir) == NULL) {
        perror("pgbed: mkdtemp");
        b->dir[0] = '\0';
        return -1;
    }
    snprintf(b->sock, sizeof(b->sock), "%s/sock", b->dir);
    mkdir(b->sock, 0700);
    if (chown(b->dir, pw->pw_uid, pw->pw_gid) != 0 || chown(b->sock, pw->pw_uid, pw->pw_gid) != 0) {
        perror("pgbed: chown");
        goto fail;
    }
    b->port[0] = test_free_port();
    b->port[1] = test_free_port();
    snprintf(b->dsn, sizeof(b->dsn),
             "host=%s,%s port=%u,%u dbname=flwp user=postgres target_session_attrs=read-write",
             b->sock, b->sock, b->port[0], b->port[1]);

    char out[8192], data1[300], data2[300], path[400], conf1[300], conf2[300];
    snprintf(data1, sizeof(data1), "%s/n1", b->dir);
    snprintf(data2, sizeof(data2), "%s/n2", b->dir);
    snprintf(conf1, sizeof(conf1), "%s/n1.repmgr.conf", b->dir);
    snprintf(conf2, sizeof(conf2), "%s/n2.repmgr.conf", b->dir);
    if (run_as_postgres(out, sizeof(out), 120000, PGBIN "/initdb", "-D", data1, "-U", "postgres",
                        "--auth=trust", "-N", NULL) != 0) {
        fprintf(stderr, "pgbed: initdb failed: %s\n", out);
        goto fail;
    }
    /* fsync off: the tests kill processes, never the machine, and the page
     * cache survives a process */
    snprintf(path, sizeof(path), "%s/postgresql.conf", data1);
    if (append(path,
               "port = %u\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n"
               "shared_preload_libraries = 'repmgr'\nwal_level = replica\n"
               "max_wal_senders = 5\nmax_replication_slots = 5\nhot_standby = on\n"
               "wal_log_hints = on\nfsync = off\nwal_receiver_status_interval = 1\n"
               "log_min_messages = warning\n",
               b->port[0], b->sock) < 0)
        goto fail;
    snprintf(path, sizeof(path), "%s/pg_hba.conf", data1);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        goto fail;
    fprintf(f, "local all all trust\nlocal replication all trust\n"
               "host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n");
    fclose(f);
    if (start_node(b, 0) < 0)
        goto fail;
    if (pgbed_psql(b, 0, "postgres", "CREATE DATABASE repmgr", out, sizeof(out)) != 0 ||
        pgbed_psql(b, 0, "postgres", "CREATE DATABASE flwp", out, sizeof(out)) != 0) {
        fprintf(stderr, "pgbed: create database: %s\n", out);
        goto fail;
    }
    if (write_repmgr_conf(b, 0) < 0 || write_repmgr_conf(b, 1) < 0)
        goto fail;
    if (run_as_postgres(out, sizeof(out), 60000, PGBIN "/repmgr", "-f", conf1, "primary",
                        "register", NULL) != 0) {
        fprintf(stderr, "pgbed: repmgr primary register: %s\n", out);
        goto fail;
    }
    char port1[8];
    snprintf(port1, sizeof(port1), "%u", b->port[0]);
    if (run_as_postgres(out, sizeof(out), 120000, PGBIN "/pg_basebackup", "-h", "127.0.0.1", "-p",
                        port1, "-U", "postgres", "-D", data2, "-X", "stream", "-R", "-c", "fast",
                        NULL) != 0) {
        fprintf(stderr, "pgbed: pg_basebackup: %s\n", out);
        goto fail;
    }
    snprintf(path, sizeof(path), "%s/postgresql.conf", data2);
    if (append(path, "port = %u\n", b->port[1]) < 0)
        goto fail;
    snprintf(path, sizeof(path), "%s/postgresql.auto.conf", data2);
    if (append(path,
               "primary_conninfo = 'host=127.0.0.1 port=%u user=postgres application_name=n2'\n",
               b->port[0]) < 0)
        goto fail;
    if (start_node(b, 1) < 0)
        goto fail;
    if (run_as_postgres(out, sizeof(out), 60000, PGBIN "/repmgr", "-f", conf2, "standby",
                        "register", NULL) != 0) {
        fprintf(stderr, "pgbed: repmgr standby register: %s\n", out);
        goto fail;
    }
    if (sync && (pgbed_psql(b, 0, "postgres", "ALTER SYSTEM SET synchronous_standby_names = 'n2'",
                            out, sizeof(out)) != 0 ||
                 pgbed_psql(b, 0, "postgres", "SELECT pg_reload_conf()", out, sizeof(out)) != 0)) {
        fprintf(stderr, "pgbed: synchronous_standby_names: %s\n", out);
        goto fail;
    }
    if (wait_sql(b, 0, "postgres", "SELECT application_name, sync_state FROM pg_stat_replication",
                 sync ? "n2|sync" : "n2|async", 30000) < 0)
        goto fail;
    for (int i = 0; i < 2; i++) {
        char log[300];
        snprintf(log, sizeof(log), "%s/n%d.repmgrd.out", b->dir, i + 1);
        b->repmgrd[i] = spawn_as_postgres(log, PGBIN "/repmgrd", "-f", i == 0 ? conf1 : conf2,
                                          "--daemonize=false", NULL);
    }
    char buf[65536];
    snprintf(path, sizeof(path), "%s/n2.repmgrd.log", b->dir);
    if (file_wait_for(path, "monitoring connection to upstream node", buf, sizeof(buf), 30000) ==
        NULL) {
        fprintf(stderr, "pgbed: repmgrd on n2 never monitored n1: %s\n", buf);
        goto fail;
    }
    return 0;
fail:
    pgbed_stop(b);
    return -1;
}

/* A killed postmaster leaves its System V segment behind: its id is on the
 * seventh line of postmaster.pid. */
static void remove_shm(const char *data)
{
    char path[320], line[256];
    snprintf(path, sizeof(path), "%s/postmaster.pid", data);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    for (int i = 1; fgets(line, sizeof(line), f) != NULL; i++) {
        unsigned long key;
        int id;
        if (i == 7 && sscanf(line, "%lu %d", &key, &id) == 2) {
            struct shmid_ds ds;
            if (shmctl(id, IPC_STAT, &ds) == 0 && ds.shm_nattch == 0)
                shmctl(id, IPC_RMID, NULL);
        }
    }
    fclose(f);
}

/* Kills every process whose command line names the bed's directory: what
 * repmgrd started (a promote command waits up to a minute) outlives it. */
static void kill_bed_processes(const char *dir)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        long pid = strtol(e->d_name, NULL, 10);
        if (pid <= 0 || pid == getpid())
            continue;
        char path[64], cmd[4096];
        snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        size_t n = fread(cmd, 1, sizeof(cmd) - 1, f);
        fclose(f);
        for (size_t i = 0; i < n; i++)
            if (cmd[i] == '\0')
                cmd[i] = ' ';
        cmd[n] = '\0';
        if (strstr(cmd, dir) != NULL)
            kill((pid_t)pid, SIGKILL);
    }
    closedir(d);
}

void pgbed_stop(struct pgbed *b)
{
    pgbed_uncut_stream(b);
    for (int i = 0; i < 2; i++) {
        if (b->repmgrd[i] > 0)
            proc_stop(b->repmgrd[i], SIGKILL, 5000);
        b->repmgrd[i] = 0;
    }
    for (int i = 0; i < 2; i++) {
        if (b->pg[i] > 0) {
            kill(b->pg[i], SIGCONT);
            proc_stop(b->pg[i], SIGQUIT, 10000); /* immediate shutdown */
        }
        b->pg[i] = 0;
    }
    if (b->dir[0] != '\0') {
        kill_bed_processes(b->dir);
        for (int i = 0; i < 2; i++) {
            char data[300];
            snprintf(data, sizeof(data), "%s/n%d", b->dir, i + 1);
            remove_shm(data);
        }
        test_rm_rf(b->dir);
    }
    b->dir[0] = '\0';
}

int pgbed_wait_primary(struct pgbed *b, int i, int timeout_ms)
{
    uint64_t start = fl_mono_ms();
    char out[256];
    do {
        if (pgbed_psql(b, i, "postgres", "SELECT pg_is_in_recovery()", out, sizeof(out)) == 0 &&
            strncmp(out, "f", 1) == 0)
            return (int)(fl_mono_ms() - start);
        sleep_ms(50);
    } while (fl_mono_ms() - start < (uint64_t)timeout_ms);
    return -1;
}

int pgbed_cut_stream(struct pgbed *b)
{
    snprintf(b->nft_table, sizeof(b->nft_table), "flwp_pg_%d", (int)getpid());
    char path[320], out[1024];
    snprintf(path, sizeof(path), "%s/cut.nft", b->dir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fprintf(f,
            "table inet %s {\n chain out {\n type filter hook output priority 0;\n"
            " ip daddr 127.0.0.1 tcp dport %u drop\n ip saddr 127.0.0.1 tcp sport %u drop\n"
            " }\n}\n",
            b->nft_table, b->port[0], b->port[0]);
    fclose(f);
    char *argv[] = {"/usr/sbin/nft", "-f", path, NULL};
    if (proc_run(argv, out, sizeof(out), 10000) != 0) {
        fprintf(stderr, "pgbed: nft: %s\n", out);
        b->nft_table[0] = '\0';
        return -1;
    }
    return 0;
}

void pgbed_uncut_stream(struct pgbed *b)
{
    if (b->nft_table[0] == '\0')
        return;
    char out[512];
    char *argv[] = {"/usr/sbin/nft", "delete", "table", "inet", b->nft_table, NULL};
    proc_run(argv, out, sizeof(out), 10000);
    b->nft_table[0] = '\0';
}

void pgbed_log_line(struct pgbed *b, int i, const char *needle, char *out, size_t cap)
{
    char path[300], buf[65536];
    out[0] = '\0';
    snprintf(path, sizeof(path), "%s/n%d.repmgrd.log", b->dir, i + 1);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *hit = strstr(buf, needle);
    if (hit == NULL)
        return;
    const char *start = hit;
    while (start > buf && start[-1] != '\n')
        start--;
    size_t len = strcspn(start, "\n");
    snprintf(out, cap, "%.*s", (int)len, start);
}

void pgbed_signal(struct pgbed *b, int i, int sig)
{
    pid_t pm = b->pg[i];
    if (pm <= 0)
        return;
    DIR *d = opendir("/proc");
    if (d != NULL) {
        for (struct dirent *e; (e = readdir(d)) != NULL;) {
            char path[300], buf[512];
            long pid = strtol(e->d_name, NULL, 10);
            if (pid <= 0)
                continue;
            snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
            FILE *f = fopen(path, "r");
            if (f == NULL)
                continue;
            size_t n = fread(buf, 1, sizeof(buf) - 1, f);
            fclose(f);
            buf[n] = '\0';
            const char *rp = strrchr(buf, ')');
            char state;
            int ppid;
            if (rp != NULL && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && ppid == pm)
                kill((pid_t)pid, sig);
        }
        closedir(d);
    }
    kill(pm, sig);
}
