#include "format/pth.h"

#include "core/error.h"
#include "core/fileio.h"
#include "core/hash.h"
#include "core/prefault.h"
#include "format/pickle.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

/* The legacy format starts with this number pickled as a LONG1. */
static const uint8_t LEGACY_MAGIC[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
#define LEGACY_PROTOCOL_VERSION 1001
/* _rebuild_parameter(_rebuild_tensor_v2(...)) nests one call deep; allow a little more. */
#define MAX_REBUILD_DEPTH 4
#define MAX_BROADCAST_NUMEL ((uint64_t)1 << 26)

typedef struct storage_type {
    const char *global;
    const char *dtype_name;
    size_t elem_size;
    int supported;
    ww_dtype dtype;
} storage_type;

static const storage_type STORAGE_TYPES[] = {
    {"torch.FloatStorage", "float32", 4, 1, WW_DTYPE_F32},
    {"torch.HalfStorage", "float16", 2, 1, WW_DTYPE_F16},
    {"torch.BFloat16Storage", "bfloat16", 2, 1, WW_DTYPE_BF16},
    {"torch.DoubleStorage", "float64", 8, 1, WW_DTYPE_F64},
    {"torch.LongStorage", "int64", 8, 1, WW_DTYPE_I64},
    {"torch.IntStorage", "int32", 4, 0, WW_DTYPE_F32},
    {"torch.ShortStorage", "int16", 2, 0, WW_DTYPE_F32},
    {"torch.CharStorage", "int8", 1, 0, WW_DTYPE_F32},
    {"torch.ByteStorage", "uint8", 1, 0, WW_DTYPE_F32},
    {"torch.BoolStorage", "bool", 1, 0, WW_DTYPE_F32},
};
#define STORAGE_TYPE_COUNT (sizeof STORAGE_TYPES / sizeof STORAGE_TYPES[0])

#define REBUILD_TENSOR_V2 "torch._utils._rebuild_tensor_v2"
#define REBUILD_PARAMETER "torch._utils._rebuild_parameter"
#define REBUILD_PARAMETER_WITH_STATE "torch._utils._rebuild_parameter_with_state"
#define REBUILD_FROM_TYPE_V2 "torch._tensor._rebuild_from_type_v2"

static const char *const ALLOWED_GLOBALS[] = {
    "collections.OrderedDict",
    REBUILD_TENSOR_V2,
    REBUILD_PARAMETER,
    REBUILD_PARAMETER_WITH_STATE,
    REBUILD_FROM_TYPE_V2,
    "torch._tensor.Tensor",
    "torch.Tensor",
    "torch.nn.parameter.Parameter",
    "torch.FloatStorage",
    "torch.HalfStorage",
    "torch.BFloat16Storage",
    "torch.DoubleStorage",
    "torch.LongStorage",
    "torch.IntStorage",
    "torch.ShortStorage",
    "torch.CharStorage",
    "torch.ByteStorage",
    "torch.BoolStorage",
    NULL,
};

/* One storage (a flat typed buffer) named by its key in the file. */
typedef struct storage {
    char *key;
    const storage_type *type;
    uint64_t declared_numel; /* from the persistent id */
    int has_data;
    const uint8_t *bytes; /* into the file buffer (legacy) or `owned` (zip) */
    size_t nbytes;
    uint8_t *owned;
} storage;

/* What one persistent id designates: a whole storage or (old legacy files)
 * a view of `view_numel` elements starting at `view_offset`. */
typedef struct storage_ref {
    size_t storage_index;
    int is_view;
    uint64_t view_offset;
    uint64_t view_numel;
} storage_ref;

typedef struct loader {
    const uint8_t *file;
    size_t file_size;
    ww_pickle_heap heap;
    storage *storages;
    size_t storage_count, storage_cap;
    size_t *key_table; /* open addressing: storage index + 1, 0 = empty */
    size_t key_table_cap;
    storage_ref *refs;
    size_t ref_count, ref_cap;
    zip_t *zip;
    char *archive_dir; /* "archive" in archive/data.pkl */
    /* The file buffer outlives the state dict (ww_pth_load_file hands it
     * over): stored zip entries are read in place and contiguous float32
     * tensors point into it instead of being copied. */
    int borrow;
    struct zip_direct *direct; /* per zip index: where its data sits, see zip_direct_index */
    zip_int64_t direct_count;
    int direct_state; /* 0 not built, 1 built, -1 unusable (read through libzip) */
} loader;

/* A stored (uncompressed) zip entry located in the file buffer. */
typedef struct zip_direct {
    uint64_t data_offset; /* 0: not usable in place */
    uint64_t size;
} zip_direct;

static wanwu_status no_memory(wanwu_error *err)
{
    return ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory");
}

/* ---- storage table ---------------------------------------------------- */

static uint64_t hash_key(const char *key)
{
    return ww_fnv1a64(WW_FNV1A64_INIT, key, strlen(key));
}

static size_t *key_slot(const loader *L, const char *key)
{
    size_t mask = L->key_table_cap - 1;
    for (size_t i = (size_t)hash_key(key) & mask;; i = (i + 1) & mask) {
        size_t *slot = &L->key_table[i];
        if (*slot == 0 || strcmp(L->storages[*slot - 1].key, key) == 0) return slot;
    }
}

static storage *find_storage(const loader *L, const char *key)
{
    if (L->key_table_cap == 0) return NULL;
    size_t *slot = key_slot(L, key);
    return *slot ? &L->storages[*slot - 1] : NULL;
}

static wanwu_status grow_key_table(loader *L, wanwu_error *err)
{
    size_t cap = L->key_table_cap ? L->key_table_cap * 2 : 64;
    if (cap > SIZE_MAX / sizeof(size_t)) return no_memory(err);
    size_t *table = calloc(cap, sizeof *table);
    if (!table) return no_memory(err);
    free(L->key_table);
    L->key_table = table;
    L->key_table_cap = cap;
    for (size_t i = 0; i < L->storage_count; i++)
        *key_slot(L, L->storages[i].key) = i + 1;
    return WANWU_OK;
}

static wanwu_status add_storage(loader *L, const char *key, const storage_type *type,
                                uint64_t numel, size_t *index, wanwu_error *err)
{
    /* Keep the table at most half full so probing stays short. */
    if ((L->storage_count + 1) * 2 > L->key_table_cap) {
        wanwu_status st = grow_key_table(L, err);
        if (st != WANWU_OK) return st;
    }
    if (L->storage_count == L->storage_cap) {
        size_t cap = L->storage_cap ? L->storage_cap * 2 : 64;
        storage *s = realloc(L->storages, cap * sizeof *s);
        if (!s) return no_memory(err);
        L->storages = s;
        L->storage_cap = cap;
    }
    storage *s = &L->storages[L->storage_count];
    memset(s, 0, sizeof *s);
    s->key = strdup(key);
    if (!s->key) return no_memory(err);
    s->type = type;
    s->declared_numel = numel;
    *key_slot(L, key) = L->storage_count + 1;
    *index = L->storage_count++;
    return WANWU_OK;
}

static const storage_type *lookup_storage_type(const ww_pickle_value *global)
{
    for (size_t i = 0; i < STORAGE_TYPE_COUNT; i++)
        if (ww_pickle_is_global(global, STORAGE_TYPES[i].global)) return &STORAGE_TYPES[i];
    return NULL;
}

static int nonneg_int(const ww_pickle_value *v, uint64_t *out)
{
    if (!v || v->kind != WW_PICKLE_INT || v->as.integer < 0) return 0;
    *out = (uint64_t)v->as.integer;
    return 1;
}

/* Persistent ids of torch.save: ('storage', storage_type, key, location,
 * numel) in zip files, plus view_metadata (None or (view_key, offset,
 * numel)) in legacy files. */
static wanwu_status persistent_load(void *ctx, const ww_pickle_value *id, int64_t *tag,
                                    wanwu_error *err)
{
    loader *L = ctx;
    if (id->kind != WW_PICKLE_TUPLE || id->as.seq.count < 1)
        return ww_error_set(err, WANWU_ERR_FORMAT, "persistent id is a %s, not a tuple",
                            ww_pickle_kind_name(id->kind));
    ww_pickle_value *const *item = id->as.seq.items;
    size_t count = id->as.seq.count;
    if (!ww_pickle_is_str(item[0], "storage"))
        return ww_error_set(err, WANWU_ERR_UNSUPPORTED,
                            "persistent id of kind '%s' (only storages are supported)",
                            item[0]->kind == WW_PICKLE_STR ? item[0]->as.bytes.ptr : "?");
    if (count != 5 && count != 6)
        return ww_error_set(err, WANWU_ERR_FORMAT, "storage id has %zu fields, expected 5 or 6",
                            count);
    const storage_type *type = lookup_storage_type(item[1]);
    if (!type) return ww_error_set(err, WANWU_ERR_FORMAT, "storage id without a storage type");
    uint64_t numel;
    if (item[2]->kind != WW_PICKLE_STR || !nonneg_int(item[4], &numel))
        return ww_error_set(err, WANWU_ERR_FORMAT, "malformed storage id");
    const char *key = item[2]->as.bytes.ptr;

    storage_ref ref = {0};
    storage *s = find_storage(L, key);
    if (s) {
        if (s->type != type)
            return ww_error_set(err, WANWU_ERR_FORMAT, "storage '%s' is used as %s and as %s", key,
                                s->type->dtype_name, type->dtype_name);
        ref.storage_index = (size_t)(s - L->storages);
    } else {
        wanwu_status st = add_storage(L, key, type, numel, &ref.storage_index, err);
        if (st != WANWU_OK) return st;
    }
    if (count == 6 && item[5]->kind != WW_PICKLE_NONE) {
        const ww_pickle_value *view = item[5];
        if (view->kind != WW_PICKLE_TUPLE || view->as.seq.count != 3 ||
            !nonneg_int(view->as.seq.items[1], &ref.view_offset) ||
            !nonneg_int(view->as.seq.items[2], &ref.view_numel))
            return ww_error_set(err, WANWU_ERR_FORMAT, "malformed storage view in storage id");
        ref.is_view = 1;
    }

    if (L->ref_count == L->ref_cap) {
        size_t cap = L->ref_cap ? L->ref_cap * 2 : 64;
        storage_ref *refs = realloc(L->refs, cap * sizeof *refs);
        if (!refs) return no_memory(err);
        L->refs = refs;
        L->ref_cap = cap;
    }
    L->refs[L->ref_count] = ref;
    *tag = (int64_t)L->ref_count++;
    return WANWU_OK;
}

static void loader_free(loader *L)
{
    ww_pickle_heap_free(&L->heap);
    for (size_t i = 0; i < L->storage_count; i++) {
        free(L->storages[i].key);
        free(L->storages[i].owned);
    }
    free(L->storages);
    free(L->key_table);
    free(L->refs);
    free(L->archive_dir);
    free(L->direct);
    if (L->zip) zip_discard(L->zip);
    memset(L, 0, sizeof *L);
}

/* Runs the pickle at data[0..size), which sits at byte `offset` of `what`. */
static wanwu_status run_pickle(loader *L, const char *what, const uint8_t *data, size_t offset,
                               size_t size, ww_pickle_value **result, size_t *consumed,
                               wanwu_error *err)
{
    ww_pickle_options options = {0};
    options.name = what;
    options.base_offset = offset;
    options.allowed_globals = ALLOWED_GLOBALS;
    options.persistent_load = persistent_load;
    options.persistent_load_ctx = L;
    return ww_pickle_load(&L->heap, data, size, &options, result, consumed, err);
}

/* ---- zip format --------------------------------------------------------- */

static wanwu_status read_zip_entry(loader *L, zip_int64_t index, const char *entry_name,
                                   uint8_t **out, size_t *out_size, wanwu_error *err)
{
    zip_stat_t stat;
    zip_stat_init(&stat);
    if (zip_stat_index(L->zip, (zip_uint64_t)index, 0, &stat) != 0 || !(stat.valid & ZIP_STAT_SIZE))
        return ww_error_set(err, WANWU_ERR_FORMAT, "zip entry %s: cannot read its size: %s",
                            entry_name, zip_strerror(L->zip));
    /* torch stores entries uncompressed; a compressed one cannot expand past
     * deflate's ~1032:1 ratio, so larger claimed sizes mean corruption. */
    uint64_t limit = L->file_size;
    if ((stat.valid & ZIP_STAT_COMP_METHOD) && stat.comp_method != ZIP_CM_STORE)
        limit = (uint64_t)L->file_size * 1040u;
    if (stat.size > limit || stat.size >= SIZE_MAX)
        return ww_error_set(err, WANWU_ERR_FORMAT,
                            "zip entry %s claims %llu bytes in a %zu-byte file", entry_name,
                            (unsigned long long)stat.size, L->file_size);
    size_t size = (size_t)stat.size;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return no_memory(err);
    zip_file_t *zf = zip_fopen_index(L->zip, (zip_uint64_t)index, 0);
    if (!zf) {
        free(buf);
        return ww_error_set(err, WANWU_ERR_FORMAT, "zip entry %s: cannot open: %s", entry_name,
                            zip_strerror(L->zip));
    }
    size_t got = 0;
    while (got < size) {
        zip_int64_t n = zip_fread(zf, buf + got, size - got);
        if (n <= 0) break;
        got += (size_t)n;
    }
    /* One more read past the end makes libzip verify the CRC. */
    uint8_t extra;
    zip_int64_t tail = got == size ? zip_fread(zf, &extra, 1) : -1;
    if (got != size || tail != 0) {
        if (got == size)
            ww_error_set(err, WANWU_ERR_FORMAT, "zip entry %s is corrupt: %s", entry_name,
                         tail > 0 ? "longer than recorded" : zip_file_strerror(zf));
        else
            ww_error_set(err, WANWU_ERR_FORMAT,
                         "zip entry %s: read failed after %zu of %zu bytes: %s", entry_name, got,
                         size, zip_file_strerror(zf));
        zip_fclose(zf);
        free(buf);
        return err ? err->status : WANWU_ERR_FORMAT;
    }
    if (zip_fclose(zf) != 0) {
        free(buf);
        return ww_error_set(err, WANWU_ERR_FORMAT, "zip entry %s: read failed", entry_name);
    }
    *out = buf;
    *out_size = size;
    return WANWU_OK;
}

static uint64_t le_at(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Walks the zip central directory (already validated by libzip) to find
 * where each stored entry's bytes start, so they can be used in place.
 * Anything unexpected leaves the index unusable and storages are read
 * through libzip as before. Unlike zip_fread this does not check the
 * entries' CRC-32 (as torch.load(mmap=True) does not): the tensor bounds
 * checks still hold, a flipped data byte only changes a weight. */
static void zip_direct_index(loader *L)
{
    L->direct_state = -1;
    const uint8_t *f = L->file;
    size_t size = L->file_size;
    if (size < 22) return;
    size_t eocd = SIZE_MAX;
    size_t lowest = size - 22 > 65535 ? size - 22 - 65535 : 0;
    for (size_t pos = size - 22 + 1; pos-- > lowest;)
        if (le_at(f + pos, 4) == 0x06054b50u) {
            eocd = pos;
            break;
        }
    if (eocd == SIZE_MAX) return;
    uint64_t entries = le_at(f + eocd + 10, 2), cd_offset = le_at(f + eocd + 16, 4);
    if (entries == 0xffff || cd_offset == 0xffffffffu) {
        if (eocd < 20 || le_at(f + eocd - 20, 4) != 0x07064b50u) return;
        uint64_t z64 = le_at(f + eocd - 20 + 8, 8);
        if (z64 > size || size - z64 < 56 || le_at(f + z64, 4) != 0x06064b50u) return;
        entries = le_at(f + z64 + 32, 8);
        cd_offset = le_at(f + z64 + 48, 8);
    }
    zip_int64_t count = zip_get_num_entries(L->zip, 0);
    if (count < 0 || (uint64_t)count != entries || entries > size / 46) return;
    zip_direct *d = calloc((size_t)(entries ? entries : 1), sizeof *d);
    if (!d) return;
    uint64_t pos = cd_offset;
    for (uint64_t i = 0; i < entries; i++) {
        if (pos > size || size - pos < 46 || le_at(f + pos, 4) != 0x02014b50u) goto unusable;
        uint64_t flags = le_at(f + pos + 8, 2), method = le_at(f + pos + 10, 2);
        uint64_t comp = le_at(f + pos + 20, 4), plain = le_at(f + pos + 24, 4);
        uint64_t name_len = le_at(f + pos + 28, 2), extra_len = le_at(f + pos + 30, 2);
        uint64_t comment_len = le_at(f + pos + 32, 2), local = le_at(f + pos + 42, 4);
        uint64_t next = pos + 46 + name_len + extra_len + comment_len;
        if (next > size) goto unusable;
        /* zip64 extra field: the 64-bit values of the saturated fields, in order. */
        const uint8_t *x = f + pos + 46 + name_len, *x_end = x + extra_len;
        while (x_end - x >= 4) {
            uint64_t id = le_at(x, 2), len = le_at(x + 2, 2);
            if ((uint64_t)(x_end - x - 4) < len) goto unusable;
            if (id == 1) {
                const uint8_t *v = x + 4, *v_end = v + len;
                if (plain == 0xffffffffu) {
                    if (v_end - v < 8) goto unusable;
                    plain = le_at(v, 8);
                    v += 8;
                }
                if (comp == 0xffffffffu) {
                    if (v_end - v < 8) goto unusable;
                    comp = le_at(v, 8);
                    v += 8;
                }
                if (local == 0xffffffffu) {
                    if (v_end - v < 8) goto unusable;
                    local = le_at(v, 8);
                }
            }
            x += 4 + len;
        }
        if (method == 0 && (flags & 1) == 0 && comp == plain && local <= size &&
            size - local >= 30 && le_at(f + local, 4) == 0x04034b50u) {
            uint64_t data = local + 30 + le_at(f + local + 26, 2) + le_at(f + local + 28, 2);
            if (data <= size && size - data >= comp) {
                d[i].data_offset = data;
                d[i].size = comp;
            }
        }
        pos = next;
    }
    L->direct = d;
    L->direct_count = (zip_int64_t)entries;
    L->direct_state = 1;
    return;
unusable:
    free(d);
}

static wanwu_status load_zip_storage(loader *L, storage *s, wanwu_error *err)
{
    char entry[512];
    int n = snprintf(entry, sizeof entry, "%s/data/%s", L->archive_dir, s->key);
    if (n < 0 || (size_t)n >= sizeof entry)
        return ww_error_set(err, WANWU_ERR_FORMAT, "storage key '%.40s...' is too long", s->key);
    zip_int64_t index = zip_name_locate(L->zip, entry, 0);
    if (index < 0) return ww_error_set(err, WANWU_ERR_FORMAT, "zip entry %s missing", entry);
    if (L->borrow && L->direct_state == 0) zip_direct_index(L);
    if (L->direct_state == 1 && index < L->direct_count && L->direct[index].data_offset) {
        zip_stat_t stat;
        zip_stat_init(&stat);
        if (zip_stat_index(L->zip, (zip_uint64_t)index, 0, &stat) == 0 &&
            (stat.valid & ZIP_STAT_SIZE) && (stat.valid & ZIP_STAT_COMP_METHOD) &&
            stat.comp_method == ZIP_CM_STORE && stat.size == L->direct[index].size &&
            stat.size < SIZE_MAX) {
            s->bytes = L->file + L->direct[index].data_offset;
            s->nbytes = (size_t)stat.size;
            s->has_data = 1;
            return WANWU_OK;
        }
    }
    wanwu_status st = read_zip_entry(L, index, entry, &s->owned, &s->nbytes, err);
    if (st != WANWU_OK) return st;
    s->bytes = s->owned;
    s->has_data = 1;
    return WANWU_OK;
}

/* Finds "<dir>/data.pkl" (the directory name varies with the saved file's name). */
static wanwu_status find_data_pkl(loader *L, zip_int64_t *index, wanwu_error *err)
{
    zip_int64_t count = zip_get_num_entries(L->zip, 0);
    for (zip_int64_t i = 0; i < count; i++) {
        const char *name = zip_get_name(L->zip, (zip_uint64_t)i, 0);
        if (!name) continue;
        const char *slash = strchr(name, '/');
        if (!slash || slash == name || strcmp(slash, "/data.pkl") != 0) continue;
        L->archive_dir = strndup(name, (size_t)(slash - name));
        if (!L->archive_dir) return no_memory(err);
        *index = i;
        return WANWU_OK;
    }
    return ww_error_set(err, WANWU_ERR_FORMAT,
                        "zip archive has no <dir>/data.pkl entry (not a torch.save file)");
}

static wanwu_status check_zip_byteorder(loader *L, wanwu_error *err)
{
    char entry[300];
    snprintf(entry, sizeof entry, "%s/byteorder", L->archive_dir);
    zip_int64_t index = zip_name_locate(L->zip, entry, 0);
    if (index < 0) return WANWU_OK; /* older files: always little-endian */
    uint8_t *text;
    size_t len;
    wanwu_status st = read_zip_entry(L, index, entry, &text, &len, err);
    if (st != WANWU_OK) return st;
    int big = len >= 3 && memcmp(text, "big", 3) == 0;
    free(text);
    if (big)
        return ww_error_set(err, WANWU_ERR_UNSUPPORTED, "big-endian tensor data is not supported");
    return WANWU_OK;
}

static wanwu_status parse_zip(loader *L, ww_pickle_value **top, wanwu_error *err)
{
    zip_error_t zerr;
    zip_error_init(&zerr);
    zip_source_t *src = zip_source_buffer_create(L->file, L->file_size, 0, &zerr);
    if (src) {
        L->zip = zip_open_from_source(src, ZIP_RDONLY, &zerr);
        if (!L->zip) zip_source_free(src);
    }
    if (!L->zip) {
        ww_error_set(err, WANWU_ERR_FORMAT, "unreadable zip archive (truncated or corrupt?): %s",
                     zip_error_strerror(&zerr));
        zip_error_fini(&zerr);
        return err ? err->status : WANWU_ERR_FORMAT;
    }
    zip_error_fini(&zerr);

    zip_int64_t pkl_index = -1;
    wanwu_status st = find_data_pkl(L, &pkl_index, err);
    if (st == WANWU_OK) st = check_zip_byteorder(L, err);
    if (st != WANWU_OK) return st;
    char pkl_name[300];
    snprintf(pkl_name, sizeof pkl_name, "%s/data.pkl", L->archive_dir);
    uint8_t *pkl;
    size_t pkl_size, consumed;
    if ((st = read_zip_entry(L, pkl_index, pkl_name, &pkl, &pkl_size, err)) != WANWU_OK) return st;
    st = run_pickle(L, pkl_name, pkl, 0, pkl_size, top, &consumed, err);
    free(pkl);
    return st;
}

/* ---- legacy format ------------------------------------------------------ */

static int is_legacy_magic(const ww_pickle_value *v)
{
    return v->kind == WW_PICKLE_BIGINT && v->as.bytes.len == sizeof LEGACY_MAGIC &&
           memcmp(v->as.bytes.ptr, LEGACY_MAGIC, sizeof LEGACY_MAGIC) == 0;
}

/* After the storage-key list: for each key, an 8-byte little-endian element
 * count and the raw bytes. */
static wanwu_status locate_legacy_storages(loader *L, const ww_pickle_value *keys, size_t pos,
                                           wanwu_error *err)
{
    if (keys->kind != WW_PICKLE_LIST)
        return ww_error_set(err, WANWU_ERR_FORMAT, "storage key list is a %s",
                            ww_pickle_kind_name(keys->kind));
    for (size_t i = 0; i < keys->as.seq.count; i++) {
        const ww_pickle_value *key = keys->as.seq.items[i];
        if (key->kind != WW_PICKLE_STR)
            return ww_error_set(err, WANWU_ERR_FORMAT, "storage key %zu is a %s", i,
                                ww_pickle_kind_name(key->kind));
        storage *s = find_storage(L, key->as.bytes.ptr);
        if (!s)
            return ww_error_set(err, WANWU_ERR_FORMAT, "storage '%s' is listed but never used",
                                key->as.bytes.ptr);
        if (s->has_data)
            return ww_error_set(err, WANWU_ERR_FORMAT, "storage '%s' is listed twice", s->key);
        if (L->file_size - pos < 8)
            return ww_error_set(err, WANWU_ERR_FORMAT,
                                "storage '%s': size field at byte %zu is past the end of the "
                                "file (%zu bytes; truncated?)",
                                s->key, pos, L->file_size);
        uint64_t count = 0;
        for (int b = 0; b < 8; b++)
            count |= (uint64_t)L->file[pos + b] << (8 * b);
        pos += 8;
        if (count != s->declared_numel)
            return ww_error_set(err, WANWU_ERR_FORMAT,
                                "storage '%s': file holds %llu elements, pickle declares %llu",
                                s->key, (unsigned long long)count,
                                (unsigned long long)s->declared_numel);
        size_t available = L->file_size - pos;
        if (count > available / s->type->elem_size)
            return ww_error_set(err, WANWU_ERR_FORMAT,
                                "storage '%s': %llu elements of %zu bytes from byte %zu run past "
                                "the end of the file (%zu bytes; truncated?)",
                                s->key, (unsigned long long)count, s->type->elem_size, pos,
                                L->file_size);
        s->bytes = L->file + pos;
        s->nbytes = (size_t)count * s->type->elem_size;
        s->has_data = 1;
        pos += s->nbytes;
    }
    return WANWU_OK;
}

static wanwu_status parse_legacy(loader *L, ww_pickle_value **top, wanwu_error *err)
{
    static const char *const stage_names[] = {"magic number", "protocol version", "system info",
                                              "object", "storage key list"};
    ww_pickle_value *parts[5];
    size_t pos = 0;
    for (int i = 0; i < 5; i++) {
        char what[64];
        snprintf(what, sizeof what, "legacy %s", stage_names[i]);
        size_t consumed;
        wanwu_status st =
            run_pickle(L, what, L->file + pos, pos, L->file_size - pos, &parts[i], &consumed, err);
        if (st != WANWU_OK) return st;
        pos += consumed;
        if (i == 0 && !is_legacy_magic(parts[0]))
            return ww_error_set(err, WANWU_ERR_FORMAT,
                                "not a PyTorch file (no zip signature or pickle magic number)");
        if (i == 1 &&
            (parts[1]->kind != WW_PICKLE_INT || parts[1]->as.integer != LEGACY_PROTOCOL_VERSION))
            return ww_error_set(err, WANWU_ERR_UNSUPPORTED,
                                "legacy format protocol version is not %d",
                                LEGACY_PROTOCOL_VERSION);
        if (i == 2) {
            const ww_pickle_value *little = ww_pickle_dict_get(parts[2], "little_endian");
            if (little && little->kind == WW_PICKLE_BOOL && !little->as.integer)
                return ww_error_set(err, WANWU_ERR_UNSUPPORTED,
                                    "big-endian tensor data is not supported");
        }
    }
    *top = parts[3];
    return locate_legacy_storages(L, parts[4], pos, err);
}

/* ---- tensors ------------------------------------------------------------- */

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    uint32_t bits;
    if (exponent == 0x1f) {
        bits = sign | 0x7f800000u | (mantissa << 13); /* inf / NaN */
    } else if (exponent != 0) {
        bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
    } else {
        /* Zero or subnormal: mantissa x 2^-24, exact in float32. */
        float magnitude = (float)mantissa * 5.9604644775390625e-08f;
        return sign ? -magnitude : magnitude;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static uint64_t load_le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Converts `count` elements read at src[first + k * step] into dst. */
static void convert_run(ww_dtype dtype, const uint8_t *src, uint64_t first, uint64_t step,
                        size_t count, float *dst_f32, int64_t *dst_i64)
{
    for (size_t k = 0; k < count; k++) {
        uint64_t index = first + k * step;
        switch (dtype) {
        case WW_DTYPE_F32: {
            uint32_t bits = (uint32_t)load_le(src + index * 4, 4);
            memcpy(&dst_f32[k], &bits, sizeof bits);
            break;
        }
        case WW_DTYPE_F16: dst_f32[k] = half_to_float((uint16_t)load_le(src + index * 2, 2)); break;
        case WW_DTYPE_BF16: {
            uint32_t bits = (uint32_t)load_le(src + index * 2, 2) << 16;
            memcpy(&dst_f32[k], &bits, sizeof bits);
            break;
        }
        case WW_DTYPE_F64: {
            uint64_t bits = load_le(src + index * 8, 8);
            double d;
            memcpy(&d, &bits, sizeof d);
            dst_f32[k] = (float)d;
            break;
        }
        case WW_DTYPE_I64: dst_i64[k] = (int64_t)load_le(src + index * 8, 8); break;
        }
    }
}

static int mul_overflows(uint64_t a, uint64_t b, uint64_t *out)
{
    if (a != 0 && b > UINT64_MAX / a) return 1;
    *out = a * b;
    return 0;
}

static int add_overflows(uint64_t a, uint64_t b, uint64_t *out)
{
    if (b > UINT64_MAX - a) return 1;
    *out = a + b;
    return 0;
}

static int read_dims(const ww_pickle_value *tuple, int64_t *dims, int *ndim)
{
    if (!tuple || tuple->kind != WW_PICKLE_TUPLE || tuple->as.seq.count > WW_MAX_DIMS) return 0;
    for (size_t i = 0; i < tuple->as.seq.count; i++) {
        const ww_pickle_value *d = tuple->as.seq.items[i];
        if (d->kind != WW_PICKLE_INT || d->as.integer < 0) return 0;
        dims[i] = d->as.integer;
    }
    *ndim = (int)tuple->as.seq.count;
    return 1;
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
 * backward_hooks[, metadata]): copies the (possibly strided) view into a
 * contiguous buffer. */
static wanwu_status rebuild_tensor_v2(loader *L, const char *name, const ww_pickle_value *args,
                                      ww_named_tensor *t, wanwu_error *err)
{
    if (args->as.seq.count < 6 || args->as.seq.count > 7)
        return ww_error_set(err, WANWU_ERR_FORMAT,
                            "tensor %s: _rebuild_tensor_v2 takes %zu "
                            "arguments, expected 6 or 7",
                            name, args->as.seq.count);
    ww_pickle_value *const *arg = args->as.seq.items;
    if (arg[0]->kind != WW_PICKLE_PERSID || arg[0]->as.persid.tag < 0 ||
        (uint64_t)arg[0]->as.persid.tag >= L->ref_count)
        return ww_error_set(err, WANWU_ERR_FORMAT, "tensor %s: first argument is not a storage",
                            name);
    const storage_ref *ref = &L->refs[arg[0]->as.persid.tag];
    storage *s = &L->storages[ref->storage_index];
    if (!s->type->supported)
        return ww_error_set(err, WANWU_ERR_UNSUPPORTED,
                            "tensor %s: unsupported dtype %s (%s); wanwu reads float32, "
                            "float16, bfloat16, float64 and int64",
                            name, s->type->dtype_name, s->type->global);
    uint64_t offset;
    int64_t shape[WW_MAX_DIMS], stride[WW_MAX_DIMS];
    int ndim, stride_ndim;
    if (!nonneg_int(arg[1], &offset))
        return ww_error_set(err, WANWU_ERR_FORMAT, "tensor %s: bad storage offset", name);
    if (arg[2]->kind == WW_PICKLE_TUPLE && arg[2]->as.seq.count > WW_MAX_DIMS)
        return ww_error_set(err, WANWU_ERR_UNSUPPORTED, "tensor %s has %zu dimensions (max %d)",
                            name, arg[2]->as.seq.count, WW_MAX_DIMS);
    if (!read_dims(arg[2], shape, &ndim) || !read_dims(arg[3], stride, &stride_ndim) ||
        ndim != stride_ndim)
        return ww_error_set(err, WANWU_ERR_FORMAT, "tensor %s: malformed size or stride", name);

    size_t elem = s->type->elem_size;
    uint64_t numel = 1, last_index = offset;
    for (int i = 0; i < ndim; i++)
        if (mul_overflows(numel, (uint64_t)shape[i], &numel))
            return ww_error_set(err, WANWU_ERR_FORMAT, "tensor %s: element count overflows", name);
    if (numel > SIZE_MAX / sizeof(double))
        return ww_error_set(err, WANWU_ERR_LIMIT, "tensor %s: %llu elements is too many", name,
                            (unsigned long long)numel);
    for (int i = 0; numel > 0 && i < ndim; i++) {
        uint64_t span;
        if (mul_overflows((uint64_t)shape[i] - 1, (uint64_t)stride[i], &span) ||
            add_overflows(last_index, span, &last_index))
            return ww_error_set(err, WANWU_ERR_FORMAT, "tensor %s: strides overflow", name);
    }

    if (!s->has_data) {
        if (!L->zip)
            return ww_error_set(err, WANWU_ERR_FORMAT,
                                "tensor %s: storage '%s' has no data in the file", name, s->key);
        wanwu_status st = load_zip_storage(L, s, err);
        if (st != WANWU_OK) return ww_error_prefix(err, "tensor %s: ", name);
    }
    uint64_t storage_numel = s->nbytes / elem, base = 0, available = storage_numel;
    if (ref->is_view) {
        uint64_t view_end;
        if (add_overflows(ref->view_offset, ref->view_numel, &view_end) || view_end > storage_numel)
            return ww_error_set(err, WANWU_ERR_FORMAT,
                                "tensor %s: storage view of '%s' exceeds its %llu elements", name,
                                s->key, (unsigned long long)storage_numel);
        base = ref->view_offset;
        available = ref->view_numel;
    }
    /* Zero strides (expanded tensors) can describe far more elements than the
     * file holds; cap what such a view may make us allocate. */
    if (numel > available && numel > MAX_BROADCAST_NUMEL)
        return ww_error_set(err, WANWU_ERR_LIMIT,
                            "tensor %s: %llu elements from a storage of %llu is too large", name,
                            (unsigned long long)numel, (unsigned long long)available);
    if (numel > 0 && last_index >= available) {
        uint64_t end_elem, end_byte;
        if (add_overflows(base, last_index, &end_elem) ||
            mul_overflows(end_elem + 1, elem, &end_byte))
            end_byte = UINT64_MAX;
        return ww_error_set(err, WANWU_ERR_FORMAT,
                            "tensor %s: storage ends at byte %llu, file has %zu (storage '%s')",
                            name, (unsigned long long)end_byte, s->nbytes, s->key);
    }

    t->stored_dtype = s->type->dtype;
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof shape[0]);
    t->numel = (size_t)numel;

    /* Collapse trailing dimensions that are laid out contiguously into
     * one run; walk the remaining outer dimensions with an odometer. */
    const uint8_t *src = s->bytes + base * elem;
    int run_dim = ndim; /* dims [run_dim, ndim) form one run of `run` elements */
    uint64_t run = 1, run_step = 1;
    while (run_dim > 0) {
        int d = run_dim - 1;
        if (shape[d] == 1 || (uint64_t)stride[d] == run * run_step) {
            run *= (uint64_t)shape[d];
        } else if (run == 1) { /* a single strided dimension still makes a run */
            run = (uint64_t)shape[d];
            run_step = (uint64_t)stride[d];
        } else {
            break;
        }
        run_dim = d;
    }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* Contiguous float32 in a buffer that outlives the state dict: use it in place. */
    if (L->borrow && t->stored_dtype == WW_DTYPE_F32 && numel > 0 && run_dim == 0 &&
        (run_step == 1 || run == 1) && (uintptr_t)(src + offset * 4) % sizeof(float) == 0) {
        t->data = (float *)(uintptr_t)(src + offset * 4);
        t->borrowed = 1;
        return WANWU_OK;
    }
#endif
    size_t alloc_count = numel ? (size_t)numel : 1;
    if (t->stored_dtype == WW_DTYPE_I64)
        t->i64 = malloc(alloc_count * sizeof *t->i64);
    else
        t->data = malloc(alloc_count * sizeof *t->data);
    if (!t->i64 && !t->data) return no_memory(err);
    if (numel == 0) return WANWU_OK;
    int64_t counter[WW_MAX_DIMS] = {0};
    uint64_t start = offset;
    for (size_t done = 0; done < numel; done += (size_t)run) {
        convert_run(t->stored_dtype, src, start, run_step, (size_t)run,
                    t->data ? t->data + done : NULL, t->i64 ? t->i64 + done : NULL);
        for (int d = run_dim - 1; d >= 0; d--) { /* advance the odometer */
            start += (uint64_t)stride[d];
            if (++counter[d] < shape[d]) break;
            start -= (uint64_t)stride[d] * (uint64_t)shape[d];
            counter[d] = 0;
        }
    }
    return WANWU_OK;
}

static int is_tensor_builder(const ww_pickle_value *callable)
{
    return ww_pickle_is_global(callable, REBUILD_TENSOR_V2) ||
           ww_pickle_is_global(callable, REBUILD_PARAMETER) ||
           ww_pickle_is_global(callable, REBUILD_PARAMETER_WITH_STATE) ||
           ww_pickle_is_global(callable, REBUILD_FROM_TYPE_V2);
}

static int is_tensor_value(const ww_pickle_value *v)
{
    return v->kind == WW_PICKLE_CALL && is_tensor_builder(v->as.call.callable);
}

static wanwu_status rebuild(loader *L, const char *name, const ww_pickle_value *callable,
                            const ww_pickle_value *args, int depth, ww_named_tensor *t,
                            wanwu_error *err)
{
    if (depth > MAX_REBUILD_DEPTH)
        return ww_error_set(err, WANWU_ERR_FORMAT, "tensor %s: rebuild calls nested too deeply",
                            name);
    if (args->kind != WW_PICKLE_TUPLE)
        return ww_error_set(err, WANWU_ERR_FORMAT, "tensor %s: arguments are not a tuple", name);
    size_t argc = args->as.seq.count;
    ww_pickle_value *const *arg = args->as.seq.items;
    if (ww_pickle_is_global(callable, REBUILD_TENSOR_V2))
        return rebuild_tensor_v2(L, name, args, t, err);
    if (ww_pickle_is_global(callable, REBUILD_PARAMETER) ||
        ww_pickle_is_global(callable, REBUILD_PARAMETER_WITH_STATE)) {
        /* (data, requires_grad, backward_hooks[, state]): the tensor is `data`. */
        if (argc < 1 || arg[0]->kind != WW_PICKLE_CALL)
            return ww_error_set(err, WANWU_ERR_FORMAT, "tensor %s: parameter without data", name);
        return rebuild(L, name, arg[0]->as.call.callable, arg[0]->as.call.args, depth + 1, t, err);
    }
    if (ww_pickle_is_global(callable, REBUILD_FROM_TYPE_V2)) {
        /* (func, new_type, args, state): accepted when the type is a plain tensor. */
        if (argc != 4 || arg[0]->kind != WW_PICKLE_GLOBAL)
            return ww_error_set(err, WANWU_ERR_FORMAT,
                                "tensor %s: malformed "
                                "_rebuild_from_type_v2 call",
                                name);
        if (!ww_pickle_is_global(arg[1], "torch._tensor.Tensor") &&
            !ww_pickle_is_global(arg[1], "torch.Tensor") &&
            !ww_pickle_is_global(arg[1], "torch.nn.parameter.Parameter"))
            return ww_error_set(err, WANWU_ERR_UNSUPPORTED,
                                "tensor %s: tensor subclasses are not supported", name);
        return rebuild(L, name, arg[0], arg[2], depth + 1, t, err);
    }
    return ww_error_set(err, WANWU_ERR_UNSUPPORTED, "tensor %s: built by unsupported '%s'", name,
                        callable->kind == WW_PICKLE_GLOBAL ? callable->as.bytes.ptr : "?");
}

/* The state dict itself, or the one a checkpoint holds under "state_dict"
 * or "model". */
static wanwu_status select_state_dict(const ww_pickle_value *top, const ww_pickle_value **out,
                                      wanwu_error *err)
{
    if (is_tensor_value(top))
        return ww_error_set(err, WANWU_ERR_FORMAT,
                            "the file holds a single tensor, not a state dict (a dict of tensors)");
    if (top->kind != WW_PICKLE_DICT)
        return ww_error_set(err, WANWU_ERR_FORMAT,
                            "the file holds a value of type %s, not a state dict (a dict of "
                            "tensors)",
                            ww_pickle_kind_name(top->kind));
    static const char *const wrappers[] = {"state_dict", "model"};
    for (size_t i = 0; i < 2; i++) {
        const ww_pickle_value *inner = ww_pickle_dict_get(top, wrappers[i]);
        if (inner && inner->kind == WW_PICKLE_DICT) {
            *out = inner;
            return WANWU_OK;
        }
    }
    *out = top;
    return WANWU_OK;
}

static void describe_keys(const ww_pickle_value *dict, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i + 1 < dict->as.seq.count && i < 16; i += 2) {
        const ww_pickle_value *k = dict->as.seq.items[i];
        int n = snprintf(buf + used, cap - used, "%s'%.40s'", used ? ", " : "",
                         k->kind == WW_PICKLE_STR ? k->as.bytes.ptr : "?");
        if (n < 0 || (size_t)n >= cap - used) break;
        used += (size_t)n;
    }
}

static wanwu_status build_state_dict(loader *L, const ww_pickle_value *top, ww_state_dict *out,
                                     wanwu_error *err)
{
    const ww_pickle_value *dict = NULL;
    wanwu_status st = select_state_dict(top, &dict, err);
    if (st != WANWU_OK) return st;
    size_t entries = dict->as.seq.count / 2, tensors = 0;
    for (size_t i = 0; i < entries; i++) {
        const ww_pickle_value *key = dict->as.seq.items[2 * i];
        if (key->kind == WW_PICKLE_STR && is_tensor_value(dict->as.seq.items[2 * i + 1])) tensors++;
    }
    if (tensors == 0) {
        char keys[200];
        describe_keys(dict, keys, sizeof keys);
        return ww_error_set(err, WANWU_ERR_FORMAT, "no tensors found in the state dict (keys: %s)",
                            keys[0] ? keys : "none");
    }
    out->tensors = calloc(tensors, sizeof *out->tensors);
    if (!out->tensors) return no_memory(err);
    for (size_t i = 0; i < entries; i++) {
        const ww_pickle_value *key = dict->as.seq.items[2 * i];
        const ww_pickle_value *value = dict->as.seq.items[2 * i + 1];
        if (key->kind != WW_PICKLE_STR || !is_tensor_value(value)) continue;
        ww_named_tensor *t = &out->tensors[out->count++];
        t->name = strdup(key->as.bytes.ptr);
        if (!t->name) return no_memory(err);
        st = rebuild(L, t->name, value->as.call.callable, value->as.call.args, 0, t, err);
        if (st != WANWU_OK) return st;
    }
    return WANWU_OK;
}

/* ---- public API ----------------------------------------------------------- */

void ww_state_dict_free(ww_state_dict *sd)
{
    if (!sd) return;
    for (size_t i = 0; i < sd->count; i++) {
        free(sd->tensors[i].name);
        if (!sd->tensors[i].borrowed) free(sd->tensors[i].data);
        free(sd->tensors[i].i64);
    }
    free(sd->tensors);
    sd->tensors = NULL;
    sd->count = 0;
    ww_file_buffer_release(sd->file_buffer, sd->file_buffer_size, sd->file_buffer_mapped);
    sd->file_buffer = NULL;
    sd->file_buffer_size = 0;
    sd->file_buffer_mapped = 0;
}

void ww_file_buffer_release(void *buffer, size_t size, int mapped)
{
    if (mapped)
        munmap(buffer, size);
    else
        free(buffer);
}

const ww_named_tensor *ww_state_dict_find(const ww_state_dict *sd, const char *name)
{
    if (!sd || !name) return NULL;
    for (size_t i = 0; i < sd->count; i++)
        if (strcmp(sd->tensors[i].name, name) == 0) return &sd->tensors[i];
    return NULL;
}

static int looks_like_zip(const uint8_t *data, size_t size)
{
    return size >= 4 && data[0] == 'P' && data[1] == 'K' &&
           ((data[2] == 3 && data[3] == 4) || (data[2] == 5 && data[3] == 6));
}

/* A binary pickle (PROTO 2..5): the legacy format's magic number is checked when it is read. */
static int looks_like_legacy(const uint8_t *data, size_t size)
{
    return size >= 2 && data[0] == 0x80 && data[1] >= 2 && data[1] <= 5;
}

static wanwu_status load_buffer(const uint8_t *data, size_t size, const char *name, int borrow,
                                ww_state_dict *out, wanwu_error *err)
{
    const char *label = name ? name : "<memory>";
    if (!out) {
        return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "%s: no output state dict", label);
    }
    out->tensors = NULL;
    out->count = 0;
    out->file_buffer = NULL;
    out->file_buffer_size = 0;
    out->file_buffer_mapped = 0;
    ww_error_clear(err);
    if (!data && size > 0)
        return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "%s: no data", label);

    loader L = {0};
    L.file = data;
    L.file_size = size;
    L.borrow = borrow;
    ww_pickle_value *top = NULL;
    wanwu_status st;
    if (size == 0)
        st = ww_error_set(err, WANWU_ERR_FORMAT, "not a PyTorch file (the file is empty)");
    else if (looks_like_zip(data, size))
        st = parse_zip(&L, &top, err);
    else if (looks_like_legacy(data, size))
        st = parse_legacy(&L, &top, err);
    else
        st = ww_error_set(err, WANWU_ERR_FORMAT,
                          "not a PyTorch file (no zip signature or pickle magic number)");
    if (st == WANWU_OK) st = build_state_dict(&L, top, out, err);
    loader_free(&L);
    if (st != WANWU_OK) {
        ww_state_dict_free(out);
        ww_error_prefix(err, "%s: ", label);
    }
    return st;
}

