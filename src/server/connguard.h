/*
 * connguard.h - connection-level guards (connguard.c has the design): the listener's IP rules
 * and the per-client connection cap at accept, the per-client cap on requests in flight (the
 * first of the pipeline's guards), and the slow-client accounting that conn.c, h1_stream.c and
 * h2_conn.c share.
 */
#ifndef PT_SERVER_CONNGUARD_H
#define PT_SERVER_CONNGUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/sock.h"

struct pt_req;
struct pt_req_head;
struct pt_worker;

/*
 * A client's credit of time while Portico waits on it (for request body bytes, or for room
 * to send its response), in the manner of a token bucket: every wait adds its length to the
 * debt, every byte moved takes 1/rate seconds off it; the client is too slow when the debt
 * reaches the timeout. With rate 0 every byte clears the debt: the timeout is then the longest
 * wait between two bytes, as it always was. Time Portico spends not waiting on the client (a
 * slow upstream, nothing to send) is never charged. Zeroed: full credit, not waiting.
 */
struct pt_credit {
    uint64_t debt_us; /* waited and not yet paid for by bytes */
    uint64_t wait_us; /* when the wait in progress began (loop clock); 0: not waiting */
};

/* Portico begins (or goes on) waiting on the client at now_ms: returns the loop time (ms) at
   which the client's credit under timeout_ms is spent, for its timer. */
static inline uint64_t pt_credit_wait(struct pt_credit *k, uint64_t now_ms, uint32_t timeout_ms)
{
    if (!k->wait_us)
        k->wait_us = now_ms * 1000 + 1;
    uint64_t lim = (uint64_t)timeout_ms * 1000;
    uint64_t left = k->debt_us >= lim ? 0 : lim - k->debt_us;
    return (k->wait_us + left + 999) / 1000;
}

/* n bytes moved at now_ms: the wait that ended is charged, the bytes paid at rate (bytes/s; 0:
   the debt is cleared). Returns false when the client is too slow: rate is on and the debt
   had reached timeout_ms when the bytes came. */
static inline bool pt_credit_bytes(struct pt_credit *k, uint64_t now_ms, uint64_t n, uint32_t rate,
                                   uint32_t timeout_ms)
{
    if (k->wait_us) {
        uint64_t now_us = now_ms * 1000 + 1;
        k->debt_us += now_us > k->wait_us ? now_us - k->wait_us : 0;
        k->wait_us = 0;
    }
    if (!rate) {
        k->debt_us = 0;
        return true;
    }
    bool ok = k->debt_us < (uint64_t)timeout_ms * 1000;
    uint64_t paid = n * 1000000 / rate;
    k->debt_us = k->debt_us > paid ? k->debt_us - paid : 0;
    return ok;
}

/*
 * At accept, before TLS: the peer against listener idx's ip: rules, then its connections
 * against limits.max_connections_per_client. Returns true to keep the connection, with *key
 * the per-client count it holds (0: none; give it back with pt_connguard_conn_end); false
 * when refused (counted and logged): the caller closes the socket.
 */
bool pt_connguard_accept(struct pt_worker *w, const struct pt_config *cfg, uint8_t idx,
                         const struct pt_sockaddr *peer, uint64_t *key);
/* Gives back the per-client connection count key (from pt_connguard_accept; not 0). */
void pt_connguard_conn_end(uint64_t key);

/*
 * The first guard of the pipeline: r's client (behind trusted_proxies) against
 * limits.max_requests_per_client. Call only when that is set. Returns true when r may go on
 * (its count is given back when it ends: pt_connguard_request_end), false after a 429.
 */
bool pt_connguard_request(struct pt_req *r, const struct pt_req_head *h);
/* Gives back r's in-flight count (r->cl_req_key, not 0) and clears it. */
void pt_connguard_request_end(struct pt_req *r);

/* A client closed or answered for being too slow (what: "request head", "request body",
   "response"): counts PT_CTR_GUARD_SLOW_CLIENT and logs one rate-limited line. */
void pt_connguard_slow(const char *what, uint64_t conn_id, const struct pt_sockaddr *peer);

#endif
