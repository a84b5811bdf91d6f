/*
 * h2_headers.c - HTTP/2 header blocks to HTTP semantics and back (RFC 9113 §8.2, §8.3,
 * RFC 8441).
 *
 * Receiving. nghttp2 decodes HPACK and hands a block over one field at a time; pt_h2h_field()
 * takes each as it comes, so a block is checked in one pass without being gathered first. A
 * struct pt_h2h_block holds what the rules need across fields: a bit per pseudo-header seen,
 * whether a regular field came (pseudo-headers must all come first), the running §6.5.2 size
 * and count, Host, and the Cookie crumbs joined so far. What only the whole block decides (the
 * required pseudo-headers, :path against :method, an authority for http/https) waits for the
 * finish call. Regular fields are stored as slices of the caller's bytes in the caller's array;
 * Host, Cookie and TE are taken out of them into the view (authority, cookie, is_te_trailers),
 * because each protocol writes them its own way.
 *
 * nghttp2 checks a subset of these rules itself while its HTTP messaging validation is on (the
 * default): pseudo-header names, order and duplicates, the required ones, connection-specific
 * fields, TE, uppercase names. But a regular field with an invalid name or value is silently
 * dropped unless the session sets an on_invalid_header callback, and other libraries (or a later
 * nghttp2 option) may check less, so every rule is checked here again: this module is the one
 * place that decides what an HTTP/2 message may carry into Portico. It is stricter than RFC 9113
 * where the HTTP/1.1 parser is strict too (control bytes, token names, the :path bytes), so that
 * a request that arrived over HTTP/2 can always be written as a valid HTTP/1.1 request.
 *
 * Sending. The *_nv functions build nghttp2_nv arrays from HTTP/1.1-style heads. Names are
 * lowercased into a caller buffer (RFC 9113 §8.2); values are referenced. Connection-specific
 * fields and the fields Connection names are dropped (RFC 9113 §8.2.2, RFC 9110 §7.6.1).
 *
 * Rejected: gathering the block first and checking it whole (the fields would be held twice,
 * and a block over the limits would be read to its end before being refused); copying each
 * name and value into the stream's arena here (a copy per field, when the session can keep
 * nghttp2's buffers referenced instead); an nghttp2 session in this file (it would tie the
 * rules, which need no I/O, to the session's lifetime, and keep them from being fuzzed alone).
 *
 * No global state but a constant byte table, no allocation, no locking: any thread may call,
 * each on its own block.
 */
#include "http/h2_headers.h"

#include <string.h>

#include "core/common.h"
#include "http/h1_parse.h"

/* Pseudo-header bits of struct pt_h2h_block.pseudo. */
enum {
    PS_METHOD = 1u << 0,
    PS_SCHEME = 1u << 1,
    PS_AUTHORITY = 1u << 2,
    PS_PATH = 1u << 3,
    PS_PROTOCOL = 1u << 4,
    PS_STATUS = 1u << 5,
};

/* Byte classes. */
enum {
    C_TCHAR = 1 << 0,  /* RFC 9110 §5.6.2 token character */
    C_UPPER = 1 << 1,  /* 'A'..'Z' */
    C_VALUE = 1 << 2,  /* allowed in a field value: VCHAR, obs-text, SP, HTAB */
    C_PATH = 1 << 3,   /* in :path: 0x21..0x7e but '#' */
    C_HOST = 1 << 4,   /* reg-name: unreserved, sub-delims, '%' (RFC 3986 §3.2.2) */
    C_HEX = 1 << 5,    /* hex digit */
    C_DIGIT = 1 << 6,  /* '0'..'9' */
    C_SCHEME = 1 << 7, /* ALPHA DIGIT + - . */
};

