/*
 * acme.c - the ACME manager (RFC 8555): one thread that gets and renews certificates for the
 * sites' exact host names with HTTP-01 or TLS-ALPN-01, and the process-wide tables of pending
 * challenges.
 *
 * Structures:
 *   struct pt_acme   settings copied from the configuration (strings owned), the current name
 *                    set (names[], guarded by mu), the thread, and the backoff state (thread
 *                    only). All names go into one certificate stored as storage/<names[0]>.crt
 *                    and .key; the account key is storage/account.key. Files are 0600.
 *   challenge table  token -> key authorization, static, guarded by its own mutex: workers read
 *                    it through pt_acme_http01() while the manager fills and empties it.
 *
 * Threads: pt_acme_start/update/certificates/stop run on the main thread; the manager thread
 * does all network I/O with blocking sockets and timeouts (it is off the request path, so a
 * slow ACME server never delays a request), and asks for a reload with SIGHUP to its own
 * process when a certificate was written; the main thread's sigtimedwait picks that up and
 * pt_acme_certificates() then names the new files. pt_acme_stop shuts the manager's socket
 * down so that a blocked read ends at once.
 *
 * Manager loop: check (at start, then every PORTICO_ACME_CHECK_MS, default 1 min): a stored
 * certificate that is missing, broken, does not cover every name, or has less than a third of
 * its lifetime left (PORTICO_ACME_RENEW_FRACTION, test-only) is (re)ordered; a failure waits
 * 5 s, doubling up to 1 h. One order runs as: directory, nonce, account (newAccount finds an
 * existing one for the same key, §7.3.1), newOrder, each authorization's challenge
 * (§8.3; already valid ones are skipped), poll, finalize with a CSR, poll the order, download
 * the PEM chain. A badNonce error is retried once with the fresh nonce it carries (§6.5).
 *
 * Placeholders: until a real certificate covers every name, a self-signed one for all names
 * (storage/placeholder.crt/.key, remade at start and when the names change) is served too,
 * after the real one, so the real one wins for the names it covers (tls_ctx.c keeps the
 * earlier certificate's names).
 *
 * Challenges: HTTP-01 (token -> key authorization, served by the plain listener through
 * pt_acme_http01) or TLS-ALPN-01 (RFC 8737: name -> a self-signed certificate carrying the
 * SHA-256 of the key authorization, presented by tls_ctx.c's ClientHello callback through
 * pt_acme_alpn_lookup to a ClientHello offering only ALPN "acme-tls/1"). HTTP-01 is tried
 * first (PORTICO_ACME_CHALLENGE=tls-alpn-01 flips that, for tests); the preference flips after
 * every failed order, so a site with only a TLS listener still gets its certificate on the
 * second try, and only one challenge is ever answered per authorization (answering both would
 * let the failing one invalidate it).
 *
 * Rejected: one certificate per name: ACME rate limits favour one order for a site's names.
 */
#include "tls/acme.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/common.h"
#include "core/log.h"
#include "tls/acme_internal.h"

#define MAX_NAMES 64
#define MAX_BODY (1u << 20)
#define IO_TIMEOUT_S 10
#define BACKOFF_MIN_MS 5000u
#define BACKOFF_MAX_MS 3600000u
#define POLL_TRIES 60

/* ---- challenge table (process-wide) --------------------------------------------------- */

#define MAX_CHALLENGES 64

struct challenge {
    char token[128]; /* "" when the slot is free */
    char ka[256];    /* token "." thumbprint (RFC 8555 §8.1) */
};

static pthread_mutex_t chal_mu = PTHREAD_MUTEX_INITIALIZER;
static struct challenge chal[MAX_CHALLENGES];

static int chal_add(const char *token, const char *ka)
{
    int rc = -1;
    if (strlen(token) >= sizeof(chal[0].token) || strlen(ka) >= sizeof(chal[0].ka))
        return -1;
    pthread_mutex_lock(&chal_mu);
    for (size_t i = 0; i < MAX_CHALLENGES; i++)
        if (!chal[i].token[0]) {
            snprintf(chal[i].token, sizeof(chal[i].token), "%s", token);
            snprintf(chal[i].ka, sizeof(chal[i].ka), "%s", ka);
            rc = 0;
            break;
        }
    pthread_mutex_unlock(&chal_mu);
    return rc;
}

static void chal_clear(void)
{
    pthread_mutex_lock(&chal_mu);
    memset(chal, 0, sizeof(chal));
    pthread_mutex_unlock(&chal_mu);
}

/* TLS-ALPN-01 challenges: name -> challenge certificate and key (RFC 8737 §3). */
struct alpn_challenge {
    char name[256]; /* lower case; "" when the slot is free */
    X509 *cert;
    EVP_PKEY *key;
};

static struct alpn_challenge alpn_chal[MAX_CHALLENGES]; /* guarded by chal_mu */

static int alpn_add(const char *name, X509 *cert, EVP_PKEY *key)
{
    int rc = -1;
    if (strlen(name) >= sizeof(alpn_chal[0].name))
        return -1;
    pthread_mutex_lock(&chal_mu);
    for (size_t i = 0; i < MAX_CHALLENGES; i++)
        if (!alpn_chal[i].name[0]) {
            size_t j;
            for (j = 0; name[j]; j++)
                alpn_chal[i].name[j] = (char)tolower((unsigned char)name[j]);
            alpn_chal[i].name[j] = '\0';
            X509_up_ref(cert);
            EVP_PKEY_up_ref(key);
            alpn_chal[i].cert = cert;
            alpn_chal[i].key = key;
            rc = 0;
            break;
        }
    pthread_mutex_unlock(&chal_mu);
    return rc;
}

