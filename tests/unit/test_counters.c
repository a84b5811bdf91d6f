/*
 * test_counters.c - per-thread counter blocks (src/core/counters.c): threads that add to their
 * own blocks while a reader sums end with the exact total, series keep their slots by key and
 * never cross a chunk, histograms put each value in its bucket; and the growable output of
 * core/buf.h that the metrics page is built in.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/counters.h"

#define N_THREADS 4
#define N_ADDS 200000

struct worker_arg {
    struct pt_counters *reg;
    uint32_t block;
    uint32_t slot;
    atomic_bool *go;
};

static void *adder(void *p)
{
    struct worker_arg *a = p;
    pt_ctr_bind(pt_counters_block(a->reg, a->block));
    while (!atomic_load(a->go))
        ;
    for (uint32_t i = 0; i < N_ADDS; i++) {
        pt_ctr_add(pt_ctr_self, a->slot, 1);
        pt_ctr_add_self(PT_CTR_RELOADS_OK, 2);
    }
    pt_ctr_bind(NULL);
    return NULL;
}

static void test_threads_sum_exactly(void **state)
{
    (void)state;
    struct pt_counters *reg = pt_counters_create(N_THREADS);
    assert_non_null(reg);
    uint32_t slot = pt_counters_series(reg, "test\x1fsum", 3);
    assert_int_not_equal(slot, PT_CTR_NONE);
    pthread_t th[N_THREADS];
    struct worker_arg args[N_THREADS];
    atomic_bool go = false;
    for (uint32_t i = 0; i < N_THREADS; i++) {
        args[i] = (struct worker_arg){reg, i, slot + 1, &go};
        assert_int_equal(pthread_create(&th[i], NULL, adder, &args[i]), 0);
    }
    atomic_store(&go, true);
    /* The reader sums while they count: never more than the final total, never going back. */
    uint64_t last = 0;
    for (int k = 0; k < 1000; k++) {
        uint64_t s = pt_counters_sum(reg, slot + 1);
        assert_true(s >= last);
        assert_true(s <= (uint64_t)N_THREADS * N_ADDS);
        last = s;
    }
    for (uint32_t i = 0; i < N_THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(pt_counters_sum(reg, slot + 1), (uint64_t)N_THREADS * N_ADDS);
    assert_int_equal(pt_counters_sum(reg, PT_CTR_RELOADS_OK), (uint64_t)N_THREADS * N_ADDS * 2);
    assert_int_equal(pt_counters_sum(reg, slot), 0);
    assert_int_equal(pt_counters_sum(reg, slot + 2), 0);
    assert_int_equal(pt_counters_get(reg, 1, slot + 1), N_ADDS);
    pt_counters_free(reg);
}

static void test_series_keep_their_slots(void **state)
{
    (void)state;
    struct pt_counters *reg = pt_counters_create(2);
    assert_non_null(reg);
    uint32_t a = pt_counters_series(reg, "a", 10);
    uint32_t b = pt_counters_series(reg, "b", 10);
    assert_true(a >= PT_CTR_N_FIXED);
    assert_true(b >= a + 10 || b + 10 <= a);
    assert_int_equal(pt_counters_series(reg, "a", 10), a); /* a reload keeps it */
    assert_int_equal(pt_counters_series(reg, "a", 11), PT_CTR_NONE);
    assert_int_equal(pt_counters_series(reg, "big", PT_CTR_CHUNK + 1), PT_CTR_NONE);
    pt_ctr_add(pt_counters_block(reg, 0), a + 3, 5);
    pt_ctr_add(pt_counters_block(reg, 1), a + 3, 7);
    assert_int_equal(pt_counters_sum(reg, a + 3), 12);
    /* Many series: the key table grows, no series crosses a chunk, old ones keep counting. */
    char key[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof(key), "s%d", i);
        uint32_t s = pt_counters_series(reg, key, 67);
        assert_int_not_equal(s, PT_CTR_NONE);
        assert_int_equal(s / PT_CTR_CHUNK, (s + 66) / PT_CTR_CHUNK);
        pt_ctr_add(pt_counters_block(reg, 1), s + 66, (uint64_t)i);
    }
    for (int i = 0; i < 3000; i += 97) {
        snprintf(key, sizeof(key), "s%d", i);
        uint32_t s = pt_counters_series(reg, key, 67);
        assert_int_equal(pt_counters_sum(reg, s + 66), (uint64_t)i);
    }
    assert_int_equal(pt_counters_sum(reg, a + 3), 12);
    /* A gauge kept with +1/-1 in different blocks sums right. */
    pt_ctr_add(pt_counters_block(reg, 0), PT_CTR_POOL_IDLE, 3);
    pt_ctr_add(pt_counters_block(reg, 1), PT_CTR_POOL_IDLE, (uint64_t)-1);
    assert_int_equal((int64_t)pt_counters_sum(reg, PT_CTR_POOL_IDLE), 2);
    assert_null(pt_counters_block(reg, 2));
    pt_counters_free(reg);
}