/* The classes above for ASCII (the unit tests try every byte in each place). */
static const unsigned char ascii_cls[128] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 00 */
    0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 08 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 10 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 18 */
    0x04, 0x1d, 0x0c, 0x05, 0x1d, 0x1d, 0x1d, 0x1d, /* 20 */
    0x1c, 0x1c, 0x1d, 0x9d, 0x1c, 0x9d, 0x9d, 0x0c, /* 28 */
    0xfd, 0xfd, 0xfd, 0xfd, 0xfd, 0xfd, 0xfd, 0xfd, /* 30 */
    0xfd, 0xfd, 0x0c, 0x1c, 0x0c, 0x1c, 0x0c, 0x0c, /* 38 */
    0x0c, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf, 0x9f, /* 40 */
    0x9f, 0x9f, 0x9f, 0x9f, 0x9f, 0x9f, 0x9f, 0x9f, /* 48 */
    0x9f, 0x9f, 0x9f, 0x9f, 0x9f, 0x9f, 0x9f, 0x9f, /* 50 */
    0x9f, 0x9f, 0x9f, 0x0c, 0x0c, 0x0c, 0x0d, 0x1d, /* 58 */
    0x0d, 0xbd, 0xbd, 0xbd, 0xbd, 0xbd, 0xbd, 0x9d, /* 60 */
    0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, /* 68 */
    0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, 0x9d, /* 70 */
    0x9d, 0x9d, 0x9d, 0x0c, 0x0d, 0x0c, 0x1d, 0x00, /* 78 */
};

/* A byte's classes: above ASCII only field values (obs-text) take a byte. */
static inline unsigned cls(unsigned char c)
{
    return c < 128 ? ascii_cls[c] : C_VALUE;
}

/* Whether s is non-empty and every byte has exactly want among the classes in mask. */
static bool all_in(struct pt_str s, unsigned mask, unsigned want)
{
    if (s.n == 0)
        return false;
    for (size_t i = 0; i < s.n; i++)
        if ((cls((unsigned char)s.p[i]) & mask) != want)
            return false;
    return true;
}

static bool token_ok(struct pt_str s)
{
    return all_in(s, C_TCHAR, C_TCHAR);
}

/* A received field name: a token without uppercase (RFC 9113 §8.2, §8.2.1). */
static bool lower_token_ok(struct pt_str s)
{
    return all_in(s, C_TCHAR | C_UPPER, C_TCHAR);
}

/*
 * RFC 9113 §8.2.1: no NUL, CR or LF, no leading or trailing SP/HTAB. Other control bytes and
 * DEL are refused too, as the HTTP/1.1 parser refuses them (RFC 9110 §5.5), so that the value
 * can be written into an HTTP/1.1 head unchanged.
 */
static bool value_ok(struct pt_str v)
{
    if (v.n == 0)
        return true;
    if (v.p[0] == ' ' || v.p[0] == '\t' || v.p[v.n - 1] == ' ' || v.p[v.n - 1] == '\t')
        return false;
    return all_in(v, C_VALUE, C_VALUE);
}

/*
 * uri-host [ ":" port ] (RFC 9110 §7.2, RFC 3986 §3.2.2). A reg-name or IPv4 address (with
 * '%' only as a valid pct-encoding), or an IPv6 literal in brackets; the port is up to 5
 * digits and at most 65535, required when need_port. No userinfo (RFC 9113 §8.3.1 forbids it
 * in :authority), no IPvFuture, and the host is never empty.
 */
static bool authority_ok(struct pt_str s, bool need_port)
{
    const unsigned char *p = (const unsigned char *)s.p;
    size_t n = s.n, i = 0;

    if (n == 0)
        return false;
    if (p[0] == '[') {
        for (i = 1; i < n && ((cls(p[i]) & C_HEX) || p[i] == ':' || p[i] == '.'); i++)
            ;
        if (i == 1 || i == n || p[i] != ']')
            return false;
        i++;
    } else {
        for (; i < n && (cls(p[i]) & C_HOST); i++) {
            if (p[i] != '%')
                continue;
            if (i + 2 >= n || !(cls(p[i + 1]) & C_HEX) || !(cls(p[i + 2]) & C_HEX))
                return false;
            i += 2;
        }
        if (i == 0)
            return false;
    }
    if (i == n)
        return !need_port;
    if (p[i++] != ':')
        return false;
    if (i == n)
        return !need_port;
    if (n - i > 5)
        return false;
    unsigned port = 0;
    for (; i < n; i++) {
        if (!(cls(p[i]) & C_DIGIT))
            return false;
        port = port * 10 + (unsigned)(p[i] - '0');
    }
    return port <= 65535;
}

/* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (RFC 3986 §3.1). */
static bool scheme_ok(struct pt_str s)
{
    if (s.n == 0 || !((s.p[0] | 0x20) >= 'a' && (s.p[0] | 0x20) <= 'z'))
        return false;
    return s.n == 1 || all_in((struct pt_str){s.p + 1, s.n - 1}, C_SCHEME, C_SCHEME);
}

/* :path bytes: visible ASCII but '#' (the HTTP/1.1 request-target rules, RFC 9112 §3.2). */
static bool path_bytes_ok(struct pt_str s)
{
    return all_in(s, C_PATH, C_PATH);
}

/* Content-Length = 1*DIGIT, at most 2^62 as in the HTTP/1.1 parser; -1 when invalid. */
static int64_t parse_length(struct pt_str v)
{
    uint64_t x = 0;

    if (v.n == 0 || v.n > 19)
        return -1;
    for (size_t i = 0; i < v.n; i++) {
        if (!(cls((unsigned char)v.p[i]) & C_DIGIT))
            return -1;
        x = x * 10 + (uint64_t)(v.p[i] - '0');
    }
    return x > ((uint64_t)1 << 62) ? -1 : (int64_t)x;
}

/* The five connection-specific fields of RFC 9113 §8.2.2, by a lowercase or mixed-case name. */
static bool conn_specific(struct pt_str n)
{
    switch (n.n) {
    case 7:
        return PT_STR_CASEEQ_LIT(n, "upgrade");
    case 10:
        return PT_STR_CASEEQ_LIT(n, "connection") || PT_STR_CASEEQ_LIT(n, "keep-alive");
    case 16:
        return PT_STR_CASEEQ_LIT(n, "proxy-connection");
    case 17:
        return PT_STR_CASEEQ_LIT(n, "transfer-encoding");
    default:
        return false;
    }
}

void pt_h2h_begin(struct pt_h2h_block *b, int kind, const struct pt_h2h_limits *lim,
                  struct pt_field *fields, uint32_t cap, char *cookie, size_t cookie_cap)
{
    memset(b, 0, sizeof(*b));
    b->kind = kind;
    b->lim = *lim;
    b->fields = fields;
    b->cap = cap;
    b->cookie = cookie;
    b->cookie_cap = cookie ? cookie_cap : 0;
    b->content_length = -1;
}

