/* Direct convolution, output channels in the vector lanes; see
 * conv2d_direct.h. */
#include "kernels/conv2d_direct.h"

#include "core/arena.h"
#include "core/prefault.h"
#include "kernels/gemm.h"

#include <math.h>
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
/* Output pixels per tile: 6 x 4 accumulators, 4 weights and a broadcast
 * fit the 32 registers (7 x 4 spilled one). */
#define DIRECT_P 6
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
    if (ww_arena_prefilled(arena)) return d; /* packed by an earlier load */
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

/* Weights up to this size are split by output rows between threads:
 * each thread reads all of them, but only its own rows of the input,
 * which the layer before wrote on the same core (Winograd's tiles, the
 * pooled stem's rows), and it writes the rows the next layer reads
 * there. Split by groups instead, half of every input row is read from
 * the other core (~240 ns per cache line between this VM's vCPUs). At 2
 * threads, alone (input written by neither thread, so not that effect
 * alone): 128 -> 256 @28 0.385 -> 0.300 ms, 64 -> 128 @56 unchanged;
 * ResNet-18 A/B 0.979-0.986. Above it (256 -> 512 @14, 4.7 MB) both
 * threads would stream every weight from memory: ResNet-18 1.000-1.014
 * with no limit. */
#define DIRECT_ROW_SPLIT_MAX_WEIGHT_BYTES ((size_t)2 << 20)

/* Floats of one unit's sums, pixel-major: [row][x][block][16]. */
static size_t direct_band_floats(const ww_conv2d_shape *s)
{
    /* +16: room to align to 64 bytes */
    return (size_t)direct_band_rows(s) * s->out_w * DIRECT_OB * DIRECT_LANES + 16;
}

/* Scratch of `slots` work areas of own_floats each, area_floats apart
 * when that is more. */
static size_t direct_areas_floats(int threads, size_t own_floats, size_t area_floats)
{
    size_t slots = (size_t)(threads > 1 ? threads : 1);
    return slots * (area_floats > own_floats ? area_floats : own_floats);
}

size_t ww_conv_direct_scratch_floats(const ww_conv_direct *d, int threads, size_t area_floats)
{
    return direct_areas_floats(threads, direct_band_floats(&d->s), area_floats);
}

size_t ww_conv_direct_area_floats(const ww_conv_direct *d)
{
    return direct_band_floats(&d->s);
}

/* Pooled rows per unit of the pooled path (see direct_unit_pooled). */
#define DIRECT_POOL_BAND 2

int ww_conv_direct_suits_pooled(const ww_conv2d_shape *s, const ww_pool2d_shape *p,
                                ww_activation act, ww_isa isa)
{
    return WW_HAVE_X86 && isa == WW_ISA_AVX512 && s->groups == 1 && s->dilation_h == 1 &&
           s->dilation_w == 1 &&
           (act == WW_ACT_NONE || act == WW_ACT_RELU || act == WW_ACT_RELU6) &&
           p->channels == s->out_c && p->in_h == s->out_h && p->in_w == s->out_w &&
           p->kernel_h <= DIRECT_POOL_MAX_KERNEL &&
           (long long)s->in_c * s->kernel_h * s->kernel_w <= DIRECT_POOL_MAX_K;
}

/* Floats of one slot of the pooled path: a conv row's sums, the ring of
 * kernel_h rows of horizontal maxima and a pooled row, [x][block][16]. */
static size_t direct_pooled_floats(const ww_conv2d_shape *s, const ww_pool2d_shape *p)
{
    size_t px = (size_t)DIRECT_OB * DIRECT_LANES;
    return (size_t)s->out_w * px + (size_t)(p->kernel_h + 1) * p->out_w * px + 16;
}

size_t ww_conv_direct_pooled_scratch_floats(const ww_conv_direct *d, const ww_pool2d_shape *p,
                                            int threads, size_t area_floats)
{
    return direct_areas_floats(threads, direct_pooled_floats(&d->s, p), area_floats);
}

size_t ww_conv_direct_pooled_area_floats(const ww_conv_direct *d, const ww_pool2d_shape *p)
{
    return direct_pooled_floats(&d->s, p);
}

