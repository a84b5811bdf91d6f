/*
 * tls_client.c - client TLS contexts for https upstreams, and their session store.
 *
 * One struct pt_tls_client_ctx per upstream configuration: trust anchors (a CA file or the
 * system store), whether to verify, an optional client certificate for mTLS, the ALPN offer.
 * It is shared by every worker thread; only the session store changes after building.
 *
 * Session reuse: OpenSSL hands each new session to a callback (TLS 1.2 after the handshake,
 * TLS 1.3 when a NewSessionTicket arrives, i.e. during a later read). The callback keeps the
 * last session per target key ("host:port") in a small open-addressed table of
 * PT_TLS_SESSION_SLOTS slots under one mutex; a new connection to the same target takes a
 * reference on it and offers it. Contention is low (one lock hold per new upstream connection
 * and per ticket received) and the table is bounded: a full probe window overwrites its first
 * slot, which only costs a full handshake later. OpenSSL's own client cache is not used: it is
 * keyed by session id, not by target.
 *
 * Host checks: the host is sent as SNI unless it is an IP literal (RFC 6066 §3 forbids IP
 * addresses in SNI) and checked against the certificate's DNS names or IP addresses with
 * OpenSSL's RFC 6125 matcher (no partial wildcards).
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls/tls_internal.h"

void pt_tls_client_settings_init(struct pt_tls_client_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->verify = true;
    s->min_version = "1.2";
}

static uint32_t hash_key(const char *k)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 16777619u;
    return h;
}

void pt_tls_session_store(struct pt_tls_client_ctx *cc, const char *key, SSL_SESSION *sess)
{
    uint32_t h = hash_key(key);
    struct pt_tls_session_slot *victim = NULL;
    SSL_SESSION *old = NULL;
    char *kcopy = NULL;

    pthread_mutex_lock(&cc->lock);
    for (uint32_t i = 0; i < PT_TLS_SESSION_PROBE; i++) {
        struct pt_tls_session_slot *sl = &cc->slots[(h + i) % PT_TLS_SESSION_SLOTS];
        if (sl->key && strcmp(sl->key, key) == 0) {
            victim = sl;
            break;
        }
        if (!sl->key && !victim)
            victim = sl;
    }
    if (!victim)
        victim = &cc->slots[h % PT_TLS_SESSION_SLOTS];
    if (victim->key && strcmp(victim->key, key) != 0) {
        kcopy = victim->key; /* evicted: freed outside the lock */
        victim->key = NULL;
    }
    if (!victim->key)
        victim->key = strdup(key);
    bool stored = victim->key != NULL;
    old = victim->sess;
    victim->sess = stored ? sess : NULL;
    pthread_mutex_unlock(&cc->lock);
    if (!stored)
        SSL_SESSION_free(sess); /* out of memory: just forget the session */
    SSL_SESSION_free(old);
    free(kcopy);
}

SSL_SESSION *pt_tls_session_take(struct pt_tls_client_ctx *cc, const char *key)
{
    uint32_t h = hash_key(key);
    SSL_SESSION *s = NULL;
    pthread_mutex_lock(&cc->lock);
    for (uint32_t i = 0; i < PT_TLS_SESSION_PROBE; i++) {
        struct pt_tls_session_slot *sl = &cc->slots[(h + i) % PT_TLS_SESSION_SLOTS];
        if (sl->key && strcmp(sl->key, key) == 0) {
            s = sl->sess;
            if (s && (!SSL_SESSION_is_resumable(s) || !SSL_SESSION_up_ref(s)))
                s = NULL;
            break;
        }
    }
    pthread_mutex_unlock(&cc->lock);
    return s;
}

/* OpenSSL's new-session callback. A copy is stored, not the connection's own object: OpenSSL
   marks the connection's session not resumable when that connection later dies with a fatal
   alert (a backend closing a pooled connection without close_notify, say), which must not
   spoil the session kept for the next connection. Returns 0: OpenSSL keeps its reference. */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    struct pt_tls_conn *c = SSL_get_app_data(ssl);
    if (!c || !c->cc || !c->session_key || !SSL_SESSION_is_resumable(sess))
        return 0;
    SSL_SESSION *copy = SSL_SESSION_dup(sess);
    if (copy)
        pt_tls_session_store(c->cc, c->session_key, copy);
    return 0;
}

struct pt_tls_client_ctx *pt_tls_client_ctx_new(const struct pt_tls_client_settings *s,
                                                struct pt_tls_err *err)
{
    X509 *leaf = NULL;
    STACK_OF(X509) *chain = NULL;
    EVP_PKEY *key = NULL;
    unsigned char *alpn = NULL;
    size_t alpn_len = 0;