/* One pseudo-header: which one, whether this kind of block may carry it, its value. */
static int pseudo_field(struct pt_h2h_block *b, struct pt_str name, struct pt_str value)
{
    unsigned bit = 0;

    if (b->kind == PT_H2H_TRAILERS)
        return PT_H2H_EPSEUDO; /* RFC 9113 §8.1: never in trailers, wherever it comes */
    if (b->is_regular_seen)
        return PT_H2H_EPSEUDO_ORDER;
    if (b->kind == PT_H2H_REQUEST) {
        if (PT_STR_EQ_LIT(name, ":method"))
            bit = PS_METHOD;
        else if (PT_STR_EQ_LIT(name, ":scheme"))
            bit = PS_SCHEME;
        else if (PT_STR_EQ_LIT(name, ":authority"))
            bit = PS_AUTHORITY;
        else if (PT_STR_EQ_LIT(name, ":path"))
            bit = PS_PATH;
        else if (PT_STR_EQ_LIT(name, ":protocol"))
            bit = PS_PROTOCOL;
    } else if (b->kind == PT_H2H_RESPONSE && PT_STR_EQ_LIT(name, ":status")) {
        bit = PS_STATUS;
    }
    if (bit == 0)
        return PT_H2H_EPSEUDO;
    if (b->pseudo & bit)
        return PT_H2H_EPSEUDO_DUP;
    b->pseudo |= bit;
    switch (bit) {
    case PS_METHOD:
        b->method = value;
        return token_ok(value) ? 0 : PT_H2H_EMETHOD;
    case PS_SCHEME:
        b->scheme = value;
        return scheme_ok(value) ? 0 : PT_H2H_ESCHEME;
    case PS_AUTHORITY:
        b->authority = value;
        return authority_ok(value, false) ? 0 : PT_H2H_EAUTHORITY;
    case PS_PATH:
        b->path = value;
        return path_bytes_ok(value) ? 0 : PT_H2H_EPATH;
    case PS_PROTOCOL:
        b->protocol = value;
        if (!b->lim.allow_extended_connect)
            return PT_H2H_EPSEUDO;
        return token_ok(value) ? 0 : PT_H2H_EPSEUDO;
    default: /* PS_STATUS */
        if (value.n != 3)
            return PT_H2H_ESTATUS;
        b->status = 0;
        for (int i = 0; i < 3; i++) {
            if (!(cls((unsigned char)value.p[i]) & C_DIGIT))
                return PT_H2H_ESTATUS;
            b->status = b->status * 10 + (value.p[i] - '0');
        }
        return b->status >= 100 && b->status != 101 ? 0 : PT_H2H_ESTATUS;
    }
}

/* Appends one Cookie crumb to the joined value (RFC 9113 §8.2.3); empty crumbs are skipped. */
static int cookie_crumb(struct pt_h2h_block *b, struct pt_str v)
{
    if (v.n == 0)
        return 0;
    size_t sep = b->cookie_n ? 2 : 0;
    if (v.n > b->cookie_cap - b->cookie_n || sep > b->cookie_cap - b->cookie_n - v.n)
        return PT_H2H_ETOOBIG;
    if (sep) {
        b->cookie[b->cookie_n++] = ';';
        b->cookie[b->cookie_n++] = ' ';
    }
    memcpy(b->cookie + b->cookie_n, v.p, v.n);
    b->cookie_n += v.n;
    return 0;
}

/*
 * Fields whose meaning is not just "pass it on": returns 1 when the field was consumed (not to
 * be stored), 0 to store it, or an error.
 */
static int special_field(struct pt_h2h_block *b, struct pt_str name, struct pt_str value)
{
    int rc;

    switch (name.n) {
    case 2:
        if (!PT_STR_EQ_LIT(name, "te"))
            return 0;
        /* RFC 9113 §8.2.2: TE may only be "trailers". It is hop-by-hop in HTTP/1.1, so it
           leaves the fields and becomes a flag. */
        if (!PT_STR_CASEEQ_LIT(value, "trailers"))
            return PT_H2H_ETE;
        b->is_te_trailers = true;
        return 1;
    case 4:
        if (!PT_STR_EQ_LIT(name, "host") || b->kind != PT_H2H_REQUEST)
            return 0;
        /* RFC 9113 §8.3.1: Host must name the same entity as :authority; every pseudo-header
           has come by now, so the comparison is final. An empty Host names no authority (RFC
           9110 §7.2), as in the HTTP/1.1 parser. */
        if (b->has_host || (value.n && !authority_ok(value, false)))
            return PT_H2H_EHOST;
        if ((b->pseudo & PS_AUTHORITY) && !pt_str_caseeq(value, b->authority.p, b->authority.n))
            return PT_H2H_EHOST;
        b->has_host = true;
        b->host = value;
        return 1;
    case 6:
        if (!PT_STR_EQ_LIT(name, "cookie") || b->kind != PT_H2H_REQUEST)
            return 0;
        rc = cookie_crumb(b, value);
        return rc ? rc : 1;
    case 14: {
        if (!PT_STR_EQ_LIT(name, "content-length") || b->kind == PT_H2H_TRAILERS)
            return 0;
        int64_t cl = parse_length(value);
        /* A response may repeat the same length (RFC 9110 §8.6); a request may not, as in the
           HTTP/1.1 parser. */
        if (cl < 0 ||
            (b->content_length >= 0 && (b->kind == PT_H2H_REQUEST || cl != b->content_length)))
            return PT_H2H_ECONTENT_LENGTH;
        b->content_length = cl;
        return 0;
    }
    default:
        return conn_specific(name) ? PT_H2H_ECONN_FIELD : 0;
    }
}