#if WW_HAVE_X86
/* One tile: P pixels (sx apart in `base`'s rows) x NB blocks of output
 * channels, over nc input channels (cs apart in base, wcs in w), nky
 * kernel rows (rs, wrs) and nkx kernel columns (NB * 16 floats apart in
 * w): the taps inside the input. The sums start at the bias (init) or at
 * tmp[p][b][16] (NULL) and end in tmp. Fetches fetch_lines (at most nc *
 * nky) cache lines from `fetch` into L2, one per kernel row, spread over
 * the work (the next channel block's weights; see direct_unit). */
static inline __attribute__((always_inline, target("avx512f"))) void
direct_tile_body(const float *w, const float *init, const float *base, size_t cs, size_t rs, int sx,
                 int nc, int nky, int nkx, size_t wcs, size_t wrs, float *tmp, size_t tps,
                 const char *fetch, int fetch_lines, const int P, const int NB)
{
    __m512 acc[DIRECT_P][DIRECT_OB];
#pragma GCC unroll 4
    for (int b = 0; b < NB; b++) {
#pragma GCC unroll 6
        for (int p = 0; p < P; p++)
            acc[p][b] = init ? _mm512_loadu_ps(init + b * DIRECT_LANES)
                             : _mm512_load_ps(tmp + (size_t)p * tps + (size_t)b * DIRECT_LANES);
    }
    int fetched = 0;
    for (int c = 0; c < nc; c++)
        for (int ky = 0; ky < nky; ky++) {
            if (fetched < fetch_lines) __builtin_prefetch(fetch + (size_t)fetched++ * 64, 0, 2);
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
            _mm512_store_ps(tmp + (size_t)p * tps + (size_t)b * DIRECT_LANES, acc[p][b]);
}

typedef void (*direct_tile_fn)(const float *w, const float *init, const float *base, size_t cs,
                               size_t rs, int sx, int nc, int nky, int nkx, size_t wcs, size_t wrs,
                               float *tmp, size_t tps, const char *fetch, int fetch_lines);

#define DIRECT_TILE(P, NB)                                                                         \
    static __attribute__((target("avx512f"))) void direct_tile_##P##_##NB(                         \
        const float *w, const float *init, const float *base, size_t cs, size_t rs, int sx,        \
        int nc, int nky, int nkx, size_t wcs, size_t wrs, float *tmp, size_t tps,                  \
        const char *fetch, int fetch_lines)                                                        \
    {                                                                                              \
        direct_tile_body(w, init, base, cs, rs, sx, nc, nky, nkx, wcs, wrs, tmp, tps, fetch,       \
                         fetch_lines, P, NB);                                                      \
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

/* Per-slot state of the pooled path: the last conv row it computed (its
 * horizontal maxima are still in the slot's ring), so a slot running
 * neighbouring units of its share does not compute the shared rows again. */
typedef struct direct_carry {
    int group, row_end; /* rows [.., row_end) of `group` are in the ring; -1: none */
} direct_carry;

typedef struct direct_ctx {
    const ww_conv_direct *d;
    const ww_pool2d_shape *pool; /* pooled path, or NULL */
    const float *in, *residual;
    ww_activation act;
    float *out, *scratch;
    size_t area; /* floats from one slot's work area to the next */
    int slots, units;
    int band_rows, bands; /* output rows per unit; units per group */
    /* Units numbered band by band (each band all groups), so that a
     * slot's share is whole rows; else group by group. */
    int rows_split;
    ww_shares shares; /* the units, a contiguous share per slot */
    direct_carry carry[WW_SHARES_MAX];
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

/* Outputs [*lo, *hi) along one axis (input n, kernel k, padding before
 * it pad, stride st, out outputs) have every tap inside the input: the
 * inner columns of a row, or the inner rows of a map. */
static void direct_inner_range(int n, int k, int pad, int st, int out, int *lo, int *hi)
{
    *lo = pad > 0 ? (pad + st - 1) / st : 0;
    *hi = n - k + pad >= 0 ? (n - k + pad) / st + 1 : 0;
    if (*hi > out) *hi = out;
    if (*lo > *hi) *lo = *hi;
}

/* Adds input channels [c0, c0 + nc) of conv row y, group g, to row_sums
 * ([x][block][16]; starting from `init`, the bias, when not NULL): pixels
 * whose taps all lie inside the row in tiles of up to DIRECT_P, the
 * border pixels one at a time over the taps inside the input (no padded
 * copy), or, with `skip_border` on a row whose kernel rows all lie inside
 * the input, not at all (direct_border_columns does them). The
 * whole-window tiles also fetch fetch_lines cache lines from `fetch` into
 * L2 between them (the rest at the end). */
static __attribute__((target("avx512f"))) void direct_conv_row(const ww_conv_direct *d,
                                                               const float *in, int g, int y,
                                                               int c0, int nc, const float *init,
                                                               float *row_sums, int skip_border,
                                                               const char *fetch, int fetch_lines)
{
    const ww_conv2d_shape *s = &d->s;
    int b0 = g * DIRECT_OB;
    int nb = d->blocks - b0 < DIRECT_OB ? d->blocks - b0 : DIRECT_OB;
    const float *wg = d->w + (size_t)b0 * DIRECT_LANES * d->k;
    int sx = s->stride_w;
    size_t in_plane = (size_t)s->in_h * s->in_w;
    size_t wrs = (size_t)s->kernel_w * nb * DIRECT_LANES, wcs = (size_t)s->kernel_h * wrs;
    size_t px_floats = (size_t)DIRECT_OB * DIRECT_LANES;
    int xi0, xi1;
    direct_inner_range(s->in_w, s->kernel_w, s->pad_left, sx, s->out_w, &xi0, &xi1);
    int iy0 = y * s->stride_h - s->pad_top, ky0, ky1;
    direct_taps(iy0, s->kernel_h, s->in_h, &ky0, &ky1);
    if (ky1 == ky0) ky0 = ky1 = 0; /* a row all in padding: the bias alone */
    if (ky0 > 0 || ky1 < s->kernel_h) skip_border = 0;
    const float *wc = wg + (size_t)c0 * wcs + (size_t)ky0 * wrs;
    const float *in_c0 =
        ky1 > ky0 ? in + (size_t)c0 * in_plane + (size_t)(iy0 + ky0) * s->in_w : in;
    int tiles_left = (xi1 - xi0 + DIRECT_P - 1) / DIRECT_P;
    for (int x = 0; x < s->out_w;) {
        int ix0 = x * sx - s->pad_left;
        if (x >= xi0 && x < xi1) { /* a tile of whole windows */
            /* Whole tiles of DIRECT_P, but a last tile of 1 or 2 pixels
             * (too few accumulators to hide the FMA latency) spread into
             * the others: 13 pixels as 5, 4, 4 rather than 6, 6, 1
             * (128 -> 256 at 28x28: 0.63 -> 0.60 ms). Not when the last
             * is 3 or more: 27 as 6, 6, 5, 5, 5 gained 4 % on one thread
             * but lost 12 % on two (64 -> 128 at 56x56); nor for 1x1
             * kernels, one tap per channel: 7 as 4, 3 took 0.104 ms, as
             * 6, 1 0.093 (ResNet's 256 -> 512 downsample). */
            int inner = xi1 - xi0;
            int P = s->kernel_w > 1 && inner % DIRECT_P != 0 && inner % DIRECT_P < 3
                        ? (xi1 - x + tiles_left - 1) / tiles_left
                        : (xi1 - x < DIRECT_P ? xi1 - x : DIRECT_P);
            int share = fetch_lines > 0 ? (fetch_lines + tiles_left - 1) / tiles_left : 0;
            if (share > nc * (ky1 - ky0)) share = nc * (ky1 - ky0);
            direct_tiles[P - 1][nb - 1](wc, init, in_c0 + ix0, in_plane, (size_t)s->in_w, sx, nc,
                                        ky1 - ky0, s->kernel_w, wcs, wrs,
                                        row_sums + (size_t)x * px_floats, px_floats, fetch, share);
            if (share) fetch += (size_t)share * 64;
            fetch_lines -= share;
            tiles_left--;
            x += P;
            continue;
        }
        if (skip_border) {
            x++;
            continue;
        }
        int kx0, kx1;
        direct_taps(ix0, s->kernel_w, s->in_w, &kx0, &kx1);
        if (kx1 == kx0 || ky1 == ky0) kx0 = kx1 = 0; /* all in padding */
        direct_tiles[0][nb - 1](wc + (size_t)kx0 * nb * DIRECT_LANES, init,
                                kx1 > kx0 ? in_c0 + ix0 + kx0 : in, in_plane, (size_t)s->in_w, sx,
                                nc, ky1 - ky0, kx1 - kx0, wcs, wrs,
                                row_sums + (size_t)x * px_floats, px_floats, NULL, 0);
        x++;
    }
    for (; fetch_lines > 0; fetch_lines--, fetch += 64)
        __builtin_prefetch(fetch, 0, 2);
}

/* The border pixels direct_conv_row skipped (skip_border) in the band's
 * rows [y_begin, y_end) (sums[y - y_begin] of row_floats each): each
 * border column's pixels of the rows whose kernel rows all lie inside the
 * input, in tiles of up to DIRECT_P pixels one input row stride apart. A
 * lone border pixel has too few accumulators to hide the FMA latency
 * (4 x 16 output channels: half the FMA rate); a column of them does not
 * (ResNet's 7x7 stride-2 layer: one pixel in 7 is a left border one). */
static __attribute__((target("avx512f"))) void
direct_border_columns(const ww_conv_direct *d, const float *in, int g, int y_begin, int y_end,
                      int c0, int nc, const float *init, float *sums, size_t row_floats)
{
    const ww_conv2d_shape *s = &d->s;
    int b0 = g * DIRECT_OB;
    int nb = d->blocks - b0 < DIRECT_OB ? d->blocks - b0 : DIRECT_OB;
    const float *wg = d->w + (size_t)b0 * DIRECT_LANES * d->k;
    size_t in_plane = (size_t)s->in_h * s->in_w;
    size_t wrs = (size_t)s->kernel_w * nb * DIRECT_LANES, wcs = (size_t)s->kernel_h * wrs;
    size_t px_floats = (size_t)DIRECT_OB * DIRECT_LANES;
    int xi0, xi1, y0, y1;
    direct_inner_range(s->in_w, s->kernel_w, s->pad_left, s->stride_w, s->out_w, &xi0, &xi1);
    direct_inner_range(s->in_h, s->kernel_h, s->pad_top, s->stride_h, s->out_h, &y0, &y1);
    if (y0 < y_begin) y0 = y_begin;
    if (y1 > y_end) y1 = y_end;
    int rows = y1 - y0;
    if (rows <= 0) return;
    int pixel_stride = s->stride_h * s->in_w;
    const float *wc = wg + (size_t)c0 * wcs;
    for (int x = 0; x < s->out_w; x++) {
        if (x == xi0 && xi1 > xi0) x = xi1;
        if (x >= s->out_w) break;
        int ix0 = x * s->stride_w - s->pad_left, kx0, kx1;
        direct_taps(ix0, s->kernel_w, s->in_w, &kx0, &kx1);
        int all_padding = kx1 == kx0;
        int tiles = (rows + DIRECT_P - 1) / DIRECT_P;
        for (int y = y0; tiles > 0; tiles--) {
            int P = (y1 - y + tiles - 1) / tiles;
            const float *base = all_padding ? in
                                            : in + (size_t)c0 * in_plane +
                                                  (size_t)(y * s->stride_h - s->pad_top) * s->in_w +
                                                  ix0 + kx0;
            direct_tiles[P - 1][nb - 1](
                wc + (size_t)kx0 * nb * DIRECT_LANES, init, base, in_plane, (size_t)s->in_w,
                pixel_stride, nc, s->kernel_h, kx1 - kx0, wcs, wrs,
                sums + (size_t)(y - y_begin) * row_floats + (size_t)x * px_floats, row_floats, NULL,
                0);
            y += P;
        }
    }
}

/* Stores row y of a map of `width` columns (plane floats per channel) from
 * rows ([x][block][16], nb blocks from block b0) into NCHW `out`: per 16
 * pixels and block a 16 x 16 transpose gives each channel's 16 pixels.
 * Adds the residual (may be NULL) and applies the piecewise-linear
 * activations; the others are left for the caller. */
static __attribute__((target("avx512f"))) void
direct_store_row(const float *row, int width, size_t plane, int y, int out_c, int b0, int nb,
                 const float *residual, ww_activation act, float *out)
{
    size_t px_floats = (size_t)DIRECT_OB * DIRECT_LANES;
    const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
    for (int x = 0; x < width; x += 16) {
        int npx = width - x < 16 ? width - x : 16;
        __mmask16 m = (__mmask16)((1u << npx) - 1);
        for (int b = 0; b < nb; b++) {
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = i < npx ? _mm512_load_ps(row + (size_t)(x + i) * px_floats +
                                                (size_t)b * DIRECT_LANES)
                               : zero;
            direct_transpose16(r);
            int oc_b = (b0 + b) * DIRECT_LANES;
            int lanes = out_c - oc_b < DIRECT_LANES ? out_c - oc_b : DIRECT_LANES;
            for (int l = 0; l < lanes; l++) {
                size_t at = (size_t)(oc_b + l) * plane + (size_t)y * width + x;
                __m512 v = r[l];
                if (residual) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, residual + at));
                if (act == WW_ACT_RELU) v = _mm512_max_ps(v, zero);
                if (act == WW_ACT_RELU6) v = _mm512_min_ps(_mm512_max_ps(v, zero), six);
                _mm512_mask_storeu_ps(out + at, m, v);
            }
        }
    }
}

