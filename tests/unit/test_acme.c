/*
 * Unit tests for the ACME client's offline parts (tls/acme_internal.h): base64url against the
 * RFC 4648 §10 vectors (unpadded, URL alphabet), the canonical JWK and its RFC 7638 thumbprint
 * for a fixed P-256 key (expected values computed independently with Python's cryptography
 * package and hashlib), JWS structure and ES256 signatures checked by decoding and verifying
 * them, CSRs and placeholders parsed back, renewal arithmetic, name filtering, 0600 files, and
 * the HTTP-01 lookup for unknown tokens.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "tls/acme.h"
#include "tls/acme_internal.h"

/* A fixed P-256 key (private scalar jpsQnnGQmL-YBIffH1136cLrnKxl6vDRyFTYPPtrGIs). */
static const char key_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                              "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgjpsQnnGQmL+YBIff\n"
                              "H1136cLrnKxl6vDRyFTYPPtrGIuhRANCAASIYKuKwnGkzwspDY32TSpeaMmUP5ul\n"
                              "8wSdAYkxpvv/OmcwWcIk4TwKemia9uHPEkBl3VtlLHJgF7MmQshTeN3s\n"
                              "-----END PRIVATE KEY-----\n";
static const char key_x[] = "iGCrisJxpM8LKQ2N9k0qXmjJlD-bpfMEnQGJMab7_zo";
static const char key_y[] = "ZzBZwiThPAp6aJr24c8SQGXdW2UscmAXsyZCyFN43ew";
static const char key_thumb[] = "3gKJ4mGfOiMJuk6m7OweD2QkjfR6fWViz41bZnSKI0E";

static EVP_PKEY *fixed_key(void)
{
    BIO *b = BIO_new_mem_buf(key_pem, -1);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(k);
    return k;
}

/* base64url decoding for the checks (no padding). Returns the length or -1. */
static int unb64url(const char *in, unsigned char *out, size_t outlen)
{
    size_t n = strlen(in), o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        const char *p = strchr(tab, in[i]);
        if (!p || !in[i])
            return -1;
        acc = acc << 6 | (uint32_t)(p - tab);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= outlen)
                return -1;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return (int)o;
}

static void test_b64url_vectors(void **state)
{
    (void)state;
    static const char *const v[][2] = {
        {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},         {"foo", "Zm9v"},
        {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}};
    char out[64];
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        int n = pt_acme_b64url((const unsigned char *)v[i][0], strlen(v[i][0]), out, sizeof(out));
        assert_int_equal(n, (int)strlen(v[i][1]));
        assert_string_equal(out, v[i][1]);
    }
    const unsigned char url[] = {0xfb, 0xff, 0xbf};
    assert_int_equal(pt_acme_b64url(url, 3, out, sizeof(out)), 4);
    assert_string_equal(out, "-_-_");
    assert_int_equal(pt_acme_b64url((const unsigned char *)"foo", 3, out, 4), -1);
    assert_int_equal(pt_acme_b64url((const unsigned char *)"foo", 3, out, 5), 4);
}

static void test_jwk_and_thumbprint(void **state)
{
    (void)state;
    EVP_PKEY *k = fixed_key();
    char jwk[256], want[256], th[64];
    snprintf(want, sizeof(want), "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
             key_x, key_y);
    assert_int_equal(pt_acme_jwk(k, jwk, sizeof(jwk)), (int)strlen(want));
    assert_string_equal(jwk, want);
    assert_int_equal(pt_acme_thumbprint(k, th, sizeof(th)), 43);
    assert_string_equal(th, key_thumb);
    assert_int_equal(pt_acme_jwk(k, jwk, 20), -1);
    EVP_PKEY_free(k);

    /* an RSA key is refused */
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    assert_non_null(rsa);
    assert_int_equal(pt_acme_jwk(rsa, jwk, sizeof(jwk)), -1);
    EVP_PKEY_free(rsa);
}

