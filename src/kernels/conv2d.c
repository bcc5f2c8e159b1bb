/* Optimized convolution: weights packed at create time, six algorithms
 * chosen by shape:
 *   depthwise  one input channel per group: AVX-512 3x3/5x5 (stride 1/2)
 *              read the channel in place with masked loads at the borders
 *              (depthwise_direct.inc); otherwise the channel is copied once
 *              into zero-padded scratch, then rows stream through a vector
 *              loop with every tap in a register (no GEMM, no bounds checks);
 *   gemm_1x1   1x1, stride 1, no padding: the input already is the B
 *              matrix (in_c x hw), so GEMM panels are copied straight out;
 *   winograd   3x3, stride 1, >= 16 channels in and out: F(4x4, 3x3) on
 *              maps of at least 20x20, else F(2x2, 3x3), with weights
 *              transformed at create or, for weight-dominated layers, per
 *              run (winograd.h);
 *   direct     strided convolutions with at least 256 multiply-adds per
 *              output on AVX-512: output channels in the vector lanes,
 *              nothing packed per run (conv2d_direct.h);
 *   stem       spatial kernels with at most 64 multiply-adds per output
 *              and rows of 32 or more outputs on AVX-512 (the mobile nets'
 *              3-channel stems): output pixels in the vector lanes, the
 *              rows a band reads copied split by stride phase
 *              (conv2d_stem.h);
 *   im2col     everything else: the input is copied once per run into a
 *              zero-padded, stride-phase-split layout, and each KC x NR
 *              panel of the im2col matrix is gathered from it into
 *              per-thread scratch, so the full im2col matrix is never
 *              materialized. */
#include "core/arena.h"
#include "core/error.h"
#include "core/prefault.h"
#include "kernels/conv2d_direct.h"
#include "kernels/conv2d_stem.h"
#include "kernels/gemm.h"
#include "kernels/vec.h"
#include "kernels/vmath.h"
#include "kernels/winograd.h"
#include "ops/ops.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define WW_HAVE_X86 1
#include <immintrin.h>
#else
#define WW_HAVE_X86 0
#endif

typedef enum conv_algo {
    CONV_DEPTHWISE,
    CONV_GEMM_1X1,
    CONV_IM2COL,
    CONV_WINOGRAD,
    CONV_DIRECT,
    CONV_STEM
} conv_algo;

typedef struct depthwise_channel_args {
    const ww_conv2d_shape *shape;
    const float *padded; /* the input channel with its zero border */
    int padded_w;        /* row stride of `padded` */
    const float *weight; /* kernel_h x kernel_w */
    float bias;
    const float *residual; /* residual channel, or NULL */
    ww_activation act;
    float *out;  /* output channel */
    float *flat; /* flat-kernel result scratch, or NULL for the row kernel */
} depthwise_channel_args;
/* Vectors the flat depthwise kernel computes per pass. */
#define DEPTHWISE_FLAT_VECS 4
typedef void (*depthwise_fn)(const depthwise_channel_args *r);
typedef struct dwd_channel dwd_channel; /* depthwise_direct.inc */
typedef void (*dwd_channel_fn)(const dwd_channel *c);

struct ww_conv2d {
    ww_conv2d_shape shape;
    ww_activation act;
    conv_algo algo;
    const ww_gemm_kernel *kern; /* GEMM algorithms */
    depthwise_fn depthwise;
    int depthwise_lanes; /* vector width of the depthwise kernel */
    int depthwise_flat;  /* small stride-1 map: the flat kernel (depthwise_row.inc) */
    /* AVX-512 3x3/5x5 kernel reading the input in place (depthwise_direct.inc), or NULL */
    dwd_channel_fn depthwise_direct;
    dwd_channel_fn depthwise_direct_pair; /* two channels per vector (narrow maps), or NULL */
    int arena_owned;                      /* weight belongs to a model's weight arena */
    int m;                                /* output channels per group */
    int k;                                /* GEMM depth: in_c / groups * kernel_h * kernel_w */
    int n;                                /* output pixels */
    size_t packed_group_floats;
    float *weight;          /* packed A per group (GEMM) or a plain copy (depthwise) */
    float *bias;            /* copy, or NULL */
    ww_winograd *winograd;  /* CONV_WINOGRAD: transformed weights */
    ww_conv_direct *direct; /* CONV_DIRECT: packed weights */
    ww_conv_stem *stem;     /* CONV_STEM: packed weights */
    /* Max pool fused after the activation (ww_conv2d_create_pooled):
     * POOL_DIRECT in the direct kernel, POOL_AFTER as a second pass from
     * scratch (any other algorithm or instruction set). */
    enum { POOL_NONE, POOL_DIRECT, POOL_AFTER } pooled;
    ww_pool2d_shape pool;
    /* 1x1: the depthwise conv whose output is the input, or NULL (see
     * ww_conv2d_set_input_producer and ksplit_bounds) */
    const ww_conv2d *producer;
    /* 1x1: a depthwise conv that reads the output, or NULL (see
     * ww_conv2d_set_output_consumer and msplit_bounds) */
    const ww_conv2d *consumer;
    /* 1x1: whole cache lines fetched into cache while the GEMM runs, or
     * none (see ww_conv2d_set_side_fetch) */
    const char *side_fetch;
    size_t side_fetch_lines;
};

/* ---- depthwise row kernels --------------------------------------------- */

typedef float ww_dw_v4f __attribute__((vector_size(16)));
typedef float ww_dw_v4f_u __attribute__((vector_size(16), aligned(4)));
typedef int32_t ww_dw_v4i __attribute__((vector_size(16)));
/* Partial vectors at the end of a row (n < lanes). */
static inline ww_dw_v4f dw_load_partial_portable(const float *p, int n)
{
    ww_dw_v4f v = {0};
    for (int i = 0; i < n; i++)
        v[i] = p[i];
    return v;
}
static inline void dw_store_partial_portable(float *p, ww_dw_v4f v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = v[i];
}
#define DW_NAME depthwise_channel_portable
#define DW_TARGET
#define DW_VEC ww_dw_v4f
#define DW_UVEC ww_dw_v4f_u
#define DW_IVEC ww_dw_v4i
#define DW_VL 4
#define DW_FMA(a, b, c) ((c) + (a) * (b))
#define DW_SPLAT(x) ((ww_dw_v4f){(x), (x), (x), (x)})
#define DW_EVEN_LANES ((ww_dw_v4i){0, 2, 4, 6})
#define DW_ACTIVATE(x, a) ww_vm4_activate((x), (a))
#define DW_LOAD_PARTIAL(p, n) dw_load_partial_portable((p), (n))
#define DW_STORE_PARTIAL(p, v, n) dw_store_partial_portable((p), (v), (n))
#include "kernels/depthwise_row.inc"

