/*
 * h1_parse.c - HTTP/1.1 message heads and the chunked body decoder (RFC 9112).
 *
 * Three pieces share one character-class table:
 *
 *   pt_h1_find_head_end()   memchr() for LF from where the last call stopped; at each LF it looks
 *                           back one or two bytes for "\n\n" or "\n\r\n". So every byte is looked
 *                           at once however the head trickles in, and a head that ends in bare LFs
 *                           is still handed to the parser, which rejects it instead of the
 *                           connection waiting for a CRLF CRLF that will never come.
 *   pt_h1_parse_request()   one forward pass over a complete head: request line, then header
 *   pt_h1_parse_response()  lines; each header is classified by length and name as it is stored
 *                           so the framing facts (Content-Length, Transfer-Encoding, Connection,
 *                           Host, Upgrade, Expect) come out of the same pass. No allocation: the
 *                           caller's array receives slices into the caller's buffer.
 *   pt_h1_chunked_decode()  a byte-level state machine for the size lines, CRLFs and trailers, and
 *                           one memmove() per chunk for the data; its whole state lives in
 *                           struct pt_h1_chunked so a call may end at any byte.
 *
 * Chunked decoder states (one byte moves one arrow; DATA moves whole runs):
 *
 *   SIZE0 -hex-> SIZE -hex-> SIZE
 *                SIZE -SP/HT-> EXT_BWS -SP/HT-> EXT_BWS;  SIZE|EXT_BWS -;-> EXT -char-> EXT
 *                SIZE|EXT -CR-> SIZE_LF -LF-> DATA (size > 0) | TR_START (size 0)
 *   DATA -(size bytes)-> DATA_CR -CR-> DATA_LF -LF-> SIZE0
 *   TR_START -tchar-> TR_NAME -:-> TR_VALUE -CR-> TR_LF -LF-> TR_START
 *   TR_START -CR-> FINAL_LF -LF-> DONE;            any unexpected byte -> ERROR (sticky)
 *
 * Strictness is the point (RFC 9112 §11.2): a proxy that accepts what its backend reads
 * differently - two lengths, a bare LF, a space before a colon, a folded line - is the
 * instrument of request smuggling, so anything RFC 9112 allows a recipient to reject is rejected
 * here, and the few things it asks recipients to tolerate (one empty line before the request
 * line, empty list elements) are tolerated.
 *
 * Speed: header values and the request-target, the long runs of a head, are skipped 16 bytes at
 * a time with SSE2 (baseline on x86-64; a table loop elsewhere and for the tails); names and the
 * rare slow paths use the table. Rejected: SSE4.2 PCMPESTRI (not baseline, and SSE2 compares
 * already do a 16-byte block in a few instructions); a lenient mode (one parser, one behaviour).
 * Thread-safe: no state outside the caller's structures.
 */
#include "http/h1_parse.h"

#include <limits.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Character classes (bits of cls[]). */
#define C_TCHAR 0x01  /* token character (RFC 9110 §5.6.2) */
#define C_VCHAR 0x02  /* visible ASCII 0x21..0x7E: request-target and version bytes */
#define C_FIELD 0x04  /* field-value byte: VCHAR, obs-text, SP, HT (RFC 9110 §5.5) */
#define C_HEX 0x08    /* hex digit */
#define C_REG 0x10    /* reg-name byte: unreserved, sub-delims, '%' (RFC 3986 §3.2.2) */
#define C_SCHEME 0x20 /* scheme byte after the first: ALPHA DIGIT + - . */
#define C_DIGIT 0x40  /* decimal digit */

/* clang-format off */
static const unsigned char cls[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, /* 00 */
    0, 0x04, 0, 0, 0, 0, 0, 0, /* 08 */
    0, 0, 0, 0, 0, 0, 0, 0, /* 10 */
    0, 0, 0, 0, 0, 0, 0, 0, /* 18 */
    0x04, 0x17, 0x06, 0x07, 0x17, 0x17, 0x17, 0x17, /* 20 */
    0x16, 0x16, 0x17, 0x37, 0x16, 0x37, 0x37, 0x06, /* 28 */
    0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, /* 30 */
    0x7f, 0x7f, 0x06, 0x16, 0x06, 0x16, 0x06, 0x06, /* 38 */
    0x06, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x37, /* 40 */
    0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, /* 48 */
    0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, /* 50 */
    0x37, 0x37, 0x37, 0x06, 0x06, 0x06, 0x07, 0x17, /* 58 */
    0x07, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x37, /* 60 */
    0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, /* 68 */
    0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, 0x37, /* 70 */
    0x37, 0x37, 0x37, 0x06, 0x07, 0x06, 0x17, 0, /* 78 */
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 80 */
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 88 */
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 90 */
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 98 */
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* a0 */
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* a8 */
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* b0 */
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* b8 */
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* c0 */
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* c8 */
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* d0 */
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* d8 */
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* e0 */
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* e8 */
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* f0 */
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* f8 */
};
/* clang-format on */

