/*
 * h2_headers.h - HTTP/2 header blocks to HTTP semantics and back (RFC 9113 §8.2, §8.3;
 * RFC 8441 for extended CONNECT).
 *
 * Two directions, no session logic (framing, HPACK and stream states are the nghttp2 session's):
 *
 *   received block  ->  pt_h2h_field() once per field, as nghttp2's on_header callback hands
 *                       them over, then pt_h2h_finish_request/_response/_trailers(): either a
 *                       stream-error reason or a protocol-neutral view (method, scheme,
 *                       authority, path and query, regular fields, joined Cookie).
 *   head to send    ->  pt_h2h_response_nv(), pt_h2h_trailers_nv(), pt_h2h_request_nv(): an
 *                       nghttp2_nv array from a status or an HTTP/1.1-style request and fields.
 *
 * Nothing here allocates. The caller passes the field array, the Cookie buffer and the name
 * buffer; every slice in a result points into the caller's bytes (the names and values it fed
 * in, or its buffers), which must stay put as long as the result is used. nghttp2 hands a field
 * over in buffers that live only during its callback unless referenced (nghttp2_rcbuf_incref) or
 * copied into the stream's memory: the session module keeps them alive, this module never copies.
 */
#ifndef PT_HTTP_H2_HEADERS_H
#define PT_HTTP_H2_HEADERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

#include "core/str.h"
#include "http/fields.h"

/*
 * Why a header block is refused. Every reason makes the message malformed (RFC 9113 §8.1.1):
 * a stream error of type PROTOCOL_ERROR for a request (RST_STREAM), a 502 for an upstream's
 * response. The two limits (PT_H2H_ETOOMANY, PT_H2H_ETOOBIG) may instead be answered with 431
 * (RFC 9113 §10.5.1; pt_h2h_err_is_limit()). The values do not overlap enum pt_h1_err.
 */
enum pt_h2h_err {
    PT_H2H_ENAME = -20,           /* empty name, uppercase, not a token, or a colon inside */
    PT_H2H_EVALUE = -21,          /* NUL, CR, LF, another control byte or DEL; or leading or
                                     trailing SP/HTAB (RFC 9113 §8.2.1) */
    PT_H2H_EPSEUDO = -22,         /* unknown pseudo-header, one of the other message kind, one
                                     in trailers, :protocol without CONNECT or not enabled,
                                     :scheme or :path with plain CONNECT */
    PT_H2H_EPSEUDO_DUP = -23,     /* a pseudo-header twice */
    PT_H2H_EPSEUDO_ORDER = -24,   /* a pseudo-header after a regular field */
    PT_H2H_EMISSING = -25,        /* a required pseudo-header absent */
    PT_H2H_EMETHOD = -26,         /* :method not a token */
    PT_H2H_ESCHEME = -27,         /* :scheme not a URI scheme */
    PT_H2H_EPATH = -28,           /* :path empty, not '/'-led ("*" only for OPTIONS), a byte
                                     outside visible ASCII, or '#' */
    PT_H2H_EAUTHORITY = -29,      /* :authority not host[:port] (userinfo refused), no port with
                                     CONNECT, or no authority at all for http/https */
    PT_H2H_ECONN_FIELD = -30,     /* Connection, Keep-Alive, Proxy-Connection,
                                     Transfer-Encoding or Upgrade (RFC 9113 §8.2.2) */
    PT_H2H_ETE = -31,             /* TE other than "trailers" */
    PT_H2H_EHOST = -32,           /* Host twice, not host[:port] (or empty), or naming another
                                     authority than :authority (RFC 9113 §8.3.1) */
    PT_H2H_ECONTENT_LENGTH = -33, /* not 1*DIGIT, over 2^62, or repeated with another value
                                     (a request's: repeated at all) */
    PT_H2H_ESTATUS = -34,         /* :status not three digits 100..999, or 101 (§8.6) */
    PT_H2H_ETOOMANY = -35,        /* more fields than the limit or the caller's array */
    PT_H2H_ETOOBIG = -36,         /* decoded block over the size limit, or a buffer too small */
};

/* One field: a borrowed name and value. Same layout as struct pt_h1_header. */
enum pt_h2h_kind {
    PT_H2H_REQUEST = 0, /* a request's header block (server side) */
    PT_H2H_RESPONSE,    /* a response's header block, 1xx included (client side) */
    PT_H2H_TRAILERS,    /* a trailer block, either direction */
};

