/* A persistent pool of worker threads for data-parallel loops inside one
 * inference. Created once per session; parallel_for blocks until all
 * iterations are done. A NULL pool runs everything on the caller. */
#ifndef WW_CORE_THREADPOOL_H
#define WW_CORE_THREADPOOL_H

#include "wanwu.h"

typedef struct ww_threadpool ww_threadpool;

/* fn(ctx, begin, end) processes iterations [begin, end). */
typedef void (*ww_range_fn)(void *ctx, int begin, int end);

/* threads <= 1 yields *out = NULL (serial), which is valid everywhere. */
wanwu_status ww_threadpool_create(int threads, ww_threadpool **out, wanwu_error *err);
void ww_threadpool_free(ww_threadpool *pool);
int ww_threadpool_size(const ww_threadpool *pool); /* 1 for NULL */

/* Splits [0, n) into contiguous chunks (up to 4 per thread; the bounds
 * depend only on n and the pool size), runs fn once per chunk and waits for
 * all of them. Thread t (the caller is 0) runs the t-th contiguous share of
 * the chunks unless another thread, idle sooner, takes some over, so
 * consecutive calls keep the same part of an index space on the same core. */
void ww_parallel_for(ww_threadpool *pool, int n, ww_range_fn fn, void *ctx);

#endif