static int field(struct pt_h2h_block *b, struct pt_str name, struct pt_str value)
{
    if (++b->n_seen > b->lim.max_fields)
        return PT_H2H_ETOOMANY;
    /* RFC 9113 §6.5.2: the size counts name, value and 32 bytes per field. Each term is
       compared before adding, so no sum can wrap. */
    size_t room = b->lim.max_list_bytes - b->list_bytes;
    if (name.n > room || value.n > room - name.n || 32 > room - name.n - value.n)
        return PT_H2H_ETOOBIG;
    b->list_bytes += name.n + value.n + 32;
    if (name.n == 0)
        return PT_H2H_ENAME;
    if (name.p[0] == ':')
        return pseudo_field(b, name, value);
    b->is_regular_seen = true;
    if (!lower_token_ok(name))
        return PT_H2H_ENAME;
    if (!value_ok(value))
        return PT_H2H_EVALUE;
    int rc = special_field(b, name, value);
    if (rc < 0)
        return rc;
    if (rc > 0)
        return 0;
    if (b->n == b->cap)
        return PT_H2H_ETOOMANY;
    b->fields[b->n++] = (struct pt_field){name, value};
    return 0;
}

int pt_h2h_field(struct pt_h2h_block *b, struct pt_str name, struct pt_str value)
{
    if (b->err)
        return b->err;
    b->err = field(b, name, value);
    return b->err;
}

int pt_h2h_feed_nv(struct pt_h2h_block *b, const nghttp2_nv *nv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct pt_str name = {(const char *)nv[i].name, nv[i].namelen};
        struct pt_str value = {(const char *)nv[i].value, nv[i].valuelen};
        int rc = pt_h2h_field(b, name, value);
        if (rc)
            return rc;
    }
    return 0;
}

/* Checks the request's pseudo-header set as a whole (RFC 9113 §8.3.1, §8.5; RFC 8441 §4). */
static int request_whole(struct pt_h2h_block *b, bool is_connect)
{
    if (!(b->pseudo & PS_METHOD))
        return PT_H2H_EMISSING;
    if ((b->pseudo & PS_PROTOCOL) && !is_connect)
        return PT_H2H_EPSEUDO;
    if (is_connect && !(b->pseudo & PS_PROTOCOL)) {
        if (b->pseudo & (PS_SCHEME | PS_PATH))
            return PT_H2H_EPSEUDO;
        if (!(b->pseudo & PS_AUTHORITY))
            return PT_H2H_EMISSING;
        return authority_ok(b->authority, true) ? 0 : PT_H2H_EAUTHORITY;
    }
    if ((b->pseudo & (PS_SCHEME | PS_PATH)) != (PS_SCHEME | PS_PATH))
        return PT_H2H_EMISSING;
    if (is_connect && !(b->pseudo & PS_AUTHORITY))
        return PT_H2H_EMISSING;
    if (b->path.p[0] == '*') {
        if (b->path.n != 1 || !PT_STR_EQ_LIT(b->method, "OPTIONS"))
            return PT_H2H_EPATH;
    } else if (b->path.p[0] != '/') {
        return PT_H2H_EPATH;
    }
    /* An http or https URI never has an empty host (RFC 9110 §4.2.1, §4.2.2). */
    bool is_http = PT_STR_CASEEQ_LIT(b->scheme, "http") || PT_STR_CASEEQ_LIT(b->scheme, "https");
    if (is_http && !(b->pseudo & PS_AUTHORITY) && b->host.n == 0)
        return PT_H2H_EAUTHORITY;
    return 0;
}

