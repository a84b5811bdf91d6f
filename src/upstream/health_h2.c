/*
 * health_h2.c - one HTTP/2 health-check exchange over libnghttp2's client session (see
 * health_h2.h).
 *
 * The session is driven by memory, not by callbacks that do I/O: nghttp2_session_mem_send()
 * serialises what it queued (the connection preface, our SETTINGS, the request's HEADERS, and
 * later the acknowledgements the peer's SETTINGS and PINGs call for) into an output buffer that
 * the checker writes through its transport, and nghttp2_session_mem_recv() takes what the checker
 * read. Four callbacks collect the response: on_header keeps :status, on_frame_recv makes it the
 * final status once a HEADERS frame carried a non-1xx one (interim responses are skipped, RFC
 * 9113 §8.1) and notes GOAWAY, on_data_chunk_recv keeps the first body_max bytes of the body,
 * on_stream_close ends the exchange. nghttp2's error callback keeps the first reason it gives
 * for a connection error (e.g. "Remote peer returned unexpected data while we expected SETTINGS
 * frame"), which is how an HTTP/1.1-only target behind protocol h2c shows in the log.
 *
 * Why nghttp2 and not a hand-written frame writer: sending the request is a few bytes, but
 * reading the response means HPACK decoding (a dynamic table the peer may use), SETTINGS and
 * PING acknowledgements, CONTINUATION and padding; nghttp2 (already linked for the client side)
 * does all of it, and validates the response head as it does for clients. The cost, one session
 * per check, is nothing next to the connect and, for h2, the TLS handshake it follows.
 *
 * The request carries the pseudo-header fields of RFC 9113 §8.3.1 and the same user-agent and
 * accept fields as the HTTP/1.1 check. Server push is refused in our SETTINGS.
 */
#include "upstream/health_h2.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <nghttp2/nghttp2.h>

#define OUT_MAX 65536 /* queued output beyond this is a peer flooding us with PINGs/SETTINGS */

struct pt_health_h2 {
    nghttp2_session *ng;
    int32_t stream_id; /* our request's stream */
    int last_status;   /* :status of the last HEADERS seen on the stream */
    int status;        /* final (>= 200) status, 0 until then */
    bool is_ended;     /* the stream closed (END_STREAM both ways, or reset) */
    bool saw_goaway;
    uint32_t goaway_code;
    uint32_t close_code; /* the stream's close error code */
    bool is_fatal;       /* the session is unusable (mem_recv failed, or it stopped reading) */
    char *body;          /* body_max bytes */
    size_t body_len, body_max;
    char *out; /* pending output, [out_off, out_len) not yet sent; OUT_MAX at most */
    size_t out_len, out_off;
    char why[200];    /* the reason shown by pt_health_h2_error() */
    char ng_msg[120]; /* first connection-error message from nghttp2 */
};

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    (void)s;
    (void)flags;
    struct pt_health_h2 *x = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->hd.stream_id != x->stream_id)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0 && valuelen == 3) {
        int v = 0;
        for (size_t i = 0; i < 3; i++)
            v = v * 10 + (value[i] - '0'); /* nghttp2 checked: three digits */
        x->last_status = v;
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)s;
    struct pt_health_h2 *x = ud;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        x->saw_goaway = true;
        x->goaway_code = f->goaway.error_code;
    } else if (f->hd.type == NGHTTP2_HEADERS && f->hd.stream_id == x->stream_id && !x->status &&
               x->last_status >= 200) {
        x->status = x->last_status;
    }
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t stream_id, const uint8_t *data,
                   size_t len, void *ud)
{
    (void)s;
    (void)flags;
    struct pt_health_h2 *x = ud;
    if (stream_id != x->stream_id)
        return 0;
    size_t room = x->body_max - x->body_len;
    size_t n = len < room ? len : room;
    memcpy(x->body + x->body_len, data, n);
    x->body_len += n;
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t stream_id, uint32_t code, void *ud)
{
    (void)s;
    struct pt_health_h2 *x = ud;
    if (stream_id == x->stream_id) {
        x->is_ended = true;
        x->close_code = code;
    }
    return 0;
}

static int on_error(nghttp2_session *s, int code, const char *msg, size_t len, void *ud)
{
    (void)s;
    (void)code;
    struct pt_health_h2 *x = ud;
    if (!x->ng_msg[0])
        snprintf(x->ng_msg, sizeof(x->ng_msg), "%.*s", (int)len, msg);
    return 0;
}

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE                 \
    }

