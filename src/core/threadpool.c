#include "core/threadpool.h"

#include "core/error.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define WW_CPU_RELAX() _mm_pause()
#else
#define WW_CPU_RELAX() ((void)0)
#endif

/* One inference calls parallel_for hundreds of times, often on ops that
 * take a few microseconds, so waking sleeping workers through the kernel
 * on every call costs more than the ops themselves. Instead:
 *
 * - A job is published through one 64-bit atomic word: the job's
 *   generation, its chunk count and the next unclaimed chunk. Threads
 *   (workers and the caller alike) claim chunks with a CAS that only
 *   succeeds while the generation is unchanged, so a late worker can never
 *   run a chunk of a finished job, and an uneven split leaves no core idle.
 * - The caller counts finished chunks, not finished workers: if a worker
 *   is asleep or descheduled, the caller simply runs every chunk itself and
 *   never waits for it to wake.
 * - Idle workers spin on the job word (with pause) for a bounded time
 *   before sleeping on a condition variable, so back-to-back ops within one
 *   inference see no syscalls. There is no sched_yield phase: on a busy
 *   machine a yield hands the core to another process for a whole time
 *   slice, and measured that way the worker ended up running almost none of
 *   the chunks. The caller waiting for chunks still running on workers
 *   spins the same way, then sleeps too.
 * - A second parallel_for on a busy pool (from inside a job, or from
 *   another thread) runs serially on its caller instead of deadlocking. */

#define WW_SPIN_NS 50000L      /* busy-wait this long before sleeping */
#define WW_CHUNKS_PER_THREAD 4 /* more chunks than threads balances uneven work */
#define WW_GEN_SHIFT 32        /* job word: generation << 32 | chunks << 16 | next chunk */
#define WW_CHUNKS_SHIFT 16     /* chunks <= 256 threads * WW_CHUNKS_PER_THREAD < 2^16 */

typedef struct ww_threadpool {
    /* Written by parallel_for, read by every thread: one cache line each so
     * claiming chunks does not bounce the completion counter. */
    alignas(64) _Atomic uint64_t job; /* generation << 32 | next chunk */
    alignas(64) atomic_int done;      /* chunks finished in the current job */
    alignas(64) atomic_int busy;      /* a parallel_for is in flight */
    atomic_int sleepers;              /* workers blocked on wake (or about to) */
    atomic_int caller_sleeping;       /* parallel_for blocked on finished */
    atomic_int stopping;
    /* Job description; written before the job word is released and read only
     * by a thread that has claimed a chunk of that job. */
    ww_range_fn fn;
    void *ctx;
    int n;
    int threads; /* including the caller */
    pthread_t *workers;
    pthread_mutex_t mutex;
    pthread_cond_t wake;     /* a new job or stop, for sleeping workers */
    pthread_cond_t finished; /* the last chunk is done, for a sleeping caller */
} ww_threadpool;

static uint32_t job_generation(uint64_t job)
{
    return (uint32_t)(job >> WW_GEN_SHIFT);
}

static int job_chunks(uint64_t job)
{
    return (int)((job >> WW_CHUNKS_SHIFT) & 0xffff);
}

