/*
 * handler.h - the handlers' entry points: what the pipeline starts a route's action with, what
 * the protocols call back while a proxied request runs, and the responders every handler and
 * the pipeline answer locally with. Each takes the request (handler/request.h) and reaches
 * the client only through its stream.
 */
#ifndef PT_HANDLER_HANDLER_H
#define PT_HANDLER_HANDLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/str.h"
#include "handler/request.h"
#include "http/fields.h"
#include "route/route.h"

/* Answers (handler/respond.c). */
/* Queues a complete Portico response (status, optional extra header lines, body) on r's stream.
   The body must outlive the response (the snapshot's memory); it may be sent from where it is. */
int pt_respond_simple(struct pt_req *r, int status, const char *extra_headers, size_t extra_len,
                      const char *body, size_t body_len);
/* pt_respond_simple for a body on the caller's stack: it is copied. */
int pt_respond_copy(struct pt_req *r, int status, const char *extra, size_t extra_len,
                    const char *body, size_t body_len);
/* Queues a response head: Portico's standard lines (Server, Date, X-Request-Id, Connection,
   HSTS on TLS), Content-Length unless content_length < 0, then extra (whole CRLF-ended lines). */
int pt_respond_head(struct pt_req *r, int status, int64_t content_length, const char *extra,
                    size_t extra_len);
/* Queues Portico's error page for status (HTML or JSON by Accept); for a gRPC request
   (r->is_grpc), a trailers-only gRPC answer instead (pt_respond_grpc_status). */
int pt_respond_error(struct pt_req *r, int status, bool wants_json);
/* Same, with extra header lines (Allow, Content-Range). */
int pt_respond_error_extra(struct pt_req *r, int status, bool wants_json, const char *lines,
                           size_t lines_len);
/* Whether a Content-Type value names gRPC over HTTP/2 (application/grpc, alone or with a
   "+format" or parameters; not gRPC-Web). */
bool pt_is_grpc_type(struct pt_str content_type);
/* The gRPC status code (grpc/doc/statuscodes.md) of an HTTP status Portico answers with. */
int pt_grpc_status_of(int http_status);
int pt_respond_route(struct pt_req *r, const struct pt_route_cfg *route);
int pt_redirect_route(struct pt_req *r, const struct pt_route_cfg *route,
                      const struct pt_route_match *m, struct pt_str query);

/* Static files (handler/files.c): answers r from the route's directory. */
void pt_static_route(struct pt_req *r, const struct pt_req_head *h,
                     const struct pt_route_cfg *route, const struct pt_route_match *m,
                     const char *path, size_t path_len, struct pt_str query);
/* Proxy (handler/proxy.c). Starts proxying r; hdrs are the parsed request headers (valid only
   during the call). Returns PT_OK (the proxy drives the request from now on), PT_DONE (the
   cache answered it locally), or an HTTP status to answer locally (>= 400). */
int pt_proxy_start(struct pt_req *r, const struct pt_req_head *h, const struct pt_route_match *m,
                   const char *path, size_t path_len, struct pt_str query);
/* Makes whatever progress the proxy can (called on client or upstream readiness). */
void pt_proxy_run(struct pt_req *r);
/* Picks a target and sends the head already built in r->uout (a request that waited for the
   cache, PT_PS_CACHE_WAIT); failures are answered locally. Resumes r's stream. */
void pt_proxy_launch(struct pt_req *r);
/* The client connection is going away: release the upstream side. */
void pt_proxy_abort(struct pt_req *r);
/* The client sent no request body bytes within body_timeout: 408, or a reset once the
   response began. */
void pt_proxy_client_timeout(struct pt_req *r);

#endif
