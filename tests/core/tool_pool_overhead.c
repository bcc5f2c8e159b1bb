/* Micro-benchmark (not a test): the cost of one ww_parallel_for call at a
 * given thread count, back to back, with empty work and with a few
 * microseconds of work split evenly, and how much of the work ran off the
 * calling thread (best of ten batches).
 *   tool_pool_overhead [threads] [calls]
 */
#include "core/threadpool.h"
#include "tool_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct work {
    pthread_t caller;
    int spin_per_index;                  /* dependent adds per index: a fixed amount of work */
    _Alignas(64) atomic_long off_caller; /* indices run by other threads */
} work;

static void run_range(void *p, int begin, int end)
{
    work *w = p;
    volatile unsigned sink = 0;
    for (int i = begin; i < end; i++)
        for (int k = 0; k < w->spin_per_index; k++)
            sink = sink + (unsigned)k;
    if (!pthread_equal(pthread_self(), w->caller))
        atomic_fetch_add_explicit(&w->off_caller, end - begin, memory_order_relaxed);
}

static double per_call_us(ww_threadpool *pool, int calls, int n, work *w)
{
    atomic_store(&w->off_caller, 0);
    double t0 = ww_tool_now_seconds();
    for (int c = 0; c < calls; c++)
        ww_parallel_for(pool, n, run_range, w);
    return (ww_tool_now_seconds() - t0) * 1e6 / calls;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    int calls = argc > 2 ? atoi(argv[2]) : 20000;
    ww_threadpool *pool = NULL;
    wanwu_error err;
    if (ww_threadpool_create(threads, &pool, &err) != WANWU_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    work w = {.caller = pthread_self()};
    const int spins[] = {0, 100, 1000, 10000};
    const int sizes[] = {2, 64, 1000};
    printf("threads %d, %d calls each\n", ww_threadpool_size(pool), calls);
    for (size_t s = 0; s < sizeof spins / sizeof spins[0]; s++) {
        for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
            w.spin_per_index = spins[s] * 64 / sizes[z]; /* same total work per call */
            int reps = spins[s] >= 10000 ? calls / 10 : calls;
            per_call_us(pool, reps / 10 + 1, sizes[z], &w); /* warm up */
            /* The best of several batches: on a shared machine most
             * batches include time the threads were descheduled. */
            double best = 0, off = 0;
            for (int batch = 0; batch < 10; batch++) {
                double us = per_call_us(pool, reps / 10, sizes[z], &w);
                if (batch == 0 || us < best) {
                    best = us;
                    off = (double)atomic_load(&w.off_caller) / ((double)(reps / 10) * sizes[z]);
                }
            }
            printf("work %6d x64  n %5d: %8.3f us/call, %5.1f%% off caller\n", spins[s], sizes[z],
                   best, 100.0 * off);
        }
    }
    ww_threadpool_free(pool);
    return 0;
}
