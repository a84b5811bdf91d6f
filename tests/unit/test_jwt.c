/*
 * test_jwt.c - JWT validation (src/guard/jwt.c): strict base64url (padding, junk, unused
 * bits, every length), JWKS parsing (each key type, refused keys), valid and invalid
 * signatures for HS256, RS256, ES256 and EdDSA with keys made here by OpenSSL, algorithm
 * confusion (alg none, an RSA key's bytes as an HMAC secret, a kid of another type), the
 * claims exp/nbf with the skew, iss, aud (string and array) and require, and claim texts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "guard/jwt.h"

#define NOW 1700000000

static const unsigned char SECRET[] = "0123456789abcdef0123456789abcdef!";

static size_t b64u(const unsigned char *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        if (i + 1 < n)
            out[o++] = a[v >> 6 & 63];
        if (i + 2 < n)
            out[o++] = a[v & 63];
    }
    out[o] = '\0';
    return o;
}

static EVP_PKEY *rsa, *ecp, *ed;

static int setup(void **state)
{
    (void)state;
    rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ecp = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    return rsa && ecp && ed ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ecp);
    EVP_PKEY_free(ed);
    return 0;
}

/* "header.payload.signature" for alg with key (NULL for none, the secret for HS256). */
static char *token(const char *alg, const char *kid, const char *payload, EVP_PKEY *key,
                   const unsigned char *secret, size_t secret_len)
{
    char hdr[256], *out = malloc(8192);
    if (kid)
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}", alg, kid);
    else
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\"}", alg);
    size_t n = b64u((const unsigned char *)hdr, strlen(hdr), out);
    out[n++] = '.';
    n += b64u((const unsigned char *)payload, strlen(payload), out + n);
    unsigned char sig[512];
    size_t sl = 0;
    if (secret) {
        unsigned int ml = 0;
        HMAC(EVP_sha256(), secret, (int)secret_len, (unsigned char *)out, n, sig, &ml);
        sl = ml;
    } else if (key) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        bool is_ed = EVP_PKEY_is_a(key, "ED25519");
        assert_int_equal(EVP_DigestSignInit(ctx, NULL, is_ed ? NULL : EVP_sha256(), NULL, key), 1);
        sl = sizeof(sig);
        assert_int_equal(EVP_DigestSign(ctx, sig, &sl, (unsigned char *)out, n), 1);
        EVP_MD_CTX_free(ctx);
        if (EVP_PKEY_is_a(key, "EC")) { /* DER -> r||s */
            const unsigned char *p = sig;
            ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sl);
            assert_non_null(es);
            BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32);
            BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32);
            ECDSA_SIG_free(es);
            sl = 64;
        }
    }
    out[n++] = '.';
    b64u(sig, sl, out + n);
    return out;
}

static void bn_b64(EVP_PKEY *k, const char *name, char *out, int pad)
{
    BIGNUM *bn = NULL;
    unsigned char buf[512];
    assert_int_equal(EVP_PKEY_get_bn_param(k, name, &bn), 1);
    int n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
    b64u(buf, (size_t)n, out);
    BN_free(bn);
}

/* A JWKS of the four test keys (kids rs, es, ed, hs). */
static struct pt_jwt_keyset *jwks(void)
{
    char n[400], e[16], x[64], y[64], ex[64], k[64], json[2048], err[256] = "";
    bn_b64(rsa, OSSL_PKEY_PARAM_RSA_N, n, 0);
    bn_b64(rsa, OSSL_PKEY_PARAM_RSA_E, e, 0);
    bn_b64(ecp, OSSL_PKEY_PARAM_EC_PUB_X, x, 32);
    bn_b64(ecp, OSSL_PKEY_PARAM_EC_PUB_Y, y, 32);
    unsigned char raw[32];
    size_t rl = sizeof(raw);
    assert_int_equal(EVP_PKEY_get_raw_public_key(ed, raw, &rl), 1);
    b64u(raw, rl, ex);
    b64u(SECRET, sizeof(SECRET) - 1, k);
    snprintf(json, sizeof(json),
             "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"rs\",\"alg\":\"RS256\",\"n\":\"%s\","
             "\"e\":\"%s\"},{\"kty\":\"EC\",\"kid\":\"es\",\"crv\":\"P-256\",\"x\":\"%s\","
             "\"y\":\"%s\"},{\"kty\":\"OKP\",\"kid\":\"ed\",\"crv\":\"Ed25519\",\"x\":\"%s\"},"
             "{\"kty\":\"oct\",\"kid\":\"hs\",\"k\":\"%s\",\"use\":\"sig\"}]}",
             n, e, x, y, ex, k);
    struct pt_jwt_keyset *ks = pt_jwt_keyset_parse(json, strlen(json), false, err, sizeof(err));
    if (!ks)
        fail_msg("%s", err);
    assert_int_equal(ks->n, 4);
    return ks;
}

