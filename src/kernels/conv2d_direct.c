/* Direct convolution, output channels in the vector lanes; see
 * conv2d_direct.h. */
#include "kernels/conv2d_direct.h"

#include "core/prefault.h"
#include "kernels/gemm.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define WW_HAVE_X86 1
#include <immintrin.h>
#else
#define WW_HAVE_X86 0
#endif

#define DIRECT_LANES 16 /* output channels per block (one AVX-512 vector) */
#define DIRECT_OB 4     /* blocks per group: 64 output channels */
#define DIRECT_P                                                                                   \
    6 /* output pixels per tile: 6 x 4 accumulators, 4 weights and a broadcast in 32 registers */
#define DIRECT_MAX_SLOTS 256 /* the thread pool's limit */
/* Weights of one input-channel block: stay in L1 while every tile of an
 * output row uses them (the whole group's can be megabytes). */
#define DIRECT_BLOCK_WEIGHT_BYTES (24 * 1024)

struct ww_conv_direct {
    ww_conv2d_shape s;
    int k;        /* in_c * kernel_h * kernel_w */
    int blocks;   /* 16-channel output blocks */
    int n_groups; /* groups of up to DIRECT_OB blocks */
    float *w;     /* [group][k][blocks in group][16] */
    float *bias;  /* blocks * 16, zero past out_c */
    int arena_owned;
};

int ww_conv_direct_suits(const ww_conv2d_shape *s, ww_isa isa)
{
    return WW_HAVE_X86 && isa == WW_ISA_AVX512 && s->groups == 1 && s->dilation_h == 1 &&
           s->dilation_w == 1 && (s->stride_h >= 2 || s->stride_w >= 2) &&
           (long long)s->in_c * s->kernel_h * s->kernel_w >= WW_CONV_DIRECT_MIN_K;
}

ww_conv_direct *ww_conv_direct_create(const ww_conv2d_shape *s, const float *weight,
                                      const float *bias, ww_arena *arena)
{
    ww_conv_direct *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->s = *s;
    d->k = s->in_c * s->kernel_h * s->kernel_w;
    d->blocks = (s->out_c + DIRECT_LANES - 1) / DIRECT_LANES;
    d->n_groups = (d->blocks + DIRECT_OB - 1) / DIRECT_OB;
    d->arena_owned = arena != NULL;
    size_t floats = (size_t)d->blocks * DIRECT_LANES * d->k;
    size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
    d->w = arena ? ww_arena_alloc(arena, bytes) : ww_alloc_prefaulted(bytes);
    d->bias = calloc((size_t)d->blocks * DIRECT_LANES, sizeof(float));
    if (!d->w || !d->bias) {
        ww_conv_direct_free(d);
        return NULL;
    }
    if (bias) memcpy(d->bias, bias, (size_t)s->out_c * sizeof(float));
    for (int g = 0; g < d->n_groups; g++) {
        int b0 = g * DIRECT_OB;
        int nb = d->blocks - b0 < DIRECT_OB ? d->blocks - b0 : DIRECT_OB;
        float *wg = d->w + (size_t)b0 * DIRECT_LANES * d->k;
        for (int kk = 0; kk < d->k; kk++)
            for (int b = 0; b < nb; b++)
                for (int l = 0; l < DIRECT_LANES; l++) {
                    int oc = (b0 + b) * DIRECT_LANES + l;
                    wg[((size_t)kk * nb + b) * DIRECT_LANES + l] =
                        oc < s->out_c ? weight[(size_t)oc * d->k + kk] : 0.0f;
                }
    }
    return d;
}

void ww_conv_direct_free(ww_conv_direct *d)
{
    if (!d) return;
    if (!d->arena_owned) free(d->w);
    free(d->bias);
    free(d);
}

/* Input channels per block (see DIRECT_BLOCK_WEIGHT_BYTES). */
static int direct_channel_block(const ww_conv2d_shape *s)
{
    size_t per_channel =
        (size_t)s->kernel_h * s->kernel_w * DIRECT_OB * DIRECT_LANES * sizeof(float);
    size_t cb = DIRECT_BLOCK_WEIGHT_BYTES / per_channel;
    if (cb < 1) cb = 1;
    return cb < (size_t)s->in_c ? (int)cb : s->in_c;
}

