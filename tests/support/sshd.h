/* A real OpenSSH server for tests: /usr/sbin/sshd on 127.0.0.1 and a free
 * port, in a private temporary directory holding its config, a generated
 * ed25519 host key, a user key whose public half is the only authorized
 * key, a known_hosts file that trusts the host key, and its log (-e). It
 * logs in as the user running the test (root). */
#ifndef FL_TESTS_SSHD_H
#define FL_TESTS_SSHD_H

#include <stdint.h>
#include <sys/types.h>

#include "tests/support/proc.h" /* test_free_port */

struct test_sshd {
    pid_t pid;
    uint16_t port;
    char dir[256];         /* private; removed by test_sshd_stop */
    char user_key[300];    /* DIR/id_ed25519 (authorized) */
    char known_hosts[300]; /* DIR/known_hosts: "[127.0.0.1]:PORT ssh-ed25519 ..." */
    char host_line[600];   /* that line, without the newline */
    char log[300];
};

/* 0, or -1 after printing why. */
int test_sshd_start(struct test_sshd *s);

/* Kills sshd and every session it serves (as a host reboot or an sshd
 * crash would: the clients' connections drop), then starts it again on the
 * same port with the same keys. 0, or -1 after printing why. */
int test_sshd_restart(struct test_sshd *s);

/* Stops sshd and removes the directory. */
void test_sshd_stop(struct test_sshd *s);

/* How many times needle occurs in sshd's log. */
int test_sshd_count(const struct test_sshd *s, const char *needle);

/* Removes path and everything under it. */
void test_rm_rf(const char *path);

#endif
