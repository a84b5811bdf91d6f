/*
 * test_compress.c - response compression (src/handler/compress.c): the Accept-Encoding parser
 * and the choice (q-values, "*", identity, q=0, then the server's order), table-driven, with
 * every prefix of each value parsed from an exact-size copy (the sanitizer build sees any read
 * past it); and the filter over a protocol that takes output only now and then (back-pressure),
 * whose gzip output must inflate to the input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "config/config.h"
#include "handler/compress.h"
#include "handler/request.h"

static const uint8_t server_order[PT_CODING_N] = {PT_CODING_BR, PT_CODING_ZSTD, PT_CODING_GZIP,
                                                  PT_CODING_NONE};

/* The coding chosen for the Accept-Encoding values (NULL-ended), in the default order. */
static enum pt_coding choose(const char *const *values)
{
    struct pt_field f[4];
    size_t n = 0;
    for (; values[n]; n++)
        f[n] = (struct pt_field){PT_STR("Accept-Encoding"), {values[n], strlen(values[n])}};
    struct pt_req_head h = {.fields = f, .n_fields = n};
    return pt_compress_pick(pt_compress_accept(&h), server_order);
}

static enum pt_coding choose1(const char *v)
{
    const char *vs[] = {v, NULL};
    return choose(vs);
}

static void test_choice_follows_q_then_order(void **state)
{
    (void)state;
    static const struct {
        const char *ae;
        enum pt_coding want;
    } cases[] = {
        {"gzip", PT_CODING_GZIP},
        {"gzip, deflate, br", PT_CODING_BR},
        {"gzip, br, zstd", PT_CODING_BR},
        {"zstd, gzip", PT_CODING_ZSTD},
        {"gzip;q=0.5, br;q=0.8", PT_CODING_BR},
        {"gzip;q=1, br;q=0.999", PT_CODING_GZIP},
        {"gzip;q=0.3, br;q=0.2, zstd;q=0.1", PT_CODING_GZIP},
        {"br;q=0.001", PT_CODING_BR},
        {"*", PT_CODING_BR},
        {"*;q=0.5, gzip", PT_CODING_GZIP},
        {"br;q=0, *", PT_CODING_ZSTD},
        {"*;q=0", PT_CODING_NONE},
        {"*;q=0, gzip", PT_CODING_GZIP},
        {"x-gzip", PT_CODING_GZIP},
        {"GZip ;\tQ = 0.5", PT_CODING_GZIP},
        {"gzip;q=0", PT_CODING_NONE},
        {"gzip;q=0.000", PT_CODING_NONE},
        {"gzip;q=0.5, identity", PT_CODING_NONE},
        {"gzip, identity;q=0.5", PT_CODING_GZIP},
        {"identity", PT_CODING_NONE},
        {"identity;q=0", PT_CODING_NONE},
        {"", PT_CODING_NONE},
        {",,, ,", PT_CODING_NONE},
        {"deflate, compress", PT_CODING_NONE},
        {"gzip;q=2", PT_CODING_NONE},      /* malformed weight: element ignored */
        {"gzip;q=0.5555", PT_CODING_NONE}, /* four decimals */
        {"gzip;q=", PT_CODING_NONE},
        {"gzip;level=1", PT_CODING_NONE},         /* only q is a parameter here */
        {"gzip;q=0, gzip;q=0.4", PT_CODING_GZIP}, /* listed twice: the higher weight */
        {"gzipx, brr, zst", PT_CODING_NONE},
        {"br;q=0.5, zstd;q=0.5, gzip;q=0.9", PT_CODING_GZIP},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum pt_coding got = choose1(cases[i].ae);
        if (got != cases[i].want)
            fail_msg("\"%s\": got %d, want %d", cases[i].ae, got, cases[i].want);
    }
}

static void test_several_fields_are_one_list(void **state)
{
    (void)state;
    const char *a[] = {"gzip;q=0.5", "zstd", NULL};
    assert_int_equal(choose(a), PT_CODING_ZSTD);
    const char *b[] = {"br;q=0", "*", NULL};
    assert_int_equal(choose(b), PT_CODING_ZSTD);
    struct pt_req_head none = {0};
    assert_int_equal(pt_compress_accept(&none), 0); /* no field: identity only */
}

static void test_the_order_breaks_ties_only(void **state)
{
    (void)state;
    struct pt_field f = {PT_STR("accept-encoding"), PT_STR("br, gzip, zstd;q=0.9")};
    struct pt_req_head h = {.fields = &f, .n_fields = 1};
    uint8_t acc = pt_compress_accept(&h);
    const uint8_t gz_first[PT_CODING_N] = {PT_CODING_GZIP, PT_CODING_ZSTD, PT_CODING_BR,
                                           PT_CODING_NONE};
    const uint8_t zstd_only[PT_CODING_N] = {PT_CODING_ZSTD, PT_CODING_NONE};
    const uint8_t gzip_only[PT_CODING_N] = {PT_CODING_GZIP, PT_CODING_NONE};
    assert_int_equal(pt_compress_pick(acc, gz_first), PT_CODING_GZIP);
    assert_int_equal(pt_compress_pick(acc, server_order), PT_CODING_BR);
    assert_int_equal(pt_compress_pick(acc, zstd_only), PT_CODING_ZSTD); /* lower q, but ours */
    assert_int_equal(pt_compress_pick(0, gzip_only), PT_CODING_NONE);
}

