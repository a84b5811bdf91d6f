/*
 * test_upstream_health_h2.c - the HTTP/2 exchange of a health check, against an nghttp2 server
 * session in memory: the request's pseudo-header fields, a 103 then a 200 with a body handed
 * over one byte at a time, a reset stream, a GOAWAY, and HTTP/1.1 bytes where HTTP/2 was
 * expected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <nghttp2/nghttp2.h>

#include "upstream/health_h2.h"

struct peer {
    nghttp2_session *ng;
    int32_t stream_id; /* the request's stream */
    char fields[512];  /* "name=value;" for every field of the request */
    size_t fields_len;
    const char *body; /* what the response's DATA carries */
    size_t body_len, body_off;
};

static int peer_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                          size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                          void *ud)
{
    (void)s;
    (void)flags;
    struct peer *p = ud;
    p->stream_id = f->hd.stream_id;
    int n = snprintf(p->fields + p->fields_len, sizeof(p->fields) - p->fields_len, "%.*s=%.*s;",
                     (int)namelen, name, (int)valuelen, value);
    if (n > 0)
        p->fields_len += (size_t)n;
    return 0;
}

static ssize_t peer_read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                              uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)id;
    (void)src;
    struct peer *p = ud;
    size_t n = p->body_len - p->body_off < len ? p->body_len - p->body_off : len;
    memcpy(buf, p->body + p->body_off, n);
    p->body_off += n;
    if (p->body_off == p->body_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static void peer_init(struct peer *p)
{
    memset(p, 0, sizeof(*p));
    nghttp2_session_callbacks *cbs;
    assert_int_equal(nghttp2_session_callbacks_new(&cbs), 0);
    nghttp2_session_callbacks_set_on_header_callback(cbs, peer_on_header);
    assert_int_equal(nghttp2_session_server_new(&p->ng, cbs, p), 0);
    nghttp2_session_callbacks_del(cbs);
    assert_int_equal(nghttp2_submit_settings(p->ng, NGHTTP2_FLAG_NONE, NULL, 0), 0);
}

/* Moves the client's output into the peer. */
static void to_peer(struct pt_health_h2 *x, struct peer *p)
{
    const char *d;
    size_t n;
    assert_int_equal(pt_health_h2_output(x, &d, &n), 0);
    assert_int_equal(nghttp2_session_mem_recv(p->ng, (const uint8_t *)d, n), (ssize_t)n);
    pt_health_h2_sent(x, n);
}

/* Moves the peer's output into the client, one byte per call when bytewise. */
static void to_client(struct peer *p, struct pt_health_h2 *x, bool bytewise)
{
    const uint8_t *d;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(p->ng, &d)) > 0) {
        if (!bytewise) {
            assert_int_equal(pt_health_h2_feed(x, (const char *)d, (size_t)n), 0);
            continue;
        }
        for (ssize_t i = 0; i < n; i++)
            assert_int_equal(pt_health_h2_feed(x, (const char *)d + i, 1), 0);
    }
}

static void test_request_and_response_byte_by_byte(void **state)
{
    (void)state;
    struct peer p;
    peer_init(&p);
    struct pt_health_h2 *x = pt_health_h2_new("GET", "/healthz", "http", "b.test:8080", 8);
    assert_non_null(x);
    to_peer(x, &p);
    assert_string_equal(p.fields, ":method=GET;:scheme=http;:authority=b.test:8080;"
                                  ":path=/healthz;user-agent=portico-health;accept=*/*;");
    nghttp2_nv early[] = {{(uint8_t *)":status", (uint8_t *)"103", 7, 3, 0}};
    assert_int_equal(nghttp2_submit_headers(p.ng, 0, p.stream_id, NULL, early, 1, NULL), 0);
    to_client(&p, x, true);
    assert_int_equal(pt_health_h2_status(x), 0); /* interim: not the final status */
    p.body = "all is well";
    p.body_len = strlen(p.body);
    nghttp2_nv ok[] = {{(uint8_t *)":status", (uint8_t *)"200", 7, 3, 0}};
    nghttp2_data_provider dp = {.read_callback = peer_read_body};
    assert_int_equal(nghttp2_submit_response(p.ng, p.stream_id, ok, 1, &dp), 0);
    to_client(&p, x, true);
    assert_int_equal(pt_health_h2_status(x), 200);
    size_t bl;
    const char *body = pt_health_h2_body(x, &bl);
    assert_int_equal(bl, 8); /* body_max */
    assert_memory_equal(body, "all is w", 8);
    assert_true(pt_health_h2_is_ended(x));
    assert_null(pt_health_h2_error(x));
    to_peer(x, &p); /* the SETTINGS acknowledgement goes out */
    pt_health_h2_free(x);
    nghttp2_session_del(p.ng);
}

static void test_reset_stream_and_goaway(void **state)
{
    (void)state;
    struct peer p;
    peer_init(&p);
    struct pt_health_h2 *x = pt_health_h2_new("HEAD", "/", "https", "b.test", 64);
    assert_non_null(x);
    to_peer(x, &p);
    assert_int_equal(nghttp2_submit_rst_stream(p.ng, 0, p.stream_id, NGHTTP2_REFUSED_STREAM), 0);
    to_client(&p, x, false);
    assert_int_equal(pt_health_h2_status(x), 0);
    assert_true(pt_health_h2_is_ended(x));
    assert_non_null(strstr(pt_health_h2_error(x), "reset"));
    nghttp2_session_del(p.ng);
    pt_health_h2_free(x);

    peer_init(&p);
    x = pt_health_h2_new("GET", "/", "https", "b.test", 64);
    to_peer(x, &p);
    assert_int_equal(nghttp2_submit_goaway(p.ng, 0, 0, NGHTTP2_NO_ERROR, NULL, 0), 0);
    to_client(&p, x, false);
    assert_non_null(strstr(pt_health_h2_error(x), "GOAWAY"));
    nghttp2_session_del(p.ng);
    pt_health_h2_free(x);
}

static void test_http1_bytes_are_not_http2(void **state)
{
    (void)state;
    struct pt_health_h2 *x = pt_health_h2_new("GET", "/", "http", "b.test", 64);
    assert_non_null(x);
    const char *d;
    size_t n;
    assert_int_equal(pt_health_h2_output(x, &d, &n), 0);
    assert_true(n > 24 && memcmp(d, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24) == 0);
    const char *h1 = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    (void)pt_health_h2_feed(x, h1, strlen(h1));
    assert_int_equal(pt_health_h2_status(x), 0);
    const char *why = pt_health_h2_error(x);
    assert_non_null(why);
    assert_non_null(strstr(why, "no HTTP/2 from the target"));
    pt_health_h2_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_and_response_byte_by_byte),
        cmocka_unit_test(test_reset_stream_and_goaway),
        cmocka_unit_test(test_http1_bytes_are_not_http2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
