/* Fault parameters as people write them, into FaultSpecs. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "controller/experiment/faultspec.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Builds kind from NAME, VALUE pairs (NULL-terminated); every set must work. */
static Faultline__FaultSpec *build(const char *kind, const char *const *kv)
{
    char err[512] = "";
    Faultline__FaultSpec *spec = fl_faultspec_new(kind, err, sizeof(err));
    if (spec == NULL)
        fail_msg("new %s: %s", kind, err);
    for (size_t i = 0; kv != NULL && kv[i] != NULL; i += 2) {
        if (fl_faultspec_set(spec, kv[i], kv[i + 1], err, sizeof(err)) != 0)
            fail_msg("%s: %s=%s: %s", kind, kv[i], kv[i + 1], err);
    }
    return spec;
}

static void assert_checks(const Faultline__FaultSpec *spec)
{
    char err[512] = "";
    if (fl_faultspec_check(spec, err, sizeof(err)) != 0)
        fail_msg("check: %s", err);
}

/* err must hold every needle (NULL ends the list). */
static void assert_err_has(const char *err, const char *n1, const char *n2)
{
    if (n1 != NULL && strstr(err, n1) == NULL)
        fail_msg("error '%s' does not mention '%s'", err, n1);
    if (n2 != NULL && strstr(err, n2) == NULL)
        fail_msg("error '%s' does not mention '%s'", err, n2);
}

/* The packed bytes of spec, malloc'd. */
static uint8_t *packed(const Faultline__FaultSpec *spec, size_t *len)
{
    *len = faultline__fault_spec__get_packed_size(spec);
    uint8_t *buf = malloc(*len + 1);
    assert_non_null(buf);
    assert_int_equal(faultline__fault_spec__pack(spec, buf), *len);
    return buf;
}

static void assert_same_bytes(const Faultline__FaultSpec *a, const Faultline__FaultSpec *b)
{
    size_t la, lb;
    uint8_t *pa = packed(a, &la);
    uint8_t *pb = packed(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(pa, pb, la);
    free(pa);
    free(pb);
}

/* ---------------------------------------------------------------- tables */

static const struct {
    const char *name;
    const char *value;
} samples[] = {
    {"pid", "4242"},       {"pidfile", "/run/x.pid"}, {"name", "nginx"},   {"pattern", "worker -q"},
    {"signal", "TERM"},    {"mode", "repeat"},        {"every", "1s"},     {"direction", "egress"},
    {"peers", "10.0.0.1"}, {"protocol", "udp"},       {"ports", "53"},     {"action", "reject"},
    {"percent", "50"},     {"path", "/var/tmp"},      {"fill", "90%"},     {"workers", "2"},
    {"load", "50%"},       {"size", "64MiB"},         {"duration", "10s"},
};

static const char *sample_for(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(samples); i++)
        if (strcmp(samples[i].name, name) == 0)
            return samples[i].value;
    return NULL;
}

static void test_kinds_and_params(void **state)
{
    (void)state;
    static const char *const want[] = {"kill_process", "pause_process", "network_drop",
                                       "disk_fill",    "cpu_stress",    "memory_stress"};
    const char *const *kinds = fl_faultspec_kinds();
    size_t n = 0;
    for (; kinds[n] != NULL; n++) {
        assert_true(n < ARRAY_LEN(want));
        assert_string_equal(kinds[n], want[n]);
    }
    assert_int_equal(n, ARRAY_LEN(want));

    for (size_t i = 0; kinds[i] != NULL; i++) {
        char err[512] = "";
        Faultline__FaultSpec *spec = fl_faultspec_new(kinds[i], err, sizeof(err));
        assert_non_null(spec);
        assert_string_equal(fl_faultspec_kind(spec), kinds[i]);
        const char *const *params = fl_faultspec_params(kinds[i]);
        assert_non_null(params);
        int has_duration = 0;
        /* every name a kind lists has a setter that takes a typical value */
        for (size_t j = 0; params[j] != NULL; j++) {
            const char *value = sample_for(params[j]);
            if (value == NULL)
                fail_msg("no sample for %s", params[j]);
            if (strcmp(params[j], "pid") == 0 || strcmp(params[j], "pidfile") == 0 ||
                strcmp(params[j], "pattern") == 0)
                continue; /* one selector: name stands for them (test_selectors) */
            if (fl_faultspec_set(spec, params[j], value, err, sizeof(err)) != 0)
                fail_msg("%s %s=%s: %s", kinds[i], params[j], value, err);
            has_duration |= strcmp(params[j], "duration") == 0;
        }
        assert_true(has_duration);
        assert_checks(spec);
        fl_faultspec_free(spec);
    }
    assert_null(fl_faultspec_params("kill"));
    assert_null(fl_faultspec_params(NULL));
    assert_null(fl_faultspec_kind(NULL));

    const char *const *kp = fl_faultspec_params("kill_process");
    static const char *const kill_want[] = {"pid",    "pidfile", "name",  "pattern",
                                            "signal", "mode",    "every", "duration"};
    for (size_t i = 0; i < ARRAY_LEN(kill_want); i++)
        assert_string_equal(kp[i], kill_want[i]);
    assert_null(kp[ARRAY_LEN(kill_want)]);
}

/* ---------------------------------------------------------------- each kind */

static void test_kill_process(void **state)
{
    (void)state;
    static const char *const kv[] = {"name",  "nginx", "signal",   "TERM", "mode", "repeat",
                                     "every", "500ms", "duration", "30s",  NULL};
    Faultline__FaultSpec *spec = build("kill_process", kv);
    assert_checks(spec);
    assert_int_equal(spec->kind_case, FAULTLINE__FAULT_SPEC__KIND_KILL_PROCESS);
    assert_int_equal(spec->duration_ms, 30000);
    assert_string_equal(spec->name, "");
    const Faultline__KillProcess *k = spec->kill_process;
    assert_non_null(k->target);
    assert_int_equal(k->target->by_case, FAULTLINE__PROCESS_SELECTOR__BY_NAME);
    assert_string_equal(k->target->name, "nginx");
    assert_int_equal(k->signal, SIGTERM);
    assert_int_equal(k->mode, FAULTLINE__KILL_MODE__KILL_MODE_REPEAT);
    assert_int_equal(k->every_ms, 500);
    fl_faultspec_free(spec);

    static const char *const by_pid[] = {"pid",  "4242",     "signal", "9", "mode",
                                         "once", "duration", "1m",     NULL};
    spec = build("kill_process", by_pid);
    assert_checks(spec);
    assert_int_equal(spec->kill_process->target->by_case, FAULTLINE__PROCESS_SELECTOR__BY_PID);
    assert_int_equal(spec->kill_process->target->pid, 4242);
    assert_int_equal(spec->kill_process->signal, 9);
    assert_int_equal(spec->kill_process->mode, FAULTLINE__KILL_MODE__KILL_MODE_ONCE);
    assert_int_equal(spec->duration_ms, 60000);
    fl_faultspec_free(spec);
}

