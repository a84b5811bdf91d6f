/*
 * acme_crypto.c - the offline half of the ACME client: encodings, JWS, CSRs, placeholders and
 * key/certificate files (see acme_internal.h).
 *
 * Only P-256 keys are made or accepted (ES256, RFC 7518 §3.4): one algorithm keeps the JWK and
 * signature code small, every ACME server supports it, and ECDSA certificates are cheap to
 * serve. The JWS signature is the fixed-width R || S form that JOSE requires, converted from
 * the DER that OpenSSL produces. Files are written through a temporary name and renamed, so a
 * reload never reads half a key. Stateless and thread-safe.
 */
#include "tls/acme_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "core/common.h"

int pt_acme_b64url(const unsigned char *in, size_t n, char *out, size_t outlen)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t need = n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
    if (need + 1 > outlen)
        return -1;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
        out[o++] = tab[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
    }
    out[o] = '\0';
    return (int)o;
}

/* The 32-byte big-endian coordinate name (OSSL_PKEY_PARAM_EC_PUB_X/Y) of key, base64url. */
static int coord(EVP_PKEY *key, const char *name, char *out, size_t outlen)
{
    BIGNUM *bn = NULL;
    unsigned char buf[32];
    int rc = -1;
    if (!EVP_PKEY_get_bn_param(key, name, &bn) || BN_bn2binpad(bn, buf, sizeof(buf)) != 32)
        goto out;
    rc = pt_acme_b64url(buf, sizeof(buf), out, outlen);
out:
    BN_free(bn);
    return rc;
}

static bool is_p256(EVP_PKEY *key)
{
    char group[32];
    size_t gl = 0;
    return key && EVP_PKEY_is_a(key, "EC") &&
           EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                          &gl) &&
           strcmp(group, "prime256v1") == 0;
}

int pt_acme_jwk(EVP_PKEY *key, char *out, size_t outlen)
{
    char x[64], y[64];
    if (!is_p256(key) || coord(key, OSSL_PKEY_PARAM_EC_PUB_X, x, sizeof(x)) < 0 ||
        coord(key, OSSL_PKEY_PARAM_EC_PUB_Y, y, sizeof(y)) < 0)
        return -1;
    int n =
        snprintf(out, outlen, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x, y);
    return n < 0 || (size_t)n >= outlen ? -1 : n;
}

int pt_acme_thumbprint(EVP_PKEY *key, char *out, size_t outlen)
{
    char jwk[256];
    unsigned char md[32];
    int n = pt_acme_jwk(key, jwk, sizeof(jwk));
    if (n < 0 || !EVP_Digest(jwk, (size_t)n, md, NULL, EVP_sha256(), NULL))
        return -1;
    return pt_acme_b64url(md, sizeof(md), out, outlen);
}

/* ES256 over in[0..n): the 64-byte R || S into sig (RFC 7518 §3.4). Returns 0 or -1. */
static int es256(EVP_PKEY *key, const char *in, size_t n, unsigned char sig[64])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[128];
    size_t dl = sizeof(der);
    ECDSA_SIG *es = NULL;
    int rc = -1;
    if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, der, &dl, (const unsigned char *)in, n) != 1)
        goto out;
    const unsigned char *p = der;
    es = d2i_ECDSA_SIG(NULL, &p, (long)dl);
    if (!es)
        goto out;
    if (BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32) != 32 ||
        BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32) != 32)
        goto out;
    rc = 0;
out:
    ECDSA_SIG_free(es);
    EVP_MD_CTX_free(md);
    return rc;
}