static void alpn_clear(void)
{
    pthread_mutex_lock(&chal_mu);
    for (size_t i = 0; i < MAX_CHALLENGES; i++) {
        X509_free(alpn_chal[i].cert);
        EVP_PKEY_free(alpn_chal[i].key);
    }
    memset(alpn_chal, 0, sizeof(alpn_chal));
    pthread_mutex_unlock(&chal_mu);
}

int pt_acme_alpn_lookup(const char *name, X509 **cert, EVP_PKEY **key)
{
    int rc = -1;
    pthread_mutex_lock(&chal_mu);
    for (size_t i = 0; i < MAX_CHALLENGES; i++)
        if (alpn_chal[i].name[0] && strcmp(alpn_chal[i].name, name) == 0) {
            X509_up_ref(alpn_chal[i].cert);
            EVP_PKEY_up_ref(alpn_chal[i].key);
            *cert = alpn_chal[i].cert;
            *key = alpn_chal[i].key;
            rc = 0;
            break;
        }
    pthread_mutex_unlock(&chal_mu);
    return rc;
}

ssize_t pt_acme_http01(const char *token, size_t token_len, char *out, size_t outlen)
{
    ssize_t n = -1;
    if (token_len == 0 || token_len >= sizeof(chal[0].token))
        return -1;
    pthread_mutex_lock(&chal_mu);
    for (size_t i = 0; i < MAX_CHALLENGES; i++)
        if (chal[i].token[0] && strlen(chal[i].token) == token_len &&
            memcmp(chal[i].token, token, token_len) == 0) {
            size_t kl = strlen(chal[i].ka);
            if (kl <= outlen) {
                memcpy(out, chal[i].ka, kl);
                n = (ssize_t)kl;
            }
            break;
        }
    pthread_mutex_unlock(&chal_mu);
    return n;
}

/* ---- the manager ---------------------------------------------------------------------- */

struct pt_acme {
    char *email;     /* or NULL */
    char *directory; /* https URL */
    char *ca_root;   /* or NULL: system store */
    char *storage;   /* directory, absolute */
    uint64_t check_ms;
    double renew_fraction;

    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stop;              /* guarded by mu */
    bool names_changed;     /* guarded by mu: retry at once */
    char *names[MAX_NAMES]; /* guarded by mu (strdup'd) */
    size_t n_names;         /* guarded by mu */
    int cur_fd;             /* socket in use by the thread, -1; guarded by mu */
    pthread_t thread;
    bool thread_started;

    /* main thread: paths handed out by pt_acme_certificates */
    char out_crt[2][4096];
    char out_key[2][4096];

    /* manager thread only */
    SSL_CTX *ssl;
    EVP_PKEY *account;
    char *kid;
    char nonce[256];
    char *new_nonce_url, *new_account_url, *new_order_url;
    bool prefer_alpn; /* answer tls-alpn-01 before http-01; flips after each failed order */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void path_in(const struct pt_acme *a, const char *file, const char *ext, char *out,
                    size_t outlen)
{
    snprintf(out, outlen, "%s/%s%s", a->storage, file, ext);
}

/* The ACME names among s's hosts, deduplicated, into names (strdup'd). Returns the count. */
static size_t names_of(const struct pt_acme_settings *s, char **names)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_hosts; i++) {
        const char *h = s->hosts[i];
        if (!pt_acme_name_ok(h) || n == MAX_NAMES)
            continue;
        bool dup = false;
        for (size_t k = 0; k < n && !dup; k++)
            dup = strcmp(names[k], h) == 0;
        if (!dup && (names[n] = strdup(h)) != NULL)
            n++;
    }
    return n;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
}

