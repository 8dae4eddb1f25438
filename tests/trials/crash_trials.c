/* Crash trials: kill -9 the agent (or the agent and its guardian) at a random
 * instant of an inject or a revert, of a random fault kind, sometimes with
 * the state directory's file system nearly full; then start the agent again
 * on the same state directory, stop it cleanly, and look for anything left
 * behind. A leftover is a fault that outlived its end (or was undone twice),
 * which is what the agent promises never to happen.
 *
 * usage: crash_trials AGENT_BIN N [SEED]      (as root)
 *
 * Everything runs in a network namespace of its own (fltrial-PID) with two
 * small tmpfs mounts (the state directory, and a disk for disk_fill), all
 * removed at the end. Each trial prints one line only when it finds a
 * leftover (with the seed and its number, to replay it); the summary gives
 * the counts per kind, per kill target and near-full, and the trial times.
 * Exit status: 0 with no leftover, 1 with any, 2 when the bed cannot be set
 * up. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/journal.h"
#include "common/clock.h"
#include "common/key.h"
#include "common/pbutil.h"
#include "tests/support/agent_proc.h"
#include "tests/support/proc.h"
#include "tests/support/raw_peer.h"

enum kind { K_KILL, K_PAUSE, K_DISK, K_CPU, K_MEM, K_NET, K_KINDS };
static const char *const kind_name[K_KINDS] = {"kill_process", "pause_process", "disk_fill",
                                               "cpu_stress",   "memory_stress", "network_drop"};

static char dir[64], ns[32], key_path[128], config_path[128], state_mnt[128], disk_mnt[128];
static const char *agent_bin;
static struct fl_key key;
static struct test_agent agent;
static int state_mounted, disk_mounted, ns_made;
static uint64_t rng;

static uint32_t rnd(void)
{
    /* xorshift64*: reproducible from the seed */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (uint32_t)((rng * 2685821657736338717ull) >> 32);
}

static int sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void cleanup(void)
{
    if (agent.pid > 0) {
        if (agent.guardian_pid > 0)
            kill(agent.guardian_pid, SIGKILL);
        kill(agent.pid, SIGKILL);
        waitpid(agent.pid, NULL, 0);
    }
    if (ns_made)
        sh("ip netns exec %s nft flush ruleset 2>/dev/null; ip netns del %s", ns, ns);
    if (disk_mounted)
        umount2(disk_mnt, MNT_DETACH);
    if (state_mounted)
        umount2(state_mnt, MNT_DETACH);
    if (dir[0])
        sh("rm -rf %s", dir);
}

static void on_signal(int sig)
{
    (void)sig;
    cleanup();
    _exit(2);
}

static pid_t spawn_victim(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execl("/bin/sleep", "sleep", "3600", (char *)NULL);
        _exit(127);
    }
    /* exec'd (its name is sleep) before a fault looks for it */
    for (int i = 0; i < 200; i++) {
        char path[64], comm[32] = "";
        snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
        FILE *f = fopen(path, "r");
        if (f) {
            if (fgets(comm, sizeof(comm), f) == NULL)
                comm[0] = 0;
            fclose(f);
        }
        if (strncmp(comm, "sleep", 5) == 0)
            break;
        sleep_ms(1);
    }
    return pid;
}

static void reap(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGCONT);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static int start_agent(void)
{
    const char *extra[] = {"--config", config_path, "--state-dir", state_mnt, NULL};
    if (test_agent_start(&agent, agent_bin, key_path, dir, "agent", NULL, extra) != 0) {
        test_agent_dump_log(&agent);
        return -1;
    }
    return 0;
}

/* Until pid has exited (gone from /proc, or a zombie nobody reaps: its parent,
 * the agent, is dead, and init may be slow to reap it). */
static void wait_gone(pid_t pid, int ms)
{
    for (int i = 0; i < ms / 5 && pid > 0; i++) {
        char st = proc_state_of(pid);
        if (st == 0 || st == 'Z')
            return;
        sleep_ms(5);
    }
}

/* SIGTERM, and the guardian gone too (it holds the state directory). */
static int stop_agent(void)
{
    pid_t g = agent.guardian_pid;
    int st = proc_stop(agent.pid, SIGTERM, 15000);
    agent.pid = 0;
    wait_gone(g, 5000);
    return st;
}

