/* Winograd F(2x2, 3x3) convolution; see winograd.h. The GEMM is the
 * shared register-tiled one (gemm.h); the output transform is compiled
 * once per instruction set from winograd_out.inc. */
#include "kernels/winograd.h"

#include "core/prefault.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define WW_HAVE_X86 1
#else
#define WW_HAVE_X86 0
#endif

#define WG_IN 4      /* input tile edge */
#define WG_OUT 2     /* output tile edge */
#define WG_POINTS 16 /* WG_IN * WG_IN */

struct ww_winograd {
    ww_conv2d_shape s;
    const ww_gemm_kernel *kern;
    int C, K;             /* input and output channels */
    int tiles_h, tiles_w; /* output tiles per column / row */
    int T, Tp;            /* tiles, and tiles rounded up to MR */
    int n_panels;         /* NR-column panels of K */
    float *u;             /* [16][n_panels][C][NR] transformed, packed weights */
    void (*output)(const struct ww_winograd *w, const float *m, int t, const float *bias,
                   const float *residual, ww_activation act, float *out);
    void (*input)(const struct ww_winograd *w, const float *plane, int c, int ty, float *work,
                  float *v);
};

/* Length of the even/odd column arrays of one input row: every vector
 * the input transform loads lies inside. */
static int wg_input_row_len(const struct ww_winograd *w)
{
    return (w->tiles_w + 1 + 15) / 16 * 16 + 16;
}

/* Per-thread work area of the input transform. */
static size_t wg_input_work_floats(const struct ww_winograd *w)
{
    return (size_t)24 * wg_input_row_len(w) + 16; /* +16: room to align to 64 bytes */
}

int ww_winograd_suits(const ww_conv2d_shape *s)
{
    return s->kernel_h == 3 && s->kernel_w == 3 && s->stride_h == 1 && s->stride_w == 1 &&
           s->dilation_h == 1 && s->dilation_w == 1 && s->groups == 1 && s->pad_top <= 2 &&
           s->pad_left <= 2 && s->pad_bottom <= 2 && s->pad_right <= 2 && s->out_h >= 1 &&
           s->out_w >= 1;
}

/* ---- output transform (per instruction set) ------------------------------ */

typedef void (*wg_output_fn)(const struct ww_winograd *w, const float *m, int t, const float *bias,
                             const float *residual, ww_activation act, float *out);

typedef float wg_v4f __attribute__((vector_size(16)));
typedef float wg_v4f_u __attribute__((vector_size(16), aligned(4)));
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
#include "kernels/winograd_in.inc"

#if WW_HAVE_X86
typedef float wg_v8f __attribute__((vector_size(32)));
typedef float wg_v8f_u __attribute__((vector_size(32), aligned(4)));
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
#include "kernels/winograd_in.inc"

typedef float wg_v16f __attribute__((vector_size(64)));
typedef float wg_v16f_u __attribute__((vector_size(64), aligned(4)));
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
#include "kernels/winograd_in.inc"
#endif

/* ---- create ---------------------------------------------------------------- */

/* G (4x3) of F(2x2, 3x3) with interpolation points 0, +-1, inf:
 * rows {1,0,0}, {1/2,1/2,1/2}, {1/2,-1/2,1/2}, {0,0,1}. Applied to three
 * values: the zeros and halves are written out so the transform costs a
 * few additions instead of a 4x3 product, with the same double-precision
 * results (scaling by 1/2 is exact). */
static void wg_apply_g(double a, double b, double c, double out[WG_IN])
{
    out[0] = a;
    out[1] = 0.5 * ((a + b) + c);
    out[2] = 0.5 * ((a - b) + c);
    out[3] = c;
}

/* Input channels whose transformed weights are gathered before being
 * copied out (16 points x 16 channels x NR lanes: 32 KiB at NR 32). */
#define WG_CHANNEL_BLOCK 16

/* U = G g G^T for one 3x3 kernel g, rounded once to float. */
static void wg_transform_kernel(const float *g, float u[WG_POINTS])
{
    double tmp[WG_IN][3]; /* G g: G applied to each column of g */
    for (int j = 0; j < 3; j++) {
        double col[WG_IN];
        wg_apply_g(g[j], g[3 + j], g[6 + j], col);
        for (int i = 0; i < WG_IN; i++)
            tmp[i][j] = col[i];
    }
    for (int i = 0; i < WG_IN; i++) { /* (G g) G^T: G applied to each row */
        double row[WG_IN];
        wg_apply_g(tmp[i][0], tmp[i][1], tmp[i][2], row);
        for (int j = 0; j < WG_IN; j++)
            u[i * WG_IN + j] = (float)row[j];
    }
}

