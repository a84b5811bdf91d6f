/*
 * attempt.c - the attempts of one proxied request on an upstream (see attempt.h).
 *
 * A request picks a target with the upstream's balancer (skipping the targets it already
 * tried), takes the target's in-flight slot (max_connections), and connects or takes an idle
 * connection from the worker's pool. A failure ends the attempt with an outcome that feeds
 * the shared target state (passive health, outlier ejection, latency), then the retry policy
 * decides: a refused connect moves to the next target up to `retries` (no budget: the target
 * got nothing); a reset or a timeout only for an idempotent request whose body has not
 * started, within the retry budget; a pooled connection found dead before any response byte
 * is retried once on a fresh connection to the same target, not counted against it. Once a
 * response head went to the client nothing is retried.
 *
 * A shortage of Portico's own (file descriptors, memory) ends the attempt with
 * PT_OUTCOME_LOCAL: not the target's fault, not retried (another target would meet the same
 * shortage), answered 503.
 *
 * When every available target is at max_connections the request waits in the upstream's
 * queue (max_pending, counted across workers in the shared state). The queue is polled, not
 * signalled: a slot may free up on any worker, and a 10 ms look at a few atomics is cheaper
 * than cross-thread wake-ups for what is an overload path.
 *
 * An upstream with ssrf_guard checks each target address before each connect (ssrf_refuses):
 * the addresses are the ones DNS gave at the last (re)load, so a name that rebinds to a
 * private address is refused on the first connect after the reload that brought it.
 *
 * Threading: the worker's thread; the shared target state is atomics (target.h).
 */
#include "upstream/attempt.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "core/sock.h"
#include "upstream/ssrf.h"
#include "http/h1_parse.h"
#include "tls/tls.h"
#include "tls/tls_transport.h"
#include "upstream/budget.h"

void pt_attempt_init(struct pt_attempt *a, const struct pt_attempt_ctx *ctx,
                     const struct pt_upstream_cfg *ups, struct pt_upstream_state *us, int method,
                     uint32_t timeout_ms, const struct pt_attempt_ops *ops, void *owner)
{
    a->ups = ups;
    a->us = us;
    a->lb = &ctx->lb[ups->index];
    a->tls_cc = ups->index < ctx->n_ups_tls ? ctx->ups_tls[ups->index] : NULL;
    a->loop = ctx->loop;
    a->pool = ctx->pool;
    a->log_id = ctx->log_id;
    a->ops = ops;
    a->owner = owner;
    a->timeout_ms = timeout_ms;
    a->is_idempotent = method == PT_METHOD_GET || method == PT_METHOD_HEAD ||
                       method == PT_METHOD_PUT || method == PT_METHOD_DELETE ||
                       method == PT_METHOD_OPTIONS || method == PT_METHOD_TRACE;
    pt_budget_on_request(&us->budget, ctx->loop->now_ms);
}

/* ---- split and balancer keys ---- */

/* Finds "name=value" in a "; "-separated list (Cookie) or an "&"-separated one (query). */
static bool find_pair(struct pt_str list, char sep, const char *name, size_t n, struct pt_str *val)
{
    const char *p = list.p, *end = list.p + list.n;
    while (p && p < end) {
        while (p < end && (*p == ' ' || *p == sep))
            p++;
        const char *e = memchr(p, sep, (size_t)(end - p));
        if (!e)
            e = end;
        if ((size_t)(e - p) > n && p[n] == '=' && memcmp(p, name, n) == 0) {
            *val = (struct pt_str){p + n + 1, (size_t)(e - p - n - 1)};
            return true;
        }
        p = e;
    }
    return false;
}

static bool find_cookie(const struct pt_req_head *h, const char *name, size_t n, struct pt_str *val)
{
    for (size_t i = 0; i < h->n_fields; i++)
        if (PT_STR_CASEEQ_LIT(h->fields[i].name, "cookie") &&
            find_pair(h->fields[i].value, ';', name, n, val))
            return true;
    return false;
}