char *pt_acme_jws(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
                  const char *payload)
{
    char jwk[256];
    char *hdr = NULL, *hdr64 = NULL, *pay64 = NULL, *input = NULL, *out = NULL;
    size_t hl, pl = payload ? strlen(payload) : 0;
    if (!kid && pt_acme_jwk(key, jwk, sizeof(jwk)) < 0)
        return NULL;
    /* nonce and url come from the server: refuse what would need JSON escaping */
    for (const char *s = nonce; *s; s++)
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
            return NULL;
    for (const char *s = url; *s; s++)
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
            return NULL;
    for (const char *s = kid ? kid : ""; *s; s++)
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
            return NULL;
    hl = strlen(nonce) + strlen(url) + (kid ? strlen(kid) : strlen(jwk)) + 64;
    hdr = malloc(hl);
    hdr64 = malloc(hl * 4 / 3 + 4);
    pay64 = malloc(pl * 4 / 3 + 4);
    if (!hdr || !hdr64 || !pay64)
        goto out;
    int n =
        kid ? snprintf(hdr, hl,
                       "{\"alg\":\"ES256\",\"kid\":\"%s\",\"nonce\":\"%s\",\"url\":\"%s\"}", kid,
                       nonce, url)
            : snprintf(hdr, hl, "{\"alg\":\"ES256\",\"jwk\":%s,\"nonce\":\"%s\",\"url\":\"%s\"}",
                       jwk, nonce, url);
    if (n < 0 || (size_t)n >= hl)
        goto out;
    int h64 = pt_acme_b64url((const unsigned char *)hdr, (size_t)n, hdr64, hl * 4 / 3 + 4);
    int p64 =
        pt_acme_b64url((const unsigned char *)(payload ? payload : ""), pl, pay64, pl * 4 / 3 + 4);
    if (h64 < 0 || p64 < 0)
        goto out;
    /* JWS signing input: ASCII(BASE64URL(header) || '.' || BASE64URL(payload)) (RFC 7515 §5.1) */
    size_t il = (size_t)h64 + (size_t)p64 + 2;
    input = malloc(il);
    if (!input)
        goto out;
    snprintf(input, il, "%s.%s", hdr64, pay64);
    unsigned char sig[64];
    char sig64[96];
    if (es256(key, input, il - 1, sig) < 0 || pt_acme_b64url(sig, 64, sig64, sizeof(sig64)) < 0)
        goto out;
    size_t ol = il + sizeof(sig64) + 64;
    out = malloc(ol);
    if (out)
        snprintf(out, ol, "{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":\"%s\"}", hdr64,
                 pay64, sig64);
out:
    free(hdr);
    free(hdr64);
    free(pay64);
    free(input);
    return out;
}

EVP_PKEY *pt_acme_new_key(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/* subjectAltName with every name as a dNSName, or NULL. */
static GENERAL_NAMES *san_of(const char *const *names, size_t n)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    if (!gens)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        GENERAL_NAME *gn = GENERAL_NAME_new();
        ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
        if (!gn || !ia5 || !ASN1_STRING_set(ia5, names[i], (int)strlen(names[i]))) {
            GENERAL_NAME_free(gn);
            ASN1_IA5STRING_free(ia5);
            goto fail;
        }
        GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
        if (!sk_GENERAL_NAME_push(gens, gn)) {
            GENERAL_NAME_free(gn);
            goto fail;
        }
    }
    return gens;
fail:
    GENERAL_NAMES_free(gens);
    return NULL;
}

int pt_acme_csr(EVP_PKEY *key, const char *const *names, size_t n, unsigned char **der)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *subj = X509_NAME_new();
    GENERAL_NAMES *gens = san_of(names, n);
    STACK_OF(X509_EXTENSION) *exts = NULL;
    int rc = -1;
    *der = NULL;
    if (!req || !subj || !gens || n == 0 || strlen(names[0]) > 64)
        goto out;
    if (!X509_REQ_set_version(req, 0) ||
        !X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC, (const unsigned char *)names[0], -1,
                                    -1, 0) ||
        !X509_REQ_set_subject_name(req, subj) || !X509_REQ_set_pubkey(req, key))
        goto out;
    if (!X509V3_add1_i2d(&exts, NID_subject_alt_name, gens, 0, 0) ||
        !X509_REQ_add_extensions(req, exts) || !X509_REQ_sign(req, key, EVP_sha256()))
        goto out;
    rc = i2d_X509_REQ(req, der);
    if (rc <= 0) {
        *der = NULL;
        rc = -1;
    }
out:
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    GENERAL_NAMES_free(gens);
    X509_NAME_free(subj);
    X509_REQ_free(req);
    return rc;
}

X509 *pt_acme_self_signed(EVP_PKEY *key, const char *const *names, size_t n, int days)
{
    X509 *x = X509_new();
    GENERAL_NAMES *gens = san_of(names, n);
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    if (!x || !gens || RAND_bytes(serial, sizeof(serial)) != 1)
        goto fail;
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    X509_NAME *name = X509_get_subject_name(x);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) || !X509_set_version(x, 2) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    (const unsigned char *)"Portico ACME placeholder", -1, -1, 0) ||
        !X509_set_issuer_name(x, name) || !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400) || !X509_set_pubkey(x, key) ||
        !X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0) || !X509_sign(x, key, EVP_sha256()))
        goto fail;
    BN_free(bn);
    GENERAL_NAMES_free(gens);
    return x;
