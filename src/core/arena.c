#include "core/arena.h"

#include "core/prefault.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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
    /* allocation sizes, in order (ww_arena_log) */
    unsigned long long *log;
    size_t log_count, log_cap;
    int log_lost; /* a size could not be recorded */
    /* replay (ww_arena_create_replay) */
    int replay, replay_spoiled;
    void *replay_map;
    size_t replay_map_len;
    const unsigned char *replay_data;
    size_t replay_bytes, replay_used, replay_next;
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

static void record(ww_arena *a, size_t need)
{
    if (a->log_lost) return;
    if (a->log_count == a->log_cap) {
        size_t cap = a->log_cap ? a->log_cap * 2 : 64;
        unsigned long long *log = realloc(a->log, cap * sizeof *log);
        if (!log) {
            a->log_lost = 1;
            return;
        }
        a->log = log;
        a->log_cap = cap;
    }
    a->log[a->log_count++] = need;
}

static void *replay_take(ww_arena *a, size_t need)
{
    if (a->replay_spoiled || a->replay_next >= a->log_count || a->log[a->replay_next] != need ||
        need > a->replay_bytes - a->replay_used) {
        a->replay_spoiled = 1;
        return NULL;
    }
    const unsigned char *p = a->replay_data + a->replay_used;
    a->replay_used += need;
    a->replay_next++;
    return (void *)(uintptr_t)p; /* read-only: ww_arena_prefilled */
}

void *ww_arena_alloc(ww_arena *a, size_t bytes)
{
    if (!a || bytes > SIZE_MAX - ARENA_CHUNK_SPAN) return NULL;
    size_t need = (bytes + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    if (need == 0) need = ARENA_ALIGN;
    if (a->replay) return replay_take(a, need);
    record(a, need);
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

const unsigned long long *ww_arena_log(const ww_arena *a, size_t *count)
{
    *count = 0;
    if (!a || a->log_lost) return NULL;
    *count = a->log_count;
    return a->log;
}

const void *ww_arena_contents(const ww_arena *a, size_t *bytes)
{
    *bytes = 0;
    if (!a || a->replay || !a->chunks || a->chunks->next) return NULL;
    *bytes = a->chunks->used;
    return a->chunks->base;
}

ww_arena *ww_arena_create_replay(void *map, size_t map_len, const unsigned char *data, size_t bytes,
                                 const unsigned long long *log, size_t count)
{
    ww_arena *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->log = malloc((count ? count : 1) * sizeof *a->log);
    if (!a->log) {
        free(a);
        return NULL;
    }
    if (count) memcpy(a->log, log, count * sizeof *a->log);
    a->log_count = a->log_cap = count;
    a->replay = 1;
    a->replay_map = map;
    a->replay_map_len = map_len;
    a->replay_data = data;
    a->replay_bytes = bytes;
    a->resident = bytes;
    return a;
}

const void *ww_arena_span(const ww_arena *a, size_t *bytes, size_t *room)
{
    *bytes = *room = 0;
    if (!a) return NULL;
    if (a->replay) {
        *bytes = a->replay_bytes;
        *room = a->replay_bytes - a->replay_used;
        return a->replay_data;
    }
    if (!a->chunks) return NULL;
    *bytes = a->chunks->size;
    *room = a->chunks->size - a->chunks->used;
    return a->chunks->base;
}

int ww_arena_prefilled(const ww_arena *a)
{
    return a && a->replay;
}

int ww_arena_replay_complete(const ww_arena *a)
{
    return a && a->replay && !a->replay_spoiled && a->replay_next == a->log_count &&
           a->replay_used == a->replay_bytes;
}

void ww_arena_free(ww_arena *a)
{
    if (!a) return;
    if (a->replay_map) munmap(a->replay_map, a->replay_map_len);
    free(a->log);
    arena_chunk *c = a->chunks;
    while (c) {
        arena_chunk *next = c->next;
        munmap(c->base, c->size);
        free(c);
        c = next;
    }
    free(a);
}
