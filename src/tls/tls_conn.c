/*
 * tls_conn.c - one non-blocking TLS connection over a socket the caller owns.
 *
 * The SSL object reads and writes the fd through a socket BIO (BIO_NOCLOSE: the caller keeps
 * the fd). Every call runs until OpenSSL reports that the socket said EAGAIN, so with
 * edge-triggered epoll a WANT_READ / WANT_WRITE answer means "the edge you need next will
 * come": the caller clears its readiness flag for that direction and waits. Which direction is
 * recorded in c->want because it is not always the obvious one: SSL_read may have to write
 * (a TLS 1.3 KeyUpdate answer, a pending alert) and SSL_write may have to read (a handshake
 * message arriving first).
 *
 * Writes. SSL_write seals at most one record per call here (16 KiB of plaintext, the TLS
 * maximum), so small iovecs (a response head, chunk framing, a body slice) are gathered into a
 * 16 KiB coalescing buffer first instead of going out as tiny records, each costing a header,
 * a MAC and a syscall. A first iovec of a whole record or more is sealed in place without a
 * copy. When the socket is full, OpenSSL keeps the sealed record and demands that the next
 * SSL_write present the same bytes again (at any address, thanks to
 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER); pend_len remembers the length so the retry asks for
 * exactly that record. The coalescing buffer comes from the thread's buffer cache
 * (core/buf.h, PT_BUF_SMALL is one record) and goes back as soon as nothing is pending, and
 * SSL_MODE_RELEASE_BUFFERS gives OpenSSL's own record buffers back when idle, so an idle TLS
 * connection holds only the SSL object (a few KiB).
 *
 * End of stream: a close_notify reads as 0 with is_clean_close; a TCP close without it also
 * reads as 0 (most HTTPS clients close that way) but is_clean_close stays false so a
 * close-delimited response can be recognised as truncated (RFC 8446 §6.1).
 *
 * Errors are reported once, as PT_ERR with a static or owned one-line reason; the OpenSSL error
 * queue of the thread is always left empty so one connection's failure never shows up as
 * another's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "core/counters.h"
#include "tls/tls_internal.h"

struct pt_tls_conn *pt_tls_server_new(struct pt_tls_ctx *ctx, int fd)
{
    struct pt_tls_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->want = PT_TLS_WANT_READ;
    c->ssl = SSL_new(ctx->groups[0].ssl_ctx);
    if (!c->ssl || !SSL_set_fd(c->ssl, fd)) {
        ERR_clear_error();
        SSL_free(c->ssl);
        free(c);
        return NULL;
    }
    SSL_set_app_data(c->ssl, c);
    SSL_set_accept_state(c->ssl);
    pt_tls_ctx_ref(ctx);
    c->ctx = ctx;
    return c;
}

void pt_tls_free(struct pt_tls_conn *c)
{
    if (!c)
        return;
    /* OpenSSL drops the session of a connection freed without close_notify sent (it assumes
       a failure), which would cost every pooled upstream connection and every client that
       just closes its socket their resumption. Only a failed connection loses its session. */
    if (c->ssl && c->is_done && !c->is_failed)
        SSL_set_shutdown(c->ssl, SSL_get_shutdown(c->ssl) | SSL_SENT_SHUTDOWN);
    SSL_free(c->ssl);
    ERR_clear_error();
    pt_buf_release(&c->wbuf);
    if (c->err_owned)
        free(c->err_owned);
    free(c->host);
    free(c->session_key);
    pt_tls_ctx_unref(c->ctx);
    pt_tls_client_ctx_unref(c->cc);
    free(c);
}

static const char *sys_reason(int e)
{
    switch (e) {
    case 0:
        return "connection closed by peer";
    case ECONNRESET:
        return "connection reset by peer";
    case EPIPE:
        return "connection closed by peer (broken pipe)";
    case ETIMEDOUT:
        return "connection timed out";
    case ENOMEM:
        return "out of memory";
    default:
        return "socket error";
    }
}

/* Reason of an SSL_ERROR_SSL failure; leaves the thread's error queue empty. */
static const char *ssl_reason(struct pt_tls_conn *c, unsigned long e)
{
    const char *r = NULL;
    if (ERR_GET_LIB(e) == ERR_LIB_SSL) {
        switch (ERR_GET_REASON(e)) {
        case SSL_R_HTTP_REQUEST:
            r = "plain HTTP request on a TLS port";
            break;
        case SSL_R_HTTPS_PROXY_REQUEST:
            r = "HTTP proxy request on a TLS port";
            break;
        case SSL_R_UNEXPECTED_EOF_WHILE_READING:
            r = c->is_done ? "connection closed without close_notify"
                           : "connection closed during the handshake";
            break;
        case SSL_R_CERTIFICATE_VERIFY_FAILED: {
            long v = SSL_get_verify_result(c->ssl);
            const char *why = X509_verify_cert_error_string(v);
            char *m = malloc(160);
            if (m) {
                snprintf(m, 160, "certificate verify failed: %s", why ? why : "unknown");
                free(c->err_owned);
                c->err_owned = m;
                r = m;
            } else {
                r = "certificate verify failed";
            }
            break;
        }
        default:
            break;
        }
    }
    if (!r)
        r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r ? r : "TLS protocol error";
}

