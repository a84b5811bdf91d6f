/*
 * test_fields.c - protocol-neutral response heads and their HTTP/1.1 form (src/http/fields.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/fields.h"

/* A buffer of exactly cap bytes from malloc, so that ASan sees a write past it. */
static struct pt_buf make_buf(uint32_t cap)
{
    struct pt_buf b;
    memset(&b, 0, sizeof(b));
    b.data = malloc(cap);
    assert_non_null(b.data);
    b.cap = cap;
    return b;
}

static char *written(const struct pt_buf *b)
{
    static char s[8192];
    assert_true(b->tail < sizeof(s));
    memcpy(s, b->data + b->head, b->tail - b->head);
    s[b->tail - b->head] = '\0';
    return s;
}

static void test_lines_become_fields(void **state)
{
    (void)state;
    struct pt_resp_head h;
    pt_resp_head_init(&h, 200);
    const char lines[] =
        "Content-Type: text/html\r\nX-A:  spaced \t\r\nno colon\r\nDate: x\r\nLast: 1";
    pt_resp_add_lines(&h, lines, sizeof(lines) - 1);
    assert_int_equal(h.n_fields, 4);
    assert_true(PT_STR_EQ_LIT(h.fields[0].name, "Content-Type"));
    assert_true(PT_STR_EQ_LIT(h.fields[0].value, "text/html"));
    assert_true(PT_STR_EQ_LIT(h.fields[1].value, "spaced"));
    assert_true(PT_STR_EQ_LIT(h.fields[3].name, "Last"));
    assert_true(PT_STR_EQ_LIT(h.fields[3].value, "1"));
    assert_true(h.has_date);
    assert_true(pt_resp_has(&h, PT_STR("content-type")));
    assert_false(pt_resp_has(&h, PT_STR("server")));
}

static void test_h1_head_framing_and_connection(void **state)
{
    (void)state;
    struct pt_buf b = make_buf(512);
    struct pt_resp_head h;
    pt_resp_head_init(&h, 404);
    pt_resp_add(&h, PT_STR("A"), PT_STR("1"));
    h.content_length = 12;
    assert_int_equal(pt_h1_write_head(&b, &h, PT_H1_CONN_CLOSE), 0);
    assert_string_equal(written(&b), "HTTP/1.1 404 Not Found\r\nA: 1\r\nContent-Length: 12\r\n"
                                     "Connection: close\r\n\r\n");
    b.tail = 0;
    pt_resp_head_init(&h, 299);
    h.reason = PT_STR("Fine Thanks");
    h.is_chunked = true;
    h.content_length = 5; /* chunked wins: never both */
    assert_int_equal(pt_h1_write_head(&b, &h, PT_H1_CONN_KEEP_10), 0);
    assert_string_equal(written(&b), "HTTP/1.1 299 Fine Thanks\r\nTransfer-Encoding: chunked\r\n"
                                     "Connection: keep-alive\r\n\r\n");
    b.tail = 0;
    pt_resp_head_init(&h, 103);
    pt_resp_add(&h, PT_STR("Link"), PT_STR("</a.css>; rel=preload"));
    h.content_length = 0;
    assert_int_equal(pt_h1_write_head(&b, &h, PT_H1_CONN_INTERIM), 0);
    assert_string_equal(written(&b),
                        "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n");
    free(b.data);
}

static void test_h1_head_that_does_not_fit_leaves_buffer(void **state)
{
    (void)state;
    struct pt_resp_head h;
    pt_resp_head_init(&h, 200);
    pt_resp_add(&h, PT_STR("Name"), PT_STR("a value of some length"));
    h.content_length = 0;
    /* every size below the full head fails and writes nothing it keeps */
    size_t full =
        strlen("HTTP/1.1 200 OK\r\nName: a value of some length\r\nContent-Length: 0\r\n\r\n");
    for (uint32_t cap = 1; cap <= full; cap++) {
        struct pt_buf b = make_buf(cap);
        b.head = b.tail = 0;
        int rc = pt_h1_write_head(&b, &h, PT_H1_CONN_KEEP);
        if (cap < full) {
            assert_int_equal(rc, -1);
            assert_int_equal(b.tail, 0);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(b.tail, full);
        }
        free(b.data);
    }
}