int pt_h2h_finish_request(struct pt_h2h_block *b, struct pt_h2h_request *r)
{
    if (b->err)
        return b->err;
    PT_BUG_ON(b->kind != PT_H2H_REQUEST);
    bool is_connect = PT_STR_EQ_LIT(b->method, "CONNECT");
    b->err = request_whole(b, is_connect);
    if (b->err)
        return b->err;

    memset(r, 0, sizeof(*r));
    r->method = b->method;
    r->method_id = pt_http_method_id(b->method.p, b->method.n);
    r->scheme = b->scheme;
    r->authority = (b->pseudo & PS_AUTHORITY) ? b->authority : b->host;
    r->target = b->path;
    r->path = b->path;
    const char *q = b->path.n ? memchr(b->path.p, '?', b->path.n) : NULL;
    if (q) {
        r->has_query = true;
        r->path.n = (size_t)(q - b->path.p);
        r->query = (struct pt_str){q + 1, b->path.n - r->path.n - 1};
    }
    r->protocol = b->protocol;
    r->is_connect = is_connect;
    r->is_te_trailers = b->is_te_trailers;
    r->content_length = b->content_length;
    r->cookie = (struct pt_str){b->cookie, b->cookie_n};
    r->fields = b->fields;
    r->n_fields = b->n;
    return 0;
}

int pt_h2h_finish_response(struct pt_h2h_block *b, struct pt_h2h_response *r)
{
    if (b->err)
        return b->err;
    PT_BUG_ON(b->kind != PT_H2H_RESPONSE);
    if (!(b->pseudo & PS_STATUS))
        return b->err = PT_H2H_EMISSING;
    r->status = b->status;
    r->content_length = b->content_length;
    r->fields = b->fields;
    r->n_fields = b->n;
    return 0;
}

int pt_h2h_finish_trailers(struct pt_h2h_block *b, struct pt_field **fields, uint32_t *n)
{
    if (b->err)
        return b->err;
    PT_BUG_ON(b->kind != PT_H2H_TRAILERS);
    *fields = b->fields;
    *n = b->n;
    return 0;
}

bool pt_h2h_err_is_limit(int err)
{
    return err == PT_H2H_ETOOMANY || err == PT_H2H_ETOOBIG;
}

const char *pt_h2h_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case PT_H2H_ENAME:
        return "invalid field name";
    case PT_H2H_EVALUE:
        return "invalid field value";
    case PT_H2H_EPSEUDO:
        return "pseudo-header not allowed here";
    case PT_H2H_EPSEUDO_DUP:
        return "repeated pseudo-header";
    case PT_H2H_EPSEUDO_ORDER:
        return "pseudo-header after a regular field";
    case PT_H2H_EMISSING:
        return "required pseudo-header missing";
    case PT_H2H_EMETHOD:
        return "invalid :method";
    case PT_H2H_ESCHEME:
        return "invalid :scheme";
    case PT_H2H_EPATH:
        return "invalid :path";
    case PT_H2H_EAUTHORITY:
        return "invalid or missing authority";
    case PT_H2H_ECONN_FIELD:
        return "connection-specific field";
    case PT_H2H_ETE:
        return "TE other than trailers";
    case PT_H2H_EHOST:
        return "Host invalid, repeated or differing from :authority";
    case PT_H2H_ECONTENT_LENGTH:
        return "invalid content-length";
    case PT_H2H_ESTATUS:
        return "invalid :status";
    case PT_H2H_ETOOMANY:
        return "too many header fields";
    case PT_H2H_ETOOBIG:
        return "header list too large";
    default:
        return "unknown error";
    }
}

