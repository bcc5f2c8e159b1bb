/* Image decoding robustness and the pieces of preprocessing that can be
 * checked without PIL: corrupt, truncated and hostile inputs fail cleanly
 * (no crash, no leak - run under ASan), limits are enforced from the
 * header, EXIF parsing is bounds-checked, orientation/resize/normalize
 * behave as documented. Bit-exact parity with PIL/torchvision is in
 * test_preprocess_parity.py. */
#include "image/image.h"
#include "image/image_internal.h"
#include "test_support.h"

#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h and jpeglib.h need these headers first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>
#include <jpeglib.h>
/* clang-format on */

/* ---- test inputs, generated in memory -------------------------------- */

typedef struct buffer {
    uint8_t *data;
    size_t size;
} buffer;

static uint8_t pattern(int x, int y, int c)
{
    return (uint8_t)((x * 7 + y * 13 + c * 71 + (x * y) % 23) & 0xFF);
}

static buffer make_jpeg(int w, int h, int gray, int progressive)
{
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr jerr;
    unsigned char *mem = NULL;
    unsigned long mem_size = 0;
    cinfo.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, &mem, &mem_size);
    cinfo.image_width = (JDIMENSION)w;
    cinfo.image_height = (JDIMENSION)h;
    cinfo.input_components = gray ? 1 : 3;
    cinfo.in_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, 90, TRUE);
    if (progressive) jpeg_simple_progression(&cinfo);
    jpeg_start_compress(&cinfo, TRUE);
    uint8_t *row = malloc((size_t)w * 3);
    assert_non_null(row);
    while (cinfo.next_scanline < cinfo.image_height) {
        int y = (int)cinfo.next_scanline;
        for (int x = 0; x < w; x++)
            for (int c = 0; c < cinfo.input_components; c++)
                row[x * cinfo.input_components + c] = pattern(x, y, c);
        JSAMPROW rows[1] = {row};
        jpeg_write_scanlines(&cinfo, rows, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    free(row);
    buffer b = {mem, mem_size};
    return b;
}

static void png_append(png_structp png, png_bytep data, size_t n)
{
    buffer *b = png_get_io_ptr(png);
    uint8_t *grown = realloc(b->data, b->size + n);
    if (!grown) png_error(png, "out of memory");
    memcpy(grown + b->size, data, n);
    b->data = grown;
    b->size += n;
}

static void png_flush_nop(png_structp png)
{
    (void)png;
}

/* 8-bit PNG of the given colour type (gray, RGB, RGBA or palette). */
static buffer make_png(int w, int h, int color_type, int interlace)
{
    buffer b = {NULL, 0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_non_null(info);
    if (setjmp(png_jmpbuf(png))) fail_msg("libpng failed writing a test PNG");
    png_set_write_fn(png, &b, png_append, png_flush_nop);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, color_type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_color palette[16];
    for (int i = 0; i < 16; i++) {
        palette[i].red = (png_byte)(i * 16);
        palette[i].green = (png_byte)(255 - i * 9);
        palette[i].blue = (png_byte)(i * i);
    }
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_PLTE(png, info, palette, 16);
    png_write_info(png, info);
    const int channels = color_type == PNG_COLOR_TYPE_RGB         ? 3
                         : color_type == PNG_COLOR_TYPE_RGB_ALPHA ? 4
                                                                  : 1;
    uint8_t *pixels = malloc((size_t)w * h * channels);
    png_bytep *rows = malloc(sizeof(png_bytep) * h);
    assert_true(pixels && rows);
    for (int y = 0; y < h; y++) {
        rows[y] = pixels + (size_t)y * w * channels;
        for (int x = 0; x < w; x++)
            for (int c = 0; c < channels; c++)
                rows[y][x * channels + c] =
                    color_type == PNG_COLOR_TYPE_PALETTE ? pattern(x, y, 0) % 16 : pattern(x, y, c);
    }
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    free(pixels);
    return b;
}

static uint32_t crc_of(const uint8_t *p, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Rewrites the IHDR size of a PNG (and its checksum). */
static void set_png_size(buffer *b, uint32_t w, uint32_t h)
{
    put_be32(b->data + 16, w);
    put_be32(b->data + 20, h);
    put_be32(b->data + 29, crc_of(b->data + 12, 17));
}

/* Offset of the first byte of the first IDAT chunk's data. */
static size_t png_idat_data_offset(const buffer *b)
{
    size_t pos = 8;
    while (pos + 8 <= b->size) {
        uint32_t len = (uint32_t)b->data[pos] << 24 | (uint32_t)b->data[pos + 1] << 16 |
                       (uint32_t)b->data[pos + 2] << 8 | b->data[pos + 3];
        if (memcmp(b->data + pos + 4, "IDAT", 4) == 0) return pos + 8;
        pos += 12 + len;
    }
    fail_msg("no IDAT in test PNG");
    return 0;
}

/* Offset of the SOF marker's height field in a JPEG. */
static size_t jpeg_sof_size_offset(const buffer *b)
{
    size_t pos = 2;
    while (pos + 4 <= b->size) {
        assert_int_equal(b->data[pos], 0xFF);
        uint8_t marker = b->data[pos + 1];
        size_t len = (size_t)b->data[pos + 2] << 8 | b->data[pos + 3];
        if (marker == 0xC0 || marker == 0xC2) return pos + 5;
        pos += 2 + len;
    }
    fail_msg("no SOF in test JPEG");
    return 0;
}

static size_t jpeg_sos_offset(const buffer *b)
{
    for (size_t i = 2; i + 1 < b->size; i++)
        if (b->data[i] == 0xFF && b->data[i + 1] == 0xDA) return i;
    fail_msg("no SOS in test JPEG");
    return 0;
}

/* ---- format detection and trivial inputs ----------------------------- */

static void test_sniff(void **state)
{
    (void)state;
    const uint8_t jpeg[] = {0xFF, 0xD8, 0xFF, 0xE0};
    const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const uint8_t gif[] = "GIF89a";
    assert_int_equal(ww_image_sniff(jpeg, sizeof jpeg), WW_IMAGE_JPEG);
    assert_int_equal(ww_image_sniff(png, sizeof png), WW_IMAGE_PNG);
    assert_int_equal(ww_image_sniff(png, 7), WW_IMAGE_UNKNOWN);
    assert_int_equal(ww_image_sniff(jpeg, 2), WW_IMAGE_UNKNOWN);
    assert_int_equal(ww_image_sniff(gif, sizeof gif), WW_IMAGE_UNKNOWN);
    assert_int_equal(ww_image_sniff(NULL, 10), WW_IMAGE_UNKNOWN);
}

static void test_empty_and_unknown(void **state)
{
    (void)state;
    wanwu_error err = {0};
    ww_image img = {0};
    int w = -1, h = -1;
    const uint8_t one = 0xFF;
    assert_int_equal(ww_image_decode(NULL, 0, NULL, &img, &err), WANWU_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "empty"));
    assert_int_equal(ww_image_decode(&one, 0, NULL, &img, &err), WANWU_ERR_INVALID_ARGUMENT);
    assert_int_equal(ww_image_probe(&one, 0, &w, &h, &err), WANWU_ERR_INVALID_ARGUMENT);
    assert_null(img.rgb);

    const char text[] = "this is plainly not an image";
    assert_int_equal(ww_image_decode((const uint8_t *)text, sizeof text, NULL, &img, &err),
                     WANWU_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "not a JPEG or PNG image"));
    assert_int_equal(ww_image_probe((const uint8_t *)text, sizeof text, &w, &h, &err),
                     WANWU_ERR_UNSUPPORTED);

    /* Random bytes, also behind valid signatures. */
    ww_rng rng;
    ww_rng_seed(&rng, 7);
    uint8_t junk[600];
    for (int round = 0; round < 300; round++) {
        for (size_t i = 0; i < sizeof junk; i++)
            junk[i] = (uint8_t)ww_rng_u32(&rng);
        if (round % 3 == 1) memcpy(junk, "\xFF\xD8\xFF", 3);
        if (round % 3 == 2) memcpy(junk, "\x89PNG\r\n\x1a\n", 8);
        size_t n = (size_t)ww_rng_int(&rng, 1, (int)sizeof junk);
        wanwu_status st = ww_image_decode(junk, n, NULL, &img, &err);
        assert_int_not_equal(st, WANWU_OK);
        assert_null(img.rgb);
        assert_true(strlen(err.message) > 0);
    }
}

/* ---- good files ------------------------------------------------------ */

static void test_decode_good_files(void **state)
{
    (void)state;
    wanwu_error err = {0};
    ww_image img = {0};
    int w = 0, h = 0;

    buffer jpeg = make_jpeg(45, 31, 0, 0);
    assert_int_equal(ww_image_probe(jpeg.data, jpeg.size, &w, &h, &err), WANWU_OK);
    assert_int_equal(w, 45);
    assert_int_equal(h, 31);
    assert_int_equal(ww_image_decode(jpeg.data, jpeg.size, NULL, &img, &err), WANWU_OK);
    assert_int_equal(img.width, 45);
    assert_int_equal(img.height, 31);
    ww_image_free(&img);
    assert_null(img.rgb);
    free(jpeg.data);

    buffer gray = make_jpeg(17, 9, 1, 1);
    assert_int_equal(ww_image_decode(gray.data, gray.size, NULL, &img, &err), WANWU_OK);
    for (int i = 0; i < img.width * img.height; i++) {
        assert_int_equal(img.rgb[3 * i], img.rgb[3 * i + 1]);
        assert_int_equal(img.rgb[3 * i], img.rgb[3 * i + 2]);
    }
    ww_image_free(&img);
    free(gray.data);

    /* PNG is lossless: every colour type must give back the pattern. */
    const int types[] = {PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA, PNG_COLOR_TYPE_GRAY,
                         PNG_COLOR_TYPE_PALETTE};
    for (int t = 0; t < 4; t++) {
        for (int interlace = 0; interlace < 2; interlace++) {
            buffer png = make_png(23, 11, types[t], interlace);
            assert_int_equal(ww_image_probe(png.data, png.size, &w, &h, &err), WANWU_OK);
            assert_int_equal(w, 23);
            assert_int_equal(h, 11);
            assert_int_equal(ww_image_decode(png.data, png.size, NULL, &img, &err), WANWU_OK);
            for (int y = 0; y < 11; y++) {
                for (int x = 0; x < 23; x++) {
                    const uint8_t *px = img.rgb + (y * 23 + x) * 3;
                    for (int c = 0; c < 3; c++) {
                        int expect = pattern(x, y, c);
                        if (types[t] == PNG_COLOR_TYPE_GRAY) expect = pattern(x, y, 0);
                        if (types[t] == PNG_COLOR_TYPE_PALETTE) {
                            int i = pattern(x, y, 0) % 16;
                            expect = c == 0 ? i * 16 : c == 1 ? 255 - i * 9 : i * i;
                        }
                        assert_int_equal(px[c], expect);
                    }
                }
            }
            ww_image_free(&img);
            free(png.data);
        }
    }
}

static void test_load_file(void **state)
{
    (void)state;
    wanwu_error err = {0};
    ww_image img = {0};
    char path[4096];
    snprintf(path, sizeof path, "%s/ww-image-test-missing.jpg", ww_test_tmp_dir());
    remove(path);
    assert_int_equal(ww_image_load_file(path, NULL, &img, &err), WANWU_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "ww-image-test-missing.jpg"));

    snprintf(path, sizeof path, "%s/ww-image-test-empty.jpg", ww_test_tmp_dir());
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(ww_image_load_file(path, NULL, &img, &err), WANWU_ERR_FORMAT);
    assert_non_null(strstr(err.message, "empty"));

    buffer jpeg = make_jpeg(8, 8, 0, 0);
    snprintf(path, sizeof path, "%s/ww-image-test-ok.jpg", ww_test_tmp_dir());
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(jpeg.data, 1, jpeg.size, f), jpeg.size);
    fclose(f);
    assert_int_equal(ww_image_load_file(path, NULL, &img, &err), WANWU_OK);
    assert_int_equal(img.width, 8);
    ww_image_free(&img);
    free(jpeg.data);
}

