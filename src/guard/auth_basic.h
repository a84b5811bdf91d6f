/*
 * auth_basic.h - HTTP Basic authentication (RFC 7617) against htpasswd users (auth_basic.c).
 */
#ifndef PT_GUARD_AUTH_BASIC_H
#define PT_GUARD_AUTH_BASIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

enum pt_basic_verdict {
    PT_BASIC_OK = 0,
    PT_BASIC_MISSING,   /* no Authorization, or not the Basic scheme */
    PT_BASIC_MALFORMED, /* not base64 of "user:password" */
    PT_BASIC_REFUSED,   /* unknown user or wrong password (the log does not tell which) */
};

#define PT_BASIC_CACHE_TTL_MS 60000 /* a verified user:password is trusted this long */

/* Decodes the credentials of an Authorization value "Basic <base64>" into out[0..cap):
   "user:password" (not NUL-terminated). Returns its length, -1 when the scheme is not Basic
   (PT_BASIC_MISSING), -2 when the rest is not strict base64 of something with a ':'. */
ssize_t pt_basic_decode(const char *v, size_t n, char *out, size_t cap);

/*
 * Checks the Authorization value v[0..n) (NULL: none) against b's users at now_ms. A known
 * user's password is checked with crypt_rn (slow on purpose: bcrypt, SHA-crypt); an unknown
 * user's against a dummy hash of the same kind, so timing does not tell whether a user
 * exists. Successes are remembered for PT_BASIC_CACHE_TTL_MS in a small process-wide table
 * (SipHash of user, password and hash under a random key), so a keep-alive client pays the
 * hash once a minute, not per request; failures are never cached. On success *user points
 * at the user's name in b (for the log). May block for the hash's time (tens of ms for
 * bcrypt cost 10) on a cache miss. Thread-safe.
 */
enum pt_basic_verdict pt_basic_check(const struct pt_basic_auth_cfg *b, const char *v, size_t n,
                                     uint64_t now_ms, const char **user);

/* A short text naming v, for the log. */
const char *pt_basic_verdict_text(enum pt_basic_verdict v);

#endif
