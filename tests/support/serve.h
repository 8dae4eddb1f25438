/* What the faultline serve integration tests (serve_test, serve_control_test,
 * serve_hooks_test, and in part serve_ui_test and serve_gameday_test) share:
 * the pause experiment they schedule, waiting on and dumping serve's log,
 * its exit, `faultline history --json`, a history row's fields, /metrics
 * samples, and the dummy process the runs pause. Every helper fails the
 * calling cmocka test (fail_msg, assert_*) with serve's log on stderr when
 * what it waits for does not come. */
#ifndef FL_TESTS_SERVE_H
#define FL_TESTS_SERVE_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

/* Writes exps/name.yaml: an experiment on the one host web1 (the agent at
 * 127.0.0.1:agent_port, key key_path) that pauses the process in pidfile for
 * hold, every `every`, with a tcp probe of the agent's own port (a service
 * that stays up). */
void serve_write_pause_experiment(const char *exps, const char *name, const char *key_path,
                                  uint16_t agent_port, const char *pidfile, const char *hold,
                                  const char *every);
/* The same with the schedule: block's lines as given (each indented two
 * spaces and ending in a newline: a cron, a timezone, missed:). */
void serve_write_pause_experiment_scheduled(const char *exps, const char *name,
                                            const char *key_path, uint16_t agent_port,
                                            const char *pidfile, const char *hold,
                                            const char *schedule);

/* serve's log (or any file) on stderr. */
void serve_dump_log(const char *log);

/* Waits up to ms for needle in log; fails the test with the log otherwise. */
void serve_wait_log(const char *log, const char *needle, int ms);

/* The exit status of a serve just stopped: its log dumped when it is not 0
 * (or FL_TEST_VERBOSE is set), and the test fails unless it is 0. */
void serve_check_exit(int status, const char *log);

/* `ctl_bin history --json --limit 0 --db db_url`, every row (the array);
 * fails the test when it does not exit 0 within timeout_ms or is not JSON. */
json_t *serve_history(const char *ctl_bin, const char *db_url, int timeout_ms);

/* A history row's (or any JSON object's) string field ("" when absent) and
 * integer field (-1 when absent). */
const char *row_str(json_t *row, const char *key);
int64_t row_num(json_t *row, const char *key);

/* The value of the /metrics sample line "NAME{LABELS} VALUE" whose
 * "NAME{LABELS} " is name_labels; fails the test when text has none. */
double serve_metric(const char *text, const char *name_labels);

/* Waits up to 20 s for the dummy to be stopped (a run has its fault on);
 * fails the test with serve's log otherwise. */
void serve_wait_paused(pid_t dummy, const char *log);

/* Fails the test when `ctl_bin agents --key key_path where` shows a
 * pause_process fault still active. */
void serve_assert_no_active_fault(const char *ctl_bin, const char *key_path, const char *where);

#endif
