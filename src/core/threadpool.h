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

/* Splits [0, n) into contiguous chunks, one per thread (the caller works
 * too), and waits for all of them. */
void ww_parallel_for(ww_threadpool *pool, int n, ww_range_fn fn, void *ctx);

#endif
