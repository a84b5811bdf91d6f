/*
 * proxy_h2.c - the proxy toward upstreams that speak HTTP/2 (protocol: h2 or h2c): the same
 * exchange as proxy.c's, on a stream of a shared connection (upstream/h2_client.h) instead of
 * a connection of its own.
 *
 * pt_proxy_start (proxy.c) picks the upstream, the target and the attempt as for HTTP/1.1 and
 * builds the same HTTP/1.1 request head into r->uout, so one set of rules decides what goes
 * upstream (hop-by-hop fields, X-Forwarded-*, Host, strip_prefix, path templates, header
 * rules). Here that head is parsed back and turned into HTTP/2 fields (pt_h2h_request_nv: Host
 * becomes :authority, connection-specific fields go) each time a stream is submitted: on the
 * first attempt and on every retry. Load is balanced per request: each request picks its
 * target and takes a stream on a connection to it.
 *
 *   stream read_body --copy (nghttp2 data provider, window permitting)--> upstream stream
 *   stream send_borrowed <-- [slice of the upstream stream's buffer] <-- DATA frames
 *
 * Request body: the data provider copies what the client's stream has into DATA frames as far
 * as the target's window allows; while the client has nothing the provider is deferred and
 * the client's stream calls the pump when bytes come, which resumes it. The client's trailers
 * follow the body as a HEADERS frame. Response body: the stream's buffer (its receive window)
 * is lent to the client's stream a slice at a time and consumed, which opens the target's
 * window again, only when the client took it: a slow client stops the target (back-pressure).
 * Response trailers go to the client with send_trailers.
 *
 * Failures map to the attempt's kinds (attempt.h): a refused stream (REFUSED_STREAM, or above
 * a GOAWAY's last stream id) is PT_FAIL_REFUSED, retried whatever the method while no body
 * byte went; the rest as for HTTP/1.1. A client that goes away cancels only its stream
 * (RST_STREAM CANCEL), never the shared connection. Timeouts: connect_timeout is the
 * connection's, the route's timeout or per_try_timeout bounds the wait for the response head
 * (stopped while the client's body is awaited), then the silence between response bytes.
 */
#include <errno.h>
#include <string.h>

#include "core/log.h"
#include "handler/handler.h"
#include "handler/proxy_internal.h"
#include "http/h2_headers.h"
#include "upstream/attempt.h"
#include "upstream/h2_client.h"

#define MAX_FIELDS 256   /* fields of the request head sent upstream */
#define NAME_BYTES 16384 /* their names, lowercased */

static enum pt_fail_kind kind_of(int fail)
{
    switch (fail) {
    case PT_H2C_CONNECT:
        return PT_FAIL_CONNECT;
    case PT_H2C_CONNECT_TIMEOUT:
        return PT_FAIL_CONNECT_TIMEOUT;
    case PT_H2C_REFUSED:
        return PT_FAIL_REFUSED;
    case PT_H2C_BAD:
        return PT_FAIL_BAD_RESPONSE;
    default:
        return PT_FAIL_RESET;
    }
}

/* ---- the stream's callbacks ---- */

static void on_event(void *owner)
{
    struct pt_req *r = owner;
    r->stream->resume(r);
}

static void on_timeout(void *owner)
{
    struct pt_req *r = owner;
    /* No head in time; or, once it came, no byte for that long: cannot be completed. */
    pt_proxy_failed(r, r->resp_head_seen ? PT_FAIL_RESET : PT_FAIL_TIMEOUT);
    r->stream->resume(r);
}

static ssize_t on_read_body(void *owner, uint8_t *buf, size_t len, bool *eof)
{
    struct pt_req *r = owner;
    if (r->h2_body_status)
        return -EIO;
    struct pt_str v;
    int rc = r->stream->read_body(r, &v);
    if (rc == PT_AGAIN) {
        /* Waiting on the client (its body_timeout runs): the target is not late. */
        if (!r->resp_head_seen)
            pt_h2c_set_timer(r->at.h2, 0);
        return -EAGAIN;
    }
    if (rc != PT_OK) {
        r->h2_body_status = rc; /* the pump answers it */
        return -EIO;
    }
    if (!r->resp_head_seen)
        pt_h2c_set_timer(r->at.h2, pt_attempt_head_timeout(&r->at));
    if (v.n == 0) {
        *eof = true;
        return 0;
    }
    size_t n = PT_MIN(len, v.n);
    memcpy(buf, v.p, n);
    r->stream->consume_body(r, n);
    r->at.is_body_sent = true;
    return (ssize_t)n;
}

