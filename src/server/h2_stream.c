/*
 * h2_stream.c - the HTTP/2 side of http/stream.h: how a handler's answer goes out on an HTTP/2
 * stream (the session is h2_conn.c).
 *
 * send_head turns the head into an nghttp2_nv array (pt_h2h_response_nv: lowercased names,
 * connection-specific fields dropped, RFC 9113 §8.2.2) and submits it (at once, or, for a local
 * answer whose request body still comes, when the request ends: "Held heads"), with a data
 * provider unless the response has no body (HEAD, 204, 304, 1xx, Content-Length: 0): then the
 * HEADERS frame carries END_STREAM. send_data and send_file only queue pieces on the stream
 * (memory borrowed when the handler says it is stable, else copied; files by descriptor); the
 * provider frames them as the peer's flow-control windows allow.
 *
 * Bodies leave without a copy where the transport allows: the provider answers with
 * NGHTTP2_DATA_FLAG_NO_COPY, and pt_h2_send_body writes the 9-byte frame header into the
 * connection's output buffer and then points the connection at the bytes themselves: a large
 * memory piece as the slice written after the buffer in the same writev, a file range as the
 * connection's file body, which its transport sends (sendfile(2) on a plain socket, record by
 * record over TLS, core/transport.h). A file is never read whole: one frame (16 KiB,
 * SETTINGS_MAX_FRAME_SIZE's default, which Portico never raises) at a time. While a slice or a file piece is pending the
 * session writes nothing else (the callbacks answer NGHTTP2_ERR_WOULDBLOCK), so the bytes leave
 * in order.
 *
 * Trailers (send_trailers) wait on the stream until the provider makes the body's last DATA
 * frame, which then goes without END_STREAM and nghttp2_submit_trailer ends the stream with
 * a HEADERS frame after it; req_trailers lends what the session kept of the request's.
 *
 * Rejected: copying every body into nghttp2's frame buffer through the plain read callback (a
 * copy of every byte, and a 16 KiB memcpy per frame of a large file); sending trailers or
 * 1xx heads other than through nghttp2_submit_headers (the library keeps the stream states).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "handler/handler.h"
#include "handler/static.h"
#include "server/h2_internal.h"

/* A memory piece up to this is copied behind its frame header (one buffer, one iovec); a
   larger one goes as the slice. */
#define COPY_MAX 2048u

static void seg_free(struct pt_h2_seg *g)
{
    if (g->owner) { /* the proxy's slice is no longer referenced: its flush may say so */
        g->owner->borrowed = NULL;
        g->owner->is_woken = true;
    }
    if (g->fd >= 0) {
        if (g->ref)
            pt_static_file_unref(g->ref);
        else
            close(g->fd);
    }
    free(g->owned);
    free(g);
}

/* The borrowed piece the connection is sending from goes away with its stream (a reset: the
   proxy drops the buffer it lives in), but its DATA frame is half out: the rest is copied. */
static void keep_lent(struct pt_h2_session *s)
{
    struct pt_conn *c = s->c;
    if (c->is_closed || !c->slice_len)
        return;
    char *copy = malloc(c->slice_len);
    if (!copy) {
        c->slice = NULL; /* the frame cannot be completed: the connection ends */
        c->slice_len = 0;
        s->is_doomed = true;
        return;
    }
    memcpy(copy, c->slice, c->slice_len);
    c->slice = copy;
    s->lent->owned = copy;
}

void pt_h2_stream_drop_body(struct pt_h2_stream *st)
{
    while (st->head) {
        struct pt_h2_seg *g = st->head;
        st->head = g->next;
        g->owner = NULL;
        if (g == st->s->lent) {
            st->s->is_lent_orphan = true;
            if (g->fd < 0 && !g->owned && st->borrowed == g)
                keep_lent(st->s);
        } else {
            seg_free(g);
        }
    }
    st->tail = NULL;
    st->borrowed = NULL;
}

