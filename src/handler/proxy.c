/*
 * proxy.c - forwards a request to an upstream target and streams the response back: the HTTP
 * half of proxying (heads, bodies, the exchange's timeouts). Which upstream and target, the
 * connection (pooled or new), retries, the max_pending queue and the outcome that feeds
 * passive health are the attempt's (upstream/attempt.h), embedded in the request as r->at;
 * it calls back here through attempt_ops (readiness, timeouts, end of a queue wait, cookie
 * affinity).
 *
 * An upstream whose protocol is h2 or h2c is driven by proxy_h2.c instead (r->is_h2_upstream,
 * one test at the top of pt_proxy_run): the start below, the request head and the response
 * head stage are shared with it (proxy_internal.h).
 *
 * One request drives one upstream connection at a time. The client side is the request's
 * stream (http/stream.h): the proxy never learns which protocol carries the request. The
 * upstream socket's events and the attempt's timers wake the stream (resume), which calls
 * pt_proxy_run(): a pump that makes every move currently possible and returns when each
 * direction waits on a socket or on the other side.
 *
 *   stream read_body --> [request body view] --writev(uout + view)--> upstream
 *   stream send_borrowed <-- [response body slice of u->in] <--u->in-- upstream
 *
 * Bodies are never copied: the request body is a view of the stream's input, written upstream
 * after the framing bytes (head, chunk-size lines) in one writev; a response body slice of
 * u->in is lent to the stream, and u->in is not read again until the stream's flush says the
 * client took it. Each direction holds at most one buffer of data, so a slow reader stops the
 * reads on the other side (back-pressure) instead of growing memory. Chunked bodies are decoded
 * in place (the upstream's here, the client's by its stream) and framed again by whoever
 * writes them; a response without a length goes to the stream as a head of unknown length,
 * which HTTP/1.1 frames in chunks so the client's connection survives. Chunk extensions never
 * cross the proxy. Trailer fields do, both ways (gRPC's status travels in them): the
 * upstream's, kept by the chunked decoder, go to the stream's send_trailers (HTTP/2: a
 * trailing HEADERS frame; HTTP/1.1: the last chunk, or dropped when the client's response has
 * a length), and the client's (req_trailers) go in the last chunk of the body sent upstream.
 * A trailer is a smuggling vector when a hop merges it into the head, so each side keeps only
 * what pt_trailer_field_ok allows: a valid name and value, and none of the fields that frame,
 * route or qualify a message (Content-Length, Transfer-Encoding, Host, Connection and the
 * other fields RFC 9110 §6.5.1 keeps out of trailers).
 *
 * A WebSocket upgrade (RFC 6455 §4.1) goes upstream with its Connection/Upgrade fields on a
 * connection that is never pooled; the target's 101 turns the exchange into a tunnel
 * (PT_PS_TUNNEL, tunnel_run): raw bytes both ways with the same one-buffer-per-direction
 * back-pressure, through the stream's tunnel operations, until either side closes or the
 * tunnel's idle timeout (limits.tunnel_timeout, on the upstream connection's timer) passes.
 * An HTTP/2 client asks for the same with an extended CONNECT (RFC 8441, r->is_ext_connect):
 * it goes upstream as the same GET with Upgrade, under a Sec-WebSocket-Key of ours (the client
 * has none), and the target's 101 is checked against that key and answered 200 (RFC 8441 §5).
 *
 * Failure policy (contract, "Errors Portico writes"): refused, reset or malformed -> 502; no
 * response head within the route's timeout -> 504 (for a gRPC call, the timeout is its
 * grpc-timeout when that is shorter, and the answers are gRPC statuses, respond.c). That timeout (and per_try_timeout) starts
 * when the whole request has been sent: while the pump waits on the client for body bytes no
 * upstream timer runs, and the client's body_timeout answers 408 if it stalls. What is retried
 * and where is decided by pt_attempt_failed (attempt.c says the policy); on PT_OK the exchange
 * is rewound (restart_request) and the pump starts over on the new connection. Once a response
 * head has gone to the client a failure can only close the client connection.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"
#include "core/sock.h"
#include "core/time.h"
#include "handler/compress.h"
#include "handler/geoip.h"
#include "handler/netlify_rules.h"
#include "handler/resp_head.h"
#include "handler/handler.h"
#include "handler/websocket.h"
#include "handler/proxy_internal.h"
#include "handler/cache.h"
#include "tls/tls_transport.h"
#include "upstream/attempt.h"

#define MAX_CONN_TOKENS 16
#define UOUT_SLACK 64 /* room kept after the head for chunk framing */

/* Pump results at or above this are an upstream failure: FAILED + enum pt_fail_kind. */
#define FAILED 1000

/* ---- header classification ---- */

/* Hop-by-hop and rebuilt headers (RFC 9110 §7.6.1): never forwarded as received. */
static bool is_hop_by_hop(struct pt_str n)
{
    switch (n.n) {
    case 2:
        return PT_STR_CASEEQ_LIT(n, "te");
    case 7:
        return PT_STR_CASEEQ_LIT(n, "trailer") || PT_STR_CASEEQ_LIT(n, "upgrade");
    case 10:
        return PT_STR_CASEEQ_LIT(n, "connection") || PT_STR_CASEEQ_LIT(n, "keep-alive");
    case 14:
        return PT_STR_CASEEQ_LIT(n, "content-length");
    case 17:
        return PT_STR_CASEEQ_LIT(n, "transfer-encoding");
    default:
        break;
    }
    return n.n > 6 && strncasecmp(n.p, "proxy-", 6) == 0;
}

struct conn_tokens {
    struct pt_str t[MAX_CONN_TOKENS];
    size_t n;
};

/* The next element of a comma-separated field value from *p (RFC 9110 §5.6.1), blanks
   skipped; false at the end. */
static bool next_token(const char **p, const char *end, struct pt_str *t)
{
    while (*p < end && (**p == ' ' || **p == '\t' || **p == ','))
        (*p)++;
    const char *s = *p;
    while (*p < end && **p != ',' && **p != ' ' && **p != '\t')
        (*p)++;
    *t = (struct pt_str){s, (size_t)(*p - s)};
    return *p > s;
}

/* Collects the options of every Connection header: headers they name are hop-by-hop. */
static void connection_tokens(const struct pt_field *hs, size_t nh, struct conn_tokens *ct)
{
    ct->n = 0;
    for (size_t i = 0; i < nh; i++) {
        if (!PT_STR_CASEEQ_LIT(hs[i].name, "connection"))
            continue;
        const char *p = hs[i].value.p, *end = p + hs[i].value.n;
        while (ct->n < MAX_CONN_TOKENS && next_token(&p, end, &ct->t[ct->n]))
            ct->n++;
    }
}

static bool in_tokens(const struct conn_tokens *ct, struct pt_str n)
{
    for (size_t i = 0; i < ct->n; i++)
        if (pt_str_caseeq(ct->t[i], n.p, n.n))
            return true;
    return false;
}

/* Whether a comma-separated field value v names the token tok (ASCII case-insensitive). */
static bool names_token(struct pt_str v, const char *tok)
{
    const char *p = v.p, *end = v.p + v.n;
    struct pt_str t;
    while (next_token(&p, end, &t))
        if (pt_str_caseeq(t, tok, strlen(tok)))
            return true;
    return false;
}

