/*
 * log.h - the error log.
 *
 * One line per event on stderr: "2026-11-23T10:20:00.123Z level [worker] message". Lines are
 * formatted into a stack buffer and written with one write(2), so lines from different threads
 * never interleave. The level is a global that reload may change; reading it is a relaxed load.
 */
#ifndef PT_CORE_LOG_H
#define PT_CORE_LOG_H

enum pt_log_level { PT_LOG_ERROR = 0, PT_LOG_WARN = 1, PT_LOG_INFO = 2, PT_LOG_DEBUG = 3 };

extern int pt_log_level_cur; /* enum pt_log_level; written by the main thread only */

void pt_log_set_level(int level);
/* Parses "error|warn|info|debug"; returns the level or -1. */
int pt_log_level_parse(const char *s);
void pt_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pt_log(level, ...)                                                                         \
    do {                                                                                           \
        if ((level) <= pt_log_level_cur)                                                           \
            pt_log_write((level), __VA_ARGS__);                                                    \
    } while (0)
#define pt_log_error(...) pt_log(PT_LOG_ERROR, __VA_ARGS__)
#define pt_log_warn(...) pt_log(PT_LOG_WARN, __VA_ARGS__)
#define pt_log_info(...) pt_log(PT_LOG_INFO, __VA_ARGS__)
#define pt_log_debug(...) pt_log(PT_LOG_DEBUG, __VA_ARGS__)

#endif
