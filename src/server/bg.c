/*
 * bg.c - detached requests: a request with no client, made on a client request's worker and
 * snapshot, that a handler runs like any other (pt_proxy_start) and whose answer goes nowhere.
 * The cache uses one for a background refresh (stale-while-revalidate): the client is
 * answered from the stale copy at once, and the detached request's answer reaches the store
 * through the cache's tee, which sits on its chain as on any request's.
 *
 * Its protocol is a sink: heads and bodies are accepted and dropped (borrowed bytes are the
 * caller's again at once), its request has no body, and the request ends (no access-log
 * line) when the handler finishes it, resets it, or answers it locally. Wake-ups (resume,
 * yield) run the handler from the loop's post queue, never from inside the handler's own call.
 *
 * A watched request (pt_bg_req_watch; forward_auth's call, server/fwdauth.c) tells its owner
 * what it answers: its final head, its body bytes, and its end, the last from the post queue.
 */
#include "server/bg.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "handler/handler.h"
#include "handler/static.h"
#include "server/conn.h"
#include "server/worker.h"

struct bg_req {
    struct pt_req r; /* first: the request is the allocation (conn.c may free it as one) */
    struct pt_sockaddr peer;
    struct pt_defer post;
    bool is_posted;
    bool is_ended;                   /* reset, finished or answered: the post ends it */
    bool is_finished;                /* the handler finished it (the whole answer came) */
    const struct pt_bg_watch *watch; /* its owner's, or NULL */
    void *watch_arg;
};

static struct bg_req *bg_of(struct pt_req *r)
{
    return (struct bg_req *)(void *)r;
}

static void bg_end(struct bg_req *b)
{
    struct pt_req *r = &b->r;
    if (b->watch)
        b->watch->on_end(b->watch_arg, b->is_finished);
    pt_conn_req_end(r->w, r, false);
}

static void bg_posted(struct pt_defer *d)
{
    struct bg_req *b = PT_CONTAINER_OF(d, struct bg_req, post);
    b->is_posted = false;
    if (!b->is_ended && b->r.pstate != PT_PS_NONE && b->r.pstate != PT_PS_DONE)
        pt_proxy_run(&b->r);
    if (b->is_ended || b->r.pstate == PT_PS_NONE) {
        b->is_ended = true;
        if (!b->is_posted)
            bg_end(b);
    }
}

static void bg_post(struct pt_req *r)
{
    struct bg_req *b = bg_of(r);
    if (b->is_posted)
        return;
    b->is_posted = true;
    pt_loop_post(r->env->loop, &b->post, bg_posted);
}

static int bg_send_head(struct pt_req *r, const struct pt_resp_head *h)
{
    struct bg_req *b = bg_of(r);
    if (h->status >= 200) {
        r->status = h->status;
        if (b->watch)
            b->watch->on_head(b->watch_arg, h);
    }
    return 0;
}

static int bg_send_data(struct pt_req *r, const char *p, size_t n, bool is_stable)
{
    (void)is_stable;
    struct bg_req *b = bg_of(r);
    r->bytes_out += n;
    if (b->watch && n)
        b->watch->on_data(b->watch_arg, p, n);
    return 0;
}

static void bg_send_file(struct pt_req *r, int fd, struct pt_static_file *ref, uint64_t off,
                         uint64_t len)
{
    (void)r;
    (void)off;
    (void)len;
    if (ref)
        pt_static_file_unref(ref);
    else
        close(fd);
}

static int bg_read_body(struct pt_req *r, struct pt_str *view)
{
    (void)r;
    view->p = NULL;
    view->n = 0;
    return PT_OK;
}

static void bg_consume_body(struct pt_req *r, size_t n)
{
    (void)r;
    (void)n;
}

static void bg_continue_body(struct pt_req *r)
{
    (void)r;
}

static int bg_send_borrowed(struct pt_req *r, const char *p, size_t n)
{
    return bg_send_data(r, p, n, false);
}

static void bg_send_end(struct pt_req *r)
{
    (void)r;
}

static void bg_send_trailers(struct pt_req *r, const struct pt_field *f, size_t n)
{
    (void)r;
    (void)f;
    (void)n;
}

static size_t bg_req_trailers(struct pt_req *r, const struct pt_field **f)
{
    (void)r;
    *f = NULL;
    return 0;
}

static int bg_flush(struct pt_req *r)
{
    (void)r;
    return PT_OK;
}

static void bg_finish(struct pt_req *r)
{
    bg_of(r)->is_ended = true;
    bg_of(r)->is_finished = true;
    bg_post(r);
}

static void bg_reset(struct pt_req *r)
{
    if (r->pstate != PT_PS_NONE)
        pt_proxy_abort(r);
    bg_of(r)->is_ended = true;
    bg_post(r);
}

static int bg_tunnel(struct pt_req *r)
{
    (void)r;
    return -1;
}

static int bg_read_raw(struct pt_req *r, struct pt_str *view)
{
    (void)r;
    (void)view;
    return PT_ERR;
}

static const struct pt_stream_ops bg_stream = {
    .send_head = bg_send_head,
    .send_data = bg_send_data,
    .send_file = bg_send_file,
    .read_body = bg_read_body,
    .consume_body = bg_consume_body,
    .continue_body = bg_continue_body,
    .send_borrowed = bg_send_borrowed,
    .send_end = bg_send_end,
    .send_trailers = bg_send_trailers,
    .req_trailers = bg_req_trailers,
    .flush = bg_flush,
    .finish = bg_finish,
    .reset = bg_reset,
    .resume = bg_post,
    .yield = bg_post,
    .tunnel = bg_tunnel,
    .read_raw = bg_read_raw,
    .consume_raw = bg_consume_body,
};

struct pt_req *pt_bg_req_new(struct pt_req *parent)
{
    struct bg_req *b = malloc(sizeof(*b));
    if (!b)
        return NULL;
    struct pt_req *r = &b->r;
    memset(b, 0, sizeof(*b));
    struct pt_wsnap *ws = parent->ws;
    ws->users++; /* the parent's snapshot: its routes are what r runs on */
    b->peer = *parent->peer;
    r->stream = &bg_stream;
    r->w = parent->w;
    r->env = parent->env;
    r->res = parent->res;
    r->lb = parent->lb;
    r->peer = &b->peer;
    r->listen_idx = parent->listen_idx;
    r->is_tls = parent->is_tls;
    r->ws = ws;
    r->cfg = parent->cfg;
    r->route = parent->route;
    r->site = parent->site;
    r->start_ms = parent->env->loop->now_ms;
    r->method_id = PT_METHOD_GET;
    r->minor_version = 1;
    r->req_body.is_done = true;
    r->is_detached = true;
    memcpy(r->method, "GET", 4);
    memcpy(r->uri, parent->uri, sizeof(r->uri));
    memcpy(r->host, parent->host, sizeof(r->host));
    r->referer[0] = r->user_agent[0] = '\0';
    memcpy(r->request_id, parent->request_id, sizeof(r->request_id));
    r->request_id_len = parent->request_id_len;
    return r;
}

void pt_bg_req_watch(struct pt_req *r, const struct pt_bg_watch *watch, void *arg)
{
    struct bg_req *b = bg_of(r);
    b->watch = watch;
    b->watch_arg = arg;
}

void pt_bg_req_cancel(struct pt_req *r)
{
    struct bg_req *b = bg_of(r);
    b->watch = NULL;
    if (!b->is_ended)
        r->stream->reset(r);
}
