/* Packing, edge handling and instruction-set selection for the blocked
 * GEMM. The micro-kernels themselves come from gemm_tile.inc. */
#include "kernels/gemm.h"

#include "kernels/vmath.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define WW_HAVE_X86 1
#include <immintrin.h>
#else
#define WW_HAVE_X86 0
#endif

/* The bias of a tile whose epilogue has none (gemm_tile.inc adds it
 * unconditionally). */
static const float ww_gemm_zero_bias[WW_GEMM_MAX_MR];

/* The micro-kernels: per instruction set, its vector macros are defined
 * once (gemm_tile.inc leaves them defined), then each tile shape is one
 * include with its name, MR, NV and options. */
/* Portable variant: 4-lane vectors (SSE2 on x86-64, NEON elsewhere, or
 * scalar code if the target has no vectors). Plain multiply-add: -std=c11
 * disables floating-point contraction. */
typedef float ww_v4f __attribute__((vector_size(16)));
typedef float ww_v4f_u __attribute__((vector_size(16), aligned(4)));
typedef int32_t ww_v4i __attribute__((vector_size(16)));
#define TILE_TARGET
#define TILE_VEC ww_v4f
#define TILE_UVEC ww_v4f_u
#define TILE_IVEC ww_v4i
#define TILE_VL 4
#define TILE_FMA(a, b, c) ((c) + (a) * (b))
#define TILE_SPLAT(x) ((ww_v4f){(x), (x), (x), (x)})
#define TILE_ACTIVATE(x, a) ww_vm4_activate((x), (a))
#define TILE_RELU(x) ((TILE_VEC)((TILE_IVEC)(x) & ((x) > (TILE_VEC){0})))
#define TILE_MIN6(x)                                                                               \
    WW_VM_SELECT(TILE_VEC, TILE_IVEC, (x) < TILE_SPLAT(6.0f), (x), TILE_SPLAT(6.0f))

#define TILE_NAME gemm_tile_portable_4x8
#define TILE_MR 4
#define TILE_NV 2
#include "kernels/gemm_tile.inc"

#define TILE_NAME gemm_tile_portable_4x8_strided
#define TILE_MR 4
#define TILE_NV 2
#define TILE_STRIDED
#include "kernels/gemm_tile.inc"
#include "kernels/gemm_tile_isa_end.inc"

#if WW_HAVE_X86
/* AVX2: 16 ymm registers hold 6 x 16 accumulators plus two B vectors. */
typedef float ww_v8f __attribute__((vector_size(32)));
typedef float ww_v8f_u __attribute__((vector_size(32), aligned(4)));
typedef int32_t ww_v8i __attribute__((vector_size(32)));
#define TILE_TARGET __attribute__((target("avx2,fma")))
#define TILE_VEC ww_v8f
#define TILE_UVEC ww_v8f_u
#define TILE_IVEC ww_v8i
#define TILE_VL 8
#define TILE_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define TILE_SPLAT(x) _mm256_set1_ps(x)
#define TILE_ACTIVATE(x, a) ww_vm8_activate((x), (a))
/* max and min return their second operand for NaN: max(NaN, 0) = 0, as the
 * portable mask form gives */
#define TILE_RELU(x) _mm256_max_ps((x), _mm256_setzero_ps())
#define TILE_MIN6(x) _mm256_min_ps((x), _mm256_set1_ps(6.0f))

#define TILE_NAME gemm_tile_avx2_6x16
#define TILE_MR 6
#define TILE_NV 2
#include "kernels/gemm_tile.inc"

#define TILE_NAME gemm_tile_avx2_6x16_strided
#define TILE_MR 6
#define TILE_NV 2
#define TILE_STRIDED
#include "kernels/gemm_tile.inc"

#define TILE_NAME gemm_tile_avx2_6x16_prefetch
#define TILE_MR 6
#define TILE_NV 2
#define TILE_PREFETCH_A WW_GEMM_PREFETCH_A
#include "kernels/gemm_tile.inc"

#define TILE_NAME gemm_tile_avx2_6x16_fetch
#define TILE_MR 6
#define TILE_NV 2
#define TILE_FETCH
#include "kernels/gemm_tile.inc"

/* AVX2's half tile: 6 rows, 8 columns of a 16-wide panel. */
#define TILE_NAME gemm_tile_avx2_6x8
#define TILE_MR 6
#define TILE_NV 1
#define TILE_BSTRIDE 16
#include "kernels/gemm_tile.inc"
#include "kernels/gemm_tile_isa_end.inc"

/* The spill tiles' epilogue for their extra columns (defined with the
 * column kernel below). */
__attribute__((target("avx2,fma"))) static void gemm_cols_store(const float *out, int mr, int cols,
                                                                float *c, size_t ldc,
                                                                const ww_gemm_epilogue *ep);

/* AVX-512: 8 x 32 tile = 16 zmm accumulators; 8 matches the channel counts
 * of the supported networks, so no rows are wasted. */
typedef float ww_v16f __attribute__((vector_size(64)));
typedef float ww_v16f_u __attribute__((vector_size(64), aligned(4)));
typedef int32_t ww_v16i __attribute__((vector_size(64)));
#define TILE_TARGET __attribute__((target("avx512f")))
#define TILE_VEC ww_v16f
#define TILE_UVEC ww_v16f_u
#define TILE_IVEC ww_v16i
#define TILE_VL 16
#define TILE_FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define TILE_SPLAT(x) _mm512_set1_ps(x)
#define TILE_ACTIVATE(x, a) ww_vm16_activate((x), (a))
#define TILE_RELU(x) _mm512_max_ps((x), _mm512_setzero_ps())
#define TILE_MIN6(x) _mm512_min_ps((x), _mm512_set1_ps(6.0f))

