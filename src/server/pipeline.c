/*
 * pipeline.c - what happens to a request once its protocol has read its head: one function,
 * one order, for every protocol.
 *
 *     note (log fields, request id) -> path normalisation -> ACME HTTP-01 challenge
 *         -> site by Host -> route, with the Netlify rules (conditions; a 200 rewrite matches
 *            again once with the new path) -> guards (run_guards: requests in flight, IP rules,
 *            rate limits, basic_auth, jwt, forward_auth, the WAF) -> https_redirect -> the route's action
 *            (run_handler)
 *
 * A guard may make the request wait instead of deciding at once: rate_limit's delay: holds it
 * until its slot (server/guard_hold.c), basic_auth's password hash runs on the hashing threads
 * (server/guard_auth.c, server/offload.c), forward_auth asks another service over the network
 * (server/fwdauth.c). The request then waits in PT_PS_GUARD_WAIT, a state both protocols
 * leave alone (its body unread; HTTP/2 keeps the stream and holds its DATA), with what the
 * steps after the route need of it, struct pt_pipeline_ctx, copied with the bytes it points
 * to (pt_pipeline_copy: the protocol's head is gone once pt_pipeline_run returns). The guard
 * then refuses the request itself, or calls pt_pipeline_resume, which runs the guards after
 * its step, then run_handler: a request may wait more than once (held by the rate limit,
 * then asking forward_auth), each wait going on from where the last one stopped.
 *
 * The protocol (conn.c for HTTP/1.1) gives a struct pt_req_head and keeps its input buffer
 * until pt_pipeline_run returns; it also decides what its own framing refuses (bad heads,
 * oversized bodies) before calling. Everything the pipeline answers itself goes through the
 * same responders as the handlers' answers.
 */
#include "server/pipeline.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "core/counters.h"
#include "core/log.h"
#include "guard/ip.h"
#include "guard/rate.h"
#include "server/waf_guard.h"
#include "handler/geoip.h"
#include "handler/handler.h"
#include "handler/netlify_rules.h"
#include "server/fwdauth.h"
#include "server/guard_hold.h"
#include "server/guard_auth.h"
#include "tls/acme.h"

/* Answers a request locally with Portico's error page; close: the connection ends after it. */
void pt_pipeline_fail(struct pt_req *r, int status, bool close)
{
    if (close)
        r->is_keepalive = false;
    pt_respond_error(r, status, r->wants_json);
}

static void copy_field(char *dst, size_t cap, struct pt_str s)
{
    size_t n = PT_MIN(s.n, cap - 1);
    if (n)
        memcpy(dst, s.p, n);
    dst[n] = '\0';
}

static bool request_id_ok(struct pt_str v)
{
    if (v.n == 0 || v.n > 63)
        return false;
    for (size_t i = 0; i < v.n; i++) {
        unsigned char ch = (unsigned char)v.p[i];
        bool ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '_' || ch == '.' || ch == ':' ||
                  ch == '+' || ch == '=' || ch == '/';
        if (!ok)
            return false;
    }
    return true;
}

void pt_pipeline_note(struct pt_req *r, const struct pt_req_head *h)
{
    struct pt_str rid = {NULL, 0};
    if (!h) {
        memcpy(r->method, "-", 2);
        memcpy(r->uri, "-", 2);
    } else {
        copy_field(r->method, sizeof(r->method), h->method);
        copy_field(r->uri, sizeof(r->uri), h->target);
        copy_field(r->host, sizeof(r->host), h->authority);
        copy_field(r->referer, sizeof(r->referer), pt_req_field(h, "referer", 7));
        copy_field(r->user_agent, sizeof(r->user_agent), pt_req_field(h, "user-agent", 10));
        r->method_id = h->method_id;
        r->is_head = h->method_id == PT_METHOD_HEAD;
        struct pt_str accept = pt_req_field(h, "accept", 6);
        r->wants_json = accept.n && memmem(accept.p, accept.n, "json", 4) != NULL;
        r->is_grpc = pt_is_grpc_type(pt_req_field(h, "content-type", 12));
        rid = pt_req_field(h, "x-request-id", 12);
    }
    if (request_id_ok(rid)) {
        memcpy(r->request_id, rid.p, rid.n);
        r->request_id[rid.n] = '\0';
        r->request_id_len = (uint8_t)rid.n;
    } else {
        r->request_id_len = (uint8_t)pt_worker_request_id(r->c->w, r->request_id);
    }
}