static void test_pause_process(void **state)
{
    (void)state;
    static const char *const kv[] = {"pidfile", "/run/nginx.pid", "duration", "10s", NULL};
    Faultline__FaultSpec *spec = build("pause_process", kv);
    assert_checks(spec);
    assert_int_equal(spec->kind_case, FAULTLINE__FAULT_SPEC__KIND_PAUSE_PROCESS);
    const Faultline__ProcessSelector *sel = spec->pause_process->target;
    assert_int_equal(sel->by_case, FAULTLINE__PROCESS_SELECTOR__BY_PIDFILE);
    assert_string_equal(sel->pidfile, "/run/nginx.pid");
    assert_int_equal(spec->duration_ms, 10000);
    fl_faultspec_free(spec);

    static const char *const pat[] = {"pattern", "celery worker -Q mail", "duration", "2m", NULL};
    spec = build("pause_process", pat);
    assert_checks(spec);
    assert_int_equal(spec->pause_process->target->by_case, FAULTLINE__PROCESS_SELECTOR__BY_PATTERN);
    assert_string_equal(spec->pause_process->target->pattern, "celery worker -Q mail");
    fl_faultspec_free(spec);
}

static void test_network_drop(void **state)
{
    (void)state;
    static const char *const kv[] = {"direction", "ingress", "peers",   "10.77.0.0/24,fd00::2",
                                     "protocol",  "tcp",     "ports",   "80,8000-8100",
                                     "action",    "reject",  "percent", "30%",
                                     "duration",  "1m30s",   NULL};
    Faultline__FaultSpec *spec = build("network_drop", kv);
    assert_checks(spec);
    const Faultline__NetworkDrop *n = spec->network_drop;
    assert_int_equal(n->direction, FAULTLINE__DIRECTION__DIRECTION_INGRESS);
    assert_int_equal(n->n_peers, 2);
    assert_string_equal(n->peers[0], "10.77.0.0/24");
    assert_string_equal(n->peers[1], "fd00::2");
    assert_int_equal(n->protocol, FAULTLINE__PROTOCOL__PROTOCOL_TCP);
    assert_int_equal(n->n_ports, 2);
    assert_int_equal(n->ports[0]->first, 80);
    assert_int_equal(n->ports[0]->last, 80);
    assert_int_equal(n->ports[1]->first, 8000);
    assert_int_equal(n->ports[1]->last, 8100);
    assert_int_equal(n->action, FAULTLINE__DROP_ACTION__DROP_ACTION_REJECT);
    assert_int_equal(n->percent, 30);
    assert_int_equal(spec->duration_ms, 90000);
    fl_faultspec_free(spec);

    /* words in any case; a bare percent */
    static const char *const kv2[] = {"direction", "EGRESS",  "protocol", "Udp",   "action",
                                      "DROP",      "percent", "100",      "ports", "53",
                                      "duration",  "5s",      NULL};
    spec = build("network_drop", kv2);
    assert_checks(spec);
    assert_int_equal(spec->network_drop->direction, FAULTLINE__DIRECTION__DIRECTION_EGRESS);
    assert_int_equal(spec->network_drop->protocol, FAULTLINE__PROTOCOL__PROTOCOL_UDP);
    assert_int_equal(spec->network_drop->action, FAULTLINE__DROP_ACTION__DROP_ACTION_DROP);
    assert_int_equal(spec->network_drop->percent, 100);
    fl_faultspec_free(spec);

    static const char *const icmp[] = {"protocol", "icmp", "direction", "both",
                                       "duration", "5s",   NULL};
    spec = build("network_drop", icmp);
    assert_checks(spec);
    assert_int_equal(spec->network_drop->protocol, FAULTLINE__PROTOCOL__PROTOCOL_ICMP);
    assert_int_equal(spec->network_drop->direction, FAULTLINE__DIRECTION__DIRECTION_BOTH);
    fl_faultspec_free(spec);
}

static void test_disk_fill(void **state)
{
    (void)state;
    static const char *const pct[] = {"path",     "/var/lib/app", "fill", "95%",
                                      "duration", "30s",          NULL};
    Faultline__FaultSpec *spec = build("disk_fill", pct);
    assert_checks(spec);
    const Faultline__DiskFill *d = spec->disk_fill;
    assert_string_equal(d->path, "/var/lib/app");
    assert_int_equal(d->amount_case, FAULTLINE__DISK_FILL__AMOUNT_PERCENT);
    assert_int_equal(d->percent, 95);
    fl_faultspec_free(spec);

    static const char *const bytes[] = {"path", "/srv", "fill", "2GiB", "duration", "30s", NULL};
    spec = build("disk_fill", bytes);
    assert_checks(spec);
    assert_int_equal(spec->disk_fill->amount_case, FAULTLINE__DISK_FILL__AMOUNT_BYTES);
    assert_int_equal(spec->disk_fill->bytes, 2ull << 30);
    /* set again: replaced, and percent <-> bytes switches */
    char err[256];
    assert_int_equal(fl_faultspec_set(spec, "fill", "50%", err, sizeof(err)), 0);
    assert_int_equal(spec->disk_fill->amount_case, FAULTLINE__DISK_FILL__AMOUNT_PERCENT);
    assert_int_equal(spec->disk_fill->percent, 50);
    assert_int_equal(fl_faultspec_set(spec, "path", "/data", err, sizeof(err)), 0);
    assert_string_equal(spec->disk_fill->path, "/data");
    assert_int_equal(fl_faultspec_set(spec, "fill", "512B", err, sizeof(err)), 0);
    assert_int_equal(spec->disk_fill->bytes, 512);
    assert_checks(spec);
    fl_faultspec_free(spec);
}

static void test_stress(void **state)
{
    (void)state;
    static const char *const cpu[] = {"workers", "4", "load", "80%", "duration", "1m", NULL};
    Faultline__FaultSpec *spec = build("cpu_stress", cpu);
    assert_checks(spec);
    assert_int_equal(spec->cpu_stress->workers, 4);
    assert_int_equal(spec->cpu_stress->load_percent, 80);
    fl_faultspec_free(spec);

    static const char *const cpu2[] = {"load", "25", "workers", "1024", "duration", "1s", NULL};
    spec = build("cpu_stress", cpu2);
    assert_checks(spec);
    assert_int_equal(spec->cpu_stress->load_percent, 25);
    assert_int_equal(spec->cpu_stress->workers, 1024);
    fl_faultspec_free(spec);

    static const char *const mem[] = {"size", "512MiB", "duration", "1m", NULL};
    spec = build("memory_stress", mem);
    assert_checks(spec);
    assert_int_equal(spec->memory_stress->bytes, 512ull << 20);
    fl_faultspec_free(spec);

    static const char *const mem2[] = {"size", "1.5GiB", "duration", "1m", NULL};
    spec = build("memory_stress", mem2);
    assert_int_equal(spec->memory_stress->bytes, 3ull << 29);
    fl_faultspec_free(spec);
}

