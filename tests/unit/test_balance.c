/* Unit tests for the smooth weighted round robin. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "upstream/balance.h"

static struct pt_upstream_cfg make(struct pt_target_cfg *t, const uint32_t *w, size_t n)
{
    struct pt_upstream_cfg u;
    memset(&u, 0, sizeof(u));
    for (size_t i = 0; i < n; i++) {
        memset(&t[i], 0, sizeof(t[i]));
        t[i].weight = w[i];
    }
    u.targets = t;
    u.n_targets = n;
    return u;
}

static void test_weights_exact_per_cycle(void **state)
{
    (void)state;
    struct pt_target_cfg t[3];
    const uint32_t w[3] = {5, 1, 1};
    struct pt_upstream_cfg u = make(t, w, 3);
    int64_t scores[3] = {0};
    int counts[3] = {0};
    for (int i = 0; i < 7 * 100; i++)
        counts[pt_lb_rr_pick(&u, scores, 0)]++;
    assert_int_equal(counts[0], 500);
    assert_int_equal(counts[1], 100);
    assert_int_equal(counts[2], 100);
}

static void test_interleaved_not_bursty(void **state)
{
    (void)state;
    struct pt_target_cfg t[3];
    const uint32_t w[3] = {5, 1, 1};
    struct pt_upstream_cfg u = make(t, w, 3);
    int64_t scores[3] = {0};
    int seq[7];
    for (int i = 0; i < 7; i++)
        seq[i] = pt_lb_rr_pick(&u, scores, 0);
    /* nginx's smooth sequence for 5,1,1: a a b a c a a */
    const int want[7] = {0, 0, 1, 0, 2, 0, 0};
    assert_memory_equal(seq, want, sizeof(want));
}

static void test_skip_mask(void **state)
{
    (void)state;
    struct pt_target_cfg t[2];
    const uint32_t w[2] = {1, 1};
    struct pt_upstream_cfg u = make(t, w, 2);
    int64_t scores[2] = {0};
    for (int i = 0; i < 10; i++)
        assert_int_equal(pt_lb_rr_pick(&u, scores, 1u << 0), 1);
    assert_int_equal(pt_lb_rr_pick(&u, scores, 3u), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weights_exact_per_cycle),
        cmocka_unit_test(test_interleaved_not_bursty),
        cmocka_unit_test(test_skip_mask),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
