#include "tests/support/serve.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tests/support/proc.h"

static char *arg(const char *a)
{
    return (char *)(uintptr_t)a;
}

void serve_write_pause_experiment_scheduled(const char *exps, const char *name,
                                            const char *key_path, uint16_t agent_port,
                                            const char *pidfile, const char *hold,
                                            const char *schedule)
{
    /* atomically (a temporary file renamed over it): serve may be watching
     * the directory and must never read half a file */
    char path[400], tmp[420];
    snprintf(path, sizeof(path), "%s/%s.yaml", exps, name);
    snprintf(tmp, sizeof(tmp), "%s/.%s.yaml.tmp", exps, name);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fprintf(f,
            "version: 1\n"
            "name: %s\n"
            "inventory:\n"
            "  key_file: %s\n"
            "  hosts:\n"
            "    web1: { address: 127.0.0.1, port: %u }\n"
            "probes:\n"
            "  - name: up\n"
            "    tcp: { address: \"127.0.0.1:%u\" }\n"
            "    interval: 100ms\n"
            "    timeout: 100ms\n"
            "steady_state: [up]\n"
            "faults:\n"
            "  - name: pause-dummy\n"
            "    target: { hosts: [web1] }\n"
            "    pause_process: { pidfile: %s }\n"
            "    duration: %s\n"
            "recovery: { probes: [up], timeout: 5s }\n"
            "schedule:\n%s",
            name, key_path, (unsigned)agent_port, (unsigned)agent_port, pidfile, hold, schedule);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, path), 0);
}

void serve_write_pause_experiment(const char *exps, const char *name, const char *key_path,
                                  uint16_t agent_port, const char *pidfile, const char *hold,
                                  const char *every)
{
    char schedule[128];
    snprintf(schedule, sizeof(schedule), "  every: %s\n  starting_deadline: 1s\n", every);
    serve_write_pause_experiment_scheduled(exps, name, key_path, agent_port, pidfile, hold,
                                           schedule);
}

void serve_dump_log(const char *log)
{
    static char buf[1 << 18];
    file_wait_for(log, "\x01", buf, sizeof(buf), 0);
    fprintf(stderr, "---- %s ----\n%s\n----\n", log, buf);
}

void serve_wait_log(const char *log, const char *needle, int ms)
{
    static char buf[1 << 16];
    if (file_wait_for(log, needle, buf, sizeof(buf), ms) == NULL) {
        serve_dump_log(log);
        fail_msg("no '%s' in %s within %d ms", needle, log, ms);
    }
}

void serve_check_exit(int status, const char *log)
{
    if (status != 0 || getenv("FL_TEST_VERBOSE"))
        serve_dump_log(log);
    assert_int_equal(status, 0);
}

json_t *serve_history(const char *ctl_bin, const char *db_url, int timeout_ms)
{
    static char out[1 << 22];
    char *argv[] = {arg(ctl_bin), arg("history"), arg("--json"), arg("--limit"),
                    arg("0"),     arg("--db"),    arg(db_url),   NULL};
    assert_int_equal(proc_run(argv, out, sizeof(out), timeout_ms), 0);
    json_error_t jerr;
    json_t *rows = json_loads(out, 0, &jerr);
    if (rows == NULL)
        fprintf(stderr, "history --json: %s\n%s\n", jerr.text, out);
    assert_non_null(rows);
    return rows;
}

const char *row_str(json_t *row, const char *key)
{
    const char *v = json_string_value(json_object_get(row, key));
    return v ? v : "";
}

int64_t row_num(json_t *row, const char *key)
{
    json_t *v = json_object_get(row, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

double serve_metric(const char *text, const char *name_labels)
{
    const char *p = strstr(text, name_labels);
    if (p == NULL)
        fail_msg("no %s in /metrics:\n%s", name_labels, text);
    return strtod(p + strlen(name_labels), NULL);
}

void serve_wait_paused(pid_t dummy, const char *log)
{
    if (proc_wait_state(dummy, 'T', 20000) != 'T') {
        serve_dump_log(log);
        fail_msg("no run paused the dummy within 20 s");
    }
}

void serve_assert_no_active_fault(const char *ctl_bin, const char *key_path, const char *where)
{
    char out[8192];
    char *ag[] = {arg(ctl_bin), arg("agents"), arg("--key"), arg(key_path), arg(where), NULL};
    assert_int_equal(proc_run(ag, out, sizeof(out), 10000), 0);
    if (strstr(out, "pause_process  active") != NULL)
        fail_msg("the agent still holds the fault:\n%s", out);
}
