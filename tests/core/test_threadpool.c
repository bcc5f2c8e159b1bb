/* The thread pool runs every iteration exactly once, for any n and size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "core/threadpool.h"

typedef struct counts {
    atomic_int *hits;
} counts;

static void mark(void *ctx, int begin, int end)
{
    counts *c = ctx;
    for (int i = begin; i < end; i++) atomic_fetch_add(&c->hits[i], 1);
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
            for (int i = 0; i < 40; i++) atomic_init(&hits[i], 0);
            counts c = {hits};
            for (int rep = 0; rep < 3; rep++) ww_parallel_for(pool, n, mark, &c);
            for (int i = 0; i < 40; i++) assert_int_equal(atomic_load(&hits[i]), i < n ? 3 : 0);
        }
        ww_threadpool_free(pool);
    }
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
        cmocka_unit_test(test_every_iteration_once),
        cmocka_unit_test(test_rejects_absurd_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
