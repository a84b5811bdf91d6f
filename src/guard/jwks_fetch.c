/*
 * jwks_fetch.c - jwks_url: a JWKS fetched by a background thread, refreshed, shared.
 *
 * One struct pt_jwks_src per URL (and CA file) for the whole process, in a registry guarded by its own
 * mutex and reference-counted by the snapshots whose jwt: names the URL, so a reload keeps
 * the keys already fetched (the new snapshot takes its reference before the old one drops
 * its). Each source has one thread, modelled on the ACME manager's (tls/acme.c): blocking
 * sockets with SO_RCVTIMEO/SO_SNDTIMEO, off the request path, so a slow key server never
 * delays a request. The thread fetches at start, then every refresh; a failed fetch keeps
 * the keys it had and is retried after 1 s, doubling up to the refresh period. A worker that
 * meets an unknown kid kicks the thread (at most once per 10 s) and answers its request with
 * what it has: the request is never held for the network.
 *
 * Workers read the current set under the source's mutex and take a reference
 * (pt_jwks_src_keys): a fetch swaps in a new set while requests still verify with the old.
 * Stopping sets stop, shuts the socket in use down (a blocked read ends at once) and joins.
 *
 * The client is deliberately small: GET with Connection: close, HTTP/1.x status 200 only,
 * the answer read whole (up to 1 MiB) and parsed with http/h1_parse.h's strict parsers
 * (Content-Length, chunked or read-to-close bodies); https verifies the server's
 * certificate against the system store (or the jwks_ca file) and its name (SSL_set1_host) with
 * SNI. A fetched set is parsed leniently: keys Portico cannot use (use "enc", other curves or
 * algorithms) are skipped, as an identity provider's set may hold them; a set with no usable
 * key keeps the previous one.
 */
#include "guard/jwks_fetch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/common.h"
#include "core/log.h"
#include "http/h1_parse.h"

#define BODY_MAX (1u << 20)
#define KICK_MIN_MS 10000u
#define RETRY_MIN_MS 1000u

struct pt_jwks_src {
    char *url;
    char *ca; /* PEM CA file, or NULL: the system's store */
    uint32_t refresh_ms, timeout_ms;
    unsigned refs; /* under registry.mu */
    pthread_t thread;
    pthread_mutex_t mu; /* the fields below */
    pthread_cond_t cv;
    struct pt_jwt_keyset *cur; /* NULL until a fetch succeeded */
    bool stop, kicked;
    uint64_t last_kick_ms;
    int fd; /* the socket of the fetch in progress, or -1 */
    struct pt_jwks_src *next;
};

static struct {
    pthread_mutex_t mu;
    struct pt_jwks_src *head;
} registry = {PTHREAD_MUTEX_INITIALIZER, NULL};

/* ---- the client ---- */

struct url_parts {
    bool is_https;
    char host[256];
    char port[8];
    const char *path;
};

static int split(const char *url, struct url_parts *u)
{
    const char *h;
    if (strncasecmp(url, "https://", 8) == 0) {
        u->is_https = true;
        h = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        u->is_https = false;
        h = url + 7;
    } else {
        return -1;
    }
    size_t al = strcspn(h, "/?#");
    u->path = h[al] == '/' ? h + al : "/";
    const char *end = h + al, *port = NULL;
    if (h[0] == '[') {
        const char *rb = memchr(h, ']', al);
        if (!rb || (size_t)(rb - h - 1) >= sizeof(u->host))
            return -1;
        snprintf(u->host, sizeof(u->host), "%.*s", (int)(rb - h - 1), h + 1);
        port = rb + 1 < end && rb[1] == ':' ? rb + 2 : NULL;
    } else {
        const char *colon = memchr(h, ':', al);
        size_t hl = colon ? (size_t)(colon - h) : al;
        if (hl == 0 || hl >= sizeof(u->host))
            return -1;
        snprintf(u->host, sizeof(u->host), "%.*s", (int)hl, h);
        port = colon ? colon + 1 : NULL;
    }
    if (port && (size_t)(end - port) >= sizeof(u->port))
        return -1;
    snprintf(u->port, sizeof(u->port), "%.*s", port ? (int)(end - port) : 0, port ? port : "");
    if (!port)
        snprintf(u->port, sizeof(u->port), "%s", u->is_https ? "443" : "80");
    return 0;
}

static void set_fd(struct pt_jwks_src *s, int fd)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->fd = fd;
    pthread_mutex_unlock(&s->mu);
}

