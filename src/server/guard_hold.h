/*
 * guard_hold.h - a guard's pause: holds a request on a loop timer, then resumes its pipeline
 * after the guard step that paused it (guard_hold.c).
 */
#ifndef PT_SERVER_GUARD_HOLD_H
#define PT_SERVER_GUARD_HOLD_H

#include <stdint.h>

#include "handler/request.h"
#include "http/fields.h"

/*
 * Holds r for delay_ms on its worker's loop, with a copy of its head h, then runs
 * pt_pipeline_rerun(r, copy) (r->guards_done must say which guard steps it passed) and
 * resumes r's stream. The worker holds at most max_held requests at once. Returns PT_OK when
 * r is held (the caller answers nothing and returns: the connection waits), PT_DECLINED when
 * r's protocol cannot hold it (HTTP/2: the caller lets it go on), PT_ERR when the worker's
 * cap is reached or no memory is left (the caller refuses it). A client that goes away while
 * held ends r as usual: the hold is dropped with it (a cleanup, pt_req_on_end). Never blocks.
 */
int pt_guard_hold(struct pt_req *r, const struct pt_req_head *h, uint64_t delay_ms,
                  uint64_t max_held);

#endif
