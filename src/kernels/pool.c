/* Max pooling and global average pooling, parallel over rows / channels. */
#include "kernels/vec.h"
#include "ops/ops.h"

#include <math.h>
#include <stddef.h>

#if defined(__x86_64__) || defined(__i386__)
#define WW_HAVE_X86 1
#include <immintrin.h>
#else
#define WW_HAVE_X86 0
#endif

typedef struct maxpool_ctx {
    const ww_pool2d_shape *s;
    const float *in;
    float *out;
    int avx512; /* the 16-lane loops below */
} maxpool_ctx;

/* Floats of the per-row stack buffer holding the column maxima of one
 * chunk of output columns (padding included, as -inf). */
#define MAXPOOL_BUF 1024

static inline ww_f4 maxpool_max4(ww_f4 a, ww_f4 b)
{
    ww_i4 gt = b > a; /* the reference keeps the earlier value unless a later one is greater */
    return (ww_f4)(((ww_i4)b & gt) | ((ww_i4)a & ~gt));
}

static inline float maxpool_max1(float a, float b)
{
    return b > a ? b : a;
}

#if defined(__GNUC__) && !defined(__clang__)
#define MAXPOOL_SHUFFLE 1
#else
#define MAXPOOL_SHUFFLE 0
#endif

/* out[i] = max(col[i * sw + kx], kx < kw) for i < n. */
static void maxpool_horizontal(const float *col, int n, int kw, int sw, float *out)
{
    int i = 0;
    if (sw == 1) {
        for (; i + 4 <= n; i += 4) {
            ww_f4 best = WW_F4_LOAD(col + i);
            for (int kx = 1; kx < kw; kx++)
                best = maxpool_max4(best, WW_F4_LOAD(col + i + kx));
            WW_F4_STORE(out + i, best);
        }
    }
#if MAXPOOL_SHUFFLE
    else if (sw == 2 && kw == 3) {
        /* even, odd and next-even columns of 4 outputs, by shuffles */
        for (; i + 4 <= n; i += 4) {
            ww_f4 a = WW_F4_LOAD(col + 2 * i), b = WW_F4_LOAD(col + 2 * i + 4);
            ww_f4 a2 = WW_F4_LOAD(col + 2 * i + 2), b2 = WW_F4_LOAD(col + 2 * i + 6);
            ww_f4 even = __builtin_shuffle(a, b, (ww_i4){0, 2, 4, 6});
            ww_f4 odd = __builtin_shuffle(a, b, (ww_i4){1, 3, 5, 7});
            ww_f4 next = __builtin_shuffle(a2, b2, (ww_i4){0, 2, 4, 6});
            WW_F4_STORE(out + i, maxpool_max4(maxpool_max4(even, odd), next));
        }
    }
#endif
    for (; i < n; i++) {
        float best = col[i * sw];
        for (int kx = 1; kx < kw; kx++)
            best = maxpool_max1(best, col[i * sw + kx]);
        out[i] = best;
    }
}

#if WW_HAVE_X86
/* 16 lanes at a time, in the order of the 4-lane loops (max_ps(x, best)
 * is x > best ? x : best, as maxpool_max1): dst[j] = max over `rows` rows
 * of src[r * in_w + j], for j < count. */
__attribute__((target("avx512f"))) static void
maxpool_vertical_avx512(const float *src, size_t in_w, int rows, int count, float *dst)
{
    for (int j = 0; j < count; j += 16) {
        __mmask16 m = count - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (count - j)) - 1);
        __m512 best = _mm512_maskz_loadu_ps(m, src + j);
        for (int r = 1; r < rows; r++)
            best = _mm512_max_ps(_mm512_maskz_loadu_ps(m, src + r * in_w + j), best);
        _mm512_mask_storeu_ps(dst + j, m, best);
    }
}

/* 3-wide windows at stride 2 for the first n / 16 * 16 outputs (even,
 * odd and next-even columns by two-vector permutes); returns how many. */
__attribute__((target("avx512f"))) static int maxpool_h3s2_avx512(const float *col, int n,
                                                                  float *out)
{
    const __m512i even =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd =
        _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        const float *c = col + 2 * i;
        __m512 a = _mm512_loadu_ps(c), b = _mm512_loadu_ps(c + 16);
        __m512 a2 = _mm512_loadu_ps(c + 2), b2 = _mm512_loadu_ps(c + 18);
        __m512 best = _mm512_permutex2var_ps(a, even, b);
        best = _mm512_max_ps(_mm512_permutex2var_ps(a, odd, b), best);
        best = _mm512_max_ps(_mm512_permutex2var_ps(a2, even, b2), best);
        _mm512_storeu_ps(out + i, best);
    }
    return i;
}
#endif

/* Iterations are (channel, output row) pairs. Per chunk of output
 * columns: the maximum over the window's rows of every input column the
 * chunk reads, then the maximum along each window's columns. */
