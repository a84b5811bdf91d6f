/*
 * jwks_fetch.h - a JWKS URL fetched in the background and refreshed (jwks_fetch.c).
 */
#ifndef PT_GUARD_JWKS_FETCH_H
#define PT_GUARD_JWKS_FETCH_H

#include <stdint.h>

#include "guard/jwt.h"

struct pt_jwks_src;

/*
 * The process's source for url (https verified with the PEM CA file ca, NULL: the system's
 * store), shared by every jwt: naming them (and across reloads, so keys fetched before a
 * reload stay): made and started on first use, its thread fetching at once
 * and then every refresh_ms (a shorter refresh given later wins). timeout_ms bounds each
 * network step. Returns a reference (pt_jwks_src_put), or NULL when out of memory. Main
 * thread; may block briefly (thread start).
 */
struct pt_jwks_src *pt_jwks_src_get(const char *url, const char *ca, uint32_t refresh_ms,
                                    uint32_t timeout_ms);

/* Drops a reference; the last stops the thread (its current fetch is cut) and frees the
   source. May block until the thread ends (at most one timeout). */
void pt_jwks_src_put(struct pt_jwks_src *s);

/* The keys last fetched, with a reference the caller drops (pt_jwt_keyset_unref), or NULL
   when no fetch has succeeded yet. Any thread; takes the source's mutex briefly. */
struct pt_jwt_keyset *pt_jwks_src_keys(struct pt_jwks_src *s);

/* Asks for an early fetch (a token named a kid the keys lack): at most one per 10 s; the
   caller's request is not held for it. Any thread. */
void pt_jwks_src_kick(struct pt_jwks_src *s);

#endif
