/*
 * request.h - the request every handler answers, whichever protocol carries it (struct
 * pt_req), and what the server lends it: the worker's services (struct pt_handler_env) and the
 * snapshot's resources (struct pt_handler_res). The client connection that carries a request
 * over HTTP/1.1 is the server's (server/conn.h); the upstream connection is in upstream/uconn.h,
 * the request's attempts on an upstream (embedded here as pt_req.at) in upstream/attempt.h.
 *
 * Lifetimes nest: worker -> client connection -> request -> upstream connection (borrowed from
 * the worker's keep-alive pool, upstream/uconn.h, for the length of one request). A request
 * never changes thread, so none of this is locked.
 *
 * A handler reaches nothing of the server but through the request: it answers through
 * r->stream (http/stream.h) and takes the loop, the upstream pool, the balancer state, scratch
 * and random numbers from r->env, r->lb and r->res, which the protocol sets when the request
 * begins (a few pointer stores; nothing is allocated). r->c, r->w and r->ws are the server's:
 * a handler never looks through them.
 */
#ifndef PT_HANDLER_REQUEST_H
#define PT_HANDLER_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/common.h"
#include "core/loop.h"
#include "http/fields.h"
#include "http/h1_parse.h"
#include "http/stream.h"
#include "route/route.h"
#include "upstream/attempt.h"

struct pt_conn;
struct pt_geoip;
struct pt_lb_worker;
struct pt_static_root;
struct pt_tls_client_ctx;
struct pt_tls_conn;
struct pt_h2_stream;
struct pt_upool;
struct pt_upstreams_rt;
struct pt_worker;
struct pt_wsnap;

/* What one configuration snapshot holds for its handlers, built with it on the main thread and
   immutable while any request uses it (server/worker.h embeds it in struct pt_snapshot). */
struct pt_handler_res {
    struct pt_upstreams_rt *urt;   /* shared target state (health, load, ejections) */
    struct pt_static_root **roots; /* per static route (files.index_in_config) */
    size_t n_roots;
    struct pt_tls_client_ctx **ups_tls; /* per upstream with https targets; else NULL */
    size_t n_ups_tls;
    struct pt_geoip *geoip; /* geoip.database, mapped for this snapshot; NULL when not set */
};

/* What a worker lends the handlers of its requests, filled once when the worker is made
   (server/worker.c) and valid for the worker's life. */
struct pt_handler_env {
    struct pt_loop *loop;   /* the worker's loop: timers, the clock (now_ms) */
    struct pt_upool *upool; /* idle upstream connections (upstream/uconn.h) */
    struct pt_field *hdrs;  /* scratch header array for parsing a head (limits.headers) */
    size_t hdrs_cap;
    /* A fast pseudo-random number (not for secrets: split draws, tie breaks). */
    uint64_t (*random)(void *random_arg);
    void *random_arg;
    uint32_t *n_tunnels; /* the worker's open tunnels (limits.max_tunnels) */
    /* A request with no client on parent's worker and snapshot (server/bg.c): what it answers
       goes nowhere (the cache keeps it: a background refresh). It has parent's routing,
       addresses and log fields, no body; pt_proxy_start runs it, and it ends by itself.
       NULL when no memory. */
    struct pt_req *(*detach)(struct pt_req *parent);
};

enum pt_proxy_state {
    PT_PS_NONE = 0,
    PT_PS_ACTIVE,     /* connecting, sending the request, receiving the response */
    PT_PS_DONE,       /* response fully forwarded */
    PT_PS_QUEUED,     /* every target at max_connections: waiting in the upstream's queue */
    PT_PS_TUNNEL,     /* the target switched protocols (101): bytes flow both ways, unparsed */
    PT_PS_CACHE_WAIT, /* waiting for another request's fetch of the same cache key
                         (handler/cache.c); the upstream head is built */
    PT_PS_BODY_WAIT,  /* r->hold_body keeps the request until its body is read and judged
                         (the WAF); the upstream head is built, no target is picked yet */
    PT_PS_GUARD_WAIT, /* a guard makes the pipeline wait (forward_auth's call, server/fwdauth.c;
                         rate_limit's delay:, server/guard_hold.c; basic_auth's hash,
                         server/guard_auth.c), then resumes it; no handler
                         runs yet and the body is not read */
};

