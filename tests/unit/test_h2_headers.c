/*
 * test_h2_headers.c - HTTP/2 header blocks to HTTP semantics and back (http/h2_headers.c).
 *
 * Table-driven: each rule of RFC 9113 §8.2/§8.3 and RFC 8441 has a row that breaks it, with the
 * reason it must produce, next to rows that must pass. Every byte is tried in a field name, a
 * value, :path and :authority against the classes the RFCs define, so the byte table in the
 * module is checked too. The sending side is checked field by field, and what it produces must
 * pass the receiving side again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/common.h"
#include "http/h1_parse.h"
#include "http/h2_headers.h"

#define MAXF 16

static const struct pt_h2h_limits lim = {16384, 64, true};

struct block_case {
    const char *name;
    int kind;
    const char *f[2 * MAXF + 1]; /* name, value, ..., NULL */
    int rc;                      /* expected from the field calls or the finish call */
};

#define REQ(...) ":method", "GET", ":scheme", "https", ":authority", "a.example", ":path", "/x"
#define ROW(nm, kind, rc, ...)                                                                     \
    {                                                                                              \
        nm, kind, {__VA_ARGS__, NULL}, rc                                                          \
    }
#define R(nm, rc, ...) ROW(nm, PT_H2H_REQUEST, rc, __VA_ARGS__)

