/*
 * admin.c - the admin listener's thread, connections and HTTP/1.1 handling (see admin.h).
 *
 * One thread, one pt_loop, one listening socket: the admin API is off the request path, so
 * a slow handler (a SQLite write) or a flood of admin calls never delays a worker, and the
 * workers' loops carry nothing for it. The thread owns its connections; the main thread talks
 * to it only through the state handover (a mutex and an eventfd, as upstream/health.c does)
 * and the ready flag (an atomic).
 *
 * State: struct pt_admin_state is what one configuration gives the listener (tokens, TLS
 * context, limits, audit path). It is built on the main thread with the snapshot (reading the
 * tokens file and certificates may block; an error fails the load or the reload like any
 * other), reference-counted, and handed to the thread on reload; the thread drops the old one
 * when it adopts the new. Connections keep their own reference on the TLS context they
 * started with.
 *
 * A connection is a small state machine over the transport (core/transport.h: plain TCP or
 * TLS, one code path):
 *
 *     HANDSHAKE --done--> READ --whole request--> WRITE --sent--> READ (keep-alive)
 *                          |                       |--sent, close--> closed
 *                          +--timeout: 408 if a request had begun, else close
 *
 * Requests are read into one buffer of limits.header_size bytes, grown to hold the body
 * (Content-Length only, at most PT_ADMIN_BODY_MAX: chunked is 411), parsed by Portico's own
 * strict parser (http/h1_parse.h): anything it refuses is 400 and the connection closes. The
 * answer is built whole (head and JSON) and written in one buffer. Timeouts are the traffic
 * listeners': limits.header_timeout for the TLS handshake and a request's head and body
 * (armed once when the request starts, so a slow sender cannot stretch it),
 * limits.keepalive_timeout between requests, limits.send_timeout while answering.
 *
 * Allocation per request is fine here (the admin path carries operators, not traffic);
 * every buffer has a bound.
 */
#include "admin/admin.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin/audit.h"
#include "admin/tokens.h"
#include "core/common.h"
#include "core/counters.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/sock.h"
#include "core/transport.h"
#include "http/fields.h"
#include "http/h1_parse.h"
#include "tls/tls.h"
#include "tls/tls_transport.h"

#define HEADERS_MAX 64 /* header fields in a request; more: 431 */
#define EXTRA_MAX 1024 /* bytes of handler-added response headers */
#define REALM "portico-admin"

struct pt_admin_state {
    atomic_int refs;
    char *listen_text;
    struct pt_sockaddr addr;
    struct pt_tls_ctx *tls; /* NULL: plain */
    struct pt_tokens tokens;
    char *audit_log;       /* NULL: none */
    struct pt_cidr *allow; /* admin.allow_private, copied (the config may go first) */
    size_t n_allow;
    char **file_hosts; /* host names of the configuration file's sites, copied */
    size_t n_file_hosts;
    uint32_t header_timeout_ms, keepalive_timeout_ms, send_timeout_ms;
    size_t header_max, uri_max;
};

struct route {
    char method[16];
    char *pattern; /* owned */
    int flags;
    pt_admin_handler_cb cb;
    void *arg;
};

enum { AC_HANDSHAKE, AC_READ, AC_WRITE };

struct aconn {
    struct pt_admin *a;
    struct pt_io io;
    struct pt_transport tr;
    struct pt_timer timer;
    struct pt_defer d;
    int state;
    bool in_request;    /* bytes of a request have arrived (the header timer runs) */
    bool sent_continue; /* 100 Continue was sent for the current request */
    bool close_after;   /* close once the answer is written */
    bool is_interim;    /* c->out is a 100 Continue: the request is still being read */
    char *in;
    size_t in_len, in_cap, scanned;
    size_t head_len; /* of the current request once its end was found; 0 before */
    char *out;
    size_t out_len, out_sent;
    struct aconn *prev, *next;
    char peer[64];
};

struct pt_admin {
    pthread_t thread;
    bool is_started;
    struct pt_loop loop;
    struct pt_io lsn;
    struct pt_io wake; /* eventfd */
    atomic_bool stop;
    atomic_bool ready;
    pthread_mutex_t mu;
    struct pt_admin_state *pending; /* guarded by mu: adopted on the next wake */
    struct pt_admin_state *st;      /* the thread's (main's before start) */
    struct pt_sockaddr bound;       /* the address bound at start (a reload does not move it) */
    char bound_text[64];            /* as written */
    struct pt_audit *audit;
    struct route *routes;
    size_t n_routes;
    struct aconn *conns;
    size_t n_conns;
    void (*on_change)(void *arg); /* the change hook, or NULL */
    void *on_change_arg;
    struct pt_ctr_block *ctr;  /* bound by the thread, or NULL */
    void (*own_free)(void *p); /* frees own in pt_admin_destroy */
    void *own;
};

