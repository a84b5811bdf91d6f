/*
 * tls_ctx.c - server TLS contexts: certificates, SNI selection, ALPN, session resumption.
 *
 * A struct pt_tls_ctx is built once by the main thread from struct pt_tls_settings and then
 * only read (except its ticket keys), so every worker thread shares it without locks.
 *
 * SNI. OpenSSL holds one certificate per key type in an SSL_CTX and picks among them by what
 * the client supports (signature algorithms, cipher suites). So certificates are grouped by
 * their name set: an RSA and an ECDSA certificate for the same names land in one group (one
 * SSL_CTX) and OpenSSL chooses between them; any other certificate gets a group of its own.
 * Names come from the DNS entries of subjectAltName, or the subject CN when there is none
 * (RFC 6125 §6.4.4). Two sorted tables map names to groups: exact names, then "*." wildcards
 * stored as the suffix after "*." and matched against the SNI name minus its first label, so a
 * wildcard covers exactly one label (RFC 6125 §6.4.3). Anything else gets groups[0], the group
 * of the first certificate, unless strict_sni refuses it with unrecognized_name. The switch
 * happens in the servername callback with SSL_set_SSL_CTX; connections are created on
 * groups[0], so that SSL_CTX is the "session context" whose ticket callback and session cache
 * OpenSSL uses. Every group is configured identically (protocols, ciphers, ALPN, client CA,
 * session id context) because OpenSSL reads some of these from the switched-to context and
 * some from the original one.
 *
 * ALPN: server preference order over the configured list. A client that offers ALPN but none
 * of our protocols is refused with no_application_protocol, as RFC 7301 §3.2 requires (the
 * alternative, answering without ALPN, would let an h2-only client speak HTTP/1.1 by mistake).
 * A client that offers no ALPN at all gets none and speaks HTTP/1.1.
 *
 * Resumption: stateless tickets sealed with keys held here, the same for every thread, so a
 * ticket issued by one worker resumes on another. pt_tls_rotate_ticket_keys() makes a new key
 * current and keeps the previous one for opening only; a ticket opened with the previous key
 * is renewed under the current one. The session lifetime equals the rotation period, so a
 * ticket never outlives both keys able to open it. Beside tickets, OpenSSL's internal server
 * session cache (locked inside OpenSSL) serves session-id resumption in TLS 1.2 and stateful
 * tickets in TLS 1.3 when tickets are off.
 *
 * Rejected: one SSL_CTX with all certificates and a client-hello callback calling
 * SSL_use_certificate per connection (copies the certificate chain into every connection);
 * per-worker ticket keys (a client landing on another worker could not resume).
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "tls/acme_internal.h"
#include "tls/tls_internal.h"

#define DEFAULT_ROTATION_MS (3600u * 1000u)
#define DEFAULT_CACHE_SIZE 20480u
#define MAX_NAME 253

/* Forward-secret AEAD only (ECDHE with AES-GCM or ChaCha20-Poly1305), ECDSA first. */
static const char default_ciphers[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                      "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                      "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
static const unsigned char sid_ctx[] = "portico";
static char digest_sha256[] = "SHA256";

enum { KT_RSA = 1, KT_EC = 2, KT_ED25519 = 4, KT_ED448 = 8, KT_RSA_PSS = 16, KT_OTHER = 32 };

void pt_tls_set_err(struct pt_tls_err *err, const char *key, int index, const char *fmt, ...)
{
    if (!err)
        return;
    err->key = key;
    err->index = index;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

const char *pt_tls_ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r ? r : "unknown error";
}

int pt_tls_parse_version(const char *v)
{
    if (!v || strcmp(v, "1.2") == 0)
        return TLS1_2_VERSION;
    if (strcmp(v, "1.3") == 0)
        return TLS1_3_VERSION;
    return 0;
}

int pt_tls_alpn_wire(const char *const *alpn, size_t n, unsigned char **out, size_t *out_len,
                     struct pt_tls_err *err)
{
    static const char *const dflt[] = {"http/1.1"};
    if (!alpn || n == 0) {
        alpn = dflt;
        n = 1;
    }
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = alpn[i] ? strlen(alpn[i]) : 0;
        if (l == 0 || l > 255) {
            pt_tls_set_err(err, "alpn", -1, "ALPN protocol names are 1 to 255 bytes");
            return -1;
        }
        total += 1 + l;
    }
    if (total > 65535) {
        pt_tls_set_err(err, "alpn", -1, "ALPN list too long");
        return -1;
    }
    unsigned char *w = malloc(total);
    if (!w) {
        pt_tls_set_err(err, "alpn", -1, "out of memory");
        return -1;
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(alpn[i]);
        w[off++] = (unsigned char)l;
        memcpy(w + off, alpn[i], l);
        off += l;
    }
    *out = w;
    *out_len = total;
    return 0;
}

