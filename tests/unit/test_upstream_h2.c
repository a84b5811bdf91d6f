/*
 * test_upstream_h2.c - HTTP/2 client sessions toward upstreams (upstream/h2_client.c): a
 * stream's response, how many connections streams open (only when all are full, at most
 * max_conns), refused streams, cancelling one stream without the connection, a failed connect.
 *
 * The target is an nghttp2 server session in this thread on a listening socket of 127.0.0.1,
 * driven between the loop's iterations. It announces SETTINGS_MAX_CONCURRENT_STREAMS 2 (or
 * srv.max_streams),
 * answers "hi" to every path except /hang, and refuses every stream while `refuse` is set.
 */
#include <arpa/inet.h>
#include <errno.h>
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
#include <nghttp2/nghttp2.h>

#include "core/loop.h"
#include "upstream/h2_client.h"
#include "upstream/uconn.h"

#define MAX_SRV 8

struct srv_conn {
    int fd;
    nghttp2_session *ng;
    char path[16][32]; /* by (stream id / 2) % 16 */
};

static struct {
    int lfd;
    struct pt_sockaddr addr;
    struct srv_conn c[MAX_SRV];
    int n;
    bool refuse;
    uint32_t max_streams; /* SETTINGS_MAX_CONCURRENT_STREAMS announced */
    int n_cancel;         /* RST_STREAM CANCEL received */
    int n_requests;
} srv;

static ssize_t srv_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len, uint32_t *fl,
                        nghttp2_data_source *src, void *ud)
{
    (void)ng;
    (void)id;
    (void)len;
    (void)src;
    (void)ud;
    memcpy(buf, "hi", 2);
    *fl |= NGHTTP2_DATA_FLAG_EOF;
    return 2;
}

static int srv_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                      const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    (void)ng;
    (void)flags;
    struct srv_conn *c = ud;
    if (nl == 5 && memcmp(name, ":path", 5) == 0 && vl < 32) {
        char *p = c->path[(f->hd.stream_id / 2) % 16];
        memcpy(p, value, vl);
        p[vl] = '\0';
    }
    return 0;
}

static int srv_frame(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    struct srv_conn *c = ud;
    if (f->hd.type != NGHTTP2_HEADERS || !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    srv.n_requests++;
    if (srv.refuse)
        return nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id,
                                         NGHTTP2_REFUSED_STREAM);
    if (strcmp(c->path[(f->hd.stream_id / 2) % 16], "/hang") == 0)
        return 0;
    nghttp2_nv nv[] = {{(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE}};
    nghttp2_data_provider dp = {.read_callback = srv_body};
    return nghttp2_submit_response(ng, f->hd.stream_id, nv, 1, &dp);
}

static int srv_close(nghttp2_session *ng, int32_t id, uint32_t code, void *ud)
{
    (void)ng;
    (void)id;
    (void)ud;
    if (code == NGHTTP2_CANCEL)
        srv.n_cancel++;
    return 0;
}

static void srv_start(void)
{
    memset(&srv, 0, sizeof(srv));
    srv.max_streams = 2;
    srv.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(srv.lfd >= 0);
    srv.addr.u.in.sin_family = AF_INET;
    srv.addr.u.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    srv.addr.len = sizeof(srv.addr.u.in);
    assert_int_equal(bind(srv.lfd, &srv.addr.u.sa, srv.addr.len), 0);
    assert_int_equal(listen(srv.lfd, 16), 0);
    socklen_t len = srv.addr.len;
    assert_int_equal(getsockname(srv.lfd, &srv.addr.u.sa, &len), 0);
}

/* Accepts, reads and answers whatever is there. */
static void srv_pump(void)
{
    int fd;
    while (srv.n < MAX_SRV && (fd = accept4(srv.lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
        struct srv_conn *c = &srv.c[srv.n++];
        c->fd = fd;
        nghttp2_session_callbacks *cbs;
        nghttp2_session_callbacks_new(&cbs);
        nghttp2_session_callbacks_set_on_header_callback(cbs, srv_header);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, srv_frame);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, srv_close);
        assert_int_equal(nghttp2_session_server_new(&c->ng, cbs, c), 0);
        nghttp2_session_callbacks_del(cbs);
        nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, srv.max_streams}};
        nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, 1);
    }
    for (int i = 0; i < srv.n; i++) {
        struct srv_conn *c = &srv.c[i];
        if (c->fd < 0)
            continue;
        uint8_t buf[16384];
        ssize_t n;
        while ((n = read(c->fd, buf, sizeof(buf))) > 0)
            assert_true(nghttp2_session_mem_recv(c->ng, buf, (size_t)n) >= 0);
        if (n == 0) {
            close(c->fd);
            c->fd = -1;
            continue;
        }
        const uint8_t *d;
        while ((n = nghttp2_session_mem_send(c->ng, &d)) > 0)
            assert_int_equal(write(c->fd, d, (size_t)n), n);
    }
}