/* Whether n is a conditional request field (RFC 9110 §13.1). */
static bool is_conditional(struct pt_str n)
{
    return PT_STR_CASEEQ_LIT(n, "if-none-match") || PT_STR_CASEEQ_LIT(n, "if-modified-since") ||
           PT_STR_CASEEQ_LIT(n, "if-match") || PT_STR_CASEEQ_LIT(n, "if-unmodified-since") ||
           PT_STR_CASEEQ_LIT(n, "if-range");
}

/* Whether an Upgrade field's value names websocket among its protocols (RFC 9110 §7.8). */
static bool names_websocket(struct pt_str v)
{
    return names_token(v, "websocket");
}

/* ---- building heads ---- */

struct out {
    char *p;
    size_t n, cap;
    bool overflow;
};

static void put(struct out *o, const void *s, size_t n)
{
    if (o->overflow || o->cap - o->n < n) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
}

#define PUT_LIT(o, lit) put((o), (lit), sizeof(lit) - 1)

static void put_str(struct out *o, struct pt_str s)
{
    put(o, s.p, s.n);
}

static void put_header(struct out *o, const char *name, size_t nlen, const char *val, size_t vlen)
{
    put(o, name, nlen);
    PUT_LIT(o, ": ");
    put(o, val, vlen);
    PUT_LIT(o, "\r\n");
}

static void put_u64(struct out *o, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
    put(o, tmp, (size_t)n);
}

static void put_ops(struct out *o, const struct pt_header_ops *ops)
{
    for (size_t i = 0; i < ops->n_set; i++)
        put_header(o, ops->set[i].name, ops->set[i].name_len, ops->set[i].value,
                   ops->set[i].value_len);
    for (size_t i = 0; i < ops->n_add; i++)
        put_header(o, ops->add[i].name, ops->add[i].name_len, ops->add[i].value,
                   ops->add[i].value_len);
}

static bool has_template(const char *s)
{
    return strchr(s, ':') || strchr(s, '$');
}

/* Writes the path (and query) to send upstream into o. */
static int build_path(struct out *o, const struct pt_req *r, const struct pt_route_match *m,
                      const char *path, size_t path_len, struct pt_str query)
{
    const struct pt_proxy_cfg *pc = &r->route->proxy;
    char tmp[8192];
    /* A Netlify proxy rule's URL path is the whole target path, template or not. */
    if (pc->to_path && pc->to_path[0] && (has_template(pc->to_path) || r->route->nf)) {
        ssize_t n = pt_route_expand(pc->to_path, m, tmp, sizeof(tmp));
        if (n < 0)
            return 414;
        put(o, tmp, (size_t)n);
        if (memchr(tmp, '?', (size_t)n))
            return PT_OK;
    } else {
        const char *prefix = pc->to_path && pc->to_path[0] ? pc->to_path : r->at.target->base_path;
        put(o, prefix, strlen(prefix));
        const char *rest = path;
        size_t rest_len = path_len;
        if (pc->strip_prefix && m->strip_len <= path_len) {
            rest += m->strip_len;
            rest_len -= m->strip_len;
        }
        if (rest_len == 0 || rest[0] != '/') {
            if (rest_len == 0) {
                rest = "/";
                rest_len = 1;
            } else {
                PUT_LIT(o, "/");
            }
        }
        ssize_t n = pt_path_encode(rest, rest_len, tmp, sizeof(tmp));
        if (n < 0)
            return 414;
        put(o, tmp, (size_t)n);
    }
    if (query.p) {
        PUT_LIT(o, "?");
        put_str(o, query);
    }
    return PT_OK;
}

static const struct pt_listen_cfg *listen_of(const struct pt_req *r)
{
    return r->listen_idx < r->cfg->n_listens ? &r->cfg->listens[r->listen_idx] : NULL;
}

static bool is_client_cert_header(const struct pt_req *r, struct pt_str n)
{
    const struct pt_listen_cfg *l = listen_of(r);
    if (!l)
        return false;
    return (l->client_subject_header &&
            pt_str_caseeq(n, l->client_subject_header, strlen(l->client_subject_header))) ||
           (l->client_fingerprint_header &&
            pt_str_caseeq(n, l->client_fingerprint_header, strlen(l->client_fingerprint_header)));
}

/* The verified client certificate's subject and fingerprint, in the headers the listener
   names (mTLS). Nothing when no certificate was verified. */
static void put_client_cert(struct out *o, const struct pt_req *r)
{
    const struct pt_listen_cfg *l = listen_of(r);
    if (!l || !r->tls || !pt_tls_peer_verified(r->tls))
        return;
    char subject[512], fp[65];
    if (l->client_subject_header && pt_tls_peer_subject(r->tls, subject, sizeof(subject)) >= 0)
        put_header(o, l->client_subject_header, strlen(l->client_subject_header), subject,
                   strnlen(subject, sizeof(subject)));
    if (l->client_fingerprint_header && pt_tls_peer_fingerprint(r->tls, fp) >= 0)
        put_header(o, l->client_fingerprint_header, strlen(l->client_fingerprint_header), fp,
                   strnlen(fp, sizeof(fp)));
}

/* A request asked for a WebSocket upgrade: decides whether it goes upstream as one (a GET
   whose Connection names upgrade, RFC 6455 §4.1, on a protocol that can carry a tunnel, or an
   HTTP/2 extended CONNECT), and answers 403 (the route says websocket: false) or 503
   (limits.max_tunnels reached). Anything else goes as a plain request, its Upgrade dropped.
   The upstream connection of an upgrade is always a new one: it never came from the pool and
   never goes back to it. */
static int want_upgrade(struct pt_req *r, const struct conn_tokens *ct)
{
    if (!r->stream->tunnel || r->is_h2_upstream) /* an HTTP/2 target takes no HTTP/1.1 upgrade */
        return r->is_ext_connect ? 501 : PT_OK;
    if (!r->is_ext_connect && (r->method_id != PT_METHOD_GET || r->minor_version != 1 ||
                               !in_tokens(ct, (struct pt_str){"upgrade", 7})))
        return PT_OK;
    if (r->route->proxy.refuses_websocket)
        return 403;
    if (*r->env->n_tunnels >= r->cfg->limits.max_tunnels)
        return 503;
    r->is_upgrade = true;
    r->at.is_fresh_only = true;
    return PT_OK;
}

int pt_proxy_request_head(struct pt_req *r, const struct pt_req_head *h,
                          const struct pt_route_match *m, const char *path, size_t path_len,
                          struct pt_str query)
{
    const struct pt_proxy_cfg *pc = &r->route->proxy;
    const struct pt_config *cfg = r->cfg;
    struct out o = {r->uout.data, 0, r->uout.cap - UOUT_SLACK, false};

    put_str(&o, h->method);
    PUT_LIT(&o, " ");
    int rc = build_path(&o, r, m, path, path_len, query);
    if (rc != PT_OK)
        return rc;
    PUT_LIT(&o, " HTTP/1.1\r\nHost: ");
    if (pc->preserve_host && r->host[0])
        put(&o, r->host, strlen(r->host));
    else
        put(&o, r->at.target->host_header, strlen(r->at.target->host_header));
    PUT_LIT(&o, "\r\n");