/* A band of output rows of group g. Channel blocks outermost, so a block's
 * weights stay in L1 for the whole band; then the band's sums go into
 * NCHW with the residual and activation. */
static __attribute__((target("avx512f"))) void direct_unit(const direct_ctx *ctx, int unit,
                                                           float *sums)
{
    const ww_conv_direct *d = ctx->d;
    const ww_conv2d_shape *s = &d->s;
    int band = ctx->band_rows, bands = ctx->bands;
    int g = ctx->rows_split ? unit % d->n_groups : unit / bands;
    int y_begin = (ctx->rows_split ? unit / d->n_groups : unit % bands) * band;
    int y_end = y_begin + band < s->out_h ? y_begin + band : s->out_h;
    int b0 = g * DIRECT_OB;
    int nb = d->blocks - b0 < DIRECT_OB ? d->blocks - b0 : DIRECT_OB;
    const float *wg = d->w + (size_t)b0 * DIRECT_LANES * d->k;
    const float *bias = d->bias + (size_t)b0 * DIRECT_LANES;
    size_t plane = (size_t)s->out_h * s->out_w;
    size_t wcs = (size_t)s->kernel_h * s->kernel_w * nb * DIRECT_LANES;
    size_t row_floats = (size_t)s->out_w * DIRECT_OB * DIRECT_LANES;
    int cb = direct_channel_block(s);
    for (int c0 = 0; c0 < s->in_c; c0 += cb) {
        int nc = s->in_c - c0 < cb ? s->in_c - c0 : cb;
        /* The next block's weights (contiguous after this one's) are
         * fetched into L2 a share per row, spread over the row's tiles, so
         * reading them from memory overlaps this block's work (fetched in
         * a burst before each row, the prefetches stalled on the miss
         * buffers). */
        const char *next = (const char *)(wg + (size_t)(c0 + nc) * wcs);
        size_t next_bytes =
            c0 + nc < s->in_c
                ? (size_t)(s->in_c - c0 - nc < cb ? s->in_c - c0 - nc : cb) * wcs * sizeof(float)
                : 0;
        size_t share = (next_bytes / (size_t)(y_end - y_begin) + 63) / 64 * 64;
        for (int y = y_begin; y < y_end; y++) {
            size_t ahead = (size_t)(y - y_begin) * share;
            size_t bytes = ahead >= next_bytes          ? 0
                           : next_bytes - ahead < share ? next_bytes - ahead
                                                        : share;
            direct_conv_row(d, ctx->in, g, y, c0, nc, c0 == 0 ? bias : NULL,
                            sums + (size_t)(y - y_begin) * row_floats, 1, next + ahead,
                            (int)((bytes + 63) / 64));
        }
        direct_border_columns(d, ctx->in, g, y_begin, y_end, c0, nc, c0 == 0 ? bias : NULL, sums,
                              row_floats);
    }
    ww_activation act = ctx->act;
    for (int y = y_begin; y < y_end; y++)
        direct_store_row(sums + (size_t)(y - y_begin) * row_floats, s->out_w, plane, y, s->out_c,
                         b0, nb, ctx->residual, act, ctx->out);
    if (act != WW_ACT_NONE && act != WW_ACT_RELU && act != WW_ACT_RELU6) {
        int oc0 = b0 * DIRECT_LANES;
        int oc1 = oc0 + nb * DIRECT_LANES < s->out_c ? oc0 + nb * DIRECT_LANES : s->out_c;
        for (int oc = oc0; oc < oc1; oc++)
            for (int y = y_begin; y < y_end; y++) {
                float *o = ctx->out + (size_t)oc * plane + (size_t)y * s->out_w;
                ww_activate_array_isa(WW_ISA_AVX512, (size_t)s->out_w, o, act, o, NULL);
            }
    }
}