static void kill9(int with_guardian)
{
    pid_t g = agent.guardian_pid;
    if (with_guardian && g > 0)
        kill(g, SIGKILL);
    kill(agent.pid, SIGKILL);
    waitpid(agent.pid, NULL, 0);
    agent.pid = 0;
    wait_gone(g, 5000); /* its guardian reverts, then goes */
}

static size_t seal_request(struct raw_peer *p, Faultline__Envelope *env, uint8_t *buf, size_t cap)
{
    return raw_seal(p, env, buf, cap);
}

/* The inject request for kind, sealed into buf. */
static size_t inject_request(struct raw_peer *p, enum kind k, pid_t victim, uint8_t *buf,
                             size_t cap)
{
    Faultline__ProcessSelector sel = FAULTLINE__PROCESS_SELECTOR__INIT;
    sel.by_case = FAULTLINE__PROCESS_SELECTOR__BY_PID;
    sel.pid = victim;
    Faultline__KillProcess kp = FAULTLINE__KILL_PROCESS__INIT;
    Faultline__PauseProcess pp = FAULTLINE__PAUSE_PROCESS__INIT;
    Faultline__DiskFill df = FAULTLINE__DISK_FILL__INIT;
    Faultline__CpuStress cs = FAULTLINE__CPU_STRESS__INIT;
    Faultline__MemoryStress ms = FAULTLINE__MEMORY_STRESS__INIT;
    Faultline__NetworkDrop nd = FAULTLINE__NETWORK_DROP__INIT;
    Faultline__PortRange pr = FAULTLINE__PORT_RANGE__INIT;
    Faultline__PortRange *prs[] = {&pr};
    char *peers[] = {fl_pb_str("192.0.2.1")};
    Faultline__FaultSpec spec = FAULTLINE__FAULT_SPEC__INIT;
    spec.name = fl_pb_str("trial");
    spec.duration_ms = 60000;
    switch (k) {
    case K_KILL:
        kp.target = &sel;
        spec.kind_case = FAULTLINE__FAULT_SPEC__KIND_KILL_PROCESS;
        spec.kill_process = &kp;
        break;
    case K_PAUSE:
        pp.target = &sel;
        spec.kind_case = FAULTLINE__FAULT_SPEC__KIND_PAUSE_PROCESS;
        spec.pause_process = &pp;
        break;
    case K_DISK:
        df.path = disk_mnt;
        df.amount_case = FAULTLINE__DISK_FILL__AMOUNT_BYTES;
        df.bytes = 4u << 20;
        spec.kind_case = FAULTLINE__FAULT_SPEC__KIND_DISK_FILL;
        spec.disk_fill = &df;
        break;
    case K_CPU:
        cs.workers = 1;
        cs.load_percent = 50;
        spec.kind_case = FAULTLINE__FAULT_SPEC__KIND_CPU_STRESS;
        spec.cpu_stress = &cs;
        break;
    case K_MEM:
        ms.bytes = 16u << 20;
        spec.kind_case = FAULTLINE__FAULT_SPEC__KIND_MEMORY_STRESS;
        spec.memory_stress = &ms;
        break;
    default:
        pr.first = 9;
        nd.direction = FAULTLINE__DIRECTION__DIRECTION_INGRESS;
        nd.protocol = FAULTLINE__PROTOCOL__PROTOCOL_TCP;
        nd.n_peers = 1;
        nd.peers = peers;
        nd.n_ports = 1;
        nd.ports = prs;
        spec.kind_case = FAULTLINE__FAULT_SPEC__KIND_NETWORK_DROP;
        spec.network_drop = &nd;
        break;
    }
    Faultline__InjectRequest ir = FAULTLINE__INJECT_REQUEST__INIT;
    ir.spec = &spec;
    ir.detached = 1;
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = 1;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_INJECT;
    env.inject = &ir;
    return seal_request(p, &env, buf, cap);
}

static size_t revert_request(struct raw_peer *p, const char *id, uint8_t *buf, size_t cap)
{
    Faultline__RevertRequest rr = FAULTLINE__REVERT_REQUEST__INIT;
    rr.fault_id = (char *)(uintptr_t)id;
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = 2;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_REVERT;
    env.revert = &rr;
    return seal_request(p, &env, buf, cap);
}

