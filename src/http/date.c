/*
 * date.c - HTTP-dates (RFC 9110 §5.6.7).
 *
 * The parser takes the exact lengths of the three forms (29 bytes for IMF-fixdate, 24 for
 * asctime, the weekday's length plus 24 for RFC 850) before reading any position, so it never
 * reads past its input; the fields are checked by hand rather than with strptime, which
 * depends on the locale and accepts more than the grammar. Both functions are pure and safe
 * on any thread; the static action (Last-Modified, If-Modified-Since, If-Range) and the cache
 * (Date, Expires, Last-Modified) use them.
 */
#include "http/date.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static const char wdays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const wdays_long[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                          "Thursday", "Friday", "Saturday"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static int month_of(const char *p)
{
    for (int i = 0; i < 12; i++)
        if (memcmp(p, months[i], 3) == 0)
            return i;
    return -1;
}

static bool num2(const char *p, int *v)
{
    if (!is_digit(p[0]) || !is_digit(p[1]))
        return false;
    *v = (p[0] - '0') * 10 + (p[1] - '0');
    return true;
}

/* "HH:MM:SS" at p (8 bytes). */
static bool hms(const char *p, struct tm *tm)
{
    return num2(p, &tm->tm_hour) && p[2] == ':' && num2(p + 3, &tm->tm_min) && p[5] == ':' &&
           num2(p + 6, &tm->tm_sec) && tm->tm_hour < 24 && tm->tm_min < 60 && tm->tm_sec < 61;
}

int pt_http_date_parse(const char *v, size_t n, time_t *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int y1, y2;
    if (n == 29 && v[3] == ',' && v[4] == ' ') {
        /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
        if (!num2(v + 5, &tm.tm_mday) || v[7] != ' ' || (tm.tm_mon = month_of(v + 8)) < 0 ||
            v[11] != ' ' || !num2(v + 12, &y1) || !num2(v + 14, &y2) || v[16] != ' ' ||
            !hms(v + 17, &tm) || memcmp(v + 25, " GMT", 4) != 0)
            return -1;
        tm.tm_year = y1 * 100 + y2 - 1900;
    } else if (n == 24 && v[3] == ' ') {
        /* asctime: Sun Nov  6 08:49:37 1994 */
        if ((tm.tm_mon = month_of(v + 4)) < 0 || v[7] != ' ')
            return -1;
        if (v[8] == ' ' && is_digit(v[9]))
            tm.tm_mday = v[9] - '0';
        else if (!num2(v + 8, &tm.tm_mday))
            return -1;
        if (v[10] != ' ' || !hms(v + 11, &tm) || v[19] != ' ' || !num2(v + 20, &y1) ||
            !num2(v + 22, &y2))
            return -1;
        tm.tm_year = y1 * 100 + y2 - 1900;
    } else {
        /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
        const char *comma = memchr(v, ',', n);
        size_t wl = comma ? (size_t)(comma - v) : 0;
        bool ok = false;
        for (int i = 0; i < 7 && comma; i++)
            ok |= strlen(wdays_long[i]) == wl && memcmp(v, wdays_long[i], wl) == 0;
        if (!ok || n != wl + 24)
            return -1;
        const char *p = comma + 1;
        if (p[0] != ' ' || !num2(p + 1, &tm.tm_mday) || p[3] != '-' ||
            (tm.tm_mon = month_of(p + 4)) < 0 || p[7] != '-' || !num2(p + 8, &y2) || p[10] != ' ' ||
            !hms(p + 11, &tm) || memcmp(p + 19, " GMT", 4) != 0)
            return -1;
        tm.tm_year = y2 < 70 ? y2 + 100 : y2; /* RFC 9110 §5.6.7: the nearest century */
    }
    if (tm.tm_mday < 1 || tm.tm_mday > 31)
        return -1;
    time_t r = timegm(&tm);
    if (r == (time_t)-1)
        return -1;
    *t = r;
    return 0;
}

size_t pt_http_date_fmt(char *buf, size_t cap, time_t t)
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0)
        return 0;
    int n = snprintf(buf, cap, "%s, %02d %s %04d %02d:%02d:%02d GMT", wdays[tm.tm_wday], tm.tm_mday,
                     months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}
