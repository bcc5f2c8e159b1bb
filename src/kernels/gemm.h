/* Cache-blocked single-precision GEMM: C (M x N) = A (M x K) * B (K x N),
 * row-major, with a fused epilogue (bias per row, residual, activation).
 *
 * A is packed once (it holds the weights) into panels of MR rows stored
 * k-major, zero-padded to a multiple of MR. B is packed per call into
 * panels of KC x NR floats so that the register-tiled micro-kernel reads
 * both operands contiguously. Tile geometry depends on the instruction
 * set, so packed A is only valid for the kernel it was packed for. */
#ifndef WW_KERNELS_GEMM_H
#define WW_KERNELS_GEMM_H

#include "ops/ops.h"

#include <stddef.h>

/* Depth of one packed B panel: KC x NR floats (32 KiB for NR = 32) stay in
 * L1 while every MR-row panel of A streams past them. */
#define WW_GEMM_KC 256
/* Largest NR of any variant (sizes per-thread scratch and stack tiles). */
#define WW_GEMM_MAX_NR 32
#define WW_GEMM_MAX_MR 8
/* Prefetch distance of tile_prefetch: 4 KiB, a few hundred cycles of
 * tile work ahead, about a memory latency. */
#define WW_GEMM_PREFETCH_A 1024
/* Most columns any column kernel handles (sizes its output buffer). */
#define WW_GEMM_MAX_COLS 7
/* Most spill columns of the wide tile (kernel tile_wide). */
#define WW_GEMM_WIDE_SPILL_MAX 2
/* Most extra columns a spill tile carries (at most WW_GEMM_MAX_COLS). */
#define WW_GEMM_MAX_SPILL 7
/* Row stride of a packed panel of spilled columns (ww_gemm_pack_spill). */
#define WW_GEMM_SPILL_STRIDE 8

typedef struct ww_gemm_epilogue {
    int accumulate;        /* add the tile's current contents of C */
    int final;             /* last K block: apply bias, residual, activation */
    const float *bias;     /* bias of the tile's first row; NULL = none */
    const float *residual; /* residual tile with the same stride as C; NULL = none */
    ww_activation act;
    /* tile_fetch and tile_wide_fetch only: prefetch_lines (<= kc, <= 2 kc
     * for tile_wide_fetch) cache lines from prefetch into L2, one (two)
     * per k step, spread over the tile's work */
    const char *prefetch;
    int prefetch_lines;
    /* tile_strided*: 1 to fetch the tile's rows of the next panel of C
     * (the NR floats right of each row) for writing */
    int fetch_c_next;
} ww_gemm_epilogue;

/* Computes one full MR x NR tile: acc = A_panel (kc x MR) * B_panel (kc x NR),
 * then C = epilogue(acc [+ C]). c has row stride ldc. */
typedef void (*ww_gemm_tile_fn)(int kc, const float *a, const float *b, float *c, size_t ldc,
                                const ww_gemm_epilogue *ep);

/* The same reading B in place: kc rows of NR floats, `ldb` floats apart. */
typedef void (*ww_gemm_tile_strided_fn)(int kc, const float *a, const float *b, size_t ldb,
                                        float *c, size_t ldc, const ww_gemm_epilogue *ep);

/* The last few columns of a full-row panel, one vector of MR rows per
 * column: C[r][j] = epilogue(sum_k a[k * MR + r] * b[k * NR + j] [+ C])
 * for j < cols, c with row stride ldc. Cheaper than a tile when few
 * columns remain: its FMAs scale with the columns instead of the tile
 * width. */
typedef void (*ww_gemm_cols_fn)(int kc, const float *a, const float *b, int cols, float *c,
                                size_t ldc, const ww_gemm_epilogue *ep);

/* A full-row tile (NR or NR/2 columns, B rows `ldb` floats apart) plus
 * `extra` (1..spill_max) columns right of it, whose rows are `ld_extra`
 * floats apart at b_extra, in one pass over A. A matrix whose width
 * leaves a few columns over a multiple of the tile (196 = 6 x 32 + 4
 * pixels, 49 = 32 + 16 + 1) otherwise streams A once more for them through
 * the column kernel; here they cost one FMA per column per k step with
 * the A loads the tile makes anyway. Full MR-row panels only. */
