/* Operators on float32 NCHW tensors with batch 1.
 *
 * Every operator has a plain reference implementation (ww_*_ref, one file
 * per op in src/ops/) that is obviously correct, and an optimized one
 * (src/kernels/) that the network runs. Tests compare the two on random
 * shapes. Fused epilogues: out = act(op(x) + bias + residual). */
#ifndef WW_OPS_OPS_H
#define WW_OPS_OPS_H

#include "core/threadpool.h"
#include "wanwu.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* SIGMOID and SILU (x * sigmoid(x)) are computed as PyTorch does on the
 * CPU, 1 / (1 + exp(-x)) and x / (1 + exp(-x)); the vectorized kernels use
 * their own exp (kernels/vmath.h, within a few ulp of expf). */
typedef enum ww_activation {
    WW_ACT_NONE,
    WW_ACT_RELU,
    WW_ACT_RELU6,
    WW_ACT_SIGMOID,
    WW_ACT_SILU,
    WW_ACT_HARDSWISH /* x * relu6(x + 3) / 6 */
} ww_activation;

static inline float ww_activate(float v, ww_activation act)
{
    switch (act) {
    case WW_ACT_RELU: return v > 0.0f ? v : 0.0f;
    case WW_ACT_RELU6: return v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
    case WW_ACT_SIGMOID: return 1.0f / (1.0f + expf(-v));
    case WW_ACT_SILU: return v / (1.0f + expf(-v));
    case WW_ACT_HARDSWISH: {
        float r = v + 3.0f;
        r = r < 0.0f ? 0.0f : (r > 6.0f ? 6.0f : r);
        return v * r / 6.0f;
    }
    case WW_ACT_NONE: break;
    }
    return v;
}

/* 1 when the optimized conv/add kernels can apply `act` in their epilogue
 * (all activations: every ISA path of the conv, Winograd, depthwise and add
 * kernels has a vector version of each). */
static inline int ww_kernel_epilogue_supports(ww_activation act)
{
    return act == WW_ACT_NONE || act == WW_ACT_RELU || act == WW_ACT_RELU6 ||
           act == WW_ACT_SIGMOID || act == WW_ACT_SILU || act == WW_ACT_HARDSWISH;
}

/* Output extent of a convolution or pooling window along one axis
 * (floor mode); returns <= 0 when the window does not fit. */
int ww_window_out_dim(int in, int kernel, int stride, int pad_begin, int pad_end, int dilation);

typedef struct ww_conv2d_shape {
    int in_c, in_h, in_w;
    int out_c, out_h, out_w; /* out_h/out_w derived with ww_window_out_dim */
    int kernel_h, kernel_w;
    int stride_h, stride_w;
    int pad_top, pad_left, pad_bottom, pad_right;
    int dilation_h, dilation_w;
    int groups; /* in_c and out_c are multiples of groups */
} ww_conv2d_shape;

/* Checks a shape for consistency (positive sizes, groups divide channels,
 * out dims match the window formula). */
wanwu_status ww_conv2d_shape_check(const ww_conv2d_shape *s, wanwu_error *err);

/* Reference convolution. weight is [out_c][in_c/groups][kernel_h][kernel_w];
 * bias (out_c) and residual (out_c x out_h x out_w) may be NULL. */
void ww_conv2d_ref(const ww_conv2d_shape *s, const float *in, const float *weight,
                   const float *bias, const float *residual, ww_activation act, float *out);

/* Instruction-set variants of the optimized kernels. WW_ISA_AUTO picks the
 * widest one the CPU supports; tests force the others so that every code
 * path runs on one machine. */
typedef enum ww_isa { WW_ISA_AUTO, WW_ISA_PORTABLE, WW_ISA_AVX2, WW_ISA_AVX512 } ww_isa;
/* 1 when the running CPU (and this build) can use `isa`; AUTO is always 1. */
int ww_isa_supported(ww_isa isa);
/* The variant AUTO resolves to on this CPU: the widest supported one, capped
 * by $WANWU_ISA (avx512, avx2 or scalar) when set; read once. */
ww_isa ww_isa_best(void);
const char *ww_isa_name(ww_isa isa);

