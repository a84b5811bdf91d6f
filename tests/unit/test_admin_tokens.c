/* test_admin_tokens.c - the admin tokens file parser, hashing, lookup and token making
   (admin/tokens.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "admin/tokens.h"

#define ABC_SHA256 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void hex(const uint8_t *h, char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static void test_hash_known_vectors(void **state)
{
    (void)state;
    uint8_t h[32];
    char x[65];
    pt_tokens_hash("abc", 3, h);
    hex(h, x);
    assert_string_equal(x, ABC_SHA256);
    pt_tokens_hash("", 0, h);
    hex(h, x);
    assert_string_equal(x, EMPTY_SHA256);
}

static void test_parse_valid_file(void **state)
{
    (void)state;
    const char *text =
        "# admin tokens\n"
        "\n"
        "ci write " ABC_SHA256 "\r\n"
        "   \t# indented comment\n"
        "dash.board_1-x\tread\t" EMPTY_SHA256 "   \n"
        "UPPER read BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AE";
    struct pt_tokens t;
    char err[512];
    assert_int_equal(pt_tokens_parse("tok", text, strlen(text), &t, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_int_equal(t.n, 3);
    assert_string_equal(t.items[0].name, "ci");
    assert_int_equal(t.items[0].scope, PT_SCOPE_WRITE);
    assert_string_equal(t.items[1].name, "dash.board_1-x");
    assert_int_equal(t.items[1].scope, PT_SCOPE_READ);
    assert_int_equal(t.items[2].sha256[31], 0xae);
    /* Lookup: the token text whose hash is stored, not the hash. */
    const struct pt_token *f = pt_tokens_find(&t, "abc", 3);
    assert_non_null(f);
    assert_string_equal(f->name, "ci");
    f = pt_tokens_find(&t, "", 0);
    assert_non_null(f);
    assert_string_equal(f->name, "dash.board_1-x");
    assert_null(pt_tokens_find(&t, "abcd", 4));
    assert_null(pt_tokens_find(&t, "ab", 2));
    assert_null(pt_tokens_find(&t, ABC_SHA256, 64));
    pt_tokens_free(&t);
    assert_int_equal(t.n, 0);
}

static void test_parse_empty_file_has_no_tokens(void **state)
{
    (void)state;
    struct pt_tokens t;
    char err[64];
    assert_int_equal(pt_tokens_parse("tok", "", 0, &t, err, sizeof(err)), 0);
    assert_int_equal(t.n, 0);
    assert_null(pt_tokens_find(&t, "abc", 3));
    pt_tokens_free(&t);
}

struct bad_case {
    const char *text;
    const char *want; /* a substring of the error */
};

static void test_parse_rejects_bad_lines_with_their_line_number(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"ci write\n", "tok:1: expected NAME SCOPE SHA256HEX"},
        {"ci write " ABC_SHA256 " extra\n", "tok:1: expected NAME SCOPE SHA256HEX"},
        {"\n\nci admin " ABC_SHA256 "\n", "tok:3: the scope must be read or write"},
        {"ci writer " ABC_SHA256 "\n", "tok:1: the scope must be read or write"},
        {"ci read abc\n", "tok:1: expected the token's SHA-256 as 64 hex digits"},
        {"ci read " ABC_SHA256 "0\n", "tok:1: expected the token's SHA-256"},
        {"ci read zz7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
         "tok:1: expected the token's SHA-256"},
        {"c!i read " ABC_SHA256 "\n", "tok:1: a token name is 1 to 64"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa read " ABC_SHA256 "\n",
         "tok:1: a token name is 1 to 64"},
        {"ci read " ABC_SHA256 "\nci write " EMPTY_SHA256 "\n",
         "tok:2: token name \"ci\" is used twice"},
        {"ci read " ABC_SHA256 "\rx\n", "tok:1: control characters"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pt_tokens t;
        char err[512];
        int rc = pt_tokens_parse("tok", cases[i].text, strlen(cases[i].text), &t, err, sizeof(err));
        if (rc != -1 || !strstr(err, cases[i].want))
            fail_msg("case %zu: rc %d, error \"%s\", want \"%s\"", i, rc, err, cases[i].want);
        assert_int_equal(t.n, 0);
        assert_null(t.items);
        /* The error never echoes the hash. */
        assert_null(strstr(err, "ba7816bf"));
    }
}