#define TILE_NAME gemm_tile_avx512_8x32
#define TILE_MR 8
#define TILE_NV 2
#include "kernels/gemm_tile.inc"

/* The same tile reading B in place (1x1 convolutions: the input's rows). */
#define TILE_NAME gemm_tile_avx512_8x32_strided
#define TILE_MR 8
#define TILE_NV 2
#define TILE_STRIDED
#include "kernels/gemm_tile.inc"

/* The same tile prefetching packed A ahead: for the first pass over
 * weights that come from memory (the other layers evicted them). */
#define TILE_NAME gemm_tile_avx512_8x32_prefetch
#define TILE_MR 8
#define TILE_NV 2
#define TILE_PREFETCH_A WW_GEMM_PREFETCH_A
#include "kernels/gemm_tile.inc"

/* The same reading B in place (1x1 convolutions). */
#define TILE_NAME gemm_tile_avx512_8x32_strided_prefetch
#define TILE_MR 8
#define TILE_NV 2
#define TILE_STRIDED
#define TILE_PREFETCH_A WW_GEMM_PREFETCH_A
#include "kernels/gemm_tile.inc"

/* The in-place tiles fetching the next panel's rows of B as they read
 * this one's (see ww_gemm_panel_args.fetch_next). */
#define TILE_NAME gemm_tile_avx512_8x32_strided_next
#define TILE_MR 8
#define TILE_NV 2
#define TILE_STRIDED
#define TILE_FETCH_NEXT
#include "kernels/gemm_tile.inc"
#define TILE_NAME gemm_tile_avx512_8x32_strided_prefetch_next
#define TILE_MR 8
#define TILE_NV 2
#define TILE_STRIDED
#define TILE_PREFETCH_A WW_GEMM_PREFETCH_A
#define TILE_FETCH_NEXT
#include "kernels/gemm_tile.inc"

/* The same tile fetching a side stream into L2 (lazy Winograd: the next
 * block's raw weights, see winograd.c). */
#define TILE_NAME gemm_tile_avx512_8x32_fetch
#define TILE_MR 8
#define TILE_NV 2
#define TILE_FETCH
#include "kernels/gemm_tile.inc"

/* The same 8 rows, 16 columns, over a 32-wide panel: a panel of 16..31
 * columns (e.g. 196 = 6 x 32 + 4 pixels, 49 = 32 + 17) costs half a tile. */
#define TILE_NAME gemm_tile_avx512_8x16
#define TILE_MR 8
#define TILE_NV 1
#define TILE_BSTRIDE 32
#include "kernels/gemm_tile.inc"

/* The first 1..7 rows of an 8-row panel of A: a last panel of few rows
 * (Winograd's tiles as rows: 49 = 6 x 8 + 1 on a 28x28 map) costs its
 * rows' FMAs instead of a whole tile's on a stack copy. */
#define TILE_NAME gemm_tile_avx512_1x32
#define TILE_MR 1
#define TILE_NV 2
#define TILE_ASTRIDE 8
#include "kernels/gemm_tile.inc"
#define TILE_NAME gemm_tile_avx512_2x32
#define TILE_MR 2
#define TILE_NV 2
#define TILE_ASTRIDE 8
#include "kernels/gemm_tile.inc"
#define TILE_NAME gemm_tile_avx512_3x32
#define TILE_MR 3
#define TILE_NV 2
#define TILE_ASTRIDE 8
#include "kernels/gemm_tile.inc"
#define TILE_NAME gemm_tile_avx512_4x32
#define TILE_MR 4
#define TILE_NV 2
#define TILE_ASTRIDE 8
#include "kernels/gemm_tile.inc"
#define TILE_NAME gemm_tile_avx512_5x32
#define TILE_MR 5
#define TILE_NV 2
#define TILE_ASTRIDE 8
#include "kernels/gemm_tile.inc"
#define TILE_NAME gemm_tile_avx512_6x32
#define TILE_MR 6
#define TILE_NV 2
#define TILE_ASTRIDE 8
#include "kernels/gemm_tile.inc"
#define TILE_NAME gemm_tile_avx512_7x32
#define TILE_MR 7
#define TILE_NV 2
#define TILE_ASTRIDE 8
#include "kernels/gemm_tile.inc"

/* Spill tiles (gemm.h): the extra columns' accumulators hold the 8 rows
 * in the low half of a vector (AVX-512F alone does not promise FMA on
 * 256-bit vectors; a half-empty 512-bit FMA costs the same on Zen 5). */
#define TILE_SPILL_LOAD_A(p) _mm512_maskz_loadu_ps(0x00ff, (p))
#define TILE_SPILL_STORE(p, v) _mm512_mask_storeu_ps((p), 0x00ff, (v))
#define TILE_NAME gemm_tile_avx512_8x32_spill_n
#define TILE_MR 8
#define TILE_NV 2
#define TILE_SPILL
#include "kernels/gemm_tile.inc"
#define TILE_NAME gemm_tile_avx512_8x16_spill_n
#define TILE_MR 8
#define TILE_NV 1
#define TILE_SPILL
#include "kernels/gemm_tile.inc"
/* The wide tile (gemm.h): 24 accumulators, 3 B vectors, A's broadcast and
 * up to WW_GEMM_WIDE_SPILL_MAX spill columns with A's rows fit the 32
 * registers. It prefetches A: one panel takes all the columns, so every
 * pass over A is its first, from L3 or memory (without the prefetch,
 * MobileNetV2's 7x7 layers ran 4-12 % slower than the two panels before
 * it, whose first prefetched; with it, 10-21 % faster). */