static int dial(struct pt_jwks_src *s, const struct url_parts *u, uint32_t timeout_ms)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(u->host, u->port, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        set_fd(s, fd);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            set_fd(s, -1);
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

/* Takes the body of a whole response buf[0..used) with the strict HTTP/1.1 parsers
   (http/h1_parse.h): status 200, then Content-Length, chunked, or everything to the close.
   NULL with why. */
static char *take_body(char *buf, size_t used, size_t *len, char *why, size_t wl)
{
    struct pt_field fields[64];
    struct pt_h1_response resp = {.headers = fields, .num_headers = PT_ARRAY_LEN(fields)};
    size_t scanned = 0;
    ssize_t hl = pt_h1_find_head_end(buf, used, &scanned);
    if (hl <= 0 || pt_h1_parse_response(buf, (size_t)hl, &resp) < 0) {
        snprintf(why, wl, "not a valid HTTP/1.x response");
        return NULL;
    }
    if (resp.status != 200) {
        snprintf(why, wl, "HTTP status %d", resp.status);
        return NULL;
    }
    char *start = buf + hl;
    size_t blen = used - (size_t)hl;
    if (resp.framing.is_chunked) {
        struct pt_h1_chunked d;
        memset(&d, 0, sizeof(d));
        if (pt_h1_chunked_decode(&d, start, &blen) < 0) {
            snprintf(why, wl, "bad or cut chunked body");
            return NULL;
        }
    } else if (resp.framing.content_length >= 0) {
        if ((uint64_t)resp.framing.content_length > blen) {
            snprintf(why, wl, "body shorter than its Content-Length");
            return NULL;
        }
        blen = (size_t)resp.framing.content_length;
    }
    char *body = malloc(blen + 1);
    if (!body) {
        snprintf(why, wl, "out of memory");
        return NULL;
    }
    memcpy(body, start, blen);
    body[blen] = '\0';
    *len = blen;
    return body;
}

static char *get(struct pt_jwks_src *s, const char *url, const char *ca, uint32_t timeout_ms,
                 size_t *len, char *why, size_t wl)
{
    struct url_parts u;
    char req[2048];
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    char *buf = NULL, *body = NULL;
    int fd = -1;
    if (split(url, &u) < 0) {
        snprintf(why, wl, "bad URL");
        return NULL;
    }
    bool v6 = strchr(u.host, ':') != NULL;
    int rl = snprintf(req, sizeof(req),
                      "GET %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: portico-jwks\r\n"
                      "Accept: application/jwk-set+json, application/json\r\n"
                      "Connection: close\r\n\r\n",
                      u.path, v6 ? "[" : "", u.host, v6 ? "]" : "", u.port);
    if (rl < 0 || (size_t)rl >= sizeof(req)) {
        snprintf(why, wl, "URL too long");
        return NULL;
    }
    fd = dial(s, &u, timeout_ms);
    if (fd < 0) {
        snprintf(why, wl, "cannot connect to %.120s port %s", u.host, u.port);
        goto out;
    }
    if (u.is_https) {
        ctx = SSL_CTX_new(TLS_client_method());
        if (!ctx || (ca ? SSL_CTX_load_verify_locations(ctx, ca, NULL)
                        : SSL_CTX_set_default_verify_paths(ctx)) != 1)
            goto tls_fail;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        ssl = SSL_new(ctx);
        struct in6_addr tmp;
        bool is_ip = inet_pton(AF_INET, u.host, &tmp) == 1 || inet_pton(AF_INET6, u.host, &tmp);
        if (!ssl || !SSL_set_fd(ssl, fd) || (!is_ip && !SSL_set_tlsext_host_name(ssl, u.host)) ||
            !(is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), u.host)
                    : SSL_set1_host(ssl, u.host)) ||
            SSL_connect(ssl) != 1)
            goto tls_fail;
    }
    if ((ssl ? SSL_write(ssl, req, rl) : (int)send(fd, req, (size_t)rl, MSG_NOSIGNAL)) != rl) {
        snprintf(why, wl, "cannot send the request");
        goto out;
    }
    buf = malloc(BODY_MAX + 1);
    size_t used = 0;
    while (buf) {
        if (used >= BODY_MAX) {
            snprintf(why, wl, "answer over %u bytes", BODY_MAX);
            goto out;
        }
        ssize_t n = ssl ? SSL_read(ssl, buf + used, (int)(BODY_MAX - used))
                        : recv(fd, buf + used, BODY_MAX - used, 0);
        if (n < 0 && !ssl) {
            snprintf(why, wl, "read: %s", strerror(errno));
            goto out;
        }
        if (n <= 0)
            break;
        used += (size_t)n;
    }
    if (!buf) {
        snprintf(why, wl, "out of memory");
        goto out;
    }
    buf[used] = '\0';
    body = take_body(buf, used, len, why, wl);
    goto out;
tls_fail:
    snprintf(why, wl, "TLS with %.120s failed: %.80s", u.host,
             ERR_reason_error_string(ERR_peek_last_error())
                 ? ERR_reason_error_string(ERR_peek_last_error())
                 : "handshake");
