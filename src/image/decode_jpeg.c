/* JPEG decoding with libjpeg(-turbo), configured the way PIL's JpegDecode.c
 * uses the same library, so the RGB bytes match Image.open().convert("RGB"). */
#include "core/error.h"
#include "image/image_internal.h"

#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

/* jpeglib.h needs FILE from stdio.h first. */
/* clang-format off */
#include <stdio.h>
#include <jerror.h>
#include <jpeglib.h>
/* clang-format on */

typedef struct jpeg_error_state {
    struct jpeg_error_mgr pub; /* must be first: libjpeg hands us this pointer */
    jmp_buf jump;
    int truncated;
    char message[JMSG_LENGTH_MAX];
} jpeg_error_state;

typedef struct jpeg_job {
    struct jpeg_decompress_struct cinfo;
    jpeg_error_state jerr;
    int created;
    uint8_t *row; /* scanline buffer when the output is not already RGB */
} jpeg_job;

static void on_error_exit(j_common_ptr cinfo)
{
    jpeg_error_state *state = (jpeg_error_state *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, state->message);
    longjmp(state->jump, 1);
}

static void on_emit_message(j_common_ptr cinfo, int msg_level)
{
    jpeg_error_state *state = (jpeg_error_state *)cinfo->err;
    if (msg_level >= 0) return; /* trace messages */
    /* The memory source reports running out of data as a warning and pads
     * with a fake EOI; PIL instead fails with "image file is truncated".
     * Other warnings (corrupt entropy data etc.) are ignored, as in PIL. */
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) {
        state->truncated = 1;
        longjmp(state->jump, 1);
    }
    cinfo->err->num_warnings++;
}

static void on_output_message(j_common_ptr cinfo)
{
    (void)cinfo; /* never print to stderr from a library */
}

static void job_init(jpeg_job *job)
{
    memset(job, 0, sizeof *job);
    job->cinfo.err = jpeg_std_error(&job->jerr.pub);
    job->jerr.pub.error_exit = on_error_exit;
    job->jerr.pub.emit_message = on_emit_message;
    job->jerr.pub.output_message = on_output_message;
}

static void job_destroy(jpeg_job *job)
{
    if (job->created) jpeg_destroy_decompress(&job->cinfo);
    job->created = 0;
    free(job->row);
    job->row = NULL;
}

static wanwu_status job_failure(const jpeg_job *job, wanwu_error *err)
{
    if (job->jerr.truncated)
        return ww_error_set(err, WANWU_ERR_FORMAT,
                            "JPEG data is truncated (image file is truncated: premature end of "
                            "data)");
    return ww_error_set(err, WANWU_ERR_FORMAT, "corrupt JPEG data: %s", job->jerr.message);
}

/* Everything between setjmp and the last libjpeg call lives here; state
 * that must survive a longjmp is kept in *job and *out, not in locals. */
static wanwu_status read_header(jpeg_job *job, const uint8_t *data, size_t size, int save_exif,
                                wanwu_error *err)
{
    jpeg_create_decompress(&job->cinfo);
    job->created = 1;
    jpeg_mem_src(&job->cinfo, data, (unsigned long)size);
    if (save_exif) jpeg_save_markers(&job->cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&job->cinfo, TRUE);
    const int components = job->cinfo.num_components;
    if (components != 1 && components != 3 && components != 4)
        return ww_error_set(err, WANWU_ERR_UNSUPPORTED,
                            "JPEG with %d color components is not supported (PIL accepts only "
                            "1, 3 or 4)",
                            components);
    return WANWU_OK;
}

static wanwu_status probe_guarded(jpeg_job *job, const uint8_t *data, size_t size, int *width,
                                  int *height, wanwu_error *err)
{
    if (setjmp(job->jerr.jump)) return job_failure(job, err);
    wanwu_status st = read_header(job, data, size, 0, err);
    if (st != WANWU_OK) return st;
    *width = (int)job->cinfo.image_width;
    *height = (int)job->cinfo.image_height;
    return WANWU_OK;
}

wanwu_status ww_jpeg_probe(const uint8_t *data, size_t size, int *width, int *height,
                           wanwu_error *err)
{
    jpeg_job job;
    job_init(&job);
    wanwu_status st = probe_guarded(&job, data, size, width, height, err);
    job_destroy(&job);
    return st;
}