#define TILE_NAME gemm_tile_avx512_8x48_spill_prefetch_n
#define TILE_MR 8
#define TILE_NV 3
#define TILE_SPILL
#define TILE_PREFETCH_A WW_GEMM_PREFETCH_A
#include "kernels/gemm_tile.inc"
/* The wide tile also fetching a side stream, up to two lines per k step
 * (ww_gemm_panel_args.prefetch): the last conv of a network fetches the
 * classifier's weights (ww_conv2d_set_side_fetch). */
#define TILE_NAME gemm_tile_avx512_8x48_spill_prefetch_fetch_n
#define TILE_MR 8
#define TILE_NV 3
#define TILE_SPILL
#define TILE_PREFETCH_A WW_GEMM_PREFETCH_A
#define TILE_FETCH
#define TILE_FETCH_PER_K 2
#include "kernels/gemm_tile.inc"
#undef TILE_SPILL_LOAD_A
#undef TILE_SPILL_STORE

/* One copy of the spill tile per count of extra columns, so that the
 * extra accumulators unroll into registers. */
#define GEMM_SPILL_DISPATCH(tile_n)                                                                \
    switch (extra) {                                                                               \
    case 1: tile_n(kc, a, b, ldb, b_extra, ld_extra, 1, c, ldc, ep); break;                        \
    case 2: tile_n(kc, a, b, ldb, b_extra, ld_extra, 2, c, ldc, ep); break;                        \
    case 3: tile_n(kc, a, b, ldb, b_extra, ld_extra, 3, c, ldc, ep); break;                        \
    case 4: tile_n(kc, a, b, ldb, b_extra, ld_extra, 4, c, ldc, ep); break;                        \
    case 5: tile_n(kc, a, b, ldb, b_extra, ld_extra, 5, c, ldc, ep); break;                        \
    case 6: tile_n(kc, a, b, ldb, b_extra, ld_extra, 6, c, ldc, ep); break;                        \
    default: tile_n(kc, a, b, ldb, b_extra, ld_extra, 7, c, ldc, ep); break;                       \
    }

TILE_TARGET static void gemm_tile_avx512_8x32_spill(int kc, const float *a, const float *b,
                                                    size_t ldb, const float *b_extra,
                                                    size_t ld_extra, int extra, float *c,
                                                    size_t ldc, const ww_gemm_epilogue *ep)
{
    GEMM_SPILL_DISPATCH(gemm_tile_avx512_8x32_spill_n);
}

TILE_TARGET static void gemm_tile_avx512_8x16_spill(int kc, const float *a, const float *b,
                                                    size_t ldb, const float *b_extra,
                                                    size_t ld_extra, int extra, float *c,
                                                    size_t ldc, const ww_gemm_epilogue *ep)
{
    GEMM_SPILL_DISPATCH(gemm_tile_avx512_8x16_spill_n);
}

/* The wide tile per spill count (at most WW_GEMM_WIDE_SPILL_MAX). */
#define GEMM_WIDE_DISPATCH(tile_n)                                                                 \
    switch (extra) {                                                                               \
    case 0: tile_n(kc, a, b, ldb, b_extra, ld_extra, 0, c, ldc, ep); break;                        \
    case 1: tile_n(kc, a, b, ldb, b_extra, ld_extra, 1, c, ldc, ep); break;                        \
    default: tile_n(kc, a, b, ldb, b_extra, ld_extra, 2, c, ldc, ep); break;                       \
    }

TILE_TARGET static void gemm_tile_avx512_8x48_spill_prefetch(int kc, const float *a, const float *b,
                                                             size_t ldb, const float *b_extra,
                                                             size_t ld_extra, int extra, float *c,
                                                             size_t ldc, const ww_gemm_epilogue *ep)
{
    GEMM_WIDE_DISPATCH(gemm_tile_avx512_8x48_spill_prefetch_n);
}

TILE_TARGET static void
gemm_tile_avx512_8x48_spill_prefetch_fetch(int kc, const float *a, const float *b, size_t ldb,
                                           const float *b_extra, size_t ld_extra, int extra,
                                           float *c, size_t ldc, const ww_gemm_epilogue *ep)
{
    GEMM_WIDE_DISPATCH(gemm_tile_avx512_8x48_spill_prefetch_fetch_n);
}
#include "kernels/gemm_tile_isa_end.inc"