/* ---- Sending ---------------------------------------------------------------------------- */

/* An nghttp2_nv array and the name buffer being filled. */
struct nv_out {
    nghttp2_nv *nv;
    size_t n, cap;
    char *buf;
    size_t used, buf_cap;
};

/* Appends an entry whose name and value are used in place (static names, borrowed values). */
static int nv_put(struct nv_out *o, const char *name, size_t name_n, struct pt_str value,
                  uint8_t flags)
{
    if (o->n == o->cap)
        return PT_H2H_ETOOMANY;
    /* nghttp2_nv is not const-correct; nghttp2 only reads through these pointers. */
    o->nv[o->n++] = (nghttp2_nv){(uint8_t *)(uintptr_t)name, (uint8_t *)(uintptr_t)value.p, name_n,
                                 value.n, flags};
    return 0;
}

/* Reserves n bytes of the name buffer; NULL when full. */
static char *buf_take(struct nv_out *o, size_t n)
{
    if (n > o->buf_cap - o->used)
        return NULL;
    char *p = o->buf + o->used;
    o->used += n;
    return p;
}

/*
 * Whether name is listed in the Connection fields among f (RFC 9110 §7.6.1: those fields are
 * connection options of the previous hop and must not be forwarded).
 */
static bool named_by_connection(const struct pt_field *f, size_t n, struct pt_str name)
{
    for (size_t i = 0; i < n; i++) {
        if (!PT_STR_CASEEQ_LIT(f[i].name, "connection"))
            continue;
        const char *p = f[i].value.p, *end = p + f[i].value.n;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            const char *t = p;
            while (p < end && *p != ',' && *p != ' ' && *p != '\t')
                p++;
            if (p > t && pt_str_caseeq(name, t, (size_t)(p - t)))
                return true;
        }
    }
    return false;
}

/* Whether a field of an HTTP/1.1-style head must be left out of an HTTP/2 block. */
static bool drop_field(const struct pt_field *f, size_t n, size_t i, bool has_connection,
                       bool is_request)
{
    struct pt_str name = f[i].name;
    if (name.n == 0)
        return false; /* refused by the caller, not dropped */
    if (name.p[0] == ':' || conn_specific(name))
        return true;
    if (PT_STR_CASEEQ_LIT(name, "host") || PT_STR_CASEEQ_LIT(name, "http2-settings"))
        return true;
    if (PT_STR_CASEEQ_LIT(name, "te") && !(is_request && PT_STR_CASEEQ_LIT(f[i].value, "trailers")))
        return true;
    return has_connection && named_by_connection(f, n, name);
}

/* Appends the fields, filtered, names lowercased into the buffer. */
static int nv_fields(struct nv_out *o, const struct pt_field *f, size_t n, bool is_request)
{
    bool has_connection = false;
    for (size_t i = 0; i < n; i++)
        has_connection |= PT_STR_CASEEQ_LIT(f[i].name, "connection");

    for (size_t i = 0; i < n; i++) {
        if (drop_field(f, n, i, has_connection, is_request))
            continue;
        if (!token_ok(f[i].name))
            return PT_H2H_ENAME;
        if (!value_ok(f[i].value))
            return PT_H2H_EVALUE;
        char *name = buf_take(o, f[i].name.n);
        if (!name)
            return PT_H2H_ETOOBIG;
        for (size_t k = 0; k < f[i].name.n; k++) {
            char c = f[i].name.p[k];
            name[k] = (c >= 'A' && c <= 'Z') ? (char)(c | 0x20) : c;
        }
        struct pt_str lname = {name, f[i].name.n};
        /* Credentials stay out of the HPACK tables of every hop (RFC 7541 §7.1.3). */
        uint8_t flags = NGHTTP2_NV_FLAG_NONE;
        if (PT_STR_EQ_LIT(lname, "authorization") || PT_STR_EQ_LIT(lname, "proxy-authorization"))
            flags = NGHTTP2_NV_FLAG_NO_INDEX;
        int rc = nv_put(o, name, lname.n, f[i].value, flags);
        if (rc)
            return rc;
    }
    return (int)o->n;
}

