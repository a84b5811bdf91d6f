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
#include "http/date.h"

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

bool pt_static_if_range_ok(const char *v, size_t n, const char *etag, size_t etag_len, time_t mtime)
{
    struct pt_str s = trim(v, n);
    if (s.n == 0)
        return false;
    if (s.p[0] == '"' || (s.n >= 2 && s.p[0] == 'W' && s.p[1] == '/'))
        return s.p[0] == '"' && s.n == etag_len && memcmp(s.p, etag, etag_len) == 0;
    time_t t;
    return pt_http_date_parse(s.p, s.n, &t) == 0 && t == mtime;
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
