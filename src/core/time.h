/*
 * time.h - wall-clock strings cached per second, per thread.
 *
 * Formatting a date costs more than parsing a whole request head, and every response needs one
 * (Date) and every access-log line another. Each thread formats them once per second.
 */
#ifndef PT_CORE_TIME_H
#define PT_CORE_TIME_H

#include <stddef.h>
#include <time.h>

struct pt_wallclock {
    time_t sec;         /* second these strings describe */
    char http_date[32]; /* IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 §5.6.7) */
    size_t http_date_len;
    char clf_date[32]; /* access log, "23/Nov/2026:10:20:00 +0000" */
    size_t clf_date_len;
    char iso_date[32]; /* JSON log, "2026-11-23T10:20:00Z" */
    size_t iso_date_len;
};

/* Returns this thread's strings for the current second (refreshed when the second changes). */
const struct pt_wallclock *pt_wallclock_now(void);

#endif