/* Never prompts: an encrypted key is an error, not a terminal read. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static BIO *open_file(const char *file, const char *err_key, int index, struct pt_tls_err *err)
{
    errno = 0;
    BIO *b = BIO_new_file(file, "r");
    if (!b) {
        char eb[128];
        const char *why = errno ? strerror_r(errno, eb, sizeof(eb)) : pt_tls_ssl_reason();
        ERR_clear_error();
        pt_tls_set_err(err, err_key, index, "%s: cannot open: %s", file, why);
    }
    return b;
}

int pt_tls_load_pair(const char *cert_file, const char *key_file, const char *err_key, int index,
                     X509 **leaf, STACK_OF(X509) * *chain, EVP_PKEY **key, struct pt_tls_err *err)
{
    X509 *x = NULL;
    STACK_OF(X509) *ch = NULL;
    EVP_PKEY *k = NULL;
    BIO *b = NULL;

    if (!cert_file || !*cert_file || !key_file || !*key_file) {
        pt_tls_set_err(err, err_key, index, "a certificate needs both cert and key files");
        goto fail;
    }
    b = open_file(cert_file, err_key, index, err);
    if (!b)
        goto fail;
    x = PEM_read_bio_X509(b, NULL, no_password, NULL);
    if (!x) {
        pt_tls_set_err(err, err_key, index, "%s: no PEM certificate found (%s)", cert_file,
                       pt_tls_ssl_reason());
        goto fail;
    }
    ch = sk_X509_new_null();
    if (!ch)
        goto oom;
    for (;;) {
        X509 *c = PEM_read_bio_X509(b, NULL, no_password, NULL);
        if (!c)
            break;
        if (!sk_X509_push(ch, c)) {
            X509_free(c);
            goto oom;
        }
    }
    unsigned long e = ERR_peek_last_error();
    if (e && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
        pt_tls_set_err(err, err_key, index, "%s: bad certificate in chain (%s)", cert_file,
                       pt_tls_ssl_reason());
        goto fail;
    }
    ERR_clear_error();
    BIO_free(b);

    b = open_file(key_file, err_key, index, err);
    if (!b)
        goto fail;
    k = PEM_read_bio_PrivateKey(b, NULL, no_password, NULL);
    if (!k) {
        pt_tls_set_err(err, err_key, index,
                       "%s: no usable PEM private key found (%s; encrypted keys are not supported)",
                       key_file, pt_tls_ssl_reason());
        goto fail;
    }
    if (X509_check_private_key(x, k) != 1) {
        ERR_clear_error();
        pt_tls_set_err(err, err_key, index, "%s: key does not match certificate %s", key_file,
                       cert_file);
        goto fail;
    }
    BIO_free(b);
    *leaf = x;
    *chain = ch;
    *key = k;
    return 0;

oom:
    pt_tls_set_err(err, err_key, index, "%s: out of memory", cert_file);
fail:
    ERR_clear_error();
    BIO_free(b);
    X509_free(x);
    sk_X509_pop_free(ch, X509_free);
    EVP_PKEY_free(k);
    return -1;
}

/* Records a received close_notify alert on the connection (see pt_tls_ssl_ctx_common). */
static void info_cb(const SSL *s, int where, int ret)
{
    if (!(where & SSL_CB_READ_ALERT) || (ret & 0xff) != SSL_AD_CLOSE_NOTIFY)
        return;
    struct pt_tls_conn *c = SSL_get_app_data(s);
    if (c)
        c->got_close_notify = true;
}