static const struct pt_jwt_rules rules = {"iss1", "api", 60, NULL};

static enum pt_jwt_verdict check(const struct pt_jwt_keyset *ks, char *tok)
{
    enum pt_jwt_verdict v = pt_jwt_verify(tok, strlen(tok), ks, &rules, NOW, NULL);
    free(tok);
    return v;
}

#define GOOD "{\"iss\":\"iss1\",\"aud\":\"api\",\"exp\":1700000100,\"sub\":\"alice\"}"

static void test_b64url(void **state)
{
    (void)state;
    unsigned char out[64];
    assert_int_equal(pt_jwt_b64url_decode("", 0, out, sizeof(out)), 0);
    assert_int_equal(pt_jwt_b64url_decode("YQ", 2, out, sizeof(out)), 1);
    assert_int_equal(out[0], 'a');
    assert_int_equal(pt_jwt_b64url_decode("YWI", 3, out, sizeof(out)), 2);
    assert_int_equal(pt_jwt_b64url_decode("YWJj", 4, out, sizeof(out)), 3);
    assert_int_equal(pt_jwt_b64url_decode("_-8", 3, out, sizeof(out)), 2);
    assert_int_equal(out[0], 0xff);
    assert_int_equal(out[1], 0xef);
    assert_int_equal(pt_jwt_b64url_decode("YQ==", 4, out, sizeof(out)), -1); /* padding */
    assert_int_equal(pt_jwt_b64url_decode("Y", 1, out, sizeof(out)), -1);    /* 6 bits */
    assert_int_equal(pt_jwt_b64url_decode("YR", 2, out, sizeof(out)), -1);   /* bits left */
    assert_int_equal(pt_jwt_b64url_decode("YW+j", 4, out, sizeof(out)), -1); /* not url */
    assert_int_equal(pt_jwt_b64url_decode("YW j", 4, out, sizeof(out)), -1);
    assert_int_equal(pt_jwt_b64url_decode("YWJj", 4, out, 2), -1); /* does not fit */
    /* every length round-trips */
    unsigned char in[40], back[40];
    char enc[64];
    for (size_t n = 0; n < sizeof(in); n++) {
        in[n] = (unsigned char)(n * 37 + 1);
        size_t el = b64u(in, n, enc);
        assert_int_equal(pt_jwt_b64url_decode(enc, el, back, sizeof(back)), (ssize_t)n);
        assert_memory_equal(in, back, n);
    }
}

static void test_each_algorithm(void **state)
{
    (void)state;
    struct pt_jwt_keyset *ks = jwks();
    assert_int_equal(check(ks, token("RS256", "rs", GOOD, rsa, NULL, 0)), PT_JWT_OK);
    assert_int_equal(check(ks, token("ES256", "es", GOOD, ecp, NULL, 0)), PT_JWT_OK);
    assert_int_equal(check(ks, token("EdDSA", "ed", GOOD, ed, NULL, 0)), PT_JWT_OK);
    assert_int_equal(check(ks, token("HS256", "hs", GOOD, NULL, SECRET, sizeof(SECRET) - 1)),
                     PT_JWT_OK);
    /* no kid: the keys of the token's alg are tried */
    assert_int_equal(check(ks, token("ES256", NULL, GOOD, ecp, NULL, 0)), PT_JWT_OK);
    /* another key of the same type does not verify */
    EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_int_equal(check(ks, token("ES256", "es", GOOD, other, NULL, 0)), PT_JWT_BAD_SIG);
    EVP_PKEY_free(other);
    other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_int_equal(check(ks, token("EdDSA", "ed", GOOD, other, NULL, 0)), PT_JWT_BAD_SIG);
    EVP_PKEY_free(other);
    assert_int_equal(check(ks, token("HS256", "hs", GOOD, NULL, (const unsigned char *)"x", 1)),
                     PT_JWT_BAD_SIG);
    /* a flipped signature byte, a changed payload */
    char *t = token("RS256", "rs", GOOD, rsa, NULL, 0);
    size_t n = strlen(t);
    t[n - 5] = t[n - 5] == 'A' ? 'B' : 'A';
    assert_int_equal(check(ks, t), PT_JWT_BAD_SIG);
    t = token("ES256", "es", GOOD, ecp, NULL, 0);
    char *dot = strchr(t, '.');
    dot[1] = dot[1] == 'e' ? 'f' : 'e';
    assert_int_not_equal(check(ks, t), PT_JWT_OK);
    pt_jwt_keyset_unref(ks);
}

