/* Max pooling and global average pooling, parallel over rows / channels. */
#include "kernels/vec.h"
#include "ops/ops.h"

#include <math.h>

typedef struct maxpool_ctx {
    const ww_pool2d_shape *s;
    const float *in;
    float *out;
} maxpool_ctx;

/* Widest input row the separable path keeps on the stack. */
#define MAXPOOL_ROW_MAX 1024

/* max(a, b) as the scalar loop computes it (b > a ? b : a), so NaN inputs
 * are skipped the same way. */
#define F4_MAX(a, b) ((ww_f4)(((ww_i4)(b) & ((b) > (a))) | ((ww_i4)(a) & ~((b) > (a)))))

/* One output row in two passes: the maximum over the window's input rows,
 * column by column (vectorized), then over each window's columns of that.
 * Same values as the direct loop (max is exact), a third of the compares
 * for 3x3 windows. */
static void maxpool_row_separable(const ww_pool2d_shape *s, const float *plane, int oy, int ox_lo,
                                  int ox_hi, float *out)
{
    float colmax[MAXPOOL_ROW_MAX];
    int in_w = s->in_w, sw = s->stride_w, kw = s->kernel_w;
    int iy0 = oy * s->stride_h - s->pad_top;
    int ky_lo = iy0 < 0 ? -iy0 : 0;
    int ky_hi = s->in_h - iy0 < s->kernel_h ? s->in_h - iy0 : s->kernel_h;
    int x = 0;
    for (; x + 4 <= in_w; x += 4) {
        ww_f4 best = WW_F4_SPLAT(-INFINITY);
        for (int ky = ky_lo; ky < ky_hi; ky++) {
            ww_f4 v = WW_F4_LOAD(plane + (size_t)(iy0 + ky) * in_w + x);
            best = F4_MAX(best, v);
        }
        WW_F4_STORE(colmax + x, best);
    }
    for (; x < in_w; x++) {
        float best = -INFINITY;
        for (int ky = ky_lo; ky < ky_hi; ky++) {
            float v = plane[(size_t)(iy0 + ky) * in_w + x];
            best = v > best ? v : best;
        }
        colmax[x] = best;
    }
    for (int ox = 0; ox < s->out_w; ox++) {
        int ix0 = ox * sw - s->pad_left;
        int kx_lo = 0, kx_hi = kw;
        if (ox < ox_lo || ox >= ox_hi) {
            kx_lo = ix0 < 0 ? -ix0 : 0;
            kx_hi = in_w - ix0 < kw ? in_w - ix0 : kw;
        }
        float best = -INFINITY;
        for (int kx = kx_lo; kx < kx_hi; kx++)
            best = colmax[ix0 + kx] > best ? colmax[ix0 + kx] : best;
        out[ox] = best;
    }
}

/* Iterations are (channel, output row) pairs. Columns whose window lies
 * inside the row skip the bounds checks. */
static void maxpool_rows(void *p, int begin, int end)
{
    const maxpool_ctx *ctx = p;
    const ww_pool2d_shape *s = ctx->s;
    int sw = s->stride_w, kw = s->kernel_w;
    int ox_lo = (s->pad_left + sw - 1) / sw;
    int room = s->in_w - kw + s->pad_left;
    int ox_hi = room < 0 ? 0 : room / sw + 1;
    if (ox_hi > s->out_w) ox_hi = s->out_w;
    if (ox_lo > ox_hi) ox_lo = ox_hi;
    for (int i = begin; i < end; i++) {
        int c = i / s->out_h, oy = i % s->out_h;
        const float *plane = ctx->in + (size_t)c * s->in_h * s->in_w;
        float *out = ctx->out + (size_t)i * s->out_w;
        if (s->in_w <= MAXPOOL_ROW_MAX && s->kernel_h > 1) {
            maxpool_row_separable(s, plane, oy, ox_lo, ox_hi, out);
            continue;
        }
        int iy0 = oy * s->stride_h - s->pad_top;
        int ky_lo = iy0 < 0 ? -iy0 : 0;
        int ky_hi = s->in_h - iy0 < s->kernel_h ? s->in_h - iy0 : s->kernel_h;
        for (int ox = 0; ox < s->out_w; ox++) {
            int ix0 = ox * sw - s->pad_left;
            int kx_lo = 0, kx_hi = kw;
            if (ox < ox_lo || ox >= ox_hi) {
                kx_lo = ix0 < 0 ? -ix0 : 0;
                kx_hi = s->in_w - ix0 < kw ? s->in_w - ix0 : kw;
            }
            float best = -INFINITY;
            for (int ky = ky_lo; ky < ky_hi; ky++) {
                const float *row = plane + (size_t)(iy0 + ky) * s->in_w;
                for (int kx = kx_lo; kx < kx_hi; kx++)
                    best = row[ix0 + kx] > best ? row[ix0 + kx] : best;
            }
            out[ox] = best;
        }
    }
}

void ww_maxpool2d(const ww_pool2d_shape *s, const float *in, float *out, ww_threadpool *pool)
{
    maxpool_ctx ctx = {s, in, out};
    ww_parallel_for(pool, s->channels * s->out_h, maxpool_rows, &ctx);
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
        ww_f4 acc0 = {0}, acc1 = {0};
        int i = 0;
        for (; i + 8 <= hw; i += 8) {
            acc0 += WW_F4_LOAD(x + i);
            acc1 += WW_F4_LOAD(x + i + 4);
        }
        ww_f4 acc = acc0 + acc1;
        float sum = WW_F4_SUM(acc);
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