int pt_tls_ssl_ctx_common(SSL_CTX *sc, int min_version, const char *ciphers,
                          const char *ciphersuites, struct pt_tls_err *err)
{
    if (!SSL_CTX_set_min_proto_version(sc, min_version) ||
        !SSL_CTX_set_max_proto_version(sc, TLS1_3_VERSION)) {
        pt_tls_set_err(err, "min_version", -1, "cannot set protocol versions: %s",
                       pt_tls_ssl_reason());
        return -1;
    }
    /* No renegotiation (a CPU-exhaustion vector), no compression (CRIME). */
    /* SSL_OP_IGNORE_UNEXPECTED_EOF: most HTTP clients close without close_notify. OpenSSL 3
       otherwise treats that as a fatal error and drops the session from the cache, so cache
       resumption (tickets off) failed for them; HTTP framing, not TLS, detects truncation. */
    SSL_CTX_set_options(sc, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA |
                                SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* With that option OpenSSL reports a bare TCP close like a close_notify (both set
       SSL_RECEIVED_SHUTDOWN), so the alert itself is watched for: pt_tls_conn_is_clean_close. */
    SSL_CTX_set_info_callback(sc, info_cb);
    /* Partial writes and moving buffers make SSL_write behave like write(2) over our
       coalescing buffer; idle connections give their 2 x ~17 KiB record buffers back. */
    SSL_CTX_set_mode(sc, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                             SSL_MODE_RELEASE_BUFFERS);
    if (!SSL_CTX_set_cipher_list(sc, ciphers ? ciphers : default_ciphers)) {
        pt_tls_set_err(err, "ciphers", -1, "no usable cipher in \"%s\"",
                       ciphers ? ciphers : default_ciphers);
        ERR_clear_error();
        return -1;
    }
    if (ciphersuites && !SSL_CTX_set_ciphersuites(sc, ciphersuites)) {
        pt_tls_set_err(err, "ciphersuites", -1, "no usable TLS 1.3 cipher suite in \"%s\"",
                       ciphersuites);
        ERR_clear_error();
        return -1;
    }
    return 0;
}

/* ---- names ---- */

static bool valid_dns_name(const unsigned char *p, size_t n)
{
    if (n == 0 || n > MAX_NAME)
        return false;
    for (size_t i = 0; i < n; i++)
        if (p[i] <= ' ' || p[i] >= 0x7f)
            return false;
    return true;
}

static char *lower_dup(const unsigned char *p, size_t n)
{
    if (n > 0 && p[n - 1] == '.')
        n--;
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++)
        s[i] = (char)tolower(p[i]);
    s[n] = '\0';
    return s;
}

static int add_name(char ***names, size_t *n, const unsigned char *p, size_t len)
{
    if (!valid_dns_name(p, len))
        return 0; /* not a host name: never matched by SNI */
    char **nn = realloc(*names, (*n + 1) * sizeof(*nn));
    if (!nn)
        return -1;
    *names = nn;
    nn[*n] = lower_dup(p, len);
    if (!nn[*n])
        return -1;
    (*n)++;
    return 0;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The DNS names of x: subjectAltName DNS entries, or the CN when there are none. */
static int cert_names(X509 *x, char ***out, size_t *out_n)
{
    char **names = NULL;
    size_t n = 0;
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type != GEN_DNS)
            continue;
        const ASN1_STRING *s = g->d.dNSName;
        if (add_name(&names, &n, ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s)) < 0)
            goto fail;
    }
    GENERAL_NAMES_free(sans);
    sans = NULL;
    if (n == 0) {
        const X509_NAME *subj = X509_get_subject_name(x);
        int idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
        if (idx >= 0) {
            const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
            if (add_name(&names, &n, ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s)) < 0)
                goto fail;
        }
    }
    *out = names;
    *out_n = n;
    return 0;
fail:
    GENERAL_NAMES_free(sans);
    free_names(names, n);
    return -1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_name(const void *a, const void *b)
{
    const struct pt_tls_name *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    return x->group < y->group ? -1 : x->group > y->group;
}

/* Sorted names joined by '\n' (names is sorted in place). */
static char *names_key(char **names, size_t n)
{
    qsort(names, n, sizeof(*names), cmp_str);
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(names[i]) + 1;
    char *k = malloc(len);
    if (!k)
        return NULL;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        memcpy(k + off, names[i], l);
        off += l;
        k[off++] = '\n';
    }
    k[off] = '\0';
    return k;
}