#if WW_HAVE_X86
/* Lanes [0, n) set: the mask operand of the AVX2 masked loads and stores. */
__attribute__((target("avx2,fma"))) static inline __m256i dw_mask_avx2(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
typedef float ww_dw_v8f __attribute__((vector_size(32)));
typedef float ww_dw_v8f_u __attribute__((vector_size(32), aligned(4)));
typedef int32_t ww_dw_v8i __attribute__((vector_size(32)));
#define DW_NAME depthwise_channel_avx2
#define DW_TARGET __attribute__((target("avx2,fma")))
#define DW_VEC ww_dw_v8f
#define DW_UVEC ww_dw_v8f_u
#define DW_IVEC ww_dw_v8i
#define DW_VL 8
#define DW_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define DW_SPLAT(x) _mm256_set1_ps(x)
#define DW_EVEN_LANES ((ww_dw_v8i){0, 2, 4, 6, 8, 10, 12, 14})
#define DW_ACTIVATE(x, a) ww_vm8_activate((x), (a))
#define DW_LOAD_PARTIAL(p, n) ((ww_dw_v8f)_mm256_maskload_ps((p), dw_mask_avx2(n)))
#define DW_STORE_PARTIAL(p, v, n) _mm256_maskstore_ps((p), dw_mask_avx2(n), (v))
#include "kernels/depthwise_row.inc"

typedef float ww_dw_v16f __attribute__((vector_size(64)));
typedef float ww_dw_v16f_u __attribute__((vector_size(64), aligned(4)));
typedef int32_t ww_dw_v16i __attribute__((vector_size(64)));
#define DW_NAME depthwise_channel_avx512
#define DW_TARGET __attribute__((target("avx512f")))
#define DW_VEC ww_dw_v16f
#define DW_UVEC ww_dw_v16f_u
#define DW_IVEC ww_dw_v16i
#define DW_VL 16
#define DW_FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define DW_SPLAT(x) _mm512_set1_ps(x)
#define DW_EVEN_LANES ((ww_dw_v16i){0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30})
#define DW_ACTIVATE(x, a) ww_vm16_activate((x), (a))
#define DW_LOAD_PARTIAL(p, n) ((ww_dw_v16f)_mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1), (p)))
#define DW_STORE_PARTIAL(p, v, n) _mm512_mask_storeu_ps((p), (__mmask16)((1u << (n)) - 1), (v))
#include "kernels/depthwise_row.inc"
#endif

#if WW_HAVE_X86
#include "kernels/depthwise_direct.inc"
#endif

static depthwise_fn depthwise_for(ww_isa isa, int *lanes)
{
    switch (isa) {
#if WW_HAVE_X86
    case WW_ISA_AVX512: *lanes = 16; return depthwise_channel_avx512;
    case WW_ISA_AVX2: *lanes = 8; return depthwise_channel_avx2;
#endif
    default: *lanes = 4; return depthwise_channel_portable;
    }
}

/* Size of the zero-padded copy of one input channel: every vector the
 * kernel loads, including whole vectors past the end of a row, lies inside.
 * The flat kernel uses the plain padded width as row pitch. */
static void depthwise_padded_size(const ww_conv2d *conv, int *rows, int *cols)
{
    const ww_conv2d_shape *s = &conv->shape;
    int lanes = conv->depthwise_lanes;
    int last_start = (s->out_w + lanes - 1) / lanes * lanes - lanes;
    int tail = s->stride_w == 2 ? 2 * lanes - 1 : (lanes - 1) * s->stride_w;
    *cols = last_start * s->stride_w + (s->kernel_w - 1) * s->dilation_w + tail + 1;
    if (conv->depthwise_flat) *cols = s->out_w + (s->kernel_w - 1) * s->dilation_w;
    *rows = (s->out_h - 1) * s->stride_h + (s->kernel_h - 1) * s->dilation_h + 1;
}

/* Flat kernel: floats of its result scratch (whole passes of vectors) and
 * of the padded copy including the zero tail its last pass reads. */
static void depthwise_flat_floats(const ww_conv2d *conv, size_t *padded, size_t *flat)
{
    const ww_conv2d_shape *s = &conv->shape;
    int rows, cols;
    depthwise_padded_size(conv, &rows, &cols);
    size_t pass = (size_t)DEPTHWISE_FLAT_VECS * conv->depthwise_lanes;
    *flat = ((size_t)s->out_h * cols + pass - 1) / pass * pass;
    *padded = *flat + (size_t)(s->kernel_h - 1) * s->dilation_h * cols +
              (size_t)(s->kernel_w - 1) * s->dilation_w;
}

/* The flat kernel pays off when rows waste most of a vector: it needs
 * clearly fewer vectors per tap than one (or more) per output row. */
static int depthwise_wants_flat(const ww_conv2d_shape *s, int lanes)
{
    if (s->stride_h != 1 || s->stride_w != 1) return 0;
    long long pitch = s->out_w + (long long)(s->kernel_w - 1) * s->dilation_w;
    long long flat_vecs = ((long long)s->out_h * pitch + lanes - 1) / lanes;
    long long row_vecs = (long long)s->out_h * ((s->out_w + lanes - 1) / lanes);
    return flat_vecs * 5 <= row_vecs * 4;
}

/* Per-slot scratch: the padded channel, then (flat kernel) its result;
 * each starts 64-byte aligned. */
static size_t depthwise_slot_floats(const ww_conv2d *conv)
{
    if (conv->depthwise_direct) return 0; /* no padded copy */
    int rows, cols;
    depthwise_padded_size(conv, &rows, &cols);
    if (conv->depthwise_flat) {
        size_t padded, flat;
        depthwise_flat_floats(conv, &padded, &flat);
        return (padded + 15) / 16 * 16 + flat + 16;
    }
    return (size_t)rows * cols + 16; /* +16: room to align to 64 bytes */
}

static int depthwise_slots(const ww_conv2d *conv, int threads)
{
    return threads < conv->shape.groups ? threads : conv->shape.groups;
}

/* Copies n floats; small rows (7x7, 14x14 maps) are common, where a libc
 * call per row costs more than the copy. Kept a loop, not turned into a
 * memcpy call. */
__attribute__((optimize("no-tree-loop-distribute-patterns"))) static void
copy_floats(float *restrict dst, const float *restrict src, int n)
{
    int i = 0;
    for (; i + 4 <= n; i += 4)
        WW_F4_STORE(dst + i, WW_F4_LOAD(src + i));
    for (; i < n; i++)
        dst[i] = src[i];
}

__attribute__((optimize("no-tree-loop-distribute-patterns"))) static void zero_floats(float *dst,
                                                                                      int n)
{
    int i = 0;
    for (; i + 4 <= n; i += 4)
        WW_F4_STORE(dst + i, WW_F4_SPLAT(0.0f));
    for (; i < n; i++)
        dst[i] = 0.0f;
}

/* Copies `rows` rows of n floats between row pitches. */
static void copy_rows_portable(float *dst, size_t dst_pitch, const float *src, size_t src_pitch,
                               int rows, int n)
{
    for (int y = 0; y < rows; y++)
        copy_floats(dst + (size_t)y * dst_pitch, src + (size_t)y * src_pitch, n);
}

#if WW_HAVE_X86
/* The same with whole 16-float vectors and one masked tail per row, so a
 * 7- or 14-float row is one load and one store. */
__attribute__((target("avx512f"))) static void
copy_rows_avx512(float *dst, size_t dst_pitch, const float *src, size_t src_pitch, int rows, int n)
{
    int whole = n - n % 16;
    __mmask16 tail = (__mmask16)((1u << (n % 16)) - 1);
    for (int y = 0; y < rows; y++) {
        float *d = dst + (size_t)y * dst_pitch;
        const float *r = src + (size_t)y * src_pitch;
        for (int i = 0; i < whole; i += 16)
            _mm512_storeu_ps(d + i, _mm512_loadu_ps(r + i));
        if (tail) _mm512_mask_storeu_ps(d + whole, tail, _mm512_maskz_loadu_ps(tail, r + whole));
    }
}
#endif

/* Copies input channel `plane` into `padded` (rows x cols) shifted by the
 * top/left padding, zero everywhere else. The zero border is the same for
 * every channel: with `border_ready` it is already in place from the
 * previous channel and only the interior is written. `lanes` is the
 * depthwise kernel's vector width (16: AVX-512 copies). */
static void depthwise_pad_channel(const ww_conv2d_shape *s, const float *plane, int rows, int cols,
                                  int border_ready, int lanes, float *padded)
{
    int x_end = s->pad_left + s->in_w < cols ? s->pad_left + s->in_w : cols;
    int y_begin = s->pad_top, y_end = s->pad_top + s->in_h < rows ? s->pad_top + s->in_h : rows;
    if (x_end <= s->pad_left || y_begin >= y_end) y_begin = y_end = rows; /* all border */
    if (!border_ready) {
        for (int y = 0; y < rows; y++) {
            float *dst = padded + (size_t)y * cols;
            if (y < y_begin || y >= y_end) {
                zero_floats(dst, cols);
            } else {
                zero_floats(dst, s->pad_left);
                zero_floats(dst + x_end, cols - x_end);
            }
        }
    }
    if (y_begin >= y_end) return;
    float *dst = padded + (size_t)y_begin * cols + s->pad_left;
    int n = x_end - s->pad_left;
#if WW_HAVE_X86
    if (lanes == 16) {
        copy_rows_avx512(dst, (size_t)cols, plane, (size_t)s->in_w, y_end - y_begin, n);
        return;
    }
#endif
    (void)lanes;
    copy_rows_portable(dst, (size_t)cols, plane, (size_t)s->in_w, y_end - y_begin, n);
}

/* Floats per pass of a deferred depthwise activation: 16 KiB, in L1. */
#define DW_ACTIVATE_RUN 4096

typedef struct depthwise_ctx {
    const ww_conv2d *conv;
    const float *in, *residual;
    float *out, *scratch;
    int slots;
    int bands;   /* direct kernel: row bands (dwd_bands), each all channels */
    int threads; /* of the pool running it */
    /* direct kernel, ww_conv2d_run_means: the sum of each band's
     * activated outputs of channel oc at sums[band * out_c + oc]; or NULL */
    float *sums;
} depthwise_ctx;

#if WW_HAVE_X86
/* Input bytes fetched ahead by the direct depthwise kernel (channels split). */
#define DW_PREFETCH_BYTES 16384

static inline void dw_prefetch_plane(const float *p, size_t bytes)
{
    const char *c = (const char *)p;
    for (size_t o = 0; o < bytes; o += 64)
        _mm_prefetch(c + o, _MM_HINT_T0);
}
#endif

#if WW_HAVE_X86
/* Where unit `unit` of the direct kernel is: its band (unit / per_band),
 * its first output channel (a channel or a pair of `step`) and the band's
 * output rows. Odd bands walk the channels backwards: the cache line where
 * two bands of a channel meet is then written by the two threads at
 * different times, not both at once (with bands on 14x14 maps, in step
 * cost 2-4x the time of the layer). A thread runs its units in order, so
 * it steps a cursor (dw_cursor_next) rather than dividing for each unit:
 * on 14x14 and 7x7 maps a unit is a few hundred cycles of kernel, and the
 * divisions took 10-15 % of the layer. */
typedef struct dw_cursor {
    int band, index; /* unit = band * per_band + index */
    int oc;
    int oy_begin, oy_end;
} dw_cursor;

static inline void dw_cursor_channel(dw_cursor *k, int step, int per_band)
{
    k->oc = (k->band % 2 ? per_band - 1 - k->index : k->index) * step;
}

static void dw_cursor_at(const depthwise_ctx *ctx, int unit, int step, int per_band, dw_cursor *k)
{
    k->band = unit / per_band;
    k->index = unit % per_band;
    dwd_band_rows(&ctx->conv->shape, k->band, ctx->bands, &k->oy_begin, &k->oy_end);
    dw_cursor_channel(k, step, per_band);
}

static inline void dw_cursor_next(const depthwise_ctx *ctx, int step, int per_band, dw_cursor *k)
{
    if (++k->index == per_band) {
        k->index = 0;
        k->band++;
        dwd_band_rows(&ctx->conv->shape, k->band, ctx->bands, &k->oy_begin, &k->oy_end);
    }
    dw_cursor_channel(k, step, per_band);
}

/* The input channel output channel oc reads. */
static inline int dw_input_channel(int oc, int multiplier)
{
    return multiplier == 1 ? oc : oc / multiplier;
}

/* The input rows of unit k of the direct kernel: its first channel's rows
 * of its band (the pair's second channel follows only for whole planes).
 * Large planes (a 112x112 plane is 49 KB, read in several column sweeps of
 * a few lines per row) come from L3 or memory at well under the stream
 * rate when left to the hardware prefetcher: the kernel fetches the next
 * unit's rows while it computes this one. */
static void dw_unit_input(const depthwise_ctx *ctx, const dw_cursor *k, int multiplier,
                          const char **at, size_t *bytes)
{
    const ww_conv2d_shape *s = &ctx->conv->shape;
    int y0 = k->oy_begin * s->stride_h - s->pad_top;
    int y1 = (k->oy_end - 1) * s->stride_h - s->pad_top + s->kernel_h;
    if (y0 < 0) y0 = 0;
    if (y1 > s->in_h) y1 = s->in_h;
    const float *plane = ctx->in + (size_t)dw_input_channel(k->oc, multiplier) * s->in_h * s->in_w;
    *at = (const char *)(plane + (size_t)y0 * s->in_w);
    *bytes = y1 > y0 ? (size_t)(y1 - y0) * s->in_w * sizeof(float) : 0;
}

/* Output planes smaller than this are not fetched ahead for writing
 * (dwd_channel.fetch_out): 28x28 and smaller planes are a few lines,
 * mostly still in cache; fetching them too was neutral to slightly slower
 * (A/B at 1 thread: MobileNetV2 1.008x, ShuffleNetV2 1.011x,
 * EfficientNet-B0 1.004x). */
#define DW_FETCH_OUT_MIN_BYTES 8192

/* The output rows of unit k of the direct kernel (its band of its channel,
 * or of both of a pair), which are written next to one another in memory
 * only for whole planes. */
static void dw_unit_output(const depthwise_ctx *ctx, const dw_cursor *k, int step, const char **at,
                           size_t *bytes)
{
    const ww_conv2d_shape *s = &ctx->conv->shape;
    int n = s->out_c - k->oc < step ? s->out_c - k->oc : step;
    size_t rows = (size_t)(k->oy_end - k->oy_begin) * s->out_w;
    float *plane = ctx->out + (size_t)k->oc * s->out_h * s->out_w;
    *at = (const char *)(plane + (size_t)k->oy_begin * s->out_w);
    *bytes = (k->oy_end - k->oy_begin == s->out_h ? (size_t)n : 1) * rows * sizeof(float);
}
#endif

#if WW_HAVE_X86
/* The deferred activation of a run of whole output planes from channel
 * oc (one band), then their sums while they are in L1. */
static void dw_finish_run(const depthwise_ctx *ctx, float *run, size_t n, int oc)
{
    dwd_activate_plane(run, n, ctx->conv->act);
    if (ctx->sums) {
        size_t plane = (size_t)ctx->conv->shape.out_h * ctx->conv->shape.out_w;
        dwd_sum_planes(run, (int)(n / plane), plane, ctx->sums + oc);
    }
}
#endif

/* Slot i pads and convolves a contiguous share of the input channels
 * (each feeding out_c / groups output channels). */
static void depthwise_slots_run(void *p, int begin, int end)
{
    const depthwise_ctx *ctx = p;
    const ww_conv2d *conv = ctx->conv;
    const ww_conv2d_shape *s = &conv->shape;
    int multiplier = s->out_c / s->groups;
    int rows, cols;
    depthwise_padded_size(conv, &rows, &cols);
    size_t in_plane = (size_t)s->in_h * s->in_w, out_plane = (size_t)s->out_h * s->out_w;
    int taps = s->kernel_h * s->kernel_w;
#if WW_HAVE_X86
    if (conv->depthwise_direct) {
        /* a slot here is one unit: a channel or a pair, of one band (ww_conv2d_run) */
        int step = conv->depthwise_direct_pair ? 2 : 1;
        int per_band = ctx->slots / ctx->bands;
        /* Whole planes (one band): consecutive units' outputs are one run
         * of memory, so SiLU and the other exp-based activations go over
         * runs of up to DW_ACTIVATE_RUN floats rather than plane by plane:
         * a 7x7 plane is 3 vectors and a masked one, too few to keep the
         * exp's long dependency chains busy (EfficientNet-B0's 1152
         * channels at 7x7, 3x3 with SiLU: 0.058 -> 0.043 ms). */
        int defer = ctx->bands == 1 && !dwd_activates_in_block(conv->act);
        float *run = ctx->out;
        size_t run_n = 0;
        int run_oc = 0; /* the run's first channel */
        /* Channels split (one band): the 1x1 GEMM before split its pixels,
         * so half of each input plane was written on the other core. A
         * plane of a small map is a few cache lines, too short a stream
         * for the hardware prefetcher, and each line across costs ~240 ns:
         * the planes of the units DW_PREFETCH_BYTES ahead are fetched in
         * advance so those misses overlap. Not on one thread: the planes
         * were written on this core and are in its cache, and the fetches
         * only cost issue slots (MobileNetV2: 1.2 %). */
        size_t unit_bytes = (size_t)step * in_plane * sizeof(float);
        int ahead = ctx->threads > 1 && ctx->bands == 1 && unit_bytes <= DW_PREFETCH_BYTES
                        ? (int)((DW_PREFETCH_BYTES + unit_bytes - 1) / unit_bytes)
                        : 0;
        for (int unit = begin; unit < begin + ahead && unit < end; unit++)
            dw_prefetch_plane(
                ctx->in + (size_t)dw_input_channel(unit * step, multiplier) * in_plane, unit_bytes);
        dw_cursor cur, next;
        if (begin < end) dw_cursor_at(ctx, begin, step, per_band, &next);
        for (int unit = begin; unit < end; unit++) {
            if (ahead && unit + ahead < end) {
                int oc_ahead = (unit + ahead) * step;
                size_t bytes = (size_t)(s->out_c - oc_ahead < step ? s->out_c - oc_ahead : step) *
                               in_plane * sizeof(float);
                dw_prefetch_plane(
                    ctx->in + (size_t)dw_input_channel(oc_ahead, multiplier) * in_plane, bytes);
            }
            cur = next;
            if (unit + 1 < end) dw_cursor_next(ctx, step, per_band, &next);
            int oc = cur.oc;
            /* every field set one by one: a zero-filling initializer of
             * the whole struct compiles to `rep stos`, a microcoded
             * store loop that took a fifth of this function per unit */
            dwd_channel c;
            c.shape = s;
            c.act = conv->act;
            c.defer_act = defer;
            c.oy_begin = cur.oy_begin;
            c.oy_end = cur.oy_end;
            c.fetch = NULL;
            c.fetch_bytes = 0;
            c.fetch_out = NULL;
            c.fetch_out_bytes = 0;
            if (!ahead && unit + 1 < end)
                dw_unit_input(ctx, &next, multiplier, &c.fetch, &c.fetch_bytes);
            if (unit + 1 < end && out_plane * sizeof(float) >= DW_FETCH_OUT_MIN_BYTES)
                dw_unit_output(ctx, &next, step, &c.fetch_out, &c.fetch_out_bytes);
            int n = s->out_c - oc < step ? s->out_c - oc : step;
            for (int i = 0; i < 2; i++) {
                int ch = oc + (i < n ? i : 0); /* a lone channel fills both entries */
                c.sum[i] =
                    ctx->sums && !defer ? ctx->sums + (size_t)cur.band * s->out_c + ch : NULL;
                c.in[i] = ctx->in + (size_t)dw_input_channel(ch, multiplier) * in_plane;
                c.residual[i] = ctx->residual ? ctx->residual + (size_t)ch * out_plane : NULL;
                c.out[i] = ctx->out + (size_t)ch * out_plane;
                c.weight[i] = conv->weight + (size_t)ch * taps;
                c.bias[i] = conv->bias ? conv->bias[ch] : 0.0f;
            }
            if (n == 2)
                conv->depthwise_direct_pair(&c);
            else
                conv->depthwise_direct(&c);
            if (!defer) continue;
            /* one band: units [begin, end) are consecutive channels, whose
             * planes follow one another */
            if (!run_n) {
                run = c.out[0];
                run_oc = oc;
            }
            run_n += (size_t)n * out_plane;
            if (run_n >= DW_ACTIVATE_RUN) {
                dw_finish_run(ctx, run, run_n, run_oc);
                run_n = 0;
            }
        }
        if (run_n) dw_finish_run(ctx, run, run_n, run_oc);
        return;
    }
#endif
    for (int slot = begin; slot < end; slot++) {
        float *padded = ww_align64(ctx->scratch + (size_t)slot * depthwise_slot_floats(conv));
        float *flat = NULL;
        int first = (int)((long long)s->groups * slot / ctx->slots);
        int last = (int)((long long)s->groups * (slot + 1) / ctx->slots);
        if (conv->depthwise_flat && first < last) {
            size_t padded_floats, flat_floats;
            depthwise_flat_floats(conv, &padded_floats, &flat_floats);
            flat = padded + (padded_floats + 15) / 16 * 16;
            /* the tail past the rows only feeds dropped columns; zero keeps it finite */
            zero_floats(padded + (size_t)rows * cols, (int)(padded_floats - (size_t)rows * cols));
        }
        for (int g = first; g < last; g++) {
            depthwise_pad_channel(s, ctx->in + (size_t)g * in_plane, rows, cols, g > first,
                                  conv->depthwise_lanes, padded);
            for (int oc = g * multiplier; oc < (g + 1) * multiplier; oc++) {
                depthwise_channel_args r = {
                    .shape = s,
                    .padded = padded,
                    .padded_w = cols,
                    .weight = conv->weight + (size_t)oc * taps,
                    .bias = conv->bias ? conv->bias[oc] : 0.0f,
                    .residual = ctx->residual ? ctx->residual + (size_t)oc * out_plane : NULL,
                    .act = conv->act,
                    .out = ctx->out + (size_t)oc * out_plane,
                    .flat = flat};
                conv->depthwise(&r);
            }
        }
    }
}

/* ---- GEMM-based algorithms --------------------------------------------- */

/* A run of panel columns that lie on one output row. */
typedef struct column_run {
    int col; /* first column inside the panel */
    int len; /* columns in the run */
    int iy0; /* input row of tap ky = 0 */
    int ix0; /* input column of tap kx = 0 for the run's first pixel */
} column_run;

static int plan_column_runs(const ww_conv2d_shape *s, int n0, int nr, column_run *runs)
{
    int count = 0;
    for (int col = 0; col < nr;) {
        int pixel = n0 + col;
        int oy = pixel / s->out_w, ox = pixel % s->out_w;
        int len = s->out_w - ox < nr - col ? s->out_w - ox : nr - col;
        runs[count++] =
            (column_run){col, len, oy * s->stride_h - s->pad_top, ox * s->stride_w - s->pad_left};
        col += len;
    }
    return count;
}

/* d[t] = src[2 t] for t < n; no load reads past src[2 (n - 1)]. */
static void im2col_gather_stride2(const float *src, int n, float *d)
{
    int t = 0;
#if defined(__GNUC__) && !defined(__clang__)
    if (n >= 5) {
        for (; t + 4 < n; t += 4) {
            ww_f4 a = WW_F4_LOAD(src + 2 * t), b = WW_F4_LOAD(src + 2 * t + 4);
            WW_F4_STORE(d + t, __builtin_shuffle(a, b, (ww_i4){0, 2, 4, 6}));
        }
        /* the last 4 as the odd lanes of the 8 floats ending at src[2 (n - 1)] */
        const float *end = src + 2 * (n - 4) - 1;
        ww_f4 a = WW_F4_LOAD(end), b = WW_F4_LOAD(end + 4);
        WW_F4_STORE(d + n - 4, __builtin_shuffle(a, b, (ww_i4){1, 3, 5, 7}));
        return;
    }
#endif
    for (; t < n; t++)
        d[t] = src[2 * t];
}

/* Gathers im2col rows [k0, k0 + kc) for the panel's columns into `panel`
 * (kc x panel_width, zero beyond the valid columns and in padding). */
static void im2col_pack_panel(const ww_conv2d_shape *s, const float *in_group, int k0, int kc,
                              const column_run *runs, int run_count, int nr, int panel_width,
                              float *panel)
{
    int taps = s->kernel_h * s->kernel_w;
    int ci = k0 / taps, ky = k0 % taps / s->kernel_w, kx = k0 % s->kernel_w;
    int sw = s->stride_w;
    for (int kk = 0; kk < kc; kk++) {
        float *dst = panel + (size_t)kk * panel_width;
        const float *plane = in_group + (size_t)ci * s->in_h * s->in_w;
        for (int i = 0; i < run_count; i++) {
            const column_run *run = &runs[i];
            float *d = dst + run->col;
            int iy = run->iy0 + ky * s->dilation_h;
            if (iy < 0 || iy >= s->in_h) {
                memset(d, 0, (size_t)run->len * sizeof *d);
                continue;
            }
            const float *row = plane + (size_t)iy * s->in_w;
            int ix0 = run->ix0 + kx * s->dilation_w;
            /* Columns t in [lo, hi) read ix0 + t * sw inside the row. */
            int lo = ix0 >= 0 ? 0 : (-ix0 + sw - 1) / sw;
            int hi = ix0 > s->in_w - 1 ? 0 : (s->in_w - 1 - ix0) / sw + 1;
            if (hi > run->len) hi = run->len;
            if (lo > hi) lo = hi;
            for (int t = 0; t < lo; t++)
                d[t] = 0.0f;
            if (hi == lo) {
                /* whole run in padding */
            } else if (sw == 1) {
                memcpy(d + lo, row + ix0 + lo, (size_t)(hi - lo) * sizeof *d);
            } else if (sw == 2) {
                im2col_gather_stride2(row + ix0 + 2 * lo, hi - lo, d + lo);
            } else {
                const float *src = row + ix0 + (ptrdiff_t)lo * sw;
                for (int t = lo; t < hi; t++, src += sw)
                    d[t] = *src;
            }
            for (int t = hi; t < run->len; t++)
                d[t] = 0.0f;
        }
        for (int j = nr; j < panel_width; j++)
            dst[j] = 0.0f;
        if (++kx == s->kernel_w) {
            kx = 0;
            if (++ky == s->kernel_h) {
                ky = 0;
                ci++;
            }
        }
    }
}

/* ---- phase-split input for im2col ---------------------------------------
 * Kernels larger than 1x1 first copy the input once per run into a
 * zero-padded, phase-split layout: for each channel and padded row, the
 * columns x = q + stride_w * j of phase q lie contiguous in j. Every im2col
 * row of a panel run, input[c][oy * sh + ky * dh][ox * sw + kx * dw] over
 * consecutive ox, is then one contiguous copy at phase (kx * dw) % sw,
 * offset (kx * dw) / sw: no bounds checks or strided gathers per panel. */
typedef struct phased_layout {
    int rows;  /* padded rows any tap reads */
    int cols;  /* entries per phase row: ceil(padded columns / stride_w) */
    int pitch; /* floats per padded row: stride_w * cols */
    size_t plane;
} phased_layout;

static int im2col_phased(const ww_conv2d *conv)
{
    return conv->algo == CONV_IM2COL && conv->shape.kernel_h * conv->shape.kernel_w > 1;
}

static phased_layout phased_layout_of(const ww_conv2d_shape *s)
{
    phased_layout l;
    l.rows = (s->out_h - 1) * s->stride_h + (s->kernel_h - 1) * s->dilation_h + 1;
    int padded_cols = (s->out_w - 1) * s->stride_w + (s->kernel_w - 1) * s->dilation_w + 1;
    l.cols = (padded_cols + s->stride_w - 1) / s->stride_w;
    l.pitch = l.cols * s->stride_w;
    l.plane = (size_t)l.rows * l.pitch;
    return l;
}

/* Floats of the phase-split copy, rounded to whole cache lines. */
static size_t phased_floats(const ww_conv2d *conv)
{
    if (!im2col_phased(conv)) return 0;
    phased_layout l = phased_layout_of(&conv->shape);
    return ((size_t)conv->shape.in_c * l.plane + 15) / 16 * 16 + 16;
}

typedef struct phased_ctx {
    const ww_conv2d_shape *shape;
    phased_layout layout;
    const float *in;
    float *phased;
    int avx512;             /* stride-2 rows through phased_row_stride2_avx512 */
    int row_begin, row_end; /* padded rows to copy (of every channel) */
} phased_ctx;

#if WW_HAVE_X86
/* Widest padded row phased_row_stride2_avx512 takes (its stack copy). */
#define PHASED_ROW_MAX 4096
/* One input row into its two stride-2 phases: the row is copied once into
 * a zero-padded stack buffer, then each 32 floats split into 16 even and
 * 16 odd ones with two permutes. */
__attribute__((target("avx512f"))) static void phased_row_stride2_avx512(const float *row, int in_w,
                                                                         int pad_left,
                                                                         const phased_layout *l,
                                                                         float *dst)
{
    float padded[PHASED_ROW_MAX + 32] __attribute__((aligned(64)));
    int width = (l->pitch + 31) / 32 * 32;
    int left = pad_left < l->pitch ? pad_left : l->pitch;
    int n = in_w < l->pitch - left ? in_w : l->pitch - left;
    memset(padded, 0, (size_t)left * sizeof *padded);
    memcpy(padded + left, row, (size_t)n * sizeof *padded);
    memset(padded + left + n, 0, (size_t)(width - left - n) * sizeof *padded);
    const __m512i even =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd =
        _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    float *d0 = dst, *d1 = dst + l->cols;
    for (int j = 0; j < l->cols; j += 16) {
        __m512 a = _mm512_load_ps(padded + 2 * j), b = _mm512_load_ps(padded + 2 * j + 16);
        __m512 e = _mm512_permutex2var_ps(a, even, b), o = _mm512_permutex2var_ps(a, odd, b);
        if (l->cols - j >= 16) {
            _mm512_storeu_ps(d0 + j, e);
            _mm512_storeu_ps(d1 + j, o);
        } else {
            __mmask16 tail = (__mmask16)((1u << (l->cols - j)) - 1);
            _mm512_mask_storeu_ps(d0 + j, tail, e);
            _mm512_mask_storeu_ps(d1 + j, tail, o);
        }
    }
}
#endif

/* Channels [begin, end) into the phase-split layout. */
static void phased_channels(void *p, int begin, int end)
{
    const phased_ctx *ctx = p;
    const ww_conv2d_shape *s = ctx->shape;
    const phased_layout *l = &ctx->layout;
    int sw = s->stride_w;
    for (int c = begin; c < end; c++) {
        const float *plane = ctx->in + (size_t)c * s->in_h * s->in_w;
        for (int r = ctx->row_begin; r < ctx->row_end; r++) {
            float *dst = ctx->phased + (size_t)c * l->plane + (size_t)r * l->pitch;
            int iy = r - s->pad_top;
            if (iy < 0 || iy >= s->in_h) {
                memset(dst, 0, (size_t)l->pitch * sizeof *dst);
                continue;
            }
            const float *row = plane + (size_t)iy * s->in_w;
#if WW_HAVE_X86
            if (ctx->avx512 && sw == 2 && l->pitch <= PHASED_ROW_MAX) {
                phased_row_stride2_avx512(row, s->in_w, s->pad_left, l, dst);
                continue;
            }
#endif
            for (int q = 0; q < sw; q++) {
                float *d = dst + (size_t)q * l->cols;
                /* entry j holds input column q + sw * j - pad_left */
                int x0 = q - s->pad_left;
                int lo = x0 >= 0 ? 0 : (-x0 + sw - 1) / sw;
                int hi = x0 > s->in_w - 1 ? 0 : (s->in_w - 1 - x0) / sw + 1;
                if (hi > l->cols) hi = l->cols;
                if (lo > hi) lo = hi;
                for (int j = 0; j < lo; j++)
                    d[j] = 0.0f;
                const float *src = row + x0 + (ptrdiff_t)lo * sw;
                if (sw == 1)
                    memcpy(d + lo, src, (size_t)(hi - lo) * sizeof *d);
                else if (sw == 2)
                    im2col_gather_stride2(src, hi - lo, d + lo);
                else
                    for (int j = lo; j < hi; j++, src += sw)
                        d[j] = *src;
                for (int j = hi; j < l->cols; j++)
                    d[j] = 0.0f;
            }
        }
    }
}

/* Copies n <= 32 floats (one panel run); kept a loop, not a libc call. */
__attribute__((always_inline, optimize("no-tree-loop-distribute-patterns"))) static inline void
copy_run_portable(float *restrict d, const float *restrict src, int n)
{
    int t = 0;
    for (; t + 4 <= n; t += 4)
        WW_F4_STORE(d + t, WW_F4_LOAD(src + t));
    for (; t < n; t++)
        d[t] = src[t];
}

/* im2col rows [k0, k0 + kc) of the panel's columns from the phase-split
 * input (see phased_channels); zero beyond the valid columns. Inlined into
 * one function per instruction set with its run copy. */
#define IM2COL_PACK_PHASED(NAME, TARGET, COPY_RUN)                                                 \
    TARGET static void NAME(const ww_conv2d_shape *s, const phased_layout *l,                      \
                            const float *phased_group, int k0, int kc, const column_run *runs,     \
                            int run_count, int nr, int panel_width, float *panel)                  \
    {                                                                                              \
        int taps = s->kernel_h * s->kernel_w;                                                      \
        int ci = k0 / taps, ky = k0 % taps / s->kernel_w, kx = k0 % s->kernel_w;                   \
        /* each run's offset inside a channel plane at tap (0, 0) */                               \
        size_t run_offset[WW_GEMM_MAX_NR];                                                         \
        for (int i = 0; i < run_count; i++)                                                        \
            run_offset[i] = (size_t)(runs[i].iy0 + s->pad_top) * l->pitch +                        \
                            (size_t)((runs[i].ix0 + s->pad_left) / s->stride_w);                   \
        /* tap kx reads phase (kx * dw) % sw at entry (kx * dw) / sw, stepped per kx */            \
        int phase = kx * s->dilation_w % s->stride_w, entry = kx * s->dilation_w / s->stride_w;    \
        const float *row =                                                                         \
            phased_group + (size_t)ci * l->plane + (size_t)ky * s->dilation_h * l->pitch;          \
        size_t row_step = (size_t)s->dilation_h * l->pitch;                                        \
        for (int kk = 0; kk < kc; kk++) {                                                          \
            float *dst = panel + (size_t)kk * panel_width;                                         \
            const float *tap = row + (size_t)phase * l->cols + entry;                              \
            if (run_count == 1 && nr == panel_width) {                                             \
                COPY_RUN(dst, tap + run_offset[0], panel_width);                                   \
            } else {                                                                               \
                for (int i = 0; i < run_count; i++)                                                \
                    COPY_RUN(dst + runs[i].col, tap + run_offset[i], runs[i].len);                 \
                for (int j = nr; j < panel_width; j++)                                             \
                    dst[j] = 0.0f;                                                                 \
            }                                                                                      \
            if (++kx < s->kernel_w) {                                                              \
                phase += s->dilation_w;                                                            \
                while (phase >= s->stride_w) {                                                     \
                    phase -= s->stride_w;                                                          \
                    entry++;                                                                       \
                }                                                                                  \
                continue;                                                                          \
            }                                                                                      \
            kx = phase = entry = 0;                                                                \
            row += row_step;                                                                       \
            if (++ky == s->kernel_h) {                                                             \
                ky = 0;                                                                            \
                ci++;                                                                              \
                row = phased_group + (size_t)ci * l->plane;                                        \
            }                                                                                      \
        }                                                                                          \
    }

IM2COL_PACK_PHASED(im2col_pack_phased_portable,
                   __attribute__((optimize("no-tree-loop-distribute-patterns"))), copy_run_portable)

#if WW_HAVE_X86
__attribute__((target("avx512f"), always_inline)) static inline void
copy_run_avx512(float *restrict d, const float *restrict src, int n)
{
    int t = 0;
    for (; t + 16 <= n; t += 16)
        _mm512_storeu_ps(d + t, _mm512_loadu_ps(src + t));
    if (t < n) {
        __mmask16 tail = (__mmask16)((1u << (n - t)) - 1);
        _mm512_mask_storeu_ps(d + t, tail, _mm512_maskz_loadu_ps(tail, src + t));
    }
}
IM2COL_PACK_PHASED(im2col_pack_phased_avx512,
                   __attribute__((target("avx512f"), optimize("no-tree-loop-distribute-patterns"))),
                   copy_run_avx512)
#endif

/* Column panels one job packs per K block. The weight block (M x KC) is
 * then read from memory once and reused from L2 for every panel, which
 * matters for late layers where the weights are megabytes and N is small. */
#define PANELS_PER_BLOCK 8

/* Most threads the splits that follow a depthwise layer's (ksplit_bounds,
 * msplit_bounds) are planned for; more run the usual plan. */
#define KSPLIT_MAX_THREADS 64

/* How the GEMM work is cut into jobs for a given thread count. */
typedef struct gemm_plan {
    int slots;    /* parallel iterations, each with its own scratch slot */
    int n_panels; /* NR-column panels of the output */
    int n_blocks;
    int m_chunks;  /* row ranges per (group, block) when columns alone cannot feed all threads */
    int jobs;      /* groups * m_chunks * n_blocks */
    int kc;        /* K block depth */
    int streaming; /* weight streaming (see gemm_kc) */
    int wide;      /* one panel of all columns through the kernel's wide tile */
    size_t slot_floats;
    /* with m_split: row chunk c is rows [m_bounds[c], m_bounds[c + 1]) */
    int m_split;
    int m_bounds[KSPLIT_MAX_THREADS + 1];
} gemm_plan;

/* Weight-streaming layers: all columns fit one job and the packed weights
 * of a group exceed this, so they come from memory (the model's other
 * layers evicted them) and dominate the traffic. Their jobs take deep K
 * blocks, sweep the weights in row blocks that stay in L2 while every
 * column panel uses them, and prefetch them ahead on the first panel: the
 * weights are read from memory once, as a sequential stream. */
#define WEIGHT_STREAM_BYTES (256 * 1024)
/* Budget for one job's packed B block on that path (stays in L2). */
#define WEIGHT_STREAM_B_BYTES (512 * 1024)
/* Rows of weights per block on that path. */
#define WEIGHT_ROW_BLOCK_BYTES (128 * 1024)

/* The K block depth of a job: WW_GEMM_KC, or for weight-streaming layers
 * K itself or an equal split of it that keeps the job's packed panels
 * within WEIGHT_STREAM_B_BYTES. */
static int gemm_kc(const ww_conv2d *conv, int *streaming)
{
    int n_panels = (conv->n + conv->kern->nr - 1) / conv->kern->nr;
    size_t weight_bytes = conv->packed_group_floats * sizeof(float);
    *streaming = 0;
    if (weight_bytes <= WEIGHT_STREAM_BYTES || n_panels > PANELS_PER_BLOCK)
        return conv->k < WW_GEMM_KC ? conv->k : WW_GEMM_KC;
    *streaming = 1;
    size_t b_bytes = (size_t)conv->k * conv->kern->nr * n_panels * sizeof(float);
    size_t blocks = (b_bytes + WEIGHT_STREAM_B_BYTES - 1) / WEIGHT_STREAM_B_BYTES;
    return (int)(((size_t)conv->k + blocks - 1) / blocks);
}

/* Columns a 1x1 convolution's last full column panel carries past NR (see
 * ww_gemm_tile_spill_fn): the few left over a multiple of NR (196 = 6 x 32
 * + 4 pixels) ride with the panel before them rather than stream the
 * weights once more through the column kernel (576 -> 96 @14: 0.158 ->
 * 0.145 ms). 0 = none; only where every row panel is full. */
static int gemm_spill_cols(const ww_conv2d *conv)
{
    const ww_gemm_kernel *kern = conv->kern;
    int rest = conv->n % kern->nr;
    if (conv->algo != CONV_GEMM_1X1 || !kern->tile_spill || conv->n < kern->nr || rest == 0 ||
        rest > kern->spill_max || conv->m % kern->mr != 0)
        return 0;
    return rest;
}

/* One thread's packed panels. Independent of the thread count, so scratch
 * sized for more threads always suffices for fewer. */
static size_t gemm_slot_floats(const ww_conv2d *conv)
{
    int n_panels = (conv->n + conv->kern->nr - 1) / conv->kern->nr;
    int panels = n_panels < PANELS_PER_BLOCK ? n_panels : PANELS_PER_BLOCK;
    int streaming;
    int kc = gemm_kc(conv, &streaming);
    size_t spill = gemm_spill_cols(conv) ? (size_t)kc * WW_GEMM_SPILL_STRIDE : 0;
    return (size_t)kc * conv->kern->nr * panels + spill + 16; /* +16: room to align to 64 bytes */
}

/* 1 when a 1x1 convolution reading its input in place takes all its
 * columns in one pass of the kernel's wide tile (7x7 maps on AVX-512:
 * 49 = 48 + 1 pixels). MobileNetV2 at 1 thread: 960 -> 160 @7 0.093 ->
 * 0.075 ms, 160 -> 960 0.095 -> 0.084, 320 -> 1280 0.241 -> 0.213. */
static int gemm_wide(const ww_conv2d *conv, int packs)
{
    const ww_gemm_kernel *kern = conv->kern;
    return !packs && conv->algo == CONV_GEMM_1X1 && kern->tile_wide && conv->n >= kern->wide_nr &&
           conv->n - kern->wide_nr <= WW_GEMM_WIDE_SPILL_MAX && conv->m % kern->mr == 0;
}

/* `packs`: the run packs its column panels (not read in place). */
static gemm_plan plan_gemm(const ww_conv2d *conv, int threads, int packs)
{
    const ww_conv2d_shape *s = &conv->shape;
    gemm_plan p;
    if (threads < 1) threads = 1;
    p.wide = gemm_wide(conv, packs);
    p.n_panels = p.wide                  ? 1
                 : gemm_spill_cols(conv) ? conv->n / conv->kern->nr
                                         : (conv->n + conv->kern->nr - 1) / conv->kern->nr;
    int blocks = (p.n_panels + PANELS_PER_BLOCK - 1) / PANELS_PER_BLOCK;
    /* Weights that stay in cache: split only the columns (pixels), in
     * smaller blocks if need be. Splitting the rows instead would have
     * every thread pack every column panel from the whole input, half of
     * it written by the other core in the layer before (~240 ns per cache
     * line between this VM's vCPUs), where a column split reads mostly
     * the rows the same thread wrote. */
    int cached_weights = conv->packed_group_floats * sizeof(float) <= WEIGHT_STREAM_BYTES;
    if (threads > 1 && cached_weights && (long long)s->groups * blocks < 4LL * threads)
        blocks = (int)((4LL * threads + s->groups - 1) / s->groups);
    /* A multiple of the thread count keeps the static split balanced (and
     * with one group, on the threads' pixel halves). */
    if (threads > 1 && (s->groups == 1 || (long long)s->groups * blocks < 8LL * threads))
        blocks = (blocks + threads - 1) / threads * threads;
    if (blocks > p.n_panels) blocks = p.n_panels;
    /* Block b: panels [n_panels * b / n_blocks, n_panels * (b + 1) / n_blocks),
     * so thread t's share of the blocks is the t-th of the columns (the
     * pixels the depthwise layer after it reads on that thread). */
    p.n_blocks = blocks;
    /* Few columns (late, small feature maps): also split the rows. */
    int m_panels = (conv->m + conv->kern->mr - 1) / conv->kern->mr;
    long long column_jobs = (long long)s->groups * p.n_blocks;
    p.m_chunks = 1;
    if (threads > 1 && column_jobs < (cached_weights ? (long long)threads : 4LL * threads)) {
        long long want = (4LL * threads + column_jobs - 1) / column_jobs;
        /* Each job packs its column panels: with one row chunk per
         * thread each thread packs every panel once, not twice
         * (squeeze-and-excitation's scaled 672 -> 112 @14, 2 threads:
         * 0.094 -> 0.089 ms; 1152 -> 192 @7: 0.070 -> 0.064). */
        if (packs && !cached_weights) want = threads;
        p.m_chunks = want < m_panels ? (int)want : m_panels;
    }
    p.jobs = (int)(column_jobs * p.m_chunks);
    p.slots = p.jobs < threads ? p.jobs : threads;
    if (p.slots > WW_SHARES_MAX) p.slots = WW_SHARES_MAX;
    p.kc = gemm_kc(conv, &p.streaming);
    p.slot_floats = gemm_slot_floats(conv);
    p.m_split = 0;
    return p;
}

typedef struct gemm_ctx {
    const ww_conv2d *conv;
    const float *in, *residual;
    const float *in_scale; /* per input channel, packed into B panels; or NULL */
    const float *weight;   /* packed A: conv->weight, or a scaled copy (scales_weights) */
    const float *phased;   /* phase-split input, or NULL (see im2col_phased) */
    /* Each slot makes its own phase-split copy of the whole input (at
     * phased_slots + slot * phased_floats) before its first job. */
    float *phased_slots;
    float *out, *scratch;
    gemm_plan plan;
    ww_shares jobs; /* the jobs, a contiguous share per slot */
} gemm_ctx;

/* A 1x1 convolution's B matrix is its input: a full-width column panel is
 * read in place by the tiles instead of being copied into a packed panel
 * first. Its KC rows of NR floats (KC x 128 bytes on AVX-512, the size of
 * the packed panel) stay in L1 while the weight rows stream past, as the
 * packed panel would. Weight-streaming layers too: their deep K blocks
 * outgrow L1 either way and come from L2, and with the rows split between
 * threads every thread packed every panel (960 -> 160 @7, 2 threads: 0.065
 * -> 0.057 ms; 672 -> 112 @14: 0.103 -> 0.076 ms). */
static int gemm_reads_in_place(const gemm_ctx *ctx, int p)
{
    const ww_conv2d *conv = ctx->conv;
    return conv->algo == CONV_GEMM_1X1 && !ctx->in_scale && conv->kern->tile_strided &&
           (p + 1) * conv->kern->nr <= conv->n;
}

/* Packs rows [k0, k0 + kc) of column panel p of `group`'s B matrix. */
static void conv_pack_panel(const gemm_ctx *ctx, const float *phased_in, int group, int p, int k0,
                            int kc, float *panel)
{
    const ww_conv2d *conv = ctx->conv;
    const ww_conv2d_shape *s = &conv->shape;
    const ww_gemm_kernel *kern = conv->kern;
    int in_per_group = s->in_c / s->groups;
    int n0 = p * kern->nr;
    int nr = conv->n - n0 < kern->nr ? conv->n - n0 : kern->nr;
    if (conv->algo == CONV_GEMM_1X1) {
        const float *in_group = ctx->in + (size_t)group * in_per_group * conv->n;
        const float *rows = in_group + (size_t)k0 * conv->n + n0;
        if (ctx->in_scale)
            ww_gemm_pack_b_panel_scaled(kern, kc, nr, rows, (size_t)conv->n,
                                        ctx->in_scale + (size_t)group * in_per_group + k0, panel);
        else
            ww_gemm_pack_b_panel(kern, kc, nr, rows, (size_t)conv->n, panel);
        return;
    }
    column_run runs[WW_GEMM_MAX_NR];
    int run_count = plan_column_runs(s, n0, nr, runs);
    if (phased_in) {
        phased_layout l = phased_layout_of(s);
        const float *phased = phased_in + (size_t)group * in_per_group * l.plane;
#if WW_HAVE_X86
        if (kern->isa == WW_ISA_AVX512) {
            im2col_pack_phased_avx512(s, &l, phased, k0, kc, runs, run_count, nr, kern->nr, panel);
            return;
        }
#endif
        im2col_pack_phased_portable(s, &l, phased, k0, kc, runs, run_count, nr, kern->nr, panel);
        return;
    }
    const float *in_group = ctx->in + (size_t)group * in_per_group * s->in_h * s->in_w;
    im2col_pack_panel(s, in_group, k0, kc, runs, run_count, nr, kern->nr, panel);
}

/* In-place 1x1 convs whose input (K rows of the map) is at least this
 * large fetch each next panel's rows while they compute the current one
 * (ww_gemm_panel_args.fetch_next): such an input is mostly out of L2, and
 * the hardware prefetcher does not follow K streams of 128 bytes each
 * (MobileNetV2's 144 -> 24 @56 with its input in L3: 0.214 -> 0.184 ms).
 * Smaller ones stay in L2, where the fetches cost 1-3 %. */
#define FETCH_NEXT_MIN_BYTES (1024 * 1024)

/* Rows [k0, k0 + kc) of the spilled columns of `group`'s B matrix. */
static void conv_pack_spill(const gemm_ctx *ctx, int group, int k0, int kc, float *panel)
{
    const ww_conv2d *conv = ctx->conv;
    int in_per_group = conv->shape.in_c / conv->shape.groups;
    int n0 = conv->n - gemm_spill_cols(conv);
    const float *rows = ctx->in + ((size_t)group * in_per_group + (size_t)k0) * conv->n + n0;
    const float *scale = ctx->in_scale ? ctx->in_scale + (size_t)group * in_per_group + k0 : NULL;
    ww_gemm_pack_spill(kc, gemm_spill_cols(conv), rows, (size_t)conv->n, scale, panel);
}

/* One thread's share of K in a K-split run (ksplit_run): rows [k_begin,
 * k_end) of B, summed into `out` (M x N, no bias, residual or activation). */
typedef struct gemm_kpart {
    int k_begin, k_end;
    float *out;
} gemm_kpart;

/* A share of the side stream (conv_gemm_job): its lines [first, first + lines). */
typedef struct gemm_fetch {
    size_t first, lines;
} gemm_fetch;

/* Part `part` of `parts` even parts of `whole`. */
static gemm_fetch gemm_fetch_part(gemm_fetch whole, size_t part, size_t parts)
{
    size_t first = whole.lines * part / parts, end = whole.lines * (part + 1) / parts;
    return (gemm_fetch){whole.first + first, end - first};
}

/* Rows [m0, m1) of `group` times packed column panel p (K rows [k0, k0 + kc));
 * the last panel with the spilled columns, packed at spill_panel unless
 * the panel reads its rows in place. The job writes panels up to p_end. */
static void conv_panel_product(const gemm_ctx *ctx, int group, int p, int p_end, int k0, int kc,
                               int m0, int m1, const float *panel, const float *spill_panel,
                               int prefetch_a, const gemm_kpart *kp, gemm_fetch fetch)
{
    const ww_conv2d *conv = ctx->conv;
    int nr_full = conv->kern->nr;
    int n0 = p * nr_full;
    size_t offset = (size_t)group * conv->m * conv->n + (size_t)n0;
    size_t ldb = 0;
    if (gemm_reads_in_place(ctx, p)) {
        int in_per_group = conv->shape.in_c / conv->shape.groups;
        panel = ctx->in + ((size_t)group * in_per_group + (size_t)k0) * conv->n + (size_t)n0;
        ldb = (size_t)conv->n;
    }
    ww_gemm_panel_args args = {.kern = conv->kern,
                               .a_packed = ctx->weight + (size_t)group * conv->packed_group_floats,
                               .k = conv->k,
                               .k0 = k0,
                               .kc = kc,
                               .m_begin = m0,
                               .m_end = m1,
                               .nr = conv->n - n0 < nr_full ? conv->n - n0 : nr_full,
                               .b_panel = panel,
                               .ldb = ldb,
                               .c = ctx->out + offset,
                               .ldc = (size_t)conv->n,
                               .bias = conv->bias ? conv->bias + (size_t)group * conv->m : NULL,
                               .residual = ctx->residual ? ctx->residual + offset : NULL,
                               .act = conv->act,
                               .prefetch_a = prefetch_a,
                               .prefetch = fetch.lines ? conv->side_fetch + fetch.first * 64 : NULL,
                               .prefetch_lines = (int)fetch.lines};
    if (kp) {
        args.c = kp->out + offset;
        args.bias = NULL;
        args.residual = NULL;
        args.act = WW_ACT_NONE;
        args.k_first = kp->k_begin;
        args.partial = 1;
    }
    args.fetch_next = ldb && gemm_reads_in_place(ctx, p + 1) &&
                      (size_t)conv->k * conv->n * sizeof(float) >= FETCH_NEXT_MIN_BYTES;
    /* the next panel's C only when this job writes it next: past the job
     * it may be the other thread's, and a line fetched for writing here
     * would then cross cores twice */
    args.fetch_c_next = ldb && p + 1 < p_end;
    if (ctx->plan.wide) {
        args.wide = 1; /* no next panel to fetch: fetch_next is 0 */
        args.spill = conv->n - conv->kern->wide_nr;
        args.b_spill = panel + conv->kern->wide_nr;
        args.ld_spill = ldb;
    } else if (p == ctx->plan.n_panels - 1 && gemm_spill_cols(conv)) {
        args.spill = gemm_spill_cols(conv);
        args.b_spill = ldb ? panel + nr_full : spill_panel;
        args.ld_spill = ldb ? ldb : WW_GEMM_SPILL_STRIDE;
    }
    ww_gemm_panel(&args);
}

/* One job: rows [m_begin, m_end) of one group times panels [p_begin, p_end);
 * with kp, only K rows [kp->k_begin, kp->k_end), into kp->out. */
static void conv_gemm_job(const gemm_ctx *ctx, const float *phased, float *panels, int group,
                          int p_begin, int p_end, int m_begin, int m_end, const gemm_kpart *kp,
                          gemm_fetch fetch)
{
    const ww_conv2d *conv = ctx->conv;
    const ww_gemm_kernel *kern = conv->kern;
    int kc_max = ctx->plan.kc;
    size_t panel_floats = (size_t)kc_max * kern->nr;
    /* Weight streaming: row blocks outermost, each prefetched ahead on
     * its first panel; else one block of all rows. */
    int row_step = m_end - m_begin;
    if (ctx->plan.streaming) {
        int rows = WEIGHT_ROW_BLOCK_BYTES / (kc_max * (int)sizeof(float)) / kern->mr * kern->mr;
        row_step = rows > kern->mr ? rows : kern->mr;
    }
    int k_end = kp ? kp->k_end : conv->k;
    /* the side stream in even shares over the panel products */
    size_t calls = (size_t)((k_end - (kp ? kp->k_begin : 0) + kc_max - 1) / kc_max) *
                   (size_t)((m_end - m_begin + row_step - 1) / row_step) *
                   (size_t)(p_end - p_begin);
    size_t call = 0;
    for (int k0 = kp ? kp->k_begin : 0; k0 < k_end; k0 += kc_max) {
        int kc = k_end - k0 < kc_max ? k_end - k0 : kc_max;
        for (int p = p_begin; p < p_end; p++)
            if (!gemm_reads_in_place(ctx, p))
                conv_pack_panel(ctx, phased, group, p, k0, kc,
                                panels + (size_t)(p - p_begin) * panel_floats);
        float *spill_panel = panels + (size_t)(p_end - p_begin) * panel_floats;
        if (p_end == ctx->plan.n_panels && gemm_spill_cols(conv) &&
            !gemm_reads_in_place(ctx, p_end - 1))
            conv_pack_spill(ctx, group, k0, kc, spill_panel);
        /* The first panel of each row block reads its weights first: it
         * prefetches them ahead, as the other layers evicted them since
         * the last run (cached layers too: MobileNetV2's 576 -> 96 @14
         * with cold weights 0.139 -> 0.128 ms, as fast warm; A/B
         * ShuffleNetV2 0.95 at 1 thread). */
        for (int m0 = m_begin; m0 < m_end; m0 += row_step) {
            int m1 = m_end - m0 < row_step ? m_end : m0 + row_step;
            for (int p = p_begin; p < p_end; p++, call++)
                conv_panel_product(ctx, group, p, p_end, k0, kc, m0, m1,
                                   panels + (size_t)(p - p_begin) * panel_floats, spill_panel,
                                   p == p_begin, kp, gemm_fetch_part(fetch, call, calls));
        }
    }
}

static void conv_gemm_run_job(const gemm_ctx *ctx, const float *phased, float *panels, int job)
{
    const gemm_plan *plan = &ctx->plan;
    const ww_conv2d *conv = ctx->conv;
    int mr = conv->kern->mr;
    int m_panels = (conv->m + mr - 1) / mr;
    int block = job % plan->n_blocks;
    int rest = job / plan->n_blocks;
    int chunk = rest % plan->m_chunks;
    int group = rest / plan->m_chunks;
    int m_begin = (int)((long long)m_panels * chunk / plan->m_chunks) * mr;
    int m_end = (int)((long long)m_panels * (chunk + 1) / plan->m_chunks) * mr;
    if (plan->m_split) {
        m_begin = plan->m_bounds[chunk];
        m_end = plan->m_bounds[chunk + 1];
    }
    if (m_end > conv->m) m_end = conv->m;
    int p_begin = (int)((long long)plan->n_panels * block / plan->n_blocks);
    int p_end = (int)((long long)plan->n_panels * (block + 1) / plan->n_blocks);
    /* job `job`'s even share of the side stream */
    gemm_fetch fetch =
        gemm_fetch_part((gemm_fetch){0, conv->side_fetch_lines}, (size_t)job, (size_t)plan->jobs);
    if (m_begin < m_end)
        conv_gemm_job(ctx, phased, panels, group, p_begin, p_end, m_begin, m_end, NULL, fetch);
}

/* Iteration `slot` owns scratch slot `slot` and a contiguous share of the
 * jobs (neighbouring jobs share weight rows in cache). When its share is
 * done it takes unclaimed jobs from the other shares: a worker that wakes
 * late or is descheduled would otherwise leave its whole share for the
 * caller to run after its own. Each job writes only its own outputs, so
 * the result does not depend on which slot ran it. */
static void conv_gemm_slots(void *p, int begin, int end)
{
    gemm_ctx *ctx = p;
    const gemm_plan *plan = &ctx->plan;
    for (int slot = begin; slot < end; slot++) {
        float *panels = ww_align64(ctx->scratch + (size_t)slot * plan->slot_floats);
        const float *phased = ctx->phased;
        int cursor = 0, job;
        while ((job = ww_shares_claim(&ctx->jobs, slot, &cursor, NULL)) >= 0) {
            if (!phased && ctx->phased_slots) {
                phased_layout l = phased_layout_of(&ctx->conv->shape);
                phased_ctx ph = {.shape = &ctx->conv->shape,
                                 .layout = l,
                                 .in = ctx->in,
                                 .phased = ww_align64(ctx->phased_slots +
                                                      (size_t)slot * phased_floats(ctx->conv)),
                                 .avx512 = ctx->conv->kern->isa == WW_ISA_AVX512,
                                 .row_end = l.rows};
                phased_channels(&ph, 0, ctx->conv->shape.in_c);
                phased = ph.phased;
            }
            conv_gemm_run_job(ctx, phased, panels, job);
        }
    }
}

/* The phase-split copy split by rows, for a column-split GEMM (one group,
 * one row chunk): slot t copies, of every channel, the padded rows from the
 * first one its own share of jobs reads up to the next slot's first, so
 * its panels read rows written on the same core (the halo rows aside).
 * Split by channels instead, the stem's 3 channels went 2 and 1 to the
 * threads and each thread's panels read the other's channel across cores
 * (~240 ns per line here): stem 3 -> 32 @224, 2 threads ~= 1 thread. */
typedef struct phased_rows_ctx {
    phased_ctx ph;
    int bounds[WW_SHARES_MAX + 1]; /* slot t: padded rows [bounds[t], bounds[t + 1]) */
} phased_rows_ctx;

static void phased_row_bounds(const ww_conv2d *conv, const gemm_plan *plan, int *bounds)
{
    const ww_conv2d_shape *s = &conv->shape;
    int rows = phased_layout_of(s).rows;
    bounds[0] = 0;
    for (int t = 1; t < plan->slots; t++) {
        /* first job of share t (ww_shares: contiguous shares); with one
         * group and one row chunk a job is a block of column panels */
        int block = (int)((long long)plan->jobs * t / plan->slots);
        int panel = (int)((long long)plan->n_panels * block / plan->n_blocks);
        long long oy = (long long)panel * conv->kern->nr / s->out_w;
        long long row = oy * s->stride_h;
        if (row > rows) row = rows;
        bounds[t] = row < bounds[t - 1] ? bounds[t - 1] : (int)row;
    }
    bounds[plan->slots] = rows;
}

static void phased_row_slots(void *p, int begin, int end)
{
    const phased_rows_ctx *pr = p;
    for (int slot = begin; slot < end; slot++) {
        phased_ctx ph = pr->ph;
        ph.row_begin = pr->bounds[slot];
        ph.row_end = pr->bounds[slot + 1];
        phased_channels(&ph, 0, ph.shape->in_c);
    }
}

/* ---- 1x1 convolution on a 1x1 map: matrix-vector product ----------------- */

typedef struct gemv_ctx {
    const ww_conv2d *conv;
    const float *in, *residual;
    float *out;
    int chunks; /* row ranges per group */
} gemv_ctx;

static void conv_gemv_chunks(void *p, int begin, int end)
{
    const gemv_ctx *ctx = p;
    const ww_conv2d *conv = ctx->conv;
    int mr = conv->kern->mr;
    int m_panels = (conv->m + mr - 1) / mr;
    int in_per_group = conv->shape.in_c / conv->shape.groups;
    for (int job = begin; job < end; job++) {
        int group = job / ctx->chunks, chunk = job % ctx->chunks;
        int m_begin = (int)((long long)m_panels * chunk / ctx->chunks) * mr;
        int m_end = (int)((long long)m_panels * (chunk + 1) / ctx->chunks) * mr;
        if (m_end > conv->m) m_end = conv->m;
        if (m_begin >= m_end) continue;
        size_t row0 = (size_t)group * conv->m;
        float *y = ctx->out + row0;
        ww_gemv_packed(conv->kern, m_begin, m_end, conv->k,
                       conv->weight + (size_t)group * conv->packed_group_floats,
                       ctx->in + (size_t)group * in_per_group,
                       conv->bias ? conv->bias + row0 : NULL,
                       ctx->residual ? ctx->residual + row0 : NULL, y);
        if (conv->act != WW_ACT_NONE)
            ww_activate_array_isa(conv->kern->isa, (size_t)(m_end - m_begin), y + m_begin,
                                  conv->act, y + m_begin, NULL);
    }
}

/* ---- public entry points ----------------------------------------------- */

/* 3x3 stride-1 convolutions with at least this many input and output
 * channels run as Winograd: F(2x2, 3x3), or F(4x4, 3x3) on maps of at
 * least 20x20 (4 or 2.25 instead of 9 multiplications per output); below
 * it the transforms cost more than they save. */
#define WINOGRAD_MIN_CHANNELS 16

/* Winograd stays on small maps too: ResNet-18's 7x7 layer4 through
 * im2col instead would keep 22 MB less resident (its transformed weights
 * are 16/9 the size), but measured 1.1 -> 1.7 ms per conv on one thread
 * and the whole model ~11% slower on one thread, ~18% on two. Instead
 * Winograd keeps such weight-dominated layers' raw weights and transforms
 * them per run (wg_lazy_weights in winograd.c): 9/16 of the memory. */

/* Packed weights are written once at create and read on every run:
 * faulted in up front, from the model's arena of huge pages when there is
 * one (core/arena.h), else a block of their own (core/prefault.h). */
static float *alloc_weight_floats(ww_arena *arena, size_t count)
{
    return arena ? ww_arena_alloc(arena, count * sizeof(float))
                 : ww_alloc_prefaulted(count * sizeof(float));
}

wanwu_status ww_conv2d_create_isa(const ww_conv2d_shape *s, const float *weight, const float *bias,
                                  ww_activation act, ww_isa isa, ww_conv2d **out, wanwu_error *err)
{
    return ww_conv2d_create_in(s, weight, bias, act, isa, NULL, out, err);
}

wanwu_status ww_conv2d_create_in(const ww_conv2d_shape *s, const float *weight, const float *bias,
                                 ww_activation act, ww_isa isa, ww_arena *arena, ww_conv2d **out,
                                 wanwu_error *err)
{
    return ww_conv2d_create_pooled(s, weight, bias, act, isa, arena, NULL, out, err);
}

wanwu_status ww_conv2d_create_pooled(const ww_conv2d_shape *s, const float *weight,
                                     const float *bias, ww_activation act, ww_isa isa,
                                     struct ww_arena *arena, const ww_pool2d_shape *pool,
                                     ww_conv2d **out, wanwu_error *err)
{
    if (!out) return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "conv2d: out is NULL");
    *out = NULL;
    wanwu_status st = ww_conv2d_shape_check(s, err);
    if (st != WANWU_OK) return st;
    if (!weight) return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "conv2d: weight is NULL");
    if (isa == WW_ISA_AUTO) isa = ww_isa_best();
    if (!ww_isa_supported(isa))
        return ww_error_set(err, WANWU_ERR_UNSUPPORTED, "conv2d: this CPU cannot run %s kernels",
                            ww_isa_name(isa));
    if (pool && (pool->channels != s->out_c || pool->in_h != s->out_h || pool->in_w != s->out_w ||
                 pool->out_h < 1 || pool->out_w < 1))
        return ww_error_set(
            err, WANWU_ERR_INVALID_ARGUMENT,
            "conv2d: max pool over %dx%dx%d does not match the conv output %dx%dx%d",
            pool->channels, pool->in_h, pool->in_w, s->out_c, s->out_h, s->out_w);

    ww_conv2d *conv = calloc(1, sizeof *conv);
    if (!conv) return ww_error_set(err, WANWU_ERR_NO_MEMORY, "conv2d: out of memory");
    conv->shape = *s;
    conv->act = act;
    conv->arena_owned = arena != NULL;
    conv->m = s->out_c / s->groups;
    conv->k = s->in_c / s->groups * s->kernel_h * s->kernel_w;
    conv->n = s->out_h * s->out_w;
    size_t weight_floats = (size_t)s->out_c * conv->k;

    if (pool) {
        conv->pool = *pool;
        conv->pooled = ww_conv_direct_suits_pooled(s, pool, act, isa) ? POOL_DIRECT : POOL_AFTER;
    }
    int depthwise = s->in_c / s->groups == 1 && s->groups > 1;
    int winograd = ww_winograd_suits(s) && s->in_c >= WINOGRAD_MIN_CHANNELS &&
                   s->out_c >= WINOGRAD_MIN_CHANNELS;
    if (conv->pooled == POOL_DIRECT || (!depthwise && !winograd && ww_conv_direct_suits(s, isa))) {
        conv->algo = CONV_DIRECT;
        conv->direct = ww_conv_direct_create(s, weight, bias, arena);
        conv->weight = conv->direct ? alloc_weight_floats(arena, 1) : NULL; /* placeholder */
    } else if (!depthwise && !winograd && ww_conv_stem_suits(s, isa)) {
        conv->algo = CONV_STEM;
        conv->stem = ww_conv_stem_create(s, weight, bias, arena);
        conv->weight = conv->stem ? alloc_weight_floats(arena, 1) : NULL; /* placeholder */
    } else if (depthwise) {
        conv->algo = CONV_DEPTHWISE;
        conv->depthwise = depthwise_for(isa, &conv->depthwise_lanes);
        conv->depthwise_flat = depthwise_wants_flat(&conv->shape, conv->depthwise_lanes);
#if WW_HAVE_X86
        if (isa == WW_ISA_AVX512 && depthwise_direct_suits(s)) {
            conv->depthwise_direct = dwd_channel_for(s, 0);
            if (dwd_pairs_channels(s)) conv->depthwise_direct_pair = dwd_channel_for(s, 1);
            conv->depthwise_flat = 0;
        }
#endif
        conv->weight = alloc_weight_floats(arena, weight_floats);
        if (conv->weight && !ww_arena_prefilled(arena))
            memcpy(conv->weight, weight, weight_floats * sizeof(float));
    } else if (winograd) {
        conv->algo = CONV_WINOGRAD;
        conv->kern = ww_gemm_kernel_for(isa);
        conv->winograd = ww_winograd_create_in(s, weight, conv->kern, arena);
        conv->weight =
            conv->winograd ? alloc_weight_floats(arena, 1) : NULL; /* unused placeholder */
    } else {
        int pointwise = s->kernel_h == 1 && s->kernel_w == 1 && s->stride_h == 1 &&
                        s->stride_w == 1 && s->pad_top == 0 && s->pad_left == 0 &&
                        s->pad_bottom == 0 && s->pad_right == 0;
        conv->algo = pointwise ? CONV_GEMM_1X1 : CONV_IM2COL;
        conv->kern = ww_gemm_kernel_for(isa);
        conv->packed_group_floats = ww_gemm_packed_a_floats(conv->kern, conv->m, conv->k);
        conv->weight = alloc_weight_floats(arena, conv->packed_group_floats * (size_t)s->groups);
        if (conv->weight && !ww_arena_prefilled(arena))
            for (int g = 0; g < s->groups; g++)
                ww_gemm_pack_a(conv->kern, conv->m, conv->k, weight + (size_t)g * conv->m * conv->k,
                               (size_t)conv->k,
                               conv->weight + (size_t)g * conv->packed_group_floats);
    }
    if (bias) {
        conv->bias = malloc((size_t)s->out_c * sizeof(float));
        if (conv->bias) memcpy(conv->bias, bias, (size_t)s->out_c * sizeof(float));
    }
    if (!conv->weight || (bias && !conv->bias)) {
        ww_conv2d_free(conv);
        return ww_error_set(err, WANWU_ERR_NO_MEMORY, "conv2d: out of memory for %zu weights",
                            weight_floats);
    }
    *out = conv;
    return WANWU_OK;
}