    struct conn_tokens ct;
    connection_tokens(h->fields, h->n_fields, &ct);
    bool trusted = pt_config_is_trusted_proxy(cfg, &r->peer->u.sa);
    struct pt_str xff[8];
    size_t n_xff = 0;
    const struct pt_header_ops *ops = &pc->request;
    bool asks_websocket = r->is_ext_connect, has_ws_version = false, wants_trailers = false;
    for (size_t i = 0; i < h->n_fields; i++) {
        struct pt_str n = h->fields[i].name;
        if (is_hop_by_hop(n) || in_tokens(&ct, n)) {
            if (n.n == 7 && PT_STR_CASEEQ_LIT(n, "upgrade") && names_websocket(h->fields[i].value))
                asks_websocket = true;
            else if (n.n == 2 && r->is_h2_upstream && names_token(h->fields[i].value, "trailers"))
                wants_trailers = true; /* HTTP/2 keeps "TE: trailers" (RFC 9113 §8.2.2) */
            continue;
        }
        switch (n.n) {
        case 4:
            if (PT_STR_CASEEQ_LIT(n, "host"))
                continue;
            break;
        case 6:
            if (PT_STR_CASEEQ_LIT(n, "expect") ||
                (pc->strip_credentials && PT_STR_CASEEQ_LIT(n, "cookie")))
                continue;
            break;
        case 12:
            if (PT_STR_CASEEQ_LIT(n, "x-request-id"))
                continue;
            break;
        case 13:
            if (pc->strip_credentials && PT_STR_CASEEQ_LIT(n, "authorization"))
                continue;
            break;
        case 15:
            if (PT_STR_CASEEQ_LIT(n, "x-forwarded-for")) {
                /* Believed only from trusted peers; else replaced by the peer address. */
                if (trusted && h->fields[i].value.n && n_xff < (size_t)PT_ARRAY_LEN(xff))
                    xff[n_xff++] = h->fields[i].value;
                continue;
            }
            break;
        case 16:
            if (PT_STR_CASEEQ_LIT(n, "x-forwarded-host"))
                continue;
            break;
        case 17:
            if (PT_STR_CASEEQ_LIT(n, "x-forwarded-proto") ||
                (r->is_ext_connect && PT_STR_CASEEQ_LIT(n, "sec-websocket-key")))
                continue; /* an HTTP/2 client's key would be nobody's: ours goes */
            break;
        case 21:
            has_ws_version |= PT_STR_CASEEQ_LIT(n, "sec-websocket-version");
            break;
        default:
            break;
        }
        if (pt_kv_has(ops->remove, ops->n_remove, n) || pt_kv_has(ops->set, ops->n_set, n))
            continue;
        if (r->ureq_drop_conditionals && (is_conditional(n) || PT_STR_CASEEQ_LIT(n, "range")))
            continue;
        if (is_client_cert_header(r, n))
            continue; /* only Portico may say who the client certificate belongs to */
        put_str(&o, n);
        PUT_LIT(&o, ": ");
        put_str(&o, h->fields[i].value);
        PUT_LIT(&o, "\r\n");
    }
    char peer[64];
    size_t pn = pt_sock_ntop(&r->peer->u.sa, peer, sizeof(peer));
    PUT_LIT(&o, "X-Forwarded-For: ");
    for (size_t i = 0; i < n_xff; i++) {
        put_str(&o, xff[i]);
        PUT_LIT(&o, ", ");
    }
    put(&o, peer, pn);
    PUT_LIT(&o, "\r\nX-Forwarded-Proto: ");
    if (r->is_tls)
        PUT_LIT(&o, "https\r\n");
    else
        PUT_LIT(&o, "http\r\n");
    put_client_cert(&o, r);
    if (r->host[0]) {
        PUT_LIT(&o, "X-Forwarded-Host: ");
        put(&o, r->host, strlen(r->host));
        PUT_LIT(&o, "\r\n");
    }
    PUT_LIT(&o, "X-Request-Id: ");
    put(&o, r->request_id, r->request_id_len);
    PUT_LIT(&o, "\r\n");
    /* gRPC targets insist on "TE: trailers". An HTTP/2 client's TE stays in its protocol
       layer, so a gRPC request says it for the client. */
    if (wants_trailers || (r->is_grpc && r->is_h2_upstream))
        PUT_LIT(&o, "TE: trailers\r\n");
    if (asks_websocket) {
        rc = want_upgrade(r, &ct);
        if (rc != PT_OK)
            return rc;
        if (r->is_upgrade)
            PUT_LIT(&o, "Connection: upgrade\r\nUpgrade: websocket\r\n");
        if (r->is_ext_connect) { /* RFC 8441 §5: the key is the proxy's to make */
            const struct pt_handler_env *env = r->env;
            pt_ws_key(env->random(env->random_arg), env->random(env->random_arg), r->ws_key);
            PUT_LIT(&o, "Sec-WebSocket-Key: ");
            put(&o, r->ws_key, PT_WS_KEY_LEN);
            PUT_LIT(&o, "\r\n");
            if (!has_ws_version)
                PUT_LIT(&o, "Sec-WebSocket-Version: 13\r\n");
        }
    }
    put_ops(&o, ops);
    if (r->ureq_extra.n)
        put_str(&o, r->ureq_extra);
    if (r->ureq_auth.n)
        put_str(&o, r->ureq_auth);
    if (r->req_body.is_chunked) {
        PUT_LIT(&o, "Transfer-Encoding: chunked\r\n");
    } else if (h->content_length >= 0) {
        PUT_LIT(&o, "Content-Length: ");
        put_u64(&o, (uint64_t)h->content_length);
        PUT_LIT(&o, "\r\n");
    }
    PUT_LIT(&o, "\r\n");
    if (o.overflow)
        return 431;
    r->uout.head = 0;
    r->uout.tail = (uint32_t)o.n;
    r->uhead_len = (uint32_t)o.n;
    return PT_OK;
}

/* Gives the client's stream the response head made from the upstream's: the upstream's fields
   less hop-by-hop ones, its Server and X-Request-Id, then (final heads) the response-header
   stage and our framing: the upstream's length, or none known (streamed: is_chunked, which
   the stream frames as its protocol does). */
int pt_proxy_response_head(struct pt_req *r, const struct pt_h1_response *resp, bool interim,
                           bool streamed)
{
    struct conn_tokens ct;
    connection_tokens(resp->headers, resp->num_headers, &ct);
    /* An extended CONNECT's tunnel opens with a 200, which carries no Accept (RFC 8441 §5). */
    bool is_ext = resp->status == 101 && r->is_ext_connect;
    struct pt_resp_head h;
    pt_resp_head_init(&h, is_ext ? 200 : resp->status);
    h.reason = resp->reason;
    for (size_t i = 0; i < resp->num_headers; i++) {
        struct pt_str n = resp->headers[i].name;
        if (is_hop_by_hop(n) || in_tokens(&ct, n) || PT_STR_CASEEQ_LIT(n, "server") ||
            PT_STR_CASEEQ_LIT(n, "x-request-id") ||
            (is_ext && PT_STR_CASEEQ_LIT(n, "sec-websocket-accept")))
            continue;
        pt_resp_add(&h, n, resp->headers[i].value);
    }
    if (resp->status == 101 && !is_ext) { /* the switch is ours to say too (RFC 9110 §7.8) */
        pt_resp_add(&h, (struct pt_str){"Connection", 10}, (struct pt_str){"upgrade", 7});
        pt_resp_add(&h, (struct pt_str){"Upgrade", 7}, (struct pt_str){"websocket", 9});
    }
    if (!interim) {
        /* The framing first: compression reads the announced length, and a compressed body
           is streamed whatever the upstream announced. */
        h.is_chunked = streamed;
        if (!h.is_chunked && resp->framing.content_length >= 0 && !resp->framing.is_chunked &&
            resp->status != 204 && !(resp->status >= 100 && resp->status < 200))
            h.content_length = resp->framing.content_length;
        /* The cache decides (and may answer itself), its tee goes on the chain under the
           compression filter, and it keeps the head compression made. */
        if (r->cache && pt_cache_response(r, resp->status, &h)) {
            pt_attempt_end(&r->at, resp->status >= 500 ? PT_OUTCOME_STATUS_5XX : PT_OUTCOME_OK);
            pt_attempt_release(&r->at, false);
            r->pstate = PT_PS_NONE;
            if (!r->req_body.is_done)
                r->is_keepalive = false;
            return PT_DONE;
        }
        if (resp->status != 101)
            pt_compress_head(r, &h);
        if (r->cache)
            pt_cache_response_filters(r, &h);
        pt_resp_head_stage(r, &h, true);
    }
    return r->stream->send_head(r, &h) < 0 ? PT_ERR : PT_OK;
}