/* Conv rows of a band of pooled rows [py, py + DIRECT_POOL_BAND). */
static void direct_pool_rows(const ww_conv2d_shape *s, const ww_pool2d_shape *p, int py0, int py1,
                             int *r0, int *r1)
{
    int lo = py0 * p->stride_h - p->pad_top,
        hi = (py1 - 1) * p->stride_h - p->pad_top + p->kernel_h;
    *r0 = lo < 0 ? 0 : lo;
    *r1 = hi > s->out_h ? s->out_h : hi;
    if (*r1 < *r0) *r1 = *r0;
}

/* Maximum of nb blocks of conv row `sums` ([x][block][16], width w)
 * over each pooled column's window, then the activation `act` (a
 * constant; the monotonic ones commute with the maximum), into h
 * ([px][block][16]). The columns whose window lies inside the row take
 * a loop with no bounds tests. (Tested per tap, with the activation
 * tested per vector, the pooling was ~10 % of ResNet's stem.) */
static inline __attribute__((always_inline, target("avx512f"))) void
direct_pool_horizontal(const float *sums, int w, const ww_pool2d_shape *p, int nb,
                       const ww_activation act, float *h)
{
    size_t px_floats = (size_t)DIRECT_OB * DIRECT_LANES;
    int lo, hi;
    direct_inner_range(w, p->kernel_w, p->pad_left, p->stride_w, p->out_w, &lo, &hi);
    for (int px = 0; px < p->out_w; px++) {
        int x0 = px * p->stride_w - p->pad_left;
        int k0 = 0, k1 = p->kernel_w;
        if (px < lo || px >= hi) direct_taps(x0, p->kernel_w, w, &k0, &k1);
        float *dst = h + (size_t)px * px_floats;
        for (int b = 0; b < nb; b++) {
            __m512 best = _mm512_set1_ps(-INFINITY);
            for (int kx = k0; kx < k1; kx++)
                best = _mm512_max_ps(
                    _mm512_load_ps(sums + (size_t)(x0 + kx) * px_floats + (size_t)b * DIRECT_LANES),
                    best);
            if (act != WW_ACT_NONE) best = _mm512_max_ps(best, _mm512_setzero_ps());
            if (act == WW_ACT_RELU6) best = _mm512_min_ps(best, _mm512_set1_ps(6.0f));
            _mm512_store_ps(dst + (size_t)b * DIRECT_LANES, best);
        }
    }
}

