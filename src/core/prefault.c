#include "core/prefault.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

#define WW_HUGE_PAGE ((uintptr_t)2 << 20)

/* Bytes actually allocated for a request: a large block is rounded up to
 * whole huge pages, since its tail in 4 KiB pages would cost ~10 us per
 * page at first touch (see prefault.h). */
static size_t alloc_size(size_t bytes)
{
    if (bytes >= WW_HUGE_PAGE && bytes <= SIZE_MAX - WW_HUGE_PAGE)
        return (bytes + WW_HUGE_PAGE - 1) & ~(size_t)(WW_HUGE_PAGE - 1);
    return bytes ? bytes : 1;
}

/* Whole huge pages inside [p, p + bytes) marked for transparent huge pages. */
static void advise_huge(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
    uintptr_t start = (uintptr_t)p, end = start + bytes;
    uintptr_t hs = (start + WW_HUGE_PAGE - 1) & ~(WW_HUGE_PAGE - 1), he = end & ~(WW_HUGE_PAGE - 1);
    if (he > hs) (void)madvise((void *)hs, he - hs, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
}

void *ww_alloc_unfaulted(size_t bytes)
{
    void *p = NULL;
    size_t align = bytes >= WW_HUGE_PAGE ? (size_t)WW_HUGE_PAGE : 64;
    if (posix_memalign(&p, align, alloc_size(bytes)) != 0) return NULL;
    /* Advised here, once: the advice takes the address-space lock for
     * writing, so threads advising their own parts would wait for each
     * other's faulting instead of faulting side by side. */
    advise_huge(p, alloc_size(bytes));
    return p;
}

void *ww_alloc_prefaulted(size_t bytes)
{
    void *p = ww_alloc_unfaulted(bytes);
    if (p) ww_populate(p, alloc_size(bytes));
    return p;
}

void ww_populate(void *p, size_t bytes)
{
    if (!p || bytes == 0) return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    if (page == 0 || (page & (page - 1)) != 0) page = 4096;
    uintptr_t start = (uintptr_t)p, end = start + bytes;
    /* Smaller than a couple of pages: the first touch is as cheap as a syscall. */
    if (bytes < 4 * page) return;
    uintptr_t ps = (start + page - 1) & ~(page - 1), pe = end & ~(page - 1);
    if (pe <= ps) return;
    if (madvise((void *)ps, pe - ps, MADV_POPULATE_WRITE) == 0) return;
    /* Older kernel: touch every page (a read-modify-write of one byte keeps
     * the contents). */
    for (uintptr_t a = ps; a < pe; a += page) {
        volatile unsigned char *b = (volatile unsigned char *)a;
        *b = *b;
    }
}

void ww_prefault(void *p, size_t bytes)
{
    if (!p) return;
    advise_huge(p, bytes);
    ww_populate(p, bytes);
}
