/* The graph IR every model format is lowered to.
 *
 * A graph is a list of nodes in execution order; each node reads one or two
 * values (feature maps of shape C x H x W, batch 1) and writes one. Format
 * readers build it with BatchNorm, activations and additions as separate
 * nodes, exactly as the source network computes them; passes then fold and
 * fuse (graph/passes.h), and the planner gives every value a place in one
 * activation arena. */
#ifndef WW_GRAPH_GRAPH_H
#define WW_GRAPH_GRAPH_H

#include "ops/ops.h"
#include "wanwu.h"

#include <stddef.h>
#include <stdint.h>

typedef enum ww_op_type {
    WW_OP_INPUT,
    WW_OP_CONV2D,          /* weight, bias (may be NULL); inputs[1] = residual (optional);
                            * with in_scale, a per-input-channel scale last */
    WW_OP_BATCHNORM,       /* bn_* arrays, eps */
    WW_OP_ACTIVATION,      /* act */
    WW_OP_ADD,             /* inputs[0] + inputs[1], then act */
    WW_OP_MAXPOOL2D,       /* pool */
    WW_OP_GLOBAL_AVGPOOL,  /* C x H x W -> C x 1 x 1 */
    WW_OP_FLATTEN,         /* C x H x W -> (C*H*W) x 1 x 1; no data movement */
    WW_OP_LINEAR,          /* weight [out][in], bias */
    WW_OP_DROPOUT,         /* identity at inference */
    WW_OP_MUL_CHANNEL,     /* inputs[0] (C x H x W) * inputs[1] (C x 1 x 1), per channel */
    WW_OP_CONCAT,          /* channels of inputs[0], then of inputs[1] */
    WW_OP_SLICE_CHANNELS,  /* channels [channel_begin, channel_end) of inputs[0] */
    WW_OP_CHANNEL_SHUFFLE, /* groups; shuffles inputs[0], or the concat of inputs[0] and
                            * inputs[1] when there are two; output is channels
                            * [channel_begin, channel_end) of the shuffled map */
    WW_OP_AVGPOOL2D,       /* pool, count_include_pad */
    WW_OP_RESHAPE,         /* same values, new C x H x W (a copy) */
    WW_OP_SOFTMAX,         /* softmax over all values (a classifier's last op), or per row */
    WW_OP_AFFINE_CLAMP,    /* min(clamp_hi, max(clamp_lo, clamp_scale * x + clamp_shift)) */
    WW_OP_ELTWISE,         /* inputs[0] (eltwise_op) inputs[1], or the constant `weight` */
    WW_OP_GATHER,          /* out[i] = (inputs[0] then inputs[1] or `weight`)[gather_index[i]] */
    WW_OP_CONSTANT         /* no inputs; the output's values are `weight` (known at load time) */
} ww_op_type;

const char *ww_op_name(ww_op_type op);

typedef struct ww_value {
    int c, h, w;
    int producer; /* node index */
} ww_value;

#define WW_NODE_NAME_MAX 96

typedef struct ww_node {
    ww_op_type op;
    char name[WW_NODE_NAME_MAX]; /* source module name, for messages */
    int inputs[3];
    int num_inputs;
    int output;
    int removed; /* set by passes; removed nodes are skipped */

    ww_activation act; /* CONV2D, ADD, ACTIVATION, LINEAR epilogue */
    ww_conv2d_shape conv;
    ww_pool2d_shape pool; /* MAXPOOL2D, AVGPOOL2D; CONV2D when `pooled` */
    int pooled;           /* CONV2D: a max pool over its output fused in (fuse_maxpool) */
    int in_scale;         /* CONV2D: its input scaled per channel first, by the last input
                           * (C x 1 x 1; fuse_channel_scale); see ww_conv_in_scale */
    int means_value;      /* CONV2D: 1 + the value that gets its output's channel means
                           * (the global average pool after it; fuse_channel_means); 0 = none */
    int means_fused;      /* GLOBAL_AVGPOOL: its output comes from the conv before it */
    int in_features, out_features;
    int channel_begin, channel_end;                     /* SLICE_CHANNELS, CHANNEL_SHUFFLE */
    int groups;                                         /* CHANNEL_SHUFFLE */
    int count_include_pad;                              /* AVGPOOL2D */
    float clamp_scale, clamp_shift, clamp_lo, clamp_hi; /* AFFINE_CLAMP */
    ww_eltwise_op eltwise_op;                           /* ELTWISE */
    int eltwise_swap;                                   /* ELTWISE: b (op) a */
    size_t const_count;    /* ELTWISE with a constant: 1, C or all values */
    int32_t *gather_index; /* GATHER, owned: one source index per output value */
    int softmax_len;       /* SOFTMAX: rows of this length each sum to 1; 0 = all values */

    /* owned, unless borrowed (see ww_graph) */
    float *weight;
    float *bias; /* may be NULL */
    float *bn_gamma, *bn_beta, *bn_mean, *bn_var;
    float bn_eps;
} ww_node;