/* ---- the attempt's callbacks and failures ---- */

/* A response slice lent to the stream lives in the upstream connection's buffer, which goes
   away with the connection: that only happens when the exchange ends (the slice went out) or
   fails after its head went out, where the stream is reset, which drops the slice. */
static void release_upstream(struct pt_req *r, bool reusable)
{
    pt_attempt_release(&r->at, reusable);
}

/* Appends "Set-Cookie: name=value; Path=/; HttpOnly; SameSite=Lax" to the response's extra
   lines (split and cookie affinity). */
static void add_set_cookie(struct pt_req *r, const char *name, const char *value, size_t vlen)
{
    size_t room = sizeof(r->set_cookie) - r->set_cookie_len;
    int n =
        snprintf(r->set_cookie + r->set_cookie_len, room,
                 "Set-Cookie: %s=%.*s; Path=/; HttpOnly; SameSite=Lax\r\n", name, (int)vlen, value);
    if (n > 0 && (size_t)n < room)
        r->set_cookie_len += (uint16_t)n;
}

/* Sends Portico's error page instead of a proxied response (nothing was sent yet). */
void pt_proxy_answer_locally(struct pt_req *r, int status)
{
    pt_attempt_leave_queue(&r->at);
    pt_attempt_end(&r->at, PT_OUTCOME_OK); /* whatever is still open was not the target's fault */
    r->pstate = PT_PS_NONE;
    if (!r->req_body.is_done)
        r->is_keepalive = false; /* the rest of the request body is never read */
    if (r->cache && status >= 500 && pt_cache_answer_error(r, status))
        return;                                 /* a stale stored response (stale-if-error) */
    pt_respond_error(r, status, r->wants_json); /* the stream sends it as a local answer */
}

/* Rewinds the exchange for another attempt: the head is still at the front of uout. */
static void restart_request(struct pt_req *r)
{
    r->uout.head = 0;
    r->uout.tail = r->uhead_len;
    r->head_sent = false;
    r->resp_head_seen = false;
    r->resp_scan = 0;
    pt_body_free_trailers(&r->resp_body);
    memset(&r->resp_body, 0, sizeof(r->resp_body));
}

void pt_proxy_failed(struct pt_req *r, enum pt_fail_kind kind)
{
    int rc = pt_attempt_failed(&r->at, kind, r->response_started);
    if (rc == PT_OK)
        restart_request(r);
    else if (rc == PT_ERR)
        r->stream->reset(r);
    else
        pt_proxy_answer_locally(r, rc);
}

static void on_upstream_ready(void *owner)
{
    struct pt_req *r = owner;
    r->stream->resume(r);
}

static void on_upstream_timeout(void *owner)
{
    struct pt_req *r = owner;
    struct pt_uconn *u = r->at.u;
    if (r->pstate == PT_PS_TUNNEL) {
        r->is_tunnel_idle = true; /* tunnel_timeout: the pump ends it, in the stream's step */
        r->stream->resume(r);
        return;
    }
    if (u->is_connecting || u->t.is_handshaking)
        pt_proxy_failed(r, PT_FAIL_CONNECT_TIMEOUT);
    else if (!r->resp_head_seen)
        pt_proxy_failed(r, PT_FAIL_TIMEOUT);
    else
        pt_proxy_failed(r, PT_FAIL_RESET); /* idle mid-body: the response cannot be completed */
    r->stream->resume(r);
}

void pt_proxy_on_dequeued(void *owner, int rc)
{
    struct pt_req *r = owner;
    r->pstate = PT_PS_ACTIVE;
    if (rc != PT_OK)
        pt_proxy_answer_locally(r, rc);
    r->stream->resume(r);
}

void pt_proxy_on_affinity(void *owner, const char *token, size_t len)
{
    add_set_cookie(owner, PT_AFFINITY_COOKIE, token, len);
}

static const struct pt_attempt_ops attempt_ops = {
    .ready = on_upstream_ready,
    .timeout = on_upstream_timeout,
    .dequeued = pt_proxy_on_dequeued,
    .set_affinity = pt_proxy_on_affinity,
};

/* ---- upstream I/O (plain or TLS) ---- */

/* Drives the upstream TLS handshake. Returns PT_OK when done, PT_AGAIN, or PT_ERR. */
static int upstream_handshake(struct pt_req *r, struct pt_uconn *u)
{
    int rc = pt_transport_handshake(&u->t);
    if (rc == PT_OK || rc == PT_AGAIN)
        return rc;
    pt_log_ratelimited(PT_LOG_WARN, "request %s: TLS to upstream \"%s\" target %s failed: %s",
                       r->request_id, r->at.ups->name, r->at.target->url,
                       pt_transport_error(&u->t));
    return PT_ERR;
}

/* ---- request direction ---- */

static void put_chunk_size(struct pt_buf *b, uint32_t n)
{
    char tmp[16];
    int k = snprintf(tmp, sizeof(tmp), "%x\r\n", n);
    bool ok = pt_buf_put(b, tmp, (size_t)k);
    PT_BUG_ON(!ok);
}

size_t pt_proxy_filter_trailers(const struct pt_req *r, const struct pt_field *f, size_t n,
                                struct pt_field *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k < PT_BODY_TRAILERS_MAX; i++) {
        if (pt_trailer_field_ok(f[i].name, f[i].value))
            out[k++] = f[i];
        else
            pt_log_debug("request %s: trailer field \"%.*s\" dropped", r->request_id,
                         (int)PT_MIN(f[i].name.n, (size_t)64), f[i].name.p);
    }
    return k;
}

/* Ends a chunked request body upstream: the last chunk, with the client's trailer fields
   (req_trailers) that may cross, then the empty line (RFC 9112 §7.1.2). Fields that do not
   fit in uout are dropped. */
static void put_last_chunk(struct pt_req *r)
{
    const struct pt_field *f;
    size_t n = r->stream->req_trailers(r, &f);
    pt_buf_compact(&r->uout);
    bool ok = pt_buf_put(&r->uout, "0\r\n", 3);
    PT_BUG_ON(!ok);
    struct pt_field keep[PT_BODY_TRAILERS_MAX];
    n = n ? pt_proxy_filter_trailers(r, f, n, keep) : 0;
    for (size_t i = 0; i < n; i++) {
        if (pt_buf_room(&r->uout) < keep[i].name.n + keep[i].value.n + 6)
            break;
        pt_buf_put(&r->uout, keep[i].name.p, keep[i].name.n);
        pt_buf_put(&r->uout, ": ", 2);
        pt_buf_put(&r->uout, keep[i].value.p, keep[i].value.n);
        pt_buf_put(&r->uout, "\r\n", 2);
    }
    ok = pt_buf_put(&r->uout, "\r\n", 2);
    PT_BUG_ON(!ok);
}