struct pt_admin_req {
    struct pt_admin *a;
    const char *method;
    char *path; /* NUL-terminated copy */
    const char *query;
    const struct pt_field *headers;
    size_t n_headers;
    const char *body;
    size_t body_len;
    const char *token_name;
    int scope;
    const char *pnames[PT_ADMIN_PARAMS_MAX];
    char *pvals[PT_ADMIN_PARAMS_MAX];
    size_t n_params;
    int status; /* 0 until answered */
    json_t *reply;
    char *text; /* a text answer instead of JSON (pt_admin_reply_text), owned */
    size_t text_len;
    const char *text_type; /* its Content-Type (static) */
    char extra[EXTRA_MAX];
    size_t extra_len;
};

/* ---- state ------------------------------------------------------------------------------ */

void pt_admin_state_unref(struct pt_admin_state *st)
{
    if (!st || atomic_fetch_sub_explicit(&st->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (st->tls)
        pt_tls_ctx_unref(st->tls);
    pt_tokens_free(&st->tokens);
    free(st->listen_text);
    free(st->audit_log);
    free(st->allow);
    for (size_t i = 0; i < st->n_file_hosts; i++)
        free(st->file_hosts[i]);
    free(st->file_hosts);
    free(st);
}

static struct pt_admin_state *state_ref(struct pt_admin_state *st)
{
    atomic_fetch_add_explicit(&st->refs, 1, memory_order_relaxed);
    return st;
}

int pt_admin_state_new(const struct pt_config *cfg, struct pt_admin_state **out, char *err,
                       size_t errlen)
{
    const struct pt_admin_cfg *ad = &cfg->admin;
    *out = NULL;
    if (!ad->is_set)
        return 0;
    struct pt_admin_state *st = calloc(1, sizeof(*st));
    if (!st)
        goto oom;
    atomic_init(&st->refs, 1);
    st->addr = ad->addr;
    st->listen_text = strdup(ad->listen_text);
    st->audit_log = ad->audit_log ? strdup(ad->audit_log) : NULL;
    if (!st->listen_text || (ad->audit_log && !st->audit_log))
        goto oom;
    if (ad->n_allow_private) {
        st->allow = malloc(ad->n_allow_private * sizeof(*st->allow));
        if (!st->allow)
            goto oom;
        memcpy(st->allow, ad->allow_private, ad->n_allow_private * sizeof(*st->allow));
        st->n_allow = ad->n_allow_private;
    }
    size_t n_hosts = 0;
    for (size_t i = 0; i < cfg->n_sites; i++)
        n_hosts += cfg->sites[i].is_api ? 0 : cfg->sites[i].n_hosts;
    st->file_hosts = calloc(n_hosts ? n_hosts : 1, sizeof(*st->file_hosts));
    if (!st->file_hosts)
        goto oom;
    for (size_t i = 0; i < cfg->n_sites; i++) {
        for (size_t h = 0; !cfg->sites[i].is_api && h < cfg->sites[i].n_hosts; h++) {
            if (!(st->file_hosts[st->n_file_hosts] = strdup(cfg->sites[i].hosts[h])))
                goto oom;
            st->n_file_hosts++;
        }
    }
    st->header_timeout_ms = cfg->limits.header_timeout_ms;
    st->keepalive_timeout_ms = cfg->limits.keepalive_timeout_ms;
    st->send_timeout_ms = cfg->limits.send_timeout_ms;
    st->header_max = cfg->limits.header_size;
    st->uri_max = cfg->limits.uri_size;
    if (pt_tokens_load(ad->tokens_file, &st->tokens, err, errlen) < 0)
        goto fail;
    if (ad->tls_cert && ad->tls_key) {
        struct pt_tls_cert_settings cert = {ad->tls_cert, ad->tls_key};
        struct pt_tls_settings ts;
        pt_tls_settings_init(&ts);
        ts.certs = &cert;
        ts.n_certs = 1;
        ts.min_version = cfg->tls.min_version;
        ts.client_ca_file = ad->client_ca;
        ts.client_auth = ad->client_ca ? PT_TLS_CLIENT_AUTH_REQUIRED : PT_TLS_CLIENT_AUTH_NONE;
        struct pt_tls_err te;
        memset(&te, 0, sizeof(te));
        st->tls = pt_tls_ctx_new(&ts, &te);
        if (!st->tls) {
            snprintf(err, errlen, "%s:%d:%d: admin tls: %s", cfg->path, ad->tls_pos.line,
                     ad->tls_pos.col, te.msg);
            goto fail;
        }
    }
    *out = st;
    return 0;
oom:
    snprintf(err, errlen, "%s: out of memory", cfg->path);
fail:
    pt_admin_state_unref(st);
    return -1;
}

/* ---- connections ------------------------------------------------------------------------ */

static void conn_free(struct pt_defer *d)
{
    struct aconn *c = PT_CONTAINER_OF(d, struct aconn, d);
    free(c->in);
    free(c->out);
    free(c);
}

static void conn_close(struct aconn *c)
{
    struct pt_admin *a = c->a;
    if (c->io.fd < 0)
        return;
    pt_transport_shutdown(&c->tr, c->close_after);
    pt_transport_free(&c->tr);
    pt_loop_close(&a->loop, &c->io);
    pt_timer_stop(&a->loop, &c->timer);
    if (c->prev)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    a->n_conns--;
    pt_loop_defer(&a->loop, &c->d, conn_free);
}

static json_t *error_body(const char *field, const char *message)
{
    return json_pack("{s:[{s:s?, s:s}]}", "errors", "field", field, "message", message);
}

/* Builds the answer into c->out: head, extra headers, and the body (omitted for HEAD): raw of
   raw_len bytes with Content-Type raw_type when raw is set, else body as JSON. Returns 0, or -1
   when out of memory (the connection is then closed). */
static int build_answer(struct aconn *c, int status, json_t *body, const char *raw, size_t raw_len,
                        const char *raw_type, const char *extra, size_t extra_len, bool is_head)
{
    char *text = NULL;
    size_t tlen = 0, blen = 0;
    const char *ctype = NULL;
    if (raw && status != 204 && status != 304) {
        ctype = raw_type;
        blen = raw_len;
    } else if (body && status != 204 && status != 304) {
        text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!text)
            return -1;
        tlen = strlen(text);
        ctype = "application/json";
        blen = tlen + 1; /* a newline ends the JSON text */
    }
    size_t cap = 320 + extra_len + blen + 1;
    char *o = malloc(cap);
    if (!o) {
        free(text);
        return -1;
    }
    int w =
        snprintf(o, cap,
                 "HTTP/1.1 %d %s\r\n%s%s%sCache-Control: no-store\r\n"
                 "X-Content-Type-Options: nosniff\r\nContent-Length: %zu\r\n%s%.*s\r\n",
                 status, pt_http_reason(status), ctype ? "Content-Type: " : "", ctype ? ctype : "",
                 ctype ? "\r\n" : "", blen, c->close_after ? "Connection: close\r\n" : "",
                 (int)extra_len, extra ? extra : "");
    size_t n = (size_t)w;
    if (!is_head && ctype && text) {
        memcpy(o + n, text, tlen);
        n += tlen;
        o[n++] = '\n';
    } else if (!is_head && ctype) {
        memcpy(o + n, raw, raw_len);
        n += raw_len;
    }
    free(text);
    free(c->out);
    c->out = o;
    c->out_len = n;
    c->out_sent = 0;
    c->state = AC_WRITE;
    return 0;
}

/* An error answer that ends the connection (protocol errors, timeouts). */
static void answer_and_close(struct aconn *c, int status, const char *message)
{
    c->close_after = true;
    json_t *b = error_body(NULL, message);
    int rc = build_answer(c, status, b, NULL, 0, NULL, NULL, 0, false);
    json_decref(b);
    if (rc < 0)
        conn_close(c);
}

static void arm(struct aconn *c, uint32_t ms)
{
    pt_timer_set(&c->a->loop, &c->timer, ms ? ms : 1);
}

static void drive(struct aconn *c);

static void on_timer(struct pt_timer *t)
{
    struct aconn *c = PT_CONTAINER_OF(t, struct aconn, timer);
    if (c->state == AC_READ && c->in_request) {
        pt_log_debug("admin: %s: request not complete in time: 408", c->peer);
        answer_and_close(c, 408, "the request did not arrive in time");
        if (c->io.fd >= 0) {
            arm(c, c->a->st->send_timeout_ms);
            drive(c);
        }
        return;
    }
    conn_close(c);
}

/* ---- routing and authentication ---------------------------------------------------------- */

/* Whether path matches pattern; captures parameters into q (pointers into q->path's copy
   segments, made NUL-terminated in scratch). */
static bool match(const char *pattern, const char *path, struct pt_admin_req *q, char *scratch,
                  size_t scratch_len)
{
    const char *p = pattern, *s = path;
    size_t used = 0, np = 0;
    const char *names[PT_ADMIN_PARAMS_MAX];
    char *vals[PT_ADMIN_PARAMS_MAX];
    while (*p && *s) {
        if (*p != '/' || *s != '/')
            return false;
        p++;
        s++;
        const char *pe = strchrnul(p, '/'), *se = strchrnul(s, '/');
        size_t pl = (size_t)(pe - p), sl = (size_t)(se - s);
        if (pl > 0 && p[0] == ':') {
            if (sl == 0 || np == PT_ADMIN_PARAMS_MAX || used + sl + 1 > scratch_len)
                return false;
            names[np] = p + 1;
            vals[np] = scratch + used;
            memcpy(scratch + used, s, sl);
            scratch[used + sl] = '\0';
            used += sl + 1;
            np++;
        } else if (pl != sl || memcmp(p, s, pl) != 0) {
            return false;
        }
        p = pe;
        s = se;
    }
    if (*p || *s)
        return false;
    if (q) {
        for (size_t i = 0; i < np; i++) {
            q->pnames[i] = names[i];
            q->pvals[i] = vals[i];
        }
        q->n_params = np;
    }
    return true;
}

/* Finds the Bearer token among the request's headers. Returns 1 with [*tok, *tok + *n), 0
   when there is no Authorization header, -1 when it is not one well-formed Bearer token. */
static int bearer(const struct pt_field *h, size_t nh, const char **tok, size_t *n)
{
    int found = 0;
    for (size_t i = 0; i < nh; i++) {
        if (h[i].name.n != 13 || strncasecmp(h[i].name.p, "authorization", 13) != 0)
            continue;
        if (found)
            return -1; /* two Authorization headers */
        found = 1;
        const char *v = h[i].value.p;
        size_t vl = h[i].value.n;
        if (vl < 8 || strncasecmp(v, "bearer ", 7) != 0)
            return -1;
        size_t k = 7;
        while (k < vl && v[k] == ' ')
            k++;
        if (k == vl)
            return -1;
        for (size_t j = k; j < vl; j++)
            if (v[j] == ' ' || v[j] == '\t')
                return -1;
        *tok = v + k;
        *n = vl - k;
    }
    return found;
}

static bool is_read_method(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
}

static void reply_auth(struct pt_admin_req *q, int status, const char *err_code,
                       const char *message)
{
    char h[160];
    if (err_code)
        snprintf(h, sizeof(h), "Bearer realm=\"%s\", error=\"%s\"", REALM, err_code);
    else
        snprintf(h, sizeof(h), "Bearer realm=\"%s\"", REALM);
    pt_admin_reply_error(q, status, NULL, message);
    pt_admin_reply_header(q, "WWW-Authenticate", h);
}

/* Routes and authenticates q, then runs its handler. */
static void dispatch(struct pt_admin *a, struct pt_admin_req *q, char *scratch, size_t scratch_len)
{
    const char *m = strcmp(q->method, "HEAD") == 0 ? "GET" : q->method;
    const struct route *hit = NULL;
    char allow[128] = "";
    size_t al = 0;
    for (size_t i = 0; i < a->n_routes && !hit; i++) {
        const struct route *r = &a->routes[i];
        if (!match(r->pattern, q->path, NULL, scratch, scratch_len))
            continue;
        if (strcmp(r->method, m) == 0) {
            hit = r;
            break;
        }
        if (!strstr(allow, r->method) && al + strlen(r->method) + 8 < sizeof(allow))
            al += (size_t)snprintf(allow + al, sizeof(allow) - al, "%s%s%s", al ? ", " : "",
                                   r->method, strcmp(r->method, "GET") == 0 ? ", HEAD" : "");
    }
    /* Only public routes answer without a token: an unknown path is 401 too, so that the
       table of endpoints is not visible to anyone who can connect. */
    if (!hit || !(hit->flags & PT_ADMIN_PUBLIC)) {
        const char *tok = NULL;
        size_t tn = 0;
        int b = bearer(q->headers, q->n_headers, &tok, &tn);
        if (b == 0) {
            reply_auth(q, 401, NULL, "a bearer token is required (Authorization: Bearer TOKEN)");
            return;
        }
        const struct pt_token *t = b > 0 ? pt_tokens_find(&a->st->tokens, tok, tn) : NULL;
        if (!t) {
            reply_auth(q, 401, "invalid_token", "the bearer token is not valid");
            return;
        }
        q->token_name = t->name;
        q->scope = t->scope;
        if (!is_read_method(q->method) && t->scope != PT_SCOPE_WRITE) {
            reply_auth(q, 403, "insufficient_scope",
                       "this token has the read scope: changes need a write token");
            return;
        }
    }
    if (!hit && al) {
        pt_admin_reply_error(q, 405, NULL, "method not allowed on this path");
        pt_admin_reply_header(q, "Allow", allow);
        return;
    }
    if (!hit) {
        pt_admin_reply_error(q, 404, NULL, "no such endpoint");
        return;
    }
    (void)match(hit->pattern, q->path, q, scratch, scratch_len);
    hit->cb(q, hit->arg);
    if (!q->status)
        pt_admin_reply_error(q, 500, NULL, "the handler gave no answer");
}

/* Handles the complete request head [0, hl) and body [hl, hl + blen) of c->in: builds the
   answer into c->out. Returns 0, or -1 after closing c. */
static int handle(struct aconn *c, const struct pt_h1_request *r, size_t hl, size_t blen)
{
    struct pt_admin *a = c->a;
    struct pt_admin_req *q = calloc(1, sizeof(*q));
    size_t tl = r->target.n;
    char *path = malloc(2 * tl + 2); /* the path, then room for the parameters' copies */
    char method[16];
    int rc = -1;
    if (!q || !path)
        goto out;
    snprintf(method, sizeof(method), "%.*s", (int)PT_MIN(r->method.n, sizeof(method) - 1),
             r->method.p);
    memcpy(path, r->target.p, tl);
    path[tl] = '\0';
    char *qm = strchr(path, '?');
    q->query = "";
    if (qm) {
        *qm = '\0';
        q->query = qm + 1;
    }
    q->a = a;
    q->method = method;
    q->path = path;
    q->headers = r->headers;
    q->n_headers = r->num_headers;
    q->body = c->in + hl;
    q->body_len = blen;
    q->token_name = "";
    bool is_head = strcmp(method, "HEAD") == 0;
    if (path[0] != '/')
        pt_admin_reply_error(q, 400, NULL, "the request target must be a path");
    else
        dispatch(a, q, path + tl + 1, tl + 1);
    if (q->status >= 400)
        pt_log_debug("admin: %s %s %s from %s: %d", q->token_name[0] ? q->token_name : "-", method,
                     path, c->peer, q->status);
    else if (!is_read_method(method))
        pt_log_info("admin: token %s: %s %s: %d", q->token_name, method, path, q->status);
    c->close_after = c->close_after || r->framing.conn_close ||
                     (r->minor_version == 0 && !r->framing.conn_keepalive);
    rc = build_answer(c, q->status, q->reply, q->text, q->text_len, q->text_type, q->extra,
                      q->extra_len, is_head);
out:
    if (q) {
        json_decref(q->reply);
        free(q->text);
    }
    free(q);
    free(path);
    if (rc < 0)
        conn_close(c);
    return rc;
}

/* Looks at c->in for a complete request. Returns 1 when an answer is ready in c->out, 0 when
   more bytes are needed, -1 when c was closed. */
static int try_request(struct aconn *c)
{
    const struct pt_admin_state *st = c->a->st;
    ssize_t hl =
        c->head_len ? (ssize_t)c->head_len : pt_h1_find_head_end(c->in, c->in_len, &c->scanned);
    if (hl == PT_H1_INCOMPLETE) {
        if (c->in_len >= st->header_max) {
            answer_and_close(c, 431, "the request head is too large");
            return c->io.fd < 0 ? -1 : 1;
        }
        return 0;
    }
    struct pt_field hdrs[HEADERS_MAX];
    struct pt_h1_request r;
    memset(&r, 0, sizeof(r));
    r.headers = hdrs;
    r.num_headers = HEADERS_MAX;
    int prc = pt_h1_parse_request(c->in, (size_t)hl, &r, st->uri_max);
    if (prc < 0) {
        int status = prc == PT_H1_ETOOMANY   ? 431
                     : prc == PT_H1_EURI     ? 414
                     : prc == PT_H1_EVERSION ? 505
                     : prc == PT_H1_ECODING  ? 501
                                             : 400;
        answer_and_close(c, status, "malformed request");
        return c->io.fd < 0 ? -1 : 1;
    }
    if (r.framing.is_chunked) {
        answer_and_close(c, 411, "send the body with Content-Length");
        return c->io.fd < 0 ? -1 : 1;
    }
    size_t blen = r.framing.content_length > 0 ? (size_t)r.framing.content_length : 0;
    if (r.framing.content_length > (int64_t)PT_ADMIN_BODY_MAX) {
        answer_and_close(c, 413, "the request body is larger than 1 MiB");
        return c->io.fd < 0 ? -1 : 1;
    }
    c->head_len = (size_t)hl; /* the scan does not find an end it has passed: keep it */
    size_t need = (size_t)hl + blen;
    if (need > c->in_cap) {
        char *ni = realloc(c->in, need);
        if (!ni) {
            conn_close(c);
            return -1;
        }
        c->in = ni;
        c->in_cap = need;
    }
    if (c->in_len < need) {
        if (r.expect_continue && !c->sent_continue) {
            /* RFC 9110 §10.1.1: an interim answer, written like any other (a TLS write that
               waits must be offered the same bytes again), then back to reading. */
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            char *o = malloc(sizeof(cont) - 1);
            if (!o) {
                conn_close(c);
                return -1;
            }
            memcpy(o, cont, sizeof(cont) - 1);
            free(c->out);
            c->out = o;
            c->out_len = sizeof(cont) - 1;
            c->out_sent = 0;
            c->sent_continue = true;
            c->is_interim = true;
            c->state = AC_WRITE;
            return 1;
        }
        return 0;
    }
    if (handle(c, &r, (size_t)hl, blen) < 0)
        return -1;
    memmove(c->in, c->in + need, c->in_len - need);
    c->in_len -= need;
    c->scanned = 0;
    c->head_len = 0;
    c->in_request = false;
    c->sent_continue = false;
    return 1;
}

/* Runs c until it must wait for I/O (or is closed). */
static void drive(struct aconn *c)
{
    const struct pt_admin_state *st = c->a->st;
    while (c->io.fd >= 0) {
        if (c->state == AC_HANDSHAKE) {
            int rc = pt_transport_handshake(&c->tr);
            if (rc == PT_AGAIN)
                return;
            if (rc != PT_OK) {
                pt_log_info("admin: TLS handshake with %s failed: %s", c->peer,
                            pt_transport_error(&c->tr));
                conn_close(c);
                return;
            }
            c->state = AC_READ;
            arm(c, st->keepalive_timeout_ms);
        } else if (c->state == AC_READ) {
            int rc = c->in_len ? try_request(c) : 0;
            if (rc < 0)
                return;
            if (rc > 0) {
                arm(c, st->send_timeout_ms);
                continue;
            }
            if (!c->tr.can_read && !pt_transport_pending(&c->tr))
                return;
            ssize_t n = pt_transport_read(&c->tr, c->in + c->in_len, c->in_cap - c->in_len);
            if (n == -EAGAIN)
                return;
            if (n <= 0) {
                conn_close(c);
                return;
            }
            c->in_len += (size_t)n;
            if (!c->in_request) {
                c->in_request = true;
                arm(c, st->header_timeout_ms);
            }
        } else {
            struct iovec iov = {c->out + c->out_sent, c->out_len - c->out_sent};
            if (!c->tr.can_write)
                return;
            ssize_t n = pt_transport_writev(&c->tr, &iov, 1, false);
            if (n == -EAGAIN)
                return;
            if (n < 0) {
                conn_close(c);
                return;
            }
            c->out_sent += (size_t)n;
            arm(c, st->send_timeout_ms);
            if (c->out_sent < c->out_len)
                continue;
            free(c->out);
            c->out = NULL;
            c->out_len = c->out_sent = 0;
            if (c->is_interim) {
                c->is_interim = false;
                c->state = AC_READ;
                arm(c, st->header_timeout_ms);
                continue;
            }
            if (c->close_after) {
                conn_close(c);
                return;
            }
            c->state = AC_READ;
            if (c->in_len) {
                c->in_request = true;
                arm(c, st->header_timeout_ms);
            } else {
                arm(c, st->keepalive_timeout_ms);
            }
        }
    }
}

static void on_conn(struct pt_io *io, uint32_t events)
{
    struct aconn *c = PT_CONTAINER_OF(io, struct aconn, io);
    pt_transport_events(&c->tr, events);
    drive(c);
}

static void accept_one(struct pt_admin *a, int fd, const struct sockaddr *sa)
{
    char peer[64] = "-";
    pt_sock_ntop_port(sa, peer, sizeof(peer));
    if (a->n_conns >= PT_ADMIN_CONNS_MAX) {
        pt_log_ratelimited(PT_LOG_WARN, "admin: %d connections open: closing %s",
                           PT_ADMIN_CONNS_MAX, peer);
        close(fd);
        return;
    }
    struct aconn *c = calloc(1, sizeof(*c));
    char *in = malloc(a->st->header_max);
    if (!c || !in) {
        free(c);
        free(in);
        close(fd);
        return;
    }
    c->a = a;
    c->in = in;
    c->in_cap = a->st->header_max;
    memcpy(c->peer, peer, sizeof(peer));
    pt_timer_init(&c->timer, on_timer);
    if (a->st->tls) {
        if (pt_tls_transport_server_init(&c->tr, a->st->tls, fd) < 0) {
            free(in);
            free(c);
            close(fd);
            return;
        }
        c->state = AC_HANDSHAKE;
    } else {
        pt_transport_plain_init(&c->tr, fd);
        c->state = AC_READ;
    }
    c->io.fd = fd;
    c->io.cb = on_conn;
    if (pt_loop_add(&a->loop, &c->io, EPOLLIN | EPOLLOUT | EPOLLRDHUP, false) < 0) {
        pt_transport_free(&c->tr);
        close(fd);
        free(in);
        free(c);
        return;
    }
    c->next = a->conns;
    if (a->conns)
        a->conns->prev = c;
    a->conns = c;
    a->n_conns++;
    arm(c, c->state == AC_HANDSHAKE ? a->st->header_timeout_ms : a->st->keepalive_timeout_ms);
}

static void on_accept(struct pt_io *io, uint32_t events)
{
    (void)events;
    struct pt_admin *a = PT_CONTAINER_OF(io, struct pt_admin, lsn);
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(io->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN)
                pt_log_ratelimited(PT_LOG_ERROR, "admin: accept: %s", strerror(errno));
            return;
        }
        accept_one(a, fd, (struct sockaddr *)&ss);
    }
}

