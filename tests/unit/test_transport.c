/*
 * test_transport.c - the plain transport (src/core/transport.c) over a non-blocking socketpair:
 * reads and writes with their readiness bookkeeping, EAGAIN in both directions, end of stream,
 * file ranges with sendfile (a file that shrank included), the crossed-direction waits that TLS
 * records, and the plain answers to the operations only TLS needs. The TLS transport is tested
 * in test_tls.c, which has the certificates.
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

#include "core/common.h"
#include "core/transport.h"
#include "tls/tls_transport.h"

struct sp {
    int fd[2]; /* [0] under the transport, [1] the peer (blocking reads with MSG_DONTWAIT) */
    struct pt_transport t;
};

static void sp_open(struct sp *p)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->fd), 0);
    pt_transport_plain_init(&p->t, p->fd[0]);
}

static void sp_close(struct sp *p)
{
    pt_transport_free(&p->t);
    pt_transport_free(&p->t); /* twice is harmless */
    close(p->fd[0]);
    if (p->fd[1] >= 0)
        close(p->fd[1]);
}

/* Reads what the peer side holds, up to len. */
static size_t peer_drain(struct sp *p, char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = recv(p->fd[1], buf + got, len - got, MSG_DONTWAIT);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

static void test_plain_is_ready_and_says_so(void **state)
{
    (void)state;
    struct sp p;
    sp_open(&p);
    assert_false(p.t.is_handshaking);
    assert_true(p.t.can_write);
    assert_false(p.t.can_read);
    assert_false(pt_transport_is_secure(&p.t));
    assert_null(pt_transport_tls(&p.t));
    assert_string_equal(p.t.ops->name, "TCP");
    assert_int_equal(pt_transport_handshake(&p.t), PT_OK);
    assert_false(pt_transport_pending(&p.t));
    assert_string_equal(pt_transport_error(&p.t), "");
    sp_close(&p);
}

static void test_plain_read_write_and_eagain(void **state)
{
    (void)state;
    struct sp p;
    sp_open(&p);
    char buf[64];

    /* Nothing there: EAGAIN clears can_read; the next EPOLLIN sets it again. */
    pt_transport_events(&p.t, EPOLLIN);
    assert_true(p.t.can_read);
    assert_int_equal(pt_transport_read(&p.t, buf, sizeof(buf)), -EAGAIN);
    assert_false(p.t.can_read);

    /* A head and a body slice in one writev. */
    struct iovec v[2] = {{"HTTP/1.1 200 OK\r\n\r\n", 19}, {"hello", 5}};
    assert_int_equal(pt_transport_writev(&p.t, v, 2, false), 24);
    assert_true(p.t.can_write);
    assert_int_equal(peer_drain(&p, buf, sizeof(buf)), 24);
    assert_memory_equal(buf, "HTTP/1.1 200 OK\r\n\r\nhello", 24);

    /* A short read drained the socket: can_read is cleared without a read that says EAGAIN. */
    assert_int_equal(send(p.fd[1], "ping", 4, 0), 4);
    pt_transport_events(&p.t, EPOLLIN);
    assert_int_equal(pt_transport_read(&p.t, buf, sizeof(buf)), 4);
    assert_memory_equal(buf, "ping", 4);
    assert_false(p.t.can_read);

    /* A full read leaves it set: more may be there. */
    assert_int_equal(send(p.fd[1], "pingpong", 8, 0), 8);
    pt_transport_events(&p.t, EPOLLIN);
    assert_int_equal(pt_transport_read(&p.t, buf, 4), 4);
    assert_true(p.t.can_read);
    assert_int_equal(pt_transport_read(&p.t, buf, 4), 4);
    assert_memory_equal(buf, "pong", 4);

    /* Writing into a full socket: EAGAIN clears can_write, EPOLLOUT sets it again. */
    static char big[65536];
    struct iovec bv = {big, sizeof(big)};
    ssize_t w;
    size_t total = 0;
    while ((w = pt_transport_writev(&p.t, &bv, 1, true)) > 0)
        total += (size_t)w;
    assert_int_equal(w, -EAGAIN);
    assert_false(p.t.can_write);
    assert_true(total > 0);
    pt_transport_events(&p.t, EPOLLOUT);
    assert_true(p.t.can_write);
    sp_close(&p);
}

static void test_plain_end_of_stream(void **state)
{
    (void)state;
    struct sp p;
    sp_open(&p);
    char buf[64];

    /* After a hang-up a short read keeps can_read: reading goes on to the end of stream. */
    assert_int_equal(send(p.fd[1], "last", 4, 0), 4);
    close(p.fd[1]);
    p.fd[1] = -1;
    pt_transport_events(&p.t, EPOLLIN | EPOLLRDHUP);
    assert_true(p.t.saw_hup);
    assert_int_equal(pt_transport_read(&p.t, buf, sizeof(buf)), 4);
    assert_true(p.t.can_read);
    assert_int_equal(pt_transport_read(&p.t, buf, sizeof(buf)), 0);

    /* Writing to a closed peer is an error, not a signal. */
    struct iovec v = {"x", 1};
    assert_int_equal(pt_transport_writev(&p.t, &v, 1, false), -EPIPE);
    sp_close(&p);
}

static void test_plain_shutdown_sends_fin(void **state)
{
    (void)state;
    struct sp p;
    sp_open(&p);
    char buf[8];
    pt_transport_shutdown(&p.t, false); /* nothing on a plain socket */
    assert_int_equal(recv(p.fd[1], buf, sizeof(buf), MSG_DONTWAIT), -1);
    assert_int_equal(errno, EAGAIN);
    pt_transport_shutdown(&p.t, true);
    assert_int_equal(recv(p.fd[1], buf, sizeof(buf), MSG_DONTWAIT), 0);
    sp_close(&p);
}

/* A temporary file holding len bytes of a pattern; returns its fd (already unlinked). */
static int pattern_file(size_t len)
{
    char path[] = "/tmp/pt_transport_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    char chunk[4096];
    for (size_t off = 0; off < len;) {
        size_t n = PT_MIN(sizeof(chunk), len - off);
        for (size_t i = 0; i < n; i++)
            chunk[i] = (char)((off + i) * 7 % 251);
        assert_int_equal(write(fd, chunk, n), (ssize_t)n);
        off += n;
    }
    return fd;
}

static void test_plain_send_file(void **state)
{
    (void)state;
    struct sp p;
    sp_open(&p);
    const size_t len = 1u << 20; /* more than the socketpair holds */
    int fd = pattern_file(len);
    char *got = malloc(len);
    assert_non_null(got);

    /* A range from the middle, through a socket that fills: EAGAIN, then on at the offset. */
    uint64_t off = 1000, end = len - 1000;
    size_t recvd = 0;
    int again = 0;
    while (off < end) {
        ssize_t n = pt_transport_send_file(&p.t, fd, off, (size_t)(end - off));
        if (n == -EAGAIN) {
            again++;
            assert_false(p.t.can_write);
            recvd += peer_drain(&p, got + recvd, len - recvd);
            pt_transport_events(&p.t, EPOLLOUT);
            continue;
        }
        assert_true(n > 0);
        off += (uint64_t)n;
    }
    recvd += peer_drain(&p, got + recvd, len - recvd);
    assert_int_equal(recvd, len - 2000);
    assert_true(again > 0);
    for (size_t i = 0; i < recvd; i++)
        if (got[i] != (char)((i + 1000) * 7 % 251))
            fail_msg("byte %zu differs", i);

    /* The file shrank under the sender: what is there goes, then -EIO. */
    assert_int_equal(ftruncate(fd, 100), 0);
    assert_int_equal(pt_transport_send_file(&p.t, fd, 50, 100), 50);
    assert_int_equal(pt_transport_send_file(&p.t, fd, 100, 50), -EIO);
    close(fd);
    free(got);
    sp_close(&p);
}

/* The crossed waits TLS records: a read waiting for writability becomes ready on EPOLLOUT, a
   write waiting for readability on EPOLLIN, and each wait is cleared once used. */
static void assert_ready(const struct pt_transport *t, bool can_read, bool can_write)
{
    assert_int_equal(t->can_read, can_read);
    assert_int_equal(t->can_write, can_write);
}

static void test_crossed_waits(void **state)
{
    (void)state;
    struct sp p;
    sp_open(&p);
    /* A read waiting for writability wakes on EPOLLOUT, a write waiting for readability on
       EPOLLIN; the socket is taken as busy in both directions meanwhile. */
    static const struct {
        bool is_read;
        uint32_t wake;
    } cases[] = {{true, EPOLLOUT}, {false, EPOLLIN}};
    for (size_t i = 0; i < PT_ARRAY_LEN(cases); i++) {
        if (cases[i].is_read)
            pt_transport_read_blocked(&p.t, true);
        else
            pt_transport_write_blocked(&p.t, true);
        assert_ready(&p.t, false, false);
        assert_true(p.t.read_wants_write || p.t.write_wants_read);
        pt_transport_events(&p.t, cases[i].wake);
        assert_ready(&p.t, true, true);
        assert_false(p.t.read_wants_write || p.t.write_wants_read);
    }

    /* Uncrossed: each direction only wakes itself; a hang-up wakes both. */
    pt_transport_read_blocked(&p.t, false);
    pt_transport_write_blocked(&p.t, false);
    pt_transport_events(&p.t, EPOLLOUT);
    assert_ready(&p.t, false, true);
    pt_transport_events(&p.t, EPOLLHUP);
    assert_ready(&p.t, true, true);
    assert_true(p.t.saw_hup);
    sp_close(&p);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_is_ready_and_says_so),
        cmocka_unit_test(test_plain_read_write_and_eagain),
        cmocka_unit_test(test_plain_end_of_stream),
        cmocka_unit_test(test_plain_shutdown_sends_fin),
        cmocka_unit_test(test_plain_send_file),
        cmocka_unit_test(test_crossed_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