static void test_alg_confusion(void **state)
{
    (void)state;
    struct pt_jwt_keyset *ks = jwks();
    assert_int_equal(check(ks, token("none", "rs", GOOD, NULL, NULL, 0)), PT_JWT_BAD_ALG);
    assert_int_equal(check(ks, token("none", NULL, GOOD, NULL, NULL, 0)), PT_JWT_BAD_ALG);
    assert_int_equal(check(ks, token("HS512", "hs", GOOD, NULL, NULL, 0)), PT_JWT_BAD_ALG);
    /* the RSA public key, PEM, as the HMAC secret of a token naming the RSA key */
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(b, rsa);
    char *pem;
    long pl = BIO_get_mem_data(b, &pem);
    assert_int_equal(check(ks, token("HS256", "rs", GOOD, NULL, (unsigned char *)pem, (size_t)pl)),
                     PT_JWT_BAD_ALG);
    assert_int_equal(check(ks, token("HS256", NULL, GOOD, NULL, (unsigned char *)pem, (size_t)pl)),
                     PT_JWT_BAD_SIG); /* tried against the oct key only */
    BIO_free(b);
    assert_int_equal(check(ks, token("ES256", "hs", GOOD, ecp, NULL, 0)), PT_JWT_BAD_ALG);
    assert_int_equal(check(ks, token("RS256", "zz", GOOD, rsa, NULL, 0)), PT_JWT_NO_KEY);
    pt_jwt_keyset_unref(ks);
}

static void test_claims(void **state)
{
    (void)state;
    struct pt_jwt_keyset *ks = pt_jwt_keyset_secret(SECRET, sizeof(SECRET) - 1);
    const unsigned char *s = SECRET;
    size_t sl = sizeof(SECRET) - 1;
#define T(payload) check(ks, token("HS256", NULL, payload, NULL, s, sl))
    assert_int_equal(T(GOOD), PT_JWT_OK);
    /* exp with a 60 s skew: expired at exp + 60 */
    assert_int_equal(T("{\"iss\":\"iss1\",\"aud\":\"api\",\"exp\":1699999941}"), PT_JWT_OK);
    assert_int_equal(T("{\"iss\":\"iss1\",\"aud\":\"api\",\"exp\":1699999940}"), PT_JWT_EXPIRED);
    assert_int_equal(T("{\"iss\":\"iss1\",\"aud\":\"api\",\"exp\":1699999940.5}"), PT_JWT_OK);
    assert_int_equal(T("{\"iss\":\"iss1\",\"aud\":\"api\",\"exp\":\"1800000000\"}"),
                     PT_JWT_MISSING);
    /* nbf */
    assert_int_equal(T("{\"iss\":\"iss1\",\"aud\":\"api\",\"nbf\":1700000060}"), PT_JWT_OK);
    assert_int_equal(T("{\"iss\":\"iss1\",\"aud\":\"api\",\"nbf\":1700000061}"), PT_JWT_NOT_YET);
    /* iss, aud */
    assert_int_equal(T("{\"iss\":\"iss2\",\"aud\":\"api\"}"), PT_JWT_BAD_ISS);
    assert_int_equal(T("{\"aud\":\"api\"}"), PT_JWT_BAD_ISS);
    assert_int_equal(T("{\"iss\":\"iss1\",\"aud\":\"apix\"}"), PT_JWT_BAD_AUD);
    assert_int_equal(T("{\"iss\":\"iss1\",\"aud\":[\"web\",\"api\"]}"), PT_JWT_OK);
    assert_int_equal(T("{\"iss\":\"iss1\",\"aud\":[\"web\",1]}"), PT_JWT_BAD_AUD);
    assert_int_equal(T("{\"iss\":\"iss1\"}"), PT_JWT_BAD_AUD);
    /* malformed */
    assert_int_equal(T("[1]"), PT_JWT_MALFORMED);
    assert_int_equal(T("{\"a\":1,\"a\":2}"), PT_JWT_MALFORMED);
    assert_int_equal(pt_jwt_verify("a.b", 3, ks, &rules, NOW, NULL), PT_JWT_MALFORMED);
    assert_int_equal(pt_jwt_verify("a.b.c.d", 7, ks, &rules, NOW, NULL), PT_JWT_MALFORMED);
    assert_int_equal(pt_jwt_verify("", 0, ks, &rules, NOW, NULL), PT_JWT_MALFORMED);
    /* require */
    static const char *const req[] = {"exp", "sub", NULL};
    struct pt_jwt_rules r2 = {NULL, NULL, 0, req};
    char *t = token("HS256", NULL, "{\"exp\":1800000000}", NULL, s, sl);
    assert_int_equal(pt_jwt_verify(t, strlen(t), ks, &r2, NOW, NULL), PT_JWT_MISSING);
    free(t);
    t = token("HS256", NULL, "{\"exp\":1800000000,\"sub\":7,\"x\":{\"a\":[1]}}", NULL, s, sl);
    json_t *claims = NULL;
    assert_int_equal(pt_jwt_verify(t, strlen(t), ks, &r2, NOW, &claims), PT_JWT_OK);
    char out[64];
    assert_int_equal(pt_jwt_claim_text(json_object_get(claims, "sub"), out, sizeof(out)), 1);
    assert_memory_equal(out, "7", 1);
    assert_int_equal(pt_jwt_claim_text(json_object_get(claims, "x"), out, sizeof(out)), 9);
    assert_memory_equal(out, "{\"a\":[1]}", 9);
    json_t *nl = json_string("a\r\nX-Evil: 1");
    assert_int_equal(pt_jwt_claim_text(nl, out, sizeof(out)), -1);
    json_decref(nl);
    json_decref(claims);
    free(t);
#undef T
    /* a crit header is refused; an over-long token is refused unread */
    char *big = malloc(PT_JWT_MAX_TOKEN + 2);
    memset(big, 'A', PT_JWT_MAX_TOKEN + 1);
    assert_int_equal(pt_jwt_verify(big, PT_JWT_MAX_TOKEN + 1, ks, &rules, NOW, NULL),
                     PT_JWT_MALFORMED);
    free(big);
    pt_jwt_keyset_unref(ks);
}

