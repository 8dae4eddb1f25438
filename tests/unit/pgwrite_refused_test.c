/* A multi-host DSN whose first host refuses a TCP connection must move on
 * to the next host (issue 15; found by rpo_pg_known on the namespaced bed).
 *
 * A non-blocking TCP connect is refused asynchronously: the socket reports
 * an error event, which libuv's uv_poll hands over as status UV_EBADF. The
 * client took that for a broken socket and failed the write ("connection
 * socket: bad file descriptor") before libpq could read the socket's error
 * and try the next host, so after the primary died every write and the
 * read-back failed, for ever, though the promoted standby was the DSN's
 * second host. (On the loopback bed both hosts were Unix sockets, whose
 * refusal is synchronous: never seen there.)
 *
 * No server needed: the first port is closed, the second a listening socket
 * of the test's own that accepts and never answers. The write must reach
 * it (accept succeeds) and then end by its timeout, not by an error on the
 * first host. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/clock.h"
#include "controller/probes/pgwrite.h"

static int listen_on_loopback(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 4), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* A port nobody listens on: bound, then closed. */
static uint16_t closed_port(void)
{
    uint16_t port;
    close(listen_on_loopback(&port));
    return port;
}

struct outcome {
    bool done, ok;
    char detail[256];
};

static void on_write(void *arg, bool ok, uint64_t ack_ms, const char *detail)
{
    (void)ack_ms;
    struct outcome *o = arg;
    o->done = true;
    o->ok = ok;
    snprintf(o->detail, sizeof(o->detail), "%s", detail);
}

static void test_refused_first_host_moves_on(void **state)
{
    (void)state;
    uint16_t second;
    int lfd = listen_on_loopback(&second);
    char dsn[256];
    snprintf(dsn, sizeof(dsn),
             "host=127.0.0.1,127.0.0.1 port=%u,%u dbname=x user=x "
             "target_session_attrs=read-write",
             (unsigned)closed_port(), (unsigned)second);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct fl_pgwrite *w = NULL;
    char err[256];
    assert_int_equal(fl_pgwrite_create(&loop, dsn, NULL, "refused", &w, err, sizeof(err)), 0);
    struct outcome o = {0};
    assert_int_equal(fl_pgwrite_write(w, 1, fl_now_ms(), 1000, on_write, &o), 0);
    int accepted = -1;
    while (!o.done) {
        uv_run(&loop, UV_RUN_NOWAIT);
        if (accepted < 0)
            accepted = accept(lfd, NULL, NULL);
        usleep(1000);
    }
    fprintf(stderr, "write through a DSN whose first host refuses: %s (second host %s)\n", o.detail,
            accepted >= 0 ? "reached" : "never reached");
    fl_pgwrite_close(w, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    if (accepted >= 0)
        close(accepted);
    close(lfd);
    assert_false(o.ok);
    assert_true(accepted >= 0);
    /* ended by its timeout while the second host's startup was answered by
     * nobody, not by the first host's refusal */
    char want[96];
    snprintf(want, sizeof(want), "timeout after 1000 ms, connecting to 127.0.0.1:%u (host 2 of 2)",
             (unsigned)second);
    assert_string_equal(o.detail, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_first_host_moves_on),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