/* The pooled row: per column and block, the maximum over conv rows
 * [w0, w1) of the ring (ring[row % kernel_h], rows ring_row floats
 * apart), into pooled ([px][block][16]). */
static __attribute__((target("avx512f"))) void direct_pool_vertical(const float *ring,
                                                                    size_t ring_row, int kernel_h,
                                                                    int w0, int w1, int out_w,
                                                                    int nb, float *pooled)
{
    size_t px_floats = (size_t)DIRECT_OB * DIRECT_LANES;
    const float *rows[DIRECT_POOL_MAX_KERNEL];
    int count = 0;
    for (int rr = w0; rr < w1 && count < DIRECT_POOL_MAX_KERNEL; rr++)
        rows[count++] = ring + (size_t)(rr % kernel_h) * ring_row;
    for (int px = 0; px < out_w; px++)
        for (int b = 0; b < nb; b++) {
            size_t at = (size_t)px * px_floats + (size_t)b * DIRECT_LANES;
            __m512 best = _mm512_set1_ps(-INFINITY);
            for (int j = 0; j < count; j++)
                best = _mm512_max_ps(_mm512_load_ps(rows[j] + at), best);
            _mm512_store_ps(pooled + at, best);
        }
}

/* Fetches into cache the lines pooled row py of the group's channels
 * (blocks b0..b0+nb) will be stored to, a 1/stride_h share of the
 * channels per conv row r, so that they arrive while the conv rows
 * before the store compute. The output is a new map, usually out of
 * cache (ResNet-18's weights flush L3 every run): each of its 64 channel
 * rows is a separate stream, too many for the hardware prefetcher, and
 * the stores waited on each line's fetch. ResNet's stem alone with a
 * cold output: 1.40 -> 1.32 ms; with a warm one +0.01. */
