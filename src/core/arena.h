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

/* Releases every chunk (or the replayed mapping); NULL is a no-op. */
void ww_arena_free(ww_arena *a);

/* ---- replay, for the weight cache (model/weight_cache.h) --------------
 * An arena remembers the size of every allocation, in order. Allocations
 * are laid out one after another from the start of one chunk, so the
 * sizes fix every block's offset: a later build that makes the same
 * calls can be handed the same bytes, read back from a file, instead of
 * packing them again. */

/* The sizes (as rounded by the arena) of all allocations so far, in
 * order; NULL when the log could not be kept (out of memory). */
const unsigned long long *ww_arena_log(const ww_arena *a, size_t *count);

/* The one block every allocation so far came from, and its length in
 * bytes (the sum of the log); NULL when they span several chunks or the
 * arena is a replay. */
const void *ww_arena_contents(const ww_arena *a, size_t *bytes);

/* An arena whose allocations are taken, in order, from `data` (`bytes`
 * long, 64-byte aligned), which already holds what an earlier arena with
 * allocation log `log` was filled with. Each allocation must ask for the
 * size the log has next; the first one that does not (or one past the
 * end) returns NULL and the replay is spoiled for good. The arena owns
 * [map, map + map_len) and munmaps it when freed. NULL when out of
 * memory (the mapping is then not taken over). */
ww_arena *ww_arena_create_replay(void *map, size_t map_len, const unsigned char *data, size_t bytes,
                                 const unsigned long long *log, size_t count);

/* The block later allocations will come from when they fit in it: its
 * start and its size in bytes (*room: how much of it is free). NULL when
 * nothing was allocated yet. */
const void *ww_arena_span(const ww_arena *a, size_t *bytes, size_t *room);

/* Nonzero for a replay arena: its blocks already hold their contents and
 * are mapped read-only, so callers must not write them (the packing of
 * weights is skipped). 0 for NULL. */
int ww_arena_prefilled(const ww_arena *a);

/* For a replay arena: nonzero when every logged allocation has been
 * taken, in order, and nothing else was asked for. */
int ww_arena_replay_complete(const ww_arena *a);

#endif
