/* Helper for test_preprocess_parity.py: decodes images with wanwu and writes
 * what it got, so the script can compare against PIL/torchvision.
 *
 *   tool_preprocess [options] --out FILE IMAGE...
 *     --mode tensor      (default) preprocess; 3 x crop x crop float32 each
 *     --mode rgb         decode only; height x width x 3 bytes each
 *     --mode resize      decode, then ww_image_resize to --size WxH; RGB bytes
 *     --resize N --crop N --interp bilinear|bicubic   (tensor mode)
 *     --size WxH         (resize mode)
 *     --exif             apply EXIF orientation while decoding
 *
 * For every image one line goes to stdout, in order:
 *   "OK <d0> <d1> <d2>" (shape of the record appended to FILE) or
 *   "ERR <status name>: <message>" (nothing appended). */
#include "image/image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr, "usage: tool_preprocess [--mode tensor|rgb|resize] [--resize N] [--crop N] "
                    "[--interp bilinear|bicubic] [--size WxH] [--exif] --out FILE IMAGE...\n");
    return 2;
}

static void print_error(const wanwu_error *err)
{
    /* Keep the record on one line. */
    char msg[sizeof err->message];
    snprintf(msg, sizeof msg, "%s", err->message);
    for (char *c = msg; *c; c++)
        if (*c == '\n' || *c == '\r') *c = ' ';
    printf("ERR %s: %s\n", wanwu_status_name(err->status), msg);
}

int main(int argc, char **argv)
{
    const char *mode = "tensor", *out_path = NULL;
    ww_preprocess pre = ww_preprocess_imagenet_default();
    ww_decode_options opts = {0};
    int size_w = 0, size_h = 0, i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "--exif") == 0) {
            opts.apply_exif_orientation = 1;
            continue;
        }
        if (i + 1 >= argc) return usage();
        const char *value = argv[++i];
        if (strcmp(flag, "--mode") == 0)
            mode = value;
        else if (strcmp(flag, "--out") == 0)
            out_path = value;
        else if (strcmp(flag, "--resize") == 0)
            pre.resize = atoi(value);
        else if (strcmp(flag, "--crop") == 0)
            pre.crop = atoi(value);
        else if (strcmp(flag, "--interp") == 0 && strcmp(value, "bicubic") == 0)
            pre.interp = WW_INTERP_BICUBIC;
        else if (strcmp(flag, "--interp") == 0 && strcmp(value, "bilinear") == 0)
            pre.interp = WW_INTERP_BILINEAR;
        else if (strcmp(flag, "--size") == 0 && sscanf(value, "%dx%d", &size_w, &size_h) == 2)
            continue;
        else
            return usage();
    }
    if (!out_path || i >= argc) return usage();
    int tensor = strcmp(mode, "tensor") == 0, resize = strcmp(mode, "resize") == 0;
    if (!tensor && !resize && strcmp(mode, "rgb") != 0) return usage();
    if (resize && (size_w <= 0 || size_h <= 0)) return usage();

    FILE *out = fopen(out_path, "wb");
    if (!out) {
        perror(out_path);
        return 1;
    }
    float *tensor_buf = tensor ? malloc(sizeof(float) * 3 * (size_t)pre.crop * pre.crop) : NULL;
    if (tensor && !tensor_buf) return 1;
    int failures = 0;
    for (; i < argc; i++) {
        wanwu_error err = {0};
        ww_image img = {0}, resized = {0};
        if (ww_image_load_file(argv[i], &opts, &img, &err) != WANWU_OK) {
            print_error(&err);
            continue;
        }
        if (tensor) {
            if (ww_preprocess_run(&img, &pre, tensor_buf, &err) != WANWU_OK) {
                print_error(&err);
            } else {
                size_t n = 3 * (size_t)pre.crop * pre.crop;
                failures += fwrite(tensor_buf, sizeof(float), n, out) != n;
                printf("OK 3 %d %d\n", pre.crop, pre.crop);
            }
        } else {
            const ww_image *shown = &img;
            if (resize) {
                if (ww_image_resize(&img, size_w, size_h, pre.interp, &resized, &err) != WANWU_OK) {
                    print_error(&err);
                    ww_image_free(&img);
                    continue;
                }
                shown = &resized;
            }
            size_t n = (size_t)shown->width * shown->height * 3;
            failures += fwrite(shown->rgb, 1, n, out) != n;
            printf("OK %d %d 3\n", shown->height, shown->width);
        }
        ww_image_free(&resized);
        ww_image_free(&img);
    }
    free(tensor_buf);
    if (fclose(out) != 0) failures++;
    if (failures) fprintf(stderr, "tool_preprocess: write errors on %s\n", out_path);
    return failures ? 1 : 0;
}