static void direct_fetch_pooled_row(const float *out, const ww_pool2d_shape *p, int out_c, int b0,
                                    int nb, int py, int r)
{
    int c_begin = b0 * DIRECT_LANES, c_end = (b0 + nb) * DIRECT_LANES;
    if (c_end > out_c) c_end = out_c;
    int share = r % p->stride_h, n = c_end - c_begin;
    int first = c_begin + n * share / p->stride_h, last = c_begin + n * (share + 1) / p->stride_h;
    size_t plane = (size_t)p->out_h * p->out_w;
    for (int ch = first; ch < last; ch++) {
        const char *row = (const char *)(out + (size_t)ch * plane + (size_t)py * p->out_w);
        uintptr_t line = (uintptr_t)row & ~(uintptr_t)63;
        uintptr_t end = (uintptr_t)(row + (size_t)p->out_w * sizeof(float));
        for (; line < end; line += 64)
            __builtin_prefetch((const void *)line, 1, 3);
    }
}

/* Pooled path, one band of pooled rows of group g: each conv row (all
 * input channels in one block) gets the bias and activation and is
 * reduced at once to its horizontal window maxima in a ring of
 * kernel_h rows; each pooled row, when its last conv row is in, is the
 * maximum over its rows of the ring, stored into NCHW. The conv output
 * itself is never written. */
