/*
 * transport.c - the plain TCP transport, and the operations common to every transport.
 *
 * Plain reads are read(2); writes are sendmsg(2) with MSG_NOSIGNAL, and MSG_MORE when the caller
 * says a small file body follows, so a response head shares its first segment with the body
 * (sendfile then pushes both); files go with sendfile(2), zero copy. A short read means the
 * socket was drained, and with edge-triggered epoll any later byte raises a new event, so
 * can_read is cleared then and the read that would only say EAGAIN is skipped - except after a
 * hang-up, when reading goes on to the end of stream.
 *
 * The TLS transport (tls/tls_transport.c) has the same shape over struct pt_tls_conn.
 */
#include "core/transport.h"

#include <errno.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/common.h"

static ssize_t plain_read(struct pt_transport *t, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = read(t->fd, buf, len);
        if (n >= 0) {
            if (n > 0 && (size_t)n < len && !t->saw_hup)
                t->can_read = false;
            return n;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN)
            t->can_read = false;
        return -errno;
    }
}

static ssize_t plain_writev(struct pt_transport *t, const struct iovec *iov, int n, bool more)
{
    struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
    for (;;) {
        ssize_t w = sendmsg(t->fd, &mh, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
        if (w >= 0)
            return w;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN)
            t->can_write = false;
        return -errno;
    }
}

static ssize_t plain_send_file(struct pt_transport *t, int fd, uint64_t off, size_t len)
{
    off_t o = (off_t)off;
    ssize_t n = sendfile(t->fd, fd, &o, len);
    if (n < 0) {
        if (errno == EAGAIN)
            t->can_write = false;
        return -errno;
    }
    return n > 0 ? n : -EIO; /* 0: the file ended before off + len */
}

static int plain_handshake(struct pt_transport *t)
{
    (void)t;
    return PT_OK;
}

static bool plain_pending(const struct pt_transport *t)
{
    (void)t;
    return false;
}

static int plain_shutdown(struct pt_transport *t)
{
    (void)t;
    return PT_OK;
}

static const char *plain_error(const struct pt_transport *t)
{
    (void)t;
    return "";
}

static void plain_free(struct pt_transport *t)
{
    (void)t;
}

static const struct pt_transport_ops plain_ops = {
    .name = "TCP",
    .is_secure = false,
    .read = plain_read,
    .writev = plain_writev,
    .send_file = plain_send_file,
    .handshake = plain_handshake,
    .pending = plain_pending,
    .shutdown = plain_shutdown,
    .error = plain_error,
    .free = plain_free,
};

void pt_transport_plain_init(struct pt_transport *t, int fd)
{
    memset(t, 0, sizeof(*t));
    t->ops = &plain_ops;
    t->fd = fd;
    t->can_write = true;
}

int pt_transport_handshake(struct pt_transport *t)
{
    int rc = t->ops->handshake(t);
    if (rc != PT_AGAIN)
        t->is_handshaking = false;
    return rc;
}

void pt_transport_shutdown(struct pt_transport *t, bool shut_write)
{
    (void)t->ops->shutdown(t);
    if (shut_write)
        (void)shutdown(t->fd, SHUT_WR);
}

void pt_transport_free(struct pt_transport *t)
{
    if (!t->ops)
        return;
    t->ops->free(t);
    t->impl = NULL;
}