/* The client's trailer fields that may cross (the HTTP/1.1 path's filter). */
static size_t on_req_trailers(void *owner, struct pt_field *out, size_t cap)
{
    struct pt_req *r = owner;
    const struct pt_field *f;
    size_t n = r->stream->req_trailers(r, &f);
    struct pt_field keep[PT_BODY_TRAILERS_MAX];
    n = n ? pt_proxy_filter_trailers(r, f, n, keep) : 0;
    n = PT_MIN(n, cap);
    memcpy(out, keep, n * sizeof(*out));
    return n;
}

static const struct pt_h2c_ops stream_ops = {
    .event = on_event,
    .timeout = on_timeout,
    .read_body = on_read_body,
    .req_trailers = on_req_trailers,
};

const struct pt_attempt_ops pt_proxy_h2_attempt_ops = {
    .dequeued = pt_proxy_on_dequeued,
    .set_affinity = pt_proxy_on_affinity,
    .h2 = &stream_ops,
};

/* ---- the request ---- */

int pt_proxy_h2_submit(struct pt_req *r)
{
    struct pt_field fields[MAX_FIELDS];
    struct pt_h1_request hr;
    memset(&hr, 0, sizeof(hr));
    hr.headers = fields;
    hr.num_headers = MAX_FIELDS;
    int status = 431;
    if (pt_h1_parse_request(r->uout.data, r->uhead_len, &hr, r->uhead_len) < 0)
        goto fail;
    bool tls = r->at.target->is_https;
    struct pt_h2h_h1_request q = {
        .method = hr.method,
        .target = hr.target,
        .host = hr.host,
        .scheme = tls ? (struct pt_str){"https", 5} : (struct pt_str){"http", 4},
        .fields = fields,
        .n_fields = hr.num_headers,
    };
    nghttp2_nv nv[MAX_FIELDS + 4];
    char names[NAME_BYTES];
    int n = pt_h2h_request_nv(&q, nv, PT_ARRAY_LEN(nv), names, sizeof(names));
    if (n < 0) {
        status = n == PT_H2H_ETOOMANY || n == PT_H2H_ETOOBIG ? 431 : 502;
        goto fail;
    }
    status = 502;
    if (pt_h2c_submit(r->at.h2, nv, (size_t)n, r->has_body) < 0)
        goto fail;
    pt_h2c_set_timer(r->at.h2, pt_attempt_head_timeout(&r->at));
    return PT_OK;
fail:
    pt_log_ratelimited(PT_LOG_WARN, "request %s: cannot send the request to upstream \"%s\" (%d)",
                       r->request_id, r->at.ups->name, status);
    pt_attempt_release(&r->at, false);
    pt_attempt_end(&r->at, PT_OUTCOME_LOCAL);
    return status;
}

/* ---- the response ---- */

/* The final head came on s. Returns PT_OK (it went to the client), PT_AGAIN (retried on
   another target: start over), or a status to answer; PT_ERR: a bad head. */
static int take_head(struct pt_req *r, struct pt_h2c_stream *s)
{
    r->at.head_latency_us = (r->env->loop->now_ms - r->at.start_ms) * 1000u;
    if (pt_attempt_may_retry_status(&r->at, s->status, r->has_body)) {
        int rc = pt_attempt_retry_status(&r->at, s->status);
        if (rc != PT_OK)
            return rc;
        r->resp_head_seen = false;
        memset(&r->resp_body, 0, sizeof(r->resp_body));
        return PT_AGAIN;
    }
    struct pt_h1_response resp;
    memset(&resp, 0, sizeof(resp));
    resp.minor_version = 1;
    resp.status = s->status;
    resp.headers = s->fields;
    resp.num_headers = s->n_fields;
    resp.framing.content_length = s->content_length;
    if (s->is_end && !pt_buf_len(&s->in) && !s->n_trailers)
        resp.framing.content_length = 0; /* the HEADERS ended the stream: no body at all (a
                                            gRPC trailers-only answer stays one HEADERS frame) */
    bool no_body =
        r->is_head || s->status == 204 || s->status == 304 || resp.framing.content_length == 0;
    r->resp_body.is_done = no_body;
    if (!r->req_body.is_done)
        r->is_keepalive = false; /* answered before the body ended: the rest is never read */
    int hrc = pt_proxy_response_head(r, &resp, false, !no_body && resp.framing.content_length < 0);
    if (hrc == PT_DONE)
        return PT_DONE; /* the cache answered: the stream was let go */
    if (hrc != PT_OK)
        return PT_ERR;
    r->resp_head_seen = true;
    r->response_started = true;
    r->status = s->status;
    pt_h2c_set_timer(s, r->at.timeout_ms);
    if (no_body)
        r->stream->send_end(r);
    return PT_OK;
}

