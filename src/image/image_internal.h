/* Internal interface between the image front end (image.c) and the
 * format decoders. Not part of the library's public surface. */
#ifndef WW_IMAGE_IMAGE_INTERNAL_H
#define WW_IMAGE_IMAGE_INTERNAL_H

#include "image/image.h"

#include <stddef.h>
#include <stdint.h>

/* Pillow refuses images above 2 * Image.MAX_IMAGE_PIXELS (its
 * DecompressionBombError), so the reference pipeline can never produce an
 * answer for them; we use the same ceiling as a hard safety limit. */
#define WW_IMAGE_HARD_MAX_PIXELS ((int64_t)2 * 89478485)

/* Validates dimensions read from a header, before any pixel is decoded or
 * any pixel buffer allocated: positive, under the hard limit and under
 * `max_pixels` (0 = no extra limit). */
wanwu_status ww_image_check_dimensions(const char *format, int64_t width, int64_t height,
                                       int64_t max_pixels, wanwu_error *err);

/* Allocates out->rgb for width x height (dimensions already checked). */
wanwu_status ww_image_alloc(ww_image *out, int width, int height, wanwu_error *err);

/* Header-only readers. */
wanwu_status ww_jpeg_probe(const uint8_t *data, size_t size, int *width, int *height,
                           wanwu_error *err);
wanwu_status ww_png_probe(const uint8_t *data, size_t size, int *width, int *height,
                          wanwu_error *err);

/* Full decoders to RGB8. When `exif_orientation` is not NULL the decoder
 * also reports the EXIF orientation tag (1-8, or 0 when absent/invalid). */
wanwu_status ww_jpeg_decode(const uint8_t *data, size_t size, int64_t max_pixels, ww_image *out,
                            int *exif_orientation, wanwu_error *err);
wanwu_status ww_png_decode(const uint8_t *data, size_t size, int64_t max_pixels, ww_image *out,
                           int *exif_orientation, wanwu_error *err);

/* Reads the Orientation tag (0x0112) from IFD0 of a TIFF-structured EXIF
 * block (the bytes after "Exif\0\0"). Returns 1-8, or 0 when the block is
 * malformed or has no usable orientation. Never reads out of bounds. */
int ww_exif_orientation_from_tiff(const uint8_t *tiff, size_t size);

#endif
