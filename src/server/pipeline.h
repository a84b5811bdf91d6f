/*
 * pipeline.h - the request pipeline: from a protocol-neutral request head to a started
 * handler (pipeline.c).
 */
#ifndef PT_SERVER_PIPELINE_H
#define PT_SERVER_PIPELINE_H

#include <stdbool.h>

#include "http/fields.h"
#include "server/worker.h"

/* Takes what the access log and the error pages need from h into r (method, target, host,
   Referer, User-Agent, Accept: json), and r's request id: the client's X-Request-Id when it
   is a plain token of at most 63 bytes, else a new one. h NULL: the head was unreadable; the
   log fields say "-". */
void pt_pipeline_note(struct pt_req *r, const struct pt_req_head *h);

/* What the steps after auth need of a routed request: its head, the route match and the
   path and query it matched with (after a Netlify rewrite). forward_auth keeps a copy of it
   while the request waits (server/fwdauth.c). */
struct pt_pipeline_ctx {
    const struct pt_req_head *h;
    const struct pt_route_match *m;
    const char *mpath; /* the normalised (or rewritten) path the route matched */
    size_t mlen;
    struct pt_str query; /* h's, or a rewrite's */
    bool is_acme;        /* an ACME HTTP-01 path, never redirected to https (only looked at, and
                     so only known, where https_redirect applies) */
};

/* Routes r by h (path normalisation, ACME challenge, site, route and Netlify rules, guards,
   https_redirect) and starts the route's handler, or answers locally, or leaves r waiting
   for forward_auth's call (r->pstate PT_PS_AUTH_WAIT: pt_pipeline_resume goes on). h's
   slices must stay valid until it returns. */
void pt_pipeline_run(struct pt_req *r, const struct pt_req_head *h);

/* Goes on with r where its guards left off for forward_auth's call, which let it through:
   the guards after auth, https_redirect, the route's handler; then wakes r's protocol.
   pc (and what it points to) must stay valid until it returns. */
void pt_pipeline_resume(struct pt_req *r, const struct pt_pipeline_ctx *pc);

/* The guard steps in their order (run_guards in pipeline.c); r->guards_done holds the last one
   a held request passed. */
enum pt_guard_step {
    PT_GUARD_STEP_NONE = 0,
    PT_GUARD_STEP_CONN, /* connection limits */
    PT_GUARD_STEP_IP,   /* IP rules */
    PT_GUARD_STEP_RATE, /* rate limits */
    PT_GUARD_STEP_AUTH, /* basic_auth, jwt, forward_auth */
    PT_GUARD_STEP_WAF,  /* the WAF */
};

/* Runs r's pipeline again on h after a guard held it (server/guard_hold.c), skipping the guard
   steps up to r->guards_done: the same route is chosen (the head and the snapshot are the
   same), and the request goes on from the step after the one that held it. pt_pipeline_run's
   contract otherwise; the caller resumes r's stream after it. */
void pt_pipeline_rerun(struct pt_req *r, const struct pt_req_head *h);

/* Answers r with Portico's error page for status; close: the connection ends after it. */
void pt_pipeline_fail(struct pt_req *r, int status, bool close);

#endif