/* Optimized convolution, prepared once (weights packed) and run many times.
 * The weights and bias are copied: the caller's arrays may be freed after
 * create. Depthwise convs (one input channel per group) run a direct
 * vector loop over a zero-padded copy of each channel; 1x1 stride-1
 * unpadded convs run as a plain GEMM on the input; everything else packs
 * im2col panels on the fly and runs the same GEMM. */
typedef struct ww_pool2d_shape {
    int channels, in_h, in_w, out_h, out_w;
    int kernel_h, kernel_w;
    int stride_h, stride_w;
    int pad_top, pad_left, pad_bottom, pad_right; /* padded cells are ignored (-inf for max) */
} ww_pool2d_shape;

typedef struct ww_conv2d ww_conv2d;
wanwu_status ww_conv2d_create(const ww_conv2d_shape *s, const float *weight, const float *bias,
                              ww_activation act, ww_conv2d **out, wanwu_error *err);
/* Same, with an explicit instruction set (WANWU_ERR_UNSUPPORTED if the CPU
 * lacks it). */
wanwu_status ww_conv2d_create_isa(const ww_conv2d_shape *s, const float *weight, const float *bias,
                                  ww_activation act, ww_isa isa, ww_conv2d **out, wanwu_error *err);
/* Same, with the packed weights in memory from `arena` (NULL: the conv's
 * own), which must outlive the conv: a model packs all its convs into one
 * arena of huge pages (see core/arena.h). */
struct ww_arena;
wanwu_status ww_conv2d_create_in(const ww_conv2d_shape *s, const float *weight, const float *bias,
                                 ww_activation act, ww_isa isa, struct ww_arena *arena,
                                 ww_conv2d **out, wanwu_error *err);
/* A conv followed by max pooling (after its activation) as one operation:
 * ww_conv2d_run writes the pooled output (pool->channels x pool->out_h x
 * pool->out_w); pool->channels, in_h and in_w must be the conv's output
 * shape. A pooled conv takes no residual. On AVX-512 the direct kernel
 * pools as it goes (conv2d_direct.h); elsewhere the conv output goes to
 * scratch and is pooled from there. */
wanwu_status ww_conv2d_create_pooled(const ww_conv2d_shape *s, const float *weight,
                                     const float *bias, ww_activation act, ww_isa isa,
                                     struct ww_arena *arena, const ww_pool2d_shape *pool,
                                     ww_conv2d **out, wanwu_error *err);
void ww_conv2d_free(ww_conv2d *conv);
/* Tells a 1x1 conv that its input is the output of depthwise conv
 * `producer` (which must outlive it; NULL: unknown). Where the producer
 * splits its channels between threads, the conv then splits its K (input
 * channels) the same way, so each thread reads only the channels it wrote,
 * and the threads' partial sums are added after (a second pass over the
 * output). The result may differ from the unsplit sum by rounding. */
void ww_conv2d_set_input_producer(ww_conv2d *conv, const ww_conv2d *producer);
/* A 1x1 conv (on a map larger than 1x1) fetches `bytes` at `at` (memory
 * the layers after it read next, e.g. the classifier's weights) into cache
 * while it computes, spread over its GEMM tiles, so those reads come from
 * cache rather than from memory after it; results do not change. Replaces
 * an earlier one; returns 1 when taken, 0 when not (another algorithm or
 * no bytes: then none). The memory must stay valid as long as conv. */
int ww_conv2d_set_side_fetch(ww_conv2d *conv, const void *at, size_t bytes);
/* 1 when a run of `conv` with `threads` threads takes that K split. */
int ww_conv2d_splits_k(const ww_conv2d *conv, int threads);
/* Tells a 1x1 conv that depthwise conv `consumer` reads its output (NULL:
 * unknown). Where the consumer splits its channels between threads, the
 * conv splits its output channels the same way (each thread then writes
 * what its own core reads next) rather than its pixels. */
void ww_conv2d_set_output_consumer(ww_conv2d *conv, const ww_conv2d *consumer);
/* 1 when a run of `conv` with `threads` threads takes that M split. */
int ww_conv2d_splits_m(const ww_conv2d *conv, int threads);
const ww_conv2d_shape *ww_conv2d_get_shape(const ww_conv2d *conv);
/* The algorithm create chose: "depthwise", "gemm_1x1", "im2col",
 * "winograd", "direct" or "stem" (kernels/conv2d.c). */
