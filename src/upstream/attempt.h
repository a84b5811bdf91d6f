/*
 * attempt.h - one request's attempts on an upstream: which upstream (split), which target
 * (balancer, health, tried mask, balancer key), connect or take a pooled connection, whether a
 * failure may be retried, the outcome that feeds passive health, the bounded queue while every
 * target is at max_connections, and giving the connection back to the pool.
 *
 * The proxy (handler/) owns the HTTP exchange: heads, bodies, the exchange's timeouts. It
 * embeds a struct pt_attempt in its request, fills it with pt_attempt_init, and registers
 * callbacks (struct pt_attempt_ops) with an opaque owner pointer: this layer never sees the
 * request and never calls into handler/ or server/. What it needs from the worker (loop, pool,
 * balancer state, TLS client contexts, the request id for logs) comes in struct
 * pt_attempt_ctx.
 *
 * States of one request, as the proxy sees them through the return codes:
 *
 *   init ─► pick ─┬─ PT_OK ──► connect ─┬─ PT_OK: connection (u) in use ─► release
 *                 │                     └─ 502/503: answer locally
 *                 ├─ PT_ATTEMPT_FULL ─► enqueue ─► (poll every 10 ms) ─► ops->dequeued
 *                 └─ 503
 *   failed(kind) ─► PT_OK: a new attempt runs (rewind the exchange) | PT_ERR: response under
 *                   way, close the client | 502/503/504: answer locally
 */
#ifndef PT_UPSTREAM_ATTEMPT_H
#define PT_UPSTREAM_ATTEMPT_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "core/loop.h"
#include "core/str.h"
#include "http/fields.h"
#include "upstream/balance.h"
#include "upstream/h2_client.h"
#include "upstream/target.h"
#include "upstream/uconn.h"

struct pt_tls_client_ctx;

#define PT_AFFINITY_COOKIE "portico_affinity" /* balance: cookie */
#define PT_SPLIT_COOKIE "portico_split"       /* the split arm a user stays on */

#define PT_ATTEMPT_FULL 1           /* pick: targets are up but all at max_connections */
#define PT_ATTEMPT_QUEUE_POLL_MS 10 /* a queued request looks for a free target this often */

/* How an attempt failed (pt_attempt_failed). */
enum pt_fail_kind {
    PT_FAIL_CONNECT,         /* refused or unreachable, TLS handshake failed */
    PT_FAIL_CONNECT_TIMEOUT, /* connect (or TLS handshake) past connect_timeout */
    PT_FAIL_RESET,           /* closed or reset before the response was complete */
    PT_FAIL_TIMEOUT,         /* no response head within the route's or the per-try timeout */
    PT_FAIL_BAD_RESPONSE,    /* not HTTP, or a head too large */
    PT_FAIL_REFUSED,         /* HTTP/2: the target never processed the stream (REFUSED_STREAM,
                                above a GOAWAY's last stream id) */
};

/* The proxy's callbacks; owner is the pointer given to pt_attempt_init. */
struct pt_attempt_ops {
    pt_uconn_cb ready;   /* the connection in use became readable/writable (flags updated) */
    pt_uconn_cb timeout; /* its timer (connect, response head, idle mid-body) fired */
    /* The queue wait ended (the attempt left the queue): rc PT_OK, a connection is under way;
       else 503 to answer (nothing freed up in time, or the connect failed). */
    void (*dequeued)(void *owner, int rc);
    /* balance: cookie picked a target other than the one the client's cookie names: token is
       the new cookie value (PT_AFFINITY_COOKIE), borrowed from the snapshot. */
    void (*set_affinity)(void *owner, const char *token, size_t len);
    /* The stream callbacks for an h2 or h2c upstream (ready and timeout are then unused). */
    const struct pt_h2c_ops *h2;
};

/* What the attempt borrows from the worker and the snapshot (each outlives the request). */
struct pt_attempt_ctx {
    struct pt_loop *loop;
    struct pt_upool *pool;
    struct pt_lb_worker *lb;                  /* per upstream, by pt_upstream_cfg.index */
    struct pt_tls_client_ctx *const *ups_tls; /* per upstream with https targets, else NULL */
    size_t n_ups_tls;
    const char *log_id; /* the request id, NUL-terminated, for logs */
};

