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
 * Every response carries cfg->server_line (server_header), except on a proxy route whose
 * response header rules remove Server.
 */
#include <stdio.h>
#include <string.h>

#include "core/time.h"
#include "handler/mime.h"
#include "handler/netlify_rules.h"
#include "server/worker.h"

const char *pt_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 103:
        return "Early Hints";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 451:
        return "Unavailable For Legal Reasons";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return status < 200   ? "Informational"
               : status < 300 ? "OK"
               : status < 400 ? "Redirection"
               : status < 500 ? "Client Error"
                              : "Server Error";
    }
}

static bool ensure_out(struct pt_conn *c)
{
    return c->out.data || pt_buf_alloc(&c->out, PT_BUF_SMALL) == 0;
}

/* Writes v in decimal at the end of buf (which has room for 20 digits); returns the start. */
static char *u64_dec(uint64_t v, char *end)
{
    char *p = end;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return p;
}

#define PUT_LIT(b, lit) pt_buf_put((b), (lit), sizeof(lit) - 1)

const char *pt_hsts_line(const struct pt_req *r, size_t *n)
{
    static __thread char line[128];
    const struct pt_site_cfg *site = r->site;
    *n = 0;
    if (!r->c->tls || !site || !site->hsts_is_set)
        return "";
    int k = snprintf(line, sizeof(line), "Strict-Transport-Security: max-age=%llu%s%s\r\n",
                     (unsigned long long)site->hsts_max_age_s,
                     site->hsts_include_subdomains ? "; includeSubDomains" : "",
                     site->hsts_preload ? "; preload" : "");
    if (k > 0 && (size_t)k < sizeof(line))
        *n = (size_t)k;
    return line;
}

/* Puts the header lines of extra, less those whose name the _headers lines nf set. */
static bool put_lines_except(struct pt_buf *b, const char *extra, size_t len, const char *nf,
                             size_t nf_len)
{
    if (nf_len == 0)
        return pt_buf_put(b, extra, len);
    const char *p = extra, *end = extra + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl + 1 : end;
        const char *colon = memchr(p, ':', (size_t)(e - p));
        if (!(colon && pt_nf_lines_have(nf, nf_len, (struct pt_str){p, (size_t)(colon - p)})) &&
            !pt_buf_put(b, p, (size_t)(e - p)))
            return false;
        p = e;
    }
    return true;
}

/* Whether r's route is a proxy whose response header rules remove Server: then the error
   pages Portico writes for it go without one too, like its proxied responses. */
static bool route_removes_server(const struct pt_req *r)
{
    const struct pt_route_cfg *rt = r->route;
    return rt && rt->action == PT_ACTION_PROXY && rt->proxy.response.is_server_removed;
}

int pt_respond_head(struct pt_req *r, int status, int64_t content_length, const char *extra,
                    size_t extra_len)
{
    struct pt_conn *c = r->c;
    if (!ensure_out(c))
        return PT_ERR;
    const struct pt_wallclock *wc = pt_wallclock_now();
    uint32_t mark = c->out.tail;
    if (c->w->is_draining)
        r->is_keepalive = false; /* shutting down: say so rather than reset a next request */
    const char *conn_hdr = !r->is_keepalive        ? "Connection: close\r\n"
                           : r->minor_version == 0 ? "Connection: keep-alive\r\n"
                                                   : "";
    size_t hsts_len;
    const char *hsts = pt_hsts_line(r, &hsts_len);
    size_t nf_len;
    const char *nf = pt_nf_header_lines(r, &nf_len); /* the site's _headers rules */
    /* Assembled with copies, not printf: this head goes out with every static file. */
    char num[24], *st = u64_dec((uint64_t)status, num + sizeof(num));
    const char *reason = pt_http_reason(status);
    struct pt_buf *b = &c->out;
    const struct pt_config *cfg = r->cfg;
    bool ok = PUT_LIT(b, "HTTP/1.1 ") && pt_buf_put(b, st, (size_t)(num + sizeof(num) - st)) &&
              PUT_LIT(b, " ") && pt_buf_put(b, reason, strlen(reason)) && PUT_LIT(b, "\r\n") &&
              (route_removes_server(r) || pt_buf_put(b, cfg->server_line, cfg->server_line_len)) &&
              PUT_LIT(b, "Date: ") && pt_buf_put(b, wc->http_date, wc->http_date_len) &&
              PUT_LIT(b, "\r\n");
    if (ok && content_length >= 0) {
        char *cl = u64_dec((uint64_t)content_length, num + sizeof(num));
        ok = PUT_LIT(b, "Content-Length: ") &&
             pt_buf_put(b, cl, (size_t)(num + sizeof(num) - cl)) && PUT_LIT(b, "\r\n");
    }
    ok = ok && PUT_LIT(b, "X-Request-Id: ") && pt_buf_put(b, r->request_id, r->request_id_len) &&
         PUT_LIT(b, "\r\n") && pt_buf_put(b, conn_hdr, strlen(conn_hdr)) &&
         pt_buf_put(b, hsts, hsts_len) && pt_buf_put(b, nf, nf_len) &&
         put_lines_except(b, extra, extra_len, nf, nf_len) && PUT_LIT(b, "\r\n");
    if (!ok) {
        c->out.tail = mark;
        return PT_ERR;
    }
    r->status = status;
    r->response_started = true;
    return PT_OK;
}

int pt_respond_simple(struct pt_req *r, int status, const char *extra, size_t extra_len,
                      const char *body, size_t body_len)
{
    struct pt_conn *c = r->c;
    if (pt_respond_head(r, status, (int64_t)body_len, extra, extra_len) != PT_OK)
        return PT_ERR;
    if (r->is_head || body_len == 0)
        return PT_OK;
    if (pt_buf_put(&c->out, body, body_len)) {
        r->bytes_out += body_len;
    } else {
        c->slice = body; /* borrowed from the snapshot, which r keeps alive */
        c->slice_len = (uint32_t)body_len;
    }
    return PT_OK;
}

int pt_respond_error(struct pt_req *r, int status, bool wants_json)
{
    return pt_respond_error_extra(r, status, wants_json, NULL, 0);
}

int pt_respond_error_extra(struct pt_req *r, int status, bool wants_json, const char *lines,
                           size_t lines_len)
{
    char body[512], extra[1024];
    int n;
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
    return pt_respond_simple(r, status, extra, (size_t)e, body,
                             PT_MIN((size_t)n, sizeof(body) - 1));
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
