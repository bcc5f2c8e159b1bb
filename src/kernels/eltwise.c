/* Element-wise kernels (activation, add, binary ops with a full,
 * per-channel or scalar operand, and the squeeze-and-excitation channel
 * scale), vectorized per instruction set from pointwise.inc and parallel
 * over blocks of elements. */
#include "kernels/vmath.h"
#include "ops/ops.h"

#include <string.h>

/* Elements per parallel iteration: large enough to amortize scheduling. */
#define PW_BLOCK 4096

typedef float pw_v4f_u __attribute__((vector_size(16), aligned(4)));
#define PW_NAME(x) pw_##x##_portable
#define PW_TARGET
#define PW_VEC ww_vm4f
#define PW_UVEC pw_v4f_u
#define PW_VL 4
#define PW_ACTIVATE(x, a) ww_vm4_activate((x), (a))
#include "kernels/pointwise.inc"

#if defined(__x86_64__) || defined(__i386__)
typedef float pw_v8f_u __attribute__((vector_size(32), aligned(4)));
#define PW_NAME(x) pw_##x##_avx2
#define PW_TARGET __attribute__((target("avx2,fma")))
#define PW_VEC ww_vm8f
#define PW_UVEC pw_v8f_u
#define PW_VL 8
#define PW_ACTIVATE(x, a) ww_vm8_activate((x), (a))
#include "kernels/pointwise.inc"

typedef float pw_v16f_u __attribute__((vector_size(64), aligned(4)));
#define PW_NAME(x) pw_##x##_avx512
#define PW_TARGET __attribute__((target("avx512f")))
#define PW_VEC ww_vm16f
#define PW_UVEC pw_v16f_u
#define PW_VL 16
#define PW_ACTIVATE(x, a) ww_vm16_activate((x), (a))
#include "kernels/pointwise.inc"
#endif

typedef struct pw_variant {
    void (*activate)(size_t n, const float *in, ww_activation act, float *out);
    void (*add)(size_t n, const float *a, const float *b, ww_activation act, float *out);
    void (*binary)(size_t n, const float *a, const float *b, int b_stride, ww_eltwise_op op,
                   int swap, float *out);
} pw_variant;

static const pw_variant pw_portable = {pw_activate_portable, pw_add_portable, pw_binary_portable};
#if defined(__x86_64__) || defined(__i386__)
static const pw_variant pw_avx2 = {pw_activate_avx2, pw_add_avx2, pw_binary_avx2};
static const pw_variant pw_avx512 = {pw_activate_avx512, pw_add_avx512, pw_binary_avx512};
#endif

/* The variant for `isa` (AUTO = best); one the CPU lacks falls back to the
 * portable code rather than crash. */
static const pw_variant *pw_for(ww_isa isa)
{
    if (isa == WW_ISA_AUTO) isa = ww_isa_best();
    if (!ww_isa_supported(isa)) return &pw_portable;
    switch (isa) {
#if defined(__x86_64__) || defined(__i386__)
    case WW_ISA_AVX512: return &pw_avx512;
    case WW_ISA_AVX2: return &pw_avx2;
#endif
    default: return &pw_portable;
    }
}

typedef struct pw_ctx {
    const pw_variant *v;
    size_t n;
    const float *a, *b;
    size_t b_count;
    size_t hw;
    ww_activation act;
    ww_eltwise_op op;
    int swap;
    float *out;
} pw_ctx;

static void pw_range(const pw_ctx *ctx, int begin, int end, size_t *lo, size_t *hi)
{
    *lo = (size_t)begin * PW_BLOCK;
    *hi = (size_t)end * PW_BLOCK < ctx->n ? (size_t)end * PW_BLOCK : ctx->n;
}

static int pw_blocks(size_t n)
{
    return (int)((n + PW_BLOCK - 1) / PW_BLOCK);
}

static void activate_blocks(void *p, int begin, int end)
{
    const pw_ctx *ctx = p;
    size_t lo, hi;
    pw_range(ctx, begin, end, &lo, &hi);
    ctx->v->activate(hi - lo, ctx->a + lo, ctx->act, ctx->out + lo);
}