/* Takes the next request body bytes from the stream as the body view and frames them for the
   upstream. Returns PT_OK (maybe with a view), PT_AGAIN (wait for the client) or a status to
   fail with. */
static int pull_request_body(struct pt_req *r)
{
    struct pt_body *b = &r->req_body;
    struct pt_str view;
    int rc = r->stream->read_body(r, &view);
    if (rc != PT_OK)
        return rc;
    r->body_view = view.p;
    if (b->is_chunked) {
        if (view.n)
            put_chunk_size(&r->uout, (uint32_t)view.n);
        else
            put_last_chunk(r);
    }
    return PT_OK;
}

/* Writes the upstream head and body slices. Returns PT_OK (progress or waiting), or a fail
   FAILED + a pt_fail_kind for a dead upstream, or a status (4xx/5xx) to answer the client with. */
static int push_upstream(struct pt_req *r, bool *progress)
{
    struct pt_uconn *u = r->at.u;
    struct pt_body *b = &r->req_body;
    for (;;) {
        if (r->head_sent && !b->pending && !b->is_done) {
            int rc = pull_request_body(r);
            if (rc == PT_AGAIN) {
                /* Waiting on the client, whose body_timeout runs (408 when it stalls). The
                   target is not late for a request it has not had yet: no upstream timer
                   runs until the request is sent (an early response still arrives). */
                if (!r->resp_head_seen)
                    pt_timer_stop(r->env->loop, &u->timer);
                return PT_OK;
            }
            if (rc != PT_OK)
                return rc;
        }
        uint32_t ulen = pt_buf_len(&r->uout);
        uint32_t slen = r->head_sent || ulen == 0 ? b->pending : 0;
        if (ulen == 0 && slen == 0)
            return PT_OK;
        if (!u->t.can_write)
            return PT_OK;
        struct iovec iov[2];
        int n_iov = 0;
        if (ulen)
            iov[n_iov++] = (struct iovec){pt_buf_rpos(&r->uout), ulen};
        if (slen)
            iov[n_iov++] = (struct iovec){(void *)r->body_view, slen};
        ssize_t n = pt_transport_writev(&u->t, iov, n_iov, false);
        if (n == -EAGAIN)
            return PT_OK;
        if (n < 0)
            return FAILED + PT_FAIL_RESET;
        *progress = true;
        size_t k = PT_MIN((size_t)n, (size_t)ulen);
        pt_buf_consume(&r->uout, (uint32_t)k);
        if (pt_buf_len(&r->uout) == 0)
            r->head_sent = true;
        k = (size_t)n - k;
        if (k) {
            r->at.is_body_sent = true;
            r->stream->consume_body(r, k);
            r->body_view += k;
            if (b->pending == 0 && b->is_chunked) {
                pt_buf_put(&r->uout, "\r\n", 2);
                if (b->is_done)
                    put_last_chunk(r);
            }
        }
        if (r->head_sent && !b->pending && b->is_done && pt_buf_len(&r->uout) == 0) {
            /* Whole request sent: the response-head timeout (route timeout or
               per_try_timeout) starts now, and only now. */
            if (!r->resp_head_seen)
                pt_timer_set(r->env->loop, &u->timer, pt_attempt_head_timeout(&r->at));
            return PT_OK;
        }
        /* Part of the request went: the same span bounds how long the target may take to
           accept the rest (it is idle, not late, only while we wait on the client above). */
        if (!r->resp_head_seen)
            pt_timer_set(r->env->loop, &u->timer, pt_attempt_head_timeout(&r->at));
    }
}

/* ---- tunnels ---- */

/* The target switched to WebSocket (101): the 101 head (an extended CONNECT's 200) goes to the
   client, whose stream turns into a tunnel; from here tunnel_run moves bytes. A 101 we did not
   ask for, to another protocol, or (extended CONNECT) whose Sec-WebSocket-Accept does not
   answer our key, is a bad response. */
static int start_tunnel(struct pt_req *r, const struct pt_h1_response *resp, size_t hl)
{
    struct pt_uconn *u = r->at.u;
    struct pt_str up = {NULL, 0}, accept = {NULL, 0};
    for (size_t i = 0; i < resp->num_headers; i++) {
        if (PT_STR_CASEEQ_LIT(resp->headers[i].name, "upgrade"))
            up = resp->headers[i].value;
        else if (PT_STR_CASEEQ_LIT(resp->headers[i].name, "sec-websocket-accept"))
            accept = resp->headers[i].value;
    }
    if (!r->is_upgrade || !up.p || !names_websocket(up))
        return FAILED + PT_FAIL_BAD_RESPONSE;
    if (r->is_ext_connect && !pt_ws_accept_ok(r->ws_key, accept)) {
        pt_log_ratelimited(PT_LOG_WARN,
                           "request %s: upstream \"%s\" target %s: 101 without the "
                           "Sec-WebSocket-Accept of our key",
                           r->request_id, r->at.ups->name, r->at.target->url);
        return FAILED + PT_FAIL_BAD_RESPONSE;
    }
    if (r->stream->tunnel(r) < 0 || pt_proxy_response_head(r, resp, true, false) != PT_OK)
        return FAILED + PT_FAIL_BAD_RESPONSE;
    pt_buf_consume(&u->in, (uint32_t)hl);
    r->resp_head_seen = true;
    r->response_started = true;
    r->status = r->is_ext_connect ? 200 : 101;
    r->pstate = PT_PS_TUNNEL;
    r->is_tunnel = true;
    (*r->env->n_tunnels)++;
    pt_timer_set(r->env->loop, &u->timer, r->cfg->limits.tunnel_timeout_ms);
    return PT_OK;
}

/* Closes both sides of a tunnel. Logs the exchange (status 101, or 200 for an extended CONNECT)
   as it finishes. Bytes lent to the client and not taken yet are dropped: the stream is reset
   (HTTP/1.1 closes; HTTP/2 sends RST_STREAM), which also ends the proxy's side. */
static void tunnel_end(struct pt_req *r)
{
    if (r->resp_body.pending) {
        r->stream->reset(r); /* before the upstream buffer they live in goes */
        return;
    }
    (*r->env->n_tunnels)--;
    pt_attempt_end(&r->at, PT_OUTCOME_OK);
    release_upstream(r, false);
    r->resp_body.pending = 0;
    r->pstate = PT_PS_DONE;
    r->stream->finish(r);
}

/* The tunnel's pump: the client's raw bytes are written upstream from the stream's input
   (consumed only once written), the upstream's are lent to the stream as a slice of u->in
   (read again only once flushed). One buffer each way: a side that does not take bytes stops
   the reads on the other. Either side's EOF or error, or tunnel_timeout without a byte either
   way, ends it. */