/* ---------------------------------------------------------------- defaults */

static void test_defaults(void **state)
{
    (void)state;
    char err[256];
    Faultline__FaultSpec *spec = fl_faultspec_new("kill_process", err, sizeof(err));
    assert_non_null(spec);
    /* strings are malloc'd copies, never the shared empty string */
    assert_non_null(spec->name);
    assert_ptr_not_equal(spec->name, protobuf_c_empty_string);
    assert_string_equal(spec->name, "");
    assert_int_equal(spec->duration_ms, 0);
    assert_null(spec->kill_process->target);
    assert_int_equal(spec->kill_process->signal, SIGKILL);
    assert_int_equal(spec->kill_process->mode, FAULTLINE__KILL_MODE__KILL_MODE_ONCE);
    assert_int_equal(spec->kill_process->every_ms, 0);
    fl_faultspec_free(spec);

    spec = fl_faultspec_new("pause_process", err, sizeof(err));
    assert_null(spec->pause_process->target);
    fl_faultspec_free(spec);

    spec = fl_faultspec_new("network_drop", err, sizeof(err));
    const Faultline__NetworkDrop *n = spec->network_drop;
    assert_int_equal(n->direction, FAULTLINE__DIRECTION__DIRECTION_BOTH);
    assert_int_equal(n->protocol, FAULTLINE__PROTOCOL__PROTOCOL_ALL);
    assert_int_equal(n->action, FAULTLINE__DROP_ACTION__DROP_ACTION_DROP);
    assert_int_equal(n->percent, 100);
    assert_int_equal(n->n_peers, 0);
    assert_int_equal(n->n_ports, 0);
    /* with a duration, the defaults alone make a whole fault: drop everything */
    assert_int_equal(fl_faultspec_set(spec, "duration", "5s", err, sizeof(err)), 0);
    assert_checks(spec);
    fl_faultspec_free(spec);

    spec = fl_faultspec_new("disk_fill", err, sizeof(err));
    assert_non_null(spec->disk_fill->path);
    assert_ptr_not_equal(spec->disk_fill->path, protobuf_c_empty_string);
    assert_string_equal(spec->disk_fill->path, "");
    assert_int_equal(spec->disk_fill->amount_case, FAULTLINE__DISK_FILL__AMOUNT__NOT_SET);
    fl_faultspec_free(spec);

    spec = fl_faultspec_new("cpu_stress", err, sizeof(err));
    assert_int_equal(spec->cpu_stress->workers, 0); /* one per core */
    assert_int_equal(spec->cpu_stress->load_percent, 100);
    assert_int_equal(fl_faultspec_set(spec, "duration", "5s", err, sizeof(err)), 0);
    assert_checks(spec);
    fl_faultspec_free(spec);

    spec = fl_faultspec_new("memory_stress", err, sizeof(err));
    assert_int_equal(spec->memory_stress->bytes, 0);
    fl_faultspec_free(spec);
}

/* ---------------------------------------------------------------- unknown names */

static void test_unknown_kind(void **state)
{
    (void)state;
    static const struct {
        const char *kind;
        const char *suggestion; /* NULL: none */
    } cases[] = {
        {"netwrok_drop", "did you mean network_drop?"},
        {"network-drop", "did you mean network_drop?"},
        {"kill_proces", "did you mean kill_process?"},
        {"KILL_PROCESS", "did you mean kill_process?"},
        {"kill", "did you mean kill_process?"},
        {"mem", "did you mean memory_stress?"},
        {"diskfill", "did you mean disk_fill?"},
        {"bogus", NULL},
        {"stress", NULL},
        {"test_fault", NULL}, /* faultline-agent-test's seam: never from the controller */
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char err[512] = "";
        assert_null(fl_faultspec_new(cases[i].kind, err, sizeof(err)));
        assert_err_has(err, "unknown fault kind", cases[i].kind);
        assert_err_has(err, "kill_process, pause_process, network_drop", "memory_stress");
        if (cases[i].suggestion != NULL)
            assert_err_has(err, cases[i].suggestion, NULL);
        else if (strstr(err, "did you mean") != NULL)
            fail_msg("%s: unexpected suggestion in '%s'", cases[i].kind, err);
    }
    char err[256] = "";
    assert_null(fl_faultspec_new(NULL, err, sizeof(err)));
    assert_err_has(err, "kind is empty", NULL);
    assert_null(fl_faultspec_new("", err, sizeof(err)));
    assert_err_has(err, "kind is empty", NULL);
    assert_null(fl_faultspec_new("kill\x1b[2J", err, sizeof(err)));
    assert_err_has(err, "control character", NULL);
    assert_null(strchr(err, '\x1b')); /* never echoed */
}

static void test_unknown_param(void **state)
{
    (void)state;
    static const struct {
        const char *kind, *name, *n1, *n2;
    } cases[] = {
        {"kill_process", "sigal", "no parameter 'sigal'", "did you mean signal?"},
        {"kill_process", "Signal", "did you mean signal?", NULL},
        {"kill_process", "evry", "did you mean every?", NULL},
        {"kill_process", "pdi", "did you mean pid?", NULL},
        {"network_drop", "peer", "did you mean peers?", NULL},
        {"network_drop", "port", "did you mean ports?", NULL},
        {"network_drop", "prot", "did you mean protocol?", NULL},
        {"network_drop", "directoin", "did you mean direction?", NULL},
        {"disk_fill", "paht", "did you mean path?", NULL},
        {"cpu_stress", "worker", "did you mean workers?", NULL},
        {"memory_stress", "bytes", "no parameter 'bytes'", "memory_stress takes size, duration"},
        {"kill_process", "durration", "did you mean duration?", NULL},
        /* known to another kind */
        {"pause_process", "signal", "signal is a parameter of kill_process", NULL},
        {"pause_process", "mode", "parameter of kill_process, not of pause_process", NULL},
        {"cpu_stress", "percent", "percent is a parameter of network_drop", "cpu_stress takes"},
        {"network_drop", "name", "of kill_process and pause_process", NULL},
        {"memory_stress", "fill", "parameter of disk_fill", NULL},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char err[512] = "";
        Faultline__FaultSpec *spec = fl_faultspec_new(cases[i].kind, err, sizeof(err));
        assert_non_null(spec);
        assert_int_equal(fl_faultspec_set(spec, cases[i].name, "1", err, sizeof(err)), -EINVAL);
        assert_err_has(err, cases[i].n1, cases[i].n2);
        fl_faultspec_free(spec);
    }

    /* far from everything: no guess, but the kind's names */
    char err[512] = "";
    Faultline__FaultSpec *spec = fl_faultspec_new("kill_process", err, sizeof(err));
    assert_int_equal(fl_faultspec_set(spec, "xyzzy", "1", err, sizeof(err)), -EINVAL);
    assert_null(strstr(err, "did you mean"));
    assert_err_has(err,
                   "kill_process takes pid, pidfile, name, pattern, signal, mode, every, "
                   "duration",
                   NULL);
    /* the fault's own name is not a parameter of non-process kinds, nor is the kind */
    assert_int_equal(fl_faultspec_set(spec, "", "1", err, sizeof(err)), -EINVAL);
    assert_err_has(err, "parameter name is empty", NULL);
    assert_int_equal(fl_faultspec_set(spec, NULL, "1", err, sizeof(err)), -EINVAL);
    assert_int_equal(fl_faultspec_set(spec, "sig\nnal", "1", err, sizeof(err)), -EINVAL);
    assert_err_has(err, "control character", NULL);
    fl_faultspec_free(spec);
}