/* Column kernel: one 256-bit vector holds a column's MR (6 or 8) rows, so
 * `cols` columns cost `cols` FMAs per k rather than a half tile's MR
 * vector FMAs. With few columns the FMA latency would bound it, so
 * `unroll` interleaved k steps accumulate separately. The constant
 * arguments of each caller below let the loops unroll into registers.
 * Rows of a 6-row panel load under a mask: lanes 6 and 7 would read the
 * next k's rows, or past the end of packed A. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
gemm_cols_n(int kc, const float *a, const float *b, const int mr, const int nr, const int cols,
            const int unroll, float *out)
{
    const __m256i rows =
        _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, mr > 6 ? -1 : 0, mr > 7 ? -1 : 0);
    __m256 acc[8][WW_GEMM_MAX_COLS];
#pragma GCC unroll 8
    for (int u = 0; u < unroll; u++)
#pragma GCC unroll 8
        for (int j = 0; j < cols; j++)
            acc[u][j] = _mm256_setzero_ps();
    int k = 0;
    for (; k + unroll <= kc; k += unroll) {
#pragma GCC unroll 8
        for (int u = 0; u < unroll; u++) {
            __m256 av =
                mr == 8 ? _mm256_loadu_ps(a + mr * u) : _mm256_maskload_ps(a + mr * u, rows);
#pragma GCC unroll 8
            for (int j = 0; j < cols; j++)
                acc[u][j] = _mm256_fmadd_ps(av, _mm256_set1_ps(b[nr * u + j]), acc[u][j]);
        }
        a += mr * unroll;
        b += nr * unroll;
    }
    for (; k < kc; k++) {
        __m256 av = mr == 8 ? _mm256_loadu_ps(a) : _mm256_maskload_ps(a, rows);
#pragma GCC unroll 8
        for (int j = 0; j < cols; j++)
            acc[0][j] = _mm256_fmadd_ps(av, _mm256_set1_ps(b[j]), acc[0][j]);
        a += mr;
        b += nr;
    }
#pragma GCC unroll 8
    for (int j = 0; j < cols; j++) {
#pragma GCC unroll 8
        for (int u = 1; u < unroll; u++)
            acc[0][j] = _mm256_add_ps(acc[0][j], acc[u][j]);
        _mm256_maskstore_ps(out + mr * j, rows, acc[0][j]);
    }
}

/* The epilogue of a column kernel's sums (out[j * mr + r], j < cols) into
 * C, a column at a time: the column's mr sums are one vector, so the
 * accumulate, bias, residual and activation run as vector operations once
 * per column (row by row, with the columns gathered into a vector, the
 * exp-based activations ran once per row on 1-4 live lanes: EfficientNet's
 * 7x7 layers have one spill column per 8-row tile), and C's column is
 * read and written float by float (in scalar code, with a branch per value
 * on the activation and the data, the epilogue cost as much as the
 * columns' FMAs). */