wanwu_status ww_conv2d_create(const ww_conv2d_shape *s, const float *weight, const float *bias,
                              ww_activation act, ww_conv2d **out, wanwu_error *err)
{
    return ww_conv2d_create_isa(s, weight, bias, act, WW_ISA_AUTO, out, err);
}

void ww_conv2d_free(ww_conv2d *conv)
{
    if (!conv) return;
    ww_winograd_free(conv->winograd);
    ww_conv_direct_free(conv->direct);
    ww_conv_stem_free(conv->stem);
    if (!conv->arena_owned) free(conv->weight);
    free(conv->bias);
    free(conv);
}

const ww_conv2d_shape *ww_conv2d_get_shape(const ww_conv2d *conv)
{
    return &conv->shape;
}

const char *ww_conv2d_algorithm(const ww_conv2d *conv)
{
    switch (conv->algo) {
    case CONV_DEPTHWISE: return "depthwise";
    case CONV_GEMM_1X1: return "gemm_1x1";
    case CONV_IM2COL: return "im2col";
    case CONV_WINOGRAD: return "winograd";
    case CONV_DIRECT: return "direct";
    case CONV_STEM: return "stem";
    }
    return "?";
}

static size_t conv_scratch_floats(const ww_conv2d *conv, int threads, size_t area_floats);

