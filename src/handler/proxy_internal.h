/*
 * proxy_internal.h - what the proxy's two halves share: proxy.c (HTTP/1.1 upstreams, and the
 * request's start for every upstream) and proxy_h2.c (h2 and h2c upstreams). Both build the
 * upstream request head with the same rules (hop-by-hop fields, X-Forwarded-*, Host, the
 * path's prefix and templates) and pass the response head through the same stage.
 */
#ifndef PT_HANDLER_PROXY_INTERNAL_H
#define PT_HANDLER_PROXY_INTERNAL_H

#include "handler/request.h"

/* Builds the HTTP/1.1 head of the request to send upstream into r->uout (uhead_len set) for
   r->at.target. Returns PT_OK or a status to answer (414, 431, 403/503 for upgrades). The
   HTTP/2 half converts this head to HTTP/2 fields (one set of rules for both). */
int pt_proxy_request_head(struct pt_req *r, const struct pt_req_head *h,
                          const struct pt_route_match *m, const char *path, size_t path_len,
                          struct pt_str query);

/* Gives r's stream the response head made from the upstream's resp (fields less hop-by-hop
   ones, Server, X-Request-Id; final heads through the cache, compression and the
   response-header stage). interim: a 1xx head; streamed: no length known. Returns PT_OK,
   PT_ERR (it does not fit), or PT_DONE: the cache answered instead (a refreshed or stale
   stored response), the upstream exchange is let go and the answer is a local one. */
int pt_proxy_response_head(struct pt_req *r, const struct pt_h1_response *resp, bool interim,
                           bool streamed);

/* The trailer fields of f[0..n) that may cross the proxy (pt_trailer_field_ok), into out
   (PT_BODY_TRAILERS_MAX entries, borrowed from f). Returns how many. */
size_t pt_proxy_filter_trailers(const struct pt_req *r, const struct pt_field *f, size_t n,
                                struct pt_field *out);

/* Answers r with Portico's error page for status (nothing was sent yet): the attempt ends
   without blame and leaves the queue. */
void pt_proxy_answer_locally(struct pt_req *r, int status);

/* Handles an upstream failure of kind: a retry (PT_OK from pt_attempt_failed: the exchange is
   rewound, a new connection or stream is under way), 502/503/504 answered locally, or (the
   response under way) the client's stream reset. */
void pt_proxy_failed(struct pt_req *r, enum pt_fail_kind kind);

/* The attempt's callbacks both halves register (attempt.h). */
void pt_proxy_on_dequeued(void *owner, int rc);
void pt_proxy_on_affinity(void *owner, const char *token, size_t len);

/* proxy_h2.c: the attempt callbacks of an HTTP/2 upstream (with its stream callbacks). */
extern const struct pt_attempt_ops pt_proxy_h2_attempt_ops;

/* proxy_h2.c: submits r's request on its new stream r->at.h2 (after a connect or a retry).
   Returns PT_OK or a status to answer (the attempt ended). */
int pt_proxy_h2_submit(struct pt_req *r);

/* proxy_h2.c: pt_proxy_run for an HTTP/2 upstream. */
void pt_proxy_h2_run(struct pt_req *r);

#endif