/* Every prefix of each value from an exact-size heap copy: no read past the value. */
static void test_every_prefix_parses_within_bounds(void **state)
{
    (void)state;
    static const char *const values[] = {"gzip;q=0.5, br;q=0.8, zstd, *;q=0.1, identity;q=0",
                                         "x-gzip ; Q = 1.000 ,\t* ;q=0", "gzip;q=0."};
    for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
        size_t len = strlen(values[v]);
        for (size_t n = 0; n <= len; n++) {
            char *copy = malloc(n ? n : 1);
            assert_non_null(copy);
            memcpy(copy, values[v], n);
            struct pt_field f = {PT_STR("Accept-Encoding"), {copy, n}};
            struct pt_req_head h = {.fields = &f, .n_fields = 1};
            uint8_t acc = pt_compress_accept(&h);
            assert_true(pt_compress_pick(acc, server_order) < PT_CODING_N);
            free(copy);
        }
    }
}

/* ---- the filter over a slow protocol ---- */

static struct {
    char *got; /* everything the protocol took */
    size_t got_n;
    const char *lent; /* the borrowed piece queued */
    size_t lent_n;
    int ends;
    int flushes;
} proto_seen;

static int proto_head(struct pt_req *r, const struct pt_resp_head *h)
{
    (void)r;
    (void)h;
    return 0;
}

static int proto_borrowed(struct pt_req *r, const char *p, size_t n)
{
    (void)r;
    if (proto_seen.lent)
        return -1; /* one borrowed piece at a time */
    proto_seen.lent = p;
    proto_seen.lent_n = n;
    return 0;
}

static void proto_end(struct pt_req *r)
{
    (void)r;
    proto_seen.ends++;
}

/* Takes the lent piece only every third call: the client is slow. */
static int proto_flush(struct pt_req *r)
{
    (void)r;
    if (proto_seen.lent && ++proto_seen.flushes % 3 != 0)
        return PT_AGAIN;
    if (proto_seen.lent) {
        proto_seen.got = realloc(proto_seen.got, proto_seen.got_n + proto_seen.lent_n);
        assert_non_null(proto_seen.got);
        memcpy(proto_seen.got + proto_seen.got_n, proto_seen.lent, proto_seen.lent_n);
        proto_seen.got_n += proto_seen.lent_n;
        proto_seen.lent = NULL;
    }
    return PT_OK;
}

static const struct pt_stream_ops slow_proto = {
    .send_head = proto_head,
    .send_borrowed = proto_borrowed,
    .send_end = proto_end,
    .flush = proto_flush,
};

static void test_filter_output_inflates_to_the_input(void **state)
{
    (void)state;
    memset(&proto_seen, 0, sizeof(proto_seen));
    size_t total = 300000;
    char *in = malloc(total);
    assert_non_null(in);
    uint32_t x = 12345;
    for (size_t i = 0; i < total; i++) { /* half text, half noise: output both ways */
        x = x * 1103515245u + 12345u;
        in[i] = i < total / 2 ? "abcdefgh \n"[(x >> 16) % 10] : (char)(x >> 16);
    }
    struct pt_route_cfg route;
    memset(&route, 0, sizeof(route));
    static const char *types[] = {"text/*", NULL};
    route.compress = (struct pt_compress_cfg){.is_set = true,
                                              .is_on = true,
                                              .types = types,
                                              .min_size = 256,
                                              .order = {PT_CODING_GZIP},
                                              .level = {0, 6, 5, 3}};
    struct pt_req *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->stream = &slow_proto;
    r->route = &route;
    r->accept_codings = 1; /* gzip, rank 1 */
    struct pt_resp_head h;
    pt_resp_head_init(&h, 200);
    pt_resp_add(&h, PT_STR("Content-Type"), PT_STR("text/plain"));
    pt_resp_add(&h, PT_STR("ETag"), PT_STR("\"v1\""));
    h.content_length = (int64_t)total;
    assert_true(pt_compress_head(r, &h));
    assert_int_equal(h.content_length, -1);
    assert_true(h.is_chunked);
    assert_true(pt_resp_has(&h, PT_STR("Vary")));
    assert_ptr_not_equal(r->stream, &slow_proto);
    for (size_t off = 0; off < total;) {
        size_t n = total - off < 7000 ? total - off : 7000;
        assert_int_equal(r->stream->send_borrowed(r, in + off, n), 0);
        int rc;
        while ((rc = r->stream->flush(r)) == PT_AGAIN)
            ;
        assert_int_equal(rc, PT_OK);
        off += n;
    }
    r->stream->send_end(r);
    int rc;
    while ((rc = r->stream->flush(r)) == PT_AGAIN)
        ;
    assert_int_equal(rc, PT_OK);
    assert_int_equal(proto_seen.ends, 1);
    char *out = malloc(total);
    assert_non_null(out);
    uLongf out_n = total;
    z_stream z;
    memset(&z, 0, sizeof(z));
    assert_int_equal(inflateInit2(&z, 16 + 15), Z_OK);
    z.next_in = (Bytef *)proto_seen.got;
    z.avail_in = (uInt)proto_seen.got_n;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)out_n;
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    assert_int_equal(z.total_out, total);
    assert_memory_equal(out, in, total);
    inflateEnd(&z);
    pt_req_run_cleanups(r); /* frees the coder */
    free(out);
    free(in);
    free(proto_seen.got);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_choice_follows_q_then_order),
        cmocka_unit_test(test_several_fields_are_one_list),
        cmocka_unit_test(test_the_order_breaks_ties_only),
        cmocka_unit_test(test_every_prefix_parses_within_bounds),
        cmocka_unit_test(test_filter_output_inflates_to_the_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