size_t ww_conv2d_scratch_floats(const ww_conv2d *conv, int threads)
{
    return ww_conv2d_scratch_floats_areas(conv, threads, 0);
}

size_t ww_conv2d_scratch_floats_areas(const ww_conv2d *conv, int threads, size_t area_floats)
{
    if (conv->pooled == POOL_DIRECT)
        return ww_conv_direct_pooled_scratch_floats(conv->direct, &conv->pool, threads,
                                                    area_floats);
    size_t own = conv_scratch_floats(conv, threads, area_floats);
    if (conv->pooled == POOL_AFTER) /* the conv output, then the conv's own scratch */
        return (size_t)conv->shape.out_c * conv->n + 16 + own;
    return own;
}

size_t ww_conv2d_area_floats(const ww_conv2d *conv, int threads)
{
    if (conv->pooled == POOL_DIRECT)
        return ww_conv_direct_pooled_area_floats(conv->direct, &conv->pool);
    if (conv->algo == CONV_WINOGRAD) return ww_winograd_area_floats(conv->winograd, threads);
    if (conv->algo == CONV_DIRECT) return ww_conv_direct_area_floats(conv->direct);
    return 0;
}

/* A per-input-channel scale (ww_conv2d_run_scaled) of a layer whose
 * weights stay in cache: the scale goes into a copy of the packed weights
 * (M x K multiplies) rather than into every packed column panel (K x N),
 * and the tiles still read the input in place. Weight-streaming layers
 * (M x K large, N small) scale their panels as they pack them: a scaled
 * copy of their weights per run cost EfficientNet-B0 2-3 %. */
