#include "model/weight_cache.h"

#include "core/fileio.h"
#include "core/hash.h"

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Bump when the file layout changes (the packing itself is covered by
 * the build ID). */
#define WEIGHT_CACHE_FORMAT 1
#define CACHE_MAGIC "wwpack\n"
#define CACHE_BYTE_ORDER 0x01020304u
/* The arena's bytes start on a huge-page boundary of the file, so that
 * page-cache folios of that size can back the mapping. */
#define CACHE_DATA_ALIGN ((uint64_t)2 << 20)
#define CACHE_MAX_ALLOCS ((uint64_t)1 << 20)
#define BUILD_ID_MAX 64

typedef struct cache_identity {
    uint32_t format;
    uint32_t build_id_len;
    unsigned char build_id[BUILD_ID_MAX];
    uint64_t dev, ino, size;
    int64_t mtime_sec, mtime_nsec, ctime_sec, ctime_nsec;
    int32_t isa, input_size;
    char arch[64];
} cache_identity;

_Static_assert(sizeof(cache_identity) <= sizeof(((ww_weight_cache_key *)0)->identity),
               "cache identity does not fit the key");

typedef struct cache_header {
    char magic[8];
    uint32_t header_bytes; /* sizeof(cache_header): a layout check */
    uint32_t byte_order;   /* CACHE_BYTE_ORDER as the writer stored it */
    unsigned char identity[sizeof(((ww_weight_cache_key *)0)->identity)];
    uint64_t alloc_count; /* entries of the log, which follows the header */
    uint64_t data_offset; /* of the arena's bytes: a multiple of CACHE_DATA_ALIGN */
    uint64_t data_bytes;  /* the sum of the log; the file ends there */
    uint64_t log_hash;
    uint64_t header_hash; /* of every byte above */
} cache_header;

/* ---- the program's build ID ------------------------------------------ */

typedef struct build_id_search {
    uintptr_t addr; /* an address inside the module wanted */
    unsigned char id[BUILD_ID_MAX];
    size_t len;
} build_id_search;

static const char build_id_anchor = 0; /* lives in the module that packs weights */

static int module_build_id(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    build_id_search *s = data;
    int inside = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t begin = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && s->addr >= begin && s->addr - begin < ph->p_memsz) inside = 1;
    }
    if (!inside) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE) continue;
        size_t align = ph->p_align >= 8 ? 8 : 4;
        const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
        const unsigned char *end = p + ph->p_memsz;
        while ((size_t)(end - p) >= sizeof(ElfW(Nhdr))) {
            const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
            size_t name_at = sizeof *n, name_len = (n->n_namesz + align - 1) & ~(align - 1);
            size_t desc_len = (n->n_descsz + align - 1) & ~(align - 1);
            if (name_len + desc_len > (size_t)(end - p) - name_at) break;
            const unsigned char *name = p + name_at, *desc = name + name_len;
            if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && memcmp(name, "GNU", 4) == 0 &&
                n->n_descsz > 0 && n->n_descsz <= BUILD_ID_MAX) {
                memcpy(s->id, desc, n->n_descsz);
                s->len = n->n_descsz;
                return 1;
            }
            p = desc + desc_len;
        }
    }
    return 1; /* the module, without a build ID */
}

/* ---- directories and keys -------------------------------------------- */

const char *ww_weight_cache_dir(const char *option)
{
    const char *dir = option ? option : getenv("WANWU_CACHE_DIR");
    if (!dir || !*dir || strcmp(dir, "off") == 0) return NULL;
    return dir;
}

const char *ww_weight_cache_default_dir(char *buf, size_t size)
{
    if (!buf || size == 0) return "";
    buf[0] = '\0';
    const char *env = getenv("WANWU_CACHE_DIR");
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n = -1;
    if (env)
        n = snprintf(buf, size, "%s", env);
    else if (xdg && xdg[0] == '/') /* the spec ignores relative ones */
        n = snprintf(buf, size, "%s/wanwu", xdg);
    else if (home && *home)
        n = snprintf(buf, size, "%s/.cache/wanwu", home);
    if (n < 0 || (size_t)n >= size) buf[0] = '\0';
    return buf;
}

