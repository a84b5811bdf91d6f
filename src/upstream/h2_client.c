/*
 * h2_client.c - HTTP/2 client sessions on upstream connections (see h2_client.h).
 *
 * A connection is a struct pt_uconn whose owner is the session (struct pt_h2c_conn), kept on
 * its worker pool's list (pt_upool.h2_conns, oldest first) while it takes new streams. Its
 * readiness runs conn_run: the connect, the TLS handshake (ALPN must select "h2", else the
 * connect failed), then nghttp2_session_mem_recv on what the socket has and
 * nghttp2_session_mem_send into a bounded output buffer written with one writev (a frame
 * larger than the buffer's room is written from nghttp2's own memory, never copied). nghttp2's
 * callbacks only record what happened on the streams and put them on a dirty list; once the
 * session's round is over each dirty stream's owner hears `event`. An owner that calls back
 * in (consume, submit, release) while the round runs only asks for another round (in_run,
 * again), so nghttp2 is never re-entered.
 *
 * nghttp2 never holds a pointer to a stream: its callbacks look streams up by id in the
 * connection's short list, so a request can let go of its stream at any time (RST_STREAM
 * CANCEL when still open) and the stream is freed at once.
 *
 * Flow control is the back-pressure toward the target: WINDOW_UPDATEs are not automatic. A
 * stream's DATA is copied into its buffer of PT_H2C_WINDOW bytes, the window it announced, and
 * the window opens again only as the owner consumes what the client took. The buffer's bytes
 * are always at its front between two consumes, so appending never moves what the owner lent
 * out. The request body goes the other way through a deferred data provider: the owner copies
 * bytes in as the target's window allows and says -EAGAIN while the client has none.
 *
 * Failures: a connect that fails, times out or negotiates no h2 fails every stream on the
 * connection (PT_H2C_CONNECT*); a connection that dies fails its open streams (PT_H2C_RESET);
 * a stream closed with REFUSED_STREAM before a response, or above a GOAWAY's last stream id
 * (which nghttp2 closes with the same code), is PT_H2C_REFUSED: the target never processed
 * it. After GOAWAY a connection takes no new stream and closes when its last one ends; a
 * connection without streams closes after PT_UPOOL_IDLE_MS. PING is answered by nghttp2.
 *
 * Threading: one worker's loop; nothing shared.
 */
#include "upstream/h2_client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "tls/tls.h"
#include "tls/tls_transport.h"
#include "upstream/uconn.h"

#define READS_PER_STEP 32 /* 16 KiB reads of one connection per loop iteration */

struct pt_h2c_conn {
    struct pt_h2c_conn *next; /* the pool's list, oldest first */
    struct pt_upool *pool;
    struct pt_uconn *u;
    nghttp2_session *ng;
    struct pt_sockaddr addr; /* key, with tls_host_hash */
    uint32_t tls_host_hash;
    struct pt_tls_client_ctx *cc; /* own reference; NULL for h2c */
    char *host, *session_key;
    struct pt_h2c_stream *streams; /* every stream not released, in opening order */
    struct pt_h2c_stream *dirty;   /* streams whose owner is to hear event */
    uint32_t n_active;             /* streams not closed (counted against the peer's limit) */
    struct pt_buf out;             /* frames waiting for the socket */
    const uint8_t *pend;           /* a frame too large for out, in nghttp2's memory */
    size_t pend_n;
    int fail;          /* enum pt_h2c_fail: the connection is dead */
    bool is_ready;     /* connected, handshake done */
    bool got_settings; /* the peer's SETTINGS came */
    bool is_goaway;    /* GOAWAY received or sent: no new streams */
    bool is_dead;
    bool in_run;
    bool again;
    bool is_posted; /* post queued: a run in the next loop iteration */
    bool is_freed;  /* gone, its memory waits for the post */
    struct pt_defer post;
};

static struct pt_h2c_stream *find(struct pt_h2c_conn *c, int32_t id)
{
    for (struct pt_h2c_stream *s = c->streams; s; s = s->next)
        if (s->id == id)
            return s;
    return NULL;
}