/* ---------------------------------------------------------------- bad values */

static void test_bad_values(void **state)
{
    (void)state;
    static const struct {
        const char *kind, *name, *value, *n1, *n2;
    } cases[] = {
        /* any parameter */
        {"kill_process", "name", "", "name is empty", "expected the exact name"},
        {"kill_process", "name", "ngi\x07nx", "name holds a control character (byte 3)", NULL},
        {"kill_process", "pattern", "a\tb", "control character", NULL},
        {"kill_process", "name", "x\x7f", "control character", NULL},
        {"kill_process", "duration", "0s", "duration=0s: zero", "expected a duration"},
        {"kill_process", "duration", "30", "duration=30: not a duration", "unit"},
        {"kill_process", "duration", "-5s", "not a duration", NULL},
        {"kill_process", "duration", "9999999999999999h", "too long", NULL},
        /* selectors */
        {"kill_process", "pid", "0", "pid=0: out of range", "process id"},
        {"kill_process", "pid", "-1", "pid=-1: not a whole number", NULL},
        {"kill_process", "pid", "+5", "not a whole number", NULL},
        {"kill_process", "pid", " 5", "not a whole number", NULL},
        {"kill_process", "pid", "12a", "not a whole number", NULL},
        {"kill_process", "pid", "0x10", "not a whole number", NULL},
        {"kill_process", "pid", "2147483648", "out of range", NULL},
        {"kill_process", "pid", "99999999999999999999999", "out of range", NULL},
        {"pause_process", "pidfile", "run/nginx.pid", "not an absolute path", "/run/nginx.pid"},
        /* kill_process */
        {"kill_process", "signal", "TERMINATE", "signal=TERMINATE: not a signal", "KILL, TERM"},
        {"kill_process", "signal", "0", "not a signal", NULL},
        {"kill_process", "signal", "32", "not a signal", NULL},
        {"kill_process", "signal", "STOP", "signal=STOP: kill_process does not send STOP, TSTP,",
         "pause_process pauses"},
        {"kill_process", "signal", "SIGCONT", "does not send STOP, TSTP, TTIN, TTOU or CONT", NULL},
        {"kill_process", "signal", "19", "does not send STOP, TSTP, TTIN, TTOU or CONT", NULL},
        /* the other stop signals: a pause nothing would end */
        {"kill_process", "signal", "TSTP", "signal=TSTP: kill_process does not send STOP, TSTP,",
         "pause_process pauses"},
        {"kill_process", "signal", "SIGTTIN", "signal=SIGTTIN: kill_process does not send",
         "pause_process"},
        {"kill_process", "signal", "ttou", "signal=ttou: kill_process does not send", NULL},
        {"kill_process", "signal", "20", "signal=20: kill_process does not send", NULL},
        {"kill_process", "signal", "21", "signal=21: kill_process does not send", NULL},
        {"kill_process", "signal", "22", "signal=22: kill_process does not send", NULL},
        {"kill_process", "mode", "twice", "mode=twice: not a mode", "once or repeat"},
        {"kill_process", "every", "5ms", "every=5ms: too short", "at least 10ms"},
        {"kill_process", "every", "0ms", "zero", NULL},
        {"kill_process", "every", "500", "not a duration", NULL},
        {"kill_process", "every", "50d", "not a duration", NULL},
        {"kill_process", "every", "1200h", "too long", NULL},
        /* network_drop */
        {"network_drop", "direction", "in", "direction=in: not a direction", "ingress, egress"},
        {"network_drop", "protocol", "sctp", "not a protocol", "tcp, udp, icmp or all"},
        {"network_drop", "action", "block", "not an action", "drop or reject"},
        {"network_drop", "percent", "0", "percent=0: out of range", "1 to 100"},
        {"network_drop", "percent", "101", "out of range", NULL},
        {"network_drop", "percent", "101%", "out of range", NULL},
        {"network_drop", "percent", "30.5", "not a whole percentage", NULL},
        {"network_drop", "percent", "%", "not a whole percentage", NULL},
        {"network_drop", "percent", "30%%", "not a whole percentage", NULL},
        {"network_drop", "percent", "-30", "not a whole percentage", NULL},
        {"network_drop", "peers", "10.0.0.256", "'10.0.0.256' is not an IP address", "CIDRs"},
        {"network_drop", "peers", "db1.internal", "host names are not resolved", NULL},
        {"network_drop", "peers", "10.0.0.0/33", "bad prefix length: an IPv4 prefix is /0 to /32",
         NULL},
        {"network_drop", "peers", "fd00::/129", "an IPv6 prefix is /0 to /128", NULL},
        {"network_drop", "peers", "10.0.0.0/", "'10.0.0.0/' has a bad prefix length", NULL},
        {"network_drop", "peers", "10.0.0.0/x", "bad prefix length", NULL},
        {"network_drop", "peers", "10.0.0.0/-1", "bad prefix length", NULL},
        /* host bits past the prefix: common/cidr.h's rule, as the agent's */
        {"network_drop", "peers", "10.1.2.3/8",
         "'10.1.2.3/8' has bits set after the prefix; did you mean 10.0.0.0/8?", NULL},
        {"network_drop", "peers", "10.0.0.1,fd00::1/64", "did you mean fd00::/64?", NULL},
        {"network_drop", "peers", "/24", "not an IP address", NULL},
        {"network_drop", "peers", "10.0.0.1,,10.0.0.2", "entry 2 is empty", NULL},
        {"network_drop", "peers", "10.0.0.1,", "entry 2 is empty", NULL},
        {"network_drop", "peers", ",", "entry 1 is empty", NULL},
        {"network_drop", "peers", " ", "entry 1 is empty", NULL},
        {"network_drop", "peers", "10.0.0.1,10.0.0.999", "'10.0.0.999' is not an IP", NULL},
        {"network_drop", "peers", "[fd00::1]", "not an IP address", NULL},
        {"network_drop", "ports", "0", "'0' holds port 0", "1 to 65535"},
        {"network_drop", "ports", "65536", "'65536' is over 65535", NULL},
        {"network_drop", "ports", "99999999999999999999999", "is over 65535", NULL},
        {"network_drop", "ports", "90-80", "ends before it starts", NULL},
        {"network_drop", "ports", "80-", "not a port number or range", NULL},
        {"network_drop", "ports", "-80", "not a port number or range", NULL},
        {"network_drop", "ports", "80-90-100", "not a port number or range", NULL},
        {"network_drop", "ports", "http", "not a port number or range", NULL},
        {"network_drop", "ports", "80 - 90", "not a port number or range", NULL},
        {"network_drop", "ports", "1,,2", "entry 2 is empty", NULL},
        /* disk_fill */
        {"disk_fill", "path", "var/tmp", "path=var/tmp: not an absolute path", NULL},
        {"disk_fill", "fill", "0%", "fill=0%: out of range", "95%"},
        {"disk_fill", "fill", "150%", "out of range", NULL},
        {"disk_fill", "fill", "95.5%", "not a whole percentage", NULL},
        {"disk_fill", "fill", "95", "fill=95: a bare number is ambiguous",
         "write 95% for a share of the file system, or a size with a unit such as 95MiB"},
        {"disk_fill", "fill", "0B", "fill=0B: zero", NULL},
        {"disk_fill", "fill", "lots", "not a percentage or a size", NULL},
        {"disk_fill", "fill", "2GB", "not a percentage or a size", "2GiB"},
        /* cpu_stress */
        {"cpu_stress", "workers", "0", "workers=0: out of range", "1 to 1024"},
        {"cpu_stress", "workers", "1025", "out of range", NULL},
        {"cpu_stress", "workers", "four", "not a whole number", NULL},
        {"cpu_stress", "load", "0%", "out of range", NULL},
        {"cpu_stress", "load", "101", "out of range", NULL},
        {"cpu_stress", "load", "80.5%", "not a whole percentage", NULL},
        /* memory_stress */
        {"memory_stress", "size", "50%", "takes a size, not a percentage", NULL},
        {"memory_stress", "size", "0%", "takes a size, not a percentage", NULL},
        {"memory_stress", "size", "0", "size=0: zero", NULL},
        {"memory_stress", "size", "0MiB", "zero", NULL},
        {"memory_stress", "size", "big", "not a size", "512MiB"},
        {"memory_stress", "size", "99999999999TiB", "too large", NULL},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char err[512] = "";
        Faultline__FaultSpec *spec = fl_faultspec_new(cases[i].kind, err, sizeof(err));
        Faultline__FaultSpec *before = fl_faultspec_new(cases[i].kind, err, sizeof(err));
        assert_non_null(spec);
        if (fl_faultspec_set(spec, cases[i].name, cases[i].value, err, sizeof(err)) != -EINVAL)
            fail_msg("%s %s=%s was taken", cases[i].kind, cases[i].name, cases[i].value);
        assert_err_has(err, cases[i].n1, cases[i].n2);
        for (const char *c = err; *c; c++) /* no control character reaches the error */
            assert_true((unsigned char)*c >= 0x20 && *c != 0x7f);
        assert_same_bytes(spec, before); /* unchanged */
        fl_faultspec_free(spec);
        fl_faultspec_free(before);
    }

    /* NULL value; a value over 4096 bytes; a long bad value is quoted short */
    char err[512] = "";
    Faultline__FaultSpec *spec = fl_faultspec_new("kill_process", err, sizeof(err));
    assert_int_equal(fl_faultspec_set(spec, "name", NULL, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "name is empty", NULL);
    char big[5000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(fl_faultspec_set(spec, "pattern", big, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "pattern is over 4096 bytes", NULL);
    big[4096] = '\0';
    assert_int_equal(fl_faultspec_set(spec, "pattern", big, err, sizeof(err)), 0);
    assert_int_equal(fl_faultspec_set(spec, "signal", big, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "aaaa...: not a signal", NULL);
    assert_true(strlen(err) < 300);
    fl_faultspec_free(spec);

    /* set on something that is not a spec of a kind */
    Faultline__FaultSpec bare = FAULTLINE__FAULT_SPEC__INIT;
    assert_int_equal(fl_faultspec_set(&bare, "name", "x", err, sizeof(err)), -EINVAL);
    assert_err_has(err, "no fault kind", NULL);
    assert_int_equal(fl_faultspec_set(NULL, "name", "x", err, sizeof(err)), -EINVAL);
}

static void test_selectors(void **state)
{
    (void)state;
    static const char *const names[] = {"pid", "pidfile", "name", "pattern"};
    static const char *const values[] = {"4242", "/run/a.pid", "nginx", "nginx: worker"};
    for (size_t a = 0; a < ARRAY_LEN(names); a++) {
        for (size_t b = 0; b < ARRAY_LEN(names); b++) {
            const char *kind = (a + b) % 2 ? "kill_process" : "pause_process";
            char err[512] = "";
            Faultline__FaultSpec *spec = fl_faultspec_new(kind, err, sizeof(err));
            assert_int_equal(fl_faultspec_set(spec, names[a], values[a], err, sizeof(err)), 0);
            int rc = fl_faultspec_set(spec, names[b], values[b], err, sizeof(err));
            if (a == b) {
                assert_int_equal(rc, 0); /* the same selector again replaces it */
            } else {
                char want[128];
                snprintf(want, sizeof(want), "%s and %s are both set: a fault has one selector",
                         names[a], names[b]);
                assert_int_equal(rc, -EINVAL);
                assert_err_has(err, want, NULL);
            }
            fl_faultspec_free(spec);
        }
    }

    static const char *const twice[] = {"name", "nginx", "name", "httpd", "duration", "1s", NULL};
    Faultline__FaultSpec *spec = build("kill_process", twice);
    assert_string_equal(spec->kill_process->target->name, "httpd");
    assert_checks(spec);
    fl_faultspec_free(spec);
    static const char *const pids[] = {"pid", "10", "pid", "2147483647", NULL};
    spec = build("pause_process", pids);
    assert_int_equal(spec->pause_process->target->pid, 2147483647);
    fl_faultspec_free(spec);
}

/* ---------------------------------------------------------------- check */

static void test_check(void **state)
{
    (void)state;
    static const struct {
        const char *kind;
        const char *kv[9];
        const char *n1, *n2;
    } cases[] = {
        {"kill_process", {"duration", "1s", NULL}, "kill_process needs a target", "pid, pidfile"},
        {"pause_process", {"duration", "1s", NULL}, "pause_process needs a target", NULL},
        {"kill_process",
         {"name", "x", "mode", "repeat", "duration", "1s", NULL},
         "mode repeat needs every",
         "every=1s"},
        {"kill_process",
         {"name", "x", "every", "1s", "duration", "1s", NULL},
         "every is set but mode is once",
         "mode=repeat"},
        {"kill_process", {"name", "x", NULL}, "kill_process needs a duration", "30s"},
        {"network_drop",
         {"ports", "80", "duration", "1s", NULL},
         "ports need protocol=tcp or protocol=udp",
         "protocol is all"},
        {"network_drop",
         {"ports", "80", "protocol", "icmp", "duration", "1s", NULL},
         "ports need protocol=tcp",
         "protocol is icmp"},
        {"disk_fill", {"fill", "90%", "duration", "1s", NULL}, "disk_fill needs path", NULL},
        {"disk_fill", {"path", "/srv", "duration", "1s", NULL}, "disk_fill needs fill", "95%"},
        {"memory_stress", {"duration", "1s", NULL}, "memory_stress needs size", "512MiB"},
        {"cpu_stress", {"workers", "2", NULL}, "cpu_stress needs a duration", NULL},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        Faultline__FaultSpec *spec = build(cases[i].kind, cases[i].kv);
        char err[512] = "";
        assert_int_equal(fl_faultspec_check(spec, err, sizeof(err)), -EINVAL);
        assert_err_has(err, cases[i].n1, cases[i].n2);
        fl_faultspec_free(spec);
    }

    /* order does not matter: ports before protocol */
    static const char *const late[] = {"ports", "443", "protocol", "tcp", "duration", "1s", NULL};
    Faultline__FaultSpec *spec = build("network_drop", late);
    assert_checks(spec);
    fl_faultspec_free(spec);

    char err[512] = "";
    assert_int_equal(fl_faultspec_check(NULL, err, sizeof(err)), -EINVAL);
    Faultline__FaultSpec bare = FAULTLINE__FAULT_SPEC__INIT;
    bare.duration_ms = 1000;
    assert_int_equal(fl_faultspec_check(&bare, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "no kind", "kill_process");
}

/* Specs that did not come from here: every value is checked again. */
static void test_check_foreign(void **state)
{
    (void)state;
    char err[512];
    Faultline__ProcessSelector sel = FAULTLINE__PROCESS_SELECTOR__INIT;
    Faultline__KillProcess kill = FAULTLINE__KILL_PROCESS__INIT;
    Faultline__FaultSpec spec = FAULTLINE__FAULT_SPEC__INIT;
    spec.duration_ms = 1000;
    spec.kind_case = FAULTLINE__FAULT_SPEC__KIND_KILL_PROCESS;
    spec.kill_process = NULL;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "no parameters message", NULL);
    spec.kill_process = &kill;
    kill.target = &sel;
    sel.by_case = FAULTLINE__PROCESS_SELECTOR__BY_NAME;
    sel.name = (char *)"nginx";
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), 0); /* signal 0 = KILL */
    kill.signal = SIGSTOP;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "signal 19 is not one kill_process sends", NULL);
    /* every stop signal, not STOP alone: nothing would resume the process */
    static const int stops[] = {SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT};
    for (size_t i = 0; i < sizeof(stops) / sizeof(stops[0]); i++) {
        kill.signal = stops[i];
        assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
        assert_err_has(err, "is not one kill_process sends", "pause_process");
    }
    kill.signal = SIGHUP; /* the neighbours of the stop signals still go */
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), 0);
    kill.signal = SIGURG;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), 0);
    kill.signal = 64;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
    kill.signal = -1;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
    kill.signal = SIGTERM;
    kill.mode = FAULTLINE__KILL_MODE__KILL_MODE_REPEAT;
    kill.every_ms = 5;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "every 5ms is too short", NULL);
    kill.mode = (Faultline__KillMode)7;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "mode 7", NULL);
    kill.mode = FAULTLINE__KILL_MODE__KILL_MODE_ONCE;
    kill.every_ms = 0;
    sel.name = (char *)"";
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "name is empty", NULL);
    sel.by_case = FAULTLINE__PROCESS_SELECTOR__BY_PID;
    sel.pid = -4;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "pid -4", NULL);
    sel.by_case = FAULTLINE__PROCESS_SELECTOR__BY_PIDFILE;
    sel.pidfile = (char *)"x.pid";
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "absolute", NULL);
    sel.by_case = (Faultline__ProcessSelector__ByCase)9;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "unknown selector", NULL);

    Faultline__PortRange r1 = FAULTLINE__PORT_RANGE__INIT, *ranges[] = {&r1};
    char *peers[] = {(char *)"10.0.0.1/40"};
    Faultline__NetworkDrop net = FAULTLINE__NETWORK_DROP__INIT;
    spec.kind_case = FAULTLINE__FAULT_SPEC__KIND_NETWORK_DROP;
    spec.network_drop = &net;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), 0); /* percent 0 = 100 */
    net.direction = (Faultline__Direction)3;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "direction 3", NULL);
    net.direction = FAULTLINE__DIRECTION__DIRECTION_BOTH;
    net.protocol = (Faultline__Protocol)4;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "protocol 4", NULL);
    net.protocol = FAULTLINE__PROTOCOL__PROTOCOL_TCP;
    net.action = (Faultline__DropAction)2;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "action 2", NULL);
    net.action = FAULTLINE__DROP_ACTION__DROP_ACTION_DROP;
    net.percent = 101;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "percent 101", NULL);
    net.percent = 0;
    net.n_peers = 1;
    net.peers = peers;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "peers[0]: '10.0.0.1/40' has a bad prefix length", NULL);
    peers[0] = (char *)"10.0.0.1/24";
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
    assert_err_has(err,
                   "peers[0]: '10.0.0.1/24' has bits set after the prefix; did you mean "
                   "10.0.0.0/24?",
                   NULL);
    net.n_peers = 0;
    net.n_ports = 1;
    net.ports = ranges;
    r1.first = 80;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), 0); /* last 0 = first */
    r1.last = 79;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "port range 1 (80-79)", NULL);
    r1.first = 0;
    r1.last = 0;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
    r1.first = 70000;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
    net.n_ports = FL_FAULTSPEC_MAX_LIST + 1;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "at most 64", NULL);

    Faultline__DiskFill disk = FAULTLINE__DISK_FILL__INIT;
    spec.kind_case = FAULTLINE__FAULT_SPEC__KIND_DISK_FILL;
    spec.disk_fill = &disk;
    disk.path = (char *)"/srv";
    disk.amount_case = FAULTLINE__DISK_FILL__AMOUNT_PERCENT;
    disk.percent = 0;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "fill 0%", NULL);
    disk.percent = 101;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
    disk.amount_case = FAULTLINE__DISK_FILL__AMOUNT_BYTES;
    disk.bytes = 0;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "0 bytes", NULL);
    disk.bytes = 1;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), 0);
    disk.path = (char *)"srv";
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "path must be absolute", NULL);
    disk.path = NULL;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "needs path", NULL);

    Faultline__CpuStress cpu = FAULTLINE__CPU_STRESS__INIT;
    spec.kind_case = FAULTLINE__FAULT_SPEC__KIND_CPU_STRESS;
    spec.cpu_stress = &cpu;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), 0);
    cpu.workers = 1025;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "workers 1025", NULL);
    cpu.workers = 1;
    cpu.load_percent = 150;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "load 150%", NULL);

    spec.kind_case = (Faultline__FaultSpec__KindCase)99;
    assert_int_equal(fl_faultspec_check(&spec, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "no kind", NULL);
}

