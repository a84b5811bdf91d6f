/*
 * fwdauth.h - forward auth (fwdauth.c): a request asks an auth service, over a detached
 * proxied request, whether it may go on (nginx auth_request, Traefik ForwardAuth).
 */
#ifndef PT_SERVER_FWDAUTH_H
#define PT_SERVER_FWDAUTH_H

#include "config/config.h"
#include "handler/request.h"
#include "server/pipeline.h"

struct pt_worker;

/*
 * The forward_auth guard of r (routed; pc: what the pipeline goes on with). Returns PT_OK when
 * r may go on now (a cached 2xx: pc->h may then be a copy with the auth answer's headers,
 * owned by r until it ends); PT_DONE when r was answered (refused, or 503); PT_AGAIN when the
 * auth call runs: r waits in PT_PS_AUTH_WAIT, and its answer either refuses r or goes on
 * with pt_pipeline_resume on a copy of pc. A client that goes away meanwhile cancels the
 * call (a cleanup on r).
 */
int pt_fwdauth_check(struct pt_req *r, struct pt_pipeline_ctx *pc, const struct pt_fwdauth_cfg *fa);

/* Frees w's cache of auth answers (the worker's end). */
void pt_fwdauth_cache_free(struct pt_worker *w);

#endif
