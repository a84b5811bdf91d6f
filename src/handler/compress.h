/*
 * compress.h - response compression (gzip with zlib, brotli, zstd) as a body filter on the
 * request's stream chain (http/stream.h), chosen from the client's Accept-Encoding.
 *
 * Two calls, made by a handler: pt_compress_note when the request starts (its head is gone
 * by the time the response comes), and pt_compress_head on the final response head before
 * the response-header stage, which decides, edits the head (Content-Encoding, Vary, ETag,
 * no Content-Length) and pushes the filter. A response that is not compressed costs nothing
 * past that decision.
 */
#ifndef PT_HANDLER_COMPRESS_H
#define PT_HANDLER_COMPRESS_H

#include <stdbool.h>
#include <stdint.h>

#include "handler/request.h"
#include "http/fields.h"

/* Notes what the request's Accept-Encoding allows in r (a few bits; nothing allocated). */
void pt_compress_note(struct pt_req *r, const struct pt_req_head *h);

/* What h's Accept-Encoding fields allow, in r->accept_codings' form: for each coding c
   (enum pt_coding, from 1), bits 2(c-1)..2(c-1)+1 hold its rank among the client's q-values
   (0: not acceptable, 3: the highest). No Accept-Encoding: 0 (identity only). */
uint8_t pt_compress_accept(const struct pt_req_head *h);

/* The coding to send for accept (pt_compress_accept's form): the highest rank, ties broken
   by order (preference, PT_CODING_NONE-ended or full); PT_CODING_NONE when none is
   acceptable. */
enum pt_coding pt_compress_pick(uint8_t accept, const uint8_t order[PT_CODING_N]);

/* Decides whether h (a final head of r, before the response-header stage) is compressed,
   under the route's (else the site's) compress settings: edits h and pushes the filter on
   r's chain when it is. Adds Vary: Accept-Encoding to any response of a compressible type,
   compressed or not. Returns true when the body will be compressed: its length is then
   unknown (the caller frames it as streamed). */
bool pt_compress_head(struct pt_req *r, struct pt_resp_head *h);

#endif