static unsigned key_type(const EVP_PKEY *k)
{
    switch (EVP_PKEY_get_base_id(k)) {
    case EVP_PKEY_RSA:
        return KT_RSA;
    case EVP_PKEY_EC:
        return KT_EC;
    case EVP_PKEY_ED25519:
        return KT_ED25519;
    case EVP_PKEY_ED448:
        return KT_ED448;
    case EVP_PKEY_RSA_PSS:
        return KT_RSA_PSS;
    default:
        return KT_OTHER;
    }
}

static int add_table(struct pt_tls_name **tab, size_t *n, const char *name, uint32_t group)
{
    struct pt_tls_name *t = realloc(*tab, (*n + 1) * sizeof(*t));
    if (!t)
        return -1;
    *tab = t;
    t[*n].name = strdup(name);
    if (!t[*n].name)
        return -1;
    t[*n].group = group;
    (*n)++;
    return 0;
}

/* Sorts a table and drops later duplicates (the earlier certificate keeps the name). */
static void finish_table(struct pt_tls_name *t, size_t *n)
{
    if (*n == 0)
        return; /* no table at all (e.g. no wildcard names): nothing to sort */
    qsort(t, *n, sizeof(*t), cmp_name);
    size_t w = 0;
    for (size_t i = 0; i < *n; i++) {
        if (w > 0 && strcmp(t[w - 1].name, t[i].name) == 0) {
            free(t[i].name);
            continue;
        }
        t[w++] = t[i];
    }
    *n = w;
}

static const struct pt_tls_name *find_name(const struct pt_tls_name *t, size_t n, const char *s)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s, t[mid].name);
        if (c == 0)
            return &t[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Group index for SNI name host (NULL: none), or -1 when strict SNI refuses it. */
static int select_group(const struct pt_tls_ctx *ctx, const char *host)
{
    if (!host || !*host)
        return 0;
    char low[MAX_NAME + 2];
    size_t n = strlen(host);
    if (n > 0 && host[n - 1] == '.')
        n--;
    if (n == 0 || n > MAX_NAME)
        return ctx->strict_sni ? -1 : 0;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)tolower((unsigned char)host[i]);
    low[n] = '\0';
    const struct pt_tls_name *e = find_name(ctx->exact, ctx->n_exact, low);
    if (e)
        return (int)e->group;
    const char *dot = memchr(low, '.', n);
    if (dot && dot > low && dot[1] != '\0') {
        e = find_name(ctx->wild, ctx->n_wild, dot + 1);
        if (e)
            return (int)e->group;
    }
    return ctx->strict_sni ? -1 : 0;
}

int pt_tls_ctx_select(const struct pt_tls_ctx *ctx, const char *host)
{
    int g = select_group(ctx, host);
    return g < 0 ? -1 : ctx->groups[g].first_index;
}

/* ---- callbacks (run on worker threads, during handshakes) ---- */

/* TLS-ALPN-01 (RFC 8737 §3): a ClientHello whose ALPN offers exactly "acme-tls/1" for a name
   with a pending challenge gets that challenge's self-signed certificate instead of ours
   (installed on this connection only), and the ALPN callback selects acme-tls/1; the server
   layer closes the connection after the handshake (pt_tls_is_acme_alpn). Any other ClientHello
   passes untouched; one offering only acme-tls/1 without a challenge fails in alpn_cb with
   no_application_protocol. */
static bool only_acme_alpn(SSL *s)
{
    const unsigned char *p;
    size_t n;
    static const unsigned char want[] = "\x00\x0b\x0a" PT_ACME_TLS_ALPN;
    return SSL_client_hello_get0_ext(s, TLSEXT_TYPE_application_layer_protocol_negotiation, &p,
                                     &n) == 1 &&
           n == sizeof(want) - 1 && memcmp(p, want, n) == 0;
}

/* The host_name of the server_name extension (RFC 6066 §3) into out, or false. */
static bool hello_sni(SSL *s, char *out, size_t outlen)
{
    const unsigned char *p;
    size_t n;
    if (SSL_client_hello_get0_ext(s, TLSEXT_TYPE_server_name, &p, &n) != 1 || n < 5)
        return false;
    size_t list = ((size_t)p[0] << 8) | p[1];
    if (list + 2 != n || p[2] != TLSEXT_NAMETYPE_host_name)
        return false;
    size_t len = ((size_t)p[3] << 8) | p[4];
    if (len == 0 || len + 5 > n || len >= outlen)
        return false;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)tolower(p[5 + i]);
    out[len] = '\0';
    return true;
}