/* Body framing of one direction of a proxied exchange. The request's (req_body) is kept by the
   protocol that reads it (HTTP/1.1: h1_stream.c); handlers read is_done, is_chunked (no
   length announced) and pending. The response's (resp_body) is the proxy's. */
struct pt_body {
    bool is_chunked;           /* decoded from chunked input */
    bool is_close_delimited;   /* ends at EOF (responses only) */
    bool is_done;              /* last byte seen */
    uint64_t left;             /* Content-Length bytes still to come */
    uint32_t pending;          /* decoded bytes at the front of the input buffer not yet sent */
    uint16_t n_trailers;       /* trailer fields of a chunked body, once is_done */
    struct pt_field *trailers; /* malloc'd when trailers come (pt_body_chunked_decode):
                                  PT_BODY_TRAILERS_MAX fields, then dec.tr's bytes; freed by
                                  pt_body_free_trailers when the request ends */
    struct pt_h1_chunked dec;
};

/* Most cleanups one request may register (pt_req_on_end). */
#define PT_REQ_CLEANUPS_MAX 6

/* Most trailer fields one chunked body keeps (more is malformed). */
#define PT_BODY_TRAILERS_MAX 64

struct pt_req {
    struct pt_conn *c; /* the protocol's: handlers use stream and the fields below */
    const struct pt_stream_ops *stream; /* how to answer: the protocol's, or the top filter's */
    struct pt_h2_stream *h2s;           /* the HTTP/2 stream carrying it (server's); else NULL */
    uint8_t n_filters;                  /* body filters on chain (http/stream.h) */
    struct pt_worker *w;                /* the worker that runs it (the server's: opaque here) */
    const struct pt_handler_env *env;   /* the worker's services (loop, pool, scratch, random) */
    const struct pt_handler_res *res;   /* the snapshot's resources (== ws's) */
    struct pt_lb_worker *lb;            /* this worker's balancers for ws's snapshot */
    const struct pt_sockaddr *peer;     /* the client's address (its connection's peer) */
    struct pt_tls_conn *tls;            /* the client's TLS session; NULL on plain listeners */
    uint8_t listen_idx;                 /* the listen entry the request came in on */
    bool is_tls;                        /* the request came over TLS */
    struct pt_wsnap *ws;                /* snapshot this request runs on (holds a use) */
    const struct pt_config *cfg;        /* == ws snapshot's config */
    const struct pt_route_cfg *route;
    const struct pt_site_cfg *site; /* the site the request was routed in */
    uint64_t start_ms;
    int method_id;
    uint8_t minor_version;
    bool is_keepalive; /* connection may serve another request after this one */
    bool is_head;
    bool has_body; /* the request has a body (CL > 0 or chunked) */
    bool expect_continue;
    bool is_discarding;       /* a local answer waits while the request body is read and dropped */
    uint32_t discarded_bytes; /* request body bytes read and dropped so far (wire bytes) */
    bool wants_json;          /* Accept asks for JSON: error pages in JSON */
    bool is_grpc;             /* Content-Type application/grpc[+...]: errors as gRPC statuses */
    bool response_started;    /* a final response head went to the client */
    int status;               /* final status sent (for the log) */
    uint64_t bytes_out;       /* body bytes sent to the client */
    struct pt_body req_body;  /* client -> upstream */
    struct pt_body resp_body; /* upstream -> client */

    /* proxy */
    int pstate;           /* enum pt_proxy_state */
    struct pt_attempt at; /* upstream, target, connection, retries (upstream/attempt.h) */
    uint16_t set_cookie_len;
    struct pt_buf uout;    /* upstream request head, then chunk framing */
    const char *body_view; /* request body bytes being written upstream (req_body.pending) */
    uint32_t uhead_len;    /* length of the head at the front of uout (for a retry) */
    size_t resp_scan;      /* pt_h1_find_head_end position in the response */
    bool head_sent;        /* the whole upstream head was written */
    bool resp_head_seen;
    bool upstream_reusable;
    bool is_upgrade;     /* a WebSocket upgrade was forwarded (Connection: upgrade) */
    bool is_tunnel_idle; /* the tunnel's idle timer fired: the pump ends it */
    bool is_tunnel;      /* a tunnel opened: the exchange is logged however it ends, even
                            when its connection is closed under it (drain, a client gone) */
    bool is_ext_connect; /* an HTTP/2 extended CONNECT for websocket (RFC 8441): routed as a
                            GET, sent upstream as an HTTP/1.1 Upgrade */
    bool is_h2_upstream; /* the upstream speaks HTTP/2 (h2, h2c): handler/proxy_h2.c drives */
    int h2_body_status;  /* a status the request body's reading failed with (HTTP/2 upstream) */

