/* Stem convolution with pixels in the vector lanes; see conv2d_stem.h. */
#include "kernels/conv2d_stem.h"

#include "core/arena.h"
#include "core/prefault.h"
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

#define STEM_JC 8 /* output channels per tile */
#define STEM_NV 3 /* most vectors of 16 pixels per tile */

/* Bytes of one band's padded, phase-split input rows: they stay in L1
 * while every tile of the band reads them. */
#define STEM_ROWS_BYTES (32 * 1024)

struct ww_conv_stem {
    ww_conv2d_shape s;
    int taps;      /* in_c * kernel_h * kernel_w */
    int groups8;   /* tiles of STEM_JC output channels */
    int row_len;   /* floats of one phase of a copied input row */
    int band_rows; /* output rows per band */
    float *w;      /* [groups8][taps][STEM_JC] */
    float *bias;   /* [groups8 * STEM_JC], zeros past out_c */
    int arena_owned;
};

int ww_conv_stem_suits(const ww_conv2d_shape *s, ww_isa isa)
{
    return WW_HAVE_X86 && isa == WW_ISA_AVX512 && s->groups == 1 && s->dilation_h == 1 &&
           s->dilation_w == 1 && (s->stride_w == 1 || s->stride_w == 2) &&
           s->kernel_h * s->kernel_w > 1 &&
           (long long)s->in_c * s->kernel_h * s->kernel_w <= WW_CONV_STEM_MAX_TAPS &&
           s->out_w >= WW_CONV_STEM_MIN_OUT_W;
}

/* Padded input rows a band of `rows` output rows reads. */
static int stem_input_rows(const ww_conv2d_shape *s, int rows)
{
    return (rows - 1) * s->stride_h + s->kernel_h;
}

ww_conv_stem *ww_conv_stem_create(const ww_conv2d_shape *s, const float *weight, const float *bias,
                                  ww_arena *arena)
{
    ww_conv_stem *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->s = *s;
    d->taps = s->in_c * s->kernel_h * s->kernel_w;
    d->groups8 = (s->out_c + STEM_JC - 1) / STEM_JC;
    /* every vector a tile loads: columns up to out_w rounded up to 16,
     * shifted by kx / stride_w */
    d->row_len = ((s->out_w + 15) / 16 * 16 + (s->kernel_w - 1) / s->stride_w + 15) / 16 * 16;
    size_t row_bytes = (size_t)s->in_c * s->stride_w * d->row_len * sizeof(float);
    int rows = 1;
    while (rows < s->out_h && (size_t)stem_input_rows(s, rows + 1) * row_bytes <= STEM_ROWS_BYTES)
        rows++;
    d->band_rows = rows;
    d->arena_owned = arena != NULL;
    size_t floats = (size_t)d->groups8 * d->taps * STEM_JC;
    size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
    d->w = arena ? ww_arena_alloc(arena, bytes) : ww_alloc_prefaulted(bytes);
    d->bias = calloc((size_t)d->groups8 * STEM_JC, sizeof(float));
    if (!d->w || !d->bias) {
        ww_conv_stem_free(d);
        return NULL;
    }
    if (bias) memcpy(d->bias, bias, (size_t)s->out_c * sizeof(float));
    if (ww_arena_prefilled(arena)) return d; /* packed by an earlier load */
    for (int g = 0; g < d->groups8; g++)
        for (int t = 0; t < d->taps; t++)
            for (int j = 0; j < STEM_JC; j++) {
                int oc = g * STEM_JC + j;
                d->w[((size_t)g * d->taps + t) * STEM_JC + j] =
                    oc < s->out_c ? weight[(size_t)oc * d->taps + t] : 0.0f;
            }
    return d;
}

void ww_conv_stem_free(ww_conv_stem *d)
{
    if (!d) return;
    if (!d->arena_owned) free(d->w);
    free(d->bias);
    free(d);
}

/* One slot: a band's copied rows [in_c][rows][stride_w][row_len], then a
 * zero-padded input line to split into phases. */
static size_t stem_rows_floats(const ww_conv_stem *d)
{
    return (size_t)d->s.in_c * stem_input_rows(&d->s, d->band_rows) * d->s.stride_w * d->row_len;
}

static size_t stem_line_floats(const ww_conv_stem *d)
{
    return (size_t)d->s.stride_w * d->row_len + 32;
}

static size_t stem_slot_floats(const ww_conv_stem *d)
{
    return stem_rows_floats(d) + stem_line_floats(d) + 16; /* +16: room to align to 64 bytes */
}

size_t ww_conv_stem_scratch_floats(const ww_conv_stem *d, int threads)
{
    size_t slots = (size_t)(threads > 1 ? threads : 1);
    return slots * stem_slot_floats(d);
}

typedef struct stem_ctx {
    const ww_conv_stem *d;
    const float *in, *residual;
    ww_activation act;
    float *out, *scratch;
    int bands;
    ww_shares units;
} stem_ctx;

#if WW_HAVE_X86
/* Copies padded input row `pr` (input row pr - pad_top, zeros outside the
 * map) of every channel into rows[c][r], phase p at p * row_len: phase p,
 * column j holds padded column j * stride_w + p. */