static int client_hello_cb(SSL *s, int *al, void *arg)
{
    (void)al;
    (void)arg;
    struct pt_tls_conn *c = SSL_get_app_data(s);
    char name[MAX_NAME + 1];
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    if (!c || c->is_acme || !only_acme_alpn(s) || !hello_sni(s, name, sizeof(name)) ||
        pt_acme_alpn_lookup(name, &x, &k) < 0)
        return SSL_CLIENT_HELLO_SUCCESS;
    SSL_certs_clear(s);
    if (SSL_use_cert_and_key(s, x, k, NULL, 1) == 1)
        c->is_acme = true;
    else
        ERR_clear_error();
    X509_free(x);
    EVP_PKEY_free(k);
    return SSL_CLIENT_HELLO_SUCCESS;
}

static int servername_cb(SSL *s, int *al, void *arg)
{
    struct pt_tls_ctx *ctx = arg;
    const struct pt_tls_conn *c = SSL_get_app_data(s);
    if (c && c->is_acme)
        return SSL_TLSEXT_ERR_OK; /* keep the challenge certificate */
    int g = select_group(ctx, SSL_get_servername(s, TLSEXT_NAMETYPE_host_name));
    if (g < 0) {
        *al = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    if (g > 0 && SSL_get_SSL_CTX(s) != ctx->groups[g].ssl_ctx &&
        !SSL_set_SSL_CTX(s, ctx->groups[g].ssl_ctx)) {
        *al = SSL_AD_INTERNAL_ERROR;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}

static int alpn_cb(SSL *s, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    const struct pt_tls_ctx *ctx = arg;
    const struct pt_tls_conn *c = SSL_get_app_data(s);
    if (c && c->is_acme) { /* only_acme_alpn() checked the list: one entry */
        *out = in + 1;
        *outlen = in[0];
        return SSL_TLSEXT_ERR_OK;
    }
    /* Server preference: the first of our protocols that the client offers. */
    for (size_t i = 0; i < ctx->alpn_len; i += 1u + ctx->alpn[i]) {
        const unsigned char *p = ctx->alpn + i;
        for (unsigned j = 0; j < inlen; j += 1u + in[j]) {
            if (j + 1u + in[j] > inlen)
                break;
            if (in[j] == p[0] && memcmp(in + j + 1, p + 1, p[0]) == 0) {
                *out = in + j + 1;
                *outlen = in[j];
                return SSL_TLSEXT_ERR_OK;
            }
        }
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL; /* no_application_protocol, RFC 7301 §3.2 */
}

/* OCSP stapling (RFC 6066 §8): the response cached for the certificate OpenSSL chose, when
   one is valid now; otherwise no status (clients then do without, or ask the responder). */
static int status_cb(SSL *s, void *arg)
{
    const struct pt_tls_ctx *ctx = arg;
    X509 *x = SSL_get_certificate(s);
    for (size_t i = 0; x && i < ctx->n_ocsp; i++)
        if (ctx->ocsp[i].leaf == x)
            return pt_tls_ocsp_staple(ctx->ocsp[i].e, s) == 0 ? SSL_TLSEXT_ERR_OK
                                                              : SSL_TLSEXT_ERR_NOACK;
    return SSL_TLSEXT_ERR_NOACK;
}

static int ticket_cb(SSL *s, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *ectx,
                     EVP_MAC_CTX *hctx, int enc)
{
    struct pt_tls_ctx *ctx = SSL_CTX_get_app_data(SSL_get_SSL_CTX(s));
    const struct pt_tls_ticket_key *k = NULL;
    int rc = -1;

    pthread_rwlock_rdlock(&ctx->key_lock);
    if (enc) {
        k = &ctx->keys[0];
        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1)
            goto out;
        memcpy(key_name, k->name, 16);
        rc = 1;
    } else if (memcmp(key_name, ctx->keys[0].name, 16) == 0) {
        k = &ctx->keys[0];
        rc = 1;
    } else if (ctx->has_prev && memcmp(key_name, ctx->keys[1].name, 16) == 0) {
        k = &ctx->keys[1];
        rc = 2; /* valid, but re-issue under the current key */
    } else {
        rc = 0; /* unknown key: full handshake */
        goto out;
    }
    OSSL_PARAM params[3];
    params[0] =
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac, sizeof(k->hmac));
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_sha256, 0);
    params[2] = OSSL_PARAM_construct_end();
    if (!EVP_MAC_CTX_set_params(hctx, params)) {
        rc = -1;
        goto out;
    }
    int ok = enc ? EVP_EncryptInit_ex(ectx, EVP_aes_256_cbc(), NULL, k->aes, iv)
                 : EVP_DecryptInit_ex(ectx, EVP_aes_256_cbc(), NULL, k->aes, iv);
    if (!ok)
        rc = -1;
out:
    pthread_rwlock_unlock(&ctx->key_lock);
    return rc;
}

