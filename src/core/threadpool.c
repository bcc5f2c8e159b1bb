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

/* One inference calls parallel_for dozens of times (MobileNetV2: ~55), on
 * ops of a few to a few hundred microseconds, and on this VM every cache
 * line that moves between the two cores costs ~240 ns. So a job moves as
 * few lines as possible between threads:
 *
 * - The job (generation, n, fn, ctx) is published in one cache line.
 * - [0, n) is cut into chunks and every thread owns a contiguous share of
 *   them, claimed front to back through a word on the owner's own cache
 *   line: an even job moves no claim lines at all. A thread that runs out
 *   steals single chunks from the back of the others' shares, so a slower,
 *   late, asleep or descheduled worker never makes the caller wait for more
 *   than the chunk it is running. Neighbouring chunks mostly run on one
 *   thread, so outputs rarely share cache lines across threads.
 * - Share words are reset lazily by the first claim of a new job (the
 *   generation in the word says which job it counts); a thread can only
 *   claim a chunk of a job that is not finished, so a late worker never runs
 *   a chunk of an old job.
 * - Workers add the chunks they ran to one cumulative counter (no reset
 *   per job); the caller knows how many it ran itself and waits for the
 *   rest.
 * - Idle workers spin on the job word (with pause) for a bounded time
 *   before sleeping on a condition variable, so back-to-back ops within one
 *   inference see no syscalls. There is no sched_yield phase: on a busy
 *   machine a yield hands the core to another process for a whole time
 *   slice. The caller waiting for chunks still running on workers spins the
 *   same way, then sleeps too.
 * - A second parallel_for on a busy pool (from inside a job, or from
 *   another thread) runs serially on its caller instead of deadlocking. */

#define WW_SPIN_NS 50000L      /* busy-wait this long before sleeping */
#define WW_CHUNKS_PER_THREAD 4 /* steal granularity: a quarter of a share */
#define WW_GEN_SHIFT 32        /* job word: generation << 32 | n */
#define WW_END_SHIFT 16        /* share word: generation << 32 | end << 16 | next */

enum { CLAIM_NONE_LEFT = -1, CLAIM_NEWER_JOB = -2 };

/* The chunks [next, end) of one thread's share that nobody has claimed. */
typedef struct ww_share {
    alignas(64) _Atomic uint64_t word;
} ww_share;

typedef struct ww_worker {
    struct ww_threadpool *pool;
    int index; /* its share; the caller's is 0 */
    pthread_t thread;
} ww_worker;

typedef struct ww_threadpool {
    /* Written by the caller once per job, read by every worker. fn and ctx
     * are read only by a thread that has claimed a chunk of the job, which
     * keeps the job unfinished and so keeps them unchanged. */
    alignas(64) _Atomic uint64_t job; /* generation << 32 | n */
    ww_range_fn fn;
    void *ctx;
    /* Chunks run by workers, all jobs together; written by workers. */
    alignas(64) _Atomic uint64_t worker_chunks;
    atomic_int caller_sleeping; /* parallel_for blocked on finished */
    /* The caller's own bookkeeping. */
    alignas(64) atomic_int busy; /* a parallel_for is in flight */
    uint64_t worker_chunks_seen; /* worker_chunks when the last job ended */
    int threads;                 /* including the caller */
    size_t area_floats;          /* ww_threadpool_set_area_floats */
    ww_share *shares;            /* one per thread */
    ww_worker *workers;          /* [1, threads) are started */
    /* Rarely written. */
    alignas(64) atomic_int sleepers; /* workers blocked on wake (or about to) */
    atomic_int stopping;
    pthread_mutex_t mutex;
    pthread_cond_t wake;     /* a new job or stop, for sleeping workers */
    pthread_cond_t finished; /* the last chunk is done, for a sleeping caller */
} ww_threadpool;

static uint32_t job_generation(uint64_t job)
{
    return (uint32_t)(job >> WW_GEN_SHIFT);
}

static int job_n(uint64_t job)
{
    return (int)(uint32_t)job;
}

