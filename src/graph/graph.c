#include "graph/graph.h"

#include "core/error.h"
#include "core/prefault.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ww_op_name(ww_op_type op)
{
    switch (op) {
    case WW_OP_INPUT: return "Input";
    case WW_OP_CONV2D: return "Conv2d";
    case WW_OP_BATCHNORM: return "BatchNorm2d";
    case WW_OP_ACTIVATION: return "Activation";
    case WW_OP_ADD: return "Add";
    case WW_OP_MAXPOOL2D: return "MaxPool2d";
    case WW_OP_GLOBAL_AVGPOOL: return "GlobalAvgPool";
    case WW_OP_FLATTEN: return "Flatten";
    case WW_OP_LINEAR: return "Linear";
    case WW_OP_DROPOUT: return "Dropout";
    case WW_OP_MUL_CHANNEL: return "MulChannel";
    case WW_OP_CONCAT: return "Concat";
    case WW_OP_SLICE_CHANNELS: return "SliceChannels";
    case WW_OP_CHANNEL_SHUFFLE: return "ChannelShuffle";
    case WW_OP_AVGPOOL2D: return "AvgPool2d";
    case WW_OP_RESHAPE: return "Reshape";
    case WW_OP_SOFTMAX: return "Softmax";
    case WW_OP_AFFINE_CLAMP: return "AffineClamp";
    case WW_OP_ELTWISE: return "Eltwise";
    case WW_OP_GATHER: return "Gather";
    case WW_OP_CONSTANT: return "Constant";
    }
    return "?";
}

void ww_graph_init(ww_graph *g)
{
    memset(g, 0, sizeof *g);
    g->input = g->output = -1;
}

static int borrowed(const ww_graph *g, const float *p)
{
    const char *c = (const char *)p;
    return c && ((c >= (const char *)g->borrow_begin && c < (const char *)g->borrow_end) ||
                 (c >= (const char *)g->arena_begin && c < (const char *)g->arena_end));
}

void ww_graph_free_floats(const ww_graph *g, float *p)
{
    if (!borrowed(g, p)) free(p);
}

void ww_node_free_arrays(const ww_graph *g, ww_node *n)
{
    ww_graph_free_floats(g, n->weight);
    ww_graph_free_floats(g, n->bias);
    ww_graph_free_floats(g, n->bn_gamma);
    ww_graph_free_floats(g, n->bn_beta);
    ww_graph_free_floats(g, n->bn_mean);
    ww_graph_free_floats(g, n->bn_var);
    free(n->gather_index);
    n->weight = n->bias = n->bn_gamma = n->bn_beta = n->bn_mean = n->bn_var = NULL;
    n->gather_index = NULL;
}

void ww_graph_free(ww_graph *g)
{
    for (int i = 0; i < g->num_nodes; i++)
        ww_node_free_arrays(g, &g->nodes[i]);
    free(g->nodes);
    free(g->values);
    ww_graph_init(g);
}

static float *copy_floats(const ww_graph *g, const float *src, size_t n)
{
    if (!src) return NULL;
    if (borrowed(g, src)) return (float *)(uintptr_t)src;
    float *dst = malloc(n * sizeof *dst);
    ww_prefault(dst, n * sizeof *dst); /* one syscall instead of a page fault per 4 KiB */
    if (dst) memcpy(dst, src, n * sizeof *dst);
    return dst;
}

static int valid_value(const ww_graph *g, int v)
{
    return v >= 0 && v < g->num_values;
}

/* Appends a node producing a new value of shape c x h x w. Returns the
 * node, or NULL (err set). */
