/*
 * static_parse.c - the header values the static action reads and writes: Range, HTTP-dates,
 * entity-tag lists, If-Range, and the q-value lists of Accept and Accept-Encoding.
 *
 * Pure functions over the caller's bytes: they never allocate, never read past v + n, keep no
 * state and are safe on any thread. A malformed value is read the way RFC 9110 tells a
 * recipient to (a Range it cannot parse is ignored and the whole file sent, an If-Range it
 * cannot parse is false, a bad q is 0), never as an error of the request. static.c makes the
 * decisions with them; the exported parsers are also unit-tested and fuzzed on their own.
 */
#include "handler/static_internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/common.h"

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads decimal digits at *p (at least one), saturating at UINT64_MAX. */
static bool read_u64(const char **p, const char *end, uint64_t *v)
{
    const char *s = *p;
    uint64_t x = 0;
    while (*p < end && is_digit(**p)) {
        unsigned d = (unsigned)(**p - '0');
        x = x > (UINT64_MAX - d) / 10 ? UINT64_MAX : x * 10 + d;
        (*p)++;
    }
    *v = x;
    return *p > s;
}

int pt_static_parse_range(const char *v, size_t n, uint64_t size, uint64_t *off, uint64_t *len)
{
    const char *p = v, *end = v + n;
    if (n < 6 || strncasecmp(v, "bytes=", 6) != 0)
        return PT_STATIC_RANGE_WHOLE;
    p += 6;
    int specs = 0;
    bool suffix = false, has_last = false;
    uint64_t first = 0, last = 0;
    for (;;) {
        while (p < end && (is_ows(*p) || *p == ','))
            p++; /* empty list elements are allowed (RFC 9110 §5.6.1) */
        if (p == end)
            break;
        if (++specs > 1)
            return PT_STATIC_RANGE_WHOLE; /* several ranges: the whole file (documented) */
        if (*p == '-') {
            p++;
            suffix = true;
            if (!read_u64(&p, end, &last))
                return PT_STATIC_RANGE_WHOLE;
        } else {
            if (!read_u64(&p, end, &first) || p == end || *p != '-')
                return PT_STATIC_RANGE_WHOLE;
            p++;
            has_last = read_u64(&p, end, &last);
            if (has_last && last < first)
                return PT_STATIC_RANGE_WHOLE; /* invalid range-spec: ignore the header */
        }
        while (p < end && is_ows(*p))
            p++;
        if (p < end && *p != ',')
            return PT_STATIC_RANGE_WHOLE;
    }
    if (specs == 0)
        return PT_STATIC_RANGE_WHOLE;
    if (suffix) {
        if (last == 0 || size == 0)
            return PT_STATIC_RANGE_UNSATISFIABLE;
        *len = last < size ? last : size;
        *off = size - *len;
        return PT_STATIC_RANGE_PARTIAL;
    }
    if (first >= size)
        return PT_STATIC_RANGE_UNSATISFIABLE;
    if (!has_last || last > size - 1)
        last = size - 1;
    *off = first;
    *len = last - first + 1;
    return PT_STATIC_RANGE_PARTIAL;
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

int pt_static_parse_http_date(const char *v, size_t n, time_t *t)
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

size_t pt_static_fmt_http_date(char *buf, size_t cap, time_t t)
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0)
        return 0;
    int n = snprintf(buf, cap, "%s, %02d %s %04d %02d:%02d:%02d GMT", wdays[tm.tm_wday], tm.tm_mday,
                     months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static struct pt_str trim(const char *p, size_t n)
{
    while (n && is_ows(*p)) {
        p++;
        n--;
    }
    while (n && is_ows(p[n - 1]))
        n--;
    return (struct pt_str){p, n};
}

/*
 * Does the entity-tag list v (If-Match / If-None-Match) hold "*" or a tag matching etag?
 * strong: RFC 9110 §8.8.3.2 strong comparison (both strong and equal); else weak (opaque
 * parts equal). A malformed list matches nothing.
 */
bool pt_static_etag_list_match(struct pt_str v, const char *etag, size_t elen, bool strong)
{
    const char *p = v.p, *end = v.p + v.n;
    for (;;) {
        while (p < end && (is_ows(*p) || *p == ','))
            p++;
        if (p == end)
            return false;
        if (*p == '*')
            return true;
        bool weak = false;
        if (end - p >= 2 && p[0] == 'W' && p[1] == '/') {
            weak = true;
            p += 2;
        }
        if (p == end || *p != '"')
            return false;
        const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
        if (!q)
            return false;
        size_t tl = (size_t)(q - p + 1);
        if (tl == elen && memcmp(p, etag, elen) == 0 && !(strong && weak))
            return true;
        p = q + 1;
        while (p < end && is_ows(*p))
            p++;
        if (p < end && *p != ',')
            return false;
    }
}

bool pt_static_if_range_ok(const char *v, size_t n, const char *etag, size_t etag_len, time_t mtime)
{
    struct pt_str s = trim(v, n);
    if (s.n == 0)
        return false;
    if (s.p[0] == '"' || (s.n >= 2 && s.p[0] == 'W' && s.p[1] == '/'))
        return s.p[0] == '"' && s.n == etag_len && memcmp(s.p, etag, etag_len) == 0;
    time_t t;
    return pt_static_parse_http_date(s.p, s.n, &t) == 0 && t == mtime;
}

/*
 * Iterates a comma list of "token[;params]" (Accept, Accept-Encoding), returning each
 * element's first token and its q in thousandths (1000 when absent, 0 when malformed).
 */
bool pt_static_next_qelem(const char **pp, const char *end, struct pt_str *name, int *q)
{
    const char *p = *pp;
    while (p < end && (is_ows(*p) || *p == ','))
        p++;
    if (p == end)
        return false;
    const char *s = p;
    while (p < end && *p != ',' && *p != ';' && !is_ows(*p))
        p++;
    *name = (struct pt_str){s, (size_t)(p - s)};
    *q = 1000;
    bool in_quote = false;
    while (p < end && (in_quote || *p != ',')) {
        if (*p == '"')
            in_quote = !in_quote;
        else if (in_quote && *p == '\\' && p + 1 < end)
            p++;
        else if (!in_quote && *p == ';') {
            const char *k = p + 1;
            while (k < end && is_ows(*k))
                k++;
            if (end - k >= 2 && (k[0] == 'q' || k[0] == 'Q') && k[1] == '=') {
                k += 2;
                int val = 0;
                if (k < end && (*k == '0' || *k == '1')) {
                    val = (*k - '0') * 1000;
                    k++;
                    if (k < end && *k == '.') {
                        k++;
                        int scale = 100;
                        while (k < end && is_digit(*k) && scale > 0) {
                            val += (*k - '0') * scale;
                            scale /= 10;
                            k++;
                        }
                    }
                    if (val > 1000)
                        val = 0;
                }
                *q = val;
            }
        }
        p++;
    }
    *pp = p;
    return true;
}

/* Accept names text/html with q > 0 (the spa fallback serves HTML only to HTML readers). */
bool pt_static_accepts_html(struct pt_str accept)
{
    const char *p = accept.p, *end = accept.p + accept.n;
    struct pt_str name;
    int q;
    if (!p)
        return false;
    while (pt_static_next_qelem(&p, end, &name, &q))
        if (PT_STR_CASEEQ_LIT(name, "text/html") && q > 0)
            return true;
    return false;
}