static void test_histogram_buckets(void **state)
{
    (void)state;
    static const uint64_t bounds[] = {10, 100, 1000};
    const struct pt_hist_def d = {bounds, 3};
    assert_int_equal(pt_hist_slots(&d), 5);
    struct pt_counters *reg = pt_counters_create(1);
    struct pt_ctr_block *b = pt_counters_block(reg, 0);
    uint32_t h = pt_counters_series(reg, "h", pt_hist_slots(&d));
    uint64_t values[] = {0, 10, 11, 100, 500, 1000, 1001, 99999};
    uint64_t sum = 0;
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        pt_hist_observe(pt_ctr_at(b, h), &d, values[i]);
        sum += values[i];
    }
    /* le is inclusive: 10 is in the first bucket, 1000 in the third. */
    assert_int_equal(pt_counters_sum(reg, h + 0), 2);
    assert_int_equal(pt_counters_sum(reg, h + 1), 2);
    assert_int_equal(pt_counters_sum(reg, h + 2), 2);
    assert_int_equal(pt_counters_sum(reg, h + 3), 2); /* +Inf */
    assert_int_equal(pt_counters_sum(reg, h + 4), sum);
    /* The duration buckets go from 1 ms to 60 s, ascending. */
    const struct pt_hist_def *dd = &pt_hist_duration_us;
    assert_int_equal(dd->bounds[0], 1000);
    assert_int_equal(dd->bounds[dd->n_bounds - 1], 60000000);
    for (uint32_t i = 1; i < dd->n_bounds; i++)
        assert_true(dd->bounds[i] > dd->bounds[i - 1]);
    pt_counters_free(reg);
}

static void test_gbuf_grows_to_its_maximum(void **state)
{
    (void)state;
    struct pt_gbuf g = {.max = 10000};
    for (int i = 0; i < 1000; i++)
        assert_int_equal(pt_gbuf_printf(&g, "%d\n", i % 10), 0);
    assert_int_equal(g.len, 2000);
    assert_int_equal(g.data[g.len], '\0');
    char big[600];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(pt_gbuf_printf(&g, "%s", big), 0); /* longer than the stack scratch */
    assert_int_equal(g.len, 2599);
    assert_memory_equal(g.data + 2000, big, 599);
    char chunk[4000] = {0};
    assert_int_equal(pt_gbuf_put(&g, chunk, sizeof(chunk)), 0);
    assert_int_equal(pt_gbuf_put(&g, chunk, sizeof(chunk)), -1); /* past max */
    assert_true(g.is_failed);
    assert_int_equal(pt_gbuf_put(&g, "a", 1), -1); /* stays failed */
    pt_gbuf_free(&g);
    assert_null(g.data);
    assert_int_equal(g.max, 10000);
    assert_false(g.is_failed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_sum_exactly),
        cmocka_unit_test(test_series_keep_their_slots),
        cmocka_unit_test(test_histogram_buckets),
        cmocka_unit_test(test_gbuf_grows_to_its_maximum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