typedef void (*ww_gemm_tile_spill_fn)(int kc, const float *a, const float *b, size_t ldb,
                                      const float *b_extra, size_t ld_extra, int extra, float *c,
                                      size_t ldc, const ww_gemm_epilogue *ep);

typedef struct ww_gemm_kernel {
    ww_isa isa;
    int mr, nr;
    ww_gemm_tile_fn tile;
    /* `tile` prefetching packed A WW_GEMM_PREFETCH_A floats ahead, for A
     * streamed once from memory in one sequential pass; NULL = none. */
    ww_gemm_tile_fn tile_prefetch;
    /* `tile` also fetching the epilogue's side stream into L2 (data the
     * caller reads next from memory, fetched while the tile computes
     * rather than in a burst that stalls on the miss buffers); NULL = none. */
    ww_gemm_tile_fn tile_fetch;
    /* `tile` reading unpacked rows of B (1x1 convolutions read their
     * input in place when its rows stay in cache; see conv2d.c). */
    ww_gemm_tile_strided_fn tile_strided;
    /* `tile_strided` prefetching packed A as tile_prefetch does; NULL = none. */
    ww_gemm_tile_strided_fn tile_strided_prefetch;
    /* Those two also fetching the next panel's rows (NR floats right of
     * each row they read) into cache; NULL = none. */
    ww_gemm_tile_strided_fn tile_strided_next, tile_strided_prefetch_next;
    /* MR x NR/2 tile reading the left half of an NR-wide B panel, for
     * panels with NR/2 or more but fewer than NR columns; NULL = none. */
    ww_gemm_tile_fn tile_half;
    /* tile_rows[r]: the first r < MR rows of a panel, full NR columns,
     * writing only those rows; NULL = none (a whole tile on a stack copy). */
    ww_gemm_tile_fn tile_rows[WW_GEMM_MAX_MR];
    /* Column kernel for remainders of at most cols_max columns; NULL = none. */
    ww_gemm_cols_fn cols;
    int cols_max;
    /* Spill tiles NR + extra and NR/2 + extra wide; NULL = none. */
    ww_gemm_tile_spill_fn tile_spill, tile_half_spill;
    int spill_max;
    /* Wide tile: MR x wide_nr columns of B read in place (rows ldb apart)
     * plus 0..WW_GEMM_WIDE_SPILL_MAX spill columns, for matrices just
     * that wide (7x7 maps: 49 = 48 + 1 pixels), which otherwise take a
     * full tile, a half tile and a spill column: 3 B vectors per k step
     * for 8 broadcasts of A keep the FMAs busy where the half tile's 1 did
     * not. NULL = none. */
    ww_gemm_tile_spill_fn tile_wide; /* prefetching packed A as tile_prefetch does */
    /* tile_wide also fetching the side stream (ww_gemm_panel_args.prefetch),
     * up to two lines per k step; NULL = none */
    ww_gemm_tile_spill_fn tile_wide_fetch;
    int wide_nr;
} ww_gemm_kernel;

/* The micro-kernel for `isa` (AUTO = best); NULL if the CPU cannot run it. */
const ww_gemm_kernel *ww_gemm_kernel_for(ww_isa isa);

/* Floats needed to pack an m x k matrix for kernel `kern`. */
size_t ww_gemm_packed_a_floats(const ww_gemm_kernel *kern, int m, int k);
/* Packs row-major A (m x k, row stride lda) into MR-row panels. */
void ww_gemm_pack_a(const ww_gemm_kernel *kern, int m, int k, const float *a, size_t lda,
                    float *packed);

/* Copies rows [k0, k0 + kc) and columns [n0, n0 + nr) of row-major B
 * (row stride ldb) into one KC x NR panel, zero-filling columns >= nr. */
void ww_gemm_pack_b_panel(const ww_gemm_kernel *kern, int kc, int nr, const float *b, size_t ldb,
                          float *panel);
/* The same with row kk multiplied by scale[kk] (a per-input-channel scale
 * of a 1x1 convolution's input: squeeze-and-excitation). */
void ww_gemm_pack_b_panel_scaled(const ww_gemm_kernel *kern, int kc, int nr, const float *b,
                                 size_t ldb, const float *scale, float *panel);