static void finish(struct pt_req *r)
{
    pt_attempt_end(&r->at, r->status >= 500 ? PT_OUTCOME_STATUS_5XX : PT_OUTCOME_OK);
    pt_attempt_release(&r->at, false); /* cancels a stream whose request is still going up */
    r->pstate = PT_PS_DONE;
    if (!r->req_body.is_done)
        r->is_keepalive = false;
    r->stream->finish(r);
}

/* Moves the response body: the slice the client took is consumed, the next is lent, the end
   (with trailers) is said. Returns false when the pump must stop (finished, reset, failed). */
static bool pump_body(struct pt_req *r, struct pt_h2c_stream *s, bool *progress)
{
    struct pt_body *b = &r->resp_body;
    int fr = r->stream->flush(r);
    if (fr == PT_ERR) {
        r->stream->reset(r);
        return false;
    }
    if (fr != PT_OK)
        return true;
    if (b->pending) {
        uint32_t n = b->pending;
        b->pending = 0;
        pt_h2c_consume(s, n);
        *progress = true;
    }
    if (b->is_done) {
        finish(r);
        return false;
    }
    uint32_t len = pt_buf_len(&s->in);
    if (len) {
        b->pending = len;
        pt_h2c_set_timer(s, r->at.timeout_ms);
        if (r->stream->send_borrowed(r, pt_buf_rpos(&s->in), len) < 0) {
            b->pending = 0;
            r->stream->reset(r);
            return false;
        }
        *progress = true;
    } else if (s->is_end) {
        b->is_done = true;
        struct pt_field keep[PT_BODY_TRAILERS_MAX];
        size_t n =
            s->n_trailers ? pt_proxy_filter_trailers(r, s->trailers, s->n_trailers, keep) : 0;
        if (n)
            r->stream->send_trailers(r, keep, n);
        else
            r->stream->send_end(r);
        *progress = true;
    } else if (s->fail) {
        pt_proxy_failed(r, kind_of(s->fail)); /* cut short after the head: the client is reset */
        return false;
    }
    return true;
}

void pt_proxy_h2_run(struct pt_req *r)
{
    if (r->expect_continue)
        r->stream->continue_body(r);
    for (int round = 0;; round++) {
        if (round == 64) {
            r->stream->yield(r);
            return;
        }
        if (r->pstate != PT_PS_ACTIVE || !r->at.h2)
            return; /* queued, answered locally, finished, or reset */
        struct pt_h2c_stream *s = r->at.h2;
        bool progress = false;
        if (r->h2_body_status) {
            int status = r->h2_body_status;
            pt_attempt_release(&r->at, false);
            if (r->response_started) {
                r->stream->reset(r);
                return;
            }
            pt_proxy_answer_locally(r, status);
            return;
        }
        if (!s->id && !s->fail) {
            int rc = pt_proxy_h2_submit(r);
            if (rc != PT_OK) {
                pt_proxy_answer_locally(r, rc);
                return;
            }
            continue;
        }
        if (s->is_body_deferred)
            pt_h2c_resume_body(s); /* woken by the client's stream: body bytes may be there */
        if (!r->resp_head_seen) {
            if (s->fail) {
                pt_proxy_failed(r, kind_of(s->fail));
                continue;
            }
            if (!s->status)
                return; /* waiting for the head */
            int rc = take_head(r, s);
            if (rc == PT_AGAIN)
                continue;
            if (rc == PT_DONE)
                return;
            if (rc == PT_ERR) {
                pt_proxy_failed(r, PT_FAIL_BAD_RESPONSE);
                continue;
            }
            if (rc != PT_OK) {
                pt_proxy_answer_locally(r, rc);
                return;
            }
            progress = true;
        }
        if (!pump_body(r, s, &progress) || !progress)
            return;
    }
}