static int scales_weights(const ww_conv2d *conv)
{
    if (conv->algo != CONV_GEMM_1X1 || !ww_conv2d_shape_takes_in_scale(&conv->shape)) return 0;
    int streaming;
    gemm_kc(conv, &streaming);
    return !streaming;
}

/* Scratch for that copy (at the start of the conv's scratch). */
static size_t scaled_a_floats(const ww_conv2d *conv)
{
    return scales_weights(conv) ? conv->packed_group_floats + 16 : 0;
}

typedef struct scale_a_ctx {
    const ww_conv2d *conv;
    const float *in_scale;
    float *scaled;
} scale_a_ctx;

#if WW_HAVE_X86
/* One 8-row panel (AVX-512's MR): two k steps per vector, the low half
 * scaled by the first one's scale, the high half by the second's. */
__attribute__((target("avx512f"))) static void
scale_a_panel8_avx512(const float *src, const float *scale, int k, float *dst)
{
    int kk = 0;
    for (; kk + 2 <= k; kk += 2) {
        __m512 sc =
            _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(scale[kk]), _mm512_set1_ps(scale[kk + 1]));
        _mm512_storeu_ps(dst + (size_t)kk * 8,
                         _mm512_mul_ps(_mm512_loadu_ps(src + (size_t)kk * 8), sc));
    }
    if (kk < k)
        _mm512_mask_storeu_ps(dst + (size_t)kk * 8, 0x00ff,
                              _mm512_mul_ps(_mm512_maskz_loadu_ps(0x00ff, src + (size_t)kk * 8),
                                            _mm512_set1_ps(scale[kk])));
}
#endif