static const struct block_case cases[] = {
    /* accepted requests */
    R("basic", 0, REQ()),
    R("pseudo any order", 0, ":path", "/", ":authority", "a", ":method", "GET", ":scheme", "http"),
    R("host instead of authority", 0, ":method", "GET", ":scheme", "https", ":path", "/", "host",
      "a.example:8443"),
    R("host equal to authority", 0, REQ(), "host", "A.Example"),
    R("empty host without authority, other scheme", 0, ":method", "GET", ":scheme", "foo", ":path",
      "/", "host", ""),
    R("no authority, other scheme", 0, ":method", "GET", ":scheme", "foo", ":path", "/"),
    R("options star", 0, ":method", "OPTIONS", ":scheme", "https", ":authority", "a", ":path", "*"),
    R("connect", 0, ":method", "CONNECT", ":authority", "a.example:443"),
    R("connect v6", 0, ":method", "CONNECT", ":authority", "[::1]:443"),
    R("extended connect", 0, ":method", "CONNECT", ":protocol", "websocket", ":scheme", "https",
      ":authority", "a", ":path", "/chat"),
    R("te trailers", 0, REQ(), "te", "trailers"),
    R("te trailers any case", 0, REQ(), "te", "Trailers"),
    R("cookies", 0, REQ(), "cookie", "a=1", "cookie", "b=2"),
    R("empty value", 0, REQ(), "x-a", ""),
    R("inner space and tab", 0, REQ(), "x-a", "b c\td"),
    R("obs-text", 0, REQ(), "x-a", "caf\xc3\xa9"),
    R("content-length", 0, REQ(), "content-length", "5"),
    R("content-length 2^62", 0, REQ(), "content-length", "4611686018427387904"),
    R("token name", 0, REQ(), "x-!#$%&'*+-.^_`|~0", "v"),
    R("authority port", 0, ":method", "GET", ":scheme", "https", ":authority", "a:8443", ":path",
      "/"),
    R("authority pct", 0, ":method", "GET", ":scheme", "https", ":authority", "a%41b", ":path",
      "/"),
    R("lowercase method is a token", 0, ":method", "get", ":scheme", "https", ":authority", "a",
      ":path", "/"),
    /* pseudo-header rules (RFC 9113 §8.3) */
    R("pseudo after regular", PT_H2H_EPSEUDO_ORDER, ":method", "GET", ":scheme", "https",
      ":authority", "a", "x-a", "b", ":path", "/"),
    R("unknown pseudo", PT_H2H_EPSEUDO, REQ(), ":foo", "x"),
    R("status in request", PT_H2H_EPSEUDO, ":status", "200", REQ()),
    R("bare colon", PT_H2H_EPSEUDO, ":", "x", REQ()),
    R("uppercase pseudo", PT_H2H_EPSEUDO, ":Path", "/", REQ()),
    R("method twice", PT_H2H_EPSEUDO_DUP, REQ(), ":method", "GET"),
    R("path twice", PT_H2H_EPSEUDO_DUP, REQ(), ":path", "/x"),
    R("authority twice", PT_H2H_EPSEUDO_DUP, REQ(), ":authority", "a.example"),
    R("scheme twice", PT_H2H_EPSEUDO_DUP, REQ(), ":scheme", "https"),
    R("no method", PT_H2H_EMISSING, ":scheme", "https", ":authority", "a", ":path", "/"),
    R("no scheme", PT_H2H_EMISSING, ":method", "GET", ":authority", "a", ":path", "/"),
    R("no path", PT_H2H_EMISSING, ":method", "GET", ":scheme", "https", ":authority", "a"),
    R("empty path", PT_H2H_EPATH, ":method", "GET", ":scheme", "https", ":authority", "a", ":path",
      ""),
    R("relative path", PT_H2H_EPATH, ":method", "GET", ":scheme", "https", ":authority", "a",
      ":path", "x"),
    R("absolute path", PT_H2H_EPATH, ":method", "GET", ":scheme", "https", ":authority", "a",
      ":path", "http://a/"),
    R("star with get", PT_H2H_EPATH, ":method", "GET", ":scheme", "https", ":authority", "a",
      ":path", "*"),
    R("star path", PT_H2H_EPATH, ":method", "OPTIONS", ":scheme", "https", ":authority", "a",
      ":path", "*/x"),
    R("path space", PT_H2H_EPATH, ":method", "GET", ":scheme", "https", ":authority", "a", ":path",
      "/a b"),
    R("path fragment", PT_H2H_EPATH, ":method", "GET", ":scheme", "https", ":authority", "a",
      ":path", "/a#b"),
    R("path high byte", PT_H2H_EPATH, ":method", "GET", ":scheme", "https", ":authority", "a",
      ":path", "/\xc3\xa9"),
    R("method space", PT_H2H_EMETHOD, ":method", "GE T", ":scheme", "https", ":authority", "a",
      ":path", "/"),
    R("method empty", PT_H2H_EMETHOD, ":method", "", ":scheme", "https", ":authority", "a", ":path",
      "/"),
    R("scheme digit first", PT_H2H_ESCHEME, ":method", "GET", ":scheme", "1http", ":authority", "a",
      ":path", "/"),
    R("scheme empty", PT_H2H_ESCHEME, ":method", "GET", ":scheme", "", ":authority", "a", ":path",
      "/"),
    R("authority userinfo", PT_H2H_EAUTHORITY, ":method", "GET", ":scheme", "https", ":authority",
      "u@a", ":path", "/"),
    R("authority empty", PT_H2H_EAUTHORITY, ":method", "GET", ":scheme", "https", ":authority", "",
      ":path", "/"),
    R("authority port only", PT_H2H_EAUTHORITY, ":method", "GET", ":scheme", "https", ":authority",
      ":80", ":path", "/"),
    R("authority port big", PT_H2H_EAUTHORITY, ":method", "GET", ":scheme", "https", ":authority",
      "a:65536", ":path", "/"),
    R("authority v6 open", PT_H2H_EAUTHORITY, ":method", "GET", ":scheme", "https", ":authority",
      "[::1", ":path", "/"),
    R("authority bad pct", PT_H2H_EAUTHORITY, ":method", "GET", ":scheme", "https", ":authority",
      "a%4", ":path", "/"),
    R("authority slash", PT_H2H_EAUTHORITY, ":method", "GET", ":scheme", "https", ":authority",
      "a/b", ":path", "/"),
    R("no authority for https", PT_H2H_EAUTHORITY, ":method", "GET", ":scheme", "https", ":path",
      "/"),
    R("empty host for http", PT_H2H_EAUTHORITY, ":method", "GET", ":scheme", "http", ":path", "/",
      "host", ""),
    /* CONNECT (RFC 9113 §8.5) and extended CONNECT (RFC 8441 §4) */
    R("connect with path", PT_H2H_EPSEUDO, ":method", "CONNECT", ":authority", "a:443", ":path",
      "/"),
    R("connect with scheme", PT_H2H_EPSEUDO, ":method", "CONNECT", ":authority", "a:443", ":scheme",
      "https"),
    R("connect no authority", PT_H2H_EMISSING, ":method", "CONNECT"),
    R("connect no port", PT_H2H_EAUTHORITY, ":method", "CONNECT", ":authority", "a"),
    R("protocol with get", PT_H2H_EPSEUDO, REQ(), ":protocol", "websocket"),
    R("protocol not a token", PT_H2H_EPSEUDO, ":method", "CONNECT", ":protocol", "web socket",
      ":scheme", "https", ":authority", "a", ":path", "/"),
    R("extended connect no path", PT_H2H_EMISSING, ":method", "CONNECT", ":protocol", "websocket",
      ":scheme", "https", ":authority", "a"),
    R("extended connect no authority", PT_H2H_EMISSING, ":method", "CONNECT", ":protocol",
      "websocket", ":scheme", "https", ":path", "/"),
    /* names and values (RFC 9113 §8.2, §8.2.1) */
    R("uppercase name", PT_H2H_ENAME, REQ(), "X-A", "b"),
    R("name space", PT_H2H_ENAME, REQ(), "x a", "b"),
    R("name colon inside", PT_H2H_ENAME, REQ(), "x:a", "b"),
    R("name not token", PT_H2H_ENAME, REQ(), "x(a)", "b"),
    R("name high byte", PT_H2H_ENAME, REQ(), "x\xc3\xa9", "b"),
    R("empty name", PT_H2H_ENAME, REQ(), "", "b"),
    R("value cr", PT_H2H_EVALUE, REQ(), "x-a", "b\rc"),
    R("value lf", PT_H2H_EVALUE, REQ(), "x-a", "b\nc"),
    R("value ctl", PT_H2H_EVALUE, REQ(), "x-a", "b\x01"),
    R("value del", PT_H2H_EVALUE, REQ(), "x-a", "b\x7f"),
    R("value leading space", PT_H2H_EVALUE, REQ(), "x-a", " b"),
    R("value trailing tab", PT_H2H_EVALUE, REQ(), "x-a", "b\t"),
    R("value only space", PT_H2H_EVALUE, REQ(), "x-a", " "),
    /* connection-specific fields (RFC 9113 §8.2.2) */
    R("connection", PT_H2H_ECONN_FIELD, REQ(), "connection", "close"),
    R("keep-alive", PT_H2H_ECONN_FIELD, REQ(), "keep-alive", "timeout=5"),
    R("proxy-connection", PT_H2H_ECONN_FIELD, REQ(), "proxy-connection", "keep-alive"),
    R("transfer-encoding", PT_H2H_ECONN_FIELD, REQ(), "transfer-encoding", "chunked"),
    R("upgrade", PT_H2H_ECONN_FIELD, REQ(), "upgrade", "websocket"),
    R("te gzip", PT_H2H_ETE, REQ(), "te", "gzip"),
    R("te list", PT_H2H_ETE, REQ(), "te", "trailers, gzip"),
    R("te empty", PT_H2H_ETE, REQ(), "te", ""),
    /* Host against :authority (RFC 9113 §8.3.1) */
    R("host differs", PT_H2H_EHOST, REQ(), "host", "b.example"),
    R("host port differs", PT_H2H_EHOST, REQ(), "host", "a.example:443"),
    R("host twice", PT_H2H_EHOST, ":method", "GET", ":scheme", "https", ":path", "/", "host", "a",
      "host", "a"),
    R("host userinfo", PT_H2H_EHOST, ":method", "GET", ":scheme", "https", ":path", "/", "host",
      "u@a"),
    R("empty host with authority", PT_H2H_EHOST, REQ(), "host", ""),
    /* Content-Length */
    R("content-length alpha", PT_H2H_ECONTENT_LENGTH, REQ(), "content-length", "5a"),
    R("content-length empty", PT_H2H_ECONTENT_LENGTH, REQ(), "content-length", ""),
    R("content-length sign", PT_H2H_ECONTENT_LENGTH, REQ(), "content-length", "+5"),
    R("content-length list", PT_H2H_ECONTENT_LENGTH, REQ(), "content-length", "5,5"),
    R("content-length over 2^62", PT_H2H_ECONTENT_LENGTH, REQ(), "content-length",
      "4611686018427387905"),
    R("content-length overflow", PT_H2H_ECONTENT_LENGTH, REQ(), "content-length",
      "99999999999999999999999"),
    R("content-length twice", PT_H2H_ECONTENT_LENGTH, REQ(), "content-length", "5",
      "content-length", "5"),
    /* responses */
    ROW("status", PT_H2H_RESPONSE, 0, ":status", "200", "content-type", "text/html"),
    ROW("status 1xx", PT_H2H_RESPONSE, 0, ":status", "103", "link", "</a>"),
    ROW("response cl repeated equal", PT_H2H_RESPONSE, 0, ":status", "200", "content-length", "5",
        "content-length", "5"),
    ROW("response cookie stays a field", PT_H2H_RESPONSE, 0, ":status", "200", "cookie", "a"),
    ROW("response cl repeated differ", PT_H2H_RESPONSE, PT_H2H_ECONTENT_LENGTH, ":status", "200",
        "content-length", "5", "content-length", "6"),
    ROW("no status", PT_H2H_RESPONSE, PT_H2H_EMISSING, "content-type", "text/html"),
    ROW("status twice", PT_H2H_RESPONSE, PT_H2H_EPSEUDO_DUP, ":status", "200", ":status", "200"),
    ROW("status two digits", PT_H2H_RESPONSE, PT_H2H_ESTATUS, ":status", "20"),
    ROW("status 099", PT_H2H_RESPONSE, PT_H2H_ESTATUS, ":status", "099"),
    ROW("status 101", PT_H2H_RESPONSE, PT_H2H_ESTATUS, ":status", "101"),
    ROW("status alpha", PT_H2H_RESPONSE, PT_H2H_ESTATUS, ":status", "2x0"),
    ROW("status with reason", PT_H2H_RESPONSE, PT_H2H_ESTATUS, ":status", "200 OK"),
    ROW("path in response", PT_H2H_RESPONSE, PT_H2H_EPSEUDO, ":status", "200", ":path", "/"),
    ROW("status after field", PT_H2H_RESPONSE, PT_H2H_EPSEUDO_ORDER, "x-a", "b", ":status", "200"),
    ROW("response connection", PT_H2H_RESPONSE, PT_H2H_ECONN_FIELD, ":status", "200", "connection",
        "close"),
    /* trailers (RFC 9113 §8.1) */
    ROW("trailers", PT_H2H_TRAILERS, 0, "grpc-status", "0", "grpc-message", "ok"),
    ROW("trailers empty", PT_H2H_TRAILERS, 0, NULL),
    ROW("status in trailers", PT_H2H_TRAILERS, PT_H2H_EPSEUDO, ":status", "200"),
    ROW("path in trailers", PT_H2H_TRAILERS, PT_H2H_EPSEUDO, "x-a", "b", ":path", "/"),
    ROW("trailer connection", PT_H2H_TRAILERS, PT_H2H_ECONN_FIELD, "transfer-encoding", "x"),
    ROW("trailer uppercase", PT_H2H_TRAILERS, PT_H2H_ENAME, "Grpc-Status", "0"),
    ROW("trailer value", PT_H2H_TRAILERS, PT_H2H_EVALUE, "grpc-message", "a\r\nb"),
};