static void mark(struct pt_h2c_stream *s)
{
    if (s->is_dirty || !s->conn)
        return;
    s->is_dirty = true;
    s->dirty_next = s->conn->dirty;
    s->conn->dirty = s;
}

static void stream_fail(struct pt_h2c_stream *s, int kind)
{
    if (!s->fail && !(s->is_end && kind == PT_H2C_RESET))
        s->fail = kind;
    mark(s);
}

/* ---- nghttp2 callbacks: record, mark, never call the owner ---- */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    (void)ng;
    struct pt_h2c_stream *s = find(ud, f->hd.stream_id);
    if (!s || f->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (!s->hbuf && !(s->hbuf = malloc(PT_H2C_HEAD_BYTES)))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    struct pt_h2h_limits lim = {PT_H2C_HEAD_BYTES, PT_H2C_MAX_FIELDS, false};
    if (s->status) { /* a block after the final head: trailers */
        pt_h2h_begin(&s->blk, PT_H2H_TRAILERS, &lim, s->field_arr + s->n_fields,
                     PT_H2C_MAX_FIELDS - s->n_fields, NULL, 0);
    } else {
        s->hbuf_n = 0; /* a 1xx head before it is dropped */
        pt_h2h_begin(&s->blk, PT_H2H_RESPONSE, &lim, s->field_arr, PT_H2C_MAX_FIELDS, NULL, 0);
    }
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    (void)ng;
    (void)flags;
    struct pt_h2c_stream *s = find(ud, f->hd.stream_id);
    if (!s || !s->hbuf)
        return 0;
    if (PT_H2C_HEAD_BYTES - s->hbuf_n < namelen + valuelen) {
        s->fail = PT_H2C_BAD;
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    char *n = s->hbuf + s->hbuf_n;
    memcpy(n, name, namelen);
    memcpy(n + namelen, value, valuelen);
    s->hbuf_n += namelen + valuelen;
    if (pt_h2h_field(&s->blk, (struct pt_str){n, namelen}, (struct pt_str){n + namelen, valuelen}) <
        0) {
        s->fail = PT_H2C_BAD;
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return 0;
}

static void headers_done(struct pt_h2c_stream *s)
{
    if (s->status) {
        struct pt_field *tf;
        uint32_t tn;
        if (pt_h2h_finish_trailers(&s->blk, &tf, &tn) == 0) {
            s->trailers = tf;
            s->n_trailers = tn;
        }
        return;
    }
    struct pt_h2h_response resp;
    if (pt_h2h_finish_response(&s->blk, &resp) < 0) {
        stream_fail(s, PT_H2C_BAD);
        return;
    }
    if (resp.status < 200)
        return; /* interim: not forwarded */
    s->status = resp.status;
    s->content_length = resp.content_length;
    s->fields = resp.fields;
    s->n_fields = resp.n_fields;
    mark(s);
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    struct pt_h2c_conn *c = ud;
    switch (f->hd.type) {
    case NGHTTP2_SETTINGS:
        if (!(f->hd.flags & NGHTTP2_FLAG_ACK))
            c->got_settings = true;
        return 0;
    case NGHTTP2_GOAWAY:
        c->is_goaway = true;
        /* nghttp2 refuses the opened streams above last_stream_id itself (on_stream_close);
           requests it still holds back (the peer's stream limit) would wait for a stream to
           end only to be refused then: they are refused now and their HEADERS cancelled. */
        for (struct pt_h2c_stream *s = c->streams; s; s = s->next)
            if (s->id > f->goaway.last_stream_id && !s->is_closed &&
                !nghttp2_session_find_stream(ng, s->id)) {
                s->is_closed = true;
                c->n_active--;
                nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
                stream_fail(s, PT_H2C_REFUSED);
            }
        return 0;
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA:
        break;
    default:
        return 0;
    }
    struct pt_h2c_stream *s = find(c, f->hd.stream_id);
    if (!s)
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS && s->hbuf)
        headers_done(s);
    if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        s->is_end = true;
        mark(s);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    (void)flags;
    struct pt_h2c_stream *s = find(ud, id);
    if (!s || s->fail) {
        nghttp2_session_consume_connection(ng, len); /* nobody takes them */
        return 0;
    }
    if (!s->in.data && pt_buf_alloc(&s->in, PT_H2C_WINDOW) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (!pt_buf_put(&s->in, data, len))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* over the window it was given */
    mark(s);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *ud)
{
    (void)ng;
    struct pt_h2c_conn *c = ud;
    struct pt_h2c_stream *s = find(c, id);
    if (!s || s->is_closed)
        return 0;
    s->is_closed = true;
    c->n_active--;
    s->error_code = code;
    if (code == NGHTTP2_REFUSED_STREAM && !s->status)
        stream_fail(s, PT_H2C_REFUSED);
    else if (!s->is_end)
        stream_fail(s, PT_H2C_RESET);
    mark(s);
    return 0;
}

/* A request's HEADERS that never left: after a GOAWAY received, its stream may not start (the
   target never saw it: refused); anything else is a failure of the stream. */
static int on_not_sent(nghttp2_session *ng, const nghttp2_frame *f, int err, void *ud)
{
    (void)ng;
    struct pt_h2c_conn *c = ud;
    struct pt_h2c_stream *s = f->hd.type == NGHTTP2_HEADERS ? find(c, f->hd.stream_id) : NULL;
    if (!s || s->is_closed || s->status)
        return 0;
    s->is_closed = true;
    c->n_active--;
    stream_fail(s, err == NGHTTP2_ERR_START_STREAM_NOT_ALLOWED ? PT_H2C_REFUSED : PT_H2C_RESET);
    return 0;
}

static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud)
{
    (void)src;
    struct pt_h2c_stream *s = find(ud, id);
    if (!s || !s->owner)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    bool eof = false;
    ssize_t n = s->ops->read_body(s->owner, buf, len, &eof);
    if (n == -EAGAIN) {
        s->is_body_deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    if (n < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    mark(s); /* the owner took client bytes: its protocol may have a window to open */
    if (eof) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        struct pt_field tf[64];
        size_t tn = s->ops->req_trailers ? s->ops->req_trailers(s->owner, tf, 64) : 0;
        if (tn) {
            nghttp2_nv nv[64];
            char tb[8192];
            int m = pt_h2h_trailers_nv(tf, tn, nv, PT_ARRAY_LEN(nv), tb, sizeof(tb));
            if (m > 0 && nghttp2_submit_trailer(ng, id, nv, (size_t)m) == 0)
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        }
    }
    return n;
}

/* ---- the connection's I/O ---- */

static void conn_fail(struct pt_h2c_conn *c, int kind)
{
    if (c->is_dead)
        return;
    c->is_dead = true;
    c->fail = kind;
    for (struct pt_h2c_stream *s = c->streams; s; s = s->next)
        if (!s->is_closed || !s->is_end) {
            s->is_conn_lost = true;
            stream_fail(s, kind);
        }
    struct pt_h2c_conn **pp = &c->pool->h2_conns;
    while (*pp && *pp != c)
        pp = &(*pp)->next;
    if (*pp)
        *pp = c->next;
}

/* Writes what nghttp2 has to send. Returns false when the connection broke. */
static bool write_out(struct pt_h2c_conn *c)
{
    struct pt_transport *t = &c->u->t;
    for (;;) {
        while (!c->pend_n) {
            const uint8_t *d;
            ssize_t n = nghttp2_session_mem_send(c->ng, &d);
            if (n < 0)
                return false;
            if (n == 0)
                break;
            if ((size_t)n <= pt_buf_room(&c->out)) {
                pt_buf_put(&c->out, d, (size_t)n);
            } else {
                c->pend = d;
                c->pend_n = (size_t)n;
            }
        }
        uint32_t olen = pt_buf_len(&c->out);
        if (!olen && !c->pend_n)
            return true;
        if (!t->can_write)
            return true;
        struct iovec iov[2];
        int k = 0;
        if (olen)
            iov[k++] = (struct iovec){pt_buf_rpos(&c->out), olen};
        if (c->pend_n)
            iov[k++] = (struct iovec){(void *)c->pend, c->pend_n};
        ssize_t n = pt_transport_writev(t, iov, k, false);
        if (n == -EAGAIN)
            return true;
        if (n < 0)
            return false;
        size_t a = PT_MIN((size_t)n, (size_t)olen);
        pt_buf_consume(&c->out, (uint32_t)a);
        if (pt_buf_len(&c->out) == 0)
            c->out.head = c->out.tail = 0;
        c->pend += (size_t)n - a;
        c->pend_n -= (size_t)n - a;
    }
}

static bool start_tls(struct pt_h2c_conn *c)
{
    struct pt_uconn *u = c->u;
    pt_transport_free(&u->t);
    if (pt_tls_transport_client_init(&u->t, c->cc, u->io.fd, c->host, c->session_key) < 0)
        return false;
    u->t.can_read = true; /* try the handshake at once */
    return true;
}

static void log_conn(const struct pt_h2c_conn *c, const char *what, const char *why)
{
    char a[64];
    pt_sock_ntop(&c->addr.u.sa, a, sizeof(a));
    pt_log_ratelimited(PT_LOG_WARN, "upstream h2 connection to %s: %s%s%s", a, what,
                       why && *why ? ": " : "", why ? why : "");
}

static void post_run(struct pt_h2c_conn *c);

/* Connect, handshake, read, write: what the socket allows now. A busy connection reads at most
   READS_PER_STEP buffers, then comes back in the next loop iteration (the worker's other
   connections get their turn; the socket, edge-triggered, would not be reported again). */
static void conn_step(struct pt_h2c_conn *c)
{
    struct pt_uconn *u = c->u;
    if (u->is_connecting) {
        if (!u->t.can_write && !u->t.can_read)
            return;
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(u->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            log_conn(c, "connect failed", strerror(err));
            conn_fail(c, PT_H2C_CONNECT);
            return;
        }
        u->is_connecting = false;
        if (c->cc && !start_tls(c)) {
            conn_fail(c, PT_H2C_CONNECT);
            return;
        }
    }
    if (u->t.is_handshaking) {
        int hs = pt_transport_handshake(&u->t);
        if (hs == PT_AGAIN)
            return;
        if (hs != PT_OK) {
            log_conn(c, "TLS handshake failed", pt_transport_error(&u->t));
            conn_fail(c, PT_H2C_CONNECT);
            return;
        }
        size_t alen = 0;
        const char *alpn = pt_tls_alpn(pt_transport_tls(&u->t), &alen);
        if (!alpn || alen != 2 || memcmp(alpn, "h2", 2) != 0) {
            log_conn(c, "the target did not select ALPN h2", NULL);
            conn_fail(c, PT_H2C_CONNECT);
            return;
        }
    }
    if (!c->is_ready) {
        c->is_ready = true;
        pt_timer_stop(c->pool->loop, &u->timer);
        for (struct pt_h2c_stream *s = c->streams; s; s = s->next)
            if (s->timer_ms) {
                pt_timer_set(c->pool->loop, &s->timer, s->timer_ms);
                s->timer_ms = 0;
            }
    }
    for (int reads = 0; u->t.can_read && !c->is_dead; reads++) {
        if (reads == READS_PER_STEP) {
            post_run(c);
            break;
        }
        uint8_t buf[16384];
        ssize_t n = pt_transport_read(&u->t, buf, sizeof(buf));
        if (n == -EAGAIN)
            break;
        if (n <= 0) {
            if (c->n_active)
                log_conn(c, n == 0 ? "closed by the target" : "read failed",
                         n < 0 ? pt_transport_error(&u->t) : NULL);
            conn_fail(c, PT_H2C_RESET);
            return;
        }
        ssize_t rv = nghttp2_session_mem_recv(c->ng, buf, (size_t)n);
        if (rv < 0) {
            log_conn(c, "HTTP/2 error", nghttp2_strerror((int)rv));
            conn_fail(c, PT_H2C_RESET);
            return;
        }
    }
    if (!write_out(c)) {
        log_conn(c, "write failed", pt_transport_error(&u->t));
        conn_fail(c, PT_H2C_RESET);
        return;
    }
    if (!nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng) &&
        !pt_buf_len(&c->out) && !c->pend_n)
        conn_fail(c, PT_H2C_RESET); /* both sides said GOAWAY and nothing is left */
}

static void conn_free(struct pt_h2c_conn *c)
{
    for (struct pt_h2c_stream *s = c->streams; s; s = s->next)
        s->conn = NULL;
    c->streams = NULL;
    pt_uconn_close(c->u);
    nghttp2_session_del(c->ng);
    c->ng = NULL;
    pt_buf_release(&c->out);
    pt_tls_client_ctx_unref(c->cc);
    c->cc = NULL;
    free(c->host);
    free(c->session_key);
    c->host = c->session_key = NULL;
    c->is_freed = true;
    if (!c->is_posted)
        free(c);
}

/* Tells the owners of dirty streams. */
static void notify(struct pt_h2c_conn *c)
{
    while (c->dirty) {
        struct pt_h2c_stream *s = c->dirty;
        c->dirty = s->dirty_next;
        s->is_dirty = false;
        s->dirty_next = NULL;
        if (s->owner)
            s->ops->event(s->owner); /* may release s */
    }
}

static void conn_run(struct pt_h2c_conn *c)
{
    if (c->in_run) {
        c->again = true;
        return;
    }
    c->in_run = true;
    do {
        c->again = false;
        if (!c->is_dead)
            conn_step(c);
        notify(c);
    } while (c->again);
    c->in_run = false;
    if (c->is_dead) {
        conn_free(c);
        return;
    }
    if (c->is_ready && !c->streams) {
        if (c->is_goaway) {
            conn_fail(c, PT_H2C_RESET);
            conn_free(c);
            return;
        }
        pt_timer_set(c->pool->loop, &c->u->timer, PT_UPOOL_IDLE_MS);
    }
}

static void conn_ready(void *owner)
{
    conn_run(owner);
}

static void posted(struct pt_defer *d)
{
    struct pt_h2c_conn *c = PT_CONTAINER_OF(d, struct pt_h2c_conn, post);
    c->is_posted = false;
    if (c->is_freed)
        free(c);
    else
        conn_run(c);
}

/* A run of c in the next loop iteration. */
static void post_run(struct pt_h2c_conn *c)
{
    if (!c->is_posted) {
        c->is_posted = true;
        pt_loop_post(c->pool->loop, &c->post, posted);
    }
}

/* The owner changed something nghttp2 has to send: the session runs in the next loop
   iteration (or again in the round under way), never inside the owner's call, which may come
   from its own event. */
static void kick(struct pt_h2c_conn *c)
{
    if (c->in_run)
        c->again = true;
    else
        post_run(c);
}

/* The connect timeout, or the idle timeout of a connection without streams. */
static void conn_timeout(void *owner)
{
    struct pt_h2c_conn *c = owner;
    if (!c->is_ready) {
        log_conn(c, "connect timed out", NULL);
        conn_fail(c, PT_H2C_CONNECT_TIMEOUT);
    } else if (!c->streams) {
        conn_fail(c, PT_H2C_RESET);
    }
    conn_run(c);
}

static struct pt_h2c_conn *conn_new(struct pt_upool *p, const struct pt_h2c_target *t, int *err,
                                    const char **what)
{
    struct pt_h2c_conn *c = calloc(1, sizeof(*c));
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    if (!c || pt_buf_alloc(&c->out, PT_BUF_LARGE) < 0 || nghttp2_session_callbacks_new(&cbs) != 0 ||
        nghttp2_option_new(&opt) != 0)
        goto oom;
    c->host = t->host ? strdup(t->host) : NULL;
    c->session_key = t->session_key ? strdup(t->session_key) : NULL;
    if (t->tls_cc && (!c->host || !c->session_key))
        goto oom;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, on_not_sent);
    nghttp2_option_set_no_auto_window_update(opt, 1); /* the owner consumes */
    nghttp2_option_set_peer_max_concurrent_streams(opt, PT_H2C_ASSUMED_STREAMS);
    int rv = nghttp2_session_client_new2(&c->ng, cbs, c, opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    cbs = NULL;
    opt = NULL;
    if (rv != 0)
        goto oom;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, PT_H2C_WINDOW},
    };
    if (nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, PT_ARRAY_LEN(iv)) != 0 ||
        nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0, PT_H2C_CONN_WINDOW) != 0)
        goto oom;
    int in_progress = 0;
    int fd = pt_sock_connect(&t->addr->u.sa, t->addr->len, &in_progress);
    if (fd < 0) {
        *err = -fd;
        *what = "connect";
        goto fail;
    }
    c->u = pt_uconn_new(p, fd, t->addr, t->tls_host_hash, in_progress != 0, err, what);
    if (!c->u)
        goto fail;
    c->u->owner = c;
    c->u->on_ready = conn_ready;
    c->u->on_timeout = conn_timeout;
    c->pool = p;
    c->addr = *t->addr;
    c->tls_host_hash = t->tls_host_hash;
    if (t->tls_cc) {
        pt_tls_client_ctx_ref(t->tls_cc);
        c->cc = t->tls_cc;
        if (!in_progress && !start_tls(c)) {
            conn_free(c);
            *err = ENOMEM;
            *what = "TLS";
            return NULL;
        }
    }
    pt_timer_set(p->loop, &c->u->timer, t->connect_timeout_ms);
    struct pt_h2c_conn **pp = &p->h2_conns;
    while (*pp)
        pp = &(*pp)->next;
    *pp = c;
    return c;
