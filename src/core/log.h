/*
 * log.h - the error log.
 *
 * One line per event on stderr: "2026-11-23T10:20:00.123Z level [worker] message". Lines are
 * formatted into a stack buffer and written with one write(2), so lines from different threads
 * never interleave. The level is a global that reload may change; reading it is a relaxed load.
 */
#ifndef PT_CORE_LOG_H
#define PT_CORE_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum pt_log_level { PT_LOG_ERROR = 0, PT_LOG_WARN = 1, PT_LOG_INFO = 2, PT_LOG_DEBUG = 3 };

extern int pt_log_level_cur; /* enum pt_log_level; written by the main thread only */

void pt_log_set_level(int level);
/* Parses "error|warn|info|debug"; returns the level or -1. */
int pt_log_level_parse(const char *s);
void pt_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* How many warn lines were written since the process started (all threads); `check --strict`
   compares it before and after a load. */
uint64_t pt_log_warnings(void);

#define pt_log(level, ...)                                                                         \
    do {                                                                                           \
        if ((level) <= pt_log_level_cur)                                                           \
            pt_log_write((level), __VA_ARGS__);                                                    \
    } while (0)
#define pt_log_error(...) pt_log(PT_LOG_ERROR, __VA_ARGS__)
#define pt_log_warn(...) pt_log(PT_LOG_WARN, __VA_ARGS__)
#define pt_log_info(...) pt_log(PT_LOG_INFO, __VA_ARGS__)
#define pt_log_debug(...) pt_log(PT_LOG_DEBUG, __VA_ARGS__)

/* A bound on how often one call site may log: a burst of PT_LOG_LIMIT_BURST lines per
   PT_LOG_LIMIT_WINDOW_MS, then silence until the window ends; the first line after it says how
   many were suppressed. The state is per thread (each call site of pt_log_ratelimited has its
   own _Thread_local one), so it needs no lock. Used for errors that a fault or an attack can
   repeat thousands of times a second (accept or connect failures). */
#define PT_LOG_LIMIT_BURST 5u
#define PT_LOG_LIMIT_WINDOW_MS 10000u

struct pt_log_limit {
    uint64_t window_start_ms; /* CLOCK_MONOTONIC ms when the current window began; 0 = none */
    uint32_t n_logged;        /* lines written in the current window */
    uint32_t n_suppressed;    /* lines dropped since the last one written */
};

/* Decides whether a line may be written now under lim. Returns true to write it, and then
   stores in *suppressed how many lines were dropped before it (the caller says so). */
bool pt_log_limit_allow(struct pt_log_limit *lim, uint64_t now_ms, uint32_t *suppressed);
void pt_log_write_limited(struct pt_log_limit *lim, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define pt_log_ratelimited(level, ...)                                                             \
    do {                                                                                           \
        static _Thread_local struct pt_log_limit pt_log_lim_;                                      \
        if ((level) <= pt_log_level_cur)                                                           \
            pt_log_write_limited(&pt_log_lim_, (level), __VA_ARGS__);                              \
    } while (0)

#endif
