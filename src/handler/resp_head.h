/*
 * resp_head.h - the response-header stage: what Portico's rules take from and add to every
 * final response head, whichever handler made it and whichever protocol carries it.
 */
#ifndef PT_HANDLER_RESP_HEAD_H
#define PT_HANDLER_RESP_HEAD_H

#include <stdbool.h>

#include "handler/request.h"
#include "http/fields.h"

/* Applies the stage to h, a final head that r's handler made. is_proxied says that the fields
   came from an upstream: then the route's response header rules apply (their remove and set
   names are taken out, their set and add fields appended) and the balancer's cookie is set.
   On every head: fields the site's _headers rules name are replaced
   by the rules' values; Server (server_header; not when the route's rules remove or set it),
   Date (when absent), X-Request-Id and Strict-Transport-Security (on
   TLS, when the site sets hsts) are added. Appended fields borrow the snapshot and this
   thread's scratch: write h before the next call on the same thread. */
void pt_resp_head_stage(struct pt_req *r, struct pt_resp_head *h, bool is_proxied);

/* The Strict-Transport-Security line for r's site on a TLS connection, or "" (length in *n). */
const char *pt_hsts_line(const struct pt_req *r, size_t *n);

/* Whether one of the n entries of kv is named name (ASCII case-insensitive). */
bool pt_kv_has(const struct pt_kv *kv, size_t n, struct pt_str name);

#endif
