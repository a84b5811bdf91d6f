/*
 * health_h2.h - the HTTP/2 side of one health check (upstreams with protocol h2 or h2c): a
 * client session that sends one request and collects its response, without any I/O of its own.
 *
 * The checker (health.c) moves the bytes: it sends what pt_health_h2_output() gives, feeds what
 * it reads to pt_health_h2_feed(), and then reads the state: the final status, the body so far,
 * whether the stream ended, and whether the connection is unusable (a frame that is not HTTP/2,
 * a GOAWAY). Only the health thread uses it.
 *
 *     x = pt_health_h2_new(method, path, scheme, authority, body_max)
 *     loop: send pt_health_h2_output(); pt_health_h2_feed(read bytes); look at x's state
 *     pt_health_h2_free(x)
 */
#ifndef PT_UPSTREAM_HEALTH_H2_H
#define PT_UPSTREAM_HEALTH_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pt_health_h2;

/* A client session with the connection preface, a SETTINGS frame and one request queued: HEADERS
   with :method, :scheme, :authority, :path (strings borrowed for this call only) and
   END_STREAM. At most body_max bytes of the response body are kept. Returns NULL when out of
   memory (or when nghttp2 refuses the request fields). */
struct pt_health_h2 *pt_health_h2_new(const char *method, const char *path, const char *scheme,
                                      const char *authority, size_t body_max);

/* The bytes waiting to be sent (frames the session queued: the request, then SETTINGS and PING
   acknowledgements). *data points into x and stays valid until the next call on x. Returns 0,
   or -ENOMEM (x is then unusable: give up the check). *len is 0 when nothing waits. */
int pt_health_h2_output(struct pt_health_h2 *x, const char **data, size_t *len);

/* Marks the first n bytes of the last output as sent. */
void pt_health_h2_sent(struct pt_health_h2 *x, size_t n);

/* Hands len bytes read from the target to the session. Returns 0, or -1 when the bytes are not
   HTTP/2 or break the protocol: pt_health_h2_error() says why. */
int pt_health_h2_feed(struct pt_health_h2 *x, const char *data, size_t len);

/* The final (non-1xx) status of the response, 0 until its HEADERS arrived. */
int pt_health_h2_status(const struct pt_health_h2 *x);

/* The body received so far (at most body_max bytes; borrowed from x). */
const char *pt_health_h2_body(const struct pt_health_h2 *x, size_t *len);

/* Whether the stream is over: the response ended (END_STREAM) or the stream was reset. */
bool pt_health_h2_is_ended(const struct pt_health_h2 *x);

/* Why the check cannot go on, or NULL while it can: the bytes were not HTTP/2, the target sent
   GOAWAY, or the stream was reset before a response. Owned by x, valid until the next call. */
const char *pt_health_h2_error(struct pt_health_h2 *x);

/* Frees x. NULL is fine. */
void pt_health_h2_free(struct pt_health_h2 *x);

#endif
