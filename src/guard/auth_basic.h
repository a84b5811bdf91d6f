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
    PT_BASIC_PENDING,   /* pt_basic_begin: the password must be hashed (pt_basic_hash) */
};

#define PT_BASIC_CRED_MAX 1024 /* bytes of decoded "user:password" */

/* One password check that missed the cache: what the hash needs, copied (so that it may run
   on another thread while the configuration changes), and what pt_basic_end needs. */
struct pt_basic_job {
    const char *user; /* the matched user's name in the configuration; NULL: unknown user */
    uint64_t tag[2];  /* the cache tag of user, password and hash */
    bool can_cache;
    bool is_match;                    /* pt_basic_hash's result */
    char password[PT_BASIC_CRED_MAX]; /* NUL-terminated; wiped by pt_basic_hash and _end */
    char hash[384];                   /* the user's (or, unknown user, a dummy) crypt hash */
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
 * at the user's name in b (for the log). Blocks for the hash's time (tens of ms for
 * bcrypt cost 10) on a cache miss: the server uses the three steps below instead, with the
 * hash off its loop. Thread-safe.
 */
enum pt_basic_verdict pt_basic_check(const struct pt_basic_auth_cfg *b, const char *v, size_t n,
                                     uint64_t now_ms, const char **user);

/*
 * pt_basic_check in three steps, for a caller that runs the hash elsewhere (server/offload.c).
 * pt_basic_begin decodes v[0..n) and looks the user up: PT_BASIC_MISSING or _MALFORMED; OK
 * on a cache hit (*user set, nothing to hash); REFUSED when there is nothing to hash with (no
 * users); else PT_BASIC_PENDING with job filled. It does not block. pt_basic_hash(job) runs
 * crypt_rn, touching job alone: any thread, slow. pt_basic_end(job) gives the verdict (OK with
 * *user, or REFUSED), caches a success at now_ms and wipes the password; job's user points
 * into b, which must still be alive then.
 */
enum pt_basic_verdict pt_basic_begin(const struct pt_basic_auth_cfg *b, const char *v, size_t n,
                                     uint64_t now_ms, struct pt_basic_job *job, const char **user);
void pt_basic_hash(struct pt_basic_job *job);
enum pt_basic_verdict pt_basic_end(struct pt_basic_job *job, uint64_t now_ms, const char **user);

/* A short text naming v, for the log. */
const char *pt_basic_verdict_text(enum pt_basic_verdict v);

#endif
