/*
 * respond.c - responses Portico writes itself: `respond` routes, `redirect` routes and error
 * pages.
 *
 * Every such response is built in one pass into the connection's output buffer (head and, when
 * it fits, the body), so it leaves in a single write. A large configured `respond` body is not
 * copied: it is written straight from the configuration snapshot, which the request keeps alive.
 *
 * Error pages say the status and the request id and nothing else: no backend address, name or
 * message ever reaches a client (the contract's "Errors Portico writes"). They are HTML, or JSON
 * when the client's Accept mentions json, unless the configuration names a page for the status
 * (errors:, the site's then the top level's): that file, read at load, is sent as it is, with
 * the status and a Content-Type from its extension.
 *
 * A gRPC request (Content-Type application/grpc) never gets a page: a gRPC client reads the
 * status from trailers, and an HTML body would be a framing error to it. Its errors are
 * "trailers-only" answers (the gRPC over HTTP/2 spec): HTTP status 200, Content-Type
 * application/grpc, grpc-status (pt_grpc_status_of: unavailable for 502/503, deadline exceeded
 * for 504, unimplemented for 404/405, ...) and grpc-message, no body, so that HTTP/2 sends one
 * HEADERS frame with END_STREAM (h2_stream.c: a response without a body).
 *
 * What every head gets besides the handler's fields (Server, Date, X-Request-Id, HSTS, the
 * _headers rules) is added by the response-header stage (resp_head.c).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/time.h"
#include "handler/mime.h"
#include "handler/netlify_rules.h"
#include "handler/resp_head.h"
#include "handler/handler.h"

int pt_respond_head(struct pt_req *r, int status, int64_t content_length, const char *extra,
                    size_t extra_len)
{
    struct pt_resp_head h;
    pt_resp_head_init(&h, status);
    h.content_length = content_length;
    pt_resp_add_lines(&h, extra, extra_len);
    pt_resp_head_stage(r, &h, false);
    if (r->stream->send_head(r, &h) < 0)
        return PT_ERR;
    r->status = status;
    r->response_started = true;
    return PT_OK;
}

static int respond_body(struct pt_req *r, int status, const char *extra, size_t extra_len,
                        const char *body, size_t body_len, bool is_stable)
{
    if (pt_respond_head(r, status, (int64_t)body_len, extra, extra_len) != PT_OK)
        return PT_ERR;
    return r->stream->send_data(r, body, body_len, is_stable) < 0 ? PT_ERR : PT_OK;
}

int pt_respond_simple(struct pt_req *r, int status, const char *extra, size_t extra_len,
                      const char *body, size_t body_len)
{
    return respond_body(r, status, extra, extra_len, body, body_len, true);
}

int pt_respond_copy(struct pt_req *r, int status, const char *extra, size_t extra_len,
                    const char *body, size_t body_len)
{
    return respond_body(r, status, extra, extra_len, body, body_len, false);
}

int pt_respond_error(struct pt_req *r, int status, bool wants_json)
{
    return pt_respond_error_extra(r, status, wants_json, NULL, 0);
}

bool pt_is_grpc_type(struct pt_str ct)
{
    static const char t[] = "application/grpc";
    size_t n = sizeof(t) - 1;
    if (ct.n < n || strncasecmp(ct.p, t, n) != 0)
        return false;
    return ct.n == n || ct.p[n] == '+' || ct.p[n] == ';' || ct.p[n] == ' ';
}

int pt_grpc_status_of(int http_status)
{
    switch (http_status) {
    case 400:
        return 13; /* INTERNAL */
    case 401:
        return 16; /* UNAUTHENTICATED */
    case 403:
        return 7; /* PERMISSION_DENIED */
    case 404:
    case 405:
        return 12; /* UNIMPLEMENTED */
    case 413:
    case 429:
    case 431:
        return 8; /* RESOURCE_EXHAUSTED */
    case 502:
    case 503:
        return 14; /* UNAVAILABLE: the target is dead, unready or full */
    case 504:
        return 4; /* DEADLINE_EXCEEDED */
    default:
        return 2; /* UNKNOWN */
    }
}

/* A trailers-only gRPC answer for Portico's own error status: 200, grpc-status, a short
   grpc-message (printable ASCII without '%', so it needs no percent-encoding), no body. */
static int respond_grpc(struct pt_req *r, int status)
{
    char extra[256];
    int e = snprintf(extra, sizeof(extra),
                     "Content-Type: application/grpc\r\ngrpc-status: %d\r\n"
                     "grpc-message: Portico: %d %s (request %s)\r\n",
                     pt_grpc_status_of(status), status, pt_http_reason(status), r->request_id);
    if (e < 0 || (size_t)e >= sizeof(extra))
        return PT_ERR;
    if (pt_respond_head(r, 200, 0, extra, (size_t)e) != PT_OK)
        return PT_ERR;
    r->status = status; /* the access log says what happened */
    return PT_OK;
}