static void maxpool_rows(void *p, int begin, int end)
{
    const maxpool_ctx *ctx = p;
    const ww_pool2d_shape *s = ctx->s;
    int sw = s->stride_w, kw = s->kernel_w;
    int chunk = (MAXPOOL_BUF - 8 - kw) / sw + 1; /* output columns per chunk */
    float col[MAXPOOL_BUF];
    for (int i = begin; i < end; i++) {
        int c = i / s->out_h, oy = i % s->out_h;
        const float *plane = ctx->in + (size_t)c * s->in_h * s->in_w;
        float *out = ctx->out + (size_t)i * s->out_w;
        int iy0 = oy * s->stride_h - s->pad_top;
        int ky_lo = iy0 < 0 ? -iy0 : 0;
        int ky_hi = s->in_h - iy0 < s->kernel_h ? s->in_h - iy0 : s->kernel_h;
        for (int ox0 = 0; ox0 < s->out_w; ox0 += chunk) {
            int n = s->out_w - ox0 < chunk ? s->out_w - ox0 : chunk;
            int x0 = ox0 * sw - s->pad_left;   /* input column of col[0] */
            int width = (n - 1) * sw + kw + 8; /* +8: the shuffle path reads ahead */
            int lo = x0 < 0 ? -x0 : 0;         /* col[lo, hi) lie inside the row */
            int hi = s->in_w - x0 < width ? s->in_w - x0 : width;
            if (hi < lo) hi = lo;
            for (int j = 0; j < lo; j++)
                col[j] = -INFINITY;
            for (int j = hi; j < width; j++)
                col[j] = -INFINITY;
            if (ky_lo >= ky_hi) {
                for (int j = lo; j < hi; j++)
                    col[j] = -INFINITY;
            } else {
                /* input columns x0 + [lo, hi) of the window's rows into col[lo, hi) */
                const float *src = plane + (size_t)(iy0 + ky_lo) * s->in_w + (x0 + lo);
                float *dst = col + lo;
                size_t in_w = (size_t)s->in_w;
                int count = hi - lo, rows = ky_hi - ky_lo, j = 0;
#if WW_HAVE_X86
                if (ctx->avx512) {
                    maxpool_vertical_avx512(src, in_w, rows, count, dst);
                    j = count;
                }
#endif
                for (; j + 4 <= count; j += 4) {
                    ww_f4 best = WW_F4_LOAD(src + j);
                    for (int r = 1; r < rows; r++)
                        best = maxpool_max4(best, WW_F4_LOAD(src + r * in_w + j));
                    WW_F4_STORE(dst + j, best);
                }
                for (; j < count; j++) {
                    float best = src[j];
                    for (int r = 1; r < rows; r++)
                        best = maxpool_max1(best, src[r * in_w + j]);
                    dst[j] = best;
                }
            }
            int done = 0;
#if WW_HAVE_X86
            if (ctx->avx512 && sw == 2 && kw == 3) done = maxpool_h3s2_avx512(col, n, out + ox0);
#endif
            maxpool_horizontal(col + done * sw, n - done, kw, sw, out + ox0 + done);
        }
    }
}

/* The straightforward loop, for windows too wide for the column buffer. */
static void maxpool_rows_wide(void *p, int begin, int end)
{
    const maxpool_ctx *ctx = p;
    const ww_pool2d_shape *s = ctx->s;
    for (int i = begin; i < end; i++) {
        int c = i / s->out_h, oy = i % s->out_h;
        const float *plane = ctx->in + (size_t)c * s->in_h * s->in_w;
        for (int ox = 0; ox < s->out_w; ox++) {
            float best = -INFINITY;
            for (int ky = 0; ky < s->kernel_h; ky++) {
                int iy = oy * s->stride_h - s->pad_top + ky;
                if (iy < 0 || iy >= s->in_h) continue;
                for (int kx = 0; kx < s->kernel_w; kx++) {
                    int ix = ox * s->stride_w - s->pad_left + kx;
                    if (ix < 0 || ix >= s->in_w) continue;
                    best = maxpool_max1(best, plane[(size_t)iy * s->in_w + ix]);
                }
            }
            ctx->out[(size_t)i * s->out_w + ox] = best;
        }
    }
}

void ww_maxpool2d_isa(ww_isa isa, const ww_pool2d_shape *s, const float *in, float *out,
                      ww_threadpool *pool)
{
    if (isa == WW_ISA_AUTO) isa = ww_isa_best();
    maxpool_ctx ctx = {s, in, out, WW_HAVE_X86 && isa == WW_ISA_AVX512};
    int wide = s->kernel_w + s->stride_w + 8 > MAXPOOL_BUF / 2;
    ww_parallel_for(pool, s->channels * s->out_h, wide ? maxpool_rows_wide : maxpool_rows, &ctx);
}

void ww_maxpool2d(const ww_pool2d_shape *s, const float *in, float *out, ww_threadpool *pool)
{
    ww_maxpool2d_isa(WW_ISA_AUTO, s, in, out, pool);
}

typedef struct avgpool_ctx {
    int hw;
    const float *in;
    float *out;
} avgpool_ctx;

static void avgpool_channels(void *p, int begin, int end)
{
    const avgpool_ctx *ctx = p;
    int hw = ctx->hw;
    for (int c = begin; c < end; c++) {
        const float *x = ctx->in + (size_t)c * hw;
        /* eight independent sums on large maps: the adds' latency, not the
         * loads, bounded two (112x112: 29 -> 18 us); small maps keep two,
         * as the final reduction of eight costs more than it saves */
        ww_f4 acc[8] = {{0}};
        int i = 0, lanes = hw >= 256 ? 8 : 2;
        if (lanes == 8) {
            for (; i + 32 <= hw; i += 32)
#pragma GCC unroll 8
                for (int k = 0; k < 8; k++)
                    acc[k] += WW_F4_LOAD(x + i + 4 * k);
            acc[0] += acc[2] + acc[4] + acc[6];
            acc[1] += acc[3] + acc[5] + acc[7];
        }
        for (; i + 8 <= hw; i += 8) {
            acc[0] += WW_F4_LOAD(x + i);
            acc[1] += WW_F4_LOAD(x + i + 4);
        }
        ww_f4 total = acc[0] + acc[1];
        float sum = WW_F4_SUM(total);
        for (; i < hw; i++)
            sum += x[i];
        ctx->out[c] = sum / (float)hw;
    }
}

void ww_global_avgpool(int channels, int hw, const float *in, float *out, ww_threadpool *pool)
{
    avgpool_ctx ctx = {hw, in, out};
    ww_parallel_for(pool, channels, avgpool_channels, &ctx);
}
