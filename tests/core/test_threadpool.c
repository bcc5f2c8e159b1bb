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

#include <pthread.h>
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

/* A worker stuck inside its first chunk does not make the caller wait for
 * the rest of that worker's share: the caller takes it over. The stuck
 * chunk waits for every other index to finish (bounded, so a pool that
 * cannot steal fails the test instead of hanging it). */
typedef struct stuck_worker {
    pthread_t caller;
    int n;
    atomic_int finished;       /* indices done */
    atomic_int worker_started; /* a worker is inside its first chunk */
    atomic_int worker_stuck_once;
    atomic_int caller_waited;
    atomic_int timed_out;
    atomic_int *hits;
} stuck_worker;

static int wait_until(atomic_int *value, int target, int max_ms)
{
    for (int waited = 0; atomic_load(value) < target; waited++) {
        if (waited >= max_ms * 10) return 0;
        struct timespec pause = {0, 100000}; /* 0.1 ms */
        nanosleep(&pause, NULL);
    }
    return 1;
}

static void stuck_worker_range(void *p, int begin, int end)
{
    stuck_worker *s = p;
    int on_caller = pthread_equal(pthread_self(), s->caller);
    if (!on_caller && atomic_exchange(&s->worker_stuck_once, 1) == 0) {
        atomic_store(&s->worker_started, 1);
        /* everything but this chunk must get done by someone else */
        if (!wait_until(&s->finished, s->n - (end - begin), 10000)) atomic_store(&s->timed_out, 1);
    } else if (on_caller && atomic_exchange(&s->caller_waited, 1) == 0) {
        /* give a worker the chance to get stuck before the caller runs
         * out of its own chunks (if none ever starts, there is nothing to
         * check, and the caller simply runs everything) */
        wait_until(&s->worker_started, 1, 200);
    }
    for (int i = begin; i < end; i++)
        atomic_fetch_add(&s->hits[i], 1);
    atomic_fetch_add(&s->finished, end - begin);
}

static void test_stuck_worker_share_taken_over(void **state)
{
    (void)state;
    enum { N = 64 };
    atomic_int hits[N];
    for (int threads = 2; threads <= 3; threads++) {
        ww_threadpool *pool = NULL;
        wanwu_error err;
        assert_int_equal(ww_threadpool_create(threads, &pool, &err), WANWU_OK);
        int stuck_seen = 0;
        for (int rep = 0; rep < 5; rep++) {
            for (int i = 0; i < N; i++)
                atomic_init(&hits[i], 0);
            stuck_worker s = {.caller = pthread_self(), .n = N, .hits = hits};
            atomic_init(&s.finished, 0);
            atomic_init(&s.worker_started, 0);
            atomic_init(&s.worker_stuck_once, 0);
            atomic_init(&s.caller_waited, 0);
            atomic_init(&s.timed_out, 0);
            ww_parallel_for(pool, N, stuck_worker_range, &s);
            if (atomic_load(&s.worker_started)) stuck_seen++;
            assert_int_equal(atomic_load(&s.timed_out), 0);
            for (int i = 0; i < N; i++)
                assert_int_equal(atomic_load(&hits[i]), 1);
        }
        /* the case under test did happen (workers wake well within 200 ms) */
        assert_true(stuck_seen > 0);
        ww_threadpool_free(pool);
    }
}

/* Two threads calling parallel_for on one pool at once: one of them runs
 * serially, neither deadlocks, and both visit everything once. */
typedef struct concurrent_caller {
    ww_threadpool *pool;
    atomic_int hits[300];
    int ok;
} concurrent_caller;

static void *concurrent_caller_main(void *p)
{
    concurrent_caller *c = p;
    c->ok = 1;
    for (int rep = 0; rep < 200; rep++) {
        int n = 1 + (rep * 37) % 300;
        for (int i = 0; i < 300; i++)
            atomic_store(&c->hits[i], 0);
        counts cnt = {c->hits};
        ww_parallel_for(c->pool, n, mark, &cnt);
        for (int i = 0; i < 300; i++)
            if (atomic_load(&c->hits[i]) != (i < n ? 1 : 0)) c->ok = 0;
    }
    return NULL;
}

static void test_concurrent_callers(void **state)
{
    (void)state;
    ww_threadpool *pool = NULL;
    wanwu_error err;
    assert_int_equal(ww_threadpool_create(3, &pool, &err), WANWU_OK);
    static concurrent_caller callers[2];
    pthread_t threads[2];
    for (int t = 0; t < 2; t++) {
        callers[t].pool = pool;
        assert_int_equal(pthread_create(&threads[t], NULL, concurrent_caller_main, &callers[t]), 0);
    }
    for (int t = 0; t < 2; t++) {
        pthread_join(threads[t], NULL);
        assert_true(callers[t].ok);
    }
    ww_threadpool_free(pool);
}

/* The ranges fn is called with depend only on n and the pool size, never
 * on which thread claimed what, so a kernel whose result depends on its
 * range boundaries still gives the same result every time. */
typedef struct range_log {
    atomic_int count;
    int begin[64], end[64];
} range_log;

static void log_range(void *p, int begin, int end)
{
    range_log *log = p;
    int slot = atomic_fetch_add(&log->count, 1);
    if (slot < 64) {
        log->begin[slot] = begin;
        log->end[slot] = end;
    }
}