/* Writes a fresh placeholder for names (main thread). Returns 0 or -1 (err filled). */
static int make_placeholder(struct pt_acme *a, char *const *names, size_t n, char *err,
                            size_t errlen)
{
    char crt[4096], key[4096];
    char *kp = NULL, *cp = NULL;
    int rc = -1;
    EVP_PKEY *k = pt_acme_new_key();
    X509 *x = k ? pt_acme_self_signed(k, (const char *const *)names, n, 30) : NULL;
    path_in(a, "placeholder", ".key", key, sizeof(key));
    path_in(a, "placeholder", ".crt", crt, sizeof(crt));
    int kl = x ? pt_acme_key_pem(k, &kp) : -1;
    int cl = x ? pt_acme_cert_pem(x, &cp) : -1;
    int e = 0;
    if (kl < 0 || cl < 0) {
        snprintf(err, errlen, "acme: cannot make a placeholder certificate");
        goto out;
    }
    if ((e = pt_acme_write_file(key, kp, (size_t)kl)) < 0 ||
        (e = pt_acme_write_file(crt, cp, (size_t)cl)) < 0) {
        snprintf(err, errlen, "acme: cannot write %s: %s", a->storage, strerror(-e));
        goto out;
    }
    rc = 0;
out:
    if (kp)
        OPENSSL_cleanse(kp, strlen(kp));
    free(kp);
    free(cp);
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

/* The stored certificate for names: 1 when it exists, matches its key and is not expired
   (times filled), 0 otherwise. */
static int stored_cert(const struct pt_acme *a, char *const *names, size_t n, bool *covers,
                       time_t *nb, time_t *na)
{
    char crt[4096], key[4096];
    int rc = 0;
    if (n == 0)
        return 0;
    path_in(a, names[0], ".crt", crt, sizeof(crt));
    path_in(a, names[0], ".key", key, sizeof(key));
    X509 *x = pt_acme_read_cert(crt);
    EVP_PKEY *k = x ? pt_acme_read_key(key) : NULL;
    if (k && X509_check_private_key(x, k) == 1 && pt_acme_cert_times(x, nb, na) == 0 &&
        *na > time(NULL)) {
        *covers = pt_acme_cert_covers(x, (const char *const *)names, n);
        rc = 1;
    }
    EVP_PKEY_free(k);
    X509_free(x);
    return rc;
}

/* ---- HTTPS client (manager thread) ----------------------------------------------------- */

struct resp {
    long status;
    char *body; /* NUL-terminated, malloc'd */
    size_t body_len;
    char location[1024];
    char content_type[128];
};

static void resp_free(struct resp *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* Splits https://host[:port]/path. Returns 0 or -1. */
static int split_url(const char *url, char *host, size_t hl, char *port, size_t pl,
                     const char **path)
{
    if (strncasecmp(url, "https://", 8) != 0)
        return -1;
    const char *h = url + 8;
    const char *slash = strchr(h, '/');
    size_t al = slash ? (size_t)(slash - h) : strlen(h);
    *path = slash ? slash : "/";
    const char *colon = NULL;
    if (al && h[0] == '[') {
        const char *rb = memchr(h, ']', al);
        if (!rb)
            return -1;
        if ((size_t)(rb - h - 1) >= hl)
            return -1;
        snprintf(host, hl, "%.*s", (int)(rb - h - 1), h + 1);
        colon = rb + 1 < h + al && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(h, ':', al);
        size_t n = colon ? (size_t)(colon - h) : al;
        if (n == 0 || n >= hl)
            return -1;
        snprintf(host, hl, "%.*s", (int)n, h);
    }
    if (colon)
        snprintf(port, pl, "%.*s", (int)(h + al - colon - 1), colon + 1);
    else
        snprintf(port, pl, "443");
    return 0;
}

static int tcp_connect(struct pt_acme *a, const char *host, const char *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        struct timeval tv = {IO_TIMEOUT_S, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        pthread_mutex_lock(&a->mu);
        bool stop = a->stop;
        if (!stop)
            a->cur_fd = fd;
        pthread_mutex_unlock(&a->mu);
        if (!stop && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        pthread_mutex_lock(&a->mu);
        a->cur_fd = -1;
        pthread_mutex_unlock(&a->mu);
        close(fd);
        fd = -1;
        if (stop)
            break;
    }
    freeaddrinfo(res);
    return fd;
}

/* Header value of name in head[0..n) into out (trimmed); true when found. */
static bool header(const char *head, size_t n, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    const char *p = head, *end = head + n;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            snprintf(out, outlen, "%.*s", (int)(ve - v), v);
            return true;
        }
        p = eol + 1;
    }
    return false;
}

/* Decodes a chunked body in place (RFC 9112 §7.1). Returns the new length or -1. */
static long dechunk(char *b, size_t n)
{
    size_t in = 0, out = 0;
    for (;;) {
        char *end;
        if (in >= n)
            return -1;
        unsigned long len = strtoul(b + in, &end, 16);
        char *eol = memchr(b + in, '\n', n - in);
        if (!eol || end == b + in || len > n)
            return -1;
        in = (size_t)(eol - b) + 1;
        if (len == 0)
            return (long)out;
        if (in + len > n)
            return -1;
        memmove(b + out, b + in, len);
        out += len;
        in += len;
        if (in < n && b[in] == '\r')
            in++;
        if (in < n && b[in] == '\n')
            in++;
    }
}

/* One request with Connection: close. Returns 0 with r filled (any status) or -1. */
static int https(struct pt_acme *a, const char *method, const char *url, const char *body,
                 struct resp *r)
{
    char host[256], port[16], req[2048];
    const char *path;
    SSL *s = NULL;
    char *buf = NULL;
    int fd = -1, rc = -1;
    size_t used = 0;
    memset(r, 0, sizeof(*r));
    if (split_url(url, host, sizeof(host), port, sizeof(port), &path) < 0)
        return -1;
    size_t bl = body ? strlen(body) : 0;
    /* Host carries the port unless it is 443: servers build their URLs from it */
    bool v6 = strchr(host, ':') != NULL;
    int hl =
        snprintf(req, sizeof(req),
                 "%s %s HTTP/1.1\r\nHost: %s%s%s%s%s\r\nUser-Agent: portico-acme\r\n"
                 "Accept: application/json, application/pem-certificate-chain\r\n"
                 "%s%s%zu\r\nConnection: close\r\n\r\n",
                 method, path, v6 ? "[" : "", host, v6 ? "]" : "", strcmp(port, "443") ? ":" : "",
                 strcmp(port, "443") ? port : "",
                 body ? "Content-Type: application/jose+json\r\n" : "", "Content-Length: ", bl);
    if (hl < 0 || (size_t)hl >= sizeof(req))
        return -1;
    fd = tcp_connect(a, host, port);
    if (fd < 0)
        goto out;
    s = SSL_new(a->ssl);
    if (!s || !SSL_set_fd(s, fd))
        goto out;
    struct in6_addr tmp;
    bool is_ip = inet_pton(AF_INET, host, &tmp) == 1 || inet_pton(AF_INET6, host, &tmp) == 1;
    if (!is_ip)
        SSL_set_tlsext_host_name(s, host);
    if (!SSL_set1_host(s, host) || SSL_connect(s) != 1)
        goto out;
    if (SSL_write(s, req, hl) != hl || (bl && SSL_write(s, body, (int)bl) != (int)bl))
        goto out;
    buf = malloc(MAX_BODY + 1);
    if (!buf)
        goto out;
    for (;;) {
        if (used >= MAX_BODY)
            goto out;
        int n = SSL_read(s, buf + used, (int)(MAX_BODY - used));
        if (n <= 0)
            break;
        used += (size_t)n;
    }
    buf[used] = '\0';
    char *sep = strstr(buf, "\r\n\r\n");
    if (!sep || sscanf(buf, "HTTP/1.%*c %ld", &r->status) != 1)
        goto out;
    size_t head_len = (size_t)(sep - buf) + 2;
    char te[64] = "";
    header(buf, head_len, "Location", r->location, sizeof(r->location));
    header(buf, head_len, "Content-Type", r->content_type, sizeof(r->content_type));
    char nonce[256];
    if (header(buf, head_len, "Replay-Nonce", nonce, sizeof(nonce)))
        snprintf(a->nonce, sizeof(a->nonce), "%s", nonce);
    header(buf, head_len, "Transfer-Encoding", te, sizeof(te));
    size_t bstart = head_len + 2;
    size_t blen = used - bstart;
    if (strcasecmp(method, "HEAD") == 0) {
        blen = 0;
    } else if (strcasestr(te, "chunked")) {
        long d = dechunk(buf + bstart, blen);
        if (d < 0)
            goto out;
        blen = (size_t)d;
    } else {
        char cl[32];
        if (header(buf, head_len, "Content-Length", cl, sizeof(cl))) {
            unsigned long want = strtoul(cl, NULL, 10);
            if (want > blen)
                goto out;
            blen = want;
        }
    }
    r->body = malloc(blen + 1);
    if (!r->body)
        goto out;
    memcpy(r->body, buf + bstart, blen);
    r->body[blen] = '\0';
    r->body_len = blen;
    rc = 0;
out:
    if (s) {
        SSL_shutdown(s);
        SSL_free(s);
    }
    if (fd >= 0) {
        pthread_mutex_lock(&a->mu);
        a->cur_fd = -1;
        pthread_mutex_unlock(&a->mu);
        close(fd);
    }
    free(buf);
    if (rc < 0)
        resp_free(r);
    ERR_clear_error();
    return rc;
}

/* ---- ACME requests --------------------------------------------------------------------- */

/* Why a response failed, for the log: the problem document's type and detail (RFC 8555 §6.7). */
static void problem(const struct resp *r, char *why, size_t wl)
{
    json_t *j = r->body ? json_loads(r->body, 0, NULL) : NULL;
    const char *type = j ? json_string_value(json_object_get(j, "type")) : NULL;
    const char *detail = j ? json_string_value(json_object_get(j, "detail")) : NULL;
    snprintf(why, wl, "HTTP %ld%s%s%s%s", r->status, type ? " " : "", type ? type : "",
             detail ? ": " : "", detail ? detail : "");
    json_decref(j);
}

static int get_nonce(struct pt_acme *a)
{
    struct resp r;
    a->nonce[0] = '\0';
    if (https(a, "HEAD", a->new_nonce_url, NULL, &r) < 0)
        return -1;
    resp_free(&r);
    return a->nonce[0] ? 0 : -1;
}

static bool is_bad_nonce(const struct resp *r)
{
    return r->status == 400 && r->body && strstr(r->body, "urn:ietf:params:acme:error:badNonce");
}

/* POST a JWS of payload (NULL: POST-as-GET) to url, signed with the account key (kid, or jwk
   while there is no account). Retries once on badNonce. Returns 0 with r filled or -1. */
static int post(struct pt_acme *a, const char *url, const char *payload, struct resp *r, char *why,
                size_t wl)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!a->nonce[0] && get_nonce(a) < 0) {
            snprintf(why, wl, "cannot get a nonce from %s", a->new_nonce_url);
            return -1;
        }
        char *jws = pt_acme_jws(a->account, a->kid, a->nonce, url, payload);
        a->nonce[0] = '\0';
        if (!jws) {
            snprintf(why, wl, "cannot sign a request");
            return -1;
        }
        int rc = https(a, "POST", url, jws, r);
        free(jws);
        if (rc < 0) {
            snprintf(why, wl, "no answer from %s", url);
            return -1;
        }
        if (is_bad_nonce(r) && attempt == 0) {
            resp_free(r);
            continue;
        }
        if (r->status >= 300) {
            problem(r, why, wl);
            resp_free(r);
            return -1;
        }
        return 0;
    }
    return -1;
}

