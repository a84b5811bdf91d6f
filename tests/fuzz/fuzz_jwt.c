/*
 * fuzz_jwt.c - libFuzzer target for JWT validation (guard/jwt.c): the token parser and
 * verifier, the JWKS parser and strict base64url.
 *
 * The input is verified as a token against a fixed HS256 key (whatever it is, no crash, and
 * claims only on PT_JWT_OK), parsed as a JWKS (a set built must hold 1..PT_JWT_MAX_KEYS keys,
 * each with one algorithm), and decoded as base64url: a success must re-encode to exactly
 * the input (one spelling per byte string).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guard/jwt.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct pt_jwt_keyset *ks;
    if (!ks)
        ks = pt_jwt_keyset_secret((const unsigned char *)"0123456789abcdef0123456789abcdef", 32);
    static const char *const req[] = {"exp", NULL};
    const struct pt_jwt_rules rules = {"iss", "aud", 60, req};
    json_t *claims = NULL;
    enum pt_jwt_verdict v =
        pt_jwt_verify((const char *)data, size, ks, &rules, 1700000000, &claims);
    if ((v == PT_JWT_OK) != (claims != NULL))
        abort();
    json_decref(claims);

    char err[256];
    struct pt_jwt_keyset *set =
        pt_jwt_keyset_parse((const char *)data, size, size & 1, err, sizeof(err));
    if (set) {
        if (set->n == 0 || set->n > PT_JWT_MAX_KEYS)
            abort();
        for (size_t i = 0; i < set->n; i++)
            if (set->keys[i].alg < PT_JWT_HS256 || set->keys[i].alg > PT_JWT_EDDSA)
                abort();
        pt_jwt_keyset_unref(set);
    }

    if (size > 4096)
        return 0;
    unsigned char out[3072];
    ssize_t n = pt_jwt_b64url_decode((const char *)data, size, out, sizeof(out));
    if (n >= 0) {
        char back[4200];
        size_t o = 0;
        for (ssize_t i = 0; i < n; i += 3) {
            uint32_t w = (uint32_t)out[i] << 16 | (i + 1 < n ? (uint32_t)out[i + 1] << 8 : 0) |
                         (i + 2 < n ? out[i + 2] : 0);
            back[o++] = alphabet[w >> 18 & 63];
            back[o++] = alphabet[w >> 12 & 63];
            if (i + 1 < n)
                back[o++] = alphabet[w >> 6 & 63];
            if (i + 2 < n)
                back[o++] = alphabet[w & 63];
        }
        if (o != size || memcmp(back, data, size) != 0)
            abort();
    }
    return 0;
}
