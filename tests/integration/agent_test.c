/* The real faultline-agent and faultline binaries on loopback: the
 * authenticated channel as a controller, an impostor and a stray client see
 * it. FL_AGENT_BIN and FL_CTL_BIN are set by the build. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/rand.h>

#include "common/clock.h"
#include "common/frame.h"
#include "common/key.h"
#include "tests/support/agent_proc.h"
#include "tests/support/proc.h"
#include "tests/support/raw_peer.h"

#define MAX_CONNECTIONS 4

static char dir[] = "/tmp/fl-agent-test.XXXXXX";
static char key_path[256], other_key_path[256];
static struct fl_key key;
static pid_t agent_pid;
static uint16_t agent_port;
static char agent_where[32];

static char *ctl(const char *a)
{
    return (char *)(uintptr_t)a;
}

static struct test_agent main_agent;

/* Starts an agent on 127.0.0.1 with an ephemeral port; returns its pid. */
static pid_t start_agent(const char *keyfile, const char *name, const char *max_conn,
                         uint16_t *port, struct test_agent *a)
{
    const char *extra[] = {"--max-connections", max_conn, NULL};
    if (test_agent_start(a, FL_AGENT_BIN, keyfile, dir, name, NULL, extra) < 0)
        return -1;
    *port = a->port;
    return a->pid;
}

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(key_path, sizeof(key_path), "%s/faultline.key", dir);
    snprintf(other_key_path, sizeof(other_key_path), "%s/other.key", dir);
    char out[1024];
    char *kg1[] = {ctl(FL_CTL_BIN), ctl("keygen"), key_path, NULL};
    char *kg2[] = {ctl(FL_CTL_BIN), ctl("keygen"), other_key_path, NULL};
    if (proc_run(kg1, out, sizeof(out), 5000) != 0 || proc_run(kg2, out, sizeof(out), 5000) != 0)
        return -1;
    char err[256];
    if (fl_key_load(key_path, &key, err, sizeof(err)) != 0)
        return -1;
    agent_pid = start_agent(key_path, "agent", "4", &agent_port, &main_agent);
    if (agent_pid < 0)
        return -1;
    snprintf(agent_where, sizeof(agent_where), "127.0.0.1:%u", (unsigned)agent_port);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = 0;
    if (agent_pid > 0) {
        int st = proc_stop(agent_pid, SIGTERM, 5000);
        if (st != 0) {
            fprintf(stderr, "agent exited with %d; its log:\n", st);
            rc = -1;
        }
    }
    if (rc != 0 || getenv("FL_TEST_VERBOSE"))
        test_agent_dump_log(&main_agent);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = -1;
    return rc;
}

static int agents(const char *keyfile, const char *where, char *out, size_t cap)
{
    char *argv[] = {ctl(FL_CTL_BIN),  ctl("agents"), ctl("--key"), ctl(keyfile),
                    ctl("--timeout"), ctl("2s"),     ctl(where),   NULL};
    return proc_run(argv, out, cap, 10000);
}

static void assert_agent_serves(void)
{
    char out[4096];
    int rc = agents(key_path, agent_where, out, sizeof(out));
    if (rc != 0)
        fprintf(stderr, "%s", out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, " up "));
    assert_non_null(strstr(out, FL_VERSION));
}

static void test_agents_reports_status(void **state)
{
    (void)state;
    char out[4096];
    assert_int_equal(agents(key_path, agent_where, out, sizeof(out)), 0);
    assert_non_null(strstr(out, agent_where));
    assert_non_null(strstr(out, " up "));
    assert_non_null(strstr(out, FL_VERSION));

    /* the key also comes from $FAULTLINE_KEY */
    setenv("FAULTLINE_KEY", key_path, 1);
    char *argv[] = {ctl(FL_CTL_BIN), ctl("agents"), agent_where, NULL};
    assert_int_equal(proc_run(argv, out, sizeof(out), 10000), 0);
    unsetenv("FAULTLINE_KEY");
}