/* Leaves only `leave` bytes (and what the journal's last page holds) free
 * on the state tmpfs, with a filler file; 0 removes the filler. */
static void fill_state(size_t leave)
{
    char filler[200];
    snprintf(filler, sizeof(filler), "%s/zz-filler", state_mnt);
    unlink(filler);
    if (leave == 0)
        return;
    struct statvfs vs;
    if (statvfs(state_mnt, &vs) != 0)
        return;
    uint64_t avail = (uint64_t)vs.f_bavail * vs.f_frsize;
    if (avail <= leave)
        return;
    int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    static char block[4096];
    uint64_t want = avail - leave, done = 0;
    while (done < want) {
        size_t n = want - done < sizeof(block) ? (size_t)(want - done) : sizeof(block);
        ssize_t w = write(fd, block, n);
        if (w <= 0)
            break;
        done += (uint64_t)w;
    }
    close(fd);
}

/* A live process named comm (a zombie, dead but not yet reaped by init,
 * is not alive: it holds no CPU and no memory). */
static int count_procs(const char *comm)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end != 0 || pid <= 0)
            continue;
        char path[64], name[32] = "";
        snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        if (fgets(name, sizeof(name), f) == NULL)
            name[0] = 0;
        fclose(f);
        name[strcspn(name, "\n")] = 0;
        if (strcmp(name, comm) == 0) {
            char st = proc_state_of((pid_t)pid);
            n += st != 'Z' && st != 0;
        }
    }
    closedir(d);
    return n;
}

static int fill_files_left(void)
{
    DIR *d = opendir(disk_mnt);
    if (d == NULL)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strncmp(e->d_name, ".faultline-", 11) == 0;
    closedir(d);
    return n;
}

struct tally {
    unsigned trials, leftovers, refused;
    unsigned by_kind[K_KINDS], by_guardian[2], near_full;
};

