/*
 * test_http_date.c - HTTP-dates (http/date.c): the three forms RFC 9110 §5.6.7 has a recipient
 * accept, near misses refused, and IMF-fixdate written back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "http/date.h"

static void test_http_date(void **state)
{
    (void)state;
    const char *good[] = {"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
                          "Sun Nov  6 08:49:37 1994"};
    for (size_t i = 0; i < 3; i++) {
        time_t t = 0;
        assert_int_equal(pt_http_date_parse(good[i], strlen(good[i]), &t), 0);
        assert_int_equal(t, 784111777);
    }
    const char *bad[] = {"",
                         "Sun, 06 Nov 1994 08:49:37 UTC",
                         "Sun, 06 Foo 1994 08:49:37 GMT",
                         "Sun, 6 Nov 1994 08:49:37 GMT",
                         "Sun, 06 Nov 1994 25:49:37 GMT",
                         "Sun, 00 Nov 1994 08:49:37 GMT",
                         "Sunday, 06-Nov-94 08:49:37 GM",
                         "Funday, 06-Nov-94 08:49:37 GMT",
                         "Sun Nov 6 08:49:37 1994",
                         "1994-11-06T08:49:37Z"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        time_t t;
        if (pt_http_date_parse(bad[i], strlen(bad[i]), &t) == 0)
            fail_msg("accepted %s", bad[i]);
    }
}

static void test_http_date_fmt(void **state)
{
    (void)state;
    char buf[64];
    size_t n = pt_http_date_fmt(buf, sizeof(buf), 784111777);
    assert_int_equal(n, 29);
    assert_memory_equal(buf, "Sun, 06 Nov 1994 08:49:37 GMT", 29);
    time_t t = 0;
    assert_int_equal(pt_http_date_parse(buf, n, &t), 0);
    assert_int_equal(t, 784111777);
    assert_int_equal(pt_http_date_fmt(buf, 29, 784111777), 0); /* no room for the NUL */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_date),
        cmocka_unit_test(test_http_date_fmt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
