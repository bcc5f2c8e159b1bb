/* PNG decoding with libpng, reproducing what PIL's own PNG plugin followed
 * by convert("RGB") produces. PIL does not use libpng, so each colour type
 * is mapped explicitly below (checked against Pillow 9.4 on generated
 * files):
 *   gray 1/2/4 bit  -> value scaled to 0..255 (0/255, x85, x17)
 *   gray 16 bit     -> mode "I"; I -> RGB clips the 16-bit value to 255
 *   RGB/RGBA 16 bit -> high byte of each sample ("RGB;16B" unpacker)
 *   gray+alpha 16   -> high byte of the gray sample
 *   any alpha       -> dropped, never composited
 *   palette         -> PLTE colour; indices past the PLTE entries get PIL's
 *                      default palette, a gray ramp (i, i, i)
 *   tRNS            -> ignored (it does not change RGB values) */
#include "core/error.h"
#include "image/image_internal.h"

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

typedef struct png_job {
    png_structp png;
    png_infop info;
    const uint8_t *data;
    size_t size, pos;
    int truncated;
    char message[256];

    int width, height, bit_depth, color_type, interlaced;
    size_t rowbytes;
    uint8_t palette[256][3];
    uint8_t *raw; /* one row, or the whole image when interlaced */
    size_t rows_expected, rows_decoded, rows_converted;
} png_job;

static uint32_t read_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* CRC-32 (ISO 3309, as used by PNG) for the chunks before the image data. */
static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n)
{
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int b = 0; b < 8; b++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
        table[i] = c;
    }
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