static struct pt_str S(const char *s) {
    return (struct pt_str){s, strlen(s)};
}

struct run {
    struct pt_h2h_block b;
    struct pt_field fields[MAXF];
    char cookie[256];
    struct pt_h2h_request req;
    struct pt_h2h_response resp;
};

/* Feeds f (name, value pairs, NULL-ended) as one block and finishes it. */
static int run_block(struct run *x, int kind, const struct pt_h2h_limits *l, const char *const *f)
{
    pt_h2h_begin(&x->b, kind, l, x->fields, MAXF, x->cookie, sizeof(x->cookie));
    for (size_t i = 0; f[i]; i += 2) {
        int rc = pt_h2h_field(&x->b, S(f[i]), S(f[i + 1]));
        if (rc)
            return rc;
    }
    if (kind == PT_H2H_REQUEST)
        return pt_h2h_finish_request(&x->b, &x->req);
    if (kind == PT_H2H_RESPONSE)
        return pt_h2h_finish_response(&x->b, &x->resp);
    struct pt_field *tf;
    uint32_t tn;
    return pt_h2h_finish_trailers(&x->b, &tf, &tn);
}

static void test_block_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct run x;
        int rc = run_block(&x, cases[i].kind, &lim, cases[i].f);
        if (rc != cases[i].rc)
            fail_msg("%s: got %d (%s), want %d (%s)", cases[i].name, rc, pt_h2h_strerror(rc),
                     cases[i].rc, pt_h2h_strerror(cases[i].rc));
    }
}