/* ---- truncation and corruption --------------------------------------- */

/* Every prefix of a JPEG is an error: PIL reports "image file is
 * truncated" even when only the final EOI marker is missing. */
static void test_jpeg_truncated_everywhere(void **state)
{
    (void)state;
    for (int progressive = 0; progressive < 2; progressive++) {
        buffer jpeg = make_jpeg(40, 24, 0, progressive);
        const size_t sos = jpeg_sos_offset(&jpeg);
        for (size_t n = 1; n < jpeg.size; n++) {
            wanwu_error err = {0};
            ww_image img = {0};
            wanwu_status st = ww_image_decode(jpeg.data, n, NULL, &img, &err);
            if (st == WANWU_OK) fail_msg("truncated JPEG (%zu of %zu bytes) decoded", n, jpeg.size);
            assert_null(img.rgb);
            if (n > sos) {
                assert_int_equal(st, WANWU_ERR_FORMAT);
                assert_non_null(strstr(err.message, "truncated"));
            }
        }
        free(jpeg.data);
    }
}

/* A PNG prefix either fails or, once all rows are there (only a checksum
 * or trailer missing, which PIL ignores too), gives the full image. */
static void test_png_truncated_everywhere(void **state)
{
    (void)state;
    for (int interlace = 0; interlace < 2; interlace++) {
        buffer png = make_png(31, 19, PNG_COLOR_TYPE_RGB, interlace);
        ww_image full = {0};
        wanwu_error err = {0};
        assert_int_equal(ww_image_decode(png.data, png.size, NULL, &full, &err), WANWU_OK);
        const size_t idat = png_idat_data_offset(&png);
        for (size_t n = 1; n < png.size; n++) {
            ww_image img = {0};
            wanwu_status st = ww_image_decode(png.data, n, NULL, &img, &err);
            if (n <= idat) assert_int_not_equal(st, WANWU_OK);
            if (st == WANWU_OK) {
                assert_int_equal(img.width, full.width);
                assert_int_equal(img.height, full.height);
                assert_memory_equal(img.rgb, full.rgb, (size_t)full.width * full.height * 3);
                ww_image_free(&img);
            } else {
                assert_null(img.rgb);
            }
        }
        ww_image_free(&full);
        free(png.data);
    }
}