/* ---- thread and handover ---------------------------------------------------------------- */

static void on_wake(struct pt_io *io, uint32_t events)
{
    (void)events;
    struct pt_admin *a = PT_CONTAINER_OF(io, struct pt_admin, wake);
    uint64_t v;
    while (read(io->fd, &v, sizeof(v)) > 0) {
    }
    pthread_mutex_lock(&a->mu);
    struct pt_admin_state *st = a->pending;
    a->pending = NULL;
    pthread_mutex_unlock(&a->mu);
    if (st) {
        pt_admin_state_unref(a->st);
        a->st = st;
    }
}

static void *run(void *arg)
{
    struct pt_admin *a = arg;
    pt_ctr_bind(a->ctr);
    while (!atomic_load_explicit(&a->stop, memory_order_acquire))
        pt_loop_run_once(&a->loop, 1000);
    pt_ctr_bind(NULL);
    return NULL;
}

static void live(struct pt_admin_req *q, void *arg)
{
    (void)arg;
    pt_admin_reply(q, 200, json_pack("{s:s}", "status", "live"));
}

static void ready(struct pt_admin_req *q, void *arg)
{
    (void)arg;
    bool ok = atomic_load_explicit(&q->a->ready, memory_order_acquire);
    pt_admin_reply(q, ok ? 200 : 503, json_pack("{s:s}", "status", ok ? "ready" : "not ready"));
}