/* POST and parse the JSON answer. Returns the object (caller decrefs) or NULL. */
static json_t *post_json(struct pt_acme *a, const char *url, const char *payload, char *loc,
                         size_t ll, char *why, size_t wl)
{
    struct resp r;
    if (post(a, url, payload, &r, why, wl) < 0)
        return NULL;
    json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
    if (!j || !json_is_object(j)) {
        snprintf(why, wl, "%s answered with no JSON object", url);
        json_decref(j);
        j = NULL;
    } else if (loc) {
        snprintf(loc, ll, "%s", r.location);
    }
    resp_free(&r);
    return j;
}

static char *dup_member(json_t *o, const char *name)
{
    const char *s = json_string_value(json_object_get(o, name));
    return s ? strdup(s) : NULL;
}

static int load_directory(struct pt_acme *a, char *why, size_t wl)
{
    struct resp r;
    if (a->new_order_url)
        return 0;
    if (https(a, "GET", a->directory, NULL, &r) < 0 || r.status != 200) {
        snprintf(why, wl, "cannot fetch the directory %s", a->directory);
        resp_free(&r);
        return -1;
    }
    json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
    resp_free(&r);
    if (j) {
        a->new_nonce_url = dup_member(j, "newNonce");
        a->new_account_url = dup_member(j, "newAccount");
        a->new_order_url = dup_member(j, "newOrder");
    }
    json_decref(j);
    if (!a->new_nonce_url || !a->new_account_url || !a->new_order_url) {
        free(a->new_nonce_url);
        free(a->new_account_url);
        free(a->new_order_url);
        a->new_nonce_url = a->new_account_url = a->new_order_url = NULL;
        snprintf(why, wl, "the directory %s lacks newNonce/newAccount/newOrder", a->directory);
        return -1;
    }
    return 0;
}