__attribute__((target("avx2,fma"))) static void gemm_cols_store(const float *out, int mr, int cols,
                                                                float *c, size_t ldc,
                                                                const ww_gemm_epilogue *ep)
{
    const __m256i rows =
        _mm256_cmpgt_epi32(_mm256_set1_epi32(mr), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 bias = _mm256_setzero_ps();
    if (ep->final && ep->bias) bias = _mm256_maskload_ps(ep->bias, rows);
    float col[8];
    for (int j = 0; j < cols; j++) {
        __m256 v = _mm256_maskload_ps(out + (size_t)j * mr, rows);
        if (ep->accumulate) {
            for (int r = 0; r < mr; r++)
                col[r] = c[(size_t)r * ldc + j];
            v = _mm256_add_ps(v, _mm256_maskload_ps(col, rows));
        }
        if (ep->final) {
            if (ep->bias) v = _mm256_add_ps(v, bias);
            if (ep->residual) {
                for (int r = 0; r < mr; r++)
                    col[r] = ep->residual[(size_t)r * ldc + j];
                v = _mm256_add_ps(v, _mm256_maskload_ps(col, rows));
            }
            v = (__m256)ww_vm8_activate((ww_vm8f)v, ep->act);
        }
        _mm256_maskstore_ps(col, rows, v);
        for (int r = 0; r < mr; r++)
            c[(size_t)r * ldc + j] = col[r];
    }
}

/* Unrolling keeps about 8 accumulators in flight (two FMA pipes, latency 4). */
#define GEMM_COLS_DISPATCH(mr, nr)                                                                 \
    float out[(mr)*WW_GEMM_MAX_COLS];                                                              \
    switch (cols) {                                                                                \
    case 1: gemm_cols_n(kc, a, b, mr, nr, 1, 8, out); break;                                       \
    case 2: gemm_cols_n(kc, a, b, mr, nr, 2, 4, out); break;                                       \
    case 3: gemm_cols_n(kc, a, b, mr, nr, 3, 4, out); break;                                       \
    case 4: gemm_cols_n(kc, a, b, mr, nr, 4, 2, out); break;                                       \
    case 5: gemm_cols_n(kc, a, b, mr, nr, 5, 2, out); break;                                       \
    case 6: gemm_cols_n(kc, a, b, mr, nr, 6, 2, out); break;                                       \
    default: gemm_cols_n(kc, a, b, mr, nr, 7, 2, out); break;                                      \
    }                                                                                              \
    gemm_cols_store(out, mr, cols, c, ldc, ep);

__attribute__((target("avx2,fma"))) static void gemm_cols_avx2(int kc, const float *a,
                                                               const float *b, int cols, float *c,
                                                               size_t ldc,
                                                               const ww_gemm_epilogue *ep)
{
    GEMM_COLS_DISPATCH(6, 16)
}

__attribute__((target("avx512f,avx2,fma"))) static void gemm_cols_avx512(int kc, const float *a,
                                                                         const float *b, int cols,
                                                                         float *c, size_t ldc,
                                                                         const ww_gemm_epilogue *ep)
{
    GEMM_COLS_DISPATCH(8, 32)
}
#endif

static const ww_gemm_kernel gemm_portable = {.isa = WW_ISA_PORTABLE,
                                             .mr = 4,
                                             .nr = 8,
                                             .tile = gemm_tile_portable_4x8,
                                             .tile_strided = gemm_tile_portable_4x8_strided};
#if WW_HAVE_X86
/* Column kernel up to 5 columns: at 6 it does as many FMAs as the 8-wide tile. */
static const ww_gemm_kernel gemm_avx2 = {.isa = WW_ISA_AVX2,
                                         .mr = 6,
                                         .nr = 16,
                                         .tile = gemm_tile_avx2_6x16,
                                         .tile_prefetch = gemm_tile_avx2_6x16_prefetch,
                                         .tile_fetch = gemm_tile_avx2_6x16_fetch,
                                         .tile_strided = gemm_tile_avx2_6x16_strided,
                                         .tile_half = gemm_tile_avx2_6x8,
                                         .cols = gemm_cols_avx2,
                                         .cols_max = 5};
/* Column kernel up to 7 columns: at 8 it does as many FMAs as the 16-wide tile. */
static const ww_gemm_kernel gemm_avx512 = {
    .isa = WW_ISA_AVX512,
    .mr = 8,
    .nr = 32,
    .tile = gemm_tile_avx512_8x32,
    .tile_prefetch = gemm_tile_avx512_8x32_prefetch,
    .tile_fetch = gemm_tile_avx512_8x32_fetch,
    .tile_strided = gemm_tile_avx512_8x32_strided,
    .tile_strided_prefetch = gemm_tile_avx512_8x32_strided_prefetch,
    .tile_strided_next = gemm_tile_avx512_8x32_strided_next,
    .tile_strided_prefetch_next = gemm_tile_avx512_8x32_strided_prefetch_next,
    .tile_half = gemm_tile_avx512_8x16,
    .tile_rows = {NULL, gemm_tile_avx512_1x32, gemm_tile_avx512_2x32, gemm_tile_avx512_3x32,
                  gemm_tile_avx512_4x32, gemm_tile_avx512_5x32, gemm_tile_avx512_6x32,
                  gemm_tile_avx512_7x32},
    .cols = gemm_cols_avx512,
    .cols_max = 7,
    .tile_spill = gemm_tile_avx512_8x32_spill,
    .tile_half_spill = gemm_tile_avx512_8x16_spill,
    .spill_max = WW_GEMM_MAX_SPILL,
    .tile_wide = gemm_tile_avx512_8x48_spill_prefetch,
    .tile_wide_fetch = gemm_tile_avx512_8x48_spill_prefetch_fetch,
    .wide_nr = 48};
#endif

int ww_isa_supported(ww_isa isa)
{
    switch (isa) {
    case WW_ISA_AUTO:
    case WW_ISA_PORTABLE: return 1;
#if WW_HAVE_X86
    /* libgcc's checks include the OS (XCR0) having enabled the registers. */
    case WW_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case WW_ISA_AVX512: __builtin_cpu_init(); return __builtin_cpu_supports("avx512f") != 0;
#else
    case WW_ISA_AVX2:
    case WW_ISA_AVX512: return 0;
#endif
    }
    return 0;
}

/* The widest variant the CPU runs, capped by $WANWU_ISA (avx512, avx2,
 * scalar or portable) so that every path can be exercised end to end on
 * one machine. A forced variant the CPU lacks falls back to the widest one
 * below it; an unknown value is ignored. Read once. */
static ww_isa isa_detect(void)
{
    ww_isa cap = WW_ISA_AVX512;
    const char *env = getenv("WANWU_ISA");
    if (env && *env) {
        if (strcmp(env, "avx512") == 0)
            cap = WW_ISA_AVX512;
        else if (strcmp(env, "avx2") == 0)
            cap = WW_ISA_AVX2;
        else if (strcmp(env, "scalar") == 0 || strcmp(env, "portable") == 0)
            cap = WW_ISA_PORTABLE;
    }
    if (cap >= WW_ISA_AVX512 && ww_isa_supported(WW_ISA_AVX512)) return WW_ISA_AVX512;
    if (cap >= WW_ISA_AVX2 && ww_isa_supported(WW_ISA_AVX2)) return WW_ISA_AVX2;
    return WW_ISA_PORTABLE;
}

ww_isa ww_isa_best(void)
{
    static int cached; /* 0 = not yet, else ww_isa value */
    int isa = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (isa == 0) {
        isa = (int)isa_detect();
        __atomic_store_n(&cached, isa, __ATOMIC_RELAXED);
    }
    return (ww_isa)isa;
}

const char *ww_isa_name(ww_isa isa)
{
    switch (isa) {
    case WW_ISA_AUTO: return "auto";
    case WW_ISA_PORTABLE: return "portable";
    case WW_ISA_AVX2: return "avx2";
    case WW_ISA_AVX512: return "avx512";
    }
    return "unknown";
}

const ww_gemm_kernel *ww_gemm_kernel_for(ww_isa isa)
{
    if (isa == WW_ISA_AUTO) isa = ww_isa_best();
    if (!ww_isa_supported(isa)) return NULL;
    switch (isa) {
#if WW_HAVE_X86
    case WW_ISA_AVX512: return &gemm_avx512;
    case WW_ISA_AVX2: return &gemm_avx2;
#endif
    case WW_ISA_PORTABLE: return &gemm_portable;
    default: return NULL;
    }
}

float *ww_align64(float *p)
{
    uintptr_t addr = (uintptr_t)p;
    return p + ((64 - addr % 64) % 64) / sizeof(float);
}

size_t ww_gemm_packed_a_floats(const ww_gemm_kernel *kern, int m, int k)
{
    size_t panels = ((size_t)m + (size_t)kern->mr - 1) / (size_t)kern->mr;
    return panels * (size_t)kern->mr * (size_t)k;
}

void ww_gemm_pack_a(const ww_gemm_kernel *kern, int m, int k, const float *a, size_t lda,
                    float *packed)
{
    int mr = kern->mr;
    for (int m0 = 0; m0 < m; m0 += mr) {
        float *panel = packed + (size_t)(m0 / mr) * mr * k;
        /* Row by row: reads stream through A, writes stay inside the panel
         * (cache resident), instead of striding through A by lda. */
        for (int r = 0; r < mr; r++) {
            float *dst = panel + r;
            if (m0 + r < m) {
                const float *src = a + (size_t)(m0 + r) * lda;
                for (int kk = 0; kk < k; kk++)
                    dst[(size_t)kk * mr] = src[kk];
            } else {
                for (int kk = 0; kk < k; kk++)
                    dst[(size_t)kk * mr] = 0.0f;
            }
        }
    }
}

void ww_gemm_pack_b_panel(const ww_gemm_kernel *kern, int kc, int nr, const float *b, size_t ldb,
                          float *panel)
{
    int full = kern->nr;
    for (int kk = 0; kk < kc; kk++) {
        float *dst = panel + (size_t)kk * full;
        memcpy(dst, b + (size_t)kk * ldb, (size_t)nr * sizeof *dst);
        for (int j = nr; j < full; j++)
            dst[j] = 0.0f;
    }
}

#if WW_HAVE_X86
/* ww_gemm_pack_b_panel_scaled for 16-float multiples of NR (AVX-512: 32):
 * masked loads leave the lanes past nr zero. */
__attribute__((target("avx512f"))) static void pack_b_scaled_avx512(int kc, int nr, int full,
                                                                    const float *b, size_t ldb,
                                                                    const float *scale,
                                                                    float *panel)
{
    for (int kk = 0; kk < kc; kk++) {
        const float *src = b + (size_t)kk * ldb;
        float *dst = panel + (size_t)kk * full;
        __m512 sc = _mm512_set1_ps(scale[kk]);
        for (int j = 0; j < full; j += 16) {
            int left = nr - j < 0 ? 0 : nr - j;
            __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
            _mm512_storeu_ps(dst + j, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, src + j), sc));
        }
    }
}
#endif