const char *ww_conv2d_algorithm(const ww_conv2d *conv);
/* Floats of scratch memory ww_conv2d_run needs (may be 0) when run with a
 * pool of `threads` threads. Callers allocate it once and reuse it; it must
 * hold at least ww_conv2d_scratch_floats(conv, ww_threadpool_size(pool))
 * floats and may be NULL when that is 0. residual may be NULL; in, residual
 * and out must not overlap. */
size_t ww_conv2d_scratch_floats(const ww_conv2d *conv, int threads);
/* Floats of one thread's work area in the scratch of a run with a pool
 * of `threads` threads, for convs whose kernels give each thread its own
 * (Winograd, the direct convolutions; 0 for the others), and the scratch
 * a run needs when its pool places those areas area_floats apart
 * (ww_threadpool_set_area_floats). A session sets the largest area of
 * its convs so that every thread finds its area at the same address in
 * every layer. */
size_t ww_conv2d_area_floats(const ww_conv2d *conv, int threads);
size_t ww_conv2d_scratch_floats_areas(const ww_conv2d *conv, int threads, size_t area_floats);
void ww_conv2d_run(const ww_conv2d *conv, const float *in, const float *residual, float *out,
                   float *scratch, ww_threadpool *pool);
/* 1 when convs of shape `s` take a per-input-channel scale
 * (ww_conv2d_run_scaled): 1x1, stride 1, no padding, one group, at least
 * two output pixels (the GEMM path). */
int ww_conv2d_shape_takes_in_scale(const ww_conv2d_shape *s);
/* ww_conv2d_run on the input with channel c multiplied by in_scale[c]
 * (squeeze-and-excitation's per-channel multiply, applied to a copy of
 * the packed weights, or to the input as the conv packs it, instead of as
 * a pass of its own). The conv's shape must
 * take it (above) and it must not be pooled; in_scale NULL is
 * ww_conv2d_run. */
void ww_conv2d_run_scaled(const ww_conv2d *conv, const float *in, const float *in_scale,
                          const float *residual, float *out, float *scratch, ww_threadpool *pool);
/* ww_conv2d_run, then means[c] = the mean of output channel c (a global
 * average pool of `out`: squeeze-and-excitation's after a depthwise
 * conv). The AVX-512 depthwise kernel sums each channel as it finishes it,
 * while it is in cache, instead of a pass over the whole output after.
 * The conv must not be pooled; means must not overlap the other buffers. */
void ww_conv2d_run_means(const ww_conv2d *conv, const float *in, const float *residual, float *out,
                         float *means, float *scratch, ww_threadpool *pool);

void ww_maxpool2d_ref(const ww_pool2d_shape *s, const float *in, float *out);
void ww_maxpool2d(const ww_pool2d_shape *s, const float *in, float *out, ww_threadpool *pool);
/* The same with a given instruction set (WW_ISA_AUTO: the best one). */
void ww_maxpool2d_isa(ww_isa isa, const ww_pool2d_shape *s, const float *in, float *out,
                      ww_threadpool *pool);

/* Mean over each channel's hw values. */
void ww_global_avgpool_ref(int channels, int hw, const float *in, float *out);
void ww_global_avgpool(int channels, int hw, const float *in, float *out, ww_threadpool *pool);

/* out[o] = act(bias[o] + sum_i weight[o][i] * in[i]); bias may be NULL. */
void ww_linear_ref(int in_features, int out_features, const float *in, const float *weight,
                   const float *bias, ww_activation act, float *out);
void ww_linear(int in_features, int out_features, const float *in, const float *weight,
               const float *bias, ww_activation act, float *out, ww_threadpool *pool);
void ww_linear_isa(ww_isa isa, int in_features, int out_features, const float *in,
                   const float *weight, const float *bias, ww_activation act, float *out,
                   ww_threadpool *pool);

/* out[i] = act(a[i] + b[i]) */
void ww_add_ref(size_t n, const float *a, const float *b, ww_activation act, float *out);
void ww_add(size_t n, const float *a, const float *b, ww_activation act, float *out,
            ww_threadpool *pool);
/* The optimized element-wise kernels with an explicit instruction set (AUTO
 * = best; one the CPU lacks falls back to portable code), for the tests. */
void ww_add_isa(ww_isa isa, size_t n, const float *a, const float *b, ww_activation act, float *out,
                ww_threadpool *pool);

