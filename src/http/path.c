/*
 * path.c - request path normalisation and wire encoding (see path.h).
 *
 * Routes match on one canonical form of the path, so that "/api", "/%61pi" and "/x/../api"
 * cannot be told apart by a route and slip past one meant to catch them. The canonical form:
 *
 *   - every percent escape is decoded except %2F ('/') and %25 ('%'), which stay encoded with
 *     upper-case hex. Decoding %2F would turn one segment into two (a different resource for
 *     most backends) and decoding %25 would make "%252F" indistinguishable from "%2F"; keeping
 *     both encoded keeps the canonical form unambiguous and re-encodable;
 *   - NUL and other control characters, raw or encoded, and malformed escapes ("%zz", "%4")
 *     reject the request (-1, a 400), as nginx does;
 *   - dot-segments are removed per RFC 3986 §5.2.4, after decoding, so "%2e%2e" counts as "..";
 *     a ".." that would climb above the root is rejected instead of being clamped, because a
 *     client that sends it is probing, not browsing;
 *   - empty segments ("//") collapse; a trailing slash is kept ("/a/" and "/a" differ).
 *
 * One pass over the input, writing to the caller's buffer: each segment is decoded in place at
 * the end of the output, then inspected; "." is dropped and ".." pops the previous segment by
 * scanning back to its '/'. Never allocates; thread-safe.
 *
 * pt_path_encode() is the inverse for the wire: the canonical form may hold bytes (space, '?',
 * '#', non-ASCII) that are not pchar, so they are percent-encoded again before the path is sent
 * to an upstream or put in a Location header. encode(normalise(p)) normalises back to
 * normalise(p); the fuzzer checks that.
 */
#include "http/path.h"

#include <stdbool.h>
#include <stddef.h>

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

ssize_t pt_path_normalize(const char *in, size_t len, char *out, size_t outlen)
{
    /* Output never exceeds the input length (escapes shrink or keep their size) plus the NUL. */
    if (len == 0 || in[0] != '/' || outlen < 2)
        return -1;
    size_t o = 0;
    out[o++] = '/';
    size_t i = 1;
    for (;;) {
        size_t seg = o; /* the segment being decoded starts here, just after a '/' */
        while (i < len && in[i] != '/') {
            unsigned char c = (unsigned char)in[i];
            if (c == '%') {
                int hi = i + 2 < len ? hexval((unsigned char)in[i + 1]) : -1;
                int lo = hi >= 0 ? hexval((unsigned char)in[i + 2]) : -1;
                if (lo < 0)
                    return -1;
                c = (unsigned char)(hi << 4 | lo);
                i += 3;
                if (c == '/' || c == '%') {
                    if (o + 3 >= outlen)
                        return -1;
                    out[o++] = '%';
                    out[o++] = '2';
                    out[o++] = c == '/' ? 'F' : '5';
                    continue;
                }
            } else {
                i++;
            }
            if (is_ctl(c) || o + 1 >= outlen)
                return -1;
            out[o++] = (char)c;
        }
        bool at_end = i >= len;
        size_t n = o - seg;
        if (n == 1 && out[seg] == '.') {
            o = seg; /* "/a/./b" -> "/a/b"; "/a/." -> "/a/" */
        } else if (n == 2 && out[seg] == '.' && out[seg + 1] == '.') {
            if (seg == 1)
                return -1; /* would climb above the root */
            o = seg - 1;   /* the '/' before ".." */
            while (out[o - 1] != '/')
                o--;
        } else if (n > 0 && !at_end) {
            if (o + 1 >= outlen)
                return -1;
            out[o++] = '/';
        }
        /* n == 0: an empty segment; its '/' is already written (collapses "//", keeps a
         * trailing slash). */
        if (at_end)
            break;
        i++; /* the '/' ending this segment */
    }
    out[o] = '\0';
    return (ssize_t)o;
}

/* RFC 3986 §3.3 pchar plus '/', and '%' (escapes kept by normalisation pass through). */
static bool is_wire_safe(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    switch (c) {
    case '-':
    case '.':
    case '_':
    case '~':
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
    case ':':
    case '@':
    case '/':
    case '%':
        return true;
    default:
        return false;
    }
}

/*
 * See path.h. Also NUL-terminates: out must have room for the encoded bytes and the NUL,
 * otherwise -1.
 */
ssize_t pt_path_encode(const char *in, size_t len, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (is_wire_safe(c)) {
            if (o + 1 >= outlen)
                return -1;
            out[o++] = (char)c;
        } else {
            if (o + 3 >= outlen)
                return -1;
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (o >= outlen)
        return -1;
    out[o] = '\0';
    return (ssize_t)o;
}
