/*
 * time.c - per-thread cached date strings (see time.h). The check is one time(2) call, which
 * is served by the vDSO without entering the kernel.
 */
#include "core/time.h"

#include <stdio.h>

static __thread struct pt_wallclock wc = {.sec = -1};

const struct pt_wallclock *pt_wallclock_now(void)
{
    time_t now = time(NULL);
    if (now != wc.sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        wc.http_date_len =
            strftime(wc.http_date, sizeof(wc.http_date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        wc.clf_date_len =
            strftime(wc.clf_date, sizeof(wc.clf_date), "%d/%b/%Y:%H:%M:%S +0000", &tm);
        wc.iso_date_len = strftime(wc.iso_date, sizeof(wc.iso_date), "%Y-%m-%dT%H:%M:%SZ", &tm);
        wc.sec = now;
    }
    return &wc;
}