static ww_node *append_node(ww_graph *g, ww_op_type op, const char *name, int c, int h, int w,
                            wanwu_error *err)
{
    if (c <= 0 || h <= 0 || w <= 0) {
        ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "%s '%s': output shape %dx%dx%d is empty",
                     ww_op_name(op), name ? name : "", c, h, w);
        return NULL;
    }
    if (g->num_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 64;
        ww_node *nodes = realloc(g->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes) goto oom;
        g->nodes = nodes;
        g->cap_nodes = cap;
    }
    if (g->num_values == g->cap_values) {
        int cap = g->cap_values ? g->cap_values * 2 : 64;
        ww_value *values = realloc(g->values, (size_t)cap * sizeof *values);
        if (!values) goto oom;
        g->values = values;
        g->cap_values = cap;
    }
    ww_node *n = &g->nodes[g->num_nodes];
    memset(n, 0, sizeof *n);
    n->op = op;
    snprintf(n->name, sizeof n->name, "%s", name ? name : "");
    n->output = g->num_values;
    g->values[g->num_values] = (ww_value){c, h, w, g->num_nodes};
    g->num_values++;
    g->num_nodes++;
    g->output = n->output;
    return n;
oom:
    ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory building the graph");
    return NULL;
}

/* Undoes append_node after a later allocation failed. */
static int drop_last_node(ww_graph *g, wanwu_error *err)
{
    ww_node *n = &g->nodes[--g->num_nodes];
    g->num_values--;
    ww_node_free_arrays(g, n);
    g->output = g->num_nodes > 0 ? g->nodes[g->num_nodes - 1].output : -1;
    ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory copying weights");
    return -1;
}

static int bad_input(const char *op, const char *name, wanwu_error *err)
{
    ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "%s '%s': input does not exist", op,
                 name ? name : "");
    return -1;
}

int ww_graph_add_input(ww_graph *g, int c, int h, int w, wanwu_error *err)
{
    ww_node *n = append_node(g, WW_OP_INPUT, "input", c, h, w, err);
    if (!n) return -1;
    g->input = n->output;
    return n->output;
}

int ww_graph_add_conv2d(ww_graph *g, const char *name, int input, int out_c, int kernel, int stride,
                        int padding, int groups, const float *weight, const float *bias,
                        wanwu_error *err)
{
    /* the square, symmetric case of ww_graph_add_conv2d_shape */
    ww_conv2d_shape s = {0};
    s.out_c = out_c;
    s.kernel_h = s.kernel_w = kernel;
    s.stride_h = s.stride_w = stride;
    s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = padding;
    s.dilation_h = s.dilation_w = 1;
    s.groups = groups;
    return ww_graph_add_conv2d_shape(g, name, input, &s, weight, bias, err);
}

int ww_graph_add_batchnorm(ww_graph *g, const char *name, int input, const float *gamma,
                           const float *beta, const float *mean, const float *var, float eps,
                           wanwu_error *err)
{
    if (!valid_value(g, input)) return bad_input("BatchNorm2d", name, err);
    const ww_value in = g->values[input];
    ww_node *n = append_node(g, WW_OP_BATCHNORM, name, in.c, in.h, in.w, err);
    if (!n) return -1;
    n->inputs[0] = input;
    n->num_inputs = 1;
    n->bn_eps = eps;
    n->bn_gamma = copy_floats(g, gamma, (size_t)in.c);
    n->bn_beta = copy_floats(g, beta, (size_t)in.c);
    n->bn_mean = copy_floats(g, mean, (size_t)in.c);
    n->bn_var = copy_floats(g, var, (size_t)in.c);
    if (!n->bn_gamma || !n->bn_beta || !n->bn_mean || !n->bn_var) return drop_last_node(g, err);
    return n->output;
}

int ww_graph_add_activation(ww_graph *g, const char *name, int input, ww_activation act,
                            wanwu_error *err)
{
    if (!valid_value(g, input)) return bad_input("Activation", name, err);
    const ww_value in = g->values[input];
    ww_node *n = append_node(g, WW_OP_ACTIVATION, name, in.c, in.h, in.w, err);
    if (!n) return -1;
    n->inputs[0] = input;
    n->num_inputs = 1;
    n->act = act;
    return n->output;
}