void pt_h2_lent_done(struct pt_h2_session *s, bool is_closing)
{
    struct pt_conn *c = s->c;
    if (!s->lent || (!is_closing && (c->slice_len || c->file_left)))
        return;
    if (s->lent->fd >= 0 && c->file_fd == s->lent->fd) {
        c->file_fd = -1;
        c->file_left = 0;
    }
    c->slice = NULL;
    c->slice_len = 0;
    if (s->is_lent_orphan)
        seg_free(s->lent);
    s->lent = NULL;
    s->is_lent_orphan = false;
    if (s->lent_ws)
        pt_worker_snap_put(c->w, s->lent_ws);
    s->lent_ws = NULL;
}

static void seg_push(struct pt_h2_stream *st, struct pt_h2_seg *g)
{
    if (st->tail)
        st->tail->next = g;
    else
        st->head = g;
    st->tail = g;
    nghttp2_session_resume_data(st->s->ng, st->id); /* fails harmlessly when not deferred */
}

/* Whether a response with this head carries no body at all (RFC 9110 §6.4.1). */
static bool no_body(const struct pt_req *r, const struct pt_resp_head *h)
{
    return r->is_head || h->status == 204 || h->status == 304 || h->content_length == 0;
}

static bool should_hold(const struct pt_req *r, const struct pt_h2_stream *st,
                        const struct pt_resp_head *h);
static int hold(struct pt_h2_stream *st, const nghttp2_nv *nv, size_t n, bool body);

static int h2_send_head(struct pt_req *r, const struct pt_resp_head *h)
{
    struct pt_h2_stream *st = r->h2s;
    if (!st || h->is_overflow)
        return -1;
    size_t cap = (size_t)h->n_fields + 2, names = 32;
    for (uint32_t i = 0; i < h->n_fields; i++)
        names += h->fields[i].name.n;
    nghttp2_nv *nv = malloc(cap * sizeof(*nv) + names);
    if (!nv)
        return -1;
    char *buf = (char *)(nv + cap);
    int n = pt_h2h_response_nv(h->status, h->fields, h->n_fields, nv, cap - 1, buf, names);
    char cl[24];
    if (n >= 0 && h->content_length >= 0 && h->status >= 200 && h->status != 304) {
        int k = snprintf(cl, sizeof(cl), "%" PRId64, h->content_length);
        nv[n++] = (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)cl, 14, (size_t)k,
                               NGHTTP2_NV_FLAG_NONE};
    }
    int rc = -1;
    if (n < 0) {
        pt_log_ratelimited(PT_LOG_WARN, "request %s: response head cannot go over HTTP/2: %s",
                           r->request_id, pt_h2h_strerror(n));
    } else if (h->status < 200) {
        rc =
            nghttp2_submit_headers(st->s->ng, NGHTTP2_FLAG_NONE, st->id, NULL, nv, (size_t)n, NULL);
    } else if (!st->has_provider && !st->is_resp_done && !st->held) {
        bool body = !no_body(r, h);
        if (should_hold(r, st, h)) {
            rc = hold(st, nv, (size_t)n, body);
        } else {
            nghttp2_data_provider prd = {.source.ptr = st, .read_callback = pt_h2_read_body};
            rc = nghttp2_submit_response(st->s->ng, st->id, nv, (size_t)n, body ? &prd : NULL);
        }
        st->has_provider = body;
        if (!body)
            st->is_complete = true;
    }
    free(nv);
    return rc == 0 ? 0 : -1;
}

/* Held heads. A local answer (respond, redirect, static, an error page) reads no request
   body, but it is not sent while the request's body still comes, as long as that body stays
   small (PT_H2_HOLD_MAX) and within body_timeout: the request is then taken whole first, so
   that what the protocol says of it (a content-length that the DATA frames contradict, a
   second HEADERS frame, pseudo-header fields in trailers, frames on a stream the client
   reset...) is answered with the stream or connection error RFC 9113 asks for, not with a
   response that was already on its way. The answer to a body announced too large (413) goes
   at once, and a proxied response always does (the proxy streams both ways). */
