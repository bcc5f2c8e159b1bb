/* Reader for PyTorch state dicts saved with torch.save: the zip format
 * (torch >= 1.6: archive/data.pkl + archive/data/N) and the legacy format
 * (magic number, protocol, sys_info, pickled object, storage keys, raw
 * storages). Only what state dicts use is implemented. */
#ifndef WW_FORMAT_PTH_H
#define WW_FORMAT_PTH_H

#include "wanwu.h"

#include <stddef.h>
#include <stdint.h>

#define WW_MAX_DIMS 8

typedef enum ww_dtype {
    WW_DTYPE_F32,
    WW_DTYPE_F16,
    WW_DTYPE_BF16,
    WW_DTYPE_F64,
    WW_DTYPE_I64
} ww_dtype;

typedef struct ww_named_tensor {
    char *name;            /* state-dict key, e.g. "layer1.0.conv1.weight" */
    ww_dtype stored_dtype; /* dtype in the file */
    int ndim;
    int64_t shape[WW_MAX_DIMS];
    size_t numel;
    float *data;  /* contiguous fp32 copy (all float dtypes converted); NULL for I64 */
    int64_t *i64; /* contiguous copy for I64 tensors; NULL otherwise */
    int borrowed; /* data points into the state dict's file_buffer (not freed alone) */
} ww_named_tensor;

typedef struct ww_state_dict {
    ww_named_tensor *tensors; /* in file order */
    size_t count;
    /* ww_pth_load_file reads the file into one buffer (pre-faulted, huge
     * pages) and lets contiguous little-endian float32 tensors point
     * straight into it instead of copying them; the buffer lives until
     * ww_state_dict_free. NULL for ww_pth_load_memory. */
    void *file_buffer;
    size_t file_buffer_size;
    int file_buffer_mapped; /* ww_pth_map_file: a private mapping of the file, not malloc'd */
} ww_state_dict;

/* Loads a state dict from a file / from memory. `name` is used in error
 * messages. On failure *out is left empty and nothing leaks. */
wanwu_status ww_pth_load_file(const char *path, ww_state_dict *out, wanwu_error *err);
wanwu_status ww_pth_load_memory(const uint8_t *data, size_t size, const char *name,
                                ww_state_dict *out, wanwu_error *err);
void ww_state_dict_free(ww_state_dict *sd);

/* Frees a file_buffer (mapped: its mapping of `size` bytes; NULL is a
 * no-op either way). */
void ww_file_buffer_release(void *buffer, size_t size, int mapped);

/* As ww_pth_load_file, but the file is mapped (private, copy on write)
 * instead of read: only the pages the parser and the caller touch are
 * read in. For a load whose packed weights come from the weight cache,
 * which reads the pickle, the shapes and the small tensors only. */
wanwu_status ww_pth_map_file(const char *path, ww_state_dict *out, wanwu_error *err);
const ww_named_tensor *ww_state_dict_find(const ww_state_dict *sd, const char *name);

#endif