ww_winograd *ww_winograd_create(const ww_conv2d_shape *s, const float *weight,
                                const ww_gemm_kernel *kern)
{
    if (!ww_winograd_suits(s) || !kern) return NULL;
    ww_winograd *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->s = *s;
    w->kern = kern;
    w->C = s->in_c;
    w->K = s->out_c;
    w->tiles_h = (s->out_h + WG_OUT - 1) / WG_OUT;
    w->tiles_w = (s->out_w + WG_OUT - 1) / WG_OUT;
    w->T = w->tiles_h * w->tiles_w;
    w->Tp = (w->T + kern->mr - 1) / kern->mr * kern->mr;
    w->n_panels = (w->K + kern->nr - 1) / kern->nr;
    switch (kern->isa) {
#if WW_HAVE_X86
    case WW_ISA_AVX512:
        w->output = wg_output_avx512;
        w->input = wg_input_avx512;
        break;
    case WW_ISA_AVX2:
        w->output = wg_output_avx2;
        w->input = wg_input_avx2;
        break;
#endif
    default:
        w->output = wg_output_portable;
        w->input = wg_input_portable;
        break;
    }
    int nr = kern->nr;
    size_t floats = (size_t)WG_POINTS * w->n_panels * w->C * nr;
    size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
    w->u = ww_alloc_prefaulted(bytes);
    if (!w->u) {
        free(w);
        return NULL;
    }
    /* u holds, per point, NR-lane rows for every (panel, input channel):
     * written directly, the 16 points are 16 write streams a whole
     * matrix apart and the lanes read 16 kernels C*9 floats apart, which
     * made this the slowest part of loading ResNet-18. So a block of
     * WG_CHANNEL_BLOCK channels is transformed into a small buffer (each
     * kernel's channels read in a row) and copied out as 16 contiguous
     * runs. Lanes past K are zero; every float of u is written once (the
     * buffer is freshly faulted, so no separate zero fill). */
    float *block = malloc((size_t)WG_POINTS * WG_CHANNEL_BLOCK * nr * sizeof *block);
    if (!block) {
        ww_winograd_free(w);
        return NULL;
    }
    for (int p = 0; p < w->n_panels; p++) {
        for (int c0 = 0; c0 < w->C; c0 += WG_CHANNEL_BLOCK) {
            int cn = w->C - c0 < WG_CHANNEL_BLOCK ? w->C - c0 : WG_CHANNEL_BLOCK;
            size_t run = (size_t)cn * nr; /* floats per point in this block */
            for (int lane = 0; lane < nr; lane++) {
                int k = p * nr + lane;
                for (int ci = 0; ci < cn; ci++) {
                    float u[WG_POINTS] = {0};
                    if (k < w->K) wg_transform_kernel(weight + ((size_t)k * w->C + c0 + ci) * 9, u);
                    for (int xi = 0; xi < WG_POINTS; xi++)
                        block[xi * run + (size_t)ci * nr + lane] = u[xi];
                }
            }
            for (int xi = 0; xi < WG_POINTS; xi++)
                memcpy(w->u + (((size_t)xi * w->n_panels + p) * w->C + c0) * nr, block + xi * run,
                       run * sizeof *block);
        }
    }
    free(block);
    return w;
}

void ww_winograd_free(ww_winograd *w)
{
    if (!w) return;
    free(w->u);
    free(w);
}

static size_t v_floats(const ww_winograd *w)
{
    return (size_t)WG_POINTS * w->Tp * w->C;
}

static size_t m_floats(const ww_winograd *w)
{
    return (size_t)WG_POINTS * w->Tp * w->K;
}

static int wg_slots(const ww_winograd *w, int threads)
{
    if (threads < 1) threads = 1;
    return threads < w->C ? threads : w->C;
}

size_t ww_winograd_scratch_floats(const ww_winograd *w, int threads)
{
    /* +32: room to align V and M to 64 bytes */
    return v_floats(w) + m_floats(w) + 32 + (size_t)wg_slots(w, threads) * wg_input_work_floats(w);
}