/* Copies kc rows of `cols` (<= WW_GEMM_SPILL_STRIDE) columns of B (row
 * stride ldb, b at the first) into a panel of rows
 * WW_GEMM_SPILL_STRIDE floats apart, row kk multiplied by scale[kk] when
 * scale is not NULL: the spilled columns of a packed panel. */
void ww_gemm_pack_spill(int kc, int cols, const float *b, size_t ldb, const float *scale,
                        float *panel);

/* One packed B panel times a range of A's rows: C[m_begin:m_end, 0:nr] =
 * epilogue(A[m_begin:m_end, k0:k0+kc] * panel [+ C]). m_begin is a
 * multiple of MR. c, bias and residual point at row 0 of the whole matrix
 * (column n0 of this panel). Edge tiles (fewer than MR rows or NR columns)
 * go through a stack buffer. */
typedef struct ww_gemm_panel_args {
    const ww_gemm_kernel *kern;
    const float *a_packed; /* packed A for all rows (row 0) */
    int k;                 /* full K of A (packed panel stride) */
    int k0, kc;            /* K block of this B panel */
    /* The first K row this product sums (blocks past it add to C), and
     * 1 when the rows end before k (a partial sum: no bias, residual or
     * activation; see the K-split run in conv2d.c). */
    int k_first, partial;
    int m_begin, m_end;
    int nr;               /* valid columns in the B panel (<= kern->nr) */
    const float *b_panel; /* packed KC x NR panel, or with ldb the B block's first row */
    size_t ldb;           /* 0: b_panel is packed; else full NR-column rows ldb floats apart */
    float *c;
    size_t ldc;
    const float *bias;
    const float *residual;
    ww_activation act;
    int prefetch_a; /* full tiles prefetch A ahead (tile_prefetch, tile_strided_prefetch) */
    /* A side stream of prefetch_lines cache lines to fetch into L2 while
     * the panel computes: spread over its full tiles (kern->tile_fetch),
     * the rest fetched at once; NULL = none. */
    const char *prefetch;
    int prefetch_lines;
    /* 1..kern->spill_max columns right of a full NR-column panel, computed
     * with it by kern->tile_spill: rows ld_spill floats apart at b_spill.
     * Only with full MR-row panels (m_begin, m_end multiples of MR). 0 = none. */
    int spill;
    const float *b_spill;
    size_t ld_spill;
    /* B in place (ldb): the first row tile also fetches the next panel's
     * rows (the NR floats right of each row it reads), which the hardware
     * prefetcher follows poorly, one stream per row. */
    int fetch_next;
    /* B in place (ldb): each full tile fetches its rows of the next
     * panel's C, for writing, when the same thread writes that panel next
     * (ww_gemm_epilogue.fetch_c_next). */
    int fetch_c_next;
    /* All kern->wide_nr + spill columns in one pass by kern->tile_wide: B
     * in place (ldb), full MR-row panels, spill columns at b_spill. */
    int wide;
} ww_gemm_panel_args;
void ww_gemm_panel(const ww_gemm_panel_args *args);

/* Floats of scratch ww_sgemm needs. */
size_t ww_sgemm_scratch_floats(const ww_gemm_kernel *kern);
/* Serial GEMM with epilogue: C = act(A * B + bias + residual). a_packed
 * comes from ww_gemm_pack_a(kern, m, k, ...). residual (ldc stride) and
 * bias may be NULL. */
void ww_sgemm(const ww_gemm_kernel *kern, int m, int n, int k, const float *a_packed,
              const float *b, size_t ldb, const float *bias, const float *residual,
              ww_activation act, float *c, size_t ldc, float *scratch);

/* y[m] = sum_k A[m][k] x[k] + bias[m] + residual[m] for m in [m_begin,
 * m_end) (m_begin a multiple of MR), straight from packed A: the product
 * of a 1x1 convolution on a 1x1 map (squeeze-and-excitation), where a GEMM
 * tile would compute NR columns to use one. bias and residual may be NULL;
 * no activation (the caller applies it to the whole vector). */
void ww_gemv_packed(const ww_gemm_kernel *kern, int m_begin, int m_end, int k,
                    const float *a_packed, const float *x, const float *bias, const float *residual,
                    float *y);

/* Rounds p up to a 64-byte boundary (scratch slots are over-allocated by 16 floats). */
float *ww_align64(float *p);

#endif
