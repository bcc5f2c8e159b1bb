/* Image front end: format sniffing, header probing, dispatch to the JPEG and
 * PNG decoders, file loading and EXIF orientation. */
#include "image/image.h"

#include "core/error.h"
#include "image/image_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

ww_image_format ww_image_sniff(const uint8_t *data, size_t size)
{
    if (!data) return WW_IMAGE_UNKNOWN;
    /* The same prefixes PIL's JPEG and PNG plugins accept. */
    if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return WW_IMAGE_JPEG;
    if (size >= 8 && memcmp(data, png_signature, 8) == 0) return WW_IMAGE_PNG;
    return WW_IMAGE_UNKNOWN;
}

static wanwu_status check_input(const uint8_t *data, size_t size, ww_image_format *format,
                                wanwu_error *err)
{
    if (!data || size == 0)
        return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "image data is empty (0 bytes)");
    *format = ww_image_sniff(data, size);
    if (*format == WW_IMAGE_UNKNOWN)
        return ww_error_set(err, WANWU_ERR_UNSUPPORTED,
                            "not a JPEG or PNG image (unrecognized first bytes; %zu bytes total)",
                            size);
    return WANWU_OK;
}

wanwu_status ww_image_check_dimensions(const char *format, int64_t width, int64_t height,
                                       int64_t max_pixels, wanwu_error *err)
{
    if (width <= 0 || height <= 0)
        return ww_error_set(err, WANWU_ERR_FORMAT, "%s header declares an empty image (%lldx%lld)",
                            format, (long long)width, (long long)height);
    /* Compare per side first so the product cannot overflow. */
    if (width > WW_IMAGE_HARD_MAX_PIXELS || height > WW_IMAGE_HARD_MAX_PIXELS ||
        width * height > WW_IMAGE_HARD_MAX_PIXELS)
        return ww_error_set(err, WANWU_ERR_LIMIT,
                            "%s header declares %lldx%lld pixels, above the %lld-pixel safety "
                            "limit (PIL refuses such images as decompression bombs)",
                            format, (long long)width, (long long)height,
                            (long long)WW_IMAGE_HARD_MAX_PIXELS);
    if (max_pixels > 0 && width * height > max_pixels)
        return ww_error_set(err, WANWU_ERR_LIMIT,
                            "%s image is %lldx%lld = %lld pixels, more than the configured "
                            "maximum of %lld pixels",
                            format, (long long)width, (long long)height,
                            (long long)(width * height), (long long)max_pixels);
    return WANWU_OK;
}

wanwu_status ww_image_alloc(ww_image *out, int width, int height, wanwu_error *err)
{
    size_t bytes = (size_t)width * (size_t)height * 3;
    out->rgb = malloc(bytes);
    if (!out->rgb)
        return ww_error_set(err, WANWU_ERR_NO_MEMORY,
                            "cannot allocate %zu bytes for a %dx%d RGB image", bytes, width,
                            height);
    out->width = width;
    out->height = height;
    return WANWU_OK;
}

void ww_image_free(ww_image *img)
{
    if (!img) return;
    free(img->rgb);
    img->rgb = NULL;
    img->width = img->height = 0;
}

wanwu_status ww_image_probe(const uint8_t *data, size_t size, int *width, int *height,
                            wanwu_error *err)
{
    ww_image_format format;
    if (!width || !height)
        return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "ww_image_probe: NULL output");
    *width = *height = 0;
    wanwu_status st = check_input(data, size, &format, err);
    if (st != WANWU_OK) return st;
    if (format == WW_IMAGE_JPEG) return ww_jpeg_probe(data, size, width, height, err);
    return ww_png_probe(data, size, width, height, err);
}