/* Bytes of one unit's sums (a band of output rows): stay in L2 beside a
 * channel block's weights while every block adds to them. */
#define DIRECT_BAND_BYTES (64 * 1024)

/* Output rows per unit: each channel block's weights are read once per
 * band, so a small map (ResNet's 7x7 and 14x14) is one band and its
 * weights, which come from memory, are read once per run. */
static int direct_band_rows(const ww_conv2d_shape *s)
{
    size_t row_bytes = (size_t)s->out_w * DIRECT_OB * DIRECT_LANES * sizeof(float);
    size_t rows = DIRECT_BAND_BYTES / row_bytes;
    if (rows < 1) rows = 1;
    return rows < (size_t)s->out_h ? (int)rows : s->out_h;
}

/* Floats of one unit's sums, pixel-major: [row][x][block][16]. */
static size_t direct_band_floats(const ww_conv2d_shape *s)
{
    /* +16: room to align to 64 bytes */
    return (size_t)direct_band_rows(s) * s->out_w * DIRECT_OB * DIRECT_LANES + 16;
}

size_t ww_conv_direct_scratch_floats(const ww_conv_direct *d, int threads)
{
    size_t slots = (size_t)(threads > 1 ? threads : 1);
    return slots * direct_band_floats(&d->s);
}

#if WW_HAVE_X86
/* One tile: P pixels (sx apart in `base`'s rows) x NB blocks of output
 * channels, over nc input channels (cs apart in base, wcs in w), nky
 * kernel rows (rs, wrs) and nkx kernel columns (NB * 16 floats apart in
 * w): the taps inside the input. The sums start at the bias (init) or at
 * tmp[p][b][16] (NULL) and end in tmp. */
static inline __attribute__((always_inline, target("avx512f"))) void
direct_tile_body(const float *w, const float *init, const float *base, size_t cs, size_t rs, int sx,
                 int nc, int nky, int nkx, size_t wcs, size_t wrs, float *tmp, const int P,
                 const int NB)
{
    __m512 acc[DIRECT_P][DIRECT_OB];
#pragma GCC unroll 4
    for (int b = 0; b < NB; b++) {
#pragma GCC unroll 6
        for (int p = 0; p < P; p++)
            acc[p][b] = init ? _mm512_loadu_ps(init + b * DIRECT_LANES)
                             : _mm512_load_ps(tmp + ((size_t)p * DIRECT_OB + b) * DIRECT_LANES);
    }
    for (int c = 0; c < nc; c++)
        for (int ky = 0; ky < nky; ky++) {
            const float *x = base + (size_t)c * cs + (size_t)ky * rs;
            const float *wp = w + (size_t)c * wcs + (size_t)ky * wrs;
            for (int kx = 0; kx < nkx; kx++, x++, wp += NB * DIRECT_LANES) {
                __m512 wv[DIRECT_OB];
#pragma GCC unroll 4
                for (int b = 0; b < NB; b++)
                    wv[b] = _mm512_loadu_ps(wp + b * DIRECT_LANES);
#pragma GCC unroll 6
                for (int p = 0; p < P; p++) {
                    __m512 xv = _mm512_set1_ps(x[p * sx]);
#pragma GCC unroll 4
                    for (int b = 0; b < NB; b++)
                        acc[p][b] = _mm512_fmadd_ps(xv, wv[b], acc[p][b]);
                }
            }
        }
#pragma GCC unroll 6
    for (int p = 0; p < P; p++)
#pragma GCC unroll 4
        for (int b = 0; b < NB; b++)
            _mm512_store_ps(tmp + ((size_t)p * DIRECT_OB + b) * DIRECT_LANES, acc[p][b]);
}

typedef void (*direct_tile_fn)(const float *w, const float *init, const float *base, size_t cs,
                               size_t rs, int sx, int nc, int nky, int nkx, size_t wcs, size_t wrs,
                               float *tmp);