struct pt_attempt {
    /* the request (pt_attempt_init) */
    const struct pt_upstream_cfg *ups;
    struct pt_upstream_state *us;     /* shared state of ups (health, load, budget) */
    struct pt_lb_worker *lb;          /* this worker's balancer state for ups */
    struct pt_tls_client_ctx *tls_cc; /* ups's client TLS context; NULL without https */
    struct pt_loop *loop;
    struct pt_upool *pool;
    const struct pt_attempt_ops *ops;
    void *owner;
    const char *log_id;
    struct pt_lb_key key;  /* hash or cookie balancer input (pt_attempt_capture_key), borrowed */
    uint32_t timeout_ms;   /* the route's response timeout */
    bool is_idempotent;    /* the method may be replayed (RFC 9110 §9.2.2) */
    bool is_body_sent;     /* set by the proxy: a request body byte went upstream, no replay */
    bool is_per_try_timer; /* the head timer armed is per_try_timeout, not the route's */
    bool is_open;          /* the target's in-flight count includes this request */
    bool is_fresh_only;    /* set by the proxy: never a pooled connection (an upgrade) */
    bool is_queued;        /* waiting in the upstream's queue (queue_timer armed) */
    bool was_queued;       /* it waited in the queue at least once (metrics) */
    /* the attempt in progress */
    const struct pt_target_cfg *target;
    int target_idx;           /* index of target in ups */
    struct pt_uconn *u;       /* the connection in use, or NULL (always NULL over HTTP/2) */
    struct pt_h2c_stream *h2; /* the stream in use (h2, h2c upstreams), or NULL */
    uint32_t refused;         /* streams the target refused (PT_FAIL_REFUSED retries) */
    uint32_t tried_mask;      /* targets already tried (first 32) */
    uint32_t attempts;        /* connections tried, the stale-connection retry included */
    uint32_t retries;         /* retries on another target so far (bounded by ups->retries) */
    uint64_t start_ms;        /* this attempt's start (loop time) */
    uint64_t head_latency_us; /* attempt start to response head */
    uint64_t queue_deadline_ms;
    struct pt_timer queue_timer;
};

/*
 * Starts the attempts of one request on ups (us: its shared state in the snapshot's runtime).
 * a must be zeroed (the request's reset does it). Counts the request for the retry budget.
 * method: enum pt_http_method. timeout_ms: the route's response timeout. Borrows everything.
 */
void pt_attempt_init(struct pt_attempt *a, const struct pt_attempt_ctx *ctx,
                     const struct pt_upstream_cfg *ups, struct pt_upstream_state *us, int method,
                     uint32_t timeout_ms, const struct pt_attempt_ops *ops, void *owner);

/*
 * The arm of a split route for request h: a tester's override (force_header, force_cookie),
 * then the arm the client's PT_SPLIT_COOKIE names, then a weighted draw with random (any
 * 64-bit number). *drawn is set to the drawn arm (the caller remembers it in PT_SPLIT_COOKIE)
 * or NULL when an override or the cookie decided. pc->n_split must be > 0.
 */
const struct pt_upstream_cfg *pt_split_choose(const struct pt_proxy_cfg *pc,
                                              const struct pt_req_head *h, uint64_t random,
                                              const struct pt_split_cfg **drawn);

/* Whether the balancer key of a's upstream is the client's address (balance: hash, key ip):
   the caller then passes it to pt_attempt_capture_key. */
bool pt_attempt_key_is_client(const struct pt_attempt *a);

/*
 * Captures what the hash or cookie balancer needs from the request, which is gone by the time
 * a retry picks again: copied into buf (cap bytes, truncated) and borrowed by a->key. client:
 * the client's address text when pt_attempt_key_is_client, else ignored (may be NULL).
 */
void pt_attempt_capture_key(struct pt_attempt *a, const struct pt_req_head *h, const char *path,
                            size_t path_len, struct pt_str query, struct pt_str client, char *buf,
                            size_t cap);