__attribute__((target("avx512f"))) static void stem_copy_row(const ww_conv_stem *d, const float *in,
                                                             int pr, float *rows, int r, int n_rows,
                                                             float *line)
{
    const ww_conv2d_shape *s = &d->s;
    int sw = s->stride_w, len = d->row_len, iy = pr - s->pad_top;
    /* columns of the input row that land inside the copied phases */
    int cols = sw * len - s->pad_left;
    if (cols > s->in_w) cols = s->in_w;
    for (int c = 0; c < s->in_c; c++) {
        float *dst = rows + ((size_t)c * n_rows + r) * sw * len;
        if (iy < 0 || iy >= s->in_h || cols <= 0) {
            memset(dst, 0, (size_t)sw * len * sizeof(float));
            continue;
        }
        const float *src = in + ((size_t)c * s->in_h + iy) * s->in_w;
        float *target = sw == 1 ? dst : line;
        memset(target, 0, (size_t)s->pad_left * sizeof(float));
        memcpy(target + s->pad_left, src, (size_t)cols * sizeof(float));
        memset(target + s->pad_left + cols, 0,
               ((size_t)sw * len - (size_t)(s->pad_left + cols)) * sizeof(float));
        if (sw == 1) continue;
        const __m512i even =
            _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        const __m512i odd =
            _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        for (int j = 0; j < len; j += 16) {
            __m512 a = _mm512_loadu_ps(line + 2 * j), b = _mm512_loadu_ps(line + 2 * j + 16);
            _mm512_storeu_ps(dst + j, _mm512_permutex2var_ps(a, even, b));
            _mm512_storeu_ps(dst + len + j, _mm512_permutex2var_ps(a, odd, b));
        }
    }
}

/* A tile's sums plus the residual, activated by `act` (a constant), into
 * the output rows (STEM_TILE's epilogue). */
#define STEM_STORE(NV, act)                                                                        \
    _Pragma("GCC unroll 8") for (int j = 0; j < STEM_JC; j++, at += plane)                         \
        _Pragma("GCC unroll 3") for (int v = 0; v < NV && j < channels; v++)                       \
    {                                                                                              \
        __mmask16 m = v == NV - 1 ? tail : (__mmask16)0xffff;                                      \
        __m512 r = acc[j][v];                                                                      \
        if (residual) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(m, residual + at + 16 * v));      \
        r = (__m512)ww_vm16_activate((ww_vm16f)r, act);                                            \
        _mm512_mask_storeu_ps(out + at + 16 * v, m, r);                                            \
    }

/* One tile: STEM_JC output channels (group g) x NV vectors of pixels from
 * column x0 of output row oy, the last vector `tail` (a lane mask); tap t
 * reads the copied rows at base + off[t]. */
#define STEM_TILE(NV)                                                                              \
    __attribute__((target("avx512f"))) static void stem_tile_##NV(                                 \
        const stem_ctx *ctx, const float *base, const int *off, int g, int oy, int x0,             \
        __mmask16 tail)                                                                            \
    {                                                                                              \
        const ww_conv_stem *d = ctx->d;                                                            \
        const ww_conv2d_shape *s = &d->s;                                                          \
        const float *w = d->w + (size_t)g * d->taps * STEM_JC;                                     \
        __m512 acc[STEM_JC][NV];                                                                   \
        _Pragma("GCC unroll 8") for (int j = 0; j < STEM_JC; j++)                                  \
        {                                                                                          \
            __m512 b = _mm512_set1_ps(d->bias[g * STEM_JC + j]);                                   \
            _Pragma("GCC unroll 3") for (int v = 0; v < NV; v++) acc[j][v] = b;                    \
        }                                                                                          \
        for (int t = 0; t < d->taps; t++, w += STEM_JC) {                                          \
            __m512 x[NV];                                                                          \
            _Pragma("GCC unroll 3") for (int v = 0; v < NV; v++) x[v] =                            \
                _mm512_loadu_ps(base + off[t] + x0 + 16 * v);                                      \
            _Pragma("GCC unroll 8") for (int j = 0; j < STEM_JC; j++)                              \
            {                                                                                      \
                __m512 wj = _mm512_set1_ps(w[j]);                                                  \
                _Pragma("GCC unroll 3") for (int v = 0; v < NV; v++) acc[j][v] =                   \
                    _mm512_fmadd_ps(x[v], wj, acc[j][v]);                                          \
            }                                                                                      \
        }                                                                                          \
        int channels = s->out_c - g * STEM_JC < STEM_JC ? s->out_c - g * STEM_JC : STEM_JC;        \
        size_t plane = (size_t)s->out_h * s->out_w;                                                \
        size_t at = (size_t)g * STEM_JC * plane + (size_t)oy * s->out_w + (size_t)x0;              \
        const float *residual = ctx->residual;                                                     \
        float *out = ctx->out;                                                                     \
        /* the next output row's lines of these channels, for writing: a                           \
         * store to a line not in cache waits for its fetch */                                     \
        if (oy + 1 < s->out_h)                                                                     \
            _Pragma("GCC unroll 8") for (int j = 0; j < STEM_JC && j < channels; j++)              \
                _Pragma("GCC unroll 3") for (int v = 0; v < NV; v++)                               \
                    __builtin_prefetch(out + at + j * plane + s->out_w + 16 * v, 1, 3);            \
        /* j constant after unrolling: the sums stay in registers; one                             \
         * loop per activation, so that it is a constant in each (a test                           \
         * per vector cost ReLU6 tiles ~9 %) */                                                    \
        switch (ctx->act) {                                                                        \
        case WW_ACT_NONE: STEM_STORE(NV, WW_ACT_NONE); break;                                      \
        case WW_ACT_RELU: STEM_STORE(NV, WW_ACT_RELU); break;                                      \
        case WW_ACT_RELU6: STEM_STORE(NV, WW_ACT_RELU6); break;                                    \
        case WW_ACT_SIGMOID: STEM_STORE(NV, WW_ACT_SIGMOID); break;                                \
        case WW_ACT_SILU: STEM_STORE(NV, WW_ACT_SILU); break;                                      \
        case WW_ACT_HARDSWISH: STEM_STORE(NV, WW_ACT_HARDSWISH); break;                            \
        }                                                                                          \
    }
