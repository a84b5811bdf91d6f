/*
 * cache.h - the edge cache in the proxy (RFC 9111 shared cache): what a proxied request asks
 * of the shared store (cache/store.h) and what the proxy tells it back. cache.c has the design.
 */
#ifndef PT_HANDLER_CACHE_H
#define PT_HANDLER_CACHE_H

#include <stdbool.h>

#include "handler/request.h"
#include "http/fields.h"
#include "http/h1_parse.h"
#include "route/route.h"

struct pt_cache;

/* Called by pt_proxy_start on a route with cache: on, once the attempt is set up and before
   a target is picked. Returns PT_DECLINED (go to the origin; the cache may be set to store
   the answer, or to revalidate: r->ureq_extra then holds the validators to send), PT_DONE
   (answered from the cache as a local answer), PT_AGAIN (another request is fetching the
   same key: the proxy builds the upstream head, sets PT_PS_CACHE_WAIT and waits; the cache
   later answers or calls pt_proxy_launch), or a status to answer (504 for only-if-cached). */
int pt_cache_start(struct pt_req *r, const struct pt_req_head *h, const struct pt_route_match *m,
                   const char *path, size_t path_len, struct pt_str query);

/* A final response head came from the origin (fields less hop-by-hop ones, before the
   response-header stage and compression). Returns true when the cache answers instead (a 304
   that refreshed the stored response, or a stale response served for a 5xx under
   stale-if-error): the caller drops the upstream exchange and lets the local answer go.
   Otherwise it may strip tag fields from h and set up storing. */
bool pt_cache_response(struct pt_req *r, int status, struct pt_resp_head *h);

/* After compression edited h (pt_compress_head): the head to store is taken from h, and the
   tee is pushed on r's chain (below the compression filter, which is pushed after it), with
   Cache-Status added to h. */
void pt_cache_response_filters(struct pt_req *r, struct pt_resp_head *h);

/* The origin could not be reached or answered an error the proxy turns into status (502,
   503, 504): true when a stale response was served instead (stale-if-error). */
bool pt_cache_answer_error(struct pt_req *r, int status);

/* The client went away while the request waited for another's fetch (PT_PS_CACHE_WAIT). */
void pt_cache_abort_wait(struct pt_req *r);

/* The process-wide store the handlers use; set by the server when it opens it. */
extern struct pt_cache *pt_cache_store;

#endif