/* Chooses the next untried target. Returns PT_OK (a->target set, its in-flight count taken),
   PT_ATTEMPT_FULL when every available target is at max_connections, or 503 when none is
   available (all down, ejected or tried). */
int pt_attempt_pick(struct pt_attempt *a);

/*
 * Opens (or takes from the pool) a connection to a->target, or first picks the next untried
 * target when next is set. Returns PT_OK (a->u set, owner and callbacks registered, timer
 * armed; for an h2 or h2c upstream a->h2 instead: a stream on a shared connection, not yet
 * submitted, no timer armed) or a status: 502 when the target refused at once (the SSRF guard
 * of an upstream with ssrf_guard refusing its address included), 503 when nothing is left to
 * try or Portico is short of resources (logged; the attempt ended).
 */
int pt_attempt_connect(struct pt_attempt *a, bool next);
/* The first connect after a successful pick, moving on to further targets while they refuse
   at once (within retries and the retry budget). Returns as pt_attempt_connect, except that a
   refusal with no other target left to try is 502 (the failure seen), not 503. */
int pt_attempt_connect_first(struct pt_attempt *a);
/* A connect in progress finished (a->u->is_connecting): checks the socket's error, starts TLS
   for https targets. Returns false when it failed (logged). */
bool pt_attempt_connected(struct pt_attempt *a);
/* The response-head timeout of this attempt: per_try_timeout when set and shorter, else the
   route's timeout (records which, for the retry decision). */
uint32_t pt_attempt_head_timeout(struct pt_attempt *a);

/* Whether a failure of this kind may be retried on another target (ups retry_on, retries and
   retry budget; never once a body byte went upstream). Consumes budget when it says yes. */
bool pt_attempt_may_retry(struct pt_attempt *a, enum pt_fail_kind kind);
/* Whether a final status listed in ups retry_statuses may be retried: a request that can be
   replayed whole (idempotent, has_body false), a retry, the budget and an untried target
   left. Consumes budget when it says yes. */
bool pt_attempt_may_retry_status(struct pt_attempt *a, int status, bool has_body);

/*
 * The connection in use failed (the proxy has let go of any pointer into a->u->in). Closes
 * it (an HTTP/2 stream: releases it), then: a pooled connection found dead is retried once on
 * a fresh one; a refused HTTP/2 stream (PT_FAIL_REFUSED) up to PT_H2C_MAX_REFUSED times on the
 * same target whatever the method, as long as no body byte went (the target never processed
 * it), then on the others as a refused connect; else the attempt
 * ends with its outcome (logged) and, unless response_started, further targets are tried
 * while pt_attempt_may_retry allows. Returns PT_OK (a new connection is under way: rewind the
 * exchange), PT_ERR (response_started: only closing the client is left) or the status to
 * answer (502, 503, 504).
 */
int pt_attempt_failed(struct pt_attempt *a, enum pt_fail_kind kind, bool response_started);
/* The response head said status, which pt_attempt_may_retry_status allowed: ends the attempt
   (5xx outcome), closes its connection, and connects to the next target. Returns PT_OK
   (rewind the exchange), 502 or 503. */
int pt_attempt_retry_status(struct pt_attempt *a, int status);

/* Ends the balancer's view of the attempt in progress (in-flight count, latency, outlier
   verdict with outcome, enum pt_outcome); once per attempt, later calls do nothing. */
void pt_attempt_end(struct pt_attempt *a, int outcome);
/* Gives the connection in use back: to the pool when reusable, else closed; an HTTP/2 stream
   is released (cancelled when still open). No-op without one. */
void pt_attempt_release(struct pt_attempt *a, bool reusable);

/* Waits in the upstream's bounded queue (max_pending, all workers) for a target to free up,
   until deadline_ms (loop time); ops->dequeued reports the end. Returns PT_OK or 503 (the
   queue is full). */
int pt_attempt_enqueue(struct pt_attempt *a, uint64_t deadline_ms);
/* Leaves the queue without a callback (the request ends otherwise). No-op when not queued. */
void pt_attempt_leave_queue(struct pt_attempt *a);
/* The request goes away: leaves the queue, ends the attempt without blame, closes the
   connection. */
void pt_attempt_abort(struct pt_attempt *a);

#endif