/* Limits and switches for one header block; they come from the configuration. */
struct pt_h2h_limits {
    size_t max_list_bytes;       /* RFC 9113 §6.5.2 size (name + value + 32 per field, pseudo-
                                    headers included); the SETTINGS_MAX_HEADER_LIST_SIZE sent */
    uint32_t max_fields;         /* fields in one block, pseudo-headers included */
    bool allow_extended_connect; /* SETTINGS_ENABLE_CONNECT_PROTOCOL was sent (RFC 8441 §3) */
};

/*
 * The state of one header block being received. Initialise with pt_h2h_begin(); the members
 * are internal to h2_headers.c (read the results through the finish functions).
 */
struct pt_h2h_block {
    int kind;                    /* enum pt_h2h_kind */
    int err;                     /* first error; sticky */
    struct pt_h2h_limits lim;    /* copied at begin */
    struct pt_field *fields;     /* caller's array of cap */
    uint32_t cap, n;             /* capacity; regular fields stored */
    char *cookie;                /* caller's buffer for the joined Cookie (may be NULL) */
    size_t cookie_cap, cookie_n; /* its size; bytes used */
    size_t list_bytes;           /* RFC 9113 §6.5.2 size so far */
    uint32_t n_seen;             /* fields seen, pseudo-headers included */
    unsigned pseudo;             /* bit set of pseudo-headers seen */
    bool is_regular_seen;        /* a regular field came: no pseudo-header may follow */
    bool has_host;               /* a Host field came */
    bool is_te_trailers;         /* "te: trailers" came */
    int64_t content_length;      /* -1: no Content-Length */
    int status;                  /* :status (responses) */
    struct pt_str method, scheme, authority, path, protocol, host;
};

/* A received request: the protocol-neutral view of the header block. */
struct pt_h2h_request {
    struct pt_str method;    /* :method, a token */
    int method_id;           /* enum pt_http_method (h1_parse.h) */
    struct pt_str scheme;    /* :scheme; empty for plain CONNECT */
    struct pt_str authority; /* :authority, else the Host field; host[:port]; may be empty
                                   only for a scheme other than http/https */
    struct pt_str target;    /* :path as received (the HTTP/1.1 request-target); empty for
                                   plain CONNECT, "*" for OPTIONS to the server */
    struct pt_str path;      /* target up to '?' */
    struct pt_str query;     /* after '?' (without it); empty when !has_query */
    bool has_query;          /* the target holds a '?' */
    struct pt_str protocol;  /* :protocol of extended CONNECT (RFC 8441); else empty */
    bool is_connect;         /* :method is CONNECT (plain or extended) */
    bool is_te_trailers;     /* "te: trailers" was sent (dropped from fields) */
    int64_t content_length;  /* -1 when absent; content-length stays among the fields */
    struct pt_str cookie;    /* crumbs joined with "; " (RFC 9113 §8.2.3), in the caller's
                                   buffer; empty when none */
    struct pt_field *fields; /* regular fields in order, less host, cookie and te */
    uint32_t n_fields;
};

/* A received response head (or 1xx): status and regular fields. */
struct pt_h2h_response {
    int status;              /* 100..999, never 101 */
    int64_t content_length;  /* -1 when absent */
    struct pt_field *fields; /* regular fields in order, less te */
    uint32_t n_fields;
};

/*
 * Starts receiving a header block of kind (enum pt_h2h_kind) under lim (copied). fields/cap:
 * the caller's array for the regular fields. cookie/cookie_cap: the buffer the Cookie crumbs of
 * a request are joined in (NULL/0 when Cookie is not expected: a crumb is then PT_H2H_ETOOBIG).
 * Borrows fields and cookie until the block is finished and its view dropped.
 */
void pt_h2h_begin(struct pt_h2h_block *b, int kind, const struct pt_h2h_limits *lim,
                  struct pt_field *fields, uint32_t cap, char *cookie, size_t cookie_cap);

/*
 * Takes the next field of the block, in received order. Checks everything that one field
 * decides (name and value bytes, pseudo-header rules, connection-specific fields, TE, Host
 * against :authority, Content-Length, limits) and stores regular fields as borrowed slices:
 * name and value must stay valid and unmoved until the block's view is dropped. Returns 0 or a
 * negative enum pt_h2h_err; an error is sticky (every later call returns it).
 */
int pt_h2h_field(struct pt_h2h_block *b, struct pt_str name, struct pt_str value);