static void test_request_view(void **state)
{
    (void)state;
    struct run x;
    const char *f[] = {":method",
                       "POST",
                       ":scheme",
                       "https",
                       ":path",
                       "/a/b?c=1&d",
                       "host",
                       "a.example",
                       "cookie",
                       "a=1",
                       "x-a",
                       "1",
                       "cookie",
                       "",
                       "te",
                       "trailers",
                       "content-length",
                       "12",
                       "cookie",
                       "b=2; c=3",
                       "x-b",
                       "2",
                       NULL};
    assert_int_equal(run_block(&x, PT_H2H_REQUEST, &lim, f), 0);
    struct pt_h2h_request *r = &x.req;
    assert_true(PT_STR_EQ_LIT(r->method, "POST"));
    assert_int_equal(r->method_id, PT_METHOD_POST);
    assert_true(PT_STR_EQ_LIT(r->scheme, "https"));
    assert_true(PT_STR_EQ_LIT(r->authority, "a.example")); /* from Host */
    assert_true(PT_STR_EQ_LIT(r->target, "/a/b?c=1&d"));
    assert_true(PT_STR_EQ_LIT(r->path, "/a/b"));
    assert_true(r->has_query);
    assert_true(PT_STR_EQ_LIT(r->query, "c=1&d"));
    assert_true(r->is_te_trailers);
    assert_false(r->is_connect);
    assert_int_equal(r->protocol.n, 0);
    assert_int_equal(r->content_length, 12);
    assert_true(PT_STR_EQ_LIT(r->cookie, "a=1; b=2; c=3"));
    assert_ptr_equal(r->cookie.p, x.cookie);
    /* host, cookie and te leave the fields; the others stay, in order, borrowed */
    assert_int_equal(r->n_fields, 3);
    assert_ptr_equal(r->fields[0].name.p, f[10]);
    assert_ptr_equal(r->fields[0].value.p, f[11]);
    assert_true(PT_STR_EQ_LIT(r->fields[1].name, "content-length"));
    assert_true(PT_STR_EQ_LIT(r->fields[2].name, "x-b"));

    /* :authority wins (Host equal), no query, empty query */
    const char *g[] = {":method", "GET", ":authority", "a.example", ":scheme", "http",
                       ":path",   "/p?", "host",       "a.example", NULL};
    assert_int_equal(run_block(&x, PT_H2H_REQUEST, &lim, g), 0);
    assert_ptr_equal(x.req.authority.p, g[3]);
    assert_true(x.req.has_query);
    assert_int_equal(x.req.query.n, 0);
    assert_int_equal(x.req.content_length, -1);
    assert_int_equal(x.req.cookie.n, 0);
    assert_int_equal(x.req.n_fields, 0);

    const char *h[] = {":method", "CONNECT", ":authority", "a:443", NULL};
    assert_int_equal(run_block(&x, PT_H2H_REQUEST, &lim, h), 0);
    assert_true(x.req.is_connect);
    assert_int_equal(x.req.method_id, PT_METHOD_CONNECT);
    assert_int_equal(x.req.target.n, 0);
    assert_int_equal(x.req.scheme.n, 0);
    assert_false(x.req.has_query);

    const char *e[] = {":method",    "CONNECT", ":protocol", "websocket", ":scheme", "https",
                       ":authority", "a",       ":path",     "/chat?x",   NULL};
    assert_int_equal(run_block(&x, PT_H2H_REQUEST, &lim, e), 0);
    assert_true(x.req.is_connect);
    assert_true(PT_STR_EQ_LIT(x.req.protocol, "websocket"));
    assert_true(PT_STR_EQ_LIT(x.req.path, "/chat"));
}

