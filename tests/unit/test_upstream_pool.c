/*
 * test_upstream_pool.c - the per-worker keep-alive pool (upstream/pool.c): keying by address
 * and TLS identity, the keepalive limit with least-recently-used eviction, what a put refuses
 * to keep, idle events, and draining.
 *
 * Connections wrap one end of a socketpair, so the loop can watch them and the test can make
 * the "peer" close or talk.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/loop.h"
#include "upstream/uconn.h"

struct fix {
    struct pt_loop loop;
    struct pt_upool pool;
    int peers[16]; /* the other ends, closed at teardown */
    size_t n_peers;
};

static void setup_fix(struct fix *f)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(pt_loop_init(&f->loop), 0);
    pt_upool_init(&f->pool, &f->loop);
}

static void teardown_fix(struct fix *f)
{
    pt_upool_destroy(&f->pool);
    pt_loop_run_once(&f->loop, 0);
    for (size_t i = 0; i < f->n_peers; i++)
        close(f->peers[i]);
    pt_loop_destroy(&f->loop);
}

static struct pt_sockaddr addr4(uint16_t port)
{
    struct pt_sockaddr a;
    memset(&a, 0, sizeof(a));
    a.u.in.sin_family = AF_INET;
    a.u.in.sin_port = htons(port);
    a.u.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.len = sizeof(a.u.in);
    return a;
}

static int n_owner_events;

static void on_ready(void *owner)
{
    (void)owner;
    n_owner_events++;
}

/* A connection "to" a (the pool only keys on it), in use by an owner. */
static struct pt_uconn *conn(struct fix *f, const struct pt_sockaddr *a, uint32_t tls_hash)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    int err = 0;
    const char *what = NULL;
    struct pt_uconn *u = pt_uconn_new(&f->pool, sv[0], a, tls_hash, false, &err, &what);
    assert_non_null(u);
    assert_int_equal(u->n_requests, 1);
    assert_true(u->t.can_write);
    u->owner = f;
    u->on_ready = on_ready;
    f->peers[f->n_peers++] = sv[1];
    return u;
}

static void test_keyed_by_address_and_tls(void **state)
{
    (void)state;
    struct fix f;
    setup_fix(&f);
    struct pt_sockaddr a = addr4(9001), b = addr4(9002);
    struct pt_uconn *plain = conn(&f, &a, 0), *tls = conn(&f, &a, 0x1234567);
    pt_upool_put(&f.pool, plain, 8);
    pt_upool_put(&f.pool, tls, 8);
    assert_null(plain->owner);
    assert_false(plain->is_closed);
    assert_true(pt_timer_is_armed(&plain->timer));     /* idle timeout */
    assert_null(pt_upool_get(&f.pool, &b, 0));         /* another port */
    assert_null(pt_upool_get(&f.pool, &a, 0x7654321)); /* another TLS identity */
    assert_ptr_equal(pt_upool_get(&f.pool, &a, 0x1234567), tls);
    assert_false(pt_timer_is_armed(&tls->timer));
    assert_ptr_equal(pt_upool_get(&f.pool, &a, 0), plain);
    assert_null(pt_upool_get(&f.pool, &a, 0)); /* taken */
    pt_uconn_close(plain);
    pt_uconn_close(tls);
    teardown_fix(&f);
}

static void test_keepalive_limit_evicts_oldest(void **state)
{
    (void)state;
    struct fix f;
    setup_fix(&f);
    struct pt_sockaddr a = addr4(9001), b = addr4(9002);
    struct pt_uconn *u1 = conn(&f, &a, 0), *u2 = conn(&f, &a, 0), *u3 = conn(&f, &a, 0);
    struct pt_uconn *other = conn(&f, &b, 0);
    pt_upool_put(&f.pool, other, 2);
    pt_upool_put(&f.pool, u1, 2);
    pt_upool_put(&f.pool, u2, 2);
    pt_upool_put(&f.pool, u3, 2); /* a third for a: the least recently used goes */
    assert_true(u1->is_closed);
    assert_false(u2->is_closed || u3->is_closed || other->is_closed);
    /* Newest first: the connection least likely to have been closed by the peer. */
    assert_ptr_equal(pt_upool_get(&f.pool, &a, 0), u3);
    assert_ptr_equal(pt_upool_get(&f.pool, &a, 0), u2);
    assert_null(pt_upool_get(&f.pool, &a, 0));
    assert_ptr_equal(pt_upool_get(&f.pool, &b, 0), other); /* its own limit */
    pt_uconn_close(u2);
    pt_uconn_close(u3);
    pt_uconn_close(other);
    teardown_fix(&f);
}

static void test_put_closes_what_it_cannot_keep(void **state)
{
    (void)state;
    struct fix f;
    setup_fix(&f);
    struct pt_sockaddr a = addr4(9001);
    struct pt_uconn *u = conn(&f, &a, 0);
    pt_upool_put(&f.pool, u, 0); /* keepalive: 0 */
    assert_true(u->is_closed);
    u = conn(&f, &a, 0);
    u->is_eof = true; /* the peer closed its side */
    pt_upool_put(&f.pool, u, 8);
    assert_true(u->is_closed);
    assert_null(pt_upool_get(&f.pool, &a, 0));
    /* Draining: what was idle closes, and nothing more is kept. */
    struct pt_uconn *idle = conn(&f, &a, 0);
    pt_upool_put(&f.pool, idle, 8);
    pt_upool_drain(&f.pool);
    assert_true(idle->is_closed);
    u = conn(&f, &a, 0);
    pt_upool_put(&f.pool, u, 8);
    assert_true(u->is_closed);
    teardown_fix(&f);
}

static void test_idle_event_closes(void **state)
{
    (void)state;
    struct fix f;
    setup_fix(&f);
    struct pt_sockaddr a = addr4(9001);
    struct pt_uconn *u = conn(&f, &a, 0);
    int peer = f.peers[f.n_peers - 1];
    /* In use: an event reaches the owner with the readiness recorded. */
    n_owner_events = 0;
    assert_int_equal(write(peer, "x", 1), 1);
    pt_loop_run_once(&f.loop, 100);
    assert_int_equal(n_owner_events, 1);
    assert_true(u->t.can_read);
    char c;
    assert_int_equal(read(u->io.fd, &c, 1), 1);
    /* Idle: bytes nobody asked for mean the connection is out of step, and it goes. */
    pt_upool_put(&f.pool, u, 8);
    assert_int_equal(write(peer, "y", 1), 1);
    pt_loop_run_once(&f.loop, 100);
    assert_int_equal(n_owner_events, 1);
    assert_null(pt_upool_get(&f.pool, &a, 0));
    teardown_fix(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyed_by_address_and_tls),
        cmocka_unit_test(test_keepalive_limit_evicts_oldest),
        cmocka_unit_test(test_put_closes_what_it_cannot_keep),
        cmocka_unit_test(test_idle_event_closes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
