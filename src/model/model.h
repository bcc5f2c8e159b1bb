/* Internal model representation: an optimized graph with prepared kernels
 * and a memory plan. A wanwu_model is read-only after loading; sessions
 * (model/session.c) hold the memory one inference writes. */
#ifndef WW_MODEL_MODEL_H
#define WW_MODEL_MODEL_H

#include "format/pth.h"
#include "graph/graph.h"
#include "graph/passes.h"
#include "image/image.h"
#include "ops/ops.h"
#include "wanwu.h"

#define WW_ARCH_NAME_MAX 64

struct wanwu_model {
    char arch[WW_ARCH_NAME_MAX];
    ww_graph graph; /* optimized */
    /* The weight file's buffer, when the graph borrows its weights from it
     * (graph.borrow_begin/end); pages no longer referenced are released. */
    void *weights_buffer;
    size_t weights_buffer_map_len; /* nonzero: weights_buffer is a mapping of the file */
    ww_conv2d **convs;             /* per node; prepared kernels for CONV2D nodes, else NULL */
    struct ww_arena *weight_arena; /* the convs' packed weights (core/arena.h) */
    ww_memory_plan plan;
    int num_classes;
    int64_t num_params;
    int input_size;            /* S of the 3 x S x S input */
    ww_preprocess preprocess;  /* the transform these weights were trained with */
    char format[8];            /* "pth" or "onnx" */
    int outputs_probabilities; /* the graph ends in Softmax: classify skips its own */
    const char *weight_cache;  /* wanwu_model_weight_cache */
};

/* An architecture builder turns a state dict into an unoptimized graph. */
typedef struct ww_arch {
    const char *name;
    /* Nonzero when the state dict's keys look like this architecture. */
    int (*matches)(const ww_state_dict *sd);
    /* Builds the graph for a 3 x input_size x input_size input. */
    wanwu_status (*build)(const ww_state_dict *sd, ww_graph *g, int input_size, wanwu_error *err);
    /* The IMAGENET1K_V1 transform torchvision pairs with this architecture
     * (resize size, interpolation; crop 224). */
    int resize;
    ww_interpolation interp;
} ww_arch;

extern const ww_arch ww_arch_resnet18;
extern const ww_arch ww_arch_resnet34;
extern const ww_arch ww_arch_mobilenet_v2;
extern const ww_arch ww_arch_efficientnet_b0;
extern const ww_arch ww_arch_shufflenet_v2_x1_0;

/* The registry, NULL-terminated. */
const ww_arch *const *ww_arch_registry(void);
const ww_arch *ww_arch_find(const char *name);
const ww_arch *ww_arch_detect(const ww_state_dict *sd);

/* Fetches a float tensor by name and checks its shape (-1 = any extent).
 * Returns NULL with a message naming the key on any mismatch. */
const float *ww_sd_tensor(const ww_state_dict *sd, const char *name, int ndim, const int64_t *shape,
                          wanwu_error *err);

/* Builds a model from an already loaded state dict. `options` may be NULL
 * (architecture detected, the architecture's own preprocessing). */
wanwu_status ww_model_from_state_dict(const ww_state_dict *sd, const char *forced_arch,
                                      wanwu_model **out, wanwu_error *err);
wanwu_status ww_model_from_state_dict_opts(const ww_state_dict *sd,
                                           const wanwu_model_options *options,
                                           const ww_preprocess *preprocess, wanwu_model **out,
                                           wanwu_error *err);

/* Optimizes a freshly built graph (passes), prepares kernels and plans
 * memory; fills graph-derived fields of `m` (num_classes, input_size). The
 * ONNX importer and the .pth builders share it. */
wanwu_status ww_model_finish(wanwu_model *m, wanwu_error *err);

/* Applies the overrides in `options` (resize, crop, interpolation) to `p`. */
wanwu_status ww_preprocess_apply_options(ww_preprocess *p, const wanwu_model_options *options,
                                         wanwu_error *err);

#endif