static int find_exif_orientation(const struct jpeg_decompress_struct *cinfo)
{
    /* PIL keeps the first APP1 segment that starts with "Exif\0". */
    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next) {
        if (m->marker != JPEG_APP0 + 1 || m->data_length < 5) continue;
        if (memcmp(m->data, "Exif\0", 5) != 0) continue;
        if (m->data_length < 6 || m->data[5] != 0) return 0;
        return ww_exif_orientation_from_tiff(m->data + 6, m->data_length - 6);
    }
    return 0;
}

/* PIL's Convert.c cmyk2rgb: r = nk - nk * c / 255 with its rounding trick. */
static uint8_t cmyk_channel_to_rgb(int c, int nk)
{
    int t = c * nk + 128;
    int v = nk - (((t >> 8) + t) >> 8);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static void convert_row(const uint8_t *src, int components, int width, uint8_t *dst)
{
    if (components == 1) {
        /* PIL's L -> RGB replicates the gray value. */
        for (int x = 0; x < width; x++)
            dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = src[x];
        return;
    }
    /* CMYK: PIL decodes with rawmode "CMYK;I" (Adobe's inverted convention,
     * applied to every 4-channel JPEG), then converts CMYK -> RGB. */
    for (int x = 0; x < width; x++) {
        const uint8_t *p = src + 4 * x;
        int k = 255 - p[3];
        int nk = 255 - k;
        dst[3 * x + 0] = cmyk_channel_to_rgb(255 - p[0], nk);
        dst[3 * x + 1] = cmyk_channel_to_rgb(255 - p[1], nk);
        dst[3 * x + 2] = cmyk_channel_to_rgb(255 - p[2], nk);
    }
}

static wanwu_status decode_guarded(jpeg_job *job, const uint8_t *data, size_t size,
                                   int64_t max_pixels, ww_image *out, int *exif_orientation,
                                   wanwu_error *err)
{
    if (setjmp(job->jerr.jump)) return job_failure(job, err);
    struct jpeg_decompress_struct *cinfo = &job->cinfo;
    wanwu_status st = read_header(job, data, size, exif_orientation != NULL, err);
    if (st != WANWU_OK) return st;
    st =
        ww_image_check_dimensions("JPEG", cinfo->image_width, cinfo->image_height, max_pixels, err);
    if (st != WANWU_OK) return st;
    if (exif_orientation) *exif_orientation = find_exif_orientation(cinfo);

    /* PIL's settings: accurate integer IDCT, fancy upsampling, no DCT
     * scaling (no draft mode), and the library's colour conversion to RGB
     * (or gray / CMYK for 1- and 4-channel files). */
    const int components = cinfo->num_components;
    cinfo->dct_method = JDCT_ISLOW;
    cinfo->do_fancy_upsampling = TRUE;
    cinfo->scale_num = cinfo->scale_denom = 1;
    cinfo->out_color_space = components == 1 ? JCS_GRAYSCALE : components == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_start_decompress(cinfo);

    const int width = (int)cinfo->output_width, height = (int)cinfo->output_height;
    if (width != (int)cinfo->image_width || height != (int)cinfo->image_height ||
        cinfo->output_components != components)
        return ww_error_set(err, WANWU_ERR_FORMAT, "libjpeg produced an unexpected output layout");
    st = ww_image_alloc(out, width, height, err);
    if (st != WANWU_OK) return st;
    if (components != 3) {
        job->row = malloc((size_t)width * components);
        if (!job->row) return ww_error_set(err, WANWU_ERR_NO_MEMORY, "out of memory decoding JPEG");
    }
    while (cinfo->output_scanline < (JDIMENSION)height) {
        const size_t y = cinfo->output_scanline;
        uint8_t *rgb_row = out->rgb + y * (size_t)width * 3;
        JSAMPROW target = components == 3 ? rgb_row : job->row;
        if (jpeg_read_scanlines(cinfo, &target, 1) != 1)
            return ww_error_set(err, WANWU_ERR_FORMAT, "libjpeg stopped before the last row");
        if (components != 3) convert_row(job->row, components, width, rgb_row);
    }
    /* Reads up to EOI, so a file cut just before its end is still caught. */
    jpeg_finish_decompress(cinfo);
    return WANWU_OK;
}

wanwu_status ww_jpeg_decode(const uint8_t *data, size_t size, int64_t max_pixels, ww_image *out,
                            int *exif_orientation, wanwu_error *err)
{
    jpeg_job job;
    job_init(&job);
    if (exif_orientation) *exif_orientation = 0;
    out->rgb = NULL;
    wanwu_status st = decode_guarded(&job, data, size, max_pixels, out, exif_orientation, err);
    job_destroy(&job);
    if (st != WANWU_OK) ww_image_free(out);
    return st;
}