int ww_graph_add_add(ww_graph *g, const char *name, int a, int b, wanwu_error *err)
{
    if (!valid_value(g, a) || !valid_value(g, b)) return bad_input("Add", name, err);
    const ww_value va = g->values[a], vb = g->values[b];
    if (va.c != vb.c || va.h != vb.h || va.w != vb.w) {
        ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT,
                     "Add '%s': shapes %dx%dx%d and %dx%dx%d differ", name, va.c, va.h, va.w, vb.c,
                     vb.h, vb.w);
        return -1;
    }
    ww_node *n = append_node(g, WW_OP_ADD, name, va.c, va.h, va.w, err);
    if (!n) return -1;
    n->inputs[0] = a;
    n->inputs[1] = b;
    n->num_inputs = 2;
    return n->output;
}

int ww_graph_add_maxpool2d(ww_graph *g, const char *name, int input, int kernel, int stride,
                           int padding, wanwu_error *err)
{
    if (!valid_value(g, input)) return bad_input("MaxPool2d", name, err);
    const ww_value in = g->values[input];
    if (kernel <= 0 || stride <= 0 || padding < 0 || padding > kernel / 2) {
        ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT,
                     "MaxPool2d '%s': kernel %d, stride %d, padding %d is not valid", name, kernel,
                     stride, padding);
        return -1;
    }
    ww_pool2d_shape p = {0};
    p.channels = in.c;
    p.in_h = in.h;
    p.in_w = in.w;
    p.kernel_h = p.kernel_w = kernel;
    p.stride_h = p.stride_w = stride;
    p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = padding;
    p.out_h = ww_window_out_dim(in.h, kernel, stride, padding, padding, 1);
    p.out_w = ww_window_out_dim(in.w, kernel, stride, padding, padding, 1);
    ww_node *n = append_node(g, WW_OP_MAXPOOL2D, name, in.c, p.out_h, p.out_w, err);
    if (!n) return -1;
    n->pool = p;
    n->inputs[0] = input;
    n->num_inputs = 1;
    return n->output;
}

int ww_graph_add_global_avgpool(ww_graph *g, const char *name, int input, wanwu_error *err)
{
    if (!valid_value(g, input)) return bad_input("GlobalAvgPool", name, err);
    ww_node *n = append_node(g, WW_OP_GLOBAL_AVGPOOL, name, g->values[input].c, 1, 1, err);
    if (!n) return -1;
    n->inputs[0] = input;
    n->num_inputs = 1;
    return n->output;
}

static int add_passthrough(ww_graph *g, ww_op_type op, const char *name, int input, int flatten,
                           wanwu_error *err)
{
    if (!valid_value(g, input)) return bad_input(ww_op_name(op), name, err);
    const ww_value in = g->values[input];
    int c = flatten ? (int)ww_value_size(&in) : in.c;
    ww_node *n = append_node(g, op, name, c, flatten ? 1 : in.h, flatten ? 1 : in.w, err);
    if (!n) return -1;
    n->inputs[0] = input;
    n->num_inputs = 1;
    return n->output;
}

int ww_graph_add_flatten(ww_graph *g, const char *name, int input, wanwu_error *err)
{
    return add_passthrough(g, WW_OP_FLATTEN, name, input, 1, err);
}

int ww_graph_add_dropout(ww_graph *g, const char *name, int input, wanwu_error *err)
{
    return add_passthrough(g, WW_OP_DROPOUT, name, input, 0, err);
}

