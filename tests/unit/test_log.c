/* test_log.c - the rate limit on repeated log lines (core/log.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/log.h"

static void test_burst_then_silence_then_count(void **state)
{
    (void)state;
    struct pt_log_limit lim = {0};
    uint32_t sup = 99;
    uint64_t t = 1000;
    for (uint32_t i = 0; i < PT_LOG_LIMIT_BURST; i++) {
        assert_true(pt_log_limit_allow(&lim, t + i, &sup));
        assert_int_equal(sup, 0);
    }
    for (int i = 0; i < 1000; i++)
        assert_false(pt_log_limit_allow(&lim, t + 10 + (uint64_t)i, &sup));
    /* Still inside the window: nothing. */
    assert_false(pt_log_limit_allow(&lim, t + PT_LOG_LIMIT_WINDOW_MS - 1, &sup));
    /* A new window: the first line carries the count of what was dropped. */
    assert_true(pt_log_limit_allow(&lim, t + PT_LOG_LIMIT_WINDOW_MS, &sup));
    assert_int_equal(sup, 1001);
    assert_true(pt_log_limit_allow(&lim, t + PT_LOG_LIMIT_WINDOW_MS + 1, &sup));
    assert_int_equal(sup, 0);
}

static void test_write_limited_does_not_crash_on_long_lines(void **state)
{
    (void)state;
    struct pt_log_limit lim = {0};
    char big[4000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    pt_log_set_level(PT_LOG_ERROR);
    for (int i = 0; i < 20; i++)
        pt_log_write_limited(&lim, PT_LOG_DEBUG, "%s", big);
    assert_int_equal(lim.n_logged, PT_LOG_LIMIT_BURST);
    assert_int_equal(lim.n_suppressed, 20 - PT_LOG_LIMIT_BURST);
}

static void test_warnings_are_counted(void **state)
{
    (void)state;
    uint64_t before = pt_log_warnings();
    pt_log_write(PT_LOG_INFO, "an info line is not a warning");
    pt_log_write(PT_LOG_ERROR, "nor is an error line");
    assert_int_equal(pt_log_warnings(), before);
    pt_log_write(PT_LOG_WARN, "one warning");
    pt_log_write(PT_LOG_WARN, "and another");
    assert_int_equal(pt_log_warnings(), before + 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_silence_then_count),
        cmocka_unit_test(test_write_limited_does_not_crash_on_long_lines),
        cmocka_unit_test(test_warnings_are_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
