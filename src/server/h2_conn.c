/*
 * h2_conn.c - HTTP/2 client connections (RFC 9113): an nghttp2 server session on a client
 * connection, its streams, and the defences against abusive peers.
 *
 * A connection becomes HTTP/2 after a TLS handshake that chose ALPN "h2" (RFC 9113 §3.2), or,
 * on a plain listener with http2: true, when its first bytes are the client preface (§3.3,
 * prior knowledge; conn.c's read_head checks, pt_h2_preface). conn.c keeps what every client
 * connection has: accept, TLS, the socket reads and writes (pt_conn_read, pt_conn_flush with
 * its output buffer, slice and file body), the timer, the lingering close. The session runs
 * in state PT_CS_H2 of conn.c's machine and is one step: read what the socket has and feed it
 * to nghttp2_session_mem_recv (its callbacks start the streams), then let nghttp2_session_send
 * fill the output buffer through send_cb and pt_h2_send_body and flush it, until the socket or
 * the peer's windows stop us. When nothing more is wanted either way the connection goes to
 * PT_CS_CLOSING, which flushes and closes.
 *
 * Streams. A request's header block is checked field by field as nghttp2 hands it over
 * (http/h2_headers.h): the names and values stay in nghttp2's reference-counted buffers
 * (nghttp2_rcbuf_incref) until the head has been used, and blocks never interleave, so one
 * field array and one Cookie buffer per session serve every stream. When the block ends the
 * stream gets a request object (conn.c's request lifecycle, pt_conn_req_new / pt_conn_req_end)
 * whose stream operations are HTTP/2's (h2_stream.c), and the protocol-neutral pipeline runs
 * it, as for HTTP/1.1. A malformed block is a stream error (RST_STREAM PROTOCOL_ERROR, RFC 9113
 * §8.1.1); one over the size or count limits is answered 431. Local answers are complete when
 * the pipeline returns; their request body is dropped, its window returned at once
 * (nghttp2_session_consume: the session returns no window on its own); once our END_STREAM is
 * out, a stream the client still sends on is reset with NO_ERROR (RFC 9113 §8.1), and one that
 * sends more than limits.body_size (plus a window) before that is reset with CANCEL.
 *
 * Proxied streams. The proxy's request stays open after the pipeline returns: its body is held
 * per stream (at most one window, returned as the proxy takes the bytes, h2_stream.c), and the
 * stream operations resume/yield mark the stream woken; each step runs the proxy of every woken
 * stream (run_woken) between reading and writing frames, in rounds, since a slice sent wakes
 * its proxy for the next one. A client's RST_STREAM closes the stream, and the request's end
 * aborts its proxy (the upstream request is cancelled). A proxy waiting on its upstream keeps
 * the connection's no-progress timer off (its own timers bound the wait); one waiting on body
 * bytes arms it at its body deadline, where it answers 408 (pt_proxy_client_timeout).
 *
 * WebSocket (RFC 8441). When some proxy route allows WebSocket, the session sends
 * SETTINGS_ENABLE_CONNECT_PROTOCOL and accepts `:method CONNECT` with `:protocol websocket`:
 * the request is routed as the GET it stands for (r->is_ext_connect; the proxy sends it
 * upstream as an HTTP/1.1 Upgrade), and a route that is no proxy answers 405. Another
 * :protocol, or a plain CONNECT, is answered 501 or 405. A CONNECT stream has no body: its
 * DATA frames are held like one (on_data) and become the tunnel's bytes (h2_stream.c,
 * "tunnels"), with no body_size limit.
 *
 * Drain and reload send GOAWAY with the last stream processed: those streams finish, nghttp2
 * refuses later ones, and the connection closes when the last stream ends. Tunnels can last
 * for hours: at shutdown_timeout the drain resets what is still open and closes the
 * connection (pt_h2_conn_shut); after a reload, the worker resets the tunnels still on an older
 * snapshot once shutdown_timeout has passed (pt_h2_end_old_tunnels). A tunnel's request is
 * logged however it ends, even with its connection.
 *
 * Defences. nghttp2's options bound SETTINGS entries, queued acks (PING/SETTINGS floods from a
 * client that does not read), CONTINUATION frames per block (CVE-2024-27316) and the rate of
 * RST_STREAM (rapid reset, CVE-2023-44487). On top, the session counts, per header block, the
 * decoded size (an HPACK block that decodes huge is cut off at 4 times the header list limit
 * however small it was on the wire), and, per connection, work against bytes: every frame that
 * does not carry its own weight (PING, SETTINGS, PRIORITY, RST_STREAM, CONTINUATION, a tiny
 * WINDOW_UPDATE, an empty DATA or HEADERS frame, an unknown type) and every stream opened
 * (refunded when its response completes) costs COST work units, every byte received earns one,
 * and a connection more than ALLOWANCE in debt is closed with GOAWAY ENHANCE_YOUR_CALM. A
 * flood no rule names is caught by the same count. A stream that makes no progress (a window
 * left at zero, a body that never comes) ends the connection after send_timeout/body_timeout.
 *
 * Rejected: nghttp2_session_mem_send (it cannot hand file bodies over without copying them);
 * a session per worker with callbacks looking the connection up (the user data is the
 * session); HTTP/1.1 Upgrade: h2c (removed by RFC 9113 §3.1).
 */