    const char *upstream_name; /* for the access log; borrowed from the snapshot */
    /* Set by a body filter that must see the whole request body before any of the request
       leaves (the WAF, server/waf_guard.c): the proxy builds its head, then calls it on each
       wake-up (PT_PS_BODY_WAIT) and picks a target only once it returns PT_OK; PT_AGAIN:
       not yet (the stream calls back when bytes come); a status: answer with it. */
    int (*hold_body)(struct pt_req *r);

    /* what a handler or filter lets go of when the request ends (pt_req_on_end) */
    uint8_t n_cleanups;
    struct {
        void (*cb)(struct pt_req *r, void *arg);
        void *arg;
    } cleanups[PT_REQ_CLEANUPS_MAX];
    struct pt_str ureq_extra;    /* whole lines the upstream head receives (cache validators) */
    struct pt_str ureq_auth;     /* whole lines from the auth guards (claims_to_headers), owned
                                    by a cleanup of r; empty on routes without them */
    bool ureq_drop_conditionals; /* the client's If-* and Range fields stay here (the cache
                                    answers them) */
    bool is_detached;            /* a background request (env->detach): no client */
    uint64_t cl_req_key;    /* the server's: its client's in-flight count to give back (0: none;
                            server/connguard.c) */
    bool is_fill_leader;    /* detached: it leads the cache fill its parent began */
    uint8_t accept_codings; /* handler/compress.c: codings the client accepts (pt_compress_note) */
    void *cache;            /* handler/cache.c: the request's cache state, or NULL */

    /* for the access log (copied: the head is gone once dispatched); not cleared between
       requests: each is written NUL-terminated before use */
    char request_id[64];
    uint8_t request_id_len;
    char method[16];
    char uri[512];  /* request target, truncated */
    char host[264]; /* a DNS name (at most 253 bytes), ":port", NUL; longer: 400 */
    char referer[256];
    char user_agent[256];
    char lb_key[256];     /* hash or cookie balancer input (at.key borrows it), from dispatch */
    char set_cookie[256]; /* Set-Cookie lines for the response (set_cookie_len bytes) */
    char ws_key[28];      /* is_ext_connect: the Sec-WebSocket-Key sent upstream, NUL-ended */
    struct pt_stream_chain chain; /* body filters, n_filters of them (http/stream.h) */
};

/* Decodes buf[0..*len) of a chunked body with b->dec (pt_h1_chunked_decode's contract, and
   its results less PT_H1_TRAILERS), keeping the trailer fields: their memory is allocated
   only when a trailer section with fields comes, and b->trailers/n_trailers hold them once
   the body ended. A section over limits (bytes, PT_BODY_TRAILERS_MAX fields) is PT_H1_EBAD;
   when no memory is left its fields are dropped. */
ssize_t pt_body_chunked_decode(struct pt_body *b, char *buf, size_t *len);

/* Frees b's trailers (none: nothing). */
void pt_body_free_trailers(struct pt_body *b);

/* Registers cb(r, arg) to run when r ends, however it ends (finished, reset, the client gone),
   after the handler's abort and before r's memory is reused; cleanups run last registered
   first. Returns 0, or -1 when PT_REQ_CLEANUPS_MAX are registered. */
int pt_req_on_end(struct pt_req *r, void (*cb)(struct pt_req *r, void *arg), void *arg);

/* Runs and forgets r's cleanups (the protocol calls it when r ends). */
void pt_req_run_cleanups(struct pt_req *r);

/* Pushes a filter on r's chain: from now on r->stream is ops, whose operations reach the layer
   below with pt_stream_below. state is the filter's, for this request (the caller owns it).
   Returns 0, or -1 when the chain is full. */
int pt_stream_push_filter(struct pt_req *r, const struct pt_stream_ops *ops, void *state);

/* The table below the filter self on r's chain (the next filter or the protocol's). self must
   be on the chain. */
const struct pt_stream_ops *pt_stream_below(const struct pt_req *r,
                                            const struct pt_stream_ops *self);

/* The state the filter self was pushed with on r's chain; NULL when it is not on it. */
void *pt_stream_filter_state(const struct pt_req *r, const struct pt_stream_ops *self);

#endif
