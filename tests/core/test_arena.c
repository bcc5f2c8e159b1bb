/* The weight arena hands out aligned, disjoint, writable blocks of any
 * size, accounts for what it made resident, and frees them together. */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include "core/arena.h"

#include <stdlib.h>
#include <string.h>

#define HUGE_PAGE ((size_t)2 << 20)

typedef struct block {
    unsigned char *p;
    size_t n;
    unsigned char tag;
} block;

/* Blocks of mixed sizes (including 0, 1, odd sizes, several MiB and one
 * larger than a chunk's reservation) are 64-byte aligned and hold their
 * own contents: each is filled with its tag, then all are checked. */
static void test_blocks_aligned_and_disjoint(void **state)
{
    (void)state;
    ww_arena *a = ww_arena_create();
    assert_non_null(a);
    assert_int_equal(ww_arena_resident(a), 0);
    size_t sizes[] = {0, 1, 63, 64, 65, 4096, 100000, 3 * HUGE_PAGE + 12345, 7, 300 << 20, 640};
    enum { N = sizeof sizes / sizeof sizes[0] };
    block blocks[N];
    size_t total = 0;
    for (int i = 0; i < N; i++) {
        blocks[i].p = ww_arena_alloc(a, sizes[i]);
        blocks[i].n = sizes[i];
        blocks[i].tag = (unsigned char)(i + 1);
        assert_non_null(blocks[i].p);
        assert_int_equal((uintptr_t)blocks[i].p % 64, 0);
        /* every byte of the small ones, a sample of the large ones */
        if (sizes[i] <= HUGE_PAGE)
            memset(blocks[i].p, blocks[i].tag, sizes[i]);
        else
            for (size_t j = 0; j < sizes[i]; j += sizes[i] / 97 + 1)
                blocks[i].p[j] = blocks[i].tag;
        if (sizes[i]) blocks[i].p[sizes[i] - 1] = blocks[i].tag;
        total += sizes[i];
    }
    for (int i = 0; i < N; i++)
        for (size_t j = 0; j < blocks[i].n; j += blocks[i].n / 97 + 1)
            assert_int_equal(blocks[i].p[j], blocks[i].tag);
    for (int i = 0; i < N; i++) /* last byte too, the one a neighbour would overwrite */
        if (blocks[i].n) assert_int_equal(blocks[i].p[blocks[i].n - 1], blocks[i].tag);
    size_t resident = ww_arena_resident(a);
    assert_true(resident >= total);
    assert_int_equal(resident % HUGE_PAGE, 0);
    /* Faulted in whole huge pages as used: at most one partly used huge
     * page per chunk (two here: the oversized block has its own). */
    assert_true(resident <= total + N * 64 + 2 * HUGE_PAGE);
    ww_arena_free(a);
}

/* Many small blocks share huge pages instead of each taking its own. */
static void test_small_blocks_pack_tightly(void **state)
{
    (void)state;
    ww_arena *a = ww_arena_create();
    assert_non_null(a);
    unsigned char *prev = NULL;
    for (int i = 0; i < 1000; i++) {
        unsigned char *p = ww_arena_alloc(a, 1000);
        assert_non_null(p);
        if (prev) assert_true(p >= prev + 1000);
        p[0] = p[999] = (unsigned char)i;
        prev = p;
    }
    assert_int_equal(ww_arena_resident(a), HUGE_PAGE);
    ww_arena_free(a);
}

static void test_null_and_impossible(void **state)
{
    (void)state;
    assert_null(ww_arena_alloc(NULL, 16));
    assert_int_equal(ww_arena_resident(NULL), 0);
    ww_arena_free(NULL);
    ww_arena *a = ww_arena_create();
    assert_non_null(a);
    assert_null(ww_arena_alloc(a, SIZE_MAX));
    assert_null(ww_arena_alloc(a, SIZE_MAX - 100));
    assert_int_equal(ww_arena_resident(a), 0);
    ww_arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocks_aligned_and_disjoint),
        cmocka_unit_test(test_small_blocks_pack_tightly),
        cmocka_unit_test(test_null_and_impossible),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