/* out[i] = act(in[i]); in-place allowed */
void ww_activation_ref(size_t n, const float *in, ww_activation act, float *out);
void ww_activate_array(size_t n, const float *in, ww_activation act, float *out,
                       ww_threadpool *pool);
void ww_activate_array_isa(ww_isa isa, size_t n, const float *in, ww_activation act, float *out,
                           ww_threadpool *pool);

/* x[i] = (float)((double)x[i] * scale), in place (folding BatchNorm into
 * conv weights); every variant gives the reference's bits. */
void ww_scale_f64_ref(size_t n, float *x, double scale);
void ww_scale_f64(size_t n, float *x, double scale);
void ww_scale_f64_isa(ww_isa isa, size_t n, float *x, double scale);

/* Inference BatchNorm: out = (x - mean) / sqrt(var + eps) * gamma + beta, per channel. */
void ww_batchnorm_ref(int channels, int hw, const float *in, const float *gamma, const float *beta,
                      const float *mean, const float *var, float eps, float *out);

/* out[c][i] = in[c][i] * scale[c] (squeeze-and-excitation's channel scale). */
void ww_mul_channel_ref(int channels, int hw, const float *in, const float *scale, float *out);
void ww_mul_channel(int channels, int hw, const float *in, const float *scale, float *out,
                    ww_threadpool *pool);
void ww_mul_channel_isa(ww_isa isa, int channels, int hw, const float *in, const float *scale,
                        float *out, ww_threadpool *pool);

/* Channel concatenation of two C x H x W maps with the same H x W. */
void ww_concat_channels_ref(int channels_a, int channels_b, int hw, const float *a, const float *b,
                            float *out);

/* Channels [begin, end) of a C x H x W map (channel split / chunk). */
void ww_slice_channels_ref(int begin, int end, int hw, const float *in, float *out);

/* ShuffleNet's channel shuffle: view C as [groups][C/groups], transpose to
 * [C/groups][groups]. Output channel j*groups+g is input channel g*(C/groups)+j. */
void ww_channel_shuffle_ref(int channels, int groups, int hw, const float *in, float *out);
/* Channels [begin, end) of the channel shuffle of (a's channels_a channels,
 * then b's channels_b): concat, shuffle and slice in one pass, each output
 * channel copied once from where it lives. b may be NULL when channels_b is
 * 0. Writes end - begin channels to out. */
void ww_channel_shuffle_range_ref(int channels_a, int channels_b, int groups, int begin, int end,
                                  int hw, const float *a, const float *b, float *out);

/* Average pooling over windows; padded cells are counted when
 * count_include_pad, else ignored (PyTorch/ONNX semantics). */
void ww_avgpool2d_ref(const ww_pool2d_shape *s, int count_include_pad, const float *in, float *out);

/* out[i] = min(hi, max(lo, scale * in[i] + shift)): Clip (scale 1, shift 0)
 * and HardSigmoid (lo 0, hi 1). */
void ww_affine_clamp_ref(size_t n, const float *in, float scale, float shift, float lo, float hi,
                         float *out);

typedef enum ww_eltwise_op { WW_ELT_ADD, WW_ELT_SUB, WW_ELT_MUL, WW_ELT_DIV } ww_eltwise_op;

/* out[i] = a[i] (op) b[j] with j = i (b_count == n), i / hw (b_count ==
 * channels: per-channel) or 0 (b_count == 1); `swap` computes b (op) a. */
void ww_eltwise_ref(size_t n, int hw, const float *a, const float *b, size_t b_count,
                    ww_eltwise_op op, int swap, float *out);
void ww_eltwise(size_t n, int hw, const float *a, const float *b, size_t b_count, ww_eltwise_op op,
                int swap, float *out, ww_threadpool *pool);
void ww_eltwise_isa(ww_isa isa, size_t n, int hw, const float *a, const float *b, size_t b_count,
                    ww_eltwise_op op, int swap, float *out, ww_threadpool *pool);

/* out[i] = index[i] < size_a ? a[index[i]] : b[index[i] - size_a] */
void ww_gather_ref(size_t n, const int32_t *index, const float *a, size_t size_a, const float *b,
                   float *out);

/* Numerically stable softmax over n values. */
void ww_softmax_ref(int n, const float *in, float *out);

#endif
