#include "tests/support/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"

static int decode_status(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

int proc_wait(pid_t pid, int timeout_ms)
{
    uint64_t deadline = fl_mono_ms() + (uint64_t)timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return decode_status(st);
        if (r < 0 && errno != EINTR)
            return -1;
        if (fl_mono_ms() >= deadline)
            return -1;
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
}

int proc_stop(pid_t pid, int sig, int timeout_ms)
{
    kill(pid, sig);
    int rc = proc_wait(pid, timeout_ms);
    if (rc < 0) {
        kill(pid, SIGKILL);
        rc = proc_wait(pid, 5000);
    }
    return rc;
}

int proc_run(char *const argv[], char *out, size_t cap, int timeout_ms)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, STDIN_FILENO);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    uint64_t deadline = fl_mono_ms() + (uint64_t)timeout_ms;
    for (;;) {
        uint64_t now = fl_mono_ms();
        if (now >= deadline) {
            kill(pid, SIGKILL);
            proc_wait(pid, 5000);
            close(fds[0]);
            return -1;
        }
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        if (poll(&pfd, 1, (int)(deadline - now)) <= 0)
            continue;
        char buf[4096];
        ssize_t n = read(fds[0], buf, sizeof(buf));
        if (n <= 0)
            break;
        size_t take = (size_t)n;
        if (len + take >= cap)
            take = cap - 1 - len;
        memcpy(out + len, buf, take);
        len += take;
    }
    out[len] = '\0';
    close(fds[0]);
    return proc_wait(pid, (int)(deadline > fl_mono_ms() ? deadline - fl_mono_ms() : 1000));
}

pid_t proc_start(char *const argv[], const char *log_path)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
    }
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, STDIN_FILENO);
    execv(argv[0], argv);
    _exit(127);
}

const char *file_wait_for(const char *path, const char *needle, char *buf, size_t cap,
                          int timeout_ms)
{
    uint64_t deadline = fl_mono_ms() + (uint64_t)timeout_ms;
    do {
        FILE *f = fopen(path, "r");
        if (f != NULL) {
            size_t n = fread(buf, 1, cap - 1, f);
            fclose(f);
            buf[n] = '\0';
            const char *hit = strstr(buf, needle);
            if (hit != NULL)
                return hit + strlen(needle);
        }
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    } while (fl_mono_ms() < deadline);
    return NULL;
}

char proc_state_of(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : 0;
}

char proc_wait_state(pid_t pid, char want, int ms)
{
    uint64_t deadline = fl_mono_ms() + (uint64_t)ms;
    char st = proc_state_of(pid);
    while (st != want && fl_mono_ms() < deadline) {
        sleep_ms(5);
        st = proc_state_of(pid);
    }
    return st;
}

void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

uint16_t test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&sin, sizeof(sin));
    socklen_t len = sizeof(sin);
    getsockname(fd, (struct sockaddr *)&sin, &len);
    close(fd);
    return ntohs(sin.sin_port);
}