static void tunnel_run(struct pt_req *r)
{
    struct pt_uconn *u = r->at.u;
    struct pt_body *b = &r->resp_body;
    for (int round = 0; round < 64; round++) {
        if (r->is_tunnel_idle)
            goto end;
        bool progress = false;
        struct pt_str v;
        int rc = r->stream->read_raw(r, &v);
        if (rc == PT_ERR || (rc == PT_OK && v.n == 0))
            goto end;
        if (rc == PT_OK && u->t.can_write) {
            struct iovec iov = {(void *)v.p, v.n};
            ssize_t n = pt_transport_writev(&u->t, &iov, 1, false);
            if (n > 0) {
                r->stream->consume_raw(r, (size_t)n);
                progress = true;
            } else if (n != -EAGAIN) {
                goto end;
            }
        }
        int fr = r->stream->flush(r);
        if (fr == PT_ERR)
            goto end;
        if (fr == PT_OK) {
            if (b->pending) {
                pt_buf_consume(&u->in, b->pending); /* the client took the slice */
                b->pending = 0;
                progress = true;
            }
            if (pt_buf_len(&u->in) == 0) {
                if (u->is_eof)
                    goto end;
                if (!u->in.data && pt_buf_alloc(&u->in, PT_BUF_LARGE) < 0)
                    goto end;
                u->in.head = u->in.tail = 0;
                ssize_t n =
                    u->t.can_read ? pt_transport_read(&u->t, u->in.data, u->in.cap) : -EAGAIN;
                if (n > 0) {
                    u->in.tail = (uint32_t)n;
                } else if (n == 0) {
                    u->is_eof = true;
                    u->t.can_read = false;
                    progress = true;
                } else if (n != -EAGAIN) {
                    goto end;
                }
            }
            if (pt_buf_len(&u->in)) {
                b->pending = pt_buf_len(&u->in);
                if (r->stream->send_borrowed(r, pt_buf_rpos(&u->in), b->pending) < 0)
                    goto end;
                progress = true;
            }
        }
        if (!progress)
            return;
        pt_timer_set(r->env->loop, &u->timer, r->cfg->limits.tunnel_timeout_ms);
    }
    r->stream->yield(r); /* a busy tunnel gives the worker's others a turn */
    return;
end:
    tunnel_end(r);
}

/* ---- response direction ---- */

static int handle_response_head(struct pt_req *r, size_t hl)
{
    struct pt_uconn *u = r->at.u;
    const struct pt_handler_env *env = r->env;
    struct pt_h1_response resp;
    memset(&resp, 0, sizeof(resp));
    resp.headers = env->hdrs;
    resp.num_headers = env->hdrs_cap;
    int rc = pt_h1_parse_response(pt_buf_rpos(&u->in), hl, &resp);
    if (rc < 0)
        return FAILED + PT_FAIL_BAD_RESPONSE;
    if (resp.status == 101)
        return start_tunnel(r, &resp, hl);
    if (r->is_ext_connect && resp.status >= 200 && resp.status < 300)
        return FAILED + PT_FAIL_BAD_RESPONSE; /* a 2xx would tell an HTTP/2 client "tunnel" */
    if (resp.status < 200) {
        /* Interim responses: 100 is ours to give (we removed Expect); others go to the client
           as they are (RFC 9110 §15.2), if its protocol has them. */
        if (resp.status != 100 && pt_proxy_response_head(r, &resp, true, false) != PT_OK)
            return FAILED + PT_FAIL_BAD_RESPONSE;
        pt_buf_consume(&u->in, (uint32_t)hl);
        return PT_OK;
    }
    r->at.head_latency_us = (env->loop->now_ms - r->at.start_ms) * 1000u;
    if (pt_attempt_may_retry_status(&r->at, resp.status, r->has_body)) {
        rc = pt_attempt_retry_status(&r->at, resp.status);
        if (rc != PT_OK)
            return rc;
        restart_request(r);
        return PT_OK;
    }
    struct pt_body *b = &r->resp_body;
    bool no_body = r->is_head || resp.status == 204 || resp.status == 304;
    if (no_body) {
        b->is_done = true;
    } else if (resp.framing.is_chunked) {
        b->is_chunked = true;
    } else if (resp.framing.content_length >= 0) {
        b->left = (uint64_t)resp.framing.content_length;
        b->is_done = b->left == 0;
    } else {
        b->is_close_delimited = true;
    }
    r->upstream_reusable = !r->is_upgrade && !resp.framing.conn_close && !b->is_close_delimited &&
                           (resp.minor_version == 1 || resp.framing.conn_keepalive);
    bool streamed = !no_body && (b->is_chunked || b->is_close_delimited);
    if (!r->req_body.is_done)
        r->is_keepalive = false; /* answered before the body ended: the rest is never read */
    rc = pt_proxy_response_head(r, &resp, false, streamed);
    if (rc == PT_DONE)
        return PT_OK; /* the cache answered: the exchange was let go */
    if (rc != PT_OK)
        return FAILED + PT_FAIL_BAD_RESPONSE;
    pt_buf_consume(&u->in, (uint32_t)hl);
    r->resp_head_seen = true;
    r->response_started = true;
    r->status = resp.status;
    pt_timer_set(env->loop, &u->timer, r->at.timeout_ms);
    if (b->is_done)
        r->stream->send_end(r);
    return PT_OK;
}

/* Ends the response body toward the client: with the upstream's trailer fields that may
   cross (a chunked response's, filtered as the request's are), else plainly. */
static void end_response(struct pt_req *r)
{
    struct pt_body *b = &r->resp_body;
    struct pt_field keep[PT_BODY_TRAILERS_MAX];
    size_t n = b->n_trailers ? pt_proxy_filter_trailers(r, b->trailers, b->n_trailers, keep) : 0;
    if (n)
        r->stream->send_trailers(r, keep, n);
    else
        r->stream->send_end(r);
}

/* Sets the next response body slice from u->in. */
static int next_response_slice(struct pt_req *r)
{
    struct pt_uconn *u = r->at.u;
    struct pt_body *b = &r->resp_body;
    uint32_t len = pt_buf_len(&u->in);
    if (len == 0 || b->pending || b->is_done)
        return PT_OK;
    if (b->is_chunked) {
        size_t dlen = len;
        ssize_t rc = pt_body_chunked_decode(b, pt_buf_rpos(&u->in), &dlen);
        if (rc == PT_H1_EBAD)
            return FAILED + PT_FAIL_BAD_RESPONSE;
        u->in.tail = u->in.head + (uint32_t)dlen + (rc > 0 ? (uint32_t)rc : 0);
        b->pending = (uint32_t)dlen;
        if (rc >= 0) {
            b->is_done = true;
            if (rc > 0)
                r->upstream_reusable = false; /* bytes after the body: out of sync */
        }
    } else if (b->is_close_delimited) {
        b->pending = len;
    } else {
        b->pending = (uint32_t)PT_MIN((uint64_t)len, b->left);
        b->left -= b->pending;
        if (b->left == 0) {
            b->is_done = true;
            if (len > b->pending)
                r->upstream_reusable = false;
        }
    }
    if (b->pending) {
        if (r->stream->send_borrowed(r, pt_buf_rpos(&u->in), b->pending) < 0)
            return PT_ERR;
    } else if (b->is_done) {
        end_response(r);
    }
    if (b->pending == 0 && pt_buf_len(&u->in) == 0)
        u->in.head = u->in.tail = 0;
    return PT_OK;
}