#define DIRECT_TILE(P, NB)                                                                         \
    static __attribute__((target("avx512f"))) void direct_tile_##P##_##NB(                         \
        const float *w, const float *init, const float *base, size_t cs, size_t rs, int sx,        \
        int nc, int nky, int nkx, size_t wcs, size_t wrs, float *tmp)                              \
    {                                                                                              \
        direct_tile_body(w, init, base, cs, rs, sx, nc, nky, nkx, wcs, wrs, tmp, P, NB);           \
    }
#define DIRECT_TILES(P) DIRECT_TILE(P, 1) DIRECT_TILE(P, 2) DIRECT_TILE(P, 3) DIRECT_TILE(P, 4)
DIRECT_TILES(1)
DIRECT_TILES(2)
DIRECT_TILES(3)
DIRECT_TILES(4)
DIRECT_TILES(5)
DIRECT_TILES(6)
#define DIRECT_ROW(P)                                                                              \
    {                                                                                              \
        direct_tile_##P##_1, direct_tile_##P##_2, direct_tile_##P##_3, direct_tile_##P##_4         \
    }
static const direct_tile_fn direct_tiles[DIRECT_P][DIRECT_OB] = {
    DIRECT_ROW(1), DIRECT_ROW(2), DIRECT_ROW(3), DIRECT_ROW(4), DIRECT_ROW(5), DIRECT_ROW(6)};
#endif

typedef struct direct_ctx {
    const ww_conv_direct *d;
    const float *in, *residual;
    ww_activation act;
    float *out, *scratch;
    int slots, units;
    /* Next unclaimed unit of each slot's contiguous share. */
    atomic_int next_unit[DIRECT_MAX_SLOTS];
} direct_ctx;

/* Kernel taps [*k0, *k1) of an output position whose first tap is at
 * input index i0, for an input of n. */
static void direct_taps(int i0, int k, int n, int *k0, int *k1)
{
    *k0 = i0 < 0 ? -i0 : 0;
    *k1 = n - i0 < k ? n - i0 : k;
    if (*k1 < *k0) *k1 = *k0;
}

#if WW_HAVE_X86
/* r[k] = column k of the 16 x 16 matrix whose rows are r[0..15]. */
static inline __attribute__((always_inline, target("avx512f"))) void
direct_transpose16(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4)
        for (int j = 0; j < 2; j++) {
            __m512d lo = _mm512_castps_pd(t[i + j]), hi = _mm512_castps_pd(t[i + j + 2]);
            r[i + 2 * j] = _mm512_castpd_ps(_mm512_unpacklo_pd(lo, hi));
            r[i + 2 * j + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(lo, hi));
        }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
    }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
}

/* A band of output rows of group g: pixels whose taps all lie inside the
 * row run in tiles of DIRECT_P; the border pixels one at a time over the
 * taps inside the input (no padded copy). Channel blocks outermost, so a
 * block's weights stay in L1 for the whole band. Then the band's sums are
 * gathered into NCHW with the residual and activation. */
