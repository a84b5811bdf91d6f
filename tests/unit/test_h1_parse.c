/*
 * test_h1_parse.c - HTTP/1.1 head parsers and chunked decoder.
 *
 * Table-driven: each rejection RFC 9112 asks for has a row with the code it must produce, each
 * accepted form a row with the facts it must yield. The resumable pieces (find_head_end and the
 * chunked decoder) are fed every input split at every byte and one byte at a time, and must give
 * the same answer as when fed whole.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/h1_parse.h"

#define NHDR 16
#define URI_MAX 8192

struct code_case {
    const char *name;
    const char *in;
    size_t n;
    int rc; /* expected result; 0 means "accepted, whole input is the head" */
};

#define ROW(name, in, rc)                                                                          \
    {                                                                                              \
        name, in, sizeof(in) - 1, rc                                                               \
    }

static int parse_req(const char *in, size_t n, struct pt_h1_request *r, struct pt_field *h,
                     size_t cap, size_t uri_max)
{
    memset(r, 0, sizeof(*r));
    r->headers = h;
    r->num_headers = cap;
    return pt_h1_parse_request(in, n, r, uri_max);
}

static int parse_resp(const char *in, size_t n, struct pt_h1_response *r, struct pt_field *h,
                      size_t cap)
{
    memset(r, 0, sizeof(*r));
    r->headers = h;
    r->num_headers = cap;
    return pt_h1_parse_response(in, n, r);
}

#define H11 " HTTP/1.1\r\nHost: a\r\n"