int ww_graph_add_linear(ww_graph *g, const char *name, int input, int out_features,
                        const float *weight, const float *bias, wanwu_error *err)
{
    if (!valid_value(g, input)) return bad_input("Linear", name, err);
    const ww_value in = g->values[input];
    if (in.h != 1 || in.w != 1) {
        ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT,
                     "Linear '%s': input is %dx%dx%d; flatten it first", name, in.c, in.h, in.w);
        return -1;
    }
    ww_node *n = append_node(g, WW_OP_LINEAR, name, out_features, 1, 1, err);
    if (!n) return -1;
    n->inputs[0] = input;
    n->num_inputs = 1;
    n->in_features = in.c;
    n->out_features = out_features;
    n->weight = copy_floats(g, weight, (size_t)in.c * (size_t)out_features);
    n->bias = copy_floats(g, bias, (size_t)out_features);
    if (!n->weight || (bias && !n->bias)) return drop_last_node(g, err);
    return n->output;
}

int ww_graph_add_conv2d_shape(ww_graph *g, const char *name, int input,
                              const ww_conv2d_shape *shape, const float *weight, const float *bias,
                              wanwu_error *err)
{
    if (!valid_value(g, input)) return bad_input("Conv2d", name, err);
    const ww_value in = g->values[input];
    ww_conv2d_shape s = *shape;
    s.in_c = in.c;
    s.in_h = in.h;
    s.in_w = in.w;
    if (s.kernel_h <= 0 || s.kernel_w <= 0 || s.stride_h <= 0 || s.stride_w <= 0 ||
        s.dilation_h <= 0 || s.dilation_w <= 0 || s.pad_top < 0 || s.pad_left < 0 ||
        s.pad_bottom < 0 || s.pad_right < 0 || s.groups <= 0 || s.out_c <= 0) {
        ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT,
                     "Conv2d '%s': kernel, stride, dilation, groups and channels must be positive "
                     "and padding non-negative",
                     name);
        return -1;
    }
    s.out_h =
        ww_window_out_dim(in.h, s.kernel_h, s.stride_h, s.pad_top, s.pad_bottom, s.dilation_h);
    s.out_w =
        ww_window_out_dim(in.w, s.kernel_w, s.stride_w, s.pad_left, s.pad_right, s.dilation_w);
    if (ww_conv2d_shape_check(&s, err) != WANWU_OK) {
        ww_error_prefix(err, "Conv2d '%s': ", name);
        return -1;
    }
    ww_node *n = append_node(g, WW_OP_CONV2D, name, s.out_c, s.out_h, s.out_w, err);
    if (!n) return -1;
    n->conv = s;
    n->inputs[0] = input;
    n->num_inputs = 1;
    size_t wcount =
        (size_t)s.out_c * (size_t)(in.c / s.groups) * (size_t)s.kernel_h * (size_t)s.kernel_w;
    n->weight = copy_floats(g, weight, wcount);
    n->bias = copy_floats(g, bias, (size_t)s.out_c);
    if (!n->weight || (bias && !n->bias)) return drop_last_node(g, err);
    return n->output;
}

int ww_graph_add_pool2d_shape(ww_graph *g, ww_op_type op, const char *name, int input,
                              const ww_pool2d_shape *shape, int count_include_pad, wanwu_error *err)
{
    const char *opname = ww_op_name(op);
    if (op != WW_OP_MAXPOOL2D && op != WW_OP_AVGPOOL2D) {
        ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "'%s': %s is not a pooling op", name, opname);
        return -1;
    }
    if (!valid_value(g, input)) return bad_input(opname, name, err);
    const ww_value in = g->values[input];
    ww_pool2d_shape p = *shape;
    if (p.kernel_h <= 0 || p.kernel_w <= 0 || p.stride_h <= 0 || p.stride_w <= 0 || p.pad_top < 0 ||
        p.pad_left < 0 || p.pad_bottom < 0 || p.pad_right < 0 || p.pad_top >= p.kernel_h ||
        p.pad_bottom >= p.kernel_h || p.pad_left >= p.kernel_w || p.pad_right >= p.kernel_w) {
        ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT,
                     "%s '%s': kernel %dx%d, stride %dx%d, padding %d,%d,%d,%d is not valid",
                     opname, name, p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.pad_top,
                     p.pad_left, p.pad_bottom, p.pad_right);
        return -1;
    }
    p.channels = in.c;
    p.in_h = in.h;
    p.in_w = in.w;
    p.out_h = ww_window_out_dim(in.h, p.kernel_h, p.stride_h, p.pad_top, p.pad_bottom, 1);
    p.out_w = ww_window_out_dim(in.w, p.kernel_w, p.stride_w, p.pad_left, p.pad_right, 1);
    ww_node *n = append_node(g, op, name, in.c, p.out_h, p.out_w, err);
    if (!n) return -1;
    n->pool = p;
    n->count_include_pad = count_include_pad;
    n->inputs[0] = input;
    n->num_inputs = 1;
    return n->output;
}

