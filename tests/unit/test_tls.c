/*
 * Unit tests for the TLS module: real handshakes between pt_tls server and client objects over
 * non-blocking socketpairs, both sides pumped in one thread in a bounded loop. Certificates are
 * made here with the OpenSSL API into a mkdtemp() directory: a test CA, a second (untrusted)
 * CA, RSA and ECDSA certificates for a.test, a wildcard *.w.test, a default, a CN-only one and
 * client certificates. The TLS transport (tls_transport.c) is tested here too, in both roles.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tls/tls.h"
#include "tls/tls_internal.h"
#include "tls/tls_transport.h"

/* ---- fixture: certificates ---- */

static char dir[64];
static char path_buf[32][160];
static int n_paths;
static X509 *client_x509; /* for the fingerprint check */

enum { C_DEF = 0, C_A_RSA, C_A_EC, C_WILD, C_CN };

static const char *path(const char *name)
{
    char *p = path_buf[n_paths++];
    snprintf(p, sizeof(path_buf[0]), "%s/%s", dir, name);
    return p;
}

static const char *P(const char *name)
{
    static char b[8][160];
    static int k;
    char *p = b[k++ % 8];
    snprintf(p, sizeof(b[0]), "%s/%s", dir, name);
    return p;
}

static EVP_PKEY *gen_key(bool rsa)
{
    EVP_PKEY *k = rsa ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                      : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(k);
    return k;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *san, X509 *issuer,
                       EVP_PKEY *issuer_key, bool is_ca)
{
    static long serial = 1;
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *nm = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : nm);
    add_ext(x, issuer, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "CA:FALSE");
    if (is_ca)
        add_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_ext(x, issuer, NID_subject_key_identifier, "hash");
    if (san)
        add_ext(x, issuer, NID_subject_alt_name, san);
    assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

static void write_pem(const char *file, X509 *leaf, X509 *chain, EVP_PKEY *key)
{
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    if (leaf)
        PEM_write_X509(f, leaf);
    if (chain)
        PEM_write_X509(f, chain);
    if (key)
        PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
}

/* Writes NAME.crt (leaf + CA) and NAME.key. */
static void issue(const char *name, bool rsa, const char *cn, const char *san, X509 *ca,
                  EVP_PKEY *ca_key, X509 **keep)
{
    char f[64];
    EVP_PKEY *k = gen_key(rsa);
    X509 *x = make_cert(k, cn, san, ca, ca_key, false);
    snprintf(f, sizeof(f), "%s.crt", name);
    write_pem(path(f), x, ca, NULL);
    snprintf(f, sizeof(f), "%s.key", name);
    write_pem(path(f), NULL, NULL, k);
    if (keep)
        *keep = x;
    else
        X509_free(x);
    EVP_PKEY_free(k);
}

static int setup_certs(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/pt_tls_test.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    EVP_PKEY *ca_key = gen_key(false), *ca2_key = gen_key(false);
    X509 *ca = make_cert(ca_key, "Portico Test CA", NULL, NULL, NULL, true);
    X509 *ca2 = make_cert(ca2_key, "Untrusted CA", NULL, NULL, NULL, true);
    write_pem(path("ca.pem"), ca, NULL, NULL);
    write_pem(path("ca2.pem"), ca2, NULL, NULL);
    issue("def", false, "default.test", "DNS:default.test", ca, ca_key, NULL);
    issue("a_rsa", true, "a.test", "DNS:a.test", ca, ca_key, NULL);
    issue("a_ec", false, "a.test", "DNS:a.test", ca, ca_key, NULL);
    issue("wild", false, "*.w.test", "DNS:*.w.test", ca, ca_key, NULL);
    issue("cn", false, "cn.test", NULL, ca, ca_key, NULL);
    issue("client", false, "client1", NULL, ca, ca_key, &client_x509);
    issue("client_bad", false, "intruder", NULL, ca2, ca2_key, NULL);
    FILE *f = fopen(path("garbage.crt"), "w");
    assert_non_null(f);
    fputs("this is not a certificate\n", f);
    fclose(f);
    X509_free(ca);
    X509_free(ca2);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(ca2_key);
    return 0;
}

static int teardown_certs(void **state)
{
    (void)state;
    for (int i = 0; i < n_paths; i++)
        unlink(path_buf[i]);
    rmdir(dir);
    X509_free(client_x509);
    return 0;
}

/* ---- helpers ---- */

static struct pt_tls_cert_settings std_certs[5];

/* default, a.test RSA, a.test ECDSA, *.w.test, cn.test */
static void std_settings(struct pt_tls_settings *s)
{
    static const char *names[5] = {"def", "a_rsa", "a_ec", "wild", "cn"};
    static char files[10][160];
    for (int i = 0; i < 5; i++) {
        snprintf(files[2 * i], 160, "%s/%s.crt", dir, names[i]);
        snprintf(files[2 * i + 1], 160, "%s/%s.key", dir, names[i]);
        std_certs[i].cert_file = files[2 * i];
        std_certs[i].key_file = files[2 * i + 1];
    }
    pt_tls_settings_init(s);
    s->certs = std_certs;
    s->n_certs = 5;
}

static struct pt_tls_ctx *std_ctx(void)
{
    struct pt_tls_settings s;
    struct pt_tls_err err;
    std_settings(&s);
    struct pt_tls_ctx *ctx = pt_tls_ctx_new(&s, &err);
    if (!ctx)
        fail_msg("ctx: %s", err.msg);
    return ctx;
}

static struct pt_tls_client_ctx *client_ctx(const char *ca, bool verify, const char *cert,
                                            const char *key)
{
    struct pt_tls_client_settings s;
    struct pt_tls_err err;
    pt_tls_client_settings_init(&s);
    s.ca_file = ca;
    s.verify = verify;
    s.cert_file = cert;
    s.key_file = key;
    struct pt_tls_client_ctx *cc = pt_tls_client_ctx_new(&s, &err);
    if (!cc)
        fail_msg("client ctx: %s", err.msg);
    return cc;
}

struct pair {
    int fd[2]; /* [0] server side, [1] client side */
    struct pt_tls_conn *s, *c;
    int rs, rc; /* last handshake results */
};

static void pair_open(struct pair *p, struct pt_tls_ctx *ctx, struct pt_tls_client_ctx *cc,
                      const char *host, const char *key)
{
    memset(p, 0, sizeof(*p));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->fd), 0);
    p->s = pt_tls_server_new(ctx, p->fd[0]);
    assert_non_null(p->s);
    if (cc) {
        p->c = pt_tls_client_new(cc, p->fd[1], host, key);
        assert_non_null(p->c);
    }
}