#include "server/h2_conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/sock.h"
#include "server/h2_internal.h"
#include "handler/handler.h"
#include "server/pipeline.h"

static const char PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define PREFACE_LEN (sizeof(PREFACE) - 1)

/* Work units of a frame that does not pay for itself, and the debt a connection may run up
   before it is closed. A byte received earns one unit. */
#define COST 128u
#define ALLOWANCE (256u << 10)
/* Bytes read per step before yielding to the worker's other connections. */
#define READ_YIELD_BYTES (256u << 10)
/* Flush rounds per step before yielding. */
#define WRITE_YIELD_ROUNDS 64

int pt_h2_preface(const char *buf, size_t len)
{
    size_t n = PT_MIN(len, PREFACE_LEN);
    if (memcmp(buf, PREFACE, n) != 0)
        return -1;
    return len >= PREFACE_LEN ? 1 : 0;
}

static struct pt_h2_session *session_of(void *ud)
{
    return ud;
}

static void log_peer(const struct pt_h2_session *s, const char *what)
{
    char peer[64];
    if (!pt_sock_ntop(&s->c->peer.u.sa, peer, sizeof(peer)))
        memcpy(peer, "-", 2);
    pt_log_ratelimited(PT_LOG_INFO, "connection %llu from %s: HTTP/2: %s",
                       (unsigned long long)s->c->id, peer, what);
}

/* Ends the session for abuse or a fatal error: GOAWAY with code, flushed, then close. */
static void doom(struct pt_h2_session *s, uint32_t code, const char *why)
{
    if (s->is_doomed)
        return;
    s->is_doomed = true;
    log_peer(s, why);
    nghttp2_session_terminate_session(s->ng, code);
}

static void charge(struct pt_h2_session *s, uint64_t units)
{
    s->work += units;
}

static void refund(struct pt_h2_session *s, uint64_t units)
{
    s->work = s->work > units ? s->work - units : 0;
}

static void budget_check(struct pt_h2_session *s)
{
    if (s->work > s->bytes_in + ALLOWANCE)
        doom(s, NGHTTP2_ENHANCE_YOUR_CALM, "too much work for the bytes sent: GOAWAY");
}

/* ---- streams ---- */

static void release_block(struct pt_h2_session *s)
{
    for (uint32_t i = 0; i < s->n_rc; i++)
        nghttp2_rcbuf_decref(s->rc[i]);
    s->n_rc = 0;
    s->blk_st = NULL;
}

static void stream_free(struct pt_h2_session *s, struct pt_h2_stream *st, bool log)
{
    if (s->blk_st == st)
        release_block(s);
    st->prev->next = st->next;
    st->next->prev = st->prev;
    s->n_streams--;
    pt_h2_stream_drop_body(st);
    pt_h2_body_release(st, false);
    free(st->held);
    free(st->trailers);
    free(st->req_tr);
    if (st->r)
        pt_conn_req_end(s->c->w, st->r, log); /* a proxy still running is aborted */
    free(st);
}

/* Whether the proxy still drives r (the session runs it on wake-ups and holds its body); a
   request a guard makes wait (forward_auth's call, rate_limit's delay:) counts: its body is
   held for the proxy to come. */
static bool is_proxied(const struct pt_req *r)
{
    return r->pstate == PT_PS_ACTIVE || r->pstate == PT_PS_QUEUED || r->pstate == PT_PS_TUNNEL ||
           r->pstate == PT_PS_GUARD_WAIT || r->pstate == PT_PS_BODY_WAIT;
}

static void reset(struct pt_h2_session *s, struct pt_h2_stream *st, uint32_t code)
{
    st->is_cancelled = true;
    nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id, code);
}

/* The request head of st is complete (END_HEADERS): check it, make the request, run the
   pipeline. The head's slices (nghttp2's buffers, the session's arrays) live until the
   pipeline returns. */
