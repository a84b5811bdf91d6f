/*
 * jwt.c - validation of JSON Web Tokens at the edge: strict compact-JWS parsing, signature
 * verification through OpenSSL 3's EVP interface, and the registered claims.
 *
 * Parsing (RFC 7515 §7.1): exactly three dot-separated parts of strict base64url (no padding,
 * no byte outside the alphabet, zero unused bits, so one token has one spelling); at most
 * PT_JWT_MAX_TOKEN bytes, decoded on the stack. The header is a JSON object with a string
 * "alg"; "kid" is optional; "typ" is not checked (issuers disagree on it); a "crit" header is
 * refused (RFC 7515 §4.1.11: we understand no extension).
 *
 * Algorithm confusion: each key verifies exactly one algorithm, fixed by its JWK type when the
 * set is built (oct -> HS256, RSA -> RS256, EC P-256 -> ES256, OKP Ed25519 -> EdDSA). A token
 * whose alg is not its key's is refused, so an RSA public key can never serve as an HMAC
 * secret, and "none" is refused always.
 *
 * Signatures: HS256 is HMAC-SHA-256 compared with CRYPTO_memcmp; RS256 is PKCS#1 v1.5 with
 * SHA-256; ES256's signature is the raw r||s pair (RFC 7518 §3.4), turned into DER for
 * EVP_DigestVerify; EdDSA is Ed25519 (RFC 8037) on the message as it is.
 *
 * Claims (RFC 7519 §4.1): exp and nbf must be numbers when present and are compared with a
 * skew; iss must equal the issuer; aud, a string or an array of strings, must hold the
 * audience; `require` names claims that must be present. Everything here is pure: no I/O, no
 * global state, so the unit tests and the fuzzer call it as the guard does.
 */
#include "guard/jwt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>

/* ---- base64url ---- */

static int b64_val(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '-')
        return 62;
    if (ch == '_')
        return 63;
    return -1;
}

ssize_t pt_jwt_b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
    if (n % 4 == 1 || n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0) > cap)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) /* leftover bits must be zero: one spelling per byte string */
        return -1;
    return (ssize_t)o;
}

/* ---- keys ---- */

void pt_jwt_keyset_ref(struct pt_jwt_keyset *ks)
{
    atomic_fetch_add_explicit(&ks->refs, 1, memory_order_relaxed);
}

void pt_jwt_keyset_unref(struct pt_jwt_keyset *ks)
{
    if (!ks || atomic_fetch_sub_explicit(&ks->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < ks->n; i++) {
        EVP_PKEY_free(ks->keys[i].pkey);
        if (ks->keys[i].secret)
            OPENSSL_clear_free(ks->keys[i].secret, ks->keys[i].secret_len);
    }
    free(ks);
}

static struct pt_jwt_keyset *keyset_new(size_t n)
{
    struct pt_jwt_keyset *ks = calloc(1, sizeof(*ks) + n * sizeof(ks->keys[0]));
    if (ks)
        atomic_init(&ks->refs, 1);
    return ks;
}

struct pt_jwt_keyset *pt_jwt_keyset_secret(const unsigned char *secret, size_t n)
{
    struct pt_jwt_keyset *ks = keyset_new(1);
    if (!ks)
        return NULL;
    ks->keys[0].secret = OPENSSL_malloc(n ? n : 1);
    if (!ks->keys[0].secret) {
        free(ks);
        return NULL;
    }
    memcpy(ks->keys[0].secret, secret, n);
    ks->keys[0].secret_len = n;
    ks->keys[0].alg = PT_JWT_HS256;
    ks->n = 1;
    return ks;
}

/* The base64url member name of jwk into out (at most cap bytes); its length or -1. */
static ssize_t member(const json_t *jwk, const char *name, unsigned char *out, size_t cap)
{
    const char *s = json_string_value(json_object_get(jwk, name));
    return s ? pt_jwt_b64url_decode(s, strlen(s), out, cap) : -1;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pk = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params && ctx && EVP_PKEY_fromdata_init(ctx) == 1)
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pk;
}