static void test_response_view(void **state)
{
    (void)state;
    struct run x;
    const char *f[] = {":status",        "204", "te", "trailers", "set-cookie", "a=1",
                       "content-length", "0",   NULL};
    assert_int_equal(run_block(&x, PT_H2H_RESPONSE, &lim, f), 0);
    assert_int_equal(x.resp.status, 204);
    assert_int_equal(x.resp.content_length, 0);
    assert_int_equal(x.resp.n_fields, 2);
    assert_true(PT_STR_EQ_LIT(x.resp.fields[0].name, "set-cookie"));

    const char *t[] = {"grpc-status", "0", "cookie", "x", NULL};
    pt_h2h_begin(&x.b, PT_H2H_TRAILERS, &lim, x.fields, MAXF, NULL, 0);
    for (size_t i = 0; t[i]; i += 2)
        assert_int_equal(pt_h2h_field(&x.b, S(t[i]), S(t[i + 1])), 0);
    struct pt_field *tf = NULL;
    uint32_t tn = 0;
    assert_int_equal(pt_h2h_finish_trailers(&x.b, &tf, &tn), 0);
    assert_int_equal(tn, 2);
    assert_ptr_equal(tf, x.fields);
}

static void test_extended_connect_off(void **state)
{
    (void)state;
    struct pt_h2h_limits off = lim;
    off.allow_extended_connect = false;
    struct run x;
    const char *e[] = {":method",    "CONNECT", ":protocol", "websocket", ":scheme", "https",
                       ":authority", "a",       ":path",     "/chat",     NULL};
    assert_int_equal(run_block(&x, PT_H2H_REQUEST, &off, e), PT_H2H_EPSEUDO);
}

static void test_limits(void **state)
{
    (void)state;
    struct run x;
    const char *base[] = {REQ(), NULL};

    /* count: pseudo-headers count too */
    struct pt_h2h_limits l = lim;
    l.max_fields = 4;
    assert_int_equal(run_block(&x, PT_H2H_REQUEST, &l, base), 0);
    l.max_fields = 3;
    assert_int_equal(run_block(&x, PT_H2H_REQUEST, &l, base), PT_H2H_ETOOMANY);
    assert_true(pt_h2h_err_is_limit(PT_H2H_ETOOMANY));

    /* size: name + value + 32 each (RFC 9113 §6.5.2); exactly at the limit passes */
    size_t size = (7 + 3 + 32) + (7 + 5 + 32) + (10 + 9 + 32) + (5 + 2 + 32);
    l = lim;
    l.max_list_bytes = size;
    assert_int_equal(run_block(&x, PT_H2H_REQUEST, &l, base), 0);
    l.max_list_bytes = size - 1;
    assert_int_equal(run_block(&x, PT_H2H_REQUEST, &l, base), PT_H2H_ETOOBIG);
    assert_true(pt_h2h_err_is_limit(PT_H2H_ETOOBIG));
    assert_false(pt_h2h_err_is_limit(PT_H2H_ENAME));

    /* a huge value against a small limit: no wrap-around */
    static char big[70000];
    memset(big, 'a', sizeof(big) - 1);
    const char *hv[] = {REQ(), "x-big", big, NULL};
    assert_int_equal(run_block(&x, PT_H2H_REQUEST, &lim, hv), PT_H2H_ETOOBIG);
    l.max_list_bytes = SIZE_MAX;
    assert_int_equal(run_block(&x, PT_H2H_REQUEST, &l, hv), 0);

    /* the caller's field array */
    const char *many[2 * MAXF + 1 + 8 + 2];
    size_t k = 0;
    const char *pre[] = {REQ()};
    for (size_t i = 0; i < 8; i++)
        many[k++] = pre[i];
    for (size_t i = 0; i <= MAXF; i++) {
        many[k++] = "x-a";
        many[k++] = "b";
    }
    many[k] = NULL;
    assert_int_equal(run_block(&x, PT_H2H_REQUEST, &lim, many), PT_H2H_ETOOMANY);
    many[k - 2] = NULL; /* exactly MAXF */
    assert_int_equal(run_block(&x, PT_H2H_REQUEST, &lim, many), 0);

    /* the Cookie buffer: exactly full passes, one more byte does not */
    char crumb[200];
    memset(crumb, 'c', sizeof(crumb));
    crumb[sizeof(crumb) - 1] = '\0';
    char crumb2[56];
    memset(crumb2, 'd', sizeof(crumb2));
    crumb2[sizeof(crumb2) - 1] = '\0'; /* 199 + 2 + 55 = 256 */
    const char *ck[] = {REQ(), "cookie", crumb, "cookie", crumb2, NULL};
    assert_int_equal(run_block(&x, PT_H2H_REQUEST, &lim, ck), 0);
    assert_int_equal(x.req.cookie.n, 256);
    char crumb3[57];
    memset(crumb3, 'd', sizeof(crumb3));
    crumb3[sizeof(crumb3) - 1] = '\0';
    ck[11] = crumb3;
    assert_int_equal(run_block(&x, PT_H2H_REQUEST, &lim, ck), PT_H2H_ETOOBIG);
    /* no buffer at all */
    pt_h2h_begin(&x.b, PT_H2H_REQUEST, &lim, x.fields, MAXF, NULL, 99);
    assert_int_equal(pt_h2h_field(&x.b, S("cookie"), S("a")), PT_H2H_ETOOBIG);
}

