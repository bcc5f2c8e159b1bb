/* Fully connected layer at batch 1: a matrix-vector product, memory bound,
 * parallel over output features. */
#include "kernels/vec.h"
#include "ops/ops.h"

typedef struct linear_ctx {
    int in_features;
    const float *in, *weight, *bias;
    ww_activation act;
    float *out;
} linear_ctx;

static void linear_outputs(void *p, int begin, int end)
{
    const linear_ctx *ctx = p;
    int n = ctx->in_features;
    for (int o = begin; o < end; o++) {
        const float *w = ctx->weight + (size_t)o * n;
        /* Four independent accumulators hide the add latency. */
        ww_f4 acc0 = {0}, acc1 = {0}, acc2 = {0}, acc3 = {0};
        int i = 0;
        for (; i + 16 <= n; i += 16) {
            acc0 += WW_F4_LOAD(w + i) * WW_F4_LOAD(ctx->in + i);
            acc1 += WW_F4_LOAD(w + i + 4) * WW_F4_LOAD(ctx->in + i + 4);
            acc2 += WW_F4_LOAD(w + i + 8) * WW_F4_LOAD(ctx->in + i + 8);
            acc3 += WW_F4_LOAD(w + i + 12) * WW_F4_LOAD(ctx->in + i + 12);
        }
        ww_f4 acc = (acc0 + acc1) + (acc2 + acc3);
        float sum = WW_F4_SUM(acc);
        for (; i < n; i++)
            sum += w[i] * ctx->in[i];
        if (ctx->bias) sum += ctx->bias[o];
        ctx->out[o] = ww_activate(sum, ctx->act);
    }
}

void ww_linear(int in_features, int out_features, const float *in, const float *weight,
               const float *bias, ww_activation act, float *out, ww_threadpool *pool)
{
    linear_ctx ctx = {in_features, in, weight, bias, act, out};
    ww_parallel_for(pool, out_features, linear_outputs, &ctx);
}
