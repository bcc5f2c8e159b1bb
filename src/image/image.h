/* Image decoding and torchvision-exact preprocessing. */
#ifndef WW_IMAGE_IMAGE_H
#define WW_IMAGE_IMAGE_H

#include "wanwu.h"

#include <stddef.h>
#include <stdint.h>

/* 8-bit RGB, interleaved, rows packed (stride = 3 * width). */
typedef struct ww_image {
    int width, height;
    uint8_t *rgb;
} ww_image;

typedef enum ww_image_format { WW_IMAGE_UNKNOWN, WW_IMAGE_JPEG, WW_IMAGE_PNG } ww_image_format;

typedef struct ww_decode_options {
    int apply_exif_orientation; /* 0 by default, like torchvision */
    int64_t max_pixels;         /* 0 = no limit; checked from the header before decoding */
} ww_decode_options;

ww_image_format ww_image_sniff(const uint8_t *data, size_t size);

/* Reads width/height from the header only (no pixel decoding, no limit
 * checks: it reports what the file declares). */
wanwu_status ww_image_probe(const uint8_t *data, size_t size, int *width, int *height,
                            wanwu_error *err);

/* Decodes JPEG (libjpeg-turbo, ISLOW DCT, like PIL) or PNG (libpng) into
 * RGB8 the way PIL's Image.open(...).convert("RGB") does. `opts` may be
 * NULL. Dimensions are checked from the header before any pixel is decoded:
 * above opts->max_pixels, or above PIL's own decompression-bomb ceiling
 * (178956970 pixels), the result is WANWU_ERR_LIMIT. Truncated or corrupt
 * data gives WANWU_ERR_FORMAT (where PIL would raise), anything that is not
 * JPEG or PNG WANWU_ERR_UNSUPPORTED. On failure out->rgb is NULL. */
wanwu_status ww_image_decode(const uint8_t *data, size_t size, const ww_decode_options *opts,
                             ww_image *out, wanwu_error *err);
wanwu_status ww_image_load_file(const char *path, const ww_decode_options *opts, ww_image *out,
                                wanwu_error *err);
void ww_image_free(ww_image *img);

/* Applies an EXIF orientation (1-8) in place the way PIL's
 * ImageOps.exif_transpose does (2 = mirror, 3 = rotate 180, 6 = rotate 90
 * clockwise, ...). Other values leave the image unchanged. */
wanwu_status ww_image_apply_orientation(ww_image *img, int orientation, wanwu_error *err);

typedef enum ww_interpolation { WW_INTERP_BILINEAR, WW_INTERP_BICUBIC } ww_interpolation;

/* Pillow's Image.resize(..., BILINEAR|BICUBIC) with its antialiasing
 * filter support and 8-bit fixed-point arithmetic, reproduced exactly. */
wanwu_status ww_image_resize(const ww_image *in, int out_width, int out_height,
                             ww_interpolation interp, ww_image *out, wanwu_error *err);

typedef struct ww_preprocess {
    int resize; /* torchvision Resize(int): shorter side to this */
    int crop;   /* CenterCrop(crop) */
    ww_interpolation interp;
    float mean[3];
    float std[3];
} ww_preprocess;

/* The ImageNet transform: Resize(256), CenterCrop(224), ToTensor,
 * Normalize(mean=[0.485,0.456,0.406], std=[0.229,0.224,0.225]). */
ww_preprocess ww_preprocess_imagenet_default(void);

/* Runs the transform, writing 3 x crop x crop floats (CHW) to out_chw. */
wanwu_status ww_preprocess_run(const ww_image *img, const ww_preprocess *p, float *out_chw,
                               wanwu_error *err);

#endif