/* The account key from storage, made (0600) on first use. */
static int load_account_key(struct pt_acme *a, char *why, size_t wl)
{
    char path[4096];
    if (a->account)
        return 0;
    path_in(a, "account", ".key", path, sizeof(path));
    a->account = pt_acme_read_key(path);
    if (a->account)
        return 0;
    if (access(path, F_OK) == 0) {
        snprintf(why, wl, "%.300s is not a readable private key", path);
        return -1;
    }
    a->account = pt_acme_new_key();
    char *pem = NULL;
    int n = a->account ? pt_acme_key_pem(a->account, &pem) : -1;
    int e = n < 0 ? -ENOMEM : pt_acme_write_file(path, pem, (size_t)n);
    if (pem)
        OPENSSL_cleanse(pem, (size_t)n);
    free(pem);
    if (e < 0) {
        snprintf(why, wl, "cannot write %.300s: %s", path, strerror(-e));
        EVP_PKEY_free(a->account);
        a->account = NULL;
        return -1;
    }
    pt_log_info("acme: new account key %s", path);
    return 0;
}

static int register_account(struct pt_acme *a, char *why, size_t wl)
{
    if (a->kid)
        return 0;
    json_t *p = json_pack("{s:b}", "termsOfServiceAgreed", 1);
    if (p && a->email) {
        char mail[320];
        snprintf(mail, sizeof(mail), "mailto:%s", a->email);
        json_object_set_new(p, "contact", json_pack("[s]", mail));
    }
    char *payload = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    if (!payload)
        return -1;
    char loc[1024] = "";
    json_t *j = post_json(a, a->new_account_url, payload, loc, sizeof(loc), why, wl);
    free(payload);
    json_decref(j);
    if (!j)
        return -1;
    if (!loc[0]) {
        snprintf(why, wl, "newAccount answered with no Location");
        return -1;
    }
    a->kid = strdup(loc);
    return a->kid ? 0 : -1;
}

static void sleep_ms(struct pt_acme *a, uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&a->mu);
    if (!a->stop)
        pthread_cond_timedwait(&a->cond, &a->mu, &ts);
    pthread_mutex_unlock(&a->mu);
}

static bool stopping(struct pt_acme *a)
{
    pthread_mutex_lock(&a->mu);
    bool s = a->stop;
    pthread_mutex_unlock(&a->mu);
    return s;
}

/* POST-as-GET url until its status leaves pending/processing (bounded). Returns the object
   (caller decrefs) with a final status, or NULL. */
static json_t *poll_status(struct pt_acme *a, const char *url, char *why, size_t wl)
{
    for (int i = 0; i < POLL_TRIES && !stopping(a); i++) {
        json_t *j = post_json(a, url, NULL, NULL, 0, why, wl);
        if (!j)
            return NULL;
        const char *st = json_string_value(json_object_get(j, "status"));
        if (st && strcmp(st, "pending") != 0 && strcmp(st, "processing") != 0)
            return j;
        json_decref(j);
        sleep_ms(a, i < 5 ? 200 : 1000);
    }
    snprintf(why, wl, "%s stayed pending", url);
    return NULL;
}

/* One authorization (RFC 8555 §7.5) unless already valid: HTTP-01 (served by the plain
   listener) or TLS-ALPN-01 (RFC 8737, answered by the TLS listener), whichever is preferred
   now and offered. */