STEM_TILE(1)
STEM_TILE(2)
STEM_TILE(3)

/* Output rows [oy0, oy1): copy the rows they read, then row by row every
 * group of output channels (the copied rows and the weights stay in L1). */
__attribute__((target("avx512f"))) static void stem_band(const stem_ctx *ctx, int oy0, int oy1,
                                                         float *rows, float *line)
{
    const ww_conv_stem *d = ctx->d;
    const ww_conv2d_shape *s = &d->s;
    int sw = s->stride_w, len = d->row_len;
    int n_rows = stem_input_rows(s, oy1 - oy0), pr0 = oy0 * s->stride_h;
    for (int r = 0; r < n_rows; r++)
        stem_copy_row(d, ctx->in, pr0 + r, rows, r, n_rows, line);
    int vecs = (s->out_w + 15) / 16;
    __mmask16 tail = (__mmask16)(0xffffu >> (16 * vecs - s->out_w));
    int off[WW_CONV_STEM_MAX_TAPS], t = 0;
    for (int c = 0; c < s->in_c; c++)
        for (int ky = 0; ky < s->kernel_h; ky++)
            for (int kx = 0; kx < s->kernel_w; kx++)
                off[t++] = ((c * n_rows + ky) * sw + kx % sw) * len + kx / sw;
    for (int oy = oy0; oy < oy1; oy++) {
        const float *base = rows + (size_t)(oy - oy0) * s->stride_h * sw * len;
        for (int g = 0; g < d->groups8; g++)
            /* chunks of 3 vectors; a last 4 as 2 + 2, not 3 + 1 */
            for (int v = 0; v < vecs;) {
                int left = vecs - v, nv = left == 4 ? 2 : (left < STEM_NV ? left : STEM_NV);
                __mmask16 m = v + nv == vecs ? tail : (__mmask16)0xffff;
                if (nv == 3)
                    stem_tile_3(ctx, base, off, g, oy, 16 * v, m);
                else if (nv == 2)
                    stem_tile_2(ctx, base, off, g, oy, 16 * v, m);
                else
                    stem_tile_1(ctx, base, off, g, oy, 16 * v, m);
                v += nv;
            }
    }
}
#endif

static void stem_slots(void *p, int begin, int end)
{
    stem_ctx *ctx = p;
#if WW_HAVE_X86
    const ww_conv_stem *d = ctx->d;
    for (int slot = begin; slot < end; slot++) {
        float *rows = ww_align64(ctx->scratch + (size_t)slot * stem_slot_floats(d));
        float *line = rows + stem_rows_floats(d);
        int cursor = 0, band;
        while ((band = ww_shares_claim(&ctx->units, slot, &cursor, NULL)) >= 0) {
            int oy0 = band * d->band_rows;
            int oy1 = oy0 + d->band_rows < d->s.out_h ? oy0 + d->band_rows : d->s.out_h;
            stem_band(ctx, oy0, oy1, rows, line);
        }
    }
#else
    (void)ctx;
    (void)begin;
    (void)end;
#endif
}

void ww_conv_stem_run(const ww_conv_stem *d, const float *in, const float *residual,
                      ww_activation act, float *out, float *scratch, ww_threadpool *pool)
{
    stem_ctx ctx = {
        .d = d, .in = in, .residual = residual, .act = act, .out = out, .scratch = scratch};
    ctx.bands = (d->s.out_h + d->band_rows - 1) / d->band_rows;
    int slots = ww_threadpool_size(pool);
    if (slots > ctx.bands) slots = ctx.bands;
    if (slots > WW_SHARES_MAX) slots = WW_SHARES_MAX;
    ww_shares_init(&ctx.units, ctx.bands, slots);
    ww_parallel_for(pool, slots, stem_slots, &ctx);
}
