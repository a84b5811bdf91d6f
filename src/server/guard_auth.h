/*
 * guard_auth.h - the pipeline's auth step: basic_auth and jwt (guard_auth.c).
 */
#ifndef PT_SERVER_GUARD_AUTH_H
#define PT_SERVER_GUARD_AUTH_H

#include <stdbool.h>

#include "config/config.h"
#include "handler/request.h"
#include "http/fields.h"

/* Checks r's Basic credentials (h's Authorization) against b. Returns true when r may go on,
   false after answering 401 with b's WWW-Authenticate challenge. May block for one password
   hash on a cache miss (guard/auth_basic.h). */
bool pt_guard_basic_run(struct pt_req *r, const struct pt_req_head *h,
                        const struct pt_basic_auth_cfg *b);

/* Validates r's token (j's header or cookie) against j's keys and claims. Returns true when r
   may go on (claims_to_headers then in r->ureq_auth), false after answering: 401 with
   WWW-Authenticate: Bearer (RFC 6750 §3: error="invalid_token" when a token was given), or
   503 when j's jwks_url has never been fetched. Never blocks. */
bool pt_guard_jwt_run(struct pt_req *r, const struct pt_req_head *h, const struct pt_jwt_cfg *j);

#endif