static const struct code_case req_cases[] = {
    /* accepted */
    ROW("get", "GET /" H11 "\r\n", 0),
    ROW("leading empty line", "\r\nGET /" H11 "\r\n", 0),
    ROW("post cl", "POST /x" H11 "Content-Length: 5\r\n\r\n", 0),
    ROW("cl 2^62", "POST /x" H11 "Content-Length: 4611686018427387904\r\n\r\n", 0),
    ROW("chunked", "POST /x" H11 "Transfer-Encoding: chunked\r\n\r\n", 0),
    ROW("chunked list spaces", "POST /x" H11 "Transfer-Encoding: , chunked ,\r\n\r\n", 0),
    /* a coding before chunked: well framed, but not decodable by Portico (501) */
    ROW("gzip, chunked", "POST /x" H11 "Transfer-Encoding: gzip, chunked\r\n\r\n", PT_H1_ECODING),
    ROW("te two headers",
        "POST /x" H11 "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
        PT_H1_ECODING),
    ROW("te param", "POST /x" H11 "Transfer-Encoding: gzip;q=1 , chunked\r\n\r\n", PT_H1_ECODING),
    ROW("te unknown, chunked", "POST /x" H11 "Transfer-Encoding: x-zip, chunked\r\n\r\n",
        PT_H1_ECODING),
    ROW("te gzip, chunked, cl",
        "POST /x" H11 "Transfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n\r\n", PT_H1_EBAD),
    ROW("absolute form", "GET http://example.com/a?b" H11 "\r\n", 0),
    ROW("absolute form port", "GET https://example.com:8443" H11 "\r\n", 0),
    ROW("options star", "OPTIONS *" H11 "\r\n", 0),
    ROW("connect", "CONNECT example.com:443" H11 "\r\n", 0),
    ROW("connect v6", "CONNECT [::1]:443" H11 "\r\n", 0),
    ROW("http/1.0 no host", "GET / HTTP/1.0\r\n\r\n", 0),
    ROW("empty host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 0),
    ROW("host port", "GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", 0),
    ROW("host v6", "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", 0),
    ROW("ht in value", "GET /" H11 "X: a\tb\r\n\r\n", 0),
    ROW("obs-text value", "GET /" H11 "X: caf\xc3\xa9\r\n\r\n", 0),
    ROW("empty value", "GET /" H11 "X:\r\n\r\n", 0),
    ROW("unknown method", "PROPFIND /" H11 "\r\n", 0),
    ROW("lower method is a token", "get /" H11 "\r\n", 0),
    ROW("odd target bytes", "GET /a{b}|c\"d" H11 "\r\n", 0),
    /* framing */
    ROW("cl and te", "POST /" H11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        PT_H1_EBAD),
    ROW("te and cl", "POST /" H11 "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        PT_H1_EBAD),
    ROW("cl repeated equal", "POST /" H11 "Content-Length: 5\r\nContent-Length: 5\r\n\r\n",
        PT_H1_EBAD),
    ROW("cl repeated differ", "POST /" H11 "Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
        PT_H1_EBAD),
    ROW("cl list", "POST /" H11 "Content-Length: 1,1\r\n\r\n", PT_H1_EBAD),
    ROW("cl alpha", "POST /" H11 "Content-Length: abc\r\n\r\n", PT_H1_EBAD),
    ROW("cl plus", "POST /" H11 "Content-Length: +5\r\n\r\n", PT_H1_EBAD),
    ROW("cl minus", "POST /" H11 "Content-Length: -5\r\n\r\n", PT_H1_EBAD),
    ROW("cl empty", "POST /" H11 "Content-Length:\r\n\r\n", PT_H1_EBAD),
    ROW("cl inner space", "POST /" H11 "Content-Length: 5 5\r\n\r\n", PT_H1_EBAD),
    ROW("cl hex", "POST /" H11 "Content-Length: 0x5\r\n\r\n", PT_H1_EBAD),
    ROW("cl over 2^62", "POST /" H11 "Content-Length: 4611686018427387905\r\n\r\n", PT_H1_EBAD),
    ROW("cl overflow", "POST /" H11 "Content-Length: 99999999999999999999999\r\n\r\n", PT_H1_EBAD),
    ROW("te gzip only", "POST /" H11 "Transfer-Encoding: gzip\r\n\r\n", PT_H1_EBAD),
    ROW("te chunked not last", "POST /" H11 "Transfer-Encoding: chunked, gzip\r\n\r\n", PT_H1_EBAD),
    ROW("te chunked twice", "POST /" H11 "Transfer-Encoding: chunked, chunked\r\n\r\n", PT_H1_EBAD),
    ROW("te chunked two headers",
        "POST /" H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        PT_H1_EBAD),
    ROW("te empty", "POST /" H11 "Transfer-Encoding:\r\n\r\n", PT_H1_EBAD),
    ROW("te commas", "POST /" H11 "Transfer-Encoding: , ,\r\n\r\n", PT_H1_EBAD),
    ROW("te chunked param", "POST /" H11 "Transfer-Encoding: chunked;a=b\r\n\r\n", PT_H1_EBAD),
    ROW("te junk", "POST /" H11 "Transfer-Encoding: chunked x\r\n\r\n", PT_H1_EBAD),
    ROW("te quoted", "POST /" H11 "Transfer-Encoding: \"chunked\"\r\n\r\n", PT_H1_EBAD),
    ROW("te in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", PT_H1_EBAD),
    /* header syntax */
    ROW("space before colon", "GET /" H11 "X-A : b\r\n\r\n", PT_H1_EBAD),
    ROW("tab before colon", "GET /" H11 "X-A\t: b\r\n\r\n", PT_H1_EBAD),
    ROW("te space before colon", "POST /" H11 "Transfer-Encoding : chunked\r\n\r\n", PT_H1_EBAD),
    ROW("obs-fold", "GET /" H11 "X-A: b\r\n c\r\n\r\n", PT_H1_EBAD),
    ROW("obs-fold tab", "GET /" H11 "X-A: b\r\n\tc\r\n\r\n", PT_H1_EBAD),
    ROW("space after request line", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", PT_H1_EBAD),
    ROW("bare lf header", "GET /" H11 "X: b\n\r\n", PT_H1_EBAD),
    ROW("bare lf request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", PT_H1_EBAD),
    ROW("bare lf end", "GET /" H11 "\n", PT_H1_EBAD),
    ROW("all bare lf", "GET / HTTP/1.1\nHost: a\n\n", PT_H1_EBAD),
    ROW("bare cr value", "GET /" H11 "X: a\rb\r\n\r\n", PT_H1_EBAD),
    ROW("bare cr end", "GET /" H11 "\rX\r\n\r\n", PT_H1_EBAD),
    ROW("bare cr request line", "GET / HTTP/1.1\rHost: a\r\n\r\n", PT_H1_EBAD),
    ROW("nul value", "GET /" H11 "X: a\0b\r\n\r\n", PT_H1_EBAD),
    ROW("nul name", "GET /" H11 "X\0: b\r\n\r\n", PT_H1_EBAD),
    ROW("ctl value", "GET /" H11 "X: a\x01z\r\n\r\n", PT_H1_EBAD),
    ROW("del value", "GET /" H11 "X: a\x7fz\r\n\r\n", PT_H1_EBAD),
    ROW("esc value", "GET /" H11 "X: a\x1bz\r\n\r\n", PT_H1_EBAD),
    ROW("name not token", "GET /" H11 "X(y): b\r\n\r\n", PT_H1_EBAD),
    ROW("name utf8", "GET /" H11 "X\xc3\xa9: b\r\n\r\n", PT_H1_EBAD),
    ROW("empty name", "GET /" H11 ": b\r\n\r\n", PT_H1_EBAD),
    ROW("no colon", "GET /" H11 "X-A b\r\n\r\n", PT_H1_EBAD),
    /* request line */
    ROW("method not token", "GE(T /" H11 "\r\n", PT_H1_EBAD),
    ROW("method empty", " /" H11 "\r\n", PT_H1_EBAD),
    ROW("method tab", "GET\t/" H11 "\r\n", PT_H1_EBAD),
    ROW("two sp after method", "GET  /" H11 "\r\n", PT_H1_EBAD),
    ROW("two sp after target", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", PT_H1_EBAD),
    ROW("trailing sp", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", PT_H1_EBAD),
    ROW("four parts", "GET / HTTP/1.1 x\r\nHost: a\r\n\r\n", PT_H1_EBAD),
    ROW("target relative", "GET foo" H11 "\r\n", PT_H1_EBAD),
    ROW("target star get", "GET *" H11 "\r\n", PT_H1_EBAD),
    ROW("target star path", "OPTIONS */x" H11 "\r\n", PT_H1_EBAD),
    ROW("target authority get", "GET example.com:80" H11 "\r\n", PT_H1_EBAD),
    ROW("connect origin", "CONNECT /" H11 "\r\n", PT_H1_EBAD),
    ROW("connect no port", "CONNECT example.com" H11 "\r\n", PT_H1_EBAD),
    ROW("connect bad port", "CONNECT example.com:99999" H11 "\r\n", PT_H1_EBAD),
    ROW("connect path", "CONNECT example.com:443/x" H11 "\r\n", PT_H1_EBAD),
    ROW("absolute userinfo", "GET http://u@example.com/" H11 "\r\n", PT_H1_EBAD),
    ROW("absolute empty authority", "GET http:///x" H11 "\r\n", PT_H1_EBAD),
    ROW("absolute no slashes", "GET http:x" H11 "\r\n", PT_H1_EBAD),
    /* a fragment is never sent (RFC 9112 §3.2): '#' anywhere in any form is refused */
    ROW("target fragment", "GET /a#b" H11 "\r\n", PT_H1_EBAD),
    ROW("target fragment only", "GET /#" H11 "\r\n", PT_H1_EBAD),
    ROW("target fragment in query", "GET /a?b=c#d" H11 "\r\n", PT_H1_EBAD),
    ROW("absolute fragment", "GET http://example.com/a#b" H11 "\r\n", PT_H1_EBAD),
    ROW("absolute fragment after host", "GET http://example.com#b" H11 "\r\n", PT_H1_EBAD),
    ROW("connect fragment", "CONNECT example.com:443#" H11 "\r\n", PT_H1_EBAD),
    ROW("target high byte", "GET /\xc3\xa9" H11 "\r\n", PT_H1_EBAD),
    ROW("target tab", "GET /a\tb" H11 "\r\n", PT_H1_EBAD),
    ROW("target nul", "GET /a\0b" H11 "\r\n", PT_H1_EBAD),
    ROW("target del", "GET /a\x7f" H11 "\r\n", PT_H1_EBAD),
    ROW("empty request line", "\r\n\r\n", PT_H1_EBAD),
    /* host */
    ROW("missing host", "GET / HTTP/1.1\r\n\r\n", PT_H1_EBAD),
    ROW("two hosts", "GET /" H11 "Host: a\r\n\r\n", PT_H1_EBAD),
    ROW("two hosts 1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", PT_H1_EBAD),
    ROW("host space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", PT_H1_EBAD),
    ROW("host slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", PT_H1_EBAD),
    ROW("host at", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", PT_H1_EBAD),
    ROW("host port alpha", "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", PT_H1_EBAD),
    ROW("host port big", "GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n", PT_H1_EBAD),
    ROW("host v6 open", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", PT_H1_EBAD),
    ROW("host two colons", "GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n", PT_H1_EBAD),
    /* versions */
    ROW("http/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", PT_H1_EVERSION),
    ROW("http/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", PT_H1_EVERSION),
    ROW("http/0.9 version", "GET / HTTP/0.9\r\n\r\n", PT_H1_EVERSION),
    ROW("lower version", "GET / http/1.1\r\nHost: a\r\n\r\n", PT_H1_EVERSION),
    ROW("http/1.10", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", PT_H1_EVERSION),
    ROW("http/0.9", "GET /\r\n\r\n", PT_H1_EVERSION),
    ROW("missing version", "GET / \r\nHost: a\r\n\r\n", PT_H1_EVERSION),
};

static void test_request_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
        const struct code_case *c = &req_cases[i];
        struct pt_h1_request r;
        struct pt_field h[NHDR];
        size_t scanned = 0;
        int want = c->rc == 0 ? (int)c->n : c->rc;

        /* Every row is a complete head for find_head_end, bare-LF endings included. */
        ssize_t end = pt_h1_find_head_end(c->in, c->n, &scanned);
        if (end != (ssize_t)c->n && c->rc != PT_H1_EBAD)
            fail_msg("%s: find_head_end %zd, want %zu", c->name, end, c->n);
        int rc = parse_req(c->in, c->n, &r, h, NHDR, URI_MAX);
        if (rc != want)
            fail_msg("request case '%s': got %d, want %d", c->name, rc, want);
    }
}

static void test_request_get_fields(void **state)
{
    (void)state;
    static const char in[] = "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\n"
                             "User-Agent:   curl/8  \r\nAccept: */*\r\n\r\n";
    struct pt_h1_request r;
    struct pt_field h[NHDR];
    int rc = parse_req(in, sizeof(in) - 1, &r, h, NHDR, URI_MAX);
    assert_int_equal(rc, sizeof(in) - 1);
    assert_true(PT_STR_EQ_LIT(r.method, "GET"));
    assert_int_equal(r.method_id, PT_METHOD_GET);
    assert_true(PT_STR_EQ_LIT(r.target, "/index.html?q=1"));
    assert_int_equal(r.minor_version, 1);
    assert_int_equal(r.num_headers, 3);
    assert_true(PT_STR_EQ_LIT(h[0].name, "Host"));
    assert_true(PT_STR_EQ_LIT(h[0].value, "example.com"));
    assert_true(PT_STR_EQ_LIT(h[1].name, "User-Agent"));
    assert_true(PT_STR_EQ_LIT(h[1].value, "curl/8"));
    assert_true(PT_STR_EQ_LIT(h[2].value, "*/*"));
    assert_true(r.has_host);
    assert_true(PT_STR_EQ_LIT(r.host, "example.com"));
    assert_int_equal(r.framing.content_length, -1);
    assert_false(r.framing.is_chunked);
    assert_false(r.framing.conn_close);
    assert_false(r.framing.has_upgrade);
    assert_false(r.expect_continue);
}

static void test_request_framing_fields(void **state)
{
    (void)state;
    struct pt_h1_request r;
    struct pt_field h[NHDR];

    static const char post[] = "POST /up HTTP/1.1\r\nHost: a\r\ncontent-length: 42\r\n"
                               "Expect: 100-Continue\r\nConnection: Keep-Alive, Upgrade\r\n"
                               "connection: CLOSE\r\nUpgrade: websocket\r\n\r\n";
    assert_int_equal(parse_req(post, sizeof(post) - 1, &r, h, NHDR, URI_MAX), sizeof(post) - 1);
    assert_int_equal(r.method_id, PT_METHOD_POST);
    assert_int_equal(r.framing.content_length, 42);
    assert_true(r.expect_continue);
    assert_true(r.framing.conn_keepalive);
    assert_true(r.framing.conn_close);
    assert_true(r.framing.has_upgrade);

    static const char ch[] = "PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n";
    assert_int_equal(parse_req(ch, sizeof(ch) - 1, &r, h, NHDR, URI_MAX), sizeof(ch) - 1);
    assert_true(r.framing.is_chunked);
    assert_int_equal(r.framing.content_length, -1);
    assert_int_equal(r.method_id, PT_METHOD_PUT);

    static const char v10[] = "HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    assert_int_equal(parse_req(v10, sizeof(v10) - 1, &r, h, NHDR, URI_MAX), sizeof(v10) - 1);
    assert_int_equal(r.minor_version, 0);
    assert_int_equal(r.method_id, PT_METHOD_HEAD);
    assert_false(r.has_host);
    assert_int_equal(r.host.n, 0);
    assert_true(r.framing.conn_keepalive);
    assert_false(r.framing.conn_close);

    static const char exp[] = "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continuex\r\n"
                              "Connection: closed\r\n\r\n";
    assert_int_equal(parse_req(exp, sizeof(exp) - 1, &r, h, NHDR, URI_MAX), sizeof(exp) - 1);
    assert_false(r.expect_continue);
    assert_false(r.framing.conn_close);

    static const char conn[] =
        "CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n";
    assert_int_equal(parse_req(conn, sizeof(conn) - 1, &r, h, NHDR, URI_MAX), sizeof(conn) - 1);
    assert_int_equal(r.method_id, PT_METHOD_CONNECT);
    assert_true(PT_STR_EQ_LIT(r.target, "db.internal:5432"));

    static const char opt[] = "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(parse_req(opt, sizeof(opt) - 1, &r, h, NHDR, URI_MAX), sizeof(opt) - 1);
    assert_int_equal(r.method_id, PT_METHOD_OPTIONS);
    assert_true(PT_STR_EQ_LIT(r.target, "*"));
}

/* RFC 9112 §3.2.2: an absolute-form target's authority is the request's host, whatever the
 * Host header says; the header itself is kept in the array as received. */
static void test_request_absolute_form_host(void **state)
{
    (void)state;
    struct pt_h1_request r;
    struct pt_field h[NHDR];

    static const char abs[] =
        "GET http://public.example:8080/a?b HTTP/1.1\r\nHost: internal.example\r\n\r\n";
    assert_int_equal(parse_req(abs, sizeof(abs) - 1, &r, h, NHDR, URI_MAX), sizeof(abs) - 1);
    assert_true(PT_STR_EQ_LIT(r.host, "public.example:8080"));
    assert_true(r.has_host);
    assert_true(PT_STR_EQ_LIT(h[0].value, "internal.example"));

    static const char query[] = "GET http://q.example?x HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(parse_req(query, sizeof(query) - 1, &r, h, NHDR, URI_MAX), sizeof(query) - 1);
    assert_true(PT_STR_EQ_LIT(r.host, "q.example"));

    static const char v10[] = "GET http://old.example/ HTTP/1.0\r\n\r\n";
    assert_int_equal(parse_req(v10, sizeof(v10) - 1, &r, h, NHDR, URI_MAX), sizeof(v10) - 1);
    assert_true(PT_STR_EQ_LIT(r.host, "old.example"));
    assert_false(r.has_host);

    static const char origin[] = "GET /a HTTP/1.1\r\nHost: internal.example\r\n\r\n";
    assert_int_equal(parse_req(origin, sizeof(origin) - 1, &r, h, NHDR, URI_MAX),
                     sizeof(origin) - 1);
    assert_true(PT_STR_EQ_LIT(r.host, "internal.example"));
}

static void test_request_pipelined(void **state)
{
    (void)state;
    static const char in[] = "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n";
    const size_t first = sizeof("GET /a HTTP/1.1\r\nHost: a\r\n\r\n") - 1;
    struct pt_h1_request r;
    struct pt_field h[NHDR];
    size_t scanned = 0;

    assert_int_equal(pt_h1_find_head_end(in, sizeof(in) - 1, &scanned), first);
    /* Given more than the head, the parser still stops at its end and leaves the rest. */
    assert_int_equal(parse_req(in, sizeof(in) - 1, &r, h, NHDR, URI_MAX), first);
    assert_true(PT_STR_EQ_LIT(r.target, "/a"));
    scanned = 0;
    assert_int_equal(pt_h1_find_head_end(in + first, sizeof(in) - 1 - first, &scanned), first);
    assert_int_equal(parse_req(in + first, first, &r, h, NHDR, URI_MAX), first);
    assert_true(PT_STR_EQ_LIT(r.target, "/b"));
}

static void test_request_limits(void **state)
{
    (void)state;
    struct pt_h1_request r;
    struct pt_field h[NHDR];
    static const char in[] = "GET /0123456789 HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
    const size_t n = sizeof(in) - 1;

    assert_int_equal(parse_req(in, n, &r, h, NHDR, 11), n);
    assert_int_equal(parse_req(in, n, &r, h, NHDR, 10), PT_H1_EURI);
    assert_int_equal(parse_req(in, n, &r, h, 3, URI_MAX), n);
    assert_int_equal(r.num_headers, 3);
    assert_int_equal(parse_req(in, n, &r, h, 2, URI_MAX), PT_H1_ETOOMANY);
    assert_int_equal(parse_req(in, n, &r, h, 0, URI_MAX), PT_H1_ETOOMANY);

    /* Truncated heads never read past len. */
    for (size_t k = 0; k < n; k++) {
        char *copy = malloc(k ? k : 1);
        memcpy(copy, in, k);
        int rc = parse_req(copy, k, &r, h, NHDR, URI_MAX);
        if (rc != PT_H1_INCOMPLETE && rc != PT_H1_EBAD)
            fail_msg("truncated at %zu: %d", k, rc);
        free(copy);
    }
}

/* Every byte class at every offset of a long value and target, so the 16-byte scans and their
 * scalar tails are both exercised. */
static void test_byte_positions(void **state)
{
    (void)state;
    static const struct {
        unsigned char c;
        bool value_ok;
        bool target_ok;
    } bytes[] = {{'a', true, true},    {'\t', true, false},  {' ', true, false},
                 {0x80, true, false},  {0xff, true, false},  {0x7f, false, false},
                 {0x00, false, false}, {0x01, false, false}, {0x1f, false, false},
                 {'\r', false, false}, {'\n', false, false}, {'~', true, true},
                 {'#', true, false}};
    struct pt_h1_request r;
    struct pt_field h[NHDR];
    char in[256];
#define APPEND(lit) (memcpy(in + n, lit, sizeof(lit) - 1), n += sizeof(lit) - 1)

    for (size_t b = 0; b < sizeof(bytes) / sizeof(bytes[0]); b++) {
        for (size_t k = 0; k < 40; k++) {
            /* value */
            size_t n = 0;
            APPEND("GET / HTTP/1.1\r\nHost: a\r\nX: v");
            for (size_t i = 0; i < 40; i++)
                in[n++] = i == k ? (char)bytes[b].c : 'x';
            APPEND("z\r\n\r\n");
            int rc = parse_req(in, n, &r, h, NHDR, URI_MAX);
            if ((rc == (int)n) != bytes[b].value_ok)
                fail_msg("value byte %#x at %zu: %d", bytes[b].c, k, rc);
            if (rc > 0 && h[1].value.n != 42)
                fail_msg("value byte %#x at %zu: value length %zu", bytes[b].c, k, h[1].value.n);
            /* target */
            n = 0;
            APPEND("GET /");
            for (size_t i = 0; i < 40; i++)
                in[n++] = i == k ? (char)bytes[b].c : 'x';
            APPEND(" HTTP/1.1\r\nHost: a\r\n\r\n");
            rc = parse_req(in, n, &r, h, NHDR, URI_MAX);
            if ((rc == (int)n) != bytes[b].target_ok)
                fail_msg("target byte %#x at %zu: %d", bytes[b].c, k, rc);
        }
    }
#undef APPEND
}

static void test_method_id(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int id;
    } m[] = {{"GET", PT_METHOD_GET},         {"HEAD", PT_METHOD_HEAD},
             {"POST", PT_METHOD_POST},       {"PUT", PT_METHOD_PUT},
             {"DELETE", PT_METHOD_DELETE},   {"CONNECT", PT_METHOD_CONNECT},
             {"OPTIONS", PT_METHOD_OPTIONS}, {"TRACE", PT_METHOD_TRACE},
             {"PATCH", PT_METHOD_PATCH},     {"get", PT_METHOD_OTHER},
             {"GETS", PT_METHOD_OTHER},      {"PROPFIND", PT_METHOD_OTHER},
             {"", PT_METHOD_OTHER}};
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
        assert_int_equal(pt_http_method_id(m[i].s, strlen(m[i].s)), m[i].id);
}

#define RESP(name, in, rc)                                                                         \
    {                                                                                              \
        name, in, sizeof(in) - 1, rc                                                               \
    }

static const struct code_case resp_cases[] = {
    RESP("200 cl", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 0),
    RESP("204", "HTTP/1.1 204 No Content\r\n\r\n", 0),
    RESP("304", "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n", 0),
    RESP("100", "HTTP/1.1 100 Continue\r\n\r\n", 0),
    RESP("101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", 0),
    RESP("chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0),
    RESP("no length", "HTTP/1.0 200 OK\r\nServer: x\r\n\r\n", 0),
    RESP("empty reason sp", "HTTP/1.1 200 \r\n\r\n", 0),
    RESP("empty reason no sp", "HTTP/1.1 200\r\n\r\n", 0),
    RESP("999", "HTTP/1.1 999 Odd\r\n\r\n", 0),
    RESP("reason spaces", "HTTP/1.1 404 Not  Found \t\r\n\r\n", 0),
    RESP("cl repeated equal", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
         0),
    RESP("cl repeated differ", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
         PT_H1_EBAD),
    RESP("cl list", "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", PT_H1_EBAD),
    RESP("cl bad", "HTTP/1.1 200 OK\r\nContent-Length: 5a\r\n\r\n", PT_H1_EBAD),
    RESP("cl and te", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
         PT_H1_EBAD),
    RESP("te gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", PT_H1_EBAD),
    /* never relabelled as plain chunked: refused (502), see h1_parse.c */
    RESP("te gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
         PT_H1_EBAD),
    RESP("te two headers",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n\r\n",
         PT_H1_EBAD),
    RESP("te 1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", PT_H1_EBAD),
    RESP("2 digit", "HTTP/1.1 20 OK\r\n\r\n", PT_H1_EBAD),
    RESP("4 digit", "HTTP/1.1 2000 OK\r\n\r\n", PT_H1_EBAD),
    RESP("4 digit no reason", "HTTP/1.1 2000\r\n\r\n", PT_H1_EBAD),
    RESP("099", "HTTP/1.1 099 X\r\n\r\n", PT_H1_EBAD),
    RESP("alpha status", "HTTP/1.1 2x0 X\r\n\r\n", PT_H1_EBAD),
    RESP("two sp", "HTTP/1.1  200 OK\r\n\r\n", PT_H1_EBAD),
    RESP("no status", "HTTP/1.1\r\n\r\n", PT_H1_EBAD),
    RESP("bare lf status", "HTTP/1.1 200 OK\n\r\n", PT_H1_EBAD),
    RESP("bare lf all", "HTTP/1.1 200 OK\nA: b\n\n", PT_H1_EBAD),
    RESP("ctl reason", "HTTP/1.1 200 O\x01K\r\n\r\n", PT_H1_EBAD),
    RESP("not http", "<html>\r\n\r\n", PT_H1_EBAD),
    RESP("obs-fold", "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", PT_H1_EBAD),
    RESP("space before colon", "HTTP/1.1 200 OK\r\nA : b\r\n\r\n", PT_H1_EBAD),
    RESP("nul header", "HTTP/1.1 200 OK\r\nA: \0\r\n\r\n", PT_H1_EBAD),
    RESP("http/2", "HTTP/2 200 OK\r\n\r\n", PT_H1_EVERSION),
    RESP("http/2.0", "HTTP/2.0 200 OK\r\n\r\n", PT_H1_EVERSION),
    RESP("http/1.2", "HTTP/1.2 200 OK\r\n\r\n", PT_H1_EVERSION),
    RESP("lower http", "http/1.1 200 OK\r\n\r\n", PT_H1_EVERSION),
};

static void test_response_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(resp_cases) / sizeof(resp_cases[0]); i++) {
        const struct code_case *c = &resp_cases[i];
        struct pt_h1_response r;
        struct pt_field h[NHDR];
        int want = c->rc == 0 ? (int)c->n : c->rc;
        int rc = parse_resp(c->in, c->n, &r, h, NHDR);
        if (rc != want)
            fail_msg("response case '%s': got %d, want %d", c->name, rc, want);
    }
}

static void test_response_fields(void **state)
{
    (void)state;
    struct pt_h1_response r;
    struct pt_field h[NHDR];

    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\n";
    assert_int_equal(parse_resp(ok, sizeof(ok) - 1, &r, h, NHDR), sizeof(ok) - 1);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.minor_version, 1);
    assert_true(PT_STR_EQ_LIT(r.reason, "OK"));
    assert_int_equal(r.framing.content_length, 12);
    assert_true(r.framing.conn_close);
    assert_int_equal(r.num_headers, 2);

    static const char ch[] =
        "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_int_equal(parse_resp(ch, sizeof(ch) - 1, &r, h, NHDR), sizeof(ch) - 1);
    assert_int_equal(r.status, 503);
    assert_true(r.framing.is_chunked);
    assert_true(PT_STR_EQ_LIT(r.reason, "Service Unavailable"));

    static const char none[] = "HTTP/1.0 304\r\n\r\n";
    assert_int_equal(parse_resp(none, sizeof(none) - 1, &r, h, NHDR), sizeof(none) - 1);
    assert_int_equal(r.status, 304);
    assert_int_equal(r.minor_version, 0);
    assert_int_equal(r.reason.n, 0);
    assert_int_equal(r.framing.content_length, -1);
    assert_false(r.framing.is_chunked);

    static const char up[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
                             "Upgrade: websocket\r\n\r\nRAWBYTES";
    assert_int_equal(parse_resp(up, sizeof(up) - 1, &r, h, NHDR), sizeof(up) - 1 - 8);
    assert_true(r.framing.has_upgrade);

    static const char many[] = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n";
    assert_int_equal(parse_resp(many, sizeof(many) - 1, &r, h, 1), PT_H1_ETOOMANY);
}

/* find_head_end fed one byte more per call must find the same end as when fed whole. */
static void check_head_end_bytewise(const char *in, size_t n, ssize_t want)
{
    size_t scanned = 0;
    ssize_t got = PT_H1_INCOMPLETE;
    size_t k;

    for (k = 1; k <= n; k++) {
        got = pt_h1_find_head_end(in, k, &scanned);
        if (got != PT_H1_INCOMPLETE)
            break;
        assert_int_equal(scanned, k);
    }
    assert_int_equal(got, want);
    if (want > 0)
        assert_int_equal(k, (size_t)want);
    scanned = 0;
    assert_int_equal(pt_h1_find_head_end(in, n, &scanned), want);
}

static void test_find_head_end(void **state)
{
    (void)state;
#define HE(s, want) check_head_end_bytewise(s, sizeof(s) - 1, want)
    HE("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27);
    HE("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n", 27);
    HE("GET / HTTP/1.1\r\nHost: a\n\n", 25);
    HE("GET / HTTP/1.1\r\nHost: a\r\n\n", 26);
    HE("GET / HTTP/1.1\nHost: a\n\r\n", 25);
    HE("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 29);
    HE("GET / HTTP/1.1\r\nHost: a\r\n", PT_H1_INCOMPLETE);
    HE("GET / HTTP/1.1\r\nHost: a\r\n\r", PT_H1_INCOMPLETE);
    HE("\r\n", PT_H1_INCOMPLETE);
    HE("\r\r\r\r", PT_H1_INCOMPLETE);
    HE("a", PT_H1_INCOMPLETE);
#undef HE
    size_t scanned = 0;
    assert_int_equal(pt_h1_find_head_end("", 0, &scanned), PT_H1_INCOMPLETE);
    assert_int_equal(scanned, 0);
    /* A stale position beyond the buffer is clamped rather than trusted. */
    scanned = 100;
    assert_int_equal(pt_h1_find_head_end("ab", 2, &scanned), PT_H1_INCOMPLETE);
    assert_int_equal(scanned, 2);
}

/* ---- chunked ---- */

struct chunk_case {
    const char *name;
    const char *in;
    size_t n;
    const char *out; /* decoded bytes (up to the error or the end of input) */
    size_t out_n;
    ssize_t rc; /* bytes after the body, PT_H1_INCOMPLETE or PT_H1_EBAD */
};

#define CK(name, in, out, rc)                                                                      \
    {                                                                                              \
        name, in, sizeof(in) - 1, out, sizeof(out) - 1, rc                                         \
    }

static const struct chunk_case chunk_cases[] = {
    CK("one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello", 0),
    CK("following bytes", "5\r\nhello\r\n0\r\n\r\nGET /", "hello", 5),
    CK("several", "3\r\nabc\r\n2\r\nde\r\n1\r\nf\r\n0\r\n\r\n", "abcdef", 0),
    CK("empty body", "0\r\n\r\n", "", 0),
    CK("hex upper", "A\r\n0123456789\r\n0\r\n\r\n", "0123456789", 0),
    CK("hex lower", "a\r\n0123456789\r\n0\r\n\r\n", "0123456789", 0),
    CK("leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello", 0),
    CK("16 digits", "0000000000000005\r\nhello\r\n0\r\n\r\n", "hello", 0),
    CK("ext", "5;foo=bar\r\nhello\r\n0;last\r\n\r\n", "hello", 0),
    CK("ext bws", "5 ; foo = \"b a;r\"\r\nhello\r\n0\r\n\r\n", "hello", 0),
    CK("ext many", "2;a;b=1;c=\"x\\\"y\"\r\nhi\r\n0\r\n\r\n", "hi", 0),
    CK("trailers", "2\r\nhi\r\n0\r\nX-Sum: 1\r\nY:\t2 \r\n\r\nZ", "hi", 1),
    CK("data has crlf", "4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n", 0),
    CK("binary data", "3\r\n\0\xff\n\r\n0\r\n\r\n", "\0\xff\n", 0),
    CK("size 2^62", "4000000000000000\r\nab", "ab", PT_H1_INCOMPLETE),
    CK("partial data", "5\r\nhel", "hel", PT_H1_INCOMPLETE),
    CK("partial trailer", "1\r\nx\r\n0\r\nA: b\r\n", "x", PT_H1_INCOMPLETE),
    CK("empty input", "", "", PT_H1_INCOMPLETE),
    CK("empty size", "\r\nhello\r\n0\r\n\r\n", "", PT_H1_EBAD),
    CK("not hex", "g\r\n", "", PT_H1_EBAD),
    CK("0x prefix", "0x5\r\nhello\r\n", "", PT_H1_EBAD),
    CK("minus", "-5\r\nhello\r\n", "", PT_H1_EBAD),
    CK("plus", "+5\r\nhello\r\n", "", PT_H1_EBAD),
    CK("leading space", " 5\r\nhello\r\n", "", PT_H1_EBAD),
    CK("17 digits", "00000000000000005\r\nhello\r\n0\r\n\r\n", "", PT_H1_EBAD),
    CK("over 2^62", "4000000000000001\r\n", "", PT_H1_EBAD),
    CK("huge", "ffffffffffffffff\r\n", "", PT_H1_EBAD),
    CK("bws no ext", "5 \r\nhello\r\n0\r\n\r\n", "", PT_H1_EBAD),
    CK("size junk", "5x\r\nhello\r\n", "", PT_H1_EBAD),
    CK("bare lf size", "5\nhello\r\n0\r\n\r\n", "", PT_H1_EBAD),
    CK("bare cr size", "5\rhello\r\n", "", PT_H1_EBAD),
    CK("ext ctl", "5;a\x01\r\nhello\r\n", "", PT_H1_EBAD),
    CK("ext bare lf", "5;a\nhello\r\n", "", PT_H1_EBAD),
    CK("data too long", "5\r\nhelloX\r\n0\r\n\r\n", "hello", PT_H1_EBAD),
    CK("data bare lf", "5\r\nhello\n0\r\n\r\n", "hello", PT_H1_EBAD),
    /* The CR and the LF after the data are each checked: a wrong byte in place of either, with
     * the other one right, must fail (once the CR check alone was not pinned by any row). */
    CK("data wrong byte then lf", "5\r\nhelloX\n0\r\n\r\n", "hello", PT_H1_EBAD),
    CK("data cr then wrong byte", "5\r\nhello\rX0\r\n\r\n", "hello", PT_H1_EBAD),
    CK("data no crlf", "5\r\nhello0\r\n\r\n", "hello", PT_H1_EBAD),
    CK("last bare lf", "0\n\r\n", "", PT_H1_EBAD),
    CK("final bare lf", "0\r\n\n", "", PT_H1_EBAD),
    CK("trailer bare lf", "0\r\nA: b\n\r\n", "", PT_H1_EBAD),
    CK("trailer fold", "0\r\nA: b\r\n c\r\n\r\n", "", PT_H1_EBAD),
    CK("trailer space colon", "0\r\nA : b\r\n\r\n", "", PT_H1_EBAD),
    CK("trailer no colon", "0\r\nAb\r\n\r\n", "", PT_H1_EBAD),
    CK("trailer empty name", "0\r\n: b\r\n\r\n", "", PT_H1_EBAD),
    CK("trailer nul", "0\r\nA: \0\r\n\r\n", "", PT_H1_EBAD),
    CK("trailer cr", "0\r\nA: b\rc\r\n\r\n", "", PT_H1_EBAD),
};

struct decoded {
    char out[512];
    size_t out_n;
    char rest[64];
    size_t rest_n;
    ssize_t rc;
};

/*
 * Feeds in[0..n) to a fresh decoder in pieces ending at cuts[0..ncuts) (then n), each piece in
 * its own buffer as a socket read would deliver it; collects the decoded bytes and, once the
 * body ends, the bytes after it (those returned moved plus the pieces never fed).
 */
static void decode_pieces(const char *in, size_t n, const size_t *cuts, size_t ncuts,
                          size_t max_trailer, struct decoded *res)
{
    struct pt_h1_chunked d;
    size_t start = 0;

    memset(&d, 0, sizeof(d));
    d.max_trailer_bytes = max_trailer;
    memset(res, 0, sizeof(*res));
    res->rc = PT_H1_INCOMPLETE;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t stop = i < ncuts ? cuts[i] : n;
        size_t len = stop - start;
        char *piece = malloc(len ? len : 1);
        memcpy(piece, in + start, len);
        ssize_t rc = pt_h1_chunked_decode(&d, piece, &len);
        assert_true(len <= stop - start);
        assert_true(res->out_n + len <= sizeof(res->out));
        memcpy(res->out + res->out_n, piece, len);
        res->out_n += len;
        if (rc >= 0) {
            assert_true((size_t)rc <= stop - start - len);
            memcpy(res->rest, piece + len, (size_t)rc);
            memcpy(res->rest + rc, in + stop, n - stop);
            res->rest_n = (size_t)rc + (n - stop);
            res->rc = (ssize_t)res->rest_n;
            free(piece);
            return;
        }
        free(piece);
        res->rc = rc;
        if (rc == PT_H1_EBAD)
            return;
        start = stop;
    }
}

static void check_same(const struct chunk_case *c, const struct decoded *got, const char *how)
{
    if (got->rc != c->rc)
        fail_msg("chunked '%s' (%s): rc %zd, want %zd", c->name, how, got->rc, c->rc);
    if (got->out_n != c->out_n || memcmp(got->out, c->out, c->out_n) != 0)
        fail_msg("chunked '%s' (%s): decoded %zu bytes, want %zu", c->name, how, got->out_n,
                 c->out_n);
    if (c->rc > 0 && memcmp(got->rest, c->in + c->n - (size_t)c->rc, (size_t)c->rc) != 0)
        fail_msg("chunked '%s' (%s): trailing bytes differ", c->name, how);
}

static void test_chunked_table(void **state)
{
    (void)state;
    struct decoded got;
    size_t cuts[512];

    for (size_t i = 0; i < sizeof(chunk_cases) / sizeof(chunk_cases[0]); i++) {
        const struct chunk_case *c = &chunk_cases[i];
        assert_true(c->n < sizeof(cuts) / sizeof(cuts[0]));
        decode_pieces(c->in, c->n, NULL, 0, 0, &got);
        check_same(c, &got, "whole");
        for (size_t k = 0; k <= c->n; k++) {
            cuts[0] = k;
            decode_pieces(c->in, c->n, cuts, 1, 0, &got);
            check_same(c, &got, "split");
        }
        for (size_t k = 0; k < c->n; k++)
            cuts[k] = k + 1;
        decode_pieces(c->in, c->n, cuts, c->n ? c->n - 1 : 0, 0, &got);
        check_same(c, &got, "bytewise");
    }
}

static void test_chunked_limits(void **state)
{
    (void)state;
    struct decoded got;
    char big[9000];
    size_t n;

    /* A size line of 4096 bytes with its extensions passes; one byte more does not. */
    for (size_t line = 4095; line <= 4097; line++) {
        n = 0;
        big[n++] = '1';
        big[n++] = ';';
        while (n < line)
            big[n++] = 'x';
        memcpy(big + n, "\r\nA\r\n0\r\n\r\n", 10);
        n += 10;
        decode_pieces(big, n, NULL, 0, 0, &got);
        assert_int_equal(got.rc, line <= 4096 ? 0 : PT_H1_EBAD);
    }

    /* Trailers are bounded by max_trailer_bytes (final CRLF included). */
    static const char tr[] = "0\r\nAb: cd\r\n\r\n"; /* 10 trailer bytes */
    decode_pieces(tr, sizeof(tr) - 1, NULL, 0, 10, &got);
    assert_int_equal(got.rc, 0);
    decode_pieces(tr, sizeof(tr) - 1, NULL, 0, 9, &got);
    assert_int_equal(got.rc, PT_H1_EBAD);
    n = 0;
    memcpy(big, "0\r\n", 3);
    n = 3;
    while (n < 8300) {
        memcpy(big + n, "X: 0123456789\r\n", 15);
        n += 15;
    }
    memcpy(big + n, "\r\n", 2);
    n += 2;
    decode_pieces(big, n, NULL, 0, 0, &got);
    assert_int_equal(got.rc, PT_H1_EBAD);
    decode_pieces(big, n, NULL, 0, 16384, &got);
    assert_int_equal(got.rc, 0);
}

static void test_chunked_after_end(void **state)
{
    (void)state;
    struct pt_h1_chunked d;
    char buf[64];
    size_t len;

    memset(&d, 0, sizeof(d));
    memcpy(buf, "2\r\nok\r\n0\r\n\r\nNEXT", 16);
    len = 16;
    assert_int_equal(pt_h1_chunked_decode(&d, buf, &len), 4);
    assert_int_equal(len, 2);
    assert_memory_equal(buf, "okNEXT", 6);
    /* Once the body has ended every further byte belongs to what follows. */
    memcpy(buf, "MORE", 4);
    len = 4;
    assert_int_equal(pt_h1_chunked_decode(&d, buf, &len), 4);
    assert_int_equal(len, 0);

    /* Errors are sticky. */
    memset(&d, 0, sizeof(d));
    memcpy(buf, "z\r\n", 3);
    len = 3;
    assert_int_equal(pt_h1_chunked_decode(&d, buf, &len), PT_H1_EBAD);
    memcpy(buf, "0\r\n\r\n", 5);
    len = 5;
    assert_int_equal(pt_h1_chunked_decode(&d, buf, &len), PT_H1_EBAD);
}

/* want_trailers: the decoder stops before the first trailer field, then keeps the section's
   lines in the caller's buffer once it has one; split at every byte, the result is the same. */
static void test_chunked_keeps_trailers(void **state)
{
    (void)state;
    static const char in[] = "3\r\nabc\r\n0\r\nX-A: 1\r\nX-B:two \r\n\r\nNEXT";
    size_t n = sizeof(in) - 1;
    for (size_t cut = 0; cut <= n; cut++) {
        struct pt_h1_chunked d;
        char tr[64], data[64], rest[64];
        size_t nd = 0, nr = 0;
        memset(&d, 0, sizeof(d));
        d.want_trailers = true;
        const char *pieces[2] = {in, in + cut};
        size_t lens[2] = {cut, n - cut};
        ssize_t rc = PT_H1_INCOMPLETE;
        for (int i = 0; i < 2 && rc == PT_H1_INCOMPLETE; i++) {
            char buf[64];
            memcpy(buf, pieces[i], lens[i]);
            size_t len = lens[i];
            rc = pt_h1_chunked_decode(&d, buf, &len);
            memcpy(data + nd, buf, len);
            nd += len;
            if (rc == PT_H1_TRAILERS) {
                d.tr = tr;
                d.max_trailer_bytes = sizeof(tr);
                size_t m = d.unread;
                rc = pt_h1_chunked_decode(&d, buf + len, &m);
                assert_int_equal(m, 0);
            }
            if (rc >= 0) {
                memcpy(rest, buf + len, (size_t)rc);
                nr = (size_t)rc;
                if (i == 0) {
                    memcpy(rest + nr, pieces[1], lens[1]);
                    nr += lens[1];
                }
            }
        }
        assert_int_equal(rc >= 0, 1);
        assert_int_equal(nd, 3);
        assert_memory_equal(data, "abc", 3);
        assert_int_equal(nr, 4);
        assert_memory_equal(rest, "NEXT", 4);
        assert_int_equal(d.tr_len, 18);
        assert_memory_equal(tr, "X-A: 1\r\nX-B:two \r\n", 18);
        struct pt_field f[2];
        assert_int_equal(pt_h1_trailer_fields(tr, d.tr_len, f, 2), 2);
        assert_true(PT_STR_EQ_LIT(f[0].name, "X-A") && PT_STR_EQ_LIT(f[0].value, "1"));
        assert_true(PT_STR_EQ_LIT(f[1].name, "X-B") && PT_STR_EQ_LIT(f[1].value, "two"));
        assert_int_equal(pt_h1_trailer_fields(tr, d.tr_len, f, 1), -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunked_keeps_trailers),
        cmocka_unit_test(test_request_table),
        cmocka_unit_test(test_request_get_fields),
        cmocka_unit_test(test_request_framing_fields),
        cmocka_unit_test(test_request_absolute_form_host),
        cmocka_unit_test(test_request_pipelined),
        cmocka_unit_test(test_request_limits),
        cmocka_unit_test(test_byte_positions),
        cmocka_unit_test(test_method_id),
        cmocka_unit_test(test_response_table),
        cmocka_unit_test(test_response_fields),
        cmocka_unit_test(test_find_head_end),
        cmocka_unit_test(test_chunked_table),
        cmocka_unit_test(test_chunked_limits),
        cmocka_unit_test(test_chunked_after_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
