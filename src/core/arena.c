#include "core/arena.h"

#include "core/prefault.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#define ARENA_HUGE_PAGE ((size_t)2 << 20)
/* Address space each chunk reserves: enough for every model wanwu knows
 * (ResNet-18 packs ~52 MB), so a model normally gets one chunk. Only the
 * used part is faulted in, in whole huge pages, so the reservation costs
 * no memory. */
#define ARENA_CHUNK_SPAN ((size_t)256 << 20)
#define ARENA_ALIGN ((size_t)64)

typedef struct arena_chunk {
    struct arena_chunk *next;
    unsigned char *base; /* huge-page aligned */
    size_t size;         /* reserved bytes, a multiple of ARENA_HUGE_PAGE */
    size_t used;         /* handed out */
    size_t faulted;      /* made resident: `used` rounded up to a huge page */
} arena_chunk;

struct ww_arena {
    arena_chunk *chunks; /* newest first */
    size_t resident;
};

ww_arena *ww_arena_create(void)
{
    return calloc(1, sizeof(ww_arena));
}

/* mmap'd directly (not malloc) so the chunk starts on a huge-page
 * boundary: the over-mapped head and tail are unmapped again. */
static unsigned char *map_huge_aligned(size_t size)
{
    size_t span = size + ARENA_HUGE_PAGE;
    void *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED) return NULL;
    uintptr_t start = (uintptr_t)p;
    uintptr_t aligned = (start + ARENA_HUGE_PAGE - 1) & ~(uintptr_t)(ARENA_HUGE_PAGE - 1);
    size_t head = aligned - start, tail = span - head - size;
    if (head) munmap(p, head);
    if (tail) munmap((void *)(aligned + size), tail);
#ifdef MADV_HUGEPAGE
    (void)madvise((void *)aligned, size, MADV_HUGEPAGE);
#endif
    return (unsigned char *)aligned;
}

static void *take(ww_arena *a, arena_chunk *c, size_t need)
{
    unsigned char *p = c->base + c->used;
    c->used += need;
    if (c->used > c->faulted) {
        size_t to = (c->used + ARENA_HUGE_PAGE - 1) & ~(ARENA_HUGE_PAGE - 1);
        ww_prefault(c->base + c->faulted, to - c->faulted);
        a->resident += to - c->faulted;
        c->faulted = to;
    }
    return p;
}

void *ww_arena_alloc(ww_arena *a, size_t bytes)
{
    if (!a || bytes > SIZE_MAX - ARENA_CHUNK_SPAN) return NULL;
    size_t need = (bytes + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    if (need == 0) need = ARENA_ALIGN;
    for (arena_chunk *c = a->chunks; c; c = c->next)
        if (c->size - c->used >= need) return take(a, c, need);
    size_t size = need > ARENA_CHUNK_SPAN ? need : ARENA_CHUNK_SPAN;
    size = (size + ARENA_HUGE_PAGE - 1) & ~(ARENA_HUGE_PAGE - 1);
    arena_chunk *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->base = map_huge_aligned(size);
    if (!c->base) {
        free(c);
        return NULL;
    }
    c->size = size;
    c->next = a->chunks;
    a->chunks = c;
    return take(a, c, need);
}

size_t ww_arena_resident(const ww_arena *a)
{
    return a ? a->resident : 0;
}

void ww_arena_free(ww_arena *a)
{
    if (!a) return;
    arena_chunk *c = a->chunks;
    while (c) {
        arena_chunk *next = c->next;
        munmap(c->base, c->size);
        free(c);
        c = next;
    }
    free(a);
}
