/*
 * guard_auth.c - the pipeline's auth step: basic_auth, then jwt (forward auth comes after
 * them), between the rate limits and the WAF (run_guards in pipeline.c).
 *
 * The checks themselves are the guard layer's (guard/auth_basic.c, guard/jwt.c): pure
 * functions of the configuration and the request's fields. This file does what needs the
 * server: answering (401 with its WWW-Authenticate, 503 when a jwks_url was never fetched),
 * counting PT_CTR_GUARD_AUTH_REFUSED, one rate-limited info line naming the guard, the reason
 * and the request id (never the credentials), and handing claims_to_headers to the proxy.
 *
 * basic_auth's password hash never runs on the worker's loop: on a cache miss it goes to the
 * process's hashing threads (server/offload.c) and the request waits as for forward_auth's
 * call (PT_PS_GUARD_WAIT, a struct pt_pipeline_copy in one allocation, struct basic_wait, and
 * a cleanup on the request). The wait is shared by the job, until its done runs or the
 * cleanup takes it back from the queue, and by the request, until it ends: whichever lets go
 * last frees it. done runs on the worker: 401, or pt_pipeline_resume after basic_auth (jwt,
 * then forward_auth). A full queue (limits.auth_hash_queue) is a 503 at once. A cache hit
 * stays synchronous.
 *
 * Claim headers: their lines are built once per accepted request into one malloc'd buffer
 * that r->ureq_auth points at and a cleanup of r frees; the proxy's head builder appends it
 * (handler/proxy.c). The client's own copies of those headers are dropped by the route's
 * request remove list, filled at load (config/config_auth.c), so they go even when the claim
 * is absent. A route without auth costs the two pointer tests in run_guards and nothing else.
 */
#include "server/guard_auth.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "core/counters.h"
#include "core/log.h"
#include "guard/auth_basic.h"
#include "guard/jwks_fetch.h"
#include "guard/jwt.h"
#include "guard/rate.h"
#include "handler/handler.h"
#include "server/conn.h"
#include "server/offload.h"
#include "server/worker.h"

#define CLAIM_LINES_MAX 8192 /* bytes of all claim header lines of one request */

static void refuse(struct pt_req *r, const char *guard, const char *why, int status,
                   const char *lines, size_t n)
{
    pt_ctr_add_self(PT_CTR_GUARD_AUTH_REFUSED, 1);
    pt_log_ratelimited(PT_LOG_INFO, "request %s: refused by %s: %s", r->request_id, guard, why);
    pt_conn_plan_discard(r);
    pt_respond_error_extra(r, status, r->wants_json, lines, n);
}

/* ---- basic_auth: the hash off the loop ---- */

/* A request whose password is being hashed (server/offload.c): shared by the job, until its
   done runs or it is taken back, and by the request, until it ends (on_basic_end). */
struct basic_wait {
    struct pt_offload_job job;
    struct pt_req *r; /* NULL once the request ended */
    const struct pt_basic_auth_cfg *b;
    bool is_out;    /* the job is queued or runs */
    bool in_resume; /* pt_pipeline_resume runs: the cleanup leaves the freeing to it */
    bool is_dead;   /* the request ended during the resume */
    struct pt_basic_job bj;
    struct pt_pipeline_copy cp; /* the copy the pipeline resumes with */
    /* then the copy's fields and bytes */
};

static void basic_wait_free(struct basic_wait *bw)
{
    OPENSSL_cleanse(bw->bj.password, sizeof(bw->bj.password));
    free(bw);
}

static void basic_hash(struct pt_offload_job *j)
{
    pt_basic_hash(&PT_CONTAINER_OF(j, struct basic_wait, job)->bj);
}

/* The hash is done (r's worker): r goes on with the guards after basic_auth, or gets its 401. */
static void basic_hashed(struct pt_offload_job *j)
{
    struct basic_wait *bw = PT_CONTAINER_OF(j, struct basic_wait, job);
    struct pt_req *r = bw->r;
    bw->is_out = false;
    if (!r) { /* the client went away meanwhile */
        basic_wait_free(bw);
        return;
    }
    const char *user = NULL;
    enum pt_basic_verdict v = pt_basic_end(&bw->bj, r->env->loop->now_ms, &user);
    if (r->pstate != PT_PS_GUARD_WAIT)
        return; /* its protocol let it go (an HTTP/2 stream reset); it ends */
    r->pstate = PT_PS_NONE;
    if (v != PT_BASIC_OK) {
        const struct pt_basic_auth_cfg *b = bw->b;
        refuse(r, "basic_auth", pt_basic_verdict_text(v), 401, b->challenge, b->challenge_len);
        r->stream->resume(r); /* may end r, and free bw */
        return;
    }
    bw->in_resume = true;
    pt_pipeline_resume(r, &bw->cp.pc, PT_GUARD_STEP_BASIC_AUTH);
    bw->in_resume = false;
    if (bw->is_dead) /* the request ended inside: its cleanup left bw to us */
        basic_wait_free(bw);
}

static void on_basic_end(struct pt_req *r, void *arg)
{
    (void)r;
    struct basic_wait *bw = arg;
    bw->r = NULL;
    if (bw->is_out && pt_offload_cancel(&bw->job))
        bw->is_out = false; /* still queued: taken back */
    if (bw->in_resume)
        bw->is_dead = true;
    else if (!bw->is_out)
        basic_wait_free(bw);
    /* else the hash runs: basic_hashed frees bw */
}