/* Largest Content-Length or chunk size accepted: far past any real body, far from overflow. */
#define SIZE_LIMIT ((uint64_t)1 << 62)
/* Longest chunk-size line, extensions included (RFC 9112 §7.1.1 sets no bound; we must). */
#define CHUNK_LINE_MAX 4096
#define TRAILER_MAX_DEFAULT PT_H1_TRAILER_MAX_DEFAULT

/*
 * Skips field-value bytes (VCHAR, obs-text, SP, HT) and returns the first other byte or end.
 * With SSE2 (every x86-64) 16 bytes are tested at once for a control byte or DEL; HT is the one
 * control byte allowed, so it drops to the table and the wide loop resumes after it.
 */
static inline const unsigned char *skip_field(const unsigned char *p, const unsigned char *end)
{
    for (;;) {
#if defined(__SSE2__)
        const __m128i ctl = _mm_set1_epi8(0x1f), del = _mm_set1_epi8(0x7f);
        while (end - p >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
            __m128i bad =
                _mm_or_si128(_mm_cmpeq_epi8(_mm_max_epu8(v, ctl), ctl), _mm_cmpeq_epi8(v, del));
            unsigned m = (unsigned)_mm_movemask_epi8(bad);
            if (m != 0) {
                p += __builtin_ctz(m);
                break;
            }
            p += 16;
        }
#endif
        while (p < end && (cls[*p] & C_FIELD) && *p != '\t')
            p++;
        if (p == end || *p != '\t')
            return p;
        p++;
    }
}

/* Skips visible ASCII (request-target bytes), 16 at a time with SSE2. */
static inline const unsigned char *skip_vchar(const unsigned char *p, const unsigned char *end)
{
#if defined(__SSE2__)
    /* As signed bytes, VCHAR is 0x21..0x7E: everything below 0x21 (obs-text is negative) or
     * equal to 0x7F stops the scan. */
    const __m128i lo = _mm_set1_epi8(0x21), del = _mm_set1_epi8(0x7f);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i bad = _mm_or_si128(_mm_cmplt_epi8(v, lo), _mm_cmpeq_epi8(v, del));
        unsigned m = (unsigned)_mm_movemask_epi8(bad);
        if (m != 0)
            return p + __builtin_ctz(m);
        p += 16;
    }
#endif
    while (p < end && (cls[*p] & C_VCHAR))
        p++;
    return p;
}

static inline bool is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/*
 * Case-insensitive compare of n validated bytes (tokens or field values: no CR, no controls)
 * with a lower-case literal of letters, digits and '-'. OR-ing 0x20 folds letters and leaves
 * digits and '-' alone; the only other bytes it could confuse with them are controls, which the
 * caller has already excluded.
 */
static inline bool lower_eq(const unsigned char *p, const char *lit, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((p[i] | 0x20) != (unsigned char)lit[i])
            return false;
    }
    return true;
}

/*
 * Contract in h1_parse.h. buf must hold the whole message from its first byte on every call
 * (the look-back reads up to two bytes before the resume point). On success *scanned is the head
 * length; a *scanned beyond len is clamped. Never blocks, never allocates.
 */
ssize_t pt_h1_find_head_end(const char *buf, size_t len, size_t *scanned)
{
    size_t i = *scanned;

    if (i > len)
        i = len;
    while (i < len) {
        const char *lf = memchr(buf + i, '\n', len - i);
        if (lf == NULL)
            break;
        i = (size_t)(lf - buf);
        /* "\n\n" and "\r\n\n" end with LF LF; "\r\n\r\n" and "\n\r\n" with LF CR LF. */
        if ((i >= 1 && buf[i - 1] == '\n') ||
            (i >= 2 && buf[i - 1] == '\r' && buf[i - 2] == '\n')) {
            *scanned = i + 1;
            return (ssize_t)(i + 1);
        }
        i++;
    }
    *scanned = len;
    return PT_H1_INCOMPLETE;
}