static __attribute__((target("avx512f"))) void direct_unit_pooled(direct_ctx *ctx, int slot,
                                                                  int unit, float *work)
{
    const ww_conv_direct *d = ctx->d;
    const ww_conv2d_shape *s = &d->s;
    const ww_pool2d_shape *p = ctx->pool;
    int bands = (p->out_h + DIRECT_POOL_BAND - 1) / DIRECT_POOL_BAND;
    int g = unit / bands, py0 = unit % bands * DIRECT_POOL_BAND;
    int py1 = py0 + DIRECT_POOL_BAND < p->out_h ? py0 + DIRECT_POOL_BAND : p->out_h;
    int b0 = g * DIRECT_OB;
    int nb = d->blocks - b0 < DIRECT_OB ? d->blocks - b0 : DIRECT_OB;
    const float *bias = d->bias + (size_t)b0 * DIRECT_LANES;
    size_t px_floats = (size_t)DIRECT_OB * DIRECT_LANES;
    float *row_sums = work;
    float *ring = row_sums + (size_t)s->out_w * px_floats; /* [kernel_h][p->out_w][block][16] */
    float *pooled = ring + (size_t)p->kernel_h * p->out_w * px_floats;
    size_t ring_row = (size_t)p->out_w * px_floats;
    int r0, r1;
    direct_pool_rows(s, p, py0, py1, &r0, &r1);
    direct_carry *carry = &ctx->carry[slot];
    int r = r0;
    if (carry->group == g && carry->row_end > r0 && carry->row_end <= r1 &&
        carry->row_end - r0 <= p->kernel_h)
        r = carry->row_end; /* rows [r0, row_end) are still in the ring */
    int py = py0;
    for (;; r++) {
        /* pooled rows whose last conv row is in */
        while (py < py1) {
            int w0 = py * p->stride_h - p->pad_top, w1 = w0 + p->kernel_h;
            if (w1 > s->out_h) w1 = s->out_h;
            if (w0 < 0) w0 = 0;
            if (w1 > r) break;
            direct_pool_vertical(ring, ring_row, p->kernel_h, w0, w1, p->out_w, nb, pooled);
            direct_store_row(pooled, p->out_w, (size_t)p->out_h * p->out_w, py, s->out_c, b0, nb,
                             NULL, WW_ACT_NONE, ctx->out);
            py++;
        }
        if (py >= py1 || r >= r1) break;
        direct_fetch_pooled_row(ctx->out, p, s->out_c, b0, nb, py, r);
        direct_conv_row(d, ctx->in, g, r, 0, s->in_c, bias, row_sums, 0, NULL, 0);
        float *h = ring + (size_t)(r % p->kernel_h) * ring_row;
        switch (ctx->act) { /* monotonic activations: once, on the maximum */
        case WW_ACT_RELU: direct_pool_horizontal(row_sums, s->out_w, p, nb, WW_ACT_RELU, h); break;
        case WW_ACT_RELU6:
            direct_pool_horizontal(row_sums, s->out_w, p, nb, WW_ACT_RELU6, h);
            break;
        default: direct_pool_horizontal(row_sums, s->out_w, p, nb, WW_ACT_NONE, h); break;
        }
    }
    carry->group = g;
    carry->row_end = r1;
}
#endif