static int new_ticket_key(struct pt_tls_ticket_key *k)
{
    return RAND_bytes(k->name, sizeof(k->name)) == 1 && RAND_bytes(k->aes, sizeof(k->aes)) == 1 &&
                   RAND_bytes(k->hmac, sizeof(k->hmac)) == 1
               ? 0
               : -1;
}

void pt_tls_rotate_ticket_keys(struct pt_tls_ctx *ctx)
{
    struct pt_tls_ticket_key k;
    if (new_ticket_key(&k) < 0)
        return; /* keep the current key rather than install a weak one */
    pthread_rwlock_wrlock(&ctx->key_lock);
    ctx->keys[1] = ctx->keys[0];
    ctx->keys[0] = k;
    ctx->has_prev = true;
    pthread_rwlock_unlock(&ctx->key_lock);
    OPENSSL_cleanse(&k, sizeof(k));
}

void pt_tls_ctx_inherit_ticket_keys(struct pt_tls_ctx *to, struct pt_tls_ctx *from)
{
    struct pt_tls_ticket_key keys[2];
    bool has_prev;
    pthread_rwlock_rdlock(&from->key_lock);
    memcpy(keys, from->keys, sizeof(keys));
    has_prev = from->has_prev;
    pthread_rwlock_unlock(&from->key_lock);
    pthread_rwlock_wrlock(&to->key_lock);
    memcpy(to->keys, keys, sizeof(keys));
    to->has_prev = has_prev;
    pthread_rwlock_unlock(&to->key_lock);
    OPENSSL_cleanse(keys, sizeof(keys));
}

uint64_t pt_tls_ctx_ticket_rotation_ms(const struct pt_tls_ctx *ctx)
{
    return ctx->rotation_ms;
}

/* ---- building ---- */

void pt_tls_settings_init(struct pt_tls_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->min_version = "1.2";
    s->session_tickets = true;
    s->ticket_rotation_ms = DEFAULT_ROTATION_MS;
    s->session_cache_size = DEFAULT_CACHE_SIZE;
}

/* Configures one group's SSL_CTX; every group gets the same settings. */
static int setup_group_ctx(struct pt_tls_ctx *ctx, SSL_CTX *sc, const struct pt_tls_settings *s,
                           int min_version, struct pt_tls_err *err)
{
    if (pt_tls_ssl_ctx_common(sc, min_version, s->ciphers, s->ciphersuites, err) < 0)
        return -1;
    SSL_CTX_set_app_data(sc, ctx);
    SSL_CTX_set_tlsext_servername_callback(sc, servername_cb);
    SSL_CTX_set_tlsext_servername_arg(sc, ctx);
    SSL_CTX_set_alpn_select_cb(sc, alpn_cb, ctx);
    SSL_CTX_set_tlsext_status_cb(sc, status_cb);
    SSL_CTX_set_tlsext_status_arg(sc, ctx);
    SSL_CTX_set_client_hello_cb(sc, client_hello_cb, ctx);
    SSL_CTX_set_session_id_context(sc, sid_ctx, sizeof(sid_ctx) - 1);
    uint64_t secs = ctx->rotation_ms / 1000;
    SSL_CTX_set_timeout(sc, (long)(secs > 0 ? secs : 1));
    if (s->session_cache_size > 0) {
        SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(sc, (long)s->session_cache_size);
    } else {
        SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_OFF);
    }
    if (s->session_tickets)
        SSL_CTX_set_tlsext_ticket_key_evp_cb(sc, ticket_cb);
    else
        SSL_CTX_set_options(sc, SSL_OP_NO_TICKET);

    if (s->client_auth != PT_TLS_CLIENT_AUTH_NONE) {
        if (!SSL_CTX_load_verify_locations(sc, s->client_ca_file, NULL)) {
            pt_tls_set_err(err, "client_ca_file", -1, "%s: cannot load CA certificates (%s)",
                           s->client_ca_file, pt_tls_ssl_reason());
            return -1;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(s->client_ca_file);
        if (!names) {
            pt_tls_set_err(err, "client_ca_file", -1, "%s: no CA certificate found (%s)",
                           s->client_ca_file, pt_tls_ssl_reason());
            return -1;
        }
        SSL_CTX_set_client_CA_list(sc, names);
        int mode = SSL_VERIFY_PEER;
        if (s->client_auth == PT_TLS_CLIENT_AUTH_REQUIRED)
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(sc, mode, NULL);
        SSL_CTX_set_verify_depth(sc, 8);
    }
    return 0;
}