static void pair_close(struct pair *p)
{
    pt_tls_free(p->s);
    pt_tls_free(p->c);
    close(p->fd[0]);
    close(p->fd[1]);
}

static bool final(int rc)
{
    return rc == PT_OK || rc == PT_ERR;
}

/* Pumps both handshakes, bounded. Returns true when both finished with PT_OK. */
static bool pump(struct pair *p)
{
    p->rs = p->rc = PT_TLS_WANT_READ;
    int stuck = 0;
    for (int i = 0; i < 200 && stuck < 10; i++) {
        if (!final(p->rs))
            p->rs = pt_tls_handshake(p->s);
        if (!final(p->rc))
            p->rc = pt_tls_handshake(p->c);
        if (final(p->rs) && final(p->rc))
            break;
        if (p->rs == PT_ERR || p->rc == PT_ERR)
            stuck++;
    }
    return p->rs == PT_OK && p->rc == PT_OK;
}

/* Reads into buf until len bytes or EAGAIN; returns bytes read. */
static size_t read_some(struct pt_tls_conn *c, char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pt_tls_read(c, buf + got, len - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

/* One request/response so TLS 1.3 tickets reach the client. */
static void exchange(struct pair *p)
{
    char buf[16];
    struct iovec v = {.iov_base = "ping", .iov_len = 4};
    assert_int_equal(pt_tls_writev(p->c, &v, 1), 4);
    assert_int_equal(read_some(p->s, buf, 4), 4);
    assert_memory_equal(buf, "ping", 4);
    v.iov_base = "pong";
    assert_int_equal(pt_tls_writev(p->s, &v, 1), 4);
    assert_int_equal(read_some(p->c, buf, 4), 4);
    assert_memory_equal(buf, "pong", 4);
    assert_int_equal(pt_tls_read(p->c, buf, sizeof(buf)), -EAGAIN);
}

static X509 *server_cert_seen(struct pair *p)
{
    return SSL_get0_peer_certificate(p->c->ssl);
}

static int server_key_type(struct pair *p)
{
    return EVP_PKEY_get_base_id(X509_get0_pubkey(server_cert_seen(p)));
}

static void set_max(struct pt_tls_conn *c, int v)
{
    assert_int_equal(SSL_set_max_proto_version(c->ssl, v), 1);
}

/* ---- context building ---- */

static void test_ctx_select_by_name(void **state)
{
    (void)state;
    struct pt_tls_ctx *ctx = std_ctx();
    assert_int_equal(pt_tls_ctx_select(ctx, "a.test"), C_A_RSA);
    assert_int_equal(pt_tls_ctx_select(ctx, "A.Test."), C_A_RSA);
    assert_int_equal(pt_tls_ctx_select(ctx, "x.w.test"), C_WILD);
    assert_int_equal(pt_tls_ctx_select(ctx, "a.b.w.test"), C_DEF); /* one label only */
    assert_int_equal(pt_tls_ctx_select(ctx, "w.test"), C_DEF);
    assert_int_equal(pt_tls_ctx_select(ctx, "cn.test"), C_CN); /* CN when no SAN */
    assert_int_equal(pt_tls_ctx_select(ctx, "default.test"), C_DEF);
    assert_int_equal(pt_tls_ctx_select(ctx, "unknown.test"), C_DEF);
    assert_int_equal(pt_tls_ctx_select(ctx, NULL), C_DEF);
    assert_int_equal(ctx->n_groups, 4); /* RSA and ECDSA a.test share a group */
    pt_tls_ctx_unref(ctx);
}

static void test_ctx_errors_name_the_file(void **state)
{
    (void)state;
    struct pt_tls_settings s;
    struct pt_tls_err err;
    std_settings(&s);
    struct pt_tls_cert_settings bad[2] = {std_certs[0], std_certs[2]};
    bad[1].key_file = std_certs[0].key_file; /* a.test EC certificate with the default's key */
    s.certs = bad;
    s.n_certs = 2;
    assert_null(pt_tls_ctx_new(&s, &err));
    assert_string_equal(err.key, "certificates");
    assert_int_equal(err.index, 1);
    assert_non_null(strstr(err.msg, "key does not match certificate"));
    assert_int_equal(strncmp(err.msg, std_certs[0].key_file, strlen(std_certs[0].key_file)), 0);

    bad[1].cert_file = P("missing.crt");
    assert_null(pt_tls_ctx_new(&s, &err));
    assert_non_null(strstr(err.msg, "missing.crt: cannot open: No such file"));

    bad[1].cert_file = P("garbage.crt");
    assert_null(pt_tls_ctx_new(&s, &err));
    assert_non_null(strstr(err.msg, "garbage.crt: no PEM certificate found"));

    std_settings(&s);
    s.min_version = "1.1";
    assert_null(pt_tls_ctx_new(&s, &err));
    assert_string_equal(err.key, "min_version");

    std_settings(&s);
    s.ciphers = "NO-SUCH-CIPHER";
    assert_null(pt_tls_ctx_new(&s, &err));
    assert_string_equal(err.key, "ciphers");

    std_settings(&s);
    s.client_auth = PT_TLS_CLIENT_AUTH_REQUIRED;
    assert_null(pt_tls_ctx_new(&s, &err));
    assert_string_equal(err.key, "client_auth");

    std_settings(&s);
    s.client_auth = PT_TLS_CLIENT_AUTH_OPTIONAL;
    s.client_ca_file = P("nope.pem");
    assert_null(pt_tls_ctx_new(&s, &err));
    assert_string_equal(err.key, "client_ca_file");
    assert_non_null(strstr(err.msg, "nope.pem: "));

    struct pt_tls_client_settings cs;
    pt_tls_client_settings_init(&cs);
    cs.cert_file = P("client.crt");
    cs.key_file = P("def.key");
    assert_null(pt_tls_client_ctx_new(&cs, &err));
    assert_non_null(strstr(err.msg, "key does not match certificate"));
    assert_int_equal(ERR_peek_error(), 0);
}

/* ---- SNI ---- */

static void test_sni_exact_rsa_and_ecdsa(void **state)
{
    (void)state;
    struct pt_tls_ctx *ctx = std_ctx();
    struct pt_tls_client_ctx *cc = client_ctx(P("ca.pem"), true, NULL, NULL);
    struct pair p;

    /* (Distinct session keys: no resumption, each handshake picks a certificate.)
       TLS 1.3: the client's signature algorithms decide between the two a.test keys. */
    pair_open(&p, ctx, cc, "a.test", "k1");
    assert_int_equal(SSL_set1_sigalgs_list(p.c->ssl, "rsa_pss_rsae_sha256"), 1);
    assert_true(pump(&p));
    assert_int_equal(server_key_type(&p), EVP_PKEY_RSA);
    assert_string_equal(pt_tls_sni(p.s), "a.test");
    assert_string_equal(pt_tls_version(p.s), "TLSv1.3");
    assert_true(pt_tls_peer_verified(p.c));
    pair_close(&p);

    pair_open(&p, ctx, cc, "a.test", "k2");
    assert_int_equal(SSL_set1_sigalgs_list(p.c->ssl, "ecdsa_secp256r1_sha256"), 1);
    assert_true(pump(&p));
    assert_int_equal(server_key_type(&p), EVP_PKEY_EC);
    pair_close(&p);

    /* TLS 1.2: the cipher suite decides. */
    pair_open(&p, ctx, cc, "a.test", "k3");
    set_max(p.c, TLS1_2_VERSION);
    assert_int_equal(SSL_set_cipher_list(p.c->ssl, "ECDHE-RSA-AES128-GCM-SHA256"), 1);
    assert_true(pump(&p));
    assert_int_equal(server_key_type(&p), EVP_PKEY_RSA);
    assert_string_equal(pt_tls_version(p.c), "TLSv1.2");
    pair_close(&p);

    pair_open(&p, ctx, cc, "a.test", "k4");
    set_max(p.c, TLS1_2_VERSION);
    assert_int_equal(SSL_set_cipher_list(p.c->ssl, "ECDHE-ECDSA-CHACHA20-POLY1305"), 1);
    assert_true(pump(&p));
    assert_int_equal(server_key_type(&p), EVP_PKEY_EC);
    pair_close(&p);

    pt_tls_client_ctx_unref(cc);
    pt_tls_ctx_unref(ctx);
}

static void test_sni_wildcard_and_default(void **state)
{
    (void)state;
    struct pt_tls_ctx *ctx = std_ctx();
    struct pt_tls_client_ctx *cc = client_ctx(P("ca.pem"), true, NULL, NULL);
    struct pt_tls_client_ctx *nv = client_ctx(NULL, false, NULL, NULL);
    struct pair p;

    pair_open(&p, ctx, cc, "x.w.test", NULL);
    assert_true(pump(&p)); /* verified: the wildcard certificate was served */
    assert_int_equal(X509_check_host(server_cert_seen(&p), "x.w.test", 0, 0, NULL), 1);
    pair_close(&p);

    pair_open(&p, ctx, nv, "a.b.w.test", NULL);
    assert_true(pump(&p));
    assert_int_equal(X509_check_host(server_cert_seen(&p), "default.test", 0, 0, NULL), 1);
    assert_false(pt_tls_peer_verified(p.c)); /* verify off: nothing counts as verified */
    pair_close(&p);

    pair_open(&p, ctx, nv, "unknown.test", NULL);
    assert_true(pump(&p));
    assert_int_equal(X509_check_host(server_cert_seen(&p), "default.test", 0, 0, NULL), 1);
    pair_close(&p);

    /* An IP literal is not sent as SNI: the default answers. */
    pair_open(&p, ctx, nv, "127.0.0.1", NULL);
    assert_true(pump(&p));
    assert_null(pt_tls_sni(p.s));
    assert_int_equal(X509_check_host(server_cert_seen(&p), "default.test", 0, 0, NULL), 1);
    pair_close(&p);

    pt_tls_client_ctx_unref(nv);
    pt_tls_client_ctx_unref(cc);
    pt_tls_ctx_unref(ctx);
}

static void test_sni_strict_refuses_unknown_name(void **state)
{
    (void)state;
    struct pt_tls_settings s;
    struct pt_tls_err err;
    std_settings(&s);
    s.strict_sni = true;
    struct pt_tls_ctx *ctx = pt_tls_ctx_new(&s, &err);
    assert_non_null(ctx);
    struct pt_tls_client_ctx *nv = client_ctx(NULL, false, NULL, NULL);
    struct pair p;

    assert_int_equal(pt_tls_ctx_select(ctx, "unknown.test"), -1);
    pair_open(&p, ctx, nv, "unknown.test", NULL);
    assert_false(pump(&p));
    assert_int_equal(p.rs, PT_ERR);
    assert_int_equal(p.rc, PT_ERR);
    assert_true(pt_tls_conn_error(p.s)[0] != '\0');
    assert_non_null(strstr(pt_tls_conn_error(p.c), "unrecognized name"));
    pair_close(&p);

    pair_open(&p, ctx, nv, "a.test", NULL);
    assert_true(pump(&p));
    pair_close(&p);

    pt_tls_client_ctx_unref(nv);
    pt_tls_ctx_unref(ctx);
}

/* ---- protocol, ALPN ---- */

static void test_alpn_http11_and_no_overlap(void **state)
{
    (void)state;
    struct pt_tls_ctx *ctx = std_ctx();
    struct pt_tls_client_ctx *cc = client_ctx(P("ca.pem"), true, NULL, NULL);
    struct pair p;
    size_t len;
    const char *a;

    pair_open(&p, ctx, cc, "a.test", NULL);
    assert_true(pump(&p));
    a = pt_tls_alpn(p.s, &len);
    assert_int_equal(len, 8);
    assert_memory_equal(a, "http/1.1", 8);
    a = pt_tls_alpn(p.c, &len);
    assert_int_equal(len, 8);
    assert_memory_equal(a, "http/1.1", 8);
    pair_close(&p);

    /* No ALPN offered: none chosen, the handshake succeeds. */
    pair_open(&p, ctx, cc, "a.test", NULL);
    assert_int_equal(SSL_set_alpn_protos(p.c->ssl, NULL, 0), 0);
    assert_true(pump(&p));
    assert_null(pt_tls_alpn(p.s, &len));
    assert_int_equal(len, 0);
    pair_close(&p);

    /* Only unknown protocols offered: no_application_protocol (RFC 7301 §3.2). */
    pair_open(&p, ctx, cc, "a.test", NULL);
    static const unsigned char h2[] = "\x02h2";
    assert_int_equal(SSL_set_alpn_protos(p.c->ssl, h2, 3), 0);
    assert_false(pump(&p));
    assert_int_equal(p.rs, PT_ERR);
    assert_non_null(strstr(pt_tls_conn_error(p.c), "no application protocol"));
    pair_close(&p);

    pt_tls_client_ctx_unref(cc);
    pt_tls_ctx_unref(ctx);

    /* Server preference order decides when both are offered. */
    struct pt_tls_settings s;
    struct pt_tls_err err;
    static const char *const srv[] = {"h2", "http/1.1"};
    std_settings(&s);
    s.alpn = srv;
    s.n_alpn = 2;
    ctx = pt_tls_ctx_new(&s, &err);
    assert_non_null(ctx);
    struct pt_tls_client_settings cs;
    static const char *const cli[] = {"http/1.1", "h2"};
    pt_tls_client_settings_init(&cs);
    cs.verify = false;
    cs.alpn = cli;
    cs.n_alpn = 2;
    cc = pt_tls_client_ctx_new(&cs, &err);
    assert_non_null(cc);
    pair_open(&p, ctx, cc, "a.test", NULL);
    assert_true(pump(&p));
    a = pt_tls_alpn(p.s, &len);
    assert_int_equal(len, 2);
    assert_memory_equal(a, "h2", 2);
    pair_close(&p);
    pt_tls_client_ctx_unref(cc);
    pt_tls_ctx_unref(ctx);
}

static void test_tls11_refused(void **state)
{
    (void)state;
    struct pt_tls_ctx *ctx = std_ctx();
    struct pt_tls_client_ctx *nv = client_ctx(NULL, false, NULL, NULL);
    struct pair p;

    pair_open(&p, ctx, nv, "a.test", NULL);
    SSL_set_security_level(p.c->ssl, 0);
    assert_int_equal(SSL_set_min_proto_version(p.c->ssl, TLS1_VERSION), 1);
    set_max(p.c, TLS1_1_VERSION);
    assert_int_equal(SSL_set_cipher_list(p.c->ssl, "ECDHE-RSA-AES128-SHA:@SECLEVEL=0"), 1);
    assert_false(pump(&p));
    assert_int_equal(p.rs, PT_ERR);
    assert_int_equal(p.rc, PT_ERR);
    assert_non_null(strstr(pt_tls_conn_error(p.s), "unsupported protocol"));
    pair_close(&p);
    pt_tls_ctx_unref(ctx);

    /* min_version 1.3 refuses a TLS 1.2 client. */
    struct pt_tls_settings s;
    struct pt_tls_err err;
    std_settings(&s);
    s.min_version = "1.3";
    ctx = pt_tls_ctx_new(&s, &err);
    assert_non_null(ctx);
    pair_open(&p, ctx, nv, "a.test", NULL);
    set_max(p.c, TLS1_2_VERSION);
    assert_false(pump(&p));
    assert_int_equal(p.rs, PT_ERR);
    pair_close(&p);
    pair_open(&p, ctx, nv, "a.test", NULL);
    assert_true(pump(&p));
    assert_string_equal(pt_tls_version(p.s), "TLSv1.3");
    pair_close(&p);
    pt_tls_client_ctx_unref(nv);
    pt_tls_ctx_unref(ctx);
}

/* ---- resumption ---- */

/* A first connection to key, then a second one: returns whether the second resumed. */
static bool resumes(struct pt_tls_ctx *ctx, struct pt_tls_client_ctx *cc, int max_version,
                    const char *key)
{
    struct pair p;
    pair_open(&p, ctx, cc, "a.test", key);
    if (max_version)
        set_max(p.c, max_version);
    assert_true(pump(&p));
    assert_false(pt_tls_is_resumed(p.s));
    exchange(&p);
    pair_close(&p);

    pair_open(&p, ctx, cc, "a.test", key);
    if (max_version)
        set_max(p.c, max_version);
    assert_true(pump(&p));
    bool r = pt_tls_is_resumed(p.s);
    assert_true(r == pt_tls_is_resumed(p.c));
    exchange(&p);
    pair_close(&p);
    return r;
}

static void test_resumption_with_tickets(void **state)
{
    (void)state;
    struct pt_tls_settings s;
    struct pt_tls_err err;
    std_settings(&s);
    s.session_cache_size = 0; /* tickets alone */
    struct pt_tls_ctx *ctx = pt_tls_ctx_new(&s, &err);
    assert_non_null(ctx);
    struct pt_tls_client_ctx *cc = client_ctx(P("ca.pem"), true, NULL, NULL);
    assert_true(resumes(ctx, cc, 0, "t13"));
    assert_true(resumes(ctx, cc, TLS1_2_VERSION, "t12"));
    pt_tls_client_ctx_unref(cc);
    pt_tls_ctx_unref(ctx);
}

static void test_resumption_with_session_cache(void **state)
{
    (void)state;
    struct pt_tls_settings s;
    struct pt_tls_err err;
    std_settings(&s);
    s.session_tickets = false; /* the server-side cache alone */
    struct pt_tls_ctx *ctx = pt_tls_ctx_new(&s, &err);
    assert_non_null(ctx);
    struct pt_tls_client_ctx *cc = client_ctx(P("ca.pem"), true, NULL, NULL);
    assert_true(resumes(ctx, cc, 0, "c13"));
    assert_true(resumes(ctx, cc, TLS1_2_VERSION, "c12"));
    pt_tls_client_ctx_unref(cc);
    pt_tls_ctx_unref(ctx);

    /* Neither: every handshake is full. */
    s.session_cache_size = 0;
    ctx = pt_tls_ctx_new(&s, &err);
    assert_non_null(ctx);
    cc = client_ctx(P("ca.pem"), true, NULL, NULL);
    assert_false(resumes(ctx, cc, 0, "n13"));
    pt_tls_client_ctx_unref(cc);
    pt_tls_ctx_unref(ctx);
}

static void rotation_case(int max_version)
{
    struct pt_tls_settings s;
    struct pt_tls_err err;
    std_settings(&s);
    s.session_cache_size = 0;
    struct pt_tls_ctx *ctx = pt_tls_ctx_new(&s, &err);
    assert_non_null(ctx);
    struct pt_tls_client_ctx *cc = client_ctx(P("ca.pem"), true, NULL, NULL);
    struct pair p;

    pair_open(&p, ctx, cc, "a.test", "x");
    if (max_version)
        set_max(p.c, max_version);
    assert_true(pump(&p));
    exchange(&p);
    pair_close(&p);
    SSL_SESSION *old = pt_tls_session_take(cc, "x"); /* sealed with key 0 */
    assert_non_null(old);
    pt_tls_session_store(cc, "y", old);

    pt_tls_rotate_ticket_keys(ctx); /* key 0 becomes the previous key */
    pair_open(&p, ctx, cc, "a.test", "x");
    if (max_version)
        set_max(p.c, max_version);
    assert_true(pump(&p));
    assert_true(pt_tls_is_resumed(p.s));
    pair_close(&p);

    pt_tls_rotate_ticket_keys(ctx); /* key 0 is gone */
    pair_open(&p, ctx, cc, "a.test", "y");
    if (max_version)
        set_max(p.c, max_version);
    assert_true(pump(&p)); /* a full handshake, not a failure */
    assert_false(pt_tls_is_resumed(p.s));
    pair_close(&p);

    pt_tls_client_ctx_unref(cc);
    pt_tls_ctx_unref(ctx);
}

static void test_tickets_survive_reload_with_inherited_keys(void **state)
{
    (void)state;
    struct pt_tls_settings s;
    struct pt_tls_err err;
    std_settings(&s);
    s.session_cache_size = 0;
    struct pt_tls_ctx *old = pt_tls_ctx_new(&s, &err);
    assert_non_null(old);
    struct pt_tls_client_ctx *cc = client_ctx(P("ca.pem"), true, NULL, NULL);
    struct pair p;
    pair_open(&p, old, cc, "a.test", "r");
    assert_true(pump(&p));
    exchange(&p);
    pair_close(&p);

    struct pt_tls_ctx *fresh = pt_tls_ctx_new(&s, &err); /* a reload */
    assert_non_null(fresh);
    pt_tls_ctx_inherit_ticket_keys(fresh, old);
    pt_tls_ctx_unref(old);
    pair_open(&p, fresh, cc, "a.test", "r");
    assert_true(pump(&p));
    assert_true(pt_tls_is_resumed(p.s));
    pair_close(&p);
    pt_tls_client_ctx_unref(cc);
    pt_tls_ctx_unref(fresh);
}

static void test_ticket_rotation_keeps_previous_key(void **state)
{
    (void)state;
    rotation_case(0);
    rotation_case(TLS1_2_VERSION);
}

/* ---- upstream verification ---- */

static void test_client_verification(void **state)
{
    (void)state;
    struct pt_tls_ctx *ctx = std_ctx();
    struct pt_tls_client_ctx *good = client_ctx(P("ca.pem"), true, NULL, NULL);
    struct pt_tls_client_ctx *wrong_ca = client_ctx(P("ca2.pem"), true, NULL, NULL);
    struct pt_tls_client_ctx *nv = client_ctx(P("ca2.pem"), false, NULL, NULL);
    struct pair p;

    pair_open(&p, ctx, good, "a.test", NULL);
    assert_true(pump(&p));
    assert_true(pt_tls_peer_verified(p.c));
    char subj[128];
    assert_true(pt_tls_peer_subject(p.c, subj, sizeof(subj)) > 0);
    assert_string_equal(subj, "CN=a.test");
    pair_close(&p);

    /* The SNI name falls back to the default certificate, which does not name it. */
    pair_open(&p, ctx, good, "wrong.test", NULL);
    assert_false(pump(&p));
    assert_int_equal(p.rc, PT_ERR);
    assert_string_equal(pt_tls_conn_error(p.c), "certificate verify failed: hostname mismatch");
    pair_close(&p);

    pair_open(&p, ctx, wrong_ca, "a.test", NULL);
    assert_false(pump(&p));
    assert_int_equal(p.rc, PT_ERR);
    assert_non_null(strstr(pt_tls_conn_error(p.c), "certificate verify failed: "));
    assert_null(strstr(pt_tls_conn_error(p.c), "hostname"));
    pair_close(&p);

    /* An IP literal is checked against IP SANs: none here. */
    pair_open(&p, ctx, good, "127.0.0.1", NULL);
    assert_false(pump(&p));
    assert_non_null(strstr(pt_tls_conn_error(p.c), "IP address mismatch"));
    pair_close(&p);

    pair_open(&p, ctx, nv, "a.test", NULL);
    assert_true(pump(&p));
    assert_false(pt_tls_peer_verified(p.c));
    pair_close(&p);

    pt_tls_client_ctx_unref(nv);
    pt_tls_client_ctx_unref(wrong_ca);
    pt_tls_client_ctx_unref(good);
    pt_tls_ctx_unref(ctx);
    assert_int_equal(ERR_peek_error(), 0);
}

/* ---- client certificates ---- */

static struct pt_tls_ctx *mtls_ctx(enum pt_tls_client_auth mode)
{
    struct pt_tls_settings s;
    struct pt_tls_err err;
    std_settings(&s);
    s.client_ca_file = P("ca.pem");
    s.client_auth = mode;
    struct pt_tls_ctx *ctx = pt_tls_ctx_new(&s, &err);
    if (!ctx)
        fail_msg("mtls ctx: %s", err.msg);
    return ctx;
}

static void expect_client_identity(struct pair *p)
{
    char subj[128], fp[65], want[65];
    unsigned char md[32];
    unsigned int mdlen = 0;
    assert_true(pt_tls_peer_verified(p->s));
    assert_int_equal(pt_tls_peer_subject(p->s, subj, sizeof(subj)), 10);
    assert_string_equal(subj, "CN=client1");
    assert_int_equal(pt_tls_peer_fingerprint(p->s, fp), 0);
    assert_int_equal(X509_digest(client_x509, EVP_sha256(), md, &mdlen), 1);
    for (unsigned i = 0; i < 32; i++)
        snprintf(want + 2 * i, 3, "%02x", md[i]);
    assert_string_equal(fp, want);
}

static void test_mtls_required(void **state)
{
    (void)state;
    struct pt_tls_ctx *ctx = mtls_ctx(PT_TLS_CLIENT_AUTH_REQUIRED);
    struct pt_tls_client_ctx *anon = client_ctx(P("ca.pem"), true, NULL, NULL);
    struct pt_tls_client_ctx *id = client_ctx(P("ca.pem"), true, P("client.crt"), P("client.key"));
    struct pair p;
    char buf[8];

    /* Without a certificate: the server refuses (in TLS 1.3 the client learns on its read). */
    pair_open(&p, ctx, anon, "a.test", NULL);
    assert_false(pump(&p));
    assert_int_equal(p.rs, PT_ERR);
    assert_non_null(strstr(pt_tls_conn_error(p.s), "certificate"));
    if (p.rc == PT_OK)
        assert_int_equal(pt_tls_read(p.c, buf, sizeof(buf)), PT_ERR);
    pair_close(&p);

    pair_open(&p, ctx, id, "a.test", NULL);
    assert_true(pump(&p));
    exchange(&p);
    expect_client_identity(&p);
    pair_close(&p);

    /* Resumed sessions keep the client identity. */
    pair_open(&p, ctx, id, "a.test", NULL);
    assert_true(pump(&p));
    assert_true(pt_tls_is_resumed(p.s));
    expect_client_identity(&p);
    pair_close(&p);

    pt_tls_client_ctx_unref(id);
    pt_tls_client_ctx_unref(anon);
    pt_tls_ctx_unref(ctx);
}

static void test_mtls_optional(void **state)
{
    (void)state;
    struct pt_tls_ctx *ctx = mtls_ctx(PT_TLS_CLIENT_AUTH_OPTIONAL);
    struct pt_tls_client_ctx *anon = client_ctx(P("ca.pem"), true, NULL, NULL);
    struct pt_tls_client_ctx *id = client_ctx(P("ca.pem"), true, P("client.crt"), P("client.key"));
    struct pt_tls_client_ctx *bad =
        client_ctx(P("ca.pem"), true, P("client_bad.crt"), P("client_bad.key"));
    struct pair p;
    char subj[64], fp[65];

    pair_open(&p, ctx, anon, "a.test", NULL);
    assert_true(pump(&p));
    exchange(&p);
    assert_false(pt_tls_peer_verified(p.s));
    assert_int_equal(pt_tls_peer_subject(p.s, subj, sizeof(subj)), -1);
    assert_int_equal(pt_tls_peer_fingerprint(p.s, fp), -1);
    pair_close(&p);

    pair_open(&p, ctx, id, "a.test", NULL);
    assert_true(pump(&p));
    exchange(&p);
    expect_client_identity(&p);
    pair_close(&p);

    /* A certificate from an unknown CA is refused even when optional. */
    pair_open(&p, ctx, bad, "a.test", NULL);
    assert_false(pump(&p));
    assert_int_equal(p.rs, PT_ERR);
    assert_non_null(strstr(pt_tls_conn_error(p.s), "certificate verify failed"));
    pair_close(&p);

    pt_tls_client_ctx_unref(bad);
    pt_tls_client_ctx_unref(id);
    pt_tls_client_ctx_unref(anon);
    pt_tls_ctx_unref(ctx);
}

/* ---- hostile or broken peers ---- */

static void test_plain_http_and_garbage_are_errors(void **state)
{
    (void)state;
    struct pt_tls_ctx *ctx = std_ctx();
    struct pair p;
    static const char get[] = "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";

    pair_open(&p, ctx, NULL, NULL, NULL);
    assert_int_equal(write(p.fd[1], get, sizeof(get) - 1), (ssize_t)sizeof(get) - 1);
    assert_int_equal(pt_tls_handshake(p.s), PT_ERR);
    assert_string_equal(pt_tls_conn_error(p.s), "plain HTTP request on a TLS port");
    assert_int_equal(pt_tls_handshake(p.s), PT_ERR); /* stays failed */
    char buf[8];
    assert_int_equal(pt_tls_read(p.s, buf, sizeof(buf)), PT_ERR);
    assert_int_equal(pt_tls_shutdown(p.s), PT_OK); /* nothing to do after a failure */
    pair_close(&p);

    pair_open(&p, ctx, NULL, NULL, NULL);
    unsigned char junk[300];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)(i * 37 + 11);
    junk[0] = 0x16; /* looks like a handshake record, then nonsense */
    assert_int_equal(write(p.fd[1], junk, sizeof(junk)), (ssize_t)sizeof(junk));
    assert_int_equal(pt_tls_handshake(p.s), PT_ERR);
    assert_true(pt_tls_conn_error(p.s)[0] != '\0');
    pair_close(&p);

    /* The peer goes away before finishing. */
    pair_open(&p, ctx, NULL, NULL, NULL);
    assert_int_equal(pt_tls_handshake(p.s), PT_TLS_WANT_READ);
    assert_int_equal(pt_tls_conn_want(p.s), PT_TLS_WANT_READ);
    close(p.fd[1]);
    p.fd[1] = -1;
    assert_int_equal(pt_tls_handshake(p.s), PT_ERR);
    assert_string_equal(pt_tls_conn_error(p.s), "connection closed during the handshake");
    pair_close(&p);

    pt_tls_ctx_unref(ctx);
    assert_int_equal(ERR_peek_error(), 0);
}

/* ---- data transfer ---- */

static unsigned char pattern(size_t i)
{
    return (unsigned char)((i * 7 + (i >> 9)) & 0xff);
}

static void test_writev_coalesces_and_survives_backpressure(void **state)
{
    (void)state;
    struct pt_tls_ctx *ctx = std_ctx();
    struct pt_tls_client_ctx *cc = client_ctx(P("ca.pem"), true, NULL, NULL);
    struct pair p;
    pair_open(&p, ctx, cc, "a.test", NULL);
    assert_true(pump(&p));

    /* Many small pieces go out as one record. */
    struct iovec v[5] = {{"HTTP/1.1 200 OK\r\n", 17},
                         {"Content-Length: 5\r\n", 19},
                         {"\r\n", 2},
                         {"", 0},
                         {"hello", 5}};
    BIO *wb = SSL_get_wbio(p.s->ssl);
    uint64_t before = BIO_number_written(wb);
    assert_int_equal(pt_tls_writev(p.s, v, 5), 43);
    uint64_t wire = BIO_number_written(wb) - before;
    assert_true(wire < 43 + 2 * 30); /* one record's overhead, not five */
    assert_null(p.s->wbuf.data);     /* buffer given back */
    char got[64];
    assert_int_equal(read_some(p.c, got, sizeof(got)), 43);
    assert_memory_equal(got, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 43);

    /* 3 MiB through a socketpair that holds far less: -EAGAIN, then retries with the same
       leading bytes split differently. */
    const size_t total = 3u << 20;
    unsigned char *src = malloc(total), *dst = malloc(total);
    assert_non_null(src);
    assert_non_null(dst);
    for (size_t i = 0; i < total; i++)
        src[i] = pattern(i);
    size_t sent = 0, recvd = 0;
    int again = 0;
    for (int round = 0; round < 100000 && recvd < total; round++) {
        if (sent < total) {
            struct iovec iv[4];
            int n = 0;
            size_t off = sent;
            /* vary the split: a small head, then larger pieces */
            size_t sizes[4] = {(size_t)(round % 97) + 1, 3000, 20000, 70000};
            for (int k = 0; k < 4 && off < total; k++) {
                size_t l = PT_MIN(sizes[k], total - off);
                iv[n].iov_base = src + off;
                iv[n].iov_len = l;
                n++;
                off += l;
            }
            ssize_t w = pt_tls_writev(p.c, iv, n);
            if (w == -EAGAIN) {
                again++;
                assert_int_equal(pt_tls_conn_want(p.c), PT_TLS_WANT_WRITE);
            } else {
                assert_true(w > 0);
                sent += (size_t)w;
            }
        }
        if (round % 8 != 7)
            continue; /* let the socket fill up */
        ssize_t r = pt_tls_read(p.s, dst + recvd, PT_MIN((size_t)65536, total - recvd));
        if (r > 0)
            recvd += (size_t)r;
        else
            assert_int_equal(r, -EAGAIN);
    }
    assert_int_equal(recvd, total);
    assert_true(again > 0);
    assert_memory_equal(src, dst, total);
    assert_null(p.c->wbuf.data);
    free(src);
    free(dst);

    /* A polite close reads as a clean end of stream. */
    assert_int_equal(pt_tls_shutdown(p.c), PT_OK);
    assert_int_equal(pt_tls_read(p.s, got, sizeof(got)), 0);
    assert_true(pt_tls_conn_is_clean_close(p.s));
    pair_close(&p);

    /* A TCP close without close_notify also ends the stream, but not cleanly. */
    pair_open(&p, ctx, cc, "a.test", NULL);
    assert_true(pump(&p));
    exchange(&p);
    close(p.fd[1]);
    p.fd[1] = -1;
    assert_int_equal(pt_tls_read(p.s, got, sizeof(got)), 0);
    assert_false(pt_tls_conn_is_clean_close(p.s));
    assert_int_equal(pt_tls_shutdown(p.s), PT_OK);
    pair_close(&p);

    pt_tls_client_ctx_unref(cc);
    pt_tls_ctx_unref(ctx);
    assert_int_equal(ERR_peek_error(), 0);
}

/* ---- the transport interface (tls_transport.c) ---- */

/* Pumps the handshakes of two TLS transports, bounded. Returns true when both are done. */
static bool pump_transports(struct pt_transport *a, struct pt_transport *b)
{
    int ra = PT_AGAIN, rb = PT_AGAIN;
    for (int i = 0; i < 200 && (ra == PT_AGAIN || rb == PT_AGAIN); i++) {
        if (ra == PT_AGAIN)
            ra = pt_transport_handshake(a);
        if (rb == PT_AGAIN)
            rb = pt_transport_handshake(b);
    }
    return ra == PT_OK && rb == PT_OK;
}

/* Both roles over one socketpair: handshake, the head + slice writev, EAGAIN bookkeeping, a
   file range sent record by record through a full socket, and close_notify. */
static void test_transport_server_and_client_roles(void **state)
{
    (void)state;
    struct pt_tls_ctx *ctx = std_ctx();
    struct pt_tls_client_ctx *cc = client_ctx(P("ca.pem"), true, NULL, NULL);
    int fd[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd), 0);
    struct pt_transport ts, tc;
    assert_int_equal(pt_tls_transport_server_init(&ts, ctx, fd[0]), 0);
    assert_int_equal(pt_tls_transport_client_init(&tc, cc, fd[1], "a.test", NULL), 0);
    assert_true(ts.is_handshaking && ts.can_read && ts.can_write);
    assert_true(tc.is_handshaking && !tc.can_read && tc.can_write);
    assert_true(pt_transport_is_secure(&ts));
    assert_string_equal(tc.ops->name, "TLS");
    assert_true(pump_transports(&ts, &tc));
    assert_false(ts.is_handshaking);
    assert_false(tc.is_handshaking);
    assert_non_null(pt_transport_tls(&ts));
    assert_string_equal(pt_tls_sni(pt_transport_tls(&ts)), "a.test");
    assert_string_equal(pt_tls_sni(pt_transport_tls(&tc)), "a.test");
    assert_true(pt_tls_peer_verified(pt_transport_tls(&tc)));

    /* Nothing to read: EAGAIN clears can_read and waits for readability. */
    char buf[64];
    tc.can_read = true;
    assert_int_equal(pt_transport_read(&tc, buf, sizeof(buf)), -EAGAIN);
    assert_false(tc.can_read);
    assert_false(tc.read_wants_write);

    /* A response head and its body slice. */
    struct iovec v[2] = {{"HTTP/1.1 200 OK\r\n\r\n", 19}, {"hello", 5}};
    assert_int_equal(pt_transport_writev(&ts, v, 2, true), 24);
    pt_transport_events(&tc, EPOLLIN);
    assert_int_equal(pt_transport_read(&tc, buf, sizeof(buf)), 24); /* one record */
    assert_true(tc.can_read); /* a TLS read stops only at EAGAIN */
    assert_memory_equal(buf, "HTTP/1.1 200 OK\r\n\r\nhello", 24);

    /* A file range larger than the socket holds: EAGAIN, then again from the same offset. */
    const size_t total = 1u << 20;
    char path[] = "/tmp/pt_tls_transport_XXXXXX";
    int ffd = mkstemp(path);
    assert_true(ffd >= 0);
    unlink(path);
    unsigned char *src = malloc(total);
    char *dst = malloc(total);
    assert_non_null(src);
    assert_non_null(dst);
    for (size_t i = 0; i < total; i++)
        src[i] = pattern(i);
    assert_int_equal(write(ffd, src, total), (ssize_t)total);
    uint64_t off = 100;
    size_t recvd = 0;
    int again = 0;
    for (int round = 0; round < 100000 && recvd < total - 100; round++) {
        if (off < total) {
            ssize_t n = pt_transport_send_file(&ts, ffd, off, total - off);
            if (n == -EAGAIN) {
                again++;
                assert_false(ts.can_write);
            } else {
                assert_true(n > 0);
                off += (uint64_t)n;
            }
        }
        if (round % 8 != 7)
            continue; /* let the socket fill up */
        recvd += read_some(pt_transport_tls(&tc), dst + recvd, total - recvd);
        pt_transport_events(&ts, EPOLLOUT);
    }
    assert_int_equal(recvd, total - 100);
    assert_true(again > 0);
    assert_memory_equal(src + 100, dst, total - 100);

    /* A range past the end of the file: what is there goes, then -EIO. */
    assert_int_equal(pt_transport_send_file(&ts, ffd, total - 10, 20), 10);
    assert_int_equal(pt_transport_send_file(&ts, ffd, total, 10), -EIO);
    assert_int_equal(read_some(pt_transport_tls(&tc), dst, total), 10);
    close(ffd);
    free(src);
    free(dst);

    /* close_notify: a clean end of stream on the other side. */
    pt_transport_shutdown(&ts, false);
    tc.can_read = true;
    assert_int_equal(pt_transport_read(&tc, buf, sizeof(buf)), 0);
    assert_true(pt_tls_conn_is_clean_close(pt_transport_tls(&tc)));

    pt_transport_free(&ts);
    pt_transport_free(&tc);
    pt_transport_free(&tc); /* twice is harmless */
    close(fd[0]);
    close(fd[1]);
    pt_tls_client_ctx_unref(cc);
    pt_tls_ctx_unref(ctx);
    assert_int_equal(ERR_peek_error(), 0);
}