static void start_request(struct pt_h2_session *s, struct pt_h2_stream *st, bool eos)
{
    struct pt_conn *c = s->c;
    struct pt_h2h_request hr;
    int rc = pt_h2h_finish_request(&s->blk, &hr);
    if (rc < 0 && !pt_h2h_err_is_limit(rc)) {
        pt_log_debug("connection %llu: stream %d: %s: RST_STREAM", (unsigned long long)c->id,
                     st->id, pt_h2h_strerror(rc));
        reset(s, st, NGHTTP2_PROTOCOL_ERROR); /* RFC 9113 §8.1.1: malformed */
        return;
    }
    struct pt_req *r = pt_conn_req_new(c);
    if (!r) {
        reset(s, st, NGHTTP2_REFUSED_STREAM);
        return;
    }
    st->r = r;
    r->h2s = st;
    r->stream = &pt_h2_stream_ops;
    r->is_keepalive = true;
    /* The body's framing toward an upstream: its length, chunks when it streams without one,
       none when END_STREAM came with the head. */
    r->has_body = !eos;
    if (eos) {
        r->req_body.is_done = true;
    } else if (hr.content_length >= 0) {
        r->req_body.left = (uint64_t)hr.content_length;
        r->req_body.is_done = hr.content_length == 0;
    } else {
        r->req_body.is_chunked = true;
    }
    if (!pt_conn_ensure_scratch(c->w, r->cfg)) {
        pt_pipeline_note(r, NULL);
        pt_pipeline_fail(r, 503, false);
    } else if (rc < 0) {
        pt_pipeline_note(r, NULL);
        /* A gRPC call's answer is a gRPC status: its content-type is among the fields kept
           before the limit, if it came early (clients send it right after the pseudo-
           headers). */
        struct pt_req_head kept = {.fields = s->blk.fields, .n_fields = s->blk.n};
        r->is_grpc = pt_is_grpc_type(pt_req_field(&kept, "content-type", 12));
        pt_pipeline_fail(r, 431, false); /* RFC 9113 §10.5.1 */
    } else {
        size_t n = hr.n_fields;
        if (hr.cookie.n) /* the joined crumbs, as one field for the handlers (§8.2.3) */
            hr.fields[n++] = (struct pt_field){PT_STR("cookie"), hr.cookie};
        struct pt_req_head h = {.method = hr.method,
                                .method_id = hr.method_id,
                                .authority = hr.authority,
                                .target = hr.target,
                                .path = hr.path,
                                .query = hr.has_query ? hr.query : (struct pt_str){NULL, 0},
                                .content_length = hr.content_length,
                                .fields = hr.fields,
                                .n_fields = n};
        pt_pipeline_note(r, &h);
        bool is_ws = hr.is_connect && PT_STR_CASEEQ_LIT(hr.protocol, "websocket");
        if (hr.is_connect) { /* its DATA frames would be a tunnel's, not a body */
            r->has_body = false;
            memset(&r->req_body, 0, sizeof(r->req_body));
            r->req_body.is_done = true;
        }
        if (is_ws) {
            /* RFC 8441: routed, guarded and sent upstream as the GET with Upgrade it stands
               for (logged as CONNECT). */
            h.method = PT_STR("GET");
            h.method_id = r->method_id = PT_METHOD_GET;
            r->is_ext_connect = true;
        }
        if (hr.is_connect && !is_ws)
            pt_pipeline_fail(r, hr.protocol.n ? 501 : 405, false); /* no other tunnel here */
        else if (hr.content_length > 0 && (uint64_t)hr.content_length > r->cfg->limits.body_size)
            pt_pipeline_fail(r, 413, false);
        else if (!hr.path.n || hr.path.p[0] != '/')
            pt_pipeline_fail(r, 400, false); /* "*": Portico serves no OPTIONS to itself */
        else
            pt_pipeline_run(r, &h);
    }
    if (r->pstate != PT_PS_NONE) {
        st->is_woken = true; /* a proxy: the step runs it, and it reads the body (on_data) */
        return;
    }
    r->req_body.is_done = true; /* the session drops the body itself (on_data) */
    r->is_discarding = false;
    st->is_complete = true; /* local answers are queued whole by now */
    if (!r->response_started)
        reset(s, st, NGHTTP2_INTERNAL_ERROR);
    else
        nghttp2_session_resume_data(s->ng, st->id);
}

/* ---- nghttp2 callbacks ---- */

