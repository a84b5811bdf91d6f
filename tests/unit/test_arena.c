/*
 * test_arena.c - the bump allocator (src/core/arena.c): zeroed allocations, string copies, and
 * pt_arena_grow, the doubling array every rule reader appends to.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"

static void test_alloc_and_strings(void **state)
{
    (void)state;
    struct pt_arena a;
    pt_arena_init(&a, 256);
    unsigned char *p = pt_arena_alloc(&a, 1000); /* larger than a block */
    assert_non_null(p);
    for (size_t i = 0; i < 1000; i++)
        assert_int_equal(p[i], 0);
    char *s = pt_arena_strndup(&a, "hello world", 5);
    assert_string_equal(s, "hello");
    assert_string_equal(pt_arena_strdup(&a, "x"), "x");
    pt_arena_free(&a);
}

static void test_grow_keeps_elements_and_doubles(void **state)
{
    (void)state;
    struct pt_arena a;
    pt_arena_init(&a, 4096);
    uint32_t *items = NULL;
    size_t n = 0, cap = 0;
    for (uint32_t i = 0; i < 1000; i++) {
        size_t old_cap = cap;
        uint32_t *g = pt_arena_grow(&a, items, n, &cap, sizeof(*items), 4);
        assert_non_null(g);
        if (n < old_cap) { /* there was room: nothing moves */
            assert_ptr_equal(g, items);
            assert_int_equal(cap, old_cap);
        }
        items = g;
        assert_true(cap > n);
        items[n++] = i * 7;
    }
    assert_int_equal(cap, 1024); /* 4, 8, ... 1024 */
    for (uint32_t i = 0; i < 1000; i++)
        assert_int_equal(items[i], i * 7);
    /* room left: the same array comes back */
    assert_ptr_equal(pt_arena_grow(&a, items, n, &cap, sizeof(*items), 4), items);
    pt_arena_free(&a);
}

static void test_grow_refuses_overflow(void **state)
{
    (void)state;
    struct pt_arena a;
    pt_arena_init(&a, 4096);
    size_t cap = SIZE_MAX / 16 + 1, n = cap;
    char dummy;
    assert_null(pt_arena_grow(&a, &dummy, n, &cap, 16, 4));
    assert_int_equal(cap, SIZE_MAX / 16 + 1); /* unchanged */
    pt_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_and_strings),
        cmocka_unit_test(test_grow_keeps_elements_and_doubles),
        cmocka_unit_test(test_grow_refuses_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