static bool is_acme_challenge(const char *path, size_t len)
{
    static const char prefix[] = "/.well-known/acme-challenge/";
    return len >= sizeof(prefix) - 1 && memcmp(path, prefix, sizeof(prefix) - 1) == 0;
}

/* https_redirect: 308 to the same host and target on the first TLS listener's port. */
static void redirect_to_https(struct pt_req *r, struct pt_str host, struct pt_str path,
                              struct pt_str query)
{
    const struct pt_config *cfg = r->cfg;
    unsigned port = 443;
    for (size_t i = 0; i < cfg->n_listens; i++)
        if (cfg->listens[i].is_tls) {
            const struct pt_sockaddr *a = &cfg->listens[i].addr;
            port = ntohs(a->u.sa.sa_family == AF_INET6 ? a->u.in6.sin6_port : a->u.in.sin_port);
            break;
        }
    /* the host without its port; an IPv6 literal keeps its brackets */
    size_t hn = host.n;
    const char *rb = host.n && host.p[0] == '[' ? memchr(host.p, ']', host.n) : NULL;
    const char *colon = rb ? (rb + 1 < host.p + host.n && rb[1] == ':' ? rb + 1 : NULL)
                           : memchr(host.p ? host.p : "", ':', host.n);
    if (colon)
        hn = (size_t)(colon - host.p);
    char extra[8400];
    char portbuf[8] = "";
    if (port != 443)
        snprintf(portbuf, sizeof(portbuf), ":%u", port);
    int n = snprintf(extra, sizeof(extra), "Location: https://%.*s%s%.*s%s%.*s\r\n", (int)hn,
                     host.p ? host.p : "", portbuf, (int)path.n, path.p, query.p ? "?" : "",
                     (int)query.n, query.p ? query.p : "");
    if (n < 0 || (size_t)n >= sizeof(extra) || hn == 0) {
        pt_respond_error(r, 400, r->wants_json);
        return;
    }
    pt_respond_simple(r, 308, extra, (size_t)n, NULL, 0);
}

/* HTTP-01 (RFC 8555 §8.3): the key authorization for a pending token, before any route. */
static bool answer_acme(struct pt_req *r, const char *path, size_t len)
{
    static const size_t prefix = sizeof("/.well-known/acme-challenge/") - 1;
    char ka[512];
    ssize_t n = pt_acme_http01(path + prefix, len - prefix, ka, sizeof(ka));
    if (n < 0)
        return false;
    pt_conn_plan_discard(r);
    static const char ct[] = "Content-Type: application/octet-stream\r\n";
    pt_respond_copy(r, 200, ct, sizeof(ct) - 1, ka, (size_t)n);
    return true;
}

/* The rate limit of r's route, else of its site (guard/rate.h). Returns PT_OK when r may go
   on, PT_DONE after a 429, PT_AGAIN when delay: holds it (server/guard_hold.h: the pipeline
   resumes after this step when its slot comes). */