static EVP_PKEY *rsa_key(const json_t *jwk)
{
    unsigned char n[1024], e[16];
    ssize_t nn = member(jwk, "n", n, sizeof(n)), en = member(jwk, "e", e, sizeof(e));
    if (nn < 256 || en < 1) /* 2048 bits at least */
        return NULL;
    BIGNUM *bn = BN_bin2bn(n, (int)nn, NULL), *be = BN_bin2bn(e, (int)en, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pk = NULL;
    if (bn && be && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
        pk = from_params("RSA", bld);
    if (pk && EVP_PKEY_get_bits(pk) < 2048) {
        EVP_PKEY_free(pk);
        pk = NULL;
    }
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    return pk;
}

static EVP_PKEY *ec_key(const json_t *jwk)
{
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    unsigned char pt[65];
    if (!crv || strcmp(crv, "P-256") != 0 || member(jwk, "x", pt + 1, 32) != 32 ||
        member(jwk, "y", pt + 33, 32) != 32)
        return NULL;
    pt[0] = 0x04; /* uncompressed point (SEC 1 §2.3.3) */
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pk = NULL;
    if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)))
        pk = from_params("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    return pk;
}

static EVP_PKEY *okp_key(const json_t *jwk)
{
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    unsigned char x[32];
    if (!crv || strcmp(crv, "Ed25519") != 0 || member(jwk, "x", x, sizeof(x)) != 32)
        return NULL;
    return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, sizeof(x));
}

static const char *const alg_names[] = {"none", "HS256", "RS256", "ES256", "EdDSA"};

static int alg_of(const char *s)
{
    for (int i = PT_JWT_HS256; i <= PT_JWT_EDDSA; i++)
        if (strcmp(s, alg_names[i]) == 0)
            return i;
    return PT_JWT_NONE;
}

/* One JWK into k. Returns NULL or what is wrong with it. */
static const char *load_jwk(const json_t *jwk, struct pt_jwt_key *k)
{
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    const char *use = json_string_value(json_object_get(jwk, "use"));
    const char *alg = json_string_value(json_object_get(jwk, "alg"));
    const char *kid = json_string_value(json_object_get(jwk, "kid"));
    if (!json_is_object(jwk) || !kty)
        return "a key needs a \"kty\"";
    if (use && strcmp(use, "sig") != 0)
        return "a key's \"use\" must be \"sig\"";
    if (kid && strlen(kid) >= sizeof(k->kid))
        return "a \"kid\" is too long";
    snprintf(k->kid, sizeof(k->kid), "%s", kid ? kid : "");
    if (strcmp(kty, "oct") == 0) {
        unsigned char sec[512];
        ssize_t n = member(jwk, "k", sec, sizeof(sec));
        if (n < 32)
            return "an \"oct\" key needs \"k\" of 32 to 512 bytes";
        k->secret = OPENSSL_malloc((size_t)n);
        if (!k->secret)
            return "out of memory";
        memcpy(k->secret, sec, (size_t)n);
        k->secret_len = (size_t)n;
        OPENSSL_cleanse(sec, sizeof(sec));
        k->alg = PT_JWT_HS256;
    } else if (strcmp(kty, "RSA") == 0) {
        k->pkey = rsa_key(jwk);
        k->alg = PT_JWT_RS256;
        if (!k->pkey)
            return "an \"RSA\" key needs \"n\" (2048 bits or more) and \"e\"";
    } else if (strcmp(kty, "EC") == 0) {
        k->pkey = ec_key(jwk);
        k->alg = PT_JWT_ES256;
        if (!k->pkey)
            return "an \"EC\" key needs crv P-256 and 32-byte \"x\" and \"y\"";
    } else if (strcmp(kty, "OKP") == 0) {
        k->pkey = okp_key(jwk);
        k->alg = PT_JWT_EDDSA;
        if (!k->pkey)
            return "an \"OKP\" key needs crv Ed25519 and a 32-byte \"x\"";
    } else {
        return "\"kty\" must be oct, RSA, EC or OKP";
    }
    if (alg && alg_of(alg) != k->alg)
        return "the key's \"alg\" is not its type's (oct HS256, RSA RS256, EC ES256, OKP EdDSA)";
    return NULL;
}

struct pt_jwt_keyset *pt_jwt_keyset_parse(const char *json, size_t n, bool lenient, char *err,
                                          size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(json, n, JSON_REJECT_DUPLICATES, &je);
    struct pt_jwt_keyset *ks = NULL;
    const json_t *keys = root ? json_object_get(root, "keys") : NULL;
    if (!root) {
        snprintf(err, errlen, "JWKS: not JSON: %s (line %d)", je.text, je.line);
        goto out;
    }
    if (!json_is_array(keys) || json_array_size(keys) == 0 ||
        json_array_size(keys) > PT_JWT_MAX_KEYS) {
        snprintf(err, errlen, "JWKS: expected an object with a \"keys\" list of 1 to %d keys",
                 PT_JWT_MAX_KEYS);
        goto out;
    }
    ks = keyset_new(json_array_size(keys));
    if (!ks) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    const char *why = NULL;
    for (size_t i = 0; i < json_array_size(keys); i++) {
        struct pt_jwt_key *k = &ks->keys[ks->n];
        why = load_jwk(json_array_get(keys, i), k);
        ks->n++; /* counted also when refused: what it holds is freed with the set */
        if (!why)
            continue;
        snprintf(err, errlen, "JWKS key %zu: %s", i + 1, why);
        if (!lenient)
            break;
        EVP_PKEY_free(k->pkey);
        OPENSSL_clear_free(k->secret, k->secret_len);
        memset(k, 0, sizeof(*k));
        ks->n--;
        why = NULL;
    }
    if (why || ks->n == 0) {
        if (!why && ks->n == 0)
            snprintf(err + strlen(err), errlen - strlen(err), " (no usable key left)");
        pt_jwt_keyset_unref(ks);
        ks = NULL;
    }
out:
    json_decref(root);
    ERR_clear_error();
    return ks;
}