static uint64_t share_word(uint32_t generation, int end, int next)
{
    return (uint64_t)generation << WW_GEN_SHIFT | (uint64_t)end << WW_END_SHIFT | (uint64_t)next;
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Part `index` of [0, n) cut into `parts` near-equal contiguous parts. */
static void split_bounds(int n, int parts, int index, int *begin, int *end)
{
    int base = n / parts, extra = n % parts;
    *begin = index * base + (index < extra ? index : extra);
    *end = *begin + base + (index < extra ? 1 : 0);
}

static int job_chunks(int n, int threads)
{
    return n < threads * WW_CHUNKS_PER_THREAD ? n : threads * WW_CHUNKS_PER_THREAD;
}

/* Share `index` of a job of n iterations, as chunk indices. */
static void share_bounds(int n, int threads, int index, int *first, int *last)
{
    split_bounds(job_chunks(n, threads), threads, index, first, last);
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

/* Claims one chunk of `job` from share `index`: the owner takes the front,
 * others the back. Returns the chunk, CLAIM_NONE_LEFT or CLAIM_NEWER_JOB.
 * A share word of an older generation counts as the full share of this
 * job; if this job has in fact finished, every non-empty share already
 * carries its generation, so the reset can only happen for an empty one. */
static int claim_chunk(ww_threadpool *pool, uint64_t job, int index, int owner)
{
    _Atomic uint64_t *word = &pool->shares[index].word;
    uint32_t generation = job_generation(job);
    uint64_t cur = atomic_load_explicit(word, memory_order_relaxed);
    for (;;) {
        uint32_t cur_generation = (uint32_t)(cur >> WW_GEN_SHIFT);
        int next, end;
        if (cur_generation == generation) {
            next = (int)(cur & 0xffff);
            end = (int)((cur >> WW_END_SHIFT) & 0xffff);
        } else {
            if ((int32_t)(cur_generation - generation) > 0) return CLAIM_NEWER_JOB;
            share_bounds(job_n(job), pool->threads, index, &next, &end);
        }
        if (next >= end) return CLAIM_NONE_LEFT;
        int chunk = owner ? next : end - 1;
        uint64_t claimed =
            owner ? share_word(generation, end, next + 1) : share_word(generation, end - 1, next);
        if (atomic_compare_exchange_weak_explicit(word, &cur, claimed, memory_order_relaxed,
                                                  memory_order_relaxed))
            return chunk;
    }
}

static void run_chunk(ww_threadpool *pool, uint64_t job, int chunk)
{
    int n = job_n(job), begin, end;
    split_bounds(n, job_chunks(n, pool->threads), chunk, &begin, &end);
    pool->fn(pool->ctx, begin, end);
}

/* A worker reports a chunk it finished; wakes the caller if it sleeps.
 * Per chunk, so a worker descheduled between chunks never keeps the caller
 * waiting for chunks that are already done; while the caller is busy with
 * its own share the counter's line stays in the worker's cache and the
 * add is cheap. */
static void report_chunk(ww_threadpool *pool)
{
    /* seq_cst: pairs with the caller's caller_sleeping announcement */
    atomic_fetch_add(&pool->worker_chunks, 1);
    if (atomic_load(&pool->caller_sleeping)) {
        pthread_mutex_lock(&pool->mutex);
        pthread_cond_signal(&pool->finished);
        pthread_mutex_unlock(&pool->mutex);
    }
}

/* Runs the chunks of share `index` that are left, owner-style or by
 * stealing; a worker reports each. Returns how many; *newer is set when a
 * newer job has begun. */
static int run_share(ww_threadpool *pool, uint64_t job, int index, int owner, int worker,
                     int *newer)
{
    int ran = 0;
    for (;;) {
        int chunk = claim_chunk(pool, job, index, owner);
        if (chunk < 0) {
            if (chunk == CLAIM_NEWER_JOB) *newer = 1;
            return ran;
        }
        run_chunk(pool, job, chunk);
        if (worker) report_chunk(pool);
        ran++;
    }
}

/* Steals from every other share in turn until none has chunks left. */
static int steal_chunks(ww_threadpool *pool, uint64_t job, int own)
{
    int ran = 0, newer = 0, worker = own != 0; /* share 0 is the caller's */
    for (int i = 1; i < pool->threads && !newer; i++)
        ran += run_share(pool, job, (own + i) % pool->threads, 0, worker, &newer);
    return ran;
}

static void wake_workers(ww_threadpool *pool)
{
    pthread_mutex_lock(&pool->mutex);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
}

/* Waits until the job word's generation differs from `seen` (or the pool
 * stops): spins, then sleeps. Returns the job word. */
static uint64_t wait_for_job(ww_threadpool *pool, uint32_t seen)
{
    spin_state spin = {0, 0};
    for (;;) {
        uint64_t job = atomic_load_explicit(&pool->job, memory_order_acquire);
        if (job_generation(job) != seen ||
            atomic_load_explicit(&pool->stopping, memory_order_relaxed))
            return job;
        if (keep_spinning(&spin)) continue;
        /* Announce the sleeper before re-checking; parallel_for publishes
         * the generation before a seq_cst fence and reads `sleepers` after
         * it, so either it sees us and broadcasts under the mutex, or we
         * see its job here. */
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
    ww_worker *self = p;
    ww_threadpool *pool = self->pool;
    /* Generation 0 is the pool's state before its first job, so a worker
     * that starts running only after that job was published still sees it. */
    uint32_t seen = 0;
    for (;;) {
        uint64_t job = wait_for_job(pool, seen);
        if (atomic_load(&pool->stopping)) break;
        seen = job_generation(job);
        int newer = 0;
        run_share(pool, job, self->index, 1, 1, &newer);
        if (!newer) steal_chunks(pool, job, self->index);
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
    atomic_init(&pool->worker_chunks, 0);
    atomic_init(&pool->caller_sleeping, 0);
    atomic_init(&pool->busy, 0);
    atomic_init(&pool->sleepers, 0);
    atomic_init(&pool->stopping, 0);
    pool->fn = NULL;
    pool->ctx = NULL;
    pool->worker_chunks_seen = 0;
    pool->threads = threads;
    pool->area_floats = 0;
    pool->shares = aligned_alloc(64, (size_t)threads * sizeof *pool->shares);
    pool->workers = calloc((size_t)threads, sizeof *pool->workers);
    if (!pool->shares || !pool->workers) {
        free(pool->shares);
        free(pool->workers);
        free(pool);
        return ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory for thread pool");
    }
    for (int i = 0; i < threads; i++)
        atomic_init(&pool->shares[i].word, 0); /* generation 0: no job yet */
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->finished, NULL);
    int started = 1;
    for (; started < threads; started++) {
        pool->workers[started] = (ww_worker){pool, started, 0};
        if (pthread_create(&pool->workers[started].thread, NULL, worker_main,
                           &pool->workers[started]) != 0)
            break;
    }
    pool->threads = started;
    if (started != threads) {
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
        pthread_join(pool->workers[i].thread, NULL);
    pthread_mutex_destroy(&pool->mutex);
    pthread_cond_destroy(&pool->wake);
    pthread_cond_destroy(&pool->finished);
    free(pool->shares);
    free(pool->workers);
    free(pool);
}

int ww_threadpool_size(const ww_threadpool *pool)
{
    return pool ? pool->threads : 1;
}

void ww_threadpool_set_area_floats(ww_threadpool *pool, size_t area_floats)
{
    if (pool) pool->area_floats = area_floats;
}

size_t ww_threadpool_area_floats(const ww_threadpool *pool)
{
    return pool ? pool->area_floats : 0;
}

int ww_parallel_for_share_begin(int threads, int n, int t)
{
    if (t <= 0 || n <= 0) return 0;
    if (t >= threads || n == 1) return n;
    int first, last, begin, end;
    share_bounds(n, threads, t, &first, &last);
    split_bounds(n, job_chunks(n, threads), first, &begin, &end);
    return begin;
}

void ww_parallel_for(ww_threadpool *pool, int n, ww_range_fn fn, void *ctx)
{
    if (n <= 0) return;
    if (!pool || n == 1 || atomic_exchange_explicit(&pool->busy, 1, memory_order_acquire) != 0) {
        fn(ctx, 0, n);
        return;
    }
    uint32_t generation =
        job_generation(atomic_load_explicit(&pool->job, memory_order_relaxed)) + 1;
    uint64_t job = (uint64_t)generation << WW_GEN_SHIFT | (uint32_t)n;
    /* Reset the caller's own share now: its cache line then moves back (if
     * a thief read it last job) while the job line is being published. */
    int first, last;
    share_bounds(n, pool->threads, 0, &first, &last);
    atomic_store_explicit(&pool->shares[0].word, share_word(generation, last, first),
                          memory_order_relaxed);
    pool->fn = fn;
    pool->ctx = ctx;
    /* A release store does not stall the caller until the job line has left
     * the workers' caches, as a seq_cst one would; the fence that the sleeper
     * handshake needs comes after the caller's own share instead. */
    int woken = atomic_load_explicit(&pool->sleepers, memory_order_relaxed) > 0;
    atomic_store_explicit(&pool->job, job, memory_order_release);
    if (woken) wake_workers(pool);

    int newer = 0;
    int ran = run_share(pool, job, 0, 1, 0, &newer);
    /* See wait_for_job: a worker announced as a sleeper before this fence
     * is seen here; one announced after it sees the job. A late wake-up
     * costs nothing but that worker's help with this job. */
    atomic_thread_fence(memory_order_seq_cst);
    if (!woken && atomic_load_explicit(&pool->sleepers, memory_order_relaxed) > 0)
        wake_workers(pool);
    uint64_t target = pool->worker_chunks_seen + (uint64_t)(job_chunks(n, pool->threads) - ran);
    /* Steal only if the workers are not already done: probing their shares
     * moves their cache lines here. */
    if (atomic_load_explicit(&pool->worker_chunks, memory_order_acquire) != target) {
        ran += steal_chunks(pool, job, 0);
        target = pool->worker_chunks_seen + (uint64_t)(job_chunks(n, pool->threads) - ran);
    }

    /* Chunks still running on workers: spin, then sleep until the worker
     * reporting the last one signals. */
    spin_state spin = {0, 0};
    while (atomic_load_explicit(&pool->worker_chunks, memory_order_acquire) != target) {
        if (keep_spinning(&spin)) continue;
        pthread_mutex_lock(&pool->mutex);
        atomic_store(&pool->caller_sleeping, 1);
        while (atomic_load(&pool->worker_chunks) != target)
            pthread_cond_wait(&pool->finished, &pool->mutex);
        atomic_store(&pool->caller_sleeping, 0);
        pthread_mutex_unlock(&pool->mutex);
    }
    pool->worker_chunks_seen = target;
    atomic_store_explicit(&pool->busy, 0, memory_order_release);
}

/* ---- shares of work items (ww_shares) ------------------------------------ */

static void shares_bounds(const ww_shares *q, int share, int *first, int *last)
{
    *first = (int)((long long)q->items * share / q->slots);
    *last = (int)((long long)q->items * (share + 1) / q->slots);
}

void ww_shares_init(ww_shares *q, int items, int slots)
{
    q->items = items;
    q->slots = slots;
    for (int s = 0; s < slots; s++) {
        int first, last;
        shares_bounds(q, s, &first, &last);
        atomic_init(&q->next[s], first);
    }
}

int ww_shares_claim(ww_shares *q, int slot, int *cursor, int *share_end)
{
    for (; *cursor < q->slots; ++*cursor) {
        int share = (slot + *cursor) % q->slots, first, last;
        shares_bounds(q, share, &first, &last);
        int item = atomic_fetch_add_explicit(&q->next[share], 1, memory_order_relaxed);
        if (item < last) {
            if (share_end) *share_end = last;
            return item;
        }
    }
    return -1;
}