/* Sorts the logged ranges by begin and checks they tile [0, n). */
static void sort_and_check_tiling(range_log *log, int n)
{
    int count = atomic_load(&log->count);
    assert_true(count <= 64);
    for (int i = 1; i < count; i++)
        for (int j = i; j > 0 && log->begin[j - 1] > log->begin[j]; j--) {
            int b = log->begin[j], e = log->end[j];
            log->begin[j] = log->begin[j - 1];
            log->end[j] = log->end[j - 1];
            log->begin[j - 1] = b;
            log->end[j - 1] = e;
        }
    int covered = 0;
    for (int i = 0; i < count; i++) {
        assert_int_equal(log->begin[i], covered);
        assert_true(log->end[i] > log->begin[i]);
        covered = log->end[i];
    }
    assert_int_equal(covered, n);
}

static void test_ranges_independent_of_threads(void **state)
{
    (void)state;
    const int sizes[] = {2, 3, 7, 8, 9, 16, 33, 1000, 100000};
    for (int threads = 2; threads <= 4; threads++) {
        ww_threadpool *pool = NULL;
        wanwu_error err;
        assert_int_equal(ww_threadpool_create(threads, &pool, &err), WANWU_OK);
        for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
            range_log first;
            atomic_init(&first.count, 0);
            ww_parallel_for(pool, sizes[z], log_range, &first);
            sort_and_check_tiling(&first, sizes[z]);
            for (int rep = 0; rep < 30; rep++) {
                range_log again;
                atomic_init(&again.count, 0);
                ww_parallel_for(pool, sizes[z], log_range, &again);
                sort_and_check_tiling(&again, sizes[z]);
                assert_int_equal(atomic_load(&again.count), atomic_load(&first.count));
                for (int i = 0; i < atomic_load(&first.count); i++) {
                    assert_int_equal(again.begin[i], first.begin[i]);
                    assert_int_equal(again.end[i], first.end[i]);
                }
            }
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

/* ww_shares, serially: a slot claims its own share front to back, then
 * the rest of the next shares in order; share_end names the share an item
 * came from; nothing is claimed twice; more slots than items, no items. */
static void test_shares_order(void **state)
{
    (void)state;
    ww_shares q;
    ww_shares_init(&q, 10, 3); /* shares [0, 3), [3, 6), [6, 10) */
    int cursor = 0, end = -1;
    assert_int_equal(ww_shares_claim(&q, 1, &cursor, &end), 3);
    assert_int_equal(end, 6);
    assert_int_equal(ww_shares_claim(&q, 1, &cursor, &end), 4);
    assert_int_equal(ww_shares_claim(&q, 1, &cursor, &end), 5);
    assert_int_equal(ww_shares_claim(&q, 1, &cursor, &end), 6); /* then share 2 */
    assert_int_equal(end, 10);
    int other = 0; /* slot 2 takes what slot 1 left of its own share */
    assert_int_equal(ww_shares_claim(&q, 2, &other, NULL), 7);
    int seen[10] = {0};
    seen[3] = seen[4] = seen[5] = seen[6] = seen[7] = 1;
    int item;
    while ((item = ww_shares_claim(&q, 1, &cursor, &end)) >= 0) {
        assert_true(item >= 0 && item < 10);
        assert_int_equal(seen[item], 0);
        seen[item] = 1;
        assert_true(item < end && end == (item < 3 ? 3 : item < 6 ? 6 : 10));
    }
    for (int i = 0; i < 10; i++)
        assert_int_equal(seen[i], 1);
    assert_int_equal(ww_shares_claim(&q, 0, &other, NULL), -1);

    ww_shares_init(&q, 2, 5); /* three empty shares */
    int total = 0;
    for (int slot = 0; slot < 5; slot++) {
        int c = 0;
        while (ww_shares_claim(&q, slot, &c, NULL) >= 0)
            total++;
    }
    assert_int_equal(total, 2);
    ww_shares_init(&q, 0, 1);
    cursor = 0;
    assert_int_equal(ww_shares_claim(&q, 0, &cursor, NULL), -1);
}

typedef struct shares_job {
    ww_shares q;
    atomic_int *hits;
} shares_job;

static void claim_all(void *ctx, int begin, int end)
{
    shares_job *j = ctx;
    for (int slot = begin; slot < end; slot++) {
        int cursor = 0, item;
        while ((item = ww_shares_claim(&j->q, slot, &cursor, NULL)) >= 0)
            atomic_fetch_add(&j->hits[item], 1);
    }
}

/* Concurrently, through the pool (one iteration per slot): every item is
 * claimed exactly once whichever thread gets there first. */
static void test_shares_concurrent(void **state)
{
    (void)state;
    enum { ITEMS = 997 };
    static atomic_int hits[ITEMS];
    for (int threads = 1; threads <= 4; threads++) {
        ww_threadpool *pool = NULL;
        wanwu_error err;
        assert_int_equal(ww_threadpool_create(threads, &pool, &err), WANWU_OK);
        for (int rep = 0; rep < 50; rep++) {
            int items = rep * 37 % ITEMS + 1;
            for (int i = 0; i < ITEMS; i++)
                atomic_init(&hits[i], 0);
            shares_job j = {.hits = hits};
            ww_shares_init(&j.q, items, threads);
            ww_parallel_for(pool, threads, claim_all, &j);
            for (int i = 0; i < ITEMS; i++)
                assert_int_equal(atomic_load(&hits[i]), i < items ? 1 : 0);
        }
        ww_threadpool_free(pool);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_iteration_once),
        cmocka_unit_test(test_many_sizes_back_to_back),
        cmocka_unit_test(test_nested_calls),
        cmocka_unit_test(test_create_free_and_sleep),
        cmocka_unit_test(test_stuck_worker_share_taken_over),
        cmocka_unit_test(test_concurrent_callers),
        cmocka_unit_test(test_ranges_independent_of_threads),
        cmocka_unit_test(test_serial_pool),
        cmocka_unit_test(test_rejects_absurd_size),
        cmocka_unit_test(test_shares_order),
        cmocka_unit_test(test_shares_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
