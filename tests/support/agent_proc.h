/* A real faultline-agent for tests: started on 127.0.0.1 with an ephemeral
 * port, its own state directory and log, in a directory the test owns. */
#ifndef FL_TESTS_AGENT_PROC_H
#define FL_TESTS_AGENT_PROC_H

#include <stdint.h>
#include <sys/types.h>

struct test_agent {
    pid_t pid;
    pid_t guardian_pid;
    uint16_t port;
    char where[32]; /* "127.0.0.1:PORT" */
    char log[512];
    char state_dir[512];
};

/* Starts bin with --key key --listen 127.0.0.1:0 --state-dir DIR/state-NAME
 * --log-level debug and extra (NULL-terminated, may be NULL), logging to
 * DIR/NAME.log, inside network namespace netns when not NULL (through
 * `ip netns exec`, which execs: the pid is the agent's); waits until it
 * listens. 0 or -1. */
int test_agent_start(struct test_agent *a, const char *bin, const char *key, const char *dir,
                     const char *name, const char *netns, const char *const *extra);

/* Prints the agent's log to stderr. */
void test_agent_dump_log(const struct test_agent *a);

#endif
