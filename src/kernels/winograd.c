/* Winograd F(2x2, 3x3) and F(4x4, 3x3) convolution; see winograd.h. The
 * GEMM is the shared register-tiled one (gemm.h); the input and output
 * transforms are compiled once per instruction set from winograd_in.inc
 * and winograd_out.inc (F(4x4): winograd_in4.inc, winograd_out4.inc). Runs go block by block of
 * tiles (wg_plan): each block's V and M stay in L2 between the three steps. */
#include "kernels/winograd.h"

#include "core/arena.h"
#include "core/prefault.h"
#include "kernels/vec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define WW_HAVE_X86 1
#include <immintrin.h>
#else
#define WW_HAVE_X86 0
#endif

/* F(2x2, 3x3); F(4x4, 3x3) uses w->alpha, w->m and w->points instead. */
#define WG_IN 4      /* input tile edge */
#define WG_OUT 2     /* output tile edge */
#define WG_POINTS 16 /* WG_IN * WG_IN */
#define WG4_IN 6     /* F(4x4, 3x3): input tile edge */
#define WG4_POINTS 36

struct ww_winograd {
    ww_conv2d_shape s;
    const ww_gemm_kernel *kern;
    int m, alpha, points; /* output tile edge (2 or 4), input tile edge m + 2, alpha^2 */
    int C, K;             /* input and output channels */
    int tiles_h, tiles_w; /* output tiles per column / row */
    int T, Tp;            /* tiles, and tiles rounded up to MR */
    int n_panels;         /* NR-column panels of K */
    float *u;        /* [points][n_panels][C][NR] transformed, packed weights; NULL when lazy */
    float *g;        /* lazy: [n_panels][9 taps][C][NR] raw weights, transformed per run */
    int arena_owned; /* u / g belong to a weight arena, not to w */
    void (*weights)(const float *g, size_t tap_stride, int kc, int nr, size_t slot_stride,
                    float *u);
    /* residual and act: applied by F(4x4)'s output transform when it
     * fuses the epilogue (wg_output_fuses); NULL / WW_ACT_NONE otherwise */
    void (*output)(const struct ww_winograd *w, const float *m, size_t xi_stride, int tl, int t,
                   const float *bias, const float *residual, ww_activation act, float *out);
    void (*input)(const struct ww_winograd *w, const float *in, int c, int nc, int t0, int nt,
                  int bp, float *rows, float *stages);
    /* Small maps on AVX-512 (see wg_input_small_suits): 1, and the
     * permute tables of the input transform (lanes outside the map or
     * past the last tile read none, zero). F(2x2), per input patch
     * position (row-major 4x4): the plane float each tile lane reads, mod
     * 32, and the lanes reading floats [0, 32) and [32, 64). F(4x4), per
     * patch column c < 6: the column each tile lane reads, + 16 for odd
     * tile rows (the second row of a permute's pair), and the lanes whose
     * column lies in the map; small_high[0]: the lanes of tile rows 2-3. */
    int small;
    int32_t small_index[16][16];
    uint16_t small_low[16], small_high[16];
    /* F(4x4) rows of at most 16 tiles on AVX-512 (wg4_input_rows_avx512):
     * 1, and per patch column c < 6, the input column each tile lane of a
     * tile row reads, mod 32, and the lanes reading columns [0, 32) and
     * [32, 64) (none for columns outside the row or lanes past the row's
     * tiles). */
    int32_t row_index[6][16];
    uint16_t row_low[6], row_high[6];
};

/* Length of the even/odd column arrays of one input row: every vector
 * the input transform loads lies inside. */
static int wg_input_row_len(const struct ww_winograd *w)
{
    return (w->tiles_w + 1 + 15) / 16 * 16 + 16;
}

/* Staging slots past a block's tiles: the input transform's vector stores
 * run up to 15 tiles past the last one. */
#define WG_STAGE_PAD 16

/* Channels the input transform does per call: with MR = 8 their packed
 * pieces fill whole 64-byte lines. */
#define WG_GROUP 2

/* Floats of one staging area: [WG_GROUP][points][bp + pad], a multiple of 16. */
static size_t wg_stage_floats(const struct ww_winograd *w, int bp)
{
    return (size_t)WG_GROUP * w->points * (bp + WG_STAGE_PAD);
}

/* Floats of the split input rows: alpha rows of m column phases each
 * (F(2x2): 4 rows, even/odd; F(4x4): 6 rows, columns mod 4). */
static size_t wg_rows_floats(const struct ww_winograd *w)
{
    return (size_t)w->alpha * w->m * wg_input_row_len(w);
}

/* Zeroes the split input rows at the start of a work area (the columns
 * past each row's end are read as zeros and never written). The staging
 * areas after them need no clearing: the transform writes every slot
 * the packing reads, tiles past the last one included. */
static void wg_clear_rows(const struct ww_winograd *w, float *work)
{
    memset(work, 0, wg_rows_floats(w) * sizeof *work);
}

/* Per-thread work area of the input transform for blocks of bp tiles: the
 * split input rows and two staging areas (one is packed while the next
 * group is transformed, so the packing loads never wait on the transform's
 * stores). */
static size_t wg_input_work_floats(const struct ww_winograd *w, int bp)
{
    /* +16: room to align to 64 bytes */
    return wg_rows_floats(w) + 2 * wg_stage_floats(w, bp) + 16;
}

#define WG_CAT2(a, b) a##b
#define WG_CAT(a, b) WG_CAT2(a, b)
/* Two-vector shuffle (GCC); elsewhere the input rows are split in scalar code. */
#if defined(__GNUC__) && !defined(__clang__)
#define WG_HAVE_SHUFFLE 1
#define WG_SHUFFLE(a, b, mask) __builtin_shuffle((a), (b), (mask))
#else
#define WG_HAVE_SHUFFLE 0
#endif

int ww_winograd_suits(const ww_conv2d_shape *s)
{
    return s->kernel_h == 3 && s->kernel_w == 3 && s->stride_h == 1 && s->stride_w == 1 &&
           s->dilation_h == 1 && s->dilation_w == 1 && s->groups == 1 && s->pad_top <= 2 &&
           s->pad_left <= 2 && s->pad_bottom <= 2 && s->pad_right <= 2 && s->out_h >= 1 &&
           s->out_w >= 1;
}

/* ---- output transform (per instruction set) ------------------------------ */

typedef float wg_v4f __attribute__((vector_size(16)));
typedef float wg_v4f_u __attribute__((vector_size(16), aligned(4)));
typedef int32_t wg_v4i __attribute__((vector_size(16)));
#define WGO_NAME wg_output_portable
#define WGO_TARGET
#define WGO_VEC wg_v4f
#define WGO_UVEC wg_v4f_u
#define WGO_VL 4
#include "kernels/winograd_out.inc"
#define WGI_NAME wg_input_portable
#define WGI_TARGET
#define WGI_VEC wg_v4f
#define WGI_UVEC wg_v4f_u
#define WGI_VL 4
#define WGI_EVEN ((wg_v4i){0, 2, 4, 6})
#define WGI_ODD ((wg_v4i){1, 3, 5, 7})
#include "kernels/winograd_in.inc"
#define WGO4_NAME wg4_output_portable
#define WGO4_TARGET
#define WGO4_VEC wg_v4f
#define WGO4_UVEC wg_v4f_u
#define WGO4_VL 4
#define WGO4_ILO ((wg_v4i){0, 4, 1, 5})
#define WGO4_IHI ((wg_v4i){2, 6, 3, 7})
#define WGO4_PLO ((wg_v4i){0, 1, 4, 5})
#define WGO4_PHI ((wg_v4i){2, 3, 6, 7})
#include "kernels/winograd_out4.inc"
#define WGI4_NAME wg4_input_portable
#define WGI4_TARGET
#define WGI4_VEC wg_v4f
#define WGI4_UVEC wg_v4f_u
#define WGI4_VL 4
#define WGI4_SPLIT wg4_split
#include "kernels/winograd_in4.inc"

#if WW_HAVE_X86
typedef float wg_v8f __attribute__((vector_size(32)));
typedef float wg_v8f_u __attribute__((vector_size(32), aligned(4)));
typedef int32_t wg_v8i __attribute__((vector_size(32)));
#define WGO_NAME wg_output_avx2
#define WGO_TARGET __attribute__((target("avx2,fma")))
#define WGO_VEC wg_v8f
#define WGO_UVEC wg_v8f_u
#define WGO_VL 8
#include "kernels/winograd_out.inc"
#define WGI_NAME wg_input_avx2
#define WGI_TARGET __attribute__((target("avx2,fma")))
#define WGI_VEC wg_v8f
#define WGI_UVEC wg_v8f_u
#define WGI_VL 8
#define WGI_EVEN ((wg_v8i){0, 2, 4, 6, 8, 10, 12, 14})
#define WGI_ODD ((wg_v8i){1, 3, 5, 7, 9, 11, 13, 15})
#define WGI_HVEC wg_v4f
#define WGI_HUVEC wg_v4f_u
#define WGI_HEVEN ((wg_v4i){0, 2, 4, 6})
#define WGI_HODD ((wg_v4i){1, 3, 5, 7})
#include "kernels/winograd_in.inc"
#define WGO4_NAME wg4_output_avx2
#define WGO4_TARGET __attribute__((target("avx2,fma")))
#define WGO4_VEC wg_v8f
#define WGO4_UVEC wg_v8f_u
#define WGO4_VL 8
#define WGO4_ILO ((wg_v8i){0, 8, 1, 9, 2, 10, 3, 11})
#define WGO4_IHI ((wg_v8i){4, 12, 5, 13, 6, 14, 7, 15})
#define WGO4_PLO ((wg_v8i){0, 1, 8, 9, 2, 3, 10, 11})
#define WGO4_PHI ((wg_v8i){4, 5, 12, 13, 6, 7, 14, 15})
#include "kernels/winograd_out4.inc"
#define WGI4_NAME wg4_input_avx2
#define WGI4_TARGET __attribute__((target("avx2,fma")))
#define WGI4_VEC wg_v8f
#define WGI4_UVEC wg_v8f_u
#define WGI4_VL 8
#define WGI4_SPLIT wg4_split
#include "kernels/winograd_in4.inc"

/* wg4_split with AVX-512: 16 groups of 4 columns per round, from four
 * 16-float loads masked to the row (lanes outside it read as zero, so no
 * scalar head or tail, and nothing outside the row is touched) and two
 * rounds of even/odd permutes. ResNet-18's rows (56 + 1 padding column)
 * take one round; the 4-float wg4_split took three rounds and three
 * scalar groups (its 56x56 layers ran 3-4 % longer). Writes all n groups
 * (columns past the row as zeros). */
__attribute__((target("avx512f"))) static void wg4_split_avx512(const float *row, int in_w, int pad,
                                                                int n, float *ph, int len)
{
    const __m512i even =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd =
        _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for (int i = 0; i < n; i += 16) {
        __m512 v[4];
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            int x = 4 * i - pad + 16 * j; /* row column of lane 0 */
            int lo = x < 0 ? -x : 0, hi = in_w - x < 16 ? in_w - x : 16;
            __mmask16 m = 0;
            if (hi > lo) m = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
            /* the address of lane 0 may lie outside the row: masked lanes
             * are never read, so it is formed as an integer */
            v[j] = _mm512_maskz_loadu_ps(m, (const void *)((uintptr_t)row + (intptr_t)x * 4));
        }
        __m512 e1 = _mm512_permutex2var_ps(v[0], even, v[1]);
        __m512 o1 = _mm512_permutex2var_ps(v[0], odd, v[1]);
        __m512 e2 = _mm512_permutex2var_ps(v[2], even, v[3]);
        __m512 o2 = _mm512_permutex2var_ps(v[2], odd, v[3]);
        __mmask16 keep = n - i < 16 ? (__mmask16)((1u << (n - i)) - 1) : (__mmask16)0xffff;
        _mm512_mask_storeu_ps(ph + i, keep, _mm512_permutex2var_ps(e1, even, e2));
        _mm512_mask_storeu_ps(ph + len + i, keep, _mm512_permutex2var_ps(o1, even, o2));
        _mm512_mask_storeu_ps(ph + 2 * len + i, keep, _mm512_permutex2var_ps(e1, odd, e2));
        _mm512_mask_storeu_ps(ph + 3 * len + i, keep, _mm512_permutex2var_ps(o1, odd, o2));
    }
}

