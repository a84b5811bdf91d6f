/*
 * test_stream.c - the request's chain of body filters (src/http/stream.c): an empty chain
 * leaves r->stream on the protocol's table; identity filters pass every call down unchanged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/conn.h"
#include "http/fields.h"
#include "http/stream.h"

/* ---- a protocol that records what reached it ---- */

static struct {
    int heads, datas, ends;
    const char *p;
    size_t n;
    bool is_stable;
} seen;

static int proto_send_head(struct pt_req *r, const struct pt_resp_head *h)
{
    (void)r;
    (void)h;
    seen.heads++;
    return 0;
}

static int proto_send_data(struct pt_req *r, const char *p, size_t n, bool is_stable)
{
    (void)r;
    seen.datas++;
    seen.p = p;
    seen.n = n;
    seen.is_stable = is_stable;
    return 0;
}

static void proto_send_end(struct pt_req *r)
{
    (void)r;
    seen.ends++;
}

static const struct pt_stream_ops proto = {
    .send_head = proto_send_head,
    .send_data = proto_send_data,
    .send_end = proto_send_end,
};

/* ---- identity filters: count, then pass down ---- */

struct ident_state {
    int calls;
};

static const struct pt_stream_ops ident_a, ident_b;

static int ident_head(const struct pt_stream_ops *self, struct pt_req *r,
                      const struct pt_resp_head *h)
{
    ((struct ident_state *)pt_stream_filter_state(r, self))->calls++;
    return pt_stream_below(r, self)->send_head(r, h);
}

static int ident_data(const struct pt_stream_ops *self, struct pt_req *r, const char *p, size_t n,
                      bool is_stable)
{
    ((struct ident_state *)pt_stream_filter_state(r, self))->calls++;
    return pt_stream_below(r, self)->send_data(r, p, n, is_stable);
}

static void ident_end(const struct pt_stream_ops *self, struct pt_req *r)
{
    ((struct ident_state *)pt_stream_filter_state(r, self))->calls++;
    pt_stream_below(r, self)->send_end(r);
}

static int a_head(struct pt_req *r, const struct pt_resp_head *h)
{
    return ident_head(&ident_a, r, h);
}
static int a_data(struct pt_req *r, const char *p, size_t n, bool s)
{
    return ident_data(&ident_a, r, p, n, s);
}
static void a_end(struct pt_req *r)
{
    ident_end(&ident_a, r);
}
static int b_head(struct pt_req *r, const struct pt_resp_head *h)
{
    return ident_head(&ident_b, r, h);
}
static int b_data(struct pt_req *r, const char *p, size_t n, bool s)
{
    return ident_data(&ident_b, r, p, n, s);
}
static void b_end(struct pt_req *r)
{
    ident_end(&ident_b, r);
}

static const struct pt_stream_ops ident_a = {
    .send_head = a_head, .send_data = a_data, .send_end = a_end};
static const struct pt_stream_ops ident_b = {
    .send_head = b_head, .send_data = b_data, .send_end = b_end};

static struct pt_req *new_req(void)
{
    struct pt_req *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->stream = &proto;
    memset(&seen, 0, sizeof(seen));
    return r;
}

static void test_empty_chain_is_the_protocol(void **state)
{
    (void)state;
    struct pt_req *r = new_req();
    assert_ptr_equal(r->stream, &proto); /* no filter: handlers call the protocol directly */
    assert_int_equal(r->n_filters, 0);
    assert_null(pt_stream_filter_state(r, &ident_a));
    free(r);
}

static void test_identity_filters_pass_everything_down(void **state)
{
    (void)state;
    struct pt_req *r = new_req();
    struct ident_state sa = {0}, sb = {0};
    assert_int_equal(pt_stream_push_filter(r, &ident_a, &sa), 0);
    assert_int_equal(pt_stream_push_filter(r, &ident_b, &sb), 0);
    assert_ptr_equal(r->stream, &ident_b);
    assert_ptr_equal(pt_stream_below(r, &ident_b), &ident_a);
    assert_ptr_equal(pt_stream_below(r, &ident_a), &proto);

    struct pt_resp_head h;
    pt_resp_head_init(&h, 200);
    static const char body[] = "hello";
    assert_int_equal(r->stream->send_head(r, &h), 0);
    assert_int_equal(r->stream->send_data(r, body, 5, true), 0);
    r->stream->send_end(r);
    assert_int_equal(seen.heads, 1);
    assert_int_equal(seen.datas, 1);
    assert_int_equal(seen.ends, 1);
    assert_ptr_equal(seen.p, body); /* the same bytes, not a copy */
    assert_int_equal(seen.n, 5);
    assert_true(seen.is_stable);
    assert_int_equal(sa.calls, 3);
    assert_int_equal(sb.calls, 3);
    free(r);
}

static void test_chain_is_bounded(void **state)
{
    (void)state;
    struct pt_req *r = new_req();
    struct ident_state s = {0};
    for (int i = 0; i < PT_STREAM_FILTERS_MAX; i++)
        assert_int_equal(pt_stream_push_filter(r, &ident_a, &s), 0);
    assert_int_equal(pt_stream_push_filter(r, &ident_b, &s), -1);
    assert_ptr_equal(r->stream, &ident_a);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_chain_is_the_protocol),
        cmocka_unit_test(test_identity_filters_pass_everything_down),
        cmocka_unit_test(test_chain_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