/* Checks a flattened JWS: header members, payload, ES256 signature. */
static void check_jws(const char *jws, EVP_PKEY *k, const char *kid, const char *payload)
{
    json_t *j = json_loads(jws, 0, NULL);
    assert_non_null(j);
    const char *p64 = json_string_value(json_object_get(j, "protected"));
    const char *pl64 = json_string_value(json_object_get(j, "payload"));
    const char *s64 = json_string_value(json_object_get(j, "signature"));
    assert_non_null(p64);
    assert_non_null(pl64);
    assert_non_null(s64);
    unsigned char buf[1024];
    int n = unb64url(p64, buf, sizeof(buf) - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    json_t *h = json_loads((const char *)buf, 0, NULL);
    assert_non_null(h);
    assert_string_equal(json_string_value(json_object_get(h, "alg")), "ES256");
    assert_string_equal(json_string_value(json_object_get(h, "nonce")), "n0nce-_");
    assert_string_equal(json_string_value(json_object_get(h, "url")), "https://ca.test/acme/x");
    if (kid) {
        assert_string_equal(json_string_value(json_object_get(h, "kid")), kid);
        assert_null(json_object_get(h, "jwk"));
    } else {
        json_t *jwk = json_object_get(h, "jwk");
        assert_null(json_object_get(h, "kid"));
        assert_string_equal(json_string_value(json_object_get(jwk, "x")), key_x);
        assert_string_equal(json_string_value(json_object_get(jwk, "y")), key_y);
        assert_string_equal(json_string_value(json_object_get(jwk, "kty")), "EC");
    }
    n = unb64url(pl64, buf, sizeof(buf) - 1);
    assert_int_equal(n, (int)strlen(payload));
    assert_memory_equal(buf, payload, (size_t)n);

    unsigned char sig[128];
    assert_int_equal(unb64url(s64, sig, sizeof(sig)), 64);
    ECDSA_SIG *es = ECDSA_SIG_new();
    assert_true(ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL)));
    unsigned char *der = NULL;
    int dl = i2d_ECDSA_SIG(es, &der);
    assert_true(dl > 0);
    char input[2048];
    snprintf(input, sizeof(input), "%s.%s", p64, pl64);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k), 1);
    assert_int_equal(EVP_DigestVerify(md, der, (size_t)dl, (unsigned char *)input, strlen(input)),
                     1);
    /* a changed signing input does not verify */
    input[3] ^= 1;
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k), 1);
    assert_int_not_equal(
        EVP_DigestVerify(md, der, (size_t)dl, (unsigned char *)input, strlen(input)), 1);
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    json_decref(h);
    json_decref(j);
}

static void test_jws_es256(void **state)
{
    (void)state;
    EVP_PKEY *k = fixed_key();
    char *jws = pt_acme_jws(k, NULL, "n0nce-_", "https://ca.test/acme/x",
                            "{\"termsOfServiceAgreed\":true}");
    assert_non_null(jws);
    check_jws(jws, k, NULL, "{\"termsOfServiceAgreed\":true}");
    free(jws);
    /* with an account URL (kid); NULL payload is POST-as-GET: "" (RFC 8555 §6.3) */
    jws = pt_acme_jws(k, "https://ca.test/acct/1", "n0nce-_", "https://ca.test/acme/x", NULL);
    assert_non_null(jws);
    check_jws(jws, k, "https://ca.test/acct/1", "");
    free(jws);
    /* server-provided strings that would need escaping are refused */
    assert_null(pt_acme_jws(k, NULL, "bad\"nonce", "https://ca.test/", NULL));
    assert_null(pt_acme_jws(k, NULL, "n", "https://ca.test/\\", NULL));
    EVP_PKEY_free(k);
}

static void test_csr_has_names_and_verifies(void **state)
{
    (void)state;
    EVP_PKEY *k = pt_acme_new_key();
    assert_non_null(k);
    const char *names[] = {"a.example", "www.a.example"};
    unsigned char *der = NULL;
    int n = pt_acme_csr(k, names, 2, &der);
    assert_true(n > 0);
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, n);
    assert_non_null(req);
    assert_int_equal(X509_REQ_verify(req, k), 1);
    char cn[64];
    assert_true(X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req), NID_commonName, cn,
                                          sizeof(cn)) > 0);
    assert_string_equal(cn, "a.example");
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    GENERAL_NAMES *gens = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
    assert_non_null(gens);
    assert_int_equal(sk_GENERAL_NAME_num(gens), 2);
    for (int i = 0; i < 2; i++) {
        GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
        assert_int_equal(gn->type, GEN_DNS);
        assert_string_equal((const char *)ASN1_STRING_get0_data(gn->d.dNSName), names[i]);
    }
    GENERAL_NAMES_free(gens);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    free(der);
    EVP_PKEY_free(k);
}