static void srv_stop(void)
{
    for (int i = 0; i < srv.n; i++) {
        if (srv.c[i].fd >= 0)
            close(srv.c[i].fd);
        nghttp2_session_del(srv.c[i].ng);
    }
    close(srv.lfd);
}

/* ---- the owner ---- */

struct owner {
    struct pt_h2c_stream *s;
    int events;
};

static void on_event(void *o)
{
    ((struct owner *)o)->events++;
}

static void on_timeout(void *o)
{
    (void)o;
}

static ssize_t on_read_body(void *o, uint8_t *buf, size_t len, bool *eof)
{
    (void)o;
    (void)buf;
    (void)len;
    *eof = true;
    return 0;
}

static const struct pt_h2c_ops ops = {on_event, on_timeout, on_read_body, NULL};

struct fix {
    struct pt_loop loop;
    struct pt_upool pool;
};

static int setup(void **state)
{
    static struct fix f;
    memset(&f, 0, sizeof(f));
    assert_int_equal(pt_loop_init(&f.loop), 0);
    pt_upool_init(&f.pool, &f.loop);
    srv_start();
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    pt_upool_destroy(&f->pool);
    pt_loop_run_once(&f->loop, 0);
    pt_loop_run_once(&f->loop, 0);
    srv_stop();
    pt_loop_destroy(&f->loop);
    return 0;
}

static struct pt_h2c_target target(uint32_t max_conns)
{
    struct pt_h2c_target t = {&srv.addr, 0, NULL, NULL, NULL, 2000, max_conns};
    return t;
}

static void open_get(struct fix *f, struct owner *o, const char *path, uint32_t max_conns)
{
    struct pt_h2c_target t = target(max_conns);
    const char *what = NULL;
    memset(o, 0, sizeof(*o));
    assert_int_equal(pt_h2c_open(&f->pool, &t, &ops, o, &o->s, &what), 0);
    nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":authority", (uint8_t *)"t", 10, 1, 0},
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
    };
    assert_int_equal(pt_h2c_submit(o->s, nv, 4, false), 0);
}

static bool run_until(struct fix *f, bool (*done)(void *), void *arg)
{
    for (int i = 0; i < 400; i++) {
        if (done(arg))
            return true;
        pt_loop_run_once(&f->loop, 5);
        srv_pump();
    }
    return done(arg);
}

static bool stream_over(void *arg)
{
    struct owner *o = arg;
    return o->s->is_end || o->s->fail;
}

static bool all_over(void *arg)
{
    struct owner *o = arg;
    for (int i = 0; i < 5; i++)
        if (!stream_over(&o[i]))
            return false;
    return true;
}

static bool cancelled(void *arg)
{
    (void)arg;
    return srv.n_cancel > 0;
}

static void stream_gets_response_head_and_body(void **state)
{
    struct fix *f = *state;
    struct owner o;
    open_get(f, &o, "/a", PT_H2C_MAX_CONNS);
    assert_true(run_until(f, stream_over, &o));
    assert_int_equal(o.s->fail, PT_H2C_OK);
    assert_int_equal(o.s->status, 200);
    assert_true(o.events > 0);
    assert_int_equal(pt_buf_len(&o.s->in), 2);
    assert_memory_equal(pt_buf_rpos(&o.s->in), "hi", 2);
    pt_h2c_consume(o.s, 2);
    assert_int_equal(pt_buf_len(&o.s->in), 0);
    pt_h2c_release(o.s);
    assert_int_equal(srv.n, 1);
}

