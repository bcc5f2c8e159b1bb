/* wanwu — offline image classification in C.
 *
 * The one public header. All handles are opaque; every function that can
 * fail returns a wanwu_status and, when `err` is not NULL, fills it with a
 * message a user can act on. The library keeps no global mutable state.
 *
 * Threading: a wanwu_model is immutable after loading and may be shared by
 * any number of threads. A wanwu_session owns the activation memory and the
 * worker threads for one inference at a time: use one session per thread.
 */
#ifndef WANWU_H
#define WANWU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WANWU_VERSION "0.1.0"

#if defined(WANWU_BUILDING) && defined(__GNUC__)
#define WANWU_API __attribute__((visibility("default")))
#else
#define WANWU_API
#endif

typedef enum wanwu_status {
    WANWU_OK = 0,
    WANWU_ERR_INVALID_ARGUMENT, /* caller passed something unusable */
    WANWU_ERR_IO,               /* file could not be opened or read */
    WANWU_ERR_FORMAT,           /* file is corrupt, truncated or not of the expected kind */
    WANWU_ERR_UNSUPPORTED,      /* well-formed but uses something wanwu does not implement */
    WANWU_ERR_NO_MEMORY,        /* an allocation failed */
    WANWU_ERR_NOT_FOUND,        /* a named model, tensor or file does not exist */
    WANWU_ERR_LIMIT             /* input exceeds a configured limit (pixels, bytes) */
} wanwu_status;

/* Filled by failing calls. `message` is always NUL-terminated. */
typedef struct wanwu_error {
    wanwu_status status;
    char message[512];
} wanwu_error;

/* A short constant name for a status ("format error", ...). */
WANWU_API const char *wanwu_status_name(wanwu_status status);

/* ---- models ---------------------------------------------------------- */

typedef struct wanwu_model wanwu_model;

typedef struct wanwu_model_options {
    /* Architecture name ("resnet18", "mobilenet_v2"); NULL detects it
     * from the weight file's tensor names. */
    const char *arch;
    /* Preprocessing overrides; 0 / NULL keep the model's own transform
     * (torchvision's for an official weight file, else the architecture's
     * IMAGENET1K_V1 transform; for ONNX, a `<model>.preprocess` sidecar
     * file or Resize 256 bilinear + CenterCrop 224). */
    int resize;                /* Resize: shorter side to this many pixels */
    int crop;                  /* CenterCrop size; also the network's input size */
    const char *interpolation; /* "bilinear" or "bicubic" */
    /* Weight cache directory: a .pth model's packed weights are saved
     * there after a load that packed them, and the next load of the same
     * file (same path, size, times; same program build, instruction set,
     * input size and forced architecture) maps them instead, which skips
     * most of a load's work and fresh memory. NULL uses $WANWU_CACHE_DIR
     * (no cache when it is unset); "" or "off" means no cache. Failing to
     * read or write the cache never fails a load. ONNX models are not
     * cached. */
    const char *cache_dir;
} wanwu_model_options;

/* Loads a torchvision state dict (.pth, zip or legacy format) or an ONNX
 * classifier (.onnx), told apart by the file's content.
 * `options` may be NULL. On success *out must be freed with
 * wanwu_model_free. */
WANWU_API wanwu_status wanwu_model_load(const char *path, const wanwu_model_options *options,
                                        wanwu_model **out, wanwu_error *err);
WANWU_API void wanwu_model_free(wanwu_model *model);

/* Architecture name, e.g. "resnet18". */
WANWU_API const char *wanwu_model_arch(const wanwu_model *model);
/* How the load used the weight cache (wanwu_model_options.cache_dir):
 * "hit" (packed weights mapped from the cache), "stored" (packed, then
 * saved for the next load), "not stored" (packed; the entry could not be
 * written) or "off" (no cache, or an ONNX model). */
WANWU_API const char *wanwu_model_weight_cache(const wanwu_model *model);
/* Number of output classes (1000 for ImageNet models). */
WANWU_API int wanwu_model_num_classes(const wanwu_model *model);
/* Number of learned parameters after loading. */
WANWU_API int64_t wanwu_model_num_params(const wanwu_model *model);
/* Input the network expects after preprocessing: 3 x size x size. */
WANWU_API int wanwu_model_input_size(const wanwu_model *model);