static ssize_t send_cb(nghttp2_session *ng, const uint8_t *data, size_t len, int flags, void *ud)
{
    (void)ng, (void)flags;
    struct pt_conn *c = session_of(ud)->c;
    if (c->slice_len || c->file_left)
        return NGHTTP2_ERR_WOULDBLOCK; /* a body piece is on its way: keep the order */
    if (!c->out.data && pt_buf_alloc(&c->out, PT_BUF_LARGE) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (pt_buf_room(&c->out) < len)
        pt_buf_compact(&c->out);
    size_t n = PT_MIN((size_t)pt_buf_room(&c->out), len);
    if (n == 0)
        return NGHTTP2_ERR_WOULDBLOCK;
    pt_buf_put(&c->out, data, n);
    return (ssize_t)n;
}

static int on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *ud)
{
    (void)ng;
    struct pt_h2_session *s = session_of(ud);
    switch (hd->type) {
    case NGHTTP2_DATA:
        if (hd->length == 0 && !(hd->flags & NGHTTP2_FLAG_END_STREAM))
            charge(s, COST); /* an empty DATA frame moves nothing */
        break;
    case NGHTTP2_HEADERS:
        if (hd->length == 0)
            charge(s, COST);
        break;
    case NGHTTP2_CONTINUATION:
    case NGHTTP2_PRIORITY:
        charge(s, COST);
        break;
    default:
        if (hd->type > NGHTTP2_CONTINUATION)
            charge(s, COST); /* unknown types are ignored, not free */
        break;
    }
    return 0;
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    struct pt_h2_session *s = session_of(ud);
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    release_block(s);
    s->blk_decoded = 0;
    struct pt_h2_stream *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        st = calloc(1, sizeof(*st));
        if (!st)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM INTERNAL_ERROR */
        st->s = s;
        st->id = frame->hd.stream_id;
        st->next = &s->streams;
        st->prev = s->streams.prev;
        s->streams.prev->next = st;
        s->streams.prev = st;
        s->n_streams++;
        s->idle_since_ms = s->c->w->loop.now_ms;
        nghttp2_session_set_stream_user_data(ng, st->id, st);
        charge(s, COST); /* refunded when its response completes */
        s->blk_is_trailers = false;
    } else {
        s->blk_is_trailers = true; /* trailers of a request body: checked, counted, kept */
    }
    s->blk_st = st;
    pt_h2h_begin(&s->blk, s->blk_is_trailers ? PT_H2H_TRAILERS : PT_H2H_REQUEST, &s->lim, s->fields,
                 s->lim.max_fields, s->cookie, s->lim.max_list_bytes);
    return 0;
}

/* One decoded field (on_header_callback2 and on_invalid_header_callback2: a field nghttp2
   finds invalid is handed over too, so that the block is refused rather than the field
   silently dropped). */
static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, nghttp2_rcbuf *name,
                     nghttp2_rcbuf *value, uint8_t flags, void *ud)
{
    (void)ng, (void)flags;
    struct pt_h2_session *s = session_of(ud);
    nghttp2_vec nm = nghttp2_rcbuf_get_buf(name), vl = nghttp2_rcbuf_get_buf(value);
    s->blk_decoded += nm.len + vl.len + 32;
    if (s->blk_decoded > PT_MAX(4 * (uint64_t)s->lim.max_list_bytes, 65536u)) {
        doom(s, NGHTTP2_ENHANCE_YOUR_CALM, "a header block that decodes huge: GOAWAY");
        return NGHTTP2_ERR_PAUSE;
    }
    struct pt_h2_stream *st = s->blk_st;
    if (!st || st->id != frame->hd.stream_id || s->blk.err)
        return 0;
    struct pt_str n = {(const char *)nm.base, nm.len}, v = {(const char *)vl.base, vl.len};
    if (pt_h2h_field(&s->blk, n, v) < 0)
        return 0;
    if (s->n_rc + 2 > s->rc_cap) { /* cannot hold it: refuse the block as too big */
        s->blk.err = PT_H2H_ETOOMANY;
        return 0;
    }
    nghttp2_rcbuf_incref(name);
    nghttp2_rcbuf_incref(value);
    s->rc[s->n_rc++] = name;
    s->rc[s->n_rc++] = value;
    return 0;
}

/* The request's trailer block is complete: a malformed one resets the stream (RFC 9113
   §8.1.1; the header-list limits bound it like a head); a proxied stream keeps a copy of the
   fields for req_trailers, others drop them. Returns false when the stream was reset. */
