/*
 * jwt.h - JSON Web Token validation (RFC 7519) of compact JWS tokens (RFC 7515) with HS256,
 * RS256, ES256 and EdDSA (Ed25519), keys from a JWKS (RFC 7517) or an HS256 secret (jwt.c).
 */
#ifndef PT_GUARD_JWT_H
#define PT_GUARD_JWT_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PT_JWT_MAX_TOKEN 8192 /* bytes of a token; a longer one is refused unread */
#define PT_JWT_MAX_KEYS 64    /* keys of one JWKS */

enum pt_jwt_alg { PT_JWT_NONE = 0, PT_JWT_HS256, PT_JWT_RS256, PT_JWT_ES256, PT_JWT_EDDSA };

struct pt_jwt_key {
    char kid[128];         /* "" when the JWK has none */
    int alg;               /* enum pt_jwt_alg: the one algorithm this key verifies */
    EVP_PKEY *pkey;        /* RS256, ES256, EdDSA (owned) */
    unsigned char *secret; /* HS256 (owned) */
    size_t secret_len;
};

/* An immutable set of keys, reference-counted (a jwks_url source swaps sets while requests
   use the old one). */
struct pt_jwt_keyset {
    atomic_uint refs;
    size_t n;
    struct pt_jwt_key keys[];
};

/* The checks of the claims (borrowed strings). */
struct pt_jwt_rules {
    const char *issuer;         /* iss must equal it, or NULL */
    const char *audience;       /* aud (string or array) must hold it, or NULL */
    int64_t skew_s;             /* allowance on exp and nbf */
    const char *const *require; /* claims that must be present, NULL-ended, or NULL */
};

enum pt_jwt_verdict {
    PT_JWT_OK = 0,
    PT_JWT_MALFORMED, /* not three strict base64url parts of JSON, or too long */
    PT_JWT_BAD_ALG,   /* alg none, unknown, or not the key's */
    PT_JWT_NO_KEY,    /* no key with the token's kid (or for its alg) */
    PT_JWT_BAD_SIG,   /* the signature does not verify */
    PT_JWT_EXPIRED,   /* exp + skew is past */
    PT_JWT_NOT_YET,   /* nbf - skew is in the future */
    PT_JWT_BAD_ISS,   /* iss is not the issuer */
    PT_JWT_BAD_AUD,   /* aud does not hold the audience */
    PT_JWT_MISSING,   /* a required claim is absent (or exp/nbf is not a number) */
};

/* Strict base64url (RFC 4648 §5) without padding: every byte of in[0..n) must be of the
   alphabet, n % 4 != 1, and the unused low bits of the last character must be zero. Writes
   the bytes to out (cap at least n * 3 / 4). Returns their count, or -1. */
ssize_t pt_jwt_b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap);

/* Builds a key set from a JWKS text (n bytes). Supported keys: kty oct (HS256, k), RSA (RS256,
   n and e, at least 2048 bits), EC P-256 (ES256, x and y), OKP Ed25519 (EdDSA, x); a key
   whose "alg" names another algorithm than its type's, or whose "use" is not "sig", is an
   error, unless lenient (a fetched set): then such keys are skipped, and only a set with no
   usable key is an error. Returns a set with one reference, or NULL with err filled. */
struct pt_jwt_keyset *pt_jwt_keyset_parse(const char *json, size_t n, bool lenient, char *err,
                                          size_t errlen);

/* A set of one HS256 key holding a copy of secret[0..n). NULL when out of memory. */
struct pt_jwt_keyset *pt_jwt_keyset_secret(const unsigned char *secret, size_t n);

void pt_jwt_keyset_ref(struct pt_jwt_keyset *ks);
/* Drops a reference; the last frees the set and its keys. NULL is a no-op. */
void pt_jwt_keyset_unref(struct pt_jwt_keyset *ks);

/*
 * Validates token tok[0..n) against the keys ks and rules at time now_s (seconds since the
 * epoch). The header's alg must be the algorithm of the key chosen (by kid when the header
 * names one, else every key of that algorithm is tried), so a public RSA key can never be
 * used as an HMAC secret; "crit" headers are refused. On PT_JWT_OK *claims (when not NULL)
 * receives the payload object, owned by the caller (json_decref). Never blocks.
 */
enum pt_jwt_verdict pt_jwt_verify(const char *tok, size_t n, const struct pt_jwt_keyset *ks,
                                  const struct pt_jwt_rules *rules, int64_t now_s, json_t **claims);

/* A short text naming v, for the log ("expired", "bad signature"...). */
const char *pt_jwt_verdict_text(enum pt_jwt_verdict v);

/*
 * The value of claim c for a request header into out[0..cap): a string as it is, a number
 * as JSON writes it, true/false, and an object or array as compact JSON text. Returns the
 * length, or -1 when it does not fit or holds a byte a header value may not (CR, LF, NUL,
 * other controls but tab).
 */
ssize_t pt_jwt_claim_text(const json_t *c, char *out, size_t cap);

#endif