struct pt_admin *pt_admin_new(struct pt_admin_state *st, char *err, size_t errlen)
{
    struct pt_admin *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "admin: out of memory");
        return NULL;
    }
    a->lsn.fd = a->wake.fd = -1;
    if (pt_loop_init(&a->loop) < 0) {
        free(a);
        snprintf(err, errlen, "admin: cannot make an event loop");
        return NULL;
    }
    pthread_mutex_init(&a->mu, NULL);
    atomic_init(&a->stop, false);
    atomic_init(&a->ready, false);
    a->st = state_ref(st);
    a->bound = st->addr;
    snprintf(a->bound_text, sizeof(a->bound_text), "%s", st->listen_text);
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "admin: eventfd: %s", strerror(errno));
        goto fail;
    }
    a->wake.fd = fd;
    a->wake.cb = on_wake;
    if (pt_loop_add(&a->loop, &a->wake, EPOLLIN, false) < 0) {
        snprintf(err, errlen, "admin: cannot watch the wake-up descriptor");
        goto fail;
    }
    fd = pt_sock_listen(&st->addr.u.sa, st->addr.len, 64);
    if (fd < 0) {
        snprintf(err, errlen, "cannot listen on admin address %s: %s", st->listen_text,
                 strerror(-fd));
        goto fail;
    }
    a->lsn.fd = fd;
    a->lsn.cb = on_accept;
    if (pt_loop_add(&a->loop, &a->lsn, EPOLLIN, false) < 0) {
        snprintf(err, errlen, "admin: cannot watch the listening socket");
        goto fail;
    }
    a->audit = pt_audit_open(st->audit_log, err, errlen);
    if (!a->audit)
        goto fail;
    if (pt_admin_route(a, "GET", "/live", PT_ADMIN_PUBLIC, live, NULL) < 0 ||
        pt_admin_route(a, "GET", "/ready", PT_ADMIN_PUBLIC, ready, NULL) < 0) {
        snprintf(err, errlen, "admin: out of memory");
        goto fail;
    }
    return a;