static void free_ctx(struct pt_tls_ctx *ctx)
{
    for (size_t i = 0; i < ctx->n_ocsp; i++) {
        X509_free(ctx->ocsp[i].leaf);
        pt_tls_ocsp_unref(ctx->ocsp[i].e);
    }
    free(ctx->ocsp);
    for (size_t i = 0; i < ctx->n_groups; i++) {
        SSL_CTX_free(ctx->groups[i].ssl_ctx);
        free(ctx->groups[i].names_key);
    }
    free(ctx->groups);
    for (size_t i = 0; i < ctx->n_exact; i++)
        free(ctx->exact[i].name);
    free(ctx->exact);
    for (size_t i = 0; i < ctx->n_wild; i++)
        free(ctx->wild[i].name);
    free(ctx->wild);
    free(ctx->alpn);
    OPENSSL_cleanse(ctx->keys, sizeof(ctx->keys));
    pthread_rwlock_destroy(&ctx->key_lock);
    free(ctx);
}

/* Loads certificate i into its group (a new one or an existing one with the same names and a
   free key-type slot) and enters its names in the SNI tables. */
static int add_cert(struct pt_tls_ctx *ctx, const struct pt_tls_settings *s, int min_version,
                    size_t i, struct pt_tls_err *err)
{
    const struct pt_tls_cert_settings *cs = &s->certs[i];
    X509 *leaf = NULL;
    STACK_OF(X509) *chain = NULL;
    EVP_PKEY *key = NULL;
    char **names = NULL;
    size_t n_names = 0;
    char *nkey = NULL;
    int rc = -1;

    if (pt_tls_load_pair(cs->cert_file, cs->key_file, "certificates", (int)i, &leaf, &chain, &key,
                         err) < 0)
        return -1;
    if (cert_names(leaf, &names, &n_names) < 0 || !(nkey = names_key(names, n_names))) {
        pt_tls_set_err(err, "certificates", (int)i, "%s: out of memory", cs->cert_file);
        goto out;
    }
    if (n_names == 0 && i > 0) {
        pt_tls_set_err(err, "certificates", (int)i,
                       "%s: certificate names no DNS host (no subjectAltName DNS entry or CN); "
                       "only the first certificate may serve as a nameless default",
                       cs->cert_file);
        goto out;
    }
    unsigned kt = key_type(key);
    size_t g;
    for (g = 0; g < ctx->n_groups; g++)
        if (strcmp(ctx->groups[g].names_key, nkey) == 0 && !(ctx->groups[g].key_types & kt))
            break;
    if (g == ctx->n_groups) {
        struct pt_tls_group *ng = realloc(ctx->groups, (g + 1) * sizeof(*ng));
        if (!ng)
            goto oom;
        ctx->groups = ng;
        memset(&ng[g], 0, sizeof(ng[g]));
        ng[g].first_index = (int)i;
        ng[g].names_key = nkey;
        nkey = NULL;
        ctx->n_groups++;
        ng[g].ssl_ctx = SSL_CTX_new(TLS_server_method());
        if (!ng[g].ssl_ctx)
            goto oom;
        if (setup_group_ctx(ctx, ng[g].ssl_ctx, s, min_version, err) < 0)
            goto out;
    }
    struct pt_tls_group *grp = &ctx->groups[g];
    if (SSL_CTX_use_cert_and_key(grp->ssl_ctx, leaf, key, chain, 1) != 1) {
        pt_tls_set_err(err, "certificates", (int)i, "%s: certificate refused: %s", cs->cert_file,
                       pt_tls_ssl_reason());
        goto out;
    }
    grp->key_types |= kt;
    struct pt_tls_ocsp_entry *oe = pt_tls_ocsp_register(leaf, chain);
    if (oe) {
        struct pt_tls_ocsp_ref *no = realloc(ctx->ocsp, (ctx->n_ocsp + 1) * sizeof(*no));
        if (!no) {
            pt_tls_ocsp_unref(oe);
            goto oom;
        }
        ctx->ocsp = no;
        X509_up_ref(leaf);
        no[ctx->n_ocsp].leaf = leaf;
        no[ctx->n_ocsp].e = oe;
        ctx->n_ocsp++;
    }
    for (size_t k = 0; k < n_names; k++) {
        const char *nm = names[k];
        int r = strncmp(nm, "*.", 2) == 0 ? add_table(&ctx->wild, &ctx->n_wild, nm + 2, (uint32_t)g)
                : strchr(nm, '*')         ? 0 /* partial wildcards are not honoured */
                                          : add_table(&ctx->exact, &ctx->n_exact, nm, (uint32_t)g);
        if (r < 0)
            goto oom;
    }
    rc = 0;
    goto out;
oom:
    pt_tls_set_err(err, "certificates", (int)i, "%s: out of memory", cs->cert_file);
out:
    ERR_clear_error();
    free(nkey);
    free_names(names, n_names);
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
    return rc;
}