int pt_guard_basic_run(struct pt_req *r, struct pt_pipeline_ctx *pc,
                       const struct pt_basic_auth_cfg *b)
{
    struct pt_str v = pt_req_field(pc->h, "authorization", 13);
    const char *user = NULL;
    struct pt_basic_job bj;
    enum pt_basic_verdict verdict = pt_basic_begin(b, v.p, v.n, r->env->loop->now_ms, &bj, &user);
    if (verdict == PT_BASIC_OK)
        return PT_OK; /* a cached success: no wait */
    if (verdict != PT_BASIC_PENDING) {
        refuse(r, "basic_auth", pt_basic_verdict_text(verdict), 401, b->challenge,
               b->challenge_len);
        return PT_DONE;
    }
    struct basic_wait *bw = malloc(sizeof(*bw) + pt_pipeline_copy_room(pc, 0));
    if (!bw || pt_req_on_end(r, on_basic_end, bw) < 0) {
        OPENSSL_cleanse(bj.password, sizeof(bj.password));
        free(bw);
        refuse(r, "basic_auth", "out of memory", 503, NULL, 0);
        return PT_DONE;
    }
    *bw = (struct basic_wait){.job = {.work = basic_hash, .done = basic_hashed}, .r = r, .b = b};
    bw->bj = bj;
    OPENSSL_cleanse(bj.password, sizeof(bj.password));
    pt_pipeline_copy(&bw->cp, pc, 0, bw + 1);
    if (!pt_offload_submit(r->w, &bw->job, r->cfg->limits.auth_hash_queue)) {
        refuse(r, "basic_auth", "too many password hashes waiting", 503, NULL, 0);
        return PT_DONE; /* bw goes with r (on_basic_end) */
    }
    bw->is_out = true;
    r->pstate = PT_PS_GUARD_WAIT;
    return PT_AGAIN;
}

/* The token of j in h: the header's value (after "Bearer " for Authorization) or the
   cookie's; p NULL when there is none. */
static struct pt_str token_of(const struct pt_req_head *h, const struct pt_jwt_cfg *j)
{
    if (j->cookie)
        return pt_guard_cookie(h, j->cookie, j->cookie_len);
    struct pt_str v = pt_req_field(h, j->header, j->header_len);
    if (!v.p || !j->is_bearer)
        return v;
    /* RFC 6750 §2.1: "Bearer" 1*SP b64token; the scheme is case-insensitive (RFC 9110 §11.1) */
    if (v.n < 7 || strncasecmp(v.p, "bearer ", 7) != 0)
        return (struct pt_str){NULL, 0};
    size_t i = 7;
    while (i < v.n && v.p[i] == ' ')
        i++;
    return (struct pt_str){v.p + i, v.n - i};
}

static void free_lines(struct pt_req *r, void *arg)
{
    free(arg);
    r->ureq_auth = (struct pt_str){NULL, 0};
}

/* claims_to_headers: "Header: value\r\n" for each claim present (one that cannot be a header
   value is left out). Returns false when out of memory or a cleanup slot. */
static bool pass_claims(struct pt_req *r, const struct pt_jwt_cfg *j, const json_t *claims)
{
    char *buf = malloc(CLAIM_LINES_MAX);
    if (!buf)
        return false;
    size_t n = 0;
    for (size_t i = 0; i < j->n_claims; i++) {
        const struct pt_jwt_claim_header *c = &j->claims[i];
        const json_t *val = json_object_get(claims, c->claim);
        size_t need = c->header_len + 4;
        if (!val || n + need >= CLAIM_LINES_MAX)
            continue;
        ssize_t vl =
            pt_jwt_claim_text(val, buf + n + c->header_len + 2, CLAIM_LINES_MAX - n - need);
        if (vl < 0)
            continue;
        memcpy(buf + n, c->header, c->header_len);
        memcpy(buf + n + c->header_len, ": ", 2);
        n += c->header_len + 2 + (size_t)vl;
        memcpy(buf + n, "\r\n", 2);
        n += 2;
    }
    if (n == 0) {
        free(buf);
        return true;
    }
    if (pt_req_on_end(r, free_lines, buf) < 0) {
        free(buf);
        return false;
    }
    r->ureq_auth = (struct pt_str){buf, n};
    return true;
}

bool pt_guard_jwt_run(struct pt_req *r, const struct pt_req_head *h, const struct pt_jwt_cfg *j)
{
    static const char missing[] = "WWW-Authenticate: Bearer\r\n";
    static const char invalid[] = "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n";
    struct pt_str tok = token_of(h, j);
    if (!tok.p || tok.n == 0) {
        refuse(r, "jwt", "no token", 401, missing, sizeof(missing) - 1);
        return false;
    }
    struct pt_jwt_keyset *ks = j->keys;
    if (j->src) {
        ks = pt_jwks_src_keys(j->src);
        if (!ks) {
            refuse(r, "jwt", "jwks_url not fetched yet", 503, NULL, 0);
            return false;
        }
    }
    const struct pt_jwt_rules rules = {j->issuer, j->audience, j->clock_skew_s, j->require};
    json_t *claims = NULL;
    enum pt_jwt_verdict v =
        pt_jwt_verify(tok.p, tok.n, ks, &rules, (int64_t)time(NULL), j->n_claims ? &claims : NULL);
    if (j->src) {
        if (v == PT_JWT_NO_KEY)
            pt_jwks_src_kick(j->src); /* a rotated set: fetch it early, for the next requests */
        pt_jwt_keyset_unref(ks);
    }
    if (v != PT_JWT_OK) {
        refuse(r, "jwt", pt_jwt_verdict_text(v), 401, invalid, sizeof(invalid) - 1);
        return false;
    }
    bool ok = !claims || pass_claims(r, j, claims);
    json_decref(claims);
    if (!ok) {
        refuse(r, "jwt", "out of memory", 503, NULL, 0);
        return false;
    }
    return true;
}
