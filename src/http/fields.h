/*
 * fields.h - request and response heads that belong to no protocol.
 *
 * A protocol reads a request head (HTTP/1.1's request line and fields, later HTTP/2's header
 * block) into a struct pt_req_head, whose slices borrow its input buffer until the handler
 * has started; the pipeline and the handlers see nothing else of it. A handler describes its answer as a struct pt_resp_head; the response-header stage
 * (handler/resp_head.c) adds and removes what Portico's rules say; the protocol under the
 * request serialises it (pt_h1_write_head for HTTP/1.1). Fields are slices: they borrow the
 * bytes of whoever made them (the upstream's response buffer, the snapshot, a handler's
 * scratch), which outlive the head, because the head is written out before any of them moves.
 * The field array is the caller's (on its stack): making a head allocates nothing.
 */
#ifndef PT_HTTP_FIELDS_H
#define PT_HTTP_FIELDS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/str.h"

#define PT_RESP_FIELDS_MAX 131072u

/* One header field. Parsed ones: name as received (case preserved), value without leading and
   trailing whitespace (may be empty). */
struct pt_field {
    struct pt_str name;
    struct pt_str value;
};

/* A request head, as the protocol under it read and checked it. */
struct pt_req_head {
    struct pt_str method;
    int method_id;           /* enum pt_http_method (h1_parse.h) */
    struct pt_str authority; /* host[:port]: Host, or the authority of an absolute target */
    struct pt_str target;    /* the request target as received, for logs */
    struct pt_str path;      /* the path as received (not normalised), from '/' */
    struct pt_str query;     /* after '?'; p is NULL when there is none */
    int64_t content_length;  /* the request body's announced length; -1: none announced */
    const struct pt_field *fields;
    size_t n_fields;
};

/* The value of the first field named name (ASCII case-insensitive); p NULL when absent. */
struct pt_str pt_req_field(const struct pt_req_head *h, const char *name, size_t n);

struct pt_resp_head {
    int status;
    struct pt_str reason;   /* HTTP/1.1 reason phrase to keep (a proxied one); empty: ours */
    int64_t content_length; /* >= 0: framed by this length; -1: no Content-Length from us */
    bool is_chunked;        /* the body follows in chunks (HTTP/1.1 framing) */
    bool has_date;          /* a Date field is among the fields */
    bool has_server;        /* a Server field is among the fields */
    bool is_overflow;       /* a field did not fit in the array: the head must be refused */
    struct pt_field *fields;
    uint32_t n_fields;
    uint32_t cap;
};

/* Starts an empty head with status on this thread's field array (the previous head made on
   this thread is gone). */
void pt_resp_head_init(struct pt_resp_head *h, int status);

/* Frees this thread's field array (thread exit). */
void pt_resp_fields_drain(void);

/* Appends one field (borrowed). Sets is_overflow when the array cannot grow (no memory, or
   over PT_RESP_FIELDS_MAX fields). */
void pt_resp_add(struct pt_resp_head *h, struct pt_str name, struct pt_str value);

/* Appends the fields of CRLF-ended "Name: value" lines (borrowed from lines). A line without
   a colon is skipped. */
void pt_resp_add_lines(struct pt_resp_head *h, const char *lines, size_t len);

/* Whether a field is named name (ASCII case-insensitive). */
bool pt_resp_has(const struct pt_resp_head *h, struct pt_str name);

/* The standard reason phrase of status ("Not Found"), or one for its class. */
const char *pt_http_reason(int status);

/* Whether a trailer field may cross the proxy (RFC 9110 §6.5.1): a token name, a value of
   visible bytes, SP and HTAB (obs-text allowed) without surrounding whitespace, and none of
   the fields a recipient must not take from trailers: framing (Content-Length,
   Transfer-Encoding, Trailer), routing (Host), connection-specific fields (Connection,
   Keep-Alive, Proxy-*, TE, Upgrade), request modifiers and authentication (Authorization,
   Cookie, Set-Cookie, Expect, Range, If-*, Max-Forwards, Cache-Control), content metadata
   (Content-Type, Content-Encoding, Content-Range), Age, Date, Location, Retry-After, Vary,
   WWW-Authenticate/Proxy-Authenticate, and pseudo-headers. A smuggled framing or routing field
   is how a trailer turns into a second message (RFC 9112 §11.2). */
bool pt_trailer_field_ok(struct pt_str name, struct pt_str value);

/* How an HTTP/1.1 connection ends after this response. */
enum pt_h1_conn {
    PT_H1_CONN_KEEP = 0, /* HTTP/1.1 keep-alive: no Connection field */
    PT_H1_CONN_KEEP_10,  /* an HTTP/1.0 client that asked for keep-alive */
    PT_H1_CONN_CLOSE,    /* Connection: close */
    PT_H1_CONN_INTERIM,  /* a 1xx head: no framing, no Connection field */
};

/* Writes h as an HTTP/1.1 response head (status line, fields, framing, Connection, the empty
   line) at the end of b, in one pass. Returns 0, or -1 with b unchanged when it does not fit
   (or h->is_overflow). */
int pt_h1_write_head(struct pt_buf *b, const struct pt_resp_head *h, enum pt_h1_conn conn);

#endif