static void flip_bytes(ww_rng *rng, uint8_t *data, size_t size)
{
    int flips = ww_rng_int(rng, 1, 8);
    for (int i = 0; i < flips; i++) {
        size_t at = (size_t)ww_rng_int(rng, 0, (int)size - 1);
        if (ww_rng_int(rng, 0, 1))
            data[at] ^= (uint8_t)(1u << ww_rng_int(rng, 0, 7));
        else
            data[at] = (uint8_t)ww_rng_u32(rng);
    }
}

static void fuzz_one(const buffer *good, ww_rng *rng, int rounds)
{
    uint8_t *copy = malloc(good->size);
    assert_non_null(copy);
    for (int r = 0; r < rounds; r++) {
        memcpy(copy, good->data, good->size);
        flip_bytes(rng, copy, good->size);
        size_t n = r % 4 == 3 ? (size_t)ww_rng_int(rng, 1, (int)good->size) : good->size;
        /* A flipped size field must not make us allocate gigabytes. */
        ww_decode_options opts = {.apply_exif_orientation = r % 2, .max_pixels = 1 << 22};
        wanwu_error err = {0};
        ww_image img = {0};
        wanwu_status st = ww_image_decode(copy, n, &opts, &img, &err);
        if (st == WANWU_OK) {
            assert_non_null(img.rgb);
            assert_true(img.width > 0 && img.height > 0);
            assert_true((int64_t)img.width * img.height <= opts.max_pixels);
            ww_image_free(&img);
        } else {
            assert_null(img.rgb);
            assert_true(strlen(err.message) > 0);
        }
        int w, h;
        (void)ww_image_probe(copy, n, &w, &h, &err);
    }
    free(copy);
}