static void new_connection_only_when_all_are_full(void **state)
{
    struct fix *f = *state;
    struct owner warm, o[5];
    open_get(f, &warm, "/warm", 3);
    assert_true(run_until(f, stream_over, &warm)); /* the limit (2) is known from here on */
    pt_h2c_release(warm.s);
    for (int i = 0; i < 5; i++)
        open_get(f, &o[i], "/x", 3);
    assert_true(run_until(f, all_over, o));
    for (int i = 0; i < 5; i++) {
        assert_int_equal(o[i].s->status, 200);
        pt_h2c_release(o[i].s);
    }
    assert_int_equal(srv.n, 3); /* 2 + 2 + 1, the fifth waited in one of them */
}

static void refused_stream_is_reported_as_refused(void **state)
{
    struct fix *f = *state;
    struct owner o;
    srv.refuse = true;
    open_get(f, &o, "/r", PT_H2C_MAX_CONNS);
    assert_true(run_until(f, stream_over, &o));
    assert_int_equal(o.s->fail, PT_H2C_REFUSED);
    assert_int_equal(o.s->status, 0);
    pt_h2c_release(o.s);
}

static void release_cancels_the_stream_not_the_connection(void **state)
{
    struct fix *f = *state;
    struct owner hang, o;
    open_get(f, &hang, "/hang", PT_H2C_MAX_CONNS);
    for (int i = 0; i < 40 && srv.n_requests == 0; i++) {
        pt_loop_run_once(&f->loop, 5);
        srv_pump();
    }
    assert_int_equal(srv.n_requests, 1);
    pt_h2c_release(hang.s);
    assert_true(run_until(f, cancelled, NULL));
    open_get(f, &o, "/b", PT_H2C_MAX_CONNS);
    assert_true(run_until(f, stream_over, &o));
    assert_int_equal(o.s->status, 200);
    pt_h2c_release(o.s);
    assert_int_equal(srv.n, 1);
}

static void request_queued_behind_a_goaway_is_refused(void **state)
{
    struct fix *f = *state;
    struct owner warm, hang, queued;
    srv.max_streams = 1;
    open_get(f, &warm, "/warm", 1);
    assert_true(run_until(f, stream_over, &warm));
    pt_h2c_release(warm.s);
    open_get(f, &hang, "/hang", 1);
    open_get(f, &queued, "/q", 1); /* one connection, full: nghttp2 holds it back */
    for (int i = 0; i < 40 && srv.n_requests < 2; i++) {
        pt_loop_run_once(&f->loop, 5);
        srv_pump();
    }
    assert_int_equal(srv.n_requests, 2); /* /warm and /hang */
    nghttp2_submit_goaway(srv.c[0].ng, NGHTTP2_FLAG_NONE, hang.s->id, NGHTTP2_NO_ERROR, NULL, 0);
    srv_pump();
    assert_true(run_until(f, stream_over, &queued));
    assert_int_equal(queued.s->fail, PT_H2C_REFUSED); /* never sent: safe to retry */
    assert_int_equal(hang.s->fail, PT_H2C_OK);        /* below last_stream_id: goes on */
    pt_h2c_release(queued.s);
    pt_h2c_release(hang.s);
}

static void failed_connect_fails_the_stream(void **state)
{
    struct fix *f = *state;
    struct owner o;
    close(srv.lfd); /* nobody listens any more */
    srv.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct pt_h2c_target t = target(PT_H2C_MAX_CONNS);
    const char *what = NULL;
    memset(&o, 0, sizeof(o));
    int rc = pt_h2c_open(&f->pool, &t, &ops, &o, &o.s, &what);
    if (rc < 0) {
        assert_int_equal(rc, -ECONNREFUSED); /* refused at once */
        return;
    }
    assert_true(run_until(f, stream_over, &o));
    assert_int_equal(o.s->fail, PT_H2C_CONNECT);
    pt_h2c_release(o.s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(stream_gets_response_head_and_body, setup, teardown),
        cmocka_unit_test_setup_teardown(new_connection_only_when_all_are_full, setup, teardown),
        cmocka_unit_test_setup_teardown(refused_stream_is_reported_as_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(release_cancels_the_stream_not_the_connection, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(request_queued_behind_a_goaway_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_connect_fails_the_stream, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