typedef float wg_v16f __attribute__((vector_size(64)));
typedef float wg_v16f_u __attribute__((vector_size(64), aligned(4)));
typedef int32_t wg_v16i __attribute__((vector_size(64)));
#define WGO_NAME wg_output_avx512
#define WGO_TARGET __attribute__((target("avx512f")))
#define WGO_VEC wg_v16f
#define WGO_UVEC wg_v16f_u
#define WGO_VL 16
#include "kernels/winograd_out.inc"
#define WGI_NAME wg_input_avx512
#define WGI_TARGET __attribute__((target("avx512f")))
#define WGI_VEC wg_v16f
#define WGI_UVEC wg_v16f_u
#define WGI_VL 16
#define WGI_EVEN ((wg_v16i){0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30})
#define WGI_ODD ((wg_v16i){1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31})
#define WGI_HVEC wg_v8f
#define WGI_HUVEC wg_v8f_u
#define WGI_HEVEN ((wg_v8i){0, 2, 4, 6, 8, 10, 12, 14})
#define WGI_HODD ((wg_v8i){1, 3, 5, 7, 9, 11, 13, 15})
#include "kernels/winograd_in.inc"

/* Masks of the `vectors` 16-float loads that cover n floats. */
static inline void wg_load_masks(int n, int vectors, __mmask16 *mask)
{
    for (int q = 0; q < vectors; q++) {
        int lanes = n - 16 * q;
        mask[q] = lanes >= 16 ? 0xffff : lanes > 0 ? (__mmask16)((1u << lanes) - 1) : 0;
    }
}

/* One point's 16 tile lanes into packed V: tiles 0-7 at dst (the first
 * MR = 8 panel), tiles 8-15 one panel (8 C floats) on when there are two. */
__attribute__((target("avx512f"))) static inline __attribute__((always_inline)) void
wg_store_point_panels(float *dst, size_t panel_stride, __m512 point, int two_panels)
{
    _mm256_storeu_ps(dst, _mm512_castps512_ps256(point));
    if (two_panels)
        _mm256_storeu_ps(dst + panel_stride,
                         _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(point), 1)));
}

/* F(2x2) input transform of a whole small map, straight into V's packed
 * layout: the row-split template spends most of its time on 7x7 maps in
 * scalar splits of 7-float rows, clearing padding rows, and vector loads
 * stalled on the scalar stores before them (7 % of ResNet-18's 512 @7
 * conv, and 1 % more in wg_pack). Here a channel's plane is four
 * registers, and each of the 16 input patch positions of all (at most 16)
 * tiles is picked out of them by two permutes, then transformed with the
 * same operations, in the same order, as winograd_in.inc. Tiles are the
 * vector lanes; V's two MR = 8 tile panels get a half vector each. */
__attribute__((target("avx512f"))) static void wg_input_small_avx512(const struct ww_winograd *w,
                                                                     const float *in, int c_begin,
                                                                     int c_end, float *v,
                                                                     size_t xi_stride)
{
    int n = w->s.in_h * w->s.in_w, C = w->C, two_panels = w->Tp > 8;
    __mmask16 load[4];
    wg_load_masks(n, 4, load);
    for (int c = c_begin; c < c_end; c++) {
        const float *plane = in + (size_t)c * n;
        /* masked-off lanes read nothing: the plane's end may end the buffer */
        __m512 p0 = _mm512_maskz_loadu_ps(load[0], plane);
        __m512 p1 = _mm512_maskz_loadu_ps(load[1], plane + 16);
        __m512 p2 = _mm512_maskz_loadu_ps(load[2], plane + 32);
        __m512 p3 = _mm512_maskz_loadu_ps(load[3], plane + 48);
        __m512 d[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) {
            __m512i index = _mm512_loadu_si512(w->small_index[i]);
            __m512 low = _mm512_maskz_permutex2var_ps(w->small_low[i], p0, index, p1);
            d[i] =
                _mm512_mask_blend_ps(w->small_high[i], low, _mm512_permutex2var_ps(p2, index, p3));
        }
        __m512 h[4][4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            __m512 d0 = d[4 * r], d1 = d[4 * r + 1], d2 = d[4 * r + 2], d3 = d[4 * r + 3];
            h[r][0] = _mm512_sub_ps(d0, d2);
            h[r][1] = _mm512_add_ps(d1, d2);
            h[r][2] = _mm512_sub_ps(d2, d1);
            h[r][3] = _mm512_sub_ps(d1, d3);
        }
        float *vc = v + (size_t)c * 8;
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            __m512 point[4] = {_mm512_sub_ps(h[0][j], h[2][j]), _mm512_add_ps(h[1][j], h[2][j]),
                               _mm512_sub_ps(h[2][j], h[1][j]), _mm512_sub_ps(h[1][j], h[3][j])};
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                wg_store_point_panels(vc + (size_t)(i * 4 + j) * xi_stride, (size_t)8 * C, point[i],
                                      two_panels);
            }
        }
    }
}
#define WGO4_NAME wg4_output_avx512
#define WGO4_TARGET __attribute__((target("avx512f")))
#define WGO4_VEC wg_v16f
#define WGO4_UVEC wg_v16f_u
#define WGO4_VL 16
#define WGO4_ILO ((wg_v16i){0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23})
#define WGO4_IHI ((wg_v16i){8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31})
#define WGO4_PLO ((wg_v16i){0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23})
#define WGO4_PHI ((wg_v16i){8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31})
#include "kernels/winograd_out4.inc"
/* wg4_output_avx512 for the common case, written with intrinsics: whole
 * 4x4 tiles (cols == 4; rows may be cut) and K a multiple of 16; other
 * tiles go to the generic one. The generic template, at 16 lanes, kept
 * 24 column sums, the outputs and 16 piece addresses live at once and
 * spilled most of them (~100 ns per tile and 16 channels with M in L1);
 * here each output row is transposed, finished and stored as soon as it
 * is computed, and the 16-byte pieces come straight out of the
 * registers. Same operations per output as WG4_AT. */
__attribute__((target("avx512f"))) static inline __attribute__((always_inline)) void
wg4_output_rows_avx512_k(const struct ww_winograd *w, const float *m, size_t xi_stride, int tl,
                         int t, const float *bias, const float *residual, ww_activation act,
                         float *out, int has_residual)
{
    const ww_conv2d_shape *s = &w->s;
    int K = w->K, ow = s->out_w;
    int ty = t / w->tiles_w, tx = t % w->tiles_w;
    int oy0 = ty * 4, ox0 = tx * 4;
    if (ow - ox0 < 4 || K % 16 != 0) {
        wg4_output_avx512(w, m, xi_stride, tl, t, bias, residual, act, out);
        return;
    }
    int rows = s->out_h - oy0 < 4 ? s->out_h - oy0 : 4;
    size_t plane = (size_t)s->out_h * ow;
    const float *base = m + (size_t)tl * K;
    const __m512i ilo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i ihi =
        _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512i plo = _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    const __m512i phi =
        _mm512_setr_epi32(8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
    const __m128 zero = _mm_setzero_ps(), six = _mm_set1_ps(6.0f);
    for (int k0 = 0; k0 < K; k0 += 16) {
        wg_v16f tmp[4][WG4_IN];
#pragma GCC unroll 6
        for (int j = 0; j < WG4_IN; j++) {
            const float *p = base + (size_t)j * xi_stride + k0;
            wg_v16f r[4];
            WG4_AT(*(const wg_v16f_u *)(p + 0 * WG4_IN * xi_stride),
                   *(const wg_v16f_u *)(p + 1 * WG4_IN * xi_stride),
                   *(const wg_v16f_u *)(p + 2 * WG4_IN * xi_stride),
                   *(const wg_v16f_u *)(p + 3 * WG4_IN * xi_stride),
                   *(const wg_v16f_u *)(p + 4 * WG4_IN * xi_stride),
                   *(const wg_v16f_u *)(p + 5 * WG4_IN * xi_stride), r);
            for (int i = 0; i < 4; i++)
                tmp[i][j] = r[i];
        }
        wg_v16f bv = {0};
        if (bias) bv = *(const wg_v16f_u *)(bias + k0);
        for (int i = 0; i < rows; i++) {
            wg_v16f o[4];
            WG4_AT(tmp[i][0], tmp[i][1], tmp[i][2], tmp[i][3], tmp[i][4], tmp[i][5], o);
            __m512 o0 = (__m512)(o[0] + bv), o1 = (__m512)(o[1] + bv);
            __m512 o2 = (__m512)(o[2] + bv), o3 = (__m512)(o[3] + bv);
            /* each channel's 4 columns side by side: r[q] holds channels
             * 4q .. 4q + 3 */
            __m512 ab_lo = _mm512_permutex2var_ps(o0, ilo, o1);
            __m512 ab_hi = _mm512_permutex2var_ps(o0, ihi, o1);
            __m512 cd_lo = _mm512_permutex2var_ps(o2, ilo, o3);
            __m512 cd_hi = _mm512_permutex2var_ps(o2, ihi, o3);
            __m512 r[4] = {_mm512_permutex2var_ps(ab_lo, plo, cd_lo),
                           _mm512_permutex2var_ps(ab_lo, phi, cd_lo),
                           _mm512_permutex2var_ps(ab_hi, plo, cd_hi),
                           _mm512_permutex2var_ps(ab_hi, phi, cd_hi)};
            size_t at = (size_t)(oy0 + i) * ow + ox0 + (size_t)k0 * plane;
            float *po = out + at;
            const float *pr = has_residual ? residual + at : NULL;
#define WG4_OUT_PIECE(q, part)                                                                     \
    do {                                                                                           \
        __m128 v = _mm512_extractf32x4_ps(r[q], part);                                             \
        if (has_residual) {                                                                        \
            v = _mm_add_ps(v, _mm_loadu_ps(pr));                                                   \
            pr += plane;                                                                           \
        }                                                                                          \
        if (act != WW_ACT_NONE) v = _mm_max_ps(v, zero);                                           \
        if (act == WW_ACT_RELU6) v = _mm_min_ps(v, six);                                           \
        _mm_storeu_ps(po, v);                                                                      \
        po += plane;                                                                               \
    } while (0)
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++) {
                WG4_OUT_PIECE(q, 0);
                WG4_OUT_PIECE(q, 1);
                WG4_OUT_PIECE(q, 2);
                WG4_OUT_PIECE(q, 3);
            }
#undef WG4_OUT_PIECE
        }
    }
}

/* The epilogue's options as constants, chosen once per tile: tested per
 * 16-byte piece, their three branches outnumbered the stores (64 -> 64
 * at 56x56 with ReLU alone, 1 thread: 0.614 -> 0.604 ms, with a residual
 * 0.690 -> 0.665; 128 -> 128 at 28x28 0.563 -> 0.557). */
__attribute__((target("avx512f"))) static void
wg4_output_rows_avx512(const struct ww_winograd *w, const float *m, size_t xi_stride, int tl, int t,
                       const float *bias, const float *residual, ww_activation act, float *out)
{
#define WG4_OUT_CASE(ACT)                                                                          \
    do {                                                                                           \
        if (residual)                                                                              \
            wg4_output_rows_avx512_k(w, m, xi_stride, tl, t, bias, residual, ACT, out, 1);         \
        else                                                                                       \
            wg4_output_rows_avx512_k(w, m, xi_stride, tl, t, bias, NULL, ACT, out, 0);             \
    } while (0)
    switch (act) {
    case WW_ACT_RELU: WG4_OUT_CASE(WW_ACT_RELU); break;
    case WW_ACT_RELU6: WG4_OUT_CASE(WW_ACT_RELU6); break;
    default: WG4_OUT_CASE(WW_ACT_NONE); break; /* the runs fuse no others (out_fused) */
    }
#undef WG4_OUT_CASE
}

