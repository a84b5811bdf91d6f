/*
 * test_guard_connlimit.c - the shared per-client table: caps per kind, giving back, addresses
 * as keys (IPv4-mapped IPv6 is IPv4, the port is no part of it), one count across threads,
 * and fixed memory under a flood of distinct addresses.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "guard/connlimit.h"

static uint64_t key4(struct pt_cl *t, const char *ip, uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
    return pt_cl_key(t, (const struct sockaddr *)&a);
}

static uint64_t key6(struct pt_cl *t, const char *ip)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6};
    assert_int_equal(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
    return pt_cl_key(t, (const struct sockaddr *)&a);
}

static void test_caps_each_kind_and_gives_back(void **state)
{
    (void)state;
    struct pt_cl *t = pt_cl_new(0);
    assert_non_null(t);
    uint64_t a = key4(t, "10.0.0.1", 1000), b = key4(t, "10.0.0.2", 1000);
    assert_int_not_equal(a, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pt_cl_take(t, a, PT_CL_CONN, 3), PT_CL_TAKEN);
    assert_int_equal(pt_cl_take(t, a, PT_CL_CONN, 3), PT_CL_OVER);
    assert_int_equal(pt_cl_count(t, a, PT_CL_CONN), 3);
    /* the other kind and the other client have their own counts */
    assert_int_equal(pt_cl_take(t, a, PT_CL_REQ, 1), PT_CL_TAKEN);
    assert_int_equal(pt_cl_take(t, a, PT_CL_REQ, 1), PT_CL_OVER);
    assert_int_equal(pt_cl_take(t, b, PT_CL_CONN, 3), PT_CL_TAKEN);
    pt_cl_put(t, a, PT_CL_CONN);
    assert_int_equal(pt_cl_take(t, a, PT_CL_CONN, 3), PT_CL_TAKEN);
    for (int i = 0; i < 3; i++)
        pt_cl_put(t, a, PT_CL_CONN);
    pt_cl_put(t, a, PT_CL_REQ);
    assert_int_equal(pt_cl_count(t, a, PT_CL_CONN), 0);
    assert_int_equal(pt_cl_count(t, a, PT_CL_REQ), 0);
    pt_cl_put(t, a, PT_CL_CONN); /* one too many: stays at zero */
    assert_int_equal(pt_cl_count(t, a, PT_CL_CONN), 0);
    assert_int_equal(pt_cl_count(t, b, PT_CL_CONN), 1);
    pt_cl_free(t);
}

static void test_the_key_is_the_address(void **state)
{
    (void)state;
    struct pt_cl *t = pt_cl_new(0);
    assert_int_equal(key4(t, "192.0.2.7", 1), key4(t, "192.0.2.7", 65000));
    assert_int_equal(key4(t, "192.0.2.7", 1), key6(t, "::ffff:192.0.2.7"));
    assert_int_not_equal(key4(t, "192.0.2.7", 1), key4(t, "192.0.2.8", 1));
    assert_int_not_equal(key6(t, "2001:db8::1"), key6(t, "2001:db8::2"));
    struct sockaddr un = {.sa_family = AF_UNIX};
    assert_int_equal(pt_cl_key(t, &un), 0);
    pt_cl_free(t);
}

#define THREADS 4
#define ROUNDS 20000

struct run {
    struct pt_cl *t;
    uint64_t key;
    int over;
};

static void *hammer(void *arg)
{
    struct run *ru = arg;
    for (int i = 0; i < ROUNDS; i++) {
        enum pt_cl_verdict v = pt_cl_take(ru->t, ru->key, PT_CL_CONN, 2);
        if (v == PT_CL_TAKEN)
            pt_cl_put(ru->t, ru->key, PT_CL_CONN);
        else
            ru->over++;
    }
    return NULL;
}

static void test_counts_are_exact_across_threads(void **state)
{
    (void)state;
    struct pt_cl *t = pt_cl_new(0);
    uint64_t k = key4(t, "198.51.100.1", 1);
    /* one held for the whole run: the others share the one left under the cap */
    assert_int_equal(pt_cl_take(t, k, PT_CL_CONN, 2), PT_CL_TAKEN);
    pthread_t th[THREADS];
    struct run ru[THREADS];
    for (int i = 0; i < THREADS; i++) {
        ru[i] = (struct run){t, k, 0};
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &ru[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(pt_cl_count(t, k, PT_CL_CONN), 1); /* every take was given back */
    pt_cl_put(t, k, PT_CL_CONN);
    assert_int_equal(pt_cl_count(t, k, PT_CL_CONN), 0);
    pt_cl_free(t);
}

static void test_memory_is_fixed_under_an_address_flood(void **state)
{
    (void)state;
    struct pt_cl *t = pt_cl_new(10000);
    size_t bytes = pt_cl_bytes(t);
    assert_true(bytes <= 64 * 512 * 16 + 16384); /* 2 x 10,000 rounded: 512 slots a shard */
    char ip[32];
    /* a million distinct addresses, each connecting and leaving: slots are reused */
    for (int i = 0; i < 1000000; i++) {
        snprintf(ip, sizeof ip, "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        uint64_t k = key4(t, ip, 1);
        assert_int_equal(pt_cl_take(t, k, PT_CL_CONN, 1), PT_CL_TAKEN);
        pt_cl_put(t, k, PT_CL_CONN);
    }
    assert_int_equal(pt_cl_overflows(t), 0);
    /* held at once beyond the table's room: the rest are admitted uncounted, never refused */
    int untracked = 0;
    for (int i = 0; i < 100000; i++) {
        snprintf(ip, sizeof ip, "11.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        enum pt_cl_verdict v = pt_cl_take(t, key4(t, ip, 1), PT_CL_CONN, 1);
        assert_int_not_equal(v, PT_CL_OVER);
        untracked += v == PT_CL_UNTRACKED;
    }
    assert_true(untracked > 0);
    assert_int_equal(pt_cl_overflows(t), (uint64_t)untracked);
    assert_int_equal(pt_cl_bytes(t), bytes);
    pt_cl_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_caps_each_kind_and_gives_back),
        cmocka_unit_test(test_the_key_is_the_address),
        cmocka_unit_test(test_counts_are_exact_across_threads),
        cmocka_unit_test(test_memory_is_fixed_under_an_address_flood),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