wanwu_status ww_pth_load_memory(const uint8_t *data, size_t size, const char *name,
                                ww_state_dict *out, wanwu_error *err)
{
    return load_buffer(data, size, name, 0, out, err);
}

/* One piece of a file read: [off, off + len) into buf, after faulting in
 * [buf, buf + fault_len). */
typedef struct file_part {
    int fd;
    uint8_t *buf;
    size_t len, fault_len;
    off_t off;
    size_t got; /* bytes read; < len on error or a shorter file */
    int err;    /* errno of a failed read, else 0 */
} file_part;

static void *read_file_part(void *arg)
{
    file_part *p = arg;
    ww_populate(p->buf, p->fault_len);
    p->got = ww_pread_full(p->fd, p->buf, p->len, p->off);
    if (p->got < p->len) p->err = errno; /* 0: the file ended early */
    return NULL;
}

/* Files at least this large are read by two threads, each faulting in and
 * filling one half: both the page clearing and the kernel's copy out of
 * the page cache are CPU-bound (ResNet-18's 47 MB: ~15 ms on one core). */
#define PARALLEL_READ_MIN ((size_t)16 << 20)
#define READ_SPLIT_ALIGN ((size_t)2 << 20) /* halves on huge-page boundaries */

/* Reads all `size` bytes of fd into buf (from ww_alloc_unfaulted) in one
 * or two parts; returns the number of parts, each with its outcome. */