void ww_gemm_pack_b_panel_scaled(const ww_gemm_kernel *kern, int kc, int nr, const float *b,
                                 size_t ldb, const float *scale, float *panel)
{
    int full = kern->nr;
#if WW_HAVE_X86
    if (kern->isa == WW_ISA_AVX512 && full % 16 == 0) {
        pack_b_scaled_avx512(kc, nr, full, b, ldb, scale, panel);
        return;
    }
#endif
    for (int kk = 0; kk < kc; kk++) {
        const float *src = b + (size_t)kk * ldb;
        float *dst = panel + (size_t)kk * full;
        float sc = scale[kk];
        for (int j = 0; j < nr; j++)
            dst[j] = src[j] * sc;
        for (int j = nr; j < full; j++)
            dst[j] = 0.0f;
    }
}

void ww_gemm_pack_spill(int kc, int cols, const float *b, size_t ldb, const float *scale,
                        float *panel)
{
    for (int kk = 0; kk < kc; kk++) {
        const float *src = b + (size_t)kk * ldb;
        float *dst = panel + (size_t)kk * WW_GEMM_SPILL_STRIDE;
        float sc = scale ? scale[kk] : 1.0f;
        for (int j = 0; j < cols; j++)
            dst[j] = src[j] * sc;
    }
}

/* A tile cut by the edge of C: run a tile kernel `width` columns wide on a
 * stack copy. B is a packed panel for `tile_fn`, or rows `ldb` apart for
 * `strided_fn` when that is given. */
static void gemm_edge_tile_any(ww_gemm_tile_fn tile_fn, ww_gemm_tile_strided_fn strided_fn,
                               size_t ldb, int width, int kc, const float *a, const float *b,
                               int rows, int cols, float *c, size_t ldc, const ww_gemm_epilogue *ep)
{
    float tile[WW_GEMM_MAX_MR * WW_GEMM_MAX_NR] = {0};
    float residual[WW_GEMM_MAX_MR * WW_GEMM_MAX_NR] = {0};
    float bias[WW_GEMM_MAX_MR] = {0};
    size_t ld = (size_t)width;
    ww_gemm_epilogue local = *ep;
    for (int r = 0; r < rows; r++) {
        if (ep->accumulate) memcpy(tile + r * ld, c + r * ldc, (size_t)cols * sizeof(float));
        if (ep->final && ep->residual)
            memcpy(residual + r * ld, ep->residual + r * ldc, (size_t)cols * sizeof(float));
        if (ep->final && ep->bias) bias[r] = ep->bias[r];
    }
    local.bias = ep->bias ? bias : NULL;
    local.residual = ep->residual ? residual : NULL;
    if (strided_fn)
        strided_fn(kc, a, b, ldb, tile, ld, &local);
    else
        tile_fn(kc, a, b, tile, ld, &local);
    for (int r = 0; r < rows; r++)
        memcpy(c + r * ldc, tile + r * ld, (size_t)cols * sizeof(float));
}

static void gemm_edge_tile(ww_gemm_tile_fn tile_fn, int width, int kc, const float *a,
                           const float *b, int rows, int cols, float *c, size_t ldc,
                           const ww_gemm_epilogue *ep)
{
    gemm_edge_tile_any(tile_fn, NULL, 0, width, kc, a, b, rows, cols, c, ldc, ep);
}

/* A full-row tile of fewer than NR columns: the half-width tile for the
 * first NR/2 columns when there are that many, then the rest through the
 * column kernel when few enough, else the half-width tile on a stack copy. */
