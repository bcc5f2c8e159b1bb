/* Convolution with few multiply-adds per output and a wide output map
 * (the 3-channel 3x3 stride-2 stems of MobileNetV2, EfficientNet-B0 and
 * ShuffleNetV2), on AVX-512, with output pixels in the vector lanes:
 *
 *   weights   packed at create as [group of 8 output channels][tap][8],
 *             a tap being one (input channel, ky, kx), zero lanes past
 *             out_c;
 *   run       per band of a few output rows, the input rows the band
 *             reads are copied zero-padded and, for stride 2, split into
 *             even and odd columns, so that every tap of an output row is
 *             one contiguous vector load; tiles of 8 output channels x up
 *             to 48 pixels (24 accumulators), each tap one load per 16
 *             pixels times 8 broadcast weights, written straight into the
 *             NCHW output rows with bias, residual and activation.
 *
 * The im2col GEMM spends much of such a layer packing panels of 27-deep
 * columns; the direct kernel (conv2d_direct.h) puts output channels in the
 * lanes, which 24 or 32 channels fill poorly, and transposes its sums.
 * Alone at 1 thread, 3 -> 32 @224 stride 2: 0.21 -> 0.155 ms with ReLU6,
 * 0.27 -> 0.21 with SiLU; 3 -> 24: 0.17 -> 0.14. 1x1 convolutions stay on
 * the GEMM, which reads their input in place (16 -> 96 @112: 0.27 ms
 * there, 0.31 here). */
#ifndef WW_KERNELS_CONV2D_STEM_H
#define WW_KERNELS_CONV2D_STEM_H

#include "core/arena.h"
#include "core/threadpool.h"
#include "ops/ops.h"

typedef struct ww_conv_stem ww_conv_stem;

/* Most taps (in_c * kernel_h * kernel_w) the stem kernel takes: the
 * weights of a tile stay in L1 and a tap's pointers on the stack. Deeper
 * convolutions amortize the GEMM's packing (or take the direct kernel). */
#define WW_CONV_STEM_MAX_TAPS 64
/* Narrowest output map it takes: two vectors of pixels per row. */
#define WW_CONV_STEM_MIN_OUT_W 32

/* 1 when the stem kernel computes `s` on `isa`: AVX-512, groups 1,
 * dilation 1, stride_w 1 or 2, a kernel larger than 1x1, at most
 * WW_CONV_STEM_MAX_TAPS taps and out_w >= WW_CONV_STEM_MIN_OUT_W. */
int ww_conv_stem_suits(const ww_conv2d_shape *s, ww_isa isa);

/* Packs weight (out_c x in_c x kh x kw) and bias (out_c, or NULL) into
 * memory from `arena` (or a block of its own when NULL); NULL when out of
 * memory. */
ww_conv_stem *ww_conv_stem_create(const ww_conv2d_shape *s, const float *weight, const float *bias,
                                  ww_arena *arena);
void ww_conv_stem_free(ww_conv_stem *d);

size_t ww_conv_stem_scratch_floats(const ww_conv_stem *d, int threads);

/* out = act(conv(in) + bias + residual); residual may be NULL. */
void ww_conv_stem_run(const ww_conv_stem *d, const float *in, const float *residual,
                      ww_activation act, float *out, float *scratch, ww_threadpool *pool);

#endif
