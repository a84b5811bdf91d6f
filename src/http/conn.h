/*
 * conn.h - the objects of one HTTP/1.1 exchange: client connection and request. The upstream
 * connection is in upstream/uconn.h, the request's attempts on an upstream (embedded here as
 * pt_req.at) in upstream/attempt.h.
 *
 * Lifetimes nest: worker -> client connection -> request -> upstream connection (borrowed from
 * the worker's keep-alive pool, upstream/uconn.h, for the length of one request). A connection
 * never changes thread, so none of this is locked. Buffers are taken while there are bytes to hold and given
 * back when idle (core/buf.h), which is what keeps 10,000 idle keep-alive connections cheap.
 *
 * Data moves without copies where it can: a request head is parsed in place in c->in; bodies are
 * written straight from the buffer they were read into (a "slice" written after the small
 * framing buffer with one writev). Only heads are rewritten, once each.
 */
#ifndef PT_HTTP_CONN_H
#define PT_HTTP_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/common.h"
#include "core/loop.h"
#include "core/transport.h"
#include "http/h1_parse.h"
#include "http/stream.h"
#include "route/route.h"
#include "upstream/attempt.h"

struct pt_tls_conn;
struct pt_h2_session;
struct pt_h2_stream;

struct pt_worker;
struct pt_static_file;
struct pt_wsnap;
struct pt_req;

enum pt_conn_state {
    PT_CS_HANDSHAKE = 0, /* transport handshake in progress (TLS listeners only) */
    PT_CS_HEAD,          /* waiting for (the rest of) a request head; keep-alive idle when empty */
    PT_CS_REQ,           /* a request is being handled */
    PT_CS_CLOSING,       /* flushing a last response, then close */
    PT_CS_H2,            /* an HTTP/2 session runs the connection (server/h2_conn.c) */
};

struct pt_conn {
    struct pt_io io;
    struct pt_transport t; /* plain or TLS over io.fd; holds the readiness flags */
    struct pt_timer timer; /* header, keep-alive, body and send timeouts */
    struct pt_defer defer;
    struct pt_defer post; /* pt_loop_post: continue in the next loop iteration */
    struct pt_worker *w;
    struct pt_conn *prev, *next; /* worker's list of client connections */
    struct pt_buf in;            /* bytes from the client: heads, then body */
    struct pt_buf out;           /* bytes to the client written before the slice */
    const char *slice;           /* borrowed body bytes written after out (zero copy) */
    uint32_t slice_len;
    struct pt_req *r;         /* request in progress, NULL between requests */
    struct pt_h2_session *h2; /* non-NULL in state PT_CS_H2: the HTTP/2 session */
    int file_fd;              /* file body being sent after out and the slice (-1: none) */
    uint64_t file_off;        /* next byte of file_fd to send */
    uint64_t file_left;       /* bytes of file_fd still to send */
    /* Non-NULL: file_fd is shared with the static file cache; drop this reference with
       pt_static_file_unref (handler/static.h) instead of closing file_fd. */
    struct pt_static_file *file_ref;
    struct pt_sockaddr peer;
    uint64_t id;               /* connection number, for logs */
    uint64_t head_deadline_ms; /* header_timeout deadline of the head being read */
    size_t head_scan;          /* pt_h1_find_head_end position in in */
    uint32_t n_requests;
    uint8_t state; /* enum pt_conn_state */
    bool is_eof;   /* the client half-closed (read returned 0) */
    bool is_closed;
    bool again;          /* pt_conn_run: run another step (a request ended) */
    bool is_posted;      /* post is queued */
    uint8_t listen_idx;  /* which listen entry accepted it */
    bool is_lingering;   /* write side shut; draining input before close */
    bool is_chunked_out; /* the response in progress goes out in chunks (h1_stream.c) */
    bool chunk_open;     /* a chunk's data is queued; its CRLF is not yet */
    bool may_h2c;        /* plain listener with http2: true, no byte of HTTP/1.1 seen yet: a client
                     preface makes it an HTTP/2 connection (RFC 9113 §3.3) */
};

