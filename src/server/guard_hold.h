/*
 * guard_hold.h - a guard's pause: holds a request on a loop timer, then resumes its pipeline
 * after the guard step that paused it (guard_hold.c).
 */
#ifndef PT_SERVER_GUARD_HOLD_H
#define PT_SERVER_GUARD_HOLD_H

#include <stdint.h>

#include "handler/request.h"
#include "server/pipeline.h"

/*
 * Holds r (routed; pc: what its pipeline goes on with) for delay_ms on its worker's loop, in
 * PT_PS_GUARD_WAIT with a copy of pc, then runs pt_pipeline_resume(r, copy, step): the guards
 * after step, then the handler. Works alike for both protocols (an HTTP/2 stream keeps its
 * DATA within its window meanwhile). The worker holds at most max_held requests at once.
 * Returns PT_OK when r is held (the caller answers nothing and returns PT_AGAIN up the
 * pipeline), PT_ERR when the worker's cap is reached or no memory is left (the caller refuses
 * r). A client that goes away while held ends r as usual: the hold is dropped with it (a
 * cleanup, pt_req_on_end). Never blocks.
 */
int pt_guard_hold(struct pt_req *r, const struct pt_pipeline_ctx *pc, enum pt_guard_step step,
                  uint64_t delay_ms, uint64_t max_held);

#endif
