/* Pillow 9.4's Image.resize for 8-bit images with the BILINEAR and BICUBIC
 * filters, reproduced operation for operation so results are bit-identical:
 *  - separable: a horizontal pass into an 8-bit intermediate image, then a
 *    vertical pass; a pass is skipped when that dimension is unchanged;
 *  - antialiasing: when shrinking, the filter support grows by the scale
 *    factor;
 *  - per output pixel, double weights normalised to sum 1, then converted
 *    to fixed point with 22 fractional bits (32 - 8 value bits - 2 spare);
 *  - integer accumulation starting at 0.5 (rounding), clipped to 0..255;
 *  - the horizontal pass only produces the source rows the vertical pass
 *    reads. */
#include "core/error.h"
#include "image/image.h"
#include "image/image_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FIXED_POINT_BITS 22

typedef struct resample_filter {
    double (*weight)(double x);
    double support;
} resample_filter;

/* Triangle filter. Same expression shapes as Pillow, so the doubles agree. */
static double bilinear_weight(double x)
{
    if (x < 0.0) x = -x;
    if (x < 1.0) return 1.0 - x;
    return 0.0;
}

/* Keys cubic convolution with a = -0.5. */
static double bicubic_weight(double x)
{
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static const resample_filter bilinear_filter = {bilinear_weight, 1.0};
static const resample_filter bicubic_filter = {bicubic_weight, 2.0};

/* For each output position: the first source index, how many sources it
 * reads, and `taps` fixed-point weights (unused ones zero). */
typedef struct resample_plan {
    int taps;
    int *first;
    int *count;
    int32_t *weights;
} resample_plan;

static void plan_free(resample_plan *plan)
{
    free(plan->first);
    free(plan->count);
    free(plan->weights);
    memset(plan, 0, sizeof *plan);
}

static wanwu_status plan_build(int in_size, int out_size, const resample_filter *filter,
                               resample_plan *plan, wanwu_error *err)
{
    memset(plan, 0, sizeof *plan);
    /* Pillow computes the scale from a float box (0, in_size). */
    const double scale = (double)((float)in_size - 0.0f) / out_size;
    const double filter_scale = scale < 1.0 ? 1.0 : scale;
    const double support = filter->support * filter_scale;
    const int taps = (int)ceil(support) * 2 + 1;
    double *w = malloc((size_t)taps * sizeof *w);
    plan->taps = taps;
    plan->first = malloc((size_t)out_size * sizeof *plan->first);
    plan->count = malloc((size_t)out_size * sizeof *plan->count);
    plan->weights = calloc((size_t)out_size * (size_t)taps, sizeof *plan->weights);
    if (!w || !plan->first || !plan->count || !plan->weights) {
        free(w);
        plan_free(plan);
        return ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory planning a resize");
    }
    const double inv_filter_scale = 1.0 / filter_scale;
    for (int i = 0; i < out_size; i++) {
        const double center = 0.0 + (i + 0.5) * scale;
        /* Pillow rounds the window ends with (int)(v + 0.5), i.e. toward
         * zero after adding a half. */
        int lo = (int)(center - support + 0.5);
        if (lo < 0) lo = 0;
        int hi = (int)(center + support + 0.5);
        if (hi > in_size) hi = in_size;
        const int n = hi - lo;
        double sum = 0.0;
        for (int k = 0; k < n; k++) {
            w[k] = filter->weight((k + lo - center + 0.5) * inv_filter_scale);
            sum += w[k];
        }
        int32_t *fixed = plan->weights + (size_t)i * taps;
        for (int k = 0; k < n; k++) {
            const double v = sum != 0.0 ? w[k] / sum : w[k];
            /* Round half away from zero into 22 fractional bits. */
            fixed[k] = v < 0 ? (int32_t)(-0.5 + v * (1 << FIXED_POINT_BITS))
                             : (int32_t)(0.5 + v * (1 << FIXED_POINT_BITS));
        }
        plan->first[i] = lo;
        plan->count[i] = n;
    }
    free(w);
    return WANWU_OK;
}

static inline uint8_t clip_fixed(int32_t acc)
{
    if (acc < 0) return 0; /* any negative sum floors to a negative value */
    const int32_t v = acc >> FIXED_POINT_BITS;
    return v > 255 ? 255 : (uint8_t)v;
}

/* Resamples rows [row0, row0 + rows) of `src` horizontally into dst
 * (rows x out_w). */
static void resample_horizontal(const uint8_t *src, int src_w, int row0, int rows,
                                const resample_plan *plan, int out_w, uint8_t *dst)
{
    for (int y = 0; y < rows; y++) {
        const uint8_t *in = src + (size_t)(row0 + y) * src_w * 3;
        uint8_t *out = dst + (size_t)y * out_w * 3;
        for (int x = 0; x < out_w; x++) {
            const int32_t *k = plan->weights + (size_t)x * plan->taps;
            const uint8_t *p = in + (size_t)plan->first[x] * 3;
            int32_t r = 1 << (FIXED_POINT_BITS - 1), g = r, b = r;
            for (int t = 0; t < plan->count[x]; t++) {
                r += p[3 * t + 0] * k[t];
                g += p[3 * t + 1] * k[t];
                b += p[3 * t + 2] * k[t];
            }
            out[3 * x + 0] = clip_fixed(r);
            out[3 * x + 1] = clip_fixed(g);
            out[3 * x + 2] = clip_fixed(b);
        }
    }
}

/* Resamples src (w x any) vertically; plan->first is relative to src. */
static void resample_vertical(const uint8_t *src, int w, const resample_plan *plan, int out_h,
                              uint8_t *dst)
{
    const size_t stride = (size_t)w * 3;
    for (int y = 0; y < out_h; y++) {
        const int32_t *k = plan->weights + (size_t)y * plan->taps;
        const uint8_t *base = src + (size_t)plan->first[y] * stride;
        const int n = plan->count[y];
        uint8_t *out = dst + (size_t)y * stride;
        for (size_t i = 0; i < stride; i++) {
            int32_t acc = 1 << (FIXED_POINT_BITS - 1);
            for (int t = 0; t < n; t++)
                acc += base[(size_t)t * stride + i] * k[t];
            out[i] = clip_fixed(acc);
        }
    }
}

wanwu_status ww_image_resize(const ww_image *in, int out_width, int out_height,
                             ww_interpolation interp, ww_image *out, wanwu_error *err)
{
    if (!in || !in->rgb || !out || in->width <= 0 || in->height <= 0)
        return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "resize: no input image");
    out->rgb = NULL;
    out->width = out->height = 0;
    if (out_width <= 0 || out_height <= 0)
        return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT,
                            "resize: target size %dx%d must be positive", out_width, out_height);
    if ((int64_t)out_width * out_height > WW_IMAGE_HARD_MAX_PIXELS)
        return ww_error_set(err, WANWU_ERR_LIMIT, "resize: target size %dx%d is too large",
                            out_width, out_height);
    if (interp != WW_INTERP_BILINEAR && interp != WW_INTERP_BICUBIC)
        return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "resize: unknown interpolation %d",
                            (int)interp);
    const resample_filter *filter =
        interp == WW_INTERP_BICUBIC ? &bicubic_filter : &bilinear_filter;

    wanwu_status st = ww_image_alloc(out, out_width, out_height, err);
    if (st != WANWU_OK) return st;
    /* Image.resize returns a plain copy when the size is unchanged. */
    if (out_width == in->width && out_height == in->height) {
        memcpy(out->rgb, in->rgb, (size_t)in->width * in->height * 3);
        return WANWU_OK;
    }
    const int need_horizontal = out_width != in->width;
    const int need_vertical = out_height != in->height;

    resample_plan vplan, hplan = {0};
    uint8_t *temp = NULL;
    st = plan_build(in->height, out_height, filter, &vplan, err);
    if (st != WANWU_OK) goto fail;

    const uint8_t *source = in->rgb;
    if (need_horizontal) {
        /* Only the rows the vertical pass will read (all of them when the
         * height is unchanged). */
        int row_first = 0, rows = in->height;
        if (need_vertical) {
            row_first = vplan.first[0];
            rows = vplan.first[out_height - 1] + vplan.count[out_height - 1] - row_first;
        }
        st = plan_build(in->width, out_width, filter, &hplan, err);
        if (st != WANWU_OK) goto fail;
        uint8_t *dst = out->rgb;
        if (need_vertical) {
            temp = malloc((size_t)out_width * rows * 3);
            if (!temp) {
                st = ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory resizing");
                goto fail;
            }
            dst = temp;
            for (int y = 0; y < out_height; y++)
                vplan.first[y] -= row_first;
        }
        resample_horizontal(in->rgb, in->width, row_first, rows, &hplan, out_width, dst);
        source = temp;
    }
    if (need_vertical) resample_vertical(source, out_width, &vplan, out_height, out->rgb);

    plan_free(&vplan);
    plan_free(&hplan);
    free(temp);
    return WANWU_OK;

fail:
    plan_free(&vplan);
    plan_free(&hplan);
    free(temp);
    ww_image_free(out);
    return st;
}