static void test_wrong_key_rejected(void **state)
{
    (void)state;
    char out[4096];
    assert_int_equal(agents(other_key_path, agent_where, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "DOWN"));
    assert_non_null(strstr(out, "authentication failed"));
    assert_agent_serves();
}

static void test_unreachable(void **state)
{
    (void)state;
    /* port 1 on loopback: nothing listens there */
    char out[4096];
    assert_int_equal(agents(key_path, "127.0.0.1:1", out, sizeof(out)), 2);
    assert_non_null(strstr(out, "connection refused"));

    /* one up, one down: both reported, exit status says not all answered */
    char *argv[] = {ctl(FL_CTL_BIN), ctl("agents"),      ctl("--key"), key_path,
                    agent_where,     ctl("127.0.0.1:1"), NULL};
    assert_int_equal(proc_run(argv, out, sizeof(out), 10000), 2);
    assert_non_null(strstr(out, " up "));
    assert_non_null(strstr(out, "DOWN"));
}

/* Random bytes get a stray client hung up on, with not a byte of reply, while
 * a real controller is served throughout. */
static void test_random_bytes_disconnected(void **state)
{
    (void)state;
    for (int round = 0; round < 20; round++) {
        struct raw_peer p;
        assert_int_equal(raw_connect(&p, agent_port), 0);
        uint8_t junk[4096];
        size_t len = (size_t)(8 + round * 200);
        RAND_bytes(junk, sizeof(junk));
        if (round % 2 == 0) {
            /* a whole frame of junk: it reaches the handshake decoder */
            fl_frame_put_header(junk, (uint32_t)(len - FL_FRAME_HEADER));
        } else {
            junk[0] |= 0x80; /* a length far over the limit */
        }
        assert_int_equal(raw_send_bytes(&p, junk, len), 0);
        size_t got = 99;
        assert_int_equal(raw_wait_closed(&p, 2000, &got), 0);
        assert_int_equal(got, 0);
        raw_close(&p);
        if (round % 5 == 0)
            assert_agent_serves();
    }
    assert_agent_serves();
}

/* An Envelope (a request) before the handshake is refused unread. */
static void test_request_before_auth(void **state)
{
    (void)state;
    struct raw_peer p;
    assert_int_equal(raw_connect(&p, agent_port), 0);
    Faultline__StatusRequest sr = FAULTLINE__STATUS_REQUEST__INIT;
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = 1;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_STATUS_REQUEST;
    env.status_request = &sr;
    uint8_t buf[64];
    size_t n = faultline__envelope__pack(&env, buf);
    assert_int_equal(raw_send_frame(&p, buf, n), 0);
    size_t got = 99;
    assert_int_equal(raw_wait_closed(&p, 2000, &got), 0);
    assert_int_equal(got, 0);
    raw_close(&p);
}

static Faultline__Envelope ping_envelope(uint64_t id, Faultline__Ping *ping)
{
    Faultline__Envelope env = FAULTLINE__ENVELOPE__INIT;
    env.id = id;
    env.msg_case = FAULTLINE__ENVELOPE__MSG_PING;
    env.ping = ping;
    return env;
}

