/*
 * stream.h - how a handler answers a request: the operations that every protocol implements
 * for the requests it carries (HTTP/1.1: server/h1_stream.c).
 *
 * A handler makes its head (http/fields.h), passes it through the response-header stage, and
 * gives it to send_head; then the body as bytes (send_data) or as a file range (send_file).
 * It never learns which protocol carries the request: the framing (Content-Length, chunks,
 * DATA frames), the connection's fate (keep-alive, close) and the writing are the stream's.
 * The operations only queue: the protocol writes when the socket lets it.
 */
#ifndef PT_HTTP_STREAM_H
#define PT_HTTP_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pt_req;
struct pt_resp_head;
struct pt_static_file;

struct pt_stream_ops {
    /* Queues h: a final head that went through the response-header stage, or an interim (1xx)
       one. Returns 0, or -1 when it cannot be queued (it does not fit: nothing was queued). */
    int (*send_head)(struct pt_req *r, const struct pt_resp_head *h);
    /* Queues n body bytes after the head. is_stable: p stays valid until the response is
       done (snapshot memory), so the stream may send from it without a copy; else the bytes
       are copied now. Returns 0, or -1 when unstable bytes do not fit. */
    int (*send_data)(struct pt_req *r, const char *p, size_t n, bool is_stable);
    /* Queues len bytes of fd from off as the rest of the body. The stream owns fd from here:
       it closes it, or, when ref is given (the static file cache's entry that owns fd), drops
       that reference instead. */
    void (*send_file)(struct pt_req *r, int fd, struct pt_static_file *ref, uint64_t off,
                      uint64_t len);
};

#endif