/* What a trial left behind: a description in out (empty when nothing). */
static void look_for_leftovers(pid_t victim, enum kind k, char *out, size_t cap)
{
    out[0] = 0;
    size_t len = 0;
#define LEFT(...)                                                                                  \
    do {                                                                                           \
        if (len < cap)                                                                             \
            len += (size_t)snprintf(out + len, cap - len, __VA_ARGS__);                            \
    } while (0)
    /* the agent's table is inet faultline_<hash of its state directory>
     * (agent/faults/network.h): any table of faultline's is a leftover */
    if (sh("ip netns exec %s nft list tables inet 2>/dev/null | grep -q 'table inet faultline'",
           ns) == 0)
        LEFT(" an nft table inet faultline* still there;");
    if (k != K_KILL && proc_state_of(victim) == 'T')
        LEFT(" victim %d still stopped;", (int)victim);
    if (fill_files_left() > 0)
        LEFT(" a fill file on the disk;");
    if (count_procs("fl-cpu-stress"))
        LEFT(" cpu stress worker alive;");
    if (count_procs("fl-mem-stress"))
        LEFT(" memory stress worker alive;");
    char jpath[200], err[256];
    snprintf(jpath, sizeof(jpath), "%s/journal", state_mnt);
    json_t *active = NULL;
    if (fl_journal_read_active(jpath, &active, err, sizeof(err)) < 0)
        LEFT(" journal unreadable: %s;", err);
    else if (json_array_size(active) > 0)
        LEFT(" journal still names %zu active fault(s);", json_array_size(active));
    json_decref(active);
#undef LEFT
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* One trial; 1 when it found a leftover. */
static int trial(unsigned n, uint64_t seed, struct tally *t)
{
    enum kind k = (enum kind)(rnd() % K_KINDS);
    int with_guardian = (int)(rnd() % 2);
    int near_full = rnd() % 4 == 0;
    int at_revert = (int)(rnd() % 2);
    unsigned delay_us = rnd() % 3000; /* after the request left */
    size_t leave = near_full ? 256 + rnd() % 4096 : 0;
    char why[512] = "";

    pid_t victim = spawn_victim(), second = 0;
    if (start_agent() != 0) {
        reap(victim);
        return -1;
    }
    fill_state(leave);
    struct raw_peer p;
    int rc = raw_connect(&p, agent.port) == 0 && raw_handshake(&p, &key) == 0 ? 0 : -1;
    uint8_t buf[4096];
    size_t len;
    if (rc == 0 && near_full) {
        /* A full file system at a random byte: a pause of a second victim
         * whose journal record is cut short (the agent's RLIMIT_FSIZE stops
         * the write there, as ENOSPC does), then space comes back. The fault
         * below must not be hidden by what that write left. */
        char jpath[200];
        struct stat st;
        snprintf(jpath, sizeof(jpath), "%s/journal", state_mnt);
        struct rlimit lim = {(rlim_t)(stat(jpath, &st) == 0 ? st.st_size : 0) + rnd() % 300,
                             RLIM_INFINITY};
        struct rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
        second = spawn_victim();
        prlimit(agent.pid, RLIMIT_FSIZE, &lim, NULL);
        len = inject_request(&p, K_PAUSE, second, buf, sizeof(buf));
        if (raw_send_bytes(&p, buf, len) == 0) {
            Faultline__Envelope *reply = raw_recv_envelope(&p, 10000);
            if (reply == NULL || reply->msg_case != FAULTLINE__ENVELOPE__MSG_INJECTED)
                t->refused++;
            if (reply)
                faultline__envelope__free_unpacked(reply, NULL);
        }
        prlimit(agent.pid, RLIMIT_FSIZE, &unlimited, NULL);
    }
    len = rc == 0 ? inject_request(&p, k, victim, buf, sizeof(buf)) : 0;
    if (rc == 0 && at_revert) {
        /* inject, wait for it, then kill during the revert */
        if (raw_send_bytes(&p, buf, len) == 0) {
            Faultline__Envelope *reply = raw_recv_envelope(&p, 10000);
            char id[64] = "";
            if (reply && reply->msg_case == FAULTLINE__ENVELOPE__MSG_INJECTED)
                snprintf(id, sizeof(id), "%s", reply->injected->id);
            else
                t->refused++;
            if (reply)
                faultline__envelope__free_unpacked(reply, NULL);
            if (id[0]) {
                len = revert_request(&p, id, buf, sizeof(buf));
                raw_send_bytes(&p, buf, len);
            }
        }
    } else if (rc == 0) {
        raw_send_bytes(&p, buf, len);
    }
    if (delay_us)
        usleep(delay_us);
    kill9(with_guardian);
    raw_close(&p);
    fill_state(0); /* space is back, as an operator would make it */

    /* the next agent reverts what is left, then stops cleanly */
    if (start_agent() != 0 || stop_agent() != 0) {
        snprintf(why, sizeof(why), " the next agent did not start or stop cleanly;");
    } else {
        look_for_leftovers(victim, k, why, sizeof(why));
        if (second > 0 && proc_state_of(second) == 'T' && why[0] == 0)
            snprintf(why, sizeof(why), " the near-full pause's victim %d still stopped;",
                     (int)second);
        /* nothing is undone twice: a pause the test makes itself, after
         * every fault ended, survives the next start */
        if (why[0] == 0 && k == K_PAUSE && proc_state_of(victim) != 0) {
            kill(victim, SIGSTOP);
            for (int i = 0; i < 100 && proc_state_of(victim) != 'T'; i++)
                sleep_ms(1);
            if (start_agent() != 0 || stop_agent() != 0)
                snprintf(why, sizeof(why), " the third agent did not start or stop cleanly;");
            else if (proc_state_of(victim) != 'T')
                snprintf(why, sizeof(why), " a pause was undone twice (the victim was resumed);");
        }
    }
    reap(victim);
    reap(second);
    t->trials++;
    t->by_kind[k]++;
    t->by_guardian[with_guardian]++;
    t->near_full += near_full;
    if (why[0]) {
        t->leftovers++;
        printf("LEFTOVER trial %u (seed %llu): %s, kill -9 %s at +%u us of the %s%s:%s\n", n,
               (unsigned long long)seed, kind_name[k],
               with_guardian ? "agent and guardian" : "agent", delay_us,
               at_revert ? "revert" : "inject", near_full ? ", state fs near full" : "", why);
        test_agent_dump_log(&agent);
        /* clean up what it left, so the next trial starts clean */
        sh("ip netns exec %s nft flush ruleset 2>/dev/null", ns); /* the trial's own netns */
        sh("rm -f %s/.faultline-* %s/journal", disk_mnt, state_mnt);
        sh("pkill -9 -x fl-cpu-stress; pkill -9 -x fl-mem-stress");
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s AGENT_BIN N [SEED]\n", argv[0]);
        return 2;
    }
    agent_bin = argv[1];
    unsigned n = (unsigned)strtoul(argv[2], NULL, 10);
    uint64_t seed = argc == 4 ? strtoull(argv[3], NULL, 10) : (uint64_t)fl_now_ms();
    rng = seed ? seed : 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("crash trials: %u, seed %llu (replay: crash_trials AGENT_BIN %u %llu)\n", n,
           (unsigned long long)seed, n, (unsigned long long)seed);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    snprintf(dir, sizeof(dir), "/tmp/fltrial.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 2;
    snprintf(ns, sizeof(ns), "fltrial-%d", (int)getpid());
    snprintf(key_path, sizeof(key_path), "%s/key", dir);
    snprintf(config_path, sizeof(config_path), "%s/agent.yaml", dir);
    snprintf(state_mnt, sizeof(state_mnt), "%s/state", dir);
    snprintf(disk_mnt, sizeof(disk_mnt), "%s/disk", dir);
    char err[256];
    if (fl_key_generate(&key) != 0 || fl_key_write(key_path, &key, false, err, sizeof(err)) != 0 ||
        mkdir(state_mnt, 0700) != 0 || mkdir(disk_mnt, 0700) != 0) {
        cleanup();
        return 2;
    }
    FILE *c = fopen(config_path, "w");
    if (c == NULL) {
        cleanup();
        return 2;
    }
    fprintf(c, "guardrails:\n  fill_paths: [%s]\n  fill_reserve: 1MiB\n", disk_mnt);
    fclose(c);
    if (mount("fltrial-state", state_mnt, "tmpfs", 0, "size=256k,mode=0700") != 0) {
        perror("mount state tmpfs");
        cleanup();
        return 2;
    }
    state_mounted = 1;
    if (mount("fltrial-disk", disk_mnt, "tmpfs", 0, "size=16m,mode=0700") != 0) {
        perror("mount disk tmpfs");
        cleanup();
        return 2;
    }
    disk_mounted = 1;
    if (sh("ip netns add %s && ip -n %s link set lo up", ns, ns) != 0) {
        cleanup();
        return 2;
    }
    ns_made = 1;
    /* this process joins the namespace: the agents it starts, and its own
     * connections to them on 127.0.0.1, stay there */
    char nspath[96];
    snprintf(nspath, sizeof(nspath), "/run/netns/%s", ns);
    int nsfd = open(nspath, O_RDONLY | O_CLOEXEC);
    if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) != 0) {
        perror("setns");
        cleanup();
        return 2;
    }
    close(nsfd);

    struct tally t = {0};
    uint64_t *ms = calloc(n ? n : 1, sizeof(*ms));
    int failed_setup = 0;
    for (unsigned i = 0; i < n; i++) {
        uint64_t t0 = fl_mono_ms();
        int r = trial(i, seed, &t);
        ms[i] = fl_mono_ms() - t0;
        if (r < 0) {
            failed_setup = 1;
            break;
        }
    }
    qsort(ms, t.trials, sizeof(*ms), cmp_u64);
    printf("crash trials: %u run, %u leftover(s); ", t.trials, t.leftovers);
    for (int k = 0; k < K_KINDS; k++)
        printf("%s %u, ", kind_name[k], t.by_kind[k]);
    printf("agent only %u, agent+guardian %u, near-full state %u; %u inject(s) refused; trial "
           "p50 %llu ms, p90 %llu ms\n",
           t.by_guardian[0], t.by_guardian[1], t.near_full, t.refused,
           (unsigned long long)(t.trials ? ms[t.trials / 2] : 0),
           (unsigned long long)(t.trials ? ms[t.trials * 9 / 10] : 0));
    free(ms);
    cleanup();
    if (failed_setup) {
        fprintf(stderr, "crash trials: an agent did not start\n");
        return 2;
    }
    return t.leftovers ? 1 : 0;
}