static int read_file_parts(int fd, uint8_t *buf, size_t size, file_part parts[2])
{
    size_t alloc_end =
        size >= READ_SPLIT_ALIGN ? (size + READ_SPLIT_ALIGN - 1) & ~(READ_SPLIT_ALIGN - 1) : size;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t half = (size / 2) & ~(READ_SPLIT_ALIGN - 1);
    int nparts = size >= PARALLEL_READ_MIN && cpus >= 2 && half > 0 ? 2 : 1;
    size_t split = nparts == 2 ? half : size;
    parts[0] = (file_part){fd, buf, split, nparts == 2 ? split : alloc_end, 0, 0, 0};
    if (nparts == 1) {
        read_file_part(&parts[0]);
        return 1;
    }
    parts[1] = (file_part){fd, buf + split, size - split, alloc_end - split, (off_t)split, 0, 0};
    pthread_t helper;
    int threaded = pthread_create(&helper, NULL, read_file_part, &parts[1]) == 0;
    read_file_part(&parts[0]);
    if (threaded)
        pthread_join(helper, NULL);
    else
        read_file_part(&parts[1]); /* no thread to be had: read it here */
    return 2;
}

/* Opens `path` for reading and checks it is a regular file of a size
 * that fits in memory; on success *fd and *size are set. */
