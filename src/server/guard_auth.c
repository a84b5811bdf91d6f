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

#include "core/counters.h"
#include "core/log.h"
#include "guard/auth_basic.h"
#include "guard/jwks_fetch.h"
#include "guard/jwt.h"
#include "guard/rate.h"
#include "handler/handler.h"
#include "server/conn.h"

#define CLAIM_LINES_MAX 8192 /* bytes of all claim header lines of one request */

static void refuse(struct pt_req *r, const char *guard, const char *why, int status,
                   const char *lines, size_t n)
{
    pt_ctr_add_self(PT_CTR_GUARD_AUTH_REFUSED, 1);
    pt_log_ratelimited(PT_LOG_INFO, "request %s: refused by %s: %s", r->request_id, guard, why);
    pt_conn_plan_discard(r);
    pt_respond_error_extra(r, status, r->wants_json, lines, n);
}

bool pt_guard_basic_run(struct pt_req *r, const struct pt_req_head *h,
                        const struct pt_basic_auth_cfg *b)
{
    struct pt_str v = pt_req_field(h, "authorization", 13);
    const char *user = NULL;
    enum pt_basic_verdict verdict = pt_basic_check(b, v.p, v.n, r->env->loop->now_ms, &user);
    if (verdict == PT_BASIC_OK)
        return true;
    refuse(r, "basic_auth", pt_basic_verdict_text(verdict), 401, b->challenge, b->challenge_len);
    return false;
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