/* ---------------------------------------------------------------- lists */

static void test_lists(void **state)
{
    (void)state;
    char err[512] = "";
    static const char *const kv[] = {"peers",    "10.0.0.1, 10.0.0.2 ,fd00::/64",
                                     "peers",    "192.168.0.0/16",
                                     "ports",    "80",
                                     "ports",    "443, 1000-2000",
                                     "protocol", "tcp",
                                     "duration", "1s",
                                     NULL};
    Faultline__FaultSpec *spec = build("network_drop", kv);
    assert_checks(spec);
    const Faultline__NetworkDrop *n = spec->network_drop;
    assert_int_equal(n->n_peers, 4);
    assert_string_equal(n->peers[0], "10.0.0.1");
    assert_string_equal(n->peers[1], "10.0.0.2");
    assert_string_equal(n->peers[2], "fd00::/64");
    assert_string_equal(n->peers[3], "192.168.0.0/16");
    assert_int_equal(n->n_ports, 3);
    assert_int_equal(n->ports[0]->first, 80);
    assert_int_equal(n->ports[1]->first, 443);
    assert_int_equal(n->ports[1]->last, 443);
    assert_int_equal(n->ports[2]->first, 1000);
    assert_int_equal(n->ports[2]->last, 2000);

    /* a failed append, even a partly good one, adds nothing */
    assert_int_equal(fl_faultspec_set(spec, "peers", "10.9.9.9,nope", err, sizeof(err)), -EINVAL);
    assert_err_has(err, "'nope' is not an IP address", NULL);
    assert_int_equal(n->n_peers, 4);
    assert_int_equal(fl_faultspec_set(spec, "ports", "8080,70000", err, sizeof(err)), -EINVAL);
    assert_int_equal(n->n_ports, 3);
    fl_faultspec_free(spec);

    /* edge values */
    static const char *const edges[] = {"peers", "0.0.0.0/0,::/0,::1/128,255.255.255.255/32",
                                        "ports", "1,65535,1-65535", NULL};
    spec = build("network_drop", edges);
    assert_int_equal(spec->network_drop->n_peers, 4);
    assert_int_equal(spec->network_drop->ports[2]->last, 65535);
    fl_faultspec_free(spec);

    /* at most FL_FAULTSPEC_MAX_LIST, in one go or by appending */
    spec = fl_faultspec_new("network_drop", err, sizeof(err));
    char list[1024];
    size_t used = 0;
    for (int i = 1; i <= FL_FAULTSPEC_MAX_LIST; i++)
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%d", i > 1 ? "," : "", i);
    assert_int_equal(fl_faultspec_set(spec, "ports", list, err, sizeof(err)), 0);
    assert_int_equal(spec->network_drop->n_ports, FL_FAULTSPEC_MAX_LIST);
    assert_int_equal(fl_faultspec_set(spec, "ports", "9999", err, sizeof(err)), -EINVAL);
    assert_err_has(err, "ports: 65 entries (64 already set and 1 more)", "limit of 64");
    assert_int_equal(spec->network_drop->n_ports, FL_FAULTSPEC_MAX_LIST);
    used = 0;
    for (int i = 1; i <= FL_FAULTSPEC_MAX_LIST + 1; i++)
        used +=
            (size_t)snprintf(list + used, sizeof(list) - used, "%s10.0.0.%d", i > 1 ? "," : "", i);
    assert_int_equal(fl_faultspec_set(spec, "peers", list, err, sizeof(err)), -EINVAL);
    assert_err_has(err, "limit of 64", NULL);
    assert_int_equal(spec->network_drop->n_peers, 0);
    fl_faultspec_free(spec);
}

