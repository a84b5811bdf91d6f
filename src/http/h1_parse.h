/*
 * h1_parse.h - HTTP/1.1 message-head parsers and the chunked body decoder (RFC 9112).
 *
 * Contract (the picohttpparser model, our own code): the parsers never allocate; the caller
 * passes the header array; every slice in the result points into the caller's buffer. A head
 * is parsed once it is complete: the caller finds the end of the head with pt_h1_find_head_end()
 * (resumable: it takes where the previous scan stopped) and then calls the parser on exactly
 * those bytes. Parsing is strict: anything RFC 9112 lets a recipient reject is rejected, because
 * a proxy that is lenient where its backend is strict (or the reverse) is how request smuggling
 * happens.
 */
#ifndef PT_HTTP_H1_PARSE_H
#define PT_HTTP_H1_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/str.h"
#include "http/fields.h"

/* Parser results (negative); a positive result is the number of bytes the head occupies. */
enum pt_h1_err {
    PT_H1_INCOMPLETE = -2, /* need more bytes */
    PT_H1_EBAD = -3,       /* malformed: answer 400 (502 for a response) and close */
    PT_H1_ETOOMANY = -4,   /* more headers than the caller's array holds: 431 */
    PT_H1_EURI = -5,       /* request target longer than uri_max: 414 */
    PT_H1_EVERSION = -6,   /* HTTP version other than 1.0/1.1 (incl. 0.9 and 2.0): 505 or 400 */
    PT_H1_ECODING = -7,    /* request transfer coding other than chunked (gzip, chunked): 501 */
    PT_H1_TRAILERS = -8,   /* chunked decoder: a trailer section follows and no buffer was given */
};

enum pt_http_method {
    PT_METHOD_OTHER = 0,
    PT_METHOD_GET,
    PT_METHOD_HEAD,
    PT_METHOD_POST,
    PT_METHOD_PUT,
    PT_METHOD_DELETE,
    PT_METHOD_CONNECT,
    PT_METHOD_OPTIONS,
    PT_METHOD_TRACE,
    PT_METHOD_PATCH,
    PT_METHOD__COUNT
};

/* Framing facts every HTTP/1 message head yields, derived while parsing. */
struct pt_h1_framing {
    int64_t content_length; /* -1 when absent */
    bool is_chunked;        /* Transfer-Encoding present and it is exactly "chunked" */
    bool conn_close;        /* "close" among the Connection options */
    bool conn_keepalive;    /* "keep-alive" among the Connection options (matters for 1.0) */
    bool has_upgrade;       /* an Upgrade header is present */
};

struct pt_h1_request {
    struct pt_str method;     /* token */
    int method_id;            /* enum pt_http_method */
    struct pt_str target;     /* request-target as received */
    int minor_version;        /* 0 or 1 (HTTP/1.x) */
    struct pt_field *headers; /* in: caller's array; out: filled in order */
    size_t num_headers;       /* in: capacity of headers; out: number used */
    struct pt_h1_framing framing;
    struct pt_str host;   /* the request's host: the authority of an absolute-form target
                             (RFC 9112 §3.2.2), else the Host header value (empty when absent) */
    bool has_host;        /* a Host header was present (exactly one) */
    bool expect_continue; /* "Expect: 100-continue" */
};

struct pt_h1_response {
    int minor_version;
    int status;               /* 100..999 */
    struct pt_str reason;     /* may be empty */
    struct pt_field *headers; /* in: caller's array; out: filled */
    size_t num_headers;       /* in: capacity; out: number used */
    struct pt_h1_framing framing;
};

/*
 * Scans buf[0..len) for the blank line ending a message head (CRLF CRLF). *scanned carries the
 * scan position between calls (start it at 0 for a new message), so each byte is examined once
 * however the head arrives. Returns the head length including the final CRLF, or
 * PT_H1_INCOMPLETE. A bare LF line end is found too and the parser rejects it.
 */
ssize_t pt_h1_find_head_end(const char *buf, size_t len, size_t *scanned);