int pt_respond_error_extra(struct pt_req *r, int status, bool wants_json, const char *lines,
                           size_t lines_len)
{
    char body[512], extra[1024];
    int n;
    if (r->is_grpc)
        return respond_grpc(r, status);
    const char *reason = pt_http_reason(status);
    const struct pt_error_page *pg = pt_config_error_page(r->cfg, r->site, status);
    if (pg) {
        /* the operator's page (errors:), read at load; borrowed from the snapshot */
        const char *type = pt_mime_type(pg->path, strlen(pg->path));
        int e =
            snprintf(extra, sizeof(extra), "Content-Type: %s\r\nCache-Control: no-store\r\n%s%.*s",
                     type, status == 503 ? "Retry-After: 1\r\n" : "",
                     (int)PT_MIN(lines_len, (size_t)512), lines ? lines : "");
        if (e < 0 || (size_t)e >= sizeof(extra))
            return PT_ERR;
        return pt_respond_simple(r, status, extra, (size_t)e, pg->body, pg->body_len);
    }
    if (wants_json)
        n = snprintf(body, sizeof(body), "{\"status\":%d,\"error\":\"%s\",\"request_id\":\"%s\"}\n",
                     status, reason, r->request_id);
    else
        n = snprintf(body, sizeof(body),
                     "<!DOCTYPE html>\n<html><head><title>%d %s</title></head>\n"
                     "<body><h1>%d %s</h1>\n<p>Request ID: %s</p>\n</body></html>\n",
                     status, reason, status, reason, r->request_id);
    int e = snprintf(extra, sizeof(extra), "Content-Type: %s\r\nCache-Control: no-store\r\n%s%.*s",
                     wants_json ? "application/json" : "text/html; charset=utf-8",
                     status == 503 ? "Retry-After: 1\r\n" : "", (int)PT_MIN(lines_len, (size_t)512),
                     lines ? lines : "");
    if (n < 0 || e < 0)
        return PT_ERR;
    /* Errors that leave the request body unread, or the stream out of sync, end the
       connection: the caller decided is_keepalive. */
    return pt_respond_copy(r, status, extra, (size_t)e, body, PT_MIN((size_t)n, sizeof(body) - 1));
}

int pt_respond_route(struct pt_req *r, const struct pt_route_cfg *route)
{
    const struct pt_respond_cfg *rc = &route->respond;
    char extra[4096];
    size_t n = 0;
    for (size_t i = 0; i < rc->n_headers; i++) {
        const struct pt_kv *kv = &rc->headers[i];
        if (n + kv->name_len + kv->value_len + 4 > sizeof(extra))
            break;
        memcpy(extra + n, kv->name, kv->name_len);
        n += kv->name_len;
        extra[n++] = ':';
        extra[n++] = ' ';
        memcpy(extra + n, kv->value, kv->value_len);
        n += kv->value_len;
        extra[n++] = '\r';
        extra[n++] = '\n';
    }
    int status = rc->status ? rc->status : 200;
    bool no_body = status == 204 || status == 304 || status < 200;
    if (pt_respond_simple(r, status, extra, n, rc->body, no_body ? 0 : rc->body_len) != PT_OK)
        return pt_respond_error(r, 500, r->wants_json);
    return PT_OK;
}

int pt_redirect_route(struct pt_req *r, const struct pt_route_cfg *route,
                      const struct pt_route_match *m, struct pt_str query)
{
    char loc[8192];
    ssize_t n = pt_route_expand(route->redirect.to, m, loc, sizeof(loc));
    if (n < 0)
        return pt_respond_error(r, 500, r->wants_json);
    size_t len = (size_t)n;
    /* The query string passes through unless the target sets its own; it goes before a
       fragment (RFC 3986 §3: path, query, fragment). */
    const char *frag = memchr(loc, '#', len);
    size_t at = frag ? (size_t)(frag - loc) : len;
    if (query.n && !memchr(loc, '?', at) && len + 1 + query.n < sizeof(loc)) {
        memmove(loc + at + 1 + query.n, loc + at, len - at);
        loc[at] = '?';
        memcpy(loc + at + 1, query.p, query.n);
        len += 1 + query.n;
    }
    char extra[8300];
    int e = snprintf(extra, sizeof(extra), "Location: %.*s\r\n", (int)len, loc);
    if (e < 0 || (size_t)e >= sizeof(extra))
        return pt_respond_error(r, 500, r->wants_json);
    int status = route->redirect.status ? route->redirect.status : 301;
    if (pt_respond_simple(r, status, extra, (size_t)e, NULL, 0) != PT_OK)
        return pt_respond_error(r, 500, r->wants_json);
    return PT_OK;
}