static bool should_hold(const struct pt_req *r, const struct pt_h2_stream *st,
                        const struct pt_resp_head *h)
{
    return r->pstate == PT_PS_NONE && r->has_body && !st->body_eos && h->status != 413 &&
           st->body_in <= PT_H2_HOLD_MAX &&
           (r->req_body.is_chunked || r->req_body.left <= PT_H2_HOLD_MAX);
}

/* A copy of nv (names and values) in one block the caller frees, or NULL. */
static nghttp2_nv *copy_nv(const nghttp2_nv *nv, size_t n)
{
    size_t bytes = n * sizeof(*nv);
    for (size_t i = 0; i < n; i++)
        bytes += nv[i].namelen + nv[i].valuelen;
    nghttp2_nv *copy = malloc(bytes);
    if (!copy)
        return NULL;
    uint8_t *p = (uint8_t *)(copy + n);
    for (size_t i = 0; i < n; i++) {
        copy[i] = nv[i];
        copy[i].name = memcpy(p, nv[i].name, nv[i].namelen);
        p += nv[i].namelen;
        copy[i].value = memcpy(p, nv[i].value, nv[i].valuelen);
        p += nv[i].valuelen;
    }
    return copy;
}

/* Keeps a copy of nv (names and values) on st until pt_h2_release_head. */
static int hold(struct pt_h2_stream *st, const nghttp2_nv *nv, size_t n, bool body)
{
    nghttp2_nv *copy = copy_nv(nv, n);
    if (!copy)
        return -1;
    st->held = copy;
    st->n_held = n;
    st->held_body = body;
    const struct pt_config *cfg = st->r->cfg;
    st->body_deadline_ms = st->s->c->w->loop.now_ms + cfg->limits.body_timeout_ms;
    return 0;
}

void pt_h2_release_head(struct pt_h2_stream *st)
{
    if (!st->held)
        return;
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = pt_h2_read_body};
    if (!st->is_cancelled && nghttp2_submit_response(st->s->ng, st->id, st->held, st->n_held,
                                                     st->held_body ? &prd : NULL) != 0)
        nghttp2_submit_rst_stream(st->s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    free(st->held);
    st->held = NULL;
    st->n_held = 0;
    st->body_deadline_ms = 0;
}

/* A new memory piece of n bytes at p (not queued), or NULL. */
static struct pt_h2_seg *mem_seg(const char *p, size_t n)
{
    struct pt_h2_seg *g = calloc(1, sizeof(*g));
    if (g) {
        g->fd = -1;
        g->p = p;
        g->left = n;
    }
    return g;
}

static int h2_send_data(struct pt_req *r, const char *p, size_t n, bool is_stable)
{
    struct pt_h2_stream *st = r->h2s;
    if (!st->has_provider || n == 0)
        return 0; /* HEAD, or a response without a body */
    struct pt_h2_seg *g = mem_seg(p, n);
    if (!g)
        return -1;
    if (!is_stable) {
        g->owned = malloc(n);
        if (!g->owned) {
            free(g);
            return -1;
        }
        memcpy(g->owned, p, n);
        g->p = g->owned;
    }
    seg_push(st, g);
    return 0;
}

static void h2_send_file(struct pt_req *r, int fd, struct pt_static_file *ref, uint64_t off,
                         uint64_t len)
{
    struct pt_h2_stream *st = r->h2s;
    struct pt_h2_seg *g = st->has_provider && len ? calloc(1, sizeof(*g)) : NULL;
    if (!g) {
        if (ref)
            pt_static_file_unref(ref);
        else
            close(fd);
        return;
    }
    g->fd = fd;
    g->ref = ref;
    g->off = off;
    g->left = len;
    seg_push(st, g);
}

/* ---- streaming ----
 *
 * The proxy's operations. The request body is held per stream (h2_conn.c's on_data) in a
 * buffer the size of the stream's window: the session returns no window on its own
 * (nghttp2_option_set_no_auto_window_update), so a client can never send more than the
 * buffer holds, and bytes go back to the windows (nghttp2_session_consume) only when the proxy
 * has taken them and no view of them is out: a slow upstream stops the WINDOW_UPDATEs and so
 * the client. A borrowed response slice is a piece like the others, whose owner is told when
 * it is no longer referenced (copied behind its frame header, or written as the slice):
 * flush answers PT_OK only then. Wake-ups run the proxy from the session's step.
 */