/* ---- input transform ------------------------------------------------------- */

typedef struct wg_ctx {
    const ww_winograd *w;
    const float *in, *bias, *residual;
    ww_activation act;
    float *out, *v, *m, *work;
    int slots;
} wg_ctx;

/* Slot i transforms a contiguous share of the input channels with its own
 * work area; padding rows of the last MR panel are zeroed so the GEMM
 * reads no garbage. */
static void wg_input_slots(void *p, int begin, int end)
{
    const wg_ctx *ctx = p;
    const ww_winograd *w = ctx->w;
    const ww_conv2d_shape *s = &w->s;
    int mr = w->kern->mr, C = w->C;
    size_t xi_stride = (size_t)w->Tp * C;
    for (int slot = begin; slot < end; slot++) {
        float *work = ww_align64(ctx->work + (size_t)slot * wg_input_work_floats(w));
        int first = (int)((long long)C * slot / ctx->slots);
        int last = (int)((long long)C * (slot + 1) / ctx->slots);
        for (int c = first; c < last; c++) {
            const float *plane = ctx->in + (size_t)c * s->in_h * s->in_w;
            for (int ty = 0; ty < w->tiles_h; ty++)
                w->input(w, plane, c, ty, work, ctx->v);
            for (int t = w->T; t < w->Tp; t++) {
                float *dst = ctx->v + (size_t)(t / mr) * mr * C + (size_t)c * mr + t % mr;
                for (int xi = 0; xi < WG_POINTS; xi++)
                    dst[(size_t)xi * xi_stride] = 0.0f;
            }
        }
    }
}

/* ---- GEMM ------------------------------------------------------------------- */

/* Jobs [begin, end) of (point xi, column panel p): M[xi][:, panel] = V[xi] * U[xi][:, panel]. */
static void wg_gemm_range(void *p, int begin, int end)
{
    const wg_ctx *ctx = p;
    const ww_winograd *w = ctx->w;
    const ww_gemm_kernel *kern = w->kern;
    int nr_full = kern->nr;
    for (int job = begin; job < end; job++) {
        int xi = job / w->n_panels, panel = job % w->n_panels;
        int n0 = panel * nr_full;
        int nr = w->K - n0 < nr_full ? w->K - n0 : nr_full;
        const float *u = w->u + ((size_t)xi * w->n_panels + panel) * w->C * nr_full;
        for (int k0 = 0; k0 < w->C; k0 += WW_GEMM_KC) {
            int kc = w->C - k0 < WW_GEMM_KC ? w->C - k0 : WW_GEMM_KC;
            ww_gemm_panel_args args = {.kern = kern,
                                       .a_packed = ctx->v + (size_t)xi * w->Tp * w->C,
                                       .k = w->C,
                                       .k0 = k0,
                                       .kc = kc,
                                       .m_begin = 0,
                                       .m_end = w->T,
                                       .nr = nr,
                                       .b_panel = u + (size_t)k0 * nr_full,
                                       .c = ctx->m + (size_t)xi * w->Tp * w->K + n0,
                                       .ldc = (size_t)w->K,
                                       .bias = NULL,
                                       .residual = NULL,
                                       .act = WW_ACT_NONE};
            ww_gemm_panel(&args);
        }
    }
}

/* ---- output ------------------------------------------------------------------ */

static void wg_output_range(void *p, int begin, int end)
{
    const wg_ctx *ctx = p;
    for (int t = begin; t < end; t++)
        ctx->w->output(ctx->w, ctx->m, t, ctx->bias, ctx->residual, ctx->act, ctx->out);
}

void ww_winograd_run(const ww_winograd *w, const float *in, const float *bias,
                     const float *residual, ww_activation act, float *out, float *scratch,
                     ww_threadpool *pool)
{
    wg_ctx ctx = {.w = w, .in = in, .bias = bias, .residual = residual, .act = act, .out = out};
    ctx.v = ww_align64(scratch);
    ctx.m = ww_align64(ctx.v + v_floats(w));
    ctx.work = ctx.m + m_floats(w);
    ctx.slots = wg_slots(w, ww_threadpool_size(pool));
    ww_parallel_for(pool, ctx.slots, wg_input_slots, &ctx);
    ww_parallel_for(pool, WG_POINTS * w->n_panels, wg_gemm_range, &ctx);
    ww_parallel_for(pool, w->T, wg_output_range, &ctx);
}