static int rate_limited(struct pt_req *r, const struct pt_pipeline_ctx *pc)
{
    const struct pt_req_head *h = pc->h;
    const struct pt_rate_limit_cfg *c = &r->route->rate_limit;
    struct pt_str scope = {r->route->match, strlen(r->route->match)};
    if (!c->is_set) {
        c = &r->site->rate_limit;
        scope = r->site->n_hosts ? (struct pt_str){r->site->hosts[0], strlen(r->site->hosts[0])}
                                 : (struct pt_str){"*", 1};
    }
    if (!c->is_on)
        return PT_OK;
    char ipkey[17];
    struct pt_str client = {"", 0};
    struct pt_sockaddr addr;
    for (size_t i = 0; i < c->n_parts; i++)
        if (c->parts[i].kind == PT_RL_IP) {
            if (!pt_geoip_client_addr(r->cfg, r->peer, h, &addr))
                addr = *r->peer;
            client = pt_guard_rate_ip_key(&addr.u.sa, ipkey);
            break;
        }
    char lines[256];
    size_t n = 0;
    uint64_t delay_us = 0;
    const char *why = "";
    if (pt_guard_rate(c, scope, h, client, r->env->loop->now_ms * 1000, lines, &n, &delay_us) ==
        0) {
        if (delay_us == 0)
            return PT_OK;
        if (pt_guard_hold(r, pc, PT_GUARD_STEP_RATE, (delay_us + 999) / 1000,
                          r->cfg->rate_limit_delayed) == PT_OK)
            return PT_AGAIN;
        /* the worker holds rate_limits.max_delayed requests already (or no memory is left) */
        int w = snprintf(lines, sizeof(lines), "Retry-After: %llu\r\n",
                         (unsigned long long)((delay_us + 999999) / 1000000));
        n = w > 0 && (size_t)w < sizeof(lines) ? (size_t)w : 0;
        why = ", too many held";
    }
    pt_ctr_add_self(PT_CTR_GUARD_RATE_LIMITED, 1);
    char ip[64] = "key";
    if (client.n)
        pt_sock_ntop(&addr.u.sa, ip, sizeof(ip));
    pt_log_ratelimited(PT_LOG_INFO, "request %s: refused by rate_limit \"%s\" (%s%s)",
                       r->request_id, c->name, ip, why);
    pt_conn_plan_discard(r);
    pt_respond_error_extra(r, 429, r->wants_json, lines, n);
    return PT_DONE;
}

/*
 * IP rules: the client address (behind trusted_proxies, as for X-Forwarded-For) against the
 * route's compiled lists, and its country when the rules name countries. A client address
 * that cannot be known (a trusted proxy sent an X-Forwarded-For entry that is no address) is
 * refused. Returns true when the request may go on, false after answering 403.
 */
static bool guard_ip(struct pt_req *r, const struct pt_req_head *h, const struct pt_ip_cfg *ip)
{
    const struct pt_snapshot *s = r->ws->s;
    struct pt_sockaddr client;
    struct pt_ip_addr a;
    enum pt_ip_verdict v;
    if (!pt_geoip_client_addr(s->cfg, r->peer, h, &client) ||
        pt_ip_addr_from_sockaddr(&client.u.sa, &a) < 0) {
        v = PT_IP_NOT_ALLOWED;
        memset(&client, 0, sizeof(client));
    } else {
        char cc[3] = "";
        const struct pt_ip_rules *rules = ip->rules;
        bool wants_cc = ip->n_allow_cc || ip->n_deny_cc;
        if (wants_cc && !(s->res.geoip && pt_geoip_country(s->res.geoip, &client.u.sa, cc)))
            cc[0] = '\0';
        v = pt_ip_rules_check(rules, &a, cc);
    }
    if (v == PT_IP_PASS)
        return true;
    pt_ctr_add_self(PT_CTR_GUARD_IP_DENIED, 1);
    char text[INET6_ADDRSTRLEN] = "unknown";
    if (client.u.sa.sa_family == AF_INET)
        inet_ntop(AF_INET, &client.u.in.sin_addr, text, sizeof(text));
    else if (client.u.sa.sa_family == AF_INET6)
        inet_ntop(AF_INET6, &client.u.in6.sin6_addr, text, sizeof(text));
    pt_log_ratelimited(PT_LOG_INFO, "guard ip: refused client %s: %s (rules at %s:%d)", text,
                       pt_ip_verdict_text(v), s->cfg->path, ip->pos.line);
    pt_conn_plan_discard(r);
    pt_pipeline_fail(r, 403, false);
    return false;
}