static void test_jwks_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "[]",
        "{\"keys\":[]}",
        "{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2hvcnQ\"}]}",
        "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\",\"y\":\"AA\"}]}",
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"AA\"}]}",
        "{\"keys\":[{\"kty\":\"oct\",\"use\":\"enc\",\"k\":"
        "\"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\"}]}",
        "{\"keys\":[{\"kty\":\"oct\",\"alg\":\"RS256\",\"k\":"
        "\"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\"}]}",
        "{\"keys\":[{\"kty\":\"XYZ\"}]}",
        NULL};
    for (size_t i = 0; bad[i]; i++) {
        char err[256] = "";
        struct pt_jwt_keyset *ks =
            pt_jwt_keyset_parse(bad[i], strlen(bad[i]), false, err, sizeof(err));
        if (ks)
            fail_msg("accepted %s", bad[i]);
        assert_true(err[0] != '\0');
    }
    assert_string_equal(pt_jwt_verdict_text(PT_JWT_EXPIRED), "expired");
    /* lenient (a fetched set): unusable keys are skipped, the usable one kept */
    static const char mixed[] =
        "{\"keys\":[{\"kty\":\"RSA\",\"use\":\"enc\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
        "{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\",\"y\":\"AA\"},"
        "{\"kty\":\"oct\",\"kid\":\"k\",\"alg\":\"HS512\","
        "\"k\":\"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\"},"
        "{\"kty\":\"oct\",\"kid\":\"ok\",\"k\":\"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\"}]}";
    char err[256] = "";
    assert_null(pt_jwt_keyset_parse(mixed, strlen(mixed), false, err, sizeof(err)));
    struct pt_jwt_keyset *ks = pt_jwt_keyset_parse(mixed, strlen(mixed), true, err, sizeof(err));
    assert_non_null(ks);
    assert_int_equal(ks->n, 1);
    assert_string_equal(ks->keys[0].kid, "ok");
    pt_jwt_keyset_unref(ks);
    assert_null(pt_jwt_keyset_parse(bad[5], strlen(bad[5]), true, err, sizeof(err)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url),        cmocka_unit_test(test_each_algorithm),
        cmocka_unit_test(test_alg_confusion), cmocka_unit_test(test_claims),
        cmocka_unit_test(test_jwks_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
