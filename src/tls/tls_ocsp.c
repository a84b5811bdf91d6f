/*
 * tls_ocsp.c - OCSP stapling (RFC 6960 responses, RFC 6066 §8 status_request): a process-wide
 * cache of OCSP responses per served certificate, filled by one background thread.
 *
 * Structures:
 *   struct pt_tls_ocsp_entry  one certificate that names an OCSP responder (AIA extension,
 *                             RFC 5280 §4.2.2.1) and has its issuer in the chain: the leaf,
 *                             the issuer, the responder URL, the newest verified response (DER)
 *                             with its thisUpdate/nextUpdate, when to fetch next and the
 *                             backoff. Keyed by the SHA-256 of the leaf's DER, so a context
 *                             rebuilt on reload finds the entry (and its response) again
 *                             instead of fetching anew. Entries are reference-counted by the
 *                             contexts that serve them; one without references is dropped by
 *                             the thread after UNUSED_KEEP_S, long enough to span a reload.
 *   the fetch thread          started by the first pt_tls_ocsp_register (so by pt_tls_ctx_new,
 *                             never by a process without stapling), it sleeps on a condition
 *                             variable until the earliest next_fetch, then POSTs the request
 *                             (RFC 6960 appendix A.1) over plain HTTP with a blocking socket
 *                             and timeouts, outside the lock.
 *
 * Threads: one mutex guards the whole cache. Workers take it in the status callback only to
 * copy the response (a few hundred bytes) out; the fetch thread holds it only between fetches.
 * The network is never touched on a worker, so a slow or dead responder never delays a
 * handshake: it only means no staple.
 *
 * Policy: a response is stapled only while thisUpdate <= now < nextUpdate, with a certificate
 * status of good or revoked (unknown says nothing useful). A response without nextUpdate is
 * treated as valid for DEFAULT_VALIDITY_S. Refresh at half the validity (never sooner than
 * MIN_REFRESH_S after a fetch); a failure retries after a backoff of 5 s doubling up to 1 h,
 * and the previous response keeps being stapled while it is valid. Responses are verified
 * against the issuer from the chain: signed by the issuer itself or by a responder certificate
 * the issuer delegated with the OCSPSigning purpose (RFC 6960 §4.2.2.2), and about this very
 * certificate.
 *
 * Rejected: fetching in pt_tls_ctx_new (a dead responder would stall every reload); https
 * responders (real ones use http, and TLS to a responder whose certificate may itself need
 * OCSP is circular); OpenSSL's OCSP_sendreq_bio (no timeout on the read).
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "core/log.h"
#include "tls/tls_internal.h"

#define DEFAULT_VALIDITY_S 3600
#define MIN_REFRESH_S 60
#define BACKOFF_MIN_S 5
#define BACKOFF_MAX_S 3600
#define UNUSED_KEEP_S 600
#define IO_TIMEOUT_S 10
#define MAX_RESPONSE (64u * 1024u)

struct pt_tls_ocsp_entry {
    unsigned char fp[32]; /* SHA-256 of the leaf's DER: the cache key */
    X509 *leaf;           /* own reference */
    X509 *issuer;         /* own reference */
    char *url;            /* responder, "http://host[:port][/path]" */
    unsigned char *der;   /* newest verified response, or NULL */
    size_t der_len;       /* bytes in der */
    time_t this_update;   /* of der */
    time_t next_update;   /* of der (or this_update + DEFAULT_VALIDITY_S) */
    time_t next_fetch;    /* when the thread fetches next; 0: at once */
    uint32_t backoff_s;   /* current failure backoff; 0 after a success */
    int refs;             /* contexts serving this certificate */
    time_t unused_since;  /* when refs dropped to 0 */
    struct pt_tls_ocsp_entry *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct pt_tls_ocsp_entry *entries; /* guarded by mu */
static bool thread_started;               /* guarded by mu */
static bool thread_stop;                  /* guarded by mu */
static pthread_t thread;

/* ---- policy (pure functions, unit-tested) ---- */

bool pt_tls_ocsp_is_valid(time_t this_update, time_t next_update, time_t now)
{
    return this_update <= now && now < next_update;
}

time_t pt_tls_ocsp_refresh_at(time_t this_update, time_t next_update, time_t now)
{
    time_t at = this_update + (next_update - this_update) / 2;
    if (at < now + MIN_REFRESH_S)
        at = now + MIN_REFRESH_S;
    return at;
}

uint32_t pt_tls_ocsp_backoff(uint32_t prev_s)
{
    if (prev_s < BACKOFF_MIN_S)
        return BACKOFF_MIN_S;
    return prev_s >= BACKOFF_MAX_S / 2 ? BACKOFF_MAX_S : prev_s * 2;
}