/* Reads from the upstream while there is room and a use for the bytes. */
static int pull_upstream(struct pt_req *r, bool *progress)
{
    struct pt_uconn *u = r->at.u;
    struct pt_body *b = &r->resp_body;
    for (;;) {
        if (r->resp_head_seen) {
            int rc = next_response_slice(r);
            if (rc != PT_OK)
                return rc;
            if (b->pending || b->is_done)
                return PT_OK; /* wait for the client to take the slice */
        } else if (pt_buf_len(&u->in)) {
            ssize_t hl =
                pt_h1_find_head_end(pt_buf_rpos(&u->in), pt_buf_len(&u->in), &r->resp_scan);
            if (hl > 0) {
                r->resp_scan = 0;
                int rc = handle_response_head(r, (size_t)hl);
                if (rc != PT_OK)
                    return rc;
                *progress = true;
                if (r->at.u != u || r->pstate == PT_PS_TUNNEL)
                    return PT_OK; /* retried on another target, or a tunnel: starts over */
                continue;
            }
            if (pt_buf_room(&u->in) == 0 && u->in.head == 0)
                return FAILED + PT_FAIL_BAD_RESPONSE; /* head larger than the buffer */
        }
        if (!u->t.can_read)
            return PT_OK;
        if (!u->in.data && pt_buf_alloc(&u->in, PT_BUF_LARGE) < 0)
            return 503;
        if (pt_buf_room(&u->in) == 0)
            pt_buf_compact(&u->in);
        ssize_t n = pt_transport_read(&u->t, u->in.data + u->in.tail, pt_buf_room(&u->in));
        if (n > 0) {
            u->in.tail += (uint32_t)n;
            *progress = true;
            if (r->resp_head_seen)
                pt_timer_set(r->env->loop, &u->timer, r->at.timeout_ms);
            continue;
        }
        if (n == 0) {
            u->is_eof = true;
            u->t.can_read = false;
            if (r->resp_head_seen && b->is_close_delimited) {
                b->is_done = true;
                r->stream->send_end(r);
                *progress = true;
                return PT_OK;
            }
            return FAILED + PT_FAIL_RESET;
        }
        if (n == -EAGAIN)
            return PT_OK;
        return FAILED + PT_FAIL_RESET;
    }
}

/* ---- the pump ---- */

static void finish(struct pt_req *r)
{
    pt_attempt_end(&r->at, r->status >= 500 ? PT_OUTCOME_STATUS_5XX : PT_OUTCOME_OK);
    bool reusable = r->upstream_reusable && r->req_body.is_done && !r->req_body.pending &&
                    r->head_sent && pt_buf_len(&r->uout) == 0 && r->at.u &&
                    pt_buf_len(&r->at.u->in) == 0 && !r->at.u->is_eof;
    release_upstream(r, reusable);
    r->pstate = PT_PS_DONE;
    if (!r->req_body.is_done)
        r->is_keepalive = false;
    r->stream->finish(r);
}

static int launch(struct pt_req *r);

void pt_proxy_run(struct pt_req *r)
{
    if (r->pstate == PT_PS_CACHE_WAIT || r->pstate == PT_PS_AUTH_WAIT)
        return; /* the cache's timer goes on (handler/cache.c), or forward_auth's call */
    if (r->pstate == PT_PS_BODY_WAIT) {
        if (r->expect_continue)
            r->stream->continue_body(r);
        int rc = r->hold_body(r);
        if (rc == PT_AGAIN) {
            if (r->stream->flush(r) == PT_ERR) /* a 100 Continue may be queued */
                r->stream->reset(r);
            return;
        }
        r->hold_body = NULL;
        rc = rc == PT_OK ? launch(r) : rc;
        if (rc != PT_OK) {
            pt_proxy_answer_locally(r, rc >= 400 ? rc : 503);
            return;
        }
    }
    if (r->pstate == PT_PS_TUNNEL) {
        tunnel_run(r);
        return;
    }
    if (r->is_h2_upstream) {
        pt_proxy_h2_run(r);
        return;
    }
    if (r->expect_continue)
        r->stream->continue_body(r);
    /* Bounded: a stream whose both sockets stay ready yields after a few buffers so the
       worker's other connections are served; the post resumes it (edge-triggered epoll would
       not report the sockets again). */
    for (int round = 0;; round++) {
        if (round == 64) {
            r->stream->yield(r);
            return;
        }
        if (r->pstate == PT_PS_NONE || r->pstate == PT_PS_DONE)
            return; /* answered locally, finished, or reset (the stream aborted us) */
        bool progress = false;
        struct pt_uconn *u = r->at.u;
        int rc = PT_OK;
        if (u && u->is_connecting) {
            if (!u->t.can_write && !u->t.can_read)
                goto client_side;
            if (!pt_attempt_connected(&r->at)) {
                pt_proxy_failed(r, PT_FAIL_CONNECT);
                continue;
            }
            progress = true;
        }
        if (u && !u->is_connecting && u->t.is_handshaking) {
            if (!u->t.can_write && !u->t.can_read)
                goto client_side;
            int hs = upstream_handshake(r, u);
            if (hs == PT_ERR) {
                pt_proxy_failed(r, PT_FAIL_CONNECT);
                continue;
            }
            if (hs == PT_AGAIN)
                goto client_side;
            pt_timer_set(r->env->loop, &u->timer, pt_attempt_head_timeout(&r->at));
            progress = true;
        }
        if (u && !u->is_connecting && !u->t.is_handshaking) {
            rc = push_upstream(r, &progress);
            if (rc == PT_OK)
                rc = pull_upstream(r, &progress);
            if (rc >= FAILED) {
                pt_proxy_failed(r, (enum pt_fail_kind)(rc - FAILED));
                continue;
            }
            if (rc != PT_OK) {
                if (r->response_started) {
                    r->stream->reset(r);
                    return;
                }
                release_upstream(r, false);
                pt_proxy_answer_locally(r, rc);
                return;
            }
            if (r->pstate == PT_PS_TUNNEL) {
                tunnel_run(r);
                return;
            }
        }
    client_side:;
        int fr = r->stream->flush(r);
        if (fr == PT_OK && r->at.u) {
            struct pt_body *b = &r->resp_body;
            if (b->pending) {
                /* The client took the slice: u->in is ours again. */
                pt_buf_consume(&r->at.u->in, b->pending);
                b->pending = 0;
                progress = true;
                if (b->is_done) {
                    end_response(r);
                    fr = r->stream->flush(r);
                }
            }
            if (fr == PT_OK && b->is_done && r->resp_head_seen) {
                finish(r);
                return;
            }
        } else if (fr == PT_OK && !r->at.u && r->resp_head_seen && r->resp_body.is_done) {
            finish(r);
            return;
        }
        if (fr == PT_ERR) {
            r->stream->reset(r);
            return;
        }
        if (!progress)
            return;
    }
}

/* ---- request start ---- */

/* Captures the balancer's key from the request (the client's address for hash: ip, as for
   Country=, behind trusted_proxies). */
static void capture_lb_key(struct pt_req *r, const struct pt_req_head *h, const char *path,
                           size_t path_len, struct pt_str query)
{
    char ip[64];
    struct pt_str client = {NULL, 0};
    if (pt_attempt_key_is_client(&r->at)) {
        struct pt_sockaddr addr;
        if (!pt_geoip_client_addr(r->cfg, r->peer, h, &addr))
            addr = *r->peer;
        client = (struct pt_str){ip, pt_sock_ntop(&addr.u.sa, ip, sizeof(ip))};
    }
    pt_attempt_capture_key(&r->at, h, path, path_len, query, client, r->lb_key, sizeof(r->lb_key));
}

/* A grpc-timeout value in milliseconds (gRPC over HTTP/2: 1 to 8 digits and a unit, H M S
   for hours, minutes, seconds, m u n for milli-, micro-, nanoseconds), rounded up to at least
   1; 0 when absent or malformed: the spec has the server fail such a call, but the target is
   the server here, and it sees the field as sent, so Portico only ignores it (the route's
   timeout applies). */