static void test_placeholder_and_renewal(void **state)
{
    (void)state;
    EVP_PKEY *k = pt_acme_new_key();
    const char *names[] = {"a.example", "b.example"};
    X509 *x = pt_acme_self_signed(k, names, 2, 30);
    assert_non_null(x);
    assert_int_equal(X509_check_private_key(x, k), 1);
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
    assert_true(pt_acme_cert_covers(x, names, 2));
    const char *other[] = {"a.example", "c.example"};
    assert_false(pt_acme_cert_covers(x, other, 2));
    const char *sub[] = {"x.a.example"};
    assert_false(pt_acme_cert_covers(x, sub, 1));
    time_t nb, na, now = time(NULL);
    assert_int_equal(pt_acme_cert_times(x, &nb, &na), 0);
    assert_true(nb <= now - 3500 && nb >= now - 3700);
    assert_true(na >= now + 30 * 86400 - 100 && na <= now + 30 * 86400 + 100);

    /* the files round-trip with mode 0600 */
    char dir[] = "/tmp/pt_acme_test_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char kp[128], cp[128];
    snprintf(kp, sizeof(kp), "%s/k.key", dir);
    snprintf(cp, sizeof(cp), "%s/c.crt", dir);
    char *pem = NULL;
    int n = pt_acme_key_pem(k, &pem);
    assert_true(n > 0);
    assert_int_equal(pt_acme_write_file(kp, pem, (size_t)n), 0);
    free(pem);
    n = pt_acme_cert_pem(x, &pem);
    assert_true(n > 0);
    assert_int_equal(pt_acme_write_file(cp, pem, (size_t)n), 0);
    assert_int_equal(pt_acme_write_file(cp, pem, (size_t)n), 0); /* replaces */
    free(pem);
    struct stat st;
    assert_int_equal(stat(kp, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(cp, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    EVP_PKEY *k2 = pt_acme_read_key(kp);
    X509 *x2 = pt_acme_read_cert(cp);
    assert_non_null(k2);
    assert_non_null(x2);
    assert_int_equal(X509_check_private_key(x2, k2), 1);
    assert_null(pt_acme_read_key(cp));
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s.tmp", cp);
    assert_int_not_equal(access(tmp, F_OK), 0);
    unlink(kp);
    unlink(cp);
    rmdir(dir);
    EVP_PKEY_free(k2);
    X509_free(x2);
    X509_free(x);
    EVP_PKEY_free(k);

    /* a third of the lifetime left (90 days: renew in the last 30) */
    time_t b = 1000000, e = b + 90 * 86400;
    assert_false(pt_acme_renew_due(b, e, b + 59 * 86400, 1.0 / 3));
    assert_false(pt_acme_renew_due(b, e, b + 60 * 86400 - 1, 1.0 / 3));
    assert_true(pt_acme_renew_due(b, e, b + 60 * 86400 + 1, 1.0 / 3));
    assert_true(pt_acme_renew_due(b, e, e + 5, 1.0 / 3));
    assert_true(pt_acme_renew_due(b, e, b + 1, 1.0));
}

static void test_names_and_http01_lookup(void **state)
{
    (void)state;
    assert_true(pt_acme_name_ok("example.com"));
    assert_true(pt_acme_name_ok("localhost"));
    assert_true(pt_acme_name_ok("a-1.b2.example"));
    assert_false(pt_acme_name_ok("*.example.com"));
    assert_false(pt_acme_name_ok("example.com:8080"));
    assert_false(pt_acme_name_ok("127.0.0.1"));
    assert_false(pt_acme_name_ok("[::1]"));
    assert_false(pt_acme_name_ok(""));
    assert_false(pt_acme_name_ok(".example.com"));
    char out[64];
    assert_int_equal(pt_acme_http01("nope", 4, out, sizeof(out)), -1);
    assert_int_equal(pt_acme_http01("", 0, out, sizeof(out)), -1);
}

/* TLS-ALPN-01 (RFC 8737 §3): the challenge certificate names only the domain and carries the
   critical id-pe-acmeIdentifier extension whose value is the DER OCTET STRING of
   SHA-256(key authorization). */
static void test_tls_alpn_challenge_cert(void **state)
{
    (void)state;
    EVP_PKEY *k = pt_acme_new_key();
    assert_non_null(k);
    const char *ka = "tok-123.thumbprint";
    X509 *x = pt_acme_alpn_cert(k, "chal.example", ka);
    assert_non_null(x);
    assert_int_equal(X509_verify(x, k), 1);
    ASN1_OBJECT *oid = OBJ_txt2obj(PT_ACME_ID_PE_ACME_IDENTIFIER, 1);
    int idx = X509_get_ext_by_OBJ(x, oid, -1);
    assert_true(idx >= 0);
    X509_EXTENSION *e = X509_get_ext(x, idx);
    assert_int_equal(X509_EXTENSION_get_critical(e), 1);
    const ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(e);
    unsigned char want[34] = {0x04, 0x20};
    SHA256((const unsigned char *)ka, strlen(ka), want + 2);
    assert_int_equal(ASN1_STRING_length(v), 34);
    assert_memory_equal(ASN1_STRING_get0_data(v), want, 34);
    const char *names[] = {"chal.example"};
    assert_true(pt_acme_cert_covers(x, names, 1));
    ASN1_OBJECT_free(oid);
    X509_free(x);
    EVP_PKEY_free(k);
    /* no pending challenge: nothing to present */
    X509 *cx = NULL;
    EVP_PKEY *ck = NULL;
    assert_int_equal(pt_acme_alpn_lookup("chal.example", &cx, &ck), -1);
    assert_null(cx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url_vectors),
        cmocka_unit_test(test_jwk_and_thumbprint),
        cmocka_unit_test(test_jws_es256),
        cmocka_unit_test(test_csr_has_names_and_verifies),
        cmocka_unit_test(test_placeholder_and_renewal),
        cmocka_unit_test(test_names_and_http01_lookup),
        cmocka_unit_test(test_tls_alpn_challenge_cert),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