#define WGI4_NAME wg4_input_avx512
#define WGI4_TARGET __attribute__((target("avx512f")))
#define WGI4_VEC wg_v16f
#define WGI4_UVEC wg_v16f_u
#define WGI4_VL 16
#define WGI4_SPLIT wg4_split_avx512
#include "kernels/winograd_in4.inc"

/* The register input transforms below: the input rows of tile rows
 * [ty_first, ty_last] of the channel WG_GROUP after `channel` (plane at
 * `plane`), fetched while this one is transformed, as the template does:
 * a few short rows per channel, too little for the hardware prefetcher. */
static inline void wg4_fetch_ahead(const struct ww_winograd *w, const float *plane, int channel,
                                   int ty_first, int ty_last)
{
    const ww_conv2d_shape *s = &w->s;
    int y_lo = ty_first * 4 - s->pad_top, y_hi = ty_last * 4 - s->pad_top + WG4_IN;
    if (y_lo < 0) y_lo = 0;
    if (y_hi > s->in_h) y_hi = s->in_h;
    if (channel + WG_GROUP >= w->C || y_hi <= y_lo) return;
    const char *next =
        (const char *)(plane + (size_t)WG_GROUP * s->in_h * s->in_w + (size_t)y_lo * s->in_w);
    size_t bytes = (size_t)(y_hi - y_lo) * s->in_w * sizeof(float);
    for (size_t b = 0; b < bytes; b += 64)
        __builtin_prefetch(next + b);
}

/* The column transforms of the row transforms h of a vector of tiles and
 * their stores into the staging slots from dst (point i * 6 + j at
 * (i * 6 + j) * tstride), lanes in keep only. */
__attribute__((target("avx512f"))) static inline __attribute__((always_inline)) void
wg4_store_columns(wg_v16f h[WG4_IN][WG4_IN], float *dst, size_t tstride, __mmask16 keep)
{
#pragma GCC unroll 6
    for (int j = 0; j < WG4_IN; j++) {
        wg_v16f o[WG4_IN];
        WG4_BT(h[0][j], h[1][j], h[2][j], h[3][j], h[4][j], h[5][j], o);
#pragma GCC unroll 6
        for (int i = 0; i < WG4_IN; i++)
            _mm512_mask_storeu_ps(dst + (size_t)(i * WG4_IN + j) * tstride, keep, o[i]);
    }
}

/* Rows past nt in the last MR panel of nc channels' staging areas are
 * zero, so the GEMM reads no garbage. */
static void wg4_zero_past(float *stages, int nc, int nt, int mr, size_t tstride)
{
    int padded = (nt + mr - 1) / mr * mr;
    for (int g = 0; g < nc; g++)
        for (int xi = 0; xi < WG4_POINTS; xi++)
            for (int t = nt; t < padded; t++)
                stages[((size_t)g * WG4_POINTS + xi) * tstride + t] = 0.0f;
}

/* F(4x4) input transform with each input row in registers, for rows of
 * at most 16 tiles and 64 floats (ResNet-18's 56x56 and 28x28 layers):
 * each patch column of a tile row's tiles is picked out of the row's four
 * vectors by two permutes, where the template splits every row into its
 * four column phases in memory and reloads them as vectors, which stall
 * on the split's smaller stores (the split and the transform were 20 % of
 * a 64 @56 conv). The row transforms of the last two input rows carry
 * over to the next tile row, which shares them. Same WG4_BT operations in
 * the same order, and the same staging layout, as the template: a
 * drop-in for it (rows_mem unused). */
__attribute__((target("avx512f"))) static void wg4_input_rows_avx512(const struct ww_winograd *w,
                                                                     const float *in, int c, int nc,
                                                                     int t0, int nt, int bp,
                                                                     float *rows_mem, float *stages)
{
    (void)rows_mem;
    const ww_conv2d_shape *s = &w->s;
    int tw = w->tiles_w, tstride = bp + WG_STAGE_PAD;
    int ty_first = t0 / tw, ty_last = (t0 + nt - 1) / tw;
    __mmask16 load[4];
    wg_load_masks(s->in_w, 4, load);
    __m512i index[WG4_IN];
    for (int k = 0; k < WG4_IN; k++)
        index[k] = _mm512_loadu_si512(w->row_index[k]);
    for (int g = 0; g < nc; g++) {
        const float *plane = in + (size_t)(c + g) * s->in_h * s->in_w;
        float *stage = stages + (size_t)g * WG4_POINTS * tstride;
        wg4_fetch_ahead(w, plane, c + g, ty_first, ty_last);
        wg_v16f h[WG4_IN][WG4_IN];
        for (int ty = ty_first; ty <= ty_last; ty++) {
            int r_begin = 0;
            if (ty > ty_first) { /* rows 4 and 5 of the last tile row are its rows 0 and 1 */
                for (int j = 0; j < WG4_IN; j++) {
                    h[0][j] = h[4][j];
                    h[1][j] = h[5][j];
                }
                r_begin = 2;
            }
            for (int r = r_begin; r < WG4_IN; r++) {
                int y = ty * 4 - s->pad_top + r;
                if (y < 0 || y >= s->in_h) {
                    for (int j = 0; j < WG4_IN; j++)
                        h[r][j] = (wg_v16f){0};
                    continue;
                }
                const float *row = plane + (size_t)y * s->in_w;
                __m512 v0 = _mm512_maskz_loadu_ps(load[0], row);
                __m512 v1 = _mm512_maskz_loadu_ps(load[1], row + 16);
                __m512 v2 = _mm512_maskz_loadu_ps(load[2], row + 32);
                __m512 v3 = _mm512_maskz_loadu_ps(load[3], row + 48);
                wg_v16f d[WG4_IN];
#pragma GCC unroll 6
                for (int k = 0; k < WG4_IN; k++) {
                    __m512 low = _mm512_maskz_permutex2var_ps(w->row_low[k], v0, index[k], v1);
                    d[k] = _mm512_mask_blend_ps(w->row_high[k], low,
                                                _mm512_permutex2var_ps(v2, index[k], v3));
                }
                WG4_BT(d[0], d[1], d[2], d[3], d[4], d[5], h[r]);
            }
            int tx_lo = ty == ty_first ? t0 - ty * tw : 0;
            /* Lanes before tx_lo belong to the block before; lanes up to 15
             * go past the row's tiles into the next row's slots (rewritten
             * next) or the staging pad, as in the template. */
            wg4_store_columns(h, stage + (size_t)ty * tw - t0, (size_t)tstride,
                              (__mmask16)(0xffffu << tx_lo));
        }
    }
    wg4_zero_past(stages, nc, nt, w->kern->mr, (size_t)tstride);
}

/* wg4_input_rows_avx512 for rows of at most 8 tiles and 32 floats
 * (ResNet-18's 28x28 layers, 7 tiles a row): two tile rows per vector,
 * lanes [0, tiles_w) the first, [tiles_w, 2 tiles_w) the second, which
 * are consecutive tiles; each patch column is a permute of each tile
 * row's input row (two vectors) and a blend. Nothing carries over between
 * pairs of tile rows (their shared input rows sit in different lanes). */
__attribute__((target("avx512f"))) static void
wg4_input_row_pairs_avx512(const struct ww_winograd *w, const float *in, int c, int nc, int t0,
                           int nt, int bp, float *rows_mem, float *stages)
{
    (void)rows_mem;
    const ww_conv2d_shape *s = &w->s;
    int tw = w->tiles_w, tstride = bp + WG_STAGE_PAD;
    int ty_first = t0 / tw, ty_last = (t0 + nt - 1) / tw;
    __mmask16 load[2];
    wg_load_masks(s->in_w, 2, load);
    __m512i index[WG4_IN];
    for (int k = 0; k < WG4_IN; k++)
        index[k] = _mm512_loadu_si512(w->row_index[k]);
    __mmask16 second = (__mmask16)(((1u << tw) - 1) << tw);
    for (int g = 0; g < nc; g++) {
        const float *plane = in + (size_t)(c + g) * s->in_h * s->in_w;
        float *stage = stages + (size_t)g * WG4_POINTS * tstride;
        wg4_fetch_ahead(w, plane, c + g, ty_first, ty_last);
        for (int ty = ty_first; ty <= ty_last; ty += 2) {
            wg_v16f h[WG4_IN][WG4_IN];
#pragma GCC unroll 6
            for (int r = 0; r < WG4_IN; r++) {
                __m512 lo[2], hi[2];
#pragma GCC unroll 2
                for (int half = 0; half < 2; half++) {
                    int y = (ty + half) * 4 - s->pad_top + r;
                    int inside = ty + half <= ty_last && y >= 0 && y < s->in_h;
                    const float *row = inside ? plane + (size_t)y * s->in_w : plane;
                    lo[half] = _mm512_maskz_loadu_ps(inside ? load[0] : 0, row);
                    hi[half] = _mm512_maskz_loadu_ps(inside ? load[1] : 0, row + 16);
                }
                wg_v16f d[WG4_IN];
#pragma GCC unroll 6
                for (int k = 0; k < WG4_IN; k++) {
                    __m512 first = _mm512_permutex2var_ps(lo[0], index[k], hi[0]);
                    __m512 next = _mm512_permutex2var_ps(lo[1], index[k], hi[1]);
                    d[k] = _mm512_maskz_mov_ps(w->row_low[k],
                                               _mm512_mask_blend_ps(second, first, next));
                }
                WG4_BT(d[0], d[1], d[2], d[3], d[4], d[5], h[r]);
            }
            int tx_lo = ty == ty_first ? t0 - ty * tw : 0;
            /* lanes before tx_lo belong to the block before; lanes past the
             * block's tiles go to later slots or the staging pad */
            wg4_store_columns(h, stage + (size_t)ty * tw - t0, (size_t)tstride,
                              (__mmask16)(0xffffu << tx_lo));
        }
    }
    wg4_zero_past(stages, nc, nt, w->kern->mr, (size_t)tstride);
}

/* F(4x4) input transform of a whole small map (at most 4x4 tiles, rows
 * of at most 16 floats: ResNet-18's 14x14 layer3), straight into V's
 * packed layout. The template computes 16 tiles of one tile row per
 * vector, so on a 4-tile row three quarters of its work and stores went
 * to waste, after scalar splits of 14-float rows (14 % of a 256 @14 conv
 * with its staging copy). Here all tiles are the lanes of one vector: a
 * patch row r reads input row 4 ty + r - pad_top of tile row ty, one
 * masked load each, and each of its six columns is picked out of tile
 * rows 0-1 and 2-3 by a permute each and a blend. Then the same WG4_BT
 * operations, in the same order, as winograd_in4.inc. */
__attribute__((target("avx512f"))) static void wg4_input_small_avx512(const struct ww_winograd *w,
                                                                      const float *in, int c_begin,
                                                                      int c_end, float *v,
                                                                      size_t xi_stride)
{
    const ww_conv2d_shape *s = &w->s;
    int n = s->in_h * s->in_w, C = w->C, two_panels = w->Tp > 8;
    __mmask16 row_mask = (__mmask16)((1u << s->in_w) - 1);
    __m512i index[WG4_IN];
    for (int c = 0; c < WG4_IN; c++)
        index[c] = _mm512_loadu_si512(w->small_index[c]);
    for (int ch = c_begin; ch < c_end; ch++) {
        const float *plane = in + (size_t)ch * n;
        wg_v16f h[WG4_IN][WG4_IN];
#pragma GCC unroll 6
        for (int r = 0; r < WG4_IN; r++) {
            __m512 rows[4];
#pragma GCC unroll 4
            for (int ty = 0; ty < 4; ty++) {
                int y = 4 * ty + r - s->pad_top;
                int inside = ty < w->tiles_h && y >= 0 && y < s->in_h;
                rows[ty] = _mm512_maskz_loadu_ps(inside ? row_mask : 0,
                                                 inside ? plane + (size_t)y * s->in_w : plane);
            }
            wg_v16f d[WG4_IN];
#pragma GCC unroll 6
            for (int c = 0; c < WG4_IN; c++) {
                __m512 pair01 = _mm512_permutex2var_ps(rows[0], index[c], rows[1]);
                __m512 pair23 = _mm512_permutex2var_ps(rows[2], index[c], rows[3]);
                d[c] = _mm512_maskz_mov_ps(w->small_low[c],
                                           _mm512_mask_blend_ps(w->small_high[0], pair01, pair23));
            }
            WG4_BT(d[0], d[1], d[2], d[3], d[4], d[5], h[r]);
        }
        float *vc = v + (size_t)ch * 8;
#pragma GCC unroll 6
        for (int j = 0; j < WG4_IN; j++) {
            wg_v16f o[WG4_IN];
            WG4_BT(h[0][j], h[1][j], h[2][j], h[3][j], h[4][j], h[5][j], o);
#pragma GCC unroll 6
            for (int i = 0; i < WG4_IN; i++) {
                wg_store_point_panels(vc + (size_t)(i * WG4_IN + j) * xi_stride, (size_t)8 * C,
                                      o[i], two_panels);
            }
        }
    }
}
#endif