static __attribute__((target("avx512f"))) void direct_unit(const direct_ctx *ctx, int unit,
                                                           float *sums)
{
    const ww_conv_direct *d = ctx->d;
    const ww_conv2d_shape *s = &d->s;
    int band = direct_band_rows(s), bands = (s->out_h + band - 1) / band;
    int g = unit / bands, y_begin = unit % bands * band;
    int y_end = y_begin + band < s->out_h ? y_begin + band : s->out_h;
    int b0 = g * DIRECT_OB;
    int nb = d->blocks - b0 < DIRECT_OB ? d->blocks - b0 : DIRECT_OB;
    const float *wg = d->w + (size_t)b0 * DIRECT_LANES * d->k;
    const float *bias = d->bias + (size_t)b0 * DIRECT_LANES;
    int sx = s->stride_w;
    size_t plane = (size_t)s->out_h * s->out_w, in_plane = (size_t)s->in_h * s->in_w;
    size_t wrs = (size_t)s->kernel_w * nb * DIRECT_LANES, wcs = (size_t)s->kernel_h * wrs;
    /* pixels [xi0, xi1) have every kernel column inside the row */
    int xi0 = s->pad_left > 0 ? (s->pad_left + sx - 1) / sx : 0;
    int xi1 = s->in_w - s->kernel_w + s->pad_left >= 0
                  ? (s->in_w - s->kernel_w + s->pad_left) / sx + 1
                  : 0;
    if (xi1 > s->out_w) xi1 = s->out_w;
    if (xi0 > xi1) xi0 = xi1;
    int cb = direct_channel_block(s);
    size_t px_floats = (size_t)DIRECT_OB * DIRECT_LANES, row_floats = (size_t)s->out_w * px_floats;
    for (int c0 = 0; c0 < s->in_c; c0 += cb) {
        int nc = s->in_c - c0 < cb ? s->in_c - c0 : cb;
        const float *init = c0 == 0 ? bias : NULL;
        /* The next block's weights (contiguous after this one's) are
         * fetched into L2 a share per row, so reading them from memory
         * overlaps this block's work. */
        const char *next = (const char *)(wg + (size_t)(c0 + nc) * wcs);
        size_t next_bytes =
            c0 + nc < s->in_c
                ? (size_t)(s->in_c - c0 - nc < cb ? s->in_c - c0 - nc : cb) * wcs * sizeof(float)
                : 0;
        size_t share = (next_bytes / (size_t)(y_end - y_begin) + 63) / 64 * 64;
        for (int y = y_begin; y < y_end; y++) {
            size_t ahead = (size_t)(y - y_begin) * share;
            for (size_t o = ahead; o < ahead + share && o < next_bytes; o += 64)
                __builtin_prefetch(next + o, 0, 2);
            float *row_sums = sums + (size_t)(y - y_begin) * row_floats;
            int iy0 = y * s->stride_h - s->pad_top, ky0, ky1;
            direct_taps(iy0, s->kernel_h, s->in_h, &ky0, &ky1);
            if (ky1 == ky0) ky0 = ky1 = 0; /* a row all in padding: the bias alone */
            const float *wc = wg + (size_t)c0 * wcs + (size_t)ky0 * wrs;
            const float *in_c0 =
                ky1 > ky0 ? ctx->in + (size_t)c0 * in_plane + (size_t)(iy0 + ky0) * s->in_w
                          : ctx->in;
            for (int x = 0; x < s->out_w;) {
                int ix0 = x * sx - s->pad_left;
                if (x >= xi0 && x < xi1) { /* a tile of whole windows */
                    int P = xi1 - x < DIRECT_P ? xi1 - x : DIRECT_P;
                    direct_tiles[P - 1][nb - 1](wc, init, in_c0 + ix0, in_plane, (size_t)s->in_w,
                                                sx, nc, ky1 - ky0, s->kernel_w, wcs, wrs,
                                                row_sums + (size_t)x * px_floats);
                    x += P;
                    continue;
                }
                int kx0, kx1;
                direct_taps(ix0, s->kernel_w, s->in_w, &kx0, &kx1);
                if (kx1 == kx0 || ky1 == ky0) kx0 = kx1 = 0; /* all in padding */
                direct_tiles[0][nb - 1](wc + (size_t)kx0 * nb * DIRECT_LANES, init,
                                        kx1 > kx0 ? in_c0 + ix0 + kx0 : ctx->in, in_plane,
                                        (size_t)s->in_w, sx, nc, ky1 - ky0, kx1 - kx0, wcs, wrs,
                                        row_sums + (size_t)x * px_floats);
                x++;
            }
        }
    }
    /* Into NCHW: per 16 pixels and block, a 16 x 16 transpose of
     * sums[x][b][lane] gives each output channel's 16 pixels. The
     * piecewise-linear activations are applied here, the others per row
     * after. */
    ww_activation act = ctx->act;
    int inline_act = act == WW_ACT_NONE || act == WW_ACT_RELU || act == WW_ACT_RELU6;
    const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
    for (int y = y_begin; y < y_end; y++) {
        const float *row_sums = sums + (size_t)(y - y_begin) * row_floats;
        for (int x = 0; x < s->out_w; x += 16) {
            int npx = s->out_w - x < 16 ? s->out_w - x : 16;
            __mmask16 m = (__mmask16)((1u << npx) - 1);
            for (int b = 0; b < nb; b++) {
                __m512 r[16];
                for (int i = 0; i < 16; i++)
                    r[i] = i < npx ? _mm512_load_ps(row_sums + (size_t)(x + i) * px_floats +
                                                    (size_t)b * DIRECT_LANES)
                                   : zero;
                direct_transpose16(r);
                int oc_b = (b0 + b) * DIRECT_LANES;
                int lanes = s->out_c - oc_b < DIRECT_LANES ? s->out_c - oc_b : DIRECT_LANES;
                for (int l = 0; l < lanes; l++) {
                    size_t at = (size_t)(oc_b + l) * plane + (size_t)y * s->out_w + x;
                    __m512 v = r[l];
                    if (ctx->residual)
                        v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, ctx->residual + at));
                    if (act == WW_ACT_RELU) v = _mm512_max_ps(v, zero);
                    if (act == WW_ACT_RELU6) v = _mm512_min_ps(_mm512_max_ps(v, zero), six);
                    _mm512_mask_storeu_ps(ctx->out + at, m, v);
                }
            }
        }
    }
    if (!inline_act) {
        int oc0 = b0 * DIRECT_LANES;
        int oc1 = oc0 + nb * DIRECT_LANES < s->out_c ? oc0 + nb * DIRECT_LANES : s->out_c;
        for (int oc = oc0; oc < oc1; oc++)
            for (int y = y_begin; y < y_end; y++) {
                float *o = ctx->out + (size_t)oc * plane + (size_t)y * s->out_w;
                ww_activate_array_isa(WW_ISA_AVX512, (size_t)s->out_w, o, act, o, NULL);
            }
    }
}
#endif