/* A failed handshake says PT_ERR with the reason; the transport can still be freed. */
static void test_transport_handshake_failure_has_a_reason(void **state)
{
    (void)state;
    struct pt_tls_ctx *ctx = std_ctx();
    int fd[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd), 0);
    struct pt_transport ts;
    assert_int_equal(pt_tls_transport_server_init(&ts, ctx, fd[0]), 0);
    assert_int_equal(pt_transport_handshake(&ts), PT_AGAIN);
    assert_false(ts.can_read);
    assert_int_equal(write(fd[1], "GET / HTTP/1.1\r\n\r\n", 18), 18);
    assert_int_equal(pt_transport_handshake(&ts), PT_ERR);
    assert_string_equal(pt_transport_error(&ts), "plain HTTP request on a TLS port");
    pt_transport_shutdown(&ts, false); /* nothing may follow a fatal error: no alert, no crash */
    pt_transport_free(&ts);
    close(fd[0]);
    close(fd[1]);
    pt_tls_ctx_unref(ctx);
    assert_int_equal(ERR_peek_error(), 0);
}

static X509 *read_first_cert(const char *file)
{
    FILE *f = fopen(file, "r");
    assert_non_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    return x;
}

/* OCSP stapling policy (tls_ocsp.c): staple only inside [thisUpdate, nextUpdate), refresh at
   half the validity but never within a minute, back off 5 s doubling to 1 h. */