static void test_many_fields_grow_the_array(void **state)
{
    (void)state;
    static char names[1000][8];
    struct pt_resp_head h;
    pt_resp_head_init(&h, 200);
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(names[i], sizeof(names[i]), "X-%d", i);
        pt_resp_add(&h, (struct pt_str){names[i], (size_t)n}, PT_STR("v"));
    }
    assert_false(h.is_overflow);
    assert_int_equal(h.n_fields, 1000);
    assert_true(PT_STR_EQ_LIT(h.fields[999].name, "X-999"));
    /* the next head starts empty on the same (grown) array */
    pt_resp_head_init(&h, 204);
    assert_int_equal(h.n_fields, 0);
    assert_true(h.cap >= 1000);
    pt_resp_fields_drain();
}

static void test_request_field_lookup(void **state)
{
    (void)state;
    const struct pt_field f[] = {{PT_STR("Accept"), PT_STR("a")},
                                 {PT_STR("X-Request-Id"), PT_STR("first")},
                                 {PT_STR("x-request-id"), PT_STR("second")}};
    struct pt_req_head h = {.fields = f, .n_fields = 3};
    assert_true(PT_STR_EQ_LIT(pt_req_field(&h, "x-request-id", 12), "first"));
    assert_true(PT_STR_EQ_LIT(pt_req_field(&h, "ACCEPT", 6), "a"));
    assert_null(pt_req_field(&h, "accep", 5).p);
    h.n_fields = 0;
    assert_null(pt_req_field(&h, "accept", 6).p);
}

static void test_overflowed_head_is_refused(void **state)
{
    (void)state;
    struct pt_buf b = make_buf(256);
    struct pt_resp_head h;
    pt_resp_head_init(&h, 200);
    h.is_overflow = true;
    assert_int_equal(pt_h1_write_head(&b, &h, PT_H1_CONN_KEEP), -1);
    assert_int_equal(b.tail, 0);
    free(b.data);
}

static bool tr_ok(const char *name, const char *value)
{
    return pt_trailer_field_ok((struct pt_str){name, strlen(name)},
                               (struct pt_str){value, strlen(value)});
}

/* Only fields that may be trailers cross the proxy (RFC 9110 §6.5.1). */
static void test_trailer_fields_allowed(void **state)
{
    (void)state;
    assert_true(tr_ok("grpc-status", "0"));
    assert_true(tr_ok("X-Checksum", "a b\tc"));
    assert_true(tr_ok("grpc-message", ""));
    static const char *const banned[] = {
        "Content-Length", "transfer-encoding", "Host",
        "Connection",     "keep-alive",        "TE",
        "Trailer",        "Upgrade",           "Proxy-Authorization",
        "proxy-x",        "Authorization",     "Cookie",
        "Set-Cookie",     "Content-Type",      "Content-Encoding",
        "Cache-Control",  "If-None-Match",     "Expect",
        "Range"};
    for (size_t i = 0; i < sizeof(banned) / sizeof(banned[0]); i++)
        assert_false(tr_ok(banned[i], "1"));
    assert_false(tr_ok("", "1"));
    assert_false(tr_ok(":status", "200"));
    assert_false(tr_ok("X A", "1"));
    assert_false(tr_ok("X-A", "1\r\nHost: evil"));
    assert_false(tr_ok("X-A", " padded"));
    assert_false(tr_ok("X-A", "padded\t"));
    assert_false(tr_ok("X-A", "nul\001"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trailer_fields_allowed),
        cmocka_unit_test(test_lines_become_fields),
        cmocka_unit_test(test_h1_head_framing_and_connection),
        cmocka_unit_test(test_h1_head_that_does_not_fit_leaves_buffer),
        cmocka_unit_test(test_many_fields_grow_the_array),
        cmocka_unit_test(test_overflowed_head_is_refused),
        cmocka_unit_test(test_request_field_lookup),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    pt_resp_fields_drain();
    return rc;
}
