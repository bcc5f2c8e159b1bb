/* A small, bounded pickle virtual machine: just the opcodes (protocols 2 to
 * 5) and objects that torch.save state dicts use. It builds an inert value
 * tree and never runs code: a global is only a name (checked against a
 * caller-supplied whitelist), and calling one (REDUCE/NEWOBJ) records the
 * call for the caller to interpret, except collections.OrderedDict(), which
 * becomes a dict so SETITEMS can fill it. */
#ifndef WW_FORMAT_PICKLE_H
#define WW_FORMAT_PICKLE_H

#include "wanwu.h"

#include <stddef.h>
#include <stdint.h>

typedef enum ww_pickle_kind {
    WW_PICKLE_NONE,
    WW_PICKLE_BOOL,
    WW_PICKLE_INT,    /* fits in int64 */
    WW_PICKLE_BIGINT, /* wider integer: raw little-endian two's complement in `bytes` */
    WW_PICKLE_FLOAT,
    WW_PICKLE_STR, /* UTF-8, NUL-terminated (may contain NULs: use len) */
    WW_PICKLE_BYTES,
    WW_PICKLE_TUPLE,
    WW_PICKLE_LIST,
    WW_PICKLE_DICT,   /* insertion-ordered key/value pairs */
    WW_PICKLE_GLOBAL, /* "module.name" in `bytes` */
    WW_PICKLE_CALL,   /* callable(args), plus the BUILD state if any */
    WW_PICKLE_PERSID  /* persistent id, with the tag given by the persistent_load hook */
} ww_pickle_kind;

typedef struct ww_pickle_value ww_pickle_value;

struct ww_pickle_value {
    ww_pickle_kind kind;
    ww_pickle_value *next_allocated; /* owner's list, for freeing */
    union {
        int64_t integer; /* INT, BOOL */
        double real;     /* FLOAT */
        struct {
            char *ptr; /* NUL-terminated copy */
            size_t len;
        } bytes; /* STR, BYTES, BIGINT, GLOBAL */
        struct {
            ww_pickle_value **items; /* DICT: key0, value0, key1, value1, ... */
            size_t count;            /* number of items (DICT: 2 x entries) */
            size_t capacity;
        } seq; /* TUPLE, LIST, DICT */
        struct {
            ww_pickle_value *callable; /* a GLOBAL */
            ww_pickle_value *args;     /* a TUPLE */
            ww_pickle_value *state;    /* NULL unless BUILD was applied */
        } call;
        struct {
            ww_pickle_value *id;
            int64_t tag;
        } persid;
    } as;
};

/* Called for every BINPERSID: validates the id and returns a tag stored in
 * the PERSID value (e.g. an index into the caller's storage table). */
typedef wanwu_status (*ww_pickle_persistent_load_fn)(void *ctx, const ww_pickle_value *id,
                                                     int64_t *tag, wanwu_error *err);

typedef struct ww_pickle_options {
    const char *name;                             /* used in messages, e.g. "data.pkl" */
    size_t base_offset;                           /* added to byte positions in messages */
    const char *const *allowed_globals;           /* "module.name", NULL-terminated */
    ww_pickle_persistent_load_fn persistent_load; /* NULL: BINPERSID is an error */
    void *persistent_load_ctx;
} ww_pickle_options;

/* Owns every value produced by the runs made with it. */
typedef struct ww_pickle_heap {
    ww_pickle_value *allocated;
    size_t value_count;
} ww_pickle_heap;

/* Runs one pickle starting at data[0] up to its STOP opcode. On success
 * *result is the unpickled object (owned by heap) and *consumed the number
 * of bytes read, STOP included. */
wanwu_status ww_pickle_load(ww_pickle_heap *heap, const uint8_t *data, size_t size,
                            const ww_pickle_options *options, ww_pickle_value **result,
                            size_t *consumed, wanwu_error *err);

/* Frees every value of the heap; the heap can be reused afterwards. */
void ww_pickle_heap_free(ww_pickle_heap *heap);

/* Small accessors for interpreting the tree. */
int ww_pickle_is_str(const ww_pickle_value *v, const char *text);
int ww_pickle_is_global(const ww_pickle_value *v, const char *qualified_name);
/* Last value stored under string key `key`, or NULL. */
const ww_pickle_value *ww_pickle_dict_get(const ww_pickle_value *dict, const char *key);
const char *ww_pickle_kind_name(ww_pickle_kind kind);

#endif