typedef struct ww_graph {
    ww_node *nodes;
    int num_nodes, cap_nodes;
    ww_value *values;
    int num_values, cap_values;
    int input;  /* value id */
    int output; /* value id */
    /* Float arrays given to the builders from inside [borrow_begin,
     * borrow_end) are referenced in place instead of copied and are never
     * freed by the graph: their owner keeps that memory alive as long as
     * the graph (the model loader lends the weight file's buffer this way,
     * saving a copy of every weight). Empty by default. */
    const void *borrow_begin, *borrow_end;
    /* The convolutions' packed weights come ready from a weight cache
     * (model/weight_cache.h): the values of conv weight arrays are never
     * read, so passes skip computing them (biases are still computed). */
    int conv_weights_prepacked;
    /* Arrays moved into the model's weight arena at load (model.c,
     * own_borrowed_arrays) lie in [arena_begin, arena_end): not the
     * graph's to free either. */
    const void *arena_begin, *arena_end;
} ww_graph;

void ww_graph_init(ww_graph *g);
void ww_graph_free(ww_graph *g);
/* free() for a node's float array, except a borrowed one. */
void ww_graph_free_floats(const ww_graph *g, float *p);
/* Frees every array a node owns (weights, bias, BatchNorm, gather index)
 * and sets the pointers to NULL. */
void ww_node_free_arrays(const ww_graph *g, ww_node *n);

static inline size_t ww_value_size(const ww_value *v)
{
    return (size_t)v->c * (size_t)v->h * (size_t)v->w;
}

/* Builders. Each returns the new value id, or -1 with err set. Weight
 * arrays are copied. */
int ww_graph_add_input(ww_graph *g, int c, int h, int w, wanwu_error *err);
/* weight: [out_c][in_c/groups][kernel][kernel]; symmetric padding. */
int ww_graph_add_conv2d(ww_graph *g, const char *name, int input, int out_c, int kernel, int stride,
                        int padding, int groups, const float *weight, const float *bias,
                        wanwu_error *err);
int ww_graph_add_batchnorm(ww_graph *g, const char *name, int input, const float *gamma,
                           const float *beta, const float *mean, const float *var, float eps,
                           wanwu_error *err);
int ww_graph_add_activation(ww_graph *g, const char *name, int input, ww_activation act,
                            wanwu_error *err);
int ww_graph_add_add(ww_graph *g, const char *name, int a, int b, wanwu_error *err);
int ww_graph_add_maxpool2d(ww_graph *g, const char *name, int input, int kernel, int stride,
                           int padding, wanwu_error *err);
int ww_graph_add_global_avgpool(ww_graph *g, const char *name, int input, wanwu_error *err);
int ww_graph_add_flatten(ww_graph *g, const char *name, int input, wanwu_error *err);
int ww_graph_add_dropout(ww_graph *g, const char *name, int input, wanwu_error *err);
int ww_graph_add_linear(ww_graph *g, const char *name, int input, int out_features,
                        const float *weight, const float *bias, wanwu_error *err);

/* Same as ww_graph_add_conv2d with a full shape (rectangular kernels,
 * asymmetric padding, dilation); in_c/in_h/in_w and out_h/out_w are
 * derived from the input and the window. */
int ww_graph_add_conv2d_shape(ww_graph *g, const char *name, int input,
                              const ww_conv2d_shape *shape, const float *weight, const float *bias,
                              wanwu_error *err);
/* Max or average pooling with a full window description (channels, in_*,
 * out_* derived). */
int ww_graph_add_pool2d_shape(ww_graph *g, ww_op_type op, const char *name, int input,
                              const ww_pool2d_shape *shape, int count_include_pad,
                              wanwu_error *err);