fail:
    pt_admin_destroy(a);
    return NULL;
}

int pt_admin_route(struct pt_admin *a, const char *method, const char *pattern, int flags,
                   pt_admin_handler_cb cb, void *arg)
{
    PT_BUG_ON(a->is_started);
    size_t np = 0;
    if (pattern[0] != '/' || strlen(method) >= sizeof(a->routes[0].method) || !cb)
        return -1;
    for (const char *p = pattern; *p; p++) {
        if (*p == '/' && p[1] == ':') {
            if (p[2] == '\0' || p[2] == '/' || ++np > PT_ADMIN_PARAMS_MAX)
                return -1;
        }
    }
    struct route *nr = realloc(a->routes, (a->n_routes + 1) * sizeof(*nr));
    if (!nr)
        return -1;
    a->routes = nr;
    struct route *r = &nr[a->n_routes];
    memset(r, 0, sizeof(*r));
    r->pattern = strdup(pattern);
    if (!r->pattern)
        return -1;
    snprintf(r->method, sizeof(r->method), "%s", method);
    r->flags = flags;
    r->cb = cb;
    r->arg = arg;
    a->n_routes++;
    return 0;
}

void pt_admin_on_change(struct pt_admin *a, void (*cb)(void *arg), void *arg)
{
    PT_BUG_ON(a->is_started);
    a->on_change = cb;
    a->on_change_arg = arg;
}

