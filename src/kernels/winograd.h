/* Winograd F(2x2, 3x3) convolution for 3x3, stride-1, undilated,
 * ungrouped convolutions (Lavin & Gray, 2015): 16 multiplications per 2x2
 * output tile instead of 36 (F(4x4, 3x3) would save more but its error,
 * ~1.6e-4 relative on 64-channel layers, exceeds the 1e-4 the kernels are
 * held to).
 *
 *   weights   U = G g G^T (4x4 per output/input channel pair), computed
 *             once at create in double precision and packed as the B
 *             operand of the blocked GEMM: one C x K matrix per point xi (16);
 *   input     V = B^T d B for every 4x4 input patch (stride 2), written
 *             straight into packed-A layout: one T x C matrix per xi,
 *             tiles as rows;
 *   GEMM      M[xi] (T x K) = V[xi] (T x C) * U[xi] (C x K) with the
 *             register-tiled micro-kernel of the chosen instruction set;
 *   output    Y = A^T m A per tile and output channel, then the fused
 *             epilogue act(Y + bias + residual), cropped at the edges.
 *
 * Tiles are the GEMM rows and output channels its columns, so the small
 * late layers (7x7: 16 tiles) still fill the vector lanes. */
#ifndef WW_KERNELS_WINOGRAD_H
#define WW_KERNELS_WINOGRAD_H

#include "core/arena.h"
#include "kernels/gemm.h"
#include "ops/ops.h"

typedef struct ww_winograd ww_winograd;

/* 1 when `s` is a convolution this kernel computes (3x3, stride 1,
 * dilation 1, groups 1, padding at most 2 on each side). */
int ww_winograd_suits(const ww_conv2d_shape *s);

/* Transforms and packs weight (out_c x in_c x 3 x 3) for `kern`; NULL when
 * out of memory. */
ww_winograd *ww_winograd_create(const ww_conv2d_shape *s, const float *weight,
                                const ww_gemm_kernel *kern);
/* Same, with the packed weights in memory from `arena` (freed with it). */
ww_winograd *ww_winograd_create_in(const ww_conv2d_shape *s, const float *weight,
                                   const ww_gemm_kernel *kern, ww_arena *arena);
void ww_winograd_free(ww_winograd *w);

/* 1 when w keeps raw weights and transforms them on every run (the
 * weight-dominated layers: C * K >= 4 * T * (C + K)), 0 when it stores U. */
int ww_winograd_transforms_weights_per_run(const ww_winograd *w);

/* Floats of scratch a run with a pool of `threads` threads needs (grows
 * with the thread count). */
size_t ww_winograd_scratch_floats(const ww_winograd *w, int threads);

/* out = act(conv(in) + bias + residual); bias and residual may be NULL. */
void ww_winograd_run(const ww_winograd *w, const float *in, const float *bias,
                     const float *residual, ww_activation act, float *out, float *scratch,
                     ww_threadpool *pool);

#endif