static void test_parse_reports_every_bad_line_bounded(void **state)
{
    (void)state;
    char text[4096];
    for (int i = 0; i < 30; i++)
        memcpy(text + 4 * i, "bad\n", 4);
    text[120] = '\0';
    struct pt_tokens t;
    char err[2048];
    assert_int_equal(pt_tokens_parse("tok", text, strlen(text), &t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "tok:1: "));
    assert_non_null(strstr(err, "tok:10: "));
    assert_null(strstr(err, "tok:11: "));
    assert_non_null(strstr(err, "tok: 20 more errors"));
    /* A small error buffer truncates, never overflows. */
    char small[16];
    assert_int_equal(pt_tokens_parse("tok", text, strlen(text), &t, small, sizeof(small)), -1);
    assert_true(strlen(small) < sizeof(small));
}

static void test_make_gives_a_token_whose_line_parses_and_matches(void **state)
{
    (void)state;
    char token[64], line[160], token2[64], line2[160];
    assert_int_equal(
        pt_tokens_make("deploy", PT_SCOPE_WRITE, token, sizeof(token), line, sizeof(line)), 0);
    assert_int_equal(strlen(token), 46);
    assert_memory_equal(token, "pt_", 3);
    for (size_t i = 3; i < 46; i++)
        assert_non_null(
            strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", token[i]));
    assert_int_equal(strncmp(line, "deploy write ", 13), 0);
    assert_int_equal(strlen(line), 13 + 64);
    struct pt_tokens t;
    char err[256];
    assert_int_equal(pt_tokens_parse("tok", line, strlen(line), &t, err, sizeof(err)), 0);
    const struct pt_token *f = pt_tokens_find(&t, token, strlen(token));
    assert_non_null(f);
    assert_int_equal(f->scope, PT_SCOPE_WRITE);
    pt_tokens_free(&t);
    assert_int_equal(
        pt_tokens_make("deploy", PT_SCOPE_READ, token2, sizeof(token2), line2, sizeof(line2)), 0);
    assert_string_not_equal(token, token2);
    assert_int_equal(
        pt_tokens_make("bad name", PT_SCOPE_READ, token2, sizeof(token2), line2, sizeof(line2)),
        -1);
    assert_int_equal(
        pt_tokens_make("ok", PT_SCOPE_NONE, token2, sizeof(token2), line2, sizeof(line2)), -1);
    assert_int_equal(pt_tokens_make("ok", PT_SCOPE_READ, token2, 20, line2, sizeof(line2)), -1);
}

static void test_scope_names(void **state)
{
    (void)state;
    assert_int_equal(pt_token_scope_parse("read"), PT_SCOPE_READ);
    assert_int_equal(pt_token_scope_parse("write"), PT_SCOPE_WRITE);
    assert_int_equal(pt_token_scope_parse("Write"), PT_SCOPE_NONE);
    assert_int_equal(pt_token_scope_parse(""), PT_SCOPE_NONE);
    assert_string_equal(pt_token_scope_name(PT_SCOPE_READ), "read");
    assert_string_equal(pt_token_scope_name(PT_SCOPE_WRITE), "write");
    assert_true(pt_token_name_ok("a", 1));
    assert_false(pt_token_name_ok("", 0));
    assert_false(pt_token_name_ok("a b", 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_known_vectors),
        cmocka_unit_test(test_parse_valid_file),
        cmocka_unit_test(test_parse_empty_file_has_no_tokens),
        cmocka_unit_test(test_parse_rejects_bad_lines_with_their_line_number),
        cmocka_unit_test(test_parse_reports_every_bad_line_bounded),
        cmocka_unit_test(test_make_gives_a_token_whose_line_parses_and_matches),
        cmocka_unit_test(test_scope_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
