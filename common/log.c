#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "common/clock.h"

static const char *log_program = "faultline";
static enum fl_log_level log_level = FL_LOG_INFO;

static const char *const level_names[] = {
    [FL_LOG_DEBUG] = "debug",
    [FL_LOG_INFO] = "info",
    [FL_LOG_WARN] = "warn",
    [FL_LOG_ERROR] = "error",
};

void fl_log_init(const char *program, enum fl_log_level level)
{
    log_program = program;
    log_level = level;
}

void fl_log_set_level(enum fl_log_level level)
{
    log_level = level;
}

enum fl_log_level fl_log_get_level(void)
{
    return log_level;
}

int fl_log_parse_level(const char *name, enum fl_log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum fl_log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

void fl_log(enum fl_log_level level, const char *fmt, ...)
{
    if (level < log_level)
        return;

    char line[2048];
    char stamp[40];
    fl_format_rfc3339(fl_now_ms(), stamp, sizeof(stamp));
    int n = snprintf(line, sizeof(line), "%s %s[%d] %s: ", stamp, log_program, (int)getpid(),
                     level_names[level]);
    if (n < 0)
        return;

    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;

    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2; /* truncated */
    /* Never let a peer-supplied string forge extra log lines. */
    for (size_t i = (size_t)n; i < len; i++) {
        unsigned char ch = (unsigned char)line[i];
        if (ch < 0x20 || ch == 0x7f)
            line[i] = '?';
    }
    line[len++] = '\n';
    /* One write per line, so lines from several processes do not interleave. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

const char *fl_strerror(int status)
{
    if (status >= 0)
        return "success";
    /* libuv's codes are negated errno values on Unix, plus a few of its own. */
    return uv_strerror(status);
}