const struct pt_upstream_cfg *pt_split_choose(const struct pt_proxy_cfg *pc,
                                              const struct pt_req_head *h, uint64_t random,
                                              const struct pt_split_cfg **drawn)
{
    *drawn = NULL;
    for (size_t i = 0; i < pc->n_split; i++) {
        const struct pt_split_cfg *s = &pc->split[i];
        struct pt_str v;
        if (s->force_header) {
            v = pt_req_field(h, s->force_header, s->force_header_len);
            if (v.p && pt_str_eq(v, s->force_header_value, s->force_header_value_len))
                return s->upstream;
        }
        if (s->force_cookie && find_cookie(h, s->force_cookie, s->force_cookie_len, &v) &&
            (!s->force_cookie_value ||
             pt_str_eq(v, s->force_cookie_value, s->force_cookie_value_len)))
            return s->upstream;
    }
    struct pt_str v;
    if (find_cookie(h, PT_SPLIT_COOKIE, sizeof(PT_SPLIT_COOKIE) - 1, &v))
        for (size_t i = 0; i < pc->n_split; i++)
            if (pc->split[i].weight && pt_str_eq(v, pc->split[i].to, strlen(pc->split[i].to)))
                return pc->split[i].upstream;
    uint64_t total = 0;
    for (size_t i = 0; i < pc->n_split; i++)
        total += pc->split[i].weight;
    uint64_t x = random % (total ? total : 1);
    size_t pick = 0;
    for (size_t i = 0; i < pc->n_split; i++) {
        if (x < pc->split[i].weight) {
            pick = i;
            break;
        }
        x -= pc->split[i].weight;
    }
    *drawn = &pc->split[pick];
    return pc->split[pick].upstream;
}

bool pt_attempt_key_is_client(const struct pt_attempt *a)
{
    return a->ups->balance == PT_BALANCE_HASH && a->ups->hash_key.kind == PT_HASH_KEY_IP;
}

void pt_attempt_capture_key(struct pt_attempt *a, const struct pt_req_head *h, const char *path,
                            size_t path_len, struct pt_str query, struct pt_str client, char *buf,
                            size_t cap)
{
    const struct pt_upstream_cfg *ups = a->ups;
    struct pt_str v = {NULL, 0};
    if (ups->balance == PT_BALANCE_COOKIE) {
        find_cookie(h, PT_AFFINITY_COOKIE, sizeof(PT_AFFINITY_COOKIE) - 1, &v);
    } else if (ups->balance == PT_BALANCE_HASH) {
        const struct pt_hash_key_cfg *k = &ups->hash_key;
        switch (k->kind) {
        case PT_HASH_KEY_IP:
            v = client;
            break;
        case PT_HASH_KEY_PATH:
            v = (struct pt_str){path, path_len};
            break;
        case PT_HASH_KEY_HEADER:
            v = pt_req_field(h, k->name, k->name_len);
            break;
        case PT_HASH_KEY_COOKIE:
            find_cookie(h, k->name, k->name_len, &v);
            break;
        case PT_HASH_KEY_QUERY:
            if (query.p)
                find_pair(query, '&', k->name, k->name_len, &v);
            break;
        default:
            break;
        }
    }
    size_t n = PT_MIN(v.n, cap);
    if (n)
        memcpy(buf, v.p, n);
    a->key = (struct pt_lb_key){buf, n};
}

/* ---- picking and connecting ---- */

void pt_attempt_end(struct pt_attempt *a, int outcome)
{
    if (!a->is_open)
        return;
    a->is_open = false;
    uint64_t now = a->loop->now_ms;
    uint64_t lat_us = (outcome == PT_OUTCOME_OK || outcome == PT_OUTCOME_STATUS_5XX)
                          ? a->head_latency_us
                          : (now - a->start_ms) * 1000u;
    pt_upstream_on_request_end(a->us, (size_t)a->target_idx, lat_us, outcome, now);
}

int pt_attempt_pick(struct pt_attempt *a)
{
    const struct pt_upstream_cfg *ups = a->ups;
    uint64_t now = a->loop->now_ms;
    for (int tries = 0; tries < 8; tries++) {
        int idx = pt_lb_pick(a->us, a->lb, &a->key, a->tried_mask, now);
        if (idx == PT_LB_FULL)
            return PT_ATTEMPT_FULL;
        if (idx < 0)
            return 503;
        if (idx < 32)
            a->tried_mask |= 1u << idx;
        if (!pt_upstream_on_request_start(a->us, (size_t)idx))
            continue; /* reached max_connections since the pick: choose again */
        a->target_idx = idx;
        a->target = &ups->targets[idx];
        a->is_open = true;
        a->start_ms = now;
        if (ups->balance == PT_BALANCE_COOKIE) {
            const char *tok = pt_lb_cookie_token(a->us, (size_t)idx);
            if (tok && (a->key.len != strlen(tok) || memcmp(a->key.data, tok, a->key.len)))
                a->ops->set_affinity(a->owner, tok, strlen(tok));
        }
        return PT_OK;
    }
    return 503;
}

