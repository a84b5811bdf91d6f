/*
 * etag.c - entity-tag lists (RFC 9110 §8.8.3).
 *
 * The list is walked once, tag by tag, without copying: each element is "*", or an optional
 * "W/" and a quoted opaque tag (which may hold commas, so the closing quote, not the next
 * comma, ends it). A list that breaks the grammar matches nothing, which makes a malformed
 * If-None-Match fail safe (the full response is sent). Used by the static action and the cache.
 */
#include "http/etag.h"

#include <string.h>

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 9110 §8.8.3.2: weak comparison ignores "W/" on either side; strong needs both strong. */
bool pt_http_etag_list_match(struct pt_str v, const char *etag, size_t elen, bool strong)
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