static void test_sticky(void **state)
{
    (void)state;
    struct run x;
    pt_h2h_begin(&x.b, PT_H2H_REQUEST, &lim, x.fields, MAXF, x.cookie, sizeof(x.cookie));
    assert_int_equal(pt_h2h_field(&x.b, S(":method"), S("GET")), 0);
    assert_int_equal(pt_h2h_field(&x.b, S("X"), S("y")), PT_H2H_ENAME);
    assert_int_equal(pt_h2h_field(&x.b, S("x"), S("y")), PT_H2H_ENAME);
    assert_int_equal(pt_h2h_finish_request(&x.b, &x.req), PT_H2H_ENAME);

    /* pt_h2h_feed_nv */
    nghttp2_nv nv[] = {
        {(uint8_t *)":status", (uint8_t *)"200", 7, 3, 0},
        {(uint8_t *)"x-a", (uint8_t *)"b", 3, 1, 0},
    };
    pt_h2h_begin(&x.b, PT_H2H_RESPONSE, &lim, x.fields, MAXF, NULL, 0);
    assert_int_equal(pt_h2h_feed_nv(&x.b, nv, 2), 0);
    assert_int_equal(pt_h2h_finish_response(&x.b, &x.resp), 0);
    assert_int_equal(x.resp.n_fields, 1);
    for (int e = PT_H2H_ETOOBIG; e <= PT_H2H_ENAME; e++)
        assert_string_not_equal(pt_h2h_strerror(e), "unknown error");
}

/* One byte at a time in each place, against the classes as the RFCs define them. */
static bool is_tchar(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void test_every_byte(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        char mid[4] = {'a', (char)c, 'b', 0};
        struct pt_str m = {mid, 3};
        struct run x;

        /* field name */
        pt_h2h_begin(&x.b, PT_H2H_TRAILERS, &lim, x.fields, MAXF, NULL, 0);
        int rc = pt_h2h_field(&x.b, m, S("v"));
        bool want = is_tchar(c) && !(c >= 'A' && c <= 'Z');
        if ((rc == 0) != want)
            fail_msg("name byte 0x%02x: %d", c, rc);

        /* field value */
        pt_h2h_begin(&x.b, PT_H2H_TRAILERS, &lim, x.fields, MAXF, NULL, 0);
        rc = pt_h2h_field(&x.b, S("x-a"), m);
        want = c == '\t' || (c >= 0x20 && c != 0x7f);
        if ((rc == 0) != want)
            fail_msg("value byte 0x%02x: %d", c, rc);

        /* :path */
        char path[4] = {'/', (char)c, 'b', 0};
        pt_h2h_begin(&x.b, PT_H2H_REQUEST, &lim, x.fields, MAXF, NULL, 0);
        rc = pt_h2h_field(&x.b, S(":path"), (struct pt_str){path, 3});
        want = c > 0x20 && c < 0x7f && c != '#';
        if ((rc == 0) != want)
            fail_msg(":path byte 0x%02x: %d", c, rc);

        /* :authority: unreserved, sub-delims ('%' needs two hex digits) */
        pt_h2h_begin(&x.b, PT_H2H_REQUEST, &lim, x.fields, MAXF, NULL, 0);
        rc = pt_h2h_field(&x.b, S(":authority"), m);
        want = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c && strchr("-._~!$&'()*+,;=", c)); /* "a:b" has no port, "a%b" no hex pair */
        if ((rc == 0) != want)
            fail_msg(":authority byte 0x%02x: %d", c, rc);

        /* :scheme */
        char sch[3] = {'h', (char)c, 0};
        pt_h2h_begin(&x.b, PT_H2H_REQUEST, &lim, x.fields, MAXF, NULL, 0);
        rc = pt_h2h_field(&x.b, S(":scheme"), (struct pt_str){sch, 2});
        want = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '+' || c == '-' || c == '.';
        if ((rc == 0) != want)
            fail_msg(":scheme byte 0x%02x: %d", c, rc);

        /* :method */
        pt_h2h_begin(&x.b, PT_H2H_REQUEST, &lim, x.fields, MAXF, NULL, 0);
        rc = pt_h2h_field(&x.b, S(":method"), m);
        if ((rc == 0) != is_tchar(c))
            fail_msg(":method byte 0x%02x: %d", c, rc);
    }
}

/* ---- sending ---- */

static struct pt_str nv_name(const nghttp2_nv *nv)
{
    return (struct pt_str){(const char *)nv->name, nv->namelen};
}

static struct pt_str nv_value(const nghttp2_nv *nv)
{
    return (struct pt_str){(const char *)nv->value, nv->valuelen};
}

#define F(n, v)                                                                                    \
    {                                                                                              \
        {n, sizeof(n) - 1},                                                                        \
        {                                                                                          \
            v, sizeof(v) - 1                                                                       \
        }                                                                                          \
    }

