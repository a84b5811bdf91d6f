/*
 * h1_stream.c - the HTTP/1.1 side of http/stream.h: how a handler's answer goes out on a
 * client connection.
 *
 * Everything is queued on the connection (conn.c writes it): the head and small bodies into
 * c->out, a larger stable body as the slice written after it in the same writev, a file as
 * c->file_fd sent with sendfile after both. The head's Connection field says what conn.c will
 * do after the response: close when the request asked for it, when its body cannot be
 * drained, or when the worker is draining; keep-alive said explicitly to an HTTP/1.0 client.
 * A HEAD request gets the head alone.
 *
 * The streaming side (the proxy's pump) is HTTP/1.1's too: the request body is read into
 * c->in and its chunks decoded in place, so the handler sees a view of the bare bytes; a
 * response of unknown length goes out chunked to an HTTP/1.1 client (each borrowed piece is
 * the slice after its chunk-size line; its CRLF goes in front of the next line or of the last
 * chunk, so a piece and its framing still leave in one writev) and close-delimited to an
 * HTTP/1.0 one, its trailer fields in the last chunk (dropped where the body has a length);
 * the request body's trailers are kept (pt_body_chunked_decode, allocated only when they
 * come); 100 Continue is sent when the client waits for it; a reset closes the
 * connection. After a 101 (a WebSocket tunnel) the connection carries raw bytes: read_raw
 * lends c->in as it was read, borrowed pieces go out unframed, and the connection closes when
 * the tunnel finishes.
 */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "handler/static.h"
#include "server/worker.h"

static bool ensure_out(struct pt_conn *c)
{
    return c->out.data || pt_buf_alloc(&c->out, PT_BUF_SMALL) == 0;
}

static int h1_send_head(struct pt_req *r, const struct pt_resp_head *h)
{
    struct pt_conn *c = r->c;
    if (!ensure_out(c))
        return -1;
    pt_buf_compact(&c->out);
    if (h->status < 200) /* an HTTP/1.0 client knows no interim response: it gets none */
        return r->minor_version == 0 ? 0 : pt_h1_write_head(&c->out, h, PT_H1_CONN_INTERIM);
    if (c->w->is_draining)
        r->is_keepalive = false; /* shutting down: say so rather than reset a next request */
    c->chunk_open = false;
    c->is_chunked_out = h->is_chunked;
    if (h->is_chunked && r->minor_version == 0) {
        /* No chunks for HTTP/1.0: the body ends with the connection. */
        struct pt_resp_head h10 = *h;
        h10.is_chunked = false;
        c->is_chunked_out = false;
        r->is_keepalive = false;
        return pt_h1_write_head(&c->out, &h10, PT_H1_CONN_CLOSE);
    }
    enum pt_h1_conn conn = !r->is_keepalive        ? PT_H1_CONN_CLOSE
                           : r->minor_version == 0 ? PT_H1_CONN_KEEP_10
                                                   : PT_H1_CONN_KEEP;
    return pt_h1_write_head(&c->out, h, conn);
}

/* Queues the framing in front of an n-byte chunk: the CRLF that ends the previous chunk, then
   the size line. Returns false when it does not fit. */
static bool chunk_start(struct pt_conn *c, size_t n)
{
    char tmp[24];
    size_t k = 0;
    if (c->chunk_open) {
        tmp[0] = '\r';
        tmp[1] = '\n';
        k = 2;
    }
    k += (size_t)snprintf(tmp + k, sizeof(tmp) - k, "%zx\r\n", n);
    if (!pt_buf_put(&c->out, tmp, k))
        return false;
    c->chunk_open = true;
    return true;
}

static int h1_send_data(struct pt_req *r, const char *p, size_t n, bool is_stable)
{
    struct pt_conn *c = r->c;
    if (r->is_head || n == 0)
        return 0;
    if (c->is_chunked_out && !chunk_start(c, n))
        return -1;
    if (pt_buf_put(&c->out, p, n)) {
        r->bytes_out += n;
        return 0;
    }
    if (!is_stable || c->slice || n > UINT32_MAX)
        return -1;
    c->slice = p; /* borrowed: it outlives the response (conn.c counts it when sent) */
    c->slice_len = (uint32_t)n;
    return 0;
}

static void h1_send_file(struct pt_req *r, int fd, struct pt_static_file *ref, uint64_t off,
                         uint64_t len)
{
    struct pt_conn *c = r->c;
    if (r->is_head || len == 0 || c->file_fd >= 0) {
        if (ref)
            pt_static_file_unref(ref);
        else
            close(fd);
        return;
    }
    c->file_fd = fd;
    c->file_ref = ref;
    c->file_off = off;
    c->file_left = len;
}

/* Waits for body bytes: the timer fires when the client's body credit is spent (body_timeout,
   refilled at body_min_rate by what it sends: server/connguard.h). */
