/*
 * stream.h - how a handler answers a request: the operations that every protocol implements
 * for the requests it carries (HTTP/1.1: server/h1_stream.c).
 *
 * A handler makes its head (http/fields.h), passes it through the response-header stage, and
 * gives it to send_head; then the body as bytes (send_data) or as a file range (send_file).
 * It never learns which protocol carries the request: the framing (Content-Length, chunks,
 * DATA frames), the connection's fate (keep-alive, close) and the writing are the stream's.
 * The operations only queue: the protocol writes when the socket lets it.
 *
 * A handler that relays a body as it comes (the proxy) also uses the streaming operations:
 * read_body/consume_body give it the request body decoded, as a view of the protocol's input
 * (no copy); send_borrowed queues response bytes that stay the caller's until flush says they
 * went out, so the caller holds back its own reads meanwhile (back-pressure); send_end closes
 * the body; reset abandons the exchange. The protocol calls the handler back (pt_proxy_run)
 * when its side can move again; resume and yield are how the handler asks for that call.
 *
 * Body filters (compression, a cache tee) sit between a handler and the protocol: a filter is
 * an ops table of its own, pushed on the request's chain (pt_stream_push_filter, with
 * pt_stream_below and pt_stream_filter_state in handler/request.h, since they touch the request),
 * whose operations do their work and call the same operation of the table below them
 * (pt_stream_below). r->stream is the top of the chain. A request with no filter keeps
 * r->stream pointed straight at the protocol's table, so an empty chain costs nothing: no
 * call, no copy, sendfile and the one-writev head stay as they are (docs/internals/response.md).
 */
#ifndef PT_HTTP_STREAM_H
#define PT_HTTP_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pt_field;
struct pt_req;
struct pt_resp_head;
struct pt_static_file;
struct pt_str;

struct pt_stream_ops {
    /* Queues h: a final head that went through the response-header stage, or an interim (1xx)
       one. Returns 0, or -1 when it cannot be queued (it does not fit: nothing was queued). */
    int (*send_head)(struct pt_req *r, const struct pt_resp_head *h);
    /* Queues n body bytes after the head. is_stable: p stays valid until the response is
       done (snapshot memory), so the stream may send from it without a copy; else the bytes
       are copied now. Returns 0, or -1 when unstable bytes do not fit. */
    int (*send_data)(struct pt_req *r, const char *p, size_t n, bool is_stable);
    /* Queues len bytes of fd from off as the rest of the body. The stream owns fd from here:
       it closes it, or, when ref is given (the static file cache's entry that owns fd), drops
       that reference instead. */
    void (*send_file)(struct pt_req *r, int fd, struct pt_static_file *ref, uint64_t off,
                      uint64_t len);

    /* ---- streaming (the proxy) ---- */
    /* The next request body bytes, decoded (no framing), as a view of the protocol's input:
       PT_OK with view->n > 0 (the same bytes again until consume_body takes them), PT_OK with
       view->n == 0 at the end of the body (r->req_body.is_done), PT_AGAIN when none are there
       yet (the body timeout runs; the protocol calls the handler back when bytes come), or a
       status to answer with: 400 (malformed, cut short), 413 (over limits.body_size), 503. */
    int (*read_body)(struct pt_req *r, struct pt_str *view);
    /* Takes the first n bytes of the last view of read_body (they were forwarded). */
    void (*consume_body)(struct pt_req *r, size_t n);
    /* The handler is about to want the request body: a client that waits for permission
       (Expect: 100-continue) is told to send it, unless its input is already here or an
       answer began. */
    void (*continue_body)(struct pt_req *r);
    /* Queues n body bytes without a copy: p stays the caller's, unchanged, until flush returns
       PT_OK. At most one borrowed piece is queued at a time. Returns 0, or -1. */
    int (*send_borrowed)(struct pt_req *r, const char *p, size_t n);
    /* Ends the body (HTTP/1.1: the last chunk when the head went out chunked; nothing when it
       had a length). */
    void (*send_end)(struct pt_req *r);
    /* Ends the body with n trailer fields (n == 0 is send_end): HTTP/2 sends them in a HEADERS
       frame with END_STREAM; HTTP/1.1 in the last chunk when the head went out chunked, and
       drops them when it had a length. The fields are copied before it returns. */
    void (*send_trailers)(struct pt_req *r, const struct pt_field *f, size_t n);
    /* The request's trailer fields, once read_body reported the end of the body: *f gets them
       (valid until the request finishes) and their number is returned; 0 when none came. */
    size_t (*req_trailers)(struct pt_req *r, const struct pt_field **f);
    /* Writes what is queued. PT_OK: all of it went out (borrowed bytes are the caller's
       again); PT_AGAIN: the client is slow, the caller is called back when it takes more;
       PT_ERR: the client is gone (the caller resets). */
    int (*flush)(struct pt_req *r);
    /* The response was handed over whole and flushed: the protocol logs the request and goes
       on (HTTP/1.1: the next request or the close). r is gone after the call. */
    void (*finish)(struct pt_req *r);
    /* Abandons the exchange after its head went out, or when the client is gone (HTTP/1.1
       closes the connection; HTTP/2 will reset the stream). Borrowed bytes are dropped. r
       stays valid until the current event's callbacks return (resume on it does nothing). */
    void (*reset)(struct pt_req *r);
    /* Runs the request's step now: the protocol writes what it can and calls the handler
       back (a wake-up from the handler's own events: upstream readiness, timers). */
    void (*resume)(struct pt_req *r);
    /* The same in the next loop iteration (a busy exchange gives the worker's others a turn). */
    void (*yield)(struct pt_req *r);

    /* ---- tunnels (an upgrade, RFC 9110 §7.8; HTTP/2's extended CONNECT, RFC 8441) ---- */
    /* Before the head that opens the tunnel is queued (HTTP/1.1: the 101; HTTP/2: a 200 to
       an extended CONNECT, r->is_ext_connect): from here the exchange carries raw bytes, both
       ways (HTTP/1.1: the connection, which closes when the exchange finishes; HTTP/2: the
       stream's DATA frames, under its flow control). Returns 0, or -1 when it cannot. */
    int (*tunnel)(struct pt_req *r);
    /* The client's next raw bytes as a view of the protocol's input: PT_OK with view->n > 0
       (the same bytes until consume_raw takes them), PT_OK with view->n == 0 at the client's
       EOF (HTTP/2: its END_STREAM), PT_AGAIN when none are there yet (the handler is called back), PT_ERR. Raw bytes
       go out with send_borrowed (no framing once tunnel was called). */
    int (*read_raw)(struct pt_req *r, struct pt_str *view);
    /* Takes the first n bytes of the last view of read_raw. */
    void (*consume_raw)(struct pt_req *r, size_t n);
};

/* Most filters one request may carry. */
#define PT_STREAM_FILTERS_MAX 4

/* A request's filter chain: layer 0 is the protocol's table, layer i (1..n) a filter that
   wraps layer i - 1. Only pt_req.n_filters is cleared per request; the arrays are written
   before they are read. */
struct pt_stream_chain {
    const struct pt_stream_ops *ops[PT_STREAM_FILTERS_MAX + 1];
    void *state[PT_STREAM_FILTERS_MAX + 1];
};

#endif
