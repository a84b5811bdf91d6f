/*
 * transport.h - one byte stream over a non-blocking socket, plain or TLS, behind one set of
 * operations, so that connection code reads, writes, sends files, handshakes and closes without
 * knowing which it has. Plain TCP is here (transport.c); TLS is in tls/tls_transport.c, which
 * also gives the TLS object to the code that needs its details (ALPN, SNI, peer certificate).
 *
 * A struct pt_transport is embedded in the connection that uses it (no allocation of its own;
 * the TLS one holds the struct pt_tls_conn it wraps). The fd stays the owner's: it is
 * registered with the loop by the owner and closed by it after pt_transport_free.
 *
 * Readiness. Sockets are registered edge-triggered for both directions (core/loop.h), so the
 * transport keeps one flag per direction: can_read / can_write are set by the events
 * (pt_transport_events) and cleared by the operation that meets EAGAIN. An operation may wait
 * for the other direction than its own: a TLS read may have to write first (a key update
 * answer, an alert) and a TLS write may have to read first (a handshake message arriving).
 * The transport records that (read_wants_write, write_wants_read) when the EAGAIN happens, and
 * the event of the awaited direction then makes the blocked one ready again. Plain sockets never
 * cross, so for them this costs two flag tests per event. Connection code only tests can_read /
 * can_write and calls again when they are set.
 *
 * Rejected: a pointer to the connection's own flags (two places to look for one state), and a
 * transport object allocated separately (one more allocation per connection for nothing).
 */
#ifndef PT_CORE_TRANSPORT_H
#define PT_CORE_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/types.h>
#include <sys/uio.h>

struct pt_transport;

/* The operations of one kind of transport. Every operation is non-blocking; each that meets
   EAGAIN updates the readiness flags of the transport before returning. */
struct pt_transport_ops {
    const char *name; /* "TCP" or "TLS", for logs */
    bool is_secure;   /* the stream is encrypted and authenticated: the scheme is https */
    /* Reads up to len bytes. Returns bytes > 0, 0 at end of stream, -EAGAIN, or another
       negative value (-errno; -EIO for a TLS failure). */
    ssize_t (*read)(struct pt_transport *t, void *buf, size_t len);
    /* Writes iov[0..n). more: more bytes follow at once (a small file body), so a plain socket
       may hold this segment back to share a packet with them. Returns the number of leading
       bytes taken (> 0, possibly fewer than offered), -EAGAIN, or another negative value.
       After -EAGAIN the next call must offer the same leading bytes again (TLS has sealed
       them into a record). */
    ssize_t (*writev)(struct pt_transport *t, const struct iovec *iov, int n, bool more);
    /* Sends bytes [off, off + len) of the file fd (borrowed), len > 0. Returns bytes sent
       (> 0), -EAGAIN, -EIO when the file ends before off + len (it shrank), or another
       negative value. After -EAGAIN the next call must start at the same offset. */
    ssize_t (*send_file)(struct pt_transport *t, int fd, uint64_t off, size_t len);
    /* Drives the handshake. Returns PT_OK when done (application data may flow), PT_DONE when
       the handshake was the whole exchange and the connection must be closed (an ACME
       TLS-ALPN-01 validation, RFC 8737 §3), PT_AGAIN, or PT_ERR (reason in error()). */
    int (*handshake)(struct pt_transport *t);
    /* Whether decrypted bytes wait inside the transport (a read returns them without I/O). */
    bool (*pending)(const struct pt_transport *t);
    /* Says end of stream at the protocol level, best effort, never waiting: TLS close_notify,
       nothing on plain sockets. Returns PT_OK, PT_AGAIN (give up or call again), PT_ERR. */
    int (*shutdown)(struct pt_transport *t);
    /* One-line reason of the last PT_ERR / -EIO ("" when none). Static or owned by t. */
    const char *(*error)(const struct pt_transport *t);
    /* Frees what the transport holds (no I/O, never closes the fd). */
    void (*free)(struct pt_transport *t);
};

struct pt_transport {
    const struct pt_transport_ops *ops;
    void *impl;    /* the implementation's object (TLS: struct pt_tls_conn); NULL on plain */
    int fd;        /* borrowed from the owner */
    bool can_read; /* edge-triggered readiness: no EAGAIN seen since the last event */
    bool can_write;
    bool saw_hup;          /* epoll reported RDHUP/HUP/ERR: read until EOF, never assume */
    bool read_wants_write; /* the last read's EAGAIN waits for the socket to be writable */
    bool write_wants_read; /* the last write's EAGAIN waits for the socket to be readable */
    bool is_handshaking;   /* handshake not finished: no application data yet */
};

/* Makes t a plain TCP transport over fd (borrowed). The handshake is already done; can_write is
   set (a connected socket) and can_read clear (the first event tells). */
void pt_transport_plain_init(struct pt_transport *t, int fd);

/* Records the epoll events of t's socket in its readiness flags. */
static inline void pt_transport_events(struct pt_transport *t, uint32_t events)
{
    bool in = (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
    bool out = (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0;
    if (in)
        t->can_read = true;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        t->saw_hup = true;
    if (out)
        t->can_write = true;
    if (out && t->read_wants_write) {
        t->read_wants_write = false;
        t->can_read = true;
    }
    if (in && t->write_wants_read) {
        t->write_wants_read = false;
        t->can_write = true;
    }
}

/* For implementations: a read (or a handshake step reading) met EAGAIN; wants_write when what
   it waits for is the socket becoming writable. */
static inline void pt_transport_read_blocked(struct pt_transport *t, bool wants_write)
{
    if (wants_write) {
        t->read_wants_write = true;
        t->can_write = false;
    }
    t->can_read = false;
}

/* For implementations: a write met EAGAIN; wants_read when it waits for readability. */
static inline void pt_transport_write_blocked(struct pt_transport *t, bool wants_read)
{
    if (wants_read) {
        t->write_wants_read = true;
        t->can_read = false;
    }
    t->can_write = false;
}

/* The operations, as inline calls (see struct pt_transport_ops for the contracts). */
static inline ssize_t pt_transport_read(struct pt_transport *t, void *buf, size_t len)
{
    return t->ops->read(t, buf, len);
}

static inline ssize_t pt_transport_writev(struct pt_transport *t, const struct iovec *iov, int n,
                                          bool more)
{
    return t->ops->writev(t, iov, n, more);
}

static inline ssize_t pt_transport_send_file(struct pt_transport *t, int fd, uint64_t off,
                                             size_t len)
{
    return t->ops->send_file(t, fd, off, len);
}

static inline bool pt_transport_pending(const struct pt_transport *t)
{
    return t->ops->pending(t);
}

static inline const char *pt_transport_error(const struct pt_transport *t)
{
    return t->ops->error(t);
}

static inline bool pt_transport_is_secure(const struct pt_transport *t)
{
    return t->ops->is_secure;
}

/* Drives the handshake (see ops->handshake); clears is_handshaking once it is over. */
int pt_transport_handshake(struct pt_transport *t);

/* Ends the stream, best effort and without waiting: the protocol's own end (TLS close_notify)
   and, with shut_write, a TCP FIN (shutdown(SHUT_WR)) for a lingering close. */
void pt_transport_shutdown(struct pt_transport *t, bool shut_write);

/* Frees what t holds (the TLS object); t may be freed with its owner afterwards. No I/O, and the
   fd is not closed. Safe to call twice. */
void pt_transport_free(struct pt_transport *t);

#endif
