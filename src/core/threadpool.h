/* A persistent pool of worker threads for data-parallel loops inside one
 * inference. Created once per session; parallel_for blocks until all
 * iterations are done. A NULL pool runs everything on the caller. */
#ifndef WW_CORE_THREADPOOL_H
#define WW_CORE_THREADPOOL_H

#include "wanwu.h"

#include <stdatomic.h>
#include <stddef.h>

typedef struct ww_threadpool ww_threadpool;

/* fn(ctx, begin, end) processes iterations [begin, end). */
typedef void (*ww_range_fn)(void *ctx, int begin, int end);

/* threads <= 1 yields *out = NULL (serial), which is valid everywhere. */
wanwu_status ww_threadpool_create(int threads, ww_threadpool **out, wanwu_error *err);
void ww_threadpool_free(ww_threadpool *pool);
int ww_threadpool_size(const ww_threadpool *pool); /* 1 for NULL */

/* Where the kernels that give each thread its own work area in a run's
 * scratch (Winograd, the direct convolutions) put them: area i at
 * scratch + i * max(their own size, area_floats). A session sets the
 * largest area any of its convs needs, so that each thread's area starts
 * at the same address in every layer and holds lines that thread wrote
 * last, not the other core (on this VM ~240 ns per line moved); it sizes
 * its scratch with ww_conv2d_scratch_floats_areas. 0 (the default, and
 * always for a NULL pool): each kernel spaces its areas by its own size. */
void ww_threadpool_set_area_floats(ww_threadpool *pool, size_t area_floats);
size_t ww_threadpool_area_floats(const ww_threadpool *pool);

/* Splits [0, n) into contiguous chunks (up to 4 per thread; the bounds
 * depend only on n and the pool size), runs fn once per chunk and waits for
 * all of them. Thread t (the caller is 0) runs the t-th contiguous share of
 * the chunks unless another thread, idle sooner, takes some over, so
 * consecutive calls keep the same part of an index space on the same core. */
void ww_parallel_for(ww_threadpool *pool, int n, ww_range_fn fn, void *ctx);
/* The first iteration of thread t's share of ww_parallel_for(pool, n, ...)
 * on a pool of `threads` threads (n for t at or past it): where a later
 * loop over the same data finds what each thread wrote. */
int ww_parallel_for_share_begin(int threads, int n, int t);

/* Work items [0, items) in `slots` contiguous shares, claimed through
 * atomic counters: slot s takes its own share from the front, then what is
 * left of the others (s + 1, s + 2, ...). For kernels whose parallel
 * iterations are slots with their own scratch (ww_parallel_for over the
 * slot count), so that a worker that wakes late or is descheduled has its
 * share split rather than run after everyone else's. Every item is claimed
 * exactly once; which slot runs it must not change the result. */
#define WW_SHARES_MAX 256 /* the thread pool's limit */
typedef struct ww_shares {
    int items, slots;
    atomic_int next[WW_SHARES_MAX];
} ww_shares;

/* slots in [1, WW_SHARES_MAX]. */
void ww_shares_init(ww_shares *q, int items, int slots);
/* The next item for slot `slot`, or -1 when none is left. *cursor is 0
 * before a slot's first claim (it walks the shares). With share_end, the
 * end of the share the item came from. */
int ww_shares_claim(ww_shares *q, int slot, int *cursor, int *share_end);

#endif