static int authorize(struct pt_acme *a, const char *url, const char *thumb, char *why, size_t wl)
{
    int rc = -1;
    json_t *az = post_json(a, url, NULL, NULL, 0, why, wl);
    if (!az)
        return -1;
    const char *st = json_string_value(json_object_get(az, "status"));
    const char *ident =
        json_string_value(json_object_get(json_object_get(az, "identifier"), "value"));
    if (st && strcmp(st, "valid") == 0) {
        rc = 0;
        goto out;
    }
    json_t *chs = json_object_get(az, "challenges");
    const char *token = NULL, *curl = NULL, *atoken = NULL, *aurl = NULL;
    for (size_t i = 0; i < json_array_size(chs); i++) {
        json_t *c = json_array_get(chs, i);
        const char *type = json_string_value(json_object_get(c, "type"));
        if (type && strcmp(type, "http-01") == 0) {
            token = json_string_value(json_object_get(c, "token"));
            curl = json_string_value(json_object_get(c, "url"));
        } else if (type && strcmp(type, "tls-alpn-01") == 0) {
            atoken = json_string_value(json_object_get(c, "token"));
            aurl = json_string_value(json_object_get(c, "url"));
        }
    }
    bool use_alpn = atoken && aurl && ident && (a->prefer_alpn || !token || !curl);
    if (use_alpn) {
        token = atoken;
        curl = aurl;
    }
    if (!token || !curl) {
        snprintf(why, wl, "no http-01 or tls-alpn-01 challenge for %s", ident ? ident : url);
        goto out;
    }
    /* tokens are base64url (§8.1): anything else would not fit a URL path safely */
    for (const char *p = token; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_')) {
            snprintf(why, wl, "bad challenge token for %s", ident ? ident : url);
            goto out;
        }
    char ka[256];
    snprintf(ka, sizeof(ka), "%s.%s", token, thumb);
    if (use_alpn) {
        EVP_PKEY *ck = pt_acme_new_key();
        X509 *cx = ck ? pt_acme_alpn_cert(ck, ident, ka) : NULL;
        int ar = cx ? alpn_add(ident, cx, ck) : -1;
        X509_free(cx);
        EVP_PKEY_free(ck);
        if (ar < 0) {
            snprintf(why, wl, "cannot set up the tls-alpn-01 challenge for %s", ident);
            goto out;
        }
    } else if (chal_add(token, ka) < 0) {
        snprintf(why, wl, "too many pending challenges");
        goto out;
    }
    pt_log_info("acme: answering %s for %s", use_alpn ? "tls-alpn-01" : "http-01",
                ident ? ident : url);
    json_t *resp = post_json(a, curl, "{}", NULL, 0, why, wl);
    if (!resp)
        goto out;
    json_decref(resp);
    json_t *fin = poll_status(a, url, why, wl);
    if (!fin)
        goto out;
    st = json_string_value(json_object_get(fin, "status"));
    if (st && strcmp(st, "valid") == 0) {
        rc = 0;
    } else {
        json_t *err = NULL;
        json_t *cs = json_object_get(fin, "challenges");
        for (size_t i = 0; i < json_array_size(cs) && !err; i++)
            err = json_object_get(json_array_get(cs, i), "error");
        const char *d = json_string_value(json_object_get(err, "detail"));
        snprintf(why, wl, "authorization for %s is %s%s%s", ident ? ident : "?", st ? st : "?",
                 d ? ": " : "", d ? d : "");
    }
    json_decref(fin);
out:
    json_decref(az);
    return rc;
}

/* Downloads the certificate chain and stores it with key. Returns 0 or -1. */
static int store_chain(struct pt_acme *a, char *const *names, size_t n, const char *url,
                       EVP_PKEY *key, char *why, size_t wl)
{
    struct resp r;
    char crt[4096], kpath[4096];
    char *kp = NULL;
    int rc = -1;
    if (post(a, url, NULL, &r, why, wl) < 0)
        return -1;
    /* the leaf must be ours: parse it and match it against the key before storing */
    BIO *b = BIO_new_mem_buf(r.body, (int)r.body_len);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!x || X509_check_private_key(x, key) != 1 ||
        !pt_acme_cert_covers(x, (const char *const *)names, n)) {
        snprintf(why, wl, "the certificate from %s does not match the order", url);
        goto out;
    }
    path_in(a, names[0], ".crt", crt, sizeof(crt));
    path_in(a, names[0], ".key", kpath, sizeof(kpath));
    int kl = pt_acme_key_pem(key, &kp);
    int e = kl < 0 ? -ENOMEM : pt_acme_write_file(kpath, kp, (size_t)kl);
    if (e == 0)
        e = pt_acme_write_file(crt, r.body, r.body_len);
    if (e < 0) {
        snprintf(why, wl, "cannot write %.300s: %s", crt, strerror(-e));
        goto out;
    }
    char issuer[256] = "";
    X509_NAME_oneline(X509_get_issuer_name(x), issuer, sizeof(issuer));
    time_t nb, na;
    struct tm tm;
    char until[32] = "?";
    if (pt_acme_cert_times(x, &nb, &na) == 0 && gmtime_r(&na, &tm))
        strftime(until, sizeof(until), "%Y-%m-%dT%H:%M:%SZ", &tm);
    pt_log_info("acme: certificate for %s%s stored in %s (issuer %s, valid until %s)", names[0],
                n > 1 ? " and more names" : "", crt, issuer, until);
    rc = 0;
out:
    if (kp)
        OPENSSL_cleanse(kp, strlen(kp));
    free(kp);
    X509_free(x);
    resp_free(&r);
    return rc;
}

