/*
 * waf_guard.h - the WAF step of the request pipeline and its request-body stage
 * (waf_guard.c); the engine is guard/waf.h.
 */
#ifndef PT_SERVER_WAF_GUARD_H
#define PT_SERVER_WAF_GUARD_H

#include <stdbool.h>

#include "config/config.h"
#include "handler/request.h"
#include "http/fields.h"

/* Judges r's head by w's compiled rules, after the route is chosen (run_guards, last). Returns
   true when r may go on: judged whole (no body, or none that a handler reads), or a proxied
   body still to be judged (a body filter is on r's chain and r->hold_body is set: the proxy
   waits for it). false after answering: 403 (refused), 400 (a body that does not parse), 413
   (over body_limit with over_limit: refuse) or 503 (out of memory). */
bool pt_waf_guard(struct pt_req *r, const struct pt_req_head *h, const struct pt_waf_cfg *w);

#endif
