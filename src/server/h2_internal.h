/*
 * h2_internal.h - what h2_conn.c (the session) and h2_stream.c (the stream operations and the
 * response bodies) share. Not for other files.
 */
#ifndef PT_SERVER_H2_INTERNAL_H
#define PT_SERVER_H2_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

#include "http/h2_headers.h"
#include "server/worker.h"

/* One piece of a response body, in the order the handler queued them. */
struct pt_h2_seg {
    struct pt_h2_seg *next;
    const char *p;              /* memory: the next byte to send (borrowed or owned) */
    char *owned;                /* memory copied at send_data (freed with the piece), or NULL */
    uint64_t left;              /* bytes still to send */
    int fd;                     /* file: its descriptor, -1 for memory */
    struct pt_static_file *ref; /* file: the cache entry owning fd, or NULL (close fd) */
    uint64_t off;               /* file: offset of the next byte */
    struct pt_h2_stream *owner; /* borrowed (send_borrowed): the stream waiting for it, or NULL */
};

struct pt_h2_stream {
    struct pt_h2_session *s;
    struct pt_h2_stream *prev, *next; /* the session's streams */
    struct pt_req *r;                 /* NULL until the head is complete and valid */
    int32_t id;
    struct pt_h2_seg *head, *tail; /* body queued by the handler, not yet framed */
    uint64_t body_in;              /* request body bytes received (held or dropped) */
    struct pt_h2_seg *borrowed;    /* the proxy's borrowed piece, until no longer referenced */
    /* The request body held for the proxy: [body_rpos, body_tail) not yet taken; every byte
       in [0, body_tail) is still counted against the flow-control windows, so body_tail never
       exceeds the window (body_cap). */
    char *body;
    uint32_t body_rpos, body_tail, body_cap;
    uint64_t body_deadline_ms; /* read_body waits for bytes until then (0: not waiting) */
    int body_err;              /* a status read_body answers with (413), or 0 */
    bool body_eos;             /* END_STREAM received: the body is whole */
    /* A local answer's head held until the request ends (h2_stream.c, "Held heads"): the
       nghttp2_nv array and the bytes it points to, in one block. */
    nghttp2_nv *held;
    size_t n_held;
    bool held_body; /* the held head has a body to provide */
    /* Response trailers (send_trailers), submitted with the last DATA frame: an nghttp2_nv
       array and its bytes in one block, or NULL. */
    nghttp2_nv *trailers;
    size_t n_trailers;
    /* Request trailers kept for the proxy (req_trailers): the fields and their bytes in one
       block, or NULL. */
    struct pt_field *req_tr;
    uint32_t n_req_tr;
    bool is_woken;     /* the handler asked to be called back (h2_conn.c runs it) */
    bool has_provider; /* the response was submitted with a body */
    bool is_complete;  /* the handler has queued all it will */
    bool is_resp_done; /* our END_STREAM went out */
    bool is_cancelled; /* reset by either side before the response ended */
};

struct pt_h2_session {
    nghttp2_session *ng;
    struct pt_conn *c;
    struct pt_h2_stream streams; /* list head */
    uint32_t n_streams;
    /* The header block being received: blocks never interleave (RFC 9113 §4.3), so one set of
       scratch serves every stream. */
    struct pt_h2_stream *blk_st; /* its stream, NULL when none or ignored */
    bool blk_is_trailers;
    struct pt_h2h_block blk;
    struct pt_h2h_limits lim;
    uint64_t blk_decoded;    /* decoded bytes of the block (RFC 9113 §6.5.2 size) */
    struct pt_field *fields; /* lim.max_fields + 1 (room for the joined Cookie) */
    char *cookie;            /* lim.max_list_bytes */
    nghttp2_rcbuf **rc;      /* references held on the block's names and values */
    uint32_t n_rc, rc_cap;
    /* Defences (h2_conn.c, "Defences"). */
    uint64_t bytes_in;      /* bytes received from the client */
    uint64_t work;          /* work units charged to it */
    uint64_t progress_ms;   /* last time a byte moved either way */
    uint64_t idle_since_ms; /* last time a stream opened or closed */
    uint64_t discard_max;   /* request body bytes a stream may drop */
    uint32_t body_win;      /* a stream's window: the most request body it may hold */
    /* The piece the connection is sending from right now (its slice or its file body): it
       must outlive its stream, which may end as soon as its last frame is handed over. */
    struct pt_h2_seg *lent;
    bool is_lent_orphan;      /* lent is no stream's any more: free it once sent */
    struct pt_wsnap *lent_ws; /* a use of the snapshot a borrowed slice lives in */
    bool in_step;             /* pt_h2_conn_step runs: a wake-up only marks the stream */
    bool is_goaway;           /* GOAWAY submitted */
    bool is_doomed;           /* abuse or a fatal error: flush the GOAWAY and close */
};

/* The HTTP/2 stream operations (h2_stream.c). */
extern const struct pt_stream_ops pt_h2_stream_ops;

/* The data provider's read callback (h2_stream.c); source.ptr is the stream. */
ssize_t pt_h2_read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                        nghttp2_data_source *src, void *ud);

/* nghttp2's send_data_callback for NGHTTP2_DATA_FLAG_NO_COPY frames (h2_stream.c). */
int pt_h2_send_body(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd, size_t len,
                    nghttp2_data_source *src, void *ud);

/* Frees every queued piece of st's body (closing or unreferencing files); the one the
   connection is sending from is kept until sent. */
void pt_h2_stream_drop_body(struct pt_h2_stream *st);

/* Lets go of the request body st holds, returning its bytes to the flow-control windows
   (is_open: the stream still exists in nghttp2, else only the connection's window). */
void pt_h2_body_release(struct pt_h2_stream *st, bool is_open);

/* Asks the session to call the proxy back for st's request (at once when outside its step). */
void pt_h2_wake(struct pt_h2_stream *st);
/* A local answer's head is held while its request's body (at most PT_H2_HOLD_MAX bytes) still
   comes. Submits it now, when held (the body ended, grew past the bound, or timed out). */
void pt_h2_release_head(struct pt_h2_stream *st);
#define PT_H2_HOLD_MAX (64u * 1024u)

/* The connection has sent the lent piece (or is closing, is_closing): lets go of it. */
void pt_h2_lent_done(struct pt_h2_session *s, bool is_closing);

#endif