/* One full order for names (RFC 8555 §7.4). Returns 0 or -1 with why filled. */
static int obtain(struct pt_acme *a, char *const *names, size_t n, char *why, size_t wl)
{
    int rc = -1;
    json_t *order = NULL, *done = NULL;
    char *payload = NULL;
    unsigned char *der = NULL;
    EVP_PKEY *key = NULL;
    char thumb[64], order_url[1024] = "";
    if (load_directory(a, why, wl) < 0 || load_account_key(a, why, wl) < 0 ||
        register_account(a, why, wl) < 0)
        return -1;
    if (pt_acme_thumbprint(a->account, thumb, sizeof(thumb)) < 0)
        return -1;
    json_t *ids = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(ids, json_pack("{s:s,s:s}", "type", "dns", "value", names[i]));
    json_t *p = json_pack("{s:o}", "identifiers", ids);
    payload = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    if (!payload)
        goto out;
    order = post_json(a, a->new_order_url, payload, order_url, sizeof(order_url), why, wl);
    if (!order)
        goto out;
    if (!order_url[0]) {
        snprintf(why, wl, "newOrder answered with no Location");
        goto out;
    }
    json_t *azs = json_object_get(order, "authorizations");
    for (size_t i = 0; i < json_array_size(azs); i++) {
        const char *u = json_string_value(json_array_get(azs, i));
        if (!u || stopping(a) || authorize(a, u, thumb, why, wl) < 0)
            goto out;
    }
    const char *fin = json_string_value(json_object_get(order, "finalize"));
    key = pt_acme_new_key();
    int dl = key ? pt_acme_csr(key, (const char *const *)names, n, &der) : -1;
    if (!fin || dl < 0)
        goto out;
    char *csr64 = malloc((size_t)dl * 4 / 3 + 4);
    if (!csr64 || pt_acme_b64url(der, (size_t)dl, csr64, (size_t)dl * 4 / 3 + 4) < 0) {
        free(csr64);
        goto out;
    }
    free(payload);
    p = json_pack("{s:s}", "csr", csr64);
    free(csr64);
    payload = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    json_t *f = payload ? post_json(a, fin, payload, NULL, 0, why, wl) : NULL;
    if (!f)
        goto out;
    json_decref(f);
    done = poll_status(a, order_url, why, wl);
    if (!done)
        goto out;
    const char *st = json_string_value(json_object_get(done, "status"));
    const char *cert_url = json_string_value(json_object_get(done, "certificate"));
    if (!st || strcmp(st, "valid") != 0 || !cert_url) {
        snprintf(why, wl, "order %.300s ended %.40s", order_url, st ? st : "without a status");
        goto out;
    }
    rc = store_chain(a, names, n, cert_url, key, why, wl);
out:
    chal_clear();
    alpn_clear();
    free(payload);
    free(der);
    EVP_PKEY_free(key);
    json_decref(order);
    json_decref(done);
    return rc;
}

/* Copies the current names under the lock; the manager (consume) also takes the news. */
static size_t take_names(struct pt_acme *a, char **names, bool consume)
{
    size_t n = 0;
    pthread_mutex_lock(&a->mu);
    for (size_t i = 0; i < a->n_names; i++)
        if ((names[n] = strdup(a->names[i])) != NULL)
            n++;
    if (consume)
        a->names_changed = false;
    pthread_mutex_unlock(&a->mu);
    return n;
}

static void *manager(void *arg)
{
    struct pt_acme *a = arg;
    uint64_t backoff = 0, next_try = 0;
    while (!stopping(a)) {
        char *names[MAX_NAMES];
        size_t n = take_names(a, names, true);
        bool covers = false;
        time_t nb = 0, na = 0;
        int have = stored_cert(a, names, n, &covers, &nb, &na);
        bool due =
            n > 0 && (!have || !covers || pt_acme_renew_due(nb, na, time(NULL), a->renew_fraction));
        uint64_t wait = a->check_ms;
        if (due && now_ms() >= next_try) {
            char why[768] = "";
            if (obtain(a, names, n, why, sizeof(why)) == 0) {
                backoff = 0;
                next_try = 0;
                kill(getpid(), SIGHUP); /* the main thread reloads and serves it */
            } else if (!stopping(a)) {
                backoff = backoff ? PT_MIN(backoff * 2, (uint64_t)BACKOFF_MAX_MS) : BACKOFF_MIN_MS;
                next_try = now_ms() + backoff;
                pt_log_warn("acme: %s for %s failed: %s; next try in %llu s",
                            have ? "renewing the certificate" : "getting a certificate", names[0],
                            why[0] ? why : "error", (unsigned long long)(backoff / 1000));
                /* the other challenge type may get through where this one did not (no plain
                   listener on port 80, or no TLS listener on 443) */
                a->prefer_alpn = !a->prefer_alpn;
                /* the server may have lost our account or nonce state: start afresh */
                free(a->kid);
                a->kid = NULL;
                a->nonce[0] = '\0';
            }
        }
        if (next_try) {
            uint64_t now = now_ms();
            wait = next_try > now ? PT_MIN(wait, next_try - now) : 0;
        }
        free_names(names, n);
        pthread_mutex_lock(&a->mu);
        bool changed = a->names_changed;
        pthread_mutex_unlock(&a->mu);
        if (changed) {
            next_try = 0;
            backoff = 0;
            continue;
        }
        sleep_ms(a, wait ? wait : 1);
    }
    return NULL;
}

/* ---- main-thread interface ------------------------------------------------------------- */

static int mkdir_p(const char *dir)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s", dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0700) < 0 && errno != EEXIST)
            return -errno;
        *s = '/';
    }
    if (mkdir(p, 0700) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static void acme_free(struct pt_acme *a)
{
    free(a->email);
    free(a->directory);
    free(a->ca_root);
    free(a->storage);
    free_names(a->names, a->n_names);
    SSL_CTX_free(a->ssl);
    EVP_PKEY_free(a->account);
    free(a->kid);
    free(a->new_nonce_url);
    free(a->new_account_url);
    free(a->new_order_url);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cond);
    free(a);
}