void pt_admin_bind_counters(struct pt_admin *a, struct pt_ctr_block *b)
{
    PT_BUG_ON(a->is_started);
    a->ctr = b;
}

void pt_admin_own(struct pt_admin *a, void (*free_cb)(void *p), void *p)
{
    a->own_free = free_cb;
    a->own = p;
}

int pt_admin_start(struct pt_admin *a)
{
    int rc = pthread_create(&a->thread, NULL, run, a);
    if (rc != 0)
        return -rc;
    a->is_started = true;
    pt_log_info("admin listener on %s%s", a->st->listen_text, a->st->tls ? " (TLS)" : "");
    return 0;
}

void pt_admin_update(struct pt_admin *a, struct pt_admin_state *st)
{
    if (!st) {
        pt_log_warn("reload: the admin section was removed: the admin listener stays until a "
                    "restart");
        return;
    }
    if (!pt_sockaddr_eq(&st->addr, &a->bound))
        pt_log_warn("reload: admin listen %s takes effect after a restart (still on %s)",
                    st->listen_text, a->bound_text);
    char err[512];
    if (pt_audit_set_path(a->audit, st->audit_log, err, sizeof(err)) < 0)
        pt_log_error("reload: %s; the audit log stays where it was", err);
    if (!a->is_started) {
        pt_admin_state_unref(a->st);
        a->st = state_ref(st);
        return;
    }
    pthread_mutex_lock(&a->mu);
    struct pt_admin_state *old = a->pending;
    a->pending = state_ref(st);
    pthread_mutex_unlock(&a->mu);
    pt_admin_state_unref(old);
    uint64_t one = 1;
    if (write(a->wake.fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        pt_log_error("admin: cannot wake the admin thread: %s", strerror(errno));
}

void pt_admin_set_ready(struct pt_admin *a, bool is_ready)
{
    if (a)
        atomic_store_explicit(&a->ready, is_ready, memory_order_release);
}

void pt_admin_reopen_logs(struct pt_admin *a)
{
    if (a)
        pt_audit_reopen(a->audit);
}

void pt_admin_destroy(struct pt_admin *a)
{
    if (!a)
        return;
    if (a->is_started) {
        atomic_store_explicit(&a->stop, true, memory_order_release);
        uint64_t one = 1;
        if (write(a->wake.fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
            pt_log_error("admin: cannot wake the admin thread: %s", strerror(errno));
        pthread_join(a->thread, NULL);
    }
    while (a->conns)
        conn_close(a->conns);
    if (a->lsn.fd >= 0)
        pt_loop_close(&a->loop, &a->lsn);
    if (a->wake.fd >= 0)
        pt_loop_close(&a->loop, &a->wake);
    pt_loop_run_once(&a->loop, 0); /* runs the deferred frees */
    pt_loop_destroy(&a->loop);
    pt_admin_state_unref(a->pending);
    pt_admin_state_unref(a->st);
    pt_audit_close(a->audit);
    if (a->own_free)
        a->own_free(a->own);
    for (size_t i = 0; i < a->n_routes; i++)
        free(a->routes[i].pattern);
    free(a->routes);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

/* ---- the handlers' side ------------------------------------------------------------------ */

const char *pt_admin_method(const struct pt_admin_req *q)
{
    return q->method;
}

const char *pt_admin_path(const struct pt_admin_req *q)
{
    return q->path;
}

const char *pt_admin_query(const struct pt_admin_req *q)
{
    return q->query;
}

const char *pt_admin_param(const struct pt_admin_req *q, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < q->n_params; i++)
        if (strncmp(q->pnames[i], name, n) == 0 &&
            (q->pnames[i][n] == '\0' || q->pnames[i][n] == '/'))
            return q->pvals[i];
    return NULL;
}

const char *pt_admin_header(const struct pt_admin_req *q, const char *name, size_t *len)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < q->n_headers; i++)
        if (q->headers[i].name.n == n && strncasecmp(q->headers[i].name.p, name, n) == 0) {
            *len = q->headers[i].value.n;
            return q->headers[i].value.p;
        }
    *len = 0;
    return NULL;
}

const char *pt_admin_token_name(const struct pt_admin_req *q)
{
    return q->token_name;
}

int pt_admin_token_scope(const struct pt_admin_req *q)
{
    return q->scope;
}

const char *pt_admin_body(const struct pt_admin_req *q, size_t *len)
{
    *len = q->body_len;
    return q->body;
}

json_t *pt_admin_body_json(struct pt_admin_req *q)
{
    if (q->body_len == 0) {
        pt_admin_reply_error(q, 400, NULL, "a JSON body is required");
        return NULL;
    }
    json_error_t je;
    json_t *v = json_loadb(q->body, q->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!v) {
        char msg[256];
        snprintf(msg, sizeof(msg), "invalid JSON at line %d, column %d: %s", je.line, je.column,
                 je.text);
        pt_admin_reply_error(q, 400, NULL, msg);
    }
    return v;
}

void pt_admin_reply(struct pt_admin_req *q, int status, json_t *body)
{
    json_decref(q->reply);
    free(q->text);
    q->text = NULL;
    q->status = status;
    q->reply = body;
}

void pt_admin_reply_text(struct pt_admin_req *q, int status, const char *content_type, char *text,
                         size_t len)
{
    pt_admin_reply(q, status, NULL);
    q->text = text;
    q->text_len = len;
    q->text_type = content_type;
}

void pt_admin_reply_error(struct pt_admin_req *q, int status, const char *field,
                          const char *message)
{
    pt_admin_reply(q, status, error_body(field, message));
}

int pt_admin_reply_header(struct pt_admin_req *q, const char *name, const char *value)
{
    if (strpbrk(name, "\r\n: ") || strpbrk(value, "\r\n") || !name[0])
        return -1;
    size_t room = sizeof(q->extra) - q->extra_len;
    int w = snprintf(q->extra + q->extra_len, room, "%s: %s\r\n", name, value);
    if (w < 0 || (size_t)w >= room) {
        q->extra[q->extra_len] = '\0';
        return -1;
    }
    q->extra_len += (size_t)w;
    return 0;
}

int pt_admin_audit(struct pt_admin_req *q, const json_t *change)
{
    return pt_audit_write(q->a->audit, q->token_name, q->method, q->path, change);
}

json_t *pt_admin_recent_changes(struct pt_admin_req *q, size_t limit)
{
    return pt_audit_recent(q->a->audit, limit);
}

void pt_admin_changed(struct pt_admin_req *q)
{
    if (q->a->on_change)
        q->a->on_change(q->a->on_change_arg);
}

bool pt_admin_is_file_host(const struct pt_admin_req *q, const char *host)
{
    for (size_t i = 0; i < q->a->st->n_file_hosts; i++)
        if (strcasecmp(q->a->st->file_hosts[i], host) == 0)
            return true;
    return false;
}

const struct pt_cidr *pt_admin_allow_private(const struct pt_admin_req *q, size_t *n)
{
    *n = q->a->st->n_allow;
    return q->a->st->allow;
}

int pt_admin_route_at(const struct pt_admin_req *q, size_t i, const char **method,
                      const char **pattern, int *flags)
{
    if (i >= q->a->n_routes)
        return -1;
    *method = q->a->routes[i].method;
    *pattern = q->a->routes[i].pattern;
    *flags = q->a->routes[i].flags;
    return 0;
}