/*
 * Ends a request block (END_HEADERS received) and checks what needs the whole block: the
 * required pseudo-headers (:method, :scheme and :path, except plain CONNECT, which needs
 * :authority with a port and neither :scheme nor :path; RFC 8441 CONNECT needs all four), :path
 * against the method, an authority for http/https. Fills *r on success. Returns 0 or a
 * negative enum pt_h2h_err.
 */
int pt_h2h_finish_request(struct pt_h2h_block *b, struct pt_h2h_request *r);

/* Ends a response block: :status is required. Fills *r. Returns 0 or enum pt_h2h_err. */
int pt_h2h_finish_response(struct pt_h2h_block *b, struct pt_h2h_response *r);

/*
 * Ends a trailer block (which never holds a pseudo-header, RFC 9113 §8.1). *fields and *n get
 * the fields (the caller's array). Returns 0 or a negative enum pt_h2h_err.
 */
int pt_h2h_finish_trailers(struct pt_h2h_block *b, struct pt_field **fields, uint32_t *n);

/*
 * Convenience for a whole block already in an array (tests, fuzzing, a block from elsewhere):
 * begin, one pt_h2h_field() per entry of nv, no finish. Returns 0 or enum pt_h2h_err.
 */
int pt_h2h_feed_nv(struct pt_h2h_block *b, const nghttp2_nv *nv, size_t n);

/* Whether err is one of the limits (431 may answer it rather than RST_STREAM). */
bool pt_h2h_err_is_limit(int err);

/* A short static description of err for logs ("connection-specific field"). */
const char *pt_h2h_strerror(int err);

/*
 * Builds the nghttp2_nv array of a response head: ":status" then fields, in order. Fields
 * named Connection, Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade, TE, Host,
 * HTTP2-Settings, any field Connection lists, and any name starting with ':' are dropped.
 * Names are written lowercased into buf (buf_cap bytes; the status digits go there too); values
 * are referenced, not copied. nv_cap entries at most. Authorization-like fields get
 * NGHTTP2_NV_FLAG_NO_INDEX. nghttp2_submit_* copies the array, so nv and buf may be reused after
 * the submit call; fields' bytes only need to live until then too.
 * Returns the number of entries, PT_H2H_ESTATUS (status outside 100..999, or 101),
 * PT_H2H_ENAME/PT_H2H_EVALUE for a field HTTP/2 cannot carry, PT_H2H_ETOOMANY (nv full) or
 * PT_H2H_ETOOBIG (buf full).
 */
int pt_h2h_response_nv(int status, const struct pt_field *fields, size_t n, nghttp2_nv *nv,
                       size_t nv_cap, char *buf, size_t buf_cap);

/* Same for a trailer block: no pseudo-header, same filtering. Returns entries or an error. */
int pt_h2h_trailers_nv(const struct pt_field *fields, size_t n, nghttp2_nv *nv, size_t nv_cap,
                       char *buf, size_t buf_cap);

/* An HTTP/1.1-style request to send to an HTTP/2 upstream. All slices are borrowed. */
struct pt_h2h_h1_request {
    struct pt_str method;          /* token */
    struct pt_str target;          /* origin-form, absolute-form, authority-form (CONNECT)
                                          or "*" (OPTIONS); already checked by its parser */
    struct pt_str host;            /* Host value; empty when none */
    struct pt_str scheme;          /* :scheme to send ("https" over h2, "http" over h2c) */
    const struct pt_field *fields; /* Host may be among them: it is dropped */
    size_t n_fields;
};

/*
 * Builds the nghttp2_nv array of a request to an HTTP/2 upstream: :method, :scheme,
 * :authority, :path, then the fields filtered as for a response (Host becomes :authority; TE is
 * kept only as "trailers"). An absolute-form target gives :authority and :path (RFC 9112
 * §3.2.2: its authority wins over Host); an empty path becomes "/" ("*" for OPTIONS). CONNECT
 * sends :method and :authority only (RFC 9113 §8.5). :authority is left out when there is no
 * authority at all. Buffers and ownership as pt_h2h_response_nv(). Returns the number of
 * entries or PT_H2H_EMETHOD, PT_H2H_EPATH, PT_H2H_ENAME, PT_H2H_EVALUE, PT_H2H_ETOOMANY,
 * PT_H2H_ETOOBIG.
 */
int pt_h2h_request_nv(const struct pt_h2h_h1_request *r, nghttp2_nv *nv, size_t nv_cap, char *buf,
                      size_t buf_cap);

#endif
