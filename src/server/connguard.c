/*
 * connguard.c - the guards that act on connections rather than on one request's content:
 *
 *   accept ─► listener ip: rules (socket peer) ─► max_connections_per_client ─► [TLS] ...
 *   pipeline guards ─► max_requests_per_client (client behind trusted_proxies) ─► IP rules ...
 *
 * At accept, only the socket peer is known: X-Forwarded-For comes later, so trusted_proxies
 * does not apply to a listener's ip: rules or to the connection cap. A refusal there closes
 * the socket before a byte is read or a TLS handshake is spent on it. IP rules run first, so
 * a refused address takes no count.
 *
 * The counts live in guard/connlimit.c's table, shared by every worker (a client's
 * connections spread over workers by SO_REUSEPORT). The connection count is taken at accept
 * and given back at close (c->cl_key); the in-flight count is taken by the first guard of the
 * pipeline and given back when the request ends, whichever protocol carried it (an HTTP/2
 * stream is a request in flight). The in-flight cap uses the client behind trusted_proxies,
 * as the other guards do: behind a CDN or load balancer every connection's peer is the
 * balancer, and a cap on it would refuse everyone at once.
 *
 * Over the in-flight cap the answer is 429 (RFC 6585 §4: this client sent too many), not
 * 503: a 503 says the server is unwell, which load balancers and CDNs count against the
 * origin and retry elsewhere, while the refusal is about one client's behaviour.
 *
 * Slow clients (pt_credit, connguard.h) are judged where the waiting happens: the head's
 * deadline in conn.c, the body in h1_stream.c, the response in conn.c's flush; this file only
 * counts and logs them.
 */
#include "server/connguard.h"

#include <stdio.h>
#include <string.h>

#include "core/counters.h"
#include "core/log.h"
#include "guard/connlimit.h"
#include "guard/ip.h"
#include "handler/geoip.h"
#include "handler/handler.h"
#include "server/conn.h"
#include "server/pipeline.h"
#include "server/worker.h"

static const char *peer_text(const struct pt_sockaddr *peer, char *buf, size_t n)
{
    if (!peer || !pt_sock_ntop(&peer->u.sa, buf, n))
        snprintf(buf, n, "-");
    return buf;
}

/* Whether the listener's rules let peer in (the country looked up only when they name one). */
static bool accept_ip_ok(struct pt_worker *w, const struct pt_ip_cfg *ip,
                         const struct pt_sockaddr *peer)
{
    struct pt_ip_addr a;
    enum pt_ip_verdict v;
    if (pt_ip_addr_from_sockaddr(&peer->u.sa, &a) < 0) {
        v = PT_IP_NOT_ALLOWED;
    } else {
        char cc[3] = "";
        const struct pt_geoip *g = w->ws ? w->ws->s->res.geoip : NULL;
        if ((ip->n_allow_cc || ip->n_deny_cc) && !(g && pt_geoip_country(g, &peer->u.sa, cc)))
            cc[0] = '\0';
        v = pt_ip_rules_check(ip->rules, &a, cc);
    }
    if (v == PT_IP_PASS)
        return true;
    pt_ctr_add_self(PT_CTR_GUARD_IP_ACCEPT, 1);
    char text[64];
    pt_log_ratelimited(PT_LOG_INFO, "guard ip (accept): refused client %s: %s (rules at line %d)",
                       peer_text(peer, text, sizeof text), pt_ip_verdict_text(v), ip->pos.line);
    return false;
}

bool pt_connguard_accept(struct pt_worker *w, const struct pt_config *cfg, uint8_t idx,
                         const struct pt_sockaddr *peer, uint64_t *key)
{
    *key = 0;
    const struct pt_ip_cfg *ip = idx < cfg->n_listens ? cfg->listens[idx].ip : NULL;
    if (ip && ip->rules && !accept_ip_ok(w, ip, peer))
        return false;
    uint32_t max = cfg->limits.max_connections_per_client;
    struct pt_cl *t = pt_guard_cl;
    if (!max || !t)
        return true;
    uint64_t k = pt_cl_key(t, &peer->u.sa);
    if (!k)
        return true;
    enum pt_cl_verdict v = pt_cl_take(t, k, PT_CL_CONN, max);
    if (v == PT_CL_TAKEN)
        *key = k;
    if (v != PT_CL_OVER)
        return true;
    pt_ctr_add_self(PT_CTR_GUARD_CONN_LIMITED, 1);
    char text[64];
    pt_log_ratelimited(PT_LOG_INFO,
                       "guard connection_limit: refused a connection from %s: "
                       "max_connections_per_client reached",
                       peer_text(peer, text, sizeof text));
    return false;
}

void pt_connguard_conn_end(uint64_t key)
{
    if (pt_guard_cl)
        pt_cl_put(pt_guard_cl, key, PT_CL_CONN);
}

bool pt_connguard_request(struct pt_req *r, const struct pt_req_head *h)
{
    struct pt_cl *t = pt_guard_cl;
    if (!t || r->is_detached)
        return true;
    struct pt_sockaddr client;
    if (!pt_geoip_client_addr(r->cfg, r->peer, h, &client))
        client = *r->peer;
    uint64_t k = pt_cl_key(t, &client.u.sa);
    if (!k)
        return true;
    enum pt_cl_verdict v = pt_cl_take(t, k, PT_CL_REQ, r->cfg->limits.max_requests_per_client);
    if (v == PT_CL_TAKEN)
        r->cl_req_key = k;
    if (v != PT_CL_OVER)
        return true;
    pt_ctr_add_self(PT_CTR_GUARD_CONN_LIMITED, 1);
    char text[64];
    pt_log_ratelimited(PT_LOG_INFO,
                       "request %s: refused by connection_limit: client %s has "
                       "max_requests_per_client in flight",
                       r->request_id, peer_text(&client, text, sizeof text));
    pt_conn_plan_discard(r);
    pt_pipeline_fail(r, 429, false);
    return false;
}

void pt_connguard_request_end(struct pt_req *r)
{
    if (pt_guard_cl)
        pt_cl_put(pt_guard_cl, r->cl_req_key, PT_CL_REQ);
    r->cl_req_key = 0;
}

void pt_connguard_slow(const char *what, uint64_t conn_id, const struct pt_sockaddr *peer)
{
    pt_ctr_add_self(PT_CTR_GUARD_SLOW_CLIENT, 1);
    char text[64];
    pt_log_ratelimited(PT_LOG_INFO, "guard slow_client: connection %llu from %s: %s too slow",
                       (unsigned long long)conn_id, peer_text(peer, text, sizeof text), what);
}
