/*
 * h2_client.h - HTTP/2 toward upstream targets: client sessions (libnghttp2) on upstream
 * connections, and the streams that requests run on them.
 *
 * A connection (struct pt_h2c_conn, private to h2_client.c) is one struct pt_uconn owned by
 * the session, not by a request: many requests share it, each on a stream. A worker keeps at
 * most max_conns connections per target key (address, TLS settings) in its pool (struct
 * pt_upool); a request opens a stream on the oldest connection with room below the peer's
 * SETTINGS_MAX_CONCURRENT_STREAMS, and a new connection opens only when every one is full.
 *
 * A stream (struct pt_h2c_stream) belongs to the request that opened it until it lets go
 * (pt_h2c_release). The layer above hears about it only through the callbacks it registered
 * (struct pt_h2c_ops) with an opaque owner pointer: `event` whenever the stream's state below
 * changed (head, data, trailers, end, failure), after the session's I/O round, never from
 * inside nghttp2. The owner then reads the stream's fields.
 */
#ifndef PT_UPSTREAM_H2_CLIENT_H
#define PT_UPSTREAM_H2_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <nghttp2/nghttp2.h>

#include "core/buf.h"
#include "core/loop.h"
#include "core/sock.h"
#include "http/fields.h"
#include "http/h2_headers.h"

struct pt_h2c_conn;
struct pt_tls_client_ctx;
struct pt_upool;

#define PT_H2C_MAX_CONNS 4              /* connections per target per worker */
#define PT_H2C_WINDOW (256u * 1024u)    /* stream receive window = a stream's buffer */
#define PT_H2C_CONN_WINDOW (1u << 24)   /* connection receive window */
#define PT_H2C_ASSUMED_STREAMS 100u     /* the peer's limit until its SETTINGS arrive */
#define PT_H2C_MAX_FIELDS 128u          /* fields of a response head plus its trailers */
#define PT_H2C_HEAD_BYTES (64u * 1024u) /* their names and values */
#define PT_H2C_MAX_REFUSED 3u           /* refused-stream retries of one request */

/* How a stream failed (0: it did not). */
enum pt_h2c_fail {
    PT_H2C_OK = 0,
    PT_H2C_CONNECT,         /* the connection could not be made (refused, TLS, no ALPN h2) */
    PT_H2C_CONNECT_TIMEOUT, /* connect or TLS handshake past connect_timeout */
    PT_H2C_RESET,           /* the stream or its connection was reset or closed */
    PT_H2C_REFUSED,         /* never processed: REFUSED_STREAM, or above a GOAWAY's last id */
    PT_H2C_BAD,             /* a malformed response head */
};

/* The owner's callbacks; owner is the pointer given to pt_h2c_open. */
struct pt_h2c_ops {
    /* The stream changed (head, data, trailers, end, failure): read its fields. */
    void (*event)(void *owner);
    /* The stream's timer (pt_h2c_set_timer) fired. */
    void (*timeout)(void *owner);
    /* Up to len request body bytes copied into buf: returns their number (0 with *eof set at
       the end of the body), -EAGAIN when none are there yet (pt_h2c_resume_body later), or
       another negative value to abandon the request (the stream is reset). */
    ssize_t (*read_body)(void *owner, uint8_t *buf, size_t len, bool *eof);
    /* After the body's end: the request's trailer fields, copied into out (cap entries; the
       bytes they point to stay valid until the request ends); their number (0: none). */
    size_t (*req_trailers)(void *owner, struct pt_field *out, size_t cap);
};

/* Where a connection goes; copied by pt_h2c_open when it makes one. */
struct pt_h2c_target {
    const struct pt_sockaddr *addr;
    uint32_t tls_host_hash;           /* pool key part (0: plain, h2c) */
    struct pt_tls_client_ctx *tls_cc; /* offers ALPN h2; NULL for h2c */
    const char *host;                 /* SNI and certificate name (TLS) */
    const char *session_key;          /* TLS session store key */
    uint32_t connect_timeout_ms;
    uint32_t max_conns; /* at most this many connections to the key (PT_H2C_MAX_CONNS) */
};

