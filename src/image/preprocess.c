/* torchvision 0.14's Resize(int) -> CenterCrop -> ToTensor -> Normalize on a
 * PIL RGB image, with the same integer and float32 arithmetic so every
 * output value is identical. */
#include "core/error.h"
#include "image/image.h"
#include "image/image_internal.h"

#include <math.h>
#include <string.h>

ww_preprocess ww_preprocess_imagenet_default(void)
{
    /* (float)0.485 rather than 0.485f: torch converts the Python double to
     * float32, and the two roundings can differ in principle. */
    ww_preprocess p = {
        .resize = 256,
        .crop = 224,
        .interp = WW_INTERP_BILINEAR,
        .mean = {(float)0.485, (float)0.456, (float)0.406},
        .std = {(float)0.229, (float)0.224, (float)0.225},
    };
    return p;
}

/* Python's round() of d / 2.0 for d >= 0: halves go to the even integer. */
static int half_round_even(int d)
{
    const int q = d / 2;
    if (d % 2 == 0) return q;
    return (q % 2 == 0) ? q : q + 1;
}

wanwu_status ww_preprocess_run(const ww_image *img, const ww_preprocess *p, float *out_chw,
                               wanwu_error *err)
{
    if (!img || !img->rgb || img->width <= 0 || img->height <= 0)
        return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "preprocess: no input image");
    if (!p || !out_chw)
        return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "preprocess: NULL argument");
    if (p->resize <= 0 || p->crop <= 0)
        return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT,
                            "preprocess: resize (%d) and crop (%d) must be positive", p->resize,
                            p->crop);
    for (int c = 0; c < 3; c++)
        if (!(p->std[c] != 0.0f) || !isfinite(p->std[c]) || !isfinite(p->mean[c]))
            return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT,
                                "preprocess: mean/std must be finite and std non-zero "
                                "(channel %d: mean %g, std %g)",
                                c, p->mean[c], p->std[c]);

    /* Resize(int): the shorter side becomes `resize`, the longer side
     * int(resize * long / short). Python divides the exact integer product
     * once, which one IEEE double division reproduces. */
    const int w = img->width, h = img->height;
    const int64_t short_side = w <= h ? w : h, long_side = w <= h ? h : w;
    const double scaled_long = (double)((int64_t)p->resize * long_side) / (double)short_side;
    if (scaled_long > (double)WW_IMAGE_HARD_MAX_PIXELS)
        return ww_error_set(err, WANWU_ERR_LIMIT,
                            "preprocess: resizing %dx%d to shorter side %d makes the longer side "
                            "too large",
                            w, h, p->resize);
    const int new_long = (int)scaled_long;
    const int new_w = w <= h ? p->resize : new_long;
    const int new_h = w <= h ? new_long : p->resize;

    ww_image resized = {0};
    const ww_image *src = img;
    if (new_w != w || new_h != h) { /* torchvision skips the resize otherwise */
        wanwu_status st = ww_image_resize(img, new_w, new_h, p->interp, &resized, err);
        if (st != WANWU_OK) return ww_error_prefix(err, "preprocess: ");
        src = &resized;
    }

    /* CenterCrop: pad with zeros (left/top get the smaller half) when the
     * image is smaller than the crop, then crop at round((size - crop) / 2). */
    const int crop = p->crop;
    const int pad_left = crop > src->width ? (crop - src->width) / 2 : 0;
    const int pad_top = crop > src->height ? (crop - src->height) / 2 : 0;
    const int padded_w = src->width > crop ? src->width : crop;
    const int padded_h = src->height > crop ? src->height : crop;
    const int left = half_round_even(padded_w - crop) - pad_left;
    const int top = half_round_even(padded_h - crop) - pad_top;

    /* ToTensor (x / 255 in float32) and Normalize ((x - mean) / std in
     * float32), tabulated per channel for the 256 possible bytes. */
    float table[3][256];
    for (int c = 0; c < 3; c++) {
        for (int v = 0; v < 256; v++) {
            const float x = (float)v / 255.0f;
            table[c][v] = (x - p->mean[c]) / p->std[c];
        }
    }
    const size_t plane = (size_t)crop * crop;
    for (int y = 0; y < crop; y++) {
        const int sy = y + top;
        const int row_inside = sy >= 0 && sy < src->height;
        for (int x = 0; x < crop; x++) {
            const int sx = x + left;
            const size_t o = (size_t)y * crop + x;
            if (row_inside && sx >= 0 && sx < src->width) {
                const uint8_t *px = src->rgb + ((size_t)sy * src->width + sx) * 3;
                out_chw[o] = table[0][px[0]];
                out_chw[plane + o] = table[1][px[1]];
                out_chw[2 * plane + o] = table[2][px[2]];
            } else { /* padding is black, i.e. byte 0 */
                out_chw[o] = table[0][0];
                out_chw[plane + o] = table[1][0];
                out_chw[2 * plane + o] = table[2][0];
            }
        }
    }
    ww_image_free(&resized);
    return WANWU_OK;
}
