/*
 * guard_auth.h - the pipeline's auth step: basic_auth and jwt (guard_auth.c).
 */
#ifndef PT_SERVER_GUARD_AUTH_H
#define PT_SERVER_GUARD_AUTH_H

#include <stdbool.h>

#include "config/config.h"
#include "handler/request.h"
#include "http/fields.h"
#include "server/pipeline.h"

/* Checks r's Basic credentials (pc->h's Authorization) against b. Returns PT_OK when r may go
   on now (a success cached by guard/auth_basic.c); PT_DONE after answering (401 with b's
   WWW-Authenticate challenge; 503 when limits.auth_hash_queue hashes already wait, or no
   memory); PT_AGAIN when the password's hash runs on the hashing threads (server/offload.c):
   r waits in PT_PS_GUARD_WAIT with a copy of pc, and the hash's end either answers 401 or goes
   on with pt_pipeline_resume after basic_auth. Never blocks on a hash. */
int pt_guard_basic_run(struct pt_req *r, struct pt_pipeline_ctx *pc,
                       const struct pt_basic_auth_cfg *b);

/* Validates r's token (j's header or cookie) against j's keys and claims. Returns true when r
   may go on (claims_to_headers then in r->ureq_auth), false after answering: 401 with
   WWW-Authenticate: Bearer (RFC 6750 §3: error="invalid_token" when a token was given), or
   503 when j's jwks_url has never been fetched. Never blocks. */
bool pt_guard_jwt_run(struct pt_req *r, const struct pt_req_head *h, const struct pt_jwt_cfg *j);

#endif