struct pt_h2c_stream {
    struct pt_h2c_conn *conn; /* NULL once the connection is gone */
    struct pt_h2c_stream *next;
    const struct pt_h2c_ops *ops;
    void *owner;
    int32_t id; /* 0 until submitted */
    struct pt_timer timer;
    /* the response, as it arrives */
    int status;              /* the final head's status; 0 until it came */
    int64_t content_length;  /* -1: none announced */
    struct pt_field *fields; /* head fields [0, n_fields), then trailers */
    uint32_t n_fields;
    struct pt_field *trailers;
    uint32_t n_trailers;
    struct pt_buf in;      /* DATA bytes not consumed yet (at most the stream window) */
    int fail;              /* enum pt_h2c_fail: set once, the stream is over */
    uint32_t error_code;   /* RST_STREAM / GOAWAY code, for logs */
    bool is_end;           /* END_STREAM received: in holds the rest of the body */
    bool is_closed;        /* nghttp2 closed the stream */
    bool is_body_deferred; /* the body provider waits for pt_h2c_resume_body */
    bool is_reused;        /* opened on a connection that was already up */
    uint32_t timer_ms;     /* pt_h2c_set_timer while the connection is not up yet */
    bool is_conn_lost;     /* its connection died under it (not a reset of this stream) */
    bool is_dirty;
    struct pt_h2c_stream *dirty_next;
    struct pt_loop *loop;
    /* receiving a header block */
    char *hbuf; /* PT_H2C_HEAD_BYTES: copies of names and values (the fields point here) */
    size_t hbuf_n;
    struct pt_h2h_block blk; /* the block under way */
    struct pt_field field_arr[PT_H2C_MAX_FIELDS];
};

/*
 * Opens a stream toward t on one of pool p's HTTP/2 connections to t's key (connecting a new
 * one when all are full and fewer than t->max_conns exist). The stream is not submitted yet
 * (pt_h2c_submit). Returns 0 with *out set (owned by the caller until pt_h2c_release), or a
 * negative errno: the connect failed at once (*what names the call, for the log). Borrows t.
 */
int pt_h2c_open(struct pt_upool *p, const struct pt_h2c_target *t, const struct pt_h2c_ops *ops,
                void *owner, struct pt_h2c_stream **out, const char **what);

/* Sends the request head nv[0..n) (copied) on s, with a body (read through ops->read_body)
   when has_body. Returns 0, or -1 when nghttp2 refuses (the stream fails with PT_H2C_RESET). */
int pt_h2c_submit(struct pt_h2c_stream *s, const nghttp2_nv *nv, size_t n, bool has_body);

/* Request body bytes may be there again after ops->read_body said -EAGAIN. */
void pt_h2c_resume_body(struct pt_h2c_stream *s);

/* The owner took the first n bytes of s->in: they leave it and the peer may send as many more
   (WINDOW_UPDATE). The rest moves to the front of s->in. */
void pt_h2c_consume(struct pt_h2c_stream *s, size_t n);

/* Arms (ms > 0) or stops (0) s's timer; ops->timeout when it fires. While s's connection is
   still connecting the timer waits for it to be up (connect_timeout covers the connect). */
void pt_h2c_set_timer(struct pt_h2c_stream *s, uint32_t ms);

/* The owner lets go of s: a stream still open is cancelled (RST_STREAM CANCEL, the connection
   stays), and s is freed. NULL does nothing. */
void pt_h2c_release(struct pt_h2c_stream *s);

/* Closes pool p's HTTP/2 connections: with force every one (their streams fail), else the
   idle ones, while every other one says GOAWAY and closes once its streams are done. */
void pt_h2c_pool_close(struct pt_upool *p, bool force);

#endif
