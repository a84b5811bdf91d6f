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

/* Routes r by h (path normalisation, ACME challenge, site, route and Netlify rules,
   https_redirect) and starts the route's handler, or answers locally. h's slices must stay
   valid until it returns. */
void pt_pipeline_run(struct pt_req *r, const struct pt_req_head *h);

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
void pt_pipeline_resume(struct pt_req *r, const struct pt_req_head *h);

/* Answers r with Portico's error page for status; close: the connection ends after it. */
void pt_pipeline_fail(struct pt_req *r, int status, bool close);

#endif