out:
    if (ssl) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    SSL_CTX_free(ctx);
    if (fd >= 0) {
        set_fd(s, -1);
        close(fd);
    }
    free(buf);
    ERR_clear_error();
    return body;
}

/* ---- the source ---- */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool fetch(struct pt_jwks_src *s)
{
    char why[256] = "";
    size_t len = 0;
    char *body = get(s, s->url, s->ca, s->timeout_ms, &len, why, sizeof(why));
    struct pt_jwt_keyset *ks = body ? pt_jwt_keyset_parse(body, len, true, why, sizeof(why)) : NULL;
    free(body);
    if (!ks) {
        pthread_mutex_lock(&s->mu);
        bool had = s->cur != NULL;
        pthread_mutex_unlock(&s->mu);
        pt_log_warn("jwt: jwks_url %s: %s (%s)", s->url, why,
                    had ? "keeping the keys it had" : "no keys yet: its routes answer 503");
        return false;
    }
    pthread_mutex_lock(&s->mu);
    struct pt_jwt_keyset *old = s->cur;
    bool first = old == NULL;
    s->cur = ks;
    pthread_mutex_unlock(&s->mu);
    pt_jwt_keyset_unref(old);
    if (first)
        pt_log_info("jwt: jwks_url %s: %zu keys", s->url, ks->n);
    return true;
}

static void *run(void *arg)
{
    struct pt_jwks_src *s = arg;
    uint32_t retry_ms = RETRY_MIN_MS;
    for (;;) {
        bool ok = fetch(s);
        uint32_t wait_ms = ok ? s->refresh_ms : retry_ms;
        retry_ms =
            ok ? RETRY_MIN_MS : (retry_ms * 2 < s->refresh_ms ? retry_ms * 2 : s->refresh_ms);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += wait_ms / 1000;
        until.tv_nsec += (long)(wait_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&s->mu);
        while (!s->stop && !s->kicked)
            if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT)
                break;
        bool stop = s->stop;
        s->kicked = false;
        pthread_mutex_unlock(&s->mu);
        if (stop)
            return NULL;
    }
}

static bool same_ca(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

struct pt_jwks_src *pt_jwks_src_get(const char *url, const char *ca, uint32_t refresh_ms,
                                    uint32_t timeout_ms)
{
    pthread_mutex_lock(&registry.mu);
    struct pt_jwks_src *s = registry.head;
    while (s && (strcmp(s->url, url) != 0 || !same_ca(s->ca, ca)))
        s = s->next;
    if (s) {
        s->refs++;
        pthread_mutex_lock(&s->mu);
        if (refresh_ms < s->refresh_ms)
            s->refresh_ms = refresh_ms;
        s->timeout_ms = timeout_ms;
        pthread_mutex_unlock(&s->mu);
        goto out;
    }
    s = calloc(1, sizeof(*s));
    if (!s || !(s->url = strdup(url)) || (ca && !(s->ca = strdup(ca))))
        goto fail;
    s->refresh_ms = refresh_ms;
    s->timeout_ms = timeout_ms;
    s->refs = 1;
    s->fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (pthread_create(&s->thread, NULL, run, s) != 0) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        goto fail;
    }
    s->next = registry.head;
    registry.head = s;
    goto out;
fail:
    if (s) {
        free(s->url);
        free(s->ca);
    }
    free(s);
    s = NULL;
out:
    pthread_mutex_unlock(&registry.mu);
    return s;
}

void pt_jwks_src_put(struct pt_jwks_src *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&registry.mu);
    bool last = --s->refs == 0;
    if (last)
        for (struct pt_jwks_src **p = &registry.head; *p; p = &(*p)->next)
            if (*p == s) {
                *p = s->next;
                break;
            }
    pthread_mutex_unlock(&registry.mu);
    if (!last)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    if (s->fd >= 0)
        shutdown(s->fd, SHUT_RDWR);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pt_jwt_keyset_unref(s->cur);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->url);
    free(s->ca);
    free(s);
}

struct pt_jwt_keyset *pt_jwks_src_keys(struct pt_jwks_src *s)
{
    pthread_mutex_lock(&s->mu);
    struct pt_jwt_keyset *ks = s->cur;
    if (ks)
        pt_jwt_keyset_ref(ks);
    pthread_mutex_unlock(&s->mu);
    return ks;
}

void pt_jwks_src_kick(struct pt_jwks_src *s)
{
    uint64_t now = mono_ms();
    pthread_mutex_lock(&s->mu);
    if (s->last_kick_ms == 0 || now - s->last_kick_ms >= KICK_MIN_MS) {
        s->last_kick_ms = now;
        s->kicked = true;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
}
