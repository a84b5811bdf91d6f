/*
 * files.c - the `static` route action: answers a request from a directory.
 *
 * handler/static.c decides (which file, which status, which headers: conditional requests,
 * ranges, precompressed siblings, the site's 404 page); this file turns the decision into a
 * response on the request's stream: the head, then the file range, which the protocol sends
 * from the file itself (HTTP/1.1: sendfile on plain connections, pread + encrypt on TLS), so
 * file bytes never pass through a user-space buffer on the common path. The file descriptor
 * belongs to the stream from then on; it closes it, or, when it came from this worker's
 * open-file cache, drops its reference on it. The request carries the loop's clock, which the
 * cache measures freshness by.
 */
#include <string.h>

#include "handler/static.h"
#include "handler/handler.h"

/* Fills q's header fields in one pass over the request's headers (the first of each name
   counts), instead of one scan per header. */
static void take_headers(struct pt_static_request *q, const struct pt_req_head *h)
{
    for (size_t i = 0; i < h->n_fields; i++) {
        struct pt_str n = h->fields[i].name;
        struct pt_str *dst = NULL;
        switch (n.n) {
        case 5:
            dst = PT_STR_CASEEQ_LIT(n, "range") ? &q->range : NULL;
            break;
        case 6:
            dst = PT_STR_CASEEQ_LIT(n, "accept") ? &q->accept : NULL;
            break;
        case 8:
            dst = PT_STR_CASEEQ_LIT(n, "if-match")   ? &q->if_match
                  : PT_STR_CASEEQ_LIT(n, "if-range") ? &q->if_range
                                                     : NULL;
            break;
        case 13:
            dst = PT_STR_CASEEQ_LIT(n, "if-none-match") ? &q->if_none_match : NULL;
            break;
        case 15:
            dst = PT_STR_CASEEQ_LIT(n, "accept-encoding") ? &q->accept_encoding : NULL;
            break;
        case 17:
            dst = PT_STR_CASEEQ_LIT(n, "if-modified-since") ? &q->if_modified_since : NULL;
            break;
        case 19:
            dst = PT_STR_CASEEQ_LIT(n, "if-unmodified-since") ? &q->if_unmodified_since : NULL;
            break;
        default:
            break;
        }
        if (dst && !dst->p)
            *dst = h->fields[i].value;
    }
}

void pt_static_route(struct pt_req *r, const struct pt_req_head *h,
                     const struct pt_route_cfg *route, const struct pt_route_match *m,
                     const char *path, size_t path_len, struct pt_str query)
{
    /* Large enough for PT_STATIC_HDR_MIN + cache_control + 3 x the path (uri_size is 8k by
       default; a longer configured one is answered 500 by -ENOBUFS, never overflowed). */
    static __thread char hdr[32768];
    const struct pt_handler_res *snap = r->res;
    const struct pt_static_cfg *f = &route->files;
    if (f->index_in_config >= snap->n_roots || !snap->roots[f->index_in_config]) {
        pt_respond_error(r, 500, r->wants_json);
        return;
    }
    /* A prefix route serves its rest from the root ("/assets/a.css" under "/assets/..."). */
    size_t strip = m->strip_len <= path_len ? m->strip_len : 0;
    struct pt_static_request q;
    memset(&q, 0, sizeof(q));
    q.method = r->method_id;
    q.mount = (struct pt_str){path, strip};
    q.path = strip < path_len ? (struct pt_str){path + strip, path_len - strip}
                              : (struct pt_str){"/", 1};
    q.query = query.p ? query : (struct pt_str){NULL, 0};
    take_headers(&q, h);
    q.now_ms = r->start_ms; /* the loop's clock when the request began: now */

    struct pt_static_result res;
    memset(&res, 0, sizeof(res));
    res.fd = -1;
    res.hdr = hdr;
    res.hdr_cap = sizeof(hdr);
    if (pt_static_resolve(snap->roots[f->index_in_config], &q, &res) < 0) {
        pt_respond_error(r, 500, r->wants_json);
        return;
    }
    if (res.is_error_page) {
        pt_respond_error_extra(r, res.status, r->wants_json, hdr, res.hdr_len);
        return;
    }
    /* static.c wrote Content-Length itself when the response has one (not for 304). */
    int64_t cl = res.cl_line_len ? -1 : res.status == 304 ? -1 : 0;
    if (pt_respond_head(r, res.status, cl, hdr, res.hdr_len) != PT_OK) {
        pt_static_result_release(&res);
        pt_respond_error(r, 500, r->wants_json);
        return;
    }
    if (res.fd >= 0)
        r->stream->send_file(r, res.fd, res.file, res.offset, res.length);
}
