/* Direct convolution with output channels in the vector lanes, for
 * strided convolutions on AVX-512 (ResNet's 3x3 stride-2 layers):
 *
 *   weights   packed at create as [group of up to 4 blocks][in_c][kh][kw]
 *             [block][16 lanes], 16 output channels per block, zero lanes
 *             past out_c;
 *   run       per band of output rows and group of 64 channels, tiles of
 *             6 pixels: 6 x 4 accumulators, each tap one broadcast input
 *             value per pixel times 4 weight vectors, read straight from
 *             the NCHW input (border pixels one at a time over the taps
 *             inside the input, no padded copy); input channels in
 *             24 KiB weight blocks over the whole band; the band's sums
 *             are transposed 16 x 16 into the NCHW output with residual
 *             and activation (the bias starts the sums).
 *
 * Unlike the im2col GEMM nothing is packed per run, so threads that split
 * the output channels (each reading half the weights) do no duplicate
 * work: the GEMM packed every column panel of the im2col matrix once per
 * row chunk. */
#ifndef WW_KERNELS_CONV2D_DIRECT_H
#define WW_KERNELS_CONV2D_DIRECT_H

#include "core/arena.h"
#include "core/threadpool.h"
#include "ops/ops.h"

typedef struct ww_conv_direct ww_conv_direct;

/* 1 when the direct kernel computes `s` on `isa`: AVX-512, groups 1,
 * dilation 1, stride 2 or more, and at least WW_CONV_DIRECT_MIN_K
 * multiply-adds per output (in_c * kernel_h * kernel_w). */
int ww_conv_direct_suits(const ww_conv2d_shape *s, ww_isa isa);

/* Depth below which the direct kernel lost to the im2col GEMM (ResNet's
 * 7x7 stem, the 1x1 stride-2 downsamples, 3-channel 3x3 stems: 1.0-1.7x
 * the time). */
#define WW_CONV_DIRECT_MIN_K 256

/* Packs weight (out_c x in_c x kh x kw) and bias (out_c, or NULL) into
 * memory from `arena` (or a block of its own when NULL); NULL when out of
 * memory. */
ww_conv_direct *ww_conv_direct_create(const ww_conv2d_shape *s, const float *weight,
                                      const float *bias, ww_arena *arena);
void ww_conv_direct_free(ww_conv_direct *d);

/* Scratch of a run with up to `threads` threads whose pool sets
 * area_floats (ww_threadpool_set_area_floats; 0 when it does not), and
 * the floats of one thread's work area. */
size_t ww_conv_direct_scratch_floats(const ww_conv_direct *d, int threads, size_t area_floats);
size_t ww_conv_direct_area_floats(const ww_conv_direct *d);

/* out = act(conv(in) + bias + residual); residual may be NULL. */
void ww_conv_direct_run(const ww_conv_direct *d, const float *in, const float *residual,
                        ww_activation act, float *out, float *scratch, ww_threadpool *pool);

/* Max pooling fused into the conv (ResNet's stem: conv1, ReLU, 3x3/2 max
 * pool): 1 when the direct kernel can write maxpool(act(conv(in) + bias))
 * for pool `p` without the conv output: AVX-512, groups 1, dilation 1,
 * activation none, ReLU or ReLU6, pool windows at most
 * DIRECT_POOL_MAX_KERNEL rows, and in_c * kernel_h * kernel_w at most
 * DIRECT_POOL_MAX_K (the weights of 64 output channels, 64 KiB, stay in
 * cache as one block). */
#define DIRECT_POOL_MAX_KERNEL 8
#define DIRECT_POOL_MAX_K 256
int ww_conv_direct_suits_pooled(const ww_conv2d_shape *s, const ww_pool2d_shape *p,
                                ww_activation act, ww_isa isa);
size_t ww_conv_direct_pooled_scratch_floats(const ww_conv_direct *d, const ww_pool2d_shape *p,
                                            int threads, size_t area_floats);
size_t ww_conv_direct_pooled_area_floats(const ww_conv_direct *d, const ww_pool2d_shape *p);
/* out (p->channels x p->out_h x p->out_w) = maxpool(act(conv(in) + bias)). */
void ww_conv_direct_run_pooled(const ww_conv_direct *d, const ww_pool2d_shape *p, const float *in,
                               ww_activation act, float *out, float *scratch, ww_threadpool *pool);

#endif