int ww_weight_cache_key_init(ww_weight_cache_key *key, const char *dir, const char *model_path,
                             int isa, int input_size, const char *arch)
{
    if (!key || !dir || !*dir || !model_path) return 0;
    memset(key, 0, sizeof *key);
    build_id_search search = {.addr = (uintptr_t)&build_id_anchor};
    dl_iterate_phdr(module_build_id, &search);
    if (search.len == 0) return 0;

    char *real = realpath(model_path, NULL);
    if (!real) return 0;
    struct stat st;
    if (stat(real, &st) != 0 || !S_ISREG(st.st_mode)) {
        free(real);
        return 0;
    }
    int ok = 1;
    cache_identity id;
    memset(&id, 0, sizeof id); /* padding too: the identity is compared as bytes */
    id.format = WEIGHT_CACHE_FORMAT;
    id.build_id_len = (uint32_t)search.len;
    memcpy(id.build_id, search.id, search.len);
    id.dev = (uint64_t)st.st_dev;
    id.ino = (uint64_t)st.st_ino;
    id.size = (uint64_t)st.st_size;
    id.mtime_sec = (int64_t)st.st_mtim.tv_sec;
    id.mtime_nsec = (int64_t)st.st_mtim.tv_nsec;
    id.ctime_sec = (int64_t)st.st_ctim.tv_sec;
    id.ctime_nsec = (int64_t)st.st_ctim.tv_nsec;
    id.isa = isa;
    id.input_size = input_size;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    time_t changed = st.st_mtim.tv_sec > st.st_ctim.tv_sec ? st.st_mtim.tv_sec : st.st_ctim.tv_sec;
    key->recent = now.tv_sec - changed < WW_WEIGHT_CACHE_SETTLE_S + 1;
    if (arch && strlen(arch) >= sizeof id.arch) ok = 0;
    if (arch) snprintf(id.arch, sizeof id.arch, "%s", arch);
    memcpy(key->identity, &id, sizeof id);

    /* One entry per weight file path, instruction set, input size and
     * forced architecture, so a rebuilt program or an edited weight file
     * replaces its entry instead of adding one. The file name's stem is
     * the weight file's, for people looking in the directory. */
    uint64_t h = ww_fnv1a64(WW_FNV1A64_INIT, real, strlen(real) + 1);
    int32_t shape[2] = {isa, input_size};
    h = ww_fnv1a64(h, shape, sizeof shape);
    h = ww_fnv1a64(h, id.arch, strlen(id.arch));
    const char *base = strrchr(real, '/');
    base = base ? base + 1 : real;
    char stem[48];
    size_t len = 0;
    for (; base[len] && base[len] != '.' && len + 1 < sizeof stem; len++) {
        char c = base[len];
        int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
        stem[len] = plain ? c : '_';
    }
    stem[len] = '\0';
    free(real);
    int n = snprintf(key->dir, sizeof key->dir, "%s", dir);
    int m = snprintf(key->file, sizeof key->file, "%s/%s-%016llx.wwpack", dir, stem,
                     (unsigned long long)h);
    if (n < 0 || (size_t)n >= sizeof key->dir || m < 0 || (size_t)m >= sizeof key->file) ok = 0;
    return ok;
}

/* ---- reading --------------------------------------------------------- */

static int pread_all(int fd, void *buf, size_t n, off_t off)
{
    return ww_pread_full(fd, buf, n, off) == n;
}

static int pwrite_all(int fd, const void *buf, size_t n, off_t off)
{
    return ww_pwrite_full(fd, buf, n, off) == n;
}

static uint64_t header_hash(const cache_header *h)
{
    return ww_fnv1a64(WW_FNV1A64_INIT, h, offsetof(cache_header, header_hash));
}

/* Maps [offset, offset + bytes) of fd read-only at a huge-page-aligned
 * address, populated; NULL on failure. */
static void *map_aligned(int fd, uint64_t offset, size_t bytes)
{
    size_t span = bytes + (size_t)CACHE_DATA_ALIGN;
    unsigned char *reserve =
        mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (reserve == MAP_FAILED) return NULL;
    uintptr_t start = (uintptr_t)reserve;
    uintptr_t at = (start + CACHE_DATA_ALIGN - 1) & ~(uintptr_t)(CACHE_DATA_ALIGN - 1);
    void *map = mmap((void *)at, bytes, PROT_READ, MAP_PRIVATE | MAP_FIXED | MAP_POPULATE, fd,
                     (off_t)offset);
    if (map == MAP_FAILED) {
        munmap(reserve, span);
        return NULL;
    }
    size_t head = at - start, tail = span - head - bytes;
    if (head) munmap(reserve, head);
    if (tail) munmap((void *)(at + bytes), tail);
    return map;
}