static void test_ocsp_validity_refresh_and_backoff(void **state)
{
    (void)state;
    const time_t t = 1700000000, n = t + 7 * 86400;
    assert_false(pt_tls_ocsp_is_valid(t, n, t - 1)); /* not yet valid */
    assert_true(pt_tls_ocsp_is_valid(t, n, t));
    assert_true(pt_tls_ocsp_is_valid(t, n, n - 1));
    assert_false(pt_tls_ocsp_is_valid(t, n, n)); /* expired at nextUpdate */
    assert_false(pt_tls_ocsp_is_valid(t, n, n + 3600));

    assert_int_equal(pt_tls_ocsp_refresh_at(t, n, t), t + (n - t) / 2);
    assert_int_equal(pt_tls_ocsp_refresh_at(t, n, t + 10), t + (n - t) / 2);
    /* fetched late (the responder served an old response): still at least a minute away */
    assert_int_equal(pt_tls_ocsp_refresh_at(t, n, n - 100), n - 100 + 60);
    /* a 10-minute response fetched at once: refresh after 5 minutes */
    assert_int_equal(pt_tls_ocsp_refresh_at(t, t + 600, t), t + 300);
    /* a very short one: not hammered */
    assert_int_equal(pt_tls_ocsp_refresh_at(t, t + 30, t), t + 60);

    uint32_t b = pt_tls_ocsp_backoff(0);
    assert_int_equal(b, 5);
    assert_int_equal(b = pt_tls_ocsp_backoff(b), 10);
    for (int i = 0; i < 20; i++)
        b = pt_tls_ocsp_backoff(b);
    assert_int_equal(b, 3600);
    assert_int_equal(pt_tls_ocsp_backoff(3600), 3600);
}