/* ---- HTTP (blocking, on the fetch thread only) ---- */

/* Splits "http://host[:port][/path]". Returns 0 or -1 (https and anything else). */
static int split_url(const char *url, char *host, size_t hl, char *port, size_t pl, char *path,
                     size_t tl)
{
    if (strncasecmp(url, "http://", 7) != 0)
        return -1;
    const char *h = url + 7;
    const char *slash = strchr(h, '/');
    size_t authlen = slash ? (size_t)(slash - h) : strlen(h);
    const char *colon = memchr(h, ':', authlen);
    size_t hostlen = colon ? (size_t)(colon - h) : authlen;
    if (hostlen == 0 || hostlen >= hl)
        return -1;
    memcpy(host, h, hostlen);
    host[hostlen] = '\0';
    if (colon) {
        size_t n = authlen - hostlen - 1;
        if (n == 0 || n >= pl)
            return -1;
        memcpy(port, colon + 1, n);
        port[n] = '\0';
    } else {
        snprintf(port, pl, "80");
    }
    if ((size_t)snprintf(path, tl, "%s", slash ? slash : "/") >= tl)
        return -1;
    return 0;
}

static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -1;
    int fd = -1;
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* POSTs req (DER) to url; returns the response body (malloc'd) and its length, or NULL with a
   reason in why. HTTP/1.0, so the body ends with the connection if no Content-Length. */
static unsigned char *http_post(const char *url, const unsigned char *req, size_t req_len,
                                size_t *out_len, char *why, size_t wl)
{
    char host[256], port[16], path[1024], head[1536];
    unsigned char *buf = NULL;
    int fd = -1;
    if (split_url(url, host, sizeof(host), port, sizeof(port), path, sizeof(path)) < 0) {
        snprintf(why, wl, "unsupported responder URL (plain http only)");
        return NULL;
    }
    fd = connect_to(host, port);
    if (fd < 0) {
        snprintf(why, wl, "cannot connect to %.200s:%.15s", host, port);
        return NULL;
    }
    int hn = snprintf(head, sizeof(head),
                      "POST %s HTTP/1.0\r\nHost: %s\r\nContent-Type: application/ocsp-request\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      path, host, req_len);
    if (hn < 0 || (size_t)hn >= sizeof(head) || send_all(fd, head, (size_t)hn) < 0 ||
        send_all(fd, req, req_len) < 0) {
        snprintf(why, wl, "cannot send the request");
        goto fail;
    }
    buf = malloc(MAX_RESPONSE + 1);
    if (!buf)
        goto fail;
    size_t n = 0;
    for (;;) {
        if (n == MAX_RESPONSE) {
            snprintf(why, wl, "response over %u bytes", MAX_RESPONSE);
            goto fail;
        }
        ssize_t r = recv(fd, buf + n, MAX_RESPONSE - n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(why, wl, "read failed (%s)", errno == EAGAIN ? "timeout" : "error");
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    if (n < 12 || strncmp((char *)buf, "HTTP/1.", 7) != 0 || strncmp((char *)buf + 9, "200", 3)) {
        snprintf(why, wl, "responder answered %.12s", n ? (char *)buf : "nothing");
        goto fail;
    }
    unsigned char *body = memmem(buf, n, "\r\n\r\n", 4);
    if (!body) {
        snprintf(why, wl, "truncated HTTP response");
        goto fail;
    }
    body += 4;
    size_t blen = n - (size_t)(body - buf);
    memmove(buf, body, blen);
    close(fd);
    *out_len = blen;
    return buf;
fail:
    free(buf);
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* ---- verification ---- */

static time_t asn1_time(const ASN1_GENERALIZEDTIME *t)
{
    struct tm tm;
    if (!t || !ASN1_TIME_to_tm(t, &tm))
        return (time_t)-1;
    return timegm(&tm);
}

int pt_tls_ocsp_check(X509 *leaf, X509 *issuer, const unsigned char *der, size_t len,
                      time_t *this_update, time_t *next_update, char *why, size_t wl)
{
    int rc = -1;
    const unsigned char *p = der;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    OCSP_BASICRESP *bs = NULL;
    OCSP_CERTID *id = NULL;
    STACK_OF(X509) *certs = NULL;
    X509_STORE *store = NULL;

    if (!resp || p != der + len) {
        snprintf(why, wl, "not an OCSP response");
        goto out;
    }
    int st = OCSP_response_status(resp);
    if (st != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        snprintf(why, wl, "response status %s", OCSP_response_status_str(st));
        goto out;
    }
    bs = OCSP_response_get1_basic(resp);
    certs = sk_X509_new_null();
    store = X509_STORE_new();
    if (!bs || !certs || !store || !sk_X509_push(certs, issuer)) {
        snprintf(why, wl, "bad basic response");
        goto out;
    }
    /* The issuer is the trust anchor even when it is an intermediate. */
    if (!X509_STORE_add_cert(store, issuer) ||
        !X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN)) {
        snprintf(why, wl, "out of memory");
        goto out;
    }
    if (OCSP_basic_verify(bs, certs, store, 0) <= 0) {
        snprintf(why, wl, "signature does not verify against the issuer (%s)", pt_tls_ssl_reason());
        goto out;
    }
    id = OCSP_cert_to_id(EVP_sha1(), leaf, issuer);
    int status = -1, reason = 0;
    ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
    if (!id || !OCSP_resp_find_status(bs, id, &status, &reason, &rev, &thisupd, &nextupd)) {
        snprintf(why, wl, "response is not about this certificate");
        goto out;
    }
    if (status != V_OCSP_CERTSTATUS_GOOD && status != V_OCSP_CERTSTATUS_REVOKED) {
        snprintf(why, wl, "certificate status unknown to the responder");
        goto out;
    }
    *this_update = asn1_time(thisupd);
    *next_update = nextupd ? asn1_time(nextupd) : *this_update + DEFAULT_VALIDITY_S;
    if (*this_update == (time_t)-1 || *next_update == (time_t)-1 || *next_update <= *this_update) {
        snprintf(why, wl, "bad thisUpdate/nextUpdate");
        goto out;
    }
    rc = status == V_OCSP_CERTSTATUS_REVOKED ? 1 : 0;
out:
    ERR_clear_error();
    OCSP_CERTID_free(id);
    X509_STORE_free(store);
    sk_X509_free(certs);
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    return rc;
}

/* One fetch of e's response; leaf, issuer and url are immutable so no lock is needed. Returns
   the verified DER (malloc'd) or NULL with why. */
static unsigned char *fetch(const struct pt_tls_ocsp_entry *e, size_t *len, time_t *tu, time_t *nu,
                            char *why, size_t wl)
{
    unsigned char *reqder = NULL, *der = NULL;
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    OCSP_CERTID *id = OCSP_cert_to_id(EVP_sha1(), e->leaf, e->issuer);
    if (!req || !id || !OCSP_request_add0_id(req, id)) {
        OCSP_CERTID_free(id);
        snprintf(why, wl, "cannot build the request");
        goto out;
    }
    int rl = i2d_OCSP_REQUEST(req, &reqder);
    if (rl <= 0) {
        snprintf(why, wl, "cannot encode the request");
        goto out;
    }
    der = http_post(e->url, reqder, (size_t)rl, len, why, wl);
    if (!der)
        goto out;
    int rc = pt_tls_ocsp_check(e->leaf, e->issuer, der, *len, tu, nu, why, wl);
    if (rc < 0) {
        free(der);
        der = NULL;
    } else if (rc == 1) {
        pt_log_warn("ocsp: %s reports the certificate as REVOKED", e->url);
    }
out:
    ERR_clear_error();
    OPENSSL_free(reqder);
    OCSP_REQUEST_free(req);
    return der;
}

static void entry_free(struct pt_tls_ocsp_entry *e)
{
    X509_free(e->leaf);
    X509_free(e->issuer);
    free(e->url);
    free(e->der);
    free(e);
}

static void *fetch_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!thread_stop) {
        time_t now = time(NULL);
        time_t wake = now + UNUSED_KEEP_S;
        struct pt_tls_ocsp_entry *due = NULL;
        for (struct pt_tls_ocsp_entry **pp = &entries; *pp;) {
            struct pt_tls_ocsp_entry *e = *pp;
            if (e->refs == 0 && now - e->unused_since >= UNUSED_KEEP_S) {
                *pp = e->next;
                entry_free(e);
                continue;
            }
            if (e->refs > 0 && !due && e->next_fetch <= now)
                due = e;
            else if (e->refs > 0 && e->next_fetch < wake)
                wake = e->next_fetch;
            pp = &e->next;
        }
        if (!due) {
            struct timespec ts = {.tv_sec = wake};
            pthread_cond_timedwait(&cond, &mu, &ts);
            continue;
        }
        pthread_mutex_unlock(&mu);

        char why[512] = "";
        size_t len = 0;
        time_t tu = 0, nu = 0;
        unsigned char *der = fetch(due, &len, &tu, &nu, why, sizeof(why));
        now = time(NULL);

        pthread_mutex_lock(&mu);
        if (der) {
            free(due->der);
            due->der = der;
            due->der_len = len;
            due->this_update = tu;
            due->next_update = nu;
            due->backoff_s = 0;
            due->next_fetch = pt_tls_ocsp_refresh_at(tu, nu, now);
            pt_log_info("ocsp: response from %s stapled, valid %lds", due->url, (long)(nu - now));
        } else {
            due->backoff_s = pt_tls_ocsp_backoff(due->backoff_s);
            due->next_fetch = now + due->backoff_s;
            pt_log_warn("ocsp: %s: %s; retrying in %us", due->url, why, due->backoff_s);
        }
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

/* ---- registration (main thread) and stapling (workers) ---- */

/* The issuer of leaf among chain, or NULL. */
static X509 *find_issuer(X509 *leaf, STACK_OF(X509) * chain)
{
    for (int i = 0; chain && i < sk_X509_num(chain); i++) {
        X509 *c = sk_X509_value(chain, i);
        if (X509_check_issued(c, leaf) == X509_V_OK)
            return c;
    }
    return NULL;
}

struct pt_tls_ocsp_entry *pt_tls_ocsp_register(X509 *leaf, STACK_OF(X509) * chain)
{
    STACK_OF(OPENSSL_STRING) *urls = X509_get1_ocsp(leaf);
    X509 *issuer = find_issuer(leaf, chain);
    struct pt_tls_ocsp_entry *e = NULL;
    unsigned char fp[32];
    unsigned fl = 0;
    if (!urls || sk_OPENSSL_STRING_num(urls) == 0 || !issuer ||
        !X509_digest(leaf, EVP_sha256(), fp, &fl) || fl != sizeof(fp))
        goto out;
    const char *url = sk_OPENSSL_STRING_value(urls, 0);
    pthread_mutex_lock(&mu);
    for (e = entries; e; e = e->next)
        if (memcmp(e->fp, fp, sizeof(fp)) == 0)
            break;
    if (e) {
        e->refs++;
    } else if ((e = calloc(1, sizeof(*e))) != NULL) {
        memcpy(e->fp, fp, sizeof(fp));
        e->url = strdup(url);
        if (!e->url || !X509_up_ref(leaf)) {
            free(e->url);
            free(e);
            e = NULL;
        } else {
            e->leaf = leaf;
            X509_up_ref(issuer);
            e->issuer = issuer;
            e->refs = 1;
            e->next = entries;
            entries = e;
            if (!thread_started) {
                thread_stop = false;
                thread_started = pthread_create(&thread, NULL, fetch_thread, NULL) == 0;
                if (!thread_started)
                    pt_log_warn("ocsp: cannot start the fetch thread; no stapling");
            }
            pthread_cond_signal(&cond);
        }
    }
    pthread_mutex_unlock(&mu);
out:
    ERR_clear_error();
    X509_email_free(urls);
    return e;
}

void pt_tls_ocsp_unref(struct pt_tls_ocsp_entry *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&mu);
    if (--e->refs == 0)
        e->unused_since = time(NULL);
    pthread_mutex_unlock(&mu);
}

int pt_tls_ocsp_staple(struct pt_tls_ocsp_entry *e, SSL *s)
{
    unsigned char *copy = NULL;
    size_t len = 0;
    pthread_mutex_lock(&mu);
    if (e->der && pt_tls_ocsp_is_valid(e->this_update, e->next_update, time(NULL))) {
        copy = OPENSSL_malloc(e->der_len);
        if (copy) {
            memcpy(copy, e->der, e->der_len);
            len = e->der_len;
        }
    }
    pthread_mutex_unlock(&mu);
    if (!copy)
        return -1;
    if (!SSL_set_tlsext_status_ocsp_resp(s, copy, (long)len)) {
        OPENSSL_free(copy);
        return -1;
    }
    return 0;
}

bool pt_tls_ocsp_has_response(const struct pt_tls_ocsp_entry *e)
{
    pthread_mutex_lock(&mu);
    bool ok = e->der && pt_tls_ocsp_is_valid(e->this_update, e->next_update, time(NULL));
    pthread_mutex_unlock(&mu);
    return ok;
}

void pt_tls_ocsp_shutdown(void)
{
    pthread_mutex_lock(&mu);
    bool started = thread_started;
    thread_stop = true;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&mu);
    if (started)
        pthread_join(thread, NULL);
    pthread_mutex_lock(&mu);
    thread_started = false;
    while (entries) {
        struct pt_tls_ocsp_entry *e = entries;
        entries = e->next;
        entry_free(e);
    }
    pthread_mutex_unlock(&mu);
}