/* Slot i owns a contiguous share of the units (whole rows, or whole
 * groups: see DIRECT_ROW_SPLIT_MAX_WEIGHT_BYTES), then takes unclaimed
 * units of the other shares. */
static void direct_slots(void *p, int begin, int end)
{
    direct_ctx *ctx = p;
    for (int slot = begin; slot < end; slot++) {
        float *work = ww_align64(ctx->scratch + (size_t)slot * ctx->area);
        ctx->carry[slot] = (direct_carry){-1, -1};
        int cursor = 0, unit;
        while ((unit = ww_shares_claim(&ctx->shares, slot, &cursor, NULL)) >= 0) {
#if WW_HAVE_X86
            if (ctx->pool)
                direct_unit_pooled(ctx, slot, unit, work);
            else
                direct_unit(ctx, unit, work);
#else
            (void)work;
#endif
        }
    }
}

static void direct_launch(direct_ctx *ctx, ww_threadpool *pool)
{
    int threads = ww_threadpool_size(pool);
    ctx->area =
        ctx->pool ? direct_pooled_floats(&ctx->d->s, ctx->pool) : direct_band_floats(&ctx->d->s);
    if (ww_threadpool_area_floats(pool) > ctx->area) ctx->area = ww_threadpool_area_floats(pool);
    ctx->slots = threads < ctx->units ? threads : ctx->units;
    if (ctx->slots > WW_SHARES_MAX) ctx->slots = WW_SHARES_MAX;
    ww_shares_init(&ctx->shares, ctx->units, ctx->slots);
    ww_parallel_for(pool, ctx->slots, direct_slots, ctx);
}

void ww_conv_direct_run(const ww_conv_direct *d, const float *in, const float *residual,
                        ww_activation act, float *out, float *scratch, ww_threadpool *pool)
{
    direct_ctx ctx = {
        .d = d, .in = in, .residual = residual, .act = act, .out = out, .scratch = scratch};
    const ww_conv2d_shape *s = &d->s;
    int threads = ww_threadpool_size(pool);
    int band = direct_band_rows(s), bands = (s->out_h + band - 1) / band;
    size_t weight_bytes = (size_t)d->blocks * DIRECT_LANES * d->k * sizeof(float);
    if (threads > 1 && s->out_h >= 2 * threads &&
        weight_bytes <= DIRECT_ROW_SPLIT_MAX_WEIGHT_BYTES) {
        /* bands a multiple of the threads (as near as the rows allow), no
         * taller than the scratch's */
        bands = (bands + threads - 1) / threads * threads;
        band = (s->out_h + bands - 1) / bands;
        bands = (s->out_h + band - 1) / band;
        ctx.rows_split = 1;
    }
    ctx.band_rows = band;
    ctx.bands = bands;
    ctx.units = d->n_groups * bands;
    direct_launch(&ctx, pool);
}

void ww_conv_direct_run_pooled(const ww_conv_direct *d, const ww_pool2d_shape *p, const float *in,
                               ww_activation act, float *out, float *scratch, ww_threadpool *pool)
{
    direct_ctx ctx = {.d = d, .pool = p, .in = in, .act = act, .out = out, .scratch = scratch};
    ctx.units = d->n_groups * ((p->out_h + DIRECT_POOL_BAND - 1) / DIRECT_POOL_BAND);
    direct_launch(&ctx, pool);
}