/* ---------------------------------------------------------------- signals */

static void test_signals(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int signo;
    } good[] = {
        {"KILL", SIGKILL},    {"SIGKILL", SIGKILL}, {"kill", SIGKILL},    {"9", SIGKILL},
        {"sigkill", SIGKILL}, {"Term", SIGTERM},    {"SIGTERM", SIGTERM}, {"15", SIGTERM},
        {"HUP", SIGHUP},      {"INT", SIGINT},      {"QUIT", SIGQUIT},    {"USR1", SIGUSR1},
        {"USR2", SIGUSR2},    {"SEGV", SIGSEGV},    {"ABRT", SIGABRT},    {"ALRM", SIGALRM},
        {"STOP", SIGSTOP},    {"CONT", SIGCONT},    {"SigIO", SIGIO},     {"1", 1},
        {"31", 31},           {"009", 9},
    };
    for (size_t i = 0; i < ARRAY_LEN(good); i++) {
        int sig = -1;
        if (fl_parse_signal(good[i].text, &sig) != 0)
            fail_msg("%s was refused", good[i].text);
        assert_int_equal(sig, good[i].signo);
    }
    static const char *const bad[] = {
        "",
        "0",
        "32",
        "64",
        "-9",
        "+9",
        " 9",
        "9 ",
        "9x",
        "0x9",
        "SIG",
        "SIGFOO",
        "KILLL",
        "SIG KILL",
        "RTMIN",
        "SIGRTMIN+1",
        "99999999999999999999",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        int sig = 777;
        if (fl_parse_signal(bad[i], &sig) != -EINVAL)
            fail_msg("'%s' was taken", bad[i]);
        assert_int_equal(sig, 777); /* untouched */
    }
    int sig = 777;
    assert_int_equal(fl_parse_signal(NULL, &sig), -EINVAL);
    assert_int_equal(sig, 777);
}

