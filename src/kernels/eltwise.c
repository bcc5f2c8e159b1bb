/* Element-wise addition with activation, parallel over blocks. */
#include "kernels/vec.h"
#include "ops/ops.h"

/* Elements per parallel iteration: large enough to amortize scheduling. */
#define ADD_BLOCK 4096

typedef struct add_ctx {
    size_t n;
    const float *a, *b;
    ww_activation act;
    float *out;
} add_ctx;

static void add_blocks(void *p, int begin, int end)
{
    const add_ctx *ctx = p;
    size_t lo = (size_t)begin * ADD_BLOCK;
    size_t hi = (size_t)end * ADD_BLOCK < ctx->n ? (size_t)end * ADD_BLOCK : ctx->n;
    size_t i = lo;
    for (; i + 4 <= hi; i += 4) {
        ww_f4 v = WW_F4_LOAD(ctx->a + i) + WW_F4_LOAD(ctx->b + i);
        if (ctx->act != WW_ACT_NONE) v = WW_F4_RELU(v);
        if (ctx->act == WW_ACT_RELU6) v = WW_F4_MIN6(v);
        WW_F4_STORE(ctx->out + i, v);
    }
    for (; i < hi; i++)
        ctx->out[i] = ww_activate(ctx->a[i] + ctx->b[i], ctx->act);
}

void ww_add(size_t n, const float *a, const float *b, ww_activation act, float *out,
            ww_threadpool *pool)
{
    add_ctx ctx = {n, a, b, act, out};
    size_t blocks = (n + ADD_BLOCK - 1) / ADD_BLOCK;
    ww_parallel_for(pool, (int)blocks, add_blocks, &ctx);
}
