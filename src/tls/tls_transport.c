/*
 * tls_transport.c - struct pt_tls_conn behind the transport interface (core/transport.h), for
 * the server role (client connections) and the client role (https upstreams).
 *
 * Each operation calls the tls_conn.c function of the same name and turns its answer into the
 * transport's: -EAGAIN with the readiness flags set from pt_tls_conn_want() (a read that waits
 * for writability, a write that waits for readability), and every TLS failure as -EIO with the
 * reason kept for pt_transport_error().
 *
 * Files. TLS encrypts in user space, so a file range goes through memory, one record (16 KiB)
 * at a time: pread into a buffer on the stack, then seal and send it. Nothing larger than a
 * record is ever held, and no buffer outlives the call. When the socket is full the record is
 * already sealed inside OpenSSL, which wants the same bytes offered again: the caller starts
 * again at the same offset, so the next call reads the same bytes back (from the page cache)
 * and offers them, at least as many as before (see pt_tls_writev).
 *
 * Rejected: reading a file range into the connection's output buffer and writing it as memory
 * (the connection code then had to know which transport it had, and held a 16 KiB buffer per
 * file being sent). Kernel TLS offload (SSL_sendfile) is left out for now: it depends on the
 * kernel's tls module and on how OpenSSL was built, and the user-space path works everywhere.
 */
#include "tls/tls_transport.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "tls/tls_internal.h"

static const struct pt_transport_ops tls_ops;

static inline struct pt_tls_conn *tc_of(const struct pt_transport *t)
{
    return (struct pt_tls_conn *)t->impl;
}

static ssize_t tls_read(struct pt_transport *t, void *buf, size_t len)
{
    struct pt_tls_conn *tc = tc_of(t);
    ssize_t n = pt_tls_read(tc, buf, len);
    if (n == -EAGAIN) {
        pt_transport_read_blocked(t, pt_tls_conn_want(tc) == PT_TLS_WANT_WRITE);
        return -EAGAIN;
    }
    return n >= 0 ? n : -EIO;
}

static ssize_t tls_writev(struct pt_transport *t, const struct iovec *iov, int n, bool more)
{
    (void)more; /* records are coalesced by pt_tls_writev already */
    struct pt_tls_conn *tc = tc_of(t);
    ssize_t w = pt_tls_writev(tc, iov, n);
    if (w == -EAGAIN) {
        pt_transport_write_blocked(t, pt_tls_conn_want(tc) == PT_TLS_WANT_READ);
        return -EAGAIN;
    }
    return w >= 0 ? w : -EIO;
}

static ssize_t tls_send_file(struct pt_transport *t, int fd, uint64_t off, size_t len)
{
    struct pt_tls_conn *tc = tc_of(t);
    char rec[PT_TLS_RECORD_MAX];
    size_t done = 0;
    ssize_t rc = 0;
    while (done < len) {
        size_t want = PT_MIN(len - done, sizeof(rec));
        ssize_t n = pread(fd, rec, want, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n == 0 ? -EIO : -errno; /* 0: the file shrank under us */
            break;
        }
        struct iovec v = {.iov_base = rec, .iov_len = (size_t)n};
        ssize_t w = pt_tls_writev(tc, &v, 1);
        if (w == -EAGAIN) {
            pt_transport_write_blocked(t, pt_tls_conn_want(tc) == PT_TLS_WANT_READ);
            rc = -EAGAIN;
            break;
        }
        if (w < 0) {
            rc = -EIO;
            break;
        }
        done += (size_t)w;
    }
    return done > 0 ? (ssize_t)done : rc;
}

static int tls_handshake(struct pt_transport *t)
{
    struct pt_tls_conn *tc = tc_of(t);
    int rc = pt_tls_handshake(tc);
    if (rc == PT_OK)
        return pt_tls_is_acme_alpn(tc) ? PT_DONE : PT_OK;
    if (rc == PT_TLS_WANT_READ) {
        t->can_read = false;
        return PT_AGAIN;
    }
    if (rc == PT_TLS_WANT_WRITE) {
        t->can_write = false;
        return PT_AGAIN;
    }
    return PT_ERR;
}

static bool tls_pending(const struct pt_transport *t)
{
    return pt_tls_pending(tc_of(t));
}

static int tls_shutdown(struct pt_transport *t)
{
    int rc = pt_tls_shutdown(tc_of(t));
    if (rc == PT_TLS_WANT_READ || rc == PT_TLS_WANT_WRITE)
        return PT_AGAIN;
    return rc;
}

static const char *tls_error(const struct pt_transport *t)
{
    return t->impl ? pt_tls_conn_error(tc_of(t)) : "";
}

static void tls_free(struct pt_transport *t)
{
    pt_tls_free(tc_of(t));
}

static const struct pt_transport_ops tls_ops = {
    .name = "TLS",
    .is_secure = true,
    .read = tls_read,
    .writev = tls_writev,
    .send_file = tls_send_file,
    .handshake = tls_handshake,
    .pending = tls_pending,
    .shutdown = tls_shutdown,
    .error = tls_error,
    .free = tls_free,
};

/* Fills t around tc (NULL: out of memory, t left as it was). */
static int wrap(struct pt_transport *t, struct pt_tls_conn *tc, int fd)
{
    if (!tc)
        return -ENOMEM;
    memset(t, 0, sizeof(*t));
    t->ops = &tls_ops;
    t->impl = tc;
    t->fd = fd;
    t->is_handshaking = true;
    t->can_write = true;
    return 0;
}

int pt_tls_transport_server_init(struct pt_transport *t, struct pt_tls_ctx *ctx, int fd)
{
    int rc = wrap(t, pt_tls_server_new(ctx, fd), fd);
    if (rc == 0)
        t->can_read = true; /* a TLS client speaks first: try at once */
    return rc;
}

int pt_tls_transport_client_init(struct pt_transport *t, struct pt_tls_client_ctx *cc, int fd,
                                 const char *host, const char *session_key)
{
    return wrap(t, pt_tls_client_new(cc, fd, host, session_key), fd);
}

struct pt_tls_conn *pt_transport_tls(const struct pt_transport *t)
{
    return t->ops == &tls_ops ? tc_of(t) : NULL;
}