oom:
    *err = ENOMEM;
    *what = "nghttp2";
fail:
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    if (c) {
        if (c->ng)
            nghttp2_session_del(c->ng);
        pt_buf_release(&c->out);
        free(c->host);
        free(c->session_key);
        free(c);
    }
    return NULL;
}

/* ---- streams ---- */

static uint32_t limit_of(struct pt_h2c_conn *c)
{
    return nghttp2_session_get_remote_settings(c->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

/* Streams c may still take. Until its SETTINGS come, the limit a sibling connection to the
   same key learned (known), else PT_H2C_ASSUMED_STREAMS: the same server says the same. */
static uint32_t room_of(struct pt_h2c_conn *c, uint32_t known)
{
    uint32_t max = c->got_settings ? limit_of(c) : known;
    return c->n_active < max ? max - c->n_active : 0;
}

static void stream_timeout(struct pt_timer *t)
{
    struct pt_h2c_stream *s = PT_CONTAINER_OF(t, struct pt_h2c_stream, timer);
    if (s->owner)
        s->ops->timeout(s->owner);
}

int pt_h2c_open(struct pt_upool *p, const struct pt_h2c_target *t, const struct pt_h2c_ops *ops,
                void *owner, struct pt_h2c_stream **out, const char **what)
{
    struct pt_h2c_conn *best = NULL, *least = NULL;
    uint32_t n = 0, known = PT_H2C_ASSUMED_STREAMS;
    for (struct pt_h2c_conn *c = p->h2_conns; c; c = c->next)
        if (c->got_settings && !c->is_dead && c->tls_host_hash == t->tls_host_hash &&
            pt_sockaddr_eq(&c->addr, t->addr))
            known = PT_MIN(known, limit_of(c));
    for (struct pt_h2c_conn *c = p->h2_conns; c; c = c->next) {
        if (c->is_goaway || c->is_dead || c->tls_host_hash != t->tls_host_hash ||
            !pt_sockaddr_eq(&c->addr, t->addr))
            continue;
        n++;
        if (!best && room_of(c, known))
            best = c;
        if (!least || c->n_active < least->n_active)
            least = c;
    }
    if (!best && (n < t->max_conns || !least)) {
        int err = 0;
        best = conn_new(p, t, &err, what);
        if (!best)
            return -err;
    } else if (!best) {
        best = least; /* all full: nghttp2 holds the request until a stream ends */
    }
    struct pt_h2c_stream *s = calloc(1, sizeof(*s));
    if (!s) {
        *what = "calloc";
        if (!best->streams && best->is_ready)
            pt_timer_set(p->loop, &best->u->timer, PT_UPOOL_IDLE_MS);
        return -ENOMEM;
    }
    s->conn = best;
    s->is_reused = best->is_ready;
    s->ops = ops;
    s->owner = owner;
    s->loop = p->loop;
    s->content_length = -1;
    pt_timer_init(&s->timer, stream_timeout);
    struct pt_h2c_stream **pp = &best->streams;
    while (*pp)
        pp = &(*pp)->next;
    *pp = s;
    best->n_active++;
    if (best->is_ready)
        pt_timer_stop(p->loop, &best->u->timer); /* idle no more */
    *out = s;
    return 0;
}

int pt_h2c_submit(struct pt_h2c_stream *s, const nghttp2_nv *nv, size_t n, bool has_body)
{
    struct pt_h2c_conn *c = s->conn;
    if (!c || s->fail || s->id)
        return -1;
    nghttp2_data_provider dp = {.source = {.ptr = NULL}, .read_callback = read_body};
    int32_t id = nghttp2_submit_request(c->ng, NULL, nv, n, has_body ? &dp : NULL, NULL);
    if (id < 0) {
        s->fail = PT_H2C_RESET;
        return -1;
    }
    s->id = id;
    if (c->is_ready)
        kick(c);
    return 0;
}

void pt_h2c_resume_body(struct pt_h2c_stream *s)
{
    struct pt_h2c_conn *c = s->conn;
    if (!c || !s->is_body_deferred || s->is_closed)
        return;
    s->is_body_deferred = false;
    nghttp2_session_resume_data(c->ng, s->id);
    kick(c);
}

void pt_h2c_consume(struct pt_h2c_stream *s, size_t n)
{
    pt_buf_consume(&s->in, (uint32_t)n);
    uint32_t left = pt_buf_len(&s->in);
    if (left && s->in.head)
        memmove(s->in.data, pt_buf_rpos(&s->in), left);
    s->in.head = 0;
    s->in.tail = left;
    struct pt_h2c_conn *c = s->conn;
    if (!c)
        return;
    if (!s->is_closed)
        nghttp2_session_consume(c->ng, s->id, n);
    else
        nghttp2_session_consume_connection(c->ng, n);
    kick(c);
}

void pt_h2c_set_timer(struct pt_h2c_stream *s, uint32_t ms)
{
    s->timer_ms = 0;
    if (ms && s->conn && !s->conn->is_ready) {
        s->timer_ms = ms; /* armed when the connection is up */
        return;
    }
    if (ms)
        pt_timer_set(s->loop, &s->timer, ms);
    else
        pt_timer_stop(s->loop, &s->timer);
}

void pt_h2c_release(struct pt_h2c_stream *s)
{
    if (!s)
        return;
    pt_timer_stop(s->loop, &s->timer);
    struct pt_h2c_conn *c = s->conn;
    if (c) {
        if (!s->is_closed) {
            c->n_active--;
            if (s->id)
                nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
        }
        if (pt_buf_len(&s->in))
            nghttp2_session_consume_connection(c->ng, pt_buf_len(&s->in));
        struct pt_h2c_stream **pp = &c->streams;
        while (*pp && *pp != s)
            pp = &(*pp)->next;
        if (*pp)
            *pp = s->next;
        for (pp = &c->dirty; *pp; pp = &(*pp)->dirty_next)
            if (*pp == s) {
                *pp = s->dirty_next;
                break;
            }
    }
    pt_buf_release(&s->in);
    free(s->hbuf);
    free(s);
    if (c)
        kick(c);
}

void pt_h2c_pool_close(struct pt_upool *p, bool force)
{
    struct pt_h2c_conn *c = p->h2_conns;
    while (c) {
        struct pt_h2c_conn *next = c->next;
        if (!c->streams || force) {
            conn_fail(c, PT_H2C_RESET);
            conn_run(c);
        } else if (!c->is_goaway) {
            c->is_goaway = true;
            nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
            conn_run(c);
        }
        c = next;
    }
}