/* x (C x H x W) times scale (C x 1 x 1) per channel. */
int ww_graph_add_mul_channel(ww_graph *g, const char *name, int x, int scale, wanwu_error *err);
/* Channel concatenation; H and W must agree. */
int ww_graph_add_concat(ww_graph *g, const char *name, int a, int b, wanwu_error *err);
int ww_graph_add_slice_channels(ww_graph *g, const char *name, int input, int begin, int end,
                                wanwu_error *err);
int ww_graph_add_channel_shuffle(ww_graph *g, const char *name, int input, int groups,
                                 wanwu_error *err);

/* Same values (row-major) seen as c x h x w; the element count must agree. */
int ww_graph_add_reshape(ww_graph *g, const char *name, int input, int c, int h, int w,
                         wanwu_error *err);
int ww_graph_add_softmax(ww_graph *g, const char *name, int input, wanwu_error *err);

int ww_graph_add_affine_clamp(ww_graph *g, const char *name, int input, float scale, float shift,
                              float lo, float hi, wanwu_error *err);
/* a (op) b for two values of the same shape (b >= 0), or a (op) a constant
 * of 1, C or all of a's values (b < 0, b_const copied); swap computes
 * b (op) a. */
int ww_graph_add_eltwise(ww_graph *g, const char *name, int a, int b, const float *b_const,
                         size_t b_count, ww_eltwise_op op, int swap, wanwu_error *err);

/* Data movement computed at load time (Transpose, Slice, Split, Gather,
 * Concat on any axis): output value i is element index[i] of input a, or
 * of b (b >= 0) when index[i] >= size(a). `index` (c*h*w values) is copied. */
int ww_graph_add_gather(ww_graph *g, const char *name, int a, int b, int c, int h, int w,
                        const int32_t *index, wanwu_error *err);
/* Same with a constant second source (b_count values, copied to `weight`). */
int ww_graph_add_gather_const(ww_graph *g, const char *name, int a, const float *b_const,
                              size_t b_count, int c, int h, int w, const int32_t *index,
                              wanwu_error *err);

/* A value known at load time: c*h*w floats, copied. ww_pass_fold_constants
 * evaluates the nodes that read only constants and absorbs the rest into
 * ELTWISE/GATHER constant operands. */
int ww_graph_add_constant(ww_graph *g, const char *name, int c, int h, int w, const float *data,
                          wanwu_error *err);

/* Multiply-accumulates of one inference (convolutions and linear layers). */
int64_t ww_graph_macs(const ww_graph *g);
/* The same for one node (0 for removed nodes and ops other than conv and
 * linear). */
int64_t ww_node_macs(const ww_node *n);

/* A CONV2D node's residual value, or -1 when it has none. */
static inline int ww_conv_residual(const ww_node *n)
{
    return n->num_inputs - (n->in_scale ? 1 : 0) > 1 ? n->inputs[1] : -1;
}
/* A CONV2D node's per-input-channel scale value, or -1 when it has none. */
static inline int ww_conv_in_scale(const ww_node *n)
{
    return n->in_scale ? n->inputs[n->num_inputs - 1] : -1;
}

/* Number of consumers of a value among live nodes (+1 if it is the graph
 * output). */
int ww_graph_use_count(const ww_graph *g, int value);

/* Redirects every live use of value `from` (and the graph output) to `to`. */
void ww_graph_replace_uses(ww_graph *g, int from, int to);

/* Running nodes. The session runs every node of a model per image; the
 * constant-folding pass runs single nodes at load time through the same
 * function (defined in model/session.c). */
typedef struct ww_graph_exec {
    const ww_graph *graph;
    ww_conv2d *const *convs; /* per node: the prepared kernel of each CONV2D */
    const size_t *offsets;   /* per value: where it lives in `arena` (floats) */
    float *arena;
    float *scratch;      /* ww_conv2d_scratch_floats of the largest conv */
    ww_threadpool *pool; /* NULL runs serially */
    double *node_ms;     /* when set: each node's wall time is added to its entry (ms) */
    /* when set: the graph input's data, read in place of its arena slot
     * (wanwu_run's caller's buffer, not copied; no node writes a graph
     * input) */
    const float *input;
} ww_graph_exec;

/* Runs the live nodes first..end-1 (INPUT nodes are skipped). */
void ww_graph_exec_nodes(const ww_graph_exec *s, int first, int end);

#endif