static int job_next_chunk(uint64_t job)
{
    return (int)(job & 0xffff);
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void chunk_bounds(int n, int parts, int index, int *begin, int *end)
{
    int base = n / parts, extra = n % parts;
    *begin = index * base + (index < extra ? index : extra);
    *end = *begin + base + (index < extra ? 1 : 0);
}

/* Spin-wait bookkeeping: true while the spin budget since the first call
 * is not used up. Reads the clock only every 64 calls. */
typedef struct spin_state {
    unsigned count;
    long long start;
} spin_state;

static int keep_spinning(spin_state *s)
{
    if ((s->count++ & 63) != 0) {
        WW_CPU_RELAX();
        return 1;
    }
    long long t = now_ns();
    if (s->count == 1) s->start = t;
    if (t - s->start >= WW_SPIN_NS) return 0;
    WW_CPU_RELAX();
    return 1;
}

/* Claims and runs chunks of job `generation` until none are left. The
 * chunk count comes from the same word the claim is made on, so a thread
 * holding a stale view can neither claim past the end of a finished job
 * nor mix two jobs' counts. */
static void run_chunks(ww_threadpool *pool, uint32_t generation)
{
    uint64_t job = atomic_load_explicit(&pool->job, memory_order_acquire);
    for (;;) {
        if (job_generation(job) != generation) return;
        int chunk = job_next_chunk(job), chunks = job_chunks(job);
        if (chunk >= chunks) return;
        if (!atomic_compare_exchange_weak_explicit(&pool->job, &job, job + 1, memory_order_acquire,
                                                   memory_order_acquire))
            continue;
        /* A claimed chunk keeps the job unfinished, so fn, ctx and n are
         * this job's until it is counted done. */
        int begin, end;
        chunk_bounds(pool->n, chunks, chunk, &begin, &end);
        if (begin < end) pool->fn(pool->ctx, begin, end);
        /* seq_cst: pairs with the caller's announcement in ww_parallel_for */
        int finished = atomic_fetch_add(&pool->done, 1) + 1;
        if (finished == chunks && atomic_load(&pool->caller_sleeping)) {
            pthread_mutex_lock(&pool->mutex);
            pthread_cond_signal(&pool->finished);
            pthread_mutex_unlock(&pool->mutex);
            return; /* nothing left to claim */
        }
        job = atomic_load_explicit(&pool->job, memory_order_acquire);
    }
}

/* Waits until the job word's generation differs from `seen` (or the pool
 * stops): spins, then sleeps. Returns the new generation. */
static uint32_t wait_for_job(ww_threadpool *pool, uint32_t seen)
{
    spin_state spin = {0, 0};
    for (;;) {
        uint64_t job = atomic_load_explicit(&pool->job, memory_order_acquire);
        if (job_generation(job) != seen ||
            atomic_load_explicit(&pool->stopping, memory_order_relaxed))
            return job_generation(job);
        if (keep_spinning(&spin)) continue;
        /* Announce the sleeper before re-checking; parallel_for bumps the
         * generation before reading `sleepers` (both seq_cst), so either it
         * sees us and broadcasts under the mutex, or we see its job here. */
        pthread_mutex_lock(&pool->mutex);
        atomic_fetch_add(&pool->sleepers, 1);
        while (job_generation(atomic_load(&pool->job)) == seen && !atomic_load(&pool->stopping))
            pthread_cond_wait(&pool->wake, &pool->mutex);
        atomic_fetch_sub(&pool->sleepers, 1);
        pthread_mutex_unlock(&pool->mutex);
        spin = (spin_state){0, 0};
    }
}

static void *worker_main(void *p)
{
    ww_threadpool *pool = p;
    uint32_t seen = job_generation(atomic_load(&pool->job));
    for (;;) {
        seen = wait_for_job(pool, seen);
        if (atomic_load(&pool->stopping)) break;
        run_chunks(pool, seen);
    }
    return NULL;
}

wanwu_status ww_threadpool_create(int threads, ww_threadpool **out, wanwu_error *err)
{
    *out = NULL;
    if (threads <= 1) return WANWU_OK;
    if (threads > 256)
        return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "%d threads requested; at most 256",
                            threads);
    ww_threadpool *pool = aligned_alloc(64, sizeof(ww_threadpool));
    if (!pool) return ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory for thread pool");
    atomic_init(&pool->job, 0);
    atomic_init(&pool->done, 0);
    atomic_init(&pool->busy, 0);
    atomic_init(&pool->sleepers, 0);
    atomic_init(&pool->caller_sleeping, 0);
    atomic_init(&pool->stopping, 0);
    pool->fn = NULL;
    pool->ctx = NULL;
    pool->n = 0;
    pool->workers = calloc((size_t)threads, sizeof *pool->workers);
    if (!pool->workers) {
        free(pool);
        return ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory for thread pool");
    }
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->finished, NULL);
    pool->threads = 1;
    for (int i = 1; i < threads; i++) {
        if (pthread_create(&pool->workers[i], NULL, worker_main, pool) != 0) break;
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
    atomic_store(&pool->stopping, 1);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
    for (int i = 1; i < pool->threads; i++)
        pthread_join(pool->workers[i], NULL);
    pthread_mutex_destroy(&pool->mutex);
    pthread_cond_destroy(&pool->wake);
    pthread_cond_destroy(&pool->finished);
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
    if (!pool || n == 1 || atomic_exchange_explicit(&pool->busy, 1, memory_order_acquire) != 0) {
        fn(ctx, 0, n);
        return;
    }
    int chunks = n;
    if (chunks > pool->threads * WW_CHUNKS_PER_THREAD)
        chunks = pool->threads * WW_CHUNKS_PER_THREAD;
    pool->fn = fn;
    pool->ctx = ctx;
    pool->n = n;
    atomic_store_explicit(&pool->done, 0, memory_order_relaxed);
    uint32_t generation =
        job_generation(atomic_load_explicit(&pool->job, memory_order_relaxed)) + 1;
    /* seq_cst: see wait_for_job */
    atomic_store(&pool->job,
                 (uint64_t)generation << WW_GEN_SHIFT | (uint64_t)chunks << WW_CHUNKS_SHIFT);
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->mutex);
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->mutex);
    }

    run_chunks(pool, generation);

    /* Chunks still running on workers: spin, then sleep until the worker
     * finishing the last one signals. */
    spin_state spin = {0, 0};
    while (atomic_load_explicit(&pool->done, memory_order_acquire) != chunks) {
        if (keep_spinning(&spin)) continue;
        pthread_mutex_lock(&pool->mutex);
        atomic_store(&pool->caller_sleeping, 1);
        while (atomic_load(&pool->done) != chunks)
            pthread_cond_wait(&pool->finished, &pool->mutex);
        atomic_store(&pool->caller_sleeping, 0);
        pthread_mutex_unlock(&pool->mutex);
    }
    atomic_store_explicit(&pool->busy, 0, memory_order_release);
}