/* Responses that must never be stapled are refused with a reason, the queue left empty. */
static void test_ocsp_check_refuses_garbage(void **state)
{
    (void)state;
    X509 *leaf = read_first_cert(path("a_rsa.crt"));
    X509 *ca = read_first_cert(path("ca.pem"));
    assert_non_null(leaf);
    assert_non_null(ca);
    time_t tu = 0, nu = 0;
    char why[256] = "";
    const unsigned char junk[] = {0x30, 0x03, 0x0a, 0x01, 0x00};
    assert_int_equal(pt_tls_ocsp_check(leaf, ca, junk, 3, &tu, &nu, why, sizeof(why)), -1);
    assert_string_equal(why, "not an OCSP response");
    /* OCSPResponse { responseStatus tryLater(3) } */
    const unsigned char later[] = {0x30, 0x03, 0x0a, 0x01, 0x03};
    assert_int_equal(pt_tls_ocsp_check(leaf, ca, later, sizeof(later), &tu, &nu, why, sizeof(why)),
                     -1);
    assert_non_null(strstr(why, "trylater"));
    /* the test certificates name no responder: nothing to register */
    assert_null(pt_tls_ocsp_register(leaf, NULL));
    assert_int_equal(ERR_peek_error(), 0);
    X509_free(leaf);
    X509_free(ca);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ctx_select_by_name),
        cmocka_unit_test(test_ctx_errors_name_the_file),
        cmocka_unit_test(test_sni_exact_rsa_and_ecdsa),
        cmocka_unit_test(test_sni_wildcard_and_default),
        cmocka_unit_test(test_sni_strict_refuses_unknown_name),
        cmocka_unit_test(test_alpn_http11_and_no_overlap),
        cmocka_unit_test(test_tls11_refused),
        cmocka_unit_test(test_resumption_with_tickets),
        cmocka_unit_test(test_resumption_with_session_cache),
        cmocka_unit_test(test_ticket_rotation_keeps_previous_key),
        cmocka_unit_test(test_tickets_survive_reload_with_inherited_keys),
        cmocka_unit_test(test_client_verification),
        cmocka_unit_test(test_mtls_required),
        cmocka_unit_test(test_mtls_optional),
        cmocka_unit_test(test_plain_http_and_garbage_are_errors),
        cmocka_unit_test(test_writev_coalesces_and_survives_backpressure),
        cmocka_unit_test(test_transport_server_and_client_roles),
        cmocka_unit_test(test_transport_handshake_failure_has_a_reason),
        cmocka_unit_test(test_ocsp_validity_refresh_and_backoff),
        cmocka_unit_test(test_ocsp_check_refuses_garbage),
    };
    return cmocka_run_group_tests(tests, setup_certs, teardown_certs);
}