/*
 * The guards, after the route is chosen and before its handler, in one fixed order:
 * connection limits (requests in flight per client), IP rules, rate limits, auth (basic_auth, jwt, forward_auth),
 * the WAF; only those after step `after` (a request a guard made wait goes on past that
 * guard's step; PT_GUARD_STEP_NONE: all). A route without a guard costs one test each (its
 * configuration's). Returns PT_OK when the request may go on, PT_DONE after the guard that
 * refused it answered, PT_AGAIN when a guard
 * makes it wait (PT_PS_GUARD_WAIT: rate_limit's delay, forward_auth's call); that guard
 * resumes it with pt_pipeline_resume.
 */
static int run_guards(struct pt_req *r, struct pt_pipeline_ctx *pc, enum pt_guard_step after)
{
    const struct pt_route_cfg *route = r->route;
    if (r->cfg->limits.max_requests_per_client && after < PT_GUARD_STEP_CONN &&
        !pt_connguard_request(r, pc->h))
        return PT_DONE; /* connection limits: this client's requests in flight (connguard.c) */
    if (route->ip && after < PT_GUARD_STEP_IP && !guard_ip(r, pc->h, route->ip))
        return PT_DONE;
    if ((route->rate_limit.is_on || r->site->rate_limit.is_on) && after < PT_GUARD_STEP_RATE) {
        int rc = rate_limited(r, pc);
        if (rc != PT_OK)
            return rc;
    }
    /* Auth: basic_auth, jwt (server/guard_auth.c), then forward auth. */
    if (route->basic_auth && after < PT_GUARD_STEP_BASIC_AUTH) {
        int rc = pt_guard_basic_run(r, pc, route->basic_auth); /* its hash waits */
        if (rc != PT_OK)
            return rc;
    }
    if (route->jwt && after < PT_GUARD_STEP_JWT && !pt_guard_jwt_run(r, pc->h, route->jwt))
        return PT_DONE;
    if (route->forward_auth && after < PT_GUARD_STEP_FORWARD_AUTH) {
        int rc = pt_fwdauth_check(r, pc, route->forward_auth);
        if (rc != PT_OK)
            return rc;
    }
    if (route->waf && after < PT_GUARD_STEP_WAF && !pt_waf_guard(r, pc->h, route->waf))
        return PT_DONE; /* server/waf_guard.c */
    return PT_OK;
}

/* After the guards: https_redirect, and the route's action. */
static void run_handler(struct pt_req *r, const struct pt_pipeline_ctx *pc)
{
    const struct pt_req_head *h = pc->h;
    const struct pt_route_cfg *route = r->route;
    if (r->site->https_redirect && !r->is_tls && !pc->is_acme) {
        pt_conn_plan_discard(r);
        redirect_to_https(r, h->authority, h->path, pc->query);
        return;
    }
    if (route->action != PT_ACTION_PROXY)
        pt_conn_plan_discard(r);
    switch (route->action) {
    case PT_ACTION_STATIC:
        pt_static_route(r, h, route, pc->m, pc->mpath, pc->mlen, pc->query);
        break;
    case PT_ACTION_RESPOND:
        if (route->nf) {
            char buf[8192];
            ssize_t n = pt_route_expand(pt_nf_rule_to(route), pc->m, buf, sizeof(buf));
            pt_nf_error_page(r, buf, n > 0 ? (size_t)n : 0);
        } else {
            pt_respond_route(r, route);
        }
        break;
    case PT_ACTION_REDIRECT:
        pt_redirect_route(r, route, pc->m, pc->query);
        break;
    case PT_ACTION_PROXY: {
        int rc = pt_proxy_start(r, h, pc->m, pc->mpath, pc->mlen, pc->query);
        if (rc == PT_DONE) {
            pt_conn_plan_discard(r); /* answered from the cache */
        } else if (rc != PT_OK) {
            pt_conn_plan_discard(r);
            pt_pipeline_fail(r, rc >= 400 ? rc : 500, false);
        }
        break;
    }
    default:
        pt_pipeline_fail(r, 500, true);
        break;
    }
}