static void test_response_nv(void **state)
{
    (void)state;
    const struct pt_field f[] = {
        F("Content-Type", "text/html"),
        F("Connection", "close, X-Hop"),
        F("X-Hop", "1"),
        F("Keep-Alive", "timeout=5"),
        F("Transfer-Encoding", "chunked"),
        F("Proxy-Connection", "x"),
        F("Upgrade", "h2c"),
        F("TE", "trailers"),
        F("Host", "a"),
        F(":status", "500"),
        F("HTTP2-Settings", "x"),
        F("Set-Cookie", "a=1"),
        F("Set-Cookie", "b=2"),
        F("Authorization", "secret"),
    };
    nghttp2_nv nv[16];
    char buf[128];
    int n = pt_h2h_response_nv(404, f, PT_ARRAY_LEN(f), nv, 16, buf, sizeof(buf));
    assert_int_equal(n, 5);
    assert_true(PT_STR_EQ_LIT(nv_name(&nv[0]), ":status"));
    assert_true(PT_STR_EQ_LIT(nv_value(&nv[0]), "404"));
    assert_true(PT_STR_EQ_LIT(nv_name(&nv[1]), "content-type"));
    assert_ptr_equal(nv[1].value, f[0].value.p); /* values are referenced */
    assert_true(PT_STR_EQ_LIT(nv_name(&nv[2]), "set-cookie"));
    assert_true(PT_STR_EQ_LIT(nv_value(&nv[3]), "b=2"));
    assert_true(PT_STR_EQ_LIT(nv_name(&nv[4]), "authorization"));
    assert_int_equal(nv[4].flags, NGHTTP2_NV_FLAG_NO_INDEX);
    assert_int_equal(nv[1].flags, NGHTTP2_NV_FLAG_NONE);
    for (int i = 1; i < n; i++) {
        assert_true(nghttp2_check_header_name(nv[i].name, nv[i].namelen));
        assert_true(nghttp2_check_header_value_rfc9113(nv[i].value, nv[i].valuelen));
    }

    /* what it produces passes the receiving side */
    struct run x;
    pt_h2h_begin(&x.b, PT_H2H_RESPONSE, &lim, x.fields, MAXF, NULL, 0);
    assert_int_equal(pt_h2h_feed_nv(&x.b, nv, (size_t)n), 0);
    assert_int_equal(pt_h2h_finish_response(&x.b, &x.resp), 0);
    assert_int_equal(x.resp.status, 404);

    /* statuses HTTP/2 cannot carry */
    assert_int_equal(pt_h2h_response_nv(101, f, 1, nv, 16, buf, sizeof(buf)), PT_H2H_ESTATUS);
    assert_int_equal(pt_h2h_response_nv(99, f, 1, nv, 16, buf, sizeof(buf)), PT_H2H_ESTATUS);
    assert_int_equal(pt_h2h_response_nv(1000, f, 1, nv, 16, buf, sizeof(buf)), PT_H2H_ESTATUS);
    assert_int_equal(pt_h2h_response_nv(100, NULL, 0, nv, 16, buf, sizeof(buf)), 1);
    assert_true(PT_STR_EQ_LIT(nv_value(&nv[0]), "100"));

    /* the bounds: entries, then the name buffer */
    assert_int_equal(pt_h2h_response_nv(200, f, 1, nv, 1, buf, sizeof(buf)), PT_H2H_ETOOMANY);
    assert_int_equal(pt_h2h_response_nv(200, f, 1, nv, 2, buf, 3 + 12), 2);
    assert_int_equal(pt_h2h_response_nv(200, f, 1, nv, 2, buf, 3 + 11), PT_H2H_ETOOBIG);
    assert_int_equal(pt_h2h_response_nv(200, f, 1, nv, 2, buf, 2), PT_H2H_ETOOBIG);

    /* fields HTTP/2 cannot carry are refused, not sent */
    const struct pt_field bad_name[] = {F("X A", "b")};
    const struct pt_field empty_name[] = {F("", "b")};
    const struct pt_field bad_value[] = {F("x-a", "b\r\nc: d")};
    const struct pt_field ws_value[] = {F("x-a", "b ")};
    assert_int_equal(pt_h2h_response_nv(200, bad_name, 1, nv, 16, buf, sizeof(buf)), PT_H2H_ENAME);
    assert_int_equal(pt_h2h_response_nv(200, empty_name, 1, nv, 16, buf, sizeof(buf)),
                     PT_H2H_ENAME);
    assert_int_equal(pt_h2h_response_nv(200, bad_value, 1, nv, 16, buf, sizeof(buf)),
                     PT_H2H_EVALUE);
    assert_int_equal(pt_h2h_response_nv(200, ws_value, 1, nv, 16, buf, sizeof(buf)), PT_H2H_EVALUE);

    /* trailers: no pseudo-header, same filter */
    const struct pt_field t[] = {F("Grpc-Status", "0"), F("TE", "trailers"), F("Connection", "x")};
    n = pt_h2h_trailers_nv(t, 3, nv, 16, buf, sizeof(buf));
    assert_int_equal(n, 1);
    assert_true(PT_STR_EQ_LIT(nv_name(&nv[0]), "grpc-status"));
    pt_h2h_begin(&x.b, PT_H2H_TRAILERS, &lim, x.fields, MAXF, NULL, 0);
    assert_int_equal(pt_h2h_feed_nv(&x.b, nv, (size_t)n), 0);
}