static void test_random_corruption(void **state)
{
    (void)state;
    ww_rng rng;
    ww_rng_seed(&rng, 2024);
    buffer inputs[] = {make_jpeg(48, 40, 0, 0),
                       make_jpeg(33, 20, 0, 1),
                       make_jpeg(16, 16, 1, 0),
                       make_png(37, 21, PNG_COLOR_TYPE_RGB, 0),
                       make_png(20, 30, PNG_COLOR_TYPE_PALETTE, 1),
                       make_png(25, 9, PNG_COLOR_TYPE_RGB_ALPHA, 0)};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        fuzz_one(&inputs[i], &rng, 1500);
        free(inputs[i].data);
    }
}

/* ---- limits ---------------------------------------------------------- */

static void test_max_pixels_from_header(void **state)
{
    (void)state;
    wanwu_error err = {0};
    ww_image img = {0};
    buffer jpeg = make_jpeg(64, 48, 0, 0);
    ww_decode_options opts = {0, 64 * 48};
    assert_int_equal(ww_image_decode(jpeg.data, jpeg.size, &opts, &img, &err), WANWU_OK);
    ww_image_free(&img);
    opts.max_pixels = 64 * 48 - 1;
    assert_int_equal(ww_image_decode(jpeg.data, jpeg.size, &opts, &img, &err), WANWU_ERR_LIMIT);
    assert_non_null(strstr(err.message, "3072"));
    assert_null(img.rgb);
    /* Checked before any pixel is read: data cut right after the scan
     * header still reports the limit, not the truncation. */
    size_t header_only = jpeg_sos_offset(&jpeg) + 20;
    assert_int_equal(ww_image_decode(jpeg.data, header_only, &opts, &img, &err), WANWU_ERR_LIMIT);
    opts.max_pixels = 0;
    assert_int_equal(ww_image_decode(jpeg.data, header_only, &opts, &img, &err), WANWU_ERR_FORMAT);
    free(jpeg.data);

    buffer png = make_png(50, 40, PNG_COLOR_TYPE_RGB, 0);
    opts.max_pixels = 1999;
    assert_int_equal(ww_image_decode(png.data, png.size, &opts, &img, &err), WANWU_ERR_LIMIT);
    size_t png_header_only = png_idat_data_offset(&png) + 4;
    assert_int_equal(ww_image_decode(png.data, png_header_only, &opts, &img, &err),
                     WANWU_ERR_LIMIT);
    opts.max_pixels = 2000;
    assert_int_equal(ww_image_decode(png.data, png.size, &opts, &img, &err), WANWU_OK);
    ww_image_free(&img);
    opts.max_pixels = -1;
    assert_int_equal(ww_image_decode(png.data, png.size, &opts, &img, &err),
                     WANWU_ERR_INVALID_ARGUMENT);
    free(png.data);
}