/* MR-row panels [begin, end) of the packed weights times the scale of
 * their K column (panels hold MR rows k-major: kk * MR + r). */
static void scale_a_panels(void *p, int begin, int end)
{
    const scale_a_ctx *ctx = p;
    int mr = ctx->conv->kern->mr, k = ctx->conv->k;
    for (int panel = begin; panel < end; panel++) {
        size_t base = (size_t)panel * mr * k;
        const float *src = ctx->conv->weight + base;
        float *dst = ctx->scaled + base;
#if WW_HAVE_X86
        if (ctx->conv->kern->isa == WW_ISA_AVX512 && mr == 8) {
            scale_a_panel8_avx512(src, ctx->in_scale, k, dst);
            continue;
        }
#endif
        for (int kk = 0; kk < k; kk++) {
            float sc = ctx->in_scale[kk];
            for (int r = 0; r < mr; r++)
                dst[(size_t)kk * mr + r] = src[(size_t)kk * mr + r] * sc;
        }
    }
}

/* ---- 1x1 convs next to a channel-split depthwise conv: K and M splits ----- */

/* A depthwise layer that splits its channels between threads (maps under
 * DWD_BAND_MIN_ROWS per thread) writes each channel on one core, and the
 * 1x1 projection after it reads every channel for its outputs: half of its
 * input comes from the other core (~240 ns per line here), and those lines
 * are then shared, so the depthwise layer's next run waits on every store
 * to them (alone 960 @7 takes 0.016 ms at 2 threads; after the 1x1 conv
 * that read its output, 0.035). Splitting the projection's K the way the
 * depthwise layer split its channels, each thread sums over the channels
 * it wrote, into a partial M x N product of its own, and the partials
 * (1/6 of the input's size for MobileNetV2's blocks) are added in a second
 * pass, each thread over a share of the rows. */