int ww_graph_add_mul_channel(ww_graph *g, const char *name, int x, int scale, wanwu_error *err)
{
    if (!valid_value(g, x) || !valid_value(g, scale)) return bad_input("MulChannel", name, err);
    const ww_value vx = g->values[x], vs = g->values[scale];
    if (vs.c != vx.c || vs.h != 1 || vs.w != 1) {
        ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT,
                     "MulChannel '%s': scale is %dx%dx%d, expected %dx1x1", name, vs.c, vs.h, vs.w,
                     vx.c);
        return -1;
    }
    ww_node *n = append_node(g, WW_OP_MUL_CHANNEL, name, vx.c, vx.h, vx.w, err);
    if (!n) return -1;
    n->inputs[0] = x;
    n->inputs[1] = scale;
    n->num_inputs = 2;
    return n->output;
}

int ww_graph_add_concat(ww_graph *g, const char *name, int a, int b, wanwu_error *err)
{
    if (!valid_value(g, a) || !valid_value(g, b)) return bad_input("Concat", name, err);
    const ww_value va = g->values[a], vb = g->values[b];
    if (va.h != vb.h || va.w != vb.w || va.c > 0x3fffffff - vb.c) {
        ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT,
                     "Concat '%s': shapes %dx%dx%d and %dx%dx%d cannot be joined on channels", name,
                     va.c, va.h, va.w, vb.c, vb.h, vb.w);
        return -1;
    }
    ww_node *n = append_node(g, WW_OP_CONCAT, name, va.c + vb.c, va.h, va.w, err);
    if (!n) return -1;
    n->inputs[0] = a;
    n->inputs[1] = b;
    n->num_inputs = 2;
    return n->output;
}

int ww_graph_add_slice_channels(ww_graph *g, const char *name, int input, int begin, int end,
                                wanwu_error *err)
{
    if (!valid_value(g, input)) return bad_input("SliceChannels", name, err);
    const ww_value in = g->values[input];
    if (begin < 0 || end > in.c || begin >= end) {
        ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT,
                     "SliceChannels '%s': channels [%d, %d) of a %d-channel input", name, begin,
                     end, in.c);
        return -1;
    }
    ww_node *n = append_node(g, WW_OP_SLICE_CHANNELS, name, end - begin, in.h, in.w, err);
    if (!n) return -1;
    n->inputs[0] = input;
    n->num_inputs = 1;
    n->channel_begin = begin;
    n->channel_end = end;
    return n->output;
}

int ww_graph_add_channel_shuffle(ww_graph *g, const char *name, int input, int groups,
                                 wanwu_error *err)
{
    if (!valid_value(g, input)) return bad_input("ChannelShuffle", name, err);
    const ww_value in = g->values[input];
    if (groups <= 0 || in.c % groups != 0) {
        ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT,
                     "ChannelShuffle '%s': %d groups do not divide %d channels", name, groups,
                     in.c);
        return -1;
    }
    ww_node *n = append_node(g, WW_OP_CHANNEL_SHUFFLE, name, in.c, in.h, in.w, err);
    if (!n) return -1;
    n->inputs[0] = input;
    n->num_inputs = 1;
    n->groups = groups;
    n->channel_begin = 0;
    n->channel_end = in.c;
    return n->output;
}