/* Contract in h1_parse.h. Case-sensitive (RFC 9110 §9.1): "get" is PT_METHOD_OTHER. */
int pt_http_method_id(const char *p, size_t n)
{
    switch (n) {
    case 3:
        if (memcmp(p, "GET", 3) == 0)
            return PT_METHOD_GET;
        if (memcmp(p, "PUT", 3) == 0)
            return PT_METHOD_PUT;
        break;
    case 4:
        if (memcmp(p, "HEAD", 4) == 0)
            return PT_METHOD_HEAD;
        if (memcmp(p, "POST", 4) == 0)
            return PT_METHOD_POST;
        break;
    case 5:
        if (memcmp(p, "TRACE", 5) == 0)
            return PT_METHOD_TRACE;
        if (memcmp(p, "PATCH", 5) == 0)
            return PT_METHOD_PATCH;
        break;
    case 6:
        if (memcmp(p, "DELETE", 6) == 0)
            return PT_METHOD_DELETE;
        break;
    case 7:
        if (memcmp(p, "CONNECT", 7) == 0)
            return PT_METHOD_CONNECT;
        if (memcmp(p, "OPTIONS", 7) == 0)
            return PT_METHOD_OPTIONS;
        break;
    default:
        break;
    }
    return PT_METHOD_OTHER;
}

/*
 * uri-host [ ":" port ] (RFC 9110 §7.2, RFC 3986 §3.2.2): a reg-name or IPv4 address, or an
 * IPv6 literal in brackets; port up to 5 digits and at most 65535. userinfo ("@") is refused
 * (RFC 9110 §4.2.4), as is IPvFuture. The host part must not be empty.
 */
static bool host_ok(const unsigned char *p, size_t n, bool need_port)
{
    size_t i = 0;

    if (n == 0)
        return false;
    if (p[0] == '[') {
        i = 1;
        while (i < n && ((cls[p[i]] & C_HEX) || p[i] == ':' || p[i] == '.'))
            i++;
        if (i == 1 || i == n || p[i] != ']')
            return false;
        i++;
    } else {
        while (i < n && (cls[p[i]] & C_REG))
            i++;
        if (i == 0)
            return false;
    }
    if (i == n)
        return !need_port;
    if (p[i] != ':')
        return false;
    i++;
    if (i == n)
        return !need_port; /* port = *DIGIT: "host:" is allowed when a port is optional */
    if (n - i > 5)
        return false;
    unsigned port = 0;
    for (; i < n; i++) {
        if (!(cls[p[i]] & C_DIGIT))
            return false;
        port = port * 10 + (unsigned)(p[i] - '0');
    }
    return port <= 65535;
}

/*
 * The four request-target forms (RFC 9112 §3.2). The bytes are already known to be visible
 * ASCII. origin-form for everything but CONNECT; authority-form only and always for CONNECT;
 * "*" only for OPTIONS; absolute-form "scheme://authority[/path][?query]" for any method but
 * CONNECT, whose authority is stored in *authority (left untouched for the other forms).
 * A '#' is refused in every form: a fragment is never part of a request-target (RFC 9112 §3.2,
 * RFC 3986 §3.5), and forwarding it, raw or percent-encoded, would ask the backend for another
 * resource than the one the client named.
 */
static bool target_ok(const unsigned char *t, size_t n, int method_id, struct pt_str *authority)
{
    if (memchr(t, '#', n) != NULL)
        return false;
    if (method_id == PT_METHOD_CONNECT)
        return host_ok(t, n, true);
    if (t[0] == '/')
        return true;
    if (t[0] == '*')
        return n == 1 && method_id == PT_METHOD_OPTIONS;
    if (!((t[0] | 0x20) >= 'a' && (t[0] | 0x20) <= 'z'))
        return false;
    size_t i = 1;
    while (i < n && (cls[t[i]] & C_SCHEME))
        i++;
    if (n - i < 3 || memcmp(t + i, "://", 3) != 0)
        return false;
    i += 3;
    size_t a = i;
    while (i < n && t[i] != '/' && t[i] != '?')
        i++;
    if (!host_ok(t + a, i - a, false))
        return false;
    *authority = (struct pt_str){(const char *)t + a, i - a};
    return true;
}

