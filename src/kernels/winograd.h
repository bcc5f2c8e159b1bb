/* Winograd F(2x2, 3x3) and F(4x4, 3x3) convolution for 3x3, stride-1,
 * undilated, ungrouped convolutions (Lavin & Gray, 2015): 16 (36)
 * multiplications per 2x2 (4x4) output tile instead of 36 (144). F(4x4)
 * uses the points 0, +-1, 1/2, -2, inf, whose float error stays within
 * ~1e-5 of the output's scale on ResNet's layers (winograd.c); it is
 * chosen for maps of at least 20x20, where its 36/16 larger weights pay,
 * and for weight-dominated layers whose tiles fill its GEMM rows (14x14).
 * Below, for F(2x2) (m = 2, alpha = 4 points per side; F(4x4): m = 4,
 * alpha = 6):
 *
 *   weights   U = G g G^T (alpha x alpha per output/input channel pair),
 *             computed once at create in double precision and packed as the
 *             B operand of the blocked GEMM: one C x K matrix per point xi;
 *             weight-dominated layers instead keep the raw weights and
 *             transform U per run, a column panel and block of channels at
 *             a time (the four corner points are raw taps, read in place);
 *   input     V = B^T d B for every alpha x alpha input patch (stride m), written
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
 * out of memory. Picks F(4x4, 3x3) for large maps, F(2x2, 3x3) otherwise. */
ww_winograd *ww_winograd_create(const ww_conv2d_shape *s, const float *weight,
                                const ww_gemm_kernel *kern);
/* Same, with the packed weights in memory from `arena` (freed with it). */
ww_winograd *ww_winograd_create_in(const ww_conv2d_shape *s, const float *weight,
                                   const ww_gemm_kernel *kern, ww_arena *arena);

/* The same with the output tile edge forced: 2 (F(2x2, 3x3)), 4 (F(4x4,
 * 3x3)) or 0 (chosen as ww_winograd_create does); either tile stores U or
 * transforms it per run as ww_winograd_create would decide. */
ww_winograd *ww_winograd_create_tiled(const ww_conv2d_shape *s, const float *weight,
                                      const ww_gemm_kernel *kern, int tile);

/* Both: forced tile (0: chosen) and weights from `arena` (NULL: own). */
ww_winograd *ww_winograd_create_tiled_in(const ww_conv2d_shape *s, const float *weight,
                                         const ww_gemm_kernel *kern, int tile, ww_arena *arena);

/* Output tile edge of w: 2 or 4. */
int ww_winograd_tile(const ww_winograd *w);
void ww_winograd_free(ww_winograd *w);

/* 1 when w keeps raw weights and transforms them on every run (the
 * weight-dominated layers: C * K >= 2 * T * (C + K) with F(2x2)'s tiles),
 * 0 when it stores U. */
int ww_winograd_transforms_weights_per_run(const ww_winograd *w);

/* Floats of scratch a run with a pool of `threads` threads needs (grows
 * with the thread count). */
size_t ww_winograd_scratch_floats(const ww_winograd *w, int threads);
/* Floats of one thread's work area (see ww_threadpool_set_area_floats)
 * in a run with a pool of `threads` threads; 0 when such runs share their
 * scratch between threads instead. */
size_t ww_winograd_area_floats(const ww_winograd *w, int threads);
/* Scratch for runs whose pool sets area_floats (ww_threadpool_set_area_floats;
 * 0: ww_winograd_scratch_floats). */
size_t ww_winograd_scratch_floats_areas(const ww_winograd *w, int threads, size_t area_floats);

/* out = act(conv(in) + bias + residual); bias and residual may be NULL. */
void ww_winograd_run(const ww_winograd *w, const float *in, const float *bias,
                     const float *residual, ww_activation act, float *out, float *scratch,
                     ww_threadpool *pool);

#endif