/* Ends the attempt on a->target without a verdict: it never left Portico, which is short of
   file descriptors or memory (err: positive errno of the call named by what). Not the target's
   fault, so nothing counts against it (no ejection, no retry: another target would meet the
   same shortage) and the client gets 503, Portico being unavailable, rather than 502. */
static int local_shortage(struct pt_attempt *a, const char *what, int err)
{
    pt_log_ratelimited(PT_LOG_WARN,
                       "request %s: upstream \"%s\" target %s not tried: local resource shortage "
                       "in Portico (%s: %s), not the target's fault",
                       a->log_id, a->ups->name, a->target ? a->target->url : "-", what,
                       strerror(err));
    pt_attempt_end(a, PT_OUTCOME_LOCAL);
    return 503;
}

/* Pool key part of a TLS connection: the SNI host and the client context (trust anchors,
   verification, client certificate). A connection verified for one upstream must never serve
   another whose settings differ, even to the same address and name. */
static uint32_t tls_host_hash(const struct pt_attempt *a, const struct pt_target_cfg *t)
{
    if (!t->is_https)
        return 0;
    uintptr_t cc = (uintptr_t)a->tls_cc;
    uint32_t h = 2166136261u;
    for (const char *p = t->host; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    for (size_t i = 0; i < sizeof(cc); i++)
        h = (h ^ (unsigned char)(cc >> (8 * i))) * 16777619u;
    return h | 1;
}

/* Starts TLS on a connected https target (SNI and verification against the URL's host). */
static bool start_tls(struct pt_attempt *a, struct pt_uconn *u)
{
    struct pt_tls_client_ctx *cc = a->tls_cc;
    if (!cc)
        return false;
    pt_transport_free(&u->t); /* the plain transport it had while connecting */
    return pt_tls_transport_client_init(&u->t, cc, u->io.fd, a->target->host,
                                        a->target->host_header) == 0;
}

uint32_t pt_attempt_head_timeout(struct pt_attempt *a)
{
    uint32_t pt = a->ups->per_try_timeout_ms;
    a->is_per_try_timer = pt && pt < a->timeout_ms;
    return a->is_per_try_timer ? pt : a->timeout_ms;
}

static void take(struct pt_attempt *a, struct pt_uconn *u)
{
    u->owner = a->owner;
    u->on_ready = a->ops->ready;
    u->on_timeout = a->ops->timeout;
    a->u = u;
}

/* An HTTP/2 stream to a->target on one of the worker's shared connections. */
static int open_stream(struct pt_attempt *a)
{
    const struct pt_target_cfg *t = a->target;
    struct pt_h2c_target ht = {
        .addr = &t->addr,
        .tls_host_hash = tls_host_hash(a, t),
        .tls_cc = t->is_https ? a->tls_cc : NULL,
        .host = t->host,
        .session_key = t->host_header,
        .connect_timeout_ms = a->ups->connect_timeout_ms,
        .max_conns = PT_H2C_MAX_CONNS,
    };
    if (t->is_https && !a->tls_cc) {
        pt_attempt_end(a, PT_OUTCOME_CONNECT_FAILURE);
        return 502;
    }
    const char *what = "connect";
    int rc = pt_h2c_open(a->pool, &ht, a->ops->h2, a->owner, &a->h2, &what);
    if (rc == 0)
        return PT_OK;
    a->h2 = NULL;
    if (pt_upstream_is_local_shortage(-rc))
        return local_shortage(a, what, -rc);
    pt_log_ratelimited(PT_LOG_WARN, "request %s: connect to upstream \"%s\" target %s failed: %s",
                       a->log_id, a->ups->name, t->url, strerror(-rc));
    pt_attempt_end(a, PT_OUTCOME_CONNECT_FAILURE);
    return 502;
}

/* The SSRF guard of an upstream with ssrf_guard: true (upstream/ssrf.h), before anything
   connects to t, pooled connections included (a reload may have narrowed allow_private, and
   the pool is keyed by address, not by upstream). A refused address ends the attempt like a
   refused connect: counted against the target, never retried on it (the tried mask), retried
   on another target within `retries`; the client gets 502 and only the log says why. Returns
   true when t's address is refused. */
static bool ssrf_refuses(struct pt_attempt *a, const struct pt_target_cfg *t)
{
    const struct pt_upstream_cfg *ups = a->ups;
    struct pt_ssrf_verdict v =
        pt_ssrf_check(&t->addr.u.sa, ups->allow_private, ups->n_allow_private);
    if (!v.why)
        return false;
    char why[160];
    pt_ssrf_explain(&t->addr.u.sa, v, why, sizeof(why));
    pt_log_ratelimited(PT_LOG_WARN,
                       "request %s: connect to upstream \"%s\" target %s refused by the SSRF "
                       "guard: %s",
                       a->log_id, ups->name, t->url, why);
    pt_attempt_end(a, PT_OUTCOME_CONNECT_FAILURE);
    return true;
}

int pt_attempt_connect(struct pt_attempt *a, bool next)
{
    const struct pt_upstream_cfg *ups = a->ups;
    if (next) {
        int rc = pt_attempt_pick(a);
        if (rc != PT_OK)
            return 503; /* nothing free to retry on (a retry does not queue) */
    }
    const struct pt_target_cfg *t = a->target;
    bool fresh_same_target = !next && a->attempts > 0;
    a->attempts++;
    if (ups->ssrf_guard && ssrf_refuses(a, t))
        return 502;
    if (ups->protocol != PT_UPROTO_HTTP11)
        return open_stream(a);
    struct pt_uconn *u = fresh_same_target || a->is_fresh_only
                             ? NULL
                             : pt_upool_get(a->pool, &t->addr, tls_host_hash(a, t));
    if (u) {
        u->n_requests++;
        take(a, u);
        pt_timer_set(a->loop, &u->timer, pt_attempt_head_timeout(a));
        return PT_OK;
    }
    int in_progress = 0;
    int fd = pt_sock_connect(&t->addr.u.sa, t->addr.len, &in_progress);
    if (fd < 0 && pt_upstream_is_local_shortage(-fd))
        return local_shortage(a, "connect", -fd);
    if (fd < 0) {
        pt_log_ratelimited(PT_LOG_WARN,
                           "request %s: connect to upstream \"%s\" target %s failed: %s", a->log_id,
                           ups->name, t->url, strerror(-fd));
        pt_attempt_end(a, PT_OUTCOME_CONNECT_FAILURE);
        return 502;
    }
    int err = 0;
    const char *what = NULL;
    u = pt_uconn_new(a->pool, fd, &t->addr, tls_host_hash(a, t), in_progress != 0, &err, &what);
    if (!u)
        return local_shortage(a, what, err);
    take(a, u);
    if (!u->is_connecting && t->is_https && !start_tls(a, u)) {
        a->u = NULL;
        u->owner = NULL;
        pt_uconn_close(u);
        pt_attempt_end(a, PT_OUTCOME_CONNECT_FAILURE);
        return 502;
    }
    /* A TLS handshake counts as connecting: connect_timeout covers it. */
    pt_timer_set(a->loop, &u->timer,
                 u->is_connecting || u->t.is_handshaking ? ups->connect_timeout_ms
                                                         : pt_attempt_head_timeout(a));
    return PT_OK;
}

int pt_attempt_connect_first(struct pt_attempt *a)
{
    int rc = pt_attempt_connect(a, false);
    while (rc == 502 && a->retries < a->ups->retries &&
           pt_budget_try_retry(&a->us->budget, a->ups->retry_budget_pct, a->loop->now_ms)) {
        a->retries++;
        const struct pt_target_cfg *failed = a->target;
        rc = pt_attempt_connect(a, true);
        /* No other target to pick (a->target unchanged; a local shortage on a new one stays
           503): answer for the failure seen, as pt_attempt_failed does. */
        if (rc == 503 && a->target == failed)
            return 502;
    }
    return rc;
}

bool pt_attempt_connected(struct pt_attempt *a)
{
    struct pt_uconn *u = a->u;
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(u->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err) {
        pt_log_ratelimited(PT_LOG_WARN,
                           "request %s: connect to upstream \"%s\" target %s failed: %s", a->log_id,
                           a->ups->name, a->target->url, strerror(err));
        return false;
    }
    u->is_connecting = false;
    if (a->target->is_https) {
        if (!start_tls(a, u))
            return false;
        u->t.can_read = true; /* try the handshake at once */
        return true;          /* connect_timeout keeps running through the handshake */
    }
    pt_timer_set(a->loop, &u->timer, pt_attempt_head_timeout(a));
    return true;
}

void pt_attempt_release(struct pt_attempt *a, bool reusable)
{
    if (a->h2) {
        pt_h2c_release(a->h2);
        a->h2 = NULL;
    }
    struct pt_uconn *u = a->u;
    if (!u)
        return;
    a->u = NULL;
    pt_timer_stop(a->loop, &u->timer);
    if (reusable)
        pt_upool_put(a->pool, u, a->ups->keepalive);
    else
        pt_uconn_close(u);
}

/* ---- failures and retries ---- */

bool pt_attempt_may_retry(struct pt_attempt *a, enum pt_fail_kind kind)
{
    const struct pt_upstream_cfg *ups = a->ups;
    if (a->is_body_sent || a->retries >= ups->retries)
        return false;
    bool idem = a->is_idempotent;
    bool ok;
    switch (kind) {
    case PT_FAIL_CONNECT:
    case PT_FAIL_CONNECT_TIMEOUT:
        ok = ups->retry_on & PT_RETRY_CONNECT_FAILURE;
        break;
    case PT_FAIL_RESET:
        ok = (ups->retry_on & PT_RETRY_RESET) && idem;
        break;
    case PT_FAIL_TIMEOUT:
        /* A per-try timeout exists to be retried; the route timeout only with retry_on. */
        ok = ((ups->retry_on & PT_RETRY_TIMEOUT) || a->is_per_try_timer) && idem;
        break;
    default:
        ok = false;
    }
    if (!ok)
        return false;
    /* A refused connect sent the target nothing: retrying it elsewhere adds no load anywhere,
       so the budget (which exists to stop retry storms from piling onto backends) does not
       apply. Without this, losing a target under load turned its share into 502s until the
       health check caught up. */
    if (kind == PT_FAIL_CONNECT)
        return true;
    return pt_budget_try_retry(&a->us->budget, ups->retry_budget_pct, a->loop->now_ms);
}

bool pt_attempt_may_retry_status(struct pt_attempt *a, int status, bool has_body)
{
    const struct pt_upstream_cfg *ups = a->ups;
    bool listed = false;
    for (size_t i = 0; i < ups->n_retry_statuses && !listed; i++)
        listed = ups->retry_statuses[i] == status;
    if (!listed || has_body || !a->is_idempotent || a->retries >= ups->retries)
        return false;
    if (ups->n_targets <= 32 && (a->tried_mask | ((1u << ups->n_targets) - 1u)) == a->tried_mask)
        return false; /* every target tried */
    return pt_budget_try_retry(&a->us->budget, ups->retry_budget_pct, a->loop->now_ms);
}

int pt_attempt_failed(struct pt_attempt *a, enum pt_fail_kind kind, bool response_started)
{
    struct pt_uconn *u = a->u;
    /* HTTP/2: a connection that was up when the stream joined it and died under it (the
       target closed an idle connection as the request went out) is the same case. */
    bool was_reused = (u && u->n_requests > 1) ||
                      (a->h2 && a->h2->is_reused && a->h2->is_conn_lost && !a->h2->status);
    const char *what = kind == PT_FAIL_CONNECT           ? "connect failed"
                       : kind == PT_FAIL_CONNECT_TIMEOUT ? "connect timed out"
                       : kind == PT_FAIL_RESET           ? "connection closed or reset"
                       : kind == PT_FAIL_TIMEOUT         ? "timed out"
                       : kind == PT_FAIL_REFUSED         ? "refused the stream"
                                                         : "malformed response";
    pt_attempt_release(a, false);
    if (kind == PT_FAIL_REFUSED && !a->is_body_sent && !response_started) {
        /* Never processed (RFC 9113 §8.7): safe to send again whatever the method. Once more
           on the same target, a few times; then a target that keeps refusing is treated like
           one that refuses connections (no budget: it got nothing). */
        if (++a->refused <= PT_H2C_MAX_REFUSED && pt_attempt_connect(a, false) == PT_OK)
            return PT_OK;
        kind = PT_FAIL_CONNECT;
    }
    if (!a->is_body_sent && kind == PT_FAIL_RESET && was_reused && !response_started &&
        a->is_idempotent) {
        /* A pooled connection the peer had closed: once, on a fresh connection to the same
           target; not that target's fault, so not counted against it. */
        if (pt_attempt_connect(a, false) == PT_OK)
            return PT_OK;
    }
    int outcome =
        kind == PT_FAIL_CONNECT || kind == PT_FAIL_CONNECT_TIMEOUT || kind == PT_FAIL_REFUSED
            ? PT_OUTCOME_CONNECT_FAILURE
        : kind == PT_FAIL_TIMEOUT ? PT_OUTCOME_TIMEOUT
                                  : PT_OUTCOME_RESET;
    pt_attempt_end(a, outcome);
    pt_log_ratelimited(PT_LOG_WARN, "request %s: upstream \"%s\" target %s %s", a->log_id,
                       a->ups->name, a->target ? a->target->url : "-", what);
    if (response_started)
        return PT_ERR; /* the head went out: closing is the only signal left */
    int status = kind == PT_FAIL_TIMEOUT || kind == PT_FAIL_CONNECT_TIMEOUT ? 504 : 502;
    while (pt_attempt_may_retry(a, kind)) {
        a->retries++;
        int rc = pt_attempt_connect(a, true);
        if (rc == PT_OK)
            return PT_OK;
        if (rc == 503)
            break;              /* nothing left to try: answer for the failure seen */
        kind = PT_FAIL_CONNECT; /* refused at once: on to the next one */
        status = 502;
    }
    return status;
}

int pt_attempt_retry_status(struct pt_attempt *a, int status)
{
    /* Another target may do better: drop this response (its connection with it). */
    pt_attempt_end(a, PT_OUTCOME_STATUS_5XX);
    pt_log_ratelimited(PT_LOG_WARN, "request %s: upstream \"%s\" target %s answered %d; retrying",
                       a->log_id, a->ups->name, a->target->url, status);
    pt_attempt_release(a, false);
    a->retries++;
    int rc = pt_attempt_connect(a, true);
    if (rc != PT_OK)
        return rc == 503 ? 503 : 502;
    return PT_OK;
}

/* ---- the max_pending queue ---- */

void pt_attempt_leave_queue(struct pt_attempt *a)
{
    if (!a->is_queued)
        return;
    a->is_queued = false;
    pt_timer_stop(a->loop, &a->queue_timer);
    atomic_fetch_sub_explicit(&a->us->pending, 1, memory_order_relaxed);
}

static void queue_poll(struct pt_timer *t)
{
    struct pt_attempt *a = PT_CONTAINER_OF(t, struct pt_attempt, queue_timer);
    int rc = pt_attempt_pick(a);
    if (rc == PT_ATTEMPT_FULL && a->loop->now_ms < a->queue_deadline_ms) {
        pt_timer_set(a->loop, &a->queue_timer, PT_ATTEMPT_QUEUE_POLL_MS);
        return;
    }
    pt_attempt_leave_queue(a);
    if (rc == PT_OK)
        rc = pt_attempt_connect(a, false);
    if (rc == PT_ATTEMPT_FULL)
        pt_log_ratelimited(PT_LOG_WARN, "request %s: upstream \"%s\": no target freed up in time",
                           a->log_id, a->ups->name);
    a->ops->dequeued(a->owner, rc == PT_OK ? PT_OK : 503);
}

int pt_attempt_enqueue(struct pt_attempt *a, uint64_t deadline_ms)
{
    int n = atomic_fetch_add_explicit(&a->us->pending, 1, memory_order_relaxed);
    if ((uint32_t)n >= a->ups->max_pending) {
        atomic_fetch_sub_explicit(&a->us->pending, 1, memory_order_relaxed);
        return 503;
    }
    a->is_queued = true;
    a->was_queued = true;
    a->queue_deadline_ms = deadline_ms;
    pt_timer_init(&a->queue_timer, queue_poll);
    pt_timer_set(a->loop, &a->queue_timer, PT_ATTEMPT_QUEUE_POLL_MS);
    return PT_OK;
}

void pt_attempt_abort(struct pt_attempt *a)
{
    pt_attempt_leave_queue(a);
    pt_attempt_end(a, PT_OUTCOME_OK); /* the request went away: not the target's fault */
    pt_attempt_release(a, false);
}