void ww_activate_array_isa(ww_isa isa, size_t n, const float *in, ww_activation act, float *out,
                           ww_threadpool *pool)
{
    pw_ctx ctx = {.v = pw_for(isa), .n = n, .a = in, .act = act, .out = out};
    ww_parallel_for(pool, pw_blocks(n), activate_blocks, &ctx);
}

void ww_activate_array(size_t n, const float *in, ww_activation act, float *out,
                       ww_threadpool *pool)
{
    ww_activate_array_isa(WW_ISA_AUTO, n, in, act, out, pool);
}

static void add_blocks(void *p, int begin, int end)
{
    const pw_ctx *ctx = p;
    size_t lo, hi;
    pw_range(ctx, begin, end, &lo, &hi);
    ctx->v->add(hi - lo, ctx->a + lo, ctx->b + lo, ctx->act, ctx->out + lo);
}

void ww_add_isa(ww_isa isa, size_t n, const float *a, const float *b, ww_activation act, float *out,
                ww_threadpool *pool)
{
    pw_ctx ctx = {.v = pw_for(isa), .n = n, .a = a, .b = b, .act = act, .out = out};
    ww_parallel_for(pool, pw_blocks(n), add_blocks, &ctx);
}

void ww_add(size_t n, const float *a, const float *b, ww_activation act, float *out,
            ww_threadpool *pool)
{
    ww_add_isa(WW_ISA_AUTO, n, a, b, act, out, pool);
}

static void binary_blocks(void *p, int begin, int end)
{
    const pw_ctx *ctx = p;
    size_t lo, hi;
    pw_range(ctx, begin, end, &lo, &hi);
    if (ctx->b_count == ctx->n) {
        ctx->v->binary(hi - lo, ctx->a + lo, ctx->b + lo, 1, ctx->op, ctx->swap, ctx->out + lo);
    } else if (ctx->b_count == 1) {
        ctx->v->binary(hi - lo, ctx->a + lo, ctx->b, 0, ctx->op, ctx->swap, ctx->out + lo);
    } else {
        /* Per channel: one scalar operand per run of hw elements. */
        for (size_t i = lo; i < hi;) {
            size_t c = i / ctx->hw;
            size_t run_end = (c + 1) * ctx->hw < hi ? (c + 1) * ctx->hw : hi;
            ctx->v->binary(run_end - i, ctx->a + i, ctx->b + c, 0, ctx->op, ctx->swap,
                           ctx->out + i);
            i = run_end;
        }
    }
}

void ww_eltwise_isa(ww_isa isa, size_t n, int hw, const float *a, const float *b, size_t b_count,
                    ww_eltwise_op op, int swap, float *out, ww_threadpool *pool)
{
    if (n == 0) return;
    pw_ctx ctx = {.v = pw_for(isa),
                  .n = n,
                  .a = a,
                  .b = b,
                  .b_count = b_count,
                  .hw = hw > 0 ? (size_t)hw : 1,
                  .op = op,
                  .swap = swap,
                  .out = out};
    ww_parallel_for(pool, pw_blocks(n), binary_blocks, &ctx);
}

void ww_eltwise(size_t n, int hw, const float *a, const float *b, size_t b_count, ww_eltwise_op op,
                int swap, float *out, ww_threadpool *pool)
{
    ww_eltwise_isa(WW_ISA_AUTO, n, hw, a, b, b_count, op, swap, out, pool);
}

void ww_mul_channel_isa(ww_isa isa, int channels, int hw, const float *in, const float *scale,
                        float *out, ww_threadpool *pool)
{
    size_t n = (size_t)channels * (size_t)hw;
    /* hw == 1: per-channel and full coincide; the full form is one run. */
    ww_eltwise_isa(isa, n, hw, in, scale, hw == 1 ? n : (size_t)channels, WW_ELT_MUL, 0, out, pool);
}

void ww_mul_channel(int channels, int hw, const float *in, const float *scale, float *out,
                    ww_threadpool *pool)
{
    ww_mul_channel_isa(WW_ISA_AUTO, channels, hw, in, scale, out, pool);
}