int pt_h2h_response_nv(int status, const struct pt_field *fields, size_t n, nghttp2_nv *nv,
                       size_t nv_cap, char *buf, size_t buf_cap)
{
    struct nv_out o = {nv, 0, nv_cap, buf, 0, buf_cap};

    if (status < 100 || status > 999 || status == 101)
        return PT_H2H_ESTATUS;
    char *d = buf_take(&o, 3);
    if (!d)
        return PT_H2H_ETOOBIG;
    d[0] = (char)('0' + status / 100);
    d[1] = (char)('0' + status / 10 % 10);
    d[2] = (char)('0' + status % 10);
    int rc = nv_put(&o, ":status", 7, (struct pt_str){d, 3}, NGHTTP2_NV_FLAG_NONE);
    if (rc)
        return rc;
    return nv_fields(&o, fields, n, false);
}

int pt_h2h_trailers_nv(const struct pt_field *fields, size_t n, nghttp2_nv *nv, size_t nv_cap,
                       char *buf, size_t buf_cap)
{
    struct nv_out o = {nv, 0, nv_cap, buf, 0, buf_cap};

    return nv_fields(&o, fields, n, false);
}

int pt_h2h_request_nv(const struct pt_h2h_h1_request *r, nghttp2_nv *nv, size_t nv_cap, char *buf,
                      size_t buf_cap)
{
    struct nv_out o = {nv, 0, nv_cap, buf, 0, buf_cap};
    struct pt_str authority = r->host, path = r->target;
    int rc;

    if (!token_ok(r->method))
        return PT_H2H_EMETHOD;
    bool is_connect = PT_STR_EQ_LIT(r->method, "CONNECT");
    if (path.n == 0)
        return PT_H2H_EPATH;
    if (is_connect) {
        authority = r->target;
    } else if (path.p[0] != '/' && path.p[0] != '*') {
        /* absolute-form: scheme "://" authority [path-abempty] [ "?" query ] */
        const char *s = memmem(path.p, path.n, "://", 3);
        if (!s)
            return PT_H2H_EPATH;
        const char *a = s + 3, *end = path.p + path.n, *e = a;
        while (e < end && *e != '/' && *e != '?')
            e++;
        authority = (struct pt_str){a, (size_t)(e - a)};
        path = (struct pt_str){e, (size_t)(end - e)};
        bool is_options = PT_STR_EQ_LIT(r->method, "OPTIONS");
        if (path.n == 0) {
            path = is_options ? PT_STR("*") : PT_STR("/");
        } else if (path.p[0] == '?') {
            char *p = buf_take(&o, path.n + 1);
            if (!p)
                return PT_H2H_ETOOBIG;
            p[0] = '/';
            memcpy(p + 1, path.p, path.n);
            path = (struct pt_str){p, path.n + 1};
        }
    }
    if ((rc = nv_put(&o, ":method", 7, r->method, NGHTTP2_NV_FLAG_NONE)))
        return rc;
    if (!is_connect && (rc = nv_put(&o, ":scheme", 7, r->scheme, NGHTTP2_NV_FLAG_NONE)))
        return rc;
    if (authority.n && (rc = nv_put(&o, ":authority", 10, authority, NGHTTP2_NV_FLAG_NONE)))
        return rc;
    if (!is_connect && (rc = nv_put(&o, ":path", 5, path, NGHTTP2_NV_FLAG_NONE)))
        return rc;
    return nv_fields(&o, r->fields, r->n_fields, true);
}