/* ---------------------------------------------------------------- wire */

static void round_trip(Faultline__FaultSpec *spec)
{
    assert_int_equal(fl_faultspec_set_name(spec, "kill-nginx"), 0);
    assert_true(protobuf_c_message_check(&spec->base));
    size_t len;
    uint8_t *buf = packed(spec, &len);
    Faultline__FaultSpec *back = faultline__fault_spec__unpack(NULL, len, buf);
    assert_non_null(back);
    assert_same_bytes(spec, back);
    assert_int_equal(back->kind_case, spec->kind_case);
    assert_string_equal(back->name, "kill-nginx");
    assert_int_equal(back->duration_ms, spec->duration_ms);
    assert_string_equal(fl_faultspec_kind(back), fl_faultspec_kind(spec));
    assert_checks(back);
    faultline__fault_spec__free_unpacked(back, NULL);
    free(buf);
}

static void test_round_trip(void **state)
{
    (void)state;
    static const char *const kill[] = {"pattern",  "nginx: worker", "signal", "SIGHUP",
                                       "mode",     "repeat",        "every",  "250ms",
                                       "duration", "30s",           NULL};
    static const char *const pause[] = {"pid", "31337", "duration", "5s", NULL};
    static const char *const net[] = {"direction", "egress", "peers",   "10.0.0.0/8,fd00::1",
                                      "protocol",  "udp",    "ports",   "53,5000-5100",
                                      "action",    "reject", "percent", "25",
                                      "duration",  "1h",     NULL};
    static const char *const disk[] = {"path",     "/var/lib/pg", "fill", "97%",
                                       "duration", "2m",          NULL};
    static const char *const disk2[] = {"path",     "/var/lib/pg", "fill", "10GiB",
                                        "duration", "2m",          NULL};
    static const char *const cpu[] = {"workers", "8", "load", "90%", "duration", "10m", NULL};
    static const char *const mem[] = {"size", "3GiB", "duration", "10m", NULL};
    static const struct {
        const char *kind;
        const char *const *kv;
    } all[] = {{"kill_process", kill}, {"pause_process", pause}, {"network_drop", net},
               {"disk_fill", disk},    {"disk_fill", disk2},     {"cpu_stress", cpu},
               {"memory_stress", mem}};
    for (size_t i = 0; i < ARRAY_LEN(all); i++) {
        Faultline__FaultSpec *spec = build(all[i].kind, all[i].kv);
        assert_checks(spec);
        round_trip(spec);
        fl_faultspec_free(spec);
    }

    /* field by field for the one with lists */
    Faultline__FaultSpec *spec = build("network_drop", net);
    size_t len;
    uint8_t *buf = packed(spec, &len);
    Faultline__FaultSpec *back = faultline__fault_spec__unpack(NULL, len, buf);
    assert_non_null(back);
    const Faultline__NetworkDrop *a = spec->network_drop, *b = back->network_drop;
    assert_int_equal(b->direction, a->direction);
    assert_int_equal(b->protocol, a->protocol);
    assert_int_equal(b->action, a->action);
    assert_int_equal(b->percent, a->percent);
    assert_int_equal(b->n_peers, a->n_peers);
    for (size_t i = 0; i < a->n_peers; i++)
        assert_string_equal(b->peers[i], a->peers[i]);
    assert_int_equal(b->n_ports, a->n_ports);
    for (size_t i = 0; i < a->n_ports; i++) {
        assert_int_equal(b->ports[i]->first, a->ports[i]->first);
        assert_int_equal(b->ports[i]->last, a->ports[i]->last);
    }
    fl_faultspec_free(back); /* an unpacked spec frees the same way */
    free(buf);
    fl_faultspec_free(spec);
}