ww_arena *ww_weight_cache_open(const ww_weight_cache_key *key)
{
    if (!key || !key->file[0]) return NULL;
    int fd = open(key->file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    ww_arena *arena = NULL;
    unsigned long long *log = NULL;
    cache_header h;
    struct stat st;
    /* someone else's file in the directory is not trusted with our weights */
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) goto done;
    if (!pread_all(fd, &h, sizeof h, 0)) goto done;
    if (memcmp(h.magic, CACHE_MAGIC, sizeof h.magic) != 0 || h.header_bytes != sizeof h ||
        h.byte_order != CACHE_BYTE_ORDER || h.header_hash != header_hash(&h) ||
        memcmp(h.identity, key->identity, sizeof h.identity) != 0)
        goto done;
    if (h.alloc_count == 0 || h.alloc_count > CACHE_MAX_ALLOCS || h.data_bytes == 0 ||
        h.data_bytes > SIZE_MAX - CACHE_DATA_ALIGN || h.data_offset % CACHE_DATA_ALIGN != 0 ||
        h.data_offset < sizeof h + h.alloc_count * sizeof *log ||
        (uint64_t)st.st_size != h.data_offset + h.data_bytes)
        goto done;
    log = malloc((size_t)h.alloc_count * sizeof *log);
    if (!log || !pread_all(fd, log, (size_t)h.alloc_count * sizeof *log, (off_t)sizeof h))
        goto done;
    if (ww_fnv1a64(WW_FNV1A64_INIT, log, (size_t)h.alloc_count * sizeof *log) != h.log_hash)
        goto done;
    uint64_t sum = 0;
    for (uint64_t i = 0; i < h.alloc_count; i++) {
        if (log[i] == 0 || log[i] % 64 != 0 || log[i] > h.data_bytes - sum) goto done;
        sum += log[i];
    }
    if (sum != h.data_bytes) goto done;
    void *map = map_aligned(fd, h.data_offset, (size_t)h.data_bytes);
    if (!map) goto done;
    arena = ww_arena_create_replay(map, (size_t)h.data_bytes, map, (size_t)h.data_bytes, log,
                                   (size_t)h.alloc_count);
    if (!arena) munmap(map, (size_t)h.data_bytes);
done:
    free(log);
    close(fd);
    return arena;
}

/* ---- writing --------------------------------------------------------- */

/* mkdir -p, new directories private to the user (as XDG asks). */
static int make_dirs(const char *dir)
{
    char path[WW_WEIGHT_CACHE_PATH_MAX];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof path) return 0;
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0') continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) return 0;
        path[i] = c;
    }
    struct stat st;
    return stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Temporary files of this entry that a killed or crashed load left
 * behind (`<entry>.tmp.XXXXXX`), older than STALE_TMP_S: no live writer
 * takes that long, and each holds a whole model's packed weights. */
#define STALE_TMP_S 600
static void remove_stale_tmp(const ww_weight_cache_key *key)
{
    const char *base = strrchr(key->file, '/');
    base = base ? base + 1 : key->file;
    char prefix[WW_WEIGHT_CACHE_PATH_MAX];
    int n = snprintf(prefix, sizeof prefix, "%s.tmp.", base);
    if (n < 0 || (size_t)n >= sizeof prefix) return;
    DIR *dir = opendir(key->dir);
    if (!dir) return;
    time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (strncmp(e->d_name, prefix, (size_t)n) != 0 || strlen(e->d_name) != (size_t)n + 6)
            continue;
        struct stat st;
        if (fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            st.st_uid == geteuid() && now - st.st_mtime > STALE_TMP_S)
            unlinkat(dirfd(dir), e->d_name, 0);
    }
    closedir(dir);
}

int ww_weight_cache_store(const ww_weight_cache_key *key, const ww_arena *arena)
{
    if (!key || !key->file[0] || key->recent || !arena || ww_arena_prefilled(arena)) return 0;
    size_t bytes = 0, count = 0;
    const void *data = ww_arena_contents(arena, &bytes);
    const unsigned long long *log = ww_arena_log(arena, &count);
    if (!data || !log || bytes == 0 || count == 0 || count > CACHE_MAX_ALLOCS) return 0;
    if (!make_dirs(key->dir)) return 0;
    remove_stale_tmp(key);

    cache_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CACHE_MAGIC, sizeof h.magic);
    h.header_bytes = sizeof h;
    h.byte_order = CACHE_BYTE_ORDER;
    memcpy(h.identity, key->identity, sizeof h.identity);
    h.alloc_count = count;
    uint64_t log_end = sizeof h + (uint64_t)count * sizeof *log;
    h.data_offset = (log_end + CACHE_DATA_ALIGN - 1) & ~(CACHE_DATA_ALIGN - 1);
    h.data_bytes = bytes;
    h.log_hash = ww_fnv1a64(WW_FNV1A64_INIT, log, count * sizeof *log);
    h.header_hash = header_hash(&h);

    /* a name of its own (mkostemp: mode 0600): loads on other threads or
     * in other processes may be writing the same entry */
    char tmp[WW_WEIGHT_CACHE_PATH_MAX + 32];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", key->file);
    if (n < 0 || (size_t)n >= sizeof tmp) return 0;
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) return 0;
    /* the gap between the log and the data stays a hole */
    int ok = pwrite_all(fd, &h, sizeof h, 0) &&
             pwrite_all(fd, log, count * sizeof *log, sizeof h) &&
             pwrite_all(fd, data, bytes, (off_t)h.data_offset) && fsync(fd) == 0;
    if (close(fd) != 0) ok = 0;
    /* synced before the rename: after a crash the name holds either the
     * old entry or the whole new one */
    if (ok) ok = rename(tmp, key->file) == 0;
    if (!ok) unlink(tmp);
    return ok;
}