static wanwu_status open_weight_file(const char *path, int *fd_out, size_t *size_out,
                                     wanwu_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return ww_error_set(err, e == ENOENT ? WANWU_ERR_NOT_FOUND : WANWU_ERR_IO,
                            "%s: cannot open: %s", path, strerror(e));
    }
    struct stat st_buf;
    if (fstat(fd, &st_buf) != 0 || !S_ISREG(st_buf.st_mode)) {
        close(fd);
        return ww_error_set(err, WANWU_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st_buf.st_size >= SIZE_MAX) {
        close(fd);
        return ww_error_set(err, WANWU_ERR_LIMIT, "%s: file too large", path);
    }
    *fd_out = fd;
    *size_out = (size_t)st_buf.st_size;
    return WANWU_OK;
}

/* The start of both file loaders: *out emptied, arguments checked, the
 * file opened. */
static wanwu_status start_file_load(const char *path, ww_state_dict *out, const char *loader_name,
                                    int *fd, size_t *size, wanwu_error *err)
{
    if (out) {
        out->tensors = NULL;
        out->count = 0;
        out->file_buffer = NULL;
        out->file_buffer_size = 0;
        out->file_buffer_mapped = 0;
    }
    if (!path || !out)
        return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "%s: missing argument", loader_name);
    return open_weight_file(path, fd, size, err);
}