static int body_wait(struct pt_req *r)
{
    struct pt_conn *c = r->c;
    uint64_t at = pt_credit_wait(&c->body_cr, c->w->loop.now_ms, r->cfg->limits.body_timeout_ms);
    pt_timer_set_at(&c->w->loop, &c->timer, at);
    return PT_AGAIN;
}

/* Reads more of the request body into c->in. Returns PT_OK with bytes there, PT_AGAIN (body
   timer armed), or a status (408 when the client sends slower than body_min_rate). */
static int fill_body(struct pt_req *r)
{
    struct pt_conn *c = r->c;
    if (c->is_eof)
        return 400;
    if (!c->t.can_read)
        return body_wait(r);
    if (!c->in.data && pt_buf_alloc(&c->in, PT_BUF_SMALL) < 0)
        return 503;
    c->in.head = c->in.tail = 0;
    ssize_t n = pt_conn_read(c, c->in.data, c->in.cap);
    if (n == 0) {
        c->is_eof = true;
        return 400;
    }
    if (n == -EAGAIN)
        return body_wait(r);
    if (n < 0)
        return 400;
    const struct pt_limits_cfg *lim = &r->cfg->limits;
    if (!pt_credit_bytes(&c->body_cr, c->w->loop.now_ms, (uint64_t)n, lim->body_min_rate,
                         lim->body_timeout_ms)) {
        pt_connguard_slow("request body", c->id, &c->peer);
        return 408;
    }
    c->in.tail = (uint32_t)n;
    pt_timer_set(&c->w->loop, &c->timer, r->cfg->limits.body_timeout_ms);
    return PT_OK;
}

static int h1_read_body(struct pt_req *r, struct pt_str *view)
{
    struct pt_conn *c = r->c;
    struct pt_body *b = &r->req_body;
    while (!b->pending && !b->is_done) {
        if (pt_buf_len(&c->in) == 0) {
            int rc = fill_body(r);
            if (rc != PT_OK)
                return rc;
        }
        uint32_t len = pt_buf_len(&c->in);
        if (b->is_chunked) {
            /* Decoded in place: the data moves to the front, what follows the last chunk
               (a pipelined request) right after it. */
            size_t dlen = len;
            ssize_t rc = pt_body_chunked_decode(b, pt_buf_rpos(&c->in), &dlen);
            if (rc == PT_H1_EBAD)
                return 400;
            c->in.tail = c->in.head + (uint32_t)dlen + (rc > 0 ? (uint32_t)rc : 0);
            b->pending = (uint32_t)dlen;
            b->left += dlen; /* for chunked bodies: total decoded so far */
            if (b->left > r->cfg->limits.body_size)
                return 413;
            if (rc >= 0)
                b->is_done = true;
        } else {
            b->pending = (uint32_t)PT_MIN((uint64_t)len, b->left);
            b->left -= b->pending;
            if (b->left == 0)
                b->is_done = true;
        }
        if (pt_buf_len(&c->in) == 0)
            c->in.head = c->in.tail = 0;
    }
    if (b->pending == 0) /* the end came alone (the last chunk): no body timeout */
        pt_timer_stop(&c->w->loop, &c->timer);
    *view = (struct pt_str){pt_buf_rpos(&c->in), b->pending};
    return PT_OK;
}

static void h1_consume_body(struct pt_req *r, size_t n)
{
    struct pt_conn *c = r->c;
    pt_buf_consume(&c->in, (uint32_t)n);
    r->req_body.pending -= (uint32_t)n;
    if (r->req_body.pending == 0 && r->req_body.is_done)
        pt_timer_stop(&c->w->loop, &c->timer); /* the whole body is in: no body timeout */
}