struct pt_health_h2 *pt_health_h2_new(const char *method, const char *path, const char *scheme,
                                      const char *authority, size_t body_max)
{
    nghttp2_session_callbacks *cbs = NULL;
    struct pt_health_h2 *x = calloc(1, sizeof(*x));
    if (!x)
        return NULL;
    x->body_max = body_max;
    x->body = malloc(body_max ? body_max : 1);
    if (!x->body || nghttp2_session_callbacks_new(&cbs) != 0)
        goto fail;
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_error_callback2(cbs, on_error);
    int rc = nghttp2_session_client_new(&x->ng, cbs, x);
    nghttp2_session_callbacks_del(cbs);
    if (rc != 0)
        goto fail;
    nghttp2_settings_entry set[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
    if (nghttp2_submit_settings(x->ng, NGHTTP2_FLAG_NONE, set, 1) != 0)
        goto fail;
    const nghttp2_nv nva[] = {
        NV(":method", method),
        NV(":scheme", scheme),
        NV(":authority", authority),
        NV(":path", path),
        NV("user-agent", "portico-health"),
        NV("accept", "*/*"),
    };
    x->stream_id =
        nghttp2_submit_request(x->ng, NULL, nva, sizeof(nva) / sizeof(nva[0]), NULL, NULL);
    if (x->stream_id < 0)
        goto fail;
    return x;
fail:
    pt_health_h2_free(x);
    return NULL;
}

/* Moves what the session queued into the output buffer. Returns 0 or -ENOMEM. */
static int pump(struct pt_health_h2 *x)
{
    if (x->out_off == x->out_len)
        x->out_off = x->out_len = 0;
    for (;;) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(x->ng, &p);
        if (n < 0)
            return -ENOMEM; /* only NGHTTP2_ERR_NOMEM or a callback failure: none of ours */
        if (n == 0)
            return 0;
        if (x->out_len + (size_t)n > OUT_MAX)
            return -ENOMEM;
        char *grown = realloc(x->out, x->out_len + (size_t)n);
        if (!grown)
            return -ENOMEM;
        x->out = grown;
        memcpy(x->out + x->out_len, p, (size_t)n);
        x->out_len += (size_t)n;
    }
}

int pt_health_h2_output(struct pt_health_h2 *x, const char **data, size_t *len)
{
    if (pump(x) < 0)
        return -ENOMEM;
    *data = x->out ? x->out + x->out_off : "";
    *len = x->out_len - x->out_off;
    return 0;
}

void pt_health_h2_sent(struct pt_health_h2 *x, size_t n)
{
    x->out_off += n;
}

int pt_health_h2_feed(struct pt_health_h2 *x, const char *data, size_t len)
{
    ssize_t n = nghttp2_session_mem_recv(x->ng, (const uint8_t *)data, len);
    /* A connection error makes the session queue GOAWAY, and it stops reading only once that
       is serialised: pump it out now, so that want_read tells. */
    if (n < 0 || pump(x) < 0 || !nghttp2_session_want_read(x->ng)) {
        x->is_fatal = true;
        if (!x->ng_msg[0])
            snprintf(x->ng_msg, sizeof(x->ng_msg), "%s",
                     n < 0 ? nghttp2_strerror((int)n) : "connection error");
    }
    return n < 0 ? -1 : 0;
}

int pt_health_h2_status(const struct pt_health_h2 *x)
{
    return x->status;
}

const char *pt_health_h2_body(const struct pt_health_h2 *x, size_t *len)
{
    *len = x->body_len;
    return x->body;
}

bool pt_health_h2_is_ended(const struct pt_health_h2 *x)
{
    return x->is_ended;
}

const char *pt_health_h2_error(struct pt_health_h2 *x)
{
    if (x->saw_goaway && !x->status)
        snprintf(x->why, sizeof(x->why), "the target ended the HTTP/2 connection (GOAWAY %s)",
                 nghttp2_http2_strerror(x->goaway_code));
    else if (x->is_fatal)
        snprintf(x->why, sizeof(x->why), "no HTTP/2 from the target: %s", x->ng_msg);
    else if (x->is_ended && !x->status)
        snprintf(x->why, sizeof(x->why), "HTTP/2 stream reset without a response (%s)",
                 nghttp2_http2_strerror(x->close_code));
    else
        return NULL;
    return x->why;
}

void pt_health_h2_free(struct pt_health_h2 *x)
{
    if (!x)
        return;
    nghttp2_session_del(x->ng);
    free(x->body);
    free(x->out);
    free(x);
}
