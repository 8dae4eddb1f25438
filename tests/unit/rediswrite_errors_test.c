/* The Redis write client hears a refused connection and a reset one at
 * once, not at its timeout (issue 15, found on the Redis bed: every write to
 * a killed primary took the whole timeout, so a write probe made one attempt
 * per timeout during a failover and its recovery bracket was five times
 * wider than its interval).
 *
 * hiredis 0.14's libuv adapter returns without a word when libuv reports a
 * poll error, and libuv reports a socket with a pending error (the refused
 * connect, the reset) as exactly that: hiredis never looked at the socket,
 * and the write waited for its timeout. Both cases on loopback, no server:
 * a port nothing listens on; a listener that reads the write and resets. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>
#include <cmocka.h>

#include "controller/probes/rediswrite.h"
#include "tests/support/proc.h"

#define TIMEOUT_MS 5000

struct result {
    bool done, ok;
    char detail[512];
};

static void on_written(void *arg, bool ok, uint64_t ack_ms, const char *detail)
{
    struct result *r = arg;
    (void)ack_ms;
    r->done = true;
    r->ok = ok;
    snprintf(r->detail, sizeof(r->detail), "%s", detail);
}

static void on_closed(void *arg)
{
    *(bool *)arg = true;
}

/* One write to 127.0.0.1:port; its result. */
static void write_once(uint16_t port, struct result *r)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    char address[32], err[256];
    snprintf(address, sizeof(address), "127.0.0.1:%u", port);
    struct fl_rediswrite_config cfg = {.address = address, .run_id = "errors"};
    struct fl_rediswrite *w = NULL;
    assert_int_equal(fl_rediswrite_create(&loop, &cfg, &w, err, sizeof(err)), 0);
    memset(r, 0, sizeof(*r));
    assert_int_equal(fl_rediswrite_write(w, 1, 1, TIMEOUT_MS, on_written, r), 0);
    while (!r->done)
        uv_run(&loop, UV_RUN_ONCE);
    bool closed = false;
    fl_rediswrite_close(w, on_closed, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_refused_is_heard_at_once(void **state)
{
    (void)state;
    struct result r;
    write_once(test_free_port(), &r); /* nothing listens there */
    printf("refused: %s\n", r.detail);
    assert_false(r.ok);
    assert_null(strstr(r.detail, "timeout"));
    assert_non_null(strstr(r.detail, "refused"));
}

static void test_reset_is_heard_at_once(void **state)
{
    (void)state;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(ls >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t len = sizeof(sa);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&sa, &len), 0);
    assert_int_equal(listen(ls, 1), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        /* read the write, then answer with a reset (linger 0) */
        alarm(20);
        int c = accept(ls, NULL, NULL);
        char buf[256];
        if (c < 0 || read(c, buf, sizeof(buf)) <= 0)
            _exit(1);
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(c);
        _exit(0);
    }
    close(ls);
    struct result r;
    write_once(ntohs(sa.sin_port), &r);
    printf("reset: %s\n", r.detail);
    int st;
    assert_int_equal(waitpid(child, &st, 0), child);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_false(r.ok);
    assert_null(strstr(r.detail, "timeout"));
    assert_non_null(strstr(r.detail, "reset"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_is_heard_at_once),
        cmocka_unit_test(test_reset_is_heard_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
