#include "core/threadpool.h"

#include "core/error.h"

#include <pthread.h>
#include <stdlib.h>

/* Workers sleep on a condition variable between parallel_for calls. Each
 * call publishes one job (fn, ctx, n) under a new generation number; worker
 * i runs chunk i+1 and the caller runs chunk 0. */
struct ww_threadpool {
    int threads; /* including the caller */
    pthread_t *workers;
    pthread_mutex_t mutex;
    pthread_cond_t work_ready;
    pthread_cond_t work_done;
    unsigned long generation;
    int pending; /* workers still running the current job */
    int stopping;
    ww_range_fn fn;
    void *ctx;
    int n;
};

typedef struct worker_arg {
    ww_threadpool *pool;
    int index; /* 1..threads-1 */
} worker_arg;

static void chunk_bounds(int n, int parts, int index, int *begin, int *end)
{
    int base = n / parts, extra = n % parts;
    *begin = index * base + (index < extra ? index : extra);
    *end = *begin + base + (index < extra ? 1 : 0);
}

static void *worker_main(void *p)
{
    worker_arg *arg = p;
    ww_threadpool *pool = arg->pool;
    int index = arg->index;
    free(arg);
    unsigned long seen = 0;
    pthread_mutex_lock(&pool->mutex);
    for (;;) {
        while (!pool->stopping && pool->generation == seen)
            pthread_cond_wait(&pool->work_ready, &pool->mutex);
        if (pool->stopping) break;
        seen = pool->generation;
        ww_range_fn fn = pool->fn;
        void *ctx = pool->ctx;
        int n = pool->n;
        pthread_mutex_unlock(&pool->mutex);
        int begin, end;
        chunk_bounds(n, pool->threads, index, &begin, &end);
        if (begin < end) fn(ctx, begin, end);
        pthread_mutex_lock(&pool->mutex);
        if (--pool->pending == 0) pthread_cond_signal(&pool->work_done);
    }
    pthread_mutex_unlock(&pool->mutex);
    return NULL;
}

wanwu_status ww_threadpool_create(int threads, ww_threadpool **out, wanwu_error *err)
{
    *out = NULL;
    if (threads <= 1) return WANWU_OK;
    if (threads > 256)
        return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "%d threads requested; at most 256",
                            threads);
    ww_threadpool *pool = calloc(1, sizeof *pool);
    if (!pool) return ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory for thread pool");
    pool->workers = calloc((size_t)threads, sizeof *pool->workers);
    if (!pool->workers) {
        free(pool);
        return ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory for thread pool");
    }
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->work_ready, NULL);
    pthread_cond_init(&pool->work_done, NULL);
    pool->threads = 1;
    for (int i = 1; i < threads; i++) {
        worker_arg *arg = malloc(sizeof *arg);
        if (!arg) break;
        arg->pool = pool;
        arg->index = i;
        if (pthread_create(&pool->workers[i], NULL, worker_main, arg) != 0) {
            free(arg);
            break;
        }
        pool->threads++;
    }
    if (pool->threads != threads) {
        int started = pool->threads;
        ww_threadpool_free(pool);
        return ww_error_set(err, WANWU_ERR_NO_MEMORY, "could start only %d of %d worker threads",
                            started - 1, threads - 1);
    }
    *out = pool;
    return WANWU_OK;
}

void ww_threadpool_free(ww_threadpool *pool)
{
    if (!pool) return;
    pthread_mutex_lock(&pool->mutex);
    pool->stopping = 1;
    pthread_cond_broadcast(&pool->work_ready);
    pthread_mutex_unlock(&pool->mutex);
    for (int i = 1; i < pool->threads; i++)
        pthread_join(pool->workers[i], NULL);
    pthread_mutex_destroy(&pool->mutex);
    pthread_cond_destroy(&pool->work_ready);
    pthread_cond_destroy(&pool->work_done);
    free(pool->workers);
    free(pool);
}

int ww_threadpool_size(const ww_threadpool *pool)
{
    return pool ? pool->threads : 1;
}

void ww_parallel_for(ww_threadpool *pool, int n, ww_range_fn fn, void *ctx)
{
    if (n <= 0) return;
    if (!pool || n == 1) {
        fn(ctx, 0, n);
        return;
    }
    pthread_mutex_lock(&pool->mutex);
    pool->fn = fn;
    pool->ctx = ctx;
    pool->n = n;
    pool->pending = pool->threads - 1;
    pool->generation++;
    pthread_cond_broadcast(&pool->work_ready);
    pthread_mutex_unlock(&pool->mutex);

    int begin, end;
    chunk_bounds(n, pool->threads, 0, &begin, &end);
    if (begin < end) fn(ctx, begin, end);

    pthread_mutex_lock(&pool->mutex);
    while (pool->pending > 0)
        pthread_cond_wait(&pool->work_done, &pool->mutex);
    pthread_mutex_unlock(&pool->mutex);
}