/* ---- on-the-fly weight transform (per instruction set) -------------------- */

/* Lazy weights: where each point's U lives per run (alpha: the input tile
 * edge, 4 or 6). The four corners of the alpha x alpha grid are raw taps
 * (0, 2, 6, 8) of g, read in place (-1: not a corner); the other points
 * are transformed into slots 0 .. alpha^2 - 5 of a per-thread buffer, in
 * point order, so neighbours in a grid row are neighbouring slots. */
static inline int wg_lazy_corner_tap(int alpha, int xi)
{
    int i = xi / alpha, j = xi % alpha;
    if ((i != 0 && i != alpha - 1) || (j != 0 && j != alpha - 1)) return -1;
    return (i ? 6 : 0) + (j ? 2 : 0);
}

static inline int wg_lazy_slot(int alpha, int xi)
{
    return xi - (xi > 0) - (xi > alpha - 1) - (xi > alpha * (alpha - 1));
}

/* Input channels the weight transform prefetches ahead (18 KiB at NR 32). */
#define WG_WEIGHTS_AHEAD 16

/* g streams from RAM beside the transform's store streams: before channel
 * c, each tap's row of channel c + WG_WEIGHTS_AHEAD is fetched. */
static inline __attribute__((always_inline)) void
wg_weights_fetch_ahead(const float *g, size_t tap_stride, int c, int kc, int nr)
{
    if (c + WG_WEIGHTS_AHEAD >= kc) return;
    for (int tap = 0; tap < 9; tap++)
        for (int q = 0; q < nr; q += 16)
            __builtin_prefetch(g + tap * tap_stride + (size_t)(c + WG_WEIGHTS_AHEAD) * nr + q);
}

/* U = G g G^T for kc input channels of one NR-lane panel, without the
 * four corner points: g holds the 9 taps' [kc][nr] rows tap_stride floats
 * apart, u gets the other 12 points in their wg_lazy_slot
 * ([12][kc][nr], slot stride slot_stride). The corners (points 0, 3, 12,
 * 15) are taps 0, 2, 6 and 8 unchanged, which the GEMM reads from g in
 * place: a quarter fewer stores, the transform's bound (its 16 store
 * streams miss L1). The same operation order as WG_APPLY_G, in float:
 * within ~1 ulp of the double-precision transform at create. nr is a
 * multiple of VL. */