static int h2_read_body(struct pt_req *r, struct pt_str *view)
{
    struct pt_h2_stream *st = r->h2s;
    struct pt_body *b = &r->req_body;
    if (st->body_err)
        return st->body_err;
    uint32_t n = st->body_tail - st->body_rpos;
    if (n == 0 && !st->body_eos && !b->is_done) {
        if (!st->body_deadline_ms)
            st->body_deadline_ms = st->s->c->w->loop.now_ms + r->cfg->limits.body_timeout_ms;
        return PT_AGAIN;
    }
    st->body_deadline_ms = 0;
    b->pending = n;
    if (st->body_eos)
        b->is_done = true;
    *view = (struct pt_str){st->body ? st->body + st->body_rpos : NULL, n};
    return PT_OK;
}

static void h2_consume_body(struct pt_req *r, size_t n)
{
    struct pt_h2_stream *st = r->h2s;
    st->body_rpos += (uint32_t)n;
    r->req_body.pending -= (uint32_t)n;
    if (r->req_body.pending || !st->body_rpos)
        return;
    /* No view is out: what came since moves to the front, the taken bytes go back to the
       windows (the session's step writes the WINDOW_UPDATEs). */
    uint32_t rest = st->body_tail - st->body_rpos;
    if (rest)
        memmove(st->body, st->body + st->body_rpos, rest);
    nghttp2_session_consume(st->s->ng, st->id, st->body_rpos);
    st->body_tail = rest;
    st->body_rpos = 0;
}

void pt_h2_body_release(struct pt_h2_stream *st, bool is_open)
{
    if (st->body_tail) {
        if (is_open)
            nghttp2_session_consume(st->s->ng, st->id, st->body_tail);
        else
            nghttp2_session_consume_connection(st->s->ng, st->body_tail);
    }
    free(st->body);
    st->body = NULL;
    st->body_rpos = st->body_tail = st->body_cap = 0;
}

static void h2_continue_body(struct pt_req *r)
{
    (void)r; /* HTTP/2 has no 100-continue to send: flow control paces the body */
}

static int h2_send_borrowed(struct pt_req *r, const char *p, size_t n)
{
    struct pt_h2_stream *st = r->h2s;
    if (!st->has_provider || n == 0 || st->is_cancelled)
        return 0; /* HEAD, or a response without a body */
    if (st->borrowed)
        return -1;
    struct pt_h2_seg *g = mem_seg(p, n);
    if (!g)
        return -1;
    g->owner = st;
    st->borrowed = g;
    seg_push(st, g);
    return 0;
}

static void h2_send_end(struct pt_req *r)
{
    struct pt_h2_stream *st = r->h2s;
    st->is_complete = true;
    nghttp2_session_resume_data(st->s->ng, st->id);
}

static int h2_flush(struct pt_req *r)
{
    struct pt_h2_stream *st = r->h2s;
    if (st->is_cancelled)
        return PT_ERR;
    return st->borrowed ? PT_AGAIN : PT_OK;
}

static void h2_finish(struct pt_req *r)
{
    /* The stream's close ends the request (h2_conn.c). A tunnel's body was never ended: its
       END_STREAM goes now (the client's END_STREAM, if it has not sent it, is answered by
       on_frame_send's RST_STREAM NO_ERROR). */
    struct pt_h2_stream *st = r->h2s;
    if (!st->is_complete && !st->is_cancelled)
        h2_send_end(r);
}