static void test_sealed_frames(void **state)
{
    (void)state;
    Faultline__Ping ping = FAULTLINE__PING__INIT;
    uint8_t f1[128], f2[128];

    /* authenticated: a ping is answered */
    struct raw_peer p;
    assert_int_equal(raw_connect(&p, agent_port), 0);
    assert_int_equal(raw_handshake(&p, &key), 0);
    Faultline__Envelope env = ping_envelope(7, &ping);
    size_t n1 = raw_seal(&p, &env, f1, sizeof(f1));
    assert_int_equal(raw_send_bytes(&p, f1, n1), 0);
    Faultline__Envelope *reply = raw_recv_envelope(&p, 2000);
    assert_non_null(reply);
    assert_int_equal(reply->msg_case, FAULTLINE__ENVELOPE__MSG_PONG);
    assert_int_equal(reply->id, 7);
    faultline__envelope__free_unpacked(reply, NULL);

    /* replayed: the same frame again closes the connection, unanswered */
    assert_int_equal(raw_send_bytes(&p, f1, n1), 0);
    size_t got = 99;
    assert_int_equal(raw_wait_closed(&p, 2000, &got), 0);
    assert_int_equal(got, 0);
    raw_close(&p);

    /* tampered: one bit of the payload flipped */
    assert_int_equal(raw_connect(&p, agent_port), 0);
    assert_int_equal(raw_handshake(&p, &key), 0);
    env = ping_envelope(8, &ping);
    n1 = raw_seal(&p, &env, f1, sizeof(f1));
    f1[n1 - 1] ^= 1;
    assert_int_equal(raw_send_bytes(&p, f1, n1), 0);
    assert_int_equal(raw_wait_closed(&p, 2000, &got), 0);
    assert_int_equal(got, 0);
    raw_close(&p);

    /* out of sequence: the second frame sent first */
    assert_int_equal(raw_connect(&p, agent_port), 0);
    assert_int_equal(raw_handshake(&p, &key), 0);
    env = ping_envelope(9, &ping);
    n1 = raw_seal(&p, &env, f1, sizeof(f1));
    env = ping_envelope(10, &ping);
    size_t n2 = raw_seal(&p, &env, f2, sizeof(f2));
    (void)n1;
    assert_int_equal(raw_send_bytes(&p, f2, n2), 0);
    assert_int_equal(raw_wait_closed(&p, 2000, &got), 0);
    assert_int_equal(got, 0);
    raw_close(&p);

    /* an unsealed envelope after the handshake is refused too */
    assert_int_equal(raw_connect(&p, agent_port), 0);
    assert_int_equal(raw_handshake(&p, &key), 0);
    env = ping_envelope(11, &ping);
    size_t plain = faultline__envelope__pack(&env, f1);
    assert_int_equal(raw_send_frame(&p, f1, plain), 0);
    assert_int_equal(raw_wait_closed(&p, 2000, &got), 0);
    assert_int_equal(got, 0);
    raw_close(&p);

    assert_agent_serves();
}

static void test_oversize_frame(void **state)
{
    (void)state;
    struct raw_peer p;
    assert_int_equal(raw_connect(&p, agent_port), 0);
    uint8_t h[FL_FRAME_HEADER];
    fl_frame_put_header(h, FL_FRAME_MAX + 1);
    assert_int_equal(raw_send_bytes(&p, h, sizeof(h)), 0);
    size_t got = 99;
    assert_int_equal(raw_wait_closed(&p, 2000, &got), 0);
    assert_int_equal(got, 0);
    raw_close(&p);
}

static void test_silent_client_closed_after_5s(void **state)
{
    (void)state;
    struct raw_peer p;
    assert_int_equal(raw_connect(&p, agent_port), 0);
    const uint64_t handshake_ms = 5000; /* the agent's default handshake deadline */
    uint64_t t0 = fl_mono_ms();
    size_t got = 99;
    assert_int_equal(raw_wait_closed(&p, (int)(3 * handshake_ms), &got), 0);
    uint64_t waited = fl_mono_ms() - t0;
    assert_int_equal(got, 0);
    /* at the deadline: not before it (less the connect's own time), and not
     * at a second one (a deadline re-armed, or counted twice) */
    assert_true(waited >= handshake_ms - 500 && waited < 2 * handshake_ms);
    raw_close(&p);
}

/* Connections that never authenticate, all from one address, hold at most
 * max_unauthenticated_per_address (2) slots: each new one closes the oldest.
 * An authenticated controller still gets in. */
