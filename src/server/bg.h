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

#endif
