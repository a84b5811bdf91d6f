/*
 * stream.c - a request's chain of body filters (http/stream.h).
 *
 * The chain is a few pointers in the request, written when a filter is pushed: layer 0 keeps
 * the protocol's table, which r->stream pointed at until then, and r->stream moves to the new
 * top. A filter finds the layer under it by looking itself up (at most PT_STREAM_FILTERS_MAX
 * entries), so its operations keep the same signature as the protocol's. Nothing here runs
 * for a request without filters.
 */
#include "http/conn.h"
#include "http/stream.h"

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
