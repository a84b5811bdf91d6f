/*
 * conn.h - the HTTP/1.1 client connection (struct pt_conn, server/conn.c) and the operations
 * of its lifecycle. The request it carries is handler/request.h's; the upstream connection is
 * in upstream/uconn.h.
 *
 * Lifetimes nest: worker -> client connection -> request -> upstream connection. A connection
 * never changes thread, so none of this is locked. Buffers are taken while there are bytes to
 * hold and given back when idle (core/buf.h), which is what keeps 10,000 idle keep-alive
 * connections cheap.
 *
 * Data moves without copies where it can: a request head is parsed in place in c->in; bodies are
 * written straight from the buffer they were read into (a "slice" written after the small
 * framing buffer with one writev). Only heads are rewritten, once each.
 */
#ifndef PT_SERVER_CONN_H
#define PT_SERVER_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/common.h"
#include "core/loop.h"
#include "core/transport.h"
#include "http/stream.h"
#include "server/connguard.h"

struct pt_h2_session;
struct pt_listener;
struct pt_req;
struct pt_static_file;
struct pt_worker;

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
    bool again;               /* pt_conn_run: run another step (a request ended) */
    bool is_posted;           /* post is on the loop's posted list (or in the batch it runs) */
    bool is_deferred;         /* defer is on the deferred list: freed when off both (conn.c) */
    uint8_t listen_idx;       /* which listen entry accepted it */
    uint32_t ctr_base;        /* its listener's connection series (admin/metrics.h); PT_CTR_NONE */
    bool is_lingering;        /* write side shut; draining input before close */
    bool is_chunked_out;      /* the response in progress goes out in chunks (h1_stream.c) */
    bool chunk_open;          /* a chunk's data is queued; its CRLF is not yet */
    bool may_h2c;             /* plain listener with http2: true, no byte of HTTP/1.1 seen yet: a
                            client preface makes it an HTTP/2 connection (RFC 9113 §3.3) */
    uint64_t cl_key;          /* its per-client connection count (server/connguard.c); 0: none */
    struct pt_credit body_cr; /* request bodies: limits.body_min_rate over body_timeout */
    struct pt_credit send_cr; /* responses: limits.send_min_rate over send_timeout */
};

/* The HTTP/1.1 stream operations (h1_stream.c) every request on a client connection uses. */
extern const struct pt_stream_ops pt_h1_stream;

void pt_conn_accept(struct pt_listener *l);
void pt_conn_close(struct pt_conn *c);
/* Drives a client connection after its handler made progress. */
void pt_conn_run(struct pt_conn *c);
/* Ends the request in progress: logs it, then reads the next one or closes. */
void pt_conn_request_done(struct pt_conn *c);
/* Called before a local answer to r (whose head is well framed): arranges for a request body
   the answer leaves unread to be read and dropped, or for the connection to close after it. */
void pt_conn_plan_discard(struct pt_req *r);
/* Reads from the client through its transport (plain or TLS). Returns bytes, 0 at EOF, -EAGAIN
   (c->t's readiness flags updated: wait for the next event) or another negative value. */
ssize_t pt_conn_read(struct pt_conn *c, void *buf, size_t len);
/* Writes c->out then the slice. Returns PT_OK when everything went out, PT_AGAIN when the
   socket is full (send timer armed), or PT_ERR when the connection failed. */
int pt_conn_flush(struct pt_conn *c);
/* Takes a request object for c on the worker's current snapshot (one use of it), set up for
   HTTP/1.1 (the caller changes stream for another protocol); c->r is not touched. NULL when
   out of memory. */
struct pt_req *pt_conn_req_new(struct pt_conn *c);
/* Ends r, which pt_conn_req_new gave and which is not c->r: writes its access-log line when
   log, releases the proxy side, the snapshot use and the object. */
void pt_conn_req_end(struct pt_worker *w, struct pt_req *r, bool log);
/* Makes the worker's scratch (header array, normalised-path buffer) big enough for cfg's
   limits. Returns false when out of memory. */
bool pt_conn_ensure_scratch(struct pt_worker *w, const struct pt_config *cfg);
/* Continues c in the next loop iteration (a busy stream yielding to the worker's others). */
void pt_conn_yield(struct pt_conn *c);
/* Closes c, a client too slow to take its response (send_min_rate, send_timeout), with a
   reset: the bytes queued for it are dropped at once. Counts and logs it (connguard.h). */
void pt_conn_abort_slow(struct pt_conn *c);
/* Closes idle connections; used when draining. */
void pt_conn_close_idle(struct pt_worker *w);

#endif
