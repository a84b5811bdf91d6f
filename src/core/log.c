/*
 * log.c - the error log (see log.h).
 *
 * Each line is built in a stack buffer and written with a single write(2) to stderr, which
 * keeps lines from different threads whole (stderr is unbuffered in stdio terms, and a write
 * of under PIPE_BUF bytes to a pipe is atomic). Long messages are truncated, never split.
 */
#include "core/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"

int pt_log_level_cur = PT_LOG_INFO;
static uint64_t n_warnings; /* warn lines written, read and added to atomically */

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void pt_log_set_level(int level)
{
    if (level >= PT_LOG_ERROR && level <= PT_LOG_DEBUG)
        __atomic_store_n(&pt_log_level_cur, level, __ATOMIC_RELAXED);
}

int pt_log_level_parse(const char *s)
{
    for (size_t i = 0; i < PT_ARRAY_LEN(level_names); i++)
        if (strcmp(s, level_names[i]) == 0)
            return (int)i;
    return -1;
}

uint64_t pt_log_warnings(void)
{
    return __atomic_load_n(&n_warnings, __ATOMIC_RELAXED);
}

void pt_log_write(int level, const char *fmt, ...)
{
    if (level == PT_LOG_WARN)
        __atomic_fetch_add(&n_warnings, 1, __ATOMIC_RELAXED);
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += snprintf(line + n, sizeof(line) - (size_t)n, ".%03ldZ %s ", ts.tv_nsec / 1000000,
                  level_names[level < 0   ? 0
                              : level > 3 ? 3
                                          : level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += m;
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

bool pt_log_limit_allow(struct pt_log_limit *lim, uint64_t now_ms, uint32_t *suppressed)
{
    if (lim->window_start_ms == 0 || now_ms - lim->window_start_ms >= PT_LOG_LIMIT_WINDOW_MS) {
        lim->window_start_ms = now_ms ? now_ms : 1;
        lim->n_logged = 0;
    }
    if (lim->n_logged >= PT_LOG_LIMIT_BURST) {
        lim->n_suppressed++;
        return false;
    }
    lim->n_logged++;
    *suppressed = lim->n_suppressed;
    lim->n_suppressed = 0;
    return true;
}

void pt_log_write_limited(struct pt_log_limit *lim, int level, const char *fmt, ...)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    uint32_t suppressed = 0;
    if (!pt_log_limit_allow(lim, now_ms, &suppressed))
        return;
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (m < 0)
        msg[0] = '\0';
    if (suppressed)
        pt_log_write(level, "%s (%u similar lines suppressed)", msg, suppressed);
    else
        pt_log_write(level, "%s", msg);
}

void pt_bug(const char *file, int line, const char *cond)
{
    pt_log_write(PT_LOG_ERROR, "BUG at %s:%d: %s", file, line, cond);
    abort();
}