static int is_chunk_letter(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* PIL walks the chunks before the first IDAT itself and rejects any chunk
 * with a bad checksum or a non-letter type; libpng would only warn for
 * ancillary chunks, so do the same walk here. */
static wanwu_status prescan_chunks(const uint8_t *data, size_t size, wanwu_error *err)
{
    size_t pos = 8;
    for (int first = 1;; first = 0) {
        if (size - pos < 8)
            return ww_error_set(err, WANWU_ERR_FORMAT,
                                "PNG data is truncated before the image data (%zu bytes)", size);
        const uint32_t length = read_be32(data + pos);
        const uint8_t *type = data + pos + 4;
        if (length > 0x7fffffffu)
            return ww_error_set(err, WANWU_ERR_FORMAT, "broken PNG file (chunk length %u)", length);
        for (int i = 0; i < 4; i++)
            if (!is_chunk_letter(type[i]))
                return ww_error_set(err, WANWU_ERR_FORMAT,
                                    "broken PNG file (invalid chunk type at byte %zu)", pos + 4);
        if (first && memcmp(type, "IHDR", 4) != 0)
            return ww_error_set(err, WANWU_ERR_FORMAT,
                                "broken PNG file (first chunk is '%.4s', not IHDR)", type);
        if (memcmp(type, "IDAT", 4) == 0) return WANWU_OK;
        if (size - pos - 8 < (size_t)length + 4)
            return ww_error_set(err, WANWU_ERR_FORMAT,
                                "PNG data is truncated inside chunk '%.4s' (image file is "
                                "truncated)",
                                type);
        if (crc32_update(0, type, 4 + (size_t)length) != read_be32(data + pos + 8 + length))
            return ww_error_set(err, WANWU_ERR_FORMAT,
                                "broken PNG file (bad checksum in chunk '%.4s')", type);
        pos += 12 + (size_t)length;
    }
}

wanwu_status ww_png_probe(const uint8_t *data, size_t size, int *width, int *height,
                          wanwu_error *err)
{
    wanwu_status st = prescan_chunks(data, size, err);
    if (st != WANWU_OK) return st;
    if (read_be32(data + 8) != 13)
        return ww_error_set(err, WANWU_ERR_FORMAT, "broken PNG file (IHDR chunk is not 13 bytes)");
    uint32_t w = read_be32(data + 16), h = read_be32(data + 20);
    if (w == 0 || h == 0 || w > 0x7fffffffu || h > 0x7fffffffu)
        return ww_error_set(err, WANWU_ERR_FORMAT, "PNG header declares invalid size %ux%u", w, h);
    *width = (int)w;
    *height = (int)h;
    return WANWU_OK;
}

static void on_png_error(png_structp png, png_const_charp message)
{
    png_job *job = png_get_error_ptr(png);
    snprintf(job->message, sizeof job->message, "%s", message ? message : "unknown error");
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp message)
{
    (void)png; /* warnings are not failures for PIL either; stay quiet */
    (void)message;
}

static void read_from_memory(png_structp png, png_bytep out, size_t length)
{
    png_job *job = png_get_io_ptr(png);
    if (job->size - job->pos < length) {
        job->truncated = 1;
        png_error(png, "unexpected end of data");
    }
    memcpy(out, job->data + job->pos, length);
    job->pos += length;
}

/* Called by libpng once per decoded (pass) row, after filtering and before
 * the row is stored: counting these tells us when all pixel data has
 * arrived, which is when PIL stops reading. */
static void count_decoded_row(png_structp png, png_row_infop row_info, png_bytep row)
{
    (void)row_info;
    (void)row;
    png_job *job = png_get_user_transform_ptr(png);
    job->rows_decoded++;
}

static size_t rows_in_passes(int width, int height, int interlaced)
{
    if (!interlaced) return (size_t)height;
    /* Adam7: rows of each pass that libpng actually reads (passes with no
     * columns are skipped). */
    static const int xstart[7] = {0, 4, 0, 2, 0, 1, 0};
    static const int ystart[7] = {0, 0, 4, 0, 2, 0, 1};
    static const int ystep[7] = {8, 8, 8, 4, 4, 2, 2};
    size_t rows = 0;
    for (int p = 0; p < 7; p++)
        if (width > xstart[p] && height > ystart[p])
            rows += (size_t)(height - ystart[p] + ystep[p] - 1) / ystep[p];
    return rows;
}

static void convert_row(const png_job *job, const uint8_t *src, uint8_t *dst)
{
    const int w = job->width, depth = job->bit_depth;
    switch (job->color_type) {
    case PNG_COLOR_TYPE_GRAY:
        if (depth < 8) {
            /* png_set_packing gave one byte per sample, 0 .. 2^depth-1. */
            const int scale = 255 / ((1 << depth) - 1);
            for (int x = 0; x < w; x++)
                dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = src[x] * scale;
        } else if (depth == 8) {
            for (int x = 0; x < w; x++)
                dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = src[x];
        } else {
            for (int x = 0; x < w; x++) {
                const unsigned v = (unsigned)src[2 * x] << 8 | src[2 * x + 1];
                dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = v > 255 ? 255 : (uint8_t)v;
            }
        }
        break;
    case PNG_COLOR_TYPE_GRAY_ALPHA: {
        const int stride = depth == 16 ? 4 : 2;
        for (int x = 0; x < w; x++)
            dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = src[stride * x];
        break;
    }
    case PNG_COLOR_TYPE_RGB:
    case PNG_COLOR_TYPE_RGB_ALPHA: {
        const int channels = job->color_type == PNG_COLOR_TYPE_RGB ? 3 : 4;
        const int bytes = depth == 16 ? 2 : 1;
        const int stride = channels * bytes;
        for (int x = 0; x < w; x++) {
            dst[3 * x + 0] = src[stride * x];
            dst[3 * x + 1] = src[stride * x + bytes];
            dst[3 * x + 2] = src[stride * x + 2 * bytes];
        }
        break;
    }
    default: /* palette */
        for (int x = 0; x < w; x++)
            memcpy(dst + 3 * x, job->palette[src[x]], 3);
        break;
    }
}

static void read_exif(png_job *job, int *exif_orientation)
{
    png_uint_32 length = 0;
    png_bytep exif = NULL;
    if (png_get_eXIf_1(job->png, job->info, &length, &exif) && exif && length > 0)
        *exif_orientation = ww_exif_orientation_from_tiff(exif, length);
}

static wanwu_status decode_guarded(png_job *job, int64_t max_pixels, ww_image *out,
                                   int *exif_orientation, wanwu_error *err)
{
    if (setjmp(png_jmpbuf(job->png))) {
        /* PIL stops as soon as it has every row; trouble after that (a
         * cut-off checksum or trailer, a bad chunk after IDAT) is ignored. */
        if (job->rows_expected > 0 && job->rows_decoded >= job->rows_expected) return WANWU_OK;
        if (job->truncated)
            return ww_error_set(err, WANWU_ERR_FORMAT,
                                "PNG data is truncated (image file is truncated after %zu of "
                                "%zu rows)",
                                job->rows_decoded, job->rows_expected);
        return ww_error_set(err, WANWU_ERR_FORMAT, "corrupt PNG data: %s", job->message);
    }
    png_structp png = job->png;
    png_set_read_fn(png, job, read_from_memory);
    /* Checksums before IDAT were verified by prescan_chunks; PIL never
     * checks IDAT or later checksums, so neither do we. */
    png_set_crc_action(png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
    png_set_benign_errors(png, 1);
    png_set_check_for_invalid_index(png, 0);
    png_set_user_limits(png, 0x7fffffffu, 0x7fffffffu);
    png_read_info(png, job->info);

    png_uint_32 w, h;
    int interlace;
    png_get_IHDR(png, job->info, &w, &h, &job->bit_depth, &job->color_type, &interlace, NULL, NULL);
    wanwu_status st = ww_image_check_dimensions("PNG", w, h, max_pixels, err);
    if (st != WANWU_OK) return st;
    job->width = (int)w;
    job->height = (int)h;
    job->interlaced = interlace != PNG_INTERLACE_NONE;
    if (exif_orientation) read_exif(job, exif_orientation);

    if (job->color_type == PNG_COLOR_TYPE_PALETTE) {
        for (int i = 0; i < 256; i++)
            memset(job->palette[i], i, 3);
        png_colorp plte = NULL;
        int entries = 0;
        if (png_get_PLTE(png, job->info, &plte, &entries) && plte) {
            for (int i = 0; i < entries && i < 256; i++) {
                job->palette[i][0] = plte[i].red;
                job->palette[i][1] = plte[i].green;
                job->palette[i][2] = plte[i].blue;
            }
        }
    }
    /* Only unpacking: every other conversion is done by convert_row so it
     * follows PIL rather than libpng's own rules. */
    if (job->bit_depth < 8) png_set_packing(png);
    png_set_read_user_transform_fn(png, count_decoded_row);
    png_set_user_transform_info(png, job, 0, 0);
    const int passes = png_set_interlace_handling(png);
    png_read_update_info(png, job->info);
    job->rowbytes = png_get_rowbytes(png, job->info);
    job->rows_expected = rows_in_passes(job->width, job->height, job->interlaced);

    st = ww_image_alloc(out, job->width, job->height, err);
    if (st != WANWU_OK) return st;
    const size_t raw_rows = job->interlaced ? (size_t)job->height : 1;
    if (job->rowbytes == 0 || raw_rows > SIZE_MAX / job->rowbytes)
        return ww_error_set(err, WANWU_ERR_LIMIT, "PNG rows too large to buffer");
    job->raw = malloc(job->rowbytes * raw_rows);
    if (!job->raw)
        return ww_error_set(err, WANWU_ERR_NO_MEMORY, "cannot allocate %zu bytes decoding PNG",
                            job->rowbytes * raw_rows);
    if (job->interlaced) memset(job->raw, 0, job->rowbytes * raw_rows);

    for (int pass = 0; pass < passes; pass++) {
        for (int y = 0; y < job->height; y++) {
            uint8_t *row = job->interlaced ? job->raw + (size_t)y * job->rowbytes : job->raw;
            png_read_row(png, row, NULL);
            if (!job->interlaced) {
                convert_row(job, row, out->rgb + (size_t)y * job->width * 3);
                job->rows_converted++;
            }
        }
    }
    /* An eXIf chunk may also follow the image data; PIL reads those too. */
    if (exif_orientation && *exif_orientation == 0) {
        png_read_end(png, job->info);
        read_exif(job, exif_orientation);
    }
    return WANWU_OK;
}

/* One complete decoding attempt. `byte_at_a_time` makes libpng hand the
 * compressed data to zlib one byte per read, so a truncated file yields
 * exactly the rows its bytes contain (what PIL's decoder gets), instead of
 * failing on libpng's large IDAT read. */
static wanwu_status decode_attempt(const uint8_t *data, size_t size, int64_t max_pixels,
                                   ww_image *out, int *exif_orientation, int byte_at_a_time,
                                   int *truncated, wanwu_error *err)
{
    wanwu_status st;
    png_job *job = calloc(1, sizeof *job);
    if (!job) return ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory decoding PNG");
    job->data = data;
    job->size = size;
    job->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, job, on_png_error, on_png_warning);
    if (job->png) job->info = png_create_info_struct(job->png);
    if (!job->png || !job->info) {
        st = ww_error_set(err, WANWU_ERR_NO_MEMORY, "cannot initialise libpng");
    } else {
        if (byte_at_a_time) png_set_compression_buffer_size(job->png, 1);
        st = decode_guarded(job, max_pixels, out, exif_orientation, err);
    }
    if (st == WANWU_OK) {
        if (job->interlaced) {
            for (int y = 0; y < job->height; y++)
                convert_row(job, job->raw + (size_t)y * job->rowbytes,
                            out->rgb + (size_t)y * job->width * 3);
        } else if (job->rows_converted < (size_t)job->height) {
            /* libpng failed after storing the last row but before we could
             * convert it (see decode_guarded's recovery). */
            convert_row(job, job->raw, out->rgb + (size_t)(job->height - 1) * job->width * 3);
        }
    }
    *truncated = st != WANWU_OK && job->truncated;
    png_destroy_read_struct(job->png ? &job->png : NULL, job->info ? &job->info : NULL, NULL);
    free(job->raw);
    free(job);
    if (st != WANWU_OK) ww_image_free(out);
    return st;
}

wanwu_status ww_png_decode(const uint8_t *data, size_t size, int64_t max_pixels, ww_image *out,
                           int *exif_orientation, wanwu_error *err)
{
    out->rgb = NULL;
    if (exif_orientation) *exif_orientation = 0;
    wanwu_status st = prescan_chunks(data, size, err);
    if (st != WANWU_OK) return st;
    int truncated = 0;
    st = decode_attempt(data, size, max_pixels, out, exif_orientation, 0, &truncated, err);
    /* Only truncated files pay for the slow, exact retry. */
    if (st != WANWU_OK && truncated) {
        if (exif_orientation) *exif_orientation = 0;
        st = decode_attempt(data, size, max_pixels, out, exif_orientation, 1, &truncated, err);
    }
    return st;
}