void pt_pipeline_resume(struct pt_req *r, const struct pt_pipeline_ctx *pc,
                        enum pt_guard_step after)
{
    struct pt_pipeline_ctx ctx = *pc; /* a guard may point ctx.h elsewhere (forward_auth) */
    int rc = run_guards(r, &ctx, after);
    if (rc == PT_AGAIN)
        return; /* a later guard makes it wait in turn, and resumes it */
    if (rc == PT_OK)
        run_handler(r, &ctx);
    r->stream->resume(r);
}

static size_t str_bytes(struct pt_str s)
{
    return s.p ? s.n : 0;
}

size_t pt_pipeline_copy_room(const struct pt_pipeline_ctx *pc, size_t extra_fields)
{
    const struct pt_req_head *h = pc->h;
    const struct pt_route_match *m = pc->m;
    size_t bytes = str_bytes(h->method) + str_bytes(h->authority) + str_bytes(h->target) +
                   str_bytes(h->path) + str_bytes(h->query) + str_bytes(pc->query) + pc->mlen;
    for (size_t i = 0; i < h->n_fields; i++)
        bytes += str_bytes(h->fields[i].name) + str_bytes(h->fields[i].value);
    /* the match's slices outside the path (at most: those inside take no room) */
    bytes += str_bytes(m->splat);
    for (size_t i = 0; i < m->n_params && i < PT_ROUTE_MAX_PARAMS; i++)
        bytes += str_bytes(m->param_values[i]);
    for (size_t i = 0; i < m->n_captures && i < PT_ROUTE_MAX_CAPTURES; i++)
        bytes += str_bytes(m->captures[i]);
    return (h->n_fields + extra_fields) * sizeof(struct pt_field) + bytes;
}

static struct pt_str keep(char **at, struct pt_str s)
{
    if (!s.p)
        return s;
    struct pt_str k = {*at, s.n};
    if (s.n)
        memcpy(*at, s.p, s.n);
    *at += s.n;
    return k;
}

/* A route match's slice, moved to the copy of the path [from, from + n) at to when it lies
   there, else copied at *at: a Netlify rule's query placeholders point into a thread-local
   buffer that the worker's next request overwrites. */
static void rebase(struct pt_str *s, const char *from, size_t n, const char *to, char **at)
{
    if (s->p && s->p >= from && s->p + s->n <= from + n)
        s->p = to + (s->p - from);
    else
        *s = keep(at, *s);
}

void pt_pipeline_copy(struct pt_pipeline_copy *cp, const struct pt_pipeline_ctx *pc,
                      size_t extra_fields, void *room)
{
    const struct pt_req_head *h = pc->h;
    cp->fields = room;
    char *at = (char *)(cp->fields + h->n_fields + extra_fields);
    cp->h = *h;
    cp->h.method = keep(&at, h->method);
    cp->h.authority = keep(&at, h->authority);
    cp->h.target = keep(&at, h->target);
    cp->h.path = keep(&at, h->path);
    cp->h.query = keep(&at, h->query);
    for (size_t i = 0; i < h->n_fields; i++) {
        cp->fields[i].name = keep(&at, h->fields[i].name);
        cp->fields[i].value = keep(&at, h->fields[i].value);
    }
    cp->h.fields = cp->fields;
    char *mpath = at;
    if (pc->mlen)
        memcpy(at, pc->mpath, pc->mlen);
    at += pc->mlen;
    cp->m = *pc->m;
    struct pt_route_match *m = &cp->m;
    rebase(&m->splat, pc->mpath, pc->mlen, mpath, &at);
    for (size_t i = 0; i < m->n_params && i < PT_ROUTE_MAX_PARAMS; i++)
        rebase(&m->param_values[i], pc->mpath, pc->mlen, mpath, &at);
    for (size_t i = 0; i < m->n_captures && i < PT_ROUTE_MAX_CAPTURES; i++)
        rebase(&m->captures[i], pc->mpath, pc->mlen, mpath, &at);
    cp->pc = (struct pt_pipeline_ctx){.h = &cp->h,
                                      .m = &cp->m,
                                      .mpath = mpath,
                                      .mlen = pc->mlen,
                                      .query = keep(&at, pc->query),
                                      .is_acme = pc->is_acme};
}