int ww_graph_add_reshape(ww_graph *g, const char *name, int input, int c, int h, int w,
                         wanwu_error *err)
{
    if (!valid_value(g, input)) return bad_input("Reshape", name, err);
    const ww_value in = g->values[input];
    if (c <= 0 || h <= 0 || w <= 0 || (size_t)c * (size_t)h * (size_t)w != ww_value_size(&in)) {
        ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT,
                     "Reshape '%s': %dx%dx%d does not have the %zu values of the input", name, c, h,
                     w, ww_value_size(&in));
        return -1;
    }
    ww_node *n = append_node(g, WW_OP_RESHAPE, name, c, h, w, err);
    if (!n) return -1;
    n->inputs[0] = input;
    n->num_inputs = 1;
    return n->output;
}

int ww_graph_add_softmax(ww_graph *g, const char *name, int input, wanwu_error *err)
{
    if (!valid_value(g, input)) return bad_input("Softmax", name, err);
    const ww_value in = g->values[input];
    ww_node *n = append_node(g, WW_OP_SOFTMAX, name, in.c, in.h, in.w, err);
    if (!n) return -1;
    n->inputs[0] = input;
    n->num_inputs = 1;
    return n->output;
}

int ww_graph_add_affine_clamp(ww_graph *g, const char *name, int input, float scale, float shift,
                              float lo, float hi, wanwu_error *err)
{
    if (!valid_value(g, input)) return bad_input("AffineClamp", name, err);
    const ww_value in = g->values[input];
    ww_node *n = append_node(g, WW_OP_AFFINE_CLAMP, name, in.c, in.h, in.w, err);
    if (!n) return -1;
    n->inputs[0] = input;
    n->num_inputs = 1;
    n->clamp_scale = scale;
    n->clamp_shift = shift;
    n->clamp_lo = lo;
    n->clamp_hi = hi;
    return n->output;
}

int ww_graph_add_eltwise(ww_graph *g, const char *name, int a, int b, const float *b_const,
                         size_t b_count, ww_eltwise_op op, int swap, wanwu_error *err)
{
    if (!valid_value(g, a) || (b >= 0 && !valid_value(g, b)) || (b < 0 && !b_const))
        return bad_input("Eltwise", name, err);
    const ww_value va = g->values[a];
    size_t total = ww_value_size(&va);
    if (b >= 0) {
        const ww_value vb = g->values[b];
        if (vb.c != va.c || vb.h != va.h || vb.w != va.w) {
            ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT,
                         "Eltwise '%s': shapes %dx%dx%d and %dx%dx%d differ", name, va.c, va.h,
                         va.w, vb.c, vb.h, vb.w);
            return -1;
        }
    } else if (b_count != 1 && b_count != (size_t)va.c && b_count != total) {
        ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT,
                     "Eltwise '%s': a constant of %zu values does not broadcast over %dx%dx%d",
                     name, b_count, va.c, va.h, va.w);
        return -1;
    }
    ww_node *n = append_node(g, WW_OP_ELTWISE, name, va.c, va.h, va.w, err);
    if (!n) return -1;
    n->inputs[0] = a;
    n->num_inputs = 1;
    if (b >= 0) {
        n->inputs[1] = b;
        n->num_inputs = 2;
        n->const_count = total;
    } else {
        n->const_count = b_count;
        n->weight = copy_floats(g, b_const, b_count);
        if (!n->weight) return drop_last_node(g, err);
    }
    n->eltwise_op = op;
    n->eltwise_swap = swap;
    return n->output;
}