static void h1_continue_body(struct pt_req *r)
{
    struct pt_conn *c = r->c;
    if (!r->expect_continue || r->req_body.is_done || r->minor_version != 1 ||
        pt_buf_len(&c->in) != 0 || r->response_started)
        return;
    r->expect_continue = false;
    if (ensure_out(c))
        pt_buf_put(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
}

static int h1_send_borrowed(struct pt_req *r, const char *p, size_t n)
{
    struct pt_conn *c = r->c;
    if (r->is_head || n == 0)
        return 0;
    if (c->slice_len || n > UINT32_MAX || (c->is_chunked_out && !chunk_start(c, n)))
        return -1;
    c->slice = p;
    c->slice_len = (uint32_t)n;
    return 0;
}

static void h1_send_end(struct pt_req *r)
{
    struct pt_conn *c = r->c;
    if (!c->is_chunked_out || r->is_head)
        return;
    bool ok = c->chunk_open ? pt_buf_put(&c->out, "\r\n0\r\n\r\n", 7)
                            : pt_buf_put(&c->out, "0\r\n\r\n", 5);
    c->chunk_open = false;
    c->is_chunked_out = false;
    if (!ok)
        pt_conn_close(c); /* cannot end the body: the client must not take it as whole */
}

static int h1_flush(struct pt_req *r)
{
    if (r->c->is_closed)
        return PT_ERR; /* closed under the handler (send_end could not end the body) */
    return pt_conn_flush(r->c);
}

static void h1_finish(struct pt_req *r)
{
    struct pt_conn *c = r->c;
    pt_timer_stop(&c->w->loop, &c->timer);
    pt_conn_request_done(c);
}

static void h1_reset(struct pt_req *r)
{
    struct pt_conn *c = r->c;
    c->slice = NULL; /* never leave the connection pointing into a buffer that goes away */
    c->slice_len = 0;
    pt_conn_close(c);
}

static int h1_tunnel(struct pt_req *r)
{
    struct pt_conn *c = r->c;
    if (r->minor_version != 1)
        return -1;
    c->is_chunked_out = false; /* raw bytes from here: no framing */
    c->chunk_open = false;
    r->is_keepalive = false; /* the connection ends with the tunnel */
    pt_timer_stop(&c->w->loop, &c->timer);
    return 0;
}

static int h1_read_raw(struct pt_req *r, struct pt_str *view)
{
    struct pt_conn *c = r->c;
    if (pt_buf_len(&c->in) == 0) {
        *view = (struct pt_str){NULL, 0};
        if (c->is_eof)
            return PT_OK;
        if (!c->t.can_read)
            return PT_AGAIN;
        if (!c->in.data && pt_buf_alloc(&c->in, PT_BUF_SMALL) < 0)
            return PT_ERR;
        c->in.head = c->in.tail = 0;
        ssize_t n = pt_conn_read(c, c->in.data, c->in.cap);
        if (n == 0) {
            c->is_eof = true;
            return PT_OK;
        }
        if (n == -EAGAIN)
            return PT_AGAIN;
        if (n < 0)
            return PT_ERR;
        c->in.tail = (uint32_t)n;
    }
    *view = (struct pt_str){pt_buf_rpos(&c->in), pt_buf_len(&c->in)};
    return PT_OK;
}

static void h1_consume_raw(struct pt_req *r, size_t n)
{
    struct pt_conn *c = r->c;
    pt_buf_consume(&c->in, (uint32_t)n);
    if (pt_buf_len(&c->in) == 0)
        c->in.head = c->in.tail = 0;
}

static void h1_resume(struct pt_req *r)
{
    pt_conn_run(r->c);
}

static void h1_yield(struct pt_req *r)
{
    pt_conn_yield(r->c);
}

/* The trailer section goes in the last chunk (RFC 9112 §7.1.2) when the head went out
   chunked; a body framed by its length, or sent to an HTTP/1.0 client, has nowhere to carry
   it: the fields are dropped. A field that could not be a trailer is dropped too (the caller
   filters; this keeps a bad one from breaking the framing). */
static void h1_send_trailers(struct pt_req *r, const struct pt_field *f, size_t n)
{
    struct pt_conn *c = r->c;
    if (!c->is_chunked_out || r->is_head || n == 0) {
        h1_send_end(r);
        return;
    }
    pt_buf_compact(&c->out);
    bool ok = c->chunk_open ? pt_buf_put(&c->out, "\r\n0\r\n", 5) : pt_buf_put(&c->out, "0\r\n", 3);
    for (size_t i = 0; ok && i < n; i++) {
        if (!pt_trailer_field_ok(f[i].name, f[i].value))
            continue;
        ok = pt_buf_put(&c->out, f[i].name.p, f[i].name.n) && pt_buf_put(&c->out, ": ", 2) &&
             pt_buf_put(&c->out, f[i].value.p, f[i].value.n) && pt_buf_put(&c->out, "\r\n", 2);
    }
    ok = ok && pt_buf_put(&c->out, "\r\n", 2);
    c->chunk_open = false;
    c->is_chunked_out = false;
    if (!ok)
        pt_conn_close(c); /* cannot end the body: the client must not take it as whole */
}

/* The chunked request body's trailer fields (kept by pt_body_chunked_decode). */
static size_t h1_req_trailers(struct pt_req *r, const struct pt_field **f)
{
    *f = r->req_body.trailers;
    return r->req_body.is_done ? r->req_body.n_trailers : 0;
}

const struct pt_stream_ops pt_h1_stream = {
    .send_head = h1_send_head,
    .send_data = h1_send_data,
    .send_file = h1_send_file,
    .read_body = h1_read_body,
    .consume_body = h1_consume_body,
    .continue_body = h1_continue_body,
    .send_borrowed = h1_send_borrowed,
    .send_end = h1_send_end,
    .send_trailers = h1_send_trailers,
    .req_trailers = h1_req_trailers,
    .flush = h1_flush,
    .finish = h1_finish,
    .reset = h1_reset,
    .resume = h1_resume,
    .yield = h1_yield,
    .tunnel = h1_tunnel,
    .read_raw = h1_read_raw,
    .consume_raw = h1_consume_raw,
};