void pt_pipeline_run(struct pt_req *r, const struct pt_req_head *h)
{
    struct pt_conn *c = r->c;
    struct pt_worker *w = c->w;
    struct pt_wsnap *ws = r->ws;
    struct pt_str host = h->authority, query = h->query;
    ssize_t plen = pt_path_normalize(h->path.p, h->path.n, w->path_buf, w->path_cap);
    if (plen < 0) {
        pt_pipeline_fail(r, 400, true);
        return;
    }
    if (is_acme_challenge(w->path_buf, (size_t)plen) && answer_acme(r, w->path_buf, (size_t)plen))
        return;
    const struct pt_site *site = pt_router_site(ws->s->router, host.p ? host.p : "", host.n);
    r->site = pt_router_site_cfg(site); /* its errors: pages serve a 404 or 405 too */
    struct pt_route_match m;
    int mismatch = 0;
    const struct pt_route_cfg *route = NULL;
    /* Netlify rules (routes with nf) may decline (conditions, shadowing): matching goes on
       with the next route. A local 200 rewrite re-runs matching once with the new path, past
       every Netlify rule (rules do not chain). */
    static __thread char rw_buf[8192], rw_path[8192];
    const char *mpath = w->path_buf;
    size_t mlen = (size_t)plen, at = 0;
    bool rewritten = false;
    /* One per request: the Country= lookup it caches serves every rule tried. */
    struct pt_nf_req nq = {.site = pt_router_site_cfg(site),
                           .h = h,
                           .peer = r->peer,
                           .is_tls = r->is_tls,
                           .host = host,
                           .query = query,
                           .cfg = ws->s->cfg,
                           .geoip = ws->s->res.geoip};
    while (site) {
        int mm = 0;
        route = pt_router_match_from(ws->s->router, site, h->method_id, h->method, mpath, mlen, &m,
                                     &mm, &at);
        mismatch |= mm;
        if (!route || !route->nf)
            break;
        if (rewritten || !pt_nf_rule_applies(&nq, route, mpath, mlen, &m)) {
            at++;
            continue;
        }
        if (route->action != PT_ACTION_RESPOND || route->respond.status != 200)
            break;
        ssize_t n = pt_route_expand(pt_nf_rule_to(route), &m, rw_buf, sizeof(rw_buf) - 1);
        const char *qm = n > 0 ? memchr(rw_buf, '?', (size_t)n) : NULL;
        size_t pn = n > 0 ? (qm ? (size_t)(qm - rw_buf) : (size_t)n) : 0;
        ssize_t rl = pn ? pt_path_normalize(rw_buf, pn, rw_path, sizeof(rw_path)) : -1;
        if (rl <= 0) {
            pt_conn_plan_discard(r);
            pt_pipeline_fail(r, 500, false);
            return;
        }
        if (qm)
            query = (struct pt_str){qm + 1, (size_t)n - pn - 1};
        mpath = rw_path;
        mlen = (size_t)rl;
        at = 0;
        rewritten = true;
    }
    if (!route) {
        pt_conn_plan_discard(r);
        pt_pipeline_fail(r, mismatch ? 405 : 404, false);
        return;
    }
    r->route = route;
    if (r->is_ext_connect && route->action != PT_ACTION_PROXY) {
        /* An HTTP/2 WebSocket (extended CONNECT) only opens a tunnel to a target: a file, a
           redirect or a fixed answer cannot be one. */
        pt_conn_plan_discard(r);
        pt_pipeline_fail(r, 405, false);
        return;
    }
    struct pt_pipeline_ctx pc = {.h = h,
                                 .m = &m,
                                 .mpath = mpath,
                                 .mlen = mlen,
                                 .query = query,
                                 .is_acme = r->site->https_redirect && !r->is_tls &&
                                            is_acme_challenge(w->path_buf, (size_t)plen)};
    if (route->no_guards || run_guards(r, &pc, PT_GUARD_STEP_NONE) == PT_OK)
        run_handler(r, &pc); /* else refused (answered), or waiting for a guard */
}