/* ---------------------------------------------------------------- memory */

/* Specs dropped at every stage of building, after failures included: ASan's
 * leak checker and free_unpacked's own walk are the assertions. */
static void test_partial_free(void **state)
{
    (void)state;
    char err[256];
    fl_faultspec_free(NULL);
    const char *const *kinds = fl_faultspec_kinds();
    for (size_t i = 0; kinds[i] != NULL; i++)
        fl_faultspec_free(fl_faultspec_new(kinds[i], err, sizeof(err)));

    Faultline__FaultSpec *spec = fl_faultspec_new("kill_process", err, sizeof(err));
    assert_int_equal(fl_faultspec_set(spec, "pidfile", "/run/a.pid", err, sizeof(err)), 0);
    assert_int_equal(fl_faultspec_set(spec, "pidfile", "/run/b.pid", err, sizeof(err)), 0);
    assert_int_equal(fl_faultspec_set(spec, "name", "x", err, sizeof(err)), -EINVAL);
    assert_int_equal(fl_faultspec_set(spec, "signal", "nope", err, sizeof(err)), -EINVAL);
    fl_faultspec_free(spec);

    spec = fl_faultspec_new("pause_process", err, sizeof(err));
    assert_int_equal(fl_faultspec_set(spec, "pattern", "a", err, sizeof(err)), 0);
    assert_int_equal(fl_faultspec_set(spec, "pattern", "b", err, sizeof(err)), 0);
    fl_faultspec_free(spec);

    spec = fl_faultspec_new("network_drop", err, sizeof(err));
    assert_int_equal(fl_faultspec_set(spec, "peers", "10.0.0.1,10.0.0.2", err, sizeof(err)), 0);
    assert_int_equal(fl_faultspec_set(spec, "peers", "10.0.0.3,bad", err, sizeof(err)), -EINVAL);
    assert_int_equal(fl_faultspec_set(spec, "ports", "1,2,x", err, sizeof(err)), -EINVAL);
    assert_int_equal(fl_faultspec_set(spec, "ports", "1", err, sizeof(err)), 0);
    fl_faultspec_free(spec);

    spec = fl_faultspec_new("disk_fill", err, sizeof(err));
    assert_int_equal(fl_faultspec_set(spec, "path", "/a", err, sizeof(err)), 0);
    assert_int_equal(fl_faultspec_set(spec, "path", "/b", err, sizeof(err)), 0);
    assert_int_equal(fl_faultspec_set(spec, "path", "c", err, sizeof(err)), -EINVAL);
    assert_string_equal(spec->disk_fill->path, "/b");
    fl_faultspec_free(spec);

    /* freed by protobuf-c directly, name replaced twice */
    spec = fl_faultspec_new("memory_stress", err, sizeof(err));
    assert_int_equal(fl_faultspec_set_name(spec, "a"), 0);
    assert_int_equal(fl_faultspec_set_name(spec, "b"), 0);
    assert_string_equal(spec->name, "b");
    assert_int_equal(fl_faultspec_set_name(spec, NULL), -EINVAL);
    assert_int_equal(fl_faultspec_set_name(NULL, "x"), -EINVAL);
    protobuf_c_message_free_unpacked(&spec->base, NULL);
}

/* err may be NULL or tiny: nothing overflows, the result still says no. */
static void test_err_buffers(void **state)
{
    (void)state;
    assert_null(fl_faultspec_new("nope", NULL, 0));
    char tiny[8];
    memset(tiny, 'x', sizeof(tiny));
    assert_null(fl_faultspec_new("netwrok_drop", tiny, sizeof(tiny)));
    assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
    Faultline__FaultSpec *spec = fl_faultspec_new("kill_process", NULL, 0);
    assert_non_null(spec);
    assert_int_equal(fl_faultspec_set(spec, "sigal", "KILL", NULL, 0), -EINVAL);
    assert_int_equal(fl_faultspec_set(spec, "signal", "nope", tiny, sizeof(tiny)), -EINVAL);
    assert_int_equal(fl_faultspec_set(spec, "zzz", "1", tiny, 1), -EINVAL);
    assert_int_equal(tiny[0], '\0');
    assert_int_equal(fl_faultspec_check(spec, NULL, 0), -EINVAL);
    fl_faultspec_free(spec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds_and_params), cmocka_unit_test(test_kill_process),
        cmocka_unit_test(test_pause_process),    cmocka_unit_test(test_network_drop),
        cmocka_unit_test(test_disk_fill),        cmocka_unit_test(test_stress),
        cmocka_unit_test(test_defaults),         cmocka_unit_test(test_unknown_kind),
        cmocka_unit_test(test_unknown_param),    cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_selectors),        cmocka_unit_test(test_check),
        cmocka_unit_test(test_check_foreign),    cmocka_unit_test(test_lists),
        cmocka_unit_test(test_signals),          cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_partial_free),     cmocka_unit_test(test_err_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