static bool keep_trailers(struct pt_h2_session *s, struct pt_h2_stream *st)
{
    struct pt_field *f;
    uint32_t n;
    int rc = pt_h2h_finish_trailers(&s->blk, &f, &n);
    if (rc < 0) {
        pt_log_debug("connection %llu: stream %d: trailers: %s: RST_STREAM",
                     (unsigned long long)s->c->id, st->id, pt_h2h_strerror(rc));
        st->body_err = 400; /* the proxy must not end the upstream request as whole */
        st->is_woken = true;
        if (!st->is_cancelled)
            reset(s, st, NGHTTP2_PROTOCOL_ERROR);
        return false;
    }
    struct pt_req *r = st->r;
    if (!n || st->req_tr || !r ||
        (r->pstate != PT_PS_ACTIVE && r->pstate != PT_PS_QUEUED && r->pstate != PT_PS_GUARD_WAIT &&
         r->pstate != PT_PS_BODY_WAIT))
        return true;
    size_t bytes = n * sizeof(*f);
    for (uint32_t i = 0; i < n; i++)
        bytes += f[i].name.n + f[i].value.n;
    struct pt_field *copy = malloc(bytes);
    if (!copy)
        return true; /* dropped */
    char *p = (char *)(copy + n);
    for (uint32_t i = 0; i < n; i++) {
        copy[i].name = (struct pt_str){p, f[i].name.n};
        memcpy(p, f[i].name.p, f[i].name.n);
        p += f[i].name.n;
        copy[i].value = (struct pt_str){p, f[i].value.n};
        if (f[i].value.n)
            memcpy(p, f[i].value.p, f[i].value.n);
        p += f[i].value.n;
    }
    st->req_tr = copy;
    st->n_req_tr = n;
    return true;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    struct pt_h2_session *s = session_of(ud);
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS: {
        struct pt_h2_stream *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
        bool eos = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
        if (st && st == s->blk_st && !s->blk_is_trailers && !st->r && !st->is_cancelled)
            start_request(s, st, eos);
        else if (st && eos && (!s->blk_is_trailers || st != s->blk_st || keep_trailers(s, st)))
            st->body_eos = true, st->is_woken = true; /* trailers end the body */
        release_block(s);
        break;
    }
    case NGHTTP2_DATA:
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            struct pt_h2_stream *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
            if (st)
                st->body_eos = true, st->is_woken = true;
        }
        break;
    case NGHTTP2_PING:
    case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK))
            charge(s, COST);
        break;
    case NGHTTP2_RST_STREAM:
        charge(s, COST);
        break;
    case NGHTTP2_WINDOW_UPDATE:
        if (frame->window_update.window_size_increment < 1024)
            charge(s, COST);
        break;
    default:
        break;
    }
    return 0;
}

static int on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *ud)
{
    (void)flags;
    struct pt_h2_session *s = session_of(ud);
    struct pt_h2_stream *st = nghttp2_session_get_stream_user_data(ng, id);
    struct pt_req *r = st ? st->r : NULL;
    if (r && is_proxied(r) && !st->is_cancelled && !st->body_err) {
        /* Held for the proxy: the window is returned as it takes the bytes. A tunnel's bytes
           are no body: no body_size bounds them. */
        st->is_woken = true;
        if (!r->is_ext_connect && st->body_in + len > r->cfg->limits.body_size) {
            st->body_err = 413;
        } else {
            if (!st->body) {
                st->body_cap = s->body_win;
                st->body = malloc(st->body_cap);
                if (!st->body)
                    st->body_cap = 0;
            }
            if (st->body && st->body_cap - st->body_tail >= len) {
                memcpy(st->body + st->body_tail, data, len);
                st->body_tail += (uint32_t)len;
                st->body_in += len;
                return 0;
            }
            if (st->body)
                reset(s, st, NGHTTP2_FLOW_CONTROL_ERROR); /* more than the window */
            else
                st->body_err = 503;
        }
    }
    nghttp2_session_consume(ng, id, len);
    if (!st)
        return 0;
    st->body_in += len; /* dropped: local answers read no body; the window is returned */
    if (st->held && st->body_in > PT_H2_HOLD_MAX)
        st->is_woken = true; /* too much to take whole: answer now (run_woken) */
    if (st->body_in > s->discard_max && !st->is_cancelled)
        reset(s, st, NGHTTP2_CANCEL);
    return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    struct pt_h2_session *s = session_of(ud);
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    struct pt_h2_stream *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    if (!st || st->is_resp_done)
        return 0;
    st->is_resp_done = true;
    refund(s, COST);
    /* RFC 9113 §8.1: the answer is complete; a body still coming is not wanted. (Draining it
       instead would not help curl 7.88, which stops reading a connection whose response is
       complete, so the window would never reopen.) */
    if (!nghttp2_session_get_stream_remote_close(ng, st->id) && !st->is_cancelled)
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *ud)
{
    struct pt_h2_session *s = session_of(ud);
    struct pt_h2_stream *st = nghttp2_session_get_stream_user_data(ng, id);
    if (!st)
        return 0;
    (void)code;
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    s->idle_since_ms = s->c->w->loop.now_ms;
    stream_free(s, st, true);
    return 0;
}

/* ---- the session ---- */

/* The callbacks, in a new object the caller deletes (nghttp2 copies them into the session). */
static nghttp2_session_callbacks *callbacks(void)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return NULL;
    nghttp2_session_callbacks_set_send_callback(cbs, send_cb);
    nghttp2_session_callbacks_set_send_data_callback(cbs, pt_h2_send_body);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, on_begin_frame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback2(cbs, on_header);
    nghttp2_session_callbacks_set_on_invalid_header_callback2(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    return cbs;
}

/* Whether some route may open a WebSocket tunnel: a proxy route that does not say
   websocket: false. Only then is extended CONNECT offered (RFC 8441 §3). */