static void test_connection_cap(void **state)
{
    (void)state;
    struct raw_peer conns[MAX_CONNECTIONS + 1];
    for (int i = 0; i <= MAX_CONNECTIONS; i++)
        assert_int_equal(raw_connect(&conns[i], agent_port), 0);
    /* then look at them all at once, well within the 5 s handshake deadline */
    usleep(1000 * 1000);
    int closed = 0;
    for (int i = 0; i <= MAX_CONNECTIONS; i++) {
        size_t got = 99;
        if (raw_wait_closed(&conns[i], 1, &got) == 0) {
            closed++;
            assert_int_equal(got, 0);
            assert_true(i < MAX_CONNECTIONS + 1 - 2); /* the oldest went */
        }
    }
    assert_int_equal(closed, MAX_CONNECTIONS + 1 - 2);
    char out[4096];
    assert_int_equal(agents(key_path, agent_where, out, sizeof(out)), 0);

    for (int i = 0; i <= MAX_CONNECTIONS; i++)
        raw_close(&conns[i]);
    usleep(200 * 1000);
    assert_agent_serves();
}

/* Every slot held by an authenticated controller: one more is refused at
 * once (a controller is never evicted). */
static void test_authenticated_cap(void **state)
{
    (void)state;
    struct raw_peer conns[MAX_CONNECTIONS];
    for (int i = 0; i < MAX_CONNECTIONS; i++) {
        assert_int_equal(raw_connect(&conns[i], agent_port), 0);
        assert_int_equal(raw_handshake(&conns[i], &key), 0);
    }
    char out[4096];
    assert_int_equal(agents(key_path, agent_where, out, sizeof(out)), 2);
    for (int i = 0; i < MAX_CONNECTIONS; i++)
        raw_close(&conns[i]);
    usleep(200 * 1000);
    assert_agent_serves();
}

static void test_key_file_checks(void **state)
{
    (void)state;
    char out[4096];
    char loose[300];
    snprintf(loose, sizeof(loose), "%s/loose.key", dir);
    char *cp[] = {ctl(FL_CTL_BIN), ctl("keygen"), loose, NULL};
    assert_int_equal(proc_run(cp, out, sizeof(out), 5000), 0);
    assert_int_equal(chmod(loose, 0644), 0);

    char *a1[] = {ctl(FL_AGENT_BIN), ctl("--key"),       loose,
                  ctl("--listen"),   ctl("127.0.0.1:0"), NULL};
    assert_int_equal(proc_run(a1, out, sizeof(out), 5000), 1);
    assert_non_null(strstr(out, "chmod 600"));

    char missing[300];
    snprintf(missing, sizeof(missing), "%s/missing.key", dir);
    char *a2[] = {ctl(FL_AGENT_BIN), ctl("--key"),       missing,
                  ctl("--listen"),   ctl("127.0.0.1:0"), NULL};
    assert_int_equal(proc_run(a2, out, sizeof(out), 5000), 1);
    assert_non_null(strstr(out, "missing.key"));

    unsetenv("FAULTLINE_KEY");
    char *a3[] = {ctl(FL_AGENT_BIN), ctl("--listen"), ctl("127.0.0.1:0"), NULL};
    assert_int_equal(proc_run(a3, out, sizeof(out), 5000), 64);
    assert_non_null(strstr(out, "--key"));

    /* the controller refuses the loose key too, and names the fix */
    char *c1[] = {ctl(FL_CTL_BIN), ctl("agents"), ctl("--key"), loose, agent_where, NULL};
    assert_int_equal(proc_run(c1, out, sizeof(out), 5000), 2);
    assert_non_null(strstr(out, "chmod 600"));

    /* keygen never overwrites a key by accident */
    assert_int_equal(proc_run(cp, out, sizeof(out), 5000), 2);
    assert_non_null(strstr(out, "--force"));
}

static void test_sigterm_stops_cleanly(void **state)
{
    (void)state;
    uint16_t port = 0;
    struct test_agent second;
    pid_t pid = start_agent(key_path, "second", "8", &port, &second);
    assert_true(pid > 0);
    /* with an authenticated session and an unauthenticated one open */
    struct raw_peer a, b;
    assert_int_equal(raw_connect(&a, port), 0);
    assert_int_equal(raw_handshake(&a, &key), 0);
    assert_int_equal(raw_connect(&b, port), 0);
    assert_int_equal(proc_stop(pid, SIGTERM, 3000), 0);
    assert_int_equal(raw_wait_closed(&a, 1000, NULL), 0);
    raw_close(&a);
    raw_close(&b);
    char buf[8192];
    assert_non_null(file_wait_for(second.log, "stopped", buf, sizeof(buf), 100));
}

