/*
 * rate.h - the rate-limit guard: a route's (or its site's) rate_limit: applied to one request
 * with the shared GCRA table (ratelimit.h).
 */
#ifndef PT_GUARD_RATE_H
#define PT_GUARD_RATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config/config.h"
#include "core/str.h"
#include "guard/ratelimit.h"
#include "http/fields.h"

/* The process's store (made by the server when a configuration has a rate_limit:; today the
   local table, ratelimit.h's seam); NULL: no limit is counted. */
extern struct pt_rl_store *pt_guard_rl;

/*
 * Counts the request h from client (its address behind trusted_proxies as key bytes: a length
 * byte, 4 or 16, then the address in network order; see pt_guard_rate_ip_key) against c at
 * now_us. scope tells one use of a limit from another (the pipeline gives the route's pattern
 * for a route's limit, the site's first host for a site's: a site's limit is one budget for all
 * its routes). Returns 0 when it may go on (also when one of the key's header, cookie or query
 * parts is absent: such a request is not counted, as with nginx's limit_req), or 429 with the
 * answer's header lines in out (Retry-After, RateLimit-Policy, RateLimit; CRLF-ended, *out_len
 * bytes). out needs 256 bytes. *delay_us is set on 0: how long the request must be held for
 * its slot before it goes on (c->delay_ms; 0 when it goes on at once); the request is counted
 * already, and the caller that cannot hold it lets it go on at once.
 */
/* client's bytes for pt_guard_rate's key in out (17 bytes): the length byte and the IPv4 or
   IPv6 address (binary: no text formatting per request; the length byte keeps the key's parts
   unambiguous, since the address may hold zero bytes). Another family: an empty key part. */
struct pt_str pt_guard_rate_ip_key(const struct sockaddr *sa, char out[17]);

int pt_guard_rate(const struct pt_rate_limit_cfg *c, struct pt_str scope,
                  const struct pt_req_head *h, struct pt_str client, uint64_t now_us, char *out,
                  size_t *out_len, uint64_t *delay_us);

/* The value of cookie name (n bytes, case-sensitive) in the request's Cookie fields; p NULL
   when absent. Points into h. */
struct pt_str pt_guard_cookie(const struct pt_req_head *h, const char *name, size_t n);

#endif