enum pt_proxy_state {
    PT_PS_NONE = 0,
    PT_PS_ACTIVE, /* connecting, sending the request, receiving the response */
    PT_PS_DONE,   /* response fully forwarded */
    PT_PS_QUEUED, /* every target at max_connections: waiting in the upstream's queue */
};

/* Body framing of one direction of a proxied exchange. The request's (req_body) is kept by the
   protocol that reads it (HTTP/1.1: h1_stream.c); handlers read is_done, is_chunked (no
   length announced) and pending. The response's (resp_body) is the proxy's. */
struct pt_body {
    bool is_chunked;         /* decoded from chunked input */
    bool is_close_delimited; /* ends at EOF (responses only) */
    bool is_done;            /* last byte seen */
    uint64_t left;           /* Content-Length bytes still to come */
    uint32_t pending;        /* decoded bytes at the front of the input buffer not yet sent */
    struct pt_h1_chunked dec;
};

struct pt_req {
    struct pt_conn *c; /* the protocol's: handlers use stream and the fields below */
    const struct pt_stream_ops *stream; /* how to answer: the protocol's, or the top filter's */
    struct pt_h2_stream *h2s;           /* the HTTP/2 stream carrying it; NULL on HTTP/1.1 */
    uint8_t n_filters;                  /* body filters on chain (http/stream.h) */
    struct pt_worker *w;                /* the worker that runs it (loop, pool, scratch) */
    const struct pt_sockaddr *peer;     /* the client's address (its connection's peer) */
    struct pt_tls_conn *tls;            /* the client's TLS session; NULL on plain listeners */
    uint8_t listen_idx;                 /* the listen entry the request came in on */
    bool is_tls;                        /* the request came over TLS */
    struct pt_wsnap *ws;                /* snapshot this request runs on (holds a use) */
    const struct pt_config *cfg;        /* == ws snapshot's config */
    const struct pt_route_cfg *route;
    const struct pt_site_cfg *site; /* the site the request was routed in */
    uint64_t start_ms;
    int method_id;
    uint8_t minor_version;
    bool is_keepalive; /* connection may serve another request after this one */
    bool is_head;
    bool has_body; /* the request has a body (CL > 0 or chunked) */
    bool expect_continue;
    bool is_discarding;       /* a local answer waits while the request body is read and dropped */
    uint32_t discarded_bytes; /* request body bytes read and dropped so far (wire bytes) */
    bool wants_json;          /* Accept asks for JSON: error pages in JSON */
    bool response_started;    /* a final response head went to the client */
    int status;               /* final status sent (for the log) */
    uint64_t bytes_out;       /* body bytes sent to the client */
    struct pt_body req_body;  /* client -> upstream */
    struct pt_body resp_body; /* upstream -> client */

    /* proxy */
    int pstate;           /* enum pt_proxy_state */
    struct pt_attempt at; /* upstream, target, connection, retries (upstream/attempt.h) */
    uint16_t set_cookie_len;
    struct pt_buf uout;    /* upstream request head, then chunk framing */
    const char *body_view; /* request body bytes being written upstream (req_body.pending) */
    uint32_t uhead_len;    /* length of the head at the front of uout (for a retry) */
    size_t resp_scan;      /* pt_h1_find_head_end position in the response */
    bool head_sent;        /* the whole upstream head was written */
    bool resp_head_seen;
    bool upstream_reusable;

    const char *upstream_name; /* for the access log; borrowed from the snapshot */

    /* for the access log (copied: the head is gone once dispatched); not cleared between
       requests: each is written NUL-terminated before use */
    char request_id[64];
    uint8_t request_id_len;
    char method[16];
    char uri[512];  /* request target, truncated */
    char host[264]; /* a DNS name (at most 253 bytes), ":port", NUL; longer: 400 */
    char referer[256];
    char user_agent[256];
    char lb_key[256];     /* hash or cookie balancer input (at.key borrows it), from dispatch */
    char set_cookie[256]; /* Set-Cookie lines for the response (set_cookie_len bytes) */
    struct pt_stream_chain chain; /* body filters, n_filters of them (http/stream.h) */
};

#endif