/* allowed_controllers in the agent's config: others are hung up on. */
static void test_allowed_controllers(void **state)
{
    (void)state;
    static const struct {
        const char *list;
        int want;
    } cases[] = {{"[10.0.0.0/8, \"fd00::/8\"]", 2}, {"[10.0.0.0/8, 127.0.0.0/8]", 0}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char cfg[300], name[32];
        snprintf(cfg, sizeof(cfg), "%s/allowed-%zu.yaml", dir, i);
        snprintf(name, sizeof(name), "allowed-%zu", i);
        FILE *f = fopen(cfg, "w");
        assert_non_null(f);
        fprintf(f, "guardrails:\n  allowed_controllers: %s\n", cases[i].list);
        fclose(f);
        struct test_agent a;
        const char *extra[] = {"--config", cfg, NULL};
        assert_int_equal(test_agent_start(&a, FL_AGENT_BIN, key_path, dir, name, NULL, extra), 0);
        char out[4096];
        assert_int_equal(agents(key_path, a.where, out, sizeof(out)), cases[i].want);
        assert_int_equal(proc_stop(a.pid, SIGTERM, 5000), 0);
        char buf[16384];
        if (cases[i].want != 0)
            assert_non_null(
                file_wait_for(a.log, "not in allowed_controllers", buf, sizeof(buf), 100));
    }
}

static void test_usage(void **state)
{
    (void)state;
    char out[8192];
    char *h1[] = {ctl(FL_CTL_BIN), ctl("--help"), NULL};
    assert_int_equal(proc_run(h1, out, sizeof(out), 5000), 0);
    assert_non_null(strstr(out, "agents"));
    assert_non_null(strstr(out, "keygen"));
    static const char *const cmds[] = {"agents", "keygen"};
    for (size_t i = 0; i < 2; i++) {
        char *h[] = {ctl(FL_CTL_BIN), ctl(cmds[i]), ctl("--help"), NULL};
        assert_int_equal(proc_run(h, out, sizeof(out), 5000), 0);
        assert_non_null(strstr(out, "usage: faultline"));
    }
    char *h2[] = {ctl(FL_AGENT_BIN), ctl("--help"), NULL};
    assert_int_equal(proc_run(h2, out, sizeof(out), 5000), 0);
    assert_non_null(strstr(out, "--listen"));
    char *u1[] = {ctl(FL_CTL_BIN), ctl("frobnicate"), NULL};
    assert_int_equal(proc_run(u1, out, sizeof(out), 5000), 64);
    assert_non_null(strstr(out, "unknown command 'frobnicate'"));
    char *u2[] = {ctl(FL_CTL_BIN), ctl("agents"), NULL};
    assert_int_equal(proc_run(u2, out, sizeof(out), 5000), 64);
    char *u3[] = {ctl(FL_CTL_BIN), ctl("agents"),         ctl("--key"),
                  key_path,        ctl("10.0.0.1:99999"), NULL};
    assert_int_equal(proc_run(u3, out, sizeof(out), 5000), 64);
    assert_non_null(strstr(out, "not ADDRESS[:PORT]"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agents_reports_status),
        cmocka_unit_test(test_wrong_key_rejected),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_random_bytes_disconnected),
        cmocka_unit_test(test_request_before_auth),
        cmocka_unit_test(test_sealed_frames),
        cmocka_unit_test(test_oversize_frame),
        cmocka_unit_test(test_silent_client_closed_after_5s),
        cmocka_unit_test(test_connection_cap),
        cmocka_unit_test(test_authenticated_cap),
        cmocka_unit_test(test_key_file_checks),
        cmocka_unit_test(test_sigterm_stops_cleanly),
        cmocka_unit_test(test_allowed_controllers),
        cmocka_unit_test(test_usage),
    };
    return cmocka_run_group_tests_name("agent channel", tests, setup, teardown);
}