/* Architectures wanwu can build, NULL-terminated. */
WANWU_API const char *const *wanwu_supported_archs(void);

/* Instruction set the kernels run with on this CPU: "avx512", "avx2" or
 * "portable" (the widest the CPU has, capped by $WANWU_ISA). */
WANWU_API const char *wanwu_kernel_isa(void);

/* ---- sessions -------------------------------------------------------- */

typedef struct wanwu_session wanwu_session;

typedef struct wanwu_session_options {
    int threads; /* 0 or 1: run on the calling thread only */
} wanwu_session_options;

/* Allocates all activation and scratch memory for `model` once; every
 * later call reuses it. `options` may be NULL. The model must outlive
 * the session. */
WANWU_API wanwu_status wanwu_session_create(const wanwu_model *model,
                                            const wanwu_session_options *options,
                                            wanwu_session **out, wanwu_error *err);
WANWU_API void wanwu_session_free(wanwu_session *session);

/* ---- profiling -------------------------------------------------------- */

/* Time of one layer of the optimized graph (a convolution carries the
 * BatchNorm, activation and residual add fused into it). */
typedef struct wanwu_layer_time {
    const char *name; /* module name, e.g. "layer1.0.conv1" (valid while the model lives) */
    const char *op;   /* the operation, e.g. "Conv2d", "Linear", "Conv2d+MaxPool2d"
                         (a max pool fused into the conv before it) */
    int out_channels, out_height, out_width;
    int64_t macs; /* multiply-accumulates of one run (convolutions and linear layers, else 0) */
    double ms;    /* mean wall time per profiled run */
} wanwu_layer_time;

/* Starts (enabled != 0) or stops timing every layer of this session's
 * runs (wanwu_run and the classify calls); starting again clears earlier
 * timings. Costs two clock reads per layer and run. */
WANWU_API wanwu_status wanwu_session_profile_enable(wanwu_session *session, int enabled,
                                                    wanwu_error *err);
/* Writes up to `max` layers in execution order to `out` (NULL to count)
 * and the number of profiled runs to *runs (may be NULL); returns the
 * number of layers, 0 when profiling is off. */
WANWU_API int wanwu_session_profile(const wanwu_session *session, wanwu_layer_time *out, int max,
                                    int *runs);

/* ---- classification -------------------------------------------------- */

typedef struct wanwu_prediction {
    int class_index;   /* 0-based index into the model's classes */
    const char *label; /* human-readable class name (static storage) */
    float prob;        /* softmax probability in [0, 1] */
} wanwu_prediction;

typedef struct wanwu_timings {
    double decode_ms;
    double preprocess_ms;
    double inference_ms;
} wanwu_timings;

typedef struct wanwu_image_options {
    /* Apply the EXIF Orientation tag before preprocessing. Off by default
     * because torchvision applies none. */
    int apply_exif_orientation;
} wanwu_image_options;

/* Decodes an encoded image (JPEG or PNG), preprocesses it the way
 * torchvision does for this model, runs the network and writes the `top_k`
 * most probable classes to `out` (best first). `timings` and
 * `image_options` may be NULL. */
WANWU_API wanwu_status wanwu_classify_memory(wanwu_session *session, const void *data, size_t size,
                                             const wanwu_image_options *image_options, int top_k,
                                             wanwu_prediction *out, wanwu_timings *timings,
                                             wanwu_error *err);
WANWU_API wanwu_status wanwu_classify_file(wanwu_session *session, const char *path,
                                           const wanwu_image_options *image_options, int top_k,
                                           wanwu_prediction *out, wanwu_timings *timings,
                                           wanwu_error *err);

/* Runs the network on an already preprocessed 3 x S x S float tensor
 * (CHW, S = wanwu_model_input_size) and writes num_classes logits. */
WANWU_API wanwu_status wanwu_run(wanwu_session *session, const float *input_chw, float *logits,
                                 wanwu_error *err);

/* ---- labels ---------------------------------------------------------- */

/* ImageNet-1k class name for index 0..999 in torchvision's order, or NULL. */
WANWU_API const char *wanwu_imagenet_label(int class_index);

#ifdef __cplusplus
}
#endif
#endif