static void h2_reset(struct pt_req *r)
{
    struct pt_h2_stream *st = r->h2s;
    pt_h2_stream_drop_body(st); /* before the proxy lets go of the slice's buffer */
    st->is_complete = true;
    if (!st->is_cancelled) {
        st->is_cancelled = true;
        nghttp2_submit_rst_stream(st->s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
    }
    if (r->pstate != PT_PS_NONE)
        pt_proxy_abort(r); /* the upstream request is cancelled with the stream */
    pt_h2_body_release(st, true);
    pt_conn_yield(st->s->c);
}

static void h2_resume(struct pt_req *r)
{
    pt_h2_wake(r->h2s);
}

static void h2_yield(struct pt_req *r)
{
    r->h2s->is_woken = true;
    pt_conn_yield(r->h2s->s->c); /* the session's step runs it in the next loop iteration */
}

/* ---- tunnels ----
 *
 * An extended CONNECT (RFC 8441) after its 200: the DATA frames carry the tunnel's bytes both
 * ways. The client's are held exactly as a request body is (h2_conn.c's on_data, at most one
 * window, no body_size limit): read_raw lends them, consume_raw returns the taken ones to the
 * windows at once, so a slow target stops the client's WINDOW_UPDATEs. The target's go out
 * as borrowed pieces, one at a time: the client's window paces the target's reads. The
 * client's END_STREAM is the tunnel's EOF; a reset by either side ends it.
 */

static int h2_tunnel(struct pt_req *r)
{
    struct pt_h2_stream *st = r->h2s;
    if (!r->is_ext_connect)
        return -1;            /* HTTP/2 has no Upgrade (RFC 9113 §8.6) */
    st->body_deadline_ms = 0; /* a tunnel's idle time is the proxy's (tunnel_timeout) */
    return 0;
}

static int h2_read_raw(struct pt_req *r, struct pt_str *view)
{
    struct pt_h2_stream *st = r->h2s;
    if (st->is_cancelled)
        return PT_ERR;
    uint32_t n = st->body_tail - st->body_rpos;
    *view = (struct pt_str){n ? st->body + st->body_rpos : NULL, n};
    return n || st->body_eos ? PT_OK : PT_AGAIN;
}

static void h2_consume_raw(struct pt_req *r, size_t n)
{
    struct pt_h2_stream *st = r->h2s;
    uint32_t rest = st->body_tail - st->body_rpos - (uint32_t)n;
    if (rest)
        memmove(st->body, st->body + st->body_rpos + n, rest);
    st->body_tail = rest;
    st->body_rpos = 0;
    nghttp2_session_consume(st->s->ng, st->id, n);
}

/* Ends the body with trailer fields: they are kept on the stream and submitted (a HEADERS
   frame with END_STREAM) when the provider hands over the last DATA frame, so that they
   follow every byte queued (RFC 9113 §8.1). A response submitted without a body (its
   HEADERS frame already ended the stream) has no room for them: they are dropped, as are
   fields HTTP/2 cannot carry. */
static void h2_send_trailers(struct pt_req *r, const struct pt_field *f, size_t n)
{
    struct pt_h2_stream *st = r->h2s;
    if (n && st->has_provider && !st->is_complete && !st->is_cancelled && !st->trailers) {
        size_t names = 0;
        for (size_t i = 0; i < n; i++)
            names += f[i].name.n;
        nghttp2_nv *nv = malloc(n * sizeof(*nv) + names + 1);
        int k = nv ? pt_h2h_trailers_nv(f, n, nv, n, (char *)(nv + n), names + 1) : -1;
        if (k > 0) {
            st->trailers = copy_nv(nv, (size_t)k);
            st->n_trailers = st->trailers ? (size_t)k : 0;
        } else if (k < 0 && nv) {
            pt_log_ratelimited(PT_LOG_WARN, "request %s: trailers cannot go over HTTP/2: %s",
                               r->request_id, pt_h2h_strerror(k));
        }
        free(nv);
    }
    h2_send_end(r);
}

/* The request's trailer fields, kept by the session (h2_conn.c) for a proxied stream. */
static size_t h2_req_trailers(struct pt_req *r, const struct pt_field **f)
{
    struct pt_h2_stream *st = r->h2s;
    *f = st->req_tr;
    return st->body_eos ? st->n_req_tr : 0;
}

const struct pt_stream_ops pt_h2_stream_ops = {
    .send_head = h2_send_head,
    .send_data = h2_send_data,
    .send_file = h2_send_file,
    .read_body = h2_read_body,
    .consume_body = h2_consume_body,
    .continue_body = h2_continue_body,
    .send_borrowed = h2_send_borrowed,
    .send_end = h2_send_end,
    .send_trailers = h2_send_trailers,
    .req_trailers = h2_req_trailers,
    .flush = h2_flush,
    .finish = h2_finish,
    .reset = h2_reset,
    .resume = h2_resume,
    .yield = h2_yield,
    .tunnel = h2_tunnel,
    .read_raw = h2_read_raw,
    .consume_raw = h2_consume_raw,
};

/* The frame being made is the body's last: it ends the stream, or the trailers do (submitted
   now: nghttp2 sends them right after it). */
static void body_eof(nghttp2_session *ng, struct pt_h2_stream *st, uint32_t *flags)
{
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!st->trailers)
        return;
    if (nghttp2_submit_trailer(ng, st->id, st->trailers, st->n_trailers) == 0)
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    free(st->trailers);
    st->trailers = NULL;
    st->n_trailers = 0;
}

