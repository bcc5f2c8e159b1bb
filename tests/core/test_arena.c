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

/* An arena's log and contents, replayed: the same calls get the same
 * offsets into the replayed bytes (so the same contents); any other size,
 * or one call too many, spoils the replay for good. */
static void test_replay(void **state)
{
    (void)state;
    ww_arena *a = ww_arena_create();
    assert_non_null(a);
    assert_false(ww_arena_prefilled(a));
    size_t sizes[] = {1, 64, 65, 4096, 12345, 0};
    enum { N = sizeof sizes / sizeof sizes[0] };
    unsigned char *blocks[N];
    for (int i = 0; i < N; i++) {
        blocks[i] = ww_arena_alloc(a, sizes[i]);
        assert_non_null(blocks[i]);
        memset(blocks[i], 'a' + i, sizes[i]);
    }
    size_t count = 0, bytes = 0;
    const unsigned long long *log = ww_arena_log(a, &count);
    const unsigned char *contents = ww_arena_contents(a, &bytes);
    assert_non_null(log);
    assert_int_equal(count, N);
    assert_ptr_equal(contents, blocks[0]);
    size_t sum = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(log[i] % 64, 0);
        assert_true(log[i] >= sizes[i] && log[i] < sizes[i] + 64 + (sizes[i] == 0) * 64);
        assert_ptr_equal(blocks[i], contents + sum);
        sum += log[i];
    }
    assert_int_equal(bytes, sum);

    unsigned char *copy = aligned_alloc(64, bytes);
    assert_non_null(copy);
    memcpy(copy, contents, bytes);
    /* the right calls: each block at its offset, holding what was written */
    ww_arena *r = ww_arena_create_replay(NULL, 0, copy, bytes, log, count);
    assert_non_null(r);
    assert_true(ww_arena_prefilled(r));
    size_t replay_bytes = 1;
    assert_null(ww_arena_contents(r, &replay_bytes)); /* nothing to store again */
    assert_int_equal(replay_bytes, 0);
    for (int i = 0; i < N; i++) {
        assert_false(ww_arena_replay_complete(r));
        unsigned char *p = ww_arena_alloc(r, sizes[i]);
        assert_ptr_equal(p, copy + (blocks[i] - blocks[0]));
        for (size_t j = 0; j < sizes[i]; j++)
            assert_int_equal(p[j], 'a' + i);
    }
    assert_true(ww_arena_replay_complete(r));
    size_t span_bytes = 0, room = 1;
    assert_ptr_equal(ww_arena_span(r, &span_bytes, &room), copy); /* used up */
    assert_int_equal(span_bytes, bytes);
    assert_int_equal(room, 0);
    assert_null(ww_arena_alloc(r, 1)); /* one too many */
    assert_false(ww_arena_replay_complete(r));
    ww_arena_free(r);

    /* a different size (even one rounding to another 64) spoils it */
    r = ww_arena_create_replay(NULL, 0, copy, bytes, log, count);
    assert_non_null(ww_arena_alloc(r, sizes[0]));
    assert_null(ww_arena_alloc(r, sizes[1] + 1));
    assert_null(ww_arena_alloc(r, sizes[2])); /* the right one, too late */
    assert_false(ww_arena_replay_complete(r));
    ww_arena_free(r);

    /* stopping short is not complete */
    r = ww_arena_create_replay(NULL, 0, copy, bytes, log, count);
    for (int i = 0; i < N - 1; i++)
        assert_non_null(ww_arena_alloc(r, sizes[i]));
    assert_false(ww_arena_replay_complete(r));
    ww_arena_free(r);
    free(copy);

    /* after the replays (the log may move): the block later allocations come from, and its free
     * room */
    size_t span_bytes0 = 0, room0 = 0;
    const unsigned char *span0 = ww_arena_span(a, &span_bytes0, &room0);
    assert_ptr_equal(span0, blocks[0]);
    assert_int_equal(span_bytes0 - room0, bytes);
    unsigned char *next = ww_arena_alloc(a, 100);
    assert_ptr_equal(next, span0 + bytes);
    size_t span_bytes1 = 0, room1 = 0;
    assert_ptr_equal(ww_arena_span(a, &span_bytes1, &room1), span0);
    assert_int_equal(room1, room0 - 128);
    assert_non_null(ww_arena_contents(a, &span_bytes1)); /* still one block */
    assert_int_equal(span_bytes1, bytes + 128);

    ww_arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocks_aligned_and_disjoint),
        cmocka_unit_test(test_small_blocks_pack_tightly),
        cmocka_unit_test(test_null_and_impossible),
        cmocka_unit_test(test_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
