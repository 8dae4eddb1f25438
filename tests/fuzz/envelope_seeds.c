/* Writes the seeds of the envelope fuzz target (tests/fuzz/corpus/envelope):
 * Envelopes packed with this build's protobuf code, an inject of each fault
 * kind built by the controller's own spec builder (faultspec.h) from the
 * same NAME=VALUE lines as the faultspec corpus, some that prepare refuses,
 * and the other requests. make_envelope_seeds.sh builds and runs it.
 *
 * Usage: envelope_seeds DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/experiment/faultspec.h"
#include "faultline.pb-c.h"

static void save(const char *dir, const char *name, const Faultline__Envelope *env)
{
    static uint8_t buf[1 << 16];
    size_t n = faultline__envelope__pack(env, buf);
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(buf, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* args: "KIND NAME=VALUE NAME=VALUE ..." (the values hold no spaces) */
static void inject(const char *dir, const char *name, const char *args, int detached)
{
    char text[1024], err[512];
    snprintf(text, sizeof(text), "%s", args);
    char *save_ptr = NULL;
    char *kind = strtok_r(text, " ", &save_ptr);
    Faultline__FaultSpec *spec = fl_faultspec_new(kind, err, sizeof(err));
    if (spec == NULL) {
        fprintf(stderr, "%s: %s\n", name, err);
        exit(1);
    }
    char *a;
    while ((a = strtok_r(NULL, " ", &save_ptr)) != NULL) {
        char *eq = strchr(a, '=');
        *eq = '\0';
        if (fl_faultspec_set(spec, a, eq + 1, err, sizeof(err)) != 0) {
            fprintf(stderr, "%s: %s\n", name, err);
            exit(1);
        }
    }
    Faultline__InjectRequest inj = FAULTLINE__INJECT_REQUEST__INIT;
    inj.spec = spec;
    inj.detached = detached;
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = 7;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_INJECT;
    env.inject = &inj;
    save(dir, name, &env);
    fl_faultspec_free(spec);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    const char *d = argv[1];
    inject(d, "inject_kill_name", "kill_process name=fl-fuzz-nomatch signal=TERM duration=30s", 0);
    inject(d, "inject_kill_pid1", "kill_process pid=1 duration=30s", 0);
    inject(d, "inject_kill_self", "kill_process pattern=fuzz_envelope duration=30s", 0);
    inject(d, "inject_kill_repeat",
           "kill_process name=sshd mode=repeat every=500ms signal=9 duration=1m", 1);
    inject(d, "inject_kill_pidfile", "kill_process pidfile=/run/fl-fuzz.pid duration=5s", 0);
    inject(d, "inject_pause", "pause_process pattern=sleep duration=10s", 0);
    inject(d, "inject_drop",
           "network_drop peers=10.0.0.0/8,fd00::/64 protocol=tcp ports=80,443,8000-8100 "
           "direction=egress percent=30 duration=1m",
           0);
    inject(d, "inject_drop_all", "network_drop direction=both action=reject duration=5s", 0);
    inject(d, "inject_drop_icmp", "network_drop protocol=icmp peers=192.0.2.1 duration=5s", 0);
    inject(d, "inject_fill_tmp", "disk_fill path=/tmp fill=50% duration=30s", 0);
    inject(d, "inject_fill_etc", "disk_fill path=/etc fill=1GiB duration=30s", 0);
    inject(d, "inject_cpu", "cpu_stress workers=2 load=80 duration=10s", 0);
    inject(d, "inject_memory", "memory_stress size=512MiB duration=10s", 0);
    inject(d, "inject_long", "cpu_stress duration=2h", 0);

    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = 1;
    Faultline__Ping ping = FAULTLINE__PING__INIT;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_PING;
    env.ping = &ping;
    save(d, "ping", &env);
    Faultline__RevertRequest rv = FAULTLINE__REVERT_REQUEST__INIT;
    rv.fault_id = (char *)"f-0123456789abcdef";
    env.msg_case = FAULTLINE__ENVELOPE__MSG_REVERT;
    env.revert = &rv;
    save(d, "revert", &env);
    rv.fault_id = (char *)"../../etc/passwd";
    save(d, "revert_bad_id", &env);
    rv.fault_id = (char *)"";
    rv.all = 1;
    save(d, "revert_all", &env);
    Faultline__Heartbeat hb = FAULTLINE__HEARTBEAT__INIT;
    hb.sent_at_ms = 12345;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_HEARTBEAT;
    env.heartbeat = &hb;
    save(d, "heartbeat", &env);
    Faultline__ListRequest list = FAULTLINE__LIST_REQUEST__INIT;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_LIST;
    env.list = &list;
    save(d, "list", &env);
    Faultline__InjectRequest empty = FAULTLINE__INJECT_REQUEST__INIT;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_INJECT;
    env.inject = &empty;
    save(d, "inject_without_spec", &env);
    return 0;
}