ssize_t pt_h2_read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                        nghttp2_data_source *src, void *ud)
{
    (void)id, (void)buf, (void)ud;
    struct pt_h2_stream *st = src->ptr;
    struct pt_h2_seg *g = st->head;
    if (!g) {
        if (!st->is_complete)
            return NGHTTP2_ERR_DEFERRED; /* seg_push resumes it */
        body_eof(ng, st, flags);
        return 0;
    }
    size_t n = (size_t)PT_MIN((uint64_t)len, g->left);
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == g->left && !g->next && st->is_complete)
        body_eof(ng, st, flags);
    return (ssize_t)n;
}

/* Room for n more bytes in c->out, allocating or compacting it. */
static bool out_room(struct pt_conn *c, size_t n)
{
    if (!c->out.data && pt_buf_alloc(&c->out, PT_BUF_LARGE) < 0)
        return false;
    if (pt_buf_room(&c->out) < n)
        pt_buf_compact(&c->out);
    return pt_buf_room(&c->out) >= n;
}

int pt_h2_send_body(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd, size_t len,
                    nghttp2_data_source *src, void *ud)
{
    (void)ng;
    struct pt_h2_session *s = ud;
    struct pt_conn *c = s->c;
    struct pt_h2_stream *st = src->ptr;
    struct pt_h2_seg *g = st->head;
    if (!g && st->is_cancelled)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* reset since it was framed */
    if (!g || g->left < len || frame->data.padlen)
        return NGHTTP2_ERR_CALLBACK_FAILURE; /* the provider never says more than it has */
    if (c->slice_len || c->file_left)
        return NGHTTP2_ERR_WOULDBLOCK; /* the previous piece first: bytes leave in order */
    bool copy = g->fd < 0 && len <= COPY_MAX;
    pt_h2_lent_done(s, false); /* the previous lent piece is sent */
    if (!out_room(c, 9 + (copy ? len : 0)))
        return NGHTTP2_ERR_WOULDBLOCK;
    pt_buf_put(&c->out, framehd, 9);
    if (g->fd < 0 && copy) {
        pt_buf_put(&c->out, g->p, len);
    } else if (g->fd < 0) {
        c->slice = g->p;
        c->slice_len = (uint32_t)len;
        s->lent = g;
        if (!g->owned && st->r) { /* snapshot memory: keep it alive until sent */
            s->lent_ws = st->r->ws;
            s->lent_ws->users++;
        }
    } else {
        /* Borrowed by the connection until sent: it never closes a file it has no request
           for (c->r stays NULL on HTTP/2), and this piece outlives the send. */
        c->file_fd = g->fd;
        c->file_ref = NULL;
        c->file_off = g->off;
        c->file_left = len;
        s->lent = g;
    }
    g->p += g->fd < 0 ? len : 0;
    g->off += g->fd >= 0 ? len : 0;
    g->left -= len;
    if (st->r)
        st->r->bytes_out += len;
    if (g->left == 0) {
        st->head = g->next;
        if (!st->head)
            st->tail = NULL;
        if (g == s->lent)
            s->is_lent_orphan = true;
        else
            seg_free(g);
    }
    return 0;
}
