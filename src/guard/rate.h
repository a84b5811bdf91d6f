/*
 * rate.h - the rate-limit guard: a route's (or its site's) rate_limit: applied to one request
 * with the shared GCRA table (ratelimit.h).
 */
#ifndef PT_GUARD_RATE_H
#define PT_GUARD_RATE_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/str.h"
#include "guard/ratelimit.h"
#include "http/fields.h"

/* The process's table (made by the server when a configuration has a rate_limit:); NULL: no
   limit is counted. */
extern struct pt_rl *pt_guard_rl;

/*
 * Counts the request h from client (its address as text, behind trusted_proxies) against c at
 * now_us. scope tells one use of a limit from another (the pipeline gives the route's pattern
 * for a route's limit, the site's first host for a site's: a site's limit is one budget for all
 * its routes). Returns 0 when it may go on (also when one of the key's header, cookie or query
 * parts is absent: such a request is not counted, as with nginx's limit_req), or 429 with the
 * answer's header lines in out (Retry-After, RateLimit-Policy, RateLimit; CRLF-ended, *out_len
 * bytes). out needs 256 bytes.
 */
int pt_guard_rate(const struct pt_rate_limit_cfg *c, struct pt_str scope,
                  const struct pt_req_head *h, struct pt_str client, uint64_t now_us, char *out,
                  size_t *out_len);

/* The value of cookie name (n bytes, case-sensitive) in the request's Cookie fields; p NULL
   when absent. Points into h. */
struct pt_str pt_guard_cookie(const struct pt_req_head *h, const char *name, size_t n);

#endif
