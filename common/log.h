/* Logging: one line per event on stderr, with an RFC 3339 timestamp. */
#ifndef FL_COMMON_LOG_H
#define FL_COMMON_LOG_H

enum fl_log_level {
    FL_LOG_DEBUG,
    FL_LOG_INFO,
    FL_LOG_WARN,
    FL_LOG_ERROR,
};

void fl_log_init(const char *program, enum fl_log_level level);
void fl_log_set_level(enum fl_log_level level);
enum fl_log_level fl_log_get_level(void);
/* "debug", "info", "warn", "error" -> 0, or -EINVAL. */
int fl_log_parse_level(const char *name, enum fl_log_level *out);

void fl_log(enum fl_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define fl_debug(...) fl_log(FL_LOG_DEBUG, __VA_ARGS__)
#define fl_info(...) fl_log(FL_LOG_INFO, __VA_ARGS__)
#define fl_warn(...) fl_log(FL_LOG_WARN, __VA_ARGS__)
#define fl_error(...) fl_log(FL_LOG_ERROR, __VA_ARGS__)

/* A message for a negative errno-style status code (libuv's codes included). */
const char *fl_strerror(int status);

#endif
