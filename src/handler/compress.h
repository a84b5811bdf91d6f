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

#include "handler/request.h"
#include "http/fields.h"

/* Notes what the request's Accept-Encoding allows in r (a few bits; nothing allocated). */
void pt_compress_note(struct pt_req *r, const struct pt_req_head *h);

/* Decides whether h (a final head of r, before the response-header stage) is compressed,
   under the route's (else the site's) compress settings: edits h and pushes the filter on
   r's chain when it is. Adds Vary: Accept-Encoding to any response of a compressible type,
   compressed or not. Returns true when the body will be compressed: its length is then
   unknown (the caller frames it as streamed). */
bool pt_compress_head(struct pt_req *r, struct pt_resp_head *h);

#endif
