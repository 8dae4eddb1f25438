/* Time from inject request to applied (the agent's reply, which it sends
 * once the fault is in force), over one authenticated connection, for
 * kill_process and network_drop.
 *
 * usage: inject_latency PORT KEYFILE KIND N
 * Run it where the agent is (bench/run.sh puts both in a network namespace
 * of their own, so the nftables rules touch nothing of the host's). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/key.h"
#include "common/pbutil.h"
#include "tests/support/raw_peer.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static Faultline__Envelope *roundtrip(struct raw_peer *p, Faultline__Envelope *env)
{
    static uint8_t buf[4096];
    size_t n = raw_seal(p, env, buf, sizeof(buf));
    if (n == 0 || raw_send_bytes(p, buf, n) < 0)
        return NULL;
    return raw_recv_envelope(p, 10000);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s PORT KEYFILE kill_process|network_drop N\n", argv[0]);
        return 64;
    }
    uint16_t port = (uint16_t)strtoul(argv[1], NULL, 10);
    const char *kind = argv[3];
    int n = (int)strtol(argv[4], NULL, 10);
    if (n < 1 || n > 100000)
        return 64;
    struct fl_key key;
    char err[512];
    if (fl_key_load(argv[2], &key, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct raw_peer p;
    if (raw_connect(&p, port) < 0 || raw_handshake(&p, &key) < 0) {
        fprintf(stderr, "cannot connect to the agent on port %u\n", (unsigned)port);
        return 1;
    }
    uint64_t *us = calloc((size_t)n, sizeof(*us));
    uint64_t id = 1;
    for (int i = 0; i < n; i++) {
        Faultline__ProcessSelector sel = FAULTLINE__PROCESS_SELECTOR__INIT;
        Faultline__KillProcess kp = FAULTLINE__KILL_PROCESS__INIT;
        Faultline__NetworkDrop nd = FAULTLINE__NETWORK_DROP__INIT;
        Faultline__PortRange pr = FAULTLINE__PORT_RANGE__INIT;
        Faultline__PortRange *prs[] = {&pr};
        char *peers[] = {fl_pb_str("192.0.2.1")}; /* TEST-NET-1: no real traffic */
        Faultline__FaultSpec spec = FAULTLINE__FAULT_SPEC__INIT;
        spec.name = fl_pb_str("bench");
        spec.duration_ms = 10000;
        pid_t target = 0;
        if (strcmp(kind, "kill_process") == 0) {
            target = fork();
            if (target == 0) {
                execl("/bin/sleep", "sleep", "600", (char *)NULL);
                _exit(127);
            }
            usleep(2000); /* exec'd */
            sel.by_case = FAULTLINE__PROCESS_SELECTOR__BY_PID;
            sel.pid = target;
            kp.target = &sel;
            spec.kind_case = FAULTLINE__FAULT_SPEC__KIND_KILL_PROCESS;
            spec.kill_process = &kp;
        } else {
            pr.first = 9;
            nd.direction = FAULTLINE__DIRECTION__DIRECTION_INGRESS;
            nd.protocol = FAULTLINE__PROTOCOL__PROTOCOL_TCP;
            nd.n_peers = 1;
            nd.peers = peers;
            nd.n_ports = 1;
            nd.ports = prs;
            spec.kind_case = FAULTLINE__FAULT_SPEC__KIND_NETWORK_DROP;
            spec.network_drop = &nd;
        }
        Faultline__InjectRequest ir = FAULTLINE__INJECT_REQUEST__INIT;
        ir.spec = &spec;
        ir.detached = 1;
        Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
        env.id = id++;
        env.msg_case = FAULTLINE__ENVELOPE__MSG_INJECT;
        env.inject = &ir;
        uint64_t t0 = fl_mono_ns();
        Faultline__Envelope *reply = roundtrip(&p, &env);
        us[i] = (fl_mono_ns() - t0) / 1000;
        if (reply == NULL || reply->msg_case != FAULTLINE__ENVELOPE__MSG_INJECTED) {
            fprintf(stderr, "inject %d failed: %s\n", i,
                    reply && reply->msg_case == FAULTLINE__ENVELOPE__MSG_ERROR
                        ? reply->error->message
                        : "no reply");
            return 1;
        }
        char fid[32];
        snprintf(fid, sizeof(fid), "%s", reply->injected->id);
        faultline__envelope__free_unpacked(reply, NULL);
        if (target > 0) {
            waitpid(target, NULL, 0);
        }
        /* end it before the next, so each inject starts from the same state */
        Faultline__RevertRequest rr = FAULTLINE__REVERT_REQUEST__INIT;
        rr.fault_id = fid;
        Faultline__Envelope rev = FAULTLINE__ENVELOPE__INIT;
        rev.id = id++;
        rev.msg_case = FAULTLINE__ENVELOPE__MSG_REVERT;
        rev.revert = &rr;
        reply = roundtrip(&p, &rev);
        if (reply == NULL) {
            fprintf(stderr, "revert %d failed\n", i);
            return 1;
        }
        faultline__envelope__free_unpacked(reply, NULL);
    }
    qsort(us, (size_t)n, sizeof(*us), cmp_u64);
    /* nearest-rank percentiles: the value below which P % of the n samples lie */
#define PCT(P) ((double)us[((size_t)n * (P) + 99) / 100 - 1] / 1000.0)
    printf("%-13s n=%d  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n", kind, n, PCT(50),
           PCT(90), PCT(99), (double)us[n - 1] / 1000.0);
#undef PCT
    free(us);
    raw_close(&p);
    return 0;
}
