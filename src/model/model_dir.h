/* Finding a model by name in the models directory ($WANWU_MODELS, default
 * ./models): by torchvision's official file name, by file name, or by the
 * architecture detected from a file's tensor names. */
#ifndef WW_MODEL_MODEL_DIR_H
#define WW_MODEL_MODEL_DIR_H

#include "wanwu.h"

#include <stddef.h>

typedef struct ww_official_weights {
    const char *file; /* torchvision's file name */
    const char *arch;
    const char *url;
    const char *sha256_prefix; /* torchvision names carry the start of the sha256 */
    int resize;                /* torchvision's transform for these weights: Resize(resize), */
    int bicubic;               /* bilinear (0) or bicubic (1), then CenterCrop(224) */
} ww_official_weights;

/* The official entry whose file name is the last component of `path`, or NULL. */
const ww_official_weights *ww_official_weights_find(const char *path);

/* NULL-terminated (file == NULL) table of known official weight files. */
const ww_official_weights *ww_official_weights_table(void);

/* $WANWU_MODELS if set and non-empty, else "models". */
const char *ww_models_dir(void);

/* Resolves `spec` (a path, a file name in `dir`, or an architecture name;
 * NULL = the default model: resnet18 if present, else the first model
 * found) to a file path. */
wanwu_status ww_model_resolve(const char *spec, const char *dir, char *path, size_t path_size,
                              wanwu_error *err);

/* Architecture detected from a weight file's tensor names. */
wanwu_status ww_model_detect_arch_file(const char *path, char *arch, size_t arch_size,
                                       wanwu_error *err);

#endif