static bool any_websocket(const struct pt_config *cfg)
{
    for (size_t i = 0; i < cfg->n_sites; i++)
        for (size_t j = 0; j < cfg->sites[i].n_routes; j++) {
            const struct pt_route_cfg *rt = &cfg->sites[i].routes[j];
            if (rt->action == PT_ACTION_PROXY && !rt->proxy.refuses_websocket)
                return true;
        }
    return false;
}

static struct pt_h2_session *session_new(struct pt_conn *c, const struct pt_config *cfg)
{
    const struct pt_http2_cfg *hc = &cfg->http2;
    struct pt_h2_session *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->c = c;
    s->streams.next = s->streams.prev = &s->streams;
    s->lim.max_list_bytes =
        hc->max_header_list_size ? hc->max_header_list_size : cfg->limits.header_size;
    s->lim.max_fields = cfg->limits.headers + 8; /* the pseudo-headers on top */
    s->rc_cap = 2 * s->lim.max_fields;
    s->lim.allow_extended_connect = any_websocket(cfg);
    s->fields = malloc((s->lim.max_fields + 1) * sizeof(*s->fields));
    s->cookie = malloc(s->lim.max_list_bytes);
    s->rc = malloc(s->rc_cap * sizeof(*s->rc));
    /* Past limits.body_size (and a window's worth in flight, for a 413 that is not out yet),
       a body still coming while its answer waits is cut off. */
    s->discard_max = cfg->limits.body_size + PT_MAX(hc->initial_window_size, 65535u);
    s->body_win = PT_MAX(hc->initial_window_size, 65535u);
    s->progress_ms = s->idle_since_ms = c->w->loop.now_ms;
    nghttp2_session_callbacks *cbs = callbacks();
    nghttp2_option *opt = NULL;
    if (!s->fields || !s->cookie || !s->rc || !cbs || nghttp2_option_new(&opt) != 0)
        goto fail;
    nghttp2_option_set_max_settings(opt, 32);
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33);
    nghttp2_option_set_max_continuations(opt, 8 + s->lim.max_list_bytes / 16384);
    nghttp2_option_set_no_auto_window_update(opt, 1); /* on_data and the proxy consume */
    int rc = nghttp2_session_server_new2(&s->ng, cbs, s, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    cbs = NULL;
    if (rc != 0)
        goto fail;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, hc->max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, hc->initial_window_size},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)s->lim.max_list_bytes},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1}, /* the last: sent only when wanted */
    };
    size_t n_iv = PT_ARRAY_LEN(iv) - !s->lim.allow_extended_connect;
    if (nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, n_iv) != 0)
        goto fail;
    if (hc->initial_window_size > 65535 &&
        nghttp2_session_set_local_window_size(s->ng, NGHTTP2_FLAG_NONE, 0,
                                              (int32_t)hc->initial_window_size) != 0)
        goto fail;
    return s;
fail:
    nghttp2_session_callbacks_del(cbs);
    if (s->ng)
        nghttp2_session_del(s->ng);
    free(s->fields);
    free(s->cookie);
    free(s->rc);
    free(s);
    return NULL;
}

void pt_h2_conn_start(struct pt_conn *c)
{
    const struct pt_config *cfg = pt_worker_cfg(c->w);
    c->h2 = cfg ? session_new(c, cfg) : NULL;
    if (!c->h2) {
        pt_conn_close(c);
        return;
    }
    c->may_h2c = false;
    c->state = PT_CS_H2;
    c->t.can_read = true; /* bytes may wait in TLS's buffer: try at once */
    c->again = true;
}

void pt_h2_conn_free(struct pt_conn *c)
{
    struct pt_h2_session *s = c->h2;
    release_block(s);
    while (s->streams.next != &s->streams)
        stream_free(s, s->streams.next, false);
    pt_h2_lent_done(s, true);
    nghttp2_session_del(s->ng);
    free(s->fields);
    free(s->cookie);
    free(s->rc);
    free(s);
    c->h2 = NULL;
}

/* Hands n received bytes to nghttp2. Returns false when the session cannot go on. */
static bool feed(struct pt_h2_session *s, const char *p, size_t n)
{
    s->bytes_in += n;
    s->progress_ms = s->c->w->loop.now_ms;
    ssize_t rv = nghttp2_session_mem_recv(s->ng, (const uint8_t *)p, n);
    if (rv < 0) {
        /* FLOODED: acks queued for a client that does not read them. */
        doom(s, rv == NGHTTP2_ERR_FLOODED ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR,
             nghttp2_strerror((int)rv));
        return false;
    }
    budget_check(s);
    return !s->is_doomed;
}

static bool write_frames(struct pt_h2_session *s);

/* Reads and processes what the socket has (and the bytes read before the session started),
   writing what each read made nghttp2 queue (acks, answers) before the next, so that a client
   that reads is never behind by more than one buffer. Returns false when c was closed. */