static void direct_share(const direct_ctx *ctx, int slot, int *first, int *last)
{
    *first = (int)((long long)ctx->units * slot / ctx->slots);
    *last = (int)((long long)ctx->units * (slot + 1) / ctx->slots);
}

/* Slot i owns a contiguous share of the units (group-major, so a thread
 * keeps to its own output channels' weights), then takes unclaimed units
 * of the other shares. */
static void direct_slots(void *p, int begin, int end)
{
    direct_ctx *ctx = p;
    const ww_conv2d_shape *s = &ctx->d->s;
    for (int slot = begin; slot < end; slot++) {
        float *sums = ww_align64(ctx->scratch + (size_t)slot * direct_band_floats(s));
        for (int i = 0; i < ctx->slots; i++) {
            int victim = (slot + i) % ctx->slots, first, last;
            direct_share(ctx, victim, &first, &last);
            for (;;) {
                int unit =
                    atomic_fetch_add_explicit(&ctx->next_unit[victim], 1, memory_order_relaxed);
                if (unit >= last) break;
#if WW_HAVE_X86
                direct_unit(ctx, unit, sums);
#else
                (void)sums;
#endif
            }
        }
    }
}

void ww_conv_direct_run(const ww_conv_direct *d, const float *in, const float *residual,
                        ww_activation act, float *out, float *scratch, ww_threadpool *pool)
{
    direct_ctx ctx = {
        .d = d, .in = in, .residual = residual, .act = act, .out = out, .scratch = scratch};
    int band = direct_band_rows(&d->s);
    ctx.units = d->n_groups * ((d->s.out_h + band - 1) / band);
    int threads = ww_threadpool_size(pool);
    ctx.slots = threads < ctx.units ? threads : ctx.units;
    if (ctx.slots > DIRECT_MAX_SLOTS) ctx.slots = DIRECT_MAX_SLOTS;
    for (int slot = 0; slot < ctx.slots; slot++) {
        int first, last;
        direct_share(&ctx, slot, &first, &last);
        atomic_init(&ctx.next_unit[slot], first);
    }
    ww_parallel_for(pool, ctx.slots, direct_slots, &ctx);
}