static void test_absurd_dimensions(void **state)
{
    (void)state;
    wanwu_error err = {0};
    ww_image img = {0};
    int w, h;
    const uint32_t sizes[][2] = {
        {0x7fffffffu, 0x7fffffffu}, {100000, 100000}, {1, 0x7fffffffu}, {20000, 20000}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        buffer png = make_png(4, 4, PNG_COLOR_TYPE_RGB, 0);
        set_png_size(&png, sizes[i][0], sizes[i][1]);
        /* The probe reports what the header says... */
        assert_int_equal(ww_image_probe(png.data, png.size, &w, &h, &err), WANWU_OK);
        assert_int_equal((uint32_t)w, sizes[i][0]);
        /* ...but decoding refuses before allocating anything. */
        assert_int_equal(ww_image_decode(png.data, png.size, NULL, &img, &err), WANWU_ERR_LIMIT);
        assert_non_null(strstr(err.message, "limit"));
        assert_null(img.rgb);
        free(png.data);
    }
    buffer png = make_png(4, 4, PNG_COLOR_TYPE_RGB, 0);
    set_png_size(&png, 0, 4);
    assert_int_not_equal(ww_image_decode(png.data, png.size, NULL, &img, &err), WANWU_OK);
    assert_int_not_equal(ww_image_probe(png.data, png.size, &w, &h, &err), WANWU_OK);
    free(png.data);

    /* A JPEG claiming 65000 x 65000. */
    buffer jpeg = make_jpeg(16, 16, 0, 0);
    size_t at = jpeg_sof_size_offset(&jpeg);
    jpeg.data[at] = jpeg.data[at + 2] = 0xFD;
    jpeg.data[at + 1] = jpeg.data[at + 3] = 0xE8;
    assert_int_equal(ww_image_probe(jpeg.data, jpeg.size, &w, &h, &err), WANWU_OK);
    assert_int_equal(w, 65000);
    assert_int_equal(ww_image_decode(jpeg.data, jpeg.size, NULL, &img, &err), WANWU_ERR_LIMIT);
    assert_null(img.rgb);
    free(jpeg.data);
}

