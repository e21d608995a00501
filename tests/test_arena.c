/* Tests for the request arena (include/gust/arena.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "gust/arena.h"

static size_t mallocs(const gust_arena *a)
{
    gust_arena_stats st;
    gust_arena_get_stats(a, &st);
    return st.mallocs;
}

static void test_init_allocates_nothing(void **state)
{
    (void)state;
    gust_arena a;
    gust_arena_init(&a, 0);
    assert_int_equal(mallocs(&a), 0);
    gust_arena_close(&a);
    gust_arena_close(&a); /* twice is harmless */
}

static void test_alignment_and_contents(void **state)
{
    (void)state;
    gust_arena a;
    gust_arena_init(&a, 256);
    char *s = gust_arena_strdup(&a, "x");
    for (size_t size = 1; size < 300; size += 7) {
        unsigned char *p = gust_arena_alloc(&a, size);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % alignof(max_align_t), 0);
        memset(p, 0xAB, size);
    }
    assert_string_equal(s, "x"); /* earlier allocations are untouched */
    gust_arena_close(&a);
}

static void test_overflow_returns_null(void **state)
{
    (void)state;
    gust_arena a;
    gust_arena_init(&a, 0);
    assert_null(gust_arena_alloc(&a, SIZE_MAX));
    assert_null(gust_arena_alloc(&a, SIZE_MAX - 8));
    assert_null(gust_arena_calloc(&a, SIZE_MAX / 2, 4));
    assert_null(gust_arena_realloc(&a, NULL, 0, SIZE_MAX));
    /* Still usable afterwards. */
    int *p = gust_arena_calloc(&a, 10, sizeof(int));
    assert_non_null(p);
    for (int i = 0; i < 10; i++)
        assert_int_equal(p[i], 0);
    gust_arena_close(&a);
}

static void test_strings(void **state)
{
    (void)state;
    gust_arena a;
    gust_arena_init(&a, 64);
    assert_string_equal(gust_arena_strndup(&a, "hello world", 5), "hello");
    assert_string_equal(gust_arena_strndup(&a, "hi\0there", 8), "hi");
    assert_memory_equal(gust_arena_memdup(&a, "a\0b", 3), "a\0b", 3);
    char *s = gust_arena_sprintf(&a, "%s-%d-%05.1f", "req", 42, 3.14159);
    assert_string_equal(s, "req-42-003.1");
    /* Longer than the block: goes to a new one. */
    char big[500];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char *t = gust_arena_sprintf(&a, "<%s>", big);
    assert_int_equal(strlen(t), 501);
    assert_int_equal(t[0], '<');
    assert_int_equal(t[500], '>');
    assert_string_equal(s, "req-42-003.1");
    gust_arena_close(&a);
}

static void test_large_allocation_keeps_block_usable(void **state)
{
    (void)state;
    gust_arena a;
    gust_arena_init(&a, 4096);
    char *small = gust_arena_alloc(&a, 16);
    size_t before = mallocs(&a);
    char *large = gust_arena_alloc(&a, 100000);
    assert_non_null(large);
    memset(large, 1, 100000);
    assert_int_equal(mallocs(&a), before + 1);
    /* The next small allocation still comes from the first block. */
    char *small2 = gust_arena_alloc(&a, 16);
    assert_int_equal(mallocs(&a), before + 1);
    assert_true(small2 > small && small2 < small + 4096);
    gust_arena_close(&a);
}

static void test_realloc_grows_in_place(void **state)
{
    (void)state;
    gust_arena a;
    gust_arena_init(&a, 4096);
    int *v = gust_arena_alloc(&a, 4 * sizeof(int));
    for (int i = 0; i < 4; i++)
        v[i] = i;
    int *w = gust_arena_realloc(&a, v, 4 * sizeof(int), 64 * sizeof(int));
    assert_ptr_equal(w, v);
    /* Not the last allocation any more: moved, contents copied. */
    (void)gust_arena_alloc(&a, 8);
    int *x = gust_arena_realloc(&a, w, 64 * sizeof(int), 128 * sizeof(int));
    assert_ptr_not_equal(x, w);
    for (int i = 0; i < 4; i++)
        assert_int_equal(x[i], i);
    gust_arena_close(&a);
}