/* Maps a failed SSL_* call to PT_TLS_WANT_READ / PT_TLS_WANT_WRITE, PT_DONE (the peer closed
   the stream) or PT_ERR (fatal; c->err set). */
static int io_result(struct pt_tls_conn *c, int ret)
{
    int saved_errno = errno;
    int e = SSL_get_error(c->ssl, ret);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        c->want = PT_TLS_WANT_READ;
        return PT_TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        c->want = PT_TLS_WANT_WRITE;
        return PT_TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        ERR_clear_error();
        return PT_DONE;
    case SSL_ERROR_SYSCALL:
        c->err = sys_reason(ERR_peek_error() ? 0 : saved_errno);
        ERR_clear_error();
        break;
    case SSL_ERROR_SSL: {
        unsigned long ec = ERR_peek_last_error();
        if (c->is_done && ERR_GET_LIB(ec) == ERR_LIB_SSL &&
            ERR_GET_REASON(ec) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            ERR_clear_error();
            c->is_failed = true; /* no close_notify may follow a fatal state */
            return PT_DONE;
        }
        c->err = ssl_reason(c, ec);
        break;
    }
    default:
        c->err = "unexpected TLS state";
        ERR_clear_error();
        break;
    }
    c->is_failed = true;
    return PT_ERR;
}

static inline void clear_queue(void)
{
    if (PT_UNLIKELY(ERR_peek_error() != 0))
        ERR_clear_error();
}

int pt_tls_handshake(struct pt_tls_conn *c)
{
    if (c->is_done)
        return PT_OK;
    if (c->is_failed)
        return PT_ERR;
    clear_queue();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        c->is_done = true;
        if (SSL_is_server(c->ssl)) { /* counted for clients' handshakes only */
            pt_ctr_add_self(PT_CTR_TLS_HANDSHAKES, 1);
            if (SSL_session_reused(c->ssl) == 1)
                pt_ctr_add_self(PT_CTR_TLS_RESUMED, 1);
        }
        return PT_OK;
    }
    int rc = io_result(c, r);
    if (rc == PT_DONE) {
        c->err = "connection closed during the handshake";
        c->is_failed = true;
        rc = PT_ERR;
    }
    if (rc == PT_ERR && SSL_is_server(c->ssl))
        pt_ctr_add_self(PT_CTR_TLS_FAILED, 1);
    return rc;
}

/* Runs the handshake for read/writev: 0 when done, else their return value. */
static ssize_t need_handshake(struct pt_tls_conn *c)
{
    int rc = pt_tls_handshake(c);
    if (rc == PT_OK)
        return 0;
    return rc == PT_ERR ? PT_ERR : -EAGAIN;
}

ssize_t pt_tls_read(struct pt_tls_conn *c, void *buf, size_t len)
{
    if (PT_UNLIKELY(!c->is_done)) {
        ssize_t h = need_handshake(c);
        if (h != 0)
            return h;
    }
    if (c->is_eof)
        return 0;
    if (c->is_failed)
        return PT_ERR;
    if (len == 0)
        return 0;
    clear_queue();
    size_t got = 0;
    if (SSL_read_ex(c->ssl, buf, len, &got) == 1)
        return (ssize_t)got;
    int rc = io_result(c, 0);
    if (rc == PT_DONE) {
        c->is_eof = true;
        c->is_clean_close = c->got_close_notify && !c->is_failed;
        return 0;
    }
    return rc == PT_ERR ? PT_ERR : -EAGAIN;
}

bool pt_tls_pending(const struct pt_tls_conn *c)
{
    return SSL_pending(c->ssl) > 0;
}

/* Copies len bytes starting at iov[i] offset off into dst. */
static void gather(char *dst, const struct iovec *iov, int n, int i, size_t off, size_t len)
{
    while (len > 0 && i < n) {
        size_t take = PT_MIN(iov[i].iov_len - off, len);
        memcpy(dst, (const char *)iov[i].iov_base + off, take);
        dst += take;
        len -= take;
        i++;
        off = 0;
    }
}