/* Larger maps keep the usual split: at 28x28 (MobileNetV2's 192 -> 32)
 * the partials' extra pass cost more than the depthwise layer gained, and
 * the expansions' M split lost too (1.02-1.04x). */
#define KSPLIT_MAX_PIXELS (14 * 14)
/* It pays where the input (K x N) is several times the partials (M x N),
 * as in the mobile nets' projections (K = 6 M); ShuffleNetV2's 1x1 convs
 * after its depthwise ones (K = M) took 1.05x the time with it. The M
 * split, likewise, where the output is several times the input (the
 * expansions, M = 6 K), since each thread then reads all of the input:
 * ShuffleNetV2's (M = K) took 1.03x the time. */
#define KSPLIT_MIN_K_PER_M 4

/* The channels each thread's share of depthwise conv `dw` covers when
 * it splits channels at `threads` threads (depthwise_run's units, in
 * ww_parallel_for's shares), each bound rounded down to a multiple of
 * `align`: thread t's are [bounds[t], bounds[t + 1]). 0 when it splits
 * rows instead, or some thread would get none. */
static int dw_channel_bounds(const ww_conv2d *dw, int threads, int align, int *bounds)
{
#if WW_HAVE_X86
    if (!dw->depthwise_direct || dwd_bands(&dw->shape, threads) != 1) return 0;
    /* the units of depthwise_run: channels, or pairs of them */
    int step = dw->depthwise_direct_pair ? 2 : 1;
    int units = (dw->shape.out_c + step - 1) / step;
    for (int t = 0; t <= threads; t++) {
        int c = t == threads
                    ? dw->shape.out_c
                    : ww_parallel_for_share_begin(threads, units, t) * step / align * align;
        bounds[t] = c < dw->shape.out_c ? c : dw->shape.out_c;
        if (t > 0 && bounds[t] <= bounds[t - 1]) return 0; /* a thread without channels */
    }
    return 1;
#else
    (void)dw;
    (void)threads;
    (void)align;
    (void)bounds;
    return 0;
#endif
}

/* What both splits that follow depthwise conv `dw` (ksplit_bounds,
 * msplit_bounds) need: a linked depthwise conv, 2 to KSPLIT_MAX_THREADS
 * threads, and `conv` a plain 1x1 GEMM on a map of 2 to KSPLIT_MAX_PIXELS
 * pixels. */
static int split_like_depthwise_suits(const ww_conv2d *conv, const ww_conv2d *dw, int threads)
{
    return dw && dw->algo == CONV_DEPTHWISE && threads >= 2 && threads <= KSPLIT_MAX_THREADS &&
           conv->algo == CONV_GEMM_1X1 && conv->n >= 2 && conv->n <= KSPLIT_MAX_PIXELS &&
           conv->shape.groups == 1 && conv->pooled == POOL_NONE;
}

/* The K split of `conv` at `threads` threads: bounds[t] .. bounds[t + 1]
 * are thread t's input channels; 0 when the conv does not split K. Only
 * with the AVX-512 kernels, whose depthwise conv is the one that splits
 * channels so (and whose row loop adds the partials). */
static int ksplit_bounds(const ww_conv2d *conv, int threads, int *bounds)
{
    const ww_conv2d *dw = conv->producer;
    if (!split_like_depthwise_suits(conv, dw, threads) || conv->k < KSPLIT_MIN_K_PER_M * conv->m ||
        conv->kern->isa != WW_ISA_AVX512 || dw->shape.out_c != conv->shape.in_c)
        return 0;
    return dw_channel_bounds(dw, threads, 1, bounds);
}

/* The M split of 1x1 conv `conv` at `threads` threads, whose output a
 * channel-split depthwise conv reads (ww_conv2d_set_output_consumer): each
 * thread computes the output channels that thread's share of the
 * depthwise layer reads, rounded to whole row tiles, so that layer reads
 * what its own core wrote; rows [bounds[t], bounds[t + 1]) for thread t.
 * 0: the usual plan. */
static int msplit_bounds(const ww_conv2d *conv, int threads, int *bounds)
{
    const ww_conv2d *dw = conv->consumer;
    if (!split_like_depthwise_suits(conv, dw, threads) || conv->m < KSPLIT_MIN_K_PER_M * conv->k ||
        dw->shape.in_c != conv->shape.out_c || dw->shape.out_c != dw->shape.in_c)
        return 0;
    return dw_channel_bounds(dw, threads, conv->kern->mr, bounds);
}

int ww_conv2d_set_side_fetch(ww_conv2d *conv, const void *at, size_t bytes)
{
    conv->side_fetch = NULL;
    conv->side_fetch_lines = 0;
    if (conv->algo != CONV_GEMM_1X1 || conv->n == 1 || !at || bytes == 0) return 0;
    /* whole lines, from the one holding the first byte to the one holding the last */
    uintptr_t first = (uintptr_t)at & ~(uintptr_t)63;
    uintptr_t end = ((uintptr_t)at + bytes + 63) & ~(uintptr_t)63;
    conv->side_fetch = (const char *)first;
    conv->side_fetch_lines = (size_t)(end - first) / 64;
    return 1;
}

void ww_conv2d_set_input_producer(ww_conv2d *conv, const ww_conv2d *producer)
{
    conv->producer = producer;
}

void ww_conv2d_set_output_consumer(ww_conv2d *conv, const ww_conv2d *consumer)
{
    conv->consumer = consumer;
}

int ww_conv2d_splits_m(const ww_conv2d *conv, int threads)
{
    int bounds[KSPLIT_MAX_THREADS + 1];
    return msplit_bounds(conv, threads, bounds);
}

int ww_conv2d_splits_k(const ww_conv2d *conv, int threads)
{
    int bounds[KSPLIT_MAX_THREADS + 1];
    return ksplit_bounds(conv, threads, bounds);
}

/* Floats of one thread's partial product (64-byte aligned). */
static size_t ksplit_partial_floats(const ww_conv2d *conv)
{
    return ((size_t)conv->m * conv->n + 15) / 16 * 16;
}

/* Scratch of a K-split run past the GEMM's own: every thread's partial. */
static size_t ksplit_scratch_floats(const ww_conv2d *conv, int threads)
{
    return ww_conv2d_splits_k(conv, threads) ? (size_t)threads * ksplit_partial_floats(conv) + 16
                                             : 0;
}

typedef struct ksplit_ctx {
    const gemm_ctx *gemm; /* planned for one thread: every job is all rows */
    int threads;
    int bounds[KSPLIT_MAX_THREADS + 1];
    float *partials; /* thread t's at partials + t * ksplit_partial_floats */
} ksplit_ctx;

/* Slot t: all rows and columns over input channels bounds[t] .. bounds[t + 1]. */
static void ksplit_slots(void *p, int begin, int end)
{
    const ksplit_ctx *ks = p;
    const gemm_ctx *ctx = ks->gemm;
    const gemm_plan *plan = &ctx->plan;
    size_t partial = ksplit_partial_floats(ctx->conv);
    for (int t = begin; t < end; t++) {
        float *panels = ww_align64(ctx->scratch + (size_t)t * plan->slot_floats);
        gemm_kpart kp = {ks->bounds[t], ks->bounds[t + 1], ks->partials + (size_t)t * partial};
        for (int b = 0; b < plan->n_blocks; b++) {
            int p_begin = (int)((long long)plan->n_panels * b / plan->n_blocks);
            int p_end = (int)((long long)plan->n_panels * (b + 1) / plan->n_blocks);
            conv_gemm_job(ctx, NULL, panels, 0, p_begin, p_end, 0, ctx->conv->m, &kp,
                          (gemm_fetch){0, 0});
        }
    }
}