#define WG_WEIGHTS_FN(NAME, TARGET, VEC, VL)                                                       \
    static TARGET void NAME(const float *g, size_t tap_stride, int kc, int nr, size_t slot_stride, \
                            float *u)                                                              \
    {                                                                                              \
        const VEC half = (VEC){0} + 0.5f;                                                          \
        for (int c = 0; c < kc; c++) {                                                             \
            wg_weights_fetch_ahead(g, tap_stride, c, kc, nr);                                      \
            for (int l = 0; l < nr; l += (VL)) {                                                   \
                const float *gc = g + (size_t)c * nr + l;                                          \
                VEC t[WG_IN][3];                                                                   \
                _Pragma("GCC unroll 3") for (int j = 0; j < 3; j++)                                \
                {                                                                                  \
                    VEC a = *(const VEC *)(gc + j * tap_stride);                                   \
                    VEC b = *(const VEC *)(gc + (3 + j) * tap_stride);                             \
                    VEC d = *(const VEC *)(gc + (6 + j) * tap_stride);                             \
                    t[0][j] = a;                                                                   \
                    t[1][j] = half * ((a + b) + d);                                                \
                    t[2][j] = half * ((a - b) + d);                                                \
                    t[3][j] = d;                                                                   \
                }                                                                                  \
                float *uc = u + (size_t)c * nr + l;                                                \
                _Pragma("GCC unroll 4") for (int i = 0; i < WG_IN; i++)                            \
                {                                                                                  \
                    VEC a = t[i][0], b = t[i][1], d = t[i][2];                                     \
                    float *row = uc + (size_t)wg_lazy_slot(WG_IN, i * WG_IN + 1) * slot_stride;    \
                    *(VEC *)row = half * ((a + b) + d);                                            \
                    *(VEC *)(row + slot_stride) = half * ((a - b) + d);                            \
                    if (i == 1 || i == 2) { /* rows 0 and 3 end in corners */                      \
                        *(VEC *)(uc + (size_t)wg_lazy_slot(WG_IN, i * WG_IN) * slot_stride) = a;   \
                        *(VEC *)(row + 2 * slot_stride) = d;                                       \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }
WG_WEIGHTS_FN(wg_weights_portable, , wg_v4f, 4)
#if WW_HAVE_X86
WG_WEIGHTS_FN(wg_weights_avx2, __attribute__((target("avx2,fma"))), wg_v8f, 8)
WG_WEIGHTS_FN(wg_weights_avx512, __attribute__((target("avx512f"))), wg_v16f, 16)
#endif
#undef WG_WEIGHTS_FN

/* The same for F(4x4): G of WG4_APPLY_G in float, the 32 points other
 * than the corners into their wg_lazy_slot. */
#define WG4_APPLY_G_VEC(VEC, a, b, d, o)                                                           \
    do {                                                                                           \
        VEC ac_ = (a) + (d);                                                                       \
        (o)[0] = (a);                                                                              \
        (o)[1] = ((ac_ + (b)) * third);                                                            \
        (o)[2] = (((b)-ac_) * third);                                                              \
        (o)[3] = ((sixteen * (a) + eight * (b)) + four * (d)) * minus_fifteenth;                   \
        (o)[4] = (((a)-two * (b)) + four * (d)) * fifteenth;                                       \
        (o)[5] = (d);                                                                              \
    } while (0)
#define WG4_WEIGHTS_FN(NAME, TARGET, VEC, VL)                                                      \
    static TARGET void NAME(const float *g, size_t tap_stride, int kc, int nr, size_t slot_stride, \
                            float *u)                                                              \
    {                                                                                              \
        const VEC third = (VEC){0} + (float)(1.0 / 3), fifteenth = (VEC){0} + (float)(1.0 / 15);   \
        const VEC minus_fifteenth = (VEC){0} + (float)(-1.0 / 15), two = (VEC){0} + 2.0f;          \
        const VEC four = (VEC){0} + 4.0f, eight = (VEC){0} + 8.0f, sixteen = (VEC){0} + 16.0f;     \
        for (int c = 0; c < kc; c++) {                                                             \
            wg_weights_fetch_ahead(g, tap_stride, c, kc, nr);                                      \
            for (int l = 0; l < nr; l += (VL)) {                                                   \
                const float *gc = g + (size_t)c * nr + l;                                          \
                VEC t[WG4_IN][3];                                                                  \
                _Pragma("GCC unroll 3") for (int j = 0; j < 3; j++)                                \
                {                                                                                  \
                    VEC col[WG4_IN];                                                               \
                    WG4_APPLY_G_VEC(VEC, *(const VEC *)(gc + j * tap_stride),                      \
                                    *(const VEC *)(gc + (3 + j) * tap_stride),                     \
                                    *(const VEC *)(gc + (6 + j) * tap_stride), col);               \
                    _Pragma("GCC unroll 6") for (int i = 0; i < WG4_IN; i++) t[i][j] = col[i];     \
                }                                                                                  \
                float *uc = u + (size_t)c * nr + l;                                                \
                _Pragma("GCC unroll 6") for (int i = 0; i < WG4_IN; i++)                           \
                {                                                                                  \
                    VEC row[WG4_IN];                                                               \
                    WG4_APPLY_G_VEC(VEC, t[i][0], t[i][1], t[i][2], row);                          \
                    _Pragma("GCC unroll 6") for (int j = 0; j < WG4_IN; j++)                       \
                    {                                                                              \
                        int xi = i * WG4_IN + j;                                                   \
                        if (wg_lazy_corner_tap(WG4_IN, xi) < 0)                                    \
                            *(VEC *)(uc + (size_t)wg_lazy_slot(WG4_IN, xi) * slot_stride) =        \
                                row[j];                                                            \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }
WG4_WEIGHTS_FN(wg4_weights_portable, , wg_v4f, 4)
#if WW_HAVE_X86
WG4_WEIGHTS_FN(wg4_weights_avx2, __attribute__((target("avx2,fma"))), wg_v8f, 8)
WG4_WEIGHTS_FN(wg4_weights_avx512, __attribute__((target("avx512f"))), wg_v16f, 16)
#endif
#undef WG4_WEIGHTS_FN
#undef WG4_APPLY_G_VEC

/* ---- create ---------------------------------------------------------------- */

/* G (4x3) of F(2x2, 3x3) with interpolation points 0, +-1, inf:
 * rows {1,0,0}, {1/2,1/2,1/2}, {1/2,-1/2,1/2}, {0,0,1}. Applied to three
 * values: the zeros and halves are written out so the transform costs a
 * few additions instead of a 4x3 product, with the same double-precision
 * results (scaling by 1/2 is exact). */
/* G g G^T of F(2x2) and F(4x4) in double, rounded once to float, for
 * VL kernels at a time (one per vector lane). The G products are macros
 * so that every instruction set, and any lane count, evaluates the same
 * double-precision expressions in the same order (ISO C: no contraction
 * into FMAs), giving bit-identical weights. */
#define WG_APPLY_G(a, b, c, out)                                                                   \
    do {                                                                                           \
        (out)[0] = (a);                                                                            \
        (out)[1] = 0.5 * (((a) + (b)) + (c));                                                      \
        (out)[2] = 0.5 * (((a) - (b)) + (c));                                                      \
        (out)[3] = (c);                                                                            \
    } while (0)

/* G (6x3) of F(4x4, 3x3) with interpolation points 0, 1, -1, 1/2, -2 and
 * inf (row i: [1, p, p^2] / prod_{j != i} (p - p_j)). Mixing a point and
 * the reciprocal of another (1/2 and -2 instead of +-2 or +-1/2) keeps
 * the float error of the whole convolution about 3x smaller: in a float
 * simulation against a double-precision direct convolution on ResNet-18's
 * 3x3 layers (64-256 channels, Kaiming-normal weights), max |error| /
 * rms(output) 0.5-1e-5 against 1.5-2.6e-5 for 0, +-1, +-2, inf and 0,
 * +-1, +-1/2, inf; this kernel measures 0.65-1.1e-5 (F(2x2): 1.2-2.4e-6),
 * and ResNet-18's probabilities stay within 6e-6 of PyTorch's. B^T and A^T for the same
 * points are written out in winograd_in4.inc and winograd_out4.inc.
 * Rows {1,0,0}, {1,1,1}/3, {-1,1,-1}/3, {-16,-8,-4}/15, {1,-2,4}/15, {0,0,1}. */
#define WG4_APPLY_G(a, b, c, out)                                                                  \
    do {                                                                                           \
        __typeof__(a) ac_ = (a) + (c);                                                             \
        (out)[0] = (a);                                                                            \
        (out)[1] = (ac_ + (b)) * (1.0 / 3);                                                        \
        (out)[2] = ((b)-ac_) * (1.0 / 3);                                                          \
        (out)[3] = (16.0 * (a) + 8.0 * (b) + 4.0 * (c)) * (-1.0 / 15);                             \
        (out)[4] = ((a)-2.0 * (b) + 4.0 * (c)) * (1.0 / 15);                                       \
        (out)[5] = (c);                                                                            \
    } while (0)

/* Input channels whose taps are gathered at a time at create (9 taps x
 * 16 channels x NR lanes: 18 KiB at NR 32, in L1). */
#define WG_CHANNEL_BLOCK 16

/* Taps of kernels [k0, k0 + nr) (lanes past K zero) and input channels
 * [c0, c0 + cn): tap t of channel c0 + ci, lane l to dst[t * tap_stride +
 * ci * nr + l]. Lanes innermost: each destination line is written whole,
 * the nr kernels' rows (cn * 9 floats each) are read from L1. */
static void wg_gather_taps(const float *weight, int C, int K, int k0, int nr, int c0, int cn,
                           float *dst, size_t tap_stride)
{
    int live = K - k0 < nr ? K - k0 : nr;
    const float *src = weight + ((size_t)k0 * C + c0) * 9;
    size_t kernel_stride = (size_t)C * 9;
    /* The weights come from RAM, nr rows at once, too many streams for the
     * hardware prefetcher: the next block's lines of every row are fetched
     * a line per row per channel. */
    int next_lines = c0 + cn < C ? (cn * 9 * (int)sizeof(float) + 63) / 64 : 0;
    for (int ci = 0; ci < cn; ci++) {
        if (ci < next_lines)
            for (int l = 0; l < live; l++)
                __builtin_prefetch(src + l * kernel_stride + cn * 9 + ci * 16);
        for (int t = 0; t < 9; t++) {
            float *d = dst + t * tap_stride + (size_t)ci * nr;
            const float *sc = src + ci * 9 + t;
            int l = 0;
            for (; l < live; l++)
                d[l] = sc[l * kernel_stride];
            for (; l < nr; l++)
                d[l] = 0.0f;
        }
    }
}

/* U = G g G^T of gathered taps (see wg_gather_taps: [9][cn][nr], tap
 * stride tap_stride) into u: point xi of channel ci at u + xi *
 * point_stride + ci * nr. m is the output tile edge (2 or 4); nr a
 * multiple of 8. */
typedef float wg_c8f __attribute__((vector_size(32), aligned(4)));
typedef double wg_c8d __attribute__((vector_size(64)));
/* The points of one (channel, 8 lanes) for tile edge EDGE with G of APPLY. */
#define WG_CREATE_U_POINTS(EDGE, APPLY)                                                            \
    do {                                                                                           \
        wg_c8d tmp[EDGE][3], row[EDGE];                                                            \
        for (int j = 0; j < 3; j++) {                                                              \
            wg_c8d col[EDGE];                                                                      \
            APPLY(g[j], g[3 + j], g[6 + j], col);                                                  \
            for (int i = 0; i < (EDGE); i++)                                                       \
                tmp[i][j] = col[i];                                                                \
        }                                                                                          \
        for (int i = 0; i < (EDGE); i++) {                                                         \
            APPLY(tmp[i][0], tmp[i][1], tmp[i][2], row);                                           \
            for (int j = 0; j < (EDGE); j++)                                                       \
                *(wg_c8f *)(uc + (size_t)(i * (EDGE) + j) * point_stride) =                        \
                    __builtin_convertvector(row[j], wg_c8f);                                       \
        }                                                                                          \
    } while (0)
#define WG_CREATE_U_FN(NAME, TARGET)                                                               \
    static TARGET void NAME(const float *taps, size_t tap_stride, int cn, int nr, int m, float *u, \
                            size_t point_stride)                                                   \
    {                                                                                              \
        for (int ci = 0; ci < cn; ci++)                                                            \
            for (int l = 0; l < nr; l += 8) {                                                      \
                const float *t0 = taps + (size_t)ci * nr + l;                                      \
                wg_c8d g[9];                                                                       \
                for (int t = 0; t < 9; t++)                                                        \
                    g[t] =                                                                         \
                        __builtin_convertvector(*(const wg_c8f *)(t0 + t * tap_stride), wg_c8d);   \
                float *uc = u + (size_t)ci * nr + l;                                               \
                if (m == 4)                                                                        \
                    WG_CREATE_U_POINTS(WG4_IN, WG4_APPLY_G);                                       \
                else                                                                               \
                    WG_CREATE_U_POINTS(WG_IN, WG_APPLY_G);                                         \
            }                                                                                      \
    }
WG_CREATE_U_FN(wg_create_u_portable, )
#if WW_HAVE_X86
WG_CREATE_U_FN(wg_create_u_avx512, __attribute__((target("avx512f"))))
#endif
#undef WG_CREATE_U_FN
#undef WG_CREATE_U_POINTS

/* Weight-dominated layers (few tiles, many channels: ResNet-18's 7x7
 * layer4 with C = K = 512 has 16 tiles) keep their raw weights and
 * transform U per run, one NR-column panel and KC channels at a time into
 * an L2-sized per-thread buffer, instead of storing U: 9 instead of 16
 * floats per weight resident and read from RAM per run. The transform
 * costs ~40 vector operations per (input channel, NR outputs) against
 * 16 * Tp / MR micro-kernel steps of GEMM reusing it, so it is taken
 * only when V and M of all tiles are at most half of U's size:
 * C * K >= 2 * T * (C + K). ResNet-18's 14x14 layer3 (256 * 256 >=
 * 2 * 49 * 512) measured 0.63 -> 0.74 ms per conv on one thread with hot
 * weights, 0.37 -> 0.44 on two, for 5.5 MB less resident, which keeps
 * ResNet-18 under its 80 MB peak-RSS budget with F(4x4)'s larger U for
 * the 56x56 and 28x28 layers. */
static int wg_lazy_weights(const ww_winograd *w)
{
    return (size_t)w->C * w->K >= (size_t)2 * w->T * (w->C + w->K);
}

/* Tile geometry for output tiles of edge m. */
/* Does the small-map input transform (wg_input_small_avx512) take this
 * layer? F(2x2) on AVX-512 (MR 8: at most two tile panels), every tile a
 * lane, every input float in four vectors. */
static int wg_input_small_suits(const ww_winograd *w)
{
    if (!WW_HAVE_X86 || w->kern->isa != WW_ISA_AVX512 || w->kern->mr != 8) return 0;
    if (w->m == 2) return w->T <= 16 && w->s.in_h * w->s.in_w <= 64;
    return w->tiles_h <= 4 && w->tiles_w <= 4 && w->s.in_w <= 16;
}

/* Fills w->small_*: tile lane L (tile row L / tiles_w, column L %
 * tiles_w) at patch position (r, c) reads input row 2 ty + r - pad_top,
 * column 2 tx + c - pad_left. */
static void wg_input_small_setup(ww_winograd *w)
{
    const ww_conv2d_shape *s = &w->s;
    w->small = 1;
    if (w->m == 4) { /* see the struct */
        unsigned lower_pair = 0;
        for (int c = 0; c < WG4_IN; c++) {
            unsigned inside = 0;
            for (int lane = 0; lane < 16; lane++) {
                int ty = lane / w->tiles_w, tx = lane % w->tiles_w;
                int x = 4 * tx + c - s->pad_left;
                w->small_index[c][lane] = 0;
                if (lane >= w->T) continue;
                if (ty >= 2) lower_pair |= 1u << lane;
                if (x < 0 || x >= s->in_w) continue;
                w->small_index[c][lane] = (ty % 2) * 16 + x;
                inside |= 1u << lane;
            }
            w->small_low[c] = (uint16_t)inside;
        }
        w->small_high[0] = (uint16_t)lower_pair;
        return;
    }
    for (int pos = 0; pos < 16; pos++) {
        unsigned low = 0, high = 0;
        for (int lane = 0; lane < 16; lane++) {
            int ty = lane / w->tiles_w, tx = lane % w->tiles_w;
            int y = 2 * ty + pos / 4 - s->pad_top, x = 2 * tx + pos % 4 - s->pad_left;
            w->small_index[pos][lane] = 0;
            if (lane >= w->T || y < 0 || y >= s->in_h || x < 0 || x >= s->in_w) continue;
            int at = y * s->in_w + x;
            w->small_index[pos][lane] = at % 32;
            if (at < 32)
                low |= 1u << lane;
            else
                high |= 1u << lane;
        }
        w->small_low[pos] = (uint16_t)low;
        w->small_high[pos] = (uint16_t)high;
    }
}

/* Does wg4_input_rows_avx512 take this layer? F(4x4) on AVX-512, a tile
 * row's tiles in one vector, an input row in four. */
static int wg4_input_rows_suits(const ww_winograd *w)
{
    return WW_HAVE_X86 && w->kern->isa == WW_ISA_AVX512 && w->m == 4 && w->tiles_w <= 16 &&
           w->s.in_w <= 64;
}

/* Two tile rows per vector (wg4_input_row_pairs_avx512)? */
static int wg4_input_row_pairs(const ww_winograd *w)
{
    return w->tiles_w <= 8 && w->s.in_w <= 32;
}

/* Fills w->row_*: lane tx at patch column k reads input column 4 tx + k -
 * pad_left. */
static void wg4_input_rows_setup(ww_winograd *w)
{
    /* Rows of at most 8 tiles take two tile rows per vector
     * (wg4_input_row_pairs_avx512): lane tw + tx reads column 4 tx + k -
     * pad_left of the second tile row's input row. */
    int pairs = wg4_input_row_pairs(w);
    for (int k = 0; k < WG4_IN; k++) {
        unsigned low = 0, high = 0;
        for (int lane = 0; lane < 16; lane++) {
            int tx = pairs && lane >= w->tiles_w ? lane - w->tiles_w : lane;
            int x = 4 * tx + k - w->s.pad_left;
            w->row_index[k][lane] = 0;
            if (tx >= w->tiles_w || x < 0 || x >= w->s.in_w) continue;
            w->row_index[k][lane] = x % 32;
            if (x < 32)
                low |= 1u << lane;
            else
                high |= 1u << lane;
        }
        w->row_low[k] = (uint16_t)low;
        w->row_high[k] = (uint16_t)high;
    }
}

static void wg_set_tile(ww_winograd *w, int m)
{
    w->m = m;
    w->alpha = m + 2;
    w->points = w->alpha * w->alpha;
    w->tiles_h = (w->s.out_h + m - 1) / m;
    w->tiles_w = (w->s.out_w + m - 1) / m;
    w->T = w->tiles_h * w->tiles_w;
    w->Tp = (w->T + w->kern->mr - 1) / w->kern->mr * w->kern->mr;
}

/* F(4x4, 3x3) where its 36/16 more transformed weights per (C, K) pair
 * buy enough: maps of at least WG4_MIN_EDGE in both directions (ResNet-18's
 * 56x56 and 28x28 layers; at 14x14 the 4x4 tiles cover 16x16, 30% waste,
 * and U would grow by 16 MB over layer3). */
#define WG4_MIN_EDGE 20

/* Lazy weights (w set up for F(2x2)): F(4x4) instead when its GEMM rows
 * (tiles rounded up to MR, times 36 points) are at most 3/4 of F(2x2)'s
 * (times 16): its transform writes 32 points per weight instead of 12,
 * which the GEMM's saving must pay for. ResNet-18's 14x14 layer3: 16 x 36
 * against 56 x 16 (49 tiles of F(2x2) round up to 56); its 7x7 layer4
 * (4 tiles, half an MR panel) stays F(2x2). */
static int wg4_lazy_pays(const ww_winograd *w)
{
    int mr = w->kern->mr;
    int tiles = ((w->s.out_h + 3) / 4) * ((w->s.out_w + 3) / 4);
    size_t rows4 = (size_t)(tiles + mr - 1) / mr * mr * WG4_POINTS;
    return 4 * rows4 <= 3 * (size_t)w->Tp * WG_POINTS;
}

/* Input channels per lazy weight transform: F(4x4)'s 32 transformed
 * points of 256 channels would be 1 MiB at NR 32, all of L2; 64 keep U at
 * 256 KiB beside V and the panel's M (the extra GEMM passes over M cost
 * ~3%). */
#define WG4_LAZY_KC 64

/* F(2x2): 128 channels. A block's raw weights (147 KiB at NR 32), the
 * next block's being fetched, its U (12 points, 196 KiB) and V of all
 * tiles (ResNet-18's layer4: 16 tiles, 512 channels, 16 points: 512 KiB,
 * read again for every panel) then fit the 1 MiB L2 together; at 256
 * channels (1.5 MiB) the fetched weights and V pushed each other out.
 * 512 @7 alone, one thread: 1.19 -> 1.15 ms (64: 1.25). ResNet-18 A/B
 * 0.994 at 1 thread, 0.986 at 2. */
#define WG2_LAZY_KC 128

static int wg_lazy_kc(const ww_winograd *w)
{
    return w->m == 4 ? WG4_LAZY_KC : WG2_LAZY_KC;
}

/* Where the block of lazy raw weights starting at input channel k0 (a
 * multiple of wg_lazy_kc) lies in its panel: its 9 taps' [kc][NR] panels,
 * tap_stride floats apart, from the returned offset (the blocks before it
 * are full: 9 * k0 * NR floats). */
static size_t wg_lazy_block_at(const ww_winograd *w, int k0, size_t *tap_stride)
{
    int block = wg_lazy_kc(w);
    int kc = w->C - k0 < block ? w->C - k0 : block;
    *tap_stride = (size_t)kc * w->kern->nr;
    return (size_t)9 * k0 * w->kern->nr;
}

/* Packed weights: from the model's arena, else a block of their own. */
static float *wg_alloc_weights(ww_arena *arena, size_t floats)
{
    size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
    return arena ? ww_arena_alloc(arena, bytes) : ww_alloc_prefaulted(bytes);
}

ww_winograd *ww_winograd_create_tiled_in(const ww_conv2d_shape *s, const float *weight,
                                         const ww_gemm_kernel *kern, int tile, ww_arena *arena)
{
    if (!ww_winograd_suits(s) || !kern || (tile != 0 && tile != 2 && tile != 4)) return NULL;
    ww_winograd *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->s = *s;
    w->kern = kern;
    w->C = s->in_c;
    w->K = s->out_c;
    w->arena_owned = arena != NULL;
    w->n_panels = (w->K + kern->nr - 1) / kern->nr;
    wg_set_tile(w, WG_OUT);
    int lazy = wg_lazy_weights(w);
    if (tile == 4 || (tile == 0 && (lazy ? wg4_lazy_pays(w)
                                         : s->out_h >= WG4_MIN_EDGE && s->out_w >= WG4_MIN_EDGE)))
        wg_set_tile(w, 4);
    switch (kern->isa) {
#if WW_HAVE_X86
    case WW_ISA_AVX512:
        w->output = w->m == 4 ? wg4_output_rows_avx512 : wg_output_avx512;
        w->input = w->m == 4 ? wg4_input_avx512 : wg_input_avx512;
        w->weights = w->m == 4 ? wg4_weights_avx512 : wg_weights_avx512;
        break;
    case WW_ISA_AVX2:
        w->output = w->m == 4 ? wg4_output_avx2 : wg_output_avx2;
        w->input = w->m == 4 ? wg4_input_avx2 : wg_input_avx2;
        w->weights = w->m == 4 ? wg4_weights_avx2 : wg_weights_avx2;
        break;
#endif
    default:
        w->output = w->m == 4 ? wg4_output_portable : wg_output_portable;
        w->input = w->m == 4 ? wg4_input_portable : wg_input_portable;
        w->weights = w->m == 4 ? wg4_weights_portable : wg_weights_portable;
        break;
    }
    if (wg_input_small_suits(w)) wg_input_small_setup(w);
#if WW_HAVE_X86
    if (wg4_input_rows_suits(w)) {
        wg4_input_rows_setup(w);
        w->input = wg4_input_row_pairs(w) ? wg4_input_row_pairs_avx512 : wg4_input_rows_avx512;
    }
#endif
    int nr = kern->nr;
    if (lazy) {
        /* Raw weights, each panel's lanes side by side, in the K blocks
         * the run transforms (wg_lazy_kc input channels), each block tap
         * major (a tap's rows of the block's channels are a packed KC x NR
         * panel, so the corner points' GEMMs read them as they are): 9
         * floats per weight instead of U's 16, transformed panel by panel
         * per run. A block is one contiguous range, which the GEMMs of the
         * block before fetch from memory while they compute. */
        size_t floats = (size_t)w->n_panels * w->C * 9 * nr;
        w->g = wg_alloc_weights(arena, floats);
        if (!w->g) {
            free(w);
            return NULL;
        }
        if (ww_arena_prefilled(arena)) return w; /* packed by an earlier load */
        /* Per panel, WG_CHANNEL_BLOCK channels at a time (blocks never
         * straddle a K block: WG_CHANNEL_BLOCK divides wg_lazy_kc). */
        int block = wg_lazy_kc(w);
        for (int p = 0; p < w->n_panels; p++) {
            float *gp = w->g + (size_t)p * w->C * 9 * nr;
            for (int c0 = 0; c0 < w->C; c0 += WG_CHANNEL_BLOCK) {
                int cn = w->C - c0 < WG_CHANNEL_BLOCK ? w->C - c0 : WG_CHANNEL_BLOCK;
                size_t tap_stride;
                float *gb = gp + wg_lazy_block_at(w, c0 / block * block, &tap_stride) +
                            (size_t)(c0 % block) * nr;
                wg_gather_taps(weight, w->C, w->K, p * nr, nr, c0, cn, gb, tap_stride);
            }
        }
        return w;
    }
    size_t floats = (size_t)w->points * w->n_panels * w->C * nr;
    w->u = wg_alloc_weights(arena, floats);
    if (!w->u) {
        free(w);
        return NULL;
    }
    if (ww_arena_prefilled(arena)) return w; /* transformed by an earlier load */
    /* u holds, per point, NR-lane rows for every (panel, input channel).
     * Per panel and WG_CHANNEL_BLOCK channels: the kernels' taps are
     * gathered lane by lane into a small buffer, then transformed 8 lanes
     * at a time straight into each point's rows. Lanes past K are zero;
     * every float of u is written once (the buffer is freshly faulted, so
     * no separate zero fill). */
    size_t block_tap_stride = (size_t)WG_CHANNEL_BLOCK * nr;
    float *block = malloc(9 * block_tap_stride * sizeof *block);
    if (!block) {
        ww_winograd_free(w);
        return NULL;
    }
    void (*create_u)(const float *, size_t, int, int, int, float *, size_t) = wg_create_u_portable;
#if WW_HAVE_X86
    if (kern->isa == WW_ISA_AVX512) create_u = wg_create_u_avx512;
#endif
    size_t point_stride = (size_t)w->n_panels * w->C * nr;
    for (int p = 0; p < w->n_panels; p++) {
        for (int c0 = 0; c0 < w->C; c0 += WG_CHANNEL_BLOCK) {
            int cn = w->C - c0 < WG_CHANNEL_BLOCK ? w->C - c0 : WG_CHANNEL_BLOCK;
            wg_gather_taps(weight, w->C, w->K, p * nr, nr, c0, cn, block, block_tap_stride);
            create_u(block, block_tap_stride, cn, nr, w->m, w->u + ((size_t)p * w->C + c0) * nr,
                     point_stride);
        }
    }
    free(block);
    return w;
}

ww_winograd *ww_winograd_create(const ww_conv2d_shape *s, const float *weight,
                                const ww_gemm_kernel *kern)
{
    return ww_winograd_create_tiled_in(s, weight, kern, 0, NULL);
}

ww_winograd *ww_winograd_create_tiled(const ww_conv2d_shape *s, const float *weight,
                                      const ww_gemm_kernel *kern, int tile)
{
    return ww_winograd_create_tiled_in(s, weight, kern, tile, NULL);
}

ww_winograd *ww_winograd_create_in(const ww_conv2d_shape *s, const float *weight,
                                   const ww_gemm_kernel *kern, ww_arena *arena)
{
    return ww_winograd_create_tiled_in(s, weight, kern, 0, arena);
}

int ww_winograd_tile(const ww_winograd *w)
{
    return w->m;
}

int ww_winograd_transforms_weights_per_run(const ww_winograd *w)
{
    return w->g != NULL;
}

void ww_winograd_free(ww_winograd *w)
{
    if (!w) return;
    if (!w->arena_owned) {
        free(w->u);
        free(w->g);
    }
    free(w);
}

/* ---- run --------------------------------------------------------------------- */

/* Bytes of V and M one block may take: half of a 1 MiB L2, leaving room
 * for the weights of the layers that get blocked (up to 128 channels). */
#define WG_BLOCK_BYTES (512 * 1024)

/* How a run splits the tiles. Fused: each slot (thread) owns a contiguous
 * range of tiles and runs it in blocks through input transform, 16 GEMMs
 * and output transform, so V and M of a block stay in L2. Otherwise (the
 * weights U outweigh V and M of the whole layer, as in the late, small,
 * wide layers) one block holds every tile so U streams once, and the
 * threads share each of the three steps. */

/* F(4x4): bytes of V and M per block, bounding the scratch on large maps
 * (see wg_plan_for). */
#define WG4_BLOCK_BYTES (4 * 1024 * 1024)

typedef struct wg_plan {
    int fused;
    int block;        /* most tiles in a block (sizes the scratch), a multiple of MR */
    int block_panels; /* the same in MR-tile panels */
    int slots;        /* per-thread work areas */
    int lazy;         /* weights transformed per run (wg_lazy_slots) */
} wg_plan;

static wg_plan wg_plan_for(const ww_winograd *w, int threads)
{
    int mr = w->kern->mr;
    if (threads < 1) threads = 1;
    wg_plan p;
    /* F(4x4) always runs fused, in blocks of up to WG4_BLOCK_BYTES. When U
     * outweighs V and M (ResNet's 28x28), U streams once per thread from
     * L3 either way and the threads never wait on each other or read V and
     * M across cores (28x28, 2 threads: 0.48 -> 0.36 ms). On the 56x56
     * maps L2-sized blocks lost to the per-block costs (rows split again,
     * short GEMMs): 64x64 at 56x56, one thread, 0.74 ms in 512 KiB blocks,
     * 0.62 ms in one of 3.7 MB; each point's V and M still fit in L2 and
     * stream in order. */
    int weight_bound = (size_t)w->C * w->K >= (size_t)w->T * (w->C + w->K);
    if (w->g || (weight_bound && w->m != 4)) { /* lazy weights (either tile), or unfused */
        p.fused = 0;
        p.block = w->Tp;
        p.block_panels = w->Tp / mr;
        p.lazy = w->g != NULL;
        if (p.lazy) {
            p.slots = threads < w->n_panels ? threads : w->n_panels;
            if (p.slots > WW_SHARES_MAX) p.slots = WW_SHARES_MAX;
        } else {
            p.slots = threads < w->C ? threads : w->C;
        }
        return p;
    }
    int panels = w->Tp / mr;
    p.fused = 1;
    p.lazy = 0;
    p.slots = threads < panels ? threads : panels;
    size_t block_bytes = w->m == 4 ? WG4_BLOCK_BYTES : WG_BLOCK_BYTES;
    int cap = (int)(block_bytes / (w->points * sizeof(float) * (size_t)(w->C + w->K)) / mr);
    if (cap < 1) cap = 1;
    int per_slot = (panels + p.slots - 1) / p.slots;
    p.block_panels = cap < per_slot ? cap : per_slot;
    p.block = p.block_panels * mr;
    return p;
}

static size_t wg_v_stride(const ww_winograd *w, int bp)
{
    return (size_t)bp * w->C + 16;
}

static size_t wg_m_stride(const ww_winograd *w, int bp)
{
    return (size_t)bp * w->K + 16;
}

static size_t wg_v_floats(const ww_winograd *w, int bp)
{
    return w->points * wg_v_stride(w, bp) + 16; /* +16: room to align to 64 bytes */
}

static size_t wg_m_floats(const ww_winograd *w, int bp)
{
    return w->points * wg_m_stride(w, bp) + 16;
}

/* Slot stride of a lazily transformed U buffer: one cache line past KC
 * x NR so the slots' stores do not all fall in one L1 set. */
static size_t wg_u_stride(const ww_winograd *w)
{
    return (size_t)wg_lazy_kc(w) * w->kern->nr + 16;
}

static size_t wg_u_floats(const ww_winograd *w)
{
    /* every point but the four corners; +16: room to align to 64 bytes */
    return (size_t)(w->points - 4) * wg_u_stride(w) + 16;
}

/* Lazy weights: point stride of one column panel's M (all tiles, NR
 * channels). */
static size_t wg_panel_m_stride(const ww_winograd *w)
{
    return (size_t)w->Tp * w->kern->nr + 16;
}

/* Lazy weights: one thread's V of all tiles, input work area, U buffer
 * and panel M. */
static size_t wg_lazy_slot_floats(const ww_winograd *w)
{
    return wg_v_floats(w, w->Tp) + wg_input_work_floats(w, w->Tp) + wg_u_floats(w) +
           w->points * wg_panel_m_stride(w) + 16;
}

/* One slot's work area in plans whose slots each have their own (fused:
 * V, M and input work area of a block; lazy: wg_lazy_slot_floats); 0 for
 * the unfused plan, whose V and M are shared. */
static size_t wg_plan_area_floats(const ww_winograd *w, wg_plan p)
{
    if (p.fused)
        return wg_v_floats(w, p.block) + wg_m_floats(w, p.block) + wg_input_work_floats(w, p.block);
    return p.lazy ? wg_lazy_slot_floats(w) : 0;
}

static size_t wg_plan_floats(const ww_winograd *w, wg_plan p)
{
    if (p.fused || p.lazy) return (size_t)p.slots * wg_plan_area_floats(w, p);
    return wg_v_floats(w, p.block) + wg_m_floats(w, p.block) +
           (size_t)p.slots * wg_input_work_floats(w, p.block);
}

size_t ww_winograd_scratch_floats(const ww_winograd *w, int threads)
{
    return ww_winograd_scratch_floats_areas(w, threads, 0);
}

size_t ww_winograd_scratch_floats_areas(const ww_winograd *w, int threads, size_t area_floats)
{
    /* The largest plan of any pool up to `threads` threads (fewer threads
     * can mean bigger blocks), so scratch sized for more threads always
     * suffices for fewer. */
    size_t most = 0;
    for (int t = 1; t <= (threads > 1 ? threads : 1); t++) {
        wg_plan p = wg_plan_for(w, t);
        size_t n = wg_plan_floats(w, p), area = wg_plan_area_floats(w, p);
        if (area && area_floats > area) n = (size_t)p.slots * area_floats;
        if (n > most) most = n;
    }
    return most;
}

size_t ww_winograd_area_floats(const ww_winograd *w, int threads)
{
    return wg_plan_area_floats(w, wg_plan_for(w, threads));
}

typedef struct wg_ctx {
    const ww_winograd *w;
    wg_plan plan;
    size_t area; /* fused and lazy: floats from one slot's work area to the next */
    const float *in, *bias, *residual;
    ww_activation act;
    float *out, *scratch;
    float *v, *m; /* unfused: the one block's V and M */
    /* out_fused: the output transform applies residual and activation
     * (out_residual, out_act), so wg_finish is skipped */
    int out_fused;
    const float *out_residual;
    ww_activation out_act;
    ww_shares panels; /* lazy weights: the column panels, a share per slot */
} wg_ctx;

/* o = act(o + r) for n floats; r may be NULL. One loop per case so the
 * vector loops carry no branches. */
static void wg_finish_run(float *o, const float *r, int n, ww_activation act)
{
    int x = 0;
    if (act == WW_ACT_NONE) {
        if (r)
            for (; x + 4 <= n; x += 4)
                WW_F4_STORE(o + x, WW_F4_LOAD(o + x) + WW_F4_LOAD(r + x));
    } else if (act == WW_ACT_RELU) {
        if (r)
            for (; x + 4 <= n; x += 4)
                WW_F4_STORE(o + x, WW_F4_RELU(WW_F4_LOAD(o + x) + WW_F4_LOAD(r + x)));
        else
            for (; x + 4 <= n; x += 4)
                WW_F4_STORE(o + x, WW_F4_RELU(WW_F4_LOAD(o + x)));
    } else if (act == WW_ACT_RELU6) {
        for (; x + 4 <= n; x += 4) {
            ww_f4 v = WW_F4_LOAD(o + x);
            if (r) v += WW_F4_LOAD(r + x);
            WW_F4_STORE(o + x, WW_F4_MIN6(WW_F4_RELU(v)));
        }
    }
    for (; x < n; x++)
        o[x] = ww_activate(r ? o[x] + r[x] : o[x], act);
}

/* out = act(out + residual) over the output rows of tiles [t0, t0 + nt)
 * and channels [k_begin, k_end); skipped when it would change nothing.
 * Per channel: the two (partial) rows of the first and of the last tile
 * row, and the whole rows between them as one contiguous run. */
static void wg_finish(const wg_ctx *ctx, int t0, int nt, int k_begin, int k_end)
{
    const ww_winograd *w = ctx->w;
    const ww_conv2d_shape *s = &w->s;
    if (!ctx->residual && ctx->act == WW_ACT_NONE) return;
    int tw = w->tiles_w, ow = s->out_w, oh = s->out_h;
    size_t plane = (size_t)oh * ow;
    int ty_first = t0 / tw, ty_last = (t0 + nt - 1) / tw;
    int e = w->m; /* output tile edge */
    int x_first = e * (t0 - ty_first * tw);
    int x_last = e * (t0 + nt - ty_last * tw); /* exclusive, in the last tile row */
    if (x_last > ow) x_last = ow;
    /* runs of (row, first column, floats) relative to the channel plane */
    int run_y[9], run_x[9], run_n[9], runs = 0;
    if (ty_first == ty_last) {
        for (int y = e * ty_first; y < e * ty_first + e && y < oh; y++) {
            run_y[runs] = y, run_x[runs] = x_first, run_n[runs++] = x_last - x_first;
        }
    } else {
        int mid_begin = e * ty_first + e, mid_end = e * ty_last; /* whole rows */
        for (int y = e * ty_first; y < mid_begin; y++) {
            run_y[runs] = y, run_x[runs] = x_first, run_n[runs++] = ow - x_first;
        }
        if (mid_end > mid_begin) {
            run_y[runs] = mid_begin, run_x[runs] = 0, run_n[runs++] = (mid_end - mid_begin) * ow;
        }
        for (int y = mid_end; y < mid_end + e && y < oh; y++) {
            run_y[runs] = y, run_x[runs] = 0, run_n[runs++] = x_last;
        }
    }
    for (int k = k_begin; k < k_end; k++)
        for (int i = 0; i < runs; i++) {
            size_t at = (size_t)k * plane + (size_t)run_y[i] * ow + run_x[i];
            wg_finish_run(ctx->out + at, ctx->residual ? ctx->residual + at : NULL, run_n[i],
                          ctx->act);
        }
}

/* One point's GEMM: rows [0, rows) of V's point block (packed A, K block
 * [k0, k0 + kc) of C) times a KC x NR panel of U into c (row stride ldc),
 * fetching fetch_lines cache lines from fetch into L2 as it goes (none
 * when fetch_lines is 0). */
static void wg_point_gemm(const ww_winograd *w, const float *v_point, int k0, int kc, int rows,
                          int nr, const float *u_panel, float *c, size_t ldc, const float *fetch,
                          int fetch_lines)
{
    ww_gemm_panel_args args = {.kern = w->kern,
                               .a_packed = v_point,
                               .k = w->C,
                               .k0 = k0,
                               .kc = kc,
                               .m_begin = 0,
                               .m_end = rows,
                               .nr = nr,
                               .b_panel = u_panel,
                               .c = c,
                               .ldc = ldc,
                               .bias = NULL,
                               .residual = NULL,
                               .act = WW_ACT_NONE,
                               .prefetch = (const char *)fetch,
                               .prefetch_lines = fetch_lines};
    ww_gemm_panel(&args);
}

/* GEMM jobs [begin, end) of (point xi, column panel) over tile rows
 * [0, nt) of a block of bp tiles: M[xi][:, panel] = V[xi] * U[xi][:, panel]. */
static void wg_gemm_jobs(const ww_winograd *w, const float *v, float *m, int bp, int nt, int begin,
                         int end)
{
    const ww_gemm_kernel *kern = w->kern;
    int nr_full = kern->nr;
    const float *u_end = w->u + (size_t)w->points * w->n_panels * w->C * nr_full;
    for (int job = begin; job < end; job++) {
        int xi = job / w->n_panels, panel = job % w->n_panels;
        int n0 = panel * nr_full;
        int nr = w->K - n0 < nr_full ? w->K - n0 : nr_full;
        const float *u = w->u + ((size_t)xi * w->n_panels + panel) * w->C * nr_full;
        for (int k0 = 0; k0 < w->C; k0 += WW_GEMM_KC) {
            int kc = w->C - k0 < WW_GEMM_KC ? w->C - k0 : WW_GEMM_KC;
            /* U is read in order, job after job (and from L3 or RAM:
             * ResNet-18's layer2 U is 2.4 MB per conv, read by each
             * thread): each GEMM fetches the panel after its own into L2
             * as it goes, so the next GEMM does not start on misses. */
            const float *b = u + (size_t)k0 * nr_full, *next = b + (size_t)kc * nr_full;
            size_t ahead = next < u_end ? (size_t)(u_end - next) : 0;
            if (ahead > (size_t)kc * nr_full) ahead = (size_t)kc * nr_full;
            wg_point_gemm(w, v + xi * wg_v_stride(w, bp), k0, kc, nt, nr, b,
                          m + xi * wg_m_stride(w, bp) + n0, (size_t)w->K, ahead ? next : NULL,
                          (int)(ahead * sizeof(float) / 64));
        }
    }
}

/* Copies staged channels [c, c + nc) of tiles [0, nt) into the packed-A
 * panels of v (point stride wg_v_stride): per panel and point the group's
 * MR-float pieces are neighbours, whole cache lines for MR = 8. */
static void wg_pack(const ww_winograd *w, const float *stages, int c, int nc, int nt, int bp,
                    float *v)
{
    int mr = w->kern->mr, C = w->C, panels = (nt + mr - 1) / mr, points = w->points;
    size_t tstride = (size_t)bp + WG_STAGE_PAD, xi_stride = wg_v_stride(w, bp);
    float *vc = v + (size_t)c * mr;
#define WG_PACK(MR)                                                                                \
    for (int p = 0; p < panels; p++)                                                               \
        for (int xi = 0; xi < points; xi++)                                                        \
            for (int g = 0; g < nc; g++)                                                           \
                memcpy(vc + (size_t)xi * xi_stride + (size_t)p * (MR)*C + (size_t)g * (MR),        \
                       stages + ((size_t)g * points + xi) * tstride + (size_t)p * (MR),            \
                       (size_t)(MR) * sizeof(float));
    switch (mr) { /* constant sizes become plain vector moves */
    case 4: WG_PACK(4) break;
    case 6: WG_PACK(6) break;
    case 8: WG_PACK(8) break;
    default: WG_PACK(mr) break;
    }
#undef WG_PACK
}

/* Input transform of channels [c_begin, c_end), tiles [t0, t0 + nt), into
 * V: transform of one group overlaps packing of the previous. */
static void wg_transform(const ww_winograd *w, const float *in, int c_begin, int c_end, int t0,
                         int nt, int bp, float *work, float *v)
{
#if WW_HAVE_X86
    if (w->small && t0 == 0 && nt == w->T) {
        if (w->m == 4)
            wg4_input_small_avx512(w, in, c_begin, c_end, v, wg_v_stride(w, bp));
        else
            wg_input_small_avx512(w, in, c_begin, c_end, v, wg_v_stride(w, bp));
        return;
    }
#endif
    float *rows = work, *stage[2];
    stage[0] = rows + wg_rows_floats(w);
    stage[1] = stage[0] + wg_stage_floats(w, bp);
    int prev_c = -1, prev_nc = 0, k = 0;
    for (int c = c_begin; c < c_end; c += WG_GROUP, k++) {
        int nc = c_end - c < WG_GROUP ? c_end - c : WG_GROUP;
        w->input(w, in, c, nc, t0, nt, bp, rows, stage[k & 1]);
        if (prev_nc) wg_pack(w, stage[(k - 1) & 1], prev_c, prev_nc, nt, bp, v);
        prev_c = c;
        prev_nc = nc;
    }
    if (prev_nc) wg_pack(w, stage[(k - 1) & 1], prev_c, prev_nc, nt, bp, v);
}

/* Fused: slot i runs its share of the tiles block by block. */
static void wg_fused_slots(void *p, int begin, int end)
{
    const wg_ctx *ctx = p;
    const ww_winograd *w = ctx->w;
    int bp = ctx->plan.block, slots = ctx->plan.slots;
    for (int slot = begin; slot < end; slot++) {
        float *base = ctx->scratch + (size_t)slot * ctx->area;
        float *v = ww_align64(base);
        float *m = ww_align64(base + wg_v_floats(w, bp));
        float *work = ww_align64(base + wg_v_floats(w, bp) + wg_m_floats(w, bp));
        wg_clear_rows(w, work);
        /* whole MR panels per slot, spread evenly over the fewest blocks */
        int panels = w->Tp / w->kern->mr;
        int first = (int)((long long)panels * slot / slots);
        int count = (int)((long long)panels * (slot + 1) / slots) - first;
        int blocks = (count + ctx->plan.block_panels - 1) / ctx->plan.block_panels;
        for (int b = 0; b < blocks; b++) {
            int t0 = (first + (int)((long long)count * b / blocks)) * w->kern->mr;
            int t1 = (first + (int)((long long)count * (b + 1) / blocks)) * w->kern->mr;
            int nt = (t1 < w->T ? t1 : w->T) - t0;
            wg_transform(w, ctx->in, 0, w->C, t0, nt, bp, work, v);
            wg_gemm_jobs(w, v, m, bp, nt, 0, w->points * w->n_panels);
            for (int tl = 0; tl < nt; tl++)
                w->output(w, m, wg_m_stride(w, bp), tl, t0 + tl, ctx->bias, ctx->out_residual,
                          ctx->out_act, ctx->out);
            if (!ctx->out_fused) wg_finish(ctx, t0, nt, 0, w->K);
        }
    }
}

/* Unfused, step 1: slot i transforms a contiguous share of the channels. */
static void wg_input_slots(void *p, int begin, int end)
{
    const wg_ctx *ctx = p;
    const ww_winograd *w = ctx->w;
    int bp = ctx->plan.block, slots = ctx->plan.slots;
    float *works = ctx->scratch + wg_v_floats(w, bp) + wg_m_floats(w, bp);
    for (int slot = begin; slot < end; slot++) {
        float *work = ww_align64(works + (size_t)slot * wg_input_work_floats(w, bp));
        wg_clear_rows(w, work);
        int first = (int)((long long)w->C * slot / slots);
        int last = (int)((long long)w->C * (slot + 1) / slots);
        wg_transform(w, ctx->in, first, last, 0, w->T, bp, work, ctx->v);
    }
}

/* Unfused, step 2: GEMM jobs [begin, end) over all tiles. */
static void wg_gemm_range(void *p, int begin, int end)
{
    const wg_ctx *ctx = p;
    wg_gemm_jobs(ctx->w, ctx->v, ctx->m, ctx->plan.block, ctx->w->T, begin, end);
}

/* Lazy weights, one column panel (NR output channels) from V of all
 * tiles: per KC block of input channels, U of the panel's raw weights
 * into `u`, then the 16 points' GEMMs into the panel's own M (`mp`, row
 * stride nr); then the output transform, residual and activation of the
 * panel's channels. */
static void wg_lazy_panel(const wg_ctx *ctx, const float *v, float *u, float *mp, int panel,
                          int more)
{
    const ww_winograd *w = ctx->w;
    const ww_gemm_kernel *kern = w->kern;
    int nr_full = kern->nr, bp = w->Tp;
    int n0 = panel * nr_full;
    int nr = w->K - n0 < nr_full ? w->K - n0 : nr_full;
    size_t u_stride = wg_u_stride(w), m_stride = wg_panel_m_stride(w);
    const float *g = w->g + (size_t)panel * w->C * 9 * nr_full;
    int block = wg_lazy_kc(w);
    for (int k0 = 0; k0 < w->C; k0 += block) {
        int kc = w->C - k0 < block ? w->C - k0 : block;
        size_t tap_stride;
        const float *gk = g + wg_lazy_block_at(w, k0, &tap_stride);
        w->weights(gk, tap_stride, kc, nr_full, u_stride, u);
        /* The next block's raw weights (this panel's next block, or the
         * next panel's first when `more`: one contiguous range) are
         * fetched into L2 by this block's GEMMs, a slice per point, a line
         * per k step of their tiles, so reading them from RAM overlaps the
         * GEMMs. (Fetched in a burst before each GEMM, the prefetches
         * stalled on the miss buffers: ~6 % of ResNet-18's time.) */
        const float *next = NULL;
        size_t next_tap_stride = 0;
        if (k0 + kc < w->C)
            next = g + wg_lazy_block_at(w, k0 + kc, &next_tap_stride);
        else if (more)
            next = g + (size_t)w->C * 9 * nr_full + wg_lazy_block_at(w, 0, &next_tap_stride);
        int next_lines = (int)((9 * next_tap_stride * sizeof(float) + 63) / 64);
        int per_point = (next_lines + w->points - 1) / w->points;
        for (int xi = 0; xi < w->points; xi++) {
            int first = xi * per_point;
            int lines = next_lines - first < per_point ? next_lines - first : per_point;
            int tap = wg_lazy_corner_tap(w->alpha, xi);
            const float *b_panel =
                tap >= 0 ? gk + tap * tap_stride : u + wg_lazy_slot(w->alpha, xi) * u_stride;
            wg_point_gemm(w, v + xi * wg_v_stride(w, bp), k0, kc, w->T, nr, b_panel,
                          mp + xi * m_stride, (size_t)nr,
                          lines > 0 ? next + (size_t)first * 16 : NULL, lines > 0 ? lines : 0);
        }
    }
    /* The output transform reads w->K channels per tile row of M: a copy
     * of w narrowed to this panel's nr channels reads mp as it is. */
    ww_winograd panel_w = *w;
    panel_w.K = nr;
    size_t plane = (size_t)w->s.out_h * w->s.out_w;
    float *out = ctx->out + (size_t)n0 * plane;
    const float *bias = ctx->bias ? ctx->bias + n0 : NULL;
    const float *residual = ctx->out_residual ? ctx->out_residual + (size_t)n0 * plane : NULL;
    for (int t = 0; t < w->T; t++)
        w->output(&panel_w, mp, m_stride, t, t, bias, residual, ctx->out_act, out);
    if (!ctx->out_fused) wg_finish(ctx, 0, w->T, n0, n0 + nr);
}

/* Lazy weights: slot i takes a contiguous share of the column panels,
 * then unclaimed panels of the other shares (so a late or descheduled
 * worker's share is split rather than run after the caller's). Each slot
 * transforms the whole input into its own V before its first panel and
 * keeps each panel's M to itself, so the threads share only the input
 * they read and write disjoint output channels: on machines whose cores
 * are far apart (this VM's two vCPUs: ~240 ns per cache line moved) a
 * split input transform and a shared M cost more in transfers than the
 * repeated input transform (a few percent of the conv). */
static void wg_lazy_slots(void *p, int begin, int end)
{
    wg_ctx *ctx = p;
    const ww_winograd *w = ctx->w;
    int bp = w->Tp;
    for (int slot = begin; slot < end; slot++) {
        float *base = ctx->scratch + (size_t)slot * ctx->area;
        float *v = ww_align64(base);
        float *work = ww_align64(base + wg_v_floats(w, bp));
        float *u = ww_align64(base + wg_v_floats(w, bp) + wg_input_work_floats(w, bp));
        float *mp =
            ww_align64(base + wg_v_floats(w, bp) + wg_input_work_floats(w, bp) + wg_u_floats(w));
        int have_v = 0, cursor = 0, panel, share_end;
        while ((panel = ww_shares_claim(&ctx->panels, slot, &cursor, &share_end)) >= 0) {
            if (!have_v) {
                wg_clear_rows(w, work);
                wg_transform(w, ctx->in, 0, w->C, 0, w->T, bp, work, v);
                have_v = 1;
            }
            wg_lazy_panel(ctx, v, u, mp, panel, panel + 1 < share_end);
        }
    }
}

/* Unfused, step 3: output transform of tiles [begin, end), then residual
 * and activation over the same tiles' outputs. */
static void wg_output_range(void *p, int begin, int end)
{
    const wg_ctx *ctx = p;
    const ww_winograd *w = ctx->w;
    for (int t = begin; t < end; t++)
        w->output(w, ctx->m, wg_m_stride(w, ctx->plan.block), t, t, ctx->bias, ctx->out_residual,
                  ctx->out_act, ctx->out);
    if (begin < end && !ctx->out_fused) wg_finish(ctx, begin, end - begin, 0, w->K);
}

void ww_winograd_run(const ww_winograd *w, const float *in, const float *bias,
                     const float *residual, ww_activation act, float *out, float *scratch,
                     ww_threadpool *pool)
{
    wg_ctx ctx = {.w = w, .in = in, .bias = bias, .residual = residual, .act = act, .out = out};
    /* F(4x4) stores whole 4-float rows per channel: adding the residual
     * and the piecewise-linear activations there saves a pass over the
     * output (the exp-based ones stay in wg_finish's vector code). */
    ctx.out_fused = w->m == 4 && (act == WW_ACT_NONE || act == WW_ACT_RELU || act == WW_ACT_RELU6);
    ctx.out_residual = ctx.out_fused ? residual : NULL;
    ctx.out_act = ctx.out_fused ? act : WW_ACT_NONE;
    ctx.plan = wg_plan_for(w, ww_threadpool_size(pool));
    ctx.area = wg_plan_area_floats(w, ctx.plan);
    if (ww_threadpool_area_floats(pool) > ctx.area) ctx.area = ww_threadpool_area_floats(pool);
    ctx.scratch = scratch;
    if (ctx.plan.fused) {
        ww_parallel_for(pool, ctx.plan.slots, wg_fused_slots, &ctx);
        return;
    }
    if (ctx.plan.lazy) {
        ww_shares_init(&ctx.panels, w->n_panels, ctx.plan.slots);
        ww_parallel_for(pool, ctx.plan.slots, wg_lazy_slots, &ctx);
        return;
    }
    ctx.v = ww_align64(scratch);
    ctx.m = ww_align64(scratch + wg_v_floats(w, ctx.plan.block));
    ww_parallel_for(pool, ctx.plan.slots, wg_input_slots, &ctx);
    ww_parallel_for(pool, w->points * w->n_panels, wg_gemm_range, &ctx);
    /* On one thread: unfused plans are the small, weight-dominated maps,
     * where every tile writes a few floats into each of the K channel
     * planes, so threads splitting the tiles write the same cache lines.
     * 512 channels at 7x7: 0.03 ms on one thread, 0.28 ms split over two
     * (the whole conv 1.7 -> 1.4 ms at 2 threads). */
    wg_output_range(&ctx, 0, w->T);
}