/*
 * Parses a complete request head buf[0..len) (len as returned by pt_h1_find_head_end).
 * r->headers/r->num_headers must be set on entry. uri_max bounds the request-target (414).
 * Returns len on success or a negative enum pt_h1_err. Rejected with PT_H1_EBAD (RFC 9112):
 * both Content-Length and Transfer-Encoding; repeated (even equal) or invalid Content-Length;
 * a Transfer-Encoding whose last coding is not chunked (or that is present in HTTP/1.0);
 * whitespace between a field name and the colon; obs-fold; bare CR or LF; NUL or other control
 * characters in the head; an invalid method, target or version; a '#' anywhere in the target; a
 * missing or repeated Host in HTTP/1.1; an empty header name. HTTP/0.9 (no version) and versions other than 1.0/1.1 give
 * PT_H1_EVERSION. A Transfer-Encoding that ends in chunked but lists another coding before it
 * ("gzip, chunked") gives PT_H1_ECODING: Portico decodes only chunked (501, RFC 9112 §6.1).
 */
int pt_h1_parse_request(const char *buf, size_t len, struct pt_h1_request *r, size_t uri_max);

/*
 * Parses a complete response head. Same strictness as requests (a malformed response is 502
 * and the upstream connection is not reused); a transfer coding other than chunked is refused
 * as malformed too (PT_H1_EBAD): Portico never relabels a body it cannot decode. Returns len or
 * a negative enum pt_h1_err other than PT_H1_ECODING.
 */
int pt_h1_parse_response(const char *buf, size_t len, struct pt_h1_response *r);

/* Method token to enum pt_http_method (PT_METHOD_OTHER when not a standard one). */
int pt_http_method_id(const char *p, size_t n);

/*
 * Incremental chunked-body decoder (RFC 9112 §7.1). Decodes in place: chunk-size lines and
 * CRLFs are removed and data is moved to the front of the buffer. Chunk extensions are
 * validated and dropped. Trailer fields are checked (a token, a colon, field-value bytes) and
 * bounded by max_trailer_bytes; they are dropped, or kept as their raw lines in the caller's
 * buffer tr ("name:value CRLF" each, without the empty line that ends the section), which
 * pt_h1_trailer_fields() splits. A caller that keeps them only when they come sets
 * want_trailers and leaves tr NULL: the decoder then stops before the first trailer field
 * (PT_H1_TRAILERS) so that the buffer is allocated only for a body that has trailers.
 */
struct pt_h1_chunked {
    int state;                /* internal; zero-initialise (memset) before the first call */
    uint64_t remaining;       /* bytes left in the current chunk's data */
    size_t line_bytes;        /* bytes seen on the current size/trailer line (bounded) */
    size_t trailer_bytes;     /* bytes of trailer section seen */
    size_t max_trailer_bytes; /* set by the caller; 0 means the default of 8192 (and tr's size) */
    char *tr;                 /* the caller's buffer of max_trailer_bytes for the trailer
                                 lines, or NULL (dropped, or PT_H1_TRAILERS with want_trailers) */
    size_t tr_len;            /* bytes of tr used */
    size_t unread;            /* after PT_H1_TRAILERS: the bytes not decoded, at buf + *len */
    bool want_trailers;       /* stop with PT_H1_TRAILERS before trailers while tr is NULL */
};

/* Default (and tr's size when max_trailer_bytes is 0) of a trailer section's bytes. */
#define PT_H1_TRAILER_MAX_DEFAULT 8192u

/*
 * Decodes buf[0..*len). On return buf[0..*len) holds the decoded data bytes of this call.
 * Returns PT_H1_INCOMPLETE when the body has not ended (call again with more bytes), PT_H1_EBAD
 * on malformed input (bad hex, chunk size over 2^62, missing CRLF, control chars, oversized
 * line or trailers), PT_H1_TRAILERS (want_trailers, tr NULL: a trailer field starts; the
 * d->unread bytes from there were moved to buf + *len: set tr and call again on them), or,
 * when the last chunk and trailers are complete, the number (>= 0) of bytes that followed the
 * body in the input; they were moved to start at buf + *len.
 */
ssize_t pt_h1_chunked_decode(struct pt_h1_chunked *d, char *buf, size_t *len);

/*
 * Splits the trailer lines the decoder kept (tr[0..tr_len)) into at most cap fields of f:
 * names as received, values without surrounding whitespace, both pointing into tr. Returns the
 * number of fields, or -1 when there are more than cap.
 */
ssize_t pt_h1_trailer_fields(const char *tr, size_t n, struct pt_field *f, size_t cap);

#endif