/* ---- EXIF and orientation -------------------------------------------- */

static void test_exif_parser_bounds(void **state)
{
    (void)state;
    /* Little-endian TIFF, IFD0 at 8 with two entries, orientation 6. */
    const uint8_t le[] = {'I',  'I',  42, 0, 8, 0, 0, 0,             /* header */
                          2,    0,                                   /* entries */
                          0x0F, 0x01, 2,  0, 4, 0, 0, 0, 0, 0, 0, 0, /* Make, ASCII */
                          0x12, 0x01, 3,  0, 1, 0, 0, 0, 6, 0, 0, 0, /* Orientation = 6 */
                          0,    0,    0,  0};
    const uint8_t be[] = {'M',  'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01,
                          0x12, 0,   3, 0,  0, 0, 1, 0, 8, 0, 0};
    assert_int_equal(ww_exif_orientation_from_tiff(le, sizeof le), 6);
    assert_int_equal(ww_exif_orientation_from_tiff(be, sizeof be), 8);
    /* Every truncation: no out-of-bounds read (ASan), 6 or nothing. */
    for (size_t n = 0; n < sizeof le; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, le, n);
        int o = ww_exif_orientation_from_tiff(copy, n);
        assert_true(o == 0 || (o == 6 && n >= 34));
        free(copy);
    }
    uint8_t bad[sizeof le];
    memcpy(bad, le, sizeof le);
    bad[4] = 0xF0; /* IFD offset past the end */
    assert_int_equal(ww_exif_orientation_from_tiff(bad, sizeof bad), 0);
    memcpy(bad, le, sizeof le);
    bad[8] = 0xFF, bad[9] = 0xFF; /* 65535 entries claimed */
    assert_int_equal(ww_exif_orientation_from_tiff(bad, sizeof bad), 6);
    memcpy(bad, le, sizeof le);
    bad[30] = 9; /* out of range */
    assert_int_equal(ww_exif_orientation_from_tiff(bad, sizeof bad), 0);
    memcpy(bad, le, sizeof le);
    bad[2] = 43; /* not TIFF */
    assert_int_equal(ww_exif_orientation_from_tiff(bad, sizeof bad), 0);
    assert_int_equal(ww_exif_orientation_from_tiff(NULL, 100), 0);
}