ssize_t pt_tls_writev(struct pt_tls_conn *c, const struct iovec *iov, int n)
{
    if (PT_UNLIKELY(!c->is_done)) {
        ssize_t h = need_handshake(c);
        if (h != 0)
            return h;
    }
    if (c->is_failed)
        return PT_ERR;
    size_t total = 0;
    for (int k = 0; k < n; k++)
        total += iov[k].iov_len;
    if (total == 0)
        return 0;
    if (c->pend_len > total) {
        c->err = "TLS write retried with fewer bytes than the pending record";
        c->is_failed = true;
        return PT_ERR;
    }
    clear_queue();

    size_t done = 0; /* bytes taken this call */
    int i = 0;       /* position in iov: iov[i] + off */
    size_t off = 0;
    int rc = PT_OK;
    while (done < total) {
        while (i < n && off == iov[i].iov_len) {
            i++;
            off = 0;
        }
        size_t len = c->pend_len ? c->pend_len : PT_MIN(total - done, (size_t)PT_TLS_RECORD_MAX);
        const void *p;
        if (iov[i].iov_len - off >= len) {
            p = (const char *)iov[i].iov_base + off; /* sealed in place */
        } else {
            if (!c->wbuf.data && pt_buf_alloc(&c->wbuf, PT_BUF_SMALL) < 0) {
                rc = -ENOMEM;
                break;
            }
            gather(c->wbuf.data, iov, n, i, off, len);
            p = c->wbuf.data;
        }
        size_t w = 0;
        if (SSL_write_ex(c->ssl, p, len, &w) != 1) {
            rc = io_result(c, 0);
            if (rc == PT_TLS_WANT_READ || rc == PT_TLS_WANT_WRITE)
                c->pend_len = (uint32_t)len;
            break;
        }
        c->pend_len = 0;
        done += w;
        off += w;
        while (i < n && off >= iov[i].iov_len && off > 0) {
            off -= iov[i].iov_len;
            i++;
        }
    }
    if (c->pend_len == 0 && c->wbuf.data)
        pt_buf_release(&c->wbuf);
    if (done > 0)
        return (ssize_t)done;
    if (rc == PT_TLS_WANT_READ || rc == PT_TLS_WANT_WRITE)
        return -EAGAIN;
    if (rc == -ENOMEM) {
        c->err = "out of memory";
        return -ENOMEM;
    }
    if (rc == PT_DONE) { /* the peer closed its side; writing on is still an error for us */
        c->err = "connection closed by peer";
        c->is_failed = true;
    }
    return PT_ERR;
}

int pt_tls_shutdown(struct pt_tls_conn *c)
{
    if (c->is_failed || !c->is_done || c->is_shutdown_sent)
        return PT_OK;
    clear_queue();
    int r = SSL_shutdown(c->ssl);
    if (r >= 0) { /* 0: ours sent, the peer's not read (we do not wait for it); 1: both */
        c->is_shutdown_sent = true;
        return PT_OK;
    }
    int rc = io_result(c, r);
    if (rc == PT_DONE) {
        c->is_shutdown_sent = true;
        return PT_OK;
    }
    return rc;
}

int pt_tls_conn_want(const struct pt_tls_conn *c)
{
    return c->want;
}

const char *pt_tls_conn_error(const struct pt_tls_conn *c)
{
    return c->err ? c->err : "";
}

bool pt_tls_conn_is_clean_close(const struct pt_tls_conn *c)
{
    return c->is_clean_close;
}

bool pt_tls_conn_is_handshake_done(const struct pt_tls_conn *c)
{
    return c->is_done;
}

const char *pt_tls_alpn(const struct pt_tls_conn *c, size_t *len)
{
    const unsigned char *p = NULL;
    unsigned l = 0;
    SSL_get0_alpn_selected(c->ssl, &p, &l);
    *len = l;
    return l ? (const char *)p : NULL;
}

const char *pt_tls_sni(const struct pt_tls_conn *c)
{
    if (c->host)
        return c->host;
    return SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
}

const char *pt_tls_version(const struct pt_tls_conn *c)
{
    return SSL_get_version(c->ssl);
}

const char *pt_tls_cipher(const struct pt_tls_conn *c)
{
    return SSL_get_cipher_name(c->ssl);
}

bool pt_tls_is_resumed(const struct pt_tls_conn *c)
{
    return SSL_session_reused(c->ssl) == 1;
}

static X509 *verified_peer(const struct pt_tls_conn *c)
{
    if (!c->is_done || c->is_failed)
        return NULL;
    X509 *x = SSL_get0_peer_certificate(c->ssl);
    if (!x || SSL_get_verify_result(c->ssl) != X509_V_OK)
        return NULL;
    /* A client context with verify off accepts anything: nothing here is "verified". */
    if (c->cc && !c->cc->verify)
        return NULL;
    return x;
}

bool pt_tls_peer_verified(const struct pt_tls_conn *c)
{
    return verified_peer(c) != NULL;
}

int pt_tls_peer_subject(const struct pt_tls_conn *c, char *buf, size_t len)
{
    X509 *x = verified_peer(c);
    if (!x || len == 0)
        return -1;
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return -1;
    int rc = -1;
    if (X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
        char *p = NULL;
        long n = BIO_get_mem_data(b, &p);
        size_t m = n > 0 ? PT_MIN((size_t)n, len - 1) : 0;
        if (m)
            memcpy(buf, p, m);
        buf[m] = '\0';
        rc = (int)m;
    }
    BIO_free(b);
    ERR_clear_error();
    return rc;
}

int pt_tls_peer_fingerprint(const struct pt_tls_conn *c, char hex[65])
{
    X509 *x = verified_peer(c);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!x || !X509_digest(x, EVP_sha256(), md, &mdlen) || mdlen != 32) {
        ERR_clear_error();
        return -1;
    }
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
    return 0;
}

bool pt_tls_is_acme_alpn(const struct pt_tls_conn *c)
{
    return c->is_acme;
}