wanwu_status ww_pth_map_file(const char *path, ww_state_dict *out, wanwu_error *err)
{
    int fd;
    size_t size;
    wanwu_status status = start_file_load(path, out, "ww_pth_map_file", &fd, &size, err);
    if (status != WANWU_OK) return status;
    if (size == 0) { /* mmap cannot map nothing: load_buffer reports the empty file */
        close(fd);
        return load_buffer(NULL, 0, path, 1, out, err);
    }
    void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED)
        return ww_error_set(err, WANWU_ERR_IO, "%s: cannot map: %s", path, strerror(e));
    status = load_buffer(map, size, path, 1, out, err);
    if (status == WANWU_OK) {
        out->file_buffer = map;
        out->file_buffer_size = size;
        out->file_buffer_mapped = 1;
    } else
        munmap(map, size);
    return status;
}

wanwu_status ww_pth_load_file(const char *path, ww_state_dict *out, wanwu_error *err)
{
    int fd;
    size_t size;
    wanwu_status open_status = start_file_load(path, out, "ww_pth_load_file", &fd, &size, err);
    if (open_status != WANWU_OK) return open_status;
    /* Read into memory pre-faulted with huge pages: on VMs the first touch
     * of each 4 KiB page of a plain malloc costs ~10 us, ~100 ms for
     * ResNet-18's weights. A mapping of the file costs less (~2 us per
     * page) but BatchNorm folding writes the weights in place, and the
     * model releases this buffer's huge pages for its packed weights to
     * reuse (README, "Load time"). The state dict keeps the buffer and its
     * float32 tensors point into it. */
    uint8_t *buf = ww_alloc_unfaulted(size);
    if (!buf) {
        close(fd);
        return ww_error_set(err, WANWU_ERR_NO_MEMORY, "%s: out of memory for %zu bytes", path,
                            size);
    }
    file_part parts[2];
    int nparts = read_file_parts(fd, buf, size, parts);
    close(fd);
    size_t got = 0;
    int read_errno = 0;
    for (int i = 0; i < nparts; i++) {
        got += parts[i].got;
        if (parts[i].got != parts[i].len) { /* the bytes after it do not count */
            read_errno = parts[i].err;
            break;
        }
    }
    if (got != size) {
        free(buf);
        return ww_error_set(err, WANWU_ERR_IO, "%s: read failed after %zu of %zu bytes: %s", path,
                            got, size, read_errno ? strerror(read_errno) : "file changed");
    }
    wanwu_status status = load_buffer(buf, size, path, 1, out, err);
    if (status == WANWU_OK) {
        out->file_buffer = buf;
        out->file_buffer_size = size;
    } else
        free(buf);
    return status;
}
