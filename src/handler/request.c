/*
 * request.c - a request's chain of body filters (the ops of http/stream.h, on the request of
 * handler/request.h).
 *
 * The chain is a few pointers in the request, written when a filter is pushed: layer 0 keeps
 * the protocol's table, which r->stream pointed at until then, and r->stream moves to the new
 * top. A filter finds the layer under it by looking itself up (at most PT_STREAM_FILTERS_MAX
 * entries), so its operations keep the same signature as the protocol's. Nothing here runs
 * for a request without filters.
 *
 * It also keeps the trailer fields of a chunked body (pt_body_chunked_decode): the decoder
 * stops before a trailer section, and only then is one block allocated for the fields and
 * the bytes they point to, so a body without trailers costs nothing more.
 */
#include "handler/request.h"

#include <stdlib.h>

int pt_stream_push_filter(struct pt_req *r, const struct pt_stream_ops *ops, void *state)
{
    if (r->n_filters >= PT_STREAM_FILTERS_MAX)
        return -1;
    if (r->n_filters == 0) {
        r->chain.ops[0] = r->stream;
        r->chain.state[0] = NULL;
    }
    r->n_filters++;
    r->chain.ops[r->n_filters] = ops;
    r->chain.state[r->n_filters] = state;
    r->stream = ops;
    return 0;
}

const struct pt_stream_ops *pt_stream_below(const struct pt_req *r,
                                            const struct pt_stream_ops *self)
{
    for (unsigned i = r->n_filters; i > 0; i--)
        if (r->chain.ops[i] == self)
            return r->chain.ops[i - 1];
    PT_BUG_ON(true); /* self is not on the chain */
    return NULL;
}

void *pt_stream_filter_state(const struct pt_req *r, const struct pt_stream_ops *self)
{
    for (unsigned i = r->n_filters; i > 0; i--)
        if (r->chain.ops[i] == self)
            return r->chain.state[i];
    return NULL;
}

ssize_t pt_body_chunked_decode(struct pt_body *b, char *buf, size_t *len)
{
    struct pt_h1_chunked *d = &b->dec;
    d->want_trailers = true;
    ssize_t rc = pt_h1_chunked_decode(d, buf, len);
    if (rc == PT_H1_TRAILERS) {
        size_t max = d->max_trailer_bytes ? d->max_trailer_bytes : PT_H1_TRAILER_MAX_DEFAULT;
        b->trailers = malloc(PT_BODY_TRAILERS_MAX * sizeof(*b->trailers) + max);
        if (b->trailers) {
            d->tr = (char *)(b->trailers + PT_BODY_TRAILERS_MAX);
            d->max_trailer_bytes = max;
        } else {
            d->want_trailers = false; /* no memory: checked and dropped */
        }
        /* The rest, from the first trailer field, is at buf + *len: it decodes to no data. */
        size_t n = d->unread;
        rc = pt_h1_chunked_decode(d, buf + *len, &n);
        PT_BUG_ON(n != 0);
    }
    if (rc >= 0 && d->tr && d->tr_len && !b->n_trailers) {
        ssize_t k = pt_h1_trailer_fields(d->tr, d->tr_len, b->trailers, PT_BODY_TRAILERS_MAX);
        if (k <= 0)
            return PT_H1_EBAD;
        b->n_trailers = (uint16_t)k;
    }
    return rc;
}

void pt_body_free_trailers(struct pt_body *b)
{
    free(b->trailers);
    b->trailers = NULL;
    b->n_trailers = 0;
    b->dec.tr = NULL;
}

int pt_req_on_end(struct pt_req *r, void (*cb)(struct pt_req *r, void *arg), void *arg)
{
    if (r->n_cleanups >= PT_REQ_CLEANUPS_MAX)
        return -1;
    r->cleanups[r->n_cleanups].cb = cb;
    r->cleanups[r->n_cleanups].arg = arg;
    r->n_cleanups++;
    return 0;
}

void pt_req_run_cleanups(struct pt_req *r)
{
    while (r->n_cleanups) {
        r->n_cleanups--;
        r->cleanups[r->n_cleanups].cb(r, r->cleanups[r->n_cleanups].arg);
    }
}