/* Content-Length = 1*DIGIT (RFC 9110 §8.6), at most SIZE_LIMIT; -1 when invalid. */
static int64_t parse_length(const unsigned char *v, size_t n)
{
    uint64_t x = 0;

    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!(cls[v[i]] & C_DIGIT))
            return -1;
        unsigned d = (unsigned)(v[i] - '0');
        if (x > (SIZE_LIMIT - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    return (int64_t)x;
}

/* What the header pass learns beyond the header array. */
struct hstate {
    struct pt_h1_framing *f;
    bool is_request;
    int minor_version;
    bool te_seen;         /* a Transfer-Encoding header was present */
    bool te_last_chunked; /* the last coding seen so far is chunked */
    bool te_other;        /* a coding other than chunked was listed (gzip, deflate, unknown) */
    unsigned host_count;  /* Host headers seen */
    struct pt_str host;   /* value of the (first) Host header */
    bool expect_continue;
};

/*
 * Transfer-Encoding = #transfer-coding (RFC 9112 §6.1). Codings accumulate over repeated
 * headers. chunked must be the last coding and appear once: any coding after a chunked one is
 * refused, which covers both. chunked takes no parameters. Empty list elements are skipped
 * (RFC 9110 §5.6.1.2); a value with no coding at all is refused.
 */
static int note_te(struct hstate *hs, const unsigned char *v, size_t n)
{
    size_t i = 0;
    bool any = false;

    while (i < n) {
        while (i < n && (is_ows(v[i]) || v[i] == ','))
            i++;
        if (i == n)
            break;
        size_t s = i;
        while (i < n && (cls[v[i]] & C_TCHAR))
            i++;
        if (i == s)
            return PT_H1_EBAD;
        bool chunked = i - s == 7 && lower_eq(v + s, "chunked", 7);
        while (i < n && is_ows(v[i]))
            i++;
        if (i < n && v[i] == ';') {
            if (chunked)
                return PT_H1_EBAD;
            while (i < n && v[i] != ',')
                i++;
        } else if (i < n && v[i] != ',') {
            return PT_H1_EBAD;
        }
        if (hs->te_last_chunked)
            return PT_H1_EBAD;
        hs->te_last_chunked = chunked;
        hs->te_other |= !chunked;
        any = true;
    }
    if (!any)
        return PT_H1_EBAD;
    hs->te_seen = true;
    return 0;
}

/* Connection = #connection-option (RFC 9110 §7.6.1); other options are the caller's business. */
static void note_connection(struct pt_h1_framing *f, const unsigned char *v, size_t n)
{
    size_t i = 0;

    while (i < n) {
        while (i < n && (is_ows(v[i]) || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',' && !is_ows(v[i]))
            i++;
        size_t k = i - s;
        if (k == 5 && lower_eq(v + s, "close", 5))
            f->conn_close = true;
        else if (k == 10 && lower_eq(v + s, "keep-alive", 10))
            f->conn_keepalive = true;
    }
}

/* Classifies one stored header and records its framing meaning. */
static int note_header(struct hstate *hs, const unsigned char *name, size_t nn,
                       const unsigned char *v, size_t vn)
{
    struct pt_h1_framing *f = hs->f;

    switch (nn) {
    case 4:
        if (hs->is_request && lower_eq(name, "host", 4)) {
            /* RFC 9112 §3.2: exactly one Host, a valid uri-host[:port] or empty. */
            if (++hs->host_count > 1)
                return PT_H1_EBAD;
            if (vn != 0 && !host_ok(v, vn, false))
                return PT_H1_EBAD;
            hs->host = (struct pt_str){(const char *)v, vn};
        }
        break;
    case 6:
        if (hs->is_request && lower_eq(name, "expect", 6) && vn == 12 &&
            lower_eq(v, "100-continue", 12))
            hs->expect_continue = true;
        break;
    case 7:
        if (lower_eq(name, "upgrade", 7))
            f->has_upgrade = true;
        break;
    case 10:
        if (lower_eq(name, "connection", 10))
            note_connection(f, v, vn);
        break;
    case 14:
        if (lower_eq(name, "content-length", 14)) {
            /* RFC 9112 §6.3 item 5: an invalid or ambiguous length is unrecoverable. A repeated
             * equal value may be accepted (RFC 9110 §8.6); we allow that only from upstreams. */
            int64_t cl = parse_length(v, vn);
            if (cl < 0)
                return PT_H1_EBAD;
            if (f->content_length >= 0 && (hs->is_request || f->content_length != cl))
                return PT_H1_EBAD;
            f->content_length = cl;
        }
        break;
    case 17:
        if (lower_eq(name, "transfer-encoding", 17)) {
            /* RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty framing. */
            if (hs->minor_version == 0)
                return PT_H1_EBAD;
            return note_te(hs, v, vn);
        }
        break;
    default:
        break;
    }
    return 0;
}

/*
 * Header lines up to and including the empty line (RFC 9112 §5). *pp points at the first byte
 * after the start line; on success it points past the final CRLF. Each line is
 * token ":" OWS field-value OWS CRLF; a line starting with SP/HT (obs-fold, or whitespace after
 * the start line, RFC 9112 §2.2 and §5.2) fails the token test, as does whitespace before the
 * colon (§5.1), a bare LF or any control byte.
 */
static int parse_headers(const unsigned char **pp, const unsigned char *end, struct pt_field *hdr,
                         size_t *num, struct hstate *hs)
{
    const unsigned char *p = *pp;
    size_t cap = *num, used = 0;
    int rc;

    *num = 0;
    for (;;) {
        if (p >= end)
            return PT_H1_INCOMPLETE;
        if (*p == '\r') {
            if (p + 1 >= end)
                return PT_H1_INCOMPLETE;
            if (p[1] != '\n')
                return PT_H1_EBAD;
            p += 2;
            break;
        }
        const unsigned char *name = p;
        while (p < end && (cls[*p] & C_TCHAR))
            p++;
        if (p >= end)
            return PT_H1_INCOMPLETE;
        if (*p != ':' || p == name)
            return PT_H1_EBAD;
        size_t nn = (size_t)(p - name);
        p++;
        while (p < end && is_ows(*p))
            p++;
        const unsigned char *v = p;
        p = skip_field(p, end);
        if (p >= end)
            return PT_H1_INCOMPLETE;
        if (*p != '\r')
            return PT_H1_EBAD;
        if (p + 1 >= end)
            return PT_H1_INCOMPLETE;
        if (p[1] != '\n')
            return PT_H1_EBAD;
        const unsigned char *ve = p;
        while (ve > v && is_ows(ve[-1]))
            ve--;
        p += 2;
        if (used == cap)
            return PT_H1_ETOOMANY;
        hdr[used].name = (struct pt_str){(const char *)name, nn};
        hdr[used].value = (struct pt_str){(const char *)v, (size_t)(ve - v)};
        used++;
        rc = note_header(hs, name, nn, v, (size_t)(ve - v));
        if (rc < 0)
            return rc;
    }
    *num = used;
    *pp = p;
    /* RFC 9112 §6.1: both lengths in one message is the classic smuggling vector. A final
     * coding other than chunked leaves a request's length unknowable (§6.3 item 4: 400); a
     * response so coded would be delimited by close (§6.3), and is refused for the reason
     * below. */
    if (hs->te_seen) {
        if (!hs->te_last_chunked || hs->f->content_length >= 0)
            return PT_H1_EBAD;
        /*
         * "gzip, chunked": the framing is sound, but Portico decodes only chunked and the body
         * is gzip bytes. Forwarding it as plain chunked would relabel the body, so:
         * - a request gets 501 (RFC 9112 §6.1: a coding the server does not understand);
         *   passing the codings on is no option, the backend need not understand them either.
         * - a response is malformed for us (502). Carrying the coding through is allowed only
         *   towards a client that listed it in TE (RFC 9110 §10.1.4), and Portico drops TE on
         *   the way in as hop-by-hop, so the backend was never told the client takes gzip; an
         *   HTTP/1.0 client cannot be sent Transfer-Encoding at all; and the response filters
         *   (_headers, compression, caching) would see coded bytes. No client is promised it
         *   can decode such a body, so none is sent it.
         */
        if (hs->te_other)
            return hs->is_request ? PT_H1_ECODING : PT_H1_EBAD;
        hs->f->is_chunked = true;
    }
    return 0;
}

/*
 * HTTP-version after the start line's first part (RFC 9112 §2.3). *pp points at the version;
 * stop is the byte that must follow it (SP for a status line, CR for a request line). Returns the
 * minor version, PT_H1_EVERSION for a well-formed but unsupported or missing version, PT_H1_EBAD
 * when the bytes are not a version at all, or PT_H1_INCOMPLETE.
 */
static int parse_version(const unsigned char **pp, const unsigned char *end, unsigned char stop)
{
    const unsigned char *p = *pp;

    if (end - p >= 9 && memcmp(p, "HTTP/1.", 7) == 0 && (p[7] == '0' || p[7] == '1') &&
        p[8] == stop) {
        *pp = p + 8;
        return p[7] - '0';
    }
    const unsigned char *v = p;
    while (p < end && (cls[*p] & C_VCHAR))
        p++;
    if (p >= end)
        return PT_H1_INCOMPLETE;
    size_t n = (size_t)(p - v);
    if (n == 8 && memcmp(v, "HTTP/1.", 7) == 0 && (v[7] == '0' || v[7] == '1'))
        return PT_H1_EBAD; /* a good version followed by the wrong byte */
    if (*p != stop && *p != '\r' && *p != ' ')
        return PT_H1_EBAD; /* control byte, bare LF */
    if (stop == '\r' && *p == ' ')
        return PT_H1_EBAD; /* a fourth part on the request line */
    if (n == 0 && stop == ' ')
        return PT_H1_EBAD;
    return PT_H1_EVERSION;
}

/*
 * Contract in h1_parse.h. Borrows buf: every slice in *r points into it. Returns the head
 * length, which is less than len when bytes after the head (body, pipelined request) were
 * passed too; those are not looked at. A head cut short gives PT_H1_INCOMPLETE. On failure the
 * fields of *r are unspecified.
 */
int pt_h1_parse_request(const char *buf, size_t len, struct pt_h1_request *r, size_t uri_max)
{
    const unsigned char *p = (const unsigned char *)buf, *end = p + len;
    struct hstate hs;
    int rc;

    if (len > INT_MAX)
        return PT_H1_EBAD; /* the result must fit the int return */

    r->framing = (struct pt_h1_framing){.content_length = -1};
    r->host = (struct pt_str){buf, 0};
    r->has_host = false;
    r->expect_continue = false;
    r->minor_version = 0;

    /* RFC 9112 §2.2: ignore an empty line before the request line (old clients after a POST). */
    if (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
        p += 2;

    /* method SP: the common case first, then any token. */
    const unsigned char *m = p;
    if (end - p >= 4 && memcmp(p, "GET ", 4) == 0) {
        p += 3;
        r->method_id = PT_METHOD_GET;
    } else {
        while (p < end && (cls[*p] & C_TCHAR))
            p++;
        if (p >= end)
            return PT_H1_INCOMPLETE;
        if (p == m || *p != ' ')
            return PT_H1_EBAD;
        r->method_id = pt_http_method_id((const char *)m, (size_t)(p - m));
    }
    r->method = (struct pt_str){(const char *)m, (size_t)(p - m)};
    p++;

    /* request-target SP */
    const unsigned char *t = p;
    p = skip_vchar(p, end);
    if (p >= end)
        return PT_H1_INCOMPLETE;
    size_t tn = (size_t)(p - t);
    if (*p != ' ') {
        /* "GET /" CRLF is HTTP/0.9 (RFC 9112 Appendix C.1): a version we do not speak. */
        if (tn > 0 && *p == '\r' && p + 1 < end && p[1] == '\n')
            return PT_H1_EVERSION;
        return PT_H1_EBAD;
    }
    if (tn == 0)
        return PT_H1_EBAD; /* two SPs after the method */
    if (tn > uri_max)
        return PT_H1_EURI;
    r->target = (struct pt_str){(const char *)t, tn};
    p++;

    /* HTTP-version CRLF */
    rc = parse_version(&p, end, '\r');
    if (rc < 0)
        return rc;
    r->minor_version = rc;
    if (end - p < 2)
        return PT_H1_INCOMPLETE;
    if (p[1] != '\n')
        return PT_H1_EBAD;
    p += 2;
    struct pt_str authority = {NULL, 0};
    if (!target_ok(t, tn, r->method_id, &authority))
        return PT_H1_EBAD;

    hs = (struct hstate){.f = &r->framing, .is_request = true, .minor_version = r->minor_version};
    rc = parse_headers(&p, end, r->headers, &r->num_headers, &hs);
    if (rc < 0)
        return rc;
    /* RFC 9112 §3.2: a 1.1 request without Host, or with more than one, gets 400. */
    if (hs.host_count == 0 && r->minor_version == 1)
        return PT_H1_EBAD;
    if (hs.host_count == 1) {
        r->host = hs.host;
        r->has_host = true;
    }
    /* RFC 9112 §3.2.2: with an absolute-form target the authority replaces Host, for routing
     * and for everything after it (the Host sent upstream, X-Forwarded-Host, the log). The Host
     * header is still required and validated above, and the header array keeps it as received;
     * no consumer may read the host from there. */
    if (authority.p != NULL)
        r->host = authority;
    r->expect_continue = hs.expect_continue;
    return (int)(p - (const unsigned char *)buf);
}

/*
 * Contract in h1_parse.h; same return and ownership rules as pt_h1_parse_request(). Whether the
 * status implies no body (1xx, 204, 304, a response to HEAD) is the caller's decision.
 */
int pt_h1_parse_response(const char *buf, size_t len, struct pt_h1_response *r)
{
    const unsigned char *p = (const unsigned char *)buf, *end = p + len;
    struct hstate hs;
    int rc;

    if (len > INT_MAX)
        return PT_H1_EBAD; /* the result must fit the int return */

    r->framing = (struct pt_h1_framing){.content_length = -1};
    r->reason = (struct pt_str){buf, 0};
    r->status = 0;
    r->minor_version = 0;

    /* status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 §4); the second
     * SP is commonly omitted with an empty reason, which is unambiguous, so it is accepted. */
    if (end - p < 5)
        return PT_H1_INCOMPLETE;
    if (!lower_eq(p, "http/", 5))
        return PT_H1_EBAD; /* not an HTTP/1 response at all */
    rc = parse_version(&p, end, ' ');
    if (rc < 0)
        return rc;
    r->minor_version = rc;
    p++;
    if (end - p < 4)
        return PT_H1_INCOMPLETE;
    if (!(p[0] >= '1' && p[0] <= '9' && (cls[p[1]] & C_DIGIT) && (cls[p[2]] & C_DIGIT)))
        return PT_H1_EBAD;
    r->status = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
    p += 3;
    if (*p == ' ') {
        const unsigned char *s = ++p;
        while (p < end && (cls[*p] & C_FIELD))
            p++;
        r->reason = (struct pt_str){(const char *)s, (size_t)(p - s)};
    }
    if (end - p < 2)
        return PT_H1_INCOMPLETE;
    if (p[0] != '\r' || p[1] != '\n')
        return PT_H1_EBAD;
    p += 2;

    hs = (struct hstate){.f = &r->framing, .is_request = false, .minor_version = r->minor_version};
    rc = parse_headers(&p, end, r->headers, &r->num_headers, &hs);
    if (rc < 0)
        return rc;
    return (int)(p - (const unsigned char *)buf);
}

enum {
    CH_SIZE0 = 0, /* must be 0: callers memset the decoder */
    CH_SIZE,
    CH_EXT_BWS,
    CH_EXT,
    CH_SIZE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TR_START,
    CH_TR_NAME,
    CH_TR_VALUE,
    CH_TR_LF,
    CH_FINAL_LF,
    CH_DONE,
    CH_ERROR,
};

static inline unsigned hexval(unsigned char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
}

/*
 * Contract in h1_parse.h. Modifies buf in place. On PT_H1_EBAD, buf[0..*len) holds the data
 * decoded before the error and the decoder stays failed; after the body has ended every later
 * call returns all of its bytes as following bytes.
 */
ssize_t pt_h1_chunked_decode(struct pt_h1_chunked *d, char *buf, size_t *len)
{
    unsigned char *b = (unsigned char *)buf;
    size_t n = *len, rd = 0, wr = 0;
    size_t max_tr = d->max_trailer_bytes ? d->max_trailer_bytes : TRAILER_MAX_DEFAULT;

    if (d->state == CH_DONE) {
        *len = 0;
        return (ssize_t)n;
    }
    if (d->state == CH_ERROR)
        goto bad;
    while (rd < n) {
        if (d->state == CH_DATA) {
            size_t k = n - rd;
            if (d->remaining < k)
                k = (size_t)d->remaining;
            if (wr != rd)
                memmove(b + wr, b + rd, k);
            wr += k;
            rd += k;
            d->remaining -= k;
            if (d->remaining == 0)
                d->state = CH_DATA_CR;
            continue;
        }
        unsigned char c = b[rd++];
        switch (d->state) {
        case CH_SIZE0:
            if (!(cls[c] & C_HEX))
                goto bad;
            d->remaining = hexval(c);
            d->line_bytes = 1;
            d->state = CH_SIZE;
            break;
        case CH_SIZE:
            if (cls[c] & C_HEX) {
                unsigned v = hexval(c);
                if (++d->line_bytes > 16 || d->remaining > (SIZE_LIMIT - v) >> 4)
                    goto bad;
                d->remaining = (d->remaining << 4) | v;
                break;
            }
            if (c == '\r') {
                d->state = CH_SIZE_LF;
                break;
            }
            if (c == ';')
                d->state = CH_EXT;
            else if (is_ows(c))
                d->state = CH_EXT_BWS; /* chunk-ext = *( BWS ";" ... ) (RFC 9112 §7.1.1) */
            else
                goto bad;
            d->line_bytes++;
            break;
        case CH_EXT_BWS:
            if (c == ';')
                d->state = CH_EXT;
            else if (!is_ows(c))
                goto bad;
            if (++d->line_bytes > CHUNK_LINE_MAX)
                goto bad;
            break;
        case CH_EXT:
            /* Extensions are read loosely (any field-value bytes) and dropped: no control
             * bytes, no bare LF, bounded length. */
            if (c == '\r') {
                d->state = CH_SIZE_LF;
                break;
            }
            if (!(cls[c] & C_FIELD) || ++d->line_bytes > CHUNK_LINE_MAX)
                goto bad;
            break;
        case CH_SIZE_LF:
            if (c != '\n')
                goto bad;
            d->line_bytes = 0;
            if (d->remaining == 0) {
                d->trailer_bytes = 0;
                d->state = CH_TR_START;
            } else {
                d->state = CH_DATA;
            }
            break;
        case CH_DATA_CR:
            if (c != '\r')
                goto bad;
            d->state = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            if (c != '\n')
                goto bad;
            d->state = CH_SIZE0;
            break;
        default:
            /* Trailer section (RFC 9112 §7.1.2): header lines, checked, dropped or kept. */
            if (d->state == CH_TR_START && c != '\r' && d->want_trailers && !d->tr) {
                rd--; /* the caller gives a buffer, then this byte again */
                goto pause;
            }
            if (++d->trailer_bytes > max_tr)
                goto bad;
            if (d->tr && d->state != CH_FINAL_LF && !(d->state == CH_TR_START && c == '\r'))
                d->tr[d->tr_len++] = (char)c; /* tr_len <= trailer_bytes <= max_tr */
            switch (d->state) {
            case CH_TR_START:
                if (c == '\r')
                    d->state = CH_FINAL_LF;
                else if (cls[c] & C_TCHAR)
                    d->state = CH_TR_NAME;
                else
                    goto bad;
                break;
            case CH_TR_NAME:
                if (c == ':')
                    d->state = CH_TR_VALUE;
                else if (!(cls[c] & C_TCHAR))
                    goto bad;
                break;
            case CH_TR_VALUE:
                if (c == '\r')
                    d->state = CH_TR_LF;
                else if (!(cls[c] & C_FIELD))
                    goto bad;
                break;
            case CH_TR_LF:
                if (c != '\n')
                    goto bad;
                d->state = CH_TR_START;
                break;
            case CH_FINAL_LF:
                if (c != '\n')
                    goto bad;
                d->state = CH_DONE;
                goto done;
            default:
                goto bad;
            }
            break;
        }
    }
    *len = wr;
    return PT_H1_INCOMPLETE;

done:
    if (rd < n && wr != rd)
        memmove(b + wr, b + rd, n - rd);
    *len = wr;
    return (ssize_t)(n - rd);

pause:
    if (wr != rd)
        memmove(b + wr, b + rd, n - rd);
    *len = wr;
    d->unread = n - rd;
    return PT_H1_TRAILERS;

bad:
    d->state = CH_ERROR;
    *len = wr;
    return PT_H1_EBAD;
}

ssize_t pt_h1_trailer_fields(const char *tr, size_t n, struct pt_field *f, size_t cap)
{
    size_t k = 0;
    const char *p = tr, *end = tr + n;
    while (p < end) {
        /* The decoder checked the syntax: name ':' value CR LF, no CR or LF elsewhere. */
        const char *colon = memchr(p, ':', (size_t)(end - p));
        const char *cr = colon ? memchr(colon, '\r', (size_t)(end - colon)) : NULL;
        if (!cr || end - cr < 2)
            return -1;
        if (k == cap)
            return -1;
        const char *v = colon + 1, *ve = cr;
        while (v < ve && is_ows((unsigned char)*v))
            v++;
        while (ve > v && is_ows((unsigned char)ve[-1]))
            ve--;
        f[k].name = (struct pt_str){p, (size_t)(colon - p)};
        f[k].value = (struct pt_str){v, (size_t)(ve - v)};
        k++;
        p = cr + 2;
    }
    return (ssize_t)k;
}