static void test_orientation_transforms(void **state)
{
    (void)state;
    /* 3 x 2 image whose red channel numbers the pixels:  0 1 2 / 3 4 5 */
    static const uint8_t expected[9][6] = {
        {0},
        {0, 1, 2, 3, 4, 5},
        {2, 1, 0, 5, 4, 3},
        {5, 4, 3, 2, 1, 0},
        {3, 4, 5, 0, 1, 2},
        {0, 3, 1, 4, 2, 5}, /* 5 transpose: 2 wide, 3 tall */
        {3, 0, 4, 1, 5, 2}, /* 6 rotate 90 clockwise */
        {5, 2, 4, 1, 3, 0}, /* 7 transverse */
        {2, 5, 1, 4, 0, 3}, /* 8 rotate 90 counter-clockwise */
    };
    for (int o = 1; o <= 8; o++) {
        wanwu_error err = {0};
        ww_image img = {0};
        assert_int_equal(ww_image_alloc(&img, 3, 2, &err), WANWU_OK);
        for (int i = 0; i < 6; i++)
            img.rgb[3 * i] = img.rgb[3 * i + 1] = img.rgb[3 * i + 2] = i;
        assert_int_equal(ww_image_apply_orientation(&img, o, &err), WANWU_OK);
        assert_int_equal(img.width, o >= 5 ? 2 : 3);
        assert_int_equal(img.height, o >= 5 ? 3 : 2);
        for (int i = 0; i < 6; i++)
            assert_int_equal(img.rgb[3 * i], expected[o][i]);
        ww_image_free(&img);
    }
}

/* ---- resize and preprocessing ---------------------------------------- */

static void test_resize_properties(void **state)
{
    (void)state;
    wanwu_error err = {0};
    ww_image in = {0}, out = {0};
    assert_int_equal(ww_image_alloc(&in, 37, 23, &err), WANWU_OK);
    memset(in.rgb, 201, (size_t)37 * 23 * 3);
    const int sizes[][2] = {{1, 1}, {37, 23}, {100, 7}, {5, 60}, {37, 50}, {300, 23}};
    for (int interp = 0; interp < 2; interp++) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            assert_int_equal(ww_image_resize(&in, sizes[i][0], sizes[i][1],
                                             (ww_interpolation)interp, &out, &err),
                             WANWU_OK);
            assert_int_equal(out.width, sizes[i][0]);
            assert_int_equal(out.height, sizes[i][1]);
            /* Normalised weights keep a flat image flat. */
            for (int k = 0; k < out.width * out.height * 3; k++)
                assert_int_equal(out.rgb[k], 201);
            ww_image_free(&out);
        }
    }
    assert_int_equal(ww_image_resize(&in, 0, 5, WW_INTERP_BILINEAR, &out, &err),
                     WANWU_ERR_INVALID_ARGUMENT);
    assert_int_equal(ww_image_resize(&in, 5, 5, (ww_interpolation)7, &out, &err),
                     WANWU_ERR_INVALID_ARGUMENT);
    assert_int_equal(ww_image_resize(&in, 1 << 20, 1 << 20, WW_INTERP_BILINEAR, &out, &err),
                     WANWU_ERR_LIMIT);
    assert_null(out.rgb);
    ww_image_free(&in);
}