static int add_gather(ww_graph *g, const char *name, int a, int b, const float *b_const,
                      size_t b_count, int c, int h, int w, const int32_t *index, wanwu_error *err)
{
    if (!valid_value(g, a) || (b >= 0 && !valid_value(g, b)) || !index)
        return bad_input("Gather", name, err);
    size_t sources = ww_value_size(&g->values[a]) +
                     (b >= 0 ? ww_value_size(&g->values[b]) : (b_const ? b_count : 0));
    ww_node *n = append_node(g, WW_OP_GATHER, name, c, h, w, err);
    if (!n) return -1;
    size_t count = (size_t)c * (size_t)h * (size_t)w;
    for (size_t i = 0; i < count; i++)
        if (index[i] < 0 || (size_t)index[i] >= sources) {
            g->num_nodes--;
            g->num_values--;
            g->output = g->num_nodes > 0 ? g->nodes[g->num_nodes - 1].output : -1;
            ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "Gather '%s': index out of range", name);
            return -1;
        }
    n->inputs[0] = a;
    n->num_inputs = 1;
    if (b >= 0) {
        n->inputs[1] = b;
        n->num_inputs = 2;
    }
    n->gather_index = malloc(count * sizeof *n->gather_index);
    if (!n->gather_index) return drop_last_node(g, err);
    memcpy(n->gather_index, index, count * sizeof *index);
    if (b < 0 && b_const) {
        n->weight = copy_floats(g, b_const, b_count);
        if (!n->weight) return drop_last_node(g, err);
    }
    return n->output;
}

int ww_graph_add_gather(ww_graph *g, const char *name, int a, int b, int c, int h, int w,
                        const int32_t *index, wanwu_error *err)
{
    return add_gather(g, name, a, b, NULL, 0, c, h, w, index, err);
}

int ww_graph_add_gather_const(ww_graph *g, const char *name, int a, const float *b_const,
                              size_t b_count, int c, int h, int w, const int32_t *index,
                              wanwu_error *err)
{
    return add_gather(g, name, a, -1, b_const, b_count, c, h, w, index, err);
}

int ww_graph_add_constant(ww_graph *g, const char *name, int c, int h, int w, const float *data,
                          wanwu_error *err)
{
    if (!data) return bad_input("Constant", name, err);
    ww_node *n = append_node(g, WW_OP_CONSTANT, name, c, h, w, err);
    if (!n) return -1;
    n->weight = copy_floats(g, data, (size_t)c * (size_t)h * (size_t)w);
    if (!n->weight) return drop_last_node(g, err);
    return n->output;
}

int64_t ww_node_macs(const ww_node *n)
{
    if (n->removed) return 0;
    if (n->op == WW_OP_CONV2D) {
        const ww_conv2d_shape *s = &n->conv;
        return (int64_t)s->out_c * s->out_h * s->out_w * (s->in_c / s->groups) * s->kernel_h *
               s->kernel_w;
    }
    if (n->op == WW_OP_LINEAR) return (int64_t)n->in_features * n->out_features;
    return 0;
}

int64_t ww_graph_macs(const ww_graph *g)
{
    int64_t macs = 0;
    for (int i = 0; i < g->num_nodes; i++)
        macs += ww_node_macs(&g->nodes[i]);
    return macs;
}

int ww_graph_use_count(const ww_graph *g, int value)
{
    int count = value == g->output ? 1 : 0;
    for (int i = 0; i < g->num_nodes; i++) {
        const ww_node *n = &g->nodes[i];
        if (n->removed) continue;
        for (int k = 0; k < n->num_inputs; k++)
            count += n->inputs[k] == value;
    }
    return count;
}

void ww_graph_replace_uses(ww_graph *g, int from, int to)
{
    for (int i = 0; i < g->num_nodes; i++) {
        ww_node *n = &g->nodes[i];
        if (n->removed) continue;
        for (int k = 0; k < n->num_inputs; k++)
            if (n->inputs[k] == from) n->inputs[k] = to;
    }
    if (g->output == from) g->output = to;
}
