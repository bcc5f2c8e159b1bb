/* Pre-faulting of freshly allocated memory. On the VMs wanwu targets the
 * first touch of a 4 KiB page costs ~10-20 us; faulting a range in one
 * madvise(MADV_POPULATE_WRITE) costs a fraction of that, and 2 MiB
 * transparent huge pages (MADV_HUGEPAGE) cut it by another order of
 * magnitude when the host still backs the memory (~0.05 ms/MB). Memory the
 * guest has handed back to the host costs ~1.8 ms/MB either way, and 4 KiB
 * pages then cost as much again at their first access from user code
 * (shadow page tables; README, "Load time"), so huge pages are kept.
 * Load-time buffers (weights, activation arenas) go through here so the
 * first inference does not pay for page faults either. */
#ifndef WW_CORE_PREFAULT_H
#define WW_CORE_PREFAULT_H

#include <stddef.h>

/* Makes [p, p + bytes) resident and writable now. Works on any writable
 * memory (malloc'd included; only whole pages inside the range are
 * advised). Ranges of several MiB are first marked for huge pages. Falls
 * back to touching one byte per page when the kernel lacks the advice.
 * Contents are unchanged. */
void ww_prefault(void *p, size_t bytes);

/* malloc-compatible (release with free()) block of `bytes`, 64-byte
 * aligned, on a 2 MiB boundary when it is that large (so huge pages can
 * back it), pre-faulted. Contents are undefined; NULL when out of memory. */
void *ww_alloc_prefaulted(size_t bytes);

/* The same block, advised for huge pages but not faulted in, for a caller
 * that faults parts of it itself (ww_populate), e.g. from several threads. */
void *ww_alloc_unfaulted(size_t bytes);

/* ww_prefault without the huge-page advice (which takes the address-space
 * lock for writing): threads populating parts of one ww_alloc_unfaulted
 * block fault side by side. */
void ww_populate(void *p, size_t bytes);

#endif