struct pt_acme *pt_acme_start(const struct pt_acme_settings *ac, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (!ac)
        return NULL;
    struct pt_acme *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "acme: out of memory");
        return NULL;
    }
    pthread_mutex_init(&a->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_cond_init(&a->cond, &ca);
    pthread_condattr_destroy(&ca);
    a->cur_fd = -1;
    a->email = ac->email ? strdup(ac->email) : NULL;
    a->directory = strdup(ac->directory ? ac->directory : "");
    a->ca_root = ac->ca_root ? strdup(ac->ca_root) : NULL;
    a->storage = strdup(ac->storage ? ac->storage : "");
    if (!a->directory || !a->storage || (ac->email && !a->email) || (ac->ca_root && !a->ca_root)) {
        snprintf(err, errlen, "acme: out of memory");
        goto fail;
    }
    const char *env = getenv("PORTICO_ACME_CHECK_MS");
    a->check_ms = 60000;
    if (env && *env) {
        unsigned long long v = strtoull(env, NULL, 10);
        if (v >= 10 && v <= 86400000ull)
            a->check_ms = v;
    }
    a->renew_fraction = 1.0 / 3.0;
    env = getenv("PORTICO_ACME_RENEW_FRACTION");
    if (env && *env) {
        double f = strtod(env, NULL);
        if (f > 0 && f <= 1.0)
            a->renew_fraction = f;
    }
    env = getenv("PORTICO_ACME_CHALLENGE"); /* test-only: the challenge type tried first */
    a->prefer_alpn = env && strcmp(env, "tls-alpn-01") == 0;
    int e = mkdir_p(a->storage);
    if (e < 0) {
        snprintf(err, errlen, "acme: cannot create storage %s: %s", a->storage, strerror(-e));
        goto fail;
    }
    chmod(a->storage, 0700);
    a->ssl = SSL_CTX_new(TLS_client_method());
    if (!a->ssl || !SSL_CTX_set_min_proto_version(a->ssl, TLS1_2_VERSION)) {
        snprintf(err, errlen, "acme: cannot make a TLS client context");
        goto fail;
    }
    SSL_CTX_set_verify(a->ssl, SSL_VERIFY_PEER, NULL);
    if (a->ca_root ? !SSL_CTX_load_verify_locations(a->ssl, a->ca_root, NULL)
                   : !SSL_CTX_set_default_verify_paths(a->ssl)) {
        snprintf(err, errlen, "acme: cannot load the CA certificates %s",
                 a->ca_root ? a->ca_root : "(system store)");
        ERR_clear_error();
        goto fail;
    }
    a->n_names = names_of(ac, a->names);
    if (a->n_names && make_placeholder(a, a->names, a->n_names, err, errlen) < 0)
        goto fail;
    if (pthread_create(&a->thread, NULL, manager, a) != 0) {
        snprintf(err, errlen, "acme: cannot start the manager thread");
        goto fail;
    }
    a->thread_started = true;
    return a;
fail:
    acme_free(a);
    return NULL;
}

void pt_acme_update(struct pt_acme *a, const struct pt_acme_settings *ac)
{
    if (!a)
        return;
    char *names[MAX_NAMES];
    static const struct pt_acme_settings none;
    size_t n = names_of(ac ? ac : &none, names);
    pthread_mutex_lock(&a->mu);
    bool same = n == a->n_names;
    for (size_t i = 0; same && i < n; i++)
        same = strcmp(names[i], a->names[i]) == 0;
    pthread_mutex_unlock(&a->mu);
    if (!ac || !ac->storage || strcmp(ac->storage, a->storage) != 0 || !ac->directory ||
        strcmp(ac->directory, a->directory) != 0)
        pt_log_warn("acme: changes to tls.acme take effect after a restart");
    if (same) {
        free_names(names, n);
        return;
    }
    char err[256] = "";
    if (n && make_placeholder(a, names, n, err, sizeof(err)) < 0)
        pt_log_warn("%s", err);
    pthread_mutex_lock(&a->mu);
    free_names(a->names, a->n_names);
    memcpy(a->names, names, n * sizeof(names[0]));
    a->n_names = n;
    a->names_changed = true;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->mu);
    /* the snapshot just built used the previous names' certificates: build one more */
    kill(getpid(), SIGHUP);
}

void pt_acme_stop(struct pt_acme *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->stop = true;
    if (a->cur_fd >= 0)
        shutdown(a->cur_fd, SHUT_RDWR);
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->mu);
    if (a->thread_started)
        pthread_join(a->thread, NULL);
    chal_clear();
    alpn_clear();
    acme_free(a);
}

size_t pt_acme_certificates(struct pt_acme *a, struct pt_tls_cert_settings *out, size_t max)
{
    size_t k = 0;
    if (!a || max == 0)
        return 0;
    char *names[MAX_NAMES];
    size_t n = take_names(a, names, false);
    bool covers = false;
    time_t nb, na;
    if (n && stored_cert(a, names, n, &covers, &nb, &na) == 1) {
        path_in(a, names[0], ".crt", a->out_crt[k], sizeof(a->out_crt[k]));
        path_in(a, names[0], ".key", a->out_key[k], sizeof(a->out_key[k]));
        out[k] = (struct pt_tls_cert_settings){a->out_crt[k], a->out_key[k]};
        k++;
    }
    if (n && !covers && k < max) {
        path_in(a, "placeholder", ".crt", a->out_crt[k], sizeof(a->out_crt[k]));
        path_in(a, "placeholder", ".key", a->out_key[k], sizeof(a->out_key[k]));
        out[k] = (struct pt_tls_cert_settings){a->out_crt[k], a->out_key[k]};
        k++;
    }
    free_names(names, n);
    return k;
}
