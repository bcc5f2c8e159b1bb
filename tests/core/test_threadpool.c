/* The thread pool runs every iteration exactly once, for any n and size. */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include "core/threadpool.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

typedef struct counts {
    atomic_int *hits;
} counts;

static void mark(void *ctx, int begin, int end)
{
    counts *c = ctx;
    for (int i = begin; i < end; i++)
        atomic_fetch_add(&c->hits[i], 1);
}

static void test_every_iteration_once(void **state)
{
    (void)state;
    for (int threads = 1; threads <= 5; threads++) {
        ww_threadpool *pool = NULL;
        wanwu_error err;
        assert_int_equal(ww_threadpool_create(threads, &pool, &err), WANWU_OK);
        assert_int_equal(ww_threadpool_size(pool), threads);
        for (int n = 0; n < 40; n++) {
            atomic_int hits[40];
            for (int i = 0; i < 40; i++)
                atomic_init(&hits[i], 0);
            counts c = {hits};
            for (int rep = 0; rep < 3; rep++)
                ww_parallel_for(pool, n, mark, &c);
            for (int i = 0; i < 40; i++)
                assert_int_equal(atomic_load(&hits[i]), i < n ? 3 : 0);
        }
        ww_threadpool_free(pool);
    }
}

/* Large n with uneven per-index cost: dynamic chunks must still cover each
 * index exactly once, over many back-to-back jobs. */
static void test_many_sizes_back_to_back(void **state)
{
    (void)state;
    enum { MAX_N = 1000 };
    static atomic_int hits[MAX_N];
    const int sizes[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 63, 64, 65, 127, 255, 999, 1000};
    for (int threads = 2; threads <= 4; threads++) {
        ww_threadpool *pool = NULL;
        wanwu_error err;
        assert_int_equal(ww_threadpool_create(threads, &pool, &err), WANWU_OK);
        for (int round = 0; round < 50; round++) {
            for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
                int n = sizes[s];
                for (int i = 0; i < MAX_N; i++)
                    atomic_init(&hits[i], 0);
                counts c = {hits};
                ww_parallel_for(pool, n, mark, &c);
                for (int i = 0; i < MAX_N; i++)
                    assert_int_equal(atomic_load(&hits[i]), i < n ? 1 : 0);
            }
        }
        ww_threadpool_free(pool);
    }
}

typedef struct nested {
    ww_threadpool *pool;
    atomic_int *hits; /* inner x outer */
    int inner;
} nested;

static void nested_inner(void *p, int begin, int end)
{
    counts *c = p;
    for (int i = begin; i < end; i++)
        atomic_fetch_add(&c->hits[i], 1);
}

static void nested_outer(void *p, int begin, int end)
{
    nested *ctx = p;
    for (int o = begin; o < end; o++) {
        counts c = {ctx->hits + (size_t)o * ctx->inner};
        ww_parallel_for(ctx->pool, ctx->inner, nested_inner, &c);
    }
}

/* parallel_for called from inside a job runs (serially) instead of
 * deadlocking, and still visits everything once. */
static void test_nested_calls(void **state)
{
    (void)state;
    enum { OUTER = 13, INNER = 11 };
    atomic_int hits[OUTER * INNER];
    for (int threads = 1; threads <= 3; threads++) {
        ww_threadpool *pool = NULL;
        wanwu_error err;
        assert_int_equal(ww_threadpool_create(threads, &pool, &err), WANWU_OK);
        for (int rep = 0; rep < 20; rep++) {
            for (int i = 0; i < OUTER * INNER; i++)
                atomic_init(&hits[i], 0);
            nested ctx = {pool, hits, INNER};
            ww_parallel_for(pool, OUTER, nested_outer, &ctx);
            for (int i = 0; i < OUTER * INNER; i++)
                assert_int_equal(atomic_load(&hits[i]), 1);
        }
        ww_threadpool_free(pool);
    }
}

/* Workers that have gone to sleep (idle longer than the spin budget) are
 * woken for the next job, and creating/freeing many pools leaks nothing
 * (ASan build) and never hangs. */
static void test_create_free_and_sleep(void **state)
{
    (void)state;
    atomic_int hits[64];
    for (int iter = 0; iter < 40; iter++) {
        int threads = 2 + iter % 3;
        ww_threadpool *pool = NULL;
        wanwu_error err;
        assert_int_equal(ww_threadpool_create(threads, &pool, &err), WANWU_OK);
        if (iter % 4 == 0) {
            struct timespec pause = {0, 2000000}; /* longer than the spin phase */
            nanosleep(&pause, NULL);
        }
        if (iter % 2 == 0) { /* odd iterations free a pool that never ran a job */
            for (int i = 0; i < 64; i++)
                atomic_init(&hits[i], 0);
            counts c = {hits};
            ww_parallel_for(pool, 64, mark, &c);
            for (int i = 0; i < 64; i++)
                assert_int_equal(atomic_load(&hits[i]), 1);
        }
        ww_threadpool_free(pool);
    }
}

/* A null pool and a one-thread request both run serially. */
static void test_serial_pool(void **state)
{
    (void)state;
    ww_threadpool *pool = (ww_threadpool *)1;
    wanwu_error err;
    assert_int_equal(ww_threadpool_create(1, &pool, &err), WANWU_OK);
    assert_null(pool);
    assert_int_equal(ww_threadpool_size(NULL), 1);
    atomic_int hits[5];
    for (int i = 0; i < 5; i++)
        atomic_init(&hits[i], 0);
    counts c = {hits};
    ww_parallel_for(NULL, 5, mark, &c);
    for (int i = 0; i < 5; i++)
        assert_int_equal(atomic_load(&hits[i]), 1);
    ww_threadpool_free(NULL);
}

static void test_rejects_absurd_size(void **state)
{
    (void)state;
    ww_threadpool *pool = NULL;
    wanwu_error err;
    assert_int_equal(ww_threadpool_create(100000, &pool, &err), WANWU_ERR_INVALID_ARGUMENT);
    assert_null(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_iteration_once), cmocka_unit_test(test_many_sizes_back_to_back),
        cmocka_unit_test(test_nested_calls),         cmocka_unit_test(test_create_free_and_sleep),
        cmocka_unit_test(test_serial_pool),          cmocka_unit_test(test_rejects_absurd_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
