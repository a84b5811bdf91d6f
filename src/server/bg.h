/*
 * bg.h - detached requests (bg.c): requests without a client, for background work a handler
 * starts (the cache's refresh under stale-while-revalidate).
 */
#ifndef PT_SERVER_BG_H
#define PT_SERVER_BG_H

#include "handler/request.h"

/* A request on parent's worker and snapshot, with parent's routing, addresses and log fields,
   as a GET without a body; its protocol drops what it answers. The worker's env.detach. NULL
   when no memory. */
struct pt_req *pt_bg_req_new(struct pt_req *parent);

/* What the owner of a watched detached request hears (pt_bg_req_watch). on_head: its final
   head (1xx are not told), borrowed for the call; on_data: body bytes, borrowed for the call;
   on_end: once, from the loop's post queue, just before the request is freed: finished says
   the handler finished it (else it was reset: the answer may be cut). */
struct pt_bg_watch {
    void (*on_head)(void *arg, const struct pt_resp_head *h);
    void (*on_data)(void *arg, const char *p, size_t n);
    void (*on_end)(void *arg, bool finished);
};

/* Makes r (from pt_bg_req_new) tell watch what it answers, with arg; watch NULL: nothing
   more (an owner that leaves first). */
void pt_bg_req_watch(struct pt_req *r, const struct pt_bg_watch *watch, void *arg);

/* Its owner no longer wants r's answer: r hears nothing more and, unless it already ended,
   is reset (its upstream side let go); it ends by itself. */
void pt_bg_req_cancel(struct pt_req *r);

#endif