static bool read_frames(struct pt_h2_session *s)
{
    struct pt_conn *c = s->c;
    uint32_t have = pt_buf_len(&c->in);
    if (have) {
        bool ok = feed(s, pt_buf_rpos(&c->in), have);
        c->in.head = c->in.tail = 0;
        if (!ok)
            return true;
    }
    size_t total = 0;
    while (c->t.can_read && !s->is_doomed && nghttp2_session_want_read(s->ng)) {
        if (total >= READ_YIELD_BYTES) {
            pt_conn_yield(c);
            break;
        }
        if (!c->in.data && pt_buf_alloc(&c->in, PT_BUF_SMALL) < 0) {
            pt_conn_close(c);
            return false;
        }
        ssize_t n = pt_conn_read(c, c->in.data, c->in.cap);
        if (n > 0) {
            total += (size_t)n;
            if (!feed(s, c->in.data, (size_t)n))
                break;
            if (nghttp2_session_want_write(s->ng) && !write_frames(s)) {
                pt_conn_close(c);
                return false;
            }
            continue;
        }
        if (n == -EAGAIN)
            break;
        c->is_eof = true;
        pt_conn_close(c); /* the client went away: its streams go with it */
        return false;
    }
    c->in.head = c->in.tail = 0;
    pt_buf_release(&c->in); /* idle connections hold no input buffer */
    return true;
}

/* Lets nghttp2 write and flushes, until the socket or the windows stop us. Returns false when
   the connection failed. */
static bool write_frames(struct pt_h2_session *s)
{
    struct pt_conn *c = s->c;
    for (int round = 0;; round++) {
        int rc = pt_conn_flush(c);
        if (rc == PT_ERR)
            return false;
        if (rc == PT_AGAIN)
            return true;
        pt_h2_lent_done(s, false);
        if (!nghttp2_session_want_write(s->ng))
            return true;
        if (round >= WRITE_YIELD_ROUNDS) {
            pt_conn_yield(c);
            return true;
        }
        uint32_t before = pt_buf_len(&c->out);
        if (nghttp2_session_send(s->ng) != 0)
            return false;
        if (pt_buf_len(&c->out) == before && !c->slice_len && !c->file_left)
            return true;
        s->progress_ms = c->w->loop.now_ms;
    }
}

static bool output_pending(const struct pt_conn *c)
{
    return pt_buf_len(&c->out) || c->slice_len || c->file_left;
}

/* The connection's one timer: no progress while output waits on the socket (conn.c's flush
   armed send_timeout), while streams wait (a window at zero, a body that does not come), or
   no stream for keepalive_timeout. */
static void arm_timer(struct pt_h2_session *s)
{
    struct pt_conn *c = s->c;
    if (output_pending(c))
        return;
    const struct pt_config *cfg = pt_worker_cfg(c->w);
    uint64_t at;
    if (s->n_streams == 0)
        at = s->idle_since_ms + (cfg ? cfg->limits.keepalive_timeout_ms : 60000);
    else
        at = s->progress_ms +
             (cfg ? PT_MAX(cfg->limits.send_timeout_ms, cfg->limits.body_timeout_ms) : 30000);
    for (const struct pt_h2_stream *st = s->streams.next; st != &s->streams; st = st->next)
        if (st->body_deadline_ms && st->body_deadline_ms < at)
            at = st->body_deadline_ms; /* a proxy waits for request body bytes */
    pt_timer_set_at(&c->w->loop, &c->timer, at);
}

/* Runs the proxy of every stream that asked for it (a wake-up, body bytes, a slice sent),
   then ends what it left behind: a local answer (502, 408) is complete, a body it no longer
   reads is returned to the windows. Returns whether any stream ran. Streams are freed only
   in nghttp2's callbacks, never during pt_proxy_run. */
static bool run_woken(struct pt_h2_session *s)
{
    bool ran = false;
    for (struct pt_h2_stream *st = s->streams.next; st != &s->streams; st = st->next) {
        struct pt_req *r = st->r;
        if (!st->is_woken)
            continue;
        st->is_woken = false;
        if (!r)
            continue;
        if (is_proxied(r)) {
            pt_proxy_run(r);
            ran = true;
        }
        if (is_proxied(r))
            continue;
        if (st->held && (st->body_eos || st->body_in > PT_H2_HOLD_MAX))
            pt_h2_release_head(st); /* the request is whole (or too large to wait for) */
        if (st->body)
            pt_h2_body_release(st, true);
        if (r->pstate == PT_PS_NONE && !st->is_complete && !st->is_cancelled) {
            st->is_complete = true; /* answered locally */
            if (!r->response_started)
                reset(s, st, NGHTTP2_INTERNAL_ERROR);
            else
                nghttp2_session_resume_data(s->ng, st->id);
        }
    }
    return ran;
}