/* The keep-alive case: after reset, the same work allocates no block. */
static void do_request(gust_arena *a)
{
    for (int i = 0; i < 200; i++) {
        char *p = gust_arena_alloc(a, 64 + (size_t)i % 32);
        assert_non_null(p);
        memset(p, i, 64);
    }
    assert_non_null(gust_arena_sprintf(a, "%0500d", 1));
}

static void test_reset_reuses_memory(void **state)
{
    (void)state;
    gust_arena a;
    gust_arena_init(&a, 1024);
    do_request(&a);
    gust_arena_reset(&a);
    do_request(&a); /* may still grow once: kept block is the largest */
    gust_arena_reset(&a);
    size_t m = mallocs(&a);
    gust_arena_stats st;
    gust_arena_get_stats(&a, &st);
    assert_int_equal(st.blocks, 1);
    for (int round = 0; round < 10; round++) {
        do_request(&a);
        gust_arena_reset(&a);
    }
    assert_int_equal(mallocs(&a), m); /* no malloc on the steady state */
    gust_arena_close(&a);
    gust_arena_get_stats(&a, &st);
    assert_int_equal(st.mallocs, st.frees);
    assert_int_equal(st.blocks, 0);
}

static void test_reset_first_block_same_address(void **state)
{
    (void)state;
    gust_arena a;
    gust_arena_init(&a, 4096);
    char *p1 = gust_arena_alloc(&a, 100);
    gust_arena_reset(&a);
    char *p2 = gust_arena_alloc(&a, 100);
    assert_ptr_equal(p1, p2);
    assert_int_equal(mallocs(&a), 1);
    gust_arena_close(&a);
}

static void test_reset_keep_bound(void **state)
{
    (void)state;
    gust_arena a;
    gust_arena_init(&a, 4096);
    gust_arena_set_keep(&a, 8192);
    (void)gust_arena_alloc(&a, 10);
    (void)gust_arena_alloc(&a, 500000); /* own block, too big to keep */
    gust_arena_reset(&a);
    gust_arena_stats st;
    gust_arena_get_stats(&a, &st);
    assert_int_equal(st.blocks, 1);
    assert_true(st.block_bytes <= 8192);
    gust_arena_set_keep(&a, 0);
    gust_arena_reset(&a);
    gust_arena_get_stats(&a, &st);
    assert_int_equal(st.blocks, 0);
    gust_arena_close(&a);
}

static char order[8];
static size_t norder;

static void record(void *p)
{
    order[norder++] = *(char *)p;
}

static void test_cleanups_run_lifo_on_reset_and_close(void **state)
{
    (void)state;
    static char a1 = 'a', b1 = 'b', c1 = 'c';
    gust_arena a;
    gust_arena_init(&a, 0);
    norder = 0;
    assert_int_equal(gust_arena_add_cleanup(&a, record, &a1), 0);
    assert_int_equal(gust_arena_add_cleanup(&a, record, &b1), 0);
    gust_arena_reset(&a);
    assert_int_equal(norder, 2);
    assert_memory_equal(order, "ba", 2);
    gust_arena_reset(&a); /* nothing left to run */
    assert_int_equal(norder, 2);
    assert_int_equal(gust_arena_add_cleanup(&a, record, &c1), 0);
    gust_arena_close(&a);
    assert_int_equal(norder, 3);
    assert_int_equal(order[2], 'c');
}

static void free_it(void *p)
{
    free(p);
}

static void test_cleanup_frees_outside_memory(void **state)
{
    (void)state;
    gust_arena a;
    gust_arena_init(&a, 0);
    /* Leak detection fails the test if the cleanup does not run. */
    assert_int_equal(gust_arena_add_cleanup(&a, free_it, malloc(100)), 0);
    gust_arena_close(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_allocates_nothing),
        cmocka_unit_test(test_alignment_and_contents),
        cmocka_unit_test(test_overflow_returns_null),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_large_allocation_keeps_block_usable),
        cmocka_unit_test(test_realloc_grows_in_place),
        cmocka_unit_test(test_reset_reuses_memory),
        cmocka_unit_test(test_reset_first_block_same_address),
        cmocka_unit_test(test_reset_keep_bound),
        cmocka_unit_test(test_cleanups_run_lifo_on_reset_and_close),
        cmocka_unit_test(test_cleanup_frees_outside_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