static void gemm_narrow_panel(const ww_gemm_kernel *kern, int kc, const float *a, const float *b,
                              int cols, float *c, size_t ldc, const ww_gemm_epilogue *ep)
{
    int half = kern->nr / 2;
    if (cols > half && cols - half <= kern->spill_max) {
        kern->tile_half_spill(kc, a, b, (size_t)kern->nr, b + half, (size_t)kern->nr, cols - half,
                              c, ldc, ep);
        return;
    }
    if (cols >= half) {
        kern->tile_half(kc, a, b, c, ldc, ep);
        cols -= half;
        b += half;
        c += half;
        ww_gemm_epilogue rest = *ep;
        if (rest.residual) rest.residual += half;
        if (cols == 0) return;
        if (kern->cols && cols <= kern->cols_max)
            kern->cols(kc, a, b, cols, c, ldc, &rest);
        else
            gemm_edge_tile(kern->tile_half, half, kc, a, b, kern->mr, cols, c, ldc, &rest);
        return;
    }
    if (kern->cols && cols <= kern->cols_max)
        kern->cols(kc, a, b, cols, c, ldc, ep);
    else
        gemm_edge_tile(kern->tile_half, half, kc, a, b, kern->mr, cols, c, ldc, ep);
}

void ww_gemm_panel(const ww_gemm_panel_args *g)
{
    const ww_gemm_kernel *kern = g->kern;
    int mr = kern->mr;
    ww_gemm_epilogue ep = {.accumulate = g->k0 > g->k_first,
                           .final = !g->partial && g->k0 + g->kc >= g->k,
                           .act = g->act,
                           .fetch_c_next = g->fetch_c_next};
    const char *fetch = g->prefetch;
    int fetch_left = fetch ? g->prefetch_lines : 0;
    for (int m0 = g->m_begin; m0 < g->m_end; m0 += mr) {
        int rows = g->m_end - m0 < mr ? g->m_end - m0 : mr;
        const float *a = g->a_packed + (size_t)(m0 / mr) * mr * g->k + (size_t)g->k0 * mr;
        float *c = g->c + (size_t)m0 * g->ldc;
        ep.bias = g->bias ? g->bias + m0 : NULL;
        ep.residual = g->residual ? g->residual + (size_t)m0 * g->ldc : NULL;
        /* lines a fetching tile takes per k step here (0: none applies) */
        int per_k = 0;
        if (fetch_left > 0 && g->wide && kern->tile_wide_fetch)
            per_k = 2;
        else if (fetch_left > 0 && !g->ldb && !g->spill && rows == mr && g->nr == kern->nr &&
                 kern->tile_fetch)
            per_k = 1;
        if (per_k) {
            /* this tile's even share of the side stream's remaining lines */
            int tiles_left = (g->m_end - m0 + mr - 1) / mr;
            int share = (fetch_left + tiles_left - 1) / tiles_left;
            ep.prefetch = fetch;
            ep.prefetch_lines = share < per_k * g->kc ? share : per_k * g->kc;
            if (per_k == 2)
                kern->tile_wide_fetch(g->kc, a, g->b_panel, g->ldb, g->b_spill, g->ld_spill,
                                      g->spill, c, g->ldc, &ep);
            else
                kern->tile_fetch(g->kc, a, g->b_panel, c, g->ldc, &ep);
            fetch += (size_t)ep.prefetch_lines * 64;
            fetch_left -= ep.prefetch_lines;
            continue;
        }
        if (g->wide) /* full rows, B in place (see ww_gemm_panel_args) */
            kern->tile_wide(g->kc, a, g->b_panel, g->ldb, g->b_spill, g->ld_spill, g->spill, c,
                            g->ldc, &ep);
        else if (g->spill) /* full rows (see ww_gemm_panel_args) */
            kern->tile_spill(g->kc, a, g->b_panel, g->ldb ? g->ldb : (size_t)kern->nr, g->b_spill,
                             g->ld_spill, g->spill, c, g->ldc, &ep);
        else if (g->ldb && rows == mr) { /* rows of B in place: full-width panels only */
            ww_gemm_tile_strided_fn fn = g->prefetch_a && kern->tile_strided_prefetch
                                             ? kern->tile_strided_prefetch
                                             : kern->tile_strided;
            if (g->fetch_next && m0 == g->m_begin && kern->tile_strided_next)
                fn = g->prefetch_a ? kern->tile_strided_prefetch_next : kern->tile_strided_next;
            fn(g->kc, a, g->b_panel, g->ldb, c, g->ldc, &ep);
        } else if (g->ldb)
            gemm_edge_tile_any(NULL, kern->tile_strided, g->ldb, kern->nr, g->kc, a, g->b_panel,
                               rows, g->nr, c, g->ldc, &ep);
        else if (rows == mr && g->nr == kern->nr)
            (g->prefetch_a && kern->tile_prefetch ? kern->tile_prefetch : kern->tile)(
                g->kc, a, g->b_panel, c, g->ldc, &ep);
        else if (rows == mr && kern->tile_half)
            gemm_narrow_panel(kern, g->kc, a, g->b_panel, g->nr, c, g->ldc, &ep);
        else if (g->nr == kern->nr && kern->tile_rows[rows])
            kern->tile_rows[rows](g->kc, a, g->b_panel, c, g->ldc, &ep);
        else
            gemm_edge_tile(kern->tile, kern->nr, g->kc, a, g->b_panel, rows, g->nr, c, g->ldc, &ep);
    }
    /* what no tile could spread (edge tiles, or more lines than k steps) */
    for (; fetch_left > 0; fetch_left--, fetch += 64)
        __builtin_prefetch(fetch, 0, 2);
}

size_t ww_sgemm_scratch_floats(const ww_gemm_kernel *kern)
{
    return (size_t)WW_GEMM_KC * kern->nr + 16;
}