wanwu_status ww_image_decode(const uint8_t *data, size_t size, const ww_decode_options *opts,
                             ww_image *out, wanwu_error *err)
{
    ww_image_format format;
    if (!out) return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "ww_image_decode: NULL output");
    out->width = out->height = 0;
    out->rgb = NULL;
    wanwu_status st = check_input(data, size, &format, err);
    if (st != WANWU_OK) return st;

    int64_t max_pixels = opts ? opts->max_pixels : 0;
    int want_exif = opts && opts->apply_exif_orientation;
    int orientation = 0;
    if (max_pixels < 0)
        return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "max_pixels must be >= 0 (got %lld)",
                            (long long)max_pixels);

    if (format == WW_IMAGE_JPEG)
        st = ww_jpeg_decode(data, size, max_pixels, out, want_exif ? &orientation : NULL, err);
    else
        st = ww_png_decode(data, size, max_pixels, out, want_exif ? &orientation : NULL, err);
    if (st != WANWU_OK) return st;

    if (want_exif && orientation > 1) {
        st = ww_image_apply_orientation(out, orientation, err);
        if (st != WANWU_OK) ww_image_free(out);
    }
    return st;
}

wanwu_status ww_image_load_file(const char *path, const ww_decode_options *opts, ww_image *out,
                                wanwu_error *err)
{
    if (!path) return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "image path is NULL");
    if (out) {
        out->width = out->height = 0;
        out->rgb = NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        return ww_error_set(err, e == ENOENT ? WANWU_ERR_NOT_FOUND : WANWU_ERR_IO,
                            "cannot open image '%s': %s", path, strerror(e));
    }
    /* Read in growing chunks rather than trusting a size from stat, so
     * pipes and files that change while being read behave. */
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    wanwu_status st = WANWU_OK;
    if (!buf) st = ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory reading '%s'", path);
    while (st == WANWU_OK) {
        if (len == cap) {
            uint8_t *bigger = cap > ((size_t)1 << 40) ? NULL : realloc(buf, cap * 2);
            if (!bigger) {
                st = ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory reading '%s'", path);
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f))
                st = ww_error_set(err, WANWU_ERR_IO, "error reading image '%s': %s", path,
                                  strerror(errno));
            break;
        }
    }
    fclose(f);
    if (st == WANWU_OK) {
        if (len == 0)
            st = ww_error_set(err, WANWU_ERR_FORMAT, "image file is empty (0 bytes)");
        else
            st = ww_image_decode(buf, len, opts, out, err);
        if (st != WANWU_OK) ww_error_prefix(err, "%s: ", path);
    }
    free(buf);
    return st;
}

wanwu_status ww_image_apply_orientation(ww_image *img, int orientation, wanwu_error *err)
{
    if (!img || !img->rgb)
        return ww_error_set(err, WANWU_ERR_INVALID_ARGUMENT, "apply_orientation: no image");
    if (orientation < 2 || orientation > 8) return WANWU_OK;
    const int w = img->width, h = img->height;
    /* Orientations 5-8 swap the axes (PIL's TRANSPOSE, ROTATE_270,
     * TRANSVERSE, ROTATE_90). */
    const int swap = orientation >= 5;
    const int ow = swap ? h : w, oh = swap ? w : h;
    ww_image rotated;
    wanwu_status st = ww_image_alloc(&rotated, ow, oh, err);
    if (st != WANWU_OK) return st;
    for (int y = 0; y < oh; y++) {
        for (int x = 0; x < ow; x++) {
            int sx, sy; /* source pixel for output (x, y) */
            switch (orientation) {
            case 2: sx = w - 1 - x, sy = y; break;         /* FLIP_LEFT_RIGHT */
            case 3: sx = w - 1 - x, sy = h - 1 - y; break; /* ROTATE_180 */
            case 4: sx = x, sy = h - 1 - y; break;         /* FLIP_TOP_BOTTOM */
            case 5: sx = y, sy = x; break;                 /* TRANSPOSE */
            case 6: sx = y, sy = h - 1 - x; break;         /* ROTATE_270 */
            case 7: sx = w - 1 - y, sy = h - 1 - x; break; /* TRANSVERSE */
            default: sx = w - 1 - y, sy = x; break;        /* 8: ROTATE_90 */
            }
            const uint8_t *src = img->rgb + ((size_t)sy * w + sx) * 3;
            uint8_t *dst = rotated.rgb + ((size_t)y * ow + x) * 3;
            dst[0] = src[0];
            dst[1] = src[1];
            dst[2] = src[2];
        }
    }
    free(img->rgb);
    *img = rotated;
    return WANWU_OK;
}
