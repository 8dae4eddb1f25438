#include "tests/support/sshd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/support/proc.h"

#define SSHD "/usr/sbin/sshd"
#define SSH_KEYGEN "/usr/bin/ssh-keygen"

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void test_rm_rf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int keygen(const char *path)
{
    char *argv[] = {(char *)SSH_KEYGEN, (char *)"-q", (char *)"-t", (char *)"ed25519",
                    (char *)"-N",       (char *)"",   (char *)"-C", (char *)"faultline-test",
                    (char *)"-f",       (char *)path, NULL};
    char out[1024];
    int rc = proc_run(argv, out, sizeof(out), 10000);
    if (rc != 0)
        fprintf(stderr, "ssh-keygen %s failed (%d): %s\n", path, rc, out);
    return rc == 0 ? 0 : -1;
}

/* The first two fields of a .pub file: "ssh-ed25519 AAAA...". */
static int read_pub(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    if (f == NULL || fgets(buf, (int)len, f) == NULL) {
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    char *sp = strchr(buf, ' ');
    if (sp == NULL || (sp = strchr(sp + 1, ' ')) == NULL)
        sp = buf + strcspn(buf, "\n");
    *sp = '\0';
    return 0;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fputs(text, f);
    return fclose(f) == 0 ? 0 : -1;
}

int test_sshd_start(struct test_sshd *s)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->dir, sizeof(s->dir), "/tmp/fl-sshd.XXXXXX");
    if (mkdtemp(s->dir) == NULL)
        return -1;
    chmod(s->dir, 0755);
    /* sshd's privilege separation directory; a fresh machine may lack it. */
    mkdir("/run/sshd", 0755);
    char host_key[300], user_pub[300], host_pub[300], cfg[300], path[300];
    snprintf(host_key, sizeof(host_key), "%s/host_ed25519", s->dir);
    snprintf(host_pub, sizeof(host_pub), "%s/host_ed25519.pub", s->dir);
    snprintf(s->user_key, sizeof(s->user_key), "%s/id_ed25519", s->dir);
    snprintf(user_pub, sizeof(user_pub), "%s/id_ed25519.pub", s->dir);
    snprintf(s->known_hosts, sizeof(s->known_hosts), "%s/known_hosts", s->dir);
    snprintf(s->log, sizeof(s->log), "%s/sshd.log", s->dir);
    snprintf(cfg, sizeof(cfg), "%s/sshd_config", s->dir);
    if (keygen(host_key) < 0 || keygen(s->user_key) < 0)
        return -1;
    char pub[512], text[4096];
    if (read_pub(user_pub, pub, sizeof(pub)) < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/authorized_keys", s->dir);
    snprintf(text, sizeof(text), "%s\n", pub);
    if (write_file(path, text) < 0)
        return -1;
    for (int attempt = 0; attempt < 5; attempt++) {
        s->port = test_free_port();
        snprintf(text, sizeof(text),
                 "Port %u\n"
                 "ListenAddress 127.0.0.1\n"
                 "HostKey %s\n"
                 "PidFile %s/sshd.pid\n"
                 "AuthorizedKeysFile %s/authorized_keys\n"
                 "StrictModes no\n"
                 "UsePAM no\n"
                 "PermitRootLogin prohibit-password\n"
                 "PasswordAuthentication no\n"
                 "KbdInteractiveAuthentication no\n"
                 "Subsystem sftp /usr/lib/openssh/sftp-server\n"
                 "MaxStartups 100:30:200\n"
                 "LogLevel INFO\n",
                 (unsigned)s->port, host_key, s->dir, s->dir);
        if (write_file(cfg, text) < 0)
            return -1;
        char *argv[] = {(char *)SSHD, (char *)"-D", (char *)"-e", (char *)"-f", cfg, NULL};
        s->pid = proc_start(argv, s->log);
        char buf[8192];
        char needle[64];
        snprintf(needle, sizeof(needle), "Server listening on 127.0.0.1 port %u", s->port);
        if (file_wait_for(s->log, needle, buf, sizeof(buf), 5000) != NULL)
            break;
        proc_stop(s->pid, SIGKILL, 2000);
        s->pid = 0;
        fprintf(stderr, "sshd did not start on port %u:\n%s\n", s->port, buf);
    }
    if (s->pid <= 0)
        return -1;
    if (read_pub(host_pub, pub, sizeof(pub)) < 0)
        return -1;
    snprintf(s->host_line, sizeof(s->host_line), "[127.0.0.1]:%u %.500s", (unsigned)s->port, pub);
    snprintf(text, sizeof(text), "%s\n", s->host_line);
    return write_file(s->known_hosts, text);
}

/* SIGKILLs every descendant of pid (deepest first). */
static void kill_descendants(pid_t pid)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t kids[256];
    size_t n = 0;
    while (d != NULL && n < 256 && (e = readdir(d)) != NULL) {
        char *end;
        long child = strtol(e->d_name, &end, 10);
        if (*end != '\0' || child <= 0)
            continue;
        char path[64], buf[512];
        snprintf(path, sizeof(path), "/proc/%ld/stat", child);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        size_t len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = '\0';
        const char *rp = strrchr(buf, ')'); /* "pid (comm) S ppid ..." */
        long ppid = 0;
        if (rp != NULL && sscanf(rp + 1, " %*c %ld", &ppid) == 1 && ppid == (long)pid)
            kids[n++] = (pid_t)child;
    }
    if (d != NULL)
        closedir(d);
    for (size_t i = 0; i < n; i++) {
        kill_descendants(kids[i]);
        kill(kids[i], SIGKILL);
    }
}

int test_sshd_restart(struct test_sshd *s)
{
    kill_descendants(s->pid);
    proc_stop(s->pid, SIGKILL, 3000);
    s->pid = 0;
    char cfg[300], needle[64], buf[8192];
    snprintf(cfg, sizeof(cfg), "%s/sshd_config", s->dir);
    snprintf(needle, sizeof(needle), "Server listening on 127.0.0.1 port %u", s->port);
    int before = test_sshd_count(s, needle);
    char *argv[] = {(char *)SSHD, (char *)"-D", (char *)"-e", (char *)"-f", cfg, NULL};
    s->pid = proc_start(argv, s->log);
    for (int i = 0; i < 100; i++) {
        if (test_sshd_count(s, needle) > before)
            return 0;
        sleep_ms(50);
    }
    fprintf(stderr, "sshd did not restart on port %u:\n%s\n", s->port,
            file_wait_for(s->log, needle, buf, sizeof(buf), 0) ? "" : buf);
    return -1;
}

void test_sshd_stop(struct test_sshd *s)
{
    if (s->pid > 0)
        proc_stop(s->pid, SIGTERM, 3000);
    s->pid = 0;
    if (s->dir[0] != '\0')
        test_rm_rf(s->dir);
    s->dir[0] = '\0';
}

int test_sshd_count(const struct test_sshd *s, const char *needle)
{
    FILE *f = fopen(s->log, "r");
    if (f == NULL)
        return -1;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    int count = 0;
    for (const char *p = buf; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        count++;
    return count;
}