/* ---- signatures ---- */

static bool verify_hs256(const struct pt_jwt_key *k, const char *msg, size_t mn,
                         const unsigned char *sig, size_t sn)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t ml = 0;
    if (sn != 32 || !EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, k->secret, k->secret_len,
                               (const unsigned char *)msg, mn, mac, sizeof(mac), &ml))
        return false;
    return ml == 32 && CRYPTO_memcmp(mac, sig, 32) == 0;
}

/* r||s (two 32-byte big-endian numbers) into a DER ECDSA-Sig-Value; its length or -1. */
static int es256_der(const unsigned char *sig, unsigned char *der, size_t cap)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    int n = -1;
    if (es && r && s && ECDSA_SIG_set0(es, r, s)) {
        r = s = NULL; /* owned by es now */
        int len = i2d_ECDSA_SIG(es, NULL);
        if (len > 0 && (size_t)len <= cap) {
            unsigned char *p = der;
            n = i2d_ECDSA_SIG(es, &p);
        }
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return n;
}

static bool verify_pkey(const struct pt_jwt_key *k, const char *msg, size_t mn,
                        const unsigned char *sig, size_t sn)
{
    unsigned char der[80];
    if (k->alg == PT_JWT_ES256) {
        if (sn != 64)
            return false;
        int dn = es256_der(sig, der, sizeof(der));
        if (dn < 0)
            return false;
        sig = der;
        sn = (size_t)dn;
    } else if (k->alg == PT_JWT_EDDSA && sn != 64) {
        return false;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx &&
              EVP_DigestVerifyInit(ctx, NULL, k->alg == PT_JWT_EDDSA ? NULL : EVP_sha256(), NULL,
                                   k->pkey) == 1 &&
              EVP_DigestVerify(ctx, sig, sn, (const unsigned char *)msg, mn) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

static bool verify_sig(const struct pt_jwt_key *k, const char *msg, size_t mn,
                       const unsigned char *sig, size_t sn)
{
    return k->alg == PT_JWT_HS256 ? verify_hs256(k, msg, mn, sig, sn)
                                  : verify_pkey(k, msg, mn, sig, sn);
}

/* ---- claims ---- */

static bool aud_holds(const json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    if (!json_is_array(aud))
        return false;
    for (size_t i = 0; i < json_array_size(aud); i++) {
        const char *s = json_string_value(json_array_get(aud, i));
        if (s && strcmp(s, want) == 0)
            return true;
    }
    return false;
}

static enum pt_jwt_verdict check_claims(const json_t *c, const struct pt_jwt_rules *rules,
                                        int64_t now)
{
    for (const char *const *q = rules->require; q && *q; q++)
        if (!json_object_get(c, *q))
            return PT_JWT_MISSING;
    const json_t *exp = json_object_get(c, "exp"), *nbf = json_object_get(c, "nbf");
    if ((exp && !json_is_number(exp)) || (nbf && !json_is_number(nbf)))
        return PT_JWT_MISSING;
    if (exp && json_number_value(exp) + (double)rules->skew_s <= (double)now)
        return PT_JWT_EXPIRED;
    if (nbf && json_number_value(nbf) - (double)rules->skew_s > (double)now)
        return PT_JWT_NOT_YET;
    if (rules->issuer) {
        const char *iss = json_string_value(json_object_get(c, "iss"));
        if (!iss || strcmp(iss, rules->issuer) != 0)
            return PT_JWT_BAD_ISS;
    }
    if (rules->audience && !aud_holds(json_object_get(c, "aud"), rules->audience))
        return PT_JWT_BAD_AUD;
    return PT_JWT_OK;
}

/* ---- the token ---- */

static json_t *decode_json(const char *p, size_t n, unsigned char *buf, size_t cap)
{
    ssize_t len = pt_jwt_b64url_decode(p, n, buf, cap);
    if (len <= 0)
        return NULL;
    json_t *j = json_loadb((const char *)buf, (size_t)len, JSON_REJECT_DUPLICATES, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

enum pt_jwt_verdict pt_jwt_verify(const char *tok, size_t n, const struct pt_jwt_keyset *ks,
                                  const struct pt_jwt_rules *rules, int64_t now_s, json_t **claims)
{
    unsigned char buf[PT_JWT_MAX_TOKEN], sig[512];
    if (n == 0 || n > PT_JWT_MAX_TOKEN)
        return PT_JWT_MALFORMED;
    const char *d1 = memchr(tok, '.', n);
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(tok + n - d1 - 1)) : NULL;
    if (!d2 || memchr(d2 + 1, '.', (size_t)(tok + n - d2 - 1)))
        return PT_JWT_MALFORMED;
    size_t hn = (size_t)(d1 - tok), pn = (size_t)(d2 - d1 - 1), sn = (size_t)(tok + n - d2 - 1);
    ssize_t sl = pt_jwt_b64url_decode(d2 + 1, sn, sig, sizeof(sig));
    if (sl < 0)
        return PT_JWT_MALFORMED;
    json_t *hdr = decode_json(tok, hn, buf, sizeof(buf));
    if (!hdr)
        return PT_JWT_MALFORMED;
    enum pt_jwt_verdict v = PT_JWT_OK;
    json_t *body = NULL;
    const char *alg = json_string_value(json_object_get(hdr, "alg"));
    const json_t *kidv = json_object_get(hdr, "kid");
    const char *kid = json_string_value(kidv);
    int a = alg ? alg_of(alg) : PT_JWT_NONE;
    if (!alg || (kidv && !kid) || json_object_get(hdr, "crit")) {
        v = PT_JWT_MALFORMED;
        goto out;
    }
    if (a == PT_JWT_NONE) {
        v = PT_JWT_BAD_ALG;
        goto out;
    }
    body = decode_json(d1 + 1, pn, buf, sizeof(buf));
    if (!body) {
        v = PT_JWT_MALFORMED;
        goto out;
    }
    /* The key: by kid when the token names one (its alg must be the key's), else any key of
       the token's alg. */
    bool found = false, alg_mismatch = false, ok = false;
    for (size_t i = 0; ks && i < ks->n && !ok; i++) {
        const struct pt_jwt_key *k = &ks->keys[i];
        if (kid && strcmp(k->kid, kid) != 0)
            continue;
        if (k->alg != a) {
            alg_mismatch = true;
            continue;
        }
        found = true;
        ok = verify_sig(k, tok, (size_t)(d2 - tok), sig, (size_t)sl);
    }
    if (!ok) {
        v = found ? PT_JWT_BAD_SIG : alg_mismatch ? PT_JWT_BAD_ALG : PT_JWT_NO_KEY;
        goto out;
    }
    v = check_claims(body, rules, now_s);
out:
    json_decref(hdr);
    if (v == PT_JWT_OK && claims)
        *claims = body;
    else
        json_decref(body);
    return v;
}

const char *pt_jwt_verdict_text(enum pt_jwt_verdict v)
{
    static const char *const texts[] = {
        "valid",   "malformed token", "algorithm refused", "no key for the token", "bad signature",
        "expired", "not yet valid",   "wrong issuer",      "wrong audience",       "missing claim"};
    return (unsigned)v < sizeof(texts) / sizeof(texts[0]) ? texts[v] : "?";
}

static bool value_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return false;
    }
    return true;
}

ssize_t pt_jwt_claim_text(const json_t *c, char *out, size_t cap)
{
    int n;
    if (json_is_string(c)) {
        size_t l = json_string_length(c);
        if (l >= cap || !value_ok(json_string_value(c), l))
            return -1;
        memcpy(out, json_string_value(c), l);
        return (ssize_t)l;
    }
    if (json_is_integer(c))
        n = snprintf(out, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(c));
    else if (json_is_real(c))
        n = snprintf(out, cap, "%.17g", json_real_value(c));
    else if (json_is_boolean(c))
        n = snprintf(out, cap, "%s", json_is_true(c) ? "true" : "false");
    else if (json_is_object(c) || json_is_array(c))
        n = (int)json_dumpb(c, out, cap, JSON_COMPACT | JSON_ENSURE_ASCII);
    else
        return -1;
    if (n <= 0 || (size_t)n >= cap || !value_ok(out, (size_t)n))
        return -1;
    return n;
}