fail:
    BN_free(bn);
    GENERAL_NAMES_free(gens);
    X509_free(x);
    return NULL;
}

X509 *pt_acme_alpn_cert(EVP_PKEY *key, const char *name, const char *key_auth)
{
    unsigned char ext[2 + 32];
    X509 *x = NULL;
    ASN1_OBJECT *oid = OBJ_txt2obj(PT_ACME_ID_PE_ACME_IDENTIFIER, 1);
    ASN1_OCTET_STRING *val = ASN1_OCTET_STRING_new();
    X509_EXTENSION *e = NULL;
    const char *names[1] = {name};
    /* extnValue is the DER of Authorization ::= OCTET STRING (SIZE (32)) (RFC 8737 §3) */
    ext[0] = 0x04;
    ext[1] = 32;
    if (!oid || !val || !SHA256((const unsigned char *)key_auth, strlen(key_auth), ext + 2) ||
        !ASN1_OCTET_STRING_set(val, ext, sizeof(ext)))
        goto fail;
    e = X509_EXTENSION_create_by_OBJ(NULL, oid, 1, val);
    x = pt_acme_self_signed(key, names, 1, 7);
    if (!e || !x || !X509_add_ext(x, e, -1) || !X509_sign(x, key, EVP_sha256()))
        goto fail;
    goto out;
fail:
    X509_free(x);
    x = NULL;
out:
    X509_EXTENSION_free(e);
    ASN1_OCTET_STRING_free(val);
    ASN1_OBJECT_free(oid);
    return x;
}

int pt_acme_write_file(const char *path, const void *data, size_t len)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return -ENAMETOOLONG;
    (void)unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    const char *p = data;
    size_t left = len;
    int rc = 0;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = w < 0 ? -errno : -EIO;
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0)
        (void)unlink(tmp);
    return rc;
}

/* The contents of a memory BIO as a malloc'd string. */
static int bio_take(BIO *b, char **out)
{
    char *p;
    long n = BIO_get_mem_data(b, &p);
    *out = NULL;
    if (n <= 0)
        return -1;
    *out = malloc((size_t)n + 1);
    if (!*out)
        return -1;
    memcpy(*out, p, (size_t)n);
    (*out)[n] = '\0';
    return (int)n;
}

int pt_acme_key_pem(EVP_PKEY *key, char **out)
{
    BIO *b = BIO_new(BIO_s_mem());
    int rc = -1;
    *out = NULL;
    if (b && PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL))
        rc = bio_take(b, out);
    BIO_free(b);
    return rc;
}

int pt_acme_cert_pem(X509 *cert, char **out)
{
    BIO *b = BIO_new(BIO_s_mem());
    int rc = -1;
    *out = NULL;
    if (b && PEM_write_bio_X509(b, cert))
        rc = bio_take(b, out);
    BIO_free(b);
    return rc;
}

EVP_PKEY *pt_acme_read_key(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return k;
}

X509 *pt_acme_read_cert(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    return x;
}

static int asn1_time(const ASN1_TIME *t, time_t *out)
{
    struct tm tm;
    if (!t || !ASN1_TIME_to_tm(t, &tm))
        return -1;
    *out = timegm(&tm);
    return 0;
}

int pt_acme_cert_times(X509 *cert, time_t *not_before, time_t *not_after)
{
    if (asn1_time(X509_get0_notBefore(cert), not_before) < 0 ||
        asn1_time(X509_get0_notAfter(cert), not_after) < 0)
        return -1;
    return 0;
}

bool pt_acme_cert_covers(X509 *cert, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (X509_check_host(cert, names[i], 0, X509_CHECK_FLAG_NO_WILDCARDS, NULL) != 1)
            return false;
    return n > 0;
}

bool pt_acme_renew_due(time_t not_before, time_t not_after, time_t now, double fraction)
{
    double lifetime = difftime(not_after, not_before);
    return difftime(not_after, now) < lifetime * fraction;
}

bool pt_acme_name_ok(const char *host)
{
    bool alpha = false;
    size_t n = 0;
    for (const char *p = host; *p; p++, n++) {
        char c = *p;
        if (c >= 'a' && c <= 'z')
            alpha = true;
        else if (!(c >= '0' && c <= '9') && c != '-' && c != '.')
            return false; /* '*', ':', '[', upper case (hosts are stored lower-cased) */
    }
    return alpha && n > 0 && n <= 253 && host[0] != '.' && host[n - 1] != '.';
}
