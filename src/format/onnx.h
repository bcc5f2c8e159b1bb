/* ONNX import: a .onnx classifier (opsets 9-18, or older when none of its
 * ops changed meaning since) lowered to the same graph IR the .pth builders
 * produce (graph/graph.h).
 *
 * The file is parsed with protobuf-c (C generated at build time from the
 * onnx.proto of Debian's libonnx-dev). Initializers and everything computed
 * from them alone (the Shape/Gather/Cast/Div/Concat chains exporters emit
 * for dynamic shapes, DequantizeLinear of quantized initializers, ...) are
 * folded to constants at load time for the input shape the model declares
 * (dynamic dimensions: batch 1, spatial dims from the requested size).
 * What remains must be a network of supported ops on float tensors; a
 * batch > 1 folds into the IR's channels where the op works per channel
 * (BatchNorm, pooling), Gemm/MatMul of several rows and Softmax/ReduceMean
 * over inner axes go through load-time index gathers. Any other op or
 * configuration fails with its op type and node name. External data (weights in
 * side files) is read from files inside the model's directory only. */
#ifndef WW_FORMAT_ONNX_H
#define WW_FORMAT_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "graph/graph.h"
#include "wanwu.h"

/* Largest .onnx file read (the protobuf is parsed in memory). */
#define WW_ONNX_MAX_FILE_BYTES ((size_t)2 << 30)
/* Largest tensor (elements) an initializer, constant or activation may have. */
#define WW_ONNX_MAX_TENSOR_ELEMENTS ((int64_t)1 << 28)

/* 1 when the bytes look like an ONNX ModelProto (not a zip or pickle). */
int ww_onnx_sniff(const uint8_t *data, size_t size);

/* A tensor given to the importer by name instead of as a runtime input
 * (tests bind every input but the first this way). */
typedef struct ww_onnx_binding {
    const char *name;
    int ndim;
    int64_t dims[8];
    const float *data;
} ww_onnx_binding;

typedef struct ww_onnx_import_options {
    int input_size;   /* spatial size for dynamic H/W dims (0: 224) */
    const ww_onnx_binding *bindings;
    int num_bindings;
} ww_onnx_import_options;

typedef struct ww_onnx_info {
    int64_t num_params;        /* elements of float initializers */
    int ends_in_softmax;       /* the output is already a probability vector */
    int input_ndim;            /* ONNX shape of the runtime input, batch 1 */
    int64_t input_dims[8];
    int output_ndim;
    int64_t output_dims[8];
    int opset;                 /* default-domain opset */
    char graph_name[64];
} ww_onnx_info;

/* Builds the unoptimized graph of the model at `path`. */
wanwu_status ww_onnx_import_file(const char *path, const ww_onnx_import_options *options,
                                 ww_graph *g, ww_onnx_info *info, wanwu_error *err);

/* Op types of the model's nodes in order (at most `max`, each truncated to
 * 31 characters) and the names of its graph inputs that are not
 * initializers (at most max_inputs). Returns the number of nodes. */
int ww_onnx_list_ops(const char *path, char (*ops)[32], int max, char (*inputs)[64],
                     int max_inputs, int *num_inputs, wanwu_error *err);

/* Declared element types (TensorProto.DataType; -1 for a sequence, map or
 * optional) of the model's graph inputs that are not initializers, in
 * order, and of its graph outputs. Returns 0, or -1 with err set. */
int ww_onnx_io_types(const char *path, int *input_types, int max_inputs, int *num_inputs,
                     int *output_types, int max_outputs, int *num_outputs, wanwu_error *err);

/* 1 when wanwu's importer knows this op type. */
int ww_onnx_op_supported(const char *op_type);

/* Reads a serialized TensorProto (ONNX test data: input_0.pb, ...) as
 * float32; *data is malloc'ed. */
wanwu_status ww_onnx_read_tensor_file(const char *path, float **data, int *ndim, int64_t dims[8],
                                      char *name, size_t name_size, wanwu_error *err);

#endif
