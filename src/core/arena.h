/* Weight arena: one owner for the many packed-weight buffers a model
 * prepares at load (one or two per convolution, 50 KB to 10 MB each).
 * Allocated one by one, a buffer under 2 MiB, and the tail of a larger
 * one, cannot be backed by a huge page, and on the VMs wanwu targets the
 * first touch of each such 4 KiB page costs ~10 us even after
 * MADV_POPULATE_WRITE (measured: 64 MB pre-faulted in 4 KiB pages then
 * written takes ~150 ms, in 2 MiB pages ~6 ms). The arena hands them out
 * one after another from a large reservation of address space aligned to
 * huge pages, faulting in whole huge pages as it goes (so at most one
 * partly used huge page is wasted), and frees them all together with the
 * model. */
#ifndef WW_CORE_ARENA_H
#define WW_CORE_ARENA_H

#include <stddef.h>

typedef struct ww_arena ww_arena;

/* An empty arena (no memory reserved yet); NULL when out of memory. */
ww_arena *ww_arena_create(void);

/* `bytes` (may be 0) of pre-faulted memory, 64-byte aligned, owned by the
 * arena: never freed on its own. Contents are undefined. NULL when out of
 * memory or when `a` is NULL. */
void *ww_arena_alloc(ww_arena *a, size_t bytes);

/* Bytes the arena has made resident (whole huge pages). */
size_t ww_arena_resident(const ww_arena *a);

/* Releases every chunk; NULL is a no-op. */
void ww_arena_free(ww_arena *a);

#endif
