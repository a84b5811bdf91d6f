/*
 * test_guard_ratelimit.c - the shared GCRA table: bursts, refill, Retry-After and the
 * remaining count, one limit across threads, bounded memory under a flood of keys, delay (a
 * request over the burst told how long to wait for its slot), and the store seam.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "guard/ratelimit.h"

static bool take(struct pt_rl *t, const char *key, const struct pt_rl_limit *l, uint64_t now,
                 struct pt_rl_verdict *v)
{
    pt_rl_take(t, key, strlen(key), l, now, v);
    return v->is_ok;
}

static void test_burst_then_refill(void **state)
{
    (void)state;
    struct pt_rl *t = pt_rl_new(0);
    assert_non_null(t);
    struct pt_rl_limit l = {100000, 3, 0}; /* 10 r/s, burst 3 */
    struct pt_rl_verdict v;
    uint64_t now = 1000000000;
    assert_true(take(t, "a", &l, now, &v));
    assert_int_equal(v.remaining, 2);
    assert_true(take(t, "a", &l, now, &v));
    assert_true(take(t, "a", &l, now, &v));
    assert_int_equal(v.remaining, 0);
    assert_int_equal(v.reset_us, 300000);
    assert_false(take(t, "a", &l, now, &v)); /* the fourth at once */
    assert_int_equal(v.retry_after_us, 100000);
    assert_false(take(t, "a", &l, now + 99999, &v));
    assert_int_equal(v.retry_after_us, 1);
    assert_true(take(t, "a", &l, now + 100000, &v)); /* one interval later: one more */
    assert_false(take(t, "a", &l, now + 100000, &v));
    assert_true(take(t, "b", &l, now, &v)); /* another key has its own burst */
    /* after a long idle time the whole burst is back */
    for (int i = 0; i < 3; i++)
        assert_true(take(t, "a", &l, now + 10000000, &v));
    assert_false(take(t, "a", &l, now + 10000000, &v));
    pt_rl_free(t);
}

static void test_a_steady_rate_is_allowed(void **state)
{
    (void)state;
    struct pt_rl *t = pt_rl_new(0);
    struct pt_rl_limit l = {1000, 1, 0}; /* 1,000 r/s, no burst */
    struct pt_rl_verdict v;
    int ok = 0;
    for (uint64_t us = 0; us < 1000000; us += 500) /* 2,000 r/s offered for a second */
        ok += take(t, "k", &l, 5000000 + us, &v);
    assert_int_equal(ok, 1000);
    pt_rl_free(t);
}

struct race {
    struct pt_rl *t;
    int allowed;
};

static void *racer(void *arg)
{
    struct race *r = arg;
    struct pt_rl_limit l = {1000000000, 1000, 0}; /* 1,000 at once, then almost never */
    struct pt_rl_verdict v;
    for (int i = 0; i < 5000; i++)
        if (take(r->t, "shared", &l, 42, &v))
            r->allowed++;
    return NULL;
}

/* Four threads (workers) count against one limit: 1,000 allowed in all, not 1,000 each. */
static void test_the_limit_is_shared_by_threads(void **state)
{
    (void)state;
    struct pt_rl *t = pt_rl_new(0);
    struct race rs[4] = {{t, 0}, {t, 0}, {t, 0}, {t, 0}};
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, racer, &rs[i]);
    int sum = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        sum += rs[i].allowed;
    }
    assert_int_equal(sum, 1000);
    pt_rl_free(t);
}

/* A million distinct keys in a table for 100,000: memory stays what it was made with, and a
   key that is still limited is pushed out only by the flood (then it gets its burst back). */
static void test_memory_is_bounded_under_a_key_flood(void **state)
{
    (void)state;
    struct pt_rl *t = pt_rl_new(100000);
    size_t bytes = pt_rl_bytes(t);
    assert_true(bytes <= 64 * 4096 * 16 + 16384);
    struct pt_rl_limit l = {1000000, 1, 0}; /* 1 r/s */
    struct pt_rl_verdict v;
    char key[32];
    for (int i = 0; i < 1000000; i++) {
        snprintf(key, sizeof key, "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        assert_true(take(t, key, &l, 7000000, &v)); /* each key's first request */
    }
    assert_true(pt_rl_evictions(t) > 0);
    assert_int_equal(pt_rl_bytes(t), bytes);
    /* idle keys free their slots: a later second takes no eviction */
    uint64_t before = pt_rl_evictions(t);
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "later-%d", i);
        assert_true(take(t, key, &l, 9000000, &v));
    }
    assert_int_equal(pt_rl_evictions(t), before);
    pt_rl_free(t);
}

/* delay: past the burst, a request whose slot comes within the delay is counted and told to
   wait until it; past the delay it is refused, uncounted, with the time until one would be
   held. */
static void test_delay_gives_the_wait_until_the_slot(void **state)
{
    (void)state;
    struct pt_rl *t = pt_rl_new(0);
    struct pt_rl_limit l = {100000, 2, 250000}; /* 10 r/s, burst 2, held at most 250 ms */
    struct pt_rl_verdict v;
    uint64_t now = 3000000;
    assert_true(take(t, "d", &l, now, &v) && v.delay_us == 0);
    assert_true(take(t, "d", &l, now, &v) && v.delay_us == 0);
    assert_true(take(t, "d", &l, now, &v));
    assert_int_equal(v.delay_us, 100000);
    assert_true(take(t, "d", &l, now, &v));
    assert_int_equal(v.delay_us, 200000);
    assert_false(take(t, "d", &l, now, &v)); /* its slot would be 300 ms away */
    assert_int_equal(v.retry_after_us, 50000);
    assert_true(take(t, "d", &l, now + 50000, &v)); /* now within reach */
    assert_int_equal(v.delay_us, 250000);
    /* without delay, the same limit refuses the third */
    struct pt_rl_limit nodelay = {100000, 2, 0};
    assert_true(take(t, "n", &nodelay, now, &v) && take(t, "n", &nodelay, now, &v));
    assert_false(take(t, "n", &nodelay, now, &v));
    pt_rl_free(t);
}

/* The local store behaves as the table it wraps. */
static void test_the_local_store_is_the_table(void **state)
{
    (void)state;
    struct pt_rl_store *s = pt_rl_store_local(0);
    assert_non_null(s);
    assert_string_equal(s->ops->name, "local");
    struct pt_rl_limit l = {1000000, 1, 0};
    struct pt_rl_verdict v;
    pt_rl_store_take(s, "k", 1, &l, 5000000, &v);
    assert_true(v.is_ok);
    pt_rl_store_take(s, "k", 1, &l, 5000000, &v);
    assert_false(v.is_ok);
    assert_int_equal(v.retry_after_us, 1000000);
    assert_int_equal(pt_rl_store_evictions(s), 0);
    assert_true(pt_rl_store_bytes(s) >= 1024 * 16);
    pt_rl_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_refill),
        cmocka_unit_test(test_a_steady_rate_is_allowed),
        cmocka_unit_test(test_the_limit_is_shared_by_threads),
        cmocka_unit_test(test_memory_is_bounded_under_a_key_flood),
        cmocka_unit_test(test_delay_gives_the_wait_until_the_slot),
        cmocka_unit_test(test_the_local_store_is_the_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