static bool any_woken(const struct pt_h2_session *s)
{
    for (const struct pt_h2_stream *st = s->streams.next; st != &s->streams; st = st->next)
        if (st->is_woken)
            return true;
    return false;
}

void pt_h2_wake(struct pt_h2_stream *st)
{
    st->is_woken = true;
    if (!st->s->in_step)
        pt_conn_run(st->s->c);
}

void pt_h2_conn_step(struct pt_conn *c)
{
    struct pt_h2_session *s = c->h2;
    s->in_step = true;
    if (!read_frames(s) || c->is_closed)
        return;
    /* The proxies and the session feed each other (a slice sent wakes its proxy, which lends
       the next): a few rounds, then the next loop iteration. */
    for (int round = 0;; round++) {
        run_woken(s);
        if (!write_frames(s)) {
            pt_conn_close(c);
            return;
        }
        if (c->is_closed)
            return;
        if (!any_woken(s))
            break;
        if (round == 16) {
            pt_conn_yield(c);
            break;
        }
    }
    s->in_step = false;
    if (nghttp2_session_want_write(s->ng)) {
        arm_timer(s); /* the socket is full, or this step yielded: more comes */
        return;
    }
    if (s->is_doomed || !nghttp2_session_want_read(s->ng)) {
        /* GOAWAY exchanged and no stream left, or fatal: flush what is queued, then close. */
        c->state = PT_CS_CLOSING;
        c->again = true;
        return;
    }
    arm_timer(s);
}

void pt_h2_conn_timeout(struct pt_conn *c)
{
    struct pt_h2_session *s = c->h2;
    uint64_t now = c->w->loop.now_ms;
    bool busy = false, fired = false;
    for (struct pt_h2_stream *st = s->streams.next; st != &s->streams; st = st->next) {
        struct pt_req *r = st->r;
        if (st->held && st->body_deadline_ms <= now) {
            pt_h2_release_head(st); /* the body did not end within body_timeout: answer */
            fired = true;
            continue;
        }
        if (!r || !is_proxied(r))
            continue;
        if (st->body_deadline_ms && st->body_deadline_ms <= now) {
            st->body_deadline_ms = 0;
            pt_proxy_client_timeout(r); /* 408, or a reset once the response began */
            st->is_woken = true;
            fired = true;
        } else {
            busy = true; /* waiting on its upstream (whose timers bound the wait) or a body */
        }
    }
    if (fired || (busy && !output_pending(c) && !s->is_doomed)) {
        s->progress_ms = now;
        pt_conn_run(c);
        return;
    }
    if (output_pending(c)) {
        pt_conn_abort_slow(c); /* the client does not read */
        return;
    }
    if (s->is_doomed) {
        pt_conn_close(c);
        return;
    }
    doom(s, NGHTTP2_NO_ERROR,
         s->n_streams ? "no progress within the timeout: GOAWAY" : "idle: GOAWAY");
    pt_conn_run(c);
}

bool pt_h2_conn_is_idle(const struct pt_conn *c)
{
    const struct pt_h2_session *s = c->h2;
    return s && s->n_streams == 0 && !s->is_doomed && !output_pending(c);
}

void pt_h2_conn_goaway(struct pt_conn *c)
{
    struct pt_h2_session *s = c->h2;
    if (!s || s->is_goaway || s->is_doomed || c->is_closed)
        return;
    s->is_goaway = true;
    nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(s->ng),
                          NGHTTP2_NO_ERROR, NULL, 0);
    pt_conn_yield(c);
}

void pt_h2_conn_shut(struct pt_conn *c)
{
    struct pt_h2_session *s = c->h2;
    if (!s || c->is_closed)
        return;
    for (struct pt_h2_stream *st = s->streams.next; st != &s->streams; st = st->next)
        if (!st->is_cancelled && !st->is_resp_done)
            reset(s, st, NGHTTP2_CANCEL);
    s->is_doomed = true;
    nghttp2_session_terminate_session(s->ng, NGHTTP2_NO_ERROR);
    write_frames(s); /* best effort: the connection closes next */
}

void pt_h2_end_old_tunnels(struct pt_conn *c, const struct pt_wsnap *cur)
{
    struct pt_h2_session *s = c->h2;
    if (!s || c->is_closed)
        return;
    for (struct pt_h2_stream *st = s->streams.next; st != &s->streams; st = st->next)
        if (st->r && st->r->pstate == PT_PS_TUNNEL && st->r->ws != cur)
            st->r->stream->reset(st->r); /* RST_STREAM CANCEL; the step sends it */
}

void pt_h2_reload(struct pt_worker *w)
{
    for (struct pt_conn *c = w->conns.next; c != &w->conns; c = c->next)
        if (c->state == PT_CS_H2)
            pt_h2_conn_goaway(c);
}