#if WW_HAVE_X86
/* o = (sum of the `parts` partial rows q[t * stride]) + bias + res (res
 * may be NULL), n floats. */
__attribute__((target("avx512f"))) static void ksplit_add_row_avx512(float *o, const float *q,
                                                                     size_t stride, int parts,
                                                                     float bias, const float *res,
                                                                     size_t n)
{
    __m512 b = _mm512_set1_ps(bias);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 x = _mm512_maskz_loadu_ps(m, q + i);
        for (int t = 1; t < parts; t++)
            x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, q + (size_t)t * stride + i));
        x = _mm512_add_ps(x, b);
        if (res) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, res + i));
        _mm512_mask_storeu_ps(o + i, m, x);
    }
}
#endif

/* Part i of the rows: the sum of the partials, plus bias and residual,
 * activated, into the output. */
static void ksplit_reduce(void *p, int begin, int end)
{
    const ksplit_ctx *ks = p;
    const gemm_ctx *ctx = ks->gemm;
    const ww_conv2d *conv = ctx->conv;
    size_t n = (size_t)conv->n, partial = ksplit_partial_floats(conv);
    for (int part = begin; part < end; part++) {
        int r0 = (int)((long long)conv->m * part / ks->threads);
        int r1 = (int)((long long)conv->m * (part + 1) / ks->threads);
        for (int r = r0; r < r1; r++) {
            float *o = ctx->out + (size_t)r * n;
            const float *first = ks->partials + (size_t)r * n;
            float bias = conv->bias ? conv->bias[r] : 0.0f;
            const float *res_row = ctx->residual ? ctx->residual + (size_t)r * n : NULL;
#if WW_HAVE_X86
            ksplit_add_row_avx512(o, first, partial, ks->threads, bias, res_row, n);
#else
            (void)first;
            (void)partial;
            (void)bias;
            (void)res_row;
#endif
            if (conv->act != WW_ACT_NONE)
                for (size_t i = 0; i < n; i++)
                    o[i] = ww_activate(o[i], conv->act);
        }
    }
}

/* The K-split run of a 1x1 conv (ksplit_bounds said yes): `ctx` is the
 * GEMM's context with its plan for one thread and its scratch. */
static void ksplit_run(gemm_ctx *ctx, const int *bounds, int threads, ww_threadpool *pool)
{
    ksplit_ctx ks = {.gemm = ctx, .threads = threads};
    for (int t = 0; t <= threads; t++)
        ks.bounds[t] = bounds[t];
    ks.partials = ww_align64(ctx->scratch + (size_t)threads * ctx->plan.slot_floats);
    ww_parallel_for(pool, threads, ksplit_slots, &ks);
    ww_parallel_for(pool, threads, ksplit_reduce, &ks);
}

static size_t conv_scratch_floats(const ww_conv2d *conv, int threads, size_t area_floats)
{
    /* One slot per thread (runs use at most that many), so the size only
     * grows with the thread count. */
    size_t slots = (size_t)(threads > 1 ? threads : 1);
    if (conv->algo == CONV_DEPTHWISE) /* + the sums of ww_conv2d_run_means */
        return slots * depthwise_slot_floats(conv) +
               (conv->depthwise_direct ? slots * (size_t)conv->shape.out_c + 16 : 0);
    if (conv->algo == CONV_WINOGRAD)
        return ww_winograd_scratch_floats_areas(conv->winograd, threads, area_floats);
    if (conv->algo == CONV_DIRECT)
        return ww_conv_direct_scratch_floats(conv->direct, threads, area_floats);
    if (conv->algo == CONV_STEM) return ww_conv_stem_scratch_floats(conv->stem, threads);
    /* a phase-split copy per slot when rows are split (ww_conv2d_run) */
    return slots * (phased_floats(conv) + gemm_slot_floats(conv)) + scaled_a_floats(conv) +
           ksplit_scratch_floats(conv, threads);
}

static void conv_run(const ww_conv2d *conv, const float *in, const float *in_scale,
                     const float *residual, float *out, float *scratch, ww_threadpool *pool);

void ww_conv2d_run(const ww_conv2d *conv, const float *in, const float *residual, float *out,
                   float *scratch, ww_threadpool *pool)
{
    if (conv->pooled == POOL_DIRECT) {
        ww_conv_direct_run_pooled(conv->direct, &conv->pool, in, conv->act, out, scratch, pool);
        return;
    }
    if (conv->pooled == POOL_AFTER) {
        float *full = ww_align64(scratch);
        conv_run(conv, in, NULL, residual, full, full + (size_t)conv->shape.out_c * conv->n, pool);
        ww_maxpool2d_isa(conv->kern ? conv->kern->isa : WW_ISA_AUTO, &conv->pool, full, out, pool);
        return;
    }
    conv_run(conv, in, NULL, residual, out, scratch, pool);
}

int ww_conv2d_shape_takes_in_scale(const ww_conv2d_shape *s)
{
    return s->kernel_h == 1 && s->kernel_w == 1 && s->stride_h == 1 && s->stride_w == 1 &&
           s->pad_top == 0 && s->pad_left == 0 && s->pad_bottom == 0 && s->pad_right == 0 &&
           s->groups == 1 && (long long)s->out_h * s->out_w > 1;
}

void ww_conv2d_run_scaled(const ww_conv2d *conv, const float *in, const float *in_scale,
                          const float *residual, float *out, float *scratch, ww_threadpool *pool)
{
    if (!in_scale) {
        ww_conv2d_run(conv, in, residual, out, scratch, pool);
        return;
    }
    /* the shapes ww_conv2d_shape_takes_in_scale accepts all take this path */
    assert(conv->algo == CONV_GEMM_1X1 && conv->n > 1 && conv->pooled == POOL_NONE);
    conv_run(conv, in, in_scale, residual, out, scratch, pool);
}

/* A depthwise conv. With `sums` (direct kernel only; scratch the depthwise
 * path does not use), also the sums of each band's activated outputs per
 * channel (depthwise_ctx.sums); returns the bands, or 0 when it did not
 * sum. */
static int depthwise_run(const ww_conv2d *conv, const float *in, const float *residual, float *out,
                         float *scratch, float *sums, ww_threadpool *pool)
{
    depthwise_ctx ctx = {.conv = conv,
                         .in = in,
                         .residual = residual,
                         .out = out,
                         .scratch = scratch,
                         .bands = 1,
                         .threads = ww_threadpool_size(pool)};
#if WW_HAVE_X86
    if (conv->depthwise_direct) {
        /* No per-thread scratch: every channel (or pair) of a band is a
         * unit the pool hands out in chunks as threads come free, so a
         * slower or descheduled core (this VM's second vCPU runs ~30 %
         * slower) does not hold the layer back by a whole equal share.
         * Bands outermost: thread t's share is band t. */
        int step = conv->depthwise_direct_pair ? 2 : 1;
        ctx.bands = dwd_bands(&conv->shape, ww_threadpool_size(pool));
        ctx.slots = (conv->shape.out_c + step - 1) / step * ctx.bands;
        ctx.sums = sums;
        ww_parallel_for(pool, ctx.slots, depthwise_slots_run, &ctx);
        return sums ? ctx.bands : 0;
    }
#endif
    (void)sums;
    ctx.slots = depthwise_slots(conv, ww_threadpool_size(pool));
    ww_parallel_for(pool, ctx.slots, depthwise_slots_run, &ctx);
    return 0;
}

void ww_conv2d_run_means(const ww_conv2d *conv, const float *in, const float *residual, float *out,
                         float *means, float *scratch, ww_threadpool *pool)
{
    assert(conv->pooled == POOL_NONE);
    int channels = conv->shape.out_c;
    size_t plane = (size_t)conv->shape.out_h * conv->shape.out_w;
    if (conv->algo == CONV_DEPTHWISE && conv->depthwise_direct) {
        /* the sums sit past what the depthwise path uses of the scratch */
        float *sums =
            ww_align64(scratch + (size_t)ww_threadpool_size(pool) * depthwise_slot_floats(conv));
        int bands = depthwise_run(conv, in, residual, out, scratch, sums, pool);
        if (bands > 0) {
            for (int c = 0; c < channels; c++) {
                float total = 0.0f;
                for (int b = 0; b < bands; b++)
                    total += sums[(size_t)b * channels + c];
                means[c] = total / (float)plane;
            }
            return;
        }
    } else {
        conv_run(conv, in, NULL, residual, out, scratch, pool);
    }
    ww_global_avgpool(channels, (int)plane, out, means, pool);
}

static void conv_run(const ww_conv2d *conv, const float *in, const float *in_scale,
                     const float *residual, float *out, float *scratch, ww_threadpool *pool)
{
    if (conv->algo == CONV_DEPTHWISE) {
        depthwise_run(conv, in, residual, out, scratch, NULL, pool);
        return;
    }
    if (conv->algo == CONV_WINOGRAD) {
        ww_winograd_run(conv->winograd, in, conv->bias, residual, conv->act, out, scratch, pool);
        return;
    }
    if (conv->algo == CONV_DIRECT) {
        ww_conv_direct_run(conv->direct, in, residual, conv->act, out, scratch, pool);
        return;
    }
    if (conv->algo == CONV_STEM) {
        ww_conv_stem_run(conv->stem, in, residual, conv->act, out, scratch, pool);
        return;
    }
    if (conv->algo == CONV_GEMM_1X1 && conv->n == 1) {
        int threads = ww_threadpool_size(pool);
        int m_panels = (conv->m + conv->kern->mr - 1) / conv->kern->mr;
        gemv_ctx g = {conv, in, residual, out, 1};
        if (conv->shape.groups < threads) g.chunks = m_panels < threads ? m_panels : threads;
        ww_parallel_for(pool, conv->shape.groups * g.chunks, conv_gemv_chunks, &g);
        return;
    }
    gemm_ctx ctx = {.conv = conv,
                    .in = in,
                    .in_scale = in_scale,
                    .residual = residual,
                    .out = out,
                    .scratch = scratch,
                    .weight = conv->weight};
    ctx.plan = plan_gemm(conv, ww_threadpool_size(pool),
                         conv->algo != CONV_GEMM_1X1 || (in_scale && !scales_weights(conv)));
    if (in_scale && scales_weights(conv)) {
        scale_a_ctx sa = {conv, in_scale, ww_align64(scratch)};
        ww_parallel_for(pool, (conv->m + conv->kern->mr - 1) / conv->kern->mr, scale_a_panels, &sa);
        ctx.weight = sa.scaled;
        ctx.in_scale = NULL; /* in the weights now */
        ctx.scratch = scratch + scaled_a_floats(conv);
    }
    int bounds[KSPLIT_MAX_THREADS + 1];
    int threads = ww_threadpool_size(pool);
    if (!ctx.in_scale && ksplit_bounds(conv, threads, bounds)) {
        ctx.plan = plan_gemm(conv, 1, 0);
        ksplit_run(&ctx, bounds, threads, pool);
        return;
    }
    if (!ctx.in_scale && msplit_bounds(conv, threads, bounds)) {
        /* one job per thread: all columns of its rows */
        ctx.plan = plan_gemm(conv, 1, 0);
        ctx.plan.n_blocks = 1;
        ctx.plan.m_chunks = threads;
        ctx.plan.jobs = threads;
        ctx.plan.slots = threads;
        ctx.plan.m_split = 1;
        for (int t = 0; t <= threads; t++)
            ctx.plan.m_bounds[t] = bounds[t];
    }
    if (im2col_phased(conv) && ctx.plan.m_chunks > 1) {
        /* Rows split (small maps): every thread packs every column panel
         * from the whole input, so each makes its own phase-split copy
         * rather than read half of a shared one from the other core's
         * cache (~240 ns per line between this VM's vCPUs). */
        ctx.phased_slots = scratch;
        ctx.scratch = scratch + (size_t)ctx.plan.slots * phased_floats(conv);
    } else if (im2col_phased(conv)) {
        phased_layout l = phased_layout_of(&conv->shape);
        phased_ctx ph = {.shape = &conv->shape,
                         .layout = l,
                         .in = in,
                         .phased = ww_align64(scratch),
                         .avx512 = conv->kern->isa == WW_ISA_AVX512,
                         .row_end = l.rows};
        if (ctx.plan.slots > 1 && conv->shape.groups == 1) {
            phased_rows_ctx pr = {.ph = ph};
            phased_row_bounds(conv, &ctx.plan, pr.bounds);
            ww_parallel_for(pool, ctx.plan.slots, phased_row_slots, &pr);
        } else {
            ww_parallel_for(pool, conv->shape.in_c, phased_channels, &ph);
        }
        ctx.phased = ph.phased;
        ctx.scratch = scratch + phased_floats(conv);
    }
    ww_shares_init(&ctx.jobs, ctx.plan.jobs, ctx.plan.slots);
    ww_parallel_for(pool, ctx.plan.slots, conv_gemm_slots, &ctx);
}
