/*
 * test_websocket.c - the WebSocket handshake values (src/handler/websocket.c): the key the proxy
 * makes for an HTTP/2 client, and the check of the target's Sec-WebSocket-Accept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "handler/websocket.h"

#define S(lit) ((struct pt_str){(lit), sizeof(lit) - 1})

/* RFC 6455 §1.3's example: key "dGhlIHNhbXBsZSBub25jZQ==" -> "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=". */
static void test_accept_of_the_rfc_example(void **state)
{
    (void)state;
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    assert_true(pt_ws_accept_ok(key, S("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")));
    assert_true(pt_ws_accept_ok(key, S("  s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\t")));
    assert_false(pt_ws_accept_ok(key, S("s3pPLMBiTxaQ9kYGzzhZRbK+xOo")));
    assert_false(pt_ws_accept_ok(key, S("s3pPLMBiTxaQ9kYGzzhZRbK+xOp=")));
    assert_false(pt_ws_accept_ok(key, S("")));
    assert_false(pt_ws_accept_ok(key, (struct pt_str){NULL, 0}));
    assert_false(pt_ws_accept_ok("short", S("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")));
}

/* A key is 16 bytes in base64 (24 characters ending "=="), different for different input. */
static void test_key_is_16_bytes_of_base64(void **state)
{
    (void)state;
    char a[PT_WS_KEY_LEN + 1], b[PT_WS_KEY_LEN + 1];
    pt_ws_key(0x0123456789abcdefull, 0xfedcba9876543210ull, a);
    pt_ws_key(1, 2, b);
    assert_int_equal(strlen(a), PT_WS_KEY_LEN);
    assert_string_equal(a + 22, "==");
    assert_string_not_equal(a, b);
    pt_ws_key(0, 0, a);
    assert_string_equal(a, "AAAAAAAAAAAAAAAAAAAAAA==");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_of_the_rfc_example),
        cmocka_unit_test(test_key_is_16_bytes_of_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
