/*
 * pipeline.h - the request pipeline: from a protocol-neutral request head to a started
 * handler (pipeline.c).
 */
#ifndef PT_SERVER_PIPELINE_H
#define PT_SERVER_PIPELINE_H

#include <stdbool.h>

#include "http/fields.h"
#include "route/route.h"
#include "server/worker.h"

/* Takes what the access log and the error pages need from h into r (method, target, host,
   Referer, User-Agent, Accept: json), and r's request id: the client's X-Request-Id when it
   is a plain token of at most 63 bytes, else a new one. h NULL: the head was unreadable; the
   log fields say "-". */
void pt_pipeline_note(struct pt_req *r, const struct pt_req_head *h);

/* What the steps after the route need of a routed request: its head, the route match and
   the path and query it matched with (after a Netlify rewrite). A guard that makes the
   request wait keeps a copy of it (struct pt_pipeline_copy). */
struct pt_pipeline_ctx {
    const struct pt_req_head *h;
    const struct pt_route_match *m;
    const char *mpath; /* the normalised (or rewritten) path the route matched */
    size_t mlen;
    struct pt_str query; /* h's, or a rewrite's */
    bool is_acme;        /* an ACME HTTP-01 path, never redirected to https (only looked at, and
                     so only known, where https_redirect applies) */
};

/* The guard steps in their order (run_guards in pipeline.c). A guard that makes a request wait
   resumes it after its own step. */
enum pt_guard_step {
    PT_GUARD_STEP_NONE = 0,     /* none passed yet */
    PT_GUARD_STEP_CONN,         /* connection limits */
    PT_GUARD_STEP_IP,           /* IP rules */
    PT_GUARD_STEP_RATE,         /* rate limits (delay: waits, server/guard_hold.c) */
    PT_GUARD_STEP_BASIC_AUTH,   /* basic_auth (server/guard_auth.c) */
    PT_GUARD_STEP_JWT,          /* jwt (server/guard_auth.c) */
    PT_GUARD_STEP_FORWARD_AUTH, /* forward_auth (waits, server/fwdauth.c) */
    PT_GUARD_STEP_WAF,          /* the WAF */
};

/* Routes r by h (path normalisation, ACME challenge, site, route and Netlify rules, guards,
   https_redirect) and starts the route's handler, or answers locally, or leaves r waiting
   for a guard (r->pstate PT_PS_GUARD_WAIT: the guard calls pt_pipeline_resume later). h's
   slices must stay valid until it returns. */
void pt_pipeline_run(struct pt_req *r, const struct pt_req_head *h);

/* Goes on with r after a guard made it wait at step `after` (r->pstate back to PT_PS_NONE):
   the guards after that step, https_redirect, the route's handler; then wakes r's protocol,
   unless a later guard makes r wait again (PT_PS_GUARD_WAIT). pc (and what it points to) must
   stay valid until it returns. r may have ended when it returns (HTTP/1.1 runs the connection
   from the wake-up): the caller touches neither r nor what r's cleanups free afterwards. */
void pt_pipeline_resume(struct pt_req *r, const struct pt_pipeline_ctx *pc,
                        enum pt_guard_step after);

/* A struct pt_pipeline_ctx copied with everything it points to, for a request that waits: the
   protocol's head (its slices point into the connection's buffer and the worker's scratch
   arrays) and the match (its slices point into the worker's path buffer) are reused once
   pt_pipeline_run returns. */
struct pt_pipeline_copy {
    struct pt_pipeline_ctx pc; /* points into this copy */
    struct pt_req_head h;
    struct pt_route_match m;
    struct pt_field *fields; /* h's fields, then room for the extra ones asked for */
};

/* The bytes of room pt_pipeline_copy needs for pc with extra_fields fields to spare. */
size_t pt_pipeline_copy_room(const struct pt_pipeline_ctx *pc, size_t extra_fields);

/* Copies pc into cp, its fields (and extra_fields spare ones) and bytes into room: at least
   pt_pipeline_copy_room(pc, extra_fields) bytes, aligned for a struct pt_field, which the
   caller owns and keeps as long as cp is used (one allocation with cp is the way). The route
   match's slices are moved onto the copied path. Never fails. */
void pt_pipeline_copy(struct pt_pipeline_copy *cp, const struct pt_pipeline_ctx *pc,
                      size_t extra_fields, void *room);

/* Answers r with Portico's error page for status; close: the connection ends after it. */
void pt_pipeline_fail(struct pt_req *r, int status, bool close);

#endif