static uint64_t grpc_timeout_ms(struct pt_str v)
{
    if (v.n < 2 || v.n > 9)
        return 0;
    uint64_t n = 0;
    for (size_t i = 0; i + 1 < v.n; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return 0;
        n = n * 10 + (uint64_t)(v.p[i] - '0');
    }
    switch (v.p[v.n - 1]) {
    case 'H':
        n *= 3600000;
        break;
    case 'M':
        n *= 60000;
        break;
    case 'S':
        n *= 1000;
        break;
    case 'm':
        break;
    case 'u':
        n = (n + 999) / 1000;
        break;
    case 'n':
        n = (n + 999999) / 1000000;
        break;
    default:
        return 0;
    }
    return n ? n : 1;
}

int pt_proxy_start(struct pt_req *r, const struct pt_req_head *h, const struct pt_route_match *m,
                   const char *path, size_t path_len, struct pt_str query)
{
    const struct pt_handler_env *env = r->env;
    const struct pt_proxy_cfg *pc = &r->route->proxy;
    const struct pt_upstream_cfg *ups = pc->upstream;
    int cache_rc = PT_DECLINED;
    if (r->route->cache.is_on && !r->hold_body) {
        cache_rc = pt_cache_start(r, h, m, path, path_len, query);
        if (cache_rc != PT_DECLINED && cache_rc != PT_AGAIN)
            return cache_rc; /* PT_DONE: answered from the cache; or a status */
    }
    if (pc->n_split) {
        const struct pt_split_cfg *drawn;
        ups = pt_split_choose(pc, h, env->random(env->random_arg), &drawn);
        if (drawn)
            add_set_cookie(r, PT_SPLIT_COOKIE, drawn->to, strlen(drawn->to));
    }
    const struct pt_handler_res *snap = r->res;
    struct pt_attempt_ctx ctx = {env->loop,     env->upool,      r->lb,
                                 snap->ups_tls, snap->n_ups_tls, r->request_id};
    uint64_t timeout_ms = pc->timeout_ms ? pc->timeout_ms : 30000;
    if (r->is_grpc) {
        uint64_t g = grpc_timeout_ms(pt_req_field(h, "grpc-timeout", 12));
        if (g && g < timeout_ms)
            timeout_ms = g; /* the call's deadline, capped by the route's timeout */
    }
    r->is_h2_upstream = ups->protocol != PT_UPROTO_HTTP11;
    pt_attempt_init(&r->at, &ctx, ups, &snap->urt->ups[ups->index], r->method_id, timeout_ms,
                    r->is_h2_upstream ? &pt_proxy_h2_attempt_ops : &attempt_ops, r);
    r->upstream_name = ups->name;
    pt_compress_note(r, h);
    capture_lb_key(r, h, path, path_len, query);
    /* The rewritten head may grow by what Portico adds (X-Forwarded-*, set/add rules). */
    uint32_t cap =
        pt_buf_class((uint32_t)PT_MIN((uint64_t)r->cfg->limits.header_size + 8192u, 1u << 24));
    if (pt_buf_alloc(&r->uout, cap) < 0)
        return 503;
    int rc;
    if (r->hold_body) {
        /* The body is read and judged first (PT_PS_BODY_WAIT in pt_proxy_run); the head is
           built now, for the first target as for the queue below: the request's headers are
           gone by then. */
        r->at.target = &ups->targets[0];
        rc = pt_proxy_request_head(r, h, m, path, path_len, query);
        if (rc == PT_OK) {
            r->pstate = PT_PS_BODY_WAIT;
            r->stream->yield(r); /* the body may be here already: no read event will come */
        }
        return rc;
    }
    if (cache_rc == PT_AGAIN) {
        /* Another request fetches this key: the head is built now (for the first target, as
           for the queue below), the cache answers or launches later (pt_proxy_launch). */
        r->at.target = &ups->targets[0];
        rc = pt_proxy_request_head(r, h, m, path, path_len, query);
        if (rc == PT_OK)
            r->pstate = PT_PS_CACHE_WAIT;
        return rc;
    }
    /* Target first: the head names its Host and base path. */
    rc = pt_attempt_pick(&r->at);
    if (rc == PT_ATTEMPT_FULL) {
        /* Wait for a free target in the upstream's bounded queue. The head is built for the
           first target now: the request's headers are gone by the time one frees up. */
        r->at.target = &ups->targets[0];
        rc = pt_proxy_request_head(r, h, m, path, path_len, query);
        if (rc != PT_OK)
            return rc;
        rc = pt_attempt_enqueue(&r->at, r->start_ms + r->at.timeout_ms);
        if (rc == PT_OK)
            r->pstate = PT_PS_QUEUED;
        return rc;
    }
    if (rc != PT_OK)
        return rc;
    rc = pt_proxy_request_head(r, h, m, path, path_len, query);
    if (rc != PT_OK) {
        pt_attempt_end(&r->at, PT_OUTCOME_LOCAL); /* give back the slot the pick took */
        return rc;
    }
    rc = pt_attempt_connect_first(&r->at);
    if (rc == PT_OK)
        r->pstate = PT_PS_ACTIVE;
    if (rc == PT_OK && r->is_h2_upstream) {
        rc = pt_proxy_h2_submit(r);
        if (rc != PT_OK)
            r->pstate = PT_PS_NONE; /* the attempt ended: answered by the caller */
    }
    return rc;
}

/* Picks a target and connects (or queues) a request whose head is built. Returns PT_OK or a
   status to answer with. */
static int launch(struct pt_req *r)
{
    r->pstate = PT_PS_ACTIVE;
    int rc = pt_attempt_pick(&r->at);
    if (rc == PT_ATTEMPT_FULL) {
        r->at.target = &r->at.ups->targets[0];
        rc = pt_attempt_enqueue(&r->at, r->start_ms + r->at.timeout_ms);
        if (rc == PT_OK)
            r->pstate = PT_PS_QUEUED;
    } else if (rc == PT_OK) {
        rc = pt_attempt_connect_first(&r->at);
        if (rc == PT_OK && r->is_h2_upstream)
            rc = pt_proxy_h2_submit(r);
    }
    return rc;
}

void pt_proxy_launch(struct pt_req *r)
{
    int rc = launch(r);
    if (rc != PT_OK)
        pt_proxy_answer_locally(r, rc >= 400 ? rc : 503);
    r->stream->resume(r);
}

void pt_proxy_abort(struct pt_req *r)
{
    if (r->pstate == PT_PS_AUTH_WAIT) {
        r->pstate = PT_PS_NONE; /* no attempt yet; forward_auth's cleanup cancels its call */
        return;
    }
    if (r->pstate == PT_PS_CACHE_WAIT)
        pt_cache_abort_wait(r);
    if (r->pstate == PT_PS_TUNNEL)
        (*r->env->n_tunnels)--;
    pt_attempt_abort(&r->at); /* the client went away: not the target's fault */
    r->pstate = PT_PS_NONE;
}

void pt_proxy_client_timeout(struct pt_req *r)
{
    if (r->pstate == PT_PS_AUTH_WAIT)
        return; /* its body is not read yet; forward_auth's timer bounds the wait */
    if (r->response_started) {
        r->stream->reset(r);
        return;
    }
    release_upstream(r, false);
    pt_proxy_answer_locally(r, 408);
}