/* Builds a request's nv and checks its pseudo-headers: want is ":method", "GET", ... NULL. */
static void check_request_nv(const char *method, const char *target, const char *host,
                             const struct pt_field *f, size_t nf, const char *const *want)
{
    struct pt_h2h_h1_request r = {S(method), S(target), S(host), S("https"), f, nf};
    nghttp2_nv nv[16];
    char buf[256];
    int n = pt_h2h_request_nv(&r, nv, 16, buf, sizeof(buf));
    size_t k = 0;
    for (; want[2 * k]; k++) {
        if ((size_t)n <= k || !pt_str_eq(nv_name(&nv[k]), want[2 * k], strlen(want[2 * k])) ||
            !pt_str_eq(nv_value(&nv[k]), want[2 * k + 1], strlen(want[2 * k + 1])))
            fail_msg("%s %s: entry %zu is not %s: %s", method, target, k, want[2 * k],
                     want[2 * k + 1]);
    }
    assert_int_equal(n, (int)k);

    /* and the receiving side takes it */
    struct run x;
    pt_h2h_begin(&x.b, PT_H2H_REQUEST, &lim, x.fields, MAXF, x.cookie, sizeof(x.cookie));
    assert_int_equal(pt_h2h_feed_nv(&x.b, nv, (size_t)n), 0);
    assert_int_equal(pt_h2h_finish_request(&x.b, &x.req), 0);
}

static void test_request_nv(void **state)
{
    (void)state;
    const struct pt_field f[] = {
        F("Host", "a.example"),   F("Accept", "*/*"), F("TE", "trailers"),     F("TE", "gzip"),
        F("Connection", "x-hop"), F("X-Hop", "1"),    F("Cookie", "a=1; b=2"),
    };
    check_request_nv("GET", "/p?q", "a.example", f, PT_ARRAY_LEN(f),
                     (const char *[]){":method", "GET", ":scheme", "https", ":authority",
                                      "a.example", ":path", "/p?q", "accept", "*/*", "te",
                                      "trailers", "cookie", "a=1; b=2", NULL});
    check_request_nv("GET", "http://b.example:8080/x", "a.example", NULL, 0,
                     (const char *[]){":method", "GET", ":scheme", "https", ":authority",
                                      "b.example:8080", ":path", "/x", NULL});
    check_request_nv("GET", "http://b.example?x=1", "", NULL, 0,
                     (const char *[]){":method", "GET", ":scheme", "https", ":authority",
                                      "b.example", ":path", "/?x=1", NULL});
    check_request_nv("GET", "http://b.example", "", NULL, 0,
                     (const char *[]){":method", "GET", ":scheme", "https", ":authority",
                                      "b.example", ":path", "/", NULL});
    check_request_nv("OPTIONS", "http://b.example", "", NULL, 0,
                     (const char *[]){":method", "OPTIONS", ":scheme", "https", ":authority",
                                      "b.example", ":path", "*", NULL});
    check_request_nv("OPTIONS", "*", "a", NULL, 0,
                     (const char *[]){":method", "OPTIONS", ":scheme", "https", ":authority", "a",
                                      ":path", "*", NULL});
    check_request_nv("CONNECT", "b.example:443", "b.example:443", f, 2,
                     (const char *[]){":method", "CONNECT", ":authority", "b.example:443", "accept",
                                      "*/*", NULL});

    /* no authority at all: none is sent (the receiver refuses it for https) */
    struct pt_h2h_h1_request r = {S("GET"), S("/"), S(""), S("https"), NULL, 0};
    nghttp2_nv nv[8];
    char buf[64];
    assert_int_equal(pt_h2h_request_nv(&r, nv, 8, buf, sizeof(buf)), 3);
    assert_true(PT_STR_EQ_LIT(nv_name(&nv[2]), ":path"));

    /* refusals and bounds */
    r.method = S("G T");
    assert_int_equal(pt_h2h_request_nv(&r, nv, 8, buf, sizeof(buf)), PT_H2H_EMETHOD);
    r.method = S("GET");
    r.target = S("");
    assert_int_equal(pt_h2h_request_nv(&r, nv, 8, buf, sizeof(buf)), PT_H2H_EPATH);
    r.target = S("noscheme");
    assert_int_equal(pt_h2h_request_nv(&r, nv, 8, buf, sizeof(buf)), PT_H2H_EPATH);
    r.target = S("/");
    assert_int_equal(pt_h2h_request_nv(&r, nv, 2, buf, sizeof(buf)), PT_H2H_ETOOMANY);
    r.target = S("http://a?q");
    assert_int_equal(pt_h2h_request_nv(&r, nv, 8, buf, 2), PT_H2H_ETOOBIG);
    r.fields = f + 1;
    r.n_fields = 1;
    r.target = S("/");
    assert_int_equal(pt_h2h_request_nv(&r, nv, 8, buf, 5), PT_H2H_ETOOBIG);
    assert_int_equal(pt_h2h_request_nv(&r, nv, 8, buf, 6), 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_table),   cmocka_unit_test(test_request_view),
        cmocka_unit_test(test_response_view), cmocka_unit_test(test_extended_connect_off),
        cmocka_unit_test(test_limits),        cmocka_unit_test(test_sticky),
        cmocka_unit_test(test_every_byte),    cmocka_unit_test(test_response_nv),
        cmocka_unit_test(test_request_nv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