void ww_sgemm(const ww_gemm_kernel *kern, int m, int n, int k, const float *a_packed,
              const float *b, size_t ldb, const float *bias, const float *residual,
              ww_activation act, float *c, size_t ldc, float *scratch)
{
    float *panel = ww_align64(scratch);
    for (int n0 = 0; n0 < n; n0 += kern->nr) {
        int nr = n - n0 < kern->nr ? n - n0 : kern->nr;
        for (int k0 = 0; k0 < k; k0 += WW_GEMM_KC) {
            int kc = k - k0 < WW_GEMM_KC ? k - k0 : WW_GEMM_KC;
            ww_gemm_pack_b_panel(kern, kc, nr, b + (size_t)k0 * ldb + n0, ldb, panel);
            ww_gemm_panel_args args = {.kern = kern,
                                       .a_packed = a_packed,
                                       .k = k,
                                       .k0 = k0,
                                       .kc = kc,
                                       .m_begin = 0,
                                       .m_end = m,
                                       .nr = nr,
                                       .b_panel = panel,
                                       .c = c + n0,
                                       .ldc = ldc,
                                       .bias = bias,
                                       .residual = residual ? residual + n0 : NULL,
                                       .act = act};
            ww_gemm_panel(&args);
        }
    }
}

/* ---- matrix-vector product on packed A ------------------------------------ */

/* One MR-row panel times x: the panel's k-th MR floats are row values of
 * column k, so a vector of MR lanes accumulates MR dot products at once.
 * Four accumulators over k hide the FMA latency. */
static void gemv_panel_portable(int k, const float *panel, const float *x, float *y4)
{
    ww_v4f acc[4] = {{0}, {0}, {0}, {0}};
    int kk = 0;
    for (; kk + 4 <= k; kk += 4)
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++)
            acc[u] += *(const ww_v4f_u *)(panel + (size_t)(kk + u) * 4) * x[kk + u];
    for (; kk < k; kk++)
        acc[0] += *(const ww_v4f_u *)(panel + (size_t)kk * 4) * x[kk];
    *(ww_v4f_u *)y4 = (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

#if WW_HAVE_X86
/* Squeeze-and-excitation's fc convs read their weights once per run, from
 * L3 or RAM, as one sequential stream (the panels follow one another):
 * fetched this far ahead (8 KB), as ww_linear does. */
#define GEMV_PREFETCH_FLOATS 2048

/* AVX2: MR = 6 rows per panel, loaded as 8 lanes under a mask (the two
 * extra lanes would belong to the next column, or lie past the end). */
__attribute__((target("avx2,fma"))) static void gemv_panel_avx2(int k, const float *panel,
                                                                const float *x, float *y8)
{
    const __m256i mask = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    int kk = 0;
    for (; kk + 4 <= k; kk += 4) {
        /* 96 bytes per step: a line ahead in the stream, most steps */
        __builtin_prefetch(panel + (size_t)kk * 6 + GEMV_PREFETCH_FLOATS, 0, 3);
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++)
            acc[u] = _mm256_fmadd_ps(_mm256_maskload_ps(panel + (size_t)(kk + u) * 6, mask),
                                     _mm256_set1_ps(x[kk + u]), acc[u]);
    }
    for (; kk < k; kk++)
        acc[0] = _mm256_fmadd_ps(_mm256_maskload_ps(panel + (size_t)kk * 6, mask),
                                 _mm256_set1_ps(x[kk]), acc[0]);
    _mm256_storeu_ps(y8,
                     _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

/* AVX-512: MR = 8 rows per panel, the low half of a 512-bit vector per
 * column (AVX-512F alone does not promise FMA on 256-bit vectors). */
__attribute__((target("avx512f"))) static void gemv_panel_avx512(int k, const float *panel,
                                                                 const float *x, float *y8)
{
    const __mmask16 low = 0x00ff;
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                     _mm512_setzero_ps()};
    int kk = 0;
    for (; kk + 4 <= k; kk += 4) {
        /* the 128 bytes of these 4 steps, GEMV_PREFETCH_FLOATS ahead */
        __builtin_prefetch(panel + (size_t)kk * 8 + GEMV_PREFETCH_FLOATS, 0, 3);
        __builtin_prefetch(panel + (size_t)kk * 8 + GEMV_PREFETCH_FLOATS + 16, 0, 3);
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++)
            acc[u] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(low, panel + (size_t)(kk + u) * 8),
                                     _mm512_set1_ps(x[kk + u]), acc[u]);
    }
    for (; kk < k; kk++)
        acc[0] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(low, panel + (size_t)kk * 8),
                                 _mm512_set1_ps(x[kk]), acc[0]);
    _mm512_mask_storeu_ps(
        y8, low, _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}
#endif

void ww_gemv_packed(const ww_gemm_kernel *kern, int m_begin, int m_end, int k,
                    const float *a_packed, const float *x, const float *bias, const float *residual,
                    float *y)
{
    int mr = kern->mr;
    for (int m0 = m_begin; m0 < m_end; m0 += mr) {
        const float *panel = a_packed + (size_t)(m0 / mr) * mr * k;
        float rows[8];
        switch (kern->isa) {
#if WW_HAVE_X86
        case WW_ISA_AVX512: gemv_panel_avx512(k, panel, x, rows); break;
        case WW_ISA_AVX2: gemv_panel_avx2(k, panel, x, rows); break;
#endif
        default: gemv_panel_portable(k, panel, x, rows); break;
        }
        int count = m_end - m0 < mr ? m_end - m0 : mr;
        for (int r = 0; r < count; r++) {
            float v = rows[r];
            if (bias) v += bias[m0 + r];
            if (residual) v += residual[m0 + r];
            y[m0 + r] = v;
        }
    }
}