static void test_preprocess_values_and_padding(void **state)
{
    (void)state;
    wanwu_error err = {0};
    ww_preprocess p = ww_preprocess_imagenet_default();
    assert_int_equal(p.resize, 256);
    assert_int_equal(p.crop, 224);
    assert_true(p.mean[0] == (float)0.485 && p.std[2] == (float)0.225);

    /* A flat image: every output is (v / 255 - mean) / std in float32. */
    ww_image img = {0};
    assert_int_equal(ww_image_alloc(&img, 300, 257, &err), WANWU_OK);
    for (int i = 0; i < 300 * 257; i++) {
        img.rgb[3 * i] = 10;
        img.rgb[3 * i + 1] = 128;
        img.rgb[3 * i + 2] = 250;
    }
    float *out = malloc(sizeof(float) * 3 * 224 * 224);
    assert_non_null(out);
    assert_int_equal(ww_preprocess_run(&img, &p, out, &err), WANWU_OK);
    const uint8_t values[3] = {10, 128, 250};
    for (int c = 0; c < 3; c++) {
        float expect = ((float)values[c] / 255.0f - p.mean[c]) / p.std[c];
        for (int i = 0; i < 224 * 224; i++)
            assert_true(out[c * 224 * 224 + i] == expect);
    }
    ww_image_free(&img);

    /* Smaller than the crop: zero padding (byte 0) around the image;
     * torchvision puts the odd pixel of padding on the right/bottom. */
    assert_int_equal(ww_image_alloc(&img, 3, 2, &err), WANWU_OK);
    memset(img.rgb, 255, 18);
    p.resize = 2; /* 3x2 already has shorter side 2: no resize */
    p.crop = 5;
    assert_int_equal(ww_preprocess_run(&img, &p, out, &err), WANWU_OK);
    const float pad = (0.0f - p.mean[0]) / p.std[0];
    const float white = (1.0f - p.mean[0]) / p.std[0];
    for (int y = 0; y < 5; y++) {
        for (int x = 0; x < 5; x++) {
            /* pad left (5-3)//2 = 1, top (5-2)//2 = 1 */
            int inside = x >= 1 && x < 4 && y >= 1 && y < 3;
            assert_true(out[y * 5 + x] == (inside ? white : pad));
        }
    }
    ww_image_free(&img);

    p = ww_preprocess_imagenet_default();
    p.std[1] = 0.0f;
    assert_int_equal(ww_image_alloc(&img, 4, 4, &err), WANWU_OK);
    assert_int_equal(ww_preprocess_run(&img, &p, out, &err), WANWU_ERR_INVALID_ARGUMENT);
    p = ww_preprocess_imagenet_default();
    p.crop = 0;
    assert_int_equal(ww_preprocess_run(&img, &p, out, &err), WANWU_ERR_INVALID_ARGUMENT);
    ww_image_free(&img);
    free(out);
}

/* Decoding a real sample end to end, when the shared data is present. */
static void test_shared_sample(void **state)
{
    (void)state;
    const char *shared = ww_test_shared_dir();
    if (!shared) {
        if (ww_test_missing_shared("test_image's real-JPEG check")) skip();
        return;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/imagenet-sample/n01440764_tench.JPEG", shared);
    size_t size = 0;
    uint8_t *data = ww_test_read_file(path, &size);
    if (!data) {
        if (ww_test_missing_shared(path)) skip();
        return;
    }
    wanwu_error err = {0};
    ww_image img = {0};
    int w, h;
    assert_int_equal(ww_image_probe(data, size, &w, &h, &err), WANWU_OK);
    assert_int_equal(ww_image_decode(data, size, NULL, &img, &err), WANWU_OK);
    assert_int_equal(img.width, w);
    assert_int_equal(img.height, h);
    ww_image_free(&img);
    /* Truncations of a real photo at many offsets: always an error. */
    for (size_t n = 1; n < size; n += 1 + size / 300) {
        assert_int_not_equal(ww_image_decode(data, n, NULL, &img, &err), WANWU_OK);
        assert_null(img.rgb);
    }
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sniff),
        cmocka_unit_test(test_empty_and_unknown),
        cmocka_unit_test(test_decode_good_files),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_jpeg_truncated_everywhere),
        cmocka_unit_test(test_png_truncated_everywhere),
        cmocka_unit_test(test_random_corruption),
        cmocka_unit_test(test_max_pixels_from_header),
        cmocka_unit_test(test_absurd_dimensions),
        cmocka_unit_test(test_exif_parser_bounds),
        cmocka_unit_test(test_orientation_transforms),
        cmocka_unit_test(test_resize_properties),
        cmocka_unit_test(test_preprocess_values_and_padding),
        cmocka_unit_test(test_shared_sample),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