    if (err) {
        err->key = NULL;
        err->index = -1;
        err->msg[0] = '\0';
    }
    int min_version = pt_tls_parse_version(s->min_version);
    if (!min_version) {
        pt_tls_set_err(err, "min_version", -1,
                       "min_version \"%s\" is not supported: use \"1.2\" or \"1.3\"",
                       s->min_version);
        return NULL;
    }
    struct pt_tls_client_ctx *cc = calloc(1, sizeof(*cc));
    if (!cc) {
        pt_tls_set_err(err, NULL, -1, "out of memory");
        return NULL;
    }
    atomic_init(&cc->refs, 1);
    pthread_mutex_init(&cc->lock, NULL);
    cc->verify = s->verify;
    cc->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (!cc->ssl_ctx) {
        pt_tls_set_err(err, NULL, -1, "cannot create a TLS context: %s", pt_tls_ssl_reason());
        goto fail;
    }
    if (pt_tls_ssl_ctx_common(cc->ssl_ctx, min_version, NULL, NULL, err) < 0)
        goto fail;
    if (s->verify) {
        if (s->ca_file && *s->ca_file) {
            if (!SSL_CTX_load_verify_locations(cc->ssl_ctx, s->ca_file, NULL)) {
                pt_tls_set_err(err, "ca_file", -1, "%s: cannot load CA certificates (%s)",
                               s->ca_file, pt_tls_ssl_reason());
                goto fail;
            }
        } else if (!SSL_CTX_set_default_verify_paths(cc->ssl_ctx)) {
            pt_tls_set_err(err, "ca_file", -1, "cannot load the system CA store (%s)",
                           pt_tls_ssl_reason());
            goto fail;
        }
        SSL_CTX_set_verify(cc->ssl_ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(cc->ssl_ctx, SSL_VERIFY_NONE, NULL);
    }
    if ((s->cert_file && *s->cert_file) || (s->key_file && *s->key_file)) {
        if (pt_tls_load_pair(s->cert_file, s->key_file, "cert_file", -1, &leaf, &chain, &key, err) <
            0)
            goto fail;
        if (SSL_CTX_use_cert_and_key(cc->ssl_ctx, leaf, key, chain, 1) != 1) {
            pt_tls_set_err(err, "cert_file", -1, "%s: certificate refused: %s", s->cert_file,
                           pt_tls_ssl_reason());
            goto fail;
        }
    }
    if (pt_tls_alpn_wire(s->alpn, s->n_alpn, &alpn, &alpn_len, err) < 0)
        goto fail;
    if (SSL_CTX_set_alpn_protos(cc->ssl_ctx, alpn, (unsigned)alpn_len) != 0) { /* 0 is success */
        pt_tls_set_err(err, "alpn", -1, "cannot set ALPN: %s", pt_tls_ssl_reason());
        goto fail;
    }
    SSL_CTX_set_session_cache_mode(cc->ssl_ctx,
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(cc->ssl_ctx, new_session_cb);
    free(alpn);
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
    return cc;
fail:
    ERR_clear_error();
    free(alpn);
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
    pt_tls_client_ctx_unref(cc);
    return NULL;
}

void pt_tls_client_ctx_ref(struct pt_tls_client_ctx *cc)
{
    atomic_fetch_add_explicit(&cc->refs, 1, memory_order_relaxed);
}

void pt_tls_client_ctx_unref(struct pt_tls_client_ctx *cc)
{
    if (!cc || atomic_fetch_sub_explicit(&cc->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < PT_TLS_SESSION_SLOTS; i++) {
        free(cc->slots[i].key);
        SSL_SESSION_free(cc->slots[i].sess);
    }
    SSL_CTX_free(cc->ssl_ctx);
    pthread_mutex_destroy(&cc->lock);
    free(cc);
}

/* Strips [] from an IPv6 literal into out; returns whether host is an IP literal. */
static bool ip_literal(const char *host, char *out, size_t outlen)
{
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    if (n >= outlen)
        return false;
    memcpy(out, host, n);
    out[n] = '\0';
    unsigned char bin[16];
    return inet_pton(AF_INET, out, bin) == 1 || inet_pton(AF_INET6, out, bin) == 1;
}

struct pt_tls_conn *pt_tls_client_new(struct pt_tls_client_ctx *cc, int fd, const char *host,
                                      const char *session_key)
{
    if (!host || !*host)
        return NULL;
    struct pt_tls_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    pt_tls_client_ctx_ref(cc);
    c->cc = cc;
    c->want = PT_TLS_WANT_READ;
    c->host = strdup(host);
    c->session_key = strdup(session_key ? session_key : host);
    c->ssl = SSL_new(cc->ssl_ctx);
    if (!c->host || !c->session_key || !c->ssl || !SSL_set_fd(c->ssl, fd))
        goto fail;
    SSL_set_app_data(c->ssl, c);
    SSL_set_connect_state(c->ssl);

    char ip[64];
    bool is_ip = ip_literal(host, ip, sizeof(ip));
    if (!is_ip && !SSL_set_tlsext_host_name(c->ssl, host))
        goto fail;
    if (cc->verify) {
        if (is_ip) {
            if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), ip))
                goto fail;
        } else {
            SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            if (!SSL_set1_host(c->ssl, host))
                goto fail;
        }
    }
    SSL_SESSION *sess = pt_tls_session_take(cc, c->session_key);
    if (sess) {
        SSL_set_session(c->ssl, sess); /* takes its own reference */
        SSL_SESSION_free(sess);
    }
    return c;
fail:
    ERR_clear_error();
    pt_tls_free(c);
    return NULL;
}