struct pt_tls_ctx *pt_tls_ctx_new(const struct pt_tls_settings *s, struct pt_tls_err *err)
{
    if (err) {
        err->key = NULL;
        err->index = -1;
        err->msg[0] = '\0';
    }
    int min_version = pt_tls_parse_version(s->min_version);
    if (!min_version) {
        pt_tls_set_err(err, "min_version", -1,
                       "min_version \"%s\" is not supported: use \"1.2\" "
                       "or \"1.3\"",
                       s->min_version);
        return NULL;
    }
    if (!s->certs || s->n_certs == 0) {
        pt_tls_set_err(err, "certificates", -1, "a TLS listener needs at least one certificate");
        return NULL;
    }
    if (s->client_auth != PT_TLS_CLIENT_AUTH_NONE && (!s->client_ca_file || !*s->client_ca_file)) {
        pt_tls_set_err(err, "client_auth", -1, "client_auth needs client_ca");
        return NULL;
    }
    struct pt_tls_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) {
        pt_tls_set_err(err, NULL, -1, "out of memory");
        return NULL;
    }
    atomic_init(&ctx->refs, 1);
    pthread_rwlock_init(&ctx->key_lock, NULL);
    ctx->strict_sni = s->strict_sni;
    ctx->rotation_ms = s->ticket_rotation_ms;
    if (ctx->rotation_ms < 1000)
        ctx->rotation_ms = s->ticket_rotation_ms == 0 ? DEFAULT_ROTATION_MS : 1000;
    if (new_ticket_key(&ctx->keys[0]) < 0) {
        pt_tls_set_err(err, NULL, -1, "cannot make a session ticket key: %s", pt_tls_ssl_reason());
        goto fail;
    }
    if (pt_tls_alpn_wire(s->alpn, s->n_alpn, &ctx->alpn, &ctx->alpn_len, err) < 0)
        goto fail;
    for (size_t i = 0; i < s->n_certs; i++)
        if (add_cert(ctx, s, min_version, i, err) < 0)
            goto fail;
    finish_table(ctx->exact, &ctx->n_exact);
    finish_table(ctx->wild, &ctx->n_wild);
    return ctx;
fail:
    ERR_clear_error();
    free_ctx(ctx);
    return NULL;
}

void pt_tls_ctx_ref(struct pt_tls_ctx *ctx)
{
    atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
}

void pt_tls_ctx_unref(struct pt_tls_ctx *ctx)
{
    if (!ctx)
        return;
    if (atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) == 1)
        free_ctx(ctx);
}
