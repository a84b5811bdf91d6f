/*
 * uconn.h - an upstream connection and the per-worker keep-alive pool it waits in between
 * requests.
 *
 * A connection belongs to one worker (one loop, one thread: nothing here is locked). While a
 * request uses it, its owner (an opaque pointer) and two callbacks registered by the layer
 * above hear about it: on_ready after each readiness event (the flags below are updated
 * first), on_timeout when its timer fires. While idle in the pool it has no owner; any event
 * or the idle timer then means the peer closed it (or sent bytes nobody asked for), and the
 * pool closes it.
 *
 * The pool is keyed by target address and, for TLS, a hash of the SNI host name and the
 * client context (tls_host_hash): a connection verified for one upstream never serves another
 * whose TLS settings differ. At most `keepalive` idle connections wait per key, the least
 * recently used is evicted, and each waits at most PT_UPOOL_IDLE_MS.
 */
#ifndef PT_UPSTREAM_UCONN_H
#define PT_UPSTREAM_UCONN_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/loop.h"
#include "core/transport.h"

struct pt_upool;
struct pt_h2c_conn;

#define PT_UPOOL_BUCKETS 64
#define PT_UPOOL_IDLE_MS 30000u /* an idle pooled connection is closed after this */

/* Called with the owner registered on the connection (see struct pt_uconn). */
typedef void (*pt_uconn_cb)(void *owner);

struct pt_uconn {
    struct pt_io io;
    struct pt_timer timer; /* connect, response and idle-in-pool timeouts */
    struct pt_defer defer;
    struct pt_upool *pool;  /* the worker's pool (its loop runs this connection) */
    void *owner;            /* the request using it; NULL while idle in the pool */
    pt_uconn_cb on_ready;   /* readiness flags changed (owner set) */
    pt_uconn_cb on_timeout; /* timer fired (owner set) */
    struct pt_uconn *pool_prev, *pool_next;
    struct pt_buf in;        /* response bytes; held only while a request uses it */
    struct pt_sockaddr addr; /* pool key, with tls_host_hash */
    uint32_t tls_host_hash;  /* 0 for plain connections; else a hash of the SNI host name */
    struct pt_transport t;   /* plain, or TLS for https targets (t.is_handshaking until done) */
    uint32_t pool_hash;
    uint32_t n_requests; /* requests sent on this connection */
    bool is_connecting;
    bool is_eof;
    bool is_closed;
};

/* A worker's idle upstream connections. Embedded in the worker; one thread. */
struct pt_upool {
    struct pt_loop *loop;
    struct pt_uconn *bucket[PT_UPOOL_BUCKETS]; /* idle connections by key hash, newest first */
    struct pt_h2c_conn *h2_conns; /* HTTP/2 connections, shared by streams (h2_client.h) */
    bool is_draining;             /* shutting down: put closes instead of keeping */
};

/* Prepares an empty pool whose connections run on loop (borrowed, outlives the pool). */
void pt_upool_init(struct pt_upool *p, struct pt_loop *loop);
/* Closes every idle connection and makes every later put close its connection (the worker
   is shutting down); HTTP/2 connections with streams say GOAWAY and close when they end. */
void pt_upool_drain(struct pt_upool *p);
/* Closes every idle connection, HTTP/2 ones without streams included (their memory goes with
   the loop's next deferred batch). */
void pt_upool_destroy(struct pt_upool *p);

/* Takes an idle connection to addr with this tls_host_hash out of the pool (its idle timer
   stopped), or NULL. The caller owns it until pt_upool_put or pt_uconn_close. */
struct pt_uconn *pt_upool_get(struct pt_upool *p, const struct pt_sockaddr *addr,
                              uint32_t tls_host_hash);
/* Gives u back: kept idle (at most keepalive per key, the least recently used evicted), or
   closed when keepalive is 0, the peer closed its side or the pool drains. Drops the owner and
   the input buffer either way. */
void pt_upool_put(struct pt_upool *p, struct pt_uconn *u, uint32_t keepalive);

/*
 * Wraps fd (a socket connecting or connected to addr; in_progress: connect not finished) in a
 * new connection of pool p, registered on its loop for read, write and hang-up, edge-triggered.
 * Returns it (n_requests 1, no owner yet), or NULL with *err (positive errno) and *what (the
 * failed call, for the log) set, fd closed. Allocates one object.
 */
struct pt_uconn *pt_uconn_new(struct pt_upool *p, int fd, const struct pt_sockaddr *addr,
                              uint32_t tls_host_hash, bool in_progress, int *err,
                              const char **what);
/* Closes u (TLS shut down, fd closed, timer stopped); the memory is freed after the loop's
   current batch of events, so a callback still on the stack may look at u. Idempotent. The
   caller must have taken u out of the pool (pt_upool_get) or never put it there. */
void pt_uconn_close(struct pt_uconn *u);

#endif
