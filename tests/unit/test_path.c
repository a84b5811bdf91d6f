/*
 * test_path.c - path normalisation and wire encoding (src/http/path.c).
 *
 * Table-driven: each case gives an input and the expected normalised form (NULL: rejected
 * with -1). Every case is also run on every prefix of its input with an output buffer of
 * exactly prefix + 1 bytes from malloc, so ASan catches any write past the documented bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/path.h"

struct norm_case {
    const char *in;
    const char *want; /* NULL: -1 */
};

static const struct norm_case norm_cases[] = {
    {"/", "/"},
    {"/a/./b/../c", "/a/c"},
    {"/a//b", "/a/b"},
    {"//", "/"},
    {"///a///", "/a/"},
    {"/%61pi", "/api"},
    {"/a%2Fb", "/a%2Fb"},
    {"/a%2fb", "/a%2Fb"},
    {"/a%25b", "/a%25b"},
    {"/a%252Fb", "/a%252Fb"},
    {"/%2e%2e/x", NULL},
    {"/%2E%2E/x", NULL},
    {"/a/%2e%2e/b", "/b"},
    {"/a/%2e/b", "/a/b"},
    {"/a/.%2e/b", "/b"},
    {"/a/..", "/"},
    {"/a/b/..", "/a/"},
    {"/a/b/../", "/a/"},
    {"/a/.", "/a/"},
    {"/.", "/"},
    {"/./", "/"},
    {"/..", NULL},
    {"/../", NULL},
    {"/a/../..", NULL},
    {"/a/../../b", NULL},
    {"/a/b/../../c", "/c"},
    {"/%00", NULL},
    {"/a\x01", NULL},
    {"/a\x7f", NULL},
    {"/%1f", NULL},
    {"/%7F", NULL},
    {"/%zz", NULL},
    {"/%4", NULL},
    {"/%", NULL},
    {"/%g0", NULL},
    {"/x%20y", "/x y"},
    {"/caf\xc3\xa9", "/caf\xc3\xa9"},
    {"/%C3%A9", "/\xc3\xa9"},
    {"/a%3Fb", "/a?b"},
    {"/...", "/..."},
    {"/a/...b/..c", "/a/...b/..c"},
    {"/.a/b.", "/.a/b."},
    {"/a/", "/a/"},
    {"/API", "/API"},
    {"/%2F", "/%2F"},
    {"/%2F..", "/%2F.."},
    {"/a/%2F/../b", "/a/b"},
    {"a/b", NULL},
    {"", NULL},
    {"%2Fa", NULL},
};

static void test_normalize_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(norm_cases) / sizeof(norm_cases[0]); i++) {
        const struct norm_case *c = &norm_cases[i];
        size_t len = strlen(c->in);
        char out[256];
        ssize_t n = pt_path_normalize(c->in, len, out, sizeof(out));
        if (!c->want) {
            if (n != -1)
                fail_msg("case %zu \"%s\": got \"%s\", want -1", i, c->in, out);
            continue;
        }
        if (n < 0)
            fail_msg("case %zu \"%s\": got -1, want \"%s\"", i, c->in, c->want);
        assert_int_equal((size_t)n, strlen(c->want));
        assert_string_equal(out, c->want);
        assert_true((size_t)n <= len);
    }
}

static void test_normalize_every_prefix(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(norm_cases) / sizeof(norm_cases[0]); i++) {
        const char *in = norm_cases[i].in;
        size_t len = strlen(in);
        for (size_t k = 0; k <= len; k++) {
            char *cp = malloc(k ? k : 1); /* exact-size copy: reads past it are caught */
            char *out = malloc(k + 1);
            assert_non_null(cp);
            assert_non_null(out);
            memcpy(cp, in, k);
            ssize_t n = pt_path_normalize(cp, k, out, k + 1);
            if (n >= 0) {
                assert_true((size_t)n <= k);
                assert_int_equal(out[0], '/');
                assert_int_equal(out[n], '\0');
                assert_null(strstr(out, "//"));
            }
            free(cp);
            free(out);
        }
    }
}

static void test_normalize_small_out(void **state)
{
    (void)state;
    char out[4];
    assert_int_equal(pt_path_normalize("/abcdef", 7, out, sizeof(out)), -1);
    assert_int_equal(pt_path_normalize("/a%2Fb", 6, out, sizeof(out)), -1);
    assert_int_equal(pt_path_normalize("/ab", 3, out, sizeof(out)), 3);
    assert_string_equal(out, "/ab");
    assert_int_equal(pt_path_normalize("/", 1, out, 1), -1);
    assert_int_equal(pt_path_normalize("/", 1, out, 0), -1);
}

struct enc_case {
    const char *in;
    const char *want;
};

static const struct enc_case enc_cases[] = {
    {"/x y", "/x%20y"},
    {"/a%2Fb", "/a%2Fb"},
    {"/a?b#c", "/a%3Fb%23c"},
    {"/\xc3\xa9", "/%C3%A9"},
    {"/a-b_c.d~e!$&'()*+,;=:@", "/a-b_c.d~e!$&'()*+,;=:@"},
    {"/\"<>\\^`{|}", "/%22%3C%3E%5C%5E%60%7B%7C%7D"},
    {"", ""},
};

static void test_encode_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(enc_cases) / sizeof(enc_cases[0]); i++) {
        char out[128];
        ssize_t n = pt_path_encode(enc_cases[i].in, strlen(enc_cases[i].in), out, sizeof(out));
        assert_int_equal(n, (ssize_t)strlen(enc_cases[i].want));
        assert_string_equal(out, enc_cases[i].want);
    }
}

static void test_encode_small_out(void **state)
{
    (void)state;
    char out[7];
    /* "/x%20y" is 6 bytes + NUL: fits exactly; one byte less does not. */
    assert_int_equal(pt_path_encode("/x y", 4, out, 7), 6);
    assert_string_equal(out, "/x%20y");
    assert_int_equal(pt_path_encode("/x y", 4, out, 6), -1);
    assert_int_equal(pt_path_encode("/xy", 3, out, 3), -1);
    assert_int_equal(pt_path_encode("/xy", 3, out, 4), 3);
}

static void test_encode_roundtrip(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(norm_cases) / sizeof(norm_cases[0]); i++) {
        const struct norm_case *c = &norm_cases[i];
        if (!c->want)
            continue;
        char enc[512], back[512];
        ssize_t e = pt_path_encode(c->want, strlen(c->want), enc, sizeof(enc));
        assert_true(e > 0);
        ssize_t n = pt_path_normalize(enc, (size_t)e, back, sizeof(back));
        assert_true(n >= 0);
        assert_string_equal(back, c->want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize_table),     cmocka_unit_test(test_normalize_every_prefix),
        cmocka_unit_test(test_normalize_small_out), cmocka_unit_test(test_encode_table),
        cmocka_unit_test(test_encode_small_out),    cmocka_unit_test(test_encode_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
