/* Running the real binaries from tests: no shell, output captured. */
#ifndef FL_TESTS_PROC_H
#define FL_TESTS_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Runs argv (NULL-terminated) to completion within timeout_ms, stdout and
 * stderr captured together into out (NUL-terminated, truncated to cap).
 * Returns the exit status, 128+signal when killed, or -1 when it could not
 * run or timed out. */
int proc_run(char *const argv[], char *out, size_t cap, int timeout_ms);

/* Starts argv in the background with stdout and stderr appended to log_path.
 * It gets SIGTERM should the test die first (an ASan abort, a timeout):
 * a crashed test must not leave a server listening behind it. */
pid_t proc_start(char *const argv[], const char *log_path);

/* Waits up to timeout_ms for pid to exit; returns its status as proc_run does,
 * or -1 on timeout (the process is left running). */
int proc_wait(pid_t pid, int timeout_ms);

/* Sends sig and waits; SIGKILL after timeout_ms. Returns the status. */
int proc_stop(pid_t pid, int sig, int timeout_ms);

/* Waits up to timeout_ms for needle to appear in the file; returns a pointer
 * just after it within buf (which holds the file), or NULL. */
const char *file_wait_for(const char *path, const char *needle, char *buf, size_t cap,
                          int timeout_ms);

/* A process's one-letter state ('S', 'T' for stopped, 'Z' ...), 0 when gone. */
char proc_state_of(pid_t pid);
/* Polls pid's state until it is want or ms have passed; the last state read.
 * (SIGSTOP takes effect once the target is next scheduled: on a busy machine
 * /proc can still say R for a moment after the signal was sent.) */
char proc_wait_state(pid_t pid, char want, int ms);

void sleep_ms(int ms);

/* A loopback TCP port that was free a moment ago. */
uint16_t test_free_port(void);

#endif
